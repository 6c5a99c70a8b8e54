//! `vswitch fdb show`: the MAC learning table (`ovs-appctl fdb/show`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use switch::control::{request, Reply, Request, DEFAULT_SOCKET};

/// Arguments of `vswitch fdb`.
#[derive(Args)]
pub struct FdbArgs {
    #[command(subcommand)]
    cmd: FdbCmd,
    /// Control socket of the running switch (the PATH given to `vswitch run
    /// --control`; `--control` is accepted here too).
    #[arg(long, visible_alias = "control", value_name = "PATH", global = true, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum FdbCmd {
    /// Show learned MAC addresses.
    Show,
}

/// Run `vswitch fdb`.
pub fn run(a: FdbArgs) -> Result<(), String> {
    let FdbCmd::Show = a.cmd;
    let reply = request(&a.socket, &Request::FdbShow)?;
    if a.json {
        return super::print_json(&reply);
    }
    let Reply::Fdb { entries } = reply else {
        return Err(format!("unexpected reply {reply:?}"));
    };
    println!(" port  VLAN  MAC                Age");
    for e in entries {
        let mac: Vec<String> = e.mac.iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "{:>5}  {:>4}  {}  {:>3}",
            e.port,
            e.vlan,
            mac.join(":"),
            e.age_ms / 1000
        );
    }
    Ok(())
}
