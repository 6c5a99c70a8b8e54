//! The switch's [`Frame`] view of a DPDK mbuf.

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
}
