//! Planning: a [`Request`] against the state (read, never changed) becomes at most one
//! [`Command`] and the [`Answer`] to render once it executed. Planning resolves everything a
//! command must carry to replay identically (new ids, MAC addresses, allocated IPs and
//! segmentation ids, timestamps) and applies the policy: which attributes a project may set, and
//! which resources it may touch. [`NeutronState::handle`] is the whole of a write: plan, execute,
//! move the liveness, render.

use std::net::IpAddr;

use ipnet::IpNet;
use l2pop_bgpvpn::{BgpvpnCreate, BgpvpnId, BgpvpnUpdate, SpeakerId};
use l2pop_model::{Host, Mac, NetworkId, NetworkType, PortId, Uuid};
use serde_json::Value;

use crate::addresses::{address_index, nth_address};
use crate::command::{
    AllocationPool, AssociationRecord, Command, FixedIp, HostRoute, NetworkRecord, PortRecord,
    SegmentId, SegmentRecord, SpeakerRecord, SubnetId, SubnetRecord,
};
use crate::error::NeutronError;
use crate::policy::Caller;
use crate::request::{
    AgentReportBody, AssociationBody, BgpAgentBody, BgpvpnCreateBody, BgpvpnUpdateBody,
    DESCRIPTION_MAX_LEN, DeviceBody, FixedIpRequest, Fresh, NAME_MAX_LEN, NetworkCreateBody,
    NetworkUpdateBody, PortCreateBody, PortUpdateBody, SegmentCreateBody, SegmentUpdateBody,
    SpeakerCreateBody, SpeakerUpdateBody, SpeakerVpnBody, SubnetCreateBody, SubnetUpdateBody,
    TenantNetworks, check_len, check_security_groups,
};
use crate::state::NeutronState;

// ---- networks ----

impl NeutronState {
    /// The id of a new `resource`: the caller's (admin only, refused with 409 when a network,
    /// subnet or port has it already), else a fresh one.
    fn new_id(
        &self,
        caller: &Caller,
        resource: &str,
        given: Option<Uuid>,
        fresh: &mut dyn Fresh,
    ) -> Result<Uuid, NeutronError> {
        let Some(id) = given else {
            return Ok(fresh.uuid());
        };
        caller.require_admin(&format!("create_{resource}:id"))?;
        let catalog = &self.catalog;
        let taken = catalog.networks.contains_key(&NetworkId(id))
            || catalog.subnets.contains_key(&id)
            || catalog.ports.contains_key(&PortId(id));
        if taken {
            let mut error = NeutronError::conflict(
                "Conflict",
                format!("Unable to create the {resource}: id {id} is in use."),
            )
            .with_field("id");
            error.value = Some(Value::String(id.to_string()));
            return Err(error);
        }
        Ok(id)
    }
}

impl NeutronState {
    pub fn plan_network_create(
        &self,
        caller: &Caller,
        body: NetworkCreateBody,
        tenant: &TenantNetworks,
        fresh: &mut dyn Fresh,
    ) -> Result<(NetworkId, Command), NeutronError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        check_len("description", Some(&body.description), DESCRIPTION_MAX_LEN)?;
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        if body.shared {
            return Err(NeutronError::invalid(
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
                return Err(NeutronError::invalid(
                    "provider:segmentation_id",
                    Value::Null,
                    "is required for a vlan network",
                ));
            }
            (NetworkType::Flat | NetworkType::Local, None) => None,
        };
        check_len("description", Some(&body.description), DESCRIPTION_MAX_LEN)?;
        if let Some(mtu) = body.mtu {
            check_mtu(mtu, network_type)?;
        }
        let id = NetworkId(self.new_id(caller, "network", body.id, fresh)?);
        let network = NetworkRecord {
            id,
            name: body.name,
            description: body.description,
            project_id,
            admin_state_up: body.admin_state_up,
            network_type,
            segmentation_id,
            physical_network: body.physical_network,
            created_at: fresh.now().to_string(),
            mtu: body.mtu,
            port_security_enabled: body.port_security_enabled,
            segment_id: Some(fresh.uuid()),
        };
        Ok((id, Command::NetworkCreate { network }))
    }

    /// The lowest segmentation id of `network_type` in `ranges` no segment uses.
    fn free_segment(
        &self,
        network_type: NetworkType,
        ranges: &[(u32, u32)],
    ) -> Result<u32, NeutronError> {
        let used: std::collections::BTreeSet<u32> = self
            .catalog
            .segment_keys
            .keys()
            .filter(|(t, _, _)| *t == network_type)
            .filter_map(|(_, _, id)| *id)
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
        Err(NeutronError::conflict(
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
    ) -> Result<Command, NeutronError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        check_len(
            "description",
            body.description.as_deref(),
            DESCRIPTION_MAX_LEN,
        )?;
        let network = self
            .catalog
            .visible_network(id, caller)
            .ok_or_else(|| NeutronError::not_found("network", id))?;
        if let Some(mtu) = body.mtu {
            check_mtu(mtu, network.network_type)?;
        }
        Ok(Command::NetworkUpdate {
            id,
            name: body.name,
            description: body.description,
            admin_state_up: body.admin_state_up,
            mtu: body.mtu,
            port_security_enabled: body.port_security_enabled,
        })
    }

    pub fn plan_network_delete(
        &self,
        caller: &Caller,
        id: NetworkId,
    ) -> Result<Command, NeutronError> {
        self.catalog
            .visible_network(id, caller)
            .ok_or_else(|| NeutronError::not_found("network", id))?;
        Ok(Command::NetworkDelete { id })
    }
}

// ---- segments ----

impl NeutronState {
    /// Neutron's segments extension (admin only, as its policy): a segment after the network's
    /// last, its segmentation id allocated from the tenant ranges for a tunnel type when not
    /// given (ML2's type driver does the same). Its attributes are checked when executed.
    pub fn plan_segment_create(
        &self,
        caller: &Caller,
        body: SegmentCreateBody,
        tenant: &TenantNetworks,
        fresh: &mut dyn Fresh,
    ) -> Result<(SegmentId, Command), NeutronError> {
        caller.require_admin("create_segment")?;
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        check_len("description", Some(&body.description), DESCRIPTION_MAX_LEN)?;
        if !self.catalog.networks.contains_key(&body.network_id) {
            return Err(
                NeutronError::not_found("network", body.network_id).with_field("network_id")
            );
        }
        let segmentation_id = match (body.network_type, body.segmentation_id) {
            (_, Some(id)) => Some(id),
            (NetworkType::Vxlan | NetworkType::Gre | NetworkType::Geneve, None) => Some(
                self.free_segment(body.network_type, &tenant.vni_ranges)
                    .map_err(|e| e.with_field("segmentation_id"))?,
            ),
            (NetworkType::Vlan, None) => {
                return Err(NeutronError::invalid(
                    "segmentation_id",
                    Value::Null,
                    "is required for a vlan segment",
                ));
            }
            (NetworkType::Flat | NetworkType::Local, None) => None,
        };
        let id = match body.id {
            Some(id) => {
                caller.require_admin("create_segment:id")?;
                id
            }
            None => fresh.uuid(),
        };
        let segment_index = self
            .catalog
            .network_segments(body.network_id)
            .last()
            .map_or(0, |last| last.segment_index + 1);
        let segment = SegmentRecord {
            id,
            network_id: body.network_id,
            name: body.name,
            description: body.description,
            network_type: body.network_type,
            segmentation_id,
            physical_network: body.physical_network,
            segment_index,
        };
        Ok((id, Command::SegmentCreate { segment }))
    }

    pub fn plan_segment_update(
        &self,
        caller: &Caller,
        id: SegmentId,
        body: SegmentUpdateBody,
    ) -> Result<Command, NeutronError> {
        caller.require_admin("update_segment")?;
        check_len(
            "name",
            body.name.as_ref().and_then(|n| n.as_deref()),
            NAME_MAX_LEN,
        )?;
        check_len(
            "description",
            body.description.as_deref(),
            DESCRIPTION_MAX_LEN,
        )?;
        if !self.catalog.segments.contains_key(&id) {
            return Err(NeutronError::not_found("segment", id));
        }
        Ok(Command::SegmentUpdate {
            id,
            name: body.name,
            description: body.description,
        })
    }

    /// The refusals (`SegmentInUse`) are the execution's (see `NeutronState::segment_delete`).
    pub fn plan_segment_delete(
        &self,
        caller: &Caller,
        id: SegmentId,
    ) -> Result<Command, NeutronError> {
        caller.require_admin("delete_segment")?;
        if !self.catalog.segments.contains_key(&id) {
            return Err(NeutronError::not_found("segment", id));
        }
        Ok(Command::SegmentDelete { id })
    }
}

// ---- subnets ----

impl NeutronState {
    pub fn plan_subnet_create(
        &self,
        caller: &Caller,
        body: SubnetCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(SubnetId, Command), NeutronError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        let network = self
            .catalog
            .visible_network(body.network_id, caller)
            .ok_or_else(|| {
                NeutronError::not_found("network", body.network_id).with_field("network_id")
            })?;
        let project_id =
            caller.owning_project(body.project_id.as_deref(), body.tenant_id.as_deref())?;
        let version = if body.cidr.addr().is_ipv4() { 4 } else { 6 };
        if let Some(given) = body.ip_version
            && given != version
        {
            return Err(NeutronError::invalid(
                "ip_version",
                given,
                format!("does not match cidr {}", body.cidr),
            ));
        }
        if body.cidr.trunc() != body.cidr {
            return Err(NeutronError::invalid(
                "cidr",
                body.cidr.to_string(),
                format!("has host bits set; did you mean {}?", body.cidr.trunc()),
            ));
        }
        if body.cidr.prefix_len() >= body.cidr.max_prefix_len() - 1 {
            return Err(NeutronError::invalid(
                "cidr",
                body.cidr.to_string(),
                "is too small to hold ports",
            ));
        }
        let gateway_ip = match body.gateway_ip {
            None => Some(nth_address(body.cidr, 1)),
            Some(None) => None,
            Some(Some(gateway)) if reserved_gateway(body.cidr, gateway) => {
                return Err(NeutronError::invalid(
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
                return Err(NeutronError::invalid(
                    "gateway_ip",
                    gateway.to_string(),
                    format!("is not in cidr {}", body.cidr),
                ));
            }
        };
        check_len("description", Some(&body.description), DESCRIPTION_MAX_LEN)?;
        if let Some(pools) = &body.allocation_pools {
            check_pools(body.cidr, gateway_ip, pools)?;
        }
        check_dns_nameservers(&body.dns_nameservers)?;
        check_host_routes(body.cidr, &body.host_routes)?;
        for (field, mode) in [
            ("ipv6_address_mode", body.ipv6_address_mode),
            ("ipv6_ra_mode", body.ipv6_ra_mode),
        ] {
            if let Some(mode) = mode
                && version == 4
            {
                return Err(NeutronError::invalid(
                    field,
                    serde_json::to_value(mode).unwrap_or(Value::Null),
                    "is only for IPv6 subnets",
                ));
            }
        }
        if let (Some(address), Some(ra)) = (body.ipv6_address_mode, body.ipv6_ra_mode)
            && address != ra
        {
            return Err(NeutronError::invalid(
                "ipv6_ra_mode",
                serde_json::to_value(ra).unwrap_or(Value::Null),
                "must equal ipv6_address_mode when both are set",
            ));
        }
        let id = self.new_id(caller, "subnet", body.id, fresh)?;
        let subnet = SubnetRecord {
            id,
            name: body.name,
            project_id,
            network_id: network.id,
            cidr: body.cidr,
            gateway_ip,
            enable_dhcp: body.enable_dhcp,
            created_at: fresh.now().to_string(),
            description: body.description,
            allocation_pools: body.allocation_pools,
            dns_nameservers: body.dns_nameservers,
            host_routes: body.host_routes,
            ipv6_address_mode: body.ipv6_address_mode,
            ipv6_ra_mode: body.ipv6_ra_mode,
        };
        Ok((id, Command::SubnetCreate { subnet }))
    }

    pub fn plan_subnet_update(
        &self,
        caller: &Caller,
        id: SubnetId,
        body: SubnetUpdateBody,
    ) -> Result<Command, NeutronError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        check_len(
            "description",
            body.description.as_deref(),
            DESCRIPTION_MAX_LEN,
        )?;
        let subnet = self
            .catalog
            .subnets
            .get(&id)
            .filter(|s| caller.sees(&s.project_id))
            .ok_or_else(|| NeutronError::not_found("subnet", id))?;
        if let Some(servers) = &body.dns_nameservers {
            check_dns_nameservers(servers)?;
        }
        if let Some(routes) = &body.host_routes {
            check_host_routes(subnet.cidr, routes)?;
        }
        Ok(Command::SubnetUpdate {
            id,
            name: body.name,
            description: body.description,
            dns_nameservers: body.dns_nameservers,
            host_routes: body.host_routes,
            enable_dhcp: body.enable_dhcp,
        })
    }
}

impl NeutronState {
    /// Neutron's `SubnetInUse` (409) while a port has an address in the subnet.
    pub fn plan_subnet_delete(
        &self,
        caller: &Caller,
        id: SubnetId,
    ) -> Result<Command, NeutronError> {
        let subnet = self
            .catalog
            .visible_subnet(id, caller)
            .ok_or_else(|| NeutronError::not_found("subnet", id))?;
        let in_use = self
            .catalog
            .network_ports
            .get(&subnet.network_id)
            .into_iter()
            .flatten()
            .filter_map(|port| self.catalog.ports.get(port))
            .any(|port| port.fixed_ips.iter().any(|f| f.subnet_id == id));
        if in_use {
            return Err(NeutronError::conflict(
                "SubnetInUse",
                format!(
                    "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                ),
            )
            .with_field("id"));
        }
        Ok(Command::SubnetDelete { id })
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
/// Neutron's MTU rules: at least 68 (IPv4's minimum), at most what the network type allows
/// ("Requested MTU is too big").
fn check_mtu(mtu: u32, network_type: NetworkType) -> Result<(), NeutronError> {
    let max = crate::command::max_mtu(network_type);
    if !(68..=max).contains(&mtu) {
        return Err(NeutronError::invalid(
            "mtu",
            mtu,
            format!("must be between 68 and {max} for a {network_type} network"),
        ));
    }
    Ok(())
}

/// Neutron's `max_dns_nameservers` and `max_subnet_host_routes` defaults.
pub const MAX_DNS_NAMESERVERS: usize = 5;
pub const MAX_HOST_ROUTES: usize = 20;

/// Given pools: inside the cidr, `start <= end`, neither IPv4's network nor broadcast
/// address, not overlapping one another nor holding the gateway (Neutron's
/// `validate_allocation_pools`).
fn check_pools(
    cidr: IpNet,
    gateway: Option<IpAddr>,
    pools: &[AllocationPool],
) -> Result<(), NeutronError> {
    let sent = |pool: &AllocationPool| serde_json::to_value(pool).unwrap_or(Value::Null);
    let mut ranges: Vec<(u128, u128)> = Vec::new();
    for pool in pools {
        if !cidr.contains(&pool.start) || !cidr.contains(&pool.end) {
            return Err(NeutronError::invalid(
                "allocation_pools",
                sent(pool),
                format!("is not within cidr {cidr}"),
            ));
        }
        let (start, end) = (
            address_index(cidr, pool.start),
            address_index(cidr, pool.end),
        );
        if start > end {
            return Err(NeutronError::invalid(
                "allocation_pools",
                sent(pool),
                "starts after its end",
            ));
        }
        if reserved_gateway(cidr, pool.start) || reserved_gateway(cidr, pool.end) {
            return Err(NeutronError::invalid(
                "allocation_pools",
                sent(pool),
                format!("holds the network or broadcast address of {cidr}"),
            ));
        }
        if let Some(gateway) = gateway.filter(|g| cidr.contains(g))
            && (start..=end).contains(&address_index(cidr, gateway))
        {
            return Err(NeutronError::invalid(
                "allocation_pools",
                sent(pool),
                format!("holds the gateway {gateway}"),
            ));
        }
        if ranges.iter().any(|&(s, e)| start <= e && s <= end) {
            return Err(NeutronError::invalid(
                "allocation_pools",
                sent(pool),
                "overlaps another pool",
            ));
        }
        ranges.push((start, end));
    }
    Ok(())
}

fn check_dns_nameservers(servers: &[IpAddr]) -> Result<(), NeutronError> {
    if servers.len() > MAX_DNS_NAMESERVERS {
        return Err(NeutronError::invalid(
            "dns_nameservers",
            servers.len(),
            format!("exceeds the maximum of {MAX_DNS_NAMESERVERS} name servers"),
        ));
    }
    for (n, server) in servers.iter().enumerate() {
        if servers[..n].contains(server) {
            return Err(NeutronError::invalid(
                "dns_nameservers",
                server.to_string(),
                "is a duplicate name server",
            ));
        }
    }
    Ok(())
}

fn check_host_routes(cidr: IpNet, routes: &[HostRoute]) -> Result<(), NeutronError> {
    if routes.len() > MAX_HOST_ROUTES {
        return Err(NeutronError::invalid(
            "host_routes",
            routes.len(),
            format!("exceeds the maximum of {MAX_HOST_ROUTES} host routes"),
        ));
    }
    for (n, route) in routes.iter().enumerate() {
        let sent = serde_json::to_value(route).unwrap_or(Value::Null);
        if route.destination.addr().is_ipv4() != cidr.addr().is_ipv4()
            || route.nexthop.is_ipv4() != cidr.addr().is_ipv4()
        {
            return Err(NeutronError::invalid(
                "host_routes",
                sent,
                format!("is not of the IP version of {cidr}"),
            ));
        }
        if routes[..n].contains(route) {
            return Err(NeutronError::invalid(
                "host_routes",
                sent,
                "is a duplicate host route",
            ));
        }
    }
    Ok(())
}

// ---- ports ----

/// `binding:host_id`: an empty string unbinds (Neutron's convention).
fn binding_host(value: &str) -> Result<Option<Host>, NeutronError> {
    if value.is_empty() {
        return Ok(None);
    }
    Host::new(value)
        .map(Some)
        .map_err(|e| NeutronError::invalid("binding:host_id", value, e))
}

impl NeutronState {
    pub fn plan_port_create(
        &self,
        caller: &Caller,
        body: PortCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(PortId, Command), NeutronError> {
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        check_len("device_owner", Some(&body.device_owner), NAME_MAX_LEN)?;
        check_len("device_id", Some(&body.device_id), NAME_MAX_LEN)?;
        let network = self
            .catalog
            .visible_network(body.network_id, caller)
            .ok_or_else(|| {
                NeutronError::not_found("network", body.network_id).with_field("network_id")
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
        check_len("description", Some(&body.description), DESCRIPTION_MAX_LEN)?;
        check_security_groups(body.security_groups.as_deref())?;
        let port_security_enabled = body
            .port_security_enabled
            .unwrap_or(network.port_security_enabled);
        let fixed_ips =
            self.resolve_fixed_ips(network.id, body.fixed_ips, &[], &body.device_owner)?;
        let id = PortId(self.new_id(caller, "port", body.id, fresh)?);
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
            created_at: fresh.now().to_string(),
            description: body.description,
            port_security_enabled,
            vnic_type: body.vnic_type.unwrap_or_default(),
        };
        Ok((id, Command::PortCreate { port }))
    }

    pub fn plan_port_update(
        &self,
        caller: &Caller,
        id: PortId,
        body: PortUpdateBody,
    ) -> Result<Command, NeutronError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        check_len("device_owner", body.device_owner.as_deref(), NAME_MAX_LEN)?;
        check_len("device_id", body.device_id.as_deref(), NAME_MAX_LEN)?;
        check_len(
            "description",
            body.description.as_deref(),
            DESCRIPTION_MAX_LEN,
        )?;
        check_security_groups(body.security_groups.as_deref())?;
        let port = self
            .catalog
            .ports
            .get(&id)
            .filter(|p| caller.sees(&p.project_id))
            .ok_or_else(|| NeutronError::not_found("port", id))?;
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
            description: body.description,
            port_security_enabled: body.port_security_enabled,
            vnic_type: body.vnic_type,
        })
    }

    pub fn plan_port_delete(&self, caller: &Caller, id: PortId) -> Result<Command, NeutronError> {
        self.catalog
            .ports
            .get(&id)
            .filter(|p| caller.sees(&p.project_id))
            .ok_or_else(|| NeutronError::not_found("port", id))?;
        Ok(Command::PortDelete { id })
    }

    /// A `fa:16:3e:xx:xx:xx` address no port of `network` has (Neutron's `base_mac`).
    fn free_mac(&self, network: NetworkId, fresh: &mut dyn Fresh) -> Result<Mac, NeutronError> {
        for _ in 0..16 {
            let [a, b, c] = fresh.mac_suffix();
            let mac = Mac::new([0xfa, 0x16, 0x3e, a, b, c]);
            if self.engine.port_with_mac(network, mac).is_none() {
                return Ok(mac);
            }
        }
        Err(NeutronError::conflict(
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
    ) -> Result<Vec<FixedIp>, NeutronError> {
        let mut subnets: Vec<_> = self
            .catalog
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
            return Err(NeutronError::conflict(
                "IpAddressGenerationFailure",
                format!("No more IP addresses available on network {network}."),
            ));
        };
        if requests.len() > self.max_fixed_ips_per_port {
            return Err(NeutronError::invalid(
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
                    NeutronError::invalid(
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
                            NeutronError::invalid(
                                "fixed_ips",
                                ip.to_string(),
                                format!("is in no subnet of network {network}"),
                            )
                        })?
                }
                (None, None) => {
                    return Err(NeutronError::invalid(
                        "fixed_ips",
                        Value::Object(Default::default()),
                        "needs a subnet_id or an ip_address",
                    ));
                }
            };
            let ip = match request.ip_address {
                Some(ip) => {
                    if !subnet.cidr.contains(&ip) {
                        return Err(NeutronError::invalid(
                            "fixed_ips",
                            ip.to_string(),
                            format!("is not in subnet {} ({})", subnet.id, subnet.cidr),
                        ));
                    }
                    if let Some(why) = reserved_fixed_ip(subnet, ip, device_owner) {
                        return Err(NeutronError::invalid("fixed_ips", ip.to_string(), why));
                    }
                    let ours = keep.iter().any(|f| f.ip_address == ip);
                    let used = self.engine.port_with_ip(network, ip).is_some();
                    if (used && !ours) || taken.contains(&ip) {
                        return Err(NeutronError::conflict(
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
                        NeutronError::conflict(
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
        let network = self.catalog.subnets.get(&subnet)?.network_id;
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
        // Automatic allocation draws from the subnet's pools (Neutron's rule; a fixed IP asked
        // for by address may lie outside them), else from every host address.
        let mut ranges: Vec<(u128, u128)> = match self
            .catalog
            .subnets
            .get(&subnet)
            .and_then(|s| s.allocation_pools.as_ref())
        {
            Some(pools) if !pools.is_empty() => pools
                .iter()
                .map(|p| (address_index(cidr, p.start), address_index(cidr, p.end)))
                .filter(|(low, high)| low <= high)
                .collect(),
            _ => vec![(1, last)],
        };
        ranges.sort_unstable();
        let capacity: u128 = ranges.iter().map(|(low, high)| high - low + 1).sum();
        // Where the ring scan starts: the range holding `start`, else the next one (wrapping).
        let mut range = ranges
            .iter()
            .position(|&(_, high)| start <= high)
            .unwrap_or(0);
        let mut index = start.max(ranges[range].0);
        if index > ranges[range].1 {
            index = ranges[range].0;
        }
        // At most every address in use on the network, this request's and the gateway come
        // before a free one: the scan is linear in what is in use, not in the subnet's size.
        let used = (self.engine.ips_in_use(network) + also_taken.len() + 2) as u128;
        let mut steps = used.min(capacity);
        loop {
            let ip = nth_address(cidr, index);
            let taken = Some(ip) == gateway
                || self.engine.port_with_ip(network, ip).is_some()
                || also_taken.contains(&ip);
            if !taken {
                return Some(ip);
            }
            if steps == 0 {
                return None;
            }
            steps -= 1;
            if index < ranges[range].1 {
                index += 1;
            } else {
                range = (range + 1) % ranges.len();
                index = ranges[range].0;
            }
        }
    }
}

// ---- l2pop agent reports and device state (also reachable over the bus RPC) ----

impl NeutronState {
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
            .catalog
            .agents
            .get(&body.host)
            .map_or_else(|| fresh.uuid(), |a| a.id);
        Some(Command::AgentReport {
            id,
            agent_type: body
                .agent_type
                .unwrap_or_else(|| crate::catalog::L2_AGENT_TYPE.to_owned()),
            binary: body
                .binary
                .unwrap_or_else(|| "neutron-openvswitch-agent".to_owned()),
            at: fresh.now().to_string(),
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
    ) -> Result<Command, NeutronError> {
        if !self.catalog.ports.contains_key(&port) {
            return Err(NeutronError::not_found("port", port));
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

impl NeutronState {
    pub fn plan_bgpvpn_create(
        &self,
        caller: &Caller,
        body: BgpvpnCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(BgpvpnId, Command), NeutronError> {
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
    ) -> Result<Command, NeutronError> {
        check_len("name", body.name.as_deref(), NAME_MAX_LEN)?;
        self.visible_bgpvpn(id, caller)
            .ok_or_else(|| NeutronError::not_found("bgpvpn", id))?;
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

    pub fn plan_bgpvpn_delete(
        &self,
        caller: &Caller,
        id: BgpvpnId,
    ) -> Result<Command, NeutronError> {
        caller.require_admin("delete_bgpvpn")?;
        self.visible_bgpvpn(id, caller)
            .ok_or_else(|| NeutronError::not_found("bgpvpn", id))?;
        Ok(Command::BgpvpnDelete { id })
    }

    pub fn plan_association_create(
        &self,
        caller: &Caller,
        bgpvpn: BgpvpnId,
        body: AssociationBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(Uuid, Command), NeutronError> {
        let vpn = self
            .visible_bgpvpn(bgpvpn, caller)
            .ok_or_else(|| NeutronError::not_found("bgpvpn", bgpvpn))?;
        let network = self
            .catalog
            .visible_network(body.network_id, caller)
            .ok_or_else(|| {
                NeutronError::not_found("network", body.network_id).with_field("network_id")
            })?;
        if !caller.is_admin() && network.project_id != vpn.project_id {
            return Err(NeutronError::invalid(
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
    ) -> Result<Command, NeutronError> {
        self.visible_bgpvpn(bgpvpn, caller)
            .ok_or_else(|| NeutronError::not_found("bgpvpn", bgpvpn))?;
        self.catalog
            .associations
            .get(&id)
            .filter(|a| a.bgpvpn_id == bgpvpn && caller.sees(&a.project_id))
            .ok_or_else(|| NeutronError::not_found("network_association", id))?;
        Ok(Command::AssociationDelete { id })
    }
}

// ---- BGP speakers and BGP agents (neutron-dynamic-routing, StarlingX) ----

impl NeutronState {
    pub fn plan_speaker_create(
        &self,
        caller: &Caller,
        body: SpeakerCreateBody,
        fresh: &mut dyn Fresh,
    ) -> Result<(SpeakerId, Command), NeutronError> {
        caller.require_admin("create_bgp_speaker")?;
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        if body.local_as == 0 {
            return Err(NeutronError::invalid(
                "local_as",
                0,
                "is not in range 1..=4294967295",
            ));
        }
        if body.ip_version != 4 && body.ip_version != 6 {
            return Err(NeutronError::invalid(
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
    ) -> Result<Command, NeutronError> {
        caller.require_admin("update_bgp_speaker")?;
        check_len("name", Some(&body.name), NAME_MAX_LEN)?;
        if !self.catalog.speakers.contains_key(&id) {
            return Err(NeutronError::not_found("bgp_speaker", id));
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
    ) -> Result<Command, NeutronError> {
        caller.require_admin("update_bgp_speaker")?;
        if !self.catalog.speakers.contains_key(&id) {
            return Err(NeutronError::not_found("bgp_speaker", id));
        }
        if !self.bgpvpn_exists(body.bgpvpn_id) {
            return Err(NeutronError::not_found("bgpvpn", body.bgpvpn_id).with_field("bgpvpn_id"));
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

    /// `None` when the report changes nothing the extension reads (a heartbeat: it only moves
    /// the agent's liveness, which is not logged).
    pub fn plan_bgp_agent_report(
        &self,
        host: Host,
        body: BgpAgentBody,
        fresh: &mut dyn Fresh,
    ) -> Option<Command> {
        let known = self.catalog.bgp_agents.get(&host);
        let unchanged = known.is_some()
            && self.catalog.bgpvpn.agents.get(&host).is_some_and(|state| {
                state.admin_state_up == body.admin_state_up && state.alive == body.alive
            });
        if unchanged && !body.start_flag {
            return None;
        }
        let id = known.map_or_else(|| fresh.uuid(), |a| a.id);
        Some(Command::BgpAgentReport {
            id,
            at: fresh.now().to_string(),
            report: l2pop_bgpvpn::BgpAgentReport {
                host,
                admin_state_up: body.admin_state_up,
                alive: body.alive,
                start_flag: body.start_flag,
                graceful_restart: body.graceful_restart,
            },
        })
    }
}
