//! `StaticFdb`: remote VTEPs and devices that an operator configures by hand — a hardware VTEP
//! in front of bare-metal servers, a service appliance, a gateway that speaks no protocol l2pop
//! knows. Each network has VTEPs that flood for it and MACs (with their IPs) behind one VTEP.
//!
//! It is the smallest complete extension: it validates its input before changing anything,
//! keeps the state it announces, answers every full FDB from that state, and hands the engine
//! exactly the changes it made, so the convergence invariant holds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use l2pop_model::{FLOODING_ENTRY, Mac, NetworkId, PortInfo};
use serde::Deserialize;

use crate::engine::TopologyView;
use crate::extension::{
    ExtensionChanges, ExtensionEntries, ExtensionError, FdbExtension, FullFdbRequest,
};
use crate::full_fdb::validate_entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaticAction {
    Add,
    Remove,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct StaticNetwork {
    flood: BTreeSet<IpAddr>,
    /// MAC → (VTEP, IPs): a MAC lives behind one VTEP.
    macs: BTreeMap<Mac, (IpAddr, BTreeSet<IpAddr>)>,
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
                    if entry.is_flooding() {
                        state.flood.insert(vtep);
                    } else {
                        let (at, ips) = state
                            .macs
                            .entry(entry.mac)
                            .or_insert_with(|| (vtep, BTreeSet::new()));
                        *at = vtep;
                        ips.insert(entry.ip);
                    }
                    changes.adds.push((network, vtep, *entry));
                }
                StaticAction::Remove => {
                    if entry.is_flooding() {
                        state.flood.remove(&vtep);
                    } else if let Some((at, ips)) =
                        state.macs.get_mut(&entry.mac).filter(|(at, _)| *at == vtep)
                    {
                        let _ = at;
                        ips.remove(&entry.ip);
                        if ips.is_empty() {
                            state.macs.remove(&entry.mac);
                        }
                    }
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
    fn extend_full_fdb(
        &self,
        request: &FullFdbRequest<'_>,
        out: &mut ExtensionEntries,
    ) -> Result<(), ExtensionError> {
        let Some(state) = self.networks.get(&request.network.id) else {
            return Ok(());
        };
        for vtep in &state.flood {
            out.unicast(*vtep, FLOODING_ENTRY);
        }
        for (mac, (vtep, ips)) in &state.macs {
            for ip in ips {
                out.unicast(*vtep, PortInfo::new(*mac, *ip));
            }
        }
        Ok(())
    }

    fn network_deleted(&mut self, network: NetworkId) {
        self.networks.remove(&network);
    }
}
