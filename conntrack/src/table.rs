//! The connection table: `NSHARDS` shards, each a spin lock (`lock.rs`) over its own
//! preallocated connection slab and open-addressing index.
//!
//! ```text
//!  key ──hash (symmetric)──► shard = top 6 bits ──lock──► index (linear probing, 8-byte entries:
//!                                                           hash tag | slot + 1        → a local connection
//!                                                           hash tag | rec + 1 | 1<<31 → a foreign record)
//! ```
//!
//! A connection lives in its *home* shard, the shard of its original key.
//! Because the hash is symmetric, the reply key of an untranslated
//! connection lands on the same shard and bucket: one index entry serves
//! both directions, and a packet of either direction costs one lock, one
//! probe and one key compare. A NAT connection's reply key hashes
//! elsewhere: if it lands in another shard, that shard holds a *foreign
//! record* (the key, the home shard, slot and generation); a reply packet
//! finds the record there, drops that lock and takes the home shard's.
//! Generations (bumped when a slot is freed, readable without the lock)
//! make records of dead connections harmless; they are removed right after
//! the connection, or by the next lookup that meets them.
//!
//! Lock order: a thread holds at most two shard locks only while
//! allocating a NAT tuple; it blocks on the second only if its index is
//! higher, and only tries (bounded) otherwise, so there is no deadlock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::conn::Conn;
use crate::key::Key;
use crate::lock::{SpinGuard, SpinLock};
use crate::mem::{zeroed_slice, Arena, Slab, Zeroable};
use crate::zone::Zones;

/// log2 of the shard count.
pub(crate) const SHARD_BITS: u32 = 6;
/// Shards: enough that two to a few dozen lcores rarely meet on one lock.
pub(crate) const NSHARDS: usize = 1 << SHARD_BITS;

const FOREIGN: u32 = 1 << 31;

/// A shard's slot of a NAT connection's reply key, when it hashes to
/// another shard than the connection's home.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Foreign {
    key: Key,
    slot: u32,
    gen: u32,
    home: u16,
    used: u8,
}

// SAFETY: integers and a Key ([u64; 5]) only; zero is an unused record.
unsafe impl Zeroable for Foreign {}

/// What a shard's lock protects.
pub(crate) struct ShardData {
    /// Atomic so that `Table::prefetch` may read it without the lock
    /// (a hint only); written under the lock. The shard's part of
    /// `Table::idx`.
    idx: Slab<AtomicU64>,
    mask: usize,
    /// The connection slab (the shard's part of `Table::slab`).
    pub conns: Slab<Conn>,
    /// Labels of the slab's connections (read when `Conn::has_label`).
    labels: Box<[u128]>,
    used: u32,
    free: Vec<u32>,
    foreign: Box<[Foreign]>,
    f_used: u32,
    f_free: Vec<u32>,
    /// Connections homed here.
    pub n: u32,
    /// Counters, summed by `stats`.
    pub committed: u64,
    /// Packets found invalid by the protocol trackers.
    pub invalid: u64,
    /// Connections expired.
    pub expired: u64,
    sweep_pos: u32,
}

/// One shard (cache-line aligned so two shards' locks never share a line).
#[repr(align(128))]
pub(crate) struct Shard {
    data: SpinLock<ShardData>,
    /// Generation of each slot; bumped when the slot is freed.
    gens: Box<[AtomicU32]>,
}

/// The lock guard of a shard.
pub(crate) type Guard<'a> = SpinGuard<'a, ShardData>;

/// Where a key was found in a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// Not there.
    None,
    /// A connection homed in this shard; `reply`: the key is its reply key.
    Local { slot: u32, reply: bool },
    /// The reply key of a connection homed in `home`.
    Foreign { home: u16, slot: u32, gen: u32 },
}

/// A foreign record to remove after its connection was removed (done once
/// the home shard's lock is released).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForeignRef {
    shard: u16,
    rec: u32,
    home: u16,
    slot: u32,
    gen: u32,
}

#[inline]
fn tag(h: u64) -> u32 {
    h as u32
}

/// The shard of a hash.
#[inline]
pub(crate) fn shard_of(h: u64) -> usize {
    (h >> (64 - SHARD_BITS)) as usize
}

impl ShardData {
    /// A shard over its index part (a power of two long) and slab.
    fn new(idx: Slab<AtomicU64>, conns: Slab<Conn>) -> ShardData {
        let cap = conns.len();
        debug_assert!(idx.len().is_power_of_two());
        ShardData {
            mask: idx.len() - 1,
            idx,
            conns,
            labels: vec![0u128; cap].into_boxed_slice(),
            used: 0,
            free: Vec::with_capacity(cap),
            foreign: zeroed_slice(cap),
            f_used: 0,
            f_free: Vec::with_capacity(cap),
            n: 0,
            committed: 0,
            invalid: 0,
            expired: 0,
            sweep_pos: 0,
        }
    }

    /// Find `key` (hash `h`). Foreign records of dead connections met on
    /// the way are removed.
    #[inline]
    pub(crate) fn find(&mut self, key: &Key, h: u64, shards: &[Shard]) -> Found {
        let t = tag(h);
        let mut i = t as usize & self.mask;
        loop {
            let e = self.ix(i);
            if e == 0 {
                return Found::None;
            }
            if (e >> 32) as u32 == t {
                let r = e as u32;
                if r & FOREIGN == 0 {
                    let c = &self.conns[(r - 1) as usize];
                    if c.keys[0] == *key {
                        return Found::Local {
                            slot: r - 1,
                            reply: false,
                        };
                    }
                    if c.keys[1] == *key {
                        return Found::Local {
                            slot: r - 1,
                            reply: true,
                        };
                    }
                } else {
                    let rec = (r & !FOREIGN) - 1;
                    let f = self.foreign[rec as usize];
                    if f.key == *key {
                        let live = shards[f.home as usize].gens[f.slot as usize]
                            .load(Ordering::Acquire)
                            == f.gen;
                        if live {
                            return Found::Foreign {
                                home: f.home,
                                slot: f.slot,
                                gen: f.gen,
                            };
                        }
                        self.remove_entry(h, r);
                        self.free_foreign(rec);
                        return self.find(key, h, shards);
                    }
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The label of connection `slot`.
    #[inline]
    pub(crate) fn label(&self, slot: u32) -> u128 {
        if self.conns[slot as usize].has_label == 0 {
            0
        } else {
            self.labels[slot as usize]
        }
    }

    /// Set the label of connection `slot`.
    pub(crate) fn set_label(&mut self, slot: u32, v: u128) {
        self.labels[slot as usize] = v;
        self.conns[slot as usize].has_label = u8::from(v != 0);
    }

    fn insert_entry(&mut self, h: u64, r: u32) {
        let mut i = tag(h) as usize & self.mask;
        while self.ix(i) != 0 {
            i = (i + 1) & self.mask;
        }
        self.set_ix(i, (tag(h) as u64) << 32 | r as u64);
    }

    /// Remove the entry (h, r) by backward shifting (linear probing keeps
    /// no tombstones).
    fn remove_entry(&mut self, h: u64, r: u32) {
        let want = (tag(h) as u64) << 32 | r as u64;
        let mut i = tag(h) as usize & self.mask;
        loop {
            let e = self.ix(i);
            if e == 0 {
                debug_assert!(false, "index entry not found");
                return;
            }
            if e == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let e = self.ix(j);
            if e == 0 {
                break;
            }
            let k = (e >> 32) as usize & self.mask;
            // The entry at j may fill the hole unless its home bucket k
            // lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < k && k <= j
            } else {
                hole < k || k <= j
            };
            if !stays {
                self.set_ix(hole, e);
                hole = j;
            }
        }
        self.set_ix(hole, 0);
    }

    /// Index entry `i`.
    #[inline(always)]
    fn ix(&self, i: usize) -> u64 {
        self.idx[i].load(Ordering::Relaxed)
    }

    /// Set index entry `i` (under the shard's lock).
    #[inline(always)]
    fn set_ix(&self, i: usize, e: u64) {
        self.idx[i].store(e, Ordering::Relaxed)
    }

    fn alloc_slot(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        if (self.used as usize) < self.conns.len() {
            self.used += 1;
            return Some(self.used - 1);
        }
        None
    }

    fn alloc_foreign(&mut self) -> Option<u32> {
        if let Some(s) = self.f_free.pop() {
            return Some(s);
        }
        if (self.f_used as usize) < self.foreign.len() {
            self.f_used += 1;
            return Some(self.f_used - 1);
        }
        None
    }

    fn free_foreign(&mut self, rec: u32) {
        self.foreign[rec as usize].used = 0;
        self.f_free.push(rec);
    }
}

/// The sharded table.
pub(crate) struct Table {
    /// Dropped before the arenas their slabs point into.
    shards: Box<[Shard]>,
    /// Every shard's index, `idx_per` entries each (huge pages: read at
    /// random places).
    idx: Arena<AtomicU64>,
    idx_per: usize,
    /// Every shard's connection slab, `cap` slots each.
    slab: Arena<Conn>,
    cap: usize,
    /// Hash seed (random per table).
    pub seed: [u64; 4],
    /// Connections in all shards.
    total: AtomicU64,
    max: u64,
    /// Per-zone counts and limits.
    pub zones: Zones,
    sweep_shard: AtomicU32,
}

/// Why a connection could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The zone is at its limit.
    Zone,
    /// The table (or this shard's slab) is full.
    Full,
}

fn random_seed() -> [u64; 4] {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let s = RandomState::new();
    let mut out = [0u64; 4];
    for (i, o) in out.iter_mut().enumerate() {
        let mut h = s.build_hasher();
        h.write_usize(i);
        *o = h.finish() | 1;
    }
    out
}

impl Table {
    /// Room for `max` connections.
    pub(crate) fn new(max: u32, default_zone_limit: u32) -> Table {
        // Per-shard slabs hold 1.25× the even share plus slack: hashing
        // spreads connections within a few standard deviations of even.
        let per = (max as u64).div_ceil(NSHARDS as u64);
        let cap = (per + per / 4 + 64).min(u32::MAX as u64 / 2) as u32;
        // Entries: up to two local per connection plus foreign records;
        // the index stays at most 3/4 full, usually under 1/4.
        let idx_per = (4 * cap as usize).next_power_of_two().max(64);
        let idx = Arena::new(NSHARDS * idx_per, true);
        let slab = Arena::new(NSHARDS * cap as usize, false);
        // SAFETY: each arena is cut once; the slabs live in the shards,
        // which the table drops before the arenas (field order).
        let (idxs, slabs) = unsafe {
            (
                idx.slabs(NSHARDS, idx_per),
                slab.slabs(NSHARDS, cap as usize),
            )
        };
        let shards = idxs
            .into_iter()
            .zip(slabs)
            .map(|(i, c)| Shard {
                data: SpinLock::new(ShardData::new(i, c)),
                gens: zeroed_slice(cap as usize),
            })
            .collect();
        Table {
            shards,
            idx,
            idx_per,
            slab,
            cap: cap as usize,
            seed: random_seed(),
            total: AtomicU64::new(0),
            max: max as u64,
            zones: Zones::new(default_zone_limit),
            sweep_shard: AtomicU32::new(0),
        }
    }

    /// The hash of a key.
    #[inline]
    pub(crate) fn hash(&self, k: &Key) -> u64 {
        k.hash(&self.seed)
    }

    /// Start loading what looking up hash `h` reads first: its shard's
    /// lock and its index bucket.
    #[inline(always)]
    pub(crate) fn prefetch_bucket(&self, h: u64) {
        let si = shard_of(h);
        prefetch(&self.shards[si] as *const Shard as usize);
        let i = si * self.idx_per + (tag(h) as usize & (self.idx_per - 1));
        prefetch(self.idx.base() as usize + i * 8);
    }

    /// Start loading the connection hash `h` probably names: the first
    /// local entry with its tag in the bucket's line (read without the
    /// lock: a hint, the locked lookup decides).
    #[inline(always)]
    pub(crate) fn prefetch(&self, h: u64) {
        let si = shard_of(h);
        let t = tag(h);
        let mask = self.idx_per - 1;
        let mut i = t as usize & mask;
        for _ in 0..4 {
            // SAFETY: si * idx_per + i < NSHARDS * idx_per: inside the
            // index arena; an atomic load (the locked writers store
            // atomically).
            let e =
                unsafe { (*self.idx.base().add(si * self.idx_per + i)).load(Ordering::Relaxed) };
            if e == 0 {
                return;
            }
            let r = e as u32;
            if (e >> 32) as u32 == t && r & FOREIGN == 0 {
                let slot = si * self.cap + (r & !FOREIGN) as usize - 1;
                let c = self.slab.base() as usize + slot * std::mem::size_of::<Conn>();
                prefetch(c);
                prefetch(c + 64);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Lock shard `i`.
    #[inline]
    pub(crate) fn lock(&self, i: usize) -> Guard<'_> {
        self.shards[i].data.lock()
    }

    /// All shards (for generation checks).
    #[inline]
    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Whether slot `slot` of shard `home` still has generation `gen`.
    #[inline]
    pub(crate) fn gen_is(&self, home: usize, slot: u32, gen: u32) -> bool {
        self.shards[home].gens[slot as usize].load(Ordering::Acquire) == gen
    }

    /// Current generation of a slot.
    #[inline]
    pub(crate) fn gen(&self, home: usize, slot: u32) -> u32 {
        self.shards[home].gens[slot as usize].load(Ordering::Acquire)
    }

    /// Connections in the table.
    pub(crate) fn len(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Reserve room for one connection of `zone` (the table limit and the
    /// zone limit); undone by `unreserve` or by removing the connection.
    pub(crate) fn reserve(&self, zone: u16) -> Result<(), Refused> {
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        if !self.zones.acquire(zone) {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Zone);
        }
        Ok(())
    }

    /// Undo `reserve`.
    pub(crate) fn unreserve(&self, zone: u16) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        self.zones.release(zone);
    }

    /// Take a free slot in the locked shard `g` (its generation is the
    /// slot's current one).
    pub(crate) fn alloc(&self, g: &mut ShardData) -> Option<u32> {
        g.alloc_slot()
    }

    /// Give back a slot taken by `alloc` and never published.
    pub(crate) fn unalloc(&self, g: &mut ShardData, slot: u32) {
        g.conns[slot as usize].alive = 0;
        g.free.push(slot);
    }

    /// Publish connection `slot` (already initialized, keys set) of shard
    /// `home`: the index entry of its original key, and of its reply key
    /// when that is not the reverse of the original. `rev_shard`: where
    /// the caller already added the reply key's foreign record, if it
    /// hashes to another shard (see `reserve_foreign`).
    pub(crate) fn publish(&self, g: &mut ShardData, slot: u32, h0: u64, h1: Option<u64>) {
        g.insert_entry(h0, slot + 1);
        if let Some(h1) = h1 {
            g.insert_entry(h1, slot + 1);
            g.conns[slot as usize].rev_local = 1;
        }
        g.n += 1;
        g.committed += 1;
    }

    /// Add, in the locked shard `b` (index `bi`), the foreign record of a
    /// NAT connection's reply key `key` (hash `h`) homed in slot `slot` of
    /// shard `home`. None if `b`'s records are exhausted.
    pub(crate) fn add_foreign(
        &self,
        b: &mut ShardData,
        key: Key,
        h: u64,
        home: usize,
        slot: u32,
    ) -> Option<u32> {
        let rec = b.alloc_foreign()?;
        b.foreign[rec as usize] = Foreign {
            key,
            slot,
            gen: self.gen(home, slot),
            home: home as u16,
            used: 1,
        };
        b.insert_entry(h, (rec + 1) | FOREIGN);
        Some(rec)
    }

    /// Lock shard `b` while holding shard `held`'s lock: blocks only in
    /// ascending order, else tries a bounded number of times (None:
    /// contended; the caller treats the candidate as taken).
    pub(crate) fn lock_second(&self, held: usize, b: usize) -> Option<Guard<'_>> {
        debug_assert_ne!(held, b);
        if b > held {
            return Some(self.lock(b));
        }
        for _ in 0..256 {
            match self.shards[b].data.try_lock() {
                Some(g) => return Some(g),
                None => std::hint::spin_loop(),
            }
        }
        None
    }

    /// Remove connection `slot` from its locked home shard `g` (index
    /// `home`). Returns the foreign record to remove once `g` is released.
    pub(crate) fn remove(&self, g: &mut ShardData, home: usize, slot: u32) -> Option<ForeignRef> {
        let c = g.conns[slot as usize];
        debug_assert_eq!(c.alive, 1);
        g.remove_entry(self.hash(&c.keys[0]), slot + 1);
        if c.rev_local != 0 {
            g.remove_entry(self.hash(&c.keys[1]), slot + 1);
        }
        let gens = &self.shards[home].gens[slot as usize];
        let gen = gens.load(Ordering::Relaxed);
        let fr = (c.foreign != 0).then(|| ForeignRef {
            shard: c.foreign_shard,
            rec: c.foreign - 1,
            home: home as u16,
            slot,
            gen,
        });
        gens.store(gen.wrapping_add(1), Ordering::Release);
        g.conns[slot as usize].alive = 0;
        g.free.push(slot);
        g.n -= 1;
        self.unreserve(c.keys[0].zone());
        fr
    }

    /// Remove a dead connection's foreign record (no shard lock held).
    pub(crate) fn clean_foreign(&self, fr: ForeignRef) {
        let mut b = self.lock(fr.shard as usize);
        let f = b.foreign[fr.rec as usize];
        if f.used == 1 && f.home == fr.home && f.slot == fr.slot && f.gen == fr.gen {
            b.remove_entry(self.hash(&f.key), (fr.rec + 1) | FOREIGN);
            b.free_foreign(fr.rec);
        }
    }

    /// Expire up to `budget` connections idle past `now`; visits each slot
    /// at most once per call, holding one shard's lock for at most 64
    /// slots at a time.
    pub(crate) fn sweep(&self, now: u64, budget: usize) -> usize {
        const CHUNK: u32 = 64;
        let mut done = 0;
        let mut pending: Vec<ForeignRef> = Vec::new();
        let start = self.sweep_shard.load(Ordering::Relaxed) as usize % NSHARDS;
        for k in 0..NSHARDS {
            if done >= budget {
                break;
            }
            let si = (start + k) % NSHARDS;
            let mut scanned = 0u32;
            loop {
                let mut g = self.lock(si);
                let used = g.used;
                if used == 0 || scanned >= used {
                    break;
                }
                let mut pos = g.sweep_pos % used;
                let end_scan = (scanned + CHUNK).min(used);
                while scanned < end_scan && done < budget {
                    let c = &g.conns[pos as usize];
                    if c.alive == 1 && c.expires <= now {
                        if let Some(fr) = self.remove(&mut g, si, pos) {
                            pending.push(fr);
                        }
                        g.expired += 1;
                        done += 1;
                    }
                    pos = (pos + 1) % used;
                    scanned += 1;
                }
                g.sweep_pos = pos;
                drop(g);
                for fr in pending.drain(..) {
                    self.clean_foreign(fr);
                }
                if done >= budget {
                    self.sweep_shard.store(si as u32, Ordering::Relaxed);
                    return done;
                }
            }
        }
        self.sweep_shard
            .store(((start + 1) % NSHARDS) as u32, Ordering::Relaxed);
        done
    }

    /// Call `f` on every live connection (of `zone`, if given), with its
    /// label; holds a shard's lock for at most `CHUNK` slots at a time.
    pub(crate) fn for_each(&self, zone: Option<u16>, mut f: impl FnMut(&Conn, u128)) {
        const CHUNK: u32 = 256;
        for si in 0..NSHARDS {
            let mut start = 0;
            loop {
                let g = self.lock(si);
                let end = g.used.min(start + CHUNK);
                for slot in start..end {
                    let c = &g.conns[slot as usize];
                    if c.alive == 1 && in_zone(zone, c) {
                        f(c, g.label(slot));
                    }
                }
                if end >= g.used {
                    break;
                }
                start = end;
            }
        }
    }

    /// Remove every connection (of `zone`, if given); returns how many.
    /// Holds a shard's lock for at most `CHUNK` slots at a time.
    pub(crate) fn flush(&self, zone: Option<u16>) -> usize {
        const CHUNK: u32 = 256;
        let mut n = 0;
        let mut pending = Vec::new();
        for si in 0..NSHARDS {
            let mut start = 0;
            loop {
                let mut g = self.lock(si);
                let end = g.used.min(start + CHUNK);
                for slot in start..end {
                    let c = &g.conns[slot as usize];
                    if c.alive == 1 && in_zone(zone, c) {
                        pending.extend(self.remove(&mut g, si, slot));
                        n += 1;
                    }
                }
                let more = end < g.used;
                drop(g);
                for fr in pending.drain(..) {
                    self.clean_foreign(fr);
                }
                if !more {
                    break;
                }
                start = end;
            }
        }
        n
    }

    /// Sum of the per-shard counters: (committed, invalid, expired).
    pub(crate) fn counters(&self) -> (u64, u64, u64) {
        let mut s = (0, 0, 0);
        for si in 0..NSHARDS {
            let g = self.lock(si);
            s.0 += g.committed;
            s.1 += g.invalid;
            s.2 += g.expired;
        }
        s
    }
}

/// Ask the CPU to start loading the cache line at `addr` (a hint: no
/// access happens, any address is allowed).
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and has no architectural effect.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(addr as *const i8, _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[inline]
fn in_zone(zone: Option<u16>, c: &Conn) -> bool {
    match zone {
        None => true,
        Some(z) => c.keys[0].zone() == z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ShardData {
        fn contains(&self, h: u64, r: u32) -> bool {
            let want = (tag(h) as u64) << 32 | r as u64;
            let mut i = tag(h) as usize & self.mask;
            while self.ix(i) != 0 {
                if self.ix(i) == want {
                    return true;
                }
                i = (i + 1) & self.mask;
            }
            false
        }
    }

    #[test]
    fn test_index_backward_shift_keeps_chains() {
        let t = Table::new(16, 0);
        let mut s = t.lock(0);
        let mask = s.mask as u64;
        // Clusters around the end of the table (wrapping) and in the middle.
        let hashes: Vec<u64> = (0..40u64)
            .map(|i| (mask - 2 + (i % 5)) & mask | (i << 20))
            .collect();
        for (i, h) in hashes.iter().enumerate() {
            s.insert_entry(*h, i as u32 + 1);
        }
        for (i, h) in hashes.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            s.remove_entry(*h, i as u32 + 1);
        }
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(s.contains(*h, i as u32 + 1), i % 3 != 0, "entry {i}");
        }
        for (i, h) in hashes.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            s.remove_entry(*h, i as u32 + 1);
        }
        assert!((0..=s.mask).all(|i| s.ix(i) == 0));
    }

    #[test]
    fn test_slab_exhaustion_and_reuse() {
        let t = Table::new(64, 0);
        let mut g = t.lock(0);
        let cap = g.conns.len();
        let slots: Vec<u32> = (0..cap).map(|_| t.alloc(&mut g).unwrap()).collect();
        assert!(t.alloc(&mut g).is_none());
        t.unalloc(&mut g, slots[3]);
        assert_eq!(t.alloc(&mut g), Some(slots[3]));
    }
}
