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
//! number (1..=63, `ofport_request` honoured), so `in_port=1` means the
//! same port to `ovs-ofctl`, `vswitch flows` and the datapath. The bridge's
//! own internal interface (named like the bridge) is OpenFlow's `LOCAL`
//! (OVSDB shows 65534, as OVS does) and takes switch port 0 when free.
//!
//! One process serves one bridge: the switch has one flow table set. A
//! second `netdev` bridge's interfaces get an `error` saying so.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ovsdb::{BridgeConfig, Datapath, InterfaceConfig, InterfaceState};
use switch::verdict::MAX_PORTS;

use super::port_desc::PortDesc;
use super::ports::Ports;

/// OpenFlow 1.0's `OFPP_LOCAL`, the number OVSDB shows for a bridge's own
/// internal interface.
pub const OFPORT_LOCAL: u16 = 0xfffe;

#[derive(Debug, Clone, Copy)]
struct Iface {
    /// Switch port number.
    no: u16,
    /// What OVSDB shows in `ofport`.
    ofport: u16,
}

#[derive(Default)]
struct State {
    /// The bridge this process serves (the first `netdev` bridge seen).
    bridge: Option<BridgeConfig>,
    /// Interfaces by name.
    ifaces: BTreeMap<String, Iface>,
    /// Why an `mtu_request` was not applied, by interface.
    mtu_errors: BTreeMap<String, String>,
}

/// The OVSDB-managed bridge of a running switch.
pub struct Bridge {
    ports: Arc<Ports>,
    rundir: PathBuf,
    running: Arc<AtomicBool>,
    state: Mutex<State>,
}

impl Bridge {
    /// A bridge over `ports` (whose workers run while `running` is set);
    /// `dpdkvhostuser` sockets go to `rundir`.
    pub fn new(ports: Arc<Ports>, rundir: PathBuf, running: Arc<AtomicBool>) -> Bridge {
        Bridge {
            ports,
            rundir,
            running,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bridge's configuration as OVSDB last gave it.
    pub fn config(&self) -> Option<BridgeConfig> {
        self.state().bridge.clone()
    }

    /// The switch port number behind an OVSDB `ofport`.
    pub fn port_of(&self, ofport: u16) -> Option<u16> {
        self.state()
            .ifaces
            .values()
            .find(|i| i.ofport == ofport)
            .map(|i| i.no)
    }

    fn check_bridge(st: &State, bridge: &str) -> Result<(), String> {
        match &st.bridge {
            Some(b) if b.name == bridge => Ok(()),
            Some(b) => Err(format!(
                "this vswitch process serves bridge {} only (one flow table set); \
                 run another vswitch for bridge {bridge}",
                b.name
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
            if !(1..MAX_PORTS).contains(&r) {
                return Err(format!(
                    "ofport_request {r} is outside this switch's ports 1..={}",
                    MAX_PORTS - 1
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
        (1..MAX_PORTS)
            .find(|n| free(*n))
            .ok_or_else(|| format!("the switch has its maximum of {MAX_PORTS} ports"))
    }
}

impl Datapath for Bridge {
    fn bridge_set(&self, br: &BridgeConfig) -> Result<(), String> {
        let mut st = self.state();
        match &st.bridge {
            Some(b) if b.name != br.name => Self::check_bridge(&st, &br.name),
            _ => {
                if st.bridge.is_none() {
                    eprintln!("vswitch: serving bridge {} from OVSDB", br.name);
                }
                st.bridge = Some(br.clone());
                Ok(())
            }
        }
    }

    fn bridge_del(&self, name: &str) {
        let mut st = self.state();
        if st.bridge.as_ref().is_some_and(|b| b.name == name) {
            eprintln!("vswitch: bridge {name} removed from OVSDB");
            st.bridge = None;
        }
    }

    fn iface_add(&self, bridge: &str, iface: &InterfaceConfig) -> Result<u16, String> {
        let local = {
            let st = self.state();
            Self::check_bridge(&st, bridge)?;
            if st.ifaces.contains_key(&iface.name) {
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
        let no = self.ports.add(&desc.devargs(), Some(no))?;
        let mut st = self.state();
        st.mtu_errors.remove(&iface.name);
        if let Some(mtu) = iface.mtu_request {
            let res = u16::try_from(mtu)
                .map_err(|_| format!("mtu_request {mtu} is too large"))
                .and_then(|m| {
                    self.ports
                        .with_port(no, |p| p.set_mtu(m).map_err(|e| e.to_string()))
                        .unwrap_or(Ok(()))
                });
            if let Err(e) = res {
                eprintln!("vswitch: interface {}: mtu_request {mtu}: {e}", iface.name);
                st.mtu_errors.insert(iface.name.clone(), e);
            }
        }
        let ofport = if local { OFPORT_LOCAL } else { no };
        st.ifaces.insert(iface.name.clone(), Iface { no, ofport });
        eprintln!(
            "vswitch: interface {} ({}) is port {no}{}",
            iface.name,
            desc.devargs(),
            if local { " (LOCAL)" } else { "" }
        );
        Ok(ofport)
    }

    fn iface_del(&self, bridge: &str, name: &str, _ofport: u16) -> Result<(), String> {
        let it = {
            let mut st = self.state();
            Self::check_bridge(&st, bridge)?;
            st.mtu_errors.remove(name);
            st.ifaces
                .remove(name)
                .ok_or_else(|| format!("no interface {name}"))?
        };
        self.ports
            .del(it.no, self.running.load(Ordering::Acquire))?;
        eprintln!("vswitch: interface {name} (port {}) removed", it.no);
        Ok(())
    }

    fn iface_state(&self, _bridge: &str, ofport: u16) -> Option<InterfaceState> {
        let (no, name) = {
            let st = self.state();
            let (name, i) = st.ifaces.iter().find(|(_, i)| i.ofport == ofport)?;
            (i.no, name.clone())
        };
        let (id, link, mtu, mac) = self
            .ports
            .with_port(no, |p| (p.id(), p.link().ok(), p.mtu().ok(), p.mac().ok()))?;
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
