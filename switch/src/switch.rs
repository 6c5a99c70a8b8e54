//! The state one switch instance shares between its workers and the
//! control thread: flow table, MAC table, port set, per-core statistics.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

use crate::datapath::Datapath;
use crate::fdb::{Fdb, DEFAULT_AGING_MS};
use crate::group::{GroupSpec, GroupStats, GroupType};
use crate::regs::RegField;
use crate::rule::RuleSpec;
use crate::stats::{CoreStats, Counters};
use crate::table::{FlowModError, FlowTable, RuleInfo};
use crate::verdict::MAX_PORTS;

/// Sizing of a switch.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// Number of worker cores (each gets a [`Datapath`]).
    pub workers: usize,
    /// MAC table capacity (entries).
    pub fdb_capacity: usize,
    /// MAC aging time.
    pub fdb_aging_ms: u32,
    /// Exact-match cache entries per worker.
    pub cache_entries: usize,
    /// Let workers bypass the cache when it cannot pay (see
    /// `datapath::BYPASS_AFTER_INSERTS`); off only to measure the cache.
    pub cache_bypass: bool,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            workers: 1,
            fdb_capacity: 8192,
            fdb_aging_ms: DEFAULT_AGING_MS,
            cache_entries: 1 << 20,
            cache_bypass: true,
        }
    }
}

/// Shared switch state. Create with [`Switch::new`], then one
/// [`Datapath`] per worker with [`Switch::datapath`].
pub struct Switch {
    /// The flow table.
    pub table: FlowTable,
    /// The MAC table of the `normal` action.
    pub fdb: Fdb,
    ports: AtomicU64,
    stats: Box<[CoreStats]>,
    start: Instant,
    cfg: SwitchConfig,
    expired: std::sync::Mutex<Option<ExpiryListener>>,
    conntrack: std::sync::OnceLock<Arc<conntrack::Conntrack>>,
    /// IP fragments the `ct` actions of every worker hold (`ct/ipf.rs`),
    /// made on the first fragment.
    ipf_frags: std::sync::OnceLock<Arc<dyn crate::ct::ipf::SharedFrags>>,
}

/// Told about rules that timed out (OpenFlow flow_removed).
pub type ExpiryListener = Box<dyn Fn(&[crate::table::RuleInfo]) + Send + Sync>;

impl Switch {
    /// A switch with no ports and no rules.
    pub fn new(cfg: SwitchConfig) -> Arc<Switch> {
        let workers = cfg.workers.max(1);
        Arc::new(Switch {
            table: FlowTable::new(workers),
            fdb: Fdb::new(cfg.fdb_capacity, cfg.fdb_aging_ms),
            ports: AtomicU64::new(0),
            stats: (0..workers).map(|_| CoreStats::default()).collect(),
            start: Instant::now(),
            cfg,
            expired: std::sync::Mutex::new(None),
            conntrack: std::sync::OnceLock::new(),
            ipf_frags: std::sync::OnceLock::new(),
        })
    }

    /// Give the switch its connection tracker (the one per process the
    /// `ct` actions of every worker share). Call once, before traffic
    /// meets a `ct` action; fails when a tracker is already set (or a
    /// default one was made, see [`Switch::conntrack`]).
    pub fn set_conntrack(&self, ct: Arc<conntrack::Conntrack>) -> Result<(), String> {
        self.conntrack
            .set(ct)
            .map_err(|_| "the switch already has a connection tracker".to_string())
    }

    /// The connection tracker: the one given to [`Switch::set_conntrack`],
    /// or, when none was, a default one (`conntrack::Config::default()`)
    /// made on first use.
    pub fn conntrack(&self) -> &Arc<conntrack::Conntrack> {
        self.conntrack
            .get_or_init(|| Arc::new(conntrack::Conntrack::new(conntrack::Config::default())))
    }

    /// The fragment lists every worker's `ct` shares (made for frames `F`
    /// on first use).
    pub(crate) fn ipf_shared<F: crate::frame::Frame>(
        &self,
    ) -> Arc<dyn crate::ct::ipf::SharedFrags> {
        Arc::clone(
            self.ipf_frags
                .get_or_init(|| crate::ct::ipf::new_shared::<F>(self.stats.len())),
        )
    }

    /// Drop the IP fragments held past their time (15 s after a list's
    /// first fragment; counted `expired` in `ct ipf status`), as OVS's
    /// `ipf_clean_thread`: for the housekeeping thread and idle poll
    /// rounds, so that fragments are freed when traffic stops. Returns how
    /// many; costs one atomic load while no fragment ever met a `ct`.
    pub fn expire_fragments(&self, now_ms: u64) -> usize {
        match self.ipf_frags.get() {
            Some(s) => s.expire(self.conntrack().ipf(), now_ms),
            None => 0,
        }
    }

    /// Install the default rule `priority=0,actions=NORMAL` when the table
    /// is empty, so the switch behaves as a learning bridge (OVS's default).
    pub fn default_to_normal(&self) {
        if self.table.snapshot().rules.is_empty() {
            let r: RuleSpec = "priority=0,actions=NORMAL".parse().expect("static rule");
            self.table.add(r, self.now_ms()).expect("static rule");
        }
    }

    /// The datapath of worker `worker` (0-based, < workers). Create exactly
    /// one per worker and use it from one thread.
    pub fn datapath(self: &Arc<Self>, worker: usize) -> Datapath {
        assert!(
            worker < self.stats.len(),
            "worker {worker} >= {} workers",
            self.stats.len()
        );
        Datapath::new(
            Arc::clone(self),
            worker,
            self.cfg.cache_entries,
            self.cfg.cache_bypass,
        )
    }

    /// Milliseconds since the switch was created (monotonic): the `now_ms`
    /// the datapath and the timeouts use.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Bitmask of existing ports.
    #[inline]
    pub fn ports_up(&self) -> u64 {
        self.ports.load(Relaxed)
    }

    /// Declare port `p` present (flood and output reach it).
    pub fn port_add(&self, p: u16) -> Result<(), String> {
        if p >= MAX_PORTS {
            return Err(format!("port {p} out of range (0..={})", MAX_PORTS - 1));
        }
        let was = self.ports.fetch_or(1 << p, SeqCst);
        if was & (1 << p) == 0 && self.compiles_ports() {
            // Compiled flows chose fast-failover buckets by port liveness,
            // or spelled out a FLOOD after an `in_port` write: start them
            // over.
            self.table.synchronize();
        }
        Ok(())
    }

    /// True when compiled flows depend on which ports exist: a
    /// fast-failover group, or a rule writing `in_port` (a later `FLOOD`
    /// compiles to the ports up).
    fn compiles_ports(&self) -> bool {
        let snap = self.table.snapshot();
        let writes_in_port = |a: &crate::action::Action| {
            use crate::action::Action;
            let in_port = RegField::Pkt(crate::pkt_field::PktField::InPort);
            match a {
                Action::SetReg(l) => l.dst.field == in_port,
                Action::Move(m) => m.dst.field == in_port,
                _ => false,
            }
        };
        snap.groups
            .iter()
            .any(|g| g.spec.kind == GroupType::FastFailover)
            || snap.rules.iter().any(|r| {
                r.spec.actions.iter().any(writes_in_port)
                    || r.spec
                        .instructions
                        .write_actions
                        .iter()
                        .flatten()
                        .any(writes_in_port)
            })
            || snap.groups.iter().any(|g| {
                g.spec
                    .buckets
                    .iter()
                    .any(|b| b.actions.iter().any(writes_in_port))
            })
    }

    /// OpenFlow OFPGC_ADD: install a group (see [`crate::group`]).
    pub fn group_add(&self, spec: GroupSpec) -> Result<(), FlowModError> {
        self.table.group_add(spec, self.now_ms())
    }

    /// OpenFlow OFPGC_MODIFY: replace an existing group.
    pub fn group_mod(&self, spec: GroupSpec) -> Result<(), FlowModError> {
        self.table.group_mod(spec, self.now_ms())
    }

    /// OpenFlow OFPGC_DELETE: delete group `id` (`None`: all) and the rules
    /// that reference it (returned, reason `GroupDelete`).
    pub fn group_del(&self, id: Option<u32>) -> Vec<RuleInfo> {
        self.table.group_del(id, self.now_ms())
    }

    /// Group counters (packets/bytes per group and bucket), by id.
    pub fn group_stats(&self) -> Vec<GroupStats> {
        self.table.group_stats(self.now_ms())
    }

    /// Group configurations, by id.
    pub fn group_desc(&self) -> Vec<GroupSpec> {
        self.table.group_desc()
    }

    /// Remove port `p`: forget its MACs, and return only when no worker is
    /// still in a burst that could output to it (the lead may then stop
    /// and free the DPDK port). Fast-failover groups watching it switch
    /// buckets (every worker recompiles its flows).
    pub fn port_del(&self, p: u16) -> Result<(), String> {
        if p >= MAX_PORTS || self.ports_up() & (1 << p) == 0 {
            return Err(format!("no port {p}"));
        }
        self.ports.fetch_and(!(1 << p), SeqCst);
        self.fdb.flush_port(p);
        self.table.synchronize();
        Ok(())
    }

    pub(crate) fn core_stats(&self, w: usize) -> &CoreStats {
        &self.stats[w]
    }

    /// Counters of every worker.
    pub fn per_core(&self) -> Vec<Counters> {
        self.stats.iter().map(CoreStats::read).collect()
    }

    /// Counters summed over workers.
    pub fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for c in self.per_core() {
            t.add(&c);
        }
        t
    }

    /// Periodic work for the control thread: expire timed-out rules.
    /// Call every ~100 ms. Returns how many rules expired.
    pub fn housekeeping(&self) -> usize {
        let gone = self.table.expire(self.now_ms());
        if !gone.is_empty() {
            if let Some(f) = self
                .expired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                f(&gone);
            }
        }
        gone.len()
    }

    /// Calls `f` with the rules each [`Switch::housekeeping`] expires.
    pub fn on_expired(&self, f: ExpiryListener) {
        *self.expired.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
}
