//! Harness of the tests that put real kernel endpoints behind the switch
//! (`tests/tunnel.rs`, `tests/ct_netns.rs`): shell helpers, network
//! namespaces on veth pairs (removed on drop), and a `vswitch run` with a
//! control socket whose ports are the host ends (`net_af_packet`).
//!
//! Each test file uses a part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `sh -c`.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// Runs `cmd` with `sh -c` and fails the test if it fails.
pub fn must(cmd: &str) {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Namespaces and links, removed on drop.
#[derive(Default)]
pub struct Netns {
    /// Namespaces.
    pub names: Vec<String>,
    /// Host-side links.
    pub links: Vec<String>,
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

impl Netns {
    /// A namespace `ns` whose `eth0` (MAC `mac`, address `cidr`, transmit
    /// checksums in software: a packet socket sees frames before offloaded
    /// checksums are filled in) is a veth pair with the host's `link`.
    pub fn host(&mut self, ns: &str, link: &str, mac: &str, cidr: &str) {
        must(&format!("ip netns add {ns}"));
        self.names.push(ns.into());
        must(&format!(
            "ip link add {link} type veth peer name eth0 netns {ns}"
        ));
        self.links.push(link.into());
        must(&format!("ip link set {link} up"));
        must(&format!("ip -n {ns} link set eth0 address {mac}"));
        must(&format!("ip -n {ns} addr add {cidr} dev eth0"));
        must(&format!("ip -n {ns} link set eth0 up"));
        must(&format!("ip -n {ns} link set lo up"));
        must(&format!("ip netns exec {ns} ethtool -K eth0 tx off"));
    }
}

/// A running switch with a control socket, stopped on drop.
pub struct Running {
    /// The `vswitch run` process.
    pub child: Child,
    /// Its control socket.
    pub sock: PathBuf,
}

impl Running {
    /// A client command against the control socket: (success, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (bool, String, String) {
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

    /// [`Running::ctl`] that must succeed; its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.ctl(args);
        assert!(ok, "vswitch {args:?}: {err}");
        out
    }

    /// Port `no` of `ports show --json`.
    pub fn port(&self, no: u64) -> serde_json::Value {
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

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// `vswitch run` on one lcore with `ports` (devargs) and `extra` flags.
pub fn start_with(tag: &str, ports: &[String], extra: &[&str]) -> Running {
    let d = std::env::temp_dir().join(format!("vswitch-ns-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let sock = d.join("ctl.sock");
    let mut args = vec![
        "run".to_string(),
        "--eal".into(),
        format!(
            "-l 0 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-{tag}-{}",
            std::process::id()
        ),
        "--control".into(),
        sock.display().to_string(),
        "--stats-interval".into(),
        "0".into(),
        "--flow-cache".into(),
        "4096".into(),
    ];
    for p in ports {
        args.push("--port".into());
        args.push(p.clone());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = Running { child, sock };
    let t = Instant::now();
    while !r.sock.exists() || !r.ctl(&["stats", "--json"]).0 {
        if let Ok(Some(st)) = r.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = r.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("vswitch {args:?} exited ({st}): {err}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "switch did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

/// `vswitch run` on one lcore with `ports`.
pub fn start(tag: &str, ports: &[String]) -> Running {
    start_with(tag, ports, &[])
}

/// Waits (at most `secs`) until `f` holds.
pub fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP exchange: a server in `srv_ns` on `ip:port` echoes what it gets
/// upper-cased; a client in `cli_ns` sends 20 KiB and checks the answer.
pub fn tcp_echo(srv_ns: &str, cli_ns: &str, ip: &str, port: u16) {
    let server = Command::new("ip")
        .args(["netns", "exec", srv_ns, "python3", "-c"])
        .arg(format!(
            "import socket\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{ip}',{port})); s.listen(1); s.settimeout(20)\n\
             c,_=s.accept(); c.settimeout(20); d=b''\n\
             while len(d) < 20480:\n    b=c.recv(65536)\n    if not b: break\n    d+=b\n\
             c.sendall(d.upper()); c.close()\n"
        ))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let o = Command::new("ip")
        .args(["netns", "exec", cli_ns, "python3", "-c"])
        .arg(format!(
            "import socket\n\
             d=(b'vxlan-payload-' * 2000)[:20480]\n\
             c=socket.create_connection(('{ip}',{port}), timeout=20); c.sendall(d)\n\
             r=b''\n\
             while len(r) < len(d):\n    b=c.recv(65536)\n    if not b: break\n    r+=b\n\
             assert r == d.upper(), (len(r), r[:40])\n\
             print('ok')\n"
        ))
        .output()
        .unwrap();
    let mut server = server;
    let _ = server.wait();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ok"),
        "TCP {cli_ns} -> {srv_ns} {ip}:{port}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
