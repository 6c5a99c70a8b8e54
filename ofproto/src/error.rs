//! The OpenFlow error a request earns: type, code and a human reason (for
//! the log; peers see only type and code, as OpenFlow defines).

use openflow::error_msg::{self, ErrorType};

use crate::flow_match::MatchError;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfError {
    /// `OFPET_*`.
    pub ty: ErrorType,
    /// The type's `OFP*C_*` code.
    pub code: u16,
    /// Why, for the log.
    pub why: String,
}

impl OfError {
    /// An error of type `ty`, code `code`.
    pub fn new(ty: ErrorType, code: u16, why: impl Into<String>) -> OfError {
        OfError {
            ty,
            code,
            why: why.into(),
        }
    }

    /// `OFPET_BAD_ACTION`.
    pub fn action(code: u16, why: impl Into<String>) -> OfError {
        OfError::new(ErrorType::BadAction, code, why)
    }

    /// `OFPET_BAD_INSTRUCTION`.
    pub fn instruction(code: u16, why: impl Into<String>) -> OfError {
        OfError::new(ErrorType::BadInstruction, code, why)
    }

    /// `OFPET_BAD_REQUEST`.
    pub fn request(code: u16, why: impl Into<String>) -> OfError {
        OfError::new(ErrorType::BadRequest, code, why)
    }
}

impl core::fmt::Display for OfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({:?}, code {})", self.why, self.ty, self.code)
    }
}

impl From<MatchError> for OfError {
    fn from(e: MatchError) -> OfError {
        use error_msg::bad_match as c;
        let code = match e {
            MatchError::BadField(_) => c::BAD_FIELD,
            MatchError::BadValue(_) => c::BAD_VALUE,
            MatchError::BadMask(_) => c::BAD_MASK,
            MatchError::BadPrereq(_) => c::BAD_PREREQ,
            MatchError::DupField(_) => c::DUP_FIELD,
        };
        OfError::new(ErrorType::BadMatch, code, e.to_string())
    }
}

impl From<switch::table::FlowModError> for OfError {
    fn from(e: switch::table::FlowModError) -> OfError {
        use switch::table::FlowModError as F;
        let why = e.to_string();
        let (ty, code) = match e {
            F::Overlap => (
                ErrorType::FlowModFailed,
                error_msg::flow_mod_failed::OVERLAP,
            ),
            F::BadTable(_) => (
                ErrorType::FlowModFailed,
                error_msg::flow_mod_failed::BAD_TABLE_ID,
            ),
            F::BadGotoTable { .. } => (
                ErrorType::BadInstruction,
                error_msg::bad_instruction::BAD_TABLE_ID,
            ),
            F::UnknownGroup(_) => (ErrorType::BadAction, error_msg::bad_action::BAD_OUT_GROUP),
            F::GroupExists(_) => (
                ErrorType::GroupModFailed,
                error_msg::group_mod_failed::GROUP_EXISTS,
            ),
            F::NoSuchGroup(_) => (
                ErrorType::GroupModFailed,
                error_msg::group_mod_failed::UNKNOWN_GROUP,
            ),
            F::BadGroup(_) => (
                ErrorType::GroupModFailed,
                error_msg::group_mod_failed::INVALID_GROUP,
            ),
            F::Invalid(_) => (ErrorType::BadAction, error_msg::bad_action::BAD_ARGUMENT),
            F::MatchInconsistent(_) => (
                ErrorType::BadAction,
                error_msg::bad_action::MATCH_INCONSISTENT,
            ),
        };
        OfError::new(ty, code, why)
    }
}
