#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use l2pop_model::{ChgIp, FLOODING_ENTRY, IpChange, NetworkFdb};

use super::*;
use crate::codec::{self, ExportSession, Framer, WireMessage};
use crate::rib::Pmsi;

const NET1: NetworkId = NetworkId(uuid_of(0x1111_1111_1111_4111_8111_1111_1111_1111));
const NET2: NetworkId = NetworkId(uuid_of(0x2222_2222_2222_4222_8222_2222_2222_2222));
const VPN1: BgpvpnId = BgpvpnId(uuid_of(0x6666_6666_6666_4666_8666_6666_6666_6601));
const ORIGIN: Origin = Origin {
    asn: 65000,
    router_id: Ipv4Addr::new(198, 18, 0, 1),
};

const fn uuid_of(v: u128) -> l2pop_model::Uuid {
    l2pop_model::Uuid::from_u128(v)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

fn rt(text: &str) -> RouteTarget {
    text.parse().unwrap()
}

fn entry(m: &str, i: &str) -> PortInfo {
    PortInfo::new(mac(m), ip(i))
}

fn vpn(networks: &[NetworkId], rds: &[&str]) -> VpnExport {
    VpnExport {
        id: VPN1,
        route_targets: BTreeSet::from([rt("65000:1001")]),
        export_targets: BTreeSet::from([rt("65000:2001")]),
        route_distinguishers: rds.iter().map(|r| rt(r)).collect(),
        local_pref: None,
        networks: networks.iter().copied().collect(),
    }
}

fn fdb(network: NetworkId, vni: u32, ports: Vec<(&str, Vec<PortInfo>)>) -> FdbEntries {
    FdbEntries::single(
        network,
        NetworkFdb {
            segment_id: Some(vni),
            network_type: NetworkType::Vxlan,
            ports: ports.into_iter().map(|(v, l)| (ip(v), l)).collect(),
        },
    )
}

/// Host 192.0.2.1 with VM-11, host 192.0.2.2 with VM-21 (two IPs), on NET1 (VNI 1001).
fn two_hosts() -> ExportView {
    ExportView::new(
        vec![vpn(&[NET1], &["203.0.113.10:1001"])],
        &fdb(
            NET1,
            1001,
            vec![
                (
                    "192.0.2.1",
                    vec![FLOODING_ENTRY, entry("fa:16:3e:00:00:11", "10.1.0.11")],
                ),
                (
                    "192.0.2.2",
                    vec![
                        FLOODING_ENTRY,
                        entry("fa:16:3e:00:00:21", "10.1.0.21"),
                        entry("fa:16:3e:00:00:21", "10.1.0.22"),
                    ],
                ),
            ],
        ),
    )
}

fn rd1() -> Rd {
    rd_of(rt("203.0.113.10:1001"))
}

fn imet(rd: Rd, vtep: &str) -> RouteKey {
    RouteKey::Imet {
        rd,
        ethernet_tag: 0,
        originator: ip(vtep),
    }
}

fn mac_ip(rd: Rd, m: &str, i: &str) -> RouteKey {
    RouteKey::MacIp {
        rd,
        ethernet_tag: 0,
        mac: mac(m),
        ip: Some(ip(i)),
    }
}

fn path(vtep: &str, vni: u32) -> ExportPath {
    ExportPath {
        next_hop: ip(vtep),
        vni,
        route_targets: BTreeSet::from([rt("65000:1001"), rt("65000:2001")]),
        local_pref: None,
    }
}

#[test]
fn a_type_3_per_host_vtep_and_a_type_2_per_entry_with_the_export_targets() {
    let (routes, skipped) = routes(&two_hosts(), ORIGIN);
    assert!(skipped.is_empty());
    let expected = Routes::from([
        (imet(rd1(), "192.0.2.1"), path("192.0.2.1", 1001)),
        (imet(rd1(), "192.0.2.2"), path("192.0.2.2", 1001)),
        (
            mac_ip(rd1(), "fa:16:3e:00:00:11", "10.1.0.11"),
            path("192.0.2.1", 1001),
        ),
        (
            mac_ip(rd1(), "fa:16:3e:00:00:21", "10.1.0.21"),
            path("192.0.2.2", 1001),
        ),
        (
            mac_ip(rd1(), "fa:16:3e:00:00:21", "10.1.0.22"),
            path("192.0.2.2", 1001),
        ),
    ]);
    assert_eq!(routes, expected);
}

#[test]
fn deltas_follow_ports_and_a_move_is_an_add_at_the_new_vtep() {
    let mut view = two_hosts();
    let before = routes(&view, ORIGIN).0;
    // VM-11 moves to 192.0.2.2: an add there; the stale remove naming .1 comes after and
    // must not delete it.
    view.apply(
        Method::AddFdbEntries,
        &FdbPayload::Entries(fdb(
            NET1,
            1001,
            vec![("192.0.2.2", vec![entry("fa:16:3e:00:00:11", "10.1.0.11")])],
        )),
    );
    view.apply(
        Method::RemoveFdbEntries,
        &FdbPayload::Entries(fdb(
            NET1,
            1001,
            vec![(
                "192.0.2.1",
                vec![FLOODING_ENTRY, entry("fa:16:3e:00:00:11", "10.1.0.11")],
            )],
        )),
    );
    // VM-21 changes one IP (chg_ip).
    view.apply(
        Method::UpdateFdbEntries,
        &FdbPayload::ChgIp(ChgIp(vec![(
            NET1,
            vec![(
                ip("192.0.2.2"),
                IpChange {
                    before: vec![entry("fa:16:3e:00:00:21", "10.1.0.22")],
                    after: vec![entry("fa:16:3e:00:00:21", "10.1.0.23")],
                },
            )],
        )])),
    );
    let after = routes(&view, ORIGIN).0;
    let changes = diff(&before, &after);
    assert_eq!(
        changes.withdraw,
        vec![
            (imet(rd1(), "192.0.2.1"), path("192.0.2.1", 1001)),
            (
                mac_ip(rd1(), "fa:16:3e:00:00:21", "10.1.0.22"),
                path("192.0.2.2", 1001)
            ),
        ]
    );
    assert_eq!(
        changes.announce,
        vec![
            (
                mac_ip(rd1(), "fa:16:3e:00:00:11", "10.1.0.11"),
                path("192.0.2.2", 1001)
            ),
            (
                mac_ip(rd1(), "fa:16:3e:00:00:21", "10.1.0.23"),
                path("192.0.2.2", 1001)
            ),
        ]
    );
    assert!(diff(&after, &after).is_empty());
}

#[test]
fn networks_not_served_and_non_vxlan_networks_are_not_exported() {
    let mut view = two_hosts();
    view.apply(
        Method::AddFdbEntries,
        &FdbPayload::Entries(fdb(NET2, 1002, vec![("192.0.2.9", vec![FLOODING_ENTRY])])),
    );
    assert!(!view.networks.contains_key(&NET2));

    let mut vlan = fdb(NET1, 100, vec![("192.0.2.1", vec![FLOODING_ENTRY])]);
    vlan.0[0].1.network_type = NetworkType::Vlan;
    let view = ExportView::new(vec![vpn(&[NET1], &[])], &vlan);
    let (routes, skipped) = routes(&view, ORIGIN);
    assert!(routes.is_empty());
    assert_eq!(
        skipped,
        vec![ExportSkip::NotVxlan {
            bgpvpn: VPN1,
            network: NET1
        }]
    );
}

#[test]
fn rds_are_given_per_network_then_automatic_and_targets_are_required() {
    let mut both = fdb(NET1, 1001, vec![("192.0.2.1", vec![FLOODING_ENTRY])]);
    both.0
        .extend(fdb(NET2, 1002, vec![("192.0.2.1", vec![FLOODING_ENTRY])]).0);
    let view = ExportView::new(vec![vpn(&[NET1, NET2], &["203.0.113.10:1001"])], &both);
    let keys: Vec<RouteKey> = routes(&view, ORIGIN).0.into_keys().collect();
    let auto = auto_rd(ORIGIN, 1002);
    assert_eq!(auto.to_string(), "65000:1002");
    assert_eq!(
        keys,
        vec![imet(auto, "192.0.2.1"), imet(rd1(), "192.0.2.1")]
    );
    let four_octet = Origin {
        asn: 4_200_000_000,
        ..ORIGIN
    };
    assert_eq!(auto_rd(four_octet, 1002).to_string(), "198.18.0.1:1002");

    let mut silent = vpn(&[NET1], &[]);
    silent.route_targets.clear();
    silent.export_targets.clear();
    let view = ExportView::new(vec![silent], &both);
    assert_eq!(
        routes(&view, ORIGIN),
        (
            Routes::new(),
            vec![ExportSkip::NoExportTargets { bgpvpn: VPN1 }]
        )
    );
}

/// Our UPDATEs, decoded by our own import path, give back exactly the exported routes.
#[test]
fn updates_decode_to_the_exported_routes_with_pmsi_and_vxlan_encapsulation() {
    let (routes, _) = routes(&two_hosts(), ORIGIN);
    let session = ExportSession {
        local_as: 65000,
        ibgp: false,
        four_octet_as: true,
    };
    let announce = diff(&Routes::new(), &routes);
    let mut framer = Framer::default();
    for message in codec::export_updates(&announce, &session) {
        assert!(message.len() <= 4096);
        framer.push(&message);
    }
    let mut decoded = Routes::new();
    while let Some(message) = framer.next_message() {
        let WireMessage::Update(update) = message.unwrap() else {
            panic!("not an UPDATE");
        };
        let evpn = codec::evpn_update(&update, true, false).unwrap();
        assert_eq!(evpn.verdict, None, "{:?}", evpn.problems);
        for (key, got) in evpn.announced {
            assert_eq!(got.encapsulations, BTreeSet::from([codec::ENCAP_VXLAN]));
            let vni = match key {
                RouteKey::Imet { originator, .. } => {
                    let pmsi = got.pmsi.unwrap();
                    assert_eq!(pmsi.tunnel_type, Pmsi::INGRESS_REPLICATION);
                    assert_eq!(pmsi.endpoint, Some(originator));
                    pmsi.vni
                }
                RouteKey::MacIp { .. } => got.vni.unwrap(),
            };
            decoded.insert(
                key,
                ExportPath {
                    next_hop: got.next_hop,
                    vni,
                    route_targets: got.route_targets,
                    local_pref: None,
                },
            );
        }
    }
    assert_eq!(decoded, routes);

    // Withdrawals: one MP_UNREACH_NLRI naming the routes.
    let withdraw = diff(&routes, &Routes::new());
    let messages = codec::export_updates(&withdraw, &session);
    assert_eq!(messages.len(), 1);
    framer.push(&messages[0]);
    let WireMessage::Update(update) = framer.next_message().unwrap().unwrap() else {
        panic!("not an UPDATE");
    };
    let evpn = codec::evpn_update(&update, true, false).unwrap();
    let withdrawn: BTreeSet<RouteKey> = evpn.withdrawn.into_iter().collect();
    assert_eq!(withdrawn, routes.keys().copied().collect());
}

/// The type-3 NLRI and PMSI Tunnel attribute are byte for byte what FRR 8.4 sends for the same
/// route (`shared/reference/environment.md`, FRR's UPDATE from 192.0.2.11: RD 192.0.2.11:2,
/// VNI 100).
#[test]
fn type_3_bytes_match_frr() {
    let vtep = "192.0.2.11";
    let mut view = ExportView::new(
        vec![vpn(&[NET1], &["192.0.2.11:2"])],
        &fdb(NET1, 100, vec![(vtep, vec![FLOODING_ENTRY])]),
    );
    view.vpns[0].export_targets.clear();
    let (routes, _) = routes(&view, ORIGIN);
    let session = ExportSession {
        local_as: 65001,
        ibgp: true,
        four_octet_as: true,
    };
    let messages = codec::export_updates(&diff(&Routes::new(), &routes), &session);
    let hex: String = messages[0].iter().map(|b| format!("{b:02x}")).collect();
    let frr_nlri = "03110001c000020b00020000000020c000020b";
    let frr_pmsi = "c016090006000064c000020b";
    let frr_encap = "030c000000000008";
    let local_pref = "40050400000064";
    for part in [frr_nlri, frr_pmsi, frr_encap, local_pref] {
        assert!(hex.contains(part), "{part} not in {hex}");
    }
}

#[test]
fn many_routes_are_cut_into_messages_within_the_limit() {
    let entries: Vec<PortInfo> = (0..300u32)
        .map(|i| {
            let b = i.to_be_bytes();
            PortInfo::new(
                Mac::new([0xfa, 0x16, 0x3e, 0, b[2], b[3]]),
                IpAddr::V4(Ipv4Addr::new(10, 1, b[2], b[3])),
            )
        })
        .collect();
    let view = ExportView::new(
        vec![vpn(&[NET1], &[])],
        &fdb(NET1, 1001, vec![("192.0.2.1", entries)]),
    );
    let (routes, _) = routes(&view, ORIGIN);
    assert_eq!(routes.len(), 300);
    let session = ExportSession {
        local_as: 65000,
        ibgp: false,
        four_octet_as: false,
    };
    let messages = codec::export_updates(&diff(&Routes::new(), &routes), &session);
    assert!(messages.len() > 1);
    let mut framer = Framer::default();
    let mut count = 0;
    for message in &messages {
        assert!(message.len() <= 4096, "{}", message.len());
        framer.push(message);
        let WireMessage::Update(update) = framer.next_message().unwrap().unwrap() else {
            panic!("not an UPDATE");
        };
        count += codec::evpn_update(&update, false, false)
            .unwrap()
            .announced
            .len();
    }
    assert_eq!(count, 300);
}

#[test]
fn the_exporter_sends_everything_then_end_of_rib_and_then_only_differences() {
    let session = ExportSession {
        local_as: 65000,
        ibgp: false,
        four_octet_as: true,
    };
    let peer_a = ip("198.18.0.2");
    let peer_b = ip("198.18.0.3");
    let eor = codec::end_of_rib();
    let mut exporter = Exporter::new(ORIGIN);
    // Up before the first snapshot: nothing yet, not even End-of-RIB.
    assert!(exporter.peer_up(peer_a, session).is_empty());
    assert!(
        exporter
            .apply(
                Method::AddFdbEntries,
                &FdbPayload::Entries(FdbEntries::default())
            )
            .is_empty()
    );
    let (out, skipped) = exporter.resync(two_hosts());
    assert_eq!(skipped, None, "nothing left out, as before");
    assert!(out.iter().all(|(p, _)| *p == peer_a));
    assert_eq!(out.last().unwrap().1, eor);
    assert!(out.len() >= 3, "routes then End-of-RIB: {}", out.len());
    assert_eq!(exporter.routes().len(), 5);

    // A second peer gets everything at once.
    let out = exporter.peer_up(peer_b, session);
    assert!(out.iter().all(|(p, _)| *p == peer_b));
    assert_eq!(out.last().unwrap().1, eor);

    // A port goes: one withdrawal to each peer.
    let out = exporter.apply(
        Method::RemoveFdbEntries,
        &FdbPayload::Entries(fdb(
            NET1,
            1001,
            vec![("192.0.2.2", vec![entry("fa:16:3e:00:00:21", "10.1.0.22")])],
        )),
    );
    assert_eq!(out.len(), 2);
    let expected = codec::export_updates(
        &ExportDiff {
            announce: vec![],
            withdraw: vec![(
                mac_ip(rd1(), "fa:16:3e:00:00:21", "10.1.0.22"),
                path("192.0.2.2", 1001),
            )],
        },
        &session,
    );
    assert_eq!(
        out,
        vec![(peer_a, expected[0].clone()), (peer_b, expected[0].clone())]
    );

    // A peer down gets nothing more; a resync sends the difference to the view it brings.
    exporter.peer_down(peer_a);
    let (out, skipped) = exporter.resync(two_hosts());
    assert_eq!(skipped, None);
    // The resynced view has the port again: announced to the remaining peer only.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer_b);
}
