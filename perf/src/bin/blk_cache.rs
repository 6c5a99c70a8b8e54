//! The block cache (`vfio::cache`) against the same file backend uncached,
//! in the same run.
//!
//! 1. Hit path: 4 KiB reads of cached blocks, one at a time, timed from
//!    `submit` to the completion returned by `poll` (rdtsc, hdrhistogram,
//!    ns and cycles).
//! 2. IOPS: 4 KiB reads at Zipf-distributed block addresses (s = 0.99),
//!    32 in flight, through the io_uring file backend (`O_DIRECT` where the
//!    file system allows it), uncached and with caches of several sizes
//!    (each warmed with the same address stream first); hit ratio and the
//!    ratio to uncached IOPS.
//! 3. Eviction policy: CLOCK (the peer) vs 2Q, same cache size (10% of the
//!    disk), on the Zipf stream alone and with one-pass sequential scans of
//!    twice the cache size mixed in (a backup or a table scan next to the
//!    hot set); hit ratio, IOPS and the 2Q/CLOCK ratio.
//!
//! Run: `cargo run --release -p perf --bin blk_cache -- [--disk-mib N]
//! [--ops N] [--dir DIR]` (DIR on a real disk, not tmpfs, to see
//! `O_DIRECT`; default /var/tmp).

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use serde::Serialize;
use vfio::backend::file::FileBackend;
use vfio::backend::{Backend, IoCompletion, IoOp, IoRequest, IoStatus};
use vfio::cache::{CacheConfig, CachedBackend, Eviction, WriteMode, BLOCK};
use vfio::guest_memory::GuestMemory;
use vfio::iovec::IoVec;

/// The block cache against the same file backend uncached: hit-path
/// latency, IOPS with caches of several sizes, CLOCK against 2Q eviction.
#[derive(Parser, Debug)]
#[command(name = "blk_cache")]
struct Args {
    /// Disk size in MiB.
    #[arg(long, default_value_t = 256)]
    disk_mib: u64,
    /// Reads per IOPS run.
    #[arg(long, default_value_t = 200_000)]
    ops: usize,
    /// Hit-path samples.
    #[arg(long, default_value_t = 200_000)]
    hit_samples: usize,
    /// Directory for the disk file.
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    qd: usize,
}

fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn tsc_hz() -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(std::time::Duration::from_millis(200));
    (tsc() - c0) as f64 / t0.elapsed().as_secs_f64()
}

/// Zipf(s) over `n` items by inverse CDF (table built once; sampling is
/// outside every timed region).
fn zipf_stream(n: u64, s: f64, count: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(n as usize);
    let mut acc = 0.0;
    for k in 1..=n {
        acc += 1.0 / (k as f64).powf(s);
        cdf.push(acc);
    }
    let total = acc;
    let mut x = seed | 1;
    // Scatter ranks over the disk so hot blocks are not adjacent.
    let mul = 0x9E37_79B9u64 | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = cdf.partition_point(|&c| c < u) as u64;
            rank.wrapping_mul(mul) % n
        })
        .collect()
}

struct Rig {
    _mem: GuestMemory,
    bufs: Vec<IoVec>,
}

fn rig(qd: usize) -> Rig {
    let mem = GuestMemory::anonymous(&[(0, qd * BLOCK as usize)]).unwrap();
    let bufs = (0..qd)
        .map(|i| mem.iovec(i as u64 * BLOCK, BLOCK as u32).unwrap())
        .collect();
    Rig { _mem: mem, bufs }
}

/// Closed loop, `qd` in flight: returns (IOPS, latency histogram in ns).
fn run(
    be: &mut dyn Backend,
    rig: &Rig,
    blocks: &[u64],
    qd: usize,
    hz: f64,
) -> (f64, Histogram<u64>) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let mut start = vec![0u64; qd];
    let mut free: Vec<usize> = (0..qd).collect();
    let mut out: Vec<IoCompletion> = Vec::with_capacity(qd);
    let mut next = 0;
    let mut done = 0;
    let t0 = Instant::now();
    while done < blocks.len() {
        let mut sent = false;
        while next < blocks.len() {
            let Some(&slot) = free.last() else { break };
            let iovs = [rig.bufs[slot]];
            let req = IoRequest {
                id: slot as u64,
                op: IoOp::Read,
                offset: blocks[next] * BLOCK,
                len: BLOCK,
                iovs: &iovs,
            };
            start[slot] = tsc();
            if be.submit(&req).is_err() {
                break;
            }
            free.pop();
            next += 1;
            sent = true;
        }
        if sent {
            be.commit();
        }
        out.clear();
        be.poll(&mut out);
        let now = tsc();
        for c in &out {
            assert_eq!(c.status, IoStatus::Ok);
            let slot = c.id as usize;
            hist.saturating_record(((now - start[slot]) as f64 * 1e9 / hz) as u64);
            free.push(slot);
            done += 1;
        }
    }
    (blocks.len() as f64 / t0.elapsed().as_secs_f64(), hist)
}

#[derive(Serialize)]
struct HitResult {
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    p50_cycles: u64,
    p99_cycles: u64,
}

#[derive(Serialize)]
struct PolicyRow {
    workload: &'static str,
    policy: &'static str,
    cache_mib: u64,
    hit_ratio: f64,
    iops: f64,
    vs_clock: f64,
}

/// The Zipf stream with a sequential scan of `scan` blocks after every
/// `every` Zipf reads, each scan starting where the last one ended.
fn with_scans(zipf: &[u64], nblocks: u64, every: usize, scan: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(zipf.len() * 2);
    let mut at = nblocks / 3;
    for (i, &b) in zipf.iter().enumerate() {
        out.push(b);
        if (i + 1) % every == 0 {
            for _ in 0..scan {
                out.push(at);
                at = (at + 1) % nblocks;
            }
        }
    }
    out
}

#[derive(Serialize)]
struct IopsRow {
    cache_mib: u64,
    hit_ratio: f64,
    iops: f64,
    vs_uncached: f64,
    p50_us: f64,
    p99_us: f64,
}

/// A disk-sized file of real data at `path` (not sparse: holes read
/// without device I/O).
fn write_disk(path: &std::path::Path, mib: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 13 + 7) as u8).collect();
    for _ in 0..mib {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
}

/// The hit path: `samples` 4 KiB reads at QD 1 over 64 blocks already in a
/// 16 MiB cache on `file`, submit to completion; prints the table and JSON.
fn hit_path(file: Box<FileBackend>, r: &Rig, nblocks: u64, samples: usize, hz: f64) {
    let mut c =
        CachedBackend::new(file, CacheConfig::new(16 << 20, WriteMode::WriteThrough)).unwrap();
    let hot: Vec<u64> = (0..64u64).map(|i| i * 97 % nblocks).collect();
    let warm: Vec<u64> = hot.iter().cycle().take(256).copied().collect();
    run(&mut c, r, &warm, 1, hz);
    let cnt = c.counters();
    let before = cnt.snapshot();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
    let mut out = Vec::with_capacity(4);
    for i in 0..samples {
        let iovs = [r.bufs[0]];
        let req = IoRequest {
            id: 0,
            op: IoOp::Read,
            offset: hot[i % hot.len()] * BLOCK,
            len: BLOCK,
            iovs: &iovs,
        };
        let t = tsc();
        c.submit(&req).unwrap();
        c.commit();
        out.clear();
        while c.poll(&mut out) == 0 {}
        hist.saturating_record(tsc() - t);
    }
    let after = cnt.snapshot();
    assert_eq!(
        after.hits - before.hits,
        samples as u64,
        "every hit-path sample was a hit"
    );
    let ns = |cyc: u64| (cyc as f64 * 1e9 / hz) as u64;
    let hit = HitResult {
        p50_ns: ns(hist.value_at_quantile(0.5)),
        p99_ns: ns(hist.value_at_quantile(0.99)),
        p999_ns: ns(hist.value_at_quantile(0.999)),
        p50_cycles: hist.value_at_quantile(0.5),
        p99_cycles: hist.value_at_quantile(0.99),
    };
    drop(c);
    perf::report::table(
        "hit path: 4 KiB read, submit -> completion, QD 1",
        &["p50 ns", "p99 ns", "p99.9 ns", "p50 cycles", "p99 cycles"],
        &[vec![
            hit.p50_ns.to_string(),
            hit.p99_ns.to_string(),
            hit.p999_ns.to_string(),
            hit.p50_cycles.to_string(),
            hit.p99_cycles.to_string(),
        ]],
    );
    perf::report::json_line("blk_cache_hit", &hit);
}

/// Runs `refs` once to warm the cache, then again measured: IOPS, latency
/// histogram and the hit ratio of the measured run.
fn warm_then_measure(
    c: &mut CachedBackend,
    r: &Rig,
    refs: &[u64],
    qd: usize,
    hz: f64,
) -> (f64, Histogram<u64>, f64) {
    run(c, r, refs, qd, hz);
    let cnt = c.counters();
    let s0 = cnt.snapshot();
    let (iops, h) = run(c, r, refs, qd, hz);
    let s1 = cnt.snapshot();
    let (hits, misses) = (s1.hits - s0.hits, s1.misses - s0.misses);
    (iops, h, hits as f64 / (hits + misses).max(1) as f64)
}

/// The Zipf table (uncached peer first) and its JSON lines.
fn print_zipf(rows: &[IopsRow]) {
    perf::report::table(
        "Zipf(0.99) 4 KiB reads, file backend uncached (peer) vs cached, same run",
        &[
            "cache MiB",
            "hit ratio",
            "IOPS",
            "x uncached",
            "p50 us",
            "p99 us",
        ],
        &rows
            .iter()
            .map(|r| {
                vec![
                    if r.cache_mib == 0 {
                        "none".into()
                    } else {
                        r.cache_mib.to_string()
                    },
                    format!("{:.3}", r.hit_ratio),
                    format!("{:.0}", r.iops),
                    format!("{:.2}", r.vs_uncached),
                    format!("{:.1}", r.p50_us),
                    format!("{:.1}", r.p99_us),
                ]
            })
            .collect::<Vec<_>>(),
    );
    for r in rows {
        perf::report::json_line("blk_cache_zipf", r);
    }
}

/// The eviction table (CLOCK peer first) and its JSON lines.
fn print_policies(prow: &[PolicyRow]) {
    perf::report::table(
        "eviction: CLOCK (peer) vs 2Q, same cache, same run",
        &[
            "workload",
            "policy",
            "cache MiB",
            "hit ratio",
            "IOPS",
            "x CLOCK",
        ],
        &prow
            .iter()
            .map(|r| {
                vec![
                    r.workload.to_string(),
                    r.policy.to_string(),
                    r.cache_mib.to_string(),
                    format!("{:.3}", r.hit_ratio),
                    format!("{:.0}", r.iops),
                    format!("{:.2}", r.vs_clock),
                ]
            })
            .collect::<Vec<_>>(),
    );
    for r in prow {
        perf::report::json_line("blk_cache_policy", r);
    }
}

fn main() {
    let a = Args::parse();
    let hz = tsc_hz();
    let nblocks = a.disk_mib * 256;
    std::fs::create_dir_all(&a.dir).unwrap();
    let path = a.dir.join(format!(
        "vswitch-blk-cache-bench-{}.img",
        std::process::id()
    ));
    // A stopped run must not leave its disk-sized file behind.
    let _cleanup = perf::cleanup::install("blk_cache");
    perf::cleanup::record(perf::cleanup::Resource::Path(path.clone()));
    write_disk(&path, a.disk_mib);
    let open = || Box::new(FileBackend::open(path.to_str().unwrap(), 256).unwrap());
    let direct = open().is_direct();
    let r = rig(a.qd);
    println!(
        "disk {} MiB file on {} (O_DIRECT: {direct}), {} reads of 4 KiB per run, {} in flight, TSC {:.2} GHz",
        a.disk_mib,
        a.dir.display(),
        a.ops,
        a.qd,
        hz / 1e9
    );

    // 1. Hit path: QD 1 over 64 cached blocks.
    hit_path(open(), &r, nblocks, a.hit_samples, hz);

    // 2. Zipf IOPS, uncached vs cached at several sizes.
    let stream = zipf_stream(nblocks, 0.99, a.ops, 42);
    let mut rows = Vec::new();
    let mut f = open();
    run(&mut *f, &r, &stream[..a.ops / 10], a.qd, hz);
    let (base_iops, h) = run(&mut *f, &r, &stream, a.qd, hz);
    drop(f);
    rows.push(IopsRow {
        cache_mib: 0,
        hit_ratio: 0.0,
        iops: base_iops,
        vs_uncached: 1.0,
        p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
    });
    for pct in [1u64, 10, 25, 37, 50] {
        let mib = (a.disk_mib * pct / 100).max(1);
        let mut c =
            CachedBackend::new(open(), CacheConfig::new(mib << 20, WriteMode::WriteThrough))
                .unwrap();
        let (iops, h, hit_ratio) = warm_then_measure(&mut c, &r, &stream, a.qd, hz);
        rows.push(IopsRow {
            cache_mib: mib,
            hit_ratio,
            iops,
            vs_uncached: iops / base_iops,
            p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
            p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
        });
    }
    // 3. CLOCK vs 2Q.
    let mib = (a.disk_mib / 10).max(1);
    let scans = with_scans(&stream, nblocks, 4 * (mib as usize * 256), 2 * mib * 256);
    let mut prow = Vec::new();
    for (workload, refs) in [("zipf", &stream), ("zipf+scans", &scans)] {
        let mut clock_iops = 0.0;
        for (policy, ev) in [("clock", Eviction::Clock), ("2q", Eviction::TwoQ)] {
            let mut cfg = CacheConfig::new(mib << 20, WriteMode::WriteThrough);
            cfg.eviction = ev;
            let mut c = CachedBackend::new(open(), cfg).unwrap();
            let (iops, _, hit_ratio) = warm_then_measure(&mut c, &r, refs, a.qd, hz);
            if ev == Eviction::Clock {
                clock_iops = iops;
            }
            prow.push(PolicyRow {
                workload,
                policy,
                cache_mib: mib,
                hit_ratio,
                iops,
                vs_clock: iops / clock_iops,
            });
        }
    }
    let _ = std::fs::remove_file(&path);
    print_zipf(&rows);
    print_policies(&prow);
}
