//! The Neutron ML2 driver (`integrations/neutron`, networking-l2pop) against the real Neutron
//! 24.0.0 ML2 plugin, the real RabbitMQ (`L2POP_AMQP_URL`) and this l2pop binary: runs the
//! driver's Python suite (`integrations/neutron/tests`) in the venv made by
//! `scripts/neutron-venv` (or the python in `L2POP_NEUTRON_PYTHON`). A missing venv or broker
//! fails the test; nothing is skipped.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[path = "support/neutron.rs"]
mod neutron;
use neutron::python;

#[test]
fn neutron_driver_suite() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../integrations/neutron");
    let output = Command::new(python())
        .args(["-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."])
        .current_dir(&dir)
        .env("L2POP_BIN", env!("CARGO_BIN_EXE_l2pop"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the driver suite: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // unittest reports on stderr; keep the summary in the test's output.
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the Neutron driver suite failed ({}):\n{}\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("\nOK"),
        "the suite ran no test successfully:\n{stderr}"
    );
}
