//! The flow-table switch on real DPDK ports, through the `vswitch` binary:
//! rules steer pcap traffic to the right ports with exactly the right bytes;
//! the control socket changes rules and ports while traffic flows; two
//! network namespaces talk through the switch over `net_af_packet` ports.

mod ovs_harness;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ovs_harness::netns::{sh, until, Netns, Running, Start, TempDir};
use ovs_harness::{checksum, read_pcap, write_frames};

fn tmpdir(tag: &str) -> TempDir {
    TempDir::new(&format!("vswitch-sw-{tag}-{}", std::process::id()))
}

fn eal(tag: &str) -> String {
    format!(
        "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-{tag}-{}",
        std::process::id()
    )
}

/// An Ethernet/IPv4 frame with protocol `proto` and `payload` after the IP
/// header (L4 checksums are not needed by the switch), TTL `ttl`.
fn ipv4(src_mac: u8, proto: u8, ttl: u8, tos: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, src_mac, 0x08, 0x00,
    ];
    let total = (20 + payload.len()) as u16;
    let mut ip = vec![
        0x45, tos, 0, 0, 0x12, 0x34, 0, 0, ttl, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

fn l4(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0..2].copy_from_slice(&sport.to_be_bytes());
    p[2..4].copy_from_slice(&dport.to_be_bytes());
    if len >= 14 {
        p[12] = 0x50; // TCP data offset 5 words
    }
    for (i, b) in p.iter_mut().enumerate().skip(20) {
        *b = i as u8;
    }
    p
}

/// Oracle: the same frame with an 802.1Q tag (TPID 0x8100, VID `vid`, PCP 0)
/// inserted after the MAC addresses.
fn with_vlan(f: &[u8], vid: u16) -> Vec<u8> {
    let mut o = f[..12].to_vec();
    o.extend_from_slice(&[0x81, 0x00]);
    o.extend_from_slice(&vid.to_be_bytes());
    o.extend_from_slice(&f[12..]);
    o
}

/// Oracle: TTL minus one, IPv4 checksum recomputed from scratch.
fn ttl_minus_one(f: &[u8]) -> Vec<u8> {
    let mut o = f.to_vec();
    o[14 + 8] -= 1;
    o[14 + 10] = 0;
    o[14 + 11] = 0;
    let c = checksum(&o[14..34]);
    o[24..26].copy_from_slice(&c.to_be_bytes());
    o
}

/// The frames of a pcap file the switch wrote and closed.
fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    read_pcap(path).unwrap_or_else(|e| panic!("{e}"))
}

fn run_to_end(args: &[String], timeout: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("vswitch {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `vswitch run` without a control socket until it stops on its own
/// (`--duration`, `--idle-exit` in `more`): EAL arguments `eal`, `ports`,
/// `flows`, no periodic stats, then `more`; fails the test if the run
/// fails or is still going after `timeout`.
fn run_once(
    eal: String,
    ports: &[String],
    flows: &[&str],
    more: &[&str],
    timeout: Duration,
) -> Output {
    let mut args = vec!["run".to_string(), "--eal".into(), eal];
    for p in ports {
        args.extend(["--port".into(), p.clone()]);
    }
    for f in flows {
        args.extend(["--flow".into(), f.to_string()]);
    }
    args.extend(
        [
            "--stats-interval",
            "0",
            "--no-control",
            "--flow-cache",
            "4096",
        ]
        .iter()
        .chain(more)
        .map(|s| s.to_string()),
    );
    let o = run_to_end(&args, timeout);
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// The `summary` of a `--json` run's output.
fn summary(o: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"summary\""))
        .unwrap_or_else(|| panic!("no summary in {}", text(o)));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["summary"].clone()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn rules_steer_and_rewrite_byte_exact() {
    let d = tmpdir("rules");
    let udp = ipv4(1, 17, 64, 0, &l4(1000, 53, 40));
    let tcp = ipv4(1, 6, 64, 0, &l4(40000, 80, 60));
    let icmp = ipv4(1, 1, 9, 0, &[8, 0, 0, 0, 0, 1, 0, 1, 0xaa, 0xbb]);
    let arp = {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
        ]);
        f.resize(60, 0);
        f
    };
    let runt = vec![
        0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45,
    ]; // IPv4 cut short
    let mut input = Vec::new();
    for i in 0..50 {
        input.push(match i % 5 {
            0 => udp.clone(),
            1 => tcp.clone(),
            2 => icmp.clone(),
            3 => arp.clone(),
            _ => runt.clone(),
        });
    }
    write_frames(&d.join("in.pcap"), input.iter().map(Vec::as_slice));
    let o = run_once(
        eal("rules"),
        &[
            format!("net_pcap0,rx_pcap={}", d.join("in.pcap").display()),
            format!("net_pcap1,tx_pcap={}", d.join("p1.pcap").display()),
            format!("net_pcap2,tx_pcap={}", d.join("p2.pcap").display()),
        ],
        &[
            "priority=100,in_port=0,udp,tp_dst=53,actions=output:1",
            "priority=100,in_port=0,tcp,tp_dst=80,actions=push_vlan:0x8100,mod_vlan_vid:42,output:2",
            "priority=90,in_port=0,icmp,actions=dec_ttl,output:1,output:2",
            "priority=10,in_port=0,actions=drop",
        ],
        &["--duration", "60", "--idle-exit", "1", "--json"],
        Duration::from_secs(90),
    );

    // Port 1: every UDP frame untouched and every ICMP frame with TTL-1, in order.
    let want1: Vec<Vec<u8>> = input
        .iter()
        .filter_map(|f| {
            if *f == udp {
                Some(udp.clone())
            } else if *f == icmp {
                Some(ttl_minus_one(&icmp))
            } else {
                None
            }
        })
        .collect();
    // Port 2: TCP with a VLAN tag pushed, and the mirrored ICMP copies.
    let want2: Vec<Vec<u8>> = input
        .iter()
        .filter_map(|f| {
            if *f == tcp {
                Some(with_vlan(&tcp, 42))
            } else if *f == icmp {
                Some(ttl_minus_one(&icmp))
            } else {
                None
            }
        })
        .collect();
    let got1 = read_frames(&d.join("p1.pcap"));
    let got2 = read_frames(&d.join("p2.pcap"));
    assert_eq!(got1.len(), want1.len(), "port 1 frame count\n{}", text(&o));
    assert_eq!(got2.len(), want2.len(), "port 2 frame count\n{}", text(&o));
    for (i, (g, w)) in got1.iter().zip(&want1).enumerate() {
        assert_eq!(g, w, "port 1 frame {i}");
    }
    for (i, (g, w)) in got2.iter().zip(&want2).enumerate() {
        assert_eq!(g, w, "port 2 frame {i}");
    }
    // The ARP and runt frames hit the drop rule; the runt was counted malformed.
    let total = &summary(&o)["switch"]["total"]["counters"];
    assert_eq!(total["rx_packets"], 50, "{total}");
    let malformed: u64 = total["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(malformed, 10, "runts counted as malformed: {total}");
    let drops: u64 = total["drops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(drops, 20, "ARP + runt frames dropped by rule: {total}");
}

/// `tx_packets` of port `no`.
fn tx_of(r: &Running, no: u64) -> u64 {
    r.port(no)["tx_packets"].as_u64().unwrap()
}

/// [`netns::Start`] with two lcores (the main one and a worker).
fn start(tag: &str, ports: &[&str], extra: &[&str]) -> Running {
    Start {
        lcores: "0-1",
        ..Start::new(tag)
    }
    .ports(ports)
    .extra(extra)
    .run()
}

/// Issue 17: `vswitch run --control PATH` and the clients' `--socket PATH`
/// name the same thing; both spellings work on both sides.
#[test]
fn control_and_socket_are_the_same_flag_on_both_sides() {
    let r = Start {
        lcores: "0-1",
        control_flag: "--socket",
        ..Start::new("alias")
    }
    .ports(&["net_null0", "net_null1,no-rx=1"])
    .run();
    assert!(r.sock.exists(), "`run --socket` made no socket");
    for flag in ["--socket", "--control"] {
        for cmd in [
            &["stats", "--json"][..],
            &["ports", "show", "--json"],
            &["flows", "dump"],
            &["fdb", "show"],
        ] {
            let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
                .args(cmd)
                .arg(flag)
                .arg(&r.sock)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "vswitch {cmd:?} {flag} PATH: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let (ok, out, err) = r.ctl(&["flows", "add", "priority=7,in_port=0,actions=drop"]);
    assert!(ok, "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["flows", "dump", "--control"])
        .arg(&r.sock)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&o.stdout);
    assert!(dump.contains("priority=7,in_port=0"), "{out}\n{dump}");
    drop(r);
    // And the old spelling of `run` still works.
    let r = start("alias2", &["net_null0"], &[]);
    assert!(r.ctl(&["stats"]).0);
}

#[test]
fn rules_and_ports_change_while_traffic_flows() {
    // net_null0 generates frames; port 1 is a sink.
    let r = start(
        "hot",
        &["net_null0", "net_null1,no-rx=1"],
        &["--flow", "priority=100,in_port=0,actions=output:1"],
    );
    until("traffic on port 1", 20, || tx_of(&r, 1) > 1000);

    // Hot-add a port and steer traffic to it.
    let (ok, out, err) = r.ctl(&["ports", "add", "net_null2,no-rx=1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "added port 2");
    let (ok, _, err) = r.ctl(&["flows", "add", "priority=200,in_port=0,actions=output:2"]);
    assert!(ok, "{err}");
    // After the update returns no frame is switched by the old rule: port 1
    // stops growing (modulo frames already in its tx ring) and port 2 grows.
    let p1 = tx_of(&r, 1);
    until("traffic on port 2", 20, || tx_of(&r, 2) > 1000);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tx_of(&r, 1) - p1 < 64,
        "port 1 kept receiving after the rule change"
    );

    // Dump shows counters on the new rule.
    let (ok, out, _) = r.ctl(&["flows", "dump", "--json"]);
    assert!(ok);
    assert!(out.contains("output:2"), "{out}");

    // Remove the port while it is the output: traffic is dropped, the switch
    // lives on, the port is gone from the list.
    let (ok, _, err) = r.ctl(&["ports", "del", "2"]);
    assert!(ok, "{err}");
    let v = r.ports();
    let nums: Vec<u64> = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(nums, vec![0, 1]);
    let (ok, _, err) = r.ctl(&["ports", "del", "7"]);
    assert!(!ok && err.contains("no port 7"), "{err}");
    let (ok, _, err) = r.ctl(&["ports", "add", "net_nosuchpmd0"]);
    assert!(!ok && err.contains("PMD"), "{err}");

    // Delete the steering rule: the older rule sends to port 1 again.
    let (ok, _, err) = r.ctl(&["flows", "del", "--strict", "priority=200,in_port=0"]);
    assert!(ok, "{err}");
    let p1 = tx_of(&r, 1);
    until("traffic back on port 1", 20, || tx_of(&r, 1) > p1 + 1000);
    let (ok, out, _) = r.ctl(&["stats", "--json"]);
    assert!(ok && out.contains("cache_hit_rate"), "{out}");
}

#[test]
fn namespaces_ping_through_the_switch_and_a_drop_rule_stops_it() {
    assert!(
        Command::new("ip").arg("-V").output().is_ok(),
        "the `ip` command is missing: apt-get install iproute2"
    );
    let id = std::process::id() % 100000;
    let (n1, n2) = (format!("vsa{id}"), format!("vsb{id}"));
    let (h1, h2) = (format!("vsh1{id}"), format!("vsh2{id}"));
    let mut ns = Netns::default();
    ns.host(&n1, &h1, "02:00:00:00:c7:01", "10.199.0.1/24");
    ns.host(&n2, &h2, "02:00:00:00:c7:02", "10.199.0.2/24");
    let r = start(
        "ns",
        &[
            &format!("net_af_packet0,iface={h1}"),
            &format!("net_af_packet1,iface={h2}"),
        ],
        &[],
    );
    // No rules: NORMAL learns the two hosts and forwards between them.
    let ping = || {
        sh(&format!(
            "ip netns exec {n1} ping -c 3 -i 0.2 -W 1 10.199.0.2"
        ))
        .status
        .success()
    };
    until("ping through the switch", 20, ping);
    let (ok, out, _) = r.ctl(&["fdb", "show", "--json"]);
    assert!(ok);
    assert!(
        out.matches("\"port\"").count() >= 2,
        "both hosts learned: {out}"
    );

    let (ok, _, err) = r.ctl(&["flows", "add", "priority=1000,icmp,actions=drop"]);
    assert!(ok, "{err}");
    assert!(!ping(), "ping crossed a drop rule");
    let (ok, out, _) = r.ctl(&["flows", "dump", "--json"]);
    assert!(ok && out.contains("drop"), "{out}");
    drop(r);
    drop(ns);
}

#[test]
fn two_workers_poll_the_rx_queues_of_one_port() {
    // Three lcores on the machine's CPUs: the main one and two workers. The
    // generator port gets one rx queue per worker; both workers switch.
    let eal = format!(
        "--lcores 0@0,1@1,2@1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-mc-{}",
        std::process::id()
    );
    let o = run_once(
        eal,
        &["net_null0".into(), "net_null1,no-rx=1".into()],
        &["priority=10,in_port=0,actions=output:1"],
        &["--duration", "3", "--json"],
        Duration::from_secs(60),
    );
    let v = summary(&o);
    let per_core = v["switch"]["per_core"].as_array().unwrap();
    assert_eq!(per_core.len(), 2, "{v}");
    for c in per_core {
        let rx = c["counters"]["rx_packets"].as_u64().unwrap();
        assert!(
            rx > 1000,
            "worker {} switched only {rx} frames: {v}",
            c["worker"]
        );
    }
    let total_rx = v["switch"]["total"]["counters"]["rx_packets"]
        .as_u64()
        .unwrap();
    let sink_tx = v["ports"][1]["total"]["tx_packets"].as_u64().unwrap();
    assert_eq!(total_rx, sink_tx, "every frame switched reached the sink");
}

#[test]
fn vhost_user_port_carries_frames_to_a_virtio_front_end() {
    // net_vhost0 is a vhost-user port, the kind a VM's virtio-net attaches
    // to; DPDK's own virtio-user front end (net_virtio_user0) plays the VM
    // here. pcap rx → port 1 (vhost) → the front end → port 2 → port 0 tx.
    let d = tmpdir("vhost");
    let input: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            ipv4(
                1,
                17,
                64,
                0,
                &l4(1000 + i as u16, 53, 18 + (i as usize % 400)),
            )
        })
        .collect();
    write_frames(&d.join("in.pcap"), input.iter().map(Vec::as_slice));
    let sock = d.join("vhost.sock");
    let o = run_once(
        eal("vhost"),
        &[
            format!(
                "net_pcap0,rx_pcap={},tx_pcap={}",
                d.join("in.pcap").display(),
                d.join("out.pcap").display()
            ),
            format!("net_vhost0,iface={},queues=1", sock.display()),
            format!("net_virtio_user0,path={},queues=1", sock.display()),
        ],
        &[
            "priority=10,in_port=0,actions=output:1",
            "priority=10,in_port=2,actions=output:0",
        ],
        &["--duration", "60", "--idle-exit", "1"],
        Duration::from_secs(90),
    );
    let got = read_frames(&d.join("out.pcap"));
    assert_eq!(got.len(), input.len(), "{}", text(&o));
    for (i, (g, w)) in got.iter().zip(&input).enumerate() {
        assert_eq!(g, w, "frame {i} changed crossing the vhost-user port");
    }
}
