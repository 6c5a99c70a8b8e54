//! The one error type of the wire layer, and the OpenFlow error each maps to.

use crate::error_msg::{bad_action, bad_instruction, bad_match, bad_request, ErrorType};
use core::fmt;

/// Why bytes could not be parsed as (or emitted into) an OpenFlow message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the structure it must hold.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A message length field is inconsistent (below the header size, beyond the
    /// buffer, or not what the message type requires).
    BadLength(&'static str),
    /// The header carries a version other than 0x04 where 1.3 is required.
    BadVersion(u8),
    /// A message, match, action list ... would exceed 65535 bytes.
    TooLong(usize),
    /// A match or OXM TLV is malformed (maps to OFPET_BAD_MATCH / OFPBMC_BAD_LEN).
    BadMatch(&'static str),
    /// The ofp_match type is not OFPMT_OXM (maps to OFPBMC_BAD_TYPE).
    BadMatchType(u16),
    /// An action is malformed (maps to OFPET_BAD_ACTION).
    BadAction(&'static str),
    /// An instruction is malformed (maps to OFPET_BAD_INSTRUCTION).
    BadInstruction(&'static str),
    /// Any other malformed field (maps to OFPET_BAD_REQUEST).
    Malformed(&'static str),
}

/// Result of the wire layer.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The OpenFlow error (type, code) a switch should answer with when a request it
    /// received fails to parse with this error (spec section 7.4.4).
    pub fn of_error(&self) -> (ErrorType, u16) {
        match self {
            Error::Truncated { .. } | Error::BadLength(_) | Error::TooLong(_) => {
                (ErrorType::BadRequest, bad_request::BAD_LEN)
            }
            Error::BadVersion(_) => (ErrorType::BadRequest, bad_request::BAD_VERSION),
            Error::BadMatch(_) => (ErrorType::BadMatch, bad_match::BAD_LEN),
            Error::BadMatchType(_) => (ErrorType::BadMatch, bad_match::BAD_TYPE),
            Error::BadAction(_) => (ErrorType::BadAction, bad_action::BAD_LEN),
            Error::BadInstruction(_) => (ErrorType::BadInstruction, bad_instruction::BAD_LEN),
            Error::Malformed(_) => (ErrorType::BadRequest, bad_request::BAD_LEN),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            Error::BadLength(why) => write!(f, "bad length: {why}"),
            Error::BadVersion(v) => write!(f, "unsupported OpenFlow version {v:#04x}"),
            Error::TooLong(n) => write!(f, "{n} bytes exceed the 65535-byte limit"),
            Error::BadMatch(why) => write!(f, "bad match: {why}"),
            Error::BadMatchType(t) => write!(f, "match type {t} is not OFPMT_OXM"),
            Error::BadAction(why) => write!(f, "bad action: {why}"),
            Error::BadInstruction(why) => write!(f, "bad instruction: {why}"),
            Error::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Checks `buf` holds at least `needed` bytes.
pub(crate) fn check_len(buf: &[u8], needed: usize) -> Result<()> {
    if buf.len() < needed {
        return Err(Error::Truncated {
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

/// Checks a fixed-size message is exactly `len` bytes (OFPBRC_BAD_LEN otherwise).
pub(crate) fn exact_len(msg: &[u8], len: usize) -> Result<()> {
    if msg.len() != len {
        return Err(Error::BadLength("wrong length for the message type"));
    }
    Ok(())
}
