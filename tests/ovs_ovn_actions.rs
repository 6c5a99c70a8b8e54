//! The OVS actions OVN and OpenStack flows use beyond plain `load`/`move`,
//! against Open vSwitch 3.1: writes of `in_port` (`load:0->NXM_OF_IN_PORT[]`
//! before an output to the ingress port, `move` into it, `set_field:N->in_port`
//! (OFPAT_SET_FIELD of NXM_OF_IN_PORT), `IN_PORT`,
//! `FLOOD`/`ALL` and later lookups after it) and the field stack
//! (`push:`/`pop:`, NXAST_STACK_PUSH/POP: a register saved around a
//! clobbering load, packet fields swapped through the stack, narrower and
//! wider pops, a pop from the empty stack, the stack across a resubmit)
//! reads and writes of `NXM_OF_VLAN_TCI` (`load`, `set_field`, `move`
//! into it, a VID without the CFI bit; untagged frames and tags with DEI 0
//! and 1: OVS sends a changed tag with DEI 0), and a
//! 128-bit `set_field` into an `xxreg` (OFPAT_SET_FIELD of NXM_NX_XXREG1,
//! two loads in OpenFlow 1.0) moved on whole and in parts, and the ct
//! fields (`ct_state`, `ct_zone`, `ct_mark`, `ct_label`) read by `move`
//! and `push` after a `ct(commit,table=N)`; `NORMAL` after an `in_port`
//! write floods as from the written port (back out of the real one); the
//! tunnel fields as `move`/`push` sources (0 on a port that is no tunnel)
//! and `load` destinations read back.
//!
//! ```text
//!  ovs-ofctl add-flows (1.3 and 1.0) ──► vswitch run --ovsdb │ ovs-vswitchd (dummy)
//!     dump-flows compared line by line; bad NXAST_STACK_PUSH/POP and
//!     in_port loads from a controller earn the same OpenFlow errors
//!
//!  in.pcap ──► port 1 ──► FLOWS ──► ports 1, 2, 3
//!     the same pcap through vswitch and OVS-DPDK: every port's frames
//!     identical byte for byte
//! ```

mod ovs_harness;

use openflow::nicira::{NxAction, NxStack};
use openflow::Message;
use ovs_harness::ofctl::*;
use ovs_harness::*;

/// The flows: UDP from port 1, one case per destination port.
const FLOWS: &str = "\
table=0,priority=100,in_port=1,udp,tp_dst=1,actions=load:0->NXM_OF_IN_PORT[],output:1
table=0,priority=100,in_port=1,udp,tp_dst=2,actions=output:1,output:2
table=0,priority=100,in_port=1,udp,tp_dst=3,actions=load:0x2->NXM_OF_IN_PORT[],IN_PORT
table=0,priority=100,in_port=1,udp,tp_dst=4,actions=load:0x2->NXM_OF_IN_PORT[],output:2,output:3,output:1
table=0,priority=100,in_port=1,udp,tp_dst=5,actions=load:0x3->NXM_OF_IN_PORT[],ALL
table=0,priority=100,in_port=1,udp,tp_dst=6,actions=load:0x3->NXM_OF_IN_PORT[],FLOOD
table=0,priority=100,in_port=1,udp,tp_dst=7,actions=load:0x3->NXM_OF_IN_PORT[],resubmit(,1)
table=0,priority=100,in_port=1,udp,tp_dst=8,actions=load:0x2->NXM_NX_REG1[],move:NXM_NX_REG1[0..15]->NXM_OF_IN_PORT[],move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15],resubmit(,1)
table=0,priority=100,in_port=1,udp,tp_dst=9,actions=load:0x2->NXM_OF_IN_PORT[],set_field:00:00:00:00:00:09->eth_src,output:1,load:0x1->NXM_OF_IN_PORT[],output:1,output:3
table=0,priority=100,in_port=1,udp,tp_dst=10,actions=set_field:2->in_port,IN_PORT,output:1,output:2
table=0,priority=100,in_port=1,udp,tp_dst=11,actions=set_field:3->in_port,resubmit(,1)
table=0,priority=100,in_port=1,udp,tp_dst=12,actions=load:0x1005->NXM_OF_VLAN_TCI[],output:2
table=0,priority=100,in_port=1,udp,tp_dst=13,actions=set_field:0x7007->vlan_tci,output:2
table=0,priority=100,in_port=1,udp,tp_dst=14,actions=load:0->NXM_OF_VLAN_TCI[],output:3
table=0,priority=100,in_port=1,udp,tp_dst=15,actions=load:0x9->NXM_OF_VLAN_TCI[0..11],resubmit(,5)
table=0,priority=100,in_port=1,udp,tp_dst=16,actions=move:NXM_OF_UDP_SRC[]->NXM_OF_VLAN_TCI[],output:3
table=0,priority=100,in_port=1,udp,tp_dst=17,actions=set_field:0x112233445566778899aabbcc0a000063->xxreg1,move:NXM_NX_XXREG1[0..31]->NXM_OF_IP_DST[],move:NXM_NX_XXREG1[80..127]->NXM_OF_ETH_SRC[],move:NXM_NX_XXREG1[]->NXM_NX_XXREG2[],resubmit(,6)
table=0,priority=100,in_port=1,udp,tp_dst=18,actions=ct(commit,zone=5,table=7,exec(set_field:0xab->ct_mark,set_field:0xa000064000002aabbccddee->ct_label))
table=0,priority=100,in_port=1,udp,tp_dst=19,actions=load:0x2->NXM_OF_IN_PORT[],NORMAL
table=0,priority=100,in_port=1,udp,tp_dst=20,actions=load:0x2->NXM_NX_REG0[],push:NXM_NX_REG0[],load:0x3->NXM_NX_REG0[],pop:NXM_NX_REG0[],resubmit(,2)
table=0,priority=100,in_port=1,udp,tp_dst=21,actions=push:NXM_OF_ETH_SRC[],push:NXM_OF_ETH_DST[],pop:NXM_OF_ETH_SRC[],pop:NXM_OF_ETH_DST[],output:2
table=0,priority=100,in_port=1,udp,tp_dst=22,actions=push:NXM_OF_UDP_SRC[],pop:NXM_NX_IP_TTL[],output:3
table=0,priority=100,in_port=1,udp,tp_dst=23,actions=push:NXM_NX_IP_TTL[],pop:NXM_OF_IP_SRC[0..15],output:3
table=0,priority=100,in_port=1,udp,tp_dst=24,actions=pop:NXM_OF_UDP_SRC[],output:2
table=0,priority=100,in_port=1,udp,tp_dst=25,actions=push:NXM_OF_IP_DST[],load:0xa000063->NXM_OF_IP_DST[],resubmit(,3)
table=0,priority=100,in_port=1,udp,tp_dst=26,actions=push:NXM_OF_IN_PORT[],load:0x2->NXM_OF_IN_PORT[],output:2,pop:NXM_OF_IN_PORT[],output:3
table=0,priority=100,in_port=1,udp,tp_dst=27,actions=move:NXM_OF_ETH_SRC[]->NXM_NX_XXREG0[0..47],push:NXM_NX_XXREG0[],pop:NXM_NX_XXREG1[],move:NXM_NX_XXREG1[0..47]->NXM_OF_ETH_DST[],push:NXM_OF_UDP_SRC[8..15],pop:NXM_OF_UDP_DST[0..3],output:2
table=0,priority=100,in_port=1,udp,tp_dst=28,actions=move:NXM_OF_VLAN_TCI[]->NXM_NX_REG3[0..15],move:NXM_OF_VLAN_TCI[0..7]->NXM_NX_IP_TTL[],resubmit(,4)
table=0,priority=100,in_port=1,udp,tp_dst=29,actions=move:NXM_NX_TUN_ID[0..15]->NXM_OF_UDP_SRC[],move:NXM_NX_TUN_IPV4_DST[]->NXM_NX_REG0[],push:NXM_NX_TUN_IPV4_SRC[],pop:NXM_NX_REG1[],resubmit(,9)
table=0,priority=100,in_port=1,udp,tp_dst=30,actions=load:0x2a->NXM_NX_TUN_ID[0..23],load:0xc0a83207->NXM_NX_TUN_IPV4_DST[],move:NXM_NX_TUN_ID[0..15]->NXM_OF_UDP_SRC[],move:NXM_NX_TUN_IPV4_DST[]->NXM_OF_IP_SRC[],output:2
table=0,priority=0,actions=drop
table=1,priority=100,in_port=3,actions=output:3,output:2
table=1,priority=90,reg2=0x2,actions=output:3,IN_PORT
table=1,priority=80,in_port=1,actions=output:1
table=2,priority=100,reg0=0x2,actions=output:2
table=2,priority=100,reg0=0x3,actions=output:3
table=3,priority=100,udp,actions=pop:NXM_OF_IP_SRC[],output:3
table=4,priority=100,reg3=0,actions=output:2
table=4,priority=90,reg3=0x1005/0x1fff,actions=output:3
table=4,priority=80,actions=IN_PORT
table=5,priority=100,vlan_tci=0x1009/0x1fff,actions=output:3
table=5,priority=90,actions=output:2
table=6,priority=100,reg8=0x11223344,reg11=0xa000063,actions=output:3
table=6,priority=90,actions=output:2
table=7,priority=100,ct_state=+trk,udp,actions=move:NXM_NX_CT_MARK[0..15]->NXM_OF_UDP_SRC[],move:NXM_NX_CT_ZONE[]->NXM_NX_REG1[0..15],move:NXM_NX_CT_LABEL[0..47]->NXM_OF_ETH_SRC[],push:NXM_NX_CT_STATE[],pop:NXM_NX_IP_TTL[],push:NXM_NX_CT_LABEL[],pop:NXM_NX_XXREG1[],move:NXM_NX_XXREG1[64..95]->NXM_OF_IP_DST[],resubmit(,8)
table=8,priority=100,reg1=0x5,actions=output:3
table=8,priority=90,actions=output:2
table=9,priority=100,reg0=0,reg1=0,actions=output:3
";

/// The UDP destination ports of [`FLOWS`]' cases.
const CASES: [u16; 30] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30,
];

/// Malformed or inconsistent stack actions a controller may send.
fn bad_flow_mods() -> Vec<(&'static str, Message)> {
    let st = |field: u32, ofs: u16, n_bits: u16| NxStack { ofs, field, n_bits };
    // NXM_NX_REG0, NXM_OF_ETH_TYPE, NXM_OF_ARP_OP, an NXM_OF field OVS
    // does not have (99).
    let (reg0, eth_type, arp_op, unknown) = (0x0001_0004, 0x0000_0602, 0x0000_1e02, 0x0000_c604);
    vec![
        (
            "push past the field's bits",
            flow_mod(0x0800, NxAction::StackPush(st(reg0, 16, 32))),
        ),
        (
            "pop of 0 bits",
            flow_mod(0x0800, NxAction::StackPop(st(reg0, 0, 0))),
        ),
        (
            "push of an unknown field",
            flow_mod(0x0800, NxAction::StackPush(st(unknown, 0, 8))),
        ),
        (
            "pop into eth_type",
            flow_mod(0x0800, NxAction::StackPop(st(eth_type, 0, 16))),
        ),
        (
            "push of arp_op on an ip flow",
            flow_mod(0x0800, NxAction::StackPush(st(arp_op, 0, 16))),
        ),
        (
            "pop into arp_op on an ip flow",
            flow_mod(0x0800, NxAction::StackPop(st(arp_op, 0, 16))),
        ),
    ]
}

#[test]
fn in_port_and_stack_flows_print_and_fail_as_with_ovs() {
    let (vsw, ovs) = both_switches("ovna");
    let (vd, od) = (vsw.dir.clone(), ovs.dir.clone());
    let flows = same_flows_through_13_and_10(&vd, &od, FLOWS);
    let want =
        "priority=100,udp,in_port=1,tp_dst=20 actions=load:0x2->NXM_NX_REG0[],push:NXM_NX_REG0[],\
                load:0x3->NXM_NX_REG0[],pop:NXM_NX_REG0[],resubmit(,2)";
    assert!(flows.iter().any(|l| l == want), "{flows:#?}");

    // ovs-ofctl refuses a pop into a read-only field itself.
    let (good, _, err) = ofctl(
        &vd,
        Some("OpenFlow13"),
        &["add-flow", "br0", "ip,actions=pop:NXM_OF_ETH_TYPE[]"],
    );
    assert!(!good, "{err}");
    same_errors(&vd, &od, bad_flow_mods());
}

// ---------------------------------------------------------------------------
// The same frames through both datapaths.
// ---------------------------------------------------------------------------

fn udp_frame(n: u8, sport: u16, dport: u16) -> Vec<u8> {
    tagged_udp_frame(n, sport, dport, &[])
}

fn tagged_udp_frame(n: u8, sport: u16, dport: u16, tags: &[(u16, u16)]) -> Vec<u8> {
    let (src, dst) = ([10, 0, 0, n], [10, 0, 9, 200 + n]);
    let l4 = l4_csum(&[src, dst].concat(), 17, udp(sport, dport, 12));
    eth(
        [0x52, 0x54, 0, 0, 1, n],
        [0x52, 0x54, 0, 0, 0, n],
        tags,
        0x0800,
        &ipv4(src, dst, 17, 64, 0, &l4),
    )
}

/// Three frames per case (different hosts and source ports); case 28
/// (VLAN TCI read) also tagged with VID 5 PCP 3 and with VID 7.
fn frames() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for d in CASES {
        for n in 2..5u8 {
            let sport = 0x1234 + 0x111 * u16::from(n);
            v.push((format!("udp to {d} from {n}"), udp_frame(n, sport, d)));
        }
    }
    for tci in [0x6005, 0x0007] {
        for n in 2..5u8 {
            let f = tagged_udp_frame(n, 0x4321, 28, &[(Q, tci)]);
            v.push((format!("udp to 28 from {n}, tag {tci:#x}"), f));
        }
    }
    // The VLAN TCI writes on tagged frames too, with the DEI bit clear and
    // set (OVS pops and pushes the tag, which sends DEI 0).
    for tci in [0x6005, 0x7005] {
        for d in 12..=16 {
            for n in 2..5u8 {
                let f = tagged_udp_frame(n, 0x0523 * u16::from(n), d, &[(Q, tci)]);
                v.push((format!("udp to {d} from {n}, tag {tci:#x}"), f));
            }
        }
    }
    v
}

const PORTS: [u32; 3] = [1, 2, 3];

#[test]
fn in_port_and_stack_same_frames_as_ovs_dpdk() {
    preflight();
    let dir = std::env::temp_dir().join(format!("vsw-ovnad-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("in.pcap");
    let input = frames();
    write_pcap(&pcap, &input);
    let n = input.len() as u64;
    let ovs = replay(Kind::Ovs, "ovnad", FLOWS, (&pcap, n), &PORTS);
    let vsw = replay(Kind::Vswitch, "ovnad", FLOWS, (&pcap, n), &PORTS);
    let _ = std::fs::remove_dir_all(&dir);
    let counts: Vec<usize> = PORTS
        .iter()
        .map(|p| ovs.get(p).map_or(0, Vec::len))
        .collect();
    eprintln!("OVS's outputs per port: {counts:?}");

    assert_eq!(counts, EXPECTED_OVS, "OVS's outputs per port");
    same_frames(&vsw, &ovs, &PORTS);
}

/// What OVS sends per port 1, 2, 3 (3 frames per case, 9 for the VLAN
/// writes), so the comparison compares something: port 1 from cases 1, 4,
/// 5, 6, 9, 10, 19 and 28 tagged VID 7; port 2 from 2, 3, 5, 6, 7, 8, 10,
/// 11, 12 (9), 13 (9), 15 untagged, 20, 21, 24, 27, 28 untagged, 30; port 3
/// from 4, 8, 9, 14 (9), 15 tagged (6), 16 (9), 17, 18, 19, 22, 23, 25, 26,
/// 28 tagged VID 5, 29.
const EXPECTED_OVS: [usize; 3] = [24, 63, 60];
