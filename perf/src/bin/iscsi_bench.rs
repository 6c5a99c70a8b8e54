//! iSCSI initiator benchmark: this crate's user-mode initiator against libiscsi's
//! `iscsi-perf` (Debian `libiscsi-bin`), in the same run, against the same tgtd
//! (Debian `tgt`), which this program starts on loopback with a file-backed and a null
//! LUN.
//!
//! For 4 KiB random reads and writes at queue depth 1 and 32: IOPS, MB/s, latency
//! percentiles (hdrhistogram; iscsi-perf reports no latencies, so for it only the mean
//! 1/IOPS*QD is shown), and CPU seconds per I/O of the initiator process and of tgtd.
//! iscsi-perf only reads, so writes have no peer column.
//!
//! Usage: `iscsi_bench [--seconds N] [--file-mib N] [--veth] [--repeat N]` (each cell is
//! the median-IOPS run of N alternating runs, default 3); `--veth` puts tgtd in a
//! network namespace behind a veth pair (needs root), as the issue's peer numbers were
//! measured; the default is loopback.

use hdrhistogram::Histogram;
use iscsi_initiator::device::BlockDevice;
use iscsi_initiator::transport::Connection;
use iscsi_initiator::workload::{self, Workload};
use iscsi_initiator::SessionConfig;
use perf::cleanup::{self, Resource};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tgt_sandbox::{free_control_port, Daemon, Launch};

const IQN: &str = "iqn.2026-01.dev.vswitch:bench";

/// The target under test; `daemon` first, so tgtd is killed before its
/// namespace goes.
struct Tgtd {
    daemon: Daemon,
    port: u16,
    addr: String,
    dir: PathBuf,
    _net: Option<Veth>,
}

/// A network namespace joined by a veth pair, created for the run and deleted after.
struct Veth {
    ns: String,
    host_if: String,
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (Debian package `iproute2`)")
        .success();
    assert!(ok, "ip {args:?} failed");
}

impl Veth {
    fn create() -> (Veth, String) {
        let id = std::process::id() % 250;
        let v = Veth {
            ns: format!("vswbench-{}", std::process::id()),
            host_if: format!("vb{id}h"),
        };
        let ns_if = format!("vb{id}n");
        cleanup::record(Resource::Netns(v.ns.clone()));
        cleanup::record(Resource::Link(v.host_if.clone()));
        ip(&["netns", "add", &v.ns]);
        ip(&[
            "link", "add", &v.host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &v.ns]);
        ip(&[
            "addr",
            "add",
            &format!("10.252.{id}.1/30"),
            "dev",
            &v.host_if,
        ]);
        ip(&["link", "set", &v.host_if, "up"]);
        ip(&[
            "-n",
            &v.ns,
            "addr",
            "add",
            &format!("10.252.{id}.2/30"),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", &v.ns, "link", "set", &ns_if, "up"]);
        ip(&["-n", &v.ns, "link", "set", "lo", "up"]);
        (v, format!("10.252.{id}.2"))
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

impl Tgtd {
    fn start(file_bytes: u64, veth: bool) -> Tgtd {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("vswitch-iscsi-bench-{}", std::process::id()));
        cleanup::record(Resource::Path(dir.clone()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("lun1.img");
        // Fill the file so reads hit real pages, not holes.
        let chunk = vec![0x5au8; 1 << 20];
        let mut f = std::fs::File::create(&img).unwrap();
        for _ in 0..file_bytes >> 20 {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
        let (net, addr) = if veth {
            let (v, a) = Veth::create();
            (Some(v), a)
        } else {
            (None, "127.0.0.1".to_owned())
        };
        let mut daemon = Daemon::spawn(Launch {
            control: free_control_port(std::process::id()).expect("no free tgtd control port"),
            portal: format!("{addr}:{port}"),
            netns: net.as_ref().map(|v| v.ns.clone()),
            log: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        if let Some(r) = Resource::process(daemon.pid()) {
            cleanup::record(r);
        }
        daemon
            .wait_ready(Duration::from_secs(5), true)
            .unwrap_or_else(|e| panic!("{e}"));
        let adm = daemon.adm();
        let t = Tgtd {
            daemon,
            port,
            addr,
            dir,
            _net: net,
        };
        adm.export_lun(IQN, &img)
            .and_then(|()| adm.new_lun(2, Path::new("/dev/null"), Some("null")))
            .unwrap_or_else(|e| panic!("{e}"));
        t
    }

    fn portal(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }

    /// tgtd's CPU seconds so far (utime + stime from /proc).
    fn cpu(&self) -> f64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.daemon.pid()))
            .unwrap_or_default();
        let after = s.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        ticks / clock_ticks()
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Nominal CPU clock in MHz (from /proc/cpuinfo), to express CPU time per I/O as
/// cycles per I/O.
fn cpu_mhz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(f64::NAN)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) of this process or of its waited-for children.
fn rusage_cpu(who: libc::c_int) -> f64 {
    // SAFETY: `ru` is a valid, writable rusage; getrusage only writes into it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Row {
    lun_kind: &'static str,
    rw: &'static str,
    qd: usize,
    who: &'static str,
    iops: f64,
    mbps: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    mean_us: f64,
    cpu_us_per_io: f64,
    tgtd_cpu_us_per_io: f64,
}

fn ours(t: &Tgtd, lun: u16, write: bool, qd: usize, secs: u64, kind: &'static str) -> Row {
    let cfg = SessionConfig::new("iqn.2026-01.dev.vswitch:bench-initiator", Some(IQN));
    let conn = Connection::login(&t.portal(), cfg).expect("login");
    let mut dev = BlockDevice::open(conn, lun).expect("open LUN");
    let g = *dev.geometry();
    let blocks = if kind == "null" {
        1 << 21
    } else {
        g.capacity.blocks
    };
    let w = Workload {
        lun,
        write,
        io_size: 4096,
        queue_depth: qd,
        duration: Duration::from_secs(secs),
        block_size: g.capacity.block_size,
        blocks,
        seed: 0x1234,
    };
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let cpu0 = rusage_cpu(libc::RUSAGE_SELF);
    let tg0 = t.cpu();
    let o = workload::run(dev.connection(), &w, |ns| {
        let _ = h.record(ns.max(1));
    })
    .expect("workload");
    let cpu = rusage_cpu(libc::RUSAGE_SELF) - cpu0;
    let tg = t.cpu() - tg0;
    dev.into_connection().logout().expect("logout");
    let secs = o.elapsed.as_secs_f64();
    let iops = o.ios as f64 / secs;
    Row {
        lun_kind: kind,
        rw: if write { "randwrite" } else { "randread" },
        qd,
        who: "vswitch",
        iops,
        mbps: iops * 4096.0 / 1e6,
        p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
        p999_us: h.value_at_quantile(0.999) as f64 / 1e3,
        mean_us: h.mean() / 1e3,
        cpu_us_per_io: cpu / o.ios as f64 * 1e6,
        tgtd_cpu_us_per_io: tg / o.ios as f64 * 1e6,
    }
}

fn iscsi_perf(t: &Tgtd, lun: u16, qd: usize, secs: u64, kind: &'static str) -> Option<Row> {
    let url = format!("iscsi://{}/{IQN}/{lun}", t.portal());
    let cpu0 = rusage_cpu(libc::RUSAGE_CHILDREN);
    let tg0 = t.cpu();
    let out = Command::new("iscsi-perf")
        .args([
            "-i",
            "iqn.2026-01.dev.vswitch:bench-libiscsi",
            "-m",
            &qd.to_string(),
            "-b",
            "8",
            "-r",
            "-t",
        ])
        .arg(secs.to_string())
        .arg(&url)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(_) => {
            eprintln!("iscsi-perf not found: install the Debian package `libiscsi-bin`");
            return None;
        }
    };
    let cpu = rusage_cpu(libc::RUSAGE_CHILDREN) - cpu0;
    let tg = t.cpu() - tg0;
    let text = String::from_utf8_lossy(&out.stdout);
    let iops: f64 = text
        .rsplit("iops average ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())?;
    let ios = iops * secs as f64;
    let mean = qd as f64 / iops * 1e6;
    Some(Row {
        lun_kind: kind,
        rw: "randread",
        qd,
        who: "iscsi-perf",
        iops,
        mbps: iops * 4096.0 / 1e6,
        p50_us: f64::NAN,
        p99_us: f64::NAN,
        p999_us: f64::NAN,
        mean_us: mean,
        cpu_us_per_io: cpu / ios * 1e6,
        tgtd_cpu_us_per_io: tg / ios * 1e6,
    })
}

/// The user-mode iSCSI initiator against libiscsi's iscsi-perf, against
/// the same tgtd (started here), 4 KiB random reads and writes.
#[derive(clap::Parser)]
#[command(name = "iscsi_bench")]
struct Args {
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Size of the file-backed LUN in MiB.
    #[arg(long, default_value_t = 256)]
    file_mib: u64,
    /// Put tgtd in a network namespace behind a veth pair (needs root)
    /// instead of on loopback.
    #[arg(long)]
    veth: bool,
    /// Alternating runs per cell; the median-IOPS run is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let _cleanup = cleanup::install("iscsi_bench");
    let (secs, file_mib, veth, repeat) = (a.seconds, a.file_mib, a.veth, a.repeat);
    let t = Tgtd::start(file_mib << 20, veth);
    eprintln!(
        "tgtd portal {} ({})",
        t.portal(),
        if veth {
            "veth pair into a netns"
        } else {
            "loopback"
        }
    );
    // Runs alternate (peer, ours, peer, ours, ...) `repeat` times and each cell reports
    // the run with the median IOPS, so load from other processes on a shared machine
    // hits both initiators alike.
    let mut rows = Vec::new();
    for (lun, kind) in [(1u16, "file"), (2u16, "null")] {
        for qd in [1usize, 32] {
            let (mut peer, mut rd, mut wr) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..repeat {
                if let Some(r) = iscsi_perf(&t, lun, qd, secs, kind) {
                    peer.push(r);
                }
                rd.push(ours(&t, lun, false, qd, secs, kind));
                wr.push(ours(&t, lun, true, qd, secs, kind));
            }
            for mut v in [peer, rd, wr] {
                if v.is_empty() {
                    continue;
                }
                v.sort_by(|a, b| a.iops.total_cmp(&b.iops));
                let mid = v.len() / 2;
                rows.push(v.swap_remove(mid));
            }
        }
    }
    let mhz = cpu_mhz();
    println!(
        "{:<5} {:<9} {:>3} {:<10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "lun",
        "op",
        "qd",
        "initiator",
        "IOPS",
        "MB/s",
        "mean_us",
        "p50_us",
        "p99_us",
        "p99.9_us",
        "cpu_us/io",
        "kcycles/io",
        "tgtd_us/io"
    );
    for r in &rows {
        println!(
            "{:<5} {:<9} {:>3} {:<10} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.2} {:>10.1} {:>10.2}",
            r.lun_kind, r.rw, r.qd, r.who, r.iops, r.mbps, r.mean_us, r.p50_us, r.p99_us, r.p999_us,
            r.cpu_us_per_io, r.cpu_us_per_io * mhz / 1000.0, r.tgtd_cpu_us_per_io
        );
    }
    // Ratios against the peer, same LUN, same QD, reads.
    let mut ratios = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.who == "vswitch" && r.rw == "randread")
    {
        if let Some(p) = rows
            .iter()
            .find(|p| p.who == "iscsi-perf" && p.lun_kind == r.lun_kind && p.qd == r.qd)
        {
            println!(
                "ratio {} qd{}: IOPS x{:.2}, CPU/IO x{:.2}, mean latency x{:.2} (vswitch / iscsi-perf)",
                r.lun_kind,
                r.qd,
                r.iops / p.iops,
                r.cpu_us_per_io / p.cpu_us_per_io,
                r.mean_us / p.mean_us
            );
            ratios.push(format!(
                "{{\"lun\":\"{}\",\"qd\":{},\"iops_ratio\":{:.3},\"cpu_ratio\":{:.3},\"latency_ratio\":{:.3}}}",
                r.lun_kind,
                r.qd,
                r.iops / p.iops,
                r.cpu_us_per_io / p.cpu_us_per_io,
                r.mean_us / p.mean_us
            ));
        }
    }
    let json_num = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}")
        } else {
            "null".into()
        }
    };
    let rows_json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"lun\":\"{}\",\"op\":\"{}\",\"qd\":{},\"initiator\":\"{}\",\"iops\":{},\"mbps\":{},\"mean_us\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"cpu_us_per_io\":{},\"kcycles_per_io\":{},\"tgtd_cpu_us_per_io\":{}}}",
                r.lun_kind, r.rw, r.qd, r.who, json_num(r.iops), json_num(r.mbps), json_num(r.mean_us),
                json_num(r.p50_us), json_num(r.p99_us), json_num(r.p999_us), json_num(r.cpu_us_per_io),
                json_num(r.cpu_us_per_io * mhz / 1000.0),
                json_num(r.tgtd_cpu_us_per_io)
            )
        })
        .collect();
    println!(
        "{{\"bench\":\"iscsi\",\"seconds\":{secs},\"repeat\":{repeat},\"link\":\"{}\",\"rows\":[{}],\"ratios\":[{}]}}",
        if veth { "veth" } else { "loopback" },
        rows_json.join(","),
        ratios.join(",")
    );
}
