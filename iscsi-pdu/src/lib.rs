//! iSCSI wire format (RFC 7143), initiator and target PDUs alike.
//!
//! Layout, in the style of smoltcp's wire modules:
//!
//! * [`bhs`]: the zero-copy [`Bhs`] view over the 48-byte Basic Header Segment; every field
//!   offset of every PDU lives in its `field` module and nowhere else.
//! * [`pdu`]: one typed representation per PDU (`parse` from a [`Bhs`], `emit` into one),
//!   gathered in the [`Pdu`] enum.
//! * [`frame`]: whole PDUs on a byte stream: BHS, AHS, header digest, data segment, padding,
//!   data digest. Finds PDU boundaries, verifies digests and emits complete PDUs.
//! * [`ahs`], [`digest`], [`text`], [`serial`]: Additional Header Segments, CRC32C digests,
//!   `key=value` text lists and RFC 1982 serial number arithmetic.
//!
//! Dependencies: `crc32c` for the digests (SSE4.2/ARMv8 CRC instructions with a
//! software fallback; faster and better tested than a table written here).
//!
//! Parsing never panics: every length is checked once, when a view is built, and all
//! other accessors rely on that check.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod ahs;
pub mod bhs;
pub mod digest;
mod error;
pub mod frame;
pub mod opcode;
pub mod pdu;
pub mod serial;
pub mod text;

pub use bhs::Bhs;
pub use error::{Error, Result};
pub use frame::{DigestConfig, Frame};
pub use opcode::Opcode;
pub use pdu::Pdu;
pub use serial::SerialNumber;
