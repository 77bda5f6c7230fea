//! Neutron's limits and validation at the API (issue 8, item 9): string lengths, reserved
//! addresses, an empty `project_id`, a missing field named, engine errors carrying the value,
//! and Neutron's error body on 404 (no route), 405 (wrong method) and 413 (body too large).
//! Every refusal is a NeutronError naming the field and the value, and changes nothing.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN, TestServer};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("l2pop.db").display())
}

/// A request, and the status, field and value of its refusal.
type Case = (
    Method,
    String,
    Value,
    StatusCode,
    &'static str,
    Option<Value>,
);

/// Asserts a NeutronError with `status`, naming `field` and (when given) carrying `value`.
fn assert_refused(
    what: &str,
    (status, error): &(StatusCode, Value),
    expected: StatusCode,
    field: &str,
    value: Option<&Value>,
) {
    assert_eq!(*status, expected, "{what}: {error}");
    let inner = &error["NeutronError"];
    assert!(inner["type"].is_string(), "{what}: {error}");
    assert!(
        !inner["message"].as_str().unwrap_or("").is_empty(),
        "{what}: {error}"
    );
    assert_eq!(inner["field"], field, "{what}: {error}");
    if let Some(value) = value {
        assert_eq!(&inner["value"], value, "{what}: {error}");
    }
}

#[tokio::test]
async fn strings_addresses_and_project_ids_are_validated_as_neutron() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "net1", "project_id": "alice"}})),
        )
        .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    let subnet = server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network_id, "cidr": "10.0.0.0/24", "project_id": "alice"}})),
        )
        .await;
    let subnet_id = subnet["subnet"]["id"].as_str().unwrap().to_owned();
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id, "project_id": "alice", "mac_address": "fa:16:3e:00:00:01"}})),
        )
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_owned();
    let snapshot = || async {
        [
            server.admin(Method::GET, "/v2.0/networks", None).await,
            server.admin(Method::GET, "/v2.0/subnets", None).await,
            server.admin(Method::GET, "/v2.0/ports", None).await,
        ]
    };
    let before = snapshot().await;

    // At the limit is accepted (checked after the refusals, so that they see the same state).
    let name_255 = "n".repeat(255);
    let name_256 = "n".repeat(256);
    let description_1025 = "d".repeat(1025);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v2.0/networks".into(),
            json!({"network": {"name": name_256}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::POST,
            "/v2.0/networks".into(),
            json!({"network": {"description": description_1025}}),
            StatusCode::BAD_REQUEST,
            "description",
            Some(json!(description_1025)),
        ),
        (
            Method::PUT,
            format!("/v2.0/networks/{network_id}"),
            json!({"network": {"name": name_256}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::PUT,
            format!("/v2.0/networks/{network_id}"),
            json!({"network": {"description": description_1025}}),
            StatusCode::BAD_REQUEST,
            "description",
            Some(json!(description_1025)),
        ),
        (
            Method::POST,
            "/v2.0/subnets".into(),
            json!({"subnet": {"network_id": network_id, "cidr": "10.1.0.0/24", "name": name_256}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::PUT,
            format!("/v2.0/subnets/{subnet_id}"),
            json!({"subnet": {"name": name_256}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "name": name_256}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "device_owner": name_256}}),
            StatusCode::BAD_REQUEST,
            "device_owner",
            Some(json!(name_256)),
        ),
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "device_id": name_256}}),
            StatusCode::BAD_REQUEST,
            "device_id",
            Some(json!(name_256)),
        ),
        (
            Method::PUT,
            format!("/v2.0/ports/{port_id}"),
            json!({"port": {"device_id": name_256}}),
            StatusCode::BAD_REQUEST,
            "device_id",
            Some(json!(name_256)),
        ),
        (
            Method::PUT,
            format!("/v2.0/ports/{port_id}"),
            json!({"port": {"name": name_256}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::POST,
            "/v2.0/bgpvpn/bgpvpns".into(),
            json!({"bgpvpn": {"name": name_256, "route_targets": ["64512:1"]}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        (
            Method::POST,
            "/v2.0/bgp-speakers".into(),
            json!({"bgp_speaker": {"name": name_256, "local_as": 64512}}),
            StatusCode::BAD_REQUEST,
            "name",
            Some(json!(name_256)),
        ),
        // The subnet's network, broadcast and gateway addresses are not a port's.
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.0.0.0"}]}}),
            StatusCode::BAD_REQUEST,
            "fixed_ips",
            Some(json!("10.0.0.0")),
        ),
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "fixed_ips": [{"subnet_id": subnet_id, "ip_address": "10.0.0.255"}]}}),
            StatusCode::BAD_REQUEST,
            "fixed_ips",
            Some(json!("10.0.0.255")),
        ),
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "fixed_ips": [{"ip_address": "10.0.0.1"}]}}),
            StatusCode::BAD_REQUEST,
            "fixed_ips",
            Some(json!("10.0.0.1")),
        ),
        (
            Method::PUT,
            format!("/v2.0/ports/{port_id}"),
            json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.255"}]}}),
            StatusCode::BAD_REQUEST,
            "fixed_ips",
            Some(json!("10.0.0.255")),
        ),
        // A gateway may not be the network or the broadcast address.
        (
            Method::POST,
            "/v2.0/subnets".into(),
            json!({"subnet": {"network_id": network_id, "cidr": "10.2.0.0/24", "gateway_ip": "10.2.0.0"}}),
            StatusCode::BAD_REQUEST,
            "gateway_ip",
            Some(json!("10.2.0.0")),
        ),
        (
            Method::POST,
            "/v2.0/subnets".into(),
            json!({"subnet": {"network_id": network_id, "cidr": "10.2.0.0/24", "gateway_ip": "10.2.0.255"}}),
            StatusCode::BAD_REQUEST,
            "gateway_ip",
            Some(json!("10.2.0.255")),
        ),
        // An empty project is no project.
        (
            Method::POST,
            "/v2.0/networks".into(),
            json!({"network": {"project_id": ""}}),
            StatusCode::BAD_REQUEST,
            "project_id",
            Some(json!("")),
        ),
        (
            Method::POST,
            "/v2.0/networks".into(),
            json!({"network": {"tenant_id": ""}}),
            StatusCode::BAD_REQUEST,
            "project_id",
            Some(json!("")),
        ),
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "project_id": ""}}),
            StatusCode::BAD_REQUEST,
            "project_id",
            Some(json!("")),
        ),
        // A missing required attribute is named.
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"name": "vm"}}),
            StatusCode::BAD_REQUEST,
            "network_id",
            Some(Value::Null),
        ),
        (
            Method::POST,
            "/v2.0/subnets".into(),
            json!({"subnet": {"network_id": network_id}}),
            StatusCode::BAD_REQUEST,
            "cidr",
            Some(Value::Null),
        ),
        (
            Method::PUT,
            "/v2.0/bgp-speakers/00000000-0000-0000-0000-000000000001/add_bgp_vpn".into(),
            json!({}),
            StatusCode::BAD_REQUEST,
            "bgpvpn_id",
            Some(Value::Null),
        ),
        // Engine refusals carry the value as well as the field.
        (
            Method::POST,
            "/v2.0/ports".into(),
            json!({"port": {"network_id": network_id, "mac_address": "fa:16:3e:00:00:01"}}),
            StatusCode::CONFLICT,
            "mac_address",
            Some(json!("fa:16:3e:00:00:01")),
        ),
        (
            Method::POST,
            "/v2.0/subnets".into(),
            json!({"subnet": {"network_id": network_id, "cidr": "10.0.0.0/25"}}),
            StatusCode::BAD_REQUEST,
            "cidr",
            Some(json!("10.0.0.0/25")),
        ),
    ];
    for (method, path, body, status, field, value) in &cases {
        let answer = server
            .call(Some(ADMIN), method.clone(), path, Some(body.clone()))
            .await;
        let what = format!("{method} {path} {body}");
        assert_refused(&what, &answer, *status, field, value.as_ref());
    }
    assert_eq!(
        before,
        snapshot().await,
        "a refused request changed something"
    );

    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": name_255, "description": "d".repeat(1024)}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{error}");
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id, "name": name_255, "device_owner": name_255, "device_id": name_255, "fixed_ips": [{"ip_address": "10.0.0.254"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{error}");
    server.stop().await;
}

#[tokio::test]
async fn engine_errors_carry_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    let answer = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    assert_refused(
        "segment in use",
        &answer,
        StatusCode::CONFLICT,
        "provider:segmentation_id",
        Some(&json!(1001)),
    );
    for (host, ip) in [("compute-1", "192.0.2.1"), ("compute-2", "192.0.2.1")] {
        let answer = server
            .call(
                Some(ADMIN),
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(
                    json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"]}}),
                ),
            )
            .await;
        if host == "compute-2" {
            assert_refused(
                "tunneling ip in use",
                &answer,
                StatusCode::CONFLICT,
                "tunneling_ip",
                Some(&json!("192.0.2.1")),
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_large_bodies_answer_neutron_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;

    let (status, error) = server
        .call(Some(ADMIN), Method::GET, "/v2.0/routers", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["NeutronError"]["type"], "HTTPNotFound", "{error}");
    assert!(error["NeutronError"]["message"].is_string(), "{error}");
    assert_eq!(error["NeutronError"]["detail"], "", "{error}");

    let (status, error) = server
        .call(Some(ADMIN), Method::PATCH, "/v2.0/networks", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{error}");
    assert_eq!(
        error["NeutronError"]["type"], "HTTPMethodNotAllowed",
        "{error}"
    );
    assert!(error["NeutronError"]["message"].is_string(), "{error}");

    let huge = "x".repeat(3 * 1024 * 1024);
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": huge}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(
        error["NeutronError"]["type"], "HTTPRequestEntityTooLarge",
        "{error}"
    );
    assert!(error["NeutronError"]["message"].is_string(), "{error}");
    server.stop().await;
}
