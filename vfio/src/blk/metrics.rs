//! A device's counters as Prometheus samples, read at scrape time under the
//! device lock: [`BlkStats`](super::BlkStats), the latency histograms (if tracked) and
//! whatever the backend reports ([`Backend::metrics`]: cache, iSCSI).
//!
//! [`Backend::metrics`]: crate::backend::Backend::metrics

use metrics::{Histogram, MetricSet};

use super::latency::{self, OPS};
use super::BlkDevice;

/// Adds `dev`'s samples, labelled `device="NAME"`.
pub fn collect(dev: &BlkDevice, m: &mut MetricSet) {
    let l = [("device", dev.name())];
    let s = dev.stats();
    let counters = [
        (
            "vswitch_blk_reads_total",
            "Read requests completed.",
            s.reads,
        ),
        (
            "vswitch_blk_writes_total",
            "Write requests completed.",
            s.writes,
        ),
        (
            "vswitch_blk_flushes_total",
            "Flush requests completed.",
            s.flushes,
        ),
        (
            "vswitch_blk_discards_total",
            "Discard and write-zeroes requests completed.",
            s.discards,
        ),
        (
            "vswitch_blk_read_bytes_total",
            "Bytes read by the guest.",
            s.bytes_read,
        ),
        (
            "vswitch_blk_written_bytes_total",
            "Bytes written by the guest.",
            s.bytes_written,
        ),
        (
            "vswitch_blk_errors_total",
            "Requests completed with an error status (IOERR or UNSUPP).",
            s.errors,
        ),
        (
            "vswitch_blk_queue_resets_total",
            "Queues stopped because the driver broke the virtio rules.",
            s.queue_resets,
        ),
        (
            "vswitch_blk_interrupts_total",
            "Interrupts (call eventfd writes) sent.",
            s.interrupts,
        ),
        (
            "vswitch_blk_config_changes_total",
            "Capacity changes announced to the driver (online resize).",
            s.config_changes,
        ),
    ];
    for (name, help, v) in counters {
        m.counter(name, help, &l, v);
    }
    m.gauge(
        "vswitch_blk_requests_in_flight",
        "Requests handed to the backend and not yet completed.",
        &l,
        dev.backend().inflight() as u64,
    );
    m.gauge(
        "vswitch_blk_capacity_bytes",
        "Capacity the guest sees.",
        &l,
        dev.config().capacity_sectors.saturating_mul(512),
    );
    if let Some(lat) = dev.latency() {
        let bounds = latency::bounds_seconds();
        for (op, o) in OPS.iter().zip(&lat.ops) {
            m.histogram(
                "vswitch_blk_request_latency_seconds",
                "Request latency, from the device taking the request off the ring to the \
                 backend completing it, by operation.",
                &[("device", dev.name()), ("op", op)],
                &Histogram {
                    bounds: &bounds,
                    counts: &o.counts,
                    sum: o.sum_ns as f64 / 1e9,
                },
            );
        }
    }
    dev.backend().metrics(m, &l);
}
