//! `vswitch flows add|del|dump`: manage the flow table of a running switch
//! over its control socket (`ovs-ofctl add-flow/del-flows/dump-flows`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use switch::control::{request, Reply, Request, DEFAULT_SOCKET};

/// Arguments of `vswitch flows`.
#[derive(Args)]
pub struct FlowsArgs {
    #[command(subcommand)]
    cmd: FlowsCmd,
    /// Control socket of the running switch (the PATH given to `vswitch run
    /// --control`; `--control` is accepted here too).
    #[arg(long, visible_alias = "control", value_name = "PATH", global = true, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum FlowsCmd {
    /// Install a rule, e.g. `priority=100,in_port=1,tcp,tp_dst=80,actions=output:2`.
    Add {
        /// The rule (ovs-ofctl add-flow syntax, see switch/README.md).
        rule: String,
    },
    /// Delete the rules at least as specific as MATCH (all rules without one).
    Del {
        /// Match, e.g. `tcp,nw_dst=10.0.0.0/8`; may include `priority=`.
        #[arg(name = "MATCH", default_value = "")]
        filter: String,
        /// Delete only rules with exactly this match (and priority, if given).
        #[arg(long)]
        strict: bool,
    },
    /// Show every rule with its counters.
    Dump,
}

/// Run `vswitch flows`.
pub fn run(a: FlowsArgs) -> Result<(), String> {
    let req = match a.cmd {
        FlowsCmd::Add { rule } => Request::FlowsAdd { rule },
        FlowsCmd::Del { filter, strict } => Request::FlowsDel { filter, strict },
        FlowsCmd::Dump => Request::FlowsDump,
    };
    let reply = request(&a.socket, &req)?;
    if a.json {
        return super::print_json(&reply);
    }
    match reply {
        Reply::FlowAdded { id } => println!("added flow {id}"),
        Reply::FlowsDeleted { count } => println!("deleted {count} flow(s)"),
        Reply::Flows { flows } => {
            for f in flows {
                let rest = f
                    .rule
                    .strip_prefix(&format!("priority={}", f.priority))
                    .unwrap_or(&f.rule);
                println!(
                    " id={}, duration={:.3}s, n_packets={}, n_bytes={}, idle_age={}, priority={}{}",
                    f.id,
                    f.duration_ms as f64 / 1000.0,
                    f.packets,
                    f.bytes,
                    f.idle_age_ms / 1000,
                    f.priority,
                    rest
                );
            }
        }
        other => return Err(format!("unexpected reply {other:?}")),
    }
    Ok(())
}
