//! The harness of the frame-by-frame differentials against OVS-DPDK
//! (`tests/ovs_differential.rs`, `tests/ovs_ct_differential.rs`): frame
//! builders with a marker naming each input frame, pcap files, and [`Rig`],
//! one switch under test driven as an operator drives `ovs-vswitchd`
//! (ovsdb-server + `ovs-vsctl`, `ovs-ofctl -O OpenFlow13`), either OVS's
//! `ovs-vswitchd-dpdk` or `vswitch run --ovsdb`, each in its own network
//! namespace and run directory. `tests/tunnel_ovs.rs`, `tests/ovs.rs` and
//! `tests/ovs_set_tunnel.rs` start their daemons with it too, step by step
//! ([`Rig::start_ovsdb`], [`Rig::start_daemon`], [`Rig::add_bridge`]);
//! `tests/switch_dpdk.rs` takes its checksum and pcap files. It builds on
//! [`netns`] (shell helpers, namespaces, child processes).
//!
//! Each test file uses a part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

// A test file may declare `mod netns;` beside this (one more copy).
#[allow(clippy::duplicate_mod)]
#[path = "../netns/mod.rs"]
pub mod netns;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use netns::stop;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

/// The OVSDB schema of `openvswitch-common`.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// Debian's DPDK build of `ovs-vswitchd`.
pub const VSWITCHD_DPDK: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

// ---------------------------------------------------------------------------
// Frames.
// ---------------------------------------------------------------------------

/// The marker at the start of every frame's L4 data: `#dif` and the
/// frame's index (u16, patched in once the order is fixed), so an output
/// frame names the input frame it came from.
pub const MARK: &[u8; 4] = b"#dif";

pub fn mac(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, last]
}

pub const BCAST: [u8; 6] = [0xff; 6];

pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet header, VLAN tags `(tpid, tci)` outermost first, ethertype.
pub fn eth(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    body: &[u8],
) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// L4 data: the marker, then `n` filler bytes.
pub fn data(n: usize) -> Vec<u8> {
    let mut d = MARK.to_vec();
    // The index and its complement: their one's-complement sum is the
    // same for every index, so patching them keeps L4 checksums valid.
    d.extend_from_slice(&[0, 0, 0xff, 0xff]);
    d.extend((0..n).map(|i| (i * 7 + 3) as u8));
    d
}

pub fn tcp(sport: u16, dport: u16, n: usize) -> Vec<u8> {
    tcp_flags(sport, dport, 0x18, n) // PSH|ACK
}

pub fn tcp_flags(sport: u16, dport: u16, flags: u8, n: usize) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0..2].copy_from_slice(&sport.to_be_bytes());
    p[2..4].copy_from_slice(&dport.to_be_bytes());
    p[4..8].copy_from_slice(&0x1000_0001u32.to_be_bytes());
    p[12] = 0x50;
    p[13] = flags;
    p[14..16].copy_from_slice(&8192u16.to_be_bytes());
    p.extend(data(n));
    p
}

pub fn udp(sport: u16, dport: u16, n: usize) -> Vec<u8> {
    let mut p = vec![0u8; 8];
    p[0..2].copy_from_slice(&sport.to_be_bytes());
    p[2..4].copy_from_slice(&dport.to_be_bytes());
    let d = data(n);
    p[4..6].copy_from_slice(&((8 + d.len()) as u16).to_be_bytes());
    p.extend(d);
    p
}

pub fn icmp(ty: u8, code: u8, n: usize) -> Vec<u8> {
    let mut p = vec![ty, code, 0, 0, 0x12, 0x34, 0, 1];
    p.extend(data(n));
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// An IPv4 packet: header with IHL 5 (+ `opts` words of NOPs), the
/// fragment field `frag` (flags|offset), checksum computed.
#[allow(clippy::too_many_arguments)]
pub fn ipv4_full(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    tos: u8,
    frag: u16,
    opts: usize,
    l4: &[u8],
) -> Vec<u8> {
    let hl = 20 + 4 * opts;
    let mut ip = vec![0u8; hl];
    ip[0] = 0x40 | (hl / 4) as u8;
    ip[1] = tos;
    ip[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    for b in &mut ip[20..] {
        *b = 1; // NOP options
    }
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    ip
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, tos: u8, l4: &[u8]) -> Vec<u8> {
    ipv4_full(src, dst, proto, ttl, tos, 0x4000, 0, l4)
}

/// Sets the TCP/UDP checksum of `l4` (protocol `proto`) for a pseudo
/// header made of `addrs` (source and destination addresses).
pub fn l4_csum(addrs: &[u8], proto: u8, mut l4: Vec<u8>) -> Vec<u8> {
    let at = match proto {
        6 => 16,
        17 => 6,
        58 => 2, // ICMPv6 (RFC 4443 §2.3: the IPv6 pseudo header too)
        _ => return l4,
    };
    l4[at] = 0;
    l4[at + 1] = 0;
    let mut ph = addrs.to_vec();
    if addrs.len() == 8 {
        ph.extend_from_slice(&[0, proto]);
        ph.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    } else {
        ph.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, proto]);
    }
    ph.extend_from_slice(&l4);
    let c = checksum(&ph);
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    l4
}

pub fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[1] = 0x00;
    a[15] = last;
    a
}

pub fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    next: u8,
    hlim: u8,
    tclass: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60 | (tclass >> 4);
    ip[1] = (tclass << 4) | 0x0a;
    ip[2] = 0xbc;
    ip[3] = 0xde;
    ip[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    ip[6] = next;
    ip[7] = hlim;
    ip[8..24].copy_from_slice(&src);
    ip[24..40].copy_from_slice(&dst);
    ip.extend_from_slice(payload);
    ip
}

pub fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa);
    a.extend(data(0)); // in the padding
    a.resize(46, 0);
    a
}

/// A tiny deterministic generator (fixed-seed LCG).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.next() as usize % v.len()]
    }
}

pub const Q: u16 = 0x8100;
pub const AD: u16 = 0x88a8;

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The input frame an output frame came from (by its marker).
pub fn origin(f: &[u8]) -> Option<u16> {
    let p = find(f, MARK)?;
    Some(u16::from_be_bytes([*f.get(p + 4)?, *f.get(p + 5)?]))
}

/// Writes named `frames` to the pcap file `path` ([`write_frames`]).
pub fn write_pcap(path: &Path, frames: &[(String, Vec<u8>)]) {
    write_frames(path, frames.iter().map(|(_, f)| f.as_slice()));
}

/// Writes `frames` to the pcap file `path`, 1 µs apart.
pub fn write_frames<'a>(path: &Path, frames: impl IntoIterator<Item = &'a [u8]>) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    for (i, f) in frames.into_iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(i as u64),
            f.len() as u32,
            f,
        ))
        .unwrap();
    }
}

pub fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = PcapReader::new(file).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(
            p.map_err(|e| format!("{}: {e}", path.display()))?
                .data
                .into_owned(),
        );
    }
    Ok(out)
}

pub fn hex(f: &[u8]) -> String {
    f.chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n      ")
}

// ---------------------------------------------------------------------------
// One switch under test: ovsdb-server + a vswitchd (OVS's or ours).
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    Ovs,
    Vswitch,
}

/// A run directory with ovsdb-server and the switch daemon, both in the
/// background; everything killed and removed on drop.
pub struct Rig {
    /// Which daemon.
    pub kind: Kind,
    /// The run directory (logs, sockets, captures).
    pub dir: PathBuf,
    prefix: String,
    ovsdb: Option<Child>,
    daemon: Option<Child>,
    /// Bridges added with [`Rig::add_bridge`] (OVS: removed before the
    /// daemon stops).
    bridges: Vec<String>,
    /// OVS on its dummy datapath ([`Rig::dummy`]).
    dummy: bool,
}

/// The network namespace a rig's daemon runs in.
#[derive(Clone, Copy, Debug)]
pub enum Net<'a> {
    /// A fresh one of its own (`unshare --net`).
    Fresh,
    /// The test's own.
    Host,
    /// A named one (`ip netns exec NAME`).
    Named(&'a str),
}

/// The value of a harness result, or the test fails with its error (the
/// daemon's log tail included).
pub fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

pub fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Rig {
    fn drop(&mut self) {
        // OVS: remove the ports first (rte_eth_dev_close), then SIGTERM;
        // vswitch stops and closes every port on SIGTERM.
        if self.kind == Kind::Ovs && self.daemon.is_some() {
            for br in &self.bridges {
                let _ = self.vsctl(&["--timeout=10", "--if-exists", "del-br", br]);
            }
        }
        if let Some(c) = self.daemon.as_mut() {
            stop(c, Duration::from_secs(10));
        }
        if let Some(c) = self.ovsdb.as_mut() {
            stop(c, Duration::from_secs(5));
        }
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

impl Rig {
    /// A fresh run directory for `kind`; `tag` tells the tests apart
    /// (directory and EAL file prefix).
    pub fn new(kind: Kind, tag: &str) -> Rig {
        let side = match kind {
            Kind::Ovs => "ovs",
            Kind::Vswitch => "vsw",
        };
        let prefix = format!("vsw-{tag}-{side}-{}", std::process::id());
        let dir = netns::fresh_dir(&prefix);
        Rig {
            kind,
            dir,
            prefix,
            ovsdb: None,
            daemon: None,
            bridges: Vec::new(),
            dummy: false,
        }
    }

    /// OVS only: `ovs-vswitchd --enable-dummy=override --disable-system`
    /// instead of OVS-DPDK, the same ofproto (flow tables, OpenFlow) on a
    /// datapath that touches neither DPDK nor the host's network: the
    /// reference for what OVS accepts and prints.
    pub fn dummy(mut self) -> Rig {
        self.dummy = true;
        self
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Ovs => "OVS-DPDK",
            Kind::Vswitch => "vswitch",
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A command with the rig's private OVS directories in its env, killed
    /// with the test (PR_SET_PDEATHSIG) so no PMD spins on after a crash.
    pub fn command(&self, prog: &str) -> Command {
        let mut c = netns::command(prog);
        for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(v, &self.dir);
        }
        c.stderr(Stdio::null());
        c
    }

    pub fn log_name(&self) -> &'static str {
        match self.kind {
            Kind::Ovs => "ovs-vswitchd.log",
            Kind::Vswitch => "vswitch.log",
        }
    }

    pub fn failure(&self, what: &str) -> String {
        format!(
            "{}: {what}\n--- tail of {}:\n{}",
            self.name(),
            self.log_name(),
            tail(&self.dir.join(self.log_name()), 40)
        )
    }

    /// Runs `prog` with the rig's env; what it did, failed or not.
    pub fn tool_output(&self, prog: &str, args: &[&str]) -> Result<Output, String> {
        self.command(prog)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("run {prog} (package openvswitch-common/-switch): {e}"))
    }

    /// Runs `prog` with the rig's env; its stdout, or an error with its
    /// stderr and the daemon's log tail.
    pub fn tool(&self, prog: &str, args: &[&str]) -> Result<String, String> {
        let out = self.tool_output(prog, args)?;
        if !out.status.success() {
            return Err(self.failure(&format!(
                "{prog} {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn vsctl(&self, args: &[&str]) -> Result<String, String> {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut v = vec![db.as_str(), "--timeout=60"];
        v.extend_from_slice(args);
        self.tool("ovs-vsctl", &v)
    }

    /// `ovs-vsctl` whose failure the caller judges.
    pub fn vsctl_output(&self, args: &[&str]) -> Result<Output, String> {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut v = vec![db.as_str(), "--timeout=60"];
        v.extend_from_slice(args);
        self.tool_output("ovs-vsctl", &v)
    }

    /// `ovs-appctl` to the switch daemon (OVS only).
    pub fn appctl(&self, args: &[&str]) -> Result<String, String> {
        let target = format!("--target={}", self.path("vswitchd.ctl"));
        let mut v = vec![target.as_str()];
        v.extend_from_slice(args);
        self.tool("ovs-appctl", &v)
    }

    pub fn ofctl(&self, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["-O", "OpenFlow13"];
        v.extend_from_slice(args);
        self.tool("ovs-ofctl", &v)
    }

    pub fn wait_for_file(&mut self, name: &str, secs: u64) -> Result<(), String> {
        let start = Instant::now();
        let p = self.dir.join(name);
        while !p.exists() {
            let mut exited = None;
            for c in [self.ovsdb.as_mut(), self.daemon.as_mut()]
                .into_iter()
                .flatten()
            {
                if let Ok(Some(st)) = c.try_wait() {
                    exited = Some(st);
                }
            }
            if let Some(st) = exited {
                return Err(self.failure(&format!("a daemon exited ({st}) before {name} appeared")));
            }
            if start.elapsed() > Duration::from_secs(secs) {
                return Err(self.failure(&format!("{name} did not appear within {secs} s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// ovsdb-server on a fresh database, then the switch daemon (in a
    /// network namespace of its own; OVS with `vlan-limit=2`, as vswitch),
    /// then the bridge `br0` (netdev, fail_mode=secure: no default NORMAL
    /// flow).
    pub fn start(&mut self) -> Result<(), String> {
        self.start_ovsdb()?;
        // OVS parses one VLAN tag by default (a QinQ frame's dl_type is then
        // the inner TPID); vswitch always parses two. Same setting on both
        // sides: see the report's divergence list.
        self.start_daemon(Net::Fresh, &["other_config:vlan-limit=2"])?;
        self.add_bridge("br0", &["fail_mode=secure"])?;
        self.check_dpdk()?;
        self.wait_for_file("br0.mgmt", 20)
    }

    /// A fresh database from OVS's schema, ovsdb-server on it, `init`.
    pub fn start_ovsdb(&mut self) -> Result<(), String> {
        self.tool("ovsdb-tool", &["create", &self.path("conf.db"), SCHEMA])?;
        self.spawn_ovsdb()?;
        self.vsctl(&["--no-wait", "init"]).map(|_| ())
    }

    /// ovsdb-server on the rig's database (again, after [`Rig::kill_ovsdb`]).
    pub fn spawn_ovsdb(&mut self) -> Result<(), String> {
        let mut db = self.command("ovsdb-server");
        db.args([
            &self.path("conf.db"),
            &format!("--remote=punix:{}", self.path("db.sock")),
            &format!("--unixctl={}", self.path("ovsdb-server.ctl")),
            &format!("--log-file={}", self.path("ovsdb-server.log")),
        ]);
        self.ovsdb = Some(db.spawn().map_err(|e| format!("spawn ovsdb-server: {e}"))?);
        self.wait_for_file("db.sock", 20)
    }

    /// Kills ovsdb-server (SIGKILL: a crash) and removes its socket.
    pub fn kill_ovsdb(&mut self) {
        if let Some(mut c) = self.ovsdb.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_file(self.dir.join("db.sock"));
    }

    /// The switch daemon on the rig's database, in network namespace
    /// `net`: OVS's `ovs-vswitchd-dpdk` (DPDK on lcore 0, its PMD on core
    /// 1, 256 MiB, the `other_config` settings `ovs_config` added) or
    /// `vswitch run --ovsdb` (lcores 0-1, control socket `ctl.sock`).
    pub fn start_daemon(&mut self, net: Net, ovs_config: &[&str]) -> Result<(), String> {
        let prog = match self.kind {
            Kind::Ovs if self.dummy => "ovs-vswitchd",
            Kind::Ovs => VSWITCHD_DPDK,
            Kind::Vswitch => env!("CARGO_BIN_EXE_vswitch"),
        };
        let mut d = match net {
            Net::Fresh => {
                let mut d = self.command("unshare");
                d.args(["--net", prog]);
                d
            }
            Net::Named(ns) => {
                let mut d = self.command("ip");
                d.args(["netns", "exec", ns, prog]);
                d
            }
            Net::Host => self.command(prog),
        };
        match self.kind {
            Kind::Ovs if self.dummy => {
                d.args([
                    &format!("unix:{}", self.path("db.sock")),
                    "--enable-dummy=override",
                    "--disable-system",
                    &format!("--unixctl={}", self.path("vswitchd.ctl")),
                    &format!("--pidfile={}", self.path("ovs-vswitchd.pid")),
                    &format!("--log-file={}", self.path("ovs-vswitchd.log")),
                ]);
                self.daemon = Some(d.spawn().map_err(|e| format!("spawn ovs-vswitchd: {e}"))?);
                self.wait_for_file("vswitchd.ctl", 30)
            }
            Kind::Ovs => {
                let extra = format!(
                    "other_config:dpdk-extra=--no-pci --no-telemetry --file-prefix={}",
                    self.prefix
                );
                let mut set = vec![
                    "--no-wait",
                    "set",
                    "Open_vSwitch",
                    ".",
                    "other_config:dpdk-init=true",
                    "other_config:dpdk-lcore-mask=0x1",
                    "other_config:pmd-cpu-mask=0x2",
                    "other_config:dpdk-socket-mem=256",
                    &extra,
                ];
                set.extend_from_slice(ovs_config);
                self.vsctl(&set)?;
                d.args([
                    &format!("unix:{}", self.path("db.sock")),
                    &format!("--unixctl={}", self.path("vswitchd.ctl")),
                    &format!("--pidfile={}", self.path("ovs-vswitchd.pid")),
                    &format!("--log-file={}", self.path("ovs-vswitchd.log")),
                ]);
                self.daemon = Some(
                    d.spawn()
                        .map_err(|e| format!("spawn {VSWITCHD_DPDK}: {e}"))?,
                );
                self.wait_for_file("vswitchd.ctl", 30)
            }
            Kind::Vswitch => {
                let log = File::create(self.dir.join("vswitch.log")).unwrap();
                d.args(["run", "--eal"])
                    .arg(format!(
                        "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix {}",
                        self.prefix
                    ))
                    .arg("--ovsdb")
                    .arg(format!("unix:{}", self.path("db.sock")))
                    .arg("--rundir")
                    .arg(&self.dir)
                    .arg("--control")
                    .arg(self.dir.join("ctl.sock"))
                    .args(["--stats-interval", "0", "--flow-cache", "4096"])
                    .stderr(log);
                self.daemon = Some(d.spawn().map_err(|e| format!("spawn vswitch: {e}"))?);
                self.wait_for_file("ctl.sock", 30)
            }
        }
    }

    /// Adds bridge `name` (datapath_type=netdev and `settings`, e.g.
    /// `fail_mode=secure`); OVS's bridges are removed before its daemon
    /// stops.
    pub fn add_bridge(&mut self, name: &str, settings: &[&str]) -> Result<(), String> {
        let mut args = vec![
            "--timeout=120",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ];
        args.extend_from_slice(settings);
        self.bridges.push(name.into());
        self.vsctl(&args).map(|_| ())
    }

    /// OVS: DPDK initialised (`dpdk_initialized`); vswitch: nothing to check.
    pub fn check_dpdk(&self) -> Result<(), String> {
        if self.kind == Kind::Ovs && !self.dummy {
            let init = self.vsctl(&["get", "Open_vSwitch", ".", "dpdk_initialized"])?;
            if init.trim() != "true" {
                return Err(self.failure("DPDK did not initialise (dpdk_initialized != true)"));
            }
        }
        Ok(())
    }

    /// Adds `p{ofport}` to `br0` ([`Rig::add_dpdk_port`]).
    pub fn add_port(&self, ofport: u32, devargs: &str, extra: &[&str]) -> Result<(), String> {
        self.add_dpdk_port("br0", &format!("p{ofport}"), ofport, devargs, extra)
    }

    /// Adds a `type=dpdk` interface `name` on `devargs` to bridge `br` as
    /// OpenFlow port `ofport` (and the Interface settings `extra`); an
    /// error if it did not get that number.
    pub fn add_dpdk_port(
        &self,
        br: &str,
        name: &str,
        ofport: u32,
        devargs: &str,
        extra: &[&str],
    ) -> Result<(), String> {
        let req = format!("ofport_request={ofport}");
        let dev = format!("options:dpdk-devargs={devargs}");
        let mut args = vec![
            "--timeout=120",
            "add-port",
            br,
            name,
            "--",
            "set",
            "Interface",
            name,
            "type=dpdk",
            &req,
            &dev,
        ];
        args.extend_from_slice(extra);
        self.vsctl(&args)?;
        let got = self.vsctl(&["get", "Interface", name, "ofport"])?;
        if got.trim() != ofport.to_string() {
            let err = self.vsctl(&["get", "Interface", name, "error"])?;
            return Err(self.failure(&format!(
                "port {name} ({devargs}) not opened: ofport {} error {}",
                got.trim(),
                err.trim()
            )));
        }
        Ok(())
    }

    /// OVS's own account of one frame's way through the pipeline.
    pub fn trace(&self, frame: &[u8]) -> String {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        self.appctl(&["ofproto/trace", "br0", "in_port=1", &hex])
            .unwrap_or_else(|e| e)
    }

    /// Adds port 1, `net_pcap1` replaying `input` (and capturing its own
    /// transmissions to [`Rig::sink`]`(1)`), last: its replay starts when
    /// the port starts, so no frame meets an empty table.
    pub fn add_source(&self, input: &Path) -> Result<(), String> {
        match self.kind {
            Kind::Ovs => {
                // OVS's PMD polls a new port before ofproto-dpif knows it: frames
                // read in that window fail their upcall and are dropped
                // (coverage datapath_drop_upcall_error; a race of OVS, not a
                // flow result, and the whole pcap is read within it). So the
                // port opens an empty pcap first; once it is on the bridge the
                // file is replaced and a queue-size change makes OVS restart
                // the port (rte_eth_dev_stop/start), which reopens the file
                // and replays it.
                let file = self.dir.join("in.pcap");
                write_pcap(&file, &[]);
                let src = format!(
                    "net_pcap1,rx_pcap={},tx_pcap={}",
                    file.display(),
                    self.sink(1).display()
                );
                self.add_port(1, &src, &[])?;
                let show = self.ofctl(&["show", "br0"])?;
                if !show.contains(" 1(p1)") {
                    return Err(self.failure(&format!("p1 not in ovs-ofctl show:\n{show}")));
                }
                // OVS may restart a new port once more right after adding it;
                // let that happen on the empty file.
                std::thread::sleep(Duration::from_millis(300));
                let tmp = self.dir.join("in.pcap.tmp");
                fs::copy(input, &tmp).unwrap();
                fs::rename(&tmp, &file).unwrap();
                self.vsctl(&["set", "Interface", "p1", "options:n_rxq_desc=1024"])?;
            }
            Kind::Vswitch => self.add_port(
                1,
                &format!(
                    "net_pcap1,rx_pcap={},tx_pcap={}",
                    input.display(),
                    self.sink(1).display()
                ),
                &[],
            )?,
        }
        Ok(())
    }

    /// Waits until port 1 received `n` frames and the `captured` ports'
    /// tx counters stayed still for 0.7 s (25 s at most); returns port 1's
    /// rx counter and the tx counters.
    pub fn wait_replayed(
        &self,
        n: u64,
        captured: &[u32],
    ) -> Result<(u64, BTreeMap<u32, u64>), String> {
        // Wait for every frame to be received and the sinks to go quiet.
        let start = Instant::now();
        let mut last = (u64::MAX, u64::MAX);
        let mut stable_since = Instant::now();
        let rx = loop {
            let rx = self.port_counter(1, "rx pkts=")?;
            let mut tx = 0;
            for &p in captured {
                tx += self.port_counter(p, "tx pkts=")?;
            }
            if (rx, tx) != last {
                last = (rx, tx);
                stable_since = Instant::now();
            }
            if rx >= n && stable_since.elapsed() > Duration::from_millis(700) {
                break rx;
            }
            if start.elapsed() > Duration::from_secs(25) {
                break rx; // compared anyway; the assertion names the shortfall
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tx = BTreeMap::new();
        for &p in captured {
            tx.insert(p, self.port_counter(p, "tx pkts=")?);
        }
        Ok((rx, tx))
    }

    /// The frames each port of `captured` (port → tx counter) sent, in
    /// capture order, checked against its tx counter.
    pub fn captures(
        &self,
        captured: &BTreeMap<u32, u64>,
    ) -> Result<BTreeMap<u32, Vec<Vec<u8>>>, String> {
        // DPDK's pcap PMD flushes its dumper after every tx burst, so the
        // captures are complete while the ports are still open (checked against
        // the tx counters); the switches stay up for ofproto/trace and are
        // stopped cleanly when the rig is dropped.
        let mut out = BTreeMap::new();
        for &p in captured.keys() {
            if captured[&p] == 0 {
                // libpcap's header is still in the dumper's buffer until
                // the first transmission flushes it.
                out.insert(p, Vec::new());
                continue;
            }
            let frames = read_pcap(&self.sink(p)).map_err(|e| self.failure(&e))?;
            if frames.len() as u64 != captured[&p] {
                return Err(self.failure(&format!(
                    "port {p}: tx counter {} but {} frames in {}",
                    captured[&p],
                    frames.len(),
                    self.sink(p).display()
                )));
            }
            out.insert(p, frames);
        }
        Ok(out)
    }

    /// A `vswitch` client command (`flows add ...`, `ct show`) against
    /// this rig's control socket (vswitch only).
    pub fn vswitch(&self, args: &[&str]) -> Result<String, String> {
        let mut v: Vec<&str> = args.to_vec();
        let sock = self.path("ctl.sock");
        v.extend_from_slice(&["--socket", &sock]);
        self.tool(env!("CARGO_BIN_EXE_vswitch"), &v)
    }

    pub fn sink(&self, port: u32) -> PathBuf {
        self.dir.join(format!("out{port}.pcap"))
    }

    pub fn port_counter(&self, port: u32, key: &str) -> Result<u64, String> {
        let out = self.ofctl(&["dump-ports", "br0", &port.to_string()])?;
        Ok(out
            .split(key)
            .nth(1)
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }
}

pub fn preflight() {
    assert!(
        Path::new(VSWITCHD_DPDK).exists(),
        "{VSWITCHD_DPDK} not found: install the Debian package openvswitch-switch-dpdk \
         (bash .ci/install-deps.sh test)"
    );
    assert!(
        Path::new(SCHEMA).exists(),
        "{SCHEMA} not found: install the Debian package openvswitch-common"
    );
    for tool in [
        "ovsdb-server",
        "ovsdb-tool",
        "ovs-vsctl",
        "ovs-ofctl",
        "unshare",
    ] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is missing: apt-get install openvswitch-switch openvswitch-common util-linux"
        );
    }
    let free = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("HugePages_Free:")
                .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    assert!(
        free >= 128,
        "OVS-DPDK needs 2 MiB hugepages ({free} free, 128 needed): run `bash .ci/setup-host.sh` first"
    );
}

/// Flows with their packet and byte counters, without the parts that
/// differ by nature (durations, ages).
pub fn counters(dump: &str) -> String {
    dump.lines()
        .filter(|l| l.contains("actions="))
        .map(|l| {
            let field = |k: &str| {
                l.split(k)
                    .nth(1)
                    .and_then(|v| v.split(',').next())
                    .unwrap_or("?")
                    .to_string()
            };
            let pk = format!("{}/{}", field("n_packets="), field("n_bytes="));
            format!("{pk:>10} {}", flow_text(l))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line of `dump-flows` without its cookie, counters, duration and
/// ages: what was installed (match, priority, table, actions).
pub fn flow_text(line: &str) -> String {
    line.split(", ")
        .filter(|f| {
            ![
                "cookie=",
                "duration=",
                "n_packets=",
                "n_bytes=",
                "idle_age=",
                "hard_age=",
            ]
            .iter()
            .any(|k| f.trim_start().starts_with(k))
        })
        .collect::<Vec<_>>()
        .join(", ")
        .trim()
        .to_owned()
}
