//! Cache tests: random request sequences against a model (a byte array),
//! in both modes, with tiny caches and a backend that finishes requests late
//! and out of order; durability at every flush; forged metadata; the real
//! io_uring file backend.

use std::collections::HashMap;

use super::layout::{Entry, ENTRY_LEN, FLAG_VALID};
use super::*;
use crate::backend::file::FileBackend;
use crate::backend::{Backend, BackendInfo, IoCompletion, IoOp, IoRequest, IoStatus, SubmitError};
use crate::iovec::{gather, scatter, IoVec};

/// xorshift64*: deterministic, seedable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A RAM disk that carries out each request at a random later `poll`, in
/// random order (like io_uring or a network target would). Beside the
/// real file backend test below.
struct Laggy {
    data: Vec<u8>,
    queued: Vec<(u64, IoOp, u64, u64, Vec<IoVec>)>,
    done: Vec<IoCompletion>,
    rng: Rng,
    max: usize,
}

impl Laggy {
    fn new(capacity: usize, seed: u64) -> Laggy {
        Laggy {
            data: vec![0; capacity],
            queued: Vec::new(),
            done: Vec::new(),
            rng: Rng(seed | 1),
            max: 16,
        }
    }

    fn run_one(&mut self, k: usize) {
        let (id, op, off, len, iovs) = self.queued.swap_remove(k);
        let (a, b) = (off as usize, (off + len) as usize);
        match op {
            IoOp::Read => assert!(scatter(&iovs, &self.data[a..b])),
            IoOp::Write => assert!(gather(&iovs, &mut self.data[a..b])),
            IoOp::Flush => {}
            IoOp::Discard | IoOp::WriteZeroes { .. } => self.data[a..b].fill(0),
        }
        // Carried out now, reported at a random later poll.
        self.done.push(IoCompletion {
            id,
            status: IoStatus::Ok,
        });
    }
}

impl Backend for Laggy {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            capacity: self.data.len() as u64,
            read_only: false,
            flush: true,
            discard: true,
            write_zeroes: true,
            max_inflight: self.max,
        }
    }
    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.inflight() >= self.max {
            return Err(SubmitError::Busy);
        }
        assert!(req.offset + req.len <= self.data.len() as u64, "{req:?}");
        self.queued
            .push((req.id, req.op, req.offset, req.len, req.iovs.to_vec()));
        Ok(())
    }
    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        // No volatile cache: a completed write is in `data`.
        let n = self.rng.below(self.queued.len() as u64 + 1) as usize;
        for _ in 0..n {
            let k = self.rng.below(self.queued.len() as u64) as usize;
            self.run_one(k);
        }
        let mut m = 0;
        let mut k = 0;
        while k < self.done.len() && out.len() < out.capacity() {
            if self.rng.below(3) == 0 {
                out.push(self.done.swap_remove(k));
                m += 1;
            } else {
                k += 1;
            }
        }
        m
    }
    fn inflight(&self) -> usize {
        self.queued.len() + self.done.len()
    }
}

fn iov(buf: &mut [u8]) -> IoVec {
    // SAFETY: test buffers are kept alive (boxed, in the in-flight map)
    // until their request completes.
    unsafe { IoVec::new(buf.as_mut_ptr(), buf.len() as u32) }
}

struct Pending {
    op: IoOp,
    off: u64,
    len: u64,
    buf: Box<[u8]>,
    iovs: Vec<IoVec>,
    /// For a flush: the model when it was submitted, and the sectors
    /// written since (which it need not have made durable).
    snapshot: Option<(Vec<u8>, Vec<bool>)>,
}

/// The guest side: random requests, several in flight, never two
/// overlapping ones at once (their outcome would be unspecified).
struct Driver {
    model: Vec<u8>,
    rng: Rng,
    next_id: u64,
    inflight: HashMap<u64, Pending>,
    comps: Vec<IoCompletion>,
    reads_checked: u64,
    flushes_checked: u64,
}

impl Driver {
    fn new(capacity: usize, seed: u64) -> Driver {
        Driver {
            model: vec![0; capacity],
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            next_id: 1,
            inflight: HashMap::new(),
            comps: Vec::with_capacity(64),
            reads_checked: 0,
            flushes_checked: 0,
        }
    }

    fn overlaps(&self, off: u64, len: u64) -> bool {
        self.inflight
            .values()
            .any(|p| p.len > 0 && p.off < off + len && off < p.off + p.len)
    }

    /// Builds and submits one random request; false if it did not go in.
    fn issue(&mut self, be: &mut dyn Backend, blocks: u64) -> bool {
        let cap = self.model.len() as u64;
        let kind = self.rng.below(100);
        let op = match kind {
            0..=44 => IoOp::Read,
            45..=86 => IoOp::Write,
            87..=92 => IoOp::Flush,
            93..=96 => IoOp::Discard,
            _ => IoOp::WriteZeroes { unmap: false },
        };
        let (off, len) = if op == IoOp::Flush {
            (0, 0)
        } else if self.rng.below(10) < 7 {
            // Whole, aligned blocks (what a guest page cache sends).
            let b = self.rng.below(blocks);
            let n = 1 + self.rng.below(3.min(blocks - b));
            (b * BLOCK, n * BLOCK)
        } else {
            let sectors = cap / 512;
            let s = self.rng.below(sectors);
            let n = 1 + self.rng.below(20.min(sectors - s));
            (s * 512, n * 512)
        };
        if op != IoOp::Flush && self.overlaps(off, len) {
            return false;
        }
        let mut buf = vec![0u8; len as usize].into_boxed_slice();
        if op == IoOp::Write {
            for b in buf.iter_mut() {
                *b = self.rng.next() as u8;
            }
        } else if op == IoOp::Read {
            buf.fill(0xEE);
        }
        // One to three guest buffers, split anywhere.
        let mut iovs = Vec::new();
        if matches!(op, IoOp::Read | IoOp::Write) {
            let mut cut1 = self.rng.below(len + 1) as usize;
            let mut cut2 = self.rng.below(len + 1) as usize;
            if cut1 > cut2 {
                std::mem::swap(&mut cut1, &mut cut2);
            }
            let (a, rest) = buf.split_at_mut(cut1);
            let (b, c) = rest.split_at_mut(cut2 - cut1);
            for part in [a, b, c] {
                if !part.is_empty() {
                    iovs.push(iov(part));
                }
            }
        }
        let id = self.next_id;
        let req = IoRequest {
            id,
            op,
            offset: off,
            len,
            iovs: &iovs,
        };
        if be.submit(&req).is_err() {
            return false;
        }
        self.next_id += 1;
        // A flush need not cover writes still in flight when it was sent.
        let snapshot = (op == IoOp::Flush).then(|| {
            let mut touched = vec![false; self.model.len() / 512];
            for p in self.inflight.values() {
                if p.op != IoOp::Read && p.op != IoOp::Flush {
                    for s in p.off / 512..(p.off + p.len).div_ceil(512) {
                        touched[s as usize] = true;
                    }
                }
            }
            (self.model.clone(), touched)
        });
        match op {
            IoOp::Write => self.model[off as usize..(off + len) as usize].copy_from_slice(&buf),
            IoOp::Discard | IoOp::WriteZeroes { .. } => {
                self.model[off as usize..(off + len) as usize].fill(0)
            }
            _ => {}
        }
        if matches!(op, IoOp::Write | IoOp::Discard | IoOp::WriteZeroes { .. }) {
            for p in self.inflight.values_mut() {
                if let Some((_, touched)) = p.snapshot.as_mut() {
                    for s in off / 512..(off + len).div_ceil(512) {
                        touched[s as usize] = true;
                    }
                }
            }
        }
        self.inflight.insert(
            id,
            Pending {
                op,
                off,
                len,
                buf,
                iovs,
                snapshot,
            },
        );
        true
    }

    /// Polls once; checks every completion. `durable` is the backend's
    /// storage, for the flush check.
    fn reap(&mut self, be: &mut dyn Backend, durable: impl Fn() -> Vec<u8>) {
        self.comps.clear();
        be.poll(&mut self.comps);
        let comps = std::mem::take(&mut self.comps);
        for c in &comps {
            let p = self
                .inflight
                .remove(&c.id)
                .expect("completion of a known request");
            assert_eq!(c.status, IoStatus::Ok, "{:?} {}+{}", p.op, p.off, p.len);
            let _ = &p.iovs;
            match p.op {
                IoOp::Read => {
                    let want = &self.model[p.off as usize..(p.off + p.len) as usize];
                    assert!(
                        *p.buf == *want,
                        "read {}+{} differs from the model",
                        p.off,
                        p.len
                    );
                    self.reads_checked += 1;
                }
                IoOp::Flush => {
                    let (snap, touched) = p.snapshot.expect("flush has a snapshot");
                    let disk = durable();
                    for (s, t) in touched.iter().enumerate() {
                        let r = s * 512..(s + 1) * 512;
                        assert!(
                            *t || disk[r.clone()] == snap[r],
                            "sector {s}: acknowledged before a completed flush, not in the backend"
                        );
                    }
                    self.flushes_checked += 1;
                }
                _ => {}
            }
        }
        self.comps = comps;
    }
}

/// Runs `ops` random requests with up to 8 in flight through a cache of
/// `slots` slots over a Laggy disk; returns the cache counters.
fn run_model(mode: WriteMode, slots: u64, ways: u32, seed: u64, ops: usize) -> CacheStats {
    run_model_with(mode, slots, ways, seed, ops, Eviction::Clock)
}

/// [`run_model`] with a given eviction policy.
fn run_model_with(
    mode: WriteMode,
    slots: u64,
    ways: u32,
    seed: u64,
    ops: usize,
    eviction: Eviction,
) -> CacheStats {
    let blocks = 48u64;
    // A capacity that is not a whole number of blocks: the tail is never
    // cached.
    let capacity = (blocks * BLOCK + 1536) as usize;
    let laggy = Box::new(Laggy::new(capacity, seed));
    let disk: *const Laggy = &*laggy;
    let mut cfg = CacheConfig::new(slots * BLOCK, mode);
    cfg.ways = ways;
    cfg.hugepages = false;
    cfg.eviction = eviction;
    cfg.dirty_high_pct = 60;
    cfg.max_writebacks = 3;
    // The driver outlives the cache: if a check fails, the cache's drop
    // still finishes backend requests into the driver's buffers.
    let mut d = Driver::new(capacity, seed);
    let mut cache = CachedBackend::new(laggy, cfg).unwrap();
    let counters = cache.counters();
    // SAFETY: `disk` points into the box the cache owns, alive while `cache`
    // is; read only between calls into the cache (single thread).
    let durable = || unsafe { (*disk).data.clone() };
    let mut issued = 0;
    while issued < ops {
        for _ in 0..1 + d.rng.below(4) {
            if d.inflight.len() < 8 && issued < ops && d.issue(&mut cache, blocks) {
                issued += 1;
            }
        }
        cache.commit();
        d.reap(&mut cache, durable);
    }
    // Drain, then one last flush makes everything durable.
    let mut rounds = 0;
    while !d.inflight.is_empty() {
        d.reap(&mut cache, durable);
        rounds += 1;
        assert!(rounds < 100_000, "requests never complete: {:?}", cache);
    }
    let req = IoRequest {
        id: u64::MAX,
        op: IoOp::Flush,
        offset: 0,
        len: 0,
        iovs: &[],
    };
    cache.submit(&req).unwrap();
    cache.commit();
    let mut out = Vec::with_capacity(8);
    while out.is_empty() {
        cache.poll(&mut out);
        rounds += 1;
        assert!(rounds < 200_000, "final flush never completes");
    }
    assert_eq!(out[0].status, IoStatus::Ok);
    assert_eq!(cache.dirty(), 0, "a completed flush left dirty slots");
    assert!(
        durable() == d.model,
        "backend differs from the model after the final flush"
    );
    assert!(d.reads_checked > 0);
    counters.snapshot()
}

#[test]
fn write_through_matches_model() {
    for seed in 1..=6 {
        let s = run_model(WriteMode::WriteThrough, 8, 4, seed, 3000);
        assert!(s.hits > 0 && s.misses > 0 && s.evictions > 0, "{s:?}");
        assert_eq!(s.dirty, 0);
        assert_eq!(s.bad_entries, 0, "{s:?}");
    }
}

#[test]
fn write_back_matches_model() {
    for seed in 1..=6 {
        let s = run_model(WriteMode::WriteBack, 8, 4, seed, 3000);
        assert!(s.hits > 0 && s.evictions > 0 && s.writebacks > 0, "{s:?}");
        assert_eq!(s.bad_entries, 0, "{s:?}");
    }
}

#[test]
fn tiny_caches_both_modes() {
    // One slot; one set of two ways; a direct-mapped cache of 4 sets.
    for (slots, ways) in [(1, 1), (2, 2), (4, 1), (16, 8)] {
        for mode in [WriteMode::WriteThrough, WriteMode::WriteBack] {
            run_model(mode, slots, ways, slots * 31 + ways as u64, 1500);
        }
    }
}

#[test]
fn two_q_matches_model() {
    for seed in 1..=4 {
        for mode in [WriteMode::WriteThrough, WriteMode::WriteBack] {
            let s = run_model_with(mode, 8, 4, seed, 3000, Eviction::TwoQ);
            assert!(s.hits > 0 && s.evictions > 0, "{s:?}");
            assert_eq!(s.bad_entries, 0, "{s:?}");
        }
    }
    for (slots, ways) in [(1, 1), (2, 2), (4, 1), (16, 8)] {
        for mode in [WriteMode::WriteThrough, WriteMode::WriteBack] {
            run_model_with(mode, slots, ways, slots * 37 + 5, 1500, Eviction::TwoQ);
        }
    }
}

#[test]
fn two_q_keeps_a_hot_set_through_a_scan() {
    // 64 slots (8 sets of 8 ways). Warm-up: a hot set of 16 blocks read
    // every round among one-time blocks (so 2Q sees the hot blocks come
    // back after eviction: ghost hits, installed hot). Then a 4096-block
    // scan, then the hot set again: 2Q keeps it, CLOCK loses it.
    let hot_after_scan = |eviction| {
        let mem = crate::backend::mem::MemBackend::new(32 << 20, 4).unwrap();
        let mut cfg = CacheConfig::new(64 * BLOCK, WriteMode::WriteThrough);
        cfg.hugepages = false;
        cfg.eviction = eviction;
        let mut c = CachedBackend::new(Box::new(mem), cfg).unwrap();
        let mut buf = vec![0u8; BLOCK as usize];
        let mut read = |c: &mut CachedBackend, b: u64| {
            assert_eq!(io(c, IoOp::Read, b * BLOCK, &mut buf), IoStatus::Ok);
        };
        let mut fresh = 100u64;
        for _ in 0..8 {
            for b in 0..16u64 {
                read(&mut c, b);
            }
            for _ in 0..32 {
                read(&mut c, fresh);
                fresh += 1;
            }
        }
        for b in 2000..2000 + 4096u64 {
            read(&mut c, b);
        }
        let before = c.counters().snapshot().hits;
        for b in 0..16u64 {
            read(&mut c, b);
        }
        c.counters().snapshot().hits - before
    };
    let q = hot_after_scan(Eviction::TwoQ);
    let k = hot_after_scan(Eviction::Clock);
    eprintln!("hot blocks still cached after the scan: 2Q {q}/16, CLOCK {k}/16");
    assert!(q >= 12, "2Q kept {q} of 16 hot blocks through the scan");
    assert!(k < q, "CLOCK kept {k}, 2Q {q}");
}

/// A cache over a mem disk with one block written and read back once.
fn warm(mode: WriteMode) -> (CachedBackend, Vec<u8>) {
    let inner = Box::new(crate::backend::mem::MemBackend::new(64 * BLOCK, 16).unwrap());
    let mut cfg = CacheConfig::new(16 * BLOCK, mode);
    cfg.hugepages = false;
    cfg.ways = 4;
    let mut c = CachedBackend::new(inner, cfg).unwrap();
    let pattern: Vec<u8> = (0..BLOCK as usize).map(|i| (i * 7 + 3) as u8).collect();
    for b in 0..8u64 {
        let mut buf = pattern.clone();
        buf[0] = b as u8;
        io(&mut c, IoOp::Write, b * BLOCK, &mut buf);
    }
    (c, pattern)
}

fn io(c: &mut CachedBackend, op: IoOp, off: u64, buf: &mut [u8]) -> IoStatus {
    let v = [iov(buf)];
    let req = IoRequest {
        id: 7,
        op,
        offset: off,
        len: buf.len() as u64,
        iovs: &v,
    };
    let mut out = Vec::with_capacity(4);
    // Busy (a write-back of the block in flight): poll and retry, as the
    // device does.
    let mut tries = 0;
    while c.submit(&req).is_err() {
        c.poll(&mut out);
        assert!(out.is_empty());
        tries += 1;
        assert!(tries < 1_000_000, "always busy");
        std::thread::yield_now();
    }
    c.commit();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        c.poll(&mut out);
        if let Some(x) = out.first() {
            return x.status;
        }
        std::thread::yield_now();
    }
    panic!("no completion in 10 s");
}

#[test]
fn forged_metadata_is_counted_and_harmless() {
    for mode in [WriteMode::WriteThrough, WriteMode::WriteBack] {
        let (mut c, pattern) = warm(mode);
        let counters = c.counters();
        let mut rng = Rng(99);
        let n = c.table().len();
        let mut expect_bad = 0;
        for round in 0..400 {
            // Forge one entry: a valid checksum pointing somewhere wrong, a
            // bad checksum, an out-of-range slot, or a duplicate of another.
            let i = rng.below(n as u64) as usize;
            let j = rng.below(n as u64) as usize;
            let mut raw = c.table().read_raw(i).unwrap();
            match round % 5 {
                0 => raw[28] ^= 1,
                1 => {
                    let e = Entry {
                        block: rng.below(8),
                        slot_gpa: u64::MAX - 4095,
                        generation: 0,
                        flags: FLAG_VALID,
                    };
                    e.emit(&mut raw);
                }
                2 => raw = c.table().read_raw(j).unwrap(),
                3 => {
                    let mut e = Entry::parse(&raw).unwrap_or(Entry {
                        block: 0,
                        slot_gpa: 0,
                        generation: 0,
                        flags: 0,
                    });
                    e.block = rng.below(8);
                    e.flags = FLAG_VALID;
                    e.generation = e.generation.wrapping_add(1 + rng.below(5) as u32);
                    e.emit(&mut raw);
                }
                _ => {
                    for x in raw.iter_mut() {
                        *x = rng.next() as u8;
                    }
                    raw[..8].copy_from_slice(&rng.below(8).to_le_bytes());
                }
            }
            c.table().write_raw(i, &raw);
            expect_bad += 1;
            // Every block still reads back exactly.
            for b in 0..8u64 {
                let mut buf = vec![0u8; BLOCK as usize];
                assert_eq!(io(&mut c, IoOp::Read, b * BLOCK, &mut buf), IoStatus::Ok);
                assert_eq!(buf[0], b as u8, "round {round} block {b}");
                assert_eq!(&buf[1..], &pattern[1..], "round {round} block {b}");
            }
        }
        let s = counters.snapshot();
        assert!(s.bad_entries > 0, "{s:?}");
        assert!(s.bad_entries <= expect_bad, "{s:?}");
        assert!(s.hits >= 8 * 300, "the cache keeps serving hits: {s:?}");
        // Whole table of garbage: still correct, still no crash.
        for i in 0..n {
            let mut raw = [0u8; ENTRY_LEN];
            for x in raw.iter_mut() {
                *x = rng.next() as u8;
            }
            c.table().write_raw(i, &raw);
        }
        for b in 0..8u64 {
            let mut buf = vec![0u8; BLOCK as usize];
            assert_eq!(io(&mut c, IoOp::Read, b * BLOCK, &mut buf), IoStatus::Ok);
            assert_eq!(buf[0], b as u8);
        }
    }
}

#[test]
fn second_read_is_a_hit() {
    let (mut c, pattern) = warm(WriteMode::WriteThrough);
    let before = c.counters().snapshot();
    let mut buf = vec![0u8; BLOCK as usize];
    assert_eq!(io(&mut c, IoOp::Read, 40 * BLOCK, &mut buf), IoStatus::Ok);
    let mid = c.counters().snapshot();
    assert_eq!(mid.misses, before.misses + 1);
    assert_eq!(io(&mut c, IoOp::Read, 40 * BLOCK, &mut buf), IoStatus::Ok);
    let after = c.counters().snapshot();
    assert_eq!(after.hits, mid.hits + 1);
    assert_eq!(after.misses, mid.misses);
    let _ = pattern;
}

#[test]
fn out_of_range_requests_fail_cleanly() {
    let (mut c, _) = warm(WriteMode::WriteBack);
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        io(&mut c, IoOp::Read, 63 * BLOCK + 512, &mut buf),
        IoStatus::IoErr
    );
    assert_eq!(
        io(&mut c, IoOp::Write, u64::MAX - 511, &mut buf),
        IoStatus::IoErr
    );
}

#[test]
fn write_back_over_the_file_backend() {
    let dir = std::env::temp_dir().join(format!("vswitch-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("disk.img");
    let cap = 256 * BLOCK;
    std::fs::File::create(&path).unwrap().set_len(cap).unwrap();
    let inner = Box::new(FileBackend::open(path.to_str().unwrap(), 32).unwrap());
    let mut cfg = CacheConfig::new(32 * BLOCK, WriteMode::WriteBack);
    cfg.hugepages = false;
    let mut c = CachedBackend::new(inner, cfg).unwrap();
    let mut model = vec![0u8; cap as usize];
    let mut rng = Rng(5);
    for _ in 0..2000 {
        let b = rng.below(256);
        let mut buf = vec![0u8; BLOCK as usize];
        if rng.below(2) == 0 {
            for x in buf.iter_mut() {
                *x = rng.next() as u8;
            }
            model[(b * BLOCK) as usize..((b + 1) * BLOCK) as usize].copy_from_slice(&buf);
            assert_eq!(io(&mut c, IoOp::Write, b * BLOCK, &mut buf), IoStatus::Ok);
        } else {
            assert_eq!(io(&mut c, IoOp::Read, b * BLOCK, &mut buf), IoStatus::Ok);
            assert!(buf[..] == model[(b * BLOCK) as usize..((b + 1) * BLOCK) as usize]);
        }
    }
    assert_eq!(io(&mut c, IoOp::Flush, 0, &mut []), IoStatus::Ok);
    let s = c.counters().snapshot();
    assert!(s.writebacks > 0 && s.evictions > 0 && s.hits > 0, "{s:?}");
    // Acknowledged, not flushed: a clean stop (drop) still writes them back.
    for b in 0..8u64 {
        let mut buf = vec![b as u8 ^ 0x5A; BLOCK as usize];
        model[(b * BLOCK) as usize..((b + 1) * BLOCK) as usize].copy_from_slice(&buf);
        assert_eq!(io(&mut c, IoOp::Write, b * BLOCK, &mut buf), IoStatus::Ok);
    }
    assert!(c.dirty() > 0);
    drop(c);
    assert!(std::fs::read(&path).unwrap() == model, "file after flush");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flusher_keeps_dirty_under_the_high_water_mark() {
    let inner = Box::new(crate::backend::mem::MemBackend::new(256 * BLOCK, 32).unwrap());
    let mut cfg = CacheConfig::new(64 * BLOCK, WriteMode::WriteBack);
    cfg.hugepages = false;
    cfg.dirty_high_pct = 25;
    let mut c = CachedBackend::new(inner, cfg).unwrap();
    let high = c.slots() / 4;
    let mut buf = vec![0xA5u8; BLOCK as usize];
    for b in 0..48u64 {
        assert_eq!(io(&mut c, IoOp::Write, b * BLOCK, &mut buf), IoStatus::Ok);
        // One write completes per `io`, each followed by polls: the flusher
        // never lets dirty run more than a write past the mark.
        assert!(
            c.dirty() <= high + 1,
            "dirty {} > high-water {high}",
            c.dirty()
        );
    }
    let mut out = Vec::with_capacity(4);
    for _ in 0..100 {
        c.poll(&mut out);
    }
    let s = c.counters().snapshot();
    assert!(c.dirty() <= high, "dirty {} after idle polls", c.dirty());
    assert!(s.writebacks as usize >= 48 - high, "{s:?}");
    assert_eq!(s.dirty as usize, c.dirty());
}

#[test]
fn relocated_slot_window_keeps_serving_hits() {
    let (mut c, pattern) = warm(WriteMode::WriteBack);
    let before = c.counters().snapshot();
    let new_base = (1u64 << 41) + 0x20_0000;
    c.relocate(new_base).unwrap();
    assert_eq!(c.table().header().unwrap().slot_gpa_base, new_base);
    for b in 0..8u64 {
        let mut buf = vec![0u8; BLOCK as usize];
        assert_eq!(io(&mut c, IoOp::Read, b * BLOCK, &mut buf), IoStatus::Ok);
        assert_eq!(buf[0], b as u8);
        assert_eq!(&buf[1..], &pattern[1..]);
    }
    let after = c.counters().snapshot();
    assert_eq!(after.bad_entries, before.bad_entries, "entries rewritten");
    assert!(after.hits >= before.hits + 7, "{after:?}");
    // Every valid entry names a slot inside the new window.
    for i in 0..c.table().len() {
        let e = Entry::parse(&c.table().read_raw(i).unwrap()).unwrap();
        if e.flags & FLAG_VALID != 0 {
            assert_eq!(e.slot_gpa, new_base + i as u64 * BLOCK);
        }
    }
    // A window wrapping the address space is refused.
    assert!(c.relocate(u64::MAX - BLOCK).is_err());
}
