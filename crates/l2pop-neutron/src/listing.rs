//! Collections listed as Neutron lists them, from a catalog: attribute filters (a repeated key
//! matches any of its values), `fields`, and paging in id order (`limit`, `marker`,
//! `page_reverse`, with `<collection>_links` built by the caller from [`Page`]).

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
    Ports,
    Agents,
    BgpSpeakers,
}

impl Collection {
    /// The key of the list in the answer (`{"ports": [...], "ports_links": [...]}`).
    pub fn key(self) -> &'static str {
        match self {
            Collection::Networks => "networks",
            Collection::Subnets => "subnets",
            Collection::Ports => "ports",
            Collection::Agents => "agents",
            Collection::BgpSpeakers => "bgp_speakers",
        }
    }
}

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
}

impl ListParams {
    /// Reads `?key=value` pairs in order. `limit` must be a positive integer and `page_reverse`
    /// a boolean; sorting other than by id is not offered (`sort_key`/`sort_dir` are ignored).
    pub fn parse(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, NeutronError> {
        let mut params = ListParams::default();
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
                "sort_key" | "sort_dir" => {}
                _ => params.filters.entry(key).or_default().push(value),
            }
        }
        Ok(params)
    }

    /// Whether a rendered item passes every filter.
    pub fn matches(&self, item: &Value) -> bool {
        self.filters.iter().all(|(key, wanted)| {
            let Some(have) = item.get(key) else {
                return false;
            };
            wanted.iter().any(|want| match have {
                Value::String(s) => s == want,
                Value::Null => want.is_empty(),
                Value::Bool(b) => parse_bool(want) == Some(*b),
                other => want.parse::<Value>().is_ok_and(|w| &w == other),
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
