//! IP address, L4 port, ECN and TTL rewrites (`mod_nw_src`, `set_field:
//! ...->ipv6_dst`, `set_field:...->tcp_src`, `mod_nw_ttl`, ...), output to
//! the ingress port and `ALL`: bytes and checksums out, text round trip,
//! and later tables seeing the rewritten fields.

mod common;
use common::*;
use switch::action::{Action, L4Proto};
use switch::testutil::*;
use switch::verdict::{DropReason, Verdict};
use switch::wire::ipv4::Ipv4Packet;

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Internet checksum of an L4 segment with its pseudo-header (checksum
/// field included: 0 when the stored checksum is right).
fn l4_check(addrs: &[u8], proto: u8, l4: &[u8]) -> u16 {
    fold(sum16(addrs) + u32::from(proto) + l4.len() as u32 + sum16(l4))
}

/// `f` (untagged IPv4) with a correct TCP (offset 16) or UDP (6) checksum.
fn with_l4_csum4(mut f: Vec<u8>) -> Vec<u8> {
    let proto = f[23];
    let at = 34 + if proto == 6 { 16 } else { 6 };
    f[at..at + 2].fill(0);
    let c = l4_check(&f[26..34], proto, &f[34..]);
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

fn ok4(f: &[u8]) -> bool {
    Ipv4Packet::new_checked(&f[14..]).unwrap().verify_checksum()
        && l4_check(&f[26..34], f[23], &f[34..]) == 0
}

#[test]
fn ipv4_addresses_with_ip_and_l4_checksums() {
    for f in [
        with_l4_csum4(udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53)),
        with_l4_csum4(tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 0x02, 64)),
    ] {
        assert!(ok4(&f));
        for rule in [
            "ip,actions=mod_nw_src:10.7.7.7,output:2",
            "ip,actions=set_field:10.7.7.8->ip_dst,output:2",
            "ip,actions=set_field:192.168.255.1->nw_src,mod_nw_dst:172.16.0.9,output:2",
        ] {
            let (v, out) = run1(rule, 1, &f);
            assert_eq!(v, ports(&[2]), "{rule}");
            assert!(ok4(&out), "{rule}: checksums");
            assert_eq!(out[34..38], f[34..38], "{rule}: ports kept");
        }
        let out = run1(
            "ip,actions=mod_nw_src:10.7.7.7,mod_nw_dst:10.7.7.8,output:2",
            1,
            &f,
        )
        .1;
        assert_eq!(out[26..34], [10, 7, 7, 7, 10, 7, 7, 8]);
    }
    // A UDP checksum 0 (none) stays 0; the IP checksum is updated.
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
    assert_eq!(f[40..42], [0, 0]);
    let out = run1("ip,actions=mod_nw_src:10.7.7.7,output:2", 1, &f).1;
    assert_eq!(out[40..42], [0, 0]);
    assert!(Ipv4Packet::new_checked(&out[14..])
        .unwrap()
        .verify_checksum());
    // Not IPv4: untouched.
    let a = arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]);
    assert_eq!(run1("actions=mod_nw_src:10.7.7.7,output:2", 1, &a).1, a);
}

#[test]
fn l4_ports_with_checksums() {
    let u = with_l4_csum4(udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53));
    let t = with_l4_csum4(tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 0x12, 64));
    let out = run1("udp,actions=set_field:5353->udp_dst,output:2", 1, &u).1;
    assert_eq!(out[34..38], [0x03, 0xe8, 0x14, 0xe9]);
    assert!(ok4(&out));
    let out = run1("tcp,actions=set_field:8080->tcp_src,output:2", 1, &t).1;
    assert_eq!(out[34..38], [0x1f, 0x90, 0, 80]);
    assert!(ok4(&out));
    // mod_tp_src/dst: whichever of TCP/UDP/SCTP the frame has.
    for f in [&u, &t] {
        let out = run1("ip,actions=mod_tp_src:7,mod_tp_dst:9,output:2", 1, f).1;
        assert_eq!(out[34..38], [0, 7, 0, 9]);
        assert!(ok4(&out));
    }
    // A TCP port rewrite leaves UDP alone, and the other way round.
    assert_eq!(run1("ip,actions=set_field:1->tcp_src,output:2", 1, &u).1, u);
    assert_eq!(run1("ip,actions=set_field:1->udp_src,output:2", 1, &t).1, t);
    // UDP checksum 0 stays 0.
    let z = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
    let out = run1("udp,actions=set_field:5353->udp_dst,output:2", 1, &z).1;
    assert_eq!(
        (out[36..38].to_vec(), out[40..42].to_vec()),
        (vec![0x14, 0xe9], vec![0, 0])
    );
}

#[test]
fn sctp_ports_keep_the_crc_right() {
    // SCTP common header (12 bytes) + one 16-byte chunk, CRC32c filled.
    let mut sctp = vec![0u8; 28];
    sctp[0..2].copy_from_slice(&5000u16.to_be_bytes());
    sctp[2..4].copy_from_slice(&9u16.to_be_bytes());
    sctp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    sctp[12] = 1;
    sctp[14..16].copy_from_slice(&16u16.to_be_bytes());
    let crc = |b: &[u8]| {
        let mut c = !0u32;
        for &x in b {
            c ^= u32::from(x);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
            }
        }
        !c
    };
    let c = crc(&sctp);
    sctp[8..12].copy_from_slice(&c.to_le_bytes());
    let f = ipv4_frame([10, 0, 0, 1], [10, 0, 0, 2], 132, &sctp);
    let out = run1("sctp,actions=set_field:7777->sctp_dst,output:2", 1, &f).1;
    let mut s = out[34..].to_vec();
    assert_eq!(s[2..4], 7777u16.to_be_bytes());
    let stored = u32::from_le_bytes(s[8..12].try_into().unwrap());
    s[8..12].fill(0);
    assert_eq!(stored, crc(&s), "CRC32c recomputed");
}

#[test]
fn ipv6_addresses_update_the_l4_checksum() {
    let mut udp = vec![0u8; 12];
    udp[0..2].copy_from_slice(&5353u16.to_be_bytes());
    udp[2..4].copy_from_slice(&53u16.to_be_bytes());
    udp[4..6].copy_from_slice(&12u16.to_be_bytes());
    let mut f = ipv6_frame(17, &udp);
    let csum6 = |f: &[u8]| l4_check(&f[22..54], f[20], &f[54..]);
    let c = csum6(&f);
    f[60..62].copy_from_slice(&c.to_be_bytes());
    assert_eq!(csum6(&f), 0);
    for rule in [
        "ipv6,actions=set_field:fd00::99->ipv6_dst,output:2",
        "ipv6,actions=set_field:2001:db8::1->ipv6_src,output:2",
    ] {
        let out = run1(rule, 1, &f).1;
        assert_ne!(out, f);
        assert_eq!(csum6(&out), 0, "{rule}");
    }
    let out = run1("ipv6,actions=set_field:fd00::99->ipv6_dst,output:2", 1, &f).1;
    assert_eq!(
        out[38..54],
        "fd00::99".parse::<std::net::Ipv6Addr>().unwrap().octets()
    );
}

#[test]
fn ecn_and_ttl() {
    let mut f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    set_tos(&mut f, 46 << 2 | 1);
    let out = run1("ip,actions=mod_nw_ecn:3,output:2", 1, &f).1;
    assert_eq!(out[15], 46 << 2 | 3);
    assert!(Ipv4Packet::new_checked(&out[14..])
        .unwrap()
        .verify_checksum());
    let out = run1("ip,actions=set_field:2->ip_ecn,output:2", 1, &f).1;
    assert_eq!(out[15], 46 << 2 | 2);
    let out = run1("ip,actions=mod_nw_ttl:5,output:2", 1, &f).1;
    assert_eq!(out[22], 5);
    assert!(Ipv4Packet::new_checked(&out[14..])
        .unwrap()
        .verify_checksum());
    // IPv6: traffic class ECN bits and hop limit.
    let f6 = ipv6_frame(59, &[]);
    let out = run1("ipv6,actions=mod_nw_ecn:3,mod_nw_ttl:9,output:2", 1, &f6).1;
    assert_eq!((out[14], out[15], out[21]), (0x60, 0x30, 9));
    // mod_nw_ttl:0 sets 0 (it does not drop, unlike dec_ttl).
    assert_eq!(
        run1("ip,actions=mod_nw_ttl:0,output:2", 1, &f).0,
        ports(&[2])
    );
}

#[test]
fn in_port_and_all() {
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    assert_eq!(run1("actions=in_port", 3, &f), (ports(&[3]), f.clone()));
    assert_eq!(run1("actions=IN_PORT,output:2", 3, &f).0, ports(&[2, 3]));
    // output:N to the ingress port is still filtered; in_port is not.
    assert_eq!(
        run1("actions=output:3", 3, &f).0,
        Verdict::Drop(DropReason::NoOutput)
    );
    assert_eq!(run1("actions=all", 2, &f).0, ports(&[1, 3, 4]));
    assert_eq!(run1("actions=ALL", 2, &f).0, run1("actions=flood", 2, &f).0);
}

#[test]
fn text_round_trip() {
    let acts = [
        (Action::SetIpv4Src([10, 7, 7, 7]), "mod_nw_src:10.7.7.7"),
        (Action::SetIpv4Dst([10, 7, 7, 8]), "mod_nw_dst:10.7.7.8"),
        (
            Action::SetIpv6Dst("fd00::99".parse::<std::net::Ipv6Addr>().unwrap().octets()),
            "set_field:fd00::99->ipv6_dst",
        ),
        (Action::SetL4Src(L4Proto::Any, 7), "mod_tp_src:7"),
        (Action::SetL4Dst(L4Proto::Any, 9), "mod_tp_dst:9"),
        (
            Action::SetL4Src(L4Proto::Tcp, 8080),
            "set_field:8080->tcp_src",
        ),
        (
            Action::SetL4Dst(L4Proto::Udp, 5353),
            "set_field:5353->udp_dst",
        ),
        (Action::SetL4Dst(L4Proto::Sctp, 9), "set_field:9->sctp_dst"),
        (Action::SetIpEcn(3), "mod_nw_ecn:3"),
        (Action::SetNwTtl(5), "mod_nw_ttl:5"),
        (Action::InPort, "IN_PORT"),
        (Action::All, "ALL"),
    ];
    for (a, text) in acts {
        assert_eq!(a.to_string(), text);
        assert_eq!(text.parse::<Action>().unwrap(), a, "{text}");
    }
    assert_eq!(
        "set_field:10.1.1.1->ip_src".parse::<Action>().unwrap(),
        Action::SetIpv4Src([10, 1, 1, 1])
    );
    assert!("set_field:4->ip_ecn".parse::<Action>().is_err());
    assert!("set_field:1->ipv6_label".parse::<Action>().is_err());
    let r: switch::rule::RuleSpec =
        "udp,actions=set_field:10.7.7.7->ip_src,set_field:5353->udp_dst,output:2"
            .parse()
            .unwrap();
    assert_eq!(r.to_string().parse::<switch::rule::RuleSpec>().unwrap(), r);
}

#[test]
fn later_tables_see_the_rewritten_fields() {
    let sw = switch_with(
        &[
            "priority=10,ip,actions=mod_nw_src:10.9.9.9,set_field:53->udp_dst,mod_nw_ttl:7,goto_table:1",
            "table=1,priority=30,udp,nw_src=10.9.9.9,tp_dst=53,nw_ttl=7,actions=output:2",
            "table=1,priority=20,tcp,nw_src=10.9.9.9,tp_dst=80,actions=output:3",
            "table=1,priority=0,actions=output:4",
        ],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    // Twice each: compiled, then from the cache.
    for _ in 0..2 {
        for src in [[10, 0, 0, 1], [10, 0, 0, 2]] {
            let u = udp4(src, [10, 0, 0, 2], 1000, 5000);
            assert_eq!(send(&mut dp, 1, &u, 0).0, ports(&[2]));
            // TCP keeps its port (the rewrite is udp_dst): port 80 → 3.
            let t = tcp4(src, [10, 0, 0, 2], 1000, 80, 0x02, 64);
            assert_eq!(send(&mut dp, 1, &t, 0).0, ports(&[3]));
            let t = tcp4(src, [10, 0, 0, 2], 1000, 81, 0x02, 64);
            assert_eq!(send(&mut dp, 1, &t, 0).0, ports(&[4]));
        }
    }
    // A rewrite after an output only affects later outputs.
    let sw = switch_with(
        &["ip,actions=output:2,mod_nw_dst:10.7.7.7,output:3"],
        &[1, 2, 3, 4],
    );
    let mut dp = sw.datapath(0);
    let mut fs = [switch::frame::VecFrame::new(&udp4(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        1,
        2,
    ))];
    let mut vs = [Verdict::default()];
    let mut copies = Vec::new();
    dp.process_burst_copies(1, &mut fs, &mut vs, &mut copies, 0);
    assert_eq!(vs[0], ports(&[3]));
    use switch::frame::Frame;
    assert_eq!(fs[0].data()[30..34], [10, 7, 7, 7]);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].0.data()[30..34], [10, 0, 0, 2]);
    assert_eq!(copies[0].1, 1 << 2);
}

#[test]
fn mod_tp_names_the_protocol_of_the_match() {
    let r: switch::rule::RuleSpec = "udp,actions=mod_tp_dst:53,write_actions(mod_tp_src:9)"
        .parse()
        .unwrap();
    assert_eq!(r.actions, vec![Action::SetL4Dst(L4Proto::Udp, 53)]);
    assert_eq!(
        r.instructions.write_actions,
        Some(vec![Action::SetL4Src(L4Proto::Udp, 9)])
    );
    assert_eq!(
        r.to_string(),
        "priority=32768,udp,actions=set_field:53->udp_dst,write_actions(set_field:9->udp_src)"
    );
    let r: switch::rule::RuleSpec = "tcp6,actions=mod_tp_src:1".parse().unwrap();
    assert_eq!(r.actions, vec![Action::SetL4Src(L4Proto::Tcp, 1)]);
    // Without a protocol in the match: whichever the frame carries.
    let r: switch::rule::RuleSpec = "ip,actions=mod_tp_src:1".parse().unwrap();
    assert_eq!(r.actions, vec![Action::SetL4Src(L4Proto::Any, 1)]);
}
