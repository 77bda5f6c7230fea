//! The incremental export ([`Exporter::apply`]) against the from-scratch one ([`routes`]).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use l2pop_model::{ChgIp, IpChange, NetworkFdb};
use proptest::prelude::*;

use super::*;

const ORIGIN: Origin = Origin {
    asn: 65000,
    router_id: Ipv4Addr::new(198, 18, 0, 1),
};

fn network(i: u8) -> NetworkId {
    NetworkId(l2pop_model::Uuid::from_u128(0x1111_0000 + u128::from(i)))
}

fn vtep(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i))
}

/// Few values of everything, so that entries move, RDs collide and networks share VPNs.
fn port_info() -> impl Strategy<Value = PortInfo> {
    (0u8..4, 0u8..5).prop_map(|(m, i)| {
        let mac = if m == 0 {
            Mac::ZERO
        } else {
            Mac::new([0xfa, 0x16, 0x3e, 0, 0, m])
        };
        let ip = match i {
            0 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            1 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            n => IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
        };
        PortInfo::new(mac, ip)
    })
}

fn network_fdb() -> impl Strategy<Value = NetworkFdb> {
    (
        prop::option::of(1000u32..1003),
        prop_oneof![4 => Just(NetworkType::Vxlan), 1 => Just(NetworkType::Vlan)],
        prop::collection::vec((0u8..3, prop::collection::vec(port_info(), 0..4)), 0..3),
    )
        .prop_map(|(segment_id, network_type, ports)| NetworkFdb {
            segment_id,
            network_type,
            ports: ports.into_iter().map(|(v, l)| (vtep(v), l)).collect(),
        })
}

fn fdb() -> impl Strategy<Value = FdbEntries> {
    prop::collection::vec((0u8..3, network_fdb()), 0..3)
        .prop_map(|l| FdbEntries(l.into_iter().map(|(n, f)| (network(n), f)).collect()))
}

fn vpn() -> impl Strategy<Value = VpnExport> {
    (
        0u8..4,
        prop::collection::btree_set(0u32..3, 0..2),
        prop::collection::btree_set(0u32..3, 0..2),
        prop::collection::vec(0u32..2, 0..2),
        prop::option::of(100u32..102),
        prop::collection::btree_set(0u8..3, 0..3),
    )
        .prop_map(|(id, rts, ets, rds, local_pref, networks)| {
            let rt = |n: u32| RouteTarget::As2 {
                asn: 65000,
                number: n,
            };
            VpnExport {
                id: BgpvpnId(l2pop_model::Uuid::from_u128(0x6666_0000 + u128::from(id))),
                route_targets: rts.into_iter().map(rt).collect(),
                export_targets: ets.into_iter().map(rt).collect(),
                route_distinguishers: rds.into_iter().map(|n| rt(n + 7)).collect(),
                local_pref,
                networks: networks.into_iter().map(network).collect(),
            }
        })
}

#[derive(Debug, Clone)]
enum Op {
    Snapshot(Vec<VpnExport>, FdbEntries),
    Delta(Method, FdbPayload),
}

fn op() -> impl Strategy<Value = Op> {
    let chg_ip = prop::collection::vec(
        (
            0u8..3,
            prop::collection::vec(
                (
                    0u8..3,
                    prop::collection::vec(port_info(), 0..3),
                    prop::collection::vec(port_info(), 0..3),
                ),
                0..3,
            ),
        ),
        0..2,
    )
    .prop_map(|l| {
        ChgIp(
            l.into_iter()
                .map(|(n, v)| {
                    let v = v
                        .into_iter()
                        .map(|(h, before, after)| (vtep(h), IpChange { before, after }))
                        .collect();
                    (network(n), v)
                })
                .collect(),
        )
    });
    prop_oneof![
        1 => (prop::collection::vec(vpn(), 0..3), fdb()).prop_map(|(v, f)| Op::Snapshot(v, f)),
        4 => fdb().prop_map(|f| Op::Delta(Method::AddFdbEntries, FdbPayload::Entries(f))),
        3 => fdb().prop_map(|f| Op::Delta(Method::RemoveFdbEntries, FdbPayload::Entries(f))),
        1 => fdb().prop_map(|f| Op::Delta(Method::UpdateFdbEntries, FdbPayload::Entries(f))),
        2 => chg_ip.prop_map(|c| Op::Delta(Method::UpdateFdbEntries, FdbPayload::ChgIp(c))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// After every snapshot and delta the exporter holds exactly the from-scratch routes, and
    /// each delta's difference is the from-scratch `diff`.
    #[test]
    fn incremental_export_equals_routes_from_scratch(ops in prop::collection::vec(op(), 1..25)) {
        let mut exporter = Exporter::new(ORIGIN);
        let mut reference: Option<ExportView> = None;
        for op in ops {
            let old = exporter.routes().clone();
            match op {
                Op::Snapshot(vpns, fdb) => {
                    let view = ExportView::new(vpns, &fdb);
                    exporter.resync(view.clone());
                    reference = Some(view);
                }
                Op::Delta(method, payload) => {
                    let changes = exporter.apply_diff(method, &payload);
                    let Some(view) = reference.as_mut() else {
                        prop_assert!(changes.is_empty());
                        continue;
                    };
                    view.apply(method, &payload);
                    let (expected, _) = routes(view, ORIGIN);
                    prop_assert_eq!(changes, diff(&old, &expected));
                }
            }
            let expected = reference.as_ref().map(|v| routes(v, ORIGIN).0).unwrap_or_default();
            prop_assert_eq!(exporter.routes(), &expected);
        }
    }
}
