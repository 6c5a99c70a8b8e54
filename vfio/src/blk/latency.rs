//! Request latency per operation, in fixed log2 buckets: what the device
//! measures when latency tracking is on ([`BlkDevice::track_latency`]).
//!
//! ```text
//!  take_new: the step's first batch with requests to take ─► stamp = clock::now() (TSC, also the QoS refill's time), kept in each slot
//!  reap:     first completion of the batch       ─► now = clock::now()
//!            per run of completions with the same op and stamp (n of them):
//!              ns = (now - stamp) · ns_per_tick ─► counts[op][log2 bucket] += n, sum += n · ns
//!  scrape:   under the device lock, copies counts and sums (Prometheus histogram)
//! ```
//!
//! The clock is read once per poll step, not per request (every request
//! the step takes, from any queue, carries the step's stamp), and the
//! read that counts a step's completions stamps the next step's takes
//! when that step follows at once (a step with nothing to take in
//! between reads afresh): one `rdtsc` per busy step while requests keep
//! coming. The stamp is then early by what the previous step did after
//! that read and the poller's turn to the next step (tens of nanoseconds
//! in a polling thread with a synchronous backend, whose read ends the
//! step after its publication; with an asynchronous one the completion
//! pass and publication too, under a microsecond at a batch of 64;
//! whatever a loop that also does other work, a switch core's packets,
//! did between the two). With a synchronous backend (completed in the
//! step that takes them) that read also ends the poller's round for its
//! busy accounting (`BlkDevice::end_read`). On that path all of a step's completions share the stamp
//! and the end: per completion the device adds one to a counter of its
//! operation, and at the step's end makes one [`Latency::record_n`] per
//! operation it saw (`BlkDevice::end_sync_run`). Through `reap` the
//! device counts runs, not requests: completions of one reap that share
//! their operation and their stamp are one [`Latency::record_n`], so per
//! completion it only compares two fields and adds one to a register.
//! Per record, the conversion to nanoseconds and the bucket (a multiply,
//! a division by a constant, an `lzcnt`, once per distinct interval) and
//! two plain adds. The counters are plain integers: the device is
//! single-threaded (its poller holds its lock), and a scrape reads them
//! under the same lock. The interval runs from the device taking the
//! request off the ring to the backend reporting it done (a synchronous
//! backend: to the step's publication of its used element); time the request
//! waited in the ring before the poll is not in it (nor, for a queue
//! served later in the step, the time the step spent on the queues
//! before it: it counts as the request's).
//!
//! [`BlkDevice::track_latency`]: super::BlkDevice::track_latency

use crate::backend::IoOp;

/// Finite buckets: upper bounds 1 µs, 2 µs, 4 µs, ..., 2^21 µs (≈ 2.1 s).
pub const BUCKETS: usize = 22;

/// Operations measured apart, in this order.
pub const OPS: [&str; 4] = ["read", "write", "flush", "discard"];

/// The index of `op` in [`OPS`] (write-zeroes counts as discard, as in
/// [`super::BlkStats::discards`]).
#[inline]
pub fn op_index(op: IoOp) -> usize {
    match op {
        IoOp::Read => 0,
        IoOp::Write => 1,
        IoOp::Flush => 2,
        IoOp::Discard | IoOp::WriteZeroes { .. } => 3,
    }
}

/// The upper bounds of the finite buckets, in seconds.
pub fn bounds_seconds() -> [f64; BUCKETS] {
    let mut b = [0.0; BUCKETS];
    for (i, v) in b.iter_mut().enumerate() {
        *v = (1u64 << i) as f64 / 1e6;
    }
    b
}

/// The bucket of a latency of `ns` nanoseconds: `i` holds
/// (2^(i-1) µs, 2^i µs] (bucket 0 everything up to 1 µs), [`BUCKETS`] the
/// overflow.
#[inline]
pub fn bucket(ns: u64) -> usize {
    if ns <= 1000 {
        return 0;
    }
    // ns ≤ 2^i µs  ⇔  (ns - 1) / 1000 < 2^i  ⇔  bit length of it ≤ i.
    let k = (ns - 1) / 1000;
    ((u64::BITS - k.leading_zeros()) as usize).min(BUCKETS)
}

/// Counts of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpLatency {
    /// Non-cumulative counts per bucket; the last is the overflow.
    pub counts: [u64; BUCKETS + 1],
    /// Sum of the latencies, nanoseconds.
    pub sum_ns: u64,
}

impl Default for OpLatency {
    fn default() -> Self {
        OpLatency {
            counts: [0; BUCKETS + 1],
            sum_ns: 0,
        }
    }
}

impl OpLatency {
    /// Requests counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A device's latency histograms, one per operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    /// By [`op_index`].
    pub ops: [OpLatency; 4],
    /// Clock ticks to nanoseconds, 32.32 fixed point.
    ns_per_tick_q32: u64,
    /// The last conversion: (ticks, ns, bucket). The requests of one batch
    /// share their start stamp and their completion clock read, so they
    /// share it too: one conversion per batch, not per request.
    last: (u64, u64, usize),
}

impl Latency {
    /// Empty histograms, with the clock calibrated.
    pub fn new() -> Self {
        Latency {
            ops: Default::default(),
            ns_per_tick_q32: clock::ns_per_tick_q32(),
            last: (0, 0, 0),
        }
    }

    /// Counts one request of `op` that took `ticks` clock ticks.
    #[inline]
    pub fn record(&mut self, op: IoOp, ticks: u64) {
        self.record_n(op, ticks, 1);
    }

    /// Counts `n` requests of `op` that each took `ticks` clock ticks (a
    /// run of a batch: taken together, completed together).
    #[inline]
    pub fn record_n(&mut self, op: IoOp, ticks: u64, n: u64) {
        self.record_index(op_index(op), ticks, n);
    }

    /// [`Latency::record_n`] for the operation of [`OPS`] index `i`.
    #[inline]
    pub fn record_index(&mut self, i: usize, ticks: u64, n: u64) {
        if ticks != self.last.0 {
            let ns = ((ticks as u128 * self.ns_per_tick_q32 as u128) >> 32) as u64;
            self.last = (ticks, ns, bucket(ns));
        }
        let (_, ns, b) = self.last;
        let o = &mut self.ops[i];
        o.counts[b] += n;
        o.sum_ns = o.sum_ns.wrapping_add(ns.wrapping_mul(n));
    }
}

/// The cheapest monotonic clock there is: the TSC on x86-64 (invariant on
/// every CPU this runs on; DPDK relies on it too), else `Instant`.
pub mod clock {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// Ticks now.
    #[inline]
    pub fn now() -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC reads a counter; it has no preconditions and
            // touches no memory.
            #[allow(unused_unsafe)]
            unsafe {
                core::arch::x86_64::_rdtsc()
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            static EPOCH: OnceLock<Instant> = OnceLock::new();
            EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
        }
    }

    /// Nanoseconds per tick in 32.32 fixed point, measured once per process
    /// (20 ms against `Instant`).
    pub fn ns_per_tick_q32() -> u64 {
        static RATE: OnceLock<u64> = OnceLock::new();
        *RATE.get_or_init(|| {
            if cfg!(not(target_arch = "x86_64")) {
                return 1 << 32;
            }
            let (t0, c0) = (Instant::now(), now());
            std::thread::sleep(Duration::from_millis(20));
            let (ns, ticks) = (t0.elapsed().as_nanos() as u64, now().wrapping_sub(c0));
            if ticks == 0 {
                1 << 32
            } else {
                ((ns as u128) << 32)
                    .checked_div(ticks as u128)
                    .unwrap_or(1 << 32) as u64
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_microseconds() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1000), 0);
        assert_eq!(bucket(1001), 1);
        assert_eq!(bucket(2000), 1);
        assert_eq!(bucket(2001), 2);
        assert_eq!(bucket(4000), 2);
        assert_eq!(bucket(4001), 3);
        assert_eq!(bucket(1_000_000), 10); // 1 ms ≤ 1024 µs
        assert_eq!(bucket((1 << 21) * 1000), BUCKETS - 1);
        assert_eq!(bucket((1 << 21) * 1000 + 1), BUCKETS);
        assert_eq!(bucket(u64::MAX), BUCKETS);
        let b = bounds_seconds();
        assert_eq!(b[0], 0.000001);
        assert_eq!(b[4], 0.000016);
        assert_eq!(b[BUCKETS - 1], 2.097152);
        for ns in [1u64, 999, 1000, 1500, 3000, 77_000, 5_000_000_000] {
            let i = bucket(ns);
            if i < BUCKETS {
                assert!(ns as f64 / 1e9 <= b[i] + 1e-15, "{ns} in {i}");
            }
            if i > 0 {
                assert!(ns as f64 / 1e9 > b[i - 1], "{ns} in {i}");
            }
        }
    }

    #[test]
    fn a_batch_sharing_one_interval_counts_as_requests_one_by_one() {
        let mut batched = Latency::new();
        let mut fresh = Latency::new();
        for (op, t) in [
            (IoOp::Read, 0u64),
            (IoOp::Read, 5000),
            (IoOp::Read, 5000),
            (IoOp::Write, 5000),
            (IoOp::Read, 90_000),
            (IoOp::Flush, 5000),
            (IoOp::Read, 0),
        ] {
            batched.record(op, t);
            // A new histogram per sample: no conversion to reuse.
            let mut one = Latency::new();
            one.record(op, t);
            for (f, o) in fresh.ops.iter_mut().zip(&one.ops) {
                for (c, n) in f.counts.iter_mut().zip(&o.counts) {
                    *c += n;
                }
                f.sum_ns += o.sum_ns;
            }
        }
        assert_eq!(batched.ops, fresh.ops);
        assert_eq!(batched.ops[0].count(), 5);
    }

    #[test]
    fn clock_measures_a_sleep() {
        let mut l = Latency::new();
        let t = clock::now();
        std::thread::sleep(std::time::Duration::from_millis(3));
        l.record(IoOp::Write, clock::now() - t);
        let w = &l.ops[1];
        assert_eq!(w.count(), 1);
        // 3 ms ≤ ns < 200 ms (a loaded machine).
        assert!(
            w.sum_ns >= 3_000_000 && w.sum_ns < 200_000_000,
            "{}",
            w.sum_ns
        );
        assert_eq!(l.ops[0].count(), 0);
    }
}
