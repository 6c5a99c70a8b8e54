//! The registry: collectors that read existing counters when a scrape
//! comes, never before.
//!
//! A collector is a closure given a [`MetricSet`] to add to. The data plane
//! keeps its counters anyway (relaxed atomics, per-device plain counters
//! behind the device lock); a collector only loads them, so metrics cost the
//! fast path nothing between scrapes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::encode::MetricSet;

/// A collector: adds its samples to the scrape's set.
pub type Collector = Box<dyn Fn(&mut MetricSet) + Send + Sync>;

/// Collectors, by registration.
#[derive(Default)]
pub struct Registry {
    collectors: Mutex<Vec<(u64, Collector)>>,
    next: Mutex<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.collectors.lock().map_or(0, |c| c.len());
        f.debug_struct("Registry").field("collectors", &n).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds a collector; returns its id (for [`Registry::unregister`]).
    pub fn register(&self, c: impl Fn(&mut MetricSet) + Send + Sync + 'static) -> u64 {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        self.collectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, Box::new(c)));
        id
    }

    /// Removes a collector.
    pub fn unregister(&self, id: u64) {
        self.collectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }

    /// Runs every collector. One that panics loses its samples for this
    /// scrape (logged); the others and the server go on.
    pub fn gather(&self) -> MetricSet {
        let mut set = MetricSet::new();
        let collectors = self.collectors.lock().unwrap_or_else(|e| e.into_inner());
        for (id, c) in collectors.iter() {
            let mut part = MetricSet::new();
            match catch_unwind(AssertUnwindSafe(|| c(&mut part))) {
                Ok(()) => set.merge(part),
                Err(_) => eprintln!("metrics: collector {id} panicked; its samples are left out"),
            }
        }
        set
    }

    /// The text exposition of every collector's samples.
    pub fn render(&self) -> String {
        self.gather().encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn collectors_read_at_scrape_time_and_share_families() {
        let r = Registry::new();
        let c = Arc::new(AtomicU64::new(1));
        for dev in ["a", "b"] {
            let c = Arc::clone(&c);
            r.register(move |m| {
                m.counter(
                    "reads_total",
                    "Reads.",
                    &[("device", dev)],
                    c.load(Ordering::Relaxed),
                )
            });
        }
        assert_eq!(
            r.render(),
            "# HELP reads_total Reads.\n# TYPE reads_total counter\n\
             reads_total{device=\"a\"} 1\nreads_total{device=\"b\"} 1\n"
        );
        c.store(5, Ordering::Relaxed);
        assert!(r.render().contains("reads_total{device=\"b\"} 5\n"));
    }

    #[test]
    fn unregister_and_panicking_collector() {
        let r = Registry::new();
        let id = r.register(|m| m.gauge("g", "G.", &[], 1));
        r.register(|_| panic!("collector bug"));
        r.register(|m| m.gauge("h", "H.", &[], 2));
        let t = r.render();
        assert!(t.contains("g 1\n") && t.contains("h 2\n"), "{t}");
        r.unregister(id);
        assert!(!r.render().contains("g 1"));
    }
}
