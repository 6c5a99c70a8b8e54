//! One tracked connection: its two keys (original and reply direction,
//! the reply one translated by NAT), its protocol state, mark, label and
//! expiry. Lives in its home shard's slab (`table.rs`).

use crate::key::{proto, Key};
use crate::mem::Zeroable;
use crate::tcp::{self, Peer, Seg, Update};
use crate::timeout::Tm;

/// The connection translates the source of original-direction packets.
pub(crate) const NAT_SRC: u8 = 1;
/// The connection translates the destination of original-direction packets.
pub(crate) const NAT_DST: u8 = 2;

/// UDP and other protocols (OVS's `other_state`), and ICMP.
mod pstate {
    pub const FIRST: u8 = 0;
    pub const MULTIPLE: u8 = 1;
    pub const BIDIR: u8 = 2;
    /// ICMP: a reply was seen.
    pub const REPLY: u8 = 1;
}

/// A connection slot: two cache lines (keys, then TCP peers and the
/// rest); the label, rarely set, lives beside the slab (`ShardData`).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Conn {
    /// `keys[0]`: original direction; `keys[1]`: what reply packets carry.
    pub keys: [Key; 2],
    /// TCP peers (original side, reply side).
    pub peers: [Peer; 2],
    /// Expires at this time (ms).
    pub expires: u64,
    /// `ct_mark`.
    pub mark: u32,
    /// Index + 1 of the foreign record holding `keys[1]` in shard
    /// `foreign_shard` (0: none).
    pub foreign: u32,
    /// Shard of the foreign record.
    pub foreign_shard: u16,
    /// UDP/other/ICMP state.
    pub pstate: u8,
    /// `NAT_SRC` / `NAT_DST`.
    pub nat: u8,
    /// 1 while the slot holds a connection.
    pub alive: u8,
    /// 1 if `keys[1]` has its own index entry in the home shard.
    pub rev_local: u8,
    /// 1 if the label (kept beside the slab) is not zero.
    pub has_label: u8,
}

const _: () = assert!(std::mem::size_of::<Conn>() == 128);

// SAFETY: Conn is integers, arrays and structs of integers (Key: [u64; 5],
// Peer: u32/u16/u8); all-zero is a valid value (an empty slot).
unsafe impl Zeroable for Conn {}

/// What the tracker needs of a packet's L4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4 {
    /// TCP segment.
    Tcp(Seg),
    /// ICMP query (echo, timestamp, information; ICMPv6 echo); `new_ok`:
    /// the type may start a connection (a request).
    IcmpQuery { new_ok: bool },
    /// UDP or another protocol (no L4 state).
    Other,
}

impl Conn {
    /// Initialize a free slot for a connection `fwd`/`rev` started by a
    /// packet with `l4`, at `now`.
    pub(crate) fn init(&mut self, fwd: Key, rev: Key, l4: &L4, now: u64) {
        let tm = match l4 {
            L4::Tcp(seg) => {
                let (peers, tm) = tcp::new_conn(seg);
                self.peers = peers;
                tm
            }
            L4::IcmpQuery { .. } => Tm::IcmpFirst,
            L4::Other => Tm::OtherFirst,
        };
        self.keys = [fwd, rev];
        self.has_label = 0;
        self.mark = 0;
        self.expires = now + tm.ms();
        self.foreign = 0;
        self.foreign_shard = 0;
        self.pstate = pstate::FIRST;
        self.nat = 0;
        self.alive = 1;
        self.rev_local = 0;
    }

    /// Track one more packet of this connection (sent by the reply side if
    /// `reply`), refreshing the expiry as its new state says.
    #[inline]
    pub(crate) fn update(&mut self, l4: &L4, reply: bool, now: u64) -> Update {
        let (res, tm) = match l4 {
            L4::Tcp(seg) => tcp::update(&mut self.peers, seg, reply),
            L4::IcmpQuery { .. } => {
                if reply && self.pstate == pstate::FIRST {
                    self.pstate = pstate::REPLY;
                }
                if self.pstate == pstate::FIRST {
                    (Update::ValidNew, Some(Tm::IcmpFirst))
                } else {
                    (Update::Valid, Some(Tm::IcmpReply))
                }
            }
            L4::Other => {
                if reply {
                    self.pstate = pstate::BIDIR;
                } else if self.pstate == pstate::FIRST {
                    self.pstate = pstate::MULTIPLE;
                }
                match self.pstate {
                    pstate::BIDIR => (Update::Valid, Some(Tm::OtherBidir)),
                    _ => (Update::ValidNew, Some(Tm::OtherMultiple)),
                }
            }
        };
        if let Some(tm) = tm {
            self.expires = now + tm.ms();
        }
        res
    }

    /// The state name `vswitch ct show` prints.
    pub(crate) fn state_name(&self) -> &'static str {
        match self.keys[0].proto() {
            proto::TCP => tcp::state_name(&self.peers),
            _ if self.pstate == pstate::FIRST
                || (self.pstate == pstate::MULTIPLE && !self.keys[0].is_icmp()) =>
            {
                "NEW"
            }
            _ => "ESTABLISHED",
        }
    }
}
