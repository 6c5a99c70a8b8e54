//! REPORT LUNS parameter data (SPC-4 6.33.2).

use super::{be32, be64, ParseError};

/// Parses the LUN list; each entry is decoded to its first-level LUN number.
pub fn parse(b: &[u8]) -> Result<Vec<u16>, ParseError> {
    let len = be32(b, 0)? as usize;
    let end = (8 + len).min(b.len());
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= end {
        out.push(iscsi_pdu::bhs::decode_lun(be64(b, at)?));
        at += 8;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_two_luns() {
        let mut b = vec![0, 0, 0, 16, 0, 0, 0, 0];
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(super::parse(&b).unwrap(), vec![0, 1]);
        assert!(super::parse(&b[..3]).is_err());
    }
}
