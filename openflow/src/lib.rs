//! OpenFlow 1.3.5 wire format (protocol version 0x04), in the smoltcp wire style.
//!
//! Layout:
//!
//! * [`field`]: every field offset of every structure this crate reads or writes.
//! * [`header`]: the zero-copy [`Packet`] view over one whole message (ofp_header and
//!   body; the length field is checked once, in [`Packet::new_checked`]) and [`MsgType`].
//! * [`framing`]: message boundaries on a byte stream.
//! * [`message`]: the [`Message`] enum of typed representations, one per message type,
//!   with `parse` / `emit` / `buffer_len`; unknown types parse as [`Message::Unknown`].
//! * [`oxm`] and [`matching`]: OXM TLVs (OpenFlow basic class and the Nicira / ONF fields
//!   `ovs-ofctl` emits) and the `ofp_match` structure.
//! * [`action`], [`nicira`], [`nx_ct`], [`instruction`]: actions (with Nicira
//!   experimenter actions, conntrack's `ct` and `nat` in their own module) and
//!   instructions.
//! * [`multipart`] and [`table_features`]: statistics and descriptions.
//! * [`port`], [`flow_mod`], [`group`], [`meter_mod`], [`packet_in`], ...: one concept
//!   per module.
//!
//! * [`of10`]: OpenFlow 1.0 and the Nicira messages, matches (NXM) and
//!   statistics a default `ovs-ofctl` (no `-O`) uses.
//!
//! Parsing never panics and never reads past a buffer: every length field from the
//! wire is checked against the bytes that carry it before it is used.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod action;
pub mod async_config;
mod bytes;
pub mod error;
pub mod error_msg;
pub mod experimenter;
pub mod features;
pub mod field;
pub mod flow_mod;
pub mod flow_removed;
pub mod framing;
pub mod group;
pub mod header;
pub mod hello;
pub mod instruction;
pub mod matching;
pub mod message;
pub mod meter_mod;
pub mod multipart;
pub mod nicira;
pub mod nx_ct;
pub mod of10;
pub mod oxm;
pub mod packet_in;
pub mod packet_out;
pub mod port;
pub mod role;
pub mod switch_config;
pub mod table_features;
pub mod table_mod;
mod tlv;

pub use action::Action;
pub use error::{Error, Result};
pub use header::{MsgType, Packet};
pub use instruction::Instruction;
pub use matching::Match;
pub use message::Message;
pub use oxm::{Field, OxmField};

/// The protocol version this crate speaks: OpenFlow 1.3 (0x04).
pub const VERSION: u8 = 0x04;

/// Largest OpenFlow message: the 16-bit length field of ofp_header.
pub const MAX_MESSAGE_LEN: usize = 65535;
