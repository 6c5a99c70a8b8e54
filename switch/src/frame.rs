//! The packet-buffer abstraction actions work on. The lead implements it
//! for DPDK mbufs (`rte_pktmbuf_mtod`, `rte_pktmbuf_prepend`, `rte_pktmbuf_adj`);
//! [`VecFrame`] is the heap-backed implementation used by tests and benches.

/// A contiguous frame with headroom, like a single-segment mbuf.
/// `Send + 'static`: frames the connection tracker's fragment reassembly
/// holds stay with their worker's datapath between bursts.
pub trait Frame: Send + 'static {
    /// The frame bytes, starting at the Ethernet header.
    fn data(&self) -> &[u8];
    /// The frame bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grow the frame by `n` bytes at the front (uses headroom); the new
    /// bytes are uninitialised garbage. Returns false when there is no room.
    fn prepend(&mut self, n: usize) -> bool;
    /// Remove `n` bytes from the front. Returns false when shorter than `n`.
    fn adj(&mut self, n: usize) -> bool;
    /// Whether the TCP/UDP checksum field holds only the pseudo-header sum
    /// (a partial checksum, VIRTIO 1.2 §5.1.6.2 `VIRTIO_NET_HDR_F_NEEDS_CSUM`)
    /// for a device or [`crate::offload`] to complete: header rewrites then
    /// update it as a sum of the pseudo-header only. Default: no.
    fn l4_csum_partial(&self) -> bool {
        false
    }
    /// A new frame holding a copy of this frame's bytes (with headroom),
    /// for action lists that modify the frame after an output: the earlier
    /// outputs send the copy. `None` (the default, or no buffer free):
    /// those outputs send the final bytes instead.
    fn duplicate(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
    /// Another handle on this frame's buffer (an mbuf reference), for IP
    /// fragment reassembly: the burst's handle is released with a
    /// [`crate::verdict::DropReason::FragHeld`] verdict and this one kept
    /// until the datagram completes. `None` (the default): a
    /// [`Frame::duplicate`] is kept instead, or none (the fragment is then
    /// tracked as it is: `+trk+inv`).
    fn hold(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Default headroom of a [`VecFrame`] (DPDK's `RTE_PKTMBUF_HEADROOM`).
pub const DEFAULT_HEADROOM: usize = 128;

/// A `Vec<u8>`-backed frame with headroom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecFrame {
    buf: Vec<u8>,
    start: usize,
}

impl VecFrame {
    /// A frame holding a copy of `bytes` with [`DEFAULT_HEADROOM`] in front.
    #[inline]
    pub fn new(bytes: &[u8]) -> Self {
        Self::with_headroom(bytes, DEFAULT_HEADROOM)
    }
    /// A frame holding a copy of `bytes` with `headroom` bytes in front.
    #[inline]
    pub fn with_headroom(bytes: &[u8], headroom: usize) -> Self {
        let mut buf = vec![0u8; headroom];
        buf.extend_from_slice(bytes);
        VecFrame {
            buf,
            start: headroom,
        }
    }
    /// Replace the contents (headroom restored), without reallocating when
    /// capacity allows; benches use it to recycle frames.
    #[inline]
    pub fn reset(&mut self, bytes: &[u8], headroom: usize) {
        self.buf.clear();
        self.buf.resize(headroom, 0);
        self.buf.extend_from_slice(bytes);
        self.start = headroom;
    }
}

impl Frame for VecFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.buf.len() - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn duplicate(&self) -> Option<Self> {
        Some(VecFrame::new(self.data()))
    }
    fn hold(&self) -> Option<Self> {
        Some(self.clone())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn prepend_and_adj_respect_bounds() {
        let mut f = VecFrame::with_headroom(&[1, 2, 3], 2);
        assert!(!f.prepend(3));
        assert!(f.prepend(2));
        assert_eq!(f.data().len(), 5);
        assert!(f.adj(4));
        assert_eq!(f.data(), &[3]);
        assert!(!f.adj(2));
    }
}
