//! Reject (RFC 7143 section 11.17). The data segment holds the rejected PDU's header.

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// Reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// Reason (section 11.17.1), e.g. 0x02 data digest error, 0x04 protocol error,
    /// 0x09 invalid PDU field.
    pub reason: u8,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// DataSN/R2TSN (for data/R2T SNACK rejects).
    pub data_sn: u32,
}

impl Reject {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<Reject> {
        Ok(Reject {
            reason: b.byte(field::BYTE2),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            data_sn: b.u32_at(field::DATA_SN),
        })
    }

    /// Emits into a cleared BHS (ITT is 0xffffffff, section 11.17).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::Reject, false);
        b.set_flags(flags::FINAL);
        b.set_byte(field::BYTE2, self.reason);
        b.set_itt(0xffff_ffff);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_u32_at(field::DATA_SN, self.data_sn);
    }
}
