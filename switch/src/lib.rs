//! The DPDK-independent core of the flow-table virtual switch.
//!
//! See `README.md` for the data flow. The lead plugs [`datapath::Datapath`]
//! into the DPDK burst loop through the [`frame::Frame`] trait.

#![deny(missing_docs)]

pub mod action;
pub mod classifier;
pub mod control;
pub mod ct;
pub mod datapath;
pub mod extract;
pub mod fdb;
pub mod flowcache;
pub mod frame;
pub mod group;
pub mod key;
pub mod offload;
pub mod pipeline;
pub mod pkt_field;
pub mod regs;
pub mod rule;
pub mod stats;
pub mod switch;
pub mod table;
pub mod testutil;
pub mod tunnel;
pub mod verdict;
pub mod wire;
