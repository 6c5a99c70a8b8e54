//! OFPT_FLOW_MOD of OpenFlow 1.0 (section 5.3.3: `ofp10_match`, then the
//! fixed fields, then actions) and Nicira's NXT_FLOW_MOD (the same fields
//! with an NXM match of `match_len` bytes padded to 8), which `ovs-ofctl`
//! sends when the match needs what `ofp10_match` cannot say (IPv6,
//! registers, masks on VLAN, ...).
//!
//! ```text
//! OFPT_FLOW_MOD: header(8) | ofp10_match(40) | cookie(8) command(2) idle(2) hard(2)
//!                priority(2) buffer_id(4) out_port(2) flags(2) | actions
//! NXT_FLOW_MOD:  header(8) vendor(4) subtype=13(4) | cookie(8) command(2) idle(2) hard(2)
//!                priority(2) buffer_id(4) out_port(2) flags(2) match_len(2) pad(6)
//!                | nx_match, pad to 8 | actions
//! ```
//!
//! With NXT_FLOW_MOD_TABLE_ID enabled the high byte of `command` is the
//! table ([`FlowModFields::table_and_command`]).

use super::action::Action10;
use super::field::{flow_mod as f10, nx_flow_mod as fnx};
use super::matching::Match10;
use super::nxm;
use crate::bytes::{u16_at, u32_at, u64_at};
use crate::error::check_len;
use crate::oxm::OxmField;
use crate::{Error, Result};

/// OFPFC_* commands (section 5.3.3).
pub mod command {
    /// OFPFC_ADD: add a flow (replacing an identical one).
    pub const ADD: u8 = 0;
    /// OFPFC_MODIFY: change the actions of every matching flow.
    pub const MODIFY: u8 = 1;
    /// OFPFC_MODIFY_STRICT: change the flow with exactly this match and priority.
    pub const MODIFY_STRICT: u8 = 2;
    /// OFPFC_DELETE: delete every matching flow.
    pub const DELETE: u8 = 3;
    /// OFPFC_DELETE_STRICT: delete the flow with exactly this match and priority.
    pub const DELETE_STRICT: u8 = 4;
}

/// OFPFF_* flags of OpenFlow 1.0.
pub mod flags {
    /// OFPFF_SEND_FLOW_REM: send a flow-removed message when the flow goes.
    pub const SEND_FLOW_REM: u16 = 1;
    /// OFPFF_CHECK_OVERLAP: refuse a flow that overlaps one of the same priority.
    pub const CHECK_OVERLAP: u16 = 2;
    /// OFPFF_EMERG: an emergency flow (used when the controller is gone).
    pub const EMERG: u16 = 4;
}

/// The fields both flow-mod forms share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowModFields {
    /// Cookie (new cookie for add, and for modify in 1.0).
    pub cookie: u64,
    /// Command; the high byte is the table when NXT_FLOW_MOD_TABLE_ID is on.
    pub command: u16,
    /// Idle timeout (s).
    pub idle_timeout: u16,
    /// Hard timeout (s).
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet (0xffffffff: none).
    pub buffer_id: u32,
    /// For delete: only flows that output to this port (0xffff: any).
    pub out_port: u16,
    /// OFPFF_* flags.
    pub flags: u16,
    /// The actions.
    pub actions: Vec<Action10>,
}

impl FlowModFields {
    /// (table, OFPFC command): the table is `None` unless `table_id_ext`
    /// (NXT_FLOW_MOD_TABLE_ID) is on; then it is the high byte.
    pub fn table_and_command(&self, table_id_ext: bool) -> (Option<u8>, u8) {
        if table_id_ext {
            (Some((self.command >> 8) as u8), self.command as u8)
        } else {
            (None, self.command as u8)
        }
    }

    /// Parses the 24 fixed bytes at the front of `b` (cookie .. flags): the
    /// same layout in both forms, after the match in OFPT_FLOW_MOD and right
    /// after the nicira_header in NXT_FLOW_MOD.
    fn parse_fixed(b: &[u8]) -> FlowModFields {
        let at =
            |r: core::ops::Range<usize>| r.start - f10::COOKIE.start..r.end - f10::COOKIE.start;
        FlowModFields {
            cookie: u64_at(b, at(f10::COOKIE)),
            command: u16_at(b, at(f10::COMMAND)),
            idle_timeout: u16_at(b, at(f10::IDLE_TIMEOUT)),
            hard_timeout: u16_at(b, at(f10::HARD_TIMEOUT)),
            priority: u16_at(b, at(f10::PRIORITY)),
            buffer_id: u32_at(b, at(f10::BUFFER_ID)),
            out_port: u16_at(b, at(f10::OUT_PORT)),
            flags: u16_at(b, at(f10::FLAGS)),
            actions: Vec::new(),
        }
    }

    fn emit_fixed(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.command.to_be_bytes());
        out.extend_from_slice(&self.idle_timeout.to_be_bytes());
        out.extend_from_slice(&self.hard_timeout.to_be_bytes());
        out.extend_from_slice(&self.priority.to_be_bytes());
        out.extend_from_slice(&self.buffer_id.to_be_bytes());
        out.extend_from_slice(&self.out_port.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
    }
}

/// OFPT_FLOW_MOD (OpenFlow 1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMod10 {
    /// The match.
    pub matching: Match10,
    /// Everything else.
    pub fields: FlowModFields,
}

impl FlowMod10 {
    /// Parses a whole message.
    pub fn parse(msg: &[u8]) -> Result<FlowMod10> {
        check_len(msg, f10::ACTIONS)?;
        let matching = Match10::parse(&msg[f10::MATCH])?;
        let mut fields = FlowModFields::parse_fixed(&msg[f10::COOKIE.start..]);
        fields.actions = Action10::parse_list(&msg[f10::ACTIONS..])?;
        Ok(FlowMod10 { matching, fields })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        f10::ACTIONS + Action10::list_len(&self.fields.actions)
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        self.matching.emit(out);
        self.fields.emit_fixed(out);
        Action10::emit_list(&self.fields.actions, out)
    }
}

/// NXT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NxFlowMod {
    /// The NXM match, as on the wire ([`nxm::list_to_oxm`] for OXM).
    pub matching: Vec<OxmField>,
    /// Everything else.
    pub fields: FlowModFields,
}

impl NxFlowMod {
    /// Parses a whole message (nicira_header included).
    pub fn parse(msg: &[u8]) -> Result<NxFlowMod> {
        check_len(msg, fnx::MATCH)?;
        let mut fields = FlowModFields::parse_fixed(&msg[fnx::COOKIE.start..]);
        let match_len = u16_at(msg, fnx::MATCH_LEN) as usize;
        let padded = crate::bytes::round8(match_len);
        let body = &msg[fnx::MATCH..];
        if padded > body.len() {
            return Err(Error::BadMatch("nx_match runs past the message"));
        }
        let matching = nxm::parse(body, match_len)?;
        fields.actions = Action10::parse_list(&body[padded..])?;
        Ok(NxFlowMod { matching, fields })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        fnx::MATCH
            + crate::bytes::round8(nxm::unpadded_len(&self.matching))
            + Action10::list_len(&self.fields.actions)
    }

    /// Appends what follows the nicira_header.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        self.fields.emit_fixed(out);
        out.extend_from_slice(&(nxm::unpadded_len(&self.matching) as u16).to_be_bytes());
        crate::bytes::zeros(out, 6);
        nxm::emit(&self.matching, out)?;
        Action10::emit_list(&self.fields.actions, out)
    }
}
