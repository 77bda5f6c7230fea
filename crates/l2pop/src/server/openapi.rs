//! The OpenAPI 3.1 document served at `/openapi.json`, built from the route table
//! (`super::api::routes`, which gives a [`RouteDoc`] per route): every route the router serves
//! is documented, and nothing else.

use serde_json::{Map, Value, json};

/// What the document says of one route (the route table in `super::api` gives one per route).
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// The key the request body must have (`{"network": {...}}`), if it takes one.
    pub body: Option<&'static str>,
    /// Served without a token.
    pub open: bool,
}

pub fn document<'a>(routes: impl IntoIterator<Item = &'a RouteDoc>) -> Value {
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
