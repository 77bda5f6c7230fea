//! `/v2.0/l2pop/routers` without a server: an HA router's hosts move its HA ports' presence
//! (D5, D6), every write is one command that replays, and bad input changes nothing.

use l2pop_model::{NetworkId, RouterId};

use super::*;
use crate::router::RouterBody;

const ROUTER: &str = "0a000000-0000-0000-0000-00000000000a";

fn router_id() -> RouterId {
    ROUTER.parse().unwrap()
}

fn put(value: Value) -> Result<Request, crate::NeutronError> {
    let body: RouterBody = body(json!({ "router": value }), "router")?;
    Ok(Request::RouterPut(body.record(router_id())?))
}

fn host(name: &str) -> Host {
    name.parse().unwrap()
}

impl Fixture {
    fn agent(&mut self, host: &str, ip: &str) {
        let request = Request::AgentReport {
            body: body(
                json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"], "start_flag": true}}),
                "agent",
            )
            .unwrap(),
            reply: ReportReply::Agent,
        };
        self.handle(request).unwrap();
    }

    fn up(&mut self, port: PortId, host: &str) -> Option<String> {
        self.handle(Request::Device {
            device: DeviceName::Port(port),
            up: true,
            body: body(json!({"device": {"host": host}}), "device").unwrap(),
            reply: DeviceReply::Port,
        })
        .unwrap()
        .0
    }

    /// A network with a VM on `compute-3` (up) and the router's HA replicated interface bound
    /// to `l3-1`, agents on all three hosts and on `l3-2`.
    fn ha_network(&mut self) -> (NetworkId, PortId) {
        for (name, ip) in [
            ("compute-3", "192.0.2.3"),
            ("l3-1", "192.0.2.11"),
            ("l3-2", "192.0.2.12"),
        ] {
            self.agent(name, ip);
        }
        let (network, vm) = self.network_with_port("compute-3");
        self.up(vm, "compute-3");
        let (_, port) = self
            .handle(Request::PortCreate(
                body(
                    json!({"port": {"network_id": network, "binding:host_id": "l3-1",
                        "device_owner": "network:ha_router_replicated_interface",
                        "device_id": ROUTER}}),
                    "port",
                )
                .unwrap(),
            ))
            .unwrap();
        let port = port["port"]["id"].as_str().unwrap().parse().unwrap();
        (network.parse().unwrap(), port)
    }

    fn on(&self, name: &str, network: NetworkId) -> bool {
        self.state.engine().is_on(&host(name), network)
    }
}

/// Rule 12 with the router's hosts from the API: the active HA interface counts on every host
/// hosting the router, a host leaving takes its flood away, a delete takes all of them.
#[test]
fn an_ha_routers_hosts_carry_its_active_interface() {
    let mut fixture = Fixture::new();
    let (network, port) = fixture.ha_network();
    let (command, answer) = fixture
        .handle(put(json!({"ha": true, "hosts": ["l3-1", "l3-2"]})).unwrap())
        .unwrap();
    assert_eq!(command.as_deref(), Some("router_put"));
    assert_eq!(
        answer,
        json!({"router": {"id": ROUTER, "ha": true, "hosts": ["l3-1", "l3-2"]}})
    );
    assert!(!fixture.on("l3-1", network), "the HA port is down yet");

    // Up from a host that hosts the router: active on both (rule 12).
    assert_eq!(fixture.up(port, "l3-1").as_deref(), Some("device_up"));
    assert!(fixture.on("l3-1", network) && fixture.on("l3-2", network));

    // l3-2 leaves: its presence goes, with a cast; l3-1 keeps it.
    let outcome = fixture
        .state
        .handle(
            &Caller::Admin,
            put(json!({"ha": true, "hosts": ["l3-1"]})).unwrap(),
            &fixture.tenant,
            &mut fixture.fresh,
        )
        .unwrap();
    assert!(!outcome.notifications.is_empty(), "l3-2's flood is removed");
    fixture.log.extend(outcome.command);
    assert!(fixture.on("l3-1", network) && !fixture.on("l3-2", network));

    // The same PUT again changes nothing and logs nothing.
    let (command, _) = fixture
        .handle(put(json!({"ha": true, "hosts": ["l3-1"]})).unwrap())
        .unwrap();
    assert_eq!(command, None);

    // Replaying the log rebuilds the same router and membership; so does a snapshot.
    let mut replayed = NeutronState::new();
    for command in &fixture.log {
        replayed.execute(command).unwrap();
    }
    let restored = NeutronState::restore(&fixture.state.save().unwrap()).unwrap();
    for state in [&replayed, &restored] {
        assert_eq!(
            state.catalog().routers.get(&router_id()),
            fixture.state.catalog().routers.get(&router_id())
        );
        assert!(state.engine().is_on(&host("l3-1"), network));
        assert!(!state.engine().is_on(&host("l3-2"), network));
    }

    // Delete: the interface counts nowhere.
    let (command, answer) = fixture.handle(Request::RouterDelete(router_id())).unwrap();
    assert_eq!(
        (command.as_deref(), answer),
        (Some("router_delete"), Value::Null)
    );
    assert!(!fixture.on("l3-1", network));
    assert!(fixture.state.catalog().routers.is_empty());
}

/// Neutron's L3 agent may host a router on a host whose L2 agent has not reported yet: accepted,
/// and the host joins once its agent reports.
#[test]
fn a_router_host_without_an_agent_joins_when_its_agent_reports() {
    let mut fixture = Fixture::new();
    let (network, port) = fixture.ha_network();
    fixture
        .handle(put(json!({"ha": true, "hosts": ["l3-1", "l3-9"]})).unwrap())
        .unwrap();
    fixture.up(port, "l3-1");
    assert!(fixture.on("l3-1", network) && !fixture.on("l3-9", network));
    fixture.agent("l3-9", "192.0.2.19");
    assert!(fixture.on("l3-9", network));
}

/// Every refusal names the field and value, and leaves state and log as they were.
#[test]
fn bad_router_input_is_refused_by_name_and_changes_nothing() {
    let mut fixture = Fixture::new();
    fixture
        .handle(put(json!({"ha": true, "hosts": ["l3-1"]})).unwrap())
        .unwrap();
    let before = fixture.state.executed();
    let cases = [
        (
            json!({"ha": true, "hosts": ["l3-1"], "distributed": true}),
            "distributed",
        ),
        (json!({"ha": "yes", "hosts": []}), "ha"),
        (json!({"hosts": ["l3-1"]}), "ha"),
        (json!({"ha": true}), "hosts"),
        (json!({"ha": true, "hosts": ["l3 1"]}), "hosts[0]"),
        (
            json!({"ha": true, "hosts": ["l3-1", "l3-2", "l3-1"]}),
            "hosts[2]",
        ),
    ];
    for (value, field) in cases {
        let error = put(value.clone()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::BadRequest, "{value}");
        assert_eq!(error.field.as_deref(), Some(field), "{value}: {error:?}");
    }
    // Project callers may neither write nor read routers.
    let project = Caller::Project("p".into());
    let error = fixture
        .state
        .handle(
            &project,
            put(json!({"ha": false, "hosts": []})).unwrap(),
            &fixture.tenant,
            &mut fixture.fresh,
        )
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Forbidden);
    assert_eq!(
        fixture
            .state
            .catalog()
            .router_answer(router_id(), &project)
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
    // An unknown router's delete is a 404 naming it.
    let unknown: RouterId = "0b000000-0000-0000-0000-00000000000b".parse().unwrap();
    let error = fixture.handle(Request::RouterDelete(unknown)).unwrap_err();
    assert_eq!(
        (error.kind, error.name),
        (ErrorKind::NotFound, "RouterNotFound")
    );
    assert_eq!(fixture.state.executed(), before);
    assert_eq!(
        fixture.state.catalog().routers[&router_id()].hosts,
        [host("l3-1")].into_iter().collect()
    );
}

/// `GET /v2.0/l2pop/routers` pages, filters (a host in `hosts`) and projects like any listing.
#[test]
fn routers_list_filters_by_host() {
    let mut fixture = Fixture::new();
    for (n, hosts) in [(1u128, vec!["a", "b"]), (2, vec!["b"]), (3, vec!["c"])] {
        let body: RouterBody =
            body(json!({"router": {"ha": true, "hosts": hosts}}), "router").unwrap();
        let record = body.record(RouterId(Uuid::from_u128(n))).unwrap();
        fixture.handle(Request::RouterPut(record)).unwrap();
    }
    let page = |pairs: &[(&str, &str)]| {
        fixture
            .state
            .catalog()
            .page(
                Collection::Routers,
                &Caller::Admin,
                &query(pairs).unwrap(),
                None,
                10,
                Time(0),
            )
            .unwrap()
            .items
    };
    assert_eq!(page(&[]).len(), 3);
    let with_b = page(&[("hosts", "b"), ("fields", "id")]);
    assert_eq!(
        with_b,
        vec![
            json!({"id": Uuid::from_u128(1)}),
            json!({"id": Uuid::from_u128(2)})
        ]
    );
    assert!(query(&[("distributed", "true")]).is_ok_and(|params| {
        fixture
            .state
            .catalog()
            .page(
                Collection::Routers,
                &Caller::Admin,
                &params,
                None,
                10,
                Time(0),
            )
            .is_err()
    }));
}
