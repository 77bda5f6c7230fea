//! Text tables from the API's JSON: `list` as an aligned table of a resource's main columns,
//! `show`/`create`/`update` as field/value rows, and a host's desired FDB one row per entry with
//! its source. Pure functions of a `serde_json::Value`; columns are separated by two spaces and
//! lines carry no trailing blanks, so the output also greps and `awk`s well.

use serde_json::Value;

/// One column of a list table: a heading and where its value sits in each item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub heading: &'static str,
    /// Keys separated by `/`; `*` maps over an array (`fixed_ips/*/ip_address`).
    pub path: &'static str,
}

const fn column(heading: &'static str, path: &'static str) -> Column {
    Column { heading, path }
}

/// `network list`
pub const NETWORKS: &[Column] = &[
    column("ID", "id"),
    column("NAME", "name"),
    column("TYPE", "provider:network_type"),
    column("SEGMENT", "provider:segmentation_id"),
    column("PROJECT", "project_id"),
    column("SUBNETS", "subnets"),
];

/// `subnet list`
pub const SUBNETS: &[Column] = &[
    column("ID", "id"),
    column("NAME", "name"),
    column("NETWORK", "network_id"),
    column("CIDR", "cidr"),
    column("GATEWAY", "gateway_ip"),
];

/// `port list`
pub const PORTS: &[Column] = &[
    column("ID", "id"),
    column("NAME", "name"),
    column("MAC", "mac_address"),
    column("FIXED IPS", "fixed_ips/*/ip_address"),
    column("HOST", "binding:host_id"),
    column("STATUS", "status"),
];

/// `bgpvpn list`
pub const BGPVPNS: &[Column] = &[
    column("ID", "id"),
    column("NAME", "name"),
    column("TYPE", "type"),
    column("ROUTE TARGETS", "route_targets"),
    column("VNI", "vni"),
    column("NETWORKS", "networks"),
];

/// `bgpvpn association list`
pub const ASSOCIATIONS: &[Column] = &[
    column("ID", "id"),
    column("NETWORK", "network_id"),
    column("BGPVPN", "bgpvpn_id"),
];

/// `agent list`
pub const AGENTS: &[Column] = &[
    column("ID", "id"),
    column("TYPE", "agent_type"),
    column("HOST", "host"),
    column("ALIVE", "alive"),
    column("TUNNELING IP", "configurations/tunneling_ip"),
];

/// `fdb show` headings.
const FDB: [&str; 7] = ["NETWORK", "TYPE", "SEGMENT", "VTEP", "MAC", "IP", "SOURCE"];

/// A list of resources, one row each.
pub fn list_table(items: &[Value], columns: &[Column]) -> String {
    let headings = columns.iter().map(|c| c.heading.to_owned()).collect();
    let rows = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(&pick(item, c.path))).collect());
    aligned(std::iter::once(headings).chain(rows))
}

/// One resource as field/value rows, fields in key order.
pub fn record_table(record: &Value) -> String {
    let headings = vec!["FIELD".to_owned(), "VALUE".to_owned()];
    let rows = record
        .as_object()
        .into_iter()
        .flatten()
        .map(|(field, value)| vec![field.clone(), cell(value)]);
    aligned(std::iter::once(headings).chain(rows))
}

/// `{"host", "networks": [{"vteps": [{"entries": [...]}]}]}`: one row per entry; the source is
/// `port <id>`, `host <name>` (a flooding entry) or `extension <name>`.
pub fn fdb_table(fdb: &Value) -> String {
    let headings = FDB.iter().map(|h| (*h).to_owned()).collect();
    let rows = items(fdb, "networks").flat_map(|network| {
        items(network, "vteps").flat_map(move |vtep| {
            items(vtep, "entries").map(move |entry| fdb_row(network, vtep, entry))
        })
    });
    aligned(std::iter::once(headings).chain(rows))
}

fn fdb_row(network: &Value, vtep: &Value, entry: &Value) -> Vec<String> {
    vec![
        cell(&network["network_id"]),
        cell(&network["network_type"]),
        cell(&network["segment_id"]),
        cell(&vtep["vtep"]),
        cell(&entry["mac_address"]),
        cell(&entry["ip_address"]),
        source(&entry["source"]),
    ]
}

/// `{"port": id}` → `port <id>`.
fn source(value: &Value) -> String {
    let Some(object) = value.as_object() else {
        return cell(value);
    };
    object
        .iter()
        .map(|(kind, name)| format!("{kind} {}", cell(name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The elements of the array `value[key]` (none when absent).
fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> + 'a {
    value[key].as_array().into_iter().flatten()
}

/// The value at `path` (see [`Column::path`]); `Null` where nothing is.
pub fn pick(value: &Value, path: &str) -> Value {
    match path.split_once('/') {
        None => value.get(path).cloned().unwrap_or(Value::Null),
        Some(("*", rest)) => Value::Array(
            value
                .as_array()
                .into_iter()
                .flatten()
                .map(|element| pick(element, rest))
                .collect(),
        ),
        Some((key, rest)) => value
            .get(key)
            .map_or(Value::Null, |inner| pick(inner, rest)),
    }
}

/// One value as table text: strings bare, `null` empty, arrays joined with `, ` (`; ` between
/// objects), objects as `key=value` pairs.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(elements) => {
            let separator = if elements.iter().any(Value::is_object) {
                "; "
            } else {
                ", "
            };
            elements
                .iter()
                .map(cell)
                .collect::<Vec<_>>()
                .join(separator)
        }
        Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| match value {
                Value::Array(_) | Value::Object(_) => format!("{key}={value}"),
                _ => format!("{key}={}", cell(value)),
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Rows as lines, every column but the last padded to its widest cell, two spaces between.
fn aligned(rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .map(|row| row.into_iter().map(|c| c.replace('\n', " ")).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (text, width) in row.iter().zip(&widths) {
            line.push_str(text);
            let pad = width.saturating_sub(text.chars().count()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;

/// `fdb explain`: the server's provenance of every desired entry with this MAC on the host,
/// beside the agent's view of it (or why the agent could not be asked).
pub fn explain(
    args: &super::args::FdbExplain,
    table: Option<&Value>,
    agent: Result<Value, super::error::ClientError>,
) -> Value {
    let mac = args.mac.to_ascii_lowercase();
    let mut desired = Vec::new();
    let networks = table
        .and_then(|t| t["fdb"]["networks"].as_array())
        .cloned()
        .unwrap_or_default();
    for network in &networks {
        if args
            .network
            .as_ref()
            .is_some_and(|n| network["network_id"].as_str() != Some(n.as_str()))
        {
            continue;
        }
        for vtep in network["vteps"].as_array().into_iter().flatten() {
            for entry in vtep["entries"].as_array().into_iter().flatten() {
                if entry["mac_address"].as_str() == Some(mac.as_str()) {
                    desired.push(serde_json::json!({
                        "network_id": network["network_id"],
                        "vtep": vtep["vtep"],
                        "ip_address": entry["ip_address"],
                        "source": entry["source"],
                    }));
                }
            }
        }
    }
    let agent = agent.unwrap_or_else(|error| serde_json::json!({"error": error.to_string()}));
    serde_json::json!({
        "host": args.host,
        "mac": mac,
        "server": {
            "fanout_seq": table.map(|t| t["fdb"]["fanout_seq"].clone()),
            "host_seq": table.map(|t| t["fdb"]["host_seq"].clone()),
            "desired": desired,
        },
        "agent": agent,
    })
}
