//! Micro-benchmark of the switch datapath without DPDK: `process_burst`
//! over in-memory frames, for 1 / 1k / 100k / 1M active flows and
//! 1 / 100 / 10k wildcard rules.
//!
//! Peer, measured in the same run: the same pipeline with an 8192-entry
//! exact-match cache, the size of OVS-DPDK's EMC (whose thrashing beyond
//! 8K flows is the known weakness), against this switch's default 1M-entry
//! cache. Cycles are TSC cycles around `process_burst` only (frame setup
//! excluded); the histogram is of per-burst cycles/packet. The peer never
//! bypasses its cache (like OVS's EMC); this switch may (see
//! `switch::datapath::BYPASS_AFTER_INSERTS`).
//!
//! `--pipeline`: instead, a 3-table OpenFlow pipeline (100 rules per
//! table: nw_dst → goto, tp_src → write_metadata + goto, metadata →
//! output), which the switch compiles into one cache entry per flow.
//!
//! `--churn N[,N...]`: forwarding under flow-mods. One worker switches
//! `--flows` flows (default 10k) over `--rules` wildcard rules (default
//! 300) while a second thread adds and deletes rules that match no
//! traffic (same masks as the installed ones) at N flow-mods per second;
//! reports packets per second over wall time spent in `process_burst`
//! and mean cycles/packet (the mean, not the median: churn costs come as
//! bursts of cache misses), one line per rate and a JSON line. With
//! `--pipeline`: the 3-table pipeline (100 rules per table by default),
//! churning table-0 rules of its /24 mask on 11.0.0.0/8.
//!
//! Usage: `cargo run --release -p perf --bin classifier [-- --quick] [--flows N] [--rules N] [--pipeline] [--churn 0,10,100,1000] [--seconds S]`

use std::time::Instant;

use hdrhistogram::Histogram;
use switch::frame::VecFrame;
use switch::rule::RuleSpec;
use switch::stats::rdtsc;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::udp4;
use switch::verdict::Verdict;

const BURST: usize = 32;
/// This switch's default per-core cache size.
const OURS: usize = 1 << 20;
/// OVS-DPDK's EMC size: the peer.
const OVS_EMC: usize = 8192;

fn rules(n: usize) -> Vec<RuleSpec> {
    let mut v: Vec<RuleSpec> = (0..n)
        .map(|i| {
            let (a, b) = (i >> 8, i & 255);
            let s = match i % 3 {
                0 => format!(
                    "priority={},ip,nw_dst=10.{a}.{b}.0/24,actions=output:2",
                    100 + i % 50
                ),
                1 => format!(
                    "priority={},udp,nw_dst=10.{a}.{b}.0/24,tp_dst=53,actions=output:2",
                    100 + i % 50
                ),
                _ => format!(
                    "priority={},ip,nw_src=172.16.0.0/12,nw_dst=10.{a}.{b}.0/24,actions=output:2",
                    100 + i % 50
                ),
            };
            s.parse().unwrap()
        })
        .collect();
    v.push("priority=0,actions=output:3".parse().unwrap());
    v
}

/// The `--pipeline` rule set: 3 tables of `n` rules (+ a catch-all each).
fn pipeline_rules(n: usize) -> Vec<RuleSpec> {
    let mut v = Vec::new();
    for i in 0..n {
        let (a, b) = (i >> 8, i & 255);
        v.push(format!(
            "priority=100,ip,nw_dst=10.{a}.{b}.0/24,actions=goto_table:1"
        ));
        v.push(format!(
            "table=1,priority=100,udp,tp_src={},actions=write_metadata:{i},goto_table:2",
            1024 + i
        ));
        v.push(format!(
            "table=2,priority=100,metadata={i},actions=output:2"
        ));
    }
    v.push("priority=0,actions=goto_table:1".into());
    v.push("table=1,priority=0,actions=goto_table:2".into());
    v.push("table=2,priority=0,actions=output:3".into());
    v.iter().map(|s| s.parse().unwrap()).collect()
}

/// Write flow `f`'s addresses/ports into a frame built by `udp4`.
fn set_flow(buf: &mut [u8], f: u32, n_rules: usize) {
    let r = (f as usize) % n_rules;
    buf[26..30].copy_from_slice(&[
        172,
        16 + ((f >> 24) as u8 & 7),
        (f >> 16) as u8,
        (f >> 8) as u8,
    ]);
    buf[30..34].copy_from_slice(&[10, (r >> 8) as u8, (r & 255) as u8, 1]);
    buf[34..36].copy_from_slice(&((f & 0xff) as u16 | 1024).to_be_bytes());
    buf[36..38].copy_from_slice(&(if f & 1 == 0 { 53u16 } else { 80 }).to_be_bytes());
}

struct Result {
    flows: u32,
    rules: usize,
    cache: usize,
    mpps: f64,
    ns_per_pkt: f64,
    cycles_per_pkt: f64,
    p50: u64,
    p99: u64,
    hit_rate: f64,
    bypassed: f64,
}

fn run(flows: u32, n_rules: usize, cache: usize, packets: u64, pipeline: bool) -> Result {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: cache,
        cache_bypass: cache != OVS_EMC,
        ..Default::default()
    });
    for p in 1..=3 {
        sw.port_add(p).unwrap();
    }
    if pipeline {
        sw.table.add_many(pipeline_rules(n_rules), 0);
        assert!(sw.table.snapshot().pipeline.is_some());
    } else {
        sw.table.add_many(rules(n_rules), 0);
    }
    let mut dp = sw.datapath(0);
    let template = udp4([172, 16, 0, 1], [10, 0, 0, 1], 1024, 53);
    let mut frames: Vec<VecFrame> = (0..BURST).map(|_| VecFrame::new(&template)).collect();
    let mut verdicts = [Verdict::default(); BURST];
    // Flow order: a pseudo-random permutation of 0..flows (multiplication
    // by a prime coprime with every flow count used), so every flow recurs
    // once per `flows` packets.
    let mut seq = 0u64;
    let mut next_flow = || {
        seq += 1;
        ((seq * 2_654_435_761) % u64::from(flows)) as u32
    };
    let mut fill = |frames: &mut Vec<VecFrame>| {
        for f in frames.iter_mut() {
            f.reset(&template, 128);
            let id = next_flow();
            set_flow(switch::frame::Frame::data_mut(f), id, n_rules);
        }
    };
    // Warm-up: touch every flow once (fills the cache as far as it goes).
    let warm = u64::from(flows).max(BURST as u64 * 64);
    let mut done = 0;
    while done < warm {
        fill(&mut frames);
        dp.process_burst(1, &mut frames, &mut verdicts, 0);
        done += BURST as u64;
    }
    let base = *dp.counters();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut cycles = 0u64;
    let mut nanos = 0u128;
    let mut n = 0u64;
    while n < packets {
        fill(&mut frames);
        let t = Instant::now();
        let c0 = rdtsc();
        dp.process_burst(1, &mut frames, &mut verdicts, 0);
        let c = rdtsc() - c0;
        nanos += t.elapsed().as_nanos();
        cycles += c;
        hist.record(c / BURST as u64).unwrap();
        n += BURST as u64;
        debug_assert!(verdicts.iter().all(|v| matches!(v, Verdict::Output(_))));
    }
    let c = dp.counters();
    let hits = c.cache_hits - base.cache_hits;
    let misses = c.cache_misses - base.cache_misses;
    let bypassed = c.cache_bypassed - base.cache_bypassed;
    let ns = nanos as f64 / n as f64;
    Result {
        flows,
        rules: n_rules,
        cache,
        mpps: 1e3 / ns,
        ns_per_pkt: ns,
        cycles_per_pkt: cycles as f64 / n as f64,
        p50: hist.value_at_quantile(0.5),
        p99: hist.value_at_quantile(0.99),
        hit_rate: hits as f64 / (hits + misses + bypassed).max(1) as f64,
        bypassed: bypassed as f64 / (hits + misses + bypassed).max(1) as f64,
    }
}

/// Result of one churn case.
struct ChurnResult {
    rate: u32,
    mpps: f64,
    cycles_per_pkt: f64,
    hit_rate: f64,
    flow_mods: u64,
}

/// Forward `flows` flows over `n_rules` rules for `secs` seconds while
/// another thread adds and deletes non-matching rules at `rate` per second.
fn churn_run(flows: u32, n_rules: usize, rate: u32, secs: f64, pipeline: bool) -> ChurnResult {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: OURS,
        cache_bypass: true,
        ..Default::default()
    });
    for p in 1..=3 {
        sw.port_add(p).unwrap();
    }
    if pipeline {
        // Flows differ in the UDP source port table 1 reads.
        sw.table.add_many(pipeline_rules(n_rules), 0);
        assert!(sw.table.snapshot().pipeline.is_some());
    } else {
        let mut base_rules = rules(n_rules);
        // Reads all of nw_dst, so every flow (distinct destination) has
        // its own cache entry.
        base_rules.push(
            "priority=50,ip,nw_dst=11.255.255.255,actions=drop"
                .parse()
                .unwrap(),
        );
        sw.table.add_many(base_rules, 0);
    }
    let mut dp = sw.datapath(0);
    let template = udp4([172, 16, 0, 1], [10, 0, 0, 1], 1024, 53);
    let mut frames: Vec<VecFrame> = (0..BURST).map(|_| VecFrame::new(&template)).collect();
    let mut verdicts = [Verdict::default(); BURST];
    let mut seq = 0u64;
    let mut fill = |frames: &mut Vec<VecFrame>| {
        for f in frames.iter_mut() {
            f.reset(&template, 128);
            seq += 1;
            let id = ((seq * 2_654_435_761) % u64::from(flows)) as u32;
            let d = switch::frame::Frame::data_mut(f);
            set_flow(d, id, n_rules);
            // Flow id = rule * q: a distinct destination per flow.
            d[33] = (id as usize / n_rules) as u8;
        }
    };
    let warm = u64::from(flows).max(BURST as u64 * 64) * 2;
    let mut done = 0;
    while done < warm {
        fill(&mut frames);
        dp.process_burst(1, &mut frames, &mut verdicts, 0);
        done += BURST as u64;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mods = Arc::new(AtomicU64::new(0));
    let churn = (rate > 0).then(|| {
        let (sw, stop, mods) = (Arc::clone(&sw), Arc::clone(&stop), Arc::clone(&mods));
        std::thread::spawn(move || {
            // /32 drops of destinations in 11.0.0.0/8, which no frame
            // carries (as `perf/src/bin/switch.rs --churn` uses 192.168/16),
            // at priorities 200, 50 and 0: they change no verdict and do
            // not widen the lookup mask (a base rule already reads nw_dst).
            let start = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
                let now = Instant::now();
                if due > now {
                    std::thread::sleep((due - now).min(Duration::from_millis(5)));
                    continue;
                }
                let n = i / 2;
                let m = if pipeline {
                    // Table 0's mask (ip, nw_dst/24).
                    format!(
                        "priority={},ip,nw_dst=11.{}.{}.0/24",
                        [200, 50, 0][(n % 3) as usize],
                        (n >> 8) & 0xff,
                        n & 0xff
                    )
                } else {
                    format!(
                        "priority={},ip,nw_dst=11.{}.{}.{}",
                        [200, 50, 0][(n % 3) as usize],
                        (n >> 16) & 0xff,
                        (n >> 8) & 0xff,
                        n & 0xff
                    )
                };
                if i.is_multiple_of(2) {
                    let r: RuleSpec = format!("{m},actions=drop").parse().unwrap();
                    sw.table.add(r, 0).unwrap();
                } else {
                    let (mm, p) = switch::rule::parse_match(&m).unwrap();
                    sw.table.del(&mm, p, true);
                }
                i += 1;
                mods.store(i, Ordering::Relaxed);
            }
        })
    });
    let base = *dp.counters();
    let (mut cycles, mut nanos, mut n) = (0u64, 0u128, 0u64);
    let end = Instant::now() + std::time::Duration::from_secs_f64(secs);
    while Instant::now() < end {
        for _ in 0..64 {
            fill(&mut frames);
            let t = Instant::now();
            let c0 = rdtsc();
            dp.process_burst(1, &mut frames, &mut verdicts, 0);
            cycles += rdtsc() - c0;
            nanos += t.elapsed().as_nanos();
            n += BURST as u64;
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = churn {
        h.join().unwrap();
    }
    let c = dp.counters();
    let hits = c.cache_hits - base.cache_hits;
    let misses = c.cache_misses - base.cache_misses;
    ChurnResult {
        rate,
        mpps: n as f64 * 1e3 / nanos as f64,
        cycles_per_pkt: cycles as f64 / n as f64,
        hit_rate: hits as f64 / (hits + misses).max(1) as f64,
        flow_mods: mods.load(Ordering::Relaxed),
    }
}

/// The switch datapath without DPDK (`process_burst` over in-memory
/// frames) against the same pipeline with an OVS-EMC-sized cache.
#[derive(clap::Parser)]
#[command(name = "classifier")]
struct Args {
    /// 200k packets per case instead of 2M, and at most 100k flows.
    #[arg(long)]
    quick: bool,
    /// Only this many active flows (default: 1, 1k, 100k and 1M).
    #[arg(long)]
    flows: Option<u32>,
    /// Only this many wildcard rules (default: 1, 100 and 10k).
    #[arg(long)]
    rules: Option<usize>,
    /// A 3-table pipeline (goto_table, metadata) instead of one table;
    /// rules default to 100 per table.
    #[arg(long)]
    pipeline: bool,
    /// Flow-mods per second to run under (comma-separated rates, e.g.
    /// `0,10,100,1000`): the churn benchmark instead of the table above.
    #[arg(long, value_delimiter = ',')]
    churn: Option<Vec<u32>>,
    /// Seconds per churn case.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    if let Some(rates) = &a.churn {
        let flows = a.flows.unwrap_or(10_000);
        let n_rules = a.rules.unwrap_or(if a.pipeline { 100 } else { 300 });
        println!(
            "{:>8} {:>6} {:>8} | {:>7} {:>8} {:>6} {:>9}",
            "flows", "rules", "mods/s", "Mpps", "cyc/pkt", "hit%", "flow-mods"
        );
        let mut json = Vec::new();
        for &rate in rates {
            let r = churn_run(flows, n_rules, rate, a.seconds, a.pipeline);
            println!(
                "{:>8} {:>6} {:>8} | {:>7.2} {:>8.1} {:>5.1}% {:>9}",
                flows,
                n_rules,
                r.rate,
                r.mpps,
                r.cycles_per_pkt,
                r.hit_rate * 100.0,
                r.flow_mods
            );
            json.push(serde_json::json!({
                "rate": r.rate, "mpps": r.mpps, "cycles_per_pkt": r.cycles_per_pkt,
                "cache_hit_rate": r.hit_rate, "flow_mods": r.flow_mods,
            }));
        }
        println!(
            "{}",
            serde_json::json!({ "bench": "classifier_churn", "pipeline": a.pipeline, "flows": flows, "rules": n_rules, "seconds": a.seconds, "results": json })
        );
        return;
    }
    let quick = a.quick;
    let pipeline = a.pipeline;
    let packets: u64 = if quick { 200_000 } else { 2_000_000 };
    let flow_counts: Vec<u32> = match a.flows {
        Some(f) => vec![f],
        None if quick => vec![1, 1000, 100_000],
        None => vec![1, 1000, 100_000, 1_000_000],
    };
    let rule_counts: Vec<usize> = match a.rules {
        Some(r) => vec![r],
        None if pipeline => vec![100],
        None => vec![1, 100, 10_000],
    };
    println!(
        "{:>8} {:>6} {:>8} | {:>7} {:>7} {:>8} {:>6} {:>6} {:>6} | {:>7} {:>8} {:>6} | {:>6}",
        "flows",
        "rules",
        "",
        "Mpps",
        "ns/pkt",
        "cyc/pkt",
        "p50",
        "p99",
        "hit%",
        "Mpps",
        "cyc/pkt",
        "hit%",
        "ratio"
    );
    println!(
        "{:>24} | {:^55} | {:^24} |",
        "", "this switch (1M-entry cache)", "peer: 8K EMC-sized cache"
    );
    let mut json = Vec::new();
    for &r in &rule_counts {
        for &f in &flow_counts {
            let ours = run(f, r, OURS, packets, pipeline);
            let peer = run(f, r, OVS_EMC, packets, pipeline);
            let ratio = ours.mpps / peer.mpps;
            println!(
                "{:>8} {:>6} {:>8} | {:>7.2} {:>7.1} {:>8.1} {:>6} {:>6} {:>5.1}% | {:>7.2} {:>8.1} {:>5.1}% | {:>5.2}x",
                f, r, "", ours.mpps, ours.ns_per_pkt, ours.cycles_per_pkt, ours.p50, ours.p99, ours.hit_rate * 100.0,
                peer.mpps, peer.cycles_per_pkt, peer.hit_rate * 100.0, ratio
            );
            for x in [&ours, &peer] {
                json.push(serde_json::json!({
                    "flows": x.flows, "rules": x.rules, "cache_entries": x.cache, "mpps": x.mpps,
                    "ns_per_pkt": x.ns_per_pkt, "cycles_per_pkt": x.cycles_per_pkt,
                    "p50_cycles_per_pkt": x.p50, "p99_cycles_per_pkt": x.p99, "cache_hit_rate": x.hit_rate, "cache_bypassed": x.bypassed,
                }));
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({ "bench": "classifier", "pipeline": pipeline, "packets_per_case": packets, "results": json })
    );
}
