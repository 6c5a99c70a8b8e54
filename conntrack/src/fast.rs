//! The established-connection fast path, and the burst interface behind
//! it: look at every frame of a burst first (parse, key, hash, prefetch),
//! then track them one by one.
//!
//! ```text
//!  datapath, per burst            prepare(frame)  quick parse (IPv4/IPv6 without extension headers,
//!                                                  TCP without SYN, UDP; no fragment) → key, hash;
//!                                                  prefetch the shard's lock and the index bucket
//!                                 prefetch(p)     read the bucket (no lock), prefetch the connection
//!  per frame, at its `ct`         execute_prepared(frame, p, spec)
//!                                   lock ─ find ─ found here, not expired, nothing to translate,
//!                                   no `force` on a reply? ─► TCP/UDP update, CtMeta (as `execute`)
//!                                   anything else ─► unlock, `Conntrack::execute` (the general path)
//! ```
//!
//! Why: an established frame through the general path parsed into the
//! public `Parsed` (tuples of `IpAddr`s, the ICMP-error cases), built
//! its key from that, and met three dependent cache misses in a row
//! (index bucket, the connection's key line, its state line) that no
//! other frame's work overlapped. Parsing straight into the key words and
//! issuing the misses of the whole burst before the first lookup halves
//! the tracker's cycles (see perf/README.md, "conntrack").
//!
//! Exactness: the fast path takes only frames the general path would
//! handle in the same way: a TCP segment without SYN (so never a reopen,
//! never the window-scale option), or a UDP datagram, parsed by the same
//! rules as `packet::parse` (anything it would refuse or treat specially
//! goes to the general path, which decides); the connection must be found
//! in its home shard, unexpired, with no translation to apply (no `nat`
//! in the action, or an untranslated connection) and the frame not
//! already translated in this zone. Every decision to leave is taken
//! before anything is changed, so the general path starts from the same
//! state. The update, the counters and the `CtMeta` are the general
//! path's own code (`Conn::update`, the same state arithmetic).

use std::sync::atomic::Ordering;

use crate::conn::L4;
use crate::key::{proto, Key};
use crate::rewrite;
use crate::table::{shard_of, Found};
use crate::tcp::{flags as tf, Seg, Update};
use crate::{state, Conntrack, CtMeta, CtSpec};

/// Frames the fast path took, and translated (tests check it is taken).
#[cfg(test)]
pub(crate) static FAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(test)]
pub(crate) static FAST_NAT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A frame looked at before its turn ([`Conntrack::prepare`]): its key
/// and hash when it may take the fast path.
///
/// Whole words only: the burst writes these a frame apart from reading
/// them, and byte-sized stores read back as wider loads stall (store
/// forwarding fails), which an enum of the segment's fields did.
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    /// The key (with the zone the frame was prepared for).
    key: Key,
    hash: u64,
    /// TCP: `seq | ack << 32`.
    seq_ack: u64,
    /// `payload_len | win << 32 | flags << 48 | kind << 56` (TCP: win,
    /// flags, payload length).
    info: u64,
    /// Offsets of the L4 header and of the packet's end in the frame:
    /// `l4_at | end << 32`.
    at: u64,
}

/// `Prepared::info` kinds.
const SLOW: u64 = 0;
const TCP: u64 = 1;
const UDP: u64 = 2;

impl Default for Prepared {
    /// A frame for the general path.
    fn default() -> Prepared {
        Prepared::SLOW
    }
}

impl Prepared {
    /// A frame for the general path.
    pub const SLOW: Prepared = Prepared {
        key: Key::ZERO,
        hash: 0,
        seq_ack: 0,
        info: SLOW << 56,
        at: 0,
    };

    /// Whether the frame may take the fast path.
    #[inline]
    pub fn is_fast(&self) -> bool {
        self.info >> 56 != SLOW
    }

    /// What the tracker reads of the frame's L4 header.
    #[inline(always)]
    fn l4(&self) -> L4 {
        if self.info >> 56 == TCP {
            L4::Tcp(Seg {
                seq: self.seq_ack as u32,
                ack: (self.seq_ack >> 32) as u32,
                win: (self.info >> 32) as u16,
                flags: (self.info >> 48) as u8,
                wscale: None,
                payload_len: self.info as u32,
            })
        } else {
            L4::Other
        }
    }
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The key (zone 0 left to the caller) and L4 fields of a frame the fast
/// path may take; None for every other frame. The checks are
/// `packet::parse`'s (RFC 791 §3.1 IHL and total length, RFC 8200 §3
/// payload length, RFC 9293 §3.1 data offset, RFC 768 length, port 0
/// refused); what they would refuse, fragments, IPv6 extension headers,
/// TCP SYNs and other protocols are the general path's.
#[inline(always)]
fn quick(frame: &[u8], l3: usize, zone: u16) -> Option<Prepared> {
    let ip = frame.get(l3..)?;
    let (src, dst, pr, l4, v6): (u128, u128, u8, &[u8], bool) = match *ip.first()? >> 4 {
        4 => {
            if ip.len() < 20 {
                return None;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(ip, 2));
            // Fragment offset or more-fragments set (DF is not looked at).
            if ihl < 20 || total < ihl || total > ip.len() || be16(ip, 6) & 0x3fff != 0 {
                return None;
            }
            (
                u128::from(be32(ip, 12)),
                u128::from(be32(ip, 16)),
                ip[9],
                &ip[ihl..total],
                false,
            )
        }
        6 => {
            if ip.len() < 40 {
                return None;
            }
            let end = 40 + usize::from(be16(ip, 4));
            if end > ip.len() {
                return None;
            }
            let a = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&ip[at..at + 16]);
                u128::from_be_bytes(o)
            };
            (a(8), a(24), ip[6], &ip[40..end], true)
        }
        _ => return None,
    };
    let (sport, dport, seq_ack, info) = match pr {
        proto::TCP => {
            if l4.len() < 20 {
                return None;
            }
            let off_flags = be16(l4, 12);
            let hl = usize::from(off_flags >> 12) * 4;
            let flags = off_flags & 0x1ff;
            if hl < 20 || hl > l4.len() || flags & u16::from(tf::SYN) != 0 {
                return None;
            }
            let seq_ack = u64::from(be32(l4, 4)) | u64::from(be32(l4, 8)) << 32;
            let info = (l4.len() - hl) as u64
                | u64::from(be16(l4, 14)) << 32
                | u64::from(flags as u8) << 48
                | TCP << 56;
            (be16(l4, 0), be16(l4, 2), seq_ack, info)
        }
        proto::UDP => {
            if l4.len() < 8 {
                return None;
            }
            let len = usize::from(be16(l4, 4));
            if !(8..=l4.len()).contains(&len) {
                return None;
            }
            (be16(l4, 0), be16(l4, 2), 0, UDP << 56)
        }
        _ => return None,
    };
    if sport == 0 || dport == 0 {
        return None;
    }
    let key = if v6 {
        Key::v6(src, dst, sport, dport, pr, zone)
    } else {
        Key::v4(src as u32, dst as u32, sport, dport, pr, zone)
    };
    // `l4` is a subslice of `frame`: its offsets.
    let l4_at = (l4.as_ptr() as usize - frame.as_ptr() as usize) as u64;
    Some(Prepared {
        key,
        hash: 0,
        seq_ack,
        info,
        at: l4_at | (l4_at + l4.len() as u64) << 32,
    })
}

impl Conntrack {
    /// Look at a frame (its IP header at `l3`) that will meet a `ct` in
    /// `zone` with these bytes: parse, key and hash it, and start loading
    /// its index bucket. Cheap for frames the fast path does not take.
    #[inline]
    pub fn prepare(&self, frame: &[u8], l3: usize, zone: u16) -> Prepared {
        if self.verify_checksums.load(Ordering::Relaxed) {
            return Prepared::SLOW;
        }
        let Some(mut p) = quick(frame, l3, zone) else {
            return Prepared::SLOW;
        };
        p.hash = self.table.hash(&p.key);
        self.table.prefetch_bucket(p.hash);
        p
    }

    /// Second step of a burst, once every frame's bucket was asked for:
    /// start loading the connection each probably belongs to.
    #[inline]
    pub fn prefetch(&self, p: &Prepared) {
        if p.is_fast() {
            self.table.prefetch(p.hash);
        }
    }

    /// [`Conntrack::execute`] for a frame `prepare`d with the same bytes:
    /// the same result, faster for established connections (see the
    /// module docs).
    #[inline]
    pub fn execute_prepared(
        &self,
        frame: &mut [u8],
        l3: usize,
        p: &Prepared,
        spec: &CtSpec,
        meta: &mut CtMeta,
        now_ms: u64,
    ) {
        if !(p.is_fast()
            && p.key.zone() == spec.zone
            && self.track_fast(frame, l3, p, spec, meta, now_ms))
        {
            self.execute(frame, l3, spec, meta, now_ms);
        }
    }

    /// The fast path; false (nothing changed) when the frame needs the
    /// general one.
    #[inline]
    fn track_fast(
        &self,
        frame: &mut [u8],
        l3: usize,
        p: &Prepared,
        spec: &CtSpec,
        meta: &mut CtMeta,
        now: u64,
    ) -> bool {
        let zone = spec.zone;
        let prior = if meta.zone == zone { meta.state } else { 0 };
        if prior & (state::SNAT | state::DNAT) != 0 {
            return false;
        }
        let si = shard_of(p.hash);
        let mut g = self.table.lock(si);
        let Found::Local { slot, reply } = g.find(&p.key, p.hash, self.table.shards()) else {
            return false;
        };
        let c = &mut g.conns[slot as usize];
        if c.expires <= now || (spec.force && reply) {
            return false;
        }
        let mut st = prior;
        match c.update(&p.l4(), reply, now) {
            Update::Valid => {
                st = (st | state::EST) & !state::NEW;
                if reply {
                    st |= state::RPL;
                }
            }
            Update::ValidNew => st |= state::NEW,
            Update::Invalid => {
                st = state::INV;
                g.invalid += 1;
            }
            Update::Reopen => {
                // Only a SYN reopens, and SYNs are never prepared fast.
                unreachable!("a fast-path segment reopened its connection")
            }
        }
        if spec.nat.is_some() {
            // As the general path: a translated connection's frames leave
            // with the reverse of the other direction's key (whatever the
            // update said), the state bits tell which side changed.
            let c = &g.conns[slot as usize];
            let bits = self.nat_bits(c, reply);
            if bits != 0 {
                let to = c.keys[usize::from(!reply)].reverse();
                let (src, dst, n) = to.addr_bytes();
                let at = (l3, p.at as u32 as usize, (p.at >> 32) as usize);
                let v6 = n == 16;
                // The headers were checked whole by `prepare`; the
                // target has the packet's family and protocol.
                let _ = rewrite::rewrite_tcp_udp(
                    frame,
                    at,
                    to.proto(),
                    v6,
                    &src[..n],
                    &dst[..n],
                    to.sport(),
                    to.dport(),
                );
                st |= bits;
                #[cfg(test)]
                FAST_NAT.fetch_add(1, Ordering::Relaxed);
            }
        }
        #[cfg(test)]
        FAST.fetch_add(1, Ordering::Relaxed);
        if spec.commit {
            if let Some((v, m)) = spec.set_mark {
                let c = &mut g.conns[slot as usize];
                c.mark = (c.mark & !m) | (v & m);
            }
            if let Some((v, m)) = spec.set_label {
                let l = g.label(slot);
                g.set_label(slot, (l & !m) | (v & m));
            }
        }
        let c = &g.conns[slot as usize];
        *meta = CtMeta {
            state: st | state::TRK,
            zone,
            mark: c.mark,
            label: g.label(slot),
            orig: Some(c.keys[0].meta_tuple()),
        };
        true
    }
}
