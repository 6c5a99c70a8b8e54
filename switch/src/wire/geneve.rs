//! Geneve header (RFC 8926 §3.4) and its option TLVs (§3.5).
//!
//! ```text
//!  0                   1                   2                   3
//! |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//! |        Virtual Network Identifier (VNI)       |    Reserved   |
//! ~                    Variable-Length Options                    ~
//! ```

use super::{get_u16, set_u16, Error};

/// Field offsets of the fixed Geneve header.
pub mod field {
    use core::ops::Range;
    /// Version (2 bits) and option length (6 bits, 4-byte words).
    pub const VER_OPTLEN: usize = 0;
    /// O (OAM, 0x80) and C (critical options, 0x40) flags, 6 reserved bits.
    pub const FLAGS: usize = 1;
    /// Protocol type of the payload (EtherType).
    pub const PROTOCOL: Range<usize> = 2..4;
    /// VNI (24 bits).
    pub const VNI: Range<usize> = 4..7;
    /// Reserved (8 bits).
    pub const RSVD: usize = 7;
}

/// Length of the fixed header (no options).
pub const HEADER_LEN: usize = 8;
/// IANA-assigned UDP destination port (RFC 8926 §3.3).
pub const UDP_PORT: u16 = 6081;
/// Protocol type of an Ethernet payload ("Transparent Ethernet Bridging").
pub const PROTO_ETHERNET: u16 = 0x6558;
/// O flag: an OAM (control) packet.
pub const FLAG_OAM: u8 = 0x80;
/// C flag: critical options present.
pub const FLAG_CRITICAL: u8 = 0x40;

/// A view of a Geneve header, its options and payload.
#[derive(Debug, Clone)]
pub struct GenevePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GenevePacket<T> {
    /// Wrap a buffer without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        GenevePacket { buffer }
    }

    /// Wrap a buffer holding the fixed header and every option byte the
    /// header claims.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = GenevePacket { buffer };
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN || b.len() < p.header_len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Version (2 bits).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_OPTLEN] >> 6
    }
    /// Length of the options in bytes.
    #[inline]
    pub fn options_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_OPTLEN] & 0x3f) * 4
    }
    /// Fixed header plus options.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }
    /// The flags byte (O, C and reserved bits).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    /// Protocol type of the payload.
    #[inline]
    pub fn protocol(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PROTOCOL.start)
    }
    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }
    /// The option bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The payload after the options.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GenevePacket<T> {
    /// Set version and option length (bytes, a multiple of 4, ≤ 252).
    #[inline]
    pub fn set_version_optlen(&mut self, version: u8, opt_bytes: usize) {
        self.buffer.as_mut()[field::VER_OPTLEN] = (version << 6) | ((opt_bytes / 4) as u8 & 0x3f);
    }
    /// Set the flags byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }
    /// Set the protocol type.
    #[inline]
    pub fn set_protocol(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PROTOCOL.start, v);
    }
    /// Set the VNI (low 24 bits) and zero the reserved byte.
    #[inline]
    pub fn set_vni(&mut self, v: u32) {
        let b = self.buffer.as_mut();
        b[field::VNI].copy_from_slice(&v.to_be_bytes()[1..]);
        b[field::RSVD] = 0;
    }
}

/// One option TLV (RFC 8926 §3.5): class, type (high bit: critical),
/// data (a multiple of 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    /// Option class (namespace).
    pub class: u16,
    /// Type; bit 0x80 marks a critical option.
    pub kind: u8,
    /// Option data.
    pub data: &'a [u8],
}

/// Walk an option area: every TLV, or `Malformed` when one claims more
/// bytes than are left (§3.5: "the total length of all options ... MUST
/// equal Opt Len").
pub fn options(mut b: &[u8]) -> impl Iterator<Item = Result<GeneveOption<'_>, Error>> {
    core::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        if b.len() < 4 {
            b = &[];
            return Some(Err(Error::Malformed));
        }
        let len = 4 + usize::from(b[3] & 0x1f) * 4;
        if len > b.len() {
            b = &[];
            return Some(Err(Error::Malformed));
        }
        let o = GeneveOption {
            class: get_u16(b, 0),
            kind: b[2],
            data: &b[4..len],
        };
        b = &b[len..];
        Some(Ok(o))
    })
}

/// A parsed Geneve header carrying Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveRepr {
    /// Virtual Network Identifier (24 bits).
    pub vni: u32,
    /// Bytes of options (validated, not interpreted).
    pub options_len: usize,
}

/// Why a well-formed Geneve header is still not one this endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneveReject {
    /// Version other than 0 (§3.4: "Packets received by a tunnel endpoint
    /// with an unknown version MUST be dropped").
    Version,
    /// O flag: an OAM packet (§3.4: "MUST NOT be forwarded").
    Oam,
    /// C flag with options: a critical option this endpoint does not
    /// process (§3.5.1: such packets "MUST be dropped").
    Critical,
    /// Payload other than Ethernet (0x6558).
    Protocol,
    /// An option TLV runs past the option area.
    BadOption,
}

impl GeneveRepr {
    /// Parse a header this endpoint can decapsulate (version 0, Ethernet
    /// payload, not OAM, no critical options; options validated).
    pub fn parse<T: AsRef<[u8]>>(p: &GenevePacket<T>) -> Result<GeneveRepr, GeneveReject> {
        if p.version() != 0 {
            return Err(GeneveReject::Version);
        }
        if p.flags() & FLAG_OAM != 0 {
            return Err(GeneveReject::Oam);
        }
        if p.protocol() != PROTO_ETHERNET {
            return Err(GeneveReject::Protocol);
        }
        for o in options(p.options()) {
            match o {
                Err(_) => return Err(GeneveReject::BadOption),
                Ok(o) if o.kind & 0x80 != 0 => return Err(GeneveReject::Critical),
                Ok(_) => {}
            }
        }
        Ok(GeneveRepr {
            vni: p.vni(),
            options_len: p.options_len(),
        })
    }

    /// Bytes [`GeneveRepr::emit`] writes (the fixed header; options are
    /// not emitted, so `options_len` must be 0).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the fixed header: version 0, no options, O and C clear,
    /// Ethernet payload.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GenevePacket<T>) {
        p.set_version_optlen(0, 0);
        p.set_flags(0);
        p.set_protocol(PROTO_ETHERNET);
        p.set_vni(self.vni);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // Version 0, one 8-byte option (class 0x0102, type 3, 4 data bytes),
    // Ethernet payload, VNI 0x123456.
    static PACKET: [u8; 20] = [
        0x02, 0x00, 0x65, 0x58, 0x12, 0x34, 0x56, 0x00, // fixed header
        0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef, // option
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    #[test]
    fn deconstruct() {
        let p = GenevePacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 0);
        assert_eq!(p.options_len(), 8);
        assert_eq!(p.protocol(), PROTO_ETHERNET);
        assert_eq!(p.vni(), 0x12_3456);
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        let opts: Vec<_> = options(p.options()).collect();
        assert_eq!(
            opts,
            vec![Ok(GeneveOption {
                class: 0x0102,
                kind: 3,
                data: &[0xde, 0xad, 0xbe, 0xef]
            })]
        );
    }

    #[test]
    fn construct_and_round_trip() {
        let mut b = [0xffu8; 8];
        let r = GeneveRepr {
            vni: 0x12_3456,
            options_len: 0,
        };
        r.emit(&mut GenevePacket::new_unchecked(&mut b[..]));
        assert_eq!(b, [0, 0, 0x65, 0x58, 0x12, 0x34, 0x56, 0]);
        let p = GenevePacket::new_checked(&b[..]).unwrap();
        assert_eq!(GeneveRepr::parse(&p), Ok(r));
        assert_eq!(r.buffer_len(), 8);
        let p = GenevePacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(
            GeneveRepr::parse(&p),
            Ok(GeneveRepr {
                vni: 0x12_3456,
                options_len: 8
            })
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            GenevePacket::new_checked(&PACKET[..7]).unwrap_err(),
            Error::Truncated
        );
        // Options claim more than the buffer holds.
        assert_eq!(
            GenevePacket::new_checked(&PACKET[..15]).unwrap_err(),
            Error::Truncated
        );
        let check = |f: &dyn Fn(&mut [u8; 20]), want| {
            let mut b = PACKET;
            f(&mut b);
            let p = GenevePacket::new_checked(&b[..]).unwrap();
            assert_eq!(GeneveRepr::parse(&p), Err(want));
        };
        check(&|b| b[0] |= 0x40, GeneveReject::Version);
        check(&|b| b[1] = FLAG_OAM, GeneveReject::Oam);
        check(&|b| b[2] = 0x08, GeneveReject::Protocol);
        check(&|b| b[10] = 0x83, GeneveReject::Critical);
        // The option's length runs past the option area.
        check(&|b| b[11] = 2, GeneveReject::BadOption);
    }
}
