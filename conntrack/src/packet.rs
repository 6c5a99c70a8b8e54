//! What the tracker reads from a frame: the connection tuple, and for TCP
//! the fields window tracking needs; for ICMP errors the tuple of the
//! packet quoted inside (RFC 792, RFC 4443 §2.4). Bounds-checked, never
//! panics on any input (fuzzed: `conntrack/fuzz`).
//!
//! The rules are those of OVS's user-space tracker (`lib/conntrack.c`,
//! `conn_key_extract`, `extract_l3_ipv4/6`, `extract_l4_*`):
//! - IPv4: IHL ≥ 5, header and total length within the frame; a later
//!   fragment has no L4 header (its tuple has zero ports, [`Frag::Later`]).
//! - IPv6: extension headers walked (at most [`MAX_EXT_HEADERS`]); a
//!   fragment header sets [`Frag`].
//! - TCP: data offset ≥ 5 and within the segment; UDP: length ≥ 8 and
//!   within the datagram; TCP/UDP port 0 is refused.
//! - ICMP: echo, timestamp and information request/reply (ICMPv6: echo)
//!   with code 0 are their own connections keyed by identifier and type
//!   (see [`Tuple`]); destination unreachable, time exceeded, parameter
//!   problem, source quench, redirect (ICMPv6: destination unreachable,
//!   packet too big, time exceeded, parameter problem) are errors whose
//!   tuple is the quoted packet's, reversed (it travels back to the
//!   quoted packet's source), provided the quoted source is the error's
//!   destination; any other type is refused.

use crate::Tuple;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers (IANA).
pub mod proto {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

/// IPv4 header fields (RFC 791 §3.1).
pub mod ipv4 {
    use core::ops::Range;
    /// Version (4 bits) and IHL (4 bits, 32-bit words).
    pub const VER_IHL: usize = 0;
    /// Total length.
    pub const LENGTH: Range<usize> = 2..4;
    /// Flags (3 bits) and fragment offset (13 bits).
    pub const FLG_OFF: Range<usize> = 6..8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC: Range<usize> = 12..16;
    /// Destination address.
    pub const DST: Range<usize> = 16..20;
    /// Header length without options.
    pub const MIN_LEN: usize = 20;
    /// More-fragments flag.
    pub const MF: u16 = 0x2000;
    /// Fragment offset mask.
    pub const OFFSET: u16 = 0x1fff;
}

/// IPv6 header fields (RFC 8200 §3).
pub mod ipv6 {
    use core::ops::Range;
    /// Payload length.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Source address.
    pub const SRC: Range<usize> = 8..24;
    /// Destination address.
    pub const DST: Range<usize> = 24..40;
    /// Fixed header length.
    pub const LEN: usize = 40;
    /// Hop-by-hop options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header (§4.4).
    pub const ROUTING: u8 = 43;
    /// Fragment header (§4.5).
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (RFC 4302 §2.2: length in 4-byte units − 2).
    pub const AUTH: u8 = 51;
    /// Destination options (§4.6).
    pub const DST_OPTS: u8 = 60;
    /// Mobility header (RFC 6275 §6.1).
    pub const MOBILITY: u8 = 135;
}

/// TCP header fields (RFC 9293 §3.1).
pub mod tcp {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ: Range<usize> = 4..8;
    /// Acknowledgment number.
    pub const ACK: Range<usize> = 8..12;
    /// Data offset (4 bits), reserved, flags.
    pub const FLAGS: Range<usize> = 12..14;
    /// Window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Header length without options.
    pub const MIN_LEN: usize = 20;
    /// Option kind: end of list.
    pub const OPT_END: u8 = 0;
    /// Option kind: no-operation.
    pub const OPT_NOP: u8 = 1;
    /// Option kind: window scale (RFC 7323 §2.2).
    pub const OPT_WSCALE: u8 = 3;
    /// Option kind: SACK permitted (RFC 2018 §2).
    pub const OPT_SACK_PERM: u8 = 4;
}

/// TCP flag bits (low 9 bits of the data-offset/flags word).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (RFC 3540, historic).
    pub const NS: u16 = 0x100;
}

/// UDP header fields (RFC 768).
pub mod udp {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and data.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (0: none, IPv4 only).
    pub const CHECKSUM: Range<usize> = 6..8;
    /// Header length.
    pub const LEN: usize = 8;
}

/// ICMP and ICMPv6 header fields (RFC 792, RFC 4443 §2.1) and the types
/// the tracker knows.
pub mod icmp {
    use core::ops::Range;
    /// Type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Identifier of an echo/timestamp/information message.
    pub const ID: Range<usize> = 4..6;
    /// Header length (type, code, checksum, 4 bytes of rest-of-header);
    /// an error's quoted packet follows it.
    pub const LEN: usize = 8;

    /// ICMP echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// ICMP destination unreachable.
    pub const DST_UNREACH: u8 = 3;
    /// ICMP source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// ICMP redirect.
    pub const REDIRECT: u8 = 5;
    /// ICMP echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// ICMP time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// ICMP parameter problem.
    pub const PARAM_PROB: u8 = 12;
    /// ICMP timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// ICMP timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// ICMP information request.
    pub const INFO_REQUEST: u8 = 15;
    /// ICMP information reply.
    pub const INFO_REPLY: u8 = 16;

    /// ICMPv6 destination unreachable.
    pub const V6_DST_UNREACH: u8 = 1;
    /// ICMPv6 packet too big.
    pub const V6_PACKET_TOO_BIG: u8 = 2;
    /// ICMPv6 time exceeded.
    pub const V6_TIME_EXCEEDED: u8 = 3;
    /// ICMPv6 parameter problem.
    pub const V6_PARAM_PROB: u8 = 4;
    /// ICMPv6 echo request.
    pub const V6_ECHO_REQUEST: u8 = 128;
    /// ICMPv6 echo reply.
    pub const V6_ECHO_REPLY: u8 = 129;
}

/// Extension headers walked before giving up (OVS walks without a bound;
/// a frame cannot hold many anyway, this keeps the work per packet fixed).
pub const MAX_EXT_HEADERS: usize = 8;

/// Why a frame cannot be tracked (OVS: `conn_key_extract` fails and the
/// packet is `+trk+inv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The frame ends before a header (or a length a header claims).
    Truncated,
    /// The IP version nibble is neither 4 nor 6.
    BadVersion(u8),
    /// IPv4 IHL < 5, or total length below the header length.
    BadIpv4Length,
    /// More than [`MAX_EXT_HEADERS`] IPv6 extension headers, or one that
    /// runs past the packet.
    BadExtHeaders,
    /// TCP data offset < 5 or past the segment.
    BadTcpOffset,
    /// UDP length < 8 or past the datagram.
    BadUdpLength,
    /// TCP or UDP port 0.
    ZeroPort,
    /// An ICMP/ICMPv6 type (or a non-zero code of a query) the tracker
    /// does not track.
    UntrackedIcmp {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
    /// The packet quoted in an ICMP error is not trackable: cut before its
    /// ports, a fragment, an ICMP error itself, or its source is not the
    /// error's destination.
    BadIcmpError,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Truncated => write!(f, "truncated"),
            ParseError::BadVersion(v) => write!(f, "IP version {v}"),
            ParseError::BadIpv4Length => write!(f, "bad IPv4 header or total length"),
            ParseError::BadExtHeaders => write!(f, "bad IPv6 extension headers"),
            ParseError::BadTcpOffset => write!(f, "bad TCP data offset"),
            ParseError::BadUdpLength => write!(f, "bad UDP length"),
            ParseError::ZeroPort => write!(f, "port 0"),
            ParseError::UntrackedIcmp { icmp_type, code } => {
                write!(f, "untracked ICMP type {icmp_type} code {code}")
            }
            ParseError::BadIcmpError => write!(f, "ICMP error quotes no trackable packet"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Fragmentation of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frag {
    /// Not a fragment.
    None,
    /// The first fragment (offset 0, more fragments): its L4 header is
    /// parsed, its payload is partial.
    First,
    /// A later fragment: no L4 header; the tuple's ports are 0.
    Later,
}

/// A TCP segment's fields for state and window tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Window (unscaled).
    pub window: u16,
    /// Flags ([`tcp_flags`]).
    pub flags: u16,
    /// Window scale option, on a SYN only (RFC 7323 §2.2: ignored
    /// elsewhere).
    pub wscale: Option<u8>,
    /// SACK-permitted option, on a SYN only.
    pub sack_permitted: bool,
    /// Header length with options.
    pub header_len: usize,
    /// Payload bytes (of this fragment, for a first fragment).
    pub payload_len: usize,
}

/// An ICMP/ICMPv6 query (echo, timestamp, information) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpQuery {
    /// Identifier.
    pub id: u16,
    /// Type.
    pub icmp_type: u8,
    /// Code (always 0: others are refused).
    pub code: u8,
}

impl IcmpQuery {
    /// True for a request, the only message that may start a connection
    /// (OVS `icmp_valid_new`/`icmp6_valid_new`: echo, timestamp and
    /// information requests; ICMPv6 echo request).
    pub fn is_request(&self) -> bool {
        matches!(
            self.icmp_type,
            icmp::ECHO_REQUEST | icmp::TIMESTAMP | icmp::INFO_REQUEST | icmp::V6_ECHO_REQUEST
        )
    }
}

/// An ICMP/ICMPv6 error and the packet it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// The quoted packet's tuple as it is written there (the original
    /// packet's direction); [`Parsed::tuple`] is its reverse.
    pub inner: Tuple,
    /// Offset of the quoted IP header in the frame.
    pub inner_l3: usize,
    /// Offset of the quoted L4 header in the frame.
    pub inner_l4: usize,
    /// True if the quoted packet is IPv6 (always as the outer one).
    pub inner_ipv6: bool,
}

/// What the L4 header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Kind {
    /// TCP.
    Tcp(TcpInfo),
    /// UDP.
    Udp,
    /// ICMP/ICMPv6 query (echo etc.).
    IcmpEcho(IcmpQuery),
    /// ICMP/ICMPv6 error related to the quoted packet's connection.
    IcmpError(IcmpError),
    /// Another protocol, or a later fragment: addresses only.
    Other,
}

/// A frame as the tracker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The connection tuple of this packet in its own direction (for an
    /// ICMP error: the quoted packet's, reversed).
    pub tuple: Tuple,
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the L4 header (after IPv6 extension headers).
    pub l4: usize,
    /// End of the IP packet in the frame by its length field (the frame
    /// may carry Ethernet padding after it).
    pub end: usize,
    /// The L4 header.
    pub kind: L4Kind,
    /// Fragmentation.
    pub frag: Frag,
    /// True for IPv6.
    pub ipv6: bool,
}

impl Parsed {
    /// True if the packet is any fragment.
    pub fn is_fragment(&self) -> bool {
        self.frag != Frag::None
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, ParseError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(ParseError::Truncated),
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, ParseError> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(ParseError::Truncated),
    }
}

fn byte(b: &[u8], at: usize) -> Result<u8, ParseError> {
    b.get(at).copied().ok_or(ParseError::Truncated)
}

/// The IP layer of a packet: addresses, protocol, where L4 starts and the
/// packet ends.
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l4: usize,
    end: usize,
    frag: Frag,
    ipv6: bool,
}

/// Parse the IP header at `l3` of `frame` (version 4 or 6 by its first
/// nibble). `quoted`: the packet quoted in an ICMP error, whose length
/// fields are not checked against the (cut) frame.
fn parse_ip(frame: &[u8], l3: usize, quoted: bool) -> Result<Ip, ParseError> {
    let ver = byte(frame, l3)? >> 4;
    match ver {
        4 => parse_ipv4(frame, l3, quoted),
        6 => parse_ipv6(frame, l3, quoted),
        v => Err(ParseError::BadVersion(v)),
    }
}

/// RFC 791 §3.1: IHL counts 32-bit words, at least 5; total length covers
/// header and data.
fn parse_ipv4(frame: &[u8], l3: usize, quoted: bool) -> Result<Ip, ParseError> {
    let hdr = frame
        .get(l3..l3 + ipv4::MIN_LEN)
        .ok_or(ParseError::Truncated)?;
    let ihl = usize::from(hdr[ipv4::VER_IHL] & 0x0f) * 4;
    if ihl < ipv4::MIN_LEN {
        return Err(ParseError::BadIpv4Length);
    }
    let end = if quoted {
        frame.len()
    } else {
        let total = usize::from(be16(hdr, ipv4::LENGTH.start)?);
        if total < ihl {
            return Err(ParseError::BadIpv4Length);
        }
        l3 + total
    };
    if l3 + ihl > frame.len() || end > frame.len() {
        return Err(ParseError::Truncated);
    }
    let fo = be16(hdr, ipv4::FLG_OFF.start)?;
    let frag = match (fo & ipv4::OFFSET, fo & ipv4::MF) {
        (0, 0) => Frag::None,
        (0, _) => Frag::First,
        _ => Frag::Later,
    };
    let a = |r: core::ops::Range<usize>| {
        IpAddr::V4(Ipv4Addr::new(
            hdr[r.start],
            hdr[r.start + 1],
            hdr[r.start + 2],
            hdr[r.start + 3],
        ))
    };
    Ok(Ip {
        src: a(ipv4::SRC),
        dst: a(ipv4::DST),
        proto: hdr[ipv4::PROTOCOL],
        l4: l3 + ihl,
        end,
        frag,
        ipv6: false,
    })
}

/// RFC 8200 §4: extension headers chain through their first byte; all but
/// the fragment header (fixed 8 bytes) and AH (RFC 4302 §2.2) give their
/// length in 8-byte units, not counting the first 8.
fn parse_ipv6(frame: &[u8], l3: usize, quoted: bool) -> Result<Ip, ParseError> {
    let hdr = frame.get(l3..l3 + ipv6::LEN).ok_or(ParseError::Truncated)?;
    let end = if quoted {
        frame.len()
    } else {
        l3 + ipv6::LEN + usize::from(be16(hdr, ipv6::PAYLOAD_LEN.start)?)
    };
    if end > frame.len() {
        return Err(ParseError::Truncated);
    }
    let a = |r: core::ops::Range<usize>| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&hdr[r]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let mut next = hdr[ipv6::NEXT_HEADER];
    let mut at = l3 + ipv6::LEN;
    let mut frag = Frag::None;
    let pkt = &frame[..end];
    for _ in 0..=MAX_EXT_HEADERS {
        let len = match next {
            ipv6::HOP_BY_HOP | ipv6::ROUTING | ipv6::DST_OPTS | ipv6::MOBILITY => {
                (usize::from(byte(pkt, at + 1).map_err(|_| ParseError::BadExtHeaders)?) + 1) * 8
            }
            ipv6::AUTH => {
                (usize::from(byte(pkt, at + 1).map_err(|_| ParseError::BadExtHeaders)?) + 2) * 4
            }
            ipv6::FRAGMENT => {
                let fo = be16(pkt, at + 2).map_err(|_| ParseError::BadExtHeaders)?;
                frag = if fo & 0xfff8 != 0 {
                    Frag::Later
                } else if frag == Frag::None {
                    Frag::First
                } else {
                    frag
                };
                8
            }
            _ => {
                return Ok(Ip {
                    src: a(ipv6::SRC),
                    dst: a(ipv6::DST),
                    proto: next,
                    l4: at,
                    end,
                    frag,
                    ipv6: true,
                })
            }
        };
        if at + len > end {
            return Err(ParseError::BadExtHeaders);
        }
        next = pkt[at];
        at += len;
        if frag == Frag::Later {
            // No header of the payload's is in a later fragment.
            return Ok(Ip {
                src: a(ipv6::SRC),
                dst: a(ipv6::DST),
                proto: next,
                l4: at,
                end,
                frag,
                ipv6: true,
            });
        }
    }
    Err(ParseError::BadExtHeaders)
}

/// Parse a frame whose IPv4 or IPv6 header starts at `l3`.
pub fn parse(frame: &[u8], l3: usize) -> Result<Parsed, ParseError> {
    let ip = parse_ip(frame, l3, false)?;
    let mut tuple = Tuple {
        src: ip.src,
        dst: ip.dst,
        src_port: 0,
        dst_port: 0,
        proto: ip.proto,
    };
    let l4 = &frame[ip.l4..ip.end];
    let kind = if ip.frag == Frag::Later {
        L4Kind::Other
    } else {
        match (ip.proto, ip.ipv6) {
            (proto::TCP, _) => {
                let t = parse_tcp(l4, true)?;
                (tuple.src_port, tuple.dst_port) = ports(l4)?;
                L4Kind::Tcp(t)
            }
            (proto::UDP, _) => {
                // A first fragment holds part of the datagram its length counts.
                check_udp(l4, ip.frag == Frag::None)?;
                (tuple.src_port, tuple.dst_port) = ports(l4)?;
                L4Kind::Udp
            }
            (proto::ICMP, false) | (proto::ICMPV6, true) => match parse_icmp(l4, ip.ipv6)? {
                Icmp::Query(q) => {
                    (tuple.src_port, tuple.dst_port) =
                        (q.id, Tuple::icmp_type_code(q.icmp_type, q.code));
                    L4Kind::IcmpEcho(q)
                }
                Icmp::Error(icmp_type, code) => {
                    let e = parse_icmp_error(frame, &ip, icmp_type, code)?;
                    tuple = e.inner.reverse();
                    L4Kind::IcmpError(e)
                }
            },
            _ => L4Kind::Other,
        }
    };
    Ok(Parsed {
        tuple,
        l3,
        l4: ip.l4,
        end: ip.end,
        kind,
        frag: ip.frag,
        ipv6: ip.ipv6,
    })
}

/// Source and destination port; port 0 is refused (OVS
/// `extract_l4_tcp/udp`: "Port 0 is invalid").
fn ports(l4: &[u8]) -> Result<(u16, u16), ParseError> {
    let (s, d) = (be16(l4, 0)?, be16(l4, 2)?);
    if s == 0 || d == 0 {
        return Err(ParseError::ZeroPort);
    }
    Ok((s, d))
}

/// RFC 9293 §3.1; `full`: the segment is whole (not quoted in an ICMP
/// error), so the data offset must fit.
fn parse_tcp(seg: &[u8], full: bool) -> Result<TcpInfo, ParseError> {
    if seg.len() < tcp::MIN_LEN {
        return Err(ParseError::Truncated);
    }
    let off_flags = be16(seg, tcp::FLAGS.start)?;
    let header_len = usize::from(off_flags >> 12) * 4;
    if header_len < tcp::MIN_LEN || (full && header_len > seg.len()) {
        return Err(ParseError::BadTcpOffset);
    }
    let flags = off_flags & 0x1ff;
    let mut t = TcpInfo {
        seq: be32(seg, tcp::SEQ.start)?,
        ack: be32(seg, tcp::ACK.start)?,
        window: be16(seg, tcp::WINDOW.start)?,
        flags,
        wscale: None,
        sack_permitted: false,
        header_len,
        payload_len: seg.len().saturating_sub(header_len),
    };
    if flags & tcp_flags::SYN != 0 {
        let opts = seg.get(tcp::MIN_LEN..header_len).unwrap_or(&[]);
        tcp_options(opts, &mut t);
    }
    Ok(t)
}

/// Walk TCP options (RFC 9293 §3.2): kinds 0 and 1 are one byte, the
/// others carry a length ≥ 2; a malformed list ends the walk (as Linux's
/// `tcp_parse_options`).
fn tcp_options(mut opts: &[u8], t: &mut TcpInfo) {
    while let Some(&kind) = opts.first() {
        match kind {
            tcp::OPT_END => return,
            tcp::OPT_NOP => {
                opts = &opts[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(1) else { return };
        let len = usize::from(len);
        if len < 2 || len > opts.len() {
            return;
        }
        match (kind, len) {
            // RFC 7323 §2.3: a shift above 14 is used as 14.
            (tcp::OPT_WSCALE, 3) => t.wscale = Some(opts[2].min(14)),
            (tcp::OPT_SACK_PERM, 2) => t.sack_permitted = true,
            _ => {}
        }
        opts = &opts[len..];
    }
}

/// RFC 768: the length covers header and data.
fn check_udp(dgram: &[u8], full: bool) -> Result<(), ParseError> {
    if dgram.len() < udp::LEN {
        return Err(ParseError::Truncated);
    }
    let len = usize::from(be16(dgram, udp::LENGTH.start)?);
    if full && (len < udp::LEN || len > dgram.len()) {
        return Err(ParseError::BadUdpLength);
    }
    Ok(())
}

enum Icmp {
    Query(IcmpQuery),
    Error(u8, u8),
}

/// Classify an ICMP (RFC 792) or ICMPv6 (RFC 4443 §2.1) message as OVS's
/// `extract_l4_icmp`/`extract_l4_icmp6` do. Both need the 8-byte header.
fn parse_icmp(msg: &[u8], v6: bool) -> Result<Icmp, ParseError> {
    if msg.len() < icmp::LEN {
        return Err(ParseError::Truncated);
    }
    let (ty, code) = (msg[icmp::TYPE], msg[icmp::CODE]);
    let query = |ty| {
        if code != 0 {
            return Err(ParseError::UntrackedIcmp {
                icmp_type: ty,
                code,
            });
        }
        Ok(Icmp::Query(IcmpQuery {
            id: be16(msg, icmp::ID.start)?,
            icmp_type: ty,
            code,
        }))
    };
    match (v6, ty) {
        (false, icmp::ECHO_REQUEST | icmp::ECHO_REPLY | icmp::TIMESTAMP)
        | (false, icmp::TIMESTAMP_REPLY | icmp::INFO_REQUEST | icmp::INFO_REPLY)
        | (true, icmp::V6_ECHO_REQUEST | icmp::V6_ECHO_REPLY) => query(ty),
        (false, icmp::DST_UNREACH | icmp::TIME_EXCEEDED | icmp::PARAM_PROB)
        | (false, icmp::SOURCE_QUENCH | icmp::REDIRECT)
        | (true, icmp::V6_DST_UNREACH | icmp::V6_PACKET_TOO_BIG)
        | (true, icmp::V6_TIME_EXCEEDED | icmp::V6_PARAM_PROB) => Ok(Icmp::Error(ty, code)),
        _ => Err(ParseError::UntrackedIcmp {
            icmp_type: ty,
            code,
        }),
    }
}

/// The packet an ICMP error quotes (RFC 792: "Internet Header + 64 bits of
/// Original Data Datagram"; RFC 4443 §2.4(c): as much of the invoking
/// packet as fits). As OVS: same IP version, not a later fragment (IPv6:
/// no fragment header), source = the error's destination, ports present
/// (IPv4: 8 bytes of L4; IPv6: a whole TCP header), no nested error.
fn parse_icmp_error(
    frame: &[u8],
    outer: &Ip,
    icmp_type: u8,
    code: u8,
) -> Result<IcmpError, ParseError> {
    let bad = |_| ParseError::BadIcmpError;
    let inner_l3 = outer.l4 + icmp::LEN;
    let quoted = &frame[..outer.end];
    let ip = parse_ip(quoted, inner_l3, true).map_err(bad)?;
    if ip.ipv6 != outer.ipv6 || ip.src != outer.dst {
        return Err(ParseError::BadIcmpError);
    }
    let bad_frag = if ip.ipv6 {
        ip.frag != Frag::None
    } else {
        ip.frag == Frag::Later
    };
    if bad_frag {
        return Err(ParseError::BadIcmpError);
    }
    let l4 = &quoted[ip.l4..];
    let mut inner = Tuple {
        src: ip.src,
        dst: ip.dst,
        src_port: 0,
        dst_port: 0,
        proto: ip.proto,
    };
    match (ip.proto, ip.ipv6) {
        (proto::TCP | proto::UDP, _) => {
            // OVS: ICMP_ERROR_DATA_L4_LEN (8) for IPv4, the header for IPv6.
            let need = match (ip.proto, ip.ipv6) {
                (proto::TCP, true) => tcp::MIN_LEN,
                _ => 8,
            };
            if l4.len() < need {
                return Err(ParseError::BadIcmpError);
            }
            (inner.src_port, inner.dst_port) = ports(l4).map_err(bad)?;
        }
        (proto::ICMP, false) | (proto::ICMPV6, true) => {
            match parse_icmp(l4, ip.ipv6).map_err(bad)? {
                Icmp::Query(q) => {
                    (inner.src_port, inner.dst_port) =
                        (q.id, Tuple::icmp_type_code(q.icmp_type, q.code));
                }
                Icmp::Error(..) => return Err(ParseError::BadIcmpError),
            }
        }
        _ => {}
    }
    Ok(IcmpError {
        icmp_type,
        code,
        inner,
        inner_l3,
        inner_l4: ip.l4,
        inner_ipv6: ip.ipv6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn t(src: &str, dst: &str, sp: u16, dp: u16, proto: u8) -> Tuple {
        Tuple {
            src: v4(src),
            dst: v4(dst),
            src_port: sp,
            dst_port: dp,
            proto,
        }
    }

    /// `frame` with byte `at` set to `v`.
    fn with(frame: &[u8], at: usize, v: u8) -> Vec<u8> {
        let mut f = frame.to_vec();
        f[at] = v;
        f
    }

    #[test]
    fn parse_tcp4_syn_options() {
        let p = parse(TCP4_SYN, 14).unwrap();
        assert_eq!(p.tuple, t("10.0.0.1", "10.0.0.2", 40000, 80, proto::TCP));
        assert_eq!(
            (p.l3, p.l4, p.end, p.ipv6, p.frag),
            (14, 34, TCP4_SYN.len(), false, Frag::None)
        );
        let L4Kind::Tcp(tcp) = p.kind else {
            panic!("{:?}", p.kind)
        };
        assert_eq!((tcp.seq, tcp.ack, tcp.window), (1000, 0, 64240));
        assert_eq!(tcp.flags, tcp_flags::SYN);
        assert_eq!((tcp.wscale, tcp.sack_permitted), (Some(7), true));
        assert_eq!((tcp.header_len, tcp.payload_len), (40, 0));
    }

    #[test]
    fn parse_tcp4_data_ignores_options_without_syn() {
        let p = parse(TCP4_DATA, 14).unwrap();
        let L4Kind::Tcp(tcp) = p.kind else { panic!() };
        assert_eq!(tcp.flags, tcp_flags::PSH | tcp_flags::ACK);
        assert_eq!((tcp.seq, tcp.ack, tcp.window), (1001, 5001, 502));
        assert_eq!(
            (tcp.wscale, tcp.sack_permitted, tcp.payload_len),
            (None, false, 18)
        );
    }

    #[test]
    fn parse_udp4_excludes_ethernet_padding() {
        let p = parse(UDP4, 14).unwrap();
        assert_eq!(p.tuple, t("10.0.0.1", "10.0.0.2", 5000, 53, proto::UDP));
        assert_eq!(p.kind, L4Kind::Udp);
        assert_eq!(p.end, 14 + 20 + 8 + 5);
        assert!(UDP4.len() > p.end);
    }

    #[test]
    fn parse_icmp4_echo_keyed_by_id_and_type() {
        let p = parse(ICMP4_ECHO, 14).unwrap();
        assert_eq!(
            p.tuple,
            t("10.0.0.1", "10.0.0.2", 0x1234, 8 << 8, proto::ICMP)
        );
        assert_eq!(p.tuple.ct_tp_src(), 8);
        assert_eq!(p.tuple.ct_tp_dst(), 0);
        let L4Kind::IcmpEcho(q) = p.kind else {
            panic!()
        };
        assert!(q.is_request());
        // The reply's tuple is the request's reversed.
        let reply = p.tuple.reverse();
        assert_eq!(reply, t("10.0.0.2", "10.0.0.1", 0x1234, 0, proto::ICMP));
        assert_eq!(reply.reverse(), p.tuple);
        let mut f = with(ICMP4_ECHO, 34, icmp::ECHO_REPLY);
        f[36] = 0; // checksum not checked by parse
        let r = parse(&f, 14).unwrap();
        assert_eq!(r.tuple, t("10.0.0.1", "10.0.0.2", 0x1234, 0, proto::ICMP));
        let L4Kind::IcmpEcho(q) = r.kind else {
            panic!()
        };
        assert!(!q.is_request());
    }

    #[test]
    fn parse_icmp4_untracked_types_and_codes() {
        // Echo with code 1 (OVS: code must be 0), router advertisement (9).
        assert_eq!(
            parse(&with(ICMP4_ECHO, 35, 1), 14),
            Err(ParseError::UntrackedIcmp {
                icmp_type: 8,
                code: 1
            })
        );
        assert_eq!(
            parse(&with(ICMP4_ECHO, 34, 9), 14),
            Err(ParseError::UntrackedIcmp {
                icmp_type: 9,
                code: 0
            })
        );
    }

    #[test]
    fn parse_icmp4_error_quotes_udp() {
        let p = parse(ICMP4_UNREACH_UDP, 14).unwrap();
        let L4Kind::IcmpError(e) = p.kind else {
            panic!("{:?}", p.kind)
        };
        assert_eq!((e.icmp_type, e.code), (3, 3));
        assert_eq!(e.inner, t("10.0.0.1", "10.0.0.2", 5000, 53, proto::UDP));
        assert_eq!(p.tuple, e.inner.reverse());
        assert_eq!((e.inner_l3, e.inner_l4, e.inner_ipv6), (42, 62, false));
    }

    #[test]
    fn parse_icmp4_error_from_router_with_8_quoted_bytes() {
        let p = parse(ICMP4_TTL_TCP, 14).unwrap();
        let L4Kind::IcmpError(e) = p.kind else {
            panic!()
        };
        assert_eq!(e.inner, t("10.0.0.1", "10.0.0.2", 40000, 80, proto::TCP));
        assert_eq!(p.tuple, t("10.0.0.2", "10.0.0.1", 80, 40000, proto::TCP));
        // Cut to 7 bytes of L4: the ports are there but OVS wants 8.
        let f = &ICMP4_TTL_TCP[..ICMP4_TTL_TCP.len() - 1];
        let mut f = f.to_vec();
        let ip_len = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        assert_eq!(parse(&f, 14), Err(ParseError::BadIcmpError));
    }

    #[test]
    fn parse_icmp4_error_quoting_echo() {
        let p = parse(ICMP4_UNREACH_ECHO, 14).unwrap();
        let L4Kind::IcmpError(e) = p.kind else {
            panic!()
        };
        assert_eq!(
            e.inner,
            t("10.0.0.1", "10.0.0.2", 0x1234, 8 << 8, proto::ICMP)
        );
        // The error's tuple is the echo reply's: it finds the connection
        // in the reply direction.
        assert_eq!(p.tuple, t("10.0.0.2", "10.0.0.1", 0x1234, 0, proto::ICMP));
    }

    #[test]
    fn parse_icmp4_error_checks_quoted_packet() {
        // Quoted source (offset 42 + 12) not the error's destination.
        assert_eq!(
            parse(&with(ICMP4_UNREACH_UDP, 57, 9), 14),
            Err(ParseError::BadIcmpError)
        );
        // Quoted packet is itself an ICMP error (quoted ICMP type 3).
        assert_eq!(
            parse(&with(ICMP4_UNREACH_ECHO, 62, 3), 14),
            Err(ParseError::BadIcmpError)
        );
        // Quoted UDP with port 0.
        let mut f = ICMP4_UNREACH_UDP.to_vec();
        f[62..64].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&f, 14), Err(ParseError::BadIcmpError));
        // Quoted later fragment.
        assert_eq!(
            parse(&with(ICMP4_UNREACH_UDP, 49, 1), 14),
            Err(ParseError::BadIcmpError)
        );
        // Quoted IHL 4.
        assert_eq!(
            parse(&with(ICMP4_UNREACH_UDP, 42, 0x44), 14),
            Err(ParseError::BadIcmpError)
        );
    }

    #[test]
    fn parse_ipv4_lengths() {
        // IHL 4.
        assert_eq!(
            parse(&with(TCP4_SYN, 14, 0x44), 14),
            Err(ParseError::BadIpv4Length)
        );
        // IHL 15 > total length and frame.
        assert_eq!(
            parse(&with(UDP4_NOCSUM, 14, 0x4f), 14),
            Err(ParseError::BadIpv4Length)
        );
        assert_eq!(
            parse(&with(&UDP4_NOCSUM[..30], 14, 0x4f), 14),
            Err(ParseError::Truncated)
        );
        // Total length beyond the frame.
        assert_eq!(
            parse(&with(TCP4_SYN, 17, 0xff), 14),
            Err(ParseError::Truncated)
        );
        // Total length below the header.
        let mut f = TCP4_SYN.to_vec();
        f[16..18].copy_from_slice(&[0, 19]);
        assert_eq!(parse(&f, 14), Err(ParseError::BadIpv4Length));
        // Version 5, short frames, l3 beyond the frame.
        assert_eq!(
            parse(&with(TCP4_SYN, 14, 0x55), 14),
            Err(ParseError::BadVersion(5))
        );
        assert_eq!(parse(&TCP4_SYN[..30], 14), Err(ParseError::Truncated));
        assert_eq!(parse(TCP4_SYN, 1000), Err(ParseError::Truncated));
        assert_eq!(parse(&[], 0), Err(ParseError::Truncated));
    }

    #[test]
    fn parse_tcp_bad_offset_and_zero_port() {
        // Data offset 4 and 15 (beyond the segment).
        assert_eq!(
            parse(&with(TCP4_SYN, 46, 0x42), 14),
            Err(ParseError::BadTcpOffset)
        );
        assert_eq!(
            parse(&with(TCP4_SYN, 46, 0xf2), 14),
            Err(ParseError::BadTcpOffset)
        );
        let mut f = TCP4_SYN.to_vec();
        f[36..38].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&f, 14), Err(ParseError::ZeroPort));
    }

    #[test]
    fn parse_tcp_malformed_options_end_the_walk() {
        // Window scale option claims length 9 past the header: ignored.
        let mut f = TCP4_SYN.to_vec();
        f[72] = 9;
        let L4Kind::Tcp(tcp) = parse(&f, 14).unwrap().kind else {
            panic!()
        };
        assert_eq!((tcp.wscale, tcp.sack_permitted), (None, true));
        // A shift of 20 is used as 14 (RFC 7323 §2.3).
        let L4Kind::Tcp(tcp) = parse(&with(TCP4_SYN, 73, 20), 14).unwrap().kind else {
            panic!()
        };
        assert_eq!(tcp.wscale, Some(14));
    }

    #[test]
    fn parse_udp_bad_length() {
        assert_eq!(
            parse(&with(UDP4_NOCSUM, 39, 200), 14),
            Err(ParseError::BadUdpLength)
        );
        assert_eq!(
            parse(&with(UDP4_NOCSUM, 39, 7), 14),
            Err(ParseError::BadUdpLength)
        );
    }

    #[test]
    fn parse_ipv4_fragments() {
        let p = parse(UDP4_FRAG_FIRST, 14).unwrap();
        assert_eq!((p.frag, p.kind), (Frag::First, L4Kind::Udp));
        assert_eq!(p.tuple.dst_port, 53);
        let p = parse(UDP4_FRAG_LATER, 14).unwrap();
        assert_eq!((p.frag, p.kind), (Frag::Later, L4Kind::Other));
        assert!(p.is_fragment());
        assert_eq!(p.tuple, t("10.0.0.1", "10.0.0.2", 0, 0, proto::UDP));
    }

    #[test]
    fn parse_tcp6_synack() {
        let p = parse(TCP6_SYNACK, 14).unwrap();
        assert!(p.ipv6);
        assert_eq!(p.tuple.src, "fd00::2".parse::<IpAddr>().unwrap());
        assert_eq!((p.tuple.src_port, p.tuple.dst_port, p.l4), (443, 50000, 54));
        let L4Kind::Tcp(tcp) = p.kind else { panic!() };
        assert_eq!(tcp.flags, tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!((tcp.wscale, tcp.sack_permitted), (Some(8), true));
    }

    #[test]
    fn parse_udp6_walks_extension_headers() {
        let p = parse(UDP6_EXT, 14).unwrap();
        assert_eq!(p.l4, 14 + 40 + 8 + 16);
        assert_eq!(
            (p.tuple.proto, p.tuple.src_port, p.tuple.dst_port),
            (proto::UDP, 5000, 53)
        );
        // Destination options header length past the packet.
        assert_eq!(
            parse(&with(UDP6_EXT, 63, 40), 14),
            Err(ParseError::BadExtHeaders)
        );
    }

    #[test]
    fn parse_ipv6_extension_header_bound() {
        // Nine hop-by-hop-style headers (8 bytes each), then UDP.
        let mut f = UDP6_EXT[..54].to_vec();
        f[20] = ipv6::DST_OPTS;
        for i in 0..=MAX_EXT_HEADERS {
            let next = if i == MAX_EXT_HEADERS {
                proto::UDP
            } else {
                ipv6::DST_OPTS
            };
            f.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        f.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        let plen = (f.len() - 54) as u16;
        f[18..20].copy_from_slice(&plen.to_be_bytes());
        assert_eq!(parse(&f, 14), Err(ParseError::BadExtHeaders));
        // One fewer header is accepted.
        let mut g = f[..54].to_vec();
        g.extend_from_slice(&f[62..]);
        g[18..20].copy_from_slice(&(plen - 8).to_be_bytes());
        assert_eq!(parse(&g, 14).unwrap().tuple.dst_port, 53);
    }

    #[test]
    fn parse_icmp6_echo_and_error() {
        let p = parse(ICMP6_ECHO, 14).unwrap();
        assert_eq!(
            (p.tuple.proto, p.tuple.src_port, p.tuple.dst_port),
            (proto::ICMPV6, 0x0abc, 128 << 8)
        );
        assert_eq!(p.tuple.reverse().dst_port, 129 << 8);
        let p = parse(ICMP6_UNREACH_UDP, 14).unwrap();
        let L4Kind::IcmpError(e) = p.kind else {
            panic!()
        };
        assert_eq!((e.icmp_type, e.code, e.inner_ipv6), (1, 4, true));
        assert_eq!(
            (e.inner.src_port, e.inner.dst_port, e.inner.proto),
            (5000, 53, proto::UDP)
        );
        assert_eq!((e.inner_l3, e.inner_l4), (62, 102));
        assert_eq!(p.tuple, e.inner.reverse());
        // ICMPv6 neighbour solicitation (135) is not tracked.
        assert_eq!(
            parse(&with(ICMP6_ECHO, 54, 135), 14),
            Err(ParseError::UntrackedIcmp {
                icmp_type: 135,
                code: 0
            })
        );
        // ICMP (v4 protocol number) inside IPv6 is just another protocol.
        let p = parse(&with(ICMP6_ECHO, 20, proto::ICMP), 14).unwrap();
        assert_eq!(p.kind, L4Kind::Other);
    }

    #[test]
    fn parse_ipv6_fragments() {
        let p = parse(UDP6_FRAG_FIRST, 14).unwrap();
        assert_eq!(
            (p.frag, p.kind, p.tuple.dst_port),
            (Frag::First, L4Kind::Udp, 53)
        );
        assert_eq!(p.l4, 14 + 40 + 8);
        let p = parse(UDP6_FRAG_LATER, 14).unwrap();
        assert_eq!(
            (p.frag, p.kind, p.tuple.proto, p.tuple.src_port),
            (Frag::Later, L4Kind::Other, proto::UDP, 0)
        );
    }

    #[test]
    fn parse_never_panics_on_truncations_and_byte_flips() {
        for v in [
            TCP4_SYN,
            TCP4_DATA,
            UDP4,
            UDP4_NOCSUM,
            ICMP4_ECHO,
            ICMP4_UNREACH_UDP,
            ICMP4_TTL_TCP,
            ICMP4_UNREACH_ECHO,
            UDP4_FRAG_FIRST,
            UDP4_FRAG_LATER,
            TCP6_SYNACK,
            UDP6_EXT,
            ICMP6_ECHO,
            ICMP6_UNREACH_UDP,
            UDP6_FRAG_FIRST,
            UDP6_FRAG_LATER,
        ] {
            assert!(parse(v, 14).is_ok());
            for n in 0..v.len() {
                let _ = parse(&v[..n], 14);
            }
            for i in 14..v.len() {
                for b in [0x00, 0x01, 0x0f, 0x45, 0x60, 0x80, 0xff] {
                    if let Ok(p) = parse(&with(v, i, b), 14) {
                        assert!(p.l3 <= p.l4 && p.l4 <= p.end && p.end <= v.len());
                    }
                }
            }
        }
    }
}
