//! Collections listed as Neutron lists them, from a catalog: attribute filters (a repeated key
//! matches any of its values; a key that is no attribute of the collection is refused, as
//! Neutron's `filter-validation`), `fields`, sorting (`sort_key`/`sort_dir`) and paging (`limit`,
//! `marker`, `page_reverse`, with `<collection>_links` built by the caller from [`Page`]).

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::Value;

use crate::catalog::Catalog;
use crate::error::NeutronError;
use crate::policy::Caller;
use crate::time::Time;

/// The collections read from a catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    Networks,
    Subnets,
    Segments,
    Ports,
    Agents,
    BgpSpeakers,
    /// `/v2.0/l2pop/routers`.
    Routers,
}

impl Collection {
    /// The key of the list in the answer (`{"ports": [...], "ports_links": [...]}`).
    pub fn key(self) -> &'static str {
        match self {
            Collection::Networks => "networks",
            Collection::Subnets => "subnets",
            Collection::Segments => "segments",
            Collection::Ports => "ports",
            Collection::Agents => "agents",
            Collection::BgpSpeakers => "bgp_speakers",
            Collection::Routers => "routers",
        }
    }

    /// The attributes a listing may filter and sort on: the view's (admin-only ones included).
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            Collection::Networks => &[
                "id",
                "name",
                "description",
                "tenant_id",
                "project_id",
                "admin_state_up",
                "status",
                "shared",
                "subnets",
                "created_at",
                "mtu",
                "port_security_enabled",
                "provider:network_type",
                "provider:segmentation_id",
                "provider:physical_network",
            ],
            Collection::Subnets => &[
                "id",
                "name",
                "description",
                "tenant_id",
                "project_id",
                "network_id",
                "cidr",
                "ip_version",
                "gateway_ip",
                "enable_dhcp",
                "created_at",
                "allocation_pools",
                "dns_nameservers",
                "host_routes",
                "ipv6_address_mode",
                "ipv6_ra_mode",
                "subnetpool_id",
                "service_types",
            ],
            Collection::Segments => &[
                "id",
                "network_id",
                "name",
                "description",
                "network_type",
                "physical_network",
                "segmentation_id",
                "segment_index",
            ],
            Collection::Ports => &[
                "id",
                "name",
                "description",
                "tenant_id",
                "project_id",
                "network_id",
                "mac_address",
                "fixed_ips",
                "device_owner",
                "device_id",
                "admin_state_up",
                "status",
                "created_at",
                "port_security_enabled",
                "security_groups",
                "binding:vnic_type",
                "binding:host_id",
                "binding:vif_type",
            ],
            Collection::Agents => &[
                "id",
                "agent_type",
                "binary",
                "host",
                "topic",
                "admin_state_up",
                "alive",
                "configurations",
                "started_at",
                "heartbeat_timestamp",
            ],
            Collection::BgpSpeakers => &[
                "id",
                "name",
                "tenant_id",
                "project_id",
                "local_as",
                "ip_version",
                "vpns",
                "agents",
                "peers",
                "networks",
                "advertise_floating_ip_host_routes",
                "advertise_tenant_networks",
            ],
            Collection::Routers => &["id", "ha", "hosts"],
        }
    }
}

/// The attributes of a BGPVPN as `bgpvpn_view` shows it (admin-only ones included): the
/// filter and sort keys of `GET /v2.0/bgpvpn/bgpvpns`.
pub const BGPVPN_ATTRIBUTES: &[&str] = &[
    "id",
    "name",
    "type",
    "tenant_id",
    "project_id",
    "networks",
    "routers",
    "ports",
    "local_pref",
    "route_targets",
    "import_targets",
    "export_targets",
    "route_distinguishers",
    "vni",
];

/// The query string of a list request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListParams {
    /// Attribute → the values any of which it must equal.
    pub filters: BTreeMap<String, Vec<String>>,
    /// Attributes to show (all when empty).
    pub fields: Vec<String>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    /// `sort_key`s with their direction (ascending: `true`), in order; empty: by id.
    pub sort: Vec<(String, bool)>,
}

impl ListParams {
    /// Reads `?key=value` pairs in order. `limit` must be a positive integer, `page_reverse`
    /// a boolean, `sort_dir` `asc` or `desc` (as many as `sort_key`s, or none: ascending).
    pub fn parse(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, NeutronError> {
        let mut params = ListParams::default();
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        for (key, value) in pairs {
            match key.as_str() {
                "fields" => params.fields.push(value),
                "limit" => {
                    let limit: usize = value.parse().map_err(|_| {
                        NeutronError::invalid("limit", value.as_str(), "is not a positive integer")
                    })?;
                    // Neutron treats 0 as no limit.
                    params.limit = (limit > 0).then_some(limit);
                }
                "marker" => params.marker = Some(value),
                "page_reverse" => {
                    params.page_reverse = parse_bool(&value).ok_or_else(|| {
                        NeutronError::invalid("page_reverse", value.as_str(), "is not a boolean")
                    })?;
                }
                "sort_key" => keys.push(value),
                "sort_dir" => match value.as_str() {
                    "asc" => dirs.push(true),
                    "desc" => dirs.push(false),
                    _ => {
                        return Err(NeutronError::invalid(
                            "sort_dir",
                            value.as_str(),
                            "is not asc or desc",
                        ));
                    }
                },
                _ => params.filters.entry(key).or_default().push(value),
            }
        }
        if !dirs.is_empty() && dirs.len() != keys.len() {
            return Err(NeutronError::invalid(
                "sort_dir",
                dirs.len(),
                format!("must be given once per sort_key ({} of them)", keys.len()),
            ));
        }
        let ascending = dirs.into_iter().chain(std::iter::repeat(true));
        params.sort = keys.into_iter().zip(ascending).collect();
        Ok(params)
    }

    /// Neutron's filter validation: every filter and sort key must be an attribute of
    /// `collection` (a 400 naming it), and `fixed_ips` filters must read `ip_address=<ip>` or
    /// `subnet_id=<id>`.
    pub fn check(&self, collection: Collection) -> Result<(), NeutronError> {
        self.check_attributes(collection.key(), collection.attributes())
    }

    /// [`ListParams::check`] for a collection not read from the catalog (`bgpvpns`): every
    /// filter and sort key must be one of `known`.
    pub fn check_attributes(&self, collection: &str, known: &[&str]) -> Result<(), NeutronError> {
        for key in self.filters.keys() {
            if !known.contains(&key.as_str()) {
                return Err(NeutronError::invalid(
                    key,
                    key.as_str(),
                    format!("is not a filter of {collection}"),
                ));
            }
        }
        for (key, _) in &self.sort {
            if !known.contains(&key.as_str()) {
                return Err(NeutronError::invalid(
                    "sort_key",
                    key.as_str(),
                    format!("is not an attribute of {collection}"),
                ));
            }
        }
        for value in self.filters.get("fixed_ips").into_iter().flatten() {
            if fixed_ip_filter(value).is_none() {
                return Err(NeutronError::invalid(
                    "fixed_ips",
                    value.as_str(),
                    "is not ip_address=<ip> or subnet_id=<id>",
                ));
            }
        }
        Ok(())
    }

    /// Whether the listing is ordered otherwise than by id, ascending.
    fn sorted(&self) -> bool {
        !(self.sort.is_empty() || self.sort == [("id".to_owned(), true)])
    }

    /// Whether a rendered item passes every filter. A list attribute (a BGPVPN's `networks`)
    /// matches when it holds the value; `fixed_ips` filters match when for each of
    /// `ip_address` and `subnet_id` asked, some fixed IP has one of the values asked.
    pub fn matches(&self, item: &Value) -> bool {
        self.filters.iter().all(|(key, wanted)| {
            let Some(have) = item.get(key) else {
                return false;
            };
            if key == "fixed_ips" {
                return fixed_ips_match(have, wanted);
            }
            wanted.iter().any(|want| match have {
                Value::Array(items) => items.iter().any(|i| scalar_matches(i, want)),
                other => scalar_matches(other, want),
            })
        })
    }

    /// The item with only the asked `fields` (all of it when none were asked).
    pub fn project(&self, item: Value) -> Value {
        match item {
            Value::Object(map) if !self.fields.is_empty() => Value::Object(
                map.into_iter()
                    .filter(|(key, _)| self.fields.iter().any(|f| f == key))
                    .collect(),
            ),
            other => other,
        }
    }
}

fn scalar_matches(have: &Value, want: &str) -> bool {
    match have {
        Value::String(s) => s == want,
        Value::Null => want.is_empty(),
        Value::Bool(b) => parse_bool(want) == Some(*b),
        other => want.parse::<Value>().is_ok_and(|w| &w == other),
    }
}

/// `ip_address=<value>` or `subnet_id=<value>`.
fn fixed_ip_filter(value: &str) -> Option<(&str, &str)> {
    let (key, value) = value.split_once('=')?;
    matches!(key, "ip_address" | "subnet_id").then_some((key, value))
}

fn fixed_ips_match(have: &Value, wanted: &[String]) -> bool {
    let fixed_ips = have.as_array().map(Vec::as_slice).unwrap_or_default();
    ["ip_address", "subnet_id"].iter().all(|key| {
        let values: Vec<&str> = wanted
            .iter()
            .filter_map(|w| fixed_ip_filter(w))
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        values.is_empty()
            || fixed_ips
                .iter()
                .any(|f| f[*key].as_str().is_some_and(|v| values.contains(&v)))
    })
}

/// The order of two rendered items by the asked sort keys, then by id.
fn compare(a: &Value, b: &Value, sort: &[(String, bool)]) -> std::cmp::Ordering {
    sort.iter()
        .map(|(key, ascending)| {
            let order = compare_values(&a[key.as_str()], &b[key.as_str()]);
            if *ascending { order } else { order.reverse() }
        })
        .find(|order| order.is_ne())
        .unwrap_or_else(|| compare_values(&a["id"], &b["id"]))
}

/// null < booleans < numbers < strings < anything else (compared as JSON text).
fn compare_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or_default()
            .total_cmp(&y.as_f64().unwrap_or_default()),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// Python's and Neutron's spellings of a boolean in a query string.
fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// One page of a listing, in the order shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub items: Vec<Value>,
    /// Ids of the first and last items (the markers of the previous and next pages).
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    /// Whether more items follow the page in the direction read.
    pub more: bool,
}

impl Catalog {
    /// Up to `max` items of `collection` that `caller` may see and `params` select, in id order
    /// after `after` (before it, newest first, when `params.page_reverse`). `now` decides agents'
    /// liveness.
    pub fn page(
        &self,
        collection: Collection,
        caller: &Caller,
        params: &ListParams,
        after: Option<&str>,
        max: usize,
        now: Time,
    ) -> Result<Page, NeutronError> {
        params.check(collection)?;
        if params.sorted() {
            return self.sorted_page(collection, caller, params, after, max, now);
        }
        let reverse = params.page_reverse;
        let mut rendered: Vec<(String, Value)> = Vec::new();
        let mut more = false;
        {
            let mut take = |id: String, item: Value| {
                if !params.matches(&item) {
                    return true;
                }
                if rendered.len() == max {
                    more = true;
                    return false;
                }
                rendered.push((id, item));
                true
            };
            match collection {
                Collection::Networks => {
                    let range = bounds(parse_marker(after)?.map(l2pop_model::NetworkId), reverse);
                    for_each(self.networks.range(range), reverse, |(id, n)| {
                        !caller.sees(&n.project_id)
                            || take(id.to_string(), self.network_view(n, caller))
                    });
                }
                Collection::Subnets => {
                    let range = bounds(parse_marker(after)?, reverse);
                    for_each(self.subnets.range(range), reverse, |(id, s)| {
                        !caller.sees(&s.project_id) || take(id.to_string(), self.subnet_view(s))
                    });
                }
                Collection::Segments => {
                    caller.require_admin("get_segment")?;
                    let range = bounds(parse_marker(after)?, reverse);
                    for_each(self.segments.range(range), reverse, |(id, s)| {
                        take(id.to_string(), crate::view::segment_view(s))
                    });
                }
                Collection::Ports => {
                    let marker = parse_marker(after)?.map(l2pop_model::PortId);
                    let mut show = |id: &l2pop_model::PortId| match self.ports.get(id) {
                        Some(p) if caller.sees(&p.project_id) => {
                            take(id.to_string(), self.port_view(p, caller))
                        }
                        _ => true,
                    };
                    // Listing one network's ports stays cheap: narrow by its index first.
                    let network = params
                        .filters
                        .get("network_id")
                        .filter(|values| values.len() == 1)
                        .and_then(|values| values[0].parse::<l2pop_model::NetworkId>().ok());
                    match network {
                        Some(network) => {
                            if let Some(ports) = self.network_ports.get(&network) {
                                for_each(ports.range(bounds(marker, reverse)), reverse, |id| {
                                    show(id)
                                });
                            }
                        }
                        None => {
                            for_each(self.ports.range(bounds(marker, reverse)), reverse, |e| {
                                show(e.0)
                            });
                        }
                    }
                }
                Collection::Agents => {
                    caller.require_admin("get_agent")?;
                    let mut all: Vec<(l2pop_model::Uuid, Value)> = self
                        .agents
                        .values()
                        .map(|a| (a.id, self.agent_view(a, now)))
                        .chain(
                            self.bgp_agents
                                .values()
                                .map(|a| (a.id, self.bgp_agent_view(a))),
                        )
                        .collect();
                    all.sort_by_key(|(id, _)| *id);
                    if reverse {
                        all.reverse();
                    }
                    let marker = parse_marker(after)?;
                    for (id, view) in all {
                        let past = marker.is_none_or(|m| if reverse { id < m } else { id > m });
                        if past && !take(id.to_string(), view) {
                            break;
                        }
                    }
                }
                Collection::BgpSpeakers => {
                    caller.require_admin("get_bgp_speaker")?;
                    let range = bounds(parse_marker(after)?.map(l2pop_bgpvpn::SpeakerId), reverse);
                    for_each(self.speakers.range(range), reverse, |(id, s)| {
                        take(id.to_string(), self.speaker_view(s))
                    });
                }
                Collection::Routers => {
                    caller.require_admin(crate::router::ROUTER_RULE)?;
                    let range = bounds(parse_marker(after)?.map(l2pop_model::RouterId), reverse);
                    for_each(self.routers.range(range), reverse, |(id, r)| {
                        take(id.to_string(), crate::router::router_view(r))
                    });
                }
            }
        }
        if reverse {
            rendered.reverse();
        }
        Ok(Page {
            first_id: rendered.first().map(|(id, _)| id.clone()),
            last_id: rendered.last().map(|(id, _)| id.clone()),
            items: rendered
                .into_iter()
                .map(|(_, item)| params.project(item))
                .collect(),
            more,
        })
    }
}

impl Catalog {
    /// [`Catalog::page`] in another order than by id: every item the filters select is
    /// rendered and sorted (linear in the collection per page, which Neutron's database
    /// spares itself with an index), then the page after the marker's item is taken.
    fn sorted_page(
        &self,
        collection: Collection,
        caller: &Caller,
        params: &ListParams,
        after: Option<&str>,
        max: usize,
        now: Time,
    ) -> Result<Page, NeutronError> {
        let unsorted = ListParams {
            filters: params.filters.clone(),
            ..ListParams::default()
        };
        let items = self
            .page(collection, caller, &unsorted, None, usize::MAX, now)?
            .items;
        params.page_of(items, after, max)
    }
}

impl ListParams {
    /// One page of `items` (already filtered): sorted by the `sort_key`s (by id when none),
    /// after the item with id `after`, at most `max` of them, each with only the asked
    /// `fields`. For collections not kept in the catalog (`bgpvpns`), and sorted listings.
    pub fn page_of(
        &self,
        mut items: Vec<Value>,
        after: Option<&str>,
        max: usize,
    ) -> Result<Page, NeutronError> {
        let params = self;
        if params.sort.is_empty() {
            items.sort_by(|a, b| compare_values(&a["id"], &b["id"]));
        } else {
            items.sort_by(|a, b| compare(a, b, &params.sort));
        }
        if params.page_reverse {
            items.reverse();
        }
        let start = match after {
            Some(marker) => {
                parse_marker(Some(marker))?;
                items
                    .iter()
                    .position(|item| item["id"] == marker)
                    .map_or(0, |n| n + 1)
            }
            None => 0,
        };
        let mut rendered: Vec<Value> = items.into_iter().skip(start).collect();
        let more = rendered.len() > max;
        rendered.truncate(max);
        if params.page_reverse {
            rendered.reverse();
        }
        let id = |item: Option<&Value>| item.and_then(|i| i["id"].as_str()).map(str::to_owned);
        Ok(Page {
            first_id: id(rendered.first()),
            last_id: id(rendered.last()),
            items: rendered
                .into_iter()
                .map(|item| params.project(item))
                .collect(),
            more,
        })
    }
}

/// A marker is an id; one that does not parse is refused naming `marker`.
fn parse_marker(marker: Option<&str>) -> Result<Option<l2pop_model::Uuid>, NeutronError> {
    marker
        .map(|m| {
            m.parse()
                .map_err(|_| NeutronError::invalid("marker", m, "is not a valid id"))
        })
        .transpose()
}

/// The ids strictly after `marker` (before it when reading in reverse).
fn bounds<K>(marker: Option<K>, reverse: bool) -> (Bound<K>, Bound<K>) {
    match (marker, reverse) {
        (None, _) => (Bound::Unbounded, Bound::Unbounded),
        (Some(m), false) => (Bound::Excluded(m), Bound::Unbounded),
        (Some(m), true) => (Bound::Unbounded, Bound::Excluded(m)),
    }
}

/// Calls `f` on each item, last first when `reverse`, until it returns false.
fn for_each<I: DoubleEndedIterator>(items: I, reverse: bool, mut f: impl FnMut(I::Item) -> bool) {
    if reverse {
        for item in items.rev() {
            if !f(item) {
                break;
            }
        }
    } else {
        for item in items {
            if !f(item) {
                break;
            }
        }
    }
}
