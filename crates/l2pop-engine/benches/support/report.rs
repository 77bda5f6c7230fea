//! The ratio table both benches print: medians read back from criterion's own files, ratios
//! against a baseline measured in the same run, targets reported (never asserted). Included by
//! `crates/l2pop-engine/benches/engine.rs` and `crates/l2pop-bgpvpn/benches/bgpvpn.rs` (a
//! subdirectory, so that cargo does not take it for a bench of its own).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where criterion writes: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, else the first
/// `target/criterion` (or `target`) found walking up from the current directory.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .map(|dir| dir.join("target"))
        .find(|target| target.join("criterion").is_dir())
        .or_else(|| {
            cwd.ancestors()
                .map(|dir| dir.join("target"))
                .find(|target| target.is_dir())
        })
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// The median (ns) of `group/bench` if criterion wrote it during this run.
pub fn median(dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified >= since);
    if !fresh {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

pub fn fmt_ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.3}")
    } else {
        format!("{r:.2e}")
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}

pub struct Row {
    pub case: &'static str,
    pub what: &'static str,
    pub measured: Option<f64>,
    /// Upper bound of the ratio; `None`: reported, no target.
    pub target: Option<f64>,
    pub shown: Option<String>,
}

pub fn print_table(rows: &[Row]) {
    println!(
        "{:<4} {:<62} {:>12} {:>9} {:>7}",
        "case", "measured", "value", "target", "result"
    );
    println!("{}", "-".repeat(98));
    for row in rows {
        let value = match (&row.shown, row.measured) {
            (Some(shown), _) => shown.clone(),
            (None, Some(r)) => fmt_ratio(r),
            (None, None) => "not run".to_owned(),
        };
        let target = row
            .target
            .map_or_else(|| "-".to_owned(), |t| format!("<= {t}"));
        let result = match (row.measured, row.target) {
            (Some(r), Some(t)) if r <= t => "met",
            (Some(_), Some(_)) => "MISSED",
            (None, Some(_)) => "n/a",
            (_, None) => "info",
        };
        println!(
            "{:<4} {:<62} {:>12} {:>9} {:>7}",
            row.case, row.what, value, target, result
        );
    }
}

/// Microseconds during which some task waited for a CPU (Linux PSI), when the kernel tells.
pub fn cpu_stall_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = text.lines().find(|l| l.starts_with("some"))?;
    some.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}
