//! The convergence invariant with the BGPVPN extension registered: random sequences of native
//! port events mixed with BGPVPN operations — associations, speaker bindings, RT updates, BGPVPN
//! deletion, BGP agents going down, coming back and restarting (graceful restarts, whose routes
//! stay stale until re-learned or purged by End-of-RIB, among them), several agents learning the
//! same routes, MAC moves with sequence numbers, MACs colliding with native ports. After every step
//! every host's table (built from the notifications) equals its full FDB, a refused step
//! changes nothing, and a graceful restart that leaves the agent's state as it was sends nothing.
//!
//! Gateway and device VTEPs are drawn from the hosts' VTEPs (192.0.2.1..3) as well as from
//! 203.0.113.x, and device IPs from the ports' IPs as well as from their own range, so that a host
//! and a gateway share a VTEP and a device takes a port's IP; a rare step panics inside the
//! extension's update after it has applied an op (issue 9's three findings).

#![allow(clippy::unwrap_used)]

use l2pop_bgpvpn::{AgentState, Bgpvpn, BgpvpnOp};
use l2pop_engine::convergence::{Hosts, observable};
use l2pop_engine::{Engine, EngineBuilder, Event};
use proptest::prelude::*;
use serde_json::{Value, json};

const NETS: [&str; 3] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
];
const VPNS: [&str; 3] = [
    "66666666-6666-4666-8666-666666666601",
    "66666666-6666-4666-8666-666666666602",
    "66666666-6666-4666-8666-666666666603",
];
const SPEAKERS: [&str; 2] = [
    "55555555-5555-4555-8555-555555555501",
    "55555555-5555-4555-8555-555555555502",
];
const BGP_AGENTS: [&str; 2] = ["bgp1", "bgp2"];
const RTS: [&str; 3] = ["65000:1", "65000:2", "65000:3"];

fn port_id(i: u8) -> String {
    format!("aaaaaaaa-0000-4000-8000-0000000000{i:02}")
}

/// Device MACs; index 4 is also the MAC of native port 0 (a collision).
fn device_mac(i: u8) -> String {
    if i == 4 {
        "fa:16:3e:00:00:00".to_owned()
    } else {
        format!("02:00:00:00:00:0{i}")
    }
}

fn subset<T: Clone + std::fmt::Debug + 'static>(
    items: &'static [T],
) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items.to_vec(), 0..=items.len())
}

/// One step: an engine event or a BGPVPN op, as vocabulary JSON.
#[derive(Debug, Clone)]
enum Step {
    Engine(Value),
    Bgpvpn(Value),
    /// device_up / device_down of the n-th existing port from its binding host.
    Bound {
        port: u8,
        up: bool,
    },
    /// A BGPVPN op applied inside an update that then panics: a half-applied update.
    Panicking(Value),
}

/// VTEPs 1..=3 are the hosts' own, 4..=6 are 203.0.113.1..=3.
fn route_vtep(v: u8) -> String {
    if v <= 3 {
        format!("192.0.2.{v}")
    } else {
        format!("203.0.113.{}", v - 3)
    }
}

/// Device IPs: 10..=15 are the ports' IPs on network 1 (`port_create`), 200.. are not.
fn device_ip(i: u8) -> String {
    format!("10.0.1.{i}")
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let port_create = (0u8..6, 0usize..2, 0u8..3).prop_map(|(p, n, h)| {
        Step::Engine(json!({"op":"port_create","id":port_id(p),"network_id":NETS[n],
            "mac":format!("fa:16:3e:00:00:{p:02x}"),"fixed_ips":[format!("10.0.{}.{}", n + 1, p + 10)],
            "device_owner":"compute:nova","host":format!("host{}", h + 1)}))
    });
    let port_delete =
        (0u8..6).prop_map(|p| Step::Engine(json!({"op":"port_delete","id":port_id(p)})));
    let bound =
        (0u8..6, proptest::bool::weighted(0.7)).prop_map(|(port, up)| Step::Bound { port, up });
    let assoc = (0usize..3, 0usize..3, any::<bool>()).prop_map(|(v, n, create)| {
        let op = if create {
            "network_association_create"
        } else {
            "network_association_delete"
        };
        Step::Bgpvpn(json!({"op":op,"bgpvpn_id":VPNS[v],"network_id":NETS[n]}))
    });
    let binding = (0usize..2, 0usize..3, proptest::bool::weighted(0.7)).prop_map(|(s, v, add)| {
        let op = if add {
            "bgp_speaker_add_vpn"
        } else {
            "bgp_speaker_remove_vpn"
        };
        Step::Bgpvpn(json!({"op":op,"speaker_id":SPEAKERS[s],"bgpvpn_id":VPNS[v]}))
    });
    let speaker = (0usize..2, subset(&BGP_AGENTS)).prop_map(|(s, agents)| {
        Step::Bgpvpn(json!({"op":"bgp_speaker","id":SPEAKERS[s],"agents":agents}))
    });
    let agent = (0usize..2, proptest::bool::weighted(0.8), proptest::bool::weighted(0.8), proptest::bool::weighted(0.2), any::<bool>())
        .prop_map(|(a, admin, alive, start, graceful)| {
            Step::Bgpvpn(json!({"op":"bgp_agent","host":BGP_AGENTS[a],"admin_state_up":admin,"alive":alive,"start_flag":start,"graceful_restart":graceful}))
        });
    // End-of-RIB after a graceful restart; bgp9 is unknown (refused).
    let end_of_rib = prop_oneof![Just("bgp1"), Just("bgp2"), Just("bgp9")]
        .prop_map(|host| Step::Bgpvpn(json!({"op":"bgp_end_of_rib","host":host})));
    let vni = proptest::option::of(prop_oneof![Just(1001u32), Just(1002u32)]);
    let gateways = (0usize..2, proptest::collection::vec((1u8..7, subset(&RTS), vni.clone(), proptest::bool::weighted(0.25)), 1..3))
        .prop_map(|(a, routes)| {
            let gateways: Vec<Value> = routes
                .into_iter()
                .map(|(v, rts, vni, withdrawn)| json!({"vtep":route_vtep(v),"route_targets":rts,"vni":vni,"withdrawn":withdrawn}))
                .collect();
            Step::Bgpvpn(json!({"op":"bgp_gateways","host":BGP_AGENTS[a],"gateways":gateways}))
        });
    let devices = (
        0usize..2,
        proptest::collection::vec(
            (
                0u8..5,
                proptest::option::of(prop_oneof![10u8..16, 200u8..203]),
                1u8..7,
                subset(&RTS),
                vni,
                proptest::option::of(0u32..3),
                proptest::bool::weighted(0.25),
            ),
            1..4,
        ),
    )
        .prop_map(|(a, routes)| {
            let devices: Vec<Value> = routes
                .into_iter()
                .map(|(m, ip, v, rts, vni, seq, withdrawn)| {
                    json!({"mac":device_mac(m),"ip":ip.map(device_ip),"vtep":route_vtep(v),
                        "route_targets":rts,"vni":vni,"seq":seq,"withdrawn":withdrawn})
                })
                .collect();
            Step::Bgpvpn(json!({"op":"bgp_devices","host":BGP_AGENTS[a],"devices":devices}))
        })
        .boxed();
    let update = (0usize..3, subset(&RTS)).prop_map(|(v, rts)| {
        Step::Bgpvpn(json!({"op":"bgpvpn_update","id":VPNS[v],"import_targets":rts}))
    });
    let delete = (0usize..3).prop_map(|v| Step::Bgpvpn(json!({"op":"bgpvpn_delete","id":VPNS[v]})));
    let panicking = devices.clone().prop_map(|step| match step {
        Step::Bgpvpn(op) => Step::Panicking(op),
        other => other,
    });
    prop_oneof![
        1 => panicking,
        30 => port_create,
        10 => port_delete,
        40 => bound,
        20 => assoc,
        20 => binding,
        10 => speaker,
        20 => agent,
        10 => end_of_rib,
        40 => gateways,
        50 => devices,
        10 => update,
        10 => delete,
    ]
}

fn engine_event(value: Value) -> Event {
    serde_json::from_value(value).unwrap()
}

fn setup() -> Engine {
    let mut engine = EngineBuilder::new()
        .extension(l2pop_bgpvpn::NAME, Bgpvpn::new())
        .unwrap()
        .build();
    let networks = [
        (NETS[0], "vxlan", 1001, "10.0.1.0/24"),
        (NETS[1], "vxlan", 1002, "10.0.2.0/24"),
    ];
    for (id, network_type, segmentation_id, cidr) in networks {
        engine.apply(&engine_event(json!({"op":"network","id":id,"network_type":network_type,"segmentation_id":segmentation_id}))).unwrap();
        engine
            .apply(&engine_event(
                json!({"op":"subnet","network_id":id,"cidr":cidr}),
            ))
            .unwrap();
    }
    engine
        .apply(&engine_event(json!({"op":"network","id":NETS[2],"network_type":"vlan","segmentation_id":5,"physical_network":"physnet1"})))
        .unwrap();
    for h in 1..=3 {
        engine
            .apply(&engine_event(json!({"op":"agent","host":format!("host{h}"),"tunneling_ip":format!("192.0.2.{h}"),"tunnel_types":["vxlan"]})))
            .unwrap();
    }
    let setup_ops = [
        json!({"op":"bgp_agent","host":"bgp1"}),
        json!({"op":"bgp_agent","host":"bgp2"}),
        json!({"op":"bgp_speaker","id":SPEAKERS[0],"agents":["bgp1","bgp2"]}),
        json!({"op":"bgp_speaker","id":SPEAKERS[1],"agents":["bgp2"]}),
        json!({"op":"bgpvpn_create","id":VPNS[0],"type":"l2","route_targets":["65000:1"]}),
        json!({"op":"bgpvpn_create","id":VPNS[1],"type":"l2","route_targets":["65000:2"],"vni":1001}),
        json!({"op":"bgpvpn_create","id":VPNS[2],"type":"l3","route_targets":["65000:1"]}),
        json!({"op":"network_association_create","bgpvpn_id":VPNS[0],"network_id":NETS[0]}),
        json!({"op":"bgp_speaker_add_vpn","speaker_id":SPEAKERS[0],"bgpvpn_id":VPNS[0]}),
    ];
    for op in setup_ops {
        bgpvpn(&mut engine, op).unwrap();
    }
    engine
}

fn bgpvpn(engine: &mut Engine, value: Value) -> Result<Vec<l2pop_model::Notification>, String> {
    let op: BgpvpnOp = serde_json::from_value(value).map_err(|e| e.to_string())?;
    engine
        .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, topology| {
            ext.apply(&op, topology).map_err(Into::into)
        })
        .map_err(|e| e.to_string())
}

fn existing_port(engine: &Engine, pick: u8) -> Option<(String, String)> {
    let mut ports: Vec<_> = engine
        .ports()
        .filter_map(|p| p.host.as_ref().map(|h| (p.id.to_string(), h.to_string())))
        .collect();
    ports.sort();
    (!ports.is_empty()).then(|| ports[usize::from(pick) % ports.len()].clone())
}

/// A graceful restart report (`start_flag` and `graceful_restart`) that leaves the agent's
/// state as it was must send nothing: its routes stay, stale, and still count.
fn graceful_restart_in_same_state(engine: &Engine, step: &Step) -> Option<AgentState> {
    let Step::Bgpvpn(value) = step else {
        return None;
    };
    let yes = |key: &str| value[key].as_bool().unwrap_or(false);
    if value["op"] != "bgp_agent" || !yes("start_flag") || !yes("graceful_restart") {
        return None;
    }
    let host: l2pop_model::Host = value["host"].as_str()?.parse().ok()?;
    let state = *engine
        .extension::<Bgpvpn>(l2pop_bgpvpn::NAME)?
        .agents()
        .get(&host)?;
    (state.admin_state_up == yes("admin_state_up") && state.alive == yes("alive")).then_some(state)
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut engine = setup();
    let mut hosts = Hosts::following(&engine);
    for (i, step) in steps.into_iter().enumerate() {
        let before = observable(&engine);
        let graceful_same_state = graceful_restart_in_same_state(&engine, &step);
        let result = match &step {
            Step::Engine(value) => engine
                .apply(&engine_event(value.clone()))
                .map_err(|e| e.to_string()),
            Step::Bgpvpn(value) => bgpvpn(&mut engine, value.clone()),
            Step::Panicking(value) => {
                let op: BgpvpnOp = serde_json::from_value(value.clone()).unwrap();
                engine
                    .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, topology| {
                        let _half = ext.apply(&op, topology);
                        panic!("after the extension applied the op")
                    })
                    .map_err(|e| e.to_string())
            }
            Step::Bound { port, up } => match existing_port(&engine, *port) {
                Some((id, host)) => {
                    let op = if *up { "device_up" } else { "device_down" };
                    engine
                        .apply(&engine_event(json!({"op":op,"id":id,"host":host})))
                        .map_err(|e| e.to_string())
                }
                None => Ok(Vec::new()),
            },
        };
        if let Err(problem) = hosts.check_step(&engine, &before, &result) {
            prop_assert!(false, "step {}: {:?}: {}", i, step, problem);
        }
        if let (Some(state), Ok(sent)) = (&graceful_same_state, &result) {
            prop_assert!(
                sent.is_empty(),
                "step {}: a graceful restart of an agent in state {:?} sent {:?}",
                i,
                state,
                sent
            );
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4096, ..ProptestConfig::default() })]

    #[test]
    fn agents_converge_with_bgpvpn(steps in proptest::collection::vec(step_strategy(), 1..70)) {
        run(steps)?;
    }
}

#[test]
fn the_vni_rule_reports_a_skipped_route() {
    let mut engine = setup();
    // A route for VNI 1002 learned for a BGPVPN associated with network 1001: skipped, reported.
    let mut reports = Vec::new();
    let op: BgpvpnOp = serde_json::from_value(json!({"op":"bgp_gateways","host":"bgp1",
        "gateways":[{"vtep":"203.0.113.9","route_targets":["65000:1"],"vni":1002,"withdrawn":false}]}))
    .unwrap();
    let sent = engine
        .update_extension::<Bgpvpn>("bgpvpn", |ext, topology| {
            let changes = ext.apply(&op, topology);
            reports = ext.take_reports();
            changes.map_err(Into::into)
        })
        .unwrap();
    assert!(sent.is_empty());
    assert_eq!(reports.len(), 1, "{reports:?}");
}
