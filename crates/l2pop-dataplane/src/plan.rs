//! `plan(desired, observed) -> Vec<Op>`: the pure diff that makes the kernel match the desired
//! table, touching only what the agent owns.
//!
//! Rules:
//! - links named `vxlan-<digits>` or `brq<...>` ([`crate::owns`]) and the FDB/neighbour entries
//!   on the VXLAN devices are the agent's; owned links not in the desired table are deleted;
//!   every other link and entry is left alone, and a tap is only enslaved when a network lists it;
//! - a VXLAN device whose VNI, local address, port, `learning` or `proxy` differ is deleted and
//!   recreated (its entries go with it and are re-added);
//! - a flood entry is an all-zero FDB *append*; a unicast MAC is an FDB *replace*, which the
//!   kernel applies to the MAC's only remote, so a moved MAC is one op and leaves no stale entry
//!   to delete;
//! - ops come out in phases: recreations' deletions, link creations, masters, ups, entry
//!   adds/replaces, entry deletions, link deletions; inside a phase in VNI and key order.
//!
//! Planning one network reads only that network's devices and entries (map lookups by name),
//! so its cost does not grow with the other networks on the host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use l2pop_model::Mac;

use crate::Op;
use crate::names::{owns, vni_of, vxlan_name};
use crate::state::{Desired, DesiredNetwork, LinkKind, Observed, multi_remote};

/// The ops that turn `observed` into `desired` for every network, and delete every owned link
/// the desired table does not name.
pub fn plan(desired: &Desired, observed: &Observed) -> Vec<Op> {
    let mut vnis: BTreeSet<u32> = desired.networks.keys().copied().collect();
    vnis.extend(observed.links.keys().filter_map(|name| vni_of(name)));
    let mut planner = Planner::new(desired, observed);
    for vni in vnis {
        planner.network(vni);
    }
    let wanted = wanted_names(desired);
    for name in observed.links.keys() {
        if owns(name) && !wanted.contains(name.as_str()) {
            planner.delete_links.insert(name.clone());
        }
    }
    planner.finish()
}

/// The ops for the networks in `vnis` only: the agent's path after a change to some networks.
/// A VNI absent from `desired` has its `vxlan-{vni}` device deleted, and that device's owned
/// bridge unless another network uses it.
pub fn plan_networks(desired: &Desired, observed: &Observed, vnis: &BTreeSet<u32>) -> Vec<Op> {
    let mut planner = Planner::new(desired, observed);
    for &vni in vnis {
        planner.network(vni);
    }
    planner.finish()
}

fn wanted_names(desired: &Desired) -> BTreeSet<&str> {
    desired
        .networks
        .values()
        .flat_map(|n| [n.bridge.as_str(), n.vxlan.as_str()])
        .collect()
}

#[derive(Default)]
struct Phases {
    recreate: Vec<Op>,
    create: Vec<Op>,
    master: Vec<Op>,
    up: Vec<Op>,
    add: Vec<Op>,
    del: Vec<Op>,
}

struct Planner<'a> {
    desired: &'a Desired,
    observed: &'a Observed,
    ops: Phases,
    /// Links deleted at the end; a set, as two networks may name the same stale bridge.
    delete_links: BTreeSet<String>,
    /// Links deleted (and recreated) at the start.
    recreated: BTreeSet<String>,
}

impl<'a> Planner<'a> {
    fn new(desired: &'a Desired, observed: &'a Observed) -> Self {
        Planner {
            desired,
            observed,
            ops: Phases::default(),
            delete_links: BTreeSet::new(),
            recreated: BTreeSet::new(),
        }
    }

    fn finish(self) -> Vec<Op> {
        let Phases {
            recreate,
            create,
            master,
            up,
            add,
            del,
        } = self.ops;
        let deletes = self
            .delete_links
            .into_iter()
            .filter(|name| !self.recreated.contains(name))
            .map(|name| Op::DeleteLink { name });
        recreate
            .into_iter()
            .chain(create)
            .chain(master)
            .chain(up)
            .chain(add)
            .chain(del)
            .chain(deletes)
            .collect()
    }

    /// Is `name` used by any desired network? Only asked for deletion candidates.
    fn wanted(&self, name: &str, hint: Option<&DesiredNetwork>) -> bool {
        if hint.is_some_and(|n| n.bridge == name || n.vxlan == name) {
            return true;
        }
        self.desired
            .networks
            .values()
            .any(|n| n.bridge == name || n.vxlan == name)
    }

    fn network(&mut self, vni: u32) {
        let hint = self.desired.networks.get(&vni);
        // The conventional device of this VNI, when it is no longer the network's device.
        let conventional = vxlan_name(vni);
        if let Some(link) = self.observed.links.get(&conventional)
            && owns(&conventional)
            && !self.wanted(&conventional, hint)
        {
            self.delete_links.insert(conventional.clone());
            if let Some(bridge) = &link.master
                && owns(bridge)
                && self
                    .observed
                    .links
                    .get(bridge)
                    .is_some_and(|b| b.kind == LinkKind::Bridge)
                && !self.wanted(bridge, hint)
            {
                self.delete_links.insert(bridge.clone());
            }
        }
        if let Some(net) = hint {
            self.desired_network(net);
        }
    }

    fn desired_network(&mut self, net: &DesiredNetwork) {
        let observed = self.observed;
        let bridge_fresh = match observed.links.get(&net.bridge) {
            Some(link) if link.kind == LinkKind::Bridge => {
                if !link.up && owns(&net.bridge) {
                    self.ops.up.push(Op::SetUp {
                        link: net.bridge.clone(),
                    });
                }
                false
            }
            Some(_) if !owns(&net.bridge) => false,
            existing => {
                if existing.is_some() {
                    self.recreate(&net.bridge);
                }
                self.ops.create.push(Op::CreateBridge {
                    name: net.bridge.clone(),
                });
                self.ops.up.push(Op::SetUp {
                    link: net.bridge.clone(),
                });
                true
            }
        };

        let want = LinkKind::agent_vxlan(net.vni, net.local_ip, net.dst_port);
        let vxlan_fresh = match observed.links.get(&net.vxlan) {
            Some(link) if link.kind == want || !owns(&net.vxlan) => {
                if bridge_fresh || link.master.as_deref() != Some(net.bridge.as_str()) {
                    self.set_master(&net.vxlan, &net.bridge);
                }
                if !link.up {
                    self.ops.up.push(Op::SetUp {
                        link: net.vxlan.clone(),
                    });
                }
                false
            }
            existing => {
                if existing.is_some() {
                    self.recreate(&net.vxlan);
                }
                self.ops.create.push(Op::CreateVxlan {
                    name: net.vxlan.clone(),
                    vni: net.vni,
                    local: net.local_ip,
                    dst_port: net.dst_port,
                });
                self.set_master(&net.vxlan, &net.bridge);
                self.ops.up.push(Op::SetUp {
                    link: net.vxlan.clone(),
                });
                true
            }
        };

        for port in &net.ports {
            if let Some(tap) = observed.links.get(port) {
                if bridge_fresh || tap.master.as_deref() != Some(net.bridge.as_str()) {
                    self.set_master(port, &net.bridge);
                }
                if !tap.up {
                    self.ops.up.push(Op::SetUp { link: port.clone() });
                }
            }
        }

        let empty_fdb = BTreeSet::new();
        let empty_neigh = BTreeMap::new();
        let (fdb, neighbours) = if vxlan_fresh {
            (&empty_fdb, &empty_neigh)
        } else {
            (
                observed.fdb.get(&net.vxlan).unwrap_or(&empty_fdb),
                observed.neighbours.get(&net.vxlan).unwrap_or(&empty_neigh),
            )
        };
        self.fdb(net, fdb);
        self.neighbours(net, neighbours);
    }

    fn recreate(&mut self, name: &str) {
        self.recreated.insert(name.to_owned());
        self.ops.recreate.push(Op::DeleteLink {
            name: name.to_owned(),
        });
    }

    fn set_master(&mut self, link: &str, master: &str) {
        self.ops.master.push(Op::SetMaster {
            link: link.to_owned(),
            master: master.to_owned(),
        });
    }

    fn fdb(&mut self, net: &DesiredNetwork, observed: &BTreeSet<(Mac, IpAddr)>) {
        let dev = &net.vxlan;
        for &dst in &net.flood {
            if !observed.contains(&(Mac::ZERO, dst)) {
                self.ops.add.push(Op::FdbAppend {
                    dev: dev.clone(),
                    mac: Mac::ZERO,
                    dst,
                });
            }
        }
        for (&mac, &dst) in &net.unicast {
            if observed.contains(&(mac, dst)) {
                continue;
            }
            let op = if multi_remote(mac) {
                Op::FdbAppend {
                    dev: dev.clone(),
                    mac,
                    dst,
                }
            } else {
                // Moves the MAC's single remote in place (`vxlan_fdb_replace`): no delete.
                Op::FdbReplace {
                    dev: dev.clone(),
                    mac,
                    dst,
                }
            };
            self.ops.add.push(op);
        }
        for &(mac, dst) in observed {
            let keep = if mac.is_zero() {
                net.flood.contains(&dst)
            } else if multi_remote(mac) {
                net.unicast.get(&mac) == Some(&dst)
            } else {
                match net.unicast.get(&mac) {
                    None => false,
                    // Our replace rewrites the remote; a second remote on a unicast MAC cannot
                    // exist in the kernel, and if an observation shows one it goes.
                    Some(&want) => {
                        want == dst
                            || !observed.contains(&(mac, want))
                                && first_remote(observed, mac) == Some(dst)
                    }
                }
            };
            if !keep {
                self.ops.del.push(Op::FdbDel {
                    dev: dev.clone(),
                    mac,
                    dst,
                });
            }
        }
    }

    fn neighbours(&mut self, net: &DesiredNetwork, observed: &BTreeMap<IpAddr, Mac>) {
        let dev = &net.vxlan;
        for (&ip, &mac) in &net.neighbours {
            if observed.get(&ip) != Some(&mac) {
                self.ops.add.push(Op::NeighReplace {
                    dev: dev.clone(),
                    ip,
                    mac,
                });
            }
        }
        for &ip in observed.keys() {
            if !net.neighbours.contains_key(&ip) {
                self.ops.del.push(Op::NeighDel {
                    dev: dev.clone(),
                    ip,
                });
            }
        }
    }
}

/// The remote a replace of `mac` rewrites, in this model: the lowest observed one.
fn first_remote(observed: &BTreeSet<(Mac, IpAddr)>, mac: Mac) -> Option<IpAddr> {
    observed
        .range(crate::state::mac_range(mac))
        .next()
        .map(|&(_, ip)| ip)
}
