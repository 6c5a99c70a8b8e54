//! OFPT_PACKET_IN (spec section 7.4.1).
//!
//! ```text
//! ofp_header | buffer_id (4) | total_len (2) | reason | table_id | cookie (8)
//!            | ofp_match (padded) | pad (2) | data ...
//! ```
//!
//! Section 7.4.1: "The packet header ... is followed by ... 2 all-zero padding bytes"
//! so that the IP header of the data is 32-bit aligned.

use crate::bytes::{u16_at, u32_at, u64_at, u8_at, zeros};
use crate::error::check_len;
use crate::field::packet_in as field;
use crate::matching::Match;
use crate::{Error, Result};

/// OFPR_* reasons.
pub mod reason {
    /// OFPR_NO_MATCH: no matching flow (the table-miss flow).
    pub const NO_MATCH: u8 = 0;
    /// OFPR_ACTION: an output to the controller.
    pub const ACTION: u8 = 1;
    /// OFPR_INVALID_TTL: the packet's TTL ran out.
    pub const INVALID_TTL: u8 = 2;
}

/// A packet sent to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    /// Buffer id, or OFP_NO_BUFFER.
    pub buffer_id: u32,
    /// Full length of the frame (data may be shorter).
    pub total_len: u16,
    /// One of [`reason`].
    pub reason: u8,
    /// Table that was looked up.
    pub table_id: u8,
    /// Cookie of the flow entry that sent it (0xffff...ff on a miss).
    pub cookie: u64,
    /// Packet metadata: at least IN_PORT.
    pub matching: Match,
    /// The frame (or its first bytes).
    pub data: Vec<u8>,
}

impl PacketIn {
    /// Parses a whole PACKET_IN.
    pub fn parse(msg: &[u8]) -> Result<PacketIn> {
        check_len(msg, field::LEN)?;
        let (matching, n) = Match::parse(&msg[field::MATCH..])?;
        let data_at = field::MATCH + n + field::DATA_PAD;
        let data = msg
            .get(data_at..)
            .ok_or(Error::BadLength("packet-in without the 2 pad bytes"))?;
        Ok(PacketIn {
            buffer_id: u32_at(msg, field::BUFFER_ID),
            total_len: u16_at(msg, field::TOTAL_LEN),
            reason: u8_at(msg, field::REASON),
            table_id: u8_at(msg, field::TABLE_ID),
            cookie: u64_at(msg, field::COOKIE),
            matching,
            data: data.to_vec(),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + self.matching.buffer_len() + field::DATA_PAD + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.buffer_id.to_be_bytes());
        out.extend_from_slice(&self.total_len.to_be_bytes());
        out.push(self.reason);
        out.push(self.table_id);
        out.extend_from_slice(&self.cookie.to_be_bytes());
        self.matching.emit(out)?;
        zeros(out, field::DATA_PAD);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}
