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

use conntrack::CtMeta;

use super::ipf::Resume;
use super::CtKey;
use crate::action::{execute, execute_plan, ExecCtx, ExecEvents};
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
#[derive(Default)]
pub struct RecircCache {
    map: HashMap<RecircKey, u32, BuildHasherDefault<PassThrough>>,
}

impl RecircCache {
    /// Forget every entry.
    pub fn clear(&mut self) {
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
            );
            if ev.tunnel_set {
                take_tunnel_set(&mut self.tun_out, &mut self.tun_dirty, i, &mut ev);
            }
            tally(&mut self.c, v, 1);
            verdicts[i] = v;
        }
        // Fragments whose datagram completed resume here.
        self.ipf_service(copies, &mut ev, now_ms);
        self.c.fdb_learned += ev.learned;
        self.c.fdb_moved += ev.moved;
        self.c.fdb_evicted += ev.evicted;
        self.c.flooded += ev.flooded;
    }

    /// One frame: its passes, the tracker's fields carried from one to
    /// the next; returns its verdict.
    fn ct_frame<F: Frame>(
        &mut self,
        i: usize,
        in_port: u16,
        frame: &mut F,
        copies: Option<&mut Vec<(F, u64)>>,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
    ) -> Verdict {
        let k = &self.keys[i];
        let start = Resume {
            entry: self.rules[i],
            at: 0,
            l3: self.meta[i].l3,
            depth: 0,
            pass: 0,
            in_port,
            len: self.lens[i],
            ct: CtMeta::default(),
            tun: (k.tun_flags() & TUN_PRESENT != 0).then_some(*k),
            frag: self.meta[i].frag,
            valid_from: 0,
        };
        self.ct_run(start, frame, copies, ctx, ev)
    }

    /// A frame's passes from `r` on (a frame of the burst from its first
    /// pass; a fragment the reassembler held from the action after its
    /// `ct`); returns its verdict.
    pub(crate) fn ct_run<F: Frame>(
        &mut self,
        r: Resume,
        frame: &mut F,
        mut copies: Option<&mut Vec<(F, u64)>>,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
    ) -> Verdict {
        let len = u64::from(r.len);
        let mut at = r;
        let mut ct = r.ct;
        let (mut out, mut why) = (0u64, DropReason::Action);
        loop {
            let cur = &*self.cur;
            let Some(c) = self.compiled.entries.get(at.entry as usize) else {
                why = DropReason::NoMatch;
                break;
            };
            if at.at == 0 {
                count_entry(&self.sw, cur, c, self.worker, 1, len, ctx.now_ms);
            }
            ev.ct = ct;
            let v = if c.actions.is_empty() {
                Verdict::Drop(c.empty_reason)
            } else if at.frag && c.plan.is_empty() && copies.is_some() {
                // IP fragments meet the reassembler at each `ct` (ipf.rs).
                at.ct = ct;
                match self.ipf_pass(&at, frame, ctx, ev, &mut out) {
                    Some(v) => v,
                    None if out != 0 => return Verdict::Output(out),
                    None => return Verdict::Drop(DropReason::FragHeld),
                }
            } else if c.plan.is_empty() {
                execute(&c.actions, frame, usize::from(at.l3), ctx, ev)
            } else {
                let before = copies.as_deref().map_or(0, Vec::len);
                let v = execute_plan(
                    &c.actions,
                    &c.plan,
                    frame,
                    usize::from(at.l3),
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
            ct = ev.ct;
            ev.ct = CtMeta::default();
            match v {
                Verdict::Output(p) => out |= p,
                Verdict::Drop(r) => why = r,
            }
            let Some(c) = self.compiled.entries.get(at.entry as usize) else {
                break;
            };
            let Some(frozen) = c.fork else { break };
            if matches!(
                v,
                Verdict::Drop(DropReason::TtlExpired | DropReason::NoHeadroom)
            ) {
                break;
            }
            if at.depth == MAX_RECIRC_DEPTH {
                // As OVS: "Packet dropped. Max recirculation depth exceeded."
                why = DropReason::Action;
                break;
            }
            at.depth += 1;
            let (next, new_l3) = self.recirculate(at.tun.as_ref(), at.in_port, frame, &ct, frozen);
            at.entry = next;
            at.l3 = new_l3 as u16;
            at.at = 0;
            at.pass = frozen + 1;
            let modifies = self
                .compiled
                .entries
                .get(at.entry as usize)
                .is_some_and(|c| c.modifies);
            if out != 0 && modifies {
                // The next pass rewrites the frame: what this one output
                // leaves now, as a copy (without a sink, with the final
                // bytes).
                if let Some(sink) = copies.as_deref_mut() {
                    if let Some(d) = frame.duplicate() {
                        sink.push((d, out));
                        self.c.tx_packets += u64::from(out.count_ones());
                        out = 0;
                    }
                }
            }
        }
        if out != 0 {
            Verdict::Output(out)
        } else {
            Verdict::Drop(why)
        }
    }

    /// The next pass of a frame: its key re-extracted from the bytes
    /// (NAT may have rewritten them), its ct fields and the frozen state
    /// looked up in the recirculation cache, compiled on a miss. Returns
    /// the entry and the frame's L3 offset.
    fn recirculate<F: Frame>(
        &mut self,
        tun: Option<&FlowKey>,
        in_port: u16,
        frame: &F,
        ct: &CtMeta,
        frozen: u32,
    ) -> (u32, usize) {
        let cur = &*self.cur;
        let mut key = FlowKey::ZERO;
        let meta = extract_masked(frame.data(), in_port, &mut key, &cur.lookup_mask);
        if meta.special && meta.frag && cur.frag_mode == FragMode::Normal {
            key.set_tp_src(0);
            key.set_tp_dst(0);
        }
        // Tunnel metadata stays with the frame (OVS freezes it).
        if let Some(orig) = tun {
            let r = kf::TUN_FLAGS..kf::TUN_FLAGS + 1;
            key.as_bytes_mut()[r.clone()].copy_from_slice(&orig.as_bytes()[r]);
            key.as_bytes_mut()[kf::TUN_META].copy_from_slice(&orig.as_bytes()[kf::TUN_META]);
        }
        let mut ctk = CtKey::from_meta(ct).masked(&cur.ct_mask);
        ctk.set_recirc(frozen);
        let rk = RecircKey(key, ctk);
        if let Some(&e) = self.recirc.map.get(&rk) {
            self.c.cache_hits += 1;
            return (e, usize::from(meta.l3));
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
        (e, usize::from(meta.l3))
    }
}
