//! The one error type of the wire layer.

use core::fmt;

/// Why bytes could not be parsed as (or emitted into) an iSCSI PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the structure it must hold.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The opcode is not one RFC 7143 defines (or not valid in this direction).
    UnknownOpcode(u8),
    /// The header digest (CRC32C) does not match.
    HeaderDigest {
        /// Digest computed over the received header.
        computed: u32,
        /// Digest carried on the wire.
        received: u32,
    },
    /// The data digest (CRC32C) does not match.
    DataDigest {
        /// Digest computed over the received data segment and padding.
        computed: u32,
        /// Digest carried on the wire.
        received: u32,
    },
    /// An AHS is malformed (length running past TotalAHSLength, unknown type, ...).
    MalformedAhs(&'static str),
    /// A data segment longer than the 24-bit DataSegmentLength field allows.
    DataTooLong(usize),
    /// A text `key=value` list is malformed.
    MalformedText(&'static str),
    /// A field holds a value the RFC forbids.
    InvalidField(&'static str),
}

/// Result of the wire layer.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, available } => {
                write!(f, "truncated PDU: need {needed} bytes, have {available}")
            }
            Error::UnknownOpcode(op) => write!(f, "unknown iSCSI opcode {op:#04x}"),
            Error::HeaderDigest { computed, received } => write!(
                f,
                "header digest mismatch: computed {computed:#010x}, received {received:#010x}"
            ),
            Error::DataDigest { computed, received } => write!(
                f,
                "data digest mismatch: computed {computed:#010x}, received {received:#010x}"
            ),
            Error::MalformedAhs(why) => write!(f, "malformed AHS: {why}"),
            Error::DataTooLong(n) => write!(f, "data segment of {n} bytes exceeds 2^24-1"),
            Error::MalformedText(why) => write!(f, "malformed text key=value list: {why}"),
            Error::InvalidField(why) => write!(f, "invalid field: {why}"),
        }
    }
}

impl std::error::Error for Error {}
