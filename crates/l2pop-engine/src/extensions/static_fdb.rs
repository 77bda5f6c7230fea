//! `StaticFdb`: remote VTEPs and devices that an operator configures by hand — a hardware VTEP
//! in front of bare-metal servers, a service appliance, a gateway that speaks no protocol l2pop
//! knows. Each network has VTEPs that flood for it and MACs (with their IPs) behind one VTEP.
//!
//! It is the smallest complete extension: it validates its input before changing anything,
//! keeps the state it announces, answers every full FDB from that state, and hands the engine
//! exactly the changes it made, so the convergence invariant holds. Its state is kept in wire
//! order (per VTEP, sorted), so a full FDB takes it as it is (see [`ExtensionEntries`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use l2pop_model::{Mac, NetworkId, PortInfo};
use serde::Deserialize;

use crate::engine::TopologyView;
use crate::extension::{
    ExtensionChanges, ExtensionEntries, ExtensionError, FdbExtension, FullFdbRequest,
};
use crate::full_fdb::validate_entry;
use crate::sorted::SortedVec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaticAction {
    Add,
    Remove,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct StaticNetwork {
    /// MAC → the VTEP it lives behind (one per MAC).
    macs: BTreeMap<Mac, IpAddr>,
    /// VTEP → its entries in wire order: the flooding entry (if it floods), then its MACs' entries.
    vteps: BTreeMap<IpAddr, SortedVec<PortInfo>>,
}

impl StaticNetwork {
    fn add(&mut self, vtep: IpAddr, entry: PortInfo) {
        if !entry.is_flooding() {
            match self.macs.insert(entry.mac, vtep) {
                // A move: the MAC takes all its IPs to the new VTEP.
                Some(old) if old != vtep => {
                    let moved =
                        self.vtep_entries(old, |list| list.drain_run(|e| e.mac.cmp(&entry.mac)));
                    let list = self.vteps.entry(vtep).or_default();
                    for e in moved {
                        list.insert(e);
                    }
                }
                _ => {}
            }
        }
        self.vteps.entry(vtep).or_default().insert(entry);
    }

    fn remove(&mut self, vtep: IpAddr, entry: PortInfo) {
        if entry.is_flooding() {
            self.vtep_entries(vtep, |list| list.remove(&entry));
            return;
        }
        // Only where the MAC lives: a removal naming another VTEP is ignored.
        if self.macs.get(&entry.mac) != Some(&vtep) {
            return;
        }
        let mac_left = self.vtep_entries(vtep, |list| {
            list.remove(&entry);
            let at = list.partition_point(|e| e.mac < entry.mac);
            list.get(at).is_some_and(|e| e.mac == entry.mac)
        });
        if !mac_left {
            self.macs.remove(&entry.mac);
        }
    }

    /// Runs `f` on `vtep`'s list (empty if none) and drops the list if `f` emptied it.
    fn vtep_entries<T>(
        &mut self,
        vtep: IpAddr,
        f: impl FnOnce(&mut SortedVec<PortInfo>) -> T,
    ) -> T {
        let list = self.vteps.entry(vtep).or_default();
        let out = f(list);
        if list.is_empty() {
            self.vteps.remove(&vtep);
        }
        out
    }
}

/// Operator-configured entries, per network.
#[derive(Debug, Default, Clone)]
pub struct StaticFdb {
    networks: BTreeMap<NetworkId, StaticNetwork>,
}

impl StaticFdb {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or removes `entries` under `vtep` on `network`. The flooding entry makes `vtep`
    /// flood for the network. Adding a MAC that is configured under another VTEP moves it.
    /// Everything is validated first: on error nothing changed.
    pub fn apply(
        &mut self,
        action: StaticAction,
        network: NetworkId,
        vtep: IpAddr,
        entries: &[PortInfo],
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, ExtensionError> {
        if topology.network(network).is_none() {
            return Err(ExtensionError::new(format!(
                "network_id: no network {network}"
            )));
        }
        for entry in entries {
            validate_entry(vtep, *entry)
                .map_err(|reason| ExtensionError::new(format!("entries: {reason}")))?;
        }
        let mut changes = ExtensionChanges::default();
        let state = self.networks.entry(network).or_default();
        for entry in entries {
            match action {
                StaticAction::Add => {
                    state.add(vtep, *entry);
                    changes.adds.push((network, vtep, *entry));
                }
                StaticAction::Remove => {
                    state.remove(vtep, *entry);
                    changes.removes.push((network, vtep, *entry));
                }
            }
        }
        if *state == StaticNetwork::default() {
            self.networks.remove(&network);
        }
        Ok(changes)
    }
}

impl FdbExtension for StaticFdb {
    fn extend_full_fdb<'a>(
        &'a self,
        request: &FullFdbRequest<'_>,
        out: &mut ExtensionEntries<'a>,
    ) -> Result<(), ExtensionError> {
        let Some(state) = self.networks.get(&request.network.id) else {
            return Ok(());
        };
        for (vtep, list) in &state.vteps {
            out.extend(*vtep, list);
        }
        Ok(())
    }

    fn network_deleted(&mut self, network: NetworkId) {
        self.networks.remove(&network);
    }
}
