//! The FDB extension registry of RFE 1793653.
//!
//! An extension contributes entries to networks under VTEPs of its own (a VPN gateway, a
//! hardware VTEP). Two paths, as the RFE and its BGPVPN discussion ask:
//! - **full FDB**: every time the engine builds a host's full FDB (first port, refresh, resync,
//!   `desired_table`), it calls [`FdbExtension::extend_full_fdb`] of every registered extension,
//!   in registration order, skipping the one named as the requester's `source`;
//! - **updates**: the extension's owner changes its state and hands the engine the resulting
//!   [`ExtensionChanges`] ([`crate::Engine::update_extension`]); the engine turns them into
//!   fanout notifications tagged with the extension's name.
//!
//! The engine mirrors what each extension announced per network in [`ExtensionClaims`], because
//! a native port wins a MAC: when a port with the same MAC appears on the network the extension's
//! entry is withdrawn, and when it goes the entry comes back. Between extensions, the one
//! registered first wins a MAC. Extensions are isolated: an error or a panic in one is counted,
//! reported and skipped; the rest of the FDB still goes out.

use std::any::Any;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use l2pop_model::{Host, Mac, Network, NetworkId, PortInfo};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::RegistryError;
use crate::sorted::SortedVec;

/// What an extension is asked for: its entries for `network`, for the full FDB of `host`.
#[derive(Debug)]
pub struct FullFdbRequest<'a> {
    pub network: &'a Network,
    /// The host the full FDB is built for.
    pub host: &'a Host,
    /// That host's VTEP; entries under it are dropped (a host never tunnels to itself).
    pub host_vtep: Option<IpAddr>,
}

/// Where an extension writes its entries for one full FDB: runs of entries under one VTEP, in
/// the order written. A run can be lent ([`Self::extend`]): an extension that keeps its entries
/// in wire order hands them over without a copy.
///
/// Written in wire order (VTEPs ascending, each VTEP's entries ascending, so the flooding entry
/// first; each VTEP in one run), the entries go into the full FDB without a sort, and a run
/// equal to what the engine has on record as the extension's visible entries under its VTEP
/// skips the per-entry collision lookups. Any other order is accepted and sorted.
#[derive(Debug, Default)]
pub struct ExtensionEntries<'a> {
    /// The entries written one by one ([`Self::flood`], [`Self::unicast`]).
    written: Vec<PortInfo>,
    runs: Vec<Run<'a>>,
    len: usize,
}

#[derive(Debug)]
enum Run<'a> {
    /// `written[start..end]`.
    Written {
        vtep: IpAddr,
        start: usize,
        end: usize,
    },
    Lent {
        vtep: IpAddr,
        entries: &'a [PortInfo],
    },
}

impl<'a> ExtensionEntries<'a> {
    /// Flood this network's BUM traffic to `vtep` (Neutron's flooding entry).
    pub fn flood(&mut self, vtep: IpAddr) {
        self.unicast(vtep, l2pop_model::FLOODING_ENTRY);
    }

    /// `mac`/`ip` lives behind `vtep`. Use `0.0.0.0` as `ip` for a MAC-only device.
    pub fn unicast(&mut self, vtep: IpAddr, entry: PortInfo) {
        let end = self.written.len();
        match self.runs.last_mut() {
            Some(Run::Written {
                vtep: last,
                end: last_end,
                ..
            }) if *last == vtep && *last_end == end => *last_end += 1,
            _ => self.runs.push(Run::Written {
                vtep,
                start: end,
                end: end + 1,
            }),
        }
        self.written.push(entry);
        self.len += 1;
    }

    /// Every entry of `entries` lives behind `vtep` (the flooding entry included); lent, not
    /// copied.
    pub fn extend(&mut self, vtep: IpAddr, entries: &'a [PortInfo]) {
        if !entries.is_empty() {
            self.runs.push(Run::Lent { vtep, entries });
            self.len += entries.len();
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many runs were written.
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Run `i`: a VTEP and the entries written under it in one go.
    pub(crate) fn run(&self, i: usize) -> (IpAddr, &[PortInfo]) {
        match &self.runs[i] {
            Run::Written { vtep, start, end } => (*vtep, &self.written[*start..*end]),
            Run::Lent { vtep, entries } => (*vtep, entries),
        }
    }

    /// The runs in the order written.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (IpAddr, &[PortInfo])> {
        (0..self.runs.len()).map(|i| self.run(i))
    }
}

/// An extension's own failure, reported with its name by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ExtensionError(pub String);

impl ExtensionError {
    pub fn new(message: impl Into<String>) -> Self {
        ExtensionError(message.into())
    }
}

/// A source of FDB entries beyond Neutron's ports (RFE 1793653 `register_fdb_extend_func`).
///
/// Contract: what `extend_full_fdb` returns for a network must equal the sum of the
/// [`ExtensionChanges`] the extension handed to the engine for it; the engine then keeps every
/// host's table equal to its full FDB (the convergence invariant). Entries should not depend on
/// the target host: fanout updates reach every host alike.
pub trait FdbExtension: Any + Send {
    /// Appends this extension's entries for `request.network` to `out` (which may borrow them
    /// from the extension's state).
    fn extend_full_fdb<'a>(
        &'a self,
        request: &FullFdbRequest<'_>,
        out: &mut ExtensionEntries<'a>,
    ) -> Result<(), ExtensionError>;

    /// `network` was deleted: forget every entry the extension has on it. The engine has already
    /// dropped its mirror of them; nothing is sent (no host is on a network without ports).
    fn network_deleted(&mut self, network: NetworkId) {
        let _ = network;
    }

    /// The extension's state as bytes, for the server's snapshots ([`crate::Engine`]
    /// serializes itself with each extension's bytes). An extension without it cannot be
    /// snapshotted: its state lives only in the command log.
    fn save_state(&self) -> Result<Vec<u8>, ExtensionError> {
        Err(ExtensionError::new(
            "this extension does not save its state",
        ))
    }

    /// Replaces the extension's state with what [`FdbExtension::save_state`] returned.
    fn restore_state(&mut self, state: &[u8]) -> Result<(), ExtensionError> {
        let _ = state;
        Err(ExtensionError::new(
            "this extension does not restore its state",
        ))
    }
}

/// One extension's changes, in the order the engine applies them: removes, then adds.
/// An add of a MAC the extension has under another VTEP moves it (all its IPs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtensionChanges {
    pub removes: Vec<(NetworkId, IpAddr, PortInfo)>,
    pub adds: Vec<(NetworkId, IpAddr, PortInfo)>,
}

/// Something about an extension an operator should see: logged and counted by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// The extension returned an error; its entries are missing from this full FDB.
    ExtensionFailed {
        extension: String,
        network: NetworkId,
        host: Host,
        error: String,
    },
    /// The extension panicked; its entries are missing from this full FDB (`host` is the
    /// host it was built for; `None` when it panicked on a network deletion).
    ExtensionPanicked {
        extension: String,
        network: NetworkId,
        host: Option<Host>,
        message: String,
    },
    /// An entry whose MAC belongs to a native port of the network: the port wins.
    CollidesWithPort {
        extension: String,
        network: NetworkId,
        vtep: IpAddr,
        mac: l2pop_model::Mac,
        port: l2pop_model::PortId,
    },
    /// The extension panicked while it updated its state: none of the update was applied, and
    /// the extension is quarantined (its state may be half-updated): its later updates are
    /// refused and full FDBs carry what it had announced before.
    ExtensionUpdatePanicked { extension: String, message: String },
    /// An entry whose IP a native port of the network holds under another MAC: the port wins
    /// (OVS keys its ARP responder by network and IP).
    CollidesWithPortIp {
        extension: String,
        network: NetworkId,
        vtep: IpAddr,
        mac: l2pop_model::Mac,
        ip: IpAddr,
        port: l2pop_model::PortId,
    },
    /// An entry whose MAC another extension, registered earlier, already has on the network.
    CollidesWithExtension {
        extension: String,
        network: NetworkId,
        vtep: IpAddr,
        mac: l2pop_model::Mac,
        winner: String,
    },
    /// An entry that is not a valid FDB entry, dropped.
    InvalidEntry {
        extension: String,
        network: NetworkId,
        vtep: IpAddr,
        entry: PortInfo,
        reason: String,
    },
    /// Changes for a network the engine does not know, dropped.
    UnknownNetwork {
        extension: String,
        network: NetworkId,
    },
}

/// Per-extension counters, exported as metrics by the server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExtensionStats {
    pub builds: u64,
    pub failures: u64,
    pub panics: u64,
    pub dropped_entries: u64,
    /// Set by a panic in an update; see [`Report::ExtensionUpdatePanicked`].
    pub quarantined: bool,
}

pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) extension: Box<dyn FdbExtension>,
    builds: Cell<u64>,
    failures: Cell<u64>,
    panics: Cell<u64>,
    dropped: Cell<u64>,
    /// A panic in an update left the extension's state unknown: it is no longer called.
    pub(crate) quarantined: bool,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("name", &self.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Slot {
    pub(crate) fn stats(&self) -> ExtensionStats {
        ExtensionStats {
            builds: self.builds.get(),
            failures: self.failures.get(),
            panics: self.panics.get(),
            dropped_entries: self.dropped.get(),
            quarantined: self.quarantined,
        }
    }

    /// Runs an update of the extension's state, isolating a panic like a build does; a panic
    /// quarantines the extension (the caller applies nothing of the update).
    pub(crate) fn update<T>(
        &mut self,
        update: impl FnOnce(&mut dyn Any) -> T,
    ) -> Result<T, String> {
        let extension: &mut dyn Any = &mut *self.extension;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| update(extension))) {
            Ok(value) => Ok(value),
            Err(panic) => {
                self.panics.set(self.panics.get() + 1);
                self.quarantined = true;
                Err(panic_message(panic.as_ref()))
            }
        }
    }

    pub(crate) fn count_dropped(&self) {
        self.dropped.set(self.dropped.get() + 1);
    }

    /// Tells the extension a network is gone, isolating a panic like a build does.
    pub(crate) fn network_deleted(&mut self, network: NetworkId, reports: &mut Vec<Report>) {
        if self.quarantined {
            return;
        }
        let extension = &mut self.extension;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            extension.network_deleted(network)
        }));
        if let Err(panic) = outcome {
            self.panics.set(self.panics.get() + 1);
            reports.push(Report::ExtensionPanicked {
                extension: self.name.clone(),
                network,
                host: None,
                message: panic_message(panic.as_ref()),
            });
        }
    }

    /// Runs the extension for one full FDB, isolating errors and panics.
    pub(crate) fn run(
        &self,
        request: &FullFdbRequest<'_>,
        reports: &mut Vec<Report>,
    ) -> ExtensionEntries<'_> {
        self.builds.set(self.builds.get() + 1);
        let mut out = ExtensionEntries::default();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.extension.extend_full_fdb(request, &mut out)
        }));
        match outcome {
            Ok(Ok(())) => out,
            Ok(Err(error)) => {
                self.failures.set(self.failures.get() + 1);
                reports.push(Report::ExtensionFailed {
                    extension: self.name.clone(),
                    network: request.network.id,
                    host: request.host.clone(),
                    error: error.0,
                });
                ExtensionEntries::default()
            }
            Err(panic) => {
                self.panics.set(self.panics.get() + 1);
                reports.push(Report::ExtensionPanicked {
                    extension: self.name.clone(),
                    network: request.network.id,
                    host: Some(request.host.clone()),
                    message: panic_message(panic.as_ref()),
                });
                ExtensionEntries::default()
            }
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// The registered extensions, in registration order (index = priority for MAC conflicts).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) slots: Vec<Slot>,
}

impl Registry {
    pub(crate) fn register(
        &mut self,
        name: &str,
        extension: Box<dyn FdbExtension>,
    ) -> Result<(), RegistryError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(RegistryError::InvalidName(name.to_owned()));
        }
        if self.index(name).is_some() {
            return Err(RegistryError::DuplicateName(name.to_owned()));
        }
        self.slots.push(Slot {
            name: name.to_owned(),
            extension,
            builds: Cell::new(0),
            failures: Cell::new(0),
            panics: Cell::new(0),
            dropped: Cell::new(0),
            quarantined: false,
        });
        Ok(())
    }

    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }
}

/// Where an extension has a MAC on a network: one VTEP, one or more IPs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MacClaim {
    pub(crate) vtep: IpAddr,
    pub(crate) ips: BTreeSet<IpAddr>,
}

/// What the extensions announced on one network (the engine's mirror of their updates).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ExtensionClaims {
    /// VTEP → extensions that flood to it.
    pub(crate) flood: BTreeMap<IpAddr, BTreeSet<usize>>,
    /// MAC → extension index → its claim; the lowest index wins the MAC.
    pub(crate) macs: HashMap<Mac, BTreeMap<usize, MacClaim>>,
    /// IP → the MACs claimed with it, to find the entries a port's IP hides or frees.
    pub(crate) ips: HashMap<IpAddr, BTreeSet<Mac>>,
    /// (extension index, VTEP) → the unicast entries of the visible claims (what hosts were
    /// told), sorted: a full FDB merges an extension's sorted output against them instead of
    /// looking every entry up in the network's port indexes.
    visible: BTreeMap<(usize, IpAddr), SortedVec<PortInfo>>,
}

impl ExtensionClaims {
    /// Whether any extension has an entry under `vtep` (a scan: for rare events).
    pub(crate) fn has_vtep(&self, vtep: IpAddr) -> bool {
        self.flood.contains_key(&vtep)
            || self
                .macs
                .values()
                .any(|claims| claims.values().any(|c| c.vtep == vtep))
    }

    /// The visible unicast entries extension `index` has under `vtep`, sorted.
    pub(crate) fn visible(&self, index: usize, vtep: IpAddr) -> &[PortInfo] {
        self.visible
            .get(&(index, vtep))
            .map_or(&[], |entries| entries)
    }

    /// Records that the visible claim of `mac` went from `before` to `after`.
    pub(crate) fn set_visible(
        &mut self,
        mac: Mac,
        before: Option<&(usize, MacClaim)>,
        after: Option<&(usize, MacClaim)>,
    ) {
        if before == after {
            return;
        }
        if let Some((index, claim)) = before {
            let key = (*index, claim.vtep);
            if let Some(entries) = self.visible.get_mut(&key) {
                for ip in &claim.ips {
                    entries.remove(&PortInfo::new(mac, *ip));
                }
                if entries.is_empty() {
                    self.visible.remove(&key);
                }
            }
        }
        if let Some((index, claim)) = after {
            let entries = self.visible.entry((*index, claim.vtep)).or_default();
            for ip in &claim.ips {
                entries.insert(PortInfo::new(mac, *ip));
            }
        }
    }

    /// The claim that is visible for `mac` (ignoring native ports), with its extension index.
    pub(crate) fn winner(&self, mac: &Mac) -> Option<(usize, &MacClaim)> {
        self.macs
            .get(mac)
            .and_then(|claims| claims.iter().next())
            .map(|(i, c)| (*i, c))
    }
}
