//! Additional Header Segments (RFC 7143 section 11.2.2).
//!
//! ```text
//!  0: AHSLength (2 bytes, excluding type, reserved and padding) | AHSType | reserved
//!  4: AHS-Specific ... padded to a multiple of 4 bytes
//! ```

use crate::{Error, Result};

/// AHS types (section 11.2.2.2).
pub mod kind {
    /// Extended CDB: the CDB bytes beyond the first 16.
    pub const EXTENDED_CDB: u8 = 1;
    /// Bidirectional Read Expected Data Transfer Length.
    pub const BIDI_READ_LEN: u8 = 2;
}

/// One AHS from a PDU's AHS area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ahs<'a> {
    /// AHSType.
    pub kind: u8,
    /// AHS-specific bytes, AHSLength long (the reserved byte is not included).
    pub data: &'a [u8],
}

/// Iterates over the AHS area (TotalAHSLength * 4 bytes). Yields an error, then stops,
/// on a malformed entry.
pub fn iter(area: &[u8]) -> AhsIter<'_> {
    AhsIter { rest: area }
}

/// Iterator returned by [`iter`].
#[derive(Debug, Clone)]
pub struct AhsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AhsIter<'a> {
    type Item = Result<Ahs<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(Error::MalformedAhs("fewer than 4 bytes left")));
        }
        let len = u16::from_be_bytes([self.rest[0], self.rest[1]]) as usize;
        let kind = self.rest[2];
        // AHSLength counts the AHS-specific bytes including the reserved byte 3.
        if len == 0 {
            self.rest = &[];
            return Some(Err(Error::MalformedAhs("AHSLength 0")));
        }
        let padded = (3 + len + 3) & !3;
        if padded > self.rest.len() {
            self.rest = &[];
            return Some(Err(Error::MalformedAhs("AHSLength beyond TotalAHSLength")));
        }
        let data = &self.rest[4..3 + len];
        self.rest = &self.rest[padded..];
        Some(Ok(Ahs { kind, data }))
    }
}

/// Appends an AHS (with its padding) to `out`. `data` excludes the reserved byte.
pub fn emit(out: &mut Vec<u8>, kind: u8, data: &[u8]) -> Result<()> {
    let len = data.len() + 1;
    if len > u16::MAX as usize {
        return Err(Error::MalformedAhs("AHS too long"));
    }
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(data);
    while out.len() & 3 != 0 {
        out.push(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_cdb_round_trip() {
        let mut area = Vec::new();
        emit(&mut area, kind::EXTENDED_CDB, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        emit(&mut area, kind::BIDI_READ_LEN, &4096u32.to_be_bytes()).unwrap();
        // 4 header + 8 data -> 12 bytes; 4 + 4 -> 8 bytes.
        assert_eq!(area.len(), 20);
        let v: Vec<_> = iter(&area).collect::<Result<_>>().unwrap();
        assert_eq!(v[0].kind, kind::EXTENDED_CDB);
        assert_eq!(v[0].data, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(v[1].data, &4096u32.to_be_bytes());
    }

    #[test]
    fn overlong_ahs_is_an_error() {
        let area = [0x00, 0x40, 0x01, 0x00, 0, 0, 0, 0];
        assert!(matches!(
            iter(&area).next(),
            Some(Err(Error::MalformedAhs(_)))
        ));
    }
}
