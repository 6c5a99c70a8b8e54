//! OFPT_GET_CONFIG_REPLY and OFPT_SET_CONFIG (spec section 7.3.2).
//!
//! ```text
//! ofp_header | flags (2) | miss_send_len (2)
//! ```

use crate::bytes::u16_at;
use crate::error::exact_len;
use crate::field::switch_config as field;
use crate::Result;

/// OFPC_FRAG_* values of the flags' low two bits.
pub mod flags {
    /// No special handling for fragments.
    pub const FRAG_NORMAL: u16 = 0;
    /// Drop fragments.
    pub const FRAG_DROP: u16 = 1;
    /// Reassemble (only if OFPC_IP_REASM is set).
    pub const FRAG_REASM: u16 = 2;
    /// Bits of the fragment handling mode.
    pub const FRAG_MASK: u16 = 3;
}

/// How IP fragments are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragHandling {
    /// OFPC_FRAG_NORMAL.
    Normal,
    /// OFPC_FRAG_DROP.
    Drop,
    /// OFPC_FRAG_REASM.
    Reasm,
    /// The value 3 (OVS: "nx-match"); not defined by 1.3.
    Other,
}

/// The switch configuration (both GET_CONFIG_REPLY and SET_CONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    /// OFPC_* flags.
    pub flags: u16,
    /// Bytes of a packet sent to the controller on a table miss (0xffff: whole packet).
    pub miss_send_len: u16,
}

impl Default for SwitchConfig {
    /// The spec defaults: normal fragment handling, OFP_DEFAULT_MISS_SEND_LEN (128).
    fn default() -> Self {
        SwitchConfig {
            flags: flags::FRAG_NORMAL,
            miss_send_len: 128,
        }
    }
}

impl SwitchConfig {
    /// Parses a whole GET_CONFIG_REPLY or SET_CONFIG.
    pub fn parse(msg: &[u8]) -> Result<SwitchConfig> {
        exact_len(msg, field::LEN)?;
        Ok(SwitchConfig {
            flags: u16_at(msg, field::FLAGS),
            miss_send_len: u16_at(msg, field::MISS_SEND_LEN),
        })
    }

    /// The fragment handling mode.
    pub fn frag(&self) -> FragHandling {
        match self.flags & flags::FRAG_MASK {
            flags::FRAG_NORMAL => FragHandling::Normal,
            flags::FRAG_DROP => FragHandling::Drop,
            flags::FRAG_REASM => FragHandling::Reasm,
            _ => FragHandling::Other,
        }
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.miss_send_len.to_be_bytes());
        Ok(())
    }
}
