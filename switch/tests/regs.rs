//! Registers (`reg0..15`, `xreg0..7`, `metadata` as a load/move target):
//! matches with masks, `load`, `set_field`, `move`, zero at entry, kept
//! across resubmit, goto_table and the `ct(table=N)` recirculation, and
//! `ct(zone=NXM_NX_REG0[0..15])` (the zone read from a register) with the
//! real tracker. Every verdict and the frames' bytes are checked.

mod common;
use common::*;

use switch::verdict::{DropReason, Verdict};

const MISS: Verdict = Verdict::Drop(DropReason::NoMatch);

fn udp_frame(dst_port: u16) -> Vec<u8> {
    switch::testutil::udp4(CLIENT, SERVER, 1000, dst_port)
}

#[test]
fn syntax_round_trips_as_ovs_prints_it() {
    for r in [
        "reg0=0x5/0xff,actions=output:1",
        "reg1=0,reg15=0xffffffff,actions=output:1",
        "ip,reg3=0x10/0xf0,actions=load:0x7->NXM_NX_REG0[0..15],output:2",
        "actions=set_field:0x5->reg0,set_field:0x1->xreg7,set_field:0x2->metadata,output:1",
        "actions=move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31],move:OXM_OF_PKT_REG1[]->OXM_OF_METADATA[],output:1",
        "actions=load:0->NXM_NX_REG2[5],load:0x3->OXM_OF_METADATA[8..9],output:1",
        "ip,actions=ct(table=1,zone=NXM_NX_REG0[0..15])",
        "ip,actions=ct(commit,zone=NXM_NX_REG13[16..31])",
    ] {
        let spec: switch::rule::RuleSpec = r.parse().unwrap_or_else(|e| panic!("{r}: {e}"));
        let text = spec.to_string();
        assert!(text.ends_with(r.split_once("actions=").unwrap().1), "{r} -> {text}");
        let back: switch::rule::RuleSpec = text.parse().unwrap();
        assert_eq!(back, spec, "{r}");
    }
    // xreg matches are the two registers they overlay (as OVS prints them).
    let spec: switch::rule::RuleSpec = "xreg1=0x100000002/0xffffffff000000ff,actions=drop"
        .parse()
        .unwrap();
    assert!(
        spec.to_string().contains("reg2=0x1,reg3=0x2/0xff"),
        "{spec}"
    );
    for bad in [
        "reg16=1,actions=drop",
        "reg0=0x100000000,actions=drop",
        "reg0=1,reg0=2,actions=drop",
        "actions=load:0x10000->NXM_NX_REG0[0..15]",
        "actions=load:1->NXM_NX_REG0[0..32]",
        "actions=move:NXM_NX_REG0[0..15]->NXM_NX_REG1[0..7]",
        "actions=move:NXM_NX_REG0[]->NXM_NX_CT_MARK[]",
        "ip,actions=ct(zone=NXM_NX_REG0[0..7])",
        "actions=set_field:0x1ffffffff->reg0",
    ] {
        assert!(bad.parse::<switch::rule::RuleSpec>().is_err(), "{bad}");
    }
}

#[test]
fn loads_and_masked_matches_steer_across_tables() {
    let sw = switch_with(
        &[
            "table=0,udp,tp_dst=53,actions=load:0x7->NXM_NX_REG0[0..15],goto_table:1",
            "table=0,udp,tp_dst=54,actions=set_field:0x80007->reg0,goto_table:1",
            "table=0,udp,tp_dst=55,actions=goto_table:1",
            // Masked: only the low 16 bits matter.
            "table=1,priority=10,reg0=0x7/0xffff,actions=output:2",
            // Registers start at 0.
            "table=1,priority=5,reg0=0,actions=output:3",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    for (port, want) in [(53, &[2]), (54, &[2]), (55, &[3])] {
        let f = udp_frame(port);
        let (v, bytes) = send(&mut dp, 1, &f, 0);
        assert_eq!(v, ports(want), "tp_dst={port}");
        assert_eq!(bytes, f);
        // Cached: the same again.
        assert_eq!(
            send(&mut dp, 1, &f, 1).0,
            ports(want),
            "tp_dst={port}, cached"
        );
    }
    assert_eq!(packets(&sw, "reg0=0x7/0xffff"), 4);
    assert_eq!(packets(&sw, "reg0=0,"), 2);
}

#[test]
fn move_and_resubmit_carry_registers() {
    let sw = switch_with(
        &[
            "table=0,udp,actions=load:0xabcd->NXM_NX_REG0[0..15],move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31],resubmit(,1),resubmit(,2)",
            "table=1,reg1=0xabcd0000,actions=load:0x1->OXM_OF_PKT_REG2[63]",
            // xreg2 bit 63 = reg4 bit 31.
            "table=2,reg4=0x80000000,reg1=0xabcd0000/0xffff0000,actions=output:4",
            "table=2,priority=1,actions=output:3",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = udp_frame(9);
    assert_eq!(send(&mut dp, 1, &f, 0), (ports(&[4]), f.clone()));
    // A move into metadata, matched by a later table.
    let sw = switch_with(
        &[
            "table=0,udp,actions=set_field:0x1234->reg5,move:NXM_NX_REG5[0..7]->OXM_OF_METADATA[8..15],goto_table:1",
            "table=1,metadata=0x3400/0xff00,actions=output:2",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
}

#[test]
fn registers_are_zero_for_every_frame() {
    // A flow that loads reg0 must not leak it to the next frame of
    // another flow (registers are per frame, not per worker).
    let sw = switch_with(
        &[
            "table=0,udp,tp_dst=1,actions=load:0x1->NXM_NX_REG0[],goto_table:1",
            "table=0,udp,tp_dst=2,actions=goto_table:1",
            "table=1,reg0=0x1,actions=output:2",
            "table=1,reg0=0,actions=output:3",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    for _ in 0..3 {
        assert_eq!(send(&mut dp, 1, &udp_frame(1), 0).0, ports(&[2]));
        assert_eq!(send(&mut dp, 1, &udp_frame(2), 0).0, ports(&[3]));
    }
}

/// OVN's ACL pattern: table 0 loads the zone into reg0 and sends the frame
/// through `ct(zone=NXM_NX_REG0[0..15],table=1)`; table 1 matches
/// `reg0` (kept across the recirculation) and the ct state.
fn ovn_acl() -> std::sync::Arc<switch::switch::Switch> {
    ct_switch(&[
        "table=0,priority=100,ip,in_port=1,actions=load:0x7->NXM_NX_REG0[0..15],load:0x2->NXM_NX_REG1[],ct(zone=NXM_NX_REG0[0..15],table=1)",
        "table=0,priority=100,ip,in_port=2,actions=load:0x7->NXM_NX_REG0[0..15],load:0x1->NXM_NX_REG1[],ct(zone=NXM_NX_REG0[0..15],table=1)",
        "table=1,priority=100,ct_state=+trk+new,tcp,tp_dst=80,reg0=0x7,reg1=0x2,actions=ct(commit,zone=NXM_NX_REG0[0..15]),output:2",
        "table=1,priority=100,ct_state=+trk+est,reg0=0x7,reg1=0x2,actions=output:2",
        "table=1,priority=100,ct_state=+trk+est,reg0=0x7,reg1=0x1,actions=output:1",
        "table=1,priority=200,ct_state=+trk+inv,actions=drop",
    ])
}

#[test]
fn ovn_acl_zone_from_register_and_registers_across_recirculation() {
    let sw = ovn_acl();
    let mut dp = sw.datapath(0);
    send_unchanged(&mut dp, &http_steps());
    // The connection lives in zone 7, the register's value.
    let conns = sw.conntrack().dump(None, 200);
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(sw.conntrack().dump(Some(7), 200).len(), 1);
    assert_eq!(sw.conntrack().dump(Some(0), 200).len(), 0);
    // A SYN from the server side is new there and no rule commits it.
    let syn = tcp(SERVER, CLIENT, 81, 40001, SYN, 1, 0, b"");
    assert_eq!(send_ct(&mut dp, 2, &syn, 300).0, MISS);
}

#[test]
fn zones_from_registers_keep_connections_apart() {
    // The same 5-tuple in two zones chosen by register: each zone commits
    // its own connection.
    let sw = ct_switch(&[
        "table=0,ip,in_port=1,actions=load:0x10->NXM_NX_REG3[16..31],goto_table:1",
        "table=0,ip,in_port=3,actions=load:0x20->NXM_NX_REG3[16..31],goto_table:1",
        "table=1,ip,actions=ct(commit,zone=NXM_NX_REG3[16..31]),output:2",
    ]);
    let mut dp = sw.datapath(0);
    let f = tcp(CLIENT, SERVER, 1234, 80, SYN, 1, 0, b"");
    assert_eq!(send_ct(&mut dp, 1, &f, 0).0, ports(&[2]));
    assert_eq!(send_ct(&mut dp, 3, &f, 1).0, ports(&[2]));
    assert_eq!(sw.conntrack().dump(Some(0x10), 5).len(), 1);
    assert_eq!(sw.conntrack().dump(Some(0x20), 5).len(), 1);
    assert_eq!(sw.conntrack().dump(None, 5).len(), 2);
}

#[test]
fn registers_written_after_the_fork_do_not_reach_the_recirculation() {
    // As OVS: the recirculation resumes with the registers frozen at the
    // `ct(table=N)`; a load after it changes only the original's copy.
    let sw = ct_switch(&[
        "table=0,ip,actions=load:0x1->NXM_NX_REG2[],ct(table=1),load:0x2->NXM_NX_REG2[]",
        "table=1,ct_state=+trk,reg2=0x1,actions=output:2",
        "table=1,ct_state=+trk,reg2=0x2,actions=output:3",
    ]);
    let mut dp = sw.datapath(0);
    let f = tcp(CLIENT, SERVER, 1234, 80, SYN, 1, 0, b"");
    for t in 0..2 {
        let (v, bytes, _) = send_ct(&mut dp, 1, &f, t);
        assert_eq!(v, ports(&[2]), "pass {t}");
        assert_eq!(bytes, f);
    }
}

#[test]
fn a_group_bucket_writes_registers_on_its_own_copy() {
    // As OVS (each bucket runs on a clone of the flow): a register loaded
    // in a bucket is seen by nothing after the group.
    let sw = switch_with(&[], &[1, 2, 3, 4]);
    sw.group_add(
        "group_id=1,type=all,bucket=load:0x1->NXM_NX_REG0[],output:4"
            .parse()
            .unwrap(),
    )
    .unwrap();
    for r in [
        "table=0,udp,actions=group:1,resubmit(,1)",
        "table=1,reg0=0x1,actions=output:2",
        "table=1,reg0=0,actions=output:3",
    ] {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    let mut dp = sw.datapath(0);
    assert_eq!(send(&mut dp, 1, &udp_frame(7), 0).0, ports(&[3, 4]));
}
