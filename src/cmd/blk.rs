//! `vswitch blk`: serve virtio-blk devices to VMs over vhost-user.
//!
//! ```text
//! vswitch blk serve --socket PATH --backend file:PATH|null:SIZE|mem:SIZE|iscsi://[USER%SECRET@]HOST:PORT[,HOST:PORT...]/IQN/LUN[?KEY=VALUE&...]
//!                   [--queues N] [--block-size 512|4096]
//!                   [--poll busy|adaptive|wait] [--stats-interval SECS]
//!                   [--cache SIZE [--cache-mode writeback|writethrough]
//!                    [--cache-meta PATH]... [--cache-policy clock|2q]]
//!                   [--qos-iops N] [--qos-mbps N] [--qos-read-mbps N] [--qos-write-mbps N]
//!                   [--rpc [PATH]] [--vhost-dir DIR] [--config-json FILE]
//! ```
//! With `--rpc` (SPDK's JSON-RPC methods, `rpc.py` or `vswitch rpc`) or
//! `--config-json` the server may start with no device; bdevs and
//! controllers then come and go at run time (`crate::storage`).
//! The `--qos-*` limits (SPDK's `rw_ios_per_sec`, `rw_mbytes_per_sec`,
//! `r_mbytes_per_sec`, `w_mbytes_per_sec`) apply to every device; requests
//! over a limit wait in the virtqueue (`vfio::blk::qos`).
//! `--cache SIZE` puts a block cache of SIZE bytes (`vfio::cache`) in front
//! of every device's backend; its hit/miss/eviction/dirty counters join the
//! stats. `--cache-meta PATH` (one per device) puts the cache's metadata
//! table in that file, and the server logs the QEMU arguments that map the
//! same file into the guest (ivshmem-plain BAR 2).
//! `--socket`/`--backend` may be repeated (in pairs) to serve several devices
//! from the one poller thread. With `--stats-file PATH` the server publishes
//! per-device counters there every second; `vswitch blk stats --stats-file
//! PATH` shows them.

// The doc comments of the clap types below are `--help` text, where
// `[...]` marks an optional part, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use vfio::backend;
use vfio::blk::{BlkStats, QosLimits};
use vfio::poller::{PollGroup, PollMode};

use crate::storage::cli::{self, CliDevice};
use crate::storage::rpc as srpc;
use crate::storage::{stats, Storage};

/// `vswitch blk ...`
#[derive(Args, Debug)]
pub struct BlkArgs {
    #[command(subcommand)]
    cmd: BlkCmd,
}

#[derive(Subcommand, Debug)]
enum BlkCmd {
    /// Serve virtio-blk devices on vhost-user sockets (QEMU vhost-user-blk-pci).
    Serve(Box<ServeArgs>),
    /// Show the per-device stats a running `blk serve --stats-file` publishes.
    Stats(StatsArgs),
}

#[derive(Args, Debug)]
struct StatsArgs {
    /// The file given to `blk serve --stats-file`.
    #[arg(long)]
    stats_file: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Poll {
    /// Spin on the queues all the time (lowest latency, one core busy).
    Busy,
    /// Spin, then sleep 50 µs per round after 20000 idle rounds.
    Adaptive,
    /// Spin 50 µs after completions, then block on the backends' fds
    /// (iSCSI socket, io_uring) and the drivers' kicks for at most 1 ms:
    /// the CPU goes to the target.
    Wait,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// vhost-user unix socket path (repeat for more devices; none with
    /// --rpc or --config-json: devices come at run time).
    #[arg(long, required_unless_present_any = ["rpc", "config_json"])]
    socket: Vec<PathBuf>,
    /// Backend: file:PATH, null:SIZE, mem:SIZE (SIZE like 1G) or
    /// iscsi://[USER%SECRET@]HOST:PORT[,HOST:PORT...]/IQN/LUN[?KEY=VALUE&...]
    /// (several portals: failover; keys: portal, target_user, target_password,
    /// replacement_timeout, nop_interval, nop_timeout, initiator_name; see
    /// blk-iscsi/README.md) (one per --socket).
    #[arg(long, required_unless_present_any = ["rpc", "config_json"])]
    backend: Vec<String>,
    /// Serve SPDK's JSON-RPC storage methods on this unix socket (what
    /// rpc.py -s PATH and `vswitch rpc` talk to; default /var/tmp/spdk.sock).
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = crate::storage::rpc::DEFAULT_SOCKET)]
    rpc: Option<PathBuf>,
    /// Directory of the sockets of controllers made by JSON-RPC or
    /// --config-json (SPDK's -S; default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    vhost_dir: PathBuf,
    /// Create the bdevs and controllers a saved configuration lists
    /// (rpc.py save_config's JSON; SPDK's --json).
    #[arg(long, alias = "json", value_name = "FILE")]
    config_json: Option<PathBuf>,
    /// Request queues per device.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    queues: u16,
    /// Logical block size the guest sees.
    #[arg(long, default_value_t = 512, value_parser = parse_block_size)]
    block_size: u32,
    /// How the poller waits for work.
    #[arg(long, value_enum, default_value_t = Poll::Adaptive)]
    poll: Poll,
    /// Print per-device stats every SECS seconds (0: never).
    #[arg(long, default_value_t = 5)]
    stats_interval: u64,
    /// Requests in flight per device.
    #[arg(long, default_value_t = 1024)]
    max_inflight: usize,
    /// Publish per-device stats (one JSON line per device) to this file every
    /// second, for `vswitch blk stats`.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Carry the (single) iscsi:// backend over user-space TCP (smoltcp) on
    /// its own DPDK port instead of the kernel's TCP: ADDR/PREFIX@DEVARGS,
    /// e.g. 10.77.0.1/24@net_af_packet0,iface=veth0.
    #[arg(long)]
    user_tcp: Option<String>,
    /// Cache SIZE bytes of each device in host memory (like 256M).
    #[arg(long, value_parser = backend::parse_size)]
    cache: Option<u64>,
    /// When cached writes reach the backend.
    #[arg(long, value_enum, default_value_t = CacheMode::Writethrough, requires = "cache")]
    cache_mode: CacheMode,
    /// Put the cache metadata table in this file (on /dev/shm or hugetlbfs;
    /// one per --socket, created if absent, sized to a power of two) so the
    /// guest sees it: give QEMU the logged `-object memory-backend-file,...
    /// -device ivshmem-plain,...` arguments and the table is BAR 2 of PCI
    /// device 1af4:1110 (layout: vfio/src/cache/layout.rs). The file stays
    /// when the server exits: a restarted server reinitialises the same
    /// pages while QEMU keeps them mapped. Default: an anonymous memfd no
    /// guest maps.
    #[arg(long, requires = "cache")]
    cache_meta: Vec<PathBuf>,
    /// How the cache picks a block to evict.
    #[arg(long, value_enum, default_value_t = CachePolicy::Clock, requires = "cache")]
    cache_policy: CachePolicy,
    /// Prometheus metrics endpoint.
    #[command(flatten)]
    metrics: crate::dataplane::exporter::MetricsArgs,
    /// QoS limits of every device.
    #[command(flatten)]
    qos: Box<BlkQosArgs>,
}

/// QoS flags (SPDK `bdev_set_qos_limit` limits; 0 or absent: no limit).
/// In `vswitch run` they apply to every `--blk` device.
#[derive(Args, Debug, Clone, Default)]
pub struct BlkQosArgs {
    /// QoS: at most N requests per second per device (rw_ios_per_sec).
    #[arg(long = "qos-iops", visible_alias = "blk-qos-iops", value_name = "N")]
    pub iops: Option<u64>,
    /// QoS: at most N MiB/s read plus written per device (rw_mbytes_per_sec).
    #[arg(long = "qos-mbps", visible_alias = "blk-qos-mbps", value_name = "N")]
    pub mbps: Option<u64>,
    /// QoS: at most N MiB/s read per device (r_mbytes_per_sec).
    #[arg(
        long = "qos-read-mbps",
        visible_alias = "blk-qos-read-mbps",
        value_name = "N"
    )]
    pub read_mbps: Option<u64>,
    /// QoS: at most N MiB/s written per device (w_mbytes_per_sec).
    #[arg(
        long = "qos-write-mbps",
        visible_alias = "blk-qos-write-mbps",
        value_name = "N"
    )]
    pub write_mbps: Option<u64>,
}

impl BlkQosArgs {
    /// The limits the flags give.
    pub fn limits(&self) -> QosLimits {
        QosLimits {
            rw_ios_per_sec: self.iops.unwrap_or(0),
            rw_mbytes_per_sec: self.mbps.unwrap_or(0),
            r_mbytes_per_sec: self.read_mbps.unwrap_or(0),
            w_mbytes_per_sec: self.write_mbps.unwrap_or(0),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CachePolicy {
    /// CLOCK (second chance) per set.
    Clock,
    /// 2Q per set: scan-resistant (a one-pass scan does not evict the hot set).
    #[value(name = "2q")]
    TwoQ,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CacheMode {
    /// A write completes once it is in the backend.
    Writethrough,
    /// A write completes once it is in the cache; FLUSH writes back.
    Writeback,
}

fn parse_block_size(s: &str) -> Result<u32, String> {
    match s {
        "512" => Ok(512),
        "4096" => Ok(4096),
        _ => Err(format!("block size `{s}`: must be 512 or 4096")),
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

/// Runs `vswitch blk`.
pub fn run(args: BlkArgs) -> Result<(), String> {
    match args.cmd {
        BlkCmd::Serve(a) => serve(*a),
        BlkCmd::Stats(a) => show_stats(&a),
    }
}

/// Pulls `"key":number` out of one of our JSON lines.
fn json_num(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn show_stats(a: &StatsArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&a.stats_file).map_err(|e| {
        format!(
            "{}: {e} (is `vswitch blk serve --stats-file` running?)",
            a.stats_file.display()
        )
    })?;
    let age = std::fs::metadata(&a.stats_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or(String::from("?"), |d| format!("{:.1}", d.as_secs_f64()));
    println!(
        "{:<24} {:>12} {:>12} {:>9} {:>9} {:>12} {:>12} {:>7} {:>7}",
        "device",
        "reads",
        "writes",
        "flushes",
        "discards",
        "MiB read",
        "MiB written",
        "errors",
        "resets"
    );
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let name = line
            .split("\"device\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .ok_or_else(|| format!("{}: malformed stats line", a.stats_file.display()))?;
        let n = |k| json_num(line, k).unwrap_or(0);
        println!(
            "{:<24} {:>12} {:>12} {:>9} {:>9} {:>12} {:>12} {:>7} {:>7}",
            name,
            n("reads"),
            n("writes"),
            n("flushes"),
            n("discards"),
            n("bytes_read") >> 20,
            n("bytes_written") >> 20,
            n("errors"),
            n("queue_resets")
        );
        if line.contains("\"cache_hits\"") {
            println!(
                "{:<24} cache: hits {} misses {} evictions {} writebacks {} dirty {} bad_entries {}",
                "",
                n("cache_hits"),
                n("cache_misses"),
                n("cache_evictions"),
                n("cache_writebacks"),
                n("cache_dirty"),
                n("cache_bad_entries")
            );
        }
    }
    println!("(published {age} s ago)");
    Ok(())
}

/// Refuses flag combinations `blk serve` cannot honour.
fn check_serve_args(a: &ServeArgs) -> Result<(), String> {
    if a.socket.len() != a.backend.len() {
        return Err(format!(
            "{} --socket but {} --backend: give one backend per socket",
            a.socket.len(),
            a.backend.len()
        ));
    }
    let iscsi = a
        .backend
        .iter()
        .filter(|b| b.starts_with("iscsi://"))
        .count();
    if a.user_tcp.is_some() && iscsi != 1 {
        return Err(format!(
            "--user-tcp carries exactly one iscsi:// backend; {iscsi} given"
        ));
    }
    if !a.cache_meta.is_empty() && a.cache_meta.len() != a.socket.len() {
        return Err(format!(
            "{} --cache-meta but {} --socket: give one metadata file per device",
            a.cache_meta.len(),
            a.socket.len()
        ));
    }
    Ok(())
}

/// The poller's mode for `--poll`.
fn poll_mode(p: Poll) -> PollMode {
    match p {
        Poll::Busy => PollMode::Busy,
        Poll::Adaptive => PollMode::Adaptive {
            spin_rounds: 20_000,
            sleep: Duration::from_micros(50),
        },
        Poll::Wait => PollMode::Wait {
            spin: Duration::from_micros(50),
            max_sleep: Duration::from_millis(1),
        },
    }
}

/// Until SIGINT/SIGTERM: every second the stats file (`--stats-file`),
/// every `--stats-interval` seconds a line per device on stdout.
fn report_until_stopped(a: &ServeArgs, storage: &srpc::Shared) {
    let mut prev: HashMap<String, BlkStats> = HashMap::new();
    let mut last = Instant::now();
    let mut last_file = Instant::now();
    while !STOP.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(p) = &a.stats_file {
            if last_file.elapsed() >= Duration::from_secs(1) {
                last_file = Instant::now();
                let Some((devices, caches)) = srpc::devices_now(storage) else {
                    continue;
                };
                stats::publish_stats(p, &devices, &caches);
            }
        }
        if a.stats_interval > 0 && last.elapsed() >= Duration::from_secs(a.stats_interval) {
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            let Some((devices, caches)) = srpc::devices_now(storage) else {
                continue;
            };
            for (d, c) in devices.iter().zip(&caches) {
                let dev = d.lock();
                let s = dev.stats();
                let p = prev.entry(dev.name().to_owned()).or_default();
                let line = stats::stats_line(dev.name(), &s, p, secs);
                println!("{line}{}", stats::cache_text(c.as_ref()));
                *p = s;
            }
        }
    }
}

fn serve(a: ServeArgs) -> Result<(), String> {
    check_serve_args(&a)?;
    let metrics_addr = a.metrics.addr()?;
    // Before any socket exists: a SIGTERM as soon as one appears must stop
    // the server cleanly (socket removed, stats printed), not kill it.
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let group = PollGroup::new();
    let mut reg = Storage::new(Arc::clone(&group), &a.vhost_dir, a.max_inflight);
    if let Some(u) = a.user_tcp.clone() {
        // The one iscsi:// device's session runs on its own DPDK port.
        let mut u = Some(u);
        reg.set_transport(Box::new(move || {
            let Some(u) = u.take() else { return Ok(None) };
            let cfg = usertcp::UserTcpConfig::parse(&u)?;
            usertcp::init_eal()?;
            let t = usertcp::UserTcp::open(&cfg)?;
            eprintln!("blk: iSCSI over user TCP (smoltcp) {u}");
            Ok(Some(Box::new(t) as Box<dyn blk_iscsi::link::Transport>))
        }));
    }
    let policy = match a.cache_policy {
        CachePolicy::Clock => "clock",
        CachePolicy::TwoQ => "2q",
    };
    for (i, (sock, spec)) in a.socket.iter().zip(&a.backend).enumerate() {
        let d = CliDevice {
            socket: sock,
            backend: spec,
            block_size: a.block_size,
            queues: a.queues,
            cache: a.cache,
            writeback: matches!(a.cache_mode, CacheMode::Writeback),
            cache_policy: Some(policy),
            cache_meta: a.cache_meta.get(i).map(PathBuf::as_path),
            qos: a.qos.limits(),
        };
        cli::add(&mut reg, i, &d)?;
    }
    if let Some(f) = &a.config_json {
        srpc::load_config(&mut reg, f)?;
    }
    let storage: srpc::Shared = Arc::new(Mutex::new(reg));
    let mode = poll_mode(a.poll);
    let metrics = crate::dataplane::exporter::serve_storage(metrics_addr, &group)?;
    let poller = group
        .spawn(mode)
        .map_err(|e| format!("poller thread: {e}"))?;
    let server = match &a.rpc {
        Some(p) => match srpc::serve(p, &storage) {
            Ok(s) => Some(s),
            Err(e) => {
                group.stop();
                let _ = poller.join();
                return Err(e);
            }
        },
        None => None,
    };
    report_until_stopped(&a, &storage);
    // No more run-time changes; then the same shutdown for every device.
    drop(server);
    let (devices, caches) = srpc::lock(&storage).devices();
    if let Some(p) = &a.stats_file {
        stats::publish_stats(p, &devices, &caches);
    }
    eprintln!("blk: stopping");
    drop(metrics);
    group.stop();
    let _ = poller.join();
    // A VM still connected keeps its connection until the process exits;
    // its devices are no longer polled, so the flush below sees no new
    // requests.
    let threads = srpc::lock(&storage).stop_servers();
    stats::finish(threads);
    let flushed = stats::flush_at_shutdown(&devices, &caches);
    for (d, c) in devices.iter().zip(&caches) {
        let dev = d.lock();
        println!(
            "{}{}",
            stats::stats_line(dev.name(), &dev.stats(), &BlkStats::default(), 1.0),
            stats::cache_text(c.as_ref())
        );
    }
    flushed
}
