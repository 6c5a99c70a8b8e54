//! The poller: one thread that serves every queue of every device.
//!
//! Each round it takes each device's lock without waiting (a device being
//! reconfigured by its vhost-user connection is skipped for that round) and
//! runs one [`BlkDevice::poll`] batch. No kicks are read: the queues ask the
//! driver not to send them, and the loop spins. In [`PollMode::Adaptive`] a
//! poller that found no work for a while sleeps between rounds, trading the
//! first request's latency after an idle period for a free core.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::blk::BlkDevice;

/// A device shared between the poller and its control connection.
pub type SharedDevice = Arc<DeviceCell>;

/// A device behind a lock that the control plane cannot be starved of: a
/// control thread announces itself before it blocks on the lock, and the
/// poller skips the device while one is waiting (a plain mutex would let the
/// spinning poller win every race).
#[derive(Debug)]
pub struct DeviceCell {
    dev: Mutex<BlkDevice>,
    control_waiting: AtomicU32,
}

impl DeviceCell {
    /// Wraps a device.
    pub fn new(dev: BlkDevice) -> Arc<Self> {
        Arc::new(DeviceCell {
            dev: Mutex::new(dev),
            control_waiting: AtomicU32::new(0),
        })
    }

    /// Locks the device for the control plane (blocks until the poller
    /// finished its current batch).
    pub fn lock(&self) -> MutexGuard<'_, BlkDevice> {
        self.control_waiting.fetch_add(1, Ordering::AcqRel);
        // A panic while holding the lock leaves a device that is still
        // memory-safe to use; keep serving rather than cascading the panic.
        let g = self.dev.lock().unwrap_or_else(|e| e.into_inner());
        self.control_waiting.fetch_sub(1, Ordering::AcqRel);
        g
    }

    /// The poller's lock: never waits, and yields to a waiting control thread.
    fn try_poll_lock(&self) -> Option<MutexGuard<'_, BlkDevice>> {
        if self.control_waiting.load(Ordering::Acquire) > 0 {
            return None;
        }
        self.dev.try_lock().ok()
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
}

/// The set of devices one poller thread serves.
#[derive(Debug, Default)]
pub struct PollGroup {
    devices: Mutex<Vec<SharedDevice>>,
    generation: AtomicU64,
    stop: AtomicBool,
    rounds: AtomicU64,
}

impl PollGroup {
    /// An empty group.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds a device.
    pub fn add(&self, dev: SharedDevice) {
        self.devices.lock().expect("poll group lock").push(dev);
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

    /// Asks the poller thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Poll rounds so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
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
            seen: u64::MAX,
            rounds: 0,
        }
    }

    fn run(self: &Arc<Self>, mode: PollMode) {
        let mut p = self.poller();
        let mut idle = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let work = p.poll();
            if work > 0 {
                idle = 0;
                continue;
            }
            idle = idle.saturating_add(1);
            match mode {
                PollMode::Busy => std::hint::spin_loop(),
                PollMode::Adaptive { spin_rounds, sleep } => {
                    if idle > spin_rounds {
                        std::thread::sleep(sleep);
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }
}

/// One thread's round-by-round view of a [`PollGroup`] (see
/// [`PollGroup::poller`]).
#[derive(Debug)]
pub struct GroupPoller {
    group: Arc<PollGroup>,
    local: Vec<SharedDevice>,
    seen: u64,
    rounds: u64,
}

impl GroupPoller {
    /// One round: one [`BlkDevice::poll`] batch per device whose lock is
    /// free. Returns the work done (0: idle).
    pub fn poll(&mut self) -> usize {
        let g = self.group.generation.load(Ordering::Acquire);
        if g != self.seen {
            self.local = self.group.devices.lock().expect("poll group lock").clone();
            self.seen = g;
        }
        let mut work = 0;
        for d in &self.local {
            if let Some(mut dev) = d.try_poll_lock() {
                work += dev.poll();
            }
        }
        self.rounds += 1;
        if self.rounds & 0xfff == 0 {
            self.group.rounds.store(self.rounds, Ordering::Relaxed);
        }
        work
    }
}
