//! The catalog: every resource as the API shows it, in persistent maps (`imbl`), so that a clone
//! costs O(1) and shares everything with the original. The owner holds the one writable catalog
//! inside [`NeutronState`] and publishes a clone after every round; listings, shows and the agents'
//! device lookups read that clone on their own tasks, so a listing of 100,000 ports never holds
//! up a write, and a write never waits for a listing.
//!
//! Records are held behind `Arc`s: the first write after a publication copies the tree nodes on
//! its path, and a node copy then costs reference counts, not whole records.
//!
//! Port status is the engine's fact; [`Catalog::active_ports`] is the index of it that the owner
//! refreshes, in the same step, whenever an engine event touched the port.
//!
//! [`NeutronState`]: crate::state::NeutronState

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use l2pop_bgpvpn::SpeakerId;
use l2pop_model::{Host, NetworkId, PortId, Uuid};
use serde::{Deserialize, Serialize};

use crate::command::{
    AssociationRecord, NetworkRecord, PortRecord, SegmentId, SegmentRecord, SubnetId, SubnetRecord,
};
use crate::policy::Caller;
use crate::time::Time;

/// Agent type names as Neutron reports them.
pub const L2_AGENT_TYPE: &str = "Open vSwitch agent";
pub const BGP_AGENT_TYPE: &str = "BGP dynamic routing agent";

/// An L2 agent as `/v2.0/agents` shows it. Its heartbeat is not logged (agents report every few
/// seconds and re-report after a server restart): a restarted server knows the time of the last
/// logged report until the agent's next heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: Uuid,
    pub host: Host,
    pub agent_type: String,
    pub binary: String,
    pub configurations: serde_json::Value,
    pub started_at: String,
    pub heartbeat_at: Time,
    /// Set by `PUT /v2.0/agents/{id}`; kept and shown only: Neutron's l2population ignores it
    /// (its queries join ports to agents by host, never filtering on `admin_state_up`).
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(default)]
    pub description: String,
}

fn yes() -> bool {
    true
}

/// A BGP dynamic-routing agent as the API names it. Its state (`admin_state_up`, `alive`, which
/// the BGPVPN extension acts on: case 6b) is the extension's ([`BgpvpnMaps::agents`]); the
/// heartbeat, like an L2 agent's, is not logged, and an agent silent for longer than the down
/// time is reported dead by the server itself ([`crate::NeutronState::silent_bgp_agents`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgpAgentRecord {
    pub id: Uuid,
    pub host: Host,
    pub started_at: String,
    pub heartbeat_at: Time,
}

/// A neutron-dynamic-routing BGP speaker as the API names it. Which agents host it and which
/// BGPVPNs are bound to it is the extension's ([`BgpvpnMaps::speakers`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeakerMeta {
    pub id: SpeakerId,
    pub name: String,
    pub project_id: String,
    pub local_as: u32,
    pub ip_version: u8,
}

impl SpeakerMeta {
    pub fn of(record: &crate::command::SpeakerRecord) -> Self {
        SpeakerMeta {
            id: record.id,
            name: record.name.clone(),
            project_id: record.project_id.clone(),
            local_as: record.local_as,
            ip_version: record.ip_version,
        }
    }
}

/// The BGPVPN extension's own maps of speakers and BGP agents, as of the last command: the
/// extension is their only writer, and this is the version published with the catalog (a
/// persistent map's clone, sharing every node).
#[derive(Clone, Debug, Default)]
pub struct BgpvpnMaps {
    pub speakers: OrdMap<SpeakerId, l2pop_bgpvpn::Speaker>,
    pub agents: OrdMap<Host, l2pop_bgpvpn::AgentState>,
}

/// What Neutron's type drivers allocate once across all segments: the type and segmentation
/// id, with the physical network for vlan and flat. Local segments have none.
pub type SegmentKey = (l2pop_model::NetworkType, Option<String>, Option<u32>);

/// The key of `segment` (see [`SegmentKey`]).
pub fn segment_key(segment: &SegmentRecord) -> Option<SegmentKey> {
    use l2pop_model::NetworkType;
    match segment.network_type {
        NetworkType::Local => None,
        t @ (NetworkType::Vlan | NetworkType::Flat) => {
            Some((t, segment.physical_network.clone(), segment.segmentation_id))
        }
        t => Some((t, None, segment.segmentation_id)),
    }
}

/// See the module documentation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub networks: OrdMap<NetworkId, Arc<NetworkRecord>>,
    pub subnets: OrdMap<SubnetId, Arc<SubnetRecord>>,
    /// Every network's segments (snapshots taken before segments were kept have none: restoring
    /// one makes each network's segment 0).
    #[serde(default)]
    pub segments: OrdMap<SegmentId, Arc<SegmentRecord>>,
    /// The index of [`Catalog::segments`] by key (see [`SegmentKey`]), for the uniqueness check
    /// of every create; rebuilt when a snapshot is restored.
    #[serde(skip)]
    pub segment_keys: OrdMap<SegmentKey, SegmentId>,
    /// Ordered by id: listings need no sort, and a `tap…` device name is a range.
    pub ports: OrdMap<PortId, Arc<PortRecord>>,
    /// Ports of each network, for listing by network and deletion checks.
    pub network_ports: OrdMap<NetworkId, OrdSet<PortId>>,
    /// Ports whose status is ACTIVE (see the module documentation).
    pub active_ports: OrdSet<PortId>,
    pub agents: OrdMap<Host, Arc<AgentRecord>>,
    pub bgp_agents: OrdMap<Host, BgpAgentRecord>,
    pub associations: OrdMap<Uuid, AssociationRecord>,
    pub speakers: OrdMap<SpeakerId, Arc<SpeakerMeta>>,
    /// Routers as `/v2.0/l2pop/routers` shows them (the engine holds what counts).
    #[serde(default)]
    pub routers: OrdMap<l2pop_model::RouterId, Arc<crate::router::RouterRecord>>,
    /// The extension's, published with the catalog: not saved in snapshots (the extension's
    /// own state is), set again when a snapshot is restored.
    #[serde(skip)]
    pub bgpvpn: BgpvpnMaps,
    /// Neutron's `agent_down_time`: an agent not heard from for longer is shown dead.
    pub agent_down_time: u64,
}

impl Catalog {
    pub fn visible_network(&self, id: NetworkId, caller: &Caller) -> Option<&NetworkRecord> {
        self.networks
            .get(&id)
            .map(|n| &**n)
            .filter(|n| caller.sees(&n.project_id))
    }

    pub fn visible_subnet(&self, id: SubnetId, caller: &Caller) -> Option<&SubnetRecord> {
        self.subnets
            .get(&id)
            .map(|s| &**s)
            .filter(|s| caller.sees(&s.project_id))
    }

    pub fn visible_port(&self, id: PortId, caller: &Caller) -> Option<&PortRecord> {
        self.ports
            .get(&id)
            .map(|p| &**p)
            .filter(|p| caller.sees(&p.project_id))
    }

    /// Adds (or replaces) a segment, with its key.
    pub(crate) fn insert_segment(&mut self, segment: SegmentRecord) {
        if let Some(key) = segment_key(&segment) {
            self.segment_keys.insert(key, segment.id);
        }
        self.segments.insert(segment.id, Arc::new(segment));
    }

    /// Removes a segment, with its key.
    pub(crate) fn remove_segment(&mut self, id: SegmentId) {
        if let Some(segment) = self.segments.remove(&id)
            && let Some(key) = segment_key(&segment)
            && self.segment_keys.get(&key) == Some(&id)
        {
            self.segment_keys.remove(&key);
        }
    }

    /// Rebuilds [`Catalog::segment_keys`] (after a snapshot is restored).
    pub(crate) fn index_segments(&mut self) {
        self.segment_keys = self
            .segments
            .values()
            .filter_map(|s| Some((segment_key(s)?, s.id)))
            .collect();
    }

    /// The segments of network `id` in `segment_index` order (the first is the network's).
    pub fn network_segments(&self, id: NetworkId) -> Vec<&SegmentRecord> {
        let mut segments: Vec<&SegmentRecord> = self
            .segments
            .values()
            .map(|s| &**s)
            .filter(|s| s.network_id == id)
            .collect();
        segments.sort_by_key(|s| s.segment_index);
        segments
    }

    /// Whether the L2 agent on `host` was heard from within the down time, at `now`.
    pub fn agent_alive(&self, agent: &AgentRecord, now: Time) -> bool {
        agent.heartbeat_at >= now.minus(self.agent_down_time)
    }

    /// L2 agents alive at `now`.
    pub fn agents_alive(&self, now: Time) -> usize {
        self.agents
            .values()
            .filter(|agent| self.agent_alive(agent, now))
            .count()
    }

    /// The BGP agent whose id is `agent_id`.
    pub fn bgp_agent_host(&self, agent_id: Uuid) -> Option<Host> {
        self.bgp_agents
            .values()
            .find(|a| a.id == agent_id)
            .map(|a| a.host.clone())
    }
}

/// `retain` for a persistent map: a new map without the entries whose value matches.
pub(crate) trait WithoutMatching<V> {
    fn without_matching(&self, matches: impl Fn(&V) -> bool) -> Self;
}

impl<K: Ord + Clone, V: Clone> WithoutMatching<V> for OrdMap<K, V> {
    fn without_matching(&self, matches: impl Fn(&V) -> bool) -> Self {
        let mut kept = self.clone();
        for (key, value) in self.iter() {
            if matches(value) {
                kept.remove(key);
            }
        }
        kept
    }
}
