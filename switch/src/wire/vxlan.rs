//! VXLAN header (RFC 7348 §5).
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```

use super::Error;

/// Field offsets of the VXLAN header.
pub mod field {
    use core::ops::Range;
    /// Flags: only the I bit (0x08) is defined.
    pub const FLAGS: usize = 0;
    /// Reserved (24 bits).
    pub const RSVD1: Range<usize> = 1..4;
    /// VNI (24 bits).
    pub const VNI: Range<usize> = 4..7;
    /// Reserved (8 bits).
    pub const RSVD2: usize = 7;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;
/// The I flag: "MUST be set to 1 for a valid VXLAN Network ID (VNI)".
pub const FLAG_I: u8 = 0x08;
/// IANA-assigned UDP destination port (RFC 7348 §5).
pub const UDP_PORT: u16 = 4789;

/// A view of a VXLAN header and its payload (the inner Ethernet frame).
#[derive(Debug, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Wrap a buffer without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Wrap a buffer holding at least the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(VxlanPacket { buffer })
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The inner frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Set the flags byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }
    /// Set the VNI (low 24 bits of `v`) and zero the reserved bytes.
    #[inline]
    pub fn set_vni(&mut self, v: u32) {
        let b = self.buffer.as_mut();
        b[field::RSVD1].fill(0);
        b[field::VNI].copy_from_slice(&v.to_be_bytes()[1..]);
        b[field::RSVD2] = 0;
    }
}

/// A parsed VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanRepr {
    /// VXLAN Network Identifier (24 bits).
    pub vni: u32,
}

impl VxlanRepr {
    /// Parse: RFC 7348 §5, the I flag "MUST be set to 1 for a valid VNI";
    /// the reserved bits "MUST be ignored on receipt".
    pub fn parse<T: AsRef<[u8]>>(p: &VxlanPacket<T>) -> Result<VxlanRepr, Error> {
        if p.flags() & FLAG_I == 0 {
            return Err(Error::Malformed);
        }
        Ok(VxlanRepr { vni: p.vni() })
    }

    /// Bytes [`VxlanRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header: I flag set, reserved fields zero ("MUST be set
    /// to zero on transmission").
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VxlanPacket<T>) {
        p.set_flags(FLAG_I);
        p.set_vni(self.vni);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // Flags 0x08, VNI 42, then the first bytes of an inner frame.
    static PACKET: [u8; 10] = [0x08, 0, 0, 0, 0, 0, 42, 0, 0xaa, 0xbb];

    #[test]
    fn deconstruct() {
        let p = VxlanPacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.flags(), FLAG_I);
        assert_eq!(p.vni(), 42);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn construct() {
        let mut b = [0xffu8; 10];
        b[8..].copy_from_slice(&[0xaa, 0xbb]);
        let mut p = VxlanPacket::new_unchecked(&mut b[..]);
        VxlanRepr { vni: 42 }.emit(&mut p);
        assert_eq!(b, PACKET);
    }

    #[test]
    fn parse_emit_round_trip() {
        let p = VxlanPacket::new_checked(&PACKET[..]).unwrap();
        let r = VxlanRepr::parse(&p).unwrap();
        assert_eq!(r, VxlanRepr { vni: 42 });
        assert_eq!(r.buffer_len(), HEADER_LEN);
        let mut b = [0u8; 8];
        r.emit(&mut VxlanPacket::new_unchecked(&mut b[..]));
        assert_eq!(b, PACKET[..8]);
        // 24 bits only.
        VxlanRepr { vni: 0xff12_3456 }.emit(&mut VxlanPacket::new_unchecked(&mut b[..]));
        assert_eq!(VxlanPacket::new_checked(&b[..]).unwrap().vni(), 0x12_3456);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            VxlanPacket::new_checked(&PACKET[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = PACKET;
        bad[0] = 0;
        let p = VxlanPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&p).unwrap_err(), Error::Malformed);
        // Reserved bits are ignored on receipt.
        bad[0] = 0xff;
        bad[1] = 0xff;
        bad[7] = 0xff;
        let p = VxlanPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&p).unwrap().vni, 42);
    }
}
