//! Device counters: the stats line, the stats file's JSON lines (what
//! `vswitch blk stats` reads), and committing devices at shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vfio::blk::BlkStats;
use vfio::cache::CacheCounters;
use vfio::poller::SharedDevice;

/// Stats line suffix for a cached device.
pub fn cache_text(c: Option<&Arc<CacheCounters>>) -> String {
    c.map_or_else(String::new, |c| {
        let s = c.snapshot();
        format!(
            " | cache hits {} misses {} evictions {} writebacks {} dirty {} bad_entries {} passthrough {}",
            s.hits, s.misses, s.evictions, s.writebacks, s.dirty, s.bad_entries, s.passthrough
        )
    })
}

pub fn stats_json(name: &str, s: &BlkStats, cache: Option<&Arc<CacheCounters>>) -> String {
    let extra = cache.map_or_else(String::new, |c| format!(",{}", c.snapshot().json_fields()));
    format!(
        "{{\"device\":\"{}\",\"reads\":{},\"writes\":{},\"flushes\":{},\"discards\":{},\"get_ids\":{},\
         \"bytes_read\":{},\"bytes_written\":{},\"errors\":{},\"queue_resets\":{},\"interrupts\":{}{extra}}}",
        name.replace(['"', '\\'], "_"),
        s.reads,
        s.writes,
        s.flushes,
        s.discards,
        s.get_ids,
        s.bytes_read,
        s.bytes_written,
        s.errors,
        s.queue_resets,
        s.interrupts
    )
}

pub fn publish_stats(
    path: &std::path::Path,
    devices: &[vfio::poller::SharedDevice],
    caches: &[Option<Arc<CacheCounters>>],
) {
    let mut out = String::new();
    for (d, c) in devices.iter().zip(caches) {
        let dev = d.lock();
        out.push_str(&stats_json(dev.name(), &dev.stats(), c.as_ref()));
        out.push('\n');
    }
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, out)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        eprintln!("blk: cannot write stats to {}", path.display());
    }
}

pub fn stats_line(name: &str, s: &BlkStats, prev: &BlkStats, secs: f64) -> String {
    let ops = (s.reads + s.writes + s.flushes + s.discards)
        - (prev.reads + prev.writes + prev.flushes + prev.discards);
    format!(
        "blk {name}: reads {} writes {} flushes {} discards {} get_id {} errors {} queue_resets {} \
         read {} MiB written {} MiB interrupts {} | {:.0} IOPS",
        s.reads,
        s.writes,
        s.flushes,
        s.discards,
        s.get_ids,
        s.errors,
        s.queue_resets,
        s.bytes_read >> 20,
        s.bytes_written >> 20,
        s.interrupts,
        ops as f64 / secs.max(1e-9)
    )
}

/// How long a clean shutdown waits for a device's last requests and flush
/// when a write-back cache holds dirty blocks (data only the cache has).
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(30);
/// The same without dirty blocks: the flush only asks the backend to make
/// completed writes durable; a backend that cannot (a target that went
/// away) costs a warning, not the exit status.
const SHUTDOWN_FLUSH_CLEAN: Duration = Duration::from_secs(5);

/// A clean shutdown commits what the devices' backends hold: requests in
/// flight complete, then a flush writes back a write-back cache's dirty
/// blocks (and syncs a file). Nothing is lost on SIGTERM; an error names
/// the device whose dirty blocks could not be written back.
pub fn flush_at_shutdown(
    devices: &[SharedDevice],
    caches: &[Option<Arc<CacheCounters>>],
) -> Result<(), String> {
    let mut failed = Vec::new();
    for (d, c) in devices.iter().zip(caches) {
        let dirty = c.as_ref().map_or(0, |c| c.snapshot().dirty);
        let mut dev = d.lock();
        let wait = if dirty > 0 {
            SHUTDOWN_FLUSH
        } else {
            SHUTDOWN_FLUSH_CLEAN
        };
        match dev.drain_and_flush(wait) {
            Ok(true) if dirty > 0 => eprintln!(
                "blk {}: wrote back {dirty} dirty cache block(s) at shutdown",
                dev.name()
            ),
            Ok(_) => {}
            Err(e) if dirty == 0 => eprintln!("blk {e} (no dirty cache blocks: nothing lost)"),
            Err(e) => {
                eprintln!("blk {e}; {dirty} dirty cache block(s) were not written back");
                failed.push(e);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "data not committed at shutdown: {}",
            failed.join("; ")
        ))
    }
}

/// Lets the vhost-user servers end (each checks `stop` between
/// connections; a front end that disconnects has its queues drained while
/// the switch still runs). A connection still open after 2 s (a VM that
/// keeps running) is left to the process's exit.
pub fn finish(threads: Vec<std::thread::JoinHandle<()>>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in threads {
        if t.is_finished() {
            let _ = t.join();
        } else {
            eprintln!(
                "vswitch: a vhost-user front end is still connected; leaving its connection open"
            );
        }
    }
}
