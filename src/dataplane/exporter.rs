//! `--metrics ADDR`: the Prometheus endpoint of `vswitch run` and
//! `vswitch blk serve` (crate `metrics`), and the collectors that read the
//! switch's and the storage devices' counters when it is scraped.
//!
//! ```text
//!  GET /metrics ─► metrics::Server ─► Registry::gather
//!                    ├─ switch:  ports (DPDK stats + tx refusals), per-core datapath
//!                    │           counters (Switch::per_core), worker loop counters, rules, MACs,
//!                    │           conntrack counters (Conntrack::stats)
//!                    └─ storage: PollGroup::collect ─► each device (lock, BlkStats, latency,
//!                                Backend::metrics: cache, iSCSI session)
//! ```
//!
//! The data plane does no extra work for metrics except the storage
//! devices' latency histograms (two clock reads per poll batch), which are
//! turned on only with `--metrics`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::Args;
use metrics::{MetricSet, Registry, Server};
use switch::extract::Malformed;
use switch::switch::Switch;
use switch::verdict::DropReason;
use vfio::poller::PollGroup;

use super::ports::Ports;
use super::worker::LoopCounters;

/// `--metrics ADDR [--metrics-allow-remote]`, shared by `vswitch run` and
/// `vswitch blk serve`.
#[derive(Args, Debug, Default, Clone)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics (text format 0.0.4) over HTTP at
    /// http://ADDR/metrics, e.g. 127.0.0.1:9100. Loopback addresses only
    /// unless --metrics-allow-remote: the endpoint has no authentication.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Let --metrics listen on a non-loopback address (anyone who reaches
    /// it sees device names and traffic counters).
    #[arg(long, requires = "metrics")]
    pub metrics_allow_remote: bool,
}

impl MetricsArgs {
    /// The checked listen address, if metrics are on.
    pub fn addr(&self) -> Result<Option<SocketAddr>, String> {
        self.metrics
            .as_deref()
            .map(|s| metrics::parse_listen(s, self.metrics_allow_remote, "--metrics"))
            .transpose()
    }
}

/// Starts the endpoint on `addr` with `registry` (plus `vswitch_build_info`).
pub fn serve(addr: SocketAddr, registry: Arc<Registry>) -> Result<Server, String> {
    registry.register(|m| {
        m.gauge(
            "vswitch_build_info",
            "Always 1; the labels name the vswitch version.",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        )
    });
    let s = Server::start(addr, registry).map_err(|e| format!("--metrics {addr}: {e}"))?;
    eprintln!("vswitch: metrics on http://{}/metrics", s.local_addr());
    Ok(s)
}

/// Registers the storage devices of `group` (those added later too) and
/// turns their latency histograms on.
pub fn register_storage(registry: &Registry, group: &Arc<PollGroup>) {
    group.track_latency();
    let g = Arc::clone(group);
    registry.register(move |m| g.collect(m));
}

/// `vswitch blk serve --metrics`: the endpoint for the devices of `group`
/// (`None` without `--metrics`).
pub fn serve_storage(
    addr: Option<SocketAddr>,
    group: &Arc<PollGroup>,
) -> Result<Option<Server>, String> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let reg = Registry::new();
    register_storage(&reg, group);
    serve(addr, reg).map(Some)
}

/// Registers the switch: ports, datapath counters, worker loops, tables.
pub fn register_switch(
    registry: &Registry,
    sw: &Arc<Switch>,
    ports: &Arc<Ports>,
    loops: &[Arc<LoopCounters>],
    tsc_hz: u64,
) {
    let (sw, p, loops) = (Arc::clone(sw), Arc::clone(ports), loops.to_vec());
    registry.register(move |m| {
        ports_metrics(m, &p);
        datapath_metrics(m, &sw, &loops, tsc_hz);
    });
}

/// Registers the connection tracker's counters (`vswitch_ct_*`).
pub fn register_conntrack(registry: &Registry, ct: &Arc<conntrack::Conntrack>) {
    let ct = Arc::clone(ct);
    registry.register(move |m| {
        let s = ct.stats();
        m.gauge(
            "vswitch_ct_entries",
            "Connections in the connection tracker.",
            &[],
            s.entries,
        );
        for (name, help, v) in [
            (
                "vswitch_ct_committed_total",
                "Connections committed (ct(commit)).",
                s.committed,
            ),
            (
                "vswitch_ct_invalid_total",
                "Packets the tracker marked invalid (+inv).",
                s.invalid,
            ),
            (
                "vswitch_ct_limit_drops_total",
                "Commits refused by a zone limit or a full table.",
                s.limit_drops,
            ),
            (
                "vswitch_ct_expired_total",
                "Connections expired by the sweep.",
                s.expired,
            ),
        ] {
            m.counter(name, help, &[], v);
        }
    });
}

/// Per-port counters: the device's (DPDK ethdev stats) plus the frames the
/// switch's tx queues refused.
fn ports_metrics(m: &mut MetricSet, ports: &Ports) {
    for (no, name, id) in ports.list() {
        let st = ports.stats(no, id);
        let num = no.to_string();
        let l = [("port", num.as_str()), ("name", name.as_str())];
        m.counter(
            "vswitch_port_rx_packets_total",
            "Packets received by the port.",
            &l,
            st.ipackets,
        );
        m.counter(
            "vswitch_port_tx_packets_total",
            "Packets sent by the port.",
            &l,
            st.opackets,
        );
        m.counter(
            "vswitch_port_rx_bytes_total",
            "Bytes received by the port.",
            &l,
            st.ibytes,
        );
        m.counter(
            "vswitch_port_tx_bytes_total",
            "Bytes sent by the port.",
            &l,
            st.obytes,
        );
        let drops = [
            ("rx_missed", st.imissed),
            ("rx_errors", st.ierrors),
            ("tx_errors", st.oerrors),
            ("rx_nombuf", st.rx_nombuf),
            ("tx_full", ports.tx_drops.port_total(no)),
        ];
        for (reason, v) in drops {
            m.counter(
                "vswitch_port_drops_total",
                "Packets the port dropped, by reason: rx_missed (no rx descriptor), rx_errors, \
                 tx_errors, rx_nombuf (no mbuf), tx_full (the tx queue refused them).",
                &[l[0], l[1], ("reason", reason)],
                v,
            );
        }
    }
}

/// The flow-table datapath per forwarding core, the worker loops' cycle
/// counters, and the table sizes.
fn datapath_metrics(m: &mut MetricSet, sw: &Switch, loops: &[Arc<LoopCounters>], tsc_hz: u64) {
    for (i, c) in sw.per_core().iter().enumerate() {
        let core = i.to_string();
        let l = [("core", core.as_str())];
        let per = [
            (
                "vswitch_datapath_packets_total",
                "Frames the flow-table datapath processed.",
                c.rx_packets,
            ),
            (
                "vswitch_datapath_bytes_total",
                "Bytes the flow-table datapath processed.",
                c.rx_bytes,
            ),
            (
                "vswitch_datapath_output_packets_total",
                "Frame copies the datapath output (a flood to 3 ports counts 3).",
                c.tx_packets,
            ),
            (
                "vswitch_flow_cache_hits_total",
                "Exact-match flow cache hits.",
                c.cache_hits,
            ),
            (
                "vswitch_flow_cache_misses_total",
                "Exact-match flow cache misses (classifier lookups).",
                c.cache_misses,
            ),
            (
                "vswitch_datapath_port_only_total",
                "Frames decided by the per-port table (rules match in_port only; not parsed, \
                 no flow cache lookup).",
                c.port_only,
            ),
            (
                "vswitch_classifier_misses_total",
                "Classifier lookups that matched no rule.",
                c.classifier_misses,
            ),
            ("vswitch_fdb_learned_total", "MACs learned.", c.fdb_learned),
            ("vswitch_flooded_total", "Frames flooded.", c.flooded),
        ];
        for (name, help, v) in per {
            m.counter(name, help, &l, v);
        }
        for r in DropReason::ALL {
            m.counter(
                "vswitch_datapath_drops_total",
                "Frames the datapath dropped, by reason.",
                &[l[0], ("reason", r.name())],
                c.drop_count(r),
            );
        }
        for r in Malformed::ALL {
            m.counter(
                "vswitch_datapath_malformed_total",
                "Malformed frames (still switched on L2), by reason.",
                &[l[0], ("reason", r.name())],
                c.malformed_count(r),
            );
        }
    }
    for (i, c) in loops.iter().enumerate() {
        let core = i.to_string();
        let l = [("core", core.as_str())];
        m.counter(
            "vswitch_worker_rx_packets_total",
            "Packets the forwarding core received (flow table or patch panel).",
            &l,
            c.rx.load(Ordering::Relaxed),
        );
        m.counter(
            "vswitch_worker_tx_packets_total",
            "Packets the forwarding core handed to tx queues.",
            &l,
            c.tx.load(Ordering::Relaxed),
        );
        m.counter(
            "vswitch_worker_busy_cycles_total",
            "TSC cycles of polling rounds that received packets (all rx queues of the round, rx to tx); \
             cycles per packet = rate(this) / rate(vswitch_worker_rx_packets_total).",
            &l,
            c.busy_cycles.load(Ordering::Relaxed),
        );
        m.counter(
            "vswitch_worker_busy_rounds_total",
            "Polling rounds that received packets (OVS's busy iterations); \
             packets per busy round = rate(vswitch_worker_rx_packets_total) / rate(this).",
            &l,
            c.busy_rounds.load(Ordering::Relaxed),
        );
    }
    m.gauge(
        "vswitch_tsc_hz",
        "TSC frequency (cycles per second).",
        &[],
        tsc_hz,
    );
    let t = sw.table.snapshot();
    m.gauge(
        "vswitch_flow_rules",
        "Rules installed in the flow tables.",
        &[],
        t.rules.len() as u64,
    );
    m.gauge(
        "vswitch_flow_subtables",
        "Classifier subtables (distinct masks).",
        &[],
        t.subtables() as u64,
    );
    m.gauge(
        "vswitch_fdb_entries",
        "Live entries of the MAC learning table.",
        &[],
        sw.fdb.entries(sw.now_ms()).len() as u64,
    );
}
