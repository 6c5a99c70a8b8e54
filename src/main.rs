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
    /// User-mode iSCSI initiator: discover, inquiry, capacity, read, write, bench.
    #[command(subcommand)]
    Iscsi(cmd::iscsi::IscsiCommand),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<(), String> = match cli.command {
        None => Ok(()),
        Some(Command::Iscsi(c)) => cmd::iscsi::run(c),
    };
    if let Err(e) = result {
        eprintln!("vswitch: {e}");
        std::process::exit(1);
    }
}
