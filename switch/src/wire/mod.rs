//! Zero-copy header views, smoltcp style: a `Packet<T: AsRef<[u8]>>` wraps a
//! buffer, its length is checked once in `new_checked`, field offsets live in
//! one `mod field` per protocol, and accessors never read past the buffer.
//!
//! Only what the switch needs is here: Ethernet (with 802.1Q/802.1ad tags),
//! ARP, IPv4, IPv6 (with extension-header walking), and the first bytes of
//! TCP/UDP/SCTP/ICMP/ICMPv6; for tunnel ports the UDP header and the VXLAN
//! (RFC 7348) and Geneve (RFC 8926) headers.

pub mod arp;
pub mod ethernet;
pub mod geneve;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod udp;
pub mod vxlan;

/// Why a header view could not be built over a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the header (or than a length the header claims).
    Truncated,
    /// A header field has a value the protocol forbids (e.g. IPv4 IHL < 5).
    Malformed,
}

#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Internet checksum helpers (RFC 1071, incremental update per RFC 1624).
pub mod checksum {
    /// One's-complement sum of `data` folded to 16 bits and complemented
    /// (RFC 1071). A header whose checksum field is correct sums to 0.
    #[inline]
    pub fn internet(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`, the checksum after one
    /// 16-bit word of the covered data changes from `old` to `new`.
    #[inline]
    pub fn update(hc: u16, old: u16, new: u16) -> u16 {
        let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}
