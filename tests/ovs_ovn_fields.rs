//! OVN's logical-pipeline actions on packet fields and `xxreg`s, against
//! Open vSwitch 3.1: `load`/`move` into and out of Ethernet, ARP, IPv4,
//! TCP/UDP, ICMP fields and `in_port`, in the flows OVN writes (the ARP
//! responder, the ICMP echo responder, a port number and an address
//! carried in registers across a resubmit).
//!
//! ```text
//!  ovs-ofctl add-flows (1.3 and 1.0) ──► vswitch run --ovsdb │ ovs-vswitchd (dummy)
//!     dump-flows (1.3 and 1.0) compared line by line; bad NXAST_REG_LOAD /
//!     REG_MOVE flow-mods from a controller earn the same OpenFlow errors
//!
//!  in.pcap ──► port 1 ──► FLOWS ──► port 1 (IN_PORT: ARP and ICMP replies),
//!                                   ports 2, 3 (UDP/TCP rewritten)
//!     the same pcap through vswitch and OVS-DPDK: every port's frames
//!     identical byte for byte (checksums included)
//! ```

mod ovs_harness;

use openflow::nicira::{reg_load_ofs_nbits, NxAction};
use openflow::Message;
use ovs_harness::ofctl::*;
use ovs_harness::*;

/// OVN-style flows (table 0: the ARP and ICMP responders of a logical
/// router port 10.0.0.1 / 00:00:00:00:00:01; table 0 → 1: the ingress
/// port and source address into registers, used and written back in
/// table 1).
const FLOWS: &str = "\
table=0,priority=100,arp,arp_tpa=10.0.0.1,arp_op=1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:00:00:00:00:00:01,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],load:0x1->NXM_NX_ARP_SHA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xa000001->NXM_OF_ARP_SPA[],IN_PORT
table=0,priority=100,icmp,nw_dst=10.0.0.1,icmp_type=8,icmp_code=0,actions=move:NXM_OF_ETH_SRC[]->NXM_NX_XXREG1[0..47],move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[],move:NXM_NX_XXREG1[0..47]->NXM_OF_ETH_DST[],move:NXM_OF_IP_SRC[]->NXM_NX_REG0[],move:NXM_OF_IP_DST[]->NXM_OF_IP_SRC[],move:NXM_NX_REG0[]->NXM_OF_IP_DST[],load:0xff->NXM_NX_IP_TTL[],load:0->NXM_OF_ICMP_TYPE[],IN_PORT
table=0,priority=90,ip,in_port=1,actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG14[0..15],move:NXM_OF_IP_SRC[]->NXM_NX_XXREG2[64..95],load:0x2a->NXM_NX_XXREG3[96..127],resubmit(,1)
table=0,priority=0,actions=drop
table=1,priority=100,udp,reg14=0x1,reg12=0x2a,actions=move:NXM_NX_XXREG2[64..95]->NXM_OF_IP_DST[],load:0xc0a80001->NXM_OF_IP_SRC[],move:NXM_OF_UDP_SRC[]->NXM_NX_REG0[0..15],move:NXM_OF_UDP_DST[]->NXM_OF_UDP_SRC[],move:NXM_NX_REG0[0..15]->NXM_OF_UDP_DST[],load:0x2a->NXM_NX_IP_TTL[],mod_dl_src:02:c7:00:00:00:03,output:2
table=1,priority=100,tcp,reg14=0x1,actions=load:0x1f90->NXM_OF_TCP_DST[],move:NXM_OF_IP_DST[0..7]->NXM_OF_IP_SRC[0..7],load:0x3->NXM_NX_IP_ECN[],move:NXM_OF_TCP_SRC[8..15]->NXM_OF_ETH_DST[0..7],mod_dl_src:02:c7:00:00:00:04,output:3
table=1,priority=90,icmp,actions=set_field:0x5->xxreg2,load:0x3->NXM_OF_ICMP_TYPE[],load:0x1->NXM_OF_ICMP_CODE[],mod_dl_src:02:c7:00:00:00:05,output:3
";

// ---------------------------------------------------------------------------
// ovs-ofctl against both: what they print.
// ---------------------------------------------------------------------------

/// The malformed or inconsistent loads and moves a controller may send,
/// with what each is.
fn bad_flow_mods() -> Vec<(&'static str, Message)> {
    let load = |dst: u32, ofs: u16, n: u16, value: u64| NxAction::RegLoad {
        ofs_nbits: reg_load_ofs_nbits(ofs, n),
        dst,
        value,
    };
    let mv = |src: u32, dst: u32, n_bits: u16| NxAction::RegMove {
        n_bits,
        src_ofs: 0,
        dst_ofs: 0,
        src,
        dst,
    };
    // NXM_OF_ARP_OP, NXM_NX_IP_TTL, NXM_OF_ETH_TYPE, NXM_OF_ETH_SRC, an
    // NXM_OF field OVS does not have (99).
    let (arp_op, ttl, eth_type, eth_src, unknown) = (
        0x0000_1e02,
        0x0001_3a01,
        0x0000_0602,
        0x0000_0406,
        0x0000_c604,
    );
    vec![
        (
            "load into arp_op on an ip flow",
            flow_mod(0x0800, load(arp_op, 0, 16, 2)),
        ),
        (
            "move from arp_op on an ip flow",
            flow_mod(0x0800, mv(arp_op, 0x0001_0004, 16)),
        ),
        (
            "load into an unknown field",
            flow_mod(0x0800, load(unknown, 0, 8, 1)),
        ),
        (
            "move from an unknown field",
            flow_mod(0x0800, mv(unknown, eth_src, 8)),
        ),
        (
            "load past the field's bits",
            flow_mod(0x0800, load(ttl, 4, 8, 1)),
        ),
        (
            "move past the field's bits",
            flow_mod(0x0800, mv(eth_src, ttl, 16)),
        ),
        (
            "load value wider than its bits",
            flow_mod(0x0800, load(ttl, 0, 8, 0x100)),
        ),
        (
            "load into eth_type",
            flow_mod(0x0800, load(eth_type, 0, 16, 0x86dd)),
        ),
    ]
}

#[test]
fn ovn_field_flows_print_and_fail_as_with_ovs() {
    let (vsw, ovs) = both_switches("ovnf");
    let (vd, od) = (vsw.dir.clone(), ovs.dir.clone());
    let flows = same_flows_through_13_and_10(&vd, &od, FLOWS);
    let arp = "priority=100,arp,arp_tpa=10.0.0.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
               set_field:00:00:00:00:00:01->eth_src,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
               load:0x1->NXM_NX_ARP_SHA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xa000001->NXM_OF_ARP_SPA[],IN_PORT";
    assert!(flows.iter().any(|l| l == arp), "{flows:#?}");

    // ovs-ofctl refuses an inconsistent flow itself, the same words for both.
    let (good, _, err) = ofctl(
        &vd,
        Some("OpenFlow13"),
        &["add-flow", "br0", "ip,actions=load:0x2->NXM_OF_ARP_OP[]"],
    );
    assert!(!good && err.contains("OFPBAC_MATCH_INCONSISTENT"), "{err}");
    same_errors(&vd, &od, bad_flow_mods());
}

// ---------------------------------------------------------------------------
// The same frames through both datapaths.
// ---------------------------------------------------------------------------

const ROUTER_MAC: [u8; 6] = [0, 0, 0, 0, 0, 1];

fn host(n: u8) -> [u8; 6] {
    [0x52, 0x54, 0, 0, 0, n]
}

fn arp_frame(op: u16, n: u8, tpa: [u8; 4]) -> Vec<u8> {
    eth(
        BCAST,
        host(n),
        &[],
        0x0806,
        &arp(op, host(n), [10, 0, 0, n], [0; 6], tpa),
    )
}

fn ip_frame(
    n: u8,
    dst_mac: [u8; 6],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    tos: u8,
    l4: Vec<u8>,
) -> Vec<u8> {
    let src = [10, 0, 0, n];
    let addrs = [src, dst].concat();
    let l4 = l4_csum(&addrs, proto, l4);
    eth(
        dst_mac,
        host(n),
        &[],
        0x0800,
        &ipv4(src, dst, proto, ttl, tos, &l4),
    )
}

/// The input: ARP requests for the router from several hosts (answered),
/// for another address and an ARP reply (dropped); echo requests to the
/// router (answered) and to another host (table 1: type/code rewritten);
/// UDP and TCP from port 1 (rewritten from registers, out of 2 and 3);
/// and IP from another port (dropped).
fn frames() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for n in 2..8u8 {
        v.push((
            format!("arp who-has 10.0.0.1 from {n}"),
            arp_frame(1, n, [10, 0, 0, 1]),
        ));
        v.push((
            format!("arp who-has 10.0.0.99 from {n}"),
            arp_frame(1, n, [10, 0, 0, 99]),
        ));
        v.push((
            format!("echo to the router from {n}"),
            ip_frame(
                n,
                ROUTER_MAC,
                [10, 0, 0, 1],
                1,
                64 - n,
                0,
                icmp(8, 0, 8 + n as usize),
            ),
        ));
        v.push((
            format!("echo to 10.0.1.{n}"),
            ip_frame(n, ROUTER_MAC, [10, 0, 1, n], 1, 64, 0, icmp(8, 0, 4)),
        ));
        v.push((
            format!("udp from {n}"),
            ip_frame(
                n,
                ROUTER_MAC,
                [10, 0, 2, n],
                17,
                64,
                0x10,
                udp(1000 + n as u16, 53, 16),
            ),
        ));
        v.push((
            format!("tcp from {n}"),
            ip_frame(
                n,
                ROUTER_MAC,
                [10, 0, 3, n],
                6,
                64,
                0,
                tcp(0x4000 + 0x100 * n as u16, 80, 20),
            ),
        ));
    }
    v.push((
        "arp reply to the router".into(),
        arp_frame(2, 9, [10, 0, 0, 1]),
    ));
    // An echo request with code 1 is not the responder's.
    v.push((
        "echo code 1 to the router".into(),
        ip_frame(9, ROUTER_MAC, [10, 0, 0, 1], 1, 64, 0, icmp(8, 1, 4)),
    ));
    v
}

const PORTS: [u32; 3] = [1, 2, 3];

#[test]
fn ovn_responders_same_frames_as_ovs_dpdk() {
    preflight();
    let dir = std::env::temp_dir().join(format!("vsw-ovnfd-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("in.pcap");
    let input = frames();
    write_pcap(&pcap, &input);
    let n = input.len() as u64;
    let ovs = replay(Kind::Ovs, "ovnfd", FLOWS, (&pcap, n), &PORTS);
    let vsw = replay(Kind::Vswitch, "ovnfd", FLOWS, (&pcap, n), &PORTS);
    let _ = std::fs::remove_dir_all(&dir);
    // What OVS did (so the comparison compares something): 6 ARP and 6
    // ICMP replies out of port 1, 6 UDP out of 2, 6 TCP and 7 ICMP out of 3.
    let counts: Vec<usize> = PORTS
        .iter()
        .map(|p| ovs.get(p).map_or(0, Vec::len))
        .collect();
    assert_eq!(counts, [12, 6, 13], "OVS's outputs per port");
    same_frames(&vsw, &ovs, &PORTS);
}
