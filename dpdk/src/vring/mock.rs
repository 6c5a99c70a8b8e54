//! A guest driver for tests: a split virtqueue and its buffers laid out in
//! a heap block that plays guest memory (guest-physical [`BASE`] on), with
//! descriptors, available entries and used-ring reads done the way a virtio
//! driver does them (VIRTIO 1.2 §2.7.13), well-behaved or malicious.

use std::sync::atomic::{AtomicU16, Ordering};

use super::mem::{GuestMem, Region};
use super::split::{RingAddrs, SplitRing};
use super::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

/// Guest-physical address of the block's first byte.
pub(crate) const BASE: u64 = 0x10_0000;
/// Bytes of guest memory.
pub(crate) const MEM: usize = 1 << 20;
/// Where buffers start (after the rings of a queue of up to 1024 entries).
pub(crate) const DATA: u64 = BASE + 0x8000;

/// One buffer of a chain: guest address, length, device-writable.
pub(crate) type Buf = (u64, u32, bool);

/// The driver side of one queue.
pub(crate) struct MockDriver {
    mem: Vec<u64>,
    pub size: u16,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl MockDriver {
    pub(crate) fn new(size: u16) -> Self {
        MockDriver {
            mem: vec![0u64; MEM / 8],
            size,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        }
    }

    fn host(&self, gpa: u64) -> *mut u8 {
        assert!(gpa >= BASE && gpa < BASE + MEM as u64);
        // Only tests write through it, one thread, while no reference is out.
        (self.mem.as_ptr() as *mut u8).wrapping_add((gpa - BASE) as usize)
    }

    fn desc_gpa(&self) -> u64 {
        BASE
    }
    fn avail_gpa(&self) -> u64 {
        BASE + 16 * self.size as u64
    }
    fn used_gpa(&self) -> u64 {
        (self.avail_gpa() + 6 + 2 * self.size as u64).div_ceil(4) * 4
    }

    pub(crate) fn write(&mut self, gpa: u64, data: &[u8]) {
        let p = self.host(gpa);
        // SAFETY: inside the block (checked at both ends).
        let _ = self.host(gpa + data.len() as u64 - 1);
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    }

    pub(crate) fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let _ = self.host(gpa + len as u64 - 1);
        // SAFETY: inside the block.
        unsafe { std::slice::from_raw_parts(self.host(gpa), len).to_vec() }
    }

    fn w16(&mut self, gpa: u64, v: u16) {
        self.write(gpa, &v.to_le_bytes());
    }

    fn r16(&self, gpa: u64) -> u16 {
        u16::from_le_bytes(self.read(gpa, 2).try_into().unwrap())
    }

    /// Writes descriptor `i` of the ring's table.
    pub(crate) fn set_desc(&mut self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.write_desc_at(self.desc_gpa() + 16 * i as u64, addr, len, flags, next);
    }

    /// Writes a descriptor anywhere (an indirect table).
    pub(crate) fn write_desc_at(&mut self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.write(at, &d);
    }

    /// Places `bufs` as one chain in free descriptors; returns its head.
    pub(crate) fn add_chain(&mut self, bufs: &[Buf]) -> u16 {
        let head = self.next_desc;
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let i = self.next_desc;
            self.next_desc = (self.next_desc + 1) % self.size;
            let more = k + 1 < bufs.len();
            let flags =
                if w { VIRTQ_DESC_F_WRITE } else { 0 } | if more { VIRTQ_DESC_F_NEXT } else { 0 };
            self.set_desc(i, addr, len, flags, self.next_desc);
        }
        head
    }

    /// Places `bufs` in an indirect table at `table`, named by one ring
    /// descriptor; returns its head.
    pub(crate) fn add_indirect(&mut self, table: u64, bufs: &[Buf]) -> u16 {
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let more = k + 1 < bufs.len();
            let flags =
                if w { VIRTQ_DESC_F_WRITE } else { 0 } | if more { VIRTQ_DESC_F_NEXT } else { 0 };
            self.write_desc_at(table + 16 * k as u64, addr, len, flags, k as u16 + 1);
        }
        let head = self.next_desc;
        self.next_desc = (self.next_desc + 1) % self.size;
        self.set_desc(
            head,
            table,
            16 * bufs.len() as u32,
            VIRTQ_DESC_F_INDIRECT,
            0,
        );
        head
    }

    /// Makes `head` available and publishes the index (§2.7.13.2-3).
    pub(crate) fn publish(&mut self, head: u16) {
        let slot = self.avail_idx % self.size;
        self.w16(self.avail_gpa() + 4 + 2 * slot as u64, head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.set_avail_idx(self.avail_idx);
    }

    /// Writes `avail->idx` (a malicious driver's jump included).
    pub(crate) fn set_avail_idx(&mut self, idx: u16) {
        let p = self.host(self.avail_gpa() + 2) as *const AtomicU16;
        // SAFETY: 2-aligned, inside the block.
        unsafe { &*p }.store(idx, Ordering::Release);
    }

    /// Starts the driver's indices at `idx` (a ring resumed after a wrap).
    pub(crate) fn start_at(&mut self, idx: u16) {
        self.avail_idx = idx;
        self.used_seen = idx;
        self.set_avail_idx(idx);
        let u = self.used_gpa() + 2;
        self.w16(u, idx);
    }

    pub(crate) fn set_avail_flags(&mut self, f: u16) {
        self.w16(self.avail_gpa(), f);
    }

    pub(crate) fn set_used_event(&mut self, v: u16) {
        let at = self.avail_gpa() + 4 + 2 * self.size as u64;
        self.w16(at, v);
    }

    pub(crate) fn used_idx(&self) -> u16 {
        self.r16(self.used_gpa() + 2)
    }

    /// The next used entry the driver has not seen (id, len).
    pub(crate) fn pop_used(&mut self) -> Option<(u16, u32)> {
        if self.used_seen == self.used_idx() {
            return None;
        }
        let at = self.used_gpa() + 4 + 8 * (self.used_seen % self.size) as u64;
        let e = self.read(at, 8);
        self.used_seen = self.used_seen.wrapping_add(1);
        Some((
            u32::from_le_bytes(e[0..4].try_into().unwrap()) as u16,
            u32::from_le_bytes(e[4..8].try_into().unwrap()),
        ))
    }

    /// The device side over this memory, from the driver's indices.
    pub(crate) fn ring(&self, indirect: bool, event_idx: bool) -> SplitRing {
        let mem = GuestMem::new(&[Region {
            gpa: BASE,
            size: MEM as u64,
            host: self.host(BASE) as u64,
        }]);
        let addrs = RingAddrs {
            desc: self.host(self.desc_gpa()),
            avail: self.host(self.avail_gpa()),
            used: self.host(self.used_gpa()),
            size: self.size,
        };
        SplitRing::new(
            mem,
            addrs,
            self.avail_idx,
            self.used_seen,
            indirect,
            event_idx,
        )
        .unwrap()
    }
}
