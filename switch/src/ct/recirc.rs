//! The datapath's ct path: frames whose compiled entry holds `ct` /
//! `ct_clear` actions or recirculates (`ct(table=N)`).
//!
//! A burst is split: `Datapath::execute_compiled` runs every other frame
//! as before and hands these over (a bit mask). Each runs here, one pass
//! after the other:
//!
//! ```text
//! pass entry (compiled) ─► execute / execute_plan with the tracker in ExecCtx
//!     (`ct` calls Conntrack::execute on the frame: state, commit, NAT in place;
//!      the frame's CtMeta lives in ExecEvents::ct for this frame only)
//!   fork? ─► re-extract the key from the (possibly NATed) bytes, masked
//!            CtKey of the new ct fields + the frozen state's id
//!        ─► RecircCache (per worker) ─miss─► pipeline::compile_from
//!        ─► next pass (at most MAX_RECIRC_DEPTH)
//! ```
//!
//! Outputs of a pass leave with the bytes the frame has when the next
//! pass starts to rewrite it: when a later pass modifies the frame (a
//! `nat`, a set-field) the earlier outputs go out as a copy first.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use conntrack::{state, CtMeta, Prepared};

use super::{CtId, CtKey};
use crate::action::{execute, execute_plan, Action, ExecCtx, ExecEvents};
use crate::datapath::BURST;
use crate::datapath::{count_entry, take_tunnel_set, tally, Datapath};
use crate::extract::extract_masked;
use crate::frame::Frame;
use crate::key::{field as kf, FlowKey, TUN_PRESENT};
use crate::pipeline::compile_from;
use crate::table::FragMode;
use crate::verdict::{DropReason, Verdict};

/// Recirculations per frame (OVS's `dpif-netdev` `MAX_RECIRC_DEPTH`);
/// a frame that would recirculate once more is dropped, as OVS drops it.
pub const MAX_RECIRC_DEPTH: u32 = 8;

/// Entries the recirculation cache holds before it starts over.
const MAX_RECIRC_ENTRIES: usize = 1 << 18;

/// A recirculated pass's cache key: the masked flow key and the masked ct
/// fields with the frozen state's id.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RecircKey(FlowKey, CtKey);

impl Hash for RecircKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash() ^ self.1.hash().rotate_left(29));
    }
}

#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// One worker's cache of recirculated passes: (masked key, masked ct
/// fields + frozen state) → compiled entry. Started over with every new
/// table version (and when full); only misses allocate.
pub struct RecircCache {
    map: HashMap<RecircKey, u32, BuildHasherDefault<PassThrough>>,
    /// The last lookup: its key, ct fields and entry (`u32::MAX`: none).
    last_key: FlowKey,
    last_ct: CtKey,
    last_entry: u32,
}

impl Default for RecircCache {
    fn default() -> RecircCache {
        RecircCache {
            map: HashMap::default(),
            last_key: FlowKey::ZERO,
            last_ct: CtKey::ZERO,
            last_entry: u32::MAX,
        }
    }
}

impl RecircCache {
    /// Forget every entry.
    pub fn clear(&mut self) {
        self.last_entry = u32::MAX;
        if !self.map.is_empty() {
            self.map.clear();
        }
    }

    /// Entries cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Rule counters of a burst's ct frames, summed per pass depth while
/// consecutive frames take the same compiled entry there (counted once
/// per run, as `execute_compiled` counts runs).
struct Runs {
    entry: [u32; MAX_RECIRC_DEPTH as usize + 1],
    pkts: [u64; MAX_RECIRC_DEPTH as usize + 1],
    bytes: [u64; MAX_RECIRC_DEPTH as usize + 1],
    /// No rule reads a field NAT rewrites (the lookup mask has no bit in
    /// `nw_src`, `nw_dst`, `tp_src`, `tp_dst`): a translated frame's
    /// masked key is the key it had.
    nat_blind: bool,
}

impl Runs {
    fn new(lookup_mask: &FlowKey) -> Runs {
        let m = lookup_mask.as_bytes();
        let nat_blind = m[kf::TP_SRC.start..kf::TP_DST.end].iter().all(|&b| b == 0)
            && m[kf::NW_SRC6.start..kf::NW_DST6.end]
                .iter()
                .all(|&b| b == 0);
        Runs {
            entry: [u32::MAX; MAX_RECIRC_DEPTH as usize + 1],
            pkts: [0; MAX_RECIRC_DEPTH as usize + 1],
            bytes: [0; MAX_RECIRC_DEPTH as usize + 1],
            nat_blind,
        }
    }
}

/// The `ct` of a pass that does nothing else (`actions=ct(...)`, OVS's
/// usual `ct(table=N)` rule): its spec.
#[inline(always)]
fn ct_only(c: &crate::pipeline::Compiled) -> Option<CtId> {
    match &c.actions[..] {
        [Action::Ct(id)] if c.plan.is_empty() => Some(*id),
        _ => None,
    }
}

impl Datapath {
    /// Run the frames of `mask` (bit i: frame i), whose compiled entries
    /// need the tracker, pass after pass (see the module docs).
    #[inline(never)]
    pub(crate) fn ct_frames<F: Frame>(
        &mut self,
        in_port: u16,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        mut copies: Option<&mut Vec<(F, u64)>>,
        mask: u32,
        now_ms: u64,
    ) {
        let sw = std::sync::Arc::clone(&self.sw);
        let ctx = ExecCtx {
            in_port,
            ports_up: sw.ports_up(),
            fdb: &sw.fdb,
            now_ms,
            ct: Some(&**sw.conntrack()),
        };
        let mut ev = ExecEvents::default();
        // Look at every frame whose first pass starts with `ct` before the
        // first is tracked: parsed, hashed, its index bucket, then its
        // connection, asked for while the others' misses are in flight.
        let mut prep = [Prepared::SLOW; BURST];
        if let Some(t) = ctx.ct {
            let mut m = mask;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let first = self.compiled.entries.get(self.rules[i] as usize);
                if let Some(c) = first.filter(|c| c.plan.is_empty()) {
                    if let Some(Action::Ct(id)) = c.actions.first() {
                        let l3 = usize::from(self.meta[i].l3);
                        prep[i] = t.prepare(frames[i].data(), l3, id.spec().zone);
                    }
                }
            }
            let mut m = mask;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                t.prefetch(&prep[i]);
            }
        }
        let mut runs = Runs::new(&self.cur.lookup_mask);
        let mut m = mask;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let v = self.ct_frame(
                i,
                in_port,
                &mut frames[i],
                copies.as_deref_mut(),
                &ctx,
                &mut ev,
                &mut runs,
                &prep[i],
            );
            if ev.tunnel_set {
                take_tunnel_set(&mut self.tun_out, &mut self.tun_dirty, i, &mut ev);
            }
            tally(&mut self.c, v, 1);
            verdicts[i] = v;
        }
        for d in 0..runs.entry.len() {
            self.count_run(&mut runs, d, u32::MAX, now_ms);
        }
        // Fragments whose datagram completed resume here (ipf.rs).
        self.ipf_service(copies, &mut ev, now_ms);
        self.c.fdb_learned += ev.learned;
        self.c.fdb_moved += ev.moved;
        self.c.fdb_evicted += ev.evicted;
        self.c.flooded += ev.flooded;
    }

    /// One more frame of `bytes` took `entry` at pass depth `d`: extend
    /// the run there, or count the run and start another (`entry`
    /// `u32::MAX`: just count).
    #[inline(always)]
    fn count_run(&self, runs: &mut Runs, d: usize, entry: u32, now_ms: u64) {
        if runs.entry[d] == entry {
            return;
        }
        if let Some(c) = self.compiled.entries.get(runs.entry[d] as usize) {
            count_entry(
                &self.sw,
                &self.cur,
                c,
                self.worker,
                runs.pkts[d],
                runs.bytes[d],
                now_ms,
            );
        }
        (runs.entry[d], runs.pkts[d], runs.bytes[d]) = (entry, 0, 0);
    }

    /// One frame: its passes, the tracker's fields carried from one to
    /// the next; returns its verdict.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn ct_frame<F: Frame>(
        &mut self,
        i: usize,
        in_port: u16,
        frame: &mut F,
        mut copies: Option<&mut Vec<(F, u64)>>,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
        runs: &mut Runs,
        prep: &Prepared,
    ) -> Verdict {
        if self.meta[i].frag && copies.is_some() {
            // IP fragments meet the reassembler at each `ct` (ipf.rs).
            return self.ipf_frame(i, in_port, frame, copies, ctx, ev);
        }
        // What `prepare` saw serves the first `ct` of the first pass only.
        let mut prep = prep;
        let len = u64::from(self.lens[i]);
        let mut entry = self.rules[i];
        let mut l3 = usize::from(self.meta[i].l3);
        let mut ct = CtMeta::default();
        let (mut out, mut why) = (0u64, DropReason::Action);
        let mut depth = 0u32;
        // `self.keys[i]` is still what extracting the frame's bytes gives
        // (nothing rewrote them; fragments and malformed frames are
        // always extracted again).
        let mut key_ok = !self.meta[i].special;
        loop {
            let Some(c) = self.compiled.entries.get(entry as usize) else {
                why = DropReason::NoMatch;
                break;
            };
            let d = depth as usize;
            self.count_run(runs, d, entry, ctx.now_ms);
            runs.pkts[d] += 1;
            runs.bytes[d] += len;
            let v = if let Some(id) = ct_only(c) {
                // The pass is its `ct`: the tracker straight on the
                // frame's ct fields (what `execute` would do, without
                // the generic action loop); no output.
                let p = std::mem::replace(&mut prep, &Prepared::SLOW);
                match ctx.ct {
                    Some(t) => {
                        t.execute_prepared(frame.data_mut(), l3, p, id.spec(), &mut ct, ctx.now_ms)
                    }
                    None => {
                        ct = CtMeta {
                            state: state::TRK | state::INV,
                            zone: id.spec().zone,
                            ..CtMeta::default()
                        }
                    }
                }
                key_ok &= runs.nat_blind || ct.state & (state::SNAT | state::DNAT) == 0;
                Verdict::Drop(DropReason::Action)
            } else {
                // Only passes with `ct`/`ct_clear` read or change the ct
                // fields.
                if c.has_ct {
                    ev.ct = ct;
                    ev.ct_prep = *std::mem::replace(&mut prep, &Prepared::SLOW);
                }
                let v = if c.actions.is_empty() {
                    Verdict::Drop(c.empty_reason)
                } else if c.plan.is_empty() {
                    execute(&c.actions, frame, l3, ctx, ev)
                } else {
                    let before = copies.as_deref().map_or(0, Vec::len);
                    let v = execute_plan(
                        &c.actions,
                        &c.plan,
                        frame,
                        l3,
                        ctx,
                        ev,
                        copies.as_deref_mut(),
                    );
                    if let Some(cs) = copies.as_deref() {
                        for (_, p) in &cs[before..] {
                            self.c.tx_packets += u64::from(p.count_ones());
                        }
                    }
                    v
                };
                if c.has_ct {
                    ct = ev.ct;
                    ev.ct = CtMeta::default();
                    ev.ct_prep = Prepared::SLOW;
                }
                key_ok &= ct.state & (state::SNAT | state::DNAT) == 0
                    && !c
                        .actions
                        .iter()
                        .any(|a| !matches!(a, Action::Ct(_)) && a.modifies());
                v
            };
            match v {
                Verdict::Output(p) => out |= p,
                Verdict::Drop(r) => why = r,
            }
            let Some(frozen) = c.fork else { break };
            if matches!(
                v,
                Verdict::Drop(DropReason::TtlExpired | DropReason::NoHeadroom)
            ) {
                break;
            }
            if depth == MAX_RECIRC_DEPTH {
                // As OVS: "Packet dropped. Max recirculation depth exceeded."
                why = DropReason::Action;
                break;
            }
            depth += 1;
            let (next, new_l3) = self.recirculate(i, in_port, frame, &ct, frozen, key_ok);
            entry = next;
            l3 = new_l3;
            self.copy_before_rewrite(entry, &mut out, frame, copies.as_deref_mut());
        }
        if out != 0 {
            Verdict::Output(out)
        } else {
            Verdict::Drop(why)
        }
    }

    /// When the pass about to run (`entry`) rewrites the frame, what the
    /// passes so far output (`out`) leaves now, as a copy of the current
    /// bytes (without a sink: with the final bytes).
    #[inline]
    pub(super) fn copy_before_rewrite<F: Frame>(
        &mut self,
        entry: u32,
        out: &mut u64,
        frame: &F,
        copies: Option<&mut Vec<(F, u64)>>,
    ) {
        let modifies = self
            .compiled
            .entries
            .get(entry as usize)
            .is_some_and(|c| c.modifies);
        if *out == 0 || !modifies {
            return;
        }
        if let Some(sink) = copies {
            if let Some(d) = frame.duplicate() {
                sink.push((d, *out));
                self.c.tx_packets += u64::from(out.count_ones());
                *out = 0;
            }
        }
    }

    /// The next pass of frame `i`: its key re-extracted from the bytes
    /// (NAT may have rewritten them), its ct fields and the frozen state
    /// looked up in the recirculation cache, compiled on a miss. Returns
    /// the entry and the frame's L3 offset.
    #[inline]
    pub(super) fn recirculate<F: Frame>(
        &mut self,
        i: usize,
        in_port: u16,
        frame: &F,
        ct: &CtMeta,
        frozen: u32,
        key_ok: bool,
    ) -> (u32, usize) {
        let cur = &*self.cur;
        let mut ctk = CtKey::from_meta_masked(ct, &cur.ct_mask);
        ctk.set_recirc(frozen);
        if key_ok {
            // Frames of a burst mostly recirculate with the same masked
            // key and ct fields as the previous one (the key holds only
            // what some rule reads): compare in place before hashing.
            let l3 = usize::from(self.meta[i].l3);
            if self.recirc.last_entry != u32::MAX
                && self.recirc.last_ct == ctk
                && self.recirc.last_key == self.keys[i]
            {
                self.c.cache_hits += 1;
                return (self.recirc.last_entry, l3);
            }
            return (self.recirc_lookup(self.keys[i], ctk, frozen), l3);
        }
        let mut key = FlowKey::ZERO;
        let meta = extract_masked(frame.data(), in_port, &mut key, &cur.lookup_mask);
        if meta.special && meta.frag && cur.frag_mode == FragMode::Normal {
            key.set_tp_src(0);
            key.set_tp_dst(0);
        }
        // Tunnel metadata stays with the frame (OVS freezes it).
        let orig = &self.keys[i];
        if orig.tun_flags() & TUN_PRESENT != 0 {
            let r = kf::TUN_FLAGS..kf::TUN_FLAGS + 1;
            key.as_bytes_mut()[r.clone()].copy_from_slice(&orig.as_bytes()[r]);
            key.as_bytes_mut()[kf::TUN_META].copy_from_slice(&orig.as_bytes()[kf::TUN_META]);
        }
        let l3 = usize::from(meta.l3);
        if self.recirc.last_entry != u32::MAX
            && self.recirc.last_ct == ctk
            && self.recirc.last_key == key
        {
            self.c.cache_hits += 1;
            return (self.recirc.last_entry, l3);
        }
        (self.recirc_lookup(key, ctk, frozen), l3)
    }

    /// The recirculation cache's entry for (key, ct fields with the
    /// frozen state's id), compiled on a miss; remembered as the last.
    #[inline(never)]
    fn recirc_lookup(&mut self, key: FlowKey, ctk: CtKey, frozen: u32) -> u32 {
        let cur = &*self.cur;
        let rk = RecircKey(key, ctk);
        (self.recirc.last_key, self.recirc.last_ct) = (key, ctk);
        if let Some(&e) = self.recirc.map.get(&rk) {
            self.c.cache_hits += 1;
            self.recirc.last_entry = e;
            return e;
        }
        self.c.cache_misses += 1;
        let (e, miss) = match &cur.pipeline {
            Some(p) => compile_from(
                &cur.rules,
                p,
                &cur.groups,
                &key,
                Some((frozen, &ctk)),
                self.sw.ports_up(),
                &mut self.compiled,
            ),
            None => (u32::MAX, true),
        };
        self.c.classifier_misses += u64::from(miss);
        if self.recirc.map.len() >= MAX_RECIRC_ENTRIES {
            self.recirc.map.clear();
        }
        self.recirc.map.insert(rk, e);
        self.recirc.last_entry = e;
        e
    }
}
