//! The full-FDB builder (D7 with the extensions of RFE 1793653): what a host must know about a
//! network when it joins it, refreshes, or resyncs. Native contributions come from the topology
//! index, sorted by VTEP; every registered extension adds its entries, validated and filtered
//! (the native port wins a MAC, the earlier extension wins over a later one). One walk feeds
//! either a wire payload or a table with provenance, through [`Sink`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use l2pop_model::{FLOODING_ENTRY, Host, Mac, PortInfo};
use serde::Serialize;

use crate::extension::{ExtensionEntries, FullFdbRequest, Registry, Report};
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
    /// Entries in order, from ports (`extension` is `None`: each is its MAC's port) or from one
    /// extension.
    fn entries(&mut self, entries: &[PortInfo], extension: Option<usize>) {
        for entry in entries {
            let origin = extension.map_or(Origin::Port(entry.mac), Origin::Extension);
            self.entry(*entry, origin);
        }
    }
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

    fn entries(&mut self, entries: &[PortInfo], _: Option<usize>) {
        if let Some((_, list)) = self.ports.last_mut() {
            list.extend_from_slice(entries);
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

    let mut groups = extension
        .segments
        .chunk_by(|a, b| a.vtep == b.vtep)
        .peekable();
    for (vtep, native_host, member) in native {
        if own_vtep == Some(vtep) {
            continue;
        }
        while let Some(group) = groups.next_if(|g| g[0].vtep < vtep) {
            write_extension_vtep(sink, &extension, group);
        }
        let shared = groups.next_if(|g| g[0].vtep == vtep);
        let ext_len: usize =
            shared.map_or(0, |g| g.iter().map(|s| extension.entries_of(s).len()).sum());
        sink.vtep(vtep, 1 + member.unicast.len() + ext_len);
        match shared {
            // A VTEP both a host and an extension claim (a misconfiguration): merge, sorted.
            Some(group) => {
                let mut merged: BTreeMap<PortInfo, Origin<'_>> = BTreeMap::new();
                merged.insert(FLOODING_ENTRY, Origin::Host(native_host));
                for entry in member.unicast.iter() {
                    merged.insert(*entry, Origin::Port(entry.mac));
                }
                for segment in group {
                    for entry in extension.entries_of(segment) {
                        merged
                            .entry(*entry)
                            .or_insert(Origin::Extension(segment.index));
                    }
                }
                for (entry, origin) in merged {
                    sink.entry(entry, origin);
                }
            }
            None => {
                sink.entry(FLOODING_ENTRY, Origin::Host(native_host));
                sink.entries(&member.unicast, None);
            }
        }
    }
    for group in groups {
        write_extension_vtep(sink, &extension, group);
    }
}

fn write_extension_vtep(sink: &mut impl Sink, kept: &Kept<'_>, group: &[Segment]) {
    sink.vtep(
        group[0].vtep,
        group.iter().map(|s| kept.entries_of(s).len()).sum(),
    );
    for segment in group {
        sink.entries(kept.entries_of(segment), Some(segment.index));
    }
}

/// The extension entries that go into one full FDB, sorted by VTEP then entry, as segments of
/// one extension's entries under one VTEP (a VTEP two extensions share has several, which
/// together stay sorted). A run kept whole is not copied: its segment names it.
#[derive(Debug, Default)]
struct Kept<'a> {
    /// The extensions' outputs, as they wrote them.
    outputs: Vec<ExtensionEntries<'a>>,
    /// Entries kept one by one (from runs that lost some).
    picked: Vec<PortInfo>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    vtep: IpAddr,
    /// The extension's index in the registry.
    index: usize,
    from: Span,
}

/// Where a segment's entries are.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// Run `run` of `outputs[output]`, whole.
    Run { output: usize, run: usize },
    /// `picked[start..end]`.
    Picked { start: usize, end: usize },
}

impl<'a> Kept<'a> {
    fn push(&mut self, vtep: IpAddr, entry: PortInfo, index: usize) {
        let end = self.picked.len();
        match self.segments.last_mut() {
            Some(Segment {
                vtep: last_vtep,
                index: last_index,
                from: Span::Picked { end: last_end, .. },
            }) if *last_vtep == vtep && *last_index == index && *last_end == end => *last_end += 1,
            _ => self.segments.push(Segment {
                vtep,
                index,
                from: Span::Picked {
                    start: end,
                    end: end + 1,
                },
            }),
        }
        self.picked.push(entry);
    }

    fn entries_of(&self, segment: &Segment) -> &[PortInfo] {
        match segment.from {
            Span::Run { output, run } => self.outputs[output].run(run).1,
            Span::Picked { start, end } => &self.picked[start..end],
        }
    }

    /// Sorts by (VTEP, entry), keeping the earlier extension's of two identical entries.
    fn sort(self) -> Kept<'a> {
        let mut all: Vec<(IpAddr, PortInfo, usize)> = self
            .segments
            .iter()
            .flat_map(|s| {
                self.entries_of(s)
                    .iter()
                    .map(move |entry| (s.vtep, *entry, s.index))
            })
            .collect();
        // Stable: entries were kept extension by extension, in registration order.
        all.sort_by_key(|(vtep, entry, _)| (*vtep, *entry));
        all.dedup_by(|later, earlier| later.0 == earlier.0 && later.1 == earlier.1);
        let mut sorted = Kept::default();
        sorted.picked.reserve(all.len());
        for (vtep, entry, index) in all {
            sorted.push(vtep, entry, index);
        }
        sorted
    }
}

/// Runs the extensions and keeps their valid, visible entries, sorted by VTEP then entry.
///
/// An extension that writes its entries in wire order (see [`ExtensionEntries`]) costs one pass:
/// its entries are merged against the engine's record of its visible entries for their VTEP
/// (`ExtensionClaims::visible`), and only those not on record (hidden by a port, never
/// announced) are looked up in the network's port indexes. Output in another order, or from two
/// extensions, is sorted once at the end.
/// The MAC check between extensions (the first registered wins) runs only when a second
/// extension contributes; an extension's own entries name each MAC once (its updates are checked
/// by the engine's mirror).
fn extension_entries<'a>(
    registry: &'a Registry,
    state: &NetworkState,
    host: &Host,
    own_vtep: Option<IpAddr>,
    skip_source: Option<&str>,
    reports: &mut Vec<Report>,
) -> Kept<'a> {
    let mut kept = Kept::default();
    if registry.slots.is_empty() {
        return kept;
    }
    let request = FullFdbRequest {
        network: &state.network,
        host,
        host_vtep: own_vtep,
    };
    // MAC → (extension index, VTEP); built when a second extension contributes.
    let mut owners: Option<HashMap<Mac, (usize, IpAddr)>> = None;
    // The first contributor's index and output (in `kept.outputs`), from which `owners` is built.
    let mut first: Option<(usize, usize)> = None;
    let mut sorted = true;
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
        if let Some((first_index, output)) = first.take() {
            owners = Some(mac_owners(state, first_index, &kept.outputs[output]));
            sorted = false;
        }
        let output = kept.outputs.len();
        let mut last_vtep = None;
        for run_index in 0..entries.run_count() {
            let (vtep, run) = entries.run(run_index);
            sorted &= last_vtep.is_none_or(|last| last < vtep);
            last_vtep = Some(vtep);
            let on_record = state.claims.visible(index, vtep);
            let unicast = run.strip_prefix(&[FLOODING_ENTRY]).unwrap_or(run);
            // The common case: the run is exactly what the engine has on record (so it is
            // sorted, valid and collides with no port) and no other extension contributed yet.
            if owners.is_none()
                && unicast == on_record
                && (unicast.len() == run.len() || validate_entry(vtep, FLOODING_ENTRY).is_ok())
            {
                debug_assert!(
                    unicast.iter().all(|e| !collides_with_port(state, e)),
                    "an entry on record as visible collides with a port"
                );
                if own_vtep != Some(vtep) {
                    kept.segments.push(Segment {
                        vtep,
                        index,
                        from: Span::Run {
                            output,
                            run: run_index,
                        },
                    });
                }
                continue;
            }
            let run_sorted = run.is_sorted_by(|a, b| a < b);
            sorted &= run_sorted;
            // Merge cursor over the entries on record (only a sorted run can be merged).
            let mut on_record = if run_sorted { on_record } else { &[] };
            for entry in run {
                let visible = !entry.is_flooding() && {
                    while let Some((first, rest)) = on_record.split_first()
                        && first < entry
                    {
                        on_record = rest;
                    }
                    on_record.first() == Some(entry)
                };
                let keep = if visible {
                    debug_assert!(
                        !collides_with_port(state, entry),
                        "entry {entry:?} on record as visible collides with a port"
                    );
                    owners.is_none()
                        || owner_allows(
                            registry,
                            state,
                            owners.as_mut(),
                            index,
                            vtep,
                            entry,
                            reports,
                        )
                } else {
                    check_entry(
                        registry,
                        state,
                        owners.as_mut(),
                        index,
                        vtep,
                        *entry,
                        reports,
                    )
                };
                if keep && own_vtep != Some(vtep) {
                    kept.push(vtep, *entry, index);
                }
            }
        }
        if owners.is_none() {
            first = Some((index, output));
        }
        kept.outputs.push(entries);
    }
    if sorted { kept } else { kept.sort() }
}

/// Whether a port of the network has `entry`'s MAC or IP (the checks the record of visible
/// entries spares; asserted in debug builds, so that the tests check the record).
fn collides_with_port(state: &NetworkState, entry: &PortInfo) -> bool {
    state.macs.contains_key(&entry.mac) || state.port_with_ip(&entry.ip).is_some()
}

/// The MACs the first contributing extension holds in this build, whatever became of its
/// entries: its valid entries whose MAC no port has (an entry that is hidden by a port's IP or
/// under the host's own VTEP still holds its MAC), the last written winning.
fn mac_owners(
    state: &NetworkState,
    index: usize,
    entries: &ExtensionEntries<'_>,
) -> HashMap<Mac, (usize, IpAddr)> {
    entries
        .runs()
        .flat_map(|(vtep, run)| run.iter().map(move |entry| (vtep, *entry)))
        .filter(|(vtep, entry)| {
            validate_entry(*vtep, *entry).is_ok()
                && !entry.is_flooding()
                && !state.macs.contains_key(&entry.mac)
        })
        .map(|(vtep, entry)| (entry.mac, (index, vtep)))
        .collect()
}

/// The check between extensions: whether extension `index` may have `entry`'s MAC in this
/// build (the first contributor to name it wins). Reports and counts a loss.
fn owner_allows(
    registry: &Registry,
    state: &NetworkState,
    owners: Option<&mut HashMap<Mac, (usize, IpAddr)>>,
    index: usize,
    vtep: IpAddr,
    entry: &PortInfo,
    reports: &mut Vec<Report>,
) -> bool {
    let Some(owners) = owners else {
        return true;
    };
    match owners.get(&entry.mac) {
        Some((owner, owner_vtep)) if *owner != index || *owner_vtep != vtep => {
            let slot = &registry.slots[index];
            slot.count_dropped();
            reports.push(Report::CollidesWithExtension {
                extension: slot.name.clone(),
                network: state.network.id,
                vtep,
                mac: entry.mac,
                winner: registry.slots[*owner].name.clone(),
            });
            false
        }
        Some(_) => true,
        None => {
            owners.insert(entry.mac, (index, vtep));
            true
        }
    }
}

/// Every check of an entry that is not on record as visible: valid, then (unless flooding) the
/// checks in the order of the engine's record of claims: a port's MAC, then the first
/// extension's MAC, then a port's IP. Reports and counts a drop.
fn check_entry(
    registry: &Registry,
    state: &NetworkState,
    owners: Option<&mut HashMap<Mac, (usize, IpAddr)>>,
    index: usize,
    vtep: IpAddr,
    entry: PortInfo,
    reports: &mut Vec<Report>,
) -> bool {
    let slot = &registry.slots[index];
    let network = state.network.id;
    if let Err(reason) = validate_entry(vtep, entry) {
        slot.count_dropped();
        reports.push(Report::InvalidEntry {
            extension: slot.name.clone(),
            network,
            vtep,
            entry,
            reason,
        });
        return false;
    }
    if entry.is_flooding() {
        return true;
    }
    if let Some(port) = state.macs.get(&entry.mac) {
        slot.count_dropped();
        reports.push(Report::CollidesWithPort {
            extension: slot.name.clone(),
            network,
            vtep,
            mac: entry.mac,
            port: *port,
        });
        return false;
    }
    if !owner_allows(registry, state, owners, index, vtep, &entry, reports) {
        return false;
    }
    if let Some(port) = state.port_with_ip(&entry.ip) {
        slot.count_dropped();
        reports.push(Report::CollidesWithPortIp {
            extension: slot.name.clone(),
            network,
            vtep,
            mac: entry.mac,
            ip: entry.ip,
            port,
        });
        return false;
    }
    true
}

/// What extension `index` announced on the network, from the engine's record of its updates,
/// in wire order.
fn announced_entries(state: &NetworkState, index: usize) -> ExtensionEntries<'static> {
    let mut all: Vec<(IpAddr, PortInfo)> = state
        .claims
        .flood
        .iter()
        .filter(|(_, claimants)| claimants.contains(&index))
        .map(|(vtep, _)| (*vtep, FLOODING_ENTRY))
        .collect();
    for (mac, claims) in &state.claims.macs {
        if let Some(claim) = claims.get(&index) {
            all.extend(
                claim
                    .ips
                    .iter()
                    .map(|ip| (claim.vtep, PortInfo::new(*mac, *ip))),
            );
        }
    }
    all.sort_unstable();
    let mut out = ExtensionEntries::default();
    for (vtep, entry) in all {
        out.unicast(vtep, entry);
    }
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

#[cfg(test)]
#[path = "full_fdb_tests.rs"]
mod tests;
