//! The worker's slow path for frames that carry offload work: guests'
//! partial checksums and large TCP segments (vhost-user ports opened with
//! offloads, see `dpdk::offload`).
//!
//! ```text
//! rx burst: OR of every frame's ol_flags & RX_OFFLOAD_MASK == 0 ─► the ordinary path (nothing else)
//!                                                    │ != 0 (this module, per frame and output port)
//!    frame state: Tso{headers, mss} (RX_LRO) │ Partial{headers} (RX_L4_CKSUM_NONE) │ Plain
//!    output port's TxCaps (the guest's negotiated GUEST_CSUM / GUEST_TSO4/6, dpdk::offload::tx_caps):
//!      Tso, port takes TSO   ─► TX_TCP_SEG|TX_TCP_CKSUM|TX_IPV4/6 + l2/l3/l4 len + tso_segsz: leaves whole
//!      Tso, port does not    ─► switch::offload segments: new mbufs of ≤ headers + mss, checksums filled
//!      Partial, port takes it─► TX_TCP/UDP_CKSUM + lengths: the guest completes it
//!      Partial, port does not─► checksum completed in software (in place when not shared, else a copy)
//! ```
//!
//! Counters (per worker and switch port, summed by `vswitch ports show`):
//! large frames and bytes received (longer than the input port's MTU),
//! large frames segmented in software and the segments made, checksums
//! completed in software, and frames this path had to drop.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use dpdk::offload::{self as ol, TxCaps};
use dpdk::{Burst, Mbuf, TxQueue, BURST_SIZE};
use switch::offload::{complete_checksums, finish_segment, Headers, Segments};
use switch::verdict::{Verdict, MAX_PORTS};

use super::ports::TxDrops;

/// Counter indices within one (worker, port) cell.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub enum Counter {
    /// Frames received longer than the input port's MTU (large segments).
    RxLargeFrames,
    /// Their bytes.
    RxLargeBytes,
    /// Large frames cut in software for this output port.
    TxSegmented,
    /// Segments those made.
    TxSegments,
    /// Frames whose checksum was completed in software for this port.
    TxCsumSw,
    /// Offloaded frames dropped (no mbuf, a segment larger than the buffer,
    /// a large frame that is not TCP).
    TxOffloadDrops,
}

const COUNTERS: usize = 6;

/// Offload counters, per worker and switch port (one writer per cell), and
/// each port's MTU.
pub struct OffloadCounters {
    cells: Box<[AtomicU64]>,
    mtu: Box<[AtomicU16]>,
}

/// The sums of [`OffloadCounters`] for one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffloadTotals {
    /// See [`Counter::RxLargeFrames`].
    pub rx_large_frames: u64,
    /// See [`Counter::RxLargeBytes`].
    pub rx_large_bytes: u64,
    /// See [`Counter::TxSegmented`].
    pub tx_segmented: u64,
    /// See [`Counter::TxSegments`].
    pub tx_segments: u64,
    /// See [`Counter::TxCsumSw`].
    pub tx_csum_sw: u64,
    /// See [`Counter::TxOffloadDrops`].
    pub tx_offload_drops: u64,
}

impl OffloadCounters {
    /// Counters for `workers` workers.
    pub fn new(workers: usize) -> OffloadCounters {
        OffloadCounters {
            cells: (0..workers.max(1) * MAX_PORTS as usize * COUNTERS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            mtu: (0..MAX_PORTS).map(|_| AtomicU16::new(1500)).collect(),
        }
    }

    /// Records port `port`'s MTU (large frames are counted against it).
    pub fn set_mtu(&self, port: u16, mtu: u16) {
        if let Some(m) = self.mtu.get(port as usize) {
            m.store(mtu, Ordering::Relaxed);
        }
    }

    fn mtu(&self, port: u16) -> usize {
        self.mtu
            .get(port as usize)
            .map_or(1500, |m| m.load(Ordering::Relaxed).into())
    }

    #[inline]
    fn add(&self, worker: usize, port: u16, c: Counter, n: u64) {
        let i = (worker * MAX_PORTS as usize + port as usize) * COUNTERS + c as usize;
        if let Some(cell) = self.cells.get(i) {
            cell.store(cell.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        }
    }

    /// Port `port`'s counters, all workers.
    pub fn totals(&self, port: u16) -> OffloadTotals {
        let mut t = [0u64; COUNTERS];
        for w in self.cells.chunks(MAX_PORTS as usize * COUNTERS) {
            let base = port as usize * COUNTERS;
            for (k, v) in t.iter_mut().enumerate() {
                *v += w.get(base + k).map_or(0, |c| c.load(Ordering::Relaxed));
            }
        }
        OffloadTotals {
            rx_large_frames: t[0],
            rx_large_bytes: t[1],
            tx_segmented: t[2],
            tx_segments: t[3],
            tx_csum_sw: t[4],
            tx_offload_drops: t[5],
        }
    }
}

/// What a received frame asks of its output.
#[derive(Clone, Copy)]
enum Work {
    /// Nothing.
    Plain,
    /// A large TCP segment of `mss`-byte segments (its checksum is partial).
    Tso(Headers, u16),
    /// A partial TCP/UDP checksum.
    Partial(Headers),
    /// A large frame this switch cannot segment (not TCP, or headers it
    /// cannot parse): dropped where it would have to be cut.
    Unsegmentable,
}

impl Work {
    fn of(m: &Mbuf) -> Work {
        let f = m.ol_flags();
        let partial = f & ol::RX_L4_CKSUM_MASK == ol::RX_L4_CKSUM_NONE;
        if f & ol::RX_LRO != 0 {
            return match Headers::parse(m.data()) {
                Some(h) if h.tcp && m.tso_segsz() > 0 => Work::Tso(h, m.tso_segsz()),
                _ => Work::Unsegmentable,
            };
        }
        match Headers::parse(m.data()) {
            Some(h) if partial => Work::Partial(h),
            _ => Work::Plain,
        }
    }
}

/// Where the slow path sends: the worker's tx queues, per-port bursts and
/// counters.
pub struct OffloadTx<'a> {
    /// Tx queue per switch port.
    pub tx: &'a mut [Option<TxQueue>],
    /// Per-port output bursts (empty between calls).
    pub out: &'a mut [Burst],
    /// Refused-frame counters.
    pub drops: &'a TxDrops,
    /// Offload counters.
    pub counters: &'a OffloadCounters,
    /// The worker's index.
    pub worker: usize,
}

impl OffloadTx<'_> {
    /// Sends port `p`'s burst; frees and counts what the queue refuses.
    fn flush(&mut self, p: usize) -> u64 {
        let ob = &mut self.out[p];
        let mut sent = 0;
        if let Some(q) = self.tx.get_mut(p).and_then(Option::as_mut) {
            sent = q.tx_burst(ob) as u64;
        }
        if !ob.is_empty() {
            self.drops.add(self.worker, p as u16, ob.len() as u64);
            ob.clear();
        }
        sent
    }

    /// Queues `m` for port `p`, sending the burst first when it is full.
    fn push(&mut self, p: usize, m: Mbuf, sent: &mut u64) {
        if let Err(m) = self.out[p].push(m) {
            *sent += self.flush(p);
            let _ = self.out[p].push(m);
        }
    }

    /// Sends a burst of `n` frames received on `in_port`, some carrying
    /// offload work, as `verdicts` say; returns the frames handed to tx
    /// queues.
    #[cold]
    #[inline(never)]
    pub fn send_burst(&mut self, in_port: u16, burst: &mut Burst, verdicts: &[Verdict]) -> u64 {
        let n = burst.len();
        let mut slots: [Option<Mbuf>; BURST_SIZE] = [const { None }; BURST_SIZE];
        for s in slots[..n].iter_mut().rev() {
            *s = burst.pop();
        }
        let (mut used, mut sent) = (0u64, 0u64);
        for (slot, v) in slots[..n].iter_mut().zip(verdicts) {
            let (Some(m), Verdict::Output(mut mask)) = (slot.take(), *v) else {
                continue;
            };
            let work = Work::of(&m);
            if let Work::Tso(h, _) | Work::Partial(h) = work {
                let l3 = m.pkt_len().saturating_sub(h.l2_len.into());
                if l3 > self.counters.mtu(in_port) {
                    let c = self.counters;
                    c.add(self.worker, in_port, Counter::RxLargeFrames, 1);
                    c.add(
                        self.worker,
                        in_port,
                        Counter::RxLargeBytes,
                        m.pkt_len() as u64,
                    );
                }
            }
            let mut m = Some(m);
            while mask != 0 {
                let p = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let one = if mask == 0 {
                    m.take()
                } else {
                    m.as_ref().map(Mbuf::clone_ref)
                };
                let (Some(one), true) = (one, p < self.out.len()) else {
                    continue;
                };
                used |= 1 << p;
                self.emit(p, one, work, &mut sent);
            }
        }
        while used != 0 {
            let p = used.trailing_zeros() as usize;
            used &= used - 1;
            sent += self.flush(p);
        }
        sent
    }

    /// Prepares `m` for port `p` (see the module docs) and queues it.
    fn emit(&mut self, p: usize, mut m: Mbuf, work: Work, sent: &mut u64) {
        let caps = self
            .tx
            .get(p)
            .and_then(Option::as_ref)
            .map_or(TxCaps::NONE, |q| ol::tx_caps(q.port()));
        let port = p as u16;
        match work {
            Work::Plain => self.push(p, m, sent),
            Work::Unsegmentable => {
                self.counters
                    .add(self.worker, port, Counter::TxOffloadDrops, 1);
            }
            Work::Tso(h, mss) => {
                let tso = if h.ipv4 { TxCaps::TSO4 } else { TxCaps::TSO6 };
                if caps.has(tso.with(TxCaps::CSUM)) {
                    let ip = if h.ipv4 {
                        ol::TX_IPV4 | ol::TX_IP_CKSUM
                    } else {
                        ol::TX_IPV6
                    };
                    m.set_ol_flags(ol::TX_TCP_SEG | ol::TX_TCP_CKSUM | ip);
                    m.set_tx_offload(h.l2_len, h.l3_len, h.l4_len, mss);
                    self.push(p, m, sent);
                } else {
                    self.segment(p, &m, &h, mss, sent);
                }
            }
            Work::Partial(h) => {
                if caps.has(TxCaps::CSUM) {
                    let l4 = if h.tcp {
                        ol::TX_TCP_CKSUM
                    } else {
                        ol::TX_UDP_CKSUM
                    };
                    let ip = if h.ipv4 { ol::TX_IPV4 } else { ol::TX_IPV6 };
                    m.set_ol_flags(l4 | ip);
                    m.set_tx_offload(h.l2_len, h.l3_len, h.l4_len, 0);
                    self.push(p, m, sent);
                    return;
                }
                let mut m = if m.nb_segs() == 1 && m.is_exclusive() {
                    m
                } else {
                    match linear_copy(&m) {
                        Some(c) => c,
                        None => {
                            self.counters
                                .add(self.worker, port, Counter::TxOffloadDrops, 1);
                            return;
                        }
                    }
                };
                complete_checksums(m.data_mut(), &h);
                m.set_ol_flags(0);
                self.counters.add(self.worker, port, Counter::TxCsumSw, 1);
                self.push(p, m, sent);
            }
        }
    }

    /// Cuts the large TCP segment `m` into frames of at most headers + `mss`
    /// bytes for port `p` (new mbufs from `m`'s pool; `m` is not changed).
    fn segment(&mut self, p: usize, m: &Mbuf, h: &Headers, mss: u16, sent: &mut u64) {
        let port = p as u16;
        let Some(segs) = Segments::new(h, m.pkt_len(), mss) else {
            self.counters
                .add(self.worker, port, Counter::TxOffloadDrops, 1);
            return;
        };
        let hl = h.len();
        let mut made = 0u64;
        for i in 0..segs.count() {
            let r = segs.range(i);
            let Some(mut s) = m.alloc_like() else { break };
            let Some(buf) = s.append(hl + r.len()) else {
                break;
            };
            // Headers from the large segment, then this segment's payload
            // (across the large segment's mbufs if it is chained).
            if !m.read_into(0, &mut buf[..hl]) || !m.read_into(hl + r.start, &mut buf[hl..]) {
                break;
            }
            finish_segment(buf, h, &segs, i);
            self.push(p, s, sent);
            made += 1;
        }
        let c = self.counters;
        if made < segs.count() as u64 {
            c.add(self.worker, port, Counter::TxOffloadDrops, 1);
        }
        c.add(self.worker, port, Counter::TxSegmented, 1);
        c.add(self.worker, port, Counter::TxSegments, made);
    }
}

/// A single-segment copy of `m` (bytes only), or `None` without a free
/// mbuf or when it does not fit one.
fn linear_copy(m: &Mbuf) -> Option<Mbuf> {
    let mut c = m.alloc_like()?;
    let len = m.pkt_len();
    let buf = c.append(len)?;
    m.read_into(0, buf).then_some(c)
}
