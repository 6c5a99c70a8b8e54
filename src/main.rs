//! `vswitch`: the command-line front end of the data plane.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only
//! dispatches.

use clap::{Parser, Subcommand};

mod cmd;
mod dataplane;
mod storage;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (built against DPDK ",
    env!("VSWITCH_DPDK_VERSION"),
    ")"
);

/// User-mode data plane for virtualization hosts. With no arguments, demonstrates
/// the whole path on this machine (as root, with tgt installed: a simulated VM's
/// block I/O → cache → iSCSI on the user-mode TCP stack → the switch → a veth →
/// tgtd in a namespace); otherwise says what to install and runs the switch-only
/// demo on virtual ports.
#[derive(Parser)]
#[command(name = "vswitch", version = LONG_VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch data plane on DPDK ports.
    Run(Box<cmd::run::RunArgs>),
    /// Accelerator virtual functions: configure, list, run jobs.
    Accel(cmd::accel::AccelArgs),
    /// Ports of a running switch: add, delete, show.
    Ports(cmd::ports::PortsArgs),
    /// Manage the flow table of a running switch (add|del|dump).
    Flows(cmd::flows::FlowsArgs),
    /// Show the MAC learning table of a running switch.
    Fdb(cmd::fdb::FdbArgs),
    /// Show per-core datapath statistics of a running switch.
    Stats(cmd::stats::StatsArgs),
    /// Connection tracker of a running switch: show, flush, limit.
    Ct(cmd::ct::CtArgs),
    /// Virtual storage queues: serve virtio-blk devices to VMs over vhost-user.
    Blk(cmd::blk::BlkArgs),
    /// User-mode iSCSI initiator: discover, inquiry, capacity, read, write, bench.
    #[command(subcommand)]
    Iscsi(cmd::iscsi::IscsiCommand),
    /// Call a JSON-RPC (SPDK) storage method of a running `blk serve --rpc` or `run --rpc`.
    Rpc(cmd::rpc::RpcArgs),
    /// The demo `vswitch` runs with no arguments (`--switch-only`: virtual ports only).
    Demo(cmd::demo::DemoArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<(), String> = match cli.command {
        None => cmd::demo::run(&cmd::demo::DemoArgs::default()),
        Some(Command::Demo(a)) => cmd::demo::run(&a),
        Some(Command::Run(a)) => cmd::run::run(&a),
        Some(Command::Accel(a)) => cmd::accel::run(a),
        Some(Command::Ports(a)) => cmd::ports::run(a),
        Some(Command::Flows(a)) => cmd::flows::run(a),
        Some(Command::Fdb(a)) => cmd::fdb::run(a),
        Some(Command::Stats(a)) => cmd::stats::run(a),
        Some(Command::Ct(a)) => cmd::ct::run(a),
        Some(Command::Blk(a)) => cmd::blk::run(a),
        Some(Command::Iscsi(c)) => cmd::iscsi::run(c),
        Some(Command::Rpc(a)) => cmd::rpc::run(&a),
    };
    if let Err(e) = result {
        eprintln!("vswitch: error: {e}");
        std::process::exit(1);
    }
}
