//! [`Virtqueue`]: a split or packed ring behind one interface, chosen by the
//! negotiated `VIRTIO_F_RING_PACKED`.

use super::chain::{Chain, ChainError};
use super::packed::PackedQueue;
use super::split::{QueueConfig, QueueError, SplitQueue};
use super::VIRTIO_F_RING_PACKED;
use crate::guest_memory::GuestMemory;

/// Why taking the next chain failed; either way the queue needs a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// The ring itself is inconsistent.
    Queue(QueueError),
    /// The chain is malformed.
    Chain(ChainError),
}

impl std::fmt::Display for PopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PopError::Queue(e) => e.fmt(f),
            PopError::Chain(e) => e.fmt(f),
        }
    }
}

/// A device-side virtqueue of either layout.
#[derive(Debug)]
pub enum Virtqueue {
    /// Split ring (§2.7).
    Split(SplitQueue),
    /// Packed ring (§2.8).
    Packed(PackedQueue),
}

impl Virtqueue {
    /// Starts a queue. `base` is the vhost-user ring base: for split rings
    /// the next available index (the used index is read from the used ring);
    /// for packed rings see [`PackedQueue::new`].
    pub fn new(
        mem: GuestMemory,
        cfg: QueueConfig,
        features: u64,
        base: u32,
    ) -> Result<Self, QueueError> {
        if features & VIRTIO_F_RING_PACKED != 0 {
            return PackedQueue::new(mem, cfg, features, base).map(Virtqueue::Packed);
        }
        let mut used_idx = [0u8; 2];
        let at = cfg
            .used
            .checked_add(2)
            .ok_or(QueueError::RingOutOfBounds("used"))?;
        mem.read(at, &mut used_idx)
            .map_err(|_| QueueError::RingOutOfBounds("used"))?;
        SplitQueue::new(
            mem,
            cfg,
            features,
            base as u16,
            u16::from_le_bytes(used_idx),
        )
        .map(Virtqueue::Split)
    }

    /// Takes the next available chain; `Ok(None)` when there is none.
    #[inline]
    pub fn pop(&mut self, chain: &mut Chain) -> Result<Option<u16>, PopError> {
        match self {
            Virtqueue::Split(q) => {
                if q.avail_ready().map_err(PopError::Queue)? == 0 {
                    return Ok(None);
                }
                let head = q.pop_head();
                q.walk(head, chain).map_err(PopError::Chain)?;
                Ok(Some(head))
            }
            Virtqueue::Packed(q) => q.pop(chain).map_err(PopError::Chain),
        }
    }

    /// Whether `pop` may find something: a chain is available, or the ring
    /// is inconsistent (the split ring's index jumped; `pop` says so). At
    /// most one load of the line `pop` reads first, which `pop` then does
    /// not repeat (an idle poll step asks the backend nothing when this is
    /// false).
    #[inline]
    pub fn may_pop(&mut self) -> bool {
        match self {
            Virtqueue::Split(q) => !matches!(q.avail_ready(), Ok(0)),
            Virtqueue::Packed(q) => q.avail_head(),
        }
    }

    /// Before a batch of at most `max` chains: prefetches what taking the
    /// available ones will touch ([`SplitQueue::prefetch_batch`]; packed
    /// rings: nothing yet).
    #[inline]
    pub fn prefetch_batch(&self, max: u16) {
        if let Virtqueue::Split(q) = self {
            q.prefetch_batch(max);
        }
    }

    /// Walks the chain at `head` without taking it from the available ring
    /// (split rings: resubmitting a chain a previous back end took).
    pub fn walk_head(&mut self, head: u16, chain: &mut Chain) -> Result<(), PopError> {
        match self {
            Virtqueue::Split(q) => q.walk(head, chain).map_err(PopError::Chain),
            Virtqueue::Packed(_) => Err(PopError::Chain(ChainError::HeadOutOfRange(head))),
        }
    }

    /// The used index the next publication will store (split rings; the
    /// next used slot for packed rings).
    #[inline]
    pub fn next_used(&self) -> u16 {
        match self {
            Virtqueue::Split(q) => q.next_used(),
            Virtqueue::Packed(q) => (q.base() >> 16) as u16 & 0x7fff,
        }
    }

    /// Gives back the chain the last `pop` took.
    #[inline]
    pub fn unpop(&mut self) {
        match self {
            Virtqueue::Split(q) => q.unpop_head(),
            Virtqueue::Packed(q) => q.unpop(),
        }
    }

    /// Returns buffer `id` to the driver with `len` bytes written;
    /// `ring_descs` is the chain's [`Chain::ring_descs`].
    #[inline]
    pub fn add_used(&mut self, id: u16, len: u32, ring_descs: u16) {
        match self {
            Virtqueue::Split(q) => q.add_used(id, len),
            Virtqueue::Packed(q) => q.add_used(id, len, ring_descs),
        }
    }

    /// Makes the used entries visible; true if the driver wants an interrupt.
    #[inline]
    pub fn publish_used(&mut self) -> bool {
        match self {
            Virtqueue::Split(q) => q.publish_used(),
            Virtqueue::Packed(q) => q.publish_used(),
        }
    }

    /// [`publish_used`](Self::publish_used) without its fence: makes the
    /// used entries visible; true if the driver must be considered for an
    /// interrupt, with [`interrupt_needed`](Self::interrupt_needed) after a
    /// full fence ([`crate::virtq::barrier::full_fence`]) (one fence for every queue a device publishes).
    #[inline]
    pub fn publish_store(&mut self) -> bool {
        match self {
            Virtqueue::Split(q) => q.publish_store(),
            Virtqueue::Packed(q) => q.publish_store(),
        }
    }

    /// After [`publish_store`](Self::publish_store) and a full fence ([`crate::virtq::barrier::full_fence`]):
    /// whether the driver wants an interrupt.
    #[inline]
    pub fn interrupt_needed(&mut self) -> bool {
        match self {
            Virtqueue::Split(q) => q.interrupt_needed(),
            Virtqueue::Packed(q) => q.interrupt_needed(),
        }
    }

    /// Asks the driver to kick before the device sleeps; true if a chain
    /// is already available.
    #[inline]
    pub fn enable_kicks(&mut self) -> bool {
        match self {
            Virtqueue::Split(q) => q.enable_kicks(),
            Virtqueue::Packed(q) => q.enable_kicks(),
        }
    }

    /// Asks the driver not to kick.
    #[inline]
    pub fn suppress_kicks(&mut self) {
        match self {
            Virtqueue::Split(q) => q.suppress_kicks(),
            Virtqueue::Packed(q) => q.suppress_kicks(),
        }
    }

    /// The vhost-user ring base to report on `GET_VRING_BASE`.
    pub fn base(&self) -> u32 {
        match self {
            Virtqueue::Split(q) => q.next_avail() as u32,
            Virtqueue::Packed(q) => q.base(),
        }
    }
}
