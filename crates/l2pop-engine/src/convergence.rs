//! The convergence invariant as a reusable check (DESIGN.md): every host's table built from the
//! notifications that reached it, in order, equals the full FDB the engine would build for it now.
//!
//! [`Hosts`] plays the agents: it delivers fanouts to every host on the network and host casts to
//! their host, applying them with [`FdbTable`]'s rules, and drops a network's table when the host
//! leaves it. [`Hosts::divergence`] compares with the engine; [`Hosts::check_step`] is the whole
//! per-event check (numbering, refusals change nothing, no divergence). Property tests drive it
//! with random events; a server can run it as a self-check.

use std::collections::HashMap;

use l2pop_model::{FdbPayload, FdbTable, Host, NetworkId, NetworkTable, Notification, Target};

use crate::{DesiredTable, Engine};

/// Each host's table as the notifications built it.
#[derive(Debug, Default, Clone)]
pub struct Hosts {
    pub tables: HashMap<Host, FdbTable>,
    /// The last sequence number delivered.
    seq: u64,
}

/// Everything hosts can observe of an engine: every host's desired table. Equal before and after
/// a refused event.
pub fn observable(engine: &Engine) -> Vec<DesiredTable> {
    engine
        .hosts()
        .iter()
        .map(|h| engine.desired_table(h))
        .collect()
}

/// Where a host's table and its full FDB differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub host: Host,
    pub network: NetworkId,
    pub from_notifications: NetworkTable,
    pub full_fdb: NetworkTable,
}

fn network_of(payload: &FdbPayload) -> Option<NetworkId> {
    match payload {
        FdbPayload::Entries(e) => e.0.first().map(|(n, _)| *n),
        FdbPayload::ChgIp(c) => c.0.first().map(|(n, _)| *n),
    }
}

/// A native port wins an IP (OVS keys its ARP responder by network and IP): no full FDB may
/// carry an entry whose IP a port of the network holds under another MAC.
pub fn ip_taken_from_port(engine: &Engine) -> Option<String> {
    let mut holders: HashMap<
        (NetworkId, std::net::IpAddr),
        (l2pop_model::Mac, l2pop_model::PortId),
    > = HashMap::new();
    for port in engine.ports() {
        for ip in &port.fixed_ips {
            holders.insert((port.network_id, *ip), (port.mac, port.id));
        }
    }
    for host in engine.hosts() {
        for network in engine.networks_of(&host) {
            let full = engine.full_fdb(&host, network, None).ok()?;
            for (_, fdb) in &full.fdb_entries.0 {
                for (vtep, entries) in &fdb.ports {
                    for entry in entries {
                        if let Some((mac, port)) = holders.get(&(network, entry.ip))
                            && *mac != entry.mac
                        {
                            return Some(format!(
                                "host {host} network {network}: [{}, {}] under {vtep} takes the IP of port {port}",
                                entry.mac, entry.ip
                            ));
                        }
                    }
                }
            }
        }
    }
    None
}

impl Hosts {
    /// Hosts that start in sync with `engine` (nothing delivered yet, numbering continues from it).
    pub fn following(engine: &Engine) -> Self {
        Hosts {
            tables: HashMap::new(),
            seq: engine.seq(),
        }
    }

    /// The check after one event: `before` is [`observable`] before it. A refused event must
    /// have changed nothing; an accepted one's notifications must be numbered on without a gap,
    /// and are delivered. Then no host may diverge from its full FDB.
    pub fn check_step<E: std::fmt::Display>(
        &mut self,
        engine: &Engine,
        before: &[DesiredTable],
        result: &Result<Vec<Notification>, E>,
    ) -> Result<(), String> {
        match result {
            Err(error) => {
                if observable(engine) != before {
                    return Err(format!(
                        "the refused event ({error}) changed what hosts observe"
                    ));
                }
            }
            Ok(notifications) => {
                for n in notifications {
                    if n.seq != self.seq + 1 {
                        return Err(format!("sequence gap: {} after {}", n.seq, self.seq));
                    }
                    self.seq = n.seq;
                }
                self.receive(engine, notifications);
            }
        }
        if let Some(problem) = ip_taken_from_port(engine) {
            return Err(problem);
        }
        match self.divergence(engine) {
            None => Ok(()),
            Some(d) => Err(format!(
                "host {} network {} diverged\nfrom notifications {:?}\nfull FDB {:?}",
                d.host, d.network, d.from_notifications, d.full_fdb
            )),
        }
    }

    /// Forgets a host's tables (its agent restarted).
    pub fn forget(&mut self, host: &Host) {
        self.tables.remove(host);
    }

    /// Delivers one event's notifications, in order, with the engine in its state after the
    /// event: a fanout reaches every host on the network, a host cast its host.
    pub fn receive(&mut self, engine: &Engine, notifications: &[Notification]) {
        for n in notifications {
            let Some(network) = network_of(&n.fdb_entries) else {
                continue;
            };
            match &n.target {
                Target::Fanout => {
                    for host in engine.hosts() {
                        if engine.is_on(&host, network) {
                            let own = engine.vtep(&host);
                            let table = self.tables.entry(host).or_default();
                            table.apply(n.method, &n.fdb_entries, own, |_| true);
                        }
                    }
                }
                Target::Host(host) => {
                    let own = engine.vtep(host);
                    self.tables.entry(host.clone()).or_default().apply(
                        n.method,
                        &n.fdb_entries,
                        own,
                        |_| true,
                    );
                }
            }
        }
        // A host keeps a network's table only while it has ports on it, and ignores entries
        // under its own VTEP: also those it learned before its VTEP became that address (an
        // agent whose tunneling_ip changes to an extension's VTEP).
        for (host, table) in self.tables.iter_mut() {
            table
                .networks
                .retain(|network, _| engine.is_on(host, *network));
            if let Some(own) = engine.vtep(host) {
                for network in table.networks.values_mut() {
                    network.flood.remove(&own);
                    network.unicast.retain(|_, vtep| *vtep != own);
                }
            }
        }
    }

    /// The first (host, network) whose table differs from its full FDB, if any.
    pub fn divergence(&self, engine: &Engine) -> Option<Divergence> {
        for host in engine.hosts() {
            for network in engine.networks_of(&host) {
                let full = engine.full_fdb(&host, network, None).ok()?;
                let expected = FdbTable::from_full_fdb(&FdbPayload::Entries(full.fdb_entries))
                    .networks
                    .remove(&network)
                    .unwrap_or_default();
                let actual = self
                    .tables
                    .get(&host)
                    .and_then(|t| t.networks.get(&network))
                    .cloned()
                    .unwrap_or_default();
                if actual != expected {
                    return Some(Divergence {
                        host,
                        network,
                        from_notifications: actual,
                        full_fdb: expected,
                    });
                }
            }
        }
        None
    }
}
