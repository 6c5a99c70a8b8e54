//! The DPDK data plane behind `vswitch run`: EAL, packet pool, the
//! flow-table switch, its ports, one worker per forwarding lcore, the control
//! socket, and a monitor thread for stats and the stop condition.
//!
//! ```text
//!  port rx queues ──► worker lcore(s): rx burst ─► switch::Datapath ─► tx burst per port ──► port tx queues
//!                          ▲ queue hand-out (lock-free cmd queue)          │ relaxed counters
//!  control socket ──► Ports (hot add/del) / FlowTable (rules)              ▼
//!  monitor thread: periodic port stats, --duration, SIGINT/SIGTERM ──► stop flag;
//!                  every 100 ms rule expiry and conntrack sweep (bounded)
//! ```

pub mod bridge;
pub mod config;
pub mod controller;
pub mod exporter;
pub mod mbuf_frame;
pub mod offload;
pub mod ovs_eal;
pub mod port_desc;
pub mod port_opts;
pub mod ports;
pub mod stats;
pub mod storage;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dpdk::{Eal, HugepageStatus, Mempool};
use hdrhistogram::Histogram;
use serde::Serialize;
use switch::control::{ControlServer, NoPorts, Reply, Request, StatsReport};
use switch::rule::RuleSpec;
use switch::switch::{Switch, SwitchConfig};

use config::RunConfig;
use ports::{Backend, Ports};
use stats::{PortRates, PortSample};
use worker::{LoopCounters, Worker};

/// The final report of a run.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Seconds the data plane ran.
    pub seconds: f64,
    /// Per-port totals and average rates over the run.
    pub ports: Vec<PortRates>,
    /// Packets handed to tx queues per second, all ports.
    pub forwarded_pps: f64,
    /// Average TSC cycles per received packet in busy polling rounds
    /// (rounds that received packets, every rx queue's poll included: how
    /// OVS counts its PMD's processing cycles).
    pub cycles_per_packet: f64,
    /// Percentiles of cycles per packet (per burst): p50, p90, p99, max.
    pub cycles_per_packet_pct: [u64; 4],
    /// The switch's own counters (cache hit rate, drops by reason, ...).
    pub switch: StatsReport,
    /// The storage devices served by the same core.
    pub blk: Vec<storage::BlkReport>,
}

/// Default EAL arguments when none are given: two lcores if the machine has
/// them, no hugepages if none are free, no PCI scan unless a port is PCI.
pub fn default_eal(ports: &[String]) -> Vec<String> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut eal = vec![
        "-l".to_string(),
        if cores >= 2 { "0-1" } else { "0" }.to_string(),
    ];
    eal.push("--file-prefix".into());
    eal.push(format!("vswitch-{}", std::process::id()));
    eal.push("--log-level=*:warning".into());
    eal.push("--no-telemetry".into());
    let hp = HugepageStatus::read().unwrap_or(HugepageStatus {
        total: 0,
        free: 0,
        size_kib: 0,
    });
    let mounted = std::fs::read_to_string("/proc/mounts").is_ok_and(|m| m.contains("hugetlbfs"));
    if hp.free == 0 || !mounted {
        eal.push("--no-huge".into());
        eal.push("-m".into());
        eal.push("512".into());
        eal.push("--no-shconf".into());
    }
    if !ports.iter().any(|p| is_pci(config::dpdk_port_name(p))) {
        eal.push("--no-pci".into());
    }
    eal
}

/// Whether a device name looks like a PCI address (`0000:01:00.0`, `01:00.0`).
pub fn is_pci(name: &str) -> bool {
    let parts: Vec<&str> = name.split(':').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts.last().is_some_and(|l| l.contains('.'))
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit() || c == '.'))
}

/// The mbuf count a run needs for `ports` ports: rx rings of every port plus
/// slack, as 2^k-1 (before the frames pcap ports preload:
/// [`RunConfig::needed_mbufs`]).
pub fn default_mbufs(ports: usize) -> u32 {
    let need = (ports as u32)
        .saturating_mul(2048)
        .saturating_add(4096)
        .max(8192);
    need.next_power_of_two() - 1
}

/// Parses the configured rules; an error names the rule.
pub fn parse_rules(cfg: &RunConfig) -> Result<Vec<RuleSpec>, String> {
    let mut rules = Vec::with_capacity(cfg.flows.len());
    for (i, text) in cfg.flows.iter().enumerate() {
        let r: RuleSpec = text
            .parse()
            .map_err(|e| format!("flow {} ({text:?}): {e}", i + 1))?;
        if let Some(g) = r.groups().next() {
            // The table starts without groups (they come at run time, from
            // the control socket's groups_add or OpenFlow group_mod).
            return Err(format!(
                "flow {} ({text:?}): group {g} does not exist",
                i + 1
            ));
        }
        rules.push(r);
    }
    if cfg.xconnect {
        for (a, b) in cfg.streams() {
            let text = format!("priority=65535,in_port={a},actions=output:{b}");
            rules.push(
                text.parse()
                    .map_err(|e| format!("cross-connect rule {text:?}: {e}"))?,
            );
        }
    }
    Ok(rules)
}

/// Runs the data plane until the duration ends or a signal arrives.
pub fn run(cfg: &RunConfig) -> Result<Summary, String> {
    run_until(cfg, Arc::new(AtomicBool::new(false)))
}

/// [`run`], also stopping when `stop` is raised (by another thread).
pub fn run_until(cfg: &RunConfig, stop: Arc<AtomicBool>) -> Result<Summary, String> {
    cfg.validate()?;
    let rules = parse_rules(cfg)?;
    check_hugepages(cfg)?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }

    let eal = Eal::init(&cfg.eal).map_err(|e| format!("EAL initialisation failed: {e}"))?;
    let pool = packet_pool(cfg)?;
    let lcores = eal.worker_lcores();
    let n_workers = lcores.len().max(1);
    let poll = core_poll(cfg, n_workers)?;
    let (sw, ct) = new_switch(cfg, n_workers)?;
    let queues: Vec<Arc<ArrayQueue<ports::WorkerCmd>>> = (0..n_workers)
        .map(|_| Arc::new(ArrayQueue::new(1024)))
        .collect();
    let ports = Arc::new(Ports::new(
        Arc::clone(&sw),
        Arc::clone(&pool),
        queues.clone(),
    ));
    let mut stack_port = add_ports(cfg, &ports, n_workers)?;
    let group = cfg.has_storage().then(vfio::poller::PollGroup::new);
    let installed = rules.len();
    sw.table.add_many(rules, sw.now_ms());
    // With OVSDB, the bridge's fail mode decides (see bridge.rs).
    if cfg.ovsdb.is_none() {
        sw.default_to_normal();
    }

    let running = Arc::new(AtomicBool::new(true));
    let control = start_control(cfg, &sw, &ports, &running)?;
    let (channel, ovsdb) = match &cfg.ovsdb {
        Some(target) => {
            let (ch, db) = start_openflow(target, cfg, n_workers, &pool, (&sw, &ports), &running)?;
            (Some(ch), Some(db))
        }
        None => (None, None),
    };
    announce(cfg, poll, group.is_some(), installed, n_workers);

    let counters: Vec<Arc<LoopCounters>> = (0..n_workers)
        .map(|_| Arc::new(LoopCounters::default()))
        .collect();
    // The Prometheus endpoint reads the counters above when scraped.
    let metrics_server = match cfg.metrics {
        Some(addr) => Some(start_metrics(
            addr,
            (&sw, &ct, &ports),
            &counters,
            group.as_ref(),
            eal.tsc_hz(),
        )?),
        None => None,
    };
    let start = Instant::now();
    let timing = Timing {
        duration: cfg.duration,
        interval: cfg.stats_interval,
        idle_exit: cfg.idle_exit,
    };
    // With worker lcores, the main lcore monitors (sleeping between looks,
    // so it never competes with the workers); alone, it forwards and a
    // thread monitors.
    let monitor_thread = match lcores.is_empty() {
        true => Some(spawn_monitor(&stop, &ports, &sw, timing, cfg.json)?),
        false => None,
    };

    // Patch-panel mode: port pairs, no flow table (testpmd's `io`).
    let patch: Option<Vec<(u16, u16)>> = cfg.xconnect.then(|| {
        cfg.streams()
            .into_iter()
            .map(|(a, b)| (a as u16, b as u16))
            .collect()
    });
    let make = |i: usize| {
        let mut w = Worker::new(
            i,
            &sw,
            Arc::clone(&queues[i]),
            Arc::clone(&counters[i]),
            Arc::clone(&ports.tx_drops),
        );
        w.set_offload_counters(Arc::clone(&ports.offload));
        if let Some(p) = &patch {
            w.set_patch_panel(p);
        }
        if let Some(ch) = &channel {
            w.set_packet_outs(Arc::clone(&ch.jobs));
        }
        // The first worker also polls the storage queues (and through them
        // the host stack): one core for the switch and the storage path.
        if let (0, Some(g)) = (i, &group) {
            w.set_poll_hook(storage::poll_hook(g, poll, Arc::clone(&stop)));
        }
        w
    };
    // Devices log in (over the switch, which starts just below) and serve
    // their vhost-user sockets from their own thread. With storage, the
    // workers stop only once it is shut down (see `StorageSetup::done`).
    let workers_stop = match &group {
        Some(_) => Arc::new(AtomicBool::new(false)),
        None => Arc::clone(&stop),
    };
    let storage_thread = match &group {
        Some(g) => Some(spawn_storage(storage_setup(
            cfg,
            g,
            (&stop, &workers_stop),
            &pool,
            stack_port.take(),
        ))?),
        None => None,
    };
    let hist = forward(&lcores, make, &stop, &workers_stop, || {
        monitor(&stop, &ports, &sw, timing, cfg.json)
    })?;
    running.store(false, Ordering::Release);
    if let Some((h, ticker)) = ovsdb {
        h.stop();
        let _ = ticker.join();
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(m) = monitor_thread {
        let _ = m.join();
    }
    drop(control);
    let seconds = start.elapsed().as_secs_f64();
    let blk = match storage_thread.map(|t| t.join()) {
        None => Ok(Vec::new()),
        Some(Ok(r)) => r,
        Some(Err(_)) => Err("the storage thread panicked".to_string()),
    };
    storage::remove_sockets(&cfg.blk);
    drop(group);
    drop(stack_port);

    let summary = summarize(&ports, &sw, &counters, &hist, seconds)?;

    // Stop and close the ports (net_pcap flushes its capture files here),
    // then the pool, then the EAL.
    drop(metrics_server);
    ports.close_all();
    drop(ports);
    drop(pool);
    drop(eal);
    let blk = blk?;
    Ok(Summary { blk, ..summary })
}

/// The packet pool: `cfg.mbufs` buffers, each large enough for a jumbo
/// frame (`--host-mtu`, af_packet `framesz`) in one mbuf.
fn packet_pool(cfg: &RunConfig) -> Result<Arc<Mempool>, String> {
    let room = cfg.mbuf_room() + dpdk::sys::RTE_PKTMBUF_HEADROOM as u16;
    Mempool::pktmbuf("vswitch_pool", cfg.mbufs, 256, room, -1)
        .map(Arc::new)
        .map_err(|e| format!("packet pool: {e}"))
}

/// The control socket (`--control`), when asked for.
fn start_control(
    cfg: &RunConfig,
    sw: &Arc<Switch>,
    ports: &Arc<Ports>,
    running: &Arc<AtomicBool>,
) -> Result<Option<ControlServer>, String> {
    let Some(path) = &cfg.control else {
        return Ok(None);
    };
    let backend = Arc::new(Backend {
        ports: Arc::clone(ports),
        running: Arc::clone(running),
    });
    ControlServer::start(path, Arc::clone(sw), backend)
        .map(Some)
        .map_err(|e| format!("control socket {}: {e}", path.display()))
}

/// OVSDB at `target`: bridges and ports from the database, kept in step
/// with it while the switch runs; OpenFlow controllers reach the datapath
/// through the controller channel (port 63), returned with the OVSDB
/// client's handle and ticker.
fn start_openflow(
    target: &str,
    cfg: &RunConfig,
    n_workers: usize,
    pool: &Arc<Mempool>,
    (sw, ports): (&Arc<Switch>, &Arc<Ports>),
    running: &Arc<AtomicBool>,
) -> Result<(Arc<controller::Channel>, OvsdbClient), String> {
    let (port, channel) = controller::link(n_workers, Arc::clone(pool))?;
    ports.add_controller(port)?;
    let bridge = Arc::new(bridge::Bridge::new(
        Arc::clone(sw),
        Arc::clone(ports),
        cfg.rundir.clone(),
        Arc::clone(running),
        Some(Arc::clone(&channel)),
    ));
    let db = start_ovsdb(target, bridge, Arc::clone(running))?;
    Ok((channel, db))
}

/// The monitor on a thread of its own (when the main lcore forwards).
fn spawn_monitor(
    stop: &Arc<AtomicBool>,
    ports: &Arc<Ports>,
    sw: &Arc<Switch>,
    timing: Timing,
    json: bool,
) -> Result<std::thread::JoinHandle<()>, String> {
    let (stop, ports, sw) = (Arc::clone(stop), Arc::clone(ports), Arc::clone(sw));
    std::thread::Builder::new()
        .name("vswitch-monitor".into())
        .spawn(move || monitor(&stop, &ports, &sw, timing, json))
        .map_err(|e| format!("cannot start the monitor thread: {e}"))
}

/// What the storage thread needs: the devices and RPC options of `cfg`,
/// the poll group, the process's stop flag and the workers' (raised when
/// storage has shut down), and the host stack's port.
fn storage_setup(
    cfg: &RunConfig,
    group: &Arc<vfio::poller::PollGroup>,
    (stop, done): (&Arc<AtomicBool>, &Arc<AtomicBool>),
    pool: &Arc<Mempool>,
    stack_port: Option<StackPort>,
) -> storage::StorageSetup {
    storage::StorageSetup {
        blk: cfg.blk.clone(),
        host: cfg.host.clone().zip(stack_port),
        group: Arc::clone(group),
        stop: Arc::clone(stop),
        done: Arc::clone(done),
        pool: Arc::clone(pool),
        stats_file: cfg.blk_stats_file.clone(),
        interval: cfg.stats_interval,
        rpc: cfg.storage_rpc.socket.clone(),
        vhost_dir: cfg.storage_rpc.vhost_dir.clone(),
        config_json: cfg.storage_rpc.config_json.clone(),
    }
}

/// The flow-table switch with one datapath per forwarding lcore, and the
/// process's one connection tracker, shared by every lcore through the
/// switch (the `ct` action); the monitor expires its connections (see
/// `sweep_conntrack`).
fn new_switch(
    cfg: &RunConfig,
    n_workers: usize,
) -> Result<(Arc<Switch>, Arc<conntrack::Conntrack>), String> {
    let sw = Switch::new(SwitchConfig {
        workers: n_workers,
        cache_entries: cfg.flow_cache,
        ..SwitchConfig::default()
    });
    let ct = Arc::new(conntrack::Conntrack::new(conntrack::Config {
        max_conns: cfg.ct_max_conns,
        ..conntrack::Config::default()
    }));
    sw.set_conntrack(Arc::clone(&ct))?;
    Ok((sw, ct))
}

/// Opens the configured ports as numbers 0.., then (with a host stack) the
/// internal port to it; returns the stack's end of that link.
fn add_ports(
    cfg: &RunConfig,
    ports: &Ports,
    n_workers: usize,
) -> Result<Option<StackPort>, String> {
    for (i, devargs) in cfg.ports.iter().enumerate() {
        ports.add(devargs, Some(i as u16))?;
    }
    if cfg.host.is_none() {
        return Ok(None);
    }
    let (sw_end, stack_end) = storage::internal_link(n_workers)?;
    let bytes = Arc::new(usertcp::device::FrameBytes::default());
    ports.add_internal(sw_end, Some(cfg.ports.len() as u16), Arc::clone(&bytes))?;
    Ok(Some((stack_end, bytes)))
}

/// The Prometheus endpoint on `addr`: the switch's, the tracker's, the
/// loops' and (with storage) the devices' counters, read when scraped.
fn start_metrics(
    addr: std::net::SocketAddr,
    (sw, ct, ports): (&Arc<Switch>, &Arc<conntrack::Conntrack>, &Arc<Ports>),
    counters: &[Arc<LoopCounters>],
    group: Option<&Arc<vfio::poller::PollGroup>>,
    tsc_hz: u64,
) -> Result<metrics::Server, String> {
    let reg = metrics::Registry::new();
    exporter::register_switch(&reg, sw, ports, counters, tsc_hz);
    exporter::register_conntrack(&reg, ct);
    if let Some(g) = group {
        exporter::register_storage(&reg, g);
    }
    exporter::serve(addr, reg)
}

/// Refuses a run that wants hugepages when none are free (DPDK's own error
/// would only say that memory could not be reserved).
fn check_hugepages(cfg: &RunConfig) -> Result<(), String> {
    if cfg.no_huge() {
        return Ok(());
    }
    match HugepageStatus::read() {
        Some(hp) if hp.free == 0 => Err("no free hugepages: reserve some with \
             `echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages` \
             (and mount hugetlbfs on /dev/hugepages), or add --no-huge to --eal"
            .into()),
        _ => Ok(()),
    }
}

/// How the forwarding cores poll: `--poll auto` blocks (`wait`) when one
/// core also serves storage, spins otherwise; `wait` needs a single core.
fn core_poll(cfg: &RunConfig, n_workers: usize) -> Result<config::CorePoll, String> {
    let poll = match cfg.poll {
        config::CorePoll::Auto if cfg.has_storage() && n_workers == 1 => {
            config::CorePoll::parse("wait")?
        }
        config::CorePoll::Auto => config::CorePoll::Busy,
        p => p,
    };
    if matches!(poll, config::CorePoll::Wait(_)) && n_workers > 1 {
        // Another worker could hand the host stack frames while the first
        // one (which polls the stack) blocks, and nothing would wake it.
        return Err(format!(
            "--poll wait needs one forwarding lcore, and the EAL gives {n_workers}: \
             use e.g. --eal \"-l 0-1 ...\" (the main lcore monitors) or --poll adaptive"
        ));
    }
    Ok(poll)
}

/// The host stack's port to the switch and its byte counters (see
/// [`add_ports`]).
type StackPort = (dpdk::Port, Arc<usertcp::device::FrameBytes>);

/// The OVSDB client's handle and the thread that ticks the bridge.
type OvsdbClient = (ovsdb::Handle, std::thread::JoinHandle<()>);

/// Connects `bridge` to the OVSDB server at `target` and starts the thread
/// that applies the bridge's fail mode every 500 ms while `running`.
fn start_ovsdb(
    target: &str,
    bridge: Arc<bridge::Bridge>,
    running: Arc<AtomicBool>,
) -> Result<OvsdbClient, String> {
    let handle = ovsdb::spawn(
        target,
        Arc::clone(&bridge) as Arc<dyn ovsdb::Datapath>,
        ovsdb::Options::default(),
    )
    .map_err(|e| format!("OVSDB {target}: {e}"))?;
    let ticker = std::thread::Builder::new()
        .name("vswitch-failmode".into())
        .spawn(move || {
            while running.load(Ordering::Acquire) {
                bridge.tick();
                std::thread::sleep(Duration::from_millis(500));
            }
        })
        .map_err(|e| format!("cannot start the fail-mode thread: {e}"))?;
    Ok((handle, ticker))
}

/// The start-up lines: how the storage core idles, then ports, lcores,
/// rules and the control socket.
fn announce(
    cfg: &RunConfig,
    poll: config::CorePoll,
    storage: bool,
    installed: usize,
    n_workers: usize,
) {
    if storage {
        eprintln!(
            "vswitch: the storage devices share the first forwarding core; idle, it {}",
            match poll {
                config::CorePoll::Wait(_) =>
                    "blocks on the guests' kicks and the ports' rx (--poll wait)",
                config::CorePoll::Adaptive(_) => "sleeps 20 us per round (--poll adaptive)",
                _ => "spins (--poll busy)",
            }
        );
    }
    println!(
        "vswitch: {} port(s) on {} forwarding lcore(s), {}; control socket {}",
        cfg.ports.len(),
        n_workers,
        if installed == 0 {
            "no rules: learning bridge (NORMAL)".to_string()
        } else {
            format!("{installed} rule(s)")
        },
        cfg.control
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "off".into())
    );
}

/// Starts the thread that sets the storage devices up and serves them.
fn spawn_storage(
    setup: storage::StorageSetup,
) -> Result<std::thread::JoinHandle<Result<Vec<storage::BlkReport>, String>>, String> {
    std::thread::Builder::new()
        .name("vswitch-storage".into())
        .spawn(move || storage::serve(setup))
        .map_err(|e| format!("cannot start the storage thread: {e}"))
}

/// Runs the forwarding workers until `workers_stop`: alone on the main
/// lcore, or one per worker lcore while the main lcore runs `monitor_here`.
/// Returns the histogram of their cycles per packet.
fn forward(
    lcores: &[u32],
    make: impl Fn(usize) -> Worker,
    stop: &AtomicBool,
    workers_stop: &Arc<AtomicBool>,
    monitor_here: impl FnOnce(),
) -> Result<Histogram<u64>, String> {
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("static histogram bounds");
    if lcores.is_empty() {
        let r = make(0).run(workers_stop);
        let _ = hist.add(&r.cycles_per_packet);
        return Ok(hist);
    }
    let mut jobs = Vec::new();
    for (i, lcore) in lcores.iter().enumerate() {
        let (w, s) = (make(i), Arc::clone(workers_stop));
        match dpdk::lcore::launch(*lcore, move || w.run(&s)) {
            Ok(j) => jobs.push(j),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                workers_stop.store(true, Ordering::Relaxed);
                return Err(format!("cannot start the worker on lcore {lcore}: {e}"));
            }
        }
    }
    monitor_here();
    for j in jobs {
        match j.join() {
            Some(r) => {
                let _ = hist.add(&r.cycles_per_packet);
            }
            None => return Err("a forwarding worker panicked".into()),
        }
    }
    Ok(hist)
}

/// The run's report (without the storage devices'): per-port totals and
/// rates, forwarding rate, cycles per packet and the switch's counters.
fn summarize(
    ports: &Ports,
    sw: &Switch,
    counters: &[Arc<LoopCounters>],
    hist: &Histogram<u64>,
    seconds: f64,
) -> Result<Summary, String> {
    let zero = PortSample::default();
    let port_rates: Vec<PortRates> = ports
        .list()
        .into_iter()
        .map(|(no, name, id)| {
            stats::rates(no as usize, &name, &zero, &sample(ports, no, id), seconds)
        })
        .collect();
    let load = |f: fn(&LoopCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
        counters.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
    };
    let (rx, tx, busy) = (load(|c| &c.rx), load(|c| &c.tx), load(|c| &c.busy_cycles));
    Ok(Summary {
        seconds,
        ports: port_rates,
        forwarded_pps: tx as f64 / seconds.max(1e-9),
        cycles_per_packet: if rx > 0 { busy as f64 / rx as f64 } else { 0.0 },
        cycles_per_packet_pct: [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.9),
            hist.value_at_quantile(0.99),
            hist.max(),
        ],
        switch: switch_stats(sw)?,
        blk: Vec::new(),
    })
}

/// The switch's statistics report (what `vswitch stats` shows).
fn switch_stats(sw: &Switch) -> Result<StatsReport, String> {
    match switch::control::handle(sw, &NoPorts, Request::Stats) {
        Reply::Stats(r) => Ok(*r),
        other => Err(format!("unexpected stats reply: {other:?}")),
    }
}

/// A port's cumulative counters: the device's own plus the frames its tx
/// queues refused.
fn sample(ports: &Ports, no: u16, id: u16) -> PortSample {
    let st = ports.stats(no, id);
    PortSample {
        rx_packets: st.ipackets,
        tx_packets: st.opackets,
        rx_bytes: st.ibytes,
        tx_bytes: st.obytes,
        drops: st.imissed + st.ierrors + st.oerrors + st.rx_nombuf + ports.tx_drops.port_total(no),
    }
}

/// Connections the monitor expires per 100 ms tick at most (160k/s): the
/// sweep locks one shard of the table for 64 entries at a time, so the
/// forwarding lcores never wait long, and a burst of expiries is spread
/// over a few ticks.
const CT_SWEEP_BUDGET: usize = 16 * 1024;

/// Expire idle connections of the switch's tracker, and IP fragments
/// held past their time, on the monitor's thread (never a forwarding
/// lcore): fragments are freed when traffic stops.
fn sweep_conntrack(sw: &Switch) {
    let now = sw.now_ms();
    sw.conntrack().sweep(now, CT_SWEEP_BUDGET);
    sw.expire_fragments(now);
}

/// When the monitor prints and stops.
#[derive(Clone, Copy)]
struct Timing {
    duration: Option<Duration>,
    interval: Option<Duration>,
    idle_exit: Option<Duration>,
}

/// Prints port rates, decides when to stop, and expires timed-out rules
/// (also without a control socket, whose server does it too).
fn monitor(stop: &AtomicBool, ports: &Ports, sw: &Switch, t: Timing, json: bool) {
    let Timing {
        duration,
        interval,
        idle_exit,
    } = t;
    let start = Instant::now();
    let mut last = Instant::now();
    let mut last_rx = (0u64, Instant::now());
    let snapshot = || -> Vec<(u16, String, PortSample)> {
        ports
            .list()
            .into_iter()
            .map(|(no, name, id)| (no, name, sample(ports, no, id)))
            .collect()
    };
    let mut prev = snapshot();
    let mut expired_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        if expired_at.elapsed() >= Duration::from_millis(100) {
            sw.housekeeping();
            sweep_conntrack(sw);
            expired_at = Instant::now();
        }
        if duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        if let Some(idle) = idle_exit {
            let rx: u64 = ports
                .list()
                .iter()
                .map(|(_, _, id)| dpdk::stats_of(*id).map(|s| s.ipackets).unwrap_or(0))
                .sum();
            if rx != last_rx.0 {
                last_rx = (rx, Instant::now());
            } else if rx > 0 && last_rx.1.elapsed() >= idle {
                break;
            }
        }
        let Some(iv) = interval else { continue };
        if last.elapsed() < iv {
            continue;
        }
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let cur = snapshot();
        for (no, name, s) in &cur {
            let before = prev
                .iter()
                .find(|(p, _, _)| p == no)
                .map(|(_, _, s)| *s)
                .unwrap_or_default();
            let r = stats::rates(*no as usize, name, &before, s, secs);
            if json {
                println!("{}", serde_json::json!({"type": "port_stats", "stats": r}));
            } else {
                println!("{}", stats::format_line(&r));
            }
        }
        prev = cur;
    }
    stop.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_names() {
        assert!(is_pci("0000:01:00.0"));
        assert!(is_pci("01:00.1"));
        assert!(!is_pci("net_null0"));
        assert!(!is_pci("net_pcap0"));
    }

    #[test]
    fn mbuf_counts() {
        assert_eq!(default_mbufs(2), 8191);
        assert_eq!(default_mbufs(4), 16383);
    }

    #[test]
    fn default_eal_skips_pci_for_virtual_ports() {
        let eal = default_eal(&["net_null0".into()]);
        assert!(eal.contains(&"--no-pci".to_string()));
        let eal = default_eal(&["0000:01:00.0".into()]);
        assert!(!eal.contains(&"--no-pci".to_string()));
    }
}
