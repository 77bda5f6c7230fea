//! Unit tests of `FakeKernel`: Linux's error semantics and the fault injection.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use l2pop_model::Mac;

use crate::error::{EEXIST, EINVAL, ENOBUFS, ENODEV, ENOENT, EOPNOTSUPP};
use crate::{Dataplane, FakeKernel, LinkKind, Op};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

const M1: Mac = Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1]);

fn vxlan(kernel: &mut FakeKernel) {
    let op = Op::CreateVxlan {
        name: "vxlan-1".into(),
        vni: 1,
        local: ip(1),
        dst_port: 4789,
    };
    kernel.execute(&op).unwrap();
}

fn errno(kernel: &mut FakeKernel, op: Op) -> i32 {
    kernel.execute(&op).unwrap_err().errno
}

#[test]
fn link_semantics() {
    let mut k = FakeKernel::new();
    vxlan(&mut k);
    assert_eq!(
        errno(
            &mut k,
            Op::CreateBridge {
                name: "vxlan-1".into()
            }
        ),
        EEXIST
    );
    let same_vni = Op::CreateVxlan {
        name: "vxlan-x".into(),
        vni: 1,
        local: ip(1),
        dst_port: 4789,
    };
    assert_eq!(errno(&mut k, same_vni), EEXIST);
    assert_eq!(
        errno(
            &mut k,
            Op::CreateBridge {
                name: "brq0123456789abc".into()
            }
        ),
        EINVAL
    );
    assert_eq!(
        errno(
            &mut k,
            Op::DeleteLink {
                name: "nope".into()
            }
        ),
        ENODEV
    );
    assert_eq!(
        errno(
            &mut k,
            Op::SetUp {
                link: "nope".into()
            }
        ),
        ENODEV
    );
    k.add_link("veth0", LinkKind::Other("veth".into()));
    assert_eq!(
        errno(
            &mut k,
            Op::SetMaster {
                link: "vxlan-1".into(),
                master: "veth0".into()
            }
        ),
        EOPNOTSUPP
    );
    k.execute(&Op::CreateBridge {
        name: "brq1".into(),
    })
    .unwrap();
    k.execute(&Op::SetMaster {
        link: "vxlan-1".into(),
        master: "brq1".into(),
    })
    .unwrap();
    let observed = k.observe();
    let link = &observed.links["vxlan-1"];
    assert_eq!(link.kind, LinkKind::agent_vxlan(1, ip(1), 4789));
    assert_eq!(link.master.as_deref(), Some("brq1"));
    assert_ne!(link.index, observed.links["brq1"].index);
    assert!(link.index > 1);
    // Deleting the bridge releases the slave.
    k.execute(&Op::DeleteLink {
        name: "brq1".into(),
    })
    .unwrap();
    assert_eq!(k.observe().links["vxlan-1"].master, None);
}

#[test]
fn fdb_semantics() {
    let mut k = FakeKernel::new();
    vxlan(&mut k);
    let dev = || "vxlan-1".to_owned();
    for dst in [ip(2), ip(3), ip(2)] {
        k.execute(&Op::FdbAppend {
            dev: dev(),
            mac: Mac::ZERO,
            dst,
        })
        .unwrap();
    }
    assert_eq!(k.remotes("vxlan-1", Mac::ZERO), [ip(2), ip(3)]);
    assert_eq!(
        errno(
            &mut k,
            Op::FdbReplace {
                dev: dev(),
                mac: Mac::ZERO,
                dst: ip(4)
            }
        ),
        EOPNOTSUPP
    );
    k.execute(&Op::FdbReplace {
        dev: dev(),
        mac: M1,
        dst: ip(2),
    })
    .unwrap();
    k.execute(&Op::FdbReplace {
        dev: dev(),
        mac: M1,
        dst: ip(3),
    })
    .unwrap();
    assert_eq!(k.remotes("vxlan-1", M1), [ip(3)]);
    // Append to a unicast MAC that has a remote: accepted, nothing changes.
    k.execute(&Op::FdbAppend {
        dev: dev(),
        mac: M1,
        dst: ip(4),
    })
    .unwrap();
    assert_eq!(k.remotes("vxlan-1", M1), [ip(3)]);
    assert_eq!(
        errno(
            &mut k,
            Op::FdbDel {
                dev: dev(),
                mac: M1,
                dst: ip(2)
            }
        ),
        ENOENT
    );
    assert_eq!(
        errno(
            &mut k,
            Op::FdbAppend {
                dev: "nope".into(),
                mac: M1,
                dst: ip(2)
            }
        ),
        ENODEV
    );
    k.execute(&Op::FdbDel {
        dev: dev(),
        mac: M1,
        dst: ip(3),
    })
    .unwrap();
    assert!(k.remotes("vxlan-1", M1).is_empty());
}

#[test]
fn neighbour_semantics_and_entries_vanish_with_link() {
    let mut k = FakeKernel::new();
    vxlan(&mut k);
    let ip10 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    k.execute(&Op::NeighReplace {
        dev: "vxlan-1".into(),
        ip: ip10,
        mac: M1,
    })
    .unwrap();
    k.execute(&Op::NeighReplace {
        dev: "vxlan-1".into(),
        ip: ip10,
        mac: M1,
    })
    .unwrap();
    assert_eq!(
        errno(
            &mut k,
            Op::NeighDel {
                dev: "vxlan-1".into(),
                ip: ip(9)
            }
        ),
        ENOENT
    );
    k.execute(&Op::FdbAppend {
        dev: "vxlan-1".into(),
        mac: Mac::ZERO,
        dst: ip(2),
    })
    .unwrap();
    assert_eq!(k.observe().entry_count(), 2);
    k.execute(&Op::DeleteLink {
        name: "vxlan-1".into(),
    })
    .unwrap();
    assert_eq!(k.observe().entry_count(), 0);
    vxlan(&mut k);
    assert!(k.neighbours_of("vxlan-1").is_empty());
}

#[test]
fn observe_reports_only_vxlan_entries() {
    let mut k = FakeKernel::new();
    k.add_link("br-foreign", LinkKind::Bridge);
    k.add_fdb("br-foreign", M1, ip(2));
    assert!(k.observe().fdb.is_empty());
    assert_eq!(k.fdb_of("br-foreign"), [(M1, ip(2))]);
}

#[test]
fn fault_injection() {
    let mut k = FakeKernel::new();
    k.fail_nth(2, ENOBUFS);
    let ops = [
        Op::CreateBridge {
            name: "brq1".into(),
        },
        Op::CreateBridge {
            name: "brq2".into(),
        },
        Op::CreateBridge {
            name: "brq3".into(),
        },
    ];
    let results = k.execute_all(&ops);
    assert!(results[0].is_ok() && results[2].is_ok());
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.errno, ENOBUFS);
    assert_eq!(
        err.to_string(),
        "kernel refused `ip link add brq2 type bridge`: no buffer space available (errno 105)"
    );
    assert!(k.link_mut("brq2").is_none());
    assert_eq!(k.journal(), [ops[0].clone(), ops[2].clone()]);
    // One-shot: the retry succeeds.
    k.execute(&ops[1]).unwrap();

    k.fail_matching(|op| matches!(op, Op::SetUp { .. }), EINVAL);
    for _ in 0..2 {
        assert_eq!(
            errno(
                &mut k,
                Op::SetUp {
                    link: "brq1".into()
                }
            ),
            EINVAL
        );
    }
    k.clear_faults();
    k.execute(&Op::SetUp {
        link: "brq1".into(),
    })
    .unwrap();

    // Behind the agent's back.
    assert!(k.delete_link("brq1"));
    assert!(!k.delete_link("brq1"));
}

#[test]
fn dataplane_trait_and_observe_fault() {
    let mut k = FakeKernel::new();
    k.fail_next_observe(ENOBUFS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(Dataplane::observe(&mut k).await.is_err());
        assert!(Dataplane::observe(&mut k).await.is_ok());
        let results = Dataplane::execute(&mut k, &[Op::SetUp { link: "lo".into() }]).await;
        assert!(results[0].is_ok());
    });
}
