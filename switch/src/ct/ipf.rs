//! IP fragments at the `ct` action: held until their datagram completes,
//! tracked once as the whole datagram, then sent on — the original
//! fragments, by offset, each with the datagram's ct fields — as OVS's
//! user-space datapath does with its `ipf` module (enabled by default).
//!
//! ```text
//! ct_frame (recirc.rs): a fragment ─► ipf_frame / ipf_run (its passes, recirculations)
//!   └─ ipf_pass: the pass's segments (a plain list: one); in the frame's own
//!      segments the actions up to each `ct` ─► conntrack::ipf::check
//!        not a fragment / refused ─► Conntrack::execute (a fragment: +trk+inv)
//!        invalid, overlap ─────────► +trk+inv
//!        held ─► Shards (shared by every worker, a spin lock per shard, picked
//!                by the list key): the frame (Frame::hold, an mbuf reference;
//!                the burst's handle leaves with DropReason::FragHeld) and where
//!                it stopped (entry, segment, action after the `ct`, L3, pass,
//!                depth, ct fields)
//!        complete ─► reassemble into the store's buffer ─► Conntrack::execute once
//!                ─► ipf::write_back (NAT) into each fragment ─► work queue (by offset)
//! end of the burst's ct frames (ipf_service): lists past 15 s expire; each fragment
//!   of the (worker's) work queue resumes after its `ct` (ipf_run: the rest of its
//!   pass, its recirculations) and leaves as a copy
//! idle (Switch::expire_fragments: the monitor thread, idle poll rounds): lists past 15 s
//! ```
//!
//! The lists are shared by the workers (fragments of one datagram meet
//! whichever queue or port each arrives on); the worker completing a
//! datagram runs its fragments. The settings and counters are the
//! tracker's ([`conntrack::Conntrack::ipf`]). A frame that is not a
//! fragment pays one flag test (`ct_frame`: `meta.frag`). A `ct` inside a
//! clone segment (the copy a fork's tail or a group bucket runs on), and
//! runs without a copy sink, track fragments as they are: `+trk+inv`.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use conntrack::ipf::{self, Add, Check, Counter, FragPos, Ipf, ListKey, Shards};
use conntrack::{state, Conntrack, CtMeta, CtSpec};

use super::recirc::MAX_RECIRC_DEPTH;
use crate::action::{execute_l3, Action, ExecCtx, ExecEvents, Seg};
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
    /// The plan segment it resumes in (0 in a plain list).
    pub seg: u16,
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
    /// The worker that held it: `r` names its compiled entries, so it
    /// resumes there.
    owner: usize,
}

/// Fragments per shard of the shared lists: a quarter of the most that
/// may be in process (`ipf-set-max-nfrags`' bound), so that one busy
/// shard holds many datagrams while the global limit stays the
/// tracker's.
const SHARD_CAP: u32 = ipf::MAX_FRAGS_UPPER_BOUND / 4;

/// The fragment lists of a switch, shared by its workers (made on the
/// first fragment, kept by [`crate::switch::Switch`] type-erased).
pub(crate) trait SharedFrags: Send + Sync {
    /// Drop the fragments of lists past their time (counted expired).
    fn expire(&self, ipf: &Ipf, now_ms: u64) -> usize;
    /// Itself, for the downcast to its frame type.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// Fragments of completed datagrams for one worker, from the others.
struct Inbox<F> {
    q: Mutex<VecDeque<Held<F>>>,
    /// Fragments in `q` (read without the lock).
    n: AtomicUsize,
}

/// The lists every worker shares, and each worker's inbox: a datagram
/// completed on one worker resumes every fragment on the worker that
/// held it (its compiled entries are that worker's).
pub(crate) struct Shared<F> {
    lists: Shards<Held<F>>,
    inbox: Box<[Inbox<F>]>,
}

impl<F: Frame> SharedFrags for Shared<F> {
    fn expire(&self, ipf: &Ipf, now_ms: u64) -> usize {
        self.lists.expire(ipf, now_ms, drop)
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl<F: Frame> Shared<F> {
    fn new(workers: usize) -> Shared<F> {
        Shared {
            lists: Shards::new(SHARD_CAP),
            inbox: (0..workers.max(1))
                .map(|_| Inbox {
                    q: Mutex::new(VecDeque::with_capacity(SHARD_CAP as usize)),
                    n: AtomicUsize::new(0),
                })
                .collect(),
        }
    }

    /// Queue `h` for its owner; false (dropped) when its inbox is full.
    fn send(&self, h: Held<F>) -> bool {
        let Some(b) = self.inbox.get(h.owner) else {
            return false;
        };
        let mut q = b.q.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == q.capacity() {
            return false;
        }
        q.push_back(h);
        b.n.store(q.len(), Ordering::Release);
        true
    }

    /// Move worker `w`'s inbox into `work`.
    fn receive(&self, w: usize, work: &mut VecDeque<Held<F>>) {
        let Some(b) = self.inbox.get(w) else { return };
        if b.n.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut q = b.q.lock().unwrap_or_else(|e| e.into_inner());
        work.extend(q.drain(..));
        b.n.store(0, Ordering::Release);
    }
}

/// The shared lists for frames `F` (the first caller makes them).
pub(crate) fn new_shared<F: Frame>(workers: usize) -> Arc<dyn SharedFrags> {
    Arc::new(Shared::<F>::new(workers))
}

/// One worker's side of the fragments: the shared lists, and what it
/// runs of the datagrams it completed.
pub(crate) struct Store<F> {
    shared: Arc<Shared<F>>,
    worker: usize,
    /// Fragments of completed datagrams, by offset, to resume.
    work: VecDeque<Held<F>>,
    done: Vec<(Held<F>, FragPos)>,
    /// The datagram being tracked.
    buf: Vec<u8>,
}

impl<F: Frame> Store<F> {
    fn new(shared: Arc<Shared<F>>, worker: usize) -> Store<F> {
        Store {
            shared,
            worker,
            work: VecDeque::with_capacity(SHARD_CAP as usize),
            done: Vec::with_capacity(SHARD_CAP as usize),
            buf: Vec::with_capacity(65536 + 256),
        }
    }
}

/// Segment `s` of a pass: the plan's, or the whole list of a plain one.
fn segment(c: &crate::pipeline::Compiled, s: usize) -> Option<Seg> {
    if c.plan.is_empty() {
        return (s == 0).then_some(Seg {
            start: 0,
            end: c.actions.len() as u16,
            clone: false,
            cont: false,
        });
    }
    c.plan.get(s).copied()
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
            seg: 0,
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
            if at.at == 0 && at.seg == 0 {
                count_entry(&self.sw, &self.cur, c, self.worker, 1, len, ctx.now_ms);
            }
            ev.ct = at.ct;
            let v = if c.actions.is_empty() {
                Verdict::Drop(c.empty_reason)
            } else {
                match self.ipf_pass(&at, frame, copies.as_deref_mut(), ctx, ev, &mut out) {
                    Some(v) => v,
                    None if out != 0 => return Verdict::Output(out),
                    None => return Verdict::Drop(DropReason::FragHeld),
                }
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
            let pass = self.compiled.frozen_pass(frozen);
            (at.entry, at.l3, at.seg, at.at, at.pass) = (next, l3 as u16, 0, 0, pass);
            self.copy_before_rewrite(at.entry, &mut out, frame, copies.as_deref_mut());
        }
        if out != 0 {
            Verdict::Output(out)
        } else {
            Verdict::Drop(why)
        }
    }

    /// This worker's store for frames `F` (on its first fragment: the
    /// switch's shared lists).
    fn ipf_store<F: Frame>(&mut self) -> &mut Store<F> {
        let ours = self.ipf.as_ref().is_some_and(|b| b.is::<Store<F>>());
        if !ours {
            let shared = self
                .sw
                .ipf_shared::<F>()
                .as_any()
                .downcast::<Shared<F>>()
                // Another frame type made the switch's lists: this
                // worker's own.
                .unwrap_or_else(|_| Arc::new(Shared::new(self.worker + 1)));
            self.ipf = Some(Box::new(Store::<F>::new(shared, self.worker)));
        }
        match self.ipf.as_mut().and_then(|b| b.downcast_mut::<Store<F>>()) {
            Some(s) => s,
            None => unreachable!("the store was just made for F"),
        }
    }

    /// One pass of a fragment from `r`, segment by segment (as
    /// `execute_plan`: outputs of a frame segment but the last leave as a
    /// copy, clone segments run on a copy): in the frame's segments the
    /// actions up to each `ct` run as usual and each `ct` offers the
    /// fragment to the reassembler. `Some(verdict)`: the pass ran to its
    /// end. `None`: the fragment is held (alone, or with its whole
    /// datagram for the work queue); `out` gets the outputs made before.
    pub(crate) fn ipf_pass<F: Frame>(
        &mut self,
        r: &Resume,
        frame: &mut F,
        mut copies: Option<&mut Vec<(F, u64)>>,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
        out: &mut u64,
    ) -> Option<Verdict> {
        let (mut l3, mut pass_out, mut why) = (usize::from(r.l3), 0u64, DropReason::Action);
        let last_run = {
            let c = self.compiled.entries.get(r.entry as usize)?;
            c.plan.iter().rposition(|s| !s.clone).unwrap_or(0)
        };
        // The copy clone segments run on (see `execute_plan`).
        let (mut clone, mut clone_l3, mut clone_dead) = (None::<F>, 0usize, false);
        let mut clone_ct = ev.ct;
        let mut s = usize::from(r.seg);
        while let Some(seg) = segment(self.compiled.entries.get(r.entry as usize)?, s) {
            let first = if s == usize::from(r.seg) {
                usize::from(r.at).max(usize::from(seg.start))
            } else {
                usize::from(seg.start)
            };
            if seg.clone {
                if let Some(sink) = copies.as_deref_mut() {
                    if !seg.cont {
                        clone = frame.duplicate();
                        (clone_l3, clone_dead, clone_ct) = (l3, false, ev.ct);
                    }
                    if let (Some(c), false) = (clone.as_mut(), clone_dead) {
                        let more = segment(self.compiled.entries.get(r.entry as usize)?, s + 1)
                            .is_some_and(|n| n.clone && n.cont);
                        let acts = &self.compiled.entries.get(r.entry as usize)?.actions;
                        let run = acts.get(first..usize::from(seg.end)).unwrap_or(&[]);
                        // A `ct` here tracks the copy as it is.
                        core::mem::swap(&mut ev.ct, &mut clone_ct);
                        let v = execute_l3(run, c, &mut clone_l3, ctx, ev);
                        core::mem::swap(&mut ev.ct, &mut clone_ct);
                        match v {
                            Verdict::Output(m) => {
                                let c = if more { c.duplicate() } else { clone.take() };
                                if let Some(c) = c {
                                    self.c.tx_packets += u64::from(m.count_ones());
                                    sink.push((c, m));
                                }
                            }
                            Verdict::Drop(DropReason::TtlExpired | DropReason::NoHeadroom) => {
                                clone_dead = true;
                            }
                            Verdict::Drop(_) => {}
                        }
                    }
                    s += 1;
                    continue;
                }
            }
            let last = s == last_run || seg.clone;
            let mut pos = first;
            loop {
                let acts = &self.compiled.entries.get(r.entry as usize)?.actions;
                let end = usize::from(seg.end).min(acts.len());
                let k = acts
                    .get(pos..end)
                    .and_then(|a| a.iter().position(|a| matches!(a, Action::Ct(_))))
                    .map(|k| pos + k);
                let v = execute_l3(
                    acts.get(pos..k.unwrap_or(end)).unwrap_or(&[]),
                    frame,
                    &mut l3,
                    ctx,
                    ev,
                );
                match v {
                    Verdict::Output(m) if last => pass_out |= m,
                    Verdict::Output(m) => match copies.as_deref_mut().and_then(|sink| {
                        frame.duplicate().map(|d| {
                            self.c.tx_packets += u64::from(m.count_ones());
                            sink.push((d, m))
                        })
                    }) {
                        Some(()) => {}
                        None => pass_out |= m,
                    },
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
                let resume = Resume {
                    seg: s as u16,
                    at: (k + 1) as u16,
                    l3: l3 as u16,
                    ..*r
                };
                if self.ipf_ct(c.spec(), resume, frame, ctx, ev, *out | pass_out != 0) {
                    *out |= pass_out;
                    return None;
                }
                pos = k + 1;
            }
            s += 1;
        }
        Some(if pass_out != 0 {
            Verdict::Output(pass_out)
        } else {
            Verdict::Drop(why)
        })
    }

    /// A `ct` with `spec` on a fragment that resumes at `r` (its ct
    /// fields: `ev.ct`): true when the reassembler holds it (`copy`: the
    /// frame also leaves with outputs already made, so a copy is held),
    /// else the frame's ct fields are set in `ev.ct`.
    fn ipf_ct<F: Frame>(
        &mut self,
        spec: &CtSpec,
        mut r: Resume,
        frame: &mut F,
        ctx: &ExecCtx<'_>,
        ev: &mut ExecEvents,
        copy: bool,
    ) -> bool {
        let sw = Arc::clone(&self.sw);
        let ct: &Conntrack = sw.conntrack();
        let ipf = ct.ipf();
        let l3 = usize::from(r.l3);
        let check = if ipf.any_enabled() {
            ipf::check(frame.data(), l3, ipf.min_frag(false), ipf.min_frag(true))
        } else {
            Check::NotFragment
        };
        let fi = match check {
            Check::NotFragment => {
                ct.execute(frame.data_mut(), l3, spec, &mut ev.ct, ctx.now_ms);
                return false;
            }
            Check::Invalid { too_small } => {
                if too_small {
                    let v6 = frame.data().get(l3).is_some_and(|b| b >> 4 == 6);
                    ipf.count(v6, Counter::TooSmall, 1);
                }
                ev.ct = invalid(spec.zone);
                return false;
            }
            Check::Frag(fi) => fi,
        };
        let kept = if copy {
            frame.duplicate()
        } else {
            frame.hold()
        };
        let Some(kept) = kept else {
            ct.execute(frame.data_mut(), l3, spec, &mut ev.ct, ctx.now_ms);
            return false;
        };
        (r.ct, r.valid_from) = (ev.ct, self.valid_from);
        let held = Held {
            frame: kept,
            r,
            owner: self.worker,
        };
        let key = ListKey::of(&fi, spec.zone, r.pass);
        let st = self.ipf_store::<F>();
        st.shared.lists.expire(ipf, ctx.now_ms, drop);
        let mut g = st.shared.lists.lock(&key);
        match g.add(ipf, &key, &fi, held, ctx.now_ms) {
            Add::Held => true,
            Add::Complete(list) => {
                st.done.clear();
                g.take(ipf, list, &mut st.done);
                drop(g);
                st.complete(fi.v6, ct, spec, ctx.now_ms);
                true
            }
            Add::Refused(h) => {
                drop(g);
                drop(h);
                ct.execute(frame.data_mut(), l3, spec, &mut ev.ct, ctx.now_ms);
                false
            }
            Add::Overlap(h) => {
                drop(g);
                drop(h);
                ev.ct = invalid(spec.zone);
                false
            }
        }
    }

    /// Fragments of datagrams another worker completed wait for this one
    /// ([`Datapath::service_fragments`]); false at once when this worker
    /// never held a fragment.
    pub fn fragments_waiting<F: Frame>(&self) -> bool {
        self.ipf
            .as_ref()
            .and_then(|b| b.downcast_ref::<Store<F>>())
            .is_some_and(|st| {
                st.shared
                    .inbox
                    .get(st.worker)
                    .is_some_and(|b| b.n.load(Ordering::Relaxed) != 0)
            })
    }

    /// Between bursts (the poll loop, every few rounds): resume the
    /// fragments other workers completed for this one; their outputs are
    /// appended to `copies` (transmit them as
    /// [`Datapath::process_burst_copies`]' copies).
    pub fn service_fragments<F: Frame>(&mut self, copies: &mut Vec<(F, u64)>, now_ms: u64) {
        if !self.fragments_waiting::<F>() {
            return;
        }
        self.sw.table.enter(self.worker, &mut self.cur);
        if self.cur.version != self.bypass_version {
            // As a burst would: a changed table starts the compiled
            // entries over (the fragments' passes are then gone).
            self.new_generation(false);
        }
        let mut ev = ExecEvents::default();
        self.ipf_service(Some(copies), &mut ev, now_ms);
        self.sw.table.leave(self.worker, &self.cur);
    }

    /// After a burst's ct frames: resume every fragment of a datagram
    /// this worker completed (or another completed for it), by offset; their outputs leave as copies.
    /// Returns at once when this worker never held a fragment.
    pub(crate) fn ipf_service<F: Frame>(
        &mut self,
        copies: Option<&mut Vec<(F, u64)>>,
        ev: &mut ExecEvents,
        now_ms: u64,
    ) {
        if self.ipf.is_none() {
            return;
        }
        let sw = Arc::clone(&self.sw);
        let ct: &Conntrack = sw.conntrack();
        let ipf = ct.ipf();
        let valid_from = self.valid_from;
        let st = self.ipf_store::<F>();
        st.shared.lists.expire(ipf, now_ms, drop);
        st.shared.receive(st.worker, &mut st.work);
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
    /// A datagram completed (its fragments in `done`): reassemble it,
    /// track it once with `spec`, carry the result into every fragment,
    /// queue them by offset.
    fn complete(&mut self, v6: bool, ct: &Conntrack, spec: &CtSpec, now: u64) {
        let ipf = ct.ipf();
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
            if h.owner == self.worker {
                self.work.push_back(h);
            } else if !self.shared.send(h) {
                ipf.count(v6, Counter::Purged, 1);
            }
        }
    }
}
