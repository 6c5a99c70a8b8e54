//! Tunnel ports: VXLAN (RFC 7348) and Geneve (RFC 8926) over IPv4.
//!
//! A tunnel port is a switch port without a device of its own. What
//! reaches it is encapsulated and leaves through an **underlay** port;
//! what arrives on the underlay addressed to the tunnel's local IP and UDP
//! port is decapsulated and enters the flow table as received on the
//! tunnel port, with the outer header's `tun_id`, `tun_src` and `tun_dst`
//! matchable ([`crate::key`]).
//!
//! ```text
//!  underlay rx ─► Endpoints::classify ─┬─ Pass: the switch, in_port = underlay
//!                                      ├─ Decap: strip outer headers ─► switch, in_port = tunnel port, TunnelMeta
//!                                      ├─ ArpRequest for a local IP: answered on the underlay (ArpCache learns the asker)
//!                                      ├─ ArpReply / gratuitous ARP: ArpCache learns
//!                                      └─ Drop(reason): counted on the tunnel port (TunnelStats)
//!  switch verdict → tunnel port ─► key/remote from the port's options or set_tunnel/tun_dst actions
//!                               ─► ArpCache: next-hop MAC and port (unknown: ARP request, frame dropped)
//!                               ─► encap (outer Ethernet/IPv4/UDP/VXLAN|Geneve) ─► underlay tx
//! ```
//!
//! The pieces are DPDK-free; `vswitch run` (src/dataplane/worker.rs) calls
//! them from the worker that polls the underlay.

pub mod arp;
pub mod config;
pub mod decap;
pub mod encap;
pub mod stats;

pub use arp::ArpCache;
pub use config::{TunnelConfig, TunnelKind};
pub use decap::{Endpoints, Rx};
pub use stats::{TunnelDrop, TunnelStats};

/// The outer header of a decapsulated frame, as rules match it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelMeta {
    /// VNI (24 bits).
    pub id: u32,
    /// Outer IPv4 source.
    pub src: [u8; 4],
    /// Outer IPv4 destination.
    pub dst: [u8; 4],
}
