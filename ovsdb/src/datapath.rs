//! The interface between the reconciler and the switch process: the
//! [`Datapath`] trait and the configurations it is handed.

use std::collections::BTreeMap;

/// What the reconciler drives: the switch process implements this.
///
/// Calls come from the reconciler's single thread, one at a time.
pub trait Datapath: Send + Sync + 'static {
    /// A bridge appeared or its configuration changed.
    fn bridge_set(&self, br: &BridgeConfig) -> Result<(), String>;
    /// A bridge went away (its interfaces were already removed with iface_del).
    fn bridge_del(&self, name: &str);
    /// Creates an interface on a bridge; returns its OpenFlow port number.
    ///
    /// The bridge's own port (`kind == "internal"`, same name as the bridge,
    /// created by `ovs-vsctl add-br`) comes through here too; `ovs-vswitchd`
    /// numbers it 65534 (`LOCAL`). `ovs-vsctl` reports an error for any
    /// interface it added that ends up without an `ofport`.
    fn iface_add(&self, bridge: &str, iface: &InterfaceConfig) -> Result<u16, String>;
    /// Removes an interface created by iface_add.
    fn iface_del(&self, bridge: &str, name: &str, ofport: u16) -> Result<(), String>;
    /// Current state and counters of an interface, for the write-back.
    fn iface_state(&self, bridge: &str, ofport: u16) -> Option<InterfaceState>;
    /// The Open_vSwitch row's other_config (pmd-cpu-mask, dpdk-extra, ...): returns
    /// the keys it could not apply at run time (logged once).
    fn system_config(&self, other_config: &BTreeMap<String, String>) -> Vec<String> {
        let _ = other_config;
        Vec::new()
    }
    /// The interface types this datapath can create, written to the
    /// `Open_vSwitch` row's `iface_types` (informational; empty = not written).
    fn iface_types(&self) -> Vec<String> {
        Vec::new()
    }
    /// The datapath ID a bridge uses, written to its `Bridge` row's
    /// `datapath_id` as 16 hex digits, as `ovs-vswitchd` does (`None` = not written).
    fn datapath_id(&self, bridge: &str) -> Option<u64> {
        let _ = bridge;
        None
    }
    /// The DPDK version string, written to `Open_vSwitch` `dpdk_version`
    /// (informational; `None` = not written).
    fn dpdk_version(&self) -> Option<String> {
        None
    }
}

/// A bridge's configuration, from its `Bridge` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Bridge name.
    pub name: String,
    /// Always `netdev` (other bridges are not handed to the datapath).
    pub datapath_type: String,
    /// `standalone` or `secure`, if set.
    pub fail_mode: Option<String>,
    /// Controller targets (`tcp:IP:PORT`, ...), sorted.
    pub controllers: Vec<String>,
    /// Allowed OpenFlow versions (`OpenFlow13`, ...), sorted.
    pub protocols: Vec<String>,
    /// The row's other_config.
    pub other_config: BTreeMap<String, String>,
    /// other_config:datapath-id (16 hex digits), if present and valid.
    pub datapath_id: Option<u64>,
}

/// An interface's configuration, from its `Interface` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Interface name.
    pub name: String,
    /// The `type` column, "" = system.
    pub kind: String,
    /// Type-specific options (`dpdk-devargs`, `vhost-server-path`, ...).
    pub options: BTreeMap<String, String>,
    /// Requested OpenFlow port number.
    pub ofport_request: Option<u16>,
    /// Requested MTU.
    pub mtu_request: Option<u32>,
}

/// An interface's state and counters, written back to its `Interface` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceState {
    /// Administratively up (`admin_state`).
    pub admin_up: bool,
    /// Carrier up (`link_state`).
    pub link_up: bool,
    /// MTU in use (`mtu`).
    pub mtu: Option<u32>,
    /// MAC address in use (`mac_in_use`).
    pub mac: Option<[u8; 6]>,
    /// Counters (`statistics`) under OVS's key names: rx_packets rx_bytes
    /// tx_packets tx_bytes rx_dropped tx_dropped rx_errors tx_errors.
    pub statistics: BTreeMap<String, u64>,
    /// Driver-specific status (`status`).
    pub status: BTreeMap<String, String>,
}
