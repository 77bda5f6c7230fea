#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::http::{Endpoint, answer};
use super::*;

#[test]
fn json_prints_the_answer_as_is() {
    let value = json!({"networks": [{"id": "n1"}]});
    let output = Output::List {
        key: "networks",
        columns: render::NETWORKS,
    };
    let text = show(output, Some(&value), true).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    assert!(
        show(output, Some(&value), false)
            .unwrap()
            .starts_with("ID ")
    );
}

#[test]
fn deletes_print_nothing() {
    assert_eq!(show(Output::Nothing, None, false).unwrap(), "");
    assert_eq!(show(Output::Nothing, None, true).unwrap(), "");
}

#[test]
fn an_answer_without_the_resource_key_is_an_error() {
    let error = show(
        Output::Record { key: "port" },
        Some(&json!({"network": {}})),
        false,
    )
    .unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("\"port\""), "{error}");
}

#[test]
fn neutron_errors_are_printed_verbatim() {
    let body = r#"{"NeutronError": {"type": "HTTPBadRequest", "message": "Invalid input for mac_address. Reason: \"zz\" invalid MAC.", "detail": "", "field": "mac_address"}}"#;
    let error = answer(400, Some("Bad Request"), body).unwrap_err();
    assert_eq!(
        error.to_stderr(),
        r#"400 HTTPBadRequest: Invalid input for mac_address. Reason: "zz" invalid MAC."#
    );
    assert_eq!(error.exit_code(), 1);
}

#[test]
fn other_errors_name_the_status() {
    let error = answer(405, Some("Method Not Allowed"), "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "405 HTTPMethodNotAllowed: Method Not Allowed"
    );
    let error = answer(502, Some("Bad Gateway"), "upstream down\n").unwrap_err();
    assert_eq!(error.to_string(), "502 HTTPBadGateway: upstream down");
}

#[test]
fn successful_answers() {
    assert_eq!(answer(204, None, "").unwrap(), None);
    assert_eq!(
        answer(200, None, "{\"a\":1}").unwrap(),
        Some(json!({"a": 1}))
    );
    assert!(answer(200, None, "<html>").is_err());
}

#[test]
fn endpoint_prefers_flags_then_environment_then_default() {
    let none = |_: &str| None;
    let env = |key: &str| match key {
        "L2POP_URL" => Some("http://env:1/".to_owned()),
        "L2POP_TOKEN" => Some("env-token".to_owned()),
        _ => None,
    };
    let defaults = Endpoint::new(&ClientOptions::default(), none).unwrap();
    assert_eq!(defaults.base, "http://127.0.0.1:9696");
    assert_eq!(defaults.token, None);
    let from_env = Endpoint::new(&ClientOptions::default(), env).unwrap();
    assert_eq!(from_env.base, "http://env:1");
    assert_eq!(from_env.token.as_deref(), Some("env-token"));
    let flags = ClientOptions {
        url: Some("http://flag:2".to_owned()),
        token: Some("flag-token".to_owned()),
        json: false,
    };
    let from_flags = Endpoint::new(&flags, env).unwrap();
    assert_eq!(from_flags.base, "http://flag:2");
    assert_eq!(from_flags.token.as_deref(), Some("flag-token"));
}

#[test]
fn a_bad_url_is_a_usage_error() {
    for url in ["not a url", "https://h:1"] {
        let options = ClientOptions {
            url: Some(url.to_owned()),
            ..ClientOptions::default()
        };
        let error = Endpoint::new(&options, |_| None).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{url}");
        assert!(error.to_stderr().starts_with("l2pop: --url"), "{error}");
    }
}

#[test]
fn an_unreachable_server_is_named() {
    // Port 9 (discard) on localhost: nothing listens in a test environment.
    let options = ClientOptions {
        url: Some("http://127.0.0.1:9".to_owned()),
        ..ClientOptions::default()
    };
    let resource = args::parse("network list").unwrap().resource;
    let error = execute(&options, &resource).unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error
            .to_stderr()
            .starts_with("l2pop: cannot reach the l2pop server at http://127.0.0.1:9: "),
        "{error}"
    );
}
