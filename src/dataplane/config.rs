//! What `vswitch run` runs: EAL arguments, ports, timing. Built from the
//! command line or from a TOML file, and validated before DPDK is touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A validated run configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// EAL arguments, already split into words.
    pub eal: Vec<String>,
    /// Port devargs, in port order (the first is port 0).
    pub ports: Vec<String>,
    /// Stop after this long (`None`: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Period of the stats lines (`None`: only the final summary).
    pub stats_interval: Option<Duration>,
    /// Print stats as JSON lines instead of a table.
    pub json: bool,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Rules to install at start (`ovs-ofctl add-flow` syntax).
    pub flows: Vec<String>,
    /// Patch-panel mode: pairwise cross-connect (0↔1, 2↔3, ...) with no
    /// flow table.
    pub xconnect: bool,
    /// Control socket path (`None`: no control socket).
    pub control: Option<PathBuf>,
    /// Exact-match flow cache entries per worker.
    pub flow_cache: usize,
    /// Connections the tracker behind the `ct` action holds (`--ct-max-conns`).
    pub ct_max_conns: u32,
    /// Stop once traffic has flowed and then no port received anything for
    /// this long (replaying a finite capture).
    pub idle_exit: Option<Duration>,
    /// vhost-user-blk devices served by the same process (and core).
    pub blk: Vec<BlkSpec>,
    /// The host TCP/IP stack on an internal port of the switch (carries the
    /// iscsi:// device's session through the flow table).
    pub host: Option<HostStack>,
    /// Publish the devices' counters (JSON lines, `vswitch blk stats`) here.
    pub blk_stats_file: Option<PathBuf>,
    /// With storage devices: how the core that serves the switch and them
    /// waits when both are idle.
    pub poll: CorePoll,
    /// The OVSDB server whose `Open_vSwitch` database configures bridges
    /// and ports (`unix:PATH` or `tcp:IP:PORT`), as `ovs-vswitchd` does.
    pub ovsdb: Option<String>,
    /// Run directory for the bridges' OpenFlow management sockets
    /// (`BRIDGE.mgmt`) and `dpdkvhostuser` sockets (OVS: `/var/run/openvswitch`).
    pub rundir: PathBuf,
    /// Where the Prometheus endpoint listens (`--metrics`), checked.
    pub metrics: Option<std::net::SocketAddr>,
    /// Storage at run time: SPDK's JSON-RPC socket, the directory of the
    /// sockets of controllers it makes, and a saved configuration to load.
    pub storage_rpc: StorageRpc,
}

/// `--rpc`, `--vhost-dir`, `--config-json`: storage devices made at run time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageRpc {
    /// SPDK's JSON-RPC methods on this unix socket.
    pub socket: Option<PathBuf>,
    /// Where controllers made by name get their socket (SPDK's `-S`).
    pub vhost_dir: PathBuf,
    /// Devices to create at start from a saved configuration.
    pub config_json: Option<PathBuf>,
}

impl StorageRpc {
    /// Whether storage devices may exist (so the storage path must run).
    pub fn enabled(&self) -> bool {
        self.socket.is_some() || self.config_json.is_some()
    }
}

/// The most connections `--ct-max-conns` may ask for (2^26; the table
/// reserves its memory at start).
pub const MAX_CT_CONNS: u32 = 1 << 26;
/// Connections the tracker holds without `--ct-max-conns` (its memory is
/// reserved, and touched only as connections come).
pub const DEFAULT_CT_CONNS: u32 = 1 << 20;

/// OVS's run directory, the default of `--rundir`.
pub const DEFAULT_RUNDIR: &str = "/var/run/openvswitch";
/// The database socket `--ovsdb` connects to when given without a value.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

/// How the core that serves the switch and the storage devices waits when
/// both are idle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CorePoll {
    /// The default: `Wait` with storage devices on one forwarding lcore
    /// (the core then serves a guest's storage without burning itself when
    /// idle), else `Busy`.
    #[default]
    Auto,
    /// Always spin: the switch's normal mode.
    Busy,
    /// After 20000 idle rounds, sleep this long per round.
    Adaptive(Duration),
    /// `vfio::poller::PollMode::Wait`: spin this long after completions,
    /// then block on the guests' kicks and the rx queues' wake-up
    /// descriptors (at most 1 ms, the bound for the host stack's timers).
    /// Needs one forwarding worker and ports that can wake it
    /// (`net_af_packet`, the internal port); with any other port the core
    /// never blocks.
    Wait(Duration),
}

impl CorePoll {
    /// Parses `auto`, `busy`, `adaptive` or `wait` (the flag's and the
    /// file's spelling).
    pub fn parse(s: &str) -> Result<CorePoll, String> {
        match s {
            "auto" => Ok(CorePoll::Auto),
            "busy" => Ok(CorePoll::Busy),
            "adaptive" => Ok(CorePoll::Adaptive(Duration::from_micros(20))),
            "wait" => Ok(CorePoll::Wait(Duration::from_micros(50))),
            p => Err(format!("poll = {p:?}: \"busy\", \"adaptive\" or \"wait\"")),
        }
    }
}

/// One vhost-user-blk device of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct BlkSpec {
    /// vhost-user socket path (QEMU's vhost-user-blk-pci chardev).
    pub socket: PathBuf,
    /// Backend: `iscsi://HOST:PORT/IQN/LUN`, `file:PATH`, `mem:SIZE`, `null:SIZE`.
    pub backend: String,
    /// Block cache bytes in front of the backend (`None`: no cache).
    pub cache: Option<u64>,
    /// Cached writes complete once in the cache (else once in the backend).
    pub writeback: bool,
    /// File holding the cache's metadata table, for QEMU to map into the
    /// guest (`ivshmem-plain`; see `vswitch blk serve --cache-meta`).
    pub cache_meta: Option<PathBuf>,
    /// Request queues.
    pub queues: u16,
    /// Logical block size the guest sees (512 or 4096).
    pub block_size: u32,
    /// QoS limits (SPDK `bdev_set_qos_limit` names; all 0: none).
    pub qos: vfio::blk::QosLimits,
}

impl BlkSpec {
    /// Parses the flag form `SOCKET=BACKEND` (defaults for the rest).
    pub fn parse_flag(s: &str) -> Result<BlkSpec, String> {
        let (sock, backend) = s
            .split_once('=')
            .ok_or_else(|| format!("--blk {s:?}: expected SOCKET=BACKEND"))?;
        if sock.is_empty() || backend.is_empty() {
            return Err(format!("--blk {s:?}: expected SOCKET=BACKEND"));
        }
        Ok(BlkSpec {
            socket: PathBuf::from(sock),
            backend: backend.to_owned(),
            cache: None,
            writeback: false,
            cache_meta: None,
            queues: 1,
            block_size: 512,
            qos: vfio::blk::QosLimits::default(),
        })
    }
}

/// The host stack: its IPv4 address on the switch's internal port.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStack {
    /// Address.
    pub addr: std::net::Ipv4Addr,
    /// Prefix length of the on-link network.
    pub prefix: u8,
    /// MAC address (default: a locally administered one).
    pub mac: Option<[u8; 6]>,
    /// IP MTU of the host stack's frames (default 1500; up to 9000 for a
    /// jumbo-frame storage network: the switch's mbufs are sized for it).
    pub mtu: u16,
}

/// The largest `--host-mtu`.
pub const MAX_HOST_MTU: u16 = 9000;

impl HostStack {
    /// Parses `ADDR/PREFIX` and an optional `aa:bb:cc:dd:ee:ff`.
    pub fn parse(cidr: &str, mac: Option<&str>) -> Result<HostStack, String> {
        let bad = |why: &str| {
            format!("host address {cidr:?}: {why} (expected ADDR/PREFIX, like 10.0.0.1/24)")
        };
        let (a, p) = cidr.split_once('/').ok_or_else(|| bad("no /PREFIX"))?;
        let addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix = p
            .parse()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .ok_or_else(|| bad("prefix must be 1..32"))?;
        let mac = match mac {
            None => None,
            Some(m) => Some(parse_mac(m)?),
        };
        Ok(HostStack {
            addr,
            prefix,
            mac,
            mtu: 1500,
        })
    }

    /// Sets the MTU (`--host-mtu`, `[host] mtu`): 1280..=9000.
    pub fn with_mtu(mut self, mtu: Option<u16>) -> Result<HostStack, String> {
        if let Some(m) = mtu {
            if !(1280..=MAX_HOST_MTU).contains(&m) {
                return Err(format!(
                    "host MTU {m} must be between 1280 and {MAX_HOST_MTU}"
                ));
            }
            self.mtu = m;
        }
        Ok(self)
    }

    /// Bytes of mbuf data room a frame of this MTU needs (Ethernet header
    /// and a VLAN tag on top of the MTU).
    pub fn frame_room(&self) -> u16 {
        self.mtu + 18
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`; refuses multicast and all-zero addresses.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("MAC {s:?}: expected six hex bytes like 02:00:00:00:00:01");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(format!("MAC {s:?}: must be unicast and not zero"));
    }
    Ok(mac)
}

/// The TOML form: every field of the command line.
///
/// ```toml
/// eal = "-l 0-1 --no-huge --no-pci"
/// duration = 10          # seconds, optional
/// stats_interval = 1     # seconds, optional
/// [[port]]
/// devargs = "net_pcap0,rx_pcap=in.pcap"
/// [[port]]
/// devargs = "net_pcap1,tx_pcap=out.pcap"
/// flows = ["priority=10,in_port=0,actions=output:1"]
///
/// # the storage path, in the same process and on the same core:
/// blk_stats_file = "/run/vswitch-blk.stats"   # optional
/// poll = "wait"                # optional: "busy" spins, "adaptive" sleeps when
///                              # idle, "wait" blocks on kicks and rx (default
///                              # "auto": wait with [[blk]] on one lcore, else busy)
/// [host]                       # the host TCP/IP stack on an internal port
/// address = "10.77.0.1/24"
/// mac = "02:00:00:00:00:01"    # optional
/// mtu = 9000                   # optional: jumbo frames (af_packet ports then
///                              # need framesz=9216,blocksz=36864)
/// [[blk]]
/// socket = "/run/vm1-disk.sock"
/// backend = "iscsi://10.77.0.2:3260/iqn.2026-01.dev.vswitch:t/1"
/// cache = "64M"                # optional
/// cache_mode = "writethrough"  # or "writeback"
/// cache_meta = "/dev/shm/vm1.cache-meta"  # optional: metadata for the guest to map
/// queues = 2                   # optional, default 1
/// block_size = 512             # optional, 512 or 4096
/// # storage made at run time (SPDK's JSON-RPC; see the top README):
/// rpc = "/var/tmp/spdk.sock"   # optional: bdevs and controllers over JSON-RPC
/// vhost_dir = "/run/vhost"     # optional: their sockets (default: the cwd)
/// config_json = "/etc/vswitch/storage.json"  # optional: rpc.py save_config's output
/// ```
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// EAL arguments as one string.
    pub eal: Option<String>,
    /// Ports.
    #[serde(default)]
    pub port: Vec<FilePort>,
    /// Seconds to run.
    pub duration: Option<f64>,
    /// Seconds between stats lines (0: none).
    pub stats_interval: Option<f64>,
    /// Mbufs in the packet pool.
    pub mbufs: Option<u32>,
    /// Rules installed at start.
    #[serde(default)]
    pub flows: Vec<String>,
    /// Patch-panel mode (no flow table).
    #[serde(default)]
    pub xconnect: bool,
    /// Control socket path.
    pub control: Option<PathBuf>,
    /// Exact-match flow cache entries per worker.
    pub flow_cache: Option<usize>,
    /// Connections the connection tracker holds.
    pub ct_max_conns: Option<u32>,
    /// vhost-user-blk devices.
    #[serde(default)]
    pub blk: Vec<FileBlk>,
    /// The host stack on the internal port.
    pub host: Option<FileHost>,
    /// Where to publish the devices' counters.
    pub blk_stats_file: Option<PathBuf>,
    /// `"busy"` (default) or `"adaptive"`: how the core waits when idle.
    pub poll: Option<String>,
    /// OVSDB server to take bridges and ports from (`unix:PATH`, `tcp:IP:PORT`).
    pub ovsdb: Option<String>,
    /// Run directory (OpenFlow management sockets, vhost-user server sockets).
    pub rundir: Option<PathBuf>,
    /// Prometheus endpoint address (`--metrics`).
    pub metrics: Option<String>,
    /// Allow a non-loopback `metrics` address (`--metrics-allow-remote`).
    #[serde(default)]
    pub metrics_allow_remote: bool,
    /// SPDK's JSON-RPC storage methods on this socket.
    pub rpc: Option<PathBuf>,
    /// Directory of run-time controllers' sockets.
    pub vhost_dir: Option<PathBuf>,
    /// Saved storage configuration to load at start.
    pub config_json: Option<PathBuf>,
}

/// One `[[blk]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBlk {
    /// vhost-user socket path.
    pub socket: PathBuf,
    /// Backend spec.
    pub backend: String,
    /// Cache size, like `64M`.
    pub cache: Option<String>,
    /// `writethrough` (default) or `writeback`.
    pub cache_mode: Option<String>,
    /// Metadata file for the guest to map (needs `cache`).
    pub cache_meta: Option<PathBuf>,
    /// Request queues.
    pub queues: Option<u16>,
    /// Logical block size.
    pub block_size: Option<u32>,
    /// QoS: requests per second (SPDK `rw_ios_per_sec`).
    pub rw_ios_per_sec: Option<u64>,
    /// QoS: MiB/s read plus written (SPDK `rw_mbytes_per_sec`).
    pub rw_mbytes_per_sec: Option<u64>,
    /// QoS: MiB/s read (SPDK `r_mbytes_per_sec`).
    pub r_mbytes_per_sec: Option<u64>,
    /// QoS: MiB/s written (SPDK `w_mbytes_per_sec`).
    pub w_mbytes_per_sec: Option<u64>,
}

impl FileBlk {
    /// The validated device.
    pub fn to_spec(&self) -> Result<BlkSpec, String> {
        let at = || format!("[[blk]] {}", self.socket.display());
        let cache = match &self.cache {
            Some(c) => {
                Some(vfio::backend::parse_size(c).map_err(|e| format!("{}: cache: {e}", at()))?)
            }
            None => None,
        };
        let writeback = match self.cache_mode.as_deref() {
            None | Some("writethrough") => false,
            Some("writeback") => true,
            Some(m) => {
                return Err(format!(
                    "{}: cache_mode {m:?}: writethrough or writeback",
                    at()
                ))
            }
        };
        if self.cache_meta.is_some() && cache.is_none() {
            return Err(format!("{}: cache_meta needs cache", at()));
        }
        Ok(BlkSpec {
            socket: self.socket.clone(),
            backend: self.backend.clone(),
            cache,
            writeback,
            cache_meta: self.cache_meta.clone(),
            queues: self.queues.unwrap_or(1),
            block_size: self.block_size.unwrap_or(512),
            qos: vfio::blk::QosLimits {
                rw_ios_per_sec: self.rw_ios_per_sec.unwrap_or(0),
                rw_mbytes_per_sec: self.rw_mbytes_per_sec.unwrap_or(0),
                r_mbytes_per_sec: self.r_mbytes_per_sec.unwrap_or(0),
                w_mbytes_per_sec: self.w_mbytes_per_sec.unwrap_or(0),
            },
        })
    }
}

/// The `[host]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHost {
    /// `ADDR/PREFIX`.
    pub address: String,
    /// Optional MAC.
    pub mac: Option<String>,
    /// Optional IP MTU (default 1500).
    pub mtu: Option<u16>,
}

/// One `[[port]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePort {
    /// DPDK devargs of the port.
    pub devargs: String,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))
    }
}

/// Splits an EAL argument string on whitespace (quotes are not needed by any
/// EAL option; devargs never contain spaces).
pub fn split_eal(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// Turns seconds into a duration, refusing negative, NaN and absurd values.
pub fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if !s.is_finite() || !(0.0..=1e9).contains(&s) {
        return Err(format!("{what} must be a number of seconds >= 0, got {s}"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// The ring frame size of `net_af_packet` devargs (`framesz=`, DPDK's
/// default 2048).
fn af_packet_frame(devargs: &str) -> u32 {
    devargs
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("framesz="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048)
}

impl RunConfig {
    /// Bytes of data room the switch's mbufs need (headroom excluded): a
    /// 2048-byte frame, the host stack's frames, and every af_packet port's
    /// ring frame (the PMD insists its mbufs hold a whole ring frame).
    pub fn mbuf_room(&self) -> u16 {
        let af_packet = self
            .ports
            .iter()
            .filter(|p| dpdk_port_name(p).starts_with("net_af_packet"))
            .map(|p| af_packet_frame(p).min(u16::MAX as u32 / 2) as u16)
            .max()
            .unwrap_or(0);
        let host = self.host.as_ref().map_or(0, HostStack::frame_room);
        2048.max(af_packet).max(host)
    }

    /// Mbufs the ports' pcap files keep in the packet pool for the whole
    /// run (`infinite_rx=1`, see [`pcap_preloaded_mbufs`]).
    pub fn preloaded_mbufs(&self) -> Result<Preloaded, String> {
        let mut p = Preloaded::default();
        for devargs in &self.ports {
            let n = pcap_preloaded_mbufs(devargs, self.mbuf_room())
                .map_err(|e| format!("port {}: {e}", dpdk_port_name(devargs)))?;
            p.total += n;
            if n > p.largest.as_ref().map_or(0, |l| l.1) {
                p.largest = Some((devargs.clone(), n));
            }
        }
        Ok(p)
    }

    /// The packet pool a run needs (as 2^k-1): rx rings and slack for every
    /// port ([`super::default_mbufs`]) plus the frames pcap ports with
    /// `infinite_rx=1` keep in it (unreadable pcap files count as empty:
    /// DPDK then says what is wrong with them).
    pub fn needed_mbufs(&self) -> u32 {
        let pre = self.preloaded_mbufs().map_or(0, |p| p.total);
        // OVSDB adds ports at run time: room for 8 more rx rings.
        let ports = self.ports.len() + if self.ovsdb.is_some() { 8 } else { 0 };
        let need = u64::from(super::default_mbufs(ports)) + 1 + pre;
        (need.next_power_of_two() - 1).min(u64::from(u32::MAX >> 1)) as u32
    }

    /// Whether the storage path runs: devices given, or made at run time.
    pub fn has_storage(&self) -> bool {
        !self.blk.is_empty() || self.storage_rpc.enabled()
    }

    /// Checks what can be checked without DPDK: at least one port (or a
    /// storage device or host stack), no port
    /// given twice, no empty devargs, a sane pool size.
    pub fn validate(&self) -> Result<(), String> {
        if self.ports.is_empty()
            && self.blk.is_empty()
            && !self.storage_rpc.enabled()
            && self.host.is_none()
            && self.ovsdb.is_none()
        {
            return Err(
                "no ports: give at least one --port <devargs> (e.g. --port net_null0), \
                 or --ovsdb to take them from an OVSDB server"
                    .into(),
            );
        }
        let mut names: Vec<&str> = Vec::new();
        for p in &self.ports {
            switch::tunnel::TunnelConfig::parse(p)?;
            let name = dpdk_port_name(p);
            if name.is_empty() {
                return Err(format!("port devargs {p:?} has no device name"));
            }
            if names.contains(&name) {
                return Err(format!(
                    "port {name:?} is given twice; each device is one port (number virtual ones: net_null0, net_null1)"
                ));
            }
            names.push(name);
        }
        if !(1024..=1 << 26).contains(&self.flow_cache) {
            return Err(format!(
                "--flow-cache {} must be between 1024 and 2^26 entries",
                self.flow_cache
            ));
        }
        if !(1..=MAX_CT_CONNS).contains(&self.ct_max_conns) {
            return Err(format!(
                "--ct-max-conns {} must be between 1 and {MAX_CT_CONNS}",
                self.ct_max_conns
            ));
        }
        let mut socks: Vec<&Path> = Vec::new();
        for b in &self.blk {
            if socks.contains(&b.socket.as_path()) {
                return Err(format!("blk socket {} is given twice", b.socket.display()));
            }
            socks.push(&b.socket);
            if !(1..=64).contains(&b.queues) {
                return Err(format!(
                    "blk {}: queues {} must be 1..=64",
                    b.socket.display(),
                    b.queues
                ));
            }
            if b.block_size != 512 && b.block_size != 4096 {
                return Err(format!(
                    "blk {}: block size {} must be 512 or 4096",
                    b.socket.display(),
                    b.block_size
                ));
            }
            if b.writeback && b.cache.is_none() {
                return Err(format!(
                    "blk {}: cache_mode writeback needs a cache size",
                    b.socket.display()
                ));
            }
        }
        if self.host.is_some() && self.xconnect {
            return Err("the host stack needs the flow table: drop --xconnect".into());
        }
        if self.mbufs < 1024 {
            return Err(format!(
                "--mbufs {} is too small (at least 1024)",
                self.mbufs
            ));
        }
        // net_pcap with infinite_rx fails with a bare "Not enough mbufs"
        // otherwise: say how many it takes.
        let pre = self.preloaded_mbufs()?;
        let work = 1024 * (self.ports.len() as u64 + 1);
        if let Some((devargs, n)) = pre
            .largest
            .filter(|_| u64::from(self.mbufs) < pre.total + work)
        {
            return Err(format!(
                "--mbufs {} is too small: port {} replays {n} frames (infinite_rx=1), and DPDK's \
                 pcap PMD keeps them all in the packet pool for the whole run, besides the rx \
                 rings: use --mbufs {} (or leave --mbufs out: the default counts the frames)",
                self.mbufs,
                dpdk_port_name(&devargs),
                self.needed_mbufs()
            ));
        }
        if let Some(h) = self.host.as_ref().filter(|h| h.mtu > 1500) {
            // net_af_packet's default 2048-byte ring frames would truncate
            // jumbo frames (and its tx drops what does not fit).
            for p in &self.ports {
                let name = dpdk_port_name(p);
                if name.starts_with("net_af_packet") && af_packet_frame(p) < h.mtu as u32 + 128 {
                    return Err(format!(
                        "port {name}: host MTU {} needs ring frames of at least {} bytes: \
                         add framesz=9216,blocksz=36864 to its devargs",
                        h.mtu,
                        h.mtu as u32 + 128
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the EAL arguments ask for no hugepages.
    pub fn no_huge(&self) -> bool {
        self.eal.iter().any(|a| a == "--no-huge")
    }

    /// Forwarding pairs: port 0 ↔ 1, 2 ↔ 3, ...; an odd last port forwards
    /// to itself. Returned as (rx port index, tx port index) streams.
    pub fn streams(&self) -> Vec<(usize, usize)> {
        let n = self.ports.len();
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i + 1 < n {
            out.push((i, i + 1));
            out.push((i + 1, i));
            i += 2;
        }
        if i < n {
            out.push((i, i));
        }
        out
    }
}

/// Mbufs the pcap ports of a run keep in the packet pool
/// ([`RunConfig::preloaded_mbufs`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Preloaded {
    /// Mbufs all the ports keep.
    pub total: u64,
    /// The port that keeps the most (its devargs) and how many.
    pub largest: Option<(String, u64)>,
}

/// Mbufs DPDK's pcap PMD takes from the packet pool for the whole run when
/// a port is `net_pcapN,rx_pcap=FILE,...,infinite_rx=1`: at start it loads
/// every frame of each `rx_pcap` file into mbufs (one per `room` bytes of a
/// frame) and replays them from there. `Ok(0)` for every other port; an
/// error if a pcap file cannot be read or is not a classic pcap file.
pub fn pcap_preloaded_mbufs(devargs: &str, room: u16) -> Result<u64, String> {
    if !dpdk_port_name(devargs).starts_with("net_pcap") {
        return Ok(0);
    }
    let kv = || {
        devargs
            .split(',')
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
    };
    if !kv().any(|(k, v)| k.trim() == "infinite_rx" && v.trim() == "1") {
        return Ok(0);
    }
    let mut n = 0;
    for (_, file) in kv().filter(|(k, _)| k.trim() == "rx_pcap") {
        n += pcap_file_mbufs(Path::new(file.trim()), room)?;
    }
    Ok(n)
}

/// The mbufs the frames of a classic pcap file take, `room` data bytes each.
fn pcap_file_mbufs(path: &Path, room: u16) -> Result<u64, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = std::io::BufReader::new(f);
    let mut hdr = [0u8; 24];
    r.read_exact(&mut hdr)
        .map_err(|e| format!("{}: not a pcap file ({e})", path.display()))?;
    let big_endian = match hdr[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
        _ => {
            return Err(format!(
                "{}: not a classic pcap file (pcapng? convert it with `editcap -F pcap`)",
                path.display()
            ))
        }
    };
    let room = u64::from(room.max(1));
    let mut n = 0u64;
    let mut rec = [0u8; 16];
    loop {
        match r.read_exact(&mut rec) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(n),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let b = [rec[8], rec[9], rec[10], rec[11]];
        let caplen = u64::from(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        });
        n += caplen.div_ceil(room).max(1);
        let skipped = std::io::copy(&mut (&mut r).take(caplen), &mut std::io::sink())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if skipped < caplen {
            // A truncated last record: libpcap stops there too.
            return Ok(n - 1);
        }
    }
}

/// The device name part of devargs (before the first comma).
pub fn dpdk_port_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ports: &[&str]) -> RunConfig {
        RunConfig {
            eal: vec![],
            ports: ports.iter().map(|s| s.to_string()).collect(),
            duration: None,
            stats_interval: None,
            json: false,
            mbufs: 8191,
            flows: vec![],
            xconnect: false,
            control: None,
            flow_cache: 1 << 16,
            ct_max_conns: 1024,
            idle_exit: None,
            blk: vec![],
            host: None,
            blk_stats_file: None,
            poll: CorePoll::Auto,
            ovsdb: None,
            rundir: DEFAULT_RUNDIR.into(),
            metrics: None,
            storage_rpc: StorageRpc::default(),
        }
    }

    #[test]
    fn jumbo_host_mtu_sizes_mbufs_and_needs_big_af_packet_frames() {
        let host = HostStack::parse("10.0.0.1/24", None).unwrap();
        assert!(host.clone().with_mtu(Some(9001)).is_err());
        assert!(host.clone().with_mtu(Some(1000)).is_err());
        let mut c = cfg(&["net_af_packet0,iface=veth0"]);
        assert_eq!(c.mbuf_room(), 2048);
        c.host = Some(host.with_mtu(Some(9000)).unwrap());
        let e = c.validate().unwrap_err();
        assert!(e.contains("framesz=9216,blocksz=36864"), "{e}");
        c.ports = vec!["net_af_packet0,iface=veth0,framesz=9216,blocksz=36864".into()];
        c.validate().unwrap();
        // The PMD wants a whole ring frame per mbuf.
        assert_eq!(c.mbuf_room(), 9216);
    }

    #[test]
    fn counts_the_mbufs_pcap_ports_preload() {
        let dir = std::env::temp_dir().join(format!("vswitch-pcap-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("in.pcap");
        // Classic little-endian pcap: 3 frames of 60, 2048 and 3000 bytes.
        let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        b.extend([0u8; 8]);
        b.extend(65535u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        for len in [60u32, 2048, 3000] {
            b.extend([0u8; 8]);
            b.extend(len.to_le_bytes());
            b.extend(len.to_le_bytes());
            b.extend(vec![0u8; len as usize]);
        }
        std::fs::write(&f, &b).unwrap();
        let d = format!("net_pcap0,rx_pcap={},infinite_rx=1", f.display());
        // 1 + 1 + 2 mbufs of 2048 bytes.
        assert_eq!(pcap_preloaded_mbufs(&d, 2048), Ok(4));
        assert_eq!(pcap_preloaded_mbufs(&d, 9216), Ok(3));
        let no_inf = format!("net_pcap0,rx_pcap={}", f.display());
        assert_eq!(pcap_preloaded_mbufs(&no_inf, 2048), Ok(0));
        assert_eq!(pcap_preloaded_mbufs("net_null0", 2048), Ok(0));
        let mut c = cfg(&[&d, "net_null0"]);
        assert_eq!(c.preloaded_mbufs().unwrap().total, 4);
        assert_eq!(c.needed_mbufs(), 16383);
        c.validate().unwrap();
        c.mbufs = 1024;
        assert!(c.validate().unwrap_err().contains("use --mbufs 16383"));
        let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a];
        ng.resize(32, 0);
        std::fs::write(&f, ng).unwrap();
        assert!(pcap_preloaded_mbufs(&d, 2048)
            .unwrap_err()
            .contains("not a classic pcap"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pairs_ports() {
        assert_eq!(cfg(&["a", "b"]).streams(), vec![(0, 1), (1, 0)]);
        assert_eq!(
            cfg(&["a", "b", "c"]).streams(),
            vec![(0, 1), (1, 0), (2, 2)]
        );
        assert_eq!(cfg(&["a"]).streams(), vec![(0, 0)]);
    }

    #[test]
    fn rejects_duplicates_and_empty() {
        assert!(cfg(&[]).validate().unwrap_err().contains("no ports"));
        let e = cfg(&["net_null0", "net_null0,no-rx=1"])
            .validate()
            .unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        assert!(cfg(&[",x=1"])
            .validate()
            .unwrap_err()
            .contains("no device name"));
        assert!(cfg(&["net_null0", "net_null1"]).validate().is_ok());
    }

    #[test]
    fn parses_toml() {
        let f = FileConfig::parse(
            "eal = \"-l 0-1 --no-huge\"\nduration = 2.5\n[[port]]\ndevargs = \"net_null0\"\n[[port]]\ndevargs = \"net_null1\"\n",
        )
        .unwrap();
        assert_eq!(f.eal.as_deref(), Some("-l 0-1 --no-huge"));
        assert_eq!(f.port.len(), 2);
        assert_eq!(f.duration, Some(2.5));
    }

    #[test]
    fn ct_max_conns_from_toml_and_checked() {
        let f = FileConfig::parse("ct_max_conns = 5000\n").unwrap();
        assert_eq!(f.ct_max_conns, Some(5000));
        let mut c = cfg(&["net_null0"]);
        c.ct_max_conns = 0;
        let e = c.validate().unwrap_err();
        assert!(e.contains("--ct-max-conns 0 must be between 1 and"), "{e}");
        c.ct_max_conns = MAX_CT_CONNS + 1;
        assert!(c.validate().is_err());
        c.ct_max_conns = MAX_CT_CONNS;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn toml_errors_are_clear() {
        let e = FileConfig::parse("bogus = 1").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = FileConfig::parse("[[port]]\nname = \"x\"").unwrap_err();
        assert!(e.contains("devargs") || e.contains("unknown field"), "{e}");
    }

    #[test]
    fn parses_storage_toml() {
        let f = FileConfig::parse(
            "[host]\naddress = \"10.77.0.1/24\"\nmac = \"02:00:00:00:00:07\"\n\
             [[blk]]\nsocket = \"/tmp/a.sock\"\nbackend = \"iscsi://10.77.0.2:3260/iqn.x:y/1\"\n\
             cache = \"64M\"\ncache_mode = \"writeback\"\nqueues = 2\n\
             cache_meta = \"/dev/shm/a.meta\"\n",
        )
        .unwrap();
        let h = f.host.unwrap();
        let h = HostStack::parse(&h.address, h.mac.as_deref()).unwrap();
        assert_eq!(h.addr, std::net::Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(h.prefix, 24);
        assert_eq!(h.mac, Some([2, 0, 0, 0, 0, 7]));
        let b = f.blk[0].to_spec().unwrap();
        assert_eq!(b.cache, Some(64 << 20));
        assert!(b.writeback && b.backend.starts_with("iscsi://"));
        assert_eq!(b.queues, 2);
        assert_eq!(b.cache_meta, Some(PathBuf::from("/dev/shm/a.meta")));
        let e = FileConfig::parse(
            "[[blk]]\nsocket = \"a\"\nbackend = \"mem:1M\"\ncache_meta = \"/dev/shm/m\"\n",
        )
        .unwrap()
        .blk[0]
            .to_spec()
            .unwrap_err();
        assert!(e.contains("cache_meta needs cache"), "{e}");
        let e = FileConfig::parse(
            "[[blk]]\nsocket = \"a\"\nbackend = \"mem:1M\"\ncache_mode = \"sometimes\"\n",
        )
        .unwrap()
        .blk[0]
            .to_spec()
            .unwrap_err();
        assert!(e.contains("cache_mode"), "{e}");
    }

    #[test]
    fn storage_flags_and_checks() {
        let b = BlkSpec::parse_flag("/tmp/x.sock=iscsi://1.2.3.4:3260/iqn.a:b/1").unwrap();
        assert_eq!(b.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(b.backend, "iscsi://1.2.3.4:3260/iqn.a:b/1");
        assert!(BlkSpec::parse_flag("nosocket").is_err());
        assert!(BlkSpec::parse_flag("=mem:1M").is_err());
        assert!(HostStack::parse("10.0.0.1", None).is_err());
        assert!(HostStack::parse("10.0.0.1/33", None).is_err());
        assert!(HostStack::parse("10.0.0.1/24", Some("01:00:00:00:00:01")).is_err());
        assert!(HostStack::parse("10.0.0.1/24", Some("02:00:00:00:00")).is_err());
        let mut c = cfg(&["net_null0"]);
        c.blk = vec![b.clone(), b.clone()];
        assert!(c.validate().unwrap_err().contains("twice"));
        let mut b2 = b.clone();
        b2.socket = "/tmp/y.sock".into();
        c.blk = vec![b, b2];
        assert!(c.validate().is_ok(), "two iscsi devices over kernel TCP");
        c.host = Some(HostStack::parse("10.0.0.1/24", None).unwrap());
        assert!(c.validate().is_ok(), "two iscsi devices on the host stack");
        c.xconnect = true;
        assert!(c.validate().unwrap_err().contains("xconnect"));
    }

    #[test]
    fn storage_parsers_take_garbage() {
        // xorshift garbage, printable and not: errors, never panics.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"0123456789abcdef:/=.,@ xyz\xff\x00-";
        for n in 0..5000 {
            let len = n % 40;
            let s: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize] as char
                })
                .collect();
            let _ = BlkSpec::parse_flag(&s);
            let _ = HostStack::parse(&s, Some(&s));
            let _ = parse_mac(&s);
            let _ = FileConfig::parse(&s);
        }
        assert!(parse_mac("02:00:00:00:00:01").is_ok());
        assert!(parse_mac("02:00:00:00:00:0g").is_err());
        assert!(parse_mac("02:00:00:00:00:01:02").is_err());
        assert!(parse_mac("2:00:00:00:00:01").is_err());
    }

    #[test]
    fn seconds_are_checked() {
        assert!(seconds("--duration", -1.0).is_err());
        assert!(seconds("--duration", f64::NAN).is_err());
        assert_eq!(
            seconds("--duration", 1.5).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn split_eal_words() {
        assert_eq!(
            split_eal(" -l 0-1  --no-huge "),
            vec!["-l", "0-1", "--no-huge"]
        );
    }
}
