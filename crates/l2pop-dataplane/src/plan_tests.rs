//! Unit tests of `plan`: from empty, idempotence (also as a property over the fake kernel),
//! moved MACs, wrong VXLAN attributes, foreign state, taps, restricted plans.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use l2pop_model::Mac;
use proptest::prelude::*;

use crate::{
    Desired, DesiredNetwork, FakeKernel, Link, LinkKind, Observed, Op, plan, plan_networks,
};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn mac(last: u8) -> Mac {
    Mac::new([0xfa, 0x16, 0x3e, 0, 0, last])
}

fn network(vni: u32) -> DesiredNetwork {
    let mut net = DesiredNetwork::new(vni, format!("brqnet{vni}"), ip(1));
    net.flood.extend([ip(2), ip(3)]);
    net.unicast.insert(mac(1), ip(2));
    net.unicast.insert(mac(2), ip(3));
    net.neighbours
        .insert(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), mac(1));
    net.neighbours.insert(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        mac(2),
    );
    net
}

fn desired(nets: impl IntoIterator<Item = DesiredNetwork>) -> Desired {
    let mut d = Desired::default();
    for net in nets {
        d.insert(net);
    }
    d
}

/// Applies ops to the observation and fails on any op the fake kernel refuses.
fn converge(desired: &Desired, kernel: &mut FakeKernel) -> Vec<Op> {
    let ops = plan(desired, &kernel.observe());
    for (op, result) in ops.iter().zip(kernel.execute_all(&ops)) {
        result.unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    ops
}

#[test]
fn from_empty_in_phase_order() {
    let d = desired([network(100)]);
    let ops = plan(&d, &Observed::default());
    let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "ip link add brqnet100 type bridge",
            "ip link add vxlan-100 type vxlan id 100 local 192.0.2.1 dstport 4789 nolearning proxy",
            "ip link set vxlan-100 master brqnet100",
            "ip link set brqnet100 up",
            "ip link set vxlan-100 up",
            "bridge fdb append 00:00:00:00:00:00 dev vxlan-100 dst 192.0.2.2 self permanent",
            "bridge fdb append 00:00:00:00:00:00 dev vxlan-100 dst 192.0.2.3 self permanent",
            "bridge fdb replace fa:16:3e:00:00:01 dev vxlan-100 dst 192.0.2.2 self permanent",
            "bridge fdb replace fa:16:3e:00:00:02 dev vxlan-100 dst 192.0.2.3 self permanent",
            "ip neigh replace 10.0.0.1 lladdr fa:16:3e:00:00:01 dev vxlan-100 nud permanent",
            "ip neigh replace fd00::1 lladdr fa:16:3e:00:00:02 dev vxlan-100 nud permanent",
        ]
    );
}

#[test]
fn idempotent_after_apply() {
    let d = desired([network(100), network(200)]);
    let mut observed = Observed::default();
    for op in plan(&d, &observed) {
        observed.apply(&op);
    }
    assert_eq!(plan(&d, &observed), []);
    let mut kernel = FakeKernel::new();
    converge(&d, &mut kernel);
    assert_eq!(plan(&d, &kernel.observe()), []);
}

#[test]
fn moved_mac_is_one_replace() {
    let mut d = desired([network(100)]);
    let mut kernel = FakeKernel::new();
    converge(&d, &mut kernel);
    d.networks
        .get_mut(&100)
        .unwrap()
        .unicast
        .insert(mac(1), ip(9));
    let ops = converge(&d, &mut kernel);
    assert_eq!(
        ops,
        [Op::FdbReplace {
            dev: "vxlan-100".into(),
            mac: mac(1),
            dst: ip(9)
        }]
    );
    assert_eq!(kernel.remotes("vxlan-100", mac(1)), [ip(9)]);
    assert_eq!(plan(&d, &kernel.observe()), []);
}

#[test]
fn removed_entries_are_deleted_after_adds() {
    let mut d = desired([network(100)]);
    let mut kernel = FakeKernel::new();
    converge(&d, &mut kernel);
    let net = d.networks.get_mut(&100).unwrap();
    net.flood.remove(&ip(3));
    net.flood.insert(ip(4));
    net.unicast.remove(&mac(2));
    net.neighbours.clear();
    let ops: Vec<String> = converge(&d, &mut kernel)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        ops,
        [
            "bridge fdb append 00:00:00:00:00:00 dev vxlan-100 dst 192.0.2.4 self permanent",
            "bridge fdb del 00:00:00:00:00:00 dev vxlan-100 dst 192.0.2.3 self",
            "bridge fdb del fa:16:3e:00:00:02 dev vxlan-100 dst 192.0.2.3 self",
            "ip neigh del 10.0.0.1 dev vxlan-100",
            "ip neigh del fd00::1 dev vxlan-100",
        ]
    );
}

#[test]
fn wrong_vxlan_attributes_recreate_the_device_and_its_entries() {
    let d = desired([network(100)]);
    let mut kernel = FakeKernel::new();
    converge(&d, &mut kernel);
    for wrong in [
        LinkKind::Vxlan {
            vni: 100,
            local: Some(ip(1)),
            port: 4789,
            learning: true,
            proxy: true,
        },
        LinkKind::Vxlan {
            vni: 100,
            local: Some(ip(7)),
            port: 4789,
            learning: false,
            proxy: true,
        },
        LinkKind::Vxlan {
            vni: 100,
            local: Some(ip(1)),
            port: 8472,
            learning: false,
            proxy: false,
        },
        LinkKind::Bridge,
    ] {
        kernel.add_link("vxlan-100", wrong);
        let ops = converge(&d, &mut kernel);
        assert_eq!(
            ops[0],
            Op::DeleteLink {
                name: "vxlan-100".into()
            }
        );
        assert!(matches!(ops[1], Op::CreateVxlan { vni: 100, .. }));
        assert_eq!(
            ops.iter()
                .filter(|op| matches!(op, Op::FdbAppend { .. } | Op::FdbReplace { .. }))
                .count(),
            4
        );
        assert_eq!(plan(&d, &kernel.observe()), []);
    }
}

#[test]
fn foreign_links_and_entries_untouched() {
    let mut kernel = FakeKernel::new();
    kernel.add_link("eth0", LinkKind::Other("veth".into()));
    kernel.add_link("br-foreign", LinkKind::Bridge);
    kernel.add_fdb("br-foreign", mac(7), ip(7));
    kernel.add_link("vxlan-foo", LinkKind::agent_vxlan(5, ip(1), 4789));
    kernel.add_fdb("vxlan-foo", Mac::ZERO, ip(8));
    kernel.add_neighbour("vxlan-foo", ip(200), mac(8));
    kernel.add_link("tapunlisted", LinkKind::Other("tun".into()));
    let d = desired([network(100)]);
    let ops = converge(&d, &mut kernel);
    for op in &ops {
        assert!(
            ["brqnet100", "vxlan-100"].contains(&op.dev()),
            "touched {op}"
        );
    }
    assert_eq!(kernel.fdb_of("br-foreign"), [(mac(7), ip(7))]);
    assert_eq!(kernel.fdb_of("vxlan-foo"), [(Mac::ZERO, ip(8))]);
    assert_eq!(kernel.link_mut("tapunlisted").unwrap().master, None);
    // Removing every network deletes only owned links.
    let ops = converge(&Desired::default(), &mut kernel);
    assert_eq!(
        ops,
        [
            Op::DeleteLink {
                name: "brqnet100".into()
            },
            Op::DeleteLink {
                name: "vxlan-100".into()
            }
        ]
    );
    assert!(kernel.link_mut("vxlan-foo").is_some() && kernel.link_mut("br-foreign").is_some());
}

#[test]
fn stale_owned_links_are_deleted_last() {
    let mut kernel = FakeKernel::new();
    converge(&desired([network(100), network(200)]), &mut kernel);
    kernel.add_link("brqorphan", LinkKind::Bridge);
    let d = desired([network(100)]);
    let ops = converge(&d, &mut kernel);
    assert_eq!(
        ops,
        ["brqnet200", "brqorphan", "vxlan-200"].map(|name| Op::DeleteLink { name: name.into() })
    );
    // The restricted path finds the VNI's device and its bridge by name.
    converge(&desired([network(100), network(200)]), &mut kernel);
    let vnis = BTreeSet::from([200]);
    let ops = plan_networks(&d, &kernel.observe(), &vnis);
    assert_eq!(
        ops,
        ["brqnet200", "vxlan-200"].map(|name| Op::DeleteLink { name: name.into() })
    );
}

#[test]
fn tap_is_enslaved_only_when_listed_and_present() {
    let mut kernel = FakeKernel::new();
    kernel.add_link("tapaaaaaaaa-aa", LinkKind::Other("tun".into()));
    let mut net = network(100);
    net.ports.insert("tapaaaaaaaa-aa".into());
    net.ports.insert("tapmissing".into());
    let d = desired([net]);
    let ops = converge(&d, &mut kernel);
    assert!(ops.contains(&Op::SetMaster {
        link: "tapaaaaaaaa-aa".into(),
        master: "brqnet100".into()
    }));
    assert!(ops.contains(&Op::SetUp {
        link: "tapaaaaaaaa-aa".into()
    }));
    assert!(!ops.iter().any(|op| op.dev() == "tapmissing"));
    let tap = kernel.link_mut("tapaaaaaaaa-aa").unwrap();
    assert_eq!((tap.master.as_deref(), tap.up), (Some("brqnet100"), true));
    // Released behind our back: re-enslaved.
    tap.master = None;
    assert_eq!(
        converge(&d, &mut kernel),
        [Op::SetMaster {
            link: "tapaaaaaaaa-aa".into(),
            master: "brqnet100".into()
        }]
    );
}

#[test]
fn deleted_bridge_is_recreated_and_slaves_reattached() {
    let d = desired([network(100)]);
    let mut kernel = FakeKernel::new();
    converge(&d, &mut kernel);
    kernel.delete_link("brqnet100");
    let ops = converge(&d, &mut kernel);
    assert_eq!(
        ops,
        [
            Op::CreateBridge {
                name: "brqnet100".into()
            },
            Op::SetMaster {
                link: "vxlan-100".into(),
                master: "brqnet100".into()
            },
            Op::SetUp {
                link: "brqnet100".into()
            },
        ]
    );
}

#[test]
fn restricted_plan_ignores_other_networks() {
    let d = desired([network(100), network(200)]);
    let observed = Observed::default();
    let only = plan_networks(&d, &observed, &BTreeSet::from([200]));
    assert!(only.iter().all(|op| op.dev().ends_with("200")), "{only:?}");
    let all = plan(&d, &observed);
    assert_eq!(only.len() * 2, all.len());
}

#[test]
fn observation_tracks_unicast_replace_of_a_doubled_mac() {
    // Not reachable in Linux (a unicast MAC has one remote), but an observation may say so.
    let mut observed = Observed::default();
    observed.links.insert(
        "vxlan-1".into(),
        Link::new(2, LinkKind::agent_vxlan(1, ip(1), 4789)),
    );
    observed
        .fdb
        .insert("vxlan-1".into(), [(mac(1), ip(2)), (mac(1), ip(3))].into());
    let mut net = DesiredNetwork::new(1, "brq1", ip(1));
    net.unicast.insert(mac(1), ip(4));
    let d = desired([net]);
    let ops = plan(&d, &observed);
    for op in &ops {
        observed.apply(op);
    }
    assert_eq!(observed.fdb["vxlan-1"], [(mac(1), ip(4))].into());
    assert_eq!(plan(&d, &observed), []);
}

fn arb_network() -> impl Strategy<Value = DesiredNetwork> {
    (
        1u32..6,
        0u8..3,
        prop::collection::btree_set(1u8..6, 0..4),
        prop::collection::btree_map(1u8..6, 1u8..6, 0..4),
        prop::collection::btree_map(1u8..6, 1u8..6, 0..3),
        any::<bool>(),
    )
        .prop_map(|(vni, local, flood, unicast, neigh, v6)| {
            let local = if v6 {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(local)))
            } else {
                ip(local)
            };
            let mut net = DesiredNetwork::new(vni, format!("brq{vni}"), local);
            net.flood = flood.into_iter().map(ip).collect();
            net.unicast = unicast.into_iter().map(|(m, d)| (mac(m), ip(d))).collect();
            net.neighbours = neigh
                .into_iter()
                .map(|(i, m)| (IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), mac(m)))
                .collect();
            net
        })
}

fn arb_desired() -> impl Strategy<Value = Desired> {
    prop::collection::vec(arb_network(), 0..4).prop_map(desired)
}

proptest! {
    /// From any state reached by another desired table plus random tampering, one plan
    /// executes without a kernel error and leaves nothing to plan.
    #[test]
    fn converges_in_one_round(before in arb_desired(), after in arb_desired(), tamper in prop::collection::vec((0u8..4, 1u32..6, 1u8..6), 0..4)) {
        let mut kernel = FakeKernel::new();
        converge(&before, &mut kernel);
        for (what, vni, n) in tamper {
            let dev = crate::vxlan_name(vni);
            match what {
                0 => { kernel.delete_link(&dev); }
                1 => { kernel.remove_fdb(&dev, Mac::ZERO, ip(n)); }
                2 => if kernel.link_mut(&dev).is_some() { kernel.add_fdb(&dev, mac(n), ip(n)); },
                _ => if kernel.link_mut(&dev).is_some() { kernel.add_neighbour(&dev, ip(n), mac(n)); },
            }
        }
        let mut observed = kernel.observe();
        let ops = plan(&after, &observed);
        for (op, result) in ops.iter().zip(kernel.execute_all(&ops)) {
            prop_assert!(result.is_ok(), "{op}: {result:?}");
            observed.apply(op);
        }
        prop_assert_eq!(plan(&after, &kernel.observe()), vec![]);
        prop_assert_eq!(plan(&after, &observed), vec![]);
    }
}
