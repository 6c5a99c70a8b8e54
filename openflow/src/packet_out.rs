//! OFPT_PACKET_OUT (spec section 7.3.7).
//!
//! ```text
//! ofp_header | buffer_id (4) | in_port (4) | actions_len (2) | pad (6)
//!            | actions (actions_len bytes) | data ...
//! ```

use crate::action::Action;
use crate::bytes::{u16_at, u32_at, zeros};
use crate::error::check_len;
use crate::field::packet_out as field;
use crate::{Error, Result};

/// A packet the controller asks the switch to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    /// Buffered packet, or OFP_NO_BUFFER (then `data` is the frame).
    pub buffer_id: u32,
    /// Ingress port for actions that use it (OFPP_CONTROLLER when none).
    pub in_port: u32,
    /// Actions to apply.
    pub actions: Vec<Action>,
    /// The frame, when unbuffered.
    pub data: Vec<u8>,
}

impl PacketOut {
    /// Parses a whole PACKET_OUT. "actions_len: Size of action array in bytes"; the
    /// action array may not run past the message.
    pub fn parse(msg: &[u8]) -> Result<PacketOut> {
        check_len(msg, field::LEN)?;
        let alen = u16_at(msg, field::ACTIONS_LEN) as usize;
        let end = field::ACTIONS + alen;
        let actions = msg.get(field::ACTIONS..end).ok_or(Error::BadLength(
            "packet-out actions_len runs past the message",
        ))?;
        Ok(PacketOut {
            buffer_id: u32_at(msg, field::BUFFER_ID),
            in_port: u32_at(msg, field::IN_PORT),
            actions: Action::parse_list(actions)?,
            data: msg[end..].to_vec(),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + Action::list_len(&self.actions) + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let alen = Action::list_len(&self.actions);
        if alen > u16::MAX as usize {
            return Err(Error::TooLong(alen));
        }
        out.extend_from_slice(&self.buffer_id.to_be_bytes());
        out.extend_from_slice(&self.in_port.to_be_bytes());
        out.extend_from_slice(&(alen as u16).to_be_bytes());
        zeros(out, 6);
        Action::emit_list(&self.actions, out)?;
        out.extend_from_slice(&self.data);
        Ok(())
    }
}
