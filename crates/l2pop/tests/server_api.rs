//! The REST API against an in-process server (SQLite in a temporary directory, in-memory bus):
//! Neutron's shapes, errors that name the field and value and change nothing, tokens and
//! projects, the BGPVPN resources, the desired FDB with provenance, and a restart that
//! rebuilds exactly the same state from the log.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN, ALICE, BOB, TestServer};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("l2pop.db").display())
}

/// Two agents, one network with a subnet, and one bound port per host, up.
async fn small_topology(server: &TestServer) -> (String, Vec<String>) {
    for (host, ip) in [("compute-1", "192.0.2.1"), ("compute-2", "192.0.2.2")] {
        server
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"], "start_flag": true}})),
            )
            .await;
    }
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "net1", "project_id": "alice", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network_id, "cidr": "10.0.0.0/24", "project_id": "alice"}})),
        )
        .await;
    let mut ports = Vec::new();
    for (n, host) in ["compute-1", "compute-2"].iter().enumerate() {
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network_id, "name": format!("vm{n}"), "project_id": "alice",
                                      "mac_address": format!("fa:16:3e:00:00:0{}", n + 1),
                                      "binding:host_id": host, "device_owner": "compute:nova"}})),
            )
            .await;
        let id = port["port"]["id"].as_str().unwrap().to_owned();
        server
            .admin(
                Method::POST,
                &format!("/v2.0/l2pop/devices/{id}/up"),
                Some(json!({"device": {"host": host}})),
            )
            .await;
        ports.push(id);
    }
    (network_id, ports)
}

#[tokio::test]
async fn neutron_shaped_resources_and_fdb_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (network_id, ports) = small_topology(&server).await;

    let network = server
        .admin(Method::GET, &format!("/v2.0/networks/{network_id}"), None)
        .await;
    assert_eq!(network["network"]["provider:network_type"], "vxlan");
    assert_eq!(network["network"]["provider:segmentation_id"], 1001);
    assert_eq!(network["network"]["tenant_id"], "alice");
    assert_eq!(network["network"]["subnets"].as_array().unwrap().len(), 1);

    let port = server
        .admin(Method::GET, &format!("/v2.0/ports/{}", ports[0]), None)
        .await;
    assert_eq!(port["port"]["status"], "ACTIVE");
    assert_eq!(port["port"]["binding:host_id"], "compute-1");
    assert_eq!(port["port"]["mac_address"], "fa:16:3e:00:00:01");
    // The first address after the gateway (10.0.0.1) is allocated.
    assert_eq!(port["port"]["fixed_ips"][0]["ip_address"], "10.0.0.2");

    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    let networks = fdb["fdb"]["networks"].as_array().unwrap();
    assert_eq!(networks.len(), 1);
    assert_eq!(networks[0]["segment_id"], 1001);
    let vtep = &networks[0]["vteps"][0];
    assert_eq!(vtep["vtep"], "192.0.2.2");
    assert_eq!(
        vtep["entries"],
        json!([
            {"mac_address": "00:00:00:00:00:00", "ip_address": "0.0.0.0", "source": {"host": "compute-2"}},
            {"mac_address": "fa:16:3e:00:00:02", "ip_address": "10.0.0.3", "source": {"port": ports[1]}},
        ])
    );

    let agents = server.admin(Method::GET, "/v2.0/agents", None).await;
    assert_eq!(agents["agents"].as_array().unwrap().len(), 2);
    // Listed in id order, as every collection (Neutron pages by id).
    let first = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["host"] == "compute-1")
        .unwrap();
    assert_eq!(first["configurations"]["tunneling_ip"], "192.0.2.1");

    let filtered = server
        .admin(
            Method::GET,
            &format!("/v2.0/ports?network_id={network_id}&name=vm1"),
            None,
        )
        .await;
    assert_eq!(filtered["ports"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_names_field_and_value_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (network_id, _) = small_topology(&server).await;
    let before = server.admin(Method::GET, "/v2.0/ports", None).await;

    let cases = [
        (
            json!({"port": {"network_id": network_id, "mac_address": "fa:16:3e:zz:00:01"}}),
            "mac_address",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.9.9.9"}]}}),
            "fixed_ips",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"port": {"network_id": network_id, "colour": "blue"}}),
            "colour",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"port": {"network_id": network_id, "mac_address": "fa:16:3e:00:00:01"}}),
            "mac_address",
            StatusCode::CONFLICT,
        ),
        (
            json!({"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.0.0.2"}]}}),
            "fixed_ips",
            StatusCode::CONFLICT,
        ),
    ];
    for (body, field, status) in cases {
        let (got, error) = server
            .call(Some(ADMIN), Method::POST, "/v2.0/ports", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {error}");
        let message = error["NeutronError"]["message"].as_str().unwrap();
        assert_eq!(error["NeutronError"]["field"], field, "{body}: {error}");
        assert!(!message.is_empty());
    }
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["NeutronError"]["field"], "provider:segmentation_id");
    let (status, error) = server
        .call(Some(ADMIN), Method::POST, "/v2.0/networks", Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": "x"}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["NeutronError"]["field"], "provider:segmentation_id");
    assert_eq!(error["NeutronError"]["value"], "x");
    let (status, _) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/ports",
            Some(json!("not an object")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::DELETE,
            &format!("/v2.0/networks/{network_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["NeutronError"]["type"], "NetworkInUse");
    let (status, error) = server
        .call(Some(ADMIN), Method::GET, "/v2.0/ports/not-a-uuid", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");

    let after = server.admin(Method::GET, "/v2.0/ports", None).await;
    assert_eq!(before, after, "a refused request changed something");
    server.stop().await;
}

#[tokio::test]
async fn tokens_and_projects() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (network_id, _) = small_topology(&server).await;

    let (status, _) = server.call(None, Method::GET, "/v2.0/networks", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(Some("nope"), Method::GET, "/v2.0/networks", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Alice sees her network without the admin-only provider attributes; Bob does not see it.
    let (status, alice) = server
        .call(
            Some(ALICE),
            Method::GET,
            &format!("/v2.0/networks/{network_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(alice["network"].get("provider:segmentation_id").is_none());
    let (status, _) = server
        .call(
            Some(BOB),
            Method::GET,
            &format!("/v2.0/networks/{network_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = server
        .call(Some(BOB), Method::GET, "/v2.0/networks", None)
        .await;
    assert_eq!(listed["networks"], json!([]));
    let (status, _) = server
        .call(
            Some(BOB),
            Method::DELETE,
            &format!("/v2.0/networks/{network_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Projects may not set provider attributes nor bind ports nor act for another project.
    let (status, error) = server
        .call(
            Some(BOB),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, _) = server
        .call(
            Some(BOB),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"project_id": "alice"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, created) = server
        .call(
            Some(BOB),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "bobnet"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["network"]["project_id"], "bob");
    let bob_net = created["network"]["id"].as_str().unwrap();
    let (status, _) = server
        .call(
            Some(BOB),
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": bob_net, "binding:host_id": "compute-1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A project network gets a VXLAN segment from the tenant range (1001 is taken: the lowest free one).
    let (_, shown) = server
        .call(
            Some(ADMIN),
            Method::GET,
            &format!("/v2.0/networks/{bob_net}"),
            None,
        )
        .await;
    assert_eq!(shown["network"]["provider:segmentation_id"], 1);

    // BGPVPN create is admin-only; route targets are hidden from projects.
    let (status, _) = server
        .call(
            Some(ALICE),
            Method::POST,
            "/v2.0/bgpvpn/bgpvpns",
            Some(json!({"bgpvpn": {"type": "l2"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let vpn = server
        .admin(
            Method::POST,
            "/v2.0/bgpvpn/bgpvpns",
            Some(json!({"bgpvpn": {"type": "l2", "route_targets": ["64512:1001"], "project_id": "alice"}})),
        )
        .await;
    let vpn_id = vpn["bgpvpn"]["id"].as_str().unwrap();
    let (status, seen) = server
        .call(
            Some(ALICE),
            Method::GET,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(seen["bgpvpn"].get("route_targets").is_none());
    let (status, _) = server
        .call(
            Some(ALICE),
            Method::PUT,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}"),
            Some(json!({"bgpvpn": {"route_targets": ["64512:1"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, renamed) = server
        .call(
            Some(ALICE),
            Method::PUT,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}"),
            Some(json!({"bgpvpn": {"name": "site-a"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    // The owner associates her own network.
    let (status, association) = server
        .call(
            Some(ALICE),
            Method::POST,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}/network_associations"),
            Some(json!({"network_association": {"network_id": network_id}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{association}");
    let (status, _) = server
        .call(
            Some(BOB),
            Method::GET,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}/network_associations"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// A BGP speaker on a BGP agent, bound to an l2 BGPVPN associated with the network: the
/// devices its agent learned appear in every host's FDB, marked as the extension's.
#[tokio::test]
async fn bgpvpn_devices_reach_the_fdb_with_the_extension_as_source() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (network_id, _) = small_topology(&server).await;
    let vpn = server
        .admin(
            Method::POST,
            "/v2.0/bgpvpn/bgpvpns",
            Some(json!({"bgpvpn": {"type": "l2", "route_targets": ["64512:1001"], "vni": 1001}})),
        )
        .await;
    let vpn_id = vpn["bgpvpn"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}/network_associations"),
            Some(json!({"network_association": {"network_id": network_id}})),
        )
        .await;
    let agent = server
        .admin(
            Method::PUT,
            "/v2.0/l2pop/bgp-agents/bgp-1",
            Some(json!({"bgp_agent": {"start_flag": true}})),
        )
        .await;
    let agent_id = agent["agent"]["id"].as_str().unwrap().to_owned();
    let speaker = server
        .admin(
            Method::POST,
            "/v2.0/bgp-speakers",
            Some(json!({"bgp_speaker": {"name": "s1", "local_as": 64512}})),
        )
        .await;
    let speaker_id = speaker["bgp_speaker"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            &format!("/v2.0/agents/{agent_id}/bgp-drinstances"),
            Some(json!({"bgp_speaker_id": speaker_id})),
        )
        .await;
    server
        .admin(
            Method::PUT,
            &format!("/v2.0/bgp-speakers/{speaker_id}/add_bgp_vpn"),
            Some(json!({"bgpvpn_id": vpn_id})),
        )
        .await;
    let (status, twice) = server
        .call(
            Some(ADMIN),
            Method::PUT,
            &format!("/v2.0/bgp-speakers/{speaker_id}/add_bgp_vpn"),
            Some(json!({"bgpvpn_id": vpn_id})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{twice}");
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/gateways",
            Some(json!({"gateways": [{"vtep": "203.0.113.1", "route_targets": ["64512:1001"], "vni": 1001}]})),
        )
        .await;
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/devices",
            Some(json!({"devices": [{"mac": "52:54:00:00:00:01", "ip": "10.0.0.100", "vtep": "203.0.113.1", "route_targets": ["64512:1001"], "vni": 1001}]})),
        )
        .await;
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    let vteps = fdb["fdb"]["networks"][0]["vteps"].as_array().unwrap();
    let site = vteps.iter().find(|v| v["vtep"] == "203.0.113.1").unwrap();
    assert_eq!(
        site["entries"],
        json!([
            {"mac_address": "00:00:00:00:00:00", "ip_address": "0.0.0.0", "source": {"extension": "bgpvpn"}},
            {"mac_address": "52:54:00:00:00:01", "ip_address": "10.0.0.100", "source": {"extension": "bgpvpn"}},
        ])
    );
    // Bad route input names the field; nothing changes.
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/devices",
            Some(json!({"devices": [{"mac": "nope", "vtep": "203.0.113.1"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["NeutronError"]["field"]
            .as_str()
            .unwrap()
            .contains("mac"),
        "{error}"
    );
    // Disassociating the speaker withdraws the site.
    server
        .admin(
            Method::PUT,
            &format!("/v2.0/bgp-speakers/{speaker_id}/remove_bgp_vpn"),
            Some(json!({"bgpvpn_id": vpn_id})),
        )
        .await;
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    let vteps = fdb["fdb"]["networks"][0]["vteps"].as_array().unwrap();
    assert!(vteps.iter().all(|v| v["vtep"] != "203.0.113.1"), "{fdb}");
    server.stop().await;
}

/// Neutron's bulk create: `{"ports": [...]}` answers 201 `{"ports": [...]}`, all or none; a
/// refused item is named by index, field and value; an accepted bulk survives a restart.
#[tokio::test]
async fn bulk_create_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let server = TestServer::start(&url).await;
    let (network_id, _) = small_topology(&server).await;
    let before = server.admin(Method::GET, "/v2.0/ports", None).await;
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/ports",
            Some(json!({"ports": [
                {"network_id": network_id, "name": "b0"},
                {"network_id": network_id, "name": "b1"},
                {"network_id": network_id, "name": "b2", "fixed_ips": [{"ip_address": "10.9.9.9"}]},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(
        error["NeutronError"]["field"], "ports[2].fixed_ips",
        "{error}"
    );
    assert_eq!(error["NeutronError"]["value"], "10.9.9.9", "{error}");
    let after = server.admin(Method::GET, "/v2.0/ports", None).await;
    assert_eq!(before, after, "a refused bulk created something");

    let (status, created) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/ports",
            Some(json!({"ports": [
                {"network_id": network_id, "name": "b0"},
                {"network_id": network_id, "name": "b1"},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let ports = created["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{created}");
    assert_ne!(ports[0]["fixed_ips"], ports[1]["fixed_ips"]);
    let (status, networks) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"networks": [{"name": "x"}, {"name": "y"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{networks}");
    assert_eq!(networks["networks"].as_array().unwrap().len(), 2);
    let before = snapshot(&server).await;
    server.stop().await;
    let server = TestServer::start(&url).await;
    assert_eq!(before, snapshot(&server).await);
    server.stop().await;
}

/// Everything acknowledged is in the log: a restarted server answers exactly as before.
#[tokio::test]
async fn restart_rebuilds_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let server = TestServer::start(&url).await;
    let (_, ports) = small_topology(&server).await;
    server
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{}/down", ports[1]),
            Some(json!({"device": {"host": "compute-2"}})),
        )
        .await;
    // An operator's agent update is logged too (Neutron's `openstack network agent set`).
    let agents = server.admin(Method::GET, "/v2.0/agents", None).await;
    let agent_id = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v2.0/agents/{agent_id}");
    let updated = server
        .admin(
            Method::PUT,
            &path,
            Some(json!({"agent": {"admin_state_up": false, "description": "drained"}})),
        )
        .await;
    assert_eq!(updated["agent"]["admin_state_up"], false, "{updated}");
    assert_eq!(updated["agent"]["description"], "drained");
    for (body, field, status) in [
        (
            json!({"agent": {"host": "x"}}),
            "host",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"agent": {"admin_state_up": 3}}),
            "admin_state_up",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, error) = server
            .call(Some(ADMIN), Method::PUT, &path, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {error}");
        assert_eq!(error["NeutronError"]["field"], field, "{body}: {error}");
    }
    let unknown = format!("/v2.0/agents/{}", uuid::Uuid::from_u128(7));
    let (got, error) = server
        .call(
            Some(ADMIN),
            Method::PUT,
            &unknown,
            Some(json!({"agent": {"admin_state_up": false}})),
        )
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND, "{error}");
    assert!(error["NeutronError"]["type"].is_string(), "{error}");
    let before = snapshot(&server).await;
    assert_eq!(before[3]["agents"][0]["description"], "drained");
    server.stop().await;
    let server = TestServer::start(&url).await;
    let after = snapshot(&server).await;
    assert_eq!(before, after);
    server.stop().await;
}

async fn snapshot(server: &TestServer) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/v2.0/networks",
        "/v2.0/subnets",
        "/v2.0/ports",
        "/v2.0/agents",
        "/v2.0/l2pop/hosts/compute-1/fdb",
        "/v2.0/l2pop/hosts/compute-2/fdb",
    ] {
        let mut listing = server.admin(Method::GET, path, None).await;
        // Heartbeats are not logged: a restarted server counts every agent as heard from at
        // its takeover (one down time of grace), so the timestamp is the one thing that moves.
        for agent in listing["agents"].as_array_mut().into_iter().flatten() {
            agent.as_object_mut().unwrap().remove("heartbeat_timestamp");
        }
        all.push(listing);
    }
    all
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    for route in l2pop::server::api::routes() {
        let (method, path) = (route.doc.method, route.doc.path);
        let concrete = path
            .replace("{id}", "00000000-0000-0000-0000-000000000001")
            .replace("{association_id}", "00000000-0000-0000-0000-000000000002")
            .replace("{speaker_id}", "00000000-0000-0000-0000-000000000003")
            .replace("{port_id}", "00000000-0000-0000-0000-000000000004")
            .replace("{host}", "compute-9");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = server.call(None, method.clone(), &concrete, None).await;
        if route.doc.open {
            assert_eq!(status, StatusCode::OK, "{method} {path}: {body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
    let document = server.admin(Method::GET, "/openapi.json", None).await;
    assert_eq!(document["openapi"], "3.1.0");
    small_topology(&server).await;
    let response = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for metric in [
        "l2pop_events_applied_total",
        "l2pop_notifications_total",
        "l2pop_api_request_duration_seconds",
    ] {
        assert!(response.contains(metric), "{metric} missing from /metrics");
    }
    server.stop().await;
}

/// Neutron's `max_fixed_ips_per_port` (5 by default, configurable): more are refused with a
/// 400 naming the field and the count. Below the cap, allocation is linear in the request:
/// 4,000 addresses in one request (cap raised) are allocated distinct and in order. Before,
/// any number was accepted and each further address rescanned the ones before it (about k^3:
/// k = 4,800 held the owner 26 s).
#[tokio::test]
async fn fixed_ips_per_port_are_capped_and_allocated_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (network_id, _) = small_topology(&server).await;
    let (_, subnets) = server
        .call(Some(ADMIN), Method::GET, "/v2.0/subnets", None)
        .await;
    let subnet_id = subnets["subnets"][0]["id"].as_str().unwrap().to_owned();
    let request = |n: usize| {
        json!({"port": {"network_id": network_id,
            "fixed_ips": (0..n).map(|_| json!({"subnet_id": subnet_id})).collect::<Vec<_>>()}})
    };
    let (status, body) = server
        .call(Some(ADMIN), Method::POST, "/v2.0/ports", Some(request(6)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["NeutronError"]["field"], "fixed_ips", "{body}");
    assert_eq!(body["NeutronError"]["value"], "6", "{body}");
    let port = server
        .admin(Method::POST, "/v2.0/ports", Some(request(5)))
        .await;
    assert_eq!(port["port"]["fixed_ips"].as_array().unwrap().len(), 5);
    let id = port["port"]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call(
            Some(ADMIN),
            Method::PUT,
            &format!("/v2.0/ports/{id}"),
            Some(json!({"port": {"fixed_ips": (0..6).map(|_| json!({"subnet_id": subnet_id})).collect::<Vec<_>>()}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;

    // Raised: a large request on a /16 is allocated in one pass.
    let dir = tempfile::tempdir().unwrap();
    let toml = support::config(&sqlite_url(&dir), "backend = \"memory\"")
        + "[ports]\nmax_fixed_ips_per_port = 4000\n";
    let server = TestServer::start_with(&toml).await;
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "big"}})),
        )
        .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    let subnet = server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network_id, "cidr": "10.8.0.0/16"}})),
        )
        .await;
    let subnet_id = subnet["subnet"]["id"].as_str().unwrap().to_owned();
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id,
                "fixed_ips": (0..4000).map(|_| json!({"subnet_id": subnet_id})).collect::<Vec<_>>()}})),
        )
        .await;
    let ips: Vec<&str> = port["port"]["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ip_address"].as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<_> = ips.iter().collect();
    assert_eq!((ips.len(), distinct.len()), (4000, 4000));
    server.stop().await;
}

/// An integration that keeps its own ids (the ML2 driver sends Neutron's) may name a new
/// network, subnet or port: admin only, and an id in use is a 409 naming it.
#[tokio::test]
async fn the_admin_may_choose_ids_and_a_taken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let network_id = "6f1c3e2a-0000-4000-8000-000000000001";
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"id": network_id, "name": "n"}})),
        )
        .await;
    assert_eq!(network["network"]["id"], network_id);
    let subnet = server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"id": "6f1c3e2a-0000-4000-8000-000000000002", "network_id": network_id, "cidr": "10.1.0.0/24"}})),
        )
        .await;
    assert_eq!(
        subnet["subnet"]["id"],
        "6f1c3e2a-0000-4000-8000-000000000002"
    );
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"id": "6f1c3e2a-0000-4000-8000-000000000003", "network_id": network_id}})),
        )
        .await;
    assert_eq!(port["port"]["id"], "6f1c3e2a-0000-4000-8000-000000000003");
    // Taken by a resource of any kind.
    for (path, body) in [
        ("/v2.0/networks", json!({"network": {"id": network_id}})),
        (
            "/v2.0/ports",
            json!({"port": {"id": network_id, "network_id": network_id}}),
        ),
    ] {
        let (status, error) = server
            .call(Some(ADMIN), Method::POST, path, Some(body))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {error}");
        assert_eq!(error["NeutronError"]["field"], "id");
        assert_eq!(error["NeutronError"]["value"], network_id);
    }
    let (status, error) = server
        .call(
            Some(ALICE),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"id": "6f1c3e2a-0000-4000-8000-000000000009"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let networks = server.admin(Method::GET, "/v2.0/networks", None).await;
    assert_eq!(networks["networks"].as_array().unwrap().len(), 1);
}

/// What keystoneauth and the `openstack` CLI read first (issue 12 item 4): the version document
/// at `/` without a token, the collections at `/v2.0/`, and the extensions l2pop implements.
#[tokio::test]
async fn version_documents_and_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (status, versions) = server.call(None, Method::GET, "/", None).await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    assert_eq!(versions["versions"][0]["id"], "v2.0");
    assert_eq!(versions["versions"][0]["status"], "CURRENT");
    let href = versions["versions"][0]["links"][0]["href"]
        .as_str()
        .unwrap();
    assert!(href.ends_with("/v2.0/"), "{href}");

    for path in ["/v2.0", "/v2.0/"] {
        let (status, _) = server.call(None, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let resources = server.admin(Method::GET, path, None).await;
        let collections: Vec<&str> = resources["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["collection"].as_str().unwrap())
            .collect();
        assert!(collections.contains(&"ports"), "{resources}");
    }

    let (status, listing) = server
        .call(Some(ALICE), Method::GET, "/v2.0/extensions", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    let aliases: Vec<&str> = listing["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    for alias in ["agent", "bgp", "bgpvpn", "binding", "provider"] {
        assert!(aliases.contains(&alias), "{alias} missing: {listing}");
    }
    assert!(!aliases.contains(&"security-group"), "{listing}");
    let binding = server
        .admin(Method::GET, "/v2.0/extensions/binding", None)
        .await;
    assert_eq!(binding["extension"]["alias"], "binding");
    assert!(binding["extension"]["updated"].is_string());
    assert!(binding["extension"]["links"].is_array());
    let (status, missing) = server
        .call(Some(ADMIN), Method::GET, "/v2.0/extensions/qos", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["NeutronError"]["type"], "HTTPNotFound");
    assert_eq!(
        missing["NeutronError"]["message"],
        "Extension with alias qos does not exist"
    );
    server.stop().await;
}

/// `DELETE /v2.0/subnets/{id}`: refused with 409 `SubnetInUse` while a port has an address in
/// it (nothing changes), then deleted; its range may be used again.
#[tokio::test]
async fn a_subnet_is_deleted_once_no_port_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (network_id, ports) = small_topology(&server).await;
    let network = server
        .admin(Method::GET, &format!("/v2.0/networks/{network_id}"), None)
        .await;
    let subnet_id = network["network"]["subnets"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::DELETE,
            &format!("/v2.0/subnets/{subnet_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["NeutronError"]["type"], "SubnetInUse");
    server
        .admin(Method::GET, &format!("/v2.0/subnets/{subnet_id}"), None)
        .await;
    let (status, _) = server
        .call(
            Some(BOB),
            Method::DELETE,
            &format!("/v2.0/subnets/{subnet_id}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another project's subnet is hidden"
    );
    for port in &ports {
        server
            .admin(Method::DELETE, &format!("/v2.0/ports/{port}"), None)
            .await;
    }
    let (status, _) = server
        .call(
            Some(ADMIN),
            Method::DELETE,
            &format!("/v2.0/subnets/{subnet_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Some(ADMIN),
            Method::GET,
            &format!("/v2.0/subnets/{subnet_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let network = server
        .admin(Method::GET, &format!("/v2.0/networks/{network_id}"), None)
        .await;
    assert_eq!(network["network"]["subnets"], json!([]));
    server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network_id, "cidr": "10.0.0.0/16"}})),
        )
        .await;
    server.stop().await;
}

/// `/v2.0/segments` as Neutron's segments extension (admin only, filters and paging); deleting
/// a network's first segment moves it, and its ports' entries, to the next once no port is
/// bound; a restart replays the same segments.
#[tokio::test]
async fn segments_are_admin_only_and_the_first_one_serves_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let server = TestServer::start(&url).await;
    let (network_id, ports) = small_topology(&server).await;
    let created = server
        .admin(
            Method::POST,
            "/v2.0/segments",
            Some(json!({"segment": {"network_id": network_id, "network_type": "vxlan", "segmentation_id": "2001", "name": "second"}})),
        )
        .await;
    assert_eq!(created["segment"]["segment_index"], 1, "{created}");
    assert_eq!(created["segment"]["segmentation_id"], 2001);
    let second = created["segment"]["id"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (Method::GET, "/v2.0/segments".to_owned(), None),
        (Method::GET, format!("/v2.0/segments/{second}"), None),
        (
            Method::POST,
            "/v2.0/segments".to_owned(),
            Some(json!({"segment": {"network_id": network_id, "network_type": "vxlan"}})),
        ),
        (Method::DELETE, format!("/v2.0/segments/{second}"), None),
    ] {
        let (status, error) = server.call(Some(ALICE), method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {error}");
    }
    // Refusals name the field and value and change nothing.
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/segments",
            Some(json!({"segment": {"network_id": network_id, "network_type": "vxlan", "segmentation_id": 2001}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["NeutronError"]["field"], "segmentation_id");
    assert_eq!(error["NeutronError"]["value"], 2001);
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 2001}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    // Listing: a filter, a sort key and paging.
    let page = server
        .admin(
            Method::GET,
            &format!(
                "/v2.0/segments?network_id={network_id}&sort_key=segment_index&sort_dir=desc&limit=1"
            ),
            None,
        )
        .await;
    assert_eq!(page["segments"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["segments"][0]["id"], second.as_str());
    assert_eq!(page["segments_links"][0]["rel"], "next", "{page}");
    let all = server
        .admin(
            Method::GET,
            &format!("/v2.0/segments?network_id={network_id}&sort_key=segment_index"),
            None,
        )
        .await;
    let first = all["segments"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(all["segments"][0]["segmentation_id"], 1001, "{all}");
    assert_eq!(all["segments"].as_array().unwrap().len(), 2);
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::DELETE,
            &format!("/v2.0/segments/{first}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["NeutronError"]["type"], "SegmentInUse");
    for port in &ports {
        server
            .admin(Method::DELETE, &format!("/v2.0/ports/{port}"), None)
            .await;
    }
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::DELETE,
            &format!("/v2.0/segments/{first}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{error}");
    let network = server
        .admin(Method::GET, &format!("/v2.0/networks/{network_id}"), None)
        .await;
    assert_eq!(network["network"]["provider:segmentation_id"], 2001);
    for (n, host) in ["compute-1", "compute-2"].iter().enumerate() {
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network_id, "mac_address": format!("fa:16:3e:00:01:0{n}"), "binding:host_id": host}})),
            )
            .await;
        let id = port["port"]["id"].as_str().unwrap();
        server
            .admin(
                Method::POST,
                &format!("/v2.0/l2pop/devices/{id}/up"),
                Some(json!({"device": {"host": host}})),
            )
            .await;
    }
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    assert_eq!(fdb["fdb"]["networks"][0]["segment_id"], 2001, "{fdb}");
    // 1001 is free again.
    server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    let extensions = server.admin(Method::GET, "/v2.0/extensions", None).await;
    assert!(
        extensions["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["alias"] == "segment"),
        "{extensions}"
    );
    let before = server.admin(Method::GET, "/v2.0/segments", None).await;
    assert_eq!(before["segments"].as_array().unwrap().len(), 2, "{before}");
    server.stop().await;
    let server = TestServer::start(&url).await;
    let after = server.admin(Method::GET, "/v2.0/segments", None).await;
    assert_eq!(before, after);
    server.stop().await;
}

/// `/v2.0/l2pop/routers`: an HA router's hosts (issue 12, docs/openstack.md) carry its active
/// HA interface's flood to every other host (rule 12); a host leaving takes it back; bad input
/// names the field and value and changes nothing; a restart replays the routers from the log.
#[tokio::test]
async fn ha_router_hosts_reach_the_fdb_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let server = TestServer::start(&url).await;
    let (network_id, _) = small_topology(&server).await;
    for (host, ip) in [("l3-1", "192.0.2.11"), ("l3-2", "192.0.2.12")] {
        server
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"], "start_flag": true}})),
            )
            .await;
    }
    let router = "0a000000-0000-0000-0000-00000000000a";
    let path = format!("/v2.0/l2pop/routers/{router}");
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(
                json!({"port": {"network_id": network_id, "binding:host_id": "l3-1",
                "device_owner": "network:ha_router_replicated_interface", "device_id": router}}),
            ),
        )
        .await;
    let port = port["port"]["id"].as_str().unwrap().to_owned();
    let put = server
        .admin(
            Method::PUT,
            &path,
            Some(json!({"router": {"ha": true, "hosts": ["l3-2", "l3-1"]}})),
        )
        .await;
    assert_eq!(
        put,
        json!({"router": {"id": router, "ha": true, "hosts": ["l3-1", "l3-2"]}})
    );
    server
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{port}/up"),
            Some(json!({"device": {"host": "l3-1"}})),
        )
        .await;
    // Sorted as text.
    let vteps = |fdb: &Value| -> Vec<String> {
        let mut vteps: Vec<String> = fdb["fdb"]["networks"][0]["vteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["vtep"].as_str().unwrap().to_owned())
            .collect();
        vteps.sort();
        vteps
    };
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    assert_eq!(vteps(&fdb), ["192.0.2.11", "192.0.2.12", "192.0.2.2"]);

    // Bad input: named, and nothing changes.
    for (body, field) in [
        (json!({"router": {"ha": "yes", "hosts": []}}), "ha"),
        (
            json!({"router": {"ha": true, "hosts": ["l3 1"]}}),
            "hosts[0]",
        ),
        (
            json!({"router": {"ha": true, "hosts": ["l3-1", "l3-1"]}}),
            "hosts[1]",
        ),
        (
            json!({"router": {"ha": true, "hosts": [], "distributed": false}}),
            "distributed",
        ),
    ] {
        let (status, error) = server
            .call(Some(ADMIN), Method::PUT, &path, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["NeutronError"]["field"], field, "{body}: {error}");
    }
    let (status, _) = server
        .call(
            Some(ALICE),
            Method::PUT,
            &path,
            Some(json!({"router": {"ha": true, "hosts": []}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.admin(Method::GET, &path, None).await, put);

    // l3-2 leaves.
    server
        .admin(
            Method::PUT,
            &path,
            Some(json!({"router": {"ha": true, "hosts": ["l3-1"]}})),
        )
        .await;
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    assert_eq!(vteps(&fdb), ["192.0.2.11", "192.0.2.2"]);
    let listed = server
        .admin(Method::GET, "/v2.0/l2pop/routers?hosts=l3-1", None)
        .await;
    assert_eq!(listed["routers"][0]["hosts"], json!(["l3-1"]));

    // A restart replays the routers.
    let before = (
        server.admin(Method::GET, "/v2.0/l2pop/routers", None).await,
        fdb,
    );
    server.stop().await;
    let server = TestServer::start(&url).await;
    let after = (
        server.admin(Method::GET, "/v2.0/l2pop/routers", None).await,
        server
            .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
            .await,
    );
    assert_eq!(before, after);

    // Delete: the interface counts nowhere; the router is gone.
    let (status, _) = server.call(Some(ADMIN), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = server.call(Some(ADMIN), Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["NeutronError"]["type"], "RouterNotFound");
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    assert_eq!(vteps(&fdb), ["192.0.2.2"]);
    server.stop().await;
}
