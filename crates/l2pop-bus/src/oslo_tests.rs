//! Byte-exact rebuilds of bodies captured from real oslo.messaging 18.3.1 / Neutron 24.0.0
//! (`environment.md` §3), and round trips of calls and replies.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;

use super::*;

/// Neutron's real `L2populationAgentNotifyAPI.add_fdb_entries` with the admin context (1205 B).
const NEUTRON_ADMIN_CAST: &str = r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add_fdb_entries\", \"args\": {\"fdb_entries\": {\"net-uuid-0001\": {\"segment_id\": 100, \"network_type\": \"vxlan\", \"ports\": {\"192.0.2.2\": [[\"00:00:00:00:00:00\", \"0.0.0.0\"], [\"fa:16:3e:00:00:01\", \"198.51.100.5\"]]}}}}, \"version\": \"1.0\", \"_unique_id\": \"045bb145f6794ee69b8aa735b082e126\", \"_context_user\": null, \"_context_project_id\": null, \"_context_system_scope\": null, \"_context_project\": null, \"_context_domain\": null, \"_context_user_domain\": null, \"_context_project_domain\": null, \"_context_is_admin\": true, \"_context_read_only\": false, \"_context_show_deleted\": false, \"_context_auth_token\": null, \"_context_request_id\": \"req-4726d317-9dfa-486a-aefd-f4f5ffd83035\", \"_context_global_request_id\": null, \"_context_resource_uuid\": null, \"_context_roles\": [\"admin\", \"reader\", \"member\"], \"_context_user_identity\": \"- - - - -\", \"_context_is_admin_project\": true, \"_context_user_id\": null, \"_context_timestamp\": \"2026-11-21 10:50:37.954202\", \"_context_project_name\": null, \"_context_user_name\": null, \"_context_has_global_access\": true, \"_context_can_set_project_id\": true}"}"#;

/// A plain `RPCClient.cast` with a three-key context dict.
const PLAIN_CAST: &str = r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add_fdb_entries\", \"args\": {\"fdb_entries\": {\"net-uuid-0001\": {\"segment_id\": 100, \"network_type\": \"vxlan\", \"ports\": {\"192.0.2.2\": [[\"00:00:00:00:00:00\", \"0.0.0.0\"], [\"fa:16:3e:00:00:01\", \"198.51.100.5\"]]}}}}, \"version\": \"1.0\", \"_unique_id\": \"bf5a24e0851b4a0888aabfe341b21efe\", \"_context_user_id\": \"u1\", \"_context_project_id\": \"p1\", \"_context_request_id\": \"req-00000000-0000-0000-0000-000000000001\"}"}"#;

/// The captured payload, with a network key that is not a UUID (so not an `FdbPayload`): the
/// generic codec must carry any args in their order.
#[derive(Serialize)]
struct CapturedArgs {
    fdb_entries: BTreeMap<&'static str, CapturedNet>,
}

#[derive(Serialize)]
struct CapturedNet {
    segment_id: u32,
    network_type: &'static str,
    ports: BTreeMap<&'static str, Vec<[&'static str; 2]>>,
}

fn captured_args() -> CapturedArgs {
    CapturedArgs {
        fdb_entries: BTreeMap::from([(
            "net-uuid-0001",
            CapturedNet {
                segment_id: 100,
                network_type: "vxlan",
                ports: BTreeMap::from([(
                    "192.0.2.2",
                    vec![
                        ["00:00:00:00:00:00", "0.0.0.0"],
                        ["fa:16:3e:00:00:01", "198.51.100.5"],
                    ],
                )]),
            },
        )]),
    }
}

fn cast<'a>(args: &'a CapturedArgs, unique_id: &'a str, context: &'a Context) -> Vec<u8> {
    encode_request(&Request {
        method: "add_fdb_entries",
        args,
        namespace: None,
        version: Some("1.0"),
        call: None,
        unique_id,
        context,
    })
    .unwrap()
}

#[test]
fn neutron_admin_cast_is_rebuilt_byte_for_byte() {
    assert_eq!(NEUTRON_ADMIN_CAST.len(), 1205);
    let request_id = "4726d317-9dfa-486a-aefd-f4f5ffd83035".parse().unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(1_795_258_237) + Duration::from_micros(954_202);
    let context = Context::admin(request_id, at);
    let body = cast(
        &captured_args(),
        "045bb145f6794ee69b8aa735b082e126",
        &context,
    );
    assert_eq!(String::from_utf8(body).unwrap(), NEUTRON_ADMIN_CAST);
}

#[test]
fn plain_cast_is_rebuilt_byte_for_byte() {
    let mut context = Context::new();
    context.insert("user_id", "u1");
    context.insert("project_id", "p1");
    context.insert("request_id", "req-00000000-0000-0000-0000-000000000001");
    let body = cast(
        &captured_args(),
        "bf5a24e0851b4a0888aabfe341b21efe",
        &context,
    );
    assert_eq!(String::from_utf8(body).unwrap(), PLAIN_CAST);
}

#[test]
fn captured_casts_decode() {
    let request = decode_request(NEUTRON_ADMIN_CAST.as_bytes()).unwrap();
    assert_eq!(request.method, "add_fdb_entries");
    assert_eq!(request.version.as_deref(), Some("1.0"));
    assert_eq!(
        request.unique_id.as_deref(),
        Some("045bb145f6794ee69b8aa735b082e126")
    );
    assert!(request.call.is_none());
    assert_eq!(request.context.len(), 23);
    assert_eq!(request.context["is_admin"], json!(true));
    assert_eq!(
        request.args["fdb_entries"]["net-uuid-0001"]["segment_id"],
        json!(100)
    );

    let plain = decode_request(PLAIN_CAST.as_bytes()).unwrap();
    assert_eq!(plain.context["user_id"], json!("u1"));
    assert_eq!(plain.context.len(), 3);
}

#[test]
fn a_message_without_envelope_is_accepted() {
    let body = br#"{"method": "ping", "args": {"x": 1}, "_context_user_id": "u"}"#;
    let request = decode_request(body).unwrap();
    assert_eq!(request.method, "ping");
    assert_eq!(request.args["x"], json!(1));
    assert_eq!(request.context["user_id"], json!("u"));
    assert_eq!(request.version, None);
}

#[test]
fn a_wrong_envelope_version_is_rejected() {
    for version in ["3.0", "2.1", "1.0", "two"] {
        let body = format!(r#"{{"oslo.version": "{version}", "oslo.message": "{{}}"}}"#);
        let err = decode_request(body.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, DecodeError::UnsupportedEnvelopeVersion(v) if v == version),
            "{version}: {err}"
        );
        assert!(
            err.to_string()
                .contains("unsupported oslo envelope version")
        );
    }
    // 2.0.0 is the same version.
    let body = br#"{"oslo.version": "2.0.0", "oslo.message": "{\"method\": \"m\"}"}"#;
    assert_eq!(decode_request(body).unwrap().method, "m");
}

#[test]
fn malformed_bodies_are_named() {
    assert!(matches!(
        decode_request(b"not json"),
        Err(DecodeError::NotJson(_))
    ));
    assert!(matches!(
        decode_request(b"[1]"),
        Err(DecodeError::NotAnObject("an array"))
    ));
    assert!(matches!(
        decode_request(br#"{"oslo.version": "2.0", "oslo.message": 3}"#),
        Err(DecodeError::BadInnerMessage(_))
    ));
    assert!(matches!(
        decode_request(br#"{"args": {}}"#),
        Err(DecodeError::MissingField("method"))
    ));
    assert!(matches!(
        decode_request(br#"{"method": "m", "args": []}"#),
        Err(DecodeError::WrongType { .. })
    ));
}

#[test]
fn call_layout_and_round_trip() {
    let call = CallInfo {
        msg_id: "0123456789abcdef0123456789abcdef".into(),
        reply_q: "reply_fedcba9876543210fedcba9876543210".into(),
        timeout: None,
    };
    let mut context = Context::new();
    context.insert("request_id", "req-1");
    let body = encode_request(&Request {
        method: "report_state",
        args: &json!({"agent_state": {"host": "h1"}}),
        namespace: None,
        version: Some("1.0"),
        call: Some(&call),
        unique_id: "00000000000000010000000000000002",
        context: &context,
    })
    .unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    assert_eq!(
        text,
        r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"report_state\", \"args\": {\"agent_state\": {\"host\": \"h1\"}}, \"version\": \"1.0\", \"_msg_id\": \"0123456789abcdef0123456789abcdef\", \"_reply_q\": \"reply_fedcba9876543210fedcba9876543210\", \"_timeout\": null, \"_unique_id\": \"00000000000000010000000000000002\", \"_context_request_id\": \"req-1\"}"}"#
    );
    let decoded = decode_request(&body).unwrap();
    assert_eq!(decoded.call, Some(call));
    assert_eq!(decoded.args["agent_state"]["host"], json!("h1"));
}

#[test]
fn reply_layout_matches_send_reply() {
    let reply = Reply {
        msg_id: "m1".into(),
        result: json!({"ok": true}),
        failure: None,
        ending: true,
        unique_id: Some("u1".into()),
    };
    let body = encode_reply(&reply).unwrap();
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        r#"{"oslo.version": "2.0", "oslo.message": "{\"result\": {\"ok\": true}, \"failure\": null, \"ending\": true, \"_msg_id\": \"m1\", \"_unique_id\": \"u1\"}"}"#
    );
    assert_eq!(decode_reply(&body).unwrap(), reply);
}

#[test]
fn failure_is_a_json_string_inside_the_reply() {
    let reply = Reply {
        msg_id: "m2".into(),
        result: Value::Null,
        failure: Some(RemoteFailure::l2pop(
            "NetworkNotFound",
            "network é not found",
        )),
        ending: true,
        unique_id: Some("u2".into()),
    };
    let body = encode_reply(&reply).unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.is_ascii());
    assert!(text.contains(r#"\"failure\": \"{\\\"class\\\": \\\"NetworkNotFound\\\", \\\"module\\\": \\\"l2pop\\\", \\\"message\\\": \\\"network \\\\u00e9 not found\\\", \\\"tb\\\": [], \\\"args\\\": [\\\"network \\\\u00e9 not found\\\"], \\\"kwargs\\\": {}}\""#), "{text}");
    assert_eq!(decode_reply(&body).unwrap(), reply);
}

#[test]
fn python_reply_with_traceback_decodes() {
    // As oslo 18.3.1 sends a ValueError raised by an endpoint.
    let inner = json!({
        "result": null,
        "failure": python_json::to_string(&json!({
            "class": "ValueError", "module": "builtins", "message": "bad",
            "tb": ["Traceback (most recent call last):\n", "ValueError: bad\n"],
            "args": ["bad"], "kwargs": {}
        })).unwrap(),
        "ending": true,
        "_msg_id": "abc",
        "_unique_id": "def",
    });
    let body = envelope(&inner.to_string()).unwrap();
    let reply = decode_reply(&body).unwrap();
    let failure = reply.failure.unwrap();
    assert_eq!(failure.class, "ValueError");
    assert_eq!(failure.tb.len(), 2);
    assert!(reply.ending);
}

#[test]
fn version_compatibility_matches_oslo() {
    assert!(version_is_compatible("2.0", "2.0"));
    assert!(version_is_compatible("1.7", "1.0"));
    assert!(!version_is_compatible("1.0", "1.7"));
    assert!(!version_is_compatible("2.0", "1.0"));
    assert!(!version_is_compatible("2.0", "2.0.1"));
    assert!(!version_is_compatible("2.0", "x"));
}
