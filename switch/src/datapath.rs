//! The per-core pipeline: a burst of frames in, one [`Verdict`] per frame
//! out. No allocation, no lock, no atomic read-modify-write per packet.
//!
//! Per burst (up to [`BURST`] frames):
//! 1. enter the table's quiescent-state protocol (one SeqCst store, one load);
//! 2. extract every key and mask it with the table's lookup mask (the bits
//!    any rule reads), so flows that differ only in unread fields share a
//!    key; a key equal to its predecessor's takes the predecessor's rule
//!    with no hash or lookup; hash every other key and prefetch its cache
//!    bucket and the key slot of its home way (two independent lines);
//! 3. look up the exact-match cache; on a miss run the classifier and cache
//!    the result (including "no rule") — or, when the cache cannot pay
//!    (huge working set, one or two subtables), go to the classifier
//!    directly (`BYPASS_*`);
//!    then prefetch each hit rule, its per-core counter line and actions;
//! 4. run each frame's actions (rewrites in place, `normal` learns and looks
//!    up the MAC table) — once per run of frames for rules that only
//!    output, flood or drop — and count per-rule stats once per run and
//!    per-core stats;
//! 5. publish the core's counters and leave the burst.
//!
//! The caller then transmits: [`TxGroups`] groups frame indices by port.

use std::sync::Arc;

use crate::action::{execute, execute_plan, ExecCtx, ExecEvents, TunnelSet};
use crate::extract::{extract_burst, low_bits, Meta};
use crate::flowcache::{FlowCache, NO_RULE};
use crate::frame::Frame;
use crate::key::FlowKey;
use crate::pipeline::{compile, CompiledStore, MAX_COMPILED};
use crate::stats::Counters;
use crate::switch::Switch;
use crate::table::{FragMode, TableVersion};
use crate::tunnel::TunnelMeta;
use crate::verdict::{DropReason, Verdict, MAX_PORTS};
use crate::wire::ethernet::ethertype;

/// Frames handled per pass (DPDK's usual burst size).
pub const BURST: usize = 32;

/// Cache bypass: once a worker has inserted this many flows into its cache
/// under one table version (a working set far beyond L2)...
pub const BYPASS_AFTER_INSERTS: u64 = 1 << 16;
/// ...and the classifier has at most this many subtables (one or two hash
/// probes into tables that stay cache-resident), the cache costs more DRAM
/// traffic than it saves and the worker sends lookups straight to the
/// classifier until the next table version (measured: 1M flows, 1 rule,
/// 157 -> ~111 cycles/packet). Results are identical either way.
pub const BYPASS_MAX_SUBTABLES: usize = 2;

/// Generations whose table version a worker remembers: a cache bucket
/// older than that is refilled, not revalidated.
const GEN_RING: usize = 256;

/// One worker's datapath. Not `Sync`: one per worker thread.
pub struct Datapath {
    pub(crate) sw: Arc<Switch>,
    pub(crate) worker: usize,
    pub(crate) cur: Arc<TableVersion>,
    cache: FlowCache,
    pub(crate) c: Counters,
    may_bypass: bool,
    bypass: bool,
    pub(crate) bypass_version: u64,
    inserts: u64,
    /// Flow-cache generation: changes with the table version (and when the
    /// compiled store starts over), never 0 (a fresh bucket's value).
    gen: u32,
    /// Buckets of generations before this one are never revalidated (set
    /// when the table version or the compiled store starts over).
    pub(crate) valid_from: u32,
    /// The table version of each of the last [`GEN_RING`] generations.
    gen_version: Box<[u64; GEN_RING]>,
    /// Multi-table versions: the flows compiled under the current version.
    pub(crate) compiled: CompiledStore,
    /// Recirculated passes (after `ct(table=N)`): their cache.
    pub(crate) recirc: crate::ct::recirc::RecircCache,
    pub(crate) keys: [FlowKey; BURST],
    pub(crate) meta: [Meta; BURST],
    hashes: [u64; BURST],
    pub(crate) rules: [u32; BURST],
    pub(crate) lens: [u32; BURST],
    /// Bit i: frame i starts a run of frames with equal masked keys (its
    /// key differs from frame i - 1's). Only run heads are hashed, looked
    /// up, prefetched and (for simple rules) executed.
    heads: u32,
    /// Tunnel fields set by each frame's actions (last pass), and whether
    /// any frame set some.
    pub(crate) tun_out: [TunnelSet; BURST],
    pub(crate) tun_dirty: bool,
    /// IP fragments the `ct` action's reassembly holds (`ct/ipf.rs`; made
    /// at the first fragment, typed by the frames this datapath carries).
    pub(crate) ipf: Option<Box<dyn std::any::Any + Send>>,
}

impl Datapath {
    pub(crate) fn new(
        sw: Arc<Switch>,
        worker: usize,
        cache_entries: usize,
        may_bypass: bool,
    ) -> Datapath {
        let cur = sw.table.snapshot();
        Datapath {
            sw,
            worker,
            cur,
            cache: FlowCache::new(cache_entries),
            c: Counters::default(),
            may_bypass,
            bypass: false,
            bypass_version: 0,
            inserts: 0,
            gen: 0,
            valid_from: 0,
            gen_version: Box::new([0; GEN_RING]),
            compiled: CompiledStore::default(),
            recirc: crate::ct::recirc::RecircCache::default(),
            keys: [FlowKey::ZERO; BURST],
            meta: [Meta::default(); BURST],
            hashes: [0; BURST],
            rules: [0; BURST],
            lens: [0; BURST],
            heads: 0,
            tun_out: [TunnelSet::default(); BURST],
            tun_dirty: false,
            ipf: None,
        }
    }

    /// Add `cycles` TSC cycles to this worker's busy time (the `busy_cycles`
    /// counter behind per-core cycles/packet). The caller measures, since
    /// it already reads the TSC around its whole rx → decide → tx burst: a
    /// second pair of reads inside `process_burst` cost ~2 cycles/packet.
    #[inline]
    pub fn account_cycles(&mut self, cycles: u64) {
        self.c.busy_cycles += cycles;
    }

    /// This worker's index.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// This worker's counters (its own view, always current).
    pub fn counters(&self) -> &Counters {
        &self.c
    }

    /// Decide every frame of `frames` received on `in_port`, rewriting them
    /// in place; `verdicts[i]` is the decision for `frames[i]`. Any number
    /// of frames is accepted (handled in passes of [`BURST`]); `verdicts`
    /// must be at least as long as `frames`.
    ///
    /// Flows that modify the frame after an output (or whose group buckets
    /// rewrite) send every output with the final bytes here; use
    /// [`Datapath::process_burst_copies`] for OVS's semantics.
    pub fn process_burst<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        now_ms: u64,
    ) {
        self.process(in_port, frames, verdicts, None, None, now_ms)
    }

    /// [`Datapath::process_burst`] with OVS's semantics for modifications
    /// after an output: the earlier outputs leave as copies of the frame
    /// ([`Frame::duplicate`]), appended to `copies` with their port set
    /// (transmit each like an `Output` verdict, then free it). Flows
    /// without such actions never copy.
    pub fn process_burst_copies<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        copies: &mut Vec<(F, u64)>,
        now_ms: u64,
    ) {
        self.process(in_port, frames, verdicts, Some(copies), None, now_ms)
    }

    /// [`Datapath::process_burst_copies`] for frames a tunnel port
    /// decapsulated: `tunnel[i]` is frame i's outer metadata, which rules
    /// match as `tun_id`, `tun_src`, `tun_dst` (see [`crate::key`]). At most
    /// [`BURST`] frames, so that [`Datapath::tunnel_sets`] covers them all.
    pub fn process_burst_tunnel<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        tunnel: &[TunnelMeta],
        verdicts: &mut [Verdict],
        copies: &mut Vec<(F, u64)>,
        now_ms: u64,
    ) {
        assert!(
            frames.len() <= BURST && tunnel.len() >= frames.len(),
            "one pass of frames, each with its tunnel metadata"
        );
        self.process(
            in_port,
            frames,
            verdicts,
            Some(copies),
            Some(tunnel),
            now_ms,
        )
    }

    /// The tunnel fields each frame of the last pass (the last ≤ [`BURST`]
    /// frames) had set by its actions (`set_tunnel`, `set_field:..->tun_dst`),
    /// or `None` when no frame set any: what outputs to `key=flow` /
    /// `remote_ip=flow` tunnel ports encapsulate with.
    #[inline]
    pub fn tunnel_sets(&self) -> Option<&[TunnelSet; BURST]> {
        self.tun_dirty.then_some(&self.tun_out)
    }

    #[inline(always)]
    fn process<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        mut copies: Option<&mut Vec<(F, u64)>>,
        tunnel: Option<&[TunnelMeta]>,
        now_ms: u64,
    ) {
        assert!(
            verdicts.len() >= frames.len(),
            "verdicts shorter than frames"
        );
        self.sw.table.enter(self.worker, &mut self.cur);
        if self.tun_dirty {
            self.tun_out = [TunnelSet::default(); BURST];
            self.tun_dirty = false;
        }
        for (fs, vs) in frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
            self.pass(in_port, fs, vs, copies.as_deref_mut(), tunnel, now_ms);
        }
        self.c.bursts += 1;
        self.sw.core_stats(self.worker).publish(&self.c);
        self.sw.table.leave(self.worker, &self.cur);
    }

    /// Find the runs of frames whose (masked) keys are equal again
    /// ([`Datapath::heads`]; `extract_burst` found them first) after the
    /// keys changed (tunnel metadata).
    fn mark_runs(&mut self, n: usize) {
        let mut heads = u32::from(n > 0);
        for i in 1..n {
            heads |= u32::from(self.keys[i] != self.keys[i - 1]) << i;
        }
        self.heads = heads;
    }

    /// Give every frame of a run its head's rule (`rules[i]` per frame, for
    /// the multi-table path, which executes frame by frame).
    #[inline(always)]
    fn fill_runs(&mut self, n: usize) {
        let mut last = NO_RULE;
        for i in 0..n {
            if self.heads & (1 << i) != 0 {
                last = self.rules[i];
            }
            self.rules[i] = last;
        }
    }

    /// Hash, prefetch and look up the exact-match cache for `n` keys; run
    /// the classifier on misses and cache its answer.
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    fn cached_lookup<const MULTI: bool>(&mut self, n: usize, gen: u32) {
        let mut m = self.heads;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let h = self.keys[i].hash();
            self.hashes[i] = h;
            self.cache.prefetch(h);
        }
        // Counters stay in registers: read-modify-writes of memory would
        // chain every frame to the one before. Frames inside runs are hits.
        let (mut hits, mut misses, mut no_rule, mut inserts) = (
            (n as u32 - self.heads.count_ones()) as u64,
            0u64,
            0u64,
            0u64,
        );
        let mut m = self.heads;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let found = match self.cache.lookup(&self.keys[i], self.hashes[i], gen) {
                None => self.revalidate(i, gen),
                r => r,
            };
            let (k, h) = (&self.keys[i], self.hashes[i]);
            self.rules[i] = match found {
                // Single table: the cache holds rule slots, stable across
                // versions; `NO_RULE` (and any free slot) maps to NO_RULE.
                Some(r) if !MULTI => {
                    hits += 1;
                    self.cur
                        .slot_index
                        .get(r as usize)
                        .copied()
                        .unwrap_or(NO_RULE)
                }
                Some(r) => {
                    hits += 1;
                    r
                }
                None => {
                    misses += 1;
                    let r = if MULTI {
                        // Translate the flow through the pipeline once; the
                        // cache then maps it to the compiled entry.
                        let cur = &*self.cur;
                        let (r, miss) = match &cur.pipeline {
                            Some(p) => compile(
                                &cur.rules,
                                p,
                                &cur.groups,
                                k,
                                self.sw.ports_up(),
                                &mut self.compiled,
                            ),
                            None => (NO_RULE, true),
                        };
                        no_rule += u64::from(miss);
                        r
                    } else {
                        let r = self.cur.classifier.lookup_plain(k).unwrap_or(NO_RULE);
                        no_rule += u64::from(r == NO_RULE);
                        r
                    };
                    let v = match self.cur.rules.get(r as usize) {
                        Some(rule) if !MULTI => rule.slot,
                        _ => r,
                    };
                    self.cache.insert(k, h, gen, v);
                    inserts += 1;
                    r
                }
            };
        }
        if MULTI {
            self.fill_runs(n);
        }
        self.c.cache_hits += hits;
        self.c.cache_misses += misses;
        self.c.classifier_misses += no_rule;
        self.inserts += inserts;
        if !MULTI
            && self.may_bypass
            && self.inserts > BYPASS_AFTER_INSERTS
            && self.cur.classifier.subtables() <= BYPASS_MAX_SUBTABLES
        {
            self.bypass = true;
        }
    }

    /// A cache miss on key `i` in a bucket of an older generation: when
    /// the rule changes since that generation are all logged, keep the
    /// bucket's entries that none of them matches (see
    /// `TableVersion::changes`), drop the others, move the bucket to `gen`
    /// and look the key up again.
    #[cold]
    #[inline(never)]
    fn revalidate(&mut self, i: usize, gen: u32) -> Option<u32> {
        let (k, h) = (&self.keys[i], self.hashes[i]);
        let bg = self.cache.bucket_gen(h);
        let age = gen.wrapping_sub(bg);
        if bg == gen || age as usize >= GEN_RING || age > gen.wrapping_sub(self.valid_from) {
            return None;
        }
        let v = self.gen_version[bg as usize % GEN_RING];
        let cur = &*self.cur;
        if v < cur.changes_since {
            return None;
        }
        self.cache
            .revalidate(h, gen, |key, _| cur.unchanged_since(v, key));
        self.cache.lookup(k, h, gen)
    }

    /// Apply the fragment mode to the fragments of this pass (bit i: frame
    /// i): `normal` looks them up with L4 ports 0; returns the frames to
    /// drop (`drop` mode).
    #[cold]
    #[inline(never)]
    fn fragments(&mut self, frags: u32) -> u32 {
        match self.cur.frag_mode {
            FragMode::NxMatch => 0,
            FragMode::Drop => frags,
            FragMode::Normal => {
                let mut m = frags;
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    m &= m - 1;
                    self.keys[i].set_tp_src(0);
                    self.keys[i].set_tp_dst(0);
                }
                0
            }
        }
    }

    /// Frames of `drops` (bit i: frame i) take no rule (dropped).
    #[inline(always)]
    fn drop_fragments(&mut self, drops: u32) {
        let mut m = drops;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            self.rules[i] = NO_RULE;
        }
    }

    // The stages walk parallel per-burst arrays (frames, keys, meta, hashes,
    // rules) by index; iterator zips would obscure the pipeline.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    fn pass<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        copies: Option<&mut Vec<(F, u64)>>,
        tunnel: Option<&[TunnelMeta]>,
        now_ms: u64,
    ) {
        let n = frames.len();
        if let Some(t) = self.cur.port_only.as_deref() {
            let r = t.get(in_port as usize).copied().unwrap_or(NO_RULE);
            self.port_only_pass(in_port, r, frames, verdicts, now_ms);
            return;
        }
        let mask = &self.cur.lookup_mask;
        let info = extract_burst(
            frames,
            in_port,
            mask,
            &mut self.keys,
            &mut self.meta,
            &mut self.lens,
        );
        self.heads = info.heads;
        let mut frags = 0u32;
        let mut m = info.special;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(why) = self.meta[i].malformed {
                self.c.malformed[why as usize] += 1;
            }
            frags |= u32::from(self.meta[i].frag) << i;
        }
        self.c.rx_bytes += info.rx_bytes;
        if let Some(t) = tunnel {
            for i in 0..n {
                // The EtherType before the L3 header (the key's dl_type
                // may be masked out).
                let l3 = usize::from(self.meta[i].l3);
                let ipv6 = l3 >= 2
                    && frames[i].data().get(l3 - 2..l3) == Some(&ethertype::IPV6.to_be_bytes()[..]);
                let m = &t[i];
                self.keys[i].set_tunnel(m.id, m.src, m.dst, ipv6, mask);
            }
            self.mark_runs(n);
        }
        let frag_drops = if frags != 0 { self.fragments(frags) } else { 0 };
        // Fragments (whose keys or rules the fragment mode may change) and
        // the frame after each start runs of their own.
        self.heads |= (frags | frags << 1) & low_bits(n);
        let multi = self.cur.pipeline.is_some();
        let full = multi && self.compiled.len() > MAX_COMPILED - BURST;
        if self.cur.version != self.bypass_version || full {
            self.new_generation(full);
        }
        let gen = self.gen;
        if multi {
            self.cached_lookup::<true>(n, gen);
            self.drop_fragments(frag_drops);
            self.c.rx_packets += n as u64;
            let mut copies = copies;
            let ct =
                self.execute_compiled(in_port, frames, verdicts, copies.as_deref_mut(), now_ms);
            if ct != 0 {
                self.ct_frames(in_port, frames, verdicts, copies, ct, now_ms);
            }
            return;
        }
        if self.bypass {
            // Cache bypass (see `BYPASS_*`): the classifier is authoritative,
            // the cache only an accelerator, so results are identical.
            let mut m = self.heads;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let r = self
                    .cur
                    .classifier
                    .lookup_plain(&self.keys[i])
                    .unwrap_or(NO_RULE);
                self.c.classifier_misses += u64::from(r == NO_RULE);
                self.rules[i] = r;
            }
            self.c.cache_bypassed += n as u64;
        } else {
            self.cached_lookup::<false>(n, gen);
        }
        self.drop_fragments(frag_drops);
        self.c.rx_packets += n as u64;

        // Rules hit by many flows are spread over memory: pull each rule,
        // then its counter line and action list, before executing (once
        // per run head whose rule differs from the previous head's).
        let mut m = self.heads;
        let mut last = NO_RULE;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if self.rules[i] != last {
                last = self.rules[i];
                if let Some(r) = self.cur.rules.get(last as usize) {
                    crate::flowcache::prefetch(&**r);
                }
            }
        }
        let mut m = self.heads;
        let mut last = NO_RULE;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if self.rules[i] != last {
                last = self.rules[i];
                if let Some(r) = self.cur.rules.get(last as usize) {
                    r.prefetch_hot(self.worker);
                }
            }
        }
        self.execute_all(in_port, frames, verdicts, now_ms);
    }

    /// A new table version (or the compiled store is `full`): a new cache
    /// generation. Buckets of earlier generations stay revalidatable when
    /// the version only changed rules (see `TableVersion::changes`) and
    /// the compiled entries they point at are kept.
    #[cold]
    #[inline(never)]
    pub(crate) fn new_generation(&mut self, full: bool) {
        let cur = &*self.cur;
        let flush = full || cur.changes_since == cur.version;
        if flush {
            self.bypass = false;
            self.inserts = 0;
        } else if cur.classifier.subtables() > BYPASS_MAX_SUBTABLES {
            self.bypass = false;
        }
        self.bypass_version = cur.version;
        self.gen = self.gen.wrapping_add(1).max(1);
        self.gen_version[self.gen as usize % GEN_RING] = cur.version;
        // Recirculated passes are not revalidated: any change starts them
        // over (their keys are post-ct keys the change log does not cover).
        self.recirc.clear();
        if flush {
            self.valid_from = self.gen;
            if self.compiled.len() != 0 {
                self.compiled.clear();
            }
        } else {
            self.compiled.forget_index();
        }
    }

    /// Run every frame's rule, run by run ([`Datapath::heads`]). Rule
    /// counters are added once per run of frames hitting the same rule, and
    /// a run hitting a [`Rule::simple`] rule reuses the first frame's
    /// verdict (it depends on the ingress port only, which the whole burst
    /// shares): one execution and one verdict fill for the whole run.
    ///
    /// [`Rule::simple`]: crate::table::Rule::simple
    #[inline(always)]
    fn execute_all<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        now_ms: u64,
    ) {
        let n = frames.len();
        let ctx = ExecCtx {
            in_port,
            ports_up: self.sw.ports_up(),
            fdb: &self.sw.fdb,
            now_ms,
            ct: None,
        };
        let mut ev = ExecEvents::default();
        // The rule being counted: its rule, packets and bytes, over
        // consecutive runs. For a simple rule also the first frame's verdict
        // and floods, reused by every later frame of the rule.
        let (mut run_rule, mut run_pkts, mut run_bytes) = (NO_RULE, 0u64, 0u64);
        let (mut run_have, mut run_verdict, mut run_floods) = (false, Verdict::default(), 0u64);
        let mut m = self.heads;
        while m != 0 {
            let s = m.trailing_zeros() as usize;
            m &= m - 1;
            let e = if m == 0 {
                n
            } else {
                m.trailing_zeros() as usize
            };
            let r = self.rules[s];
            let cnt = (e - s) as u64;
            if r == NO_RULE {
                self.sw.table.count_miss(self.worker, 0, cnt);
                let v = Verdict::Drop(DropReason::NoMatch);
                verdicts[s..e].fill(v);
                tally(&mut self.c, v, cnt);
                continue;
            }
            let bytes: u64 = self.lens[s..e].iter().map(|&l| u64::from(l)).sum();
            if r != run_rule {
                if let Some(prev) = self.cur.rules.get(run_rule as usize) {
                    prev.hit_many(self.worker, run_pkts, run_bytes, now_ms);
                }
                (run_rule, run_pkts, run_bytes, run_have) = (r, 0, 0, false);
            }
            run_pkts += cnt;
            run_bytes += bytes;
            let rule = &self.cur.rules[r as usize];
            if rule.simple {
                let mut reused = cnt;
                if !run_have {
                    let before = ev.flooded;
                    run_verdict = execute(
                        &rule.spec.actions,
                        &mut frames[s],
                        usize::from(self.meta[s].l3),
                        &ctx,
                        &mut ev,
                    );
                    run_floods = ev.flooded - before;
                    run_have = true;
                    reused -= 1;
                }
                ev.flooded += run_floods * reused;
                verdicts[s..e].fill(run_verdict);
                tally(&mut self.c, run_verdict, cnt);
                continue;
            }
            for i in s..e {
                let v = execute(
                    &rule.spec.actions,
                    &mut frames[i],
                    usize::from(self.meta[i].l3),
                    &ctx,
                    &mut ev,
                );
                if ev.tunnel_set {
                    take_tunnel_set(&mut self.tun_out, &mut self.tun_dirty, i, &mut ev);
                }
                tally(&mut self.c, v, 1);
                verdicts[i] = v;
            }
        }
        if let Some(prev) = self.cur.rules.get(run_rule as usize) {
            prev.hit_many(self.worker, run_pkts, run_bytes, now_ms);
        }
        self.c.fdb_learned += ev.learned;
        self.c.fdb_moved += ev.moved;
        self.c.fdb_evicted += ev.evicted;
        self.c.flooded += ev.flooded;
    }
}

impl Datapath {
    /// Run every frame's compiled pipeline result (multi-table versions):
    /// its final action list, then the counters of every rule and group
    /// bucket the traversal went through. Frames whose entry needs the
    /// tracker are left out and returned (bit i: frame i) for
    /// `ct_frames`: the others take this path unchanged.
    #[allow(clippy::needless_range_loop)]
    #[inline(never)]
    fn execute_compiled<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        mut copies: Option<&mut Vec<(F, u64)>>,
        now_ms: u64,
    ) -> u32 {
        let ctx = ExecCtx {
            in_port,
            ports_up: self.sw.ports_up(),
            fdb: &self.sw.fdb,
            now_ms,
            ct: None,
        };
        let mut ev = ExecEvents::default();
        let cur = &*self.cur;
        let n = frames.len();
        let entries = &self.compiled.entries;
        // Pull each distinct entry, then what executing it touches.
        for i in 0..n {
            if i > 0 && self.rules[i] == self.rules[i - 1] {
                continue;
            }
            if let Some(c) = entries.get(self.rules[i] as usize) {
                crate::flowcache::prefetch(c);
            }
        }
        // A run of frames with the same entry: counters once per run, and
        // for entries whose verdict depends on the ingress port only, one
        // execution (as the single-table path does).
        let (mut run, mut run_pkts, mut run_bytes) = (NO_RULE, 0u64, 0u64);
        let mut run_verdict: Option<Verdict> = None;
        let mut ct_frames = 0u32;
        for i in 0..n {
            let idx = self.rules[i];
            let len = u64::from(self.lens[i]);
            let Some(c) = entries.get(idx as usize) else {
                verdicts[i] = Verdict::Drop(DropReason::NoMatch);
                tally(&mut self.c, verdicts[i], 1);
                continue;
            };
            if c.has_ct {
                // Connection tracking: after this pass (`ct_frames`).
                ct_frames |= 1 << i;
                continue;
            }
            if idx == run {
                run_pkts += 1;
                run_bytes += len;
                if let Some(v) = run_verdict {
                    ev.flooded += u64::from(c.floods);
                    verdicts[i] = v;
                    tally(&mut self.c, v, 1);
                    continue;
                }
            } else {
                if let Some(prev) = entries.get(run as usize) {
                    count_entry(
                        &self.sw,
                        cur,
                        prev,
                        self.worker,
                        run_pkts,
                        run_bytes,
                        now_ms,
                    );
                }
                (run, run_pkts, run_bytes, run_verdict) = (idx, 1, len, None);
            }
            let l3 = usize::from(self.meta[i].l3);
            let v = if c.actions.is_empty() {
                Verdict::Drop(c.empty_reason)
            } else if c.plan.is_empty() {
                execute(&c.actions, &mut frames[i], l3, &ctx, &mut ev)
            } else {
                let before = copies.as_deref().map_or(0, Vec::len);
                let v = execute_plan(
                    &c.actions,
                    &c.plan,
                    &mut frames[i],
                    l3,
                    &ctx,
                    &mut ev,
                    copies.as_deref_mut(),
                );
                if let Some(cs) = copies.as_deref() {
                    for (_, m) in &cs[before..] {
                        self.c.tx_packets += u64::from(m.count_ones());
                    }
                }
                v
            };
            if ev.tunnel_set {
                take_tunnel_set(&mut self.tun_out, &mut self.tun_dirty, i, &mut ev);
            }
            if c.simple {
                run_verdict = Some(v);
            }
            tally(&mut self.c, v, 1);
            verdicts[i] = v;
        }
        if let Some(prev) = entries.get(run as usize) {
            count_entry(
                &self.sw,
                cur,
                prev,
                self.worker,
                run_pkts,
                run_bytes,
                now_ms,
            );
        }
        self.c.fdb_learned += ev.learned;
        self.c.fdb_moved += ev.moved;
        self.c.fdb_evicted += ev.evicted;
        self.c.flooded += ev.flooded;
        ct_frames
    }

    /// A burst decided by one rule (or none) chosen by the ingress port
    /// alone: no parsing, no hashing, no cache; the rule's counters and the
    /// verdicts are exactly what the full pipeline would produce, since no
    /// rule looks at anything but `in_port` and none rewrites the frame.
    #[inline]
    fn port_only_pass<F: Frame>(
        &mut self,
        in_port: u16,
        r: u32,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        now_ms: u64,
    ) {
        let n = frames.len();
        if n == 0 {
            return;
        }
        let bytes: u64 = frames.iter().map(|f| f.data().len() as u64).sum();
        self.c.rx_packets += n as u64;
        self.c.rx_bytes += bytes;
        self.c.port_only += n as u64;
        // Outputs, floods and drops depend on the rule and the ingress port
        // only, so one execution decides every frame of the burst.
        let v = match self.cur.rules.get(r as usize) {
            None => {
                self.c.classifier_misses += n as u64;
                self.sw.table.count_miss(self.worker, 0, n as u64);
                Verdict::Drop(DropReason::NoMatch)
            }
            Some(rule) => {
                rule.hit_many(self.worker, n as u64, bytes, now_ms);
                let ctx = ExecCtx {
                    in_port,
                    ports_up: self.sw.ports_up(),
                    fdb: &self.sw.fdb,
                    now_ms,
                    ct: None,
                };
                let mut ev = ExecEvents::default();
                let v = execute(&rule.spec.actions, &mut frames[0], 0, &ctx, &mut ev);
                self.c.flooded += ev.flooded * n as u64;
                v
            }
        };
        for slot in verdicts.iter_mut().take(n) {
            *slot = v;
        }
        match v {
            Verdict::Output(m) => self.c.tx_packets += u64::from(m.count_ones()) * n as u64,
            Verdict::Drop(why) => self.c.drops[why as usize] += n as u64,
        }
    }
}

/// Count `packets` frames of `bytes` on every rule and group bucket a
/// compiled flow went through, and its table misses.
#[inline]
pub(crate) fn count_entry(
    sw: &Switch,
    cur: &TableVersion,
    c: &crate::pipeline::Compiled,
    worker: usize,
    packets: u64,
    bytes: u64,
    now_ms: u64,
) {
    for &t in &c.missed {
        sw.table.count_miss(worker, t, packets);
    }
    for rc in &c.counters {
        if let Some(x) = rc.get(worker) {
            x.add(packets, bytes, now_ms);
        }
    }
    for &(g, b) in &c.groups {
        if let Some(grp) = cur.groups.get(g as usize) {
            grp.hit(worker, b, packets, bytes);
        }
    }
}

/// Frame `i`'s actions set tunnel fields: keep them for the caller.
#[cold]
pub(crate) fn take_tunnel_set(
    out: &mut [TunnelSet; BURST],
    dirty: &mut bool,
    i: usize,
    ev: &mut ExecEvents,
) {
    out[i % BURST] = ev.tunnel;
    *dirty = true;
    ev.tunnel = TunnelSet::default();
    ev.tunnel_set = false;
}

/// Count `n` frames decided `v`: copies output, or drops by reason.
#[inline(always)]
pub(crate) fn tally(c: &mut Counters, v: Verdict, n: u64) {
    match v {
        Verdict::Output(m) => c.tx_packets += u64::from(m.count_ones()) * n,
        Verdict::Drop(why) => c.drops[why as usize] += n,
    }
}

/// Frame indices of one burst grouped by output port, for one `tx_burst`
/// per port. Fixed size, reused across bursts (no allocation). A frame
/// listed under several ports must be cloned/refcounted by the caller.
pub struct TxGroups {
    count: [u8; MAX_PORTS as usize],
    idx: [[u8; BURST]; MAX_PORTS as usize],
    used: u64,
}

impl Default for TxGroups {
    fn default() -> Self {
        TxGroups {
            count: [0; MAX_PORTS as usize],
            idx: [[0; BURST]; MAX_PORTS as usize],
            used: 0,
        }
    }
}

impl TxGroups {
    /// Group the first `min(BURST, len)` verdicts.
    pub fn build(&mut self, verdicts: &[Verdict]) {
        let mut m = self.used;
        while m != 0 {
            self.count[m.trailing_zeros() as usize] = 0;
            m &= m - 1;
        }
        self.used = 0;
        for (i, v) in verdicts.iter().take(BURST).enumerate() {
            if let Verdict::Output(mut ports) = *v {
                self.used |= ports;
                while ports != 0 {
                    let p = ports.trailing_zeros() as usize;
                    ports &= ports - 1;
                    self.idx[p][usize::from(self.count[p])] = i as u8;
                    self.count[p] += 1;
                }
            }
        }
    }

    /// `(port, frame indices)` for every port with frames, in port order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> {
        let mut m = self.used;
        core::iter::from_fn(move || {
            if m == 0 {
                return None;
            }
            let p = m.trailing_zeros() as usize;
            m &= m - 1;
            Some((p as u16, &self.idx[p][..usize::from(self.count[p])]))
        })
    }
}
