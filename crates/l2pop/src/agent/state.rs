//! The agent's decision state, pure and synchronous: the local ports it has wired, its place in
//! the server's two streams, and the FDB table that notifications build, from which the desired
//! kernel table ([`l2pop_dataplane::Desired`]) is derived. The I/O shell (`agent::run`) feeds it
//! what the bus, the RPC and the kernel say, and executes what it asks for.
//!
//! ```text
//!  consumer ── Received ──► receive ─┬─ Applied(vnis) ──► reconcile those networks
//!                                    ├─ Dropped          (duplicate, other network)
//!                                    └─ Resync(reason) ──► get_fdb_entries ──► resynced
//!  taps (kernel) ─► details (RPC) ───► port_wired / port_gone ──► reconcile
//! ```
//!
//! Rules (DESIGN "Wire compatibility" and difference 3):
//! - The agent keeps a network's table only while it has a local port on it, as Neutron's
//!   agents do; notifications for other networks are dropped.
//! - A host cast from l2pop's server is a snapshot of one network's full FDB at fanout position
//!   `F`. It replaces the network's table; fanouts up to `F` are then already reflected and are
//!   skipped for that network; fanouts past `F` that were applied before the snapshot arrived
//!   (the two queues are not ordered with each other) are re-applied from a bounded history.
//!   When the history no longer reaches back to `F`, the agent resyncs.
//! - Messages without stream numbers (a real Neutron server) are applied as Neutron's agents
//!   apply them: adds and removes on the networks the agent holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use l2pop_bus::{Follower, Positions, Received, Resync, Stream, Verdict};
use l2pop_dataplane::{Desired, DesiredNetwork, bridge_name};
use l2pop_model::{
    FdbPayload, FdbTable, Mac, Method, NetworkId, NetworkTable, NetworkType, PortId, PortInfo,
};

/// How many applied fanouts the agent keeps to re-apply after a late snapshot.
pub const HISTORY: usize = 4096;

/// A local port as the server's `get_device_details` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPort {
    pub device: String,
    pub port_id: PortId,
    pub network_id: NetworkId,
    pub mac: Mac,
    pub network_type: NetworkType,
    pub segmentation_id: Option<u32>,
    pub admin_state_up: bool,
}

/// Which message last set an entry: what `l2pop fdb explain` shows as "since".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// The fanout with this `fanout_seq`.
    Fanout(u64),
    /// The host cast (a network's full FDB) with this `host_seq`.
    HostCast(u64),
    /// The resync snapshot taken at this fanout position.
    Snapshot(u64),
    /// A message without stream numbers (a Neutron server).
    Unnumbered,
}

/// What [`AgentState::receive`] did with a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; these networks' tables changed (by VNI, for the planner).
    Applied(BTreeSet<u32>),
    /// Nothing to do (a duplicate, or only networks the agent does not hold).
    Dropped,
    /// Fetch the full FDB (`get_fdb_entries`) and call [`AgentState::resynced`].
    Resync(Resync),
}

/// The agent's state. See the module documentation.
#[derive(Debug)]
pub struct AgentState {
    local_ip: IpAddr,
    follower: Follower,
    /// Local ports by device name (the one owner of "which networks this host holds").
    ports: BTreeMap<String, LocalPort>,
    tables: FdbTable,
    /// Fanouts up to this position are reflected in a network's snapshot: skip them there.
    floors: BTreeMap<NetworkId, u64>,
    /// Applied fanouts with their position, newest last; every fanout past `history_from` is
    /// here (those that touched a held network).
    history: VecDeque<(u64, Method, FdbPayload)>,
    history_from: u64,
    /// Whether the last resync got stream positions (an l2pop server) or not (Neutron).
    numbered: bool,
    /// Per (network, MAC) of a unicast entry in the tables: the message that last set it.
    since: BTreeMap<(NetworkId, Mac), Since>,
    /// Following a neutron-server: stream numbers ignored (see [`AgentState::following_neutron`]).
    neutron: bool,
}

impl AgentState {
    /// A state for the agent whose tunnel address is `local_ip`.
    pub fn new(local_ip: IpAddr) -> Self {
        AgentState {
            local_ip,
            follower: Follower::new(),
            ports: BTreeMap::new(),
            tables: FdbTable::default(),
            floors: BTreeMap::new(),
            history: VecDeque::new(),
            history_from: 0,
            numbered: false,
            since: BTreeMap::new(),
            neutron: false,
        }
    }

    /// An agent following a neutron-server: every cast is applied as Neutron's agents apply
    /// it, stream numbers (from no server it follows) ignored, never a resync.
    pub fn following_neutron(local_ip: IpAddr) -> Self {
        AgentState {
            neutron: true,
            ..AgentState::new(local_ip)
        }
    }

    pub fn positions(&self) -> Option<Positions> {
        self.follower.positions()
    }

    /// The server stream the positions belong to, once a numbered message has shown it.
    pub fn stream_id(&self) -> Option<u64> {
        self.follower.stream_id()
    }

    pub fn ports(&self) -> impl Iterator<Item = &LocalPort> {
        self.ports.values()
    }

    pub fn port(&self, device: &str) -> Option<&LocalPort> {
        self.ports.get(device)
    }

    /// Which message last set the unicast entry of `mac` on `network`, while it is there.
    pub fn since(&self, network: NetworkId, mac: Mac) -> Option<Since> {
        self.since.get(&(network, mac)).copied()
    }

    /// Records `mark` for the entries `payload` puts on `network` that the table now holds,
    /// and forgets the marks of MACs the table no longer holds.
    fn mark(&mut self, network: NetworkId, payload: &FdbPayload, mark: Since) {
        let table = self.tables.networks.get(&network);
        // Entries are ordered by (MAC, IP): the first one at or after (mac, 0.0.0.0) tells.
        let holds = |mac: Mac| {
            let from = PortInfo::new(mac, IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            table.is_some_and(|t| {
                t.unicast
                    .range(from..)
                    .next()
                    .is_some_and(|(entry, _)| entry.mac == mac)
            })
        };
        let mut updates = Vec::new();
        for (n, entry) in entries_of(payload) {
            if n != network || entry.is_flooding() {
                continue;
            }
            updates.push((entry.mac, holds(entry.mac)));
        }
        for (mac, held) in updates {
            if held {
                self.since.insert((network, mac), mark);
            } else {
                self.since.remove(&(network, mac));
            }
        }
    }

    /// Forgets every mark of `network` (its table was replaced or dropped).
    fn unmark(&mut self, network: NetworkId) {
        let marked: Vec<(NetworkId, Mac)> = self
            .since
            .range((network, Mac::ZERO)..=(network, Mac::new([0xff; 6])))
            .map(|(key, _)| *key)
            .collect();
        for key in marked {
            self.since.remove(&key);
        }
    }

    /// The table of one network, if held.
    pub fn table(&self, network: NetworkId) -> Option<&NetworkTable> {
        self.tables.networks.get(&network)
    }

    fn holds(&self, network: NetworkId) -> bool {
        self.ports.values().any(|p| p.network_id == network)
    }

    fn vni_of(&self, network: NetworkId) -> Option<u32> {
        self.ports
            .values()
            .find(|p| p.network_id == network && p.network_type == NetworkType::Vxlan)
            .and_then(|p| p.segmentation_id)
    }

    fn vnis(&self, networks: impl IntoIterator<Item = NetworkId>) -> BTreeSet<u32> {
        networks
            .into_iter()
            .filter_map(|n| self.vni_of(n))
            .collect()
    }

    /// A local port is wired to its network. Returns the VNIs to reconcile.
    pub fn port_wired(&mut self, port: LocalPort) -> BTreeSet<u32> {
        let network = port.network_id;
        let old = self.ports.insert(port.device.clone(), port);
        let mut changed = self.vnis([network]);
        if let Some(old) = old {
            changed.extend(self.forget_if_unheld(old.network_id));
        }
        self.tables.networks.entry(network).or_default();
        changed
    }

    /// A local port's device is gone. Returns the VNIs to reconcile.
    pub fn port_gone(&mut self, device: &str) -> BTreeSet<u32> {
        let Some(old) = self.ports.remove(device) else {
            return BTreeSet::new();
        };
        let mut changed = BTreeSet::new();
        if let (NetworkType::Vxlan, Some(vni)) = (old.network_type, old.segmentation_id) {
            changed.insert(vni);
        }
        changed.extend(self.forget_if_unheld(old.network_id));
        changed
    }

    fn forget_if_unheld(&mut self, network: NetworkId) -> BTreeSet<u32> {
        if !self.holds(network) {
            self.tables.networks.remove(&network);
            self.floors.remove(&network);
            self.unmark(network);
        }
        self.vnis([network])
    }

    /// Classifies and applies one notification.
    pub fn receive(&mut self, message: &Received) -> Outcome {
        if self.neutron {
            return self.apply_unnumbered(message);
        }
        let stream = Stream::of(&message.target);
        let verdict = self.follower.observe(
            stream,
            message.stream.as_ref(),
            message.unique_id.as_deref(),
        );
        match verdict {
            Verdict::Duplicate => Outcome::Dropped,
            Verdict::Resync(reason) => Outcome::Resync(reason),
            Verdict::Unnumbered => self.apply_unnumbered(message),
            Verdict::Apply => match stream {
                Stream::Fanout => {
                    let position = message.stream.as_ref().map_or(0, |p| p.fanout_seq);
                    self.apply_fanout(position, message.method, &message.fdb_entries)
                }
                Stream::Host => {
                    let reflects = message.stream.as_ref().map_or(0, |p| p.fanout_seq);
                    let host_seq = message.stream.as_ref().and_then(|p| p.host_seq);
                    self.apply_snapshot(host_seq.unwrap_or(0), reflects, &message.fdb_entries)
                }
            },
        }
    }

    /// Neutron's agents: apply to the held networks, additively.
    fn apply_unnumbered(&mut self, message: &Received) -> Outcome {
        let networks: Vec<NetworkId> = networks_of(&message.fdb_entries)
            .filter(|n| self.holds(*n))
            .collect();
        if networks.is_empty() {
            return Outcome::Dropped;
        }
        let held: BTreeSet<NetworkId> = networks.iter().copied().collect();
        self.tables.apply(
            message.method,
            &message.fdb_entries,
            Some(self.local_ip),
            |n| held.contains(&n),
        );
        for network in &networks {
            self.mark(*network, &message.fdb_entries, Since::Unnumbered);
        }
        Outcome::Applied(self.vnis(networks))
    }

    fn apply_fanout(&mut self, position: u64, method: Method, payload: &FdbPayload) -> Outcome {
        let touched: BTreeSet<NetworkId> = networks_of(payload)
            .filter(|n| self.holds(*n) && self.floors.get(n).is_none_or(|f| position > *f))
            .collect();
        self.floors.retain(|_, floor| *floor > position);
        if touched.is_empty() {
            return Outcome::Dropped;
        }
        self.tables
            .apply(method, payload, Some(self.local_ip), |n| {
                touched.contains(&n)
            });
        for network in &touched {
            self.mark(*network, payload, Since::Fanout(position));
        }
        self.history.push_back((position, method, payload.clone()));
        while self.history.len() > HISTORY {
            if let Some((dropped, _, _)) = self.history.pop_front() {
                self.history_from = dropped;
            }
        }
        Outcome::Applied(self.vnis(touched))
    }

    /// A host cast (number `host_seq`): the full FDB of its networks as of fanout position
    /// `reflects`.
    fn apply_snapshot(&mut self, host_seq: u64, reflects: u64, payload: &FdbPayload) -> Outcome {
        let applied = self.follower.positions().map_or(0, |p| p.fanout);
        let networks: Vec<NetworkId> = networks_of(payload).filter(|n| self.holds(*n)).collect();
        if networks.is_empty() {
            return Outcome::Dropped;
        }
        if applied > reflects && self.history_from > reflects {
            self.follower.invalidate();
            return Outcome::Resync(Resync::Gap {
                stream: Stream::Fanout,
                expected: reflects + 1,
                got: self.history_from,
            });
        }
        for network in &networks {
            let mut table = FdbTable::default();
            table.apply(Method::AddFdbEntries, payload, Some(self.local_ip), |n| {
                n == *network
            });
            for (position, method, fanout) in &self.history {
                if *position > reflects {
                    table.apply(*method, fanout, Some(self.local_ip), |n| n == *network);
                }
            }
            let rebuilt = table.networks.remove(network).unwrap_or_default();
            self.tables.networks.insert(*network, rebuilt);
            self.unmark(*network);
            self.mark(*network, payload, Since::HostCast(host_seq));
            let replayed: Vec<(u64, FdbPayload)> = self
                .history
                .iter()
                .filter(|(position, _, _)| *position > reflects)
                .map(|(position, _, fanout)| (*position, fanout.clone()))
                .collect();
            for (position, fanout) in replayed {
                self.mark(*network, &fanout, Since::Fanout(position));
            }
            if reflects > applied {
                self.floors.insert(*network, reflects);
            }
        }
        Outcome::Applied(self.vnis(networks))
    }

    /// Takes a full snapshot (`get_fdb_entries`): every held network's table is replaced, and
    /// the stream positions are those the snapshot states (`None`: a Neutron server, whose
    /// messages carry no numbers), on the server stream it names. Returns every held VNI.
    pub fn resynced(
        &mut self,
        positions: Option<Positions>,
        stream_id: Option<u64>,
        payload: &FdbPayload,
    ) -> BTreeSet<u32> {
        let held: BTreeSet<NetworkId> = self.ports.values().map(|p| p.network_id).collect();
        let mut tables = FdbTable::default();
        tables.apply(Method::AddFdbEntries, payload, Some(self.local_ip), |n| {
            held.contains(&n)
        });
        for network in &held {
            tables.networks.entry(*network).or_default();
        }
        self.tables = tables;
        self.floors.clear();
        self.history.clear();
        self.since.clear();
        let mark = positions.map_or(Since::Unnumbered, |p| Since::Snapshot(p.fanout));
        for network in &held {
            self.mark(*network, payload, mark);
        }
        self.numbered = positions.is_some();
        match positions {
            Some(positions) => {
                self.history_from = positions.fanout;
                self.follower.sync(positions, stream_id);
            }
            None => self.follower.invalidate(),
        }
        self.vnis(held)
    }

    /// The heartbeat's check: the server's streams stood at `previous` one heartbeat ago and
    /// stand at `now` on stream `stream_id`. The agent is behind when it has not reached, by
    /// now, what the server had sent one heartbeat ago (a message lost at a stream's end, which
    /// no later message reveals as a gap), or when the server's stream changed.
    pub fn lagging(&self, stream_id: u64, previous: Option<Positions>) -> bool {
        let Some(mine) = self.follower.positions() else {
            return self.numbered;
        };
        if self
            .follower
            .stream_id()
            .is_some_and(|known| known != stream_id)
        {
            return true;
        }
        previous.is_some_and(|then| mine.fanout < then.fanout || mine.host < then.host)
    }

    /// Whether the server numbers its streams (the last resync stated positions).
    pub fn numbered(&self) -> bool {
        self.numbered
    }

    /// The kernel table the agent wants: per held VXLAN network, its bridge, VXLAN device,
    /// local taps, flood list, unicast entries and ARP/ND proxy entries.
    pub fn desired(&self) -> Desired {
        let mut desired = Desired::default();
        for vni in self.ports.values().filter_map(|p| p.segmentation_id) {
            if let Some(network) = self.network_desired(vni) {
                desired.networks.insert(vni, network);
            }
        }
        desired
    }

    /// The desired state of the network with `vni` (None when no local port holds it).
    pub fn network_desired(&self, vni: u32) -> Option<DesiredNetwork> {
        let ports: Vec<&LocalPort> = self
            .ports
            .values()
            .filter(|p| p.network_type == NetworkType::Vxlan && p.segmentation_id == Some(vni))
            .collect();
        let first = ports.first()?;
        let mut network = DesiredNetwork::new(
            vni,
            bridge_name(&first.network_id.to_string()),
            self.local_ip,
        );
        network.ports = ports.iter().map(|p| p.device.clone()).collect();
        if let Some(table) = self.tables.networks.get(&first.network_id) {
            network.flood = table.flood.clone();
            for (entry, vtep) in &table.unicast {
                network.unicast.insert(entry.mac, *vtep);
                if !entry.ip.is_unspecified() {
                    network.neighbours.insert(entry.ip, entry.mac);
                }
            }
        }
        Some(network)
    }
}

/// Every (network, entry) a payload names: adds and removes, and both sides of an IP change.
fn entries_of(payload: &FdbPayload) -> Vec<(NetworkId, PortInfo)> {
    match payload {
        FdbPayload::Entries(entries) => entries
            .0
            .iter()
            .flat_map(|(n, fdb)| {
                fdb.ports
                    .iter()
                    .flat_map(move |(_, list)| list.iter().map(move |e| (*n, *e)))
            })
            .collect(),
        FdbPayload::ChgIp(chg) => chg
            .0
            .iter()
            .flat_map(|(n, vteps)| {
                vteps.iter().flat_map(move |(_, change)| {
                    change
                        .before
                        .iter()
                        .chain(&change.after)
                        .map(move |e| (*n, *e))
                })
            })
            .collect(),
    }
}

/// The networks a payload names, in wire order.
fn networks_of(payload: &FdbPayload) -> Box<dyn Iterator<Item = NetworkId> + '_> {
    match payload {
        FdbPayload::Entries(entries) => Box::new(entries.0.iter().map(|(n, _)| *n)),
        FdbPayload::ChgIp(chg) => Box::new(chg.0.iter().map(|(n, _)| *n)),
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
