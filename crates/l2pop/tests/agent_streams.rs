//! The agent's convergence invariant under the bus's real disorder, with proptest: random
//! Neutron events through the engine; every host's agent state receives the fanout stream and
//! its host stream through the oslo wire codec, interleaved at random (RabbitMQ orders each
//! queue, not the pair), with messages delivered twice and one message lost. Whenever the agent
//! asks for a resync it gets the server's snapshot; at the end, the position check the agent
//! runs with its heartbeat resyncs an agent left behind. Then, for every network a host is on,
//! the agent's table equals the full FDB the engine would send it now.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use l2pop::agent::state::{AgentState, LocalPort, Outcome};
use l2pop_bus::message::{decode_notification, encode_notification};
use l2pop_bus::{Context, Positions};
use l2pop_engine::{
    AgentReport, DeviceDown, DeviceUp, Engine, EngineBuilder, Event, NetworkCreate, PortCreate,
    PortDelete, PortUpdate, SubnetCreate,
};
use l2pop_model::{
    FdbEntries, FdbPayload, FdbTable, Host, Mac, Method, NetworkId, NetworkType, Notification,
    PortId, Target, Uuid,
};
use proptest::prelude::*;

const HOSTS: usize = 3;
const NETWORKS: usize = 2;
const STREAM: u64 = 0x5eed;

fn host(i: usize) -> Host {
    Host::new(&format!("h{}", i % HOSTS)).unwrap()
}
fn vtep(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11 + (i % HOSTS) as u8))
}
fn network(i: usize) -> NetworkId {
    NetworkId(Uuid::from_u128(0x100 + (i % NETWORKS) as u128))
}
fn vni(i: usize) -> u32 {
    1001 + (i % NETWORKS) as u32
}
fn port(i: u8) -> PortId {
    PortId(Uuid::from_u128(0xa000 + u128::from(i)))
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        port: u8,
        network: usize,
        host: usize,
    },
    Up {
        port: u8,
        host: usize,
        refresh: bool,
    },
    Down {
        port: u8,
        host: usize,
    },
    Ips {
        port: u8,
        last: u8,
    },
    Delete {
        port: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..8, 0..NETWORKS, 0..HOSTS).prop_map(|(port, network, host)| Step::Create {
            port,
            network,
            host
        }),
        (0u8..8, 0..HOSTS, any::<bool>()).prop_map(|(port, host, refresh)| Step::Up {
            port,
            host,
            refresh
        }),
        (0u8..8, 0..HOSTS).prop_map(|(port, host)| Step::Down { port, host }),
        (0u8..8, 2u8..200).prop_map(|(port, last)| Step::Ips { port, last }),
        (0u8..8).prop_map(|port| Step::Delete { port }),
    ]
}

fn event(step: &Step) -> Event {
    match step {
        Step::Create {
            port: p,
            network: n,
            host: h,
        } => Event::PortCreate(PortCreate {
            id: port(*p),
            network_id: network(*n),
            mac: Mac::new([0xfa, 0x16, 0x3e, 0, 0, *p]),
            fixed_ips: vec![IpAddr::from([10, 0, *n as u8 + 1, *p + 2])],
            device_owner: "compute:nova".into(),
            device_id: String::new(),
            host: Some(host(*h)),
        }),
        Step::Up {
            port: p,
            host: h,
            refresh,
        } => Event::DeviceUp(DeviceUp {
            id: port(*p),
            host: host(*h),
            refresh_tunnels: *refresh,
        }),
        Step::Down { port: p, host: h } => Event::DeviceDown(DeviceDown {
            id: port(*p),
            host: host(*h),
        }),
        Step::Ips { port: p, last } => Event::PortUpdate(PortUpdate {
            id: port(*p),
            host: None,
            fixed_ips: Some(vec![IpAddr::from([10, 0, 9, *last])]),
            mac: None,
            device_owner: None,
            device_id: None,
        }),
        Step::Delete { port: p } => Event::PortDelete(PortDelete { id: port(*p) }),
    }
}

fn engine() -> Engine {
    let mut engine = EngineBuilder::new().build();
    for n in 0..NETWORKS {
        engine
            .apply(&Event::Network(NetworkCreate {
                id: network(n),
                network_type: NetworkType::Vxlan,
                segmentation_id: Some(u64::from(vni(n))),
                physical_network: None,
            }))
            .unwrap();
        engine
            .apply(&Event::Subnet(SubnetCreate {
                network_id: network(n),
                cidr: "10.0.0.0/16".parse().unwrap(),
            }))
            .unwrap();
    }
    for h in 0..HOSTS {
        engine
            .apply(&Event::Agent(AgentReport {
                host: host(h),
                tunneling_ip: Some(vtep(h)),
                tunnel_types: vec![NetworkType::Vxlan],
                l2pop_network_types: None,
                start_flag: true,
            }))
            .unwrap();
    }
    engine
}

/// The server's answer to `get_fdb_entries` for host `h`, as the agent takes it.
fn resync(engine: &Engine, agent: &mut AgentState, h: usize) {
    let mut entries = FdbEntries::default();
    for n in engine.networks_of(&host(h)) {
        entries
            .0
            .extend(engine.full_fdb(&host(h), n, None).unwrap().fdb_entries.0);
    }
    agent.resynced(
        Some(Positions {
            fanout: engine.fanout_seq(),
            host: engine.host_seq(&host(h)),
        }),
        Some(STREAM),
        &FdbPayload::Entries(entries),
    );
}

/// A notification through the real wire codec, as the agent's consumer yields it.
fn wire(notification: &Notification) -> l2pop_bus::Received {
    let body = encode_notification(notification, STREAM, &Context::new()).unwrap();
    decode_notification(&body, notification.target.clone()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn agents_converge_whatever_the_interleaving_duplicates_and_losses(
        steps in proptest::collection::vec(step(), 1..40),
        order in proptest::collection::vec(any::<bool>(), 0..200),
        twice in proptest::collection::vec(0usize..200, 0..4),
        lost in proptest::option::of(0usize..200),
    ) {
        let mut engine = engine();
        // Every agent starts synced with the fresh engine and holds both networks (its taps
        // are wired before it reports them up).
        let mut agents: Vec<AgentState> = (0..HOSTS)
            .map(|h| {
                let mut agent = AgentState::new(vtep(h));
                for n in 0..NETWORKS {
                    agent.port_wired(LocalPort {
                        device: format!("tap{n}"),
                        port_id: PortId(Uuid::from_u128(n as u128)),
                        network_id: network(n),
                        mac: Mac::new([2, 0, 0, 0, h as u8, n as u8]),
                        network_type: NetworkType::Vxlan,
                        segmentation_id: Some(vni(n)),
                        admin_state_up: true,
                    });
                }
                resync(&engine, &mut agent, h);
                agent
            })
            .collect();
        let mut sent = Vec::new();
        for step in &steps {
            if let Ok(notifications) = engine.apply(&event(step)) {
                sent.extend(notifications);
            }
        }
        for (h, agent) in agents.iter_mut().enumerate() {
            let mut fanouts: std::collections::VecDeque<&Notification> =
                sent.iter().filter(|n| n.target == Target::Fanout).collect();
            let mut casts: std::collections::VecDeque<&Notification> = sent
                .iter()
                .filter(|n| n.target == Target::Host(host(h)))
                .collect();
            let mut delivered = 0usize;
            let mut choices = order.iter().copied().chain(std::iter::repeat(true));
            while !fanouts.is_empty() || !casts.is_empty() {
                let from_fanout = match (fanouts.is_empty(), casts.is_empty()) {
                    (false, true) => true,
                    (true, false) => false,
                    _ => choices.next().unwrap_or(true),
                };
                let next = if from_fanout { fanouts.pop_front() } else { casts.pop_front() };
                let Some(notification) = next else { continue };
                delivered += 1;
                if lost == Some(delivered) {
                    continue;
                }
                let copies = 1 + usize::from(twice.contains(&delivered));
                for _ in 0..copies {
                    if let Outcome::Resync(_) = agent.receive(&wire(notification)) {
                        resync(&engine, agent, h);
                    }
                }
            }
            // The heartbeat's position check: an agent behind the server resyncs.
            let server = Positions {
                fanout: engine.fanout_seq(),
                host: engine.host_seq(&host(h)),
            };
            if agent.positions() != Some(server) {
                resync(&engine, agent, h);
            }
            for n in engine.networks_of(&host(h)) {
                let full = engine.full_fdb(&host(h), n, None).unwrap();
                let mut want = FdbTable::default();
                want.apply(
                    Method::AddFdbEntries,
                    &FdbPayload::Entries(full.fdb_entries),
                    Some(vtep(h)),
                    |_| true,
                );
                let want = want.networks.remove(&n).unwrap_or_default();
                let have = agent.table(n).cloned().unwrap_or_default();
                prop_assert_eq!(have, want, "host h{} network {}", h, n);
            }
        }
    }
}

/// The generator's events are not all refused: a fixed sequence of its steps produces fanouts
/// and host casts (the property above would hold vacuously otherwise).
#[test]
fn the_steps_produce_fanouts_and_host_casts() {
    let mut engine = engine();
    let mut sent = Vec::new();
    for step in [
        Step::Create {
            port: 1,
            network: 0,
            host: 0,
        },
        Step::Up {
            port: 1,
            host: 0,
            refresh: false,
        },
        Step::Create {
            port: 2,
            network: 0,
            host: 1,
        },
        Step::Up {
            port: 2,
            host: 1,
            refresh: false,
        },
        Step::Ips { port: 2, last: 9 },
        Step::Down { port: 1, host: 0 },
        Step::Delete { port: 2 },
    ] {
        sent.extend(engine.apply(&event(&step)).unwrap());
    }
    let casts = sent
        .iter()
        .filter(|n| matches!(n.target, Target::Host(_)))
        .count();
    assert!(casts >= 1 && sent.len() > casts + 3, "{sent:?}");
}
