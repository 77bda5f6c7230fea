//! The venv with Neutron 24.0.0 and networking-l2pop (`scripts/neutron-venv`), for the tests
//! that run Neutron's real code. Included with `#[path]` by those tests.

use std::path::PathBuf;

/// Its python: `L2POP_NEUTRON_PYTHON`, else `target/neutron-venv`. A missing venv fails the
/// test, naming how to make it.
pub fn python() -> PathBuf {
    let path = std::env::var_os("L2POP_NEUTRON_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/neutron-venv/bin/python")
        });
    assert!(
        path.exists(),
        "the Neutron python {} does not exist: run scripts/neutron-venv (or set L2POP_NEUTRON_PYTHON)",
        path.display()
    );
    path
}
