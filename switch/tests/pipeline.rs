//! The multi-table pipeline (OpenFlow 1.3 / OVS semantics): goto_table,
//! resubmit, metadata, action sets, table-miss, cache coherence, counters
//! of every traversed rule, and groups of the four types.

mod common;
use common::*;
use switch::frame::{Frame, VecFrame};
use switch::group::GroupSpec;
use switch::rule::{parse_filter, FlowFilter, RuleSpec};
use switch::switch::{Switch, SwitchConfig};
use switch::table::{AddOptions, FlowModError, RemovalReason};
use switch::testutil::*;
use switch::verdict::{DropReason, Verdict};

fn udp(dst: [u8; 4], sport: u16) -> Vec<u8> {
    udp4([10, 0, 0, 1], dst, sport, 53)
}

fn counters(sw: &Switch) -> Vec<(String, u64)> {
    sw.table
        .dump(0)
        .into_iter()
        .map(|r| (r.rule, r.packets))
        .collect()
}

fn packets_of(sw: &Switch, needle: &str) -> u64 {
    let d = sw.table.dump(0);
    let hits: Vec<_> = d.iter().filter(|r| r.rule.contains(needle)).collect();
    assert_eq!(hits.len(), 1, "{needle} in {d:#?}");
    hits[0].packets
}

#[test]
fn single_table_stays_on_the_plain_path() {
    let sw = switch_with(
        &[
            "priority=10,ip,actions=output:2",
            "priority=0,actions=NORMAL",
        ],
        &[1, 2],
    );
    assert!(sw.table.snapshot().pipeline.is_none());
    let sw = switch_with(&["in_port=1,actions=output:2"], &[1, 2]);
    assert!(sw.table.snapshot().port_only.is_some());
    let sw = switch_with(&["table=1,actions=output:2"], &[1, 2]);
    assert!(sw.table.snapshot().pipeline.is_some());
}

#[test]
fn goto_table_and_counters_of_every_rule() {
    let sw = switch_with(
        &[
            "priority=10,in_port=1,actions=goto_table:1",
            "table=1,priority=10,ip,nw_dst=10.0.0.2,actions=goto_table:2",
            "table=1,priority=0,actions=output:3",
            "table=2,priority=5,udp,actions=output:2",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1000);
    for _ in 0..3 {
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    }
    assert_eq!(send(&mut dp, 1, &udp([10, 0, 0, 9], 1), 0).0, ports(&[3]));
    // Table 0 has no rule for port 2: table-miss drop.
    assert_eq!(
        send(&mut dp, 2, &f, 0).0,
        Verdict::Drop(DropReason::NoMatch)
    );
    assert_eq!(packets_of(&sw, "in_port=1"), 4);
    assert_eq!(packets_of(&sw, "nw_dst=10.0.0.2"), 3);
    assert_eq!(packets_of(&sw, "table=2"), 3);
    assert_eq!(packets_of(&sw, "output:3"), 1);
    let bytes: u64 = sw
        .table
        .dump(0)
        .iter()
        .filter(|r| r.table == 2)
        .map(|r| r.bytes)
        .sum();
    assert_eq!(bytes, 3 * f.len() as u64);
    // One cache entry per flow: the repeated frames hit.
    assert!(dp.counters().cache_hits >= 2, "{:?}", dp.counters());
    let ts = sw.table.table_stats();
    assert_eq!(ts.len(), 3);
    let t: Vec<_> = ts
        .iter()
        .map(|s| (s.table_id, s.active_count, s.lookup_count, s.matched_count))
        .collect();
    assert_eq!(t, vec![(0, 1, 5, 4), (1, 2, 4, 4), (2, 1, 3, 3)]);
}

#[test]
fn goto_must_go_forward_and_tables_are_bounded() {
    assert!("table=3,actions=goto_table:3"
        .parse::<RuleSpec>()
        .unwrap_err()
        .contains("later table"));
    assert!("table=254,actions=drop".parse::<RuleSpec>().is_err());
    assert!("actions=goto_table:254".parse::<RuleSpec>().is_err());
    let mut r: RuleSpec = "table=3,actions=output:1".parse().unwrap();
    r.instructions.goto_table = Some(2);
    let sw = switch_with(&[], &[1]);
    assert_eq!(
        sw.table.add(r, 0),
        Err(FlowModError::BadGotoTable { table: 3, goto: 2 })
    );
}

/// Table-miss as OVS: the pipeline ends at the table without a matching
/// rule; outputs already made stand and the action set still runs (OVS
/// 3.1: "No match. drop / Executing action set").
#[test]
fn table_miss_ends_the_pipeline_and_runs_the_action_set() {
    let sw = switch_with(
        &[
            "priority=10,in_port=1,actions=output:3,goto_table:1",
            "priority=10,in_port=2,actions=write_actions(output:4),goto_table:1",
            "table=1,arp,actions=output:4",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    assert_eq!(send(&mut dp, 2, &f, 0).0, ports(&[4]));
    let arp = arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]);
    assert_eq!(send(&mut dp, 2, &arp, 0).0, ports(&[4]));
    // Nothing at all: dropped as a miss.
    assert_eq!(
        send(&mut dp, 3, &f, 0).0,
        Verdict::Drop(DropReason::NoMatch)
    );
}

#[test]
fn resubmit_runs_the_other_table_then_continues() {
    let sw = switch_with(
        &[
            "in_port=1,actions=mod_vlan_vid:5,resubmit(,1),resubmit(,2),output:3",
            "table=1,dl_vlan=5,actions=output:2",
            "table=2,dl_vlan=6,actions=output:4",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    let (v, out) = send(&mut dp, 1, &f, 0);
    // Table 1 sees the rewritten VLAN; table 2 misses and resubmit goes on.
    assert_eq!(v, ports(&[2, 3]));
    assert_eq!(out, with_vlan(&f, 0x8100, 5));
    assert_eq!(packets_of(&sw, "table=1"), 1);
    assert_eq!(packets_of(&sw, "table=2"), 0);
    let ts = sw.table.table_stats();
    assert_eq!(
        (ts[2].table_id, ts[2].lookup_count, ts[2].matched_count),
        (2, 1, 0)
    );
}

/// Resubmits into a later table do not deepen the recursion (OVS), so a
/// loop entered through one still gets 64 levels.
#[test]
fn resubmit_depth_counts_only_backward_resubmits() {
    let sw = switch_with(
        &[
            "actions=resubmit(,6)",
            "table=6,actions=resubmit(,7),output:3",
            "table=7,actions=resubmit(,7)",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let (v, _) = send(&mut dp, 1, &udp([10, 0, 0, 2], 1), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Action));
    assert_eq!(packets_of(&sw, "table=7"), 65);
}

#[test]
fn resubmit_depth_is_bounded() {
    let sw = switch_with(&["actions=resubmit(,0)"], &[1, 2]);
    let mut dp = sw.datapath(0);
    let (v, _) = send(&mut dp, 1, &udp([10, 0, 0, 2], 1), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Action));
    // 1 + 64 nested visits.
    assert_eq!(packets_of(&sw, "resubmit"), 65);
}

#[test]
fn metadata_carries_between_tables() {
    let sw = switch_with(
        &[
            "in_port=1,actions=write_metadata:0x105/0xff,goto_table:1",
            "in_port=2,actions=write_metadata:0x6,goto_table:1",
            "table=1,priority=10,metadata=0x5/0xff,actions=output:3",
            "table=1,priority=10,metadata=0x6,actions=output:4",
            "table=1,priority=0,actions=drop",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    assert_eq!(send(&mut dp, 2, &f, 0).0, ports(&[4]));
    // Metadata starts at 0 for every frame.
    let sw = switch_with(
        &[
            "metadata=0,actions=goto_table:1",
            "table=1,metadata=0,actions=output:2",
        ],
        &[1, 2],
    );
    let mut dp = sw.datapath(0);
    for _ in 0..2 {
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    }
}

#[test]
fn action_set_runs_at_the_end_in_spec_order() {
    let sw = switch_with(
        &[
            // Set-field is written before push_vlan but runs after it: one tag.
            "in_port=1,actions=write_actions(mod_vlan_vid:9,output:4),goto_table:1",
            "table=1,actions=write_actions(push_vlan:0x8100,output:2),output:3",
            // clear_actions empties the set.
            "in_port=2,actions=write_actions(output:4),goto_table:2",
            "table=2,actions=clear_actions,write_actions(output:3)",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    let (v, out) = send(&mut dp, 1, &f, 0);
    // The apply-action output:3 and the set's output:2 (the later write
    // replaced output:4) both carry the final bytes (see README limits).
    assert_eq!(v, ports(&[2, 3]));
    assert_eq!(out, with_vlan(&f, 0x8100, 9));
    assert_eq!(send(&mut dp, 2, &f, 0).0, ports(&[3]));
}

#[test]
fn rule_changes_reach_cached_multi_table_flows() {
    let sw = switch_with(
        &[
            "actions=goto_table:1",
            "table=1,ip,actions=goto_table:2",
            "table=2,priority=10,udp,actions=output:2",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    for _ in 0..3 {
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    }
    let hits = dp.counters().cache_hits;
    assert!(hits >= 2);
    sw.table
        .add(
            "table=2,priority=20,udp,actions=output:4".parse().unwrap(),
            0,
        )
        .unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[4]));
    let n = sw
        .table
        .delete(&parse_filter("table=2,priority=20,udp", true).unwrap(), 0)
        .len();
    assert_eq!(n, 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    // Modify keeps the counters and changes the actions.
    sw.table
        .modify(
            &parse_filter("table=2", false).unwrap(),
            vec!["output:3".parse().unwrap()],
            Default::default(),
            false,
        )
        .unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    assert_eq!(packets_of(&sw, "table=2,"), 5);
}

#[test]
fn openflow_delete_and_modify_filters() {
    let sw = switch_with(
        &[
            "priority=10,cookie=0x11,ip,actions=output:2",
            "priority=20,cookie=0x12,ip,nw_dst=10.0.0.0/8,actions=output:3",
            "table=1,priority=10,cookie=0x21,ip,actions=output:2",
            "table=1,priority=10,cookie=0x22,arp,actions=output:4",
        ],
        &[1, 2, 3, 4],
    );
    // dump filtered by cookie mask across tables
    let f = FlowFilter {
        cookie: 0x01,
        cookie_mask: 0x0f,
        ..FlowFilter::all()
    };
    let d = sw.table.dump_filtered(&f, 0);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|r| r.cookie & 0xf == 1));
    assert!(d[1].rule.contains("table=1,cookie=0x21"), "{d:?}");
    // out_port
    let f = parse_filter("out_port=2", false).unwrap();
    assert_eq!(sw.table.dump_filtered(&f, 0).len(), 2);
    // loose: ip matches the nw_dst rule too, in table 0 only
    let f = parse_filter("table=0,ip", false).unwrap();
    assert_eq!(sw.table.dump_filtered(&f, 0).len(), 2);
    // strict needs the exact match and priority
    let mut f = parse_filter("table=0,priority=20,ip", true).unwrap();
    assert_eq!(sw.table.dump_filtered(&f, 0).len(), 0);
    f.priority = Some(10);
    assert_eq!(sw.table.dump_filtered(&f, 0).len(), 1);
    // modify strict: only that rule
    assert_eq!(
        sw.table
            .modify(
                &f,
                vec!["output:4".parse().unwrap()],
                Default::default(),
                false
            )
            .unwrap(),
        1
    );
    assert!(
        sw.table.dump(0)[0].rule.ends_with("ip,actions=output:4")
            || sw.table.dump(0)[1].rule.ends_with("ip,actions=output:4")
    );
    // modify with no match changes nothing (OpenFlow 1.3)
    let none = parse_filter("cookie=0x99/0xff", false).unwrap();
    assert_eq!(
        sw.table
            .modify(
                &none,
                vec!["output:1".parse().unwrap()],
                Default::default(),
                false
            )
            .unwrap(),
        0
    );
    // delete by cookie in all tables, removed rules reported
    let gone = sw
        .table
        .delete(&parse_filter("cookie=0x20/0xf0", false).unwrap(), 0);
    assert_eq!(gone.len(), 2);
    assert!(gone
        .iter()
        .all(|r| r.table == 1 && r.removed == Some(RemovalReason::Delete)));
    assert_eq!(sw.table.dump(0).len(), 2);
    // check_overlap: same priority, overlapping matches
    let opts = AddOptions {
        check_overlap: true,
        ..Default::default()
    };
    assert_eq!(
        sw.table
            .add_with("priority=10,udp,actions=output:1".parse().unwrap(), 0, opts),
        Err(FlowModError::Overlap)
    );
    assert!(sw
        .table
        .add_with("priority=11,udp,actions=output:1".parse().unwrap(), 0, opts)
        .is_ok());
    assert!(sw
        .table
        .add_with("priority=10,arp,actions=output:1".parse().unwrap(), 0, opts)
        .is_ok());
}

#[test]
fn modify_keeps_counters_and_add_replaces() {
    let sw = switch_with(&["priority=5,ip,actions=output:2"], &[1, 2, 3]);
    let mut dp = sw.datapath(0);
    send(&mut dp, 1, &udp([10, 0, 0, 2], 1), 0);
    let id = sw.table.dump(0)[0].id;
    sw.table
        .modify(
            &FlowFilter::all(),
            vec!["output:3".parse().unwrap()],
            Default::default(),
            false,
        )
        .unwrap();
    let d = sw.table.dump(0);
    assert_eq!((d[0].id, d[0].packets), (id, 1));
    assert_eq!(send(&mut dp, 1, &udp([10, 0, 0, 2], 1), 0).0, ports(&[3]));
    // add of an identical rule keeping counters (OpenFlow without RESET_COUNTS)
    let keep = AddOptions {
        keep_counters: true,
        ..Default::default()
    };
    sw.table
        .add_with("priority=5,ip,actions=output:2".parse().unwrap(), 0, keep)
        .unwrap();
    assert_eq!(sw.table.dump(0)[0].packets, 2);
    sw.table
        .add("priority=5,ip,actions=output:2".parse().unwrap(), 0)
        .unwrap();
    assert_eq!(sw.table.dump(0)[0].packets, 0);
}

fn group(s: &str) -> GroupSpec {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn group_all_and_indirect_with_stats() {
    let sw = switch_with(&[], &[1, 2, 3, 4]);
    sw.group_add(group("group_id=1,type=all,bucket=output:2,bucket=output:3"))
        .unwrap();
    sw.group_add(group(
        "group_id=2,type=indirect,bucket=actions=mod_vlan_vid:7,output:4",
    ))
    .unwrap();
    sw.table
        .add("in_port=1,actions=group:1".parse().unwrap(), 0)
        .unwrap();
    sw.table
        .add("in_port=2,actions=group:2".parse().unwrap(), 0)
        .unwrap();
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    for _ in 0..2 {
        assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2, 3]));
    }
    let (v, out) = send(&mut dp, 2, &f, 0);
    assert_eq!(v, ports(&[4]));
    assert_eq!(out, with_vlan(&f, 0x8100, 7));
    let st = sw.group_stats();
    assert_eq!((st[0].id, st[0].packets, st[0].ref_count), (1, 2, 1));
    assert_eq!(st[0].buckets, vec![(2, 2 * f.len() as u64); 2]);
    assert_eq!((st[1].packets, st[1].buckets[0].0), (1, 1));
    assert_eq!(
        sw.group_desc()[1].to_string(),
        "group_id=2,type=indirect,bucket=actions=mod_vlan_vid:7,output:4"
    );
}

#[test]
fn rules_need_existing_groups_and_group_delete_removes_them() {
    let sw = switch_with(&[], &[1, 2, 3]);
    assert_eq!(
        sw.table.add("actions=group:5".parse().unwrap(), 0),
        Err(FlowModError::UnknownGroup(5))
    );
    assert_eq!(
        sw.table
            .add("actions=write_actions(group:5)".parse().unwrap(), 0),
        Err(FlowModError::UnknownGroup(5))
    );
    sw.group_add(group("group_id=5,type=all,bucket=output:2"))
        .unwrap();
    assert_eq!(
        sw.group_add(group("group_id=5,type=all,bucket=output:3")),
        Err(FlowModError::GroupExists(5))
    );
    sw.table
        .add("priority=9,actions=group:5".parse().unwrap(), 0)
        .unwrap();
    sw.table
        .add("priority=8,actions=output:3".parse().unwrap(), 0)
        .unwrap();
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    // group_mod reaches cached flows
    sw.group_mod(group("group_id=5,type=all,bucket=output:3,bucket=output:2"))
        .unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2, 3]));
    let gone = sw.group_del(Some(5));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].removed, Some(RemovalReason::GroupDelete));
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    assert!(sw.group_desc().is_empty());
    assert!("group_id=6,type=indirect,bucket=output:1,bucket=output:2"
        .parse::<GroupSpec>()
        .is_err());
}

#[test]
fn fast_failover_follows_port_liveness() {
    let sw = switch_with(&[], &[1, 2, 3]);
    sw.group_add(group(
        "group_id=1,type=ff,bucket=watch_port:2,actions=output:2,bucket=watch_port:3,actions=output:3",
    ))
    .unwrap();
    sw.table.add("actions=group:1".parse().unwrap(), 0).unwrap();
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    sw.port_del(2).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
    sw.port_del(3).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, Verdict::Drop(DropReason::Action));
    sw.port_add(2).unwrap();
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    let st = sw.group_stats();
    assert_eq!(st[0].buckets[0].0, 3);
    assert_eq!(st[0].buckets[1].0, 1);
    // As OVS: no live bucket, nothing counted on the group.
    assert_eq!(st[0].packets, 4);
}

#[test]
fn select_spreads_five_tuples_by_weight() {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 1 << 14,
        ..Default::default()
    });
    for p in [1, 2, 3] {
        sw.port_add(p).unwrap();
    }
    sw.group_add(group(
        "group_id=7,type=select,bucket=weight:1,actions=output:2,bucket=weight:3,actions=output:3",
    ))
    .unwrap();
    sw.table
        .add("ip,actions=group:7".parse().unwrap(), 0)
        .unwrap();
    let mut dp = sw.datapath(0);
    let (mut to2, mut to3) = (0, 0);
    for sport in 0..4000u16 {
        let f = udp4([10, 0, (sport >> 8) as u8, 1], [10, 0, 0, 2], sport, 53);
        let v1 = send(&mut dp, 1, &f, 0).0;
        // The same 5-tuple always takes the same bucket (cached or not).
        assert_eq!(send(&mut dp, 1, &f, 0).0, v1);
        match v1 {
            v if v == ports(&[2]) => to2 += 1,
            v if v == ports(&[3]) => to3 += 1,
            v => panic!("{v:?}"),
        }
    }
    let share = to3 as f64 / (to2 + to3) as f64;
    assert!((0.70..0.80).contains(&share), "{to2} / {to3}");
    let st = sw.group_stats();
    assert_eq!(st[0].packets, 8000);
    assert_eq!(st[0].buckets[0].0 + st[0].buckets[1].0, 8000);
}

#[test]
fn pipeline_syntax_round_trips() {
    for s in [
        "priority=100,table=3,cookie=0xabc,send_flow_rem,ip,metadata=0x5/0xff,actions=resubmit(,4),group:2,clear_actions,write_actions(push_vlan:0x8100,output:2),write_metadata:0x1/0xf,goto_table:9",
        "priority=1,actions=goto_table:1",
        "priority=1,table=1,metadata=0x7,actions=write_actions()",
    ] {
        let r: RuleSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(r.to_string(), s);
        assert_eq!(r.to_string().parse::<RuleSpec>().unwrap(), r);
    }
    let r: RuleSpec = "cookie=0x5,table=2,actions=output:1".parse().unwrap();
    assert_eq!((r.table, r.cookie), (2, 5));
    assert!("cookie=0x5/0xf,actions=drop".parse::<RuleSpec>().is_err());
    assert!("actions=resubmit(1,2)".parse::<RuleSpec>().is_err());
    assert!("actions=write_actions(drop)".parse::<RuleSpec>().is_err());
    let _ = counters;
}

#[test]
fn many_frames_in_one_burst() {
    let sw = switch_with(
        &[
            "actions=goto_table:1",
            "table=1,priority=10,udp,tp_src=1,actions=output:2",
            "table=1,priority=5,udp,actions=output:3",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let mut fs: Vec<VecFrame> = (0..40u16)
        .map(|i| VecFrame::new(&udp([10, 0, 0, 2], i % 3)))
        .collect();
    let mut vs = vec![Verdict::default(); fs.len()];
    dp.process_burst(1, &mut fs, &mut vs, 0);
    for (i, v) in vs.iter().enumerate() {
        let want = if i % 3 == 1 { ports(&[2]) } else { ports(&[3]) };
        assert_eq!(*v, want, "frame {i}");
    }
    assert_eq!(fs[0].data().len(), udp([10, 0, 0, 2], 0).len());
    assert_eq!(packets_of(&sw, "actions=goto_table:1"), 40);
}

type Copies = Vec<(Vec<u8>, Verdict)>;

/// Send one frame with the copy-making entry point: (main verdict, main
/// bytes, copies as (bytes, ports)).
fn send_copies(
    dp: &mut switch::datapath::Datapath,
    in_port: u16,
    frame: &[u8],
) -> (Verdict, Vec<u8>, Copies) {
    let mut fs = [VecFrame::new(frame)];
    let mut vs = [Verdict::default()];
    let mut copies = Vec::new();
    dp.process_burst_copies(in_port, &mut fs, &mut vs, &mut copies, 0);
    let cs = copies
        .into_iter()
        .map(|(f, m)| (f.data().to_vec(), Verdict::Output(m)))
        .collect();
    (vs[0], fs[0].data().to_vec(), cs)
}

#[test]
fn modifications_after_an_output_only_affect_later_outputs() {
    let sw = switch_with(
        &["in_port=1,actions=output:2,mod_vlan_vid:5,output:3,dec_ttl,output:4"],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    let tagged = with_vlan(&f, 0x8100, 5);
    let mut tagged_ttl = tagged.clone();
    tagged_ttl[4 + 22] -= 1;
    fix_ip_csum(&mut tagged_ttl[4..]);
    for _ in 0..2 {
        let (v, out, copies) = send_copies(&mut dp, 1, &f);
        assert_eq!(v, ports(&[4]));
        assert_eq!(out, tagged_ttl);
        assert_eq!(
            copies,
            vec![(f.clone(), ports(&[2])), (tagged.clone(), ports(&[3]))]
        );
    }
    assert_eq!(packets_of(&sw, "in_port=1"), 2);
    // The plain entry point sends the final bytes everywhere.
    let (v, out) = send(&mut dp, 1, &f, 0);
    assert_eq!((v, out), (ports(&[2, 3, 4]), tagged_ttl));
    // Trailing rewrites nobody sees cost nothing.
    let sw = switch_with(&["actions=output:2,dec_ttl"], &[1, 2]);
    let mut dp = sw.datapath(0);
    let (v, out, copies) = send_copies(&mut dp, 1, &f);
    assert_eq!((v, out, copies.len()), (ports(&[2]), f.clone(), 0));
}

#[test]
fn outputs_before_a_later_table_rewrites_keep_their_bytes() {
    let sw = switch_with(
        &[
            "actions=output:2,goto_table:1",
            "table=1,actions=mod_dl_dst:02:00:00:00:00:99,output:3",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    let (v, out, copies) = send_copies(&mut dp, 1, &f);
    assert_eq!(v, ports(&[3]));
    assert_eq!(out[0..6], [2, 0, 0, 0, 0, 0x99]);
    assert_eq!(copies, vec![(f.clone(), ports(&[2]))]);
}

#[test]
fn group_buckets_rewrite_their_own_copy() {
    let sw = switch_with(&[], &[1, 2, 3, 4]);
    sw.group_add(group(
        "group_id=1,type=all,bucket=actions=mod_vlan_vid:5,output:2,bucket=actions=output:3",
    ))
    .unwrap();
    sw.table
        .add("actions=group:1,output:4".parse().unwrap(), 0)
        .unwrap();
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    let (v, out, copies) = send_copies(&mut dp, 1, &f);
    assert_eq!(v, ports(&[3, 4]));
    assert_eq!(out, f);
    assert_eq!(copies, vec![(with_vlan(&f, 0x8100, 5), ports(&[2]))]);
    let st = sw.group_stats();
    assert_eq!(st[0].buckets[0].0, 1);
    assert_eq!(st[0].buckets[1].0, 1);
}

#[test]
fn runs_of_one_flow_count_every_frame() {
    let sw = switch_with(
        &["actions=goto_table:1", "table=1,actions=FLOOD"],
        &[1, 2, 3],
    );
    sw.group_add(group("group_id=1,type=all,bucket=output:2"))
        .unwrap();
    sw.table
        .add(
            "table=1,priority=40000,udp,actions=group:1"
                .parse()
                .unwrap(),
            0,
        )
        .unwrap();
    let mut dp = sw.datapath(0);
    for f in [arp_frame(1, [1; 4], [2; 4]), udp([10, 0, 0, 2], 1)] {
        let mut fs: Vec<VecFrame> = (0..32).map(|_| VecFrame::new(&f)).collect();
        let mut vs = vec![Verdict::default(); 32];
        dp.process_burst(1, &mut fs, &mut vs, 0);
        assert!(vs.iter().all(|v| *v == vs[0]));
    }
    let c = *dp.counters();
    assert_eq!(c.flooded, 32);
    assert_eq!(c.tx_packets, 32 * 2 + 32);
    assert_eq!(packets_of(&sw, "actions=goto_table:1"), 64);
    assert_eq!(packets_of(&sw, "FLOOD"), 32);
    assert_eq!(sw.group_stats()[0].buckets[0].0, 32);
}

#[test]
fn fragments_follow_the_frag_mode() {
    use switch::table::FragMode;
    let mut first = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
    first[20] = 0x20; // MF, offset 0
    fix_ip_csum(&mut first);
    let mut later = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
    later[21] = 0x10;
    fix_ip_csum(&mut later);
    let whole = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
    for multi in [false, true] {
        let extra: &[&str] = if multi {
            &["table=1,actions=drop"]
        } else {
            &[]
        };
        let mut rules = vec![
            "priority=10,udp,tp_dst=53,actions=output:2",
            "priority=5,udp,tp_dst=0,actions=output:3",
            "priority=1,actions=output:4",
        ];
        rules.extend_from_slice(extra);
        let sw = switch_with(&rules, &[1, 2, 3, 4]);
        assert_eq!(sw.table.snapshot().pipeline.is_some(), multi);
        let mut dp = sw.datapath(0);
        // OVS's default (normal): no L4 ports in any fragment.
        assert_eq!(send(&mut dp, 1, &whole, 0).0, ports(&[2]));
        assert_eq!(send(&mut dp, 1, &first, 0).0, ports(&[3]));
        assert_eq!(send(&mut dp, 1, &later, 0).0, ports(&[3]));
        sw.table.set_frag_mode(FragMode::NxMatch);
        assert_eq!(send(&mut dp, 1, &first, 0).0, ports(&[2]));
        assert_eq!(send(&mut dp, 1, &later, 0).0, ports(&[3]));
        sw.table.set_frag_mode(FragMode::Drop);
        assert!(matches!(send(&mut dp, 1, &first, 0).0, Verdict::Drop(_)));
        assert!(matches!(send(&mut dp, 1, &later, 0).0, Verdict::Drop(_)));
        assert_eq!(send(&mut dp, 1, &whole, 0).0, ports(&[2]));
    }
    // Port-only tables are not parsed, so drop mode turns that path off.
    let sw = switch_with(&["actions=output:2"], &[1, 2]);
    assert!(sw.table.snapshot().port_only.is_some());
    sw.table.set_frag_mode(FragMode::Drop);
    assert!(sw.table.snapshot().port_only.is_none());
    let mut dp = sw.datapath(0);
    assert!(matches!(send(&mut dp, 1, &later, 0).0, Verdict::Drop(_)));
    assert_eq!(send(&mut dp, 1, &whole, 0).0, ports(&[2]));
}

#[test]
fn resubmit_explosions_are_bounded_and_drop() {
    // Two resubmits per level: 2^64 visits without a total budget.
    let sw = switch_with(&["actions=output:2,resubmit(,0),resubmit(,0)"], &[1, 2]);
    let mut dp = sw.datapath(0);
    let (v, _) = send(&mut dp, 1, &udp([10, 0, 0, 2], 1), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Action));
}

#[test]
fn chained_groups() {
    let sw = switch_with(&[], &[1, 2, 3, 4]);
    assert_eq!(
        sw.group_add(group("group_id=5,type=all,bucket=group:2")),
        Err(FlowModError::UnknownGroup(2))
    );
    sw.group_add(group(
        "group_id=2,type=all,bucket=output:2,bucket=actions=mod_vlan_vid:5,output:3",
    ))
    .unwrap();
    sw.group_add(group(
        "group_id=5,type=all,bucket=group:2,bucket=actions=set_ip_dscp:46,output:4",
    ))
    .unwrap();
    // A chain back to itself is refused (OFPGMFC_LOOP).
    assert!(matches!(
        sw.group_mod(group("group_id=2,type=all,bucket=group:5")),
        Err(FlowModError::BadGroup(_))
    ));
    sw.table.add("actions=group:5".parse().unwrap(), 0).unwrap();
    let mut dp = sw.datapath(0);
    let f = udp([10, 0, 0, 2], 1);
    let (v, out, copies) = send_copies(&mut dp, 1, &f);
    let mut all: Vec<(Vec<u8>, Verdict)> = copies;
    all.push((out, v));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut dscp = f.clone();
    set_tos(&mut dscp, 46 << 2);
    let mut want = vec![
        (f.clone(), ports(&[2])),
        (with_vlan(&f, 0x8100, 5), ports(&[3])),
        (dscp, ports(&[4])),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all, want);
    let st = sw.group_stats();
    assert_eq!((st[0].id, st[0].packets), (2, 1));
    assert_eq!((st[1].id, st[1].packets), (5, 1));
    // Deleting the chained group leaves group 5's bucket pointing nowhere.
    sw.group_del(Some(2));
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[4]));
}
