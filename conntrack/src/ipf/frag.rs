//! Is this a fragment `ipf` takes, and where are its data bytes
//! (`ipf_is_valid_v4_frag`, `ipf_is_valid_v6_frag`, `ipf_v4_key_extract`,
//! `ipf_v6_key_extract` in OVS's `lib/ipf.c`).

use crate::checksum;
use crate::packet::{ipv4, ipv6};

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not a fragment `ipf` handles (not IP, not a fragment, an IPv6
    /// atomic fragment, unparsable extension headers): the tracker decides.
    NotFragment,
    /// A fragment that is invalid as it stands (`+trk+inv`): a length
    /// that disagrees with the frame, a bad IPv4 header checksum, or
    /// (`too_small`) a non-last fragment under the minimum size.
    Invalid {
        /// Refused for its size (counted as "too small").
        too_small: bool,
    },
    /// A well-formed fragment.
    Frag(FragInfo),
}

/// A fragment's identity and place in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Source address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Identification (IPv4: 16 bits; IPv6: 32).
    pub id: u32,
    /// IPv4 protocol; 0 for IPv6 (OVS leaves it out of an IPv6 list key).
    pub proto: u8,
    /// First data byte in the datagram (OVS's `start_data_byte`: IPv4
    /// offset × 8; IPv6 offset + 8), a 16-bit counter as in OVS.
    pub start: u16,
    /// Last data byte (`start + len − 1`, wrapping as OVS's `uint16_t`).
    pub end: u16,
    /// Offset 0 and more fragments follow.
    pub first: bool,
    /// Non-zero offset and no more fragments.
    pub last: bool,
    /// Where its data starts in the frame (after the IPv4 header or the
    /// IPv6 fragment header).
    pub data: usize,
    /// Data bytes.
    pub len: usize,
    /// Where the IP packet ends in the frame (Ethernet padding excluded).
    pub end_of_ip: usize,
    /// IPv6: where the fragment header starts.
    pub frag_hdr: usize,
    /// IPv6: the byte that names the fragment header (the IPv6 header's or
    /// the previous extension header's next-header field).
    pub names_frag: usize,
}

/// Check the IP packet at `l3` of `frame` as `ipf` does. `min_v4`,
/// `min_v6`: the minimum size of a non-last fragment.
pub fn check(frame: &[u8], l3: usize, min_v4: u32, min_v6: u32) -> Check {
    match frame.get(l3).map(|b| b >> 4) {
        Some(4) => check_v4(frame, l3, min_v4),
        Some(6) => check_v6(frame, l3, min_v6),
        _ => Check::NotFragment,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// RFC 791 §3.1; OVS's `ipf_is_valid_v4_frag`.
fn check_v4(frame: &[u8], l3: usize, min: u32) -> Check {
    const INVALID: Check = Check::Invalid { too_small: false };
    let Some(h) = frame.get(l3..l3 + ipv4::MIN_LEN) else {
        return INVALID;
    };
    let fo = be16(h, ipv4::FLG_OFF.start);
    if fo & (ipv4::MF | ipv4::OFFSET) == 0 {
        return Check::NotFragment;
    }
    let total = usize::from(be16(h, ipv4::LENGTH.start));
    let ihl = usize::from(h[ipv4::VER_IHL] & 0x0f) * 4;
    // The IP packet must fit the frame (what follows is padding) and hold
    // its header.
    if ihl < ipv4::MIN_LEN || total < ihl || l3 + total > frame.len() {
        return INVALID;
    }
    // A bad header checksum makes the fragment invalid (OVS checks it when
    // no NIC did).
    if checksum::fold(checksum::sum(&frame[l3..l3 + ihl])) != 0xffff {
        return INVALID;
    }
    let offset = fo & ipv4::OFFSET;
    let more = fo & ipv4::MF != 0;
    let last = offset != 0 && !more;
    if !last && (total as u32) < min {
        return Check::Invalid { too_small: true };
    }
    let start = offset.wrapping_mul(8);
    let len = total - ihl;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src[..4].copy_from_slice(&h[ipv4::SRC]);
    dst[..4].copy_from_slice(&h[ipv4::DST]);
    Check::Frag(FragInfo {
        v6: false,
        src,
        dst,
        id: u32::from(be16(h, 4)),
        proto: h[ipv4::PROTOCOL],
        start,
        end: start.wrapping_add(len as u16).wrapping_sub(1),
        first: offset == 0 && more,
        last,
        data: l3 + ihl,
        len,
        end_of_ip: l3 + total,
        frag_hdr: 0,
        names_frag: 0,
    })
}

/// RFC 8200 §4.5; OVS's `ipf_is_valid_v6_frag`. The extension headers
/// before the fragment header are walked (at most 8).
fn check_v6(frame: &[u8], l3: usize, min: u32) -> Check {
    const INVALID: Check = Check::Invalid { too_small: false };
    let Some(h) = frame.get(l3..l3 + ipv6::LEN) else {
        return INVALID;
    };
    let plen = usize::from(be16(h, ipv6::PAYLOAD_LEN.start));
    let end_of_ip = l3 + ipv6::LEN + plen;
    let pkt = &frame[..frame.len().min(end_of_ip)];
    let mut next = h[ipv6::NEXT_HEADER];
    let mut names = l3 + ipv6::NEXT_HEADER;
    let mut at = l3 + ipv6::LEN;
    let mut found = None;
    for _ in 0..8 {
        let len = match next {
            ipv6::HOP_BY_HOP | ipv6::ROUTING | ipv6::DST_OPTS | ipv6::MOBILITY => {
                match pkt.get(at + 1) {
                    Some(&l) => (usize::from(l) + 1) * 8,
                    None => return Check::NotFragment,
                }
            }
            ipv6::AUTH => match pkt.get(at + 1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => return Check::NotFragment,
            },
            ipv6::FRAGMENT => {
                found = Some(at);
                break;
            }
            _ => return Check::NotFragment,
        };
        if at + len > pkt.len() {
            return Check::NotFragment;
        }
        names = at;
        next = pkt[at];
        at += len;
    }
    let Some(fh) = found else {
        return Check::NotFragment;
    };
    if pkt.len() < fh + 8 {
        return Check::NotFragment;
    }
    if end_of_ip > frame.len() {
        return INVALID;
    }
    let offlg = be16(frame, fh + 2);
    if offlg & 0xfff9 == 0 {
        // An atomic fragment (offset 0, no more): not a fragment to `ipf`.
        return Check::NotFragment;
    }
    let offset = offlg & 0xfff8;
    let more = offlg & 1 != 0;
    let last = offset != 0 && !more;
    if !last && ((ipv6::LEN + plen) as u32) < min {
        return Check::Invalid { too_small: true };
    }
    let data = fh + 8;
    let len = end_of_ip - data;
    let start = offset.wrapping_add(8);
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[ipv6::SRC]);
    dst.copy_from_slice(&h[ipv6::DST]);
    Check::Frag(FragInfo {
        v6: true,
        src,
        dst,
        id: u32::from_be_bytes([frame[fh + 4], frame[fh + 5], frame[fh + 6], frame[fh + 7]]),
        proto: 0,
        start,
        end: start.wrapping_add(len as u16).wrapping_sub(1),
        first: offset == 0 && more,
        last,
        data,
        len,
        end_of_ip,
        frag_hdr: fh,
        names_frag: names,
    })
}
