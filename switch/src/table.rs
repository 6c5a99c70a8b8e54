//! The shared flow table: immutable versions published to the workers, and
//! updates from the control thread that return only once no worker can
//! still be using the old version.
//!
//! Concurrency protocol (quiescent-state based reclamation, per burst):
//! * each worker owns a slot holding `version << 1 | in_burst`;
//! * at the start of a burst the worker stores `cur << 1 | 1` (SeqCst),
//!   then loads the published version number (SeqCst) and, if it changed,
//!   picks up the new table (one `ArcSwap` load, no lock);
//! * at the end of a burst it stores `cur << 1` (Release);
//! * an update publishes the new table and version (SeqCst), then waits for
//!   every slot to be outside a burst or on the new version.
//!
//! In the SeqCst order either the worker's "in burst" store precedes the
//! updater's read of the slot (the updater waits for that burst to end), or
//! it follows the version store (the worker sees the new version before
//! classifying anything). So when `add`/`del` return, no frame is being or
//! will be switched by a removed or superseded rule. Idle workers never
//! delay an update.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::action::Action;
use crate::classifier::{Classifier, Entry};
use crate::key::FlowKey;
use crate::rule::{Match, RuleSpec};
use crate::verdict::MAX_PORTS;

/// Per-core counters of one rule: written by one worker only (plain
/// load+store, no read-modify-write), read by the control thread.
#[derive(Default)]
#[repr(C, align(64))]
struct RuleCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    last_used_ms: AtomicU64,
}

/// An installed rule.
pub struct Rule {
    /// Unique id (never reused).
    pub id: u64,
    /// What the user asked for.
    pub spec: RuleSpec,
    /// Installation time.
    pub created_ms: u64,
    /// The actions only output, flood or drop: the verdict depends on the
    /// ingress port alone, so frames of one burst that hit this rule share
    /// one verdict (the datapath executes the actions once per run).
    pub simple: bool,
    counters: Box<[RuleCounters]>,
}

impl Rule {
    fn new(id: u64, spec: RuleSpec, created_ms: u64, workers: usize) -> Rule {
        let simple = spec
            .actions
            .iter()
            .all(|a| matches!(a, Action::Output(_) | Action::Flood | Action::Drop));
        Rule {
            id,
            spec,
            created_ms,
            simple,
            counters: (0..workers).map(|_| RuleCounters::default()).collect(),
        }
    }

    /// Prefetch what the datapath touches after a lookup: this worker's
    /// counter line and the action list.
    #[inline(always)]
    pub(crate) fn prefetch_hot(&self, worker: usize) {
        if let Some(c) = self.counters.get(worker) {
            crate::flowcache::prefetch(c);
        }
        if let Some(a) = self.spec.actions.first() {
            crate::flowcache::prefetch(a);
        }
    }

    /// Count one packet of `bytes` on `worker` (only that worker calls this).
    #[inline]
    pub fn hit(&self, worker: usize, bytes: u64, now_ms: u64) {
        if let Some(c) = self.counters.get(worker) {
            c.packets.store(c.packets.load(Relaxed) + 1, Relaxed);
            c.bytes.store(c.bytes.load(Relaxed) + bytes, Relaxed);
            c.last_used_ms.store(now_ms, Relaxed);
        }
    }

    /// Count `packets` packets of `bytes` bytes in all on `worker` at once.
    #[inline]
    pub fn hit_many(&self, worker: usize, packets: u64, bytes: u64, now_ms: u64) {
        if let Some(c) = self.counters.get(worker) {
            c.packets.store(c.packets.load(Relaxed) + packets, Relaxed);
            c.bytes.store(c.bytes.load(Relaxed) + bytes, Relaxed);
            c.last_used_ms.store(now_ms, Relaxed);
        }
    }

    /// `(packets, bytes, last_used_ms)` summed/maxed over workers.
    pub fn counters(&self) -> (u64, u64, u64) {
        self.counters
            .iter()
            .fold((0, 0, self.created_ms), |(p, b, l), c| {
                (
                    p + c.packets.load(Relaxed),
                    b + c.bytes.load(Relaxed),
                    l.max(c.last_used_ms.load(Relaxed)),
                )
            })
    }

    fn expired(&self, now_ms: u64) -> bool {
        let s = &self.spec;
        let hard =
            s.hard_timeout != 0 && now_ms >= self.created_ms + u64::from(s.hard_timeout) * 1000;
        let idle =
            s.idle_timeout != 0 && now_ms >= self.counters().2 + u64::from(s.idle_timeout) * 1000;
        hard || idle
    }
}

/// One immutable version of the table.
pub struct TableVersion {
    /// Version number (starts at 1, +1 per update).
    pub version: u64,
    /// Rules in installation order; classifier results index this.
    pub rules: Vec<Arc<Rule>>,
    /// The classifier over `rules`.
    pub classifier: Classifier,
    /// When every rule matches on `in_port` alone and only outputs, floods
    /// or drops, the winning rule per ingress port (`u32::MAX`: none): the
    /// datapath then decides a whole burst with one lookup and never parses
    /// the frames (what OVS calls "simple match").
    pub port_only: Option<Box<[u32; MAX_PORTS as usize]>>,
    /// Every bit any rule looks at (the union of the rules' masks). The
    /// classifier's answer for `key` equals its answer for
    /// `key & lookup_mask`, since each rule compares `key & mask` and
    /// `mask ⊆ lookup_mask`. The datapath therefore caches masked keys:
    /// frames that differ only in fields no rule reads share one cache
    /// entry (OVS's megaflow idea, with the table-wide mask instead of
    /// per-lookup wildcards).
    pub lookup_mask: FlowKey,
}

impl TableVersion {
    fn build(version: u64, rules: Vec<Arc<Rule>>) -> TableVersion {
        let entries: Vec<Entry> = rules
            .iter()
            .map(|r| Entry {
                matcher: r.spec.matcher,
                priority: r.spec.priority,
            })
            .collect();
        let classifier = Classifier::build(&entries);
        let port_only = port_only_table(&rules, &classifier);
        let lookup_mask = rules
            .iter()
            .fold(FlowKey::ZERO, |m, r| m.union(&r.spec.matcher.mask));
        TableVersion {
            version,
            classifier,
            rules,
            port_only,
            lookup_mask,
        }
    }
}

/// The per-ingress-port winners when no rule looks past `in_port` and no
/// rule rewrites frames or needs their headers (NORMAL learns MACs).
fn port_only_table(
    rules: &[Arc<Rule>],
    classifier: &Classifier,
) -> Option<Box<[u32; MAX_PORTS as usize]>> {
    if rules.is_empty() {
        return None;
    }
    for r in rules {
        let mut mask = r.spec.matcher.mask;
        mask.set_in_port(0);
        if mask != FlowKey::ZERO {
            return None;
        }
        if !r.simple {
            return None;
        }
    }
    let mut t = Box::new([u32::MAX; MAX_PORTS as usize]);
    for (p, slot) in t.iter_mut().enumerate() {
        let mut k = FlowKey::ZERO;
        k.set_in_port(p as u16);
        // Every frame of port p has this key under these masks, so the
        // classifier's answer for it is the answer for all of them.
        *slot = classifier.lookup(&k).unwrap_or(u32::MAX);
    }
    Some(t)
}

#[derive(Default)]
#[repr(C, align(64))]
pub(crate) struct WorkerSlot(pub(crate) AtomicU64);

struct Shared {
    current: ArcSwap<TableVersion>,
    version: AtomicU64,
    slots: Box<[WorkerSlot]>,
    update: Mutex<u64>, // next rule id
}

/// A rule as reported by `flows dump`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleInfo {
    /// Rule id.
    pub id: u64,
    /// The rule in canonical `ovs-ofctl` syntax.
    pub rule: String,
    /// Priority.
    pub priority: u16,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
    /// Seconds since installation (ms precision).
    pub duration_ms: u64,
    /// Milliseconds since the last packet (or installation).
    pub idle_age_ms: u64,
}

/// Handle to the shared flow table (cheap to clone).
#[derive(Clone)]
pub struct FlowTable {
    shared: Arc<Shared>,
}

impl FlowTable {
    /// An empty table for `workers` worker cores.
    pub fn new(workers: usize) -> FlowTable {
        FlowTable {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(TableVersion::build(1, Vec::new())),
                version: AtomicU64::new(1),
                slots: (0..workers).map(|_| WorkerSlot::default()).collect(),
                update: Mutex::new(1),
            }),
        }
    }

    /// Number of worker slots.
    pub fn workers(&self) -> usize {
        self.shared.slots.len()
    }

    /// The current version (control-thread reads).
    pub fn snapshot(&self) -> Arc<TableVersion> {
        self.shared.current.load_full()
    }

    // ---- worker side -------------------------------------------------

    /// Worker `w` enters a burst; returns the table to use for it.
    #[inline]
    pub(crate) fn enter(&self, w: usize, cur: &mut Arc<TableVersion>) {
        let slot = &self.shared.slots[w].0;
        slot.store((cur.version << 1) | 1, SeqCst);
        if self.shared.version.load(SeqCst) != cur.version {
            *cur = self.shared.current.load_full();
            slot.store((cur.version << 1) | 1, SeqCst);
        }
    }

    /// Worker `w` leaves its burst.
    #[inline]
    pub(crate) fn leave(&self, w: usize, cur: &TableVersion) {
        self.shared.slots[w].0.store(cur.version << 1, Release);
    }

    // ---- control side ------------------------------------------------

    /// Apply `f` to a copy of the rule list, publish it as a new version and
    /// wait until no worker is still in a burst on an older version.
    fn update<R>(&self, f: impl FnOnce(&mut Vec<Arc<Rule>>, &mut u64) -> R) -> R {
        let mut next_id = self.shared.update.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.shared.current.load_full();
        let mut rules = old.rules.clone();
        let r = f(&mut rules, &mut next_id);
        let v = old.version + 1;
        self.shared
            .current
            .store(Arc::new(TableVersion::build(v, rules)));
        self.shared.version.store(v, SeqCst);
        for slot in self.shared.slots.iter() {
            let mut spins = 0u32;
            loop {
                let s = slot.0.load(SeqCst);
                if s & 1 == 0 || s >> 1 >= v {
                    break;
                }
                spins += 1;
                if spins < 100 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        r
    }

    /// Publish a new version with the same rules and wait for every worker
    /// to leave any burst begun before: afterwards no burst that read
    /// earlier shared state (port set, rules) is still running.
    pub fn synchronize(&self) {
        self.update(|_, _| ())
    }

    /// Install a rule; a rule with the same match and priority is replaced
    /// (its counters restart), as `ovs-ofctl add-flow` does. Returns its id.
    pub fn add(&self, spec: RuleSpec, now_ms: u64) -> u64 {
        let workers = self.workers();
        self.update(|rules, next_id| {
            let id = *next_id;
            *next_id += 1;
            let rule = Arc::new(Rule::new(id, spec, now_ms, workers));
            match rules.iter().position(|r| {
                r.spec.priority == rule.spec.priority && r.spec.matcher == rule.spec.matcher
            }) {
                Some(i) => rules[i] = rule,
                None => rules.push(rule),
            }
            id
        })
    }

    /// Install many rules in one version (one wait), e.g. from the config
    /// file or a benchmark.
    pub fn add_many(&self, specs: Vec<RuleSpec>, now_ms: u64) {
        let workers = self.workers();
        self.update(|rules, next_id| {
            for spec in specs {
                let id = *next_id;
                *next_id += 1;
                rules.push(Arc::new(Rule::new(id, spec, now_ms, workers)));
            }
        })
    }

    /// Delete rules. Non-strict: every rule at least as specific as
    /// `filter` (`ovs-ofctl del-flows`); strict: identical match and, when
    /// given, priority (`--strict`). Returns how many were removed.
    pub fn del(&self, filter: &Match, priority: Option<u16>, strict: bool) -> usize {
        self.update(|rules, _| {
            let before = rules.len();
            rules.retain(|r| {
                let hit = if strict {
                    r.spec.matcher == *filter
                } else {
                    r.spec.matcher.within(filter)
                };
                !(hit && priority.is_none_or(|p| p == r.spec.priority))
            });
            before - rules.len()
        })
    }

    /// Remove rules whose idle or hard timeout passed; returns them.
    pub fn expire(&self, now_ms: u64) -> Vec<RuleInfo> {
        if !self.snapshot().rules.iter().any(|r| r.expired(now_ms)) {
            return Vec::new();
        }
        self.update(|rules, _| {
            let mut gone = Vec::new();
            rules.retain(|r| {
                let e = r.expired(now_ms);
                if e {
                    gone.push(info(r, now_ms));
                }
                !e
            });
            gone
        })
    }

    /// All rules with counters, highest priority first.
    pub fn dump(&self, now_ms: u64) -> Vec<RuleInfo> {
        let t = self.snapshot();
        let mut v: Vec<RuleInfo> = t.rules.iter().map(|r| info(r, now_ms)).collect();
        v.sort_by_key(|r| (core::cmp::Reverse(r.priority), r.id));
        v
    }
}

fn info(r: &Rule, now_ms: u64) -> RuleInfo {
    let (packets, bytes, last) = r.counters();
    RuleInfo {
        id: r.id,
        rule: r.spec.to_string(),
        priority: r.spec.priority,
        packets,
        bytes,
        duration_ms: now_ms.saturating_sub(r.created_ms),
        idle_age_ms: now_ms.saturating_sub(last),
    }
}
