//! The device module: virtual storage queues served to VMs over
//! vhost-user-blk, accelerator virtual functions configured through a
//! management mailbox ([`accel`]), and VFIO device access ([`pci`]).
//!
//! Data flow of the storage part (see README.md):
//! VMM --vhost-user socket--> [`vhost_user`] server --> [`blk::BlkDevice`]
//! (owns [`guest_memory::GuestMemory`] and one [`virtq::SplitQueue`] per
//! vring) <--polled by-- [`poller::PollGroup`] (one thread, all queues of all
//! devices) --> [`backend::Backend`] (file, memory, null; asynchronous
//! completion) --> completions --> used ring --> call eventfd. With
//! `--cache`, a [`cache::CachedBackend`] (metadata in a guest-shared region,
//! validated on every use) sits in front of the backend.
//!
//! Crates: rust-vmm `vm-memory` maps and bounds-checks guest memory; rust-vmm
//! `vhost` speaks the vhost-user protocol. The virtqueue itself is our own,
//! see [`virtq`] for why. rust-vmm `vhost-user-backend` is not used: it runs an
//! epoll worker per device that handles a queue when its kick eventfd fires,
//! while this device polls every queue of every device from one thread with
//! no kicks, and needs control over in-flight requests when a ring is stopped.
#![deny(missing_docs)]

pub mod accel;
pub mod backend;
pub mod blk;
pub mod cache;
pub mod dirty_log;
pub mod guest_memory;
pub mod inflight;
pub mod iovec;
pub mod pci;
pub mod poller;
pub mod readiness;
pub mod vhost_user;
pub mod virtq;
