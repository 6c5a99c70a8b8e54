//! Arbitrary frames rewritten to an arbitrary tuple of the same family and
//! protocol: `rewrite::rewrite` never panics, the frame still parses to
//! the target tuple, and every checksum valid before is valid after.

#![no_main]

use conntrack::checksum::verify;
use conntrack::packet::{parse, Frag, L4Kind};
use conntrack::rewrite::rewrite;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A target address of `like`'s family from 16 fuzz bytes.
fn addr(like: IpAddr, b: &[u8; 16]) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(*b)),
    }
}

fuzz_target!(|data: &[u8]| {
    // [l3][which: bit0 src, bit1 dst, bit2 ports][src 16][dst 16][sport 2][dport 2] frame...
    if data.len() < 38 {
        return;
    }
    let (l3, which) = (usize::from(data[0] % 32), data[1]);
    let src: [u8; 16] = data[2..18].try_into().unwrap();
    let dst: [u8; 16] = data[18..34].try_into().unwrap();
    let sport = u16::from_be_bytes([data[34], data[35]]).max(1);
    let dport = u16::from_be_bytes([data[36], data[37]]).max(1);
    let mut frame = data[38..].to_vec();
    let Ok(p) = parse(&frame, l3) else { return };
    let t = p.tuple;
    let mut to = t;
    if which & 1 != 0 {
        to.src = addr(t.src, &src);
    }
    if which & 2 != 0 {
        to.dst = addr(t.dst, &dst);
    }
    let has_ports = match &p.kind {
        L4Kind::Other => false,
        L4Kind::IcmpError(e) => matches!(e.inner.proto, 6 | 17) || e.inner.is_icmp(),
        _ => true,
    };
    if which & 4 != 0 && has_ports {
        to.src_port = sport;
        if !t.is_icmp() {
            to.dst_port = dport;
        }
    }
    let before = verify(&frame, &p);
    let orig = frame.clone();
    rewrite(&mut frame, &p, &to).expect("a parsed frame rewrites to a tuple of its kind");
    let q = parse(&frame, l3).expect("a rewritten frame parses");
    assert_eq!(
        (q.tuple.src, q.tuple.dst, q.tuple.src_port),
        (to.src, to.dst, to.src_port)
    );
    if !t.is_icmp() {
        assert_eq!(q.tuple, to);
    }
    assert_eq!((q.l4, q.end, q.frag, q.ipv6), (p.l4, p.end, p.frag, p.ipv6));
    assert_eq!(frame[..l3], orig[..l3]);
    assert_eq!(frame[p.end..], orig[p.end..]);
    let after = verify(&frame, &q);
    for (b, a) in [
        (before.ip, after.ip),
        (before.l4, after.l4),
        (before.inner_ip, after.inner_ip),
    ] {
        if b == Some(true) {
            assert_eq!(a, Some(true), "{before:?} -> {after:?}");
        }
    }
    if p.frag == Frag::None {
        assert_eq!(before.l4.is_some(), after.l4.is_some());
    }
});
