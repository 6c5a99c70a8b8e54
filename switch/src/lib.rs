//! The DPDK-independent core of the flow-table virtual switch.
//!
//! See `README.md` for the data flow. The lead plugs [`datapath::Datapath`]
//! into the DPDK burst loop through the [`frame::Frame`] trait.

#![deny(missing_docs)]

pub mod extract;
pub mod key;
pub mod testutil;
pub mod wire;
