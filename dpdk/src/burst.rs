//! A fixed-size batch of owned mbufs: what rx bursts fill and tx bursts drain.

use std::mem::MaybeUninit;

use crate::mbuf::Mbuf;

/// Packets per burst, as in DPDK's own examples and OVS.
pub const BURST_SIZE: usize = 32;

/// Up to [`BURST_SIZE`] owned mbufs in a fixed array: no heap allocation.
/// Whatever the burst holds when dropped is freed in bulk.
pub struct Burst {
    slots: [MaybeUninit<Mbuf>; BURST_SIZE],
    len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst.
    #[inline]
    pub fn new() -> Burst {
        Burst {
            slots: [const { MaybeUninit::uninit() }; BURST_SIZE],
            len: 0,
        }
    }

    /// Number of mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free slots.
    #[inline(always)]
    pub fn room(&self) -> usize {
        BURST_SIZE - self.len
    }

    /// Adds an mbuf; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside 0..len, so it
        // is read exactly once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// The mbufs held.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots 0..len are initialised; MaybeUninit<Mbuf> has Mbuf's
        // layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Mbuf, self.len) }
    }

    /// The mbufs held, mutably.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `as_slice`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Frees every mbuf held (one bulk call).
    #[inline]
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let n = self.len;
        self.len = 0;
        // SAFETY: slots 0..n hold owned mbufs (Mbuf is a transparent non-null
        // pointer), which free_bulk frees; len is already 0 so none is freed
        // twice.
        unsafe {
            dpdk_sys::shim_rte_pktmbuf_free_bulk(
                self.slots.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf,
                n as u32,
            )
        }
    }

    /// Pointer to the first free slot, for rx bursts and ring dequeues.
    #[inline(always)]
    pub(crate) fn spare_ptr(&mut self) -> *mut *mut dpdk_sys::rte_mbuf {
        // SAFETY: len <= BURST_SIZE, so the offset stays inside the array.
        unsafe { (self.slots.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf).add(self.len) }
    }

    /// Marks `n` more slots as filled by DPDK.
    ///
    /// # Safety
    /// The `n` slots after the current length must now hold owned mbufs.
    #[inline(always)]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_SIZE);
        self.len += n;
    }

    /// Pointer to the first mbuf, for tx bursts and ring enqueues.
    #[inline(always)]
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut dpdk_sys::rte_mbuf {
        self.slots.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf
    }

    /// Forgets the first `n` mbufs (DPDK took them) and moves the rest to the
    /// front.
    ///
    /// # Safety
    /// The first `n` mbufs must have been handed over to DPDK.
    #[inline(always)]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            // SAFETY: both ranges lie within the array; `copy` handles overlap.
            std::ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest);
        }
        self.len = rest;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}
