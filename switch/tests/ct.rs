//! The `ct` action and the ct match fields: rule syntax (OVS's text forms,
//! round trips, errors), and the stateful pipeline with the real tracker.

use switch::rule::RuleSpec;

fn rt(s: &str) -> String {
    let r: RuleSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
    let out = r.to_string();
    let back: RuleSpec = out.parse().unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(back, r, "{out}");
    out
}

#[test]
fn ct_rules_print_as_ovs_ofctl_and_parse_back() {
    for (input, want) in [
        (
            "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
            "priority=100,ct_state=-trk,ip,actions=ct(table=1)",
        ),
        (
            "table=1,ct_state=+trk+new,tcp,tp_dst=80,in_port=1,actions=ct(commit),output:2",
            "priority=32768,table=1,ct_state=+new+trk,tcp,in_port=1,tp_dst=80,actions=ct(commit),output:2",
        ),
        (
            "table=1,ct_state=+est+trk,actions=output:1",
            "priority=32768,table=1,ct_state=+est+trk,actions=output:1",
        ),
        (
            "ct_state=0x21/0x3f,ct_zone=5,ct_mark=0x1/0xff,ct_label=0x10,ip,actions=drop",
            "priority=32768,ct_state=+new-est-rel-rpl-inv+trk,ct_zone=5,ct_mark=0x1/0xff,ct_label=0x10,ip,actions=drop",
        ),
        (
            "ct_state=new|trk,actions=drop",
            "priority=32768,ct_state=new|trk,actions=drop",
        ),
        (
            "ct_state=+trk+est,ct_nw_src=10.0.0.0/8,ct_nw_dst=10.1.1.1,ct_nw_proto=6,ct_tp_src=0x100/0xff00,ct_tp_dst=80,actions=drop",
            "priority=32768,ct_state=+est+trk,ct_nw_src=10.0.0.0/8,ct_nw_dst=10.1.1.1,ct_nw_proto=6,ct_tp_src=0x100/0xff00,ct_tp_dst=80,actions=drop",
        ),
        (
            "ct_state=+rpl+trk,ct_ipv6_src=fd00::/64,actions=drop",
            "priority=32768,ct_state=+rpl+trk,ct_ipv6_src=fd00::/64,actions=drop",
        ),
        (
            "ip,actions=ct(commit,zone=7,nat(src=192.168.0.1-192.168.0.9:1024-2048,random),exec(set_field:0x5->ct_mark))",
            "priority=32768,ip,actions=ct(commit,zone=7,nat(src=192.168.0.1-192.168.0.9:1024-2048,random),exec(set_field:0x5->ct_mark))",
        ),
        (
            "table=2,ipv6,actions=ct(table=3,nat),ct_clear,output:1",
            "priority=32768,table=2,ipv6,actions=ct(table=3,nat),ct_clear,output:1",
        ),
    ] {
        assert_eq!(rt(input), want);
    }
}

#[test]
fn ct_rule_errors_are_clear() {
    for (s, want) in [
        ("actions=ct(table=1)", "needs ip or ipv6"),
        ("ct_state=+inv+trk,ip,actions=ct(commit)", "cannot commit"),
        (
            "ct_nw_src=10.0.0.1,actions=drop",
            "need a tracked connection",
        ),
        (
            "ct_state=-trk,ct_tp_dst=80,actions=drop",
            "need a tracked connection",
        ),
        ("ct_state=+trk+flying,actions=drop", "unknown ct_state flag"),
        ("ct_zone=1/1,actions=drop", "not maskable"),
        ("ct_mark=0x100000000,actions=drop", "out of range"),
        (
            "ct_state=+trk+est,ct_nw_src=1.1.1.1,ct_ipv6_src=::1,actions=drop",
            "conflicts",
        ),
        ("ip,actions=ct(force)", "requires \"commit\""),
        (
            "ip,actions=ct(exec(set_field:1->ct_mark))",
            "need \"commit\"",
        ),
        (
            "ip,actions=ct(commit,nat(src=1.1.1.1,dst=2.2.2.2))",
            "one of",
        ),
        (
            "ip,actions=ct(commit,nat(src=10.0.0.9-10.0.0.1))",
            "invalid nat range",
        ),
        (
            "ip,actions=ct(commit,exec(set_field:1->ip_dst))",
            "ct_mark or ct_label",
        ),
        (
            "ip,actions=write_actions(ct(commit))",
            "not allowed in write_actions",
        ),
        ("ip,actions=ct(alg=ftp)", "not supported"),
        ("ip,actions=ct(table=1", "unknown action"),
    ] {
        let e = s.parse::<RuleSpec>().unwrap_err();
        assert!(e.contains(want), "{s}: {e}");
    }
}

// ---------------------------------------------------------------------
// The stateful pipeline.

mod common;
use common::*;

use switch::frame::{Frame, VecFrame};
use switch::testutil::{arp_frame, MAC_B};
use switch::verdict::{DropReason, Verdict};

/// A SYN+ACK without a connection is invalid (OVS's `tcp_valid_new`: "a
/// syn+ack is not allowed to create a connection"): the frame recirculates into table 1 with
/// `+trk+inv`, its bytes untouched; frames without ct take the plain path
/// in the same burst; later bursts hit the recirculation cache.
#[test]
fn recirculation_carries_ct_state_into_the_next_table() {
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "priority=10,arp,actions=output:4",
        "table=1,ct_state=+trk+inv,actions=output:3",
        "table=1,ct_state=+trk-inv,actions=output:2",
    ]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    let arp = arp_frame(1, CLIENT, SERVER);
    let mut fs = vec![
        VecFrame::new(&arp),
        VecFrame::new(&stray),
        VecFrame::new(&arp),
        VecFrame::new(&stray),
    ];
    let mut vs = vec![Verdict::default(); 4];
    let mut copies = Vec::new();
    for burst in 0..3 {
        let hits = dp.counters().cache_hits;
        dp.process_burst_copies(1, &mut fs, &mut vs, &mut copies, 10 + burst);
        assert_eq!(vs, [ports(&[4]), ports(&[3]), ports(&[4]), ports(&[3])]);
        assert_eq!(fs[1].data(), &stray[..]);
        assert_eq!(fs[0].data(), &arp[..]);
        assert!(copies.is_empty());
        if burst > 0 {
            // Both passes of both ct frames and both ARPs: cached.
            assert_eq!(dp.counters().cache_hits - hits, 6, "burst {burst}");
        }
    }
    assert_eq!(packets(&sw, "ct_state=-trk"), 6);
    assert_eq!(packets(&sw, "+inv+trk"), 6);
    assert_eq!(packets(&sw, "-inv+trk"), 0);
    assert_eq!(packets(&sw, "arp"), 6);
}

/// OVS: after a `ct` without `table`, the ct fields are cleared for the
/// rest of the pass; `ct_clear` clears them too; otherwise a recirculated
/// pass keeps them through resubmits.
#[test]
fn ct_fields_after_ct_and_ct_clear_as_ovs() {
    let sw = ct_switch(&[
        "ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,ip,ct_state=+trk,in_port=1,actions=resubmit(,2)",
        "table=1,ip,ct_state=+trk,in_port=2,actions=ct_clear,resubmit(,2)",
        "table=1,ip,ct_state=+trk,in_port=3,actions=ct(zone=9),resubmit(,2)",
        "table=2,ct_state=+trk,actions=output:4",
        "table=2,ct_state=-trk,actions=output:1",
    ]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    assert_eq!(send_ct(&mut dp, 1, &stray, 0).0, ports(&[4]));
    assert_eq!(send_ct(&mut dp, 2, &stray, 0).0, ports(&[1]));
    assert_eq!(send_ct(&mut dp, 3, &stray, 0).0, ports(&[1]));
}

/// A rule that recirculates into its own table forever: the frame is
/// dropped after MAX_RECIRC_DEPTH recirculations, as OVS drops it.
#[test]
fn recirculation_depth_is_bounded() {
    let sw = ct_switch(&["ip,actions=ct(table=0)"]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    let (v, _, _) = send_ct(&mut dp, 1, &stray, 0);
    assert_eq!(v, Verdict::Drop(DropReason::Action));
    let depth = u64::from(switch::ct::recirc::MAX_RECIRC_DEPTH);
    assert_eq!(packets(&sw, "ct(table=0)"), depth + 1);
}

/// Outputs made before a recirculation leave with the bytes they had when
/// a later pass rewrites the frame; the actions after a `ct(table=N)` in
/// the same pass run on a copy.
#[test]
fn outputs_around_a_fork_keep_their_bytes() {
    let sw = ct_switch(&[
        "ip,ct_state=-trk,actions=output:2,ct(table=1),mod_dl_dst:02:00:00:00:00:33,output:3",
        "table=1,ct_state=+trk,actions=mod_dl_dst:02:00:00:00:00:44,output:4",
    ]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    let (v, bytes, copies) = send_ct(&mut dp, 1, &stray, 0);
    assert_eq!(v, ports(&[4]));
    assert_eq!(bytes[0..6], [2, 0, 0, 0, 0, 0x44]);
    assert_eq!(bytes[6..], stray[6..]);
    let mut got: Vec<(u64, [u8; 6])> = copies
        .iter()
        .map(|(m, b)| (*m, b[0..6].try_into().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, vec![(1 << 2, MAC_B), (1 << 3, [2, 0, 0, 0, 0, 0x33])]);
}

/// A rule change reaches recirculated passes at once: the recirculation
/// cache starts over with every table version.
#[test]
fn rule_changes_reach_cached_recirculations() {
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,ct_state=+trk+inv,actions=output:3",
    ]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    for now in 0..3 {
        assert_eq!(send_ct(&mut dp, 1, &stray, now).0, ports(&[3]));
    }
    sw.table
        .add(
            "table=1,priority=40000,ct_state=+trk,actions=output:2"
                .parse()
                .unwrap(),
            3,
        )
        .unwrap();
    assert_eq!(send_ct(&mut dp, 1, &stray, 4).0, ports(&[2]));
    sw.table.del(
        &switch::rule::parse_match("table=1,ct_state=+trk")
            .unwrap()
            .0,
        Some(40000),
        true,
    );
    assert_eq!(send_ct(&mut dp, 1, &stray, 5).0, ports(&[3]));
}

/// The frozen state carries the action set (OVS's `frozen_state`): the
/// recirculated pass ends by running it; the original, continuing after
/// the `ct` on a copy, runs it too (`xlate_actions` runs the action set
/// whenever the translation is not frozen, and a ct fork is not).
#[test]
fn action_set_survives_recirculation() {
    let sw = ct_switch(&[
        "ip,ct_state=-trk,actions=write_actions(output:3),goto_table:1",
        "table=1,ip,actions=ct(table=2)",
        "table=2,ct_state=+trk,actions=output:2",
    ]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    let (v, bytes, copies) = send_ct(&mut dp, 1, &stray, 0);
    assert_eq!(v, ports(&[2, 3]));
    assert_eq!(bytes, stray);
    assert_eq!(copies, vec![(1 << 3, stray.clone())]);
}

/// OVS freezes the field stack and a written `in_port` with the rest of
/// the pipeline state: the recirculated pass pops what the first pushed
/// and looks up (and outputs) with the written port.
#[test]
fn stack_and_written_in_port_survive_recirculation() {
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=load:0x2->NXM_NX_REG0[],push:NXM_NX_REG0[],load:0x3->NXM_OF_IN_PORT[],ct(table=1)",
        "table=1,priority=100,ct_state=+trk,in_port=3,actions=pop:NXM_NX_REG1[],resubmit(,2)",
        "table=1,priority=0,actions=output:2",
        "table=2,priority=100,reg1=0x2,actions=output:1,output:3",
        "table=2,priority=0,actions=output:4",
    ]);
    let mut dp = sw.datapath(0);
    let stray = tcp(CLIENT, SERVER, 40000, 80, SYN | ACK, 1000, 2000, b"");
    for burst in 0..2 {
        let mut fs = vec![VecFrame::new(&stray)];
        let mut vs = vec![Verdict::default()];
        let mut copies = Vec::new();
        dp.process_burst_copies(1, &mut fs, &mut vs, &mut copies, 10 + burst);
        // in_port 3 in table 1; reg1 = 2 from the stack; output:1 (the
        // real ingress port) goes, output:3 (the written one) does not.
        assert_eq!(vs, [ports(&[1])], "burst {burst}");
    }
}

/// The ct fields as `move`/`push` sources in a recirculated pass (OVN's
/// ECMP reply reads `ct_label`): the values the `ct(commit,exec(...))`
/// set, the zone, the state; the same flows run against OVS in
/// `tests/ovs_ovn_actions.rs` (case 18).
#[test]
fn ct_fields_as_move_and_push_sources() {
    let sw = ct_switch(&[
        "priority=100,udp,actions=ct(commit,zone=5,table=7,exec(set_field:0xab->ct_mark,set_field:0xa000064000002aabbccddee->ct_label))",
        "table=7,priority=100,ct_state=+trk,udp,actions=move:NXM_NX_CT_MARK[0..15]->NXM_OF_UDP_SRC[],move:NXM_NX_CT_ZONE[]->NXM_NX_REG1[0..15],move:NXM_NX_CT_LABEL[0..47]->NXM_OF_ETH_SRC[],push:NXM_NX_CT_STATE[],pop:NXM_NX_IP_TTL[],push:NXM_NX_CT_LABEL[],pop:NXM_NX_XXREG1[],move:NXM_NX_XXREG1[64..95]->NXM_OF_IP_DST[],resubmit(,8)",
        "table=8,priority=100,reg1=0x5,actions=output:3",
        "table=8,priority=90,actions=output:2",
    ]);
    assert!("actions=move:NXM_NX_REG0[]->NXM_NX_CT_MARK[]"
        .parse::<RuleSpec>()
        .is_err());
    let mut dp = sw.datapath(0);
    let f = switch::testutil::udp4([10, 0, 0, 5], [10, 0, 0, 9], 1000, 18);
    let mut want = switch::testutil::udp4([10, 0, 0, 5], [10, 0, 0, 100], 0xab, 18);
    want[6..12].copy_from_slice(&[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    want[22] = 0x21; // ct_state +new+trk
    switch::testutil::fix_ip_csum(&mut want);
    for now in 0..2 {
        let (v, out, _) = send_ct(&mut dp, 1, &f, now);
        assert_eq!(v, ports(&[3]), "pass {now}");
        assert_eq!(out[..34], want[..34], "pass {now}");
    }
}
