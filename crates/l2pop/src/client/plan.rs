//! What each verb sends and how its answer is shown, as plain values: [`plan`] maps parsed
//! arguments to a [`Call`] (method, path with query, JSON body, [`Output`]) without I/O, so
//! that every argument → request-body mapping is a unit test. Only the server validates
//! values: the client forwards them and prints what the API says.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::args::{
    AgentVerb, AssociationVerb, BgpvpnCreate, BgpvpnUpdate, BgpvpnVerb, FdbVerb, NetworkCreate,
    NetworkUpdate, NetworkVerb, PortCreate, PortFields, PortList, PortUpdate, PortVerb, Resource,
    SubnetCreate, SubnetVerb, Targets,
};
use super::error::ClientError;
use super::render::{self, Column};

/// The HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// One API request, relative to the endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Path and query, percent-encoded (`/v2.0/ports?network_id=...`).
    pub path: String,
    pub body: Option<Value>,
}

/// How the answer is shown when `--json` is not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `{"<key>": [...]}` as an aligned table of `columns`.
    List {
        key: &'static str,
        columns: &'static [Column],
    },
    /// `{"<key>": {...}}` as a field/value table.
    Record { key: &'static str },
    /// `{"fdb": {...}}` as one row per entry.
    Fdb,
    /// Nothing (deletes answer 204).
    Nothing,
}

/// A request and how to show its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub request: Request,
    pub output: Output,
}

/// The call a verb makes; a usage error (exit 2) when the arguments ask for nothing.
pub fn plan(resource: &Resource) -> Result<Call, ClientError> {
    match resource {
        Resource::Network(verb) => network(verb),
        Resource::Subnet(verb) => subnet(verb),
        Resource::Port(verb) => port(verb),
        Resource::Bgpvpn(verb) => bgpvpn(verb),
        Resource::Agent(args) => match &args.verb {
            Some(AgentVerb::List) => Ok(list("/v2.0/agents", "agents", render::AGENTS)),
            Some(AgentVerb::Status(_)) | None => Err(ClientError::Usage(
                "`agent status` and running the agent are not API calls".to_owned(),
            )),
        },
        Resource::Fdb(FdbVerb::Show(show)) => Ok(Call {
            request: get(format!("/v2.0/l2pop/hosts/{}/fdb", encode(&show.host))),
            output: Output::Fdb,
        }),
        Resource::Fdb(FdbVerb::Explain(explain)) => Ok(Call {
            request: get(format!("/v2.0/l2pop/hosts/{}/fdb", encode(&explain.host))),
            output: Output::Fdb,
        }),
    }
}

const NETWORKS: &str = "/v2.0/networks";
const SUBNETS: &str = "/v2.0/subnets";
const PORTS: &str = "/v2.0/ports";
const BGPVPNS: &str = "/v2.0/bgpvpn/bgpvpns";

fn network(verb: &NetworkVerb) -> Result<Call, ClientError> {
    Ok(match verb {
        NetworkVerb::Create(args) => create(NETWORKS, "network", network_create_body(args)),
        NetworkVerb::List => list(NETWORKS, "networks", render::NETWORKS),
        NetworkVerb::Show(id) => show(&item(NETWORKS, &id.id), "network"),
        NetworkVerb::Update(args) => update(
            &item(NETWORKS, &args.id),
            "network",
            network_update_body(args)?,
        ),
        NetworkVerb::Delete(id) => delete(&item(NETWORKS, &id.id)),
    })
}

fn subnet(verb: &SubnetVerb) -> Result<Call, ClientError> {
    Ok(match verb {
        SubnetVerb::Create(args) => create(SUBNETS, "subnet", subnet_create_body(args)),
        SubnetVerb::List => list(SUBNETS, "subnets", render::SUBNETS),
        SubnetVerb::Show(id) => show(&item(SUBNETS, &id.id), "subnet"),
        SubnetVerb::Update(args) => update(
            &item(SUBNETS, &args.id),
            "subnet",
            json!({"subnet": {"name": args.name}}),
        ),
    })
}

fn port(verb: &PortVerb) -> Result<Call, ClientError> {
    Ok(match verb {
        PortVerb::Create(args) => create(PORTS, "port", port_create_body(args)),
        PortVerb::List(filters) => list(&port_list_path(filters), "ports", render::PORTS),
        PortVerb::Show(id) => show(&item(PORTS, &id.id), "port"),
        PortVerb::Update(args) => update(&item(PORTS, &args.id), "port", port_update_body(args)?),
        PortVerb::Delete(id) => delete(&item(PORTS, &id.id)),
    })
}

fn bgpvpn(verb: &BgpvpnVerb) -> Result<Call, ClientError> {
    Ok(match verb {
        BgpvpnVerb::Create(args) => create(BGPVPNS, "bgpvpn", bgpvpn_create_body(args)),
        BgpvpnVerb::List => list(BGPVPNS, "bgpvpns", render::BGPVPNS),
        BgpvpnVerb::Show(id) => show(&item(BGPVPNS, &id.id), "bgpvpn"),
        BgpvpnVerb::Update(args) => update(
            &item(BGPVPNS, &args.id),
            "bgpvpn",
            bgpvpn_update_body(args)?,
        ),
        BgpvpnVerb::Delete(id) => delete(&item(BGPVPNS, &id.id)),
        BgpvpnVerb::Association(verb) => association(verb),
    })
}

fn association(verb: &AssociationVerb) -> Call {
    let associations = |bgpvpn: &str| format!("{}/network_associations", item(BGPVPNS, bgpvpn));
    match verb {
        AssociationVerb::Create(args) => {
            let mut fields = Map::new();
            put(&mut fields, "network_id", Some(&args.network));
            put(&mut fields, "project_id", args.project.as_ref());
            let body = json!({ "network_association": fields });
            create(&associations(&args.bgpvpn), "network_association", body)
        }
        AssociationVerb::List(args) => list(
            &associations(&args.bgpvpn),
            "network_associations",
            render::ASSOCIATIONS,
        ),
        AssociationVerb::Delete(args) => {
            delete(&item(&associations(&args.bgpvpn), &args.association))
        }
    }
}

// ---- request shapes ----

fn get(path: String) -> Request {
    Request {
        method: Method::Get,
        path,
        body: None,
    }
}

fn list(path: &str, key: &'static str, columns: &'static [Column]) -> Call {
    Call {
        request: get(path.to_owned()),
        output: Output::List { key, columns },
    }
}

fn show(path: &str, key: &'static str) -> Call {
    Call {
        request: get(path.to_owned()),
        output: Output::Record { key },
    }
}

fn create(path: &str, key: &'static str, body: Value) -> Call {
    Call {
        request: Request {
            method: Method::Post,
            path: path.to_owned(),
            body: Some(body),
        },
        output: Output::Record { key },
    }
}

fn update(path: &str, key: &'static str, body: Value) -> Call {
    Call {
        request: Request {
            method: Method::Put,
            path: path.to_owned(),
            body: Some(body),
        },
        output: Output::Record { key },
    }
}

fn delete(path: &str) -> Call {
    Call {
        request: Request {
            method: Method::Delete,
            path: path.to_owned(),
            body: None,
        },
        output: Output::Nothing,
    }
}

/// `collection/<id>`, the id percent-encoded.
fn item(collection: &str, id: &str) -> String {
    format!("{collection}/{}", encode(id))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn port_list_path(filters: &PortList) -> String {
    let pairs: Vec<String> = [
        ("network_id", filters.network.as_ref()),
        ("binding:host_id", filters.host.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| format!("{}={}", encode(key), encode(v))))
    .collect();
    if pairs.is_empty() {
        PORTS.to_owned()
    } else {
        format!("{PORTS}?{}", pairs.join("&"))
    }
}

// ---- bodies ----

/// Inserts `key` when `value` is given.
fn put<T: Serialize>(fields: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        fields.insert(key.to_owned(), json!(value));
    }
}

/// Inserts `key` when the list is not empty.
fn put_list<T: Serialize>(fields: &mut Map<String, Value>, key: &str, values: &[T]) {
    put(fields, key, (!values.is_empty()).then_some(values));
}

/// `{"<key>": fields}`, or a usage error naming the flags when an update changes nothing.
fn changes(key: &str, fields: Map<String, Value>, flags: &str) -> Result<Value, ClientError> {
    if fields.is_empty() {
        return Err(ClientError::Usage(format!(
            "nothing to update: give at least one of {flags}"
        )));
    }
    Ok(json!({ key: fields }))
}

/// `network create` → `{"network": {...}}` with Neutron's `provider:*` names.
pub fn network_create_body(args: &NetworkCreate) -> Value {
    let mut fields = Map::new();
    put(&mut fields, "name", args.name.as_ref());
    put(&mut fields, "description", args.description.as_ref());
    put(
        &mut fields,
        "provider:network_type",
        args.network_type.as_ref(),
    );
    put(&mut fields, "provider:segmentation_id", args.segment);
    put(
        &mut fields,
        "provider:physical_network",
        args.physical_network.as_ref(),
    );
    put(&mut fields, "project_id", args.project.as_ref());
    put(&mut fields, "admin_state_up", args.disable.then_some(false));
    json!({ "network": fields })
}

/// `network update` → `{"network": {...}}`.
pub fn network_update_body(args: &NetworkUpdate) -> Result<Value, ClientError> {
    let mut fields = Map::new();
    put(&mut fields, "name", args.name.as_ref());
    put(&mut fields, "description", args.description.as_ref());
    put(&mut fields, "admin_state_up", args.state.admin_state_up());
    changes(
        "network",
        fields,
        "--name, --description, --enable, --disable",
    )
}

/// `subnet create` → `{"subnet": {...}}`; `--no-gateway` sends `"gateway_ip": null`.
pub fn subnet_create_body(args: &SubnetCreate) -> Value {
    let mut fields = Map::new();
    put(&mut fields, "network_id", Some(&args.network));
    put(&mut fields, "cidr", Some(&args.cidr));
    put(&mut fields, "name", args.name.as_ref());
    put(&mut fields, "gateway_ip", args.gateway.as_ref());
    if args.no_gateway {
        fields.insert("gateway_ip".to_owned(), Value::Null);
    }
    put(&mut fields, "ip_version", args.ip_version);
    put(&mut fields, "enable_dhcp", args.no_dhcp.then_some(false));
    put(&mut fields, "project_id", args.project.as_ref());
    json!({ "subnet": fields })
}

/// The attributes `port create` and `port update` share, under Neutron's names.
fn port_fields(args: &PortFields) -> Map<String, Value> {
    let mut fields = Map::new();
    put(&mut fields, "name", args.name.as_ref());
    put(&mut fields, "mac_address", args.mac.as_ref());
    put_list(&mut fields, "fixed_ips", &args.fixed_ips);
    put(&mut fields, "binding:host_id", args.host.as_ref());
    put(&mut fields, "device_owner", args.device_owner.as_ref());
    put(&mut fields, "device_id", args.device_id.as_ref());
    fields
}

/// `port create` → `{"port": {...}}`; `--host` is `binding:host_id`.
pub fn port_create_body(args: &PortCreate) -> Value {
    let mut fields = port_fields(&args.fields);
    put(&mut fields, "network_id", Some(&args.network));
    put(&mut fields, "project_id", args.project.as_ref());
    put(&mut fields, "admin_state_up", args.disable.then_some(false));
    json!({ "port": fields })
}

/// `port update` → `{"port": {...}}`; `--unbind` sends `"binding:host_id": ""` (Neutron's
/// convention for unbinding).
pub fn port_update_body(args: &PortUpdate) -> Result<Value, ClientError> {
    let mut fields = port_fields(&args.fields);
    put(&mut fields, "binding:host_id", args.unbind.then_some(""));
    put(&mut fields, "admin_state_up", args.state.admin_state_up());
    changes(
        "port",
        fields,
        "--name, --mac, --fixed-ip, --host, --unbind, --device-owner, --device-id, --enable, --disable",
    )
}

fn put_targets(fields: &mut Map<String, Value>, targets: &Targets) {
    put_list(fields, "route_targets", &targets.route_targets);
    put_list(fields, "import_targets", &targets.import_targets);
    put_list(fields, "export_targets", &targets.export_targets);
    put_list(
        fields,
        "route_distinguishers",
        &targets.route_distinguishers,
    );
}

/// `bgpvpn create` → networking-bgpvpn's `{"bgpvpn": {...}}`.
pub fn bgpvpn_create_body(args: &BgpvpnCreate) -> Value {
    let mut fields = Map::new();
    put(&mut fields, "name", args.name.as_ref());
    put(&mut fields, "type", args.vpn_type);
    put_targets(&mut fields, &args.targets);
    put(&mut fields, "vni", args.vni);
    put(&mut fields, "local_pref", args.local_pref);
    put(&mut fields, "project_id", args.project.as_ref());
    json!({ "bgpvpn": fields })
}

/// `bgpvpn update` → `{"bgpvpn": {...}}`; a target list given replaces the current one.
pub fn bgpvpn_update_body(args: &BgpvpnUpdate) -> Result<Value, ClientError> {
    let mut fields = Map::new();
    put(&mut fields, "name", args.name.as_ref());
    put_targets(&mut fields, &args.targets);
    put(&mut fields, "local_pref", args.local_pref);
    changes(
        "bgpvpn",
        fields,
        "--name, --route-target, --import-target, --export-target, --route-distinguisher, --local-pref",
    )
}

#[cfg(test)]
mod tests;
