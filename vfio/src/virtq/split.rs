//! The device side of one split virtqueue (VIRTIO 1.2 §2.7).
//!
//! The three ring areas are checked once, when the queue is started: each must
//! lie inside one guest-memory region and be aligned as §2.7 requires. Their
//! host addresses are then cached; every later ring access indexes them with a
//! value reduced modulo the queue size, so it cannot leave the checked area.
//! Buffers named by descriptors are checked one by one in [`SplitQueue::walk`].
//! Each descriptor is copied out of guest memory once and only the copy is
//! validated and used (no double fetch).

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU16, Ordering};

use super::barrier::full_fence;
use super::chain::{Chain, ChainError};
use super::prefetch::{prefetch_read, prefetch_write};
use super::{
    MAX_QUEUE_SIZE, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
    VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
    VIRTQ_USED_F_NO_NOTIFY,
};
use crate::guest_memory::GuestMemory;

/// Where the driver put the queue, in guest-physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueConfig {
    /// Number of entries (a power of two, at most 32768).
    pub size: u16,
    /// Descriptor table.
    pub desc: u64,
    /// Available ring (driver area).
    pub avail: u64,
    /// Used ring (device area).
    pub used: u64,
}

/// Why a queue cannot be started or must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Size 0, not a power of two, or above 32768 (§2.7: "Queue Size value is
    /// always a power of 2. The maximum Queue Size value is 32768").
    BadSize(u16),
    /// A ring area is not aligned as §2.7 Table "Virtqueue Part Alignment"
    /// requires (descriptors 16, available 2, used 4).
    Misaligned(&'static str),
    /// A ring area is not inside one region of guest memory.
    RingOutOfBounds(&'static str),
    /// The available index moved by more than the queue size: the driver is
    /// broken or malicious.
    AvailIndexJump {
        /// The index the driver published.
        avail_idx: u16,
        /// The next entry the device would have read.
        next_avail: u16,
    },
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::BadSize(s) => write!(f, "invalid queue size {s}"),
            QueueError::Misaligned(w) => write!(f, "{w} ring misaligned"),
            QueueError::RingOutOfBounds(w) => write!(f, "{w} ring outside guest memory"),
            QueueError::AvailIndexJump {
                avail_idx,
                next_avail,
            } => {
                write!(
                    f,
                    "available index jumped to {avail_idx} (next {next_avail})"
                )
            }
        }
    }
}

impl std::error::Error for QueueError {}

/// Size of one descriptor (§2.7.5).
const DESC_SIZE: u64 = 16;

/// Bytes of the available ring for `size` entries, with `used_event`.
pub fn avail_ring_len(size: u16) -> u64 {
    6 + 2 * size as u64
}

/// Bytes of the used ring for `size` entries, with `avail_event`.
pub fn used_ring_len(size: u16) -> u64 {
    6 + 8 * size as u64
}

/// One descriptor, copied out of guest memory.
#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// The device side of a split virtqueue.
#[derive(Debug)]
pub struct SplitQueue {
    mem: GuestMemory,
    size: u16,
    desc: *const u8,
    avail: *const u8,
    used: *mut u8,
    next_avail: u16,
    /// The driver's available index as last read (checked): chains up to
    /// it are taken without reading the index again, a line the driver
    /// writes at every publication (a cross-core transfer per read).
    avail_shadow: u16,
    next_used: u16,
    /// `next_used` when the driver was last considered for an interrupt.
    signalled_used: u16,
    /// `VIRTQ_USED_F_NO_NOTIFY` is in the used ring as this queue last
    /// wrote it (a polling device then leaves the flags alone).
    kicks_off: bool,
    /// `next_avail` when `avail_event` was last written (event index).
    avail_event_base: u16,
    event_idx: bool,
    indirect: bool,
    /// The host address of the last request header
    /// [`prefetch_batch`](Self::prefetch_batch) saw (null: none yet): the
    /// line the next request's header is likely in (a driver at queue
    /// depth 1 reuses its request's buffers), prefetched for reading next
    /// to every fresh read of the available index (see
    /// [`avail_ready`](Self::avail_ready)). Only a hint: a pointer into
    /// `mem`, which the queue owns, never dereferenced.
    header_hint: Cell<*const u8>,
}

// SAFETY: the raw pointers (and `header_hint`, never dereferenced) point into `mem`, which the queue owns (a clone of
// an `Arc` mapping); the queue is used by one thread at a time (`&mut self`).
unsafe impl Send for SplitQueue {}

impl SplitQueue {
    /// Checks the configuration against guest memory and starts the queue at
    /// the given ring positions (0/0 for a fresh queue, or what
    /// `SET_VRING_BASE` said). `features` are the negotiated feature bits.
    pub fn new(
        mem: GuestMemory,
        cfg: QueueConfig,
        features: u64,
        next_avail: u16,
        next_used: u16,
    ) -> Result<Self, QueueError> {
        let size = cfg.size;
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(QueueError::BadSize(size));
        }
        let check = |addr: u64, len: u64, align: u64, what: &'static str| {
            if !addr.is_multiple_of(align) {
                return Err(QueueError::Misaligned(what));
            }
            let p = mem
                .host_range(addr, len)
                .map_err(|_| QueueError::RingOutOfBounds(what))?;
            if !(p as usize as u64).is_multiple_of(align) {
                return Err(QueueError::Misaligned(what));
            }
            Ok(p)
        };
        let desc = check(cfg.desc, DESC_SIZE * size as u64, 16, "descriptor")?;
        let avail = check(cfg.avail, avail_ring_len(size), 2, "available")?;
        let used = check(cfg.used, used_ring_len(size), 4, "used")?;
        Ok(SplitQueue {
            mem,
            size,
            desc,
            avail,
            used,
            next_avail,
            avail_shadow: next_avail,
            next_used,
            signalled_used: next_used,
            kicks_off: false,
            avail_event_base: next_avail,
            event_idx: features & VIRTIO_RING_F_EVENT_IDX != 0,
            indirect: features & VIRTIO_RING_F_INDIRECT_DESC != 0,
            header_hint: Cell::new(ptr::null()),
        })
    }

    /// Queue size.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Next available-ring entry the device will read (`GET_VRING_BASE`).
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    /// Next used-ring entry the device will write.
    pub fn next_used(&self) -> u16 {
        self.next_used
    }

    /// The guest memory this queue reads.
    pub fn memory(&self) -> &GuestMemory {
        &self.mem
    }

    #[inline]
    fn avail_u16(&self, off: usize) -> &AtomicU16 {
        // SAFETY: callers pass `off` < avail_ring_len(size) and even; the area
        // was checked to be mapped and 2-aligned in `new` and lives as long as
        // `self.mem`. AtomicU16 has the same layout as u16.
        unsafe { &*(self.avail.add(off) as *const AtomicU16) }
    }

    #[inline]
    fn used_u16(&self, off: usize) -> &AtomicU16 {
        // SAFETY: as in `avail_u16`, for the used ring (4-aligned, checked).
        unsafe { &*(self.used.add(off) as *const AtomicU16) }
    }

    /// Number of chains the driver has made available and the device has not
    /// taken yet. Fails if the available index jumped by more than the queue
    /// size (§2.7.13.3: the driver adds at most Queue Size entries).
    #[inline]
    pub fn avail_pending(&self) -> Result<u16, QueueError> {
        let idx = u16::from_le(self.avail_u16(2).load(Ordering::Acquire));
        let n = idx.wrapping_sub(self.next_avail);
        if n > self.size {
            return Err(QueueError::AvailIndexJump {
                avail_idx: idx,
                next_avail: self.next_avail,
            });
        }
        Ok(n)
    }

    /// Chains available to take: those left of the index as last read, or
    /// when the device caught up with it, [`avail_pending`](Self::avail_pending)
    /// read afresh (§2.7.13.3 checked there). A batch then reads the index
    /// once, not once per chain.
    #[inline]
    pub fn avail_ready(&mut self) -> Result<u16, QueueError> {
        let n = self.avail_shadow.wrapping_sub(self.next_avail);
        if n != 0 {
            return Ok(n);
        }
        // The entry the next chain's head will be in, asked for together
        // with the index: the driver writes the entry before the index, so
        // when the index shows a new chain the entry's line is on its way
        // already, instead of being missed after the index (two cross-core
        // transfers one after the other). Idle, it is a hit after the first
        // round; the line changes hands only when the driver writes it.
        let slot = (self.next_avail & (self.size - 1)) as usize;
        prefetch_read(self.avail.wrapping_add(4 + 2 * slot));
        // Likewise the line of the last request's header, where a driver
        // that reuses its buffers (Linux's `virtblk_req` of a tag: at queue
        // depth 1 always the same one) writes the next header and resets
        // the status byte before it publishes the index. Without this the
        // round that finds the request misses twice in series (the index,
        // then the header it names); with it the two transfers overlap,
        // or the header's arrived in an idle round already. Idle, the line
        // is a hit once fetched; a read (not a write) prefetch leaves the
        // driver's copy shared, so the driver's next write to it costs
        // what it did without the hint.
        let hint = self.header_hint.get();
        if !hint.is_null() {
            prefetch_read(hint);
        }
        let n = self.avail_pending()?;
        self.avail_shadow = self.next_avail.wrapping_add(n);
        Ok(n)
    }

    /// Before a batch takes up to `max` chains: for those already counted
    /// available ([`avail_ready`](Self::avail_ready)), prefetches for
    /// writing the line each head descriptor's buffer starts in (a
    /// virtio-blk request header, the status byte beside it) and the used
    /// ring lines their elements will go to. The loads of the available
    /// entries and head descriptors in this loop are independent of each
    /// other, so their misses overlap; the walk then finds them cached.
    /// Only hints: an entry or descriptor the walk will refuse is skipped
    /// here (indices reduced modulo the queue size, addresses checked).
    #[inline]
    pub fn prefetch_batch(&self, max: u16) {
        let n = self.avail_shadow.wrapping_sub(self.next_avail).min(max);
        let mask = self.size - 1;
        for i in 0..n {
            let slot = (self.next_avail.wrapping_add(i) & mask) as usize;
            let head = u16::from_le(self.avail_u16(4 + 2 * slot).load(Ordering::Relaxed));
            if head < self.size {
                let d = Self::read_desc(self.desc, head as u32);
                if d.flags & VIRTQ_DESC_F_INDIRECT == 0 {
                    if let Ok(p) = self.mem.host_range(d.addr, 1) {
                        prefetch_write(p);
                        self.header_hint.set(p);
                    }
                }
            }
            let used = (self.next_used.wrapping_add(i) & mask) as usize;
            // The 8-byte element at 4 + 8 * used, inside the checked ring.
            prefetch_write(self.used.wrapping_add(4 + 8 * used));
        }
    }

    /// Takes the next head index from the available ring. Call only after
    /// [`avail_pending`](Self::avail_pending) or
    /// [`avail_ready`](Self::avail_ready) returned more than 0.
    #[inline]
    pub fn pop_head(&mut self) -> u16 {
        let slot = (self.next_avail & (self.size - 1)) as usize;
        self.next_avail = self.next_avail.wrapping_add(1);
        u16::from_le(self.avail_u16(4 + 2 * slot).load(Ordering::Relaxed))
    }

    /// Gives back the head taken by the last [`pop_head`](Self::pop_head)
    /// (the backend could not take the request yet).
    #[inline]
    pub fn unpop_head(&mut self) {
        self.next_avail = self.next_avail.wrapping_sub(1);
    }

    #[inline]
    fn read_desc(table: *const u8, idx: u32) -> Desc {
        // SAFETY: callers guarantee `idx` < the table's entry count and the
        // table (direct: checked in `new`; indirect: checked in `walk`) is
        // mapped. Read unaligned because indirect tables have no alignment rule;
        // read once into a local copy.
        let raw: [u8; 16] =
            unsafe { ptr::read_unaligned(table.add(idx as usize * 16) as *const [u8; 16]) };
        Desc {
            addr: u64::from_le_bytes(raw[0..8].try_into().expect("8 bytes")),
            len: u32::from_le_bytes(raw[8..12].try_into().expect("4 bytes")),
            flags: u16::from_le_bytes(raw[12..14].try_into().expect("2 bytes")),
            next: u16::from_le_bytes(raw[14..16].try_into().expect("2 bytes")),
        }
    }

    /// Walks the chain starting at `head` into `chain`.
    ///
    /// Buffers outside guest memory do not stop the walk: they are left out
    /// and `chain.out_of_bounds` is set, so the caller can still fail the
    /// request through its status byte. Structural errors stop the walk.
    pub fn walk(&self, head: u16, chain: &mut Chain) -> Result<(), ChainError> {
        chain.clear(head);
        if head >= self.size {
            return Err(ChainError::HeadOutOfRange(head));
        }
        let mut table = self.desc;
        let mut table_len = self.size as u32;
        let mut idx = head as u32;
        // §2.7.5.3.1 / §2.7.5.3.2: a chain is never longer than its table, so
        // a walk that visits more descriptors than that has met a loop.
        let mut ttl = table_len;
        let mut in_indirect = false;
        loop {
            if ttl == 0 {
                return Err(ChainError::Loop);
            }
            ttl -= 1;
            let d = Self::read_desc(table, idx);
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                // §2.7.5.3.1: "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT
                // flag unless the VIRTIO_F_INDIRECT_DESC feature was negotiated",
                // "MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an indirect
                // descriptor", "MUST NOT set both VIRTQ_DESC_F_INDIRECT and
                // VIRTQ_DESC_F_NEXT in flags".
                if !self.indirect {
                    return Err(ChainError::IndirectNotNegotiated);
                }
                if in_indirect {
                    return Err(ChainError::NestedIndirect);
                }
                if d.flags & VIRTQ_DESC_F_NEXT != 0 {
                    return Err(ChainError::IndirectWithNext);
                }
                let n = d.len as u64 / DESC_SIZE;
                if d.len == 0
                    || !(d.len as u64).is_multiple_of(DESC_SIZE)
                    || n > MAX_QUEUE_SIZE as u64
                {
                    return Err(ChainError::BadIndirectTable);
                }
                table = self
                    .mem
                    .host_range(d.addr, d.len as u64)
                    .map_err(|_| ChainError::BadIndirectTable)?;
                table_len = n as u32;
                ttl = table_len;
                idx = 0;
                in_indirect = true;
                continue;
            }
            chain.add_buffer(&self.mem, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE != 0)?;
            if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(());
            }
            if d.next as u32 >= table_len {
                return Err(ChainError::NextOutOfRange(d.next));
            }
            idx = d.next as u32;
        }
    }

    /// Puts a used element (§2.7.8) without publishing it; `len` is the number
    /// of bytes the device wrote into the chain.
    #[inline]
    pub fn add_used(&mut self, id: u16, len: u32) {
        let slot = (self.next_used & (self.size - 1)) as usize;
        // SAFETY: slot < size, so the 8-byte element at 4 + 8*slot is inside the
        // checked, 4-aligned used ring.
        unsafe {
            let e = self.used.add(4 + 8 * slot) as *mut u32;
            ptr::write_volatile(e, (id as u32).to_le());
            ptr::write_volatile(e.add(1), len.to_le());
        }
        self.next_used = self.next_used.wrapping_add(1);
    }

    /// Publishes the used elements added since the last call (one release
    /// store of `used.idx`) and says whether the driver wants an interrupt
    /// (§2.7.10: `VIRTQ_AVAIL_F_NO_INTERRUPT`, or with `VIRTIO_F_EVENT_IDX`
    /// §2.7.10.1: `used_event`).
    #[inline]
    pub fn publish_used(&mut self) -> bool {
        if !self.publish_store() {
            return false;
        }
        // The driver's suppression fields must be read after the used index is
        // visible, or an interrupt can be lost.
        full_fence();
        self.interrupt_needed()
    }

    /// The first half of [`publish_used`](Self::publish_used): the release
    /// store of `used.idx`. Returns whether elements were added since the
    /// driver was last considered for an interrupt; if so, call
    /// [`interrupt_needed`](Self::interrupt_needed) after a
    /// full fence ([`super::barrier::full_fence`]). A device publishing several queues stores every
    /// index first and fences once: each fence waits for the store's cache
    /// line to leave the driver's core, and the suppression field is another
    /// line the driver writes, so per-queue fences serialize two cross-core
    /// transfers per queue.
    #[inline]
    pub fn publish_store(&mut self) -> bool {
        self.used_u16(2)
            .store(self.next_used.to_le(), Ordering::Release);
        self.signalled_used != self.next_used
    }

    /// The second half of [`publish_used`](Self::publish_used), after a
    /// full fence ([`super::barrier::full_fence`]) that follows [`publish_store`](Self::publish_store):
    /// whether the driver wants an interrupt for the elements published
    /// since it was last asked.
    #[inline]
    pub fn interrupt_needed(&mut self) -> bool {
        let old = self.signalled_used;
        let new = self.next_used;
        if old == new {
            return false;
        }
        self.signalled_used = new;
        if self.event_idx {
            let off = 4 + 2 * self.size as usize;
            let event = u16::from_le(self.avail_u16(off).load(Ordering::Relaxed));
            // vring_need_event(): interrupt if `event` lies in [old, new).
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            u16::from_le(self.avail_u16(0).load(Ordering::Relaxed)) & VIRTQ_AVAIL_F_NO_INTERRUPT
                == 0
        }
    }

    /// Asks the driver to kick for the next chain it makes available, before
    /// the device sleeps (§2.7.10: clear `VIRTQ_USED_F_NO_NOTIFY`; with event
    /// index, `avail_event` = the next index the device will take, §2.7.10.1:
    /// the driver kicks when it moves the index past it). Returns true if a
    /// chain is already available (made available before the driver could
    /// see the request: do not sleep).
    #[inline]
    pub fn enable_kicks(&mut self) -> bool {
        self.used_u16(0).store(0, Ordering::Relaxed);
        self.kicks_off = false;
        if self.event_idx {
            let off = 4 + 8 * self.size as usize;
            self.used_u16(off)
                .store(self.next_avail.to_le(), Ordering::Relaxed);
        }
        // The store above must be visible before the index is read again,
        // or a chain added meanwhile gets neither a kick nor a look.
        full_fence();
        !matches!(self.avail_pending(), Ok(0))
    }

    /// Asks the driver not to kick: the device polls (§2.7.10
    /// `VIRTQ_USED_F_NO_NOTIFY`; with event index, `avail_event` is kept
    /// between a quarter and half the index space ahead of the device).
    ///
    /// Called at every publication, it stores only what changed: the flag
    /// once after [`enable_kicks`](Self::enable_kicks), `avail_event` every
    /// 0x4000 chains taken. A store per publication would move the line
    /// holding `avail_event` to this core and back to the driver, which
    /// reads it at every kick decision (a polling device pays it per
    /// request). The driver's index is at most a queue size (≤ 0x8000)
    /// ahead of `next_avail`, and `next_avail` moves at most a few batches
    /// between two calls, so it never reaches `avail_event`; a driver that
    /// rewrites these fields only makes itself kick.
    #[inline]
    pub fn suppress_kicks(&mut self) {
        let rewrite = !self.kicks_off;
        if rewrite {
            self.used_u16(0)
                .store(VIRTQ_USED_F_NO_NOTIFY.to_le(), Ordering::Relaxed);
            self.kicks_off = true;
        }
        if self.event_idx
            && (rewrite || self.next_avail.wrapping_sub(self.avail_event_base) >= 0x4000)
        {
            let off = 4 + 8 * self.size as usize;
            self.avail_event_base = self.next_avail;
            self.used_u16(off).store(
                self.next_avail.wrapping_add(0x8000).to_le(),
                Ordering::Relaxed,
            );
        }
    }
}
