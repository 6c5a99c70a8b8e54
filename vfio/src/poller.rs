//! The poller: one thread that serves every queue of every device.
//!
//! Each round it takes each device's lock without waiting (a device being
//! reconfigured by its vhost-user connection is skipped for that round) and
//! runs one [`BlkDevice::poll`] batch. While it polls, no kicks are read: the
//! queues ask the driver not to send them, and the loop spins. In [`PollMode::Adaptive`] a
//! poller that found no work for a while sleeps between rounds, trading the
//! first request's latency after an idle period for a free core. In
//! [`PollMode::Wait`] it blocks instead until a backend's
//! [`Backend::wait_fd`](crate::backend::Backend::wait_fd) turns readable (a
//! network backend's socket: the target answered) or a driver kicks (the
//! queues ask for kicks just before the block, [`BlkDevice::arm_kicks`], and
//! stop again after it), bounded by a timeout: the CPU the poller would have
//! spun goes to whoever produces the answer (on a small host, the target).

use std::cell::UnsafeCell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::blk::latency::clock;
use crate::blk::BlkDevice;

/// A device shared between the poller and its control connection.
pub type SharedDevice = Arc<DeviceCell>;

/// A device behind a lock that the control plane cannot be starved of: a
/// control thread announces itself before it waits for the lock, and the
/// poller skips the device while one is waiting (a plain mutex would let the
/// spinning poller win every race).
///
/// Not a `std::sync::Mutex`: its unlock is an atomic swap (it must learn
/// whether a waiter sleeps on the futex), a locked instruction that drains
/// the store buffer, so every poll round would wait there for the used-ring
/// stores of its requests to reach the driver's core (one cross-core round
/// trip, in the round that did the work). Here the poller takes the lock
/// with one compare-and-swap and releases it with a plain release store;
/// a control thread that finds it taken spins briefly, then sleeps in short
/// steps (control operations are rare and not latency-critical).
pub struct DeviceCell {
    dev: UnsafeCell<BlkDevice>,
    held: AtomicBool,
    control_waiting: AtomicU32,
}

// SAFETY: `dev` is only reached through a `DeviceGuard`, and a guard exists
// only while `held` was switched from false to true by its creator (acquire)
// and is switched back on its drop (release): one thread at a time, with
// the device's writes ordered between holders, as a mutex does. BlkDevice is
// `Send`, so handing it from thread to thread this way is sound.
unsafe impl Sync for DeviceCell {}

impl std::fmt::Debug for DeviceCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCell")
            .field("held", &self.held.load(Ordering::Relaxed))
            .finish()
    }
}

/// Exclusive access to a [`DeviceCell`]'s device; released when dropped.
pub struct DeviceGuard<'a> {
    cell: &'a DeviceCell,
}

impl std::ops::Deref for DeviceGuard<'_> {
    type Target = BlkDevice;
    fn deref(&self) -> &BlkDevice {
        // SAFETY: the guard holds the lock (see `unsafe impl Sync`).
        unsafe { &*self.cell.dev.get() }
    }
}

impl std::ops::DerefMut for DeviceGuard<'_> {
    fn deref_mut(&mut self) -> &mut BlkDevice {
        // SAFETY: the guard holds the lock, and `&mut self` makes this the
        // only reference through it.
        unsafe { &mut *self.cell.dev.get() }
    }
}

impl Drop for DeviceGuard<'_> {
    fn drop(&mut self) {
        // A plain store on x86 (no locked instruction, see `DeviceCell`).
        // Also runs when unwinding: a device left by a panic is still
        // memory-safe to use, and the poller keeps serving it.
        self.cell.held.store(false, Ordering::Release);
    }
}

impl<'a> DeviceGuard<'a> {
    /// Leaves the device locked when the guard goes (the poller keeps a
    /// device that had work across rounds, see [`GroupPoller`]); only
    /// [`DeviceCell::resume`] by the same holder makes a guard for it
    /// again, or [`DeviceCell::release_kept`] unlocks it.
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl DeviceCell {
    /// The guard of a lock its holder kept ([`DeviceGuard::keep`]). Only
    /// the holder calls it (the lock is still taken, by the holder).
    fn resume(&self) -> DeviceGuard<'_> {
        DeviceGuard { cell: self }
    }

    /// Unlocks a device its holder kept.
    fn release_kept(&self) {
        drop(self.resume());
    }

    /// A control thread waits for the device.
    #[inline]
    fn control_waiting(&self) -> bool {
        self.control_waiting.load(Ordering::Acquire) > 0
    }

    /// Wraps a device.
    pub fn new(dev: BlkDevice) -> Arc<Self> {
        Arc::new(DeviceCell {
            dev: UnsafeCell::new(dev),
            held: AtomicBool::new(false),
            control_waiting: AtomicU32::new(0),
        })
    }

    #[inline]
    fn try_take(&self) -> Option<DeviceGuard<'_>> {
        // Built only on success (`then`, not `then_some`: a guard built and
        // dropped on failure would release the holder's lock).
        self.held
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| DeviceGuard { cell: self })
    }

    /// Locks the device for the control plane (waits until the poller
    /// finished its current batch, or another control thread its work).
    pub fn lock(&self) -> DeviceGuard<'_> {
        self.control_waiting.fetch_add(1, Ordering::AcqRel);
        let mut tries = 0u32;
        let g = loop {
            if let Some(g) = self.try_take() {
                break g;
            }
            tries += 1;
            if tries < 200 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        };
        self.control_waiting.fetch_sub(1, Ordering::AcqRel);
        g
    }

    /// The poller's lock: never waits, and yields to a waiting control thread.
    #[inline]
    fn try_poll_lock(&self) -> Option<DeviceGuard<'_>> {
        if self.control_waiting() {
            return None;
        }
        self.try_take()
    }
}

/// How the poller waits when there is no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Spin forever (lowest latency, one core at 100%).
    Busy,
    /// Spin for `spin_rounds` empty rounds, then sleep `sleep` per round
    /// until work appears.
    Adaptive {
        /// Empty rounds before sleeping.
        spin_rounds: u32,
        /// Sleep per idle round.
        sleep: Duration,
    },
    /// After a round that completed requests, spin for `spin` (the driver
    /// answers completions with new requests within microseconds); after one
    /// that only sent requests, none (their answers come from the network).
    /// Then ask the drivers for kicks ([`BlkDevice::arm_kicks`]) and block
    /// until a kick comes, a backend's wait fd is readable, or `max_sleep`
    /// passed (the bound for a queue without a kick fd); back to polling
    /// without kicks after.
    Wait {
        /// How long to spin after completions.
        spin: Duration,
        /// Longest block.
        max_sleep: Duration,
    },
}

/// The set of devices one poller thread serves.
#[derive(Debug, Default)]
pub struct PollGroup {
    devices: Mutex<Vec<SharedDevice>>,
    generation: AtomicU64,
    stop: AtomicBool,
    rounds: AtomicU64,
    /// Clock ticks of rounds that found work, and of rounds that did not
    /// (published with `rounds`).
    busy_ticks: AtomicU64,
    idle_ticks: AtomicU64,
    /// Devices added measure their request latency (metrics are on).
    latency: AtomicBool,
    /// The poller counts busy and idle clock ticks (metrics are on, or a
    /// benchmark asks).
    busy_accounting: AtomicBool,
}

impl PollGroup {
    /// An empty group.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds a device.
    pub fn add(&self, dev: SharedDevice) {
        self.devices
            .lock()
            .expect("poll group lock")
            .push(Arc::clone(&dev));
        // After the push: a `track_latency` running meanwhile either sees
        // the device in its list or has set the flag before this load.
        if self.latency.load(Ordering::SeqCst) {
            dev.lock().track_latency();
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Removes a device.
    pub fn remove(&self, dev: &SharedDevice) {
        self.devices
            .lock()
            .expect("poll group lock")
            .retain(|d| !Arc::ptr_eq(d, dev));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The devices served now.
    pub fn devices(&self) -> Vec<SharedDevice> {
        self.devices.lock().expect("poll group lock").clone()
    }

    /// Makes every device of the group, now and added later, measure its
    /// request latency ([`BlkDevice::track_latency`]).
    pub fn track_latency(&self) {
        self.latency.store(true, Ordering::SeqCst);
        for d in self.devices() {
            d.lock().track_latency();
        }
        // What `--metrics` turns on: the poller's busy/idle time too.
        self.track_busy();
    }

    /// Adds every device's samples to a scrape
    /// ([`crate::blk::metrics::collect`]); each device is locked briefly
    /// (its poller skips it for that round).
    pub fn collect(&self, m: &mut metrics::MetricSet) {
        for d in self.devices() {
            crate::blk::metrics::collect(&d.lock(), m);
        }
        if self.busy_accounting.load(Ordering::Relaxed) {
            let (busy, idle) = self.busy_idle_ticks();
            let secs = |t: u64| ((t as u128 * clock::ns_per_tick_q32() as u128) >> 32) as f64 / 1e9;
            m.counter_f64(
                "vswitch_blk_poller_busy_seconds_total",
                "Time the storage poller spent in rounds that moved requests \
                 (SPDK's reactor busy time).",
                &[],
                secs(busy),
            );
            m.counter_f64(
                "vswitch_blk_poller_idle_seconds_total",
                "Time the storage poller spent in rounds that found nothing, or asleep.",
                &[],
                secs(idle),
            );
        }
    }

    /// Asks the poller thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Poll rounds so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Starts counting the poller's busy and idle clock ticks
    /// ([`busy_idle_ticks`](Self::busy_idle_ticks)): off by default, it
    /// costs a clock read per round (about 10 cycles of an idle round's
    /// 45). Idempotent.
    pub fn track_busy(&self) {
        if !self.busy_accounting.swap(true, Ordering::SeqCst) {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// With [`track_busy`](Self::track_busy), the clock ticks
    /// ([`crate::blk::latency::clock`], the TSC on x86-64) the poller spent
    /// in rounds that found work, and in rounds that did not (or asleep):
    /// SPDK's reactor `busy`/`idle` accounting (`framework_get_reactors`),
    /// the same rule. A round is the interval from the end of the previous
    /// round to the end of this one; a round with work is busy. Published
    /// with [`rounds`](Self::rounds), every 4096 rounds. Busy ticks per
    /// request is what a request costs the polling core, whoever was the
    /// bottleneck.
    pub fn busy_idle_ticks(&self) -> (u64, u64) {
        (
            self.busy_ticks.load(Ordering::Relaxed),
            self.idle_ticks.load(Ordering::Relaxed),
        )
    }

    /// Starts the poller thread.
    pub fn spawn(self: &Arc<Self>, mode: PollMode) -> std::io::Result<JoinHandle<()>> {
        let group = Arc::clone(self);
        std::thread::Builder::new()
            .name("vfio-blk-poll".into())
            .spawn(move || group.run(mode))
    }

    /// A poller for a loop of the caller's own (e.g. a packet switch's
    /// burst loop, which then serves the storage queues between bursts on
    /// the same core): each [`GroupPoller::poll`] is one round.
    pub fn poller(self: &Arc<Self>) -> GroupPoller {
        GroupPoller {
            group: Arc::clone(self),
            local: Vec::new(),
            kept: Vec::new(),
            seen: u64::MAX,
            rounds: 0,
            accounting: false,
            last_tick: clock::now(),
            busy_ticks: 0,
            idle_ticks: 0,
            idle_streak: 0,
        }
    }

    fn run(self: &Arc<Self>, mode: PollMode) {
        let mut p = self.poller();
        let mut idle = 0u32;
        let mut waiter = match mode {
            PollMode::Wait { spin, max_sleep } => Some(Waiter::new(spin, max_sleep)),
            _ => None,
        };
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(w) = waiter.as_mut() {
                if w.poll(&mut p) == 0 {
                    w.idle(&mut p, &[]);
                }
                continue;
            }
            if p.poll() > 0 {
                idle = 0;
                continue;
            }
            idle = idle.saturating_add(1);
            // No `spin_loop()` (PAUSE) between empty rounds: on this
            // generation of x86 a PAUSE stalls ~140 cycles, as long as the
            // round itself, and a request made available meanwhile waits
            // for it (measured with blk_vhost: QD 1 p50 0.20-0.22 us
            // without, 0.22-0.24 with, and up to twice the IOPS per core on
            // a quiet host). The core is the poller's own in Busy mode.
            if let PollMode::Adaptive { spin_rounds, sleep } = mode {
                if idle > spin_rounds {
                    // No device stays locked through the sleep.
                    p.release_kept();
                    std::thread::sleep(sleep)
                }
            }
        }
    }
}

/// [`PollMode::Wait`]'s state: when a polling loop spins, when it blocks,
/// and on what. The poller thread uses it alone; a loop with other work
/// (the switch's core, which also receives frames) calls [`Waiter::poll`]
/// each round, [`Waiter::busy`] when its other work moved something, and
/// [`Waiter::idle`] with its own wake-up descriptors when nothing did.
///
/// It spins only where a spin pays: after a round that completed requests
/// (the driver answers them with new ones within microseconds), not after
/// one that only sent requests (their answers come from the network, and a
/// descriptor wakes the loop), so a target sharing the core gets it at once.
/// The spin is timed (a round costs 30 ns on cache hits, 150 ns on a socket).
/// With [`Waiter::with_batch_wakeups`], the thread becomes `SCHED_BATCH` at
/// its first block, so a wake-up does not preempt the task that caused it.
#[derive(Debug)]
pub struct Waiter {
    spin: Duration,
    max_sleep: Duration,
    spin_until: Option<Instant>,
    spun_out: bool,
    prev_inflight: usize,
    idle: u32,
    fds: Vec<libc::pollfd>,
    kicks: Vec<RawFd>,
    /// Descriptors the last block's `ppoll` reported readable.
    fired: Vec<RawFd>,
    slack_set: bool,
    batch: bool,
}

/// Idle spin rounds with requests in flight before the spin yields the CPU
/// each round (a cache hit completes at the next round: no yield for it).
const YIELD_AFTER: u32 = 16;

/// Descriptors one block waits on at most.
const MAX_WAIT_FDS: usize = 64;

impl Waiter {
    /// Spins `spin` after completions; blocks at most `max_sleep` (the
    /// bound for a queue without a kick descriptor, and for timers of
    /// whatever the loop also serves).
    pub fn new(spin: Duration, max_sleep: Duration) -> Waiter {
        Waiter {
            spin,
            max_sleep,
            spin_until: None,
            spun_out: false,
            prev_inflight: 0,
            idle: 0,
            fds: Vec::with_capacity(MAX_WAIT_FDS),
            kicks: Vec::with_capacity(MAX_WAIT_FDS),
            fired: Vec::with_capacity(MAX_WAIT_FDS),
            slack_set: false,
            batch: false,
        }
    }

    /// Makes the thread `SCHED_BATCH` at its first block (see
    /// `batch_wakeups`): for a loop woken once per received frame (a
    /// packet socket), where the target would otherwise be preempted after
    /// the first segment of each answer. A loop woken by a kernel TCP
    /// socket gains nothing (the kernel wakes it once the data is queued)
    /// and loses a few microseconds at queue depth 1, so this is opt-in.
    pub fn with_batch_wakeups(mut self) -> Waiter {
        self.batch = true;
        self
    }

    /// One round of `p`, noting the requests in flight and (when the round
    /// may end in a block) the backends' wait descriptors. Returns the work
    /// done.
    pub fn poll(&mut self, p: &mut GroupPoller) -> usize {
        let mut inflight = 0;
        self.fds.clear();
        let (collect, fds) = (self.spun_out, &mut self.fds);
        let work = p.poll_each(|dev| {
            inflight += dev.backend().inflight();
            if collect && fds.len() < fds.capacity() {
                if let Some(fd) = dev.backend().wait_fd() {
                    fds.push(pollfd(fd));
                }
            }
        });
        if work > 0 {
            // work = new + completed, inflight - prev = new - completed.
            let completed = (work + self.prev_inflight).saturating_sub(inflight) / 2;
            self.spin_until = (completed > 0 || inflight == 0).then(|| Instant::now() + self.spin);
            self.spun_out = self.spin_until.is_none();
            self.idle = 0;
        }
        self.prev_inflight = inflight;
        work
    }

    /// The loop's other work moved something this round: poll again before
    /// any block (what it moved may be an answer the next round completes).
    pub fn busy(&mut self) {
        self.idle = 0;
    }

    /// A round with no work: spin while the spin lasts, then ask the
    /// drivers for kicks and block until a kick, a backend's descriptor or
    /// one of `extra` turns readable, or `max_sleep` passed. A queue that
    /// got requests meanwhile cancels the block.
    pub fn idle(&mut self, p: &mut GroupPoller, extra: &[RawFd]) {
        self.idle = self.idle.saturating_add(1);
        if !self.spun_out {
            self.spun_out = match self.spin_until {
                Some(t) => self.idle.is_multiple_of(32) && Instant::now() >= t,
                None => true,
            };
            if self.prev_inflight > 0 && self.idle >= YIELD_AFTER {
                // Requests are in flight elsewhere (the target works on
                // them): let a task waiting for this CPU run first. On a
                // core shared with the target, that task is the one
                // producing the answers; with none waiting, sched_yield
                // returns at once.
                // SAFETY: sched_yield takes no arguments and only
                // reschedules the calling thread.
                unsafe { libc::sched_yield() };
            } else {
                std::hint::spin_loop();
            }
            return;
        }
        if !self.slack_set {
            self.slack_set = true;
            // The block is a few tens of microseconds: the default 50 us
            // timer slack would double it.
            // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only
            // this thread's timer slack.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0u64, 0u64, 0u64) };
            if self.batch {
                batch_wakeups();
            }
        }
        // Arming and disarming lock each device (and the block must not
        // hold one): give back what the rounds kept.
        p.release_kept();
        self.kicks.clear();
        let mut sleep = true;
        for d in &p.local {
            if let Some(mut dev) = d.try_poll_lock() {
                sleep &= dev.arm_kicks(&mut self.kicks);
            }
        }
        self.fired.clear();
        if sleep {
            let room = self.fds.capacity() - self.fds.len();
            let more = self.kicks.iter().chain(extra).take(room);
            self.fds.extend(more.map(|&fd| pollfd(fd)));
            if self.fds.is_empty() {
                std::thread::sleep(self.max_sleep);
            } else {
                wait_readable(&mut self.fds, self.max_sleep);
                let fired = self.fds.iter().filter(|f| f.revents != 0);
                self.fired.extend(fired.map(|f| f.fd));
            }
        }
        // Without a block, kicks may have come while arming: read them all.
        let fired = sleep.then_some(self.fired.as_slice());
        for d in &p.local {
            if let Some(mut dev) = d.try_poll_lock() {
                dev.disarm_kicks_fired(fired);
            }
        }
    }
}

/// Makes this thread `SCHED_BATCH` (if it is `SCHED_OTHER`: a real-time
/// policy the operator chose stays). A batch thread that wakes does not
/// preempt the task running on its CPU: on a core shared with the target
/// (or anything that produces the answers), the packet that wakes the
/// poller no longer interrupts the target in the middle of sending the
/// rest of its answer; the poller runs once the target sleeps and finds the
/// whole answer, one context switch per answer instead of one per segment.
/// Measured with `blk_iscsi --targets vs-one-w,qsd-veth` (woken per frame
/// by an af_packet socket): back-end cycles per request fell by a quarter.
/// On a core of its own nothing changes.
fn batch_wakeups() {
    // SAFETY: sched_getscheduler/sched_setscheduler on the calling thread
    // (pid 0) with a valid sched_param; failure leaves the policy as it was.
    unsafe {
        if libc::sched_getscheduler(0) == libc::SCHED_OTHER {
            let p = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &p);
        }
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// One thread's round-by-round view of a [`PollGroup`] (see
/// [`PollGroup::poller`]).
///
/// A device the poller took stays locked by it into the next rounds
/// (`DeviceGuard::keep`), with work or without, until [`KEEP_IDLE`]
/// rounds in a row found nothing: taking the lock is a locked
/// compare-and-swap, a full barrier that waits for the previous round's
/// used-ring stores to reach the driver's core (a cross-core round trip in
/// every busy round when work comes without pause, as at queue depth 128),
/// and at queue depth 1 a round with work follows a few idle ones, so a
/// lock released there was retaken (with that barrier) at the start of
/// every request's round. A control thread waiting for the device
/// (checked every round, a load of a line only control threads write), the
/// device leaving the group, [`KEEP_IDLE`] idle rounds, a [`Waiter`] that
/// blocks, and the poller's end release it; so every sleep (which follows
/// at least 1000 idle rounds in [`PollMode::Adaptive`] as configured here,
/// and [`Waiter::idle`]'s block) happens with no device held.
#[derive(Debug)]
pub struct GroupPoller {
    group: Arc<PollGroup>,
    local: Vec<SharedDevice>,
    /// Per device of `local`: locked by this poller since its last round.
    kept: Vec<bool>,
    seen: u64,
    rounds: u64,
    /// The group's `busy_accounting`, as of `seen`.
    accounting: bool,
    /// Clock at the end of the previous round, and the busy/idle sums.
    last_tick: u64,
    busy_ticks: u64,
    idle_ticks: u64,
    /// Rounds in a row without work (devices are kept until [`KEEP_IDLE`]).
    idle_streak: u32,
}

/// Rounds in a row without work after which the poller unlocks the devices
/// it kept (see [`GroupPoller`]).
pub const KEEP_IDLE: u32 = 256;

impl GroupPoller {
    /// One round: one [`BlkDevice::poll`] batch per device whose lock is
    /// free. Returns the work done (0: idle).
    pub fn poll(&mut self) -> usize {
        self.poll_each(|_| {})
    }

    /// [`GroupPoller::poll`], calling `after` with each device just polled
    /// (the Wait mode collects in-flight counts and wait fds there).
    fn poll_each(&mut self, mut after: impl FnMut(&mut BlkDevice)) -> usize {
        let g = self.group.generation.load(Ordering::Acquire);
        if g != self.seen {
            self.release_kept();
            self.local = self.group.devices.lock().expect("poll group lock").clone();
            self.kept = vec![false; self.local.len()];
            self.seen = g;
            let on = self.group.busy_accounting.load(Ordering::Acquire);
            if on && !self.accounting {
                self.last_tick = clock::now();
            }
            self.accounting = on;
        }
        let mut work = 0;
        // Past KEEP_IDLE idle rounds a device is kept only by a round with
        // work (idle rounds then lock and unlock it, as a sleep may follow).
        let keep = self.idle_streak < KEEP_IDLE;
        // The clock as the last device polled read it at its step's end
        // (latency tracked): the round's end for the busy accounting.
        let mut end_read = None;
        for (d, kept) in self.local.iter().zip(self.kept.iter_mut()) {
            let guard = if std::mem::take(kept) {
                if d.control_waiting() {
                    d.release_kept();
                    continue;
                }
                Some(d.resume())
            } else {
                d.try_poll_lock()
            };
            if let Some(mut dev) = guard {
                let w = dev.poll();
                end_read = dev.end_read();
                after(&mut dev);
                work += w;
                if w > 0 || keep {
                    dev.keep();
                    *kept = true;
                }
            }
        }
        if work > 0 {
            self.idle_streak = 0;
        } else {
            self.idle_streak = self.idle_streak.saturating_add(1);
            if self.idle_streak == KEEP_IDLE {
                self.release_kept();
            }
        }
        if self.accounting {
            // One clock read per round (as SPDK's reactor, which reads it
            // at every thread poll for the same accounting), or none when
            // the device polled last read it at its step's end to count
            // its completions (`BlkDevice::end_read`): what it did after
            // that read (an interrupt decision's bookkeeping) goes to the
            // next round.
            let now = end_read.unwrap_or_else(clock::now);
            let dt = now.wrapping_sub(self.last_tick);
            self.last_tick = now;
            if work > 0 {
                self.busy_ticks += dt;
            } else {
                self.idle_ticks += dt;
            }
        }
        self.rounds += 1;
        if self.rounds & 0xfff == 0 {
            self.group.rounds.store(self.rounds, Ordering::Relaxed);
            self.group
                .busy_ticks
                .store(self.busy_ticks, Ordering::Relaxed);
            self.group
                .idle_ticks
                .store(self.idle_ticks, Ordering::Relaxed);
        }
        work
    }
}

impl GroupPoller {
    /// Unlocks every device this poller kept locked.
    fn release_kept(&mut self) {
        for (d, kept) in self.local.iter().zip(self.kept.iter_mut()) {
            if std::mem::take(kept) {
                d.release_kept();
            }
        }
    }
}

impl Drop for GroupPoller {
    fn drop(&mut self) {
        self.release_kept();
    }
}

/// Blocks until one of `fds` is readable or `timeout` passed.
fn wait_readable(fds: &mut [libc::pollfd], timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()`
    // pollfd structs; `ts` outlives the call; no signal mask is passed. An
    // fd closed meanwhile reports POLLNVAL, which only ends the wait early.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, BackendInfo, IoCompletion, IoRequest, IoStatus, SubmitError};
    use crate::blk::mock::BlkDriver;
    use crate::blk::{BlkConfig, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN};
    use crate::guest_memory::GuestMemory;
    use crate::virtq::mock::{Buf, MockQueue};
    use crate::virtq::VIRTIO_F_VERSION_1;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, RawFd};
    use std::os::unix::net::UnixStream;

    /// Completes its requests when a byte arrives on its socket (a network
    /// backend waiting for its target).
    struct Gated {
        sock: UnixStream,
        pending: Vec<u64>,
        done: Vec<IoCompletion>,
    }

    impl Backend for Gated {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                capacity: 1 << 20,
                read_only: false,
                flush: false,
                discard: false,
                write_zeroes: false,
                max_inflight: 16,
            }
        }
        fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
            self.pending.push(req.id);
            Ok(())
        }
        fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
            let mut b = [0u8; 16];
            if matches!(self.sock.read(&mut b), Ok(n) if n > 0) {
                for id in self.pending.drain(..) {
                    self.done.push(IoCompletion {
                        id,
                        status: IoStatus::Ok,
                    });
                }
            }
            let n = self.done.len();
            out.append(&mut self.done);
            n
        }
        fn inflight(&self) -> usize {
            self.pending.len() + self.done.len()
        }
        fn wait_fd(&self) -> Option<RawFd> {
            Some(self.sock.as_raw_fd())
        }
    }

    /// A device on `backend` with one 16-entry queue started in 1 MiB of
    /// guest memory, and the mock driver of that queue.
    fn one_queue_device(name: &str, backend: Box<dyn Backend>) -> (BlkDevice, BlkDriver) {
        let mem = GuestMemory::anonymous(&[(0, 1 << 20)]).unwrap();
        let cfg = BlkConfig::new(&backend.info(), 512, 1, name).unwrap();
        let mut dev = BlkDevice::new(name, backend, cfg);
        dev.set_features(VIRTIO_F_VERSION_1);
        dev.set_memory(mem.clone());
        let base = 0x1000;
        let drv = BlkDriver::new(&mem, base, 16, base + MockQueue::footprint(16));
        dev.start_queue(0, drv.q.config(), 0).unwrap();
        (dev, drv)
    }

    /// A poller thread on `group` that spins 20 µs, then blocks up to 10 s.
    fn spawn_waiting(group: &Arc<PollGroup>) -> std::thread::JoinHandle<()> {
        group
            .spawn(PollMode::Wait {
                spin: Duration::from_micros(20),
                max_sleep: Duration::from_secs(10),
            })
            .unwrap()
    }

    /// The next used entry, which must come within 5 s of `t0` (`what`
    /// failed otherwise).
    fn wait_used(drv: &mut BlkDriver, t0: Instant, what: &str) -> (u16, u32) {
        loop {
            if let Some(u) = drv.q.pop_used() {
                return u;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "{what}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn wait_mode_sleeps_on_the_backend_fd_and_wakes_when_it_is_readable() {
        let (mut target, sock) = UnixStream::pair().unwrap();
        sock.set_nonblocking(true).unwrap();
        let backend = Box::new(Gated {
            sock,
            pending: Vec::new(),
            done: Vec::with_capacity(16),
        });
        let (dev, mut drv) = one_queue_device("wait", backend);
        // The request is in the ring before the poller starts: it takes it,
        // sends it to the backend, then blocks (10 s at most) on the fd.
        let r = drv.request(VIRTIO_BLK_T_IN, 0, &[Buf::w(0x80000, 4096)], false);
        let group = PollGroup::new();
        group.add(DeviceCell::new(dev));
        let poller = spawn_waiting(&group);
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        target.write_all(&[1]).unwrap();
        let used = wait_used(&mut drv, t0, "the readable fd did not wake the poller");
        assert_eq!(used.0, r.head);
        assert_eq!(drv.status(&r), VIRTIO_BLK_S_OK);
        // 200 ms of spinning would be millions of rounds; blocked, it did a
        // handful (the counter is published every 4096 rounds).
        assert_eq!(group.rounds(), 0, "the poller spun instead of blocking");
        group.stop();
        // Wake it from its next 10 s block.
        target.write_all(&[2]).unwrap();
        poller.join().unwrap();
    }

    fn null_device(name: &str) -> BlkDevice {
        let backend = Box::new(crate::backend::null::NullBackend::new(1 << 20, 16));
        let cfg = BlkConfig::new(&backend.info(), 512, 1, name).unwrap();
        BlkDevice::new(name, backend, cfg)
    }

    #[test]
    fn device_lock_excludes_and_a_failed_try_releases_nothing() {
        let cell = DeviceCell::new(null_device("lock"));
        let g = cell.lock();
        // Taken: the poller's try fails, and failing leaves it taken.
        assert!(cell.try_poll_lock().is_none());
        assert!(cell.try_poll_lock().is_none());
        assert!(cell.try_take().is_none());
        drop(g);
        assert!(cell.try_poll_lock().is_some());
        // A poller thread and two control threads increment a plain field
        // with a read, a yield and a write: any overlap loses increments.
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (Arc::clone(&cell), Arc::clone(&stop));
        let poller = std::thread::spawn(move || {
            let mut n = 0u64;
            while !s2.load(Ordering::Relaxed) {
                if let Some(mut d) = c2.try_poll_lock() {
                    let v = d.config().capacity_sectors;
                    std::hint::spin_loop();
                    d.config_mut().capacity_sectors = v + 1;
                    n += 1;
                }
            }
            n
        });
        let controls: Vec<_> = (0..2)
            .map(|_| {
                let c = Arc::clone(&cell);
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let mut d = c.lock();
                        let v = d.config().capacity_sectors;
                        std::thread::yield_now();
                        d.config_mut().capacity_sectors = v + 1;
                    }
                })
            })
            .collect();
        for c in controls {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let polled = poller.join().unwrap();
        let start = 2048; // 1 MiB in 512-byte sectors
        assert_eq!(cell.lock().config().capacity_sectors, start + 4000 + polled);
    }

    #[test]
    fn a_device_kept_across_rounds_goes_to_control_threads_long_idleness_and_drop() {
        let backend = Box::new(crate::backend::null::NullBackend::new(1 << 20, 16));
        let (dev, mut drv) = one_queue_device("kept", backend);
        let cell = DeviceCell::new(dev);
        let group = PollGroup::new();
        group.add(Arc::clone(&cell));
        let mut p = group.poller();
        let mut serve = |p: &mut GroupPoller| {
            drv.request(VIRTIO_BLK_T_IN, 0, &[Buf::w(0x80000, 4096)], false);
            assert_eq!(p.poll(), 2);
            assert!(drv.q.pop_used().is_some());
        };
        // A round with work keeps the lock.
        serve(&mut p);
        assert!(
            cell.try_take().is_none(),
            "released after a round with work"
        );
        // A control thread waiting gets it at the next round.
        let c = Arc::clone(&cell);
        let control = std::thread::spawn(move || c.lock().stats().reads);
        while !cell.control_waiting() {
            std::thread::yield_now();
        }
        assert_eq!(p.poll(), 0, "polled a device a control thread waits for");
        assert_eq!(control.join().unwrap(), 1);
        // Idle rounds keep it too (a request's round does not retake it),
        // up to KEEP_IDLE of them in a row, which release it.
        serve(&mut p);
        for _ in 1..KEEP_IDLE {
            assert_eq!(p.poll(), 0);
        }
        assert!(
            cell.try_take().is_none(),
            "released before KEEP_IDLE idle rounds"
        );
        assert_eq!(p.poll(), 0);
        assert!(
            cell.try_take().is_some(),
            "kept after KEEP_IDLE idle rounds"
        );
        // Past that, an idle round takes it and gives it back.
        assert_eq!(p.poll(), 0);
        assert!(cell.try_take().is_some(), "kept by a deep idle round");
        // So does the poller's end.
        serve(&mut p);
        drop(p);
        assert!(cell.try_take().is_some(), "kept after the poller ended");
    }

    #[test]
    fn busy_accounting_splits_rounds_with_work_from_idle_ones() {
        let backend = Box::new(crate::backend::null::NullBackend::new(1 << 20, 16));
        let (dev, mut drv) = one_queue_device("busy", backend);
        let group = PollGroup::new();
        group.add(DeviceCell::new(dev));
        let mut p = group.poller();
        // Off by default: nothing counted.
        for _ in 0..4096 {
            assert_eq!(p.poll(), 0);
        }
        assert_eq!(group.busy_idle_ticks(), (0, 0));
        group.track_busy();
        for _ in 0..4096 {
            assert_eq!(p.poll(), 0);
        }
        let (busy, idle) = group.busy_idle_ticks();
        assert_eq!(busy, 0, "idle rounds counted as busy");
        assert!(idle > 0, "idle rounds not counted");
        // One round with a request (taken and completed), then idle ones.
        let r = drv.request(VIRTIO_BLK_T_IN, 0, &[Buf::w(0x80000, 4096)], false);
        assert_eq!(p.poll(), 2);
        assert_eq!(drv.q.pop_used().map(|u| u.0), Some(r.head));
        for _ in 0..4095 {
            assert_eq!(p.poll(), 0);
        }
        let (busy2, idle2) = group.busy_idle_ticks();
        assert!(busy2 > 0, "the round with work not counted busy");
        assert!(idle2 > idle);
        // Exported with the storage metrics.
        let mut m = metrics::MetricSet::new();
        group.collect(&mut m);
        let text = m.encode();
        assert!(
            text.contains("vswitch_blk_poller_busy_seconds_total "),
            "{text}"
        );
        assert!(
            text.contains("vswitch_blk_poller_idle_seconds_total "),
            "{text}"
        );
    }

    /// Completes in `submit`; its wait fd never turns readable.
    struct Instant0 {
        quiet: UnixStream,
        done: Vec<IoCompletion>,
    }

    impl Backend for Instant0 {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                capacity: 1 << 20,
                read_only: false,
                flush: false,
                discard: false,
                write_zeroes: false,
                max_inflight: 16,
            }
        }
        fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
            self.done.push(IoCompletion {
                id: req.id,
                status: IoStatus::Ok,
            });
            Ok(())
        }
        fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
            let n = self.done.len();
            out.append(&mut self.done);
            n
        }
        fn inflight(&self) -> usize {
            self.done.len()
        }
        fn wait_fd(&self) -> Option<RawFd> {
            Some(self.quiet.as_raw_fd())
        }
    }

    #[test]
    fn wait_mode_wakes_on_a_kick_for_a_new_request() {
        let (_peer, quiet) = UnixStream::pair().unwrap();
        let backend = Box::new(Instant0 {
            quiet,
            done: Vec::with_capacity(16),
        });
        let (mut dev, mut drv) = one_queue_device("kick", backend);
        // SAFETY: eventfd returns a new fd (or -1, checked) that the File owns.
        let kick = unsafe {
            let fd = libc::eventfd(0, libc::EFD_NONBLOCK);
            assert!(fd >= 0, "eventfd");
            <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        };
        dev.set_kick(0, Some(kick.try_clone().unwrap()));
        let group = PollGroup::new();
        group.add(DeviceCell::new(dev));
        let poller = spawn_waiting(&group);
        // Idle: it asks for kicks and sleeps (up to 10 s).
        std::thread::sleep(Duration::from_millis(200));
        let r = drv.request(VIRTIO_BLK_T_IN, 0, &[Buf::w(0x80000, 4096)], false);
        (&kick).write_all(&1u64.to_ne_bytes()).unwrap();
        let t0 = Instant::now();
        let used = wait_used(&mut drv, t0, "the kick did not wake the poller");
        assert_eq!(used.0, r.head);
        assert_eq!(drv.status(&r), VIRTIO_BLK_S_OK);
        group.stop();
        (&kick).write_all(&1u64.to_ne_bytes()).unwrap();
        poller.join().unwrap();
    }
}
