//! Lock-free mbuf rings (`rte_ring`), for handing packets between lcores.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::burst::Burst;
use crate::error::{Error, Result};

/// A multi-producer/multi-consumer ring of mbufs; dropping it frees the
/// mbufs still queued.
pub struct MbufRing {
    raw: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: rte_ring created without SP/SC flags is MP/MC safe.
unsafe impl Send for MbufRing {}
// SAFETY: see `Send`.
unsafe impl Sync for MbufRing {}

impl MbufRing {
    /// Creates a ring with room for `count - 1` mbufs (`count` a power of
    /// two, as DPDK requires).
    pub fn new(name: &str, count: u32) -> Result<MbufRing> {
        if !count.is_power_of_two() || count < 2 {
            return Err(Error::Invalid(format!(
                "ring size {count} must be a power of two >= 2"
            )));
        }
        let cname = CString::new(name)
            .map_err(|_| Error::Invalid(format!("ring name {name:?} contains a NUL byte")))?;
        // SAFETY: valid C string; the EAL is initialised (else NULL, reported).
        let raw = unsafe { dpdk_sys::rte_ring_create(cname.as_ptr(), count, -1, 0) };
        NonNull::new(raw)
            .map(|raw| MbufRing { raw })
            .ok_or_else(|| Error::from_rte_errno("rte_ring_create", format!("ring {name:?}")))
    }

    /// The raw ring (for DPDK calls that take one, like the ring PMD's).
    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_ring {
        self.raw.as_ptr()
    }

    /// Enqueues as much of `burst` as fits; the rest stays in `burst`.
    pub fn enqueue_burst(&self, burst: &mut Burst) -> usize {
        let n = burst.len();
        // SAFETY: the first n slots hold owned mbufs; the ring takes the
        // first `done` of them.
        let done = unsafe {
            dpdk_sys::shim_rte_ring_enqueue_burst(
                self.raw.as_ptr(),
                burst.raw_ptr() as *const *mut libc::c_void,
                n as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the ring owns the first `done` mbufs now.
        unsafe { burst.consume_front(done.min(n)) };
        done
    }

    /// Dequeues into the free slots of `burst`.
    pub fn dequeue_burst(&self, burst: &mut Burst) -> usize {
        let room = burst.room();
        // SAFETY: `room` free slots; the ring hands over ownership.
        let got = unsafe {
            dpdk_sys::shim_rte_ring_dequeue_burst(
                self.raw.as_ptr(),
                burst.spare_ptr() as *mut *mut libc::c_void,
                room as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the ring wrote `got` owned mbufs.
        unsafe { burst.commit(got.min(room)) };
        got
    }

    /// Mbufs queued.
    pub fn len(&self) -> usize {
        // SAFETY: valid ring.
        unsafe { dpdk_sys::shim_rte_ring_count(self.raw.as_ptr()) as usize }
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        let mut b = Burst::new();
        while self.dequeue_burst(&mut b) > 0 {
            b.clear();
        }
        // SAFETY: valid ring, now empty, not used after this.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}
