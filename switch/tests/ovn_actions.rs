//! Writes of `in_port` and the field stack (`push:`/`pop:`), as OVS runs
//! them (`ofproto/ofproto-dpif-xlate.c`, `lib/nx-match.c`): outputs after
//! an `in_port` write compare with the written port, later lookups see
//! it; `push`/`pop` save and restore fields across clobbering writes and
//! resubmits, a pop from the empty stack does nothing. The same flows run
//! against OVS in `tests/ovs_ovn_actions.rs`.

mod common;
use common::*;

use switch::rule::RuleSpec;
use switch::table::FlowModError;
use switch::testutil::{udp4, with_vlan};
use switch::verdict::{DropReason, Verdict};

fn ip_csum(f: &mut [u8]) {
    f[24..26].fill(0);
    let c = fold(sum(&f[14..34], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn text_round_trips_and_malformed() {
    for r in [
        "table=0,priority=100,actions=load:0->NXM_OF_IN_PORT[],output:1",
        "table=0,priority=100,actions=move:NXM_NX_REG0[0..15]->NXM_OF_IN_PORT[],IN_PORT",
        "table=0,priority=100,actions=push:NXM_NX_REG0[],load:0x3->NXM_NX_REG0[],pop:NXM_NX_REG0[0..15]",
        "table=0,priority=100,actions=push:NXM_OF_ETH_SRC[],pop:NXM_OF_ETH_DST[],push:NXM_NX_XXREG1[],pop:NXM_NX_XXREG0[5]",
        "table=0,priority=100,actions=push:NXM_OF_IN_PORT[],pop:NXM_OF_IN_PORT[]",
        "table=0,priority=100,actions=move:NXM_OF_VLAN_TCI[]->NXM_NX_REG3[0..15],push:NXM_OF_VLAN_TCI[0..11]",
        // The rule of the `pipeline` fuzz target.
        "table=0,priority=40,udp,actions=push:NXM_OF_UDP_SRC[],load:0x2->NXM_OF_IN_PORT[],pop:NXM_NX_IP_TTL[],output:2,output:1,pop:NXM_OF_ETH_SRC[],FLOOD,resubmit(,4)",
    ] {
        let spec: RuleSpec = r.parse().unwrap_or_else(|e| panic!("{r}: {e}"));
        let text = spec.to_string();
        assert!(text.ends_with(r.split_once("actions=").unwrap().1), "{r}\n -> {text}");
        assert_eq!(text.parse::<RuleSpec>().unwrap(), spec, "{r}");
    }
    // Lower-case and meta-flow names print as OVS's NXM names.
    let spec: RuleSpec = "actions=push:reg3[0..7],pop:eth_dst".parse().unwrap();
    assert!(
        spec.to_string()
            .ends_with("actions=push:NXM_NX_REG3[0..7],pop:NXM_OF_ETH_DST[]"),
        "{spec}"
    );
    for bad in [
        "actions=push:NXM_NX_REG0[0..32]",
        "actions=pop:NXM_NX_REG0[5..4]",
        "actions=push:NXM_OF_FOO[]",
        "actions=pop:NXM_OF_ETH_TYPE[]",
        "actions=pop:NXM_OF_IP_PROTO[]",
        "actions=push",
        "actions=pop:",
        "actions=load:0x10000->NXM_OF_IN_PORT[]",
    ] {
        assert!(bad.parse::<RuleSpec>().is_err(), "{bad}");
    }
    // A push from / pop into a field the match does not guarantee.
    let sw = switch_with(&[], &[1, 2]);
    for r in [
        "ip,actions=push:NXM_OF_ARP_OP[]",
        "ip,actions=pop:NXM_OF_TCP_SRC[]",
    ] {
        match sw.table.add(r.parse().unwrap(), 0) {
            Err(FlowModError::MatchInconsistent(e)) => {
                assert!(e.contains("lacks correct prerequisites"), "{r}: {e}")
            }
            other => panic!("{r}: {other:?}"),
        }
    }
}

#[test]
fn output_after_an_in_port_write() {
    let sw = switch_with(
        &[
            // OVN's hairpin: without the load, output:1 from port 1 is skipped.
            "table=0,priority=100,udp,tp_dst=1,actions=load:0->NXM_OF_IN_PORT[],output:1",
            "table=0,priority=100,udp,tp_dst=2,actions=output:1,output:2",
            "table=0,priority=100,udp,tp_dst=3,actions=load:0x2->NXM_OF_IN_PORT[],IN_PORT",
            "table=0,priority=100,udp,tp_dst=4,actions=load:0x2->NXM_OF_IN_PORT[],output:2,output:3,output:1",
            "table=0,priority=100,udp,tp_dst=5,actions=load:0x3->NXM_OF_IN_PORT[],ALL",
            "table=0,priority=100,udp,tp_dst=6,actions=load:0x3->NXM_OF_IN_PORT[],FLOOD",
            "table=0,priority=100,udp,tp_dst=7,actions=load:0x3->NXM_OF_IN_PORT[],resubmit(,1)",
            "table=0,priority=100,udp,tp_dst=8,actions=load:0x2->NXM_NX_REG1[],move:NXM_NX_REG1[0..15]->NXM_OF_IN_PORT[],move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15],resubmit(,1)",
            "table=0,priority=100,udp,tp_dst=9,actions=load:0x40->NXM_OF_IN_PORT[],IN_PORT,output:2",
            "table=1,priority=100,in_port=3,actions=output:3,output:2",
            "table=1,priority=90,reg2=0x2,actions=output:4,IN_PORT",
            "table=1,priority=80,actions=output:1",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    for (dport, from, want) in [
        (1, 1, &[1][..]),
        (1, 2, &[1]),
        (2, 1, &[2]),
        (3, 1, &[2]),
        (3, 2, &[2]),
        (4, 1, &[3, 1]),
        (4, 4, &[3, 1]),
        (5, 1, &[1, 2, 4]),
        (6, 2, &[1, 2, 4]),
        (7, 1, &[2]),
        (8, 1, &[4, 2]),
        (9, 1, &[2]),
    ] {
        let f = udp4([10, 0, 0, 5], [10, 0, 0, 9], 1000, dport);
        for _ in 0..2 {
            // Twice: the second is a cache hit.
            let (v, out) = send(&mut dp, from, &f, 0);
            assert_eq!(v, ports(want), "udp to {dport} from port {from}");
            assert_eq!(out, f);
        }
    }
    // A port added later: a FLOOD spelled out for the written in_port
    // reaches it too.
    sw.port_add(5).unwrap();
    let f = udp4([10, 0, 0, 5], [10, 0, 0, 9], 1000, 6);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[1, 2, 4, 5]));
}

#[test]
fn set_field_of_in_port_is_a_load_of_it() {
    let r = "table=0,priority=100,actions=set_field:2->in_port,IN_PORT,output:1";
    let spec: RuleSpec = r.parse().unwrap();
    assert!(spec
        .to_string()
        .ends_with("actions=set_field:2->in_port,IN_PORT,output:1"));
    assert_eq!(spec.to_string().parse::<RuleSpec>().unwrap(), spec);
    assert!("actions=set_field:0x10000->in_port"
        .parse::<RuleSpec>()
        .is_err());
    let sw = switch_with(
        &[
            "table=0,priority=100,udp,tp_dst=1,actions=set_field:2->in_port,IN_PORT,output:1",
            "table=0,priority=100,udp,tp_dst=2,actions=set_field:0->in_port,output:1",
            "table=0,priority=100,udp,tp_dst=3,actions=set_field:3->in_port,resubmit(,1)",
            "table=1,priority=100,in_port=3,actions=output:2",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    for (dport, want) in [(1, &[1, 2][..]), (2, &[1]), (3, &[2])] {
        let f = udp4([10, 0, 0, 5], [10, 0, 0, 9], 1000, dport);
        for _ in 0..2 {
            assert_eq!(
                send(&mut dp, 1, &f, 0),
                (ports(want), f.clone()),
                "udp to {dport}"
            );
        }
    }
}

/// Writes of NXM_OF_VLAN_TCI as OVS's `commit_vlan_action` (one tag
/// known, OVS's default `vlan-limit`): the CFI bit sets the tag (pushing
/// one on an untagged frame), no CFI pops it, an unchanged TCI does
/// nothing.
#[test]
fn vlan_tci_writes() {
    for r in [
        "actions=load:0x1005->NXM_OF_VLAN_TCI[],move:NXM_NX_REG0[0..15]->NXM_OF_VLAN_TCI[]",
        "actions=set_field:0x7007->vlan_tci,set_field:0->vlan_tci,pop:NXM_OF_VLAN_TCI[0..11]",
    ] {
        let spec: RuleSpec = r.parse().unwrap_or_else(|e| panic!("{r}: {e}"));
        assert!(spec.to_string().ends_with(r), "{spec}");
    }
    let sw = switch_with(
        &[
            "table=0,priority=100,udp,tp_dst=12,actions=load:0x1005->NXM_OF_VLAN_TCI[],output:2",
            "table=0,priority=100,udp,tp_dst=13,actions=set_field:0x7007->vlan_tci,output:2",
            "table=0,priority=100,udp,tp_dst=14,actions=load:0->NXM_OF_VLAN_TCI[],output:2",
            "table=0,priority=100,udp,tp_dst=15,actions=load:0x9->NXM_OF_VLAN_TCI[0..11],resubmit(,1)",
            "table=0,priority=100,udp,tp_dst=16,actions=load:0x1->NXM_OF_VLAN_TCI[12],output:2",
            "table=1,priority=100,vlan_tci=0x1009/0x1fff,actions=output:3",
            "table=1,priority=90,actions=output:2",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let f = |d: u16| udp4([10, 0, 0, 5], [10, 0, 0, 9], 1000, d);
    let tag = |d: u16, tci: u16| with_vlan(&f(d), 0x8100, tci);
    let qinq = |d: u16, tci: u16| with_vlan(&f(d), 0x88a8, tci);
    for (what, input, out, want) in [
        ("push", f(12), 2, tag(12, 0x0005)),
        ("replace", tag(12, 0x6007), 2, tag(12, 0x0005)),
        ("TPID kept", qinq(12, 0x6007), 2, qinq(12, 0x0005)),
        ("push with PCP", f(13), 2, tag(13, 0x6007)),
        ("pop", tag(14, 0x6005), 2, f(14)),
        ("pop of nothing", f(14), 2, f(14)),
        (
            "VID of a tag, seen by the next table",
            tag(15, 0x6005),
            3,
            tag(15, 0x6009),
        ),
        ("VID without a tag: nothing", f(15), 2, f(15)),
        ("CFI alone pushes VID 0", f(16), 2, tag(16, 0)),
        (
            "CFI of a tagged frame: unchanged",
            tag(16, 0x2005),
            2,
            tag(16, 0x2005),
        ),
    ] {
        for _ in 0..2 {
            assert_eq!(
                send(&mut dp, 1, &input, 0),
                (ports(&[out]), want.clone()),
                "{what}"
            );
        }
    }
}

/// OVS's `xlate_normal` after an `in_port` write: it learns the source
/// on the written port, floods to every port but that one (the real
/// ingress port too), and a destination learned on it is a hairpin.
#[test]
fn normal_after_an_in_port_write() {
    let sw = switch_with(
        &[
            "table=0,priority=100,udp,tp_dst=30,actions=load:0x2->NXM_OF_IN_PORT[],NORMAL",
            "table=0,priority=100,udp,tp_dst=31,actions=NORMAL",
            "table=0,priority=100,udp,tp_dst=32,actions=load:0x9->NXM_OF_IN_PORT[],NORMAL",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let (a, b) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
    let frame = |src: [u8; 6], dst: [u8; 6], d: u16| {
        let mut f = udp4([10, 0, 0, 5], [10, 0, 0, 9], 1000, d);
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    };
    // From port 1 as port 2: flooded to 1 and 3; A learned on port 2.
    assert_eq!(send(&mut dp, 1, &frame(a, b, 30), 0).0, ports(&[1, 3]));
    // To A from port 3: port 2, where it was learned (B learned on 3).
    assert_eq!(send(&mut dp, 3, &frame(b, a, 31), 0).0, ports(&[2]));
    // To B as port 2: port 3; to A as port 2: a hairpin.
    assert_eq!(send(&mut dp, 1, &frame(a, b, 30), 0).0, ports(&[3]));
    assert_eq!(
        send(&mut dp, 1, &frame(b, a, 30), 0).0,
        Verdict::Drop(DropReason::Hairpin)
    );
    // Written to a port the bridge does not have: NORMAL does nothing.
    assert!(matches!(
        send(&mut dp, 1, &frame(a, b, 32), 0).0,
        Verdict::Drop(_)
    ));
}

#[test]
fn push_and_pop() {
    let sw = switch_with(
        &[
            "table=0,priority=100,udp,tp_dst=20,actions=load:0x2->NXM_NX_REG0[],push:NXM_NX_REG0[],load:0x3->NXM_NX_REG0[],pop:NXM_NX_REG0[],resubmit(,2)",
            "table=0,priority=100,udp,tp_dst=21,actions=push:NXM_OF_ETH_SRC[],push:NXM_OF_ETH_DST[],pop:NXM_OF_ETH_SRC[],pop:NXM_OF_ETH_DST[],output:2",
            "table=0,priority=100,udp,tp_dst=22,actions=push:NXM_OF_UDP_SRC[],pop:NXM_NX_IP_TTL[],output:3",
            "table=0,priority=100,udp,tp_dst=23,actions=push:NXM_NX_IP_TTL[],pop:NXM_OF_IP_SRC[0..15],output:3",
            "table=0,priority=100,udp,tp_dst=24,actions=pop:NXM_OF_UDP_SRC[],output:2",
            "table=0,priority=100,udp,tp_dst=25,actions=push:NXM_OF_IP_DST[],load:0xa000063->NXM_OF_IP_DST[],resubmit(,3)",
            "table=0,priority=100,udp,tp_dst=26,actions=push:NXM_OF_IN_PORT[],load:0x2->NXM_OF_IN_PORT[],output:2,pop:NXM_OF_IN_PORT[],output:3",
            "table=2,priority=100,reg0=0x2,actions=output:2",
            "table=2,priority=100,reg0=0x3,actions=output:3",
            "table=3,priority=100,udp,actions=pop:NXM_OF_IP_SRC[],output:3",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let (src, dst) = ([10, 0, 0, 5], [10, 0, 0, 9]);
    let f = |d: u16| udp4(src, dst, 0x1234, d);
    // The register comes back from the stack (table 2 sees 2, not 3).
    assert_eq!(send(&mut dp, 1, &f(20), 0), (ports(&[2]), f(20)));
    // MACs swapped through the stack.
    let mut want = f(21);
    want[..12].copy_from_slice(&[&f(21)[6..12], &f(21)[..6]].concat());
    assert_eq!(send(&mut dp, 1, &f(21), 0), (ports(&[2]), want));
    // 16 bits popped into 8: the low byte (0x34).
    let mut want = f(22);
    want[22] = 0x34;
    ip_csum(&mut want);
    assert_eq!(send(&mut dp, 1, &f(22), 0), (ports(&[3]), want));
    // 8 bits popped into 16: zero-extended (TTL 64 → ip_src 10.0.0.64).
    let want = udp4([10, 0, 0, 64], dst, 0x1234, 23);
    assert_eq!(send(&mut dp, 1, &f(23), 0), (ports(&[3]), want));
    // The empty stack: the pop does nothing, the flow goes on.
    assert_eq!(send(&mut dp, 1, &f(24), 0), (ports(&[2]), f(24)));
    // Across a resubmit: ip_src = the original ip_dst.
    let want = udp4(dst, [10, 0, 0, 99], 0x1234, 25);
    assert_eq!(send(&mut dp, 1, &f(25), 0), (ports(&[3]), want));
    // in_port saved and restored: output:2 skipped while in_port is 2.
    assert_eq!(send(&mut dp, 1, &f(26), 0), (ports(&[3]), f(26)));
    assert_eq!(
        send(&mut dp, 1, &f(99), 0).0,
        Verdict::Drop(DropReason::NoMatch)
    );
}
