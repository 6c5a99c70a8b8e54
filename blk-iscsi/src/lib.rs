//! iSCSI backend for the virtual storage queues (issue 7's main path: VM block
//! I/O → iSCSI in user mode).
//!
//! ```text
//!  vfio::blk::BlkDevice ── submit(IoRequest) ──► IscsiBackend ── Command ──► Session
//!        (poller thread)                          │ slots, tag map,            │ tx bytes
//!                                                  │ buffer pool                ▼
//!        ◄── poll() completions ◄── Completed ◄────┴──── receive(bytes) ◄── Link (non-blocking
//!                                                                           TcpStream)
//! ```
//!
//! * [`spec`]: the `iscsi://[USER%SECRET@]PORTAL[,PORTAL...]/IQN/LUN[?...]`
//!   backend argument (portals, CHAP, timeouts).
//! * [`link`]: a non-blocking kernel TCP socket driving the sans-IO
//!   [`iscsi_initiator::Session`]: write what it queued, read what arrived, run
//!   its timers; never blocks, so it runs inside [`vfio::backend::Backend::poll`]
//!   on the poller thread (no extra thread on the fast path).
//! * [`backend`]: [`IscsiBackend`], the `vfio::backend::Backend`: each virtio
//!   request becomes one or more SCSI commands (split at the LU's transfer
//!   limit), all outstanding at once; completions come back in any order.
//!   A lost connection is recovered by ErrorRecoveryLevel 0 session
//!   reinstatement (the session reissues every command not yet completed).
//! * [`recovery`]: failover across the device's portals, login redirects,
//!   the replacement timeout after which I/O fails cleanly.
//! * [`stats`]: session state and recovery counters in atomics, for metrics.
//!
//! Dependencies: `vfio` (the `Backend` trait, guest I/O vectors) and
//! `iscsi-initiator` (session, SCSI CDBs); nothing DPDK, so `vfio` stays free
//! of DPDK and this crate can later take a user-space TCP transport.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod backend;
pub mod link;
pub mod recovery;
pub mod spec;
pub mod stats;

pub use backend::IscsiBackend;
pub use spec::{IscsiSpec, Timeouts};
pub use stats::{SessionState, SessionStats};
