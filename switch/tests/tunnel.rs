//! Tunnel ports without DPDK: encapsulation and decapsulation round trips,
//! tunnel fields in rules and actions, ARP on the underlay, and every kind
//! of bad outer packet dropped and counted.

mod common;
use std::sync::Arc;

use common::*;
use switch::frame::{Frame, VecFrame};
use switch::rule::RuleSpec;
use switch::testutil::*;
use switch::tunnel::decap::Tunnel;
use switch::tunnel::encap::{NeighbourMemo, Tx, OVERHEAD};
use switch::tunnel::{
    arp, ArpCache, Endpoints, Rx, TunnelConfig, TunnelDrop, TunnelMeta, TunnelStats,
};
use switch::verdict::Verdict;

const LOCAL: [u8; 4] = [192, 168, 50, 1];
const REMOTE: [u8; 4] = [192, 168, 50, 2];
const MAC_L: [u8; 6] = [2, 0, 0, 0, 0x50, 1];
const MAC_R: [u8; 6] = [2, 0, 0, 0, 0x50, 2];

fn tunnel(spec: &str, port: u16, mac: [u8; 6]) -> Tunnel {
    Tunnel {
        port,
        cfg: TunnelConfig::parse(spec).unwrap().unwrap(),
        mac,
        stats: Arc::new(TunnelStats::default()),
    }
}

/// Endpoints with one tunnel on port 5, underlay port 0.
fn endpoints(spec: &str, mac: [u8; 6]) -> Endpoints {
    Endpoints::new(vec![tunnel(spec, 5, mac)], Arc::new(ArpCache::default())).unwrap()
}

fn vx(local: [u8; 4], remote: &str, key: &str) -> String {
    let l = std::net::Ipv4Addr::from(local);
    format!("vx0,type=vxlan,local_ip={l},remote_ip={remote},key={key},underlay=0")
}

/// `inner` encapsulated by an endpoint at REMOTE for one at LOCAL.
fn encapsulated(kind: &str, inner: &[u8], key: u32) -> Vec<u8> {
    let spec = format!(
        "far,type={kind},local_ip=192.168.50.2,remote_ip=192.168.50.1,key={key},underlay=0"
    );
    let far = Endpoints::new(vec![tunnel(&spec, 5, MAC_R)], Arc::new(ArpCache::default())).unwrap();
    far.arp.learn(LOCAL, MAC_L, 0, 0);
    let mut f = VecFrame::new(inner);
    let mut memo = NeighbourMemo::default();
    assert_eq!(
        far.encap(0, &mut f, Default::default(), None, &mut memo, 0),
        Tx::Send(0)
    );
    f.data().to_vec()
}

#[test]
fn vxlan_and_geneve_round_trip() {
    let inner = tcp4([10, 1, 0, 1], [10, 1, 0, 2], 1234, 80, 0x02, 64);
    for kind in ["vxlan", "geneve"] {
        let outer = encapsulated(kind, &inner, 42);
        assert_eq!(outer.len(), inner.len() + OVERHEAD);
        // Outer Ethernet to our MAC, IPv4 with DF and TTL 64, UDP to the
        // IANA port from the dynamic range.
        assert_eq!(&outer[0..6], &MAC_L);
        assert_eq!(&outer[6..12], &MAC_R);
        assert_eq!(outer[14 + 6] & 0x40, 0x40, "DF");
        assert_eq!(outer[14 + 8], 64, "TTL");
        let sport = u16::from_be_bytes([outer[34], outer[35]]);
        let dport = u16::from_be_bytes([outer[36], outer[37]]);
        assert!(sport >= 49152);
        assert_eq!(dport, if kind == "vxlan" { 4789 } else { 6081 });
        let spec = format!(
            "vx0,type={kind},local_ip=192.168.50.1,remote_ip=192.168.50.2,key=42,underlay=0"
        );
        let ep = endpoints(&spec, MAC_L);
        match ep.classify(0, &outer, 0) {
            Rx::Decap {
                tunnel: 0,
                meta,
                outer_len,
                inner_len,
            } => {
                assert_eq!(
                    meta,
                    TunnelMeta {
                        id: 42,
                        src: REMOTE,
                        dst: LOCAL
                    }
                );
                assert_eq!(&outer[outer_len..outer_len + inner_len], &inner[..]);
            }
            other => panic!("{kind}: {other:?}"),
        }
        // Not from the underlay: not for us.
        assert_eq!(ep.classify(1, &outer, 0), Rx::Pass);
    }
}

#[test]
fn bad_outer_packets_are_dropped_and_named() {
    let inner = udp4([10, 1, 0, 1], [10, 1, 0, 2], 5, 6);
    let good = encapsulated("vxlan", &inner, 42);
    let ep = endpoints(&vx(LOCAL, "192.168.50.2", "42"), MAC_L);
    let drop = |f: &[u8]| match ep.classify(0, f, 0) {
        Rx::Drop { tunnel: 0, why } => why,
        other => panic!("{other:?}"),
    };
    // Wrong VNI for a fixed key.
    assert_eq!(drop(&encapsulated("vxlan", &inner, 43)), TunnelDrop::BadVni);
    // Wrong UDP port.
    let mut f = good.clone();
    f[36..38].copy_from_slice(&4790u16.to_be_bytes());
    assert_eq!(drop(&f), TunnelDrop::BadPort);
    // VXLAN I flag clear.
    let mut f = good.clone();
    f[42] = 0;
    assert_eq!(drop(&f), TunnelDrop::BadHeader);
    // Bad outer IPv4 checksum.
    let mut f = good.clone();
    f[24] ^= 0xff;
    assert_eq!(drop(&f), TunnelDrop::BadHeader);
    // Truncated at every length from the IPv4 header on.
    for len in 34..good.len() {
        let why = drop(&good[..len]);
        assert_eq!(why, TunnelDrop::Truncated, "cut at {len}");
    }
    // A UDP length shorter than the VXLAN header: truncated.
    let mut f = good.clone();
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(drop(&f), TunnelDrop::Truncated);
    // From another source than the fixed remote.
    let far = endpoints(&vx(LOCAL, "192.168.50.9", "42"), MAC_L);
    assert!(matches!(
        far.classify(0, &good, 0),
        Rx::Drop {
            why: TunnelDrop::UnknownRemote,
            ..
        }
    ));
    // key=flow takes any VNI.
    let any = endpoints(&vx(LOCAL, "flow", "flow"), MAC_L);
    assert!(matches!(
        any.classify(0, &encapsulated("vxlan", &inner, 7), 0),
        Rx::Decap {
            meta: TunnelMeta { id: 7, .. },
            ..
        }
    ));
    // Other traffic passes untouched.
    assert_eq!(ep.classify(0, &inner, 0), Rx::Pass);
    assert_eq!(ep.classify(0, &good[..20], 0), Rx::Pass);
}

#[test]
fn random_bytes_never_panic() {
    let ep = endpoints(&vx(LOCAL, "flow", "flow"), MAC_L);
    let good = encapsulated("vxlan", &udp4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), 9);
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20000 {
        let mut f = good.clone();
        for _ in 0..(next() % 6) {
            let at = (next() as usize) % f.len();
            f[at] = next() as u8;
        }
        f.truncate((next() as usize) % (f.len() + 1));
        let _ = ep.classify(0, &f, 0);
    }
}

#[test]
fn arp_for_the_local_ip_is_answered_and_remotes_learned() {
    let ep = endpoints(&vx(LOCAL, "192.168.50.2", "42"), MAC_L);
    let mut req = [0u8; 60];
    arp::build_request(&mut req, MAC_R, REMOTE, LOCAL);
    assert_eq!(
        ep.classify(0, &req, 0),
        Rx::ArpRequest {
            tunnel: 0,
            mac: MAC_R,
            ip: REMOTE
        }
    );
    // The asker is learned: encapsulation needs no request.
    let mut f = VecFrame::new(&udp4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2));
    let mut memo = NeighbourMemo::default();
    assert_eq!(
        ep.encap(0, &mut f, Default::default(), None, &mut memo, 0),
        Tx::Send(0)
    );
    // Unknown remotes are asked for, once a second.
    let ep = endpoints(&vx(LOCAL, "192.168.50.2", "42"), MAC_L);
    let mut f = VecFrame::new(&udp4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2));
    let t = ep.encap(0, &mut f, Default::default(), None, &mut memo, 0);
    assert_eq!(
        t,
        Tx::Resolve {
            ip: REMOTE,
            mac: MAC_L,
            local_ip: LOCAL,
            port: Some(0)
        }
    );
    // Within the second: dropped and counted, no second request.
    assert_eq!(
        ep.encap(0, &mut f, Default::default(), None, &mut memo, 500),
        Tx::Drop(TunnelDrop::NoArp)
    );
    // A second later, asked again.
    assert!(matches!(
        ep.encap(0, &mut f, Default::default(), None, &mut memo, 1000),
        Tx::Resolve { ip: REMOTE, .. }
    ));
    let mut reply = [0u8; 60];
    arp::build_reply(&mut reply, MAC_R, REMOTE, MAC_L, LOCAL);
    assert_eq!(ep.classify(0, &reply, 5), Rx::Consumed);
    assert_eq!(
        ep.encap(0, &mut f, Default::default(), None, &mut memo, 10),
        Tx::Send(0)
    );
    // remote_ip=flow without tun_dst: nowhere to send.
    let ep = endpoints(&vx(LOCAL, "flow", "flow"), MAC_L);
    assert_eq!(
        ep.encap(0, &mut f, Default::default(), None, &mut memo, 0),
        Tx::Drop(TunnelDrop::NoRemote)
    );
}

#[test]
fn rules_match_tunnel_fields_and_set_them() {
    let sw = switch_with(
        &[
            "priority=30,tun_id=42,tun_src=192.168.50.2,actions=output:1",
            "priority=20,tun_id=0x2b,actions=set_tunnel:7,set_field:192.168.50.7->tun_dst,output:2",
            "priority=10,tun_dst=192.168.50.0/24,actions=output:3",
            "priority=0,actions=output:4",
        ],
        &[1, 2, 3, 4, 5],
    );
    let mut dp = sw.datapath(0);
    let inner = udp4([10, 1, 0, 1], [10, 1, 0, 2], 5, 6);
    let run = |dp: &mut switch::datapath::Datapath, in_port, meta: Option<TunnelMeta>| {
        let mut fs = [VecFrame::new(&inner)];
        let mut vs = [Verdict::default()];
        let mut copies = Vec::new();
        match meta {
            Some(m) => dp.process_burst_tunnel(in_port, &mut fs, &[m], &mut vs, &mut copies, 0),
            None => dp.process_burst(in_port, &mut fs, &mut vs, 0),
        }
        (vs[0], dp.tunnel_sets().map(|s| s[0]))
    };
    let m = |id, src| {
        Some(TunnelMeta {
            id,
            src,
            dst: LOCAL,
        })
    };
    assert_eq!(run(&mut dp, 5, m(42, REMOTE)).0, ports(&[1]));
    assert_eq!(run(&mut dp, 5, m(42, [192, 168, 50, 3])).0, ports(&[3]));
    let (v, set) = run(&mut dp, 5, m(43, REMOTE));
    assert_eq!(v, ports(&[2]));
    let set = set.expect("set_tunnel recorded");
    assert_eq!((set.id, set.dst), (Some(7), Some([192, 168, 50, 7])));
    // Frames not from a tunnel match no tunnel-field rule (and leave no
    // tunnel sets behind).
    assert_eq!(run(&mut dp, 2, None), (ports(&[4]), None));
    // IPv6 inner frames keep their address bytes: no tunnel rule matches.
    let mut fs = [VecFrame::new(&ipv6_frame(17, &[0; 8]))];
    let mut vs = [Verdict::default()];
    dp.process_burst_tunnel(
        5,
        &mut fs,
        &[TunnelMeta {
            id: 42,
            src: REMOTE,
            dst: LOCAL,
        }],
        &mut vs,
        &mut Vec::new(),
        0,
    );
    assert_eq!(vs[0], ports(&[4]));
}

#[test]
fn tunnel_rule_syntax_round_trips() {
    for r in [
        "priority=5,tun_id=0x2a,actions=output:1",
        "priority=5,tun_id=0x2a/0xff,tun_src=10.0.0.0/8,tun_dst=10.0.0.1,ip,actions=output:1",
        "priority=5,actions=set_field:0x7->tun_id,set_field:10.0.0.2->tun_dst,output:2",
    ] {
        let spec: RuleSpec = r.parse().unwrap();
        let again: RuleSpec = spec.to_string().parse().unwrap();
        assert_eq!(spec, again, "{r} -> {spec}");
    }
    let bad = |r: &str| r.parse::<RuleSpec>().unwrap_err();
    assert!(bad("tun_id=0x1000000,actions=drop").contains("24-bit"));
    assert!(bad("ipv6,tun_id=1,actions=drop").contains("ipv6"));
    assert!(bad("actions=set_tunnel:0x1000000").contains("24-bit"));
    assert!(bad("tun_src=10.0.0.300,actions=drop").contains("IPv4"));
    let s: RuleSpec = "actions=set_tunnel:9,output:1".parse().unwrap();
    assert_eq!(
        s.to_string(),
        "priority=32768,actions=set_field:0x9->tun_id,output:1"
    );
}

/// The tunnel fields as `move`/`push` sources (OVS's NXM_NX_TUN_ID,
/// NXM_NX_TUN_IPV4_SRC/DST): the frame's tunnel metadata, 0 for a frame
/// not from a tunnel port; `load`/`move` into the key's 24 bits and the
/// outer destination set what a tunnel output sends.
#[test]
fn tunnel_fields_as_move_and_push_sources() {
    let sw = switch_with(
        &[
            "priority=40,in_port=5,udp,actions=move:NXM_NX_TUN_ID[0..15]->NXM_OF_UDP_SRC[],move:NXM_NX_TUN_IPV4_SRC[]->NXM_NX_REG0[],push:NXM_NX_TUN_IPV4_DST[],pop:NXM_NX_REG1[],resubmit(,1)",
            "table=1,priority=10,reg0=0xc0a83202,reg1=0xc0a83201,actions=output:1",
            "table=1,priority=5,reg0=0,reg1=0,actions=output:2",
            "priority=40,in_port=1,udp,actions=load:0x2a->NXM_NX_TUN_ID[0..23],load:0xc0a83207->NXM_NX_TUN_IPV4_DST[],move:NXM_NX_TUN_ID[0..15]->NXM_OF_UDP_SRC[],output:2",
        ],
        &[1, 2, 5],
    );
    for bad in [
        "actions=load:0x5->NXM_NX_TUN_ID[]",
        "actions=move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31]",
        "actions=move:NXM_NX_REG0[]->NXM_NX_TUN_IPV4_SRC[]",
    ] {
        assert!(bad.parse::<RuleSpec>().is_err(), "{bad}");
    }
    let mut dp = sw.datapath(0);
    let inner = udp4([10, 1, 0, 1], [10, 1, 0, 2], 5, 6);
    let meta = TunnelMeta {
        id: 0x1_002c,
        src: REMOTE,
        dst: LOCAL,
    };
    for _ in 0..2 {
        let mut fs = [VecFrame::new(&inner)];
        let mut vs = [Verdict::default()];
        dp.process_burst_tunnel(5, &mut fs, &[meta], &mut vs, &mut Vec::new(), 0);
        assert_eq!(vs[0], ports(&[1]));
        assert_eq!(&fs[0].data()[34..36], &[0, 0x2c]);
        // Not from a tunnel: the fields read 0.
        let mut fs = [VecFrame::new(&inner)];
        dp.process_burst(5, &mut fs, &mut vs, 0);
        assert_eq!(vs[0], ports(&[2]));
        assert_eq!(&fs[0].data()[34..36], &[0, 0]);
        // Written: what a tunnel output would send, and read back.
        let mut fs = [VecFrame::new(&inner)];
        dp.process_burst(1, &mut fs, &mut vs, 0);
        assert_eq!(vs[0], ports(&[2]));
        assert_eq!(&fs[0].data()[34..36], &[0, 0x2a]);
        let set = dp.tunnel_sets().map(|s| s[0]).expect("tunnel set");
        assert_eq!((set.id, set.dst), (Some(0x2a), Some([192, 168, 50, 7])));
    }
}
