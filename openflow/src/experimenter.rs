//! OFPT_EXPERIMENTER (spec section 7.5.4), kept raw.
//!
//! ```text
//! ofp_header | experimenter (4) | exp_type (4) | data ...
//! ```

use crate::bytes::u32_at;
use crate::error::check_len;
use crate::field::experimenter as field;
use crate::Result;

/// An experimenter message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimenter {
    /// Experimenter id (0x00002320 for Nicira).
    pub experimenter: u32,
    /// Experimenter-defined type.
    pub exp_type: u32,
    /// The bytes after exp_type.
    pub data: Vec<u8>,
}

impl Experimenter {
    /// Parses a whole EXPERIMENTER message.
    pub fn parse(msg: &[u8]) -> Result<Experimenter> {
        check_len(msg, field::LEN)?;
        Ok(Experimenter {
            experimenter: u32_at(msg, field::EXPERIMENTER),
            exp_type: u32_at(msg, field::EXP_TYPE),
            data: msg[field::DATA..].to_vec(),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.experimenter.to_be_bytes());
        out.extend_from_slice(&self.exp_type.to_be_bytes());
        out.extend_from_slice(&self.data);
        Ok(())
    }
}
