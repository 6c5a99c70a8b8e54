//! The device side of one split virtqueue (VIRTIO 1.2 §2.7) over rings the
//! vhost library already mapped: chain walking with every guest address
//! checked, used entries written in a batch and published once, and the
//! used-buffer notification decision.
//!
//! The three ring areas come from `rte_vhost_get_vhost_vring` (host
//! addresses the library translated and checked to be mapped when the
//! guest set them); [`SplitRing::new`] checks their alignment. Ring
//! entries are indexed modulo the queue size, so no ring access can leave
//! them. Descriptors are copied out of guest memory once, and only the
//! copy is checked and used (no double fetch). Buffers named by
//! descriptors go through [`GuestMem`].

use std::ptr;
use std::sync::atomic::{fence, AtomicU16, Ordering};

use super::mem::GuestMem;
use super::{
    VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};

/// Most guest segments one frame may occupy (DPDK's `BUF_VECTOR_MAX` is
/// 256; a Linux guest's largest TSO frame takes under 20).
pub(crate) const MAX_SEGS: usize = 128;

/// Most chains one received frame may be spread over (mergeable buffers).
pub(crate) const MAX_CHAINS: usize = 64;

/// Used entries [`SplitRing::push_used`] queues before writing them to
/// the ring (a burst's worth: 32 frames of up to 2 chains).
pub(crate) const SHADOW: usize = 64;

/// Largest frame taken from or given to a guest, header included: a
/// 64 KiB GSO frame and its virtio-net header. Longer chains are dropped
/// (they would only exhaust the mbuf pool).
pub(crate) const MAX_FRAME: u32 = 65536 + 64;

/// One descriptor (§2.7.5), as copied out of the table.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

impl Desc {
    /// One copy of the descriptor at `p` (little-endian, §2.7.5), read as
    /// two 8-byte volatile loads whose fields stay in registers: read as
    /// a struct, it was copied to the stack, four stores per chain queued
    /// behind the burst's stores into guest memory.
    ///
    /// # Safety
    /// `p` is an 8-aligned, readable descriptor.
    #[inline(always)]
    unsafe fn read(p: *const Desc) -> Desc {
        let w = p as *const u64;
        // SAFETY: the caller's descriptor: 16 readable, 8-aligned bytes.
        let (a, b) = unsafe { (ptr::read_volatile(w), ptr::read_volatile(w.add(1))) };
        let (a, b) = (u64::from_le(a), u64::from_le(b));
        Desc {
            addr: a,
            len: b as u32,
            flags: (b >> 32) as u16,
            next: (b >> 48) as u16,
        }
    }
}

/// Why a chain was refused. The chain is returned to the guest unused and
/// counted; the ring goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainError {
    /// The head or a `next` is not below the (table) size (§2.7.5).
    BadIndex,
    /// More descriptors than the queue (or indirect table) holds: a loop
    /// (§2.7.5.3.1 / §2.7.13.3.1: chains are at most Queue Size long).
    TooLong,
    /// An address range outside guest memory.
    OutOfBounds,
    /// A device-writable buffer where a device-readable one is due, or the
    /// reverse (§2.7.5, §5.1.6.2 / §5.1.6.3).
    WrongDirection,
    /// An indirect descriptor that is not allowed: not negotiated, inside
    /// an indirect table, together with `NEXT`, or a table length that is
    /// not a multiple of 16 (§2.7.5.3.1).
    BadIndirect,
    /// The chain's total length overflows or passes [`MAX_FRAME`], or it
    /// needs more than [`MAX_SEGS`] segments.
    TooBig,
    /// Shorter than the virtio-net header (§5.1.6.2: every frame starts
    /// with one).
    TooShort,
}

/// The host segments of one or more chains.
#[derive(Debug)]
pub(crate) struct Segs {
    ptr: [*mut u8; MAX_SEGS],
    len: [u32; MAX_SEGS],
    n: usize,
}

// SAFETY: the pointers are into guest memory the vhost library keeps
// mapped while the ring that filled them lives; one thread uses them.
unsafe impl Send for Segs {}

impl Default for Segs {
    fn default() -> Self {
        Segs {
            ptr: [ptr::null_mut(); MAX_SEGS],
            len: [0; MAX_SEGS],
            n: 0,
        }
    }
}

impl Segs {
    #[inline(always)]
    fn push(&mut self, p: *mut u8, len: u32) -> Result<(), ChainError> {
        if self.n == MAX_SEGS {
            return Err(ChainError::TooBig);
        }
        self.ptr[self.n] = p;
        self.len[self.n] = len;
        self.n += 1;
        Ok(())
    }

    /// Forgets the segments.
    #[inline(always)]
    pub(crate) fn clear(&mut self) {
        self.n = 0;
    }

    /// How many segments.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Segment `i` (below [`Segs::len`]).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> (*mut u8, u32) {
        (self.ptr[i], self.len[i])
    }
}

/// Host addresses of the three ring areas and the queue size, as the vhost
/// library reports them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingAddrs {
    pub desc: *mut u8,
    pub avail: *mut u8,
    pub used: *mut u8,
    pub size: u16,
}

/// Why a ring cannot be driven here (the vhost library keeps it then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingError {
    /// Size 0, not a power of two or above 32768 (§2.7).
    BadSize,
    /// A ring area is missing or not aligned as §2.7 "Virtqueue Part
    /// Alignment" requires (descriptors 16, available 2, used 4).
    Misaligned,
}

/// Prefetches the line at `p` for reading (x86 `PREFETCHT0`). A hint:
/// never faults, whatever `p` is.
#[inline(always)]
fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads nothing into registers, writes no memory
    // and cannot fault, whatever the address; it touches neither the stack
    // nor the flags.
    unsafe {
        std::arch::asm!("prefetcht0 [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches the line at `p` for writing (x86 `PREFETCHW`). A hint:
/// never faults, whatever `p` is.
#[inline(always)]
fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW reads nothing into registers, writes no memory and
    // cannot fault, whatever the address; it touches neither the stack nor
    // the flags.
    unsafe {
        std::arch::asm!("prefetchw [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The device side of one split ring.
#[derive(Debug)]
pub(crate) struct SplitRing {
    pub(crate) mem: GuestMem,
    desc: *const Desc,
    avail: *mut u16,
    used: *mut u16,
    size: u16,
    mask: u16,
    indirect: bool,
    event_idx: bool,
    // The three ring indices below are u16 values kept in u32 fields,
    // stored and loaded 4 bytes wide: the compiler loads a u16 it only
    // needs modulo the queue size 4 bytes wide, and a load wider than the
    // pending store it reads cannot be forwarded from the store queue (it
    // waits until every older store, the frames' stores into guest memory
    // among them, has reached the cache).
    /// The next available entry to take (`last_avail_idx`).
    last_avail: u32,
    /// The next used entry to write (`last_used_idx`); published up to
    /// here after every burst (entries queued by [`SplitRing::push_used`]
    /// follow it until [`SplitRing::publish_used`]).
    last_used: u32,
    /// Used entries queued, not yet in the ring: `id | len << 32` (one
    /// word, stored and loaded whole, so the load is always forwarded).
    shadow: [u64; SHADOW],
    shadow_n: usize,
    /// `last_used` at the last notification decision.
    signalled: u32,
    signalled_valid: bool,
    /// Set when the driver broke the ring (its available index moved by
    /// more than the queue size): nothing more is taken from it.
    pub(crate) broken: bool,
    /// Chains refused (see [`ChainError`]).
    pub(crate) errors: u64,
}

// SAFETY: the pointers point into guest memory the vhost library keeps
// mapped while the device lives; one thread drives a ring at a time.
unsafe impl Send for SplitRing {}

impl SplitRing {
    /// A ring over `addrs`, taking entries from `last_avail` and writing
    /// used entries from `last_used`, with the `indirect` and `event_idx`
    /// features as negotiated.
    pub(crate) fn new(
        mem: GuestMem,
        addrs: RingAddrs,
        last_avail: u16,
        last_used: u16,
        indirect: bool,
        event_idx: bool,
    ) -> Result<SplitRing, RingError> {
        let size = addrs.size;
        if size == 0 || !size.is_power_of_two() || size > 32768 {
            return Err(RingError::BadSize);
        }
        let aligned = |p: *mut u8, a: usize| !p.is_null() && (p as usize) & (a - 1) == 0;
        if !aligned(addrs.desc, 16) || !aligned(addrs.avail, 2) || !aligned(addrs.used, 4) {
            return Err(RingError::Misaligned);
        }
        Ok(SplitRing {
            mem,
            desc: addrs.desc as *const Desc,
            avail: addrs.avail as *mut u16,
            used: addrs.used as *mut u16,
            size,
            mask: size - 1,
            indirect,
            event_idx,
            last_avail: u32::from(last_avail),
            last_used: u32::from(last_used),
            shadow: [0; SHADOW],
            shadow_n: 0,
            signalled: u32::from(last_used),
            signalled_valid: false,
            broken: false,
            errors: 0,
        })
    }

    /// The next available entry to take (`last_avail_idx`).
    #[inline(always)]
    pub(crate) fn last_avail(&self) -> u16 {
        self.last_avail as u16
    }

    /// The next used entry to write (`last_used_idx`).
    #[inline(always)]
    pub(crate) fn last_used(&self) -> u16 {
        self.last_used as u16
    }

    /// How many chains the driver made available past `last_avail` (one
    /// acquire load of `avail->idx`, §2.7.13.3: the driver publishes the
    /// ring entries before the index). An index that moved by more than
    /// the queue size breaks the ring (0 from then on).
    #[inline(always)]
    pub(crate) fn avail_count(&mut self) -> u16 {
        if self.broken {
            return 0;
        }
        // SAFETY: `avail` + 2 bytes is `avail->idx`, inside the ring area,
        // 2-aligned (checked in `new`).
        let idx = unsafe { &*(self.avail.add(1) as *const AtomicU16) }.load(Ordering::Acquire);
        let n = idx.wrapping_sub(self.last_avail());
        if n > self.size {
            self.broken = true;
            return 0;
        }
        n
    }

    /// The head of the `i`-th available chain past `last_avail`.
    #[inline(always)]
    pub(crate) fn avail_head(&self, i: u16) -> u16 {
        let slot = (self.last_avail().wrapping_add(i) & self.mask) as usize;
        // SAFETY: `avail->ring[slot]`, slot < size: inside the ring area.
        unsafe { ptr::read_volatile(self.avail.add(2 + slot)) }
    }

    /// Asks for the cache lines the next `n` available chains' first
    /// buffers will be copied through, and the used-ring lines their
    /// entries go to (for writing), before the burst walks them: the
    /// guest's core touched those lines last, and a burst's copies would
    /// otherwise wait for each, one cross-core transfer after the other,
    /// with every later store queued behind it (a full store queue).
    ///
    /// Receive (`write`): for writing, the first 64 bytes after the
    /// `skip`-byte virtio-net header, the frame's start, not the header's
    /// line: a header is written only where the guest's bytes differ
    /// (rarely), so its line can stay shared with the guest, which reads
    /// it; asked for writing it moved here and back every frame (tried: a
    /// burst's busy cycles per packet rose). Transmit: for reading, the
    /// first 128 bytes (header and a short frame). A hint only: nothing is
    /// checked beyond what translation needs, and nothing is consumed.
    /// (Asking for the next burst's lines at the end of this one, a burst
    /// ahead, was tried too: no gain measured.)
    #[inline(always)]
    pub(crate) fn prefetch_burst(&mut self, n: u16, write: bool, skip: u64) {
        for i in 0..n {
            let head = self.avail_head(i);
            if head >= self.size {
                continue;
            }
            // SAFETY: head < size: inside the descriptor table (16-aligned,
            // `new`).
            let d = unsafe { Desc::read(self.desc.add(head as usize)) };
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                continue;
            }
            let want = u64::from(d.len).min(128);
            if let Some((p, got)) = self.mem.translate_part(d.addr, want) {
                if write {
                    if got > skip {
                        // SAFETY: p + skip lies inside the translated range.
                        prefetch_write(unsafe { p.add(skip as usize) });
                    }
                } else {
                    prefetch_read(p);
                    if got > 64 {
                        // SAFETY: p + 64 lies inside the translated range.
                        prefetch_read(unsafe { p.add(64) });
                    }
                }
            }
        }
        // The used entries' lines (about one entry per chain): one entry
        // in every 8, and the last.
        let used = |j: u16| {
            let s = (self.last_used().wrapping_add(j) & self.mask) as usize;
            // SAFETY: `used->ring[s]`, s < size: inside the used ring area.
            unsafe { (self.used as *const u8).add(4 + 8 * s) }
        };
        for j in (0..n).step_by(8) {
            prefetch_write(used(j));
        }
        if n > 0 {
            // SAFETY: the entry's last byte, inside the used ring area.
            prefetch_write(unsafe { used(n - 1).add(7) });
        }
    }

    /// Walks the chain at `head`, appending its buffers' host segments to
    /// `segs`: every descriptor must be device-writable if `writable`, else
    /// device-readable. Returns the chain's total length.
    ///
    /// A chain of one direct descriptor whose buffer lies in the last
    /// region hit (every buffer of a DPDK or Linux guest's 64-byte frames)
    /// is walked inline: no call, no registers saved to the stack. Stores
    /// matter here beyond their count: each queues behind the burst's
    /// stores into guest memory, and a full store queue stops the core.
    #[inline(always)]
    pub(crate) fn walk(
        &mut self,
        head: u16,
        writable: bool,
        segs: &mut Segs,
    ) -> Result<u32, ChainError> {
        let d = self.head_desc(head).ok_or(ChainError::BadIndex)?;
        if single(&d, writable) {
            if let Some((p, got)) = self.mem.translate_part(d.addr, u64::from(d.len)) {
                if got == u64::from(d.len) {
                    segs.push(p, d.len)?;
                    return Ok(d.len);
                }
            }
        }
        self.walk_from(d, writable, segs)
    }

    /// The buffer of the chain at `head` when the chain is one direct
    /// descriptor (device-writable if `writable`, else device-readable) of
    /// 1 to [`MAX_FRAME`] bytes lying whole in the last region hit: its host
    /// address and length. `None` otherwise (the chain may still be good:
    /// [`SplitRing::walk`] it). Nothing is consumed, nothing stored: the
    /// descriptor is read once into registers and only that copy is used.
    #[inline(always)]
    pub(crate) fn one_buffer(&self, head: u16, writable: bool) -> Option<(*mut u8, u32)> {
        let d = self.head_desc(head)?;
        if single(&d, writable) {
            if let Some((p, got)) = self.mem.translate_last(d.addr, u64::from(d.len)) {
                if got == u64::from(d.len) {
                    return Some((p, d.len));
                }
            }
        }
        None
    }

    /// A copy of descriptor `head` of the table (read once: only the copy
    /// is checked and used); `None` when `head` is out of the table.
    #[inline(always)]
    fn head_desc(&self, head: u16) -> Option<Desc> {
        if head >= self.size {
            return None;
        }
        // SAFETY: head < size: inside the descriptor table (16-aligned,
        // `new`).
        Some(unsafe { Desc::read(self.desc.add(head as usize)) })
    }

    /// [`SplitRing::walk`] of a chain whose head descriptor `first` (the
    /// copy read from the ring's table) is not the one-buffer case.
    #[inline(never)]
    fn walk_from(
        &mut self,
        first: Desc,
        writable: bool,
        segs: &mut Segs,
    ) -> Result<u32, ChainError> {
        let mut table = self.desc;
        let mut table_size = u32::from(self.size);
        let mut in_indirect = false;
        // §2.7.13.3.1 / §2.7.5.3.1: a chain is at most as long as the
        // queue (or the indirect table): more is a loop. The head is one.
        let mut ttl = table_size - 1;
        let mut total = 0u32;
        let mut d = first;
        loop {
            let mut idx = u32::from(d.next);
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                // §2.7.5.3.1: the driver MUST NOT set INDIRECT without the
                // feature, nor INDIRECT and NEXT together, nor INDIRECT
                // inside an indirect table; the table is a multiple of 16
                // bytes. (The device ignores WRITE on it: §2.7.5.3.2.)
                if !self.indirect
                    || in_indirect
                    || d.flags & VIRTQ_DESC_F_NEXT != 0
                    || d.len == 0
                    || !d.len.is_multiple_of(16)
                {
                    return Err(ChainError::BadIndirect);
                }
                let p = self
                    .mem
                    .translate(d.addr, u64::from(d.len))
                    .ok_or(ChainError::OutOfBounds)?;
                if (p as usize) & (std::mem::align_of::<Desc>() - 1) != 0 {
                    return Err(ChainError::BadIndirect);
                }
                table = p as *const Desc;
                table_size = d.len / 16;
                in_indirect = true;
                ttl = table_size;
                idx = 0;
            } else {
                if (d.flags & VIRTQ_DESC_F_WRITE != 0) != writable {
                    return Err(ChainError::WrongDirection);
                }
                total = total
                    .checked_add(d.len)
                    .filter(|&t| t <= MAX_FRAME)
                    .ok_or(ChainError::TooBig)?;
                let (mut addr, mut left) = (d.addr, u64::from(d.len));
                // A buffer may straddle two adjacent regions: one segment
                // each.
                while left > 0 {
                    let (p, got) = self
                        .mem
                        .translate_part(addr, left)
                        .ok_or(ChainError::OutOfBounds)?;
                    segs.push(p, got as u32)?;
                    addr += got;
                    left -= got;
                }
                if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                    return Ok(total);
                }
            }
            if idx >= table_size {
                return Err(ChainError::BadIndex);
            }
            if ttl == 0 {
                return Err(ChainError::TooLong);
            }
            ttl -= 1;
            // SAFETY: idx < table_size: inside the descriptor table (the
            // ring's, or an indirect one translated whole and checked
            // 8-aligned above). One copy.
            d = unsafe { Desc::read(table.add(idx as usize)) };
        }
    }

    /// Consumes `n` available entries.
    #[inline(always)]
    pub(crate) fn advance(&mut self, n: u16) {
        self.last_avail = u32::from(self.last_avail().wrapping_add(n));
    }

    /// Queues the used entry (`id`, `len`) after those queued before it
    /// (written to the ring by [`SplitRing::publish_used`], or sooner when
    /// [`SHADOW`] are queued; not published).
    ///
    /// The entries are kept here, the vhost library's "shadow used ring",
    /// rather than written one per frame between the frame's copies: each
    /// write went to a line the guest had read and had to wait for it,
    /// and `last_used` was stored per frame next to `last_avail`, which
    /// the next frame's ring-slot arithmetic loads 4 bytes wide: a load
    /// spanning a narrower pending store is not forwarded and waits until
    /// every older store (those into guest memory included) has reached
    /// the cache. Per frame, that put the previous frame's cross-core
    /// transfers on the critical path (the slow mode of dpdk/README.md).
    #[inline(always)]
    pub(crate) fn push_used(&mut self, id: u16, len: u32) {
        if self.shadow_n == SHADOW {
            self.flush_used();
        }
        self.shadow[self.shadow_n] = u64::from(id) | u64::from(len) << 32;
        self.shadow_n += 1;
    }

    /// Writes the queued used entries at `last_used` onwards (not
    /// published) and moves `last_used` past them.
    #[inline(always)]
    fn flush_used(&mut self) {
        let mut slot = self.last_used();
        for &e in &self.shadow[..self.shadow_n] {
            let i = (slot & self.mask) as usize;
            // SAFETY: `used->ring[i]` (8 bytes at 4 + 8 * i), i < size:
            // inside the used ring area, 4-aligned.
            unsafe {
                let p = (self.used as *mut u8).add(4 + 8 * i) as *mut u32;
                ptr::write_volatile(p, e as u32);
                ptr::write_volatile(p.add(1), (e >> 32) as u32);
            }
            slot = slot.wrapping_add(1);
        }
        self.last_used = u32::from(slot);
        self.shadow_n = 0;
    }

    /// Publishes the used entries written so far (one release store of
    /// `used->idx`, §2.7.8: entries before the index) and tells whether the
    /// driver wants a used-buffer notification for them (§2.7.7.2, §2.7.10).
    #[inline(always)]
    pub(crate) fn publish_used(&mut self) -> bool {
        self.flush_used();
        let new = self.last_used();
        // SAFETY: `used` + 2 bytes is `used->idx`, 2-aligned, in the area.
        unsafe { &*(self.used.add(1) as *const AtomicU16) }.store(new, Ordering::Release);
        let old = self.signalled as u16;
        if new == old && self.signalled_valid {
            return false;
        }
        // The index store must be visible before the driver's suppression
        // fields are read (else both sides can miss each other).
        fence(Ordering::SeqCst);
        let notify = if self.event_idx {
            // §2.7.7.2 (VIRTIO_F_EVENT_IDX): notify when the used index
            // passed `used_event` (`avail->ring[size]`) since the last one.
            // SAFETY: `used_event` is inside the available ring area.
            let event = unsafe { ptr::read_volatile(self.avail.add(2 + self.size as usize)) };
            let need = new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old);
            need || !self.signalled_valid
        } else {
            // §2.7.7.2: without event index, notify unless the driver set
            // VIRTQ_AVAIL_F_NO_INTERRUPT.
            // SAFETY: `avail->flags`, first field of the ring area.
            let flags = unsafe { ptr::read_volatile(self.avail) };
            flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0
        };
        self.signalled = u32::from(new);
        self.signalled_valid = true;
        notify
    }
}

/// Whether descriptor `d` is a whole chain by itself of the kind the fast
/// paths take: direct, last (no `NEXT`), device-writable if `writable`
/// else device-readable (§2.7.5), 1 to [`MAX_FRAME`] bytes.
#[inline(always)]
fn single(d: &Desc, writable: bool) -> bool {
    let want = if writable { VIRTQ_DESC_F_WRITE } else { 0 };
    let mask = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE;
    d.flags & mask == want && d.len != 0 && d.len <= MAX_FRAME
}
