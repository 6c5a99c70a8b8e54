//! The compiled, cached multi-table pipeline against a naive reference:
//! random rule sets (tables, goto, resubmit, groups, action sets,
//! metadata, rewrites before and after outputs) and random frames; the
//! reference walks the tables frame by frame, re-extracting the key from
//! the rewritten bytes before every lookup and executing one action at a
//! time on the real frame (each group bucket on a copy). Both must send
//! the same bytes to the same ports, on the first (compiling) and on the
//! second (cached) pass. (Compared as sets: the same bytes to one port
//! twice leave once here, OVS would repeat them.)

use switch::action::{execute, Action, ExecCtx, ExecEvents, Instructions, L4Proto};
use switch::extract::extract;
use switch::fdb::Fdb;
use switch::frame::{Frame, VecFrame};
use switch::group::{five_tuple_hash, Bucket, GroupSpec, GroupType};
use switch::key::FlowKey;
use switch::rule::RuleSpec;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::*;
use switch::verdict::Verdict;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const PORTS: [u16; 4] = [1, 2, 3, 4];
const TABLES: u8 = 4;

fn rand_action(r: &mut Rng, table: u8, groups: &[GroupSpec], in_bucket: bool) -> Action {
    loop {
        let a = match r.below(16) {
            0..=2 => Action::Output(*r.pick(&PORTS)),
            3 => Action::SetVlanVid(*r.pick(&[5, 6, 7])),
            4 => Action::PushVlan(0x8100),
            5 => Action::PopVlan,
            6 => Action::DecTtl,
            7 => Action::SetEthSrc([2, 0, 0, 0, 0, r.below(3) as u8]),
            8 => Action::SetIpDscp(*r.pick(&[0, 10, 46])),
            9 => Action::Flood,
            10 if !in_bucket => Action::Resubmit(r.below(u64::from(TABLES)) as u8),
            11 if !in_bucket && !groups.is_empty() => Action::Group(r.pick(groups).id),
            12 => Action::SetIpv4Src([10, 0, 0, r.below(3) as u8]),
            13 => Action::SetL4Dst(
                *r.pick(&[L4Proto::Any, L4Proto::Udp, L4Proto::Tcp]),
                *r.pick(&[53, 80]),
            ),
            14 => Action::SetNwTtl(*r.pick(&[1, 2, 64])),
            15 => Action::SetIpEcn(r.below(4) as u8),
            _ => continue,
        };
        if let Action::Resubmit(t) = a {
            // Keep loops rare: mostly forward.
            if t <= table && r.below(4) != 0 {
                continue;
            }
        }
        return a;
    }
}

fn rand_match(r: &mut Rng) -> String {
    let mut m = Vec::new();
    if r.below(3) == 0 {
        m.push(format!("in_port={}", r.pick(&[1u16, 2])));
    }
    match r.below(5) {
        0 => m.push(format!("dl_vlan={}", r.pick(&[5u16, 6, 7]))),
        1 => m.push("dl_vlan=0xffff".into()),
        2 => m.push(format!("dl_vlan2={}", r.pick(&[5u16, 6]))),
        _ => {}
    }
    match r.below(6) {
        0 => m.push(format!("udp,tp_dst={}", r.pick(&[53u16, 80]))),
        1 => m.push(format!("ip,nw_ttl={}", r.pick(&[1u8, 2, 63, 64]))),
        2 => m.push(format!("ip,ip_dscp={}", r.pick(&[0u8, 10, 46]))),
        3 => m.push(format!("dl_src=02:00:00:00:00:0{}", r.below(3))),
        4 => m.push(format!("ip,nw_src=10.0.0.{}", r.below(3))),
        _ => {}
    }
    if r.below(4) == 0 {
        m.push(format!("metadata={:#x}/0xf", r.below(4)));
    }
    m.join(",")
}

fn rand_rule(r: &mut Rng, groups: &[GroupSpec]) -> RuleSpec {
    let table = r.below(u64::from(TABLES)) as u8;
    let n = r.below(4);
    let acts: Vec<String> = (0..n)
        .map(|_| rand_action(r, table, groups, false).to_string())
        .collect();
    let mut ins = Vec::new();
    if r.below(4) == 0 {
        ins.push("clear_actions".to_string());
    }
    if r.below(3) == 0 {
        let w: Vec<String> = (0..1 + r.below(3))
            .map(|_| loop {
                let a = rand_action(r, table, groups, true);
                if !matches!(a, Action::Resubmit(_)) {
                    break a.to_string();
                }
            })
            .collect();
        ins.push(format!("write_actions({})", w.join(",")));
    }
    if r.below(3) == 0 {
        ins.push(format!("write_metadata:{:#x}/0xf", r.below(4)));
    }
    if table + 1 < TABLES && r.below(2) == 0 {
        ins.push(format!(
            "goto_table:{}",
            table + 1 + r.below(u64::from(TABLES - table - 1)) as u8
        ));
    }
    let mut all = acts;
    all.extend(ins);
    if all.is_empty() {
        all.push("drop".into());
    }
    let text = format!(
        "table={table},priority={},{}actions={}",
        r.below(4) * 10,
        {
            let m = rand_match(r);
            if m.is_empty() {
                m
            } else {
                m + ","
            }
        },
        all.join(",")
    );
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn rand_groups(r: &mut Rng) -> Vec<GroupSpec> {
    let kinds = [
        GroupType::All,
        GroupType::Select,
        GroupType::Indirect,
        GroupType::FastFailover,
    ];
    (1..=r.below(4) as u32)
        .map(|id| {
            let kind = *r.pick(&kinds);
            let nb = if kind == GroupType::Indirect {
                1
            } else {
                1 + r.below(3)
            };
            GroupSpec {
                id,
                kind,
                buckets: (0..nb)
                    .map(|_| Bucket {
                        weight: 1 + r.below(3) as u16,
                        watch_port: Some(*r.pick(&[1u16, 2, 3, 4, 5])),
                        actions: (0..1 + r.below(3))
                            .map(|_| rand_action(r, 0, &[], true))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn rand_frame(r: &mut Rng) -> Vec<u8> {
    let ttl = *r.pick(&[1u8, 2, 64]);
    let src = [10, 0, 0, r.below(4) as u8];
    let sport = 1000 + r.below(8) as u16;
    let dport = *r.pick(&[53u16, 80]);
    let mut f = if r.below(4) == 0 {
        tcp4(src, [10, 0, 1, 1], sport, dport, 0x10, 64)
    } else {
        udp4(src, [10, 0, 1, 1], sport, dport)
    };
    f[22] = ttl;
    fix_ip_csum(&mut f);
    match r.below(3) {
        0 => f,
        1 => with_vlan(&f, 0x8100, *r.pick(&[5u16, 6, 7])),
        _ => with_vlan(
            &with_vlan(&f, 0x8100, *r.pick(&[5u16, 6])),
            0x88a8,
            *r.pick(&[5u16, 7]),
        ),
    }
}

/// The reference: OpenFlow 1.3 / OVS semantics, one action at a time.
struct Reference<'a> {
    rules: &'a [RuleSpec],
    groups: &'a [GroupSpec],
    in_port: u16,
    ports_up: u64,
    fdb: Fdb,
    outs: Vec<(u16, Vec<u8>)>,
    meta: u64,
    set: Vec<Action>,
    stop: bool,
    error: bool,
    depth: u32,
    resubmits: u32,
    cur_table: u8,
    /// The frame reached three VLAN tags, which the flow key cannot
    /// describe (as OVS's): not compared.
    deep: bool,
}

fn kind(a: &Action) -> u8 {
    match a {
        Action::PopVlan => 0,
        Action::PushVlan(_) => 1,
        Action::DecTtl => 2,
        Action::SetVlanVid(_) => 3,
        Action::SetVlanPcp(_) => 4,
        Action::SetEthSrc(_) => 5,
        Action::SetEthDst(_) => 6,
        Action::SetIpDscp(_) => 7,
        Action::SetIpEcn(_) => 8,
        Action::SetNwTtl(_) => 9,
        Action::SetIpv4Src(_) => 10,
        Action::SetIpv4Dst(_) => 11,
        Action::SetIpv6Src(_) => 12,
        Action::SetIpv6Dst(_) => 13,
        Action::SetL4Src(..) => 14,
        Action::SetL4Dst(..) => 15,
        Action::Group(_) => 16,
        _ => 17, // outputs
    }
}

impl Reference<'_> {
    fn key(&mut self, f: &VecFrame) -> (FlowKey, usize) {
        let mut k = FlowKey::ZERO;
        let m = extract(f.data(), self.in_port, &mut k);
        if m.malformed == Some(switch::extract::Malformed::TooManyVlans) {
            self.deep = true;
        }
        (k, usize::from(m.l3))
    }

    /// One primitive action on `f`; false when the frame is dropped.
    fn prim(&mut self, a: Action, f: &mut VecFrame) -> bool {
        let (_, l3) = self.key(f);
        let ctx = ExecCtx {
            in_port: self.in_port,
            ports_up: self.ports_up,
            fdb: &self.fdb,
            now_ms: 0,
            ct: None,
        };
        match execute(&[a], f, l3, &ctx, &mut ExecEvents::default()) {
            Verdict::Output(m) => {
                for p in PORTS {
                    if m & (1 << p) != 0 {
                        self.outs.push((p, f.data().to_vec()));
                    }
                }
                true
            }
            Verdict::Drop(switch::verdict::DropReason::TtlExpired)
            | Verdict::Drop(switch::verdict::DropReason::NoHeadroom) => false,
            Verdict::Drop(_) => true,
        }
    }

    fn actions(&mut self, acts: &[Action], f: &mut VecFrame) {
        for a in acts {
            if self.stop {
                return;
            }
            match *a {
                Action::Resubmit(t) => {
                    self.resubmits += 1;
                    if self.depth >= 64 || self.resubmits > 4096 {
                        self.error = true;
                        self.stop = true;
                        return;
                    }
                    // Only a resubmit to this table or an earlier one deepens.
                    let (deep, back) = (u32::from(t <= self.cur_table), self.cur_table);
                    self.depth += deep;
                    self.table(t, true, f);
                    self.depth -= deep;
                    self.cur_table = back;
                }
                Action::Group(g) => self.group(g, f),
                Action::Drop => {}
                a => {
                    if !self.prim(a, f) {
                        self.stop = true;
                    }
                }
            }
        }
    }

    fn group(&mut self, id: u32, f: &mut VecFrame) {
        let Some(g) = self.groups.iter().find(|g| g.id == id) else {
            return;
        };
        let (k, _) = self.key(f);
        let up = self.ports_up;
        let live = |b: &Bucket| b.watch_port.is_none_or(|p| up & (1 << p) != 0);
        let chosen: Vec<usize> = match g.kind {
            GroupType::All => (0..g.buckets.len()).collect(),
            GroupType::Indirect => vec![0],
            GroupType::FastFailover => g.buckets.iter().position(live).into_iter().collect(),
            GroupType::Select => {
                let total: u64 = g.buckets.iter().map(|b| u64::from(b.weight)).sum();
                let mut pick = five_tuple_hash(&k) % total;
                let mut out = Vec::new();
                for (i, b) in g.buckets.iter().enumerate() {
                    if pick < u64::from(b.weight) {
                        out.push(i);
                        break;
                    }
                    pick -= u64::from(b.weight);
                }
                out
            }
        };
        for i in chosen {
            let mut copy = f.clone();
            for a in &g.buckets[i].actions {
                if !self.prim(*a, &mut copy) {
                    break;
                }
            }
            let _ = self.key(&copy);
        }
    }

    fn table(&mut self, t: u8, resubmit: bool, f: &mut VecFrame) {
        let (k, _) = self.key(f);
        let mut best: Option<&RuleSpec> = None;
        for r in self.rules {
            if r.table == t
                && r.matcher.matches_meta(&k, self.meta)
                && best.is_none_or(|b| r.priority > b.priority)
            {
                best = Some(r);
            }
        }
        let Some(rule) = best else {
            // Table-miss: nothing here (OVS then still runs the action set).
            let _ = resubmit;
            return;
        };
        let back = self.cur_table;
        self.cur_table = t;
        self.actions(&rule.actions, f);
        if self.stop {
            return;
        }
        let Instructions {
            clear_actions,
            write_actions,
            write_metadata,
            goto_table,
        } = &rule.instructions;
        if *clear_actions {
            self.set.clear();
        }
        for a in write_actions.iter().flatten() {
            let k = kind(a);
            self.set.retain(|x| kind(x) != k);
            self.set.push(*a);
        }
        if let Some((v, m)) = *write_metadata {
            self.meta = (self.meta & !m) | (v & m);
        }
        if let Some(n) = *goto_table {
            self.table(n, false, f);
        }
        let _ = back;
    }

    fn run(mut self, frame: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
        let mut f = VecFrame::new(frame);
        self.table(0, false, &mut f);
        if !self.stop {
            let mut set = std::mem::take(&mut self.set);
            set.sort_by_key(kind);
            if set.iter().any(|a| matches!(a, Action::Group(_))) {
                set.retain(|a| kind(a) != 17);
            }
            self.actions(&set, &mut f);
        }
        let _ = self.key(&f);
        if self.deep {
            return None;
        }
        if self.error {
            return Some(Vec::new());
        }
        let mut o = self.outs;
        o.sort();
        // The switch sends a frame once per port per byte state (outputs
        // collect into a port set), where OVS repeats it: compare sets.
        o.dedup();
        Some(o)
    }
}

fn switch_outputs(
    dp: &mut switch::datapath::Datapath,
    in_port: u16,
    frame: &[u8],
) -> Vec<(u16, Vec<u8>)> {
    let mut fs = [VecFrame::new(frame)];
    let mut vs = [Verdict::default()];
    let mut copies = Vec::new();
    dp.process_burst_copies(in_port, &mut fs, &mut vs, &mut copies, 0);
    let mut out = Vec::new();
    let [main] = fs;
    for (f, m) in copies
        .into_iter()
        .chain([(main, vs[0].ports().fold(0, |m, p| m | 1 << p))])
    {
        for p in PORTS {
            if m & (1 << p) != 0 {
                out.push((p, f.data().to_vec()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn compiled_pipeline_matches_the_reference() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut checked, mut skipped) = (0, 0);
    for case in 0..300 {
        let groups = rand_groups(&mut r);
        let mut rules: Vec<RuleSpec> = Vec::new();
        for _ in 0..2 + r.below(10) {
            let rule = rand_rule(&mut r, &groups);
            // Same table, match and priority: the later one replaces it in
            // place (as FlowTable::add does).
            match rules.iter().position(|x| {
                x.table == rule.table && x.priority == rule.priority && x.matcher == rule.matcher
            }) {
                Some(i) => rules[i] = rule,
                None => rules.push(rule),
            }
        }
        let sw = Switch::new(SwitchConfig {
            workers: 1,
            cache_entries: 4096,
            ..Default::default()
        });
        for p in [1, 2, 3] {
            sw.port_add(p).unwrap();
        }
        for g in &groups {
            sw.group_add(g.clone()).unwrap();
        }
        // Install in the reference's order (equal priorities: first wins).
        let rules = {
            let mut v = Vec::new();
            for x in &rules {
                sw.table.add(x.clone(), 0).unwrap();
                v.push(x.clone());
            }
            v
        };
        let mut dp = sw.datapath(0);
        for _ in 0..20 {
            let frame = rand_frame(&mut r);
            let in_port = *r.pick(&[1u16, 2]);
            let want = Reference {
                rules: &rules,
                groups: &groups,
                in_port,
                ports_up: sw.ports_up(),
                fdb: Fdb::new(16, 1000),
                outs: Vec::new(),
                meta: 0,
                set: Vec::new(),
                stop: false,
                error: false,
                depth: 0,
                resubmits: 0,
                cur_table: 0,
                deep: false,
            }
            .run(&frame);
            let Some(want) = want else {
                skipped += 1;
                continue;
            };
            for pass in ["compiling", "cached"] {
                let got = switch_outputs(&mut dp, in_port, &frame);
                assert_eq!(
                    got,
                    want,
                    "case {case} ({pass}), in_port {in_port}, frame {frame:02x?}\nrules:\n{}\ngroups:\n{}",
                    rules
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    groups
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            checked += 1;
        }
    }
    eprintln!("checked {checked}, skipped {skipped}");
    assert_eq!(checked + skipped, 6000);
    assert!(skipped < 600, "{skipped} frames reached three VLAN tags");
}
