//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::mbuf::Mbuf;

/// A pool of packet buffers. Share it with `Arc`: ports keep a clone so the
/// pool outlives every mbuf their queues hold.
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    data_room: u16,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe (per-lcore
// caches plus a lock-free ring), so the handle may move and be shared.
unsafe impl Send for Mempool {}
// SAFETY: see `Send`; every operation through `&Mempool` is thread-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Default data room: 2048 bytes of payload plus the standard headroom.
    pub const DEFAULT_DATA_ROOM: u16 = 2048 + dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;

    /// Creates a pool of `n` mbufs with a per-lcore cache of `cache` and the
    /// given data room, on NUMA socket `socket` (`-1`: any).
    pub fn pktmbuf(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let cname = CString::new(name)
            .map_err(|_| Error::Invalid(format!("mempool name {name:?} contains a NUL byte")))?;
        // SAFETY: the name is a valid C string (copied by DPDK); the EAL is
        // initialised, which creating a pool requires (it fails with
        // E_RTE_NO_CONFIG otherwise, which we report).
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket)
        };
        NonNull::new(raw)
            .map(|raw| Mempool {
                raw,
                name: name.to_owned(),
                data_room,
            })
            .ok_or_else(|| {
                Error::from_rte_errno(
                    "rte_pktmbuf_pool_create",
                    format!(
                        "pool {name:?} of {n} mbufs; with too little memory, reserve hugepages \
                         or lower the count (EAL --no-huge gives 64 MiB unless -m is set)"
                    ),
                )
            })
    }

    /// Each mbuf's data room (headroom included), as created.
    pub fn data_room(&self) -> u16 {
        self.data_room
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw pointer, for calls this layer does not wrap.
    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }

    /// Allocates one mbuf (data length 0, default headroom).
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is a valid pktmbuf pool for as long as `self` lives.
        let m = unsafe { dpdk_sys::shim_rte_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: a non-null result is a freshly allocated mbuf we now own.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs currently free in the pool (approximate while others run).
    pub fn available(&self) -> u32 {
        // SAFETY: valid pool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently allocated from the pool (approximate while others run).
    pub fn in_use(&self) -> u32 {
        // SAFETY: valid pool.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: every port holding this pool keeps an Arc to it, so when
        // the last handle drops no queue can still hold its mbufs.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
