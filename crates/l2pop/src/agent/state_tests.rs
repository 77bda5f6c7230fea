#![allow(clippy::unwrap_used)]

use super::*;
use l2pop_bus::StreamPosition;
use l2pop_model::{FLOODING_ENTRY, FdbEntries, Host, NetworkFdb, PortInfo, Target, Uuid};

const LOCAL: &str = "192.0.2.1";

fn net(n: u128) -> NetworkId {
    NetworkId(Uuid::from_u128(n))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn vm(n: u8) -> PortInfo {
    PortInfo::new(
        Mac::new([0xfa, 0x16, 0x3e, 0, 0, n]),
        ip(&format!("10.0.0.{n}")),
    )
}

fn payload(network: NetworkId, vni: u32, ports: Vec<(&str, Vec<PortInfo>)>) -> FdbPayload {
    FdbPayload::Entries(FdbEntries::single(
        network,
        NetworkFdb {
            segment_id: Some(vni),
            network_type: NetworkType::Vxlan,
            ports: ports.into_iter().map(|(v, l)| (ip(v), l)).collect(),
        },
    ))
}

fn fanout(method: Method, fanout_seq: u64, payload: FdbPayload) -> Received {
    Received {
        method,
        target: Target::Fanout,
        fdb_entries: payload,
        unique_id: None,
        context: Default::default(),
        stream: Some(StreamPosition {
            seq: 0,
            fanout_seq,
            host_seq: None,
            source: None,
        }),
    }
}

fn host_cast(host_seq: u64, reflects: u64, payload: FdbPayload) -> Received {
    Received {
        method: Method::AddFdbEntries,
        target: Target::Host(Host::new("compute-1").unwrap()),
        fdb_entries: payload,
        unique_id: None,
        context: Default::default(),
        stream: Some(StreamPosition {
            seq: 0,
            fanout_seq: reflects,
            host_seq: Some(host_seq),
            source: None,
        }),
    }
}

fn port(device: &str, network: NetworkId, vni: u32) -> LocalPort {
    LocalPort {
        device: device.to_owned(),
        port_id: PortId(Uuid::from_u128(0xabc)),
        network_id: network,
        mac: Mac::new([0xfa, 0x16, 0x3e, 1, 1, 1]),
        network_type: NetworkType::Vxlan,
        segmentation_id: Some(vni),
        admin_state_up: true,
    }
}

/// An agent with one port on network 1 (VNI 100), synced at fanout 10, host 0.
fn agent() -> AgentState {
    let mut state = AgentState::new(ip(LOCAL));
    state.port_wired(port("tap1", net(1), 100));
    state.resynced(
        Some(Positions {
            fanout: 10,
            host: 0,
        }),
        None,
        &FdbPayload::Entries(FdbEntries::default()),
    );
    state
}

#[test]
fn a_snapshot_replaces_the_table_and_later_fanouts_apply() {
    let mut state = agent();
    let outcome = state.receive(&host_cast(
        1,
        10,
        payload(
            net(1),
            100,
            vec![("192.0.2.2", vec![FLOODING_ENTRY, vm(2)])],
        ),
    ));
    assert_eq!(outcome, Outcome::Applied([100].into()));
    state.receive(&fanout(
        Method::AddFdbEntries,
        11,
        payload(
            net(1),
            100,
            vec![("192.0.2.3", vec![FLOODING_ENTRY, vm(3)])],
        ),
    ));
    let desired = state.network_desired(100).unwrap();
    assert_eq!(desired.flood, [ip("192.0.2.2"), ip("192.0.2.3")].into());
    assert_eq!(desired.unicast.get(&vm(3).mac), Some(&ip("192.0.2.3")));
    assert_eq!(desired.neighbours.get(&vm(2).ip), Some(&vm(2).mac));
    assert_eq!(desired.ports, ["tap1".to_owned()].into());
}

#[test]
fn fanouts_applied_before_a_late_snapshot_are_reapplied_on_it() {
    let mut state = agent();
    // The server: snapshot at fanout 10 (host queue), then fanout 11 removes host 2's VM.
    // The agent reads the fanout queue first.
    state.receive(&fanout(
        Method::RemoveFdbEntries,
        11,
        payload(net(1), 100, vec![("192.0.2.2", vec![vm(2)])]),
    ));
    state.receive(&host_cast(
        1,
        10,
        payload(
            net(1),
            100,
            vec![("192.0.2.2", vec![FLOODING_ENTRY, vm(2)])],
        ),
    ));
    let desired = state.network_desired(100).unwrap();
    assert!(desired.unicast.is_empty(), "{desired:?}");
    assert_eq!(desired.flood, [ip("192.0.2.2")].into());
}

#[test]
fn fanouts_a_snapshot_already_reflects_are_skipped_on_its_network() {
    let mut state = agent();
    state.port_wired(port("tap2", net(2), 200));
    // Snapshot of network 1 reflects fanout 12; fanouts 11 and 12 arrive after it.
    state.receive(&host_cast(
        1,
        12,
        payload(net(1), 100, vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
    ));
    // 11 added a VM on network 1 that 12 ... the snapshot shows the net effect: no vm(5).
    assert_eq!(
        state.receive(&fanout(
            Method::AddFdbEntries,
            11,
            payload(net(1), 100, vec![("192.0.2.5", vec![vm(5)])]),
        )),
        Outcome::Dropped
    );
    // A fanout on another network at the same position still applies there.
    assert_eq!(
        state.receive(&fanout(
            Method::AddFdbEntries,
            12,
            payload(net(2), 200, vec![("192.0.2.5", vec![FLOODING_ENTRY])]),
        )),
        Outcome::Applied([200].into())
    );
    assert!(state.network_desired(100).unwrap().unicast.is_empty());
    // Past the floor, network 1 follows fanouts again.
    state.receive(&fanout(
        Method::AddFdbEntries,
        13,
        payload(net(1), 100, vec![("192.0.2.5", vec![vm(5)])]),
    ));
    assert_eq!(state.network_desired(100).unwrap().unicast.len(), 1);
}

#[test]
fn duplicates_gaps_and_unheld_networks() {
    let mut state = agent();
    let add = |seq| {
        fanout(
            Method::AddFdbEntries,
            seq,
            payload(net(1), 100, vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
        )
    };
    assert_eq!(state.receive(&add(10)), Outcome::Dropped);
    assert!(matches!(state.receive(&add(11)), Outcome::Applied(_)));
    assert_eq!(
        state.receive(&fanout(
            Method::AddFdbEntries,
            12,
            payload(net(9), 900, vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
        )),
        Outcome::Dropped
    );
    assert!(matches!(state.receive(&add(14)), Outcome::Resync(_)));
    // Until resynced, everything asks for a resync.
    assert!(matches!(state.receive(&add(15)), Outcome::Resync(_)));
    state.resynced(
        Some(Positions {
            fanout: 15,
            host: 0,
        }),
        None,
        &payload(net(1), 100, vec![("192.0.2.7", vec![FLOODING_ENTRY])]),
    );
    assert_eq!(
        state.network_desired(100).unwrap().flood,
        [ip("192.0.2.7")].into()
    );
}

#[test]
fn a_snapshot_older_than_the_history_asks_for_a_resync() {
    let mut state = agent();
    let other = ip("192.0.2.9");
    for seq in 11..=(11 + HISTORY as u64) {
        let method = if seq % 2 == 0 {
            Method::AddFdbEntries
        } else {
            Method::RemoveFdbEntries
        };
        state.receive(&fanout(
            method,
            seq,
            payload(
                net(1),
                100,
                vec![(&other.to_string(), vec![FLOODING_ENTRY])],
            ),
        ));
    }
    assert!(matches!(
        state.receive(&host_cast(
            1,
            10,
            payload(net(1), 100, vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
        )),
        Outcome::Resync(_)
    ));
}

#[test]
fn neutron_casts_apply_additively_and_own_vtep_is_ignored() {
    let mut state = AgentState::new(ip(LOCAL));
    state.port_wired(port("tap1", net(1), 100));
    state.resynced(None, None, &FdbPayload::Entries(FdbEntries::default()));
    let mut message = fanout(
        Method::AddFdbEntries,
        0,
        payload(
            net(1),
            100,
            vec![
                (LOCAL, vec![FLOODING_ENTRY]),
                ("192.0.2.2", vec![FLOODING_ENTRY, vm(2)]),
            ],
        ),
    );
    message.stream = None;
    assert_eq!(state.receive(&message), Outcome::Applied([100].into()));
    let desired = state.network_desired(100).unwrap();
    assert_eq!(desired.flood, [ip("192.0.2.2")].into());
}

#[test]
fn the_last_port_gone_forgets_the_network() {
    let mut state = agent();
    state.receive(&host_cast(
        1,
        10,
        payload(net(1), 100, vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
    ));
    assert_eq!(state.port_gone("tap1"), [100].into());
    assert!(state.network_desired(100).is_none());
    assert!(state.table(net(1)).is_none());
    assert!(state.desired().networks.is_empty());
}

#[test]
fn an_agent_that_has_not_reached_the_servers_last_position_is_lagging() {
    let mut state = agent();
    state.receive(&fanout(
        Method::AddFdbEntries,
        11,
        payload(net(1), 100, vec![("192.0.2.2", vec![FLOODING_ENTRY])]),
    ));
    // The server had sent fanout 12 one heartbeat ago; the agent is at 11: it was lost.
    let then = Some(Positions {
        fanout: 12,
        host: 0,
    });
    assert!(state.lagging(7, then));
    // Up to date, or the first check: not lagging.
    assert!(!state.lagging(
        7,
        Some(Positions {
            fanout: 11,
            host: 0
        })
    ));
    assert!(!state.lagging(7, None));
}

#[test]
fn explain_knows_which_message_last_set_an_entry() {
    let mut state = agent();
    state.receive(&host_cast(
        1,
        10,
        payload(
            net(1),
            100,
            vec![("192.0.2.2", vec![FLOODING_ENTRY, vm(2)])],
        ),
    ));
    assert_eq!(state.since(net(1), vm(2).mac), Some(Since::HostCast(1)));
    state.receive(&fanout(
        Method::AddFdbEntries,
        11,
        payload(net(1), 100, vec![("192.0.2.3", vec![vm(2)])]),
    ));
    assert_eq!(state.since(net(1), vm(2).mac), Some(Since::Fanout(11)));
    state.receive(&fanout(
        Method::RemoveFdbEntries,
        12,
        payload(net(1), 100, vec![("192.0.2.3", vec![vm(2)])]),
    ));
    assert_eq!(state.since(net(1), vm(2).mac), None);
}

#[test]
fn an_agent_following_neutron_applies_numbered_casts_without_resyncing() {
    // A stray l2pop server on the same topic must not make a Neutron-following agent resync
    // (it has no snapshot call: a resync would empty its table).
    let message = fanout(
        Method::AddFdbEntries,
        7,
        payload(
            net(1),
            100,
            vec![("192.0.2.2", vec![FLOODING_ENTRY, vm(2)])],
        ),
    );
    let mut numbered = AgentState::new(ip(LOCAL));
    numbered.port_wired(port("tap1", net(1), 100));
    numbered.resynced(None, None, &FdbPayload::Entries(FdbEntries::default()));
    assert!(matches!(numbered.receive(&message), Outcome::Resync(_)));
    let mut state = AgentState::following_neutron(ip(LOCAL));
    state.port_wired(port("tap1", net(1), 100));
    state.resynced(None, None, &FdbPayload::Entries(FdbEntries::default()));
    assert_eq!(state.receive(&message), Outcome::Applied([100].into()));
    assert_eq!(
        state.network_desired(100).unwrap().flood,
        [ip("192.0.2.2")].into()
    );
}
