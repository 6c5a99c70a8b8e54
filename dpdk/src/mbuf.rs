//! An owned packet buffer.

use std::ptr::NonNull;

/// One segment of an mbuf chain: its data (`data_len` bytes at
/// `buf_addr + data_off`) and the next segment (NULL at the end).
///
/// # Safety
/// `seg` is a segment of a valid mbuf chain that stays alive, unchanged,
/// for `'a`.
#[inline(always)]
pub(crate) unsafe fn segment<'a>(
    seg: *const dpdk_sys::rte_mbuf,
) -> (&'a [u8], *const dpdk_sys::rte_mbuf) {
    // SAFETY: the caller's promise: a valid segment, whose data lies at
    // buf_addr + data_off for data_len bytes, and whose `next` DPDK keeps
    // valid or NULL.
    unsafe {
        let s = &*seg;
        (
            std::slice::from_raw_parts(
                (s.buf_addr as *const u8).add(s.data_off as usize),
                s.data_len as usize,
            ),
            s.next as *const dpdk_sys::rte_mbuf,
        )
    }
}

/// Bit offset of `tso_segsz` in the mbuf's `tx_offload` word.
const TSO_SEGSZ_SHIFT: u32 = 24;

/// An owned `rte_mbuf`; dropping it returns it to its pool.
///
/// The accessors look at the first segment only: the switch receives into
/// single-segment mbufs (the data room is larger than the MTU).
#[repr(transparent)]
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an Mbuf is uniquely owned; handing it to another thread (for
// example through a ring) is how DPDK pipelines work.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` must point to a valid mbuf that nobody else will free or use.
    #[inline(always)]
    pub unsafe fn from_raw(m: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    /// Gives up ownership without freeing.
    #[inline(always)]
    pub fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    /// The raw pointer (ownership stays here).
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline(always)]
    fn raw(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.0.as_ref() }
    }

    /// Length of the first segment's data.
    #[inline(always)]
    pub fn data_len(&self) -> usize {
        self.raw().data_len as usize
    }

    /// Total packet length over all segments.
    #[inline(always)]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Number of segments.
    #[inline(always)]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// The port the mbuf was received on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The first segment's data (what `rte_pktmbuf_mtod` points at).
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's
        // buffer (an mbuf invariant DPDK maintains) and we own the mbuf.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The first segment's data, writable. Only safe to write when the mbuf
    /// is not shared (refcount 1), which `is_exclusive` tells.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        // SAFETY: as in `data`; `&mut self` gives exclusive access to our
        // reference. Clones made with `clone_ref` share the buffer, which is
        // why writers check `is_exclusive` first.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Prefetches the first cache line of the packet data.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        let m = self.raw();
        crate::prefetch((m.buf_addr as *const u8).wrapping_add(m.data_off as usize));
    }

    /// Free bytes in front of the data.
    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    /// Free bytes after the data in the last segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: valid mbuf.
        unsafe { dpdk_sys::shim_rte_pktmbuf_tailroom(self.0.as_ptr()) as usize }
    }

    /// Appends `len` bytes and returns them, or `None` without tailroom.
    pub fn append(&mut self, len: usize) -> Option<&mut [u8]> {
        let len16 = u16::try_from(len).ok()?;
        // SAFETY: valid mbuf; DPDK checks the tailroom and returns NULL.
        let p = unsafe { dpdk_sys::shim_rte_pktmbuf_append(self.0.as_ptr(), len16) };
        // SAFETY: on success `p` points at `len` writable bytes of our buffer.
        NonNull::new(p as *mut u8)
            .map(|p| unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// Grows the data by `len` bytes at the front (headroom); `false` without
    /// enough headroom. What `rte_pktmbuf_prepend` does (the headroom is
    /// `data_off`), inline: the tunnel encapsulation calls it per frame.
    #[inline(always)]
    pub fn prepend(&mut self, len: usize) -> bool {
        // SAFETY: we own a valid mbuf; `&mut self` gives exclusive access
        // to its header fields.
        let m = unsafe { self.0.as_mut() };
        match u16::try_from(len) {
            Ok(len16) if len16 <= m.data_off => {
                m.data_off -= len16;
                // data_off + data_len stays within buf_len (a u16).
                m.data_len = m.data_len.wrapping_add(len16);
                m.pkt_len = m.pkt_len.wrapping_add(u32::from(len16));
                true
            }
            _ => false,
        }
    }

    /// Removes `len` bytes from the front; `false` if the segment is shorter.
    pub fn adj(&mut self, len: usize) -> bool {
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        // SAFETY: valid mbuf; DPDK checks the length and returns NULL.
        !unsafe { dpdk_sys::shim_rte_pktmbuf_adj(self.0.as_ptr(), len16) }.is_null()
    }

    /// Removes `len` bytes from the end; `false` if the segment is shorter.
    pub fn trim(&mut self, len: usize) -> bool {
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        // SAFETY: valid mbuf; DPDK checks the length and returns -1.
        unsafe { dpdk_sys::shim_rte_pktmbuf_trim(self.0.as_ptr(), len16) == 0 }
    }

    /// The offload flags (`RTE_MBUF_F_*`): what the receiving driver says
    /// about the frame (checksum state, large receive) and, before a
    /// transmit, what the sender asks the device to do.
    #[inline(always)]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Replaces the offload flags.
    #[inline]
    pub fn set_ol_flags(&mut self, flags: u64) {
        // SAFETY: we own a reference to a valid mbuf; the flags are a plain
        // field the driver reads at transmit.
        unsafe { (*self.0.as_ptr()).ol_flags = flags }
    }

    /// The segment size of a large (TSO/LRO) frame: payload bytes per
    /// segment on the wire (`tso_segsz`), 0 when unset.
    #[inline]
    pub fn tso_segsz(&self) -> u16 {
        // SAFETY: `tx_offload` is a plain u64 view of the bit fields of the
        // union; every bit pattern is valid.
        let t = unsafe { self.raw().__bindgen_anon_3.tx_offload };
        (t >> TSO_SEGSZ_SHIFT) as u16
    }

    /// Sets the header lengths and segment size a transmit offload uses
    /// (`l2_len`, `l3_len`, `l4_len`, `tso_segsz`; the outer lengths are
    /// cleared). Lengths beyond their fields (127, 511, 255) are cut.
    #[inline]
    pub fn set_tx_offload(&mut self, l2: u16, l3: u16, l4: u16, tso_segsz: u16) {
        // rte_mbuf.h: l2_len:7, l3_len:9, l4_len:8, tso_segsz:16, then the
        // outer lengths, in this order from bit 0 of `tx_offload`.
        let v = u64::from(l2 & 0x7f)
            | u64::from(l3 & 0x1ff) << 7
            | u64::from(l4 & 0xff) << 16
            | u64::from(tso_segsz) << TSO_SEGSZ_SHIFT;
        // SAFETY: we own a reference to a valid mbuf; writing the u64 view
        // of the union sets every bit field at once.
        unsafe { (*self.0.as_ptr()).__bindgen_anon_3.tx_offload = v }
    }

    /// Copies `dst.len()` bytes of the packet from byte `offset` on into
    /// `dst`, across segments; `false` (nothing promised about `dst`) when
    /// the packet is shorter.
    pub fn read_into(&self, offset: usize, dst: &mut [u8]) -> bool {
        match offset.checked_add(dst.len()) {
            Some(end) if end <= self.pkt_len() => {}
            _ => return false,
        }
        let (mut off, mut at) = (offset, 0usize);
        let mut seg: *const dpdk_sys::rte_mbuf = self.0.as_ptr();
        while at < dst.len() && !seg.is_null() {
            // SAFETY: `seg` is a segment of our valid chain (the head, then
            // `next` pointers DPDK keeps valid or NULL), alive while `self` is.
            let (data, next) = unsafe { segment(seg) };
            if off >= data.len() {
                off -= data.len();
            } else {
                let n = (data.len() - off).min(dst.len() - at);
                dst[at..at + n].copy_from_slice(&data[off..off + n]);
                at += n;
                off = 0;
            }
            seg = next;
        }
        at == dst.len()
    }

    /// A fresh, empty mbuf from the pool this one came from (`None` when
    /// the pool is empty).
    pub fn alloc_like(&self) -> Option<Mbuf> {
        let pool = self.raw().pool;
        // SAFETY: an mbuf's `pool` names the valid pktmbuf pool it came
        // from, which outlives its mbufs (and so this call).
        let raw = NonNull::new(unsafe { dpdk_sys::shim_rte_pktmbuf_alloc(pool) })?;
        // SAFETY: a non-null result is a freshly allocated mbuf we own.
        Some(unsafe { Mbuf::from_raw(raw) })
    }

    /// Whether this is the only reference to the buffer (safe to modify).
    pub fn is_exclusive(&self) -> bool {
        // SAFETY: valid mbuf.
        unsafe { dpdk_sys::shim_rte_mbuf_refcnt_read(self.0.as_ptr()) == 1 }
    }

    /// Another reference to the same packet (refcount + 1), for sending one
    /// frame out of several ports without copying.
    pub fn clone_ref(&self) -> Mbuf {
        // Every segment of a chain gets the reference (as
        // rte_pktmbuf_refcnt_update does): a free walks the chain and
        // drops one reference from each segment.
        let mut seg = self.0.as_ptr();
        while !seg.is_null() {
            // SAFETY: `seg` is a segment of our valid chain (the head, then
            // `next` links DPDK keeps valid or NULL); raising its refcount
            // makes the second handle own one reference, freed by its drop.
            unsafe {
                dpdk_sys::shim_rte_mbuf_refcnt_update(seg, 1);
                seg = (*seg).next;
            }
        }
        Mbuf(self.0)
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference to a valid mbuf.
        unsafe { dpdk_sys::shim_rte_pktmbuf_free(self.0.as_ptr()) }
    }
}
