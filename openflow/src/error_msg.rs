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
#[allow(missing_docs)]
pub enum ErrorType {
    HelloFailed,
    BadRequest,
    BadAction,
    BadInstruction,
    BadMatch,
    FlowModFailed,
    GroupModFailed,
    PortModFailed,
    TableModFailed,
    QueueOpFailed,
    SwitchConfigFailed,
    RoleRequestFailed,
    MeterModFailed,
    TableFeaturesFailed,
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
    ($(#[$doc:meta])* $m:ident { $($name:ident = $v:expr),* $(,)? }) => {
        $(#[$doc])*
        pub mod $m {
            #![allow(missing_docs)]
            $(pub const $name: u16 = $v;)*
        }
    };
}

codes!(
    /// OFPHFC_* codes of OFPET_HELLO_FAILED.
    hello_failed { INCOMPATIBLE = 0, EPERM = 1 }
);
codes!(
    /// OFPBRC_* codes of OFPET_BAD_REQUEST.
    bad_request { BAD_VERSION = 0, BAD_TYPE = 1, BAD_MULTIPART = 2, BAD_EXPERIMENTER = 3,
    BAD_EXP_TYPE = 4, EPERM = 5, BAD_LEN = 6, BUFFER_EMPTY = 7, BUFFER_UNKNOWN = 8,
    BAD_TABLE_ID = 9, IS_SLAVE = 10, BAD_PORT = 11, BAD_PACKET = 12,
    MULTIPART_BUFFER_OVERFLOW = 13 }
);
codes!(
    /// OFPBAC_* codes of OFPET_BAD_ACTION.
    bad_action { BAD_TYPE = 0, BAD_LEN = 1, BAD_EXPERIMENTER = 2, BAD_EXP_TYPE = 3,
    BAD_OUT_PORT = 4, BAD_ARGUMENT = 5, EPERM = 6, TOO_MANY = 7, BAD_QUEUE = 8,
    BAD_OUT_GROUP = 9, MATCH_INCONSISTENT = 10, UNSUPPORTED_ORDER = 11, BAD_TAG = 12,
    BAD_SET_TYPE = 13, BAD_SET_LEN = 14, BAD_SET_ARGUMENT = 15 }
);
codes!(
    /// OFPBIC_* codes of OFPET_BAD_INSTRUCTION.
    bad_instruction { UNKNOWN_INST = 0, UNSUP_INST = 1, BAD_TABLE_ID = 2,
    UNSUP_METADATA = 3, UNSUP_METADATA_MASK = 4, BAD_EXPERIMENTER = 5, BAD_EXP_TYPE = 6,
    BAD_LEN = 7, EPERM = 8 }
);
codes!(
    /// OFPBMC_* codes of OFPET_BAD_MATCH.
    bad_match { BAD_TYPE = 0, BAD_LEN = 1, BAD_TAG = 2, BAD_DL_ADDR_MASK = 3,
    BAD_NW_ADDR_MASK = 4, BAD_WILDCARDS = 5, BAD_FIELD = 6, BAD_VALUE = 7, BAD_MASK = 8,
    BAD_PREREQ = 9, DUP_FIELD = 10, EPERM = 11 }
);
codes!(
    /// OFPFMFC_* codes of OFPET_FLOW_MOD_FAILED.
    flow_mod_failed { UNKNOWN = 0, TABLE_FULL = 1, BAD_TABLE_ID = 2, OVERLAP = 3,
    EPERM = 4, BAD_TIMEOUT = 5, BAD_COMMAND = 6, BAD_FLAGS = 7 }
);
codes!(
    /// OFPGMFC_* codes of OFPET_GROUP_MOD_FAILED.
    group_mod_failed { GROUP_EXISTS = 0, INVALID_GROUP = 1, WEIGHT_UNSUPPORTED = 2,
    OUT_OF_GROUPS = 3, OUT_OF_BUCKETS = 4, CHAINING_UNSUPPORTED = 5,
    WATCH_UNSUPPORTED = 6, LOOP = 7, UNKNOWN_GROUP = 8, CHAINED_GROUP = 9, BAD_TYPE = 10,
    BAD_COMMAND = 11, BAD_BUCKET = 12, BAD_WATCH = 13, EPERM = 14 }
);
codes!(
    /// OFPPMFC_* codes of OFPET_PORT_MOD_FAILED.
    port_mod_failed { BAD_PORT = 0, BAD_HW_ADDR = 1, BAD_CONFIG = 2, BAD_ADVERTISE = 3,
    EPERM = 4 }
);
codes!(
    /// OFPTMFC_* codes of OFPET_TABLE_MOD_FAILED.
    table_mod_failed { BAD_TABLE = 0, BAD_CONFIG = 1, EPERM = 2 }
);
codes!(
    /// OFPSCFC_* codes of OFPET_SWITCH_CONFIG_FAILED.
    switch_config_failed { BAD_FLAGS = 0, BAD_LEN = 1, EPERM = 2 }
);
codes!(
    /// OFPRRFC_* codes of OFPET_ROLE_REQUEST_FAILED.
    role_request_failed { STALE = 0, UNSUP = 1, BAD_ROLE = 2 }
);
codes!(
    /// OFPMMFC_* codes of OFPET_METER_MOD_FAILED.
    meter_mod_failed { UNKNOWN = 0, METER_EXISTS = 1, INVALID_METER = 2,
    UNKNOWN_METER = 3, BAD_COMMAND = 4, BAD_FLAGS = 5, BAD_RATE = 6, BAD_BURST = 7,
    BAD_BAND = 8, BAD_BAND_VALUE = 9, OUT_OF_METERS = 10, OUT_OF_BANDS = 11 }
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
