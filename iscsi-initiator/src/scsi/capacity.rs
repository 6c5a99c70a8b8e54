//! READ CAPACITY (10) and (16) parameter data (SBC-3 5.15, 5.16).

use super::{be32, be64, ParseError};

/// The capacity of a logical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Number of logical blocks (RETURNED LOGICAL BLOCK ADDRESS + 1).
    pub blocks: u64,
    /// Logical block length in bytes.
    pub block_size: u32,
    /// LBPME: thin provisioning enabled (READ CAPACITY (16) only).
    pub thin_provisioned: bool,
}

impl Capacity {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size as u64)
    }

    /// Parses READ CAPACITY (10) data. A last LBA of 0xffffffff means "use (16)".
    pub fn parse10(b: &[u8]) -> Result<Capacity, ParseError> {
        let last = be32(b, 0)?;
        let block_size = be32(b, 4)?;
        if block_size == 0 {
            return Err(ParseError("block length 0"));
        }
        Ok(Capacity {
            blocks: last as u64 + 1,
            block_size,
            thin_provisioned: false,
        })
    }

    /// Parses READ CAPACITY (16) data.
    pub fn parse16(b: &[u8]) -> Result<Capacity, ParseError> {
        let last = be64(b, 0)?;
        let block_size = be32(b, 8)?;
        if block_size == 0 {
            return Err(ParseError("block length 0"));
        }
        Ok(Capacity {
            blocks: last
                .checked_add(1)
                .ok_or(ParseError("last LBA overflows"))?,
            block_size,
            thin_provisioned: b.get(14).is_some_and(|x| x & 0x80 != 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tgtd_readcap16() {
        // From the capture of iscsi-readcapacity16 against a 64 MiB tgtd LUN.
        let b = [
            0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        let c = Capacity::parse16(&b).unwrap();
        assert_eq!(c.blocks, 131_072);
        assert_eq!(c.block_size, 512);
        assert_eq!(c.bytes(), 64 << 20);
        assert!(Capacity::parse16(&b[..10]).is_err());
    }
}
