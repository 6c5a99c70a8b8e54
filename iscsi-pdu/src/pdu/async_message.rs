//! Asynchronous Message (RFC 7143 section 11.9).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// Asynchronous events (section 11.9.1).
pub mod event {
    /// A SCSI asynchronous event (sense data in the data segment).
    pub const SCSI: u8 = 0;
    /// The target requests a logout (Parameter3 = time to logout).
    pub const LOGOUT_REQUEST: u8 = 1;
    /// The target will drop the connection (Parameter1 = CID).
    pub const DROP_CONNECTION: u8 = 2;
    /// The target will drop all connections of the session.
    pub const DROP_ALL_CONNECTIONS: u8 = 3;
    /// The target requests parameter renegotiation.
    pub const RENEGOTIATE: u8 = 4;
    /// Vendor specific.
    pub const VENDOR: u8 = 255;
}

/// Asynchronous Message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncMessage {
    /// LUN.
    pub lun: u64,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// AsyncEvent.
    pub event: u8,
    /// AsyncVCode.
    pub vcode: u8,
    /// Parameter1.
    pub parameter1: u16,
    /// Parameter2.
    pub parameter2: u16,
    /// Parameter3.
    pub parameter3: u16,
}

impl AsyncMessage {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<AsyncMessage> {
        Ok(AsyncMessage {
            lun: b.lun(),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            event: b.byte(field::ASYNC_EVENT),
            vcode: b.byte(field::ASYNC_VCODE),
            parameter1: b.u16_at(field::PARAMETER1),
            parameter2: b.u16_at(field::PARAMETER2),
            parameter3: b.u16_at(field::PARAMETER3),
        })
    }

    /// Emits into a cleared BHS (ITT is 0xffffffff, section 11.9).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::AsyncMessage, false);
        b.set_flags(flags::FINAL);
        b.set_lun(self.lun);
        b.set_itt(0xffff_ffff);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_byte(field::ASYNC_EVENT, self.event);
        b.set_byte(field::ASYNC_VCODE, self.vcode);
        b.set_u16_at(field::PARAMETER1, self.parameter1);
        b.set_u16_at(field::PARAMETER2, self.parameter2);
        b.set_u16_at(field::PARAMETER3, self.parameter3);
    }
}
