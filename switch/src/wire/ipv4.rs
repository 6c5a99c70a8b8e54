//! IPv4 header (RFC 791).

use super::{checksum, get_u16, set_u16, Error};

/// Field offsets of the IPv4 header.
pub mod field {
    use core::ops::Range;
    /// Version (4 bits) and IHL (4 bits, in 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits).
    pub const TOS: usize = 1;
    /// Total length of header + payload.
    pub const LENGTH: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Payload protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 12..16;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 header.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap a buffer without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap a buffer, checking (RFC 791 §3.1) that it holds 20 bytes, that
    /// version is 4, that IHL >= 5 ("the minimum value for a correct header
    /// is 5") and the header fits, and that total length covers the header
    /// and does not exceed the buffer (trailing Ethernet padding is allowed).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        // The version nibble is not checked (as OVS): the EtherType says
        // IPv4.
        if p.header_len() < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < p.header_len() || b.len() < usize::from(p.total_len()) {
            return Err(Error::Truncated);
        }
        if usize::from(p.total_len()) < p.header_len() {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    /// IP version.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// The TOS byte (DSCP << 2 | ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    /// Total length.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// True if this is any fragment (MF set or offset non-zero).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & (FLAG_MF | OFFSET_MASK) != 0
    }
    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & OFFSET_MASK
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Payload protocol.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::SRC_ADDR].try_into().unwrap()
    }
    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::DST_ADDR].try_into().unwrap()
    }
    /// True when the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::internet(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// Bytes after the header, bounded by total length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Set TTL, updating the checksum incrementally (RFC 1624).
    #[inline]
    pub fn set_ttl_incremental(&mut self, ttl: u8) {
        let b = self.buffer.as_mut();
        let old = get_u16(b, field::TTL);
        b[field::TTL] = ttl;
        let new = get_u16(b, field::TTL);
        let hc = get_u16(b, field::CHECKSUM.start);
        set_u16(b, field::CHECKSUM.start, checksum::update(hc, old, new));
    }
    /// Set the TOS byte, updating the checksum incrementally (RFC 1624).
    #[inline]
    pub fn set_tos_incremental(&mut self, tos: u8) {
        let b = self.buffer.as_mut();
        let old = get_u16(b, field::VER_IHL);
        b[field::TOS] = tos;
        let new = get_u16(b, field::VER_IHL);
        let hc = get_u16(b, field::CHECKSUM.start);
        set_u16(b, field::CHECKSUM.start, checksum::update(hc, old, new));
    }
    /// Recompute the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        set_u16(b, field::CHECKSUM.start, 0);
        let c = checksum::internet(&b[..hl]);
        set_u16(b, field::CHECKSUM.start, c);
    }
}

/// High-level IPv4 header (no options), for building test frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Payload protocol.
    pub protocol: u8,
    /// TOS byte.
    pub tos: u8,
    /// Time to live.
    pub ttl: u8,
    /// Payload length.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parse a checked packet (options are skipped).
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Ipv4Repr {
        Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            tos: p.tos(),
            ttl: p.ttl(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
        }
    }
    /// Header length this repr emits.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN
    }
    /// Emit a 20-byte header with a correct checksum into `b[..20]`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        b[field::VER_IHL] = 0x45;
        b[field::TOS] = self.tos;
        set_u16(
            b,
            field::LENGTH.start,
            (MIN_HEADER_LEN + self.payload_len) as u16,
        );
        set_u16(b, field::IDENT.start, 0);
        set_u16(b, field::FLG_OFF.start, 0x4000);
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        b[field::SRC_ADDR].copy_from_slice(&self.src);
        b[field::DST_ADDR].copy_from_slice(&self.dst);
        set_u16(b, field::CHECKSUM.start, self.header_checksum());
    }

    /// The checksum of the header [`Ipv4Repr::emit`] writes, from the
    /// fields rather than from memory (RFC 791 §3.1: "the 16 bit one's
    /// complement of the one's complement sum of all 16 bit words in the
    /// header"; RFC 1071 §1: the sum may be taken in any order and folded
    /// at the end). Reading back a header just written costs a
    /// store-forwarding stall per word on the encapsulation path.
    #[inline]
    pub fn header_checksum(&self) -> u16 {
        let pair = |a: [u8; 4]| {
            u32::from(u16::from_be_bytes([a[0], a[1]]))
                + u32::from(u16::from_be_bytes([a[2], a[3]]))
        };
        let mut sum = (0x4500 | u32::from(self.tos))
            + (MIN_HEADER_LEN + self.payload_len) as u32 % 0x1_0000
            + 0x4000
            + (u32::from(self.ttl) << 8 | u32::from(self.protocol))
            + pair(self.src)
            + pair(self.dst);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        !(sum as u16)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // 10.0.0.1 -> 10.0.0.2, TCP, TTL 64, DF, total 40, checksum 0x26cb.
    static HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xce, 10, 0, 0, 1, 10, 0,
        0, 2,
    ];

    fn packet() -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.resize(40, 0);
        v
    }

    #[test]
    fn deconstruct() {
        let v = packet();
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert!(!p.is_fragment());
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn checksum_from_fields_matches_from_memory() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            let repr = Ipv4Repr {
                src: [b[0], b[1], b[2], b[3]],
                dst: [b[4], b[5], b[6], b[7]],
                protocol: b[2],
                tos: b[5],
                ttl: b[6],
                payload_len: (x >> 40) as usize % (65536 - 20),
            };
            let mut h = [0u8; 20];
            repr.emit(&mut h);
            let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
            let c = p.checksum();
            p.fill_checksum();
            assert_eq!(c, p.checksum(), "{repr:?}");
        }
    }

    #[test]
    fn emit() {
        let repr = Ipv4Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: 6,
            tos: 0,
            ttl: 64,
            payload_len: 20,
        };
        let mut b = [0u8; 20];
        repr.emit(&mut b);
        assert_eq!(b, HEADER);
        let v = packet();
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&v[..]).unwrap()),
            repr
        );
    }

    #[test]
    fn incremental_checksum_matches_full() {
        let mut v = packet();
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        for ttl in (0..=255u8).rev() {
            p.set_ttl_incremental(ttl);
            assert!(p.verify_checksum(), "ttl {ttl}");
        }
        for tos in 0..=255u8 {
            p.set_tos_incremental(tos);
            assert!(p.verify_checksum(), "tos {tos}");
            let inc = p.checksum();
            p.fill_checksum();
            // RFC 1624 never yields 0xffff unless the full sum would be -0.
            assert!(
                inc == p.checksum()
                    || (inc == 0xffff && p.checksum() == 0)
                    || (inc == 0 && p.checksum() == 0xffff)
            );
        }
    }

    #[test]
    fn bad_ihl_and_lengths() {
        let mut v = packet();
        v[0] = 0x44; // IHL 4
        assert_eq!(
            Ipv4Packet::new_checked(&v[..]).unwrap_err(),
            Error::Malformed
        );
        v[0] = 0x4f; // IHL 15 = 60 bytes > 40 available
        assert_eq!(
            Ipv4Packet::new_checked(&v[..]).unwrap_err(),
            Error::Truncated
        );
        let v = packet();
        assert_eq!(
            Ipv4Packet::new_checked(&v[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&v[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut v = packet();
        v[3] = 10; // total length < header
        assert_eq!(
            Ipv4Packet::new_checked(&v[..]).unwrap_err(),
            Error::Malformed
        );
    }
}
