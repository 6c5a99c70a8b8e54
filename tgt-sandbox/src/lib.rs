//! A private tgtd (the Linux SCSI target framework's daemon, Debian
//! package `tgt`): started on a portal of its own, optionally inside a
//! network namespace, configured through `tgtadm` on its own management
//! channel, killed on drop. The iSCSI tests (`iscsi-initiator/tests/common`),
//! the benchmarks (`perf`'s `iscsi_bench`, `blk_iscsi`) and `vswitch demo`
//! all drive their target through this crate, so the `tgtadm` vocabulary
//! lives in one place.
//!
//! Data flow:
//!
//! ```text
//! free_control_port()         a channel N whose /var/run/tgtd/socket.N is absent
//! free_tcp_port()             a loopback port for the portal (or for nothing)
//! Daemon::spawn(Launch)       [ip netns exec NS] tgtd -f -C N --iscsi portal=ADDR:PORT
//!   wait_ready(timeout)       the portal accepts TCP and `tgtadm --op show` answers
//!   adm() → Tgtadm            tgtadm -C N --lld iscsi --mode ... --op ...
//!     export_lun(iqn, file)   target 1 (iqn), LUN 1 (file), bound to every initiator
//!     new_account/bind_...    CHAP (one-way and mutual)
//! drop / kill                 SIGKILL (tgtd ignores SIGTERM while targets exist),
//!                             socket.N and socket.N.lock removed
//! ```
//!
//! No crate drives tgtd from Rust; `tgtadm`'s command line is the
//! interface its operators use, so it is what is exercised.

#![deny(missing_docs)]

mod daemon;
mod tgtadm;

pub use daemon::{control_port_free, free_control_port, free_tcp_port, Daemon, Launch};
pub use tgtadm::Tgtadm;

/// The target id every user of this crate exports its LUNs under.
pub const TID: &str = "1";
