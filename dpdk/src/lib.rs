//! A small safe layer over [`dpdk_sys`].
//!
//! Ownership follows DPDK's own rules and makes them checkable by the compiler:
//!
//! * [`Eal`] is initialised once per process and cleaned up when dropped; a
//!   second initialisation returns [`Error::EalAlreadyInitialised`].
//! * A [`Mempool`] is shared (`Arc`) by every port that receives into it, so it
//!   outlives the queues that hold its mbufs.
//! * An [`Mbuf`] is owned: dropping it frees it. A [`Burst`] is a fixed array
//!   of up to [`BURST_SIZE`] mbufs with no heap allocation; what a burst still
//!   holds when dropped is freed in bulk.
//! * A [`Port`] hands out each of its queues once ([`RxQueue`], [`TxQueue`]),
//!   so one queue has one polling thread, as DPDK requires.
//! * [`lcore::launch`] runs a closure on a worker lcore.
//!
//! Every `unsafe` block in this crate carries a `// SAFETY:` comment.

#![deny(missing_docs)]

mod burst;
mod eal;
mod error;
pub mod lcore;
mod mbuf;
mod mempool;
pub mod offload;
mod port;
mod ring;
mod vhost;
mod vring;
pub mod wake;

pub use burst::{Burst, BURST_SIZE};
pub use eal::{Eal, HugepageStatus};
pub use error::{Error, Result};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{
    stats_of, Link, Port, PortConfig, PortStats, RxQueue, TxQueue, QUEUE_STAT_COUNTERS,
};
pub use ring::MbufRing;

/// Raw bindings, re-exported for the few callers that need a function this
/// layer does not wrap.
pub use dpdk_sys as sys;

/// The DPDK version this crate was compiled against.
pub fn build_version() -> &'static str {
    dpdk_sys::DPDK_BUILD_VERSION
}

/// The DPDK version of the shared libraries loaded at run time.
pub fn runtime_version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_version()) }
        .to_string_lossy()
        .into_owned()
}

/// The directory the EAL loads poll-mode driver plugins from.
pub fn pmd_dir() -> &'static str {
    std::str::from_utf8(dpdk_sys::RTE_EAL_PMD_PATH)
        .unwrap_or("")
        .trim_end_matches('\0')
}

/// Reads the CPU's time-stamp counter (cycles since reset).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // Elsewhere, nanoseconds of the wall clock stand in for cycles.
        std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

/// Hints the CPU to fetch the cache line at `p` (no effect on correctness).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCH never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
