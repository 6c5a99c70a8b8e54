//! vhost-user-blk served from an iSCSI LU: this project's path (`vfio`'s
//! vhost-user-blk device + `blk-iscsi`'s `IscsiBackend` on the user-mode
//! initiator, one busy-polling thread) against QEMU's (`qemu-storage-daemon`'s
//! vhost-user-blk export on its libiscsi block driver, `driver=iscsi`, in an
//! iothread), in the same run, against the same tgtd on loopback with a
//! file-backed LUN (sparse, so reads come from the page cache).
//!
//! The simulated guest driver (`vfio::vhost_user::mock_frontend`, as in
//! `blk_vhost`) keeps QD 4 KiB reads in flight on one queue, on CPU 0; the
//! back end runs on CPU 1; tgtd floats. Columns as in `blk_vhost`: IOPS, IOPS
//! per back-end core, back-end cycles per request, submit-to-used latency.
//!
//! `vs-utcp` is `vswitch` with the session on user-space TCP (`usertcp`:
//! smoltcp on a DPDK net_af_packet port) to a second tgtd in a network
//! namespace behind a veth (the other rows use loopback).
//!
//! `qsd-veth` is `qsd` against that same namespaced tgtd over the veth
//! (kernel TCP; the host end gets an address for the run): the like-for-like
//! peer of the veth rows.
//!
//! `vs-one` is the whole system in one process, as the product runs it:
//! `vswitch run --port net_af_packet0,iface=VETH --host-ip ... --blk
//! SOCK=iscsi://...` (the binary next to this benchmark, or `$VSWITCH_BIN`;
//! build it with `cargo build --release`), pinned to CPU 1, where ONE core
//! polls the switch, the host TCP stack (smoltcp on the switch's internal
//! port) and the virtqueues; the session's frames cross the flow table and
//! leave by the af_packet port to the namespaced tgtd, like `vs-utcp`'s.
//! `vs-one-a` is the same with `--poll adaptive` (the core sleeps 20 us per
//! round after 20000 idle rounds of switch and storage); `vs-one-w` with
//! `--poll wait` (spin 50 us after completions, then block in `ppoll` on the
//! guest's kicks and the af_packet port's socket, at most 1 ms).
//!
//! `vswitch` busy-polls (reading the socket every round); `vs-watch` is the
//! same reading only after an io_uring `ReadyWatch` wake-up; `vs-adapt` is the adaptive
//! poller (sleeps 20 us after 2000 idle rounds); `vs-wait` is
//! `PollMode::Wait` (`--poll wait`: spin 50 us after completions, then block
//! in `ppoll` on the iSCSI socket and the queue's kick eventfd, which it
//! asks the driver to use just before, at most 1 ms); `vs-wait-rw` is
//! `vs-wait` with the `ReadyWatch`. On a 2-core machine with tgtd
//! on the same host, a busy poller and the busy guest driver leave tgtd no
//! core of its own: read the ratios with that in mind. Each row is the median
//! (by IOPS) of `--repeat` runs.
//!
//! Then (`--targets` names `write`, `one-write`, `cache`, `iperf-veth`, `one-cache`; all by default):
//! * 4 KiB writes uniform over 64 MiB, `vs-wait` against qsd;
//! * the cached path: `vswitch` with a 32 MiB write-through cache
//!   (`vfio::cache`, warmed by one pass), reads uniform over a span sized for
//!   ~3% (the whole LU), ~50%, ~90% and 100% hits (measured hit ratio
//!   printed), against qsd reading uniformly over the LU uncached;
//! * `one-write`: the same writes through the switch, `vs-one-w` against
//!   qsd-veth;
//! * `iperf-veth`: libiscsi's `iscsi-perf` (an initiator alone, kernel TCP)
//!   over the same veth, 4 KiB random reads, with `vs-one-w` against it;
//! * `one-cache`: the same cached rows through the switch: the
//!   one-process system (`vs-one-w` with `--blk-cache 32M`, warmed by one run
//!   of the same workload, hit ratio from its stats file) against
//!   qsd-veth reading uniformly over the LU;
//! * verdicts against issue 7's goal (>= 1x the kernel path's IOPS with less
//!   CPU per I/O uncached; >= 10x with cache hits).
//!
//! CPU per I/O ("cyc/req") is the back end's CPU time (this process minus the
//! driver thread, or qsd's process) in TSC cycles per request.
//!
//! Needs tgt and qemu-block-extra (qemu-storage-daemon's iscsi driver).
//!
//! `--mtu 9000` gives the veth jumbo frames (both ends; the one-process
//! system then runs with `--host-mtu 9000` and 9 KiB af_packet ring frames,
//! qsd's kernel TCP uses the MTU as it is).
//!
//! Run: `cargo run --release -p perf --bin blk_iscsi -- [--secs N] [--repeat N] [--mtu BYTES]
//! [--targets vswitch,vs-watch,vs-adapt,vs-wait,vs-wait-rw,vs-utcp,vs-one,vs-one-a,vs-one-w,qsd,qsd-veth,write,one-write,cache,iperf-veth,one-cache]`
//! (`BLK_ISCSI_WAIT=SPIN_US,MAX_SLEEP_US` tunes the Wait poller).

#[path = "../../../iscsi-initiator/tests/common/mod.rs"]
mod tgt;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blk_iscsi::{IscsiBackend, IscsiSpec};
use vfio::backend::{Backend, IoCompletion, IoOp, IoRequest, IoStatus};
use vfio::blk::{BlkConfig, BlkDevice};
use vfio::cache::{CacheConfig, CachedBackend, WriteMode, BLOCK};
use vfio::guest_memory::GuestMemory;
use vfio::iovec::IoVec;
use vfio::poller::{DeviceCell, PollGroup, PollMode};
use vfio::vhost_user::BlkServer;

use perf::cleanup::{self, Resource};
use perf::vhost_driver::*;

const LUN_BYTES: u64 = 1 << 30;

/// The blocking poller of the `vs-wait` and cached rows (`--poll wait`):
/// after completions spin 50 us (the driver's next requests), after sends
/// not at all; then sleep in `ppoll` on the iSCSI socket and the queue's kick
/// eventfd for at most 1 ms.
const WAIT: PollMode = PollMode::Wait {
    spin: Duration::from_micros(50),
    max_sleep: Duration::from_millis(1),
};

/// tgtd in a namespace behind a veth, for the user-TCP rows; removed on drop.
struct Veth {
    ns: String,
    host_if: String,
    subnet: String,
    tgtd: Option<tgt::Tgtd>,
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.tgtd = None;
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
    }
}

fn sh(cmd: &str) -> std::result::Result<(), String> {
    let o = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd}: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// The veth's MTU (`--mtu`, default 1500): both ends, and with it the
/// one-process system's `--host-mtu` and af_packet ring frames.
static VETH_MTU: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1500);

fn veth_mtu() -> u32 {
    VETH_MTU.load(Ordering::Relaxed)
}

fn veth_tgtd() -> std::result::Result<Veth, String> {
    let id = std::process::id() % 1_000_000;
    let mut v = Veth {
        ns: format!("vswbi{id}"),
        host_if: format!("vbi{id}h"),
        subnet: format!("10.80.{}", id % 250 + 1),
        tgtd: None,
    };
    let (ns, h, n, sub) = (&v.ns, &v.host_if, format!("vbi{id}n"), &v.subnet);
    let mtu = veth_mtu();
    cleanup::record(Resource::Netns(ns.clone()));
    cleanup::record(Resource::Link(h.clone()));
    cleanup::record(Resource::Path(std::env::temp_dir().join(format!(
        "vswitch-iscsi-blk-iscsi-bench-veth-{}",
        std::process::id()
    ))));
    sh(&format!("ip netns add {ns} && ip link add {h} mtu {mtu} type veth peer name {n} mtu {mtu} && ip link set {n} netns {ns} && ip -n {ns} addr add {sub}.2/24 dev {n} && ip -n {ns} link set {n} up && ip -n {ns} link set lo up && ip link set {h} up && ip netns exec {ns} ethtool -K {n} tx off >/dev/null && ip addr add {sub}.3/24 dev {h}"))?;
    v.tgtd = Some(tgt::Tgtd::start_in_netns(
        "blk-iscsi-bench-veth",
        LUN_BYTES,
        ns,
        &format!("{sub}.2"),
    ));
    sh(&format!("ip addr flush dev {h}"))?;
    Ok(v)
}

/// A `vswitch` run with a workload and optionally the block cache
/// (`cache`: pool bytes, write-through, warmed first); returns the run and
/// the cache's hit ratio over it.
#[allow(clippy::too_many_arguments)]
fn ours_with(
    dir: &Path,
    t: &tgt::Tgtd,
    qd: usize,
    secs: f64,
    hz: f64,
    name: &'static str,
    user_tcp: Option<&Veth>,
    work: &Workload,
    cache: Option<u64>,
) -> std::result::Result<(Result, Option<f64>), String> {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let sock = dir.join(format!("{name}-{qd}.sock"));
    let mode = match name {
        "vs-adapt" => PollMode::Adaptive {
            spin_rounds: 2_000,
            sleep: Duration::from_micros(20),
        },
        n if n.starts_with("vs-wait") || n.starts_with("cache") => wait_mode(),
        _ => PollMode::Busy,
    };
    let spec = IscsiSpec::parse(&format!("iscsi://{}/{}/1", t.portal(), t.iqn))?;
    let backend = Box::new(match user_tcp {
        None if name == "vs-watch" || name == "vs-wait-rw" => IscsiBackend::connect_with(
            &spec,
            1024,
            Box::new(blk_iscsi::link::KernelTcp::with_ready_watch()),
        )?,
        None => IscsiBackend::connect(&spec, 1024)?,
        Some(v) => {
            let run = RUN.fetch_add(1, Ordering::Relaxed);
            let cfg = usertcp::UserTcpConfig::parse(&format!(
                "{}.1/24@net_af_packet{run},iface={}",
                v.subnet, v.host_if
            ))?;
            IscsiBackend::connect_with(&spec, 1024, Box::new(usertcp::UserTcp::open(&cfg)?))?
        }
    });
    let (backend, counters): (Box<dyn Backend>, _) = match cache {
        None => (backend, None),
        Some(bytes) => {
            let mut c =
                CachedBackend::new(backend, CacheConfig::new(bytes, WriteMode::WriteThrough))?;
            if let Some((first, count)) = work.blocks {
                warm(&mut c, first, count.min(2 * bytes / BLOCK))?;
            }
            let n = c.counters();
            (Box::new(c), Some(n))
        }
    };
    let cfg = BlkConfig::new(&backend.info(), 512, 1, "bench")?;
    let dev = DeviceCell::new(BlkDevice::new("bench", backend, cfg));
    let group = PollGroup::new();
    group.add(Arc::clone(&dev));
    pin(1);
    let poller = group.spawn(mode).map_err(|e| e.to_string())?;
    let server = BlkServer::bind(&sock, dev).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let srv = std::thread::spawn(move || server.run(&s2));
    pin(0);
    wait_socket(&sock);
    let s0 = counters.as_ref().map(|c| c.snapshot());
    let r = drive_workload(&sock, qd, 1, secs, hz, &Cpu::InProcess, name, work);
    let hit = match (&counters, s0) {
        (Some(c), Some(s0)) => {
            let s1 = c.snapshot();
            let (h, m) = (s1.hits - s0.hits, s1.misses - s0.misses);
            Some(h as f64 / (h + m).max(1) as f64)
        }
        _ => None,
    };
    stop.store(true, Ordering::Release);
    group.stop();
    let _ = poller.join();
    let _ = srv.join();
    r.map(|r| (r, hit))
}

/// Reads blocks `first..first + count` once through the cache, 32 at a time,
/// straight through the backend API (before the device exists).
fn warm(c: &mut CachedBackend, first: u64, count: u64) -> std::result::Result<(), String> {
    const QD: usize = 32;
    let mem = GuestMemory::anonymous(&[(0, QD * BLOCK as usize)]).map_err(|e| e.to_string())?;
    let bufs: Vec<IoVec> = (0..QD)
        .map(|i| mem.iovec(i as u64 * BLOCK, BLOCK as u32))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut free: Vec<usize> = (0..QD).collect();
    let mut out: Vec<IoCompletion> = Vec::with_capacity(QD);
    let (mut next, mut done) = (0u64, 0u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while done < count {
        let mut sent = false;
        while next < count {
            let Some(&slot) = free.last() else { break };
            let iovs = [bufs[slot]];
            let req = IoRequest {
                id: slot as u64,
                op: IoOp::Read,
                offset: (first + next) * BLOCK,
                len: BLOCK,
                iovs: &iovs,
            };
            if c.submit(&req).is_err() {
                break;
            }
            free.pop();
            next += 1;
            sent = true;
        }
        if sent {
            c.commit();
        }
        out.clear();
        c.poll(&mut out);
        for r in &out {
            if r.status != IoStatus::Ok {
                return Err(format!("warm-up read failed: {:?}", r.status));
            }
            free.push(r.id as usize);
            done += 1;
        }
        if std::time::Instant::now() > deadline {
            return Err("warm-up took over 120 s".into());
        }
    }
    Ok(())
}

/// The one-process system (`vswitch run` with `--blk` and `--host-ip`) as a
/// child pinned to CPU 1.
fn one_process(
    dir: &Path,
    v: &Veth,
    qd: usize,
    secs: f64,
    hz: f64,
    name: &'static str,
) -> std::result::Result<Result, String> {
    one_process_with(dir, v, qd, secs, hz, name, &Workload::default(), None).map(|(r, _)| r)
}

/// [`one_process`] with a workload and optionally its block cache
/// (`--blk-cache BYTES`, write-through, warmed by `secs` of the same
/// workload first); returns the run and the cache's hit ratio over it (from
/// the device's stats file).
#[allow(clippy::too_many_arguments)]
fn one_process_with(
    dir: &Path,
    v: &Veth,
    qd: usize,
    secs: f64,
    hz: f64,
    name: &'static str,
    work: &Workload,
    cache: Option<u64>,
) -> std::result::Result<(Result, Option<f64>), String> {
    let t = v.tgtd.as_ref().expect("started");
    let sock = dir.join(format!("{name}-{qd}.sock"));
    let _ = std::fs::remove_file(&sock);
    let bin = perf::proc::vswitch_bin();
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it (cargo build --release) or set VSWITCH_BIN",
            bin.display()
        ));
    }
    let log = dir.join(format!("{name}-{qd}.log"));
    let stats = dir.join(format!("{name}-{qd}.stats"));
    let mut cmd = Command::new(bin);
    cmd.arg("run");
    if let Some(bytes) = cache {
        cmd.arg("--blk-cache")
            .arg(format!("{}M", bytes >> 20))
            .arg("--blk-stats-file")
            .arg(&stats);
    }
    cmd
        .arg("--eal")
        .arg(format!(
            "-l 1 {} --no-pci --no-telemetry --log-level=*:error --file-prefix vsw-bench-one-{}-{qd}",
            perf::proc::eal_memory_args().join(" "),
            std::process::id()
        ))
        .arg("--port")
        .arg(if veth_mtu() > 1500 {
            format!(
                "net_af_packet0,iface={},framesz=9216,blocksz=36864",
                v.host_if
            )
        } else {
            format!("net_af_packet0,iface={}", v.host_if)
        })
        .arg("--host-mtu")
        .arg(veth_mtu().to_string())
        .arg("--host-ip")
        .arg(format!("{}.1/24", v.subnet))
        .arg("--blk")
        .arg(format!(
            "{}=iscsi://{}/{}/1",
            sock.display(),
            t.portal(),
            t.iqn
        ))
        .args(["--no-control", "--stats-interval", "0", "--poll"])
        .arg(match name {
            "vs-one-a" => "adaptive",
            "vs-one" => "busy",
            _ => "wait",
        })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(&log).map_err(|e| e.to_string())?,
        ));
    pin_child(&mut cmd, 1);
    let mut child = Reaper(cmd.spawn().map_err(|e| format!("vswitch run: {e}"))?);
    cleanup::record_child(&child.0);
    pin(0);
    let t0 = std::time::Instant::now();
    while !sock.exists() {
        if child.0.try_wait().ok().flatten().is_some() || t0.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "vswitch run did not serve {}: {}",
                sock.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = Cpu::Pid(child.0.id());
    if cache.is_none() {
        return drive_workload(&sock, qd, 1, secs, hz, &pid, name, work).map(|r| (r, None));
    }
    drive_workload(&sock, qd, 1, secs, hz, &pid, "warm-up", work)?;
    // The stats file is republished every 250 ms.
    let counts = || -> std::result::Result<(u64, u64), String> {
        std::thread::sleep(Duration::from_millis(300));
        let st = std::fs::read_to_string(&stats).map_err(|e| format!("stats file: {e}"))?;
        let get = |k: &str| -> std::result::Result<u64, String> {
            let at = st
                .find(&format!("\"{k}\":"))
                .ok_or(format!("no {k} in {st}"))?;
            st[at + k.len() + 3..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or(format!("bad {k} in {st}"))
        };
        Ok((get("cache_hits")?, get("cache_misses")?))
    };
    let (h0, m0) = counts()?;
    let r = drive_workload(&sock, qd, 1, secs, hz, &pid, name, work)?;
    let (h1, m1) = counts()?;
    let (h, m) = (h1 - h0, m1 - m0);
    Ok((r, Some(h as f64 / (h + m).max(1) as f64)))
}

/// `qsd` against the namespaced tgtd over the same veth the user-TCP rows
/// use (kernel TCP on the host end, which gets an address for the run).
fn qsd_veth(
    dir: &Path,
    v: &Veth,
    qd: usize,
    secs: f64,
    hz: f64,
) -> std::result::Result<Result, String> {
    qsd_veth_with(dir, v, qd, secs, hz, &Workload::default())
}

/// [`qsd_veth`] with a workload.
fn qsd_veth_with(
    dir: &Path,
    v: &Veth,
    qd: usize,
    secs: f64,
    hz: f64,
    work: &Workload,
) -> std::result::Result<Result, String> {
    sh(&format!("ip addr add {}.3/24 dev {}", v.subnet, v.host_if))?;
    let r = qsd_with(
        dir,
        v.tgtd.as_ref().expect("started"),
        qd,
        secs,
        hz,
        "qsd-veth",
        work,
    );
    sh(&format!("ip addr flush dev {}", v.host_if))?;
    r
}

fn qsd(
    dir: &Path,
    t: &tgt::Tgtd,
    qd: usize,
    secs: f64,
    hz: f64,
) -> std::result::Result<Result, String> {
    qsd_with(dir, t, qd, secs, hz, "qsd", &Workload::default())
}

/// qemu-storage-daemon + libiscsi under a workload.
fn qsd_with(
    dir: &Path,
    t: &tgt::Tgtd,
    qd: usize,
    secs: f64,
    hz: f64,
    name: &'static str,
    work: &Workload,
) -> std::result::Result<Result, String> {
    let sock = dir.join(format!("{name}-{qd}.sock"));
    let mut cmd = Command::new("qemu-storage-daemon");
    cmd.arg("--blockdev")
        .arg(format!(
            "driver=iscsi,node-name=n0,transport=tcp,portal={},target={},lun=1,initiator-name=iqn.2026-01.dev.vswitch:qsd,cache.direct=on",
            t.portal(),
            t.iqn
        ))
        .args(["--object", "iothread,id=io0", "--export"])
        .arg(format!(
            "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path={},writable=on,num-queues=1,iothread=io0",
            sock.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    pin_child(&mut cmd, 1);
    let child = Reaper(cmd.spawn().map_err(|e| {
        format!("qemu-storage-daemon (Debian packages qemu-system-common, qemu-block-extra): {e}")
    })?);
    cleanup::record_child(&child.0);
    pin(0);
    wait_socket(&sock);
    drive_workload(&sock, qd, 1, secs, hz, &Cpu::Pid(child.0.id()), name, work)
}

/// [`WAIT`], or as `BLK_ISCSI_WAIT=SPIN_US,MAX_SLEEP_US` says (tuning).
fn wait_mode() -> PollMode {
    let env = std::env::var("BLK_ISCSI_WAIT").unwrap_or_default();
    let mut it = env.split(',').map(|v| v.parse::<u64>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(spin), Some(us)) => PollMode::Wait {
            spin: Duration::from_micros(spin),
            max_sleep: Duration::from_micros(us),
        },
        _ => WAIT,
    }
}

fn iops(r: &Result) -> f64 {
    r.ops as f64 / r.wall
}

/// Back-end CPU cycles per request.
fn cycles(r: &Result, hz: f64) -> f64 {
    r.backend_cpu * hz / r.ops.max(1) as f64
}

/// The run with the median `key` among the successful ones.
fn median_of<T>(
    runs: Vec<std::result::Result<T, String>>,
    key: impl Fn(&T) -> f64,
) -> std::result::Result<T, String> {
    let mut err = String::from("no run");
    let mut ok = Vec::new();
    for r in runs {
        match r {
            Ok(r) => ok.push(r),
            Err(e) => err = e,
        }
    }
    if ok.is_empty() {
        return Err(err);
    }
    ok.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let m = ok.len() / 2;
    Ok(ok.swap_remove(m))
}

/// libiscsi's `iscsi-perf` (the issue's named kernel-TCP peer: an initiator
/// alone, no VM and no virtqueue) over the veth to the namespaced tgtd:
/// 4 KiB random reads over the LU at `qd` for `secs` (whole seconds), pinned
/// to CPU 1 like the back ends. Returns (IOPS, iscsi-perf's CPU cycles per
/// read).
fn iscsi_perf_veth(
    v: &Veth,
    qd: usize,
    secs: f64,
    hz: f64,
) -> std::result::Result<(f64, f64), String> {
    let t = v.tgtd.as_ref().expect("started");
    let rusage = || {
        // SAFETY: `ru` is a valid, writable rusage; getrusage only writes it.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
            ru
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    let secs = secs.ceil().max(1.0) as u64;
    sh(&format!("ip addr add {}.3/24 dev {}", v.subnet, v.host_if))?;
    let mut cmd = Command::new("iscsi-perf");
    cmd.args(["-i", "iqn.2026-01.dev.vswitch:iscsi-perf", "-m"])
        .arg(qd.to_string())
        .args(["-b", "8", "-r", "-t"])
        .arg(secs.to_string())
        .arg(format!("iscsi://{}/{}/1", t.portal(), t.iqn));
    pin_child(&mut cmd, 1);
    let cpu0 = rusage();
    let out = cmd.output();
    let cpu = rusage() - cpu0;
    sh(&format!("ip addr flush dev {}", v.host_if))?;
    let out = out.map_err(|e| format!("iscsi-perf (Debian libiscsi-bin): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let iops: f64 = text
        .rsplit("iops average ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no IOPS in iscsi-perf's output: {text}"))?;
    Ok((iops, cpu * hz / (iops * secs as f64).max(1.0)))
}

/// Pool of the cached rows.
const CACHE_BYTES: u64 = 32 << 20;

/// What one side of the cached rows runs: (qd, row name, workload) → the
/// run and the cache's hit ratio.
type CachedRun<'a> = dyn Fn(usize, &'static str, &Workload) -> std::result::Result<(Result, Option<f64>), String>
    + 'a;

/// Cached rows: ours (`cached`: a 32 MiB write-through cache, warmed first),
/// 4 KiB reads uniform over a span sized for a hit ratio, against `peer`
/// (qemu-storage-daemon + libiscsi reading uniformly over the whole LU,
/// uncached: the kernel-TCP path), repeats interleaved. `tag` prefixes the
/// row names.
fn cached_section(
    title: &str,
    tag: &str,
    repeat: usize,
    hz: f64,
    cached: &CachedRun<'_>,
    peer: &CachedRun<'_>,
) {
    let cache_blocks = CACHE_BYTES / BLOCK;
    let lun_blocks = LUN_BYTES / BLOCK;
    // (name, blocks read): ~3% (the LU is 32x the cache), ~50%, ~90%, all.
    let names: [&'static str; 4] = match tag {
        "one" => ["one-c-0", "one-c-50", "one-c-90", "one-c-100"],
        _ => ["cache-0", "cache-50", "cache-90", "cache-100"],
    };
    let cases: [(&'static str, u64); 4] = [
        (names[0], lun_blocks),
        (names[1], 2 * cache_blocks),
        (names[2], cache_blocks * 10 / 9),
        (names[3], cache_blocks * 3 / 4),
    ];
    println!(
        "\n== cached: {title} --cache {} MiB (write-through, CLOCK, warmed) vs qsd+libiscsi uncached; 4 KiB reads uniform over a span; median of {repeat}",
        CACHE_BYTES >> 20
    );
    println!(
        "{:<10} {:>4} {:>9} {:>7} {:>10} {:>9} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "target",
        "qd",
        "span MiB",
        "hit",
        "IOPS",
        "cyc/req",
        "p50 us",
        "p99 us",
        "p99.9us",
        "x qsd IOPS",
        "qsd/our cyc"
    );
    let peer_work = Workload {
        write: false,
        blocks: Some((0, lun_blocks)),
    };
    let mut goal = Vec::new();
    for qd in [1usize, 32] {
        let mut peer_runs = Vec::new();
        let mut case_runs: Vec<Vec<_>> = cases.iter().map(|_| Vec::new()).collect();
        for _ in 0..repeat {
            peer_runs.push(peer(qd, "qsd-rand", &peer_work).map(|(r, _)| r));
            for (i, &(name, span)) in cases.iter().enumerate() {
                let work = Workload {
                    write: false,
                    blocks: Some((0, span)),
                };
                case_runs[i].push(cached(qd, name, &work));
            }
        }
        let peer = median_of(peer_runs, iops);
        let row = |name: &str, span: u64, r: &Result, hit: Option<f64>, peer: Option<&Result>| {
            let us = |p: f64| r.hist.value_at_quantile(p) as f64 / 1000.0;
            let (xi, xc) = match peer {
                Some(p) => (iops(r) / iops(p), cycles(p, hz) / cycles(r, hz)),
                None => (1.0, 1.0),
            };
            println!(
                "{:<10} {:>4} {:>9} {:>7} {:>10.0} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>9.2}x {:>9.2}x",
                name,
                qd,
                (span * BLOCK) >> 20,
                hit.map(|h| format!("{:.1}%", h * 100.0)).unwrap_or("-".into()),
                iops(r),
                cycles(r, hz),
                us(0.5),
                us(0.99),
                us(0.999),
                xi,
                xc
            );
            println!(
                "{{\"bench\":\"blk_iscsi_cache\",\"target\":\"{name}\",\"qd\":{qd},\"span_blocks\":{span},\"hit_ratio\":{:.4},\"iops\":{:.0},\"cycles_per_req\":{:.0},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"x_qsd_iops\":{xi:.3},\"qsd_over_our_cycles\":{xc:.3},\"errors\":{}}}",
                hit.unwrap_or(0.0),
                iops(r),
                cycles(r, hz),
                r.hist.value_at_quantile(0.5),
                r.hist.value_at_quantile(0.99),
                r.hist.value_at_quantile(0.999),
                r.errors
            );
            (xi, xc)
        };
        match &peer {
            Ok(p) => {
                row("qsd-rand", lun_blocks, p, None, None);
            }
            Err(e) => println!("qsd-rand   {qd:>4} failed: {e}"),
        }
        for (i, &(name, span)) in cases.iter().enumerate() {
            let runs = std::mem::take(&mut case_runs[i]);
            match median_of(runs, |(r, _)| iops(r)) {
                Ok((r, hit)) => {
                    let (xi, xc) = row(name, span, &r, hit, peer.as_ref().ok());
                    goal.push((name, qd, hit.unwrap_or(0.0), xi, xc));
                }
                Err(e) => println!("{name:<10} {qd:>4} failed: {e}"),
            }
        }
    }
    println!("\ngoal with cache hits: >= 10x the kernel path's IOPS");
    for (name, qd, hit, xi, xc) in goal {
        println!(
            "  {name:<10} qd {qd:>2}: hit {:>5.1}%  IOPS {xi:>6.2}x qsd, CPU/IO {:.2}x lower: {}",
            hit * 100.0,
            xc,
            if xi >= 10.0 { "MET" } else { "not met" }
        );
    }
}

/// One side of the write rows: (qd, workload) → the run.
type WriteRun<'a> = dyn Fn(usize, &Workload) -> std::result::Result<Result, String> + 'a;

/// 4 KiB writes, uniform over the first 64 MiB: `ours` against `peer`
/// (qsd + libiscsi), repeats interleaved; `label` names the pair in the
/// verdict lines.
fn write_section(label: &str, repeat: usize, hz: f64, ours: &WriteRun<'_>, peer: &WriteRun<'_>) {
    let work = Workload {
        write: true,
        blocks: Some((0, (64 << 20) / BLOCK)),
    };
    println!("\n== 4 KiB writes (uniform over 64 MiB), {label}, median of {repeat}");
    for qd in [1usize, 32] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            a.push(ours(qd, &work));
            b.push(peer(qd, &work));
        }
        let (a, b) = (median_of(a, iops), median_of(b, iops));
        for r in [&a, &b] {
            match r {
                Ok(r) => {
                    let us = |p: f64| r.hist.value_at_quantile(p) as f64 / 1000.0;
                    println!(
                        "{:<10} {:>4} {:>10.0} IOPS {:>9.0} cyc/req  p50 {:>8.1} us  p99 {:>8.1} us  errors {}",
                        r.target,
                        qd,
                        iops(r),
                        cycles(r, hz),
                        us(0.5),
                        us(0.99),
                        r.errors
                    );
                    println!(
                        "{{\"bench\":\"blk_iscsi_write\",\"target\":\"{}\",\"qd\":{qd},\"iops\":{:.0},\"cycles_per_req\":{:.0},\"p50_ns\":{},\"p99_ns\":{},\"errors\":{}}}",
                        r.target,
                        iops(r),
                        cycles(r, hz),
                        r.hist.value_at_quantile(0.5),
                        r.hist.value_at_quantile(0.99),
                        r.errors
                    );
                }
                Err(e) => println!("write qd {qd} failed: {e}"),
            }
        }
        if let (Ok(a), Ok(b)) = (&a, &b) {
            println!(
                "qd {qd:>2} writes: {label} IOPS {:.2}x, CPU per I/O {:.2}x lower: {}",
                iops(a) / iops(b),
                cycles(b, hz) / cycles(a, hz),
                verdict(a, b, hz)
            );
        }
    }
}

/// The uncached goal: at least the kernel path's IOPS with less CPU per I/O.
fn verdict(ours: &Result, peer: &Result, hz: f64) -> &'static str {
    if iops(ours) >= iops(peer) && cycles(ours, hz) < cycles(peer, hz) {
        "MET"
    } else {
        "not met"
    }
}

/// vhost-user-blk served from an iSCSI LU: this project's path (in-process,
/// and the one-process `vswitch run` through the switch) against
/// qemu-storage-daemon on libiscsi, against the same tgtd.
#[derive(clap::Parser)]
#[command(name = "blk_iscsi")]
struct Args {
    /// Seconds per run (after 0.5 s of warm-up).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Runs per row, interleaved; the median (by IOPS) is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// MTU of the veth to the namespaced tgtd (both ends; 9000: jumbo
    /// frames, and the one-process system runs with --host-mtu 9000).
    #[arg(long, default_value_t = 1500)]
    mtu: u32,
    /// Only these rows and sections (comma list; default: all): vswitch,
    /// vs-watch, vs-adapt, vs-wait, vs-wait-rw, vs-utcp, vs-one, vs-one-a,
    /// vs-one-w, qsd, qsd-veth, write, one-write, cache, iperf-veth,
    /// one-cache.
    #[arg(long, value_name = "LIST", default_value = "")]
    targets: String,
}

/// What every read case needs: the work dir, the loopback tgtd, the veth
/// rig (or why there is none), seconds per run, the TSC rate, repeats.
struct Bench<'a> {
    dir: &'a Path,
    t: &'a tgt::Tgtd,
    veth: &'a std::result::Result<Veth, String>,
    secs: f64,
    hz: f64,
    repeat: usize,
}

impl Bench<'_> {
    /// One run of the read case `which` at queue depth `qd`.
    fn read_case(&self, which: &'static str, qd: usize) -> std::result::Result<Result, String> {
        let (dir, t, secs, hz) = (self.dir, self.t, self.secs, self.hz);
        let plain = Workload::default();
        match which {
            "vswitch" | "vs-adapt" | "vs-wait" | "vs-watch" | "vs-wait-rw" => {
                ours_with(dir, t, qd, secs, hz, which, None, &plain, None).map(|(r, _)| r)
            }
            "vs-utcp" => {
                let v = self.veth.as_ref().map_err(Clone::clone)?;
                let tgtd = v.tgtd.as_ref().expect("started");
                ours_with(dir, tgtd, qd, secs, hz, which, Some(v), &plain, None).map(|(r, _)| r)
            }
            "vs-one" | "vs-one-a" | "vs-one-w" => one_process(
                dir,
                self.veth.as_ref().map_err(Clone::clone)?,
                qd,
                secs,
                hz,
                which,
            ),
            "qsd-veth" => qsd_veth(dir, self.veth.as_ref().map_err(Clone::clone)?, qd, secs, hz),
            _ => qsd(dir, t, qd, secs, hz),
        }
    }
}

/// The read rows at QD 1 and 32: every wanted target `repeat` times,
/// interleaved (all targets, then again: load that drifts during the run
/// hits every target alike); prints and returns the median run of each.
fn read_table(b: &Bench, wanted: &dyn Fn(&str) -> bool) -> Vec<Result> {
    let mut rows: Vec<Result> = Vec::new();
    for qd in [1usize, 32] {
        let targets: Vec<&'static str> = [
            "vswitch",
            "vs-watch",
            "vs-adapt",
            "vs-wait",
            "vs-wait-rw",
            "vs-utcp",
            "qsd",
            "vs-one",
            "vs-one-a",
            "vs-one-w",
            "qsd-veth",
        ]
        .into_iter()
        .filter(|w| wanted(w))
        .collect();
        let mut runs: Vec<Vec<std::result::Result<Result, String>>> =
            targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..b.repeat {
            for (i, &which) in targets.iter().enumerate() {
                runs[i].push(b.read_case(which, qd));
            }
        }
        for (which, runs) in targets.iter().zip(runs) {
            match median_of(runs, iops) {
                Ok(r) => {
                    print_row(&r, b.hz);
                    rows.push(r);
                }
                Err(e) => println!("{which:<8} {qd:>4} failed: {e}"),
            }
        }
    }
    rows
}

/// The user-TCP rig (EAL, veth, namespaced tgtd) when a wanted row or
/// section runs over it.
fn veth_rig(wanted: &dyn Fn(&str) -> bool) -> std::result::Result<Veth, String> {
    let over_veth = [
        "vs-utcp",
        "vs-one",
        "vs-one-a",
        "vs-one-w",
        "qsd-veth",
        "one-cache",
        "one-write",
        "iperf-veth",
    ];
    if !over_veth.iter().any(|w| wanted(w)) {
        return Err("not asked for".into());
    }
    // The in-process EAL's runtime directory (usertcp::init_eal's prefix).
    cleanup::record(Resource::Path(std::path::PathBuf::from(format!(
        "/var/run/dpdk/vswitch-utcp-{}",
        std::process::id()
    ))));
    usertcp::init_eal().and_then(|()| veth_tgtd())
}

/// What the run measures, and the read table's column names.
fn print_header(t: &tgt::Tgtd, hz: f64, secs: f64, repeat: usize) {
    println!(
        "vhost-user-blk on iSCSI (tgtd {} file LUN), 4 KiB reads, guest driver CPU 0, back end CPU 1",
        t.portal()
    );
    println!(
        "TSC {:.2} GHz, {secs} s per run after 0.5 s warm-up, median of {repeat} (by IOPS)",
        hz / 1e9
    );
    println!(
        "{:<10} {:>4} {:>11} {:>13} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "target",
        "qd",
        "IOPS",
        "IOPS/core",
        "cyc/req",
        "p50 us",
        "p99 us",
        "p99.9us",
        "max us",
        "errors"
    );
}

/// One line of the read table.
fn print_row(r: &Result, hz: f64) {
    let us = |p: f64| r.hist.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "{:<10} {:>4} {:>11.0} {:>13.0} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7}",
        r.target,
        r.qd,
        r.ops as f64 / r.wall,
        r.ops as f64 / r.backend_cpu.max(1e-9),
        r.backend_cpu * hz / r.ops.max(1) as f64,
        us(0.5),
        us(0.99),
        us(0.999),
        r.hist.max() as f64 / 1000.0,
        r.errors
    );
}

/// Our rows over their peers: loopback rows against qsd on loopback, the
/// veth rows against qsd on the same veth and namespaced tgtd.
fn print_ratios(rows: &[Result]) {
    println!();
    for qd in [1usize, 32] {
        let get = |w: &str| rows.iter().find(|r| r.target == w && r.qd == qd);
        for (ours, peer) in [
            ("vswitch", "qsd"),
            ("vs-watch", "qsd"),
            ("vs-adapt", "qsd"),
            ("vs-wait", "qsd"),
            ("vs-wait-rw", "qsd"),
            ("vs-utcp", "qsd-veth"),
            ("vs-one", "qsd-veth"),
            ("vs-one-a", "qsd-veth"),
            ("vs-one-w", "qsd-veth"),
        ] {
            if let (Some(a), Some(b)) = (get(ours), get(peer)) {
                let pc = |r: &Result| r.ops as f64 / r.backend_cpu.max(1e-9);
                println!(
                    "qd {qd:>2}: {ours}/{peer} IOPS {:.2}x, IOPS per back-end core {:.2}x, p99 {:.2}x",
                    (a.ops as f64 / a.wall) / (b.ops as f64 / b.wall),
                    pc(a) / pc(b),
                    a.hist.value_at_quantile(0.99) as f64
                        / b.hist.value_at_quantile(0.99).max(1) as f64
                );
            }
        }
    }
}

/// One JSON line per read row (what scripts collect).
fn print_json(rows: &[Result], hz: f64) {
    for r in rows {
        println!(
            "{{\"bench\":\"blk_iscsi\",\"target\":\"{}\",\"qd\":{},\"iops\":{:.0},\"iops_per_core\":{:.0},\"cycles_per_req\":{:.0},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"errors\":{},\"queues\":{},\"kicks\":{}}}",
            r.target,
            r.qd,
            r.ops as f64 / r.wall,
            r.ops as f64 / r.backend_cpu.max(1e-9),
            r.backend_cpu * hz / r.ops.max(1) as f64,
            r.hist.value_at_quantile(0.5),
            r.hist.value_at_quantile(0.99),
            r.hist.value_at_quantile(0.999),
            r.errors,
            r.queues,
            r.kicks
        );
    }
}

/// libiscsi's `iscsi-perf` over the veth (kernel TCP, no VM path), median
/// of `repeat` runs, against the one-process system's row.
fn iscsi_perf_section(v: &Veth, rows: &[Result], b: &Bench) {
    let (repeat, secs, hz) = (b.repeat, b.secs, b.hz);
    println!("\n== libiscsi iscsi-perf over the veth (kernel TCP, no VM path; 4 KiB random reads), median of {repeat}");
    for qd in [1usize, 32] {
        let mut runs: Vec<(f64, f64)> = (0..repeat)
            .filter_map(|_| match iscsi_perf_veth(v, qd, secs, hz) {
                Ok(r) => Some(r),
                Err(e) => {
                    println!("iscsi-perf qd {qd} failed: {e}");
                    None
                }
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(p_iops, p_cyc)) = runs.get(runs.len() / 2) else {
            continue;
        };
        println!("iscsi-perf {qd:>4} {p_iops:>11.0} IOPS {p_cyc:>9.0} cyc/req");
        if let Some(a) = rows.iter().find(|r| r.target == "vs-one-w" && r.qd == qd) {
            println!(
                "qd {qd:>2}: vs-one-w/iscsi-perf IOPS {:.2}x, cycles/req {:.0} vs {p_cyc:.0}",
                iops(a) / p_iops,
                cycles(a, hz)
            );
        }
    }
}

/// The uncached goal: at least the kernel path's IOPS with less back-end
/// CPU per I/O.
fn print_goals(rows: &[Result], hz: f64) {
    println!("\ngoal uncached: >= 1x the kernel path's IOPS with less back-end CPU per I/O");
    for qd in [1usize, 32] {
        let get = |w: &str| rows.iter().find(|r| r.target == w && r.qd == qd);
        for (ours, peer) in [
            ("vswitch", "qsd"),
            ("vs-wait", "qsd"),
            ("vs-one-w", "qsd-veth"),
        ] {
            if let (Some(a), Some(b)) = (get(ours), get(peer)) {
                println!(
                    "  qd {qd:>2} {ours:<8}: IOPS {:.2}x {peer}, cycles/req {:.0} vs {:.0}: {}",
                    iops(a) / iops(b),
                    cycles(a, hz),
                    cycles(b, hz),
                    verdict(a, b, hz)
                );
            }
        }
    }
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let _cleanup = cleanup::install("blk_iscsi");
    let repeat: usize = a.repeat.max(1);
    let secs: f64 = a.secs;
    VETH_MTU.store(a.mtu, Ordering::Relaxed);
    let only: String = a.targets;
    let wanted = |w: &str| only.is_empty() || only.split(',').any(|o| o == w);
    let hz = tsc_hz();
    let dir = std::env::temp_dir().join(format!("blk-iscsi-bench-{}", std::process::id()));
    cleanup::record(Resource::Path(dir.clone()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    cleanup::record(Resource::Path(std::env::temp_dir().join(format!(
        "vswitch-iscsi-blk-iscsi-bench-{}",
        std::process::id()
    ))));
    let t = tgt::Tgtd::start("blk-iscsi-bench", LUN_BYTES);
    if let Some(r) = t.pid().and_then(Resource::process) {
        cleanup::record(r);
    }
    let veth = veth_rig(&wanted);
    if let Err(e) = &veth {
        println!("(no user-TCP rows: {e})");
    }
    print_header(&t, hz, secs, repeat);
    let bench = Bench {
        dir: &dir,
        t: &t,
        veth: &veth,
        secs,
        hz,
        repeat,
    };
    let rows = read_table(&bench, &wanted);
    print_ratios(&rows);
    print_json(&rows, hz);
    if let (true, Ok(v)) = (wanted("iperf-veth"), &veth) {
        iscsi_perf_section(v, &rows, &bench);
    }
    print_goals(&rows, hz);
    if wanted("write") {
        write_section(
            "vs-wait/qsd",
            repeat,
            hz,
            &|qd, work| {
                ours_with(&dir, &t, qd, secs, hz, "vs-wait-wr", None, work, None).map(|(r, _)| r)
            },
            &|qd, work| qsd_with(&dir, &t, qd, secs, hz, "qsd-wr", work),
        );
    }
    if let (true, Ok(v)) = (wanted("one-write"), &veth) {
        write_section(
            "vs-one-w/qsd-veth (through the switch)",
            repeat,
            hz,
            &|qd, work| {
                one_process_with(&dir, v, qd, secs, hz, "one-wr", work, None).map(|(r, _)| r)
            },
            &|qd, work| qsd_veth_with(&dir, v, qd, secs, hz, work),
        );
    }
    if wanted("cache") {
        cached_section(
            "vswitch (kernel TCP, loopback)",
            "loop",
            repeat,
            hz,
            &|qd, name, work| {
                ours_with(&dir, &t, qd, secs, hz, name, None, work, Some(CACHE_BYTES))
            },
            &|qd, name, work| qsd_with(&dir, &t, qd, secs, hz, name, work).map(|r| (r, None)),
        );
    }
    if wanted("one-cache") {
        match &veth {
            Ok(v) => cached_section(
                "the one-process system through the switch (vs-one-w)",
                "one",
                repeat,
                hz,
                &|qd, name, work| {
                    one_process_with(&dir, v, qd, secs, hz, name, work, Some(CACHE_BYTES))
                },
                &|qd, _, work| qsd_veth_with(&dir, v, qd, secs, hz, work).map(|r| (r, None)),
            ),
            Err(e) => println!("(no one-process cached rows: {e})"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
