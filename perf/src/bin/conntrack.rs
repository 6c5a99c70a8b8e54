//! Connection tracking (issue 15): `vswitch run` against
//! `ovs-vswitchd-dpdk` with the same `ct` flow table, one forwarding core
//! each (OVS: one PMD thread), same frames, same run.
//!
//! Cases (`--cases`, default all four):
//!
//! * `est`: established-flow forwarding. A handshake phase replays
//!   SYN, SYN-ACK, ACK of `--conns` TCP connections once (every SYN of the
//!   set, then every SYN-ACK, then every ACK, so each connection's frames
//!   are `--conns` frames apart: OVS looks a whole receive burst up before
//!   it commits any frame of it); once the switch's tracker holds them (OVS:
//!   `dpctl/dump-conntrack` counts them ESTABLISHED) a second port replays
//!   `--segments` data segments per connection forever (`net_pcap`
//!   `infinite_rx=1`; a replayed segment is an in-window retransmission).
//!   Rate: the sink's forwarded frames per second.
//! * `new`: new connections. Each connection is a SYN (`+new`, committed)
//!   and, `--conns` frames later, the client's RST (its entry closes); the
//!   replay then sends the SYN again, which opens a new connection on the
//!   closed entry (as Linux and OVS do). Rate: connections per second
//!   (SYNs forwarded per second: half the frames).
//! * `est-snat`, `new-snat`: the same through `ct(commit,nat(src=192.0.2.10))`
//!   and `ct(nat)` on every frame (the SYN-ACKs of the handshake are
//!   addressed to the translated address).
//!
//! ```text
//!  OVS:     ofport 1 handshake pcap (once), ofport 3 data pcap (infinite) ─► br0 ─► ofport 2 net_null
//!  vswitch: port 0 handshake pcap (once), port 2 data pcap (vswitch ports add) ─► port 1 net_null
//!  table 0: ip, ct(table=1,zone=1[,nat])      other frames: drop
//!  table 1: +trk+new,tcp → ct(commit,zone=1[,nat(src=192.0.2.10)]),output
//!           +trk+est → output                 anything else (+inv): drop
//! ```
//!
//! Rates are medians of per-second samples after one warm-up second; OVS
//! from `ovs-ofctl dump-ports` and `dpif-netdev/pmd-stats-show` (cycles per
//! packet: processing cycles / packets received, recirculations included in
//! the cycles), vswitch from `--json` port stats and its summary.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/conntrack [--conns 10000] [--segments 4] [--seconds 5] [--cases est,new,est-snat,new-snat]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use perf::tcp_frames::{self as tf, flags};
use perf::{ovs, proc, report};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "vswitch vs OVS-DPDK: connection tracking (ct, SNAT) on one core, same run")]
struct Args {
    /// TCP connections per case (at most 64000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=64_000))]
    conns: u32,
    /// Data segments per connection in the established cases' replay.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    segments: u32,
    /// Seconds each switch forwards after one warm-up second.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Cases to run (comma list).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["est", "new", "est-snat", "new-snat"])]
    cases: Vec<Case>,
    /// Rounds per case (OVS and vswitch interleaved); medians reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// Skip OVS (e.g. when openvswitch-switch-dpdk is not installed).
    #[arg(long)]
    no_ovs: bool,
    /// Write each case's pcaps and flow table to this directory and exit
    /// (to replay them by hand).
    #[arg(long)]
    write_pcaps: Option<PathBuf>,
}

/// One measured case.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Case {
    /// Established connections, data segments.
    Est,
    /// New connections (SYN committed, RST closing).
    New,
    /// `est` through SNAT.
    EstSnat,
    /// `new` through SNAT.
    NewSnat,
}

impl Case {
    fn snat(self) -> bool {
        matches!(self, Case::EstSnat | Case::NewSnat)
    }
    fn established(self) -> bool {
        matches!(self, Case::Est | Case::EstSnat)
    }
    fn name(self) -> &'static str {
        match self {
            Case::Est => "est",
            Case::New => "new",
            Case::EstSnat => "est-snat",
            Case::NewSnat => "new-snat",
        }
    }
}

/// The SNAT address.
const NAT_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 10);

/// The flow table, outputs to `out`.
fn flow_table(case: Case, out: u32) -> String {
    let (nat, commit) = if case.snat() {
        (",nat", format!(",nat(src={NAT_ADDR})"))
    } else {
        ("", String::new())
    };
    format!(
        "table=0,priority=100,ip,actions=ct(table=1,zone=1{nat})\n\
         table=0,priority=0,actions=drop\n\
         table=1,priority=100,ct_state=+trk+new,tcp,actions=ct(commit,zone=1{commit}),output:{out}\n\
         table=1,priority=90,ct_state=+trk+est,actions=output:{out}\n\
         table=1,priority=0,actions=drop\n"
    )
}

/// The pcaps of a case: the handshake (established cases) and the replay.
struct Traffic {
    handshake: Option<(PathBuf, u32)>,
    replay: PathBuf,
    replay_frames: u32,
}

fn traffic(case: Case, a: &Args, dir: &Path) -> std::io::Result<Traffic> {
    let n = a.conns;
    let to = |i: u32| {
        if case.snat() {
            NAT_ADDR
        } else {
            tf::client(i).0
        }
    };
    let tag = case.name();
    if case.established() {
        let mut hs = Vec::with_capacity(3 * n as usize);
        hs.extend((0..n).map(|i| tf::tcp_frame(&tf::from_client(i, flags::SYN, 0))));
        hs.extend((0..n).map(|i| tf::tcp_frame(&tf::syn_ack(i, to(i)))));
        hs.extend((0..n).map(|i| tf::tcp_frame(&tf::from_client(i, flags::ACK, 0))));
        let hs_path = dir.join(format!("{tag}-handshake.pcap"));
        tf::write_pcap(&hs_path, &hs)?;
        let mut data = Vec::with_capacity((n * a.segments) as usize);
        for s in 0..a.segments {
            data.extend(
                (0..n).map(|i| tf::tcp_frame(&tf::from_client(i, flags::PSH | flags::ACK, s))),
            );
        }
        let path = dir.join(format!("{tag}-data.pcap"));
        tf::write_pcap(&path, &data)?;
        Ok(Traffic {
            handshake: Some((hs_path, hs.len() as u32)),
            replay: path,
            replay_frames: data.len() as u32,
        })
    } else {
        let mut v = Vec::with_capacity(2 * n as usize);
        v.extend((0..n).map(|i| tf::tcp_frame(&tf::from_client(i, flags::SYN, 0))));
        v.extend((0..n).map(|i| tf::tcp_frame(&tf::from_client(i, flags::RST, 0))));
        let path = dir.join(format!("{tag}-syn-rst.pcap"));
        tf::write_pcap(&path, &v)?;
        Ok(Traffic {
            handshake: None,
            replay: path,
            replay_frames: v.len() as u32,
        })
    }
}

/// One switch's result in one case; `note` says why it was not measured.
#[derive(Serialize, Default, Clone)]
struct Side {
    /// Frames forwarded to the sink per second (millions).
    mpps: Option<f64>,
    /// Frames taken from the source per second (millions).
    rx_mpps: Option<f64>,
    cycles_per_packet: Option<f64>,
    /// Connections the tracker held after the handshake phase (ESTABLISHED).
    established: Option<usize>,
    samples: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
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
}

/// Waits (≤ 60 s) until `f` returns `Some`.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>, String>) -> Result<T, String> {
    let t = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_ovs(case: Case, a: &Args, t: &Traffic, tag: &str) -> Side {
    let frames = t.replay_frames + t.handshake.as_ref().map_or(0, |h| h.1);
    let socket_mem_mb = (((frames as u64 + 16384) * 3072) >> 20).max(256) as u32 + 256;
    let cfg = ovs::Config {
        tag: tag.to_string(),
        pmd_core: 1,
        main_core: 0,
        socket_mem_mb,
        source_devargs: String::new(),
        sink_devargs: String::new(),
    };
    let sink = ovs::OvsPort::dpdk("sink", ovs::OF_OUT, "net_null0,no-rx=1");
    let mut o = match ovs::Ovs::start_with_ports(&cfg, &[sink], &[]) {
        Ok(o) => o,
        Err(e) => return Side::na(e),
    };
    let r = (|| -> Result<Side, String> {
        o.replace_flows(&flow_table(case, ovs::OF_OUT))?;
        let mut established = None;
        if let Some((hs, n)) = &t.handshake {
            o.add_replay_port("hs", ovs::OF_IN, hs)?;
            let n = *n as u64;
            wait_for("OVS: the handshake replayed", || {
                Ok((o.rx_packets(ovs::OF_IN)? >= n).then_some(()))
            })?;
            std::thread::sleep(Duration::from_millis(500));
            let (all, est) = o.conntrack_entries()?;
            eprintln!("  OVS tracker after the handshake: {all} entries, {est} ESTABLISHED");
            established = Some(est);
        }
        let src = if t.handshake.is_some() { 3 } else { ovs::OF_IN };
        o.add_port(&ovs::OvsPort::dpdk(
            "src",
            src,
            &format!("net_pcap{src},rx_pcap={},infinite_rx=1", t.replay.display()),
        ))?;
        std::thread::sleep(Duration::from_secs(1));
        o.pmd_stats_clear()?;
        let sample = |o: &ovs::Ovs| -> Result<(Instant, u64, u64), String> {
            Ok((
                Instant::now(),
                o.tx_packets(ovs::OF_OUT)?,
                o.rx_packets(src)?,
            ))
        };
        let mut prev = sample(&o)?;
        let (mut tx, mut rx) = (Vec::new(), Vec::new());
        for _ in 0..a.seconds {
            std::thread::sleep(Duration::from_secs(1).saturating_sub(prev.0.elapsed()));
            let now = sample(&o)?;
            let dt = now.0.duration_since(prev.0).as_secs_f64();
            tx.push((now.1 - prev.1) as f64 / dt / 1e6);
            rx.push((now.2 - prev.2) as f64 / dt / 1e6);
            prev = now;
        }
        let pmd = o.pmd_stats()?;
        Ok(Side {
            mpps: Some(report::median(&tx)),
            rx_mpps: Some(report::median(&rx)),
            cycles_per_packet: pmd.processing_cycles_per_packet,
            established,
            samples: tx,
            note: None,
        })
    })();
    let alive = o.alive();
    match r {
        Ok(s) if alive => s,
        Ok(_) => Side::na(format!("ovs-vswitchd died; log tail:\n{}", o.log_tail(30))),
        Err(e) => Side::na(format!("{e}\n{}", o.log_tail(10))),
    }
}

/// Removes the EAL runtime dir of a finished vswitch run.
struct EalRuntimeDir(String);

impl Drop for EalRuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.0));
    }
}

/// `vswitch CMD ... --socket SOCK --json`, parsed.
fn vswitch_ctl(sock: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let o = Command::new(proc::vswitch_bin())
        .args(args)
        .arg("--socket")
        .arg(sock)
        .arg("--json")
        .output()
        .map_err(|e| format!("vswitch {args:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "vswitch {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    serde_json::from_slice(&o.stdout).map_err(|e| format!("vswitch {args:?}: {e}"))
}

fn port_counter(sock: &Path, port: u64, key: &str) -> Result<u64, String> {
    let v = vswitch_ctl(sock, &["ports", "show"])?;
    Ok(v["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["port"] == port))
        .and_then(|p| p[key].as_u64())
        .unwrap_or(0))
}

/// ESTABLISHED connections in `vswitch ct show --json` (its reply's
/// `conns` lines; None: no such command in this build).
fn vswitch_established(sock: &Path) -> Option<usize> {
    let v = vswitch_ctl(sock, &["ct", "show"]).ok()?;
    let conns = v["conns"].as_array()?;
    Some(
        conns
            .iter()
            .filter(|c| c.to_string().contains("ESTABLISHED"))
            .count(),
    )
}

fn run_vswitch(case: Case, a: &Args, t: &Traffic, dir: &Path, tag: &str) -> Side {
    let frames = t.replay_frames + t.handshake.as_ref().map_or(0, |h| h.1);
    let mbufs = (frames + 16384).next_power_of_two() - 1;
    let flows = dir.join(format!("vswitch-{}.flows", case.name()));
    if let Err(e) = std::fs::write(&flows, flow_table(case, 1)) {
        return Side::na(format!("{}: {e}", flows.display()));
    }
    let sock = dir.join(format!("vswitch-{tag}.sock"));
    let prefix = format!("perf-ct-vs-{tag}");
    let _cleanup = EalRuntimeDir(prefix.clone());
    let mut eal = vec![
        "-l".to_string(),
        "0,1".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        format!("--file-prefix={prefix}"),
    ];
    // The OVS run before this one may still be returning its hugepages.
    proc::wait_for_hugepages(256, Duration::from_secs(5));
    eal.extend(proc::eal_memory_args());
    let first = match &t.handshake {
        Some((hs, _)) => format!("net_pcap0,rx_pcap={}", hs.display()),
        None => format!("net_pcap0,rx_pcap={},infinite_rx=1", t.replay.display()),
    };
    // Start-up, the handshake phase (at most 20 s), warm-up, measurement.
    let duration = a.seconds + 2 + if t.handshake.is_some() { 20 } else { 2 };
    let mut c = Command::new(proc::vswitch_bin());
    c.args(["run", "--eal", &eal.join(" "), "--port", &first]);
    c.args(["--port", "net_null0,no-rx=1", "--flows"])
        .arg(&flows);
    c.arg("--control").arg(&sock);
    c.args([
        "--json",
        "--stats-interval",
        "1",
        "--mbufs",
        &mbufs.to_string(),
        "--duration",
        &duration.to_string(),
    ]);
    let run = std::thread::spawn(move || {
        proc::run_for(
            c,
            Duration::from_secs(duration + 5),
            Duration::from_secs(15),
        )
    });
    let mut established = None;
    let mut setup = || -> Result<(), String> {
        wait_for("the vswitch control socket", || {
            Ok((sock.exists() && vswitch_ctl(&sock, &["ports", "show"]).is_ok()).then_some(()))
        })?;
        if let Some((_, n)) = &t.handshake {
            let n = *n as u64;
            wait_for("vswitch: the handshake replayed", || {
                Ok((port_counter(&sock, 0, "rx_packets")? >= n).then_some(()))
            })?;
            std::thread::sleep(Duration::from_millis(500));
            established = vswitch_established(&sock);
            eprintln!(
                "  vswitch tracker after the handshake: {} ESTABLISHED",
                established.map_or("? (no `vswitch ct show`)".into(), |n| n.to_string())
            );
            let data = format!("net_pcap2,rx_pcap={},infinite_rx=1", t.replay.display());
            vswitch_ctl(&sock, &["ports", "add", &data])?;
        }
        Ok(())
    };
    let setup = setup();
    let r = match run.join() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Side::na(format!("run {}: {e}", proc::vswitch_bin().display())),
        Err(_) => return Side::na("the vswitch runner thread panicked"),
    };
    if let Err(e) = setup {
        return Side::na(format!("{e}\n{}", last_lines(&r.stderr, 20)));
    }
    // Samples of the sink's tx and the source's rx, once the replay port
    // runs (port 2 after a handshake, else port 0).
    let src = if t.handshake.is_some() { 2 } else { 0 };
    let (mut tx, mut rx) = (Vec::new(), Vec::new());
    let mut cycles = None;
    // Each stats interval prints every port's line in port order: the
    // sink's (port 1) before the replay port's (2), except without a
    // handshake (the source is port 0). Pair the two of one interval.
    let mut interval: [Option<f64>; 3] = [None; 3];
    for l in r.stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v["type"] == "port_stats" {
            let s = &v["stats"];
            let pps = |k: &str| s[k].as_f64().unwrap_or(0.0) / 1e6;
            let port = s["port"].as_u64().unwrap_or(u64::MAX);
            if port == 0 {
                interval = [None; 3];
            }
            if port == src {
                interval[0] = Some(pps("rx_pps"));
            }
            if port == 1 {
                interval[1] = Some(pps("tx_pps"));
            }
            if let [Some(r), Some(t), None] = interval {
                interval[2] = Some(t);
                if r > 0.0 || !rx.is_empty() {
                    rx.push(r);
                    tx.push(t);
                }
            }
        }
        if v["type"] == "summary" {
            cycles = v["summary"]["cycles_per_packet"].as_f64();
        }
    }
    // The first second is partial (and warm-up), the last may be too.
    for v in [&mut tx, &mut rx] {
        if v.len() > 2 {
            v.remove(0);
        }
        v.truncate(a.seconds as usize);
    }
    if tx.is_empty() {
        return Side::na(format!(
            "vswitch produced no rate samples:\n{}\n{}",
            last_lines(&r.stdout, 10),
            last_lines(&r.stderr, 20)
        ));
    }
    Side {
        mpps: Some(report::median(&tx)),
        rx_mpps: Some(report::median(&rx)),
        cycles_per_packet: cycles,
        established,
        samples: tx,
        note: None,
    }
}

/// `--write-pcaps`: every case's pcaps and flow table (output port 1).
fn write_pcaps(a: &Args, out: &Path) {
    let r = std::fs::create_dir_all(out).and_then(|()| {
        for &case in &a.cases {
            traffic(case, a, out)?;
            std::fs::write(
                out.join(format!("{}.flows", case.name())),
                flow_table(case, 1),
            )?;
        }
        Ok(())
    });
    if let Err(e) = r {
        eprintln!("{}: {e}", out.display());
        std::process::exit(2);
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

fn combine(v: Vec<Side>) -> Side {
    let ok: Vec<&Side> = v.iter().filter(|s| s.mpps.is_some()).collect();
    if ok.is_empty() {
        return v.into_iter().next().unwrap_or_default();
    }
    let med = |f: &dyn Fn(&Side) -> Option<f64>| -> Option<f64> {
        let x: Vec<f64> = ok.iter().filter_map(|s| f(s)).collect();
        (!x.is_empty()).then(|| report::median(&x))
    };
    Side {
        mpps: med(&|s| s.mpps),
        rx_mpps: med(&|s| s.rx_mpps),
        cycles_per_packet: med(&|s| s.cycles_per_packet),
        established: ok.iter().find_map(|s| s.established),
        samples: ok.iter().flat_map(|s| s.samples.clone()).collect(),
        note: None,
    }
}

#[derive(Serialize)]
struct CaseResult {
    case: Case,
    conns: u32,
    seconds: u64,
    rounds: u32,
    ovs: Side,
    vswitch: Side,
    /// Forwarded frames per second, vswitch / OVS.
    vswitch_over_ovs: Option<f64>,
    /// New-connection cases: connections per second (SYNs forwarded).
    ovs_conns_per_sec: Option<f64>,
    vswitch_conns_per_sec: Option<f64>,
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    v.map(|v| format!("{v:.prec$}"))
        .unwrap_or_else(|| "n/a".into())
}

fn main() {
    let a = Args::parse();
    let pid = std::process::id();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _cleanup = perf::cleanup::install("conntrack");
    let dir = std::env::temp_dir().join(format!("perf-conntrack-{pid}"));
    perf::cleanup::record(perf::cleanup::Resource::Path(dir.clone()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    if let Some(out) = &a.write_pcaps {
        write_pcaps(&a, out);
        return;
    }
    let mut results = Vec::new();
    for &case in &a.cases {
        let t = match traffic(case, &a, &dir) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("pcaps of {}: {e}", case.name());
                std::process::exit(2);
            }
        };
        let (mut os, mut vs) = (Vec::new(), Vec::new());
        for round in 0..a.rounds {
            let tag = format!("{pid}-{}-{round}", case.name());
            os.push(if a.no_ovs {
                Side::na("skipped (--no-ovs)")
            } else {
                eprintln!("[{}] ovs-vswitchd-dpdk ...", case.name());
                run_ovs(case, &a, &t, &tag)
            });
            eprintln!("[{}] vswitch run ...", case.name());
            vs.push(run_vswitch(case, &a, &t, &dir, &tag));
        }
        let (o, v) = (combine(os), combine(vs));
        let ratio = match (v.mpps, o.mpps) {
            (Some(v), Some(o)) if o > 0.0 => Some(v / o),
            _ => None,
        };
        let cps = |s: &Side| {
            (!case.established())
                .then_some(s.mpps.map(|m| m * 1e6 / 2.0))
                .flatten()
        };
        results.push(CaseResult {
            case,
            conns: a.conns,
            seconds: a.seconds,
            rounds: a.rounds,
            ovs_conns_per_sec: cps(&o),
            vswitch_conns_per_sec: cps(&v),
            ovs: o,
            vswitch: v,
            vswitch_over_ovs: ratio,
        });
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let k = |c: Option<f64>| c.map(|c| format!("{:.0}k", c / 1e3)).unwrap_or("-".into());
            vec![
                format!("{} ({} conns)", r.case.name(), r.conns),
                fmt(r.ovs.mpps, 3),
                fmt(r.ovs.cycles_per_packet, 0),
                k(r.ovs_conns_per_sec),
                fmt(r.vswitch.mpps, 3),
                fmt(r.vswitch.cycles_per_packet, 0),
                k(r.vswitch_conns_per_sec),
                fmt(r.vswitch_over_ovs, 2),
            ]
        })
        .collect();
    report::table(
        &format!(
            "conntrack: one forwarding core, 64-byte TCP frames (load average before: {})",
            load.split_whitespace().next().unwrap_or("?")
        ),
        &[
            "case",
            "OVS Mpps",
            "OVS cyc/pkt",
            "OVS conn/s",
            "vswitch Mpps",
            "vswitch cyc/pkt",
            "vswitch conn/s",
            "vswitch/OVS",
        ],
        &rows,
    );
    for r in &results {
        for (who, s) in [("OVS", &r.ovs), ("vswitch", &r.vswitch)] {
            if let Some(n) = &s.note {
                println!(
                    "  {} {who}: {}",
                    r.case.name(),
                    n.lines().next().unwrap_or("")
                );
            }
            if let (Some(tx), Some(rx)) = (s.mpps, s.rx_mpps) {
                if rx > 0.0 && tx < rx * 0.99 {
                    println!(
                        "  {} {who}: forwarded {:.1}% of the frames it took (drops: invalid or refused)",
                        r.case.name(),
                        100.0 * tx / rx
                    );
                }
            }
        }
    }
    report::json_line("conntrack", &results);
    let _ = std::fs::remove_dir_all(&dir);
}
