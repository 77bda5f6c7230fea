//! The convergence invariant (DESIGN.md), checked with proptest over random event sequences:
//! for every host and every network it is on, the table obtained by applying, in order, every
//! notification that reached it equals the full FDB the engine would build for it now,
//! extensions included. Also: a refused event changes nothing, and sequence numbers are
//! consecutive.
//!
//! The simulated agent applies messages the way l2pop's agent does (DESIGN difference 4): an add
//! replaces a `[mac, ip]` wherever it was, a remove deletes an entry only if it still points at
//! the VTEP the remove names, entries under the agent's own VTEP are ignored, and a network's
//! table exists only while the host has ports on it.
//!
//! Host VTEPs, extension VTEPs and IPs are drawn from overlapping ranges, so that a VTEP is
//! claimed by a host and an extension at once (the shared-VTEP rule), an extension device takes a
//! port's IP (a native port wins an IP), and an extension update can panic half-way through
//! (fault isolation of updates): the three findings of issue 9.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use l2pop_engine::convergence::{Hosts, observable};
use l2pop_engine::extensions::{FailingFdb, StaticAction, StaticFdb};
use l2pop_engine::{
    AgentReport, DeviceDown, DeviceUp, Engine, EngineBuilder, Event, NetworkCreate, PortCreate,
    PortDelete, PortUpdate, RouterDelete, RouterSpec, SubnetCreate,
};
use l2pop_model::{
    FdbPayload, Host, Mac, Method, NetworkId, NetworkType, PortId, PortInfo, RouterId, Target, Uuid,
};
use proptest::prelude::*;

/// (id, type, segmentation id, physical network, subnet) of the networks every run starts with.
type NetworkSpec = (
    u128,
    NetworkType,
    Option<u64>,
    Option<&'static str>,
    &'static str,
);

const NETS: [NetworkSpec; 3] = [
    (0x11, NetworkType::Vxlan, Some(1001), None, "10.0.1.0/24"),
    (
        0x22,
        NetworkType::Vlan,
        Some(2),
        Some("physnet1"),
        "10.0.2.0/24",
    ),
    (0x33, NetworkType::Gre, Some(7), None, "10.0.3.0/24"),
];
const HOSTS: [&str; 4] = ["h1", "h2", "h3", "h4"];
const OWNERS: [&str; 5] = [
    "compute:nova",
    "network:dhcp",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
    "network:router_centralized_snat",
];

fn net(i: usize) -> NetworkId {
    NetworkId(Uuid::from_u128(NETS[i % NETS.len()].0))
}
fn port_id(i: u8) -> PortId {
    PortId(Uuid::from_u128(0xa000 + u128::from(i)))
}
fn router_id(i: u8) -> RouterId {
    RouterId(Uuid::from_u128(0xc000 + u128::from(i)))
}
fn host(i: usize) -> Host {
    Host::new(HOSTS[i % HOSTS.len()]).unwrap()
}
fn mac(i: u8) -> Mac {
    Mac::new([0xfa, 0x16, 0x3e, 0, 0, i + 1])
}
fn fixed_ip(network: usize, i: u8) -> IpAddr {
    IpAddr::from([10, 0, (network % NETS.len()) as u8 + 1, i + 2])
}

/// A random step: an engine event or a static extension change.
#[derive(Debug, Clone)]
enum Step {
    Event(Event),
    /// `device_up` / `device_down` from the port's binding host (or `fallback` if unbound).
    Bound {
        port: u8,
        up: bool,
        refresh: bool,
        fallback: usize,
    },
    /// The host's agent restarts: it forgets its tables, reports `start_flag`, then reports each
    /// of its devices up with `refresh_tunnels` (the OVS agent's first loop).
    Restart {
        host: usize,
    },
    /// New fixed IPs for a port, drawn from its own network's subnet.
    Ips {
        port: u8,
        ips: Vec<u8>,
    },
    /// A static extension change; `fragile` applies the entries one by one and panics before
    /// the last, leaving the extension half-updated.
    Static {
        action: StaticAction,
        network: usize,
        vtep: u8,
        entries: Vec<(u8, u8)>,
        fragile: bool,
    },
}

/// Extension VTEPs: 1..=6 are hosts' VTEPs too (192.0.2.x, see `event_strategy`), 7..=9 are not.
fn extension_vtep(v: u8) -> IpAddr {
    if v <= 6 {
        IpAddr::from([192, 0, 2, v])
    } else {
        IpAddr::from([198, 51, 100, v - 6])
    }
}

/// An extension entry from (mac, ip) draws: MAC index 7 stands for the flooding entry; IPs 0..20
/// are the ports' range of the network (`fixed_ip`), 20.. are not.
fn extension_entry(network: usize, (m, i): (u8, u8)) -> PortInfo {
    if m == 7 {
        l2pop_model::FLOODING_ENTRY
    } else {
        PortInfo::new(mac(m), fixed_ip(network, i))
    }
}

fn hosts_strategy() -> impl Strategy<Value = Vec<Host>> {
    proptest::collection::btree_set(0..HOSTS.len(), 0..3)
        .prop_map(|s| s.into_iter().map(host).collect())
}

fn types_strategy() -> impl Strategy<Value = Vec<NetworkType>> {
    proptest::sample::subsequence(vec![NetworkType::Vxlan, NetworkType::Gre], 0..=2)
}

fn event_strategy() -> impl Strategy<Value = Event> {
    let agent = (
        0..HOSTS.len(),
        proptest::option::weighted(0.85, 1u8..7),
        types_strategy(),
        proptest::option::weighted(
            0.2,
            proptest::sample::subsequence(vec![NetworkType::Vxlan, NetworkType::Vlan], 0..=2),
        ),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(h, ip, tunnel_types, l2pop_network_types, start_flag)| {
            Event::Agent(AgentReport {
                host: host(h),
                tunneling_ip: ip.map(|i| IpAddr::from([192, 0, 2, i])),
                tunnel_types,
                l2pop_network_types,
                start_flag,
            })
        });
    let port_create = (
        0u8..8,
        0..NETS.len(),
        0u8..12,
        proptest::collection::btree_set(0u8..20, 0..3),
        0..OWNERS.len(),
        0u8..2,
        proptest::option::weighted(0.85, 0..HOSTS.len()),
    )
        .prop_map(|(p, n, m, ips, owner, router, h)| {
            Event::PortCreate(PortCreate {
                id: port_id(p),
                network_id: net(n),
                mac: mac(m),
                fixed_ips: ips.into_iter().map(|i| fixed_ip(n, i)).collect(),
                device_owner: OWNERS[owner].to_owned(),
                device_id: router_id(router).to_string(),
                host: h.map(host),
            })
        });
    let port_update = (
        0u8..8,
        proptest::option::weighted(0.3, proptest::option::weighted(0.8, 0..HOSTS.len())),
        proptest::option::weighted(
            0.4,
            (0..NETS.len(), proptest::collection::vec(0u8..5, 0..3)),
        ),
        proptest::option::weighted(0.15, 0u8..7),
        proptest::option::weighted(0.1, 0..OWNERS.len()),
    )
        .prop_map(|(p, h, ips, m, owner)| {
            Event::PortUpdate(PortUpdate {
                id: port_id(p),
                host: h.map(|h| h.map(host)),
                fixed_ips: ips.map(|(n, ips)| ips.into_iter().map(|i| fixed_ip(n, i)).collect()),
                mac: m.map(mac),
                device_owner: owner.map(|o| OWNERS[o].to_owned()),
                device_id: None,
            })
        });
    let device_up =
        (0u8..8, 0..HOSTS.len(), proptest::bool::weighted(0.3)).prop_map(|(p, h, refresh)| {
            Event::DeviceUp(DeviceUp {
                id: port_id(p),
                host: host(h),
                refresh_tunnels: refresh,
            })
        });
    let device_down = (0u8..8, 0..HOSTS.len()).prop_map(|(p, h)| {
        Event::DeviceDown(DeviceDown {
            id: port_id(p),
            host: host(h),
        })
    });
    let router = (0u8..2, any::<bool>(), hosts_strategy()).prop_map(|(r, ha, hosts)| {
        Event::Router(RouterSpec {
            id: router_id(r),
            ha,
            distributed: false,
            hosts,
        })
    });
    let router_delete =
        (0u8..2).prop_map(|r| Event::RouterDelete(RouterDelete { id: router_id(r) }));
    let port_delete = (0u8..8).prop_map(|p| Event::PortDelete(PortDelete { id: port_id(p) }));
    prop_oneof![
        2 => agent,
        4 => port_create,
        3 => port_update,
        6 => device_up,
        3 => device_down,
        2 => router,
        1 => router_delete,
        2 => port_delete,
    ]
}

fn static_strategy() -> impl Strategy<Value = Step> {
    let entry = prop_oneof![
        1 => Just((7u8, 0u8)),
        3 => (0u8..7, prop_oneof![3 => 0u8..6, 1 => 20u8..23]),
    ];
    (
        any::<bool>(),
        0..2usize,
        1u8..10,
        proptest::collection::vec(entry, 1..4),
        proptest::bool::weighted(0.03),
    )
        .prop_map(|(add, network, vtep, entries, fragile)| Step::Static {
            action: if add {
                StaticAction::Add
            } else {
                StaticAction::Remove
            },
            network,
            vtep,
            entries,
            fragile,
        })
}

fn bound_strategy() -> impl Strategy<Value = Step> {
    (
        0u8..8,
        proptest::bool::weighted(0.65),
        proptest::bool::weighted(0.2),
        0..HOSTS.len(),
    )
        .prop_map(|(port, up, refresh, fallback)| Step::Bound {
            port,
            up,
            refresh,
            fallback,
        })
}

fn ips_strategy() -> impl Strategy<Value = Step> {
    (0u8..8, proptest::collection::btree_set(0u8..20, 0..3)).prop_map(|(port, ips)| Step::Ips {
        port,
        ips: ips.into_iter().collect(),
    })
}

fn steps(with_extension: bool) -> BoxedStrategy<Vec<Step>> {
    let event = event_strategy().prop_map(Step::Event);
    let restart = (0..HOSTS.len()).prop_map(|host| Step::Restart { host });
    if with_extension {
        proptest::collection::vec(
            prop_oneof![5 => event, 4 => bound_strategy(), 1 => ips_strategy(), 1 => restart, 2 => static_strategy()],
            1..80,
        )
        .boxed()
    } else {
        proptest::collection::vec(
            prop_oneof![5 => event, 4 => bound_strategy(), 1 => ips_strategy(), 1 => restart],
            1..80,
        )
        .boxed()
    }
}

/// Runs a restart of `host`'s agent; returns the notifications of all its reports.
fn restart(
    engine: &mut Engine,
    agents: &mut Hosts,
    host: &Host,
) -> Result<Vec<l2pop_model::Notification>, TestCaseError> {
    agents.forget(host);
    let Some(agent) = engine.agent(host).cloned() else {
        return Ok(Vec::new());
    };
    let mut all = engine
        .apply(&Event::Agent(AgentReport {
            host: host.clone(),
            tunneling_ip: agent.tunneling_ip,
            tunnel_types: agent.tunnel_types.clone(),
            l2pop_network_types: agent.l2pop_network_types.clone(),
            start_flag: true,
        }))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for id in engine.present_ports(host) {
        let up = DeviceUp {
            id,
            host: host.clone(),
            refresh_tunnels: true,
        };
        all.extend(
            engine
                .apply(&Event::DeviceUp(up))
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
    }
    let casts = all
        .iter()
        .filter(|n| n.target == Target::Host(host.clone()))
        .count();
    prop_assert!(
        casts <= engine.networks_of(host).len(),
        "restart of {} sent {} full FDBs for {} networks",
        host,
        casts,
        engine.networks_of(host).len()
    );
    prop_assert!(
        all.iter().all(|n| n.target != Target::Fanout),
        "a restart repeated a fanout: {:?}",
        all
    );
    Ok(all)
}

fn new_engine(with_extension: bool) -> Engine {
    let builder = EngineBuilder::new();
    let builder = if with_extension {
        builder
            .extension("static", StaticFdb::new())
            .unwrap()
            .extension("failing", FailingFdb::new("always fails"))
            .unwrap()
            .extension("static2", StaticFdb::new())
            .unwrap()
    } else {
        builder
    };
    let mut engine = builder.build();
    for (i, (_, network_type, segmentation_id, physical_network, cidr)) in NETS.iter().enumerate() {
        engine
            .apply(&Event::Network(NetworkCreate {
                id: net(i),
                network_type: *network_type,
                segmentation_id: *segmentation_id,
                physical_network: physical_network.map(str::to_owned),
            }))
            .unwrap();
        engine
            .apply(&Event::Subnet(SubnetCreate {
                network_id: net(i),
                cidr: cidr.parse().unwrap(),
            }))
            .unwrap();
    }
    for h in 0..HOSTS.len() {
        engine
            .apply(&Event::Agent(AgentReport {
                host: host(h),
                tunneling_ip: Some(IpAddr::from([192, 0, 2, h as u8 + 1])),
                tunnel_types: vec![NetworkType::Vxlan, NetworkType::Gre],
                l2pop_network_types: None,
                start_flag: false,
            }))
            .unwrap();
    }
    engine
}

/// How much a run exercised: accepted steps, notifications by kind.
#[derive(Debug, Default)]
struct Coverage {
    accepted: u64,
    refused: u64,
    fanout_removes_with_unicast: u64,
    host_casts: u64,
    chg_ip: u64,
    extension_fanouts: u64,
}

static COVERAGE: std::sync::Mutex<Option<Coverage>> = std::sync::Mutex::new(None);

fn count(notifications: &[l2pop_model::Notification], accepted: bool) {
    let mut guard = COVERAGE.lock().unwrap();
    let c = guard.get_or_insert_with(Coverage::default);
    if std::env::var_os("L2POP_PROPTEST_STATS").is_some()
        && (c.accepted + c.refused).is_multiple_of(20_000)
    {
        eprintln!("{c:?}");
    }
    if !accepted {
        c.refused += 1;
        return;
    }
    c.accepted += 1;
    for n in notifications {
        match (&n.target, n.method, &n.fdb_entries) {
            (Target::Host(_), _, _) => c.host_casts += 1,
            (_, Method::UpdateFdbEntries, _) => c.chg_ip += 1,
            (_, Method::RemoveFdbEntries, FdbPayload::Entries(e))
                if e.0[0]
                    .1
                    .ports
                    .iter()
                    .any(|(_, l)| l.iter().any(|p| !p.is_flooding())) =>
            {
                c.fanout_removes_with_unicast += 1
            }
            _ => {}
        }
        if n.source.is_some() {
            c.extension_fanouts += 1;
        }
    }
}

/// The `pick`-th existing port (by id), or a port id that does not exist when there is none.
fn existing_port(engine: &Engine, pick: u8) -> PortId {
    let mut ids: Vec<PortId> = engine.ports().map(|p| p.id).collect();
    ids.sort();
    if ids.is_empty() {
        port_id(pick)
    } else {
        ids[usize::from(pick) % ids.len()]
    }
}

fn run(steps: Vec<Step>, with_extension: bool) -> Result<(), TestCaseError> {
    let mut engine = new_engine(with_extension);
    let mut agents = Hosts::following(&engine);
    for (i, step) in steps.into_iter().enumerate() {
        let before = observable(&engine);
        let result = match &step {
            Step::Event(event) => engine.apply(event),
            Step::Restart { host: h } => Ok(restart(&mut engine, &mut agents, &host(*h))?),
            Step::Ips { port, ips } => {
                let id = existing_port(&engine, *port);
                let network = engine.port(id).map(|p| p.network_id);
                let index = (0..NETS.len())
                    .find(|i| Some(net(*i)) == network)
                    .unwrap_or(0);
                let fixed: Vec<IpAddr> = ips.iter().map(|i| fixed_ip(index, *i)).collect();
                engine.apply(&Event::PortUpdate(PortUpdate {
                    id,
                    host: None,
                    fixed_ips: Some(fixed),
                    mac: None,
                    device_owner: None,
                    device_id: None,
                }))
            }
            Step::Bound {
                port,
                up,
                refresh,
                fallback,
            } => {
                let id = existing_port(&engine, *port);
                let bound = engine
                    .port(id)
                    .and_then(|p| p.host.clone())
                    .unwrap_or_else(|| host(*fallback));
                let on_bound = if *fallback % 3 == 0 {
                    host(*fallback)
                } else {
                    bound
                };
                if *up {
                    engine.apply(&Event::DeviceUp(DeviceUp {
                        id,
                        host: on_bound,
                        refresh_tunnels: *refresh,
                    }))
                } else {
                    engine.apply(&Event::DeviceDown(DeviceDown { id, host: on_bound }))
                }
            }
            Step::Static {
                action,
                network,
                vtep,
                entries,
                fragile,
            } => {
                // Alternate the two static extensions so that they compete for MACs.
                let name = if i % 2 == 0 { "static" } else { "static2" };
                let vtep = extension_vtep(*vtep);
                let entries: Vec<PortInfo> = entries
                    .iter()
                    .map(|draw| extension_entry(*network, *draw))
                    .collect();
                engine.update_extension::<StaticFdb>(name, |ext, topology| {
                    if !*fragile {
                        return ext.apply(*action, net(*network), vtep, &entries, topology);
                    }
                    for entry in &entries[..entries.len() - 1] {
                        let one = std::slice::from_ref(entry);
                        ext.apply(*action, net(*network), vtep, one, topology)?;
                    }
                    panic!("half-way through an update");
                })
            }
        };
        count(
            result.as_ref().map(Vec::as_slice).unwrap_or(&[]),
            result.is_ok(),
        );
        if let Err(problem) = agents.check_step(&engine, &before, &result) {
            prop_assert!(
                false,
                "step {}: {:?}: {}\nresult {:?}",
                i,
                step,
                problem,
                result
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
    fn agents_converge_to_the_full_fdb(steps in steps(false)) {
        run(steps, false)?;
    }

    #[test]
    fn agents_converge_with_extensions(steps in steps(true)) {
        run(steps, true)?;
    }
}
