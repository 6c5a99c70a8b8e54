//! Frames through a split ring: the guest's transmit ring into packets
//! ([`dequeue`]) and packets into the guest's receive ring ([`enqueue`]),
//! with the virtio-net header (VIRTIO 1.2 §5.1.6) in front of each frame
//! and, for receive, mergeable buffers (§5.1.6.3, `VIRTIO_NET_F_MRG_RXBUF`).
//!
//! What a frame is copied into or out of is the caller's ([`TxSink`],
//! [`RxSource`]): mbufs on the datapath, byte vectors in the tests.

use super::copy::{copy_bytes, copy_frame};
use super::split::{ChainError, Segs, SplitRing, MAX_CHAINS, MAX_FRAME};

/// Takes the frames [`dequeue`] found.
pub(crate) trait TxSink {
    /// Takes one frame of `total` bytes (virtio-net header included) from
    /// `frame`; `false` when it cannot (nothing is consumed then, and the
    /// burst ends).
    fn take(&mut self, frame: &mut Reader<'_>, total: u32) -> bool;
    /// Takes one frame of `total` bytes (header included) lying in one
    /// piece at `p` (a checked, readable range of guest memory), if it can
    /// without [`TxSink::take`]: `Some(true)` taken, `Some(false)` cannot
    /// (as `take`'s `false`), `None` to go through `take`.
    fn take_plain(&mut self, _p: *const u8, _total: u32) -> Option<bool> {
        None
    }
}

/// Gives the frames [`enqueue`] sends.
pub(crate) trait RxSource {
    /// Length of frame `i` (without virtio-net header).
    fn len(&self, i: usize) -> u32;
    /// Writes frame `i`'s virtio-net header (`num_buffers` chains,
    /// §5.1.6.4) and then its bytes to `out`.
    fn write(&mut self, i: usize, num_buffers: u16, out: &mut Writer<'_>);
    /// Frame `i`'s [`RxSource::len`] bytes when they are contiguous and
    /// its header carries no offload (every field 0 but `num_buffers`):
    /// [`enqueue`] may then copy them itself, without [`RxSource::write`].
    fn plain(&self, _i: usize) -> Option<*const u8> {
        None
    }
    /// Frame `i` went out through [`RxSource::plain`].
    fn sent_plain(&mut self, _i: usize) {}
}

/// Writes a virtio-net header without offloads at `p` (see
/// [`Writer::write_plain_hdr`]): every field 0 but `num_buffers`, which
/// only a `hdr_len` of 12 has; the guest's bytes are written only where
/// they differ.
///
/// # Safety
/// `hdr_len` is 10 or 12 and `p..p+hdr_len` is writable (and readable).
#[inline(always)]
unsafe fn plain_hdr_at(p: *mut u8, hdr_len: usize, num_buffers: u16) {
    // SAFETY: 8 + 4 (hdr_len 12) or 8 + 2 (hdr_len 10) bytes from `p`,
    // inside the caller's range; unaligned accesses.
    unsafe {
        let lo = p as *mut u64;
        if lo.read_unaligned() != 0 {
            lo.write_unaligned(0);
        }
        if hdr_len == 12 {
            // csum_offset 0, then num_buffers (little-endian).
            let want = (u32::from(num_buffers) << 16).to_le();
            let hi = p.add(8) as *mut u32;
            if hi.read_unaligned() != want {
                hi.write_unaligned(want);
            }
        } else {
            let hi = p.add(8) as *mut u16;
            if hi.read_unaligned() != 0 {
                hi.write_unaligned(0);
            }
        }
    }
}

/// Reads a frame's bytes across its segments, in order.
pub(crate) struct Reader<'a> {
    segs: &'a Segs,
    seg: usize,
    off: u32,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(segs: &'a Segs) -> Self {
        Reader {
            segs,
            seg: 0,
            off: 0,
        }
    }

    /// The next contiguous piece of at most `max` bytes (empty at the end).
    #[inline(always)]
    pub(crate) fn next_piece(&mut self, max: usize) -> &'a [u8] {
        while self.seg < self.segs.len() {
            let (p, len) = self.segs.get(self.seg);
            if self.off < len {
                let n = ((len - self.off) as usize).min(max);
                // SAFETY: the segment is a checked range of mapped guest
                // memory of `len` bytes; off + n <= len.
                let s = unsafe { std::slice::from_raw_parts(p.add(self.off as usize), n) };
                self.off += n as u32;
                return s;
            }
            self.seg += 1;
            self.off = 0;
        }
        &[]
    }

    /// Fills `dst` (fewer bytes at the end of the frame); returns how many.
    #[inline(always)]
    pub(crate) fn read(&mut self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        while done < dst.len() {
            let s = self.next_piece(dst.len() - done);
            if s.is_empty() {
                break;
            }
            let d = &mut dst[done..done + s.len()];
            // SAFETY: `d` and `s` are slices of `s.len()` bytes, the one
            // local, the other guest memory.
            unsafe { copy_bytes(s.as_ptr(), d.as_mut_ptr(), s.len()) };
            done += s.len();
        }
        done
    }
}

/// Writes a frame across the segments of its chains, in order.
pub(crate) struct Writer<'a> {
    segs: &'a Segs,
    seg: usize,
    off: u32,
    /// Bytes written.
    pub(crate) written: u32,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(segs: &'a Segs) -> Self {
        Writer {
            segs,
            seg: 0,
            off: 0,
            written: 0,
        }
    }

    /// Writes a virtio-net header without offloads (§5.1.6: every field
    /// 0 but `num_buffers`, which only a `hdr_len` of 12 has) at the start
    /// of the frame, as [`Writer::write`] of those bytes would.
    ///
    /// The header is never built in local memory and read back: a
    /// 12-byte load spanning two earlier narrower stores (a zeroed array,
    /// then `num_buffers` into it) cannot be forwarded from the store
    /// queue, so it waits until those stores reach the cache, and stores
    /// leave in order: behind the previous frame's stores into guest
    /// memory, each waiting for its line to come over from the guest's
    /// core. That put one cross-core transfer per frame on the critical
    /// path. The guest's bytes are also only written when they differ
    /// (the vhost library's `ASSIGN_UNLESS_EQUAL`): the header line then
    /// stays shared instead of moving to this core and back every frame.
    #[inline(always)]
    pub(crate) fn write_plain_hdr(&mut self, hdr_len: usize, num_buffers: u16) {
        if self.off == 0 && self.seg < self.segs.len() {
            let (p, len) = self.segs.get(self.seg);
            if (hdr_len == 12 || hdr_len == 10) && hdr_len < len as usize {
                // SAFETY: the segment is a checked, device-writable range
                // of mapped guest memory of `len` > hdr_len bytes.
                unsafe { plain_hdr_at(p, hdr_len, num_buffers) };
                self.off = hdr_len as u32;
                self.written += hdr_len as u32;
                return;
            }
        }
        let mut hdr = [0u8; 12];
        hdr[10..12].copy_from_slice(&num_buffers.to_le_bytes());
        self.write(&hdr[..hdr_len.min(12)]);
    }

    /// Copies `data` on (what does not fit is cut: [`enqueue`] reserves
    /// room for the whole frame first).
    #[inline(always)]
    pub(crate) fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.seg < self.segs.len() {
            let (p, len) = self.segs.get(self.seg);
            let n = ((len - self.off) as usize).min(data.len());
            // SAFETY: the segment is a checked, device-writable range of
            // mapped guest memory of `len` bytes; off + n <= len.
            unsafe { copy_bytes(data.as_ptr(), p.add(self.off as usize), n) };
            self.off += n as u32;
            self.written += n as u32;
            data = &data[n..];
            if self.off == len {
                self.seg += 1;
                self.off = 0;
            }
        }
    }
}

/// What one burst did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Done {
    /// Frames taken (dequeue) or sent (enqueue).
    pub frames: usize,
    /// Malformed chains refused (returned to the guest unused).
    pub errors: u64,
    /// The driver wants a used-buffer notification.
    pub notify: bool,
}

/// Takes up to `max` frames the guest made available on its transmit
/// ring. Every chain must be device-readable (§5.1.6.2) and at least
/// `hdr_len` long; a malformed one is returned with length 0 and counted.
/// Each consumed chain gets a used entry of length 0 (nothing written).
#[cfg(test)]
pub(crate) fn dequeue(
    ring: &mut SplitRing,
    segs: &mut Segs,
    hdr_len: u32,
    max: usize,
    sink: &mut impl TxSink,
) -> Done {
    let n = ring.avail_count().min(max.min(u16::MAX as usize) as u16);
    dequeue_counted(ring, segs, hdr_len, n, sink)
}

/// [`dequeue`] of `n` chains the caller has seen available (a count from
/// [`SplitRing::avail_count`]): the guest's index, a line its core writes
/// with every transmit burst, is not read a second time.
/// The first lines of this burst's buffers are prefetched before it.
#[inline(always)]
pub(crate) fn dequeue_counted(
    ring: &mut SplitRing,
    segs: &mut Segs,
    hdr_len: u32,
    n: u16,
    sink: &mut impl TxSink,
) -> Done {
    ring.prefetch_burst(n, false, 0);
    let mut done = Done::default();
    let mut taken = 0u16;
    while taken < n {
        let head = ring.avail_head(taken);
        // One buffer of one descriptor (the common case): no segment list,
        // no reader.
        if let Some((p, total)) = ring.one_buffer(head, false) {
            if total >= hdr_len {
                match sink.take_plain(p, total) {
                    Some(true) => {
                        done.frames += 1;
                        ring.push_used(head, 0);
                        taken += 1;
                        continue;
                    }
                    Some(false) => break,
                    None => {}
                }
            }
        }
        segs.clear();
        let walked = ring.walk(head, false, segs).and_then(|t| {
            if t < hdr_len {
                Err(ChainError::TooShort)
            } else {
                Ok(t)
            }
        });
        match walked {
            Ok(total) => {
                if !sink.take(&mut Reader::new(segs), total) {
                    break;
                }
                done.frames += 1;
            }
            Err(_) => done.errors += 1,
        }
        ring.push_used(head, 0);
        taken += 1;
    }
    ring.advance(taken);
    ring.errors += done.errors;
    if taken > 0 {
        done.notify = ring.publish_used();
    }
    done
}

/// Copies up to `n` frames of `src` into the guest's receive ring, each
/// behind a `hdr_len`-byte virtio-net header, spread over several chains
/// when `mergeable` (§5.1.6.3.1: `num_buffers` in the header), else in one
/// chain each. Stops at the first frame the available buffers cannot hold
/// (it and those after it are not sent). A malformed chain is returned
/// with length 0 and counted; a frame whose chains included one is
/// consumed without being delivered (its chains are returned empty).
///
/// A frame the source has in one piece without offloads
/// ([`RxSource::plain`]) going into one buffer of one descriptor (the
/// common case: [`SplitRing::one_buffer`]) is copied straight from
/// registers, without the segment list, the writer or the chain list: each
/// of their stores queued behind the burst's stores into guest memory,
/// which wait for guest lines (a full store queue stops the core).
pub(crate) fn enqueue(
    ring: &mut SplitRing,
    segs: &mut Segs,
    hdr_len: u32,
    mergeable: bool,
    src: &mut impl RxSource,
    n: usize,
) -> Done {
    enqueue_with::<false>(ring, segs, hdr_len, mergeable, src, n)
}

/// [`enqueue`] compiled for AVX2, whose fast path copies frames of 32 to
/// 64 bytes in two 32-byte moves ([`copy_frame`]).
///
/// # Safety
/// The CPU has AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn enqueue_avx2(
    ring: &mut SplitRing,
    segs: &mut Segs,
    hdr_len: u32,
    mergeable: bool,
    src: &mut impl RxSource,
    n: usize,
) -> Done {
    enqueue_with::<true>(ring, segs, hdr_len, mergeable, src, n)
}

/// [`enqueue`]; `WIDE` only inside [`enqueue_avx2`].
#[inline(always)]
fn enqueue_with<const WIDE: bool>(
    ring: &mut SplitRing,
    segs: &mut Segs,
    hdr_len: u32,
    mergeable: bool,
    src: &mut impl RxSource,
    n: usize,
) -> Done {
    let mut done = Done::default();
    let avail = ring.avail_count();
    ring.prefetch_burst(
        avail.min(n.min(MAX_CHAINS) as u16),
        true,
        u64::from(hdr_len),
    );
    let mut pos = 0u16;
    let mut heads = [(0u16, 0u32); MAX_CHAINS];
    'frames: for i in 0..n {
        let len = src.len(i);
        let need = hdr_len.saturating_add(len);
        if need > MAX_FRAME {
            break;
        }
        if pos < avail && (hdr_len == 12 || hdr_len == 10) {
            if let Some(data) = src.plain(i) {
                let head = ring.avail_head(pos);
                if let Some((p, cap)) = ring.one_buffer(head, true) {
                    if cap >= need {
                        // SAFETY: `p` is a checked, device-writable range of
                        // `cap` >= hdr_len + len bytes of mapped guest memory
                        // (`one_buffer`); `data` has `len` readable bytes in
                        // the source's memory, not the guest's (`plain`);
                        // WIDE only in `enqueue_avx2`.
                        unsafe {
                            plain_hdr_at(p, hdr_len as usize, 1);
                            copy_frame::<WIDE>(data, p.add(hdr_len as usize), len as usize);
                        }
                        ring.push_used(head, need);
                        src.sent_plain(i);
                        pos += 1;
                        done.frames += 1;
                        continue;
                    }
                }
            }
        }
        segs.clear();
        let start = pos;
        let mut nch = 0usize;
        let mut cap = 0u32;
        let mut bad = false;
        while cap < need {
            if pos == avail || nch == MAX_CHAINS || (!mergeable && nch == 1) {
                // Not enough buffers (or, without mergeable buffers, a
                // chain too short for the frame): the frame waits.
                pos = start;
                break 'frames;
            }
            let head = ring.avail_head(pos);
            pos += 1;
            match ring.walk(head, true, segs) {
                Ok(c) => {
                    heads[nch] = (head, c);
                    nch += 1;
                    cap = cap.saturating_add(c);
                }
                Err(_) => {
                    // The frame's chains go back empty in the order the
                    // guest made them available, the bad one last: with
                    // VIRTIO_F_IN_ORDER the device must use buffers in
                    // that order (VIRTIO 1.2 §2.7.9).
                    for &(h, _) in &heads[..nch] {
                        ring.push_used(h, 0);
                    }
                    ring.push_used(head, 0);
                    done.errors += 1;
                    bad = true;
                    break;
                }
            }
        }
        if bad {
            done.frames += 1;
            continue;
        }
        let mut w = Writer::new(segs);
        src.write(i, nch as u16, &mut w);
        let mut left = w.written;
        for &(h, c) in &heads[..nch] {
            let l = left.min(c);
            ring.push_used(h, l);
            left -= l;
        }
        done.frames += 1;
    }
    ring.advance(pos);
    ring.errors += done.errors;
    if pos > 0 {
        done.notify = ring.publish_used();
    }
    done
}
