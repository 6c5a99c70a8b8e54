//! The device side of one packed virtqueue (VIRTIO 1.2 §2.8).
//!
//! One ring of 16-byte descriptors `{le64 addr; le32 len; le16 id; le16
//! flags}` is shared by driver and device; availability and use are told by
//! the `AVAIL`/`USED` flag bits compared with wrap counters. The descriptor
//! ring and the two event-suppression areas are checked once at start, like
//! the split ring's; each descriptor is read once (flags first, with acquire)
//! and only the copy is used.

use std::ptr;
use std::sync::atomic::{AtomicU16, Ordering};

use super::barrier::full_fence;
use super::chain::{Chain, ChainError};
use super::split::{QueueConfig, QueueError};
use super::{
    MAX_QUEUE_SIZE, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};
use crate::guest_memory::GuestMemory;

/// Descriptor flag: available, compared with the driver's wrap counter (§2.8.1).
pub const VIRTQ_DESC_F_AVAIL: u16 = 1 << 7;
/// Descriptor flag: used, compared with the device's wrap counter (§2.8.1).
pub const VIRTQ_DESC_F_USED: u16 = 1 << 15;
/// Event suppression: notifications enabled (§2.8.10).
pub const RING_EVENT_FLAGS_ENABLE: u16 = 0;
/// Event suppression: notifications disabled.
pub const RING_EVENT_FLAGS_DISABLE: u16 = 1;
/// Event suppression: notify at the descriptor named by `off_wrap`.
pub const RING_EVENT_FLAGS_DESC: u16 = 2;

#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    id: u16,
    flags: u16,
}

/// The device side of a packed virtqueue.
#[derive(Debug)]
pub struct PackedQueue {
    mem: GuestMemory,
    size: u16,
    desc: *mut u8,
    driver_evt: *const u8,
    device_evt: *mut u8,
    next_avail: u16,
    avail_wrap: bool,
    next_used: u16,
    used_wrap: bool,
    last_pop: (u16, bool),
    signalled_used: u16,
    /// The device event area says "disable" as this queue last wrote it.
    kicks_off: bool,
    event_idx: bool,
    indirect: bool,
}

// SAFETY: the raw pointers point into `mem`, owned by the queue; one thread
// uses the queue at a time (`&mut self`).
unsafe impl Send for PackedQueue {}

impl PackedQueue {
    /// Checks the areas and starts at the vhost-user ring base: bits 0-14 next
    /// available slot, bit 15 its wrap counter, bits 16-30 next used slot,
    /// bit 31 its wrap counter.
    pub fn new(
        mem: GuestMemory,
        cfg: QueueConfig,
        features: u64,
        base: u32,
    ) -> Result<Self, QueueError> {
        let size = cfg.size;
        if size == 0 || size > MAX_QUEUE_SIZE {
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
        let desc = check(cfg.desc, 16 * size as u64, 16, "descriptor")?;
        let driver_evt = check(cfg.avail, 4, 4, "driver event")?;
        let device_evt = check(cfg.used, 4, 4, "device event")?;
        let next_avail = (base & 0x7fff) as u16;
        let next_used = ((base >> 16) & 0x7fff) as u16;
        if next_avail >= size || next_used >= size {
            return Err(QueueError::AvailIndexJump {
                avail_idx: next_avail,
                next_avail: next_used,
            });
        }
        Ok(PackedQueue {
            mem,
            size,
            desc,
            driver_evt,
            device_evt,
            next_avail,
            avail_wrap: base & (1 << 15) != 0,
            next_used,
            used_wrap: base & (1 << 31) != 0,
            last_pop: (next_avail, base & (1 << 15) != 0),
            signalled_used: next_used,
            kicks_off: false,
            event_idx: features & VIRTIO_RING_F_EVENT_IDX != 0,
            indirect: features & VIRTIO_RING_F_INDIRECT_DESC != 0,
        })
    }

    /// The vhost-user ring base (`GET_VRING_BASE`), see [`new`](Self::new).
    pub fn base(&self) -> u32 {
        (self.next_avail as u32 | (self.avail_wrap as u32) << 15)
            | (self.next_used as u32 | (self.used_wrap as u32) << 15) << 16
    }

    #[inline]
    fn flags_at(&self, i: u16) -> &AtomicU16 {
        // SAFETY: i < size; the 16-byte descriptor at 16*i is inside the
        // checked, 16-aligned ring; flags are at offset 14 (2-aligned).
        unsafe { &*(self.desc.add(16 * i as usize + 14) as *const AtomicU16) }
    }

    #[inline]
    fn read_desc(table: *const u8, i: u32) -> Desc {
        // SAFETY: callers pass i below the table's entry count; the table is
        // checked and mapped. Unaligned read: indirect tables have no rule.
        let raw: [u8; 16] =
            unsafe { ptr::read_unaligned(table.add(16 * i as usize) as *const [u8; 16]) };
        Desc {
            addr: u64::from_le_bytes(raw[0..8].try_into().expect("8")),
            len: u32::from_le_bytes(raw[8..12].try_into().expect("4")),
            id: u16::from_le_bytes(raw[12..14].try_into().expect("2")),
            flags: u16::from_le_bytes(raw[14..16].try_into().expect("2")),
        }
    }

    #[inline]
    fn is_avail(&self, flags: u16) -> bool {
        // §2.8.1: available when AVAIL matches the driver wrap counter and
        // USED does not.
        ((flags & VIRTQ_DESC_F_AVAIL != 0) == self.avail_wrap)
            && ((flags & VIRTQ_DESC_F_USED != 0) != self.avail_wrap)
    }

    /// Whether the descriptor at the next available slot is available
    /// (§2.8.1), without taking it.
    #[inline]
    pub fn avail_head(&self) -> bool {
        self.is_avail(u16::from_le(
            self.flags_at(self.next_avail).load(Ordering::Acquire),
        ))
    }

    /// Takes the next available chain into `chain`; returns its buffer id,
    /// `None` if the driver has made nothing new available.
    pub fn pop(&mut self, chain: &mut Chain) -> Result<Option<u16>, ChainError> {
        let head_flags = u16::from_le(self.flags_at(self.next_avail).load(Ordering::Acquire));
        if !self.is_avail(head_flags) {
            return Ok(None);
        }
        chain.clear(0);
        let (mut pos, mut wrap) = (self.next_avail, self.avail_wrap);
        let mut count: u16 = 0;
        let id;
        loop {
            // §2.8.4: a chain never has more descriptors than the ring.
            if count == self.size {
                return Err(ChainError::Loop);
            }
            let mut d = Self::read_desc(self.desc, pos as u32);
            if count == 0 {
                d.flags = head_flags;
            }
            count += 1;
            pos += 1;
            if pos == self.size {
                pos = 0;
                wrap = !wrap;
            }
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                // §2.8.7: INDIRECT needs the feature, never with NEXT; the
                // table holds packed descriptors, NEXT unused, no nesting.
                if !self.indirect {
                    return Err(ChainError::IndirectNotNegotiated);
                }
                if d.flags & VIRTQ_DESC_F_NEXT != 0 {
                    return Err(ChainError::IndirectWithNext);
                }
                let n = d.len / 16;
                if d.len == 0 || !d.len.is_multiple_of(16) || n > MAX_QUEUE_SIZE as u32 {
                    return Err(ChainError::BadIndirectTable);
                }
                let table = self
                    .mem
                    .host_range(d.addr, d.len as u64)
                    .map_err(|_| ChainError::BadIndirectTable)?;
                for i in 0..n {
                    let e = Self::read_desc(table, i);
                    if e.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                        return Err(ChainError::NestedIndirect);
                    }
                    chain.add_buffer(
                        &self.mem,
                        e.addr,
                        e.len,
                        e.flags & VIRTQ_DESC_F_WRITE != 0,
                    )?;
                }
                id = d.id;
                break;
            }
            chain.add_buffer(&self.mem, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE != 0)?;
            if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                // §2.8.6: the buffer id is in the last descriptor.
                id = d.id;
                break;
            }
        }
        if id >= self.size {
            return Err(ChainError::HeadOutOfRange(id));
        }
        chain.head = id;
        chain.ring_descs = count;
        self.last_pop = (self.next_avail, self.avail_wrap);
        self.next_avail = pos;
        self.avail_wrap = wrap;
        Ok(Some(id))
    }

    /// Gives back the chain taken by the last [`pop`](Self::pop).
    pub fn unpop(&mut self) {
        (self.next_avail, self.avail_wrap) = self.last_pop;
    }

    /// Writes a used descriptor (§2.8.5) for buffer `id` that occupied
    /// `ring_descs` slots; `len` bytes were written.
    #[inline]
    pub fn add_used(&mut self, id: u16, len: u32, ring_descs: u16) {
        let at = 16 * self.next_used as usize;
        let flags = if self.used_wrap {
            VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED
        } else {
            0
        };
        // SAFETY: next_used < size, so the descriptor is inside the checked ring.
        unsafe {
            ptr::write_volatile(self.desc.add(at + 8) as *mut u32, len.to_le());
            ptr::write_volatile(self.desc.add(at + 12) as *mut u16, id.to_le());
        }
        // The flags make the element visible: release after id and len.
        self.flags_at(self.next_used)
            .store(flags.to_le(), Ordering::Release);
        let next = self.next_used as u32 + ring_descs.max(1) as u32;
        if next >= self.size as u32 {
            self.next_used = (next - self.size as u32) as u16;
            self.used_wrap = !self.used_wrap;
        } else {
            self.next_used = next as u16;
        }
    }

    /// Says whether the driver wants an interrupt for the used descriptors
    /// written since the last call (§2.8.10, driver event suppression).
    #[inline]
    pub fn publish_used(&mut self) -> bool {
        if !self.publish_store() {
            return false;
        }
        full_fence();
        self.interrupt_needed()
    }

    /// The first half of [`publish_used`](Self::publish_used) (the used
    /// descriptors' flags were stored by `add_used`): whether elements were
    /// added since the driver was last considered for an interrupt; if so,
    /// call [`interrupt_needed`](Self::interrupt_needed) after a
    /// full fence ([`super::barrier::full_fence`]).
    #[inline]
    pub fn publish_store(&mut self) -> bool {
        self.signalled_used != self.next_used
    }

    /// The second half of [`publish_used`](Self::publish_used), after a
    /// full fence ([`super::barrier::full_fence`]): whether the driver wants an interrupt (§2.8.10).
    #[inline]
    pub fn interrupt_needed(&mut self) -> bool {
        let old = self.signalled_used;
        let new = self.next_used;
        if old == new {
            return false;
        }
        self.signalled_used = new;
        // SAFETY: the driver event area (4 bytes, 4-aligned) was checked in new.
        let (off_wrap, flags) = unsafe {
            let p = self.driver_evt as *const AtomicU16;
            (
                u16::from_le((*p).load(Ordering::Relaxed)),
                u16::from_le((*p.add(1)).load(Ordering::Relaxed)),
            )
        };
        match flags {
            RING_EVENT_FLAGS_DISABLE => false,
            RING_EVENT_FLAGS_DESC if self.event_idx => {
                let mut off = off_wrap & 0x7fff;
                if (off_wrap >> 15 != 0) != self.used_wrap {
                    off = off.wrapping_sub(self.size);
                }
                new.wrapping_sub(off).wrapping_sub(1) < new.wrapping_sub(old)
            }
            _ => true,
        }
    }

    /// Asks the driver to kick again (device event suppression = enable,
    /// §2.8.10), before the device sleeps. Returns true if a chain is
    /// already available (do not sleep).
    #[inline]
    pub fn enable_kicks(&mut self) -> bool {
        self.kicks_off = false;
        // SAFETY: the device event area (4 bytes, 4-aligned) was checked in new.
        unsafe {
            (*(self.device_evt.add(2) as *const AtomicU16))
                .store(RING_EVENT_FLAGS_ENABLE.to_le(), Ordering::Relaxed)
        };
        full_fence();
        let flags = u16::from_le(self.flags_at(self.next_avail).load(Ordering::Acquire));
        self.is_avail(flags)
    }

    /// Asks the driver for no kicks (device event suppression = disable).
    /// Stores only after [`enable_kicks`](Self::enable_kicks) (or at the
    /// start): called at every publication, a store each time would move
    /// the line to this core and back for the driver's next kick decision.
    #[inline]
    pub fn suppress_kicks(&mut self) {
        if self.kicks_off {
            return;
        }
        self.kicks_off = true;
        // SAFETY: the device event area (4 bytes, 4-aligned) was checked in new.
        unsafe {
            (*(self.device_evt.add(2) as *const AtomicU16))
                .store(RING_EVENT_FLAGS_DISABLE.to_le(), Ordering::Relaxed)
        };
    }
}
