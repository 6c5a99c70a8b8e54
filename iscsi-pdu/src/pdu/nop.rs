//! NOP-Out and NOP-In (RFC 7143 sections 11.18 and 11.19): ping and keepalive.

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// The reserved tag value 0xffffffff (section 11.18.2/11.19.2).
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// NOP-Out, sent by the initiator: a ping (ITT valid) or the answer to a target ping
/// (ITT = 0xffffffff, TTT copied from the NOP-In).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopOut {
    /// I bit; a reply to a NOP-In must be immediate.
    pub immediate: bool,
    /// LUN (copied from a NOP-In being answered).
    pub lun: u64,
    /// Initiator Task Tag, or 0xffffffff when answering a target ping.
    pub itt: u32,
    /// Target Transfer Tag: 0xffffffff unless answering a NOP-In.
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
}

impl NopOut {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<NopOut> {
        Ok(NopOut {
            immediate: b.immediate(),
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            cmd_sn: b.u32_at(field::CMD_SN),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::NopOut, self.immediate);
        b.set_flags(flags::FINAL);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::CMD_SN, self.cmd_sn);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
    }
}

/// NOP-In, sent by the target: the answer to a NOP-Out, or a ping (TTT valid) that the
/// initiator must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopIn {
    /// LUN.
    pub lun: u64,
    /// ITT of the NOP-Out answered, or 0xffffffff.
    pub itt: u32,
    /// Target Transfer Tag: not 0xffffffff when the target asks for an answer.
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
}

impl NopIn {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<NopIn> {
        Ok(NopIn {
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::NopIn, false);
        b.set_flags(flags::FINAL);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
    }
}
