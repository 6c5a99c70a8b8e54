//! OpenFlow 1.0 (wire version 0x01) and the Nicira extensions Open vSwitch's
//! `ovs-ofctl` uses with it: what a plain `ovs-ofctl add-flow br0 ...`,
//! `dump-flows`, `show`, `del-flows`, `dump-ports` (no `-O`) put on the
//! wire, since `ovs-ofctl` offers only OpenFlow 1.0 by default
//! (`OFPUTIL_DEFAULT_VERSIONS`, `lib/ofp-protocol.c`).
//!
//! What `ovs-ofctl` 3.1 sends (captured, `tests/captures/of10_session.txt`):
//!
//! * an 8-byte HELLO of version 1 (no version bitmap);
//! * `show`: FEATURES_REQUEST (the 1.0 reply lists the ports) and
//!   GET_CONFIG_REQUEST;
//! * `add-flow`/`mod-flows`/`del-flows`: OFPT_FLOW_MOD with an
//!   [`matching::Match10`] when the match fits it, else NXT_SET_FLOW_FORMAT
//!   (NXM) and NXT_FLOW_MOD with an NXM match; NXT_FLOW_MOD_TABLE_ID first
//!   when a table is named; each followed by a BARRIER_REQUEST; it first
//!   opens connections to learn table names (OFPST_TABLE) and port names
//!   (FEATURES_REQUEST);
//! * `dump-flows`/`dump-aggregate`: NXT_SET_FLOW_FORMAT (NXM) and a barrier,
//!   then NXST_FLOW / NXST_AGGREGATE;
//! * `packet-out`: OFPT_PACKET_OUT with 1.0 actions;
//! * `dump-ports`: OFPST_PORT; `dump-tables`: OFPST_TABLE; `dump-desc`:
//!   OFPST_DESC.
//!
//! Actions are OFPAT10_* and Nicira vendor actions ([`action::Action10`]).
//! Errors that 1.0 cannot say go as Nicira vendor errors ([`error`]).

pub mod action;
pub mod error;
pub mod field;
pub mod flow_mod;
pub mod matching;
pub mod message;
pub mod nx;
pub mod nxm;
pub mod packet_out;
pub mod port;
pub mod stats;

pub use action::Action10;
pub use matching::Match10;
pub use message::Message10;

/// OpenFlow 1.0's wire version.
pub const VERSION: u8 = 0x01;
