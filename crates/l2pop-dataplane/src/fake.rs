//! [`FakeKernel`]: an in-memory kernel with the semantics the planner relies on, for the agent's
//! unit tests, plus fault injection.
//!
//! Semantics mirrored from Linux (`rtnetlink.c`, `vxlan_core.c`, `neighbour.c`):
//! - creating a link whose name exists, or a VXLAN device whose VNI and port another VXLAN device
//!   uses, fails with `EEXIST`; names longer than 15 bytes with `EINVAL`;
//! - an op on a missing link fails with `ENODEV`; deleting a missing FDB or neighbour entry with
//!   `ENOENT`; a master that is not a bridge with `EOPNOTSUPP`;
//! - a deleted link takes its FDB and neighbour entries with it and releases its slaves;
//! - `NLM_F_APPEND` adds remotes only to the all-zero and multicast MACs (a no-op on a unicast
//!   MAC that has one); `NLM_F_REPLACE` moves a unicast MAC's remote and is refused
//!   (`EOPNOTSUPP`) on an existing all-zero or multicast entry.
//!
//! Faults: fail the Nth op, or every op matching a predicate, with a chosen errno; fail the next
//! observation; and change state behind the agent's back (delete a link, add or remove entries).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use l2pop_model::Mac;

use crate::error::{EEXIST, EINVAL, ENODEV, ENOENT, EOPNOTSUPP, KernelError, ObserveError};
use crate::names::MAX_NAME_LEN;
use crate::state::{Link, LinkKind, Observed, has_mac, mac_range, multi_remote};
use crate::{Dataplane, Op};

type Predicate = Box<dyn Fn(&Op) -> bool + Send + Sync>;

enum Trigger {
    /// The op with this 1-based sequence number (counted over all executed ops).
    Nth(u64),
    Matching(Predicate),
}

struct Fault {
    trigger: Trigger,
    errno: i32,
}

/// An in-memory network namespace. It holds FDB and neighbour entries on any link, but
/// [`FakeKernel::observe`] reports, like the netlink observer, only those on VXLAN devices.
#[derive(Default)]
pub struct FakeKernel {
    state: Observed,
    next_index: u32,
    executed: u64,
    journal: Vec<Op>,
    faults: Vec<Fault>,
    fail_observe: Option<i32>,
}

impl fmt::Debug for FakeKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKernel")
            .field("links", &self.state.links.len())
            .field("entries", &self.state.entry_count())
            .field("executed", &self.executed)
            .field("faults", &self.faults.len())
            .finish()
    }
}

impl FakeKernel {
    /// An empty namespace (only `lo`, index 1).
    pub fn new() -> Self {
        let mut kernel = FakeKernel {
            next_index: 1,
            ..FakeKernel::default()
        };
        kernel.add_link("lo", LinkKind::Other(String::new()));
        if let Some(lo) = kernel.state.links.get_mut("lo") {
            lo.up = true;
        }
        kernel
    }

    /// The kernel state as a dump would report it.
    pub fn observe(&self) -> Observed {
        let vxlan = |dev: &String| self.state.links.get(dev).is_some_and(|l| l.kind.is_vxlan());
        Observed {
            links: self.state.links.clone(),
            fdb: self
                .state
                .fdb
                .iter()
                .filter(|(d, e)| vxlan(d) && !e.is_empty())
                .map(|(d, e)| (d.clone(), e.clone()))
                .collect(),
            neighbours: self
                .state
                .neighbours
                .iter()
                .filter(|(d, e)| vxlan(d) && !e.is_empty())
                .map(|(d, e)| (d.clone(), e.clone()))
                .collect(),
        }
    }

    /// Every op that succeeded, in order.
    pub fn journal(&self) -> &[Op] {
        &self.journal
    }

    /// How many ops were attempted (the sequence number of the last one).
    pub fn executed(&self) -> u64 {
        self.executed
    }

    /// Executes one op with the kernel's semantics, or the injected fault.
    pub fn execute(&mut self, op: &Op) -> Result<(), KernelError> {
        self.executed += 1;
        let seq = self.executed;
        if let Some(i) = self.faults.iter().position(|f| match &f.trigger {
            Trigger::Nth(n) => *n == seq,
            Trigger::Matching(p) => p(op),
        }) {
            let errno = self.faults[i].errno;
            if matches!(self.faults[i].trigger, Trigger::Nth(_)) {
                self.faults.remove(i);
            }
            return Err(KernelError::new(op, errno));
        }
        self.check(op)
            .map_err(|errno| KernelError::new(op, errno))?;
        self.state.apply(op);
        if let Op::CreateBridge { name } | Op::CreateVxlan { name, .. } = op
            && let Some(link) = self.state.links.get_mut(name)
        {
            link.index = self.next_index;
            self.next_index += 1;
        }
        self.journal.push(op.clone());
        Ok(())
    }

    /// Executes ops in order; one result per op. A failure does not stop the rest, as with
    /// pipelined netlink requests.
    pub fn execute_all(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        ops.iter().map(|op| self.execute(op)).collect()
    }

    /// The errno the kernel would answer `op` with, if any.
    fn check(&self, op: &Op) -> Result<(), i32> {
        let links = &self.state.links;
        let exists = |name: &str| {
            if links.contains_key(name) {
                Ok(())
            } else {
                Err(ENODEV)
            }
        };
        match op {
            Op::CreateBridge { name } | Op::CreateVxlan { name, .. }
                if name.is_empty() || name.len() > MAX_NAME_LEN =>
            {
                Err(EINVAL)
            }
            Op::CreateBridge { name } | Op::CreateVxlan { name, .. }
                if links.contains_key(name) =>
            {
                Err(EEXIST)
            }
            Op::CreateVxlan { vni, dst_port, .. } => {
                let clash = links.values().any(|l| {
                    matches!(l.kind, LinkKind::Vxlan { vni: v, port: p, .. } if v == *vni && p == *dst_port)
                });
                if clash { Err(EEXIST) } else { Ok(()) }
            }
            Op::CreateBridge { .. } => Ok(()),
            Op::DeleteLink { name } | Op::SetUp { link: name } => exists(name),
            Op::SetMaster { link, master } => {
                exists(link)?;
                match links.get(master) {
                    None => Err(ENODEV),
                    Some(m) if m.kind != LinkKind::Bridge || link == master => Err(EOPNOTSUPP),
                    Some(_) => Ok(()),
                }
            }
            Op::FdbAppend { dev, .. } => exists(dev),
            Op::FdbReplace { dev, mac, .. } => {
                exists(dev)?;
                let entries = self.state.fdb.get(dev);
                if multi_remote(*mac) && entries.is_some_and(|e| has_mac(e, *mac)) {
                    Err(EOPNOTSUPP)
                } else {
                    Ok(())
                }
            }
            Op::FdbDel { dev, mac, dst } => {
                exists(dev)?;
                let found = self
                    .state
                    .fdb
                    .get(dev)
                    .is_some_and(|e| e.contains(&(*mac, *dst)));
                if found { Ok(()) } else { Err(ENOENT) }
            }
            Op::NeighReplace { dev, .. } => exists(dev),
            Op::NeighDel { dev, ip } => {
                exists(dev)?;
                let found = self
                    .state
                    .neighbours
                    .get(dev)
                    .is_some_and(|e| e.contains_key(ip));
                if found { Ok(()) } else { Err(ENOENT) }
            }
        }
    }

    /// Makes the op with 1-based sequence number `n` (see [`FakeKernel::executed`]) fail once.
    pub fn fail_nth(&mut self, n: u64, errno: i32) {
        self.faults.push(Fault {
            trigger: Trigger::Nth(n),
            errno,
        });
    }

    /// Makes every op matching `predicate` fail until [`FakeKernel::clear_faults`].
    pub fn fail_matching(
        &mut self,
        predicate: impl Fn(&Op) -> bool + Send + Sync + 'static,
        errno: i32,
    ) {
        self.faults.push(Fault {
            trigger: Trigger::Matching(Box::new(predicate)),
            errno,
        });
    }

    /// Makes the next [`Dataplane::observe`] fail.
    pub fn fail_next_observe(&mut self, errno: i32) {
        self.fail_observe = Some(errno);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.fail_observe = None;
    }

    /// Behind the agent's back: `ip link add NAME type KIND` (any kind; no checks).
    pub fn add_link(&mut self, name: &str, kind: LinkKind) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        self.state.remove_link(name);
        self.state
            .links
            .insert(name.to_owned(), Link::new(index, kind));
        index
    }

    /// Behind the agent's back: mutate a link (set a master, bring it down, ...).
    pub fn link_mut(&mut self, name: &str) -> Option<&mut Link> {
        self.state.links.get_mut(name)
    }

    /// Behind the agent's back: `ip link del NAME`. Returns whether it existed.
    pub fn delete_link(&mut self, name: &str) -> bool {
        let existed = self.state.links.contains_key(name);
        self.state.remove_link(name);
        existed
    }

    /// Behind the agent's back: `bridge fdb append MAC dev DEV dst DST self` on any link.
    pub fn add_fdb(&mut self, dev: &str, mac: Mac, dst: IpAddr) {
        self.state
            .fdb
            .entry(dev.to_owned())
            .or_default()
            .insert((mac, dst));
    }

    /// Behind the agent's back: `bridge fdb del`. Returns whether it existed.
    pub fn remove_fdb(&mut self, dev: &str, mac: Mac, dst: IpAddr) -> bool {
        self.state
            .fdb
            .get_mut(dev)
            .is_some_and(|e| e.remove(&(mac, dst)))
    }

    /// Behind the agent's back: `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
    pub fn add_neighbour(&mut self, dev: &str, ip: IpAddr, mac: Mac) {
        self.state
            .neighbours
            .entry(dev.to_owned())
            .or_default()
            .insert(ip, mac);
    }

    /// Behind the agent's back: `ip neigh del`. Returns whether it existed.
    pub fn remove_neighbour(&mut self, dev: &str, ip: IpAddr) -> bool {
        self.state
            .neighbours
            .get_mut(dev)
            .is_some_and(|e| e.remove(&ip).is_some())
    }

    /// Every FDB entry on `dev`, VXLAN or not (`bridge fdb show dev DEV`, our kind only).
    pub fn fdb_of(&self, dev: &str) -> Vec<(Mac, IpAddr)> {
        self.state
            .fdb
            .get(dev)
            .map(|e| e.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The remotes of one MAC on `dev`.
    pub fn remotes(&self, dev: &str, mac: Mac) -> Vec<IpAddr> {
        self.state
            .fdb
            .get(dev)
            .map(|e| e.range(mac_range(mac)).map(|&(_, ip)| ip).collect())
            .unwrap_or_default()
    }

    /// Neighbour entries on `dev`.
    pub fn neighbours_of(&self, dev: &str) -> BTreeMap<IpAddr, Mac> {
        self.state.neighbours.get(dev).cloned().unwrap_or_default()
    }
}

impl Dataplane for FakeKernel {
    async fn observe(&mut self) -> Result<Observed, ObserveError> {
        match self.fail_observe.take() {
            Some(errno) => Err(ObserveError::Injected(errno)),
            None => Ok(FakeKernel::observe(self)),
        }
    }

    async fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        self.execute_all(ops)
    }
}
