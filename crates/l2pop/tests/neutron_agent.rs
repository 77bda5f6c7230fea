//! `l2pop agent` beside a real neutron-server (issue 12, item 3): Neutron 24.0.0's ML2 plugin
//! (`linuxbridge,l2population`) serves its agent RPC over the real RabbitMQ (`L2POP_AMQP_URL`,
//! a virtual host per run made with rabbitmqctl) and this agent, `server.kind = "neutron"`,
//! programs a network namespace's kernel from Neutron's casts. Runs
//! `integrations/neutron/tests/agent_beside_neutron.py` in the venv of `scripts/neutron-venv`
//! (or `L2POP_NEUTRON_PYTHON`). Needs root; without root it fails unless `L2POP_SKIP_NETNS=1`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[path = "support/neutron.rs"]
mod neutron;
use neutron::python;

#[test]
fn our_agent_follows_a_real_neutron_server() {
    if !l2pop::demo::is_root() {
        assert!(
            std::env::var("L2POP_SKIP_NETNS").as_deref() == Ok("1"),
            "this network-namespace test needs root (or L2POP_SKIP_NETNS=1 to skip it)"
        );
        eprintln!("skipped: not root and L2POP_SKIP_NETNS=1");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../integrations/neutron");
    let output = Command::new(python())
        .args(["-m", "unittest", "-v", "tests.agent_beside_neutron"])
        .current_dir(&dir)
        .env("L2POP_BIN", env!("CARGO_BIN_EXE_l2pop"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the python test: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the agent beside Neutron failed ({}):\n{}\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("Ran 1 test") && stderr.contains("\nOK"),
        "the test did not run:\n{stderr}"
    );
}
