//! ARP for IPv4 over Ethernet (RFC 826).

use super::{get_u16, Error};

/// Field offsets of an Ethernet/IPv4 ARP packet.
pub mod field {
    use core::ops::Range;
    /// Hardware type (1 = Ethernet).
    pub const HTYPE: Range<usize> = 0..2;
    /// Protocol type (0x0800).
    pub const PTYPE: Range<usize> = 2..4;
    /// Hardware address length (6).
    pub const HLEN: usize = 4;
    /// Protocol address length (4).
    pub const PLEN: usize = 5;
    /// Operation (1 request, 2 reply).
    pub const OPER: Range<usize> = 6..8;
    /// Sender hardware address.
    pub const SHA: Range<usize> = 8..14;
    /// Sender protocol address.
    pub const SPA: Range<usize> = 14..18;
    /// Target hardware address.
    pub const THA: Range<usize> = 18..24;
    /// Target protocol address.
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wrap a buffer, checking length and that it is Ethernet/IPv4 ARP
    /// (htype 1, ptype 0x0800, hlen 6, plen 4); anything else is `Malformed`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if get_u16(b, field::HTYPE.start) != 1
            || get_u16(b, field::PTYPE.start) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error::Malformed);
        }
        Ok(ArpPacket { buffer })
    }
    /// Operation code.
    #[inline]
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER.start)
    }
    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::SHA].try_into().unwrap()
    }
    /// Sender protocol address.
    #[inline]
    pub fn spa(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::SPA].try_into().unwrap()
    }
    /// Target hardware address.
    #[inline]
    pub fn tha(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::THA].try_into().unwrap()
    }
    /// Target protocol address.
    #[inline]
    pub fn tpa(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::TPA].try_into().unwrap()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET: [u8; 28] = [
        0, 1, 8, 0, 6, 4, 0, 1, // eth/ipv4 request
        2, 0, 0, 0, 0, 1, 10, 0, 0, 1, // sender
        0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // target
    ];

    #[test]
    fn deconstruct() {
        let p = ArpPacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.operation(), 1);
        assert_eq!(p.sha(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.spa(), [10, 0, 0, 1]);
        assert_eq!(p.tha(), [0; 6]);
        assert_eq!(p.tpa(), [10, 0, 0, 2]);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            ArpPacket::new_checked(&PACKET[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = PACKET;
        bad[4] = 8;
        assert_eq!(
            ArpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
    }
}
