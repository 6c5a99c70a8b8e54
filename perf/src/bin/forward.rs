//! Port-to-port forwarding against `dpdk-testpmd --forward-mode=io`, same
//! ports, same traffic, same single forwarding core, in the same run, for two
//! vswitch modes: `--xconnect` (the patch panel, no flow table: the same work
//! as testpmd io) and one rule `in_port=0,actions=output:1` through the flow
//! cache and classifier (key extraction, cache lookup, actions per packet).
//!
//! Traffic: a pcap of 64-byte UDP frames replayed forever by `net_pcap`
//! (`infinite_rx=1`) into a `net_null,no-rx=1` sink. Rates are the medians of
//! the per-second tx rates of the sink port after one warm-up second, as each
//! program reports them itself (testpmd `--stats-period 1`, vswitch `--json`).
//!
//! ```text
//! cargo build --release --workspace && target/release/forward [--seconds 8]
//! ```

use std::process::Command;
use std::time::Duration;

use clap::Parser;
use perf::{frames, proc, report};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "vswitch vs testpmd io forwarding, same run")]
struct Args {
    /// Seconds each program forwards.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Frame length without FCS (60 = a 64-byte frame on the wire).
    #[arg(long, default_value_t = 60)]
    len: usize,
    /// Distinct UDP flows in the pcap.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Rounds (each round runs testpmd then vswitch); medians are reported.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
}

#[derive(Serialize, Default, Clone)]
struct Side {
    mpps: f64,
    cycles_per_packet: Option<f64>,
    samples: Vec<f64>,
}

#[derive(Serialize)]
struct Result {
    frame_len: usize,
    flows: u32,
    seconds: u64,
    testpmd: Side,
    vswitch_xconnect: Side,
    vswitch_flow: Side,
    ratio_xconnect: f64,
    ratio_flow: f64,
    goal: f64,
}

fn pcap_args(pcap: &str) -> (String, String) {
    (
        format!("net_pcap0,rx_pcap={pcap},infinite_rx=1"),
        "net_null0,no-rx=1".to_string(),
    )
}

fn run_testpmd(pcap: &str, secs: u64, tag: &str) -> Side {
    let (p0, p1) = pcap_args(pcap);
    let mut c = Command::new("dpdk-testpmd");
    c.args([
        "-l",
        "0,1",
        "--no-pci",
        "--no-telemetry",
        "--file-prefix",
        &format!("bench-tp-{tag}"),
    ]);
    c.args(proc::eal_memory_args());
    c.args(["--vdev", &p0, "--vdev", &p1, "--"]);
    c.args([
        "--forward-mode=io",
        "--auto-start",
        "--stats-period",
        "1",
        "--total-num-mbufs=16384",
        "--record-core-cycles",
        "--nb-cores=1",
    ]);
    let r = proc::run_for(c, Duration::from_secs(secs + 1), Duration::from_secs(10))
        .expect("run dpdk-testpmd");
    // The sink is port 1.
    let (samples, cycles) = proc::parse_testpmd(&r.stdout, 1);
    if samples.is_empty() {
        eprintln!("testpmd produced no samples:\n{}\n{}", r.stdout, r.stderr);
    }
    finish(samples, cycles)
}

fn run_vswitch(pcap: &str, secs: u64, tag: &str, mode: &[&str]) -> Side {
    let (p0, p1) = pcap_args(pcap);
    let mut eal = vec![
        "-l".to_string(),
        "0,1".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
    ];
    eal.push(format!("--file-prefix=bench-vs-{tag}"));
    eal.extend(proc::eal_memory_args());
    let mut c = Command::new(proc::vswitch_bin());
    c.args([
        "run",
        "--eal",
        &eal.join(" "),
        "--port",
        &p0,
        "--port",
        &p1,
        "--json",
    ]);
    c.args(mode);
    c.args([
        "--duration",
        &secs.to_string(),
        "--stats-interval",
        "1",
        "--mbufs",
        "16383",
    ]);
    let r = proc::run_for(c, Duration::from_secs(secs + 5), Duration::from_secs(10))
        .expect("run vswitch");
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
    if samples.is_empty() {
        eprintln!("vswitch produced no samples:\n{}\n{}", r.stdout, r.stderr);
    }
    finish(samples, cycles)
}

fn finish(mut samples: Vec<f64>, cycles: Option<f64>) -> Side {
    // Drop the warm-up sample (partial first second).
    if samples.len() > 2 {
        samples.remove(0);
    }
    Side {
        mpps: report::median(&samples),
        cycles_per_packet: cycles,
        samples,
    }
}

fn main() {
    let a = Args::parse();
    let _cleanup = perf::cleanup::install("forward");
    let dir = std::env::temp_dir().join(format!("perf-forward-{}", std::process::id()));
    perf::cleanup::record(perf::cleanup::Resource::Path(dir.clone()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("traffic.pcap");
    // 1024 frames: enough variety, and net_pcap preloads them into mbufs.
    frames::write_udp_pcap(&pcap, a.flows, 1024.max(a.flows.min(4096)), a.len).expect("write pcap");
    let pcap = pcap.to_string_lossy().into_owned();

    let mut tp = Vec::new();
    let mut vx = Vec::new();
    let mut vf = Vec::new();
    let rule = [
        "--flow",
        "priority=100,in_port=0,actions=output:1",
        "--no-control",
    ];
    for round in 0..a.rounds {
        let tag = format!("{}-{round}", std::process::id());
        tp.push(run_testpmd(&pcap, a.seconds, &tag));
        vx.push(run_vswitch(
            &pcap,
            a.seconds,
            &format!("x{tag}"),
            &["--xconnect", "--no-control"],
        ));
        vf.push(run_vswitch(&pcap, a.seconds, &format!("f{tag}"), &rule));
    }
    let pick = |v: &[Side]| -> Side {
        let m = report::median(&v.iter().map(|s| s.mpps).collect::<Vec<_>>());
        let c: Vec<f64> = v.iter().filter_map(|s| s.cycles_per_packet).collect();
        Side {
            mpps: m,
            cycles_per_packet: (!c.is_empty()).then(|| report::median(&c)),
            samples: v.iter().flat_map(|s| s.samples.clone()).collect(),
        }
    };
    let (tp, vx, vf) = (pick(&tp), pick(&vx), pick(&vf));
    let ratio = |s: &Side| if tp.mpps > 0.0 { s.mpps / tp.mpps } else { 0.0 };
    let (rx, rf) = (ratio(&vx), ratio(&vf));
    let fmt_c = |c: Option<f64>| c.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into());
    let row = |name: &str, s: &Side, r: f64| {
        vec![
            name.to_string(),
            format!("{:.2}", s.mpps),
            fmt_c(s.cycles_per_packet),
            format!("{r:.2}"),
        ]
    };
    report::table(
        &format!(
            "port-to-port forwarding, {}-byte frames, {} flow(s), 1 core, {} s",
            a.len + 4,
            a.flows,
            a.seconds
        ),
        &["program", "Mpps (median)", "cycles/packet", "vs testpmd"],
        &[
            row("dpdk-testpmd io", &tp, 1.0),
            row("vswitch --xconnect", &vx, rx),
            row("vswitch, 1 rule (flow table)", &vf, rf),
        ],
    );
    println!(
        "  goal: vswitch --xconnect >= 0.90 x testpmd io -> {}",
        if rx >= 0.9 { "met" } else { "NOT met" }
    );
    report::json_line(
        "forward",
        &Result {
            frame_len: a.len + 4,
            flows: a.flows,
            seconds: a.seconds,
            testpmd: tp,
            vswitch_xconnect: vx,
            vswitch_flow: vf,
            ratio_xconnect: rx,
            ratio_flow: rf,
            goal: 0.9,
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
}
