//! A sans-IO iSCSI initiator (RFC 7143) and the conversion of block I/O into SCSI
//! commands.
//!
//! * [`negotiate`], [`login`], [`chap`]: the login phase and its key negotiation.
//! * [`session`]: the full feature phase state machine, bytes in / bytes out, with
//!   many commands outstanding, immediate/unsolicited/R2T-driven write data,
//!   phase-collapsed Data-In, NOP keepalive, task management, logout and
//!   ErrorRecoveryLevel 0 reinstatement.
//! * [`scsi`]: CDB builders and parsers (INQUIRY, VPD, capacity, sense ...).
//! * [`block`]: block requests (read/write/flush/discard at byte offsets, scatter-gather)
//!   to SCSI commands within the LU's limits.
//! * [`portals`]: portal lists and login redirects (`TargetAddress`), where
//!   the next connection of a session goes.
//! * [`transport`]: a blocking std TCP driver for the session, used by the CLI, the
//!   tests and the benchmark.

//!
//! Dependencies: `iscsi-pdu` for the wire format and RustCrypto's `md-5` for CHAP
//! (RFC 1994 mandates MD5; a maintained implementation beats a hand-written one).
//! The session is sans-IO so the same code runs over std TCP here and over smoltcp on
//! the switch later.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod block;
pub mod chap;
pub mod device;
mod error;
pub mod login;
pub mod negotiate;
pub mod portals;
pub mod scsi;
pub mod session;
pub mod task;
pub mod transport;
pub mod workload;

pub use error::{CommandError, SessionError};
pub use session::{Completion, DiscoveredTarget, Event, Session, SessionConfig};
pub use task::{Command, Direction, TaskTag};
