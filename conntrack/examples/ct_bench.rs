//! Micro-benchmark of the tracker alone (no switch, no DPDK), one thread:
//!
//! - `execute` on established TCP connections (10k by default), without and
//!   with SNAT (`ct(nat)` on a translated connection);
//! - new connections per second (`ct(commit)`, and `ct(commit,nat(src=..))`);
//! - the cost of the shard lock against alternatives (uncontended
//!   `std::sync::Mutex`, a test-and-set spinlock, `RwLock::read`).
//!
//! `cargo run --release -p conntrack --example ct_bench [-- CONNS [SECONDS]]`

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use conntrack::{Config, Conntrack, CtMeta, CtSpec, NatKind, NatRange, NatSpec};

const L3: usize = 14;

fn csum(data: &[u8], init: u32) -> u16 {
    let mut s = init;
    for c in data.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/TCP frame (64 bytes on the wire class).
fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let mut ps = 0u32;
    for c in src.chunks(2).chain(dst.chunks(2)) {
        ps += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    let c = csum(&t, ps + 6 + t.len() as u32);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&t);
    f
}

fn client(i: u32) -> ([u8; 4], u16) {
    let a = 0x0a00_0000 | (i / 50_000 + 1);
    (a.to_be_bytes(), 10_000 + (i % 50_000) as u16)
}

const SERVER: [u8; 4] = [10, 200, 0, 1];

/// `ct(commit,nat(src=192.0.2.1-192.0.2.LAST))`.
fn snat_spec(last: u8) -> CtSpec {
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b = IpAddr::from([192, 0, 2, last]);
    CtSpec {
        commit: true,
        nat: Some(NatSpec {
            kind: NatKind::Src,
            range: Some(NatRange {
                addr_min: a,
                addr_max: b,
                port_min: 0,
                port_max: 0,
            }),
            flags: 0,
        }),
        ..CtSpec::default()
    }
}

/// Established: `n` connections through the handshake, then ACKs from the
/// clients round-robin for `secs`. Returns ns per packet.
fn established(n: u32, secs: f64, nat: bool) -> f64 {
    let ct = Conntrack::new(Config {
        max_conns: 4 * n + 1024,
        default_zone_limit: 0,
    });
    let commit = if nat {
        snat_spec(1)
    } else {
        CtSpec {
            commit: true,
            ..CtSpec::default()
        }
    };
    let plain = if nat {
        CtSpec {
            nat: Some(NatSpec {
                kind: NatKind::Existing,
                range: None,
                flags: 0,
            }),
            ..CtSpec::default()
        }
    } else {
        CtSpec::default()
    };
    let mut acks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (c, p) = client(i);
        let mut m = CtMeta::default();
        ct.execute(
            &mut tcp_frame(c, SERVER, p, 80, 1000, 0, 0x02),
            L3,
            &commit,
            &mut m,
            0,
        );
        // The server answers the translated address.
        let (rc, rp) = if nat { ([192, 0, 2, 1], p) } else { (c, p) };
        let mut m = CtMeta::default();
        ct.execute(
            &mut tcp_frame(SERVER, rc, 80, rp, 5000, 1001, 0x12),
            L3,
            &plain,
            &mut m,
            0,
        );
        let mut ack = tcp_frame(c, SERVER, p, 80, 1001, 5001, 0x10);
        let mut m = CtMeta::default();
        ct.execute(&mut ack.clone(), L3, &plain, &mut m, 0);
        assert_eq!(m.state & 0x22, 0x22, "connection {i} not established");
        ack.truncate(54);
        acks.push(ack);
    }
    let mut buf = [0u8; 54];
    let mut pkts = 0u64;
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(secs);
    let mut m = CtMeta::default();
    while start.elapsed() < deadline {
        for a in &acks {
            // Copy: NAT rewrites the frame, the next round needs the original.
            buf.copy_from_slice(a);
            m.state = 0;
            ct.execute(&mut buf, L3, &plain, &mut m, 1);
            black_box(&m);
        }
        pkts += acks.len() as u64;
    }
    assert_eq!(m.state & 0x22, 0x22);
    start.elapsed().as_nanos() as f64 / pkts as f64
}

/// New connections: SYNs of `n` distinct tuples committed; returns
/// connections per second (best of `rounds`).
fn new_conns(n: u32, rounds: u32, nat: bool) -> f64 {
    let ct = Conntrack::new(Config {
        max_conns: n + 1024,
        default_zone_limit: 0,
    });
    let spec = if nat {
        snat_spec(8)
    } else {
        CtSpec {
            commit: true,
            ..CtSpec::default()
        }
    };
    let syns: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let (c, p) = client(i);
            tcp_frame(c, SERVER, p, 80, 1000, 0, 0x02)
        })
        .collect();
    let mut best = 0f64;
    let mut buf = [0u8; 54];
    for _ in 0..rounds {
        ct.flush(None);
        let start = Instant::now();
        let mut m = CtMeta::default();
        for s in &syns {
            buf.copy_from_slice(s);
            m.state = 0;
            ct.execute(&mut buf, L3, &spec, &mut m, 0);
        }
        let dt = start.elapsed().as_secs_f64();
        assert_eq!(ct.stats().entries, n as u64);
        best = best.max(n as f64 / dt);
    }
    best
}

struct Spin(AtomicBool);

impl Spin {
    #[inline]
    fn lock(&self) {
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }
    #[inline]
    fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

fn lock_costs() -> (f64, f64, f64) {
    const N: u64 = 20_000_000;
    let m = Mutex::new(0u64);
    let t = Instant::now();
    for i in 0..N {
        *m.lock().unwrap() += black_box(i);
    }
    let mutex = t.elapsed().as_nanos() as f64 / N as f64;
    let s = Spin(AtomicBool::new(false));
    let mut v = 0u64;
    let t = Instant::now();
    for i in 0..N {
        s.lock();
        v += black_box(i);
        s.unlock();
    }
    black_box(v);
    let spin = t.elapsed().as_nanos() as f64 / N as f64;
    let r = RwLock::new(1u64);
    let mut acc = 0;
    let t = Instant::now();
    for _ in 0..N {
        acc += *r.read().unwrap();
    }
    black_box(acc);
    let rw = t.elapsed().as_nanos() as f64 / N as f64;
    (mutex, spin, rw)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let (mutex, spin, rw) = lock_costs();
    println!("lock+unlock, uncontended: std Mutex {mutex:.1} ns, spinlock {spin:.1} ns, RwLock read {rw:.1} ns");
    let e = established(n, secs, false);
    println!(
        "established, {n} TCP connections: {e:.1} ns/packet = {:.2} Mpps",
        1e3 / e
    );
    let en = established(n, secs, true);
    println!(
        "established with SNAT, {n} TCP connections: {en:.1} ns/packet = {:.2} Mpps",
        1e3 / en
    );
    let c = new_conns(200_000, 3, false);
    println!("new connections (commit): {:.2} M/s", c / 1e6);
    let cn = new_conns(200_000, 3, true);
    println!("new connections (commit, nat(src)): {:.2} M/s", cn / 1e6);
}
