//! Test frames (Ethernet + IPv4/IPv6 + TCP/UDP/ICMP, checksums computed in
//! full) and a full checksum verifier for translated frames.

use std::net::IpAddr;

/// L3 offset of every test frame (after a 14-byte Ethernet header).
pub const L3: usize = 14;

fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut s = 0;
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            s = sum16(s, &a.octets());
            s = sum16(s, &b.octets());
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            s = sum16(s, &a.octets());
            s = sum16(s, &b.octets());
        }
        _ => panic!("mixed families"),
    }
    s + proto as u32 + len as u32
}

/// An Ethernet frame around the L4 bytes `l4` (checksum field zero),
/// with the L4 checksum filled in at `csum_at` (None: leave it).
pub fn ip(src: &str, dst: &str, proto: u8, mut l4: Vec<u8>, csum_at: Option<usize>) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    if let Some(at) = csum_at {
        let init = if proto == 1 {
            0
        } else {
            pseudo(s, d, proto, l4.len())
        };
        let c = fold(sum16(init, &l4));
        let c = if proto == 17 && c == 0 { 0xffff } else { c };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    match (s, d) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + l4.len()) as u16;
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
            h.extend_from_slice(&a.octets());
            h.extend_from_slice(&b.octets());
            let c = fold(sum16(0, &h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&a.octets());
            f.extend_from_slice(&b.octets());
        }
        _ => panic!("mixed families"),
    }
    f.extend_from_slice(&l4);
    f
}

/// A TCP segment with `len` payload bytes; `opts` are TCP options.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    len: usize,
    opts: &[u8],
) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push((((20 + opts.len()) / 4) << 4) as u8);
    t.push(flags);
    t.extend_from_slice(&win.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend((0..len).map(|i| i as u8));
    ip(src, dst, 6, t, Some(16))
}

/// A UDP datagram with `len` payload bytes.
pub fn udp(src: &str, dst: &str, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend((0..len).map(|i| (i * 7) as u8));
    ip(src, dst, 17, u, Some(6))
}

/// An ICMP (v4 or v6 by address) query: echo request/reply and the like.
pub fn icmp_query(src: &str, dst: &str, ty: u8, id: u16, seq: u16) -> Vec<u8> {
    let v6 = src.contains(':');
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"pingdata");
    ip(src, dst, if v6 { 58 } else { 1 }, m, Some(2))
}

/// An ICMP error (type, code) quoting `quoted` (an IP packet, cut to
/// `quote_len` bytes).
pub fn icmp_error(
    src: &str,
    dst: &str,
    ty: u8,
    code: u8,
    quoted: &[u8],
    quote_len: usize,
) -> Vec<u8> {
    let v6 = src.contains(':');
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..quote_len.min(quoted.len())]);
    ip(src, dst, if v6 { 58 } else { 1 }, m, Some(2))
}

/// The IP packet of a frame (what an ICMP error quotes).
pub fn l3(frame: &[u8]) -> &[u8] {
    &frame[L3..]
}

/// (src, dst, sport, dport) of an IPv4/IPv6 TCP/UDP frame (ICMP: id at
/// sport).
pub fn tuple(f: &[u8]) -> (IpAddr, IpAddr, u16, u16) {
    let (src, dst, l4) = addrs(f, L3);
    let p = |o: usize| u16::from_be_bytes([f[l4 + o], f[l4 + o + 1]]);
    let proto = proto_of(f, L3);
    if proto == 1 || proto == 58 {
        (src, dst, p(4), 0)
    } else {
        (src, dst, p(0), p(2))
    }
}

fn proto_of(f: &[u8], l3: usize) -> u8 {
    if f[l3] >> 4 == 4 {
        f[l3 + 9]
    } else {
        f[l3 + 6]
    }
}

fn addrs(f: &[u8], l3: usize) -> (IpAddr, IpAddr, usize) {
    if f[l3] >> 4 == 4 {
        let a: [u8; 4] = f[l3 + 12..l3 + 16].try_into().unwrap();
        let b: [u8; 4] = f[l3 + 16..l3 + 20].try_into().unwrap();
        (a.into(), b.into(), l3 + (f[l3] & 15) as usize * 4)
    } else {
        let a: [u8; 16] = f[l3 + 8..l3 + 24].try_into().unwrap();
        let b: [u8; 16] = f[l3 + 24..l3 + 40].try_into().unwrap();
        (a.into(), b.into(), l3 + 40)
    }
}

/// Recompute every checksum of the frame from scratch and compare: the
/// IPv4 header, the L4 checksum (pseudo-header included), and for ICMP
/// errors the quoted IPv4 header.
pub fn checksums_ok(f: &[u8]) -> bool {
    let l3 = L3;
    let (src, dst, l4) = addrs(f, l3);
    if f[l3] >> 4 == 4 && fold(sum16(0, &f[l3..l4])) != 0 {
        return false;
    }
    let proto = proto_of(f, l3);
    let body = &f[l4..];
    let init = if proto == 1 {
        0
    } else {
        pseudo(src, dst, proto, body.len())
    };
    if proto == 17 && body[6..8] == [0, 0] {
        return true;
    }
    if fold(sum16(init, body)) != 0 {
        return false;
    }
    if proto == 1 && matches!(body[0], 3 | 11) && body[8] >> 4 == 4 {
        let ihl = (body[8] & 15) as usize * 4;
        if fold(sum16(0, &body[8..8 + ihl])) != 0 {
            return false;
        }
    }
    true
}

/// The tuple of the packet an ICMP error quotes.
pub fn inner_tuple(f: &[u8]) -> (IpAddr, IpAddr, u16, u16) {
    let (_, _, l4) = addrs(f, L3);
    let il3 = l4 + 8;
    let (s, d, il4) = addrs(f, il3);
    let p = |o: usize| u16::from_be_bytes([f[il4 + o], f[il4 + o + 1]]);
    (s, d, p(0), p(2))
}
