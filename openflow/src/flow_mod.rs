//! OFPT_FLOW_MOD (spec section 7.3.4.1).
//!
//! ```text
//! ofp_header | cookie (8) | cookie_mask (8) | table_id | command | idle_timeout (2)
//!            | hard_timeout (2) | priority (2) | buffer_id (4) | out_port (4)
//!            | out_group (4) | flags (2) | pad (2) | ofp_match (padded) | instructions
//! ```

use crate::bytes::{u16_at, u32_at, u64_at, u8_at, zeros};
use crate::error::check_len;
use crate::field::flow_mod as field;
use crate::instruction::Instruction;
use crate::matching::Match;
use crate::Result;

/// OFP_NO_BUFFER: no buffered packet is associated with the message.
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// OFPG_ANY: wildcard group in flow-mod deletes and stats requests.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// OFP_DEFAULT_PRIORITY.
pub const OFP_DEFAULT_PRIORITY: u16 = 0x8000;

/// OFPFF_* flow-mod flags.
pub mod flags {
    /// OFPFF_SEND_FLOW_REM: send a flow-removed message when the flow goes.
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    /// OFPFF_CHECK_OVERLAP: refuse a flow that overlaps one of the same priority.
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    /// OFPFF_RESET_COUNTS: reset the flow's counters on MODIFY.
    pub const RESET_COUNTS: u16 = 1 << 2;
    /// OFPFF_NO_PKT_COUNTS: the switch need not count packets.
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    /// OFPFF_NO_BYT_COUNTS: the switch need not count bytes.
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
}

/// OFPFC_* commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    /// OFPFC_ADD.
    Add,
    /// OFPFC_MODIFY.
    Modify,
    /// OFPFC_MODIFY_STRICT.
    ModifyStrict,
    /// OFPFC_DELETE.
    Delete,
    /// OFPFC_DELETE_STRICT.
    DeleteStrict,
    /// Anything else (answer OFPFMFC_BAD_COMMAND).
    Other(u8),
}

impl FlowModCommand {
    /// Decodes the command byte.
    pub fn from_u8(v: u8) -> FlowModCommand {
        match v {
            0 => FlowModCommand::Add,
            1 => FlowModCommand::Modify,
            2 => FlowModCommand::ModifyStrict,
            3 => FlowModCommand::Delete,
            4 => FlowModCommand::DeleteStrict,
            v => FlowModCommand::Other(v),
        }
    }

    /// The command byte.
    pub fn to_u8(self) -> u8 {
        match self {
            FlowModCommand::Add => 0,
            FlowModCommand::Modify => 1,
            FlowModCommand::ModifyStrict => 2,
            FlowModCommand::Delete => 3,
            FlowModCommand::DeleteStrict => 4,
            FlowModCommand::Other(v) => v,
        }
    }
}

/// A flow table modification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMod {
    /// Opaque controller-issued identifier.
    pub cookie: u64,
    /// Cookie bits that must match (modify/delete); 0: no restriction.
    pub cookie_mask: u64,
    /// Table (OFPTT_ALL for deletes).
    pub table_id: u8,
    /// What to do.
    pub command: FlowModCommand,
    /// Idle time before discarding (seconds), 0: none.
    pub idle_timeout: u16,
    /// Max time before discarding (seconds), 0: none.
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet to apply to, or OFP_NO_BUFFER.
    pub buffer_id: u32,
    /// Deletes: only flows outputting to this port (OFPP_ANY: no restriction).
    pub out_port: u32,
    /// Deletes: only flows outputting to this group (OFPG_ANY: no restriction).
    pub out_group: u32,
    /// [`flags`] bits.
    pub flags: u16,
    /// The match.
    pub matching: Match,
    /// The instructions.
    pub instructions: Vec<Instruction>,
}

impl Default for FlowMod {
    fn default() -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id: 0,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: OFP_DEFAULT_PRIORITY,
            buffer_id: OFP_NO_BUFFER,
            out_port: crate::action::port_no::ANY,
            out_group: OFPG_ANY,
            flags: 0,
            matching: Match::new(),
            instructions: Vec::new(),
        }
    }
}

impl FlowMod {
    /// Parses a whole FLOW_MOD.
    pub fn parse(msg: &[u8]) -> Result<FlowMod> {
        check_len(msg, field::LEN)?;
        let (matching, n) = Match::parse(&msg[field::MATCH..])?;
        let instructions = Instruction::parse_list(&msg[field::MATCH + n..])?;
        Ok(FlowMod {
            cookie: u64_at(msg, field::COOKIE),
            cookie_mask: u64_at(msg, field::COOKIE_MASK),
            table_id: u8_at(msg, field::TABLE_ID),
            command: FlowModCommand::from_u8(u8_at(msg, field::COMMAND)),
            idle_timeout: u16_at(msg, field::IDLE_TIMEOUT),
            hard_timeout: u16_at(msg, field::HARD_TIMEOUT),
            priority: u16_at(msg, field::PRIORITY),
            buffer_id: u32_at(msg, field::BUFFER_ID),
            out_port: u32_at(msg, field::OUT_PORT),
            out_group: u32_at(msg, field::OUT_GROUP),
            flags: u16_at(msg, field::FLAGS),
            matching,
            instructions,
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + self.matching.buffer_len() + Instruction::list_len(&self.instructions)
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.cookie_mask.to_be_bytes());
        out.push(self.table_id);
        out.push(self.command.to_u8());
        out.extend_from_slice(&self.idle_timeout.to_be_bytes());
        out.extend_from_slice(&self.hard_timeout.to_be_bytes());
        out.extend_from_slice(&self.priority.to_be_bytes());
        out.extend_from_slice(&self.buffer_id.to_be_bytes());
        out.extend_from_slice(&self.out_port.to_be_bytes());
        out.extend_from_slice(&self.out_group.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        zeros(out, 2);
        self.matching.emit(out)?;
        Instruction::emit_list(&self.instructions, out)
    }
}
