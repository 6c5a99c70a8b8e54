//! The frame-by-frame differential against OVS-DPDK, both driven only as an
//! operator drives `ovs-vswitchd`: `ovs-vsctl` builds the bridge, the same
//! `ovs-ofctl -O OpenFlow13` flows file and groups go to both, the same pcap
//! is replayed once into both, and every output port must carry the same
//! frames (as a multiset: OVS reorders frames of different flows within a
//! burst), byte for byte; the flows' `n_packets`/`n_bytes` and the groups' and
//! buckets' counters must agree too, and every flow must be hit.
//!
//! ```text
//!  in.pcap (≈960 frames: v4/v6 TCP/UDP/ICMP, ARP request/reply, 802.1Q,
//!     │     QinQ (8100 and 88a8), TTL 1/2, DSCP/ECN, TCP flags, IPv4 and
//!     │     IPv6 fragments, IPv4 options, runts, truncated and bad-IHL
//!     │     IPv4, bad IP checksums, valid and zero L4 checksums,
//!     │     bcast/mcast MACs, 802.3 LLC — every frame twice, shuffled with
//!     │     a fixed seed, so the second copy hits the caches)
//!     ▼
//!  ofport 1 net_pcap rx ─► table 0 (in_port/eth_type/MAC masks → goto_table,
//!                                   group, output, drop)
//!                          table 1 (L3/L4, prefixes, port masks, frag match,
//!                                   resubmit(,2), dec_ttl, groups,
//!                                   write_actions, modify-after-output)
//!                          table 2 (VLAN push/pop/mod, MAC and DSCP rewrites;
//!                                   table-miss drops)
//!                          tables 3-5 (metadata, tcp_flags, ARP fields,
//!                                   802.1ad push, pop+resubmit, IPv6 hop
//!                                   limit and traffic class, clear_actions,
//!                                   dec_ttl after output, dead failover,
//!                                   IPv4/IPv6 address, port, ECN and TTL
//!                                   set-fields, in_port)
//!                          table 6 (ip_ecn, nw_ttl, PCP/VID 0 tags, IPv6
//!                                   dst, SCTP ports; malformed TCP/UDP/
//!                                   ICMP/ARP headers; TTL 0; 802.1ad
//!                                   alone; Ethernet padding; frames
//!                                   around the MTU; IPv6 extension
//!                                   chains; resubmit to table 1 and
//!                                   resubmit loops)
//!                          tables 8-9 (FLOOD, ALL, NORMAL; action-set order,
//!                                   group over output, later write_actions)
//!                          ─► ofports 2, 3, 4: net_pcap tx_pcap sinks
//!                             (and ofport 1's tx, for actions=in_port)
//!  groups: all (2 buckets, one rewriting; IPv6/port set-fields), indirect,
//!  fast_failover (a dead and a live bucket; all dead) — no select: its
//!  hash is implementation's own
//!
//!  OVS:     ovsdb-server + ovs-vswitchd-dpdk (unshare --net), bridge netdev, secure
//!  vswitch: ovsdb-server + vswitch run --ovsdb     (unshare --net), bridge netdev, secure
//! ```
//!
//! OVS is set up first, then vswitch, both from the test's thread (the
//! daemons get PR_SET_PDEATHSIG); each runs in its own network namespace
//! (the bridges' `br0` tap devices never meet) with its own run directory.
//! Order of configuration on both: bridge (fail_mode=secure: no NORMAL
//! flow), sink ports, `set-frags nx-match`, groups, flows, then the source
//! port (its replay starts when the port starts, so no frame meets an
//! empty table). OVS stays up until the comparison is done, so a mismatch
//! comes with `ovs-appctl ofproto/trace` of the differing inputs. About
//! 8 s (14 s with both cores busy). Divergences found so far are listed
//! at [`DIVERGENT_FRAMES`] and left out; `VSWITCH_DIFF_ALL=1` puts them
//! back; `VSWITCH_DIFF_TRACE=TEXT` prints OVS's trace and both outputs
//! for the input described by TEXT.

mod ovs_harness;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use ovs_harness::*;
const SINKS: [u32; 3] = [2, 3, 4];
/// Every port whose transmissions are captured and compared: the sinks,
/// and the source port 1 (which only `actions=in_port` sends to).
const CAPTURED: [u32; 4] = [1, 2, 3, 4];

// ---------------------------------------------------------------------------
// The flows and groups (one text, applied verbatim to both switches).
// ---------------------------------------------------------------------------

/// Groups, one `ovs-ofctl add-group` argument each. No SELECT group: its
/// bucket choice is a hash each implementation picks differently.
const GROUPS: &[&str] = &[
    "group_id=1,type=all,bucket=actions=output:2,bucket=actions=output:3",
    "group_id=2,type=indirect,bucket=actions=set_field:34->ip_dscp,output:4",
    // Port 9 does not exist: its bucket is not live, port 3's is.
    "group_id=3,type=fast_failover,bucket=watch_port:9,actions=output:9,bucket=watch_port:3,actions=output:3",
    "group_id=4,type=all,bucket=actions=mod_dl_dst:02:00:00:00:00:dd,output:2,bucket=actions=output:4",
    // Every bucket dead: the group drops.
    "group_id=6,type=fast_failover,bucket=watch_port:9,actions=output:9,bucket=watch_port:10,actions=output:10",
    "group_id=5,type=all,bucket=actions=mod_dl_src:02:00:00:00:00:c7,output:2,bucket=actions=set_field:18->ip_dscp,output:3",
    // IPv6 address and port rewrites in a bucket.
    "group_id=7,type=all,bucket=actions=set_field:fd00::77->ipv6_src,set_field:443->tcp_dst,output:2,bucket=actions=set_field:1->ip_ecn,output:3",
];

/// Divergences from OVS-DPDK 3.1 found by this test, left out of the
/// comparison (the frames and flow forms below) until vswitch matches OVS.
/// `VSWITCH_DIFF_ALL=1` puts every one back in (flows and groups are then
/// added one by one and what vswitch refuses is listed with the frame
/// differences and OVS's `ofproto/trace` of the differing inputs):
///
/// 1. Two outputs of the same bytes to one port: OVS sends the frame twice
///    (datapath actions `...,4,4`), vswitch once (`set_field:46->ip_dscp,
///    resubmit(,2),output:4` where table 2 also ends in `output:4`).
/// 2. `push_vlan` onto a QinQ frame (vlan-limit 2): OVS's output keeps
///    only two tags — the new one and the old outer one; the old inner tag
///    is lost (datapath actions `pop_vlan,pop_vlan,push_vlan(vid=100),
///    push_vlan(tpid=0x88a8,vid=99)`); vswitch keeps all three. (A push
///    onto a single tag agrees: `dl_dst=..:c4,vlan_tci=0x5000/0xf000`.)
/// 3. Match fields OVS accepts and vswitch refuses with
///    OFPBMC_BAD_FIELD: `ipv6_label`, `nd_target` (the 64-byte flow key
///    has no room for them).
/// 4. Frames longer than the 1500-byte MTU allows (over 1518 bytes: 1520
///    after a push_vlan onto 1516, 1522, 1600, 2000): OVS-DPDK drops them
///    at transmit (netdev-dpdk's max packet length); vswitch sends them.
///    1514 and 1518 agree.
///
/// Found earlier and fixed, now compared: IPv6 later fragments (`nw_proto`
/// 44), the IPv4 version nibble (not checked), the action set at a
/// table-miss, group chaining, `push_vlan` onto a tag (TCI 0), counters
/// of a fast-failover group without a live bucket, a TCP data offset past
/// the segment, TPID 0x9100 (not a VLAN), ARP opcodes above 255, and the
/// resubmit depth (only resubmits to the same or an earlier table count);
/// then the set-field types vswitch refused (`ip_src`, `ip_dst`,
/// `ipv6_src`/`ipv6_dst`, `tcp_src`/`udp_dst`…, `ip_ecn`, `mod_nw_ttl`:
/// table 3's `dl_dst=..:cf` rules and group 7) and `actions=all` dumped as
/// `FLOOD` (table 8), and `actions=in_port` (`..:cf`, ARP: port 1's
/// transmissions are captured too).
///
/// Settings, not bugs: both run fragment mode `nx-match` (below) and OVS
/// runs `other_config:vlan-limit=2` (its default, 1, parses only the outer
/// tag of a QinQ frame, so its dl_type is the inner TPID; vswitch always
/// parses two tags).
const DIVERGENT_FRAMES: &[&str] = &[
    // 4. Over the MTU.
    "to :da udp4 1522 bytes",
    "to :da udp4 1600 bytes",
    "to :da udp4 2000 bytes",
    "to :db udp4 1516 bytes, pushed to 1520",
];

/// Flows (and group buckets) that agree, and the forms that show
/// divergences 1-3.
const DIVERGENT_FLOWS: &[(&str, &str)] = &[
    // 2. push_vlan onto a QinQ frame (the single-tagged frame has its own
    //    rule at priority 110).
    (
        "dl_dst=02:00:00:00:00:c4,vlan_tci=0x0000/0x1000,actions=push_vlan",
        "dl_dst=02:00:00:00:00:c4,actions=push_vlan",
    ),
    // 3. Match fields OVS accepts and vswitch refuses (OFPBMC_BAD_FIELD).
    (
        "dl_dst=02:00:00:00:00:d3,udp6,ipv6_dst=fd00::2,actions=output:2",
        "dl_dst=02:00:00:00:00:d3,ipv6,ipv6_label=0x12345,actions=output:2",
    ),
    (
        "dl_dst=02:00:00:00:00:d3,icmp6,icmp_type=135,ipv6_dst=ff02::1:ff00:2,actions=output:3",
        "dl_dst=02:00:00:00:00:d3,icmp6,icmp_type=135,nd_target=fd00::2,actions=output:3",
    ),
    // 1. Two outputs of the same bytes to one port.
    (
        "resubmit(,2),mod_dl_src:02:00:00:00:00:99,output:4",
        "resubmit(,2),output:4",
    ),
];

fn all_cases() -> bool {
    std::env::var_os("VSWITCH_DIFF_ALL").is_some_and(|v| v == "1")
}

/// The flows file (`ovs-ofctl add-flows` syntax).
fn flows() -> String {
    divergent(FLOWS)
}

/// `text` with the divergent forms put back when `VSWITCH_DIFF_ALL=1`.
fn divergent(text: &str) -> String {
    let mut f = text.to_string();
    if all_cases() {
        for (agreed, divergent) in DIVERGENT_FLOWS {
            f = f.replace(agreed, divergent);
        }
    }
    f
}

const FLOWS: &str = "\
table=0,priority=400,in_port=1,dl_src=02:00:00:00:00:66,actions=drop
table=0,priority=350,in_port=1,dl_dst=02:00:00:00:00:c0/ff:ff:ff:ff:ff:f0,actions=goto_table:3
table=0,priority=300,in_port=1,arp,arp_op=1,actions=group:1
table=0,priority=300,in_port=1,arp,arp_op=2,actions=output:4
table=0,priority=260,in_port=1,dl_vlan=300,actions=goto_table:2
table=0,priority=250,in_port=1,ip,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=output:4
table=0,priority=200,in_port=1,ip,actions=goto_table:1
table=0,priority=200,in_port=1,ipv6,actions=goto_table:1
table=0,priority=100,in_port=1,vlan_tci=0x1000/0x1000,actions=goto_table:2
table=0,priority=50,in_port=1,dl_type=0x05ff,actions=output:3
table=1,priority=500,tcp,nw_dst=10.0.1.0/24,tp_dst=80,actions=set_field:46->ip_dscp,resubmit(,2),mod_dl_src:02:00:00:00:00:99,output:4
table=1,priority=450,tcp,tp_dst=0x1000/0xf000,actions=output:3
table=1,priority=400,udp,nw_src=10.0.0.0/255.255.0.0,tp_src=53,actions=group:2
table=1,priority=350,udp,tp_dst=5000,actions=dec_ttl,goto_table:2
table=1,priority=300,icmp,icmp_type=8,actions=dec_ttl,output:2
table=1,priority=290,icmp,actions=output:3
table=1,priority=280,ip,nw_frag=later,actions=output:4
table=1,priority=270,udp,tp_dst=53,actions=output:2,set_field:10->ip_dscp,output:3
table=1,priority=250,icmp6,icmp_type=128,actions=output:4
table=1,priority=250,tcp6,tp_dst=443,actions=mod_dl_dst:02:00:00:00:00:ee,output:2
table=1,priority=200,udp6,actions=dec_ttl,output:3
table=1,priority=150,ip,ip_dscp=10,actions=group:3
table=1,priority=100,ip,nw_src=172.16.0.0/12,actions=write_actions(output:4),goto_table:2
table=1,priority=10,ip,actions=goto_table:2
table=2,priority=100,dl_vlan=100,actions=mod_vlan_vid:200,output:2
table=2,priority=100,dl_vlan=300,actions=pop_vlan,output:3
table=2,priority=90,vlan_tci=0x0000/0x1000,tcp,actions=push_vlan:0x8100,mod_vlan_vid:7,output:4
table=2,priority=80,udp,dl_dst=02:00:00:00:00:bb,actions=mod_dl_src:02:00:00:00:00:aa,mod_dl_dst:02:00:00:00:00:cc,output:2,output:3
table=2,priority=70,dl_vlan=55,actions=group:4
table=2,priority=60,tcp,actions=output:2
table=3,priority=100,dl_dst=02:00:00:00:00:c1,ip,actions=write_metadata:0x5/0xff,goto_table:4
table=3,priority=100,dl_dst=02:00:00:00:00:c1,ipv6,actions=write_metadata:0x7/0xff,goto_table:4
table=3,priority=100,dl_dst=02:00:00:00:00:c2,tcp,tcp_flags=+syn-ack,actions=output:2
table=3,priority=90,dl_dst=02:00:00:00:00:c2,tcp,actions=output:3
table=3,priority=90,dl_dst=02:00:00:00:00:c2,tcp6,tcp_flags=+syn,actions=output:4
table=3,priority=100,dl_dst=02:00:00:00:00:c3,arp,arp_spa=10.0.0.1,arp_tha=00:00:00:00:00:00,actions=mod_dl_src:02:00:00:00:00:a3,output:2
table=3,priority=90,dl_dst=02:00:00:00:00:c3,arp,arp_tpa=10.0.0.0/24,arp_sha=02:00:00:00:00:01,actions=output:3
table=3,priority=100,dl_dst=02:00:00:00:00:c4,vlan_tci=0x0000/0x1000,actions=push_vlan:0x88a8,mod_vlan_vid:99,output:2
table=3,priority=110,dl_dst=02:00:00:00:00:c4,vlan_tci=0x5000/0xf000,actions=push_vlan:0x88a8,mod_vlan_vid:98,output:3
table=3,priority=100,dl_dst=02:00:00:00:00:c5,dl_vlan=100,actions=pop_vlan,resubmit(,5),output:3
table=3,priority=90,dl_dst=02:00:00:00:00:c5,actions=mod_vlan_pcp:6,output:4
table=3,priority=100,dl_dst=02:00:00:00:00:c6,ipv6,actions=dec_ttl,set_field:0x2a->ip_dscp,output:4
table=3,priority=100,dl_dst=02:00:00:00:00:c6,ip,actions=mod_nw_tos:32,output:4
table=3,priority=100,dl_dst=02:00:00:00:00:c7,ip,actions=group:5
table=3,priority=100,dl_dst=02:00:00:00:00:c8,ip,actions=group:6
table=3,priority=100,dl_dst=02:00:00:00:00:c9,udp,vlan_tci=0x0000/0x1000,actions=mod_vlan_vid:5,output:2
table=3,priority=100,dl_dst=02:00:00:00:00:c9,tcp,vlan_tci=0x0000/0x1000,actions=mod_vlan_pcp:3,output:3
table=3,priority=100,dl_dst=02:00:00:00:00:c9,udp6,actions=push_vlan:0x8100,set_field:4101->vlan_vid,output:4
table=3,priority=100,dl_dst=02:00:00:00:00:ca,tcp,actions=write_actions(output:3),write_metadata:0x15/0xff,goto_table:4
table=3,priority=100,dl_dst=02:00:00:00:00:cb,ip,actions=dec_ttl,output:3,dec_ttl,output:4
table=3,priority=100,dl_dst=02:00:00:00:00:cc,ip,actions=dec_ttl,dec_ttl,output:2
table=3,priority=100,dl_dst=02:00:00:00:00:cd,udp,actions=output:2,dec_ttl,output:3
table=3,priority=100,dl_dst=02:00:00:00:00:cd,tcp,actions=dec_ttl,output:3,write_actions(set_field:33->ip_dscp,output:4)
table=3,priority=100,dl_dst=02:00:00:00:00:ce,vlan_tci=0x1000/0x1000,actions=pop_vlan,resubmit(,5),output:2
table=3,priority=90,dl_dst=02:00:00:00:00:ce,actions=push_vlan:0x8100,push_vlan:0x88a8,mod_vlan_vid:11,output:3
table=3,priority=100,dl_dst=02:00:00:00:00:cf,udp,actions=set_field:5353->udp_dst,set_field:10.7.7.7->ip_src,output:2
table=3,priority=100,dl_dst=02:00:00:00:00:cf,tcp,actions=set_field:8080->tcp_src,set_field:10.7.7.8->ip_dst,output:3
table=3,priority=100,dl_dst=02:00:00:00:00:cf,udp6,actions=set_field:fd00::99->ipv6_dst,output:4
table=3,priority=100,dl_dst=02:00:00:00:00:cf,tcp6,actions=group:7
table=3,priority=100,dl_dst=02:00:00:00:00:cf,arp,actions=in_port,output:2
table=3,priority=90,dl_dst=02:00:00:00:00:cf,ip,actions=set_field:3->ip_ecn,mod_nw_ttl:5,output:4
table=4,priority=100,metadata=0x5/0xff,udp,actions=output:2
table=4,priority=100,metadata=0x7,actions=output:3
table=4,priority=90,metadata=0x5/0xff,actions=output:4,clear_actions
table=4,priority=80,tcp,actions=output:2
table=5,priority=100,dl_vlan=300,actions=mod_vlan_pcp:5,output:4
table=0,priority=350,in_port=1,dl_dst=02:00:00:00:00:d0/ff:ff:ff:ff:ff:f0,actions=goto_table:6
table=6,priority=100,dl_dst=02:00:00:00:00:d1,ip,ip_ecn=3,actions=output:2
table=6,priority=90,dl_dst=02:00:00:00:00:d1,ip,nw_ttl=1,actions=output:3
table=6,priority=80,dl_dst=02:00:00:00:00:d1,ip,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:d2,dl_vlan_pcp=3,dl_vlan=5,actions=output:2
table=6,priority=90,dl_dst=02:00:00:00:00:d2,vlan_tci=0x1000/0x1fff,actions=output:3
table=6,priority=80,dl_dst=02:00:00:00:00:d2,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:d3,udp6,ipv6_dst=fd00::2,actions=output:2
table=6,priority=100,dl_dst=02:00:00:00:00:d3,icmp6,icmp_type=135,ipv6_dst=ff02::1:ff00:2,actions=output:3
table=6,priority=80,dl_dst=02:00:00:00:00:d3,ipv6,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:d4,sctp,tp_dst=9,actions=output:2
table=6,priority=90,dl_dst=02:00:00:00:00:d4,ip,nw_proto=132,actions=output:3
table=6,priority=100,dl_dst=02:00:00:00:00:d5,tcp,tp_dst=80,actions=output:2
table=6,priority=90,dl_dst=02:00:00:00:00:d5,tcp,actions=output:3
table=6,priority=90,dl_dst=02:00:00:00:00:d5,udp,tp_dst=80,actions=output:3
table=6,priority=90,dl_dst=02:00:00:00:00:d5,icmp,icmp_type=0,icmp_code=0,actions=output:3
table=6,priority=80,dl_dst=02:00:00:00:00:d5,ip,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:d6,arp,arp_op=1,arp_spa=10.0.0.1,actions=output:2
table=6,priority=90,dl_dst=02:00:00:00:00:d6,arp,actions=output:3
table=6,priority=80,dl_dst=02:00:00:00:00:d6,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:d7,udp,actions=dec_ttl,output:2
table=6,priority=100,dl_dst=02:00:00:00:00:d7,ipv6,actions=dec_ttl,output:3
table=6,priority=100,dl_dst=02:00:00:00:00:d8,dl_vlan=5,actions=pop_vlan,output:3
table=6,priority=80,dl_dst=02:00:00:00:00:d8,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:d9,udp,actions=set_field:10->ip_dscp,dec_ttl,output:2
table=6,priority=100,dl_dst=02:00:00:00:00:da,actions=output:3
table=6,priority=100,dl_dst=02:00:00:00:00:db,vlan_tci=0x0000/0x1000,actions=push_vlan:0x8100,mod_vlan_vid:12,output:4
table=6,priority=100,dl_dst=02:00:00:00:00:dc,ipv6,nw_proto=59,actions=output:2
table=6,priority=100,dl_dst=02:00:00:00:00:dc,udp6,tp_dst=53,actions=dec_ttl,output:3
table=6,priority=90,dl_dst=02:00:00:00:00:dc,actions=output:4
table=6,priority=100,dl_dst=02:00:00:00:00:dd,ip,actions=mod_dl_dst:02:00:00:00:00:bb,resubmit(,1)
table=6,priority=100,dl_dst=02:00:00:00:00:de,actions=output:2,resubmit(,6)
table=6,priority=100,dl_dst=02:00:00:00:00:df,ip,actions=resubmit(,7),output:3
table=7,priority=100,ip,nw_ttl=64,actions=mod_dl_src:02:00:00:00:00:df,resubmit(,7)
table=7,priority=90,ip,actions=output:4
table=0,priority=350,in_port=1,dl_dst=02:00:00:00:00:e0/ff:ff:ff:ff:ff:f0,actions=goto_table:8
table=8,priority=100,dl_dst=02:00:00:00:00:e1,actions=flood
table=8,priority=100,dl_dst=02:00:00:00:00:e2,actions=all
table=8,priority=100,dl_dst=02:00:00:00:00:e3,actions=normal
table=8,priority=100,dl_dst=02:00:00:00:00:e4,actions=mod_dl_src:02:00:00:00:00:e4,flood
table=8,priority=100,dl_dst=02:00:00:00:00:e5,actions=write_actions(group:1,output:4)
table=8,priority=100,dl_dst=02:00:00:00:00:e6,ip,actions=write_actions(push_vlan:0x8100,set_field:4097->vlan_vid,output:4,dec_ttl)
table=8,priority=100,dl_dst=02:00:00:00:00:e7,ip,actions=write_actions(output:3,set_field:12->ip_dscp),goto_table:9
table=9,priority=100,udp,actions=write_actions(output:2)
table=9,priority=90,tcp,actions=set_field:02:00:00:00:00:e7->eth_src,write_actions(dec_ttl)
";

// ---------------------------------------------------------------------------
// Frames.
// ---------------------------------------------------------------------------

/// The replay's frames, each with a description.
type Frames = Vec<(String, Vec<u8>)>;

/// No tag for VLAN 0, else one 802.1Q tag with PCP 1.
fn tags_of(vid: u16) -> Vec<(u16, u16)> {
    if vid == 0 {
        vec![]
    } else {
        vec![(Q, vid | 0x2000)] // PCP 1
    }
}

/// An untagged IPv4 frame from `mac(1)`.
fn ip4(dst: [u8; 6], l3: &[u8]) -> Vec<u8> {
    eth(dst, mac(1), &[], 0x0800, l3)
}

/// An untagged IPv6 frame from `mac(1)`.
fn ip6(dst: [u8; 6], l3: &[u8]) -> Vec<u8> {
    eth(dst, mac(1), &[], 0x86dd, l3)
}

/// Table 6's IPv4 source and destination.
const T6_SRC4: [u8; 4] = [10, 6, 0, 1];
/// See [`T6_SRC4`].
const T6_DST4: [u8; 4] = [10, 6, 0, 2];

/// A frame from `mac(1)` to 02:..:`last` (table 6's destinations).
fn to(last: u8, tags: &[(u16, u16)], ty: u16, body: &[u8]) -> Vec<u8> {
    eth(mac(last), mac(1), tags, ty, body)
}

/// Table 6's UDP 7 → 53 datagram (valid checksum) in IPv4 with `ttl`, `tos`.
fn u4(ttl: u8, tos: u8) -> Vec<u8> {
    let l4 = l4_csum(&[T6_SRC4, T6_DST4].concat(), 17, udp(7, 53, 10));
    ipv4(T6_SRC4, T6_DST4, 17, ttl, tos, &l4)
}

/// The input frames with a description each, in replay order (every frame
/// twice, shuffled with a fixed seed), markers patched with their index.
fn frames() -> Vec<(String, Vec<u8>)> {
    let mut r = Lcg(0x05ee_d0f0_d1ff);
    let mut v = Frames::new();
    ipv4_frames(&mut r, &mut v);
    ipv6_frames(&mut v);
    arp_frames(&mut v);
    qinq_frames(&mut v);
    fragment_frames(&mut v);
    l2_frames(&mut v);
    dscp_ecn_frames(&mut v);
    malformed_frames(&mut v);
    table3_frames(&mut v);
    table6_field_frames(&mut v);
    table6_path_frames(&mut v);
    table6_header_frames(&mut v);

    if !all_cases() {
        v.retain(|(what, _)| !DIVERGENT_FRAMES.contains(&what.as_str()));
    }
    // Every frame twice (the second pass hits the caches), shuffled.
    let mut all: Vec<(String, Vec<u8>)> = v.iter().cloned().chain(v.iter().cloned()).collect();
    for i in (1..all.len()).rev() {
        let j = r.next() as usize % (i + 1);
        all.swap(i, j);
    }
    for (i, (_, f)) in all.iter_mut().enumerate() {
        if let Some(p) = find(f, MARK) {
            if p + 8 <= f.len() {
                f[p + 4..p + 6].copy_from_slice(&(i as u16).to_be_bytes());
                f[p + 6..p + 8].copy_from_slice(&(!(i as u16)).to_be_bytes());
            }
        }
    }
    all
}

/// IPv4 TCP (destinations × ports × VLANs, TTL and DSCP varied), UDP
/// (sources × ports, VLAN 0/100) and ICMP, untagged or tagged, from `a`.
fn ipv4_frames(r: &mut Lcg, v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    let c = mac(0xbc);
    // IPv4 TCP: destinations × ports × VLANs, TTL and DSCP varied.
    for dst in [[10, 0, 1, 5], [10, 0, 2, 9], [192, 168, 7, 1]] {
        for dport in [80u16, 0x1234, 22, 443] {
            for vid in [0u16, 100, 300] {
                let ttl = r.pick(&[64u8, 2, 1]);
                let dscp = r.pick(&[0u8, 10, 46]);
                let n = r.pick(&[0usize, 10, 26, 300]);
                v.push((
                    format!("tcp4 {dst:?}:{dport} vlan {vid} ttl {ttl} dscp {dscp}"),
                    eth(
                        r.pick(&[b, c]),
                        a,
                        &tags_of(vid),
                        0x0800,
                        &ipv4([10, 0, 0, 1], dst, 6, ttl, dscp << 2, &tcp(40000, dport, n)),
                    ),
                ));
            }
        }
    }
    // IPv4 UDP: sources × ports, VLAN 0/100.
    for src in [[10, 0, 5, 5], [172, 16, 3, 3], [192, 168, 9, 9]] {
        for sport in [53u16, 1234] {
            for dport in [5000u16, 53, 67] {
                for vid in [0u16, 100] {
                    let ttl = r.pick(&[64u8, 2, 1]);
                    let dscp = r.pick(&[0u8, 10, 46]);
                    v.push((
                        format!("udp4 {src:?}:{sport}->{dport} vlan {vid} ttl {ttl} dscp {dscp}"),
                        eth(
                            r.pick(&[b, c]),
                            a,
                            &tags_of(vid),
                            0x0800,
                            &ipv4(
                                src,
                                [10, 0, 0, 2],
                                17,
                                ttl,
                                dscp << 2 | 1,
                                &udp(sport, dport, 18),
                            ),
                        ),
                    ));
                }
            }
        }
    }
    // ICMP.
    for ty in [8u8, 0, 3] {
        for ttl in [1u8, 2, 64] {
            for vid in [0u16, 300] {
                v.push((
                    format!("icmp4 type {ty} ttl {ttl} vlan {vid}"),
                    eth(
                        b,
                        a,
                        &tags_of(vid),
                        0x0800,
                        &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 1, ttl, 0, &icmp(ty, 0, 16)),
                    ),
                ));
            }
        }
    }
}

/// IPv6 from `a`.
fn ipv6_frames(v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    // IPv6.
    for dport in [443u16, 80] {
        for hlim in [64u8, 1] {
            v.push((
                format!("tcp6 :{dport} hlim {hlim}"),
                ip6(b, &ipv6(v6(1), v6(2), 6, hlim, 0xb8, &tcp(5555, dport, 12))),
            ));
        }
    }
    for dport in [53u16, 5000] {
        for hlim in [1u8, 2, 64] {
            v.push((
                format!("udp6 :{dport} hlim {hlim}"),
                ip6(b, &ipv6(v6(1), v6(2), 17, hlim, 0, &udp(5353, dport, 8))),
            ));
        }
    }
    for ty in [128u8, 129, 135] {
        v.push((
            format!("icmp6 type {ty}"),
            ip6(b, &ipv6(v6(1), v6(2), 58, 255, 0, &icmp(ty, 0, 8))),
        ));
    }
    {
        // Hop-by-hop options header (PadN) before UDP.
        let mut hbh = vec![17, 0, 1, 4, 0, 0, 0, 0];
        hbh.extend(udp(7, 5000, 8));
        v.push((
            "udp6 behind hop-by-hop".into(),
            ip6(b, &ipv6(v6(1), v6(2), 0, 9, 0, &hbh)),
        ));
        // Fragment headers: first (offset 0, M) and later (offset 8).
        for (off_m, what) in [(0x0001u16, "first"), (0x0040u16, "later")] {
            let mut fh = vec![17, 0];
            fh.extend_from_slice(&off_m.to_be_bytes());
            fh.extend_from_slice(&[0, 0, 0, 9]);
            fh.extend(udp(53, 53, 8));
            v.push((
                format!("udp6 {what} fragment"),
                ip6(b, &ipv6(v6(1), v6(2), 44, 9, 0, &fh)),
            ));
        }
        v.push((
            "tcp6 in vlan 100".into(),
            eth(
                b,
                a,
                &tags_of(100),
                0x86dd,
                &ipv6(v6(3), v6(4), 6, 64, 0, &tcp(1, 443, 4)),
            ),
        ));
    }
}

/// ARP.
fn arp_frames(v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    // ARP.
    for op in [1u16, 2] {
        for vid in [0u16, 100, 55] {
            for tpa in [[10, 0, 0, 2], [10, 0, 0, 77]] {
                let dst = if op == 1 { BCAST } else { b };
                v.push((
                    format!("arp op {op} vlan {vid} tpa {tpa:?}"),
                    eth(
                        dst,
                        a,
                        &tags_of(vid),
                        0x0806,
                        &arp(op, a, [10, 0, 0, 1], if op == 1 { [0; 6] } else { b }, tpa),
                    ),
                ));
            }
        }
    }
}

/// QinQ.
fn qinq_frames(v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    // QinQ.
    for (outer, vid1, vid2) in [
        (AD, 100u16, 300u16),
        (Q, 100, 300),
        (AD, 300, 100),
        (AD, 55, 7),
        (Q, 42, 43),
    ] {
        let tags = [(outer, vid1), (Q, vid2 | 0x6000)];
        v.push((
            format!("qinq {outer:#x}/{vid1}/{vid2} udp4 :5000"),
            eth(
                b,
                a,
                &tags,
                0x0800,
                &ipv4([10, 0, 5, 5], [10, 0, 0, 2], 17, 9, 0, &udp(53, 5000, 4)),
            ),
        ));
        v.push((
            format!("qinq {outer:#x}/{vid1}/{vid2} tcp4 :80"),
            eth(
                b,
                a,
                &tags,
                0x0800,
                &ipv4([10, 0, 0, 1], [10, 0, 1, 9], 6, 9, 0, &tcp(9, 80, 4)),
            ),
        ));
        v.push((
            format!("qinq {outer:#x}/{vid1}/{vid2} arp"),
            eth(
                BCAST,
                a,
                &tags,
                0x0806,
                &arp(1, a, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]),
            ),
        ));
    }
}

/// IPv4 fragments: first fragments keep their ports (nx-match), later
/// ones carry bytes that look like ports 53/80 but are not.
fn fragment_frames(v: &mut Frames) {
    let b = mac(0xbb);
    // IPv4 fragments: first fragments keep their ports (nx-match), later
    // ones carry bytes that look like ports 53/80 but are not.
    for (proto, dport) in [(17u8, 53u16), (17, 5000), (6, 80), (6, 0x1234)] {
        let l4 = if proto == 17 {
            udp(53, dport, 30)
        } else {
            tcp(53, dport, 30)
        };
        v.push((
            format!("ipv4 first fragment proto {proto} :{dport}"),
            ip4(
                b,
                &ipv4_full([10, 0, 0, 1], [10, 0, 1, 5], proto, 9, 0, 0x2000, 0, &l4),
            ),
        ));
        for (frag, what) in [(0x2000u16 | 185, "middle"), (370, "last")] {
            v.push((
                format!("ipv4 {what} fragment proto {proto} bytes like :{dport}"),
                ip4(
                    b,
                    &ipv4_full([10, 0, 0, 1], [10, 0, 1, 5], proto, 9, 0, frag, 0, &l4),
                ),
            ));
        }
    }
}

/// Multicast and broadcast destinations, 802.3 / LLC frames, the drop
/// rule's source MAC.
fn l2_frames(v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    let c = mac(0xbc);
    // Multicast and broadcast destinations.
    for dst in [
        BCAST,
        [0x01, 0, 0x5e, 0, 0, 0xfb],
        [0x33, 0x33, 0, 0, 0, 1],
        [0x03, 0, 0, 0, 0, 1],
    ] {
        v.push((
            format!("udp4 to mac {dst:02x?}"),
            ip4(
                dst,
                &ipv4(
                    [10, 0, 0, 1],
                    [224, 0, 0, 251],
                    17,
                    1,
                    0,
                    &udp(5353, 5353, 20),
                ),
            ),
        ));
        v.push((
            format!("udp6 to mac {dst:02x?}"),
            ip6(dst, &ipv6(v6(1), v6(0xfb), 17, 1, 0, &udp(5353, 5353, 20))),
        ));
    }
    // 802.3 / LLC frames.
    for vid in [0u16, 55, 100] {
        let mut llc = vec![0x42, 0x42, 0x03];
        llc.extend(data(40));
        let len = llc.len() as u16;
        v.push((
            format!("802.3 llc vlan {vid}"),
            eth(c, a, &tags_of(vid), len, &llc),
        ));
    }
    // The drop rule's source MAC.
    for vid in [0u16, 100] {
        v.push((
            format!("from 02:..:66 vlan {vid}"),
            eth(
                b,
                mac(0x66),
                &tags_of(vid),
                0x0800,
                &ipv4([10, 0, 0, 1], [10, 0, 1, 5], 6, 64, 0, &tcp(1, 80, 0)),
            ),
        ));
    }
}

/// DSCP and ECN on several paths (group 3, group 2, write_actions).
fn dscp_ecn_frames(v: &mut Frames) {
    let b = mac(0xbb);
    let c = mac(0xbc);
    // DSCP and ECN on several paths (group 3, group 2, write_actions).
    for dscp in [10u8, 46, 0, 63] {
        for ecn in [0u8, 3] {
            v.push((
                format!("tcp4 :22 dscp {dscp} ecn {ecn}"),
                ip4(
                    b,
                    &ipv4(
                        [10, 0, 0, 1],
                        [10, 9, 9, 9],
                        6,
                        64,
                        dscp << 2 | ecn,
                        &tcp(7, 22, 5),
                    ),
                ),
            ));
            v.push((
                format!("udp4 172.16.1.1:9->9 dscp {dscp} ecn {ecn}"),
                ip4(
                    c,
                    &ipv4(
                        [172, 16, 1, 1],
                        [10, 9, 9, 9],
                        17,
                        64,
                        dscp << 2 | ecn,
                        &udp(9, 9, 5),
                    ),
                ),
            ));
        }
    }
}

/// Malformed frames.
fn malformed_frames(v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    // Malformed.
    let good_udp = ip4(
        b,
        &ipv4([10, 0, 5, 5], [10, 0, 0, 2], 17, 64, 0, &udp(53, 5000, 40)),
    );
    let good_tcp = ip4(
        b,
        &ipv4([10, 0, 0, 1], [10, 0, 1, 5], 6, 64, 0, &tcp(1, 80, 40)),
    );
    v.push(("runt: 20 bytes of udp4".into(), good_udp[..20].to_vec()));
    v.push(("runt: 13 bytes".into(), good_udp[..13].to_vec()));
    v.push(("runt: ethernet header only".into(), good_tcp[..14].to_vec()));
    v.push((
        "truncated ipv4: total length beyond the frame".into(),
        good_udp[..50].to_vec(),
    ));
    v.push((
        "truncated tcp4: 10 bytes of TCP header".into(),
        good_tcp[..14 + 20 + 10].to_vec(),
    ));
    v.push((
        "truncated tcp4 in vlan 100".into(),
        eth(b, a, &tags_of(100), 0x0800, &good_tcp[14..14 + 20 + 10]),
    ));
    for ihl in [4u8, 3, 15] {
        for f in [&good_udp, &good_tcp] {
            let mut m = f.clone();
            m[14] = 0x40 | ihl;
            m[24] = 0;
            m[25] = 0;
            let c = checksum(&m[14..34]);
            m[24..26].copy_from_slice(&c.to_be_bytes());
            v.push((format!("bad ihl {ihl} proto {}", m[23]), m));
        }
    }
    {
        let mut m = good_udp.clone();
        m[14] = 0x65; // version 6 in an IPv4 frame
        v.push(("ipv4 ethertype, version 6".into(), m));
        let mut m = good_tcp.clone();
        m[16] = 0;
        m[17] = 10; // total length below the header length
        v.push(("ipv4 total length 10".into(), m));
        // A wrong header checksum through dec_ttl (udp :5000) and DSCP
        // rewrites (tcp :80 to 10.0.1.0/24): both must update it the same way.
        let mut m = good_udp.clone();
        m[24] ^= 0x5a;
        v.push(("udp4 :5000 bad ip checksum".into(), m));
        let mut m = good_tcp.clone();
        m[25] ^= 0xa5;
        v.push(("tcp4 :80 bad ip checksum".into(), m));
        // IPv4 with options (valid, IHL 7).
        v.push((
            "tcp4 :80 ihl 7 (options)".into(),
            ip4(
                b,
                &ipv4_full([10, 0, 0, 1], [10, 0, 1, 5], 6, 5, 0, 0, 2, &tcp(1, 80, 10)),
            ),
        ));
        v.push((
            "udp4 :53 ihl 6 (options)".into(),
            ip4(
                b,
                &ipv4_full(
                    [10, 0, 0, 1],
                    [10, 0, 1, 5],
                    17,
                    5,
                    0,
                    0,
                    1,
                    &udp(1, 53, 10),
                ),
            ),
        ));
        v.push((
            "truncated ipv6".into(),
            ip6(b, &ipv6(v6(1), v6(2), 17, 9, 0, &udp(1, 53, 8))[..30]),
        ));
        v.push((
            "vlan tag with nothing after it".into(),
            eth(b, a, &[], Q, &[0x00]),
        ));
    }
}

/// Table 3's frames (destination MACs 02:..:c1-cf), with valid L4
/// checksums: rewrites of L3/L4 fields must update them alike.
fn table3_frames(v: &mut Frames) {
    let a = mac(1);
    let b = mac(0xbb);
    // Table 3's frames (destination MACs 02:..:c1-cf), with valid L4
    // checksums: rewrites of L3/L4 fields must update them alike.
    for last in 0xc1..=0xcfu8 {
        let d = mac(last);
        let (s4, d4) = ([10, 3, 0, 1], [10, 3, 0, 2]);
        let addrs4 = [s4, d4].concat();
        let addrs6 = [v6(1), v6(2)].concat();
        let tagged = |tags: &[(u16, u16)], l3: &[u8]| eth(d, a, tags, 0x0800, l3);
        let udp4 = |ttl: u8| {
            ipv4(
                s4,
                d4,
                17,
                ttl,
                0x20,
                &l4_csum(&addrs4, 17, udp(4000, 53, 24)),
            )
        };
        let tcp4 = |flags: u8, ttl: u8| {
            ipv4(
                s4,
                d4,
                6,
                ttl,
                0,
                &l4_csum(&addrs4, 6, tcp_flags(4001, 80, flags, 16)),
            )
        };
        let mut add = |what: &str, f: Vec<u8>| v.push((format!("to :{last:02x} {what}"), f));
        add("udp4 ttl 64", tagged(&[], &udp4(64)));
        add("udp4 ttl 1", tagged(&[], &udp4(1)));
        add("udp4 ttl 2", tagged(&[], &udp4(2)));
        add("tcp4 syn", tagged(&[], &tcp4(0x02, 64)));
        add("tcp4 syn|ack", tagged(&[], &tcp4(0x12, 64)));
        add("tcp4 fin|ack ttl 2", tagged(&[], &tcp4(0x11, 2)));
        add(
            "udp4 zero checksum",
            tagged(&[], &ipv4(s4, d4, 17, 64, 0, &udp(4002, 53, 8))),
        );
        add(
            "icmp4 ttl 2",
            tagged(&[], &ipv4(s4, d4, 1, 2, 0, &icmp(8, 0, 8))),
        );
        add("udp4 vlan 100", tagged(&[(Q, 100 | 0x4000)], &udp4(64)));
        add(
            "tcp4 qinq 100/300",
            tagged(&[(Q, 100), (Q, 300 | 0x2000)], &tcp4(0x10, 64)),
        );
        add(
            "udp4 qinq 88a8 100/300",
            tagged(&[(AD, 100), (Q, 300)], &udp4(9)),
        );
        add(
            "udp6 hlim 64",
            ip6(
                d,
                &ipv6(
                    v6(1),
                    v6(2),
                    17,
                    64,
                    0x28,
                    &l4_csum(&addrs6, 17, udp(4003, 53, 12)),
                ),
            ),
        );
        add(
            "tcp6 hlim 1",
            ip6(
                d,
                &ipv6(
                    v6(1),
                    v6(2),
                    6,
                    1,
                    0,
                    &l4_csum(&addrs6, 6, tcp_flags(4004, 80, 0x02, 12)),
                ),
            ),
        );
        add(
            "arp request",
            eth(
                d,
                a,
                &[],
                0x0806,
                &arp(1, a, [10, 0, 0, 1], [0; 6], [10, 0, 0, 9]),
            ),
        );
        add(
            "arp reply",
            eth(
                d,
                a,
                &[],
                0x0806,
                &arp(2, a, [10, 0, 0, 3], b, [10, 0, 0, 1]),
            ),
        );
    }
}

/// Table 6's frames (02:..:d1-d9): matches on less common fields.
fn table6_field_frames(v: &mut Frames) {
    let a = mac(1);
    let (s4, d4) = (T6_SRC4, T6_DST4);
    for (ecn, ttl) in [(3u8, 1u8), (0, 1), (1, 64), (3, 64)] {
        v.push((
            format!("to :d1 udp4 ecn {ecn} ttl {ttl}"),
            to(0xd1, &[], 0x0800, &u4(ttl, ecn)),
        ));
    }
    for tci in [0x6005u16, 0x6000, 0x0000, 0x2005] {
        v.push((
            format!("to :d2 udp4 tci {tci:#06x}"),
            to(0xd2, &[(Q, tci)], 0x0800, &u4(64, 0)),
        ));
    }
    let mut lab = ipv6(v6(1), v6(2), 17, 64, 0, &udp(7, 53, 10));
    lab[1] = (lab[1] & 0xf0) | 0x01;
    lab[2] = 0x23;
    lab[3] = 0x45;
    v.push((
        "to :d3 udp6 label 0x12345".into(),
        to(0xd3, &[], 0x86dd, &lab),
    ));
    v.push((
        "to :d3 udp6 label 0xabcde".into(),
        to(
            0xd3,
            &[],
            0x86dd,
            &ipv6(v6(1), v6(2), 17, 64, 0, &udp(7, 53, 10)),
        ),
    ));
    for (tgt, sll) in [(2u8, true), (3, true), (2, false)] {
        let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
        ns.extend_from_slice(&v6(tgt));
        if sll {
            ns.extend_from_slice(&[1, 1]);
            ns.extend_from_slice(&a);
        }
        ns.extend(data(0));
        v.push((
            format!("to :d3 icmp6 ns target fd00::{tgt} sll {sll}"),
            to(
                0xd3,
                &[],
                0x86dd,
                &ipv6(
                    v6(1),
                    [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, tgt],
                    58,
                    255,
                    0,
                    &ns,
                ),
            ),
        ));
    }
    for dport in [9u16, 10] {
        let mut sctp = vec![0u8; 12];
        sctp[0..2].copy_from_slice(&7u16.to_be_bytes());
        sctp[2..4].copy_from_slice(&dport.to_be_bytes());
        sctp.extend(data(8));
        v.push((
            format!("to :d4 sctp :{dport}"),
            to(0xd4, &[], 0x0800, &ipv4(s4, d4, 132, 64, 0, &sctp)),
        ));
    }
    let mut t = tcp(7, 80, 10);
    t[12] = 0x20; // data offset 2 words
    v.push((
        "to :d5 tcp4 :80 data offset 2".into(),
        to(0xd5, &[], 0x0800, &ipv4(s4, d4, 6, 64, 0, &t)),
    ));
    let mut t = tcp(7, 80, 10);
    t[12] = 0xf0; // data offset 15 words, beyond the packet
    v.push((
        "to :d5 tcp4 :80 data offset 15".into(),
        to(0xd5, &[], 0x0800, &ipv4(s4, d4, 6, 64, 0, &t)),
    ));
    v.push((
        "to :d5 tcp4 :80 12-byte header".into(),
        to(
            0xd5,
            &[],
            0x0800,
            &ipv4(s4, d4, 6, 64, 0, &tcp(7, 80, 0)[..12]),
        ),
    ));
    v.push((
        "to :d5 tcp4 :80 4-byte header".into(),
        to(
            0xd5,
            &[],
            0x0800,
            &ipv4(s4, d4, 6, 64, 0, &tcp(7, 80, 0)[..4]),
        ),
    ));
    v.push((
        "to :d5 udp4 :80 4-byte header".into(),
        to(
            0xd5,
            &[],
            0x0800,
            &ipv4(s4, d4, 17, 64, 0, &udp(7, 80, 0)[..4]),
        ),
    ));
    v.push((
        "to :d5 icmp4 type 8, 2 bytes".into(),
        to(0xd5, &[], 0x0800, &ipv4(s4, d4, 1, 64, 0, &[8, 0])),
    ));
    v.push((
        "to :d5 icmp4 type 0, 1 byte".into(),
        to(0xd5, &[], 0x0800, &ipv4(s4, d4, 1, 64, 0, &[0])),
    ));
    let good = arp(1, a, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]);
    let mut bad_htype = good.clone();
    bad_htype[1] = 6;
    let mut bad_plen = good.clone();
    bad_plen[5] = 16;
    let mut bad_ptype = good.clone();
    bad_ptype[2] = 0x86;
    bad_ptype[3] = 0xdd;
    for (what, body) in [
        ("good", good.clone()),
        ("htype 6", bad_htype),
        ("plen 16", bad_plen),
        ("ptype 86dd", bad_ptype),
        ("truncated to 20 bytes", good[..20].to_vec()),
        ("truncated to 8 bytes", good[..8].to_vec()),
    ] {
        v.push((format!("to :d6 arp {what}"), to(0xd6, &[], 0x0806, &body)));
    }
    v.push((
        "to :d5 tcp4 :80".into(),
        to(0xd5, &[], 0x0800, &ipv4(s4, d4, 6, 64, 0, &tcp(7, 80, 10))),
    ));
    v.push((
        "to :d5 udp4 :80".into(),
        to(0xd5, &[], 0x0800, &ipv4(s4, d4, 17, 64, 0, &udp(7, 80, 10))),
    ));
    v.push(("to :d6 udp4".into(), to(0xd6, &[], 0x0800, &u4(64, 0))));
    for op in [0x0101u16, 0x0201, 0x0100] {
        v.push((
            format!("to :d6 arp op {op:#06x}"),
            to(
                0xd6,
                &[],
                0x0806,
                &arp(op, a, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]),
            ),
        ));
    }
}

/// Table 6's frames around the MTU, resubmit loops, FLOOD, ALL and NORMAL.
fn table6_path_frames(v: &mut Frames) {
    let (s4, d4) = (T6_SRC4, T6_DST4);
    // Frame sizes around the 1500-byte MTU (both sides' ports have it).
    for size in [1514usize, 1518, 1522, 1600, 2000] {
        let mut f = to(0xda, &[], 0x0800, &u4(64, 0));
        f.resize(size, 0x5a);
        let tot = (size - 14) as u16;
        f[16..18].copy_from_slice(&tot.to_be_bytes());
        f[24] = 0;
        f[25] = 0;
        let c = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        v.push((format!("to :da udp4 {size} bytes"), f));
    }
    for size in [1514usize, 1516] {
        let mut f = to(0xdb, &[], 0x0800, &u4(64, 0));
        f.resize(size, 0x5a);
        v.push((
            format!("to :db udp4 {size} bytes, pushed to {}", size + 4),
            f,
        ));
    }
    // Resubmit back to table 1 (goto_table inside it), an endless
    // resubmit loop, and a resubmit into a table that resubmits itself.
    for last in [0xddu8, 0xde, 0xdf] {
        v.push((
            format!("to :{last:02x} udp4 :5000"),
            to(
                last,
                &[],
                0x0800,
                &ipv4(s4, d4, 17, 64, 0, &udp(53, 5000, 8)),
            ),
        ));
        v.push((
            format!("to :{last:02x} tcp4 :80 ttl 9"),
            to(
                last,
                &[],
                0x0800,
                &ipv4(s4, [10, 0, 1, 7], 6, 9, 0, &tcp(9, 80, 8)),
            ),
        ));
    }
    // FLOOD, ALL and NORMAL (to an unknown MAC: flooded).
    for last in [0xe1u8, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7] {
        v.push((
            format!("to :{last:02x} udp4"),
            to(last, &[], 0x0800, &u4(64, 0)),
        ));
        v.push((
            format!("to :{last:02x} udp4 vlan 100"),
            to(last, &[(Q, 100)], 0x0800, &u4(64, 0)),
        ));
        v.push((
            format!("to :{last:02x} tcp4 ttl 1"),
            to(last, &[], 0x0800, &ipv4(s4, d4, 6, 1, 0, &tcp(7, 80, 4))),
        ));
    }
}

/// Table 6's IPv6 extension header chains, malformed L4/ARP headers behind
/// valid IP, padding and trailing bytes.
fn table6_header_frames(v: &mut Frames) {
    let (s4, d4) = (T6_SRC4, T6_DST4);
    let addrs4 = [s4, d4].concat();
    // IPv6 extension header chains.
    let x = |next: u8, rest: Vec<u8>| {
        let mut h = vec![next, 0, 1, 4, 0, 0, 0, 0];
        h.extend(rest);
        h
    };
    let u6 = udp(7, 53, 8);
    for (what, first, body) in [
        ("no next header", 59u8, data(4)),
        ("hbh, dest opts, udp", 0, x(60, x(17, u6.clone()))),
        ("routing (type 0, segleft 0), udp", 43, {
            let mut h = vec![17, 0, 0, 0, 0, 0, 0, 0];
            h.extend(u6.clone());
            h
        }),
        ("dest opts, no next header", 60, x(59, data(4))),
        ("hbh truncated", 0, vec![17, 0, 1]),
        ("esp", 50, data(12)),
    ] {
        v.push((
            format!("to :dc ipv6 {what}"),
            to(0xdc, &[], 0x86dd, &ipv6(v6(1), v6(2), first, 9, 0, &body)),
        ));
    }
    v.push((
        "to :d8 88a8 vid 6 udp4".into(),
        to(0xd8, &[(AD, 6)], 0x0800, &u4(64, 0)),
    ));
    v.push(("to :d7 udp4 ttl 0".into(), to(0xd7, &[], 0x0800, &u4(0, 0))));
    v.push((
        "to :d7 udp6 hlim 0".into(),
        to(
            0xd7,
            &[],
            0x86dd,
            &ipv6(v6(1), v6(2), 17, 0, 0, &udp(7, 53, 10)),
        ),
    ));
    v.push((
        "to :d7 udp6 hlim 2".into(),
        to(
            0xd7,
            &[],
            0x86dd,
            &ipv6(v6(1), v6(2), 17, 2, 0, &udp(7, 53, 10)),
        ),
    ));
    v.push((
        "to :d8 88a8 vid 5 udp4".into(),
        to(0xd8, &[(AD, 5)], 0x0800, &u4(64, 0)),
    ));
    v.push((
        "to :d8 9100 vid 5 udp4".into(),
        to(0xd8, &[(0x9100, 5)], 0x0800, &u4(64, 0)),
    ));
    v.push((
        "to :d8 8100 vid 5, 88a8 vid 6 udp4".into(),
        to(0xd8, &[(Q, 5), (AD, 6)], 0x0800, &u4(64, 0)),
    ));
    // Small UDP padded to 60 bytes with non-zero padding, and an IP
    // total length shorter than the frame.
    let mut small = to(
        0xd9,
        &[],
        0x0800,
        &ipv4(s4, d4, 17, 64, 0, &l4_csum(&addrs4, 17, udp(7, 53, 0))),
    );
    small.resize(60, 0xee);
    v.push(("to :d9 udp4 padded to 60 with 0xee".into(), small));
    let mut long = to(0xd9, &[], 0x0800, &u4(64, 0));
    long.extend_from_slice(&[0xab; 30]);
    v.push(("to :d9 udp4 with 30 bytes after the IP packet".into(), long));
}

/// What one switch made of the replay.
struct Outcome {
    /// Output frames per sink port, in capture order.
    out: BTreeMap<u32, Vec<Vec<u8>>>,
    flows: String,
    groups: String,
    rx: u64,
    /// The sinks' tx counters.
    tx: BTreeMap<u32, u64>,
    /// Flows and groups the switch refused (`VSWITCH_DIFF_ALL=1` only).
    refused: Vec<String>,
}

/// Runs the whole sequence on one switch.
fn run(kind: Kind, input: &Path, n: u64) -> Result<(Outcome, Rig), String> {
    let mut rig = Rig::new(kind, "diff");
    rig.start()?;
    for p in SINKS {
        rig.add_port(
            p,
            &format!("net_pcap{p},tx_pcap={}", rig.sink(p).display()),
            &[],
        )?;
    }
    // OVS's default fragment handling is "normal" (no L4 ports in any
    // fragment); vswitch implements only "nx-match" (first fragments keep
    // their ports, later ones have none), so both run nx-match. vswitch
    // refuses any other mode and accepts this one.
    rig.ofctl(&["set-frags", "br0", "nx-match"])?;
    let text = self::flows();
    let mut refused = Vec::new();
    if all_cases() {
        // One by one, so that what vswitch refuses is reported with the
        // frame differences instead of stopping the run.
        let add = |what: &str, arg: &str, refused: &mut Vec<String>| -> Result<(), String> {
            let o = rig
                .command("ovs-ofctl")
                .args(["-O", "OpenFlow13", what, "br0", arg])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| format!("ovs-ofctl: {e}"))?;
            if !o.status.success() {
                let e = format!(
                    "{what} {arg}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                if kind == Kind::Ovs {
                    return Err(rig.failure(&e));
                }
                refused.push(e);
            }
            Ok(())
        };
        for g in GROUPS {
            add("add-group", &divergent(g), &mut refused)?;
        }
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            add("add-flow", l, &mut refused)?;
        }
    } else {
        for g in GROUPS {
            rig.ofctl(&["add-group", "br0", g])?;
        }
        let flows = rig.path("flows.txt");
        fs::write(&flows, &text).unwrap();
        rig.ofctl(&["add-flows", "br0", &flows])?;
    }
    let installed = rig.ofctl(&["dump-flows", "br0"])?;
    let want = text.lines().filter(|l| !l.trim().is_empty()).count()
        - refused
            .iter()
            .filter(|r| r.starts_with("add-flow "))
            .count();
    if installed.lines().filter(|l| l.contains("actions=")).count() != want {
        return Err(rig.failure(&format!(
            "{want} flows added, dump-flows shows:\n{installed}"
        )));
    }
    // The source last: its replay starts when the port starts.
    rig.add_source(input)?;
    let (rx, tx) = rig.wait_replayed(n, &CAPTURED)?;
    let flows = rig.ofctl(&["dump-flows", "br0"])?;
    let groups = rig.ofctl(&["dump-group-stats", "br0"]).unwrap_or_default();
    let out = rig.captures(&tx)?;
    Ok((
        Outcome {
            out,
            flows,
            groups,
            rx,
            tx,
            refused,
        },
        rig,
    ))
}

/// Describes where the two sides' captures of one port differ.
fn port_diff(
    port: u32,
    input: &[(String, Vec<u8>)],
    ovs: &[Vec<u8>],
    vsw: &[Vec<u8>],
) -> Option<(String, Vec<u16>)> {
    let mut a = ovs.to_vec();
    let mut b = vsw.to_vec();
    a.sort();
    b.sort();
    if a == b {
        return None;
    }
    // Multiset difference.
    let mut only_ovs = Vec::new();
    let mut only_vsw = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_ovs.push(x.clone());
                i += 1;
            }
            (Some(_), Some(y)) => {
                only_vsw.push(y.clone());
                j += 1;
            }
            (Some(x), None) => {
                only_ovs.push(x.clone());
                i += 1;
            }
            (None, Some(y)) => {
                only_vsw.push(y.clone());
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    let show = |side: &str, v: &[Vec<u8>], all: &[Vec<u8>]| -> String {
        let mut s = format!("  {} frame(s) only from {side}:\n", v.len());
        for f in v.iter().take(if all_cases() { 400 } else { 40 }) {
            let pos = all.iter().position(|g| g == f).unwrap_or(usize::MAX);
            let from = match origin(f) {
                Some(k) if (k as usize) < input.len() => {
                    format!(
                        "input #{k} \"{}\"\n      in:  {}",
                        input[k as usize].0,
                        hex(&input[k as usize].1)
                    )
                }
                _ => "input unknown (no marker)".into(),
            };
            s += &format!(
                "    capture index {pos}, from {from}\n      out: {}\n",
                hex(f)
            );
        }
        s
    };
    let from = only_ovs
        .iter()
        .chain(&only_vsw)
        .filter_map(|f| origin(f))
        .filter(|&k| (k as usize) < input.len())
        .collect();
    Some((
        format!(
            "port {port}: OVS sent {}, vswitch {} frames\n{}{}",
            ovs.len(),
            vsw.len(),
            show("OVS-DPDK", &only_ovs, ovs),
            show("vswitch", &only_vsw, vsw)
        ),
        from,
    ))
}

/// `dump-group-stats` without durations, sorted.
fn group_counters(dump: &str) -> Vec<String> {
    let mut v: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("group_id="))
        .map(|l| {
            l.trim()
                .split(',')
                .filter(|f| !f.starts_with("duration="))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn same_frames_out_as_ovs_dpdk() {
    preflight();
    let t0 = Instant::now();
    let input = frames();
    let dir = netns::TempDir::new(&format!("vsw-diff-in-{}", std::process::id()));
    let pcap = dir.join("in.pcap");
    write_pcap(&pcap, &input);
    let n = input.len() as u64;

    // One after the other, from this thread: the daemons die with the
    // thread that spawned them (PR_SET_PDEATHSIG), and OVS must stay up
    // for ofproto/trace until the comparison is done.
    let ovs = run(Kind::Ovs, &pcap, n);
    let vsw = run(Kind::Vswitch, &pcap, n);
    let (ovs, ovs_rig) = ovs.unwrap_or_else(|e| panic!("{e}"));
    let (vsw, _vsw_rig) = vsw.unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{} frames in; OVS rx {} vswitch rx {}; tx counters OVS {:?} vswitch {:?}; captured per port OVS {:?} vswitch {:?}; {:.1} s",
        n,
        ovs.rx,
        vsw.rx,
        ovs.tx.values().collect::<Vec<_>>(),
        vsw.tx.values().collect::<Vec<_>>(),
        ovs.out.values().map(Vec::len).collect::<Vec<_>>(),
        vsw.out.values().map(Vec::len).collect::<Vec<_>>(),
        t0.elapsed().as_secs_f64()
    );

    let mut report = String::new();
    for r in &vsw.refused {
        report += &format!("vswitch refused what OVS accepted: {r}\n");
    }
    if ovs.rx != n || vsw.rx != n {
        report += &format!(
            "rx counters: {n} frames replayed, OVS received {}, vswitch {} \
             (OVS replays after the n_rxq_desc change restarts the port)\n",
            ovs.rx, vsw.rx
        );
    }
    let mut involved = Vec::new();
    for p in CAPTURED {
        if let Some((d, from)) = port_diff(p, &input, &ovs.out[&p], &vsw.out[&p]) {
            report += &d;
            involved.extend(from);
        }
    }
    let (co, cv) = (counters(&ovs.flows), counters(&vsw.flows));
    // VSWITCH_DIFF_TRACE=TEXT: OVS's trace of the first input whose
    // description contains TEXT, and what each side sent for it.
    if let Some(want) = std::env::var_os("VSWITCH_DIFF_TRACE") {
        let want = want.to_string_lossy();
        if let Some(k) = input.iter().position(|(what, _)| what.contains(&*want)) {
            let (what, f) = &input[k];
            eprintln!(
                "--- ofproto/trace of input #{k} \"{what}\":\n{}",
                ovs_rig.trace(f)
            );
            for (side, o) in [("OVS-DPDK", &ovs), ("vswitch", &vsw)] {
                for (p, frames) in &o.out {
                    for g in frames.iter().filter(|g| origin(g) == Some(k as u16)) {
                        eprintln!("{side} port {p}: {}", hex(g));
                    }
                }
            }
        }
    }
    if !report.is_empty() {
        // OVS's trace of the first few differing inputs (one per kind).
        let mut traces = String::new();
        let mut seen = Vec::new();
        for k in involved {
            let (what, f) = &input[k as usize];
            if seen.contains(what) || seen.len() >= if all_cases() { 64 } else { 8 } {
                continue;
            }
            seen.push(what.clone());
            traces += &format!(
                "--- ovs-appctl ofproto/trace of input #{k} \"{what}\":\n{}\n",
                ovs_rig.trace(f)
            );
        }
        panic!(
            "vswitch and OVS-DPDK differ:\n{report}\n--- OVS-DPDK flows (n_packets):\n{co}\n--- vswitch flows (n_packets):\n{cv}\n--- OVS groups:\n{}\n--- vswitch groups:\n{}\n{traces}",
            ovs.groups, vsw.groups
        );
    }
    // Same frames out: the rules' counters agree too.
    let mut a: Vec<&str> = co.lines().collect();
    let mut b: Vec<&str> = cv.lines().collect();
    a.sort();
    b.sort();
    if a != b {
        // Multiset difference (a line may appear twice on one side).
        let only = |x: &[&str], y: &[&str]| -> String {
            let mut y = y.to_vec();
            x.iter()
                .filter(|l| match y.iter().position(|m| m == *l) {
                    Some(i) => {
                        y.remove(i);
                        false
                    }
                    None => true,
                })
                .map(|l| format!("  {l}\n"))
                .collect()
        };
        panic!(
            "flow counters (n_packets) differ, the frames agree:\n--- OVS-DPDK:\n{}--- vswitch:\n{}\nfirst differing pair (sorted): {:?}",
            only(&a, &b),
            only(&b, &a),
            a.iter().zip(&b).find(|(x, y)| x != y)
        );
    }
    assert!(
        ovs.out.values().all(|v| !v.is_empty()),
        "a sink port got nothing: the flows do not exercise it"
    );
    // Every flow is exercised.
    let idle: Vec<&str> = a
        .iter()
        .copied()
        .filter(|l| l.trim_start().starts_with("0/"))
        .collect();
    assert!(
        idle.is_empty(),
        "flows no frame reaches:\n{}",
        idle.join("\n")
    );
    // The groups' and buckets' counters agree too.
    assert_eq!(
        group_counters(&ovs.groups),
        group_counters(&vsw.groups),
        "group counters differ:\n--- OVS-DPDK:\n{}\n--- vswitch:\n{}",
        ovs.groups,
        vsw.groups
    );
}
