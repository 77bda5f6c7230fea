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
        // A scenario with refused lines lists them in `refused.txt`: it runs with --keep-going,
        // must exit with 2 and report exactly those lines (reports and the summary aside).
        let refused = std::fs::read_to_string(dir.join("refused.txt")).ok();
        let mut command = Command::new(env!("CARGO_BIN_EXE_l2pop"));
        command.arg("replay");
        if refused.is_some() {
            command.arg("--keep-going");
        }
        let output = command
            .arg(dir.join("events.jsonl"))
            .output()
            .expect("run l2pop replay");
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(refused) = &refused {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reported: String = stderr
                .lines()
                .filter(|l| l.starts_with("line ") && !l.contains(": report: "))
                .map(|l| format!("{l}\n"))
                .collect();
            if output.status.code() != Some(2) || reported != *refused {
                failures.push(format!(
                    "{name}: exit {:?}, refused lines differ\n--- expected\n{refused}--- actual\n{reported}",
                    output.status.code()
                ));
                continue;
            }
        } else if !output.status.success() {
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

#[test]
fn keep_going_reports_each_refused_line_and_ends_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("l2pop-replay-keep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.jsonl");
    let net = "11111111-1111-4111-8111-111111111111";
    std::fs::write(
        &file,
        format!(
            "{{\"op\":\"network\",\"id\":\"{net}\",\"network_type\":\"vxlan\",\"segmentation_id\":16777216}}\n\
             # the same network, valid\n\
             {{\"op\":\"network\",\"id\":\"{net}\",\"network_type\":\"vxlan\",\"segmentation_id\":1001}}\n\
             {{\"op\":\"network_delete\",\"id\":\"22222222-2222-4222-8222-222222222222\"}}\n\
             {{\"op\":\"subnet\",\"network_id\":\"{net}\",\"cidr\":\"10.0.1.0/24\"}}\n\
             {{\"op\":\"agent\",\"host\":\"host1\",\"tunneling_ip\":\"192.0.2.1\",\"tunnel_types\":[\"vxlan\"]}}\n\
             {{\"op\":\"port_create\",\"id\":\"dddddddd-0000-4000-8000-000000000011\",\"network_id\":\"{net}\",\"mac\":\"fa:16:3e:00:02:11\",\"fixed_ips\":[\"10.0.1.111\"],\"host\":\"host1\"}}\n\
             {{\"op\":\"device_up\",\"id\":\"dddddddd-0000-4000-8000-000000000011\",\"host\":\"host1\"}}\n"
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_l2pop"))
        .args(["replay", "--keep-going"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "line 1: segmentation_id: segmentation_id 16777216 is out of range for vxlan (1..=16777215)\n\
         line 4: id: no network 22222222-2222-4222-8222-222222222222\n\
         replay: 2 refused line(s) skipped\n"
    );
    // The refused lines still count as events: the device_up is event 6.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("{\"seq\":1,\"event\":6,"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
