//! A snapshot is the state: for random request sequences (agents, networks, subnets, ports
//! moving, going up and down and away, a BGPVPN site learning and losing routes, a BGP agent
//! restarting, gracefully or not, and ending its restart with End-of-RIB), a state saved and restored at a random point answers every later request, and
//! sends every later notification, exactly as the state that was never saved; at the end their
//! catalogs, every host's desired table and full FDB, their stream positions and their BGPVPNs
//! are equal.

#![allow(clippy::unwrap_used)]

use l2pop_model::{Host, PortId, Uuid};
use l2pop_neutron::request::{
    DeviceName, DeviceReply, Fresh, Query, ReportReply, Request, TenantNetworks, body,
};
use l2pop_neutron::{Caller, NeutronState, Time};
use proptest::prelude::*;
use serde_json::{Value, json};

const HOSTS: usize = 3;
const NETWORKS: usize = 2;
const PORTS: usize = 6;
const STREAM: u64 = 7;

/// Deterministic fresh values: two runs of the same requests draw the same ones.
#[derive(Clone)]
struct Counter {
    next: u128,
    now: u64,
}

impl Fresh for Counter {
    fn uuid(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(0xf000_0000 + self.next)
    }

    fn mac_suffix(&mut self) -> [u8; 3] {
        self.next += 1;
        let [.., a, b, c] = self.next.to_be_bytes();
        [a, b, c]
    }

    fn now(&mut self) -> Time {
        self.now += 1;
        Time(1_800_000_000 + self.now)
    }
}

#[derive(Clone, Debug)]
enum Step {
    Agent {
        host: usize,
        vtep: u8,
        start: bool,
    },
    Network(usize),
    Subnet(usize),
    NetworkDelete(usize),
    PortCreate {
        port: usize,
        network: usize,
        host: usize,
    },
    PortMove {
        port: usize,
        host: usize,
    },
    PortDelete(usize),
    Up {
        port: usize,
        refresh: bool,
    },
    Down(usize),
    Site,
    Gateway {
        vtep: u8,
        withdrawn: bool,
    },
    Device {
        mac: u8,
        vtep: u8,
        withdrawn: bool,
    },
    BgpRestart {
        graceful: bool,
    },
    EndOfRib,
}

fn step() -> impl Strategy<Value = Step> {
    let h = 0..HOSTS;
    let n = 0..NETWORKS;
    let p = 0..PORTS;
    prop_oneof![
        3 => (h.clone(), 1u8..5, any::<bool>()).prop_map(|(host, vtep, start)| Step::Agent { host, vtep, start }),
        2 => n.clone().prop_map(Step::Network),
        2 => n.clone().prop_map(Step::Subnet),
        1 => n.clone().prop_map(Step::NetworkDelete),
        4 => (p.clone(), n, h.clone()).prop_map(|(port, network, host)| Step::PortCreate { port, network, host }),
        2 => (p.clone(), h).prop_map(|(port, host)| Step::PortMove { port, host }),
        1 => p.clone().prop_map(Step::PortDelete),
        4 => (p.clone(), any::<bool>()).prop_map(|(port, refresh)| Step::Up { port, refresh }),
        2 => p.prop_map(Step::Down),
        1 => Just(Step::Site),
        2 => (1u8..3, any::<bool>()).prop_map(|(vtep, withdrawn)| Step::Gateway { vtep, withdrawn }),
        3 => (1u8..4, 1u8..3, any::<bool>()).prop_map(|(mac, vtep, withdrawn)| Step::Device { mac, vtep, withdrawn }),
        1 => any::<bool>().prop_map(|graceful| Step::BgpRestart { graceful }),
        1 => Just(Step::EndOfRib),
    ]
}

fn host(i: usize) -> Host {
    Host::new(&format!("compute-{i}")).unwrap()
}
fn network_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-00000000010{i}")
}
fn port_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-00000000020{i}")
}

/// One run: the state, its fresh values, the BGPVPN site's ids once made.
struct Run {
    state: NeutronState,
    fresh: Counter,
    /// The port each test port was created on (for device calls).
    hosts: [Option<usize>; PORTS],
}

impl Run {
    fn new() -> Run {
        Run {
            state: NeutronState::new(),
            fresh: Counter { next: 0, now: 0 },
            hosts: [None; PORTS],
        }
    }

    fn request(&mut self, request: Request) -> (Value, Vec<String>) {
        match self.state.handle(
            &Caller::Admin,
            request,
            &TenantNetworks::default(),
            &mut self.fresh,
        ) {
            Ok(outcome) => {
                let notes = outcome
                    .notifications
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect();
                let answer = outcome
                    .answer
                    .unwrap_or_else(|e| json!({"answer_error": e.to_string()}));
                (answer, notes)
            }
            Err(error) => (json!({"error": error.to_string()}), Vec::new()),
        }
    }

    /// The step's requests; what each answered and sent.
    fn step(&mut self, step: &Step) -> Vec<(Value, Vec<String>)> {
        let mut out = Vec::new();
        let requests: Vec<Request> = match step {
            Step::Agent {
                host: h,
                vtep,
                start,
            } => vec![Request::AgentReport {
                body: body(
                    json!({"agent": {"host": host(*h), "tunneling_ip": format!("192.0.2.{vtep}{h}"),
                        "tunnel_types": ["vxlan"], "start_flag": start}}),
                    "agent",
                )
                .unwrap(),
                reply: ReportReply::NewOrAlive,
            }],
            Step::Network(n) => vec![Request::NetworkCreate(
                body(
                    json!({"network": {"id": network_id(*n), "name": format!("n{n}"),
                        "provider:network_type": "vxlan", "provider:segmentation_id": 1001 + n}}),
                    "network",
                )
                .unwrap(),
            )],
            Step::Subnet(n) => vec![Request::SubnetCreate(
                body(
                    json!({"subnet": {"network_id": network_id(*n), "ip_version": 4,
                        "cidr": format!("10.0.{n}.0/24")}}),
                    "subnet",
                )
                .unwrap(),
            )],
            Step::NetworkDelete(n) => vec![Request::NetworkDelete(network_id(*n).parse().unwrap())],
            Step::PortCreate {
                port,
                network,
                host: h,
            } => {
                self.hosts[*port] = Some(*h);
                vec![Request::PortCreate(
                    body(
                        json!({"port": {"id": port_id(*port), "network_id": network_id(*network),
                            "binding:host_id": host(*h), "device_owner": "compute:nova"}}),
                        "port",
                    )
                    .unwrap(),
                )]
            }
            Step::PortMove { port, host: h } => {
                self.hosts[*port] = Some(*h);
                vec![Request::PortUpdate(
                    port_id(*port).parse().unwrap(),
                    body(json!({"port": {"binding:host_id": host(*h)}}), "port").unwrap(),
                )]
            }
            Step::PortDelete(port) => vec![Request::PortDelete(port_id(*port).parse().unwrap())],
            Step::Up { port, .. } | Step::Down(port) if self.hosts[*port].is_some() => {
                let refresh = matches!(step, Step::Up { refresh: true, .. });
                let up = matches!(step, Step::Up { .. });
                let id: PortId = port_id(*port).parse().unwrap();
                vec![Request::Device {
                    device: DeviceName::Port(id),
                    up,
                    body: body(
                        json!({"device": {"host": host(self.hosts[*port].unwrap()),
                            "refresh_tunnels": refresh}}),
                        "device",
                    )
                    .unwrap(),
                    reply: DeviceReply::Rpc,
                }]
            }
            Step::Up { .. } | Step::Down(_) => Vec::new(),
            Step::Site => return self.site(),
            Step::Gateway { vtep, withdrawn } => vec![Request::BgpGateways(
                serde_json::from_value(json!({"host": "bgp-1", "gateways": [{
                    "vtep": format!("203.0.113.{vtep}"), "route_targets": ["65000:1"],
                    "vni": 1001, "withdrawn": withdrawn}]}))
                .unwrap(),
            )],
            Step::Device {
                mac,
                vtep,
                withdrawn,
            } => vec![Request::BgpDevices(
                serde_json::from_value(json!({"host": "bgp-1", "devices": [{
                    "mac": format!("02:00:00:00:00:0{mac}"), "ip": format!("10.0.0.2{mac}"),
                    "vtep": format!("203.0.113.{vtep}"), "route_targets": ["65000:1"],
                    "vni": 1001, "withdrawn": withdrawn}]}))
                .unwrap(),
            )],
            Step::BgpRestart { graceful } => vec![bgp_agent(true, *graceful)],
            Step::EndOfRib => vec![Request::BgpEndOfRib(Host::new("bgp-1").unwrap())],
        };
        for request in requests {
            out.push(self.request(request));
        }
        out
    }

    /// A BGPVPN on network 0 served by speaker on BGP agent `bgp-1`.
    fn site(&mut self) -> Vec<(Value, Vec<String>)> {
        let mut out = vec![self.request(bgp_agent(false, false))];
        let vpn = self.request(Request::BgpvpnCreate(
            body(
                json!({"bgpvpn": {"type": "l2", "route_targets": ["65000:1"], "vni": 1001}}),
                "bgpvpn",
            )
            .unwrap(),
        ));
        let vpn_id = vpn.0["bgpvpn"]["id"].as_str().unwrap().parse().unwrap();
        out.push(vpn);
        out.push(
            self.request(Request::AssociationCreate(
                vpn_id,
                body(
                    json!({"network_association": {"network_id": network_id(0)}}),
                    "network_association",
                )
                .unwrap(),
            )),
        );
        let speaker = self.request(Request::SpeakerCreate(
            body(json!({"bgp_speaker": {"local_as": 65001}}), "bgp_speaker").unwrap(),
        ));
        let speaker_id = speaker.0["bgp_speaker"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        out.push(speaker);
        out.push(self.request(Request::SpeakerVpn {
            speaker: speaker_id,
            body: body(json!({"bgpvpn_id": vpn_id.to_string()}), "bgpvpn").unwrap_or_else(|_| {
                serde_json::from_value(json!({"bgpvpn_id": vpn_id.to_string()})).unwrap()
            }),
            add: true,
        }));
        let agent = self
            .state
            .catalog()
            .bgp_agents
            .values()
            .next()
            .map(|a| a.id)
            .unwrap();
        out.push(self.request(Request::DrInstanceAdd {
            agent,
            body:
                serde_json::from_value(json!({"bgp_speaker_id": speaker_id.to_string()})).unwrap(),
        }));
        out
    }

    /// What every reader can ask of the state.
    fn observe(&self) -> Value {
        let mut hosts = Vec::new();
        for h in (0..HOSTS).map(host) {
            let fdb = self.state.query(&Caller::Admin, Query::HostFdb(h.clone()));
            let full = self.state.query(
                &Caller::Admin,
                Query::FullFdb {
                    host: h.clone(),
                    stream_id: STREAM,
                },
            );
            let positions = self.state.query(
                &Caller::Admin,
                Query::StreamPositions {
                    host: h,
                    stream_id: STREAM,
                },
            );
            hosts.push(json!([
                fdb.unwrap_or_default(),
                full.unwrap_or_default(),
                positions.unwrap_or_default()
            ]));
        }
        json!({
            "executed": self.state.executed(),
            "catalog": serde_json::to_value(self.state.catalog()).unwrap(),
            "bgpvpns": self.state.query(&Caller::Admin, Query::BgpvpnList).unwrap_or_default(),
            "speakers": format!("{:?}", self.state.catalog().bgpvpn.speakers),
            "bgp_agents": format!("{:?}", self.state.catalog().bgpvpn.agents),
            "hosts": hosts,
        })
    }
}

fn bgp_agent(start: bool, graceful: bool) -> Request {
    Request::BgpAgentReport(
        Host::new("bgp-1").unwrap(),
        body(
            json!({"bgp_agent": {"start_flag": start, "graceful_restart": graceful}}),
            "bgp_agent",
        )
        .unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_restored_snapshot_is_the_state(steps in prop::collection::vec(step(), 1..60), cut in 0usize..60) {
        let cut = cut.min(steps.len());
        let mut never = Run::new();
        let mut saved = Run::new();
        for step in &steps[..cut] {
            prop_assert_eq!(never.step(step), saved.step(step));
        }
        let bytes = saved.state.save().unwrap();
        saved.state = NeutronState::restore(&bytes).unwrap();
        prop_assert_eq!(never.observe(), saved.observe(), "right after the restore");
        for (i, step) in steps[cut..].iter().enumerate() {
            prop_assert_eq!(never.step(step), saved.step(step), "step {} after the cut: {:?}", i, step);
        }
        prop_assert_eq!(never.observe(), saved.observe());
    }
}

/// The generator reaches the interesting states: a site with learned routes in a full FDB.
#[test]
fn the_steps_build_a_site_with_learned_routes() {
    let mut run = Run::new();
    let steps = [
        Step::Agent {
            host: 0,
            vtep: 1,
            start: true,
        },
        Step::Network(0),
        Step::Subnet(0),
        Step::PortCreate {
            port: 0,
            network: 0,
            host: 0,
        },
        Step::Up {
            port: 0,
            refresh: true,
        },
        Step::Site,
        Step::Gateway {
            vtep: 1,
            withdrawn: false,
        },
        Step::Device {
            mac: 1,
            vtep: 1,
            withdrawn: false,
        },
    ];
    for step in &steps {
        for (answer, _) in run.step(step) {
            assert!(answer.get("error").is_none(), "{step:?}: {answer}");
        }
    }
    let full = run
        .state
        .query(
            &Caller::Admin,
            Query::FullFdb {
                host: host(0),
                stream_id: STREAM,
            },
        )
        .unwrap()
        .to_string();
    assert!(
        full.contains("203.0.113.1") && full.contains("02:00:00:00:00:01"),
        "{full}"
    );
    // And the restored state holds them too.
    let restored = NeutronState::restore(&run.state.save().unwrap()).unwrap();
    let again = restored
        .query(
            &Caller::Admin,
            Query::FullFdb {
                host: host(0),
                stream_id: STREAM,
            },
        )
        .unwrap()
        .to_string();
    assert_eq!(full, again);
}

/// Bytes that are not a snapshot are refused with what they begin with.
#[test]
fn garbage_is_refused() {
    let error = NeutronState::restore(b"SQLite format 3").unwrap_err();
    assert!(error.to_string().contains("SQLite f"), "{error}");
    let mut bytes = NeutronState::new().save().unwrap();
    bytes.truncate(bytes.len() / 2);
    assert!(NeutronState::restore(&bytes).is_err());
}
