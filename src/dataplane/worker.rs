//! The per-lcore switching loop, in DPDK's burst style:
//!
//! ```text
//! rx_burst(≤32) ─► Datapath::process_burst_copies (keys, prefetch, cache, classifier, actions;
//!                  copies only for flows that modify the frame after an output)
//!              ─► TxGroups (frame indices per output port)
//!              ─► move each mbuf to its port's burst (a reference per extra output)
//!              ─► tx_burst per port ─► free what a tx queue refused (counted)
//! ```
//!
//! Nothing on this path allocates or locks; counters have one writer and are
//! published with relaxed stores.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use dpdk::{Burst, Mbuf, RxQueue, TxQueue, BURST_SIZE};
use hdrhistogram::Histogram;
use switch::action::TunnelSet;
use switch::action::{execute, ExecCtx, ExecEvents};
use switch::datapath::{Datapath, TxGroups};
use switch::frame::Frame;
use switch::key::FlowKey;
use switch::switch::Switch;
use switch::tunnel::encap::{flow_hash, source_port, NeighbourMemo, Tx};
use switch::tunnel::{arp, Endpoints, Rx, TunnelDrop, TunnelMeta, TunnelStats};
use switch::verdict::{DropReason, Verdict, CONTROLLER_PORT, MAX_PORTS};

use super::controller::Job;
use super::mbuf_frame::{copy_mbuf, mbuf_with, MbufFrame};
use super::offload::{OffloadCounters, OffloadTx};
use super::ports::{RxWake, TxDrops, WorkerCmd};

/// Rx queues one worker may poll.
const MAX_RX: usize = MAX_PORTS as usize;

/// Loop-level counters of one worker, padded to its own cache line.
#[repr(align(64))]
#[derive(Default)]
pub struct LoopCounters {
    /// Packets received.
    pub rx: AtomicU64,
    /// Packets handed to tx queues.
    pub tx: AtomicU64,
    /// TSC cycles of polling rounds that received packets (every rx queue
    /// of the round, rx to tx inclusive; OVS's "processing cycles").
    pub busy_cycles: AtomicU64,
    /// Polling rounds that received packets (OVS's "busy iterations"):
    /// packets / busy rounds is the round's mean rx batch.
    pub busy_rounds: AtomicU64,
}

#[inline(always)]
fn bump(c: &AtomicU64, v: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
}

/// Puts tunnel `t`'s outer headers (`tpl`) on one frame, with the UDP
/// source port from its inner flow hash (RFC 7348 §5): the inner length
/// for the tunnel's tx counters, or `None` (counted as a tx error) when the
/// frame has no headroom for them or would be too long.
#[inline(always)]
fn encap_frame(
    ep: &Endpoints,
    t: usize,
    tpl: &switch::tunnel::encap::Template,
    f: &mut MbufFrame,
) -> Option<u64> {
    let len = f.0.data_len() as u64;
    let sport = source_port(flow_hash(f.0.data()));
    if tpl.apply(f, sport) {
        Some(len)
    } else {
        ep.tunnels[t].stats.count_drop(TunnelDrop::TxError, 1);
        None
    }
}

/// The output port when every verdict sends its frame to the same single
/// port.
#[inline(always)]
fn single_port(v: &[Verdict]) -> Option<u16> {
    let Some(&Verdict::Output(mask)) = v.first() else {
        return None;
    };
    (mask.is_power_of_two() && v.iter().all(|x| *x == Verdict::Output(mask)))
        .then(|| mask.trailing_zeros() as u16)
}

/// Transmits the copies the datapath made for flows that modify the frame
/// after an output (each copy to every port of its set, a reference per
/// extra port); returns how many were handed to tx queues.
#[cold]
#[inline(never)]
fn send_copies(
    tx: &mut [Option<TxQueue>],
    drops: &TxDrops,
    worker: usize,
    copies: &mut Vec<(MbufFrame, u64)>,
    out: &mut [Burst],
) -> u64 {
    // Sends port p's burst; what the queue refuses is counted and freed.
    let mut flush = |p: usize, ob: &mut Burst| -> u64 {
        let mut sent = 0;
        if let Some(txq) = tx.get_mut(p).and_then(Option::as_mut) {
            sent = txq.tx_burst(ob) as u64;
        }
        if !ob.is_empty() {
            drops.add(worker, p as u16, ob.len() as u64);
            ob.clear();
        }
        sent
    };
    let (mut used, mut sent) = (0u64, 0u64);
    for (MbufFrame(m), mut mask) in copies.drain(..) {
        let mut m = Some(m);
        while mask != 0 {
            let p = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let one = if mask == 0 {
                m.take()
            } else {
                m.as_ref().map(Mbuf::clone_ref)
            };
            let (Some(one), Some(ob)) = (one, out.get_mut(p)) else {
                continue;
            };
            used |= 1 << p;
            if let Err(one) = ob.push(one) {
                // A full burst: send it, then queue this copy.
                sent += flush(p, ob);
                if let Err(one) = ob.push(one) {
                    drop(one);
                }
            }
        }
    }
    while used != 0 {
        let p = used.trailing_zeros() as usize;
        used &= used - 1;
        sent += flush(p, &mut out[p]);
    }
    sent
}

/// What a worker reports when it stops.
pub struct WorkerReport {
    /// Cycles per packet, one sample per non-empty burst.
    pub cycles_per_packet: Histogram<u64>,
}

/// One worker's state.
pub struct Worker {
    index: usize,
    sw: Arc<Switch>,
    dp: Datapath,
    cmds: Arc<ArrayQueue<WorkerCmd>>,
    rx: Vec<(u16, RxQueue)>,
    /// How each rx queue (same order as `rx`) wakes an idle worker.
    rx_wake: Vec<RxWake>,
    /// The descriptors of `rx_wake`, or `None` when a queue has no way to
    /// wake the worker (it must not block then).
    wake_fds: Option<Vec<RawFd>>,
    tx: Vec<Option<TxQueue>>,
    counters: Arc<LoopCounters>,
    tx_drops: Arc<TxDrops>,
    /// Counters of the offload slow path ([`super::offload`]).
    offload: Arc<OffloadCounters>,
    /// Patch-panel mode: output port per input port, no flow table.
    patch: Option<[u16; MAX_PORTS as usize]>,
    /// Other polled work served by this core between bursts (the storage
    /// queues and the host TCP stack), once per loop iteration.
    hook: Option<PollHook>,
    /// What to do with each frame from the controller channel (port
    /// [`CONTROLLER_PORT`]), in arrival order.
    jobs: Option<Arc<ArrayQueue<Job>>>,
    /// The tunnel ports, when there are any.
    tunnels: Option<Arc<Endpoints>>,
    /// The last next hop this worker encapsulated for.
    memo: NeighbourMemo,
    /// Ports whose `out` burst holds frames queued by [`Worker::queue`].
    pending: u64,
}

/// The per-burst arrays of the switching loop, sized once.
struct Scratch {
    verdicts: [Verdict; BURST_SIZE],
    groups: TxGroups,
    slots: [Option<Mbuf>; BURST_SIZE],
    refs: [u8; BURST_SIZE],
    out: Vec<Burst>,
    spare: Burst,
    /// Copies for flows that modify the frame after an output.
    copies: Vec<(MbufFrame, u64)>,
    /// The OR of the current burst's offload flags (`ol_flags`): frames
    /// with offload work take [`OffloadTx`].
    offl: u64,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            verdicts: [Verdict::default(); BURST_SIZE],
            groups: TxGroups::default(),
            slots: [const { None }; BURST_SIZE],
            refs: [0; BURST_SIZE],
            out: (0..MAX_PORTS).map(|_| Burst::new()).collect(),
            spare: Burst::new(),
            copies: Vec::with_capacity(4 * BURST_SIZE),
            offl: 0,
        }
    }
}

/// What an underlay burst is sorted into.
struct TunnelScratch {
    hold: [Option<Mbuf>; BURST_SIZE],
    burst: Burst,
    meta: [TunnelMeta; BURST_SIZE],
}

impl TunnelScratch {
    fn new() -> TunnelScratch {
        TunnelScratch {
            hold: [const { None }; BURST_SIZE],
            burst: Burst::new(),
            meta: [TunnelMeta::default(); BURST_SIZE],
        }
    }
}

/// Work a worker polls between bursts (see [`Worker::set_poll_hook`]):
/// told about the switch's side of the round (so it can pace or block an
/// idle core), it returns the work it did.
pub type PollHook = Box<dyn FnMut(Round<'_>) -> usize + Send>;

/// The switch's side of a loop round, as the poll hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// The switch received frames since the previous call.
    pub switch_busy: bool,
    /// Descriptors that turn readable when one of this worker's rx queues
    /// has frames; the hook may block on them (with its own) while the
    /// switch is idle. `None`: some queue cannot wake the worker, so the
    /// hook must not block.
    pub wake_fds: Option<&'a [RawFd]>,
}

impl Worker {
    /// A worker with no queues yet (they arrive as commands).
    pub fn new(
        index: usize,
        sw: &Arc<Switch>,
        cmds: Arc<ArrayQueue<WorkerCmd>>,
        counters: Arc<LoopCounters>,
        tx_drops: Arc<TxDrops>,
    ) -> Worker {
        Worker {
            index,
            sw: Arc::clone(sw),
            dp: sw.datapath(index),
            cmds,
            rx: Vec::with_capacity(MAX_RX),
            rx_wake: Vec::with_capacity(MAX_RX),
            wake_fds: Some(Vec::with_capacity(MAX_RX)),
            tx: (0..MAX_PORTS).map(|_| None).collect(),
            counters,
            tx_drops,
            offload: Arc::new(OffloadCounters::new(1)),
            patch: None,
            hook: None,
            jobs: None,
            tunnels: None,
            memo: NeighbourMemo::default(),
            pending: 0,
        }
    }

    /// Counts the offload slow path's work in `c` (shared with the port
    /// set, which shows it).
    pub fn set_offload_counters(&mut self, c: Arc<OffloadCounters>) {
        self.offload = c;
    }

    /// Takes packet-outs from the controller channel: frames that arrive on
    /// port [`CONTROLLER_PORT`] are handled as `jobs` says, one job each.
    pub fn set_packet_outs(&mut self, jobs: Arc<ArrayQueue<Job>>) {
        self.jobs = Some(jobs);
    }

    /// Verdicts for a burst from the controller channel (packet-outs, a
    /// slow path): each frame runs its job's actions, or the flow tables
    /// from the job's ingress port.
    #[cold]
    fn controller_verdicts(
        &mut self,
        frames: &mut [MbufFrame],
        verdicts: &mut [Verdict],
        copies: &mut Vec<(MbufFrame, u64)>,
        now: u64,
    ) {
        for i in 0..frames.len() {
            let Some(job) = self.jobs.as_ref().and_then(|j| j.pop()) else {
                verdicts[i] = Verdict::Drop(DropReason::NoMatch);
                continue;
            };
            let in_port = job.in_port.unwrap_or(CONTROLLER_PORT);
            match job.actions {
                None => self.dp.process_burst_copies(
                    in_port,
                    &mut frames[i..=i],
                    &mut verdicts[i..=i],
                    copies,
                    now,
                ),
                Some(acts) => {
                    let mut key = FlowKey::ZERO;
                    let meta = switch::extract::extract(frames[i].data(), in_port, &mut key);
                    let ctx = ExecCtx {
                        in_port,
                        ports_up: self.sw.ports_up(),
                        fdb: &self.sw.fdb,
                        now_ms: now,
                        ct: None,
                    };
                    let mut ev = ExecEvents::default();
                    verdicts[i] = execute(&acts, &mut frames[i], meta.l3 as usize, &ctx, &mut ev);
                }
            }
        }
    }

    /// Polls `hook` once per loop iteration, between bursts: one core then
    /// serves the switch and whatever the hook polls.
    pub fn set_poll_hook(&mut self, hook: PollHook) {
        self.hook = Some(hook);
    }

    /// Forwards every frame of port `a` to port `b`, untouched, for each
    /// `(a, b)` pair, bypassing the flow table (what testpmd calls `io`).
    pub fn set_patch_panel(&mut self, pairs: &[(u16, u16)]) {
        let mut map = [u16::MAX; MAX_PORTS as usize];
        for &(a, b) in pairs {
            if let Some(m) = map.get_mut(a as usize) {
                *m = b;
            }
        }
        self.patch = Some(map);
    }

    /// One patch-panel burst: rx, tx to the paired port, free the refused.
    #[inline(always)]
    fn patch_burst(
        &mut self,
        r: usize,
        map: &[u16; MAX_PORTS as usize],
        burst: &mut Burst,
    ) -> (usize, u64) {
        let (in_port, q) = &mut self.rx[r];
        let n = q.rx_burst(burst);
        if n == 0 {
            return (0, 0);
        }
        let out = map[*in_port as usize];
        let mut sent = 0;
        if let Some(txq) = self.tx.get_mut(out as usize).and_then(Option::as_mut) {
            sent = txq.tx_burst(burst) as u64;
        }
        if !burst.is_empty() {
            if out != u16::MAX {
                self.tx_drops.add(self.index, out, burst.len() as u64);
            }
            burst.clear();
        }
        (n, sent)
    }

    fn apply_commands(&mut self) {
        while let Some(cmd) = self.cmds.pop() {
            match cmd {
                WorkerCmd::AddRx(no, q, wake) => {
                    if self.rx.len() < MAX_RX {
                        self.rx.push((no, q));
                        self.rx_wake.push(wake);
                        self.update_wake_fds();
                    }
                }
                WorkerCmd::AddTx(no, q) => self.tx[no as usize] = Some(q),
                WorkerCmd::Remove(no, ack) => {
                    let mut i = 0;
                    while i < self.rx.len() {
                        if self.rx[i].0 == no {
                            self.rx.remove(i);
                            self.rx_wake.remove(i);
                        } else {
                            i += 1;
                        }
                    }
                    self.update_wake_fds();
                    self.tx[no as usize] = None;
                    ack.store(true, Ordering::Release);
                }
                WorkerCmd::Tunnels(ep) => self.tunnels = ep,
            }
        }
    }

    /// Recomputes [`Worker::wake_fds`] after the rx queues changed (off the
    /// hot path: only on port changes).
    fn update_wake_fds(&mut self) {
        let mut fds = self.wake_fds.take().unwrap_or_default();
        fds.clear();
        for w in &self.rx_wake {
            match *w {
                RxWake::Fd(fd) => fds.push(fd),
                RxWake::SelfFed => {}
                RxWake::Never => return,
            }
        }
        self.wake_fds = Some(fds);
    }

    /// Polls until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) -> WorkerReport {
        // Everything the loop needs is sized here, once.
        let mut hist =
            Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("static histogram bounds");
        let mut burst = Burst::new();
        let mut sc = Scratch::new();
        let mut ts = TunnelScratch::new();
        let mut iter: u32 = 0;
        let mut now: u64 = 0;
        let mut hook_rx = 0u64;
        self.apply_commands();
        // Copied once: the patch panel never changes while running.
        let patch = self.patch;
        while !stop.load(Ordering::Relaxed) {
            // The storage queues' poll (the hook) is not switching work:
            // it runs outside the round.
            if let Some(h) = self.hook.as_mut() {
                let rx = self.counters.rx.load(Ordering::Relaxed);
                h(Round {
                    switch_busy: rx != hook_rx,
                    wake_fds: self.wake_fds.as_deref(),
                });
                hook_rx = rx;
            }
            // Busy cycles are counted per polling round, as OVS counts its
            // PMD's processing cycles (`pmd_perf_end_iteration` in OVS's
            // lib/dpif-netdev-perf.c: an iteration that received or sent
            // anything is busy as a whole, from the previous iteration's
            // end, its housekeeping and empty polls included).
            let round0 = dpdk::rdtsc();
            iter = iter.wrapping_add(1);
            // Millisecond clock for rule timeouts and MAC aging, read once
            // per 64 rounds (a few µs apart when idle, at most a few ms when
            // every rx queue brings full bursts; timeouts are in seconds):
            // a vDSO clock_gettime per burst cost about 2 cycles per packet.
            if iter.is_multiple_of(64) || iter == 1 {
                now = self.sw.now_ms();
            }
            if iter.is_multiple_of(128) || self.rx.is_empty() {
                self.apply_commands();
            }
            if iter.is_multiple_of(64) && self.dp.fragments_waiting::<MbufFrame>() {
                let sent = self.send_fragments(&mut sc, now);
                bump(&self.counters.tx, sent);
            }
            let mut round_rx = 0;
            if let Some(map) = &patch {
                for r in 0..self.rx.len() {
                    let t0 = dpdk::rdtsc();
                    let (n, sent) = self.patch_burst(r, map, &mut burst);
                    if n == 0 {
                        continue;
                    }
                    round_rx += n;
                    let dt = dpdk::rdtsc().wrapping_sub(t0);
                    bump(&self.counters.rx, n as u64);
                    bump(&self.counters.tx, sent);
                    let _ = hist.record((dt / n as u64).max(1));
                }
                if round_rx != 0 {
                    bump(
                        &self.counters.busy_cycles,
                        dpdk::rdtsc().wrapping_sub(round0),
                    );
                    bump(&self.counters.busy_rounds, 1);
                }
                continue;
            }
            // One TSC read per burst: each burst's cycles run from the end
            // of the previous one in this round (or the round's start),
            // its empty polls included; the round's end is the last
            // burst's end when no empty poll followed it.
            let mut t = round0;
            let mut tail_empty = false;
            for r in 0..self.rx.len() {
                let (in_port, q) = &mut self.rx[r];
                let n = q.rx_burst(&mut burst);
                if n == 0 {
                    tail_empty = true;
                    continue;
                }
                tail_empty = false;
                let in_port = *in_port;
                // Offload flags live in the mbuf's first cache line, which
                // the prefetch reads anyway: one OR per frame tells whether
                // the burst needs the offload slow path.
                let mut offl = 0u64;
                for m in burst.as_slice() {
                    m.prefetch_data();
                    offl |= m.ol_flags();
                }
                sc.offl = offl;
                // Tunnel users only: frames of an underlay port are sorted
                // out (decapsulation, ARP for the local IPs) first.
                // The endpoints are moved out for the burst (two pointer
                // moves, no reference-count traffic) and lent to it.
                let tunnels = self.tunnels.take();
                let sent = match tunnels.as_deref() {
                    Some(ep) if ep.is_underlay(in_port) => {
                        self.underlay_burst(ep, in_port, &mut burst, &mut sc, &mut ts, now)
                    }
                    ep => self.switch_burst(in_port, &mut burst, None, ep, &mut sc, now),
                };
                self.tunnels = tunnels;
                round_rx += n;
                let t1 = dpdk::rdtsc();
                let dt = t1.wrapping_sub(t);
                t = t1;
                bump(&self.counters.rx, n as u64);
                bump(&self.counters.tx, sent);
                self.dp.account_cycles(dt);
                let _ = hist.record((dt / n as u64).max(1));
            }
            if round_rx != 0 {
                let end = if tail_empty { dpdk::rdtsc() } else { t };
                bump(&self.counters.busy_cycles, end.wrapping_sub(round0));
                bump(&self.counters.busy_rounds, 1);
            } else if iter.is_multiple_of(64) {
                // Idle: IP fragments held past their time are freed here
                // too (one atomic load while no fragment ever met a `ct`).
                self.sw.expire_fragments(now);
            }
        }
        WorkerReport {
            cycles_per_packet: hist,
        }
    }

    /// Switches one burst received on `in_port` (`tunnel`: the frames were
    /// decapsulated by tunnel port `in_port`, with this outer metadata)
    /// and transmits it (`ep`: the tunnel ports, if any); returns the
    /// frames handed to tx queues.
    #[inline(always)]
    fn switch_burst(
        &mut self,
        in_port: u16,
        burst: &mut Burst,
        tunnel: Option<&[TunnelMeta]>,
        ep: Option<&Endpoints>,
        sc: &mut Scratch,
        now: u64,
    ) -> u64 {
        let n = burst.len();
        let Scratch {
            verdicts,
            groups,
            slots,
            refs,
            out,
            spare,
            copies,
            offl,
        } = sc;
        if in_port == CONTROLLER_PORT {
            self.controller_verdicts(
                MbufFrame::slice_mut(burst.as_mut_slice()),
                &mut verdicts[..n],
                copies,
                now,
            );
        } else if let Some(t) = tunnel {
            self.dp.process_burst_tunnel(
                in_port,
                MbufFrame::slice_mut(burst.as_mut_slice()),
                t,
                &mut verdicts[..n],
                copies,
                now,
            );
        } else {
            self.dp.process_burst_copies(
                in_port,
                MbufFrame::slice_mut(burst.as_mut_slice()),
                &mut verdicts[..n],
                copies,
                now,
            );
        }
        let tunnel_ports = ep.map_or(0, |e| e.tunnel_ports());
        let copied = if copies.is_empty() {
            0
        } else {
            let mut sent = 0;
            if let Some(ep) = ep.filter(|_| copies.iter().any(|c| c.1 & tunnel_ports != 0)) {
                sent = self.encap_copies(ep, copies, tunnel, out, now);
            }
            sent + send_copies(&mut self.tx, &self.tx_drops, self.index, copies, out)
                + self.flush_pending(out)
        };
        // Guests' partial checksums and large segments (vhost ports): the
        // offload slow path, unless a frame goes to a tunnel port.
        if *offl & dpdk::offload::RX_OFFLOAD_MASK != 0
            && !verdicts[..n]
                .iter()
                .any(|v| matches!(v, Verdict::Output(m) if m & tunnel_ports != 0))
        {
            let mut otx = OffloadTx {
                tx: &mut self.tx,
                out,
                drops: &self.tx_drops,
                counters: &self.offload,
                worker: self.index,
            };
            return copied + otx.send_burst(in_port, burst, &verdicts[..n]);
        }
        // Common case: the whole burst goes to one port (one rule, one
        // destination): send the burst as it is.
        if let Some(port) = single_port(&verdicts[..n]) {
            if tunnel_ports & (1 << port) != 0 {
                // The whole burst to one tunnel port: encapsulated in place
                // and sent as it is.
                if let Some(sent) = ep.and_then(|ep| self.encap_burst(ep, port, burst, now)) {
                    return copied + sent;
                }
            } else {
                let mut sent = copied;
                if let Some(txq) = self.tx[port as usize].as_mut() {
                    sent = txq.tx_burst(burst) as u64;
                }
                if !burst.is_empty() {
                    self.tx_drops.add(self.index, port, burst.len() as u64);
                    burst.clear();
                }
                return sent;
            }
        }
        groups.build(&verdicts[..n]);
        // Take the mbufs out of the burst, counting their outputs.
        for i in (0..n).rev() {
            slots[i] = burst.pop();
            refs[i] = match verdicts[i] {
                Verdict::Output(mask) => mask.count_ones() as u8,
                Verdict::Drop(_) => 0,
            };
        }
        let mut sent = copied;
        for (port, idx) in groups.iter() {
            if tunnel_ports & (1 << port) != 0 {
                if let Some(ep) = ep {
                    sent += self.encap_group(ep, port, idx, slots, refs, tunnel, out, now);
                }
                continue;
            }
            let Some(txq) = self.tx[port as usize].as_mut() else {
                continue;
            };
            let ob = &mut out[port as usize];
            for &i in idx {
                let i = i as usize;
                refs[i] -= 1;
                let m = if refs[i] == 0 {
                    slots[i].take()
                } else {
                    slots[i].as_ref().map(Mbuf::clone_ref)
                };
                if let Some(m) = m {
                    if let Err(m) = ob.push(m) {
                        // Encapsulated frames already wait here.
                        sent += txq.tx_burst(ob) as u64;
                        if let Err(m) = ob.push(m) {
                            self.tx_drops.add(self.index, port, 1);
                            drop(m);
                        }
                    }
                }
            }
            sent += txq.tx_burst(ob) as u64;
            if !ob.is_empty() {
                self.tx_drops.add(self.index, port, ob.len() as u64);
                ob.clear();
            }
            self.pending &= !(1 << port);
        }
        // Dropped frames (and outputs to a port this worker has no
        // queue for): freed in bulk.
        for s in slots.iter_mut().take(n) {
            if let Some(m) = s.take() {
                if let Err(m) = spare.push(m) {
                    drop(m);
                }
            }
        }
        spare.clear();
        if self.pending != 0 {
            sent += self.flush_pending(out);
        }
        sent
    }

    /// Queues `m` for port `p` (sending the queue first when full); it
    /// leaves with [`Worker::flush_pending`]. Returns frames sent.
    fn queue(&mut self, out: &mut [Burst], p: u16, m: Mbuf) -> u64 {
        let Some(ob) = out.get_mut(p as usize) else {
            return 0;
        };
        let mut sent = 0;
        if let Err(m) = ob.push(m) {
            sent = self.flush_port(out, p);
            if let Err(m) = out[p as usize].push(m) {
                self.tx_drops.add(self.index, p, 1);
                drop(m);
            }
        }
        self.pending |= 1 << p;
        sent
    }

    fn flush_port(&mut self, out: &mut [Burst], p: u16) -> u64 {
        let ob = &mut out[p as usize];
        let mut sent = 0;
        if let Some(txq) = self.tx[p as usize].as_mut() {
            sent = txq.tx_burst(ob) as u64;
        }
        if !ob.is_empty() {
            self.tx_drops.add(self.index, p, ob.len() as u64);
            ob.clear();
        }
        sent
    }

    /// Sends every queue [`Worker::queue`] filled.
    fn flush_pending(&mut self, out: &mut [Burst]) -> u64 {
        let mut sent = 0;
        while self.pending != 0 {
            let p = self.pending.trailing_zeros() as u16;
            self.pending &= self.pending - 1;
            sent += self.flush_port(out, p);
        }
        sent
    }

    /// IP fragments of datagrams another worker completed, resumed here
    /// (their passes are this worker's) and transmitted; returns frames
    /// sent.
    #[cold]
    #[inline(never)]
    fn send_fragments(&mut self, sc: &mut Scratch, now: u64) -> u64 {
        self.dp.service_fragments(&mut sc.copies, now);
        if sc.copies.is_empty() {
            return 0;
        }
        let mut sent = 0;
        let tunnels = self.tunnels.take();
        if let Some(ep) = tunnels.as_deref() {
            if sc.copies.iter().any(|c| c.1 & ep.tunnel_ports() != 0) {
                sent = self.encap_copies(ep, &mut sc.copies, None, &mut sc.out, now);
            }
        }
        self.tunnels = tunnels;
        sent + send_copies(
            &mut self.tx,
            &self.tx_drops,
            self.index,
            &mut sc.copies,
            &mut sc.out,
        ) + self.flush_pending(&mut sc.out)
    }

    /// The copies' outputs to tunnel ports (a fragment of a datagram that
    /// completed, an output before a rewrite): each encapsulated like a
    /// frame of the burst (a copy of the mbuf when it also goes elsewhere)
    /// and queued on its underlay port; their tunnel bits are cleared.
    /// Returns frames sent (queues that filled up on the way).
    /// The outer headers take the tunnel's own key and remote, else the
    /// received frame's VNI (`tunnel`, when the whole burst came from one
    /// tunnel).
    #[cold]
    #[inline(never)]
    fn encap_copies(
        &mut self,
        ep: &Endpoints,
        copies: &mut [(MbufFrame, u64)],
        tunnel: Option<&[TunnelMeta]>,
        out: &mut [Burst],
        now: u64,
    ) -> u64 {
        let tunnels = ep.tunnel_ports();
        let rx = tunnel.and_then(|t| t.first());
        let mut sent = 0;
        for (MbufFrame(m), mask) in copies.iter_mut() {
            let mut tmask = *mask & tunnels;
            *mask &= !tunnels;
            while tmask != 0 {
                let port = tmask.trailing_zeros() as u16;
                tmask &= tmask - 1;
                let Some(t) = ep.index_of(port) else { continue };
                // Encapsulation rewrites the frame: a copy per tunnel (the
                // mbuf itself goes on to the other ports, or is freed).
                let Some(c) = copy_mbuf(m) else {
                    ep.tunnels[t].stats.count_drop(TunnelDrop::TxError, 1);
                    continue;
                };
                let mut f = MbufFrame(c);
                match ep.template(t, TunnelSet::default(), rx, &mut self.memo, now) {
                    Ok((tpl, p)) if self.tx.get(p as usize).is_some_and(Option::is_some) => {
                        let Some(len) = encap_frame(ep, t, tpl, &mut f) else {
                            continue;
                        };
                        let stats = &ep.tunnels[t].stats;
                        TunnelStats::add(&stats.tx_packets, 1);
                        TunnelStats::add(&stats.tx_bytes, len);
                        sent += self.queue(out, p, f.0);
                    }
                    Ok(_) => ep.tunnels[t].stats.count_drop(TunnelDrop::TxError, 1),
                    Err(tx) => sent += self.encap_failed(ep, t, tx, &f.0, out),
                }
            }
        }
        sent
    }

    /// Encapsulates a whole burst for tunnel port `port` with a fixed key
    /// and remote, in place, and transmits it on the underlay; `None` (the
    /// burst untouched) when the general path must do it: a flow-dependent
    /// key or remote, an unresolved next hop, no underlay queue.
    #[inline(always)]
    fn encap_burst(
        &mut self,
        ep: &Endpoints,
        port: u16,
        burst: &mut Burst,
        now: u64,
    ) -> Option<u64> {
        let t = ep.index_of(port)?;
        if !ep.fixed_outer(t) {
            return None;
        }
        let (tpl, p) = ep
            .template(t, TunnelSet::default(), None, &mut self.memo, now)
            .ok()?;
        let txq = self.tx.get_mut(p as usize).and_then(Option::as_mut)?;
        let (mut bytes, mut bad) = (0u64, 0u32);
        for (i, m) in MbufFrame::slice_mut(burst.as_mut_slice())
            .iter_mut()
            .enumerate()
        {
            bytes += m.0.data_len() as u64;
            let sport = source_port(flow_hash(m.0.data()));
            bad |= u32::from(!tpl.apply(m, sport)) << i;
        }
        if bad != 0 {
            bytes -= Self::drop_unencapsulated(burst, bad, &ep.tunnels[t].stats);
        }
        let stats = &ep.tunnels[t].stats;
        let k = burst.len() as u64;
        TunnelStats::add(&stats.tx_packets, k);
        TunnelStats::add(&stats.tx_bytes, bytes);
        let sent = txq.tx_burst(burst) as u64;
        if !burst.is_empty() {
            self.tx_drops.add(self.index, p, burst.len() as u64);
            burst.clear();
        }
        Some(sent)
    }

    /// Frees the frames of `burst` whose bit is set in `bad` (too long to
    /// encapsulate, or no headroom), counted as `tx_error`; returns their
    /// bytes.
    #[cold]
    #[inline(never)]
    fn drop_unencapsulated(burst: &mut Burst, bad: u32, stats: &TunnelStats) -> u64 {
        let mut keep = [const { None }; BURST_SIZE];
        let n = burst.len();
        for slot in keep[..n].iter_mut().rev() {
            *slot = burst.pop();
        }
        let mut bytes = 0;
        for (i, m) in keep[..n].iter_mut().enumerate() {
            let Some(m) = m.take() else { continue };
            if bad & (1 << i) != 0 {
                bytes += m.data_len() as u64;
                stats.count_drop(TunnelDrop::TxError, 1);
            } else {
                let _ = burst.push(m);
            }
        }
        bytes
    }

    /// Encapsulates the frames `idx` of a burst (in `slots`, with `refs`
    /// outputs left each) for tunnel port `port` and queues them on the
    /// underlay; returns frames sent. The outer headers come from one
    /// prebuilt template per run of frames ([`Endpoints::template`]): per
    /// frame only the flow hash (the UDP source port), the 50-byte copy
    /// and the length and checksum fields remain.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn encap_group(
        &mut self,
        ep: &Endpoints,
        port: u16,
        idx: &[u8],
        slots: &mut [Option<Mbuf>],
        refs: &mut [u8],
        tunnel: Option<&[TunnelMeta]>,
        out: &mut [Burst],
        now: u64,
    ) -> u64 {
        let Some(t) = ep.index_of(port) else {
            return 0;
        };
        // Fixed key and remote: the headers are the burst's, not the
        // frame's; look them up once.
        let fixed = if ep.fixed_outer(t) {
            Some(
                ep.template(t, TunnelSet::default(), None, &mut self.memo, now)
                    .map(|(tpl, p)| (*tpl, p)),
            )
        } else {
            None
        };
        let (mut packets, mut bytes, mut sent) = (0u64, 0u64, 0u64);
        for &i in idx {
            let i = i as usize;
            refs[i] -= 1;
            // Encapsulation rewrites the frame: a frame that also goes
            // elsewhere is copied first.
            let m = if refs[i] == 0 {
                slots[i].take()
            } else {
                slots[i].as_ref().and_then(copy_mbuf)
            };
            let Some(m) = m else { continue };
            let mut f = MbufFrame(m);
            let got = match &fixed {
                Some(Ok((tpl, p))) => Ok((tpl, *p)),
                Some(Err(tx)) => Err(*tx),
                None => {
                    // One entry read per frame (copying the burst's array
                    // cost a 512-byte memcpy and a stall).
                    let set = self.dp.tunnel_sets().map_or(TunnelSet::default(), |s| s[i]);
                    let rx = tunnel.and_then(|t| t.get(i));
                    ep.template(t, set, rx, &mut self.memo, now)
                }
            };
            let p = match got {
                Ok((tpl, p)) if self.tx.get(p as usize).is_some_and(Option::is_some) => {
                    let Some(len) = encap_frame(ep, t, tpl, &mut f) else {
                        continue;
                    };
                    packets += 1;
                    bytes += len;
                    p
                }
                Ok(_) => {
                    ep.tunnels[t].stats.count_drop(TunnelDrop::TxError, 1);
                    continue;
                }
                Err(tx) => {
                    sent += self.encap_failed(ep, t, tx, &f.0, out);
                    continue;
                }
            };
            // Queued on the underlay, sent with the burst's other frames
            // by `flush_pending`.
            let ob = &mut out[p as usize];
            if let Err(m) = ob.push(f.0) {
                sent += self.flush_port(out, p);
                if let Err(m) = out[p as usize].push(m) {
                    self.tx_drops.add(self.index, p, 1);
                    drop(m);
                }
            }
            self.pending |= 1 << p;
        }
        if packets != 0 {
            let stats = &ep.tunnels[t].stats;
            TunnelStats::add(&stats.tx_packets, packets);
            TunnelStats::add(&stats.tx_bytes, bytes);
        }
        sent
    }

    /// A frame for tunnel `t` that cannot be encapsulated (`tx` says why):
    /// counted, and for an unknown next hop an ARP request goes out instead
    /// (built in a fresh mbuf from `like`'s pool); returns frames sent.
    #[cold]
    #[inline(never)]
    fn encap_failed(
        &mut self,
        ep: &Endpoints,
        t: usize,
        tx: Tx,
        like: &Mbuf,
        out: &mut [Burst],
    ) -> u64 {
        let stats = &ep.tunnels[t].stats;
        match tx {
            Tx::Send(_) => {
                stats.count_drop(TunnelDrop::TxError, 1);
                0
            }
            Tx::Drop(why) => {
                stats.count_drop(why, 1);
                0
            }
            Tx::Resolve {
                ip,
                mac,
                local_ip,
                port: via,
            } => {
                stats.count_drop(TunnelDrop::NoArp, 1);
                let mut req = [0u8; arp::FRAME_LEN];
                arp::build_request(&mut req, mac, local_ip, ip);
                let Some(m) = mbuf_with(like, &req) else {
                    return 0;
                };
                let mut sent = 0;
                let tunnels = ep.tunnel_ports();
                let ports: u64 = match via {
                    Some(p) => 1 << p,
                    // Every port that is neither a tunnel nor the
                    // controller channel.
                    None => {
                        (0..CONTROLLER_PORT)
                            .filter(|&p| self.tx[p as usize].is_some())
                            .fold(0u64, |a, p| a | 1 << p)
                            & !tunnels
                    }
                };
                let mut left = ports;
                while left != 0 {
                    let p = left.trailing_zeros() as u16;
                    left &= left - 1;
                    sent += self.queue(out, p, m.clone_ref());
                }
                drop(m);
                sent
            }
        }
    }

    /// A burst from an underlay port: tunnel packets for a local endpoint
    /// are decapsulated and switched as received on their tunnel port
    /// (consecutive packets of one tunnel as one burst), ARP for the local
    /// IPs is answered or learned, malformed tunnel packets counted and
    /// dropped; the rest is switched as received on `in_port`.
    fn underlay_burst(
        &mut self,
        ep: &Endpoints,
        in_port: u16,
        burst: &mut Burst,
        sc: &mut Scratch,
        ts: &mut TunnelScratch,
        now: u64,
    ) -> u64 {
        let n = burst.len();
        for i in (0..n).rev() {
            ts.hold[i] = burst.pop();
        }
        let mut sent = 0;
        let mut cur: Option<usize> = None;
        for i in 0..n {
            let Some(mut m) = ts.hold[i].take() else {
                continue;
            };
            match ep.classify(in_port, m.data(), now) {
                Rx::Pass => {
                    let _ = burst.push(m);
                }
                Rx::Decap {
                    tunnel,
                    meta,
                    outer_len,
                    inner_len,
                } => {
                    if cur != Some(tunnel) {
                        if let Some(t) = cur {
                            sent += self.tunnel_batch(ep, t, sc, ts, now);
                        }
                        cur = Some(tunnel);
                    }
                    m.adj(outer_len);
                    let extra = m.data_len().saturating_sub(inner_len);
                    if extra > 0 {
                        m.trim(extra);
                    }
                    ts.meta[ts.burst.len()] = meta;
                    let _ = ts.burst.push(m);
                }
                Rx::ArpRequest { tunnel, mac, ip } => {
                    let t = &ep.tunnels[tunnel];
                    let mut reply = [0u8; arp::FRAME_LEN];
                    arp::build_reply(&mut reply, t.mac, t.cfg.local_ip, mac, ip);
                    if let Some(r) = mbuf_with(&m, &reply) {
                        sent += self.queue(&mut sc.out, in_port, r);
                    }
                }
                Rx::Consumed => {}
                Rx::Drop { tunnel, why } => ep.tunnels[tunnel].stats.count_drop(why, 1),
            }
        }
        if let Some(t) = cur {
            sent += self.tunnel_batch(ep, t, sc, ts, now);
        }
        if !burst.is_empty() {
            sent += self.switch_burst(in_port, burst, None, Some(ep), sc, now);
        }
        if self.pending != 0 {
            sent += self.flush_pending(&mut sc.out);
        }
        sent
    }

    /// Switches the frames decapsulated for tunnel `t` so far.
    fn tunnel_batch(
        &mut self,
        ep: &Endpoints,
        t: usize,
        sc: &mut Scratch,
        ts: &mut TunnelScratch,
        now: u64,
    ) -> u64 {
        let k = ts.burst.len();
        if k == 0 {
            return 0;
        }
        let tun = &ep.tunnels[t];
        let bytes: usize = ts.burst.as_slice().iter().map(Mbuf::data_len).sum();
        TunnelStats::add(&tun.stats.rx_packets, k as u64);
        TunnelStats::add(&tun.stats.rx_bytes, bytes as u64);
        let meta = ts.meta;
        self.switch_burst(tun.port, &mut ts.burst, Some(&meta[..k]), Some(ep), sc, now)
    }
}
