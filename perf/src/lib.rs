//! Shared pieces of the benchmarks in `src/bin/`: traffic generation (pcap
//! files of real frames), equivalent rule sets for OVS and vswitch, a
//! private OVS-DPDK instance as a peer, running peer programs with a
//! deadline, and reports (a human table plus one JSON line).
//!
//! Every benchmark measures our component and its peer in the same run, on
//! the same machine and inputs, and reports the ratio.

#![deny(missing_docs)]

pub mod acl;
pub mod cleanup;
pub mod frames;
pub mod ovs;
pub mod proc;
pub mod report;
pub mod rules;
pub mod spdk;
pub mod tcp_frames;
pub mod threads;
pub mod tunnel;
pub mod vhost_driver;
