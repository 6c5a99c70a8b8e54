//! One virtio-blk device: its queues, the requests in flight, the backend,
//! and the poll step that moves requests and completions between them.
//!
//! [`BlkDevice::poll`] is one batch: for every running queue, take up to
//! [`BATCH`] new chains, parse them, submit the I/O to the backend, commit the
//! batch; then collect completions, write status bytes and used elements, and
//! publish each touched used ring once (with at most one interrupt per queue).
//! Nothing in it allocates.
//!
//! A queue whose driver breaks the rules (malformed chain, jumping available
//! index, a head reused while in flight) is stopped: the device is in
//! "needs reset" for that queue (§2.1.2), the VMM's vring error eventfd is
//! signalled, and the queue is never read again until the VMM restarts it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::config::{BlkConfig, SEG_MAX};
use super::latency::{self, clock, Latency};
use super::notify::ConfigNotifier;
use super::qos::{Qos, QosHandle};
use super::request::{parse, Verdict};
use super::*;
use crate::backend::{Backend, IoCompletion, IoOp, IoRequest, IoStatus};
use crate::dirty_log::QueueLog;
use crate::guest_memory::GuestMemory;
use crate::inflight::InflightQueue;
use crate::iovec::{scatter, IoVec};
use crate::virtq::barrier::full_fence;
use crate::virtq::{Chain, QueueConfig, Virtqueue, VIRTIO_F_RING_PACKED};

/// Most chains taken from one queue per poll step.
pub const BATCH: usize = 64;
/// Poll steps with work after which a publication's interrupt decision is
/// made even though requests keep coming (it is made at the first step
/// without work otherwise): bounds the delay of an interrupt a driver
/// asked for to a few microseconds.
const SIGNAL_AFTER: u32 = 8;
/// Data vectors one request may carry (`seg_max` plus room for buffers that
/// straddle guest-memory regions).
pub const MAX_DATA_IOVS: usize = 2 * SEG_MAX as usize + 4;

/// Per-device counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Completed reads.
    pub reads: u64,
    /// Completed writes.
    pub writes: u64,
    /// Completed flushes.
    pub flushes: u64,
    /// Completed discards and write-zeroes.
    pub discards: u64,
    /// GET_ID requests.
    pub get_ids: u64,
    /// Bytes read by the guest.
    pub bytes_read: u64,
    /// Bytes written by the guest.
    pub bytes_written: u64,
    /// Requests completed with IOERR or UNSUPP.
    pub errors: u64,
    /// Queues stopped because the driver broke the rules.
    pub queue_resets: u64,
    /// Interrupts (call eventfd writes) sent.
    pub interrupts: u64,
    /// Poll steps that found work.
    pub busy_polls: u64,
    /// Capacity changes (online resize) applied to the config space.
    pub config_changes: u64,
}

#[derive(Debug)]
struct Slot {
    busy: bool,
    ring_descs: u16,
    op: IoOp,
    len: u64,
    status: Option<IoVec>,
    data: Vec<IoVec>,
    /// Clock ticks when the device took the request (latency tracking).
    started: u64,
}

/// One request queue of the device.
#[derive(Debug)]
struct DevQueue {
    ring: Option<Virtqueue>,
    broken: Option<String>,
    call: Option<File>,
    err: Option<File>,
    /// The driver's kick eventfd (non-blocking), read only by a poller that
    /// sleeps (`PollMode::Wait`).
    kick: Option<File>,
    slots: Vec<Slot>,
    inflight: usize,
    dirty: bool,
    /// Used elements were published and the driver's interrupt suppression
    /// is still to be read (the second half of `publish`).
    irq_check: bool,
    /// Inflight tracking shared with the VMM (split rings only).
    tracker: Option<InflightQueue>,
    /// Chains a previous back end left unfinished, oldest first.
    resubmit: Vec<u16>,
    resubmit_pos: usize,
    /// Heads whose used elements are written but not yet published.
    unpublished: Vec<u16>,
    /// Dirty-page logging while the VMM migrates the guest (`None`: not
    /// logging, the usual case).
    log: Option<QueueLog>,
}

impl DevQueue {
    fn new() -> Self {
        DevQueue {
            ring: None,
            broken: None,
            call: None,
            err: None,
            kick: None,
            slots: Vec::new(),
            inflight: 0,
            dirty: false,
            irq_check: false,
            tracker: None,
            resubmit: Vec::new(),
            resubmit_pos: 0,
            unpublished: Vec::new(),
            log: None,
        }
    }
}

/// A virtio-blk device.
pub struct BlkDevice {
    name: String,
    cfg: BlkConfig,
    backend: Box<dyn Backend>,
    mem: Option<GuestMemory>,
    features: u64,
    queues: Vec<DevQueue>,
    chain: Chain,
    completions: Vec<IoCompletion>,
    /// The backend's `max_inflight` (fixed for its life: read once, not
    /// through a virtual call per queue per poll step).
    max_inflight: usize,
    /// The backend finishes requests inside the call
    /// ([`Backend::synchronous`], read once): they are completed in the
    /// step that takes them, with no `submit`/`poll` round trip.
    sync_backend: bool,
    /// Latency of the synchronous completions: how many of each operation
    /// ([`latency::OPS`] order) this step completed, all taken at the
    /// step's stamp (counted at the step's end, one clock read).
    sync_done: [u64; 4],
    /// Latency of synchronous completions: the clock read last (a batch's
    /// stamp or the end of a step's run), whether this step may stamp its
    /// takes with it, and whether the next step may (see `poll`).
    stamp: u64,
    stamp_ok: bool,
    stamp_next: bool,
    /// The clock read that counted this step's completions, if it made
    /// one ([`BlkDevice::end_read`]).
    end_read: Option<u64>,
    /// The clock read of the last `reap` that counted completions' latency
    /// (the next step's stamp when it follows at once, see `poll`).
    reap_read: Option<u64>,
    stats: BlkStats,
    /// Per-operation latency histograms, when tracked.
    latency: Option<Box<Latency>>,
    /// QoS limits as the control plane set them, the generation applied,
    /// and the buckets (`None`: no limit, nothing to do per request).
    qos_handle: QosHandle,
    qos_seen: u64,
    qos: Option<Qos>,
    /// A queue stopped taking requests this step because of QoS.
    qos_throttled: bool,
    /// Queues were published and their drivers' interrupt suppression is
    /// still to be read ([`BlkDevice::signal`]).
    irq_pending: bool,
    /// Steps with work since `irq_pending` was set.
    irq_age: u32,
    /// Where config-change notifications go (the vhost-user back-end
    /// request channel), if the front end gave one.
    notifier: Option<ConfigNotifier>,
}

impl std::fmt::Debug for BlkDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlkDevice")
            .field("name", &self.name)
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl BlkDevice {
    /// A device named `name` (used in stats) serving `backend`.
    pub fn new(name: &str, backend: Box<dyn Backend>, cfg: BlkConfig) -> Self {
        let max_inflight = backend.info().max_inflight;
        let sync_backend = backend.synchronous();
        let cap = max_inflight.max(1);
        BlkDevice {
            name: name.to_string(),
            queues: (0..cfg.num_queues).map(|_| DevQueue::new()).collect(),
            cfg,
            backend,
            mem: None,
            features: 0,
            chain: Chain::new(),
            completions: Vec::with_capacity(cap),
            max_inflight,
            sync_backend,
            sync_done: [0; 4],
            stamp: 0,
            stamp_ok: false,
            stamp_next: false,
            end_read: None,
            reap_read: None,
            stats: BlkStats::default(),
            latency: None,
            qos_handle: QosHandle::new(),
            qos_seen: 0,
            qos: None,
            qos_throttled: false,
            irq_pending: false,
            irq_age: 0,
            notifier: None,
        }
    }

    /// The thread-safe handle on this device's QoS limits (set at start
    /// from CLI flags, changed live by the control plane).
    pub fn qos_handle(&self) -> QosHandle {
        self.qos_handle.clone()
    }

    /// Sets where config-change notifications go (`None`: nowhere; the
    /// vhost-user server sets it when the front end opens its back-end
    /// request channel).
    pub fn set_config_notifier(&mut self, n: Option<ConfigNotifier>) {
        self.notifier = n;
    }

    /// Online resize: the backend changes its capacity to `bytes`, the
    /// config space's `capacity` follows (rounded down to the logical
    /// block size) and the driver gets a config-change notification
    /// (VIRTIO 1.2 §5.2.2 / §4.x: the device "MAY notify the driver of a
    /// configuration change"; for vhost-user the back end sends
    /// `VHOST_USER_BACKEND_CONFIG_CHANGE_MSG` and the VMM re-reads the
    /// config and interrupts the guest). Returns the new capacity in bytes,
    /// and whether the driver was told (`false`: no front end, or it gave no
    /// back-end request channel; a guest then sees the size at its next
    /// boot).
    pub fn resize(&mut self, bytes: u64) -> Result<(u64, bool), String> {
        let new = self.backend.resize(bytes)?;
        Ok((new, self.capacity_changed(new)))
    }

    /// Applies a capacity the backend now has and notifies the driver.
    fn capacity_changed(&mut self, bytes: u64) -> bool {
        let bs = self.cfg.blk_size as u64;
        self.cfg.capacity_sectors = bytes / bs * bs / SECTOR_SIZE;
        eprintln!(
            "vfio blk {}: capacity now {} sectors",
            self.name, self.cfg.capacity_sectors
        );
        self.stats.config_changes += 1;
        match self.notifier.as_ref().map(ConfigNotifier::notify) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                eprintln!("vfio blk {}: config-change notification: {e}", self.name);
                false
            }
            None => false,
        }
    }

    /// Device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Configuration.
    pub fn config(&self) -> &BlkConfig {
        &self.cfg
    }

    /// Mutable configuration (config-space writes).
    pub fn config_mut(&mut self) -> &mut BlkConfig {
        &mut self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// Starts measuring request latency (see [`super::latency`]): off by
    /// default, so a device nobody scrapes pays nothing. Idempotent.
    pub fn track_latency(&mut self) {
        if self.latency.is_none() {
            self.latency = Some(Box::new(Latency::new()));
        }
    }

    /// The clock ([`clock::now`]) as the last poll step read it at its
    /// end to count its synchronous completions' latency, after
    /// publishing them, if it did (latency tracked, a synchronous backend,
    /// requests completed): a poller that accounts its busy time may take
    /// it as its end-of-round read instead of reading the clock again (one
    /// TSC read per busy round instead of two; only the step's interrupt
    /// bookkeeping comes after it). The asynchronous path reads the clock
    /// before its completions and offers nothing.
    pub fn end_read(&self) -> Option<u64> {
        self.end_read
    }

    /// The latency histograms, if tracked.
    pub fn latency(&self) -> Option<&Latency> {
        self.latency.as_deref()
    }

    /// Number of queues.
    pub fn num_queues(&self) -> usize {
        self.queues.len()
    }

    /// The backend (tests inspect it).
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Records the features the driver accepted.
    pub fn set_features(&mut self, features: u64) {
        self.features = features;
    }

    /// Negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Replaces guest memory for queues started from now on. A running
    /// queue keeps the mapping it was started with alive (it holds a clone),
    /// so replacing memory never leaves it with dangling pointers; the
    /// vhost-user layer stops and restarts running queues around a change.
    pub fn set_memory(&mut self, mem: GuestMemory) {
        self.mem = Some(mem);
    }

    /// Current guest memory.
    pub fn memory(&self) -> Option<&GuestMemory> {
        self.mem.as_ref()
    }

    /// Sets the eventfd used to interrupt the driver for queue `qi`.
    pub fn set_call(&mut self, qi: usize, call: Option<File>) {
        if let Some(q) = self.queues.get_mut(qi) {
            q.call = call;
        }
    }

    /// Sets the eventfd the driver kicks for queue `qi` (made non-blocking).
    /// Only a sleeping poller uses it: see [`BlkDevice::arm_kicks`].
    pub fn set_kick(&mut self, qi: usize, kick: Option<File>) {
        if let Some(k) = &kick {
            // SAFETY: fcntl on an fd owned by `k`; only the status flags change.
            unsafe {
                let fd = k.as_raw_fd();
                let fl = libc::fcntl(fd, libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                }
            }
        }
        if let Some(q) = self.queues.get_mut(qi) {
            q.kick = kick;
        }
    }

    /// Before the poller sleeps: asks the driver to kick on every running
    /// queue that has a kick fd and appends those fds to `fds`. Returns false
    /// (do not sleep) if a queue already has requests. Queues without a kick
    /// fd are seen only when the sleep ends.
    pub fn arm_kicks(&mut self, fds: &mut Vec<RawFd>) -> bool {
        // No interrupt decision is left for after the sleep.
        self.signal();
        let mut idle = true;
        for q in &mut self.queues {
            let (Some(ring), Some(kick)) = (q.ring.as_mut(), q.kick.as_ref()) else {
                continue;
            };
            if q.broken.is_some() {
                continue;
            }
            // Requests QoS holds back do not keep the poller awake: it
            // sleeps at most its `max_sleep` and refills then.
            if ring.enable_kicks() && !self.qos_throttled {
                idle = false;
            }
            if let Some(l) = &q.log {
                l.mark_rings();
            }
            fds.push(kick.as_raw_fd());
        }
        if !idle {
            self.disarm_kicks();
        }
        idle
    }

    /// After a sleep: back to polling (no kicks), kick counters emptied.
    pub fn disarm_kicks(&mut self) {
        self.disarm_kicks_fired(None);
    }

    /// [`BlkDevice::disarm_kicks`] after a `poll(2)` that reported which
    /// descriptors fired: only those kick counters are read (a read of an
    /// empty one is a wasted system call per sleep). A kick that lands
    /// after the poll stays counted and ends the next sleep at once.
    pub fn disarm_kicks_fired(&mut self, fired: Option<&[RawFd]>) {
        for q in &mut self.queues {
            let (Some(ring), Some(kick)) = (q.ring.as_mut(), q.kick.as_mut()) else {
                continue;
            };
            ring.suppress_kicks();
            // A write to the used ring / device area: logged like every
            // other (see `crate::dirty_log`, "the rule").
            if let Some(l) = &q.log {
                l.mark_rings();
            }
            if fired.is_some_and(|f| !f.contains(&kick.as_raw_fd())) {
                continue;
            }
            let mut b = [0u8; 8];
            // Non-blocking: fails with WouldBlock when there was no kick.
            let _ = kick.read(&mut b);
        }
    }

    /// Sets the eventfd signalled when queue `qi` breaks.
    pub fn set_err(&mut self, qi: usize, err: Option<File>) {
        if let Some(q) = self.queues.get_mut(qi) {
            q.err = err;
        }
    }

    /// Starts (`Some`) or stops (`None`) dirty-page logging on queue `qi`
    /// (live migration, see [`crate::dirty_log`]): from now on every guest
    /// buffer the queue writes, and its ring areas, are marked in the log.
    /// Kept across queue restarts.
    pub fn set_queue_log(&mut self, qi: usize, log: Option<QueueLog>) {
        if let Some(q) = self.queues.get_mut(qi) {
            q.log = log;
        }
    }

    /// Starts polling queue `qi` at the vhost-user ring base `base` (split:
    /// next available index, the used index continues from the used ring;
    /// packed: see [`crate::virtq::PackedQueue::new`]).
    pub fn start_queue(&mut self, qi: usize, cfg: QueueConfig, base: u32) -> Result<(), String> {
        self.start_queue_tracked(qi, cfg, base, None)
    }

    /// As [`start_queue`](Self::start_queue), with vhost-user inflight
    /// tracking (split rings): chains a previous back end left unfinished
    /// are resubmitted first, and the available index continues after them.
    pub fn start_queue_tracked(
        &mut self,
        qi: usize,
        cfg: QueueConfig,
        mut base: u32,
        tracker: Option<InflightQueue>,
    ) -> Result<(), String> {
        let mem = self.mem.clone().ok_or("no guest memory table yet")?;
        let packed = self.features & VIRTIO_F_RING_PACKED != 0;
        let q = self
            .queues
            .get_mut(qi)
            .ok_or_else(|| format!("queue {qi} does not exist"))?;
        q.tracker = if packed { None } else { tracker };
        q.resubmit.clear();
        q.resubmit_pos = 0;
        if let Some(t) = q.tracker.as_mut() {
            let mut used_idx = [0u8; 2];
            let at = cfg
                .used
                .checked_add(2)
                .ok_or("used ring address overflows")?;
            mem.read(at, &mut used_idx).map_err(|e| e.to_string())?;
            q.resubmit.reserve(cfg.size as usize);
            base = t.recover(cfg.size, u16::from_le_bytes(used_idx), &mut q.resubmit)? as u32;
            if !q.resubmit.is_empty() {
                eprintln!(
                    "vfio blk: queue {qi}: resubmitting {} unfinished requests",
                    q.resubmit.len()
                );
            }
        }
        q.unpublished = Vec::with_capacity(cfg.size as usize);
        let mut ring = Virtqueue::new(mem, cfg, self.features, base)
            .map_err(|e| format!("queue {qi}: {e}"))?;
        ring.suppress_kicks();
        // A ring restarted while the VMM migrates (a new memory table):
        // that write is logged too (`crate::dirty_log`, "the rule").
        if q.slots.len() != cfg.size as usize {
            q.slots = (0..cfg.size)
                .map(|_| Slot {
                    busy: false,
                    ring_descs: 1,
                    op: IoOp::Flush,
                    len: 0,
                    status: None,
                    data: Vec::with_capacity(MAX_DATA_IOVS),
                    started: 0,
                })
                .collect();
        }
        if let Some(l) = &q.log {
            l.mark_rings();
        }
        q.ring = Some(ring);
        q.broken = None;
        q.inflight = 0;
        Ok(())
    }

    /// Stops queue `qi` after its in-flight requests finished; returns the
    /// next available index (vhost-user `GET_VRING_BASE`), `None` if it was
    /// not running.
    pub fn stop_queue(&mut self, qi: usize) -> Option<u32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.queues.get(qi)?.inflight > 0 && std::time::Instant::now() < deadline {
            if self.reap() == 0 {
                std::thread::yield_now();
            }
            self.publish();
            self.signal();
        }
        let q = self.queues.get_mut(qi)?;
        if q.inflight > 0 {
            eprintln!(
                "vfio blk {}: queue {qi} stopped with {} requests still in flight",
                self.name, q.inflight
            );
        }
        q.broken = None;
        q.ring.take().map(|r| r.base())
    }

    /// Whether queue `qi` is polled.
    pub fn queue_running(&self, qi: usize) -> bool {
        self.queues
            .get(qi)
            .is_some_and(|q| q.ring.is_some() && q.broken.is_none())
    }

    /// Why queue `qi` was stopped, if the driver broke it.
    pub fn queue_error(&self, qi: usize) -> Option<&str> {
        self.queues.get(qi).and_then(|q| q.broken.as_deref())
    }

    fn break_queue(&mut self, qi: usize, why: String) {
        let name = &self.name;
        let q = &mut self.queues[qi];
        if q.broken.is_none() {
            eprintln!("vfio blk {name}: queue {qi} needs reset: {why}");
            self.stats.queue_resets += 1;
            if let Some(err) = q.err.as_mut() {
                let _ = err.write_all(&1u64.to_ne_bytes());
            }
        }
        q.broken = Some(why);
    }

    /// One poll step over all queues; returns the requests moved (new plus
    /// completed).
    pub fn poll(&mut self) -> usize {
        if self.qos_handle.generation() != self.qos_seen {
            self.apply_qos();
        }
        self.qos_throttled = false;
        if let Some(q) = self.qos.as_mut() {
            // The refill (a clock read) waits for the first request to
            // take: an idle step costs no clock read.
            q.new_step();
        }
        if let Some(bytes) = self.backend.capacity_change() {
            self.capacity_changed(bytes);
        }
        // A step that follows one which counted its completions with a
        // clock read (synchronous: at the step's end; asynchronous: in
        // `reap`) stamps its takes with that read (one read per step
        // while requests keep coming; see `latency`).
        self.stamp_ok = std::mem::take(&mut self.stamp_next);
        self.end_read = None;
        let mut work = 0;
        for qi in 0..self.queues.len() {
            work += self.take_new(qi);
        }
        if !self.sync_backend {
            if work > 0 {
                self.backend.commit();
            }
            work += self.reap();
            // As on the synchronous path, the read that counted the
            // completions stamps the next step's takes if it follows at
            // once: two clock reads per busy step, not three with the
            // poller's. Early by the completions' processing and
            // publication (under a microsecond at a batch of 64).
            if let Some(t) = self.reap_read.take() {
                self.stamp = t;
                self.stamp_next = true;
            }
        }
        self.publish();
        if self.sync_backend {
            // Completed as they were taken (nothing to commit or reap) and
            // now published: their latency ends here, and the read ends
            // the poller's round (`end_read`) with almost nothing after it.
            self.stamp_next = self.end_sync_run();
        }
        if work > 0 {
            self.stats.busy_polls += 1;
        }
        // The interrupt decisions of earlier publications: in the first
        // step that moved nothing, or after SIGNAL_AFTER steps that did.
        // Their fence waits for the used-ring stores to reach the driver's
        // core; a step that does it while requests keep coming waits a
        // cross-core round trip in the middle of the work.
        if self.irq_pending {
            if work == 0 || self.irq_age >= SIGNAL_AFTER {
                self.signal();
            } else {
                self.irq_age += 1;
            }
        }
        work
    }

    /// Takes the limits the control plane set last (buckets start empty).
    fn apply_qos(&mut self) {
        self.qos_seen = self.qos_handle.generation();
        let limits = self.qos_handle.get();
        // The clock's rate first (measured once per process, 20 ms): a
        // start stamp read before it would credit that wait as a stall.
        let rate = clock::ns_per_tick_q32();
        self.qos = Some(Qos::with_clock(&limits, clock::now(), rate)).filter(Qos::limited);
        eprintln!("vfio blk {}: QoS: {limits}", self.name);
    }

    /// The step's start for a queue with requests to take: whether
    /// latency is tracked and the step's stamp (one clock read per step
    /// with latency tracked, shared by every queue it takes from), and
    /// the QoS refill if due (its time is the stamp when there is one;
    /// with QoS alone, the refill reads the clock).
    #[inline(always)]
    fn start_taking(&mut self) -> (bool, u64) {
        let track = self.latency.is_some();
        let stamp = if !track {
            0
        } else if self.stamp_ok {
            self.stamp
        } else {
            self.stamp = clock::now();
            self.stamp_ok = true;
            self.stamp
        };
        if let Some(qos) = self.qos.as_mut() {
            qos.refill_if_due(|| if track { stamp } else { clock::now() });
        }
        (track, stamp)
    }

    /// Takes the next chain of queue `qi` into `self.chain`: a chain a
    /// previous back end left unfinished first, else the ring's next.
    /// Returns its head and whether it came from the resubmit list;
    /// `Ok(None)`: nothing left; `Err`: the queue is broken (done here).
    #[inline(always)]
    fn take_chain(&mut self, qi: usize) -> Result<Option<(u16, bool)>, ()> {
        let q = &mut self.queues[qi];
        let ring = q.ring.as_mut().expect("checked by take_new");
        let from_resubmit = q.resubmit_pos < q.resubmit.len();
        let popped = if from_resubmit {
            let h = q.resubmit[q.resubmit_pos];
            q.resubmit_pos += 1;
            ring.walk_head(h, &mut self.chain).map(|()| Some(h))
        } else {
            ring.pop(&mut self.chain)
        };
        match popped {
            Ok(Some(h)) => Ok(Some((h, from_resubmit))),
            Ok(None) => Ok(None),
            Err(e) => {
                self.break_queue(qi, e.to_string());
                Err(())
            }
        }
    }

    /// Answers a request the device serves itself (`verdict`: `Complete`,
    /// an error or unsupported request, or `GetId`) on queue `qi`, chain
    /// `head` of `ring_descs` descriptors, parsed into its slot.
    #[inline(never)]
    fn answer(&mut self, qi: usize, head: u16, ring_descs: u16, verdict: Verdict) {
        let q = &mut self.queues[qi];
        let ring = q.ring.as_mut().expect("checked by take_new");
        let slot = &q.slots[head as usize];
        let used_len = match verdict {
            Verdict::Complete { status, used_len } => {
                if status != VIRTIO_BLK_S_OK {
                    self.stats.errors += 1;
                }
                if let Some(s) = slot.status {
                    s.write_byte(0, status);
                    if let Some(l) = &q.log {
                        l.mark_written(&[s]);
                    }
                }
                used_len
            }
            Verdict::GetId => {
                let n = slot.data.iter().map(IoVec::len).sum::<usize>();
                scatter(&slot.data, &self.cfg.serial[..n]);
                if let Some(s) = slot.status {
                    s.write_byte(0, VIRTIO_BLK_S_OK);
                }
                if let Some(l) = &q.log {
                    l.mark_written(&slot.data);
                    l.mark_written(slot.status.as_slice());
                }
                self.stats.get_ids += 1;
                n as u32 + 1
            }
            _ => unreachable!("answer: a verdict the device serves itself"),
        };
        used(
            ring,
            &mut q.tracker,
            &mut q.unpublished,
            &mut q.dirty,
            head,
            used_len,
            ring_descs,
        );
    }

    /// Takes up to [`BATCH`] requests from queue `qi` (as many as the
    /// backend has room for and QoS admits): each chain is taken
    /// ([`Self::take_chain`]), parsed, admitted, then answered by the
    /// device ([`Self::answer`]), executed (synchronous backend) or
    /// submitted. Returns the requests moved (taken, plus completed for
    /// those executed now).
    fn take_new(&mut self, qi: usize) -> usize {
        let q = &mut self.queues[qi];
        let Some(ring) = q.ring.as_mut() else {
            return 0;
        };
        // Nothing to take: no virtual call to the backend either.
        if q.broken.is_some() || (q.resubmit_pos >= q.resubmit.len() && !ring.may_pop()) {
            return 0;
        }
        ring.prefetch_batch(BATCH as u16);
        let (track, stamp) = self.start_taking();
        // Room in the backend, asked once per batch (a virtual call) and
        // counted down per request submitted. An estimate either way: a
        // backend that took more than one slot per request refuses with
        // `Busy` (the chain goes back to the ring), one that completed some
        // meanwhile gets them at the next step.
        let mut room = if self.sync_backend {
            usize::MAX
        } else {
            self.max_inflight.saturating_sub(self.backend.inflight())
        };
        let mut taken = 0;
        // Requests of a synchronous backend completed in this batch (they
        // count as moved twice: taken and completed, as through `reap`).
        let mut done_now = 0;
        while taken < BATCH && room > 0 {
            let (head, from_resubmit) = match self.take_chain(qi) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(()) => return taken + done_now,
            };
            let q = &mut self.queues[qi];
            let ring = q.ring.as_mut().expect("checked above");
            let ring_descs = self.chain.ring_descs;
            taken += 1;
            let slot = &mut q.slots[head as usize];
            if slot.busy {
                self.break_queue(
                    qi,
                    format!("head {head} made available again while in flight"),
                );
                return taken + done_now;
            }
            let verdict = parse(&self.chain, &self.cfg, &mut slot.data, &mut slot.status);
            // QoS: over the limit, the request goes back to the ring and
            // waits there (never failed); the queue is done for this step.
            if let (Verdict::Backend { op, len, .. }, Some(qos)) = (verdict, self.qos.as_mut()) {
                if !qos.admit(op, len) {
                    if from_resubmit {
                        q.resubmit_pos -= 1;
                    } else {
                        ring.unpop();
                    }
                    self.qos_throttled = true;
                    return taken - 1 + done_now;
                }
            }
            if let Some(t) = q.tracker.as_mut() {
                t.taken(head);
            }
            match verdict {
                Verdict::Fatal(why) => {
                    self.break_queue(qi, why.to_string());
                    return taken + done_now;
                }
                Verdict::Complete { .. } | Verdict::GetId => {
                    self.answer(qi, head, ring_descs, verdict);
                }
                Verdict::Backend { op, offset, len } if self.sync_backend => {
                    let req = IoRequest {
                        id: 0,
                        op,
                        offset,
                        len,
                        iovs: &slot.data,
                    };
                    let st = self.backend.execute(&req);
                    slot.op = op;
                    slot.len = len;
                    let used_len = write_back(&mut self.stats, q.log.as_ref(), slot, st);
                    used(
                        ring,
                        &mut q.tracker,
                        &mut q.unpublished,
                        &mut q.dirty,
                        head,
                        used_len,
                        ring_descs,
                    );
                    done_now += 1;
                    if track {
                        self.sync_done[latency::op_index(op)] += 1;
                    }
                }
                Verdict::Backend { op, offset, len } => {
                    let id = (qi as u64) << 16 | head as u64;
                    let req = IoRequest {
                        id,
                        op,
                        offset,
                        len,
                        iovs: &slot.data,
                    };
                    if self.backend.submit(&req).is_err() {
                        // Busy after all: hand the chain back to the ring
                        // (and its QoS tokens back to the buckets).
                        if let Some(qos) = self.qos.as_mut() {
                            qos.refund(op, len);
                        }
                        if from_resubmit {
                            q.resubmit_pos -= 1;
                        } else {
                            ring.unpop();
                        }
                        return taken - 1 + done_now;
                    }
                    if track {
                        slot.started = stamp;
                    }
                    slot.busy = true;
                    slot.ring_descs = ring_descs;
                    slot.op = op;
                    slot.len = len;
                    q.inflight += 1;
                    room -= 1;
                }
            }
        }
        taken + done_now
    }

    /// Shutdown: completes the requests in flight (to the guest, taking no
    /// new ones from the rings), then has the backend commit what it holds
    /// (a write-back cache's dirty blocks, a file's page cache) with a
    /// flush of the device's own, and waits for it. The caller holds the
    /// device, so no poller runs it meanwhile; whatever the backend needs to
    /// make progress (a network path) must keep running. Returns whether a
    /// flush was sent (`false`: the backend has none to do).
    pub fn drain_and_flush(&mut self, timeout: Duration) -> Result<bool, String> {
        /// The flush's tag: `reap` ignores it (no queue has this index).
        const FLUSH_ID: u64 = u64::MAX;
        let deadline = Instant::now() + timeout;
        let name = self.name.clone();
        let late = |what: &str| {
            format!(
                "{name}: {what} not done within {} s at shutdown",
                timeout.as_secs()
            )
        };
        while self.backend.inflight() > 0 {
            if self.reap() == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
            self.publish();
            self.signal();
            if Instant::now() > deadline {
                return Err(late("requests in flight"));
            }
        }
        if !self.backend.info().flush {
            return Ok(false);
        }
        let flush = IoRequest {
            id: FLUSH_ID,
            op: IoOp::Flush,
            offset: 0,
            len: 0,
            iovs: &[],
        };
        while self.backend.submit(&flush).is_err() {
            self.backend.poll(&mut self.completions);
            self.completions.clear();
            if Instant::now() > deadline {
                return Err(late("the final flush (refused)"));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        self.backend.commit();
        loop {
            self.completions.clear();
            self.backend.poll(&mut self.completions);
            if let Some(c) = self.completions.iter().find(|c| c.id == FLUSH_ID) {
                return match c.status {
                    IoStatus::Ok => Ok(true),
                    s => Err(format!("{}: the final flush failed ({s:?})", self.name)),
                };
            }
            if Instant::now() > deadline {
                return Err(late("the final flush"));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn reap(&mut self) -> usize {
        self.completions.clear();
        let n = self.backend.poll(&mut self.completions);
        let track = n > 0 && self.latency.is_some();
        let now = if track { clock::now() } else { 0 };
        self.reap_read = track.then_some(now);
        // Latency: the current run of completions sharing a stamp (see
        // `latency`), counted per operation when it ends.
        let mut run = LatencyRun::default();
        for i in 0..n {
            let c = self.completions[i];
            let qi = (c.id >> 16) as usize;
            let head = (c.id & 0xffff) as usize;
            let Some(q) = self.queues.get_mut(qi) else {
                continue;
            };
            let Some(slot) = q.slots.get_mut(head).filter(|s| s.busy) else {
                continue;
            };
            slot.busy = false;
            q.inflight -= 1;
            if let (true, Some(l)) = (track, self.latency.as_deref_mut()) {
                run.add(slot.op, slot.started, l, now);
            }
            let used_len = write_back(&mut self.stats, q.log.as_ref(), slot, c.status);
            if let Some(ring) = q.ring.as_mut() {
                let h = head as u16;
                used(
                    ring,
                    &mut q.tracker,
                    &mut q.unpublished,
                    &mut q.dirty,
                    h,
                    used_len,
                    slot.ring_descs,
                );
            }
        }
        if let (true, Some(l)) = (track, self.latency.as_deref_mut()) {
            run.end(l, now);
        }
        n
    }

    /// Counts the latency of the step's synchronous completions (see
    /// `sync_done`), if any: one clock read, one histogram add per
    /// operation completed; returns whether it read the clock (the read is
    /// kept as the next step's stamp).
    #[inline]
    fn end_sync_run(&mut self) -> bool {
        let Some(l) = self.latency.as_deref_mut() else {
            return false;
        };
        if self.sync_done == [0; 4] {
            return false;
        }
        let stamp = self.stamp;
        self.stamp = clock::now();
        self.end_read = Some(self.stamp);
        let ticks = self.stamp.saturating_sub(stamp);
        for (i, k) in self.sync_done.iter_mut().enumerate() {
            if *k != 0 {
                l.record_index(i, ticks, std::mem::take(k));
            }
        }
        true
    }

    /// Publishes every queue that has new used elements: stores their used
    /// indexes and notes which drivers must be considered for an
    /// interrupt; [`signal`](Self::signal) decides and sends those, at the
    /// end of the first later poll step that moves nothing, or of the
    /// [`SIGNAL_AFTER`]th that does (or right after, off the poll path).
    /// §2.7.10 / §2.8.10: the suppression field must be read after the
    /// index is visible, or an interrupt is lost, hence a full fence
    /// between the two; that fence waits for the used-ring lines to reach
    /// this core from the driver's, a cross-core round trip. Deferred to
    /// a later step, the wait overlaps the driver's own reaction instead
    /// of ending the step that did the work (SPDK's vhost target defers it
    /// by one poll: its used-ring writes end one poll, the barrier and the
    /// interrupt check open the next), and while requests keep coming the
    /// steps that serve them do not wait for it; the interrupt leaves one
    /// idle poll round (tens of nanoseconds) later, or at most
    /// [`SIGNAL_AFTER`] busy ones. All the used indexes are stored
    /// before the one fence: a fence per queue would serialize one round
    /// trip per queue.
    fn publish(&mut self) {
        let mut check = false;
        for q in &mut self.queues {
            if !q.dirty {
                continue;
            }
            q.dirty = false;
            let Some(ring) = q.ring.as_mut() else {
                continue;
            };
            ring.suppress_kicks();
            q.irq_check = ring.publish_store();
            check |= q.irq_check;
            // After the stores above, whether they changed anything or
            // not: see `crate::dirty_log`, "the rule" (checked by
            // `vhost_user::tests::shadow`).
            if let Some(l) = &q.log {
                l.mark_rings();
            }
            if let Some(t) = q.tracker.as_mut() {
                for &h in &q.unpublished {
                    t.published(h);
                }
            }
            q.unpublished.clear();
        }
        self.irq_pending |= check;
    }

    /// The second half of [`publish`](Self::publish): one fence, then an
    /// interrupt to every published queue whose driver wants one. Called at
    /// the end of a poll step (see `publish`), before the poller sleeps
    /// ([`arm_kicks`](Self::arm_kicks)), and after the publications of the
    /// control paths (queue stop, shutdown drain).
    fn signal(&mut self) {
        if !std::mem::take(&mut self.irq_pending) {
            return;
        }
        self.irq_age = 0;
        full_fence();
        for q in &mut self.queues {
            if !std::mem::take(&mut q.irq_check) {
                continue;
            }
            let Some(ring) = q.ring.as_mut() else {
                continue;
            };
            if ring.interrupt_needed() {
                if let Some(call) = q.call.as_mut() {
                    let _ = call.write_all(&1u64.to_ne_bytes());
                    self.stats.interrupts += 1;
                }
            }
        }
    }
}

/// Adds the used element (`head`, `len`) to `ring`, marks the queue for
/// the step's publication (`dirty`) and, with inflight tracking, marks the
/// head used and keeps it for that publication. The queue's fields one by
/// one, not the queue: the callers hold its ring already (a method on the
/// queue looks it up again, an `Option` check per request: +2 callgrind
/// instructions per read on the synchronous path).
#[inline]
fn used(
    ring: &mut Virtqueue,
    tracker: &mut Option<InflightQueue>,
    unpublished: &mut Vec<u16>,
    dirty: &mut bool,
    head: u16,
    len: u32,
    ring_descs: u16,
) {
    ring.add_used(head, len, ring_descs);
    if let Some(t) = tracker.as_mut() {
        t.used(head, ring.next_used());
        unpublished.push(head);
    }
    *dirty = true;
}

/// A run of completions sharing their start stamp (taken in one step),
/// counted per operation and recorded at once when the run ends (see
/// `latency`): per completion one compare and one add.
#[derive(Debug, Clone, Copy, Default)]
struct LatencyRun {
    stamp: u64,
    /// Completions by [`latency::op_index`].
    counts: [u64; 4],
}

impl LatencyRun {
    /// One more completion of `op` started at `stamp`: a different stamp
    /// ends the current run, recorded into `latency` at `now`.
    #[inline]
    fn add(&mut self, op: IoOp, stamp: u64, latency: &mut Latency, now: u64) {
        if stamp != self.stamp {
            self.end(latency, now);
            self.stamp = stamp;
        }
        self.counts[latency::op_index(op)] += 1;
    }

    /// Records the run (one histogram add per operation in it) and
    /// empties it.
    #[inline]
    fn end(&mut self, latency: &mut Latency, now: u64) {
        let ticks = now.saturating_sub(self.stamp);
        for (i, k) in self.counts.iter_mut().enumerate() {
            if *k != 0 {
                latency.record_index(i, ticks, std::mem::take(k));
            }
        }
    }
}

/// Writes one finished request back to the driver's buffers: its status
/// byte (§5.2.6: `VIRTIO_BLK_S_OK`, `_IOERR` or `_UNSUPP`), the counters,
/// and the dirty-log marks of what the device wrote while the VMM
/// migrates. Returns the used length for the used element: the status
/// byte plus the data a successful read wrote (§2.7.8: "the number of
/// bytes written into the buffer"). The caller adds the used element.
#[inline]
fn write_back(stats: &mut BlkStats, log: Option<&QueueLog>, slot: &Slot, status: IoStatus) -> u32 {
    let (byte, data_len) = match status {
        IoStatus::Ok => (
            VIRTIO_BLK_S_OK,
            if slot.op == IoOp::Read {
                slot.len as u32
            } else {
                0
            },
        ),
        IoStatus::IoErr => (VIRTIO_BLK_S_IOERR, 0),
        IoStatus::Unsupported => (VIRTIO_BLK_S_UNSUPP, 0),
    };
    if byte == VIRTIO_BLK_S_OK {
        match slot.op {
            IoOp::Read => {
                stats.reads += 1;
                stats.bytes_read += slot.len;
            }
            IoOp::Write => {
                stats.writes += 1;
                stats.bytes_written += slot.len;
            }
            IoOp::Flush => stats.flushes += 1,
            IoOp::Discard | IoOp::WriteZeroes { .. } => stats.discards += 1,
        }
    } else {
        stats.errors += 1;
    }
    if let Some(s) = slot.status {
        s.write_byte(0, byte);
    }
    if let Some(l) = log {
        // A read's data (even a failed one's: part may be written).
        if slot.op == IoOp::Read {
            l.mark_written(&slot.data);
        }
        l.mark_written(slot.status.as_slice());
    }
    data_len + 1
}
