//! What the datapath decided for one frame.

/// Highest port number + 1: output sets are a `u64` bitmask.
pub const MAX_PORTS: u16 = 64;

/// The controller channel (OpenFlow's `CONTROLLER` port: frames to it
/// become packet-ins). An output to it is taken whether or not a port of
/// that number is up, and floods never include it (it is never added as a
/// switch port). Without an OpenFlow controller channel, nothing polls it
/// and such outputs are counted as the port's tx drops.
pub const CONTROLLER_PORT: u16 = MAX_PORTS - 1;

/// Why a frame was dropped. The discriminant indexes counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// No rule matched (table miss).
    NoMatch = 0,
    /// The rule's actions say `drop` (or are empty).
    Action,
    /// Every output was filtered: port absent, the ingress port, or a flood
    /// with no other port.
    NoOutput,
    /// `normal`: the destination was learned on the ingress port.
    Hairpin,
    /// `dec_ttl` on a TTL/hop limit of 0 or 1.
    TtlExpired,
    /// `push_vlan`/`set_vlan_vid` found no headroom.
    NoHeadroom,
    /// Not dropped: an IP fragment the connection tracker's reassembly
    /// holds until its datagram completes (it leaves then, with the
    /// others, or is dropped when its list expires).
    FragHeld,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 7;
    /// All reasons in discriminant order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::NoMatch,
        DropReason::Action,
        DropReason::NoOutput,
        DropReason::Hairpin,
        DropReason::TtlExpired,
        DropReason::NoHeadroom,
        DropReason::FragHeld,
    ];
    /// Stable snake_case name used in stats output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoMatch => "no_match",
            DropReason::Action => "action_drop",
            DropReason::NoOutput => "no_output",
            DropReason::Hairpin => "hairpin",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::FragHeld => "frag_held",
        }
    }
}

/// The decision for one frame.
///
/// `repr(u64)`: a word-sized tag, so a verdict is two aligned words and
/// its copies in the per-frame loops are two plain moves (the default
/// layout let the compiler copy it in odd-offset pieces whose reloads
/// stalled on store forwarding: a fifth of the hit path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Verdict {
    /// Transmit the (possibly rewritten) frame on every port whose bit is
    /// set (bit N = port N). Never 0.
    Output(u64),
    /// Drop the frame.
    Drop(DropReason),
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict::Drop(DropReason::NoMatch)
    }
}

impl Verdict {
    /// The ports of an `Output` verdict, in increasing order.
    pub fn ports(&self) -> impl Iterator<Item = u16> {
        let mut m = match self {
            Verdict::Output(m) => *m,
            Verdict::Drop(_) => 0,
        };
        core::iter::from_fn(move || {
            if m == 0 {
                return None;
            }
            let p = m.trailing_zeros() as u16;
            m &= m - 1;
            Some(p)
        })
    }
}
