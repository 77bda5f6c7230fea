//! The full-FDB builder (D7 with the extensions of RFE 1793653): what a host must know about a
//! network when it joins it, refreshes, or resyncs. Native contributions come from the topology
//! index, sorted by VTEP; every registered extension adds its entries, validated and filtered
//! (the native port wins a MAC, the earlier extension wins over a later one). One walk feeds
//! either a wire payload or a table with provenance, through [`Sink`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use l2pop_model::{FLOODING_ENTRY, Host, Mac, PortInfo};
use serde::Serialize;

use crate::extension::{FullFdbRequest, Registry, Report};
use crate::topology::{NetworkState, Topology};

/// Who put an entry into a host's table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Provenance {
    /// The flooding entry of a host that has ports on the network.
    Host(Host),
    /// A port's `[mac, ip]`.
    Port(l2pop_model::PortId),
    /// An extension's entry (its registered name).
    Extension(String),
}

/// Cheap provenance handed to a sink; resolved to [`Provenance`] only when a sink wants it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    Host(&'a Host),
    Port(Mac),
    Extension(usize),
}

pub(crate) trait Sink {
    /// Starts a VTEP's list; `entries` is how many entries follow (at most), so that a sink can
    /// allocate the list once instead of growing it entry by entry.
    fn vtep(&mut self, vtep: IpAddr, entries: usize);
    fn entry(&mut self, entry: PortInfo, origin: Origin<'_>);
}

/// Builds the wire list `[(vtep, [entries])]`.
#[derive(Default)]
pub(crate) struct PayloadSink {
    pub(crate) ports: Vec<(IpAddr, Vec<PortInfo>)>,
}

impl Sink for PayloadSink {
    fn vtep(&mut self, vtep: IpAddr, entries: usize) {
        self.ports.push((vtep, Vec::with_capacity(entries)));
    }

    fn entry(&mut self, entry: PortInfo, _: Origin<'_>) {
        if let Some((_, list)) = self.ports.last_mut() {
            list.push(entry);
        }
    }
}

/// Builds a table with provenance.
pub(crate) struct ProvenanceSink<'a> {
    pub(crate) state: &'a NetworkState,
    pub(crate) registry: &'a Registry,
    pub(crate) vteps: Vec<(IpAddr, Vec<(PortInfo, Provenance)>)>,
}

impl Sink for ProvenanceSink<'_> {
    fn vtep(&mut self, vtep: IpAddr, entries: usize) {
        self.vteps.push((vtep, Vec::with_capacity(entries)));
    }

    fn entry(&mut self, entry: PortInfo, origin: Origin<'_>) {
        let provenance = match origin {
            Origin::Host(host) => Provenance::Host(host.clone()),
            Origin::Port(mac) => match self.state.macs.get(&mac) {
                Some(port) => Provenance::Port(*port),
                None => return,
            },
            Origin::Extension(index) => {
                Provenance::Extension(self.registry.slots[index].name.clone())
            }
        };
        if let Some((_, list)) = self.vteps.last_mut() {
            list.push((entry, provenance));
        }
    }
}

/// Writes the full FDB of `host` for the network `state` into `sink`.
pub(crate) fn build(
    topology: &Topology,
    registry: &Registry,
    state: &NetworkState,
    host: &Host,
    skip_source: Option<&str>,
    sink: &mut impl Sink,
    reports: &mut Vec<Report>,
) {
    let own_vtep = topology.vtep(host);
    let native = topology.contributors(state, host);
    let extension = extension_entries(registry, state, host, own_vtep, skip_source, reports);

    let mut ext_iter = extension
        .chunk_by(|a, b| a.0 == b.0)
        .map(|entries| (entries[0].0, entries))
        .peekable();
    for (vtep, native_host, member) in native {
        if own_vtep == Some(vtep) {
            continue;
        }
        while let Some((ext_vtep, entries)) = ext_iter.next_if(|(v, _)| *v < vtep) {
            write_extension_vtep(sink, ext_vtep, entries);
        }
        let ext_entries = ext_iter.next_if(|(v, _)| *v == vtep).map(|(_, e)| e);
        let len = 1 + member.unicast.len() + ext_entries.map_or(0, <[_]>::len);
        sink.vtep(vtep, len);
        match ext_entries {
            // A VTEP both a host and an extension claim (a misconfiguration): merge, sorted.
            Some(ext_entries) => {
                let mut merged: BTreeMap<PortInfo, Origin<'_>> = BTreeMap::new();
                merged.insert(FLOODING_ENTRY, Origin::Host(native_host));
                for entry in &member.unicast {
                    merged.insert(*entry, Origin::Port(entry.mac));
                }
                for (_, entry, index) in ext_entries {
                    merged.entry(*entry).or_insert(Origin::Extension(*index));
                }
                for (entry, origin) in merged {
                    sink.entry(entry, origin);
                }
            }
            None => {
                sink.entry(FLOODING_ENTRY, Origin::Host(native_host));
                for entry in &member.unicast {
                    sink.entry(*entry, Origin::Port(entry.mac));
                }
            }
        }
    }
    for (ext_vtep, entries) in ext_iter {
        write_extension_vtep(sink, ext_vtep, entries);
    }
}

fn write_extension_vtep(sink: &mut impl Sink, vtep: IpAddr, entries: &[ExtensionEntry]) {
    sink.vtep(vtep, entries.len());
    for (_, entry, index) in entries {
        sink.entry(*entry, Origin::Extension(*index));
    }
}

/// An extension entry under its VTEP, with the index of the extension that gave it.
type ExtensionEntry = (IpAddr, PortInfo, usize);

/// Runs the extensions and keeps their valid, visible entries, sorted by VTEP then entry (one
/// run per VTEP, which `build` walks as slices). Collected into one vector and sorted once: far
/// cheaper per entry than ordered inserts.
/// The MAC check between extensions (the first registered wins) runs only when a second
/// extension contributes; an extension's own entries name each MAC once (its updates are checked
/// by the engine's mirror).
fn extension_entries(
    registry: &Registry,
    state: &NetworkState,
    host: &Host,
    own_vtep: Option<IpAddr>,
    skip_source: Option<&str>,
    reports: &mut Vec<Report>,
) -> Vec<ExtensionEntry> {
    if registry.slots.is_empty() {
        return Vec::new();
    }
    let request = FullFdbRequest {
        network: &state.network,
        host,
        host_vtep: own_vtep,
    };
    let mut kept: Vec<ExtensionEntry> = Vec::new();
    // MAC → (extension index, VTEP); built when a second extension contributes.
    let mut owners: Option<HashMap<Mac, (usize, IpAddr)>> = None;
    // The first contributor's MACs, whatever became of its entries, for `owners`.
    let mut first: Vec<(Mac, usize, IpAddr)> = Vec::new();
    let mut contributors = 0usize;
    for (index, slot) in registry.slots.iter().enumerate() {
        if skip_source == Some(slot.name.as_str()) {
            continue;
        }
        // A quarantined extension is not called: its entries are what it announced.
        let entries = if slot.quarantined {
            announced_entries(state, index)
        } else {
            slot.run(&request, reports)
        };
        if entries.is_empty() {
            continue;
        }
        contributors += 1;
        if contributors == 2 {
            owners = Some(first.iter().map(|(mac, i, v)| (*mac, (*i, *v))).collect());
        }
        kept.reserve(entries.len());
        if owners.is_none() {
            first.reserve(entries.len());
        }
        for (vtep, entry) in entries {
            if let Err(reason) = validate_entry(vtep, entry) {
                slot.count_dropped();
                reports.push(Report::InvalidEntry {
                    extension: slot.name.clone(),
                    network: state.network.id,
                    vtep,
                    entry,
                    reason,
                });
                continue;
            }
            // The checks in the order of the engine's record of claims: a port's MAC, then the
            // first extension's MAC (an entry that is hidden or under the host's own VTEP still
            // holds its MAC), then a port's IP.
            if !entry.is_flooding() {
                if let Some(port) = state.macs.get(&entry.mac) {
                    slot.count_dropped();
                    reports.push(Report::CollidesWithPort {
                        extension: slot.name.clone(),
                        network: state.network.id,
                        vtep,
                        mac: entry.mac,
                        port: *port,
                    });
                    continue;
                }
                match owners.as_mut() {
                    None => first.push((entry.mac, index, vtep)),
                    Some(owners) => match owners.get(&entry.mac) {
                        Some((owner, owner_vtep)) if *owner != index || *owner_vtep != vtep => {
                            slot.count_dropped();
                            reports.push(Report::CollidesWithExtension {
                                extension: slot.name.clone(),
                                network: state.network.id,
                                vtep,
                                mac: entry.mac,
                                winner: registry.slots[*owner].name.clone(),
                            });
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            owners.insert(entry.mac, (index, vtep));
                        }
                    },
                }
                if let Some(port) = crate::engine::port_with_ip(state, &entry.ip) {
                    slot.count_dropped();
                    reports.push(Report::CollidesWithPortIp {
                        extension: slot.name.clone(),
                        network: state.network.id,
                        vtep,
                        mac: entry.mac,
                        ip: entry.ip,
                        port,
                    });
                    continue;
                }
            }
            if own_vtep == Some(vtep) {
                continue;
            }
            kept.push((vtep, entry, index));
        }
    }
    // Stable: of two identical entries, the earlier extension's is kept.
    kept.sort_by_key(|(vtep, entry, _)| (*vtep, *entry));
    kept.dedup_by(|later, earlier| later.0 == earlier.0 && later.1 == earlier.1);
    kept
}

/// What extension `index` announced on the network, from the engine's record of its updates.
fn announced_entries(state: &NetworkState, index: usize) -> Vec<(IpAddr, PortInfo)> {
    let mut out: Vec<(IpAddr, PortInfo)> = state
        .claims
        .flood
        .iter()
        .filter(|(_, claimants)| claimants.contains(&index))
        .map(|(vtep, _)| (*vtep, FLOODING_ENTRY))
        .collect();
    for (mac, claims) in &state.claims.macs {
        if let Some(claim) = claims.get(&index) {
            out.extend(
                claim
                    .ips
                    .iter()
                    .map(|ip| (claim.vtep, PortInfo::new(*mac, *ip))),
            );
        }
    }
    // In the order an extension lists its state (flooding VTEPs, then MACs): deterministic
    // reports.
    out.sort_unstable_by_key(|(vtep, entry)| (*entry, *vtep));
    out
}

/// An extension entry must name a unicast VTEP and be the flooding entry or a unicast MAC with a
/// non-multicast IP (`0.0.0.0` allowed for a MAC-only device).
pub(crate) fn validate_entry(vtep: IpAddr, entry: PortInfo) -> Result<(), String> {
    let unicast_vtep = match vtep {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    };
    if !unicast_vtep {
        return Err(format!("vtep {vtep} is not a unicast address"));
    }
    if entry.is_flooding() {
        return Ok(());
    }
    if let Err(e) = entry.mac.validate_unicast() {
        return Err(e.to_string());
    }
    if entry.ip.is_multicast() {
        return Err(format!("ip {} is a multicast address", entry.ip));
    }
    Ok(())
}
