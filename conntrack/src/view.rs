//! What the tracker reads from a frame and how it applies a translation:
//! the seam between the tracker and the frame code (`packet.rs`,
//! `rewrite.rs`).
//!
//! This first version carries a compact reader of its own (IPv4/IPv6,
//! TCP/UDP/ICMP/ICMPv6, ICMP errors' quoted packet) and a translator with
//! incremental checksums (RFC 1624); both are replaced by `packet::parse`
//! and `rewrite.rs` as they land.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::conn::L4;
use crate::key::{proto, Key};
use crate::tcp::{flags, Seg};

/// The packet as the tracker sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkt {
    /// Tuple of this direction (ICMP query: id in `sport`, type in
    /// `dport`). For ICMP errors: the quoted packet's tuple, reversed.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// Protocol fields for the state machine.
    pub l4: L4,
    /// An ICMP error about a connection's packet.
    pub related: bool,
    /// An IP fragment.
    pub frag: bool,
    /// Offsets: L4 header; for ICMP errors, the quoted IP header and its L4.
    l4_off: usize,
    l4_end: usize,
    inner_l3: usize,
    inner_l4: usize,
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

/// Which side of the packet a translation rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

#[inline]
fn be16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

#[inline]
fn be32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

struct L3 {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l4: usize,
    end: usize,
    frag: bool,
}

fn parse_l3(f: &[u8], l3: usize, strict_len: bool) -> Option<L3> {
    let ver = f.get(l3)? >> 4;
    if ver == 4 {
        let ihl = (f[l3] & 0x0f) as usize * 4;
        let total = be16(f, l3 + 2)? as usize;
        if ihl < 20 || total < ihl || f.len() < l3 + ihl {
            return None;
        }
        let end = if strict_len {
            if f.len() < l3 + total {
                return None;
            }
            l3 + total
        } else {
            f.len().min(l3 + total)
        };
        let fo = be16(f, l3 + 6)?;
        let src = Ipv4Addr::from(be32(f, l3 + 12)?);
        let dst = Ipv4Addr::from(be32(f, l3 + 16)?);
        Some(L3 {
            src: src.into(),
            dst: dst.into(),
            proto: f[l3 + 9],
            l4: l3 + ihl,
            end,
            frag: fo & 0x3fff != 0,
        })
    } else if ver == 6 {
        let plen = be16(f, l3 + 4)? as usize;
        let mut nh = *f.get(l3 + 6)?;
        let src: [u8; 16] = f.get(l3 + 8..l3 + 24)?.try_into().ok()?;
        let dst: [u8; 16] = f.get(l3 + 24..l3 + 40)?.try_into().ok()?;
        let end = if strict_len {
            if f.len() < l3 + 40 + plen {
                return None;
            }
            l3 + 40 + plen
        } else {
            f.len().min(l3 + 40 + plen)
        };
        let mut off = l3 + 40;
        let mut frag = false;
        // RFC 8200 §4: skip extension headers up to the upper layer.
        for _ in 0..8 {
            match nh {
                0 | 43 | 60 => {
                    nh = *f.get(off)?;
                    off += (*f.get(off + 1)? as usize + 1) * 8;
                }
                44 => {
                    frag = true;
                    nh = *f.get(off)?;
                    off += 8;
                }
                _ => break,
            }
        }
        if off > end {
            return None;
        }
        Some(L3 {
            src: Ipv6Addr::from(src).into(),
            dst: Ipv6Addr::from(dst).into(),
            proto: nh,
            l4: off,
            end,
            frag,
        })
    } else {
        None
    }
}

/// RFC 7323 §2.2: the Window Scale option (kind 3, length 3).
fn wscale(opts: &[u8]) -> Option<u8> {
    let mut i = 0;
    let mut found = None;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            k => {
                let len = *opts.get(i + 1)? as usize;
                if k == 3 && len == 3 {
                    found = Some(*opts.get(i + 2)?);
                }
                i += len.max(2);
            }
        }
    }
    found
}

fn is_query(p: u8, ty: u8) -> Option<bool> {
    match (p, ty) {
        (proto::ICMP, 8 | 13 | 15) => Some(true),
        (proto::ICMP, 0 | 14 | 16) => Some(false),
        (proto::ICMPV6, 128) => Some(true),
        (proto::ICMPV6, 129) => Some(false),
        _ => None,
    }
}

fn is_error(p: u8, ty: u8) -> bool {
    match p {
        proto::ICMP => matches!(ty, 3 | 4 | 5 | 11 | 12),
        _ => matches!(ty, 1..=4),
    }
}

/// Read the tuple and L4 fields of the packet whose IP header is at `l3`.
/// None: not something the tracker can track (`+inv`).
pub(crate) fn parse(f: &[u8], l3: usize) -> Option<Pkt> {
    let h = parse_l3(f, l3, true)?;
    let mut p = Pkt {
        src: h.src,
        dst: h.dst,
        sport: 0,
        dport: 0,
        proto: h.proto,
        l4: L4::Other,
        related: false,
        frag: h.frag,
        l4_off: h.l4,
        l4_end: h.end,
        inner_l3: 0,
        inner_l4: 0,
    };
    if h.frag {
        return Some(p);
    }
    let l4 = &f[h.l4..h.end];
    match h.proto {
        proto::TCP => {
            let doff = (*l4.get(12)? >> 4) as usize * 4;
            if doff < 20 || l4.len() < doff {
                return None;
            }
            p.sport = be16(l4, 0)?;
            p.dport = be16(l4, 2)?;
            let fl = l4[13] & 0x3f;
            p.l4 = L4::Tcp(Seg {
                seq: be32(l4, 4)?,
                ack: be32(l4, 8)?,
                win: be16(l4, 14)?,
                flags: fl,
                wscale: if fl & flags::SYN != 0 {
                    wscale(&l4[20..doff])
                } else {
                    None
                },
                payload_len: (l4.len() - doff) as u32,
            });
        }
        proto::UDP => {
            if l4.len() < 8 {
                return None;
            }
            p.sport = be16(l4, 0)?;
            p.dport = be16(l4, 2)?;
        }
        proto::ICMP | proto::ICMPV6 => {
            if (h.proto == proto::ICMP) == h.src.is_ipv6() || l4.len() < 8 {
                return None;
            }
            let (ty, code) = (l4[0], l4[1]);
            if let Some(req) = is_query(h.proto, ty) {
                if code != 0 {
                    return None;
                }
                p.sport = be16(l4, 4)?;
                p.dport = ty as u16;
                p.l4 = L4::IcmpQuery { new_ok: req };
            } else if is_error(h.proto, ty) {
                // RFC 792 / RFC 4443 §2.4: the error quotes the offending
                // packet, which the error's destination sent.
                let inner_l3 = h.l4 + 8;
                let ih = parse_l3(&f[..h.end], inner_l3, false)?;
                if ih.src != h.dst || ih.frag || ih.src.is_ipv6() != h.src.is_ipv6() {
                    return None;
                }
                let il4 = &f[ih.l4..ih.end];
                let (sport, dport) = match ih.proto {
                    proto::TCP | proto::UDP => (be16(il4, 0)?, be16(il4, 2)?),
                    proto::ICMP | proto::ICMPV6 => {
                        let ity = *il4.first()?;
                        is_query(ih.proto, ity)?;
                        (be16(il4, 4)?, ity as u16)
                    }
                    _ => (0, 0),
                };
                let inner = Key::new(ih.src, ih.dst, sport, dport, ih.proto, 0).reverse();
                p.src = inner.src();
                p.dst = inner.dst();
                p.sport = inner.sport();
                p.dport = inner.dport();
                p.proto = ih.proto;
                p.related = true;
                p.inner_l3 = inner_l3;
                p.inner_l4 = ih.l4;
            } else {
                return None;
            }
        }
        _ => {}
    }
    Some(p)
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
#[inline]
fn csum_adjust(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = (!csum) as u32;
    for c in old.chunks(2) {
        sum += !u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    for c in new.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn fix_csum(f: &mut [u8], at: usize, old: &[u8], new: &[u8], udp: bool) {
    if f.len() < at + 2 {
        return;
    }
    let c = u16::from_be_bytes([f[at], f[at + 1]]);
    if udp && c == 0 {
        // RFC 768: no checksum.
        return;
    }
    let mut n = csum_adjust(c, old, new);
    if udp && n == 0 {
        n = 0xffff;
    }
    f[at..at + 2].copy_from_slice(&n.to_be_bytes());
}

fn addr_bytes(a: IpAddr) -> ([u8; 16], usize) {
    match a {
        IpAddr::V4(v) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v.octets());
            (b, 4)
        }
        IpAddr::V6(v) => (v.octets(), 16),
    }
}

/// Set the address of `side` of the IP header at `l3` and the port at
/// `l4` (TCP/UDP; ICMP query: the identifier), fixing the IPv4 header
/// checksum and the L4 checksum (pseudo-header for TCP/UDP/ICMPv6).
#[allow(clippy::too_many_arguments)]
fn set_side(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    l4_end: usize,
    proto: u8,
    side: Side,
    addr: IpAddr,
    port: Option<u16>,
) {
    let v6 = f[l3] >> 4 == 6;
    let (nb, n) = addr_bytes(addr);
    let aoff = match (v6, side) {
        (false, Side::Src) => l3 + 12,
        (false, Side::Dst) => l3 + 16,
        (true, Side::Src) => l3 + 8,
        (true, Side::Dst) => l3 + 24,
    };
    if f.len() < aoff + n || (addr.is_ipv6() != v6) {
        return;
    }
    let mut old = [0u8; 16];
    old[..n].copy_from_slice(&f[aoff..aoff + n]);
    let csum_at = match proto {
        proto::TCP => Some((l4 + 16, false)),
        proto::UDP => Some((l4 + 6, true)),
        proto::ICMPV6 => Some((l4 + 2, false)),
        _ => None,
    };
    if old[..n] != nb[..n] {
        f[aoff..aoff + n].copy_from_slice(&nb[..n]);
        if !v6 {
            fix_csum(f, l3 + 10, &old[..4], &nb[..4], false);
        }
        if let Some((at, udp)) = csum_at {
            if at + 2 <= l4_end {
                fix_csum(f, at, &old[..n], &nb[..n], udp);
            }
        }
    }
    let Some(port) = port else { return };
    let (poff, cs) = match proto {
        proto::TCP | proto::UDP => (if side == Side::Src { l4 } else { l4 + 2 }, csum_at),
        proto::ICMP | proto::ICMPV6 => (l4 + 4, Some((l4 + 2, false))),
        _ => return,
    };
    if poff + 2 > l4_end {
        return;
    }
    let op = [f[poff], f[poff + 1]];
    let np = port.to_be_bytes();
    if op != np {
        f[poff..poff + 2].copy_from_slice(&np);
        if let Some((at, udp)) = cs {
            if at + 2 <= l4_end {
                fix_csum(f, at, &op, &np, udp);
            }
        }
    }
}

/// Internet checksum of `data` plus an initial sum.
fn csum(mut sum: u32, data: &[u8]) -> u16 {
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Translate the packet: its `side` gets `target`'s address and port
/// (target is the tuple the packet must leave with). ICMP errors: the
/// outer header's `side` address, and the whole quoted tuple becomes
/// `target` reversed; the ICMP checksum is recomputed.
pub(crate) fn nat(f: &mut [u8], l3: usize, p: &Pkt, side: Side, target: &Key) {
    if !p.related {
        let (addr, port) = match side {
            Side::Src => (target.src(), target.sport()),
            Side::Dst => (
                target.dst(),
                if p.proto == proto::ICMP || p.proto == proto::ICMPV6 {
                    target.sport()
                } else {
                    target.dport()
                },
            ),
        };
        let port = match p.proto {
            proto::TCP | proto::UDP | proto::ICMP | proto::ICMPV6 => Some(port),
            _ => None,
        };
        set_side(f, l3, p.l4_off, p.l4_end, p.proto, side, addr, port);
        return;
    }
    let outer_proto = if f[l3] >> 4 == 6 {
        proto::ICMPV6
    } else {
        proto::ICMP
    };
    let addr = if side == Side::Src {
        target.src()
    } else {
        target.dst()
    };
    // Outer address (the ICMP checksum is recomputed below).
    set_side(f, l3, p.l4_off, p.l4_end, 0, side, addr, None);
    let inner = target.reverse();
    let il4_end = p.l4_end;
    let (ip, il3, il4) = (p.proto, p.inner_l3, p.inner_l4);
    set_side(
        f,
        il3,
        il4,
        il4_end,
        ip,
        Side::Src,
        inner.src(),
        Some(inner.sport()),
    );
    let dport = if ip == proto::ICMP || ip == proto::ICMPV6 {
        None
    } else {
        Some(inner.dport())
    };
    set_side(f, il3, il4, il4_end, ip, Side::Dst, inner.dst(), dport);
    // Recompute the ICMP checksum over the message (ICMPv6: with the
    // pseudo-header, RFC 4443 §2.3).
    let (s, e) = (p.l4_off, p.l4_end);
    f[s + 2] = 0;
    f[s + 3] = 0;
    let init = if outer_proto == proto::ICMPV6 {
        let mut sum = 0u32;
        for c in f[l3 + 8..l3 + 40].chunks(2) {
            sum += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        sum + (e - s) as u32 + proto::ICMPV6 as u32
    } else {
        0
    };
    let c = csum(init, &f[s..e]);
    f[s + 2..s + 4].copy_from_slice(&c.to_be_bytes());
}
