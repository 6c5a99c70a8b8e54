//! SCSI Data-Out and Data-In (RFC 7143 sections 11.7 and 11.8).

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

const ACK: u8 = 0x40;
const OVERFLOW: u8 = 0x04;
const UNDERFLOW: u8 = 0x02;
const STATUS: u8 = 0x01;

/// SCSI Data-Out header: write data, solicited by an R2T (TTT valid) or unsolicited
/// (TTT = 0xffffffff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOut {
    /// F bit: last PDU of this sequence.
    pub final_flag: bool,
    /// LUN (copied from the R2T, or the command's).
    pub lun: u64,
    /// Initiator Task Tag of the command.
    pub itt: u32,
    /// Target Transfer Tag from the R2T, or 0xffffffff for unsolicited data.
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// DataSN, counted from 0 within each sequence (section 11.7.5).
    pub data_sn: u32,
    /// Buffer Offset of this PDU's data within the command's data.
    pub buffer_offset: u32,
}

impl DataOut {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<DataOut> {
        Ok(DataOut {
            final_flag: b.final_flag(),
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
            data_sn: b.u32_at(field::DATA_SN),
            buffer_offset: b.u32_at(field::BUFFER_OFFSET),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::DataOut, false);
        b.set_flags(if self.final_flag { flags::FINAL } else { 0 });
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
        b.set_u32_at(field::DATA_SN, self.data_sn);
        b.set_u32_at(field::BUFFER_OFFSET, self.buffer_offset);
    }
}

/// SCSI Data-In header: read data, possibly carrying the command status
/// ("phase collapse", section 11.7.4: S bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataIn {
    /// F bit: last PDU of the sequence.
    pub final_flag: bool,
    /// A bit: the target asks for a DataACK SNACK (ERL > 0 only).
    pub ack: bool,
    /// O bit (valid with S).
    pub overflow: bool,
    /// U bit (valid with S).
    pub underflow: bool,
    /// S bit: Status, StatSN and Residual Count are valid; the command is complete.
    pub status_present: bool,
    /// SCSI status (valid with S).
    pub status: u8,
    /// LUN.
    pub lun: u64,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag.
    pub ttt: u32,
    /// StatSN (valid with S).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// DataSN.
    pub data_sn: u32,
    /// Buffer Offset.
    pub buffer_offset: u32,
    /// Residual Count (valid with S).
    pub residual: u32,
}

impl DataIn {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<DataIn> {
        let f = b.flags();
        Ok(DataIn {
            final_flag: f & flags::FINAL != 0,
            ack: f & ACK != 0,
            overflow: f & OVERFLOW != 0,
            underflow: f & UNDERFLOW != 0,
            status_present: f & STATUS != 0,
            status: b.byte(field::BYTE3),
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            data_sn: b.u32_at(field::DATA_SN),
            buffer_offset: b.u32_at(field::BUFFER_OFFSET),
            residual: b.u32_at(field::RESIDUAL_COUNT),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::DataIn, false);
        let mut f = 0;
        for (on, bit) in [
            (self.final_flag, flags::FINAL),
            (self.ack, ACK),
            (self.overflow, OVERFLOW),
            (self.underflow, UNDERFLOW),
            (self.status_present, STATUS),
        ] {
            if on {
                f |= bit;
            }
        }
        b.set_flags(f);
        b.set_byte(field::BYTE3, self.status);
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_u32_at(field::DATA_SN, self.data_sn);
        b.set_u32_at(field::BUFFER_OFFSET, self.buffer_offset);
        b.set_u32_at(field::RESIDUAL_COUNT, self.residual);
    }
}
