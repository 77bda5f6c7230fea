#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::client::args::parse;

fn call(words: &str) -> Call {
    plan(&parse(words).unwrap().resource).unwrap()
}

fn body(words: &str) -> Value {
    call(words).request.body.unwrap()
}

#[test]
fn network_create_uses_provider_names() {
    let body = body(
        "network create --name net1 --type vxlan --segment 1001 --physical-network phys --project alice",
    );
    assert_eq!(
        body,
        json!({"network": {"name": "net1", "provider:network_type": "vxlan",
            "provider:segmentation_id": 1001, "provider:physical_network": "phys",
            "project_id": "alice"}})
    );
    let call = call("network create");
    assert_eq!(call.request.method, Method::Post);
    assert_eq!(call.request.path, "/v2.0/networks");
    assert_eq!(call.request.body, Some(json!({"network": {}})));
    assert_eq!(call.output, Output::Record { key: "network" });
    assert_eq!(
        self::body("network create --disable"),
        json!({"network": {"admin_state_up": false}})
    );
}

#[test]
fn network_verbs_address_the_item() {
    let show = call("network show n1");
    assert_eq!(
        (show.request.method, show.request.path.as_str()),
        (Method::Get, "/v2.0/networks/n1")
    );
    let delete = call("network delete n1");
    assert_eq!(delete.request.method, Method::Delete);
    assert_eq!(delete.output, Output::Nothing);
    let update = call("network update n1 --name b --disable");
    assert_eq!(update.request.method, Method::Put);
    assert_eq!(
        update.request.body,
        Some(json!({"network": {"name": "b", "admin_state_up": false}}))
    );
    let list = call("network list");
    assert!(matches!(
        list.output,
        Output::List {
            key: "networks",
            ..
        }
    ));
}

#[test]
fn an_update_that_changes_nothing_is_a_usage_error() {
    for words in ["network update n1", "port update p1", "bgpvpn update v1"] {
        let error = plan(&parse(words).unwrap().resource).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{words}");
        assert!(
            error.to_string().starts_with("nothing to update"),
            "{error}"
        );
    }
}

#[test]
fn subnet_bodies() {
    assert_eq!(
        body(
            "subnet create --network n1 --cidr 10.0.0.0/24 --name s --gateway 10.0.0.254 --ip-version 4 --no-dhcp"
        ),
        json!({"subnet": {"network_id": "n1", "cidr": "10.0.0.0/24", "name": "s",
            "gateway_ip": "10.0.0.254", "ip_version": 4, "enable_dhcp": false}})
    );
    assert_eq!(
        body("subnet create --network n1 --cidr 10.0.0.0/24 --no-gateway"),
        json!({"subnet": {"network_id": "n1", "cidr": "10.0.0.0/24", "gateway_ip": null}})
    );
    assert!(parse("subnet create --network n1 --cidr c --gateway g --no-gateway").is_err());
    assert_eq!(
        body("subnet update s1 --name x"),
        json!({"subnet": {"name": "x"}})
    );
}

#[test]
fn port_create_maps_host_and_fixed_ips() {
    let body = body(
        "port create --network n1 --name vm --mac fa:16:3e:00:00:01 --host compute-1 \
         --fixed-ip subnet_id=s1,ip_address=10.0.0.5 --fixed-ip subnet=s2 \
         --device-owner compute:nova --device-id i-1",
    );
    assert_eq!(
        body,
        json!({"port": {"network_id": "n1", "name": "vm", "mac_address": "fa:16:3e:00:00:01",
            "binding:host_id": "compute-1",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}, {"subnet_id": "s2"}],
            "device_owner": "compute:nova", "device_id": "i-1"}})
    );
}

#[test]
fn port_update_unbinds_with_an_empty_host() {
    assert_eq!(
        body("port update p1 --unbind"),
        json!({"port": {"binding:host_id": ""}})
    );
    assert_eq!(
        body("port update p1 --host h2 --enable"),
        json!({"port": {"binding:host_id": "h2", "admin_state_up": true}})
    );
    assert!(parse("port update p1 --host h2 --unbind").is_err());
    assert!(parse("port update p1 --enable --disable").is_err());
}

#[test]
fn port_list_filters_are_encoded_query_parameters() {
    assert_eq!(call("port list").request.path, "/v2.0/ports");
    assert_eq!(
        call("port list --network n1 --host h/1").request.path,
        "/v2.0/ports?network_id=n1&binding%3Ahost_id=h%2F1"
    );
}

#[test]
fn bad_fixed_ip_is_a_parse_error() {
    let error = parse("port create --network n --fixed-ip subnet_id").unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(parse("port create --network n --fixed-ip mac=x").is_err());
}

#[test]
fn bgpvpn_bodies() {
    assert_eq!(
        body(
            "bgpvpn create --name v --type l2 --route-target 64512:1 --route-target 64512:2 \
             --import-target 64512:3 --export-target 64512:4 --route-distinguisher 64512:9 \
             --vni 5000 --local-pref 200 --project alice"
        ),
        json!({"bgpvpn": {"name": "v", "type": "l2", "route_targets": ["64512:1", "64512:2"],
            "import_targets": ["64512:3"], "export_targets": ["64512:4"],
            "route_distinguishers": ["64512:9"], "vni": 5000, "local_pref": 200,
            "project_id": "alice"}})
    );
    assert!(parse("bgpvpn create --type l4").is_err());
    assert_eq!(
        body("bgpvpn update v1 --route-target 64512:7"),
        json!({"bgpvpn": {"route_targets": ["64512:7"]}})
    );
}

#[test]
fn associations_live_under_their_bgpvpn() {
    let create = call("bgpvpn association create v1 --network n1");
    assert_eq!(
        create.request.path,
        "/v2.0/bgpvpn/bgpvpns/v1/network_associations"
    );
    assert_eq!(
        create.request.body,
        Some(json!({"network_association": {"network_id": "n1"}}))
    );
    assert_eq!(
        create.output,
        Output::Record {
            key: "network_association"
        }
    );
    let delete = call("bgpvpn association delete v1 a1");
    assert_eq!(
        delete.request.path,
        "/v2.0/bgpvpn/bgpvpns/v1/network_associations/a1"
    );
    assert!(matches!(
        call("bgpvpn association list v1").output,
        Output::List {
            key: "network_associations",
            ..
        }
    ));
}

#[test]
fn agents_and_fdb() {
    assert_eq!(call("agent list").request.path, "/v2.0/agents");
    let fdb = call("fdb show --host compute-1");
    assert_eq!(fdb.request.path, "/v2.0/l2pop/hosts/compute-1/fdb");
    assert_eq!(fdb.output, Output::Fdb);
    assert!(parse("fdb show").is_err());
}

#[test]
fn options_are_global() {
    let cli = parse("port list --json --url http://h:1 --token t").unwrap();
    assert!(cli.options.json);
    assert_eq!(cli.options.url.as_deref(), Some("http://h:1"));
    assert_eq!(cli.options.token.as_deref(), Some("t"));
}

#[test]
fn encode_keeps_unreserved_characters() {
    assert_eq!(encode("aZ09-._~"), "aZ09-._~");
    assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
}
