//! The OpenAPI 3.1 document served at `/openapi.json`, built from the route table
//! ([`super::api::routes`]): every route the router serves is documented, and nothing else.

use serde_json::{Map, Value, json};

use super::api::Route;

pub fn document(routes: &[Route]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in routes {
        let (method, path, summary, request) =
            (route.method, route.path, route.summary, route.body);
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let open = route.open;
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
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
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
    fn every_route_is_documented_once_with_a_summary() {
        let routes = crate::server::api::routes();
        let document = document(&routes);
        for route in &routes {
            let operation = &document["paths"][route.path][route.method.to_lowercase()];
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{} {} has no summary",
                route.method,
                route.path
            );
        }
        let documented: usize = document["paths"].as_object().map_or(0, |paths| {
            paths
                .values()
                .map(|p| p.as_object().map_or(0, Map::len))
                .sum()
        });
        assert_eq!(documented, routes.len(), "a route is listed twice");
    }
}
