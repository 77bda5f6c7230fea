//! Deployments both benches build, through the public API only: hosts with agents, one large
//! vxlan network, ports activated round-robin, engines loaded in lockstep so that none gets a
//! better heap layout; and the full-FDB helpers the cases time. Included by
//! `crates/l2pop-engine/benches/engine.rs` and `crates/l2pop-bgpvpn/benches/bgpvpn.rs`.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkGroup, SamplingMode, measurement::WallTime};
use ipnet::IpNet;
use l2pop_engine::{
    AgentReport, DeviceUp, Engine, EngineBuilder, Event, NetworkCreate, PortCreate, SubnetCreate,
};
use l2pop_model::{FdbEntries, Host, Mac, NetworkId, NetworkType, PortId, Uuid};

use super::report::thousands;

/// The subnet of the 100,000- and 200,000-port networks. A /16 has 65,536 addresses, too few for
/// 100,000 ports with one IPv4 each, so the network has one /14 (262,144 addresses).
pub const LARGE_SUBNET: &str = "10.0.0.0/14";
/// The subnet of the other networks (at most 10,000 ports each).
pub const SMALL_SUBNET: &str = "10.0.0.0/16";

pub fn host(h: u32) -> Host {
    Host::new(&format!("compute-{h:05}")).expect("valid host name")
}

/// The VTEP of host `h`: 172.16.0.0/12, one address per host.
pub fn vtep(h: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 1)) + h))
}

/// The VTEP of gateway `g` of case 2: 198.18.0.0/15, outside the agents' range.
pub fn gateway_vtep(g: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + g))
}

pub fn network_id(n: u32) -> NetworkId {
    NetworkId(Uuid::from_u128((0x6e65_7477u128 << 96) | u128::from(n)))
}

/// Port ids derive from (network, host, slot on that host), so any port can be named later
/// without keeping a list of a million ids.
pub fn port_id(n: u32, h: u32, k: u32) -> PortId {
    PortId(Uuid::from_u128(
        (0x706f_7274u128 << 96) | (u128::from(n) << 64) | (u128::from(h) << 32) | u128::from(k),
    ))
}

/// The `offset`-th address of `subnet` (offset 0 is the first host address).
/// The VXLAN segmentation id of network `n`.
pub const fn segmentation_id(n: u32) -> u64 {
    1000 + n as u64
}

pub fn address(subnet: &IpNet, offset: u32) -> IpAddr {
    match subnet.network() {
        IpAddr::V4(base) => IpAddr::V4(Ipv4Addr::from(u32::from(base) + 1 + offset)),
        IpAddr::V6(_) => unreachable!("the benchmarks use IPv4 subnets"),
    }
}

/// `count` hosts numbered from `first`, each with `ports` ports on one network.
#[derive(Debug, Clone, Copy)]
pub struct HostGroup {
    pub first: u32,
    pub count: u32,
    pub ports: u32,
}

impl HostGroup {
    pub fn hosts(&self) -> std::ops::Range<u32> {
        self.first..self.first + self.count
    }
}

/// Feeds events to engines, as Neutron would after a server start. Engines loaded together get
/// the same events in lockstep, so their data interleave in the heap and neither has a better
/// memory layout than the other (two engines built one after the other differ by ±3% in full-FDB
/// time, more than the ≤ 2% that case 2 checks).
pub struct Loader {
    pub engines: Vec<Engine>,
    /// Global port counter: the low 24 bits of each port's MAC.
    next_mac: u32,
    pub events: u64,
}

impl Loader {
    pub fn new(engines: Vec<Engine>) -> Self {
        Loader {
            engines,
            next_mac: 0,
            events: 0,
        }
    }

    pub fn apply(&mut self, event: &Event) {
        self.events += 1;
        for engine in &mut self.engines {
            if let Err(e) = engine.apply(event) {
                panic!("benchmark setup refused by the engine: {e}");
            }
        }
    }

    pub fn agents(&mut self, hosts: std::ops::Range<u32>) {
        for h in hosts {
            self.apply(&agent_report(h, false));
        }
    }

    pub fn network(&mut self, n: u32, subnet: &str) {
        self.apply(&Event::Network(NetworkCreate {
            id: network_id(n),
            network_type: NetworkType::Vxlan,
            segmentation_id: Some(segmentation_id(n)),
            physical_network: None,
        }));
        self.apply(&Event::Subnet(SubnetCreate {
            network_id: network_id(n),
            cidr: subnet.parse().expect("valid cidr"),
        }));
    }

    /// Creates and activates the ports of `groups` on network `n`, one IPv4 each. Round-robin
    /// over the hosts, so that every host's first port, the one that costs a full FDB (rule 2),
    /// comes while the network is still small: loading stays fast.
    pub fn ports(&mut self, n: u32, subnet: &str, groups: &[HostGroup]) {
        let subnet: IpNet = subnet.parse().expect("valid cidr");
        let network = network_id(n);
        let slots = groups.iter().map(|g| g.ports).max().unwrap_or(0);
        let mut offset = 0;
        for k in 0..slots {
            for group in groups.iter().filter(|g| k < g.ports) {
                for h in group.hosts() {
                    let id = port_id(n, h, k);
                    let [_, a, b, c] = self.next_mac.to_be_bytes();
                    self.next_mac += 1;
                    self.apply(&Event::PortCreate(PortCreate {
                        id,
                        network_id: network,
                        mac: Mac::new([0xfa, 0x16, 0x3e, a, b, c]),
                        fixed_ips: vec![address(&subnet, offset)],
                        device_owner: "compute:nova".to_owned(),
                        device_id: Uuid::from_u128(id.0.as_u128() ^ 0x5eed).to_string(),
                        host: Some(host(h)),
                    }));
                    offset += 1;
                    self.apply(&Event::DeviceUp(DeviceUp {
                        id,
                        host: host(h),
                        refresh_tunnels: false,
                    }));
                }
            }
        }
        // Nothing is reported for native ports; keep the engines' report buffers empty anyway.
        for engine in &mut self.engines {
            engine.take_reports();
        }
    }
}

pub fn agent_report(h: u32, start_flag: bool) -> Event {
    Event::Agent(AgentReport {
        host: host(h),
        tunneling_ip: Some(vtep(h)),
        tunnel_types: vec![NetworkType::Vxlan],
        l2pop_network_types: None,
        start_flag,
    })
}

/// Cases 1 and 2: one vxlan network with 1,000 hosts of 100 ports (100,000 ports), plus
/// `extra` groups, plus an agent without ports: the host that joins (`host(NEWCOMER)`).
pub const NEWCOMER: u32 = 9_999;
pub const BASE_GROUP: HostGroup = HostGroup {
    first: 0,
    count: 1_000,
    ports: 100,
};

pub fn large_network(builder: EngineBuilder, extra: &[HostGroup]) -> Engine {
    let [engine] = large_networks([builder], extra);
    engine
}

/// `large_network` for several engines at once, loaded in lockstep.
pub fn large_networks<const N: usize>(
    builders: [EngineBuilder; N],
    extra: &[HostGroup],
) -> [Engine; N] {
    let mut loader = Loader::new(builders.into_iter().map(EngineBuilder::build).collect());
    let mut groups = vec![BASE_GROUP];
    groups.extend_from_slice(extra);
    for g in &groups {
        loader.agents(g.hosts());
    }
    loader.agents(NEWCOMER..NEWCOMER + 1);
    loader.network(0, LARGE_SUBNET);
    loader.ports(0, LARGE_SUBNET, &groups);
    match loader.engines.try_into() {
        Ok(engines) => engines,
        Err(_) => unreachable!("one engine per builder"),
    }
}

pub fn print_full_fdb_size(what: &str, engine: &Engine) {
    let fdb = engine
        .full_fdb(&host(NEWCOMER), network_id(0), None)
        .expect("known network");
    let bytes = serde_json::to_vec(&fdb.fdb_entries).expect("serializable");
    println!(
        "{what}: the newcomer's full FDB has {} entries, {} bytes of compact JSON",
        thousands(entry_count(&fdb.fdb_entries) as u64),
        thousands(bytes.len() as u64)
    );
}

pub fn build_and_serialize(engine: &Engine, host: &Host, network: NetworkId) -> usize {
    let fdb = engine.full_fdb(host, network, None).expect("known network");
    serde_json::to_vec(&fdb.fdb_entries)
        .expect("serializable")
        .len()
}

pub fn entry_count(entries: &FdbEntries) -> usize {
    entries
        .0
        .iter()
        .flat_map(|(_, fdb)| &fdb.ports)
        .map(|(_, list)| list.len())
        .sum()
}

/// Flat sampling (every sample the same number of iterations): the millisecond-scale benchmarks
/// get many short samples, whose median resists the machine's bursts of noise.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, seconds: u64) {
    group
        .sample_size(samples)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
}
