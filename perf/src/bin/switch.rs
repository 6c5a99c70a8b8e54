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
//! target/release/switch --pipeline [--flows 10k]          # 3-table pipeline (issue 13)
//! target/release/switch --churn 10,100,1000 [--flows 10k] # rate under flow-mods (issue 13)
//! target/release/switch --acl [--flows 10k]               # 1000 ACL rules, 24+ masks (issue 17)
//! ```
//!
//! `--pipeline`, `--churn` and `--acl` run instead of the flows × rules
//! matrix (pass `--rules` as well to run both) and default to 10k flows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use perf::{acl, frames, ovs, proc, report, rules};
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
    /// Case: a 3-table pipeline (issue 13 item 4). Table 0 classifies
    /// (in_port, udp/tcp) and goes to table 1; table 1 holds
    /// --pipeline-rules non-matching wildcard rules and a catch-all
    /// goto_table:2; table 2 holds --pipeline-rules rules on the UDP source
    /// port and a catch-all, all outputting. Both switches get the same
    /// text (OVS through ovs-ofctl add-flows, OpenFlow 1.3+). Goal ≥ 3× OVS.
    #[arg(long)]
    pipeline: bool,
    /// Rules in tables 1 and 2 of --pipeline (each, plus its catch-all).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=60000))]
    pipeline_rules: u32,
    /// Case: forwarding rate while rules are added and deleted at these
    /// flow-mod rates per second (comma list; issue 13 item 5), plus a
    /// churn-free baseline, on --churn-rules wildcard rules. The rules
    /// added and deleted (strictly) are table-0 drops of /32 destinations
    /// in 192.168/16 at priorities 200, 50 and 0 (the forwarding rule has
    /// 1); OVS gets them through `ovs-ofctl add-flows -` (one batch per
    /// 100 ms), vswitch over its JSON control socket. Goals: ≥ 3× OVS at
    /// every rate, < 10% below vswitch's own churn-free rate at 100/s.
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    churn: Vec<u32>,
    /// Wildcard rules (incl. the forwarding rule) of the --churn case.
    #[arg(long, default_value_t = 300)]
    churn_rules: u32,
    /// Case: ACL (issue 17): mixed TCP/UDP 5-tuples (different addresses
    /// and ports) against --acl-rules rules over 24+ mask shapes (prefixes
    /// /8../32, with and without exact or masked L4 ports), all but a few
    /// never matching, above the forwarding rule. Reports subtable probes
    /// per packet (OVS: pmd-stats-show). Goal ≥ 10× OVS.
    #[arg(long)]
    acl: bool,
    /// Rules of the --acl case.
    #[arg(long, default_value_t = 1000)]
    acl_rules: u32,
    /// How the --acl drop rules miss the traffic: `far` (every field misses
    /// within its leading bits: addresses in the first octet, source ports
    /// < 1024, destination ports >= 32768; OVS's megaflows share a few dozen
    /// masks) or `near` (rules copied from real flows with one field one bit
    /// off, often deep: every flow needs different bits and OVS's megaflows
    /// get hundreds of masks, a tuple-space explosion).
    #[arg(long, value_enum, default_value_t = AclMiss::Far)]
    acl_miss: AclMiss,
}

/// Where the ACL case's drop rules miss the traffic (`rules::acl_rule_set_with`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum AclMiss {
    Near,
    Far,
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
    /// Classifier work (the ACL case only).
    #[serde(skip_serializing_if = "Option::is_none")]
    classifier: Option<Probes>,
}

/// How hard the classifier works per packet (`--acl`).
#[derive(Serialize, Default, Clone, Debug, PartialEq)]
struct Probes {
    /// OVS: seconds of warm-up until the slow path went quiet (< 0.1% of
    /// packets upcalled in a second), at most 60.
    #[serde(skip_serializing_if = "Option::is_none")]
    ovs_warmup_seconds: Option<f64>,
    /// OVS: `pmd-stats-show` "avg. subtable lookups per megaflow hit".
    #[serde(skip_serializing_if = "Option::is_none")]
    subtable_lookups_per_megaflow_hit: Option<f64>,
    /// Subtables probed per forwarded packet: OVS, the above × megaflow
    /// hits / packets (EMC/SMC hits probe none); vswitch, its probe counter
    /// / rx packets when the switch exposes one, else absent.
    subtable_probes_per_packet: Option<f64>,
    /// vswitch: classifier lookups (cache misses + bypassed) / rx packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    classifier_lookups_per_packet: Option<f64>,
    /// vswitch: exact-match cache hit rate; OVS: (EMC + SMC) hits / packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_hit_rate: Option<f64>,
    /// vswitch: classifier subtables (distinct masks) of the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    subtables: Option<u64>,
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
        samples: Vec<f64>,
        keep: usize,
        cycles: Option<f64>,
        what: &str,
        log: &str,
    ) -> Side {
        let samples = report::steady_samples(samples, keep);
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

/// Columns of the rate tables (the flows x rules table and `--pipeline`).
const RATE_COLUMNS: [&str; 7] = [
    "case",
    "OVS Mpps",
    "OVS cyc/pkt",
    "testpmd-mac Mpps",
    "vswitch Mpps",
    "vswitch cyc/pkt",
    "vswitch/OVS",
];

/// One row of a rate table ([`RATE_COLUMNS`]).
fn rate_row(
    case: String,
    ovs: &Side,
    testpmd: &Side,
    vswitch: &Side,
    ratio: Option<f64>,
) -> Vec<String> {
    vec![
        case,
        fmt(ovs.mpps, 2),
        fmt(ovs.cycles_per_packet, 1),
        fmt(testpmd.mpps, 2),
        fmt(vswitch.mpps, 2),
        fmt(vswitch.cycles_per_packet, 1),
        fmt(ratio, 2),
    ]
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
        classifier: ok.iter().rev().find_map(|s| s.classifier.clone()),
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

/// The private OVS's configuration for a pcap of `frames` frames, or why
/// OVS cannot run it.
fn ovs_config(pcap: &str, frames: u32, tag: &str) -> Result<ovs::Config, String> {
    if frames + MBUF_SLACK / 2 > OVS_MAX_MBUFS {
        return Err(format!(
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
        return Err(format!("OVS: {why}"));
    }
    let socket_mem_mb = ((pool as u64 * 3072) >> 20).max(256) as u32 + 128;
    let (src, sink) = devargs(pcap);
    Ok(ovs::Config {
        tag: tag.to_string(),
        pmd_core: 1,
        main_core: 0,
        socket_mem_mb,
        source_devargs: src,
        sink_devargs: sink,
    })
}

/// `pmd-stats-show`'s "avg. subtable lookups per megaflow hit" of the
/// first PMD thread.
fn parse_subtable_lookups(text: &str) -> Option<f64> {
    text.lines()
        .skip_while(|l| !l.starts_with("pmd thread"))
        .find_map(|l| {
            l.trim()
                .strip_prefix("avg. subtable lookups per megaflow hit:")
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// OVS-DPDK on `pcap` with `rule_text`; with `probes`, also the classifier work from
/// `pmd-stats-show` (subtable lookups per megaflow hit and per packet).
fn run_ovs_probes(
    pcap: &str,
    frames: u32,
    rule_text: &str,
    secs: u64,
    tag: &str,
    probes: bool,
) -> Side {
    let cfg = match ovs_config(pcap, frames, tag) {
        Ok(c) => c,
        Err(e) => return Side::na(e),
    };
    let mut o = match ovs::Ovs::start(&cfg) {
        Ok(o) => o,
        Err(e) => return Side::na(e),
    };
    if let Err(e) = o.replace_flows(rule_text) {
        return Side::na(e);
    }
    let mut warmup_secs = 1.0;
    let result = (|| -> Result<Side, String> {
        // Warm-up: upcalls install the megaflows, caches fill.
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        if probes {
            // Many masks make megaflow set-up slow (thousands of upcalls per
            // second): measure the steady state, once fewer than 0.1% of the
            // packets of a second go to the slow path (at most 60 s).
            loop {
                o.pmd_stats_clear()?;
                std::thread::sleep(Duration::from_secs(1));
                let p = o.pmd_stats()?;
                if p.upcalls * 1000 <= p.packets || t0.elapsed() > Duration::from_secs(60) {
                    break;
                }
            }
            warmup_secs = t0.elapsed().as_secs_f64();
        }
        o.pmd_stats_clear()?;
        let samples = o.tx_rates(ovs::BRIDGE, ovs::OF_OUT, secs)?;
        let pmd = o.pmd_stats()?;
        let classifier = if probes {
            let text = o.appctl(&["dpif-netdev/pmd-stats-show"])?;
            let per_hit = parse_subtable_lookups(&text);
            let pkts = pmd.packets.max(1) as f64;
            Some(Probes {
                ovs_warmup_seconds: Some(warmup_secs),
                subtable_lookups_per_megaflow_hit: per_hit,
                subtable_probes_per_packet: per_hit.map(|h| h * pmd.megaflow_hits as f64 / pkts),
                cache_hit_rate: Some((pmd.emc_hits + pmd.smc_hits) as f64 / pkts),
                ..Probes::default()
            })
        } else {
            None
        };
        Ok(Side {
            mpps: Some(report::median(&samples)),
            cycles_per_packet: pmd.processing_cycles_per_packet,
            samples,
            note: None,
            ovs_pmd: Some(pmd),
            classifier,
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
        proc::last_lines(&r.stdout, 20),
        proc::last_lines(&r.stderr, 20)
    );
    Side::from_samples(samples, secs as usize, cycles, "testpmd", &log)
}

/// The classifier work in a `vswitch run --json` summary's switch
/// counters. A per-subtable probe counter is used when the switch has one
/// (any counter whose name contains "probe"); today it has none.
fn vswitch_probes(summary: &serde_json::Value) -> Probes {
    let sw = &summary["switch"];
    let c = &sw["total"]["counters"];
    let get = |k: &str| c[k].as_u64().unwrap_or(0) as f64;
    let rx = get("rx_packets").max(1.0);
    let probe = c.as_object().and_then(|m| {
        m.iter()
            .find(|(k, _)| k.contains("probe"))
            .and_then(|(_, v)| v.as_u64())
    });
    Probes {
        ovs_warmup_seconds: None,
        subtable_lookups_per_megaflow_hit: None,
        subtable_probes_per_packet: probe.map(|p| p as f64 / rx),
        classifier_lookups_per_packet: Some((get("cache_misses") + get("cache_bypassed")) / rx),
        cache_hit_rate: sw["total"]["cache_hit_rate"].as_f64(),
        subtables: sw["subtables"].as_u64(),
    }
}

/// `vswitch run`'s EAL arguments (lcores 0-1, no PCI, no telemetry, file
/// prefix `perf-sw-vs-TAG`, hugepages when free) and the guard that
/// removes that prefix's runtime dir and hugepage files.
fn vswitch_eal(tag: &str) -> (String, EalRuntimeDir) {
    let mut eal = vec![
        "-l".to_string(),
        "0,1".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        format!("--file-prefix=perf-sw-vs-{tag}"),
    ];
    eal.extend(proc::eal_memory_args());
    (eal.join(" "), EalRuntimeDir(format!("perf-sw-vs-{tag}")))
}

fn run_vswitch_probes(
    pcap: &str,
    frames: u32,
    flows_file: &Path,
    secs: u64,
    tag: &str,
    probes: bool,
) -> Side {
    let mbufs = pool_size(frames);
    if let Some(why) = hugepage_shortfall(mbufs) {
        return Side::na(format!("vswitch: {why}"));
    }
    let (p0, p1) = devargs(pcap);
    let (eal, _cleanup) = vswitch_eal(tag);
    let mut c = Command::new(proc::vswitch_bin());
    c.args(["run", "--eal", &eal, "--port", &p0, "--port", &p1]);
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
    let (samples, summary) = proc::vswitch_json_rates(&r.stdout, 1);
    let cycles = summary
        .as_ref()
        .and_then(|s| s["cycles_per_packet"].as_f64());
    let classifier = summary.as_ref().filter(|_| probes).map(vswitch_probes);
    let log = format!(
        "{}\n{}",
        proc::last_lines(&r.stdout, 20),
        proc::last_lines(&r.stderr, 20)
    );
    Side {
        classifier,
        ..Side::from_samples(samples, secs as usize, cycles, "vswitch", &log)
    }
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

// ---------------------------------------------------------------------
// --pipeline and --acl: one more rule set against both switches.

/// What one rule set measured: testpmd's ceiling and both switches on
/// the same pcap (the fields every `--pipeline` and `--acl` JSON line ends
/// with).
#[derive(Serialize)]
struct Measured {
    frame_len: usize,
    pcap_frames: u32,
    seconds: u64,
    rounds: u32,
    ovs: Side,
    testpmd_mac: Side,
    vswitch: Side,
    vswitch_over_ovs: Option<f64>,
}

/// testpmd's ceiling on `pcap` (`frames` frames), then OVS (`ovs_rules`)
/// and vswitch (`vs_file`) on it, `rounds` times interleaved.
#[allow(clippy::too_many_arguments)]
fn measure(
    a: &Args,
    case: &str,
    pcap: &Path,
    frames: u32,
    ovs_rules: &str,
    vs_file: &Path,
    tag: &str,
    probes: bool,
) -> Measured {
    let pcap = pcap.to_string_lossy().into_owned();
    let tp = testpmd_ceiling(a, case, &pcap, frames, tag);
    let (o, v) = interleaved(a, case, (&pcap, frames), (ovs_rules, vs_file), tag, probes);
    Measured {
        frame_len: a.len + 4,
        pcap_frames: frames,
        seconds: a.seconds,
        rounds: a.rounds,
        vswitch_over_ovs: ratio(&v, &o),
        ovs: o,
        testpmd_mac: tp,
        vswitch: v,
    }
}

/// OVS (`ovs_rules`) and vswitch (`vs_file`) on `pcap` of `frames`
/// frames, `a.rounds` rounds interleaved, each side combined over them.
fn interleaved(
    a: &Args,
    case: &str,
    (pcap, frames): (&str, u32),
    (ovs_rules, vs_file): (&str, &Path),
    tag: &str,
    probes: bool,
) -> (Side, Side) {
    let (mut os, mut vs) = (Vec::new(), Vec::new());
    for round in 0..a.rounds {
        let tag = format!("{tag}-{round}");
        os.push(if a.no_ovs {
            Side::na("skipped (--no-ovs)")
        } else {
            eprintln!("[{case}] ovs-vswitchd-dpdk ...");
            run_ovs_probes(pcap, frames, ovs_rules, a.seconds, &tag, probes)
        });
        eprintln!("[{case}] vswitch run --flows ...");
        vs.push(run_vswitch_probes(
            pcap, frames, vs_file, a.seconds, &tag, probes,
        ));
    }
    (combine(os), combine(vs))
}

fn ratio(v: &Side, o: &Side) -> Option<f64> {
    match (v.mpps, o.mpps) {
        (Some(v), Some(o)) if o > 0.0 => Some(v / o),
        _ => None,
    }
}

fn testpmd_ceiling(a: &Args, what: &str, pcap: &str, frames: u32, tag: &str) -> Side {
    if a.no_testpmd {
        return Side::na("skipped (--no-testpmd)");
    }
    eprintln!("[{what}] dpdk-testpmd --forward-mode=mac ...");
    combine(
        (0..a.rounds)
            .map(|r| run_testpmd(pcap, frames, a.seconds, &format!("{tag}-{r}")))
            .collect(),
    )
}

#[derive(Serialize)]
struct PipelineResult {
    case: &'static str,
    flows: u32,
    tables: u32,
    rules_per_table: u32,
    rules_total: usize,
    #[serde(flatten)]
    m: Measured,
}

#[derive(Serialize)]
struct AclResult {
    case: &'static str,
    flows: u32,
    rules: u32,
    miss: AclMiss,
    mask_shapes: usize,
    #[serde(flatten)]
    m: Measured,
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured (a side is n/a)",
    }
}

fn pipeline_case(a: &Args, flows_axis: &[u32], dir: &Path, pid: u32) {
    let mut results = Vec::new();
    let ovs_rules = rules::pipeline_set(a.pipeline_rules, rules::OVS_PORTS);
    let vs_file = dir.join("vswitch-pipeline.flows");
    std::fs::write(
        &vs_file,
        rules::pipeline_set(a.pipeline_rules, rules::VSWITCH_PORTS),
    )
    .expect("write rules");
    for &flows in flows_axis {
        let pcap = dir.join(format!("flows-{flows}.pcap"));
        let frames = frames::write_flows_pcap(&pcap, flows, a.len).unwrap_or_else(|e| {
            eprintln!("pcap for {flows} flows: {e}");
            std::process::exit(2);
        });
        let case = format!("pipeline, {} flows", short(flows));
        let tag = format!("{pid}-pl-{flows}");
        let r = PipelineResult {
            case: "pipeline",
            flows,
            tables: 3,
            rules_per_table: a.pipeline_rules,
            rules_total: ovs_rules.lines().count(),
            m: measure(a, &case, &pcap, frames, &ovs_rules, &vs_file, &tag, false),
        };
        report::json_line("switch", &r);
        results.push(r);
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            rate_row(
                format!(
                    "3 tables x {} rules, {} flows",
                    short(r.rules_per_table),
                    short(r.flows)
                ),
                &r.m.ovs,
                &r.m.testpmd_mac,
                &r.m.vswitch,
                r.m.vswitch_over_ovs,
            )
        })
        .collect();
    report::table(
        &format!(
            "multi-table pipeline (table 0 classify -> 1 ACL -> 2 output), {}-byte frames, 1 forwarding core, {} s per program",
            a.len + 4,
            a.seconds
        ),
        &RATE_COLUMNS,
        &rows,
    );
    for r in &results {
        println!(
            "  goal [pipeline, {} flows]: vswitch >= 3x OVS -> {}",
            short(r.flows),
            verdict(r.m.vswitch_over_ovs.map(|x| x >= 3.0))
        );
    }
}

fn acl_case(a: &Args, flows_axis: &[u32], dir: &Path, pid: u32) {
    let mut results = Vec::new();
    for &flows in flows_axis {
        let pcap = dir.join(format!("acl-{flows}.pcap"));
        let frames = acl::write_pcap(&pcap, flows, a.len).unwrap_or_else(|e| {
            eprintln!("ACL pcap for {flows} flows: {e}");
            std::process::exit(2);
        });
        let (ovs_set, vs_set) = match (
            rules::acl_rule_set_with(
                flows,
                a.acl_rules,
                rules::OVS_PORTS,
                a.acl_miss == AclMiss::Near,
            ),
            rules::acl_rule_set_with(
                flows,
                a.acl_rules,
                rules::VSWITCH_PORTS,
                a.acl_miss == AclMiss::Near,
            ),
        ) {
            (Ok(o), Ok(v)) => (o, v),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("--acl-rules {}: {e}", a.acl_rules);
                std::process::exit(2);
            }
        };
        let shapes = ovs_set
            .iter()
            .map(|r| r.shape())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let vs_file = dir.join(format!("vswitch-acl-{flows}-{:?}.flows", a.acl_miss));
        std::fs::write(&vs_file, rules::acl_text(&vs_set)).expect("write rules");
        let case = format!("acl, {} flows", short(flows));
        let tag = format!("{pid}-acl-{flows}");
        let r = AclResult {
            case: "acl",
            flows,
            rules: a.acl_rules,
            miss: a.acl_miss,
            mask_shapes: shapes,
            m: measure(
                a,
                &case,
                &pcap,
                frames,
                &rules::acl_text(&ovs_set),
                &vs_file,
                &tag,
                true,
            ),
        };
        report::json_line("switch", &r);
        results.push(r);
    }
    let probe = |s: &Side, f: fn(&Probes) -> Option<f64>, prec: usize| {
        fmt(s.classifier.as_ref().and_then(f), prec)
    };
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                format!(
                    "acl {} rules/{} masks, {} misses, {} flows",
                    short(r.rules),
                    r.mask_shapes,
                    if r.miss == AclMiss::Near {
                        "near"
                    } else {
                        "far"
                    },
                    short(r.flows)
                ),
                fmt(r.m.ovs.mpps, 2),
                fmt(r.m.ovs.cycles_per_packet, 1),
                probe(&r.m.ovs, |p| p.subtable_lookups_per_megaflow_hit, 2),
                probe(&r.m.ovs, |p| p.subtable_probes_per_packet, 2),
                fmt(r.m.testpmd_mac.mpps, 2),
                fmt(r.m.vswitch.mpps, 2),
                fmt(r.m.vswitch.cycles_per_packet, 1),
                probe(&r.m.vswitch, |p| p.subtable_probes_per_packet, 2),
                probe(&r.m.vswitch, |p| p.classifier_lookups_per_packet, 4),
                fmt(r.m.vswitch_over_ovs, 2),
            ]
        })
        .collect();
    report::table(
        &format!(
            "ACL: mixed TCP/UDP 5-tuples, {}-byte frames, 1 forwarding core, {} s per program",
            a.len + 4,
            a.seconds
        ),
        &[
            "case",
            "OVS Mpps",
            "OVS cyc/pkt",
            "OVS subtbl/mf-hit",
            "OVS probes/pkt",
            "testpmd-mac Mpps",
            "vswitch Mpps",
            "vswitch cyc/pkt",
            "vswitch probes/pkt",
            "vswitch cls-lookups/pkt",
            "vswitch/OVS",
        ],
        &rows,
    );
    if results.iter().any(|r| {
        r.m.vswitch
            .classifier
            .as_ref()
            .is_some_and(|p| p.subtable_probes_per_packet.is_none())
    }) {
        println!(
            "  vswitch probes/pkt n/a: the switch counts no subtable probes (it would need a \
             per-core `subtable_probes` counter in switch/src/stats.rs, added to by \
             Classifier::lookup per subtable probed); cls-lookups/pkt = (cache misses + \
             bypassed) / rx packets: all other packets are exact-match cache hits"
        );
    }
    for r in &results {
        println!(
            "  goal [acl, {} flows]: vswitch >= 10x OVS -> {}",
            short(r.flows),
            verdict(r.m.vswitch_over_ovs.map(|x| x >= 10.0))
        );
    }
}

// ---------------------------------------------------------------------
// --churn: forwarding while rules come and go.

/// Churn rules installed before the first window: deletions remove rules
/// added long before (as a controller's would), and the rule count stays
/// base + CHURN_LIVE (+1 between an add and the next delete).
const CHURN_LIVE: u32 = 30;

/// Flow-mod number `j` of the churn stream: even `j` adds churn rule
/// `CHURN_LIVE + j/2`, odd `j` deletes (strictly) churn rule `j/2`.
fn churn_mod(j: u64) -> (bool, String) {
    let m = j / 2;
    if j.is_multiple_of(2) {
        (
            true,
            rules::churn_rule(((CHURN_LIVE as u64 + m) % 65536) as u32).0,
        )
    } else {
        (false, rules::churn_rule((m % 65536) as u32).1)
    }
}

/// One side at one churn rate.
#[derive(Serialize, Default, Clone)]
struct ChurnSide {
    mpps: Option<f64>,
    samples: Vec<f64>,
    /// Flow-mods per second asked for.
    target_mods_per_s: u32,
    /// Flow-mods acknowledged per second over the measured window (a side
    /// that cannot keep up shows less than the target).
    achieved_mods_per_s: Option<f64>,
    mods_ok: u64,
    mods_failed: u64,
    /// Rules in the switch after the window, and how many there should be.
    rules_after: Option<u64>,
    rules_expected: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl ChurnSide {
    fn na(rate: u32, why: impl Into<String>) -> ChurnSide {
        let why = why.into();
        eprintln!("  n/a: {why}");
        ChurnSide {
            target_mods_per_s: rate,
            note: Some(why),
            ..ChurnSide::default()
        }
    }
}

/// What the churn driver needs from a switch.
trait ChurnTarget {
    /// The sink port's tx packet counter.
    fn tx(&mut self) -> Result<u64, String>;
    /// Applies flow-mods `mods`: (acknowledged, failed).
    fn apply(&mut self, mods: std::ops::Range<u64>) -> Result<(u64, u64), String>;
    /// Installed rules.
    fn rule_count(&mut self) -> Result<u64, String>;
}

/// One churn window: a second without flow-mods (caches refill), then
/// `secs` one-second samples of the sink rate while flow-mods run at
/// `rate` per second, issued on a 100 ms grid (each tick catches up to
/// `rate × elapsed`: a slow side falls behind and its achieved rate shows it).
fn churn_window(
    t: &mut dyn ChurnTarget,
    rate: u32,
    secs: u64,
    next_mod: &mut u64,
    base_rules: u64,
) -> Result<ChurnSide, String> {
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    let mut prev = (start, t.tx()?);
    let mut samples = Vec::new();
    let (mut issued, mut ok, mut failed) = (0u64, 0u64, 0u64);
    let mut tick = start;
    let mut next_sample = start + Duration::from_secs(1);
    loop {
        // Flow-mods due by now first: the last sample then closes a window
        // whose flow-mods were all issued.
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        if due > issued {
            let (o, f) = t.apply(*next_mod..*next_mod + (due - issued))?;
            ok += o;
            failed += f;
            *next_mod += due - issued;
            issued = due;
        }
        let now = Instant::now();
        if now >= next_sample {
            let n = t.tx()?;
            let now = Instant::now();
            let dt = now.duration_since(prev.0).as_secs_f64();
            samples.push(n.saturating_sub(prev.1) as f64 / dt / 1e6);
            prev = (now, n);
            next_sample += Duration::from_secs(1);
            if samples.len() as u64 >= secs {
                break;
            }
        }
        tick += Duration::from_millis(100);
        let wake = tick.min(next_sample);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let elapsed = prev.0.duration_since(start).as_secs_f64();
    Ok(ChurnSide {
        mpps: Some(report::median(&samples)),
        samples,
        target_mods_per_s: rate,
        achieved_mods_per_s: Some(ok as f64 / elapsed.max(1e-9)),
        mods_ok: ok,
        mods_failed: failed,
        rules_after: t.rule_count().ok(),
        rules_expected: base_rules + CHURN_LIVE as u64 + *next_mod % 2,
        note: None,
    })
}

/// Runs `f` with the calling thread pinned to CPU 0, the control core
/// (EAL main lcore, OVS's main thread, vswitch's control thread): the
/// flow-mod driver and the ovs-ofctl it starts stay off the forwarding
/// core. The thread's old CPU set is restored afterwards.
fn on_cpu0<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: cpu_set_t is plain data; the calls get valid pointers and
    // the size of the set; pid 0 means the calling thread.
    let old = unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        let got = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old);
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
        (got == 0).then_some(old)
    };
    let r = f();
    if let Some(old) = old {
        // SAFETY: as above.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &old) };
    }
    r
}

/// OVS under churn: `ovs-ofctl -O OpenFlow13 add-flows unix:.../br0.mgmt -`
/// with `add`/`delete_strict` lines, one process per 100 ms tick.
struct OvsChurn<'a> {
    o: &'a ovs::Ovs,
    mgmt: String,
    last_error: Option<String>,
}

impl ChurnTarget for OvsChurn<'_> {
    fn tx(&mut self) -> Result<u64, String> {
        self.o.tx_packets(ovs::OF_OUT)
    }
    fn apply(&mut self, mods: std::ops::Range<u64>) -> Result<(u64, u64), String> {
        use std::io::Write;
        let n = mods.end - mods.start;
        let mut text = String::new();
        for j in mods {
            let (add, r) = churn_mod(j);
            text.push_str(if add { "add " } else { "delete_strict " });
            text.push_str(&r);
            text.push('\n');
        }
        let mut c = Command::new("ovs-ofctl");
        c.args(["-O", "OpenFlow13", "add-flows", &self.mgmt, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().map_err(|e| format!("run ovs-ofctl: {e}"))?;
        let _ = child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes());
        let out = child
            .wait_with_output()
            .map_err(|e| format!("ovs-ofctl: {e}"))?;
        if out.status.success() {
            Ok((n, 0))
        } else {
            self.last_error = Some(String::from_utf8_lossy(&out.stderr).trim().to_string());
            Ok((0, n))
        }
    }
    fn rule_count(&mut self) -> Result<u64, String> {
        let out = Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "dump-aggregate", &self.mgmt])
            .output()
            .map_err(|e| format!("ovs-ofctl: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .split("flow_count=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next().and_then(|v| v.parse().ok()))
            .ok_or_else(|| "no flow_count in dump-aggregate".into())
    }
}

/// The churn case's base rules plus the first CHURN_LIVE churn rules.
fn churn_base(n: u32, ports: rules::Ports) -> String {
    let mut s = rules::rule_set(n, ports).expect("rule count checked");
    for i in 0..CHURN_LIVE {
        s.push_str(&rules::churn_rule(i).0);
        s.push('\n');
    }
    s
}

fn churn_ovs(a: &Args, pcap: &str, frames: u32, rates: &[u32], tag: &str) -> Vec<ChurnSide> {
    let all_na = |why: String| {
        rates
            .iter()
            .map(|&r| ChurnSide::na(r, why.clone()))
            .collect()
    };
    let cfg = match ovs_config(pcap, frames, tag) {
        Ok(c) => c,
        Err(e) => return all_na(e),
    };
    let mut o = match ovs::Ovs::start(&cfg) {
        Ok(o) => o,
        Err(e) => return all_na(e),
    };
    if let Err(e) = o.replace_flows(&churn_base(a.churn_rules, rules::OVS_PORTS)) {
        return all_na(e);
    }
    // The bridge's management socket in the instance's private run dir
    // (ovs.rs: OVS_RUNDIR = $TMPDIR/perf-ovs-<tag>).
    let mgmt = format!(
        "unix:{}",
        std::env::temp_dir()
            .join(format!("perf-ovs-{tag}"))
            .join(format!("{}.mgmt", ovs::BRIDGE))
            .display()
    );
    let mut t = OvsChurn {
        o: &o,
        mgmt,
        last_error: None,
    };
    let mut next_mod = 0u64;
    let res: Vec<ChurnSide> = on_cpu0(|| {
        rates
            .iter()
            .map(|&rate| {
                eprintln!("[churn {rate}/s] ovs-vswitchd-dpdk ...");
                match churn_window(&mut t, rate, a.seconds, &mut next_mod, a.churn_rules as u64) {
                    Ok(mut s) => {
                        if s.mods_failed > 0 {
                            s.note = t.last_error.take();
                        }
                        s
                    }
                    Err(e) => ChurnSide::na(rate, e),
                }
            })
            .collect()
    });
    if !o.alive() {
        let why = format!(
            "ovs-vswitchd died during the run; log tail:\n{}",
            o.log_tail(30)
        );
        return all_na(why);
    }
    res
}

/// vswitch under churn: JSON lines over its control socket, one
/// request and reply at a time (`flows_add`, `flows_del` strict).
struct VsChurn {
    rd: std::io::BufReader<std::os::unix::net::UnixStream>,
    wr: std::os::unix::net::UnixStream,
    last_error: Option<String>,
}

impl VsChurn {
    fn connect(path: &Path) -> std::io::Result<VsChurn> {
        let s = std::os::unix::net::UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(VsChurn {
            wr: s.try_clone()?,
            rd: std::io::BufReader::new(s),
            last_error: None,
        })
    }
    fn req(&mut self, r: &switch::control::Request) -> Result<switch::control::Reply, String> {
        use std::io::{BufRead, Write};
        let mut line = serde_json::to_string(r).map_err(|e| e.to_string())?;
        line.push('\n');
        self.wr
            .write_all(line.as_bytes())
            .map_err(|e| format!("control socket: {e}"))?;
        let mut resp = String::new();
        self.rd
            .read_line(&mut resp)
            .map_err(|e| format!("control socket: {e}"))?;
        serde_json::from_str(resp.trim()).map_err(|e| format!("bad reply {resp:?}: {e}"))
    }
}

impl ChurnTarget for VsChurn {
    fn tx(&mut self) -> Result<u64, String> {
        match self.req(&switch::control::Request::PortsShow)? {
            switch::control::Reply::Ports { ports } => ports
                .iter()
                .find(|p| p.port == 1)
                .map(|p| p.tx_packets)
                .ok_or_else(|| "no port 1 in ports_show".into()),
            r => Err(format!("ports_show: {r:?}")),
        }
    }
    fn apply(&mut self, mods: std::ops::Range<u64>) -> Result<(u64, u64), String> {
        use switch::control::{Reply, Request};
        let (mut ok, mut failed) = (0, 0);
        for j in mods {
            let (add, r) = churn_mod(j);
            let req = if add {
                Request::FlowsAdd { rule: r }
            } else {
                Request::FlowsDel {
                    filter: r,
                    strict: true,
                }
            };
            match self.req(&req)? {
                Reply::FlowAdded { .. } | Reply::FlowsDeleted { count: 1 } => ok += 1,
                other => {
                    self.last_error = Some(format!("{req:?} -> {other:?}"));
                    failed += 1
                }
            }
        }
        Ok((ok, failed))
    }
    fn rule_count(&mut self) -> Result<u64, String> {
        match self.req(&switch::control::Request::Stats)? {
            switch::control::Reply::Stats(s) => Ok(s.rules as u64),
            r => Err(format!("stats: {r:?}")),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn churn_vswitch(
    a: &Args,
    pcap: &str,
    frames: u32,
    rates: &[u32],
    dir: &Path,
    tag: &str,
) -> Vec<ChurnSide> {
    let all_na = |why: String| {
        rates
            .iter()
            .map(|&r| ChurnSide::na(r, why.clone()))
            .collect()
    };
    let mbufs = pool_size(frames);
    if let Some(why) = hugepage_shortfall(mbufs) {
        return all_na(format!("vswitch: {why}"));
    }
    let flows_file = dir.join(format!("vswitch-churn-{tag}.flows"));
    std::fs::write(&flows_file, churn_base(a.churn_rules, rules::VSWITCH_PORTS))
        .expect("write rules");
    let sock = dir.join(format!("vs-{tag}.sock"));
    let (p0, p1) = devargs(pcap);
    let (eal, _cleanup) = vswitch_eal(tag);
    // Long enough for every window; stopped with SIGINT when done.
    let budget = 30 + rates.len() as u64 * (a.seconds + 3) + startup_secs(frames);
    let log = dir.join(format!("vswitch-churn-{tag}.log"));
    let out = match std::fs::File::create(&log) {
        Ok(f) => f,
        Err(e) => return all_na(format!("create {}: {e}", log.display())),
    };
    let mut c = Command::new(proc::vswitch_bin());
    c.args(["run", "--eal", &eal, "--port", &p0, "--port", &p1])
        .arg("--flows")
        .arg(&flows_file)
        .arg("--control")
        .arg(&sock)
        .args([
            "--duration",
            &budget.to_string(),
            "--stats-interval",
            "0",
            "--mbufs",
            &mbufs.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup log"))
        .stderr(out);
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            return all_na(format!(
                "run {}: {e} (build it: cargo build --release)",
                proc::vswitch_bin().display()
            ))
        }
    };
    perf::cleanup::record_child(&child);
    let log_tail = || proc::last_lines(&std::fs::read_to_string(&log).unwrap_or_default(), 20);
    let res = (|| -> Result<Vec<ChurnSide>, String> {
        // Control socket up, then traffic on the sink.
        let t0 = Instant::now();
        let mut t = loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!(
                    "vswitch exited ({st}) before serving {}",
                    sock.display()
                ));
            }
            if let Ok(t) = VsChurn::connect(&sock) {
                break t;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(format!("no control socket {} after 60 s", sock.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while t.tx()? == 0 {
            if t0.elapsed() > Duration::from_secs(60 + startup_secs(frames)) {
                return Err("no traffic on the sink port".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut next_mod = 0u64;
        Ok(on_cpu0(|| {
            rates
                .iter()
                .map(|&rate| {
                    eprintln!("[churn {rate}/s] vswitch run --control ...");
                    match churn_window(&mut t, rate, a.seconds, &mut next_mod, a.churn_rules as u64)
                    {
                        Ok(mut s) => {
                            if s.mods_failed > 0 {
                                s.note = t.last_error.take();
                            }
                            s
                        }
                        Err(e) => ChurnSide::na(rate, e),
                    }
                })
                .collect()
        }))
    })();
    // SAFETY: signalling our own child (not reaped yet).
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t0 = Instant::now();
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match res {
        Ok(v) => v,
        Err(e) => all_na(format!("{e}; vswitch output:\n{}", log_tail())),
    }
}

#[derive(Serialize)]
struct ChurnResult {
    case: &'static str,
    flows: u32,
    rules: u32,
    live_churn_rules: u32,
    flow_mods_per_s: u32,
    frame_len: usize,
    pcap_frames: u32,
    seconds: u64,
    rounds: u32,
    ovs: ChurnSide,
    vswitch: ChurnSide,
    vswitch_over_ovs: Option<f64>,
    vswitch_over_own_churn_free: Option<f64>,
    ovs_over_own_churn_free: Option<f64>,
}

/// Rounds of one side at one rate: median rate, summed flow-mods.
fn combine_churn(v: Vec<ChurnSide>) -> ChurnSide {
    let ok: Vec<&ChurnSide> = v.iter().filter(|s| s.mpps.is_some()).collect();
    if ok.is_empty() {
        return v.into_iter().next().unwrap_or_default();
    }
    let med = |f: fn(&ChurnSide) -> Option<f64>| {
        let x: Vec<f64> = ok.iter().filter_map(|s| f(s)).collect();
        (!x.is_empty()).then(|| report::median(&x))
    };
    let last = ok[ok.len() - 1];
    ChurnSide {
        mpps: med(|s| s.mpps),
        samples: ok.iter().flat_map(|s| s.samples.clone()).collect(),
        target_mods_per_s: last.target_mods_per_s,
        achieved_mods_per_s: med(|s| s.achieved_mods_per_s),
        mods_ok: ok.iter().map(|s| s.mods_ok).sum(),
        mods_failed: ok.iter().map(|s| s.mods_failed).sum(),
        rules_after: last.rules_after,
        rules_expected: last.rules_expected,
        note: ok.iter().find_map(|s| s.note.clone()),
    }
}

fn churn_case(a: &Args, flows_axis: &[u32], dir: &Path, pid: u32) {
    let mut rates = vec![0u32];
    rates.extend(a.churn.iter().copied().filter(|&r| r > 0));
    rates.dedup();
    let mut results = Vec::new();
    for &flows in flows_axis {
        let pcap = dir.join(format!("flows-{flows}.pcap"));
        let frames = frames::write_flows_pcap(&pcap, flows, a.len).unwrap_or_else(|e| {
            eprintln!("pcap for {flows} flows: {e}");
            std::process::exit(2);
        });
        let pcap = pcap.to_string_lossy().into_owned();
        let (mut os, mut vs): (Vec<Vec<ChurnSide>>, Vec<Vec<ChurnSide>>) = (vec![], vec![]);
        for round in 0..a.rounds {
            let tag = format!("{pid}-ch-{flows}-{round}");
            os.push(if a.no_ovs {
                rates
                    .iter()
                    .map(|&r| ChurnSide::na(r, "skipped (--no-ovs)"))
                    .collect()
            } else {
                churn_ovs(a, &pcap, frames, &rates, &tag)
            });
            vs.push(churn_vswitch(a, &pcap, frames, &rates, dir, &tag));
        }
        let per_rate = |v: &[Vec<ChurnSide>], i: usize| {
            combine_churn(v.iter().map(|r| r[i].clone()).collect())
        };
        let (o0, v0) = (per_rate(&os, 0).mpps, per_rate(&vs, 0).mpps);
        for (i, &rate) in rates.iter().enumerate() {
            let (o, v) = (per_rate(&os, i), per_rate(&vs, i));
            let div = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                _ => None,
            };
            let r = ChurnResult {
                case: "churn",
                flows,
                rules: a.churn_rules,
                live_churn_rules: CHURN_LIVE,
                flow_mods_per_s: rate,
                frame_len: a.len + 4,
                pcap_frames: frames,
                seconds: a.seconds,
                rounds: a.rounds,
                vswitch_over_ovs: div(v.mpps, o.mpps),
                vswitch_over_own_churn_free: div(v.mpps, v0),
                ovs_over_own_churn_free: div(o.mpps, o0),
                ovs: o,
                vswitch: v,
            };
            report::json_line("switch", &r);
            results.push(r);
        }
    }
    let mods = |s: &ChurnSide| {
        let mut m = fmt(s.achieved_mods_per_s, 0);
        if s.mods_failed > 0 {
            m.push_str(&format!(" ({} failed)", s.mods_failed));
        }
        if s.rules_after.is_some_and(|n| n != s.rules_expected) {
            m.push_str(&format!(
                " (rules {} != {})",
                s.rules_after.unwrap_or(0),
                s.rules_expected
            ));
        }
        m
    };
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                format!(
                    "{} flows, {} rules, {}",
                    short(r.flows),
                    short(r.rules),
                    if r.flow_mods_per_s == 0 {
                        "no churn".to_string()
                    } else {
                        format!("{}/s", r.flow_mods_per_s)
                    }
                ),
                fmt(r.ovs.mpps, 2),
                mods(&r.ovs),
                fmt(r.ovs_over_own_churn_free, 2),
                fmt(r.vswitch.mpps, 2),
                mods(&r.vswitch),
                fmt(r.vswitch_over_own_churn_free, 2),
                fmt(r.vswitch_over_ovs, 2),
            ]
        })
        .collect();
    report::table(
        &format!(
            "forwarding under flow-mod churn (add + strict delete of /32 drops, {} live), {}-byte frames, 1 forwarding core, {} s per rate",
            CHURN_LIVE,
            a.len + 4,
            a.seconds
        ),
        &[
            "case",
            "OVS Mpps",
            "OVS mods/s",
            "OVS/no-churn",
            "vswitch Mpps",
            "vswitch mods/s",
            "vswitch/no-churn",
            "vswitch/OVS",
        ],
        &rows,
    );
    for r in results.iter().filter(|r| r.flow_mods_per_s > 0) {
        println!(
            "  goal [churn {}/s, {} flows]: vswitch >= 3x OVS -> {}",
            r.flow_mods_per_s,
            short(r.flows),
            verdict(r.vswitch_over_ovs.map(|x| x >= 3.0))
        );
        if r.flow_mods_per_s == 100 {
            println!(
                "  goal [churn 100/s, {} flows]: vswitch within 10% of its churn-free rate -> {}",
                short(r.flows),
                verdict(r.vswitch_over_own_churn_free.map(|x| x >= 0.9))
            );
        }
    }
}

fn main() {
    let m = Args::command().get_matches();
    let a = Args::from_arg_matches(&m).unwrap_or_else(|e| e.exit());
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let extra = a.pipeline || !a.churn.is_empty() || a.acl;
    // The new cases replace the flows x rules matrix unless --rules is given.
    let matrix = !extra || given("rules");
    let extra_flows = if given("flows") {
        a.flows.clone()
    } else {
        vec![10_000]
    };
    if a.churn_rules == 0 || a.churn_rules > rules::MAX_RULES {
        eprintln!("--churn-rules {}: 1..={}", a.churn_rules, rules::MAX_RULES);
        std::process::exit(2);
    }
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
    let results: Vec<CaseResult> = a
        .flows
        .iter()
        .filter(|_| matrix)
        .flat_map(|&flows| matrix_cases(&a, flows, &dir, pid))
        .collect();
    if a.pipeline {
        pipeline_case(&a, &extra_flows, &dir, pid);
    }
    if a.acl {
        acl_case(&a, &extra_flows, &dir, pid);
    }
    if !a.churn.is_empty() {
        churn_case(&a, &extra_flows, &dir, pid);
    }
    if !matrix {
        println!("  load average before/after: {load_before} / {}", loadavg());
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    report_matrix(&a, &results, &load_before);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The flows × rules matrix's cases for `flows` flows: testpmd's `mac`
/// ceiling once, then OVS and vswitch for each rule count, `a.rounds`
/// rounds each; every case is printed as a JSON line as it ends.
fn matrix_cases(a: &Args, flows: u32, dir: &Path, pid: u32) -> Vec<CaseResult> {
    let mut results = Vec::new();
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
    let what = format!("{} flows", short(flows));
    let tp = testpmd_ceiling(a, &what, &pcap, frames, &format!("{pid}-{flows}"));
    for &nrules in &a.rules {
        let tag = format!("{pid}-{flows}-{nrules}");
        let case = format!("{} flows, {} rules", short(flows), short(nrules));
        let ovs_rules = rules::rule_set(nrules, rules::OVS_PORTS).expect("rule count checked");
        let vs_rules = rules::rule_set(nrules, rules::VSWITCH_PORTS).expect("rule count checked");
        let vs_file = dir.join(format!("vswitch-{nrules}.flows"));
        std::fs::write(&vs_file, vs_rules).expect("write rules");
        let (o, v) = interleaved(
            a,
            &case,
            (&pcap, frames),
            (&ovs_rules, &vs_file),
            &tag,
            false,
        );
        let r = CaseResult {
            flows,
            rules: nrules,
            frame_len: a.len + 4,
            pcap_frames: frames,
            seconds: a.seconds,
            rounds: a.rounds,
            vswitch_over_ovs: ratio(&v, &o),
            ovs: o,
            testpmd_mac: tp.clone(),
            vswitch: v,
        };
        report::json_line("switch", &r);
        results.push(r);
    }
    results
}

/// The matrix's table, the load average, and each case's goal.
fn report_matrix(a: &Args, results: &[CaseResult], load_before: &str) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            rate_row(
                format!("{} flows, {} rules", short(r.flows), short(r.rules)),
                &r.ovs,
                &r.testpmd_mac,
                &r.vswitch,
                r.vswitch_over_ovs,
            )
        })
        .collect();
    report::table(
        &format!(
            "flow-table switching, {}-byte frames, 1 forwarding core, {} s per program",
            a.len + 4,
            a.seconds
        ),
        &RATE_COLUMNS,
        &rows,
    );
    println!("  load average before/after: {load_before} / {}", loadavg());
    for r in results {
        let case = format!("{} flows, {} rules", short(r.flows), short(r.rules));
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
                let one = find(results, 1, r.rules);
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
