//! The tracker over whole frames: states, directions, TCP windows, ICMP
//! errors, zones, limits, NAT with checksums, expiry, threads.

mod frames;
mod ipf;

use std::net::IpAddr;
use std::sync::Arc;

use frames::*;

use crate::state::*;
use crate::{Config, Conntrack, CtMeta, CtSpec, NatKind, NatRange, NatSpec, Tuple};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;

const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";
const NAT_IP: &str = "192.0.2.1";

fn ct() -> Conntrack {
    Conntrack::new(Config {
        max_conns: 4096,
        default_zone_limit: 0,
    })
}

fn track(ct: &Conntrack, f: &mut [u8], spec: &CtSpec, now: u64) -> CtMeta {
    let mut m = CtMeta::default();
    ct.execute(f, L3, spec, &mut m, now);
    m
}

fn zone(z: u16) -> CtSpec {
    CtSpec {
        zone: z,
        ..CtSpec::default()
    }
}

fn commit(z: u16) -> CtSpec {
    CtSpec {
        zone: z,
        commit: true,
        ..CtSpec::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn snat(to: &str, pmin: u16, pmax: u16) -> CtSpec {
    CtSpec {
        commit: true,
        nat: Some(NatSpec {
            kind: NatKind::Src,
            range: Some(NatRange {
                addr_min: ip(to),
                addr_max: ip(to),
                port_min: pmin,
                port_max: pmax,
            }),
            flags: 0,
        }),
        ..CtSpec::default()
    }
}

fn dnat(to: &str, port: u16) -> CtSpec {
    CtSpec {
        commit: true,
        nat: Some(NatSpec {
            kind: NatKind::Dst,
            range: Some(NatRange {
                addr_min: ip(to),
                addr_max: ip(to),
                port_min: port,
                port_max: port,
            }),
            flags: 0,
        }),
        ..CtSpec::default()
    }
}

fn nat_existing() -> CtSpec {
    CtSpec {
        nat: Some(NatSpec {
            kind: NatKind::Existing,
            range: None,
            flags: 0,
        }),
        ..CtSpec::default()
    }
}

/// SYN, SYN+ACK, ACK between A:40000 and B:80 (client seq 1000, server
/// 5000), committed in `z`; checks the states on the way.
fn handshake(ct: &Conntrack, z: u16) {
    let m = track(
        ct,
        &mut tcp(A, B, 40000, 80, 1000, 0, SYN, 64000, 0, &[]),
        &commit(z),
        0,
    );
    assert_eq!(m.state, TRK | NEW);
    let m = track(
        ct,
        &mut tcp(B, A, 80, 40000, 5000, 1001, SYN | ACK, 64000, 0, &[]),
        &zone(z),
        1,
    );
    assert_eq!(m.state, TRK | EST | RPL);
    let m = track(
        ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]),
        &zone(z),
        2,
    );
    assert_eq!(m.state, TRK | EST);
}

#[test]
fn test_tcp_handshake_established() {
    let ct = ct();
    // Not committed: +new every time.
    for _ in 0..2 {
        let m = track(
            &ct,
            &mut tcp(A, B, 40000, 80, 1000, 0, SYN, 64000, 0, &[]),
            &zone(0),
            0,
        );
        assert_eq!(m.state, TRK | NEW);
        assert_eq!(
            m.orig,
            Some(Tuple {
                src: ip(A),
                dst: ip(B),
                src_port: 40000,
                dst_port: 80,
                proto: 6
            })
        );
    }
    assert_eq!(ct.stats().entries, 0);
    handshake(&ct, 0);
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK | PSH, 64000, 100, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | EST);
    let d = ct.dump(None, 3);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state, "ESTABLISHED");
    assert_eq!(
        d[0].reply,
        Tuple {
            src: ip(B),
            dst: ip(A),
            src_port: 80,
            dst_port: 40000,
            proto: 6
        }
    );
    // OVS's established timeout: 24 h.
    assert_eq!(d[0].expires_in_ms, 24 * 3600 * 1000);
    assert_eq!(ct.stats().committed, 1);
}

#[test]
fn test_tcp_reply_direction_orig_tuple() {
    let ct = ct();
    handshake(&ct, 0);
    let m = track(
        &ct,
        &mut tcp(B, A, 80, 40000, 5001, 1001, ACK | PSH, 64000, 50, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | EST | RPL);
    // The original direction's tuple, also for reply packets.
    assert_eq!(m.orig.unwrap().src, ip(A));
    assert_eq!(m.orig.unwrap().dst_port, 80);
}

#[test]
fn test_tcp_window_scale_handshake() {
    let ct = ct();
    // NOP, WS=7 on both SYNs: windows scaled by 128 afterwards.
    let ws = [1, 3, 3, 7];
    track(
        &ct,
        &mut tcp(A, B, 1, 2, 100, 0, SYN, 65535, 0, &ws),
        &commit(0),
        0,
    );
    track(
        &ct,
        &mut tcp(B, A, 2, 1, 900, 101, SYN | ACK, 65535, 0, &ws),
        &zone(0),
        0,
    );
    track(
        &ct,
        &mut tcp(A, B, 1, 2, 101, 901, ACK, 512, 0, &[]),
        &zone(0),
        0,
    );
    // B sends 60 KB ahead: inside A's scaled window (512 << 7 = 64 KiB).
    let m = track(
        &ct,
        &mut tcp(B, A, 2, 1, 901 + 60000, 101, ACK, 512, 1000, &[]),
        &zone(0),
        0,
    );
    assert_eq!(m.state, TRK | EST | RPL);
    // Beyond it: invalid.
    let m = track(
        &ct,
        &mut tcp(B, A, 2, 1, 901 + 70000, 101, ACK, 512, 1000, &[]),
        &zone(0),
        0,
    );
    assert_eq!(m.state, TRK | INV);
}

#[test]
fn test_tcp_out_of_window_invalid() {
    let ct = ct();
    handshake(&ct, 0);
    let m = track(
        &ct,
        &mut tcp(
            A,
            B,
            40000,
            80,
            1001 + 10_000_000,
            5001,
            ACK,
            64000,
            10,
            &[],
        ),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | INV);
    // An ACK for data never sent.
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001 + 900_000, ACK, 64000, 0, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | INV);
    // A RST whose sequence number is not the expected one.
    let m = track(
        &ct,
        &mut tcp(B, A, 80, 40000, 5001 + 3000, 1001, RST, 0, 0, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | INV);
    // The connection is untouched: in-window data still established.
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 10, &[]),
        &zone(0),
        4,
    );
    assert_eq!(m.state, TRK | EST);
    assert!(ct.stats().invalid >= 3);
}

#[test]
fn test_tcp_bad_flags_invalid() {
    let ct = ct();
    for fl in [SYN | FIN, SYN | RST, 0, FIN, PSH, FIN | PSH | 0x20] {
        let m = track(
            &ct,
            &mut tcp(A, B, 1234, 80, 1, 0, fl, 100, 0, &[]),
            &commit(0),
            0,
        );
        assert_eq!(m.state, TRK | INV, "flags {fl:#x} must be invalid");
    }
    // A SYN+ACK may not start a connection.
    let m = track(
        &ct,
        &mut tcp(A, B, 1234, 80, 1, 9, SYN | ACK, 100, 0, &[]),
        &commit(0),
        0,
    );
    assert_eq!(m.state, TRK | INV);
    assert_eq!(ct.stats().entries, 0);
    // Bad flags on an established connection too.
    handshake(&ct, 0);
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, SYN | FIN, 100, 0, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | INV);
}

#[test]
fn test_tcp_fin_teardown_and_reopen() {
    let ct = ct();
    handshake(&ct, 0);
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, FIN | ACK, 64000, 0, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | EST);
    assert_eq!(ct.dump(None, 3)[0].state, "FIN_WAIT");
    track(
        &ct,
        &mut tcp(B, A, 80, 40000, 5001, 1002, FIN | ACK, 64000, 0, &[]),
        &zone(0),
        4,
    );
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1002, 5002, ACK, 64000, 0, &[]),
        &zone(0),
        5,
    );
    assert_eq!(m.state, TRK | EST);
    let d = ct.dump(None, 5);
    assert_eq!(d[0].state, "TIME_WAIT");
    assert_eq!(d[0].expires_in_ms, 30_000); // OVS's tcp_close timeout
                                            // A new SYN on the closed connection starts a new one (+new).
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 77777, 0, SYN, 64000, 0, &[]),
        &commit(0),
        6,
    );
    assert_eq!(m.state, TRK | NEW);
    assert_eq!(ct.dump(None, 6)[0].state, "SYN_SENT");
    assert_eq!(ct.stats().entries, 1);
}

#[test]
fn test_tcp_rst_closes() {
    let ct = ct();
    handshake(&ct, 0);
    let m = track(
        &ct,
        &mut tcp(B, A, 80, 40000, 5001, 1001, RST | ACK, 0, 0, &[]),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | EST | RPL);
    assert_eq!(ct.dump(None, 3)[0].state, "TIME_WAIT");
    assert_eq!(ct.dump(None, 3)[0].expires_in_ms, 30_000);
}

#[test]
fn test_midstream_ack_picked_up() {
    let ct = ct();
    // A connection seen first mid-stream (e.g. after a flush) is accepted.
    let m = track(
        &ct,
        &mut tcp(A, B, 5555, 22, 1_000_000, 2_000_000, ACK, 1000, 100, &[]),
        &commit(0),
        0,
    );
    assert_eq!(m.state, TRK | NEW);
    let m = track(
        &ct,
        &mut tcp(B, A, 22, 5555, 2_000_000, 1_000_100, ACK, 1000, 100, &[]),
        &zone(0),
        1,
    );
    assert_eq!(m.state, TRK | EST | RPL);
}

#[test]
fn test_udp_new_until_reply() {
    let ct = ct();
    let m = track(&ct, &mut udp(A, B, 5000, 53, 20), &commit(0), 0);
    assert_eq!(m.state, TRK | NEW);
    let m = track(&ct, &mut udp(A, B, 5000, 53, 20), &zone(0), 1);
    assert_eq!(m.state, TRK | NEW);
    assert_eq!(ct.dump(None, 1)[0].expires_in_ms, 60_000);
    let m = track(&ct, &mut udp(B, A, 53, 5000, 80), &zone(0), 2);
    assert_eq!(m.state, TRK | EST | RPL);
    let m = track(&ct, &mut udp(A, B, 5000, 53, 20), &zone(0), 3);
    assert_eq!(m.state, TRK | EST);
    assert_eq!(ct.dump(None, 3)[0].expires_in_ms, 30_000);
}

#[test]
fn test_icmp_echo() {
    let ct = ct();
    // A reply alone cannot start anything.
    let m = track(&ct, &mut icmp_query(B, A, 0, 7, 1), &commit(0), 0);
    assert_eq!(m.state, TRK | INV);
    let m = track(&ct, &mut icmp_query(A, B, 8, 7, 1), &commit(0), 0);
    assert_eq!(m.state, TRK | NEW);
    // ct_tp_src/dst of ICMP: type and code.
    assert_eq!(
        m.orig,
        Some(Tuple {
            src: ip(A),
            dst: ip(B),
            src_port: 8,
            dst_port: 0,
            proto: 1
        })
    );
    let m = track(&ct, &mut icmp_query(B, A, 0, 7, 1), &zone(0), 1);
    assert_eq!(m.state, TRK | EST | RPL);
    // Another identifier is another connection.
    let m = track(&ct, &mut icmp_query(B, A, 0, 8, 1), &zone(0), 1);
    assert_eq!(m.state, TRK | INV);
    let m = track(&ct, &mut icmp_query(A, B, 8, 7, 2), &zone(0), 2);
    assert_eq!(m.state, TRK | EST);
}

#[test]
fn test_icmp_error_related() {
    let ct = ct();
    handshake(&ct, 0);
    // A router between tells A that B is unreachable, quoting A's segment.
    let seg = tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 10, &[]);
    let m = track(
        &ct,
        &mut icmp_error("10.0.0.254", A, 3, 1, l3(&seg), 28),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | REL | RPL);
    assert_eq!(m.orig.unwrap().src, ip(A));
    // A router on A's side, about B's segment.
    let seg = tcp(B, A, 80, 40000, 5001, 1001, ACK, 64000, 10, &[]);
    let m = track(
        &ct,
        &mut icmp_error("10.0.0.253", B, 11, 0, l3(&seg), 48),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | REL);
    // About a connection nobody has: invalid.
    let seg = tcp(A, B, 40001, 80, 1, 0, SYN, 64000, 0, &[]);
    let m = track(
        &ct,
        &mut icmp_error("10.0.0.254", A, 3, 1, l3(&seg), 28),
        &commit(0),
        3,
    );
    assert_eq!(m.state, TRK | INV);
    // The quoted packet's source must be the error's destination.
    let seg = tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 10, &[]);
    let m = track(
        &ct,
        &mut icmp_error("10.0.0.254", "10.0.0.9", 3, 1, l3(&seg), 28),
        &zone(0),
        3,
    );
    assert_eq!(m.state, TRK | INV);
}

#[test]
fn test_ipv6_tcp_udp_icmpv6() {
    let ct = ct();
    let (a, b) = ("fd00::1", "fd00::2");
    assert_eq!(
        track(
            &ct,
            &mut tcp(a, b, 3000, 443, 10, 0, SYN, 1000, 0, &[]),
            &commit(0),
            0
        )
        .state,
        TRK | NEW
    );
    assert_eq!(
        track(
            &ct,
            &mut tcp(b, a, 443, 3000, 90, 11, SYN | ACK, 1000, 0, &[]),
            &zone(0),
            0
        )
        .state,
        TRK | EST | RPL
    );
    assert_eq!(
        track(
            &ct,
            &mut tcp(a, b, 3000, 443, 11, 91, ACK, 1000, 0, &[]),
            &zone(0),
            0
        )
        .state,
        TRK | EST
    );
    assert_eq!(
        track(&ct, &mut udp(a, b, 546, 547, 10), &commit(0), 0).state,
        TRK | NEW
    );
    assert_eq!(
        track(&ct, &mut udp(b, a, 547, 546, 10), &zone(0), 0).state,
        TRK | EST | RPL
    );
    assert_eq!(
        track(&ct, &mut icmp_query(a, b, 128, 3, 1), &commit(0), 0).state,
        TRK | NEW
    );
    assert_eq!(
        track(&ct, &mut icmp_query(b, a, 129, 3, 1), &zone(0), 0).state,
        TRK | EST | RPL
    );
    // ICMPv6 packet too big about b's segment, sent to b.
    let seg = tcp(b, a, 443, 3000, 91, 11, ACK, 1000, 1400, &[]);
    let m = track(
        &ct,
        &mut icmp_error("fd00::fe", b, 2, 0, l3(&seg), 200),
        &zone(0),
        0,
    );
    assert_eq!(m.state, TRK | REL);
    assert_eq!(ct.stats().entries, 3);
    // An IPv4 connection with the "same" numbers is not these.
    assert_eq!(
        track(
            &ct,
            &mut udp("0.0.0.0", "0.0.0.0", 546, 547, 1),
            &zone(0),
            0
        )
        .state,
        TRK | NEW
    );
}

#[test]
fn test_zones_isolate() {
    let ct = ct();
    handshake(&ct, 1);
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]),
        &zone(2),
        3,
    );
    assert_eq!(m.state, TRK | NEW);
    assert_eq!(m.zone, 2);
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]),
        &zone(1),
        3,
    );
    assert_eq!(m.state, TRK | EST);
    assert_eq!(ct.dump(Some(1), 3).len(), 1);
    assert_eq!(ct.dump(Some(2), 3).len(), 0);
    assert_eq!(ct.flush(Some(2)), 0);
    assert_eq!(ct.flush(Some(1)), 1);
    assert_eq!(ct.stats().entries, 0);
    assert_eq!(
        track(
            &ct,
            &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]),
            &zone(1),
            3
        )
        .state,
        TRK | NEW
    );
}

#[test]
fn test_entering_other_zone_resets_state() {
    let ct = ct();
    handshake(&ct, 1);
    let mut m = CtMeta::default();
    ct.execute(
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]),
        L3,
        &zone(1),
        &mut m,
        3,
    );
    assert_eq!(m.state, TRK | EST);
    ct.execute(
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]),
        L3,
        &zone(9),
        &mut m,
        3,
    );
    assert_eq!((m.state, m.zone), (TRK | NEW, 9));
}

#[test]
fn test_zone_limit_refuses_new_keeps_established() {
    let ct = ct();
    ct.set_zone_limit(5, Some(1));
    handshake(&ct, 5);
    // A second connection in zone 5: refused, stays +new, not stored.
    let m = track(
        &ct,
        &mut tcp(A, B, 40001, 80, 1, 0, SYN, 64000, 0, &[]),
        &commit(5),
        3,
    );
    assert_eq!(m.state, TRK | NEW);
    assert_eq!(ct.stats().limit_drops, 1);
    assert_eq!(ct.zone_count(5), 1);
    // Other zones are not limited.
    assert_eq!(
        track(
            &ct,
            &mut tcp(A, B, 40001, 80, 1, 0, SYN, 64000, 0, &[]),
            &commit(6),
            3
        )
        .state,
        TRK | NEW
    );
    assert_eq!(ct.zone_count(6), 1);
    // The established one keeps flowing.
    let m = track(
        &ct,
        &mut tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 10, &[]),
        &zone(5),
        4,
    );
    assert_eq!(m.state, TRK | EST);
    // Back to the default (unlimited).
    ct.set_zone_limit(5, None);
    track(
        &ct,
        &mut tcp(A, B, 40001, 80, 1, 0, SYN, 64000, 0, &[]),
        &commit(5),
        5,
    );
    assert_eq!(ct.zone_count(5), 2);
}

#[test]
fn test_table_limit() {
    let ct = Conntrack::new(Config {
        max_conns: 3,
        default_zone_limit: 0,
    });
    for p in 0..5u16 {
        track(&ct, &mut udp(A, B, 1000 + p, 53, 1), &commit(0), 0);
    }
    let s = ct.stats();
    assert_eq!((s.entries, s.committed, s.limit_drops), (3, 3, 2));
    assert_eq!(
        track(&ct, &mut udp(B, A, 53, 1000, 1), &zone(0), 1).state,
        TRK | EST | RPL
    );
    // Room again after a flush.
    ct.flush(None);
    assert_eq!(
        track(&ct, &mut udp(A, B, 1004, 53, 1), &commit(0), 2).state,
        TRK | NEW
    );
    assert_eq!(ct.stats().entries, 1);
}

#[test]
fn test_default_zone_limit_from_config() {
    let ct = Conntrack::new(Config {
        max_conns: 100,
        default_zone_limit: 2,
    });
    for p in 0..4u16 {
        track(&ct, &mut udp(A, B, 1000 + p, 53, 1), &commit(3), 0);
    }
    assert_eq!(ct.zone_count(3), 2);
    assert_eq!(ct.stats().limit_drops, 2);
}

#[test]
fn test_mark_label_only_with_commit() {
    let ct = ct();
    let set = |commit: bool, v: u32| CtSpec {
        commit,
        set_mark: Some((v, 0xff)),
        set_label: Some(((v as u128) << 64, u128::MAX << 64)),
        ..CtSpec::default()
    };
    let m = track(&ct, &mut udp(A, B, 1, 2, 1), &set(true, 0x12), 0);
    assert_eq!((m.mark, m.label), (0x12, 0x12u128 << 64));
    // Without commit the exec part is not applied.
    let m = track(&ct, &mut udp(A, B, 1, 2, 1), &set(false, 0x34), 0);
    assert_eq!(m.mark, 0x12);
    // Masked: only the low byte changes.
    let m = track(
        &ct,
        &mut udp(B, A, 2, 1, 1),
        &CtSpec {
            commit: true,
            set_mark: Some((0xab00, 0xff00)),
            ..CtSpec::default()
        },
        0,
    );
    assert_eq!(m.mark, 0xab12);
    assert_eq!(ct.dump(None, 0)[0].mark, 0xab12);
}

#[test]
fn test_force_ends_reply_direction_connection() {
    let ct = ct();
    handshake(&ct, 0);
    // B opens toward A with the same 5-tuple reversed; force commits it anew.
    let force = CtSpec {
        commit: true,
        force: true,
        ..CtSpec::default()
    };
    let m = track(&ct, &mut udp(A, B, 7, 8, 1), &commit(0), 0);
    assert_eq!(m.state, TRK | NEW);
    let m = track(&ct, &mut udp(B, A, 8, 7, 1), &force, 1);
    assert_eq!(m.state, TRK | NEW);
    let d = ct.dump(None, 1);
    let u = d.iter().find(|c| c.orig.proto == 17).unwrap();
    assert_eq!(u.orig.src, ip(B));
    // The original-direction packet of the old connection is now a reply.
    assert_eq!(
        track(&ct, &mut udp(A, B, 7, 8, 1), &zone(0), 2).state,
        TRK | EST | RPL
    );
}

#[test]
fn test_fragments_and_garbage_invalid() {
    let ct = ct();
    let mut f = udp(A, B, 1, 2, 30);
    f[L3 + 6] = 0x20; // more fragments
    let m = track(&ct, &mut f, &commit(0), 0);
    assert_eq!(m.state, TRK | INV);
    assert_eq!(m.orig, None);
    let mut f = udp(A, B, 1, 2, 30);
    f[L3 + 7] = 10; // offset 80
    assert_eq!(track(&ct, &mut f, &commit(0), 0).state, TRK | INV);
    // IPv6 fragment header.
    let mut f6 = ip_frag6();
    assert_eq!(track(&ct, &mut f6, &commit(0), 0).state, TRK | INV);
    // Truncations and random bytes never panic and are invalid.
    let good = tcp(A, B, 1, 2, 3, 4, ACK, 5, 20, &[]);
    for n in 0..good.len() - 20 {
        let mut t = good[..n].to_vec();
        assert_eq!(
            track(&ct, &mut t, &commit(0), 0).state,
            TRK | INV,
            "cut at {n}"
        );
    }
    let mut x: u64 = 0x1234_5678;
    for _ in 0..2000 {
        let mut t: Vec<u8> = (0..(x % 120) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        if t.len() > L3 {
            t[L3] = if x & 1 == 0 { 0x45 } else { 0x60 };
        }
        let m = track(&ct, &mut t, &commit(0), 0);
        assert!(m.state & TRK != 0);
    }
    assert_eq!(ct.stats().entries as usize, ct.dump(None, 0).len());
}

fn ip_frag6() -> Vec<u8> {
    // UDP behind a fragment header (next header 44).
    let mut body = vec![17, 0, 0, 0, 0, 0, 0, 1];
    body.extend_from_slice(&[0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3, 4]);
    let mut f = frames::ip("fd00::1", "fd00::2", 44, body, None);
    f[L3 + 6] = 44;
    f
}

#[test]
fn test_snat_round_trip_checksums() {
    let ct = ct();
    // Client A:40000 → B:80, source translated to NAT_IP.
    let mut syn = tcp(A, B, 40000, 80, 1000, 0, SYN, 64000, 0, &[]);
    let m = track(&ct, &mut syn, &snat(NAT_IP, 0, 0), 0);
    assert_eq!(m.state, TRK | NEW | SNAT);
    assert_eq!(tuple(&syn), (ip(NAT_IP), ip(B), 40000, 80));
    assert!(checksums_ok(&syn));
    // B answers the translated address; the reply is translated back.
    let mut sa = tcp(B, NAT_IP, 80, 40000, 5000, 1001, SYN | ACK, 64000, 0, &[]);
    let m = track(&ct, &mut sa, &nat_existing(), 1);
    assert_eq!(m.state, TRK | EST | RPL | DNAT);
    assert_eq!(tuple(&sa), (ip(B), ip(A), 80, 40000));
    assert!(checksums_ok(&sa));
    assert_eq!(m.orig.unwrap().src, ip(A));
    // Without `nat` in the action the frame is left alone.
    let mut ack = tcp(A, B, 40000, 80, 1001, 5001, ACK, 64000, 0, &[]);
    let m = track(&ct, &mut ack, &zone(0), 2);
    assert_eq!(m.state, TRK | EST);
    assert_eq!(tuple(&ack), (ip(A), ip(B), 40000, 80));
    let mut data = tcp(A, B, 40000, 80, 1001, 5001, ACK | PSH, 64000, 333, &[]);
    let m = track(&ct, &mut data, &nat_existing(), 3);
    assert_eq!(m.state, TRK | EST | SNAT);
    assert_eq!(tuple(&data), (ip(NAT_IP), ip(B), 40000, 80));
    assert!(checksums_ok(&data));
    let d = ct.dump(None, 3);
    assert_eq!(
        d[0].reply,
        Tuple {
            src: ip(B),
            dst: ip(NAT_IP),
            src_port: 80,
            dst_port: 40000,
            proto: 6
        }
    );
    // UDP too (and a second ct in the same zone does not translate twice).
    let mut u = udp(A, B, 5353, 53, 40);
    let mut m = CtMeta::default();
    ct.execute(&mut u, L3, &snat(NAT_IP, 0, 0), &mut m, 4);
    ct.execute(&mut u, L3, &nat_existing(), &mut m, 4);
    assert_eq!(m.state, TRK | NEW | SNAT);
    assert_eq!(tuple(&u), (ip(NAT_IP), ip(B), 5353, 53));
    assert!(checksums_ok(&u));
    let mut r = udp(B, NAT_IP, 53, 5353, 40);
    track(&ct, &mut r, &nat_existing(), 5);
    assert_eq!(tuple(&r), (ip(B), ip(A), 53, 5353));
    assert!(checksums_ok(&r));
}

#[test]
fn test_dnat_round_trip_checksums() {
    let ct = ct();
    // A reaches the service at B:80, translated to 10.9.0.5:8080.
    let mut syn = tcp(A, B, 40000, 80, 1000, 0, SYN, 64000, 0, &[]);
    let m = track(&ct, &mut syn, &dnat("10.9.0.5", 8080), 0);
    assert_eq!(m.state, TRK | NEW | DNAT);
    assert_eq!(tuple(&syn), (ip(A), ip("10.9.0.5"), 40000, 8080));
    assert!(checksums_ok(&syn));
    let mut sa = tcp(
        "10.9.0.5",
        A,
        8080,
        40000,
        5000,
        1001,
        SYN | ACK,
        64000,
        0,
        &[],
    );
    let m = track(&ct, &mut sa, &nat_existing(), 1);
    assert_eq!(m.state, TRK | EST | RPL | SNAT);
    assert_eq!(tuple(&sa), (ip(B), ip(A), 80, 40000));
    assert!(checksums_ok(&sa));
    // IPv6 DNAT of an ICMPv6 echo (identifier kept).
    let mut e = icmp_query("fd00::1", "fd00::2", 128, 42, 1);
    let spec = CtSpec {
        commit: true,
        nat: Some(NatSpec {
            kind: NatKind::Dst,
            range: Some(NatRange {
                addr_min: ip("fd00::99"),
                addr_max: ip("fd00::99"),
                port_min: 0,
                port_max: 0,
            }),
            flags: 0,
        }),
        ..CtSpec::default()
    };
    assert_eq!(track(&ct, &mut e, &spec, 0).state, TRK | NEW | DNAT);
    assert_eq!(tuple(&e), (ip("fd00::1"), ip("fd00::99"), 42, 0));
    assert!(checksums_ok(&e));
    let mut r = icmp_query("fd00::99", "fd00::1", 129, 42, 1);
    assert_eq!(
        track(&ct, &mut r, &nat_existing(), 0).state,
        TRK | EST | RPL | SNAT
    );
    assert_eq!(tuple(&r), (ip("fd00::2"), ip("fd00::1"), 42, 0));
    assert!(checksums_ok(&r));
}

#[test]
fn test_snat_port_collision_allocates_another() {
    let ct = ct();
    // Two clients use the same source port toward the same server.
    let mut s1 = tcp(A, B, 40000, 80, 1, 0, SYN, 1000, 0, &[]);
    let mut s2 = tcp("10.0.0.3", B, 40000, 80, 1, 0, SYN, 1000, 0, &[]);
    track(&ct, &mut s1, &snat(NAT_IP, 0, 0), 0);
    track(&ct, &mut s2, &snat(NAT_IP, 0, 0), 0);
    let (p1, p2) = (tuple(&s1).2, tuple(&s2).2);
    assert_eq!(p1, 40000);
    assert_ne!(p2, 40000);
    assert!((1024..=65535).contains(&p2));
    assert!(checksums_ok(&s2));
    // Each reply finds its own client.
    let mut r2 = tcp(B, NAT_IP, 80, p2, 9, 2, SYN | ACK, 1000, 0, &[]);
    track(&ct, &mut r2, &nat_existing(), 1);
    assert_eq!(tuple(&r2), (ip(B), ip("10.0.0.3"), 80, 40000));
    // A small range is exhausted: the next commit is refused (+new, no NAT).
    let ct = self::ct();
    for i in 0..4u16 {
        let mut f = udp(A, B, 2000 + i, 53, 1);
        assert_eq!(
            track(&ct, &mut f, &snat(NAT_IP, 7000, 7003), 0).state,
            TRK | NEW | SNAT
        );
        assert!((7000..=7003).contains(&tuple(&f).2));
    }
    let mut f = udp(A, B, 3000, 53, 1);
    assert_eq!(
        track(&ct, &mut f, &snat(NAT_IP, 7000, 7003), 0).state,
        TRK | NEW
    );
    assert_eq!(tuple(&f).0, ip(A));
    assert_eq!(ct.stats().entries, 4);
    let ports: std::collections::HashSet<u16> =
        ct.dump(None, 0).iter().map(|c| c.reply.dst_port).collect();
    assert_eq!(ports.len(), 4);
}

#[test]
fn test_icmp_error_related_translated_back() {
    let ct = ct();
    let mut syn = tcp(A, B, 40000, 80, 1000, 0, SYN, 64000, 0, &[]);
    track(&ct, &mut syn, &snat(NAT_IP, 0, 0), 0);
    // A router beyond the NAT reports the translated segment to NAT_IP.
    let mut err = icmp_error("198.51.100.1", NAT_IP, 3, 3, l3(&syn), 28);
    let m = track(&ct, &mut err, &nat_existing(), 1);
    assert_eq!(m.state, TRK | REL | RPL | DNAT);
    // Outer destination and the quoted packet are the client's again.
    let (s, d, _, _) = tuple(&err);
    assert_eq!((s, d), (ip("198.51.100.1"), ip(A)));
    assert_eq!(inner_tuple(&err), (ip(A), ip(B), 40000, 80));
    assert!(checksums_ok(&err));
}

#[test]
fn test_expiry_via_sweep() {
    let ct = ct();
    track(&ct, &mut udp(A, B, 1, 2, 1), &commit(0), 0);
    handshake(&ct, 0);
    track(&ct, &mut icmp_query(A, B, 8, 1, 1), &commit(0), 0);
    assert_eq!(ct.stats().entries, 3);
    assert_eq!(ct.sweep(59_999, 100), 0);
    // UDP and ICMP first-packet timeouts are 60 s.
    assert_eq!(ct.sweep(60_001, 100), 2);
    assert_eq!(ct.stats().entries, 1);
    assert_eq!(ct.sweep(60_001 + 24 * 3600 * 1000, 100), 1);
    let s = ct.stats();
    assert_eq!((s.entries, s.expired), (0, 3));
    // An expired connection not swept yet is not found by packets either.
    track(&ct, &mut udp(A, B, 1, 2, 1), &commit(0), 0);
    assert_eq!(
        track(&ct, &mut udp(B, A, 2, 1, 1), &zone(0), 70_000).state,
        TRK | NEW
    );
    // The budget bounds the work.
    for p in 0..50u16 {
        track(&ct, &mut udp(A, B, 100 + p, 2, 1), &commit(0), 0);
    }
    assert_eq!(ct.sweep(100_000, 10), 10);
    assert_eq!(ct.sweep(100_000, 1000), 40);
    assert_eq!(ct.stats().entries, 0);
}

#[test]
fn test_nat_expiry_frees_tuple() {
    let ct = ct();
    for round in 0..3u64 {
        let mut f = udp(A, B, 5000, 53, 1);
        let m = track(&ct, &mut f, &snat(NAT_IP, 6000, 6000), round * 100_000);
        assert_eq!(m.state, TRK | NEW | SNAT, "round {round}");
        assert_eq!(tuple(&f).2, 6000);
        let mut other = udp("10.0.0.7", B, 5000, 53, 1);
        assert_eq!(
            track(&ct, &mut other, &snat(NAT_IP, 6000, 6000), round * 100_000).state,
            TRK | NEW
        );
        assert_eq!(ct.sweep(round * 100_000 + 61_000, 1000), 1);
    }
}

#[test]
fn test_many_nat_connections_cross_shards() {
    let ct = ct();
    let n = 2000u16;
    for i in 0..n {
        let src = format!("10.1.{}.{}", i / 200, i % 200 + 1);
        let mut f = udp(&src, B, 1000 + i, 53, 1);
        assert_eq!(
            track(&ct, &mut f, &snat(NAT_IP, 0, 0), 0).state,
            TRK | NEW | SNAT
        );
    }
    for i in 0..n {
        let mut r = udp(B, NAT_IP, 53, 1000 + i, 1);
        assert_eq!(
            track(&ct, &mut r, &nat_existing(), 1).state,
            TRK | EST | RPL | DNAT,
            "conn {i}"
        );
        let src = format!("10.1.{}.{}", i / 200, i % 200 + 1);
        assert_eq!(tuple(&r).1, ip(&src));
    }
    assert_eq!(ct.flush(None), n as usize);
    assert_eq!(ct.stats().entries, 0);
    // Flushed tuples are free again (no foreign records left behind).
    let mut f = udp("10.1.0.1", B, 1000, 53, 1);
    assert_eq!(
        track(&ct, &mut f, &snat(NAT_IP, 1000, 1000), 2).state,
        TRK | NEW | SNAT
    );
}

#[test]
fn test_two_threads_same_table() {
    let ct = Arc::new(ct());
    let threads: Vec<_> = (0..2u16)
        .map(|t| {
            let ct = ct.clone();
            std::thread::spawn(move || {
                for round in 0..20u64 {
                    for i in 0..100u16 {
                        // Both threads work on the same 100 connections.
                        let mut f = udp(A, B, 10_000 + i, 53, 1);
                        let m = track(&ct, &mut f, &commit(0), round);
                        assert!(m.state & (NEW | EST) != 0 && m.state & INV == 0);
                        let mut r = udp(B, A, 53, 10_000 + i, 1);
                        let m = track(&ct, &mut r, &zone(0), round);
                        assert_eq!(m.state, TRK | EST | RPL);
                        // And on their own NAT connections.
                        let mut s = udp("10.0.0.5", B, 20_000 + t * 1000 + i, 53, 1);
                        track(&ct, &mut s, &snat(NAT_IP, 0, 0), round);
                    }
                    ct.sweep(round, 10);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = ct.stats();
    assert_eq!(s.entries, 100 + 200);
    assert_eq!(s.committed, 300);
    assert_eq!(ct.dump(None, 0).len(), 300);
}

#[test]
fn test_bad_checksum_invalid_only_when_verifying() {
    let ct = ct();
    let mut bad = udp(A, B, 1, 2, 10);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert_eq!(track(&ct, &mut bad.clone(), &commit(0), 0).state, TRK | NEW);
    ct.flush(None);
    ct.set_verify_checksums(true);
    assert_eq!(track(&ct, &mut bad.clone(), &commit(0), 0).state, TRK | INV);
    let mut ip_bad = udp(A, B, 1, 2, 10);
    ip_bad[L3 + 10] ^= 1;
    assert_eq!(track(&ct, &mut ip_bad, &commit(0), 0).state, TRK | INV);
    assert_eq!(
        track(&ct, &mut udp(A, B, 1, 2, 10), &commit(0), 0).state,
        TRK | NEW
    );
    assert_eq!(ct.stats().entries, 1);
}
