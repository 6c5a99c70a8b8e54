//! The burst path (`prepare` + `execute_prepared`, `fast.rs`) against the
//! general path (`execute`): two trackers with the same seeds fed the
//! same random conversations (TCP and UDP, IPv4 and IPv6, in and out of
//! window, odd flags, SNAT/DNAT and their replies, zones, force, mark and
//! label, a second `ct` on a frame, expiry) must produce the same bytes,
//! the same `CtMeta` and the same counters, frame after frame.

use std::sync::atomic::{AtomicU64, Ordering};

use super::frames::{tcp, tuple, udp, L3};
use super::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

/// Two trackers that decide alike (same hash seeds, same NAT randomness).
fn twins() -> (Conntrack, Conntrack) {
    let cfg = Config {
        max_conns: 256,
        default_zone_limit: 0,
    };
    let a = Conntrack::new(cfg.clone());
    let mut b = Conntrack::new(cfg);
    b.table.seed = a.table.seed;
    b.rnd = AtomicU64::new(a.rnd.load(Ordering::Relaxed));
    (a, b)
}

/// One conversation: its endpoints and each side's next sequence number.
struct Conv {
    client: &'static str,
    server: &'static str,
    cport: u16,
    sport: u16,
    udp: bool,
    seq: [u32; 2],
    /// What the client's last frame looked like after the tracker (the
    /// reply goes to its translated source).
    seen: Option<(IpAddr, IpAddr, u16, u16)>,
}

fn spec(r: &mut Rng) -> CtSpec {
    let zone = *r.pick(&[0u16, 0, 1]);
    let mut s = match r.below(8) {
        0 | 1 => CtSpec::default(),
        2 | 3 => CtSpec {
            commit: true,
            ..CtSpec::default()
        },
        4 => snat(NAT_IP, 0, 0),
        5 => snat(NAT_IP, 2000, 2003),
        6 => dnat("10.9.9.9", 8080),
        _ => nat_existing(),
    };
    s.zone = zone;
    if s.commit && r.below(4) == 0 {
        s.set_mark = Some((r.next() as u32, 0xffff));
        s.set_label = Some((1 << 70 | r.below(3) as u128, u128::MAX));
    }
    if s.commit && r.below(8) == 0 {
        s.force = true;
    }
    s
}

fn frame(r: &mut Rng, c: &mut Conv) -> Vec<u8> {
    let reply = r.below(3) == 0;
    let (src, dst, sp, dp) = match (reply, c.seen) {
        (true, Some((s, d, sp, dp))) => (d, s, dp, sp),
        (true, None) => (ip(c.server), ip(c.client), c.sport, c.cport),
        (false, _) => (ip(c.client), ip(c.server), c.cport, c.sport),
    };
    let (src, dst) = (src.to_string(), dst.to_string());
    let len = *r.pick(&[0usize, 0, 1, 6, 100]);
    if c.udp {
        return udp(&src, &dst, sp, dp, len);
    }
    let d = usize::from(reply);
    let flags = *r.pick(&[
        SYN,
        SYN | ACK,
        ACK,
        ACK,
        ACK | PSH,
        ACK | PSH,
        FIN | ACK,
        RST,
        RST | ACK,
        0,
        FIN,
        SYN | FIN,
        ACK | 0x20,
    ]);
    let mut seq = c.seq[d];
    match r.below(10) {
        0 => seq = seq.wrapping_add(r.next() as u32),
        1 => seq = seq.wrapping_sub(70_000),
        2 => seq = seq.wrapping_sub(len as u32 + 1),
        _ => {}
    }
    let mut ack = c.seq[1 - d];
    if r.below(10) == 0 {
        ack = ack.wrapping_add(200_000);
    }
    let win = *r.pick(&[0u16, 1000, 65535]);
    let opts: &[u8] = if flags & SYN != 0 && r.below(2) == 0 {
        &[1, 3, 3, 7]
    } else {
        &[]
    };
    let f = tcp(&src, &dst, sp, dp, seq, ack, flags, win, len, opts);
    let mut adv = len as u32;
    if flags & (SYN | FIN) != 0 {
        adv += 1;
    }
    if r.below(4) != 0 {
        c.seq[d] = c.seq[d].wrapping_add(adv);
    }
    f
}

fn run(seed: u64, steps: usize) {
    let mut r = Rng(seed | 1);
    let (a, b) = twins();
    let clients = ["10.0.0.1", "10.0.0.2"];
    let servers = ["10.0.1.1", "10.0.1.2"];
    let mut convs: Vec<Conv> = (0..12)
        .map(|i| {
            let v6 = i % 4 == 3;
            Conv {
                client: if v6 { "fd00::1" } else { clients[i % 2] },
                server: if v6 { "fd00::2" } else { servers[(i / 2) % 2] },
                cport: 1000 + (i as u16 % 3),
                sport: *[80u16, 443][..].get(i % 2).unwrap(),
                udp: i % 5 == 4,
                seq: [r.next() as u32, r.next() as u32],
                seen: None,
            }
        })
        .collect();
    let mut now = 1u64;
    for step in 0..steps {
        now += *r.pick(&[0u64, 1, 10, 1000, 40_000]);
        let ci = r.below(convs.len() as u64) as usize;
        let f0 = frame(&mut r, &mut convs[ci]);
        let nat_frame = f0.len() > L3 && f0[L3] >> 4 == 6;
        let s = if nat_frame && r.below(2) == 0 {
            // IPv4 NAT ranges on IPv6 frames make no sense: plain ct.
            commit(0)
        } else {
            spec(&mut r)
        };
        let (mut fa, mut fb) = (f0.clone(), f0.clone());
        let (mut ma, mut mb) = (CtMeta::default(), CtMeta::default());
        if r.below(6) == 0 {
            // A first `ct` on the frame (the second then sees its state).
            let first = spec(&mut r);
            a.execute(&mut fa, L3, &first, &mut ma, now);
            let p = b.prepare(&fb, L3, first.zone);
            b.prefetch(&p);
            b.execute_prepared(&mut fb, L3, &p, &first, &mut mb, now);
            assert_eq!(ma, mb, "seed {seed} step {step}: first ct");
        }
        a.execute(&mut fa, L3, &s, &mut ma, now);
        let p = b.prepare(&fb, L3, s.zone);
        b.prefetch(&p);
        b.execute_prepared(&mut fb, L3, &p, &s, &mut mb, now);
        assert_eq!(ma, mb, "seed {seed} step {step}: {s:?}");
        assert_eq!(fa, fb, "seed {seed} step {step}: bytes");
        assert_eq!(a.stats(), b.stats(), "seed {seed} step {step}: counters");
        let c = &mut convs[ci];
        let t = tuple(&fa);
        if (ip(c.client), c.cport) == (tuple(&f0).0, tuple(&f0).2) {
            c.seen = Some(t);
        }
        if step % 97 == 0 {
            assert_eq!(a.sweep(now, 64), b.sweep(now, 64));
        }
    }
    assert_eq!(a.dump(None, now), b.dump(None, now));
}

#[test]
fn test_prepared_path_equals_general_path() {
    let (f0, n0) = (
        crate::fast::FAST.load(Ordering::Relaxed),
        crate::fast::FAST_NAT.load(Ordering::Relaxed),
    );
    for seed in 1..=40u64 {
        run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 600);
    }
    let (f, n) = (
        crate::fast::FAST.load(Ordering::Relaxed) - f0,
        crate::fast::FAST_NAT.load(Ordering::Relaxed) - n0,
    );
    eprintln!("fast path: {f} frames, {n} translated");
    assert!(
        f > 1500 && n > 150,
        "fast path rarely taken: {f} frames, {n} translated"
    );
}

#[test]
fn test_prepared_path_takes_established_frames() {
    // The fast path is taken (not every frame falling back): an
    // established segment is prepared fast; a SYN, a fragment, ICMP are not.
    let ct = ct();
    handshake(&ct, 0);
    let f = tcp(A, B, 40000, 80, 1001, 5001, ACK, 1000, 10, &[]);
    assert!(ct.prepare(&f, L3, 0).is_fast());
    let syn = tcp(A, B, 40001, 80, 1, 0, SYN, 1000, 0, &[]);
    assert!(!ct.prepare(&syn, L3, 0).is_fast());
    let mut frag = f.clone();
    frag[L3 + 6] |= 0x20;
    assert!(!ct.prepare(&frag, L3, 0).is_fast());
    let ping = super::frames::icmp_query(A, B, 8, 1, 1);
    assert!(!ct.prepare(&ping, L3, 0).is_fast());
    let mut m = CtMeta::default();
    let mut f2 = f.clone();
    let p = ct.prepare(&f2, L3, 0);
    ct.execute_prepared(&mut f2, L3, &p, &zone(0), &mut m, 10);
    assert_eq!(m.state, TRK | EST);
    assert_eq!(f2, f);
}
