//! Accelerator virtual functions: management-command latency and per-VF job
//! throughput with 1..N VFs sharing the device.
//!
//! Part 1 times CREATE_VF / DESTROY_VF / QUERY_CAPS through the BAR0 mailbox
//! of the emulated device (host thread -> shared memory -> device thread and
//! back) against the peer: the same commands executed by the configuration
//! module in-process (validation and register programming without the
//! mailbox round trip).
//!
//! Part 2 runs CRC32C jobs on 1, 2, 4, ... VFs at once from one polling host
//! thread, first with equal quotas, then with VF 0 at full quota and the
//! others at 25 %, and reports each VF's throughput against the rate its
//! compute units and quota allow (the quota holds when the ratio stays at or
//! below 1.00 under contention). The peer is the host CPU computing CRC32C
//! over the same buffers on one core.
//!
//! Run: `cargo run --release -p perf --bin accel_vf [-- --seconds 1 --cmds 2000]`

use std::time::{Duration, Instant};

use clap::Parser;

use hdrhistogram::Histogram;
use vfio::accel::config::ConfigModule;
use vfio::accel::host::Accel;
use vfio::accel::regs::{self, queue};
use vfio::accel::{Command, DeviceThread, Job, JobStatus, Physical, VfRequest};
use vfio::pci::mmio::Mmio;

/// Accelerator VFs: mailbox command latency against the in-process
/// configuration module, and per-VF job throughput under quotas.
#[derive(Parser)]
#[command(name = "accel_vf")]
struct Opts {
    /// Commands timed per kind (CREATE_VF, DESTROY_VF, QUERY_CAPS).
    #[arg(long, default_value_t = 2000)]
    cmds: u32,
    /// Seconds each throughput case runs.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Bytes per CRC32C job.
    #[arg(long, default_value_t = 64 << 10)]
    job: u64,
    /// Bytes per second one compute unit processes.
    #[arg(long, default_value_t = 128 << 20)]
    cu_rate: u64,
    /// Most VFs sharing the device (1..=8; cases 1, 2, 4, ... up to it).
    #[arg(long, default_value_t = 8)]
    max_vfs: u32,
    /// Jobs in flight per VF (1..=the ring size).
    #[arg(long, default_value_t = 16)]
    depth: u32,
}

fn opts() -> Opts {
    let o = Opts::parse();
    if o.depth == 0 || o.depth > queue::RING_SIZE || o.max_vfs == 0 || o.max_vfs > 8 {
        eprintln!(
            "accel_vf: --depth must be 1..={} and --max-vfs 1..=8",
            queue::RING_SIZE
        );
        std::process::exit(2);
    }
    o
}

fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and exists on every x86-64 CPU.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Instant::now().elapsed().as_nanos() as u64
    }
}

/// TSC ticks per nanosecond.
fn tsc_per_ns() -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(100));
    (tsc() - c0) as f64 / t0.elapsed().as_nanos() as f64
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

struct Row {
    name: String,
    h: Histogram<u64>,
}

fn print_lat(rows: &[Row], ghz: f64) {
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "operation", "p50 ns", "p99 ns", "max ns", "mean ns", "cycles/op"
    );
    for r in rows {
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>10.0} {:>10.0}",
            r.name,
            r.h.value_at_quantile(0.5),
            r.h.value_at_quantile(0.99),
            r.h.max(),
            r.h.mean(),
            r.h.mean() * ghz
        );
    }
}

fn mailbox_latency(o: &Opts, a: &Accel, ghz: f64) -> Vec<Row> {
    let req = VfRequest::new(1, regs::MEM_GRANULE, 1);
    let (mut caps, mut create, mut destroy) = (hist(), hist(), hist());
    for i in 0..o.cmds + 100 {
        let t = Instant::now();
        a.query_caps().expect("QUERY_CAPS");
        let t1 = Instant::now();
        let v = a.create_vf(&req).expect("CREATE_VF");
        let t2 = Instant::now();
        a.destroy_vf(v.vf).expect("DESTROY_VF");
        let t3 = Instant::now();
        if i >= 100 {
            caps.record((t1 - t).as_nanos() as u64).ok();
            create.record((t2 - t1).as_nanos() as u64).ok();
            destroy.record((t3 - t2).as_nanos() as u64).ok();
        }
    }
    // Peer: the configuration module in-process on an anonymous BAR.
    let bar = Mmio::anonymous(regs::BAR0_SIZE).expect("anonymous BAR");
    let mut cm = ConfigModule::new(Physical {
        cu_rate: o.cu_rate,
        ..Physical::default()
    });
    cm.power_on(&bar);
    let (mut pc, mut pd) = (hist(), hist());
    for i in 0..o.cmds + 100 {
        let t1 = Instant::now();
        let (w, _) = cm
            .execute(&bar, &Command::CreateVf(req))
            .expect("in-process create");
        let t2 = Instant::now();
        cm.execute(&bar, &Command::DestroyVf { vf: w[0] as u32 })
            .expect("in-process destroy");
        let t3 = Instant::now();
        if i >= 100 {
            pc.record((t2 - t1).as_nanos().max(1) as u64).ok();
            pd.record((t3 - t2).as_nanos().max(1) as u64).ok();
        }
    }
    let rows = vec![
        Row {
            name: "mailbox QUERY_CAPS".into(),
            h: caps,
        },
        Row {
            name: "mailbox CREATE_VF".into(),
            h: create,
        },
        Row {
            name: "mailbox DESTROY_VF".into(),
            h: destroy,
        },
        Row {
            name: "in-process CREATE_VF (peer)".into(),
            h: pc,
        },
        Row {
            name: "in-process DESTROY_VF (peer)".into(),
            h: pd,
        },
    ];
    print_lat(&rows, ghz);
    rows
}

struct VfRun {
    vf: u32,
    quota: u32,
    allowed: f64,
    bytes: u64,
    lat: Histogram<u64>,
}

/// Runs CRC32C jobs on `quotas.len()` VFs (one compute unit each) for the
/// configured time from one polling thread.
fn throughput(o: &Opts, a: &Accel, quotas: &[u32]) -> (Vec<VfRun>, f64) {
    let win = (o.job * 2).div_ceil(regs::MEM_GRANULE) * regs::MEM_GRANULE;
    let mut vfs = Vec::new();
    let mut runs = Vec::new();
    for &q in quotas {
        let info = a.create_vf(&VfRequest::new(1, win, 1)).expect("CREATE_VF");
        a.set_quota(info.vf, q).expect("SET_QUOTA");
        let h = a.open_vf(info.vf).expect("open VF");
        let data: Vec<u8> = (0..o.job)
            .map(|i| (i * 31 + u64::from(info.vf)) as u8)
            .collect();
        h.mem().write_bytes(0, &data).expect("fill window");
        vfs.push(h);
        runs.push(VfRun {
            vf: info.vf,
            quota: q,
            allowed: o.cu_rate as f64 * f64::from(q) / 1000.0,
            bytes: 0,
            lat: hist(),
        });
    }
    let job = Job::crc32c(0, o.job);
    let mut stamps = vec![[Instant::now(); queue::RING_SIZE as usize]; vfs.len()];
    let end = Instant::now() + Duration::from_secs_f64(o.seconds);
    // TSC ticks spent in the driver's submit and (reaping) poll calls.
    let mut driver_ticks = 0u64;
    let mut jobs = 0u64;
    loop {
        let now = Instant::now();
        let submitting = now < end;
        let mut outstanding = 0;
        for (i, h) in vfs.iter_mut().enumerate() {
            let q = h.queue(0).expect("queue 0");
            let r = &mut runs[i];
            let st = &stamps[i];
            let t0 = tsc();
            let reaped = q.poll(|idx, res| {
                assert_eq!(res.status, JobStatus::Ok, "job failed");
                jobs += 1;
                if submitting {
                    r.bytes += o.job;
                    r.lat
                        .record(st[(idx % queue::RING_SIZE) as usize].elapsed().as_nanos() as u64)
                        .ok();
                }
            });
            if reaped > 0 {
                driver_ticks += tsc() - t0;
            }
            while submitting && q.outstanding() < o.depth {
                let t0 = tsc();
                let idx = q.submit(&job).expect("ring has room");
                driver_ticks += tsc() - t0;
                stamps[i][(idx % queue::RING_SIZE) as usize] = Instant::now();
            }
            outstanding += q.outstanding();
        }
        if !submitting && outstanding == 0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    // Host driver cost per job: submit + reap, in TSC cycles.
    let driver_cycles = driver_ticks as f64 / jobs.max(1) as f64;
    // Bytes completed in the measured window -> bytes per second.
    for r in runs.iter_mut() {
        r.bytes = (r.bytes as f64 / o.seconds) as u64;
    }
    for v in &runs {
        a.destroy_vf(v.vf).expect("DESTROY_VF");
    }
    (runs, driver_cycles)
}

fn cpu_peer(o: &Opts) -> f64 {
    let data: Vec<u8> = (0..o.job).map(|i| (i * 31) as u8).collect();
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut acc = 0u32;
    while t.elapsed().as_secs_f64() < o.seconds.min(0.5) {
        acc ^= crc32c::crc32c(&data);
        bytes += o.job;
    }
    std::hint::black_box(acc);
    bytes as f64 / t.elapsed().as_secs_f64()
}

fn mib(b: f64) -> f64 {
    b / (1u64 << 20) as f64
}

fn main() {
    let o = opts();
    let ghz = tsc_per_ns();
    let _cleanup = perf::cleanup::install("accel_vf");
    let dir = std::env::temp_dir().join(format!("accel-bench-{}", std::process::id()));
    perf::cleanup::record(perf::cleanup::Resource::Path(dir.clone()));
    let phys = Physical {
        cu: 8,
        cu_rate: o.cu_rate,
        ..Physical::default()
    };
    let dev = DeviceThread::spawn(&dir, phys).expect("start emulated accelerator");
    let a = Accel::open_emulated(&dir).expect("bind");
    println!(
        "== management commands through the BAR0 mailbox ({} each, TSC {:.2} GHz) ==",
        o.cmds, ghz
    );
    let lat = mailbox_latency(&o, &a, ghz);
    let ratio_create = lat[1].h.mean() / lat[3].h.mean().max(1.0);
    println!("mailbox/in-process CREATE_VF mean ratio: {ratio_create:.1}x");

    let peer = cpu_peer(&o);
    println!(
        "\n== CRC32C jobs of {} KiB, 1 CU per VF at {} MiB/s, queue depth {}, {:.1} s per run ==",
        o.job >> 10,
        o.cu_rate >> 20,
        o.depth,
        o.seconds
    );
    println!("peer: host CPU CRC32C on one core: {:.0} MiB/s", mib(peer));
    println!(
        "{:<8} {:>4} {:>3} {:>6} {:>10} {:>10} {:>7} {:>10} {:>10}",
        "scenario", "vfs", "vf", "quota", "MiB/s", "allowed", "ratio", "p50 us", "p99 us"
    );
    let mut json_runs = Vec::new();
    let mut agg = Vec::new();
    let mut worst = 0.0f64;
    let mut n = 1;
    while n <= o.max_vfs {
        for (name, quotas) in [
            ("equal", vec![1000; n as usize]),
            (
                "mixed",
                (0..n)
                    .map(|i| if i == 0 { 1000 } else { 250 })
                    .collect::<Vec<_>>(),
            ),
        ] {
            if name == "mixed" && n == 1 {
                continue;
            }
            let (runs, driver_cycles) = throughput(&o, &a, &quotas);
            let total: f64 = runs.iter().map(|r| r.bytes as f64).sum();
            println!(
                "{name} x{n}: device total {:.1} MiB/s = {:.4}x the host CPU peer; host driver {:.0} cycles per job (submit + reap)",
                mib(total),
                total / peer,
                driver_cycles
            );
            agg.push(format!(
                "{{\"scenario\":\"{name}\",\"vfs\":{n},\"total_bytes_per_s\":{total:.0},\"vs_cpu\":{:.5},\"host_cycles_per_job\":{:.0}}}",
                total / peer,
                driver_cycles
            ));
            for r in &runs {
                let ratio = r.bytes as f64 / r.allowed;
                worst = worst.max(ratio);
                println!(
                    "{:<8} {:>4} {:>3} {:>6} {:>10.1} {:>10.1} {:>7.3} {:>10.0} {:>10.0}",
                    name,
                    n,
                    r.vf,
                    r.quota,
                    mib(r.bytes as f64),
                    mib(r.allowed),
                    ratio,
                    r.lat.value_at_quantile(0.5) as f64 / 1e3,
                    r.lat.value_at_quantile(0.99) as f64 / 1e3
                );
                json_runs.push(format!(
                    "{{\"scenario\":\"{name}\",\"vfs\":{n},\"vf\":{},\"quota\":{},\"bytes_per_s\":{},\"allowed_bytes_per_s\":{:.0},\"ratio\":{:.4},\"p50_ns\":{},\"p99_ns\":{}}}",
                    r.vf,
                    r.quota,
                    r.bytes,
                    r.allowed,
                    ratio,
                    r.lat.value_at_quantile(0.5),
                    r.lat.value_at_quantile(0.99)
                ));
            }
        }
        n *= 2;
    }
    println!("highest achieved/allowed ratio: {worst:.3} (quota holds when <= 1.00)");
    let lat_json: Vec<String> = lat
        .iter()
        .map(|r| {
            format!(
                "{{\"op\":\"{}\",\"p50_ns\":{},\"p99_ns\":{},\"mean_ns\":{:.0},\"cycles\":{:.0}}}",
                r.name,
                r.h.value_at_quantile(0.5),
                r.h.value_at_quantile(0.99),
                r.h.mean(),
                r.h.mean() * ghz
            )
        })
        .collect();
    println!(
        "{{\"bench\":\"accel_vf\",\"job_bytes\":{},\"cu_rate\":{},\"cpu_peer_bytes_per_s\":{:.0},\"mailbox_vs_inprocess_create\":{:.2},\"max_quota_ratio\":{:.4},\"latency\":[{}],\"totals\":[{}],\"runs\":[{}]}}",
        o.job,
        o.cu_rate,
        peer,
        ratio_create,
        worst,
        lat_json.join(","),
        agg.join(","),
        json_runs.join(",")
    );
    drop(a);
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}
