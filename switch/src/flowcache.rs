//! Per-core exact-match flow cache in front of the classifier.
//!
//! OVS-DPDK's EMC has 8192 entries and thrashes beyond that; this cache is
//! sized for a million flows per core. Layout: buckets of one cache line
//! holding a generation, a valid bitmap, 7 signatures (high 32 bits of the
//! key hash) and 7 rule indices; the full keys live in a parallel array and
//! are compared only on a signature hit. Each key has a "home" way derived
//! from its hash, used whenever free, so a lookup's two lines (bucket and
//! home key) are both known from the hash and prefetched together for the
//! whole burst before any lookup.
//!
//! Invalidation: every bucket carries the generation (the datapath's name
//! for a table version) it was last filled or revalidated under; a bucket
//! from another generation reads as a miss. The datapath then either
//! revalidates it ([`FlowCache::revalidate`]: entries no change since its
//! generation can affect are kept, the rest dropped, the bucket moves to
//! the current generation) or lets the next insert reset it. A rule change
//! therefore costs nothing up front (no sweep, no stop-the-world).

use crate::key::FlowKey;

const WAYS: usize = 7;

/// Cached result meaning "no rule matched".
pub const NO_RULE: u32 = u32::MAX;

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    gen: u32,
    valid: u32,
    sig: [u32; WAYS],
    rule: [u32; WAYS],
}

/// The cache.
pub struct FlowCache {
    buckets: Vec<Bucket>,
    keys: Vec<FlowKey>,
    mask: usize,
}

impl FlowCache {
    /// A cache of at least `entries` entries (rounded up to a power of two
    /// number of 7-way buckets). Memory: about 73 bytes per entry, backed
    /// by transparent huge pages where the kernel allows (`madvise` before
    /// first touch) and written once here, so the datapath takes no page
    /// faults later.
    pub fn new(entries: usize) -> FlowCache {
        let n = entries.div_ceil(WAYS).max(1).next_power_of_two();
        FlowCache {
            buckets: huge_vec(n, Bucket::default()),
            keys: huge_vec(n * WAYS, FlowKey::ZERO),
            mask: n - 1,
        }
    }

    /// Capacity in entries.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    #[inline(always)]
    fn index(&self, hash: u64) -> usize {
        (hash as usize) & self.mask
    }

    /// The way a key prefers ("home"): inserts go there when it is free,
    /// so most keys sit at an address computable from the hash alone and
    /// their key line can be fetched in parallel with the bucket line.
    #[inline(always)]
    fn home(hash: u64) -> usize {
        // 8 hash bits the index does not use, scaled to 0..WAYS (multiply-
        // shift instead of a modulo).
        (((hash >> 24) & 0xff) as usize * WAYS) >> 8
    }

    /// Prefetch the bucket of `hash` and the key in its home way: two
    /// independent lines, so the DRAM latencies overlap.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        let i = self.index(hash);
        prefetch(&self.buckets[i]);
        prefetch(&self.keys[i * WAYS + Self::home(hash)]);
    }

    /// The cached rule index for `key` (or [`NO_RULE`]) under table
    /// generation `gen`; `None` on a miss. The home way is checked first.
    #[inline(always)]
    pub fn lookup(&self, key: &FlowKey, hash: u64, gen: u32) -> Option<u32> {
        let i = self.index(hash);
        let b = &self.buckets[i];
        if b.gen != gen {
            return None;
        }
        let sig = (hash >> 32) as u32;
        let h = Self::home(hash);
        if b.valid & (1 << h) != 0 && b.sig[h] == sig && self.keys[i * WAYS + h] == *key {
            return Some(b.rule[h]);
        }
        for w in 0..WAYS {
            if w != h
                && b.valid & (1 << w) != 0
                && b.sig[w] == sig
                && self.keys[i * WAYS + w] == *key
            {
                return Some(b.rule[w]);
            }
        }
        None
    }

    /// The generation of the bucket of `hash`.
    #[inline]
    pub fn bucket_gen(&self, hash: u64) -> u32 {
        self.buckets[self.index(hash)].gen
    }

    /// Bring the bucket of `hash` to generation `gen`, keeping the entries
    /// (key, cached value) for which `keep` holds and dropping the others.
    #[inline]
    pub fn revalidate(&mut self, hash: u64, gen: u32, mut keep: impl FnMut(&FlowKey, u32) -> bool) {
        let i = self.index(hash);
        let b = &mut self.buckets[i];
        let mut m = b.valid;
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            m &= m - 1;
            if !keep(&self.keys[i * WAYS + w], b.rule[w]) {
                b.valid &= !(1 << w);
            }
        }
        b.gen = gen;
    }

    /// Insert `key -> rule` under generation `gen`.
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, hash: u64, gen: u32, rule: u32) {
        let i = self.index(hash);
        let b = &mut self.buckets[i];
        if b.gen != gen {
            b.gen = gen;
            b.valid = 0;
        }
        let free = !b.valid & ((1 << WAYS) - 1);
        let h = Self::home(hash);
        let w = if free & (1 << h) != 0 || free == 0 {
            // Home way when free; when the bucket is full it is also the
            // victim (pseudo-random: hash bits the index did not use).
            h
        } else {
            free.trailing_zeros() as usize
        };
        b.valid |= 1 << w;
        b.sig[w] = (hash >> 32) as u32;
        b.rule[w] = rule;
        self.keys[i * WAYS + w] = *key;
    }
}

/// A vector of `n` copies of `x` whose memory was advised for transparent
/// huge pages before it was first written.
fn huge_vec<T: Clone>(n: usize, x: T) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise_huge_pages(v.as_ptr() as usize, n * core::mem::size_of::<T>());
    v.resize(n, x);
    v
}

/// Ask for transparent huge pages on the 2 MiB-aligned interior of the
/// allocation at `start..start + len`. Advisory only.
fn advise_huge_pages(start: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let end = (start + len) & !(HUGE - 1);
        let first = (start + HUGE - 1) & !(HUGE - 1);
        if end > first {
            // SAFETY: the range lies inside a live allocation of ours;
            // MADV_HUGEPAGE changes only how the kernel backs it, never its
            // contents, and a failure (e.g. THP disabled) is harmless.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

/// Hint the CPU to pull the cache line of `p` into L1.
#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint with no architectural effect; the pointer
    // comes from a live reference, and SSE is baseline on x86_64.
    unsafe {
        core::arch::x86_64::_mm_prefetch(
            p as *const T as *const i8,
            core::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod test {
    use super::*;

    fn key(i: u32) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_nw_dst4(i.to_be_bytes());
        k
    }

    #[test]
    fn hit_miss_and_generation_invalidation() {
        let mut c = FlowCache::new(1024);
        let k = key(1);
        let h = k.hash();
        assert_eq!(c.lookup(&k, h, 1), None);
        c.insert(&k, h, 1, 5);
        assert_eq!(c.lookup(&k, h, 1), Some(5));
        assert_eq!(c.lookup(&key(2), key(2).hash(), 1), None);
        assert_eq!(c.lookup(&k, h, 2), None, "new generation invalidates");
        c.insert(&k, h, 2, NO_RULE);
        assert_eq!(c.lookup(&k, h, 2), Some(NO_RULE));
    }

    #[test]
    fn revalidation_keeps_only_what_it_is_told() {
        let mut c = FlowCache::new(7); // one bucket: every key shares it
        for i in 0..5u32 {
            let k = key(i);
            c.insert(&k, k.hash(), 1, i);
        }
        let h = key(0).hash();
        assert_eq!(c.bucket_gen(h), 1);
        c.revalidate(h, 2, |k, r| {
            assert_eq!(*k, key(r));
            r % 2 == 0
        });
        assert_eq!(c.bucket_gen(h), 2);
        for i in 0..5u32 {
            let k = key(i);
            let want = (i % 2 == 0).then_some(i);
            assert_eq!(c.lookup(&k, k.hash(), 2), want);
            assert_eq!(c.lookup(&k, k.hash(), 1), None);
        }
    }

    #[test]
    fn full_bucket_never_returns_wrong_rule() {
        // Tiny cache: everything collides, victims get replaced, and a hit
        // is always the rule stored for that exact key.
        let mut c = FlowCache::new(7);
        for i in 0..1000u32 {
            let k = key(i);
            c.insert(&k, k.hash(), 1, i);
            for j in 0..=i {
                let kj = key(j);
                if let Some(r) = c.lookup(&kj, kj.hash(), 1) {
                    assert_eq!(r, j);
                }
            }
            assert_eq!(c.lookup(&k, k.hash(), 1), Some(i));
        }
    }

    #[test]
    fn holds_many_flows() {
        let mut c = FlowCache::new(1 << 16);
        for i in 0..40_000u32 {
            let k = key(i);
            c.insert(&k, k.hash(), 1, i);
        }
        let hits = (0..40_000u32)
            .filter(|&i| c.lookup(&key(i), key(i).hash(), 1) == Some(i))
            .count();
        assert!(
            hits > 38_000,
            "only {hits} of 40000 flows cached at 61% load"
        );
    }
}
