//! SCSI Response (RFC 7143 section 11.4).

use crate::bhs::{field, flags, Bhs};
use crate::{Error, Opcode, Result};

const BIDI_OVERFLOW: u8 = 0x10;
const BIDI_UNDERFLOW: u8 = 0x08;
const OVERFLOW: u8 = 0x04;
const UNDERFLOW: u8 = 0x02;

/// SCSI Response PDU header. Its data segment holds SenseLength, sense data and
/// response data (section 11.4.7); see [`ScsiResponse::sense`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiResponse {
    /// o bit: bidirectional read residual overflow.
    pub bidi_overflow: bool,
    /// u bit: bidirectional read residual underflow.
    pub bidi_underflow: bool,
    /// O bit: residual overflow.
    pub overflow: bool,
    /// U bit: residual underflow.
    pub underflow: bool,
    /// iSCSI service response: 0x00 command completed at target, 0x01 target failure.
    pub response: u8,
    /// SCSI status (valid when response is 0).
    pub status: u8,
    /// Initiator Task Tag.
    pub itt: u32,
    /// SNACK Tag.
    pub snack_tag: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// ExpDataSN.
    pub exp_data_sn: u32,
    /// Bidirectional Read Residual Count.
    pub bidi_residual: u32,
    /// Residual Count.
    pub residual: u32,
}

impl ScsiResponse {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<ScsiResponse> {
        let f = b.flags();
        Ok(ScsiResponse {
            bidi_overflow: f & BIDI_OVERFLOW != 0,
            bidi_underflow: f & BIDI_UNDERFLOW != 0,
            overflow: f & OVERFLOW != 0,
            underflow: f & UNDERFLOW != 0,
            response: b.byte(field::BYTE2),
            status: b.byte(field::BYTE3),
            itt: b.itt(),
            snack_tag: b.u32_at(field::SNACK_TAG),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            exp_data_sn: b.u32_at(field::EXP_DATA_SN),
            bidi_residual: b.u32_at(field::BIDI_RESIDUAL),
            residual: b.u32_at(field::RESIDUAL_COUNT),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::ScsiResponse, false);
        let mut f = flags::FINAL;
        for (on, bit) in [
            (self.bidi_overflow, BIDI_OVERFLOW),
            (self.bidi_underflow, BIDI_UNDERFLOW),
            (self.overflow, OVERFLOW),
            (self.underflow, UNDERFLOW),
        ] {
            if on {
                f |= bit;
            }
        }
        b.set_flags(f);
        b.set_byte(field::BYTE2, self.response);
        b.set_byte(field::BYTE3, self.status);
        b.set_itt(self.itt);
        b.set_u32_at(field::SNACK_TAG, self.snack_tag);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_u32_at(field::EXP_DATA_SN, self.exp_data_sn);
        b.set_u32_at(field::BIDI_RESIDUAL, self.bidi_residual);
        b.set_u32_at(field::RESIDUAL_COUNT, self.residual);
    }

    /// Splits a SCSI Response data segment into (sense data, response data).
    ///
    /// Section 11.4.7.2: "the data segment ... contains a 2-byte SenseLength field
    /// followed by the sense data". An empty segment means no sense.
    pub fn sense(data: &[u8]) -> Result<(&[u8], &[u8])> {
        if data.is_empty() {
            return Ok((&[], &[]));
        }
        if data.len() < 2 {
            return Err(Error::Truncated {
                needed: 2,
                available: data.len(),
            });
        }
        let n = u16::from_be_bytes([data[0], data[1]]) as usize;
        let rest = &data[2..];
        if rest.len() < n {
            return Err(Error::Truncated {
                needed: n + 2,
                available: data.len(),
            });
        }
        Ok(rest.split_at(n))
    }
}
