//! SCSI Command (RFC 7143 section 11.3).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

const READ: u8 = 0x40;
const WRITE: u8 = 0x20;
const ATTR_MASK: u8 = 0x07;

/// Task attributes (section 11.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAttribute {
    /// Untagged.
    Untagged,
    /// Simple.
    Simple,
    /// Ordered.
    Ordered,
    /// Head of queue.
    HeadOfQueue,
    /// ACA.
    Aca,
    /// A reserved value (5..=7), preserved.
    Reserved(u8),
}

impl TaskAttribute {
    fn from_bits(v: u8) -> TaskAttribute {
        match v & ATTR_MASK {
            0 => TaskAttribute::Untagged,
            1 => TaskAttribute::Simple,
            2 => TaskAttribute::Ordered,
            3 => TaskAttribute::HeadOfQueue,
            4 => TaskAttribute::Aca,
            r => TaskAttribute::Reserved(r),
        }
    }
    fn bits(self) -> u8 {
        match self {
            TaskAttribute::Untagged => 0,
            TaskAttribute::Simple => 1,
            TaskAttribute::Ordered => 2,
            TaskAttribute::HeadOfQueue => 3,
            TaskAttribute::Aca => 4,
            TaskAttribute::Reserved(r) => r & ATTR_MASK,
        }
    }
}

/// SCSI Command PDU header. CDBs longer than 16 bytes travel in an Extended CDB AHS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiCommand {
    /// I bit.
    pub immediate: bool,
    /// F bit: no unsolicited Data-Out PDUs follow.
    pub final_flag: bool,
    /// R bit: data flows from target to initiator.
    pub read: bool,
    /// W bit: data flows from initiator to target.
    pub write: bool,
    /// Task attribute.
    pub attr: TaskAttribute,
    /// LUN field.
    pub lun: u64,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Expected Data Transfer Length.
    pub expected_data_len: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// The first 16 bytes of the CDB, zero padded.
    pub cdb: [u8; 16],
}

impl ScsiCommand {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<ScsiCommand> {
        let f = b.flags();
        let mut cdb = [0u8; 16];
        cdb.copy_from_slice(&b.as_bytes()[field::CDB]);
        Ok(ScsiCommand {
            immediate: b.immediate(),
            final_flag: f & flags::FINAL != 0,
            read: f & READ != 0,
            write: f & WRITE != 0,
            attr: TaskAttribute::from_bits(f),
            lun: b.lun(),
            itt: b.itt(),
            expected_data_len: b.u32_at(field::EXPECTED_DATA_LEN),
            cmd_sn: b.u32_at(field::CMD_SN),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
            cdb,
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::ScsiCommand, self.immediate);
        let mut f = self.attr.bits();
        if self.final_flag {
            f |= flags::FINAL;
        }
        if self.read {
            f |= READ;
        }
        if self.write {
            f |= WRITE;
        }
        b.set_flags(f);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::EXPECTED_DATA_LEN, self.expected_data_len);
        b.set_u32_at(field::CMD_SN, self.cmd_sn);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
        b.field_mut(field::CDB).copy_from_slice(&self.cdb);
    }
}
