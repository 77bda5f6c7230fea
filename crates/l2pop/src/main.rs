//! `l2pop`: one binary for every role. This session's commands: `replay` (run an event file
//! through the engine and print its notifications). The server, agent, BGP speaker, demo and
//! client verbs join as their issues land.

mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "l2pop",
    version,
    about = "Neutron-compatible layer-2 population for VXLAN overlays"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the events of a JSON-lines file to a fresh engine and print one JSON line per
    /// notification (vocabulary: scenarios/README.md). Exit code 2 on the first bad line.
    Replay {
        /// The events file (`-` for standard input).
        events: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { events } => replay::run(&events),
    }
}
