//! `l2pop replay EVENTS.jsonl`: the engine's golden-scenario driver. Reads one event per line
//! (blank lines and `#` comments skipped), applies it, prints each notification as
//! `{"seq","event","method","target",["source",]"fdb_entries"}`. Extension registrations
//! (`extension` ops) come first; `static_fdb` ops drive the example `StaticFdb` extension and
//! the BGPVPN ops (`bgpvpn_*`, `network_association_*`, `bgp_*`) the `Bgpvpn` extension.
//! A bad line (one the engine refuses) stops the run with `line N: <field>: <reason>` on stderr
//! and exit code 2. With `--keep-going` it is reported the same way and skipped, as the server
//! answers 409 and goes on; the run then ends with exit code 2 if any line was refused.

use std::io::{self, BufRead, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use l2pop_bgpvpn::{Bgpvpn, BgpvpnOp};
use l2pop_engine::extensions::{FailingFdb, PanickingFdb, StaticAction, StaticFdb};
use l2pop_engine::{Engine, EngineBuilder, Event, ExtensionChanges};
use l2pop_model::{FdbPayload, Method, NetworkId, Notification, PortInfo, Target};
use serde::{Deserialize, Serialize};

/// Operations of the replay vocabulary that are not engine events.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ReplayOp {
    Extension(ExtensionOp),
    StaticFdb(StaticFdbOp),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionOp {
    name: String,
    kind: ExtensionKind,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ExtensionKind {
    Static,
    Bgpvpn,
    Failing,
    Panicking,
    /// A static extension whose update panics on the MAC [`POISON`], after it has stored the
    /// entries listed before it: a half-updated extension, to show update fault isolation.
    Fragile,
}

/// The MAC a `fragile` extension panics on.
const POISON: l2pop_model::Mac = l2pop_model::Mac::new([0xde, 0xad, 0xbe, 0xef, 0, 0]);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticFdbOp {
    extension: String,
    action: StaticAction,
    network_id: NetworkId,
    vtep: IpAddr,
    entries: Vec<PortInfo>,
}

#[derive(Serialize)]
struct OutputLine<'a> {
    seq: u64,
    event: usize,
    method: Method,
    target: &'a Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    fdb_entries: &'a FdbPayload,
}

/// Registrations are collected until the first other op, then the engine is built.
enum Phase {
    Registering(EngineBuilder),
    Running(Box<Engine>),
}

struct State {
    phase: Phase,
    /// Extensions registered as `fragile`.
    fragile: Vec<String>,
}

impl State {
    fn engine(&mut self) -> &mut Engine {
        if let Phase::Registering(builder) = &mut self.phase {
            let builder = std::mem::take(builder);
            self.phase = Phase::Running(Box::new(builder.build()));
        }
        match &mut self.phase {
            Phase::Running(engine) => engine,
            Phase::Registering(_) => unreachable!("just built"),
        }
    }
}

/// Replays `path`; `keep_going` skips refused lines instead of stopping at the first.
pub fn run(path: &Path, keep_going: bool) -> ExitCode {
    match replay(path, keep_going) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(refused) => {
            eprintln!("replay: {refused} refused line(s) skipped");
            ExitCode::from(2)
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// Returns the number of refused lines (only ever non-zero with `keep_going`).
fn replay(path: &Path, keep_going: bool) -> Result<usize, String> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Box::new(io::BufReader::new(file))
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut state = State {
        phase: Phase::Registering(EngineBuilder::new()),
        fragile: Vec::new(),
    };
    let mut event_index = 0usize;
    let mut refused = 0usize;
    for (number, line) in reader.lines().enumerate() {
        let line_no = number + 1;
        let line = line.map_err(|e| format!("line {line_no}: {e}"))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut extension_reports = Vec::new();
        let result = apply_line(&mut state, text, &mut extension_reports);
        for report in extension_reports {
            eprintln!("line {line_no}: report: {report}");
        }
        if let Phase::Running(engine) = &mut state.phase {
            for report in engine.take_reports() {
                eprintln!(
                    "line {line_no}: report: {}",
                    serde_json::to_string(&report).unwrap_or_default()
                );
            }
        }
        let notifications = match result {
            Ok(notifications) => notifications,
            Err(error) if keep_going => {
                // Refused, like a 409 from the server: reported, skipped, still an event line.
                eprintln!("line {line_no}: {error}");
                refused += 1;
                event_index += 1;
                continue;
            }
            Err(error) => return Err(format!("line {line_no}: {error}")),
        };
        for n in &notifications {
            let line = OutputLine {
                seq: n.seq,
                event: event_index,
                method: n.method,
                target: &n.target,
                source: n.source.as_deref(),
                fdb_entries: &n.fdb_entries,
            };
            let json = serde_json::to_string(&line).map_err(|e| format!("line {line_no}: {e}"))?;
            writeln!(out, "{json}").map_err(|e| format!("writing output: {e}"))?;
        }
        event_index += 1;
    }
    out.flush().map_err(|e| format!("writing output: {e}"))?;
    Ok(refused)
}

fn apply_line(
    state: &mut State,
    text: &str,
    reports: &mut Vec<String>,
) -> Result<Vec<Notification>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let op = value
        .get("op")
        .and_then(|v| v.as_str())
        .ok_or("missing \"op\"")?
        .to_owned();
    match op.as_str() {
        name if BgpvpnOp::NAMES.contains(&name) => {
            let bgpvpn_op: BgpvpnOp = parse(value)?;
            bgpvpn(state.engine(), &bgpvpn_op, reports)
        }
        "extension" | "static_fdb" => {
            let replay_op: ReplayOp = parse(value)?;
            match replay_op {
                ReplayOp::Extension(op) => register(state, op).map(|()| Vec::new()),
                ReplayOp::StaticFdb(op) => {
                    let fragile = state.fragile.contains(&op.extension);
                    static_fdb(state.engine(), op, fragile)
                }
            }
        }
        _ => {
            let event: Event = parse(value)?;
            state.engine().apply(&event).map_err(|e| e.to_string())
        }
    }
}

/// Deserializes with the path of the offending field in the message.
fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

fn register(state: &mut State, op: ExtensionOp) -> Result<(), String> {
    let Phase::Registering(builder) = &mut state.phase else {
        return Err("extensions are registered before any other event".to_owned());
    };
    let current = std::mem::take(builder);
    let next = match op.kind {
        ExtensionKind::Static => current.extension(&op.name, StaticFdb::new()),
        ExtensionKind::Bgpvpn => current.extension(&op.name, Bgpvpn::new()),
        ExtensionKind::Failing => {
            current.extension(&op.name, FailingFdb::new("configured to fail"))
        }
        ExtensionKind::Panicking => {
            current.extension(&op.name, PanickingFdb::new("configured to panic"))
        }
        ExtensionKind::Fragile => current.extension(&op.name, StaticFdb::new()),
    };
    *builder = next.map_err(|e| format!("name: {e}"))?;
    if matches!(op.kind, ExtensionKind::Fragile) {
        state.fragile.push(op.name);
    }
    Ok(())
}

fn static_fdb(
    engine: &mut Engine,
    op: StaticFdbOp,
    fragile: bool,
) -> Result<Vec<Notification>, String> {
    engine
        .update_extension::<StaticFdb>(&op.extension, |ext, topology| {
            if !fragile {
                return ext.apply(op.action, op.network_id, op.vtep, &op.entries, topology);
            }
            let mut changes = ExtensionChanges::default();
            for entry in &op.entries {
                if entry.mac == POISON {
                    panic!("fragile: poisoned entry {}", entry.mac);
                }
                let one = std::slice::from_ref(entry);
                let done = ext.apply(op.action, op.network_id, op.vtep, one, topology)?;
                changes.removes.extend(done.removes);
                changes.adds.extend(done.adds);
            }
            Ok(changes)
        })
        .map_err(|e| e.to_string())
}

/// BGPVPN ops go to the extension registered as `bgpvpn` (kind `bgpvpn`).
fn bgpvpn(
    engine: &mut Engine,
    op: &BgpvpnOp,
    reports: &mut Vec<String>,
) -> Result<Vec<Notification>, String> {
    engine
        .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, topology| {
            let changes = ext.apply(op, topology);
            let taken = ext.take_reports();
            reports.extend(
                taken
                    .iter()
                    .map(|r| serde_json::to_string(r).unwrap_or_default()),
            );
            changes.map_err(Into::into)
        })
        .map_err(|e| e.to_string())
}
