//! SNACK Request (RFC 7143 section 11.16). Only meaningful at ErrorRecoveryLevel > 0;
//! parsed and emitted so every initiator PDU is covered.

use crate::bhs::{field, flags, Bhs};
use crate::{Opcode, Result};

/// SNACK Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snack {
    /// Type: 0 Data/R2T, 1 Status, 2 DataACK, 3 R-Data.
    pub snack_type: u8,
    /// LUN.
    pub lun: u64,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag or SNACK Tag.
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// BegRun.
    pub beg_run: u32,
    /// RunLength.
    pub run_length: u32,
}

impl Snack {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<Snack> {
        Ok(Snack {
            snack_type: b.flags() & 0x0f,
            lun: b.lun(),
            itt: b.itt(),
            ttt: b.u32_at(field::TTT),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
            beg_run: b.u32_at(field::BEG_RUN),
            run_length: b.u32_at(field::RUN_LENGTH),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::Snack, false);
        b.set_flags(flags::FINAL | (self.snack_type & 0x0f));
        b.set_lun(self.lun);
        b.set_itt(self.itt);
        b.set_u32_at(field::TTT, self.ttt);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
        b.set_u32_at(field::BEG_RUN, self.beg_run);
        b.set_u32_at(field::RUN_LENGTH, self.run_length);
    }
}
