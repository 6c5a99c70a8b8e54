//! Sense data (SPC-4 4.5): fixed (0x70/0x71) and descriptor (0x72/0x73) formats,
//! decoded into a typed [`Sense`].

use super::ParseError;
use std::fmt;

/// Sense keys (SPC-4 table 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseKey {
    /// 0x0.
    NoSense,
    /// 0x1.
    RecoveredError,
    /// 0x2.
    NotReady,
    /// 0x3.
    MediumError,
    /// 0x4.
    HardwareError,
    /// 0x5.
    IllegalRequest,
    /// 0x6.
    UnitAttention,
    /// 0x7.
    DataProtect,
    /// 0x8.
    BlankCheck,
    /// 0x9.
    VendorSpecific,
    /// 0xA.
    CopyAborted,
    /// 0xB.
    AbortedCommand,
    /// 0xD.
    VolumeOverflow,
    /// 0xE.
    Miscompare,
    /// 0xC, 0xF.
    Reserved(u8),
}

impl SenseKey {
    /// Decodes the 4-bit sense key.
    pub fn from_u8(v: u8) -> SenseKey {
        match v & 0x0f {
            0x0 => SenseKey::NoSense,
            0x1 => SenseKey::RecoveredError,
            0x2 => SenseKey::NotReady,
            0x3 => SenseKey::MediumError,
            0x4 => SenseKey::HardwareError,
            0x5 => SenseKey::IllegalRequest,
            0x6 => SenseKey::UnitAttention,
            0x7 => SenseKey::DataProtect,
            0x8 => SenseKey::BlankCheck,
            0x9 => SenseKey::VendorSpecific,
            0xa => SenseKey::CopyAborted,
            0xb => SenseKey::AbortedCommand,
            0xd => SenseKey::VolumeOverflow,
            0xe => SenseKey::Miscompare,
            r => SenseKey::Reserved(r),
        }
    }
}

/// Decoded sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: SenseKey,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// INFORMATION field, when valid (e.g. the failing LBA).
    pub information: Option<u64>,
    /// Deferred error (response code 0x71/0x73).
    pub deferred: bool,
}

impl Sense {
    /// Parses fixed or descriptor format sense data.
    pub fn parse(b: &[u8]) -> Result<Sense, ParseError> {
        let code = *b.first().ok_or(ParseError("empty sense data"))? & 0x7f;
        match code {
            0x70 | 0x71 => {
                // Fixed format: key at byte 2, INFORMATION 3..7 (valid bit 0x80 of byte 0),
                // ASC/ASCQ at 12/13.
                if b.len() < 14 {
                    return Err(ParseError("fixed sense shorter than 14 bytes"));
                }
                let information = if b[0] & 0x80 != 0 {
                    Some(u32::from_be_bytes([b[3], b[4], b[5], b[6]]) as u64)
                } else {
                    None
                };
                Ok(Sense {
                    key: SenseKey::from_u8(b[2]),
                    asc: b[12],
                    ascq: b[13],
                    information,
                    deferred: code == 0x71,
                })
            }
            0x72 | 0x73 => {
                // Descriptor format: key/ASC/ASCQ at 1/2/3, descriptors from byte 8.
                if b.len() < 8 {
                    return Err(ParseError("descriptor sense shorter than 8 bytes"));
                }
                let mut information = None;
                let end = (8 + b[7] as usize).min(b.len());
                let mut at = 8;
                while at + 2 <= end {
                    let (ty, len) = (b[at], b[at + 1] as usize);
                    if ty == 0x00 && len >= 0x0a && at + 12 <= end && b[at + 2] & 0x80 != 0 {
                        information = Some(super::be64(b, at + 4)?);
                    }
                    at += 2 + len;
                }
                Ok(Sense {
                    key: SenseKey::from_u8(b[1]),
                    asc: b[2],
                    ascq: b[3],
                    information,
                    deferred: code == 0x73,
                })
            }
            _ => Err(ParseError("unknown sense response code")),
        }
    }

    /// UNIT ATTENTION, CAPACITY DATA HAS CHANGED (SPC-4 annex F: ASC 2Ah,
    /// ASCQ 09h): READ CAPACITY answers differently now.
    pub fn is_capacity_changed(&self) -> bool {
        self.key == SenseKey::UnitAttention && self.asc == 0x2a && self.ascq == 0x09
    }

    /// A short description of common ASC/ASCQ pairs.
    pub fn description(&self) -> &'static str {
        match (self.asc, self.ascq) {
            (0x04, _) => "logical unit not ready",
            (0x11, _) => "unrecovered read error",
            (0x1a, 0x00) => "parameter list length error",
            (0x20, 0x00) => "invalid command operation code",
            (0x21, 0x00) => "logical block address out of range",
            (0x24, 0x00) => "invalid field in CDB",
            (0x25, 0x00) => "logical unit not supported",
            (0x26, _) => "invalid field in parameter list",
            (0x27, _) => "write protected",
            (0x28, 0x00) => "not ready to ready change, medium may have changed",
            (0x29, _) => "power on, reset, or bus device reset occurred",
            (0x2a, _) => "parameters changed",
            (0x3a, _) => "medium not present",
            _ => "",
        }
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (ASC {:#04x} ASCQ {:#04x}",
            self.key, self.asc, self.ascq
        )?;
        let d = self.description();
        if !d.is_empty() {
            write!(f, ": {d}")?;
        }
        if let Some(i) = self.information {
            write!(f, ", information {i}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fixed_unit_attention_from_tgtd() {
        // Sense from the captured tgtd CHECK CONDITION (after SenseLength 0x0012).
        let b = [
            0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0,
        ];
        let s = Sense::parse(&b).unwrap();
        assert_eq!(s.key, SenseKey::UnitAttention);
        assert_eq!((s.asc, s.ascq), (0x29, 0));
        assert_eq!(s.information, None);
        assert!(s.to_string().contains("power on"));
    }

    #[test]
    fn parse_descriptor_with_information() {
        let mut b = vec![0x72, 0x05, 0x21, 0x00, 0, 0, 0, 12];
        b.extend_from_slice(&[0x00, 0x0a, 0x80, 0]);
        b.extend_from_slice(&1234u64.to_be_bytes());
        let s = Sense::parse(&b).unwrap();
        assert_eq!(s.key, SenseKey::IllegalRequest);
        assert_eq!(s.information, Some(1234));
        assert_eq!(s.description(), "logical block address out of range");
    }

    #[test]
    fn malformed() {
        assert!(Sense::parse(&[]).is_err());
        assert!(Sense::parse(&[0x70, 0, 5]).is_err());
        assert!(Sense::parse(&[0x10; 20]).is_err());
        // Descriptor length running past the buffer is clamped, never a panic.
        assert!(Sense::parse(&[0x72, 5, 0x24, 0, 0, 0, 0, 255, 0, 200]).is_ok());
    }
}
