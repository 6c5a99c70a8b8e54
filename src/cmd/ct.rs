//! `vswitch ct show|flush|limit|ipf`: the connection tracker of a running
//! switch (`ovs-appctl dpctl/dump-conntrack`, `dpctl/flush-conntrack`,
//! `dpctl/ct-set-limits`, `dpctl/ipf-*`).

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
    /// IP fragment reassembly before tracking (OVS `dpctl/ipf-*`; on by
    /// default for both families, as OVS 3.1).
    Ipf {
        #[command(subcommand)]
        cmd: IpfCmd,
    },
}

#[derive(Subcommand)]
enum IpfCmd {
    /// Settings and counters, as `ovs-appctl dpctl/ipf-get-status`.
    Status,
    /// Reassemble fragments of a family (`dpctl/ipf-set-enabled`).
    Enable {
        /// v4 or v6 (both if left out).
        family: Option<Family>,
    },
    /// Track fragments as they are: `+trk+inv` (`dpctl/ipf-set-disabled`).
    Disable {
        /// v4 or v6 (both if left out).
        family: Option<Family>,
    },
    /// Non-last fragments shorter than SIZE bytes (IP header included) are
    /// invalid (`dpctl/ipf-set-min-frag`; at least 400).
    MinFrag {
        /// v4 or v6.
        family: Family,
        /// Bytes.
        size: u32,
    },
    /// Fragments held at most, all lists together (`dpctl/ipf-set-max-nfrags`;
    /// at most 5000).
    MaxFrags {
        /// Fragments.
        n: u32,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Family {
    V4,
    V6,
}

/// The `ct ipf` request of a subcommand.
fn ipf_request(cmd: IpfCmd) -> Request {
    let (mut v4, mut v6, mut min_frag_v4, mut min_frag_v6, mut max_frags) =
        (None, None, None, None, None);
    match cmd {
        IpfCmd::Status => {}
        IpfCmd::Enable { family } => {
            v4 = (family != Some(Family::V6)).then_some(true);
            v6 = (family != Some(Family::V4)).then_some(true);
        }
        IpfCmd::Disable { family } => {
            v4 = (family != Some(Family::V6)).then_some(false);
            v6 = (family != Some(Family::V4)).then_some(false);
        }
        IpfCmd::MinFrag { family, size } => match family {
            Family::V4 => min_frag_v4 = Some(size),
            Family::V6 => min_frag_v6 = Some(size),
        },
        IpfCmd::MaxFrags { n } => max_frags = Some(n),
    }
    Request::CtIpf {
        v4,
        v6,
        min_frag_v4,
        min_frag_v6,
        max_frags,
    }
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
        CtCmd::Ipf { cmd } => ipf_request(cmd),
    };
    let reply = request(&a.socket, &req)?;
    if a.json {
        return super::print_json(&reply);
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
        Reply::CtIpf(r) => print!("{}", r.to_ovs_text()),
        Reply::Error { error } => return Err(error),
        other => return Err(format!("unexpected reply {other:?}")),
    }
    Ok(())
}
