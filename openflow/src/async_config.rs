//! OFPT_GET_ASYNC_REPLY / OFPT_SET_ASYNC (spec section 7.3.10): which asynchronous
//! messages a connection wants, as master/equal (index 0) and as slave (index 1).
//!
//! ```text
//! ofp_header | packet_in_mask[2] | port_status_mask[2] | flow_removed_mask[2]
//! ```

use crate::bytes::u32_at;
use crate::error::exact_len;
use crate::field::async_config as field;
use crate::Result;

/// The asynchronous message configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    /// Bitmasks of OFPR_* packet-in reasons.
    pub packet_in_mask: [u32; 2],
    /// Bitmasks of OFPPR_* port status reasons.
    pub port_status_mask: [u32; 2],
    /// Bitmasks of OFPRR_* flow removed reasons.
    pub flow_removed_mask: [u32; 2],
}

impl AsyncConfig {
    /// Parses a whole GET_ASYNC_REPLY or SET_ASYNC.
    pub fn parse(msg: &[u8]) -> Result<AsyncConfig> {
        exact_len(msg, field::LEN)?;
        let pair = |f: [crate::field::Field; 2]| {
            let [a, b] = f;
            [u32_at(msg, a), u32_at(msg, b)]
        };
        Ok(AsyncConfig {
            packet_in_mask: pair(field::PACKET_IN_MASK),
            port_status_mask: pair(field::PORT_STATUS_MASK),
            flow_removed_mask: pair(field::FLOW_REMOVED_MASK),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        for w in self
            .packet_in_mask
            .iter()
            .chain(&self.port_status_mask)
            .chain(&self.flow_removed_mask)
        {
            out.extend_from_slice(&w.to_be_bytes());
        }
        Ok(())
    }
}
