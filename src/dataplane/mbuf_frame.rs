//! The switch's [`Frame`] view of a DPDK mbuf.

use std::ptr::NonNull;

use dpdk::Mbuf;
use switch::frame::Frame;

/// An mbuf seen as a switch frame (single segment: the pool's data room is
/// larger than any frame the ports receive).
#[repr(transparent)]
pub struct MbufFrame(pub Mbuf);

impl MbufFrame {
    /// Views a slice of mbufs as frames, without copying.
    #[inline(always)]
    pub fn slice_mut(m: &mut [Mbuf]) -> &mut [MbufFrame] {
        // SAFETY: MbufFrame is repr(transparent) over Mbuf, so the two slice
        // types have the same layout; the borrow is carried over unchanged.
        unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr() as *mut MbufFrame, m.len()) }
    }
}

impl Frame for MbufFrame {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        self.0.data()
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n)
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }

    #[inline]
    fn l4_csum_partial(&self) -> bool {
        use dpdk::offload::{RX_L4_CKSUM_MASK, RX_L4_CKSUM_NONE};
        self.0.ol_flags() & RX_L4_CKSUM_MASK == RX_L4_CKSUM_NONE
    }

    /// A fresh mbuf from the same pool holding a copy of the bytes (only
    /// for flows that modify the frame after an output). A copy leaves
    /// complete: a partial checksum is completed on it; a large segment
    /// (to be cut at output) or a chained mbuf is not copied (`None`: the
    /// outputs send the final bytes).
    fn duplicate(&self) -> Option<Self> {
        if self.0.ol_flags() & dpdk::offload::RX_LRO != 0 || self.0.nb_segs() != 1 {
            return None;
        }
        let mut m = copy_mbuf(&self.0)?;
        if self.l4_csum_partial() {
            if let Some(h) = switch::offload::Headers::parse(m.data()) {
                switch::offload::complete_checksums(m.data_mut(), &h);
            }
        }
        Some(MbufFrame(m))
    }

    /// A second reference to the same mbuf (`rte_mbuf_refcnt_update`), for
    /// the `ct` action's fragment reassembly: the burst releases its
    /// reference, the reassembler keeps this one until the datagram
    /// completes. Chained and large-segment mbufs are not held.
    fn hold(&self) -> Option<Self> {
        if self.0.ol_flags() & dpdk::offload::RX_LRO != 0 || self.0.nb_segs() != 1 {
            return None;
        }
        Some(MbufFrame(self.0.clone_ref()))
    }
}

/// A fresh mbuf from `like`'s pool holding `bytes` (`None`: the pool is
/// empty or the bytes do not fit).
pub fn mbuf_with(like: &Mbuf, bytes: &[u8]) -> Option<Mbuf> {
    // SAFETY: `like` is a valid mbuf we hold a reference to; its `pool`
    // field names the pktmbuf pool it came from, which outlives every mbuf
    // of it.
    let pool = unsafe { (*like.as_ptr()).pool };
    // SAFETY: `pool` is a valid pktmbuf pool (above).
    let raw = NonNull::new(unsafe { dpdk_sys::shim_rte_pktmbuf_alloc(pool) })?;
    // SAFETY: a non-null result is a freshly allocated mbuf we now own.
    let mut m = unsafe { Mbuf::from_raw(raw) };
    m.append(bytes.len())?.copy_from_slice(bytes);
    Some(m)
}

/// A fresh mbuf from the same pool holding a copy of `m`'s bytes.
pub fn copy_mbuf(m: &Mbuf) -> Option<Mbuf> {
    mbuf_with(m, m.data())
}
