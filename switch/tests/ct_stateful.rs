//! The `ct` action with the real tracker: a stateful firewall driven with
//! static TCP handshakes in both directions, ct_mark set in `exec` and
//! matched in a later pass, zones, SNAT and its reply translated back.
//! Every frame's output port and bytes are checked.

mod common;
use common::*;

use switch::verdict::Verdict;

const DROP: Verdict = Verdict::Drop(switch::verdict::DropReason::NoMatch);

/// OVS's example firewall (`ovs-actions(7)`): new connections to port 80
/// from port 1, established traffic both ways, invalid dropped.
fn firewall() -> std::sync::Arc<switch::switch::Switch> {
    ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,priority=10,ct_state=+trk+new,tcp,tp_dst=80,in_port=1,actions=ct(commit),output:2",
        "table=1,priority=10,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,priority=10,ct_state=+trk+est,in_port=2,actions=output:1",
        "table=1,priority=20,ct_state=+trk+inv,actions=drop",
    ])
}

#[test]
fn stateful_firewall_allows_port_1_to_port_80_and_the_replies() {
    let sw = firewall();
    let mut dp = sw.datapath(0);
    let c = |flags, seq, ack| tcp(CLIENT, SERVER, 40000, 80, flags, seq, ack, b"");
    let s = |flags, seq, ack| tcp(SERVER, CLIENT, 80, 40000, flags, seq, ack, b"");
    // Handshake, data both ways, teardown.
    let mut steps = http_steps();
    steps.extend([
        (1, c(FIN | ACK, 1006, 5007), ports(&[2])),
        (2, s(FIN | ACK, 5007, 1007), ports(&[1])),
        (1, c(ACK, 1007, 5008), ports(&[2])),
    ]);
    send_unchanged(&mut dp, &steps);
    assert_eq!(packets(&sw, "+new+trk"), 1);
    assert_eq!(packets(&sw, "in_port=1,actions=output:2"), 4);
    assert_eq!(packets(&sw, "in_port=2,actions=output:1"), 3);
}

#[test]
fn stateful_firewall_refuses_the_other_side_and_invalid_segments() {
    let sw = firewall();
    let mut dp = sw.datapath(0);
    // A SYN from port 2: new, but no rule lets it through (table-miss).
    let syn = tcp(SERVER, CLIENT, 5555, 80, SYN, 1, 0, b"");
    assert_eq!(send_ct(&mut dp, 2, &syn, 0).0, DROP);
    // ... and again (nothing was committed).
    assert_eq!(send_ct(&mut dp, 2, &syn, 1).0, DROP);
    // A new connection from port 1 to another port: no rule.
    let other = tcp(CLIENT, SERVER, 40001, 22, SYN, 1, 0, b"");
    assert_eq!(send_ct(&mut dp, 1, &other, 2).0, DROP);
    // A SYN+ACK out of nowhere: invalid, dropped by the +inv rule.
    let stray = tcp(CLIENT, SERVER, 40002, 80, SYN | ACK, 7, 9, b"");
    assert_eq!(
        send_ct(&mut dp, 1, &stray, 3).0,
        Verdict::Drop(switch::verdict::DropReason::Action)
    );
    assert_eq!(packets(&sw, "+inv+trk"), 1);
    // Established, then a segment far outside the window: invalid.
    let c = |flags, seq, ack, p: &[u8]| tcp(CLIENT, SERVER, 40003, 80, flags, seq, ack, p);
    let s = |flags, seq, ack| tcp(SERVER, CLIENT, 80, 40003, flags, seq, ack, b"");
    assert_eq!(send_ct(&mut dp, 1, &c(SYN, 100, 0, b""), 4).0, ports(&[2]));
    assert_eq!(
        send_ct(&mut dp, 2, &s(SYN | ACK, 900, 101), 5).0,
        ports(&[1])
    );
    assert_eq!(
        send_ct(&mut dp, 1, &c(ACK, 101, 901, b""), 6).0,
        ports(&[2])
    );
    let far = c(ACK, 101u32.wrapping_add(0x8000_0000), 901, b"x");
    assert_ne!(send_ct(&mut dp, 1, &far, 7).0, ports(&[2]));
}

/// Workers share the tracker: a connection opened through one worker is
/// established for the replies another worker switches.
#[test]
fn workers_share_connections() {
    let rules = [
        "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,ct_state=+trk+new,tcp,in_port=1,actions=ct(commit),output:2",
        "table=1,ct_state=+trk+est,in_port=2,actions=output:1",
    ];
    let sw = ct_switch_workers(&rules, 2);
    let (mut a, mut b) = (sw.datapath(0), sw.datapath(1));
    let syn = tcp(CLIENT, SERVER, 40000, 80, SYN, 1000, 0, b"");
    assert_eq!(send_ct(&mut a, 1, &syn, 0).0, ports(&[2]));
    let synack = tcp(SERVER, CLIENT, 80, 40000, SYN | ACK, 5000, 1001, b"");
    assert_eq!(send_ct(&mut b, 2, &synack, 1).0, ports(&[1]));
}

/// `exec(set_field:...->ct_mark)` on commit; later packets of the
/// connection recirculate with the mark and match it.
#[test]
fn ct_mark_set_on_commit_is_matched_later() {
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,ct_state=+trk+new,tcp,in_port=1,actions=ct(commit,exec(set_field:0x2a->ct_mark)),output:2",
        "table=1,priority=20,ct_state=+trk+est,ct_mark=0x2a,actions=output:3",
        "table=1,priority=10,ct_state=+trk+est,actions=output:4",
    ]);
    let mut dp = sw.datapath(0);
    let syn = tcp(CLIENT, SERVER, 40000, 80, SYN, 1000, 0, b"");
    assert_eq!(send_ct(&mut dp, 1, &syn, 0).0, ports(&[2]));
    let synack = tcp(SERVER, CLIENT, 80, 40000, SYN | ACK, 5000, 1001, b"");
    assert_eq!(send_ct(&mut dp, 2, &synack, 1).0, ports(&[3]));
    let ack = tcp(CLIENT, SERVER, 40000, 80, ACK, 1001, 5001, b"");
    assert_eq!(send_ct(&mut dp, 1, &ack, 2).0, ports(&[3]));
    assert_eq!(packets(&sw, "ct_mark=0x2a"), 2);
}

/// Zones isolate: a connection committed in zone 1 is unknown in zone 2.
#[test]
fn zones_isolate_connections() {
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,in_port=1,actions=ct(table=1,zone=1)",
        "priority=100,ip,ct_state=-trk,in_port=2,actions=ct(table=1,zone=2)",
        "priority=100,ip,ct_state=-trk,in_port=3,actions=ct(table=1,zone=1)",
        "table=1,ct_state=+trk+new,ct_zone=1,tcp,actions=ct(commit,zone=1),output:4",
        "table=1,ct_state=+trk+est,ct_zone=1,actions=output:4",
        "table=1,ct_state=+trk+est,ct_zone=2,actions=output:1",
    ]);
    let mut dp = sw.datapath(0);
    let syn = tcp(CLIENT, SERVER, 40000, 80, SYN, 1000, 0, b"");
    assert_eq!(send_ct(&mut dp, 1, &syn, 0).0, ports(&[4]));
    let synack = tcp(SERVER, CLIENT, 80, 40000, SYN | ACK, 5000, 1001, b"");
    // Zone 2 has no such connection: no est rule matches.
    assert_ne!(send_ct(&mut dp, 2, &synack, 1).0, ports(&[1]));
    // Zone 1 has it.
    assert_eq!(send_ct(&mut dp, 3, &synack, 2).0, ports(&[4]));
}

/// SNAT gateway: outbound connections from port 1 leave port 2 from
/// 172.16.0.1; replies are translated back (addresses, ports, IPv4 and
/// TCP checksums) and match the original tuple (`ct_nw_src`, ...).
#[test]
fn snat_translates_and_the_replies_come_back() {
    let gw = [172, 16, 0, 1];
    let sw = ct_switch(&[
        "priority=100,ip,ct_state=-trk,actions=ct(table=1,zone=1,nat)",
        "table=1,ct_state=+trk+new,ip,in_port=1,actions=ct(commit,zone=1,nat(src=172.16.0.1)),output:2",
        "table=1,ct_state=+trk+est,ip,in_port=1,actions=output:2",
        // Replies: matched on the connection's original tuple.
        "table=1,priority=20,ct_state=+trk+est+rpl,ct_nw_src=10.0.0.1,ct_nw_dst=192.168.1.2,ct_nw_proto=6,ct_tp_dst=80,ip,in_port=2,actions=output:1",
        "table=1,priority=10,ct_state=+trk+est,ip,in_port=2,actions=output:3",
    ]);
    let mut dp = sw.datapath(0);
    let syn = tcp(CLIENT, SERVER, 40000, 80, SYN, 1000, 0, b"");
    let (v, out, _) = send_ct(&mut dp, 1, &syn, 0);
    assert_eq!(v, ports(&[2]));
    assert_eq!(out[26..30], gw, "source translated");
    assert_eq!(out[30..34], SERVER);
    assert!(checksums_ok(&out), "checksums after SNAT");
    let sport = u16::from_be_bytes([out[34], out[35]]);
    // The server answers the translated address.
    let synack = tcp(SERVER, gw, 80, sport, SYN | ACK, 5000, 1001, b"");
    let (v, back, _) = send_ct(&mut dp, 2, &synack, 1);
    assert_eq!(v, ports(&[1]));
    assert_eq!(
        back,
        tcp(SERVER, CLIENT, 80, 40000, SYN | ACK, 5000, 1001, b"")
    );
    // Established: further packets are translated by `ct(nat)` in table 0.
    let data = tcp(CLIENT, SERVER, 40000, 80, PSH | ACK, 1001, 5001, b"hello");
    let (v, out, _) = send_ct(&mut dp, 1, &data, 2);
    assert_eq!(v, ports(&[2]));
    assert_eq!(
        out,
        tcp(gw, SERVER, sport, 80, PSH | ACK, 1001, 5001, b"hello")
    );
    let reply = tcp(SERVER, gw, 80, sport, ACK, 5001, 1006, b"");
    let (v, back, _) = send_ct(&mut dp, 2, &reply, 3);
    assert_eq!(v, ports(&[1]));
    assert_eq!(back, tcp(SERVER, CLIENT, 80, 40000, ACK, 5001, 1006, b""));
}

/// IPv6: the original tuple is matched as `ct_ipv6_src`/`ct_ipv6_dst`.
#[test]
fn ipv6_connections_match_ct_ipv6_fields() {
    let sw = ct_switch(&[
        "priority=100,ipv6,ct_state=-trk,actions=ct(table=1)",
        "table=1,priority=20,ct_state=+trk+new,ct_ipv6_src=fd00::1,ct_ipv6_dst=fd00::2,tcp6,actions=ct(commit),output:2",
        "table=1,priority=10,ct_state=+trk+new,actions=output:3",
        "table=1,priority=20,ct_state=+trk+est,ct_ipv6_src=fd00::1,actions=output:1",
    ]);
    let mut dp = sw.datapath(0);
    let (a, b) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
    let syn = tcp6(a, b, 40000, 80, SYN, 1000, 0);
    let (v, out, _) = send_ct(&mut dp, 1, &syn, 0);
    assert_eq!(v, ports(&[2]));
    assert_eq!(out, syn);
    let synack = tcp6(b, a, 80, 40000, SYN | ACK, 5000, 1001);
    assert_eq!(send_ct(&mut dp, 2, &synack, 1).0, ports(&[1]));
    // Another source: new, but not the rule naming fd00::1.
    let other = tcp6("fd00::7".parse().unwrap(), b, 40000, 80, SYN, 1, 0);
    assert_eq!(send_ct(&mut dp, 1, &other, 2).0, ports(&[3]));
}

/// Ethernet/IPv6/TCP, checksum correct.
fn tcp6(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    sp: u16,
    dp: u16,
    flags: u8,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    let mut f = switch::testutil::eth(switch::testutil::MAC_B, switch::testutil::MAC_A, 0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    let mut t = tcp_header(sp, dp, flags, seq, ack);
    let mut ph = Vec::new();
    ph.extend_from_slice(&src.octets());
    ph.extend_from_slice(&dst.octets());
    ph.extend_from_slice(&[0, 0, 0, 20, 0, 0, 0, 6]);
    let c = fold(sum(&t, sum(&ph, 0)));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&t);
    f
}
