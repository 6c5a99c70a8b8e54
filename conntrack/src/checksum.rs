//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624),
//! plus the full checks the tracker and the tests use: the IPv4 header
//! checksum and the TCP/UDP/ICMP/ICMPv6 checksums with their pseudo-headers
//! (RFC 768, RFC 793 §3.1, RFC 792, RFC 8200 §8.1).

use crate::packet::{proto, Frag, L4Kind, Parsed};

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last
/// byte padded with zero), not folded.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Fold a 32-bit sum to 16 bits with end-around carry.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Accumulated change of covered 16-bit words, for RFC 1624 eqn. 3
/// (`HC' = ~(~HC + ~m + m')`): add each changed word's old value
/// complemented and its new value, then [`Delta::apply`] it to a checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u32);

impl Delta {
    /// Record that the words of `old` became those of `new` (same even
    /// length; at an even offset from the start of the covered data).
    pub fn add(&mut self, old: &[u8], new: &[u8]) {
        for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
            let o = u16::from_be_bytes([o[0], o[1]]);
            let n = u16::from_be_bytes([n[0], n[1]]);
            if o == n {
                continue;
            }
            self.0 = u32::from(fold(self.0 + u32::from(!o) + u32::from(n)));
        }
    }

    /// True if nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The checksum `hc` after the recorded changes (RFC 1624 eqn. 3).
    pub fn apply(&self, hc: u16) -> u16 {
        !fold(u32::from(!hc) + self.0)
    }
}

/// The pseudo-header sum of TCP/UDP/ICMPv6 (RFC 793 §3.1 for IPv4, RFC 8200
/// §8.1 for IPv6): addresses, protocol and upper-layer length.
pub fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    sum(src) + sum(dst) + u32::from(proto) + (len as u32 & 0xffff) + (len as u32 >> 16)
}

/// The result of checking a frame's checksums with [`verify`]; `None`
/// where there is no such checksum or it cannot be checked (a fragment's
/// L4 checksum, a UDP checksum of 0, the quoted packet of an ICMP error
/// which is usually cut short).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checks {
    /// The IPv4 header checksum.
    pub ip: Option<bool>,
    /// The TCP/UDP/ICMP/ICMPv6 checksum over the whole L4 message.
    pub l4: Option<bool>,
    /// The IPv4 header checksum of the packet quoted in an ICMP error.
    pub inner_ip: Option<bool>,
}

/// Check the checksums of a frame that [`crate::packet::parse`] accepted
/// (`p` must come from this frame). OVS's tracker treats a bad IPv4 header
/// or L4 checksum as invalid (`lib/conntrack.c`, `extract_l3_ipv4`,
/// `check_l4_*`).
pub fn verify(frame: &[u8], p: &Parsed) -> Checks {
    let mut c = Checks::default();
    let (Some(l3hdr), Some(l4msg)) = (frame.get(p.l3..p.l4), frame.get(p.l4..p.end)) else {
        return c;
    };
    if !p.ipv6 {
        c.ip = Some(fold(sum(l3hdr)) == 0xffff);
    }
    if let L4Kind::IcmpError(e) = &p.kind {
        if !e.inner_ipv6 {
            c.inner_ip = frame
                .get(e.inner_l3..e.inner_l4)
                .map(|h| fold(sum(h)) == 0xffff);
        }
    }
    if p.frag != Frag::None {
        return c;
    }
    let (src, dst) = addr_bytes(frame, p);
    let outer_proto = match &p.kind {
        L4Kind::Tcp(_) => proto::TCP,
        L4Kind::Udp => proto::UDP,
        L4Kind::IcmpEcho(_) | L4Kind::IcmpError(_) if p.ipv6 => proto::ICMPV6,
        L4Kind::IcmpEcho(_) | L4Kind::IcmpError(_) => proto::ICMP,
        L4Kind::Other => return c,
    };
    if outer_proto == proto::UDP && l4msg.get(6..8) == Some(&[0, 0][..]) {
        return c;
    }
    let mut acc = sum(l4msg);
    if outer_proto != proto::ICMP {
        acc += pseudo_header(src, dst, outer_proto, l4msg.len());
    }
    c.l4 = Some(fold(acc) == 0xffff);
    c
}

/// The outer source and destination address bytes of a parsed frame.
fn addr_bytes<'a>(frame: &'a [u8], p: &Parsed) -> (&'a [u8], &'a [u8]) {
    let (s, d, n) = if p.ipv6 { (8, 24, 16) } else { (12, 16, 4) };
    (
        frame.get(p.l3 + s..p.l3 + s + n).unwrap_or(&[]),
        frame.get(p.l3 + d..p.l3 + d + n).unwrap_or(&[]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_delta_matches_full_recompute() {
        let mut data = [
            0x45u8, 0, 0, 60, 0x1c, 0x46, 0x40, 0, 0x40, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let hc = !fold(sum(&data));
        data[10..12].copy_from_slice(&hc.to_be_bytes());
        assert_eq!(fold(sum(&data)), 0xffff);
        let mut d = Delta::default();
        d.add(&data[12..16], &[192, 168, 255, 254]);
        data[12..16].copy_from_slice(&[192, 168, 255, 254]);
        let hc2 = d.apply(hc);
        data[10..12].copy_from_slice(&hc2.to_be_bytes());
        assert_eq!(fold(sum(&data)), 0xffff);
        assert!(!d.is_empty());
    }
}
