//! The cross-connect forwarding loop: rx burst, tx burst, free leftovers.
//!
//! Each stream moves packets from one port's rx queue to another port's tx
//! queue, untouched (what testpmd calls `io` forwarding). A worker lcore polls
//! its streams round-robin until the stop flag is raised. Counters have one
//! writer (the worker) and are published with relaxed stores: a plain `mov` on
//! x86, no locked instruction in the loop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dpdk::{Burst, RxQueue, TxQueue};
use hdrhistogram::Histogram;

/// Counters of one stream, padded to a cache line so two workers never share
/// one.
#[repr(align(64))]
#[derive(Default)]
pub struct StreamCounters {
    /// Packets received.
    pub rx: AtomicU64,
    /// Packets sent.
    pub tx: AtomicU64,
    /// Packets the tx queue refused (freed).
    pub tx_dropped: AtomicU64,
    /// TSC cycles spent in iterations that moved packets.
    pub busy_cycles: AtomicU64,
}

impl StreamCounters {
    #[inline(always)]
    fn add(c: &AtomicU64, v: u64) {
        // Single writer: load + store, not a locked read-modify-write.
        c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    }
}

/// One rx→tx stream.
pub struct Stream {
    /// Index of the stream in the counters array.
    pub index: usize,
    /// Where packets come from.
    pub rx: RxQueue,
    /// Where they go.
    pub tx: TxQueue,
}

/// What a worker reports when it stops.
pub struct WorkerReport {
    /// Cycles per packet, one sample per non-empty burst.
    pub cycles_per_packet: Histogram<u64>,
}

/// Polls `streams` until `stop` is set.
pub fn run_worker(
    mut streams: Vec<Stream>,
    counters: Arc<[StreamCounters]>,
    stop: Arc<AtomicBool>,
) -> WorkerReport {
    // Sized once, up front: recording never allocates.
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("static histogram bounds");
    let mut burst = Burst::new();
    while !stop.load(Ordering::Relaxed) {
        for s in streams.iter_mut() {
            let t0 = dpdk::rdtsc();
            let n = s.rx.rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            let sent = s.tx.tx_burst(&mut burst);
            let dropped = burst.len();
            burst.clear();
            let dt = dpdk::rdtsc().wrapping_sub(t0);
            let c = &counters[s.index];
            StreamCounters::add(&c.rx, n as u64);
            StreamCounters::add(&c.tx, sent as u64);
            if dropped != 0 {
                StreamCounters::add(&c.tx_dropped, dropped as u64);
            }
            StreamCounters::add(&c.busy_cycles, dt);
            let _ = hist.record((dt / n as u64).max(1));
        }
    }
    WorkerReport {
        cycles_per_packet: hist,
    }
}
