//! IP fragments through `ct` with reassembly (OVS's `ipf`): held until
//! their datagram completes, then every fragment leaves, by offset, with
//! the datagram's state (and its NAT); invalid fragments are `+inv`.

mod common;
use common::*;

use switch::frame::{Frame, VecFrame};
use switch::verdict::{DropReason, Verdict};

const HELD: Verdict = Verdict::Drop(DropReason::FragHeld);
const GW: [u8; 4] = [172, 16, 0, 1];

/// A UDP datagram `src:sport → dst:dport` of `len` payload bytes cut into
/// IPv4 fragments `(offset, length, more)` of its UDP bytes.
fn udp_frags(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    len: usize,
    id: u16,
    cuts: &[(usize, usize, bool)],
) -> Vec<Vec<u8>> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend((0..len).map(|i| (i * 7 + 3) as u8));
    let mut ph = Vec::new();
    ph.extend_from_slice(&src);
    ph.extend_from_slice(&dst);
    ph.extend_from_slice(&[0, 17]);
    ph.extend_from_slice(&(u.len() as u16).to_be_bytes());
    let c = fold(sum(&u, sum(&ph, 0)));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    cuts.iter()
        .map(|&(off, n, more)| {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&((20 + n) as u16).to_be_bytes());
            h.extend_from_slice(&id.to_be_bytes());
            let fo = (if more { 0x2000 } else { 0 }) | (off / 8) as u16;
            h.extend_from_slice(&fo.to_be_bytes());
            h.extend_from_slice(&[64, 17, 0, 0]);
            h.extend_from_slice(&src);
            h.extend_from_slice(&dst);
            let c = fold(sum(&h, 0));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
            f.extend_from_slice(&u[off..off + n]);
            f
        })
        .collect()
}

fn udp1(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    udp_frags(src, dst, sport, dport, 20, 1, &[(0, 28, false)]).remove(0)
}

const FIREWALL: [&str; 5] = [
    "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
    "table=1,priority=10,ct_state=+trk+new,ip,in_port=1,actions=ct(commit),output:2",
    "table=1,priority=10,ct_state=+trk+est,in_port=1,actions=output:2",
    "table=1,priority=10,ct_state=+trk+est,in_port=2,actions=output:1",
    "table=1,priority=20,ct_state=+trk+inv,actions=output:4",
];

const CUTS: [(usize, usize, bool); 3] = [(0, 1400, true), (1400, 1400, true), (2800, 208, false)];

#[test]
fn fragments_leave_together_by_offset_with_the_datagrams_state() {
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let sw = ct_switch(&FIREWALL);
        let mut dp = sw.datapath(0);
        let frags = udp_frags(CLIENT, SERVER, 5000, 53, 3000, 9, &CUTS);
        for (n, &i) in order.iter().enumerate() {
            let (v, _, copies) = send_ct(&mut dp, 1, &frags[i], n as u64);
            assert_eq!(v, HELD, "{order:?}: fragment {i} is held");
            if n < 2 {
                assert!(
                    copies.is_empty(),
                    "{order:?}: nothing leaves before the datagram"
                );
            } else {
                // All three, by offset, unchanged, to port 2 (new, committed).
                let want: Vec<(u64, Vec<u8>)> = frags.iter().map(|f| (1 << 2, f.clone())).collect();
                assert_eq!(copies, want, "{order:?}");
            }
        }
        // The connection was committed: the reply is established.
        let (v, _, _) = send_ct(&mut dp, 2, &udp1(SERVER, CLIENT, 53, 5000), 10);
        assert_eq!(v, ports(&[1]), "{order:?}");
        let st = sw.conntrack().ipf().status();
        // Held twice each (ct(table=1), then ct(commit)), sent twice each.
        assert_eq!((st.v4.accepted, st.v4.completed, st.frags), (6, 6, 0));
        assert_eq!(sw.conntrack().stats().entries, 1);
    }
}

#[test]
fn invalid_fragments_are_marked_inv_and_reassembly_can_be_disabled() {
    let sw = ct_switch(&FIREWALL);
    let mut dp = sw.datapath(0);
    // Too small a non-last fragment: +inv at once.
    let small = udp_frags(
        CLIENT,
        SERVER,
        5001,
        53,
        200,
        10,
        &[(0, 64, true), (64, 144, false)],
    );
    assert_eq!(send_ct(&mut dp, 1, &small[0], 0).0, ports(&[4]));
    // Overlapping: the second is +inv, the first stays held.
    let a = udp_frags(CLIENT, SERVER, 5002, 53, 3000, 11, &CUTS);
    let b = udp_frags(CLIENT, SERVER, 5002, 53, 3000, 11, &[(1392, 1616, false)]);
    assert_eq!(send_ct(&mut dp, 1, &a[0], 1).0, HELD);
    assert_eq!(send_ct(&mut dp, 1, &b[0], 2).0, ports(&[4]));
    let st = sw.conntrack().ipf().status();
    assert_eq!((st.v4.too_small, st.v4.overlapped, st.frags), (1, 1, 1));
    // Expired after 15 s: dropped, counted.
    let (v, _, copies) = send_ct(&mut dp, 1, &udp1(CLIENT, SERVER, 7, 7), 15_002);
    assert_eq!(v, ports(&[2]));
    assert!(copies.is_empty());
    let st = sw.conntrack().ipf().status();
    assert_eq!((st.v4.expired, st.frags), (1, 0));
    // Disabled: every fragment is +inv, as OVS without ipf.
    sw.conntrack().ipf().set_enabled(false, false);
    for f in &a {
        assert_eq!(send_ct(&mut dp, 1, f, 20_000).0, ports(&[4]));
    }
}

#[test]
fn snat_reaches_every_fragment_and_the_first_ones_ports() {
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1,zone=1,nat)",
        "table=1,ct_state=+trk+new,ip,in_port=1,actions=ct(commit,zone=1,nat(src=172.16.0.1:3000)),output:2",
        "table=1,ct_state=+trk+est,ip,in_port=2,actions=output:1",
        "table=1,priority=20,ct_state=+trk+inv,actions=output:4",
    ]);
    let mut dp = sw.datapath(0);
    let frags = udp_frags(CLIENT, SERVER, 5000, 53, 3000, 12, &CUTS);
    let want = udp_frags(GW, SERVER, 3000, 53, 3000, 12, &CUTS);
    send_ct(&mut dp, 1, &frags[1], 0);
    send_ct(&mut dp, 1, &frags[2], 0);
    let (v, _, copies) = send_ct(&mut dp, 1, &frags[0], 0);
    assert_eq!(v, HELD);
    let got: Vec<Vec<u8>> = copies.iter().map(|c| c.1.clone()).collect();
    assert_eq!(
        got, want,
        "translated source everywhere, port and checksum in the first"
    );
    assert!(copies.iter().all(|c| c.0 == 1 << 2));
    // A fragmented reply to the translated address comes back translated.
    let reply = udp_frags(SERVER, GW, 53, 3000, 3000, 13, &CUTS);
    let back = udp_frags(SERVER, CLIENT, 53, 5000, 3000, 13, &CUTS);
    let mut out = Vec::new();
    for f in &reply {
        let (v, _, c) = send_ct(&mut dp, 2, f, 1);
        assert_eq!(v, HELD);
        out.extend(c);
    }
    let got: Vec<Vec<u8>> = out.iter().map(|c| c.1.clone()).collect();
    assert_eq!(got, back);
    assert!(out.iter().all(|c| c.0 == 1 << 1));
}

#[test]
fn without_a_copy_sink_fragments_are_tracked_as_they_are() {
    let sw = ct_switch(&FIREWALL);
    let mut dp = sw.datapath(0);
    let frags = udp_frags(CLIENT, SERVER, 5000, 53, 3000, 9, &CUTS);
    for f in &frags {
        assert_eq!(send(&mut dp, 1, f, 0).0, ports(&[4]));
    }
}

/// The fragments other workers completed for `dp`, sent on.
fn service(dp: &mut switch::datapath::Datapath, now: u64) -> Vec<(u64, Vec<u8>)> {
    let mut copies: Vec<(VecFrame, u64)> = Vec::new();
    dp.service_fragments(&mut copies, now);
    copies
        .into_iter()
        .map(|(f, m)| (m, f.data().to_vec()))
        .collect()
}

#[test]
fn fragments_of_one_datagram_complete_across_two_workers() {
    // RSS (or two ports) spreads one datagram's fragments over two
    // forwarding lcores: the lists are shared; each fragment resumes on
    // the worker that received it (its compiled entries are there).
    let sw = ct_switch_workers(&FIREWALL, 2);
    let (mut dp0, mut dp1) = (sw.datapath(0), sw.datapath(1));
    // Worker 1 compiles an entry worker 0 does not have first: the two
    // number their entries differently.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 9, 8, 6]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.resize(42, 0);
    send_ct(&mut dp1, 2, &arp, 0);
    send_ct(&mut dp1, 2, &udp1(SERVER, CLIENT, 9, 9), 0);
    let frags = udp_frags(CLIENT, SERVER, 5000, 53, 3000, 21, &CUTS);
    let (v, _, c) = send_ct(&mut dp0, 1, &frags[0], 0);
    assert_eq!((v, c.len()), (HELD, 0));
    let (v, _, c) = send_ct(&mut dp1, 1, &frags[2], 0);
    assert_eq!((v, c.len()), (HELD, 0));
    assert!(service(&mut dp0, 0).is_empty() && service(&mut dp1, 0).is_empty());
    // The last fragment completes the datagram at ct(table=1) on worker
    // 0; fragment 2 goes back to worker 1, meets ct(commit) there and
    // completes the datagram again; each worker sends its own.
    let (v, _, mut out) = send_ct(&mut dp0, 1, &frags[1], 0);
    assert_eq!(v, HELD);
    for _ in 0..3 {
        out.extend(service(&mut dp1, 0));
        out.extend(service(&mut dp0, 0));
    }
    out.sort_by_key(|c| c.1[20..22].to_vec());
    let mut want: Vec<(u64, Vec<u8>)> = frags.iter().map(|f| (1 << 2, f.clone())).collect();
    want.sort_by_key(|c| c.1[20..22].to_vec());
    assert_eq!(out, want, "all three, once each, to port 2");
    let st = sw.conntrack().ipf().status();
    assert_eq!((st.v4.completed, st.v4.purged, st.frags), (6, 0, 0));
    assert_eq!(sw.conntrack().stats().entries, 1);
    // The reply on the other worker is established.
    let (v, _, _) = send_ct(&mut dp1, 2, &udp1(SERVER, CLIENT, 53, 5000), 1);
    assert_eq!(v, ports(&[1]));
}

#[test]
fn fragments_follow_a_fork_with_more_actions_and_a_list_cut_at_nat() {
    // `ct(table=1)` followed by an output (the output runs on a copy, as
    // OVS's forked packet), and in table 1 an output before a NAT commit
    // (the list is cut into segments): no fragment is +inv, each leaves
    // once per output, port 2's translated.
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1,zone=3),output:3",
        "table=1,ct_state=+trk+new,ip,in_port=1,actions=output:5,ct(commit,zone=3,nat(src=172.16.0.1:3000)),output:2",
        "table=1,priority=20,ct_state=+trk+inv,actions=output:4",
    ]);
    sw.port_add(5).unwrap();
    let mut dp = sw.datapath(0);
    let frags = udp_frags(CLIENT, SERVER, 5000, 53, 3000, 22, &CUTS);
    let nat = udp_frags(GW, SERVER, 3000, 53, 3000, 22, &CUTS);
    let mut out = Vec::new();
    for f in [&frags[2], &frags[0], &frags[1]] {
        let (v, _, c) = send_ct(&mut dp, 1, f, 0);
        assert!(
            v == HELD || v == ports(&[3]),
            "held, or leaving only to port 3: {v:?}"
        );
        out.extend(c);
    }
    let to = |p: u16| -> Vec<Vec<u8>> {
        out.iter()
            .filter(|c| c.0 & 1 << p != 0)
            .map(|c| c.1.clone())
            .collect()
    };
    assert!(to(4).is_empty(), "no fragment is +inv");
    assert_eq!(
        to(5),
        frags.to_vec(),
        "before the NAT: unchanged, by offset"
    );
    assert_eq!(to(2), nat, "after the NAT: translated, by offset");
    let st = sw.conntrack().ipf().status();
    assert_eq!((st.v4.completed, st.frags), (6, 0));
    assert_eq!(sw.conntrack().stats().entries, 1);
}

#[test]
fn held_fragments_expire_without_traffic() {
    let sw = ct_switch(&FIREWALL);
    let mut dp = sw.datapath(0);
    let frags = udp_frags(CLIENT, SERVER, 5000, 53, 3000, 23, &CUTS);
    assert_eq!(send_ct(&mut dp, 1, &frags[0], 0).0, HELD);
    assert_eq!(send_ct(&mut dp, 1, &frags[1], 0).0, HELD);
    assert_eq!(sw.expire_fragments(14_999), 0, "not yet");
    assert_eq!(sw.conntrack().ipf().status().frags, 2);
    // The housekeeping's call, no frame through any datapath.
    assert_eq!(sw.expire_fragments(15_001), 2);
    let st = sw.conntrack().ipf().status();
    assert_eq!((st.v4.expired, st.frags), (2, 0));
    // The datagram's last fragment now starts a list of its own.
    assert_eq!(send_ct(&mut dp, 1, &frags[2], 15_002).0, HELD);
}
