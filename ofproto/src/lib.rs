//! The OpenFlow 1.3 switch side of `vswitch`: what `ovs-vswitchd`'s
//! ofproto layer is to OVS. It turns OpenFlow messages (decoded by the
//! `openflow` crate) into operations on the flow-table switch (`switch`
//! crate) and answers with what OVS answers.
//!
//! ```text
//! ovs-ofctl / controller ──OpenFlow 1.3──► server (listeners, controller connections)
//!        ▲                                   │ one Connection per peer (sans I/O)
//!        └──── replies, errors ◄─────────────┤ flow_match / actions: OpenFlow ↔ switch rules
//!                                            ▼
//!                                  switch::Switch (flow tables, groups, counters)
//! ```

#![deny(missing_docs)]

pub mod actions;
pub mod bridge;
pub mod conn;
mod consts;
pub mod ct_action;
pub mod ct_match;
pub mod error;
pub mod flow_match;
mod flow_mod;
mod group_mod;
mod multipart;
pub(crate) mod of10;
mod of10_flow;
mod packet_out;
pub mod port_map;
pub mod reg_fields;
pub mod server;
pub mod table_features;

/// The cookie of the rule a standalone bridge installs when it fails open
/// (no controller connected); flow dumps leave it out, as OVS hides its
/// fail-open flow.
pub const FAIL_OPEN_COOKIE: u64 = 0xf0f0_f0f0_f0f0_f0f0;
