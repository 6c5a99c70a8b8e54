//! `vswitch`: the command-line front end of the data plane.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only
//! dispatches.

use clap::{Parser, Subcommand};

mod cmd;

/// User-mode data plane for virtualization hosts.
#[derive(Parser)]
#[command(name = "vswitch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    // Subcommands are added one per line, each backed by a module in cmd/.
    /// Manage the flow table of a running switch (add|del|dump).
    Flows(cmd::flows::FlowsArgs),
    /// Show the MAC learning table of a running switch.
    Fdb(cmd::fdb::FdbArgs),
    /// Show per-core datapath statistics of a running switch.
    Stats(cmd::stats::StatsArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<(), String> = match cli.command {
        None => Ok(()),
        Some(Command::Flows(a)) => cmd::flows::run(a),
        Some(Command::Fdb(a)) => cmd::fdb::run(a),
        Some(Command::Stats(a)) => cmd::stats::run(a),
    };
    if let Err(e) = result {
        eprintln!("vswitch: {e}");
        std::process::exit(1);
    }
}
