//! Flow-cache coherence under rule churn: rule changes invalidate only the
//! cached flows they can affect (lazy per-bucket revalidation against the
//! version's change log), and every frame is still switched exactly as a
//! cache-less reference (a linear scan of the current rules) decides.

mod common;

use std::sync::Arc;

use common::*;
use switch::extract::extract;
use switch::frame::{Frame, VecFrame};
use switch::key::FlowKey;
use switch::rule::{parse_match, RuleSpec};
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::{tcp4, udp4};
use switch::verdict::{DropReason, Verdict};

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
}

/// The cache-less reference: the highest-priority matching rule of the
/// current table (earliest installed among equals), its one output port.
fn reference(sw: &Switch, frame: &[u8], in_port: u16) -> Verdict {
    let mut key = FlowKey::ZERO;
    extract(frame, in_port, &mut key);
    let t = sw.table.snapshot();
    let mut best: Option<&Arc<switch::table::Rule>> = None;
    for r in &t.rules {
        if r.spec.matcher.matches(&key) && best.is_none_or(|b| r.spec.priority > b.spec.priority) {
            best = Some(r);
        }
    }
    match best {
        None => Verdict::Drop(DropReason::NoMatch),
        Some(r) => match r.spec.actions[..] {
            [switch::action::Action::Output(p)] => ports(&[p]),
            _ => panic!("test rules output to one port"),
        },
    }
}

/// The pool of rule matches the churn draws from (each has its own output
/// port, so a verdict names the rule that decided it). Values are drawn
/// from the few the frames carry, so many rules match cached flows.
fn pool() -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..60u32 {
        let a = i % 4;
        let m = match i % 6 {
            0 => format!("ip,nw_dst=10.{a}.0.0/16"),
            1 => format!("ip,nw_dst=10.{a}.{}.0/24", i % 3),
            2 => format!("udp,nw_dst=10.{a}.{}.{}", i % 3, i % 5),
            3 => format!("tcp,tp_dst={}", 80 + i % 3),
            4 => format!("ip,nw_src=192.168.{a}.0/24"),
            // Never matches: only 192.168.0-3 and 10.0-3 occur.
            _ => format!("ip,nw_dst=11.{a}.{}.0/24", i % 7),
        };
        v.push(format!(
            "priority={},{m},actions=output:{}",
            100 + (i * 7) % 5,
            i + 1
        ));
    }
    v
}

fn frame(rng: &mut Rng) -> Vec<u8> {
    let src = [192, 168, rng.below(4) as u8, rng.below(3) as u8];
    let dst = [
        10,
        rng.below(4) as u8,
        rng.below(3) as u8,
        rng.below(5) as u8,
    ];
    let port = 80 + rng.below(4) as u16;
    if rng.below(2) == 0 {
        udp4(src, dst, 1000 + rng.below(3) as u16, port)
    } else {
        tcp4(src, dst, 1000, port, 0, 64)
    }
}

fn churn_case(seed: u64, cache_entries: usize) {
    let mut rng = Rng(seed);
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries,
        ..Default::default()
    });
    for p in 0..62 {
        sw.port_add(p).unwrap();
    }
    let pool = pool();
    let mut dp = sw.datapath(0);
    let flows: Vec<Vec<u8>> = (0..300).map(|_| frame(&mut rng)).collect();
    for step in 0..1500 {
        // 0..3 changes between bursts, sometimes a flood of them (past
        // the change log).
        let n = match rng.below(20) {
            0 => 40 + rng.below(60),
            _ => rng.below(4),
        };
        for _ in 0..n {
            let r = &pool[rng.below(pool.len() as u64) as usize];
            match rng.below(10) {
                0..=4 => {
                    sw.table.add(r.parse().unwrap(), 0).unwrap();
                }
                5..=7 => {
                    let m = r.split(",actions").next().unwrap();
                    let (mm, p) = parse_match(m).unwrap();
                    sw.table.del(&mm, p, true);
                }
                8 => {
                    // Modify: same match and priority, another port.
                    let m = r.split(",actions").next().unwrap();
                    let spec: RuleSpec = format!("{m},actions=output:{}", 1 + rng.below(61))
                        .parse()
                        .unwrap();
                    let f = switch::rule::FlowFilter {
                        matcher: spec.matcher,
                        strict: true,
                        priority: Some(spec.priority),
                        ..switch::rule::FlowFilter::all()
                    };
                    sw.table
                        .modify(&f, spec.actions, Default::default(), false)
                        .unwrap();
                }
                _ => {
                    // A rare full flush: a rule reading a new field
                    // (widens the lookup mask), or a port change.
                    if rng.below(4) == 0 {
                        let s = format!("priority=1,ip,nw_ttl={},actions=output:61", rng.below(3));
                        sw.table.add(s.parse().unwrap(), 0).unwrap();
                    } else {
                        sw.table.synchronize();
                    }
                }
            }
        }
        // A burst of cached and new flows, each checked.
        let idx: Vec<usize> = (0..32)
            .map(|_| rng.below(flows.len() as u64) as usize)
            .collect();
        let mut fs: Vec<VecFrame> = idx.iter().map(|&i| VecFrame::new(&flows[i])).collect();
        let mut vs = vec![Verdict::default(); fs.len()];
        dp.process_burst(62, &mut fs, &mut vs, 0);
        for (j, &i) in idx.iter().enumerate() {
            let want = reference(&sw, &flows[i], 62);
            assert_eq!(
                vs[j], want,
                "seed {seed} step {step}: frame {i} switched {:?}, reference {:?}",
                vs[j], want
            );
        }
    }
}

#[test]
fn cache_matches_reference_under_random_churn() {
    for seed in 1..=6u64 {
        churn_case(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 4096);
    }
}

#[test]
fn cache_matches_reference_under_churn_with_full_buckets() {
    // 7 entries: one bucket, every revalidation sees every way.
    for seed in 1..=3u64 {
        churn_case(seed.wrapping_mul(0x2545_f491_4f6c_dd1d), 7);
    }
}

fn counts(dp: &switch::datapath::Datapath) -> (u64, u64) {
    (dp.counters().cache_hits, dp.counters().cache_misses)
}

#[test]
fn non_matching_changes_keep_cached_flows() {
    let sw = switch_with(
        &[
            "priority=10,ip,nw_dst=10.0.0.0/8,actions=output:2",
            "priority=0,actions=output:3",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp4([1, 1, 1, 1], [10, 1, 2, 3], 1, 2);
    let g = udp4([1, 1, 1, 1], [12, 1, 2, 3], 1, 2);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    assert_eq!(send(&mut dp, 1, &g, 0).0, ports(&[3]));
    let (h0, m0) = counts(&dp);
    // Same mask, a destination no frame has: nothing is evicted.
    let r = "priority=50,ip,nw_dst=11.0.0.0/8,actions=output:4";
    sw.table.add(r.parse().unwrap(), 0).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    assert_eq!(send(&mut dp, 1, &g, 0).0, ports(&[3]));
    let (m, _) = parse_match("ip,nw_dst=11.0.0.0/8").unwrap();
    assert_eq!(sw.table.del(&m, Some(50), true), 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    assert_eq!(send(&mut dp, 1, &g, 0).0, ports(&[3]));
    assert_eq!(
        counts(&dp),
        (h0 + 4, m0),
        "no miss after non-matching changes"
    );

    // A higher-priority rule covering a cached key wins at once; the other
    // flow stays cached.
    let r = "priority=20,ip,nw_dst=10.0.0.0/8,actions=output:4";
    sw.table.add(r.parse().unwrap(), 0).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[4]));
    assert_eq!(send(&mut dp, 1, &g, 0).0, ports(&[3]));
    assert_eq!(counts(&dp), (h0 + 5, m0 + 1));
    // Deleting it: the flow falls back to the earlier rule.
    let (m, _) = parse_match("ip,nw_dst=10.0.0.0/8").unwrap();
    assert_eq!(sw.table.del(&m, Some(20), true), 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    // Deleting the rule a flow is cached on: the catch-all decides.
    let (m, _) = parse_match("ip,nw_dst=10.0.0.0/8").unwrap();
    assert_eq!(sw.table.del(&m, Some(10), true), 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    assert_eq!(send(&mut dp, 1, &g, 0).0, ports(&[3]));
    // A rule reading a new field flushes (every flow misses once).
    let (_, m1) = counts(&dp);
    let r = "priority=5,tcp,tp_dst=22,actions=output:4";
    sw.table.add(r.parse().unwrap(), 0).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    assert_eq!(counts(&dp).1, m1 + 1);
}

#[test]
fn rule_slots_are_reused_safely() {
    // A deleted rule's slot goes to the next rule added; flows cached on
    // the deleted rule must not reach the new one.
    let sw = switch_with(
        &[
            "priority=10,ip,nw_dst=10.0.0.1,actions=output:2",
            "priority=0,actions=output:3",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp4([1, 1, 1, 1], [10, 0, 0, 1], 1, 2);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    for round in 0..(2 * switch::table::CHANGE_LOG as u32) {
        let (m, _) = parse_match("ip,nw_dst=10.0.0.1").unwrap();
        sw.table.del(&m, None, true);
        let r = format!(
            "priority=10,ip,nw_dst=10.9.{}.{},actions=output:4",
            round >> 8,
            round & 255
        );
        sw.table.add(r.parse().unwrap(), 0).unwrap();
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]), "round {round}");
        let r = "priority=10,ip,nw_dst=10.0.0.1,actions=output:2";
        sw.table.add(r.parse().unwrap(), 0).unwrap();
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]), "round {round}");
    }
}

#[test]
fn changes_past_the_log_still_reach_cached_flows() {
    // A matching change followed by more non-matching ones than the change
    // log holds, all before the worker's next burst: the bucket is too old
    // to check and must be refilled.
    let sw = switch_with(
        &[
            "priority=10,ip,nw_dst=10.0.0.0/8,actions=output:2",
            "priority=0,actions=output:3",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp4([1, 1, 1, 1], [10, 1, 2, 3], 1, 2);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    let r = "priority=20,ip,nw_dst=10.0.0.0/8,actions=output:4";
    sw.table.add(r.parse().unwrap(), 0).unwrap();
    for i in 0..=switch::table::CHANGE_LOG {
        let r = format!("priority=30,ip,nw_dst=11.{i}.0.0/8,actions=output:1");
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[4]));
}

/// Multi-table pool: table 0 rewrites (dl_src, nw_dst) before goto 1;
/// table 1 matches on original and rewritten fields, some resubmit to
/// table 2. Each output port names the rule.
fn pipeline_pool() -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..48u32 {
        // a and b independent of the rule kind (i % 8), so rewritten
        // destinations (10.3.b.1) meet table 1 and 2 rules.
        let (a, b, p) = ((i / 8) % 4, (i / 3) % 3, i + 1);
        let pr = 100 + (i * 7) % 5;
        v.push(match i % 8 {
            0 => format!("table=0,priority=20,ip,nw_dst=10.{a}.0.0/16,actions=mod_dl_src:00:00:00:00:00:0{a},goto_table:1"),
            1 => format!("table=0,priority=25,udp,tp_dst={},actions=mod_nw_dst:10.3.{b}.1,goto_table:1", 80 + b),
            2 => format!("table=1,priority={pr},ip,nw_dst=10.{a}.{b}.0/24,actions=output:{p}"),
            3 => format!("table=1,priority={pr},dl_src=00:00:00:00:00:0{a},actions=output:{p}"),
            4 => format!("table=1,priority={pr},ip,nw_src=192.168.{a}.0/24,actions=resubmit(,2),output:{p}"),
            5 => format!("table=2,priority={pr},udp,tp_dst={},actions=output:{p}", 80 + b),
            6 => format!("table=2,priority={pr},ip,nw_dst=10.{a}.{b}.0/24,actions=output:{p}"),
            // Never matches (11/8 is never a destination, even rewritten).
            _ => format!("table=1,priority={pr},ip,nw_dst=11.{a}.{b}.0/24,actions=output:{p}"),
        });
    }
    v
}

/// Rules always present: the table-0 and table-1 defaults, and one
/// non-matching rule per mask shape and rewrite of the pool, so most
/// changes keep the lookup mask.
const PIPELINE_BASE: &[&str] = &[
    "table=0,priority=1,actions=goto_table:1",
    "table=1,priority=0,actions=output:60",
    "table=0,priority=2,ip,nw_dst=11.0.0.0/16,actions=mod_dl_src:00:00:00:00:00:ff,goto_table:1",
    "table=0,priority=2,udp,tp_dst=1,actions=mod_nw_dst:11.0.0.1,goto_table:1",
    "table=1,priority=1,ip,nw_dst=11.0.0.0/24,actions=output:59",
    "table=1,priority=1,dl_src=00:00:00:00:00:ff,actions=output:59",
    "table=1,priority=1,ip,nw_src=11.0.0.0/24,actions=resubmit(,2),output:59",
    "table=2,priority=1,udp,tp_dst=1,actions=output:59",
    "table=2,priority=1,ip,nw_dst=11.0.0.0/24,actions=output:59",
];

fn pipeline_churn_case(seed: u64) -> (u64, u64) {
    let mut rng = Rng(seed);
    let sw = Switch::new(SwitchConfig {
        workers: 2,
        cache_entries: 4096,
        ..Default::default()
    });
    for p in 0..62 {
        sw.port_add(p).unwrap();
    }
    for r in PIPELINE_BASE {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    let pool = pipeline_pool();
    let mut dp = sw.datapath(0);
    let flows: Vec<Vec<u8>> = (0..200).map(|_| frame(&mut rng)).collect();
    for step in 0..600 {
        let n = match rng.below(20) {
            0 => 40 + rng.below(60),
            _ => rng.below(3),
        };
        for _ in 0..n {
            let r = &pool[rng.below(pool.len() as u64) as usize];
            if rng.below(2) == 0 {
                sw.table.add(r.parse().unwrap(), 0).unwrap();
            } else {
                let spec: RuleSpec = r.parse().unwrap();
                let f = switch::rule::FlowFilter {
                    table: Some(spec.table),
                    matcher: spec.matcher,
                    strict: true,
                    priority: Some(spec.priority),
                    ..switch::rule::FlowFilter::all()
                };
                sw.table.delete(&f, 0);
            }
        }
        let idx: Vec<usize> = (0..32)
            .map(|_| rng.below(flows.len() as u64) as usize)
            .collect();
        let mut fs: Vec<VecFrame> = idx.iter().map(|&i| VecFrame::new(&flows[i])).collect();
        let mut vs = vec![Verdict::default(); fs.len()];
        dp.process_burst(62, &mut fs, &mut vs, 0);
        // The reference: a fresh datapath (empty cache, nothing compiled).
        let mut fresh = sw.datapath(1);
        for (j, &i) in idx.iter().enumerate() {
            let (want, bytes) = send(&mut fresh, 62, &flows[i], 0);
            assert_eq!(
                (vs[j], fs[j].data().to_vec()),
                (want, bytes),
                "seed {seed} step {step}: frame {i}"
            );
        }
    }
    (dp.counters().cache_hits, dp.counters().cache_misses)
}

#[test]
fn compiled_flows_match_a_fresh_datapath_under_random_churn() {
    let (mut hits, mut misses) = (0, 0);
    for seed in 1..=4u64 {
        let (h, m) = pipeline_churn_case(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        hits += h;
        misses += m;
    }
    eprintln!("pipeline churn: {hits} hits, {misses} misses");
}

#[test]
fn pipeline_non_matching_changes_keep_compiled_flows() {
    let sw = switch_with(PIPELINE_BASE, &[1, 2, 3, 4, 59, 60]);
    let mut dp = sw.datapath(0);
    let f = udp4([192, 168, 0, 1], [10, 1, 2, 3], 1, 80);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[60]));
    let (h0, m0) = counts(&dp);
    // Same masks, never matching, on fields no action rewrites: the
    // compiled flow stays cached. (A change on nw_dst or dl_src, which
    // some rule rewrites, is checked without those fields and evicts
    // more than it must.)
    for r in [
        "table=1,priority=50,ip,nw_src=11.9.9.0/24,actions=output:4",
        "table=2,priority=50,udp,tp_dst=2,actions=output:4",
    ] {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[60]));
    }
    assert_eq!(counts(&dp), (h0 + 2, m0));
    // A rule matching the flow in table 1 wins at once.
    let r = "table=1,priority=50,ip,nw_dst=10.1.2.0/24,actions=output:3";
    sw.table.add(r.parse().unwrap(), 0).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    // A table-0 rewrite: table 1 then sees the new destination.
    let r = "table=0,priority=30,udp,tp_dst=80,actions=mod_nw_dst:11.9.9.9,goto_table:1";
    sw.table.add(r.parse().unwrap(), 0).unwrap();
    let (v, out) = send(&mut dp, 1, &f, 0);
    assert_eq!(v, ports(&[60]), "table 1's catch-all: no rule for 11.9.9.9");
    assert_eq!(out[30..34], [11, 9, 9, 9]);
}
