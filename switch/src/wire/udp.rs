//! UDP header (RFC 768), for the outer header of tunnel packets.

use super::{get_u16, set_u16, Error};

/// Field offsets of the UDP header.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header + data.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (0: none, IPv4 only).
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap a buffer without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wrap a buffer, checking that it holds the header and that the
    /// length field covers the header and fits the buffer (RFC 768:
    /// "Length is the length in octets of this user datagram including
    /// this header and the data").
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(get_u16(b, field::LENGTH.start));
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buffer })
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }
    /// Length field.
    #[inline]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// True when the length field says no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The data the length field covers.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

/// A UDP header as the tunnel encapsulation writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data length (without the header).
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parse a checked datagram.
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>) -> UdpRepr {
        UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.len()) - HEADER_LEN,
        }
    }

    /// Bytes [`UdpRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header with checksum 0: RFC 7348 §5 (VXLAN) "UDP Checksum:
    /// It SHOULD be transmitted as zero", RFC 8926 §3.3 (Geneve) allows
    /// zero over IPv4.
    pub fn emit(&self, b: &mut [u8]) {
        set_u16(b, field::SRC_PORT.start, self.src_port);
        set_u16(b, field::DST_PORT.start, self.dst_port);
        set_u16(
            b,
            field::LENGTH.start,
            (HEADER_LEN + self.payload_len) as u16,
        );
        set_u16(b, field::CHECKSUM.start, 0);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET: [u8; 10] = [0xc0, 0x00, 0x12, 0xb5, 0x00, 0x0a, 0x00, 0x00, 1, 2];

    #[test]
    fn deconstruct() {
        let p = UdpPacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 4789);
        assert_eq!(p.len(), 10);
        assert_eq!(p.checksum(), 0);
        assert_eq!(p.payload(), &[1, 2]);
    }

    #[test]
    fn construct_and_round_trip() {
        let r = UdpRepr {
            src_port: 49152,
            dst_port: 4789,
            payload_len: 2,
        };
        let mut b = [0xffu8; 10];
        b[8..].copy_from_slice(&[1, 2]);
        r.emit(&mut b);
        assert_eq!(b, PACKET);
        assert_eq!(UdpRepr::parse(&UdpPacket::new_checked(&b[..]).unwrap()), r);
        assert_eq!(r.buffer_len(), 8);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            UdpPacket::new_checked(&PACKET[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&PACKET[..9]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = PACKET;
        bad[5] = 4;
        assert_eq!(
            UdpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
    }
}
