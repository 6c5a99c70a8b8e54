//! `vswitch stats`: per-core datapath statistics of a running switch:
//! cycles per packet, cache hit rate, drops by reason, malformed frames.

use std::path::PathBuf;

use clap::Args;
use switch::control::{request, CoreReport, Reply, Request, DEFAULT_SOCKET};

/// Arguments of `vswitch stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// Control socket of the running switch (the PATH given to `vswitch run
    /// --control`; `--control` is accepted here too).
    #[arg(long, visible_alias = "control", value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

fn row(name: &str, r: &CoreReport) {
    let c = &r.counters;
    println!(
        "{name:>6} {:>12} {:>12} {:>12} {:>8.1} {:>7.2}% {:>10}",
        c.rx_packets,
        c.tx_packets,
        c.dropped(),
        r.cycles_per_packet,
        r.cache_hit_rate * 100.0,
        c.malformed.iter().sum::<u64>()
    );
}

/// Run `vswitch stats`.
pub fn run(a: StatsArgs) -> Result<(), String> {
    let reply = request(&a.socket, &Request::Stats)?;
    if a.json {
        return super::print_json(&reply);
    }
    let Reply::Stats(s) = reply else {
        return Err(format!("unexpected reply {reply:?}"));
    };
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>8} {:>8} {:>10}",
        "core", "rx", "tx", "dropped", "cyc/pkt", "cache", "malformed"
    );
    for r in &s.per_core {
        row(&r.worker.map_or("?".into(), |w| w.to_string()), r);
    }
    row("total", &s.total);
    println!(
        "cache: {} hits, {} misses, {} bypassed (classifier direct)",
        s.total.counters.cache_hits, s.total.counters.cache_misses, s.total.counters.cache_bypassed
    );
    println!(
        "rules: {}  subtables: {}  fdb entries: {}",
        s.rules, s.subtables, s.fdb_entries
    );
    let ct = &s.ct;
    println!(
        "conntrack: {} entries, {} committed, {} invalid, {} limit drops, {} expired",
        ct.entries, ct.committed, ct.invalid, ct.limit_drops, ct.expired
    );
    println!("drops by reason:");
    for (k, v) in &s.total.drops {
        println!("  {k:<14} {v}");
    }
    println!("malformed by reason:");
    for (k, v) in &s.total.malformed {
        println!("  {k:<16} {v}");
    }
    Ok(())
}
