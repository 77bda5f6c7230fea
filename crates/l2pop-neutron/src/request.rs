//! What callers ask of the resource layer, as typed values: the API's request bodies (strict,
//! `deny_unknown_fields`: an unknown or mistyped attribute is a 400 naming it), parsed on the
//! caller's task, and the [`Request`] and [`Query`] enums the owner takes. No JSON is parsed on
//! the owner.

use std::net::IpAddr;

use ipnet::IpNet;
use l2pop_bgpvpn::{BgpvpnId, DeviceRoutes, GatewayRoutes, RouteTarget, SpeakerId, VpnType};
use l2pop_model::{Host, Mac, NetworkId, NetworkType, PortId, Uuid};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::command::{AllocationPool, HostRoute, Ipv6Mode, SegmentId, SubnetId, VnicType};
use crate::error::NeutronError;

/// What a project network gets when it names no provider attributes (Neutron's
/// `tenant_network_types` and `vni_ranges`).
#[derive(Clone, Debug, PartialEq)]
pub struct TenantNetworks {
    pub network_type: NetworkType,
    pub vni_ranges: Vec<(u32, u32)>,
}

impl Default for TenantNetworks {
    fn default() -> Self {
        TenantNetworks {
            network_type: NetworkType::Vxlan,
            vni_ranges: vec![(1, 65_535)],
        }
    }
}

/// Fresh values for a command: new ids and random MACs come from here, so that planning stays a
/// function of the state and these inputs.
pub trait Fresh {
    fn uuid(&mut self) -> Uuid;
    /// Three random bytes for a `fa:16:3e:xx:xx:xx` MAC.
    fn mac_suffix(&mut self) -> [u8; 3];
    /// Now (the wall clock, read at the edge).
    fn now(&mut self) -> crate::time::Time;
}

/// Extracts `{"<key>": {...}}` into `T`, naming the offending attribute on error.
pub fn body<T: DeserializeOwned>(value: Value, key: &str) -> Result<T, NeutronError> {
    let Value::Object(mut outer) = value else {
        return Err(NeutronError::bad_request(format!(
            "Resource body required: expected a JSON object with the key '{key}'"
        )));
    };
    let inner = outer.remove(key).ok_or_else(|| {
        NeutronError::bad_request(format!("Resource body required: missing '{key}'"))
    })?;
    if let Some(extra) = outer.keys().next() {
        return Err(NeutronError::invalid(
            extra,
            Value::String(extra.clone()),
            "is not a recognized top-level key",
        ));
    }
    tracked(inner)
}

/// A create's body: `{"<key>": {...}}` gives one item, Neutron's bulk form
/// `{"<key>s": [{...}, ...]}` gives them all (`Bulk`). An item's error names it
/// (`ports[2].fixed_ips`).
pub fn create_body<T: DeserializeOwned>(
    value: Value,
    key: &str,
) -> Result<Create<T>, NeutronError> {
    let plural = format!("{key}s");
    let Value::Object(mut outer) = value else {
        return body(value, key).map(Create::One);
    };
    if outer.contains_key(key) || !outer.contains_key(&plural) {
        return body(Value::Object(outer), key).map(Create::One);
    }
    let items = outer.remove(&plural).unwrap_or(Value::Null);
    if let Some(extra) = outer.keys().next() {
        return Err(NeutronError::invalid(
            extra,
            Value::String(extra.clone()),
            "is not a recognized top-level key",
        ));
    }
    let Value::Array(items) = items else {
        return Err(NeutronError::invalid(&plural, items, "is not a list"));
    };
    if items.is_empty() {
        return Err(NeutronError::invalid(
            &plural,
            Value::Array(items),
            "is empty",
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| tracked(item).map_err(|error| error.in_item(&plural, index)))
        .collect::<Result<Vec<T>, _>>()
        .map(Create::Bulk)
}

/// What [`create_body`] found.
#[derive(Debug)]
pub enum Create<T> {
    One(T),
    Bulk(Vec<T>),
}

impl<T> Create<T> {
    /// The request: `one` for a single item, a [`Request::Bulk`] of them for many.
    pub fn request(self, collection: &'static str, one: impl Fn(T) -> Request) -> Request {
        match self {
            Create::One(item) => one(item),
            Create::Bulk(items) => Request::Bulk {
                collection,
                items: items.into_iter().map(one).collect(),
            },
        }
    }
}

/// Deserializes `value` into `T`. On error the field is the attribute's path
/// (`provider:segmentation_id`, `devices[0].mac`) and the value is what was sent there.
pub fn tracked<T: DeserializeOwned>(value: Value) -> Result<T, NeutronError> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(&value, &mut track);
    T::deserialize(deserializer).map_err(|error| {
        let message = error.to_string();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            return NeutronError::invalid(
                field,
                Value::String(field.to_owned()),
                "Unrecognized attribute",
            );
        }
        let path = track.path().to_string();
        if let Some(rest) = message.strip_prefix("missing field `") {
            // serde reports the object that lacks it ("." at the top): name the field itself.
            let missing = rest.split('`').next().unwrap_or(rest);
            let field = if path == "." {
                missing.to_owned()
            } else {
                format!("{path}.{missing}")
            };
            return NeutronError::invalid(&field, Value::Null, "is required");
        }
        let pointer = format!("/{}", path.replace(['[', '.'], "/").replace(']', ""));
        let sent = value.pointer(&pointer).cloned().unwrap_or(Value::Null);
        NeutronError::invalid(&path, sent, message)
    })
}

/// Neutron's `convert_to_int`: an integer attribute may come as a JSON number or as a string
/// holding one (the `openstack` CLI sends `provider:segmentation_id` and `local_as` as strings).
/// Anything else, or a value out of the type's range, is refused; [`tracked`] names the field and
/// the value sent.
pub(crate) mod int {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn convert<T: TryFrom<i128>, E: serde::de::Error>(value: &Value) -> Result<T, E> {
        let number: Option<i128> = match value {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let number = number.ok_or_else(|| E::custom(format!("'{value}' is not an integer")))?;
        T::try_from(number).map_err(|_| E::custom(format!("{number} is out of range")))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        convert(&Value::deserialize(deserializer)?)
    }

    /// For `Option<T>` (with `#[serde(default)]`): `null` is `None`.
    pub mod option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
            deserializer: D,
        ) -> Result<Option<T>, D::Error> {
            match Value::deserialize(deserializer)? {
                Value::Null => Ok(None),
                value => convert(&value).map(Some),
            }
        }
    }

    /// For `Option<Option<T>>` (with `#[serde(default)]`): absent is `None`, `null` is
    /// `Some(None)`.
    pub mod double_option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
            deserializer: D,
        ) -> Result<Option<Option<T>>, D::Error> {
            super::option::deserialize(deserializer).map(Some)
        }
    }
}

/// Neutron's `NAME_MAX_LEN` (`name`, `device_owner`, `device_id`, `project_id`).
pub const NAME_MAX_LEN: usize = 255;
/// Neutron's `DESCRIPTION_MAX_LEN`.
pub const DESCRIPTION_MAX_LEN: usize = 1024;

/// 400 naming `field` and the value when `value` is longer than `max` characters (Neutron's
/// `validate_string` with `max_len`, which counts characters).
pub(crate) fn check_len(field: &str, value: Option<&str>, max: usize) -> Result<(), NeutronError> {
    match value {
        Some(text) if text.chars().count() > max => Err(NeutronError::invalid(
            field,
            text,
            format!("exceeds maximum length of {max}"),
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreateBody {
    /// A caller-chosen id (admin only): an integration keeping its own ids (the ML2 driver
    /// sends Neutron's).
    pub id: Option<Uuid>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub shared: bool,
    #[serde(rename = "provider:network_type")]
    pub network_type: Option<NetworkType>,
    #[serde(
        default,
        rename = "provider:segmentation_id",
        deserialize_with = "int::option::deserialize"
    )]
    pub segmentation_id: Option<u32>,
    #[serde(rename = "provider:physical_network")]
    pub physical_network: Option<String>,
    #[serde(default, deserialize_with = "int::option::deserialize")]
    pub mtu: Option<u32>,
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdateBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    #[serde(default, deserialize_with = "int::option::deserialize")]
    pub mtu: Option<u32>,
    pub port_security_enabled: Option<bool>,
}

/// Neutron's segments extension's create body (`tenant_id`/`project_id` accepted, as Neutron
/// accepts them, and not shown).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCreateBody {
    /// A caller-chosen id (admin only): the ML2 driver sends Neutron's.
    pub id: Option<Uuid>,
    pub network_id: NetworkId,
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub network_type: NetworkType,
    #[serde(default, deserialize_with = "int::option::deserialize")]
    pub segmentation_id: Option<u32>,
    pub physical_network: Option<String>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

/// Only `name` and `description` may change (Neutron's `allow_put`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentUpdateBody {
    /// `null` clears it.
    #[serde(
        default,
        deserialize_with = "crate::command::double_option::deserialize"
    )]
    pub name: Option<Option<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCreateBody {
    /// A caller-chosen id (admin only): an integration keeping its own ids (the ML2 driver
    /// sends Neutron's).
    pub id: Option<Uuid>,
    #[serde(default)]
    pub name: String,
    pub network_id: NetworkId,
    pub cidr: IpNet,
    #[serde(default, deserialize_with = "int::option::deserialize")]
    pub ip_version: Option<u8>,
    /// Absent: the first address; `null`: none.
    #[serde(
        default,
        deserialize_with = "crate::command::double_option::deserialize"
    )]
    pub gateway_ip: Option<Option<IpAddr>>,
    #[serde(default = "yes")]
    pub enable_dhcp: bool,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Absent or `null`: Neutron's default pools.
    pub allocation_pools: Option<Vec<AllocationPool>>,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    pub ipv6_address_mode: Option<Ipv6Mode>,
    pub ipv6_ra_mode: Option<Ipv6Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetUpdateBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub dns_nameservers: Option<Vec<IpAddr>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub enable_dhcp: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIpRequest {
    pub subnet_id: Option<SubnetId>,
    pub ip_address: Option<IpAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCreateBody {
    /// A caller-chosen id (admin only): an integration keeping its own ids (the ML2 driver
    /// sends Neutron's).
    pub id: Option<Uuid>,
    #[serde(default)]
    pub name: String,
    pub network_id: NetworkId,
    pub mac_address: Option<Mac>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(rename = "binding:host_id")]
    pub host: Option<String>,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Absent: the network's.
    pub port_security_enabled: Option<bool>,
    /// Only `[]` is taken (l2pop has no security groups).
    pub security_groups: Option<Vec<Value>>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: Option<VnicType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortUpdateBody {
    pub name: Option<String>,
    pub admin_state_up: Option<bool>,
    pub mac_address: Option<Mac>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub device_owner: Option<String>,
    pub device_id: Option<String>,
    #[serde(rename = "binding:host_id")]
    pub host: Option<String>,
    pub description: Option<String>,
    pub port_security_enabled: Option<bool>,
    pub security_groups: Option<Vec<Value>>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: Option<VnicType>,
}

/// `security_groups`: l2pop has no security groups (the `security-group` extension is not
/// offered), so only "none" (`[]`) is taken; a group is refused naming it.
pub(crate) fn check_security_groups(groups: Option<&[Value]>) -> Result<(), NeutronError> {
    match groups.and_then(|groups| groups.first()) {
        Some(group) => Err(NeutronError::invalid(
            "security_groups",
            group.clone(),
            "l2pop has no security groups (only [] is taken)",
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReportBody {
    pub host: Host,
    pub tunneling_ip: Option<IpAddr>,
    #[serde(default)]
    pub tunnel_types: Vec<NetworkType>,
    pub l2pop_network_types: Option<Vec<NetworkType>>,
    #[serde(default)]
    pub start_flag: bool,
    #[serde(default)]
    pub agent_type: Option<String>,
    #[serde(default)]
    pub binary: Option<String>,
}

/// `PUT /v2.0/agents/{id}`: what Neutron's agent update takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdateBody {
    pub admin_state_up: Option<bool>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    pub host: Host,
    #[serde(default)]
    pub refresh_tunnels: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnCreateBody {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub vpn_type: VpnType,
    #[serde(default)]
    pub route_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub import_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub export_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub route_distinguishers: Vec<RouteTarget>,
    #[serde(default, deserialize_with = "int::option::deserialize")]
    pub vni: Option<u64>,
    #[serde(default, deserialize_with = "int::option::deserialize")]
    pub local_pref: Option<u64>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnUpdateBody {
    pub name: Option<String>,
    pub route_targets: Option<Vec<RouteTarget>>,
    pub import_targets: Option<Vec<RouteTarget>>,
    pub export_targets: Option<Vec<RouteTarget>>,
    pub route_distinguishers: Option<Vec<RouteTarget>>,
    #[serde(default, deserialize_with = "int::double_option::deserialize")]
    pub local_pref: Option<Option<u64>>,
    #[serde(
        default,
        rename = "type",
        deserialize_with = "crate::command::double_option::deserialize"
    )]
    pub vpn_type: Option<Option<Value>>,
    #[serde(
        default,
        deserialize_with = "crate::command::double_option::deserialize"
    )]
    pub vni: Option<Option<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationBody {
    pub network_id: NetworkId,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerCreateBody {
    #[serde(default)]
    pub name: String,
    #[serde(deserialize_with = "int::deserialize")]
    pub local_as: u32,
    #[serde(default = "four", deserialize_with = "int::deserialize")]
    pub ip_version: u8,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerUpdateBody {
    pub name: String,
}

/// `add_bgp_vpn` / `remove_bgp_vpn` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerVpnBody {
    pub bgpvpn_id: BgpvpnId,
}

/// `bgp-drinstances` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrInstanceBody {
    pub bgp_speaker_id: SpeakerId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpAgentBody {
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(default = "yes")]
    pub alive: bool,
    #[serde(default)]
    pub start_flag: bool,
    /// With `start_flag`: keep the routes learned before, stale, until End-of-RIB (RFC 4724).
    #[serde(default)]
    pub graceful_restart: bool,
}

fn yes() -> bool {
    true
}

fn four() -> u8 {
    4
}

/// A device as the caller names it: the REST API by port id, an agent (RPC) as Neutron's agents
/// do (the port id, `tap` + its first 11 characters, or its MAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceName {
    Port(PortId),
    Agent(String),
}

/// How a caller wants the answer to an agent report: the agent as `/v2.0/agents` shows it (REST),
/// or Neutron's `report_state` reply (`"new"` or `"alive"`, RPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportReply {
    Agent,
    NewOrAlive,
}

/// How a caller wants the answer to a device up/down: the port (REST), or Neutron's RPC reply
/// (`null` for up; `{"device", "exists"}` for down, where an unknown device is no error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceReply {
    Port,
    Rpc,
}

/// A change asked of the owner, parsed and typed on the caller's task. Planning turns it into at
/// most one command (see `plan`).
#[derive(Debug)]
pub enum Request {
    NetworkCreate(NetworkCreateBody),
    NetworkUpdate(NetworkId, NetworkUpdateBody),
    NetworkDelete(NetworkId),
    SubnetCreate(SubnetCreateBody),
    SubnetUpdate(SubnetId, SubnetUpdateBody),
    SubnetDelete(SubnetId),
    SegmentCreate(SegmentCreateBody),
    SegmentUpdate(SegmentId, SegmentUpdateBody),
    SegmentDelete(SegmentId),
    PortCreate(PortCreateBody),
    PortUpdate(PortId, PortUpdateBody),
    PortDelete(PortId),
    /// An L2 agent's `report_state`; also its heartbeat.
    AgentReport {
        body: AgentReportBody,
        reply: ReportReply,
    },
    /// `PUT /v2.0/agents/{id}` (L2 or BGP agent).
    AgentUpdate(Uuid, AgentUpdateBody),
    /// `update_device_up` (`up`) or `update_device_down`.
    Device {
        device: DeviceName,
        up: bool,
        body: DeviceBody,
        reply: DeviceReply,
    },
    BgpvpnCreate(BgpvpnCreateBody),
    BgpvpnUpdate(BgpvpnId, BgpvpnUpdateBody),
    BgpvpnDelete(BgpvpnId),
    AssociationCreate(BgpvpnId, AssociationBody),
    AssociationDelete(BgpvpnId, Uuid),
    SpeakerCreate(SpeakerCreateBody),
    SpeakerUpdate(SpeakerId, SpeakerUpdateBody),
    SpeakerDelete(SpeakerId),
    /// `add_bgp_vpn` (`add`) or `remove_bgp_vpn`.
    SpeakerVpn {
        speaker: SpeakerId,
        body: SpeakerVpnBody,
        add: bool,
    },
    /// `POST /v2.0/agents/{agent}/bgp-drinstances`.
    DrInstanceAdd {
        agent: Uuid,
        body: DrInstanceBody,
    },
    DrInstanceRemove {
        agent: Uuid,
        speaker: SpeakerId,
    },
    BgpAgentReport(Host, BgpAgentBody),
    BgpGateways(GatewayRoutes),
    BgpDevices(DeviceRoutes),
    /// `POST /v2.0/l2pop/bgp-agents/{host}/end-of-rib`.
    BgpEndOfRib(Host),
    /// `PUT /v2.0/l2pop/routers/{id}` (the body already checked into a record).
    RouterPut(crate::router::RouterRecord),
    RouterDelete(l2pop_model::RouterId),
    /// A bulk create of `collection` (`networks`, `subnets`, `ports`): its items are creates of
    /// that resource, planned and executed in order, all or none (see `handle`).
    Bulk {
        collection: &'static str,
        items: Vec<Request>,
    },
}

/// A read that needs the engine or the BGPVPN extension, so the owner answers it. Everything
/// else is read from a published catalog (see `catalog`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    BgpvpnList,
    BgpvpnShow(BgpvpnId),
    AssociationList(BgpvpnId),
    AssociationShow(BgpvpnId, Uuid),
    /// `GET /v2.0/l2pop/hosts/{host}/fdb`: the desired table with provenance.
    HostFdb(Host),
    /// `get_fdb_entries`: every network's full FDB for the host (resync), naming `stream_id`.
    FullFdb {
        host: Host,
        stream_id: u64,
    },
    /// `get_bgp_export`: what BGP agent `host` exports (the l2 BGPVPNs bound to the speakers
    /// it hosts, with their networks' full FDBs without the BGPVPN extension's entries), naming
    /// `stream_id` and the fanout position the answer reflects.
    BgpExport {
        host: Host,
        stream_id: u64,
    },
    /// `get_stream_positions`.
    StreamPositions {
        host: Host,
        stream_id: u64,
    },
}

/// `{"gateways": [...]}`: EVPN type-3 routes learned or withdrawn by one BGP agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaysBody {
    pub gateways: Vec<l2pop_bgpvpn::GatewayRoute>,
}

/// `{"devices": [...]}`: EVPN type-2 routes learned or withdrawn by one BGP agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesBody {
    pub devices: Vec<l2pop_bgpvpn::DeviceRoute>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A bulk body gives every item; an item's error names its index.
    #[test]
    fn bulk_create_bodies_name_the_item() {
        let ports = create_body::<PortCreateBody>(
            json!({"ports": [{"network_id": Uuid::from_u128(1)}, {"network_id": Uuid::from_u128(2)}]}),
            "port",
        )
        .unwrap();
        assert!(matches!(ports, Create::Bulk(ref items) if items.len() == 2));
        let one = create_body::<PortCreateBody>(
            json!({"port": {"network_id": Uuid::from_u128(1)}}),
            "port",
        )
        .unwrap();
        assert!(matches!(one, Create::One(_)));
        let error = create_body::<PortCreateBody>(
            json!({"ports": [{"network_id": Uuid::from_u128(1)}, {"network_id": Uuid::from_u128(1), "mac_address": "zz"}]}),
            "port",
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("ports[1].mac_address"));
        assert_eq!(error.value, Some(json!("zz")));
        assert!(
            error.message.starts_with("ports[1].mac_address: "),
            "{}",
            error.message
        );
        let error = create_body::<PortCreateBody>(json!({"ports": []}), "port").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("ports"));
        let error =
            create_body::<PortCreateBody>(json!({"ports": [{}], "x": 1}), "port").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("x"));
    }

    /// Neutron's `convert_to_int`: numbers and numeric strings are taken, anything else is a 400
    /// naming the attribute and the value sent.
    #[test]
    fn integers_may_come_as_strings() {
        let network: NetworkCreateBody = body(
            json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": "1001"}}),
            "network",
        )
        .unwrap();
        assert_eq!(network.segmentation_id, Some(1001));
        let speaker: SpeakerCreateBody = body(
            json!({"bgp_speaker": {"local_as": "64512", "ip_version": "4"}}),
            "bgp_speaker",
        )
        .unwrap();
        assert_eq!((speaker.local_as, speaker.ip_version), (64_512, 4));
        let vpn: BgpvpnUpdateBody =
            body(json!({"bgpvpn": {"local_pref": "100"}}), "bgpvpn").unwrap();
        assert_eq!(vpn.local_pref, Some(Some(100)));
        let vpn: BgpvpnUpdateBody =
            body(json!({"bgpvpn": {"local_pref": null}}), "bgpvpn").unwrap();
        assert_eq!(vpn.local_pref, Some(None));
        let subnet: SubnetCreateBody = body(
            json!({"subnet": {"network_id": Uuid::from_u128(1), "cidr": "10.0.0.0/24", "ip_version": "4"}}),
            "subnet",
        )
        .unwrap();
        assert_eq!(subnet.ip_version, Some(4));

        for (sent, reason) in [
            (json!("x"), "'\"x\"' is not an integer"),
            (json!("1.5"), "is not an integer"),
            (json!(true), "is not an integer"),
            (json!(-1), "-1 is out of range"),
            (json!("4294967296"), "4294967296 is out of range"),
        ] {
            let error = body::<NetworkCreateBody>(
                json!({"network": {"provider:segmentation_id": sent.clone()}}),
                "network",
            )
            .unwrap_err();
            assert_eq!(error.field.as_deref(), Some("provider:segmentation_id"));
            assert_eq!(error.value.as_ref(), Some(&sent));
            assert!(error.message.contains(reason), "{sent}: {}", error.message);
        }
    }
}
