//! The bridge an OVSDB server describes, run on this process's switch: the
//! [`ovsdb::Datapath`] that `vswitch run --ovsdb` hands the reconciler.
//!
//! ```text
//! ovs-vsctl ─► ovsdb-server ─► ovsdb::reconcile ─► Bridge (this file) ─► PortDesc ─► Ports::add/del
//!                  ▲                                      │
//!                  └──── ofport, mtu, link_state, statistics, error ◄── iface_state
//! ```
//!
//! Numbering: an interface's OpenFlow port number is its switch port
//! number (1..=62, `ofport_request` honoured), so `in_port=1` means the
//! same port to `ovs-ofctl`, `vswitch flows` and the datapath. The bridge's
//! own internal interface (named like the bridge) is OpenFlow's `LOCAL`
//! (OVSDB shows 65534, as OVS does) and takes switch port 0 when free;
//! switch port 63 is the controller channel (`controller.rs`).
//!
//! One process serves one bridge: the switch has one flow table set. A
//! second `netdev` bridge's interfaces get an `error` saying so.
//!
//! OpenFlow: the bridge listens on `RUNDIR/BRIDGE.mgmt` (what `ovs-ofctl
//! ... BRIDGE` connects to) and serves the targets of its `controller`
//! column (`tcp:`, `ptcp:`) through the `ofproto` crate. Fail modes as
//! OVS: a new bridge in `standalone` mode without controllers gets
//! `priority=0,actions=NORMAL`; in `standalone` mode with controllers of
//! which none has been connected for 5 s, a top-priority NORMAL rule
//! ("fail open", hidden from flow dumps) takes over until one connects;
//! `secure` mode never adds rules.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ofproto::bridge::{Bridge as OfBridge, PacketOut, PortInfo};
use ofproto::server::Services;
use ovsdb::{BridgeConfig, Datapath, InterfaceConfig, InterfaceState};
use switch::rule::{FlowFilter, RuleSpec};
use switch::switch::Switch;
use switch::verdict::{CONTROLLER_PORT, MAX_PORTS};

use super::controller::Channel;
use super::port_desc::PortDesc;
use super::ports::Ports;

/// OpenFlow 1.0's `OFPP_LOCAL`, the number OVSDB shows for a bridge's own
/// internal interface.
pub const OFPORT_LOCAL: u16 = 0xfffe;

/// The cookie of the fail-open rule (hidden from OpenFlow flow dumps).
pub const FAIL_OPEN_COOKIE: u64 = ofproto::FAIL_OPEN_COOKIE;
/// PORT_STATUS reasons (OpenFlow 1.3 `OFPPR_ADD`, `OFPPR_DELETE`).
const PORT_ADD: u8 = 0;
const PORT_DELETE: u8 = 1;

/// How long a standalone bridge waits for a controller before failing open.
const FAIL_OPEN_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Iface {
    /// Switch port number.
    no: u16,
    /// What OVSDB shows in `ofport`.
    ofport: u16,
    /// When it was created.
    since: Instant,
}

/// Interfaces by name; shared with the OpenFlow side's port view.
type Ifaces = Arc<Mutex<BTreeMap<String, Iface>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running bridge: its OVSDB configuration and its OpenFlow side.
struct Served {
    config: BridgeConfig,
    of: Arc<OfBridge>,
    services: Services,
    /// The packet-in dispatcher and its stop flag.
    dispatcher: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Since when no controller has been connected (with controllers set).
    alone_since: Option<Instant>,
    fail_open: bool,
}

#[derive(Default)]
struct State {
    /// The bridge this process serves (the first `netdev` bridge seen).
    bridge: Option<Served>,
    /// Why an `mtu_request` was not applied, by interface.
    mtu_errors: BTreeMap<String, String>,
    /// The EAL keys of `other_config` as first seen.
    system: Option<BTreeMap<String, String>>,
}

/// The OVSDB-managed bridge of a running switch.
pub struct Bridge {
    sw: Arc<Switch>,
    ports: Arc<Ports>,
    channel: Option<Arc<Channel>>,
    rundir: PathBuf,
    running: Arc<AtomicBool>,
    ifaces: Ifaces,
    state: Mutex<State>,
}

/// The OpenFlow side's view of the bridge's ports.
struct PortView {
    ports: Arc<Ports>,
    ifaces: Ifaces,
    channel: Option<Arc<Channel>>,
}

impl ofproto::bridge::Ports for PortView {
    fn ports(&self) -> Vec<PortInfo> {
        let ifaces: Vec<(String, Iface)> = lock(&self.ifaces)
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        ifaces
            .into_iter()
            .filter_map(|(name, i)| {
                let (id, link, mac) = self
                    .ports
                    .with_port(i.no, |p| (p.id(), p.link().ok(), p.mac().ok()))?;
                let st = self.ports.stats(i.no, id);
                Some(PortInfo {
                    no: i.no,
                    name,
                    mac: mac.unwrap_or_default(),
                    link_up: link.is_some_and(|l| l.up),
                    speed_mbps: link.map_or(0, |l| l.speed_mbps),
                    rx_packets: st.ipackets,
                    tx_packets: st.opackets,
                    rx_bytes: st.ibytes,
                    tx_bytes: st.obytes,
                    rx_dropped: st.imissed + st.rx_nombuf,
                    tx_dropped: self.ports.tx_drops.port_total(i.no),
                    rx_errors: st.ierrors,
                    tx_errors: st.oerrors,
                    age_secs: i.since.elapsed().as_secs() as u32,
                })
            })
            .collect()
    }

    fn local_port(&self) -> Option<u16> {
        lock(&self.ifaces)
            .values()
            .find(|i| i.ofport == OFPORT_LOCAL)
            .map(|i| i.no)
    }

    fn packet_out(&self, p: PacketOut) -> Result<(), String> {
        match &self.channel {
            Some(ch) => ch.packet_out(p),
            None => Err("no controller channel".into()),
        }
    }
}

/// A datapath id from the bridge name when OVSDB gives none (OVS derives
/// it from the bridge's MAC; any stable 48-bit value serves).
fn default_dpid(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h & 0x0000_feff_ffff_ffff) | 0x0000_0200_0000_0000
}

fn is_secure(c: &BridgeConfig) -> bool {
    c.fail_mode.as_deref() == Some("secure")
}

impl Bridge {
    /// A bridge over `ports` of switch `sw` (whose workers run while
    /// `running` is set); `dpdkvhostuser` and OpenFlow sockets go to `rundir`.
    pub fn new(
        sw: Arc<Switch>,
        ports: Arc<Ports>,
        rundir: PathBuf,
        running: Arc<AtomicBool>,
        channel: Option<Arc<Channel>>,
    ) -> Bridge {
        Bridge {
            sw,
            ports,
            channel,
            rundir,
            running,
            ifaces: Arc::default(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The OpenFlow targets of a bridge: its management socket and its
    /// controllers.
    fn targets(&self, c: &BridgeConfig) -> Vec<String> {
        let mut t = vec![format!(
            "punix:{}",
            self.rundir.join(format!("{}.mgmt", c.name)).display()
        )];
        t.extend(c.controllers.iter().cloned());
        t
    }

    /// Fail mode upkeep, called about twice a second: a standalone bridge
    /// whose controllers have all been gone for [`FAIL_OPEN_AFTER`] falls
    /// back to NORMAL until one connects.
    pub fn tick(&self) {
        let mut st = self.state();
        let Some(b) = st.bridge.as_mut() else { return };
        if b.config.controllers.is_empty() || is_secure(&b.config) {
            if b.fail_open {
                self.set_fail_open(b, false);
            }
            return;
        }
        let ctl: Vec<String> = b.config.controllers.clone();
        let connected = b.services.connected(|t| ctl.iter().any(|c| c == t)) > 0;
        if connected {
            b.alone_since = None;
            if b.fail_open {
                self.set_fail_open(b, false);
            }
        } else {
            let since = *b.alone_since.get_or_insert_with(Instant::now);
            if !b.fail_open && since.elapsed() >= FAIL_OPEN_AFTER {
                self.set_fail_open(b, true);
            }
        }
    }

    fn set_fail_open(&self, b: &mut Served, on: bool) {
        let now = self.sw.now_ms();
        let filter = FlowFilter {
            cookie: FAIL_OPEN_COOKIE,
            cookie_mask: u64::MAX,
            ..FlowFilter::all()
        };
        self.sw.table.delete(&filter, now);
        if on {
            let text =
                format!("table=0,priority=65535,cookie={FAIL_OPEN_COOKIE:#x},actions=NORMAL");
            let r: Result<RuleSpec, _> = text.parse();
            if let Ok(r) = r {
                let _ = self.sw.table.add(r, now);
            }
        }
        eprintln!(
            "vswitch: bridge {}: {}",
            b.config.name,
            if on {
                "no controller connected: failing open (NORMAL)"
            } else {
                "controller connected: fail-open rule removed"
            }
        );
        b.fail_open = on;
    }

    fn check_bridge(st: &State, bridge: &str) -> Result<(), String> {
        match &st.bridge {
            Some(b) if b.config.name == bridge => Ok(()),
            Some(b) => Err(format!(
                "this vswitch process serves bridge {} only (one flow table set); \
                 run another vswitch for bridge {bridge}",
                b.config.name
            )),
            None => Err(format!("bridge {bridge} is not configured")),
        }
    }

    /// The switch port number for a new interface: LOCAL takes 0 when
    /// free, `ofport_request` is taken as it is, else the lowest free
    /// number from 1.
    fn pick(&self, local: bool, request: Option<u16>) -> Result<u16, String> {
        let free = |n: u16| !self.ports.has(n);
        if let Some(r) = request {
            if !(1..CONTROLLER_PORT).contains(&r) {
                return Err(format!(
                    "ofport_request {r} is outside this switch's ports 1..={} \
                     ({CONTROLLER_PORT} is the controller channel)",
                    CONTROLLER_PORT - 1
                ));
            }
            return if free(r) {
                Ok(r)
            } else {
                Err(format!("ofport_request {r} is taken by another interface"))
            };
        }
        if local && free(0) {
            return Ok(0);
        }
        (1..CONTROLLER_PORT)
            .find(|n| free(*n))
            .ok_or_else(|| format!("the switch has its maximum of {MAX_PORTS} ports"))
    }
}

impl Datapath for Bridge {
    fn bridge_set(&self, br: &BridgeConfig) -> Result<(), String> {
        let mut st = self.state();
        if st.bridge.as_ref().is_some_and(|b| b.config.name != br.name) {
            return Self::check_bridge(&st, &br.name);
        }
        let dpid = br.datapath_id.unwrap_or_else(|| default_dpid(&br.name));
        let b = match st.bridge.as_mut() {
            Some(b) => {
                b.of.set_datapath_id(dpid);
                b.config = br.clone();
                b
            }
            None => {
                eprintln!("vswitch: serving bridge {} from OVSDB", br.name);
                let view = Arc::new(PortView {
                    ports: Arc::clone(&self.ports),
                    ifaces: Arc::clone(&self.ifaces),
                    channel: self.channel.clone(),
                });
                let of = Arc::new(OfBridge::new(&br.name, Arc::clone(&self.sw), view, dpid));
                // Rules that time out tell the controllers (send_flow_rem).
                let weak = Arc::downgrade(&of);
                self.sw.on_expired(Box::new(move |rules| {
                    if let Some(of) = weak.upgrade() {
                        of.flow_removed(rules);
                    }
                }));
                let dispatcher = match &self.channel {
                    Some(ch) => {
                        let stop = Arc::new(AtomicBool::new(false));
                        let t = ch.spawn_dispatcher(
                            Arc::clone(&of),
                            Arc::clone(&self.ports),
                            Arc::clone(&stop),
                        )?;
                        Some((stop, t))
                    }
                    None => None,
                };
                // A new standalone bridge without controllers is a learning
                // switch, as in OVS.
                if br.controllers.is_empty() && !is_secure(br) {
                    self.sw.default_to_normal();
                }
                st.bridge.insert(Served {
                    config: br.clone(),
                    of,
                    services: Services::default(),
                    dispatcher,
                    alone_since: None,
                    fail_open: false,
                })
            }
        };
        b.of.set_protocols(&br.protocols);
        let errors = b.services.set(&b.of, &self.targets(br));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn bridge_del(&self, name: &str) {
        let mut st = self.state();
        if st.bridge.as_ref().is_some_and(|b| b.config.name == name) {
            eprintln!("vswitch: bridge {name} removed from OVSDB");
            self.sw.on_expired(Box::new(|_| {}));
            if let Some(b) = st.bridge.take() {
                b.services.clear();
                if let Some((stop, t)) = b.dispatcher {
                    stop.store(true, Ordering::Relaxed);
                    let _ = t.join();
                }
            }
            // The bridge's flows and groups go with it.
            let now = self.sw.now_ms();
            self.sw.table.delete(&FlowFilter::all(), now);
            self.sw.group_del(None);
        }
    }

    fn datapath_id(&self, bridge: &str) -> Option<u64> {
        let st = self.state();
        st.bridge
            .as_ref()
            .filter(|b| b.config.name == bridge)
            .map(|b| b.of.datapath_id())
    }

    fn dpdk_version(&self) -> Option<String> {
        Some(format!("DPDK {}", dpdk::runtime_version()))
    }

    fn system_config(&self, other_config: &BTreeMap<String, String>) -> Vec<String> {
        // The EAL keys were read once at start (see ovs_eal.rs); a change
        // needs a restart, as in OVS.
        let mut st = self.state();
        let now: BTreeMap<String, String> = other_config
            .iter()
            .filter(|(k, _)| super::ovs_eal::KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let first = st.system.get_or_insert_with(|| now.clone());
        super::ovs_eal::KEYS
            .iter()
            .filter(|k| first.get(**k) != now.get(**k))
            .map(|k| k.to_string())
            .collect()
    }

    fn iface_types(&self) -> Vec<String> {
        [
            "dpdk",
            "dpdkvhostuser",
            "dpdkvhostuserclient",
            "internal",
            "system",
            "tap",
            "vxlan",
            "geneve",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn iface_add(&self, bridge: &str, iface: &InterfaceConfig) -> Result<u16, String> {
        let local = {
            let st = self.state();
            Self::check_bridge(&st, bridge)?;
            if lock(&self.ifaces).contains_key(&iface.name) {
                return Err(format!("interface {} exists", iface.name));
            }
            iface.kind == "internal" && iface.name == bridge
        };
        let desc = PortDesc::from_ovs(&iface.name, &iface.kind, &iface.options, &self.rundir)?;
        if let PortDesc::VhostUserServer { path, .. } = &desc {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
        }
        let no = self.pick(local, iface.ofport_request)?;
        // mtu_request becomes the port's `mtu=` (its pool, the driver's
        // MTU); one that cannot be applied leaves the port at its default
        // MTU with `status:mtu_error`, as in OVS.
        let mut mtu_error = None;
        let no = match iface.mtu_request {
            Some(mtu) => match self
                .ports
                .add(&format!("{},mtu={mtu}", desc.devargs()), Some(no))
            {
                Ok(no) => no,
                Err(e) => {
                    eprintln!("vswitch: interface {}: mtu_request {mtu}: {e}", iface.name);
                    mtu_error = Some(e);
                    self.ports.add(&desc.devargs(), Some(no))?
                }
            },
            None => self.ports.add(&desc.devargs(), Some(no))?,
        };
        let mut st = self.state();
        st.mtu_errors.remove(&iface.name);
        if let Some(e) = mtu_error {
            st.mtu_errors.insert(iface.name.clone(), e);
        }
        let ofport = if local { OFPORT_LOCAL } else { no };
        let of = st.bridge.as_ref().map(|b| Arc::clone(&b.of));
        lock(&self.ifaces).insert(
            iface.name.clone(),
            Iface {
                no,
                ofport,
                since: Instant::now(),
            },
        );
        drop(st);
        eprintln!(
            "vswitch: interface {} ({}) is port {no}{}",
            iface.name,
            desc.devargs(),
            if local { " (LOCAL)" } else { "" }
        );
        if let Some(of) = of {
            if let Some(p) = of.ports().into_iter().find(|p| p.no == no) {
                of.port_status(PORT_ADD, &p);
            }
        }
        Ok(ofport)
    }

    fn iface_del(&self, bridge: &str, name: &str, _ofport: u16) -> Result<(), String> {
        let it = {
            let mut st = self.state();
            Self::check_bridge(&st, bridge)?;
            st.mtu_errors.remove(name);
            lock(&self.ifaces)
                .remove(name)
                .ok_or_else(|| format!("no interface {name}"))?
        };
        self.ports
            .del(it.no, self.running.load(Ordering::Acquire))?;
        eprintln!("vswitch: interface {name} (port {}) removed", it.no);
        let of = self.state().bridge.as_ref().map(|b| Arc::clone(&b.of));
        if let Some(of) = of {
            let gone = PortInfo {
                no: it.no,
                name: name.to_owned(),
                ..PortInfo::default()
            };
            of.port_status(PORT_DELETE, &gone);
        }
        Ok(())
    }

    fn iface_state(&self, _bridge: &str, ofport: u16) -> Option<InterfaceState> {
        let (no, name) = {
            let ifaces = lock(&self.ifaces);
            let (name, i) = ifaces.iter().find(|(_, i)| i.ofport == ofport)?;
            (i.no, name.clone())
        };
        let (id, link, mac) = self
            .ports
            .with_port(no, |p| (p.id(), p.link().ok(), p.mac().ok()))?;
        let mtu = self.ports.mtu(no);
        let st = self.ports.stats(no, id);
        let mut statistics = BTreeMap::new();
        for (k, v) in [
            ("rx_packets", st.ipackets),
            ("rx_bytes", st.ibytes),
            ("tx_packets", st.opackets),
            ("tx_bytes", st.obytes),
            ("rx_dropped", st.imissed + st.rx_nombuf),
            ("rx_errors", st.ierrors),
            ("tx_dropped", self.ports.tx_drops.port_total(no)),
            ("tx_errors", st.oerrors),
        ] {
            statistics.insert(k.to_string(), v);
        }
        let mut status = BTreeMap::new();
        status.insert("port_no".to_string(), no.to_string());
        if let Some(l) = link {
            status.insert("link_speed".to_string(), format!("{}Mbps", l.speed_mbps));
        }
        if let Some(e) = self.state().mtu_errors.get(&name) {
            status.insert("mtu_error".to_string(), e.clone());
        }
        Some(InterfaceState {
            admin_up: true,
            link_up: link.is_some_and(|l| l.up),
            mtu: mtu.map(u32::from),
            mac,
            statistics,
            status,
        })
    }
}
