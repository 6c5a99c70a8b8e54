//! OFPT_PACKET_OUT of OpenFlow 1.0 (section 5.3.6): a frame from the
//! controller (`ovs-ofctl packet-out`) with actions; an output to
//! OFPP_TABLE (0xfff9) runs it through the flow tables.
//!
//! ```text
//! header(8) | buffer_id(4) | in_port(2) | actions_len(2) | actions | frame
//! ```

use super::action::Action10;
use crate::bytes::{u16_at, u32_at};
use crate::error::check_len;
use crate::{Error, Result};

/// Offsets from the start of the message.
mod field {
    use crate::field::Field;
    pub const BUFFER_ID: Field = 8..12;
    pub const IN_PORT: Field = 12..14;
    pub const ACTIONS_LEN: Field = 14..16;
    pub const ACTIONS: usize = 16;
}

/// OFPT_PACKET_OUT (OpenFlow 1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut10 {
    /// Buffered packet (0xffffffff: none, the frame follows).
    pub buffer_id: u32,
    /// Ingress port for the actions (OFPP_NONE 0xffff / OFPP_CONTROLLER: none).
    pub in_port: u16,
    /// The actions.
    pub actions: Vec<Action10>,
    /// The frame.
    pub data: Vec<u8>,
}

impl PacketOut10 {
    /// Parses a whole message; the action list may not run past it.
    pub fn parse(msg: &[u8]) -> Result<PacketOut10> {
        check_len(msg, field::ACTIONS)?;
        let n = u16_at(msg, field::ACTIONS_LEN) as usize;
        let end = field::ACTIONS + n;
        if end > msg.len() {
            return Err(Error::BadLength("packet_out actions run past the message"));
        }
        Ok(PacketOut10 {
            buffer_id: u32_at(msg, field::BUFFER_ID),
            in_port: u16_at(msg, field::IN_PORT),
            actions: Action10::parse_list(&msg[field::ACTIONS..end])?,
            data: msg[end..].to_vec(),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::ACTIONS + Action10::list_len(&self.actions) + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.buffer_id.to_be_bytes());
        out.extend_from_slice(&self.in_port.to_be_bytes());
        out.extend_from_slice(&(Action10::list_len(&self.actions) as u16).to_be_bytes());
        Action10::emit_list(&self.actions, out)?;
        out.extend_from_slice(&self.data);
        Ok(())
    }
}
