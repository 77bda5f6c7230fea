//! Unit tests of the full-FDB builder's two ways of checking extension entries: merged against
//! the engine's record of visible entries (output in wire order), or looked up one by one (any
//! other order). Both must give the same full FDB and the same reports.

use std::net::IpAddr;

use l2pop_model::{FLOODING_ENTRY, Mac, NetworkId, PortInfo};
use serde_json::{Value, json};

use crate::extensions::{StaticAction, StaticFdb};
use crate::{
    Engine, EngineBuilder, Event, ExtensionEntries, ExtensionError, FdbExtension, FullFdb,
    FullFdbRequest, Report,
};

const N1: &str = "11111111-1111-4111-8111-111111111111";

fn net() -> NetworkId {
    N1.parse().expect("test network id")
}

fn entry(mac: &str, ip: &str) -> PortInfo {
    PortInfo::new(
        mac.parse::<Mac>().expect("test MAC"),
        ip.parse().expect("test IP"),
    )
}

fn vtep(text: &str) -> IpAddr {
    text.parse().expect("test VTEP")
}

fn apply(engine: &mut Engine, value: Value) {
    let event: Event = serde_json::from_value(value).expect("test event");
    engine.apply(&event).expect("accepted");
}

fn port(id: &str, mac: &str, ip: &str, host: &str) -> Value {
    json!({
        "op": "port_create", "id": id, "network_id": N1, "mac": mac, "fixed_ips": [ip],
        "device_owner": "compute:nova", "host": host,
    })
}

/// Writes the given entries in reverse wire order, never announcing them: every entry takes the
/// one-by-one checks and the result is sorted.
struct Reversed(Vec<(IpAddr, PortInfo)>);

impl FdbExtension for Reversed {
    fn extend_full_fdb(
        &self,
        _: &FullFdbRequest<'_>,
        out: &mut ExtensionEntries,
    ) -> Result<(), ExtensionError> {
        for (vtep, entry) in self.0.iter().rev() {
            out.unicast(*vtep, *entry);
        }
        Ok(())
    }
}

/// Two gateways' entries; one device has the MAC of port P1, one the IP of port P2.
fn gateway_entries() -> Vec<(IpAddr, PortInfo)> {
    let (g1, g2) = (vtep("198.51.100.1"), vtep("198.51.100.2"));
    vec![
        (g1, FLOODING_ENTRY),
        (g1, entry("02:00:00:00:00:01", "10.0.1.201")),
        (g1, entry("02:00:00:00:00:02", "10.0.1.202")),
        (g1, entry("fa:16:3e:00:00:01", "10.0.1.203")),
        (g2, FLOODING_ENTRY),
        (g2, entry("02:00:00:00:01:01", "10.0.1.2")),
        (g2, entry("02:00:00:00:01:01", "10.0.1.211")),
        (g2, entry("02:00:00:00:01:02", "0.0.0.0")),
    ]
}

/// h1 and h2 on N1 with ports P1 (on h1) and P2 (on h2), and `extension` registered as
/// "static"; `configure` runs once the network exists.
fn engine_with(extension: impl FdbExtension, configure: impl FnOnce(&mut Engine)) -> Engine {
    let mut engine = EngineBuilder::new()
        .extension("static", extension)
        .expect("registration")
        .build();
    for (host, ip) in [("h1", "10.0.0.1"), ("h2", "10.0.0.2"), ("h3", "10.0.0.3")] {
        apply(
            &mut engine,
            json!({"op": "agent", "host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"]}),
        );
    }
    apply(
        &mut engine,
        json!({"op": "network", "id": N1, "network_type": "vxlan", "segmentation_id": 1001}),
    );
    apply(
        &mut engine,
        json!({"op": "subnet", "network_id": N1, "cidr": "10.0.1.0/24"}),
    );
    configure(&mut engine);
    for (id, mac, ip, host) in [
        (
            "aaaaaaaa-0000-4000-8000-000000000001",
            "fa:16:3e:00:00:01",
            "10.0.1.1",
            "h1",
        ),
        (
            "aaaaaaaa-0000-4000-8000-000000000002",
            "fa:16:3e:00:00:02",
            "10.0.1.2",
            "h2",
        ),
    ] {
        apply(&mut engine, port(id, mac, ip, host));
        apply(
            &mut engine,
            json!({"op": "device_up", "id": id, "host": host}),
        );
    }
    engine.take_reports();
    engine
}

fn static_engine() -> Engine {
    engine_with(StaticFdb::new(), |engine| {
        for (vtep, entry) in gateway_entries() {
            engine
                .update_extension::<StaticFdb>("static", |ext, view| {
                    ext.apply(StaticAction::Add, net(), vtep, &[entry], view)
                })
                .expect("static entries");
        }
    })
}

fn full_fdb(engine: &Engine, host: &str) -> FullFdb {
    let host = l2pop_model::Host::new(host).expect("test host");
    engine.full_fdb(&host, net(), None).expect("known network")
}

/// The reports, in a fixed order (the two ways check entries in different orders).
fn sorted_reports(fdb: &FullFdb) -> Vec<String> {
    let mut reports: Vec<String> = fdb.reports.iter().map(|r| format!("{r:?}")).collect();
    reports.sort();
    reports
}

#[test]
fn entries_on_record_and_entries_checked_one_by_one_give_the_same_full_fdb() {
    let on_record = static_engine();
    let one_by_one = engine_with(Reversed(gateway_entries()), |_| {});
    for host in ["h1", "h2", "h3"] {
        let (a, b) = (full_fdb(&on_record, host), full_fdb(&one_by_one, host));
        assert_eq!(a.fdb_entries, b.fdb_entries, "full FDB of {host}");
        assert_eq!(sorted_reports(&a), sorted_reports(&b), "reports for {host}");
    }
    // The port-hidden entries are reported, not sent: P1's MAC and P2's IP.
    let reports = full_fdb(&on_record, "h3").reports;
    assert!(matches!(
        reports.as_slice(),
        [
            Report::CollidesWithPort { .. },
            Report::CollidesWithPortIp { .. }
        ]
    ));
}

#[test]
fn the_record_follows_ports_that_take_and_free_an_extensions_mac() {
    let mut on_record = static_engine();
    let mut one_by_one = engine_with(Reversed(gateway_entries()), |_| {});
    let p3 = "aaaaaaaa-0000-4000-8000-000000000003";
    let steps = [
        port(p3, "02:00:00:00:00:02", "10.0.1.3", "h3"),
        json!({"op": "device_up", "id": p3, "host": "h3"}),
        json!({"op": "port_delete", "id": p3}),
    ];
    for step in steps {
        apply(&mut on_record, step.clone());
        apply(&mut one_by_one, step.clone());
        for host in ["h1", "h2"] {
            let (a, b) = (full_fdb(&on_record, host), full_fdb(&one_by_one, host));
            assert_eq!(
                a.fdb_entries, b.fdb_entries,
                "full FDB of {host} after {step}"
            );
            assert_eq!(
                sorted_reports(&a),
                sorted_reports(&b),
                "reports after {step}"
            );
        }
    }
}
