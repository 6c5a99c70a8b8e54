//! Flow-table switching (issue 3): `vswitch run --flows` against
//! `ovs-vswitchd-dpdk` (one PMD core, equivalent OpenFlow rules) with
//! `dpdk-testpmd --forward-mode=mac` as the ceiling, same pcap, same ports,
//! same single forwarding core, in the same run.
//!
//! Cases: flows ∈ {1, 1k, 100k, 1M} distinct 5-tuples × rules ∈ {1, 100,
//! 10k} (see `perf::rules`). Traffic: a pcap of 64-byte UDP frames, every
//! flow once, replayed forever by `net_pcap` (`infinite_rx=1`) into a
//! `net_null,no-rx=1` sink. Rates are medians of per-second tx rates of the
//! sink after one warm-up second: OVS from `ovs-ofctl dump-ports` sampled
//! each second, testpmd from `--stats-period 1`, vswitch from `--json`.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/switch [--flows 1,10k] [--rules 1,100] [--seconds 5] [--rounds 1]
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use perf::{frames, ovs, proc, report, rules};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "vswitch vs OVS-DPDK vs testpmd mac: flow-table switching, same run")]
struct Args {
    /// Distinct 5-tuple flows per case (comma list; k/M suffixes allowed).
    #[arg(long, value_delimiter = ',', value_parser = parse_count, default_values = ["1", "10k"])]
    flows: Vec<u32>,
    /// Rules per case (comma list; k suffix allowed): n-1 non-matching
    /// wildcard rules plus the forwarding rule.
    #[arg(long, value_delimiter = ',', value_parser = parse_count, default_values = ["1", "100"])]
    rules: Vec<u32>,
    /// Seconds each program forwards (after one warm-up second).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Frame length without FCS (60 = a 64-byte frame on the wire).
    #[arg(long, default_value_t = 60)]
    len: usize,
    /// Rounds per case (programs interleaved); medians over rounds are
    /// reported, which damps noise from other load on the machine.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Skip OVS (e.g. when openvswitch-switch-dpdk is not installed).
    #[arg(long)]
    no_ovs: bool,
    /// Skip the testpmd ceiling.
    #[arg(long)]
    no_testpmd: bool,
}

/// "1", "1k", "100k", "1M", "10000" -> count.
fn parse_count(s: &str) -> Result<u32, String> {
    let (num, mul) = match s.trim().chars().last() {
        Some('k' | 'K') => (&s.trim()[..s.trim().len() - 1], 1_000),
        Some('M' | 'm') => (&s.trim()[..s.trim().len() - 1], 1_000_000),
        _ => (s.trim(), 1),
    };
    let n: u32 = num.parse().map_err(|e| format!("{s:?}: {e}"))?;
    n.checked_mul(mul)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?}: must be 1..=4294967295"))
}

fn short(n: u32) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

/// One program's result in one case; `note` says why it was not measured.
#[derive(Serialize, Default, Clone)]
struct Side {
    mpps: Option<f64>,
    cycles_per_packet: Option<f64>,
    samples: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ovs_pmd: Option<ovs::PmdStats>,
}

impl Side {
    fn na(why: impl Into<String>) -> Side {
        let why = why.into();
        eprintln!("  n/a: {why}");
        Side {
            note: Some(why),
            ..Side::default()
        }
    }
    fn from_samples(
        mut samples: Vec<f64>,
        keep: usize,
        cycles: Option<f64>,
        what: &str,
        log: &str,
    ) -> Side {
        // Skip the seconds before traffic started (large pcaps take a while
        // to preload), then the warm-up sample (partial first second).
        let first = samples
            .iter()
            .position(|&s| s > 0.0)
            .unwrap_or(samples.len());
        samples.drain(..first);
        if samples.len() > 2 {
            samples.remove(0);
        }
        // The run may last longer than asked (start-up allowance): keep
        // as many seconds as the other programs get.
        samples.truncate(keep);
        if samples.is_empty() {
            return Side::na(format!(
                "{what} produced no non-zero rate samples; output:\n{log}"
            ));
        }
        Side {
            mpps: Some(report::median(&samples)),
            cycles_per_packet: cycles,
            samples,
            ..Side::default()
        }
    }
}

/// Several rounds of one program: the median of the round medians.
fn combine(rounds: Vec<Side>) -> Side {
    let ok: Vec<&Side> = rounds.iter().filter(|s| s.mpps.is_some()).collect();
    if ok.is_empty() {
        return rounds.into_iter().next().unwrap_or_default();
    }
    let cycles: Vec<f64> = ok.iter().filter_map(|s| s.cycles_per_packet).collect();
    Side {
        mpps: Some(report::median(
            &ok.iter().filter_map(|s| s.mpps).collect::<Vec<_>>(),
        )),
        cycles_per_packet: (!cycles.is_empty()).then(|| report::median(&cycles)),
        samples: ok.iter().flat_map(|s| s.samples.clone()).collect(),
        note: None,
        ovs_pmd: ok.iter().rev().find_map(|s| s.ovs_pmd.clone()),
    }
}

#[derive(Serialize)]
struct CaseResult {
    flows: u32,
    rules: u32,
    frame_len: usize,
    pcap_frames: u32,
    seconds: u64,
    rounds: u32,
    ovs: Side,
    testpmd_mac: Side,
    vswitch: Side,
    vswitch_over_ovs: Option<f64>,
}

/// Bytes of hugepage memory one mbuf of a 2 KiB-data-room pool takes
/// (2176 data + 128 header + mempool object header, rounded up).
const MBUF_BYTES: u64 = 2560;
/// Extra mbufs beyond the pcap's frames (descriptor rings, caches, bursts).
const MBUF_SLACK: u32 = 16384;

fn free_hugepage_bytes() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |k: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get("HugePages_Free:") * get("Hugepagesize:") * 1024
}

/// `None` if `mbufs` fit in the free hugepages, else the reason.
fn hugepage_shortfall(mbufs: u32) -> Option<String> {
    let need = mbufs as u64 * MBUF_BYTES + (64 << 20);
    let free = free_hugepage_bytes();
    (need > free).then(|| {
        format!(
            "{mbufs} mbufs need ~{} MiB of hugepages, {} MiB free: raise \
             /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages (see perf/README.md)",
            need >> 20,
            free >> 20
        )
    })
}

fn devargs(pcap: &str) -> (String, String) {
    (
        format!("net_pcap0,rx_pcap={pcap},infinite_rx=1"),
        "net_null0,no-rx=1".to_string(),
    )
}

/// OVS's shared mempool sizes: it tries 262144 mbufs and halves on failure.
const OVS_MAX_MBUFS: u32 = 4096 * 64;

fn run_ovs(pcap: &str, frames: u32, rule_text: &str, secs: u64, tag: &str) -> Side {
    if frames + MBUF_SLACK / 2 > OVS_MAX_MBUFS {
        return Side::na(format!(
            "OVS's shared mempool holds at most {OVS_MAX_MBUFS} mbufs, but net_pcap \
             infinite_rx needs one per pcap frame ({frames})"
        ));
    }
    // The smallest OVS mempool size that holds the pcap, plus slack.
    let mut pool = 16384u32;
    while pool < frames + MBUF_SLACK / 2 {
        pool *= 2;
    }
    if let Some(why) = hugepage_shortfall(pool) {
        return Side::na(format!("OVS: {why}"));
    }
    let socket_mem_mb = ((pool as u64 * 3072) >> 20).max(256) as u32 + 128;
    let (src, sink) = devargs(pcap);
    let cfg = ovs::Config {
        tag: tag.to_string(),
        pmd_core: 1,
        main_core: 0,
        socket_mem_mb,
        source_devargs: src,
        sink_devargs: sink,
    };
    let mut o = match ovs::Ovs::start(&cfg) {
        Ok(o) => o,
        Err(e) => return Side::na(e),
    };
    if let Err(e) = o.replace_flows(rule_text) {
        return Side::na(e);
    }
    let sample = |o: &ovs::Ovs| -> Result<(Instant, u64), String> {
        let t = Instant::now();
        let n = o.tx_packets(ovs::OF_OUT)?;
        Ok((t, n))
    };
    let result = (|| -> Result<Side, String> {
        // Warm-up: upcalls install the megaflows, caches fill.
        std::thread::sleep(Duration::from_secs(1));
        o.pmd_stats_clear()?;
        let mut prev = sample(&o)?;
        let mut samples = Vec::new();
        for _ in 0..secs {
            std::thread::sleep(Duration::from_secs(1).saturating_sub(prev.0.elapsed()));
            let now = sample(&o)?;
            let dt = now.0.duration_since(prev.0).as_secs_f64();
            samples.push((now.1 - prev.1) as f64 / dt / 1e6);
            prev = now;
        }
        let pmd = o.pmd_stats()?;
        Ok(Side {
            mpps: Some(report::median(&samples)),
            cycles_per_packet: pmd.processing_cycles_per_packet,
            samples,
            note: None,
            ovs_pmd: Some(pmd),
        })
    })();
    let alive = o.alive();
    match result {
        Ok(s) if alive => s,
        Ok(_) => Side::na(format!(
            "ovs-vswitchd died during the run; log tail:\n{}",
            o.log_tail(30)
        )),
        Err(e) => Side::na(e),
    }
}

/// Removes an EAL's runtime dir (`/var/run/dpdk/<file-prefix>`) and any
/// hugepage files left under its prefix when the run is over.
struct EalRuntimeDir(String);

impl Drop for EalRuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.0));
        if let Ok(rd) = std::fs::read_dir("/dev/hugepages") {
            for e in rd.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{}map_", self.0))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// Extra seconds for preloading a large pcap into mbufs at port start.
fn startup_secs(frames: u32) -> u64 {
    frames as u64 / 100_000
}

/// A pool size for testpmd/vswitch: 2^k - 1 (the mempool's optimum).
fn pool_size(frames: u32) -> u32 {
    (frames + MBUF_SLACK).next_power_of_two() - 1
}

fn run_testpmd(pcap: &str, frames: u32, secs: u64, tag: &str) -> Side {
    let mbufs = pool_size(frames);
    if let Some(why) = hugepage_shortfall(mbufs) {
        return Side::na(format!("testpmd: {why}"));
    }
    let (p0, p1) = devargs(pcap);
    let mut c = Command::new("dpdk-testpmd");
    c.args([
        "-l",
        "0,1",
        "--no-pci",
        "--no-telemetry",
        "--file-prefix",
        &format!("perf-sw-tp-{tag}"),
    ]);
    let _cleanup = EalRuntimeDir(format!("perf-sw-tp-{tag}"));
    c.args(proc::eal_memory_args());
    c.args(["--vdev", &p0, "--vdev", &p1, "--"]);
    c.args([
        "--forward-mode=mac",
        "--auto-start",
        "--stats-period",
        "1",
        &format!("--total-num-mbufs={mbufs}"),
        "--record-core-cycles",
        "--nb-cores=1",
    ]);
    let r = match proc::run_for(
        c,
        Duration::from_secs(secs + 2 + startup_secs(frames)),
        Duration::from_secs(15),
    ) {
        Ok(r) => r,
        Err(e) => return Side::na(format!("run dpdk-testpmd (package dpdk): {e}")),
    };
    let (samples, cycles) = proc::parse_testpmd(&r.stdout, 1);
    let log = format!(
        "{}\n{}",
        last_lines(&r.stdout, 20),
        last_lines(&r.stderr, 20)
    );
    Side::from_samples(samples, secs as usize, cycles, "testpmd", &log)
}

fn last_lines(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

fn run_vswitch(pcap: &str, frames: u32, flows_file: &Path, secs: u64, tag: &str) -> Side {
    let mbufs = pool_size(frames);
    if let Some(why) = hugepage_shortfall(mbufs) {
        return Side::na(format!("vswitch: {why}"));
    }
    let (p0, p1) = devargs(pcap);
    let mut eal = vec![
        "-l".to_string(),
        "0,1".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        format!("--file-prefix=perf-sw-vs-{tag}"),
    ];
    let _cleanup = EalRuntimeDir(format!("perf-sw-vs-{tag}"));
    eal.extend(proc::eal_memory_args());
    let mut c = Command::new(proc::vswitch_bin());
    c.args(["run", "--eal", &eal.join(" "), "--port", &p0, "--port", &p1]);
    // --no-control: the default control socket path is shared by every
    // vswitch on the host.
    c.arg("--flows").arg(flows_file).arg("--no-control");
    c.args([
        "--json",
        "--duration",
        &(secs + 1 + startup_secs(frames)).to_string(),
        "--stats-interval",
        "1",
        "--mbufs",
        &mbufs.to_string(),
    ]);
    let r = match proc::run_for(
        c,
        Duration::from_secs(secs + 8 + startup_secs(frames)),
        Duration::from_secs(15),
    ) {
        Ok(r) => r,
        Err(e) => {
            return Side::na(format!(
                "run {}: {e} (build it: cargo build --release)",
                proc::vswitch_bin().display()
            ))
        }
    };
    for opt in ["--flows", "--no-control"] {
        if r.stderr.contains(&format!("unexpected argument '{opt}'")) {
            return Side::na(format!(
                "{} run has no {opt} option yet (issue 3 in progress)",
                proc::vswitch_bin().display()
            ));
        }
    }
    let mut samples = Vec::new();
    let mut cycles = None;
    for l in r.stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v["type"] == "port_stats" && v["stats"]["port"] == 1 {
            if let Some(p) = v["stats"]["tx_pps"].as_f64() {
                samples.push(p / 1e6);
            }
        }
        if v["type"] == "summary" {
            cycles = v["summary"]["cycles_per_packet"].as_f64();
        }
    }
    let log = format!(
        "{}\n{}",
        last_lines(&r.stdout, 20),
        last_lines(&r.stderr, 20)
    );
    Side::from_samples(samples, secs as usize, cycles, "vswitch", &log)
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    v.map(|v| format!("{v:.prec$}"))
        .unwrap_or_else(|| "n/a".into())
}

/// The 1-minute load average: other load on the 2 cores skews every rate.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn find(results: &[CaseResult], flows: u32, rules: u32) -> Option<&CaseResult> {
    results
        .iter()
        .find(|r| r.flows == flows && r.rules == rules)
}

fn main() {
    let a = Args::parse();
    for &r in &a.rules {
        if r > rules::MAX_RULES {
            eprintln!("--rules {r}: at most {}", rules::MAX_RULES);
            std::process::exit(2);
        }
    }
    let pid = std::process::id();
    let load_before = loadavg();
    let _cleanup = perf::cleanup::install("switch");
    let dir = std::env::temp_dir().join(format!("perf-switch-{pid}"));
    perf::cleanup::record(perf::cleanup::Resource::Path(dir.clone()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut results = Vec::new();
    for &flows in &a.flows {
        let pcap = dir.join(format!("flows-{flows}.pcap"));
        let frames = match frames::write_flows_pcap(&pcap, flows, a.len) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("pcap for {flows} flows: {e}");
                std::process::exit(2);
            }
        };
        let pcap = pcap.to_string_lossy().into_owned();
        // testpmd ignores rules: one ceiling per flow count.
        let tp = if a.no_testpmd {
            Side::na("skipped (--no-testpmd)")
        } else {
            eprintln!(
                "[{} flows] dpdk-testpmd --forward-mode=mac ...",
                short(flows)
            );
            combine(
                (0..a.rounds)
                    .map(|r| run_testpmd(&pcap, frames, a.seconds, &format!("{pid}-{flows}-{r}")))
                    .collect(),
            )
        };
        for &nrules in &a.rules {
            let tag = format!("{pid}-{flows}-{nrules}");
            let case = format!("{} flows, {} rules", short(flows), short(nrules));
            let ovs_rules = rules::rule_set(nrules, rules::OVS_PORTS).expect("rule count checked");
            let vs_rules =
                rules::rule_set(nrules, rules::VSWITCH_PORTS).expect("rule count checked");
            let vs_file = dir.join(format!("vswitch-{nrules}.flows"));
            std::fs::write(&vs_file, vs_rules).expect("write rules");
            let (mut os, mut vs) = (Vec::new(), Vec::new());
            for round in 0..a.rounds {
                let tag = format!("{tag}-{round}");
                os.push(if a.no_ovs {
                    Side::na("skipped (--no-ovs)")
                } else {
                    eprintln!("[{case}] ovs-vswitchd-dpdk ...");
                    run_ovs(&pcap, frames, &ovs_rules, a.seconds, &tag)
                });
                eprintln!("[{case}] vswitch run --flows ...");
                vs.push(run_vswitch(&pcap, frames, &vs_file, a.seconds, &tag));
            }
            let (o, v) = (combine(os), combine(vs));
            let ratio = match (v.mpps, o.mpps) {
                (Some(v), Some(o)) if o > 0.0 => Some(v / o),
                _ => None,
            };
            let r = CaseResult {
                flows,
                rules: nrules,
                frame_len: a.len + 4,
                pcap_frames: frames,
                seconds: a.seconds,
                rounds: a.rounds,
                ovs: o,
                testpmd_mac: tp.clone(),
                vswitch: v,
                vswitch_over_ovs: ratio,
            };
            report::json_line("switch", &r);
            results.push(r);
        }
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                format!("{} flows, {} rules", short(r.flows), short(r.rules)),
                fmt(r.ovs.mpps, 2),
                fmt(r.ovs.cycles_per_packet, 1),
                fmt(r.testpmd_mac.mpps, 2),
                fmt(r.vswitch.mpps, 2),
                fmt(r.vswitch.cycles_per_packet, 1),
                fmt(r.vswitch_over_ovs, 2),
            ]
        })
        .collect();
    report::table(
        &format!(
            "flow-table switching, {}-byte frames, 1 forwarding core, {} s per program",
            a.len + 4,
            a.seconds
        ),
        &[
            "case",
            "OVS Mpps",
            "OVS cyc/pkt",
            "testpmd-mac Mpps",
            "vswitch Mpps",
            "vswitch cyc/pkt",
            "vswitch/OVS",
        ],
        &rows,
    );
    println!("  load average before/after: {load_before} / {}", loadavg());
    for r in &results {
        let case = format!("{} flows, {} rules", short(r.flows), short(r.rules));
        let verdict = |ok: Option<bool>| match ok {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured (a side is n/a)",
        };
        match r.flows {
            1 => println!(
                "  goal [{case}]: vswitch >= 2x OVS -> {}",
                verdict(r.vswitch_over_ovs.map(|x| x >= 2.0))
            ),
            10_000 => println!(
                "  goal [{case}]: vswitch >= 3x OVS -> {}",
                verdict(r.vswitch_over_ovs.map(|x| x >= 3.0))
            ),
            1_000_000 => {
                let one = find(&results, 1, r.rules);
                let ok = one
                    .and_then(|o| o.vswitch.mpps)
                    .zip(r.vswitch.mpps)
                    .map(|(one, m)| m >= 0.5 * one);
                let ceiling = one
                    .and_then(|o| o.testpmd_mac.mpps)
                    .zip(r.testpmd_mac.mpps)
                    .map(|(one, m)| {
                        format!(
                            " (the testpmd ceiling itself keeps {:.2} of its 1-flow rate)",
                            m / one
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "  goal [{case}]: vswitch >= 0.5 x its 1-flow rate -> {}{ceiling}",
                    if one.is_none() {
                        "not measured (run --flows 1 too)"
                    } else {
                        verdict(ok)
                    }
                );
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("1"), Ok(1));
        assert_eq!(parse_count("1k"), Ok(1000));
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("10000"), Ok(10_000));
        assert!(parse_count("0").is_err());
        assert!(parse_count("k").is_err());
        assert!(parse_count("5000M").is_err());
        assert_eq!(short(1_000_000), "1M");
        assert_eq!(short(10_000), "10k");
        assert_eq!(short(1500), "1500");
        assert_eq!(pool_size(1024), 32767);
        assert_eq!(pool_size(1_000_000), (1 << 20) - 1);
    }
}
