//! OFPT_ERROR (spec section 7.4.4): type, code, and the first bytes of the offending
//! request.
//!
//! ```text
//! ofp_header | type (2) | code (2) | data ...
//! ofp_header | 0xffff   | exp_type (2) | experimenter (4) | data ...
//! ```

use crate::bytes::{u16_at, u32_at};
use crate::error::check_len;
use crate::field::error_msg as field;
use crate::Result;

/// OFPET_* error types (section 7.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// OFPET_HELLO_FAILED (0): hello protocol failed.
    HelloFailed,
    /// OFPET_BAD_REQUEST (1): the request was not understood.
    BadRequest,
    /// OFPET_BAD_ACTION (2): error in an action description.
    BadAction,
    /// OFPET_BAD_INSTRUCTION (3): error in an instruction list.
    BadInstruction,
    /// OFPET_BAD_MATCH (4): error in a match.
    BadMatch,
    /// OFPET_FLOW_MOD_FAILED (5): problem modifying a flow entry.
    FlowModFailed,
    /// OFPET_GROUP_MOD_FAILED (6): problem modifying a group entry.
    GroupModFailed,
    /// OFPET_PORT_MOD_FAILED (7): a port-mod request failed.
    PortModFailed,
    /// OFPET_TABLE_MOD_FAILED (8): a table-mod request failed.
    TableModFailed,
    /// OFPET_QUEUE_OP_FAILED (9): a queue operation failed.
    QueueOpFailed,
    /// OFPET_SWITCH_CONFIG_FAILED (10): a switch config request failed.
    SwitchConfigFailed,
    /// OFPET_ROLE_REQUEST_FAILED (11): a controller role request failed.
    RoleRequestFailed,
    /// OFPET_METER_MOD_FAILED (12): error in a meter.
    MeterModFailed,
    /// OFPET_TABLE_FEATURES_FAILED (13): a table-features request failed.
    TableFeaturesFailed,
    /// OFPET_EXPERIMENTER (0xffff): an experimenter error (`exp_type` in the code).
    Experimenter,
    /// A type 1.3 does not define.
    Other(u16),
}

impl ErrorType {
    /// Decodes a type code.
    pub fn from_u16(v: u16) -> ErrorType {
        use ErrorType::*;
        match v {
            0 => HelloFailed,
            1 => BadRequest,
            2 => BadAction,
            3 => BadInstruction,
            4 => BadMatch,
            5 => FlowModFailed,
            6 => GroupModFailed,
            7 => PortModFailed,
            8 => TableModFailed,
            9 => QueueOpFailed,
            10 => SwitchConfigFailed,
            11 => RoleRequestFailed,
            12 => MeterModFailed,
            13 => TableFeaturesFailed,
            0xffff => Experimenter,
            v => Other(v),
        }
    }

    /// The type code.
    pub fn to_u16(self) -> u16 {
        use ErrorType::*;
        match self {
            HelloFailed => 0,
            BadRequest => 1,
            BadAction => 2,
            BadInstruction => 3,
            BadMatch => 4,
            FlowModFailed => 5,
            GroupModFailed => 6,
            PortModFailed => 7,
            TableModFailed => 8,
            QueueOpFailed => 9,
            SwitchConfigFailed => 10,
            RoleRequestFailed => 11,
            MeterModFailed => 12,
            TableFeaturesFailed => 13,
            Experimenter => 0xffff,
            Other(v) => v,
        }
    }
}

macro_rules! codes {
    ($(#[$doc:meta])* $m:ident { $($(#[$cdoc:meta])* $name:ident = $v:expr),* $(,)? }) => {
        $(#[$doc])*
        pub mod $m {
            $($(#[$cdoc])* pub const $name: u16 = $v;)*
        }
    };
}

codes!(
    /// OFPHFC_* codes of OFPET_HELLO_FAILED.
    hello_failed {
        /// No compatible version.
        INCOMPATIBLE = 0,
        /// Permissions error.
        EPERM = 1,
    }
);
codes!(
    /// OFPBRC_* codes of OFPET_BAD_REQUEST.
    bad_request {
        /// `ofp_header.version` not supported.
        BAD_VERSION = 0,
        /// `ofp_header.type` not supported.
        BAD_TYPE = 1,
        /// `ofp_multipart_request.type` not supported.
        BAD_MULTIPART = 2,
        /// Experimenter id not supported.
        BAD_EXPERIMENTER = 3,
        /// Experimenter type not supported.
        BAD_EXP_TYPE = 4,
        /// Permissions error.
        EPERM = 5,
        /// Wrong request length for its type.
        BAD_LEN = 6,
        /// The specified buffer has already been used.
        BUFFER_EMPTY = 7,
        /// The specified buffer does not exist.
        BUFFER_UNKNOWN = 8,
        /// The table id is invalid or does not exist.
        BAD_TABLE_ID = 9,
        /// Denied because the controller is slave.
        IS_SLAVE = 10,
        /// Invalid port.
        BAD_PORT = 11,
        /// Invalid packet in a packet-out.
        BAD_PACKET = 12,
        /// A multipart request overflowed the assigned buffer.
        MULTIPART_BUFFER_OVERFLOW = 13,
    }
);
codes!(
    /// OFPBAC_* codes of OFPET_BAD_ACTION.
    bad_action {
        /// Unknown or unsupported action type.
        BAD_TYPE = 0,
        /// Length problem in actions.
        BAD_LEN = 1,
        /// Unknown experimenter id.
        BAD_EXPERIMENTER = 2,
        /// Unknown action for the experimenter id.
        BAD_EXP_TYPE = 3,
        /// Problem validating the output port.
        BAD_OUT_PORT = 4,
        /// Bad action argument.
        BAD_ARGUMENT = 5,
        /// Permissions error.
        EPERM = 6,
        /// Can't handle this many actions.
        TOO_MANY = 7,
        /// Problem validating the output queue.
        BAD_QUEUE = 8,
        /// Invalid group id in a forward action.
        BAD_OUT_GROUP = 9,
        /// The action can't apply to this match, or SET_FIELD is missing a prerequisite.
        MATCH_INCONSISTENT = 10,
        /// The action order is unsupported for the action list in an APPLY_ACTIONS.
        UNSUPPORTED_ORDER = 11,
        /// The action uses an unsupported tag or encapsulation.
        BAD_TAG = 12,
        /// Unsupported type in a SET_FIELD action.
        BAD_SET_TYPE = 13,
        /// Length problem in a SET_FIELD action.
        BAD_SET_LEN = 14,
        /// Bad argument in a SET_FIELD action.
        BAD_SET_ARGUMENT = 15,
    }
);
codes!(
    /// OFPBIC_* codes of OFPET_BAD_INSTRUCTION.
    bad_instruction {
        /// Unknown instruction.
        UNKNOWN_INST = 0,
        /// The switch or table does not support the instruction.
        UNSUP_INST = 1,
        /// Invalid table id in GOTO_TABLE.
        BAD_TABLE_ID = 2,
        /// The metadata value is unsupported by the datapath.
        UNSUP_METADATA = 3,
        /// The metadata mask is unsupported by the datapath.
        UNSUP_METADATA_MASK = 4,
        /// Unknown experimenter id.
        BAD_EXPERIMENTER = 5,
        /// Unknown instruction for the experimenter id.
        BAD_EXP_TYPE = 6,
        /// Length problem in instructions.
        BAD_LEN = 7,
        /// Permissions error.
        EPERM = 8,
    }
);
codes!(
    /// OFPBMC_* codes of OFPET_BAD_MATCH.
    bad_match {
        /// Unsupported match type.
        BAD_TYPE = 0,
        /// Length problem in the match.
        BAD_LEN = 1,
        /// The match uses an unsupported tag or encapsulation.
        BAD_TAG = 2,
        /// Unsupported Ethernet address mask.
        BAD_DL_ADDR_MASK = 3,
        /// Unsupported IP address mask.
        BAD_NW_ADDR_MASK = 4,
        /// Unsupported combination of wildcarded fields.
        BAD_WILDCARDS = 5,
        /// Unsupported field type in the match.
        BAD_FIELD = 6,
        /// Unsupported value in a match field.
        BAD_VALUE = 7,
        /// Unsupported mask for a field.
        BAD_MASK = 8,
        /// A prerequisite was not met.
        BAD_PREREQ = 9,
        /// A field type was duplicated.
        DUP_FIELD = 10,
        /// Permissions error.
        EPERM = 11,
    }
);
codes!(
    /// OFPFMFC_* codes of OFPET_FLOW_MOD_FAILED.
    flow_mod_failed {
        /// Unspecified error.
        UNKNOWN = 0,
        /// Not added: the table was full.
        TABLE_FULL = 1,
        /// The table does not exist.
        BAD_TABLE_ID = 2,
        /// CHECK_OVERLAP was set and the flow overlaps one of the same priority.
        OVERLAP = 3,
        /// Permissions error.
        EPERM = 4,
        /// Not added: invalid idle or hard timeout.
        BAD_TIMEOUT = 5,
        /// Unsupported or unknown command.
        BAD_COMMAND = 6,
        /// Unsupported or unknown flags.
        BAD_FLAGS = 7,
    }
);
codes!(
    /// OFPGMFC_* codes of OFPET_GROUP_MOD_FAILED.
    group_mod_failed {
        /// Not added: a group with this id exists.
        GROUP_EXISTS = 0,
        /// Not added: the group is invalid.
        INVALID_GROUP = 1,
        /// The switch does not support unequal load sharing.
        WEIGHT_UNSUPPORTED = 2,
        /// The group table is full.
        OUT_OF_GROUPS = 3,
        /// The group's bucket limit was reached.
        OUT_OF_BUCKETS = 4,
        /// The switch does not support groups that forward to groups.
        CHAINING_UNSUPPORTED = 5,
        /// The group can't watch the given port or group.
        WATCH_UNSUPPORTED = 6,
        /// The group would make a loop.
        LOOP = 7,
        /// MODIFY of a group that does not exist.
        UNKNOWN_GROUP = 8,
        /// Not deleted: another group forwards to this one.
        CHAINED_GROUP = 9,
        /// Unsupported or unknown group type.
        BAD_TYPE = 10,
        /// Unsupported or unknown command.
        BAD_COMMAND = 11,
        /// Error in a bucket.
        BAD_BUCKET = 12,
        /// Error in a watch port or group.
        BAD_WATCH = 13,
        /// Permissions error.
        EPERM = 14,
    }
);
codes!(
    /// OFPPMFC_* codes of OFPET_PORT_MOD_FAILED.
    port_mod_failed {
        /// The port does not exist.
        BAD_PORT = 0,
        /// The hardware address does not match the port's.
        BAD_HW_ADDR = 1,
        /// The config is invalid.
        BAD_CONFIG = 2,
        /// The advertise is invalid.
        BAD_ADVERTISE = 3,
        /// Permissions error.
        EPERM = 4,
    }
);
codes!(
    /// OFPTMFC_* codes of OFPET_TABLE_MOD_FAILED.
    table_mod_failed {
        /// The table does not exist.
        BAD_TABLE = 0,
        /// The config is invalid.
        BAD_CONFIG = 1,
        /// Permissions error.
        EPERM = 2,
    }
);
codes!(
    /// OFPSCFC_* codes of OFPET_SWITCH_CONFIG_FAILED.
    switch_config_failed {
        /// The flags are invalid.
        BAD_FLAGS = 0,
        /// The miss_send_len is invalid.
        BAD_LEN = 1,
        /// Permissions error.
        EPERM = 2,
    }
);
codes!(
    /// OFPRRFC_* codes of OFPET_ROLE_REQUEST_FAILED.
    role_request_failed {
        /// Stale message: an old generation id.
        STALE = 0,
        /// The controller role change is unsupported.
        UNSUP = 1,
        /// Invalid role.
        BAD_ROLE = 2,
    }
);
codes!(
    /// OFPMMFC_* codes of OFPET_METER_MOD_FAILED.
    meter_mod_failed {
        /// Unspecified error.
        UNKNOWN = 0,
        /// Not added: a meter with this id exists.
        METER_EXISTS = 1,
        /// Not added: the meter is invalid.
        INVALID_METER = 2,
        /// MODIFY of a meter that does not exist.
        UNKNOWN_METER = 3,
        /// Unsupported or unknown command.
        BAD_COMMAND = 4,
        /// Flag configuration unsupported.
        BAD_FLAGS = 5,
        /// Rate unsupported.
        BAD_RATE = 6,
        /// Burst size unsupported.
        BAD_BURST = 7,
        /// Band unsupported.
        BAD_BAND = 8,
        /// Band value unsupported.
        BAD_BAND_VALUE = 9,
        /// No more meters available.
        OUT_OF_METERS = 10,
        /// The maximum number of bands for the meter was exceeded.
        OUT_OF_BANDS = 11,
    }
);

/// How many bytes of the offending request an error carries: section 7.4.4, "data ...
/// at least 64 bytes of the failed request".
pub const OFFENDING_BYTES: usize = 64;

/// An OFPT_ERROR body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    /// Error type.
    pub err_type: ErrorType,
    /// Code within the type (exp_type for experimenter errors).
    pub code: u16,
    /// Experimenter id, for `ErrorType::Experimenter` only.
    pub experimenter: Option<u32>,
    /// The offending request's first bytes (or ASCII text for HELLO_FAILED).
    pub data: Vec<u8>,
}

impl ErrorMsg {
    /// An error about `offending` (a whole received message), carrying its first
    /// [`OFFENDING_BYTES`] bytes.
    pub fn new(err_type: ErrorType, code: u16, offending: &[u8]) -> ErrorMsg {
        ErrorMsg {
            err_type,
            code,
            experimenter: None,
            data: offending[..offending.len().min(OFFENDING_BYTES)].to_vec(),
        }
    }

    /// The error a switch answers when `offending` (a whole received message) failed
    /// to parse with `e` (see [`crate::Error::of_error`]).
    pub fn for_parse_error(e: &crate::Error, offending: &[u8]) -> ErrorMsg {
        let (t, code) = e.of_error();
        ErrorMsg::new(t, code, offending)
    }

    /// Parses a whole ERROR message.
    pub fn parse(msg: &[u8]) -> Result<ErrorMsg> {
        check_len(msg, field::LEN)?;
        let err_type = ErrorType::from_u16(u16_at(msg, field::TYPE));
        if err_type == ErrorType::Experimenter {
            check_len(msg, field::EXP_LEN)?;
            return Ok(ErrorMsg {
                err_type,
                code: u16_at(msg, field::EXP_TYPE),
                experimenter: Some(u32_at(msg, field::EXPERIMENTER)),
                data: msg[field::EXP_DATA..].to_vec(),
            });
        }
        Ok(ErrorMsg {
            err_type,
            code: u16_at(msg, field::CODE),
            experimenter: None,
            data: msg[field::DATA..].to_vec(),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        let fixed = if self.err_type == ErrorType::Experimenter {
            field::EXP_LEN
        } else {
            field::LEN
        };
        fixed + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.err_type.to_u16().to_be_bytes());
        out.extend_from_slice(&self.code.to_be_bytes());
        if self.err_type == ErrorType::Experimenter {
            out.extend_from_slice(&self.experimenter.unwrap_or(0).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn construct_error_for_a_bad_flow_mod() {
        // A FLOW_MOD whose match type is OFPMT_STANDARD.
        let mut req = vec![4u8, 14, 0, 56, 0, 0, 0, 9];
        req.resize(56, 0);
        req[49] = 0; // match type 0
        req[51] = 4; // match length 4
        let e = Message::parse(&req).unwrap_err();
        let m = ErrorMsg::for_parse_error(&e, &req);
        assert_eq!(
            (m.err_type, m.code),
            (ErrorType::BadMatch, bad_match::BAD_TYPE)
        );
        assert_eq!(m.data, req);
        let out = Message::Error(m.clone()).to_vec(9).unwrap();
        assert_eq!(Message::parse(&out).unwrap().1, Message::Error(m));
    }
}
