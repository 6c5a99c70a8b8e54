//! Logout Request and Response (RFC 7143 sections 11.14 and 11.15).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// Logout reason codes (section 11.14.1).
pub mod reason {
    /// Close the session.
    pub const CLOSE_SESSION: u8 = 0;
    /// Close the connection.
    pub const CLOSE_CONNECTION: u8 = 1;
    /// Remove the connection for recovery.
    pub const REMOVE_FOR_RECOVERY: u8 = 2;
}

/// Logout Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutRequest {
    /// I bit.
    pub immediate: bool,
    /// Reason code.
    pub reason: u8,
    /// Initiator Task Tag.
    pub itt: u32,
    /// CID to close (reasons 1 and 2).
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
}

impl LogoutRequest {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<LogoutRequest> {
        Ok(LogoutRequest {
            immediate: b.immediate(),
            reason: b.flags() & 0x7f,
            itt: b.itt(),
            cid: b.u16_at(field::CID),
            cmd_sn: b.u32_at(field::CMD_SN),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::LogoutRequest, self.immediate);
        b.set_flags(flags::FINAL | (self.reason & 0x7f));
        b.set_itt(self.itt);
        b.set_u16_at(field::CID, self.cid);
        b.set_u32_at(field::CMD_SN, self.cmd_sn);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
    }
}

/// Logout Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutResponse {
    /// Response: 0 closed successfully, 1 CID not found, 2 recovery not supported,
    /// 3 cleanup failed.
    pub response: u8,
    /// Initiator Task Tag.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Time2Wait.
    pub time2wait: u16,
    /// Time2Retain.
    pub time2retain: u16,
}

impl LogoutResponse {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<LogoutResponse> {
        Ok(LogoutResponse {
            response: b.byte(field::BYTE2),
            itt: b.itt(),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            time2wait: b.u16_at(field::TIME2WAIT),
            time2retain: b.u16_at(field::TIME2RETAIN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::LogoutResponse, false);
        b.set_flags(flags::FINAL);
        b.set_byte(field::BYTE2, self.response);
        b.set_itt(self.itt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_u16_at(field::TIME2WAIT, self.time2wait);
        b.set_u16_at(field::TIME2RETAIN, self.time2retain);
    }
}
