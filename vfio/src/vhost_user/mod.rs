//! The vhost-user-blk back end: a unix-socket server that lets a VMM (QEMU's
//! `vhost-user-blk-pci`) hand one [`crate::blk::BlkDevice`] its guest memory
//! and virtqueues.
//!
//! The message framing, fd passing and reply-ack are rust-vmm's `vhost` crate
//! (`BackendReqHandler`); [`handler`] implements the requests on top of the
//! device, [`server`] accepts connections and accepts a new one after the VMM
//! (or this back end) went away, so a VMM with a reconnecting chardev
//! recovers; with `INFLIGHT_SHMFD` (split rings) requests that were in flight
//! when a back end died are resubmitted by the next one
//! ([`crate::inflight`]).

pub mod backend_req;
pub mod handler;
pub mod server;

#[cfg(any(test, feature = "test-utils"))]
pub mod mock_frontend;

#[cfg(test)]
mod tests;

pub use handler::BlkHandler;
pub use server::BlkServer;

/// `VHOST_F_LOG_ALL` (vhost feature bit 26): the back end can log the
/// guest pages it writes, so the VMM can migrate the guest live.
pub const VHOST_F_LOG_ALL: u64 = 1 << 26;

/// `VHOST_USER_F_PROTOCOL_FEATURES` (vhost-user spec, feature bit 30).
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
