//! One OpenFlow bridge: the switch it programs, its datapath id, its
//! switch configuration, and what it asks of the process that runs its
//! ports ([`Ports`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openflow::flow_removed::FlowRemoved;
use openflow::message::Message;
use openflow::oxm::{Field, OxmField};
use openflow::packet_in::PacketIn;
use openflow::port::PortStatus;
use openflow::switch_config::{flags as frag, SwitchConfig};
use switch::switch::Switch;
use switch::table::FragMode;
use switch::table::{RemovalReason, RuleInfo};

use crate::port_map::PortMap;

/// One port as the bridge reports it (`OFPMP_PORT_DESC`, `OFPMP_PORT_STATS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// Switch port number.
    pub no: u16,
    /// Interface name.
    pub name: String,
    /// MAC address.
    pub mac: [u8; 6],
    /// Link up.
    pub link_up: bool,
    /// Link speed in Mbit/s (0: unknown).
    pub speed_mbps: u32,
    /// Frames received.
    pub rx_packets: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames dropped on receive.
    pub rx_dropped: u64,
    /// Frames dropped on transmit.
    pub tx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Seconds the port has existed.
    pub age_secs: u32,
}

/// What a PACKET_OUT asks for, once translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    /// The switch port the frame counts as received on (`None`: the
    /// controller, OpenFlow's `OFPP_CONTROLLER`).
    pub in_port: Option<u16>,
    /// The actions to run on it; `None` runs it through the flow tables
    /// (an output to `OFPP_TABLE`).
    pub actions: Option<Vec<switch::action::Action>>,
    /// The frame.
    pub data: Vec<u8>,
}

/// What the bridge needs from the process that runs its ports.
pub trait Ports: Send + Sync {
    /// The bridge's ports now.
    fn ports(&self) -> Vec<PortInfo>;
    /// The switch port that is the bridge's `LOCAL` port, if any.
    fn local_port(&self) -> Option<u16>;
    /// Sends a controller's frame (PACKET_OUT) through the datapath.
    fn packet_out(&self, p: PacketOut) -> Result<(), String> {
        let _ = p;
        Err("this datapath has no controller channel".into())
    }
}

/// A controller connection's side for asynchronous messages (packet-in):
/// the writing half of its socket, shared with the connection's replies.
pub struct AsyncPeer {
    /// The socket's writing half.
    pub writer: Mutex<Box<dyn Write + Send>>,
    /// HELLOs were exchanged (nothing asynchronous is sent before).
    pub ready: AtomicBool,
    /// The peer is gone.
    pub closed: AtomicBool,
}

/// An OpenFlow bridge over a switch.
pub struct Bridge {
    /// Bridge name (`br0`).
    pub name: String,
    /// The switch it programs.
    pub sw: Arc<Switch>,
    ports: Arc<dyn Ports>,
    datapath_id: AtomicU64,
    config: Mutex<SwitchConfig>,
    started: Instant,
    peers: Mutex<Vec<Arc<AsyncPeer>>>,
    packet_ins: AtomicU64,
    versions: AtomicU32,
    /// When a modify last changed a rule (rule id → ms), for the hard age
    /// NXST_FLOW reports.
    pub(crate) modified: Mutex<std::collections::HashMap<u64, u64>>,
}

/// The OpenFlow versions this switch speaks, as a HELLO bitmap: 1.0 (0x01)
/// and 1.3 (0x04).
pub const SUPPORTED_VERSIONS: u32 = 1 << 0x01 | 1 << 0x04;

/// The version bitmap of an OVSDB `Bridge.protocols` column
/// (`OpenFlow10` .. `OpenFlow15`) restricted to [`SUPPORTED_VERSIONS`]; an
/// empty column allows every version (`vswitchd/vswitch.xml`: "OpenFlow
/// 1.0, 1.1, 1.2, 1.3, 1.4, and 1.5 are enabled by default if this column
/// is empty"), so here 1.0 and 1.3.
pub fn protocols_bitmap(protocols: &[String]) -> u32 {
    if protocols.is_empty() {
        return SUPPORTED_VERSIONS;
    }
    protocols
        .iter()
        .filter_map(|p| p.strip_prefix("OpenFlow1"))
        .filter_map(|n| n.parse::<u32>().ok())
        .filter(|n| *n <= 5)
        .fold(0, |bm, n| bm | 1 << (n + 1))
        & SUPPORTED_VERSIONS
}

impl Bridge {
    /// A bridge named `name` over `sw`, with datapath id `datapath_id`.
    pub fn new(name: &str, sw: Arc<Switch>, ports: Arc<dyn Ports>, datapath_id: u64) -> Bridge {
        Bridge {
            name: name.to_owned(),
            sw,
            ports,
            datapath_id: AtomicU64::new(datapath_id),
            config: Mutex::new(SwitchConfig::default()),
            started: Instant::now(),
            peers: Mutex::new(Vec::new()),
            packet_ins: AtomicU64::new(0),
            versions: AtomicU32::new(SUPPORTED_VERSIONS),
            modified: Mutex::new(Default::default()),
        }
    }

    /// The OpenFlow versions connections may negotiate (a HELLO bitmap).
    pub fn versions(&self) -> u32 {
        self.versions.load(Ordering::Relaxed)
    }

    /// Sets the versions from the OVSDB `protocols` column
    /// ([`protocols_bitmap`]); new connections negotiate with them.
    pub fn set_protocols(&self, protocols: &[String]) {
        self.versions
            .store(protocols_bitmap(protocols), Ordering::Relaxed);
    }

    /// The datapath id.
    pub fn datapath_id(&self) -> u64 {
        self.datapath_id.load(Ordering::Relaxed)
    }

    /// Changes the datapath id (`other_config:datapath-id`).
    pub fn set_datapath_id(&self, id: u64) {
        self.datapath_id.store(id, Ordering::Relaxed);
    }

    /// The switch configuration: the switch's fragment handling and the
    /// miss_send_len last set.
    pub fn config(&self) -> SwitchConfig {
        let mut c = *self.config.lock().unwrap_or_else(|e| e.into_inner());
        c.flags = (c.flags & !frag::FRAG_MASK)
            | match self.sw.table.snapshot().frag_mode {
                FragMode::Normal => frag::FRAG_NORMAL,
                FragMode::Drop => frag::FRAG_DROP,
                FragMode::NxMatch => frag::FRAG_MASK,
            };
        c
    }

    /// Sets the switch configuration (OpenFlow 1.3 §7.3.2). Fragment
    /// reassembly (`OFPC_FRAG_REASM`) is refused: the switch does not
    /// reassemble.
    pub fn set_config(&self, c: SwitchConfig) -> Result<(), String> {
        let mode = match c.flags & frag::FRAG_MASK {
            frag::FRAG_NORMAL => FragMode::Normal,
            frag::FRAG_DROP => FragMode::Drop,
            frag::FRAG_MASK => FragMode::NxMatch,
            _ => return Err("fragment reassembly is not supported".into()),
        };
        if self.sw.table.snapshot().frag_mode != mode {
            self.sw.table.set_frag_mode(mode);
        }
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = c;
        Ok(())
    }

    /// The current port numbering.
    pub fn port_map(&self) -> PortMap {
        PortMap::new(self.ports.local_port())
    }

    /// The ports now.
    pub fn ports(&self) -> Vec<PortInfo> {
        self.ports.ports()
    }

    /// Milliseconds on the switch's clock (rule ages).
    pub fn now_ms(&self) -> u64 {
        self.sw.now_ms()
    }

    /// When the bridge was created.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Sends a controller's frame through the datapath.
    pub fn packet_out(&self, p: PacketOut) -> Result<(), String> {
        self.ports.packet_out(p)
    }

    /// Registers a controller connection for asynchronous messages.
    pub fn add_peer(&self, p: Arc<AsyncPeer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|p| !p.closed.load(Ordering::Relaxed));
        peers.push(p);
    }

    /// Packet-ins sent so far (each counted once, whatever the number of
    /// controllers).
    pub fn packet_ins(&self) -> u64 {
        self.packet_ins.load(Ordering::Relaxed)
    }

    /// Writes `msg` to every connected controller; returns how many.
    fn broadcast(&self, msg: &Message) -> usize {
        let Ok(bytes) = msg.to_vec(0) else {
            return 0;
        };
        let peers: Vec<Arc<AsyncPeer>> = {
            let mut p = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            p.retain(|p| !p.closed.load(Ordering::Relaxed));
            p.clone()
        };
        let mut sent = 0;
        for p in peers.iter().filter(|p| p.ready.load(Ordering::Relaxed)) {
            let mut w = p.writer.lock().unwrap_or_else(|e| e.into_inner());
            if w.write_all(&bytes).is_ok() {
                sent += 1;
            } else {
                p.closed.store(true, Ordering::Relaxed);
            }
        }
        sent
    }

    /// Sends a frame that reached the controller channel to every
    /// connected controller as a PACKET_IN (OpenFlow 1.3 §7.4.1): unbuffered,
    /// the whole frame, its ingress port in the match. Returns how many
    /// controllers it went to.
    pub fn packet_in(&self, in_port: Option<u16>, frame: &[u8]) -> usize {
        let map = self.port_map();
        let port = in_port.map_or(crate::port_map::OFPP_CONTROLLER, |p| map.to_openflow(p));
        let sent = self.broadcast(&Message::PacketIn(PacketIn {
            buffer_id: 0xffff_ffff,
            total_len: frame.len().min(usize::from(u16::MAX)) as u16,
            reason: openflow::packet_in::reason::ACTION,
            table_id: 0,
            cookie: u64::MAX,
            matching: openflow::Match {
                fields: vec![OxmField::exact(Field::InPort, &port.to_be_bytes())],
            },
            data: frame.to_vec(),
        }));
        if sent > 0 {
            self.packet_ins.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Tells the controllers a port appeared, went or changed (PORT_STATUS,
    /// OpenFlow 1.3 §7.4.3; `reason` 0 add, 1 delete, 2 modify).
    pub fn port_status(&self, reason: u8, port: &PortInfo) {
        let desc = crate::multipart::of_port(port, &self.port_map());
        self.broadcast(&Message::PortStatus(PortStatus { reason, desc }));
    }

    /// Sends FLOW_REMOVED (OpenFlow 1.3 §7.4.2) for the removed rules that
    /// asked for it (`send_flow_rem`).
    pub fn flow_removed(&self, rules: &[RuleInfo]) {
        let map = self.port_map();
        for r in rules.iter().filter(|r| r.send_flow_rem) {
            let reason = match r.removed {
                Some(RemovalReason::IdleTimeout) => 0,
                Some(RemovalReason::HardTimeout) => 1,
                Some(RemovalReason::GroupDelete) => 3,
                _ => 2,
            };
            self.broadcast(&Message::FlowRemoved(FlowRemoved {
                cookie: r.cookie,
                priority: r.priority,
                reason,
                table_id: r.table,
                duration_sec: (r.duration_ms / 1000) as u32,
                duration_nsec: ((r.duration_ms % 1000) * 1_000_000) as u32,
                idle_timeout: r.idle_timeout,
                hard_timeout: r.hard_timeout,
                packet_count: r.packets,
                byte_count: r.bytes,
                matching: openflow::Match {
                    fields: crate::flow_match::from_switch(&r.matcher, &map),
                },
            }));
        }
    }
}
