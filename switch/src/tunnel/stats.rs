//! Per-tunnel-port counters, shown by `vswitch ports show`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a tunnel packet was dropped. The discriminant indexes counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TunnelDrop {
    /// Outer IPv4/UDP or tunnel header cut short (or lengths that claim
    /// more than the frame holds).
    Truncated = 0,
    /// Bad tunnel header: VXLAN I flag clear; Geneve version ≠ 0, OAM,
    /// critical options, non-Ethernet payload, bad option TLV; outer IPv4
    /// checksum wrong or a fragment.
    BadHeader,
    /// The VNI is not the port's fixed `key`.
    BadVni,
    /// Addressed to the local IP, but to a UDP port no tunnel listens on.
    BadPort,
    /// From a source that is not the port's fixed `remote_ip`.
    UnknownRemote,
    /// Transmit: the next hop's MAC is not resolved yet (an ARP request
    /// goes out at most once per [`super::arp::REQUEST_INTERVAL_MS`]).
    NoArp,
    /// Transmit: `remote_ip=flow` and no `set_field:..->tun_dst`.
    NoRemote,
    /// Transmit: no headroom for the outer headers, or no underlay queue.
    TxError,
}

impl TunnelDrop {
    /// Number of reasons.
    pub const COUNT: usize = 8;
    /// Every reason, in discriminant order.
    pub const ALL: [TunnelDrop; Self::COUNT] = [
        TunnelDrop::Truncated,
        TunnelDrop::BadHeader,
        TunnelDrop::BadVni,
        TunnelDrop::BadPort,
        TunnelDrop::UnknownRemote,
        TunnelDrop::NoArp,
        TunnelDrop::NoRemote,
        TunnelDrop::TxError,
    ];
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            TunnelDrop::Truncated => "truncated",
            TunnelDrop::BadHeader => "bad_header",
            TunnelDrop::BadVni => "bad_vni",
            TunnelDrop::BadPort => "bad_port",
            TunnelDrop::UnknownRemote => "unknown_remote",
            TunnelDrop::NoArp => "no_arp",
            TunnelDrop::NoRemote => "no_remote",
            TunnelDrop::TxError => "tx_error",
        }
    }
}

/// Counters of one tunnel port (shared by the workers; added once per
/// burst, or per dropped packet).
#[derive(Debug, Default)]
pub struct TunnelStats {
    /// Packets decapsulated.
    pub rx_packets: AtomicU64,
    /// Inner bytes decapsulated.
    pub rx_bytes: AtomicU64,
    /// Packets encapsulated and handed to the underlay.
    pub tx_packets: AtomicU64,
    /// Inner bytes encapsulated.
    pub tx_bytes: AtomicU64,
    drops: [AtomicU64; TunnelDrop::COUNT],
}

impl TunnelStats {
    /// Count `n` drops for `why`.
    #[inline]
    pub fn count_drop(&self, why: TunnelDrop, n: u64) {
        self.drops[why as usize].fetch_add(n, Ordering::Relaxed);
    }
    /// Drops for `why`.
    pub fn drops(&self, why: TunnelDrop) -> u64 {
        self.drops[why as usize].load(Ordering::Relaxed)
    }
    /// Receive-side drops (malformed or not for this port).
    pub fn rx_dropped(&self) -> u64 {
        TunnelDrop::ALL[..5].iter().map(|&d| self.drops(d)).sum()
    }
    /// Transmit-side drops.
    pub fn tx_dropped(&self) -> u64 {
        TunnelDrop::ALL[5..].iter().map(|&d| self.drops(d)).sum()
    }
    /// `(name, count)` of every drop reason.
    pub fn drop_counts(&self) -> Vec<(&'static str, u64)> {
        TunnelDrop::ALL
            .iter()
            .map(|&d| (d.name(), self.drops(d)))
            .collect()
    }
    /// Add to a counter.
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
