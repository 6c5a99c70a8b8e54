#![allow(dead_code)]
use std::sync::Arc;

use switch::datapath::Datapath;
use switch::frame::{Frame, VecFrame};
use switch::switch::{Switch, SwitchConfig};
use switch::verdict::Verdict;

use conntrack::{Config, Conntrack};
use switch::testutil::{MAC_A, MAC_B};

pub fn switch_with(rules: &[&str], ports: &[u16]) -> Arc<Switch> {
    let sw = Switch::new(SwitchConfig {
        workers: 2,
        cache_entries: 4096,
        ..Default::default()
    });
    for p in ports {
        sw.port_add(*p).unwrap();
    }
    for r in rules {
        sw.table
            .add(r.parse().unwrap_or_else(|e| panic!("{r}: {e}")), 0)
            .unwrap();
    }
    sw
}

pub fn send(dp: &mut Datapath, in_port: u16, frame: &[u8], now: u64) -> (Verdict, Vec<u8>) {
    let mut fs = [VecFrame::new(frame)];
    let mut vs = [Verdict::default()];
    dp.process_burst(in_port, &mut fs, &mut vs, now);
    (vs[0], fs[0].data().to_vec())
}

/// One rule, ports 1..=4, one frame: verdict and bytes out.
pub fn run1(rule: &str, in_port: u16, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let sw = switch_with(&[rule], &[1, 2, 3, 4]);
    let mut dp = sw.datapath(0);
    send(&mut dp, in_port, frame, 0)
}

pub fn ports(ps: &[u16]) -> Verdict {
    Verdict::Output(ps.iter().fold(0u64, |m, p| m | 1 << p))
}

// ---------------------------------------------------------------------
// Connection tracking (tests/ct*.rs): TCP frames with correct checksums,
// a switch with a tracker.

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub const CLIENT: [u8; 4] = [10, 0, 0, 1];
pub const SERVER: [u8; 4] = [192, 168, 1, 2];

/// RFC 1071 sum of `data` folded into `acc`.
pub fn sum(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Ethernet/IPv4/TCP with correct checksums, window 64240, payload.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sp: u16,
    dp: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = MAC_B.to_vec();
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 20 + payload.len();
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = fold(sum(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut t = tcp_header(sp, dp, flags, seq, ack).to_vec();
    t.extend_from_slice(payload);
    f.extend_from_slice(&t);
    let l4 = 34;
    let c = fold(l4_sum(&f));
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    f
}

/// A 20-byte TCP header without options, window 64240, checksum 0.
pub fn tcp_header(sp: u16, dp: u16, flags: u8, seq: u32, ack: u32) -> [u8; 20] {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t
}

/// The TCP/UDP sum (pseudo-header included) of an untagged IPv4 frame.
pub fn l4_sum(f: &[u8]) -> u32 {
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let seg = &f[34..14 + total];
    let mut ph = Vec::new();
    ph.extend_from_slice(&f[26..34]);
    ph.extend_from_slice(&[0, f[23]]);
    ph.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    sum(seg, sum(&ph, 0))
}

/// IPv4 header and TCP checksums of an untagged frame verify.
pub fn checksums_ok(f: &[u8]) -> bool {
    fold(sum(&f[14..34], 0)) == 0 && fold(l4_sum(f)) == 0
}

pub fn tracker() -> Arc<Conntrack> {
    Arc::new(Conntrack::new(Config {
        max_conns: 4096,
        default_zone_limit: 0,
    }))
}

pub fn ct_switch(rules: &[&str]) -> Arc<Switch> {
    ct_switch_workers(rules, 1)
}

/// [`ct_switch`] with `workers` datapaths.
pub fn ct_switch_workers(rules: &[&str], workers: usize) -> Arc<Switch> {
    let sw = Switch::new(SwitchConfig {
        workers,
        cache_entries: 4096,
        ..Default::default()
    });
    for p in 1..=4 {
        sw.port_add(p).unwrap();
    }
    sw.set_conntrack(tracker()).unwrap();
    for r in rules {
        sw.table
            .add(r.parse().unwrap_or_else(|e| panic!("{r}: {e}")), 0)
            .unwrap();
    }
    sw
}

/// Verdict, final bytes, and the copies (port set, bytes) sent before.
pub type Sent = (Verdict, Vec<u8>, Vec<(u64, Vec<u8>)>);

/// One frame through `process_burst_copies`: its verdict, final bytes,
/// and the copies (port set, bytes) sent before.
pub fn send_ct(dp: &mut Datapath, in_port: u16, frame: &[u8], now: u64) -> Sent {
    let mut fs = [VecFrame::new(frame)];
    let mut vs = [Verdict::default()];
    let mut copies = Vec::new();
    dp.process_burst_copies(in_port, &mut fs, &mut vs, &mut copies, now);
    let copies = copies
        .into_iter()
        .map(|(f, m)| (m, f.data().to_vec()))
        .collect();
    (vs[0], fs[0].data().to_vec(), copies)
}

/// A frame's in port, bytes and expected verdict.
pub type Step = (u16, Vec<u8>, Verdict);

/// An HTTP exchange between CLIENT:40000 on port 1 and SERVER:80 on port
/// 2, each frame expected on the other port: handshake, request, reply.
pub fn http_steps() -> Vec<Step> {
    let c = |flags, seq, ack, p: &[u8]| tcp(CLIENT, SERVER, 40000, 80, flags, seq, ack, p);
    let s = |flags, seq, ack, p: &[u8]| tcp(SERVER, CLIENT, 80, 40000, flags, seq, ack, p);
    vec![
        (1, c(SYN, 1000, 0, b""), ports(&[2])),
        (2, s(SYN | ACK, 5000, 1001, b""), ports(&[1])),
        (1, c(ACK, 1001, 5001, b""), ports(&[2])),
        (1, c(PSH | ACK, 1001, 5001, b"GET /"), ports(&[2])),
        (2, s(PSH | ACK, 5001, 1006, b"200 OK"), ports(&[1])),
    ]
}

/// Sends every step through `send_ct` (at times 100, 101, ...) and checks
/// its verdict, that its bytes leave unchanged and that no copy was sent.
pub fn send_unchanged(dp: &mut Datapath, steps: &[Step]) {
    for (n, (port, f, want)) in steps.iter().enumerate() {
        let (v, bytes, copies) = send_ct(dp, *port, f, 100 + n as u64);
        assert_eq!(v, *want, "step {n}");
        assert_eq!(&bytes, f, "step {n}: bytes changed");
        assert!(copies.is_empty(), "step {n}: copies {copies:?}");
    }
}

pub fn packets(sw: &Switch, needle: &str) -> u64 {
    let d = sw.table.dump(0);
    let hits: Vec<_> = d.iter().filter(|r| r.rule.contains(needle)).collect();
    assert_eq!(hits.len(), 1, "{needle} in {d:#?}");
    hits[0].packets
}
