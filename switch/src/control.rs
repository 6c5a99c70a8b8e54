//! The control protocol: one JSON object per line over a unix stream socket,
//! one [`Reply`] line per [`Request`] line. `vswitch run` serves it with
//! [`ControlServer`]; the CLI subcommands use [`request`].
//!
//! ```text
//! -> {"cmd":"flows_add","rule":"priority=100,tcp,tp_dst=80,actions=output:2"}
//! <- {"result":"flow_added","id":7}
//! -> {"cmd":"stats"}
//! <- {"result":"stats","total":{...},"per_core":[...]}
//! ```
//! Port management goes through [`PortBackend`], which the DPDK layer
//! implements (the switch core knows nothing of DPDK).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::extract::Malformed;
use crate::fdb::FdbEntry;
use crate::group::{GroupSpec, GroupStats};
use crate::rule::{parse_filter, RuleSpec};
use crate::stats::Counters;
use crate::switch::Switch;
use crate::table::RuleInfo;
use crate::verdict::DropReason;

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitch.sock";
/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Install a rule (`ovs-ofctl add-flow` syntax).
    FlowsAdd {
        /// The rule text.
        rule: String,
    },
    /// Delete rules matching a filter (empty = all).
    FlowsDel {
        /// Match text, optionally with `priority=`.
        filter: String,
        /// Exact match (and priority if given) instead of "at least as specific".
        #[serde(default)]
        strict: bool,
    },
    /// All rules with counters.
    FlowsDump,
    /// Add a group (`group_id=N,type=T,bucket=...`).
    GroupsAdd {
        /// The group text.
        group: String,
    },
    /// Replace a group.
    GroupsMod {
        /// The group text.
        group: String,
    },
    /// Delete a group (and the rules using it); all groups when absent.
    GroupsDel {
        /// Group id.
        #[serde(default)]
        id: Option<u32>,
    },
    /// Groups with their counters.
    GroupsDump,
    /// Add a port.
    PortsAdd(PortSpec),
    /// Remove a port.
    PortsDel {
        /// Port number.
        port: u16,
    },
    /// Ports with statistics.
    PortsShow,
    /// MAC table.
    FdbShow,
    /// Datapath statistics.
    Stats,
    /// Connections of the tracker, of one zone or all (`vswitch ct show`).
    CtShow {
        /// Only this zone.
        #[serde(default)]
        zone: Option<u16>,
    },
    /// Remove connections, of one zone or all (`vswitch ct flush`).
    CtFlush {
        /// Only this zone.
        #[serde(default)]
        zone: Option<u16>,
    },
    /// Limit a zone's connections (`vswitch ct limit`).
    CtLimit {
        /// The zone.
        zone: u16,
        /// At most this many; `None`: back to the default (no limit).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// IP fragment reassembly before tracking (`vswitch ct ipf`, OVS's
    /// `dpctl/ipf-set-enabled|disabled`, `ipf-set-min-frag`,
    /// `ipf-set-max-nfrags`): each setting given is applied, then the
    /// status (`dpctl/ipf-get-status`) is returned.
    CtIpf {
        /// Turn IPv4 reassembly on or off.
        #[serde(default)]
        v4: Option<bool>,
        /// Turn IPv6 reassembly on or off.
        #[serde(default)]
        v6: Option<bool>,
        /// Minimum size of a non-last IPv4 fragment (≥ 400).
        #[serde(default)]
        min_frag_v4: Option<u32>,
        /// Minimum size of a non-last IPv6 fragment (≥ 400).
        #[serde(default)]
        min_frag_v6: Option<u32>,
        /// Fragments in process at most (≤ 5000).
        #[serde(default)]
        max_frags: Option<u32>,
    },
}

/// What to add as a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Name for display.
    pub name: String,
    /// DPDK device arguments (PCI address or vdev string, e.g.
    /// `net_tap0,iface=tap0`).
    pub devargs: String,
    /// Requested port number; the backend picks one when absent.
    #[serde(default)]
    pub port: Option<u16>,
}

/// One port as shown by `vswitch ports show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    /// Switch port number.
    pub port: u16,
    /// Name.
    pub name: String,
    /// Device arguments / driver.
    pub devargs: String,
    /// Link up.
    pub link_up: bool,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the NIC dropped on receive (no mbuf, ring full).
    pub rx_dropped: u64,
    /// Frames dropped because the tx ring was full.
    pub tx_dropped: u64,
    /// Drops by reason, where the port counts them (tunnel ports:
    /// `truncated`, `bad_header`, `bad_vni`, `bad_port`, ...).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub drops: std::collections::BTreeMap<String, u64>,
    /// The port's MTU (its `mtu=` setting, else the device's; 0: unknown).
    #[serde(default)]
    pub mtu: u16,
    /// Frames received per rx queue (drivers that count per queue; empty
    /// otherwise).
    #[serde(default)]
    pub rx_queue_packets: Vec<u64>,
    /// Offload work on this port (guests' large segments and partial
    /// checksums).
    #[serde(default)]
    pub offload: PortOffload,
}

/// Offload counters of one port (see `src/dataplane/offload.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortOffload {
    /// Frames received longer than the port's MTU (large TCP segments).
    pub rx_large_packets: u64,
    /// Their bytes.
    pub rx_large_bytes: u64,
    /// Large segments cut in software for this port (it cannot take them).
    pub tx_segmented: u64,
    /// Frames those cuts made.
    pub tx_segments: u64,
    /// Frames whose checksum the switch completed for this port.
    pub tx_csum_sw: u64,
    /// Offloaded frames dropped (no buffer, not segmentable).
    pub tx_offload_drops: u64,
}

impl PortOffload {
    /// Whether any counter moved.
    pub fn any(&self) -> bool {
        *self != PortOffload::default()
    }
}

/// Counters of one core, with derived rates and named drop reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreReport {
    /// Worker index (`None` for the total).
    pub worker: Option<usize>,
    /// Raw counters.
    pub counters: Counters,
    /// Busy cycles per packet.
    pub cycles_per_packet: f64,
    /// Exact-match cache hit rate in [0, 1].
    pub cache_hit_rate: f64,
    /// Drops by reason name.
    pub drops: BTreeMap<String, u64>,
    /// Malformed frames by reason name.
    pub malformed: BTreeMap<String, u64>,
}

impl CoreReport {
    /// Build from counters.
    pub fn new(worker: Option<usize>, c: Counters) -> CoreReport {
        CoreReport {
            worker,
            cycles_per_packet: c.cycles_per_packet(),
            cache_hit_rate: c.cache_hit_rate(),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_string(), c.drop_count(*r)))
                .collect(),
            malformed: Malformed::ALL
                .iter()
                .map(|m| (m.name().to_string(), c.malformed_count(*m)))
                .collect(),
            counters: c,
        }
    }
}

/// Reply to `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// Sum over workers.
    pub total: CoreReport,
    /// Each worker.
    pub per_core: Vec<CoreReport>,
    /// Installed rules.
    pub rules: usize,
    /// Classifier subtables (distinct masks).
    pub subtables: usize,
    /// Live MAC table entries.
    pub fdb_entries: usize,
    /// The connection tracker's counters.
    #[serde(default)]
    pub ct: CtCounters,
}

/// The connection tracker's counters (`conntrack::Stats`), in `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtCounters {
    /// Connections in the table.
    pub entries: u64,
    /// Connections committed since start.
    pub committed: u64,
    /// Packets tracked as invalid.
    pub invalid: u64,
    /// Commits refused by a zone limit or a full table.
    pub limit_drops: u64,
    /// Connections expired.
    pub expired: u64,
}

impl From<conntrack::Stats> for CtCounters {
    fn from(s: conntrack::Stats) -> CtCounters {
        CtCounters {
            entries: s.entries,
            committed: s.committed,
            invalid: s.invalid,
            limit_drops: s.limit_drops,
            expired: s.expired,
        }
    }
}

/// A reply to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    /// Rule installed.
    FlowAdded {
        /// Its id.
        id: u64,
    },
    /// Rules deleted.
    FlowsDeleted {
        /// How many.
        count: usize,
    },
    /// `flows dump`.
    Flows {
        /// Rules, highest priority first.
        flows: Vec<RuleInfo>,
    },
    /// Group added or modified.
    GroupDone {
        /// Its id.
        id: u32,
    },
    /// Groups deleted; `flows` rules went with them.
    GroupsDeleted {
        /// Rules deleted because they used a deleted group.
        flows: usize,
    },
    /// `groups dump`.
    Groups {
        /// Groups by id.
        groups: Vec<GroupInfo>,
    },
    /// Port added.
    PortAdded {
        /// Its number.
        port: u16,
    },
    /// Port removed.
    PortDeleted {
        /// Its number.
        port: u16,
    },
    /// `ports show`.
    Ports {
        /// Ports.
        ports: Vec<PortInfo>,
    },
    /// `fdb show`.
    Fdb {
        /// Live entries.
        entries: Vec<FdbEntry>,
    },
    /// `stats`.
    Stats(Box<StatsReport>),
    /// `ct show`: one line per connection, as `ovs-appctl
    /// dpctl/dump-conntrack` prints them, sorted.
    CtConns {
        /// The connections.
        conns: Vec<String>,
    },
    /// `ct flush`: connections removed.
    CtFlushed {
        /// How many.
        count: usize,
    },
    /// `ct limit` applied.
    CtLimitSet {
        /// The zone.
        zone: u16,
        /// Its limit now (`None`: the default).
        limit: Option<u32>,
    },
    /// `ct ipf`: reassembly's settings and counters.
    CtIpf(IpfReport),
    /// The request failed; nothing was changed.
    Error {
        /// Why.
        error: String,
    },
}

/// One group as shown by `groups dump`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group in `ovs-ofctl add-group` syntax.
    pub group: String,
    /// Counters.
    pub stats: GroupStats,
}

/// Port management, implemented by the DPDK layer.
pub trait PortBackend: Send + Sync {
    /// Probe/configure/start the device and return its port number; must
    /// call [`Switch::port_add`] once its queues are polled.
    fn add(&self, spec: &PortSpec) -> Result<u16, String>;
    /// Call [`Switch::port_del`] (which waits until no worker can still
    /// output to it), then stop and detach the device.
    fn del(&self, port: u16) -> Result<(), String>;
    /// Ports with their statistics.
    fn show(&self) -> Vec<PortInfo>;
}

/// A backend for switches without port management (tests, dry runs).
pub struct NoPorts;

impl PortBackend for NoPorts {
    fn add(&self, _: &PortSpec) -> Result<u16, String> {
        Err("this switch has no port backend".into())
    }
    fn del(&self, _: u16) -> Result<(), String> {
        Err("this switch has no port backend".into())
    }
    fn show(&self) -> Vec<PortInfo> {
        Vec::new()
    }
}

/// Execute one request against the switch.
pub fn handle(sw: &Switch, ports: &dyn PortBackend, req: Request) -> Reply {
    let now = sw.now_ms();
    let r = match req {
        Request::FlowsAdd { rule } => rule
            .parse::<RuleSpec>()
            .and_then(|s| Ok(sw.table.add(s, now)?))
            .map(|id| Reply::FlowAdded { id }),
        Request::FlowsDel { filter, strict } => {
            parse_filter(&filter, strict).map(|f| Reply::FlowsDeleted {
                count: sw.table.delete(&f, now).len(),
            })
        }
        Request::FlowsDump => Ok(Reply::Flows {
            flows: sw.table.dump(now),
        }),
        Request::GroupsAdd { group } => group.parse::<GroupSpec>().and_then(|g| {
            let id = g.id;
            sw.group_add(g)?;
            Ok(Reply::GroupDone { id })
        }),
        Request::GroupsMod { group } => group.parse::<GroupSpec>().and_then(|g| {
            let id = g.id;
            sw.group_mod(g)?;
            Ok(Reply::GroupDone { id })
        }),
        Request::GroupsDel { id } => Ok(Reply::GroupsDeleted {
            flows: sw.group_del(id).len(),
        }),
        Request::GroupsDump => Ok(Reply::Groups {
            groups: sw
                .group_desc()
                .into_iter()
                .zip(sw.group_stats())
                .map(|(g, stats)| GroupInfo {
                    group: g.to_string(),
                    stats,
                })
                .collect(),
        }),
        Request::PortsAdd(spec) => ports.add(&spec).map(|port| Reply::PortAdded { port }),
        Request::PortsDel { port } => ports.del(port).map(|()| Reply::PortDeleted { port }),
        Request::PortsShow => Ok(Reply::Ports {
            ports: ports.show(),
        }),
        Request::FdbShow => Ok(Reply::Fdb {
            entries: sw.fdb.entries(now),
        }),
        Request::Stats => {
            let per = sw.per_core();
            let t = sw.table.snapshot();
            Ok(Reply::Stats(Box::new(StatsReport {
                total: CoreReport::new(None, sw.totals()),
                per_core: per
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| CoreReport::new(Some(i), c))
                    .collect(),
                rules: t.rules.len(),
                subtables: t.subtables(),
                fdb_entries: sw.fdb.entries(now).len(),
                ct: sw.conntrack().stats().into(),
            })))
        }
        Request::CtShow { zone } => {
            let mut conns: Vec<(u16, String)> = sw
                .conntrack()
                .dump(zone, now)
                .iter()
                .map(|c| (c.zone, c.to_string()))
                .collect();
            conns.sort();
            Ok(Reply::CtConns {
                conns: conns.into_iter().map(|(_, l)| l).collect(),
            })
        }
        Request::CtFlush { zone } => Ok(Reply::CtFlushed {
            count: sw.conntrack().flush(zone),
        }),
        Request::CtLimit { zone, limit } => {
            sw.conntrack().set_zone_limit(zone, limit);
            Ok(Reply::CtLimitSet { zone, limit })
        }
        Request::CtIpf {
            v4,
            v6,
            min_frag_v4,
            min_frag_v6,
            max_frags,
        } => ct_ipf(sw, [v4, v6], [min_frag_v4, min_frag_v6], max_frags),
    };
    r.unwrap_or_else(|error| Reply::Error { error })
}

/// `ct ipf`: check every setting, then apply them (all or none).
fn ct_ipf(
    sw: &Switch,
    enable: [Option<bool>; 2],
    min_frag: [Option<u32>; 2],
    max_frags: Option<u32>,
) -> Result<Reply, String> {
    use conntrack::ipf;
    let ipf = sw.conntrack().ipf();
    for m in min_frag.into_iter().flatten() {
        if m < ipf::MIN_FRAG_LOWER_BOUND {
            return Err(format!(
                "min-frag {m}: at least {}",
                ipf::MIN_FRAG_LOWER_BOUND
            ));
        }
    }
    if let Some(n) = max_frags.filter(|&n| n > ipf::MAX_FRAGS_UPPER_BOUND) {
        return Err(format!(
            "max-frags {n}: at most {}",
            ipf::MAX_FRAGS_UPPER_BOUND
        ));
    }
    for (v6, (on, min)) in enable.into_iter().zip(min_frag).enumerate() {
        if let Some(on) = on {
            ipf.set_enabled(v6 == 1, on);
        }
        if let Some(m) = min {
            ipf.set_min_frag(v6 == 1, m)?;
        }
    }
    if let Some(n) = max_frags {
        ipf.set_max_frags(n)?;
    }
    Ok(Reply::CtIpf(IpfReport::from(ipf.status())))
}

/// `ct ipf`'s reply: OVS's `dpctl/ipf-get-status` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpfReport {
    /// Fragments in process at most.
    pub max_frags: u32,
    /// Fragments in process now.
    pub frags: u32,
    /// IPv4.
    pub v4: IpfFamily,
    /// IPv6.
    pub v6: IpfFamily,
}

/// One family's part of [`IpfReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpfFamily {
    /// Reassembly on.
    pub enabled: bool,
    /// Non-last fragments shorter than this are invalid.
    pub min_frag_size: u32,
    /// Fragments taken into a list.
    pub accepted: u64,
    /// Fragments sent on after their datagram completed.
    pub completed: u64,
    /// Fragments dropped when their list expired.
    pub expired: u64,
    /// Fragments refused as too small.
    pub too_small: u64,
    /// Fragments refused as overlapping.
    pub overlapped: u64,
    /// Fragments dropped otherwise.
    pub purged: u64,
}

impl From<conntrack::ipf::FamilyStatus> for IpfFamily {
    fn from(f: conntrack::ipf::FamilyStatus) -> IpfFamily {
        IpfFamily {
            enabled: f.enabled,
            min_frag_size: f.min_frag_size,
            accepted: f.accepted,
            completed: f.completed,
            expired: f.expired,
            too_small: f.too_small,
            overlapped: f.overlapped,
            purged: f.purged,
        }
    }
}

impl From<conntrack::ipf::IpfStatus> for IpfReport {
    fn from(s: conntrack::ipf::IpfStatus) -> IpfReport {
        IpfReport {
            max_frags: s.max_frags,
            frags: s.frags,
            v4: s.v4.into(),
            v6: s.v6.into(),
        }
    }
}

impl IpfReport {
    /// The text of `ovs-appctl dpctl/ipf-get-status`.
    pub fn to_ovs_text(&self) -> String {
        let fam = |f: &IpfFamily| conntrack::ipf::FamilyStatus {
            enabled: f.enabled,
            min_frag_size: f.min_frag_size,
            accepted: f.accepted,
            completed: f.completed,
            expired: f.expired,
            too_small: f.too_small,
            overlapped: f.overlapped,
            purged: f.purged,
        };
        conntrack::ipf::IpfStatus {
            max_frags: self.max_frags,
            frags: self.frags,
            v4: fam(&self.v4),
            v6: fam(&self.v6),
        }
        .to_ovs_text()
    }
}

/// The control socket server plus the housekeeping timer (rule expiry).
/// Dropping it stops both and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ControlServer {
    /// Bind `path` (a stale socket file is replaced; its directory is
    /// created) and serve requests on a background thread.
    pub fn start(
        path: &Path,
        sw: Arc<Switch>,
        ports: Arc<dyn PortBackend>,
    ) -> std::io::Result<ControlServer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is served by a running switch", path.display()),
            ));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stop, sw, ports) = (Arc::clone(&stop), Arc::clone(&sw), ports);
            std::thread::Builder::new()
                .name("vswitch-ctl".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let (sw, ports) = (Arc::clone(&sw), Arc::clone(&ports));
                        let _ = std::thread::Builder::new()
                            .name("vswitch-ctl-conn".into())
                            .spawn(move || serve_conn(conn, &sw, ports.as_ref()));
                    }
                })?
        };
        let timer = {
            let (stop, sw) = (Arc::clone(&stop), sw);
            std::thread::Builder::new()
                .name("vswitch-expiry".into())
                .spawn(move || {
                    while !stop.load(SeqCst) {
                        sw.housekeeping();
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })?
        };
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            threads: vec![accept, timer],
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        let _ = UnixStream::connect(&self.path); // wake accept()
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve_conn(conn: UnixStream, sw: &Switch, ports: &dyn PortBackend) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut rd = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match (&mut rd).take(MAX_LINE as u64 + 1).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply = if line.len() > MAX_LINE && !line.ends_with('\n') {
            let r = Reply::Error {
                error: format!("request longer than {MAX_LINE} bytes"),
            };
            let _ = send(&mut out, &r);
            return;
        } else {
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(req) => handle(sw, ports, req),
                Err(e) => Reply::Error {
                    error: format!("bad request: {e}"),
                },
            }
        };
        if send(&mut out, &reply).is_err() {
            return;
        }
    }
}

fn send(out: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut s = serde_json::to_string(r).map_err(std::io::Error::other)?;
    s.push('\n');
    out.write_all(s.as_bytes())
}

/// Send one request to the switch at `path` and wait for the reply.
/// `Reply::Error` is returned as `Err` with the switch's message.
pub fn request(path: &Path, req: &Request) -> Result<Reply, String> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot connect to {} ({e}); is `vswitch run` running?",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| format!("send to {}: {e}", path.display()))?;
    let mut resp = String::new();
    BufReader::new(s)
        .read_line(&mut resp)
        .map_err(|e| format!("read from {}: {e}", path.display()))?;
    if resp.is_empty() {
        return Err(format!(
            "{} closed the connection without a reply",
            path.display()
        ));
    }
    match serde_json::from_str::<Reply>(resp.trim())
        .map_err(|e| format!("bad reply from switch: {e}"))?
    {
        Reply::Error { error } => Err(error),
        r => Ok(r),
    }
}
