//! vhost-user-blk back ends measured with one simulated guest driver.
//!
//! The driver (`vfio::vhost_user::mock_frontend`) is a vhost-user front end: it
//! shares memfd guest memory, negotiates, and keeps QD 4 KiB reads in flight
//! on each queue, polling the used rings (it asks for no interrupts, and kicks
//! only when the back end's `avail_event`/`NO_NOTIFY` asks for it). It drives
//!
//! * `vswitch`: this crate's server, null backend, one busy-polling thread
//!   pinned to CPU 1;
//! * `qsd`: `qemu-storage-daemon` exporting a `null-co` node through its
//!   vhost-user-blk export in an iothread, pinned to CPU 1;
//! * `spdk` (with `--spdk PATH_TO_VHOST_APP`, the anchor): SPDK's vhost
//!   target (`build/bin/vhost -m 0x2 -u --no-huge -s 1024`) with a null bdev
//!   and a vhost-blk controller made through its JSON-RPC socket, reactor on
//!   CPU 1 ([`perf::spdk`]; SPDK is not packaged in Debian 12, build it with
//!   `perf/spdk/build.sh`). Without the flag the rows are skipped with a note.
//!
//! The driver runs on CPU 0. IOPS per polling core = completed requests per
//! second of back-end CPU time (getrusage for ours: process minus driver
//! thread; /proc/PID/stat for qsd). Cycles per request = back-end CPU time x
//! TSC rate / requests. Latency is submit-to-used as the driver sees it.
//!
//! Run: `cargo run --release -p perf --bin blk_vhost -- [--secs N] [--repeat N] [--spdk PATH]`
//!
//! `--qos-cost` measures only what QoS costs: our server at QD 128 with no
//! limit against limits far above the rate (every bucket checked per
//! request), alternating runs.
//!
//! `--metrics-cost` measures what `--metrics` costs: QD 128 with the
//! device's latency histograms off, against on with the Prometheus endpoint
//! running and scraped over HTTP every 250 ms (60 times Prometheus's
//! default rate), alternating runs.
//!
//! `--round-cost` measures the poller's own rounds in this thread (see
//! `round_cost`); with `--async` the null backend goes through the
//! asynchronous path (`submit`, `reap`). `--round-batches N
//! --round-features qos,metrics,one,async` runs only N rounds of one
//! device, for instruction counts:
//! `valgrind --tool=callgrind blk_vhost --round-batches 3000 --round-features qos`
//! minus the same with 1000, divided by 2000 × 32, is the instructions per
//! read (driver included; the difference between features is theirs).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vfio::backend::null::NullBackend;
use vfio::backend::Backend;
use vfio::blk::{BlkConfig, BlkDevice, QosLimits, VIRTIO_BLK_T_IN};
use vfio::poller::{DeviceCell, PollGroup, PollMode};
use vfio::vhost_user::BlkServer;

const DISK: u64 = 1 << 30;
use perf::vhost_driver::*;

fn ours(
    dir: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
) -> std::result::Result<Result, String> {
    ours_with(dir, qd, queues, secs, hz, QosLimits::default(), false)
}

fn ours_with(
    dir: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
    qos: QosLimits,
    metrics: bool,
) -> std::result::Result<Result, String> {
    let sock = dir.join(format!("vswitch-{qd}-{queues}.sock"));
    let backend = Box::new(NullBackend::new(DISK, 4096));
    let cfg = BlkConfig::new(&backend.info(), 512, queues, "bench")?;
    let dev = DeviceCell::new(BlkDevice::new("bench", backend, cfg));
    dev.lock().qos_handle().set(qos);
    let group = PollGroup::new();
    group.add(Arc::clone(&dev));
    // Busy/idle rounds counted as SPDK's reactor counts them (the goal's
    // metric, see `run_stats`).
    group.track_busy();
    // The endpoint and the scraper run where the scheduler puts them, as
    // `vswitch blk serve --metrics` would (not on the poller's core).
    unpin();
    let scraper = metrics.then(|| scraper(&group));
    pin(1);
    let poller = group.spawn(PollMode::Busy).map_err(|e| e.to_string())?;
    let server = BlkServer::bind(&sock, Arc::clone(&dev)).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let srv = std::thread::spawn(move || server.run(&s2));
    pin(0);
    wait_socket(&sock);
    let g = Arc::clone(&group);
    let r = drive_probed(
        &sock,
        qd,
        queues,
        secs,
        hz,
        &Cpu::InProcess,
        "vswitch",
        &Workload::default(),
        &mut || Some(g.busy_idle_ticks()),
    );
    stop.store(true, Ordering::Release);
    // Whether the back end or the driver was the bottleneck: the share of
    // the poller's rounds that found work (published every 4096 rounds).
    let (rounds, busy) = (group.rounds(), dev.lock().stats().busy_polls);
    if rounds > 0 {
        println!(
            "  (vswitch qd {qd} q {queues}: {:.0}% of {rounds} poll rounds found work)",
            busy as f64 * 100.0 / rounds as f64
        );
    }
    if let Some((flag, t)) = scraper {
        flag.store(true, Ordering::Release);
        let n = t.join().unwrap_or(0);
        if n == 0 {
            return Err("the metrics endpoint was never scraped".into());
        }
    }
    group.stop();
    let _ = poller.join();
    let _ = srv.join();
    r
}

/// `--metrics` as `vswitch blk serve` runs it: latency histograms on, the
/// endpoint up, and a client scraping it over HTTP every 250 ms (its
/// threads' CPU time counts as the back end's). Returns the stop flag and
/// the scraper, which answers how many scrapes succeeded.
fn scraper(group: &Arc<PollGroup>) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    use std::io::{Read, Write};
    group.track_latency();
    let reg = metrics::Registry::new();
    let g = Arc::clone(group);
    reg.register(move |m| g.collect(m));
    let server = metrics::Server::start("127.0.0.1:0".parse().expect("address"), reg)
        .expect("metrics endpoint");
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        let mut ok = 0u64;
        while !st.load(Ordering::Acquire) {
            if let Ok(mut c) = std::net::TcpStream::connect(server.local_addr()) {
                let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n");
                let mut body = String::new();
                if c.read_to_string(&mut body).is_ok()
                    && body.contains("vswitch_blk_request_latency_seconds_bucket")
                {
                    ok += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        ok
    });
    (stop, t)
}

fn qsd(
    dir: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
) -> std::result::Result<Result, String> {
    let sock = dir.join(format!("qsd-{qd}-{queues}.sock"));
    let mut cmd = Command::new("qemu-storage-daemon");
    cmd.args(["--blockdev", "driver=null-co,node-name=null0,size=1073741824", "--object", "iothread,id=io0", "--export"])
        .arg(format!(
            "type=vhost-user-blk,id=e0,node-name=null0,addr.type=unix,addr.path={},writable=on,num-queues={queues},iothread=io0",
            sock.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    pin_child(&mut cmd, 1);
    let child =
        Reaper(cmd.spawn().map_err(|e| {
            format!("qemu-storage-daemon (Debian package qemu-system-common): {e}")
        })?);
    perf::cleanup::record_child(&child.0);
    pin(0);
    wait_socket(&sock);
    drive(&sock, qd, queues, secs, hz, &Cpu::Pid(child.0.id()), "qsd")
}

/// SPDK's vhost target (the app at `app`) serving a null bdev of the same
/// size through a vhost-blk controller; its reactor on CPU 1, the driver on
/// CPU 0. A fresh app per run: its reactor spins on CPU 1 for as long as it
/// lives, which would starve the next target.
fn spdk(
    app: &Path,
    dir: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
) -> std::result::Result<Result, String> {
    let sdir = dir.join(format!("spdk-{qd}-{queues}"));
    std::fs::create_dir_all(&sdir).map_err(|e| e.to_string())?;
    let mut target = perf::spdk::SpdkVhost::start(app, &sdir, 1)?;
    target.null_bdev("null0", DISK, 512)?;
    let sock = target.blk_controller("vhost.0", "null0", "0x2")?;
    pin(0);
    wait_socket(&sock);
    let pid = target.pid();
    let r = drive_probed(
        &sock,
        qd,
        queues,
        secs,
        hz,
        &Cpu::Pid(pid),
        "spdk",
        &Workload::default(),
        &mut || target.busy_idle_ticks().ok(),
    );
    drop(target);
    let _ = std::fs::remove_dir_all(&sdir);
    r
}

/// vhost-user-blk, null backend: this crate's server against
/// qemu-storage-daemon and (optionally) SPDK's vhost target, driven by one
/// simulated polling guest driver.
#[derive(clap::Parser)]
#[command(name = "blk_vhost")]
struct Args {
    /// Seconds per run (after 0.5 s of warm-up).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Runs per case; the median (by IOPS) is reported. With `--qos-cost`
    /// and `--metrics-cost`: alternating off/on pairs (9 or more give
    /// quartiles worth reading).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only measure the cost of QoS: our server at QD 128 with no limit
    /// against limits set far above the rate (IOPS, read and total
    /// bandwidth buckets all checked per request, none ever empty).
    #[arg(long)]
    qos_cost: bool,
    /// Only measure the cost of --metrics: QD 128, latency histograms and
    /// the endpoint (scraped every 250 ms) off against on, alternating.
    #[arg(long)]
    metrics_cost: bool,
    /// Only measure the poller's own rounds, in this thread (no driver on
    /// another core, no scheduler): cycles of an idle round (the floor of
    /// the time a request waits to be seen) and of a round that serves one
    /// request (device, null backend, publication), minimum over batches.
    #[arg(long)]
    round_cost: bool,
    /// With `--round-cost`: devices on packed rings, and rounds with the
    /// driver's lines flushed from the caches (cold), packed and split.
    #[arg(long)]
    packed: bool,
    /// With `--round-cost`: the null backend behind a wrapper that does
    /// not call itself synchronous, so requests go through `submit` and
    /// the completion pass (`reap`), as with the file, cache and iSCSI
    /// backends.
    #[arg(long = "async")]
    asynchronous: bool,
    /// Instead of `--round-cost`'s turns: only N rounds of 32 reads on one
    /// device with the features of `--round-features`, for an instruction
    /// count (`valgrind --tool=callgrind`: the difference between two N,
    /// divided by 32 × their difference, is the instructions per read).
    #[arg(long, value_name = "N")]
    round_batches: Option<u64>,
    /// With `--round-batches`: the device's features, comma-separated
    /// (`qos`, `metrics`; none: plain), `one` for rounds of one read,
    /// `async` for the asynchronous path (see `--async`).
    #[arg(long, value_delimiter = ',')]
    round_features: Vec<String>,
    /// SPDK's vhost app (`build/bin/vhost` of a tree built with
    /// `perf/spdk/build.sh`): adds the `spdk` target, the anchor. Without
    /// it those rows are skipped.
    #[arg(long, value_name = "PATH_TO_VHOST_APP")]
    spdk: Option<std::path::PathBuf>,
    /// Targets to measure, comma-separated (vswitch, qsd, spdk).
    #[arg(long, value_delimiter = ',', default_value = "vswitch,qsd,spdk")]
    targets: Vec<String>,
    /// Rows to measure as QD:QUEUES, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1:1,128:1,1:4,128:4")]
    rows: Vec<String>,
}

/// Of one run: IOPS per back-end core (CPU time), p99 and p50 (ns), and
/// IOPS per busy core (`hz` / busy cycles per request; 0 when the target
/// does not count busy rounds).
fn run_stats(r: &Result, hz: f64) -> [f64; 4] {
    [
        r.ops as f64 / r.backend_cpu.max(1e-9),
        r.hist.value_at_quantile(0.99) as f64,
        r.hist.value_at_quantile(0.5) as f64,
        r.busy_per_req().map_or(0.0, |c| hz / c.max(1e-9)),
    ]
}

/// Medians over the repeats where both ran of ours/peer: IOPS per core,
/// p99, p50, IOPS per busy core (0 unless both count busy rounds); and the
/// number of pairs. `None` without a pair.
fn pair_medians(ours: &[Option<[f64; 4]>], peer: &[Option<[f64; 4]>]) -> Option<[f64; 5]> {
    let pairs: Vec<([f64; 4], [f64; 4])> = ours
        .iter()
        .zip(peer)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = pairs
            .iter()
            .map(|(a, b)| if b[i] > 0.0 { a[i] / b[i] } else { 0.0 })
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Some([
        median(0),
        median(1),
        median(2),
        median(3),
        pairs.len() as f64,
    ])
}

/// The spread of the pairs' IOPS-per-busy-core ratios (`None` without a
/// pair where both targets counted busy rounds).
fn busy_quartiles(ours: &[Option<[f64; 4]>], peer: &[Option<[f64; 4]>]) -> Option<Spread> {
    let v: Vec<f64> = ours
        .iter()
        .zip(peer)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .filter(|(_, b)| b[3] > 0.0)
        .map(|(a, b)| a[3] / b[3])
        .collect();
    (!v.is_empty()).then(|| Spread::of(v))
}

/// Two runs whose CPU 0 / CPU 1 transfer times are within this factor of
/// each other are taken to have had the same vCPU placement.
const SAME_PLACEMENT: f64 = 1.5;

/// The median IOPS-per-busy-core ratio over the pairs whose two runs saw
/// the same vCPU placement (transfer times `xo`, `xp` within
/// [`SAME_PLACEMENT`]), and how many there were; `None` if none.
fn same_placement(
    ours: &[Option<[f64; 4]>],
    peer: &[Option<[f64; 4]>],
    xo: &[f64],
    xp: &[f64],
) -> Option<(f64, usize)> {
    let v: Vec<f64> = ours
        .iter()
        .zip(peer)
        .zip(xo.iter().zip(xp))
        .filter_map(|((a, b), (&x, &y))| Some(((*a)?, (*b)?, x, y)))
        .filter(|&(_, b, x, y)| b[3] > 0.0 && x.max(y) <= SAME_PLACEMENT * x.min(y))
        .map(|(a, b, _, _)| a[3] / b[3])
        .collect();
    let n = v.len();
    (n > 0).then(|| (Spread::of(v).median, n))
}

/// One run's line: the figures a pair's ratio is made of, and what the
/// host did meanwhile (`xc_ns`: the CPU 0 / CPU 1 cache-line transfer
/// time measured just before the target started; steal per CPU; times the
/// driver thread was preempted).
fn print_run(rep: usize, r: &Result, xc_ns: f64) {
    let share = r
        .busy_idle
        .map_or(f64::NAN, |(b, i)| b as f64 * 100.0 / (b + i).max(1) as f64);
    println!(
        "  run {rep} {:<7}: {:>9.0} IOPS, busy cyc/req {:>5.0}, busy share {:>4.1}%, p50 {:.2} us, p99 {:.2} us, cross-core {:.0} ns, steal cpu0 {:.1}% cpu1 {:.1}%, driver preempted {}",
        r.target,
        r.ops as f64 / r.wall,
        r.busy_per_req().unwrap_or(f64::NAN),
        share,
        r.hist.value_at_quantile(0.5) as f64 / 1000.0,
        r.hist.value_at_quantile(0.99) as f64 / 1000.0,
        xc_ns,
        r.steal_pct[0],
        r.steal_pct[1],
        r.driver_preempts
    );
}

/// Parses `--rows` entries (`QD:QUEUES`).
fn parse_rows(rows: &[String]) -> std::result::Result<Vec<(usize, u16)>, String> {
    rows.iter()
        .map(|r| {
            let bad = || format!("--rows: {r:?} is not QD:QUEUES (e.g. 1:4)");
            let (qd, q) = r.split_once(':').ok_or_else(bad)?;
            let qd: usize = qd.parse().map_err(|_| bad())?;
            let q: u16 = q.parse().map_err(|_| bad())?;
            if qd == 0 || !(1..=16).contains(&q) || qd > 256 {
                return Err(format!("--rows: {r:?}: QD 1-256, 1-16 queues"));
            }
            Ok((qd, q))
        })
        .collect()
}

/// `--metrics-cost`: QD 128, one queue, metrics off and on (see
/// [`ab_cost`]).
fn metrics_cost(dir: &Path, repeat: usize, secs: f64, hz: f64) {
    ab_cost("metrics", repeat, hz, |on| {
        ours_with(dir, 128, 1, secs, hz, QosLimits::default(), on)
    });
}

/// Limits far above any rate this host reaches: the IOPS, read and total
/// bandwidth buckets are all refilled and checked, none ever runs dry.
const QOS_FAR_ABOVE: QosLimits = QosLimits {
    rw_ios_per_sec: 1 << 40,
    rw_mbytes_per_sec: 1 << 30,
    r_mbytes_per_sec: 1 << 30,
    w_mbytes_per_sec: 0,
};

/// `--qos-cost`: QD 128, one queue, no limit against limits far above the
/// rate (every bucket checked per request, none ever empty; see
/// [`ab_cost`]).
fn qos_cost(dir: &Path, repeat: usize, secs: f64, hz: f64) {
    let on = QOS_FAR_ABOVE;
    ab_cost("qos", repeat, hz, |enabled| {
        let limits = if enabled { on } else { QosLimits::default() };
        ours_with(dir, 128, 1, secs, hz, limits, false)
    });
}

/// What a feature costs: `repeat` pairs of runs off and on (which goes
/// first alternates, so a drift in the machine's load favours neither),
/// compared per pair on the poller's busy cycles per request (the work a
/// request costs the polling core; at QD 128 the simulated driver, not the
/// poller, bounds IOPS) and on IOPS; the median, quartiles and range of
/// the pair ratios, then the same feature in one thread (`--round-cost`'s
/// batch row, off and on), where no other core or task adds noise.
fn ab_cost(
    name: &str,
    repeat: usize,
    hz: f64,
    mut run: impl FnMut(bool) -> std::result::Result<Result, String>,
) {
    let iops = |r: &Result| r.ops as f64 / r.wall;
    let busy = |r: &Result| r.busy_per_req().unwrap_or(f64::NAN);
    let cpu = |r: &Result| r.backend_cpu * hz / r.ops.max(1) as f64;
    let mut runs: Vec<(Result, Result)> = Vec::new();
    for i in 0..repeat {
        let order = if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut pair: [Option<Result>; 2] = [None, None];
        for on in order {
            match run(on) {
                Ok(r) => pair[usize::from(on)] = Some(r),
                Err(e) => println!("{name} {}: failed: {e}", if on { "on" } else { "off" }),
            }
        }
        if let [Some(off), Some(on)] = pair {
            println!(
                "pair {i}: off {:>10.0} IOPS {:>5.0} busy cyc/req | on {:>10.0} IOPS {:>5.0} busy cyc/req | on/off busy cycles {:.3}x, IOPS {:.3}x, errors {}",
                iops(&off),
                busy(&off),
                iops(&on),
                busy(&on),
                busy(&on) / busy(&off),
                iops(&on) / iops(&off),
                off.errors + on.errors
            );
            runs.push((off, on));
        }
    }
    if runs.is_empty() {
        return;
    }
    let ratios = |f: &dyn Fn(&Result) -> f64| -> Spread {
        Spread::of(runs.iter().map(|(a, b)| f(b) / f(a)).collect())
    };
    let (busy_r, iops_r, cpu_r) = (ratios(&busy), ratios(&iops), ratios(&cpu));
    let abs = |on: bool| {
        Spread::of(
            runs.iter()
                .map(|(a, b)| busy(if on { b } else { a }))
                .collect(),
        )
        .median
    };
    println!(
        "{name} cost, null backend, QD 128, 1 queue, 4 KiB reads, {} alternating pairs \
         (on/off ratio per pair; median [quartiles] min..max):",
        runs.len()
    );
    let pct = |v: f64| (v - 1.0) * 100.0;
    println!(
        "{name} on/off: busy cycles per request {:+.1}% [{:+.1}% {:+.1}%] {:+.1}%..{:+.1}% \
         (median {:.0} -> {:.0} cycles)",
        pct(busy_r.median),
        pct(busy_r.q1),
        pct(busy_r.q3),
        pct(busy_r.min),
        pct(busy_r.max),
        abs(false),
        abs(true),
    );
    println!(
        "{name} on/off: IOPS {:.3}x [{:.3}x {:.3}x], CPU cycles per request {:+.1}% [{:+.1}% {:+.1}%]",
        iops_r.median,
        iops_r.q1,
        iops_r.q3,
        pct(cpu_r.median),
        pct(cpu_r.q1),
        pct(cpu_r.q3),
    );
    // The same features in one thread, without the driver's core or the
    // scheduler (see `round_cost`): the cost itself, noise-free.
    let (qos, latency) = (name == "qos", name == "metrics");
    let got = round_costs(&[(false, false), (qos, latency)]);
    let (off, on) = (got[0][2], got[1][2]);
    println!(
        "{name} in-thread (--round-cost), per read in a round of 32: off {off} cycles, on {on} ({:+})",
        on as i64 - off as i64
    );
    println!(
        "{{\"bench\":\"blk_vhost_{name}_cost\",\"pairs\":{},\"busy_cycles_ratio_median\":{:.4},\"busy_cycles_ratio_q1\":{:.4},\"busy_cycles_ratio_q3\":{:.4},\"busy_cycles_ratio_min\":{:.4},\"busy_cycles_ratio_max\":{:.4},\"iops_ratio_median\":{:.4},\"cpu_cycles_ratio_median\":{:.4},\"round_batch_cycles_off\":{off},\"round_batch_cycles_on\":{on}}}",
        runs.len(),
        busy_r.median,
        busy_r.q1,
        busy_r.q3,
        busy_r.min,
        busy_r.max,
        iops_r.median,
        cpu_r.median,
    );
}

/// Median, quartiles and range of a sample (the pairs of `ab_cost`).
struct Spread {
    median: f64,
    q1: f64,
    q3: f64,
    min: f64,
    max: f64,
}

impl Spread {
    /// Of a non-empty sample (quartiles by nearest rank).
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Spread {
            median: if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            },
            q1: at(0.25),
            q3: at(0.75),
            min: v[0],
            max: v[v.len() - 1],
        }
    }
}

/// `--round-cost`: one device, one split queue in anonymous memory, the
/// simulated driver in this thread between rounds; cycles of
/// `GroupPoller::poll` (lock, device poll, accounting) when idle, when it
/// serves one 4 KiB read, and per read when it serves 32 at once (a QD 128
/// batch). Six devices: plain (twice: the second's difference is the
/// noise floor), with QoS limits far above the rate (every bucket
/// checked, none ever near empty), with the latency histograms of
/// `--metrics`, with both, and plain with the poller's busy accounting
/// off. The first five account busy time as `--metrics` does (a clock
/// read per round, which the latency histograms share), so the metrics
/// row minus the last is what `--metrics` costs against a server run
/// without it. They take turns batch by batch (each
/// measurement a batch of 8192 rounds, 200 turns), and each figure is the
/// minimum over its turns: one thread, no driver core, and the devices
/// measured under the same conditions, so the differences are what the
/// features cost the poller, the figure `--qos-cost` and `--metrics-cost`
/// look for through the noise of two cores.
fn round_cost(asynchronous: bool) {
    let path = if asynchronous {
        "asynchronous null backend (submit, reap)"
    } else {
        "null backend"
    };
    println!("poll round, one device, one split queue (event index), {path}, this thread");
    // A second plain device: its difference from the first is the noise
    // floor (layout, cache sets) of the others'.
    let names = [
        "plain",
        "plain again",
        "qos",
        "metrics",
        "qos+metrics",
        "plain unaccounted",
    ];
    let spec = |qos, latency, unaccounted| RigSpec {
        qos,
        latency,
        unaccounted,
        asynchronous,
        ..RigSpec::default()
    };
    let got = round_costs_of(&[
        spec(false, false, false),
        spec(false, false, false),
        spec(true, false, false),
        spec(false, true, false),
        spec(true, true, false),
        spec(false, false, true),
    ]);
    for (name, &[idle, busy, batch]) in names.iter().zip(&got) {
        let [p0, p1, p2] = got[0];
        let d = |v: u64, p: u64| v as i64 - p as i64;
        let name = name.replace(' ', "_");
        println!(
            "{name:<17} idle round: {idle:>4} cycles ({:+}); round serving one 4 KiB read: {busy:>4} ({:+}); \
             per read in a round of 32: {batch:>4} ({:+})",
            d(idle, p0),
            d(busy, p1),
            d(batch, p2)
        );
        println!(
            "{{\"bench\":\"blk_vhost_round_cost\",\"features\":\"{name}\",\"idle_cycles\":{idle},\"busy_cycles\":{busy},\"batch_cycles_per_req\":{batch}}}"
        );
    }
}

/// `--round-batches`: `n` rounds of [`ROUND_BATCH`] reads on one device
/// (QoS limits far above the rate and/or latency histograms), nothing
/// else, for an instruction count under callgrind.
fn round_batches(qos: bool, latency: bool, one: bool, asynchronous: bool, n: u64) {
    let mut r = RoundRig::new(RigSpec {
        qos,
        latency,
        asynchronous,
        ..RigSpec::default()
    });
    for _ in 0..n {
        if one {
            r.one_round();
        } else {
            r.batch_round();
        }
    }
    r.check();
    let reads = if one { 1 } else { ROUND_BATCH };
    println!("{n} rounds of {reads} reads (qos {qos}, metrics {latency})");
}

/// `--round-cost`'s measurement of devices with the given (QoS, latency)
/// features, taking turns: per device (idle round, one-read round, per
/// read in a round of 32), cycles, minimum over the turns.
fn round_costs(features: &[(bool, bool)]) -> Vec<[u64; 3]> {
    let specs: Vec<RigSpec> = features
        .iter()
        .map(|&(qos, latency)| RigSpec {
            qos,
            latency,
            ..RigSpec::default()
        })
        .collect();
    round_costs_of(&specs)
}

/// What one `--round-cost` device has: QoS limits far above the rate, the
/// latency histograms, a packed ring instead of a split one, the
/// driver's lines flushed from the caches before each timed round, and
/// the asynchronous path ([`AsyncNull`]), and a poller without busy
/// accounting.
#[derive(Clone, Copy, Default)]
struct RigSpec {
    asynchronous: bool,
    /// No busy accounting (the poller reads no clock per round): a device
    /// with neither feature as it runs without `--metrics`.
    unaccounted: bool,
    qos: bool,
    latency: bool,
    packed: bool,
    cold: bool,
}

/// `--round-cost --packed`: devices on packed rings (plain, twice: the
/// second's difference is the noise floor), then the same rounds with the
/// lines the driver wrote (descriptors, ring areas, request headers)
/// flushed from every cache before each timed round, so the device misses
/// on them as it misses on lines another core wrote (a driver on another
/// CPU; `clflush`: to memory, slower than a cross-core transfer), packed
/// and split for reference.
fn round_cost_packed() {
    println!("poll round, one device, one queue, null backend, this thread; cold: driver lines flushed before each timed round");
    let names = [
        "packed",
        "packed again",
        "packed cold",
        "packed cold again",
        "split cold",
    ];
    let spec = |packed, cold| RigSpec {
        packed,
        cold,
        ..RigSpec::default()
    };
    let got = round_costs_of(&[
        spec(true, false),
        spec(true, false),
        spec(true, true),
        spec(true, true),
        spec(false, true),
    ]);
    for (name, &[idle, busy, batch]) in names.iter().zip(&got) {
        let name = name.replace(' ', "_");
        println!(
            "{name:<18} idle round: {idle:>4} cycles; round serving one 4 KiB read: {busy:>5}; per read in a round of 32: {batch:>4}"
        );
        println!(
            "{{\"bench\":\"blk_vhost_round_cost\",\"features\":\"{name}\",\"idle_cycles\":{idle},\"busy_cycles\":{busy},\"batch_cycles_per_req\":{batch}}}"
        );
    }
}

/// [`round_costs`] of devices as `specs` say.
fn round_costs_of(specs: &[RigSpec]) -> Vec<[u64; 3]> {
    let mut rigs: Vec<RoundRig> = specs.iter().map(|&s| RoundRig::new(s)).collect();
    let mut best = vec![[u64::MAX; 3]; rigs.len()];
    for _ in 0..TURNS {
        for (r, b) in rigs.iter_mut().zip(best.iter_mut()) {
            let got = r.turn();
            for (b, g) in b.iter_mut().zip(got) {
                *b = (*b).min(g);
            }
        }
    }
    for r in rigs {
        r.check();
    }
    best
}

/// The null backend, not calling itself synchronous: the device takes the
/// asynchronous path (`submit`, `commit`, then `poll` in its completion
/// pass), whose completions are counted by `reap`.
struct AsyncNull(NullBackend);

impl Backend for AsyncNull {
    fn info(&self) -> vfio::backend::BackendInfo {
        self.0.info()
    }
    fn submit(
        &mut self,
        req: &vfio::backend::IoRequest<'_>,
    ) -> std::result::Result<(), vfio::backend::SubmitError> {
        self.0.submit(req)
    }
    fn poll(&mut self, out: &mut Vec<vfio::backend::IoCompletion>) -> usize {
        self.0.poll(out)
    }
    fn inflight(&self) -> usize {
        self.0.inflight()
    }
}

/// The simulated driver of a `--round-cost` device: a split ring (the
/// virtio-blk driver simulator) or a packed one (chains written afresh
/// each time, buffer id = request index).
enum RoundDrv {
    Split(vfio::blk::mock::BlkDriver),
    Packed(vfio::virtq::mock::MockPackedQueue),
}

/// One device of `--round-cost` with its simulated driver.
struct RoundRig {
    drv: RoundDrv,
    mem: vfio::guest_memory::GuestMemory,
    group: Arc<PollGroup>,
    p: vfio::poller::GroupPoller,
    one: u16,
    heads: Vec<u16>,
    latency: bool,
    /// Guest ranges flushed before each timed round (cold rigs).
    cold: Vec<(u64, u64)>,
}

/// Rounds per measurement (short, so that most escape preemption).
const ROUNDS: u64 = 8_192;
/// Turns per device (the minimum over them is taken).
const TURNS: usize = 200;
/// Chains per round in the batch measurement (as QD 128 brings them).
const ROUND_BATCH: usize = 32;
/// Guest address of the packed driver's request headers (32 bytes each:
/// header, then the status byte).
const PACKED_HDRS: u64 = 8 << 20;
/// Guest address of the read buffers (4 KiB each).
const ROUND_DATA: u64 = 16 << 20;

impl RoundRig {
    fn new(spec: RigSpec) -> RoundRig {
        use vfio::blk::mock::BlkDriver;
        use vfio::guest_memory::GuestMemory;
        use vfio::virtq::mock::{Buf, MockPackedQueue, MockQueue};
        use vfio::virtq::{VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};
        let mem = GuestMemory::anonymous(&[(0, 32 << 20)]).expect("memory");
        let backend: Box<dyn Backend> = if spec.asynchronous {
            Box::new(AsyncNull(NullBackend::new(DISK, 4096)))
        } else {
            Box::new(NullBackend::new(DISK, 4096))
        };
        let cfg = BlkConfig::new(&backend.info(), 512, 1, "round").expect("config");
        let mut dev = BlkDevice::new("round", backend, cfg);
        let ring = if spec.packed { VIRTIO_F_RING_PACKED } else { 0 };
        dev.set_features(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX | ring);
        dev.set_memory(mem.clone());
        if spec.qos {
            dev.qos_handle().set(QOS_FAR_ABOVE);
        }
        let (drv, cold) = if spec.packed {
            let q = MockPackedQueue::new(&mem, 0x1000, 256);
            // The driver polls: no interrupts (event suppression disable).
            q.set_driver_event(0, 1);
            dev.start_queue(0, q.config(), MockPackedQueue::initial_base())
                .expect("queue");
            for i in 0..256u64 {
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&VIRTIO_BLK_T_IN.to_le_bytes());
                mem.write(PACKED_HDRS + 32 * i, &h).expect("header");
            }
            let ranges = vec![
                (0x1000, MockPackedQueue::footprint(256)),
                (PACKED_HDRS, 32 * ROUND_BATCH as u64),
            ];
            (RoundDrv::Packed(q), ranges)
        } else {
            let scratch = 0x1000 + MockQueue::footprint(256);
            let mut d = BlkDriver::new(&mem, 0x1000, 256, scratch);
            d.q.set_event_idx(true);
            dev.start_queue(0, d.q.config(), 0).expect("queue");
            let ranges = vec![(0x1000, MockQueue::footprint(256)), (scratch, 256 * 32)];
            (RoundDrv::Split(d), ranges)
        };
        let group = PollGroup::new();
        group.add(DeviceCell::new(dev));
        if !spec.unaccounted {
            group.track_busy();
        }
        if spec.latency {
            group.track_latency();
        }
        let p = group.poller();
        let mut rig = RoundRig {
            drv,
            mem,
            group,
            p,
            one: 0,
            heads: Vec::new(),
            latency: spec.latency,
            cold: if spec.cold { cold } else { Vec::new() },
        };
        // One request through first: then its chain is known and the ring
        // empty.
        rig.one = match &mut rig.drv {
            RoundDrv::Split(d) => {
                d.request(VIRTIO_BLK_T_IN, 0, &[Buf::w(ROUND_DATA, 4096)], false)
                    .head
            }
            RoundDrv::Packed(_) => 0,
        };
        if let RoundDrv::Packed(_) = rig.drv {
            rig.offer_packed(1);
        }
        assert_eq!(rig.p.poll(), 2, "the request is served");
        assert_eq!(rig.pop_used(), Some(rig.one));
        // The batch: distinct heads.
        rig.heads = match &mut rig.drv {
            RoundDrv::Split(d) => (0..ROUND_BATCH)
                .map(|i| {
                    let buf = ROUND_DATA + (i as u64) * 4096;
                    d.request(VIRTIO_BLK_T_IN, 0, &[Buf::w(buf, 4096)], false)
                        .head
                })
                .collect(),
            RoundDrv::Packed(_) => (0..ROUND_BATCH as u16).collect(),
        };
        if let RoundDrv::Packed(_) = rig.drv {
            rig.offer_packed(ROUND_BATCH);
        }
        assert_eq!(rig.p.poll(), 2 * ROUND_BATCH, "the batch is served");
        while rig.pop_used().is_some() {}
        rig
    }

    /// Packed: places requests 0..n (header, 4 KiB read buffer, status).
    fn offer_packed(&mut self, n: usize) {
        use vfio::virtq::mock::Buf;
        let RoundDrv::Packed(q) = &mut self.drv else {
            return;
        };
        for i in 0..n as u64 {
            let hdr = PACKED_HDRS + 32 * i;
            let bufs = [
                Buf::r(hdr, 16),
                Buf::w(ROUND_DATA + 4096 * i, 4096),
                Buf::w(hdr + 16, 1),
            ];
            q.add_chain(&bufs, i as u16);
        }
    }

    /// Makes the one request (`batch` false) or the batch available again.
    fn offer(&mut self, batch: bool) {
        match &mut self.drv {
            RoundDrv::Split(d) => {
                if batch {
                    for &h in &self.heads {
                        d.q.push_avail(h);
                    }
                } else {
                    d.q.push_avail(self.one);
                }
                d.q.publish();
            }
            RoundDrv::Packed(_) => self.offer_packed(if batch { ROUND_BATCH } else { 1 }),
        }
        self.flush();
    }

    fn pop_used(&mut self) -> Option<u16> {
        match &mut self.drv {
            RoundDrv::Split(d) => d.q.pop_used().map(|u| u.0),
            RoundDrv::Packed(q) => q.pop_used().map(|u| u.0),
        }
    }

    /// Cold rigs: flushes the driver's lines from every cache.
    fn flush(&self) {
        #[cfg(target_arch = "x86_64")]
        for &(at, len) in &self.cold {
            let p = self.mem.host_range(at, len).expect("mapped");
            for off in (0..len as usize).step_by(64) {
                // SAFETY: CLFLUSH of a mapped address (inside the range
                // just checked) writes the line back and drops it; it
                // changes no value. MFENCE orders it before the round.
                unsafe { core::arch::x86_64::_mm_clflush(p.add(off)) };
            }
            // SAFETY: a fence, no operands.
            unsafe { core::arch::x86_64::_mm_mfence() };
        }
    }

    /// One turn: (idle round, one-read round, per read in a batch), cycles.
    fn turn(&mut self) -> [u64; 3] {
        let t = tsc();
        for _ in 0..ROUNDS {
            self.p.poll();
        }
        let idle = (tsc() - t) / ROUNDS;
        let mut cyc = 0;
        // Cold rounds flush ~200 lines each: fewer of them.
        let rounds = if self.cold.is_empty() {
            ROUNDS
        } else {
            ROUNDS / 8
        };
        for _ in 0..rounds {
            cyc += self.one_round();
        }
        let busy = cyc / rounds;
        let mut cyc = 0;
        for _ in 0..rounds / ROUND_BATCH as u64 {
            cyc += self.batch_round();
        }
        [idle, busy, cyc / rounds]
    }

    /// One round serving one read: its cycles.
    fn one_round(&mut self) -> u64 {
        self.offer(false);
        let t = tsc();
        let moved = self.p.poll();
        let cyc = tsc() - t;
        assert_eq!(moved, 2, "one request taken and completed per round");
        assert_eq!(self.pop_used(), Some(self.one));
        cyc
    }

    /// One round serving [`ROUND_BATCH`] reads: its cycles.
    fn batch_round(&mut self) -> u64 {
        self.offer(true);
        let t = tsc();
        let moved = self.p.poll();
        let cyc = tsc() - t;
        assert_eq!(
            moved,
            2 * ROUND_BATCH,
            "the batch taken and completed in one round"
        );
        for _ in 0..ROUND_BATCH {
            assert!(self.pop_used().is_some());
        }
        cyc
    }

    /// The histograms counted what they were given.
    fn check(self) {
        // The poller keeps a device that had work locked: let it go first.
        drop(self.p);
        if self.latency {
            let d = self.group.devices();
            let n = d[0].lock().latency().expect("tracked").ops[0].count();
            assert!(n > 0, "the latency histogram counted nothing");
        }
    }
}

/// The table's title lines and column heads.
fn print_header(secs: f64, hz: f64) {
    println!("vhost-user-blk, null backend, 4 KiB reads, simulated polling guest driver on CPU 0, back end on CPU 1");
    println!(
        "TSC {:.2} GHz, {secs} s per run after 0.5 s warm-up",
        hz / 1e9
    );
    println!(
        "{:<8} {:>4} {:>3} {:>11} {:>13} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "target",
        "qd",
        "q",
        "IOPS",
        "IOPS/core",
        "cyc/req",
        "busy cyc",
        "p50 us",
        "p99 us",
        "p99.9us",
        "max us",
        "kicks",
        "errors"
    );
}

/// The `--targets` to run, in their fixed order; `spdk` dropped with a
/// note when no `--spdk` app was given.
fn chosen_targets(a: &Args) -> std::result::Result<Vec<&'static str>, String> {
    let mut targets: Vec<&'static str> = Vec::new();
    for t in ["vswitch", "qsd", "spdk"] {
        if a.targets.iter().any(|x| x == t) {
            targets.push(t);
        }
    }
    if let Some(bad) = a
        .targets
        .iter()
        .find(|x| !["vswitch", "qsd", "spdk"].contains(&x.as_str()))
    {
        return Err(format!(
            "--targets: unknown target {bad:?} (vswitch, qsd, spdk)"
        ));
    }
    if a.spdk.is_none() && targets.contains(&"spdk") {
        targets.retain(|t| *t != "spdk");
        println!("spdk: skipped (no --spdk PATH_TO_VHOST_APP; build one with perf/spdk/build.sh SPDK_TREE)");
    }
    Ok(targets)
}

/// One row of the table: its queue depth and queues, and the run length.
#[derive(Clone, Copy)]
struct Row {
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
}

/// Runs per target of one row: the best run (by IOPS) or the last error.
type Best = Vec<Option<std::result::Result<Result, String>>>;
/// Per target, each run's [`run_stats`] (`None`: it failed).
type PerRun = Vec<Vec<Option<[f64; 4]>>>;

/// `repeat` rounds of every target on one row, each round's pairs printed
/// as they end: the best run per target, every run's stats, and the CPU
/// 0/1 cache-line time before each run.
fn measure_row(
    a: &Args,
    dir: &Path,
    targets: &[&'static str],
    row: Row,
    repeat: usize,
) -> (Best, PerRun, Vec<Vec<f64>>) {
    let Row {
        qd,
        queues,
        secs,
        hz,
    } = row;
    // The targets take turns within each repeat, so that pairs of runs
    // close in time see the same host (its load and, on this VM, a
    // cross-core latency that changes from run to run).
    let mut best: Vec<Option<std::result::Result<Result, String>>> =
        targets.iter().map(|_| None).collect();
    let mut per_run: Vec<Vec<Option<[f64; 4]>>> = targets.iter().map(|_| Vec::new()).collect();
    // Per run, the CPU 0 / CPU 1 cache-line transfer time before it.
    let mut per_xc: Vec<Vec<f64>> = targets.iter().map(|_| Vec::new()).collect();
    for rep in 0..repeat {
        for (ti, &which) in targets.iter().enumerate() {
            // Before the target starts (it spins on CPU 1): how far
            // apart the host has the two CPUs this run.
            let xc = perf::threads::cross_core_ns(1, 0, 0, 8192);
            let r = match which {
                "vswitch" => ours(dir, qd, queues, secs, hz),
                "qsd" => qsd(dir, qd, queues, secs, hz),
                _ => spdk(
                    a.spdk.as_deref().expect("checked"),
                    dir,
                    qd,
                    queues,
                    secs,
                    hz,
                ),
            };
            if let Ok(r) = &r {
                print_run(rep, r, xc);
            }
            per_run[ti].push(r.as_ref().ok().map(|r| run_stats(r, hz)));
            per_xc[ti].push(xc);
            let better = match (&best[ti], &r) {
                (None, _) => true,
                (Some(Err(_)), Ok(_)) => true,
                (Some(Ok(b)), Ok(n)) => n.ops as f64 / n.wall > b.ops as f64 / b.wall,
                _ => false,
            };
            if better {
                best[ti] = Some(r);
            }
        }
        if let Some(v) = targets.iter().position(|t| *t == "vswitch") {
            for (ti, peer) in targets.iter().enumerate().filter(|(ti, _)| *ti != v) {
                if let (Some(Some(a)), Some(Some(b))) = (per_run[v].last(), per_run[ti].last()) {
                    let ratio = |i: usize| if b[i] > 0.0 { a[i] / b[i] } else { 0.0 };
                    println!(
                        "  pair {rep}: vswitch/{peer} IOPS per busy core {:.2}x, per core {:.2}x, p99 {:.2}x",
                        ratio(3),
                        ratio(0),
                        ratio(1)
                    );
                }
            }
        }
    }
    (best, per_run, per_xc)
}

/// Prints each target's best run of a row and keeps it for the JSON lines.
fn print_best(targets: &[&'static str], best: Best, row: Row, rows: &mut Vec<Result>) {
    let Row { qd, queues, hz, .. } = row;
    for (ti, r) in best.into_iter().enumerate() {
        match r.expect("at least one run") {
            Ok(r) => {
                let iops = r.ops as f64 / r.wall;
                let per_core = r.ops as f64 / r.backend_cpu.max(1e-9);
                let cyc = r.backend_cpu * hz / r.ops.max(1) as f64;
                let us = |p: f64| r.hist.value_at_quantile(p) as f64 / 1000.0;
                let busy = r
                    .busy_per_req()
                    .map_or("-".to_string(), |c| format!("{c:.0}"));
                println!(
                    "{:<8} {:>4} {:>3} {:>11.0} {:>13.0} {:>9.0} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>8} {:>7}",
                    r.target, r.qd, r.queues, iops, per_core, cyc, busy, us(0.5), us(0.99), us(0.999), r.hist.max() as f64 / 1000.0, r.kicks, r.errors
                );
                rows.push(r);
            }
            Err(e) => println!("{:<8} {qd:>4} {queues:>3} failed: {e}", targets[ti]),
        }
    }
}

/// The pairs' medians, quartiles and same-placement median of a row,
/// printed and kept for the verdicts.
fn summarise_pairs(
    targets: &[&'static str],
    per_run: &PerRun,
    per_xc: &[Vec<f64>],
    row: Row,
    summary: &mut Vec<(usize, u16, &'static str, [f64; 5])>,
) {
    let Row { qd, queues, .. } = row;
    if let Some(v) = targets.iter().position(|t| *t == "vswitch") {
        for (ti, peer) in targets.iter().enumerate().filter(|(ti, _)| *ti != v) {
            if let Some(m) = pair_medians(&per_run[v], &per_run[ti]) {
                summary.push((qd, queues, *peer, m));
                let busy = if m[3] > 0.0 {
                    format!(", IOPS per busy core {:.2}x", m[3])
                } else {
                    String::new()
                };
                println!(
                    "  pairs (median of {}): vswitch/{peer} IOPS per core {:.2}x{busy}, p99 {:.2}x, p50 {:.2}x",
                    m[4] as usize, m[0], m[1], m[2]
                );
                if let Some(q) = busy_quartiles(&per_run[v], &per_run[ti]) {
                    println!(
                        "  pairs: vswitch/{peer} IOPS per busy core quartiles {:.2}x .. {:.2}x (min {:.2}x, max {:.2}x)",
                        q.q1, q.q3, q.min, q.max
                    );
                }
                let kept = same_placement(&per_run[v], &per_run[ti], &per_xc[v], &per_xc[ti]);
                if let Some((med, n)) = kept {
                    println!(
                        "  pairs whose two runs saw the same CPU 0/1 transfer time (within {SAME_PLACEMENT}x): \
                         vswitch/{peer} IOPS per busy core {med:.2}x (median of {n})"
                    );
                }
            }
        }
    }
}

/// The verdict per row against each peer, from the pairs' medians.
fn print_verdicts(summary: &[(usize, u16, &str, [f64; 5])]) {
    println!();
    // The goal's metric is IOPS per busy core: what a request costs the
    // back end's polling core (both targets count busy poll rounds by the
    // same rule), fair whoever was the bottleneck. IOPS per core (CPU
    // time) is the driver's rate for any busy-polling target once the
    // single driver thread saturates. Medians of the alternating pairs.
    for peer in ["qsd", "spdk"] {
        for &(qd, queues, p, m) in summary.iter().filter(|s| s.2 == peer) {
            let verdict = if peer != "spdk" || m[3] == 0.0 {
                ""
            } else if m[3] >= 1.5 && m[1] <= 1.0 {
                "  goal met (>= 1.5x per busy core, p99 no worse)"
            } else {
                "  goal NOT met (>= 1.5x per busy core, p99 no worse)"
            };
            let busy = if m[3] > 0.0 {
                format!("IOPS per busy core {:.2}x, ", m[3])
            } else {
                String::new()
            };
            println!(
                "qd {qd:>3} queues {queues}: vswitch/{p} {busy}IOPS per core {:.2}x, p99 {:.2}x, p50 {:.2}x (medians of {} pairs){verdict}",
                m[0], m[1], m[2], m[4] as usize
            );
        }
    }
}

/// One JSON line per best run.
fn print_json(rows: &[Result], hz: f64) {
    for r in rows {
        println!(
            "{{\"bench\":\"blk_vhost\",\"target\":\"{}\",\"qd\":{},\"queues\":{},\"iops\":{:.0},\"iops_per_core\":{:.0},\"cycles_per_req\":{:.0},\"busy_cycles_per_req\":{:.0},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"kicks\":{},\"errors\":{}}}",
            r.target,
            r.qd,
            r.queues,
            r.ops as f64 / r.wall,
            r.ops as f64 / r.backend_cpu.max(1e-9),
            r.backend_cpu * hz / r.ops.max(1) as f64,
            r.busy_per_req().unwrap_or(-1.0),
            r.hist.value_at_quantile(0.5),
            r.hist.value_at_quantile(0.99),
            r.hist.value_at_quantile(0.999),
            r.hist.max(),
            r.kicks,
            r.errors
        );
    }
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let table = match parse_rows(&a.rows) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (repeat, secs) = (a.repeat.max(1), a.secs);
    let _cleanup = perf::cleanup::install("blk_vhost");
    let hz = tsc_hz();
    let dir = std::env::temp_dir().join(format!("blk-vhost-bench-{}", std::process::id()));
    perf::cleanup::record(perf::cleanup::Resource::Path(dir.clone()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    if a.metrics_cost {
        metrics_cost(&dir, repeat, secs, hz);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    if let Some(n) = a.round_batches {
        let has = |f: &str| a.round_features.iter().any(|x| x == f);
        round_batches(has("qos"), has("metrics"), has("one"), has("async"), n);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    if a.round_cost {
        if a.packed {
            round_cost_packed();
        } else {
            round_cost(a.asynchronous);
        }
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    if a.qos_cost {
        qos_cost(&dir, repeat, secs, hz);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    print_header(secs, hz);
    let targets = match chosen_targets(&a) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut rows: Vec<Result> = Vec::new();
    let mut summary: Vec<(usize, u16, &str, [f64; 5])> = Vec::new();
    for &(qd, queues) in &table {
        let row = Row {
            qd,
            queues,
            secs,
            hz,
        };
        let (best, per_run, per_xc) = measure_row(&a, &dir, &targets, row, repeat);
        print_best(&targets, best, row, &mut rows);
        summarise_pairs(&targets, &per_run, &per_xc, row, &mut summary);
    }
    print_verdicts(&summary);
    print_json(&rows, hz);
    let _ = std::fs::remove_dir_all(&dir);
}
