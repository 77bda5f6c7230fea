#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::rib::{AdjRibIn, Mobility, Rd};

const PE1: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const PE2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12));
const PEER_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn rt(text: &str) -> RouteTarget {
    text.parse().unwrap()
}

fn path(next_hop: IpAddr) -> Path {
    Path {
        next_hop,
        route_targets: [rt("65000:100")].into(),
        encapsulations: [8].into(),
        vni: None,
        pmsi: None,
        mobility: None,
    }
}

fn imet(rd: u8, originator: IpAddr) -> RouteKey {
    RouteKey::Imet {
        rd: Rd([0, 1, 192, 0, 2, rd, 0, 2]),
        ethernet_tag: 0,
        originator,
    }
}

fn gateway_path(vtep: IpAddr) -> Path {
    Path {
        pmsi: Some(Pmsi {
            tunnel_type: Pmsi::INGRESS_REPLICATION,
            vni: 100,
            endpoint: Some(vtep),
        }),
        ..path(vtep)
    }
}

fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

fn mac_ip(rd: u8, m: &str, ip: Option<&str>) -> RouteKey {
    RouteKey::MacIp {
        rd: Rd([0, 1, 192, 0, 2, rd, 0, 2]),
        ethernet_tag: 0,
        mac: mac(m),
        ip: ip.map(|i| i.parse().unwrap()),
    }
}

fn device_path(vtep: IpAddr, seq: Option<u32>, sticky: bool) -> Path {
    Path {
        vni: Some(100),
        mobility: seq.map(|sequence| Mobility { sequence, sticky }),
        ..path(vtep)
    }
}

fn added(key: RouteKey, path: Path) -> RibChange {
    RibChange::Added { key, path }
}

fn removed(key: RouteKey, path: Path) -> RibChange {
    RibChange::Removed { key, path }
}

fn gw(vtep: IpAddr, withdrawn: bool) -> Learned {
    Learned::Gateway(GatewayRoute {
        vtep,
        route_targets: if withdrawn {
            vec![]
        } else {
            vec![rt("65000:100")]
        },
        vni: Some(100),
        withdrawn,
    })
}

fn dev(m: &str, ip: Option<&str>, vtep: IpAddr, seq: Option<u32>, withdrawn: bool) -> Learned {
    Learned::Device(DeviceRoute {
        mac: mac(m),
        ip: ip.map(|i| i.parse().unwrap()),
        vtep,
        route_targets: if withdrawn {
            vec![]
        } else {
            vec![rt("65000:100")]
        },
        vni: Some(100),
        seq,
        withdrawn,
    })
}

#[test]
fn type_3_becomes_a_gateway_at_the_pmsi_endpoint_and_type_2_a_device() {
    let mut importer = Importer::new(BTreeSet::new());
    let out = importer.apply(
        PEER_A,
        &[
            added(
                mac_ip(11, "02:00:00:00:01:01", Some("198.51.100.11")),
                device_path(PE1, None, false),
            ),
            added(
                mac_ip(11, "02:00:00:00:01:02", None),
                device_path(PE1, Some(3), false),
            ),
            // The PMSI endpoint wins over the originator address.
            added(imet(11, PE2), gateway_path(PE1)),
        ],
    );
    assert_eq!(
        out,
        vec![
            gw(PE1, false),
            dev("02:00:00:00:01:01", Some("198.51.100.11"), PE1, None, false),
            dev("02:00:00:00:01:02", None, PE1, Some(3), false),
        ]
    );
    // The serde shape is the one the server's learned-route endpoints take.
    let Learned::Device(device) = &out[2] else {
        panic!()
    };
    assert_eq!(
        serde_json::to_value(device).unwrap(),
        serde_json::json!({"mac": "02:00:00:00:01:02", "ip": null, "vtep": "192.0.2.11",
            "route_targets": ["65000:100"], "vni": 100, "seq": 3, "withdrawn": false})
    );
    assert_eq!(importer.reported(), (1, 2));
}

#[test]
fn type_3_without_pmsi_uses_the_originator_and_other_tunnel_types_are_skipped() {
    let mut importer = Importer::new(BTreeSet::new());
    let out = importer.apply(PEER_A, &[added(imet(11, PE1), path(PE1))]);
    assert_eq!(
        out,
        vec![Learned::Gateway(GatewayRoute {
            vtep: PE1,
            route_targets: vec![rt("65000:100")],
            vni: None,
            withdrawn: false
        })]
    );
    let pim = Path {
        pmsi: Some(Pmsi {
            tunnel_type: 3,
            vni: 100,
            endpoint: None,
        }),
        ..path(PE2)
    };
    assert_eq!(importer.apply(PEER_A, &[added(imet(12, PE2), pim)]), vec![]);
    assert_eq!(importer.skipped()[&Skip::NotIngressReplication], 1);
}

#[test]
fn route_targets_select_what_is_imported() {
    let mut importer = Importer::new([rt("65000:100")].into());
    let other = Path {
        route_targets: [rt("65000:200")].into(),
        ..device_path(PE1, None, false)
    };
    let none = Path {
        route_targets: BTreeSet::new(),
        ..device_path(PE1, None, false)
    };
    let mpls = Path {
        encapsulations: [10].into(),
        ..device_path(PE1, None, false)
    };
    let out = importer.apply(
        PEER_A,
        &[
            added(mac_ip(11, "02:00:00:00:00:01", None), other),
            added(mac_ip(11, "02:00:00:00:00:02", None), none),
            added(mac_ip(11, "02:00:00:00:00:03", None), mpls),
            added(
                mac_ip(11, "01:00:5e:00:00:01", None),
                device_path(PE1, None, false),
            ),
            added(
                mac_ip(11, "02:00:00:00:00:04", None),
                device_path(PE1, None, false),
            ),
        ],
    );
    assert_eq!(out, vec![dev("02:00:00:00:00:04", None, PE1, None, false)]);
    let skipped = importer.skipped();
    assert_eq!(skipped[&Skip::NotImported], 1);
    assert_eq!(skipped[&Skip::NoRouteTarget], 1);
    assert_eq!(skipped[&Skip::NotVxlan], 1);
    assert_eq!(skipped[&Skip::InvalidMac], 1);
}

#[test]
fn one_report_for_two_nlris_withdrawn_with_the_last() {
    let mut importer = Importer::new(BTreeSet::new());
    // Two RDs (or two peers) give the same gateway and device.
    let out = importer.apply(
        PEER_A,
        &[
            added(imet(11, PE1), gateway_path(PE1)),
            added(
                mac_ip(11, "02:00:00:00:01:01", None),
                device_path(PE1, None, false),
            ),
        ],
    );
    assert_eq!(out.len(), 2);
    let out = importer.apply(
        PEER_B,
        &[
            added(imet(11, PE1), gateway_path(PE1)),
            added(
                mac_ip(11, "02:00:00:00:01:01", None),
                device_path(PE1, None, false),
            ),
        ],
    );
    assert_eq!(out, vec![]);
    let out = importer.apply(
        PEER_A,
        &[
            removed(imet(11, PE1), gateway_path(PE1)),
            removed(
                mac_ip(11, "02:00:00:00:01:01", None),
                device_path(PE1, None, false),
            ),
        ],
    );
    assert_eq!(out, vec![]);
    let out = importer.apply(
        PEER_B,
        &[
            removed(imet(11, PE1), gateway_path(PE1)),
            removed(
                mac_ip(11, "02:00:00:00:01:01", None),
                device_path(PE1, None, false),
            ),
        ],
    );
    // Device withdrawals come before gateway withdrawals.
    assert_eq!(
        out,
        vec![
            dev("02:00:00:00:01:01", None, PE1, None, true),
            gw(PE1, true)
        ]
    );
    assert_eq!(importer.reported(), (0, 0));
}

#[test]
fn an_implicit_replace_with_a_new_next_hop_withdraws_the_old_identity_first() {
    let mut importer = Importer::new(BTreeSet::new());
    let key = mac_ip(11, "02:00:00:00:01:01", Some("198.51.100.11"));
    importer.apply(PEER_A, &[added(key, device_path(PE1, None, false))]);
    let out = importer.apply(
        PEER_A,
        &[RibChange::Replaced {
            key,
            old: device_path(PE1, None, false),
            new: device_path(PE2, Some(1), false),
        }],
    );
    assert_eq!(
        out,
        vec![
            dev("02:00:00:00:01:01", Some("198.51.100.11"), PE1, None, true),
            dev(
                "02:00:00:00:01:01",
                Some("198.51.100.11"),
                PE2,
                Some(1),
                false
            ),
        ]
    );
    // A new sequence at the same identity is re-reported (the server keeps the highest).
    let out = importer.apply(
        PEER_A,
        &[RibChange::Replaced {
            key,
            old: device_path(PE2, Some(1), false),
            new: device_path(PE2, Some(2), false),
        }],
    );
    assert_eq!(
        out,
        vec![dev(
            "02:00:00:00:01:01",
            Some("198.51.100.11"),
            PE2,
            Some(2),
            false
        )]
    );
}

#[test]
fn a_sticky_mac_does_not_move() {
    let mut importer = Importer::new(BTreeSet::new());
    let out = importer.apply(
        PEER_A,
        &[added(
            mac_ip(11, "02:00:00:00:01:01", None),
            device_path(PE1, Some(0), true),
        )],
    );
    assert_eq!(out, vec![dev("02:00:00:00:01:01", None, PE1, None, false)]);
    // Another PE claims it with a higher sequence: not reported while the sticky route is there.
    let other = mac_ip(12, "02:00:00:00:01:01", None);
    let out = importer.apply(PEER_A, &[added(other, device_path(PE2, Some(5), false))]);
    assert_eq!(out, vec![]);
    // The sticky route goes: the other one is reported.
    let out = importer.apply(
        PEER_A,
        &[removed(
            mac_ip(11, "02:00:00:00:01:01", None),
            device_path(PE1, Some(0), true),
        )],
    );
    assert_eq!(
        out,
        vec![
            dev("02:00:00:00:01:01", None, PE1, None, true),
            dev("02:00:00:00:01:01", None, PE2, Some(5), false),
        ]
    );
}

#[test]
fn a_session_loss_withdraws_everything_the_peer_alone_gave() {
    let mut importer = Importer::new(BTreeSet::new());
    let mut rib = AdjRibIn::default();
    let mut changes = Vec::new();
    rib.announce(imet(11, PE1), gateway_path(PE1), &mut changes);
    rib.announce(
        mac_ip(11, "02:00:00:00:01:01", None),
        device_path(PE1, None, false),
        &mut changes,
    );
    assert_eq!(importer.apply(PEER_A, &changes).len(), 2);
    let out = importer.apply(PEER_A, &rib.clear());
    assert_eq!(
        out,
        vec![
            dev("02:00:00:00:01:01", None, PE1, None, true),
            gw(PE1, true)
        ]
    );
}

#[test]
fn frr_updates_through_the_session_import_as_frr_advertised_them() {
    use crate::fsm::tests::{FRR_OPEN, FRR_UPDATES, hex};
    use crate::fsm::{Input, Output, Session, SessionConfig};
    use std::time::Duration;
    let mut session = Session::new(SessionConfig {
        local: crate::codec::LocalOpen {
            asn: 65000,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: 90,
            graceful_restart_time: 120,
        },
        peer_as: 65000,
        passive: true,
        connect_retry: Duration::from_secs(5),
        keepalive: None,
        advertises: false,
    });
    let now = Duration::ZERO;
    session.handle(now, Input::Start);
    session.handle(now, Input::TcpConnected);
    session.handle(now, Input::Received(&hex(FRR_OPEN)));
    session.handle(now, Input::Received(&[0xff; 16]));
    let keepalive_tail = [0, 19, 4];
    session.handle(now, Input::Received(&keepalive_tail));
    let mut importer = Importer::new([rt("65000:100")].into());
    let mut learned = Vec::new();
    for output in session.handle(now, Input::Received(&hex(FRR_UPDATES))) {
        if let Output::Routes(changes) = output {
            learned.extend(importer.apply(PEER_A, &changes));
        }
    }
    let vtep = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    assert_eq!(
        learned,
        vec![
            dev("02:00:00:00:01:01", None, vtep, None, false),
            dev(
                "02:00:00:00:01:01",
                Some("198.51.100.11"),
                vtep,
                None,
                false
            ),
            dev("02:b8:b7:f5:be:6f", None, vtep, None, false),
            gw(vtep, false),
        ]
    );
}

mod convergence {
    //! The importer's reports, applied in order as the server applies them, always equal what
    //! a fresh importer reports for the peers' final Adj-RIBs-In: the incremental diff loses
    //! nothing and leaves nothing behind, whatever the order of announcements, replacements,
    //! withdrawals and session losses.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Announce {
            peer: usize,
            key: usize,
            path: usize,
        },
        Withdraw {
            peer: usize,
            key: usize,
        },
        SessionLost {
            peer: usize,
        },
    }

    const PEERS: [IpAddr; 2] = [PEER_A, PEER_B];

    fn keys() -> Vec<RouteKey> {
        vec![
            imet(11, PE1),
            imet(12, PE1),
            imet(12, PE2),
            mac_ip(11, "02:00:00:00:01:01", None),
            mac_ip(12, "02:00:00:00:01:01", None),
            mac_ip(11, "02:00:00:00:01:01", Some("10.0.0.1")),
            mac_ip(11, "02:00:00:00:01:02", Some("10.0.0.2")),
        ]
    }

    fn paths(key: &RouteKey) -> Vec<Path> {
        match key {
            RouteKey::Imet { .. } => vec![
                gateway_path(PE1),
                gateway_path(PE2),
                path(PE1),
                Path {
                    route_targets: [rt("65000:200")].into(),
                    ..gateway_path(PE1)
                },
            ],
            RouteKey::MacIp { .. } => vec![
                device_path(PE1, None, false),
                device_path(PE2, Some(1), false),
                device_path(PE2, Some(2), true),
                Path {
                    route_targets: [rt("65000:100"), rt("65000:101")].into(),
                    ..device_path(PE1, Some(3), false)
                },
                Path {
                    route_targets: BTreeSet::new(),
                    ..device_path(PE1, None, false)
                },
            ],
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..2usize, 0..7usize, 0..5usize).prop_map(|(peer, key, path)| Op::Announce { peer, key, path }),
            3 => (0..2usize, 0..7usize).prop_map(|(peer, key)| Op::Withdraw { peer, key }),
            1 => (0..2usize).prop_map(|peer| Op::SessionLost { peer }),
        ]
    }

    type DeviceIdentity = (Mac, Option<IpAddr>, IpAddr, Option<u64>);

    /// The server's view: the learned routes as the reports left them.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Server {
        gateways: BTreeMap<(IpAddr, Option<u64>), Vec<RouteTarget>>,
        devices: BTreeMap<DeviceIdentity, (Vec<RouteTarget>, Option<u32>)>,
    }

    impl Server {
        fn apply(&mut self, reports: Vec<Learned>) {
            for report in reports {
                match report {
                    Learned::Gateway(g) if g.withdrawn => {
                        assert!(
                            self.gateways.remove(&(g.vtep, g.vni)).is_some(),
                            "withdrew an unknown gateway"
                        );
                    }
                    Learned::Gateway(g) => {
                        self.gateways.insert((g.vtep, g.vni), g.route_targets);
                    }
                    Learned::Device(d) if d.withdrawn => {
                        assert!(
                            self.devices.remove(&(d.mac, d.ip, d.vtep, d.vni)).is_some(),
                            "withdrew an unknown device"
                        );
                    }
                    Learned::Device(d) => {
                        self.devices
                            .insert((d.mac, d.ip, d.vtep, d.vni), (d.route_targets, d.seq));
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn reports_converge_to_the_final_ribs(ops in proptest::collection::vec(op(), 1..60)) {
            let keys = keys();
            let mut ribs = [AdjRibIn::default(), AdjRibIn::default()];
            let mut importer = Importer::new(BTreeSet::new());
            let mut server = Server::default();
            for op in ops {
                let mut changes = Vec::new();
                let peer = match op {
                    Op::Announce { peer, key, path } => {
                        let key = keys[key];
                        let candidates = paths(&key);
                        ribs[peer].announce(key, candidates[path % candidates.len()].clone(), &mut changes);
                        peer
                    }
                    Op::Withdraw { peer, key } => {
                        ribs[peer].withdraw(&keys[key], &mut changes);
                        peer
                    }
                    Op::SessionLost { peer } => {
                        changes = ribs[peer].clear();
                        peer
                    }
                };
                server.apply(importer.apply(PEERS[peer], &changes));
            }
            let mut fresh = Importer::new(BTreeSet::new());
            let mut expected = Server::default();
            for (peer, rib) in ribs.iter().enumerate() {
                let changes: Vec<RibChange> = rib
                    .iter()
                    .map(|(key, path)| RibChange::Added { key: *key, path: path.clone() })
                    .collect();
                expected.apply(fresh.apply(PEERS[peer], &changes));
            }
            prop_assert_eq!(&server, &expected);
            prop_assert_eq!(importer.reported(), fresh.reported());
        }
    }
}
