//! One OpenFlow bridge: the switch it programs, its datapath id, its
//! switch configuration, and what it asks of the process that runs its
//! ports ([`Ports`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openflow::switch_config::SwitchConfig;
use switch::switch::Switch;

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

/// What the bridge needs from the process that runs its ports.
pub trait Ports: Send + Sync {
    /// The bridge's ports now.
    fn ports(&self) -> Vec<PortInfo>;
    /// The switch port that is the bridge's `LOCAL` port, if any.
    fn local_port(&self) -> Option<u16>;
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
}

impl Bridge {
    /// A bridge named `name` over `sw`, with datapath id `datapath_id`.
    pub fn new(name: &str, sw: Arc<Switch>, ports: Arc<dyn Ports>, datapath_id: u64) -> Bridge {
        Bridge {
            name: name.to_owned(),
            sw,
            ports,
            datapath_id: AtomicU64::new(datapath_id),
            config: Mutex::new(SwitchConfig {
                // The switch matches L4 ports of first fragments and none of
                // later ones: OVS's "nx-match" mode.
                flags: 3,
                ..SwitchConfig::default()
            }),
            started: Instant::now(),
        }
    }

    /// The datapath id.
    pub fn datapath_id(&self) -> u64 {
        self.datapath_id.load(Ordering::Relaxed)
    }

    /// Changes the datapath id (`other_config:datapath-id`).
    pub fn set_datapath_id(&self, id: u64) {
        self.datapath_id.store(id, Ordering::Relaxed);
    }

    /// The switch configuration (fragment handling, miss_send_len).
    pub fn config(&self) -> SwitchConfig {
        *self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the switch configuration.
    pub fn set_config(&self, c: SwitchConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = c;
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
}
