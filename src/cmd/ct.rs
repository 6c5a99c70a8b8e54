//! `vswitch ct show|flush|limit`: the connection tracker of a running
//! switch (`ovs-appctl dpctl/dump-conntrack`, `dpctl/flush-conntrack`,
//! `dpctl/ct-set-limits`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use switch::control::{request, Reply, Request, DEFAULT_SOCKET};

/// Arguments of `vswitch ct`.
#[derive(Args)]
pub struct CtArgs {
    #[command(subcommand)]
    cmd: CtCmd,
    /// Control socket of the running switch (the PATH given to `vswitch run
    /// --control`; `--control` is accepted here too).
    #[arg(long, visible_alias = "control", value_name = "PATH", global = true, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum CtCmd {
    /// List connections, one per line as `ovs-appctl dpctl/dump-conntrack`.
    Show {
        /// Only connections of this zone (0-65535).
        #[arg(long, value_name = "Z")]
        zone: Option<u16>,
    },
    /// Remove connections (established ones then start over as new).
    Flush {
        /// Only connections of this zone (0-65535).
        #[arg(long, value_name = "Z")]
        zone: Option<u16>,
    },
    /// Limit the connections of a zone (OVS `dpctl/ct-set-limits`): a commit
    /// beyond it is refused, connections already there keep flowing.
    Limit {
        /// The zone (0-65535).
        #[arg(long, value_name = "Z")]
        zone: u16,
        /// At most N connections; 0: unlimited (as OVS).
        #[arg(long, value_name = "N", required_unless_present = "default")]
        limit: Option<u32>,
        /// Back to the default limit (OVS `dpctl/ct-del-limits`).
        #[arg(long, conflicts_with = "limit")]
        default: bool,
    },
}

/// Run `vswitch ct`.
pub fn run(a: CtArgs) -> Result<(), String> {
    let req = match a.cmd {
        CtCmd::Show { zone } => Request::CtShow { zone },
        CtCmd::Flush { zone } => Request::CtFlush { zone },
        CtCmd::Limit { zone, limit, .. } => Request::CtLimit {
            zone,
            limit: limit.map(|n| if n == 0 { u32::MAX } else { n }),
        },
    };
    let reply = request(&a.socket, &req)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&reply).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    match reply {
        Reply::CtConns { conns } => {
            for c in conns {
                println!("{c}");
            }
        }
        Reply::CtFlushed { count } => println!("flushed {count} connection(s)"),
        Reply::CtLimitSet { zone, limit } => match limit {
            None => println!("zone {zone}: default limit"),
            Some(u32::MAX) => println!("zone {zone}: unlimited"),
            Some(n) => println!("zone {zone}: at most {n} connection(s)"),
        },
        other => return Err(format!("unexpected reply {other:?}")),
    }
    Ok(())
}
