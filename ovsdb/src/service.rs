//! The reconciler's thread: connect, monitor, reconcile on every change,
//! write status back, refresh statistics periodically, reconnect with backoff.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{Client, Notification};
use crate::datapath::Datapath;
use crate::model::Model;
use crate::reconcile::Reconciler;
use crate::target::Target;
use crate::Error;

/// Settings of the reconciler thread.
#[derive(Debug, Clone)]
pub struct Options {
    /// Database name (default `Open_vSwitch`).
    pub db: String,
    /// Bounds a connect and every request (default 10 s).
    pub timeout: Duration,
    /// How often `statistics` and `link_state` are refreshed (default 5 s, as
    /// `ovs-vswitchd`). The `Open_vSwitch` row's other_config:stats-update-interval
    /// (milliseconds, at least 5000 as in OVS) overrides it when set.
    pub stats_interval: Duration,
    /// After this long without hearing from the server, send it an `echo`;
    /// no answer within `timeout` means the connection is dead and is
    /// re-established (default 5 s, as ovsdb-server probes its clients).
    pub probe_interval: Duration,
    /// First reconnect delay (default 100 ms); doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest reconnect delay (default 4 s).
    pub backoff_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            db: "Open_vSwitch".into(),
            timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(5),
            probe_interval: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(4),
        }
    }
}

/// Counters describing the thread's progress (for tests and status output).
#[derive(Debug, Default)]
struct Status {
    connected: AtomicBool,
    connections: AtomicU64,
    passes: AtomicU64,
}

/// The running reconciler. Dropping it stops it too.
pub struct Handle {
    stop: Arc<AtomicBool>,
    status: Arc<Status>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Stops the thread and waits for it (at most about one request timeout).
    /// What was created in the datapath stays.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether a monitor is established right now.
    pub fn is_connected(&self) -> bool {
        self.status.connected.load(Ordering::Relaxed)
    }

    /// How many times a monitor has been established (1 after the first connect).
    pub fn connections(&self) -> u64 {
        self.status.connections.load(Ordering::Relaxed)
    }

    /// How many reconcile passes have run.
    pub fn passes(&self) -> u64 {
        self.status.passes.load(Ordering::Relaxed)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the reconciler on its own thread against the OVSDB server at
/// `target` (`unix:PATH` or `tcp:IP:PORT`). A bad target is an error at once;
/// an unreachable server is not (the thread keeps retrying).
pub fn spawn(target: &str, dp: Arc<dyn Datapath>, opts: Options) -> Result<Handle, Error> {
    let target = Target::parse(target)?;
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Status::default());
    let thread = {
        let stop = stop.clone();
        let status = status.clone();
        thread::Builder::new()
            .name("ovsdb".into())
            .spawn(move || run(target, dp, opts, &stop, &status))?
    };
    Ok(Handle {
        stop,
        status,
        thread: Some(thread),
    })
}

/// `now + d`, saturating far in the future instead of overflowing.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365))
}

/// Sleeps `d` in small steps; false if asked to stop meanwhile.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let end = later(d);
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::Relaxed)
}

fn run(target: Target, dp: Arc<dyn Datapath>, opts: Options, stop: &AtomicBool, status: &Status) {
    let mut rec = Reconciler::new(dp);
    let mut backoff = opts.backoff_min;
    let mut last_error = String::new();
    while !stop.load(Ordering::Relaxed) {
        let err = match Client::connect_to(&target, opts.timeout) {
            Ok((client, rx)) => {
                let r = session(&client, &rx, &mut rec, &opts, stop, status);
                status.connected.store(false, Ordering::Relaxed);
                match r {
                    // A session that got going resets the backoff.
                    Ok(()) => {
                        backoff = opts.backoff_min;
                        last_error.clear();
                        client
                            .close_reason()
                            .unwrap_or_else(|| "connection closed".into())
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if err != last_error {
            eprintln!("ovsdb: {target}: {err}; reconnecting");
            last_error = err;
        }
        if !sleep_unless_stopped(backoff, stop) {
            break;
        }
        backoff = backoff.saturating_mul(2).min(opts.backoff_max);
    }
}

/// Runs one connection: monitor, reconcile, keep up. Returns Ok when the
/// connection was established and later lost (or stop was asked), Err when
/// it failed before the monitor was in place.
fn session(
    client: &Client,
    rx: &Receiver<Notification>,
    rec: &mut Reconciler,
    opts: &Options,
    stop: &AtomicBool,
    status: &Status,
) -> Result<(), Error> {
    let monitor_id = json!("vswitch");
    let initial = client.monitor(&opts.db, monitor_id.clone(), Model::monitor_requests())?;
    let mut model = Model::default();
    if let Err(e) = model.apply(&initial) {
        eprintln!("ovsdb: ignoring bad rows: {e}");
    }
    let n = status.connections.fetch_add(1, Ordering::Relaxed) + 1;
    status.connected.store(true, Ordering::Relaxed);
    if n > 1 {
        eprintln!("ovsdb: reconnected to {}", opts.db);
    }

    let mut dirty = true;
    let mut next_stats = later(stats_interval(&model, opts));
    let mut retry_at: Option<Instant> = None;
    let mut heard = Instant::now();
    let mut last_wb_error: Option<String> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if heard.elapsed() >= opts.probe_interval {
            if let Err(e) = client.echo() {
                eprintln!("ovsdb: server did not answer echo: {e}");
                return Ok(());
            }
            heard = Instant::now();
        }
        if dirty || retry_at.is_some_and(|t| Instant::now() >= t) {
            dirty = false;
            retry_at = None;
            let d = rec.apply(&model);
            status.passes.fetch_add(1, Ordering::Relaxed);
            let ops = rec.write_back(&model, &d);
            let r = transact(client, opts, ops);
            if r.is_ok() {
                last_wb_error = None;
            }
            if let Err(e) = r {
                if client.is_closed() {
                    return Ok(());
                }
                let msg = e.to_string();
                if last_wb_error.as_ref() != Some(&msg) {
                    eprintln!("ovsdb: status write-back failed: {msg}; retrying every second");
                    last_wb_error = Some(msg);
                }
                retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        let now = Instant::now();
        if now >= next_stats {
            next_stats = later(stats_interval(&model, opts));
            let d = crate::desired::Desired::from_model(&model);
            if let Err(e) = transact(client, opts, rec.write_back(&model, &d)) {
                if client.is_closed() {
                    return Ok(());
                }
                eprintln!("ovsdb: statistics write-back failed: {e}");
            }
        }
        let wait = next_stats
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(n) => {
                heard = Instant::now();
                dirty |= handle(&mut model, &monitor_id, n);
                // Take everything already queued before reconciling once.
                while let Ok(n) = rx.try_recv() {
                    dirty |= handle(&mut model, &monitor_id, n);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

fn transact(client: &Client, opts: &Options, ops: Vec<Value>) -> Result<(), Error> {
    if ops.is_empty() {
        return Ok(());
    }
    client.transact(&opts.db, ops).map(|_| ())
}

fn stats_interval(model: &Model, opts: &Options) -> Duration {
    model
        .root()
        .and_then(|(_, r)| r.other_config.get("stats-update-interval"))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.max(5000)))
        .unwrap_or(opts.stats_interval)
}

/// Applies an `update` notification (§4.1.6: params `[<json-value>,
/// <table-updates>]`); true if the model may have changed.
fn handle(model: &mut Model, monitor_id: &Value, n: Notification) -> bool {
    if n.method != "update" {
        return false;
    }
    match n.params.as_array().map(Vec::as_slice) {
        Some([id, updates]) if id == monitor_id => {
            if let Err(e) = model.apply(updates) {
                eprintln!("ovsdb: ignoring bad rows: {e}");
            }
            true
        }
        _ => {
            eprintln!("ovsdb: ignoring malformed update: {}", n.params);
            false
        }
    }
}
