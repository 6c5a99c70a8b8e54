//! Per-device QoS: IOPS and bandwidth limits enforced with token buckets.
//!
//! The limits are SPDK's (`bdev_set_qos_limit`, SPDK JSON-RPC doc):
//! `rw_ios_per_sec` (every request that reaches the backend: read, write,
//! flush, discard, write zeroes), `rw_mbytes_per_sec` (bytes read plus
//! written), `r_mbytes_per_sec` (read), `w_mbytes_per_sec` (written); a
//! megabyte is 1024 × 1024 bytes as in SPDK, 0 means no limit.
//!
//! How a request waits: [`BlkDevice`](super::BlkDevice) parses the chain it
//! popped, asks [`Qos::admit`], and when the request's buckets were at
//! zero or below at the step's start hands the chain back to the ring
//! (`unpop`, as when the backend is busy): the request stays in the
//! virtqueue, in order, and is never failed. Admission is SPDK's rule
//! taken per poll step (see [`Qos`]): a request goes while its buckets
//! are above zero and is debited after, so a bucket may go into debt by
//! one step's batch, and the next request of its kind waits until the
//! debt is paid back: the long-run rate is exact. Each bucket holds at
//! most [`BURST`] worth of its rate, so after an idle period a device may
//! run ahead by that much plus one step's batch and no more (time the
//! poller itself was stalled is credited up to [`STALL_CREDIT`], see
//! [`Bucket::refill`]).
//!
//! Cost: the device reads one atomic (the limits' generation) per poll
//! step; with no limit set that is all (the device's per-request loop
//! without QoS is a separate instance of it, no check per request). With
//! limits, per request one table lookup by the operation's byte and two
//! adds; per poll step that takes requests four integer compares, and
//! only when some bucket less what was admitted since could be at zero:
//! one TSC read ([`clock::now`]), a refill and charge of four buckets and
//! four float-to-integer conversions (see [`Qos::refill_if_due`]).
//!
//! Changing the limits live: [`QosHandle`] is `Send + Sync` and clonable;
//! [`QosHandle::set`] bumps the generation and the device picks the new
//! limits at its next poll step (buckets start empty, so a raised limit
//! applies at once and a lowered one within a burst).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::latency::clock;
use crate::backend::IoOp;

/// Bytes in SPDK's "megabyte" (its QoS limits are in MiB per second).
pub const MBYTE: u64 = 1024 * 1024;
/// How much of its rate a bucket holds when full (the largest burst after
/// an idle period).
pub const BURST: Duration = Duration::from_millis(10);
/// The longest poller stall whose tokens are credited beyond the burst
/// (see [`Bucket::refill`]).
pub const STALL_CREDIT: Duration = Duration::from_millis(100);

/// A device's QoS limits; 0 means unlimited (SPDK `bdev_set_qos_limit`
/// parameter names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QosLimits {
    /// Requests per second (all kinds).
    pub rw_ios_per_sec: u64,
    /// MiB per second read plus written.
    pub rw_mbytes_per_sec: u64,
    /// MiB per second read.
    pub r_mbytes_per_sec: u64,
    /// MiB per second written.
    pub w_mbytes_per_sec: u64,
}

impl QosLimits {
    /// No limit at all.
    pub fn is_unlimited(&self) -> bool {
        *self == QosLimits::default()
    }
}

impl std::fmt::Display for QosLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_unlimited() {
            return write!(f, "no QoS limit");
        }
        let mut sep = "";
        for (name, v) in [
            ("rw_ios_per_sec", self.rw_ios_per_sec),
            ("rw_mbytes_per_sec", self.rw_mbytes_per_sec),
            ("r_mbytes_per_sec", self.r_mbytes_per_sec),
            ("w_mbytes_per_sec", self.w_mbytes_per_sec),
        ] {
            if v != 0 {
                write!(f, "{sep}{name} {v}")?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

/// The limits shared between a device and its control plane.
#[derive(Debug, Default)]
struct Shared {
    limits: Mutex<QosLimits>,
    /// Bumped on every change; the device compares it once per poll step.
    generation: AtomicU64,
}

/// A thread-safe handle on a device's QoS limits (for the control plane:
/// JSON-RPC `bdev_set_qos_limit`, CLI flags). Get one with
/// [`BlkDevice::qos_handle`](super::BlkDevice::qos_handle).
#[derive(Debug, Clone, Default)]
pub struct QosHandle(Arc<Shared>);

impl QosHandle {
    /// A handle with no limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets all four limits (0: unlimited); the device applies them at its
    /// next poll step.
    pub fn set(&self, limits: QosLimits) {
        *self.0.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
        self.0.generation.fetch_add(1, Ordering::Release);
    }

    /// The limits last set.
    pub fn get(&self) -> QosLimits {
        *self.0.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The change counter (the device's cheap check).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }
}

/// One token bucket: `rate` tokens per second, at most `burst` saved up.
/// Tokens may go negative (what was admitted while it was above zero);
/// nothing is admitted until they are above zero again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    per_ns: f64,
    burst: f64,
    tokens: f64,
    /// Tokens of a poller stall the bucket may hold beyond the burst
    /// (see [`Bucket::refill`]).
    credit: f64,
}

impl Bucket {
    /// A bucket for `rate` tokens per second, empty.
    pub fn new(rate: u64) -> Self {
        let burst = (rate as f64 * BURST.as_secs_f64()).max(1.0);
        Bucket {
            per_ns: rate as f64 / 1e9,
            burst,
            tokens: 0.0,
            credit: 0.0,
        }
    }

    /// A bucket with no limit: +∞ tokens, which taking, giving back and
    /// refilling leave at +∞ (nothing is ever subtracted from ∞ but
    /// finite amounts, so no NaN).
    pub fn unlimited() -> Self {
        Bucket {
            per_ns: 0.0,
            burst: f64::INFINITY,
            tokens: f64::INFINITY,
            credit: 0.0,
        }
    }

    /// Adds the tokens of `ns` nanoseconds, up to the burst. A gap between
    /// two refills longer than the burst is time the poller itself did not
    /// run (it refills every poll step, at least every millisecond even
    /// when it sleeps): the tokens of such a gap beyond the burst, up to
    /// [`STALL_CREDIT`] worth, become credit the bucket may hold on top of
    /// the burst, so a descheduled poller on a loaded host still gives the
    /// device its rate. The credit runs out at the rate tokens come in (it
    /// lasts about as long as the stall did), not at the next refill: a
    /// driver whose queue holds fewer requests than the credit (32 at QD
    /// 32, against 250 tokens of a 50 ms stall at 5000/s) gets the rest on
    /// its next round trips instead of losing it. The long-run rate stays
    /// exact: the credit only raises the cap, tokens still come at the rate.
    #[inline]
    pub fn refill(&mut self, ns: u64) {
        self.fill(ns, true);
    }

    /// [`Bucket::refill`] for a gap during which the poller ran but nothing
    /// waited for the bucket (the device had no request to take): the gap
    /// makes no stall credit, as refills every poll step would have made
    /// none (a bucket nobody draws on fills up to its burst and no
    /// further); credit left from an earlier stall runs out as usual.
    #[inline]
    pub fn refill_idle(&mut self, ns: u64) {
        self.fill(ns, false);
    }

    #[inline]
    fn fill(&mut self, ns: u64, stall: bool) {
        let earned = ns as f64 * self.per_ns;
        if stall && earned > self.burst {
            let stall = earned.min(self.per_ns * STALL_CREDIT.as_nanos() as f64);
            self.credit = self.credit.max(stall - self.burst);
        } else {
            self.credit = (self.credit - earned).max(0.0);
        }
        self.tokens = (self.tokens + earned).min(self.burst + self.credit);
    }

    /// Whether a request may go now (the bucket is above zero, SPDK's
    /// rule).
    #[inline]
    pub fn ready(&self) -> bool {
        self.tokens > 0.0
    }

    /// Takes `n` tokens (possibly into debt).
    #[inline]
    pub fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    /// Tokens now (negative: debt).
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// Where each bucket sits in [`Qos`]'s array: the request count, bytes
/// either way, bytes read, bytes written (requests without data charge
/// the count alone).
const IOS: usize = 0;
const RW: usize = 1;
const R: usize = 2;
const W: usize = 3;

/// The byte that encodes `op`, whatever layout the compiler chose (the
/// niche-packed enum: a `match` on it first turns the byte into the
/// variant's index, several instructions per request).
#[inline(always)]
const fn op_byte(op: IoOp) -> u8 {
    // SAFETY: the transmute checks at compile time that `IoOp` is one
    // byte; every value of it is that byte initialized (the variants
    // without fields are encoded in the niche of `WriteZeroes`'s bool, so
    // no variant leaves it as padding), and any byte is a valid `u8`.
    unsafe { std::mem::transmute::<IoOp, u8>(op) }
}

/// Operation classes: the operation's byte masked to three bits, an
/// index into [`Qos`]'s per-class tables (one `and`, no `match`).
const CLASSES: usize = 8;

/// The class of `op` (see [`CLASSES`]).
#[inline(always)]
const fn class(op: IoOp) -> usize {
    (op_byte(op) as usize) & (CLASSES - 1)
}

/// The classes of a read and of a write.
const READ: usize = class(IoOp::Read);
const WRITE: usize = class(IoOp::Write);

// A read and a write each have a class of their own: no other operation
// shares it (the others charge the count alone, whatever their class).
const _: () = {
    let others = [
        class(IoOp::Flush),
        class(IoOp::Discard),
        class(IoOp::WriteZeroes { unmap: false }),
        class(IoOp::WriteZeroes { unmap: true }),
    ];
    assert!(READ != WRITE);
    let mut i = 0;
    while i < others.len() {
        assert!(others[i] != READ && others[i] != WRITE);
        i += 1;
    }
};

/// The highest calm bound ([`Qos`], "Refills"): an unlimited bucket's,
/// so the counters of what was admitted are reset (by a refill) long
/// before they could wrap.
const CALM_MAX: u64 = 1 << 62;

/// The buckets of one device. A limit that is not set is an unlimited
/// bucket (+∞ tokens, which no take or refill changes).
///
/// Admission (SPDK's rule, `bdev_qos_rw_queue_io` in `lib/bdev/bdev.c`:
/// a request goes while its limits' quota is above zero, and is debited
/// after, the quota possibly going negative, the deficit carried to the
/// next time slice): a poll step admits a request when every bucket it
/// charges (the count; for a read or write also the bytes either way and
/// the bytes of its direction) held more than zero tokens at the step's
/// start. Taken per step, not per request: each refill notes, per
/// operation class, whether it is held ([`Qos::refill`], four compares);
/// each [`Qos::admit`] looks that up by the operation's byte and adds
/// the request to the counters of what was admitted (its count and its
/// class's bytes), which the next refill takes from the buckets. Per
/// request: one table lookup, two adds; no compare with any bucket.
///
/// What it guarantees (`tests`): over any window of steps, a bucket
/// lets through at most its burst, plus its rate over the window, plus
/// one step's batch (what the last step that found it above zero took:
/// at most `BATCH` (64) requests per queue); the long-run
/// rate is the limit (the deficit is paid back before the next request
/// of that kind goes); requests over the limit stay in the ring, in
/// order, and are never failed; a limit on one direction never holds the
/// other. Against admitting request by request (SPDK's per-I/O overrun of
/// one request) the burst grows by one step's batch, for a per-request
/// cost of a lookup and two adds instead of compares against every
/// bucket it charges.
///
/// Refills: a step reads the clock and refills only when some bucket,
/// less what was admitted since the last refill, could be at zero or
/// below ([`Qos::refill_if_due`]: four integer compares per step against
/// bounds the last refill set); while every bucket stays above zero the
/// step admits on what they held (the buckets cannot have gone lower,
/// only higher). After skipped steps the counters are charged after the
/// refill's cap, so the tokens of skipped time never pay for requests
/// beyond the burst.
///
/// Time is the poller's clock ([`clock::now`], the TSC on x86-64): a
/// refill reads it (about 10 ns; `Instant::now()` is a `clock_gettime`
/// through the vDSO, several times that) and converts ticks to
/// nanoseconds with one multiply.
#[derive(Debug, Clone)]
pub struct Qos {
    /// Requests admitted since the last charge.
    n: u64,
    /// Bytes admitted since the last charge, per operation class
    /// (wrapping adds; reset at each refill, well before they could wrap,
    /// see [`CALM_MAX`]).
    bytes: [u64; CLASSES],
    /// Per class: held (some bucket it charges was at zero or below at
    /// the last refill).
    held: [bool; CLASSES],
    b: [Bucket; 4],
    /// Per bucket: while what was admitted since the last refill is below
    /// this (`ceil(tokens)`, 0 at zero or in debt), the bucket is above
    /// zero without a refill.
    calm: [u64; 4],
    /// Clock ticks at the last refill.
    last: u64,
    /// Clock ticks to nanoseconds, 32.32 fixed point.
    ns_per_tick_q32: u64,
    /// A poll step began and has not refilled yet ([`Qos::new_step`]).
    due: bool,
    /// A poll step ended without a refill since the last one: the device
    /// had nothing to take, or the buckets were calm (see
    /// [`Qos::refill_if_due`]).
    idle: bool,
    /// A step skipped its refill since the last one: what was admitted
    /// since went after the last refill's time (see [`Qos::refill`]).
    behind: bool,
    /// Some limit is set.
    limited: bool,
}

impl Qos {
    /// Buckets for `limits` on the poller's clock (`now`: [`clock::now`]);
    /// with no limit, [`Qos::limited`] is false and nothing is held.
    pub fn new(limits: &QosLimits, now: u64) -> Self {
        Self::with_clock(limits, now, clock::ns_per_tick_q32())
    }

    /// [`Qos::new`] on a clock of `ns_per_tick_q32` nanoseconds per tick
    /// (32.32 fixed point; `1 << 32`: ticks are nanoseconds).
    pub fn with_clock(limits: &QosLimits, now: u64, ns_per_tick_q32: u64) -> Self {
        let b = |v: u64, mul: u64| {
            if v == 0 {
                Bucket::unlimited()
            } else {
                Bucket::new(v.saturating_mul(mul))
            }
        };
        let mut q = Qos {
            n: 0,
            bytes: [0; CLASSES],
            held: [false; CLASSES],
            b: [
                b(limits.rw_ios_per_sec, 1),
                b(limits.rw_mbytes_per_sec, MBYTE),
                b(limits.r_mbytes_per_sec, MBYTE),
                b(limits.w_mbytes_per_sec, MBYTE),
            ],
            calm: [0; 4],
            last: now,
            ns_per_tick_q32,
            due: false,
            idle: false,
            behind: false,
            limited: !limits.is_unlimited(),
        };
        q.open();
        q
    }

    /// Whether any limit is set (the device skips QoS entirely if not).
    #[inline]
    pub fn limited(&self) -> bool {
        self.limited
    }

    /// A poll step begins: its first [`Qos::refill_if_due`] refills (if
    /// needed). A step that never calls it (no queue had a request to
    /// take) costs no clock read; the gap it leaves is refilled as idle
    /// time ([`Bucket::refill_idle`]), which gives what a refill every
    /// step would have: the buckets full, no stall credit.
    #[inline]
    pub fn new_step(&mut self) {
        self.idle |= self.due;
        self.due = true;
    }

    /// The step's refill, once per step, before its first admission
    /// (`now` reads the clock given at creation), unless the buckets are
    /// calm: every one of them, less what was admitted since the last
    /// refill, still above zero. Then the step reads no clock and admits
    /// on what the buckets held (nothing is held then). A step that skips
    /// counts as idle for the stall credit (see [`Qos::new_step`]).
    #[inline]
    pub fn refill_if_due(&mut self, now: impl FnOnce() -> u64) {
        if !self.due {
            return;
        }
        let (r, w) = (self.bytes[READ], self.bytes[WRITE]);
        let c = &self.calm;
        // r and w below 2^62 each: no overflow.
        if self.n < c[IOS] && r < c[R] && w < c[W] && r + w < c[RW] {
            self.behind = true;
            return;
        }
        self.due = false;
        self.refill(now());
    }

    /// Refills every bucket for the time since the last refill (`now`:
    /// ticks of the clock given at creation), takes what was admitted
    /// since the last charge from them, and notes which classes are held
    /// and the calm bounds.
    ///
    /// What was admitted is charged before the refill when the step
    /// before refilled (its requests went at that refill's time), after
    /// the refill's cap when steps skipped their refill since: their
    /// requests went after the last refill's time, and charged before the
    /// cap they would be paid with the tokens of the time before them,
    /// which a full bucket drops at its burst. Out of line: a step calls it only
    /// when some bucket could be at zero (a cold call far from the
    /// limits), and the device's loop stays smaller.
    #[inline(never)]
    pub fn refill(&mut self, now: u64) {
        let ticks = now.wrapping_sub(self.last);
        // A clock that went backwards (another CPU's TSC a few ticks
        // behind) gives nothing, and keeps the later stamp.
        if ticks != 0 && ticks <= i64::MAX as u64 {
            self.last = now;
            let ns = ((ticks as u128 * self.ns_per_tick_q32 as u128) >> 32) as u64;
            let stall = !std::mem::take(&mut self.idle);
            if !self.behind {
                self.charge();
            }
            for b in &mut self.b {
                b.fill(ns, stall);
            }
        }
        self.behind = false;
        self.settle();
    }

    /// Takes what was admitted since the last charge from the buckets
    /// (+∞ less a finite amount stays +∞) and notes which classes are
    /// held and the calm bounds on what they hold now. The device needs
    /// no call of its own (each refill does this); this is for whoever
    /// reads the buckets in between.
    #[inline]
    pub fn settle(&mut self) {
        self.charge();
        self.open();
    }

    /// Takes what was admitted since the last charge from the buckets.
    #[inline]
    fn charge(&mut self) {
        if self.n != 0 {
            let f = |v: u64| v as f64;
            let (r, w) = (f(self.bytes[READ]), f(self.bytes[WRITE]));
            self.b[IOS].tokens -= f(self.n);
            self.b[RW].tokens -= r + w;
            self.b[R].tokens -= r;
            self.b[W].tokens -= w;
            self.n = 0;
            self.bytes = [0; CLASSES];
        }
    }

    /// Which classes are held, and the calm bounds, from what the buckets
    /// hold (all of it charged).
    #[inline]
    fn open(&mut self) {
        let ready = self.b.map(|b| b.ready());
        let data = ready[IOS] && ready[RW];
        self.held = [!ready[IOS]; CLASSES];
        self.held[READ] = !(data && ready[R]);
        self.held[WRITE] = !(data && ready[W]);
        // Above zero: admitted < ceil(tokens) leaves tokens − admitted > 0.
        self.calm = self.b.map(|b| {
            if b.ready() {
                (b.tokens.ceil() as u64).min(CALM_MAX)
            } else {
                0
            }
        });
    }

    /// Whether a request `op` of `len` bytes may go to the backend now
    /// (its class is not held); if so it is counted, and charged at the
    /// next refill. Every request counts one I/O; only reads and writes
    /// charge bytes.
    #[inline(always)]
    pub fn admit(&mut self, op: IoOp, len: u64) -> bool {
        let c = class(op);
        if self.held[c] {
            return false;
        }
        self.n += 1;
        self.bytes[c] = self.bytes[c].wrapping_add(len);
        true
    }

    /// Gives back what [`Qos::admit`] took for a request it admitted in
    /// this step, which did not go after all (the backend was busy).
    #[inline]
    pub fn refund(&mut self, op: IoOp, len: u64) {
        let c = class(op);
        self.n -= 1;
        self.bytes[c] = self.bytes[c].wrapping_sub(len);
    }

    /// Tokens of the bucket of each limit (IOPS, total, read and written
    /// bytes) with what was admitted charged.
    pub fn tokens(&self) -> [f64; 4] {
        let mut q = self.clone();
        q.settle();
        q.b.map(|b| b.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to `max` admissions of `op` `len` in one step: how many went.
    fn take(q: &mut Qos, op: IoOp, len: u64, max: u64) -> u64 {
        let mut n = 0;
        while n < max && q.admit(op, len) {
            n += 1;
        }
        n
    }

    #[test]
    fn bucket_arithmetic() {
        // 5000/s: 0.000005 per ns, burst 50 (10 ms).
        let mut b = Bucket::new(5000);
        assert_eq!(b.tokens(), 0.0, "starts empty");
        assert!(!b.ready(), "at zero: held (SPDK: above zero goes)");
        b.refill(100_000); // 100 µs: 0.5 token
        assert!(b.ready());
        b.take(1);
        assert!(!b.ready());
        b.refill(100_000);
        assert!(!b.ready(), "back at zero after 100 µs: still held");
        b.refill(100_000);
        assert!(b.ready(), "above zero after 200 µs");
        for _ in 0..1000 {
            b.refill(1_000_000); // polled every ms for a second
        }
        assert_eq!(b.tokens(), 50.0, "capped at the burst");
        b.take(50);
        b.refill(1_000_000_000);
        assert!(
            (b.tokens() - 500.0).abs() < 1e-6,
            "a 1 s poller stall credits 100 ms"
        );
        b.refill(1_000_000);
        assert!(
            (b.tokens() - 495.0).abs() < 1e-6,
            "the credit outlives the next refill: {}",
            b.tokens()
        );
        for _ in 0..100 {
            b.refill(1_000_000);
        }
        assert!(
            (b.tokens() - 50.0).abs() < 1e-6,
            "unused stall credit runs out within the stall's length: {}",
            b.tokens()
        );
        // A bucket of 1 MiB/s takes a 4 MiB request into debt: 4 s to repay.
        let mut m = Bucket::new(MBYTE);
        m.take(4 * MBYTE);
        m.refill(4_000_000_000);
        assert!(!m.ready());
        m.refill(1_000_000);
        assert!(m.ready());
    }

    /// Simulated time: a greedy driver with 32 requests waiting at each
    /// poll step (every 2 µs) for one second, from empty buckets.
    fn simulate(limits: QosLimits, op: IoOp, len: u64) -> (u64, u64) {
        // Ticks are nanoseconds.
        let mut q = Qos::with_clock(&limits, 0, 1 << 32);
        let (mut ios, mut bytes) = (0u64, 0u64);
        for step in 1..=500_000u64 {
            q.refill(step * 2000);
            let n = take(&mut q, op, len, 32);
            ios += n;
            bytes += n * len;
        }
        (ios, bytes)
    }

    /// Over a second the rate is the limit, give or take the last step's
    /// batch (admitted while the bucket was above zero, paid after); the
    /// tightest of several limits wins; a read limit holds neither writes
    /// nor requests without data.
    #[test]
    fn iops_and_bandwidth_limits_hold() {
        let iops = QosLimits {
            rw_ios_per_sec: 5000,
            ..QosLimits::default()
        };
        let (n, _) = simulate(iops, IoOp::Read, 4096);
        assert!((4999..=5032).contains(&n), "{n} I/Os in 1 s at 5000/s");
        let mbps = QosLimits {
            rw_mbytes_per_sec: 20,
            ..QosLimits::default()
        };
        let (_, b) = simulate(mbps, IoOp::Write, 128 << 10);
        let want = 20 * MBYTE;
        assert!(
            b + (128 << 10) >= want && b <= want + 32 * (128 << 10),
            "{b} bytes in 1 s at 20 MiB/s"
        );
        // A read limit does not hold writes back, nor a flush bytes.
        let r = QosLimits {
            r_mbytes_per_sec: 1,
            ..QosLimits::default()
        };
        let mut q = Qos::with_clock(&r, 0, 1 << 32);
        assert!(q.limited());
        assert!(!q.admit(IoOp::Read, 512), "empty: held");
        assert!(q.admit(IoOp::Write, 4 * MBYTE));
        q.refill(1000);
        assert!(q.admit(IoOp::Read, 4 * MBYTE), "above zero: goes");
        assert!(q.admit(IoOp::Read, 4 * MBYTE), "the same step: goes too");
        q.refill(2000);
        assert!(!q.admit(IoOp::Read, 512), "read bucket in debt");
        assert!(q.admit(IoOp::Write, 4 * MBYTE));
        assert!(q.admit(IoOp::Flush, 0));
        // The tightest of several limits wins.
        let both = QosLimits {
            rw_ios_per_sec: 100_000,
            rw_mbytes_per_sec: 4,
            ..QosLimits::default()
        };
        let (n, _) = simulate(both, IoOp::Read, 4096);
        assert!((1023..=1024 + 32).contains(&n), "{n}: 4 MiB/s of 4 KiB");
        assert!(!Qos::with_clock(&QosLimits::default(), 0, 1 << 32).limited());
    }

    /// A driver with 32 requests in flight (each admitted request comes
    /// back one poll step later) and a poller descheduled for 30 ms every
    /// 100 ms, as on a loaded host: the device still does the limit. When
    /// the credit of a stall ended at the next refill, only the 32 requests
    /// waiting in the ring used it and each stall lost about 70 of its 150
    /// tokens: 4300 I/Os instead of 5000.
    #[test]
    fn poller_stalls_do_not_lower_the_rate_at_qd32() {
        let limits = QosLimits {
            rw_ios_per_sec: 5000,
            ..QosLimits::default()
        };
        let mut q = Qos::with_clock(&limits, 0, 1 << 32);
        let (mut t, mut ios, mut waiting) = (0u64, 0u64, 32u64);
        while t < 1_000_000_000 {
            // One poll step every 100 µs; at 20 ms of every 100 ms the
            // poller is away for 30 ms.
            t += if t % 100_000_000 == 20_000_000 {
                30_000_000
            } else {
                100_000
            };
            q.new_step();
            q.refill_if_due(|| t);
            let admitted = take(&mut q, IoOp::Read, 4096, waiting);
            waiting -= admitted;
            ios += admitted;
            // The driver answers each completion with a new request.
            waiting += admitted;
        }
        assert!((4950..=5100).contains(&ios), "{ios} I/Os in 1 s at 5000/s");
    }

    /// Steps with nothing to take read no clock; the gap they leave fills
    /// the buckets to the burst and no further (no stall credit), while a
    /// gap with requests waiting is a stall and is credited.
    #[test]
    fn idle_steps_read_no_clock_and_earn_no_stall_credit() {
        let limits = QosLimits {
            rw_ios_per_sec: 5000,
            r_mbytes_per_sec: 1000,
            ..QosLimits::default()
        };
        let mut q = Qos::with_clock(&limits, 0, 1 << 32);
        let mut reads = 0;
        // 50 ms of idle steps: no refill, no clock read.
        for _ in 0..1000 {
            q.new_step();
        }
        q.new_step();
        q.refill_if_due(|| {
            reads += 1;
            50_000_000
        });
        q.refill_if_due(|| unreachable!("one refill per step"));
        assert_eq!(reads, 1);
        // The burst (10 ms: 50 I/Os), not the 50 ms gap.
        assert_eq!(q.tokens()[0], 50.0);
        // A step takes all it has (64), into debt.
        assert_eq!(take(&mut q, IoOp::Read, 512, 64), 64);
        assert!((q.tokens()[0] + 14.0).abs() < 1e-9, "{:?}", q.tokens());
        // The same gap with a request waiting at each step (the step
        // before refilled): a stall, credited beyond the burst.
        q.new_step();
        q.refill_if_due(|| 100_000_000);
        assert!(
            q.tokens()[0] > 200.0,
            "{:?}: a 50 ms stall earns 250 tokens",
            q.tokens()
        );
        // An unlimited bucket stays unlimited through it all.
        assert!(q.b[W].tokens().is_infinite());
        q.refill(200_000_000);
        assert!(q.admit(IoOp::Write, 1 << 40));
        q.settle();
        assert!(q.b[W].tokens().is_infinite());
        assert!(q.tokens()[3].is_infinite());
    }

    /// Each operation charges its own buckets, and a refund gives back
    /// exactly that: a read the count, both-ways and read bytes; a write
    /// the count, both-ways and written bytes; a flush, discard or write
    /// zeroes the count alone.
    #[test]
    fn each_operation_charges_its_own_buckets() {
        let limits = QosLimits {
            rw_ios_per_sec: 100_000,
            rw_mbytes_per_sec: 400,
            r_mbytes_per_sec: 100,
            w_mbytes_per_sec: 300,
        };
        let cases = [
            (IoOp::Read, 4096, [1.0, 4096.0, 4096.0, 0.0]),
            (IoOp::Write, 8192, [1.0, 8192.0, 0.0, 8192.0]),
            (IoOp::Flush, 0, [1.0, 0.0, 0.0, 0.0]),
            (IoOp::Discard, MBYTE, [1.0, 0.0, 0.0, 0.0]),
            (
                IoOp::WriteZeroes { unmap: false },
                MBYTE,
                [1.0, 0.0, 0.0, 0.0],
            ),
            (
                IoOp::WriteZeroes { unmap: true },
                MBYTE,
                [1.0, 0.0, 0.0, 0.0],
            ),
        ];
        for (op, len, charged) in cases {
            let mut q = Qos::with_clock(&limits, 0, 1 << 32);
            // Full buckets (10 ms of each rate: 1 MiB read, 3 MiB
            // written), and a 2 MiB write admitted before.
            q.refill(10_000_000);
            assert!(q.admit(IoOp::Write, 2 * MBYTE));
            let before = q.tokens();
            assert!(q.admit(op, len), "{op:?} {len}");
            let after = q.tokens();
            for i in 0..4 {
                assert_eq!(before[i] - after[i], charged[i], "{op:?}: {i}");
            }
            q.refund(op, len);
            assert_eq!(q.tokens(), before, "{op:?}: refunded");
        }
    }

    /// A small xorshift (fixed seed: the same sequence every run).
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// The admission rule, request by request: a step admits a request
    /// exactly when every bucket it charges held more than zero tokens
    /// at the step's start (what `tokens` shows then, whether the step
    /// refilled or skipped its refill), whatever the batch admitted
    /// before it in the step; the buckets then pay what was admitted (a
    /// busy backend's refund excepted). For IOPS and bandwidth limits
    /// alone and together, read and write limits with the other direction
    /// unlimited, batches far larger than the burst (5000/s holds 50),
    /// requests far larger than the bucket (1 MiB against a 1 MiB/s
    /// limit's 10 KiB), requests without data, and poller stalls.
    #[test]
    fn a_step_admits_while_its_buckets_are_above_zero() {
        let lim = |ios, rw, r, w| QosLimits {
            rw_ios_per_sec: ios,
            rw_mbytes_per_sec: rw,
            r_mbytes_per_sec: r,
            w_mbytes_per_sec: w,
        };
        let cases = [
            lim(5000, 0, 0, 0),
            lim(0, 20, 0, 0),
            lim(5000, 20, 0, 0),
            lim(0, 0, 1, 0),
            lim(0, 0, 0, 2),
            lim(100_000, 40, 10, 30),
            lim(1, 1, 1, 1),
        ];
        let ops = [IoOp::Read, IoOp::Write, IoOp::Flush, IoOp::Discard];
        let lens = [512u64, 4096, 128 << 10, MBYTE];
        // The buckets each operation charges (count, both ways, read,
        // written).
        let charges = |op: IoOp| match op {
            IoOp::Read => [true, true, true, false],
            IoOp::Write => [true, true, false, true],
            _ => [true, false, false, false],
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for limits in cases {
            let mut q = Qos::with_clock(&limits, 0, 1 << 32);
            let (mut t, mut admitted, mut held) = (0u64, 0u64, 0u64);
            for step in 0..20_000 {
                // Steps 0-2 ms apart, and now and then a 50 ms stall.
                t += if step % 997 == 0 {
                    50_000_000
                } else {
                    next(&mut x) % 2_000_000
                };
                q.new_step();
                q.refill_if_due(|| t);
                let start = q.tokens();
                let mut paid = [0f64; 4];
                // Up to 128 requests waiting: more than a burst of 50.
                for _ in 0..1 + next(&mut x) % 128 {
                    let r = next(&mut x);
                    let (op, len) = (ops[(r % 4) as usize], lens[(r / 4 % 4) as usize]);
                    let len = if op == IoOp::Flush { 0 } else { len };
                    let c = charges(op);
                    let want = (0..4).all(|i| !c[i] || start[i] > 0.0);
                    let a = q.admit(op, len);
                    assert_eq!(a, want, "{limits}: step {step}, {op:?} {len}: {start:?}");
                    if !a {
                        // The queue waits for the next step, in order.
                        held += 1;
                        break;
                    }
                    if r.is_multiple_of(61) {
                        // The backend was busy: given back, and the queue
                        // waits.
                        q.refund(op, len);
                        break;
                    }
                    admitted += 1;
                    for i in 0..4 {
                        if c[i] {
                            paid[i] += if i == IOS { 1.0 } else { len as f64 };
                        }
                    }
                }
                for (i, now) in q.tokens().into_iter().enumerate() {
                    let want = start[i] - paid[i];
                    assert!(
                        now == want || (now - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{limits}: step {step}: bucket {i}: {now} against {want}"
                    );
                }
            }
            assert!(admitted > 0 && held > 0, "{limits}: {admitted} {held}");
        }
    }

    /// One step against a full bucket of 5000/s (50 tokens) with 128
    /// requests waiting: all go (the bucket was above zero) and the bucket
    /// is 78 in debt, which holds the next requests for 15.6 ms; greedy
    /// drivers at QD 32 get the limit within 1% over a second; a read
    /// deep in debt holds reads, not writes.
    #[test]
    fn a_step_takes_its_batch_and_pays_it_back() {
        let limits = QosLimits {
            rw_ios_per_sec: 5000,
            r_mbytes_per_sec: 20,
            ..QosLimits::default()
        };
        let mut q = Qos::with_clock(&limits, 0, 1 << 32);
        // 20 ms of steps with nothing to take: the buckets full, no more.
        q.new_step();
        q.new_step();
        q.refill_if_due(|| 20_000_000);
        assert_eq!(take(&mut q, IoOp::Read, 512, 128), 128);
        assert!((q.tokens()[0] + 78.0).abs() < 1e-9, "{:?}", q.tokens());
        q.refill(35_500_000);
        assert!(!q.admit(IoOp::Read, 512), "78 tokens take 15.6 ms");
        q.refill(35_700_000);
        assert!(q.admit(IoOp::Read, 512), "paid back");
        // QD 32 at 5000/s and 20 MiB/s of 4 KiB reads (IOPS bind) and of
        // 128 KiB reads (bandwidth binds): batches of up to 32.
        for (len, want) in [(4096u64, 5000u64), (128 << 10, 160)] {
            let mut q = Qos::with_clock(&limits, 0, 1 << 32);
            let mut done = 0;
            for step in 1..=100_000u64 {
                q.new_step();
                q.refill_if_due(|| step * 10_000);
                // Each completion is answered with a new request.
                done += take(&mut q, IoOp::Read, len, 32);
            }
            let lo = want - want / 100;
            let hi = want + want / 100 + 32;
            assert!(
                (lo..=hi).contains(&done),
                "{done} reads of {len} in 1 s, want {want}"
            );
            // A read deep into the read bucket's debt holds reads, not
            // writes (no write limit): they go in the same batch.
            q.refill(1_100_000_000);
            assert!(q.admit(IoOp::Read, 64 * MBYTE));
            q.refill(1_100_000_001);
            assert!(!q.admit(IoOp::Read, 512), "read bucket in debt");
            assert!(q.admit(IoOp::Write, 64 * MBYTE));
            assert!(q.admit(IoOp::Flush, 0));
            q.settle();
            assert!(q.tokens()[2] < -40.0 * MBYTE as f64 && q.tokens()[3].is_infinite());
        }
    }

    /// Steps that find every bucket, less what was admitted since the last
    /// refill, above zero skip the refill and its clock read. Against
    /// random demand (idle steps, a few requests, bursts of 128) at
    /// 5000/s and 20 MiB/s, reads and writes of 4 KiB to 128 KiB: no
    /// window of steps admits more than the burst plus the window's rate
    /// plus one step's batch, a greedy driver gets the limit within 1%,
    /// and a driver below the limit gets all it asks with far fewer clock
    /// reads than steps.
    #[test]
    fn calm_steps_skip_the_refill_and_keep_the_limit() {
        let limits = QosLimits {
            rw_ios_per_sec: 5000,
            rw_mbytes_per_sec: 20,
            ..QosLimits::default()
        };
        let mut x = 0x2545_f491_4f6c_dd1du64;
        // (step times, requests and bytes admitted at each, clock reads)
        let run = |demand: &mut dyn FnMut(u64) -> u64,
                   lens: &mut dyn FnMut() -> (IoOp, u64),
                   steps: usize| {
            let mut q = Qos::with_clock(&limits, 0, 1 << 32);
            let (mut t, mut reads) = (0u64, 0u64);
            let mut log = Vec::with_capacity(steps);
            let mut pending: Option<(IoOp, u64)> = None;
            for step in 0..steps as u64 {
                // Steps 0.4-2 ms apart: no stall credit in play.
                t += 400_000 + (step * 7_919_993) % 1_600_000;
                q.new_step();
                let want = demand(step);
                let (mut n, mut b) = (0u64, 0u64);
                if want > 0 {
                    q.refill_if_due(|| {
                        reads += 1;
                        t
                    });
                    while n < want {
                        let (op, len) = pending.take().unwrap_or_else(&mut *lens);
                        if !q.admit(op, len) {
                            pending = Some((op, len));
                            break;
                        }
                        n += 1;
                        b += len;
                    }
                }
                log.push((t, n, b));
            }
            (log, reads)
        };
        let burst_ios = 50.0;
        let burst_bytes = 0.01 * 20.0 * MBYTE as f64;
        // One step's batch: at most 128 requests of at most 128 KiB.
        let check_windows = |log: &[(u64, u64, u64)]| {
            for i in 0..log.len() {
                let (mut n, mut b) = (0u64, 0u64);
                for j in i..log.len() {
                    n += log[j].1;
                    b += log[j].2;
                    let secs = (log[j].0 - log[i].0) as f64 / 1e9;
                    assert!(
                        n as f64 <= burst_ios + 5000.0 * secs + 128.0,
                        "{n} I/Os in {secs} s from step {i}"
                    );
                    assert!(
                        b as f64 <= burst_bytes + 20.0 * MBYTE as f64 * secs + (128 << 17) as f64,
                        "{b} bytes in {secs} s from step {i}"
                    );
                }
            }
        };
        // Random demand, random sizes.
        let mut demand = |_: u64| match next(&mut x) % 4 {
            0 => 0,
            1 => 1 + next(&mut x) % 4,
            2 => 128,
            _ => next(&mut x) % 32,
        };
        let mut y = 0x9e37_79b9_7f4a_7c15u64;
        let mut lens = || {
            let r = next(&mut y);
            let op = if r.is_multiple_of(2) {
                IoOp::Read
            } else {
                IoOp::Write
            };
            (op, [4096u64, 16 << 10, 128 << 10][(r / 2 % 3) as usize])
        };
        let (log, _) = run(&mut demand, &mut lens, 3000);
        check_windows(&log);
        // A request, a pause that fills the bucket (~20 ms), two calm
        // steps of one request, then bursts: the calm steps' requests are
        // not paid with the tokens of the pause, which a full bucket drops.
        let mut pattern = |step: u64| match step % 40 {
            0 | 20 | 21 => 1,
            22..=25 => 128,
            _ => 0,
        };
        let (log, _) = run(&mut pattern, &mut lens, 3000);
        check_windows(&log);
        // Greedy, 4 KiB reads: the IOPS limit, within 1%.
        let mut four_k = || (IoOp::Read, 4096u64);
        let (log, reads) = run(&mut |_| 128, &mut four_k, 3000);
        check_windows(&log);
        let secs = log.last().unwrap().0 as f64 / 1e9;
        let n: u64 = log.iter().map(|l| l.1).sum();
        let want = 5000.0 * secs;
        assert!(
            (n as f64 - want).abs() <= want / 100.0 + burst_ios + 128.0,
            "{n} I/Os in {secs} s, want {want}"
        );
        assert!(
            reads >= 2900,
            "a greedy driver keeps the buckets low: {reads}"
        );
        // Below the limit (one 4 KiB read a step, ~800/s): everything,
        // about one clock read per 50 steps (the 50-token burst).
        let (log, reads) = run(&mut |_| 1, &mut four_k, 3000);
        assert!(
            log[1..].iter().all(|l| l.1 == 1),
            "a step below the limit held"
        );
        assert!(reads < 150, "{reads} clock reads in 3000 calm steps");
    }

    #[test]
    fn handle_generation_and_display() {
        let h = QosHandle::new();
        let g0 = h.generation();
        assert!(h.get().is_unlimited());
        let l = QosLimits {
            rw_ios_per_sec: 5000,
            w_mbytes_per_sec: 20,
            ..QosLimits::default()
        };
        h.clone().set(l);
        assert_eq!(h.get(), l);
        assert_ne!(h.generation(), g0);
        assert_eq!(l.to_string(), "rw_ios_per_sec 5000, w_mbytes_per_sec 20");
    }
}
