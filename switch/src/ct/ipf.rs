//! IP fragments at the `ct` action: held until their datagram completes,
//! tracked once as the whole datagram, then sent on — the original
//! fragments, by offset, each with the datagram's ct fields — as OVS's
//! user-space datapath does with its `ipf` module (enabled by default).
//!
//! ```text
//! ct_frame (recirc.rs): a fragment ─► ipf_frame / ipf_run (its passes), a plain action list
//!   └─ ipf_pass: the actions up to each `ct` ─► conntrack::ipf::check
//!        not a fragment / refused ─► Conntrack::execute (a fragment: +trk+inv)
//!        invalid, overlap ─────────► +trk+inv
//!        held ─► Store: the frame (Frame::hold, an mbuf reference; the burst's
//!                handle leaves with DropReason::FragHeld) and where it stopped
//!                (entry, action after the `ct`, L3, pass, depth, ct fields)
//!        complete ─► reassemble into the store's buffer ─► Conntrack::execute once
//!                ─► ipf::write_back (NAT) into each fragment ─► work queue (by offset)
//! end of the burst's ct frames (ipf_service): lists past 15 s expire; each fragment
//!   of the work queue resumes after its `ct` (ipf_run) and leaves as a copy
//! ```
//!
//! The store is per worker (no lock; fragments of one datagram reach one
//! worker when they arrive on one queue); the settings and counters are
//! the tracker's ([`conntrack::Conntrack::ipf`]), shared. A frame that is
//! not a fragment pays one flag test (`ct_frame`: `meta.frag`). Only plain action
//! lists hold fragments (a list cut into segments, and runs without a
//! copy sink, track fragments as they are: `+trk+inv`).

use std::collections::VecDeque;

use conntrack::ipf::{self, Add, Check, Counter, FragPos, ListKey, Reassembler};
use conntrack::{state, Conntrack, CtMeta, CtSpec};

use super::recirc::MAX_RECIRC_DEPTH;
use crate::action::{execute_l3, Action, ExecCtx, ExecEvents};
use crate::datapath::{count_entry, tally, Datapath};
use crate::frame::Frame;
use crate::key::FlowKey;
use crate::verdict::{DropReason, Verdict};

/// Where a frame's passes stand: a frame of the burst starts at its
/// first pass; a held fragment resumes after its `ct`.
#[derive(Clone, Copy)]
pub(crate) struct Resume {
    /// Compiled entry of the pass.
    pub entry: u32,
    /// First action to run in it.
    pub at: u16,
    /// L3 offset.
    pub l3: u16,
    /// Recirculations so far.
    pub depth: u32,
    /// The pass (0: the first; else its frozen state + 1): part of a
    /// fragment list's key, as OVS's `recirc_id`.
    pub pass: u32,
    /// Ingress port.
    pub in_port: u16,
    /// Frame length (rule byte counters).
    pub len: u32,
    /// The frame's ct fields when the pass resumes.
    pub ct: CtMeta,
    /// The flow key as extracted (its tunnel metadata stays with the
    /// frame across recirculations).
    pub key: FlowKey,
    /// The datapath's `valid_from` when held (its compiled entries are
    /// gone once that changes).
    pub valid_from: u32,
}

/// A fragment the reassembler holds.
pub(crate) struct Held<F> {
    frame: F,
    r: Resume,
}

/// One worker's fragments (see the module docs).
pub(crate) struct Store<F> {
    reass: Reassembler<Held<F>>,
    /// Fragments of completed datagrams, by offset, to resume.
    work: VecDeque<Held<F>>,
    done: Vec<(Held<F>, FragPos)>,
    /// The datagram being tracked.
    buf: Vec<u8>,
}

impl<F> Store<F> {
    fn new() -> Store<F> {
        let cap = ipf::MAX_FRAGS_UPPER_BOUND;
        Store {
            reass: Reassembler::new(cap),
            work: VecDeque::with_capacity(cap as usize),
            done: Vec::with_capacity(cap as usize),
            buf: Vec::with_capacity(65536 + 256),
        }
    }
}

/// `+trk+inv` in `zone`.
fn invalid(zone: u16) -> CtMeta {
    CtMeta {
        state: state::TRK | state::INV,
        zone,
        ..CtMeta::default()
    }
}

impl Datapath {
    /// A fragment of the burst (frame `i`): its passes (`ct_frame`'s, with
    /// the reassembler at each `ct`); returns its verdict.
    pub(crate) fn ipf_frame<F: Frame>(
        &mut self,
        i: usize,
        in_port: u16,
        frame: &mut F,
        copies: Option<&mut Vec<(F, u64)>>,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
    ) -> Verdict {
        let start = Resume {
            entry: self.rules[i],
            at: 0,
            l3: self.meta[i].l3,
            depth: 0,
            pass: 0,
            in_port,
            len: self.lens[i],
            ct: CtMeta::default(),
            key: self.keys[i],
            valid_from: self.valid_from,
        };
        self.ipf_run(start, frame, copies, ctx, ev)
    }

    /// A fragment's passes from `r` on (from its first pass, or from the
    /// action after the `ct` it was held at); returns its verdict.
    fn ipf_run<F: Frame>(
        &mut self,
        r: Resume,
        frame: &mut F,
        mut copies: Option<&mut Vec<(F, u64)>>,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
    ) -> Verdict {
        let len = u64::from(r.len);
        let mut at = r;
        let (mut out, mut why) = (0u64, DropReason::Action);
        loop {
            let Some(c) = self.compiled.entries.get(at.entry as usize) else {
                why = DropReason::NoMatch;
                break;
            };
            if at.at == 0 {
                count_entry(&self.sw, &self.cur, c, self.worker, 1, len, ctx.now_ms);
            }
            ev.ct = at.ct;
            let v = if c.actions.is_empty() {
                Verdict::Drop(c.empty_reason)
            } else if c.plan.is_empty() {
                match self.ipf_pass(&at, frame, ctx, ev, &mut out) {
                    Some(v) => v,
                    None if out != 0 => return Verdict::Output(out),
                    None => return Verdict::Drop(DropReason::FragHeld),
                }
            } else {
                // A list cut into segments: the fragment as it is.
                let before = copies.as_deref().map_or(0, Vec::len);
                let v = crate::action::execute_plan(
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
            at.ct = ev.ct;
            ev.ct = CtMeta::default();
            match v {
                Verdict::Output(p) => out |= p,
                Verdict::Drop(d) => why = d,
            }
            let Some(frozen) = self
                .compiled
                .entries
                .get(at.entry as usize)
                .and_then(|c| c.fork)
            else {
                break;
            };
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
            // `recirculate` reads a frame's tunnel metadata from the
            // burst's key array: slot 0 is free once the burst's first ct
            // frame ran (frames run in order; a frame's own slot is its
            // key already).
            self.keys[0] = at.key;
            let (next, l3) = self.recirculate(0, at.in_port, frame, &at.ct, frozen, false);
            (at.entry, at.l3, at.at, at.pass) = (next, l3 as u16, 0, frozen + 1);
            self.copy_before_rewrite(at.entry, &mut out, frame, copies.as_deref_mut());
        }
        if out != 0 {
            Verdict::Output(out)
        } else {
            Verdict::Drop(why)
        }
    }

    /// This worker's store for frames `F`.
    fn ipf_store<F: Frame>(&mut self) -> &mut Store<F> {
        let ours = self.ipf.as_ref().is_some_and(|b| b.is::<Store<F>>());
        if !ours {
            self.ipf = Some(Box::new(Store::<F>::new()));
        }
        match self.ipf.as_mut().and_then(|b| b.downcast_mut::<Store<F>>()) {
            Some(s) => s,
            None => unreachable!("the store was just made for F"),
        }
    }

    /// One pass of a fragment from `r` (a plain action list): the actions
    /// up to each `ct` run as usual, each `ct` offers the fragment to the
    /// reassembler. `Some(verdict)`: the pass ran to its end. `None`: the
    /// fragment is held (alone, or with its whole datagram for the work
    /// queue); `out` gets the outputs made before.
    pub(crate) fn ipf_pass<F: Frame>(
        &mut self,
        r: &Resume,
        frame: &mut F,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
        out: &mut u64,
    ) -> Option<Verdict> {
        let sw = std::sync::Arc::clone(&self.sw);
        let ct: &Conntrack = sw.conntrack();
        let valid_from = self.valid_from;
        let (mut pos, mut l3) = (usize::from(r.at), usize::from(r.l3));
        let (mut pass_out, mut why) = (0u64, DropReason::Action);
        loop {
            let acts = &self.compiled.entries.get(r.entry as usize)?.actions;
            let k = acts
                .get(pos..)
                .and_then(|a| a.iter().position(|a| matches!(a, Action::Ct(_))))
                .map(|k| pos + k);
            let end = k.unwrap_or(acts.len());
            match execute_l3(acts.get(pos..end).unwrap_or(&[]), frame, &mut l3, ctx, ev) {
                Verdict::Output(m) => pass_out |= m,
                Verdict::Drop(d @ (DropReason::TtlExpired | DropReason::NoHeadroom)) => {
                    return Some(if pass_out != 0 {
                        Verdict::Output(pass_out)
                    } else {
                        Verdict::Drop(d)
                    });
                }
                Verdict::Drop(d) => why = d,
            }
            let Some(k) = k else { break };
            let Some(Action::Ct(c)) = acts.get(k).copied() else {
                break;
            };
            let spec = c.spec();
            let ipf = ct.ipf();
            let check = if ipf.any_enabled() {
                ipf::check(frame.data(), l3, ipf.min_frag(false), ipf.min_frag(true))
            } else {
                Check::NotFragment
            };
            match check {
                Check::NotFragment => {
                    ct.execute(frame.data_mut(), l3, spec, &mut ev.ct, ctx.now_ms)
                }
                Check::Invalid { too_small } => {
                    if too_small {
                        let v6 = frame.data().get(l3).is_some_and(|b| b >> 4 == 6);
                        ipf.count(v6, Counter::TooSmall, 1);
                    }
                    ev.ct = invalid(spec.zone);
                }
                Check::Frag(fi) => {
                    // Outputs already made leave with this frame's buffer:
                    // then the reassembler keeps a copy.
                    let kept = if *out | pass_out != 0 {
                        frame.duplicate()
                    } else {
                        frame.hold()
                    };
                    let Some(kept) = kept else {
                        ct.execute(frame.data_mut(), l3, spec, &mut ev.ct, ctx.now_ms);
                        pos = k + 1;
                        continue;
                    };
                    let held = Held {
                        frame: kept,
                        r: Resume {
                            at: (k + 1) as u16,
                            l3: l3 as u16,
                            ct: ev.ct,
                            valid_from,
                            ..*r
                        },
                    };
                    let key = ListKey::of(&fi, spec.zone, r.pass);
                    let st = self.ipf_store::<F>();
                    st.reass.expire(ipf, ctx.now_ms, drop);
                    match st.reass.add(ipf, &key, &fi, held, ctx.now_ms) {
                        Add::Held => {
                            *out |= pass_out;
                            return None;
                        }
                        Add::Complete(list) => {
                            st.complete(list, fi.v6, ct, spec, ctx.now_ms);
                            *out |= pass_out;
                            return None;
                        }
                        Add::Refused(h) => {
                            drop(h);
                            ct.execute(frame.data_mut(), l3, spec, &mut ev.ct, ctx.now_ms);
                        }
                        Add::Overlap(h) => {
                            drop(h);
                            ev.ct = invalid(spec.zone);
                        }
                    }
                }
            }
            pos = k + 1;
        }
        Some(if pass_out != 0 {
            Verdict::Output(pass_out)
        } else {
            Verdict::Drop(why)
        })
    }

    /// After a burst's ct frames: expire old lists, then resume every
    /// fragment of a completed datagram, by offset; their outputs leave as
    /// copies. Returns at once when this worker never held a fragment.
    pub(crate) fn ipf_service<F: Frame>(
        &mut self,
        copies: Option<&mut Vec<(F, u64)>>,
        ev: &mut ExecEvents,
        now_ms: u64,
    ) {
        if self.ipf.is_none() {
            return;
        }
        let sw = std::sync::Arc::clone(&self.sw);
        let ct: &Conntrack = sw.conntrack();
        let ipf = ct.ipf();
        let valid_from = self.valid_from;
        self.ipf_store::<F>().reass.expire(ipf, now_ms, drop);
        let Some(sink) = copies else { return };
        loop {
            let Some(mut h) = self.ipf_store::<F>().work.pop_front() else {
                break;
            };
            if h.r.valid_from != valid_from {
                // The flow tables changed meanwhile: the pass it stopped
                // in is gone.
                let v6 = h
                    .frame
                    .data()
                    .get(usize::from(h.r.l3))
                    .is_some_and(|b| b >> 4 == 6);
                ipf.count(v6, Counter::Purged, 1);
                continue;
            }
            let ctx = ExecCtx {
                in_port: h.r.in_port,
                ports_up: sw.ports_up(),
                fdb: &sw.fdb,
                now_ms,
                ct: Some(ct),
            };
            let v = self.ipf_run(h.r, &mut h.frame, Some(&mut *sink), &ctx, ev);
            ev.ct = CtMeta::default();
            match v {
                Verdict::Output(m) => {
                    tally(&mut self.c, v, 1);
                    sink.push((h.frame, m));
                }
                Verdict::Drop(DropReason::FragHeld) => {}
                Verdict::Drop(_) => tally(&mut self.c, v, 1),
            }
        }
    }
}

impl<F: Frame> Store<F> {
    /// A datagram completed: reassemble it, track it once with `spec`,
    /// carry the result into every fragment, queue them by offset.
    fn complete(&mut self, list: u32, v6: bool, ct: &Conntrack, spec: &CtSpec, now: u64) {
        let ipf = ct.ipf();
        self.done.clear();
        self.reass.take(ipf, list, &mut self.done);
        let Some(first) = self.done.first() else {
            return;
        };
        let l3 = usize::from(first.0.r.l3);
        let ok = ipf::reassemble(
            v6,
            l3,
            self.done.iter().map(|(h, p)| (h.frame.data(), *p)),
            &mut self.buf,
        );
        if !ok {
            ipf.count(v6, Counter::Purged, self.done.len() as u64);
            self.done.clear();
            return;
        }
        // The datagram carries the first fragment's ct fields (OVS clones
        // the first fragment).
        let mut meta = first.0.r.ct;
        ct.execute(&mut self.buf, l3, spec, &mut meta, now);
        for (k, (mut h, pos)) in self.done.drain(..).enumerate() {
            let fl3 = usize::from(h.r.l3);
            ipf::write_back(v6, &self.buf, h.frame.data_mut(), fl3, &pos, k == 0);
            h.r.ct = meta;
            self.work.push_back(h);
        }
    }
}
