//! IPv6 fixed header (RFC 8200) and extension-header walking.

use super::{get_u16, Error};

/// Field offsets of the IPv6 fixed header.
pub mod field {
    use core::ops::Range;
    /// Version(4) traffic class(8) flow label(20).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    /// Payload length.
    pub const LENGTH: Range<usize> = 4..6;
    /// Next header.
    pub const NXT_HDR: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 8..24;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Extension header protocol numbers walked by [`skip_extension_headers`].
pub mod next_header {
    /// Hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// Destination options.
    pub const DSTOPTS: u8 = 60;
}

/// A view of an IPv6 fixed header.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap a buffer without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }
    /// Wrap a buffer, checking the 40-byte header, version 6 and that the
    /// payload length (RFC 8200 §3) fits in the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        if b.len() < HEADER_LEN + usize::from(p.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(p)
    }
    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    /// Payload length.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// Next header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }
    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        self.buffer.as_ref()[field::SRC_ADDR].try_into().unwrap()
    }
    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        self.buffer.as_ref()[field::DST_ADDR].try_into().unwrap()
    }
    /// Payload bounded by the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

/// Where the extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (or the last next-header seen).
    pub protocol: u8,
    /// Offset of the upper-layer header inside the payload.
    pub offset: usize,
    /// A fragment header was present.
    pub fragment: bool,
    /// That fragment header had a non-zero offset.
    pub later_fragment: bool,
}

/// Most extension headers walked before giving up (bounds the loop on
/// hostile chains).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Walk the extension headers (RFC 8200 §4) of `payload`, starting with
/// next-header `nh`. Every length is checked against the payload; a later
/// fragment stops the walk since its upper-layer header is elsewhere.
pub fn skip_extension_headers(payload: &[u8], mut nh: u8) -> Result<UpperLayer, Error> {
    let mut off = 0usize;
    let mut up = UpperLayer {
        protocol: nh,
        offset: 0,
        fragment: false,
        later_fragment: false,
    };
    for _ in 0..MAX_EXTENSION_HEADERS {
        let len = match nh {
            next_header::HOPOPT | next_header::ROUTING | next_header::DSTOPTS => {
                let b = payload.get(off..off + 2).ok_or(Error::Truncated)?;
                (usize::from(b[1]) + 1) * 8
            }
            next_header::AH => {
                let b = payload.get(off..off + 2).ok_or(Error::Truncated)?;
                (usize::from(b[1]) + 2) * 4
            }
            next_header::FRAGMENT => {
                let b = payload.get(off..off + 8).ok_or(Error::Truncated)?;
                up.fragment = true;
                up.later_fragment = get_u16(b, 2) & 0xfff8 != 0;
                8
            }
            _ => {
                up.protocol = nh;
                up.offset = off;
                return Ok(up);
            }
        };
        if payload.len() < off + len {
            return Err(Error::Truncated);
        }
        nh = payload[off];
        off += len;
        if up.later_fragment {
            up.protocol = nh;
            up.offset = off;
            return Ok(up);
        }
    }
    Err(Error::Malformed)
}

#[cfg(test)]
mod test {
    use super::*;

    fn packet(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x6b, 0x80, 0, 0, 0, payload.len() as u8, nh, 64];
        v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn deconstruct() {
        let v = packet(17, &[0; 8]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.dst_addr()[15], 2);
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn extension_headers() {
        // hop-by-hop (8 bytes) -> fragment (offset 0, M) -> UDP
        let pl = [44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 1];
        let up = skip_extension_headers(&pl, 0).unwrap();
        assert_eq!(
            up,
            UpperLayer {
                protocol: 17,
                offset: 16,
                fragment: true,
                later_fragment: false
            }
        );
        // later fragment stops the walk
        let pl = [17, 0, 0, 8, 0, 0, 0, 1];
        let up = skip_extension_headers(&pl, 44).unwrap();
        assert!(up.later_fragment);
        // truncated option header
        assert_eq!(
            skip_extension_headers(&[17, 1, 0, 0], 0).unwrap_err(),
            Error::Truncated
        );
        // endless chain of destination options
        let pl = [60u8, 0, 0, 0, 0, 0, 0, 0].repeat(10);
        assert_eq!(
            skip_extension_headers(&pl, 60).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn truncated() {
        let v = packet(17, &[0; 8]);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&v[..47]).unwrap_err(),
            Error::Truncated
        );
    }
}
