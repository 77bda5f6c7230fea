//! The client verbs against an in-process server: the built `l2pop` binary creates a network,
//! a subnet and a bound port, shows the host's desired FDB (as JSON, then as a table naming the
//! port as the entry's source), and prints the API's own words for a refused request.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, TestServer};

/// Runs `l2pop <args>` against `server` with the admin token, without blocking the runtime
/// the server runs on.
async fn l2pop(server: &TestServer, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_l2pop"))
        .args(args)
        .env("L2POP_URL", &server.url)
        .env("L2POP_TOKEN", ADMIN)
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a verb that must succeed with `--json`; its answer.
async fn l2pop_json(server: &TestServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let output = l2pop(server, &args).await;
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

#[tokio::test]
async fn create_bind_and_show_the_fdb() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(&format!("sqlite:{}", dir.path().join("l2pop.db").display())).await;
    for (host, ip) in [("h1", "192.0.2.1"), ("h2", "192.0.2.2")] {
        server
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(
                    json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"]}}),
                ),
            )
            .await;
    }

    let network = l2pop_json(
        &server,
        &[
            "network",
            "create",
            "--name",
            "net1",
            "--type",
            "vxlan",
            "--segment",
            "1001",
        ],
    )
    .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    assert_eq!(network["network"]["provider:segmentation_id"], 1001);
    let subnet = l2pop_json(
        &server,
        &[
            "subnet",
            "create",
            "--network",
            &network_id,
            "--cidr",
            "10.0.0.0/24",
        ],
    )
    .await;
    let subnet_id = subnet["subnet"]["id"].as_str().unwrap().to_owned();

    let mut ports = Vec::new();
    for (host, mac) in [("h1", "fa:16:3e:00:00:01"), ("h2", "fa:16:3e:00:00:02")] {
        let fixed_ip = format!("subnet_id={subnet_id}");
        let port = l2pop_json(
            &server,
            &[
                "port",
                "create",
                "--network",
                &network_id,
                "--mac",
                mac,
                "--host",
                host,
                "--fixed-ip",
                &fixed_ip,
            ],
        )
        .await;
        assert_eq!(port["port"]["binding:host_id"], host);
        ports.push(port["port"]["id"].as_str().unwrap().to_owned());
    }

    let fdb = l2pop_json(&server, &["fdb", "show", "--host", "h1"]).await;
    assert_eq!(
        fdb["fdb"]["networks"],
        json!([]),
        "nothing before the devices are up"
    );

    for (port, host) in ports.iter().zip(["h1", "h2"]) {
        server
            .admin(
                Method::POST,
                &format!("/v2.0/l2pop/devices/{port}/up"),
                Some(json!({"device": {"host": host}})),
            )
            .await;
    }
    let fdb = l2pop_json(&server, &["fdb", "show", "--host", "h1"]).await;
    assert_eq!(fdb["fdb"]["networks"][0]["network_id"], network_id.as_str());

    let table = l2pop(&server, &["fdb", "show", "--host", "h1"]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("NETWORK "), "{text}");
    let row = text
        .lines()
        .find(|line| line.contains("fa:16:3e:00:00:02"))
        .unwrap_or_else(|| panic!("no row for h2's port:\n{text}"));
    assert!(row.contains(&format!("port {}", ports[1])), "{row}");
    assert!(row.contains("192.0.2.2") && row.contains("1001"), "{row}");

    let list = l2pop(&server, &["port", "list", "--network", &network_id]).await;
    assert!(
        stdout(&list).contains("fa:16:3e:00:00:01"),
        "{}",
        stdout(&list)
    );
    let delete = l2pop(&server, &["port", "delete", &ports[0]]).await;
    assert!(
        delete.status.success() && delete.stdout.is_empty(),
        "{}",
        stderr(&delete)
    );
    server.stop().await;
}

#[tokio::test]
async fn refused_requests_print_the_api_error_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(&format!("sqlite:{}", dir.path().join("l2pop.db").display())).await;
    let network = l2pop_json(&server, &["network", "create", "--name", "net1"]).await;
    let network_id = network["network"]["id"].as_str().unwrap();

    let output = l2pop(
        &server,
        &[
            "port",
            "create",
            "--network",
            network_id,
            "--mac",
            "not-a-mac",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.starts_with("400 HTTPBadRequest: "), "{error}");
    assert!(error.contains("mac_address"), "{error}");
    assert!(stdout(&output).is_empty());

    let output = l2pop(
        &server,
        &["network", "show", "00000000-0000-0000-0000-000000000000"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("404 NetworkNotFound: "),
        "{}",
        stderr(&output)
    );

    let output = l2pop(&server, &["network", "update", network_id]).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "nothing to update is a usage error"
    );
    server.stop().await;
}
