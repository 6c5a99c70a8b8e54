//! Virtqueues (VIRTIO 1.2 §2.7 split rings, §2.8 packed rings) polled by the
//! device.
//!
//! * [`split`]: the device side of one split virtqueue: available-ring
//!   polling, descriptor-chain walking (indirect tables, length limits, loop
//!   detection, direction checks), the used ring and event-index
//!   notification suppression.
//! * [`packed`]: the device side of one packed virtqueue (§2.8).
//! * [`queue`]: either layout behind one interface.
//! * [`chain`]: the result of walking one chain, as host I/O vectors.
//! * [`barrier`]: the full barrier before an interrupt or kick decision
//!   (a locked instruction, cheaper than `MFENCE`).
//! * [`prefetch`]: the write prefetch a batch issues for its request
//!   headers and used-ring lines before it walks them.
//! * `mock` (feature `test-utils` or tests): guest-driver simulators (split
//!   and packed) that place descriptors in guest memory the way a virtio
//!   driver does.
//!
//! # Why not `virtio-queue`
//! rust-vmm's `virtio-queue` was evaluated and not used for the device side:
//! its `DescriptorChain` iterator ends silently on a bad descriptor, a loop or
//! an over-long chain (the caller cannot tell a truncated chain from a short
//! one, so a virtio-blk status byte could be written into the wrong buffer),
//! it re-resolves the guest region for every ring access, and it publishes the
//! used index once per element. This module reports each malformed-chain case
//! as its own error, caches the host addresses of the rings once they have
//! been checked, walks chains into a preallocated vector (the hot path
//! allocates nothing), and publishes the used index once per batch. Guest
//! memory is still rust-vmm's `vm-memory`.

pub mod barrier;
pub mod chain;
pub mod packed;
pub mod prefetch;
pub mod queue;
pub mod split;

#[cfg(any(test, feature = "test-utils"))]
pub mod mock;

pub use chain::{Chain, ChainError};
pub use packed::PackedQueue;
pub use queue::{PopError, Virtqueue};
pub use split::{QueueConfig, QueueError, SplitQueue};

/// Descriptor flag: the chain continues in `next` (§2.7.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable (§2.7.5).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of indirect descriptors (§2.7.5.3).
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Used-ring flag: the device does not want kicks (§2.7.10).
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;
/// Available-ring flag: the driver does not want interrupts (§2.7.6).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Feature bit: indirect descriptors (§6.3).
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
/// Feature bit: `used_event` / `avail_event` (§6.3).
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
/// Feature bit: VIRTIO 1.0 or later (§6.1).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// Feature bit: packed virtqueue layout (§6.1).
pub const VIRTIO_F_RING_PACKED: u64 = 1 << 34;

/// Largest split queue size (§2.7: "Queue Size ... maximum 32768").
pub const MAX_QUEUE_SIZE: u16 = 32768;

#[cfg(test)]
mod packed_tests;
#[cfg(test)]
mod tests;
