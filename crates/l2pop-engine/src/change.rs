//! What one event changes, accumulated while the event is applied and turned into notifications
//! at the end. Contributions are compared before and after, so the engine emits each difference
//! exactly once, whatever path caused it (difference 2: no duplicate emissions).
//!
//! Two kinds of input:
//! - **touches**: a (host, network) whose contribution may change. Its state before the event is
//!   captured at the first touch; the port-level entries removed and added are recorded as they
//!   happen; at the end the contribution after is compared with the one before (join, leave,
//!   VTEP change, or a plain entry diff).
//! - **direct entries**: extension changes and chg_ip updates, recorded as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use l2pop_model::{
    ChgIp, FLOODING_ENTRY, FdbEntries, FdbPayload, Host, IpChange, Method, NetworkFdb, NetworkId,
    PortInfo,
};

use crate::topology::{NetworkState, Topology};

/// Whose entries a notification carries: native ports and hosts, or an extension (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Origin {
    Native,
    Extension(usize),
}

#[derive(Debug)]
struct Touch {
    on_before: bool,
    vtep_before: Option<IpAddr>,
    removed: BTreeSet<PortInfo>,
    added: BTreeSet<PortInfo>,
}

type VtepEntries = BTreeMap<IpAddr, BTreeSet<PortInfo>>;

#[derive(Debug, Default)]
struct NetworkDelta {
    removes: BTreeMap<Origin, VtepEntries>,
    adds: BTreeMap<Origin, VtepEntries>,
    chg_ip: BTreeMap<IpAddr, (BTreeSet<PortInfo>, BTreeSet<PortInfo>)>,
}

/// (host, network) pairs that joined or left during an event.
pub(crate) type Transitions = Vec<(Host, NetworkId)>;

/// A fanout to send: method, origin, payload (one network).
pub(crate) struct Fanout {
    pub(crate) method: Method,
    pub(crate) origin: Origin,
    pub(crate) payload: FdbPayload,
}

#[derive(Debug, Default)]
pub(crate) struct Change {
    touched: BTreeMap<(Host, NetworkId), Touch>,
    networks: BTreeMap<NetworkId, NetworkDelta>,
    /// (host, network) pairs whose full FDB a refresh asked for.
    pub(crate) refresh: BTreeSet<(Host, NetworkId)>,
}

impl Change {
    /// Marks (host, network) as possibly changing; captures its state before the event.
    /// Must be called before the membership or the agent of the host changes.
    pub(crate) fn touch(&mut self, topology: &Topology, host: &Host, network: NetworkId) {
        self.touched
            .entry((host.clone(), network))
            .or_insert_with(|| Touch {
                on_before: topology.is_on(host, network),
                vtep_before: topology.vtep(host),
                removed: BTreeSet::new(),
                added: BTreeSet::new(),
            });
    }

    /// Records unicast entries a port took away from / brought to a touched host.
    pub(crate) fn port_entries(
        &mut self,
        host: &Host,
        network: NetworkId,
        entries: &[PortInfo],
        added: bool,
    ) {
        if let Some(touch) = self.touched.get_mut(&(host.clone(), network)) {
            let set = if added {
                &mut touch.added
            } else {
                &mut touch.removed
            };
            set.extend(entries.iter().copied());
        }
    }

    pub(crate) fn add(
        &mut self,
        network: NetworkId,
        origin: Origin,
        vtep: IpAddr,
        entries: impl IntoIterator<Item = PortInfo>,
    ) {
        let delta = self.networks.entry(network).or_default();
        delta
            .adds
            .entry(origin)
            .or_default()
            .entry(vtep)
            .or_default()
            .extend(entries);
    }

    pub(crate) fn remove(
        &mut self,
        network: NetworkId,
        origin: Origin,
        vtep: IpAddr,
        entries: impl IntoIterator<Item = PortInfo>,
    ) {
        let delta = self.networks.entry(network).or_default();
        delta
            .removes
            .entry(origin)
            .or_default()
            .entry(vtep)
            .or_default()
            .extend(entries);
    }

    pub(crate) fn chg_ip(
        &mut self,
        network: NetworkId,
        vtep: IpAddr,
        before: Vec<PortInfo>,
        after: Vec<PortInfo>,
    ) {
        let delta = self.networks.entry(network).or_default();
        let (b, a) = delta.chg_ip.entry(vtep).or_default();
        b.extend(before);
        a.extend(after);
    }

    /// Compares every touched (host, network) before and after the event, records the native
    /// entry differences, and returns the pairs that get a full FDB (on turned true, or a VTEP
    /// change that makes an extension's entries under the old VTEP remote) and the pairs that left.
    pub(crate) fn settle_touches(&mut self, topology: &Topology) -> (Transitions, Transitions) {
        let mut joined = Vec::new();
        let mut left = Vec::new();
        let touched = std::mem::take(&mut self.touched);
        for ((host, network), touch) in touched {
            let on_after = topology.is_on(&host, network);
            let vtep_after = topology.vtep(&host);
            // Only a join, a leave or a VTEP change needs the host's whole contribution; a plain
            // entry change (the common case) costs what the event changed, not the host's size.
            let unicast_after = || -> BTreeSet<PortInfo> {
                topology
                    .member(&host, network)
                    .map(|m| m.unicast.iter().copied().collect())
                    .unwrap_or_default()
            };
            let flood = std::iter::once(FLOODING_ENTRY);
            match (touch.on_before, on_after, touch.vtep_before, vtep_after) {
                (false, true, _, Some(vtep)) => {
                    self.add(network, Origin::Native, vtep, flood.chain(unicast_after()));
                    joined.push((host, network));
                }
                (true, false, Some(vtep), _) => {
                    let before = unicast_before(&unicast_after(), &touch);
                    self.remove(network, Origin::Native, vtep, flood.chain(before));
                    left.push((host, network));
                }
                (true, true, Some(old), Some(new)) if old != new => {
                    // Entries an extension keeps under the host's old VTEP were the host's own
                    // address until now, so it never took them: its full FDB brings them.
                    if topology
                        .networks
                        .get(&network)
                        .is_some_and(|state| state.claims.has_vtep(old))
                    {
                        joined.push((host.clone(), network));
                    }
                    let before = unicast_before(&unicast_after(), &touch);
                    self.remove(network, Origin::Native, old, flood.chain(before));
                    self.add(
                        network,
                        Origin::Native,
                        new,
                        std::iter::once(FLOODING_ENTRY).chain(unicast_after()),
                    );
                }
                (true, true, Some(vtep), Some(_)) => {
                    let removed: Vec<_> = touch.removed.difference(&touch.added).copied().collect();
                    let added: Vec<_> = touch.added.difference(&touch.removed).copied().collect();
                    if !removed.is_empty() {
                        self.remove(network, Origin::Native, vtep, removed);
                    }
                    if !added.is_empty() {
                        self.add(network, Origin::Native, vtep, added);
                    }
                }
                _ => {}
            }
        }
        (joined, left)
    }

    /// The fanouts of this event, network by network (ascending id): removes, adds, chg_ip.
    /// Identical remove+add pairs cancel; a remove of a `[mac, ip]` that the same event adds
    /// under another VTEP is dropped (difference 4: the add moves it).
    pub(crate) fn fanouts(&mut self, topology: &Topology) -> Vec<Fanout> {
        let mut out = Vec::new();
        for (network, mut delta) in std::mem::take(&mut self.networks) {
            let Some(state) = topology.networks.get(&network) else {
                continue;
            };
            cancel_identical(&mut delta);
            drop_moved_removes(&mut delta);
            drop_shared_floods(&mut delta, topology, state);
            for (origin, vteps) in &delta.removes {
                if let Some(payload) = entries_payload(state, vteps) {
                    out.push(Fanout {
                        method: Method::RemoveFdbEntries,
                        origin: *origin,
                        payload,
                    });
                }
            }
            for (origin, vteps) in &delta.adds {
                if let Some(payload) = entries_payload(state, vteps) {
                    out.push(Fanout {
                        method: Method::AddFdbEntries,
                        origin: *origin,
                        payload,
                    });
                }
            }
            let changes: Vec<(IpAddr, IpChange)> = delta
                .chg_ip
                .into_iter()
                .filter(|(_, (b, a))| !b.is_empty() || !a.is_empty())
                .map(|(vtep, (b, a))| {
                    (
                        vtep,
                        IpChange {
                            before: b.into_iter().collect(),
                            after: a.into_iter().collect(),
                        },
                    )
                })
                .collect();
            if !changes.is_empty() {
                out.push(Fanout {
                    method: Method::UpdateFdbEntries,
                    origin: Origin::Native,
                    payload: FdbPayload::ChgIp(ChgIp(vec![(network, changes)])),
                });
            }
        }
        out
    }
}

/// The unicast entries a touched host had before the event.
fn unicast_before(after: &BTreeSet<PortInfo>, touch: &Touch) -> BTreeSet<PortInfo> {
    after
        .difference(&touch.added)
        .chain(touch.removed.iter())
        .copied()
        .collect()
}

fn cancel_identical(delta: &mut NetworkDelta) {
    for (origin, removes) in delta.removes.iter_mut() {
        let Some(adds) = delta.adds.get_mut(origin) else {
            continue;
        };
        for (vtep, removed) in removes.iter_mut() {
            if let Some(added) = adds.get_mut(vtep) {
                let both: Vec<PortInfo> = removed.intersection(added).copied().collect();
                for entry in both {
                    removed.remove(&entry);
                    added.remove(&entry);
                }
            }
        }
    }
    prune(&mut delta.removes);
    prune(&mut delta.adds);
}

fn drop_moved_removes(delta: &mut NetworkDelta) {
    let added: BTreeMap<PortInfo, BTreeSet<IpAddr>> =
        delta
            .adds
            .values()
            .flatten()
            .fold(BTreeMap::new(), |mut acc, (vtep, entries)| {
                for entry in entries.iter().filter(|e| !e.is_flooding()) {
                    acc.entry(*entry)
                        .or_insert_with(BTreeSet::new)
                        .insert(*vtep);
                }
                acc
            });
    if added.is_empty() {
        return;
    }
    for removes in delta.removes.values_mut() {
        for (vtep, entries) in removes.iter_mut() {
            entries.retain(|e| {
                e.is_flooding()
                    || !added
                        .get(e)
                        .is_some_and(|vteps| vteps.iter().any(|v| v != vtep))
            });
        }
    }
    prune(&mut delta.removes);
}

/// The shared-VTEP rule: a VTEP's flooding entry on a network is one entry with several
/// claimants — the host whose VTEP it is, while it is on the network, and every extension that
/// floods to it. It is added when the first claimant appears and removed when the last one goes,
/// so a flooding entry is dropped from a notification while a claimant of another origin holds
/// the VTEP after the event. One event changes the claims of one kind only (an engine event the
/// hosts', an extension update that extension's), so "held after" is "held before" as well.
fn drop_shared_floods(delta: &mut NetworkDelta, topology: &Topology, state: &NetworkState) {
    for (origin, vteps) in delta.removes.iter_mut().chain(delta.adds.iter_mut()) {
        for (vtep, entries) in vteps.iter_mut() {
            if entries.contains(&FLOODING_ENTRY)
                && claimed_by_other(topology, state, *vtep, *origin)
            {
                entries.remove(&FLOODING_ENTRY);
            }
        }
    }
    prune(&mut delta.removes);
    prune(&mut delta.adds);
}

/// Whether a claimant other than `origin` holds `vtep`'s flooding entry on the network now.
fn claimed_by_other(
    topology: &Topology,
    state: &NetworkState,
    vtep: IpAddr,
    origin: Origin,
) -> bool {
    let host = topology
        .agent_by_ip
        .get(&vtep)
        .is_some_and(|host| topology.is_on(host, state.network.id));
    let extensions = state.claims.flood.get(&vtep);
    match origin {
        Origin::Native => extensions.is_some_and(|set| !set.is_empty()),
        Origin::Extension(index) => {
            host || extensions.is_some_and(|set| set.iter().any(|other| *other != index))
        }
    }
}

fn prune(by_origin: &mut BTreeMap<Origin, VtepEntries>) {
    for vteps in by_origin.values_mut() {
        vteps.retain(|_, entries| !entries.is_empty());
    }
    by_origin.retain(|_, vteps| !vteps.is_empty());
}

fn entries_payload(state: &NetworkState, vteps: &VtepEntries) -> Option<FdbPayload> {
    if vteps.is_empty() {
        return None;
    }
    let segment = &state.network.segment;
    Some(FdbPayload::Entries(FdbEntries::single(
        state.network.id,
        NetworkFdb {
            segment_id: segment.segmentation_id(),
            network_type: segment.network_type(),
            ports: vteps
                .iter()
                .map(|(vtep, entries)| (*vtep, entries.iter().copied().collect()))
                .collect(),
        },
    )))
}
