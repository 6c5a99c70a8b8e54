//! The first bytes of the transport headers the flow key reads: TCP, UDP,
//! SCTP ports, TCP flags, ICMP/ICMPv6 type and code.

use super::{get_u16, Error};

/// IP protocol numbers.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Field offsets shared by the port-carrying transports.
pub mod field {
    use core::ops::Range;
    /// Source port (TCP, UDP, SCTP).
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port (TCP, UDP, SCTP).
    pub const DST_PORT: Range<usize> = 2..4;
    /// TCP data offset (4 bits) + reserved + flags (12 bits total).
    pub const TCP_FLAGS: Range<usize> = 12..14;
    /// ICMP type.
    pub const ICMP_TYPE: usize = 0;
    /// ICMP code.
    pub const ICMP_CODE: usize = 1;
}

/// Minimum header length of a transport, or `None` for protocols the key
/// does not look into.
pub fn min_header_len(proto: u8) -> Option<usize> {
    match proto {
        protocol::TCP => Some(20),
        protocol::UDP => Some(8),
        protocol::SCTP => Some(12),
        protocol::ICMP | protocol::ICMPV6 => Some(4),
        _ => None,
    }
}

/// A view of a transport header's first bytes.
#[derive(Debug, Clone)]
pub struct TransportHeader<T: AsRef<[u8]>> {
    buffer: T,
    proto: u8,
}

impl<T: AsRef<[u8]>> TransportHeader<T> {
    /// Wrap a buffer holding a `proto` header; checks the minimum length and,
    /// for TCP, a data offset of at least 5 words (RFC 9293 §3.1).
    #[inline]
    pub fn new_checked(buffer: T, proto: u8) -> Result<Self, Error> {
        let need = min_header_len(proto).ok_or(Error::Malformed)?;
        let b = buffer.as_ref();
        if b.len() < need {
            return Err(Error::Truncated);
        }
        if proto == protocol::TCP && (b[field::TCP_FLAGS.start] >> 4) < 5 {
            return Err(Error::Malformed);
        }
        Ok(TransportHeader { buffer, proto })
    }
    /// Source port; for ICMP/ICMPv6 the type.
    #[inline]
    pub fn src(&self) -> u16 {
        let b = self.buffer.as_ref();
        match self.proto {
            protocol::ICMP | protocol::ICMPV6 => u16::from(b[field::ICMP_TYPE]),
            _ => get_u16(b, field::SRC_PORT.start),
        }
    }
    /// Destination port; for ICMP/ICMPv6 the code.
    #[inline]
    pub fn dst(&self) -> u16 {
        let b = self.buffer.as_ref();
        match self.proto {
            protocol::ICMP | protocol::ICMPV6 => u16::from(b[field::ICMP_CODE]),
            _ => get_u16(b, field::DST_PORT.start),
        }
    }
    /// TCP flags (12 bits: NS CWR ECE URG ACK PSH RST SYN FIN); 0 otherwise.
    #[inline]
    pub fn tcp_flags(&self) -> u16 {
        if self.proto == protocol::TCP {
            get_u16(self.buffer.as_ref(), field::TCP_FLAGS.start) & 0x0fff
        } else {
            0
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static TCP: [u8; 20] = [
        0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ];

    #[test]
    fn deconstruct() {
        let t = TransportHeader::new_checked(&TCP[..], protocol::TCP).unwrap();
        assert_eq!((t.src(), t.dst(), t.tcp_flags()), (12345, 80, 0x012));
        let i = TransportHeader::new_checked(&[8u8, 0, 0, 0][..], protocol::ICMP).unwrap();
        assert_eq!((i.src(), i.dst()), (8, 0));
        let s = TransportHeader::new_checked(&TCP[..12], protocol::SCTP).unwrap();
        assert_eq!((s.src(), s.dst(), s.tcp_flags()), (12345, 80, 0));
    }

    #[test]
    fn truncated_and_bad_offset() {
        assert_eq!(
            TransportHeader::new_checked(&TCP[..19], protocol::TCP).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TransportHeader::new_checked(&TCP[..7], protocol::UDP).unwrap_err(),
            Error::Truncated
        );
        let mut bad = TCP;
        bad[12] = 0x40;
        assert_eq!(
            TransportHeader::new_checked(&bad[..], protocol::TCP).unwrap_err(),
            Error::Malformed
        );
    }
}
