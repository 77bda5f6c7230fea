//! API request bodies and their planning into [`Command`]s.
//!
//! Planning reads the state (never changes it) and resolves everything a command must carry to
//! replay identically: new ids, MAC addresses, allocated IPs and segmentation ids, timestamps.
//! It also applies the policy: which attributes a project may set, and which resources it may
//! touch. Bodies are strict (`deny_unknown_fields`): an unknown or mistyped attribute is a 400
//! naming it.

use std::net::IpAddr;

use ipnet::IpNet;
use l2pop_bgpvpn::{BgpvpnCreate, BgpvpnId, BgpvpnUpdate, RouteTarget, SpeakerId, VpnType};
use l2pop_model::{Host, Mac, NetworkId, NetworkType, PortId, Uuid};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::Caller;
use super::command::{
    AssociationRecord, Command, FixedIp, NetworkRecord, PortRecord, SpeakerRecord, SubnetId,
    SubnetRecord,
};
use super::error::ApiError;
use super::state::ServerState;

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
    /// Now, as Neutron's API shows it (`2026-11-21T10:47:02Z`).
    fn now(&mut self) -> String;
}

/// Extracts `{"<key>": {...}}` into `T`, naming the offending attribute on error.
pub fn body<T: DeserializeOwned>(value: Value, key: &str) -> Result<T, ApiError> {
    let Value::Object(mut outer) = value else {
        return Err(ApiError::bad_request(format!(
            "Resource body required: expected a JSON object with the key '{key}'"
        )));
    };
    let inner = outer
        .remove(key)
        .ok_or_else(|| ApiError::bad_request(format!("Resource body required: missing '{key}'")))?;
    if let Some(extra) = outer.keys().next() {
        return Err(ApiError::invalid(
            extra,
            Value::String(extra.clone()),
            "is not a recognized top-level key",
        ));
    }
    tracked(inner)
}

/// Deserializes `value` into `T`. On error the field is the attribute's path
/// (`provider:segmentation_id`, `devices[0].mac`) and the value is what was sent there.
pub fn tracked<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(&value, &mut track);
    T::deserialize(deserializer).map_err(|error| {
        let message = error.to_string();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            return ApiError::invalid(
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
            return ApiError::invalid(&field, Value::Null, "is required");
        }
        let pointer = format!("/{}", path.replace(['[', '.'], "/").replace(']', ""));
        let sent = value.pointer(&pointer).cloned().unwrap_or(Value::Null);
        ApiError::invalid(&path, sent, message)
    })
}

/// Neutron's `NAME_MAX_LEN` (`name`, `device_owner`, `device_id`, `project_id`).
pub const NAME_MAX_LEN: usize = 255;
/// Neutron's `DESCRIPTION_MAX_LEN`.
pub const DESCRIPTION_MAX_LEN: usize = 1024;

/// 400 naming `field` and the value when `value` is longer than `max` characters (Neutron's
/// `validate_string` with `max_len`, which counts characters).
fn check_len(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(text) if text.chars().count() > max => Err(ApiError::invalid(
            field,
            text,
            format!("exceeds maximum length of {max}"),
        )),
        _ => Ok(()),
    }
}

// ---- networks ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    admin_state_up: bool,
    project_id: Option<String>,
    tenant_id: Option<String>,
    #[serde(default)]
    shared: bool,
    #[serde(rename = "provider:network_type")]
    network_type: Option<NetworkType>,
    #[serde(rename = "provider:segmentation_id")]
    segmentation_id: Option<u32>,
    #[serde(rename = "provider:physical_network")]
    physical_network: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdateBody {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
}

fn yes() -> bool {
    true
}

impl ServerState {
    pub fn plan_network_create(
        &self,
        caller: &Caller,
        body: NetworkCreateBody,
        tenant: &TenantNetworks,
        fresh: &mut dyn Fresh,
    ) -> Result<(NetworkId, Command), ApiError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        check_len("description", Some(&body.description), DESCRIPTION_MAX_LEN)?;
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        if body.shared {
            return Err(ApiError::invalid(
                "shared",
                true,
                "is not supported: l2pop networks belong to one project",
            ));
        }
        let provider = body.network_type.is_some()
            || body.segmentation_id.is_some()
            || body.physical_network.is_some();
        if provider {
            caller.require_admin("create_network:provider:network_type")?;
        }
        let network_type = body.network_type.unwrap_or(tenant.network_type);
        let segmentation_id = match (network_type, body.segmentation_id) {
            (_, Some(id)) => Some(id),
            (NetworkType::Vxlan | NetworkType::Gre | NetworkType::Geneve, None) => {
                Some(self.free_segment(network_type, &tenant.vni_ranges)?)
            }
            (NetworkType::Vlan, None) => {
                return Err(ApiError::invalid(
                    "provider:segmentation_id",
                    Value::Null,
                    "is required for a vlan network",
                ));
            }
            (NetworkType::Flat | NetworkType::Local, None) => None,
        };
        let id = NetworkId(fresh.uuid());
        let network = NetworkRecord {
            id,
            name: body.name,
            description: body.description,
            project_id,
            admin_state_up: body.admin_state_up,
            network_type,
            segmentation_id,
            physical_network: body.physical_network,
            created_at: fresh.now(),
        };
        Ok((id, Command::NetworkCreate { network }))
    }

    /// The lowest segmentation id of `network_type` in `ranges` no network uses.
    fn free_segment(
        &self,
        network_type: NetworkType,
        ranges: &[(u32, u32)],
    ) -> Result<u32, ApiError> {
        let used: std::collections::BTreeSet<u32> = self
            .networks
            .values()
            .filter(|n| n.network_type == network_type)
            .filter_map(|n| n.segmentation_id)
            .collect();
        for &(low, high) in ranges {
            let mut candidate = low;
            for &taken in used.range(low..=high) {
                if taken != candidate {
                    break;
                }
                candidate += 1;
            }
            if candidate <= high {
                return Ok(candidate);
            }
        }
        Err(ApiError::conflict(
            "NoNetworkAvailable",
            format!(
                "Unable to create the network. No {network_type} segmentation id is available in the configured ranges."
            ),
        ))
    }

    pub fn plan_network_update(
        &self,
        caller: &Caller,
        id: NetworkId,
        body: NetworkUpdateBody,
    ) -> Result<Command, ApiError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        check_len(
            "description",
            body.description.as_deref(),
            DESCRIPTION_MAX_LEN,
        )?;
        self.visible_network(id, caller)
            .ok_or_else(|| ApiError::not_found("network", id))?;
        Ok(Command::NetworkUpdate {
            id,
            name: body.name,
            description: body.description,
            admin_state_up: body.admin_state_up,
        })
    }

    pub fn plan_network_delete(&self, caller: &Caller, id: NetworkId) -> Result<Command, ApiError> {
        self.visible_network(id, caller)
            .ok_or_else(|| ApiError::not_found("network", id))?;
        Ok(Command::NetworkDelete { id })
    }
}

// ---- subnets ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCreateBody {
    #[serde(default)]
    name: String,
    network_id: NetworkId,
    cidr: IpNet,
    ip_version: Option<u8>,
    /// Absent: the first address; `null`: none.
    #[serde(
        default,
        deserialize_with = "super::command::double_option::deserialize"
    )]
    gateway_ip: Option<Option<IpAddr>>,
    #[serde(default = "yes")]
    enable_dhcp: bool,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetUpdateBody {
    name: String,
}

impl ServerState {
    pub fn plan_subnet_create(
        &self,
        caller: &Caller,
        body: SubnetCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(SubnetId, Command), ApiError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        let network = self
            .visible_network(body.network_id, caller)
            .ok_or_else(|| {
                ApiError::not_found("network", body.network_id).with_field("network_id")
            })?;
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        let version = if body.cidr.addr().is_ipv4() { 4 } else { 6 };
        if let Some(given) = body.ip_version
            && given != version
        {
            return Err(ApiError::invalid(
                "ip_version",
                given,
                format!("does not match cidr {}", body.cidr),
            ));
        }
        if body.cidr.trunc() != body.cidr {
            return Err(ApiError::invalid(
                "cidr",
                body.cidr.to_string(),
                format!("has host bits set; did you mean {}?", body.cidr.trunc()),
            ));
        }
        if body.cidr.prefix_len() >= body.cidr.max_prefix_len() - 1 {
            return Err(ApiError::invalid(
                "cidr",
                body.cidr.to_string(),
                "is too small to hold ports",
            ));
        }
        let gateway_ip = match body.gateway_ip {
            None => Some(nth_address(body.cidr, 1)),
            Some(None) => None,
            Some(Some(gateway)) if reserved_gateway(body.cidr, gateway) => {
                return Err(ApiError::invalid(
                    "gateway_ip",
                    gateway.to_string(),
                    format!(
                        "is the network or broadcast address of {}; a gateway must be a host address",
                        body.cidr
                    ),
                ));
            }
            Some(Some(gateway)) if body.cidr.contains(&gateway) => Some(gateway),
            Some(Some(gateway)) => {
                return Err(ApiError::invalid(
                    "gateway_ip",
                    gateway.to_string(),
                    format!("is not in cidr {}", body.cidr),
                ));
            }
        };
        let id = fresh.uuid();
        let subnet = SubnetRecord {
            id,
            name: body.name,
            project_id,
            network_id: network.id,
            cidr: body.cidr,
            gateway_ip,
            enable_dhcp: body.enable_dhcp,
            created_at: fresh.now(),
        };
        Ok((id, Command::SubnetCreate { subnet }))
    }

    pub fn plan_subnet_update(
        &self,
        caller: &Caller,
        id: SubnetId,
        body: SubnetUpdateBody,
    ) -> Result<Command, ApiError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        self.subnets
            .get(&id)
            .filter(|s| caller.sees(&s.project_id))
            .ok_or_else(|| ApiError::not_found("subnet", id))?;
        Ok(Command::SubnetUpdate {
            id,
            name: body.name,
        })
    }
}

/// Neutron's `check_gateway_invalid_in_subnet`: an IPv4 gateway may be neither the network
/// nor the broadcast address (IPv6 has no broadcast, and its subnet-router anycast address,
/// the network address, is a valid gateway).
fn reserved_gateway(cidr: IpNet, gateway: IpAddr) -> bool {
    match cidr {
        IpNet::V4(v4) => {
            gateway == IpAddr::V4(v4.network()) || gateway == IpAddr::V4(v4.broadcast())
        }
        IpNet::V6(_) => false,
    }
}

/// Device owners that may hold a subnet's gateway address, and on IPv6 its subnet-router
/// anycast address (Neutron's `ROUTER_PORT_OWNERS` and the DHCP port).
const ROUTER_OWNERS: [&str; 6] = [
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
    "network:router_centralized_snat",
    "network:router_gateway",
    "network:dhcp",
];

/// Why `ip` may not be a fixed IP of a port owned by `device_owner` on `subnet` (Neutron's
/// `check_subnet_ip`, and the gateway, which only a router's port takes).
fn reserved_fixed_ip(subnet: &SubnetRecord, ip: IpAddr, device_owner: &str) -> Option<String> {
    let router = ROUTER_OWNERS.contains(&device_owner);
    match subnet.cidr {
        IpNet::V4(v4) if ip == IpAddr::V4(v4.network()) => {
            return Some(format!("is the network address of subnet {}", subnet.id));
        }
        IpNet::V4(v4) if ip == IpAddr::V4(v4.broadcast()) => {
            return Some(format!("is the broadcast address of subnet {}", subnet.id));
        }
        IpNet::V6(v6) if ip == IpAddr::V6(v6.network()) && !router => {
            return Some(format!(
                "is the subnet-router anycast address of subnet {}",
                subnet.id
            ));
        }
        _ => {}
    }
    if subnet.gateway_ip == Some(ip) && !router {
        return Some(format!("is the gateway address of subnet {}", subnet.id));
    }
    None
}

/// The `n`th address of `net` (0 is the network address).
fn nth_address(net: IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(v4) => IpAddr::V4((u32::from(v4.network()).wrapping_add(n as u32)).into()),
        IpNet::V6(v6) => IpAddr::V6((u128::from(v6.network()).wrapping_add(n)).into()),
    }
}

fn address_index(net: IpNet, ip: IpAddr) -> u128 {
    match (net, ip) {
        (IpNet::V4(v4), IpAddr::V4(ip)) => u128::from(u32::from(ip) - u32::from(v4.network())),
        (IpNet::V6(v6), IpAddr::V6(ip)) => u128::from(ip) - u128::from(v6.network()),
        _ => 0,
    }
}

// ---- ports ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIpRequest {
    subnet_id: Option<SubnetId>,
    ip_address: Option<IpAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCreateBody {
    #[serde(default)]
    name: String,
    network_id: NetworkId,
    mac_address: Option<Mac>,
    fixed_ips: Option<Vec<FixedIpRequest>>,
    #[serde(default)]
    device_owner: String,
    #[serde(default)]
    device_id: String,
    #[serde(rename = "binding:host_id")]
    host: Option<String>,
    #[serde(default = "yes")]
    admin_state_up: bool,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortUpdateBody {
    name: Option<String>,
    admin_state_up: Option<bool>,
    mac_address: Option<Mac>,
    fixed_ips: Option<Vec<FixedIpRequest>>,
    device_owner: Option<String>,
    device_id: Option<String>,
    #[serde(rename = "binding:host_id")]
    host: Option<String>,
}

/// `binding:host_id`: an empty string unbinds (Neutron's convention).
fn binding_host(value: &str) -> Result<Option<Host>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    Host::new(value)
        .map(Some)
        .map_err(|e| ApiError::invalid("binding:host_id", value, e))
}

impl ServerState {
    pub fn plan_port_create(
        &self,
        caller: &Caller,
        body: PortCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(PortId, Command), ApiError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        check_len("device_owner", Some(&body.device_owner), NAME_MAX_LEN)?;
        check_len("device_id", Some(&body.device_id), NAME_MAX_LEN)?;
        let network = self
            .visible_network(body.network_id, caller)
            .ok_or_else(|| {
                ApiError::not_found("network", body.network_id).with_field("network_id")
            })?;
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        let host = match &body.host {
            Some(host) => {
                caller.require_admin("create_port:binding:host_id")?;
                binding_host(host)?
            }
            None => None,
        };
        let mac = match body.mac_address {
            Some(mac) => mac,
            None => self.free_mac(network.id, fresh)?,
        };
        let fixed_ips =
            self.resolve_fixed_ips(network.id, body.fixed_ips, &[], &body.device_owner)?;
        let id = PortId(fresh.uuid());
        let port = PortRecord {
            id,
            name: body.name,
            project_id,
            network_id: network.id,
            mac,
            fixed_ips,
            device_owner: body.device_owner,
            device_id: body.device_id,
            host,
            admin_state_up: body.admin_state_up,
            created_at: fresh.now(),
        };
        Ok((id, Command::PortCreate { port }))
    }

    pub fn plan_port_update(
        &self,
        caller: &Caller,
        id: PortId,
        body: PortUpdateBody,
    ) -> Result<Command, ApiError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        check_len("device_owner", body.device_owner.as_deref(), NAME_MAX_LEN)?;
        check_len("device_id", body.device_id.as_deref(), NAME_MAX_LEN)?;
        let port = self
            .ports
            .get(&id)
            .filter(|p| caller.sees(&p.project_id))
            .ok_or_else(|| ApiError::not_found("port", id))?;
        if body.mac_address.is_some() {
            caller.require_admin("update_port:mac_address")?;
        }
        let host = match &body.host {
            Some(host) => {
                caller.require_admin("update_port:binding:host_id")?;
                Some(binding_host(host)?)
            }
            None => None,
        };
        let fixed_ips = match body.fixed_ips {
            Some(requests) => {
                let owner = body.device_owner.as_deref().unwrap_or(&port.device_owner);
                Some(self.resolve_fixed_ips(
                    port.network_id,
                    Some(requests),
                    &port.fixed_ips,
                    owner,
                )?)
            }
            None => None,
        };
        Ok(Command::PortUpdate {
            id,
            name: body.name,
            admin_state_up: body.admin_state_up,
            mac: body.mac_address,
            fixed_ips,
            device_owner: body.device_owner,
            device_id: body.device_id,
            host,
        })
    }

    pub fn plan_port_delete(&self, caller: &Caller, id: PortId) -> Result<Command, ApiError> {
        self.ports
            .get(&id)
            .filter(|p| caller.sees(&p.project_id))
            .ok_or_else(|| ApiError::not_found("port", id))?;
        Ok(Command::PortDelete { id })
    }

    /// A `fa:16:3e:xx:xx:xx` address no port of `network` has (Neutron's `base_mac`).
    fn free_mac(&self, network: NetworkId, fresh: &mut dyn Fresh) -> Result<Mac, ApiError> {
        for _ in 0..16 {
            let [a, b, c] = fresh.mac_suffix();
            let mac = Mac::new([0xfa, 0x16, 0x3e, a, b, c]);
            if self.engine.port_with_mac(network, mac).is_none() {
                return Ok(mac);
            }
        }
        Err(ApiError::conflict(
            "MacAddressGenerationFailure",
            format!("Unable to generate unique mac on network {network}."),
        ))
    }

    /// Resolves `fixed_ips` requests into addresses: a given address is checked against its
    /// subnet, a subnet alone gets its next free address, no request at all gets one address
    /// from the network's first subnet with room. `keep` are the port's current addresses
    /// (an update may keep them). A given address may not be the subnet's network or
    /// broadcast address, nor its gateway unless `device_owner` is a router's.
    fn resolve_fixed_ips(
        &self,
        network: NetworkId,
        requests: Option<Vec<FixedIpRequest>>,
        keep: &[FixedIp],
        device_owner: &str,
    ) -> Result<Vec<FixedIp>, ApiError> {
        let mut subnets: Vec<_> = self
            .subnets
            .values()
            .filter(|s| s.network_id == network)
            .collect();
        subnets.sort_by(|a, b| (&a.created_at, a.id).cmp(&(&b.created_at, b.id)));
        let Some(requests) = requests else {
            for subnet in &subnets {
                if let Some(ip) = self.next_free(subnet.id, subnet.cidr, subnet.gateway_ip, &[]) {
                    return Ok(vec![FixedIp {
                        subnet_id: subnet.id,
                        ip_address: ip,
                    }]);
                }
            }
            if subnets.is_empty() {
                return Ok(Vec::new());
            }
            return Err(ApiError::conflict(
                "IpAddressGenerationFailure",
                format!("No more IP addresses available on network {network}."),
            ));
        };
        if requests.len() > self.max_fixed_ips_per_port {
            return Err(ApiError::invalid(
                "fixed_ips",
                requests.len().to_string(),
                format!(
                    "Exceeded maximum amount of fixed ips per port ({}).",
                    self.max_fixed_ips_per_port
                ),
            ));
        }
        let mut resolved: Vec<FixedIp> = Vec::new();
        // This request's addresses, and per subnet where its next scan starts: each address is
        // looked at about once, so the cost is linear in the request.
        let mut taken: std::collections::HashSet<IpAddr> = std::collections::HashSet::new();
        let mut cursors: std::collections::HashMap<SubnetId, IpAddr> =
            std::collections::HashMap::new();
        for request in requests {
            let subnet = match (request.subnet_id, request.ip_address) {
                (Some(id), _) => subnets.iter().find(|s| s.id == id).ok_or_else(|| {
                    ApiError::invalid(
                        "fixed_ips",
                        id.to_string(),
                        format!("is not a subnet of network {network}"),
                    )
                })?,
                (None, Some(ip)) => {
                    subnets
                        .iter()
                        .find(|s| s.cidr.contains(&ip))
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "fixed_ips",
                                ip.to_string(),
                                format!("is in no subnet of network {network}"),
                            )
                        })?
                }
                (None, None) => {
                    return Err(ApiError::invalid(
                        "fixed_ips",
                        Value::Object(Default::default()),
                        "needs a subnet_id or an ip_address",
                    ));
                }
            };
            let ip = match request.ip_address {
                Some(ip) => {
                    if !subnet.cidr.contains(&ip) {
                        return Err(ApiError::invalid(
                            "fixed_ips",
                            ip.to_string(),
                            format!("is not in subnet {} ({})", subnet.id, subnet.cidr),
                        ));
                    }
                    if let Some(why) = reserved_fixed_ip(subnet, ip, device_owner) {
                        return Err(ApiError::invalid("fixed_ips", ip.to_string(), why));
                    }
                    let ours = keep.iter().any(|f| f.ip_address == ip);
                    let used = self
                        .allocations
                        .get(&subnet.id)
                        .is_some_and(|a| a.used.contains(&ip));
                    if (used && !ours) || taken.contains(&ip) {
                        return Err(ApiError::conflict(
                            "IpAddressAlreadyAllocated",
                            format!("IP address {ip} already allocated in subnet {}", subnet.id),
                        )
                        .with_field("fixed_ips"));
                    }
                    ip
                }
                None => self
                    .next_free_from(
                        subnet.id,
                        subnet.cidr,
                        subnet.gateway_ip,
                        &taken,
                        cursors.get(&subnet.id).copied(),
                    )
                    .ok_or_else(|| {
                        ApiError::conflict(
                            "IpAddressGenerationFailure",
                            format!("No more IP addresses available on subnet {}.", subnet.id),
                        )
                    })?,
            };
            taken.insert(ip);
            cursors.insert(subnet.id, ip);
            resolved.push(FixedIp {
                subnet_id: subnet.id,
                ip_address: ip,
            });
        }
        Ok(resolved)
    }

    /// The next free host address after the subnet's cursor (wrapping), skipping the network
    /// address, the gateway and (IPv4) the broadcast address.
    fn next_free(
        &self,
        subnet: SubnetId,
        cidr: IpNet,
        gateway: Option<IpAddr>,
        also_taken: &[IpAddr],
    ) -> Option<IpAddr> {
        let also_taken = also_taken.iter().copied().collect();
        self.next_free_from(subnet, cidr, gateway, &also_taken, None)
    }

    /// [`Self::next_free`], scanning from just after `from` (this request's last address in
    /// the subnet) instead of the subnet's cursor when given.
    fn next_free_from(
        &self,
        subnet: SubnetId,
        cidr: IpNet,
        gateway: Option<IpAddr>,
        also_taken: &std::collections::HashSet<IpAddr>,
        from: Option<IpAddr>,
    ) -> Option<IpAddr> {
        let allocation = self.allocations.get(&subnet);
        let size: u128 = match cidr {
            IpNet::V4(_) => (1u128 << (32 - u32::from(cidr.prefix_len()))) - 1,
            IpNet::V6(_) => {
                let bits = 128 - u32::from(cidr.prefix_len());
                if bits >= 127 {
                    u128::MAX / 2
                } else {
                    (1u128 << bits) - 1
                }
            }
        };
        // Host indexes 1..size (IPv4: size is the broadcast, excluded).
        let last = if cidr.addr().is_ipv4() {
            size - 1
        } else {
            size
        };
        if last < 1 {
            return None;
        }
        let start = from
            .or_else(|| allocation.and_then(|a| a.cursor))
            .map_or(1, |ip| address_index(cidr, ip) % last + 1);
        let used = allocation.map_or(0, |a| a.used.len()) + also_taken.len() + 2;
        let mut index = start;
        for _ in 0..used.min(usize::try_from(last).unwrap_or(usize::MAX)) + 1 {
            let ip = nth_address(cidr, index);
            let taken = Some(ip) == gateway
                || allocation.is_some_and(|a| a.used.contains(&ip))
                || also_taken.contains(&ip);
            if !taken {
                return Some(ip);
            }
            index = index % last + 1;
        }
        None
    }
}

// ---- l2pop agent reports and device state (also reachable over the bus RPC) ----

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    pub host: Host,
    #[serde(default)]
    pub refresh_tunnels: bool,
}

impl ServerState {
    /// `None` when the report changes nothing the engine reads (a heartbeat).
    pub fn plan_agent_report(
        &self,
        body: AgentReportBody,
        fresh: &mut dyn Fresh,
    ) -> Option<Command> {
        let known = self.engine.agent(&body.host);
        let unchanged = known.is_some_and(|agent| {
            agent.tunneling_ip == body.tunneling_ip
                && agent.tunnel_types == body.tunnel_types
                && agent.l2pop_network_types == body.l2pop_network_types
        });
        if unchanged && !body.start_flag {
            return None;
        }
        let id = self
            .agents
            .get(&body.host)
            .map_or_else(|| fresh.uuid(), |a| a.id);
        Some(Command::AgentReport {
            id,
            agent_type: body
                .agent_type
                .unwrap_or_else(|| super::views::L2_AGENT_TYPE.to_owned()),
            binary: body
                .binary
                .unwrap_or_else(|| "neutron-openvswitch-agent".to_owned()),
            at: fresh.now(),
            report: l2pop_engine::AgentReport {
                host: body.host,
                tunneling_ip: body.tunneling_ip,
                tunnel_types: body.tunnel_types,
                l2pop_network_types: body.l2pop_network_types,
                start_flag: body.start_flag,
            },
        })
    }

    pub fn plan_device(
        &self,
        port: PortId,
        up: bool,
        body: DeviceBody,
    ) -> Result<Command, ApiError> {
        if !self.ports.contains_key(&port) {
            return Err(ApiError::not_found("port", port));
        }
        Ok(if up {
            Command::DeviceUp(l2pop_engine::DeviceUp {
                id: port,
                host: body.host,
                refresh_tunnels: body.refresh_tunnels,
            })
        } else {
            Command::DeviceDown(l2pop_engine::DeviceDown {
                id: port,
                host: body.host,
            })
        })
    }
}

// ---- BGPVPNs (networking-bgpvpn) ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnCreateBody {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    vpn_type: VpnType,
    #[serde(default)]
    route_targets: Vec<RouteTarget>,
    #[serde(default)]
    import_targets: Vec<RouteTarget>,
    #[serde(default)]
    export_targets: Vec<RouteTarget>,
    #[serde(default)]
    route_distinguishers: Vec<RouteTarget>,
    vni: Option<u64>,
    local_pref: Option<u64>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnUpdateBody {
    name: Option<String>,
    route_targets: Option<Vec<RouteTarget>>,
    import_targets: Option<Vec<RouteTarget>>,
    export_targets: Option<Vec<RouteTarget>>,
    route_distinguishers: Option<Vec<RouteTarget>>,
    #[serde(
        default,
        deserialize_with = "super::command::double_option::deserialize"
    )]
    local_pref: Option<Option<u64>>,
    #[serde(
        default,
        rename = "type",
        deserialize_with = "super::command::double_option::deserialize"
    )]
    vpn_type: Option<Option<Value>>,
    #[serde(
        default,
        deserialize_with = "super::command::double_option::deserialize"
    )]
    vni: Option<Option<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationBody {
    network_id: NetworkId,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

impl ServerState {
    pub fn plan_bgpvpn_create(
        &self,
        caller: &Caller,
        body: BgpvpnCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(BgpvpnId, Command), ApiError> {
        caller.require_admin("create_bgpvpn")?;
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        let id = BgpvpnId(fresh.uuid());
        Ok((
            id,
            Command::BgpvpnCreate(BgpvpnCreate {
                id,
                project_id,
                name: body.name,
                vpn_type: body.vpn_type,
                route_targets: body.route_targets,
                import_targets: body.import_targets,
                export_targets: body.export_targets,
                route_distinguishers: body.route_distinguishers,
                vni: body.vni,
                local_pref: body.local_pref,
            }),
        ))
    }

    pub fn plan_bgpvpn_update(
        &self,
        caller: &Caller,
        id: BgpvpnId,
        body: BgpvpnUpdateBody,
    ) -> Result<Command, ApiError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        self.visible_bgpvpn(id, caller)
            .ok_or_else(|| ApiError::not_found("bgpvpn", id))?;
        let targets = [
            ("route_targets", body.route_targets.is_some()),
            ("import_targets", body.import_targets.is_some()),
            ("export_targets", body.export_targets.is_some()),
            ("route_distinguishers", body.route_distinguishers.is_some()),
        ];
        for (field, given) in targets {
            if given {
                caller.require_admin(&format!("update_bgpvpn:{field}"))?;
            }
        }
        Ok(Command::BgpvpnUpdate(BgpvpnUpdate {
            id,
            name: body.name,
            route_targets: body.route_targets,
            import_targets: body.import_targets,
            export_targets: body.export_targets,
            route_distinguishers: body.route_distinguishers,
            local_pref: body.local_pref,
            vpn_type: body.vpn_type,
            vni: body.vni,
        }))
    }

    pub fn plan_bgpvpn_delete(&self, caller: &Caller, id: BgpvpnId) -> Result<Command, ApiError> {
        caller.require_admin("delete_bgpvpn")?;
        self.visible_bgpvpn(id, caller)
            .ok_or_else(|| ApiError::not_found("bgpvpn", id))?;
        Ok(Command::BgpvpnDelete { id })
    }

    pub fn plan_association_create(
        &self,
        caller: &Caller,
        bgpvpn: BgpvpnId,
        body: AssociationBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(Uuid, Command), ApiError> {
        let vpn = self
            .visible_bgpvpn(bgpvpn, caller)
            .ok_or_else(|| ApiError::not_found("bgpvpn", bgpvpn))?;
        let network = self
            .visible_network(body.network_id, caller)
            .ok_or_else(|| {
                ApiError::not_found("network", body.network_id).with_field("network_id")
            })?;
        if !caller.is_admin() && network.project_id != vpn.project_id {
            return Err(ApiError::invalid(
                "network_id",
                network.id.to_string(),
                "belongs to another project than the BGPVPN",
            ));
        }
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        let id = fresh.uuid();
        Ok((
            id,
            Command::AssociationCreate {
                association: AssociationRecord {
                    id,
                    bgpvpn_id: bgpvpn,
                    network_id: network.id,
                    project_id,
                },
            },
        ))
    }

    pub fn plan_association_delete(
        &self,
        caller: &Caller,
        bgpvpn: BgpvpnId,
        id: Uuid,
    ) -> Result<Command, ApiError> {
        self.visible_bgpvpn(bgpvpn, caller)
            .ok_or_else(|| ApiError::not_found("bgpvpn", bgpvpn))?;
        self.associations
            .get(&id)
            .filter(|a| a.bgpvpn_id == bgpvpn && caller.sees(&a.project_id))
            .ok_or_else(|| ApiError::not_found("network_association", id))?;
        Ok(Command::AssociationDelete { id })
    }
}

// ---- BGP speakers and BGP agents (neutron-dynamic-routing, StarlingX) ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerCreateBody {
    #[serde(default)]
    name: String,
    local_as: u32,
    #[serde(default = "four")]
    ip_version: u8,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

fn four() -> u8 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerUpdateBody {
    name: String,
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
}

impl ServerState {
    pub fn plan_speaker_create(
        &self,
        caller: &Caller,
        body: SpeakerCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(SpeakerId, Command), ApiError> {
        caller.require_admin("create_bgp_speaker")?;
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        if body.local_as == 0 {
            return Err(ApiError::invalid(
                "local_as",
                0,
                "is not in range 1..=4294967295",
            ));
        }
        if body.ip_version != 4 && body.ip_version != 6 {
            return Err(ApiError::invalid(
                "ip_version",
                body.ip_version,
                "is not 4 or 6",
            ));
        }
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        let id = SpeakerId(fresh.uuid());
        Ok((
            id,
            Command::SpeakerCreate {
                speaker: SpeakerRecord {
                    id,
                    name: body.name,
                    project_id,
                    local_as: body.local_as,
                    ip_version: body.ip_version,
                    agents: Default::default(),
                    vpns: Default::default(),
                },
            },
        ))
    }

    pub fn plan_speaker_update(
        &self,
        caller: &Caller,
        id: SpeakerId,
        body: SpeakerUpdateBody,
    ) -> Result<Command, ApiError> {
        caller.require_admin("update_bgp_speaker")?;
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        if !self.speakers.contains_key(&id) {
            return Err(ApiError::not_found("bgp_speaker", id));
        }
        Ok(Command::SpeakerUpdate {
            id,
            name: body.name,
        })
    }

    /// `add_bgp_vpn` (`add` true) or `remove_bgp_vpn`.
    pub fn plan_speaker_vpn(
        &self,
        caller: &Caller,
        id: SpeakerId,
        body: SpeakerVpnBody,
        add: bool,
    ) -> Result<Command, ApiError> {
        caller.require_admin("update_bgp_speaker")?;
        if !self.speakers.contains_key(&id) {
            return Err(ApiError::not_found("bgp_speaker", id));
        }
        if !self.bgpvpn_exists(body.bgpvpn_id) {
            return Err(ApiError::not_found("bgpvpn", body.bgpvpn_id).with_field("bgpvpn_id"));
        }
        Ok(if add {
            Command::SpeakerAddVpn {
                speaker_id: id,
                bgpvpn_id: body.bgpvpn_id,
            }
        } else {
            Command::SpeakerRemoveVpn {
                speaker_id: id,
                bgpvpn_id: body.bgpvpn_id,
            }
        })
    }

    /// The BGP agent whose id is `agent_id`.
    pub fn bgp_agent_host(&self, agent_id: Uuid) -> Option<Host> {
        self.bgp_agents
            .values()
            .find(|a| a.id == agent_id)
            .map(|a| a.host.clone())
    }

    pub fn plan_bgp_agent_report(
        &self,
        host: Host,
        body: BgpAgentBody,
        fresh: &mut dyn Fresh,
    ) -> Command {
        let id = self
            .bgp_agents
            .get(&host)
            .map_or_else(|| fresh.uuid(), |a| a.id);
        Command::BgpAgentReport {
            id,
            at: fresh.now(),
            report: l2pop_bgpvpn::BgpAgentReport {
                host,
                admin_state_up: body.admin_state_up,
                alive: body.alive,
                start_flag: body.start_flag,
            },
        }
    }
}
