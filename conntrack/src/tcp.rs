//! TCP state tracking with sequence-window checks.
//!
//! The algorithm is Guido van Rooij's "Real Stateful TCP Packet Filtering
//! in IP Filter" as pf, OVS's user-space tracker (`lib/conntrack-tcp.c`)
//! and, in spirit, Linux's `nf_conntrack_proto_tcp.c` apply it: each peer
//! remembers the highest sequence number it sent (`seqlo`), the highest the
//! other side allowed it to send (`seqhi` = their ACK + window) and its
//! largest window; a segment is accepted when
//!
//! ```text
//!  end  <= src.seqhi                          (I)   inside the receiver's window
//!  seq  >= src.seqlo - dst.max_win << dws     (II)  not more than one window back
//!  -MAXACKWINDOW <= dst.seqlo - ack <= MAXACKWINDOW << sws   (III, IV) ACK plausible
//!  RST: seq within one of src.seqlo            (exact match on resets, RFC 5961 §3)
//! ```
//!
//! Everything else is out of window (`+inv`), except the loose cases pf
//! allows while a side is not yet synchronized or already closed. Window
//! scaling follows RFC 7323 §2 (the factor counts only when both SYNs
//! carried the option; SYN windows are never scaled).

use crate::timeout::Tm;

/// TCP header flags (RFC 9293 §3.1).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
}
use flags::*;

/// A peer's state, with the values of OVS's `ct_dpif_tcp_state` (and
/// Linux's `TCP_CONNTRACK_*` order for the ones used).
pub(crate) mod st {
    pub const CLOSED: u8 = 0;
    pub const SYN_SENT: u8 = 2;
    pub const ESTABLISHED: u8 = 4;
    pub const CLOSING: u8 = 7;
    pub const FIN_WAIT_2: u8 = 9;
    pub const TIME_WAIT: u8 = 10;
}

/// RFC 7323 §2.3: the shift count is at most 14.
const MAX_WSCALE: u8 = 14;
/// The peer announced window scaling (in `Peer::wscale`).
const WS_FLAG: u8 = 0x80;
/// Picked up mid-stream: the scale is unknown, be liberal.
const WS_UNKNOWN: u8 = 0x40;
const WS_MASK: u8 = 0x0f;
/// pf's ACK window slack: one maximum window plus a fudge factor.
const MAX_ACK_WINDOW: i64 = 0xffff + 1500;

/// The fields of one TCP segment the tracker reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seg {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Window (unscaled, as on the wire).
    pub win: u16,
    /// [`flags`].
    pub flags: u8,
    /// The window-scale option's shift count (RFC 7323 §2.2), if present.
    pub wscale: Option<u8>,
    /// Payload bytes.
    pub payload_len: u32,
}

/// One side of a TCP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Highest sequence number sent (+1).
    pub seqlo: u32,
    /// Highest sequence number the other side allows (its ack + window).
    pub seqhi: u32,
    /// Largest window seen (unscaled).
    pub max_win: u16,
    /// `WS_FLAG | shift`, `WS_UNKNOWN`, or 0.
    pub wscale: u8,
    /// [`st`] value.
    pub state: u8,
}

/// What a segment does to its connection (OVS's `ct_update_res`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// Accepted: `+est`.
    Valid,
    /// Accepted while the connection is still opening: `+new`.
    ValidNew,
    /// Rejected: `+inv`.
    Invalid,
    /// A SYN on a closed connection: end it, start a new one.
    Reopen,
}

#[inline]
fn seq_geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

#[inline]
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[inline]
fn wscale_opt(seg: &Seg) -> u8 {
    match seg.wscale {
        Some(s) => WS_FLAG | s.min(MAX_WSCALE),
        None => 0,
    }
}

/// Flag combinations no TCP sends (pf's `pf_normalize_tcp` rules, as OVS
/// applies them): SYN with RST or FIN; neither ACK nor RST nor SYN; FIN,
/// PSH or URG without ACK.
#[inline]
pub(crate) fn invalid_flags(f: u8) -> bool {
    if f & SYN != 0 {
        if f & (RST | FIN) != 0 {
            return true;
        }
    } else if f & (ACK | RST) == 0 {
        return true;
    }
    f & ACK == 0 && f & (FIN | PSH | URG) != 0
}

/// Whether a segment may create a connection: sane flags and not a
/// SYN+ACK (a half-open connection is not picked up; a mid-stream ACK is).
#[inline]
pub(crate) fn valid_new(seg: &Seg) -> bool {
    !invalid_flags(seg.flags) && (seg.flags & (SYN | ACK)) != (SYN | ACK)
}

/// The peers of a connection created by `seg`, and its first timeout.
pub(crate) fn new_conn(seg: &Seg) -> ([Peer; 2], Tm) {
    let mut src = Peer {
        seqlo: seg.seq,
        ..Peer::default()
    };
    let mut dst = Peer::default();
    src.seqhi = seg.seq.wrapping_add(seg.payload_len).wrapping_add(1);
    if seg.flags & SYN != 0 {
        src.seqhi = src.seqhi.wrapping_add(1);
        src.wscale = wscale_opt(seg);
    } else {
        // Picked up mid-stream: the window scale was in SYNs we missed.
        src.wscale = WS_UNKNOWN;
        dst.wscale = WS_UNKNOWN;
    }
    src.max_win = seg.win.max(1);
    if src.wscale & WS_MASK != 0 {
        // RFC 7323 §2.2: the SYN's window is never scaled; store it as
        // if it were, as later windows are.
        let s = src.wscale & WS_MASK;
        src.max_win = (src.max_win as u32).div_ceil(1 << s) as u16;
    }
    if seg.flags & FIN != 0 {
        src.seqhi = src.seqhi.wrapping_add(1);
    }
    dst.seqhi = 1;
    dst.max_win = 1;
    src.state = st::SYN_SENT;
    dst.state = st::CLOSED;
    ([src, dst], Tm::TcpFirstPacket)
}

/// Track `seg`, sent by the reply side if `reply`. Returns the verdict and
/// the timeout to arm (None: keep the current expiry).
pub(crate) fn update(peers: &mut [Peer; 2], seg: &Seg, reply: bool) -> (Update, Option<Tm>) {
    let f = seg.flags;
    if invalid_flags(f) {
        return (Update::Invalid, None);
    }
    let si = usize::from(reply);
    let [p0, p1] = peers;
    let (src, dst) = if si == 0 { (p0, p1) } else { (p1, p0) };

    if f & (SYN | ACK) == SYN {
        if dst.state >= st::FIN_WAIT_2 && src.state >= st::FIN_WAIT_2 {
            // A new SYN on a finished connection: a new connection.
            src.state = st::CLOSED;
            dst.state = st::CLOSED;
            return (Update::Reopen, None);
        } else if src.state <= st::SYN_SENT {
            // Retransmitted (or first) SYN of the opening side.
            src.state = st::SYN_SENT;
            return (Update::ValidNew, Some(Tm::TcpFirstPacket));
        }
    }

    let (mut sws, mut dws) = if f & SYN == 0 {
        window_scales(src, dst)
    } else {
        (0, 0)
    };

    let mut win = seg.win as u32;
    let orig_seq = seg.seq;
    let mut seq = seg.seq;
    let mut ack = seg.ack;
    let mut end = seq.wrapping_add(seg.payload_len);
    if f & SYN != 0 {
        end = end.wrapping_add(1);
    }
    if f & FIN != 0 {
        end = end.wrapping_add(1);
    }
    let mut check_ackskew = true;

    if src.state < st::SYN_SENT {
        // First segment from this side (the SYN+ACK of the responder).
        if f & SYN != 0 && dst.wscale & WS_FLAG != 0 {
            src.wscale = wscale_opt(seg);
            if src.wscale & WS_FLAG != 0 {
                sws = src.wscale & WS_MASK;
                win = win.div_ceil(1 << sws);
                dws = dst.wscale & WS_MASK;
            } else {
                // The other side offered scaling, this one did not
                // (RFC 7323 §2.2: then neither scales): undo it.
                dst.max_win = ((dst.max_win as u32) << (dst.wscale & WS_MASK)) as u16;
                dst.wscale = 0;
            }
        }
        src.seqlo = seq;
        src.state = st::SYN_SENT;
        let reach = end.wrapping_add(((dst.max_win as u32) << dws).max(1));
        if src.seqhi == 1 || seq_geq(reach, src.seqhi) {
            src.seqhi = reach;
            // Picking the connection up: no ACK-skew check this time.
            check_ackskew = false;
        }
        if win > src.max_win as u32 {
            src.max_win = win.min(0xffff) as u16;
        }
    }

    if f & ACK == 0 {
        // No ACK field: let it pass the ACK-skew check.
        ack = dst.seqlo;
    } else if ack == 0 && f & (ACK | RST) == (ACK | RST) {
        // Stacks that send RST|ACK with a zero ACK.
        ack = dst.seqlo;
    }

    if seq == end {
        // No data: relax sequencing.
        seq = src.seqlo;
        end = seq;
    }

    let ackskew: i64 = if check_ackskew {
        dst.seqlo.wrapping_sub(ack) as i32 as i64
    } else {
        0
    };
    let back = src.seqlo.wrapping_sub((dst.max_win as u32) << dws);
    let in_window = seq_geq(src.seqhi, end)
        && seq_geq(seq, back)
        && ackskew >= -MAX_ACK_WINDOW
        && ackskew <= (MAX_ACK_WINDOW << sws)
        && (f & RST == 0
            || orig_seq == src.seqlo
            || orig_seq == src.seqlo.wrapping_add(1)
            || orig_seq.wrapping_add(1) == src.seqlo);

    let slide = |src: &mut Peer, dst: &mut Peer, end: u32| {
        if (src.max_win as u32) < win {
            src.max_win = win.min(0xffff) as u16;
        }
        if seq_gt(end, src.seqlo) {
            src.seqlo = end;
        }
        let scaled = win << sws;
        if seq_geq(ack.wrapping_add(scaled), dst.seqhi) {
            dst.seqhi = ack.wrapping_add(scaled.max(1));
        }
    };

    if in_window {
        slide(src, dst, end);
        if f & FIN != 0 && src.state < st::CLOSING {
            src.state = st::CLOSING;
        }
        if f & ACK != 0 {
            if dst.state == st::SYN_SENT {
                dst.state = st::ESTABLISHED;
            } else if dst.state == st::CLOSING {
                dst.state = st::FIN_WAIT_2;
            }
        }
        if f & RST != 0 {
            src.state = st::TIME_WAIT;
            dst.state = st::TIME_WAIT;
        }
        (Update::Valid, Some(state_timeout(src, dst)))
    } else if (dst.state < st::SYN_SENT
        || dst.state >= st::FIN_WAIT_2
        || src.state >= st::FIN_WAIT_2)
        && seq_geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW as u32), end)
        && seq_geq(seq, src.seqlo.wrapping_sub(MAX_ACK_WINDOW as u32))
    {
        // pf's loose acceptance: shotgunned SYNs before the peer answers,
        // a connection picked up after a flush, stray segments right after
        // a close. The timeout is not refreshed (a flood must not keep the
        // entry alive).
        slide(src, dst, end);
        if f & FIN != 0 && src.state < st::CLOSING {
            src.state = st::CLOSING;
        }
        if f & RST != 0 {
            src.state = st::TIME_WAIT;
            dst.state = st::TIME_WAIT;
        }
        (Update::Valid, None)
    } else {
        (Update::Invalid, None)
    }
}

/// The shifts of both sides' windows outside a SYN: the negotiated scales
/// when both sent the option (RFC 7323 §2.2), the largest when both are
/// unknown (a connection picked up mid-stream), else none.
#[inline]
fn window_scales(src: &Peer, dst: &Peer) -> (u8, u8) {
    if src.wscale & WS_FLAG != 0 && dst.wscale & WS_FLAG != 0 {
        (src.wscale & WS_MASK, dst.wscale & WS_MASK)
    } else if src.wscale & WS_UNKNOWN != 0 && dst.wscale & WS_UNKNOWN != 0 {
        (MAX_WSCALE, MAX_WSCALE)
    } else {
        (0, 0)
    }
}

/// The timeout a valid segment arms, from both sides' states after it.
#[inline]
fn state_timeout(src: &Peer, dst: &Peer) -> Tm {
    if src.state >= st::FIN_WAIT_2 && dst.state >= st::FIN_WAIT_2 {
        Tm::TcpClosed
    } else if src.state >= st::CLOSING && dst.state >= st::CLOSING {
        Tm::TcpFinWait
    } else if src.state < st::ESTABLISHED || dst.state < st::ESTABLISHED {
        Tm::TcpOpening
    } else if src.state >= st::CLOSING || dst.state >= st::CLOSING {
        Tm::TcpClosing
    } else {
        Tm::TcpEstablished
    }
}

/// `conntrack -L`-style name of a connection's state.
pub(crate) fn state_name(peers: &[Peer; 2]) -> &'static str {
    let (o, r) = (peers[0].state, peers[1].state);
    if o == st::TIME_WAIT || r == st::TIME_WAIT || (o >= st::FIN_WAIT_2 && r >= st::FIN_WAIT_2) {
        "TIME_WAIT"
    } else if o >= st::CLOSING && r >= st::CLOSING {
        "LAST_ACK"
    } else if o >= st::CLOSING {
        "FIN_WAIT"
    } else if r >= st::CLOSING {
        "CLOSE_WAIT"
    } else if o == st::ESTABLISHED && r == st::ESTABLISHED {
        "ESTABLISHED"
    } else if r >= st::SYN_SENT {
        "SYN_RECV"
    } else {
        "SYN_SENT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, ack: u32, flags: u8, len: u32) -> Seg {
        Seg {
            seq,
            ack,
            win: 1000,
            flags,
            wscale: None,
            payload_len: len,
        }
    }

    #[test]
    fn test_invalid_flag_combinations() {
        for f in [
            SYN | FIN,
            SYN | RST,
            0,
            FIN,
            PSH,
            URG,
            FIN | PSH,
            SYN | RST | ACK,
            SYN | FIN | ACK,
        ] {
            assert!(invalid_flags(f), "flags {f:#x}");
        }
        for f in [SYN, SYN | ACK, ACK, RST, RST | ACK, FIN | ACK, PSH | ACK] {
            assert!(!invalid_flags(f), "flags {f:#x}");
        }
    }

    #[test]
    fn test_handshake_data_teardown() {
        let (mut p, tm) = new_conn(&seg(100, 0, SYN, 0));
        assert_eq!(tm, Tm::TcpFirstPacket);
        assert_eq!(
            update(&mut p, &seg(100, 0, SYN, 0), false).0,
            Update::ValidNew
        );
        assert_eq!(
            update(&mut p, &seg(500, 101, SYN | ACK, 0), true),
            (Update::Valid, Some(Tm::TcpOpening))
        );
        assert_eq!(
            update(&mut p, &seg(101, 501, ACK, 0), false),
            (Update::Valid, Some(Tm::TcpEstablished))
        );
        assert_eq!(state_name(&p), "ESTABLISHED");
        assert_eq!(
            update(&mut p, &seg(101, 501, ACK | PSH, 10), false).0,
            Update::Valid
        );
        // Far out of the receiver's window.
        assert_eq!(
            update(&mut p, &seg(101 + 5_000_000, 501, ACK, 10), false).0,
            Update::Invalid
        );
        // A RST with a far-off sequence number.
        assert_eq!(
            update(&mut p, &seg(9_000, 111, RST | ACK, 0), true).0,
            Update::Invalid
        );
        assert_eq!(
            update(&mut p, &seg(111, 501, FIN | ACK, 0), false),
            (Update::Valid, Some(Tm::TcpClosing))
        );
        assert_eq!(
            update(&mut p, &seg(501, 112, FIN | ACK, 0), true).0,
            Update::Valid
        );
        assert_eq!(
            update(&mut p, &seg(112, 502, ACK, 0), false),
            (Update::Valid, Some(Tm::TcpClosed))
        );
        assert_eq!(state_name(&p), "TIME_WAIT");
        // A new SYN reopens it.
        assert_eq!(
            update(&mut p, &seg(7000, 0, SYN, 0), false).0,
            Update::Reopen
        );
    }
}
