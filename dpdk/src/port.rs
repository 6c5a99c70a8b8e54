//! Ethernet ports (`rte_ethdev`): probing by devargs, configuration, queues,
//! start/stop, link, statistics.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::burst::{Burst, BURST_SIZE};
use crate::error::{Error, Result};
use crate::mempool::Mempool;
use crate::vhost::VhostLink;

/// Queue and descriptor counts for [`Port::configure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue (clamped to the device's limits).
    pub rx_desc: u16,
    /// Descriptors per transmit queue (clamped to the device's limits).
    pub tx_desc: u16,
    /// Put the port in promiscuous mode.
    pub promiscuous: bool,
    /// Spread received flows over the rx queues with RSS (on devices that
    /// offer it; every hash type the device supports).
    pub rss: bool,
    /// Receive offloads to enable (`RTE_ETH_RX_OFFLOAD_*`, e.g.
    /// [`crate::offload::RX_OFFLOAD_TCP_CKSUM`]), masked by what the device
    /// offers. On a vhost-user port, checksum offloads make guests' partial
    /// checksums and large TCP segments arrive flagged
    /// ([`crate::offload::RX_OFFLOAD_MASK`]) instead of completed by the
    /// PMD, and the port's transmit capabilities then follow the guest
    /// ([`crate::offload::tx_caps`]).
    pub rx_offloads: u64,
    /// Transmit offloads to enable (`RTE_ETH_TX_OFFLOAD_*`), masked by what
    /// the device offers.
    pub tx_offloads: u64,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
            rss: true,
            rx_offloads: 0,
            tx_offloads: 0,
        }
    }
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Whether the link is up.
    pub up: bool,
    /// Speed in Mbps (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the hardware because no rx descriptor was free.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive mbuf allocation failures.
    pub rx_nombuf: u64,
    /// Packets received per rx queue (the first [`QUEUE_STAT_COUNTERS`]
    /// queues, on drivers that count per queue).
    pub q_ipackets: [u64; QUEUE_STAT_COUNTERS],
    /// Packets sent per tx queue (as `q_ipackets`).
    pub q_opackets: [u64; QUEUE_STAT_COUNTERS],
}

/// `RTE_ETH_RX_OFFLOAD_VLAN_STRIP` (a function-like macro bindgen cannot
/// read).
const RX_OFFLOAD_VLAN_STRIP: u64 = 1 << 0;

/// Queues with their own counters in [`PortStats`]
/// (`RTE_ETHDEV_QUEUE_STAT_CNTRS`).
pub const QUEUE_STAT_COUNTERS: usize = dpdk_sys::RTE_ETHDEV_QUEUE_STAT_CNTRS as usize;

/// An Ethernet port. Closed (and, for devices this process probed,
/// detached) on drop.
pub struct Port {
    id: u16,
    name: String,
    probed_here: bool,
    configured: Option<PortConfig>,
    started: bool,
    /// Offload capabilities follow this vhost port's guest
    /// ([`crate::offload`]).
    watched: bool,
    /// A `net_vhost` port's queues call the vhost library directly
    /// ([`crate::vhost`]).
    vhost: Option<Arc<VhostLink>>,
    rx_taken: Vec<bool>,
    tx_taken: Vec<bool>,
    /// The rings of a ring port (dropped after the port is closed, and
    /// before the pool: a ring frees the mbufs it still holds).
    _rings: Vec<Arc<crate::MbufRing>>,
    _pool: Option<Arc<Mempool>>,
}

/// The device name of a devargs string: what comes before the first comma
/// (`net_pcap0,rx_pcap=a.pcap` → `net_pcap0`, `0000:01:00.0` → itself).
pub fn devargs_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or("").trim()
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{what} {s:?} contains a NUL byte")))
}

impl Port {
    /// Finds a port the EAL already created (from `--vdev` or a PCI scan).
    pub fn by_name(name: &str) -> Result<Port> {
        let cname = cstring("port name", name)?;
        let mut id = 0u16;
        // SAFETY: valid C string and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(Error::call(
                "rte_eth_dev_get_port_by_name",
                rc,
                format!("no port named {name:?}"),
            ));
        }
        Ok(Self::wrap(id, name.to_owned(), false))
    }

    /// Probes a device from devargs (`net_null0`, `net_pcap0,rx_pcap=f`,
    /// `0000:01:00.0`, ...) and returns its port; a port already present by
    /// that name is an error (each port is owned once).
    pub fn probe(devargs: &str) -> Result<Port> {
        let name = devargs_name(devargs);
        if name.is_empty() {
            return Err(Error::Invalid(format!(
                "empty device name in devargs {devargs:?}"
            )));
        }
        let cname = cstring("port name", name)?;
        let mut id = 0u16;
        // SAFETY: valid C string and out-pointer.
        if unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) } == 0 {
            return Err(Error::Invalid(format!(
                "port {name:?} is given twice (each device can be one port only; \
                 number virtual devices: net_null0, net_null1, ...)"
            )));
        }
        let cargs = cstring("devargs", devargs)?;
        // SAFETY: valid C string; the EAL is initialised (else it fails).
        let rc = unsafe { dpdk_sys::rte_dev_probe(cargs.as_ptr()) };
        if rc != 0 {
            let hint = if name.starts_with("net_") {
                let driver = name.trim_end_matches(|c: char| c.is_ascii_digit());
                format!(
                    "could not create {name:?}: check the devargs (files exist, keys are right) \
                     and that the {driver} PMD is installed in {}",
                    crate::pmd_dir()
                )
            } else {
                format!(
                    "could not probe {name:?}: is the NIC bound to vfio-pci \
                     (dpdk-devbind.py -b vfio-pci {name}) and not excluded by --no-pci?"
                )
            };
            return Err(Error::call("rte_dev_probe", rc, hint));
        }
        // SAFETY: as above.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(Error::call(
                "rte_eth_dev_get_port_by_name",
                rc,
                format!("device {name:?} was probed but is not an Ethernet port"),
            ));
        }
        Ok(Self::wrap(id, name.to_owned(), true))
    }

    /// Creates a port over rings (DPDK's ring PMD, `rte_eth_from_rings`):
    /// rx queue `i` dequeues from `rx[i]`, tx queue `i` enqueues to `tx[i]`.
    /// Two such ports with their rings crossed are an in-process link (what
    /// OVS calls an internal port). `name` must start with `net_ring` (the
    /// vdev bus finds the driver by that prefix). The port keeps its rings.
    pub fn from_rings(
        name: &str,
        rx: &[Arc<crate::MbufRing>],
        tx: &[Arc<crate::MbufRing>],
    ) -> Result<Port> {
        if !name.starts_with("net_ring") {
            return Err(Error::Invalid(format!(
                "ring port name {name:?} must start with net_ring"
            )));
        }
        if rx.is_empty() || tx.is_empty() {
            return Err(Error::Invalid(
                "a ring port needs at least one rx and one tx ring".into(),
            ));
        }
        let cname = cstring("port name", name)?;
        let rxp: Vec<*mut dpdk_sys::rte_ring> = rx.iter().map(|r| r.as_ptr()).collect();
        let txp: Vec<*mut dpdk_sys::rte_ring> = tx.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: valid C string; the ring pointer arrays are valid for the
        // call and the rings outlive the port (it holds their Arcs).
        let rc = unsafe {
            dpdk_sys::rte_eth_from_rings(
                cname.as_ptr(),
                rxp.as_ptr(),
                rxp.len() as u32,
                txp.as_ptr(),
                txp.len() as u32,
                0,
            )
        };
        if rc < 0 {
            return Err(Error::from_rte_errno(
                "rte_eth_from_rings",
                format!("ring port {name:?}"),
            ));
        }
        let mut p = Self::wrap(rc as u16, name.to_owned(), true);
        p._rings = rx.iter().chain(tx).cloned().collect();
        Ok(p)
    }

    fn wrap(id: u16, name: String, probed_here: bool) -> Port {
        Port {
            id,
            name,
            probed_here,
            configured: None,
            started: false,
            watched: false,
            vhost: None,
            rx_taken: Vec::new(),
            tx_taken: Vec::new(),
            _pool: None,
            _rings: Vec::new(),
        }
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver's name (`net_null`, `net_ixgbe`, ...).
    pub fn driver(&self) -> Result<String> {
        let info = self.info()?;
        if info.driver_name.is_null() {
            return Ok(String::new());
        }
        // SAFETY: driver_name points at the driver's static name string.
        Ok(unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned())
    }

    /// The most rx and tx queues the device supports.
    pub fn max_queues(&self) -> Result<(u16, u16)> {
        let info = self.info()?;
        Ok((info.max_rx_queues, info.max_tx_queues))
    }

    /// Whether the device can spread flows over rx queues (RSS).
    pub fn has_rss(&self) -> Result<bool> {
        Ok(self.info()?.flow_type_rss_offloads != 0)
    }

    /// A descriptor that turns readable when rx queue `q` has frames (see
    /// [`crate::wake`]), for a poller that blocks when idle; `None` when the
    /// driver offers none this crate knows (only `net_af_packet` so far:
    /// other PMDs' rx interrupts are not wired up), or before the port is
    /// started (the PMD opens its sockets then).
    pub fn rx_wake_fd(&self, q: u16) -> Option<std::os::fd::RawFd> {
        if !self.started || self.driver().ok()? != "net_af_packet" {
            return None;
        }
        let if_index = self.info().ok()?.if_index;
        crate::wake::af_packet_fds(if_index)
            .get(q as usize)
            .copied()
    }

    fn info(&self) -> Result<dpdk_sys::rte_eth_dev_info> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) };
        if rc != 0 {
            return Err(Error::call("rte_eth_dev_info_get", rc, self.name.clone()));
        }
        Ok(info)
    }

    /// Configures queues and descriptors; receive queues take mbufs from
    /// `pool`. The port keeps the pool alive.
    pub fn configure(&mut self, cfg: PortConfig, pool: &Arc<Mempool>) -> Result<()> {
        if self.started {
            return Err(Error::Invalid(format!(
                "port {} is started; stop it before configuring",
                self.name
            )));
        }
        let info = self.info()?;
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(Error::Invalid(
                "a port needs at least one rx and one tx queue".into(),
            ));
        }
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::Invalid(format!(
                "port {} supports at most {} rx / {} tx queues, {} / {} asked",
                self.name, info.max_rx_queues, info.max_tx_queues, cfg.rx_queues, cfg.tx_queues
            )));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if cfg.rss && cfg.rx_queues > 1 && info.flow_type_rss_offloads != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads;
        }
        conf.rxmode.offloads = cfg.rx_offloads & info.rx_offload_capa;
        conf.txmode.offloads = cfg.tx_offloads & info.tx_offload_capa;
        let is_vhost = self.driver().is_ok_and(|d| d == "net_vhost");
        let vhost_offloads =
            conf.rxmode.offloads & crate::offload::RX_OFFLOAD_TCP_CKSUM != 0 && is_vhost;
        // SAFETY: valid port, a zeroed (default) configuration is valid.
        let rc = unsafe {
            dpdk_sys::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf)
        };
        if rc != 0 {
            return Err(Error::call("rte_eth_dev_configure", rc, self.name.clone()));
        }
        let (mut nb_rx, mut nb_tx) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port; in/out pointers to locals.
        let rc =
            unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut nb_rx, &mut nb_tx) };
        if rc != 0 {
            return Err(Error::call(
                "rte_eth_dev_adjust_nb_rx_tx_desc",
                rc,
                self.name.clone(),
            ));
        }
        // SAFETY: valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port and queue index; NULL rxconf means the
            // driver's defaults; the pool outlives the port (kept below).
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    nb_rx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(Error::call(
                    "rte_eth_rx_queue_setup",
                    rc,
                    format!("{} rx queue {q}", self.name),
                ));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: valid port and queue index; NULL txconf: defaults.
            let rc = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(self.id, q, nb_tx, socket, std::ptr::null())
            };
            if rc != 0 {
                return Err(Error::call(
                    "rte_eth_tx_queue_setup",
                    rc,
                    format!("{} tx queue {q}", self.name),
                ));
            }
        }
        self.rx_taken = vec![false; cfg.rx_queues as usize];
        self.tx_taken = vec![false; cfg.tx_queues as usize];
        self.configured = Some(cfg);
        self._pool = Some(Arc::clone(pool));
        if vhost_offloads && !self.watched {
            crate::offload::watch_vhost(self.id);
            self.watched = true;
        }
        if let Some(old) = self.vhost.take() {
            old.detach();
        }
        // The PMD strips VLAN tags in its rx function only: such ports
        // keep it.
        if is_vhost && conf.rxmode.offloads & RX_OFFLOAD_VLAN_STRIP == 0 {
            self.vhost = VhostLink::attach(self.id, cfg.rx_queues, cfg.tx_queues, pool);
        }
        Ok(())
    }

    /// Starts the port (and sets promiscuous mode if configured).
    pub fn start(&mut self) -> Result<()> {
        let Some(cfg) = self.configured else {
            return Err(Error::Invalid(format!(
                "port {} must be configured before start",
                self.name
            )));
        };
        // SAFETY: valid, configured port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        if rc != 0 {
            return Err(Error::call("rte_eth_dev_start", rc, self.name.clone()));
        }
        self.started = true;
        if let Some(v) = &self.vhost {
            v.set_started(true);
        }
        if self.watched {
            // The guest may have connected before the queues existed.
            crate::offload::refresh_vhost(self.id);
        }
        if cfg.promiscuous {
            // Some virtual PMDs do not implement it (-ENOTSUP); that is fine.
            // SAFETY: valid, started port.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.id) };
        }
        Ok(())
    }

    /// Stops the port. Queue handles must not be polled afterwards.
    pub fn stop(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        if let Some(v) = &self.vhost {
            v.set_started(false);
        }
        // SAFETY: valid, started port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
        self.started = false;
        if rc != 0 {
            return Err(Error::call("rte_eth_dev_stop", rc, self.name.clone()));
        }
        Ok(())
    }

    /// Whether the port is started.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Takes receive queue `q`; each queue can be taken once.
    pub fn rx_queue(&mut self, q: u16) -> Result<RxQueue> {
        take(&mut self.rx_taken, q, &self.name, "rx")?;
        Ok(RxQueue {
            port: self.id,
            queue: q,
            vhost: self.vhost.clone(),
        })
    }

    /// Takes transmit queue `q`; each queue can be taken once.
    pub fn tx_queue(&mut self, q: u16) -> Result<TxQueue> {
        take(&mut self.tx_taken, q, &self.name, "tx")?;
        Ok(TxQueue {
            port: self.id,
            queue: q,
            lock: None,
            vhost: self.vhost.clone(),
        })
    }

    /// Takes transmit queue `q` for `users` pollers at once (a device with
    /// fewer tx queues than pollers): the handles share a spin lock, taken
    /// around each `tx_burst` (DPDK's tx functions are not thread-safe on
    /// one queue).
    pub fn tx_queue_shared(&mut self, q: u16, users: usize) -> Result<Vec<TxQueue>> {
        take(&mut self.tx_taken, q, &self.name, "tx")?;
        let lock = Arc::new(TxLock(AtomicBool::new(false)));
        Ok((0..users)
            .map(|_| TxQueue {
                port: self.id,
                queue: q,
                lock: Some(Arc::clone(&lock)),
                vhost: self.vhost.clone(),
            })
            .collect())
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut a) };
        if rc != 0 {
            return Err(Error::call("rte_eth_macaddr_get", rc, self.name.clone()));
        }
        Ok(a.addr_bytes)
    }

    /// The port's MTU (L3 payload bytes per frame).
    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: valid port and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_mtu(self.id, &mut mtu) };
        if rc != 0 {
            return Err(Error::call("rte_eth_dev_get_mtu", rc, self.name.clone()));
        }
        Ok(mtu)
    }

    /// Sets the port's MTU; the driver refuses values it cannot take.
    pub fn set_mtu(&mut self, mtu: u16) -> Result<()> {
        // SAFETY: valid port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu) };
        if rc != 0 {
            return Err(Error::call("rte_eth_dev_set_mtu", rc, self.name.clone()));
        }
        Ok(())
    }

    /// Enables or disables promiscuous mode.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<()> {
        // SAFETY: valid port.
        let rc = unsafe {
            if on {
                dpdk_sys::rte_eth_promiscuous_enable(self.id)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        if rc != 0 {
            return Err(Error::call(
                "rte_eth_promiscuous_enable/disable",
                rc,
                self.name.clone(),
            ));
        }
        Ok(())
    }

    /// Link state without waiting for negotiation.
    pub fn link(&self) -> Result<Link> {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut l) };
        if rc != 0 {
            return Err(Error::call(
                "rte_eth_link_get_nowait",
                rc,
                self.name.clone(),
            ));
        }
        Ok(Link {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() != 0,
        })
    }

    /// Basic statistics.
    pub fn stats(&self) -> Result<PortStats> {
        stats_of(self.id).map_err(|rc| Error::call("rte_eth_stats_get", rc, self.name.clone()))
    }

    /// Resets the basic statistics.
    pub fn reset_stats(&self) -> Result<()> {
        if let Some(v) = &self.vhost {
            v.reset_stats();
        }
        // SAFETY: valid port.
        let rc = unsafe { dpdk_sys::rte_eth_stats_reset(self.id) };
        if rc != 0 {
            return Err(Error::call("rte_eth_stats_reset", rc, self.name.clone()));
        }
        Ok(())
    }

    /// Extended statistics as (name, value) pairs.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        // SAFETY: valid port; NULL/0 asks for the count.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(Error::call(
                "rte_eth_xstats_get_names",
                n,
                self.name.clone(),
            ));
        }
        let n = n as usize;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n];
        let mut vals = vec![dpdk_sys::rte_eth_xstat::default(); n];
        // SAFETY: both buffers hold n entries.
        let got_names =
            unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), n as u32) };
        if got_names < 0 || got < 0 {
            return Err(Error::call(
                "rte_eth_xstats_get",
                got.min(got_names),
                self.name.clone(),
            ));
        }
        let m = (got as usize).min(got_names as usize).min(n);
        Ok(vals[..m]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates xstat names within the array.
                let s = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((s.to_string_lossy().into_owned(), v.value))
            })
            .collect())
    }
}

/// Reads `rte_eth_stats` of a port id (also usable from a stats thread that
/// holds only the id); `Err(rc)` on failure.
pub fn stats_of(port: u16) -> std::result::Result<PortStats, i32> {
    let mut s = dpdk_sys::rte_eth_stats::default();
    // SAFETY: out-pointer to a local; an invalid id returns -ENODEV.
    let rc = unsafe { dpdk_sys::rte_eth_stats_get(port, &mut s) };
    if rc != 0 {
        return Err(rc);
    }
    let mut st = PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
        q_ipackets: s.q_ipackets,
        q_opackets: s.q_opackets,
    };
    // A net_vhost port's direct queues count on their own.
    if let Some(t) = crate::vhost::totals_of(port) {
        st.ipackets += t.ipackets;
        st.opackets += t.opackets;
        st.ibytes += t.ibytes;
        st.obytes += t.obytes;
        st.ierrors += t.ierrors;
        for (a, b) in st.q_ipackets.iter_mut().zip(t.q_ipackets) {
            *a += b;
        }
        for (a, b) in st.q_opackets.iter_mut().zip(t.q_opackets) {
            *a += b;
        }
    }
    Ok(st)
}

fn take(taken: &mut [bool], q: u16, name: &str, dir: &str) -> Result<()> {
    match taken.get_mut(q as usize) {
        None => Err(Error::Invalid(format!(
            "port {name} has no {dir} queue {q} (configure it first)"
        ))),
        Some(true) => Err(Error::Invalid(format!(
            "port {name} {dir} queue {q} is already taken"
        ))),
        Some(t) => {
            *t = true;
            Ok(())
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.watched {
            crate::offload::unwatch_vhost(self.id);
        }
        if let Some(v) = self.vhost.take() {
            v.detach();
        }
        // SAFETY: valid port id; stop/close are idempotent enough for DPDK
        // ports we own; after close the id is released. Only devices probed
        // here are detached, so `--vdev` devices stay owned by the EAL.
        unsafe {
            if self.started {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            if self.probed_here {
                let mut info = dpdk_sys::rte_eth_dev_info::default();
                let have_dev = dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) == 0
                    && !info.device.is_null();
                dpdk_sys::rte_eth_dev_close(self.id);
                if have_dev {
                    dpdk_sys::rte_dev_remove(info.device);
                }
            } else {
                dpdk_sys::rte_eth_dev_close(self.id);
            }
        }
    }
}

/// A receive queue of a started port, owned by one polling thread.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
    /// `net_vhost`: the vhost library directly.
    vhost: Option<Arc<VhostLink>>,
}

/// A transmit queue of a started port, owned by one polling thread (or
/// shared under a lock: [`Port::tx_queue_shared`]).
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
    lock: Option<Arc<TxLock>>,
    /// `net_vhost`: the vhost library directly.
    vhost: Option<Arc<VhostLink>>,
}

/// The spin lock of a shared tx queue (held for one `tx_burst` call).
#[derive(Debug)]
struct TxLock(AtomicBool);

impl TxLock {
    #[inline]
    fn acquire(&self) {
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }

    #[inline]
    fn release(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl RxQueue {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the free slots of `burst`; returns how many arrived.
    #[inline(always)]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        if let Some(v) = &self.vhost {
            return v.rx_burst(self.queue, burst);
        }
        let room = burst.room();
        if room == 0 {
            return 0;
        }
        // SAFETY: the queue is configured and owned by this handle (one
        // poller); the pointer has `room` free slots.
        let n = unsafe {
            dpdk_sys::shim_rte_eth_rx_burst(self.port, self.queue, burst.spare_ptr(), room as u16)
        };
        let n = (n as usize).min(room);
        // SAFETY: DPDK wrote n owned mbufs into those slots.
        unsafe { burst.commit(n) };
        n
    }
}

impl TxQueue {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Whether other handles share this queue (under a lock).
    pub fn is_shared(&self) -> bool {
        self.lock.is_some()
    }

    /// Sends what `burst` holds; the unsent remain in `burst` (at the
    /// front), for the caller to retry or drop. Returns how many were sent.
    #[inline(always)]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        debug_assert!(n <= BURST_SIZE);
        if let Some(l) = &self.lock {
            l.acquire();
        }
        let sent = if let Some(v) = &self.vhost {
            v.tx_burst(self.queue, burst)
        } else {
            // SAFETY: the queue is configured and owned by this handle (or
            // by the handles sharing its lock, which is held); the first n
            // slots hold owned mbufs.
            let sent = unsafe {
                dpdk_sys::shim_rte_eth_tx_burst(self.port, self.queue, burst.raw_ptr(), n as u16)
            };
            let sent = (sent as usize).min(n);
            // SAFETY: the driver took ownership of the first `sent` mbufs.
            unsafe { burst.consume_front(sent) };
            sent
        };
        if let Some(l) = &self.lock {
            l.release();
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devargs_names() {
        assert_eq!(
            devargs_name("net_pcap0,rx_pcap=a.pcap,tx_pcap=b"),
            "net_pcap0"
        );
        assert_eq!(devargs_name("0000:01:00.0"), "0000:01:00.0");
        assert_eq!(devargs_name(""), "");
    }
}
