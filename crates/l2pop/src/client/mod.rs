//! The client verbs (`l2pop network create`, `l2pop fdb show --host H`, ...): a thin,
//! Neutron-shaped command line over the server's REST API.
//!
//! ```text
//!   clap args ──► plan::plan (pure) ──► Call { Request, Output }
//!                                          │            │
//!                         http::send (the only I/O)     │
//!                                          │ JSON       │
//!                                          ▼            ▼
//!                                  --json: as is │ render: aligned text table
//! ```
//!
//! Output goes to stdout; errors go to stderr as the API worded them (`400 HTTPBadRequest:
//! Invalid input for mac_address. ...`), exit code 1; a usage error exits 2.

pub mod args;
mod error;
mod http;
mod plan;
mod render;

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::Value;

pub use self::args::{ClientOptions, Resource};
pub use self::error::ClientError;
use self::plan::Output;

/// Runs one client verb against the server named by `options` and prints the answer.
pub fn run(options: &ClientOptions, resource: Resource) -> ExitCode {
    match execute(options, &resource) {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}", error.to_stderr());
            ExitCode::from(error.exit_code())
        }
    }
}

/// Plans, sends and renders one verb; the text to print.
pub fn execute(options: &ClientOptions, resource: &Resource) -> Result<String, ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)?;
    // Two verbs ask a running agent, not (only) the server.
    match resource {
        Resource::Agent(args::AgentArgs {
            verb: Some(args::AgentVerb::Status(at)),
            ..
        }) => {
            let status = runtime.block_on(http::get_agent(&at.agent, "/status"))?;
            return pretty(&status);
        }
        Resource::Fdb(args::FdbVerb::Explain(explain)) => {
            let call = plan::plan(resource)?;
            let endpoint = http::Endpoint::new(options, |key| std::env::var(key).ok())?;
            let table = runtime.block_on(http::send(&endpoint, &call.request))?;
            let mut query = format!("/fdb?mac={}", explain.mac);
            if let Some(network) = &explain.network {
                query.push_str(&format!("&network={network}"));
            }
            let agent = runtime.block_on(http::get_agent(&explain.agent, &query));
            return pretty(&render::explain(explain, table.as_ref(), agent));
        }
        _ => {}
    }
    let call = plan::plan(resource)?;
    let endpoint = http::Endpoint::new(options, |key| std::env::var(key).ok())?;
    let answer = runtime.block_on(http::send(&endpoint, &call.request))?;
    show(call.output, answer.as_ref(), options.json)
}

fn pretty(value: &Value) -> Result<String, ClientError> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| ClientError::Answer(e.to_string()))
}

/// The text for an answer: pretty JSON with `--json`, else the verb's table.
fn show(output: Output, answer: Option<&Value>, json: bool) -> Result<String, ClientError> {
    let Some(answer) = answer else {
        return Ok(String::new());
    };
    if json {
        let text =
            serde_json::to_string_pretty(answer).map_err(|e| ClientError::Answer(e.to_string()))?;
        return Ok(text + "\n");
    }
    let missing = |key: &str| ClientError::Answer(format!("no {key:?} in {answer}"));
    match output {
        Output::List { key, columns } => answer[key]
            .as_array()
            .map(|items| render::list_table(items, columns))
            .ok_or_else(|| missing(key)),
        Output::Record { key } => answer
            .get(key)
            .filter(|record| record.is_object())
            .map(render::record_table)
            .ok_or_else(|| missing(key)),
        Output::Fdb => answer
            .get("fdb")
            .map(render::fdb_table)
            .ok_or_else(|| missing("fdb")),
        Output::Nothing => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests;
