//! Task Management Function Request and Response (RFC 7143 sections 11.5 and 11.6).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// Task management functions (section 11.5.1).
pub mod function {
    /// ABORT TASK.
    pub const ABORT_TASK: u8 = 1;
    /// ABORT TASK SET.
    pub const ABORT_TASK_SET: u8 = 2;
    /// CLEAR ACA.
    pub const CLEAR_ACA: u8 = 3;
    /// CLEAR TASK SET.
    pub const CLEAR_TASK_SET: u8 = 4;
    /// LOGICAL UNIT RESET.
    pub const LOGICAL_UNIT_RESET: u8 = 5;
    /// TARGET WARM RESET.
    pub const TARGET_WARM_RESET: u8 = 6;
    /// TARGET COLD RESET.
    pub const TARGET_COLD_RESET: u8 = 7;
    /// TASK REASSIGN.
    pub const TASK_REASSIGN: u8 = 8;
}

/// Task Management Function Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMgmtRequest {
    /// I bit.
    pub immediate: bool,
    /// Function code (see [`function`]).
    pub function: u8,
    /// LUN.
    pub lun: u64,
    /// Initiator Task Tag of this request.
    pub itt: u32,
    /// Referenced Task Tag (ABORT TASK), else 0xffffffff.
    pub referenced_task_tag: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// RefCmdSN: CmdSN of the referenced task (ABORT TASK).
    pub ref_cmd_sn: u32,
    /// ExpDataSN.
    pub exp_data_sn: u32,
}

impl TaskMgmtRequest {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<TaskMgmtRequest> {
        Ok(TaskMgmtRequest {
            immediate: b.immediate(),
            function: b.flags() & 0x7f,
            lun: b.lun(),
            itt: b.itt(),
            referenced_task_tag: b.u32_at(field::REFERENCED_TASK_TAG),
            cmd_sn: b.u32_at(field::CMD_SN),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
            ref_cmd_sn: b.u32_at(field::REF_CMD_SN),
            exp_data_sn: b.u32_at(field::EXP_DATA_SN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::TaskMgmtRequest, self.immediate);
        b.set_flags(flags::FINAL | (self.function & 0x7f));
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::REFERENCED_TASK_TAG, self.referenced_task_tag);
        b.set_u32_at(field::CMD_SN, self.cmd_sn);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
        b.set_u32_at(field::REF_CMD_SN, self.ref_cmd_sn);
        b.set_u32_at(field::EXP_DATA_SN, self.exp_data_sn);
    }
}

/// Task Management Function Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMgmtResponse {
    /// Response (section 11.6.1): 0 function complete, 1 task does not exist,
    /// 2 LUN does not exist, 3 task still allegiant, 4 reassignment unsupported,
    /// 5 function not supported, 6 authorization failed, 255 rejected.
    pub response: u8,
    /// Initiator Task Tag of the request.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
}

impl TaskMgmtResponse {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<TaskMgmtResponse> {
        Ok(TaskMgmtResponse {
            response: b.byte(field::BYTE2),
            itt: b.itt(),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::TaskMgmtResponse, false);
        b.set_flags(flags::FINAL);
        b.set_byte(field::BYTE2, self.response);
        b.set_itt(self.itt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
    }
}
