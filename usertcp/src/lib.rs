//! User-space TCP/IP for the iSCSI backend: smoltcp (ARP, IPv4, TCP) whose
//! device is a DPDK port, polled from the block poller thread.
//!
//! ```text
//!  blk_iscsi::Link ─ send/recv ─► UserTcp (tcp::Socket) ─ Interface::poll ─► PortDevice
//!                                                                   rx_burst / tx_burst
//!                                                          DPDK port (net_af_packet on a veth, ...)
//! ```
//!
//! * [`device`]: smoltcp's `phy::Device` over one rx and one tx queue of a
//!   DPDK port: received mbufs are handed to smoltcp in place, transmitted
//!   frames are built in mbufs from the port's pool and sent in bursts.
//! * [`transport`]: [`TcpStack`], the interface (one address, many
//!   connections), and [`UserTcp`], a `blk_iscsi::link::Transport` on one smoltcp
//!   TCP socket.
//!
//! The port is either its own (`blk serve --user-tcp`: the bytes leave
//! through it directly) or one end of the switch's internal port
//! (`vswitch run --host-ip`: the bytes cross the flow table).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod device;
pub mod transport;

pub use transport::{TcpStack, UserTcp, UserTcpConfig};

/// Initialises DPDK's EAL for a process that only needs ports for user TCP:
/// no hugepages, no PCI scan, no shared config; the main lcore may run on any
/// CPU (so threads spawned later are not all pinned to one). The EAL stays up
/// until the process exits.
pub fn init_eal() -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args = [
        format!("--lcores=0@(0-{})", cpus - 1),
        "--no-huge".into(),
        "-m".into(),
        "256".into(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "--no-telemetry".into(),
        "--log-level=*:warning".into(),
        format!("--file-prefix=vswitch-utcp-{}", std::process::id()),
    ];
    let eal = dpdk::Eal::init(&args).map_err(|e| format!("DPDK EAL: {e}"))?;
    // Dropping it would call rte_eal_cleanup under the running ports.
    std::mem::forget(eal);
    Ok(())
}
