//! Frames between guest buffers and mbufs: [`MbufSink`] builds mbufs
//! (chained when a frame is longer than one mbuf's room) from what the
//! guest sent, [`MbufSource`] writes mbufs into the guest's buffers. The
//! virtio-net header (VIRTIO 1.2 §5.1.6) maps to and from the mbuf's
//! offload fields as the vhost library does it (`vhost_dequeue_offload`,
//! `virtio_enqueue_offload`, in the dpdk-sys shim); a header with no
//! offload (the common case) is decided here without a call.

use dpdk_sys as sys;

use super::copy::copy_bytes;
use super::net::{Reader, RxSource, TxSink, Writer};

/// `gso_type` of a frame that is not a segment to cut (§5.1.6).
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;

/// Size of `struct virtio_net_hdr` (no `num_buffers`).
pub(crate) const HDR_LEN: usize = 10;
/// Size with `num_buffers` (`VIRTIO_NET_F_MRG_RXBUF` or VIRTIO 1.x).
pub(crate) const HDR_LEN_MRG: usize = 12;

/// Builds mbufs from guest frames into `out[..cap]`, whose mbufs were
/// allocated in bulk beforehand.
pub(crate) struct MbufSink {
    pub pool: *mut sys::rte_mempool,
    /// Where a frame longer than an mbuf of `pool` goes, in one piece
    /// ([`super::large`]); null: chained mbufs of `pool`.
    pub large: *mut sys::rte_mempool,
    pub out: *mut *mut sys::rte_mbuf,
    /// Mbufs filled so far (from the front of `out`).
    pub filled: usize,
    /// Mbufs in `out`.
    pub cap: usize,
    pub hdr_len: usize,
    /// The guest negotiated host offloads: headers are read.
    pub offload: bool,
    pub port: u16,
    pub bytes: u64,
}

/// Room for data in a fresh mbuf (`rte_pktmbuf_tailroom` of an empty one).
#[inline(always)]
fn room(m: &sys::rte_mbuf) -> usize {
    (m.buf_len as usize).saturating_sub(m.data_off as usize + m.data_len as usize)
}

impl TxSink for MbufSink {
    /// A frame whose bytes fit the next mbuf's room and whose header asks
    /// for no offload: copied straight in (no header copy, no reader).
    #[inline(always)]
    fn take_plain(&mut self, p: *const u8, total: u32) -> Option<bool> {
        if self.filled == self.cap {
            return Some(false);
        }
        let len = total as usize - self.hdr_len;
        // SAFETY: `out` has `cap` freshly allocated mbufs; `filled` < cap.
        let m = unsafe { &mut **self.out.add(self.filled) };
        if len > room(m) {
            return None;
        }
        // SAFETY: `p..p+total` is readable guest memory (the caller's)
        // and total >= hdr_len >= 2: the header's flags and gso_type.
        if self.offload && unsafe { (p as *const u16).read_unaligned() } != 0 {
            return None;
        }
        // SAFETY: `len` bytes after the header in the guest's range, into
        // the mbuf's room (checked above); guest memory and the mbuf do
        // not overlap.
        unsafe {
            let base = (m.buf_addr as *mut u8).add(m.data_off as usize + m.data_len as usize);
            copy_bytes(p.add(self.hdr_len), base, len);
        }
        m.data_len += len as u16;
        m.pkt_len = len as u32;
        m.port = self.port;
        self.bytes += len as u64;
        self.filled += 1;
        Some(true)
    }

    #[inline(always)]
    fn take(&mut self, frame: &mut Reader<'_>, total: u32) -> bool {
        if self.filled == self.cap {
            return false;
        }
        let mut hdr = [0u8; HDR_LEN_MRG];
        frame.read(&mut hdr[..self.hdr_len]);
        // SAFETY: `out` has `cap` freshly allocated mbufs; `filled` < cap.
        let mut head = unsafe { *self.out.add(self.filled) };
        let len = total as usize - self.hdr_len;
        // Only a segment the header marks for segmentation (`gso_type`,
        // §5.1.6.2) goes into a large mbuf: any other frame longer than
        // an mbuf is longer than the port's MTU, is chained as before, and
        // the parser drops it as truncated (never forwarded whole or cut).
        let segment = self.offload && hdr[1] != VIRTIO_NET_HDR_GSO_NONE;
        // SAFETY: `head` is a valid mbuf.
        if segment && !self.large.is_null() && len > room(unsafe { &*head }) {
            // SAFETY: `large` is a live pktmbuf pool; the mbuf it gives
            // takes `head`'s place in `out`, and `head` (fresh, ours)
            // goes back.
            unsafe {
                let big = sys::shim_rte_pktmbuf_alloc(self.large);
                if !big.is_null() {
                    sys::shim_rte_pktmbuf_free(head);
                    *self.out.add(self.filled) = big;
                    head = big;
                }
            }
        }
        let mut seg = head;
        let mut left = len;
        // SAFETY: `head` and the segments allocated below are valid,
        // exclusively owned mbufs; data is written within their room.
        unsafe {
            loop {
                let m = &mut *seg;
                let r = room(m);
                let base = (m.buf_addr as *mut u8).add(m.data_off as usize + m.data_len as usize);
                let mut put = 0usize;
                while put < r.min(left) {
                    let s = frame.next_piece(r.min(left) - put);
                    if s.is_empty() {
                        break;
                    }
                    copy_bytes(s.as_ptr(), base.add(put), s.len());
                    put += s.len();
                }
                m.data_len += put as u16;
                left -= put;
                if left == 0 || put == 0 && r != 0 {
                    break;
                }
                let next = sys::shim_rte_pktmbuf_alloc(self.pool);
                if next.is_null() {
                    // The head stays for the next frame: free what was
                    // chained to it and leave it empty.
                    let extra = (*head).next;
                    if !extra.is_null() {
                        sys::shim_rte_pktmbuf_free(extra);
                    }
                    (*head).next = std::ptr::null_mut();
                    (*head).nb_segs = 1;
                    (*head).data_len = 0;
                    return false;
                }
                m.next = next;
                (*head).nb_segs += 1;
                seg = next;
            }
            let h = &mut *head;
            h.pkt_len = (len - left) as u32;
            h.port = self.port;
            if self.offload && (hdr[0] != 0 || hdr[1] != 0) {
                sys::shim_vhost_hdr_to_mbuf(hdr.as_ptr().cast(), head);
            }
            self.bytes += u64::from(h.pkt_len);
        }
        self.filled += 1;
        true
    }
}

/// Writes mbufs `pkts[..]` into guest buffers.
pub(crate) struct MbufSource {
    pub pkts: *const *mut sys::rte_mbuf,
    pub hdr_len: usize,
    pub bytes: u64,
}

/// Transmit offload flags that need a virtio-net header with content.
const TX_OFFLOADS: u64 = sys::RTE_MBUF_F_TX_L4_MASK
    | sys::RTE_MBUF_F_TX_TCP_SEG
    | sys::RTE_MBUF_F_TX_UDP_SEG
    | sys::RTE_MBUF_F_TX_IP_CKSUM;

impl RxSource for MbufSource {
    #[inline(always)]
    fn len(&self, i: usize) -> u32 {
        // SAFETY: the caller's first frames are valid mbufs.
        unsafe { (**self.pkts.add(i)).pkt_len }
    }

    /// One segment (its data length is the packet length) without
    /// transmit offload flags: the frame's bytes at the segment's data.
    #[inline(always)]
    fn plain(&self, i: usize) -> Option<*const u8> {
        // SAFETY: as in `len`; the fields read are in the mbuf's first
        // line.
        unsafe {
            let m = &**self.pkts.add(i);
            if m.ol_flags & TX_OFFLOADS == 0 && u32::from(m.data_len) == m.pkt_len {
                return Some((m.buf_addr as *const u8).add(usize::from(m.data_off)));
            }
        }
        None
    }

    #[inline(always)]
    fn sent_plain(&mut self, i: usize) {
        self.bytes += u64::from(self.len(i));
    }

    #[inline(always)]
    fn write(&mut self, i: usize, num_buffers: u16, out: &mut Writer<'_>) {
        // SAFETY: as in `len`; the mbuf is the caller's and the shim only
        // writes its own headers (pseudo-header checksum, IPv4 checksum).
        let m = unsafe { *self.pkts.add(i) };
        if unsafe { (*m).ol_flags } & TX_OFFLOADS != 0 {
            let mut hdr = [0u8; HDR_LEN_MRG];
            // SAFETY: `hdr` holds a `struct virtio_net_hdr`.
            unsafe { sys::shim_vhost_mbuf_to_hdr(m, hdr.as_mut_ptr().cast()) };
            hdr[10..12].copy_from_slice(&num_buffers.to_le_bytes());
            out.write(&hdr[..self.hdr_len]);
        } else {
            out.write_plain_hdr(self.hdr_len, num_buffers);
        }
        let mut seg = m as *const sys::rte_mbuf;
        while !seg.is_null() {
            // SAFETY: a segment of the caller's valid chain, alive for
            // this call.
            let (data, next) = unsafe { crate::mbuf::segment(seg) };
            out.write(data);
            seg = next;
        }
        // SAFETY: as above.
        self.bytes += u64::from(unsafe { (*m).pkt_len });
    }
}
