//! The switch's DPDK ports: probing, queue hand-out to workers, hot add and
//! remove while traffic flows, and the control plane's view of them.
//!
//! Each worker has one tx queue on every port, its own where the device has
//! one per worker, else shared under a lock with the other workers mapped to
//! it (worker `w` sends on queue `w % queues`), and the rx queues assigned
//! to it: one per worker where the device has them, and on `net_vhost`
//! ports every queue (the guest picks the queue it sends on), spread round
//! robin over the workers. Workers learn about port changes
//! through a lock-free command queue they drain between bursts; removal
//! waits for every worker's acknowledgement before the port is closed.
//!
//! A port's `mtu=N` ([`super::port_opts`]) picks the pool its rx queues
//! fill: the shared one when its frames fit, else a pool of bigger mbufs
//! made for that MTU and kept until the switch stops.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dpdk::{Mempool, Port, PortConfig, PortStats, RxQueue, TxQueue, QUEUE_STAT_COUNTERS};
use switch::control::{PortBackend, PortInfo, PortSpec};
use switch::switch::Switch;
use switch::tunnel::decap::Tunnel;
use switch::tunnel::{ArpCache, Endpoints, TunnelConfig, TunnelStats};
use switch::verdict::{CONTROLLER_PORT, MAX_PORTS};
use usertcp::device::FrameBytes;

use super::offload::OffloadCounters;
use super::port_opts::{self, PortOpts};

/// What a port is to the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A DPDK device from devargs.
    Device,
    /// The switch's end of the internal port (fed by the host stack).
    Internal,
    /// The switch's end of the controller channel.
    Controller,
}

/// A change a worker applies between bursts.
pub enum WorkerCmd {
    /// Start polling this rx queue as switch port `port`.
    AddRx(u16, RxQueue, RxWake),
    /// Send to switch port `port` through this tx queue.
    AddTx(u16, TxQueue),
    /// Forget every queue of switch port `port`, then raise the flag.
    Remove(u16, Arc<AtomicBool>),
    /// The tunnel ports changed: use these endpoints (`None`: no tunnel).
    Tunnels(Option<Arc<Endpoints>>),
}

/// How a worker that found nothing to do learns that an rx queue has
/// frames again (see [`super::worker::Round::wake_fds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxWake {
    /// This descriptor turns readable ([`Port::rx_wake_fd`]).
    Fd(RawFd),
    /// Only this process's own poll hook feeds it (the switch's end of the
    /// internal port, fed by the host stack that the hook polls), so the
    /// hook has nothing to wait for on it.
    SelfFed,
    /// No way: a worker polling this queue must not block.
    Never,
}

/// Per-worker, per-port counters of frames the tx queue refused.
pub struct TxDrops {
    counts: Box<[AtomicU64]>,
}

impl TxDrops {
    fn new(workers: usize) -> TxDrops {
        TxDrops {
            counts: (0..workers * MAX_PORTS as usize)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Adds `n` refused frames for (worker, port); one writer per cell, so
    /// a relaxed load and store suffice.
    #[inline(always)]
    pub fn add(&self, worker: usize, port: u16, n: u64) {
        let c = &self.counts[worker * MAX_PORTS as usize + port as usize];
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Refused frames of `port`, all workers.
    pub fn port_total(&self, port: u16) -> u64 {
        self.counts
            .chunks(MAX_PORTS as usize)
            .map(|w| w[port as usize].load(Ordering::Relaxed))
            .sum()
    }
}

struct Entry {
    no: u16,
    devargs: String,
    port: Port,
    /// The internal port's byte counts (see [`Ports::add_internal`]).
    bytes: Option<Arc<FrameBytes>>,
    /// The MTU set with `mtu=N`.
    mtu: Option<u16>,
    /// Rx queues configured.
    rx_queues: u16,
}

impl Entry {
    /// The device's counters, byte counts from `bytes` where set.
    fn stats(&self, mut st: PortStats) -> PortStats {
        if let Some(b) = &self.bytes {
            st.ibytes = b.sent.load(Ordering::Relaxed);
            st.obytes = b.received.load(Ordering::Relaxed);
        }
        st
    }
}

/// The set of ports of a running switch.
pub struct Ports {
    sw: Arc<Switch>,
    pool: Arc<Mempool>,
    /// Pools of bigger mbufs for ports whose MTU needs them (kept until
    /// the switch stops: their mbufs may sit in any port's rings).
    mtu_pools: Mutex<Vec<Arc<Mempool>>>,
    workers: Vec<Arc<ArrayQueue<WorkerCmd>>>,
    entries: Mutex<Vec<Entry>>,
    /// Tunnel ports (no device: encapsulated through an underlay port).
    tunnels: Mutex<Vec<Tunnel>>,
    /// The tunnel endpoints' neighbour table.
    arp: Arc<ArpCache>,
    next_rx_worker: Mutex<usize>,
    /// Frames refused by tx queues.
    pub tx_drops: Arc<TxDrops>,
    /// The offload slow path's counters (large frames, software
    /// segmentation and checksums).
    pub offload: Arc<OffloadCounters>,
}

impl Ports {
    /// A port set feeding `workers` command queues.
    pub fn new(
        sw: Arc<Switch>,
        pool: Arc<Mempool>,
        workers: Vec<Arc<ArrayQueue<WorkerCmd>>>,
    ) -> Ports {
        let n = workers.len();
        Ports {
            sw,
            pool,
            mtu_pools: Mutex::new(Vec::new()),
            workers,
            entries: Mutex::new(Vec::new()),
            tunnels: Mutex::new(Vec::new()),
            arp: Arc::new(ArpCache::default()),
            next_rx_worker: Mutex::new(0),
            tx_drops: Arc::new(TxDrops::new(n)),
            offload: Arc::new(OffloadCounters::new(n)),
        }
    }

    fn send(&self, w: usize, mut cmd: WorkerCmd) {
        // The queue is drained between bursts; a full queue only delays us.
        loop {
            match self.workers[w].push(cmd) {
                Ok(()) => return,
                Err(c) => {
                    cmd = c;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Probes, configures and starts a port, hands its queues to the
    /// workers and declares it to the switch. Returns its port number.
    /// `devargs` may carry the switch's options ([`port_opts`]: `mtu=N`).
    pub fn add(&self, devargs: &str, want: Option<u16>) -> Result<u16, String> {
        if let Some(t) = TunnelConfig::parse(devargs)? {
            return self.add_tunnel(t, want);
        }
        let (dpdk_args, opts) = port_opts::split(devargs)?;
        self.add_with(devargs, want, Kind::Device, opts, || {
            Port::probe(&dpdk_args).map_err(|e| e.to_string())
        })
    }

    /// The pool for a port's `rx_queues` rx queues of `rx_desc`
    /// descriptors: the shared pool unless `mtu` frames outgrow its mbufs.
    fn pool_for(
        &self,
        mtu: Option<u16>,
        rx_queues: u16,
        rx_desc: u16,
    ) -> Result<Arc<Mempool>, String> {
        let headroom = dpdk::sys::RTE_PKTMBUF_HEADROOM as u16;
        let Some(mtu) = mtu else {
            return Ok(Arc::clone(&self.pool));
        };
        let room = port_opts::frame_room(mtu) + headroom;
        if room <= self.pool.data_room() {
            return Ok(Arc::clone(&self.pool));
        }
        let need = u32::from(rx_queues) * u32::from(rx_desc) + 1024;
        let mut pools = self.mtu_pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools
            .iter()
            .find(|p| p.data_room() >= room && p.available() >= need)
        {
            return Ok(Arc::clone(p));
        }
        let n = (need * 2).max(8192).next_power_of_two() - 1;
        let name = format!("vswitch_mtu{mtu}_{}", pools.len());
        let p = Arc::new(
            Mempool::pktmbuf(&name, n, 256, room, -1)
                .map_err(|e| format!("a pool of {n} mbufs for MTU {mtu}: {e}"))?,
        );
        pools.push(Arc::clone(&p));
        Ok(p)
    }

    /// Adds the switch's end of the internal port (fed only by the host
    /// stack, which worker 0's hook polls) like [`Ports::add`]. The ring
    /// PMD counts packets only: its byte counts are the host stack's
    /// (`bytes`: what the stack sent the switch received, and the reverse).
    pub fn add_internal(
        &self,
        port: Port,
        want: Option<u16>,
        bytes: Arc<FrameBytes>,
    ) -> Result<u16, String> {
        let name = port.name().to_owned();
        let no = self.add_with(
            &name,
            want,
            Kind::Internal,
            PortOpts::default(),
            move || Ok(port),
        )?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.iter_mut().find(|e| e.no == no) {
            e.bytes = Some(bytes);
        }
        Ok(no)
    }

    /// Port `no`'s device counters, with the internal port's byte counts
    /// filled in from the host stack's.
    pub fn stats(&self, no: u16, id: u16) -> PortStats {
        let st = dpdk::stats_of(id).unwrap_or_default();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.iter().find(|e| e.no == no) {
            Some(e) => e.stats(st),
            None => st,
        }
    }

    /// Adds the switch's end of the controller channel as port
    /// [`CONTROLLER_PORT`]: polled and sent to like any port, but never a
    /// switch port (floods skip it; see `switch::verdict::CONTROLLER_PORT`).
    pub fn add_controller(&self, port: Port) -> Result<u16, String> {
        let name = port.name().to_owned();
        self.add_with(
            &name,
            Some(CONTROLLER_PORT),
            Kind::Controller,
            PortOpts::default(),
            move || Ok(port),
        )
    }

    fn add_with(
        &self,
        devargs: &str,
        want: Option<u16>,
        kind: Kind,
        opts: PortOpts,
        make: impl FnOnce() -> Result<Port, String>,
    ) -> Result<u16, String> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let no = match want {
            Some(n) if n >= MAX_PORTS => {
                return Err(format!(
                    "port number {n} out of range (0..={})",
                    MAX_PORTS - 1
                ))
            }
            Some(n) if entries.iter().any(|e| e.no == n) || self.is_tunnel(n) => {
                return Err(format!("port number {n} is in use"))
            }
            Some(n) => n,
            None => (0..MAX_PORTS)
                .find(|n| !entries.iter().any(|e| e.no == *n) && !self.is_tunnel(*n))
                .ok_or_else(|| format!("the switch has its maximum of {MAX_PORTS} ports"))?,
        };
        let mut port = make().map_err(|e| format!("port {no} ({devargs}): {e}"))?;
        let workers = self.workers.len() as u16;
        // One rx queue per worker where the device has them (RSS spreads
        // flows over them on NICs), every queue of a vhost port (its guest
        // sends on any of them); one tx queue per worker where the device
        // has them, else shared (see the module docs).
        let (max_rx, max_tx) = port
            .max_queues()
            .map_err(|e| format!("port {no} ({devargs}): {e}"))?;
        let vhost = port.driver().is_ok_and(|d| d == "net_vhost");
        // vhost-user ports: guests' partial checksums and large segments
        // arrive flagged, for the offload slow path (`super::offload`).
        let (rx_offloads, tx_offloads) = if vhost && kind == Kind::Device {
            use dpdk::offload as o;
            (
                o::RX_OFFLOAD_TCP_CKSUM | o::RX_OFFLOAD_UDP_CKSUM,
                o::TX_OFFLOAD_TCP_CKSUM | o::TX_OFFLOAD_UDP_CKSUM | o::TX_OFFLOAD_MULTI_SEGS,
            )
        } else {
            (0, 0)
        };
        let cfg = PortConfig {
            rx_queues: if vhost { max_rx } else { workers.min(max_rx) }.max(1),
            tx_queues: workers.min(max_tx).max(1),
            rx_offloads,
            tx_offloads,
            ..PortConfig::default()
        };
        let pool = self
            .pool_for(opts.mtu, cfg.rx_queues, cfg.rx_desc)
            .map_err(|e| format!("port {no} ({devargs}): {e}"))?;
        port.configure(cfg, &pool).map_err(|e| {
            // The pool's data room is at least 2048 bytes: a bound is enough.
            let hint = match super::config::pcap_preloaded_mbufs(devargs, 2048) {
                Ok(0) => String::new(),
                Ok(n) => format!(
                    " (its pcap file replays frames that take {n} mbufs, which DPDK keeps in \
                     the packet pool for the whole run; {} of the pool's mbufs are free: start the switch with \
                     a bigger --mbufs, or with this port among its --port ports: the default \
                     --mbufs counts their frames)",
                    self.pool.available()
                ),
                Err(why) => format!(" ({why}: size the packet pool with --mbufs)"),
            };
            format!("port {no} ({devargs}): {e}{hint}")
        })?;
        if let Some(mtu) = opts.mtu {
            // net_vhost has no MTU setting: its guest's comes from QEMU.
            if let Err(e) = port.set_mtu(mtu) {
                if !vhost {
                    return Err(format!("port {no} ({devargs}): mtu={mtu}: {e}"));
                }
            }
        }
        port.start()
            .map_err(|e| format!("port {no} ({devargs}): {e}"))?;
        if let Some(mtu) = opts.mtu.or_else(|| port.mtu().ok()) {
            self.offload.set_mtu(no, mtu);
        }
        let n_workers = self.workers.len();
        let mut txqs: Vec<Option<TxQueue>> = (0..n_workers).map(|_| None).collect();
        let shared = usize::from(cfg.tx_queues) < n_workers;
        for q in 0..cfg.tx_queues {
            let users: Vec<usize> = (0..n_workers)
                .filter(|w| w % usize::from(cfg.tx_queues) == usize::from(q))
                .collect();
            let handles = if shared {
                port.tx_queue_shared(q, users.len())
            } else {
                port.tx_queue(q).map(|t| vec![t])
            }
            .map_err(|e| e.to_string())?;
            for (w, h) in users.into_iter().zip(handles) {
                txqs[w] = Some(h);
            }
        }
        for (w, txq) in txqs.into_iter().enumerate() {
            if let Some(txq) = txq {
                self.send(w, WorkerCmd::AddTx(no, txq));
            }
        }
        for q in 0..cfg.rx_queues {
            let rxq = port.rx_queue(q).map_err(|e| e.to_string())?;
            let w = {
                let mut n = self
                    .next_rx_worker
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let w = *n % self.workers.len();
                *n += 1;
                w
            };
            let wake = match kind {
                Kind::Internal => RxWake::SelfFed,
                Kind::Controller => RxWake::Never,
                Kind::Device => port.rx_wake_fd(q).map_or(RxWake::Never, RxWake::Fd),
            };
            self.send(w, WorkerCmd::AddRx(no, rxq, wake));
        }
        if kind != Kind::Controller {
            self.sw.port_add(no)?;
        }
        entries.push(Entry {
            no,
            devargs: devargs.to_owned(),
            port,
            bytes: None,
            mtu: opts.mtu,
            rx_queues: cfg.rx_queues,
        });
        entries.sort_by_key(|e| e.no);
        Ok(no)
    }

    fn is_tunnel(&self, no: u16) -> bool {
        lock(&self.tunnels).iter().any(|t| t.port == no)
    }

    /// Adds a tunnel port (VXLAN or Geneve, see `switch::tunnel`): a
    /// switch port without a device, whose frames are encapsulated and
    /// leave by its underlay port, and which receives what that port gets
    /// for its local IP and UDP port.
    pub fn add_tunnel(&self, cfg: TunnelConfig, want: Option<u16>) -> Result<u16, String> {
        let entries = lock(&self.entries);
        let mut tunnels = lock(&self.tunnels);
        let taken =
            |n: u16| entries.iter().any(|e| e.no == n) || tunnels.iter().any(|t| t.port == n);
        let no = match want.or(cfg.port) {
            Some(n) if n >= CONTROLLER_PORT => {
                return Err(format!(
                    "port number {n} out of range (0..{CONTROLLER_PORT})"
                ))
            }
            Some(n) if taken(n) => return Err(format!("port number {n} is in use")),
            Some(n) => n,
            None => (0..CONTROLLER_PORT)
                .find(|n| !taken(*n))
                .ok_or_else(|| format!("the switch has its maximum of {MAX_PORTS} ports"))?,
        };
        if tunnels.iter().any(|t| t.cfg.name == cfg.name) {
            return Err(format!("a tunnel port named {} exists", cfg.name));
        }
        let mac = match (cfg.local_mac, cfg.underlay) {
            (Some(m), _) => m,
            (None, Some(u)) => {
                let e = entries.iter().find(|e| e.no == u).ok_or_else(|| {
                    format!("tunnel {}: underlay port {u} does not exist", cfg.name)
                })?;
                e.port
                    .mac()
                    .map_err(|e| format!("tunnel {}: underlay MAC: {e}", cfg.name))?
            }
            // Locally administered, from the local IP.
            (None, None) => {
                let ip = cfg.local_ip;
                [0x02, 0x56, ip[0], ip[1], ip[2], ip[3]]
            }
        };
        if cfg.underlay == Some(no) {
            return Err(format!(
                "tunnel {}: a port cannot be its own underlay",
                cfg.name
            ));
        }
        let mut next = tunnels.clone();
        next.push(Tunnel {
            port: no,
            cfg,
            mac,
            stats: Arc::new(TunnelStats::default()),
        });
        let ep = Endpoints::new(next.clone(), Arc::clone(&self.arp))?;
        drop(entries);
        *tunnels = next;
        self.publish_tunnels(Some(Arc::new(ep)));
        self.sw.port_add(no)?;
        Ok(no)
    }

    fn publish_tunnels(&self, ep: Option<Arc<Endpoints>>) {
        for w in 0..self.workers.len() {
            self.send(w, WorkerCmd::Tunnels(ep.clone()));
        }
    }

    /// Removes tunnel port `no` (false: not a tunnel port).
    fn del_tunnel(&self, no: u16) -> Result<bool, String> {
        let mut tunnels = lock(&self.tunnels);
        let Some(i) = tunnels.iter().position(|t| t.port == no) else {
            return Ok(false);
        };
        self.sw.port_del(no)?;
        tunnels.remove(i);
        let ep = if tunnels.is_empty() {
            None
        } else {
            Some(Arc::new(Endpoints::new(
                tunnels.clone(),
                Arc::clone(&self.arp),
            )?))
        };
        self.publish_tunnels(ep);
        Ok(true)
    }

    /// Every tunnel port.
    pub fn tunnels(&self) -> Vec<Tunnel> {
        lock(&self.tunnels).clone()
    }

    /// Removes a port while traffic flows: the switch stops sending to it,
    /// every worker drops its queues (acknowledged), then it is closed.
    /// `workers_running` false (shutdown) skips the acknowledgements.
    pub fn del(&self, no: u16, workers_running: bool) -> Result<(), String> {
        if self.del_tunnel(no)? {
            return Ok(());
        }
        if lock(&self.tunnels)
            .iter()
            .any(|t| t.cfg.underlay == Some(no))
        {
            return Err(format!(
                "port {no} is the underlay of a tunnel port: remove the tunnel first"
            ));
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries
            .iter()
            .position(|e| e.no == no)
            .ok_or_else(|| format!("no port {no}"))?;
        self.sw.port_del(no)?;
        if workers_running {
            let acks: Vec<Arc<AtomicBool>> = (0..self.workers.len())
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect();
            for (w, a) in acks.iter().enumerate() {
                self.send(w, WorkerCmd::Remove(no, Arc::clone(a)));
            }
            let t = Instant::now();
            while !acks.iter().all(|a| a.load(Ordering::Acquire)) {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err(format!(
                        "port {no}: workers did not release its queues within 10 s"
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let e = entries.remove(i);
        drop(e.port);
        Ok(())
    }

    /// Runs `f` on port `no`'s device (`None`: no such port).
    pub fn with_port<R>(&self, no: u16, f: impl FnOnce(&mut Port) -> R) -> Option<R> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter_mut()
            .find(|e| e.no == no)
            .map(|e| f(&mut e.port))
    }

    /// Port `no`'s MTU: its `mtu=` setting, else the device's.
    pub fn mtu(&self, no: u16) -> Option<u16> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.iter().find(|e| e.no == no)?;
        e.mtu.or_else(|| e.port.mtu().ok())
    }

    /// Whether port number `no` is taken.
    pub fn has(&self, no: u16) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().any(|e| e.no == no)
    }

    /// (number, name, DPDK id) of every port.
    pub fn list(&self) -> Vec<(u16, String, u16)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|e| (e.no, e.port.name().to_owned(), e.port.id()))
            .collect()
    }

    /// Stops and closes every port (at shutdown, workers already joined).
    pub fn close_all(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clear();
    }
}

/// The control plane's port operations, backed by [`Ports`].
pub struct Backend {
    /// The ports.
    pub ports: Arc<Ports>,
    /// Whether the workers are still polling.
    pub running: Arc<AtomicBool>,
}

impl PortBackend for Backend {
    fn add(&self, spec: &PortSpec) -> Result<u16, String> {
        self.ports.add(&spec.devargs, spec.port)
    }

    fn del(&self, port: u16) -> Result<(), String> {
        self.ports.del(port, self.running.load(Ordering::Acquire))
    }

    fn show(&self) -> Vec<PortInfo> {
        let entries = self.ports.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<PortInfo> = entries
            .iter()
            .map(|e| {
                let st = e.stats(e.port.stats().unwrap_or_default());
                PortInfo {
                    port: e.no,
                    name: e.port.name().to_owned(),
                    devargs: e.devargs.clone(),
                    link_up: e.port.link().map(|l| l.up).unwrap_or(false),
                    rx_packets: st.ipackets,
                    rx_bytes: st.ibytes,
                    tx_packets: st.opackets,
                    tx_bytes: st.obytes,
                    rx_dropped: st.imissed + st.rx_nombuf,
                    tx_dropped: st.oerrors + self.ports.tx_drops.port_total(e.no),
                    mtu: e.mtu.or_else(|| e.port.mtu().ok()).unwrap_or(0),
                    rx_queue_packets: st.q_ipackets
                        [..usize::from(e.rx_queues).min(QUEUE_STAT_COUNTERS)]
                        .to_vec(),
                    offload: {
                        let t = self.ports.offload.totals(e.no);
                        switch::control::PortOffload {
                            rx_large_packets: t.rx_large_frames,
                            rx_large_bytes: t.rx_large_bytes,
                            tx_segmented: t.tx_segmented,
                            tx_segments: t.tx_segments,
                            tx_csum_sw: t.tx_csum_sw,
                            tx_offload_drops: t.tx_offload_drops,
                        }
                    },
                    ..PortInfo::default()
                }
            })
            .collect();
        drop(entries);
        out.extend(self.ports.tunnels().iter().map(tunnel_info));
        out.sort_by_key(|p| p.port);
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tunnel port as `vswitch ports show` lists it: its counters and its
/// drops by reason.
fn tunnel_info(t: &Tunnel) -> PortInfo {
    let s = &t.stats;
    PortInfo {
        port: t.port,
        name: t.cfg.name.clone(),
        devargs: t.cfg.to_spec(),
        link_up: true,
        rx_packets: s.rx_packets.load(Ordering::Relaxed),
        rx_bytes: s.rx_bytes.load(Ordering::Relaxed),
        tx_packets: s.tx_packets.load(Ordering::Relaxed),
        tx_bytes: s.tx_bytes.load(Ordering::Relaxed),
        rx_dropped: s.rx_dropped(),
        tx_dropped: s.tx_dropped(),
        drops: s
            .drop_counts()
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        ..PortInfo::default()
    }
}
