//! Golden scenarios: every `scenarios/<name>/events.jsonl` run through `l2pop replay` must print
//! `expected.jsonl` byte for byte. Expected files are written by reasoning from the reference,
//! so a mismatch is a bug in the engine or in the reasoning; both get a look.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn scenario_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("scenarios directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("events.jsonl").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn at_least_fifty_scenarios() {
    let count = scenario_dirs().len();
    assert!(count >= 50, "only {count} golden scenarios");
}

#[test]
fn every_scenario_matches_its_expected_output() {
    let mut failures = Vec::new();
    for dir in scenario_dirs() {
        let output = Command::new(env!("CARGO_BIN_EXE_l2pop"))
            .arg("replay")
            .arg(dir.join("events.jsonl"))
            .output()
            .expect("run l2pop replay");
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !output.status.success() {
            failures.push(format!(
                "{name}: exit {:?}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let expected = std::fs::read_to_string(dir.join("expected.jsonl")).expect("expected.jsonl");
        let actual = String::from_utf8_lossy(&output.stdout);
        if actual != expected {
            failures.push(format!(
                "{name}: output differs\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_bad_line_stops_with_its_number_and_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("l2pop-replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.jsonl");
    std::fs::write(
        &file,
        "# comment\n{\"op\":\"network\",\"id\":\"11111111-1111-4111-8111-111111111111\",\"network_type\":\"vxlan\",\"segmentation_id\":16777216}\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_l2pop"))
        .arg("replay")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "line 2: segmentation_id: segmentation_id 16777216 is out of range for vxlan (1..=16777215)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
