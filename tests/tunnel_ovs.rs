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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const VSWITCHD_DPDK: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
/// br-phy's MAC (OVS's outer source MAC).
const OVS_MAC: &str = "02:00:00:00:78:02";

/// One pair of busy-polling switches at a time on this 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

fn must(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A command killed with the test (PR_SET_PDEATHSIG), so no PMD spins on.
fn command(prog: &str) -> Command {
    let mut c = Command::new(prog);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches no memory of the
    // forked child; the flag survives the exec.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn stop(child: &mut Child) {
    // SAFETY: signalling our own child, not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Namespaces and links, removed on drop (after the daemons: declared
/// first, dropped last).
struct Netns {
    names: Vec<String>,
    links: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = sh(&format!("ip link del {l} 2>/dev/null"));
        }
        for n in &self.names {
            let _ = sh(&format!("ip netns del {n} 2>/dev/null"));
        }
    }
}

/// The far host: ovsdb-server + ovs-vswitchd-dpdk in network namespace
/// `ns`, with everything under a private run dir.
struct Ovs {
    dir: PathBuf,
    prefix: String,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
}

impl Drop for Ovs {
    fn drop(&mut self) {
        if self.vswitchd.is_some() {
            // Close the DPDK ports before the daemon goes.
            for br in ["br-int", "br-phy"] {
                let _ = self.vsctl(&["--timeout=10", "--if-exists", "del-br", br]);
            }
        }
        for c in [self.vswitchd.as_mut(), self.ovsdb.as_mut()]
            .into_iter()
            .flatten()
        {
            stop(c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

impl Ovs {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.join("ovs-vswitchd.log")).unwrap_or_default();
        let v: Vec<&str> = s.lines().collect();
        v[v.len().saturating_sub(30)..].join("\n")
    }

    fn tool(&self, prog: &str, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new(prog);
        for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(v, &self.dir);
        }
        let o = c
            .args(args)
            .output()
            .map_err(|e| format!("run {prog}: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "{prog} {args:?}: {}\n--- ovs-vswitchd.log:\n{}",
                String::from_utf8_lossy(&o.stderr),
                self.log()
            ));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn vsctl(&self, args: &[&str]) -> Result<String, String> {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut v = vec![db.as_str()];
        v.extend_from_slice(args);
        self.tool("ovs-vsctl", &v)
    }

    fn ofctl(&self, args: &[&str]) -> String {
        self.tool("ovs-ofctl", args).unwrap()
    }

    fn appctl(&self, args: &[&str]) -> String {
        let t = format!("--target={}", self.path("vswitchd.ctl"));
        let mut v = vec![t.as_str()];
        v.extend_from_slice(args);
        self.tool("ovs-appctl", &v).unwrap()
    }

    fn wait_for(&mut self, name: &str) {
        let t = Instant::now();
        while !self.dir.join(name).exists() {
            let mut exited = None;
            for c in [self.ovsdb.as_mut(), self.vswitchd.as_mut()]
                .into_iter()
                .flatten()
            {
                if let Ok(Some(st)) = c.try_wait() {
                    exited = Some(st);
                }
            }
            if let Some(st) = exited {
                panic!("an OVS daemon exited ({st}):\n{}", self.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{name} did not appear:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts both daemons, vswitchd in `ns` (PMD on core 1).
    fn start(ns: &str, tag: &str) -> Ovs {
        let prefix = format!("vsw-tnl-ovs-{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ovs = Ovs {
            dir,
            prefix,
            ovsdb: None,
            vswitchd: None,
        };
        ovs.tool("ovsdb-tool", &["create", &ovs.path("conf.db"), SCHEMA])
            .unwrap();
        let mut db = command("ovsdb-server");
        for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            db.env(v, &ovs.dir);
        }
        db.args([
            ovs.path("conf.db"),
            format!("--remote=punix:{}", ovs.path("db.sock")),
            format!("--unixctl={}", ovs.path("ovsdb-server.ctl")),
            format!("--log-file={}", ovs.path("ovsdb-server.log")),
        ]);
        ovs.ovsdb = Some(db.spawn().expect("ovsdb-server (openvswitch-switch)"));
        ovs.wait_for("db.sock");
        ovs.vsctl(&["--no-wait", "init"]).unwrap();
        let extra = format!(
            "other_config:dpdk-extra=--no-pci --no-telemetry --file-prefix={}",
            ovs.prefix
        );
        ovs.vsctl(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:dpdk-init=true",
            "other_config:dpdk-lcore-mask=0x1",
            "other_config:pmd-cpu-mask=0x2",
            "other_config:dpdk-socket-mem=256",
            &extra,
        ])
        .unwrap();
        let mut d = command("ip");
        for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            d.env(v, &ovs.dir);
        }
        d.args(["netns", "exec", ns, VSWITCHD_DPDK])
            .arg(format!("unix:{}", ovs.path("db.sock")))
            .arg(format!("--unixctl={}", ovs.path("vswitchd.ctl")))
            .arg(format!("--pidfile={}", ovs.path("ovs-vswitchd.pid")))
            .arg(format!("--log-file={}", ovs.path("ovs-vswitchd.log")));
        ovs.vswitchd = Some(
            d.spawn()
                .expect("ovs-vswitchd-dpdk (openvswitch-switch-dpdk)"),
        );
        ovs.wait_for("vswitchd.ctl");
        ovs
    }

    fn add_dpdk_port(&self, br: &str, name: &str, ofport: u32, devargs: &str) {
        self.vsctl(&[
            "--timeout=120",
            "add-port",
            br,
            name,
            "--",
            "set",
            "Interface",
            name,
            "type=dpdk",
            &format!("ofport_request={ofport}"),
            &format!("options:dpdk-devargs={devargs}"),
        ])
        .unwrap();
        let got = self.vsctl(&["get", "Interface", name, "ofport"]).unwrap();
        assert_eq!(
            got.trim(),
            ofport.to_string(),
            "OVS port {name} ({devargs}): {}",
            self.vsctl(&["get", "Interface", name, "error"]).unwrap()
        );
    }
}

/// The switch under test, stopped on drop.
struct Vswitch {
    child: Child,
    sock: PathBuf,
}

impl Drop for Vswitch {
    fn drop(&mut self) {
        stop(&mut self.child);
        if let Some(d) = self.sock.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Vswitch {
    fn start(tag: &str, ports: &[String]) -> Vswitch {
        let d = std::env::temp_dir().join(format!("vswitch-tnlovs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let sock = d.join("ctl.sock");
        let mut c = command(env!("CARGO_BIN_EXE_vswitch"));
        c.args(["run", "--eal"])
            .arg(format!(
                "-l 0 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-tnlovs-{tag}-{}",
                std::process::id()
            ))
            .arg("--control")
            .arg(&sock)
            .args(["--stats-interval", "0", "--flow-cache", "4096"]);
        for p in ports {
            c.arg("--port").arg(p);
        }
        c.stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        let mut v = Vswitch { child, sock };
        let t = Instant::now();
        while !v.sock.exists() || !v.ctl(&["stats", "--json"]).0 {
            if let Ok(Some(st)) = v.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = v.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("vswitch exited ({st}): {err}");
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "vswitch did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        v
    }

    fn ctl(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(args)
            .arg("--socket")
            .arg(&self.sock)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn port(&self, no: u64) -> serde_json::Value {
        let (ok, out, err) = self.ctl(&["ports", "show", "--json"]);
        assert!(ok, "ports show: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == no)
            .cloned()
            .unwrap_or_else(|| panic!("no port {no} in {out}"))
    }
}

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
    let ns = Netns {
        names: vec![na.clone(), nc.clone(), no.clone()],
        links: vec![ha.clone(), hu.clone()],
    };
    for n in [&na, &nc, &no] {
        must(&format!("ip netns add {n}"));
        must(&format!("ip -n {n} link set lo up"));
    }
    // A behind vswitch; the underlay veth between vswitch and OVS's ns;
    // C behind OVS (its veth's other end c0 in OVS's ns).
    must(&format!(
        "ip link add {ha} type veth peer name eth0 netns {na}"
    ));
    must(&format!(
        "ip link add {hu} type veth peer name ul0 netns {no}"
    ));
    must(&format!(
        "ip -n {nc} link add eth0 type veth peer name c0 netns {no}"
    ));
    for l in [&ha, &hu] {
        must(&format!("ip link set {l} up"));
    }
    for (n, l) in [(&na, "eth0"), (&nc, "eth0"), (&no, "ul0"), (&no, "c0")] {
        must(&format!("ip -n {n} link set {l} up"));
        // Checksums in software: a packet socket reads frames before the
        // kernel fills in an offloaded checksum.
        must(&format!("ip netns exec {n} ethtool -K {l} tx off"));
    }
    // The overlay, with room for the outer headers on the 1500-byte underlay.
    for (n, ip) in [(&na, "10.202.0.1"), (&nc, "10.202.0.2")] {
        must(&format!("ip -n {n} addr add {ip}/24 dev eth0"));
        must(&format!("ip -n {n} link set eth0 mtu 1400"));
    }

    // The far host: OVS-DPDK, set up as its user-space tunnelling guide
    // says (Documentation/howto/userspace-tunneling.rst).
    let t_start = Instant::now();
    let ovs = Ovs::start(&no, tag);
    eprintln!("OVS started in {:?}", t_start.elapsed());
    ovs.vsctl(&[
        "--timeout=120",
        "add-br",
        "br-phy",
        "--",
        "set",
        "bridge",
        "br-phy",
        "datapath_type=netdev",
        "fail_mode=standalone",
        &format!("other_config:hwaddr={OVS_MAC}"),
    ])
    .unwrap();
    ovs.add_dpdk_port("br-phy", "ul", 1, "net_af_packet0,iface=ul0");
    must(&format!("ip -n {no} addr add 192.168.78.2/24 dev br-phy"));
    must(&format!("ip -n {no} link set br-phy up"));
    ovs.vsctl(&[
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=netdev",
        "fail_mode=secure",
    ])
    .unwrap();
    ovs.add_dpdk_port("br-int", "c0", 1, "net_af_packet1,iface=c0");
    ovs.vsctl(&[
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
    ])
    .unwrap();
    let mut flows = vec!["priority=10,in_port=2,tun_id=5,actions=output:1".to_string()];
    if kind == "geneve" {
        // A Geneve option on everything OVS sends (class 0x0102, type 1:
        // not critical, RFC 8926 §3.5).
        ovs.ofctl(&[
            "add-tlv-map",
            "br-int",
            "{class=0x0102,type=0x01,len=4}->tun_metadata0",
        ]);
        flows.push(
            "priority=10,in_port=1,actions=set_field:0xabcd1234->tun_metadata0,output:2".into(),
        );
    } else {
        flows.push("priority=10,in_port=1,actions=output:2".into());
    }
    for f in &flows {
        ovs.ofctl(&["add-flow", "br-int", f]);
    }
    // OVS's tunnel route comes from the kernel's table in its namespace.
    until("OVS route to 192.168.78.0/24", 20, || {
        ovs.appctl(&["ovs/route/show"]).contains("192.168.78.0/24")
    });

    eprintln!("OVS set up in {:?}", t_start.elapsed());
    let vs = Vswitch::start(
        tag,
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
    let dump = ovs.ofctl(&["dump-flows", "br-int", "in_port=2"]);
    let n: u64 = dump
        .split("n_packets=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(n >= 7, "OVS's tun_id=5 rule: {dump}");

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
    for cap in &caps {
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
