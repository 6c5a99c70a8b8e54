//! Harness of the tests that put real kernel endpoints behind the switch
//! (`tests/tunnel.rs`, `tests/tunnel_ovs.rs`, `tests/ct_netns.rs`,
//! `tests/switch_dpdk.rs`): shell helpers, network namespaces on veth pairs
//! (removed on drop), and a `vswitch run` with a control socket
//! ([`start`], [`Start`]) whose ports are the host ends (`net_af_packet`)
//! or any other devargs.
//!
//! Each test file uses a part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `sh -c`.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// Runs `cmd` with `sh -c` and fails the test if it fails; its stdout,
/// trimmed.
pub fn must(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// [`command`]: a command killed with the test (PR_SET_PDEATHSIG), so no
/// busy-polling daemon it starts spins on after a crash; stdin and stdout
/// are null. [`stop`]: SIGTERM, then SIGKILL after a grace period.
pub use ovs_sandbox::{command, stop};

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
    /// A namespace `ns` with its loopback up.
    pub fn add(&mut self, ns: &str) {
        must(&format!("ip netns add {ns}"));
        self.names.push(ns.into());
        must(&format!("ip -n {ns} link set lo up"));
    }

    /// A veth pair: the host's `link` (up) and `peer` in namespace `ns`.
    pub fn veth(&mut self, link: &str, peer: &str, ns: &str) {
        must(&format!(
            "ip link add {link} type veth peer name {peer} netns {ns}"
        ));
        self.links.push(link.into());
        must(&format!("ip link set {link} up"));
    }

    /// A namespace `ns` whose `eth0` (MAC `mac`, address `cidr`, transmit
    /// checksums in software: a packet socket sees frames before offloaded
    /// checksums are filled in) is a veth pair with the host's `link`.
    pub fn host(&mut self, ns: &str, link: &str, mac: &str, cidr: &str) {
        self.add(ns);
        self.veth(link, "eth0", ns);
        must(&format!("ip -n {ns} link set eth0 address {mac}"));
        must(&format!("ip -n {ns} addr add {cidr} dev eth0"));
        must(&format!("ip -n {ns} link set eth0 up"));
        must(&format!("ip netns exec {ns} ethtool -K eth0 tx off"));
    }
}

/// `$TMPDIR/name`, created empty (whatever a killed earlier run left there
/// is removed first).
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A [`fresh_dir`] removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `$TMPDIR/name`, empty.
    pub fn new(name: &str) -> TempDir {
        TempDir(fresh_dir(name))
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `vswitch` client command (`flows add ...`, `ports show`) against the
/// control socket `sock`: (success, stdout, stderr).
pub fn ctl(sock: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .arg("--socket")
        .arg(sock)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A running switch with a control socket, stopped (and its directory
/// removed) on drop.
pub struct Running {
    /// The `vswitch run` process.
    pub child: Child,
    /// Its control socket.
    pub sock: PathBuf,
}

impl Running {
    /// A client command against the control socket: (success, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (bool, String, String) {
        ctl(&self.sock, args)
    }

    /// Adds `rules` (one per line; blank lines skipped), one `vswitch flows
    /// add` each, failing the test on the first one refused.
    pub fn add_flows(&self, rules: &str) {
        for rule in rules.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.must(&["flows", "add", rule]);
        }
    }

    /// [`Running::ctl`] that must succeed; its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.ctl(args);
        assert!(ok, "vswitch {args:?}: {err}");
        out
    }

    /// `ports show --json`.
    pub fn ports(&self) -> serde_json::Value {
        serde_json::from_str(&self.must(&["ports", "show", "--json"])).unwrap()
    }

    /// Port `no` of `ports show --json`.
    pub fn port(&self, no: u64) -> serde_json::Value {
        let v = self.ports();
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == no)
            .cloned()
            .unwrap_or_else(|| panic!("no port {no} in {v}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(10));
        if let Some(d) = self.sock.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// How to start `vswitch run` with a control socket: [`Start::new`] gives
/// one lcore, `--control`, no port; [`Start::run`] starts it and waits until
/// the socket answers.
pub struct Start<'a> {
    /// Tells runs apart: the directory and the EAL file prefix.
    pub tag: &'a str,
    /// The EAL's `-l` list (`0`: the main lcore forwards; `0-1`: a worker),
    /// or, with `@`, its `--lcores` map (`0@0,1@1,2@1`: two workers on a
    /// two-core machine).
    pub lcores: &'a str,
    /// The flag naming the control socket (`--control`, or its alias
    /// `--socket`).
    pub control_flag: &'a str,
    /// Ports (devargs), in order.
    pub ports: Vec<String>,
    /// More flags for `vswitch run`.
    pub extra: Vec<String>,
}

impl<'a> Start<'a> {
    /// One lcore, `--control`, no port.
    pub fn new(tag: &'a str) -> Start<'a> {
        Start {
            tag,
            lcores: "0",
            control_flag: "--control",
            ports: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// With these ports (devargs).
    pub fn ports<S: ToString>(mut self, ports: &[S]) -> Self {
        self.ports = ports.iter().map(S::to_string).collect();
        self
    }

    /// With these extra flags.
    pub fn extra<S: ToString>(mut self, extra: &[S]) -> Self {
        self.extra = extra.iter().map(S::to_string).collect();
        self
    }

    /// Starts the switch; fails the test if it exits or its control socket
    /// does not answer within 30 s.
    pub fn run(self) -> Running {
        let tag = self.tag;
        let pid = std::process::id();
        let d = fresh_dir(&format!("vswitch-ns-{tag}-{pid}"));
        let sock = d.join("ctl.sock");
        let mut args = vec![
            "run".to_string(),
            "--eal".into(),
            format!(
                "{} {} --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-{tag}-{pid}",
                if self.lcores.contains('@') { "--lcores" } else { "-l" },
                self.lcores
            ),
            self.control_flag.into(),
            sock.display().to_string(),
            "--stats-interval".into(),
            "0".into(),
            "--flow-cache".into(),
            "4096".into(),
        ];
        for p in self.ports {
            args.push("--port".into());
            args.push(p);
        }
        args.extend(self.extra);
        let child = command(env!("CARGO_BIN_EXE_vswitch"))
            .args(&args)
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
}

/// `vswitch run` on one lcore with `ports` (devargs) and `extra` flags.
pub fn start_with(tag: &str, ports: &[String], extra: &[&str]) -> Running {
    Start::new(tag).ports(ports).extra(extra).run()
}

/// `vswitch run` on one lcore with `ports`.
pub fn start(tag: &str, ports: &[String]) -> Running {
    Start::new(tag).ports(ports).run()
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
