//! Connection tracking and NAT for the switch's `ct` action, with Open
//! vSwitch's semantics (`ovs-actions(7)`, "The ct action"; OVS's user-space
//! tracker `lib/conntrack*.c` is the reference for behaviour, not for code).
//!
//! ```text
//!  switch datapath (per burst, per frame with a ct action)
//!     frame bytes, L3 offset, CtSpec ─► packet::parse  (IPv4/IPv6, TCP/UDP/ICMP, ICMP errors' inner packet)
//!                                     ─► Conntrack::execute
//!                                          table.rs  sharded connection table (both directions indexed)
//!                                          tcp.rs    TCP state + window checks; udp/icmp timeouts
//!                                          nat.rs    SNAT/DNAT port allocation
//!                                     ─► rewrite.rs (NAT: addresses, ports, checksums incrementally)
//!     ◄─ CtMeta (ct_state, zone, mark, label, original tuple) for the recirculation
//! ```
//!
//! The crate is sans-IO: it sees frame bytes and a clock in milliseconds.
//! A [`Conntrack`] is shared by every forwarding lcore (`Sync`); it never
//! takes a global lock on the fast path and allocates nothing per packet.

pub mod checksum;
pub mod packet;
pub mod rewrite;
pub mod spec;
#[cfg(test)]
mod vectors;

pub use spec::{CtSpec, NatKind, NatRange, NatSpec};

use std::net::IpAddr;

/// `ct_state` bits, with Open vSwitch's values (`NXM_NX_CT_STATE`,
/// `ovs-fields(7)`), so flows and OpenFlow matches carry them unchanged.
pub mod state {
    /// The packet starts a new connection (or one not committed yet).
    pub const NEW: u8 = 0x01;
    /// The packet belongs to an established connection.
    pub const EST: u8 = 0x02;
    /// The packet is related to a connection (an ICMP error).
    pub const REL: u8 = 0x04;
    /// The packet goes in the reply direction.
    pub const RPL: u8 = 0x08;
    /// The packet is invalid (unparsable, out of window, bad flags).
    pub const INV: u8 = 0x10;
    /// The packet went through the tracker.
    pub const TRK: u8 = 0x20;
    /// The packet's source was translated.
    pub const SNAT: u8 = 0x40;
    /// The packet's destination was translated.
    pub const DNAT: u8 = 0x80;
}

/// A connection tuple as a packet carries it (the original direction's is
/// `ct_nw_src`, `ct_nw_dst`, `ct_nw_proto`, `ct_tp_src`, `ct_tp_dst`).
///
/// ICMP/ICMPv6 queries (echo, timestamp, information) follow OVS's
/// connection key (`lib/conntrack.c`, `extract_l4_icmp`): a query is keyed
/// by its identifier *and* its type, the reply direction holding the reply
/// type. Here `src_port` is the identifier (in both directions: NAT
/// rewrites it as a port) and `dst_port` is `type << 8 | code`;
/// [`Tuple::reverse`] keeps the identifier and turns a request type into
/// its reply type and back. So an echo request A→B id 7 is
/// `(A, B, 7, 8 << 8)`, its reply `(B, A, 7, 0)`. OVS's `ct_tp_src` and
/// `ct_tp_dst` of an ICMP connection are its type and code:
/// [`Tuple::ct_tp_src`], [`Tuple::ct_tp_dst`]. Other protocols than
/// TCP/UDP/ICMP have zero ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (ICMP: see the type docs).
    pub src_port: u16,
    /// Destination port (ICMP: see the type docs).
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl Tuple {
    /// The reply direction's tuple: addresses and ports swapped; for an
    /// ICMP/ICMPv6 query the identifier kept and the type turned into its
    /// reply (OVS `reverse_icmp_type`, `reverse_icmp6_type`).
    pub fn reverse(&self) -> Tuple {
        if self.is_icmp() {
            let (ty, code) = ((self.dst_port >> 8) as u8, self.dst_port as u8);
            return Tuple {
                src: self.dst,
                dst: self.src,
                src_port: self.src_port,
                dst_port: Tuple::icmp_type_code(reverse_icmp_type(ty), code),
                proto: self.proto,
            };
        }
        Tuple {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }

    /// True for ICMP over IPv4 or ICMPv6 over IPv6.
    pub fn is_icmp(&self) -> bool {
        matches!(
            (self.proto, self.src),
            (packet::proto::ICMP, IpAddr::V4(_)) | (packet::proto::ICMPV6, IpAddr::V6(_))
        )
    }

    /// The `dst_port` of an ICMP query tuple: `type << 8 | code`.
    pub fn icmp_type_code(icmp_type: u8, code: u8) -> u16 {
        u16::from(icmp_type) << 8 | u16::from(code)
    }

    /// OVS's `ct_tp_src` of a connection with this original tuple: the
    /// source port, or for ICMP the type.
    pub fn ct_tp_src(&self) -> u16 {
        if self.is_icmp() {
            self.dst_port >> 8
        } else {
            self.src_port
        }
    }

    /// OVS's `ct_tp_dst`: the destination port, or for ICMP the code.
    pub fn ct_tp_dst(&self) -> u16 {
        if self.is_icmp() {
            self.dst_port & 0xff
        } else {
            self.dst_port
        }
    }
}

/// The reply type of an ICMP/ICMPv6 query type (other types unchanged).
fn reverse_icmp_type(ty: u8) -> u8 {
    use packet::icmp;
    match ty {
        icmp::ECHO_REQUEST => icmp::ECHO_REPLY,
        icmp::ECHO_REPLY => icmp::ECHO_REQUEST,
        icmp::TIMESTAMP => icmp::TIMESTAMP_REPLY,
        icmp::TIMESTAMP_REPLY => icmp::TIMESTAMP,
        icmp::INFO_REQUEST => icmp::INFO_REPLY,
        icmp::INFO_REPLY => icmp::INFO_REQUEST,
        icmp::V6_ECHO_REQUEST => icmp::V6_ECHO_REPLY,
        icmp::V6_ECHO_REPLY => icmp::V6_ECHO_REQUEST,
        other => other,
    }
}

/// The conntrack fields a frame carries after a `ct` action, matched by
/// later tables (`ct_state`, `ct_zone`, `ct_mark`, `ct_label`, and the
/// original tuple). `Default` is the untracked frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtMeta {
    /// [`state`] bits; 0 = untracked.
    pub state: u8,
    /// The zone the frame was tracked in.
    pub zone: u16,
    /// The connection's mark.
    pub mark: u32,
    /// The connection's label.
    pub label: u128,
    /// The connection's original-direction tuple (None: no connection).
    pub orig: Option<Tuple>,
}

/// Tracker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections the table holds in all (preallocated).
    pub max_conns: u32,
    /// Connections a zone may hold unless `set_zone_limit` says otherwise
    /// (0: only `max_conns` limits).
    pub default_zone_limit: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_conns: 1 << 20,
            default_zone_limit: 0,
        }
    }
}

/// One connection as `vswitch ct show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Zone.
    pub zone: u16,
    /// Original direction.
    pub orig: Tuple,
    /// Reply direction (after NAT: the translated tuple, reversed).
    pub reply: Tuple,
    /// Protocol state name (TCP: "ESTABLISHED", "SYN_SENT", ...; others
    /// "NEW"/"ESTABLISHED" as `conntrack -L`).
    pub state: &'static str,
    /// Mark.
    pub mark: u32,
    /// Label.
    pub label: u128,
    /// Milliseconds until it expires.
    pub expires_in_ms: u64,
}

/// Tracker counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections in the table.
    pub entries: u64,
    /// Connections committed since start.
    pub committed: u64,
    /// Packets marked invalid.
    pub invalid: u64,
    /// Commits refused by a zone limit or a full table.
    pub limit_drops: u64,
    /// Connections expired.
    pub expired: u64,
}

/// The connection tracker, shared by every forwarding lcore.
///
/// Placeholder until the table lands: every packet is tracked as invalid
/// (`+trk+inv`), nothing is committed.
pub struct Conntrack {
    cfg: Config,
}

impl Conntrack {
    /// A tracker with room for `cfg.max_conns` connections.
    pub fn new(cfg: Config) -> Conntrack {
        Conntrack { cfg }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Run one `ct` action on `frame` (its IP header at `l3`): look up the
    /// connection, track its state, commit/NAT as `spec` says (rewriting
    /// the frame in place), and set `meta` to what the recirculated frame
    /// matches on. `meta` holds the frame's ct fields so far (a second `ct`
    /// in another zone, or `ct_clear`'s zeros).
    pub fn execute(
        &self,
        frame: &mut [u8],
        l3: usize,
        spec: &CtSpec,
        meta: &mut CtMeta,
        now_ms: u64,
    ) {
        let _ = (frame, l3, now_ms);
        *meta = CtMeta {
            state: state::TRK | state::INV,
            zone: spec.zone,
            ..CtMeta::default()
        };
    }

    /// Expire up to `budget` idle connections; returns how many. Called by
    /// the control thread, never from a forwarding lcore's burst.
    pub fn sweep(&self, now_ms: u64, budget: usize) -> usize {
        let _ = (now_ms, budget);
        0
    }

    /// Connections, of one zone or all.
    pub fn dump(&self, zone: Option<u16>, now_ms: u64) -> Vec<ConnInfo> {
        let _ = (zone, now_ms);
        Vec::new()
    }

    /// Remove connections, of one zone or all; returns how many.
    pub fn flush(&self, zone: Option<u16>) -> usize {
        let _ = zone;
        0
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats::default()
    }

    /// Limit a zone's connections (None: back to the default).
    pub fn set_zone_limit(&self, zone: u16, limit: Option<u32>) {
        let _ = (zone, limit);
    }
}
