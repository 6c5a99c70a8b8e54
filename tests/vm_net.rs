//! Virtual machines on the switch: real QEMU guests (TCG, the host's Debian
//! kernel, busybox) with `virtio-net-pci` NICs on `vhost-user` netdevs,
//! attached to `vswitch run` through `net_vhost` ports in client mode (QEMU
//! owns the sockets, OVS's `dpdkvhostuserclient`).
//!
//! - Two guests and a network namespace (on an `net_af_packet` port) reach
//!   each other through explicit flow rules: ping, a TCP transfer whose
//!   checksum is compared end to end, a drop rule that stops one pair only.
//!   A guest's QEMU restarts: its port's link goes down and comes back by
//!   itself. The switch restarts under a pinging guest: the ping resumes
//!   with no guest action.
//! - Two guests with two queue pairs each on two forwarding lcores: frames
//!   arrive on both queues of a port; jumbo frames (MTU 9000) cross; the
//!   second guest's port is added at run time through the control socket.
//!
//! Needs qemu-system-x86, linux-image-amd64, busybox-static and iproute2;
//! run as root (network namespaces, veth).

mod vm;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use vm::net::{test_eal, NetGuest, Nic, Switch};
use vm::TempDir;

const MAC_A: &str = "52:54:00:00:0a:01";
const MAC_B: &str = "52:54:00:00:0a:02";
const MAC_C: &str = "52:54:00:00:0a:03";
const BOOT: Duration = Duration::from_secs(90);
const CMD: Duration = Duration::from_secs(30);

/// The tests of this file run one at a time (each boots two guests and a
/// polling switch; side by side on two CPUs they would starve each other).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn setup(name: &str) -> (PathBuf, TempDir) {
    let dir = std::env::temp_dir().join(format!("vswitch-vmnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (dir.clone(), TempDir(dir))
}

fn sh(cmd: &str) -> (bool, String) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn must(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "{cmd}: {out}");
    out
}

/// A network namespace with a veth pair: `eth0` inside, `host` outside.
struct Netns {
    name: String,
    host: String,
}

impl Netns {
    fn new(tag: &str, ip: &str, mac: &str) -> Netns {
        let id = std::process::id() % 100000;
        let n = Netns {
            name: format!("vmn{tag}{id}"),
            host: format!("vmh{tag}{id}"),
        };
        must(&format!("ip netns add {}", n.name));
        must(&format!(
            "ip link add {} type veth peer name eth0 netns {}",
            n.host, n.name
        ));
        must(&format!("ip link set {} up", n.host));
        must(&format!("ip -n {} link set eth0 address {mac}", n.name));
        must(&format!("ip -n {} addr add {ip} dev eth0", n.name));
        must(&format!("ip -n {} link set eth0 up", n.name));
        must(&format!("ip -n {} link set lo up", n.name));
        n
    }

    fn exec(&self, cmd: &str) -> (bool, String) {
        sh(&format!("ip netns exec {} {cmd}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip link del {}", self.host));
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

/// The guest's setup: address and up.
fn guest_ip(ip: &str) -> String {
    format!("ip addr add {ip} dev eth0; ip link set eth0 up")
}

/// n_packets of the rule whose text contains `needle`.
fn rule_packets(sw: &Switch, needle: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&sw.must("flows", &["dump", "--json"])).unwrap();
    let text = v.to_string();
    let rules = v["flows"]
        .as_array()
        .or_else(|| v.as_array())
        .unwrap_or_else(|| panic!("flows dump: {text}"));
    rules
        .iter()
        .filter(|r| r["rule"].as_str().unwrap_or("").contains(needle))
        .map(|r| r["packets"].as_u64().unwrap_or(0))
        .sum()
}

/// Replies counted in a guest's ping log.
fn replies(g: &mut NetGuest, log: &str) -> usize {
    let out = g.must(&format!("grep -c 'bytes from' {log} || true"), CMD);
    out.trim()
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn guests_talk_through_rules_and_survive_restarts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, _tmp) = setup("pair");
    let (sa, sb) = (dir.join("a.sock"), dir.join("b.sock"));
    let mut a = NetGuest::boot(&dir, "a", &[Nic::new(&sa, MAC_A)], &guest_ip("10.0.0.1/24"));
    let mut b = NetGuest::boot(&dir, "b", &[Nic::new(&sb, MAC_B)], &guest_ip("10.0.0.2/24"));
    let c = Netns::new("c", "10.0.0.3/24", MAC_C);
    // Explicit rules (no NORMAL): ARP floods, IPv4 goes by destination.
    let mut args = vec!["--eal".to_string(), test_eal("-l 0-1", "pair")];
    for p in [
        format!("net_vhost0,iface={},client=1", sa.display()),
        format!("net_vhost1,iface={},client=1", sb.display()),
        format!("net_af_packet2,iface={}", c.host),
    ] {
        args.extend(["--port".to_string(), p]);
    }
    for f in [
        "priority=10,arp,actions=FLOOD",
        "priority=10,ip,nw_dst=10.0.0.1,actions=output:0",
        "priority=10,ip,nw_dst=10.0.0.2,actions=output:1",
        "priority=10,ip,nw_dst=10.0.0.3,actions=output:2",
    ] {
        args.extend(["--flow".to_string(), f.to_string()]);
    }
    args.extend(["--stats-interval".into(), "0".into()]);
    let mut sw = Switch::start(&dir, &args);
    a.wait_ready(BOOT);
    b.wait_ready(BOOT);
    sw.wait_link(0, true, Duration::from_secs(10));
    sw.wait_link(1, true, Duration::from_secs(10));

    // Guest to guest, and the namespace to both.
    a.must("ping -c 3 -W 5 10.0.0.2", CMD);
    b.must("ping -c 2 -W 5 10.0.0.1", CMD);
    let (ok, out) = c.exec("ping -c 2 -W 5 10.0.0.1");
    assert!(ok, "namespace to guest a: {out}");
    let (ok, out) = c.exec("ping -c 2 -W 5 10.0.0.2");
    assert!(ok, "namespace to guest b: {out}");
    assert!(rule_packets(&sw, "nw_dst=10.0.0.2") >= 3);
    assert!(rule_packets(&sw, "nw_dst=10.0.0.3") >= 4);

    // TCP: 2 MiB of random bytes from a to b, checksums compared.
    // The listener's stdin stays open (a background job's is /dev/null,
    // whose EOF would make nc half-close the connection early).
    b.must("sleep 120 | nc -l -p 5000 > /tmp/got &", CMD);
    let sum_a = a.must(
        "dd if=/dev/urandom of=/tmp/file bs=64k count=32 2>/dev/null; md5sum /tmp/file",
        CMD,
    );
    std::thread::sleep(Duration::from_millis(300));
    a.must("nc 10.0.0.2 5000 < /tmp/file", Duration::from_secs(60));
    let t = Instant::now();
    let sum_b = loop {
        let s = b.must("md5sum /tmp/got", CMD);
        if s.split_whitespace().next() == sum_a.split_whitespace().next() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sum_b.split_whitespace().next(),
        sum_a.split_whitespace().next(),
        "the file b received differs: {sum_a} vs {sum_b}; {}",
        sw.must("ports", &["show"])
    );
    let p1 = sw.port(1);
    assert!(p1["tx_bytes"].as_u64().unwrap() > 2 << 20, "{p1}");

    // A drop rule between a and b stops that pair only.
    sw.must(
        "flows",
        &[
            "add",
            "priority=100,ip,nw_src=10.0.0.1,nw_dst=10.0.0.2,actions=drop",
        ],
    );
    let (rc, _) = a.run("ping -c 2 -W 2 10.0.0.2", CMD);
    assert_ne!(rc, 0, "ping crossed the drop rule");
    assert!(rule_packets(&sw, "actions=drop") >= 2);
    let (ok, out) = c.exec("ping -c 1 -W 5 10.0.0.2");
    assert!(ok, "the drop rule stopped the namespace too: {out}");
    sw.must(
        "flows",
        &[
            "del",
            "--strict",
            "priority=100,ip,nw_src=10.0.0.1,nw_dst=10.0.0.2",
        ],
    );
    a.must("ping -c 1 -W 5 10.0.0.2", CMD);

    // These ports have no mtu=: a jumbo frame outgrows their mbufs and is
    // dropped as truncated (never forwarded cut); the multiqueue test
    // sends the same frames through mtu=9000 ports.
    let truncated = || {
        let v: serde_json::Value = serde_json::from_str(&sw.must("stats", &["--json"])).unwrap();
        v["total"]["malformed"]["truncated_ipv4"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = truncated();
    for g in [&mut a, &mut b] {
        g.must("ip link set eth0 mtu 9000", CMD);
    }
    let (rc, _) = a.run("ping -c 2 -W 2 -s 8000 10.0.0.2", CMD);
    assert_ne!(rc, 0, "a jumbo frame crossed ports without mtu=");
    assert!(truncated() >= before + 2, "jumbo frames not counted");
    for g in [&mut a, &mut b] {
        g.must("ip link set eth0 mtu 1500", CMD);
    }
    a.must("ping -c 1 -W 5 10.0.0.2", CMD);

    // Guest b's QEMU restarts: the port's link follows it, and the switch
    // reconnects to the new QEMU by itself.
    b.restart();
    sw.wait_link(1, false, Duration::from_secs(10));
    b.wait_ready(BOOT);
    sw.wait_link(1, true, Duration::from_secs(20));
    a.must("ping -c 2 -W 5 10.0.0.2", CMD);
    // By default both guests' two rings, and guest b's again after its
    // restart, ran on the switch's own ring code (dpdk::vring), handed
    // back and taken again around every vhost-user message and the
    // restart; none with `VSWITCH_VHOST_RING=lib`.
    if vm::net::own_rings_expected() {
        assert!(sw.own_rings() >= 6, "own rings: {}", sw.log_text());
    } else {
        assert_eq!(sw.own_rings(), 0);
    }

    // The switch restarts under a pinging guest: replies stop while it is
    // down and resume after, the guests untouched.
    a.must("ping -i 0.2 10.0.0.2 > /tmp/ping 2>&1 &", CMD);
    std::thread::sleep(Duration::from_secs(2));
    assert!(replies(&mut a, "/tmp/ping") >= 3, "ping before the restart");
    sw.stop();
    let down = replies(&mut a, "/tmp/ping");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        replies(&mut a, "/tmp/ping") <= down + 1,
        "replies came with the switch down"
    );
    let restarted = Instant::now();
    sw.start_again();
    let t = Instant::now();
    while replies(&mut a, "/tmp/ping") < down + 5 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the ping did not resume after the switch restart: {}",
            a.must("tail -5 /tmp/ping", CMD)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "ping resumed {:.1} s after the switch restarted",
        restarted.elapsed().as_secs_f64()
    );
    sw.wait_link(0, true, Duration::from_secs(5));
    sw.wait_link(1, true, Duration::from_secs(5));
    a.must("kill %1 2>/dev/null; killall ping; true", CMD);
}

/// Rx frames per queue of port `no` (`ports show --json`).
fn queue_packets(sw: &Switch, no: u64) -> Vec<u64> {
    sw.port(no)["rx_queue_packets"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn multiqueue_guests_and_jumbo_frames_on_two_lcores() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, _tmp) = setup("mq");
    let (sa, sb) = (dir.join("a.sock"), dir.join("b.sock"));
    // Two queue pairs each; QEMU tells the guests their MTU (host_mtu).
    let nic = |s: &PathBuf, mac: &str| {
        let mut n = Nic::new(s, mac).queues(2);
        n.dev_opts = ",host_mtu=9000".into();
        n
    };
    let mut a = NetGuest::boot(&dir, "a", &[nic(&sa, MAC_A)], &guest_ip("10.0.1.1/24"));
    let mut b = NetGuest::boot(&dir, "b", &[nic(&sb, MAC_B)], &guest_ip("10.0.1.2/24"));
    let c = Netns::new("q", "10.0.1.3/24", MAC_C);
    // Two forwarding lcores (1 and 2; 0 monitors) on the machine's 2 CPUs.
    // The af_packet port has one tx queue: the two lcores share it.
    let args: Vec<String> = [
        "--eal",
        &test_eal("--lcores 0@0,1@0,2@1", "mq"),
        "--port",
        &format!(
            "net_vhost0,iface={},client=1,queues=2,mtu=9000",
            sa.display()
        ),
        "--port",
        &format!("net_af_packet1,iface={}", c.host),
        "--stats-interval",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sw = Switch::start(&dir, &args);
    // b's port comes at run time, through the control socket.
    let out = sw.must(
        "ports",
        &[
            "add",
            &format!(
                "net_vhost1,iface={},client=1,queues=2,mtu=9000",
                sb.display()
            ),
        ],
    );
    assert!(out.contains("added port 2"), "{out}");
    a.wait_ready(BOOT);
    b.wait_ready(BOOT);
    sw.wait_link(0, true, Duration::from_secs(10));
    sw.wait_link(2, true, Duration::from_secs(10));
    for (g, ip) in [(&mut a, "10.0.1.2"), (&mut b, "10.0.1.1")] {
        let q = g.must("ls /sys/class/net/eth0/queues | tr '\\n' ' '", CMD);
        assert!(
            q.contains("rx-1") && q.contains("tx-1"),
            "{}: two queue pairs: {q}",
            g.name
        );
        let mtu = g.must("cat /sys/class/net/eth0/mtu", CMD);
        assert_eq!(mtu.trim(), "9000", "{}: host_mtu reaches the guest", g.name);
        // Jumbo frames both ways (8028-byte IP datagrams, no fragments).
        g.must(&format!("ping -c 3 -W 5 -s 8000 {ip}"), CMD);
    }
    for no in [0, 2] {
        let p = sw.port(no);
        assert_eq!(p["mtu"], 9000, "{p}");
        assert_eq!(queue_packets(&sw, no).len(), 2, "{p}");
        assert!(p["rx_bytes"].as_u64().unwrap() > 3 * 8000, "{p}");
    }
    // The guest sends from each vCPU on its own tx queue (virtio_net's
    // XPS): pings pinned to both CPUs reach the switch on both queues.
    a.must(
        "taskset 1 ping -c 20 -i 0.1 10.0.1.2 > /tmp/p0 & taskset 2 ping -c 20 -i 0.1 10.0.1.2 > /tmp/p1; wait",
        Duration::from_secs(60),
    );
    let q = queue_packets(&sw, 0);
    assert!(
        q.iter().all(|&n| n >= 10),
        "a's frames did not arrive on both queues of port 0: {q:?}"
    );
    // Both lcores send to the namespace through the af_packet port's one
    // (shared) tx queue.
    let before = sw.port(1)["tx_packets"].as_u64().unwrap();
    a.must(
        "taskset 1 ping -c 10 -i 0.1 10.0.1.3 > /tmp/c0 & taskset 2 ping -c 10 -i 0.1 10.0.1.3 > /tmp/c1; wait",
        Duration::from_secs(60),
    );
    let got = a.must("cat /tmp/c0 /tmp/c1 | grep -c 'bytes from'", CMD);
    assert!(
        got.trim().parse::<u32>().unwrap_or(0) >= 18,
        "replies from the namespace: {got}"
    );
    assert!(sw.port(1)["tx_packets"].as_u64().unwrap() >= before + 20);
    let (ok, out) = c.exec("ping -c 2 -W 5 10.0.1.2");
    assert!(ok, "namespace to guest b: {out}");
    // Each queue is polled by its own forwarding lcore: both switched.
    let v: serde_json::Value = serde_json::from_str(&sw.must("stats", &["--json"])).unwrap();
    let per_core = v["per_core"]
        .as_array()
        .unwrap_or_else(|| panic!("stats: {v}"));
    assert_eq!(per_core.len(), 2, "{v}");
    for c in per_core {
        assert!(
            c["counters"]["rx_packets"].as_u64().unwrap() >= 10,
            "worker {} switched too little: {v}",
            c["worker"]
        );
    }
}

/// A fresh `ovsdb-server` on a database made from OVS's schema; killed
/// on drop.
struct Ovsdb {
    sock: PathBuf,
    _server: vm::Reaper,
}

impl Ovsdb {
    fn start(dir: &std::path::Path) -> Ovsdb {
        let schema = "/usr/share/openvswitch/vswitch.ovsschema";
        must(&format!(
            "ovsdb-tool create {}/conf.db {schema}",
            dir.display()
        ));
        let sock = dir.join("db.sock");
        let server = Command::new("ovsdb-server")
            .arg(dir.join("conf.db"))
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!("--unixctl={}", dir.join("ovsdb.ctl").display()))
            .arg(format!("--log-file={}", dir.join("ovsdb.log").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ovsdb-server: apt-get install openvswitch-switch");
        let db = Ovsdb {
            sock,
            _server: vm::Reaper(Some(server)),
        };
        let t = Instant::now();
        while !db.sock.exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "no ovsdb-server");
            std::thread::sleep(Duration::from_millis(50));
        }
        db.vsctl("--no-wait init");
        db
    }

    fn vsctl(&self, args: &str) -> String {
        must(&format!(
            "ovs-vsctl --db=unix:{} --timeout=20 {args}",
            self.sock.display()
        ))
        .trim()
        .trim_matches('"')
        .to_string()
    }

    fn wait_iface(&self, iface: &str, column: &str, want: &str) {
        let t = Instant::now();
        loop {
            let got = self.vsctl(&format!("get Interface {iface} {column}"));
            if got == want {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "Interface {iface} {column} is {got}, not {want}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn ovs_vsctl_attaches_guests_in_client_and_server_mode() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, _tmp) = setup("ovs");
    let db = Ovsdb::start(&dir);
    // a: QEMU owns the socket (dpdkvhostuserclient); b: the switch serves
    // RUNDIR/vhu-b (dpdkvhostuser) and QEMU connects.
    let (sa, sb) = (dir.join("a.sock"), dir.join("vhu-b"));
    let jumbo = |n: Nic| Nic {
        dev_opts: ",host_mtu=9000".into(),
        ..n
    };
    let mut a = NetGuest::boot(
        &dir,
        "a",
        &[jumbo(Nic::new(&sa, MAC_A))],
        &guest_ip("10.0.2.1/24"),
    );
    let args: Vec<String> = [
        "--eal",
        &test_eal("-l 0-1", "ovs"),
        "--ovsdb",
        &format!("unix:{}", db.sock.display()),
        "--rundir",
        &dir.display().to_string(),
        "--stats-interval",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sw = Switch::start(&dir, &args);
    db.vsctl("add-br br0 -- set bridge br0 datapath_type=netdev");
    db.vsctl(&format!(
        "add-port br0 vhu-a -- set Interface vhu-a type=dpdkvhostuserclient \
         options:vhost-server-path={} mtu_request=9000",
        sa.display()
    ));
    db.vsctl("add-port br0 vhu-b -- set Interface vhu-b type=dpdkvhostuser mtu_request=9000");
    assert!(sb.exists(), "the switch serves {}", sb.display());
    let mut b = NetGuest::boot(
        &dir,
        "b",
        &[jumbo(Nic::new(&sb, MAC_B).switch_serves())],
        &guest_ip("10.0.2.2/24"),
    );
    a.wait_ready(BOOT);
    b.wait_ready(BOOT);
    for i in ["vhu-a", "vhu-b"] {
        db.wait_iface(i, "link_state", "up");
        db.wait_iface(i, "mtu", "9000");
    }
    a.must("ping -c 3 -W 5 10.0.2.2", CMD);
    b.must("ping -c 2 -W 5 -s 8000 10.0.2.1", CMD);

    // b's QEMU restarts: it reconnects to the switch's socket; the link
    // follows it in OVSDB.
    b.restart();
    db.wait_iface("vhu-b", "link_state", "down");
    b.wait_ready(BOOT);
    db.wait_iface("vhu-b", "link_state", "up");
    a.must("ping -c 2 -W 5 10.0.2.2", CMD);

    // del-port: the port goes, and with it a's way to b.
    let ofport: u64 = db.vsctl("get Interface vhu-a ofport").parse().unwrap();
    db.vsctl("del-port br0 vhu-a");
    let v: serde_json::Value =
        serde_json::from_str(&sw.must("ports", &["show", "--json"])).unwrap();
    assert!(
        !v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"] == ofport),
        "port {ofport} is still there: {v}"
    );
    let (rc, _) = a.run("ping -c 1 -W 2 10.0.2.2", CMD);
    assert_ne!(rc, 0, "a reached b without its port");
}
