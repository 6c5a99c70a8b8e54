//! Tunnel interop with Open vSwitch's user-space tunnels: a second
//! `ovs-vswitchd-dpdk` (own ovsdb-server, run dir and network namespace) is
//! the far host, with a `type=geneve` (or `type=vxlan`) interface. This
//! kernel has no `geneve` module, so OVS-DPDK is the Geneve peer.
//!
//! ```text
//!  ns A (10.202.0.1)                                   ns C (10.202.0.2)
//!    eth0                                                 eth0
//!     │ veth                                               │ veth
//!  af_packet port 0                                     c0: dpdk net_af_packet1 (ofport 1)
//!  vswitch run ── tunnel port 2 ──(underlay=1)          br-int (secure): tun (ofport 2) geneve,
//!  af_packet port 1 (192.168.78.1)                        remote_ip=192.168.78.1 key=5,
//!     │ veth  ◄── tshark captures here                     + Geneve option tun_metadata0
//!    ul0: dpdk net_af_packet0 ── br-phy (NORMAL, 192.168.78.2 on its tap, hwaddr fixed)
//!                                ns O: ovs-vswitchd-dpdk + ovsdb-server
//! ```
//!
//! OVS resolves vswitch's MAC by ARP (answered by the switch for its
//! `local_ip`), vswitch resolves OVS's from the kernel of ns O behind
//! br-phy. Ping crosses both ways, raw Ethernet frames sent from one end
//! arrive at the other byte for byte, OVS's packets carry the VNI and the
//! Geneve option it was told to send (and vswitch decapsulates them: its
//! rule matches `tun_id` and `tun_src`), vswitch's packets match OVS's
//! `tun_id=5` rule, and tshark decodes every captured outer packet without
//! a malformed or error-level expert item.

mod ovs_harness;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovs_harness::netns::{must, sh, start, until, Netns};
use ovs_harness::{ok, Kind, Net, Rig};

/// br-phy's MAC (OVS's outer source MAC).
const OVS_MAC: &str = "02:00:00:00:78:02";

/// One pair of busy-polling switches at a time on this 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A raw Ethernet frame sent by an AF_PACKET socket on `eth0` of
/// `from_ns` must arrive on `eth0` of `to_ns` byte for byte: the receiver
/// starts first and prints the first frame carrying the frame's marker.
fn raw_frame_crosses(from_ns: &str, to_ns: &str, frame: &[u8], marker: &str) {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let rx = Command::new("ip")
        .args(["netns", "exec", to_ns, "timeout", "15", "python3", "-c"])
        .arg(format!(
            "import socket,sys\n\
             s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind(('eth0', 0))\n\
             open('/dev/stdout','w').write('ready\\n')\n\
             m=bytes.fromhex('{marker}')\n\
             while True:\n\
             \x20   d,a=s.recvfrom(65535)\n\
             \x20   if a[2] != socket.PACKET_OUTGOING and m in d:\n\
             \x20       print(d.hex()); break\n"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // Sent a few times: the first may meet an ARP resolution in progress.
    for _ in 0..3 {
        must(&format!(
            "ip netns exec {from_ns} python3 -c \"import socket; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); \
             s.bind(('eth0', 0)); s.send(bytes.fromhex('{hex}'))\""
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = rx.wait_with_output().unwrap();
    let got = String::from_utf8_lossy(&o.stdout);
    let got = got.lines().nth(1).unwrap_or("").trim().to_owned();
    assert_eq!(
        got,
        hex,
        "frame {from_ns} -> {to_ns} (receiver: {})",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let s = must(&format!(
        "ip netns exec {ns} cat /sys/class/net/{dev}/address"
    ));
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// An Ethernet frame of `len` bytes (EtherType 0x88b5, local experimental)
/// with `marker` after the header and a counting pattern after it.
fn test_frame(dst: [u8; 6], src: [u8; 6], marker: &[u8], len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(marker);
    let mut i = 0u8;
    while f.len() < len {
        f.push(i);
        i = i.wrapping_add(7);
    }
    f
}

/// The far host: OVS-DPDK in namespace `no`, set up as its user-space
/// tunnelling guide says (Documentation/howto/userspace-tunneling.rst):
/// `br-phy` on the underlay (`ul0`, 192.168.78.2), `br-int` with the
/// overlay's host port (`c0`, port 1) and a `kind` tunnel port (port 2,
/// key 5) to 192.168.78.1; a Geneve port adds an option to what it sends.
fn far_host(kind: &str, tag: &str, no: &str) -> Rig {
    let mut ovs = Rig::new(Kind::Ovs, &format!("tnl-{tag}"));
    ok(ovs.start_ovsdb());
    ok(ovs.start_daemon(Net::Named(no), &[]));
    ok(ovs.add_bridge(
        "br-phy",
        &[
            "fail_mode=standalone",
            &format!("other_config:hwaddr={OVS_MAC}"),
        ],
    ));
    ok(ovs.check_dpdk());
    ok(ovs.add_dpdk_port("br-phy", "ul", 1, "net_af_packet0,iface=ul0", &[]));
    must(&format!("ip -n {no} addr add 192.168.78.2/24 dev br-phy"));
    must(&format!("ip -n {no} link set br-phy up"));
    ok(ovs.add_bridge("br-int", &["fail_mode=secure"]));
    ok(ovs.add_dpdk_port("br-int", "c0", 1, "net_af_packet1,iface=c0", &[]));
    ok(ovs.vsctl(&[
        "add-port",
        "br-int",
        "tun",
        "--",
        "set",
        "Interface",
        "tun",
        &format!("type={kind}"),
        "ofport_request=2",
        "options:remote_ip=192.168.78.1",
        "options:key=5",
    ]));
    let mut flows = vec!["priority=10,in_port=2,tun_id=5,actions=output:1".to_string()];
    if kind == "geneve" {
        // A Geneve option on everything OVS sends (class 0x0102, type 1:
        // not critical, RFC 8926 §3.5).
        ok(ovs.ofctl(&[
            "add-tlv-map",
            "br-int",
            "{class=0x0102,type=0x01,len=4}->tun_metadata0",
        ]));
        flows.push(
            "priority=10,in_port=1,actions=set_field:0xabcd1234->tun_metadata0,output:2".into(),
        );
    } else {
        flows.push("priority=10,in_port=1,actions=output:2".into());
    }
    for f in &flows {
        ok(ovs.ofctl(&["add-flow", "br-int", f]));
    }
    // OVS's tunnel route comes from the kernel's table in its namespace.
    until("OVS route to 192.168.78.0/24", 20, || {
        ok(ovs.appctl(&["ovs/route/show"])).contains("192.168.78.0/24")
    });

    ovs
}

/// What tshark says of both captures: every outer packet decodes as
/// `kind` with VNI 5 on `udp_port`, none malformed or in error, at least
/// seven each way; vswitch's go to OVS's MAC (resolved by ARP) without
/// Geneve options, OVS's Geneve packets carry the option it was told to add.
fn check_outer_packets(caps: &[PathBuf], kind: &str, udp_port: u16) {
    // tshark: every outer packet decodes, none malformed or in error (one
    // tshark run per capture: each start costs seconds).
    let (proto, vni) = match kind {
        "geneve" => ("geneve", "geneve.vni"),
        _ => ("vxlan", "vxlan.vni"),
    };
    let fields = [
        "ip.src",
        "ip.dst",
        proto,
        vni,
        "eth.dst",
        "udp.dstport",
        "geneve.option.class",
        "geneve.option.type",
        "geneve.option.unknown.data",
        "_ws.malformed",
        "_ws.expert.severity",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for cap in caps {
        let mut c = Command::new("tshark");
        c.arg("-r")
            .arg(cap)
            .args(["-T", "fields", "-E", "occurrence=a"]);
        for f in fields {
            c.args(["-e", f]);
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        rows.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.split('\t').map(str::to_owned).collect()),
        );
    }
    assert!(rows.len() >= 14, "captured only {} packets", rows.len());
    // The outermost value of a field (inner headers repeat some).
    let first = |r: &Vec<String>, i: usize| r[i].split(',').next().unwrap_or("").to_owned();
    // Expert severities: 0x00800000 is "error" (epan/proto.h PI_ERROR).
    let severity = |r: &Vec<String>| {
        r[10]
            .split(',')
            .filter_map(|v| {
                v.strip_prefix("0x")
                    .map_or(v.parse().ok(), |h| u32::from_str_radix(h, 16).ok())
            })
            .max()
            .unwrap_or(0)
    };
    for r in &rows {
        assert!(r[9].is_empty(), "tshark: malformed packet {r:?}");
        assert!(
            severity(r) < 0x0080_0000,
            "tshark: error-level expert info {r:?}"
        );
    }
    for (src, dst) in [
        ("192.168.78.1", "192.168.78.2"),
        ("192.168.78.2", "192.168.78.1"),
    ] {
        let dir: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| first(r, 0) == src && first(r, 1) == dst)
            .collect();
        assert!(dir.len() >= 7, "{src} -> {dst}: {dir:?}");
        for r in dir {
            assert!(
                !r[2].is_empty(),
                "{src} -> {dst} not decoded as {proto}: {r:?}"
            );
            let v = first(r, 3);
            assert_eq!(
                v.trim_start_matches("0x").trim_start_matches('0'),
                "5",
                "VNI: {r:?}"
            );
            assert_eq!(first(r, 5), udp_port.to_string(), "{r:?}");
            if src == "192.168.78.1" {
                // vswitch's next hop, learned by ARP.
                assert_eq!(first(r, 4), OVS_MAC, "{r:?}");
                // The switch sends Geneve without options.
                assert!(r[6].is_empty(), "{r:?}");
            } else if kind == "geneve" {
                // OVS's packets carry the option it was told to add.
                assert_eq!(
                    (first(r, 6), first(r, 7), first(r, 8)),
                    ("0x0102".into(), "0x01".into(), "abcd1234".into()),
                    "{r:?}"
                );
            }
        }
    }
}

fn interop(kind: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (udp_port, tag) = match kind {
        "geneve" => (6081, "g"),
        _ => (4789, "v"),
    };
    let id = std::process::id() % 100000;
    let (na, nc, no) = (
        format!("to{tag}a{id}"),
        format!("to{tag}c{id}"),
        format!("to{tag}o{id}"),
    );
    let (ha, hu) = (format!("to{tag}ha{id}"), format!("to{tag}hu{id}"));
    // A behind vswitch; the underlay veth between vswitch and OVS's ns;
    // C behind OVS (its veth's other end c0 in OVS's ns).
    let mut ns = Netns::default();
    ns.add(&no);
    ns.add(&nc);
    ns.host(&na, &ha, "02:00:00:00:7a:01", "10.202.0.1/24");
    ns.veth(&hu, "ul0", &no);
    must(&format!(
        "ip -n {nc} link add eth0 type veth peer name c0 netns {no}"
    ));
    must(&format!("ip -n {nc} addr add 10.202.0.2/24 dev eth0"));
    for (n, l) in [(&nc, "eth0"), (&no, "ul0"), (&no, "c0")] {
        must(&format!("ip -n {n} link set {l} up"));
        // Checksums in software: a packet socket reads frames before the
        // kernel fills in an offloaded checksum.
        must(&format!("ip netns exec {n} ethtool -K {l} tx off"));
    }
    // The overlay, with room for the outer headers on the 1500-byte underlay.
    for n in [&na, &nc] {
        must(&format!("ip -n {n} link set eth0 mtu 1400"));
    }

    // The far host: OVS-DPDK, set up as its user-space tunnelling guide
    // says (Documentation/howto/userspace-tunneling.rst).
    let t_start = Instant::now();
    let ovs = far_host(kind, tag, &no);
    eprintln!("OVS set up in {:?}", t_start.elapsed());
    let vs = start(
        &format!("tnlovs-{tag}"),
        &[
            format!("net_af_packet0,iface={ha}"),
            format!("net_af_packet1,iface={hu}"),
            format!("t0,type={kind},local_ip=192.168.78.1,remote_ip=192.168.78.2,key=5,underlay=1"),
        ],
    );
    for rule in [
        "priority=10,in_port=0,actions=output:2",
        "priority=10,in_port=2,tun_id=5,tun_src=192.168.78.2,actions=output:0",
    ] {
        let (ok, _, err) = vs.ctl(&["flows", "add", rule]);
        assert!(ok, "{rule}: {err}");
    }

    // DPDK's af_packet sends with PACKET_QDISC_BYPASS, which packet
    // taps on the sending side do not see: each direction is captured
    // where it is received (vswitch's packets on ul0 in OVS's namespace,
    // OVS's on the host's end).
    let caps: Vec<PathBuf> = ["rx-ovs", "rx-vsw"]
        .iter()
        .map(|s| std::env::temp_dir().join(format!("vswitch-tnlovs-{tag}-{id}-{s}.pcap")))
        .collect();
    let mut tsharks = Vec::new();
    for (cap, (ns_exec, dev)) in caps.iter().zip([
        (format!("ip netns exec {no} "), "ul0".to_string()),
        (String::new(), hu.clone()),
    ]) {
        let _ = std::fs::remove_file(cap);
        tsharks.push(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "exec {ns_exec}tshark -q -i {dev} -w {} -f 'udp port {udp_port}'",
                    cap.display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    until("tshark capturing", 20, || caps.iter().all(|c| c.exists()));
    let t0 = Instant::now();
    eprintln!("vswitch and tshark up at {:?}", t_start.elapsed());

    // Both directions; the first rounds resolve the next hops by ARP.
    until("ping A -> C over the tunnel", 30, || {
        sh(&format!(
            "ip netns exec {na} ping -c 2 -i 0.2 -W 1 10.202.0.2"
        ))
        .status
        .success()
    });
    must(&format!(
        "ip netns exec {nc} ping -c 3 -i 0.2 -W 1 10.202.0.1"
    ));
    let (ma, mc) = (mac_of(&na, "eth0"), mac_of(&nc, "eth0"));
    for len in [60, 1000] {
        let f = test_frame(mc, ma, b"vsw->ovs!", len);
        raw_frame_crosses(&na, &nc, &f, "7673772d3e6f767321");
        let f = test_frame(ma, mc, b"ovs->vsw!", len);
        raw_frame_crosses(&nc, &na, &f, "6f76732d3e76737721");
    }
    eprintln!("traffic checked in {:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    for t in &mut tsharks {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(t.id() as i32, libc::SIGINT) };
        let _ = t.wait();
    }

    // vswitch decapsulated (its rule matched tun_id=5 from 192.168.78.2)
    // and encapsulated; OVS's tun_id=5 rule matched vswitch's packets.
    let t = vs.port(2);
    assert!(t["rx_packets"].as_u64().unwrap() >= 7, "decapsulated: {t}");
    assert!(t["tx_packets"].as_u64().unwrap() >= 7, "encapsulated: {t}");
    let dump = ok(ovs.ofctl(&["dump-flows", "br-int", "in_port=2"]));
    let n: u64 = dump
        .split("n_packets=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(n >= 7, "OVS's tun_id=5 rule: {dump}");

    check_outer_packets(&caps, kind, udp_port);
    // Nothing OVS sent was dropped by the tunnel port.
    let drops = &t["drops"];
    for k in ["bad_header", "truncated", "bad_vni", "unknown_remote"] {
        assert_eq!(drops[k].as_u64().unwrap_or(0), 0, "{k}: {t}");
    }
    for cap in &caps {
        let _ = std::fs::remove_file(cap);
    }
    drop(vs);
    drop(ovs);
    drop(ns);
    eprintln!("torn down at {:?}", t_start.elapsed());
}

#[test]
fn geneve_with_ovs_dpdk_as_the_far_host() {
    interop("geneve");
}

#[test]
fn vxlan_with_ovs_dpdk_as_the_far_host() {
    interop("vxlan");
}
