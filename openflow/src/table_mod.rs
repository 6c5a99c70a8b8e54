//! OFPT_TABLE_MOD (spec section 7.3.3).
//!
//! ```text
//! ofp_header | table_id | pad (3) | config (4)
//! ```

use crate::bytes::{u32_at, u8_at, zeros};
use crate::error::exact_len;
use crate::field::table_mod as field;
use crate::Result;

/// OFPTT_MAX: the last usable table number.
pub const OFPTT_MAX: u8 = 0xfe;
/// OFPTT_ALL: wildcard table in requests.
pub const OFPTT_ALL: u8 = 0xff;

/// A table configuration change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMod {
    /// Table, or OFPTT_ALL.
    pub table_id: u8,
    /// OFPTC_* bits (all deprecated in 1.3).
    pub config: u32,
}

impl TableMod {
    /// Parses a whole TABLE_MOD.
    pub fn parse(msg: &[u8]) -> Result<TableMod> {
        exact_len(msg, field::LEN)?;
        Ok(TableMod {
            table_id: u8_at(msg, field::TABLE_ID),
            config: u32_at(msg, field::CONFIG),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.table_id);
        zeros(out, 3);
        out.extend_from_slice(&self.config.to_be_bytes());
        Ok(())
    }
}
