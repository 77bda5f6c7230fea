//! `/v2.0/l2pop/...`: l2pop's own API beside Neutron's, what its agents, BGP speakers and the
//! ML2 driver send (agent reports, device state, routes learned from BGP peers, HA routers'
//! hosts) and the desired FDB a host is given.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post, put};

use l2pop_bgpvpn::{DeviceRoutes, GatewayRoutes};
use l2pop_model::{Host, PortId, RouterId};
use l2pop_neutron::request::{
    self as req, DeviceBody, DeviceName, DeviceReply, DevicesBody, GatewaysBody, ReportReply, body,
};
use l2pop_neutron::router::{ROUTER_RULE, RouterBody};
use l2pop_neutron::{NeutronError, Query, Request};

use super::resource::{self, Routers};
use super::{App, Route, host_param, json_body, path_id, route, whole_body};

// ---- l2pop: agent reports, device state, BGP agents' routes, desired FDB ----

/// `POST /v2.0/l2pop/agents`: an L2 agent's `report_state` (the bus RPC carries the same).
async fn l2pop_agent_report(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(&headers, StatusCode::OK, |caller| {
        caller.require_admin("l2pop:report_state")?;
        Ok(Request::AgentReport {
            body: body(json_body(&bytes)?, "agent")?,
            reply: ReportReply::Agent,
        })
    })
    .await
}

async fn l2pop_device(
    app: App,
    headers: HeaderMap,
    port: String,
    bytes: Bytes,
    up: bool,
) -> Response {
    app.write(&headers, StatusCode::OK, |caller| {
        caller.require_admin("l2pop:update_device")?;
        let port: PortId = path_id("port", &port)?;
        let device: DeviceBody = body(json_body(&bytes)?, "device")?;
        Ok(Request::Device {
            device: DeviceName::Port(port),
            up,
            body: device,
            reply: DeviceReply::Port,
        })
    })
    .await
}

async fn l2pop_device_up(
    State(app): State<App>,
    headers: HeaderMap,
    Path(port): Path<String>,
    bytes: Bytes,
) -> Response {
    l2pop_device(app, headers, port, bytes, true).await
}

async fn l2pop_device_down(
    State(app): State<App>,
    headers: HeaderMap,
    Path(port): Path<String>,
    bytes: Bytes,
) -> Response {
    l2pop_device(app, headers, port, bytes, false).await
}

/// `PUT /v2.0/l2pop/bgp-agents/{host}`: a BGP agent's state (up/down, restart).
async fn bgp_agent_report(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    bgp_agent_write(&app, &headers, "l2pop:bgp_agent", &host, |host| {
        let report: req::BgpAgentBody = body(json_body(&bytes)?, "bgp_agent")?;
        Ok(Request::BgpAgentReport(host, report))
    })
    .await
}

/// A write for BGP agent `host`, admin only under policy `rule`.
async fn bgp_agent_write(
    app: &App,
    headers: &HeaderMap,
    rule: &'static str,
    host: &str,
    build: impl FnOnce(Host) -> Result<Request, NeutronError>,
) -> Response {
    app.write(headers, StatusCode::OK, |caller| {
        caller.require_admin(rule)?;
        build(host_param(host)?)
    })
    .await
}

/// `POST /v2.0/l2pop/bgp-agents/{host}/gateways`: EVPN type-3 routes learned or withdrawn.
async fn bgp_gateways(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    bgp_agent_write(&app, &headers, "l2pop:bgp_routes", &host, |host| {
        let routes: GatewaysBody = whole_body(&bytes)?;
        Ok(Request::BgpGateways(GatewayRoutes {
            host,
            gateways: routes.gateways,
        }))
    })
    .await
}

/// `POST /v2.0/l2pop/bgp-agents/{host}/devices`: EVPN type-2 routes learned or withdrawn.
async fn bgp_devices(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    bgp_agent_write(&app, &headers, "l2pop:bgp_routes", &host, |host| {
        let routes: DevicesBody = whole_body(&bytes)?;
        Ok(Request::BgpDevices(DeviceRoutes {
            host,
            devices: routes.devices,
        }))
    })
    .await
}

/// `POST /v2.0/l2pop/bgp-agents/{host}/end-of-rib`: after a graceful restart, the agent
/// re-learned what it will; its routes still stale are purged. The body is empty or `{}`.
async fn bgp_end_of_rib(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    bgp_agent_write(&app, &headers, "l2pop:bgp_routes", &host, |host| {
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            let Empty {} = whole_body(&bytes)?;
        }
        Ok(Request::BgpEndOfRib(host))
    })
    .await
}

/// `GET /v2.0/l2pop/hosts/{host}/fdb`: the host's desired table with provenance.
async fn host_fdb(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
) -> Response {
    app.query(&headers, || Ok(Query::HostFdb(host_param(&host)?)))
        .await
}

// ---- l2pop: routers (the L3-agent hosts of HA routers) ----

/// `PUT /v2.0/l2pop/routers/{id}`: creates or replaces the router's hosts.
async fn l2pop_router_put(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, |caller| {
        caller.require_admin(ROUTER_RULE)?;
        let id: RouterId = path_id("router", &id)?;
        let router: RouterBody = body(json_body(&bytes)?, "router")?;
        Ok(Request::RouterPut(router.record(id)?))
    })
    .await
}

async fn l2pop_router_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, |caller| {
        caller.require_admin(ROUTER_RULE)?;
        Ok(Request::RouterDelete(path_id("router", &id)?))
    })
    .await
}

/// The `/v2.0/l2pop` rows of the route table ([`super::routes`]).
pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            "POST",
            "/v2.0/l2pop/agents",
            "An L2 agent's report_state",
            Some("agent"),
            post(l2pop_agent_report),
        ),
        route(
            "POST",
            "/v2.0/l2pop/devices/{port_id}/up",
            "update_device_up (refresh_tunnels)",
            Some("device"),
            post(l2pop_device_up),
        ),
        route(
            "POST",
            "/v2.0/l2pop/devices/{port_id}/down",
            "update_device_down",
            Some("device"),
            post(l2pop_device_down),
        ),
        route(
            "PUT",
            "/v2.0/l2pop/bgp-agents/{host}",
            "A BGP agent's state (alive, admin_state_up, start_flag, graceful_restart)",
            Some("bgp_agent"),
            put(bgp_agent_report),
        ),
        route(
            "POST",
            "/v2.0/l2pop/bgp-agents/{host}/gateways",
            "EVPN type-3 routes learned or withdrawn",
            Some("gateways"),
            post(bgp_gateways),
        ),
        route(
            "POST",
            "/v2.0/l2pop/bgp-agents/{host}/devices",
            "EVPN type-2 routes learned or withdrawn",
            Some("devices"),
            post(bgp_devices),
        ),
        route(
            "POST",
            "/v2.0/l2pop/bgp-agents/{host}/end-of-rib",
            "End-of-RIB after a graceful restart: the agent's routes still stale are purged",
            None,
            post(bgp_end_of_rib),
        ),
        route(
            "GET",
            "/v2.0/l2pop/routers",
            "Routers and the hosts of their L3 agents (admin)",
            None,
            get(resource::list::<Routers>),
        ),
        route(
            "GET",
            "/v2.0/l2pop/routers/{id}",
            "Show a router's hosts (admin)",
            None,
            get(resource::show::<Routers>),
        ),
        route(
            "PUT",
            "/v2.0/l2pop/routers/{id}",
            "Create or replace a router's hosts: every L3 agent hosting it (admin)",
            Some("router"),
            put(l2pop_router_put),
        ),
        route(
            "DELETE",
            "/v2.0/l2pop/routers/{id}",
            "Forget a router (admin)",
            None,
            delete(l2pop_router_delete),
        ),
        route(
            "GET",
            "/v2.0/l2pop/hosts/{host}/fdb",
            "A host's desired FDB with the provenance of every entry",
            None,
            get(host_fdb),
        ),
    ]
}
