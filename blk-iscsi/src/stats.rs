//! [`SessionStats`]: the state and recovery counters of one iSCSI device, in
//! plain atomics the poller thread stores to and anyone (a metrics scrape,
//! a test) reads without a lock; [`registry`] lists the live ones.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The session's state, as stored in [`SessionStats::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionState {
    /// Full feature phase: I/O flows.
    LoggedIn = 0,
    /// The connection was lost; reconnecting (on the same or the next
    /// portal) within the replacement timeout: I/O waits.
    Recovering = 1,
    /// Past the replacement timeout without a connection: I/O fails at
    /// once (`VIRTIO_BLK_S_IOERR`); reconnecting goes on.
    Failed = 2,
}

impl SessionState {
    /// Decodes [`SessionStats::state`].
    pub fn from_u8(v: u8) -> SessionState {
        match v {
            0 => SessionState::LoggedIn,
            1 => SessionState::Recovering,
            _ => SessionState::Failed,
        }
    }

    /// Lower-case name (`logged_in`, `recovering`, `failed`).
    pub fn name(self) -> &'static str {
        match self {
            SessionState::LoggedIn => "logged_in",
            SessionState::Recovering => "recovering",
            SessionState::Failed => "failed",
        }
    }
}

/// Counters of one device's iSCSI session. All monotonic except `state`,
/// `portal_index` and `capacity_bytes`.
#[derive(Debug, Default)]
pub struct SessionStats {
    /// The device (its URL, secrets hidden).
    pub name: String,
    /// A [`SessionState`] as u8.
    pub state: AtomicU8,
    /// Index of the portal in use (or last tried) in the device's list.
    pub portal_index: AtomicU32,
    /// Connections lost (TCP reset or close, keepalive or login timeout,
    /// protocol error).
    pub connection_losses: AtomicU64,
    /// Successful logins after a loss (session reinstatements).
    pub reconnects: AtomicU64,
    /// Logins that moved to another portal than the one that failed.
    pub portal_switches: AtomicU64,
    /// Login redirects followed (RFC 7143 section 11.13.5).
    pub redirects: AtomicU64,
    /// Commands reissued on a new connection after a loss (ERL 0).
    pub failed_over_commands: AtomicU64,
    /// Commands failed because no connection came back within the
    /// replacement timeout, or submitted while the session was failed.
    pub timed_out_commands: AtomicU64,
    /// The LU's capacity in bytes (READ CAPACITY).
    pub capacity_bytes: AtomicU64,
    /// Capacity changes seen (UNIT ATTENTION 2Ah/09h, then READ CAPACITY).
    pub capacity_changes: AtomicU64,
}

impl SessionStats {
    /// The current state.
    pub fn state(&self) -> SessionState {
        SessionState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, s: SessionState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

static REGISTRY: Mutex<Vec<Weak<SessionStats>>> = Mutex::new(Vec::new());

/// Registers a device's stats (done by the backend when it is created).
pub(crate) fn register(s: &Arc<SessionStats>) {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|w| w.strong_count() > 0);
    r.push(Arc::downgrade(s));
}

/// The stats of every iSCSI device alive in this process, in creation
/// order (a device's entry goes when its backend is dropped).
pub fn registry() -> Vec<Arc<SessionStats>> {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.iter().filter_map(Weak::upgrade).collect()
}
