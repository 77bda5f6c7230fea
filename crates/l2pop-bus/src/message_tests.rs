//! The l2pop notification on the wire: the captured Neutron cast rebuilt from a
//! `Notification`, the `_context_l2pop` extension, and decoding.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use l2pop_model::{
    ChgIp, FLOODING_ENTRY, FdbEntries, Host, IpChange, NetworkFdb, NetworkType, PortInfo,
};
use serde_json::json;

use super::*;

const NET: &str = "9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f";

/// `neutron-l2pop.md` §3: a fanout `add_fdb_entries` from Neutron's real notifier (1226 B).
const CAPTURED: &str = r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add_fdb_entries\", \"args\": {\"fdb_entries\": {\"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f\": {\"segment_id\": 1001, \"network_type\": \"vxlan\", \"ports\": {\"192.0.2.11\": [[\"00:00:00:00:00:00\", \"0.0.0.0\"], [\"fa:16:3e:aa:bb:cc\", \"10.0.0.5\"]]}}}}, \"version\": \"1.0\", \"_unique_id\": \"9d92072e52154b9ba78e8d577e0d067a\", \"_context_user\": null, \"_context_project_id\": null, \"_context_system_scope\": null, \"_context_project\": null, \"_context_domain\": null, \"_context_user_domain\": null, \"_context_project_domain\": null, \"_context_is_admin\": true, \"_context_read_only\": false, \"_context_show_deleted\": false, \"_context_auth_token\": null, \"_context_request_id\": \"req-b3b4f538-f4b1-4afe-a88d-b9736bcbe886\", \"_context_global_request_id\": null, \"_context_resource_uuid\": null, \"_context_roles\": [\"member\", \"admin\", \"reader\"], \"_context_user_identity\": \"- - - - -\", \"_context_is_admin_project\": true, \"_context_user_id\": null, \"_context_timestamp\": \"2026-11-21 10:47:02.361756\", \"_context_project_name\": null, \"_context_user_name\": null, \"_context_has_global_access\": true, \"_context_can_set_project_id\": true}"}"#;

fn pi(mac: &str, ip: &str) -> PortInfo {
    PortInfo::new(mac.parse().unwrap(), ip.parse().unwrap())
}

fn payload() -> FdbPayload {
    FdbPayload::Entries(FdbEntries::single(
        NET.parse().unwrap(),
        NetworkFdb {
            segment_id: Some(1001),
            network_type: NetworkType::Vxlan,
            ports: vec![(
                "192.0.2.11".parse().unwrap(),
                vec![FLOODING_ENTRY, pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
            )],
        },
    ))
}

fn captured_context() -> Context {
    let request_id = "b3b4f538-f4b1-4afe-a88d-b9736bcbe886".parse().unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(1_795_258_022) + Duration::from_micros(361_756);
    let mut context = Context::admin(request_id, at);
    // Neutron builds roles from a set: this capture has them in this order.
    context.insert("roles", json!(["member", "admin", "reader"]));
    context
}

fn notification(seq: u64, target: Target) -> Notification {
    Notification {
        seq,
        target,
        method: Method::AddFdbEntries,
        source: None,
        fdb_entries: payload(),
        fanout_seq: 7,
        host_seq: None,
    }
}

#[test]
fn captured_neutron_cast_is_rebuilt_from_a_notification() {
    assert_eq!(CAPTURED.len(), 1226);
    // The captured body has no l2pop key: rebuild it through the generic codec with the same
    // args the notification encoder uses, then check the encoder adds exactly one key.
    #[derive(serde::Serialize)]
    struct Args<'a> {
        fdb_entries: &'a FdbPayload,
    }
    let context = captured_context();
    let body = oslo::encode_request(&Request {
        method: Method::AddFdbEntries.as_str(),
        args: &Args {
            fdb_entries: &payload(),
        },
        namespace: None,
        version: Some(API_VERSION),
        call: None,
        unique_id: "9d92072e52154b9ba78e8d577e0d067a",
        context: &context,
    })
    .unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), CAPTURED);

    let ours = encode_notification(&notification(0x2a, Target::Fanout), 0x0102, &context).unwrap();
    let ours = String::from_utf8(ours).unwrap();
    let expected = CAPTURED
        .replace(
            "9d92072e52154b9ba78e8d577e0d067a",
            "0000000000000102000000000000002a",
        )
        .replace(
            r#"\"_context_can_set_project_id\": true}"#,
            r#"\"_context_can_set_project_id\": true, \"_context_l2pop\": {\"seq\": 42, \"fanout_seq\": 7, \"host_seq\": null, \"source\": null}}"#,
        );
    assert_eq!(ours, expected);
}

#[test]
fn unique_id_is_deterministic_hex() {
    assert_eq!(unique_id(1, 2), "00000000000000010000000000000002");
    assert_eq!(unique_id(u64::MAX, 0).len(), 32);
}

#[test]
fn notification_round_trip_with_stream_position() {
    let mut n = notification(10, Target::Host(Host::new("compute-1").unwrap()));
    n.method = Method::UpdateFdbEntries;
    n.host_seq = Some(3);
    n.source = Some("bgpvpn".into());
    n.fdb_entries = FdbPayload::ChgIp(ChgIp(vec![(
        NET.parse().unwrap(),
        vec![(
            "192.0.2.11".parse().unwrap(),
            IpChange {
                before: vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
                after: vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.6")],
            },
        )],
    )]));
    let body = encode_notification(&n, 9, &Context::admin_now()).unwrap();
    let received = decode_notification(&body, n.target.clone()).unwrap();
    assert_eq!(received.method, Method::UpdateFdbEntries);
    assert_eq!(received.target, n.target);
    assert_eq!(received.fdb_entries, n.fdb_entries);
    assert_eq!(
        received.unique_id.as_deref(),
        Some(unique_id(9, 10).as_str())
    );
    assert_eq!(
        received.stream,
        Some(StreamPosition {
            seq: 10,
            fanout_seq: 7,
            host_seq: Some(3),
            source: Some("bgpvpn".into()),
        })
    );
    assert!(!received.context.contains_key(STREAM_CONTEXT_KEY));
    assert_eq!(received.context["is_admin"], json!(true));
}

#[test]
fn neutron_cast_decodes_without_stream() {
    let received = decode_notification(CAPTURED.as_bytes(), Target::Fanout).unwrap();
    assert_eq!(received.method, Method::AddFdbEntries);
    assert_eq!(received.fdb_entries, payload());
    assert_eq!(received.stream, None);
    assert_eq!(received.context.len(), 23);
}

#[test]
fn bad_notifications_are_named() {
    let body = br#"{"method": "delete_everything", "args": {"fdb_entries": {}}}"#;
    assert!(matches!(
        decode_notification(body, Target::Fanout),
        Err(DecodeError::UnknownMethod(m)) if m == "delete_everything"
    ));
    let body = br#"{"method": "add_fdb_entries", "args": {}}"#;
    assert!(matches!(
        decode_notification(body, Target::Fanout),
        Err(DecodeError::MissingField("fdb_entries"))
    ));
    let body = br#"{"method": "add_fdb_entries", "version": "2.0", "args": {"fdb_entries": {}}}"#;
    assert!(matches!(
        decode_notification(body, Target::Fanout),
        Err(DecodeError::UnsupportedVersion(_))
    ));
    let body = br#"{"method": "add_fdb_entries", "version": "1.7", "args": {"fdb_entries": {}}, "_context_l2pop": {"seq": "x"}}"#;
    assert!(matches!(
        decode_notification(body, Target::Fanout),
        Err(DecodeError::BadStreamPosition(_))
    ));
}
