//! The DPDK data plane behind `vswitch run`: EAL, pool, ports, worker lcores,
//! a monitor thread for stats and the stop condition.
//!
//! ```text
//!  port 0 rx ──► worker lcore ──► port 1 tx      (streams: 0→1, 1→0, 2→3, ...)
//!  port 1 rx ──►   (bursts)   ──► port 0 tx
//!                     │ relaxed counters
//!  monitor thread ◄───┘  periodic stats, --duration, SIGINT/SIGTERM → stop flag
//! ```

pub mod config;
pub mod forward;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{Eal, HugepageStatus, Mempool, Port, PortConfig};
use hdrhistogram::Histogram;
use serde::Serialize;

use config::RunConfig;
use forward::{Stream, StreamCounters};
use stats::{PortRates, PortSample};

/// The final report of a run.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Seconds the data plane ran.
    pub seconds: f64,
    /// Per-port totals and average rates over the run.
    pub ports: Vec<PortRates>,
    /// Packets forwarded (sent) per second, all ports.
    pub forwarded_pps: f64,
    /// Average TSC cycles per forwarded packet in busy iterations.
    pub cycles_per_packet: f64,
    /// Percentiles of cycles per packet (per burst): p50, p90, p99, max.
    pub cycles_per_packet_pct: [u64; 4],
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
    if hp.free == 0 {
        eal.push("--no-huge".into());
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

/// The mbuf count a run needs: rx rings of every port plus slack, as 2^k-1.
pub fn default_mbufs(ports: usize) -> u32 {
    let need = (ports as u32)
        .saturating_mul(2048)
        .saturating_add(4096)
        .max(8192);
    need.next_power_of_two() - 1
}

/// Runs the data plane until the duration ends or a signal arrives.
pub fn run(cfg: &RunConfig) -> Result<Summary, String> {
    cfg.validate()?;
    if !cfg.no_huge() {
        if let Some(hp) = HugepageStatus::read() {
            if hp.free == 0 {
                return Err("no free hugepages: reserve some with \
                     `echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages` \
                     (and mount hugetlbfs on /dev/hugepages), or add --no-huge to --eal"
                    .into());
            }
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }

    let eal = Eal::init(&cfg.eal).map_err(|e| format!("EAL initialisation failed: {e}"))?;
    let pool = Arc::new(
        Mempool::pktmbuf(
            "vswitch_pool",
            cfg.mbufs,
            256,
            Mempool::DEFAULT_DATA_ROOM,
            -1,
        )
        .map_err(|e| format!("packet pool: {e}"))?,
    );

    let mut ports = Vec::with_capacity(cfg.ports.len());
    for (i, devargs) in cfg.ports.iter().enumerate() {
        let mut p = Port::probe(devargs).map_err(|e| format!("port {i} ({devargs}): {e}"))?;
        p.configure(PortConfig::default(), &pool)
            .map_err(|e| format!("port {i} ({devargs}): {e}"))?;
        ports.push(p);
    }
    for (i, p) in ports.iter_mut().enumerate() {
        p.start()
            .map_err(|e| format!("port {i} ({}): {e}", p.name()))?;
    }

    // Streams, spread round-robin over the worker lcores (or the main lcore).
    let pairs = cfg.streams();
    let counters: Arc<[StreamCounters]> = (0..pairs.len())
        .map(|_| StreamCounters::default())
        .collect();
    let mut streams = Vec::with_capacity(pairs.len());
    for (index, &(rx, tx)) in pairs.iter().enumerate() {
        let rxq = ports[rx].rx_queue(0).map_err(|e| e.to_string())?;
        let txq = ports[tx].tx_queue(0).map_err(|e| e.to_string())?;
        streams.push(Stream {
            index,
            rx: rxq,
            tx: txq,
        });
    }
    let workers = eal.worker_lcores();
    let mut per_worker: Vec<Vec<Stream>> = (0..workers.len().max(1)).map(|_| Vec::new()).collect();
    for (i, s) in streams.into_iter().enumerate() {
        let slot = i % per_worker.len();
        per_worker[slot].push(s);
    }

    let names: Vec<String> = ports.iter().map(|p| p.name().to_owned()).collect();
    let ids: Vec<u16> = ports.iter().map(|p| p.id()).collect();
    println!(
        "vswitch: forwarding {} port(s) on {} lcore(s): {}",
        ports.len(),
        per_worker.iter().filter(|w| !w.is_empty()).count(),
        pairs
            .iter()
            .map(|(a, b)| format!("{}→{}", names[*a], names[*b]))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let start = Instant::now();
    let monitor = {
        let stop = Arc::clone(&stop);
        let counters = Arc::clone(&counters);
        let names = names.clone();
        let ids = ids.clone();
        let pairs = pairs.clone();
        let (duration, interval, json) = (cfg.duration, cfg.stats_interval, cfg.json);
        std::thread::Builder::new()
            .name("vswitch-monitor".into())
            .spawn(move || {
                monitor(
                    &stop, &counters, &pairs, &ids, &names, duration, interval, json,
                )
            })
            .map_err(|e| format!("cannot start the monitor thread: {e}"))?
    };

    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("static histogram bounds");
    if workers.is_empty() {
        let w = per_worker.pop().unwrap_or_default();
        let r = forward::run_worker(w, Arc::clone(&counters), Arc::clone(&stop));
        let _ = hist.add(&r.cycles_per_packet);
    } else {
        let mut jobs = Vec::new();
        for (lcore, w) in workers.iter().zip(per_worker) {
            if w.is_empty() {
                continue;
            }
            let (c, s) = (Arc::clone(&counters), Arc::clone(&stop));
            jobs.push(
                dpdk::lcore::launch(*lcore, move || forward::run_worker(w, c, s))
                    .map_err(|e| format!("cannot start the worker on lcore {lcore}: {e}"))?,
            );
        }
        for j in jobs {
            match j.join() {
                Some(r) => {
                    let _ = hist.add(&r.cycles_per_packet);
                }
                None => return Err("a forwarding worker panicked".into()),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    let seconds = start.elapsed().as_secs_f64();

    let zero = PortSample::default();
    let port_rates: Vec<PortRates> = (0..ports.len())
        .map(|i| {
            stats::rates(
                i,
                &names[i],
                &zero,
                &sample(i, ids[i], &pairs, &counters),
                seconds,
            )
        })
        .collect();
    let sent: u64 = counters.iter().map(|c| c.tx.load(Ordering::Relaxed)).sum();
    let busy: u64 = counters
        .iter()
        .map(|c| c.busy_cycles.load(Ordering::Relaxed))
        .sum();
    let rx: u64 = counters.iter().map(|c| c.rx.load(Ordering::Relaxed)).sum();
    let summary = Summary {
        seconds,
        ports: port_rates,
        forwarded_pps: sent as f64 / seconds.max(1e-9),
        cycles_per_packet: if rx > 0 { busy as f64 / rx as f64 } else { 0.0 },
        cycles_per_packet_pct: [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.9),
            hist.value_at_quantile(0.99),
            hist.max(),
        ],
    };

    // Stop and close the ports (net_pcap flushes its capture files here),
    // then the pool, then the EAL.
    drop(ports);
    drop(pool);
    drop(eal);
    Ok(summary)
}

/// A port's cumulative counters: the device's own plus the tx refusals of
/// the streams that send to it.
fn sample(
    port: usize,
    id: u16,
    pairs: &[(usize, usize)],
    counters: &[StreamCounters],
) -> PortSample {
    let st = dpdk::stats_of(id).unwrap_or_default();
    let refused: u64 = pairs
        .iter()
        .zip(counters)
        .filter(|((_, tx), _)| *tx == port)
        .map(|(_, c)| c.tx_dropped.load(Ordering::Relaxed))
        .sum();
    PortSample {
        rx_packets: st.ipackets,
        tx_packets: st.opackets,
        rx_bytes: st.ibytes,
        tx_bytes: st.obytes,
        drops: st.imissed + st.ierrors + st.oerrors + st.rx_nombuf + refused,
    }
}

#[allow(clippy::too_many_arguments)]
fn monitor(
    stop: &AtomicBool,
    counters: &[StreamCounters],
    pairs: &[(usize, usize)],
    ids: &[u16],
    names: &[String],
    duration: Option<Duration>,
    interval: Option<Duration>,
    json: bool,
) {
    let start = Instant::now();
    let mut last = Instant::now();
    let mut prev: Vec<PortSample> = (0..ids.len())
        .map(|i| sample(i, ids[i], pairs, counters))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        if duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        if let Some(iv) = interval {
            if !iv.is_zero() && last.elapsed() >= iv {
                let secs = last.elapsed().as_secs_f64();
                last = Instant::now();
                let cur: Vec<PortSample> = (0..ids.len())
                    .map(|i| sample(i, ids[i], pairs, counters))
                    .collect();
                for i in 0..ids.len() {
                    let r = stats::rates(i, &names[i], &prev[i], &cur[i], secs);
                    if json {
                        println!("{}", serde_json::json!({"type": "port_stats", "stats": r}));
                    } else {
                        println!("{}", stats::format_line(&r));
                    }
                }
                prev = cur;
            }
        }
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
