//! A datapath of this crate's own for the split virtqueues of `net_vhost`
//! ports: the guest's rings are read and written here instead of through
//! `rte_vhost_dequeue_burst` / `rte_vhost_enqueue_burst`, whose general
//! per-packet code (per-descriptor address translation through the IOTLB
//! layer, one-by-one used-ring writes, offload parsing of every header)
//! costs most of a VM-to-VM switch's cycles.
//!
//! The vhost library keeps everything else (socket, negotiation, memory
//! mapping, reconnection, link state): when a device comes up, a queue
//! takes the library's view of it ([`ring::NetRing::from_library`]:
//! negotiated features, memory table, ring addresses, ring indices) and
//! gives its indices back ([`ring::NetRing::give_back`]) before the library
//! needs them. [`crate::vhost`] decides when.
//!
//! * [`mem`]: guest memory regions, bounds-checked translation.
//! * [`split`]: one split ring (VIRTIO 1.2 §2.7): chain walking with every
//!   guest value checked, batched used entries, notification decision.
//! * [`net`]: frames through a ring with the virtio-net header (§5.1.6),
//!   mergeable receive buffers.
//! * [`mbuf_io`]: the frames' bytes into and out of mbufs.
//! * [`large`]: the pool of 64 KiB mbufs for large segments.
//! * [`copy`]: the byte copies, by length (short frames inline, long
//!   pieces of large segments in AVX2 moves).
//! * [`ring`]: one queue's ring state taken from the vhost library.
//!
//! Why not `vfio::virtq`: that split-ring code (the virtio-blk device)
//! works on `vm-memory` regions it maps itself from the vhost-user fds;
//! here the vhost library has mapped them and only lends the addresses, and
//! the `dpdk` crate does not depend on the device crate (which brings
//! `vhost`, `vm-memory` and io_uring).

pub(crate) mod copy;
pub(crate) mod large;
pub(crate) mod mbuf_io;
pub(crate) mod mem;
pub(crate) mod net;
pub(crate) mod ring;
pub(crate) mod split;

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

/// Descriptor flag: the chain continues in `next` (§2.7.5).
pub(crate) const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: device-writable buffer (§2.7.5).
pub(crate) const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors (§2.7.5.3).
pub(crate) const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available-ring flag: the driver wants no used-buffer notifications
/// (§2.7.7).
pub(crate) const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
