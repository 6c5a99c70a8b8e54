//! Test harness: a private tgtd (Debian package `tgt`) on loopback with its own control
//! port, iSCSI port and file-backed LUN, torn down by Drop even when a test fails.

#![allow(dead_code)]

use iscsi_initiator::chap::Chap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tgt_sandbox::{Daemon, Launch, Tgtadm};

pub const INITIATOR: &str = "iqn.2026-01.dev.vswitch:test-initiator";

fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "`{tool}` not found: install the Debian package `{package}` (apt-get install {package})"
    );
}

/// tgtd's management channel: one whose socket is absent, each candidate
/// from the pid and a per-process counter, so parallel tests never try the
/// same one.
fn control_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Sockets left by a killed tgtd stay behind: skip them, over the whole range.
    for _ in 0..20_000 {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + ((std::process::id() * 10 + k) % 20_000) as u16;
        if tgt_sandbox::control_port_free(port) {
            return port;
        }
    }
    panic!("no free tgtd control port in 10000..30000 (/var/run/tgtd is full of sockets)");
}

/// A running tgtd with one target.
pub struct Tgtd {
    daemon: Option<Daemon>,
    pub control_port: u16,
    pub port: u16,
    pub iqn: String,
    pub dir: PathBuf,
    pub backing: PathBuf,
    pub size: u64,
    chap: Option<Chap>,
    /// Run tgtd in this network namespace, listening on `addr`.
    netns: Option<(String, String)>,
    /// Listen on this address of the root namespace (default 127.0.0.1).
    listen: Option<String>,
}

impl Tgtd {
    /// tgtd with a `size`-byte file-backed LUN 1.
    pub fn start(name: &str, size: u64) -> Tgtd {
        Tgtd::start_with(name, size, None)
    }

    pub fn start_with(name: &str, size: u64, chap: Option<Chap>) -> Tgtd {
        Tgtd::launch_new(name, Some(size), |t| t.chap = chap)
    }

    /// A second tgtd serving `other`'s target (same IQN, same backing file,
    /// same CHAP accounts) on `addr` (another loopback address such as
    /// 127.0.0.2): a second portal of the same LU.
    pub fn start_sibling(name: &str, other: &Tgtd, addr: &str) -> Tgtd {
        Tgtd::launch_new(name, None, |t| {
            t.iqn = other.iqn.clone();
            t.backing = other.backing.clone();
            t.size = other.size;
            t.chap = other.chap.clone();
            t.listen = Some(addr.to_owned());
        })
    }

    /// tgtd inside network namespace `ns`, listening on `addr` (an address of the
    /// namespace's side of a veth pair the test created).
    pub fn start_in_netns(name: &str, size: u64, ns: &str, addr: &str) -> Tgtd {
        need("ip", "iproute2");
        Tgtd::launch_new(name, Some(size), |t| {
            t.netns = Some((ns.to_owned(), addr.to_owned()))
        })
    }

    /// A tgtd named `name` (its own directory, IQN
    /// `iqn.2026-01.dev.vswitch:NAME`, with a fresh `size`-byte backing file
    /// when given), adjusted by `with`, then started and configured.
    fn launch_new(name: &str, size: Option<u64>, with: impl FnOnce(&mut Tgtd)) -> Tgtd {
        need("tgtd", "tgt");
        need("tgtadm", "tgt");
        let dir = std::env::temp_dir().join(format!("vswitch-iscsi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let backing = dir.join("lun1.img");
        if let Some(size) = size {
            std::fs::File::create(&backing)
                .unwrap()
                .set_len(size)
                .unwrap();
        }
        let mut t = Tgtd {
            daemon: None,
            control_port: 0,
            port: 0,
            iqn: format!("iqn.2026-01.dev.vswitch:{name}"),
            dir,
            backing,
            size: size.unwrap_or(0),
            chap: None,
            netns: None,
            listen: None,
        };
        with(&mut t);
        t.launch();
        t
    }

    /// The pid of the running tgtd (for a benchmark's clean-up record).
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Daemon::pid)
    }

    pub fn portal(&self) -> String {
        let addr = self
            .netns
            .as_ref()
            .map(|(_, a)| a.as_str())
            .or(self.listen.as_deref())
            .unwrap_or("127.0.0.1");
        format!("{addr}:{}", self.port)
    }

    fn launch(&mut self) {
        let mut last = String::new();
        for _attempt in 0..5 {
            if self.port == 0 {
                self.port = tgt_sandbox::free_tcp_port().unwrap();
                self.control_port = control_port();
            }
            let launch = Launch {
                control: self.control_port,
                portal: self.portal(),
                netns: self.netns.as_ref().map(|(ns, _)| ns.clone()),
                log: Some(self.dir.join("tgtd.log")),
            };
            let mut daemon = Daemon::spawn(launch).unwrap_or_else(|e| panic!("{e}"));
            match daemon.wait_ready(Duration::from_secs(5), true) {
                Ok(()) => {
                    self.daemon = Some(daemon);
                    self.configure();
                    return;
                }
                // Port taken meanwhile: pick new ones (dropping `daemon`
                // killed it).
                Err(e) => last = e,
            }
            self.port = 0;
        }
        panic!("{last}");
    }

    /// `tgtadm` on this tgtd's channel, panicking with its stderr.
    pub fn tgtadm(&self, args: &[&str]) {
        self.adm().run(args).unwrap_or_else(|e| panic!("{e}"));
    }

    fn adm(&self) -> Tgtadm {
        Tgtadm::new(self.control_port)
    }

    fn configure(&self) {
        let adm = self.adm();
        adm.export_lun(&self.iqn, &self.backing)
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(Chap {
            user,
            secret,
            mutual,
        }) = &self.chap
        {
            adm.new_account(user, secret)
                .and_then(|()| adm.bind_account(user, false))
                .unwrap_or_else(|e| panic!("{e}"));
            if let Some((mu, ms)) = mutual {
                adm.new_account(mu, ms)
                    .and_then(|()| adm.bind_account(mu, true))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    /// Sets LUN 1 parameters (e.g. `thin_provisioning=1`).
    pub fn set_lun_params(&self, params: &str) {
        self.adm()
            .update_lun(1, params)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sets a target-wide iSCSI parameter (e.g. HeaderDigest CRC32C) before login.
    pub fn set_param(&self, name: &str, value: &str) {
        self.adm()
            .update_target(name, value)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Kills tgtd (SIGKILL; dropping the daemon removes its socket).
    fn kill(&mut self) {
        self.daemon = None;
    }

    /// Kills tgtd (SIGKILL) and starts it again on the same ports with the same LUN.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Stops tgtd with SIGSTOP: its portal goes silent (connections stay
    /// open, nothing answers), as a hung target or a cut link.
    pub fn freeze(&self) {
        if let Some(pid) = self.pid() {
            let ok = Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill -STOP tgtd");
        }
    }

    /// Redirects logins to target 1 to `addr:port` (RFC 7143 section
    /// 11.13.5; tgtd answers with Status-Class 1 and a TargetAddress),
    /// temporarily or permanently.
    pub fn redirect_to(&self, addr: &str, port: u16, permanent: bool) {
        self.set_param("RedirectAddress", addr);
        self.set_param("RedirectPort", &port.to_string());
        self.set_param(
            "RedirectReason",
            if permanent { "Permanent" } else { "Temporary" },
        );
    }

    /// Kills tgtd; `resume` starts it again.
    pub fn stop(&mut self) {
        self.kill();
    }

    pub fn resume(&mut self) {
        self.launch();
    }

    pub fn backing_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.backing).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut v = vec![0u8; len];
        f.read_exact(&mut v).unwrap();
        v
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// xorshift64*: reproducible random data and offsets without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Runs `ip ARGS` (iproute2), panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (Debian package `iproute2`)");
    assert!(
        o.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A network namespace joined to the root namespace by a veth pair, both created here
/// and deleted on drop. Root side `10.251.N.1/30`, namespace side `10.251.N.2/30`.
pub struct VethNetns {
    pub ns: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_addr: String,
    pub ns_addr: String,
}

impl VethNetns {
    pub fn create(tag: &str) -> VethNetns {
        need("ip", "iproute2");
        let id = std::process::id() % 250;
        let ns = format!("vswisc-{tag}-{}", std::process::id());
        let host_if = format!("vi{tag}{id}h");
        let ns_if = format!("vi{tag}{id}n");
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        let _ = Command::new("ip").args(["link", "del", &host_if]).status();
        let v = VethNetns {
            host_addr: format!("10.251.{id}.1"),
            ns_addr: format!("10.251.{id}.2"),
            ns,
            host_if,
            ns_if,
        };
        ip(&["netns", "add", &v.ns]);
        ip(&[
            "link", "add", &v.host_if, "type", "veth", "peer", "name", &v.ns_if,
        ]);
        ip(&["link", "set", &v.ns_if, "netns", &v.ns]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", v.host_addr),
            "dev",
            &v.host_if,
        ]);
        ip(&["link", "set", &v.host_if, "up"]);
        ip(&[
            "-n",
            &v.ns,
            "addr",
            "add",
            &format!("{}/30", v.ns_addr),
            "dev",
            &v.ns_if,
        ]);
        ip(&["-n", &v.ns, "link", "set", &v.ns_if, "up"]);
        ip(&["-n", &v.ns, "link", "set", "lo", "up"]);
        v
    }

    /// Impairs the link in both directions: `tc netem` with `netem_spec` when the kernel
    /// has sch_netem; otherwise (kernels built without CONFIG_NET_SCH_NETEM) random
    /// drop of `loss_percent` with nftables `numgen` in the namespace plus a `tbf` rate
    /// limit on both veth ends for queueing delay. Returns what was applied.
    pub fn impair(&self, netem_spec: &[&str], loss_percent: u32) -> String {
        need("tc", "iproute2");
        let tc = |ns: Option<&str>, args: &[&str]| {
            let mut c = match ns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, "tc"]);
                    c
                }
                None => Command::new("tc"),
            };
            c.args(args)
                .output()
                .expect("tc (Debian package `iproute2`)")
        };
        let ends = [
            (None, self.host_if.as_str()),
            (Some(self.ns.as_str()), self.ns_if.as_str()),
        ];
        let mut netem_ok = true;
        for (ns, dev) in ends {
            let mut args = vec!["qdisc", "replace", "dev", dev, "root", "netem"];
            args.extend_from_slice(netem_spec);
            let o = tc(ns, &args);
            if !o.status.success() {
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(err.contains("unknown"), "tc netem failed: {err}");
                netem_ok = false;
            }
        }
        if netem_ok {
            return format!("tc netem {}", netem_spec.join(" "));
        }
        need("nft", "nftables");
        let nft = |args: &[&str]| {
            let o = Command::new("ip")
                .args(["netns", "exec", &self.ns, "nft"])
                .args(args)
                .output()
                .expect("nft (Debian package `nftables`)");
            assert!(
                o.status.success(),
                "nft {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let pct = loss_percent.to_string();
        nft(&["add", "table", "inet", "impair"]);
        for hook in ["input", "output"] {
            nft(&[
                "add",
                "chain",
                "inet",
                "impair",
                hook,
                &format!("{{ type filter hook {hook} priority 0; }}"),
            ]);
            nft(&[
                "add", "rule", "inet", "impair", hook, "meta", "l4proto", "tcp", "numgen",
                "random", "mod", "100", "<", &pct, "counter", "drop",
            ]);
        }
        for (ns, dev) in ends {
            let o = tc(
                ns,
                &[
                    "qdisc", "replace", "dev", dev, "root", "tbf", "rate", "100mbit", "burst",
                    "16kb", "latency", "20ms",
                ],
            );
            assert!(
                o.status.success(),
                "tc tbf failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        format!("no sch_netem in this kernel: nftables random drop {loss_percent}% each way + tbf 100mbit queueing")
    }
}

impl VethNetns {
    /// Packets the impairment dropped so far (nftables counters, or netem's
    /// `dropped` statistics on both ends).
    pub fn dropped(&self) -> u64 {
        let out =
            |c: &mut Command| String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned();
        let nft = out(Command::new("ip").args([
            "netns", "exec", &self.ns, "nft", "list", "table", "inet", "impair",
        ]));
        let tc_host = out(Command::new("tc").args(["-s", "qdisc", "show", "dev", &self.host_if]));
        let tc_ns = out(Command::new("ip").args([
            "netns",
            "exec",
            &self.ns,
            "tc",
            "-s",
            "qdisc",
            "show",
            "dev",
            &self.ns_if,
        ]));
        let sum_after = |text: &str, key: &str| -> u64 {
            text.split(key)
                .skip(1)
                .filter_map(|r| {
                    r.split(|c: char| !c.is_ascii_digit())
                        .find(|x| !x.is_empty())
                })
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        };
        if nft.contains("table inet impair") {
            sum_after(&nft, "counter packets ")
        } else {
            sum_after(&tc_host, "dropped ") + sum_after(&tc_ns, "dropped ")
        }
    }
}

impl Drop for VethNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}
