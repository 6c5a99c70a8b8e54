//! Zero-copy view over the Basic Header Segment (RFC 7143 section 11.2).
//!
//! ```text
//! Byte/     0       |       1       |       2       |       3       |
//!    +---------------+---------------+---------------+---------------+
//!   0|.|I| Opcode    |F|  Opcode-specific fields                     |
//!   4|TotalAHSLength | DataSegmentLength                             |
//!   8| LUN or Opcode-specific fields                                 |
//!  16| Initiator Task Tag                                            |
//!  20/ Opcode-specific fields                                        /
//!  48+---------------+---------------+---------------+---------------+
//! ```

use crate::{Error, Opcode, Result};

/// Every BHS field offset used by this crate, per PDU where the meaning differs.
pub mod field {
    use core::ops::Range;

    /// A byte range of the BHS.
    pub type Field = Range<usize>;

    /// Size of the BHS: 48 bytes.
    pub const LEN: usize = 48;

    // Common to every PDU (RFC 7143 section 11.2.1).
    /// Byte 0: the I bit (0x40) and the 6-bit opcode.
    pub const OPCODE: usize = 0;
    /// Byte 1: the F (final) bit and opcode-specific flags.
    pub const FLAGS: usize = 1;
    /// Byte 2: opcode-specific (response code, status class, ...).
    pub const BYTE2: usize = 2;
    /// Byte 3: opcode-specific (SCSI status, ...).
    pub const BYTE3: usize = 3;
    /// `TotalAHSLength`: additional header segments' length in 4-byte words.
    pub const TOTAL_AHS_LEN: usize = 4;
    /// `DataSegmentLength`: the data segment's length in bytes, without padding (24 bits).
    pub const DATA_SEGMENT_LEN: Field = 5..8;
    /// The logical unit number (8 bytes, SAM-5 format).
    pub const LUN: Field = 8..16;
    /// `Initiator Task Tag`: names the task the PDU belongs to.
    pub const ITT: Field = 16..20;

    // Bytes 20..48 by role. Initiator PDUs carry CmdSN/ExpStatSN, target PDUs
    // StatSN/ExpCmdSN/MaxCmdSN, all at the same places.
    /// `Target Transfer Tag` (R2T, Data-Out, NOP).
    pub const TTT: Field = 20..24;
    /// `Expected Data Transfer Length` of a SCSI command (section 11.3.4), in bytes.
    pub const EXPECTED_DATA_LEN: Field = 20..24;
    /// `Referenced Task Tag` of a task management request (section 11.5.3).
    pub const REFERENCED_TASK_TAG: Field = 20..24;
    /// `SNACK Tag` of a SNACK request (section 11.16.2).
    pub const SNACK_TAG: Field = 20..24;
    /// `CID`: connection id of a login or logout request.
    pub const CID: Field = 20..22;
    /// `CmdSN` of an initiator PDU.
    pub const CMD_SN: Field = 24..28;
    /// `StatSN` of a target PDU.
    pub const STAT_SN: Field = 24..28;
    /// `ExpStatSN` of an initiator PDU.
    pub const EXP_STAT_SN: Field = 28..32;
    /// `ExpCmdSN` of a target PDU.
    pub const EXP_CMD_SN: Field = 28..32;
    /// `MaxCmdSN` of a target PDU.
    pub const MAX_CMD_SN: Field = 32..36;
    /// The SCSI command descriptor block (16 bytes; longer ones continue in an AHS).
    pub const CDB: Field = 32..48;
    /// `RefCmdSN` of a task management request.
    pub const REF_CMD_SN: Field = 32..36;
    /// `ExpDataSN` of a SCSI response or task management request.
    pub const EXP_DATA_SN: Field = 36..40;
    /// `DataSN` of a Data-In or Data-Out PDU.
    pub const DATA_SN: Field = 36..40;
    /// `R2TSN` of an R2T.
    pub const R2T_SN: Field = 36..40;
    /// `Buffer Offset` of a Data-In, Data-Out or R2T, in bytes.
    pub const BUFFER_OFFSET: Field = 40..44;
    /// `Bidirectional Read Residual Count` of a SCSI response.
    pub const BIDI_RESIDUAL: Field = 40..44;
    /// `Residual Count` of a SCSI response or Data-In, in bytes.
    pub const RESIDUAL_COUNT: Field = 44..48;
    /// `Desired Data Transfer Length` of an R2T, in bytes.
    pub const DESIRED_DATA_LEN: Field = 44..48;
    /// `BegRun` of a SNACK request: the first PDU to resend.
    pub const BEG_RUN: Field = 40..44;
    /// `RunLength` of a SNACK request: how many PDUs (0: all after `BegRun`).
    pub const RUN_LENGTH: Field = 44..48;

    // Login (section 11.12 / 11.13).
    /// `ISID`: the initiator part of the session id (6 bytes, section 11.12.5).
    pub const ISID: Field = 8..14;
    /// `TSIH`: the target-assigned session identifying handle.
    pub const TSIH: Field = 14..16;
    /// Login response `Status-Class` (0: success, 1: redirect, 2: initiator error, 3: target error).
    pub const STATUS_CLASS: usize = 36;
    /// Login response `Status-Detail`.
    pub const STATUS_DETAIL: usize = 37;

    // Logout response (section 11.15).
    /// `Time2Wait`: seconds to wait before reconnecting.
    pub const TIME2WAIT: Field = 40..42;
    /// `Time2Retain`: seconds the target keeps the connection's tasks.
    pub const TIME2RETAIN: Field = 42..44;

    // Asynchronous message (section 11.9).
    /// `AsyncEvent` (section 11.9.1).
    pub const ASYNC_EVENT: usize = 36;
    /// `AsyncVCode`: vendor-specific code.
    pub const ASYNC_VCODE: usize = 37;
    /// `Parameter1` (for instance the CID to drop).
    pub const PARAMETER1: Field = 38..40;
    /// `Parameter2` (for instance Time2Wait in seconds).
    pub const PARAMETER2: Field = 40..42;
    /// `Parameter3` (for instance Time2Retain in seconds).
    pub const PARAMETER3: Field = 42..44;
}

/// Bits of BHS byte 0 and byte 1 shared by several PDUs.
pub mod flags {
    /// Immediate delivery bit in byte 0.
    pub const IMMEDIATE: u8 = 0x40;
    /// Final bit in byte 1.
    pub const FINAL: u8 = 0x80;
}

/// A read/write view of a 48-byte Basic Header Segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bhs<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Bhs<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Bhs<T> {
        Bhs { buffer }
    }

    /// Wraps a buffer, checking it holds a whole BHS.
    pub fn new_checked(buffer: T) -> Result<Bhs<T>> {
        let b = Bhs::new_unchecked(buffer);
        b.check_len()?;
        Ok(b)
    }

    /// Checks the buffer is at least 48 bytes long. All accessors rely on this.
    pub fn check_len(&self) -> Result<()> {
        let available = self.buffer.as_ref().len();
        if available < field::LEN {
            return Err(Error::Truncated {
                needed: field::LEN,
                available,
            });
        }
        Ok(())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Byte at `i`.
    pub fn byte(&self, i: usize) -> u8 {
        self.b()[i]
    }

    /// Big-endian u32 at the given field.
    pub fn u32_at(&self, f: field::Field) -> u32 {
        let b = &self.b()[f];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Big-endian u16 at the given field.
    pub fn u16_at(&self, f: field::Field) -> u16 {
        let b = &self.b()[f];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Raw opcode bits (low six bits of byte 0).
    pub fn opcode_raw(&self) -> u8 {
        self.byte(field::OPCODE) & 0x3f
    }

    /// Decoded opcode.
    pub fn opcode(&self) -> Result<Opcode> {
        Opcode::from_u8(self.opcode_raw())
    }

    /// The I (immediate) bit.
    pub fn immediate(&self) -> bool {
        self.byte(field::OPCODE) & flags::IMMEDIATE != 0
    }

    /// Byte 1: the F bit and opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.byte(field::FLAGS)
    }

    /// The F (final) bit.
    pub fn final_flag(&self) -> bool {
        self.flags() & flags::FINAL != 0
    }

    /// TotalAHSLength, in 4-byte words.
    pub fn total_ahs_len(&self) -> u8 {
        self.byte(field::TOTAL_AHS_LEN)
    }

    /// DataSegmentLength in bytes, excluding padding.
    pub fn data_segment_len(&self) -> u32 {
        let b = &self.b()[field::DATA_SEGMENT_LEN];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// LUN field, bytes 8..16, as a big-endian integer.
    pub fn lun(&self) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.b()[field::LUN]);
        u64::from_be_bytes(v)
    }

    /// Initiator Task Tag.
    pub fn itt(&self) -> u32 {
        self.u32_at(field::ITT)
    }

    /// The 48 header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.b()[..field::LEN]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Bhs<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets byte `i`.
    pub fn set_byte(&mut self, i: usize, v: u8) {
        self.bm()[i] = v;
    }

    /// Sets a big-endian u32 field.
    pub fn set_u32_at(&mut self, f: field::Field, v: u32) {
        self.bm()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets a big-endian u16 field.
    pub fn set_u16_at(&mut self, f: field::Field, v: u16) {
        self.bm()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Zeroes the 48 header bytes.
    pub fn clear(&mut self) {
        self.bm()[..field::LEN].fill(0);
    }

    /// Sets opcode and I bit.
    pub fn set_opcode(&mut self, op: Opcode, immediate: bool) {
        let i = if immediate { flags::IMMEDIATE } else { 0 };
        self.set_byte(field::OPCODE, op as u8 | i);
    }

    /// Sets byte 1.
    pub fn set_flags(&mut self, v: u8) {
        self.set_byte(field::FLAGS, v);
    }

    /// Sets TotalAHSLength (4-byte words).
    pub fn set_total_ahs_len(&mut self, words: u8) {
        self.set_byte(field::TOTAL_AHS_LEN, words);
    }

    /// Sets DataSegmentLength; fails above 2^24-1.
    pub fn set_data_segment_len(&mut self, len: u32) -> Result<()> {
        if len > 0x00ff_ffff {
            return Err(Error::DataTooLong(len as usize));
        }
        let b = len.to_be_bytes();
        self.bm()[field::DATA_SEGMENT_LEN].copy_from_slice(&b[1..]);
        Ok(())
    }

    /// Sets the LUN field.
    pub fn set_lun(&mut self, lun: u64) {
        self.bm()[field::LUN].copy_from_slice(&lun.to_be_bytes());
    }

    /// Sets the Initiator Task Tag.
    pub fn set_itt(&mut self, itt: u32) {
        self.set_u32_at(field::ITT, itt);
    }

    /// Mutable access to a field's bytes.
    pub fn field_mut(&mut self, f: field::Field) -> &mut [u8] {
        &mut self.bm()[f]
    }
}

/// Encodes a single-level LUN number as the 8-byte LUN field (SAM-5 flat or
/// peripheral addressing, as RFC 7143 section 11.1.4 and SAM require).
pub fn encode_lun(lun: u16) -> u64 {
    let hi: u16 = if lun < 256 {
        lun // peripheral device addressing, bus 0
    } else {
        0x4000 | (lun & 0x3fff) // flat space addressing
    };
    (hi as u64) << 48
}

/// Decodes the first level of an 8-byte LUN field back to a LUN number.
pub fn decode_lun(field: u64) -> u16 {
    let hi = (field >> 48) as u16;
    match hi >> 14 {
        0 => hi & 0x00ff,
        1 => hi & 0x3fff,
        _ => hi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_is_an_error() {
        assert_eq!(
            Bhs::new_checked(&[0u8; 47][..]).unwrap_err(),
            Error::Truncated {
                needed: 48,
                available: 47
            }
        );
    }

    #[test]
    fn data_segment_len_is_24_bits() {
        let mut b = Bhs::new_unchecked([0u8; 48]);
        b.set_data_segment_len(0x00ab_cdef).unwrap();
        assert_eq!(&b.as_bytes()[5..8], &[0xab, 0xcd, 0xef]);
        assert_eq!(b.data_segment_len(), 0x00ab_cdef);
        assert_eq!(
            b.set_data_segment_len(1 << 24),
            Err(Error::DataTooLong(1 << 24))
        );
    }

    #[test]
    fn lun_encoding() {
        assert_eq!(encode_lun(1), 0x0001_0000_0000_0000);
        assert_eq!(encode_lun(300), 0x412c_0000_0000_0000);
        assert_eq!(decode_lun(encode_lun(1)), 1);
        assert_eq!(decode_lun(encode_lun(300)), 300);
    }
}
