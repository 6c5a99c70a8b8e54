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

use crate::action::{Action, Instructions};
use crate::classifier::{Classifier, Entry};
use crate::ct::CtKey;
use crate::group::{Group, GroupSpec, GroupStats};
use crate::key::FlowKey;
use crate::pipeline::{needs_pipeline, pipeline_mask, Pipeline};
use crate::rule::{FlowFilter, Match, RuleSpec};
use crate::verdict::MAX_PORTS;

/// Per-core counters of one rule: written by one worker only (plain
/// load+store, no read-modify-write), read by the control thread.
#[derive(Default, Debug)]
#[repr(C, align(64))]
pub(crate) struct RuleCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    last_used_ms: AtomicU64,
}

impl RuleCounters {
    /// Add `packets`/`bytes` (one writer per instance: the worker).
    #[inline(always)]
    pub(crate) fn add(&self, packets: u64, bytes: u64, now_ms: u64) {
        self.packets
            .store(self.packets.load(Relaxed) + packets, Relaxed);
        self.bytes.store(self.bytes.load(Relaxed) + bytes, Relaxed);
        self.last_used_ms.store(now_ms, Relaxed);
    }
}

/// An installed rule.
pub struct Rule {
    /// Unique id (never reused; kept by OpenFlow modify).
    pub id: u64,
    /// What the user asked for.
    pub spec: RuleSpec,
    /// Installation time.
    pub created_ms: u64,
    /// The actions only output, flood or drop: the verdict depends on the
    /// ingress port alone, so frames of one burst that hit this rule share
    /// one verdict (the datapath executes the actions once per run).
    pub simple: bool,
    /// Shared with the rule's earlier versions when a modify kept them.
    counters: Arc<[RuleCounters]>,
    /// Stable handle of this rule object across table versions (unlike its
    /// index in [`TableVersion::rules`], which shifts when an earlier rule
    /// goes): what the flow cache stores, mapped back to the index with
    /// [`TableVersion::slot_index`]. Freed when the rule object leaves the
    /// table; a later rule may reuse it (see [`TableVersion::changes`] for
    /// why that is safe).
    pub(crate) slot: u32,
}

impl Rule {
    fn new(id: u64, spec: RuleSpec, created_ms: u64, workers: usize, slot: u32) -> Rule {
        let counters = (0..workers).map(|_| RuleCounters::default()).collect();
        Rule::with_counters(id, spec, created_ms, counters, slot)
    }

    fn with_counters(
        id: u64,
        spec: RuleSpec,
        created_ms: u64,
        counters: Arc<[RuleCounters]>,
        slot: u32,
    ) -> Rule {
        let simple = spec.instructions.is_empty()
            && spec
                .actions
                .iter()
                .all(|a| matches!(a, Action::Output(_) | Action::Flood | Action::Drop));
        Rule {
            id,
            spec,
            created_ms,
            simple,
            counters,
            slot,
        }
    }
    /// The per-worker counters (compiled flows keep a reference, one
    /// dependent load from the counter line).
    pub(crate) fn counter_set(&self) -> &Arc<[RuleCounters]> {
        &self.counters
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

    fn expired(&self, now_ms: u64) -> Option<RemovalReason> {
        let s = &self.spec;
        if s.hard_timeout != 0 && now_ms >= self.created_ms + u64::from(s.hard_timeout) * 1000 {
            return Some(RemovalReason::HardTimeout);
        }
        if s.idle_timeout != 0 && now_ms >= self.counters().2 + u64::from(s.idle_timeout) * 1000 {
            return Some(RemovalReason::IdleTimeout);
        }
        None
    }
}

/// One immutable version of the table.
pub struct TableVersion {
    /// Version number (starts at 1, +1 per update).
    pub version: u64,
    /// Rules of every table in installation order; classifier results
    /// index this.
    pub rules: Vec<Arc<Rule>>,
    /// Single-table versions ([`TableVersion::pipeline`] is `None`): the
    /// classifier over `rules` (all in table 0). Empty otherwise.
    pub classifier: Classifier,
    /// When every rule matches on `in_port` alone and only outputs, floods
    /// or drops, the winning rule per ingress port (`u32::MAX`: none): the
    /// datapath then decides a whole burst with one lookup and never parses
    /// the frames (what OVS calls "simple match").
    pub port_only: Option<Box<[u32; MAX_PORTS as usize]>>,
    /// Every bit any rule looks at (the union of the rules' masks; for a
    /// pipeline also what actions and groups read, see
    /// `pipeline::pipeline_mask`). The classifier's answer for `key`
    /// equals its answer for `key & lookup_mask`, since each rule compares
    /// `key & mask` and `mask ⊆ lookup_mask`. The datapath therefore
    /// caches masked keys: frames that differ only in fields no rule reads
    /// share one cache entry (OVS's megaflow idea, with the table-wide
    /// mask instead of per-lookup wildcards).
    pub lookup_mask: FlowKey,
    /// Every ct field bit any rule looks at: a recirculated frame's ct
    /// fields are cached masked with it (zero without ct matches).
    pub ct_mask: CtKey,
    /// The multi-table pipeline, when the rules need more than table 0's
    /// action lists (tables > 0, goto/resubmit, groups, action sets,
    /// metadata): the datapath then compiles each flow once.
    pub pipeline: Option<Pipeline>,
    /// Groups, sorted by id.
    pub groups: Vec<Arc<Group>>,
    /// Fragment handling.
    pub frag_mode: FragMode,
    /// Rule slot -> index into `rules` (`u32::MAX`: free slot).
    pub(crate) slot_index: Vec<u32>,
    /// The matches of the rules added, removed or changed by each version
    /// in `changes_since + 1 ..= version`, oldest first, tagged with the
    /// version that made the change (at most [`CHANGE_LOG`] entries).
    ///
    /// A worker's cache entry filled under version `v >= changes_since`
    /// (single-table versions: masked key -> rule slot or "no rule") is
    /// still right under this version when no logged change of a version
    /// after `v` matches its key: the rules matching the key are then the
    /// same rule objects (same priorities, same relative order), so the
    /// same one wins, and it still sits in the same slot. A deleted rule's
    /// slot may be reused, but every entry pointing at it has a key the
    /// deleted rule matched, and that rule's match is logged. The datapath
    /// checks this lazily, per cache bucket, on the first hit after a
    /// change; entries from versions before `changes_since` are misses.
    pub(crate) changes: Vec<(u64, Match)>,
    /// See `changes`: equal to `version` when this version invalidates
    /// every cached flow (the lookup mask, fragment mode or groups changed,
    /// [`FlowTable::synchronize`], a multi-table version, or the log
    /// overflowed).
    pub(crate) changes_since: u64,
    /// Slot allocation state carried to the next version.
    next_slot: u32,
    free_slots: Vec<u32>,
}

/// Longest change log a version keeps (see `TableVersion::changes`):
/// a cache bucket older than this many rule changes is refilled rather
/// than checked against each of them.
pub const CHANGE_LOG: usize = 64;

impl TableVersion {
    /// Build version `version` from `st`; `old` is the version it replaces
    /// (for the change log), `changed` the matches of the rules added,
    /// removed or replaced since `old`.
    fn build(
        version: u64,
        st: State,
        old: Option<&TableVersion>,
        changed: &[Match],
    ) -> TableVersion {
        let State {
            rules,
            groups,
            frag_mode,
            flush,
            next_slot,
            free_slots,
        } = st;
        let mut slot_index = vec![u32::MAX; next_slot as usize];
        for (i, r) in rules.iter().enumerate() {
            slot_index[r.slot as usize] = i as u32;
        }
        if needs_pipeline(&rules) {
            let lookup_mask = pipeline_mask(&rules, &groups);
            // A later table looks up the key as rewritten by the actions
            // so far: a changed rule can affect a compiled flow only if it
            // matches the flow's key outside every field some action may
            // rewrite (metadata is not checked at all).
            let rewrites = old.filter(|o| o.pipeline.is_some()).and_then(|o| {
                Some(rewrite_mask(&o.rules, &o.groups)?.union(&rewrite_mask(&rules, &groups)?))
            });
            let (changes, changes_since) = match rewrites {
                Some(rw) => {
                    let mut keep = FlowKey::ZERO;
                    for (k, r) in keep.as_bytes_mut().iter_mut().zip(rw.as_bytes()) {
                        *k = !r;
                    }
                    let widened: Vec<Match> = changed
                        .iter()
                        .map(|m| Match {
                            value: m.value.masked(&keep),
                            mask: m.mask.masked(&keep),
                            ..Match::ANY
                        })
                        .collect();
                    change_log(
                        version,
                        old,
                        flush,
                        frag_mode,
                        &lookup_mask,
                        &groups,
                        &widened,
                    )
                }
                None => (Vec::new(), version),
            };
            let mut ct_mask = rules
                .iter()
                .fold(CtKey::ZERO, |m, r| m.union(&r.spec.matcher.ct_mask));
            // The ct fields `move`/`push` read are constants of a compiled
            // pass too.
            let acts = rules.iter().flat_map(|r| {
                r.spec
                    .actions
                    .iter()
                    .chain(r.spec.instructions.write_actions.iter().flatten())
            });
            let buckets = groups
                .iter()
                .flat_map(|g| g.spec.buckets.iter().flat_map(|b| b.actions.iter()));
            crate::ct::operand::read_mask(&mut ct_mask, acts.chain(buckets));
            return TableVersion {
                version,
                classifier: Classifier::build(&[]),
                port_only: None,
                lookup_mask,
                ct_mask,
                pipeline: Some(Pipeline::build(&rules)),
                rules,
                groups,
                frag_mode,
                slot_index,
                changes,
                changes_since,
                next_slot,
                free_slots,
            };
        }
        let entries: Vec<Entry> = rules
            .iter()
            .map(|r| Entry {
                matcher: r.spec.matcher,
                priority: r.spec.priority,
            })
            .collect();
        let classifier = Classifier::build(&entries);
        // Port-only bursts are not parsed: no fragment can be dropped there.
        let port_only = (frag_mode != FragMode::Drop)
            .then(|| port_only_table(&rules, &classifier))
            .flatten();
        let lookup_mask = rules
            .iter()
            .fold(FlowKey::ZERO, |m, r| m.union(&r.spec.matcher.mask));
        let (changes, changes_since) = change_log(
            version,
            old.filter(|o| o.pipeline.is_none()),
            flush,
            frag_mode,
            &lookup_mask,
            &groups,
            changed,
        );
        TableVersion {
            version,
            classifier,
            rules,
            port_only,
            lookup_mask,
            ct_mask: CtKey::ZERO,
            pipeline: None,
            groups,
            frag_mode,
            slot_index,
            changes,
            changes_since,
            next_slot,
            free_slots,
        }
    }

    /// True when no rule change logged after version `v` matches `key`
    /// (a masked key cached under `v`); false too when `v` is older than
    /// the log (see [`TableVersion::changes`]).
    #[inline]
    pub(crate) fn unchanged_since(&self, v: u64, key: &FlowKey) -> bool {
        v >= self.changes_since
            && self
                .changes
                .iter()
                .rev()
                .take_while(|(cv, _)| *cv > v)
                .all(|(_, m)| !key.matches(&m.mask, &m.value))
    }

    /// Classifier subtables (distinct masks) over all tables.
    pub fn subtables(&self) -> usize {
        match &self.pipeline {
            None => self.classifier.subtables(),
            Some(p) => (0..=crate::action::MAX_TABLE).map(|t| p.subtables(t)).sum(),
        }
    }

    /// The group with id `id`.
    pub fn group(&self, id: u32) -> Option<&Arc<Group>> {
        self.groups
            .binary_search_by_key(&id, |g| g.spec.id)
            .ok()
            .map(|i| &self.groups[i])
    }
}

/// The change log of version `version` (see [`TableVersion::changes`]):
/// `old`'s extended with `changed`, when nothing but rules changed since
/// `old` (of the same kind: single-table or multi-table) and the cached
/// keys keep their meaning (same lookup mask); else empty, starting at
/// `version` (every cached flow is a miss).
fn change_log(
    version: u64,
    old: Option<&TableVersion>,
    flush: bool,
    frag_mode: FragMode,
    lookup_mask: &FlowKey,
    groups: &[Arc<Group>],
    changed: &[Match],
) -> (Vec<(u64, Match)>, u64) {
    let incremental = old.filter(|o| {
        !flush
            && changed.len() <= CHANGE_LOG
            && o.frag_mode == frag_mode
            && o.lookup_mask == *lookup_mask
            && o.groups.len() == groups.len()
            && o.groups.iter().zip(groups).all(|(a, b)| Arc::ptr_eq(a, b))
    });
    let Some(o) = incremental else {
        return (Vec::new(), version);
    };
    let mut log = o.changes.clone();
    log.extend(changed.iter().map(|m| (version, *m)));
    let mut since = o.changes_since;
    if log.len() > CHANGE_LOG {
        // Forget the oldest changes: entries from before them can no
        // longer be checked.
        since = since.max(log[log.len() - CHANGE_LOG - 1].0);
        log.retain(|(v, _)| *v > since);
    }
    (log, since)
}

/// Every key bit an action of `rules` (apply and write actions) or of a
/// group bucket may rewrite; `None` when some action's effect is not
/// known here (then every change invalidates every compiled flow).
fn rewrite_mask(rules: &[Arc<Rule>], groups: &[Arc<Group>]) -> Option<FlowKey> {
    use crate::key::field as kf;
    let mut m = FlowKey::ZERO;
    let acts = rules
        .iter()
        .flat_map(|r| {
            r.spec
                .actions
                .iter()
                .chain(r.spec.instructions.write_actions.iter().flatten())
        })
        .chain(
            groups
                .iter()
                .flat_map(|g| g.spec.buckets.iter().flat_map(|b| b.actions.iter())),
        );
    for a in acts {
        let b = m.as_bytes_mut();
        let mut set = |r: core::ops::Range<usize>| b[r].fill(0xff);
        match a {
            Action::PushVlan(_)
            | Action::PopVlan
            | Action::SetVlanVid(_)
            | Action::SetVlanPcp(_) => {
                set(kf::VLAN_TCI);
                set(kf::VLAN_TCI2);
            }
            Action::SetEthSrc(_) => set(kf::DL_SRC),
            Action::SetEthDst(_) => set(kf::DL_DST),
            Action::SetIpDscp(_) | Action::SetIpEcn(_) => set(kf::NW_TOS..kf::NW_TOS + 1),
            Action::DecTtl | Action::SetNwTtl(_) => set(kf::NW_TTL..kf::NW_TTL + 1),
            Action::SetIpv4Src(_) => set(kf::NW_SRC4),
            Action::SetIpv4Dst(_) => set(kf::NW_DST4),
            Action::SetIpv6Src(_) => set(kf::NW_SRC6),
            Action::SetIpv6Dst(_) => set(kf::NW_DST6),
            Action::SetL4Src(..) => set(kf::TP_SRC),
            Action::SetL4Dst(..) => set(kf::TP_DST),
            Action::SetTunId(_) => {
                set(kf::TUN_FLAGS..kf::TUN_FLAGS + 1);
                set(kf::TUN_ID);
            }
            Action::SetTunDst(_) => {
                set(kf::TUN_FLAGS..kf::TUN_FLAGS + 1);
                set(kf::TUN_DST);
            }
            Action::SetArpOp(_) => set(kf::NW_PROTO..kf::NW_PROTO + 1),
            Action::SetArpSpa(_) => set(kf::NW_SRC4),
            Action::SetArpTpa(_) => set(kf::NW_DST4),
            Action::SetArpSha(_) => set(kf::ARP_SHA),
            Action::SetArpTha(_) => set(kf::ARP_THA),
            Action::SetIcmpType(_) => set(kf::TP_SRC),
            Action::SetIcmpCode(_) => set(kf::TP_DST),
            Action::SetReg(_) | Action::Move(_) | Action::StackPop(_) => {
                let dst = match a {
                    Action::SetReg(l) => l.dst.field,
                    Action::Move(mv) => mv.dst.field,
                    Action::StackPop(sf) => sf.field,
                    _ => unreachable!("matched above"),
                };
                if let crate::regs::RegField::Pkt(p) = dst {
                    set(p.key_range());
                    if p == crate::pkt_field::PktField::VlanTci {
                        // A pop brings the inner tag out.
                        set(kf::VLAN_TCI2);
                    }
                    if p.is_tunnel() {
                        set(kf::TUN_FLAGS..kf::TUN_FLAGS + 1);
                    }
                }
            }
            // The translation never rewrites the key at a `ct` (NAT's
            // result is seen only by a recirculated pass, re-extracted).
            Action::Ct(_) | Action::CtClear => {}
            a if a.modifies() => return None,
            _ => {}
        }
    }
    Some(m)
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

/// The mutable state an update works on (copied from the current version).
pub(crate) struct State {
    rules: Vec<Arc<Rule>>,
    groups: Vec<Arc<Group>>,
    frag_mode: FragMode,
    /// Every worker's cached flows must start over (port changes).
    flush: bool,
    next_slot: u32,
    free_slots: Vec<u32>,
}

impl State {
    /// A slot for a new rule object.
    fn alloc_slot(&mut self) -> u32 {
        self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        })
    }
}

/// How IP fragments go through the tables (OpenFlow set_config
/// OFPC_FRAG_*; OVS's `ovs-ofctl set-frags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FragMode {
    /// OVS's default: fragments are looked up with L4 ports (and ICMP
    /// type/code) 0, even the first fragment.
    #[default]
    Normal,
    /// The first fragment keeps its L4 fields; later fragments have 0
    /// (`nx-match`).
    NxMatch,
    /// Every IP fragment is dropped before the tables.
    Drop,
}

struct Shared {
    current: ArcSwap<TableVersion>,
    version: AtomicU64,
    slots: Box<[WorkerSlot]>,
    update: Mutex<u64>, // next rule id
    /// Table misses per worker (256 per worker, one writer each): frames
    /// looked up in a table that had no matching rule.
    misses: Box<[AtomicU64]>,
}

/// Why a rule left the table (OpenFlow flow_removed reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// `idle_timeout` passed without traffic.
    IdleTimeout,
    /// `hard_timeout` passed.
    HardTimeout,
    /// Deleted by a flow_mod / `flows del`.
    Delete,
    /// Its group was deleted.
    GroupDelete,
}

/// A rejected flow or group change, with the OpenFlow error it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowModError {
    /// `check_overlap`: an overlapping rule of the same priority exists
    /// (OFPET_FLOW_MOD_FAILED/OFPFMFC_OVERLAP).
    Overlap,
    /// Table id out of range (OFPFMFC_BAD_TABLE_ID).
    BadTable(u8),
    /// goto_table to this table or an earlier one
    /// (OFPET_BAD_INSTRUCTION/OFPBIC_BAD_TABLE_ID).
    BadGotoTable {
        /// The rule's table.
        table: u8,
        /// The goto target.
        goto: u8,
    },
    /// A rule references a missing group (OFPET_BAD_ACTION/OFPBAC_BAD_OUT_GROUP).
    UnknownGroup(u32),
    /// group_add of an existing id (OFPET_GROUP_MOD_FAILED/OFPGMFC_GROUP_EXISTS).
    GroupExists(u32),
    /// group_mod/del of a missing id (OFPGMFC_UNKNOWN_GROUP).
    NoSuchGroup(u32),
    /// Bad group (type, buckets; OFPGMFC_INVALID_GROUP / OFPGMFC_BAD_BUCKET).
    BadGroup(String),
    /// Anything else about the rule (bad action list...).
    Invalid(String),
    /// An action reads or writes a field the rule's match does not
    /// guarantee (OFPET_BAD_ACTION/OFPBAC_MATCH_INCONSISTENT).
    MatchInconsistent(String),
}

impl core::fmt::Display for FlowModError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlowModError::Overlap => write!(f, "check_overlap: an overlapping rule with the same priority exists (OFPFMFC_OVERLAP)"),
            FlowModError::BadTable(t) => write!(f, "table {t} out of range (0..={}) (OFPFMFC_BAD_TABLE_ID)", crate::action::MAX_TABLE),
            FlowModError::BadGotoTable { table, goto } => write!(f, "goto_table:{goto} in table {table}: must go to a later table (OFPBIC_BAD_TABLE_ID)"),
            FlowModError::UnknownGroup(g) => write!(f, "group {g} does not exist (OFPBAC_BAD_OUT_GROUP)"),
            FlowModError::GroupExists(g) => write!(f, "group {g} already exists (OFPGMFC_GROUP_EXISTS)"),
            FlowModError::NoSuchGroup(g) => write!(f, "group {g} does not exist (OFPGMFC_UNKNOWN_GROUP)"),
            FlowModError::BadGroup(e) => write!(f, "{e} (OFPGMFC_INVALID_GROUP)"),
            FlowModError::Invalid(e) | FlowModError::MatchInconsistent(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FlowModError {}

impl From<FlowModError> for String {
    fn from(e: FlowModError) -> String {
        e.to_string()
    }
}

/// Options of an OpenFlow add (OFPFC_ADD flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// OFPFF_CHECK_OVERLAP: refuse when an overlapping rule with the same
    /// priority exists in the table.
    pub check_overlap: bool,
    /// When replacing an identical rule, keep its counters (OpenFlow 1.3
    /// without OFPFF_RESET_COUNTS). Default (`vswitch flows add`): restart.
    pub keep_counters: bool,
}

/// Per-table counters (OpenFlow table stats).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableStats {
    /// Table id.
    pub table_id: u8,
    /// Rules in the table.
    pub active_count: usize,
    /// Frames looked up in the table: matched, plus those that found no
    /// rule (a resubmit's or goto's miss counts too).
    pub lookup_count: u64,
    /// Packets matched by the table's rules (sum of their counters).
    pub matched_count: u64,
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
    /// Table.
    #[serde(default)]
    pub table: u8,
    /// Cookie.
    #[serde(default)]
    pub cookie: u64,
    /// `send_flow_rem` was set.
    #[serde(default)]
    pub send_flow_rem: bool,
    /// Idle timeout (s).
    #[serde(default)]
    pub idle_timeout: u16,
    /// Hard timeout (s).
    #[serde(default)]
    pub hard_timeout: u16,
    /// Set on rules returned by removals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovalReason>,
    /// The rule's match (for OpenFlow replies; not serialized).
    #[serde(skip)]
    pub matcher: Match,
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
                current: ArcSwap::from_pointee(TableVersion::build(
                    1,
                    State {
                        rules: Vec::new(),
                        groups: Vec::new(),
                        frag_mode: FragMode::default(),
                        flush: true,
                        next_slot: 0,
                        free_slots: Vec::new(),
                    },
                    None,
                    &[],
                )),
                version: AtomicU64::new(1),
                slots: (0..workers).map(|_| WorkerSlot::default()).collect(),
                update: Mutex::new(1),
                misses: (0..workers * 256).map(|_| AtomicU64::new(0)).collect(),
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

    /// Worker `w` saw `n` frames miss in table `t` (only `w` calls this).
    #[inline]
    pub(crate) fn count_miss(&self, w: usize, t: u8, n: u64) {
        if let Some(c) = self.shared.misses.get(w * 256 + usize::from(t)) {
            c.store(c.load(Relaxed) + n, Relaxed);
        }
    }

    /// Worker `w` leaves its burst.
    #[inline]
    pub(crate) fn leave(&self, w: usize, cur: &TableVersion) {
        self.shared.slots[w].0.store(cur.version << 1, Release);
    }

    // ---- control side ------------------------------------------------

    /// Apply `f` to a copy of the rules and groups; on `Ok`, publish them
    /// as a new version and wait until no worker is still in a burst on an
    /// older version. On `Err` nothing changes.
    fn try_update<R, E>(
        &self,
        f: impl FnOnce(&mut State, &mut u64) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut next_id = self.shared.update.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.shared.current.load_full();
        let mut st = State {
            rules: old.rules.clone(),
            groups: old.groups.clone(),
            frag_mode: old.frag_mode,
            flush: false,
            next_slot: old.next_slot,
            free_slots: old.free_slots.clone(),
        };
        let r = f(&mut st, &mut next_id)?;
        // What changed, by rule object: the matches of the rules that left
        // (their slots are freed) and of those that arrived (a replaced or
        // modified rule is both).
        let before: std::collections::HashSet<*const Rule> =
            old.rules.iter().map(Arc::as_ptr).collect();
        let after: std::collections::HashSet<*const Rule> =
            st.rules.iter().map(Arc::as_ptr).collect();
        let mut changed = Vec::new();
        for r in &old.rules {
            if !after.contains(&Arc::as_ptr(r)) {
                changed.push(r.spec.matcher);
                st.free_slots.push(r.slot);
            }
        }
        for r in &st.rules {
            if !before.contains(&Arc::as_ptr(r)) {
                changed.push(r.spec.matcher);
            }
        }
        let v = old.version + 1;
        self.shared
            .current
            .store(Arc::new(TableVersion::build(v, st, Some(&old), &changed)));
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
        Ok(r)
    }

    fn update<R>(&self, f: impl FnOnce(&mut State, &mut u64) -> R) -> R {
        match self.try_update(|st, id| Ok::<R, core::convert::Infallible>(f(st, id))) {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }

    /// Publish a new version with the same rules and wait for every worker
    /// to leave any burst begun before: afterwards no burst that read
    /// earlier shared state (port set, rules) is still running, and every
    /// worker's flow cache and compiled flows start over.
    pub fn synchronize(&self) {
        self.update(|st, _| st.flush = true)
    }

    /// Set how IP fragments are handled (OpenFlow set_config frag flags;
    /// default [`FragMode::Normal`] as OVS).
    pub fn set_frag_mode(&self, mode: FragMode) {
        self.update(|st, _| st.frag_mode = mode)
    }

    /// Install a rule; a rule with the same table, match and priority is
    /// replaced (its counters restart), as `ovs-ofctl add-flow` does.
    /// Returns its id.
    pub fn add(&self, spec: RuleSpec, now_ms: u64) -> Result<u64, FlowModError> {
        self.add_with(spec, now_ms, AddOptions::default())
    }

    /// OpenFlow OFPFC_ADD: [`FlowTable::add`] with `check_overlap` and
    /// counter keeping.
    pub fn add_with(
        &self,
        spec: RuleSpec,
        now_ms: u64,
        opts: AddOptions,
    ) -> Result<u64, FlowModError> {
        let workers = self.workers();
        self.try_update(|st, next_id| {
            check_rule(&spec, &st.groups)?;
            let same = st.rules.iter().position(|r| {
                r.spec.table == spec.table
                    && r.spec.priority == spec.priority
                    && r.spec.matcher == spec.matcher
            });
            if opts.check_overlap
                && st.rules.iter().enumerate().any(|(i, r)| {
                    Some(i) != same
                        && r.spec.table == spec.table
                        && r.spec.priority == spec.priority
                        && r.spec.matcher.overlaps(&spec.matcher)
                })
            {
                return Err(FlowModError::Overlap);
            }
            let id = *next_id;
            *next_id += 1;
            let slot = st.alloc_slot();
            let rule = match same {
                Some(i) if opts.keep_counters => {
                    Rule::with_counters(id, spec, now_ms, Arc::clone(&st.rules[i].counters), slot)
                }
                _ => Rule::new(id, spec, now_ms, workers, slot),
            };
            let rule = Arc::new(rule);
            match same {
                Some(i) => st.rules[i] = rule,
                None => st.rules.push(rule),
            }
            Ok(id)
        })
    }

    /// Install many rules in one version (one wait), e.g. from the config
    /// file or a benchmark. A rule that cannot be installed (it references
    /// a missing group) is skipped and returned with its position and the
    /// reason; see [`FlowTable::try_add_many`] for all or nothing.
    pub fn add_many(&self, specs: Vec<RuleSpec>, now_ms: u64) -> Vec<(usize, FlowModError)> {
        let workers = self.workers();
        self.update(|st, next_id| {
            let mut rejected = Vec::new();
            for (i, spec) in specs.into_iter().enumerate() {
                if let Err(e) = check_rule(&spec, &st.groups) {
                    rejected.push((i, e));
                    continue;
                }
                let id = *next_id;
                *next_id += 1;
                let slot = st.alloc_slot();
                st.rules
                    .push(Arc::new(Rule::new(id, spec, now_ms, workers, slot)));
            }
            rejected
        })
    }

    /// Install many rules in one version, all or none.
    pub fn try_add_many(&self, specs: Vec<RuleSpec>, now_ms: u64) -> Result<(), FlowModError> {
        let workers = self.workers();
        self.try_update(|st, next_id| {
            for spec in &specs {
                check_rule(spec, &st.groups)?;
            }
            for spec in specs {
                let id = *next_id;
                *next_id += 1;
                let slot = st.alloc_slot();
                st.rules
                    .push(Arc::new(Rule::new(id, spec, now_ms, workers, slot)));
            }
            Ok(())
        })
    }

    /// OpenFlow OFPFC_MODIFY / OFPFC_MODIFY_STRICT: replace the actions and
    /// instructions of every rule `filter` selects, keeping their id,
    /// match, cookie, timeouts, installation time and counters (unless
    /// `reset_counts`). Returns how many rules changed (0: nothing matched,
    /// nothing added, as OpenFlow 1.3).
    pub fn modify(
        &self,
        filter: &FlowFilter,
        actions: Vec<Action>,
        instructions: Instructions,
        reset_counts: bool,
    ) -> Result<usize, FlowModError> {
        crate::action::validate_actions(&actions).map_err(FlowModError::Invalid)?;
        let workers = self.workers();
        self.try_update(|st, _| {
            let mut n = 0;
            let rules = core::mem::take(&mut st.rules);
            let mut out = Vec::with_capacity(rules.len());
            for r in &rules {
                if !filter.selects(&r.spec) {
                    out.push(Arc::clone(r));
                    continue;
                }
                let mut spec = r.spec.clone();
                spec.actions = actions.clone();
                spec.instructions = instructions.clone();
                check_rule(&spec, &st.groups)?;
                let counters = if reset_counts {
                    (0..workers).map(|_| RuleCounters::default()).collect()
                } else {
                    Arc::clone(&r.counters)
                };
                let slot = st.alloc_slot();
                out.push(Arc::new(Rule::with_counters(
                    r.id,
                    spec,
                    r.created_ms,
                    counters,
                    slot,
                )));
                n += 1;
            }
            st.rules = out;
            Ok(n)
        })
    }

    /// OpenFlow OFPFC_DELETE / OFPFC_DELETE_STRICT: remove every rule
    /// `filter` selects; returns them (reason [`RemovalReason::Delete`])
    /// so the caller can send flow_removed for those with `send_flow_rem`.
    pub fn delete(&self, filter: &FlowFilter, now_ms: u64) -> Vec<RuleInfo> {
        if !self
            .snapshot()
            .rules
            .iter()
            .any(|r| filter.selects(&r.spec))
        {
            return Vec::new();
        }
        self.update(|st, _| {
            let mut gone = Vec::new();
            st.rules.retain(|r| {
                let hit = filter.selects(&r.spec);
                if hit {
                    gone.push(info(r, now_ms, Some(RemovalReason::Delete)));
                }
                !hit
            });
            gone
        })
    }

    /// Delete rules (all tables). Non-strict: every rule at least as
    /// specific as `filter` (`ovs-ofctl del-flows`); strict: identical
    /// match and, when given, priority (`--strict`). Returns how many were
    /// removed.
    pub fn del(&self, filter: &Match, priority: Option<u16>, strict: bool) -> usize {
        let f = FlowFilter {
            matcher: *filter,
            priority,
            strict,
            ..FlowFilter::all()
        };
        self.delete(&f, 0).len()
    }

    /// Remove rules whose idle or hard timeout passed; returns them with
    /// the reason.
    pub fn expire(&self, now_ms: u64) -> Vec<RuleInfo> {
        if !self
            .snapshot()
            .rules
            .iter()
            .any(|r| r.expired(now_ms).is_some())
        {
            return Vec::new();
        }
        self.update(|st, _| {
            let mut gone = Vec::new();
            st.rules.retain(|r| match r.expired(now_ms) {
                Some(why) => {
                    gone.push(info(r, now_ms, Some(why)));
                    false
                }
                None => true,
            });
            gone
        })
    }

    /// All rules with counters, by table, then highest priority first.
    pub fn dump(&self, now_ms: u64) -> Vec<RuleInfo> {
        self.dump_filtered(&FlowFilter::all(), now_ms)
    }

    /// The rules `filter` selects (OpenFlow flow stats), by table, then
    /// highest priority first.
    pub fn dump_filtered(&self, filter: &FlowFilter, now_ms: u64) -> Vec<RuleInfo> {
        let t = self.snapshot();
        let mut v: Vec<RuleInfo> = t
            .rules
            .iter()
            .filter(|r| filter.selects(&r.spec))
            .map(|r| info(r, now_ms, None))
            .collect();
        v.sort_by_key(|r| (r.table, core::cmp::Reverse(r.priority), r.id));
        v
    }

    /// Per-table statistics for every table that has rules or was looked
    /// up: rules, frames looked up (matched + missed) and matched.
    pub fn table_stats(&self) -> Vec<TableStats> {
        let t = self.snapshot();
        let mut v: Vec<TableStats> = Vec::new();
        fn slot(v: &mut Vec<TableStats>, table: u8) -> usize {
            match v.binary_search_by_key(&table, |s| s.table_id) {
                Ok(i) => i,
                Err(i) => {
                    v.insert(
                        i,
                        TableStats {
                            table_id: table,
                            active_count: 0,
                            lookup_count: 0,
                            matched_count: 0,
                        },
                    );
                    i
                }
            }
        }
        for r in &t.rules {
            let i = slot(&mut v, r.spec.table);
            let p = r.counters().0;
            v[i].active_count += 1;
            v[i].matched_count += p;
            v[i].lookup_count += p;
        }
        let workers = self.workers();
        for table in 0..=255u8 {
            let missed: u64 = (0..workers)
                .map(|w| self.shared.misses[w * 256 + usize::from(table)].load(Relaxed))
                .sum();
            if missed != 0 {
                let i = slot(&mut v, table);
                v[i].lookup_count += missed;
            }
        }
        v
    }

    // ---- groups --------------------------------------------------------

    /// OFPGC_ADD: install a group; fails when the id exists.
    pub fn group_add(&self, spec: GroupSpec, now_ms: u64) -> Result<(), FlowModError> {
        spec.validate().map_err(FlowModError::BadGroup)?;
        let workers = self.workers();
        self.try_update(
            |st, _| match st.groups.binary_search_by_key(&spec.id, |g| g.spec.id) {
                Ok(_) => Err(FlowModError::GroupExists(spec.id)),
                Err(i) => {
                    check_chain(&spec, &st.groups)?;
                    st.groups
                        .insert(i, Arc::new(Group::new(spec, now_ms, workers)));
                    Ok(())
                }
            },
        )
    }

    /// OFPGC_MODIFY: replace a group's type and buckets (counters restart);
    /// fails when the id does not exist. Flows using it see the change
    /// (every worker recompiles).
    pub fn group_mod(&self, spec: GroupSpec, now_ms: u64) -> Result<(), FlowModError> {
        spec.validate().map_err(FlowModError::BadGroup)?;
        let workers = self.workers();
        self.try_update(
            |st, _| match st.groups.binary_search_by_key(&spec.id, |g| g.spec.id) {
                Ok(i) => {
                    check_chain(&spec, &st.groups)?;
                    st.groups[i] = Arc::new(Group::new(spec, now_ms, workers));
                    Ok(())
                }
                Err(_) => Err(FlowModError::NoSuchGroup(spec.id)),
            },
        )
    }

    /// OFPGC_DELETE: delete group `id` (`None`: all groups) and, as
    /// OpenFlow 1.3 §6.5 requires, every rule referencing a deleted group;
    /// returns those rules (reason [`RemovalReason::GroupDelete`]).
    /// Deleting a missing group is not an error (OpenFlow).
    pub fn group_del(&self, id: Option<u32>, now_ms: u64) -> Vec<RuleInfo> {
        self.update(|st, _| {
            let gone_ids: Vec<u32> = st
                .groups
                .iter()
                .map(|g| g.spec.id)
                .filter(|g| id.is_none_or(|x| x == *g))
                .collect();
            st.groups.retain(|g| !gone_ids.contains(&g.spec.id));
            let mut gone = Vec::new();
            st.rules.retain(|r| {
                let hit = r.spec.groups().any(|g| gone_ids.contains(&g));
                if hit {
                    gone.push(info(r, now_ms, Some(RemovalReason::GroupDelete)));
                }
                !hit
            });
            gone
        })
    }

    /// Group configurations (OpenFlow group_desc), by id.
    pub fn group_desc(&self) -> Vec<GroupSpec> {
        self.snapshot()
            .groups
            .iter()
            .map(|g| g.spec.clone())
            .collect()
    }

    /// Group counters (OpenFlow group_stats), by id.
    pub fn group_stats(&self, now_ms: u64) -> Vec<GroupStats> {
        let t = self.snapshot();
        t.groups
            .iter()
            .map(|g| {
                let refs = t
                    .rules
                    .iter()
                    .filter(|r| r.spec.groups().any(|x| x == g.spec.id))
                    .count();
                g.stats(refs, now_ms)
            })
            .collect()
    }
}

/// Group chaining: every group a bucket names exists, and following the
/// chains from `spec` never comes back to it (OFPGMFC_LOOP).
fn check_chain(spec: &GroupSpec, groups: &[Arc<Group>]) -> Result<(), FlowModError> {
    let find = |id: u32| {
        groups
            .binary_search_by_key(&id, |g| g.spec.id)
            .ok()
            .map(|i| &groups[i].spec)
    };
    let mut todo: Vec<u32> = spec.chained().collect();
    let mut seen: Vec<u32> = Vec::new();
    while let Some(g) = todo.pop() {
        if g == spec.id {
            return Err(FlowModError::BadGroup(format!(
                "group {}: its buckets chain back to it (OFPGMFC_LOOP)",
                spec.id
            )));
        }
        if seen.contains(&g) {
            continue;
        }
        seen.push(g);
        match find(g) {
            Some(next) => todo.extend(next.chained()),
            None if spec.chained().any(|x| x == g) => {
                return Err(FlowModError::UnknownGroup(g));
            }
            // A chain already dangling past a deleted group.
            None => {}
        }
    }
    Ok(())
}

/// Checks that need the table's state: table range, goto direction,
/// referenced groups.
fn check_rule(spec: &RuleSpec, groups: &[Arc<Group>]) -> Result<(), FlowModError> {
    if spec.table > crate::action::MAX_TABLE {
        return Err(FlowModError::BadTable(spec.table));
    }
    if let Some(g) = spec.instructions.goto_table {
        if g <= spec.table || g > crate::action::MAX_TABLE {
            return Err(FlowModError::BadGotoTable {
                table: spec.table,
                goto: g,
            });
        }
    }
    if let Some(a) = spec
        .actions
        .iter()
        .find(|a| matches!(a, Action::Resubmit(t) if *t > crate::action::MAX_TABLE))
    {
        return Err(FlowModError::Invalid(format!("`{a}`: no such table")));
    }
    for g in spec.groups() {
        if groups.binary_search_by_key(&g, |x| x.spec.id).is_err() {
            return Err(FlowModError::UnknownGroup(g));
        }
    }
    for acts in core::iter::once(&spec.actions).chain(spec.instructions.write_actions.iter()) {
        crate::regs::check_prereqs(&spec.matcher, acts).map_err(FlowModError::MatchInconsistent)?;
    }
    crate::ct::check_rule(spec).map_err(FlowModError::Invalid)
}

fn info(r: &Rule, now_ms: u64, removed: Option<RemovalReason>) -> RuleInfo {
    let (packets, bytes, last) = r.counters();
    RuleInfo {
        id: r.id,
        rule: r.spec.to_string(),
        priority: r.spec.priority,
        packets,
        bytes,
        duration_ms: now_ms.saturating_sub(r.created_ms),
        idle_age_ms: now_ms.saturating_sub(last),
        table: r.spec.table,
        cookie: r.spec.cookie,
        send_flow_rem: r.spec.send_flow_rem,
        idle_timeout: r.spec.idle_timeout,
        hard_timeout: r.spec.hard_timeout,
        removed,
        matcher: r.spec.matcher,
    }
}
