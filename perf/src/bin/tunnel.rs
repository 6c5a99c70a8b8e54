//! Tunnel port cost on one core, without DPDK: the switch's datapath with
//! VXLAN decapsulation (classify the outer packet, strip it, switch the
//! inner frame with its tunnel metadata) and encapsulation (switch, then
//! add the outer headers for the tunnel port), against the same frames
//! switched port to port with no tunnel, in the same run.
//!
//! ```text
//! cargo run --release -p perf --bin tunnel -- [--seconds S] [--flows N]
//! ```
//! Prints cycles/packet (median over bursts of 32) and Mpps of the time
//! spent in the measured code (frame refills excluded).
//!
//! With `--dpdk` it measures instead the whole path over DPDK ports
//! against OVS-DPDK's user-space VXLAN in the same run (`perf::tunnel`):
//! encap and decap Mpps, cycles/packet and the ratio, one forwarding core.
//!
//! ```text
//! cargo build --release -p vswitch -p perf
//! target/release/tunnel --dpdk [--seconds 5] [--flows 1000] [--rounds 1] [--no-ovs]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use switch::frame::{Frame, VecFrame};
use switch::stats::rdtsc;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::udp4;
use switch::tunnel::decap::Tunnel;
use switch::tunnel::encap::{NeighbourMemo, Tx};
use switch::tunnel::{ArpCache, Endpoints, Rx, TunnelConfig, TunnelMeta, TunnelStats};
use switch::verdict::Verdict;

const BURST: usize = 32;

fn endpoints(local: &str, remote: &str) -> Endpoints {
    let cfg = TunnelConfig::parse(&format!(
        "vx0,type=vxlan,local_ip={local},remote_ip={remote},key=42,underlay=1"
    ))
    .unwrap()
    .unwrap();
    let ep = Endpoints::new(
        vec![Tunnel {
            port: 5,
            cfg,
            mac: [2, 0, 0, 0, 0, 1],
            stats: Arc::new(TunnelStats::default()),
        }],
        Arc::new(ArpCache::default()),
    )
    .unwrap();
    ep.arp.learn(
        remote.parse::<std::net::Ipv4Addr>().unwrap().octets(),
        [2, 0, 0, 0, 0, 2],
        1,
        0,
    );
    ep
}

fn switch() -> Arc<Switch> {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        ..Default::default()
    });
    for p in [0, 1, 5] {
        sw.port_add(p).unwrap();
    }
    for r in [
        "priority=10,in_port=5,tun_id=42,actions=output:0",
        "priority=10,in_port=0,udp,actions=output:5",
        "priority=5,in_port=1,udp,actions=output:0",
    ] {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    sw
}

struct Result {
    p50: u64,
    mpps: f64,
}

/// Runs `step` on bursts built by `fill` for `secs`; `step` returns the
/// frames it handled.
fn measure(
    secs: f64,
    frames: &[Vec<u8>],
    mut step: impl FnMut(&mut [VecFrame]) -> usize,
) -> Result {
    let mut fs: Vec<VecFrame> = (0..BURST).map(|_| VecFrame::new(&frames[0])).collect();
    let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
    let (mut pkts, mut cycles, mut at) = (0u64, 0u64, 0usize);
    let t = Instant::now();
    let hz = {
        let (c0, t0) = (rdtsc(), Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        (rdtsc() - c0) as f64 / t0.elapsed().as_secs_f64()
    };
    while t.elapsed().as_secs_f64() < secs {
        for f in fs.iter_mut() {
            f.reset(&frames[at % frames.len()], 128);
            at += 1;
        }
        let c0 = rdtsc();
        let n = step(&mut fs);
        let dc = rdtsc() - c0;
        cycles += dc;
        pkts += n as u64;
        let _ = h.record((dc / n.max(1) as u64).max(1));
    }
    Result {
        p50: h.value_at_quantile(0.5),
        mpps: pkts as f64 / (cycles as f64 / hz) / 1e6,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, def: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| def.to_string())
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("tunnel [--seconds S] [--flows N]: VXLAN decap/encap cycles per packet vs plain switching");
        println!("tunnel --dpdk [--seconds S] [--flows N] [--rounds R] [--no-ovs]: over DPDK ports, vs OVS-DPDK");
        return;
    }
    for (i, a) in args.iter().enumerate().skip(1) {
        let value = i > 1 && matches!(args[i - 1].as_str(), "--seconds" | "--flows" | "--rounds");
        if !value
            && !matches!(
                a.as_str(),
                "--seconds" | "--flows" | "--rounds" | "--dpdk" | "--no-ovs"
            )
        {
            eprintln!("tunnel: unknown argument `{a}` (see --help)");
            std::process::exit(2);
        }
    }
    if args.iter().any(|a| a == "--dpdk") {
        let secs: u64 = arg("--seconds", "5").parse().expect("--seconds");
        let flows: u32 = arg("--flows", "1000").parse().expect("--flows");
        let rounds: u32 = arg("--rounds", "1").parse().expect("--rounds");
        dpdk_vs_ovs(secs, flows, rounds, args.iter().any(|a| a == "--no-ovs"));
        return;
    }
    let secs: f64 = arg("--seconds", "2").parse().expect("--seconds");
    let flows: usize = arg("--flows", "1000").parse().expect("--flows");
    let inner: Vec<Vec<u8>> = (0..flows)
        .map(|i| {
            udp4(
                [10, 1, (i >> 8) as u8, i as u8],
                [10, 2, 0, 1],
                1000 + (i % 500) as u16,
                53,
            )
        })
        .collect();
    // The same frames encapsulated by the far endpoint.
    let far = endpoints("192.168.50.2", "192.168.50.1");
    let mut memo = NeighbourMemo::default();
    let outer: Vec<Vec<u8>> = inner
        .iter()
        .map(|f| {
            let mut v = VecFrame::new(f);
            assert!(matches!(
                far.encap(0, &mut v, Default::default(), None, &mut memo, 0),
                Tx::Send(_)
            ));
            v.data().to_vec()
        })
        .collect();
    let ep = endpoints("192.168.50.1", "192.168.50.2");
    let sw = switch();
    let mut dp = sw.datapath(0);
    let mut vs = [Verdict::default(); BURST];
    let mut copies = Vec::new();

    // Plain: frames from port 1 switched to port 0 (same rules, no tunnel).
    let plain = measure(secs, &inner, |fs| {
        dp.process_burst(1, fs, &mut vs, 0);
        fs.len()
    });
    // Decap: classify on the underlay, strip, switch from the tunnel port.
    let mut meta = [TunnelMeta::default(); BURST];
    let decap = measure(secs, &outer, |fs| {
        for (i, f) in fs.iter_mut().enumerate() {
            if let Rx::Decap {
                meta: m, outer_len, ..
            } = ep.classify(1, f.data(), 0)
            {
                meta[i] = m;
                f.adj(outer_len);
            }
        }
        dp.process_burst_tunnel(5, fs, &meta, &mut vs, &mut copies, 0);
        fs.len()
    });
    // Encap: switch from port 0 to the tunnel port, add the outer headers.
    let mut memo = NeighbourMemo::default();
    let encap = measure(secs, &inner, |fs| {
        dp.process_burst(0, fs, &mut vs, 0);
        for (f, v) in fs.iter_mut().zip(&vs) {
            if *v == Verdict::Output(1 << 5) {
                let _ = ep.encap(0, f, Default::default(), None, &mut memo, 0);
            }
        }
        fs.len()
    });
    println!("VXLAN on one core, {flows} flows, bursts of {BURST}, no DPDK (cycles/packet p50, Mpps in the measured code)");
    println!("{:<28} {:>8} {:>10}", "case", "cyc/pkt", "Mpps");
    for (name, r) in [
        ("plain switching", &plain),
        ("decap + switch", &decap),
        ("switch + encap", &encap),
    ] {
        println!("{name:<28} {:>8} {:>10.1}", r.p50, r.mpps);
    }
    println!(
        "{{\"bench\":\"tunnel\",\"flows\":{flows},\"plain_cpp\":{},\"decap_cpp\":{},\"encap_cpp\":{},\"plain_mpps\":{:.2},\"decap_mpps\":{:.2},\"encap_mpps\":{:.2}}}",
        plain.p50, decap.p50, encap.p50, plain.mpps, decap.mpps, encap.mpps
    );
}

/// `--dpdk`: encap and decap over DPDK ports, vswitch then OVS-DPDK in
/// each round, medians over rounds.
fn dpdk_vs_ovs(secs: u64, flows: u32, rounds: u32, no_ovs: bool) {
    use perf::tunnel::{self as t, Case, Side};
    let _cleanup = perf::cleanup::install("tunnel");
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("perf-tunnel-{pid}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    perf::cleanup::record(perf::cleanup::Resource::Path(dir.clone()));
    let inner = t::inner_frames(flows);
    let outer = t::outer_frames(&inner);
    let frames = inner.len() as u32;
    let (pin, pout) = (dir.join("inner.pcap"), dir.join("outer.pcap"));
    t::write_pcap(&pin, &inner).expect("write pcap");
    t::write_pcap(&pout, &outer).expect("write pcap");
    let median = |v: Vec<Side>| -> Side {
        let ok: Vec<&Side> = v.iter().filter(|s| s.mpps.is_some()).collect();
        if ok.is_empty() {
            return v.into_iter().next().unwrap_or_default();
        }
        let cyc: Vec<f64> = ok.iter().filter_map(|s| s.cycles_per_packet).collect();
        Side {
            mpps: Some(perf::report::median(
                &ok.iter().filter_map(|s| s.mpps).collect::<Vec<_>>(),
            )),
            cycles_per_packet: (!cyc.is_empty()).then(|| perf::report::median(&cyc)),
            samples: ok.iter().flat_map(|s| s.samples.clone()).collect(),
            note: None,
        }
    };
    let fmt = |v: Option<f64>, p: usize| v.map_or("n/a".to_string(), |v| format!("{v:.p$}"));
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for case in [Case::Encap, Case::Decap] {
        let pcap = if case == Case::Encap { &pin } else { &pout };
        let (mut vs, mut ov) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let tag = format!("{pid}-{case:?}-{r}").to_lowercase();
            eprintln!("{case:?} round {}: vswitch", r + 1);
            vs.push(t::run_vswitch(case, pcap, frames, secs, &tag));
            if !no_ovs {
                eprintln!("{case:?} round {}: OVS-DPDK", r + 1);
                ov.push(t::run_ovs(case, pcap, frames, secs, &tag));
            }
        }
        let (v, o) = (median(vs), median(ov));
        let ratio = v.mpps.zip(o.mpps).map(|(a, b)| a / b);
        rows.push(vec![
            format!("{case:?}").to_lowercase(),
            fmt(o.mpps, 2),
            fmt(o.cycles_per_packet, 1),
            fmt(v.mpps, 2),
            fmt(v.cycles_per_packet, 1),
            fmt(ratio, 2),
        ]);
        json.push(serde_json::json!({
            "case": case, "vswitch": v, "ovs": o, "vswitch_over_ovs": ratio,
        }));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    perf::report::table(
        &format!(
            "VXLAN over DPDK ports, one forwarding core, {flows} flows, 64-byte inner frames, {secs} s x {rounds} round(s), load average {}",
            load.split_whitespace().next().unwrap_or("?")
        ),
        &["case", "OVS Mpps", "OVS cyc/pkt", "vswitch Mpps", "vswitch cyc/pkt", "vswitch/OVS"],
        &rows,
    );
    perf::report::json_line(
        "tunnel_dpdk",
        &serde_json::json!({ "flows": flows, "seconds": secs, "rounds": rounds, "cases": json }),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
