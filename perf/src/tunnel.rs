//! VXLAN encapsulation and decapsulation over DPDK ports: `vswitch run`
//! with a tunnel port against OVS-DPDK's user-space tunnels
//! (Documentation/howto/userspace-tunneling.rst), same pcaps, same ports,
//! one forwarding core each.
//!
//! ```text
//! encap: net_pcap (64-byte UDP, infinite_rx) ─► in_port rule ─► VXLAN port ─► net_null (underlay)
//!        vswitch: port 0 ─► vx0 (underlay=1, remote_mac fixed)  ─► port 1
//!        OVS:     br0 src ─► vx (tnl_push) ─► br-phy LOCAL ─► sink  (route from br-phy's IP, tnl/arp/set)
//! decap: net_pcap (the same frames in VXLAN, 114 bytes) ─► decap ─► in_port rule ─► net_null
//!        vswitch: port 0 (underlay) ─► vx0 ─► port 1
//!        OVS:     br-phy src ─► LOCAL (tnl_pop) ─► br0 vx ─► sink
//! ```
//!
//! Rates are medians of the sink's per-second tx rates after a warm-up
//! second (vswitch's `--json` port stats, OVS's `ovs-ofctl dump-ports`);
//! cycles per packet from vswitch's summary and OVS's `pmd-stats-show`.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde::Serialize;
use switch::frame::{Frame, VecFrame};
use switch::tunnel::encap::{encap, Outer};
use switch::tunnel::TunnelKind;

use crate::ovs::{self, Ovs, OvsPort};
use crate::{frames, proc, report};

/// The measured switch's tunnel endpoint.
pub const LOCAL_IP: [u8; 4] = [192, 168, 50, 1];
/// The far endpoint.
pub const REMOTE_IP: [u8; 4] = [192, 168, 50, 2];
/// The measured switch's underlay MAC (vswitch `local_mac`, OVS br-phy
/// `hwaddr`).
pub const LOCAL_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 1];
/// The far endpoint's MAC (vswitch `remote_mac`, OVS `tnl/arp/set`).
pub const REMOTE_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 2];
/// The VNI.
pub const VNI: u32 = 42;

/// Encapsulation or decapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    /// Plain frames in, VXLAN out of the underlay.
    Encap,
    /// VXLAN in on the underlay, inner frames out.
    Decap,
}

/// One program's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    /// Median of the per-second rates (Mpps).
    pub mpps: Option<f64>,
    /// Busy cycles per packet on the forwarding core.
    pub cycles_per_packet: Option<f64>,
    /// The per-second rates.
    pub samples: Vec<f64>,
    /// Why there is no result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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

    /// From per-second samples ([`report::steady_samples`]).
    fn from_samples(samples: Vec<f64>, keep: usize, cycles: Option<f64>, log: &str) -> Side {
        let samples = report::steady_samples(samples, keep);
        if samples.is_empty() {
            return Side::na(format!("no non-zero rate samples; output:\n{log}"));
        }
        Side {
            mpps: Some(report::median(&samples)),
            cycles_per_packet: cycles,
            samples,
            note: None,
        }
    }
}

fn ip_str(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The inner frames: `flows` 64-byte UDP flows (to port 53).
pub fn inner_frames(flows: u32) -> Vec<Vec<u8>> {
    (0..frames::frames_for_flows(flows))
        .map(|i| {
            let mut f = frames::udp_frame(i % flows.max(1), 60);
            f[36..38].copy_from_slice(&53u16.to_be_bytes());
            f
        })
        .collect()
}

/// `inner` as the far endpoint sends them: VXLAN to [`LOCAL_IP`], VNI
/// [`VNI`], outer source port from the inner flow.
pub fn outer_frames(inner: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let o = Outer {
        kind: TunnelKind::Vxlan,
        src_mac: REMOTE_MAC,
        dst_mac: LOCAL_MAC,
        src_ip: REMOTE_IP,
        dst_ip: LOCAL_IP,
        ttl: 64,
        tos: 0,
        df: true,
        dst_port: 4789,
        vni: VNI,
    };
    inner
        .iter()
        .map(|f| {
            let mut v = VecFrame::new(f);
            assert!(encap(&mut v, &o), "encapsulation of a 60-byte frame");
            v.data().to_vec()
        })
        .collect()
}

/// Writes `frames` to a pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    let mut w = PcapWriter::new(File::create(path)?).map_err(std::io::Error::other)?;
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(i as u64),
            f.len() as u32,
            f,
        ))
        .map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// vswitch's `--port` list and rule for `case`.
pub fn vswitch_setup(case: Case, pcap: &str) -> (Vec<String>, String) {
    let underlay = match case {
        Case::Encap => 1,
        Case::Decap => 0,
    };
    let ports = vec![
        format!("net_pcap0,rx_pcap={pcap},infinite_rx=1"),
        "net_null0,no-rx=1".to_string(),
        format!(
            "vx0,type=vxlan,local_ip={},remote_ip={},key={VNI},underlay={underlay},local_mac={},remote_mac={}",
            ip_str(LOCAL_IP),
            ip_str(REMOTE_IP),
            mac_str(LOCAL_MAC),
            mac_str(REMOTE_MAC)
        ),
    ];
    let rule = match case {
        Case::Encap => "priority=10,in_port=0,actions=output:2",
        Case::Decap => "priority=10,in_port=2,actions=output:1",
    };
    (ports, rule.to_string())
}

/// Runs `vswitch run` for `case` on `pcap` (`frames` frames) for `secs`
/// seconds, one forwarding lcore (`-l 0,1`).
pub fn run_vswitch(case: Case, pcap: &Path, frames: u32, secs: u64, tag: &str) -> Side {
    let dir = pcap.parent().unwrap_or(Path::new("/tmp"));
    let flows_file = dir.join(format!("tunnel-{tag}.flows"));
    let (ports, rule) = vswitch_setup(case, &pcap.display().to_string());
    if let Err(e) = std::fs::write(&flows_file, format!("{rule}\n")) {
        return Side::na(format!("write {}: {e}", flows_file.display()));
    }
    let prefix = format!("perf-tnl-vs-{tag}");
    let mut eal = vec![
        "-l".to_string(),
        "0,1".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        format!("--file-prefix={prefix}"),
    ];
    eal.extend(proc::eal_memory_args());
    let mbufs = (frames + 16384).next_power_of_two() - 1;
    let mut c = Command::new(proc::vswitch_bin());
    c.args(["run", "--eal", &eal.join(" ")]);
    for p in &ports {
        c.args(["--port", p]);
    }
    c.arg("--flows").arg(&flows_file).arg("--no-control");
    c.args([
        "--json",
        "--duration",
        &(secs + 1).to_string(),
        "--stats-interval",
        "1",
        "--mbufs",
        &mbufs.to_string(),
    ]);
    let r = proc::run_for(c, Duration::from_secs(secs + 8), Duration::from_secs(15));
    let _ = std::fs::remove_file(&flows_file);
    let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&prefix));
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return Side::na(format!(
                "run {}: {e} (build it: cargo build --release)",
                proc::vswitch_bin().display()
            ))
        }
    };
    let (samples, summary) = proc::vswitch_json_rates(&r.stdout, 1);
    let cycles = summary.and_then(|s| s["cycles_per_packet"].as_f64());
    let log = format!(
        "{}\n{}",
        proc::last_lines(&r.stdout, 20),
        proc::last_lines(&r.stderr, 20)
    );
    Side::from_samples(samples, secs as usize, cycles, &log)
}

/// The bridge OVS routes tunnel packets through (holds [`LOCAL_IP`]).
const BR_PHY: &str = "br-phy";

/// OVS-DPDK set up for `case` (see the module docs): returns the running
/// instance and the (bridge, OpenFlow port) whose tx counter is the rate.
fn ovs_setup(
    case: Case,
    pcap: &Path,
    frames: u32,
    tag: &str,
) -> Result<(Ovs, &'static str, u32), String> {
    let pool = (frames + 8192).next_power_of_two();
    let cfg = ovs::Config {
        tag: format!("tnl-{tag}"),
        pmd_core: 1,
        main_core: 0,
        socket_mem_mb: ((pool as u64 * 3072) >> 20).max(256) as u32 + 128,
        source_devargs: String::new(),
        sink_devargs: String::new(),
    };
    let src = format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display());
    let vx = OvsPort {
        name: "vx".into(),
        ofport: 3,
        kind: "vxlan".into(),
        options: vec![
            format!("options:remote_ip={}", ip_str(REMOTE_IP)),
            format!("options:local_ip={}", ip_str(LOCAL_IP)),
            format!("options:key={VNI}"),
        ],
    };
    let sink = |ofport| OvsPort::dpdk("sink", ofport, "net_null0,no-rx=1");
    // br0 is the integration bridge, br-phy the underlay's.
    let (br0_ports, phy_ports) = match case {
        Case::Encap => (vec![OvsPort::dpdk("src", 1, &src), vx], vec![sink(1)]),
        Case::Decap => (vec![sink(2), vx], vec![OvsPort::dpdk("src", 1, &src)]),
    };
    let o = Ovs::start_with_ports(&cfg, &br0_ports, &[])?;
    o.add_bridge(BR_PHY, &mac_str(LOCAL_MAC), &phy_ports)?;
    // The endpoint's IP on br-phy's internal port: OVS takes its route
    // (and, for decap, the address tnl_pop terminates) from the kernel.
    let cidr = format!("{}/24", ip_str(LOCAL_IP));
    o.in_netns(&["ip", "addr", "add", &cidr, "dev", BR_PHY])?;
    o.in_netns(&["ip", "link", "set", BR_PHY, "up"])?;
    let t = Instant::now();
    while !o.appctl(&["ovs/route/show"])?.contains("192.168.50.0/24") {
        if t.elapsed() > Duration::from_secs(20) {
            return Err("OVS did not pick up the route of br-phy's address".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    o.appctl(&[
        "tnl/arp/set",
        BR_PHY,
        &ip_str(REMOTE_IP),
        &mac_str(REMOTE_MAC),
    ])?;
    match case {
        Case::Encap => {
            o.replace_flows("priority=10,in_port=1,actions=output:3\n")?;
            o.replace_flows_of(BR_PHY, "priority=10,in_port=LOCAL,actions=output:1\n")?;
            Ok((o, BR_PHY, 1))
        }
        Case::Decap => {
            o.replace_flows("priority=10,in_port=3,actions=output:2\n")?;
            o.replace_flows_of(BR_PHY, "priority=10,in_port=1,actions=LOCAL\n")?;
            Ok((o, ovs::BRIDGE, 2))
        }
    }
}

/// Runs OVS-DPDK for `case` on `pcap` for `secs` seconds (PMD on core 1).
pub fn run_ovs(case: Case, pcap: &Path, frames: u32, secs: u64, tag: &str) -> Side {
    let (mut o, br, port) = match ovs_setup(case, pcap, frames, tag) {
        Ok(x) => x,
        Err(e) => return Side::na(e),
    };
    let result = (|| -> Result<Side, String> {
        std::thread::sleep(Duration::from_secs(1));
        o.pmd_stats_clear()?;
        let samples = o.tx_rates(br, port, secs)?;
        let pmd = o.pmd_stats()?;
        if samples.iter().all(|&s| s == 0.0) {
            return Err(format!(
                "OVS forwarded nothing; {}",
                o.appctl(&["dpctl/dump-flows"]).unwrap_or_default()
            ));
        }
        Ok(Side {
            mpps: Some(report::median(&samples)),
            cycles_per_packet: pmd.processing_cycles_per_packet,
            samples,
            note: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use switch::tunnel::decap::Tunnel;
    use switch::tunnel::{ArpCache, Endpoints, Rx, TunnelConfig};

    /// The decap pcap's frames are what vswitch's tunnel port (as the
    /// benchmark configures it) decapsulates back into the inner frames.
    #[test]
    fn outer_frames_decapsulate_on_the_benchmarked_port() {
        let inner = inner_frames(10);
        let outer = outer_frames(&inner);
        let (ports, _) = vswitch_setup(Case::Decap, "x.pcap");
        let cfg = TunnelConfig::parse(&ports[2]).unwrap().unwrap();
        let ep = Endpoints::new(
            vec![Tunnel {
                port: 2,
                cfg,
                mac: LOCAL_MAC,
                stats: Default::default(),
            }],
            std::sync::Arc::new(ArpCache::default()),
        )
        .unwrap();
        for (i, o) in inner.iter().zip(&outer) {
            assert_eq!(o.len(), i.len() + 50);
            match ep.classify(0, o, 0) {
                Rx::Decap {
                    meta,
                    outer_len,
                    inner_len,
                    ..
                } => {
                    assert_eq!((meta.id, meta.src), (VNI, REMOTE_IP));
                    assert_eq!(&o[outer_len..outer_len + inner_len], &i[..]);
                }
                r => panic!("{r:?}"),
            }
        }
    }
}
