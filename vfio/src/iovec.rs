//! [`IoVec`]: one contiguous piece of guest memory, already translated to a
//! host address and bounds-checked, handed from the virtio device to a
//! backend.
//!
//! An `IoVec` can only be made inside this crate, from a range that
//! [`crate::guest_memory::GuestMemory::host_range`] accepted. It stays valid
//! until the backend reports the request that carried it as complete: the
//! device never unmaps guest memory while requests are in flight (it drains
//! them first, see `blk::device`). Guest memory is shared with a running guest
//! that may change it at any time, so no Rust reference is ever made to it:
//! only copies and `preadv`/`pwritev`.

use std::ptr;

/// A host-mapped, bounds-checked range of guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoVec {
    ptr: *mut u8,
    len: u32,
}

// SAFETY: an IoVec is a plain address range into a shared mapping that lives as
// long as the device's GuestMemory; moving it between threads changes nothing
// about its validity (the poller thread and a backend's completion thread may
// both hold it).
unsafe impl Send for IoVec {}
// SAFETY: see `Send`; IoVec has no interior state.
unsafe impl Sync for IoVec {}

impl IoVec {
    /// Wraps a range the caller has checked.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be inside a live guest-memory mapping that outlives
    /// every use of the returned value.
    #[inline]
    pub(crate) unsafe fn new(ptr: *mut u8, len: u32) -> Self {
        IoVec { ptr, len }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True if the range is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Host address of the first byte (for copies to and from other shared
    /// memory, such as cache slots).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The range as a `libc::iovec` for `preadv`/`pwritev`.
    #[inline]
    pub fn as_libc(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.ptr.cast(),
            iov_len: self.len as usize,
        }
    }

    /// The sub-range `[off, off+len)`; `None` if it does not fit.
    #[inline]
    pub fn slice(&self, off: usize, len: usize) -> Option<IoVec> {
        let end = off.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        // SAFETY: the sub-range lies inside the checked range of `self`.
        Some(unsafe { IoVec::new(self.ptr.add(off), len as u32) })
    }

    /// Copies `dst.len()` bytes from the start of this range; panics-free: copies
    /// `min(dst.len(), self.len())` and returns that count.
    #[inline]
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len());
        // SAFETY: `n` bytes are inside the checked guest range and inside `dst`;
        // guest memory never overlaps a Rust-owned buffer.
        unsafe { ptr::copy_nonoverlapping(self.ptr, dst.as_mut_ptr(), n) };
        n
    }

    /// Copies `min(src.len(), self.len())` bytes into the start of this range.
    #[inline]
    pub fn copy_from(&self, src: &[u8]) -> usize {
        let n = src.len().min(self.len());
        // SAFETY: as in `copy_to`, with the direction reversed.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.ptr, n) };
        n
    }

    /// Fills the range with zeroes.
    #[inline]
    pub fn zero(&self) {
        // SAFETY: the whole range is inside the checked guest range.
        unsafe { ptr::write_bytes(self.ptr, 0, self.len()) };
    }

    /// Writes one byte at `off` (used for the virtio-blk status byte).
    #[inline]
    pub fn write_byte(&self, off: usize, v: u8) -> bool {
        if off >= self.len() {
            return false;
        }
        // SAFETY: `off` is inside the checked range; volatile because the guest
        // reads it concurrently once the used index is published.
        unsafe { ptr::write_volatile(self.ptr.add(off), v) };
        true
    }
}

/// Total length of a list of ranges.
pub fn total_len(iovs: &[IoVec]) -> u64 {
    iovs.iter().map(|v| v.len as u64).sum()
}

/// Appends to `out` the pieces of `iovs` that cover bytes `[start, start+len)`
/// of their concatenation. Returns false if the list is shorter or `out` is
/// full (capacity is never grown: the hot path allocates nothing).
pub fn carve(iovs: &[IoVec], mut start: u64, mut len: u64, out: &mut Vec<IoVec>) -> bool {
    for v in iovs {
        if len == 0 {
            break;
        }
        let vl = v.len as u64;
        if start >= vl {
            start -= vl;
            continue;
        }
        let take = (vl - start).min(len);
        if out.len() == out.capacity() {
            return false;
        }
        // Both fit in u32 because they are bounded by `v.len`.
        out.push(
            v.slice(start as usize, take as usize)
                .expect("bounded by v.len"),
        );
        len -= take;
        start = 0;
    }
    len == 0
}

/// The first `N` bytes of the concatenated ranges, `None` if they are
/// shorter. One fixed-size copy when the first range holds them all (a
/// request header in its own descriptor, the usual layout), not a
/// variable-length `memcpy` per range.
#[inline]
pub fn gather_array<const N: usize>(iovs: &[IoVec]) -> Option<[u8; N]> {
    match iovs.first() {
        Some(v) if v.len() >= N => {
            // SAFETY: `N` bytes are inside the checked guest range `v`;
            // read unaligned into a local copy (no reference to guest
            // memory is made).
            Some(unsafe { ptr::read_unaligned(v.ptr as *const [u8; N]) })
        }
        _ => {
            let mut out = [0u8; N];
            gather(iovs, &mut out).then_some(out)
        }
    }
}

/// Copies the first `dst.len()` bytes of the concatenated ranges into `dst`;
/// returns false if the ranges are shorter.
pub fn gather(iovs: &[IoVec], dst: &mut [u8]) -> bool {
    let mut done = 0;
    for v in iovs {
        if done == dst.len() {
            break;
        }
        done += v.copy_to(&mut dst[done..]);
    }
    done == dst.len()
}

/// Copies `src` into the concatenated ranges; returns false if they are shorter.
pub fn scatter(iovs: &[IoVec], src: &[u8]) -> bool {
    let mut done = 0;
    for v in iovs {
        if done == src.len() {
            break;
        }
        done += v.copy_from(&src[done..]);
    }
    done == src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_gather_scatter() {
        let mut a = [0u8; 4];
        let mut b = [0u8; 6];
        // SAFETY: test buffers outlive the IoVecs.
        let iovs = unsafe { [IoVec::new(a.as_mut_ptr(), 4), IoVec::new(b.as_mut_ptr(), 6)] };
        assert!(scatter(&iovs, b"0123456789"));
        let mut out = Vec::with_capacity(4);
        assert!(carve(&iovs, 3, 4, &mut out));
        assert_eq!(out.len(), 2);
        let mut d = [0u8; 4];
        assert!(gather(&out, &mut d));
        assert_eq!(&d, b"3456");
        out.clear();
        assert!(!carve(&iovs, 8, 3, &mut out), "past the end");
        assert_eq!(&a, b"0123");
        assert!(!scatter(&iovs, &[0u8; 11]));
        assert_eq!(total_len(&iovs), 10);
        // Fixed-size gather: from the first range alone, across ranges, or
        // refused when the ranges are shorter.
        assert!(scatter(&iovs, b"0123456789"));
        assert_eq!(gather_array::<3>(&iovs), Some(*b"012"));
        assert_eq!(gather_array::<6>(&iovs), Some(*b"012345"));
        assert_eq!(gather_array::<10>(&iovs), Some(*b"0123456789"));
        assert_eq!(gather_array::<11>(&iovs), None);
        assert_eq!(gather_array::<1>(&[]), None);
    }
}
