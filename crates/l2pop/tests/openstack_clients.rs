//! openstacksdk 4.22.0 and python-openstackclient 10.5.0 (the venv made by
//! `scripts/openstack-venv`, or the python in `L2POP_OPENSTACK_PYTHON`) drive an in-process
//! server as operators do, without Keystone (`admin_token` auth, discovery from the version
//! documents): networks, subnets, ports, agents, BGPVPNs and associations, filters, paging,
//! sorting and errors (`tests/openstack/clients.py`). Under `CI=true` a missing venv fails the
//! test; elsewhere it is reported and the test passes without running the suite.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use reqwest::Method;
use serde_json::json;
use support::{ADMIN, TestServer};

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("L2POP_OPENSTACK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/openstack-venv/bin/python")
        });
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "the OpenStack clients' python {} does not exist: run scripts/openstack-venv (or set L2POP_OPENSTACK_PYTHON)",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("not run: {message}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstacksdk_and_the_openstack_cli() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start(&store).await;
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/agents",
            Some(json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": true}})),
        )
        .await;
    let cli = python.with_file_name("openstack");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openstack/clients.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("L2POP_URL", &server.url)
        .env("L2POP_TOKEN", ADMIN)
        .env("L2POP_OPENSTACK", &cli)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONWARNINGS", "ignore")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the OpenStack clients suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("OK ")),
        "the suite did not finish:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    server.stop().await;
}
