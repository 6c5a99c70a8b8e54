//! `vswitch blk`: serve virtio-blk devices to VMs over vhost-user.
//!
//! ```text
//! vswitch blk serve --socket PATH --backend file:PATH|null:SIZE|mem:SIZE|iscsi://HOST:PORT/IQN/LUN
//!                   [--queues N] [--block-size 512|4096]
//!                   [--poll busy|adaptive|wait] [--stats-interval SECS]
//!                   [--cache SIZE [--cache-mode writeback|writethrough]
//!                    [--cache-meta PATH]... [--cache-policy clock|2q]]
//!                   [--qos-iops N] [--qos-mbps N] [--qos-read-mbps N] [--qos-write-mbps N]
//! ```
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use vfio::backend;
use vfio::blk::{BlkConfig, BlkDevice, BlkStats, QosLimits};
use vfio::cache::mapping::qemu_ivshmem_args;
use vfio::cache::{CacheConfig, CacheCounters, CachedBackend, Eviction, WriteMode};
use vfio::poller::{DeviceCell, PollGroup, PollMode, SharedDevice};
use vfio::vhost_user::BlkServer;

/// `vswitch blk ...`
#[derive(Args, Debug)]
pub struct BlkArgs {
    #[command(subcommand)]
    cmd: BlkCmd,
}

#[derive(Subcommand, Debug)]
enum BlkCmd {
    /// Serve virtio-blk devices on vhost-user sockets (QEMU vhost-user-blk-pci).
    Serve(ServeArgs),
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
    /// vhost-user unix socket path (repeat for more devices).
    #[arg(long, required = true)]
    socket: Vec<PathBuf>,
    /// Backend: file:PATH, null:SIZE, mem:SIZE (SIZE like 1G) or
    /// iscsi://HOST:PORT/IQN/LUN (one per --socket).
    #[arg(long, required = true)]
    backend: Vec<String>,
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

/// Sets a device's QoS limits at start (a no-op without limits).
pub(crate) fn set_qos(dev: &SharedDevice, limits: QosLimits) {
    if !limits.is_unlimited() {
        dev.lock().qos_handle().set(limits);
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

/// Stats line suffix for a cached device.
pub(crate) fn cache_text(c: Option<&Arc<CacheCounters>>) -> String {
    c.map_or_else(String::new, |c| {
        let s = c.snapshot();
        format!(
            " | cache hits {} misses {} evictions {} writebacks {} dirty {} bad_entries {} passthrough {}",
            s.hits, s.misses, s.evictions, s.writebacks, s.dirty, s.bad_entries, s.passthrough
        )
    })
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
        BlkCmd::Serve(a) => serve(a),
        BlkCmd::Stats(a) => show_stats(&a),
    }
}

pub(crate) fn stats_json(name: &str, s: &BlkStats, cache: Option<&Arc<CacheCounters>>) -> String {
    let extra = cache.map_or_else(String::new, |c| format!(",{}", c.snapshot().json_fields()));
    format!(
        "{{\"device\":\"{}\",\"reads\":{},\"writes\":{},\"flushes\":{},\"discards\":{},\"get_ids\":{},\
         \"bytes_read\":{},\"bytes_written\":{},\"errors\":{},\"queue_resets\":{},\"interrupts\":{}{extra}}}",
        name.replace(['"', '\\'], "_"),
        s.reads,
        s.writes,
        s.flushes,
        s.discards,
        s.get_ids,
        s.bytes_read,
        s.bytes_written,
        s.errors,
        s.queue_resets,
        s.interrupts
    )
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

pub(crate) fn publish_stats(
    path: &std::path::Path,
    devices: &[vfio::poller::SharedDevice],
    caches: &[Option<Arc<CacheCounters>>],
) {
    let mut out = String::new();
    for (d, c) in devices.iter().zip(caches) {
        let dev = d.lock();
        out.push_str(&stats_json(dev.name(), &dev.stats(), c.as_ref()));
        out.push('\n');
    }
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, out)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        eprintln!("blk: cannot write stats to {}", path.display());
    }
}

pub(crate) fn stats_line(name: &str, s: &BlkStats, prev: &BlkStats, secs: f64) -> String {
    let ops = (s.reads + s.writes + s.flushes + s.discards)
        - (prev.reads + prev.writes + prev.flushes + prev.discards);
    format!(
        "blk {name}: reads {} writes {} flushes {} discards {} get_id {} errors {} queue_resets {} \
         read {} MiB written {} MiB interrupts {} | {:.0} IOPS",
        s.reads,
        s.writes,
        s.flushes,
        s.discards,
        s.get_ids,
        s.errors,
        s.queue_resets,
        s.bytes_read >> 20,
        s.bytes_written >> 20,
        s.interrupts,
        ops as f64 / secs.max(1e-9)
    )
}

/// `iscsi://PORTAL/IQN/LUN` logs in to an iSCSI target (blk-iscsi); the other
/// kinds are vfio's own backends.
pub(crate) fn open_backend(
    spec: &str,
    max_inflight: usize,
    user_tcp: &mut Option<String>,
) -> Result<Box<dyn backend::Backend>, String> {
    if spec.starts_with("iscsi://") {
        let s = blk_iscsi::IscsiSpec::parse(spec)?;
        // One user TCP stack (port) per process: it goes to the first iscsi backend.
        if let Some(u) = user_tcp.take() {
            let cfg = usertcp::UserTcpConfig::parse(&u)?;
            usertcp::init_eal()?;
            let t = usertcp::UserTcp::open(&cfg)?;
            eprintln!("blk: {spec} over user TCP (smoltcp) {u}");
            return iscsi_over(spec, max_inflight, Box::new(t));
        }
        return Ok(Box::new(blk_iscsi::IscsiBackend::connect(
            &s,
            max_inflight,
        )?));
    }
    backend::from_spec(spec, max_inflight)
}

/// An `iscsi://PORTAL/IQN/LUN` backend whose session runs over `transport`
/// (e.g. a user-space TCP stack).
pub(crate) fn iscsi_over(
    spec: &str,
    max_inflight: usize,
    transport: Box<dyn blk_iscsi::link::Transport>,
) -> Result<Box<dyn backend::Backend>, String> {
    let s = blk_iscsi::IscsiSpec::parse(spec)?;
    Ok(Box::new(blk_iscsi::IscsiBackend::connect_with(
        &s,
        max_inflight,
        transport,
    )?))
}

/// A served device: the device the poller polls, its vhost-user server (not
/// yet running) and its cache's counters.
pub(crate) struct Served {
    pub dev: vfio::poller::SharedDevice,
    pub server: BlkServer,
    pub cache: Option<Arc<CacheCounters>>,
}

/// Puts the optional cache in front of `be` (with its metadata table in the
/// given file, to be mapped into the guest, or in an anonymous memfd), makes
/// device number `i` (`spec` names its backend in the log) and binds its
/// vhost-user socket.
pub(crate) fn make_device(
    i: usize,
    sock: &std::path::Path,
    spec: &str,
    mut be: Box<dyn backend::Backend>,
    cache: Option<(CacheConfig, Option<&std::path::Path>)>,
    block_size: u32,
    queues: u16,
) -> Result<Served, String> {
    let mut counters = None;
    if let Some((cc, cache_meta)) = cache {
        let mode = cc.mode;
        let c = match cache_meta {
            Some(meta) => CachedBackend::with_meta_file(be, cc, meta)?,
            None => CachedBackend::new(be, cc)?,
        };
        eprintln!(
            "blk: {spec}: {mode:?} cache of {} slots of 4 KiB, {:?} eviction{}",
            c.slots(),
            cc.eviction,
            if c.hugepages() { " (hugepages)" } else { "" }
        );
        let m = c.meta_region();
        if let Some(p) = m.path() {
            eprintln!(
                "blk: {spec}: cache metadata in {} ({} bytes); map it into the guest with QEMU \
                 arguments: {}",
                p.display(),
                m.len(),
                qemu_ivshmem_args(p, m.len(), &format!("vswitch-cmeta{i}"))
            );
        }
        counters = Some(c.counters());
        be = Box::new(c);
    }
    let serial = format!("vswitch-blk{i}");
    let cfg = BlkConfig::new(&be.info(), block_size, queues, &serial)?;
    let name = sock
        .file_name()
        .map_or_else(|| format!("dev{i}"), |n| n.to_string_lossy().into_owned());
    eprintln!(
        "blk {name}: {} ({} sectors, block size {}, {} queues) on {}",
        spec,
        cfg.capacity_sectors,
        cfg.blk_size,
        cfg.num_queues,
        sock.display()
    );
    let dev = DeviceCell::new(BlkDevice::new(&name, be, cfg));
    let server =
        BlkServer::bind(sock, Arc::clone(&dev)).map_err(|e| format!("{}: {e}", sock.display()))?;
    Ok(Served {
        dev,
        server,
        cache: counters,
    })
}

fn serve(a: ServeArgs) -> Result<(), String> {
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
    let mut user_tcp = a.user_tcp.clone();
    // Before any socket exists: a SIGTERM as soon as one appears must stop
    // the server cleanly (socket removed, stats printed), not kill it.
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let group = PollGroup::new();
    let mut servers = Vec::new();
    let mut devices = Vec::new();
    let mut caches = Vec::new();
    for (i, (sock, spec)) in a.socket.iter().zip(&a.backend).enumerate() {
        let be = open_backend(spec, a.max_inflight, &mut user_tcp)?;
        let cache = a.cache.map(|size| {
            let mode = match a.cache_mode {
                CacheMode::Writethrough => WriteMode::WriteThrough,
                CacheMode::Writeback => WriteMode::WriteBack,
            };
            let mut cfg = CacheConfig::new(size, mode);
            cfg.eviction = match a.cache_policy {
                CachePolicy::Clock => Eviction::Clock,
                CachePolicy::TwoQ => Eviction::TwoQ,
            };
            cfg
        });
        let meta = a.cache_meta.get(i).map(PathBuf::as_path);
        let cache = cache.map(|c| (c, meta));
        let d = make_device(i, sock, spec, be, cache, a.block_size, a.queues)?;
        set_qos(&d.dev, a.qos.limits());
        group.add(Arc::clone(&d.dev));
        servers.push(d.server);
        caches.push(d.cache);
        devices.push(d.dev);
    }
    let mode = match a.poll {
        Poll::Busy => PollMode::Busy,
        Poll::Adaptive => PollMode::Adaptive {
            spin_rounds: 20_000,
            sleep: Duration::from_micros(50),
        },
        Poll::Wait => PollMode::Wait {
            spin: Duration::from_micros(50),
            max_sleep: Duration::from_millis(1),
        },
    };
    let poller = group
        .spawn(mode)
        .map_err(|e| format!("poller thread: {e}"))?;
    let mut threads = Vec::new();
    for s in servers {
        threads.push(std::thread::spawn(move || {
            if let Err(e) = s.run(&STOP) {
                eprintln!("vhost-user server {}: {e}", s.path().display());
            }
        }));
    }
    let mut prev: Vec<BlkStats> = vec![BlkStats::default(); devices.len()];
    let mut last = Instant::now();
    let mut last_file = Instant::now();
    while !STOP.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(p) = &a.stats_file {
            if last_file.elapsed() >= Duration::from_secs(1) {
                last_file = Instant::now();
                publish_stats(p, &devices, &caches);
            }
        }
        if a.stats_interval > 0 && last.elapsed() >= Duration::from_secs(a.stats_interval) {
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            for ((d, p), c) in devices.iter().zip(prev.iter_mut()).zip(&caches) {
                let dev = d.lock();
                let s = dev.stats();
                let line = stats_line(dev.name(), &s, p, secs);
                println!("{line}{}", cache_text(c.as_ref()));
                *p = s;
            }
        }
    }
    if let Some(p) = &a.stats_file {
        publish_stats(p, &devices, &caches);
    }
    eprintln!("blk: stopping");
    group.stop();
    let _ = poller.join();
    // A VM still connected keeps its connection until the process exits;
    // its devices are no longer polled, so the flush below sees no new
    // requests.
    crate::dataplane::storage::finish(threads);
    let flushed = flush_at_shutdown(&devices, &caches);
    for (d, c) in devices.iter().zip(&caches) {
        let dev = d.lock();
        println!(
            "{}{}",
            stats_line(dev.name(), &dev.stats(), &BlkStats::default(), 1.0),
            cache_text(c.as_ref())
        );
    }
    flushed
}

/// How long a clean shutdown waits for a device's last requests and flush
/// when a write-back cache holds dirty blocks (data only the cache has).
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(30);
/// The same without dirty blocks: the flush only asks the backend to make
/// completed writes durable; a backend that cannot (a target that went
/// away) costs a warning, not the exit status.
const SHUTDOWN_FLUSH_CLEAN: Duration = Duration::from_secs(5);

/// A clean shutdown commits what the devices' backends hold: requests in
/// flight complete, then a flush writes back a write-back cache's dirty
/// blocks (and syncs a file). Nothing is lost on SIGTERM; an error names
/// the device whose dirty blocks could not be written back.
pub fn flush_at_shutdown(
    devices: &[SharedDevice],
    caches: &[Option<Arc<CacheCounters>>],
) -> Result<(), String> {
    let mut failed = Vec::new();
    for (d, c) in devices.iter().zip(caches) {
        let dirty = c.as_ref().map_or(0, |c| c.snapshot().dirty);
        let mut dev = d.lock();
        let wait = if dirty > 0 {
            SHUTDOWN_FLUSH
        } else {
            SHUTDOWN_FLUSH_CLEAN
        };
        match dev.drain_and_flush(wait) {
            Ok(true) if dirty > 0 => eprintln!(
                "blk {}: wrote back {dirty} dirty cache block(s) at shutdown",
                dev.name()
            ),
            Ok(_) => {}
            Err(e) if dirty == 0 => eprintln!("blk {e} (no dirty cache blocks: nothing lost)"),
            Err(e) => {
                eprintln!("blk {e}; {dirty} dirty cache block(s) were not written back");
                failed.push(e);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "data not committed at shutdown: {}",
            failed.join("; ")
        ))
    }
}
