//! The OpenAPI 3.1 document served at `/openapi.json`, built from the route table of
//! [`super::api::ROUTES`] (a test checks that every route is documented and nothing else).

use serde_json::{Map, Value, json};

use super::api::ROUTES;

/// `(method, path) → (summary, request body key)`.
fn describe(method: &str, path: &str) -> (&'static str, Option<&'static str>) {
    match (method, path) {
        ("GET", "/v2.0/networks") => ("List networks (filters: any attribute)", None),
        ("POST", "/v2.0/networks") => ("Create a network (provider:* admin-only)", Some("network")),
        ("GET", "/v2.0/networks/{id}") => ("Show a network", None),
        ("PUT", "/v2.0/networks/{id}") => {
            ("Update name, description, admin_state_up", Some("network"))
        }
        ("DELETE", "/v2.0/networks/{id}") => ("Delete a network without ports", None),
        ("GET", "/v2.0/subnets") => ("List subnets", None),
        ("POST", "/v2.0/subnets") => ("Create a subnet", Some("subnet")),
        ("GET", "/v2.0/subnets/{id}") => ("Show a subnet", None),
        ("PUT", "/v2.0/subnets/{id}") => ("Rename a subnet", Some("subnet")),
        ("GET", "/v2.0/ports") => ("List ports (filters: network_id, device_id, ...)", None),
        ("POST", "/v2.0/ports") => ("Create a port (binding:host_id admin-only)", Some("port")),
        ("GET", "/v2.0/ports/{id}") => ("Show a port", None),
        ("PUT", "/v2.0/ports/{id}") => ("Update a port (bind, move, change IPs)", Some("port")),
        ("DELETE", "/v2.0/ports/{id}") => ("Delete a port", None),
        ("GET", "/v2.0/agents") => ("List L2 and BGP agents (admin)", None),
        ("GET", "/v2.0/agents/{id}") => ("Show an agent (admin)", None),
        ("GET", "/v2.0/agents/{id}/bgp-drinstances") => ("Speakers hosted by a BGP agent", None),
        ("POST", "/v2.0/agents/{id}/bgp-drinstances") => {
            ("Host a speaker on a BGP agent", Some("bgp_speaker_id"))
        }
        ("DELETE", "/v2.0/agents/{id}/bgp-drinstances/{speaker_id}") => {
            ("Stop hosting a speaker", None)
        }
        ("GET", "/v2.0/bgpvpn/bgpvpns") => ("List BGPVPNs", None),
        ("POST", "/v2.0/bgpvpn/bgpvpns") => ("Create a BGPVPN (admin)", Some("bgpvpn")),
        ("GET", "/v2.0/bgpvpn/bgpvpns/{id}") => ("Show a BGPVPN", None),
        ("PUT", "/v2.0/bgpvpn/bgpvpns/{id}") => {
            ("Update a BGPVPN (route targets admin-only)", Some("bgpvpn"))
        }
        ("DELETE", "/v2.0/bgpvpn/bgpvpns/{id}") => ("Delete a BGPVPN (admin)", None),
        ("GET", "/v2.0/bgpvpn/bgpvpns/{id}/network_associations") => {
            ("List network associations", None)
        }
        ("POST", "/v2.0/bgpvpn/bgpvpns/{id}/network_associations") => {
            ("Associate a network", Some("network_association"))
        }
        ("GET", "/v2.0/bgpvpn/bgpvpns/{id}/network_associations/{association_id}") => {
            ("Show a network association", None)
        }
        ("DELETE", "/v2.0/bgpvpn/bgpvpns/{id}/network_associations/{association_id}") => {
            ("Dissociate a network", None)
        }
        ("GET", "/v2.0/bgp-speakers") => ("List BGP speakers (admin)", None),
        ("POST", "/v2.0/bgp-speakers") => ("Create a BGP speaker (admin)", Some("bgp_speaker")),
        ("GET", "/v2.0/bgp-speakers/{id}") => ("Show a BGP speaker", None),
        ("PUT", "/v2.0/bgp-speakers/{id}") => ("Rename a BGP speaker", Some("bgp_speaker")),
        ("DELETE", "/v2.0/bgp-speakers/{id}") => ("Delete a BGP speaker", None),
        ("PUT", "/v2.0/bgp-speakers/{id}/add_bgp_vpn") => {
            ("Bind a BGPVPN to the speaker", Some("bgpvpn_id"))
        }
        ("PUT", "/v2.0/bgp-speakers/{id}/remove_bgp_vpn") => {
            ("Unbind a BGPVPN from the speaker", Some("bgpvpn_id"))
        }
        ("POST", "/v2.0/l2pop/agents") => ("An L2 agent's report_state", Some("agent")),
        ("POST", "/v2.0/l2pop/devices/{port_id}/up") => {
            ("update_device_up (refresh_tunnels)", Some("device"))
        }
        ("POST", "/v2.0/l2pop/devices/{port_id}/down") => ("update_device_down", Some("device")),
        ("PUT", "/v2.0/l2pop/bgp-agents/{host}") => (
            "A BGP agent's state (alive, admin_state_up, start_flag)",
            Some("bgp_agent"),
        ),
        ("POST", "/v2.0/l2pop/bgp-agents/{host}/gateways") => {
            ("EVPN type-3 routes learned or withdrawn", Some("gateways"))
        }
        ("POST", "/v2.0/l2pop/bgp-agents/{host}/devices") => {
            ("EVPN type-2 routes learned or withdrawn", Some("devices"))
        }
        ("GET", "/v2.0/l2pop/hosts/{host}/fdb") => (
            "A host's desired FDB with the provenance of every entry",
            None,
        ),
        ("GET", "/metrics") => ("Prometheus metrics", None),
        ("GET", "/healthz") => ("active or standby", None),
        ("GET", "/openapi.json") => ("This document", None),
        _ => ("", None),
    }
}

pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path) in ROUTES {
        let (summary, request) = describe(method, path);
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let open = matches!(*path, "/metrics" | "/healthz" | "/openapi.json");
        let mut operation = json!({
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK"},
                "201": {"description": "Created"},
                "204": {"description": "Deleted"},
                "400": {"description": "Invalid input: NeutronError names the field and the value", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NeutronError"}}}},
                "401": {"description": "No or unknown X-Auth-Token"},
                "403": {"description": "Disallowed by policy"},
                "404": {"description": "Not found (or not visible to the project)"},
                "409": {"description": "Conflict"},
                "503": {"description": "Standing by, or the store is unavailable"},
            },
        });
        if !open {
            operation["security"] = json!([{"token": []}]);
        }
        if let Some(key) = request {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": [key],
                    "properties": {key: {}},
                }}},
            });
        }
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        entry[method.to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "l2pop server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Neutron-shaped networks, subnets, ports and agents; networking-bgpvpn BGPVPNs and network associations; neutron-dynamic-routing BGP speakers; l2pop's agent reports, learned BGP routes and desired FDB.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
            "schemas": {"NeutronError": {
                "type": "object",
                "properties": {"NeutronError": {"type": "object", "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "detail": {"type": "string"},
                    "field": {"type": "string"},
                    "value": {},
                }}},
            }},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_a_summary() {
        let document = document();
        for (method, path) in ROUTES {
            let operation = &document["paths"][*path][method.to_lowercase()];
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
        }
        let documented: usize = document["paths"].as_object().map_or(0, |paths| {
            paths
                .values()
                .map(|p| p.as_object().map_or(0, Map::len))
                .sum()
        });
        assert_eq!(documented, ROUTES.len());
    }
}
