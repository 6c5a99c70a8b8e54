//! OFPT_FLOW_REMOVED (spec section 7.4.2).
//!
//! ```text
//! ofp_header | cookie (8) | priority (2) | reason | table_id | duration_sec (4)
//!            | duration_nsec (4) | idle_timeout (2) | hard_timeout (2)
//!            | packet_count (8) | byte_count (8) | ofp_match (padded)
//! ```

use crate::bytes::{u16_at, u32_at, u64_at, u8_at};
use crate::error::check_len;
use crate::field::flow_removed as field;
use crate::matching::Match;
use crate::{Error, Result};

/// OFPRR_* reasons.
pub mod reason {
    /// OFPRR_IDLE_TIMEOUT: no hit for `idle_timeout` seconds.
    pub const IDLE_TIMEOUT: u8 = 0;
    /// OFPRR_HARD_TIMEOUT: `hard_timeout` seconds passed.
    pub const HARD_TIMEOUT: u8 = 1;
    /// OFPRR_DELETE: deleted by a flow-mod.
    pub const DELETE: u8 = 2;
    /// OFPRR_GROUP_DELETE: its group was deleted.
    pub const GROUP_DELETE: u8 = 3;
}

/// A flow was removed (sent when it had OFPFF_SEND_FLOW_REM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    /// The flow's cookie.
    pub cookie: u64,
    /// The flow's priority.
    pub priority: u16,
    /// One of [`reason`].
    pub reason: u8,
    /// The flow's table.
    pub table_id: u8,
    /// Seconds the flow was alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond duration_sec.
    pub duration_nsec: u32,
    /// The flow's idle timeout.
    pub idle_timeout: u16,
    /// The flow's hard timeout.
    pub hard_timeout: u16,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// The flow's match.
    pub matching: Match,
}

impl FlowRemoved {
    /// Parses a whole FLOW_REMOVED.
    pub fn parse(msg: &[u8]) -> Result<FlowRemoved> {
        check_len(msg, field::LEN)?;
        let (matching, n) = Match::parse(&msg[field::MATCH..])?;
        if field::MATCH + n != msg.len() {
            return Err(Error::BadLength("bytes after the flow-removed match"));
        }
        Ok(FlowRemoved {
            cookie: u64_at(msg, field::COOKIE),
            priority: u16_at(msg, field::PRIORITY),
            reason: u8_at(msg, field::REASON),
            table_id: u8_at(msg, field::TABLE_ID),
            duration_sec: u32_at(msg, field::DURATION_SEC),
            duration_nsec: u32_at(msg, field::DURATION_NSEC),
            idle_timeout: u16_at(msg, field::IDLE_TIMEOUT),
            hard_timeout: u16_at(msg, field::HARD_TIMEOUT),
            packet_count: u64_at(msg, field::PACKET_COUNT),
            byte_count: u64_at(msg, field::BYTE_COUNT),
            matching,
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + self.matching.buffer_len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.priority.to_be_bytes());
        out.push(self.reason);
        out.push(self.table_id);
        out.extend_from_slice(&self.duration_sec.to_be_bytes());
        out.extend_from_slice(&self.duration_nsec.to_be_bytes());
        out.extend_from_slice(&self.idle_timeout.to_be_bytes());
        out.extend_from_slice(&self.hard_timeout.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.byte_count.to_be_bytes());
        self.matching.emit(out)
    }
}
