//! How resources look on the API: Neutron's attribute names and shapes (`provider:*`,
//! `binding:host_id`, `fixed_ips`, `tenant_id` beside `project_id`), networking-bgpvpn's BGPVPN
//! and association, neutron-dynamic-routing's speaker, and l2pop's own desired-table view with
//! the provenance of every entry. Admin-only attributes are left out for project callers.

use l2pop_bgpvpn::SpeakerId;
use l2pop_bgpvpn::{BgpvpnId, Vpn};
use l2pop_engine::{DesiredTable, Provenance};
use l2pop_model::{NetworkId, PortId, Uuid};
use serde_json::{Map, Value, json};

use crate::catalog::{AgentRecord, BGP_AGENT_TYPE, BgpAgentRecord, Catalog, SpeakerMeta};
use crate::command::{
    AssociationRecord, NetworkRecord, PortRecord, SegmentId, SegmentRecord, SubnetId, SubnetRecord,
};
use crate::error::NeutronError;
use crate::policy::Caller;
use crate::state::NeutronState;
use crate::time::Time;

/// A segment as Neutron's segments extension shows it, without `hosts` (the hosts whose agents
/// map the segment's physical network, which l2pop does not keep).
pub fn segment_view(segment: &SegmentRecord) -> Value {
    json!({
        "id": segment.id,
        "network_id": segment.network_id,
        "name": segment.name,
        "description": segment.description,
        "network_type": segment.network_type,
        "physical_network": segment.physical_network,
        "segmentation_id": segment.segmentation_id,
        "segment_index": segment.segment_index,
    })
}

impl Catalog {
    /// `{"network": view}` of a network the caller may see (show, and the answer to a write).
    pub fn network_answer(&self, id: NetworkId, caller: &Caller) -> Result<Value, NeutronError> {
        let network = self
            .visible_network(id, caller)
            .ok_or_else(|| NeutronError::not_found("network", id))?;
        Ok(json!({ "network": self.network_view(network, caller) }))
    }

    pub fn subnet_answer(&self, id: SubnetId, caller: &Caller) -> Result<Value, NeutronError> {
        let subnet = self
            .visible_subnet(id, caller)
            .ok_or_else(|| NeutronError::not_found("subnet", id))?;
        Ok(json!({ "subnet": self.subnet_view(subnet) }))
    }

    /// `{"segment": view}` (admin only, as Neutron's `get_segment` policy).
    pub fn segment_answer(&self, id: SegmentId, caller: &Caller) -> Result<Value, NeutronError> {
        caller.require_admin("get_segment")?;
        let segment = self
            .segments
            .get(&id)
            .ok_or_else(|| NeutronError::not_found("segment", id))?;
        Ok(json!({ "segment": segment_view(segment) }))
    }

    pub fn port_answer(&self, id: PortId, caller: &Caller) -> Result<Value, NeutronError> {
        let port = self
            .visible_port(id, caller)
            .ok_or_else(|| NeutronError::not_found("port", id))?;
        Ok(json!({ "port": self.port_view(port, caller) }))
    }

    pub fn speaker_answer(&self, id: SpeakerId) -> Result<Value, NeutronError> {
        let speaker = self
            .speakers
            .get(&id)
            .ok_or_else(|| NeutronError::not_found("bgp_speaker", id))?;
        Ok(json!({ "bgp_speaker": self.speaker_view(speaker) }))
    }

    /// `{"agent": view}` of the L2 or BGP agent `id` (admin only).
    pub fn agent_answer(
        &self,
        caller: &Caller,
        id: Uuid,
        now: Time,
    ) -> Result<Value, NeutronError> {
        caller.require_admin("get_agent")?;
        let view = self
            .agents
            .values()
            .find(|a| a.id == id)
            .map(|a| self.agent_view(a, now))
            .or_else(|| {
                self.bgp_agents
                    .values()
                    .find(|a| a.id == id)
                    .map(|a| self.bgp_agent_view(a))
            })
            .ok_or_else(|| NeutronError::not_found("agent", id))?;
        Ok(json!({ "agent": view }))
    }

    /// `GET /v2.0/agents/{agent}/bgp-drinstances`: the speakers a BGP agent hosts.
    pub fn drinstances(&self, caller: &Caller, agent: Uuid) -> Result<Value, NeutronError> {
        caller.require_admin("list_bgp_speaker_on_dragent")?;
        let host = self
            .bgp_agent_host(agent)
            .ok_or_else(|| NeutronError::not_found("agent", agent))?;
        let speakers: Vec<Value> = self
            .bgpvpn
            .speakers
            .iter()
            .filter(|(_, s)| s.agents.contains(&host))
            .filter_map(|(id, _)| self.speakers.get(id))
            .map(|s| self.speaker_view(s))
            .collect();
        Ok(json!({ "bgp_speakers": speakers }))
    }

    pub fn network_view(&self, network: &NetworkRecord, caller: &Caller) -> Value {
        let subnets: Vec<String> = self
            .subnets
            .values()
            .filter(|s| s.network_id == network.id)
            .map(|s| s.id.to_string())
            .collect();
        let mut view = json!({
            "id": network.id,
            "name": network.name,
            "description": network.description,
            "tenant_id": network.project_id,
            "project_id": network.project_id,
            "admin_state_up": network.admin_state_up,
            "status": "ACTIVE",
            "shared": false,
            "subnets": subnets,
            "created_at": network.created_at,
            "mtu": network.mtu.unwrap_or_else(|| crate::command::max_mtu(network.network_type)),
            "port_security_enabled": network.port_security_enabled,
        });
        if caller.is_admin() {
            view["provider:network_type"] = json!(network.network_type);
            view["provider:segmentation_id"] = json!(network.segmentation_id);
            view["provider:physical_network"] = json!(network.physical_network);
        }
        view
    }

    pub fn subnet_view(&self, subnet: &SubnetRecord) -> Value {
        let pools = subnet.allocation_pools.clone().unwrap_or_else(|| {
            crate::addresses::default_allocation_pools(subnet.cidr, subnet.gateway_ip)
        });
        json!({
            "id": subnet.id,
            "name": subnet.name,
            "tenant_id": subnet.project_id,
            "project_id": subnet.project_id,
            "network_id": subnet.network_id,
            "cidr": subnet.cidr.to_string(),
            "ip_version": if subnet.cidr.addr().is_ipv4() { 4 } else { 6 },
            "gateway_ip": subnet.gateway_ip,
            "enable_dhcp": subnet.enable_dhcp,
            "created_at": subnet.created_at,
            "description": subnet.description,
            "allocation_pools": pools,
            "dns_nameservers": subnet.dns_nameservers,
            "host_routes": subnet.host_routes,
            "ipv6_address_mode": subnet.ipv6_address_mode,
            "ipv6_ra_mode": subnet.ipv6_ra_mode,
            "subnetpool_id": null,
            "service_types": [],
        })
    }

    pub fn port_status(&self, id: PortId) -> &'static str {
        if self.active_ports.contains(&id) {
            "ACTIVE"
        } else {
            "DOWN"
        }
    }

    pub fn port_view(&self, port: &PortRecord, caller: &Caller) -> Value {
        let fixed_ips: Vec<Value> = port
            .fixed_ips
            .iter()
            .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
            .collect();
        let mut view = json!({
            "id": port.id,
            "name": port.name,
            "tenant_id": port.project_id,
            "project_id": port.project_id,
            "network_id": port.network_id,
            "mac_address": port.mac,
            "fixed_ips": fixed_ips,
            "device_owner": port.device_owner,
            "device_id": port.device_id,
            "admin_state_up": port.admin_state_up,
            "status": self.port_status(port.id),
            "created_at": port.created_at,
            "description": port.description,
            "port_security_enabled": port.port_security_enabled,
            "security_groups": [],
            "binding:vnic_type": port.vnic_type,
        });
        if caller.is_admin() {
            view["binding:host_id"] = json!(port.host.as_ref().map_or("", |h| h.as_str()));
            view["binding:vif_type"] = json!(if port.host.is_some() {
                "ovs"
            } else {
                "unbound"
            });
        }
        view
    }

    /// An L2 agent, `alive` as of `now`.
    pub fn agent_view(&self, agent: &AgentRecord, now: Time) -> Value {
        json!({
            "id": agent.id,
            "agent_type": agent.agent_type,
            "binary": agent.binary,
            "host": agent.host,
            "topic": "N/A",
            "admin_state_up": agent.admin_state_up,
            "description": agent.description,
            "alive": self.agent_alive(agent, now),
            "configurations": agent.configurations,
            "started_at": agent.started_at,
            "heartbeat_timestamp": agent.heartbeat_at.to_string(),
        })
    }

    /// A BGP agent: its name from the catalog, its state and speakers from the extension.
    pub fn bgp_agent_view(&self, agent: &BgpAgentRecord) -> Value {
        let hosted = self
            .bgpvpn
            .speakers
            .values()
            .filter(|s| s.agents.contains(&agent.host))
            .count();
        let state = self.bgpvpn.agents.get(&agent.host);
        json!({
            "id": agent.id,
            "agent_type": BGP_AGENT_TYPE,
            "binary": "neutron-bgp-dragent",
            "host": agent.host,
            "topic": "bgp_dragent",
            "admin_state_up": state.is_none_or(|s| s.admin_state_up),
            "alive": state.is_some_and(|s| s.alive),
            "configurations": {"bgp_speakers": hosted},
            "started_at": agent.started_at,
            "heartbeat_timestamp": agent.heartbeat_at.to_string(),
        })
    }

    pub fn association_view(&self, association: &AssociationRecord, caller: &Caller) -> Value {
        let mut view = json!({
            "id": association.id,
            "network_id": association.network_id,
            "bgpvpn_id": association.bgpvpn_id,
            "tenant_id": association.project_id,
        });
        if caller.is_admin() {
            view["project_id"] = json!(association.project_id);
        }
        view
    }

    /// A speaker: its name from the catalog, its agents and BGPVPNs from the extension.
    pub fn speaker_view(&self, speaker: &SpeakerMeta) -> Value {
        let bound = self.bgpvpn.speakers.get(&speaker.id);
        let vpns: Vec<String> = bound
            .into_iter()
            .flat_map(|s| s.vpns.iter().map(ToString::to_string))
            .collect();
        let agents: Vec<&l2pop_model::Host> =
            bound.into_iter().flat_map(|s| s.agents.iter()).collect();
        json!({
            "id": speaker.id,
            "name": speaker.name,
            "tenant_id": speaker.project_id,
            "project_id": speaker.project_id,
            "local_as": speaker.local_as,
            "ip_version": speaker.ip_version,
            "vpns": vpns,
            "agents": agents,
            "peers": [],
            "networks": [],
            "advertise_floating_ip_host_routes": true,
            "advertise_tenant_networks": true,
        })
    }
}

impl NeutronState {
    /// The BGPVPN `id` if the caller may see it.
    pub fn visible_bgpvpn(&self, id: BgpvpnId, caller: &Caller) -> Option<&Vpn> {
        self.bgpvpn()?
            .vpn(id)
            .filter(|vpn| caller.sees(&vpn.project_id))
    }
}

/// A networking-bgpvpn BGPVPN; route targets and the VNI are for the admin only.
pub fn bgpvpn_view(vpn: &Vpn, caller: &Caller) -> Value {
    let networks: Vec<String> = vpn.networks.iter().map(ToString::to_string).collect();
    let targets = |set: &std::collections::BTreeSet<l2pop_bgpvpn::RouteTarget>| -> Vec<String> {
        set.iter().map(ToString::to_string).collect()
    };
    let mut view = json!({
        "id": vpn.id,
        "name": vpn.name,
        "type": vpn.vpn_type,
        "tenant_id": vpn.project_id,
        "networks": networks,
        "routers": [],
        "ports": [],
        "local_pref": vpn.local_pref,
    });
    if caller.is_admin() {
        view["project_id"] = json!(vpn.project_id);
        view["route_targets"] = json!(targets(&vpn.route_targets));
        view["import_targets"] = json!(targets(&vpn.import_targets));
        view["export_targets"] = json!(targets(&vpn.export_targets));
        let rds: Vec<String> = vpn
            .route_distinguishers
            .iter()
            .map(ToString::to_string)
            .collect();
        view["route_distinguishers"] = json!(rds);
        view["vni"] = json!(vpn.vni);
    }
    view
}

/// `GET /v2.0/l2pop/hosts/{host}/fdb`: every network the host is on, every VTEP, every entry and
/// who put it there (`{"port": id}`, `{"host": name}` for a flooding entry, `{"extension": name}`).
pub fn desired_table_view(table: &DesiredTable, fanout_seq: u64, host_seq: u64) -> Value {
    let networks: Vec<Value> = table
        .networks
        .iter()
        .map(|network| {
            let vteps: Vec<Value> = network
                .vteps
                .iter()
                .map(|(vtep, entries)| {
                    let entries: Vec<Value> = entries
                        .iter()
                        .map(|(entry, provenance)| {
                            let mut source = Map::new();
                            match provenance {
                                Provenance::Host(host) => {
                                    source.insert("host".into(), json!(host));
                                }
                                Provenance::Port(port) => {
                                    source.insert("port".into(), json!(port));
                                }
                                Provenance::Extension(name) => {
                                    source.insert("extension".into(), json!(name));
                                }
                            }
                            json!({
                                "mac_address": entry.mac,
                                "ip_address": entry.ip,
                                "source": source,
                            })
                        })
                        .collect();
                    json!({"vtep": vtep, "entries": entries})
                })
                .collect();
            json!({
                "network_id": network.network_id,
                "network_type": network.network_type,
                "segment_id": network.segment_id,
                "vteps": vteps,
            })
        })
        .collect();
    json!({
        "fdb": {
            "host": table.host,
            "fanout_seq": fanout_seq,
            "host_seq": host_seq,
            "networks": networks,
        }
    })
}
