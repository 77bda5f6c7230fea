//! [`FdbTable`]: a host's forwarding state as l2pop's notifications build it, network by network:
//! the VTEPs to flood to and, per `[mac, ip]`, the VTEP it lives behind.
//!
//! The rules are those of DESIGN difference 4, as l2pop's agent applies them: an add replaces a
//! `[mac, ip]` wherever it was (a move is an add at the new VTEP), a remove deletes an entry only
//! if it still points at the VTEP the remove names, and entries under the host's own VTEP are
//! ignored (a host never tunnels to itself). Pure data: the agent's planner and the convergence
//! tests both build on it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::{FdbPayload, Method, NetworkId, PortInfo};

/// One network's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkTable {
    pub flood: BTreeSet<IpAddr>,
    /// `[mac, ip]` → the VTEP it is behind.
    pub unicast: BTreeMap<PortInfo, IpAddr>,
}

impl NetworkTable {
    pub fn add(&mut self, vtep: IpAddr, entry: PortInfo) {
        if entry.is_flooding() {
            self.flood.insert(vtep);
        } else {
            self.unicast.insert(entry, vtep);
        }
    }

    /// Move-safe: a unicast entry is removed only while it points at `vtep`.
    pub fn remove(&mut self, vtep: IpAddr, entry: PortInfo) {
        if entry.is_flooding() {
            self.flood.remove(&vtep);
        } else if self.unicast.get(&entry) == Some(&vtep) {
            self.unicast.remove(&entry);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.flood.is_empty() && self.unicast.is_empty()
    }

    /// Unicast entries announced under the host's own VTEP: they live behind this host now, so
    /// a copy learned under another VTEP is dropped (an add moves an entry, difference 4, also
    /// when it moves to the receiving host; nothing is ever programmed toward the host itself).
    fn arrive_here(&mut self, entries: &[PortInfo]) {
        for entry in entries.iter().filter(|e| !e.is_flooding()) {
            self.unicast.remove(entry);
        }
    }
}

/// A host's tables, keyed by network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdbTable {
    pub networks: BTreeMap<NetworkId, NetworkTable>,
}

impl FdbTable {
    /// Applies one notification's payload; `own_vtep` is the host's tunnel address.
    /// `accept` says whether the host keeps state for a network (agents keep only the networks
    /// they have ports on and ignore the others, as Neutron's agents do).
    pub fn apply(
        &mut self,
        method: Method,
        payload: &FdbPayload,
        own_vtep: Option<IpAddr>,
        accept: impl Fn(NetworkId) -> bool,
    ) {
        match payload {
            FdbPayload::Entries(entries) => {
                for (network, fdb) in &entries.0 {
                    if !accept(*network) {
                        continue;
                    }
                    let table = self.networks.entry(*network).or_default();
                    for (vtep, list) in &fdb.ports {
                        if Some(*vtep) == own_vtep {
                            if method == Method::AddFdbEntries {
                                table.arrive_here(list);
                            }
                            continue;
                        }
                        for entry in list {
                            match method {
                                Method::RemoveFdbEntries => table.remove(*vtep, *entry),
                                Method::AddFdbEntries | Method::UpdateFdbEntries => {
                                    table.add(*vtep, *entry)
                                }
                            }
                        }
                    }
                }
            }
            FdbPayload::ChgIp(chg) => {
                for (network, vteps) in &chg.0 {
                    if !accept(*network) {
                        continue;
                    }
                    let table = self.networks.entry(*network).or_default();
                    for (vtep, change) in vteps {
                        if Some(*vtep) == own_vtep {
                            table.arrive_here(&change.after);
                            continue;
                        }
                        for entry in &change.before {
                            table.remove(*vtep, *entry);
                        }
                        for entry in &change.after {
                            table.add(*vtep, *entry);
                        }
                    }
                }
            }
        }
    }

    /// The table a full FDB describes (for comparison with one built from notifications).
    pub fn from_full_fdb(payload: &FdbPayload) -> Self {
        let mut table = FdbTable::default();
        table.apply(Method::AddFdbEntries, payload, None, |_| true);
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FLOODING_ENTRY, FdbEntries, NetworkFdb, NetworkType, Uuid};

    fn payload(ports: Vec<(&str, Vec<PortInfo>)>) -> FdbPayload {
        FdbPayload::Entries(FdbEntries::single(
            NetworkId(Uuid::from_u128(1)),
            NetworkFdb {
                segment_id: Some(1),
                network_type: NetworkType::Vxlan,
                ports: ports
                    .into_iter()
                    .map(|(v, l)| (v.parse().unwrap(), l))
                    .collect(),
            },
        ))
    }

    #[test]
    fn add_moves_and_stale_remove_is_ignored() {
        let device = PortInfo::new(
            "02:00:00:00:00:01".parse().unwrap(),
            "10.0.0.9".parse().unwrap(),
        );
        let mut table = FdbTable::default();
        table.apply(
            Method::AddFdbEntries,
            &payload(vec![("192.0.2.1", vec![FLOODING_ENTRY, device])]),
            None,
            |_| true,
        );
        table.apply(
            Method::AddFdbEntries,
            &payload(vec![("192.0.2.2", vec![device])]),
            None,
            |_| true,
        );
        // A late remove naming the old VTEP does not delete the moved entry.
        table.apply(
            Method::RemoveFdbEntries,
            &payload(vec![("192.0.2.1", vec![device])]),
            None,
            |_| true,
        );
        let net = &table.networks[&NetworkId(Uuid::from_u128(1))];
        assert_eq!(
            net.unicast.get(&device),
            Some(&"192.0.2.2".parse().unwrap())
        );
        assert!(net.flood.contains(&"192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn own_vtep_and_unaccepted_networks_are_ignored() {
        let mut table = FdbTable::default();
        let own = "192.0.2.1".parse().ok();
        table.apply(
            Method::AddFdbEntries,
            &payload(vec![("192.0.2.1", vec![FLOODING_ENTRY])]),
            own,
            |_| true,
        );
        assert!(table.networks.values().all(NetworkTable::is_empty));
        let mut other = FdbTable::default();
        other.apply(
            Method::AddFdbEntries,
            &payload(vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
            None,
            |_| false,
        );
        assert!(other.networks.is_empty());
    }
}
