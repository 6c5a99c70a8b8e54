//! Ready To Transfer (RFC 7143 section 11.8).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// R2T: the target solicits `desired_len` bytes of write data at `buffer_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2t {
    /// LUN.
    pub lun: u64,
    /// Initiator Task Tag of the write.
    pub itt: u32,
    /// Target Transfer Tag, echoed in the Data-Out PDUs answering it.
    pub ttt: u32,
    /// StatSN (the next StatSN, not advanced by this PDU).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// R2TSN.
    pub r2t_sn: u32,
    /// Buffer Offset.
    pub buffer_offset: u32,
    /// Desired Data Transfer Length (section 11.8.4: never 0, at most MaxBurstLength).
    pub desired_len: u32,
}

impl R2t {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<R2t> {
        Ok(R2t {
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            r2t_sn: b.u32_at(field::R2T_SN),
            buffer_offset: b.u32_at(field::BUFFER_OFFSET),
            desired_len: b.u32_at(field::DESIRED_DATA_LEN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::R2t, false);
        b.set_flags(flags::FINAL);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_u32_at(field::R2T_SN, self.r2t_sn);
        b.set_u32_at(field::BUFFER_OFFSET, self.buffer_offset);
        b.set_u32_at(field::DESIRED_DATA_LEN, self.desired_len);
    }
}
