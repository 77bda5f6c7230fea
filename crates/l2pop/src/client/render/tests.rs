#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

#[test]
fn list_table_aligns_columns_and_trims_lines() {
    let items = [
        json!({"id": "p1", "name": "web", "mac_address": "fa:16:3e:00:00:01",
               "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.3"},
                             {"subnet_id": "s", "ip_address": "10.0.0.4"}],
               "binding:host_id": "compute-1", "status": "ACTIVE"}),
        json!({"id": "port-2", "name": "", "mac_address": "fa:16:3e:00:00:02",
               "fixed_ips": [], "status": "DOWN"}),
    ];
    let expected = "\
ID      NAME  MAC                FIXED IPS           HOST       STATUS
p1      web   fa:16:3e:00:00:01  10.0.0.3, 10.0.0.4  compute-1  ACTIVE
port-2        fa:16:3e:00:00:02                                 DOWN
";
    assert_eq!(list_table(&items, PORTS), expected);
}

#[test]
fn empty_list_prints_the_headings() {
    assert_eq!(list_table(&[], ASSOCIATIONS), "ID  NETWORK  BGPVPN\n");
}

#[test]
fn record_table_lists_fields_in_key_order() {
    let record = json!({"name": "net1", "id": "n1", "subnets": ["s1", "s2"],
                        "provider:segmentation_id": 1001, "description": ""});
    let expected = "\
FIELD                     VALUE
description
id                        n1
name                      net1
provider:segmentation_id  1001
subnets                   s1, s2
";
    assert_eq!(record_table(&record), expected);
}

#[test]
fn fdb_table_has_one_row_per_entry_with_its_source() {
    let fdb = json!({
        "host": "compute-1", "fanout_seq": 3, "host_seq": 2,
        "networks": [{
            "network_id": "n1", "network_type": "vxlan", "segment_id": 1001,
            "vteps": [{"vtep": "192.0.2.2", "entries": [
                {"mac_address": "00:00:00:00:00:00", "ip_address": "0.0.0.0", "source": {"host": "compute-2"}},
                {"mac_address": "fa:16:3e:00:00:02", "ip_address": "10.0.0.4", "source": {"port": "p2"}},
                {"mac_address": "fa:16:3e:00:00:09", "ip_address": null, "source": {"extension": "bgpvpn"}}
            ]}]
        }]
    });
    let expected = "\
NETWORK  TYPE   SEGMENT  VTEP       MAC                IP        SOURCE
n1       vxlan  1001     192.0.2.2  00:00:00:00:00:00  0.0.0.0   host compute-2
n1       vxlan  1001     192.0.2.2  fa:16:3e:00:00:02  10.0.0.4  port p2
n1       vxlan  1001     192.0.2.2  fa:16:3e:00:00:09            extension bgpvpn
";
    assert_eq!(fdb_table(&fdb), expected);
    assert_eq!(
        fdb_table(&json!({"host": "h", "networks": []})),
        "NETWORK  TYPE  SEGMENT  VTEP  MAC  IP  SOURCE\n"
    );
}

#[test]
fn cells() {
    assert_eq!(cell(&Value::Null), "");
    assert_eq!(cell(&json!(true)), "true");
    assert_eq!(cell(&json!(["a", 1])), "a, 1");
    assert_eq!(
        cell(&json!([{"ip_address": "10.0.0.3", "subnet_id": "s"}, {"ip_address": "10.0.0.4"}])),
        "ip_address=10.0.0.3,subnet_id=s; ip_address=10.0.0.4"
    );
    assert_eq!(
        cell(&json!({"tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"]})),
        r#"tunnel_types=["vxlan"],tunneling_ip=192.0.2.1"#
    );
}

#[test]
fn pick_follows_paths_and_maps_arrays() {
    let agent =
        json!({"configurations": {"tunneling_ip": "192.0.2.1"}, "ports": [{"ip": 1}, {"ip": 2}]});
    assert_eq!(
        pick(&agent, "configurations/tunneling_ip"),
        json!("192.0.2.1")
    );
    assert_eq!(pick(&agent, "ports/*/ip"), json!([1, 2]));
    assert_eq!(pick(&agent, "missing/deeper"), Value::Null);
}

#[test]
fn newlines_in_values_stay_on_one_line() {
    assert_eq!(
        record_table(&json!({"d": "a\nb"})),
        "FIELD  VALUE\nd      a b\n"
    );
}
