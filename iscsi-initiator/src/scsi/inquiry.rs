//! INQUIRY data (SPC-4 6.6): standard data and the VPD pages 0x00, 0x80, 0x83, 0xB0
//! and 0xB2.

use super::{be16, be32, be64, ParseError};

/// VPD page codes.
pub mod page {
    /// Supported VPD pages.
    pub const SUPPORTED: u8 = 0x00;
    /// Unit serial number.
    pub const UNIT_SERIAL: u8 = 0x80;
    /// Device identification.
    pub const DEVICE_ID: u8 = 0x83;
    /// Block limits (SBC-3 6.6.4).
    pub const BLOCK_LIMITS: u8 = 0xb0;
    /// Logical block provisioning (SBC-3 6.6.6).
    pub const PROVISIONING: u8 = 0xb2;
}

/// Standard INQUIRY data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardInquiry {
    /// Peripheral qualifier (0 = connected).
    pub qualifier: u8,
    /// Peripheral device type (0 = direct access block device).
    pub device_type: u8,
    /// RMB.
    pub removable: bool,
    /// VERSION.
    pub version: u8,
    /// T10 vendor identification.
    pub vendor: String,
    /// Product identification.
    pub product: String,
    /// Product revision level.
    pub revision: String,
}

fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_owned()
}

impl StandardInquiry {
    /// Parses standard INQUIRY data (at least 36 bytes).
    pub fn parse(b: &[u8]) -> Result<StandardInquiry, ParseError> {
        if b.len() < 36 {
            return Err(ParseError("standard INQUIRY data shorter than 36 bytes"));
        }
        Ok(StandardInquiry {
            qualifier: b[0] >> 5,
            device_type: b[0] & 0x1f,
            removable: b[1] & 0x80 != 0,
            version: b[2],
            vendor: ascii(&b[8..16]),
            product: ascii(&b[16..32]),
            revision: ascii(&b[32..36]),
        })
    }
}

/// Checks a VPD page header and returns the page payload.
pub fn vpd_payload(b: &[u8], code: u8) -> Result<&[u8], ParseError> {
    if b.len() < 4 {
        return Err(ParseError("VPD page shorter than 4 bytes"));
    }
    if b[1] != code {
        return Err(ParseError("VPD page code differs from the one asked"));
    }
    let len = be16(b, 2)? as usize;
    Ok(&b[4..(4 + len).min(b.len())])
}

/// Supported VPD pages (page 0x00).
pub fn supported_pages(b: &[u8]) -> Result<Vec<u8>, ParseError> {
    Ok(vpd_payload(b, page::SUPPORTED)?.to_vec())
}

/// Unit serial number (page 0x80).
pub fn unit_serial(b: &[u8]) -> Result<String, ParseError> {
    Ok(ascii(vpd_payload(b, page::UNIT_SERIAL)?))
}

/// One designation descriptor of page 0x83.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Designator {
    /// Code set (1 binary, 2 ASCII, 3 UTF-8).
    pub code_set: u8,
    /// Association (0 LU, 1 port, 2 target device).
    pub association: u8,
    /// Designator type (1 T10 vendor, 2 EUI-64, 3 NAA, 8 SCSI name ...).
    pub kind: u8,
    /// The designator bytes.
    pub value: Vec<u8>,
}

/// Device identification designators (page 0x83).
pub fn device_id(b: &[u8]) -> Result<Vec<Designator>, ParseError> {
    let p = vpd_payload(b, page::DEVICE_ID)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= p.len() {
        let len = p[at + 3] as usize;
        let value = p
            .get(at + 4..at + 4 + len)
            .ok_or(ParseError("designator runs past the page"))?;
        out.push(Designator {
            code_set: p[at] & 0x0f,
            association: (p[at + 1] >> 4) & 3,
            kind: p[at + 1] & 0x0f,
            value: value.to_vec(),
        });
        at += 4 + len;
    }
    Ok(out)
}

/// Block Limits (page 0xB0, SBC-3 6.6.4). Zero fields mean "not reported".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockLimits {
    /// MAXIMUM TRANSFER LENGTH in blocks (0 = no limit reported).
    pub max_transfer_blocks: u32,
    /// OPTIMAL TRANSFER LENGTH in blocks.
    pub optimal_transfer_blocks: u32,
    /// MAXIMUM UNMAP LBA COUNT.
    pub max_unmap_blocks: u32,
    /// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
    pub max_unmap_descriptors: u32,
    /// MAXIMUM WRITE SAME LENGTH.
    pub max_write_same_blocks: u64,
}

impl BlockLimits {
    /// Parses page 0xB0 (short pages, as some targets send, fill what they hold).
    pub fn parse(b: &[u8]) -> Result<BlockLimits, ParseError> {
        let p = vpd_payload(b, page::BLOCK_LIMITS)?;
        // Offsets below are from the page start; payload starts at byte 4.
        let at = |o: usize| be32(p, o - 4).unwrap_or(0);
        Ok(BlockLimits {
            max_transfer_blocks: at(8),
            optimal_transfer_blocks: at(12),
            max_unmap_blocks: at(20),
            max_unmap_descriptors: at(24),
            max_write_same_blocks: be64(p, 36 - 4).unwrap_or(0),
        })
    }
}

/// Logical Block Provisioning (page 0xB2): which discard commands the LU honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Provisioning {
    /// LBPU: UNMAP supported.
    pub unmap: bool,
    /// LBPWS: WRITE SAME (16) with UNMAP supported.
    pub write_same16_unmap: bool,
}

impl Provisioning {
    /// Parses page 0xB2.
    pub fn parse(b: &[u8]) -> Result<Provisioning, ParseError> {
        let p = vpd_payload(b, page::PROVISIONING)?;
        let flags = *p.get(1).ok_or(ParseError("provisioning page too short"))?;
        Ok(Provisioning {
            unmap: flags & 0x80 != 0,
            write_same16_unmap: flags & 0x40 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tgtd_standard_inquiry() {
        // The 64 bytes tgtd returned in the captured Data-In.
        let mut b = vec![0u8; 64];
        b[..8].copy_from_slice(&[0x00, 0x00, 0x05, 0x12, 0x3d, 0x00, 0x00, 0x02]);
        b[8..16].copy_from_slice(b"IET     ");
        b[16..32].copy_from_slice(b"VIRTUAL-DISK    ");
        b[32..36].copy_from_slice(b"0001");
        let s = StandardInquiry::parse(&b).unwrap();
        assert_eq!(s.device_type, 0);
        assert_eq!(s.version, 5);
        assert_eq!(s.vendor, "IET");
        assert_eq!(s.product, "VIRTUAL-DISK");
        assert_eq!(s.revision, "0001");
        assert!(StandardInquiry::parse(&b[..35]).is_err());
    }

    #[test]
    fn parse_block_limits() {
        let mut b = vec![0u8; 64];
        b[1] = 0xb0;
        b[3] = 0x3c;
        b[8..12].copy_from_slice(&2048u32.to_be_bytes());
        b[12..16].copy_from_slice(&128u32.to_be_bytes());
        let l = BlockLimits::parse(&b).unwrap();
        assert_eq!(l.max_transfer_blocks, 2048);
        assert_eq!(l.optimal_transfer_blocks, 128);
        assert!(BlockLimits::parse(&b[..3]).is_err());
        // A truncated page reports what it holds.
        let mut short = b[..12].to_vec();
        short[3] = 8;
        assert_eq!(
            BlockLimits::parse(&short).unwrap().max_transfer_blocks,
            2048
        );
    }

    #[test]
    fn parse_device_id() {
        let b = [0, 0x83, 0, 12, 0x01, 0x03, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let d = device_id(&b).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, 3);
        assert_eq!(d[0].value, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let bad = [0, 0x83, 0, 6, 0x01, 0x03, 0, 8, 1, 2];
        assert!(device_id(&bad).is_err());
    }
}
