//! Unit tests of the BGPVPN extension: every refusal (exact message, nothing changed, a later
//! valid op behaves as if the refused one never happened), atomic route batches, the op
//! vocabulary's strictness, network deletion, VNI-mismatch reports and the `Vpn` accessors.
//! The happy paths and the seven cases are the golden scenarios' (`scenarios/bgpvpn-*`) and the
//! property test's (`tests/convergence.rs`).

use super::*;

use l2pop_engine::{DesiredTable, Engine, EngineBuilder, Event, EventError, FullFdb, Provenance};
use l2pop_model::{FdbPayload, Notification, Target};
use serde_json::{Value, json};

use crate::NAME;

// ---- fixtures ----

const N1: &str = "11111111-1111-4111-8111-111111111111";
const N2: &str = "22222222-2222-4222-8222-222222222222";
const N3: &str = "33333333-3333-4333-8333-333333333333";
const N4: &str = "44444444-4444-4444-8444-444444444444";
/// Every network id a test may use: snapshots look at each.
const NETWORKS: [&str; 4] = [N1, N2, N3, N4];

const V1: &str = "66666666-6666-4666-8666-666666666601";
const V2: &str = "66666666-6666-4666-8666-666666666602";
const V3: &str = "66666666-6666-4666-8666-666666666603";
const V4: &str = "66666666-6666-4666-8666-666666666604";
const V9: &str = "66666666-6666-4666-8666-666666666609";

const S1: &str = "55555555-5555-4555-8555-555555555501";
const S2: &str = "55555555-5555-4555-8555-555555555502";
const S9: &str = "55555555-5555-4555-8555-555555555509";

const P1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const P2: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const P3: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const P4: &str = "aaaaaaaa-0000-4000-8000-000000000004";
const P5: &str = "aaaaaaaa-0000-4000-8000-000000000005";

const DEV1: &str = "02:00:00:00:00:01";
const DEV2: &str = "02:00:00:00:00:02";
const DEV3: &str = "02:00:00:00:00:03";

fn net(id: &str) -> NetworkId {
    id.parse().expect("test network id")
}

fn vpn_id(id: &str) -> BgpvpnId {
    BgpvpnId(id.parse().expect("test BGPVPN id"))
}

fn speaker_id(id: &str) -> SpeakerId {
    SpeakerId(id.parse().expect("test speaker id"))
}

fn host(name: &str) -> Host {
    Host::new(name).expect("test host name")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP")
}

fn mac(text: &str) -> Mac {
    text.parse().expect("test MAC")
}

fn rt(text: &str) -> RouteTarget {
    text.parse().expect("test route target")
}

fn rts<const K: usize>(texts: [&str; K]) -> BTreeSet<RouteTarget> {
    texts.into_iter().map(rt).collect()
}

/// A short name for a fixture network in described notifications and FDBs.
fn label(network: NetworkId) -> String {
    ["N1", "N2", "N3", "N4"]
        .iter()
        .zip(NETWORKS)
        .find(|(_, id)| net(id) == network)
        .map_or_else(|| network.to_string(), |(name, _)| (*name).to_owned())
}

fn event(value: Value) -> Event {
    serde_json::from_value(value).expect("engine event")
}

fn op(value: Value) -> BgpvpnOp {
    serde_json::from_value(value).expect("BGPVPN op")
}

/// Runs a BGPVPN op through the engine as a driver does. On refusal, returns the extension's own
/// error after checking the engine refused with exactly its message.
fn run(engine: &mut Engine, value: Value) -> Result<Vec<Notification>, BgpvpnError> {
    run_with_reports(engine, value).0
}

/// [`run`], also taking the extension's reports right after the op.
fn run_with_reports(
    engine: &mut Engine,
    value: Value,
) -> (Result<Vec<Notification>, BgpvpnError>, Vec<BgpvpnReport>) {
    let op = op(value);
    let mut refused = None;
    let mut reports = Vec::new();
    let result = engine.update_extension::<Bgpvpn>(NAME, |ext, topology| {
        let changes = ext.apply(&op, topology).map_err(|error| {
            refused = Some(error.clone());
            error.into()
        });
        reports = ext.take_reports();
        changes
    });
    let result = match (result, refused) {
        (Ok(sent), None) => Ok(sent),
        (Err(error), Some(refused)) => {
            assert_eq!(
                error,
                EventError::Extension(ExtensionError::new(refused.to_string()))
            );
            Err(refused)
        }
        (result, refused) => panic!("engine {result:?} but extension {refused:?}"),
    };
    (result, reports)
}

/// Runs `f` on the registered extension (read-only use; the engine sends nothing).
fn with_ext<T>(engine: &mut Engine, f: impl FnOnce(&Bgpvpn) -> T) -> T {
    let mut out = None;
    let sent = engine
        .update_extension::<Bgpvpn>(NAME, |ext, _| {
            out = Some(f(ext));
            Ok(ExtensionChanges::default())
        })
        .expect("the bgpvpn extension is registered");
    assert!(sent.is_empty());
    out.expect("closure ran")
}

/// One line per entry: `add fanout bgpvpn N1 203.0.113.1 flood`, `add host1 native N1 ...`.
fn describe(notifications: &[Notification]) -> Vec<String> {
    let mut lines = Vec::new();
    for n in notifications {
        let method = n.method.as_str().trim_end_matches("_fdb_entries");
        let target = match &n.target {
            Target::Fanout => "fanout".to_owned(),
            Target::Host(h) => h.to_string(),
        };
        let source = n.source.as_deref().unwrap_or("native");
        match &n.fdb_entries {
            FdbPayload::Entries(entries) => {
                for (network, fdb) in &entries.0 {
                    for (vtep, list) in &fdb.ports {
                        for e in list {
                            lines.push(format!(
                                "{method} {target} {source} {} {vtep} {}",
                                label(*network),
                                entry_text(*e)
                            ));
                        }
                    }
                }
            }
            FdbPayload::ChgIp(chg) => lines.push(format!("{method} {target} {source} {chg:?}")),
        }
    }
    lines
}

fn entry_text(entry: PortInfo) -> String {
    if entry.is_flooding() {
        "flood".to_owned()
    } else {
        format!("{} {}", entry.mac, entry.ip)
    }
}

/// `host`'s full FDB for `network`, one `vtep entry` line each.
fn fdb(engine: &Engine, host_name: &str, network: &str) -> Vec<String> {
    let full = engine
        .full_fdb(&host(host_name), net(network), None)
        .expect("known network");
    full.fdb_entries
        .0
        .iter()
        .flat_map(|(_, fdb)| fdb.ports.iter())
        .flat_map(|(vtep, list)| {
            list.iter()
                .map(move |e| format!("{vtep} {}", entry_text(*e)))
        })
        .collect()
}

fn ok(engine: &mut Engine, value: Value) -> Vec<Notification> {
    let text = value.to_string();
    run(engine, value).unwrap_or_else(|e| panic!("{text} refused: {e}"))
}

fn apply(engine: &mut Engine, value: Value) -> Vec<Notification> {
    let text = value.to_string();
    engine
        .apply(&event(value))
        .unwrap_or_else(|e| panic!("{text} refused: {e}"))
}

fn gateways(agent: &str, routes: Value) -> Value {
    json!({"op":"bgp_gateways","host":agent,"gateways":routes})
}

fn devices(agent: &str, routes: Value) -> Value {
    json!({"op":"bgp_devices","host":agent,"devices":routes})
}

/// Topology: vxlan N1 (1001) and N2 (1002), vlan N3 (5); host1 (192.0.2.1) and host2
/// (192.0.2.2) with an active port on N1 each, host1 also on N2. BGPVPN: agent bgp1 up hosting
/// speaker S1; l2 V1 (RT 65000:1, no vni) on N1 and l2 V2 (RT 65000:2, vni 1002) on N2, both
/// bound to S1; l3 V3 (RT 65000:3, vni 1001) unassociated and unbound. bgp1 learned a gateway
/// and a device per network: 203.0.113.1 (vni 1001, DEV1) and 203.0.113.2 (vni from V2, DEV2).
fn world() -> Engine {
    let mut engine = EngineBuilder::new()
        .extension(NAME, Bgpvpn::new())
        .expect("register bgpvpn")
        .build();
    let events = [
        json!({"op":"network","id":N1,"network_type":"vxlan","segmentation_id":1001}),
        json!({"op":"subnet","network_id":N1,"cidr":"10.0.1.0/24"}),
        json!({"op":"network","id":N2,"network_type":"vxlan","segmentation_id":1002}),
        json!({"op":"subnet","network_id":N2,"cidr":"10.0.2.0/24"}),
        json!({"op":"network","id":N3,"network_type":"vlan","segmentation_id":5,"physical_network":"physnet1"}),
        json!({"op":"agent","host":"host1","tunneling_ip":"192.0.2.1","tunnel_types":["vxlan"]}),
        json!({"op":"agent","host":"host2","tunneling_ip":"192.0.2.2","tunnel_types":["vxlan"]}),
        json!({"op":"port_create","id":P1,"network_id":N1,"mac":"fa:16:3e:00:00:01","fixed_ips":["10.0.1.11"],"host":"host1"}),
        json!({"op":"port_create","id":P2,"network_id":N1,"mac":"fa:16:3e:00:00:02","fixed_ips":["10.0.1.12"],"host":"host2"}),
        json!({"op":"port_create","id":P3,"network_id":N2,"mac":"fa:16:3e:00:00:03","fixed_ips":["10.0.2.13"],"host":"host1"}),
        json!({"op":"device_up","id":P1,"host":"host1"}),
        json!({"op":"device_up","id":P2,"host":"host2"}),
        json!({"op":"device_up","id":P3,"host":"host1"}),
    ];
    for e in events {
        apply(&mut engine, e);
    }
    let ops = [
        json!({"op":"bgp_agent","host":"bgp1"}),
        json!({"op":"bgp_speaker","id":S1,"agents":["bgp1"]}),
        json!({"op":"bgpvpn_create","id":V1,"type":"l2","route_targets":["65000:1"]}),
        json!({"op":"bgpvpn_create","id":V2,"type":"l2","route_targets":["65000:2"],"vni":1002}),
        json!({"op":"bgpvpn_create","id":V3,"type":"l3","route_targets":["65000:3"],"vni":1001}),
        json!({"op":"network_association_create","bgpvpn_id":V1,"network_id":N1}),
        json!({"op":"network_association_create","bgpvpn_id":V2,"network_id":N2}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V1}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V2}),
        gateways(
            "bgp1",
            json!([
                {"vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001},
                {"vtep":"203.0.113.2","route_targets":["65000:2"]},
            ]),
        ),
        devices(
            "bgp1",
            json!([
                {"mac":DEV1,"ip":"10.0.1.100","vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001},
                {"mac":DEV2,"ip":"10.0.2.100","vtep":"203.0.113.2","route_targets":["65000:2"]},
            ]),
        ),
    ];
    for o in ops {
        ok(&mut engine, o);
    }
    engine
}

/// Everything a refused op must leave alone: the extension's whole state, the engine's sequence,
/// every host's full FDB for every network and every host's desired table.
#[derive(Debug, PartialEq)]
struct Snapshot {
    extension: String,
    seq: u64,
    full_fdbs: Vec<(Host, NetworkId, FullFdb)>,
    tables: Vec<DesiredTable>,
}

fn snapshot(engine: &mut Engine) -> Snapshot {
    let extension = with_ext(engine, |ext| format!("{ext:?}"));
    let hosts = engine.hosts();
    let mut full_fdbs = Vec::new();
    for h in &hosts {
        for n in NETWORKS {
            if let Ok(full) = engine.full_fdb(h, net(n), None) {
                full_fdbs.push((h.clone(), net(n), full));
            }
        }
    }
    Snapshot {
        extension,
        seq: engine.seq(),
        full_fdbs,
        tables: hosts.iter().map(|h| engine.desired_table(h)).collect(),
    }
}

/// The engine under test and a control that receives the same ops except the refused ones:
/// after a refusal both must be identical, and a follow-up op must send the same notifications.
struct Twin {
    engine: Engine,
    control: Engine,
}

impl Twin {
    fn new() -> Self {
        Twin {
            engine: world(),
            control: world(),
        }
    }

    /// A valid BGPVPN op applied to both; returns the described notifications.
    fn ok(&mut self, value: Value) -> Vec<String> {
        let sent = ok(&mut self.engine, value.clone());
        assert_eq!(sent, ok(&mut self.control, value.clone()), "{value}");
        describe(&sent)
    }

    /// A valid engine event applied to both.
    fn apply(&mut self, value: Value) -> Vec<String> {
        let sent = apply(&mut self.engine, value.clone());
        assert_eq!(sent, apply(&mut self.control, value.clone()), "{value}");
        describe(&sent)
    }

    /// `value` is refused with `expected`, whose message is `message`, and changes nothing.
    fn refuse(&mut self, value: Value, expected: BgpvpnError, message: &str) {
        let before = snapshot(&mut self.engine);
        let (result, reports) = run_with_reports(&mut self.engine, value.clone());
        assert_eq!(result, Err(expected.clone()), "{value}");
        assert_eq!(expected.to_string(), message, "{value}");
        assert_eq!(reports, [], "a refused op reports nothing: {value}");
        assert_eq!(
            snapshot(&mut self.engine),
            before,
            "refused {value} changed state"
        );
        assert_eq!(
            before,
            snapshot(&mut self.control),
            "state differs from an engine that never saw {value}"
        );
    }
}

#[test]
fn the_fixture_has_entries_on_both_vxlan_networks() {
    let mut engine = world();
    assert_eq!(
        fdb(&engine, "host1", N1),
        [
            "192.0.2.2 flood",
            "192.0.2.2 fa:16:3e:00:00:02 10.0.1.12",
            "203.0.113.1 flood",
            "203.0.113.1 02:00:00:00:00:01 10.0.1.100",
        ]
    );
    assert_eq!(
        fdb(&engine, "host2", N2),
        [
            "192.0.2.1 flood",
            "192.0.2.1 fa:16:3e:00:00:03 10.0.2.13",
            "203.0.113.2 flood",
            "203.0.113.2 02:00:00:00:00:02 10.0.2.100"
        ]
    );
    assert_eq!(
        with_ext(&mut engine, |ext| ext.reports.clone()),
        BTreeSet::new()
    );
}

// ---- BGPVPNs ----

#[test]
fn a_duplicate_bgpvpn_id_is_refused_and_the_original_stays() {
    let mut twin = Twin::new();
    twin.refuse(
        json!({"op":"bgpvpn_create","id":V1,"type":"l3","name":"other","vni":1002}),
        BgpvpnError::BgpvpnExists(vpn_id(V1)),
        &format!("id: BGPVPN {V1} already exists"),
    );
    // V1 is still the l2 BGPVPN on N1: deleting it withdraws its entries.
    assert_eq!(
        twin.ok(json!({"op":"bgpvpn_delete","id":V1})),
        [
            "remove fanout bgpvpn N1 203.0.113.1 flood",
            "remove fanout bgpvpn N1 203.0.113.1 02:00:00:00:00:01 10.0.1.100",
        ]
    );
}

#[test]
fn an_unknown_bgpvpn_is_refused_by_every_op_that_names_one() {
    let mut twin = Twin::new();
    let message = format!("bgpvpn_id: no BGPVPN {V9}");
    for value in [
        json!({"op":"network_association_create","bgpvpn_id":V9,"network_id":N1}),
        json!({"op":"network_association_delete","bgpvpn_id":V9,"network_id":N1}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V9}),
        json!({"op":"bgp_speaker_remove_vpn","speaker_id":S1,"bgpvpn_id":V9}),
    ] {
        twin.refuse(
            value,
            BgpvpnError::UnknownBgpvpn {
                field: "bgpvpn_id",
                id: vpn_id(V9),
            },
            &message,
        );
    }
    // The refusals left nothing behind for V9: it can be created, bound and associated.
    assert_eq!(
        twin.ok(json!({"op":"bgpvpn_create","id":V9,"type":"l2","route_targets":["65000:1"]})),
        [] as [&str; 0]
    );
    twin.ok(json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V9}));
    // Same routes as V1 on N1: nothing new to send.
    assert_eq!(
        twin.ok(json!({"op":"network_association_create","bgpvpn_id":V9,"network_id":N1})),
        [] as [&str; 0]
    );
}

#[test]
fn an_unknown_bgpvpn_in_update_or_delete_names_the_id_field() {
    let mut engine = world();
    for value in [
        json!({"op":"bgpvpn_update","id":V9,"name":"x"}),
        json!({"op":"bgpvpn_delete","id":V9}),
    ] {
        let error = run(&mut engine, value).expect_err("unknown BGPVPN");
        assert_eq!(error.to_string(), format!("id: no BGPVPN {V9}"));
    }
}

#[test]
fn a_vni_out_of_range_is_refused_at_creation() {
    let mut twin = Twin::new();
    for vni in [0u64, 16_777_216, 1 << 40] {
        twin.refuse(
            json!({"op":"bgpvpn_create","id":V4,"type":"l2","vni":vni}),
            BgpvpnError::VniOutOfRange(vni),
            &format!("vni: {vni} is out of range (1..=16777215)"),
        );
    }
    // The id was not taken: the bounds themselves are accepted.
    twin.ok(json!({"op":"bgpvpn_create","id":V4,"type":"l2","vni":16_777_215}));
    twin.ok(json!({"op":"bgpvpn_create","id":V9,"type":"l2","vni":1}));
    let mut engine = twin.engine;
    assert_eq!(
        with_ext(&mut engine, |ext| (
            ext.vpn(vpn_id(V4)).and_then(|v| v.vni),
            ext.vpn(vpn_id(V9)).and_then(|v| v.vni)
        )),
        (Some(16_777_215), Some(1))
    );
}

#[test]
fn a_local_pref_out_of_range_is_refused_at_creation_and_update() {
    let mut twin = Twin::new();
    let message = "local_pref: 4294967296 is out of range (0..=4294967295)";
    twin.refuse(
        json!({"op":"bgpvpn_create","id":V4,"local_pref":4_294_967_296u64}),
        BgpvpnError::LocalPrefOutOfRange(4_294_967_296),
        message,
    );
    twin.refuse(
        json!({"op":"bgpvpn_update","id":V1,"name":"renamed","local_pref":4_294_967_296u64}),
        BgpvpnError::LocalPrefOutOfRange(4_294_967_296),
        message,
    );
    twin.ok(json!({"op":"bgpvpn_create","id":V4,"local_pref":4_294_967_295u64}));
    assert_eq!(
        twin.ok(json!({"op":"bgpvpn_update","id":V1,"local_pref":0})),
        [] as [&str; 0]
    );
    let mut engine = twin.engine;
    let (v1, v4) = with_ext(&mut engine, |ext| {
        (ext.vpn(vpn_id(V1)).cloned(), ext.vpn(vpn_id(V4)).cloned())
    });
    let v1 = v1.expect("V1");
    // The refused update changed neither the name nor anything else.
    assert_eq!((v1.name.as_str(), v1.local_pref), ("", Some(0)));
    assert_eq!(v4.expect("V4").local_pref, Some(u32::MAX));
}

#[test]
fn type_and_vni_are_immutable() {
    let mut twin = Twin::new();
    for (value, field) in [
        (json!({"op":"bgpvpn_update","id":V1,"type":"l3"}), "type"),
        (
            json!({"op":"bgpvpn_update","id":V1,"type":"l2","route_targets":["65000:9"]}),
            "type",
        ),
        (json!({"op":"bgpvpn_update","id":V1,"vni":1001}), "vni"),
        (json!({"op":"bgpvpn_update","id":V1,"vni":null}), "vni"),
        (
            json!({"op":"bgpvpn_update","id":V2,"vni":1002,"name":"same vni"}),
            "vni",
        ),
    ] {
        twin.refuse(
            value,
            BgpvpnError::Immutable(field),
            &format!("{field}: immutable once the BGPVPN exists"),
        );
    }
    // The route targets of the refused update were not applied: replacing them now withdraws.
    assert_eq!(
        twin.ok(json!({"op":"bgpvpn_update","id":V1,"route_targets":["65000:9"]})),
        [
            "remove fanout bgpvpn N1 203.0.113.1 flood",
            "remove fanout bgpvpn N1 203.0.113.1 02:00:00:00:00:01 10.0.1.100",
        ]
    );
    let mut engine = twin.engine;
    let (v1, v2) = with_ext(&mut engine, |ext| {
        (ext.vpn(vpn_id(V1)).cloned(), ext.vpn(vpn_id(V2)).cloned())
    });
    assert_eq!(v1.map(|v| (v.vpn_type, v.vni)), Some((VpnType::L2, None)));
    assert_eq!(
        v2.map(|v| (v.name, v.vni)),
        Some((String::new(), Some(1002)))
    );
}

#[test]
fn giving_type_as_null_is_refused_like_vni_null() {
    let mut engine = world();
    let error = run(
        &mut engine,
        json!({"op":"bgpvpn_update","id":V1,"type":null}),
    );
    assert_eq!(error, Err(BgpvpnError::Immutable("type")));
}

// ---- network associations ----

#[test]
fn an_unknown_network_is_refused() {
    let mut twin = Twin::new();
    twin.refuse(
        json!({"op":"network_association_create","bgpvpn_id":V1,"network_id":N4}),
        BgpvpnError::UnknownNetwork(net(N4)),
        &format!("network_id: no network {N4}"),
    );
    twin.apply(json!({"op":"network","id":N4,"network_type":"vxlan","segmentation_id":1010}));
    twin.ok(json!({"op":"network_association_create","bgpvpn_id":V1,"network_id":N4}));
    let mut engine = twin.engine;
    assert_eq!(
        with_ext(&mut engine, |ext| ext
            .vpn(vpn_id(V1))
            .map(|v| v.networks.clone())),
        Some([net(N1), net(N4)].into())
    );
}

#[test]
fn an_association_exists_once() {
    let mut twin = Twin::new();
    twin.refuse(
        json!({"op":"network_association_create","bgpvpn_id":V1,"network_id":N1}),
        BgpvpnError::AssociationExists {
            bgpvpn: vpn_id(V1),
            network: net(N1),
        },
        &format!("network_id: network {N1} is already associated with BGPVPN {V1}"),
    );
    assert_eq!(
        twin.ok(json!({"op":"network_association_delete","bgpvpn_id":V1,"network_id":N1})),
        [
            "remove fanout bgpvpn N1 203.0.113.1 flood",
            "remove fanout bgpvpn N1 203.0.113.1 02:00:00:00:00:01 10.0.1.100",
        ]
    );
    // The refused create did not record a second association.
    twin.refuse(
        json!({"op":"network_association_delete","bgpvpn_id":V1,"network_id":N1}),
        BgpvpnError::NoAssociation {
            bgpvpn: vpn_id(V1),
            network: net(N1),
        },
        &format!("network_id: network {N1} is not associated with BGPVPN {V1}"),
    );
}

#[test]
fn deleting_a_missing_association_is_refused() {
    let mut twin = Twin::new();
    for (bgpvpn, network) in [(V3, N1), (V1, N2), (V2, N1), (V1, N4)] {
        twin.refuse(
            json!({"op":"network_association_delete","bgpvpn_id":bgpvpn,"network_id":network}),
            BgpvpnError::NoAssociation {
                bgpvpn: vpn_id(bgpvpn),
                network: net(network),
            },
            &format!("network_id: network {network} is not associated with BGPVPN {bgpvpn}"),
        );
    }
    // V1 still has N1, and the l3 V3 can be associated with it.
    assert_eq!(
        twin.ok(json!({"op":"network_association_create","bgpvpn_id":V3,"network_id":N1})),
        [] as [&str; 0]
    );
    twin.ok(json!({"op":"network_association_delete","bgpvpn_id":V1,"network_id":N1}));
    assert_eq!(
        fdb(&twin.engine, "host1", N1),
        ["192.0.2.2 flood", "192.0.2.2 fa:16:3e:00:00:02 10.0.1.12"]
    );
}

#[test]
fn an_l2_bgpvpn_is_associated_with_vxlan_networks_only() {
    let mut twin = Twin::new();
    twin.apply(json!({"op":"network","id":N4,"network_type":"gre","segmentation_id":7}));
    twin.ok(json!({"op":"bgpvpn_create","id":V4,"type":"l2","route_targets":["65000:1"]}));
    for (bgpvpn, network, network_type) in [
        (V1, N3, NetworkType::Vlan),
        (V4, N3, NetworkType::Vlan),
        (V4, N4, NetworkType::Gre),
    ] {
        twin.refuse(
            json!({"op":"network_association_create","bgpvpn_id":bgpvpn,"network_id":network}),
            BgpvpnError::NotVxlan { network: net(network), network_type },
            &format!("network_id: an l2 BGPVPN bridges into VXLAN networks only (l2pop programs VXLAN tunnels), network {network} is {network_type}"),
        );
    }
    // An l3 BGPVPN may be associated with any network type; it contributes nothing.
    assert_eq!(
        twin.ok(json!({"op":"network_association_create","bgpvpn_id":V3,"network_id":N3})),
        [] as [&str; 0]
    );
    assert_eq!(
        twin.ok(json!({"op":"network_association_create","bgpvpn_id":V3,"network_id":N4})),
        [] as [&str; 0]
    );
    // The refused l2 association left V4 free to go to a vxlan network.
    twin.ok(json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V4}));
    assert_eq!(
        twin.ok(json!({"op":"network_association_create","bgpvpn_id":V4,"network_id":N1})),
        [] as [&str; 0]
    );
    let mut engine = twin.engine;
    let networks = with_ext(&mut engine, |ext| {
        [V1, V3, V4].map(|v| ext.vpn(vpn_id(v)).map(|vpn| vpn.networks.clone()))
    });
    assert_eq!(
        networks,
        [
            Some([net(N1)].into()),
            Some([net(N3), net(N4)].into()),
            Some([net(N1)].into())
        ]
    );
}

#[test]
fn an_l2_bgpvpn_with_a_vni_needs_the_same_segmentation_id() {
    let mut twin = Twin::new();
    twin.ok(
        json!({"op":"bgpvpn_create","id":V4,"type":"l2","route_targets":["65000:1"],"vni":1001}),
    );
    twin.refuse(
        json!({"op":"network_association_create","bgpvpn_id":V4,"network_id":N2}),
        BgpvpnError::VniMismatch { bgpvpn: vpn_id(V4), network: net(N2), segmentation_id: 1002, vni: 1001 },
        &format!("network_id: network {N2} has segmentation_id 1002 but BGPVPN {V4} has vni 1001: agents use the local segmentation id as the VNI toward every remote VTEP, so the site could never be reached"),
    );
    // An l3 BGPVPN with vni 1001 (V3) goes with any vxlan network and with a vlan one.
    for network in [N2, N1, N3] {
        assert_eq!(
            twin.ok(json!({"op":"network_association_create","bgpvpn_id":V3,"network_id":network})),
            [] as [&str; 0]
        );
    }
    // V4 was not put on N2: bound to S1, its routes reach N1 only (and they are V1's already).
    twin.ok(json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V4}));
    assert_eq!(
        twin.ok(json!({"op":"network_association_create","bgpvpn_id":V4,"network_id":N1})),
        [] as [&str; 0]
    );
    assert_eq!(
        twin.ok(json!({"op":"network_association_delete","bgpvpn_id":V4,"network_id":N1})),
        [] as [&str; 0]
    );
    twin.refuse(
        json!({"op":"network_association_delete","bgpvpn_id":V4,"network_id":N2}),
        BgpvpnError::NoAssociation {
            bgpvpn: vpn_id(V4),
            network: net(N2),
        },
        &format!("network_id: network {N2} is not associated with BGPVPN {V4}"),
    );
}

// ---- speakers and agents ----

#[test]
fn an_unknown_speaker_is_refused() {
    let mut twin = Twin::new();
    let message = format!("speaker_id: no BGP speaker {S9}");
    for value in [
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S9,"bgpvpn_id":V1}),
        json!({"op":"bgp_speaker_remove_vpn","speaker_id":S9,"bgpvpn_id":V1}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S9,"bgpvpn_id":V9}),
    ] {
        twin.refuse(
            value,
            BgpvpnError::UnknownSpeaker {
                field: "speaker_id",
                id: speaker_id(S9),
            },
            &message,
        );
    }
    // S9 did not come into existence bound to V1: binding it now is accepted.
    twin.ok(json!({"op":"bgp_speaker","id":S9,"agents":["bgp1"]}));
    assert_eq!(
        twin.ok(json!({"op":"bgp_speaker_add_vpn","speaker_id":S9,"bgpvpn_id":V1})),
        [] as [&str; 0]
    );
    // Deleting S1 leaves V1 counting through S9, and V2 with no speaker.
    assert_eq!(
        twin.ok(json!({"op":"bgp_speaker_delete","id":S1})),
        [
            "remove fanout bgpvpn N2 203.0.113.2 flood",
            "remove fanout bgpvpn N2 203.0.113.2 02:00:00:00:00:02 10.0.2.100",
        ]
    );
}

#[test]
fn an_unknown_speaker_in_speaker_delete_names_the_id_field() {
    let mut engine = world();
    let error =
        run(&mut engine, json!({"op":"bgp_speaker_delete","id":S9})).expect_err("unknown speaker");
    assert_eq!(error.to_string(), format!("id: no BGP speaker {S9}"));
}

#[test]
fn a_speaker_binds_a_bgpvpn_once() {
    let mut twin = Twin::new();
    twin.refuse(
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V1}),
        BgpvpnError::BindingExists {
            speaker: speaker_id(S1),
            bgpvpn: vpn_id(V1),
        },
        &format!("bgpvpn_id: BGPVPN {V1} is already bound to BGP speaker {S1}"),
    );
    assert_eq!(
        twin.ok(json!({"op":"bgp_speaker_remove_vpn","speaker_id":S1,"bgpvpn_id":V1})),
        [
            "remove fanout bgpvpn N1 203.0.113.1 flood",
            "remove fanout bgpvpn N1 203.0.113.1 02:00:00:00:00:01 10.0.1.100",
        ]
    );
    // One binding, one unbinding: a second unbinding finds none.
    twin.refuse(
        json!({"op":"bgp_speaker_remove_vpn","speaker_id":S1,"bgpvpn_id":V1}),
        BgpvpnError::NoBinding {
            speaker: speaker_id(S1),
            bgpvpn: vpn_id(V1),
        },
        &format!("bgpvpn_id: BGPVPN {V1} is not bound to BGP speaker {S1}"),
    );
}

#[test]
fn unbinding_a_missing_binding_is_refused() {
    let mut twin = Twin::new();
    twin.ok(json!({"op":"bgp_speaker","id":S2,"agents":["bgp1"]}));
    for (speaker, bgpvpn) in [(S1, V3), (S2, V1)] {
        twin.refuse(
            json!({"op":"bgp_speaker_remove_vpn","speaker_id":speaker,"bgpvpn_id":bgpvpn}),
            BgpvpnError::NoBinding {
                speaker: speaker_id(speaker),
                bgpvpn: vpn_id(bgpvpn),
            },
            &format!("bgpvpn_id: BGPVPN {bgpvpn} is not bound to BGP speaker {speaker}"),
        );
    }
    // S1 still carries V1: unbinding it from S1 withdraws.
    assert_eq!(
        twin.ok(json!({"op":"bgp_speaker_remove_vpn","speaker_id":S1,"bgpvpn_id":V1}))
            .len(),
        2
    );
    let mut engine = twin.engine;
    let speakers = with_ext(&mut engine, |ext| {
        [V1, V3].map(|v| ext.vpn(vpn_id(v)).map(|vpn| vpn.speakers.clone()))
    });
    assert_eq!(speakers, [Some(BTreeSet::new()), Some(BTreeSet::new())]);
}

#[test]
fn routes_from_an_agent_not_reported_yet_are_refused() {
    let mut twin = Twin::new();
    // Speakers may name agents that have not reported; their routes may not arrive before.
    twin.ok(json!({"op":"bgp_speaker","id":S1,"agents":["bgp1","bgp2"]}));
    let gateway = gateways(
        "bgp2",
        json!([{"vtep":"203.0.113.5","route_targets":["65000:1"],"vni":1001}]),
    );
    let device = devices(
        "bgp2",
        json!([{"mac":DEV3,"ip":"10.0.1.103","vtep":"203.0.113.5","route_targets":["65000:1"],"vni":1001}]),
    );
    for value in [
        gateway.clone(),
        device.clone(),
        gateways("bgp2", json!([])),
        devices("bgp9", json!([])),
    ] {
        let agent = value["host"].as_str().expect("host").to_owned();
        twin.refuse(
            value,
            BgpvpnError::UnknownAgent(host(&agent)),
            &format!("host: no BGP agent on host {agent}"),
        );
    }
    // Nothing was stored for bgp2: its report brings no entry; its routes then count.
    assert_eq!(
        twin.ok(json!({"op":"bgp_agent","host":"bgp2"})),
        [] as [&str; 0]
    );
    assert_eq!(twin.ok(gateway), ["add fanout bgpvpn N1 203.0.113.5 flood"]);
    assert_eq!(
        twin.ok(device),
        ["add fanout bgpvpn N1 203.0.113.5 02:00:00:00:00:03 10.0.1.103"]
    );
}

// ---- learned routes ----

/// A valid gateway route for V1 on N1, new to the fixture.
fn new_gateway() -> Value {
    json!({"vtep":"203.0.113.3","route_targets":["65000:1"],"vni":1001})
}

/// A valid device route for V1 on N1, new to the fixture.
fn new_device() -> Value {
    json!({"mac":DEV3,"ip":"10.0.1.103","vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001})
}

#[test]
fn an_invalid_gateway_refuses_the_whole_batch() {
    let mut twin = Twin::new();
    let withdraw =
        json!({"vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001,"withdrawn":true});
    let cases = [
        (
            json!({"vtep":"0.0.0.0"}),
            BgpvpnError::InvalidVtep(ip("0.0.0.0")),
            "vtep: 0.0.0.0 is not a unicast address",
        ),
        (
            json!({"vtep":"224.0.0.1"}),
            BgpvpnError::InvalidVtep(ip("224.0.0.1")),
            "vtep: 224.0.0.1 is not a unicast address",
        ),
        (
            json!({"vtep":"255.255.255.255"}),
            BgpvpnError::InvalidVtep(ip("255.255.255.255")),
            "vtep: 255.255.255.255 is not a unicast address",
        ),
        (
            json!({"vtep":"::"}),
            BgpvpnError::InvalidVtep(ip("::")),
            "vtep: :: is not a unicast address",
        ),
        (
            json!({"vtep":"ff02::1"}),
            BgpvpnError::InvalidVtep(ip("ff02::1")),
            "vtep: ff02::1 is not a unicast address",
        ),
        (
            json!({"vtep":"203.0.113.4","vni":0}),
            BgpvpnError::VniOutOfRange(0),
            "vni: 0 is out of range (1..=16777215)",
        ),
        (
            json!({"vtep":"203.0.113.4","vni":16_777_216}),
            BgpvpnError::VniOutOfRange(16_777_216),
            "vni: 16777216 is out of range (1..=16777215)",
        ),
    ];
    for (invalid, expected, message) in cases {
        // Valid routes before and after the invalid one, a withdraw among them.
        let batch = json!([new_gateway(), withdraw.clone(), invalid, {"vtep":"203.0.113.6","route_targets":["65000:1"],"vni":1001}]);
        twin.refuse(gateways("bgp1", batch), expected, message);
    }
    assert_eq!(
        twin.ok(gateways("bgp1", json!([new_gateway(), withdraw]))),
        [
            "remove fanout bgpvpn N1 203.0.113.1 flood",
            "add fanout bgpvpn N1 203.0.113.3 flood"
        ]
    );
}

#[test]
fn an_invalid_device_refuses_the_whole_batch() {
    let mut twin = Twin::new();
    let withdraw = json!({"mac":DEV1,"ip":"10.0.1.100","vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001,"withdrawn":true});
    let device = |mac: &str, ip: &str, vtep: &str| json!({"mac":mac,"ip":ip,"vtep":vtep,"route_targets":["65000:1"],"vni":1001});
    let cases = [
        (
            device(DEV2, "10.0.1.102", "0.0.0.0"),
            BgpvpnError::InvalidVtep(ip("0.0.0.0")),
            "vtep: 0.0.0.0 is not a unicast address".to_owned(),
        ),
        (
            device(DEV2, "10.0.1.102", "224.0.0.1"),
            BgpvpnError::InvalidVtep(ip("224.0.0.1")),
            "vtep: 224.0.0.1 is not a unicast address".to_owned(),
        ),
        (
            device("01:00:5e:00:00:01", "10.0.1.102", "203.0.113.1"),
            BgpvpnError::InvalidMac(l2pop_model::ModelError::MulticastMac(mac(
                "01:00:5e:00:00:01",
            ))),
            "mac: MAC address 01:00:5e:00:00:01 is not a unicast address".to_owned(),
        ),
        (
            device("ff:ff:ff:ff:ff:ff", "10.0.1.102", "203.0.113.1"),
            BgpvpnError::InvalidMac(l2pop_model::ModelError::MulticastMac(mac(
                "ff:ff:ff:ff:ff:ff",
            ))),
            "mac: MAC address ff:ff:ff:ff:ff:ff is not a unicast address".to_owned(),
        ),
        (
            device("00:00:00:00:00:00", "10.0.1.102", "203.0.113.1"),
            BgpvpnError::InvalidMac(l2pop_model::ModelError::ZeroMac),
            "mac: MAC address 00:00:00:00:00:00 is reserved for the flooding entry".to_owned(),
        ),
        (
            device(DEV2, "0.0.0.0", "203.0.113.1"),
            BgpvpnError::InvalidDeviceIp {
                mac: mac(DEV2),
                ip: ip("0.0.0.0"),
            },
            format!("ip: 0.0.0.0 of device {DEV2} is a multicast or unspecified address"),
        ),
        (
            device(DEV2, "224.0.0.1", "203.0.113.1"),
            BgpvpnError::InvalidDeviceIp {
                mac: mac(DEV2),
                ip: ip("224.0.0.1"),
            },
            format!("ip: 224.0.0.1 of device {DEV2} is a multicast or unspecified address"),
        ),
        (
            device(DEV2, "ff02::1", "203.0.113.1"),
            BgpvpnError::InvalidDeviceIp {
                mac: mac(DEV2),
                ip: ip("ff02::1"),
            },
            format!("ip: ff02::1 of device {DEV2} is a multicast or unspecified address"),
        ),
        (
            device(DEV2, "::", "203.0.113.1"),
            BgpvpnError::InvalidDeviceIp {
                mac: mac(DEV2),
                ip: ip("::"),
            },
            format!("ip: :: of device {DEV2} is a multicast or unspecified address"),
        ),
        (
            json!({"mac":DEV2,"vtep":"203.0.113.1","vni":0}),
            BgpvpnError::VniOutOfRange(0),
            "vni: 0 is out of range (1..=16777215)".to_owned(),
        ),
    ];
    for (invalid, expected, message) in cases {
        let batch = json!([
            new_device(),
            withdraw.clone(),
            invalid,
            device("02:00:00:00:00:07", "10.0.1.107", "203.0.113.1")
        ]);
        twin.refuse(devices("bgp1", batch), expected, &message);
    }
    assert_eq!(
        twin.ok(devices("bgp1", json!([new_device(), withdraw]))),
        [
            "remove fanout bgpvpn N1 203.0.113.1 02:00:00:00:00:01 10.0.1.100",
            "add fanout bgpvpn N1 203.0.113.1 02:00:00:00:00:03 10.0.1.103",
        ]
    );
}

// ---- the vocabulary ----

#[test]
fn ops_refuse_unknown_fields() {
    let bodies = [
        json!({"op":"bgpvpn_create","id":V4}),
        json!({"op":"bgpvpn_update","id":V1}),
        json!({"op":"bgpvpn_delete","id":V1}),
        json!({"op":"network_association_create","bgpvpn_id":V1,"network_id":N1}),
        json!({"op":"network_association_delete","bgpvpn_id":V1,"network_id":N1}),
        json!({"op":"bgp_agent","host":"bgp1"}),
        json!({"op":"bgp_speaker","id":S1}),
        json!({"op":"bgp_speaker_delete","id":S1}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V1}),
        json!({"op":"bgp_speaker_remove_vpn","speaker_id":S1,"bgpvpn_id":V1}),
        gateways("bgp1", json!([])),
        devices("bgp1", json!([])),
        json!({"op":"bgp_end_of_rib","host":"bgp1"}),
    ];
    let names: Vec<&str> = bodies
        .iter()
        .map(|b| b["op"].as_str().expect("op"))
        .collect();
    assert_eq!(names, BgpvpnOp::NAMES, "one body per op of the vocabulary");
    for body in bodies {
        serde_json::from_value::<BgpvpnOp>(body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let mut bad = body.clone();
        bad["route_target"] = json!(["65000:1"]);
        let error = serde_json::from_value::<BgpvpnOp>(bad)
            .expect_err("unknown field accepted")
            .to_string();
        assert!(
            error.contains("unknown field `route_target`"),
            "{body}: {error}"
        );
    }
    // Inside route items too.
    for (body, field) in [
        (
            gateways(
                "bgp1",
                json!([{"vtep":"203.0.113.1","nexthop":"192.0.2.9"}]),
            ),
            "nexthop",
        ),
        (
            devices(
                "bgp1",
                json!([{"mac":DEV1,"vtep":"203.0.113.1","label":1001}]),
            ),
            "label",
        ),
    ] {
        let error = serde_json::from_value::<BgpvpnOp>(body)
            .expect_err("unknown field accepted")
            .to_string();
        assert!(
            error.contains(&format!("unknown field `{field}`")),
            "{error}"
        );
    }
    let error = serde_json::from_value::<BgpvpnOp>(json!({"op":"bgpvpn_frobnicate","id":V1}))
        .expect_err("unknown op accepted")
        .to_string();
    assert!(
        error.contains("unknown variant `bgpvpn_frobnicate`"),
        "{error}"
    );
    // An update giving `vni` or `type` parses: the refusal is the extension's, naming the field.
    for body in [
        json!({"op":"bgpvpn_update","id":V1,"vni":5}),
        json!({"op":"bgpvpn_update","id":V1,"type":"l2"}),
    ] {
        serde_json::from_value::<BgpvpnOp>(body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

// ---- network deletion ----

#[test]
fn a_deleted_network_takes_its_associations_and_entries_with_it() {
    let mut engine = world();
    apply(
        &mut engine,
        json!({"op":"network","id":N4,"network_type":"vxlan","segmentation_id":1004}),
    );
    for o in [
        json!({"op":"bgpvpn_create","id":V4,"type":"l2","route_targets":["65000:4"],"vni":1004}),
        json!({"op":"network_association_create","bgpvpn_id":V4,"network_id":N4}),
        json!({"op":"network_association_create","bgpvpn_id":V3,"network_id":N4}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V4}),
        gateways(
            "bgp1",
            json!([{"vtep":"203.0.113.4","route_targets":["65000:4"]}]),
        ),
        devices(
            "bgp1",
            json!([{"mac":"02:00:00:00:00:04","ip":"10.0.4.100","vtep":"203.0.113.4","route_targets":["65000:4"]}]),
        ),
    ] {
        ok(&mut engine, o);
    }
    assert!(with_ext(&mut engine, |ext| ext
        .announced
        .contains_key(&net(N4))));
    // A network with ports cannot go, and keeps its associations.
    let refused = engine.apply(&event(json!({"op":"network_delete","id":N1})));
    assert!(
        matches!(refused, Err(EventError::NetworkInUse { .. })),
        "{refused:?}"
    );
    assert_eq!(
        with_ext(&mut engine, |ext| ext
            .vpn(vpn_id(V1))
            .map(|v| v.networks.clone())),
        Some([net(N1)].into())
    );

    assert_eq!(
        apply(&mut engine, json!({"op":"network_delete","id":N4})),
        []
    );
    let (v3, v4, indexed, announced) = with_ext(&mut engine, |ext| {
        (
            ext.vpn(vpn_id(V3)).map(|v| v.networks.clone()),
            ext.vpn(vpn_id(V4)).map(|v| v.networks.clone()),
            ext.network_vpns.contains_key(&net(N4)),
            ext.announced.contains_key(&net(N4)),
        )
    });
    assert_eq!(
        (v3, v4, indexed, announced),
        (Some(BTreeSet::new()), Some(BTreeSet::new()), false, false)
    );

    // The same id again: it starts clean.
    apply(
        &mut engine,
        json!({"op":"network","id":N4,"network_type":"vxlan","segmentation_id":1004}),
    );
    apply(
        &mut engine,
        json!({"op":"subnet","network_id":N4,"cidr":"10.0.4.0/24"}),
    );
    apply(
        &mut engine,
        json!({"op":"port_create","id":P4,"network_id":N4,"mac":"fa:16:3e:00:00:04","fixed_ips":["10.0.4.14"],"host":"host1"}),
    );
    apply(
        &mut engine,
        json!({"op":"port_create","id":P5,"network_id":N4,"mac":"fa:16:3e:00:00:05","fixed_ips":["10.0.4.15"],"host":"host2"}),
    );
    // host1 alone on N4: its contribution goes out, and no host cast: its full FDB is empty,
    // without the old network's BGPVPN entries.
    assert_eq!(
        describe(&apply(
            &mut engine,
            json!({"op":"device_up","id":P4,"host":"host1"})
        )),
        [
            "add fanout native N4 192.0.2.1 flood",
            "add fanout native N4 192.0.2.1 fa:16:3e:00:00:04 10.0.4.14",
        ]
    );
    assert_eq!(
        describe(&apply(
            &mut engine,
            json!({"op":"device_up","id":P5,"host":"host2"})
        )),
        [
            "add fanout native N4 192.0.2.2 flood",
            "add fanout native N4 192.0.2.2 fa:16:3e:00:00:05 10.0.4.15",
            "add host2 native N4 192.0.2.1 flood",
            "add host2 native N4 192.0.2.1 fa:16:3e:00:00:04 10.0.4.14",
        ]
    );
    assert_eq!(
        fdb(&engine, "host1", N4),
        ["192.0.2.2 flood", "192.0.2.2 fa:16:3e:00:00:05 10.0.4.15"]
    );
    for h in ["host1", "host2"] {
        let table = engine.desired_table(&host(h));
        let n4 = table
            .networks
            .iter()
            .find(|n| n.network_id == net(N4))
            .expect("on N4");
        assert!(
            n4.vteps
                .iter()
                .flat_map(|(_, list)| list)
                .all(|(_, p)| !matches!(p, Provenance::Extension(_))),
            "{h}: {n4:?}"
        );
    }
    // The associations are gone (not merely hidden); the routes were kept and count again once
    // V4 is associated with the new network.
    assert_eq!(
        run(
            &mut engine,
            json!({"op":"network_association_delete","bgpvpn_id":V4,"network_id":N4})
        ),
        Err(BgpvpnError::NoAssociation {
            bgpvpn: vpn_id(V4),
            network: net(N4)
        })
    );
    assert_eq!(
        describe(&ok(
            &mut engine,
            json!({"op":"network_association_create","bgpvpn_id":V4,"network_id":N4})
        )),
        [
            "add fanout bgpvpn N4 203.0.113.4 flood",
            "add fanout bgpvpn N4 203.0.113.4 02:00:00:00:00:04 10.0.4.100",
        ]
    );
}

// ---- reports ----

#[test]
fn a_vni_mismatch_is_reported_once_per_op() {
    let mut engine = world();
    let mismatch = gateways(
        "bgp1",
        json!([{"vtep":"203.0.113.9","route_targets":["65000:1"],"vni":1002}]),
    );
    let report = BgpvpnReport::VniMismatch {
        bgpvpn: vpn_id(V1),
        network: net(N1),
        vtep: ip("203.0.113.9"),
        mac: None,
        route_vni: Some(1002),
        segmentation_id: Some(1001),
    };
    let (sent, reports) = run_with_reports(&mut engine, mismatch.clone());
    assert_eq!(sent, Ok(vec![]));
    assert_eq!(reports, vec![report.clone()]);
    // Taken: an op that does not look at the route reports nothing.
    let (sent, reports) = run_with_reports(
        &mut engine,
        json!({"op":"bgp_speaker","id":S2,"agents":["bgp1"]}),
    );
    assert_eq!((sent, reports), (Ok(vec![]), vec![]));
    let (_, reports) = run_with_reports(
        &mut engine,
        gateways(
            "bgp1",
            json!([{"vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001}]),
        ),
    );
    assert_eq!(reports, []);
    // An op that recomputes N1 meets the route again: reported again, once.
    let (sent, reports) = run_with_reports(
        &mut engine,
        json!({"op":"bgpvpn_update","id":V1,"name":"v1"}),
    );
    assert_eq!((sent, reports), (Ok(vec![]), vec![report.clone()]));
    // A second agent learning the same route: still one report for the op.
    ok(&mut engine, json!({"op":"bgp_agent","host":"bgp2"}));
    ok(
        &mut engine,
        json!({"op":"bgp_speaker","id":S1,"agents":["bgp1","bgp2"]}),
    );
    let (sent, reports) = run_with_reports(&mut engine, {
        let mut from_bgp2 = mismatch;
        from_bgp2["host"] = json!("bgp2");
        from_bgp2
    });
    assert_eq!((sent, reports), (Ok(vec![]), vec![report]));
    // A refused op reports nothing.
    let (sent, reports) = run_with_reports(
        &mut engine,
        gateways(
            "bgp1",
            json!([{"vtep":"224.0.0.9","route_targets":["65000:1"],"vni":1002}]),
        ),
    );
    assert!(sent.is_err());
    assert_eq!(reports, []);
}

#[test]
fn a_route_without_any_vni_is_reported_with_route_vni_none() {
    let mut engine = world();
    // Neither V1 nor the routes have a VNI: the network cannot be told, nothing is installed.
    let (sent, reports) = run_with_reports(
        &mut engine,
        devices(
            "bgp1",
            json!([{"mac":DEV3,"ip":"10.0.1.103","vtep":"203.0.113.7","route_targets":["65000:1"]}]),
        ),
    );
    assert_eq!(sent, Ok(vec![]));
    assert_eq!(
        reports,
        [BgpvpnReport::VniMismatch {
            bgpvpn: vpn_id(V1),
            network: net(N1),
            vtep: ip("203.0.113.7"),
            mac: Some(mac(DEV3)),
            route_vni: None,
            segmentation_id: Some(1001),
        }]
    );
    let (sent, reports) = run_with_reports(
        &mut engine,
        gateways(
            "bgp1",
            json!([{"vtep":"203.0.113.7","route_targets":["65000:1"]}]),
        ),
    );
    assert_eq!(sent, Ok(vec![]));
    assert_eq!(
        reports,
        [BgpvpnReport::VniMismatch {
            bgpvpn: vpn_id(V1),
            network: net(N1),
            vtep: ip("203.0.113.7"),
            mac: None,
            route_vni: None,
            segmentation_id: Some(1001),
        }]
    );
    // The report serializes tagged, for the operator's log.
    let line = serde_json::to_value(&reports[0]).expect("report JSON");
    assert_eq!(line["report"], "vni_mismatch");
    assert_eq!(line["route_vni"], Value::Null);
    assert_eq!(
        fdb(&engine, "host1", N1)
            .iter()
            .filter(|l| l.starts_with("203.0.113.7"))
            .count(),
        0
    );
}

// ---- the Vpn accessors ----

#[test]
fn vpn_accessors_follow_create_update_and_delete() {
    let mut engine = world();
    ok(
        &mut engine,
        json!({"op":"bgpvpn_create","id":V4,"project_id":"p1","name":"four","type":"l2",
            "route_targets":["65000:4","65000:4"],"import_targets":["65000:40","64512:7"],
            "export_targets":["65000:41"],"route_distinguishers":["192.0.2.1:4","65000:4"],
            "vni":1004,"local_pref":100}),
    );
    let created = Vpn {
        id: vpn_id(V4),
        project_id: "p1".to_owned(),
        name: "four".to_owned(),
        vpn_type: VpnType::L2,
        route_targets: rts(["65000:4"]),
        import_targets: rts(["64512:7", "65000:40"]),
        export_targets: rts(["65000:41"]),
        route_distinguishers: vec![rt("192.0.2.1:4"), rt("65000:4")],
        vni: Some(1004),
        local_pref: Some(100),
        networks: BTreeSet::new(),
        speakers: BTreeSet::new(),
    };
    let (vpn, ids) = with_ext(&mut engine, |ext| {
        (
            ext.vpn(vpn_id(V4)).cloned(),
            ext.vpns().map(|v| v.id).collect::<Vec<_>>(),
        )
    });
    assert_eq!(vpn.as_ref(), Some(&created));
    assert_eq!(ids, [V1, V2, V3, V4].map(vpn_id));
    // The import set is route_targets ∪ import_targets; export targets are not imported.
    let v4 = vpn.expect("V4");
    for (target, imported) in [
        ("65000:4", true),
        ("65000:40", true),
        ("64512:7", true),
        ("65000:41", false),
        ("65000:1", false),
    ] {
        assert_eq!(v4.imports(&rts([target])), imported, "{target}");
    }
    assert!(v4.imports(&rts(["65000:1", "64512:7"])));
    assert!(!v4.imports(&BTreeSet::new()));

    // Associations and bindings show in the accessors.
    apply(
        &mut engine,
        json!({"op":"network","id":N4,"network_type":"vxlan","segmentation_id":1004}),
    );
    ok(
        &mut engine,
        json!({"op":"network_association_create","bgpvpn_id":V4,"network_id":N4}),
    );
    ok(
        &mut engine,
        json!({"op":"bgp_speaker_add_vpn","speaker_id":S1,"bgpvpn_id":V4}),
    );
    // An update changes what it names, and only that.
    ok(
        &mut engine,
        json!({"op":"bgpvpn_update","id":V4,"name":"four bis","route_targets":[],"import_targets":["65000:44"],"local_pref":null}),
    );
    let updated = with_ext(&mut engine, |ext| ext.vpn(vpn_id(V4)).cloned()).expect("V4");
    assert_eq!(
        updated,
        Vpn {
            name: "four bis".to_owned(),
            route_targets: BTreeSet::new(),
            import_targets: rts(["65000:44"]),
            local_pref: None,
            networks: [net(N4)].into(),
            speakers: [speaker_id(S1)].into(),
            ..created.clone()
        }
    );
    assert!(updated.imports(&rts(["65000:44"])));
    assert!(!updated.imports(&rts(["65000:4"])));
    ok(
        &mut engine,
        json!({"op":"bgpvpn_update","id":V4,"export_targets":[],"route_distinguishers":[]}),
    );
    let updated = with_ext(&mut engine, |ext| ext.vpn(vpn_id(V4)).cloned()).expect("V4");
    assert_eq!(
        (
            updated.export_targets,
            updated.route_distinguishers,
            updated.name
        ),
        (BTreeSet::new(), vec![], "four bis".to_owned())
    );

    // Delete: gone from both accessors, and from its speaker; the id can be reused, clean.
    ok(&mut engine, json!({"op":"bgpvpn_delete","id":V4}));
    let (vpn, ids, bound) = with_ext(&mut engine, |ext| {
        (
            ext.vpn(vpn_id(V4)).cloned(),
            ext.vpns().map(|v| v.id).collect::<Vec<_>>(),
            ext.speakers[&speaker_id(S1)].vpns.clone(),
        )
    });
    assert_eq!((vpn, ids), (None, [V1, V2, V3].map(vpn_id).to_vec()));
    assert_eq!(bound, [vpn_id(V1), vpn_id(V2)].into());
    ok(&mut engine, json!({"op":"bgpvpn_create","id":V4}));
    let recreated = with_ext(&mut engine, |ext| ext.vpn(vpn_id(V4)).cloned()).expect("V4");
    assert_eq!(
        (recreated.vpn_type, recreated.networks, recreated.speakers),
        (VpnType::L3, BTreeSet::new(), BTreeSet::new())
    );
}

#[path = "graceful_tests.rs"]
mod graceful;
