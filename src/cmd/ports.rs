//! `vswitch ports add|del|show`: ports of a running switch, changed while
//! traffic flows (`ovs-vsctl add-port/del-port`, `ovs-ofctl dump-ports`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use switch::control::{request, PortSpec, Reply, Request, DEFAULT_SOCKET};

/// Arguments of `vswitch ports`.
#[derive(Args)]
pub struct PortsArgs {
    #[command(subcommand)]
    cmd: PortsCmd,
    /// Control socket of the running switch (the PATH given to `vswitch run
    /// --control`; `--control` is accepted here too).
    #[arg(long, visible_alias = "control", value_name = "PATH", global = true, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum PortsCmd {
    /// Add a port from DPDK devargs (`net_tap0,iface=tap0`, `0000:01:00.0`,
    /// `net_vhost1,iface=/run/vm2.sock,client=1,mtu=9000`, ...).
    Add {
        /// DPDK device arguments, plus the switch's `mtu=N` (68..=9710).
        devargs: String,
        /// Switch port number (default: the lowest free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Remove a port (its traffic stops first; then it is closed).
    Del {
        /// Switch port number.
        port: u16,
    },
    /// Ports with their counters.
    Show,
}

/// Run `vswitch ports`.
pub fn run(a: PortsArgs) -> Result<(), String> {
    let req = match &a.cmd {
        PortsCmd::Add { devargs, port } => Request::PortsAdd(PortSpec {
            name: devargs.split(',').next().unwrap_or_default().to_owned(),
            devargs: devargs.clone(),
            port: *port,
        }),
        PortsCmd::Del { port } => Request::PortsDel { port: *port },
        PortsCmd::Show => Request::PortsShow,
    };
    let reply = request(&a.socket, &req)?;
    if let Reply::Error { error } = &reply {
        return Err(error.clone());
    }
    if a.json {
        return super::print_json(&reply);
    }
    match reply {
        Reply::PortAdded { port } => println!("added port {port}"),
        Reply::PortDeleted { port } => println!("deleted port {port}"),
        Reply::Ports { ports } => {
            println!(
                "{:>4}  {:<16} {:<5} {:>5} {:>12} {:>14} {:>12} {:>14} {:>9} {:>9}  rx pkts per queue",
                "port",
                "name",
                "link",
                "mtu",
                "rx pkts",
                "rx bytes",
                "tx pkts",
                "tx bytes",
                "rx drop",
                "tx drop",
            );
            for p in ports {
                let queues: Vec<String> =
                    p.rx_queue_packets.iter().map(|n| n.to_string()).collect();
                println!(
                    "{:>4}  {:<16} {:<5} {:>5} {:>12} {:>14} {:>12} {:>14} {:>9} {:>9}  {}",
                    p.port,
                    p.name,
                    if p.link_up { "up" } else { "down" },
                    p.mtu,
                    p.rx_packets,
                    p.rx_bytes,
                    p.tx_packets,
                    p.tx_bytes,
                    p.rx_dropped,
                    p.tx_dropped,
                    queues.join("/")
                );
                // Ports that count drops by reason (tunnel ports).
                if !p.drops.is_empty() {
                    let why: Vec<String> =
                        p.drops.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    println!("      drops: {}", why.join(", "));
                }
                let o = p.offload;
                if o.any() {
                    println!(
                        "      offload: rx large {} pkts / {} bytes, tx segmented {} -> {} segments, \
                         sw checksums {}, offload drops {}",
                        o.rx_large_packets,
                        o.rx_large_bytes,
                        o.tx_segmented,
                        o.tx_segments,
                        o.tx_csum_sw,
                        o.tx_offload_drops
                    );
                }
            }
        }
        other => return Err(format!("unexpected reply {other:?}")),
    }
    Ok(())
}
