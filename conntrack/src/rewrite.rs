//! NAT rewrites of a frame: addresses and ports, with the IPv4 header and
//! TCP/UDP/ICMP checksums updated incrementally (RFC 1624), including the
//! packet quoted inside an ICMP error.
//!
//! [`rewrite`] makes a parsed frame carry a given tuple. Each changed
//! field is written once and its change folded into every checksum that
//! covers it: the IPv4 header checksum (addresses), the TCP/UDP/ICMPv6
//! checksum (pseudo-header addresses, RFC 793 §3.1 / RFC 8200 §8.1, and
//! ports or the ICMP identifier). Inside an ICMP error the quoted packet's
//! addresses and ports are rewritten with its own IPv4 header checksum and
//! (when quoted) its L4 checksum, and the ICMP checksum absorbs all of it.
//! A UDP checksum of 0 ("no checksum", RFC 768) stays 0; a computed 0 is
//! sent as 0xFFFF. A checksum that was wrong stays exactly as wrong.

use crate::checksum::Delta;
use crate::packet::{icmp, ipv4, ipv6, proto, tcp, udp, Frag, L4Kind, Parsed};
use crate::Tuple;
use std::net::IpAddr;

/// Why a frame could not be rewritten; the frame is left unchanged (if
/// the [`Parsed`] came from this frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteError {
    /// The target tuple's addresses are not of the packet's IP version.
    FamilyMismatch,
    /// The target tuple's protocol is not the packet's.
    ProtoMismatch,
    /// Ports must change but the packet carries no L4 header (a later
    /// fragment).
    NoTransportHeader,
    /// The parsed offsets do not fit the frame (it is not the frame that
    /// was parsed).
    Truncated,
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RewriteError::FamilyMismatch => "target tuple of another IP version",
            RewriteError::ProtoMismatch => "target tuple of another protocol",
            RewriteError::NoTransportHeader => "ports to rewrite in a packet without L4 header",
            RewriteError::Truncated => "parsed offsets beyond the frame",
        })
    }
}

impl std::error::Error for RewriteError {}

/// A checksum field to keep up to date.
#[derive(Debug, Clone, Copy)]
struct Sum {
    /// Offset of the 16-bit field in the frame.
    at: usize,
    /// UDP: 0 means "none" and stays 0; a computed 0 is written 0xFFFF.
    udp: bool,
}

fn get16(frame: &[u8], at: usize) -> Result<u16, RewriteError> {
    match frame.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(RewriteError::Truncated),
    }
}

/// Write `new` at `at`; fold the change into each `direct` checksum (which
/// covers the field) and, with the changes of those checksum fields, into
/// `enclosing` (a checksum whose data holds the field and the direct
/// checksum fields: the ICMP checksum of an error's quoted packet). Fields
/// sit at an even offset from the start of what each checksum covers.
#[inline]
fn patch(
    frame: &mut [u8],
    at: usize,
    new: &[u8],
    direct: &[Option<Sum>],
    enclosing: Option<Sum>,
) -> Result<(), RewriteError> {
    let field = frame
        .get_mut(at..at + new.len())
        .ok_or(RewriteError::Truncated)?;
    // Fields are 2, 4 or 16 bytes: compared inline (a slice `==` is a
    // `memcmp` call).
    if field.iter().zip(new).all(|(a, b)| a == b) {
        return Ok(());
    }
    let mut delta = Delta::default();
    delta.add(field, new);
    field.copy_from_slice(new);
    let mut outer = delta;
    for s in direct.iter().flatten() {
        let old = get16(frame, s.at)?;
        if s.udp && old == 0 {
            continue;
        }
        let mut hc = delta.apply(old);
        if s.udp && hc == 0 {
            hc = 0xffff;
        }
        frame[s.at..s.at + 2].copy_from_slice(&hc.to_be_bytes());
        outer.add(&old.to_be_bytes(), &hc.to_be_bytes());
    }
    if let Some(e) = enclosing {
        let old = get16(frame, e.at)?;
        let hc = outer.apply(old);
        frame[e.at..e.at + 2].copy_from_slice(&hc.to_be_bytes());
    }
    Ok(())
}

/// Address bytes (4 or 16) of `a` if it is of the packet's version.
fn addr_bytes(a: &IpAddr, v6: bool) -> Result<([u8; 16], usize), RewriteError> {
    let mut o = [0u8; 16];
    match (a, v6) {
        (IpAddr::V4(a), false) => {
            o[..4].copy_from_slice(&a.octets());
            Ok((o, 4))
        }
        (IpAddr::V6(a), true) => {
            o.copy_from_slice(&a.octets());
            Ok((o, 16))
        }
        _ => Err(RewriteError::FamilyMismatch),
    }
}

/// The L4 checksum of a header at `l4` whose protocol is `proto` (in an IP
/// packet of version `v6`) that covers the pseudo-header, if the field is
/// before `end`.
fn pseudo_sum(proto_: u8, v6: bool, l4: usize, end: usize) -> Option<Sum> {
    let (at, udp_) = match (proto_, v6) {
        (proto::TCP, _) => (l4 + tcp::CHECKSUM.start, false),
        (proto::UDP, _) => (l4 + udp::CHECKSUM.start, true),
        (proto::ICMPV6, true) => (l4 + icmp::CHECKSUM.start, false),
        _ => return None,
    };
    (at + 2 <= end).then_some(Sum { at, udp: udp_ })
}

/// The L4 checksum that covers the ports (or ICMP identifier).
fn port_sum(proto_: u8, l4: usize, end: usize) -> Option<Sum> {
    let (at, udp_) = match proto_ {
        proto::TCP => (l4 + tcp::CHECKSUM.start, false),
        proto::UDP => (l4 + udp::CHECKSUM.start, true),
        proto::ICMP | proto::ICMPV6 => (l4 + icmp::CHECKSUM.start, false),
        _ => return None,
    };
    (at + 2 <= end).then_some(Sum { at, udp: udp_ })
}

/// One IP header and the L4 header after it, as rewrite targets.
struct Layer {
    l3: usize,
    l4: usize,
    end: usize,
    proto: u8,
    v6: bool,
    /// Ports (TCP/UDP) or identifier (ICMP query) present.
    has_ports: bool,
    /// The L4 checksum is in this packet (not a later fragment).
    has_l4_sum: bool,
}

impl Layer {
    fn ip_sum(&self) -> Option<Sum> {
        (!self.v6).then_some(Sum {
            at: self.l3 + ipv4::CHECKSUM.start,
            udp: false,
        })
    }

    fn l4_pseudo_sum(&self) -> Option<Sum> {
        if self.has_l4_sum {
            pseudo_sum(self.proto, self.v6, self.l4, self.end)
        } else {
            None
        }
    }

    /// Set the source (`src`) or destination address.
    fn set_addr(
        &self,
        frame: &mut [u8],
        src: bool,
        a: &IpAddr,
        enclosing: Option<Sum>,
    ) -> Result<(), RewriteError> {
        let (bytes, n) = addr_bytes(a, self.v6)?;
        let at = self.l3
            + match (self.v6, src) {
                (false, true) => ipv4::SRC.start,
                (false, false) => ipv4::DST.start,
                (true, true) => ipv6::SRC.start,
                (true, false) => ipv6::DST.start,
            };
        patch(
            frame,
            at,
            &bytes[..n],
            &[self.ip_sum(), self.l4_pseudo_sum()],
            enclosing,
        )
    }

    /// Set the ports of TCP/UDP, or the identifier of an ICMP query
    /// (`dst_port` ignored).
    fn set_ports(
        &self,
        frame: &mut [u8],
        t: &Tuple,
        enclosing: Option<Sum>,
    ) -> Result<(), RewriteError> {
        let sum = if self.has_l4_sum {
            port_sum(self.proto, self.l4, self.end)
        } else {
            None
        };
        match self.proto {
            proto::TCP | proto::UDP => {
                patch(frame, self.l4, &t.src_port.to_be_bytes(), &[sum], enclosing)?;
                patch(
                    frame,
                    self.l4 + 2,
                    &t.dst_port.to_be_bytes(),
                    &[sum],
                    enclosing,
                )
            }
            _ => patch(
                frame,
                self.l4 + icmp::ID.start,
                &t.src_port.to_be_bytes(),
                &[sum],
                enclosing,
            ),
        }
    }
}

/// [`rewrite`] for an unfragmented TCP or UDP packet (IP header at `l3`,
/// L4 header at `l4`, packet end `end`, IPv6 if `v6`): the same patches
/// in the same order, so the same bytes, without a [`Parsed`].
/// `src`/`dst`: the target addresses (4 or 16 bytes, the packet's
/// version). The caller checked the headers are whole (as `parse` does).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rewrite_tcp_udp(
    frame: &mut [u8],
    (l3, l4, end): (usize, usize, usize),
    proto_: u8,
    v6: bool,
    src: &[u8],
    dst: &[u8],
    sport: u16,
    dport: u16,
) -> Result<(), RewriteError> {
    let layer = Layer {
        l3,
        l4,
        end,
        proto: proto_,
        v6,
        has_ports: true,
        has_l4_sum: true,
    };
    let sums = [layer.ip_sum(), layer.l4_pseudo_sum()];
    let (sa, da) = if v6 {
        (l3 + ipv6::SRC.start, l3 + ipv6::DST.start)
    } else {
        (l3 + ipv4::SRC.start, l3 + ipv4::DST.start)
    };
    patch(frame, sa, src, &sums, None)?;
    patch(frame, da, dst, &sums, None)?;
    let sum = [port_sum(proto_, l4, end)];
    patch(frame, l4, &sport.to_be_bytes(), &sum, None)?;
    patch(frame, l4 + 2, &dport.to_be_bytes(), &sum, None)
}

/// Make the frame `p` was parsed from carry the tuple `to` (in the
/// packet's own direction, as [`Parsed::tuple`]): addresses, TCP/UDP
/// ports, the ICMP query identifier (`to.src_port`; the type cannot
/// change). For an ICMP error `to` is the error's tuple too: the quoted
/// packet is rewritten to `to.reverse()`, and the outer source or
/// destination address is set where `to` changes it (as OVS's
/// `nat_packet` + `nat_inner_packet`).
pub fn rewrite(frame: &mut [u8], p: &Parsed, to: &Tuple) -> Result<(), RewriteError> {
    if to.proto != p.tuple.proto {
        return Err(RewriteError::ProtoMismatch);
    }
    addr_bytes(&to.src, p.ipv6)?;
    addr_bytes(&to.dst, p.ipv6)?;
    if p.end > frame.len() || p.l4 > p.end {
        return Err(RewriteError::Truncated);
    }
    let ports_change = (to.src_port, to.dst_port) != (p.tuple.src_port, p.tuple.dst_port);
    let (outer_proto, has_ports) = match &p.kind {
        L4Kind::Tcp(_) => (proto::TCP, true),
        L4Kind::Udp => (proto::UDP, true),
        L4Kind::IcmpEcho(_) => (p.tuple.proto, true),
        L4Kind::IcmpError(_) => (if p.ipv6 { proto::ICMPV6 } else { proto::ICMP }, false),
        L4Kind::Other => (p.tuple.proto, false),
    };
    let quoted_ports = |e: &crate::packet::IcmpError| {
        matches!(e.inner.proto, proto::TCP | proto::UDP) || e.inner.is_icmp()
    };
    let no_ports = match &p.kind {
        L4Kind::Other => true,
        L4Kind::IcmpError(e) => !quoted_ports(e),
        _ => false,
    };
    if ports_change && no_ports {
        return Err(RewriteError::NoTransportHeader);
    }
    let min_l4 = match &p.kind {
        L4Kind::Tcp(_) => tcp::MIN_LEN,
        L4Kind::Udp => udp::LEN,
        L4Kind::IcmpEcho(_) | L4Kind::IcmpError(_) => icmp::LEN,
        L4Kind::Other => 0,
    };
    if p.l4 + min_l4 > p.end {
        return Err(RewriteError::Truncated);
    }
    let outer = Layer {
        l3: p.l3,
        l4: p.l4,
        end: p.end,
        proto: outer_proto,
        v6: p.ipv6,
        has_ports,
        has_l4_sum: p.frag != Frag::Later && !matches!(p.kind, L4Kind::Other),
    };
    let L4Kind::IcmpError(e) = &p.kind else {
        outer.set_addr(frame, true, &to.src, None)?;
        outer.set_addr(frame, false, &to.dst, None)?;
        if outer.has_ports {
            outer.set_ports(frame, to, None)?;
        }
        return Ok(());
    };
    // The error's outer header: only the side the translation changes.
    if to.src != p.tuple.src {
        outer.set_addr(frame, true, &to.src, None)?;
    }
    if to.dst != p.tuple.dst {
        outer.set_addr(frame, false, &to.dst, None)?;
    }
    // The quoted packet, inside the ICMP message's checksum.
    if e.inner_l3 >= e.inner_l4 || e.inner_l4 > p.end {
        return Err(RewriteError::Truncated);
    }
    let icmp_sum = Some(Sum {
        at: p.l4 + icmp::CHECKSUM.start,
        udp: false,
    });
    let inner_to = to.reverse();
    let inner = Layer {
        l3: e.inner_l3,
        l4: e.inner_l4,
        end: p.end,
        proto: e.inner.proto,
        v6: e.inner_ipv6,
        has_ports: quoted_ports(e),
        has_l4_sum: true,
    };
    inner.set_addr(frame, true, &inner_to.src, icmp_sum)?;
    inner.set_addr(frame, false, &inner_to.dst, icmp_sum)?;
    if inner.has_ports {
        inner.set_ports(frame, &inner_to, icmp_sum)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{fold, pseudo_header, sum, verify};
    use crate::packet::{parse, IcmpError};
    use crate::vectors::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Parse, rewrite to `to`, check every checksum fully and that the
    /// frame now parses to `to`; returns the rewritten frame.
    fn rewrite_checked(frame: &[u8], to: Tuple) -> Vec<u8> {
        let mut f = frame.to_vec();
        let p = parse(&f, 14).unwrap();
        let before = verify(&f, &p);
        rewrite(&mut f, &p, &to).unwrap();
        let q = parse(&f, 14).unwrap();
        assert_eq!(q.tuple.src, to.src);
        assert_eq!(q.tuple.dst, to.dst);
        assert_eq!(q.tuple.src_port, to.src_port);
        if !to.is_icmp() {
            assert_eq!(q.tuple, to);
        }
        assert_eq!(f.len(), frame.len());
        assert_eq!(f[..14], frame[..14], "Ethernet header untouched");
        assert_eq!(f[p.end..], frame[p.end..], "padding untouched");
        let after = verify(&f, &q);
        assert_eq!(after, before, "checksums as valid as before");
        assert!(
            after.ip != Some(false) && after.l4 != Some(false) && after.inner_ip != Some(false)
        );
        if let L4Kind::IcmpError(e) = q.kind {
            inner_l4_valid(&f, &q, &e);
        }
        f
    }

    /// The quoted packet's own L4 checksum, where the whole quoted packet
    /// is in the frame (the vectors quote whole UDP datagrams).
    fn inner_l4_valid(f: &[u8], q: &Parsed, e: &IcmpError) {
        if e.inner.proto != proto::UDP {
            return;
        }
        let l4 = &f[e.inner_l4..q.end];
        let (s, d, n) = if e.inner_ipv6 {
            (8, 24, 16)
        } else {
            (12, 16, 4)
        };
        let src = &f[e.inner_l3 + s..e.inner_l3 + s + n];
        let dst = &f[e.inner_l3 + d..e.inner_l3 + d + n];
        let total = sum(l4) + pseudo_header(src, dst, proto::UDP, l4.len());
        assert_eq!(fold(total), 0xffff, "quoted UDP checksum");
    }

    #[test]
    fn rewrite_tcp4_snat_src_addr_and_port() {
        let to = Tuple {
            src: ip("192.168.255.7"),
            src_port: 61000,
            ..parse(TCP4_SYN, 14).unwrap().tuple
        };
        let f = rewrite_checked(TCP4_SYN, to);
        assert_eq!(f[26..30], [192, 168, 255, 7]);
        assert_eq!(f[34..36], 61000u16.to_be_bytes());
        // Options and the rest of the header untouched.
        assert_eq!(f[38..50], TCP4_SYN[38..50]);
        assert_eq!(f[52..], TCP4_SYN[52..]);
    }

    #[test]
    fn rewrite_tcp4_data_dnat() {
        let to = Tuple {
            dst: ip("172.16.0.9"),
            dst_port: 8080,
            ..parse(TCP4_DATA, 14).unwrap().tuple
        };
        rewrite_checked(TCP4_DATA, to);
    }

    #[test]
    fn rewrite_udp4_with_padding() {
        let t = parse(UDP4, 14).unwrap().tuple;
        rewrite_checked(
            UDP4,
            Tuple {
                src: ip("1.2.3.4"),
                dst: ip("5.6.7.8"),
                src_port: 1,
                dst_port: 65535,
                ..t
            },
        );
    }

    #[test]
    fn rewrite_udp4_zero_checksum_stays_zero() {
        let t = parse(UDP4_NOCSUM, 14).unwrap().tuple;
        let f = rewrite_checked(
            UDP4_NOCSUM,
            Tuple {
                src: ip("1.2.3.4"),
                src_port: 999,
                ..t
            },
        );
        assert_eq!(f[40..42], [0, 0]);
    }

    #[test]
    fn rewrite_icmp4_echo_id() {
        let t = parse(ICMP4_ECHO, 14).unwrap().tuple;
        let f = rewrite_checked(
            ICMP4_ECHO,
            Tuple {
                src: ip("100.64.0.1"),
                src_port: 0x4321,
                ..t
            },
        );
        assert_eq!(f[38..40], [0x43, 0x21]);
        assert_eq!(f[34], 8, "type kept");
    }

    #[test]
    fn rewrite_icmp4_error_outer_and_quoted_udp() {
        // The error travels to the client, whose address and port the
        // translation changes (reply direction of a SNAT).
        let t = parse(ICMP4_UNREACH_UDP, 14).unwrap().tuple;
        let to = Tuple {
            dst: ip("192.168.1.50"),
            dst_port: 6000,
            ..t
        };
        let f = rewrite_checked(ICMP4_UNREACH_UDP, to);
        assert_eq!(f[26..30], [10, 0, 0, 2], "outer source kept");
        assert_eq!(f[30..34], [192, 168, 1, 50], "outer destination");
        assert_eq!(f[54..58], [192, 168, 1, 50], "quoted source");
        assert_eq!(f[62..64], 6000u16.to_be_bytes(), "quoted source port");
        let p = parse(&f, 14).unwrap();
        let L4Kind::IcmpError(e) = p.kind else {
            panic!()
        };
        assert_eq!(e.inner, to.reverse());
    }

    #[test]
    fn rewrite_icmp4_error_dnat_reply_changes_outer_source() {
        // The server answers for a DNAT'd address: the error's source (the
        // server) becomes the address the client used.
        let t = parse(ICMP4_UNREACH_UDP, 14).unwrap().tuple;
        let to = Tuple {
            src: ip("203.0.113.80"),
            src_port: 5353,
            ..t
        };
        let f = rewrite_checked(ICMP4_UNREACH_UDP, to);
        assert_eq!(f[26..30], [203, 0, 113, 80]);
        assert_eq!(f[58..62], [203, 0, 113, 80], "quoted destination");
        assert_eq!(f[64..66], 5353u16.to_be_bytes());
    }

    #[test]
    fn rewrite_icmp4_error_from_router_keeps_router() {
        let t = parse(ICMP4_TTL_TCP, 14).unwrap().tuple;
        let to = Tuple {
            dst: ip("192.168.1.50"),
            dst_port: 1234,
            ..t
        };
        let f = rewrite_checked(ICMP4_TTL_TCP, to);
        assert_eq!(f[26..30], [10, 0, 0, 254], "router kept");
        assert_eq!(f[30..34], [192, 168, 1, 50]);
        assert_eq!(f[62..64], 1234u16.to_be_bytes());
        assert_eq!(
            f.len(),
            ICMP4_TTL_TCP.len(),
            "nothing written past the 8 quoted bytes"
        );
    }

    #[test]
    fn rewrite_icmp4_error_quoting_echo() {
        let t = parse(ICMP4_UNREACH_ECHO, 14).unwrap().tuple;
        let to = Tuple {
            dst: ip("192.168.1.50"),
            src_port: 0x7777,
            ..t
        };
        let f = rewrite_checked(ICMP4_UNREACH_ECHO, to);
        // Quoted ICMP header at 62: id at 66, its own checksum valid.
        assert_eq!(f[66..68], [0x77, 0x77]);
        assert_eq!(fold(sum(&f[62..])), 0xffff, "quoted echo checksum");
    }

    #[test]
    fn rewrite_ipv6_tcp_udp_icmp() {
        let t = parse(TCP6_SYNACK, 14).unwrap().tuple;
        rewrite_checked(
            TCP6_SYNACK,
            Tuple {
                src: ip("2001:db8::80"),
                src_port: 80,
                ..t
            },
        );
        let t = parse(UDP6_EXT, 14).unwrap().tuple;
        rewrite_checked(
            UDP6_EXT,
            Tuple {
                dst: ip("2001:db8:1::53"),
                dst_port: 5353,
                ..t
            },
        );
        let t = parse(ICMP6_ECHO, 14).unwrap().tuple;
        let f = rewrite_checked(
            ICMP6_ECHO,
            Tuple {
                src: ip("2001:db8::1"),
                src_port: 9,
                ..t
            },
        );
        assert_eq!(f[58..60], [0, 9]);
    }

    #[test]
    fn rewrite_icmp6_error_outer_pseudo_header_and_quoted() {
        let t = parse(ICMP6_UNREACH_UDP, 14).unwrap().tuple;
        let to = Tuple {
            dst: ip("2001:db8::c1"),
            dst_port: 40000,
            ..t
        };
        let f = rewrite_checked(ICMP6_UNREACH_UDP, to);
        assert_eq!(f[38..54], ip_octets("2001:db8::c1"));
        assert_eq!(f[70..86], ip_octets("2001:db8::c1"), "quoted source");
    }

    fn ip_octets(s: &str) -> [u8; 16] {
        match ip(s) {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        }
    }

    #[test]
    fn rewrite_fragments() {
        // A first fragment's L4 checksum covers the whole datagram: the
        // incremental update keeps it right for the reassembled one.
        let mut whole = UDP4_FRAG_FIRST[..34].to_vec();
        whole.extend_from_slice(&UDP4_FRAG_FIRST[34..]);
        whole.extend_from_slice(&UDP4_FRAG_LATER[34..]);
        let mut f = UDP4_FRAG_FIRST.to_vec();
        let p = parse(&f, 14).unwrap();
        let to = Tuple {
            src: ip("9.9.9.9"),
            src_port: 4444,
            ..p.tuple
        };
        rewrite(&mut f, &p, &to).unwrap();
        let mut re = f.clone();
        re.extend_from_slice(&UDP4_FRAG_LATER[34..]);
        let l4 = &re[34..];
        let total = sum(l4) + pseudo_header(&re[26..30], &re[30..34], proto::UDP, l4.len());
        assert_eq!(fold(total), 0xffff, "reassembled UDP checksum");
        assert_eq!(verify(&f, &parse(&f, 14).unwrap()).ip, Some(true));
        // A later fragment: addresses yes, ports no.
        let mut f = UDP4_FRAG_LATER.to_vec();
        let p = parse(&f, 14).unwrap();
        let to = Tuple {
            src: ip("9.9.9.9"),
            ..p.tuple
        };
        rewrite(&mut f, &p, &to).unwrap();
        assert_eq!(f[34..], UDP4_FRAG_LATER[34..], "payload untouched");
        assert_eq!(verify(&f, &parse(&f, 14).unwrap()).ip, Some(true));
        let before = f.clone();
        let to = Tuple { src_port: 1, ..to };
        assert_eq!(
            rewrite(&mut f, &p, &to),
            Err(RewriteError::NoTransportHeader)
        );
        assert_eq!(f, before, "unchanged on error");
    }

    #[test]
    fn rewrite_rejects_mismatched_targets_unchanged() {
        let mut f = TCP4_SYN.to_vec();
        let p = parse(&f, 14).unwrap();
        let v6 = Tuple {
            src: ip("::1"),
            ..p.tuple
        };
        assert_eq!(rewrite(&mut f, &p, &v6), Err(RewriteError::FamilyMismatch));
        let udp_ = Tuple {
            proto: proto::UDP,
            ..p.tuple
        };
        assert_eq!(rewrite(&mut f, &p, &udp_), Err(RewriteError::ProtoMismatch));
        assert_eq!(f, TCP4_SYN);
        // A Parsed of a longer frame does not fit a shorter one.
        let mut short = TCP4_SYN[..40].to_vec();
        assert_eq!(
            rewrite(&mut short, &p, &p.tuple),
            Err(RewriteError::Truncated)
        );
    }

    #[test]
    fn rewrite_icmp_error_quoting_a_portless_protocol() {
        // The quoted packet is GRE (47): addresses only.
        let mut f = ICMP4_UNREACH_UDP.to_vec();
        f[51] = 47;
        let p = parse(&f, 14).unwrap();
        assert_eq!(
            (p.tuple.proto, p.tuple.src_port, p.tuple.dst_port),
            (47, 0, 0)
        );
        let before = verify(&f, &p);
        let before_bytes = f.clone();
        let ports = Tuple {
            src_port: 1,
            ..p.tuple
        };
        assert_eq!(
            rewrite(&mut f, &p, &ports),
            Err(RewriteError::NoTransportHeader)
        );
        assert_eq!(f, before_bytes, "unchanged on error");
        let to = Tuple {
            dst: ip("192.168.1.50"),
            ..p.tuple
        };
        rewrite(&mut f, &p, &to).unwrap();
        assert_eq!(f[54..58], [192, 168, 1, 50], "quoted source");
        assert_eq!(verify(&f, &parse(&f, 14).unwrap()), before);
    }

    #[test]
    fn rewrite_keeps_a_bad_checksum_bad() {
        let mut f = TCP4_DATA.to_vec();
        f[51] ^= 0x10; // TCP checksum (34 + 16..18) off
        let p = parse(&f, 14).unwrap();
        assert_eq!(verify(&f, &p).l4, Some(false));
        rewrite(
            &mut f,
            &p,
            &Tuple {
                src: ip("1.1.1.1"),
                ..p.tuple
            },
        )
        .unwrap();
        assert_eq!(verify(&f, &p).l4, Some(false));
        assert_eq!(verify(&f, &p).ip, Some(true));
    }

    /// Every vector, rewritten to several targets (and back), with every
    /// checksum recomputed in full after each rewrite.
    #[test]
    fn rewrite_all_vectors_recompute_checksums() {
        let all = [
            TCP4_SYN,
            TCP4_DATA,
            UDP4,
            UDP4_NOCSUM,
            ICMP4_ECHO,
            ICMP4_UNREACH_UDP,
            ICMP4_TTL_TCP,
            ICMP4_UNREACH_ECHO,
            UDP4_FRAG_FIRST,
            TCP6_SYNACK,
            UDP6_EXT,
            ICMP6_ECHO,
            ICMP6_UNREACH_UDP,
            UDP6_FRAG_FIRST,
        ];
        for v in all {
            let t = parse(v, 14).unwrap().tuple;
            let (a, b) = if t.src.is_ipv4() {
                (ip("255.255.255.255"), ip("0.0.0.1"))
            } else {
                (ip("ffff::ffff"), ip("::"))
            };
            let targets = [
                Tuple { src: a, ..t },
                Tuple { dst: b, ..t },
                Tuple {
                    src: b,
                    dst: a,
                    src_port: 0xffff,
                    dst_port: 1,
                    ..t
                },
                Tuple {
                    src_port: 1,
                    dst_port: 0xfffe,
                    ..t
                },
            ];
            for to in targets {
                let to = Tuple {
                    dst_port: if t.is_icmp() { t.dst_port } else { to.dst_port },
                    ..to
                };
                let f = rewrite_checked(v, to);
                // And back to the original bytes.
                let mut g = f.clone();
                let p = parse(&g, 14).unwrap();
                rewrite(&mut g, &p, &t).unwrap();
                assert_eq!(verify(&g, &p), verify(v, &parse(v, 14).unwrap()));
                // The same bytes again, but for an error from a router
                // whose address a source translation replaced (as OVS).
                if v != ICMP4_TTL_TCP && v != ICMP4_UNREACH_ECHO {
                    assert_eq!(g, v);
                }
            }
        }
    }
}
