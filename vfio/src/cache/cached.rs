//! [`CachedBackend`]: the cache as a [`Backend`] wrapping another one.
//!
//! Per request (blocks are [`BLOCK`] bytes of the virtual disk):
//! * read, every block a validated hit: copied from the slots into the
//!   guest buffers, completed at the next `poll` without touching the
//!   backend;
//! * read with a miss: the whole range is read by the backend into the
//!   guest buffers; on completion every block still cached is copied over
//!   it (a dirty block is newer than the backend) and every whole block not
//!   cached is installed in a slot (fill);
//! * write: whole blocks go to their slot (allocated on write), partial
//!   blocks patch a cached slot. Write-through sends the request on to the
//!   backend and completes when it does; write-back completes at once and
//!   marks the slots dirty, unless part of the request could not be cached
//!   (a partial block not cached, no slot free), in which case it is sent on
//!   whole;
//! * discard / write-zeroes: wholly covered slots are dropped, partly
//!   covered ones zeroed, then the request goes on to the backend;
//! * flush: write-through sends it on. Write-back queues it; it completes
//!   after every slot dirty when it arrived has been written back and a
//!   backend flush after that has completed (virtio 1.2 §5.2.6.1: "the
//!   device MUST NOT ... complete VIRTIO_BLK_T_FLUSH ... before ... data
//!   [of completed writes] is committed to non-volatile storage").
//!
//! Ordering rule: an operation that changes slot contents or reads the
//! backend on the cache's behalf (write, discard, missed read, write-back)
//! does not start while a backend operation on an overlapping block range is
//! in flight; `submit` says `Busy` instead and the device retries. Hits never
//! wait. So a slot is never modified while the backend reads it, a fill
//! never installs data older than a write, and a dirty block is never
//! evicted under a read that still needs its data.
//!
//! The flusher runs from `poll`: it writes back dirty slots while the dirty
//! count is above the high-water mark (down to half of it) or a flush
//! waits, at most `max_writebacks` at a time.
//!
//! The hot path allocates nothing: operation records, completion queues
//! and pending flushes are preallocated.

use std::collections::VecDeque;
use std::ptr;
use std::sync::Arc;

use super::layout::{Entry, Header, MetaTable, FLAG_DIRTY, FLAG_VALID};
use super::mapping::{SharedRegion, SlotMap};
use super::policy::{Choice, Clock, WayState};
use super::stats::CacheCounters;
use super::twoq::TwoQ;
use crate::backend::{Backend, BackendInfo, IoCompletion, IoOp, IoRequest, IoStatus, SubmitError};
use crate::iovec::IoVec;

/// Cache block and slot size in bytes.
pub const BLOCK: u64 = 4096;

/// Default first physical address of slot 0: a window above any guest RAM
/// we serve (1 TiB), reserved for the cache.
pub const DEFAULT_SLOT_GPA_BASE: u64 = 1 << 40;

const NONE: u64 = u64::MAX;
/// Pending flushes (write-back); more get `Busy`.
const MAX_PENDING_FLUSHES: usize = 32;
/// Ring of per-epoch dirty counters; must exceed `MAX_PENDING_FLUSHES + 1`.
const EPOCHS: usize = 64;
/// Slots the flusher inspects per `poll`.
const SWEEP_BUDGET: usize = 4096;

/// When writes reach the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Every write goes to the backend before it completes.
    WriteThrough,
    /// Writes complete once in the cache; written back later, and by FLUSH.
    WriteBack,
}

/// How a set picks the way to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// CLOCK, second chance ([`super::policy`]).
    Clock,
    /// 2Q: scan-resistant ([`super::twoq`]).
    TwoQ,
}

/// Cache parameters.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Pool bytes (rounded down to whole sets of [`BLOCK`]-byte slots).
    pub size: u64,
    /// Write policy.
    pub mode: WriteMode,
    /// Ways per set (1..=64).
    pub ways: u32,
    /// Dirty slots, in percent of all slots, above which the flusher runs.
    pub dirty_high_pct: u32,
    /// Write-backs in flight at most.
    pub max_writebacks: usize,
    /// First physical address of slot 0.
    pub slot_gpa_base: u64,
    /// Try hugepages for the pool.
    pub hugepages: bool,
    /// Eviction policy.
    pub eviction: Eviction,
}

impl CacheConfig {
    /// Defaults for a pool of `size` bytes.
    pub fn new(size: u64, mode: WriteMode) -> CacheConfig {
        CacheConfig {
            size,
            mode,
            ways: 8,
            dirty_high_pct: 50,
            max_writebacks: 32,
            slot_gpa_base: DEFAULT_SLOT_GPA_BASE,
            hugepages: true,
            eviction: Eviction::Clock,
        }
    }
}

/// Host-private state of one slot: the authority every guest-visible
/// entry is checked against.
#[derive(Debug, Clone, Copy)]
struct Slot {
    owner: u64,
    generation: u32,
    dirty: bool,
    writeback: bool,
    referenced: bool,
    epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Free,
    /// A guest request sent on as is.
    Guest {
        id: u64,
        op: IoOp,
    },
    /// A guest read that missed.
    ReadMiss {
        id: u64,
    },
    /// Write-back of a slot.
    Writeback {
        slot: u32,
    },
    /// The backend flush of the head pending flush.
    Flush,
}

#[derive(Debug)]
struct Op {
    kind: OpKind,
    offset: u64,
    len: u64,
    first: u64,
    last: u64,
    /// Index in `active`.
    pos: usize,
    iovs: Vec<IoVec>,
    wb_iov: [IoVec; 1],
}

#[derive(Debug, Clone, Copy)]
struct PendingFlush {
    id: u64,
    epoch: u64,
    sent: bool,
}

/// A block cache in front of another backend.
pub struct CachedBackend {
    inner: Box<dyn Backend>,
    info: BackendInfo,
    mode: WriteMode,
    // Geometry.
    ways: usize,
    sets: u64,
    slots_n: usize,
    nblocks: u64,
    slot_gpa_base: u64,
    // Metadata in guest-shared memory, its host-private shadow, the pool.
    table: MetaTable,
    shadow: Vec<Slot>,
    map: SlotMap,
    clock: Clock,
    twoq: Option<TwoQ>,
    // Backend operations.
    ops: Vec<Op>,
    free_ops: Vec<u32>,
    active: Vec<(u64, u64, u32)>,
    inner_max: usize,
    inner_done: Vec<IoCompletion>,
    writebacks: usize,
    max_writebacks: usize,
    wb_failed: bool,
    /// Backend requests submitted since the last backend `commit`.
    uncommitted: bool,
    // Guest requests.
    done: VecDeque<IoCompletion>,
    guest_inflight: usize,
    max_inflight: usize,
    // Dirty tracking and flush.
    dirty: usize,
    dirty_high: usize,
    flushing_down: bool,
    epoch: u64,
    done_epoch: u64,
    dirty_by_epoch: [u64; EPOCHS],
    pending: VecDeque<PendingFlush>,
    sweep: usize,
    wb_pick: [u32; 64],
    counters: Arc<CacheCounters>,
    // Last: the mappings outlive everything pointing into them.
    meta: SharedRegion,
    pool: SharedRegion,
}

impl std::fmt::Debug for CachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBackend")
            .field("mode", &self.mode)
            .field("slots", &self.slots_n)
            .field("ways", &self.ways)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl CachedBackend {
    /// Builds a cache of `cfg.size` bytes in front of `inner`, its
    /// metadata table in an anonymous shared memfd.
    pub fn new(inner: Box<dyn Backend>, cfg: CacheConfig) -> Result<CachedBackend, String> {
        Self::build(inner, cfg, None)
    }

    /// Builds a cache whose metadata table lives in the file `meta` (on
    /// /dev/shm or hugetlbfs), for QEMU to map into the guest with
    /// [`mapping::qemu_ivshmem_args`](super::mapping::qemu_ivshmem_args):
    /// the table is then in VM memory, at the start of the ivshmem device's
    /// BAR 2. The file is (re)initialised: header, then empty entries.
    pub fn with_meta_file(
        inner: Box<dyn Backend>,
        cfg: CacheConfig,
        meta: &std::path::Path,
    ) -> Result<CachedBackend, String> {
        Self::build(inner, cfg, Some(meta))
    }

    fn build(
        inner: Box<dyn Backend>,
        cfg: CacheConfig,
        meta_file: Option<&std::path::Path>,
    ) -> Result<CachedBackend, String> {
        let info = inner.info();
        let ways = cfg.ways.clamp(1, 64) as usize;
        let slots_wanted = (cfg.size / BLOCK) as usize;
        if slots_wanted < ways {
            return Err(format!(
                "cache size {}: need at least {} blocks of {BLOCK} bytes",
                cfg.size, ways
            ));
        }
        // Any set count: `set_of` maps a hash onto it by multiply-shift.
        let sets = slots_wanted / ways;
        let slots_n = sets * ways;
        let hdr = Header {
            ways: ways as u32,
            sets: u32::try_from(sets).map_err(|_| "cache too large".to_string())?,
            block_size: BLOCK as u32,
            slot_gpa_base: cfg.slot_gpa_base,
        };
        let pool_len = slots_n * BLOCK as usize;
        let pool = SharedRegion::new("vswitch-cache-pool", pool_len, cfg.hugepages)
            .map_err(|e| format!("cache pool of {pool_len} bytes: {e}"))?;
        let meta = match meta_file {
            None => SharedRegion::new("vswitch-cache-meta", hdr.table_len(), false),
            Some(p) => SharedRegion::open_file(p, hdr.table_len()),
        }
        .map_err(|e| match meta_file {
            Some(p) => format!("cache metadata file {}: {e}", p.display()),
            None => format!("cache metadata: {e}"),
        })?;
        // SAFETY: `meta` is `meta.len() >= table_len` bytes (a stale file
        // may hold anything past the table: clear it).
        unsafe {
            ptr::write_bytes(
                meta.as_ptr().add(hdr.table_len()),
                0,
                meta.len() - hdr.table_len(),
            )
        };
        // SAFETY: `meta` is at least `table_len` bytes and lives in the
        // returned value, after (dropped after) the table.
        let table = unsafe { MetaTable::init(meta.as_ptr(), &hdr) };
        let mut map = SlotMap::new();
        // SAFETY: the pool lives in the returned value as long as the map.
        unsafe { map.add(cfg.slot_gpa_base, pool_len as u64, pool.as_ptr())? };
        let inner_max = info.max_inflight.max(2);
        let ops = (0..inner_max)
            .map(|_| Op {
                kind: OpKind::Free,
                offset: 0,
                len: 0,
                first: 1,
                last: 0,
                pos: 0,
                iovs: Vec::with_capacity(130),
                // SAFETY: a dangling empty range, never used (len 0).
                wb_iov: [unsafe { IoVec::new(ptr::null_mut(), 0) }],
            })
            .collect();
        let max_inflight = info.max_inflight.max(1);
        Ok(CachedBackend {
            inner,
            info,
            mode: cfg.mode,
            ways,
            sets: sets as u64,
            slots_n,
            nblocks: info.capacity / BLOCK,
            slot_gpa_base: cfg.slot_gpa_base,
            table,
            shadow: vec![
                Slot {
                    owner: NONE,
                    generation: 0,
                    dirty: false,
                    writeback: false,
                    referenced: false,
                    epoch: 0,
                };
                slots_n
            ],
            map,
            clock: Clock::new(sets, ways),
            twoq: (cfg.eviction == Eviction::TwoQ).then(|| TwoQ::new(sets, ways)),
            ops,
            free_ops: (0..inner_max as u32).rev().collect(),
            active: Vec::with_capacity(inner_max),
            inner_max,
            inner_done: Vec::with_capacity(inner_max),
            writebacks: 0,
            max_writebacks: cfg.max_writebacks.clamp(1, inner_max / 2 + 1),
            wb_failed: false,
            uncommitted: false,
            done: VecDeque::with_capacity(max_inflight),
            guest_inflight: 0,
            max_inflight,
            dirty: 0,
            dirty_high: (slots_n * cfg.dirty_high_pct.min(100) as usize / 100).max(1),
            flushing_down: false,
            epoch: 1,
            done_epoch: 0,
            dirty_by_epoch: [0; EPOCHS],
            pending: VecDeque::with_capacity(MAX_PENDING_FLUSHES),
            sweep: 0,
            wb_pick: [0; 64],
            counters: Arc::new(CacheCounters::default()),
            meta,
            pool,
        })
    }

    /// The live counters (share them with whoever reports stats).
    pub fn counters(&self) -> Arc<CacheCounters> {
        Arc::clone(&self.counters)
    }

    /// Slots in the cache.
    pub fn slots(&self) -> usize {
        self.slots_n
    }

    /// The pool is backed by hugepages.
    pub fn hugepages(&self) -> bool {
        self.pool.hugepages()
    }

    /// The guest-shared metadata table (tests forge entries through it).
    pub fn table(&self) -> &MetaTable {
        &self.table
    }

    /// The shared region holding the metadata table (its file and length
    /// are what QEMU needs to map it into the guest).
    pub fn meta_region(&self) -> &SharedRegion {
        &self.meta
    }

    /// Dirty slots now.
    pub fn dirty(&self) -> usize {
        self.dirty
    }

    /// Moves the window of slot guest-physical addresses to `base` (memory
    /// hot-plug changed the guest's physical layout): the first→second
    /// table is rebuilt and every entry and the header are rewritten with
    /// the new first physical addresses. Cached data stays where it is.
    pub fn relocate(&mut self, base: u64) -> Result<(), String> {
        let len = self.slots_n as u64 * BLOCK;
        let mut map = SlotMap::new();
        // SAFETY: the pool lives as long as `self`, which owns the map.
        unsafe { map.add(base, len, self.pool.as_ptr())? };
        self.map = map;
        self.slot_gpa_base = base;
        self.table.write_header(&Header {
            ways: self.ways as u32,
            sets: self.sets as u32,
            block_size: BLOCK as u32,
            slot_gpa_base: base,
        });
        for p in 0..self.slots_n {
            self.publish(p);
        }
        Ok(())
    }

    // ---- lookup and validation -------------------------------------------

    #[inline]
    fn set_of(&self, block: u64) -> usize {
        // Fibonacci hash, then Lemire's multiply-shift onto [0, sets).
        let h = block.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h as u128 * self.sets as u128) >> 64) as usize
    }

    #[inline]
    fn slot_gpa(&self, p: usize) -> u64 {
        self.slot_gpa_base + p as u64 * BLOCK
    }

    /// Host address of slot `p`'s data through the first→second table.
    #[inline]
    fn slot_ptr(&self, p: usize) -> Option<*mut u8> {
        self.map.translate(self.slot_gpa(p), BLOCK)
    }

    fn entry_of(&self, p: usize) -> Entry {
        let s = &self.shadow[p];
        Entry {
            block: if s.owner == NONE { 0 } else { s.owner },
            slot_gpa: self.slot_gpa(p),
            generation: s.generation,
            flags: if s.owner == NONE {
                0
            } else {
                FLAG_VALID | if s.dirty { FLAG_DIRTY } else { 0 }
            },
        }
    }

    fn publish(&self, p: usize) {
        self.table.write(p, &self.entry_of(p));
    }

    /// Finds `block`'s slot. The guest-shared entry is used only if it
    /// passes every check (checksum, slot address = the entry's position,
    /// mapping exists, generation and owner match the host's shadow). An
    /// entry that names the block and fails, or a block the shadow has and
    /// the table lost, is counted as a bad entry and rewritten.
    #[inline]
    fn lookup(&mut self, block: u64) -> Option<usize> {
        if block >= self.nblocks {
            return None;
        }
        let base = self.set_of(block) * self.ways;
        let mut bad = false;
        for p in base..base + self.ways {
            let Some(raw) = self.table.read_raw(p) else {
                break;
            };
            if Entry::peek_block(&raw) != block {
                continue;
            }
            let ok = Entry::parse(&raw).is_some_and(|e| {
                e.flags & FLAG_VALID != 0
                    && e.slot_gpa == self.slot_gpa(p)
                    && self.map.translate(e.slot_gpa, BLOCK).is_some()
                    && self.shadow[p].owner == block
                    && self.shadow[p].generation == e.generation
                    && (e.flags & FLAG_DIRTY != 0) == self.shadow[p].dirty
            });
            if ok {
                return Some(p);
            }
            if Entry::parse(&raw).is_none_or(|e| e.flags & FLAG_VALID != 0) {
                bad = true;
                self.publish(p);
            }
        }
        let found = (base..base + self.ways).find(|&p| self.shadow[p].owner == block);
        if let Some(p) = found {
            bad = true;
            self.publish(p);
        }
        if bad {
            CacheCounters::add(&self.counters.bad_entries, 1);
        }
        found.filter(|&p| self.slot_ptr(p).is_some())
    }

    // ---- slot state changes ---------------------------------------------

    fn set_dirty(&mut self, p: usize) {
        let s = &mut self.shadow[p];
        if !s.dirty {
            s.dirty = true;
            s.epoch = self.epoch;
            self.dirty += 1;
            self.dirty_by_epoch[(self.epoch % EPOCHS as u64) as usize] += 1;
            CacheCounters::add(&self.counters.dirty, 1);
        }
        s.generation = s.generation.wrapping_add(1);
        self.publish(p);
    }

    fn set_clean(&mut self, p: usize) {
        let s = &mut self.shadow[p];
        if s.dirty {
            s.dirty = false;
            self.dirty -= 1;
            self.dirty_by_epoch[(s.epoch % EPOCHS as u64) as usize] -= 1;
            self.counters
                .dirty
                .store(self.dirty as u64, std::sync::atomic::Ordering::Relaxed);
        }
        s.generation = s.generation.wrapping_add(1);
        self.publish(p);
    }

    fn invalidate(&mut self, p: usize) {
        self.set_clean(p);
        let s = &mut self.shadow[p];
        s.owner = NONE;
        s.referenced = false;
        self.publish(p);
    }

    /// A slot for `block` (not cached): empty, or a clean one evicted by
    /// CLOCK; dirty slots the hand passes are written back.
    fn allocate(&mut self, block: u64) -> Option<usize> {
        if block >= self.nblocks {
            return None;
        }
        let set = self.set_of(block);
        let base = set * self.ways;
        if self.twoq.is_some() {
            return self.allocate_2q(block, set);
        }
        let shadow = &mut self.shadow;
        let picks = &mut self.wb_pick;
        let mut npick = 0;
        let choice = self.clock.choose(set, |w| {
            let s = &mut shadow[base + w];
            if s.owner == NONE {
                WayState::Empty
            } else if s.dirty || s.writeback {
                let needs = s.dirty && !s.writeback;
                if needs && npick < picks.len() {
                    picks[npick] = (base + w) as u32;
                    npick += 1;
                }
                WayState::Busy {
                    needs_writeback: needs,
                }
            } else {
                let r = s.referenced;
                s.referenced = false;
                WayState::Clean { referenced: r }
            }
        });
        for i in 0..npick {
            let p = self.wb_pick[i] as usize;
            self.start_writeback(p);
        }
        let Choice::Take(w) = choice else {
            return None;
        };
        let p = base + w;
        if self.shadow[p].owner != NONE {
            CacheCounters::add(&self.counters.evictions, 1);
        }
        let s = &mut self.shadow[p];
        s.owner = block;
        s.referenced = false;
        s.generation = s.generation.wrapping_add(1);
        Some(p)
    }

    /// [`Self::allocate`] under 2Q.
    fn allocate_2q(&mut self, block: u64, set: usize) -> Option<usize> {
        let base = set * self.ways;
        let mut st = [WayState::Empty; 64];
        for (w, v) in st[..self.ways].iter_mut().enumerate() {
            let s = &self.shadow[base + w];
            *v = if s.owner == NONE {
                WayState::Empty
            } else if s.dirty || s.writeback {
                WayState::Busy {
                    needs_writeback: s.dirty && !s.writeback,
                }
            } else {
                WayState::Clean { referenced: false }
            };
        }
        let q = self.twoq.as_mut().expect("2Q configured");
        let d = q.choose(set, &st[..self.ways]);
        if let Some(hot) = d.write_back_hot {
            for (w, v) in st[..self.ways].iter().enumerate() {
                let p = base + w;
                let needs = *v
                    == WayState::Busy {
                        needs_writeback: true,
                    };
                if needs && self.twoq.as_ref().is_some_and(|q| q.is_hot(p) == hot) {
                    self.start_writeback(p);
                }
            }
        }
        let Choice::Take(w) = d.choice else {
            return None;
        };
        let p = base + w;
        let old = self.shadow[p].owner;
        if old != NONE {
            CacheCounters::add(&self.counters.evictions, 1);
        }
        self.twoq.as_mut().expect("2Q configured").insert(
            set,
            p,
            block,
            (old != NONE).then_some(old),
        );
        let s = &mut self.shadow[p];
        s.owner = block;
        s.referenced = false;
        s.generation = s.generation.wrapping_add(1);
        Some(p)
    }

    // ---- backend operations ---------------------------------------------

    fn overlaps(&self, first: u64, last: u64) -> bool {
        self.active.iter().any(|&(f, l, _)| f <= last && first <= l)
    }

    fn can_send(&self) -> bool {
        !self.free_ops.is_empty() && self.inner.inflight() < self.inner_max
    }

    fn take_op(&mut self, kind: OpKind, offset: u64, len: u64, first: u64, last: u64) -> usize {
        let i = self.free_ops.pop().expect("can_send checked") as usize;
        let pos = self.active.len();
        self.active.push((first, last, i as u32));
        let op = &mut self.ops[i];
        op.kind = kind;
        op.offset = offset;
        op.len = len;
        op.first = first;
        op.last = last;
        op.pos = pos;
        i
    }

    fn release_op(&mut self, i: usize) {
        let pos = self.ops[i].pos;
        self.active.swap_remove(pos);
        if let Some(&(_, _, moved)) = self.active.get(pos) {
            self.ops[moved as usize].pos = pos;
        }
        self.ops[i].kind = OpKind::Free;
        self.free_ops.push(i as u32);
    }

    fn start_writeback(&mut self, p: usize) -> bool {
        let block = self.shadow[p].owner;
        if block == NONE
            || !self.shadow[p].dirty
            || self.shadow[p].writeback
            || self.writebacks >= self.max_writebacks
            || !self.can_send()
            || self.overlaps(block, block)
        {
            return false;
        }
        let Some(host) = self.slot_ptr(p) else {
            return false;
        };
        let i = self.take_op(
            OpKind::Writeback { slot: p as u32 },
            block * BLOCK,
            BLOCK,
            block,
            block,
        );
        // SAFETY: `host` is slot `p` of the pool, BLOCK bytes, translated
        // through the checked table; the pool outlives every backend request
        // (Drop drains the backend first).
        self.ops[i].wb_iov = [unsafe { IoVec::new(host, BLOCK as u32) }];
        let req = IoRequest {
            id: i as u64,
            op: IoOp::Write,
            offset: block * BLOCK,
            len: BLOCK,
            iovs: &self.ops[i].wb_iov,
        };
        if self.inner.submit(&req).is_err() {
            self.release_op(i);
            return false;
        }
        self.uncommitted = true;
        self.shadow[p].writeback = true;
        self.writebacks += 1;
        true
    }

    fn send_guest(&mut self, req: &IoRequest<'_>, kind: OpKind, first: u64, last: u64) -> bool {
        let i = self.take_op(kind, req.offset, req.len, first, last);
        if let OpKind::ReadMiss { .. } = kind {
            self.ops[i].iovs.clear();
            self.ops[i].iovs.extend_from_slice(req.iovs);
        }
        let fwd = IoRequest {
            id: i as u64,
            ..*req
        };
        if self.inner.submit(&fwd).is_err() {
            self.release_op(i);
            return false;
        }
        self.uncommitted = true;
        true
    }

    fn complete(&mut self, id: u64, status: IoStatus) {
        // Capacity: one entry per guest request in flight, bounded by
        // `max_inflight` in `submit`.
        self.done.push_back(IoCompletion { id, status });
    }

    // ---- data copies ------------------------------------------------------

    /// Copies between the request-relative bytes `[roff, roff+n)` of `iovs`
    /// and `slot + soff`. `to_slot` picks the direction.
    fn copy(
        iovs: &[IoVec],
        mut roff: u64,
        slot: *mut u8,
        soff: u64,
        n: u64,
        to_slot: bool,
    ) -> bool {
        let mut done = 0u64;
        for v in iovs {
            if done == n {
                break;
            }
            let vl = v.len() as u64;
            if roff >= vl {
                roff -= vl;
                continue;
            }
            let take = (vl - roff).min(n - done);
            // SAFETY: `v` is a checked guest range and `roff + take <= vl`;
            // the slot range `soff + done + take <= BLOCK` because callers pass
            // `soff + n <= BLOCK`. Byte copies between two shared mappings
            // (guest memory, pool), never overlapping.
            unsafe {
                let g = v.as_ptr().add(roff as usize);
                let s = slot.add((soff + done) as usize);
                if to_slot {
                    ptr::copy_nonoverlapping(g, s, take as usize);
                } else {
                    ptr::copy_nonoverlapping(s, g, take as usize);
                }
            }
            done += take;
            roff = 0;
        }
        done == n
    }

    /// The part of block `b` inside `[off, off+len)`: (request offset, slot
    /// offset, bytes).
    #[inline]
    fn part(b: u64, off: u64, len: u64) -> (u64, u64, u64) {
        let start = (b * BLOCK).max(off);
        let end = ((b + 1) * BLOCK).min(off + len);
        (start - off, start - b * BLOCK, end - start)
    }

    fn blocks(off: u64, len: u64) -> (u64, u64) {
        (off / BLOCK, (off + len - 1) / BLOCK)
    }

    // ---- request kinds ----------------------------------------------------

    fn read(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        let (b0, b1) = Self::blocks(req.offset, req.len);
        let mut all = true;
        for b in b0..=b1 {
            let Some(p) = self.lookup(b) else {
                all = false;
                break;
            };
            let (roff, soff, n) = Self::part(b, req.offset, req.len);
            let slot = self.slot_ptr(p).expect("lookup checked the mapping");
            if !Self::copy(req.iovs, roff, slot, soff, n, false) {
                self.complete(req.id, IoStatus::IoErr);
                return Ok(());
            }
            self.shadow[p].referenced = true;
            if let Some(q) = &mut self.twoq {
                q.on_hit(p);
            }
        }
        if all {
            CacheCounters::add(&self.counters.hits, b1 - b0 + 1);
            self.complete(req.id, IoStatus::Ok);
            return Ok(());
        }
        if !self.can_send() || self.overlaps(b0, b1) {
            return Err(SubmitError::Busy);
        }
        CacheCounters::add(&self.counters.misses, b1 - b0 + 1);
        if !self.send_guest(req, OpKind::ReadMiss { id: req.id }, b0, b1) {
            return Err(SubmitError::Busy);
        }
        Ok(())
    }

    fn read_done(&mut self, i: usize) {
        let (off, len) = (self.ops[i].offset, self.ops[i].len);
        let (b0, b1) = Self::blocks(off, len);
        for b in b0..=b1 {
            let (roff, soff, n) = Self::part(b, off, len);
            if let Some(p) = self.lookup(b) {
                let slot = self.slot_ptr(p).expect("lookup checked the mapping");
                Self::copy(&self.ops[i].iovs, roff, slot, soff, n, false);
            } else if n == BLOCK {
                if let Some(p) = self.allocate(b) {
                    let slot = self.slot_ptr(p).expect("pool slots are mapped");
                    if Self::copy(&self.ops[i].iovs, roff, slot, 0, BLOCK, true) {
                        self.publish(p);
                    } else {
                        self.invalidate(p);
                    }
                }
            }
        }
    }

    fn write(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.info.read_only {
            self.complete(req.id, IoStatus::IoErr);
            return Ok(());
        }
        let (b0, b1) = Self::blocks(req.offset, req.len);
        // The backend is needed for write-through and may be for write-back:
        // check before changing any slot.
        if !self.can_send() || self.overlaps(b0, b1) {
            return Err(SubmitError::Busy);
        }
        let wb = self.mode == WriteMode::WriteBack;
        let mut send = !wb;
        for b in b0..=b1 {
            let (roff, soff, n) = Self::part(b, req.offset, req.len);
            let p = match self.lookup(b) {
                Some(p) => Some(p),
                None if n == BLOCK => self.allocate(b),
                None => None,
            };
            let Some(p) = p else {
                send = true;
                continue;
            };
            let slot = self.slot_ptr(p).expect("pool slots are mapped");
            if !Self::copy(req.iovs, roff, slot, soff, n, true) {
                self.invalidate(p);
                self.complete(req.id, IoStatus::IoErr);
                return Ok(());
            }
            if wb {
                self.set_dirty(p);
            } else {
                let s = &mut self.shadow[p];
                s.generation = s.generation.wrapping_add(1);
                self.publish(p);
            }
        }
        if !send {
            self.complete(req.id, IoStatus::Ok);
            return Ok(());
        }
        if wb {
            CacheCounters::add(&self.counters.passthrough, 1);
        }
        if !self.send_guest(
            req,
            OpKind::Guest {
                id: req.id,
                op: req.op,
            },
            b0,
            b1,
        ) {
            self.complete(req.id, IoStatus::IoErr);
        }
        Ok(())
    }

    fn zero_range(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.info.read_only {
            self.complete(req.id, IoStatus::IoErr);
            return Ok(());
        }
        let (b0, b1) = Self::blocks(req.offset, req.len);
        if !self.can_send() || self.overlaps(b0, b1) {
            return Err(SubmitError::Busy);
        }
        // Discards can be huge: look at the slots, not the blocks, when the
        // range has more blocks than the cache has slots.
        if b1 - b0 >= self.slots_n as u64 {
            for p in 0..self.slots_n {
                let b = self.shadow[p].owner;
                if b != NONE && b >= b0 && b <= b1 {
                    self.zero_block(p, b, req.offset, req.len);
                }
            }
        } else {
            for b in b0..=b1 {
                if let Some(p) = self.lookup(b) {
                    self.zero_block(p, b, req.offset, req.len);
                }
            }
        }
        if !self.send_guest(
            req,
            OpKind::Guest {
                id: req.id,
                op: req.op,
            },
            b0,
            b1,
        ) {
            self.complete(req.id, IoStatus::IoErr);
        }
        Ok(())
    }

    fn zero_block(&mut self, p: usize, b: u64, off: u64, len: u64) {
        let (_, soff, n) = Self::part(b, off, len);
        if n == BLOCK {
            self.invalidate(p);
        } else if let Some(slot) = self.slot_ptr(p) {
            // SAFETY: `soff + n <= BLOCK` inside slot `p` of the pool.
            unsafe { ptr::write_bytes(slot.add(soff as usize), 0, n as usize) };
            let s = &mut self.shadow[p];
            s.generation = s.generation.wrapping_add(1);
            self.publish(p);
        }
    }

    // ---- flush --------------------------------------------------------------

    /// Dirty slots that a flush of epoch `e` waits for.
    fn dirty_upto(&self, e: u64) -> u64 {
        (self.done_epoch + 1..=e)
            .map(|t| self.dirty_by_epoch[(t % EPOCHS as u64) as usize])
            .sum()
    }

    fn flusher(&mut self) -> bool {
        let mut sent = false;
        let head_wait = self
            .pending
            .front()
            .is_some_and(|f| !f.sent && self.dirty_upto(f.epoch) > 0);
        if self.dirty > self.dirty_high {
            self.flushing_down = true;
        } else if self.dirty <= self.dirty_high / 2 {
            self.flushing_down = false;
        }
        if (head_wait || self.flushing_down) && self.dirty > 0 {
            for _ in 0..SWEEP_BUDGET.min(self.slots_n) {
                if self.writebacks >= self.max_writebacks || !self.can_send() {
                    break;
                }
                let p = self.sweep;
                self.sweep = (self.sweep + 1) % self.slots_n;
                let s = &self.shadow[p];
                if s.dirty && !s.writeback {
                    sent |= self.start_writeback(p);
                }
            }
        }
        // The head flush: once nothing it waits for is dirty, flush the
        // backend (or finish at once if the backend has no volatile cache).
        if let Some(f) = self.pending.front().copied() {
            if !f.sent && self.dirty_upto(f.epoch) == 0 {
                if self.wb_failed {
                    self.wb_failed = false;
                    self.finish_flush(IoStatus::IoErr);
                } else if !self.info.flush {
                    self.finish_flush(IoStatus::Ok);
                } else if self.can_send() {
                    let i = self.take_op(OpKind::Flush, 0, 0, 1, 0);
                    let req = IoRequest {
                        id: i as u64,
                        op: IoOp::Flush,
                        offset: 0,
                        len: 0,
                        iovs: &[],
                    };
                    if self.inner.submit(&req).is_ok() {
                        self.pending[0].sent = true;
                        self.uncommitted = true;
                        sent = true;
                    } else {
                        self.release_op(i);
                    }
                }
            }
        }
        sent
    }

    fn finish_flush(&mut self, status: IoStatus) {
        if let Some(f) = self.pending.pop_front() {
            self.done_epoch = f.epoch;
            CacheCounters::add(&self.counters.flushes, 1);
            self.complete(f.id, status);
        }
    }

    fn backend_done(&mut self, c: IoCompletion) {
        let i = c.id as usize;
        let Some(op) = self.ops.get(i) else {
            return;
        };
        match op.kind {
            OpKind::Free => return,
            OpKind::Guest { id, op } => {
                if c.status != IoStatus::Ok
                    && self.mode == WriteMode::WriteThrough
                    && op == IoOp::Write
                {
                    // The backend does not hold what the slots now do.
                    let (b0, b1) = (self.ops[i].first, self.ops[i].last);
                    for b in b0..=b1 {
                        if let Some(p) = self.lookup(b) {
                            self.invalidate(p);
                        }
                    }
                }
                self.complete(id, c.status);
            }
            OpKind::ReadMiss { id } => {
                if c.status == IoStatus::Ok {
                    self.read_done(i);
                }
                self.complete(id, c.status);
            }
            OpKind::Writeback { slot } => {
                let p = slot as usize;
                self.shadow[p].writeback = false;
                self.writebacks -= 1;
                if c.status == IoStatus::Ok {
                    // No write to the block could start meanwhile (ordering
                    // rule), so the slot is what the backend now holds.
                    self.set_clean(p);
                    CacheCounters::add(&self.counters.writebacks, 1);
                } else {
                    self.wb_failed = true;
                }
            }
            OpKind::Flush => {
                self.release_op(i);
                self.finish_flush(c.status);
                return;
            }
        }
        self.release_op(i);
    }
}

impl Backend for CachedBackend {
    fn metrics(&self, m: &mut metrics::MetricSet, labels: &[(&str, &str)]) {
        self.counters.snapshot().metrics(m, labels);
        self.inner.metrics(m, labels);
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            // Write-back holds data the backend lacks: the guest must flush.
            flush: self.info.flush || self.mode == WriteMode::WriteBack,
            ..self.info
        }
    }

    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.guest_inflight >= self.max_inflight {
            return Err(SubmitError::Busy);
        }
        let bad_range = req.len == 0
            || req
                .offset
                .checked_add(req.len)
                .is_none_or(|e| e > self.info.capacity);
        let r = match req.op {
            IoOp::Flush => match self.mode {
                WriteMode::WriteBack => {
                    if self.pending.len() >= MAX_PENDING_FLUSHES {
                        return Err(SubmitError::Busy);
                    }
                    self.pending.push_back(PendingFlush {
                        id: req.id,
                        epoch: self.epoch,
                        sent: false,
                    });
                    self.epoch += 1;
                    Ok(())
                }
                WriteMode::WriteThrough => {
                    if !self.can_send() {
                        return Err(SubmitError::Busy);
                    }
                    let kind = OpKind::Guest {
                        id: req.id,
                        op: req.op,
                    };
                    if self.send_guest(req, kind, 1, 0) {
                        Ok(())
                    } else {
                        Err(SubmitError::Busy)
                    }
                }
            },
            _ if bad_range => {
                self.complete(req.id, IoStatus::IoErr);
                Ok(())
            }
            IoOp::Read => self.read(req),
            IoOp::Write => self.write(req),
            IoOp::Discard | IoOp::WriteZeroes { .. } => self.zero_range(req),
        };
        if r.is_ok() {
            self.guest_inflight += 1;
        }
        r
    }

    fn commit(&mut self) {
        self.uncommitted = false;
        self.inner.commit();
    }

    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        // Nothing at the backend (all hits): do not even look at it.
        if self.inner.inflight() > 0 {
            let mut inner_done = std::mem::take(&mut self.inner_done);
            inner_done.clear();
            self.inner.poll(&mut inner_done);
            for &c in &inner_done {
                self.backend_done(c);
            }
            self.inner_done = inner_done;
        }
        if self.mode == WriteMode::WriteBack {
            self.flusher();
        }
        // Write-backs and fills started while handling completions.
        if self.uncommitted {
            self.commit();
        }
        let n = (out.capacity() - out.len()).min(self.done.len());
        out.extend(self.done.drain(..n));
        self.guest_inflight -= n;
        n
    }

    fn inflight(&self) -> usize {
        self.guest_inflight
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        // `poll` looks at the backend only while it has requests.
        if self.inner.inflight() > 0 {
            self.inner.wait_fd()
        } else {
            None
        }
    }

    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        if bytes < self.info.capacity && self.inner.inflight() > 0 {
            return Err("the cache has backend requests in flight; retry".into());
        }
        let new = self.inner.resize(bytes)?;
        self.set_capacity(new);
        Ok(new)
    }

    fn capacity_change(&mut self) -> Option<u64> {
        let new = self.inner.capacity_change()?;
        self.set_capacity(new);
        Some(new)
    }
}

impl CachedBackend {
    /// The backend's capacity changed: blocks past the new end leave the
    /// cache (dirty ones included: their bytes no longer exist on the disk).
    fn set_capacity(&mut self, bytes: u64) {
        self.info.capacity = bytes;
        self.nblocks = bytes / BLOCK;
        for p in 0..self.slots_n {
            let s = &self.shadow[p];
            if s.owner != NONE && s.owner >= self.nblocks && !s.writeback {
                self.invalidate(p);
            }
        }
    }
}

impl Drop for CachedBackend {
    fn drop(&mut self) {
        // A clean stop writes every dirty slot back and flushes the backend
        // (nothing acknowledged is dropped on the floor); backend requests
        // may point into the pool, so they all finish before it is unmapped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut sink = Vec::with_capacity(self.max_inflight);
        self.dirty_high = 0;
        let wb = self.mode == WriteMode::WriteBack;
        let mut flushed = !wb || !self.info.flush;
        while std::time::Instant::now() < deadline {
            sink.clear();
            self.poll(&mut sink);
            if self.inner.inflight() == 0 && (self.dirty == 0 || !wb) {
                if flushed {
                    break;
                }
                if self.pending.len() < MAX_PENDING_FLUSHES {
                    self.pending.push_back(PendingFlush {
                        id: u64::MAX,
                        epoch: self.epoch,
                        sent: false,
                    });
                    self.epoch += 1;
                    self.guest_inflight += 1;
                    flushed = true;
                    continue;
                }
            }
            std::thread::yield_now();
        }
    }
}
