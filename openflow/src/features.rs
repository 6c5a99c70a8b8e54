//! OFPT_FEATURES_REPLY (spec section 7.3.1).
//!
//! ```text
//! ofp_header | datapath_id (8) | n_buffers (4) | n_tables | auxiliary_id | pad (2)
//!            | capabilities (4) | reserved (4)
//! ```

use crate::bytes::{u32_at, u64_at, u8_at, zeros};
use crate::error::exact_len;
use crate::field::features as field;
use crate::Result;

/// OFPC_* capability bits.
pub mod capabilities {
    /// OFPC_FLOW_STATS: flow statistics.
    pub const FLOW_STATS: u32 = 1 << 0;
    /// OFPC_TABLE_STATS: table statistics.
    pub const TABLE_STATS: u32 = 1 << 1;
    /// OFPC_PORT_STATS: port statistics.
    pub const PORT_STATS: u32 = 1 << 2;
    /// OFPC_GROUP_STATS: group statistics.
    pub const GROUP_STATS: u32 = 1 << 3;
    /// OFPC_IP_REASM: can reassemble IP fragments.
    pub const IP_REASM: u32 = 1 << 5;
    /// OFPC_QUEUE_STATS: queue statistics.
    pub const QUEUE_STATS: u32 = 1 << 6;
    /// OFPC_PORT_BLOCKED: blocks looping ports.
    pub const PORT_BLOCKED: u32 = 1 << 8;
}

/// The switch's answer to FEATURES_REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeaturesReply {
    /// Datapath id: lower 48 bits a MAC address, upper 16 implementer-defined.
    pub datapath_id: u64,
    /// Packets the switch can buffer at once (0: none).
    pub n_buffers: u32,
    /// Number of flow tables.
    pub n_tables: u8,
    /// Auxiliary connection id (0: main connection).
    pub auxiliary_id: u8,
    /// [`capabilities`] bits.
    pub capabilities: u32,
    /// The reserved word (kept so re-emission is byte-exact).
    pub reserved: u32,
}

impl FeaturesReply {
    /// Parses a whole FEATURES_REPLY.
    pub fn parse(msg: &[u8]) -> Result<FeaturesReply> {
        exact_len(msg, field::LEN)?;
        Ok(FeaturesReply {
            datapath_id: u64_at(msg, field::DATAPATH_ID),
            n_buffers: u32_at(msg, field::N_BUFFERS),
            n_tables: u8_at(msg, field::N_TABLES),
            auxiliary_id: u8_at(msg, field::AUXILIARY_ID),
            capabilities: u32_at(msg, field::CAPABILITIES),
            reserved: u32_at(msg, field::RESERVED),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.datapath_id.to_be_bytes());
        out.extend_from_slice(&self.n_buffers.to_be_bytes());
        out.push(self.n_tables);
        out.push(self.auxiliary_id);
        zeros(out, 2);
        out.extend_from_slice(&self.capabilities.to_be_bytes());
        out.extend_from_slice(&self.reserved.to_be_bytes());
        Ok(())
    }
}
