//! Software offloads: what a NIC does when a sender leaves it the work —
//! completing a partial TCP/UDP checksum, and cutting a large TCP segment
//! (TSO/GSO) into MTU-sized frames with their own headers and checksums.
//!
//! Guests on vhost-user ports hand the switch frames this way (VIRTIO 1.2
//! §5.1.6.2 "Packet Transmission": `VIRTIO_NET_HDR_F_NEEDS_CSUM` with
//! `csum_start`/`csum_offset`, `gso_type` TCPV4/TCPV6 with `gso_size`).
//! When such a frame leaves by a port that cannot take it, the DPDK layer
//! (`src/dataplane/offload.rs`) calls these functions on plain byte
//! buffers; nothing here allocates.
//!
//! ```text
//! Headers::parse(frame)          Ethernet (≤ 2 VLAN tags) / IPv4 (options) or IPv6 / TCP or UDP
//! complete_checksums(frame, h)   IPv4 header checksum, L4 checksum from scratch (pseudo-header + data)
//! Segments::new(h, len, mss)     how many segments, each one's payload range
//! finish_segment(out, h, i, ..)  out = original headers + payload i: lengths, IP id, TCP seq and
//!                                flags fixed (RFC 9293 / Linux tcp_gso_segment), checksums filled
//! ```

/// Where the headers of a TCP or UDP frame are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    /// Ethernet header length (with VLAN tags).
    pub l2_len: u16,
    /// IP header length.
    pub l3_len: u16,
    /// TCP header length (with options) or 8 (UDP).
    pub l4_len: u16,
    /// IPv4 (else IPv6).
    pub ipv4: bool,
    /// TCP (else UDP).
    pub tcp: bool,
}

mod field {
    /// IPv4 total length.
    pub const IPV4_LEN: usize = 2;
    /// IPv4 identification.
    pub const IPV4_ID: usize = 4;
    /// IPv4 header checksum.
    pub const IPV4_CSUM: usize = 10;
    /// IPv4 source and destination.
    pub const IPV4_ADDRS: std::ops::Range<usize> = 12..20;
    /// IPv6 payload length.
    pub const IPV6_LEN: usize = 4;
    /// IPv6 source and destination.
    pub const IPV6_ADDRS: std::ops::Range<usize> = 8..40;
    /// TCP sequence number.
    pub const TCP_SEQ: usize = 4;
    /// TCP flags byte.
    pub const TCP_FLAGS: usize = 13;
    /// TCP checksum.
    pub const TCP_CSUM: usize = 16;
    /// UDP checksum.
    pub const UDP_CSUM: usize = 6;
}

/// TCP flags (RFC 9293 §3.1; CWR from RFC 3168).
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

fn get16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

impl Headers {
    /// Parses the headers at the start of `d`: Ethernet with up to two
    /// VLAN tags, IPv4 (with options, not a fragment) or IPv6 (no extension
    /// headers), then a whole TCP or UDP header. `None` for anything else
    /// or when a header is cut.
    pub fn parse(d: &[u8]) -> Option<Headers> {
        let mut l2 = 14usize;
        let mut et = get16(d.get(..14)?, 12);
        for _ in 0..2 {
            if et != 0x8100 && et != 0x88a8 {
                break;
            }
            et = get16(d.get(..l2 + 4)?, l2 + 2);
            l2 += 4;
        }
        let (ipv4, l3, proto) = match et {
            0x0800 => {
                let ip = d.get(l2..l2 + 20)?;
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                // Not a fragment: MF clear and offset 0 (RFC 791 §3.1).
                if ip[0] >> 4 != 4 || ihl < 20 || get16(ip, 6) & 0x3fff != 0 {
                    return None;
                }
                (true, ihl, ip[9])
            }
            0x86dd => {
                let ip = d.get(l2..l2 + 40)?;
                if ip[0] >> 4 != 6 {
                    return None;
                }
                (false, 40, ip[6])
            }
            _ => return None,
        };
        let l4 = l2 + l3;
        let (tcp, l4_len) = match proto {
            6 => {
                let off = usize::from(d.get(l4 + 12)? >> 4) * 4;
                if off < 20 {
                    return None;
                }
                (true, off)
            }
            17 => (false, 8),
            _ => return None,
        };
        d.get(..l4 + l4_len)?;
        Some(Headers {
            l2_len: l2 as u16,
            l3_len: l3 as u16,
            l4_len: l4_len as u16,
            ipv4,
            tcp,
        })
    }

    /// All header bytes (L2 + L3 + L4).
    pub fn len(&self) -> usize {
        usize::from(self.l2_len) + usize::from(self.l3_len) + usize::from(self.l4_len)
    }

    /// Never true: a TCP/UDP frame has headers.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn l3(&self) -> usize {
        usize::from(self.l2_len)
    }

    fn l4(&self) -> usize {
        usize::from(self.l2_len) + usize::from(self.l3_len)
    }

    /// The L4 length the IP header announces (bounded by `d`), so Ethernet
    /// padding is not summed.
    fn l4_bytes(&self, d: &[u8]) -> usize {
        let have = d.len().saturating_sub(self.l4());
        let said = if self.ipv4 {
            usize::from(get16(d, self.l3() + field::IPV4_LEN)).saturating_sub(self.l3_len.into())
        } else {
            usize::from(get16(d, self.l3() + field::IPV6_LEN))
        };
        said.min(have)
    }
}

/// One's-complement sum (RFC 1071) of `data` added to `acc`, in native
/// byte order, 32 bits at a time (fold with [`fold`]). `data` must start
/// at an even offset of what is summed.
#[inline]
fn add(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut b = [0u8; 4];
        b[..rem.len()].copy_from_slice(rem);
        acc += u64::from(u32::from_ne_bytes(b));
    }
    acc
}

/// Folds a native-order sum of [`add`] to the 16-bit one's-complement sum
/// in network order (RFC 1071 §2 (B): byte order does not change the sum
/// but swaps its bytes).
#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    u16::from_be(acc as u16)
}

/// Sum of the pseudo-header (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for
/// IPv6) of an L4 payload of `l4_len` bytes.
fn pseudo(d: &[u8], h: &Headers, l4_len: usize) -> u64 {
    let ip = &d[h.l3()..];
    let proto: u8 = if h.tcp { 6 } else { 17 };
    let addrs = if h.ipv4 {
        &ip[field::IPV4_ADDRS]
    } else {
        &ip[field::IPV6_ADDRS]
    };
    let tail = (l4_len as u32).to_be_bytes();
    let acc = add(0, addrs);
    let acc = add(acc, &tail);
    add(acc, &[0, proto])
}

/// Fills the IPv4 header checksum and the TCP/UDP checksum of the frame
/// `d` from scratch (whatever the fields held: a partial pseudo-header
/// sum, or garbage). A UDP result of 0 is sent as 0xffff (RFC 768).
pub fn complete_checksums(d: &mut [u8], h: &Headers) {
    if h.ipv4 {
        let l3 = h.l3();
        put16(d, l3 + field::IPV4_CSUM, 0);
        let c = !fold(add(0, &d[l3..l3 + usize::from(h.l3_len)]));
        put16(d, l3 + field::IPV4_CSUM, c);
    }
    let l4 = h.l4();
    let len = h.l4_bytes(d);
    let at = l4
        + if h.tcp {
            field::TCP_CSUM
        } else {
            field::UDP_CSUM
        };
    put16(d, at, 0);
    let acc = add(pseudo(d, h, len), &d[l4..l4 + len]);
    let mut c = !fold(acc);
    if !h.tcp && c == 0 {
        c = 0xffff;
    }
    put16(d, at, c);
}

/// How a large TCP segment is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// Payload bytes of the large segment.
    pub payload: usize,
    /// Payload bytes per segment (the MSS, `gso_size`).
    pub mss: usize,
}

impl Segments {
    /// The segments of a frame of `frame_len` bytes with headers `h` and
    /// segment size `mss`; `None` for UDP, a zero MSS or a frame shorter
    /// than its headers.
    pub fn new(h: &Headers, frame_len: usize, mss: u16) -> Option<Segments> {
        if !h.tcp || mss == 0 {
            return None;
        }
        Some(Segments {
            payload: frame_len.checked_sub(h.len())?,
            mss: usize::from(mss),
        })
    }

    /// Number of segments (at least one).
    pub fn count(&self) -> usize {
        self.payload.div_ceil(self.mss).max(1)
    }

    /// The payload byte range of segment `i` (offsets in the payload).
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = (i * self.mss).min(self.payload);
        start..(start + self.mss).min(self.payload)
    }
}

/// Turns `out` — the large segment's headers (`h.len()` bytes) followed by
/// the payload of segment `i` of `segs` — into a complete frame, as Linux's
/// `tcp_gso_segment` does: IP lengths, IPv4 identification + `i`, TCP
/// sequence number + the payload before it, FIN and PSH only on the last
/// segment, CWR only on the first (RFC 3168 §6.1.2), and both checksums.
pub fn finish_segment(out: &mut [u8], h: &Headers, segs: &Segments, i: usize) {
    let (l3, l4) = (h.l3(), h.l4());
    let ip_len = out.len() - l3;
    if h.ipv4 {
        put16(out, l3 + field::IPV4_LEN, ip_len as u16);
        let id = get16(out, l3 + field::IPV4_ID).wrapping_add(i as u16);
        put16(out, l3 + field::IPV4_ID, id);
    } else {
        put16(out, l3 + field::IPV6_LEN, (ip_len - 40) as u16);
    }
    let seq_at = l4 + field::TCP_SEQ;
    let seq = u32::from_be_bytes([
        out[seq_at],
        out[seq_at + 1],
        out[seq_at + 2],
        out[seq_at + 3],
    ]);
    let seq = seq.wrapping_add(segs.range(i).start as u32);
    out[seq_at..seq_at + 4].copy_from_slice(&seq.to_be_bytes());
    let flags = &mut out[l4 + field::TCP_FLAGS];
    if i + 1 < segs.count() {
        *flags &= !(TCP_FIN | TCP_PSH);
    }
    if i > 0 {
        *flags &= !TCP_CWR;
    }
    complete_checksums(out, h);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::internet;

    /// An Ethernet/IPv4/TCP frame with `payload` bytes of pattern.
    fn tcp4(payload: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 32 + payload];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + 32 + payload) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let tcp = &mut f[34..66];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xfffff000u32.to_be_bytes());
        tcp[12] = 8 << 4; // 32-byte header (timestamps)
        tcp[13] = flags;
        for (i, b) in f[66..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        f
    }

    /// Checks a frame's checksums the receiver's way: the IPv4 header and
    /// pseudo-header + L4 bytes sum to 0.
    fn valid(d: &[u8]) -> bool {
        let h = Headers::parse(d).unwrap();
        let (l3, l4) = (h.l3(), h.l4());
        let len = h.l4_bytes(d);
        let ip_ok = !h.ipv4 || internet(&d[l3..l3 + usize::from(h.l3_len)]) == 0;
        ip_ok && !fold(add(pseudo(d, &h, len), &d[l4..l4 + len])) == 0
    }

    #[test]
    fn parses_tcp_udp_v4_v6_and_refuses_the_rest() {
        let f = tcp4(10, 0x18);
        let h = Headers::parse(&f).unwrap();
        assert_eq!(
            (h.l2_len, h.l3_len, h.l4_len, h.ipv4, h.tcp),
            (14, 20, 32, true, true)
        );
        assert!(Headers::parse(&f[..60]).is_none(), "cut TCP header");
        let mut frag = f.clone();
        frag[14 + 6] = 0x20; // MF
        assert!(Headers::parse(&frag).is_none());
        let mut v6 = vec![0u8; 14 + 40 + 8];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6[14] = 0x60;
        v6[14 + 6] = 17;
        let h = Headers::parse(&v6).unwrap();
        assert_eq!((h.l3_len, h.l4_len, h.ipv4, h.tcp), (40, 8, false, false));
        let mut icmp = f.clone();
        icmp[14 + 9] = 1;
        assert!(Headers::parse(&icmp).is_none());
        assert!(Headers::parse(&[0u8; 5]).is_none());
    }

    #[test]
    fn completes_a_partial_checksum() {
        let mut f = tcp4(1001, 0x18);
        // A partial checksum as a guest leaves it: the pseudo-header sum.
        let h = Headers::parse(&f).unwrap();
        let p = fold(pseudo(&f, &h, 32 + 1001));
        put16(&mut f, 34 + 16, p);
        assert!(!valid(&f));
        complete_checksums(&mut f, &h);
        assert!(valid(&f));
        // Ethernet padding after the IP packet is not summed.
        let mut padded = tcp4(0, 0x10);
        padded.extend_from_slice(&[0xaa; 6]);
        let h = Headers::parse(&padded).unwrap();
        complete_checksums(&mut padded, &h);
        assert!(valid(&padded));
    }

    #[test]
    fn udp_zero_checksum_becomes_ffff() {
        // Find a payload whose UDP checksum computes to 0 by adjusting one word.
        let mut f = vec![0u8; 14 + 20 + 8 + 2];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&30u16.to_be_bytes());
        f[14 + 9] = 17;
        f[34 + 4..34 + 6].copy_from_slice(&10u16.to_be_bytes());
        let h = Headers::parse(&f).unwrap();
        complete_checksums(&mut f, &h);
        let c = get16(&f, 34 + 6);
        // Put the checksum value into the payload word: the sum becomes 0xffff,
        // whose complement 0 must be sent as 0xffff.
        let w = get16(&f, 42);
        put16(&mut f, 42, w.wrapping_add(c));
        complete_checksums(&mut f, &h);
        let c2 = get16(&f, 34 + 6);
        assert!(c2 != 0);
        assert!(valid(&f));
    }

    #[test]
    fn segments_a_large_tcp_frame() {
        let payload = 64 * 1024 - 66;
        let big = tcp4(payload, 0x19); // FIN|PSH|ACK
        let h = Headers::parse(&big).unwrap();
        let segs = Segments::new(&h, big.len(), 1448).unwrap();
        assert_eq!(segs.count(), payload.div_ceil(1448));
        let mut joined = Vec::new();
        for i in 0..segs.count() {
            let r = segs.range(i);
            let mut out = big[..h.len()].to_vec();
            out.extend_from_slice(&big[h.len() + r.start..h.len() + r.end]);
            finish_segment(&mut out, &h, &segs, i);
            assert!(out.len() <= 14 + 1500, "segment {i} is {} bytes", out.len());
            assert!(valid(&out), "segment {i} checksums");
            let seq = u32::from_be_bytes(out[38..42].try_into().unwrap());
            assert_eq!(seq, 0xfffff000u32.wrapping_add(r.start as u32));
            assert_eq!(get16(&out, 18), 0x1234u16.wrapping_add(i as u16));
            let last = i + 1 == segs.count();
            assert_eq!(out[47] & (TCP_FIN | TCP_PSH) != 0, last);
            joined.extend_from_slice(&out[h.len()..]);
        }
        assert_eq!(joined, big[h.len()..]);
    }

    #[test]
    fn segments_ipv6() {
        let mut f = vec![0u8; 14 + 40 + 20 + 3000];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[14 + 4..14 + 6].copy_from_slice(&((20 + 3000) as u16).to_be_bytes());
        f[14 + 6] = 6;
        f[14 + 8] = 0xfd;
        f[14 + 24] = 0xfd;
        f[14 + 39] = 2;
        f[54 + 12] = 5 << 4;
        for (i, b) in f[74..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let h = Headers::parse(&f).unwrap();
        let segs = Segments::new(&h, f.len(), 1000).unwrap();
        assert_eq!(segs.count(), 3);
        for i in 0..3 {
            let r = segs.range(i);
            let mut out = f[..h.len()].to_vec();
            out.extend_from_slice(&f[h.len() + r.start..h.len() + r.end]);
            finish_segment(&mut out, &h, &segs, i);
            assert_eq!(get16(&out, 18), 1020);
            assert!(valid(&out));
        }
    }
}
