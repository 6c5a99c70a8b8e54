//! Every action, byte-exact: crafted frame in, exact bytes and ports out.

mod common;
use common::*;
use switch::testutil::*;
use switch::verdict::{DropReason, Verdict};
use switch::wire::ipv4::Ipv4Packet;

fn ip_ok(f: &[u8], l3: usize) -> bool {
    Ipv4Packet::new_checked(&f[l3..]).unwrap().verify_checksum()
}

#[test]
fn output_and_mirror() {
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    assert_eq!(run1("actions=output:2", 1, &f), (ports(&[2]), f.clone()));
    assert_eq!(
        run1("actions=2,output:3,output:4", 1, &f),
        (ports(&[2, 3, 4]), f.clone())
    );
    // output to the ingress port or a missing port is filtered
    assert_eq!(
        run1("actions=output:1", 1, &f).0,
        Verdict::Drop(DropReason::NoOutput)
    );
    assert_eq!(
        run1("actions=output:9", 1, &f).0,
        Verdict::Drop(DropReason::NoOutput)
    );
    assert_eq!(run1("actions=output:1,output:3", 1, &f).0, ports(&[3]));
}

#[test]
fn drop_and_flood() {
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    assert_eq!(
        run1("actions=drop", 1, &f),
        (Verdict::Drop(DropReason::Action), f.clone())
    );
    assert_eq!(run1("actions=flood", 2, &f), (ports(&[1, 3, 4]), f.clone()));
}

#[test]
fn push_vlan_byte_exact() {
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    let (v, out) = run1("actions=push_vlan:0x8100,output:2", 1, &f);
    assert_eq!(v, ports(&[2]));
    assert_eq!(out, with_vlan(&f, 0x8100, 0)); // TCI 0 on an untagged frame
    let (_, out) = run1("actions=mod_vlan_vid:100,output:2", 1, &f);
    assert_eq!(out, with_vlan(&f, 0x8100, 100));
    let (_, out) = run1("actions=set_vlan_vid:100,mod_vlan_pcp:5,output:2", 1, &f);
    assert_eq!(out, with_vlan(&f, 0x8100, (5 << 13) | 100));
    // QinQ: push an S-tag over a C-tag; the new tag copies the outer TCI
    let c = with_vlan(&f, 0x8100, 10);
    let (_, out) = run1("actions=push_vlan:0x88a8,mod_vlan_vid:20,output:2", 1, &c);
    assert_eq!(out, with_vlan(&c, 0x88a8, 20));
}

#[test]
fn pop_and_modify_vlan_byte_exact() {
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    let t = with_vlan(&f, 0x8100, (3 << 13) | 10);
    assert_eq!(
        run1("actions=pop_vlan,output:2", 1, &t),
        (ports(&[2]), f.clone())
    );
    assert_eq!(
        run1("actions=strip_vlan,output:2", 1, &f),
        (ports(&[2]), f.clone()),
        "untagged: no-op"
    );
    let (_, out) = run1("actions=mod_vlan_vid:77,output:2", 1, &t);
    assert_eq!(out, with_vlan(&f, 0x8100, (3 << 13) | 77), "PCP kept");
    let qq = with_vlan(&t, 0x88a8, 5);
    assert_eq!(run1("actions=pop_vlan,output:2", 1, &qq).1, t);
    assert_eq!(run1("actions=pop_vlan,pop_vlan,output:2", 1, &qq).1, f);
}

#[test]
fn set_eth_addresses() {
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    let (_, out) = run1(
        "actions=set_eth_src:02:11:22:33:44:55,mod_dl_dst:02:66:77:88:99:aa,output:2",
        1,
        &f,
    );
    let mut want = f.clone();
    want[0..6].copy_from_slice(&[2, 0x66, 0x77, 0x88, 0x99, 0xaa]);
    want[6..12].copy_from_slice(&[2, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(out, want);
}

#[test]
fn dec_ttl_ipv4_checksum() {
    let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0x10, 64);
    let (v, out) = run1("ip,actions=dec_ttl,output:2", 1, &f);
    assert_eq!(v, ports(&[2]));
    let want = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0x10, 63);
    assert_eq!(out, want, "TTL 63 and the checksum a full recompute gives");
    assert!(ip_ok(&out, 14));
    // behind a VLAN tag, and after a push in the same action list
    let t = with_vlan(&f, 0x8100, 7);
    assert_eq!(
        run1("actions=dec_ttl,output:2", 1, &t).1,
        with_vlan(&want, 0x8100, 7)
    );
    assert_eq!(
        run1("actions=push_vlan:0x8100,dec_ttl,output:2", 1, &f).1,
        with_vlan(&want, 0x8100, 0)
    );
    assert_eq!(run1("actions=pop_vlan,dec_ttl,output:2", 1, &t).1, want);
    // TTL 1 expires
    let one = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0, 1);
    assert_eq!(
        run1("actions=dec_ttl,output:2", 1, &one).0,
        Verdict::Drop(DropReason::TtlExpired)
    );
}

#[test]
fn dec_ttl_ipv6_and_non_ip() {
    let f = ipv6_frame(17, &[0, 1, 0, 2, 0, 8, 0, 0]);
    let (_, out) = run1("actions=dec_ttl,output:2", 1, &f);
    let mut want = f.clone();
    want[14 + 7] = 63;
    assert_eq!(out, want);
    let a = arp_frame(1, [1, 1, 1, 1], [2, 2, 2, 2]);
    assert_eq!(
        run1("actions=dec_ttl,output:2", 1, &a).1,
        a,
        "no IP: untouched"
    );
}

#[test]
fn set_dscp_ipv4_and_ipv6() {
    let mut f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    set_tos(&mut f, 0x02); // ECN=2 kept
    let (_, out) = run1("actions=set_ip_dscp:46,output:2", 1, &f);
    let mut want = f.clone();
    set_tos(&mut want, (46 << 2) | 2);
    assert_eq!(out, want);
    assert!(ip_ok(&out, 14));
    assert_eq!(run1("actions=mod_nw_tos:184,output:2", 1, &f).1, want);
    let v6 = ipv6_frame(17, &[0, 1, 0, 2, 0, 8, 0, 0]);
    let (_, out) = run1("actions=set_ip_dscp:46,output:2", 1, &v6);
    let mut want = v6.clone();
    want[14] = 0x6b; // version 6, TC high nibble 0xb
    want[15] = 0x80; // TC low nibble 0x8 (0xb8 = 46 << 2)
    assert_eq!(out, want);
}

#[test]
fn no_headroom_is_counted_not_crashed() {
    use switch::frame::VecFrame;
    let sw = switch_with(&["actions=push_vlan:0x8100,output:2"], &[1, 2]);
    let mut dp = sw.datapath(0);
    let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    let mut fs = [VecFrame::with_headroom(&f, 2)];
    let mut vs = [Verdict::default()];
    dp.process_burst(1, &mut fs, &mut vs, 0);
    assert_eq!(vs[0], Verdict::Drop(DropReason::NoHeadroom));
    assert_eq!(dp.counters().drop_count(DropReason::NoHeadroom), 1);
}
