//! The resource layer without a server: typed requests through `handle`, answers as data, the
//! catalog as a snapshot, paging, and liveness with time as an input.
#![allow(clippy::unwrap_used)]

use l2pop_model::{Host, PortId, Uuid};
use serde_json::{Value, json};

use crate::error::ErrorKind;
use crate::listing::{Collection, ListParams};
use crate::request::{DeviceName, DeviceReply, Fresh, ReportReply, Request, TenantNetworks, body};
use crate::{Caller, NeutronState, Time};

/// Deterministic fresh values: counting ids and MACs, a clock the test moves.
struct Counter {
    next: u128,
    now: Time,
}

impl Fresh for Counter {
    fn uuid(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }

    fn mac_suffix(&mut self) -> [u8; 3] {
        self.next += 1;
        let [.., a, b, c] = self.next.to_be_bytes();
        [a, b, c]
    }

    fn now(&mut self) -> Time {
        self.now
    }
}

struct Fixture {
    state: NeutronState,
    fresh: Counter,
    tenant: TenantNetworks,
    /// Every command `handle` executed, in order.
    log: Vec<crate::command::Command>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            state: NeutronState::new(),
            fresh: Counter {
                next: 0,
                now: Time(1_800_000_000),
            },
            tenant: TenantNetworks::default(),
            log: Vec::new(),
        }
    }

    fn handle(&mut self, request: Request) -> Result<(Option<String>, Value), crate::NeutronError> {
        let outcome = self
            .state
            .handle(&Caller::Admin, request, &self.tenant, &mut self.fresh)?;
        self.log.extend(outcome.command.clone());
        let command = outcome.command.map(|c| {
            serde_json::to_value(c).unwrap()["op"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        Ok((command, outcome.answer?))
    }

    fn network_with_port(&mut self, host: &str) -> (String, PortId) {
        let (_, network) = self
            .handle(Request::NetworkCreate(
                body(json!({"network": {"name": "n"}}), "network").unwrap(),
            ))
            .unwrap();
        let network = network["network"]["id"].as_str().unwrap().to_owned();
        let (_, port) = self
            .handle(Request::PortCreate(
                body(
                    json!({"port": {"network_id": network, "binding:host_id": host}}),
                    "port",
                )
                .unwrap(),
            ))
            .unwrap();
        (
            network,
            port["port"]["id"].as_str().unwrap().parse().unwrap(),
        )
    }

    fn report(&mut self, host: &str, start_flag: bool) -> Value {
        let request = Request::AgentReport {
            body: body(
                json!({"agent": {"host": host, "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": start_flag}}),
                "agent",
            )
            .unwrap(),
            reply: ReportReply::Agent,
        };
        self.handle(request).unwrap().1
    }
}

fn device(name: &str, up: bool, reply: DeviceReply) -> Request {
    Request::Device {
        device: DeviceName::Agent(name.to_owned()),
        up,
        body: body(json!({"device": {"host": "compute-1"}}), "device").unwrap(),
        reply,
    }
}

#[test]
fn an_unknown_device_going_down_is_an_answer_over_rpc_and_a_refusal_otherwise() {
    let mut fixture = Fixture::new();
    let (command, answer) = fixture
        .handle(device("tapffffffff-ff", false, DeviceReply::Rpc))
        .unwrap();
    assert_eq!(command, None, "nothing to log");
    assert_eq!(answer, json!({"device": "tapffffffff-ff", "exists": false}));
    let refused = fixture
        .handle(device("tapffffffff-ff", true, DeviceReply::Rpc))
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotFound);
    assert_eq!(refused.name, "PortNotFound");
    assert_eq!(refused.field.as_deref(), Some("device"));
}

#[test]
fn device_up_by_tap_name_logs_one_command_and_answers_as_neutron() {
    let mut fixture = Fixture::new();
    fixture.report("compute-1", true);
    let (_, port) = fixture.network_with_port("compute-1");
    let tap = format!("tap{}", &port.to_string()[..11]);
    let (command, answer) = fixture
        .handle(device(&tap, true, DeviceReply::Rpc))
        .unwrap();
    assert_eq!(command.as_deref(), Some("device_up"));
    assert_eq!(answer, Value::Null);
    assert!(fixture.state.catalog().active_ports.contains(&port));
    let (command, answer) = fixture
        .handle(device(&tap, false, DeviceReply::Rpc))
        .unwrap();
    assert_eq!(command.as_deref(), Some("device_down"));
    assert_eq!(answer, json!({"device": tap, "exists": true}));
    assert!(!fixture.state.catalog().active_ports.contains(&port));
}

#[test]
fn a_refused_request_changes_nothing_and_names_the_field() {
    let mut fixture = Fixture::new();
    let (network, _) = fixture.network_with_port("compute-1");
    let executed = fixture.state.executed();
    let refused = fixture
        .handle(Request::PortCreate(
            body(
                json!({"port": {"network_id": network, "fixed_ips": [{"ip_address": "10.99.0.1"}]}}),
                "port",
            )
            .unwrap(),
        ))
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::BadRequest);
    assert_eq!(refused.field.as_deref(), Some("fixed_ips"));
    assert_eq!(refused.value, Some(json!("10.99.0.1")));
    assert_eq!(fixture.state.executed(), executed);
}

#[test]
fn a_published_catalog_is_a_snapshot_later_writes_do_not_touch() {
    let mut fixture = Fixture::new();
    let (network, first) = fixture.network_with_port("compute-1");
    let snapshot = fixture.state.catalog().clone();
    fixture
        .handle(Request::PortCreate(
            body(json!({"port": {"network_id": network}}), "port").unwrap(),
        ))
        .unwrap();
    fixture.handle(Request::PortDelete(first)).unwrap();
    assert_eq!(snapshot.ports.len(), 1);
    assert!(snapshot.ports.contains_key(&first));
    assert_eq!(fixture.state.catalog().ports.len(), 1);
    assert!(!fixture.state.catalog().ports.contains_key(&first));
}

#[test]
fn pages_follow_id_order_and_say_whether_more_follow() {
    let mut fixture = Fixture::new();
    let (network, _) = fixture.network_with_port("compute-1");
    for _ in 0..4 {
        fixture
            .handle(Request::PortCreate(
                body(json!({"port": {"network_id": network}}), "port").unwrap(),
            ))
            .unwrap();
    }
    let catalog = fixture.state.catalog();
    let all: Vec<String> = catalog.ports.keys().map(ToString::to_string).collect();
    let params = ListParams::parse([("limit".to_owned(), "2".to_owned())]).unwrap();
    let now = Time(0);
    let page = catalog
        .page(Collection::Ports, &Caller::Admin, &params, None, 2, now)
        .unwrap();
    assert_eq!(page.first_id.as_deref(), Some(all[0].as_str()));
    assert_eq!(page.last_id.as_deref(), Some(all[1].as_str()));
    assert!(page.more);
    let last = catalog
        .page(
            Collection::Ports,
            &Caller::Admin,
            &params,
            Some(&all[2]),
            2,
            now,
        )
        .unwrap();
    assert_eq!(last.items.len(), 2);
    assert!(!last.more, "the last two ports end the listing");
    // A project sees none of the admin's ports.
    let project = Caller::Project("alice".to_owned());
    let hidden = catalog
        .page(Collection::Ports, &project, &params, None, 2, now)
        .unwrap();
    assert!(hidden.items.is_empty() && !hidden.more);
}

#[test]
fn liveness_follows_heartbeats_with_time_as_an_input() {
    let mut fixture = Fixture::new();
    fixture.state.set_agent_down_time(75);
    let first = fixture.report("compute-1", true);
    assert_eq!(first["agent"]["alive"], true);
    let started = fixture.fresh.now;
    let host: Host = "compute-1".parse().unwrap();
    let catalog = fixture.state.catalog();
    let agent = catalog.agents.get(&host).unwrap();
    assert!(catalog.agent_alive(agent, started.plus(75)));
    assert!(!catalog.agent_alive(agent, started.plus(76)));
    // An unchanged report logs nothing but moves the heartbeat.
    fixture.fresh.now = started.plus(100);
    let request = Request::AgentReport {
        body: body(
            json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"]}}),
            "agent",
        )
        .unwrap(),
        reply: ReportReply::NewOrAlive,
    };
    let (command, answer) = fixture.handle(request).unwrap();
    assert_eq!(command, None);
    assert_eq!(answer, json!("alive"));
    let catalog = fixture.state.catalog();
    let agent = catalog.agents.get(&host).unwrap();
    assert_eq!(agent.heartbeat_at, started.plus(100));
    assert_eq!(catalog.agents_alive(started.plus(170)), 1);
    assert_eq!(catalog.agents_alive(started.plus(176)), 0);
}

fn subnet_create(fixture: &mut Fixture, subnet: Value) -> Result<Value, crate::NeutronError> {
    let request = Request::SubnetCreate(body(json!({ "subnet": subnet }), "subnet")?);
    fixture.handle(request).map(|(_, answer)| answer)
}

/// Neutron's subnet attributes the CLI shows (issue 12 item 4): default pools are the cidr's
/// host addresses less the gateway, given ones are kept; bad ones are a 400 naming the field
/// and the value, and change nothing.
#[test]
fn subnet_attributes_are_kept_and_validated() {
    let mut fixture = Fixture::new();
    let (network, _) = fixture.network_with_port("compute-1");
    let answer = subnet_create(
        &mut fixture,
        json!({"network_id": network, "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.10"}),
    )
    .unwrap();
    let subnet = &answer["subnet"];
    assert_eq!(
        subnet["allocation_pools"],
        json!([{"start": "10.0.0.1", "end": "10.0.0.9"}, {"start": "10.0.0.11", "end": "10.0.0.254"}])
    );
    for (key, empty) in [
        ("dns_nameservers", json!([])),
        ("host_routes", json!([])),
        ("description", json!("")),
        ("ipv6_address_mode", Value::Null),
        ("ipv6_ra_mode", Value::Null),
    ] {
        assert_eq!(subnet[key], empty, "{key}");
    }
    let answer = subnet_create(
        &mut fixture,
        json!({"network_id": network, "cidr": "2001:db8::/64", "ip_version": 6,
               "description": "v6", "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac",
               "allocation_pools": [{"start": "2001:db8::10", "end": "2001:db8::20"}],
               "dns_nameservers": ["2001:db8::53"],
               "host_routes": [{"destination": "2001:db8:1::/64", "nexthop": "2001:db8::2"}]}),
    )
    .unwrap();
    let subnet = &answer["subnet"];
    assert_eq!(subnet["ipv6_address_mode"], "slaac");
    assert_eq!(
        subnet["allocation_pools"],
        json!([{"start": "2001:db8::10", "end": "2001:db8::20"}])
    );
    assert_eq!(subnet["host_routes"][0]["destination"], "2001:db8:1::/64");
    let id: Uuid = subnet["id"].as_str().unwrap().parse().unwrap();
    let update = body(
        json!({"subnet": {"description": "changed", "dns_nameservers": []}}),
        "subnet",
    )
    .unwrap();
    let (command, answer) = fixture.handle(Request::SubnetUpdate(id, update)).unwrap();
    assert_eq!(command.as_deref(), Some("subnet_update"));
    assert_eq!(answer["subnet"]["description"], "changed");
    assert_eq!(answer["subnet"]["dns_nameservers"], json!([]));
    assert_eq!(answer["subnet"]["name"], "", "a name not sent is kept");

    let before = fixture.state.catalog().subnets.len();
    for (subnet, field, value) in [
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.1", "end": "10.1.0.9"}]}),
            "allocation_pools",
            json!({"start": "10.1.0.1", "end": "10.1.0.9"}),
        ),
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.2.0.5", "end": "10.2.0.9"}]}),
            "allocation_pools",
            json!({"start": "10.2.0.5", "end": "10.2.0.9"}),
        ),
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.5", "end": "10.1.0.9"}, {"start": "10.1.0.9", "end": "10.1.0.20"}]}),
            "allocation_pools",
            json!({"start": "10.1.0.9", "end": "10.1.0.20"}),
        ),
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "dns_nameservers": ["192.0.2.53", "192.0.2.53"]}),
            "dns_nameservers",
            json!("192.0.2.53"),
        ),
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "ipv6_address_mode": "slaac"}),
            "ipv6_address_mode",
            json!("slaac"),
        ),
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "ipv6_ra_mode": "stateless"}),
            "ipv6_ra_mode",
            json!("stateless"),
        ),
        (
            json!({"network_id": network, "cidr": "10.1.0.0/24", "host_routes": [{"destination": "2001:db8::/64", "nexthop": "10.1.0.1"}]}),
            "host_routes",
            json!({"destination": "2001:db8::/64", "nexthop": "10.1.0.1"}),
        ),
    ] {
        let refused = subnet_create(&mut fixture, subnet).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::BadRequest, "{refused:?}");
        assert_eq!(refused.field.as_deref(), Some(field), "{refused:?}");
        assert_eq!(refused.value.as_ref(), Some(&value), "{refused:?}");
    }
    assert_eq!(fixture.state.catalog().subnets.len(), before);
}

/// Pools computed for old log records (no `allocation_pools` kept) and edge gateways.
#[test]
fn default_allocation_pools_follow_neutron() {
    use crate::addresses::default_allocation_pools;
    let pools = |cidr: &str, gateway: Option<&str>| {
        serde_json::to_value(default_allocation_pools(
            cidr.parse().unwrap(),
            gateway.map(|g| g.parse().unwrap()),
        ))
        .unwrap()
    };
    assert_eq!(
        pools("10.0.0.0/24", Some("10.0.0.1")),
        json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
    );
    assert_eq!(
        pools("10.0.0.0/24", Some("10.0.0.254")),
        json!([{"start": "10.0.0.1", "end": "10.0.0.253"}])
    );
    assert_eq!(
        pools("10.0.0.0/24", None),
        json!([{"start": "10.0.0.1", "end": "10.0.0.254"}])
    );
    assert_eq!(
        pools("2001:db8::/64", Some("2001:db8::1")),
        json!([{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}])
    );
    let record: crate::command::SubnetRecord = serde_json::from_value(json!({
        "id": Uuid::from_u128(9), "name": "old", "project_id": "p", "network_id": Uuid::from_u128(1),
        "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "enable_dhcp": true, "created_at": "t"
    }))
    .unwrap();
    assert_eq!(
        record.allocation_pools, None,
        "a record logged before pools were kept"
    );
    let command: crate::command::Command = serde_json::from_value(
        json!({"op": "subnet_update", "id": Uuid::from_u128(9), "name": "x"}),
    )
    .unwrap();
    assert!(matches!(
        command,
        crate::command::Command::SubnetUpdate {
            name: Some(_),
            description: None,
            ..
        }
    ));
}

/// The attributes clients send with every create (issue 12 item 4): `description`, `mtu`
/// (validated against the network type), `port_security_enabled` (the network's by default),
/// `binding:vnic_type`, and `security_groups` (only `[]`: l2pop has none).
#[test]
fn common_attributes_are_kept_or_refused_by_name() {
    let mut fixture = Fixture::new();
    let (_, network) = fixture
        .handle(Request::NetworkCreate(
            body(
                json!({"network": {"name": "n", "mtu": "1400", "port_security_enabled": false, "description": "d"}}),
                "network",
            )
            .unwrap(),
        ))
        .unwrap();
    assert_eq!(network["network"]["mtu"], 1400);
    assert_eq!(network["network"]["port_security_enabled"], false);
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    let (_, port) = fixture
        .handle(Request::PortCreate(
            body(
                json!({"port": {"network_id": network_id, "description": "vm port", "security_groups": [],
                                "binding:vnic_type": "direct"}}),
                "port",
            )
            .unwrap(),
        ))
        .unwrap();
    let port = &port["port"];
    assert_eq!(port["description"], "vm port");
    assert_eq!(port["port_security_enabled"], false, "the network's");
    assert_eq!(port["binding:vnic_type"], "direct");
    assert_eq!(port["security_groups"], json!([]));
    let port_id: PortId = port["id"].as_str().unwrap().parse().unwrap();
    let (command, port) = fixture
        .handle(Request::PortUpdate(
            port_id,
            body(
                json!({"port": {"port_security_enabled": true, "binding:vnic_type": "normal"}}),
                "port",
            )
            .unwrap(),
        ))
        .unwrap();
    assert_eq!(command.as_deref(), Some("port_update"));
    assert_eq!(port["port"]["port_security_enabled"], true);
    assert_eq!(port["port"]["binding:vnic_type"], "normal");
    assert_eq!(port["port"]["description"], "vm port");

    let (_, plain) = fixture
        .handle(Request::NetworkCreate(
            body(json!({"network": {}}), "network").unwrap(),
        ))
        .unwrap();
    assert_eq!(
        plain["network"]["mtu"], 1450,
        "VXLAN on a 1,500-byte underlay"
    );
    assert_eq!(plain["network"]["port_security_enabled"], true);

    let ports_before = fixture.state.catalog().ports.len();
    let refused = fixture
        .handle(Request::PortCreate(
            body(
                json!({"port": {"network_id": network_id, "security_groups": ["default"]}}),
                "port",
            )
            .unwrap(),
        ))
        .unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("security_groups"));
    assert_eq!(refused.value, Some(json!("default")));
    assert_eq!(fixture.state.catalog().ports.len(), ports_before);
    for mtu in [1451, 67] {
        let refused = fixture
            .handle(Request::NetworkCreate(
                body(json!({"network": {"mtu": mtu}}), "network").unwrap(),
            ))
            .unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("mtu"));
        assert_eq!(refused.value, Some(json!(mtu)));
    }
    let refused = body::<crate::request::PortCreateBody>(
        json!({"port": {"network_id": network_id, "binding:vnic_type": "fancy"}}),
        "port",
    )
    .unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("binding:vnic_type"));
    assert_eq!(refused.value, Some(json!("fancy")));
}

fn query(pairs: &[(&str, &str)]) -> Result<ListParams, crate::NeutronError> {
    ListParams::parse(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

/// Neutron's filter validation, `sort_key`/`sort_dir`, and `fixed_ips=ip_address=...` /
/// `fixed_ips=subnet_id=...` filters (issue 12 item 4).
#[test]
fn filters_are_validated_sorted_and_match_fixed_ips() {
    let mut fixture = Fixture::new();
    let (network, _) = fixture.network_with_port("compute-1");
    let subnet = subnet_create(
        &mut fixture,
        json!({"network_id": network, "cidr": "10.0.0.0/24"}),
    )
    .unwrap();
    let subnet_id = subnet["subnet"]["id"].as_str().unwrap().to_owned();
    for name in ["b", "c", "a"] {
        fixture
            .handle(Request::PortCreate(
                body(
                    json!({"port": {"network_id": network, "name": name}}),
                    "port",
                )
                .unwrap(),
            ))
            .unwrap();
    }
    let catalog = fixture.state.catalog();
    let now = Time(0);
    let list = |params: &ListParams, after: Option<&str>, max: usize| {
        catalog.page(Collection::Ports, &Caller::Admin, params, after, max, now)
    };
    let names = |page: &crate::listing::Page| -> Vec<String> {
        page.items
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let refused = list(&query(&[("colour", "red")]).unwrap(), None, 10).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::BadRequest);
    assert_eq!(refused.field.as_deref(), Some("colour"));
    let refused = list(&query(&[("sort_key", "colour")]).unwrap(), None, 10).unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("sort_key"));
    assert_eq!(refused.value, Some(json!("colour")));
    let refused = query(&[("sort_key", "name"), ("sort_dir", "up")]).unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("sort_dir"));
    let refused = list(&query(&[("fixed_ips", "10.0.0.2")]).unwrap(), None, 10).unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("fixed_ips"));

    // By name, ascending then descending, paged by marker.
    let by_name = query(&[
        ("sort_key", "name"),
        ("sort_dir", "asc"),
        ("device_owner", ""),
    ])
    .unwrap();
    let first = list(&by_name, None, 2).unwrap();
    assert_eq!(names(&first), ["", "a"], "the port without a name first");
    assert!(first.more);
    let rest = list(&by_name, first.last_id.as_deref(), 2).unwrap();
    assert_eq!(names(&rest), ["b", "c"]);
    assert!(!rest.more);
    let desc = query(&[("sort_key", "name"), ("sort_dir", "desc")]).unwrap();
    assert_eq!(names(&list(&desc, None, 10).unwrap()), ["c", "b", "a", ""]);

    // fixed_ips: the port named "a" was created third after the subnet: 10.0.0.4.
    let a = list(&query(&[("name", "a")]).unwrap(), None, 10).unwrap();
    let ip = a.items[0]["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_ip = query(&[("fixed_ips", &format!("ip_address={ip}"))]).unwrap();
    assert_eq!(names(&list(&by_ip, None, 10).unwrap()), ["a"]);
    let by_subnet = query(&[("fixed_ips", &format!("subnet_id={subnet_id}"))]).unwrap();
    assert_eq!(
        list(&by_subnet, None, 10).unwrap().items.len(),
        3,
        "the first port has no address"
    );
    let both = query(&[
        ("fixed_ips", &format!("subnet_id={subnet_id}")),
        ("fixed_ips", "ip_address=10.9.9.9"),
    ])
    .unwrap();
    assert!(list(&both, None, 10).unwrap().items.is_empty());
}

/// Automatic allocation draws from the subnet's pools, in order across them, and fails once
/// they are full; an address asked for by name may lie outside them (Neutron's rules).
#[test]
fn addresses_are_allocated_from_the_pools_only() {
    let mut fixture = Fixture::new();
    let (_, network) = fixture
        .handle(Request::NetworkCreate(
            body(json!({"network": {"name": "pools"}}), "network").unwrap(),
        ))
        .unwrap();
    let network = network["network"]["id"].as_str().unwrap().to_owned();
    fixture
        .handle(Request::SubnetCreate(
            body(
                json!({"subnet": {"network_id": network, "cidr": "10.7.0.0/24",
                    "allocation_pools": [{"start": "10.7.0.200", "end": "10.7.0.200"},
                                         {"start": "10.7.0.10", "end": "10.7.0.11"}]}}),
                "subnet",
            )
            .unwrap(),
        ))
        .unwrap();
    let mut port = |fixed_ips: Option<Value>| {
        let mut request = json!({"port": {"network_id": network}});
        if let Some(ips) = fixed_ips {
            request["port"]["fixed_ips"] = ips;
        }
        fixture.handle(Request::PortCreate(body(request, "port").unwrap()))
    };
    let mut got = Vec::new();
    for _ in 0..3 {
        let (_, answer) = port(None).unwrap();
        got.push(answer["port"]["fixed_ips"][0]["ip_address"].clone());
    }
    assert_eq!(
        got,
        [json!("10.7.0.10"), json!("10.7.0.11"), json!("10.7.0.200")]
    );
    let full = port(None).unwrap_err();
    assert_eq!(full.kind, ErrorKind::Conflict, "{full}");
    assert_eq!(full.name, "IpAddressGenerationFailure");
    let (_, outside) = port(Some(json!([{"ip_address": "10.7.0.50"}]))).unwrap();
    assert_eq!(outside["port"]["fixed_ips"][0]["ip_address"], "10.7.0.50");
}

fn id_of(answer: &Value, key: &str) -> String {
    answer[key]["id"].as_str().unwrap().to_owned()
}

/// `get_bgp_export`: the l2 BGPVPNs bound to the BGP agent's speakers, their networks' full
/// FDBs as no compute host sees them (the agent's own host included) and without the site's
/// entries, and the fanout position they reflect.
#[test]
fn the_bgp_export_snapshot_is_what_the_speaker_serves_without_the_site() {
    let mut f = Fixture::new();
    // bgp-1 is also a compute host with an active port: its port is exported too.
    f.report("bgp-1", true);
    let (_, network) = f
        .handle(Request::NetworkCreate(
            body(json!({"network": {"name": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}}), "network").unwrap(),
        ))
        .unwrap();
    let network = id_of(&network, "network");
    f.handle(Request::SubnetCreate(
        body(
            json!({"subnet": {"network_id": network, "cidr": "10.0.0.0/24"}}),
            "subnet",
        )
        .unwrap(),
    ))
    .unwrap();
    let (_, port) = f
        .handle(Request::PortCreate(
            body(
                json!({"port": {"network_id": network, "binding:host_id": "bgp-1"}}),
                "port",
            )
            .unwrap(),
        ))
        .unwrap();
    let mac = port["port"]["mac_address"].as_str().unwrap().to_owned();
    let port = id_of(&port, "port");
    f.handle(Request::Device {
        device: DeviceName::Agent(port),
        up: true,
        body: body(json!({"device": {"host": "bgp-1"}}), "device").unwrap(),
        reply: DeviceReply::Rpc,
    })
    .unwrap();

    let vpn = |f: &mut Fixture, kind: &str, rt: &str| {
        let (_, vpn) = f
            .handle(Request::BgpvpnCreate(
                body(
                    json!({"bgpvpn": {"name": kind, "type": kind, "route_targets": [rt]}}),
                    "bgpvpn",
                )
                .unwrap(),
            ))
            .unwrap();
        let vpn: l2pop_bgpvpn::BgpvpnId = id_of(&vpn, "bgpvpn").parse().unwrap();
        f.handle(Request::AssociationCreate(
            vpn,
            body(
                json!({"network_association": {"network_id": network}}),
                "network_association",
            )
            .unwrap(),
        ))
        .unwrap();
        vpn
    };
    let l2 = vpn(&mut f, "l2", "65001:1001");
    let l3 = vpn(&mut f, "l3", "65001:1002");
    let unbound = vpn(&mut f, "l2", "65001:1003");
    let (_, agent) = f
        .handle(Request::BgpAgentReport(
            Host::new("bgp-1").unwrap(),
            body(json!({"bgp_agent": {"start_flag": true}}), "bgp_agent").unwrap(),
        ))
        .unwrap();
    let agent: Uuid = id_of(&agent, "agent").parse().unwrap();
    let (_, speaker) = f
        .handle(Request::SpeakerCreate(
            body(
                json!({"bgp_speaker": {"name": "s", "local_as": 65000}}),
                "bgp_speaker",
            )
            .unwrap(),
        ))
        .unwrap();
    let speaker: l2pop_bgpvpn::SpeakerId = id_of(&speaker, "bgp_speaker").parse().unwrap();
    f.handle(Request::DrInstanceAdd {
        agent,
        body: serde_json::from_value(json!({"bgp_speaker_id": speaker})).unwrap(),
    })
    .unwrap();
    for vpn in [l2, l3] {
        f.handle(Request::SpeakerVpn {
            speaker,
            body: serde_json::from_value(json!({"bgpvpn_id": vpn})).unwrap(),
            add: true,
        })
        .unwrap();
    }
    // The site's gateway, learned by bgp-1.
    f.handle(Request::BgpGateways(
        serde_json::from_value(json!({"host": "bgp-1", "gateways": [
            {"vtep": "203.0.113.10", "route_targets": ["65001:1001"], "vni": 1001, "withdrawn": false}]}))
        .unwrap(),
    ))
    .unwrap();

    // bgp-1's own table has the gateway: it was learned and counts.
    let table = f
        .state
        .query(
            &Caller::Admin,
            crate::Query::HostFdb(Host::new("bgp-1").unwrap()),
        )
        .unwrap();
    assert!(table.to_string().contains("203.0.113.10"), "{table}");

    let answer = f
        .state
        .query(
            &Caller::Admin,
            crate::Query::BgpExport {
                host: Host::new("bgp-1").unwrap(),
                stream_id: 0xab,
            },
        )
        .unwrap();
    assert_eq!(answer["stream_id"], "00000000000000ab");
    assert_eq!(answer["fanout_seq"], f.state.engine().fanout_seq());
    let vpns: Vec<&str> = answer["bgpvpns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        vpns,
        vec![l2.to_string()],
        "only bound l2 BGPVPNs, not {l3} or {unbound}"
    );
    assert_eq!(answer["bgpvpns"][0]["route_targets"], json!(["65001:1001"]));
    let ports = &answer["fdb_entries"][&network]["ports"];
    let vteps: Vec<&String> = ports.as_object().unwrap().keys().collect();
    assert_eq!(
        vteps,
        vec!["192.0.2.1"],
        "bgp-1's own VTEP, not the site's gateway"
    );
    let entries = ports["192.0.2.1"].as_array().unwrap();
    assert_eq!(entries[0], json!(["00:00:00:00:00:00", "0.0.0.0"]));
    assert_eq!(entries[1][0], json!(mac));
}

#[test]
fn every_attribute_of_the_bgpvpn_view_is_a_filter_key_and_no_other_is() {
    let mut fixture = Fixture::new();
    fixture
        .handle(Request::BgpvpnCreate(
            body(
                json!({"bgpvpn": {"name": "v", "type": "l2", "route_targets": ["64512:1"]}}),
                "bgpvpn",
            )
            .unwrap(),
        ))
        .unwrap();
    let listing = fixture
        .state
        .query(&Caller::Admin, crate::request::Query::BgpvpnList)
        .unwrap();
    let mut shown: Vec<&str> = listing["bgpvpns"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    shown.sort_unstable();
    let mut keys = crate::listing::BGPVPN_ATTRIBUTES.to_vec();
    keys.sort_unstable();
    assert_eq!(shown, keys);
    let params = ListParams::parse([("colour".to_owned(), "red".to_owned())]).unwrap();
    let error = params
        .check_attributes("bgpvpns", crate::listing::BGPVPN_ATTRIBUTES)
        .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("colour"), "{error:?}");
}

/// `PUT /v2.0/agents/{id}`: logged, shown, kept across the agent's next start and a replay of the
/// log; Neutron's l2population ignores `admin_state_up`, so the engine sends nothing.
#[test]
fn agent_update_is_logged_shown_and_replayed_without_touching_the_fdb() {
    let mut fixture = Fixture::new();
    let agent = fixture.report("compute-1", true);
    let id: Uuid = agent["agent"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(agent["agent"]["admin_state_up"], true);
    let update =
        |value: Value| Request::AgentUpdate(id, body(json!({ "agent": value }), "agent").unwrap());
    let mut log = Vec::new();
    let first = fixture
        .state
        .handle(
            &Caller::Admin,
            Request::AgentReport {
                body: body(
                    json!({"agent": {"host": "compute-2", "tunneling_ip": "192.0.2.2", "tunnel_types": ["vxlan"], "start_flag": true}}),
                    "agent",
                )
                .unwrap(),
                reply: ReportReply::Agent,
            },
            &fixture.tenant,
            &mut fixture.fresh,
        )
        .unwrap();
    log.push(first.command.unwrap());
    let outcome = fixture
        .state
        .handle(
            &Caller::Admin,
            update(json!({"admin_state_up": false, "description": "drained"})),
            &fixture.tenant,
            &mut fixture.fresh,
        )
        .unwrap();
    assert!(outcome.notifications.is_empty(), "l2pop ignores it");
    let answer = outcome.answer.unwrap();
    assert_eq!(answer["agent"]["admin_state_up"], false);
    assert_eq!(answer["agent"]["description"], "drained");
    let command = outcome.command.unwrap();
    assert_eq!(
        serde_json::to_value(&command).unwrap()["op"],
        "agent_update"
    );

    // A restarted agent keeps what the operator set.
    let again = fixture.report("compute-1", true);
    assert_eq!(again["agent"]["admin_state_up"], false);
    assert_eq!(again["agent"]["description"], "drained");

    // Replaying the report and the update rebuilds the same record.
    let mut replayed = NeutronState::new();
    let report = Request::AgentReport {
        body: body(
            json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": true}}),
            "agent",
        )
        .unwrap(),
        reply: ReportReply::Agent,
    };
    let mut fresh = Counter {
        next: 0,
        now: fixture.fresh.now,
    };
    let planned = replayed
        .plan(&Caller::Admin, report, &fixture.tenant, &mut fresh)
        .unwrap();
    replayed.execute(&planned.command.unwrap()).unwrap();
    replayed.execute(&command).unwrap();
    let host: Host = "compute-1".parse().unwrap();
    let agent = replayed.catalog().agents.get(&host).unwrap();
    assert!(!agent.admin_state_up);
    assert_eq!(agent.description, "drained");
}

/// Anything but `admin_state_up` and `description` is a 400 naming it; an unknown id is a 404;
/// neither changes anything.
#[test]
fn agent_update_refuses_other_attributes_and_unknown_agents() {
    let mut fixture = Fixture::new();
    let agent = fixture.report("compute-1", true);
    let id: Uuid = agent["agent"]["id"].as_str().unwrap().parse().unwrap();
    let refused =
        body::<crate::request::AgentUpdateBody>(json!({"agent": {"host": "elsewhere"}}), "agent")
            .unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("host"));
    let refused = body::<crate::request::AgentUpdateBody>(
        json!({"agent": {"admin_state_up": "maybe"}}),
        "agent",
    )
    .unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("admin_state_up"));
    assert_eq!(refused.value, Some(json!("maybe")));
    let unknown = Uuid::from_u128(0xdead);
    let error = fixture
        .handle(Request::AgentUpdate(
            unknown,
            body(json!({"agent": {"admin_state_up": false}}), "agent").unwrap(),
        ))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    let long = "x".repeat(1025);
    let error = fixture
        .handle(Request::AgentUpdate(
            id,
            body(json!({"agent": {"description": long}}), "agent").unwrap(),
        ))
        .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("description"));
    let host: Host = "compute-1".parse().unwrap();
    let agent = fixture.state.catalog().agents.get(&host).unwrap();
    assert!(agent.admin_state_up && agent.description.is_empty());
}

fn bulk_ports(fixture: &mut Fixture, ports: Value) -> Result<Outcome, crate::NeutronError> {
    let request = crate::request::create_body(json!({ "ports": ports }), "port")?
        .request("ports", Request::PortCreate);
    fixture
        .state
        .handle(&Caller::Admin, request, &fixture.tenant, &mut fixture.fresh)
}

use crate::handle::Outcome;

/// `{"ports": [...]}`: every item planned against what the items before it took (automatic
/// addresses differ, MACs differ), one command logged, the answer in Neutron's bulk shape; the
/// log replays into the same ports.
#[test]
fn bulk_create_takes_every_item_in_one_command_that_replays() {
    let mut fixture = Fixture::new();
    let network = subnet_network(&mut fixture);
    let outcome = bulk_ports(
        &mut fixture,
        json!([
            {"network_id": network, "name": "a"},
            {"network_id": network, "name": "b"},
            {"network_id": network, "name": "c", "fixed_ips": [{"ip_address": "10.0.0.50"}]},
        ]),
    )
    .unwrap();
    let answer = outcome.answer.unwrap();
    let ports = answer["ports"].as_array().unwrap();
    let names: Vec<&str> = ports.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let ips: Vec<&str> = ports
        .iter()
        .map(|p| p["fixed_ips"][0]["ip_address"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["10.0.0.2", "10.0.0.3", "10.0.0.50"]);
    assert_ne!(ports[0]["mac_address"], ports[1]["mac_address"]);
    let command = outcome.command.unwrap();
    let logged = serde_json::to_value(&command).unwrap();
    assert_eq!(logged["op"], "bulk");
    assert_eq!(logged["commands"].as_array().unwrap().len(), 3);

    // Replayed from the log (network, subnet, then the bulk): the same three ports.
    let mut replayed = NeutronState::new();
    for command in &fixture.log {
        replayed.execute(command).unwrap();
    }
    replayed.execute(&command).unwrap();
    assert_eq!(replayed.catalog().ports, fixture.state.catalog().ports);
    assert_eq!(replayed.executed(), fixture.state.executed());
}

/// A bulk whose third item asks for an address outside the subnet creates nothing (not even the
/// first two), names `ports[2].fixed_ips` and its value, and leaves the allocation where it was:
/// the next port gets the address the first item would have had.
#[test]
fn a_bulk_with_one_bad_item_creates_nothing_and_names_it() {
    let mut fixture = Fixture::new();
    let network = subnet_network(&mut fixture);
    let before = fixture.state.catalog().ports.clone();
    let executed = fixture.state.executed();
    let error = bulk_ports(
        &mut fixture,
        json!([
            {"network_id": network, "name": "a"},
            {"network_id": network, "name": "b", "mac_address": "fa:16:3e:00:00:aa"},
            {"network_id": network, "name": "c", "fixed_ips": [{"ip_address": "10.9.9.9"}]},
        ]),
    )
    .unwrap_err();
    assert_eq!(
        error.field.as_deref(),
        Some("ports[2].fixed_ips"),
        "{error:?}"
    );
    assert_eq!(error.value, Some(json!("10.9.9.9")));
    assert!(
        error.message.starts_with("ports[2].fixed_ips: "),
        "{}",
        error.message
    );
    assert_eq!(fixture.state.catalog().ports, before);
    assert_eq!(fixture.state.executed(), executed);
    // Nothing of the refused bulk is taken: its MAC and first address are free again.
    let (_, port) = fixture
        .handle(Request::PortCreate(
            body(
                json!({"port": {"network_id": network, "mac_address": "fa:16:3e:00:00:aa"}}),
                "port",
            )
            .unwrap(),
        ))
        .unwrap();
    assert_eq!(port["port"]["fixed_ips"][0]["ip_address"], "10.0.0.2");

    // Two items asking for the same address: the second is refused, nothing is created.
    let before = fixture.state.catalog().ports.clone();
    let error = bulk_ports(
        &mut fixture,
        json!([
            {"network_id": network, "fixed_ips": [{"ip_address": "10.0.0.9"}]},
            {"network_id": network, "fixed_ips": [{"ip_address": "10.0.0.9"}]},
        ]),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert_eq!(
        error.field.as_deref(),
        Some("ports[1].fixed_ips"),
        "{error:?}"
    );
    assert_eq!(fixture.state.catalog().ports, before);
}

/// Networks and subnets in bulk: automatic segmentation ids differ; an overlapping subnet in the
/// same bulk takes the first one back.
#[test]
fn bulk_networks_and_subnets() {
    let mut fixture = Fixture::new();
    let request = crate::request::create_body(
        json!({"networks": [{"name": "x"}, {"name": "y"}]}),
        "network",
    )
    .unwrap()
    .request("networks", Request::NetworkCreate);
    let (command, answer) = fixture.handle(request).unwrap();
    assert_eq!(command.as_deref(), Some("bulk"));
    let networks = answer["networks"].as_array().unwrap();
    assert_ne!(
        networks[0]["provider:segmentation_id"],
        networks[1]["provider:segmentation_id"]
    );
    let network = networks[0]["id"].as_str().unwrap();
    let before = fixture.state.catalog().subnets.clone();
    let request = crate::request::create_body(
        json!({"subnets": [
            {"network_id": network, "cidr": "10.1.0.0/24"},
            {"network_id": network, "cidr": "10.1.0.0/25"},
        ]}),
        "subnet",
    )
    .unwrap()
    .request("subnets", Request::SubnetCreate);
    let error = fixture.handle(request).unwrap_err();
    assert!(
        error.field.as_deref().unwrap().starts_with("subnets[1]"),
        "{error:?}"
    );
    assert_eq!(fixture.state.catalog().subnets, before);
    assert!(fixture.state.catalog().subnets.is_empty());
}

/// A network with the subnet 10.0.0.0/24; its id.
fn subnet_network(fixture: &mut Fixture) -> String {
    let (_, network) = fixture
        .handle(Request::NetworkCreate(
            body(json!({"network": {"name": "n"}}), "network").unwrap(),
        ))
        .unwrap();
    let network = network["network"]["id"].as_str().unwrap().to_owned();
    subnet_create(
        fixture,
        json!({"network_id": network, "cidr": "10.0.0.0/24"}),
    )
    .unwrap();
    network
}

// ---- segments ----

fn segment_create(fixture: &mut Fixture, segment: Value) -> Result<Value, crate::NeutronError> {
    let request = Request::SegmentCreate(body(json!({ "segment": segment }), "segment")?);
    Ok(fixture.handle(request)?.1["segment"].take())
}

fn segments_of(fixture: &Fixture, network: &str) -> Vec<Value> {
    let params = ListParams::parse([("network_id".to_owned(), network.to_owned())]).unwrap();
    let catalog = fixture.state.catalog();
    let page = catalog
        .page(
            Collection::Segments,
            &Caller::Admin,
            &params,
            None,
            100,
            Time(0),
        )
        .unwrap();
    let mut items = page.items;
    items.sort_by_key(|s| s["segment_index"].as_u64());
    items
}

#[test]
fn a_network_create_makes_segment_0_and_segments_follow_with_their_index() {
    let mut fixture = Fixture::new();
    let (network, _) = fixture.network_with_port("compute-1");
    let first = segments_of(&fixture, &network);
    assert_eq!(first.len(), 1);
    let vni = first[0]["segmentation_id"].clone();
    let shown = fixture
        .state
        .catalog()
        .network_answer(network.parse().unwrap(), &Caller::Admin);
    assert_eq!(shown.unwrap()["network"]["provider:segmentation_id"], vni);
    assert_eq!(
        first[0],
        json!({
            "id": first[0]["id"], "network_id": network, "name": null, "description": "",
            "network_type": "vxlan", "physical_network": null, "segmentation_id": vni,
            "segment_index": 0,
        })
    );
    let second = segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vxlan", "segmentation_id": "5000", "name": "b"}),
    )
    .unwrap();
    assert_eq!(second["segment_index"], 1);
    assert_eq!(second["segmentation_id"], 5000);
    assert_eq!(second["name"], "b");
    // A tunnel segment without an id takes the lowest free one of the tenant ranges.
    let third = segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vxlan"}),
    )
    .unwrap();
    assert_eq!(third["segment_index"], 2);
    assert_ne!(third["segmentation_id"], vni);
    assert_eq!(segments_of(&fixture, &network).len(), 3);
    // The network keeps serving its first segment.
    let engine_vni = fixture
        .state
        .engine()
        .network(network.parse().unwrap())
        .unwrap()
        .segment
        .segmentation_id();
    assert_eq!(json!(engine_vni), vni);
    // Name and description change; `null` clears the name.
    let id: Uuid = second["id"].as_str().unwrap().parse().unwrap();
    let update = |value: Value| {
        Request::SegmentUpdate(id, body(json!({ "segment": value }), "segment").unwrap())
    };
    let (_, answer) = fixture.handle(update(json!({"description": "d"}))).unwrap();
    assert_eq!(answer["segment"]["description"], "d");
    assert_eq!(answer["segment"]["name"], "b");
    let (_, answer) = fixture.handle(update(json!({"name": null}))).unwrap();
    assert_eq!(answer["segment"]["name"], Value::Null);
    let refused = body::<crate::request::SegmentUpdateBody>(
        json!({"segment": {"segmentation_id": 7}}),
        "segment",
    )
    .unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("segmentation_id"));
}

#[test]
fn segment_ids_are_unique_across_every_segment_and_a_refusal_changes_nothing() {
    let mut fixture = Fixture::new();
    let (network, _) = fixture.network_with_port("compute-1");
    segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vlan", "segmentation_id": 10, "physical_network": "physnet1"}),
    )
    .unwrap();
    segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vxlan", "segmentation_id": 5000}),
    )
    .unwrap();
    let executed = fixture.state.executed();
    let cases = [
        (
            json!({"network_id": network, "network_type": "vxlan", "segmentation_id": 5000}),
            ErrorKind::Conflict,
            "segmentation_id",
            json!(5000),
        ),
        (
            json!({"network_id": network, "network_type": "vlan", "segmentation_id": 10, "physical_network": "physnet1"}),
            ErrorKind::Conflict,
            "segmentation_id",
            json!(10),
        ),
        (
            json!({"network_id": network, "network_type": "vxlan", "segmentation_id": 16_777_216}),
            ErrorKind::BadRequest,
            "segmentation_id",
            json!(16_777_216),
        ),
        (
            json!({"network_id": network, "network_type": "vlan", "segmentation_id": 11}),
            ErrorKind::BadRequest,
            "physical_network",
            Value::Null,
        ),
        (
            json!({"network_id": Uuid::from_u128(999), "network_type": "vxlan"}),
            ErrorKind::NotFound,
            "network_id",
            json!(Uuid::from_u128(999).to_string()),
        ),
    ];
    for (segment, kind, field, value) in cases {
        let refused = segment_create(&mut fixture, segment.clone()).unwrap_err();
        assert_eq!(refused.kind, kind, "{segment}: {refused}");
        assert_eq!(
            refused.field.as_deref(),
            Some(field),
            "{segment}: {refused}"
        );
        if !value.is_null() {
            assert_eq!(refused.value, Some(value), "{segment}: {refused}");
        }
    }
    // Another vlan id on the same physical network, and the same id on another, are free.
    segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vlan", "segmentation_id": 10, "physical_network": "physnet2"}),
    )
    .unwrap();
    // A network's provider attributes are checked against later segments too (the engine
    // knows only first segments).
    let refused = fixture
        .handle(Request::NetworkCreate(
            body(
                json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 5000}}),
                "network",
            )
            .unwrap(),
        ))
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Conflict);
    assert_eq!(refused.field.as_deref(), Some("provider:segmentation_id"));
    assert_eq!(fixture.state.executed(), executed + 1);
    // Segments are admin only.
    let project = Caller::Project("alice".to_owned());
    let denied = fixture.state.handle(
        &project,
        Request::SegmentCreate(
            body(
                json!({"segment": {"network_id": network, "network_type": "vxlan"}}),
                "segment",
            )
            .unwrap(),
        ),
        &fixture.tenant,
        &mut fixture.fresh,
    );
    assert_eq!(denied.unwrap_err().kind, ErrorKind::Forbidden);
    let listed = fixture.state.catalog().page(
        Collection::Segments,
        &project,
        &ListParams::default(),
        None,
        10,
        Time(0),
    );
    assert_eq!(listed.unwrap_err().kind, ErrorKind::Forbidden);
}

#[test]
fn deleting_the_first_segment_moves_the_network_to_the_next_while_no_port_is_bound() {
    let mut fixture = Fixture::new();
    let (network, port) = fixture.network_with_port("compute-1");
    let network_id: l2pop_model::NetworkId = network.parse().unwrap();
    let first: Uuid = segments_of(&fixture, &network)[0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let second = segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vxlan", "segmentation_id": 5000}),
    )
    .unwrap();
    let second: Uuid = second["id"].as_str().unwrap().parse().unwrap();
    let third = segment_create(
        &mut fixture,
        json!({"network_id": network, "network_type": "vxlan", "segmentation_id": 6000}),
    )
    .unwrap();
    let third: Uuid = third["id"].as_str().unwrap().parse().unwrap();
    let executed = fixture.state.executed();
    let refused = fixture.handle(Request::SegmentDelete(first)).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Conflict);
    assert_eq!(refused.name, "SegmentInUse");
    assert_eq!(fixture.state.executed(), executed);
    // A later segment goes while ports are bound: no port is on it.
    fixture.handle(Request::SegmentDelete(third)).unwrap();
    let unbind = body(json!({"port": {"binding:host_id": ""}}), "port").unwrap();
    fixture.handle(Request::PortUpdate(port, unbind)).unwrap();
    let (command, _) = fixture.handle(Request::SegmentDelete(first)).unwrap();
    assert_eq!(command.as_deref(), Some("segment_delete"));
    let shown = fixture
        .state
        .catalog()
        .network_answer(network_id, &Caller::Admin)
        .unwrap();
    assert_eq!(shown["network"]["provider:segmentation_id"], 5000);
    let segment = &fixture.state.engine().network(network_id).unwrap().segment;
    assert_eq!(segment.segmentation_id(), Some(5000));
    // The network's only segment stays.
    let refused = fixture.handle(Request::SegmentDelete(second)).unwrap_err();
    assert_eq!(refused.name, "SegmentInUse");
    // The first segment's id is free for another network.
    fixture.tenant.vni_ranges = vec![(1, 1)];
    fixture
        .handle(Request::NetworkCreate(
            body(json!({"network": {"name": "again"}}), "network").unwrap(),
        ))
        .unwrap();

    // Replaying the log, and restoring a snapshot, give the same segments and networks.
    let mut replayed = NeutronState::new();
    for command in &fixture.log {
        replayed.execute(command).unwrap();
    }
    let restored = NeutronState::restore(&fixture.state.save().unwrap()).unwrap();
    for other in [&replayed, &restored] {
        for (id, segment) in &fixture.state.catalog().segments {
            assert_eq!(other.catalog().segments.get(id), Some(segment));
        }
        assert_eq!(other.catalog().segments.len(), 2);
        assert_eq!(
            other.catalog().segment_keys,
            fixture.state.catalog().segment_keys
        );
        assert_eq!(
            other.catalog().networks.get(&network_id),
            fixture.state.catalog().networks.get(&network_id)
        );
    }
}

#[path = "router_tests.rs"]
mod router;
