//! SCSI: CDB builders (SBC-3/SPC-4) and parsers for the data they return.

pub mod capacity;
pub mod cdb;
pub mod inquiry;
pub mod report_luns;
pub mod sense;

/// SCSI status codes (SAM-5 section 5.3).
pub mod status {
    /// GOOD.
    pub const GOOD: u8 = 0x00;
    /// CHECK CONDITION: sense data follows.
    pub const CHECK_CONDITION: u8 = 0x02;
    /// CONDITION MET.
    pub const CONDITION_MET: u8 = 0x04;
    /// BUSY.
    pub const BUSY: u8 = 0x08;
    /// RESERVATION CONFLICT.
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    /// TASK SET FULL.
    pub const TASK_SET_FULL: u8 = 0x28;
    /// ACA ACTIVE.
    pub const ACA_ACTIVE: u8 = 0x30;
    /// TASK ABORTED.
    pub const TASK_ABORTED: u8 = 0x40;
}

/// Why SCSI response data could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed SCSI data: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

pub(crate) fn be16(b: &[u8], at: usize) -> Result<u16, ParseError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(ParseError("truncated"))
}

pub(crate) fn be32(b: &[u8], at: usize) -> Result<u32, ParseError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(ParseError("truncated"))
}

pub(crate) fn be64(b: &[u8], at: usize) -> Result<u64, ParseError> {
    let s = b.get(at..at + 8).ok_or(ParseError("truncated"))?;
    let mut v = [0u8; 8];
    v.copy_from_slice(s);
    Ok(u64::from_be_bytes(v))
}
