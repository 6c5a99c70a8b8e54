//! Guest-driver simulator: lays out a split virtqueue in guest memory and
//! places descriptors, available entries and reads used entries the way a
//! virtio driver does (VIRTIO 1.2 §2.7.13). Tests use it to act as well-behaved
//! and as malicious guests; the benchmark uses it as the driver of a
//! vhost-user front end.

use std::cell::Cell;
use std::sync::atomic::{AtomicU16, Ordering};

use super::split::{avail_ring_len, used_ring_len, QueueConfig};
use super::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use crate::guest_memory::GuestMemory;

/// One buffer of a chain: guest address, length, device-writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable (`VIRTQ_DESC_F_WRITE`).
    pub write: bool,
}

impl Buf {
    /// A device-readable buffer.
    pub fn r(addr: u64, len: u32) -> Self {
        Buf {
            addr,
            len,
            write: false,
        }
    }
    /// A device-writable buffer.
    pub fn w(addr: u64, len: u32) -> Self {
        Buf {
            addr,
            len,
            write: true,
        }
    }
}

/// The driver side of one split virtqueue in guest memory.
#[derive(Debug)]
pub struct MockQueue {
    mem: GuestMemory,
    cfg: QueueConfig,
    avail_ptr: *mut u8,
    used_ptr: *mut u8,
    next_desc: u16,
    avail_idx: u16,
    published: u16,
    used_seen: u16,
    event_idx: bool,
    /// What [`MockQueue::suppress_interrupts`] last wrote and the driver
    /// has not changed since: `used_seen` at the `used_event` write (event
    /// index), or any value once `VIRTQ_AVAIL_F_NO_INTERRUPT` is set.
    irq_off: Cell<Option<u16>>,
}

// SAFETY: the pointers point into `mem`, owned by the queue.
unsafe impl Send for MockQueue {}

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

impl MockQueue {
    /// Bytes a queue of `size` entries occupies from its base address.
    pub fn footprint(size: u16) -> u64 {
        let avail = 16 * size as u64;
        let used = align(avail + avail_ring_len(size), 4);
        align(used + used_ring_len(size), 16)
    }

    /// Lays out a zeroed queue of `size` entries at `base` (16-aligned).
    pub fn new(mem: &GuestMemory, base: u64, size: u16) -> Self {
        let desc = base;
        let avail = base + 16 * size as u64;
        let used = align(avail + avail_ring_len(size), 4);
        mem.write(base, &vec![0u8; Self::footprint(size) as usize])
            .expect("queue inside guest memory");
        let avail_ptr = mem
            .host_range(avail, avail_ring_len(size))
            .expect("avail ring mapped");
        let used_ptr = mem
            .host_range(used, used_ring_len(size))
            .expect("used ring mapped");
        MockQueue {
            mem: mem.clone(),
            cfg: QueueConfig {
                size,
                desc,
                avail,
                used,
            },
            avail_ptr,
            used_ptr,
            next_desc: 0,
            avail_idx: 0,
            published: 0,
            used_seen: 0,
            event_idx: false,
            irq_off: Cell::new(None),
        }
    }

    /// Where the queue lives, as the device must be told.
    pub fn config(&self) -> QueueConfig {
        self.cfg
    }

    /// The guest memory.
    pub fn memory(&self) -> &GuestMemory {
        &self.mem
    }

    fn a16(&self, off: usize) -> &AtomicU16 {
        // SAFETY: off < avail_ring_len, area mapped and 2-aligned (set up in new).
        unsafe { &*(self.avail_ptr.add(off) as *const AtomicU16) }
    }

    fn u16_used(&self, off: usize) -> &AtomicU16 {
        // SAFETY: off < used_ring_len, area mapped and 4-aligned.
        unsafe { &*(self.used_ptr.add(off) as *const AtomicU16) }
    }

    /// Writes descriptor `idx` of the direct table (any values: tests use it
    /// to build malformed chains).
    pub fn write_desc(&self, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        write_desc_at(
            &self.mem,
            self.cfg.desc + 16 * idx as u64,
            addr,
            len,
            flags,
            next,
        );
    }

    fn alloc(&mut self) -> u16 {
        let d = self.next_desc;
        self.next_desc = (self.next_desc + 1) & (self.cfg.size - 1);
        d
    }

    /// Places a chain of direct descriptors and returns its head (not yet
    /// made available). Descriptors are taken round-robin from the table.
    pub fn add_chain(&mut self, bufs: &[Buf]) -> u16 {
        assert!(!bufs.is_empty() && bufs.len() <= self.cfg.size as usize);
        let ids: Vec<u16> = (0..bufs.len()).map(|_| self.alloc()).collect();
        for (i, b) in bufs.iter().enumerate() {
            let mut flags = if b.write { VIRTQ_DESC_F_WRITE } else { 0 };
            let next = if i + 1 < bufs.len() {
                flags |= VIRTQ_DESC_F_NEXT;
                ids[i + 1]
            } else {
                0
            };
            self.write_desc(ids[i], b.addr, b.len, flags, next);
        }
        ids[0]
    }

    /// Writes an indirect table at `table` (guest address, 16 bytes per
    /// buffer) and one direct descriptor pointing at it; returns the head.
    pub fn add_indirect_chain(&mut self, table: u64, bufs: &[Buf]) -> u16 {
        for (i, b) in bufs.iter().enumerate() {
            let mut flags = if b.write { VIRTQ_DESC_F_WRITE } else { 0 };
            let next = if i + 1 < bufs.len() {
                flags |= VIRTQ_DESC_F_NEXT;
                (i + 1) as u16
            } else {
                0
            };
            write_desc_at(&self.mem, table + 16 * i as u64, b.addr, b.len, flags, next);
        }
        let head = self.alloc();
        self.write_desc(
            head,
            table,
            16 * bufs.len() as u32,
            VIRTQ_DESC_F_INDIRECT,
            0,
        );
        head
    }

    /// Puts `head` in the next available-ring slot (not yet published).
    pub fn push_avail(&mut self, head: u16) {
        let slot = (self.avail_idx & (self.cfg.size - 1)) as usize;
        self.a16(4 + 2 * slot)
            .store(head.to_le(), Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
    }

    /// Publishes the available entries (release store of `avail.idx`).
    pub fn publish(&mut self) {
        self.a16(2).store(self.avail_idx.to_le(), Ordering::Release);
    }

    /// Tells the simulator whether `VIRTIO_F_EVENT_IDX` was negotiated (it
    /// changes how kicks and interrupts are suppressed).
    pub fn set_event_idx(&mut self, on: bool) {
        self.event_idx = on;
        self.irq_off.set(None);
    }

    /// Publishes and says whether the device wants a kick for the entries
    /// published since the last call (§2.7.10: `VIRTQ_USED_F_NO_NOTIFY`, or
    /// with event index `avail_event`).
    pub fn publish_needs_kick(&mut self) -> bool {
        let old = self.published;
        let new = self.avail_idx;
        self.published = new;
        self.a16(2).store(new.to_le(), Ordering::Release);
        if old == new {
            return false;
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.event_idx {
            let event = u16::from_le(
                self.u16_used(4 + 8 * self.cfg.size as usize)
                    .load(Ordering::Relaxed),
            );
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            self.used_flags() & super::VIRTQ_USED_F_NO_NOTIFY == 0
        }
    }

    /// A polling driver: asks the device not to interrupt (keeps
    /// `used_event` half the index space ahead, or sets
    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`). As Linux's `virtqueue_disable_cb`
    /// (which keeps a shadow of the flags), it writes only when that
    /// changes something: the flag once, `used_event` again only when the
    /// used index it saw moved a quarter of the index space past the last
    /// write. A write per completion batch would move the line holding
    /// `used_event` to the driver's core and back to the device's, which
    /// reads it at each interrupt decision (§2.7.10.1): a cross-core
    /// transfer per request on both sides that a real driver does not cause.
    pub fn suppress_interrupts(&self) {
        if self.event_idx {
            // The device's used index runs at most a queue size ahead of
            // `used_seen`, so from a write at `base` it reaches `base +
            // 0x8000` only after `used_seen` moved `0x8000 - size`: rewrite
            // at half of that.
            let slack = (0x8000 - self.cfg.size as u32) / 2;
            let stale = self
                .irq_off
                .get()
                .is_none_or(|base| self.used_seen.wrapping_sub(base) as u32 >= slack);
            if stale {
                self.set_used_event(self.used_seen.wrapping_add(0x8000));
                self.irq_off.set(Some(self.used_seen));
            }
        } else if self.irq_off.get().is_none() {
            self.set_avail_flags(super::VIRTQ_AVAIL_F_NO_INTERRUPT);
            self.irq_off.set(Some(0));
        }
    }

    /// Writes an arbitrary available index (malicious-guest tests).
    pub fn force_avail_idx(&mut self, idx: u16) {
        self.avail_idx = idx;
        self.publish();
    }

    /// Writes an arbitrary used index (malicious-guest tests: the device must
    /// ignore it and keep its own count).
    pub fn scribble_used_idx(&self, idx: u16) {
        self.u16_used(2).store(idx.to_le(), Ordering::Relaxed);
    }

    /// `used_event` (§2.7.10.1): interrupt when the used index passes it.
    pub fn set_used_event(&self, v: u16) {
        self.irq_off.set(None);
        self.a16(4 + 2 * self.cfg.size as usize)
            .store(v.to_le(), Ordering::Relaxed);
    }

    /// Available-ring flags.
    pub fn set_avail_flags(&self, v: u16) {
        self.irq_off.set(None);
        self.a16(0).store(v.to_le(), Ordering::Relaxed);
    }

    /// Used-ring flags as the device left them.
    pub fn used_flags(&self) -> u16 {
        u16::from_le(self.u16_used(0).load(Ordering::Relaxed))
    }

    /// The device's published used index.
    pub fn used_idx(&self) -> u16 {
        u16::from_le(self.u16_used(2).load(Ordering::Acquire))
    }

    /// Takes the next used element, if the device published one: `(id, len)`.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        if self.used_idx() == self.used_seen {
            return None;
        }
        let slot = (self.used_seen & (self.cfg.size - 1)) as usize;
        // SAFETY: slot < size; the element is inside the checked used ring.
        let (id, len) = unsafe {
            let e = self.used_ptr.add(4 + 8 * slot) as *const u32;
            (
                u32::from_le(std::ptr::read_volatile(e)),
                u32::from_le(std::ptr::read_volatile(e.add(1))),
            )
        };
        self.used_seen = self.used_seen.wrapping_add(1);
        Some((id as u16, len))
    }
}

/// Writes one descriptor at guest address `at`.
pub fn write_desc_at(mem: &GuestMemory, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
    let mut raw = [0u8; 16];
    raw[0..8].copy_from_slice(&addr.to_le_bytes());
    raw[8..12].copy_from_slice(&len.to_le_bytes());
    raw[12..14].copy_from_slice(&flags.to_le_bytes());
    raw[14..16].copy_from_slice(&next.to_le_bytes());
    mem.write(at, &raw).expect("descriptor inside guest memory");
}

/// The driver side of one packed virtqueue (§2.8.21): descriptors in one
/// ring, published by flipping the head's `AVAIL`/`USED` bits last.
#[derive(Debug)]
pub struct MockPackedQueue {
    mem: GuestMemory,
    cfg: QueueConfig,
    next_avail: u16,
    avail_wrap: bool,
    next_used: u16,
    used_wrap: bool,
    /// Ring slots each buffer id occupies (to skip them when used).
    descs_of: Vec<u16>,
}

impl MockPackedQueue {
    /// Bytes the queue occupies from its base: the ring and two 4-byte
    /// event-suppression areas.
    pub fn footprint(size: u16) -> u64 {
        16 * size as u64 + 16
    }

    /// Lays out a zeroed packed queue of `size` entries at `base`.
    pub fn new(mem: &GuestMemory, base: u64, size: u16) -> Self {
        mem.write(base, &vec![0u8; Self::footprint(size) as usize])
            .expect("queue inside guest memory");
        let desc = base;
        let avail = base + 16 * size as u64;
        MockPackedQueue {
            mem: mem.clone(),
            cfg: QueueConfig {
                size,
                desc,
                avail,
                used: avail + 8,
            },
            next_avail: 0,
            avail_wrap: true,
            next_used: 0,
            used_wrap: true,
            descs_of: vec![1; size as usize],
        }
    }

    /// Where the queue lives (`avail` = driver area, `used` = device area).
    pub fn config(&self) -> QueueConfig {
        self.cfg
    }

    /// The vhost-user ring base for a fresh queue (both wrap counters 1).
    pub fn initial_base() -> u32 {
        1 << 15 | 1 << 31
    }

    fn avail_flags(&self, wrap: bool) -> u16 {
        if wrap {
            super::packed::VIRTQ_DESC_F_AVAIL
        } else {
            super::packed::VIRTQ_DESC_F_USED
        }
    }

    /// Writes raw descriptor `i` (malicious tests).
    pub fn write_raw(&self, i: u16, addr: u64, len: u32, id: u16, flags: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&id.to_le_bytes());
        raw[14..16].copy_from_slice(&flags.to_le_bytes());
        self.mem
            .write(self.cfg.desc + 16 * i as u64, &raw)
            .expect("ring in guest memory");
    }

    /// The flags that mark a descriptor available in the current lap, plus
    /// `extra` bits (NEXT, WRITE, INDIRECT).
    pub fn avail_bits(&self, extra: u16) -> u16 {
        self.avail_flags(self.avail_wrap) | extra
    }

    /// Places and publishes a chain with buffer id `id`.
    pub fn add_chain(&mut self, bufs: &[Buf], id: u16) {
        let head = self.next_avail;
        let mut head_flags = 0;
        for (i, b) in bufs.iter().enumerate() {
            let mut f =
                self.avail_flags(self.avail_wrap) | if b.write { VIRTQ_DESC_F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                f |= VIRTQ_DESC_F_NEXT;
            }
            if i == 0 {
                // Published last, below.
                self.write_raw(self.next_avail, b.addr, b.len, id, 0);
                head_flags = f;
            } else {
                self.write_raw(self.next_avail, b.addr, b.len, id, f);
            }
            self.next_avail += 1;
            if self.next_avail == self.cfg.size {
                self.next_avail = 0;
                self.avail_wrap = !self.avail_wrap;
            }
        }
        self.descs_of[id as usize] = bufs.len() as u16;
        self.publish_flags(head, head_flags);
    }

    /// Places an indirect table (packed descriptors) at `table` and one ring
    /// descriptor pointing at it, with buffer id `id`.
    pub fn add_indirect_chain(&mut self, table: u64, bufs: &[Buf], id: u16) {
        for (i, b) in bufs.iter().enumerate() {
            let mut raw = [0u8; 16];
            raw[0..8].copy_from_slice(&b.addr.to_le_bytes());
            raw[8..12].copy_from_slice(&b.len.to_le_bytes());
            let f = if b.write { VIRTQ_DESC_F_WRITE } else { 0 };
            raw[14..16].copy_from_slice(&f.to_le_bytes());
            self.mem
                .write(table + 16 * i as u64, &raw)
                .expect("table in guest memory");
        }
        let head = self.next_avail;
        let flags = self.avail_flags(self.avail_wrap) | VIRTQ_DESC_F_INDIRECT;
        self.write_raw(head, table, 16 * bufs.len() as u32, id, 0);
        self.next_avail += 1;
        if self.next_avail == self.cfg.size {
            self.next_avail = 0;
            self.avail_wrap = !self.avail_wrap;
        }
        self.descs_of[id as usize] = 1;
        self.publish_flags(head, flags);
    }

    fn publish_flags(&self, i: u16, flags: u16) {
        let p = self
            .mem
            .host_range(self.cfg.desc + 16 * i as u64 + 14, 2)
            .expect("ring mapped");
        // SAFETY: 2-aligned (ring 16-aligned, offset 14) and mapped.
        unsafe { (*(p as *const AtomicU16)).store(flags.to_le(), Ordering::Release) };
    }

    /// Driver event suppression (§2.8.10): `flags` 0 enable, 1 disable, 2 desc.
    pub fn set_driver_event(&self, off_wrap: u16, flags: u16) {
        let mut b = [0u8; 4];
        b[0..2].copy_from_slice(&off_wrap.to_le_bytes());
        b[2..4].copy_from_slice(&flags.to_le_bytes());
        self.mem.write(self.cfg.avail, &b).expect("driver area");
    }

    /// Device event flags as the device left them.
    pub fn device_event_flags(&self) -> u16 {
        let mut b = [0u8; 2];
        self.mem
            .read(self.cfg.used + 2, &mut b)
            .expect("device area");
        u16::from_le_bytes(b)
    }

    /// Takes the next used descriptor: `(id, len)`.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        let mut raw = [0u8; 16];
        self.mem
            .read(self.cfg.desc + 16 * self.next_used as u64, &mut raw)
            .expect("ring");
        let flags = u16::from_le_bytes([raw[14], raw[15]]);
        let avail = flags & super::packed::VIRTQ_DESC_F_AVAIL != 0;
        let used = flags & super::packed::VIRTQ_DESC_F_USED != 0;
        if avail != self.used_wrap || used != self.used_wrap {
            return None;
        }
        let id = u16::from_le_bytes([raw[12], raw[13]]);
        let len = u32::from_le_bytes(raw[8..12].try_into().expect("4"));
        let n = self.descs_of.get(id as usize).copied().unwrap_or(1);
        self.next_used += n;
        if self.next_used >= self.cfg.size {
            self.next_used -= self.cfg.size;
            self.used_wrap = !self.used_wrap;
        }
        Some((id, len))
    }
}
