//! Text Request and Response (RFC 7143 sections 11.10 and 11.11).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

const CONTINUE: u8 = 0x40;

/// Text Request header; the data segment is a key=value list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRequest {
    /// I bit.
    pub immediate: bool,
    /// F bit.
    pub final_flag: bool,
    /// C bit.
    pub continue_flag: bool,
    /// LUN.
    pub lun: u64,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag: 0xffffffff to start, else the one from the last response.
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
}

impl TextRequest {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<TextRequest> {
        Ok(TextRequest {
            immediate: b.immediate(),
            final_flag: b.final_flag(),
            continue_flag: b.flags() & CONTINUE != 0,
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            cmd_sn: b.u32_at(field::CMD_SN),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::TextRequest, self.immediate);
        let mut f = 0;
        if self.final_flag {
            f |= flags::FINAL;
        }
        if self.continue_flag {
            f |= CONTINUE;
        }
        b.set_flags(f);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::CMD_SN, self.cmd_sn);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
    }
}

/// Text Response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextResponse {
    /// F bit.
    pub final_flag: bool,
    /// C bit.
    pub continue_flag: bool,
    /// LUN.
    pub lun: u64,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag: 0xffffffff when the exchange is complete.
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
}

impl TextResponse {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<TextResponse> {
        Ok(TextResponse {
            final_flag: b.final_flag(),
            continue_flag: b.flags() & CONTINUE != 0,
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
        b.set_opcode(Opcode::TextResponse, false);
        let mut f = 0;
        if self.final_flag {
            f |= flags::FINAL;
        }
        if self.continue_flag {
            f |= CONTINUE;
        }
        b.set_flags(f);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
    }
}
