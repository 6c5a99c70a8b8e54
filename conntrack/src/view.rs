//! The seam between the tracker and the frame code: what the tracker reads
//! from a frame (`packet::parse`) and how it applies a translation
//! (`rewrite::rewrite`).

use crate::conn::L4;
use crate::key::Key;
use crate::packet::{self, L4Kind, Parsed};
use crate::rewrite;
use crate::tcp::Seg;
use crate::Tuple;

/// The packet as the tracker sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkt {
    /// What `packet::parse` read (the tuple: this direction's; for ICMP
    /// errors the quoted packet's, reversed).
    pub p: Parsed,
    /// Protocol fields for the state machine.
    pub l4: L4,
    /// An ICMP error about a connection's packet.
    pub related: bool,
    /// An IP fragment.
    pub frag: bool,
}

impl L4 {
    /// Whether a packet may start a connection (OVS's `valid_new`).
    #[inline]
    pub(crate) fn valid_new(&self) -> bool {
        match self {
            L4::Tcp(seg) => crate::tcp::valid_new(seg),
            L4::IcmpQuery { new_ok } => *new_ok,
            L4::Other => true,
        }
    }
}

impl Pkt {
    /// The packet's key in `zone`.
    #[inline]
    pub(crate) fn key(&self, zone: u16) -> Key {
        Key::from_tuple(&self.p.tuple, zone)
    }
}

/// Read the packet whose IP header is at `l3`. None: not something the
/// tracker can track (`+inv`).
#[inline]
pub(crate) fn parse(f: &[u8], l3: usize) -> Option<Pkt> {
    let p = packet::parse(f, l3).ok()?;
    let (l4, related) = match p.kind {
        L4Kind::Tcp(t) => (
            L4::Tcp(Seg {
                seq: t.seq,
                ack: t.ack,
                win: t.window,
                flags: t.flags as u8,
                wscale: t.wscale,
                payload_len: t.payload_len as u32,
            }),
            false,
        ),
        L4Kind::IcmpEcho(q) => (
            L4::IcmpQuery {
                new_ok: q.is_request(),
            },
            false,
        ),
        L4Kind::IcmpError(_) => (L4::Other, true),
        L4Kind::Udp | L4Kind::Other => (L4::Other, false),
    };
    Some(Pkt {
        p,
        l4,
        related,
        frag: p.is_fragment(),
    })
}

/// Make the frame leave with `target` (its own direction's tuple); ICMP
/// errors: the outer address that changes and the quoted packet (as
/// `target` reversed).
#[inline]
pub(crate) fn nat(f: &mut [u8], pkt: &Pkt, target: &Key) {
    let to: Tuple = target.tuple();
    // The tuple comes from the same frame's parse and a key of the same
    // family and protocol: rewriting cannot fail on a frame parse accepted.
    let _ = rewrite::rewrite(f, &pkt.p, &to);
}
