//! Golden tests: every payload example of `neutron-l2pop.md` §2 and the body captured from
//! Neutron's real notifier in §3, byte for byte in Python's `json.dumps` layout.

use super::*;
use crate::python_json;

const NET: &str = "9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f";

fn pi(mac: &str, ip: &str) -> PortInfo {
    PortInfo::new(mac.parse().unwrap(), ip.parse().unwrap())
}

fn entries(ports: Vec<(&str, Vec<PortInfo>)>) -> FdbPayload {
    FdbPayload::Entries(FdbEntries::single(
        NET.parse().unwrap(),
        NetworkFdb {
            segment_id: Some(1001),
            network_type: NetworkType::Vxlan,
            ports: ports
                .into_iter()
                .map(|(ip, list)| (ip.parse().unwrap(), list))
                .collect(),
        },
    ))
}

/// Serializes in Python's layout, compares, and checks that the text reads back to the value.
fn assert_wire(payload: &FdbPayload, expected: &str) {
    assert_eq!(python_json::to_string(payload).unwrap(), expected);
    let back: FdbPayload = serde_json::from_str(expected).unwrap();
    assert_eq!(&back, payload);
}

#[test]
fn host_cast_full_fdb_to_b() {
    let payload = entries(vec![(
        "192.0.2.11",
        vec![FLOODING_ENTRY, pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
    )]);
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:aa:bb:cc", "10.0.0.5"]]}}}"#,
    );
}

#[test]
fn fanout_first_vm_on_b_dual_stack() {
    let payload = entries(vec![(
        "192.0.2.12",
        vec![
            FLOODING_ENTRY,
            pi("fa:16:3e:11:22:33", "10.0.0.7"),
            pi("fa:16:3e:11:22:33", "2001:db8::7"),
        ],
    )]);
    let text = r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"192.0.2.12": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:11:22:33", "10.0.0.7"], ["fa:16:3e:11:22:33", "2001:db8::7"]]}}}"#;
    // The same body is the "last VM on B deleted" remove of §2.
    assert_wire(&payload, text);
}

#[test]
fn remove_second_vm_on_a() {
    let payload = entries(vec![(
        "192.0.2.11",
        vec![pi("fa:16:3e:dd:ee:ff", "10.0.0.9")],
    )]);
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"192.0.2.11": [["fa:16:3e:dd:ee:ff", "10.0.0.9"]]}}}"#,
    );
}

#[test]
fn dvr_host_flood_only() {
    let payload = entries(vec![("198.51.100.3", vec![FLOODING_ENTRY])]);
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"198.51.100.3": [["00:00:00:00:00:00", "0.0.0.0"]]}}}"#,
    );
}

#[test]
fn ha_standby_down_unicast_only() {
    let payload = entries(vec![(
        "192.0.2.11",
        vec![pi("fa:16:3e:00:00:01", "10.0.0.1")],
    )]);
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"192.0.2.11": [["fa:16:3e:00:00:01", "10.0.0.1"]]}}}"#,
    );
}

#[test]
fn ha_interface_deleted_two_hosts_flood() {
    let payload = entries(vec![
        ("192.0.2.11", vec![FLOODING_ENTRY]),
        ("192.0.2.12", vec![FLOODING_ENTRY]),
    ]);
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"]], "192.0.2.12": [["00:00:00:00:00:00", "0.0.0.0"]]}}}"#,
    );
}

fn chg_ip(before: Vec<PortInfo>, after: Vec<PortInfo>) -> FdbPayload {
    FdbPayload::ChgIp(ChgIp(vec![(
        NET.parse().unwrap(),
        vec![("192.0.2.11".parse().unwrap(), IpChange { before, after })],
    )]))
}

#[test]
fn ip_change() {
    let payload = chg_ip(
        vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
        vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.6")],
    );
    assert_wire(
        &payload,
        r#"{"chg_ip": {"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"192.0.2.11": {"before": [["fa:16:3e:aa:bb:cc", "10.0.0.5"]], "after": [["fa:16:3e:aa:bb:cc", "10.0.0.6"]]}}}}"#,
    );
}

#[test]
fn ip_added_only() {
    let payload = chg_ip(vec![], vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.10")]);
    assert_wire(
        &payload,
        r#"{"chg_ip": {"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"192.0.2.11": {"after": [["fa:16:3e:aa:bb:cc", "10.0.0.10"]]}}}}"#,
    );
}

#[test]
fn flat_network_segment_id_is_null() {
    let payload = FdbPayload::Entries(FdbEntries::single(
        NET.parse().unwrap(),
        NetworkFdb {
            segment_id: None,
            network_type: NetworkType::Flat,
            ports: vec![("192.0.2.11".parse().unwrap(), vec![FLOODING_ENTRY])],
        },
    ));
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": null, "network_type": "flat", "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"]]}}}"#,
    );
}

#[test]
fn empty_vtep_list_is_kept() {
    // Rule 1: a dict whose ports[agent_ip] is empty is still sent (DVR/HA port that is not first).
    let payload = entries(vec![("192.0.2.11", vec![])]);
    assert_wire(
        &payload,
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "ports": {"192.0.2.11": []}}}"#,
    );
}

#[test]
fn starlingx_extra_keys_are_skipped_when_reading() {
    let text = r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan", "physical_network": "group0", "audit": true, "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"]]}}, "source": "BGPVPN"}"#;
    let payload: FdbPayload = serde_json::from_str(text).unwrap();
    assert_eq!(payload, entries(vec![("192.0.2.11", vec![FLOODING_ENTRY])]));
}

#[test]
fn flooding_entry_sorts_first() {
    let mut list = [
        pi("fa:16:3e:aa:bb:cc", "10.0.0.5"),
        FLOODING_ENTRY,
        pi("02:00:00:00:00:01", "2001:db8::1"),
    ];
    list.sort();
    assert_eq!(list[0], FLOODING_ENTRY);
    assert!(list[0].is_flooding());
}

/// The oslo.messaging cast body captured from Neutron's real `L2populationAgentNotifyAPI`
/// (§3, 1226 bytes). Rebuilt here field by field: the payload must come out byte-identical.
#[test]
fn captured_oslo_cast_body() {
    const CAPTURED: &str = r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add_fdb_entries\", \"args\": {\"fdb_entries\": {\"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f\": {\"segment_id\": 1001, \"network_type\": \"vxlan\", \"ports\": {\"192.0.2.11\": [[\"00:00:00:00:00:00\", \"0.0.0.0\"], [\"fa:16:3e:aa:bb:cc\", \"10.0.0.5\"]]}}}}, \"version\": \"1.0\", \"_unique_id\": \"9d92072e52154b9ba78e8d577e0d067a\", \"_context_user\": null, \"_context_project_id\": null, \"_context_system_scope\": null, \"_context_project\": null, \"_context_domain\": null, \"_context_user_domain\": null, \"_context_project_domain\": null, \"_context_is_admin\": true, \"_context_read_only\": false, \"_context_show_deleted\": false, \"_context_auth_token\": null, \"_context_request_id\": \"req-b3b4f538-f4b1-4afe-a88d-b9736bcbe886\", \"_context_global_request_id\": null, \"_context_resource_uuid\": null, \"_context_roles\": [\"member\", \"admin\", \"reader\"], \"_context_user_identity\": \"- - - - -\", \"_context_is_admin_project\": true, \"_context_user_id\": null, \"_context_timestamp\": \"2026-11-21 10:47:02.361756\", \"_context_project_name\": null, \"_context_user_name\": null, \"_context_has_global_access\": true, \"_context_can_set_project_id\": true}"}"#;
    assert_eq!(CAPTURED.len(), 1226);

    #[derive(serde::Serialize)]
    struct Args<'a> {
        fdb_entries: &'a FdbPayload,
    }
    // The context keys in the captured order (serde_json::Map would sort them).
    let context_pairs: Vec<(&str, serde_json::Value)> = vec![
        ("_context_user", serde_json::Value::Null),
        ("_context_project_id", serde_json::Value::Null),
        ("_context_system_scope", serde_json::Value::Null),
        ("_context_project", serde_json::Value::Null),
        ("_context_domain", serde_json::Value::Null),
        ("_context_user_domain", serde_json::Value::Null),
        ("_context_project_domain", serde_json::Value::Null),
        ("_context_is_admin", true.into()),
        ("_context_read_only", false.into()),
        ("_context_show_deleted", false.into()),
        ("_context_auth_token", serde_json::Value::Null),
        (
            "_context_request_id",
            "req-b3b4f538-f4b1-4afe-a88d-b9736bcbe886".into(),
        ),
        ("_context_global_request_id", serde_json::Value::Null),
        ("_context_resource_uuid", serde_json::Value::Null),
        (
            "_context_roles",
            serde_json::json!(["member", "admin", "reader"]),
        ),
        ("_context_user_identity", "- - - - -".into()),
        ("_context_is_admin_project", true.into()),
        ("_context_user_id", serde_json::Value::Null),
        ("_context_timestamp", "2026-11-21 10:47:02.361756".into()),
        ("_context_project_name", serde_json::Value::Null),
        ("_context_user_name", serde_json::Value::Null),
        ("_context_has_global_access", true.into()),
        ("_context_can_set_project_id", true.into()),
    ];
    struct Ordered<'a>(&'a [(&'a str, serde_json::Value)]);
    impl serde::Serialize for Ordered<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }
    #[derive(serde::Serialize)]
    struct OrderedMessage<'a> {
        method: &'a str,
        args: Args<'a>,
        version: &'a str,
        _unique_id: &'a str,
        #[serde(flatten)]
        context: Ordered<'a>,
    }

    let payload = entries(vec![(
        "192.0.2.11",
        vec![FLOODING_ENTRY, pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
    )]);
    let inner = python_json::to_string(&OrderedMessage {
        method: "add_fdb_entries",
        args: Args {
            fdb_entries: &payload,
        },
        version: "1.0",
        _unique_id: "9d92072e52154b9ba78e8d577e0d067a",
        context: Ordered(&context_pairs),
    })
    .unwrap();
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "oslo.version")]
        version: &'a str,
        #[serde(rename = "oslo.message")]
        message: &'a str,
    }
    let body = python_json::to_string(&Envelope {
        version: "2.0",
        message: &inner,
    })
    .unwrap();
    assert_eq!(body, CAPTURED);
}
