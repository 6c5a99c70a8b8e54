//! Cache counters, shared with the management side (`vswitch blk serve`
//! prints and publishes them) through an `Arc`: the poller thread updates
//! them with relaxed stores, readers take a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Blocks served from the cache.
    pub hits: AtomicU64,
    /// Blocks read from the backend.
    pub misses: AtomicU64,
    /// Clean blocks evicted to make room.
    pub evictions: AtomicU64,
    /// Dirty blocks written back to the backend.
    pub writebacks: AtomicU64,
    /// Slots holding data not yet in the backend (gauge).
    pub dirty: AtomicU64,
    /// Metadata entries that failed validation (forged, torn, duplicate,
    /// out of range) and were treated as misses.
    pub bad_entries: AtomicU64,
    /// Flushes completed.
    pub flushes: AtomicU64,
    /// Requests sent to the backend whole (partial blocks, no slot free).
    pub passthrough: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// See [`CacheCounters::hits`].
    pub hits: u64,
    /// See [`CacheCounters::misses`].
    pub misses: u64,
    /// See [`CacheCounters::evictions`].
    pub evictions: u64,
    /// See [`CacheCounters::writebacks`].
    pub writebacks: u64,
    /// See [`CacheCounters::dirty`].
    pub dirty: u64,
    /// See [`CacheCounters::bad_entries`].
    pub bad_entries: u64,
    /// See [`CacheCounters::flushes`].
    pub flushes: u64,
    /// See [`CacheCounters::passthrough`].
    pub passthrough: u64,
}

impl CacheCounters {
    /// Adds `n` to a counter (single writer: a load and a store, no
    /// locked instruction on the hot path).
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Takes a snapshot.
    pub fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            writebacks: self.writebacks.load(Relaxed),
            dirty: self.dirty.load(Relaxed),
            bad_entries: self.bad_entries.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            passthrough: self.passthrough.load(Relaxed),
        }
    }
}

impl CacheStats {
    /// The counters as Prometheus samples (`vswitch_blk_cache_*`).
    pub fn metrics(&self, m: &mut metrics::MetricSet, l: &[(&str, &str)]) {
        let c = [
            (
                "vswitch_blk_cache_hits_total",
                "4 KiB blocks served from the block cache.",
                self.hits,
            ),
            (
                "vswitch_blk_cache_misses_total",
                "4 KiB blocks read from the backend (cache misses).",
                self.misses,
            ),
            (
                "vswitch_blk_cache_evictions_total",
                "Clean blocks evicted from the cache to make room.",
                self.evictions,
            ),
            (
                "vswitch_blk_cache_writebacks_total",
                "Dirty cache blocks written back to the backend.",
                self.writebacks,
            ),
            (
                "vswitch_blk_cache_bad_entries_total",
                "Cache metadata entries in guest memory that failed validation.",
                self.bad_entries,
            ),
            (
                "vswitch_blk_cache_flushes_total",
                "Flushes completed by the cache.",
                self.flushes,
            ),
            (
                "vswitch_blk_cache_passthrough_total",
                "Requests sent to the backend whole (partial blocks, no slot free).",
                self.passthrough,
            ),
        ];
        for (name, help, v) in c {
            m.counter(name, help, l, v);
        }
        m.gauge(
            "vswitch_blk_cache_dirty_blocks",
            "Cache blocks holding data not yet in the backend.",
            l,
            self.dirty,
        );
    }

    /// One JSON object's fields (no braces), for the stats file.
    pub fn json_fields(&self) -> String {
        format!(
            "\"cache_hits\":{},\"cache_misses\":{},\"cache_evictions\":{},\"cache_writebacks\":{},\
             \"cache_dirty\":{},\"cache_bad_entries\":{},\"cache_flushes\":{},\"cache_passthrough\":{}",
            self.hits,
            self.misses,
            self.evictions,
            self.writebacks,
            self.dirty,
            self.bad_entries,
            self.flushes,
            self.passthrough
        )
    }
}
