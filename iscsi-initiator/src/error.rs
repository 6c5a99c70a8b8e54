//! Errors of the initiator.

use crate::negotiate::NegotiationError;
use crate::scsi::sense::Sense;
use std::fmt;

/// Why the session (its connection) failed. After a `SessionError` the connection is
/// dead; outstanding commands are kept and reissued after the next login (ERL 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The target sent bytes that are not a valid PDU.
    Pdu(iscsi_pdu::Error),
    /// A valid PDU that breaks the protocol (unknown task tag, data beyond the buffer ...).
    Protocol(String),
    /// Login Response with Status-Class != 0 (RFC 7143 section 11.13.5).
    LoginRejected {
        /// Status-Class.
        class: u8,
        /// Status-Detail.
        detail: u8,
    },
    /// The target redirected the login (Status-Class 1, RFC 7143 section
    /// 11.13.5): log in again at `address` (a raw `TargetAddress` value,
    /// see [`crate::portals::parse_target_address`]).
    Redirected {
        /// The TargetAddress value: `host[:port][,tag]`.
        address: String,
        /// Status-Detail 0x02 "moved permanently" (else temporarily).
        permanent: bool,
    },
    /// Operational negotiation failed.
    Negotiation(NegotiationError),
    /// CHAP failed (target did not prove its identity, or sent unusable challenges).
    Auth(String),
    /// A timer expired (login, NOP-Out ping).
    Timeout(&'static str),
    /// The transport closed or failed.
    ConnectionLost(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Pdu(e) => write!(f, "bad PDU from target: {e}"),
            SessionError::Protocol(s) => write!(f, "protocol error: {s}"),
            SessionError::LoginRejected { class, detail } => {
                let what = match (class, detail) {
                    (1, _) => "target moved (redirect)",
                    (2, 1) => "authentication failed",
                    (2, 2) => "authorization failure",
                    (2, 3) => "target not found",
                    (2, 4) => "target removed",
                    (2, 5) => "unsupported version",
                    (2, 6) => "too many connections",
                    (2, 7) => "missing parameter",
                    (2, 10) => "session does not exist",
                    (2, _) => "initiator error",
                    (3, 1) => "service unavailable",
                    (3, 2) => "out of resources",
                    (3, _) => "target error",
                    _ => "unknown status",
                };
                write!(f, "login rejected: {what} (class {class}, detail {detail})")
            }
            SessionError::Redirected { address, permanent } => write!(
                f,
                "login redirected ({}) to {address}",
                if *permanent {
                    "moved permanently"
                } else {
                    "moved temporarily"
                }
            ),
            SessionError::Negotiation(e) => write!(f, "{e}"),
            SessionError::Auth(s) => write!(f, "CHAP authentication failed: {s}"),
            SessionError::Timeout(s) => write!(f, "timeout: {s}"),
            SessionError::ConnectionLost(s) => write!(f, "connection lost: {s}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<iscsi_pdu::Error> for SessionError {
    fn from(e: iscsi_pdu::Error) -> SessionError {
        SessionError::Pdu(e)
    }
}

impl From<NegotiationError> for SessionError {
    fn from(e: NegotiationError) -> SessionError {
        SessionError::Negotiation(e)
    }
}

/// Why one SCSI command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// CHECK CONDITION with decoded sense data.
    CheckCondition(Sense),
    /// CHECK CONDITION whose sense data could not be decoded.
    CheckConditionNoSense,
    /// Any other non-GOOD status (BUSY, RESERVATION CONFLICT, TASK SET FULL ...).
    Status(u8),
    /// iSCSI Response "target failure" (RFC 7143 section 11.4.3).
    TargetFailure(u8),
    /// The target rejected the command PDU (section 11.17) with this reason.
    Rejected(u8),
    /// Aborted by a task management function.
    Aborted,
    /// Never answered: the session stayed without a connection past the
    /// caller's replacement timeout and the command was given up
    /// ([`crate::Session::fail_outstanding`]).
    SessionDown,
    /// The target moved more or less data than allowed.
    Residual {
        /// Bytes expected.
        expected: u32,
        /// Bytes transferred.
        transferred: u32,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::CheckCondition(s) => write!(f, "CHECK CONDITION: {s}"),
            CommandError::CheckConditionNoSense => write!(f, "CHECK CONDITION without sense"),
            CommandError::Status(s) => write!(f, "SCSI status {s:#04x}"),
            CommandError::TargetFailure(r) => write!(f, "iSCSI target failure (response {r})"),
            CommandError::Rejected(r) => write!(f, "command rejected by target (reason {r:#04x})"),
            CommandError::Aborted => write!(f, "command aborted"),
            CommandError::SessionDown => {
                write!(
                    f,
                    "no connection to the target within the replacement timeout"
                )
            }
            CommandError::Residual {
                expected,
                transferred,
            } => write!(f, "short transfer: {transferred} of {expected} bytes"),
        }
    }
}

impl std::error::Error for CommandError {}
