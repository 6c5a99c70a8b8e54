//! The storage path inside `vswitch run`: vhost-user-blk devices whose
//! queues the switch's own core polls between bursts, and the host TCP/IP
//! stack that carries their iSCSI sessions through the switch.
//!
//! ```text
//!  VM virtio-blk ─ vhost-user ─► BlkDevice ─ cache ─► IscsiBackend ─► UserTcp (smoltcp)
//!                                  ▲ polled by worker 0's hook            │ PortDevice
//!                                  │ (GroupPoller), between bursts        ▼
//!  NIC / af_packet ◄─ tx ─ switch (flow table) ◄─ rx ─ internal port ◄═ rte_ring ═ stack port
//!                  ─ rx ─►                      ─ tx ─►               ═ rte_ring ═►
//! ```
//!
//! The internal port is OVS's "internal port": two ethdev ports of DPDK's
//! ring PMD over two crossed `rte_ring`s. The switch owns one end as an
//! ordinary port (flow table, learning, counters); the host stack's smoltcp
//! device uses the other. iSCSI frames therefore cross the flow table like
//! any VM's frames and leave by whatever port the rules (or NORMAL) choose.
//!
//! One thread does all the polling: the switch worker on the first
//! forwarding lcore calls [`vfio::poller::GroupPoller::poll`] once per loop
//! iteration, which polls every device's virtqueues and backend (the iSCSI
//! link polls smoltcp, which bursts on the stack port). A storage thread
//! only sets devices up (login over the running switch), runs the
//! vhost-user control connections, and publishes counters; it sleeps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpdk::{MbufRing, Port};
use serde::Serialize;
use usertcp::device::FrameBytes;
use vfio::blk::BlkStats;
use vfio::poller::{PollGroup, Waiter};

use super::config::{BlkSpec, CorePoll, HostStack};
use super::worker::PollHook;
use crate::storage::cli::{self, CliDevice};
use crate::storage::registry::TransportFn;
use crate::storage::rpc as srpc;
use crate::storage::{stats, Storage};

/// The hook that lets the switch's first worker serve the storage devices
/// (and, through their backends, the host stack) between bursts, waiting
/// as `mode` says when the switch and the devices are both idle. Once
/// `stop` is set it no longer blocks: the shutdown's last write-backs then
/// cross the switch without waiting for a wake-up.
pub fn poll_hook(group: &Arc<PollGroup>, mode: CorePoll, stop: Arc<AtomicBool>) -> PollHook {
    let mut poller = group.poller();
    match mode {
        CorePoll::Auto | CorePoll::Busy => Box::new(move |_| poller.poll()),
        CorePoll::Adaptive(sleep) => {
            let mut idle = 0u32;
            Box::new(move |round| {
                let work = poller.poll();
                if work > 0 || round.switch_busy {
                    idle = 0;
                } else {
                    idle = idle.saturating_add(1);
                    if idle > 20_000 {
                        std::thread::sleep(sleep);
                    }
                }
                work
            })
        }
        CorePoll::Wait(spin) => {
            // 1 ms: the host stack's timers (retransmission, ARP) run at
            // least this often while the core blocks.
            // Batch wake-ups: an af_packet port wakes the core once per
            // frame, and the target's answer is several frames.
            let mut waiter = Waiter::new(spin, Duration::from_millis(1)).with_batch_wakeups();
            Box::new(move |round| {
                let work = waiter.poll(&mut poller);
                if round.switch_busy {
                    // Frames moved: answers for the stack, or frames it
                    // sent still crossing the switch. Poll before blocking.
                    waiter.busy();
                } else if work == 0 {
                    match round.wake_fds {
                        Some(fds) if !stop.load(Ordering::Relaxed) => waiter.idle(&mut poller, fds),
                        // A port that cannot wake the core: keep spinning.
                        _ => std::hint::spin_loop(),
                    }
                }
                work
            })
        }
    }
}

/// Requests in flight per device.
const MAX_INFLIGHT: usize = 1024;

/// Name of the switch's end of the internal link (what `ports show` lists).
pub const INTERNAL_PORT: &str = "net_ring_host0";
/// Name of the host stack's end.
const STACK_PORT: &str = "net_ring_stk0";

/// Makes the internal link: (the switch's port, the host stack's port).
/// The switch port gets one tx queue per forwarding worker, all feeding the
/// one multi-producer ring the stack port receives from.
pub fn internal_link(workers: usize) -> Result<(Port, Port), String> {
    let to_host = Arc::new(
        MbufRing::new("vsw_to_host0", 4096).map_err(|e| format!("internal port ring: {e}"))?,
    );
    let from_host = Arc::new(
        MbufRing::new("vsw_from_host0", 4096).map_err(|e| format!("internal port ring: {e}"))?,
    );
    let sw = Port::from_rings(
        INTERNAL_PORT,
        std::slice::from_ref(&from_host),
        &vec![Arc::clone(&to_host); workers.max(1)],
    )
    .map_err(|e| format!("internal port: {e}"))?;
    let stack = Port::from_rings(STACK_PORT, &[to_host], &[from_host])
        .map_err(|e| format!("internal port (stack end): {e}"))?;
    Ok((sw, stack))
}

/// A device's counters at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct BlkReport {
    /// Device name (the socket's file name).
    pub device: String,
    /// Backend spec.
    pub backend: String,
    /// Read requests completed.
    pub reads: u64,
    /// Write requests completed.
    pub writes: u64,
    /// Flushes completed.
    pub flushes: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Requests completed with an error.
    pub errors: u64,
    /// Cache hits (4 KiB blocks), if cached.
    pub cache_hits: Option<u64>,
    /// Cache misses, if cached.
    pub cache_misses: Option<u64>,
}

/// What the storage thread needs.
pub struct StorageSetup {
    /// Devices to serve.
    pub blk: Vec<BlkSpec>,
    /// The host stack, its end of the internal link, and the byte counters
    /// the switch reports for the internal port.
    pub host: Option<(HostStack, (Port, Arc<FrameBytes>))>,
    /// The switch's packet pool: the host stack builds its frames there, so
    /// frames it sent that are still queued in the switch (or its rings)
    /// never outlive their pool.
    pub pool: Arc<dpdk::Mempool>,
    /// The group the switch worker polls.
    pub group: Arc<PollGroup>,
    /// The run's stop flag (set on error too).
    pub stop: Arc<AtomicBool>,
    /// Raised when the storage path is shut down (or failed): the switch
    /// workers keep polling until then, so requests in flight at `stop`
    /// still complete through the switch.
    pub done: Arc<AtomicBool>,
    /// Stats file to publish to.
    pub stats_file: Option<PathBuf>,
    /// Period of the stats lines.
    pub interval: Option<Duration>,
    /// Serve SPDK's JSON-RPC storage methods here.
    pub rpc: Option<PathBuf>,
    /// Directory of the sockets of controllers made at run time.
    pub vhost_dir: PathBuf,
    /// A saved configuration to create devices from at start.
    pub config_json: Option<PathBuf>,
}

/// Sets the devices up, serves their vhost-user connections until `stop`,
/// and reports their counters. On error it raises `stop`.
pub fn serve(s: StorageSetup) -> Result<Vec<BlkReport>, String> {
    /// Raises `done` however the thread ends (a panic included).
    struct Done(Arc<AtomicBool>);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let _done = Done(Arc::clone(&s.done));
    let stop = Arc::clone(&s.stop);
    let r = serve_inner(s);
    if r.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    r
}

/// The iSCSI sessions' transport: connections of the host stack, made
/// on the internal port when the first session needs it; kernel TCP
/// without `--host-ip`.
fn host_transport(
    host: Option<(HostStack, (Port, Arc<FrameBytes>))>,
    pool: Arc<dpdk::Mempool>,
) -> TransportFn {
    let mut host = host;
    let mut stack: Option<(usertcp::TcpStack, String)> = None;
    Box::new(move || {
        if stack.is_none() {
            let Some((h, (port, bytes))) = host.take() else {
                return Ok(None);
            };
            let mut dev =
                usertcp::device::PortDevice::from_port_with_pool(port, Arc::clone(&pool))?;
            dev.count_into(bytes);
            dev.set_mtu(h.mtu as usize);
            let s = usertcp::TcpStack::on_device(dev, h.addr, h.prefix, h.mac)?;
            stack = Some((s, format!("{}/{} (MTU {})", h.addr, h.prefix, h.mtu)));
        }
        // Each iSCSI session is one TCP connection of the one stack.
        Ok(stack.as_ref().map(|(s, addr)| {
            eprintln!(
                "blk: iSCSI session over the host stack (smoltcp) {addr} on the switch's \
                 internal port {INTERNAL_PORT}"
            );
            Box::new(s.connection()) as Box<dyn blk_iscsi::link::Transport>
        }))
    })
}

fn serve_inner(s: StorageSetup) -> Result<Vec<BlkReport>, String> {
    let StorageSetup {
        blk,
        host,
        group,
        stop,
        stats_file,
        interval,
        done: _,
        pool,
        rpc,
        vhost_dir,
        config_json,
    } = s;
    let mut reg = Storage::new(Arc::clone(&group), &vhost_dir, MAX_INFLIGHT);
    reg.set_transport(host_transport(host, pool));
    let setup = (|| {
        for (i, spec) in blk.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Err("stopped while setting up the storage devices".to_string());
            }
            let d = CliDevice {
                socket: &spec.socket,
                backend: &spec.backend,
                block_size: spec.block_size,
                queues: spec.queues,
                cache: spec.cache,
                writeback: spec.writeback,
                cache_policy: None,
                cache_meta: spec.cache_meta.as_deref(),
                qos: spec.qos,
            };
            cli::add(&mut reg, i, &d)?;
        }
        if let Some(f) = &config_json {
            srpc::load_config(&mut reg, f)?;
        }
        Ok(())
    })();
    let storage: srpc::Shared = Arc::new(Mutex::new(reg));
    let server =
        match setup.and_then(|()| rpc.as_deref().map(|p| srpc::serve(p, &storage)).transpose()) {
            Ok(s) => s,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let threads = srpc::lock(&storage).stop_servers();
                stats::finish(threads);
                return Err(e);
            }
        };
    eprintln!(
        "vswitch: {} storage device(s) ready, polled by the switch's core",
        srpc::lock(&storage).controller_list().len()
    );
    let mut prev: HashMap<String, BlkStats> = HashMap::new();
    let (mut last, mut last_file) = (Instant::now(), Instant::now());
    if let Some(p) = &stats_file {
        let (shared, caches) = srpc::lock(&storage).devices();
        stats::publish_stats(p, &shared, &caches);
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(p) = &stats_file {
            if last_file.elapsed() >= Duration::from_millis(250) {
                last_file = Instant::now();
                let Some((shared, caches)) = srpc::devices_now(&storage) else {
                    continue;
                };
                stats::publish_stats(p, &shared, &caches);
            }
        }
        if let Some(iv) = interval {
            if last.elapsed() >= iv {
                let secs = last.elapsed().as_secs_f64();
                last = Instant::now();
                let Some((shared, caches)) = srpc::devices_now(&storage) else {
                    continue;
                };
                for (d, c) in shared.iter().zip(&caches) {
                    let dev = d.lock();
                    let st = dev.stats();
                    let p = prev.entry(dev.name().to_owned()).or_default();
                    println!(
                        "{}{}",
                        stats::stats_line(dev.name(), &st, p, secs),
                        stats::cache_text(c.as_ref())
                    );
                    *p = st;
                }
            }
        }
    }
    drop(server);
    let mut reg = srpc::lock(&storage);
    stats::finish(reg.stop_servers());
    let (shared, caches) = reg.devices();
    // The switch still runs (the workers stop once this thread is done), so
    // an iSCSI backend's last write-backs and flush still reach the target.
    let flushed = stats::flush_at_shutdown(&shared, &caches);
    if let Some(p) = &stats_file {
        stats::publish_stats(p, &shared, &caches);
    }
    let reports = reg
        .controller_list()
        .iter()
        .map(|c| {
            let dev = c.dev.lock();
            let st = dev.stats();
            let snap = c.cache.as_ref().map(|c| c.snapshot());
            BlkReport {
                device: dev.name().to_owned(),
                backend: reg.bdev_label(&c.bdev),
                reads: st.reads,
                writes: st.writes,
                flushes: st.flushes,
                bytes_read: st.bytes_read,
                bytes_written: st.bytes_written,
                errors: st.errors,
                cache_hits: snap.as_ref().map(|c| c.hits),
                cache_misses: snap.as_ref().map(|c| c.misses),
            }
        })
        .collect();
    for d in &shared {
        group.remove(d);
    }
    flushed.map(|()| reports)
}

/// Removes the vhost-user sockets a run created (they outlive a crash of
/// the process otherwise and block the next bind).
pub fn remove_sockets(blk: &[BlkSpec]) {
    for b in blk {
        let _ = std::fs::remove_file(&b.socket);
    }
}

/// Reads `"key":number` from a stats-file line.
pub fn stat_of(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The stats file's line of device `name`.
pub fn stats_line_of(path: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        l.contains(&format!("\"device\":\"{name}\""))
            .then(|| l.to_owned())
    })
}
