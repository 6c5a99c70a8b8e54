//! Per-core datapath statistics. A worker accumulates plain `u64`s during a
//! burst and publishes them at its end with relaxed stores into its own
//! cache-line-aligned block; the control thread reads with relaxed loads
//! and sums. No atomic read-modify-write anywhere.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::extract::Malformed;
use crate::verdict::DropReason;

macro_rules! counters {
    ($($f:ident: $doc:literal),* $(,)?) => {
        /// Plain counters of one core (also the snapshot type).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct Counters {
            $(#[doc = $doc] pub $f: u64,)*
            /// Drops by [`DropReason`] (index = discriminant).
            pub drops: [u64; DropReason::COUNT],
            /// Malformed frames by [`Malformed`] (still switched on L2).
            pub malformed: [u64; Malformed::COUNT],
        }

        /// The published copy of a core's counters.
        #[derive(Default)]
        #[repr(C, align(64))]
        pub struct CoreStats {
            $($f: AtomicU64,)*
            drops: [AtomicU64; DropReason::COUNT],
            malformed: [AtomicU64; Malformed::COUNT],
        }

        impl CoreStats {
            /// Publish (worker side).
            pub fn publish(&self, c: &Counters) {
                $(self.$f.store(c.$f, Relaxed);)*
                for (a, v) in self.drops.iter().zip(&c.drops) { a.store(*v, Relaxed); }
                for (a, v) in self.malformed.iter().zip(&c.malformed) { a.store(*v, Relaxed); }
            }
            /// Read (control side).
            pub fn read(&self) -> Counters {
                let mut c = Counters { $($f: self.$f.load(Relaxed),)* ..Default::default() };
                for (a, v) in self.drops.iter().zip(&mut c.drops) { *v = a.load(Relaxed); }
                for (a, v) in self.malformed.iter().zip(&mut c.malformed) { *v = a.load(Relaxed); }
                c
            }
        }

        impl Counters {
            /// Field-wise sum.
            pub fn add(&mut self, o: &Counters) {
                $(self.$f += o.$f;)*
                for (a, b) in self.drops.iter_mut().zip(&o.drops) { *a += b; }
                for (a, b) in self.malformed.iter_mut().zip(&o.malformed) { *a += b; }
            }
        }
    };
}

counters! {
    rx_packets: "Frames processed.",
    rx_bytes: "Bytes processed.",
    tx_packets: "Frame copies output (a flood to 3 ports counts 3).",
    bursts: "Calls to `process_burst`.",
    busy_cycles: "TSC cycles of the bursts, as the caller measured them (`Datapath::account_cycles`; the DPDK worker: from the end of the previous burst of its polling round, or the round's start, to this burst's tx).",
    cache_hits: "Exact-match cache hits.",
    cache_misses: "Exact-match cache misses (classifier lookups).",
    cache_bypassed: "Lookups sent straight to the classifier (cache bypass engaged).",
    port_only: "Frames decided by the per-port table (rules match in_port only; frames not parsed).",
    classifier_misses: "Classifier lookups that matched no rule.",
    fdb_learned: "MACs learned.",
    fdb_moved: "MACs that moved port.",
    fdb_evicted: "Live MACs evicted because the table was full.",
    flooded: "Frames flooded.",
}

impl Counters {
    /// Total drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// Drop counter for `r`.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    /// Malformed counter for `m`.
    pub fn malformed_count(&self, m: Malformed) -> u64 {
        self.malformed[m as usize]
    }
    /// Cycles per packet (0 when idle).
    pub fn cycles_per_packet(&self) -> f64 {
        if self.rx_packets == 0 {
            0.0
        } else {
            self.busy_cycles as f64 / self.rx_packets as f64
        }
    }
    /// Cache hit rate in [0, 1].
    pub fn cache_hit_rate(&self) -> f64 {
        let t = self.cache_hits + self.cache_misses;
        if t == 0 {
            0.0
        } else {
            self.cache_hits as f64 / t as f64
        }
    }
}

/// Read the time-stamp counter (0 where there is none).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no memory effects and exists on every x86_64 CPU.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}
