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
//! [`netns`] (shell helpers, namespaces, child processes) and on the
//! workspace crate `ovs-sandbox` (run directory, daemons, `ovs-vsctl`
//! plumbing: the same code as the benchmarks' OVS-DPDK peer).
//!
//! Each test file uses a part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

// A test file may declare `mod netns;` beside this (one more copy).
#[allow(clippy::duplicate_mod)]
#[path = "../netns/mod.rs"]
pub mod netns;

pub mod ofctl;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use ovs_sandbox::{Net, Port, Sandbox, SCHEMA, VSWITCHD_DPDK};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

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

/// A [`Sandbox`] (run directory, ovsdb-server, the switch daemon; killed
/// and removed on drop) of one [`Kind`]; it derefs to the sandbox for
/// `dir`, `path`, `tool`, `vsctl`, `appctl`, `failure`, `wait_for_file`,
/// `start_ovsdb`, `kill_ovsdb`, ...
pub struct Rig {
    /// Which daemon.
    pub kind: Kind,
    sb: Sandbox,
    /// Bridges added with [`Rig::add_bridge`] (OVS: removed before the
    /// daemon stops).
    bridges: Vec<String>,
    /// OVS on its dummy datapath ([`Rig::dummy`]).
    dummy: bool,
}

/// The value of a harness result, or the test fails with its error (the
/// daemon's log tail included).
pub fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl std::ops::Deref for Rig {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sb
    }
}

impl std::ops::DerefMut for Rig {
    fn deref_mut(&mut self) -> &mut Sandbox {
        &mut self.sb
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // OVS: remove the ports first (rte_eth_dev_close), then SIGTERM
        // (the sandbox's drop); vswitch stops and closes every port on
        // SIGTERM.
        if self.kind == Kind::Ovs && self.sb.has_daemon() {
            for br in &self.bridges {
                let _ = self
                    .sb
                    .vsctl(&["--timeout=10", "--if-exists", "del-br", br]);
            }
        }
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
        let mut sb = ok(Sandbox::new(
            std::env::temp_dir().join(&prefix),
            &prefix,
            match kind {
                Kind::Ovs => "OVS-DPDK",
                Kind::Vswitch => "vswitch",
            },
        ));
        if kind == Kind::Vswitch {
            sb.daemon_log = "vswitch.log";
        }
        Rig {
            kind,
            sb,
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
        self.sb.label = "OVS".into();
        self
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Ovs => "OVS-DPDK",
            Kind::Vswitch => "vswitch",
        }
    }

    pub fn log_name(&self) -> &'static str {
        self.sb.daemon_log
    }

    pub fn ofctl(&self, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["-O", "OpenFlow13"];
        v.extend_from_slice(args);
        self.tool("ovs-ofctl", &v)
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

    /// The switch daemon on the rig's database, in network namespace
    /// `net`: OVS's `ovs-vswitchd-dpdk` (DPDK on lcore 0, its PMD on core
    /// 1, 256 MiB, the `other_config` settings `ovs_config` added) or
    /// `vswitch run --ovsdb` (lcores 0-1, control socket `ctl.sock`).
    pub fn start_daemon(&mut self, net: Net, ovs_config: &[&str]) -> Result<(), String> {
        match self.kind {
            Kind::Ovs if self.dummy => {
                self.sb
                    .start_vswitchd(net, OsStr::new("ovs-vswitchd"), true)
            }
            Kind::Ovs => {
                self.sb.dpdk_init(0x1, 0x2, 256, ovs_config)?;
                self.sb
                    .start_vswitchd(net, OsStr::new(VSWITCHD_DPDK), false)
            }
            Kind::Vswitch => {
                let log = File::create(self.dir.join("vswitch.log")).unwrap();
                let mut d = self
                    .sb
                    .daemon_command(net, OsStr::new(env!("CARGO_BIN_EXE_vswitch")));
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
                self.sb.spawn_daemon(d, "ctl.sock")
            }
        }
    }

    /// Adds bridge `name` (datapath_type=netdev and `settings`, e.g.
    /// `fail_mode=secure`); OVS's bridges are removed before its daemon
    /// stops.
    pub fn add_bridge(&mut self, name: &str, settings: &[&str]) -> Result<(), String> {
        self.bridges.push(name.into());
        self.sb.add_bridge(name, settings)
    }

    /// OVS: DPDK initialised (`dpdk_initialized`); vswitch: nothing to check.
    pub fn check_dpdk(&self) -> Result<(), String> {
        if self.kind == Kind::Ovs && !self.dummy {
            self.sb.check_dpdk()?;
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
        self.sb
            .add_port(br, &Port::dpdk(name, ofport, devargs).with(extra))
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
                // OVS restarts the port on the real file once it is on
                // the bridge ([`Sandbox::add_replay_port`]).
                self.sb
                    .add_replay_port("br0", "p1", 1, input, Some(&self.sink(1)))?;
                let show = self.ofctl(&["show", "br0"])?;
                if !show.contains(" 1(p1)") {
                    return Err(self.failure(&format!("p1 not in ovs-ofctl show:\n{show}")));
                }
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
        self.settle_flow_stats()?;
        Ok((rx, tx))
    }

    /// Makes the rules' counters final. OVS credits a packet that hit a
    /// datapath flow to its rules only when a revalidator next dumps that
    /// flow (every 500 ms, later under load): `revalidator/wait` returns
    /// once a dump that started after the call has finished, so two of
    /// them cover every packet already forwarded. (CI once dumped the
    /// rules before that: one frame short on the three rules it hit.)
    /// vswitch's counters are the datapath's own, exact when read.
    pub fn settle_flow_stats(&self) -> Result<(), String> {
        if self.kind == Kind::Ovs {
            for _ in 0..2 {
                self.appctl(&["revalidator/wait"])?;
            }
        }
        Ok(())
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

/// A controller on a bridge's management socket `sock`: HELLO (OpenFlow
/// 1.3), `msgs`, BARRIER; the messages the switch answered with up to the
/// barrier reply (`tests/ovs_set_tunnel.rs`, `tests/ovs_ovn_fields.rs`).
pub fn controller_sends(
    sock: &std::path::Path,
    msgs: Vec<openflow::Message>,
) -> Vec<openflow::Message> {
    use openflow::{framing::Framer, hello::Hello, Message};
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let all = std::iter::once(Message::Hello(Hello::ours()))
        .chain(msgs)
        .chain([Message::BarrierRequest]);
    for (xid, m) in all.enumerate() {
        s.write_all(&m.to_vec(xid as u32 + 1).unwrap()).unwrap();
    }
    let (mut framer, mut got, mut buf) = (Framer::new(), Vec::new(), [0u8; 4096]);
    loop {
        while let Some(raw) = framer.next_message().unwrap() {
            let (_, m) = Message::parse(&raw).unwrap_or_else(|e| panic!("{e}: {raw:02x?}"));
            if matches!(m, Message::BarrierReply) {
                return got;
            }
            got.push(m);
        }
        let n = s.read(&mut buf).expect("the switch answered");
        assert!(n > 0, "the switch closed the connection: {got:?}");
        framer.push(&buf[..n]);
    }
}
