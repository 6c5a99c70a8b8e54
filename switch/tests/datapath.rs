//! The per-core pipeline: every match field, priorities, rule changes,
//! timeouts, MAC learning, flooding, malformed frames, statistics.

mod common;
use common::*;
use switch::datapath::Datapath;
use switch::extract::Malformed;
use switch::frame::{Frame, VecFrame};
use switch::testutil::*;
use switch::verdict::{DropReason, Verdict};

/// `rule` (priority 10, output:2) over a catch-all (output:3): `hit` must
/// go to 2 and `miss` to 3.
fn field_case(rule: &str, hit: &[u8], miss: &[u8]) {
    let r = format!("priority=10,{rule},actions=output:2");
    let sw = switch_with(&[&r, "priority=0,actions=output:3"], &[1, 2, 3, 4]);
    let mut dp = sw.datapath(0);
    assert_eq!(send(&mut dp, 1, hit, 0).0, ports(&[2]), "{rule}: hit frame");
    assert_eq!(
        send(&mut dp, 1, miss, 0).0,
        ports(&[3]),
        "{rule}: miss frame"
    );
}

fn tcp(d: [u8; 4], dp: u16) -> Vec<u8> {
    tcp4([10, 0, 0, 1], d, 1000, dp, 0x10, 64)
}

#[test]
fn l2_fields() {
    let f = l2_frame(MAC_B, MAC_A);
    let other = l2_frame([2, 0, 0, 0, 0, 0x0c], [2, 0, 0, 0, 0, 0x0d]);
    field_case("dl_src=02:00:00:00:00:0a", &f, &other);
    field_case("dl_dst=02:00:00:00:00:0b", &f, &other);
    field_case("dl_dst=02:00:00:00:00:0b/ff:ff:ff:ff:ff:fe", &f, &other);
    field_case("dl_type=0x0806", &arp_frame(1, [1; 4], [2; 4]), &f);
    field_case("dl_vlan=0xffff", &f, &with_vlan(&f, 0x8100, 5));
    field_case(
        "dl_vlan=5",
        &with_vlan(&f, 0x8100, 5),
        &with_vlan(&f, 0x8100, 6),
    );
    field_case(
        "dl_vlan_pcp=5",
        &with_vlan(&f, 0x8100, 5 << 13),
        &with_vlan(&f, 0x8100, 4 << 13),
    );
    let qq = |outer, inner| with_vlan(&with_vlan(&f, 0x8100, inner), 0x88a8, outer);
    field_case("dl_vlan=100,dl_vlan2=200", &qq(100, 200), &qq(100, 201));
    field_case("vlan_tci=0x1000/0x1000", &with_vlan(&f, 0x8100, 0), &f);
}

#[test]
fn in_port_field() {
    let sw = switch_with(
        &[
            "priority=10,in_port=2,actions=output:4",
            "priority=0,actions=output:3",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let f = l2_frame(MAC_B, MAC_A);
    assert_eq!(send(&mut dp, 2, &f, 0).0, ports(&[4]));
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[3]));
}

#[test]
fn arp_fields() {
    let a = arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]);
    let reply = arp_frame(2, [10, 0, 0, 1], [10, 0, 0, 2]);
    field_case("arp,arp_op=1", &a, &reply);
    field_case(
        "arp,arp_spa=10.0.0.0/24",
        &a,
        &arp_frame(1, [10, 0, 1, 1], [10, 0, 0, 2]),
    );
    field_case(
        "arp,arp_tpa=10.0.0.2",
        &a,
        &arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 3]),
    );
    let mut other_sha = a.clone();
    other_sha[22 + 5] = 0x77;
    field_case("arp,arp_sha=02:00:00:00:00:0a", &a, &other_sha);
    let mut tha = a.clone();
    tha[32..38].copy_from_slice(&MAC_B);
    field_case("arp,arp_tha=02:00:00:00:00:0b", &tha, &a);
}

#[test]
fn ip_fields() {
    field_case(
        "ip,nw_dst=10.0.0.0/8",
        &tcp([10, 9, 9, 9], 80),
        &tcp([11, 0, 0, 1], 80),
    );
    field_case(
        "ip,nw_src=10.0.0.1",
        &tcp([1, 1, 1, 1], 80),
        &tcp4([10, 0, 0, 2], [1, 1, 1, 1], 1, 2, 0, 64),
    );
    field_case(
        "ip,nw_proto=6",
        &tcp([1, 1, 1, 1], 80),
        &udp4([1; 4], [2; 4], 1, 2),
    );
    field_case(
        "ip,nw_ttl=64",
        &tcp([1, 1, 1, 1], 80),
        &tcp4([10, 0, 0, 1], [1; 4], 1000, 80, 0x10, 63),
    );
    let mut ef = tcp([1; 4], 80);
    set_tos(&mut ef, (46 << 2) | 1);
    let mut ef2 = tcp([1; 4], 80);
    set_tos(&mut ef2, 46 << 2);
    field_case("ip,ip_dscp=46", &ef, &tcp([1; 4], 80));
    field_case("ip,ip_ecn=1", &ef, &ef2);
    let mut frag = udp4([1; 4], [2; 4], 1, 2);
    frag[20] = 0x20; // MF, offset 0: first fragment
    fix_ip_csum(&mut frag);
    let mut later = udp4([1; 4], [2; 4], 1, 2);
    later[21] = 0x10;
    fix_ip_csum(&mut later);
    field_case("ip,nw_frag=first", &frag, &later);
    field_case("ip,nw_frag=later", &later, &frag);
    field_case("ip,nw_frag=no", &udp4([1; 4], [2; 4], 1, 2), &frag);
}

#[test]
fn ipv6_fields() {
    let u = ipv6_frame(17, &[0, 1, 0, 2, 0, 8, 0, 0]);
    let mut other = u.clone();
    other[14 + 39] = 9;
    field_case("ipv6,ipv6_dst=fe80::2", &u, &other);
    field_case("ipv6,ipv6_src=fe80::/64", &u, &tcp([1; 4], 80));
    field_case(
        "udp6,tp_dst=2",
        &u,
        &ipv6_frame(17, &[0, 1, 0, 3, 0, 8, 0, 0]),
    );
    field_case(
        "icmp6,icmpv6_type=135",
        &ipv6_frame(58, &[135, 0, 0, 0]),
        &ipv6_frame(58, &[136, 0, 0, 0]),
    );
}

#[test]
fn l4_fields() {
    field_case("tcp,tp_dst=80", &tcp([1; 4], 80), &tcp([1; 4], 81));
    field_case(
        "tcp,tp_src=1000",
        &tcp([1; 4], 80),
        &tcp4([1; 4], [1; 4], 1001, 80, 0, 64),
    );
    field_case(
        "tcp,tp_dst=0x50/0xfff0",
        &tcp([1; 4], 0x5f),
        &tcp([1; 4], 0x60),
    );
    field_case(
        "udp,tp_dst=53",
        &udp4([1; 4], [2; 4], 9, 53),
        &udp4([1; 4], [2; 4], 53, 9),
    );
    let sctp = |d: u16| {
        let mut p = [0u8; 12];
        p[2..4].copy_from_slice(&d.to_be_bytes());
        ipv4_frame([1; 4], [2; 4], 132, &p)
    };
    field_case("sctp,tp_dst=9", &sctp(9), &sctp(10));
    field_case(
        "tcp,tcp_flags=+syn-ack",
        &tcp4([1; 4], [2; 4], 1, 2, 0x002, 64),
        &tcp4([1; 4], [2; 4], 1, 2, 0x012, 64),
    );
    field_case(
        "icmp,icmp_type=8,icmp_code=0",
        &ipv4_frame([1; 4], [2; 4], 1, &[8, 0, 0, 0]),
        &ipv4_frame([1; 4], [2; 4], 1, &[0, 0, 0, 0]),
    );
    field_case(
        "icmp,icmp_code=3",
        &ipv4_frame([1; 4], [2; 4], 1, &[3, 3, 0, 0]),
        &ipv4_frame([1; 4], [2; 4], 1, &[3, 1, 0, 0]),
    );
}

#[test]
fn priorities_and_overlapping_rules() {
    let sw = switch_with(
        &[
            "priority=100,ip,nw_dst=10.0.0.0/8,actions=output:1",
            "priority=200,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:2",
            "priority=150,ip,nw_dst=10.1.0.0/16,actions=output:3",
            "priority=50,actions=output:4",
        ],
        &[1, 2, 3, 4, 5],
    );
    let mut dp = sw.datapath(0);
    assert_eq!(send(&mut dp, 5, &tcp([10, 1, 0, 1], 80), 0).0, ports(&[2]));
    assert_eq!(send(&mut dp, 5, &tcp([10, 1, 0, 1], 22), 0).0, ports(&[3]));
    assert_eq!(send(&mut dp, 5, &tcp([10, 2, 0, 1], 22), 0).0, ports(&[1]));
    assert_eq!(send(&mut dp, 5, &tcp([11, 2, 0, 1], 80), 0).0, ports(&[4]));
    // again, now from the cache
    assert_eq!(send(&mut dp, 5, &tcp([10, 1, 0, 1], 80), 0).0, ports(&[2]));
    assert!(dp.counters().cache_hits >= 1);
    let dump = sw.table.dump(0);
    assert_eq!(dump[0].priority, 200);
    assert_eq!((dump[0].packets, dump[0].bytes), (2, 2 * 54));
}

#[test]
fn table_miss_drops_and_counts() {
    let sw = switch_with(&["priority=10,tcp,actions=output:2"], &[1, 2]);
    let mut dp = sw.datapath(0);
    assert_eq!(
        send(&mut dp, 1, &udp4([1; 4], [2; 4], 1, 2), 0).0,
        Verdict::Drop(DropReason::NoMatch)
    );
    assert_eq!(
        send(&mut dp, 1, &udp4([1; 4], [2; 4], 1, 2), 0).0,
        Verdict::Drop(DropReason::NoMatch)
    );
    let c = dp.counters();
    assert_eq!(c.drop_count(DropReason::NoMatch), 2);
    assert_eq!(
        (c.cache_hits, c.cache_misses, c.classifier_misses),
        (1, 1, 1)
    );
    assert_eq!(
        sw.totals().drop_count(DropReason::NoMatch),
        2,
        "published to the control side"
    );
}

#[test]
fn rule_add_and_delete_take_effect_on_cached_flows() {
    let sw = switch_with(&["priority=10,actions=output:2"], &[1, 2, 3]);
    let mut dp = sw.datapath(0);
    let f = tcp([10, 0, 0, 9], 80);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2])); // cached
    sw.table
        .add(
            "priority=20,tcp,tp_dst=80,actions=output:3"
                .parse()
                .unwrap(),
            0,
        )
        .unwrap();
    assert_eq!(
        send(&mut dp, 1, &f, 0).0,
        ports(&[3]),
        "cached flow sees the new rule"
    );
    let (m, _) = switch::rule::parse_match("tcp,tp_dst=80").unwrap();
    assert_eq!(sw.table.del(&m, None, true), 1);
    assert_eq!(send(&mut dp, 1, &f, 0).0, ports(&[2]));
    // non-strict delete of everything
    assert_eq!(sw.table.del(&switch::rule::Match::ANY, None, false), 1);
    assert_eq!(
        send(&mut dp, 1, &f, 0).0,
        Verdict::Drop(DropReason::NoMatch)
    );
}

#[test]
fn idle_and_hard_timeouts() {
    let sw = switch_with(&[], &[1, 2, 3]);
    sw.table
        .add(
            "priority=10,idle_timeout=2,tcp,actions=output:2"
                .parse()
                .unwrap(),
            0,
        )
        .unwrap();
    sw.table
        .add(
            "priority=10,hard_timeout=5,udp,actions=output:3"
                .parse()
                .unwrap(),
            0,
        )
        .unwrap();
    let mut dp = sw.datapath(0);
    let t = tcp([1; 4], 80);
    let u = udp4([1; 4], [2; 4], 1, 2);
    assert_eq!(send(&mut dp, 1, &t, 1500).0, ports(&[2]));
    assert_eq!(send(&mut dp, 1, &u, 1500).0, ports(&[3]));
    assert!(
        sw.table.expire(3000).is_empty(),
        "tcp used at 1.5s: idle until 3.5s"
    );
    let gone = sw.table.expire(3500);
    assert_eq!(gone.len(), 1);
    assert!(gone[0].rule.contains("idle_timeout=2"));
    assert_eq!(
        send(&mut dp, 1, &t, 3600).0,
        Verdict::Drop(DropReason::NoMatch)
    );
    assert_eq!(
        send(&mut dp, 1, &u, 4900).0,
        ports(&[3]),
        "traffic does not extend a hard timeout"
    );
    assert_eq!(sw.table.expire(5000).len(), 1);
    assert_eq!(
        send(&mut dp, 1, &u, 5001).0,
        Verdict::Drop(DropReason::NoMatch)
    );
}

const C: [u8; 6] = [2, 0, 0, 0, 0, 0x0c];

#[test]
fn normal_learning_flooding_moves_and_aging() {
    let sw = switch_with(&["priority=0,actions=NORMAL"], &[1, 2, 3, 4]);
    let mut dp = sw.datapath(0);
    // unknown unicast floods, not back to the ingress port
    assert_eq!(
        send(&mut dp, 1, &l2_frame(MAC_B, MAC_A), 0).0,
        ports(&[2, 3, 4])
    );
    // reply goes only to where A was learned
    assert_eq!(send(&mut dp, 2, &l2_frame(MAC_A, MAC_B), 10).0, ports(&[1]));
    assert_eq!(send(&mut dp, 1, &l2_frame(MAC_B, MAC_A), 20).0, ports(&[2]));
    // broadcast floods
    assert_eq!(
        send(&mut dp, 3, &l2_frame([0xff; 6], C), 30).0,
        ports(&[1, 2, 4])
    );
    // hairpin: B lives on 2, a frame to B arriving on 2 is dropped
    assert_eq!(
        send(&mut dp, 2, &l2_frame(MAC_B, C), 40).0,
        Verdict::Drop(DropReason::Hairpin)
    );
    // move: A now appears on port 4
    send(&mut dp, 4, &l2_frame(C, MAC_A), 50);
    assert_eq!(send(&mut dp, 2, &l2_frame(MAC_A, MAC_B), 60).0, ports(&[4]));
    let c = dp.counters();
    // moves: C (3 -> 2, in the hairpin frame) and A (1 -> 4)
    assert_eq!((c.fdb_learned, c.fdb_moved), (3, 2));
    assert_eq!(c.drop_count(DropReason::Hairpin), 1);
    let fdb = sw.fdb.entries(60);
    assert_eq!(
        fdb.iter().map(|e| (e.mac, e.port)).collect::<Vec<_>>(),
        vec![(MAC_A, 4), (MAC_B, 2), (C, 2)]
    );
    // aging (300 s default): A is forgotten and flooded again
    let late = 50 + 300_000;
    assert_eq!(
        send(&mut dp, 2, &l2_frame(MAC_A, MAC_B), late).0,
        ports(&[1, 3, 4])
    );
    // port removal forgets its MACs
    sw.port_del(2).unwrap();
    assert!(sw.fdb.entries(late).iter().all(|e| e.port != 2));
    assert_eq!(
        send(&mut dp, 1, &l2_frame(MAC_B, MAC_A), late).0,
        ports(&[3, 4])
    );
}

#[test]
fn normal_is_per_vlan() {
    let sw = switch_with(&["priority=0,actions=NORMAL"], &[1, 2, 3]);
    let mut dp = sw.datapath(0);
    send(&mut dp, 1, &with_vlan(&l2_frame(C, MAC_A), 0x8100, 10), 0);
    assert_eq!(
        send(
            &mut dp,
            2,
            &with_vlan(&l2_frame(MAC_A, MAC_B), 0x8100, 10),
            1
        )
        .0,
        ports(&[1])
    );
    assert_eq!(
        send(
            &mut dp,
            2,
            &with_vlan(&l2_frame(MAC_A, MAC_B), 0x8100, 20),
            2
        )
        .0,
        ports(&[1, 3])
    );
    assert_eq!(
        send(&mut dp, 2, &l2_frame(MAC_A, MAC_B), 3).0,
        ports(&[1, 3])
    );
}

#[test]
fn flood_with_no_other_port_is_a_counted_drop() {
    let sw = switch_with(&["actions=flood"], &[1]);
    let mut dp = sw.datapath(0);
    assert_eq!(
        send(&mut dp, 1, &l2_frame(MAC_B, MAC_A), 0).0,
        Verdict::Drop(DropReason::NoOutput)
    );
}

#[test]
fn malformed_frames_are_counted_and_switched_on_l2() {
    let sw = switch_with(
        &[
            "priority=100,ip,nw_dst=10.0.0.2,actions=output:4",
            "priority=50,dl_src=02:00:00:00:00:0a,actions=output:2",
            "priority=0,actions=NORMAL",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let good = tcp([10, 0, 0, 2], 80);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x42;
    let vlan_nothing = with_vlan(&good, 0x8100, 1)[..16].to_vec();
    let cases: Vec<(Vec<u8>, Malformed, Verdict)> = vec![
        (good[..30].to_vec(), Malformed::TruncatedIpv4, ports(&[2])),
        (bad_ihl, Malformed::BadIpv4Header, ports(&[2])),
        (vlan_nothing, Malformed::TruncatedVlan, ports(&[2])),
        (good[..10].to_vec(), Malformed::Runt, ports(&[2, 3, 4])), // catch-all NORMAL floods
        (good[..40].to_vec(), Malformed::TruncatedIpv4, ports(&[2])),
    ];
    for (f, why, want) in &cases {
        let before = dp.counters().malformed_count(*why);
        let (v, out) = send(&mut dp, 1, f, 0);
        assert_eq!(v, *want, "{why:?}");
        assert_eq!(&out, f, "bytes untouched");
        assert_eq!(
            dp.counters().malformed_count(*why),
            before + 1,
            "{why:?} counted"
        );
    }
    // the well-formed frame still goes by its L3 rule
    assert_eq!(send(&mut dp, 1, &good, 0).0, ports(&[4]));
}

#[test]
fn burst_of_32_mixed_and_tx_groups() {
    let sw = switch_with(
        &[
            "priority=10,tcp,tp_dst=80,actions=output:2,output:3",
            "priority=5,udp,actions=output:4",
            "priority=1,actions=drop",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let mut frames: Vec<VecFrame> = (0..40u16)
        .map(|i| match i % 3 {
            0 => VecFrame::new(&tcp([10, 0, 0, i as u8], 80)),
            1 => VecFrame::new(&udp4([1; 4], [2; 4], i, 53)),
            _ => VecFrame::new(&arp_frame(1, [1; 4], [2; 4])),
        })
        .collect();
    let mut vs = vec![Verdict::default(); 40];
    dp.process_burst(1, &mut frames, &mut vs, 0);
    for (i, v) in vs.iter().enumerate() {
        let want = match i % 3 {
            0 => ports(&[2, 3]),
            1 => ports(&[4]),
            _ => Verdict::Drop(DropReason::Action),
        };
        assert_eq!(*v, want, "frame {i}");
    }
    let mut g = switch::datapath::TxGroups::default();
    g.build(&vs[..32]);
    let groups: Vec<(u16, Vec<u8>)> = g.iter().map(|(p, ix)| (p, ix.to_vec())).collect();
    let tcp_ix: Vec<u8> = (0..32).filter(|i| i % 3 == 0).collect();
    let udp_ix: Vec<u8> = (0..32).filter(|i| i % 3 == 1).collect();
    assert_eq!(groups, vec![(2, tcp_ix.clone()), (3, tcp_ix), (4, udp_ix)]);
    let c = dp.counters();
    assert_eq!(c.rx_packets, 40);
    assert_eq!(c.tx_packets, 14 * 2 + 13);
    assert_eq!(c.drop_count(DropReason::Action), 13);
}

#[test]
fn empty_table_defaults_to_a_learning_bridge() {
    let sw = switch_with(&[], &[1, 2, 3]);
    sw.default_to_normal();
    sw.default_to_normal(); // idempotent
    assert_eq!(sw.table.dump(0).len(), 1);
    assert_eq!(sw.table.dump(0)[0].rule, "priority=0,actions=NORMAL");
    let mut dp = sw.datapath(0);
    let (v, _) = send(&mut dp, 1, &l2_frame(MAC_B, MAC_A), 0);
    assert_eq!(v, ports(&[2, 3]));
    assert_eq!(v.ports().collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(send(&mut dp, 3, &l2_frame(MAC_A, MAC_B), 0).0, ports(&[1]));
}

fn many_flows(
    sw: &std::sync::Arc<switch::switch::Switch>,
    n: u32,
) -> (switch::stats::Counters, Vec<Verdict>) {
    let mut dp = sw.datapath(0);
    let mut out = Vec::new();
    let mut frames: Vec<VecFrame> = Vec::with_capacity(32);
    let mut vs = [Verdict::default(); 32];
    for base in (0..n).step_by(32) {
        frames.clear();
        for f in base..base + 32 {
            let d = [10, (f >> 16) as u8, (f >> 8) as u8, f as u8];
            frames.push(VecFrame::new(&udp4([1, 1, 1, 1], d, (f % 7) as u16, 53)));
        }
        dp.process_burst(1, &mut frames, &mut vs, 0);
        out.extend_from_slice(&vs);
    }
    (*dp.counters(), out)
}

#[test]
fn cache_bypass_engages_only_when_it_cannot_pay_and_changes_no_verdict() {
    use switch::datapath::BYPASS_AFTER_INSERTS;
    use switch::switch::{Switch, SwitchConfig};
    let n = (BYPASS_AFTER_INSERTS + 4096) as u32;
    // Two masks (two subtables), and the union of the masks keeps every
    // destination address, so the flows stay distinct after masking.
    let rules = [
        "priority=10,ip,nw_dst=10.0.0.0/16,actions=output:2",
        "priority=0,ip,nw_dst=10.1.0.16,actions=output:3",
    ];
    let mk = |bypass: bool, extra: bool| {
        let sw = Switch::new(SwitchConfig {
            workers: 1,
            cache_entries: 1024,
            cache_bypass: bypass,
            ..Default::default()
        });
        for p in [1, 2, 3, 4] {
            sw.port_add(p).unwrap();
        }
        for r in rules {
            sw.table.add(r.parse().unwrap(), 0).unwrap();
        }
        if extra {
            // two more masks: 4 subtables, the cache stays on
            sw.table
                .add(
                    "priority=20,udp,tp_src=5,actions=output:4".parse().unwrap(),
                    0,
                )
                .unwrap();
            sw.table
                .add(
                    "priority=5,dl_src=02:00:00:00:00:0a,nw_src=9.9.9.9,ip,actions=drop"
                        .parse()
                        .unwrap(),
                    0,
                )
                .unwrap();
        }
        sw
    };
    let (with, v1) = many_flows(&mk(true, false), n);
    let (without, v2) = many_flows(&mk(false, false), n);
    assert_eq!(v1, v2, "bypass must not change any verdict");
    assert!(
        with.cache_bypassed > 0 && with.cache_bypassed < u64::from(n),
        "{with:?}"
    );
    assert_eq!(without.cache_bypassed, 0);
    assert_eq!(v1[0], ports(&[2]));
    assert_eq!(v1[0x1_0010], ports(&[3]), "10.1.0.16");
    assert_eq!(
        v1[66_000],
        Verdict::Drop(DropReason::NoMatch),
        "10.1.1.208 is outside 10.0/16"
    );
    let (four, v4) = many_flows(&mk(true, true), n);
    assert_eq!(
        four.cache_bypassed, 0,
        "4 subtables: classifier too costly to bypass the cache"
    );
    assert_eq!(v4[5], ports(&[4]));
}

/// Runs `frames` as one burst on `in_port`; verdicts and the bytes out.
fn burst(dp: &mut Datapath, in_port: u16, frames: &[Vec<u8>]) -> (Vec<Verdict>, Vec<Vec<u8>>) {
    let mut fs: Vec<VecFrame> = frames.iter().map(|f| VecFrame::new(f)).collect();
    let mut vs = vec![Verdict::default(); fs.len()];
    dp.process_burst(in_port, &mut fs, &mut vs, 0);
    (vs, fs.iter().map(|f| f.data().to_vec()).collect())
}

#[test]
fn flows_differing_only_in_unread_fields_share_one_cache_entry() {
    // The rules read dl_type and nw_dst only: 32 UDP flows to one address
    // are one masked key (one classifier lookup), and the per-rule
    // counters still see every frame.
    let sw = switch_with(
        &[
            "priority=10,ip,nw_dst=10.9.0.0/16,actions=drop",
            "priority=5,ip,nw_dst=10.1.0.0/16,actions=output:2",
        ],
        &[1, 2, 3],
    );
    let mut dp = sw.datapath(0);
    let frames: Vec<Vec<u8>> = (0..32u16)
        .map(|i| udp4([172, 16, 0, i as u8], [10, 1, 0, 1], 1000 + i, 53))
        .collect();
    let (vs, _) = burst(&mut dp, 1, &frames);
    assert!(vs.iter().all(|v| *v == ports(&[2])), "{vs:?}");
    let c = *dp.counters();
    assert_eq!((c.cache_misses, c.cache_hits), (1, 31));
    assert_eq!(c.tx_packets, 32);
    let fwd = sw
        .table
        .dump(0)
        .into_iter()
        .find(|r| r.priority == 5)
        .unwrap();
    assert_eq!((fwd.packets, fwd.bytes), (32, 32 * frames[0].len() as u64));

    // A rule that reads the UDP source port widens the mask: the flows are
    // told apart again and the new rule takes exactly its flow.
    sw.table
        .add(
            "priority=20,udp,tp_src=1007,actions=output:3"
                .parse()
                .unwrap(),
            0,
        )
        .unwrap();
    let (vs, _) = burst(&mut dp, 1, &frames);
    for (i, v) in vs.iter().enumerate() {
        let want = if i == 7 { ports(&[3]) } else { ports(&[2]) };
        assert_eq!(*v, want, "frame {i}");
    }
    assert_eq!(dp.counters().cache_misses - c.cache_misses, 32);
}

#[test]
fn runs_of_one_rule_count_every_frame_and_rewrite_every_frame() {
    // Mixed burst: runs of the same rule, a table miss inside a run, a
    // rewriting rule (no verdict reuse: each frame is decremented), and
    // a flood (counted per frame).
    let sw = switch_with(
        &[
            "priority=30,ip,nw_dst=10.0.0.1,actions=output:2",
            "priority=30,ip,nw_dst=10.0.0.2,actions=dec_ttl,output:3",
            "priority=30,ip,nw_dst=10.0.0.3,actions=flood",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let a = udp4([1, 1, 1, 1], [10, 0, 0, 1], 1, 2);
    let b = tcp4([1, 1, 1, 1], [10, 0, 0, 2], 1, 2, 0x10, 9);
    let f = udp4([1, 1, 1, 1], [10, 0, 0, 3], 1, 2);
    let miss = udp4([1, 1, 1, 1], [10, 0, 0, 9], 1, 2);
    let frames = vec![
        a.clone(),
        a.clone(),
        miss.clone(),
        a.clone(),
        b.clone(),
        b.clone(),
        b.clone(),
        f.clone(),
        f.clone(),
        a.clone(),
    ];
    let (vs, out) = burst(&mut dp, 1, &frames);
    let nomatch = Verdict::Drop(DropReason::NoMatch);
    let want = [
        ports(&[2]),
        ports(&[2]),
        nomatch,
        ports(&[2]),
        ports(&[3]),
        ports(&[3]),
        ports(&[3]),
        ports(&[2, 3, 4]),
        ports(&[2, 3, 4]),
        ports(&[2]),
    ];
    assert_eq!(vs, want);
    for (i, o) in out.iter().enumerate().take(7).skip(4) {
        assert_eq!(o[14 + 8], 8, "frame {i}: TTL 9 decremented once");
    }
    assert_eq!(out[0], a, "output-only rules leave frames alone");
    let c = *dp.counters();
    assert_eq!(c.tx_packets, 4 + 3 + 2 * 3);
    assert_eq!(c.drop_count(DropReason::NoMatch), 1);
    assert_eq!(c.flooded, 2);
    let dump = sw.table.dump(0);
    let count = |dst: &str| {
        let r = dump.iter().find(|r| r.rule.contains(dst)).unwrap();
        (r.packets, r.bytes)
    };
    assert_eq!(count("10.0.0.1"), (4, 4 * a.len() as u64));
    assert_eq!(count("10.0.0.2"), (3, 3 * b.len() as u64));
    assert_eq!(count("10.0.0.3"), (2, 2 * f.len() as u64));
}

#[test]
fn bursts_with_runs_decide_and_count_as_frame_by_frame() {
    // Random bursts (runs of equal frames, fragments, malformed and
    // non-IP frames, every kind of rule, passes of more than 32 frames)
    // through one datapath, and the same frames one at a time through
    // another: same verdicts, bytes, rule counters and core counters, in
    // each fragment mode.
    use switch::table::FragMode;
    let rules = [
        "priority=30,ip,nw_dst=10.0.0.1,actions=output:2",
        "priority=30,ip,nw_dst=10.0.0.2,actions=dec_ttl,output:3",
        "priority=30,ip,nw_dst=10.0.0.3,actions=flood",
        "priority=25,udp,tp_dst=53,actions=mod_nw_tos:16,output:4",
        "priority=20,ip,nw_dst=10.0.0.0/24,actions=drop",
        "priority=10,arp,actions=output:2",
    ];
    let frag = |f: &[u8], later: bool| {
        let mut f = f.to_vec();
        f[20] = 0x20; // MF
        if later {
            f[21] = 0x10; // offset 16 × 8
        }
        fix_ip_csum(&mut f);
        f
    };
    let pool: Vec<Vec<u8>> = vec![
        udp4([1, 1, 1, 1], [10, 0, 0, 1], 7, 9),
        udp4([1, 1, 1, 2], [10, 0, 0, 1], 7, 9),
        tcp4([1, 1, 1, 1], [10, 0, 0, 2], 1, 2, 0x10, 9),
        udp4([1, 1, 1, 1], [10, 0, 0, 3], 1, 2),
        udp4([1, 1, 1, 1], [10, 0, 0, 4], 1000, 53),
        udp4([1, 1, 1, 1], [10, 0, 0, 5], 1, 2),
        udp4([1, 1, 1, 1], [11, 0, 0, 1], 1, 2),
        frag(&udp4([1, 1, 1, 1], [10, 0, 0, 4], 1000, 53), false),
        frag(&udp4([1, 1, 1, 1], [10, 0, 0, 4], 1000, 53), true),
        frag(&udp4([1, 1, 1, 1], [10, 0, 0, 1], 7, 9), false),
        arp_frame(1, [1; 4], [2; 4]),
        ipv6_frame(17, &[0, 1, 0, 53, 0, 8, 0, 0]),
        with_vlan(&udp4([1, 1, 1, 1], [10, 0, 0, 1], 7, 9), 0x8100, 7),
        udp4([1, 1, 1, 1], [10, 0, 0, 1], 7, 9)[..30].to_vec(),
    ];
    let mut x = 0x0dd_ba11_cafe_f00du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for mode in [FragMode::Normal, FragMode::NxMatch, FragMode::Drop] {
        let (a, b) = (
            switch_with(&rules, &[1, 2, 3, 4]),
            switch_with(&rules, &[1, 2, 3, 4]),
        );
        a.table.set_frag_mode(mode);
        b.table.set_frag_mode(mode);
        let (mut da, mut db) = (a.datapath(0), b.datapath(0));
        for round in 0..300 {
            let n = 1 + (next() % 40) as usize;
            let mut frames: Vec<Vec<u8>> = Vec::with_capacity(n);
            for _ in 0..n {
                let f = match frames.last() {
                    Some(p) if next() % 3 != 0 => p.clone(),
                    _ => pool[(next() % pool.len() as u64) as usize].clone(),
                };
                frames.push(f);
            }
            let (vs, out) = burst(&mut da, 1, &frames);
            for (i, f) in frames.iter().enumerate() {
                let (v, o) = send(&mut db, 1, f, 0);
                assert_eq!(
                    (vs[i], &out[i]),
                    (v, &o),
                    "{mode:?} round {round} frame {i}"
                );
            }
        }
        let (ca, cb) = (*da.counters(), *db.counters());
        let strip = |c: switch::stats::Counters| {
            (
                c.rx_packets,
                c.rx_bytes,
                c.tx_packets,
                c.drops,
                c.malformed,
                c.flooded,
                c.classifier_misses,
            )
        };
        assert_eq!(strip(ca), strip(cb), "{mode:?}");
        let counts = |sw: &switch::switch::Switch| {
            sw.table
                .dump(0)
                .into_iter()
                .map(|r| (r.rule, r.packets, r.bytes))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(&a), counts(&b), "{mode:?}");
        assert!(
            counts(&a).iter().all(|r| r.1 > 0),
            "every rule hit: {:?}",
            counts(&a)
        );
    }
}
