//! The multi-table OpenFlow pipeline, compiled per flow.
//!
//! When a table version uses more than table 0's plain action lists
//! (tables > 0, `goto_table`, `resubmit`, groups, action sets, metadata),
//! the datapath does not walk the tables per frame. On an exact-match
//! cache miss it *translates* the flow once (`compile`): table lookups,
//! apply-actions, resubmits (depth ≤ [`MAX_RESUBMIT_DEPTH`]), group bucket
//! choice, write/clear actions, write_metadata and goto_table, ending with
//! the action set in the OpenFlow 1.3 order. The result is one
//! [`Compiled`] entry: the final primitive action list plus every rule and
//! group bucket traversed (for counters). The cache maps the flow's key to
//! that entry, so a cached frame pays one lookup whatever the pipeline
//! depth (OVS's datapath-flow idea).
//!
//! Correctness of caching by key: the key is masked with
//! `pipeline_mask`, the union of every rule's mask in every table plus
//! what actions and groups read (see there); the translation reads only
//! those bits, so every frame with the same masked key translates the same.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::action::{modifies_after_output, Action, Instructions, L4Proto, Seg};
use crate::classifier::{Classifier, Entry};
use crate::ct::CtKey;
use crate::group::{five_tuple_mask, Group};
use crate::key::{field as kf, FlowKey, FRAG_LATER, VLAN_PRESENT};
use crate::pkt_field::PktField;
use crate::regs::{RegField, Regs, Subfield};
use crate::table::{Rule, RuleCounters};
use crate::verdict::{DropReason, MAX_PORTS};
use crate::wire::ethernet::ethertype;
use std::sync::Arc;

/// Nesting limit of `resubmit` (as OVS).
pub const MAX_RESUBMIT_DEPTH: u32 = 64;
/// Resubmits per translation (as OVS: 64 × 64). Past either limit the
/// translation fails and the frame is dropped, as OVS does.
pub const MAX_RESUBMITS: u32 = MAX_RESUBMIT_DEPTH * MAX_RESUBMIT_DEPTH;

/// Field-stack size at which a resubmit fails (as OVS's 64 kB).
const MAX_STACK_BYTES: usize = 65_536;

/// Longest compiled action list (resubmit loops end here).
const MAX_ACTIONS: usize = 16_384;

/// Compiled entries a worker keeps per table version before starting over
/// (each is a distinct traversal, not a distinct flow).
pub(crate) const MAX_COMPILED: usize = 1 << 18;

/// One table's classifier; `ids` maps its indices to the version's rules.
pub(crate) struct TableCls {
    pub(crate) classifier: Classifier,
    pub(crate) ids: Vec<u32>,
}

impl TableCls {
    pub(crate) fn build(rules: &[Arc<Rule>], table: u8) -> TableCls {
        let ids: Vec<u32> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.spec.table == table)
            .map(|(i, _)| i as u32)
            .collect();
        let entries: Vec<Entry> = ids
            .iter()
            .map(|&i| Entry {
                matcher: rules[i as usize].spec.matcher,
                priority: rules[i as usize].spec.priority,
            })
            .collect();
        TableCls {
            classifier: Classifier::build(&entries),
            ids,
        }
    }

    #[inline]
    pub(crate) fn lookup(&self, key: &FlowKey, meta: u64, regs: &Regs, ct: &CtKey) -> Option<u32> {
        self.classifier
            .lookup_regs(key, meta, regs, ct)
            .map(|i| self.ids[i as usize])
    }
}

/// The tables of a multi-table version.
pub struct Pipeline {
    /// Indexed by table id; `None`: the table has no rule.
    pub(crate) tables: Vec<Option<TableCls>>,
}

impl Pipeline {
    pub(crate) fn build(rules: &[Arc<Rule>]) -> Pipeline {
        let max = rules.iter().map(|r| r.spec.table).max().unwrap_or(0);
        let tables = (0..=max)
            .map(|t| {
                rules
                    .iter()
                    .any(|r| r.spec.table == t)
                    .then(|| TableCls::build(rules, t))
            })
            .collect();
        Pipeline { tables }
    }

    /// Number of subtables of table `t` (0 when empty).
    pub fn subtables(&self, t: u8) -> usize {
        self.tables
            .get(usize::from(t))
            .and_then(Option::as_ref)
            .map_or(0, |c| c.classifier.subtables())
    }
}

/// True when the rules need the pipeline (anything beyond table 0 with
/// plain action lists).
pub(crate) fn needs_pipeline(rules: &[Arc<Rule>]) -> bool {
    rules.iter().any(|r| {
        let s = &r.spec;
        s.table != 0
            || !s.instructions.is_empty()
            || modifies_after_output(&s.actions)
            || s.matcher.meta_mask != 0
            || s.matcher.has_ct()
            || s.matcher.has_regs()
            || s.actions.iter().any(|a| {
                matches!(a, Action::Resubmit(_) | Action::Group(_)) || a.is_ct() || a.is_reg()
            })
    })
}

/// The lookup mask of a multi-table version: every rule's mask, plus
/// * the 5-tuple when a SELECT group exists (the bucket depends on it);
/// * both VLAN TCIs, symmetrically, when a rule or bucket pushes or pops
///   a tag (later tables then read the other tag's bits);
/// * `nw_ttl` and `dl_type` when a rule or bucket decrements the TTL (a
///   TTL of 0/1 ends the pipeline; later tables may read the new TTL);
/// * `dl_type`, `nw_proto` and `nw_frag` when one rewrites IP addresses,
///   L4 ports, ECN, the TTL, ARP or ICMP fields, or `load`s/`move`s into
///   a packet field (whether the rewrite happens depends on them);
/// * the source field of every `move` from a packet field, and the
///   destination field of a partial `load`/`move` into one (the compiled
///   rewrite is a constant computed from them);
/// * `in_port` when a `load`/`move` writes it (outputs after the write
///   compile to what the real and the written ingress port make of them).
///
/// Every other rewrite sets a field to a constant or keeps each bit's
/// position, so later lookups read only bits already in the mask.
pub(crate) fn pipeline_mask(rules: &[Arc<Rule>], groups: &[Arc<Group>]) -> FlowKey {
    let mut m = rules
        .iter()
        .fold(FlowKey::ZERO, |m, r| m.union(&r.spec.matcher.mask));
    let all_actions = rules
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
    let (mut vlan_moves, mut ttl, mut l3l4) = (false, false, false);
    for a in all_actions {
        match a {
            Action::PushVlan(_) | Action::PopVlan => vlan_moves = true,
            Action::DecTtl => ttl = true,
            // Whether a tunnel-field rewrite reaches the key depends on
            // dl_type (IPv6 frames have no room for it).
            a if a.rewrites_l3_l4() => l3l4 = true,
            Action::SetTunId(_) | Action::SetTunDst(_) => l3l4 = true,
            // `load`/`move` with packet fields: the source's bits and,
            // for a partial write, the destination's other bits go into
            // the compiled rewrite (OVS un-wildcards a move source too);
            // whether a write applies depends on dl_type/nw_proto/frag.
            // A write of `in_port`: the translation needs the real ingress
            // port to tell it from the written one at outputs; one of
            // `vlan_tci`, the tags there are (it pops or sets them).
            Action::SetReg(l) => {
                if let RegField::Pkt(p) = l.dst.field {
                    l3l4 |= p != PktField::InPort;
                    vlan_moves |= p == PktField::VlanTci;
                    if !l.dst.is_whole() || matches!(p, PktField::InPort | PktField::VlanTci) {
                        read_mask(&mut m, p);
                    }
                }
            }
            Action::StackPush(sf) => {
                if let RegField::Pkt(p) = sf.field {
                    read_mask(&mut m, p);
                }
            }
            Action::StackPop(sf) => {
                if let RegField::Pkt(p) = sf.field {
                    l3l4 |= p != PktField::InPort;
                    vlan_moves |= p == PktField::VlanTci;
                    if !sf.is_whole() || matches!(p, PktField::InPort | PktField::VlanTci) {
                        read_mask(&mut m, p);
                    }
                }
            }
            Action::Move(mv) => {
                if let RegField::Pkt(p) = mv.src.field {
                    read_mask(&mut m, p);
                }
                if let RegField::Pkt(p) = mv.dst.field {
                    l3l4 |= p != PktField::InPort;
                    vlan_moves |= p == PktField::VlanTci;
                    if !mv.dst.is_whole() || matches!(p, PktField::InPort | PktField::VlanTci) {
                        read_mask(&mut m, p);
                    }
                }
            }
            _ => {}
        }
    }
    if groups
        .iter()
        .any(|g| g.spec.kind == crate::group::GroupType::Select)
    {
        m = m.union(&five_tuple_mask());
    }
    if vlan_moves {
        let b = m.as_bytes_mut();
        for i in 0..2 {
            let v = b[kf::VLAN_TCI.start + i] | b[kf::VLAN_TCI2.start + i];
            b[kf::VLAN_TCI.start + i] = v;
            b[kf::VLAN_TCI2.start + i] = v;
        }
    }
    if ttl {
        let b = m.as_bytes_mut();
        b[kf::NW_TTL] = 0xff;
        b[kf::DL_TYPE.start] = 0xff;
        b[kf::DL_TYPE.start + 1] = 0xff;
    }
    if l3l4 {
        // The IP address, port, ECN and TTL rewrites set constants, but
        // only on frames of the right dl_type (and, for ports, nw_proto,
        // not a later fragment): later lookups read the constant or the
        // original field depending on those.
        let b = m.as_bytes_mut();
        b[kf::DL_TYPE.start] = 0xff;
        b[kf::DL_TYPE.start + 1] = 0xff;
        b[kf::NW_PROTO] = 0xff;
        b[kf::NW_FRAG] = 0xff;
    }
    m
}

/// Adds the key bytes of packet field `p` to the lookup mask.
fn read_mask(m: &mut FlowKey, p: PktField) {
    m.as_bytes_mut()[p.key_range()].fill(0xff);
    if p.is_tunnel() {
        // An IPv6 frame reads 0 there (the bytes are its address).
        m.as_bytes_mut()[kf::DL_TYPE].fill(0xff);
    }
}

/// The result of translating one flow through the pipeline.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Final primitive actions (no resubmit, no group), in order.
    pub actions: Vec<Action>,
    /// Indices (into the version's rules) of every rule traversed.
    pub rules: Vec<u32>,
    /// The counters of those rules, in the same order (the datapath bumps
    /// this worker's line of each without going through the rule).
    pub(crate) counters: Vec<Arc<[RuleCounters]>>,
    /// `(group index, bucket)` traversed; bucket `u32::MAX` = the group.
    pub groups: Vec<(u32, u32)>,
    /// Tables looked up without a matching rule (for table statistics).
    pub missed: Vec<u8>,
    /// Empty: run `actions` as one list. Otherwise the segments
    /// [`crate::action::execute_plan`] runs: the flow modifies the frame
    /// after an output, or a group bucket rewrites its copy.
    pub plan: Vec<Seg>,
    /// The verdict depends on the ingress port only (outputs and floods,
    /// no plan): a run of frames with this entry executes it once.
    pub simple: bool,
    /// `Flood` actions in `actions` (counted per reused verdict).
    pub floods: u32,
    /// Why the frame is dropped when `actions` is empty: a table miss
    /// ([`DropReason::NoMatch`]) or nothing to do ([`DropReason::Action`]).
    pub empty_reason: DropReason,
    /// `actions` hold `ct`/`ct_clear`, or the flow recirculates: the
    /// datapath runs it on its ct path (with the tracker, frame by frame).
    pub has_ct: bool,
    /// A `ct(table=N)` forked the pipeline: after `actions` the frame
    /// recirculates with this frozen state (an index into the worker's
    /// `CompiledStore`: table N, metadata, action set), its key
    /// re-extracted and its ct fields set. The actions after the fork run
    /// on a copy (clone segments of `plan`), as OVS's original packet
    /// continuing while the clone recirculates.
    pub fork: Option<u32>,
    /// Some action rewrites the frame (a `ct` with `nat` included): outputs
    /// of an earlier pass must then leave as a copy first.
    pub modifies: bool,
}

/// The state a recirculated frame resumes with (OVS's frozen state): the
/// table, the metadata, the registers and the action set at the
/// `ct(table=N)` (OVS's `frozen_metadata` keeps `metadata` and the
/// registers across recirculation).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Frozen {
    table: u8,
    meta: u64,
    regs: Regs,
    set: ActionSet,
    /// The `in_port` a `load`/`move` wrote before the fork (OVS's
    /// `frozen_metadata` keeps `in_port` too); `None` when not written.
    in_port: Option<u16>,
    /// The field stack (OVS freezes it too).
    stack: Vec<(u8, u128)>,
}

/// Multiply-fold hasher for the compiled-entry index (its keys are our
/// own action lists, not attacker-chosen strings: SipHash's cost bought
/// nothing on the miss path).
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, v: u64) {
        let r = u128::from(self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = (r as u64) ^ ((r >> 64) as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type CompiledKey = (
    Vec<Action>,
    Vec<Seg>,
    Vec<u32>,
    Vec<(u32, u32)>,
    Vec<u8>,
    u8,
    Option<u32>,
);

/// One worker's compiled entries for the current table version,
/// deduplicated by traversal.
#[derive(Default)]
pub(crate) struct CompiledStore {
    pub(crate) entries: Vec<Compiled>,
    index: HashMap<CompiledKey, u32, BuildHasherDefault<FoldHasher>>,
    /// Frozen states of recirculations, interned (ids stay valid as long
    /// as the entries naming them).
    frozen: Vec<Frozen>,
    frozen_index: HashMap<Frozen, u32, BuildHasherDefault<FoldHasher>>,
}

impl CompiledStore {
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.frozen.clear();
        self.frozen_index.clear();
    }

    fn freeze(&mut self, f: Frozen) -> u32 {
        if let Some(&i) = self.frozen_index.get(&f) {
            return i;
        }
        let i = self.frozen.len() as u32;
        self.frozen.push(f.clone());
        self.frozen_index.insert(f, i);
        i
    }

    /// Frozen state `id` named by its contents (a hash, never 0): the
    /// same on every worker, unlike `id` (IP fragment lists key on it, as
    /// OVS's on its global `recirc_id`).
    pub(crate) fn frozen_pass(&self, id: u32) -> u32 {
        let mut h = FoldHasher::default();
        match self.frozen.get(id as usize) {
            Some(f) => f.hash(&mut h),
            None => h.write_u32(id),
        }
        let v = h.finish();
        (v ^ v >> 32) as u32 | 1
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keep the entries (cached flows still point at them) but stop
    /// deduplicating against them: a new table version's rule indices
    /// may name other rules.
    pub(crate) fn forget_index(&mut self) {
        self.index.clear();
    }

    fn intern(&mut self, c: Compiled) -> u32 {
        let k = (
            c.actions.clone(),
            c.plan.clone(),
            c.rules.clone(),
            c.groups.clone(),
            c.missed.clone(),
            c.empty_reason as u8,
            c.fork,
        );
        if let Some(&i) = self.index.get(&k) {
            return i;
        }
        let i = self.entries.len() as u32;
        self.entries.push(c);
        self.index.insert(k, i);
        i
    }
}

/// OpenFlow 1.3 action set: at most one action of each kind, executed in
/// the spec's order (§5.10): pop, push, dec TTL, set-fields, group, output.
#[derive(Default, Clone, PartialEq, Eq, Hash)]
struct ActionSet {
    pop_vlan: bool,
    push_vlan: Option<u16>,
    dec_ttl: bool,
    vlan_vid: Option<u16>,
    vlan_pcp: Option<u8>,
    eth_src: Option<[u8; 6]>,
    eth_dst: Option<[u8; 6]>,
    dscp: Option<u8>,
    ecn: Option<u8>,
    nw_ttl: Option<u8>,
    ipv4_src: Option<[u8; 4]>,
    ipv4_dst: Option<[u8; 4]>,
    ipv6_src: Option<[u8; 16]>,
    ipv6_dst: Option<[u8; 16]>,
    l4_src: Option<Action>,
    l4_dst: Option<Action>,
    tun_id: Option<u32>,
    tun_dst: Option<[u8; 4]>,
    group: Option<u32>,
    output: Option<Action>,
    /// ARP and ICMP set-fields, one per field.
    pkt_sets: Vec<Action>,
}

impl ActionSet {
    fn write(&mut self, acts: &[Action]) {
        for a in acts {
            match *a {
                Action::PopVlan => self.pop_vlan = true,
                Action::PushVlan(t) => self.push_vlan = Some(t),
                Action::DecTtl => self.dec_ttl = true,
                Action::SetVlanVid(v) => self.vlan_vid = Some(v),
                Action::SetVlanPcp(p) => self.vlan_pcp = Some(p),
                Action::SetEthSrc(m) => self.eth_src = Some(m),
                Action::SetEthDst(m) => self.eth_dst = Some(m),
                Action::SetIpDscp(d) => self.dscp = Some(d),
                Action::SetIpEcn(e) => self.ecn = Some(e),
                Action::SetNwTtl(t) => self.nw_ttl = Some(t),
                Action::SetTunId(k) => self.tun_id = Some(k),
                Action::SetTunDst(a) => self.tun_dst = Some(a),
                Action::SetIpv4Src(x) => self.ipv4_src = Some(x),
                Action::SetIpv4Dst(x) => self.ipv4_dst = Some(x),
                Action::SetIpv6Src(x) => self.ipv6_src = Some(x),
                Action::SetIpv6Dst(x) => self.ipv6_dst = Some(x),
                Action::SetL4Src(..) => self.l4_src = Some(*a),
                Action::SetL4Dst(..) => self.l4_dst = Some(*a),
                Action::SetArpOp(_)
                | Action::SetArpSpa(_)
                | Action::SetArpTpa(_)
                | Action::SetArpSha(_)
                | Action::SetArpTha(_)
                | Action::SetIcmpType(_)
                | Action::SetIcmpCode(_) => {
                    // One per field: a later write replaces.
                    let d = core::mem::discriminant(a);
                    self.pkt_sets.retain(|x| core::mem::discriminant(x) != d);
                    self.pkt_sets.push(*a);
                }
                Action::Group(g) => self.group = Some(g),
                Action::Output(_)
                | Action::Flood
                | Action::All
                | Action::InPort
                | Action::Normal
                | Action::NormalFrom(_) => self.output = Some(*a),
                // Register writes in the action set run after every
                // lookup: nothing reads them.
                Action::Drop
                | Action::Resubmit(_)
                | Action::Ct(_)
                | Action::CtClear
                | Action::SetReg(_)
                | Action::SetXxReg(_)
                | Action::Move(_)
                | Action::StackPush(_)
                | Action::StackPop(_) => {}
            }
        }
    }

    /// The set's actions in execution order; a group wins over an output.
    fn ordered(&self) -> Vec<Action> {
        let mut v = Vec::new();
        if self.pop_vlan {
            v.push(Action::PopVlan);
        }
        if let Some(t) = self.push_vlan {
            v.push(Action::PushVlan(t));
        }
        if self.dec_ttl {
            v.push(Action::DecTtl);
        }
        v.extend(self.vlan_vid.map(Action::SetVlanVid));
        v.extend(self.vlan_pcp.map(Action::SetVlanPcp));
        v.extend(self.eth_src.map(Action::SetEthSrc));
        v.extend(self.eth_dst.map(Action::SetEthDst));
        v.extend(self.dscp.map(Action::SetIpDscp));
        v.extend(self.ecn.map(Action::SetIpEcn));
        v.extend(self.nw_ttl.map(Action::SetNwTtl));
        v.extend(self.ipv4_src.map(Action::SetIpv4Src));
        v.extend(self.ipv4_dst.map(Action::SetIpv4Dst));
        v.extend(self.ipv6_src.map(Action::SetIpv6Src));
        v.extend(self.ipv6_dst.map(Action::SetIpv6Dst));
        v.extend(self.l4_src);
        v.extend(self.l4_dst);
        v.extend(self.pkt_sets.iter().copied());
        v.extend(self.tun_id.map(Action::SetTunId));
        v.extend(self.tun_dst.map(Action::SetTunDst));
        match self.group {
            Some(g) => v.push(Action::Group(g)),
            None => v.extend(self.output),
        }
        v
    }
}

struct Xlate<'a> {
    rules: &'a [Arc<Rule>],
    pipe: &'a Pipeline,
    groups: &'a [Arc<Group>],
    ports_up: u64,
    key: FlowKey,
    meta: u64,
    /// The registers (OVS's `reg0..15`), pipeline state like `meta`.
    regs: Regs,
    set: ActionSet,
    out: Compiled,
    /// The frame is dropped here (TTL expired): stop translating.
    stop: bool,
    depth: u32,
    buckets: Vec<u32>,
    /// Start of the frame segment being built (see [`Compiled::plan`]).
    seg_start: usize,
    /// The current frame segment has an output.
    seen_output: bool,
    /// Inside a clone segment (a rewriting group bucket).
    in_clone: bool,
    /// Resubmits so far.
    resubmits: u32,
    /// The table whose rule is being translated.
    cur_table: u8,
    /// A limit was exceeded: the frame is dropped.
    error: bool,
    /// The ct fields later lookups see (zero after a `ct` or `ct_clear`:
    /// OVS's `flow_clear_conntrack`).
    ct: CtKey,
    /// The frozen state of this pass's `ct(table=N)`, and where the
    /// actions after it (run on a copy) start.
    fork: Option<(Frozen, usize)>,
    /// The port the frame came in by (the key's `in_port` as looked up:
    /// what the executor's `IN_PORT` and ingress exclusion use).
    in_port0: u16,
    /// A `load`/`move` wrote `in_port` (the key's `in_port` may now
    /// differ from `in_port0`): outputs go through
    /// [`Xlate::output_from_written_in_port`].
    in_port_written: bool,
    /// The field stack of `push`/`pop`: `(bytes, value)` per entry (OVS
    /// keeps `bytes` of value and a length byte each).
    stack: Vec<(u8, u128)>,
    /// The stack's size as OVS counts it (bytes + 1 per entry): a
    /// resubmit with 64 kB or more drops the frame
    /// (XLATE_STACK_TOO_DEEP).
    stack_bytes: usize,
}

/// The key after an ARP/ICMP rewrite (what a later table looks up).
fn set_key_field(k: &mut FlowKey, p: PktField, a: &Action) {
    match *a {
        Action::SetArpOp(o) => k.set_nw_proto(if o > 0xff { 0 } else { o as u8 }),
        Action::SetArpSpa(x) => k.set_nw_src4(x),
        Action::SetArpTpa(x) => k.set_nw_dst4(x),
        Action::SetArpSha(m) => k.set_arp_sha(m),
        Action::SetArpTha(m) => k.set_arp_tha(m),
        Action::SetIcmpType(t) => k.set_tp_src(u16::from(t)),
        Action::SetIcmpCode(c) => k.set_tp_dst(u16::from(c)),
        _ => debug_assert!(false, "{p:?}"),
    }
}

fn is_ip(k: &FlowKey) -> bool {
    matches!(k.dl_type(), ethertype::IPV4 | ethertype::IPV6)
}

/// A port rewrite changes the frame: IP, the protocol it names, not a
/// later fragment (whose key has no ports).
fn l4_rewritable(k: &FlowKey, l4: L4Proto) -> bool {
    is_ip(k) && l4.applies_to(k.nw_proto()) && k.nw_frag() & FRAG_LATER == 0
}

impl Xlate<'_> {
    /// Append a primitive action and apply its effect to the key, so later
    /// lookups see the rewritten frame (as OVS does).
    fn prim(&mut self, a: Action) {
        match a {
            // Pipeline state only: applied here, nothing to execute.
            Action::SetReg(l) => {
                self.write_field(l.dst, u128::from(l.value()));
                return;
            }
            Action::SetXxReg(x) => {
                self.write_field(x.dst(), x.value());
                return;
            }
            Action::Move(m) => {
                let v = self.read_field(m.src);
                self.write_field(m.dst, v);
                return;
            }
            Action::StackPush(sf) => {
                let bytes = sf.n_bits.div_ceil(8);
                let v = self.read_field(sf);
                self.stack.push((bytes, v));
                self.stack_bytes += usize::from(bytes) + 1;
                return;
            }
            Action::StackPop(sf) => {
                // An empty stack: OVS reports "stack underflow" and goes on.
                if let Some((bytes, v)) = self.stack.pop() {
                    self.stack_bytes -= usize::from(bytes) + 1;
                    self.write_field(sf, v & crate::regs::ones(u32::from(sf.n_bits)));
                }
                return;
            }
            Action::Output(_) | Action::InPort | Action::Flood | Action::All | Action::Normal
                if self.in_port_written && self.key.in_port() != self.in_port0 =>
            {
                self.output_from_written_in_port(a);
                return;
            }
            _ => {}
        }
        self.push(a);
    }

    /// An output after a write of `in_port` (OVS's `xlate_output_action`
    /// and `flood_packets` compare with the flow's `in_port`, the written
    /// one): `output:N` to the written port is skipped, to the real
    /// ingress port it leaves by `IN_PORT`; `IN_PORT` goes to the written
    /// port; `FLOOD`/`ALL` go to every port up but the written one (the
    /// real ingress port included); `NORMAL` learns and floods as from the
    /// written port. The compiled actions keep the
    /// executor's meaning (ingress = the real port).
    fn output_from_written_in_port(&mut self, a: Action) {
        let (now, real) = (self.key.in_port(), self.in_port0);
        let to = |p: u16| {
            if p == real {
                Action::InPort
            } else {
                Action::Output(p)
            }
        };
        match a {
            Action::Output(p) if p != now => self.push(to(p)),
            Action::InPort if now < MAX_PORTS => self.push(Action::Output(now)),
            // OVS: a written port that is no port of the bridge ("received
            // packet on unknown port"): NORMAL does nothing.
            Action::Normal if now < MAX_PORTS && self.ports_up >> now & 1 != 0 => {
                self.push(Action::NormalFrom(now))
            }
            Action::Flood | Action::All => {
                let up = self.ports_up;
                for p in (0..MAX_PORTS).filter(|&p| p != now && up >> p & 1 != 0) {
                    self.push(to(p));
                }
            }
            _ => {}
        }
    }

    /// Append a primitive action (see [`Xlate::prim`]).
    fn push(&mut self, a: Action) {
        if a.modifies() && self.seen_output && !self.in_clone {
            // A rewrite after an output: earlier outputs keep the earlier
            // bytes (they leave as a copy made here).
            self.cut();
        }
        if a.may_output() && !self.in_clone {
            self.seen_output = true;
        }
        if self.out.actions.len() >= MAX_ACTIONS {
            // Plans index actions with u16; a flow this long is a loop.
            self.error = true;
            self.stop = true;
            return;
        }
        self.out.actions.push(a);
        let k = &mut self.key;
        match a {
            Action::PushVlan(_) => {
                let t = k.vlan_tci();
                k.set_vlan_tci2(t);
                k.set_vlan_tci(VLAN_PRESENT);
            }
            Action::PopVlan if k.vlan_tci() & VLAN_PRESENT != 0 => {
                let t2 = k.vlan_tci2();
                k.set_vlan_tci(t2);
                k.set_vlan_tci2(0);
            }
            Action::SetVlanVid(v) => {
                let t = k.vlan_tci();
                k.set_vlan_tci((t & 0xe000) | VLAN_PRESENT | v);
            }
            Action::SetVlanPcp(p) => {
                let t = k.vlan_tci();
                k.set_vlan_tci((t & 0x0fff) | VLAN_PRESENT | (u16::from(p) << 13));
            }
            Action::SetEthSrc(m) => k.set_dl_src(m),
            Action::SetEthDst(m) => k.set_dl_dst(m),
            Action::SetIpDscp(d) if is_ip(k) => {
                let tos = k.nw_tos();
                k.set_nw_tos((d << 2) | (tos & 3));
            }
            Action::SetIpEcn(e) if is_ip(k) => {
                let tos = k.nw_tos();
                k.set_nw_tos((tos & !3) | e);
            }
            Action::SetNwTtl(t) if is_ip(k) => k.set_nw_ttl(t),
            Action::SetIpv4Src(x) if k.dl_type() == ethertype::IPV4 => k.set_nw_src4(x),
            Action::SetIpv4Dst(x) if k.dl_type() == ethertype::IPV4 => k.set_nw_dst4(x),
            Action::SetIpv6Src(x) if k.dl_type() == ethertype::IPV6 => k.set_nw_src6(x),
            Action::SetIpv6Dst(x) if k.dl_type() == ethertype::IPV6 => k.set_nw_dst6(x),
            Action::SetL4Src(l4, p) if l4_rewritable(k, l4) => k.set_tp_src(p),
            Action::SetL4Dst(l4, p) if l4_rewritable(k, l4) => k.set_tp_dst(p),
            Action::SetArpOp(_)
            | Action::SetArpSpa(_)
            | Action::SetArpTpa(_)
            | Action::SetArpSha(_)
            | Action::SetArpTha(_)
            | Action::SetIcmpType(_)
            | Action::SetIcmpCode(_) => {
                if let Some(p) = a.pkt_field_written() {
                    if p.present(k) {
                        set_key_field(k, p, &a);
                    }
                }
            }
            // Later tables see the tunnel fields set so far (as OVS), in
            // the key bytes an IPv6 frame cannot lend them.
            Action::SetTunId(x) if k.dl_type() != ethertype::IPV6 => {
                k.set_tun_flags(crate::key::TUN_PRESENT);
                k.set_tun_id_bytes(x.to_be_bytes());
            }
            Action::SetTunDst(x) if k.dl_type() != ethertype::IPV6 => {
                k.set_tun_flags(crate::key::TUN_PRESENT);
                k.set_tun_dst(x);
            }
            Action::DecTtl if is_ip(k) => {
                let t = k.nw_ttl();
                if t <= 1 {
                    // The frame is dropped when the action runs.
                    self.stop = true;
                } else {
                    k.set_nw_ttl(t - 1);
                }
            }
            _ => {}
        }
    }

    /// The bits of `sf` as the flow has them here: a register from the
    /// pipeline state, a packet field from the key as rewritten so far.
    fn read_field(&self, sf: Subfield) -> u128 {
        let whole = match sf.field {
            RegField::Pkt(p) => p.get(&self.key),
            RegField::Ct(c) => c.get(&self.ct),
            f => f.get(self.meta, &self.regs),
        };
        (whole & sf.mask()) >> sf.ofs
    }

    /// Store `v` in `sf`: a register directly; a packet field as the
    /// constant rewrite of the whole field it amounts to (nothing when the
    /// frame lacks the field, as OVS).
    fn write_field(&mut self, sf: Subfield, v: u128) {
        match sf.field {
            RegField::Pkt(PktField::InPort) => {
                let new =
                    (u128::from(self.key.in_port()) & !sf.mask()) | ((v << sf.ofs) & sf.mask());
                self.key.set_in_port(new as u16);
                self.in_port_written = true;
            }
            RegField::Pkt(PktField::VlanTci) => {
                let old = self.key.vlan_tci();
                let new = (u128::from(old) & !sf.mask()) | ((v << sf.ofs) & sf.mask());
                let (acts, n) = crate::pkt_field::vlan_tci_actions(old, new as u16);
                for a in &acts[..n] {
                    self.prim(*a);
                }
            }
            RegField::Pkt(p) => {
                if !p.present(&self.key) {
                    return;
                }
                let new = (p.get(&self.key) & !sf.mask()) | ((v << sf.ofs) & sf.mask());
                if let Some(a) = p.set_action(new) {
                    self.prim(a);
                }
            }
            _ => sf.set(&mut self.meta, &mut self.regs, v),
        }
    }

    /// Close the current frame segment.
    fn cut(&mut self) {
        let end = self.out.actions.len();
        if end > self.seg_start {
            self.out.plan.push(Seg {
                start: self.seg_start as u16,
                end: end as u16,
                clone: false,
                cont: false,
            });
        }
        self.seg_start = end;
        self.seen_output = false;
    }

    /// The plan is complete: close the last segment, drop a trailing
    /// segment without outputs (rewrites nobody sees), and fall back to a
    /// plain list when one frame segment is left.
    fn finish_plan(&mut self) {
        if self.out.plan.is_empty() {
            return;
        }
        self.cut();
        let fork_at = self.fork.as_ref().map(|(_, at)| *at);
        let plan = &mut self.out.plan;
        if let Some(at) = fork_at {
            // After a fork the frame itself recirculates: the rest of the
            // pass runs on a copy (one chain of clone segments).
            let mut first = true;
            for s in plan.iter_mut().filter(|s| usize::from(s.start) >= at) {
                (s.clone, s.cont, first) = (true, !first, false);
            }
            let tail = &self.out.actions[at.min(self.out.actions.len())..];
            if !tail.iter().any(|a| a.may_output() || a.is_ct()) {
                // Nobody sees the copy.
                self.out.actions.truncate(at);
                plan.retain(|s| usize::from(s.start) < at);
            }
        }
        if let Some(last) = plan.last() {
            let seg = &self.out.actions[usize::from(last.start)..usize::from(last.end)];
            if !last.clone && !seg.iter().any(|a| a.may_output() || a.is_ct()) {
                self.out.actions.truncate(usize::from(last.start));
                plan.pop();
            }
        }
        if plan.len() == 1 && !plan[0].clone {
            plan.clear();
        }
    }

    fn actions(&mut self, acts: &[Action]) {
        for a in acts {
            if self.stop {
                return;
            }
            match *a {
                Action::Resubmit(t) => {
                    self.resubmits += 1;
                    if self.depth >= MAX_RESUBMIT_DEPTH
                        || self.resubmits > MAX_RESUBMITS
                        || self.stack_bytes >= MAX_STACK_BYTES
                    {
                        self.error = true;
                        self.stop = true;
                        return;
                    }
                    // As OVS: only a resubmit to this table or an earlier
                    // one deepens the recursion.
                    let (deepens, back) = (t <= self.cur_table, self.cur_table);
                    self.depth += u32::from(deepens);
                    self.table(t, true);
                    self.depth -= u32::from(deepens);
                    self.cur_table = back;
                }
                Action::Group(g) => self.group(g),
                Action::Drop => {}
                Action::Ct(c) => match c.resolve_zone(self.meta, &self.regs) {
                    // The zone from a register is known here: the compiled
                    // entry carries it as an immediate zone.
                    Ok(c) => self.ct(Action::Ct(c), c.spec().table),
                    Err(_) => {
                        // Too many distinct ct actions: drop the frame.
                        self.error = true;
                        self.stop = true;
                        return;
                    }
                },
                Action::CtClear => {
                    self.prim(*a);
                    self.ct = CtKey::ZERO;
                }
                a => self.prim(a),
            }
        }
    }

    /// A `ct` action: run by the datapath where it stands. With `table=N`
    /// it forks (OVS's `compose_recirculate_and_fork`): the frame
    /// recirculates into table N with the metadata and action set as they
    /// are here, while the rest of this pass continues on a copy. Either
    /// way later lookups of this pass see no ct fields.
    fn ct(&mut self, a: Action, table: Option<u8>) {
        self.prim(a);
        self.ct = CtKey::ZERO;
        let Some(t) = table else { return };
        if self.fork.is_some() || self.in_clone {
            // One recirculation per pass (see the README's limits).
            self.error = true;
            self.stop = true;
            return;
        }
        self.cut();
        let frozen = Frozen {
            table: t,
            meta: self.meta,
            regs: self.regs,
            set: self.set.clone(),
            in_port: self.in_port_written.then(|| self.key.in_port()),
            stack: self.stack.clone(),
        };
        self.fork = Some((frozen, self.out.actions.len()));
    }

    fn group(&mut self, id: u32) {
        let Ok(gi) = self.groups.binary_search_by_key(&id, |g| g.spec.id) else {
            return;
        };
        let g = &self.groups[gi];
        let mut chosen = core::mem::take(&mut self.buckets);
        let start = chosen.len();
        g.choose(&self.key, self.ports_up, &mut chosen);
        if chosen.len() > start || g.spec.kind != crate::group::GroupType::FastFailover {
            // As OVS: a fast-failover group without a live bucket counts
            // nothing.
            self.out.groups.push((gi as u32, u32::MAX));
        }
        for &b in &chosen[start..] {
            self.out.groups.push((gi as u32, b));
            // Each bucket acts on its own copy (OVS clones per bucket): a
            // bucket that rewrites becomes a clone segment, and the key,
            // metadata and registers are restored after it.
            let acts = &g.spec.buckets[b as usize].actions;
            let saved = (self.key, self.meta, self.regs);
            if acts.iter().any(Action::modifies) {
                self.clone_bucket(acts);
            } else {
                for a in acts {
                    if self.stop {
                        break;
                    }
                    match *a {
                        // A chained group (depth-limited like resubmit).
                        Action::Group(n) => self.chain(n, false),
                        a => self.prim(a),
                    }
                }
            }
            (self.key, self.meta, self.regs) = saved;
            self.stop = self.error;
        }
        chosen.truncate(start);
        self.buckets = chosen;
    }

    /// A group named in a bucket (group chaining). Depth-limited by the
    /// resubmit depth. Inside a rewriting bucket (`inline`), the chained
    /// group's buckets run one after the other on that bucket's copy.
    fn chain(&mut self, id: u32, inline: bool) {
        if self.depth >= MAX_RESUBMIT_DEPTH {
            self.error = true;
            self.stop = true;
            return;
        }
        self.depth += 1;
        if inline {
            let Ok(gi) = self.groups.binary_search_by_key(&id, |g| g.spec.id) else {
                self.depth -= 1;
                return;
            };
            let g = &self.groups[gi];
            let mut chosen = Vec::new();
            g.choose(&self.key, self.ports_up, &mut chosen);
            if !chosen.is_empty() || g.spec.kind != crate::group::GroupType::FastFailover {
                self.out.groups.push((gi as u32, u32::MAX));
            }
            for b in chosen {
                self.out.groups.push((gi as u32, b));
                let saved = (self.key, self.meta, self.regs);
                for a in &g.spec.buckets[b as usize].actions {
                    if self.stop {
                        break;
                    }
                    match *a {
                        Action::Group(n) => self.chain(n, true),
                        a => self.prim(a),
                    }
                }
                (self.key, self.meta, self.regs) = saved;
            }
        } else {
            self.group(id);
        }
        self.depth -= 1;
    }

    /// A bucket that rewrites: clone segments (cut again where it rewrites
    /// after an output, the pieces continuing on the same copy); a
    /// trailing piece without outputs is dropped (nobody sees it).
    fn clone_bucket(&mut self, acts: &[Action]) {
        self.cut();
        self.in_clone = true;
        let (mut start, mut seen, mut first) = (self.out.actions.len(), false, true);
        for a in acts {
            if self.stop {
                break;
            }
            if a.modifies() && seen {
                self.out.plan.push(Seg {
                    start: start as u16,
                    end: self.out.actions.len() as u16,
                    clone: true,
                    cont: !first,
                });
                (start, seen, first) = (self.out.actions.len(), false, false);
            }
            match *a {
                Action::Group(n) => self.chain(n, true),
                a => self.prim(a),
            }
            seen |= a.may_output();
        }
        if seen {
            self.out.plan.push(Seg {
                start: start as u16,
                end: self.out.actions.len() as u16,
                clone: true,
                cont: !first,
            });
        } else {
            self.out.actions.truncate(start);
        }
        self.in_clone = false;
        self.seg_start = self.out.actions.len();
    }

    /// Look up table `t` and run the rule found. `resubmit`: a miss just
    /// returns (Nicira semantics); otherwise a miss ends the pipeline
    /// (OpenFlow 1.3 table-miss without a table-miss rule: drop, the
    /// action set discarded).
    fn table(&mut self, t: u8, resubmit: bool) {
        let hit = self
            .pipe
            .tables
            .get(usize::from(t))
            .and_then(Option::as_ref)
            .and_then(|c| c.lookup(&self.key, self.meta, &self.regs, &self.ct));
        let Some(ri) = hit else {
            self.out.missed.push(t);
            if !resubmit {
                // Table-miss without a table-miss rule: the pipeline ends
                // here. OVS still executes the action set ("No match.
                // drop / Executing action set"), so it is kept.
                self.out.empty_reason = DropReason::NoMatch;
            }
            return;
        };
        self.out.rules.push(ri);
        self.cur_table = t;
        let rules = self.rules;
        self.out
            .counters
            .push(Arc::clone(rules[ri as usize].counter_set()));
        let spec = &rules[ri as usize].spec;
        self.actions(&spec.actions);
        if self.stop {
            return;
        }
        let Instructions {
            clear_actions,
            write_actions,
            write_metadata,
            goto_table,
        } = &spec.instructions;
        if *clear_actions {
            self.set = ActionSet::default();
        }
        if let Some(w) = write_actions {
            self.set.write(w);
        }
        if let Some((v, m)) = *write_metadata {
            self.meta = (self.meta & !m) | (v & m);
        }
        if let Some(n) = *goto_table {
            self.table(n, false);
        }
    }
}

/// Translate the flow with (masked) key `key` through the pipeline and
/// return the index of its compiled entry in `store`.
pub(crate) fn compile(
    rules: &[Arc<Rule>],
    pipe: &Pipeline,
    groups: &[Arc<Group>],
    key: &FlowKey,
    ports_up: u64,
    store: &mut CompiledStore,
) -> (u32, bool) {
    compile_from(rules, pipe, groups, key, None, ports_up, store)
}

/// [`compile`] for a recirculated frame: `resume` is the frozen state
/// (see [`Compiled::fork`]) and the frame's ct fields; the translation
/// starts in the frozen table with its metadata and action set.
pub(crate) fn compile_from(
    rules: &[Arc<Rule>],
    pipe: &Pipeline,
    groups: &[Arc<Group>],
    key: &FlowKey,
    resume: Option<(u32, &CtKey)>,
    ports_up: u64,
    store: &mut CompiledStore,
) -> (u32, bool) {
    let (table, meta, regs, set, ct, in_port, stack) =
        match resume.and_then(|(id, ct)| Some((store.frozen.get(id as usize)?, ct))) {
            Some((f, ct)) => {
                let (set, stack) = (f.set.clone(), f.stack.clone());
                (f.table, f.meta, f.regs, set, *ct, f.in_port, stack)
            }
            // A frame enters with metadata and registers 0.
            None => (
                0,
                0,
                Regs::ZERO,
                ActionSet::default(),
                CtKey::ZERO,
                None,
                Vec::new(),
            ),
        };
    let stack_bytes = stack.iter().map(|&(b, _)| usize::from(b) + 1).sum();
    let mut key = *key;
    let in_port0 = key.in_port();
    if let Some(p) = in_port {
        key.set_in_port(p);
    }
    let mut x = Xlate {
        rules,
        pipe,
        groups,
        ports_up,
        key,
        meta,
        regs,
        set,
        out: Compiled {
            actions: Vec::new(),
            rules: Vec::new(),
            counters: Vec::new(),
            groups: Vec::new(),
            missed: Vec::new(),
            plan: Vec::new(),
            simple: false,
            floods: 0,
            empty_reason: DropReason::Action,
            has_ct: false,
            fork: None,
            modifies: false,
        },
        stop: false,
        depth: 0,
        buckets: Vec::new(),
        seg_start: 0,
        seen_output: false,
        in_clone: false,
        resubmits: 0,
        cur_table: table,
        error: false,
        ct,
        fork: None,
        in_port0,
        in_port_written: in_port.is_some(),
        stack,
        stack_bytes,
    };
    x.table(table, false);
    let miss = x.out.rules.is_empty();
    if !x.stop {
        // End of the pipeline: execute the action set.
        let set = x.set.ordered();
        x.actions(&set);
    }
    x.finish_plan();
    if x.error {
        // Too deep or too long: drop the frame (the rules traversed still
        // count it).
        x.out.actions.clear();
        x.out.plan.clear();
        x.out.empty_reason = DropReason::Action;
        x.fork = None;
    }
    if let Some((f, _)) = x.fork.take() {
        x.out.fork = Some(store.freeze(f));
    }
    let c = &mut x.out;
    c.has_ct = c.fork.is_some() || c.actions.iter().any(Action::is_ct);
    c.modifies = c.actions.iter().any(Action::modifies);
    c.simple = c.plan.is_empty()
        && c.actions.iter().all(|a| {
            matches!(
                a,
                Action::Output(_) | Action::Flood | Action::All | Action::InPort
            )
        });
    c.floods = c
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Flood | Action::All))
        .count() as u32;
    (store.intern(x.out), miss)
}
