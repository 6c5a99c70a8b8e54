//! Header and data digests: CRC32C (RFC 7143 section 13.1 and 11.1).
//!
//! Computed with the `crc32c` crate, which uses the SSE4.2 / ARMv8 CRC instructions when
//! present and a table otherwise: faster and better tested than a hand-written table.
//! On the wire the digest is sent least significant byte first, as tshark and every
//! target expect ("the CRC ... is transmitted ... in little-endian order" per the
//! iSCSI CRC32C test vectors in RFC 7143 appendix B.4).

/// CRC32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Continues a CRC32C over more bytes.
pub fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, bytes)
}

/// Encodes a digest as it appears on the wire.
pub fn to_wire(crc: u32) -> [u8; 4] {
    crc.to_le_bytes()
}

/// Decodes a digest read from the wire.
pub fn from_wire(bytes: [u8; 4]) -> u32 {
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7143 appendix B.4 (CRC examples): 32 bytes of zeroes give "aa 36 91 8a"
    /// as the bytes on the wire.
    #[test]
    fn rfc_vector_zeroes() {
        assert_eq!(to_wire(crc32c(&[0u8; 32])), [0xaa, 0x36, 0x91, 0x8a]);
    }

    /// RFC 7143 appendix B.4: 32 bytes of 0xff give "43 ab a8 62".
    #[test]
    fn rfc_vector_ones() {
        assert_eq!(to_wire(crc32c(&[0xffu8; 32])), [0x43, 0xab, 0xa8, 0x62]);
    }

    /// RFC 7143 appendix B.4: bytes 0..=31 give "4e 79 dd 46".
    #[test]
    fn rfc_vector_incrementing() {
        let v: Vec<u8> = (0u8..32).collect();
        assert_eq!(to_wire(crc32c(&v)), [0x4e, 0x79, 0xdd, 0x46]);
    }

    #[test]
    fn append_matches_whole() {
        let v: Vec<u8> = (0u8..100).collect();
        assert_eq!(crc32c_append(crc32c(&v[..37]), &v[37..]), crc32c(&v));
    }
}
