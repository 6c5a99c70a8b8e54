//! Fragment reassembly (`ipf`): lists in and out of order, overlaps,
//! duplicates, sizes, limits, expiry, IPv4 and IPv6, and the tracker's
//! NAT carried back into the fragments.

use super::frames::*;
use crate::ipf::{self, Add, Check, FragPos, Ipf, ListKey, Reassembler};
use crate::state::*;
use crate::{Config, Conntrack, CtMeta, CtSpec, NatKind, NatRange, NatSpec};

/// Cut the IP packet of `frame` (no fragment header, no IPv4 options)
/// into fragments `(offset, length, more)` of its L3 payload, with
/// identification `id` (IPv6: a fragment header after the fixed header).
fn fragments(frame: &[u8], id: u32, cuts: &[(usize, usize, bool)]) -> Vec<Vec<u8>> {
    let v6 = frame[L3] >> 4 == 6;
    let hl = if v6 { 40 } else { 20 };
    let payload = &frame[L3 + hl..];
    cuts.iter()
        .map(|&(off, n, more)| {
            let piece = &payload[off..off + n];
            let mut f = frame[..L3 + hl].to_vec();
            if v6 {
                let next = f[L3 + 6];
                f[L3 + 6] = 44;
                f.extend_from_slice(&[next, 0]);
                f.extend_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
                f.extend_from_slice(&id.to_be_bytes());
                f.extend_from_slice(piece);
                let plen = (8 + n) as u16;
                f[L3 + 4..L3 + 6].copy_from_slice(&plen.to_be_bytes());
            } else {
                f.extend_from_slice(piece);
                let h = &mut f[L3..L3 + 20];
                h[2..4].copy_from_slice(&((20 + n) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
                let fo = (if more { 0x2000 } else { 0 }) | (off / 8) as u16;
                h[6..8].copy_from_slice(&fo.to_be_bytes());
                h[10..12].copy_from_slice(&[0, 0]);
                let c = !crate::checksum::fold(crate::checksum::sum(h));
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            f
        })
        .collect()
}

/// The unfragmented frame as reassembly must give it back (IPv4: DF
/// cleared as `fragments` leaves no DF... kept as the original had it).
fn info(f: &[u8], ipf: &Ipf) -> ipf::FragInfo {
    match ipf::check(f, L3, ipf.min_frag(false), ipf.min_frag(true)) {
        Check::Frag(i) => i,
        other => panic!("not a fragment: {other:?}"),
    }
}

struct Run {
    ipf: Ipf,
    r: Reassembler<usize>,
    frames: Vec<Vec<u8>>,
}

impl Run {
    fn new(frames: Vec<Vec<u8>>) -> Run {
        Run {
            ipf: Ipf::default(),
            r: Reassembler::new(64),
            frames,
        }
    }

    fn add(&mut self, i: usize, now: u64) -> Add<usize> {
        let fi = info(&self.frames[i], &self.ipf);
        let key = ListKey::of(&fi, 0, 0);
        self.r.add(&self.ipf, &key, &fi, i, now)
    }

    /// Take list `l` and reassemble it: (fragment indexes by offset, the
    /// datagram).
    fn take(&mut self, l: u32) -> (Vec<usize>, Vec<(usize, FragPos)>, Vec<u8>) {
        let mut got = Vec::new();
        self.r.take(&self.ipf, l, &mut got);
        let v6 = self.frames[got[0].0][L3] >> 4 == 6;
        let mut out = Vec::new();
        assert!(ipf::reassemble(
            v6,
            L3,
            got.iter().map(|&(i, p)| (&self.frames[i][..], p)),
            &mut out
        ));
        (got.iter().map(|g| g.0).collect(), got, out)
    }
}

fn big_udp(v6: bool) -> Vec<u8> {
    if v6 {
        udp("fd00::1", "fd00::2", 5353, 53, 3000)
    } else {
        // DF clear: a datagram that may be fragmented.
        let mut f = udp("10.0.0.1", "10.0.0.2", 5353, 53, 3000);
        f[L3 + 6] = 0;
        f[L3 + 10..L3 + 12].copy_from_slice(&[0, 0]);
        let c = !crate::checksum::fold(crate::checksum::sum(&f[L3..L3 + 20]));
        f[L3 + 10..L3 + 12].copy_from_slice(&c.to_be_bytes());
        f
    }
}

fn whole(v6: bool) -> Vec<u8> {
    let mut f = big_udp(v6);
    if !v6 {
        // Reassembly keeps the first fragment's identification.
        f[L3 + 4..L3 + 6].copy_from_slice(&7u16.to_be_bytes());
        f[L3 + 10..L3 + 12].copy_from_slice(&[0, 0]);
        let c = !crate::checksum::fold(crate::checksum::sum(&f[L3..L3 + 20]));
        f[L3 + 10..L3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    f
}

const CUTS3: [(usize, usize, bool); 3] = [(0, 1400, true), (1400, 1400, true), (2800, 208, false)];

#[test]
fn in_order_and_out_of_order_reassemble_to_the_datagram() {
    for v6 in [false, true] {
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let frags = fragments(&big_udp(v6), 7, &CUTS3);
            let mut run = Run::new(frags);
            assert!(matches!(run.add(order[0], 0), Add::Held));
            assert!(matches!(run.add(order[1], 0), Add::Held));
            let Add::Complete(l) = run.add(order[2], 0) else {
                panic!("v6 {v6} order {order:?}: not complete");
            };
            let (idx, _, dg) = run.take(l);
            assert_eq!(idx, vec![0, 1, 2], "fragments by offset");
            assert_eq!(dg, whole(v6), "v6 {v6} order {order:?}");
            assert!(checksums_ok(&dg));
            let s = run.ipf.status();
            let f = if v6 { s.v6 } else { s.v4 };
            assert_eq!((f.accepted, f.completed, s.frags), (3, 3, 0));
            assert_eq!(run.r.held(), 0);
            assert_eq!(run.r.lists(), 0);
        }
    }
}

#[test]
fn overlapping_and_duplicate_fragments_are_refused_and_counted() {
    for v6 in [false, true] {
        let mut frames = fragments(&big_udp(v6), 7, &[(0, 1400, true), (1400, 1608, false)]);
        // Overlaps the first fragment's tail.
        frames.extend(fragments(&big_udp(v6), 7, &[(1392, 1616, false)]));
        let mut run = Run::new(frames);
        assert!(matches!(run.add(0, 0), Add::Held));
        assert!(matches!(run.add(0, 0), Add::Overlap(0)), "duplicate");
        assert!(matches!(run.add(2, 0), Add::Overlap(2)), "overlap");
        let Add::Complete(l) = run.add(1, 0) else {
            panic!("not complete")
        };
        let (_, _, dg) = run.take(l);
        assert_eq!(dg, whole(v6));
        let s = run.ipf.status();
        let f = if v6 { s.v6 } else { s.v4 };
        assert_eq!((f.accepted, f.overlapped), (2, 2));
    }
}

#[test]
fn a_fragment_covering_a_held_one_leaves_the_list_incomplete_as_ovs() {
    // OVS's `ipf_is_frag_duped` checks only the new fragment's first and
    // last bytes: one that encloses a held fragment is accepted, and the
    // list never completes (it expires).
    let frames = fragments(
        &big_udp(false),
        7,
        &[(1400, 1200, true), (1000, 2008, false), (0, 1400, true)],
    );
    let mut run = Run::new(frames);
    assert!(matches!(run.add(0, 0), Add::Held));
    assert!(matches!(run.add(1, 0), Add::Held));
    assert!(matches!(run.add(2, 0), Add::Overlap(2)));
    assert_eq!(run.r.expire(&run.ipf, 15_000, |_| {}), 2);
    assert_eq!(run.ipf.status().v4.expired, 2);
}

#[test]
fn small_and_malformed_fragments_are_invalid() {
    let ipf = Ipf::default();
    for v6 in [false, true] {
        // Non-last fragments under the minimum: too small; a last one of
        // any size is fine.
        let f = fragments(&big_udp(v6), 7, &[(0, 512, true), (512, 64, false)]);
        assert_eq!(
            ipf::check(&f[0], L3, 1200, 1280),
            Check::Invalid { too_small: true }
        );
        assert!(matches!(ipf::check(&f[1], L3, 1200, 1280), Check::Frag(_)));
        // A lower minimum takes it.
        assert!(ipf.set_min_frag(v6, 400).is_ok());
        assert!(matches!(ipf::check(&f[0], L3, 400, 400), Check::Frag(_)));
        // Cut short: the length disagrees with the frame.
        let mut cut = f[1].clone();
        cut.truncate(cut.len() - 1);
        assert_eq!(
            ipf::check(&cut, L3, 1200, 1280),
            Check::Invalid { too_small: false }
        );
        // Ethernet padding after the packet is fine.
        let mut pad = f[1].clone();
        pad.extend_from_slice(&[0; 6]);
        assert!(matches!(ipf::check(&pad, L3, 1200, 1280), Check::Frag(_)));
        // Not fragments.
        assert_eq!(ipf::check(&big_udp(v6), L3, 1200, 1280), Check::NotFragment);
    }
    // IPv4 header checksum.
    let mut f = fragments(&big_udp(false), 7, &CUTS3);
    f[0][L3 + 11] ^= 1;
    assert_eq!(
        ipf::check(&f[0], L3, 1200, 1280),
        Check::Invalid { too_small: false }
    );
    assert!(ipf.set_min_frag(false, 399).is_err());
    assert!(ipf.set_max_frags(5001).is_err());
}

#[test]
fn lists_expire_after_15_s_and_free_their_fragments() {
    let frames = fragments(&big_udp(false), 7, &CUTS3);
    let mut run = Run::new(frames);
    assert!(matches!(run.add(0, 1000), Add::Held));
    assert!(matches!(run.add(2, 9000), Add::Held));
    assert_eq!(run.ipf.status().frags, 2);
    let mut dropped = Vec::new();
    assert_eq!(run.r.expire(&run.ipf, 15_999, |i| dropped.push(i)), 0);
    assert_eq!(run.r.expire(&run.ipf, 16_000, |i| dropped.push(i)), 2);
    dropped.sort();
    assert_eq!(dropped, vec![0, 2]);
    let s = run.ipf.status();
    assert_eq!((s.frags, s.v4.expired), (0, 2));
    // The missing fragment alone starts a new list.
    assert!(matches!(run.add(1, 16_001), Add::Held));
}

#[test]
fn limits_refuse_fragments_beyond_them() {
    let mut frames = Vec::new();
    for id in 0..4u32 {
        frames.extend(fragments(&big_udp(false), id, &[(0, 1400, true)]));
    }
    let mut run = Run::new(frames);
    assert!(run.ipf.set_max_frags(3).is_ok());
    for i in 0..3 {
        assert!(matches!(run.add(i, 0), Add::Held));
    }
    assert!(matches!(run.add(3, 0), Add::Refused(3)), "max frags");
    assert_eq!(run.ipf.status().frags, 3);
    // Disabled: nothing taken.
    run.ipf.set_enabled(false, false);
    assert!(run.ipf.set_max_frags(1000).is_ok());
    assert!(matches!(run.add(3, 0), Add::Refused(3)));
    run.ipf.set_enabled(false, true);
    assert!(matches!(run.add(3, 0), Add::Held));
    // Purge gives everything back.
    assert_eq!(run.r.purge(&run.ipf, |_| {}), 4);
    assert_eq!(run.ipf.status().frags, 0);
    // A full slab refuses too.
    let mut frames = Vec::new();
    for id in 0..3u32 {
        frames.extend(fragments(&big_udp(true), id, &[(0, 1400, true)]));
    }
    let mut run = Run {
        ipf: Ipf::default(),
        r: Reassembler::new(2),
        frames,
    };
    assert!(matches!(run.add(0, 0), Add::Held));
    assert!(matches!(run.add(1, 0), Add::Held));
    assert!(matches!(run.add(2, 0), Add::Refused(2)));
    assert_eq!(run.ipf.status().frags, 2);
    // IPv4 lists hold at most ceil(65475 / (min - 60)) fragments.
    assert_eq!(run.ipf.max_list_len(false), 58);
}

#[test]
fn keys_separate_zones_passes_and_ids() {
    let frames = fragments(&big_udp(false), 7, &CUTS3);
    let ipf = Ipf::default();
    let mut r: Reassembler<usize> = Reassembler::new(16);
    let fi = |i: usize| info(&frames[i], &ipf);
    let k = |i: usize, zone, pass| ListKey::of(&fi(i), zone, pass);
    assert!(matches!(r.add(&ipf, &k(0, 1, 0), &fi(0), 0, 0), Add::Held));
    assert!(matches!(r.add(&ipf, &k(1, 2, 0), &fi(1), 1, 0), Add::Held));
    assert!(matches!(r.add(&ipf, &k(2, 1, 1), &fi(2), 2, 0), Add::Held));
    assert_eq!(r.lists(), 3);
    assert!(matches!(r.add(&ipf, &k(1, 1, 0), &fi(1), 1, 0), Add::Held));
    assert!(matches!(
        r.add(&ipf, &k(2, 1, 0), &fi(2), 2, 0),
        Add::Complete(_)
    ));
}

/// The tracker over a reassembled datagram, and its SNAT carried back:
/// every fragment gets the translated source, the first one the
/// translated port and L4 checksum; reassembling the results gives the
/// translated datagram with valid checksums.
#[test]
fn the_tracker_sees_the_datagram_and_nat_reaches_every_fragment() {
    for v6 in [false, true] {
        let ct = Conntrack::new(Config::default());
        let nat_ip = if v6 { "fd02::10" } else { "192.0.2.10" };
        let spec = CtSpec {
            commit: true,
            nat: Some(NatSpec {
                kind: NatKind::Src,
                range: Some(NatRange {
                    addr_min: nat_ip.parse().unwrap(),
                    addr_max: nat_ip.parse().unwrap(),
                    port_min: 2000,
                    port_max: 2000,
                }),
                flags: 0,
            }),
            ..CtSpec::default()
        };
        let mut frames = fragments(&big_udp(v6), 7, &CUTS3);
        let mut run = Run::new(frames.clone());
        run.add(1, 0);
        run.add(0, 0);
        let Add::Complete(l) = run.add(2, 0) else {
            panic!()
        };
        let (_, got, mut dg) = run.take(l);
        let mut meta = CtMeta::default();
        ct.execute(&mut dg, L3, &spec, &mut meta, 0);
        assert_eq!(meta.state, TRK | NEW | SNAT, "v6 {v6}");
        assert!(checksums_ok(&dg));
        for (k, &(i, pos)) in got.iter().enumerate() {
            ipf::write_back(v6, &dg, &mut frames[i], L3, &pos, k == 0);
        }
        // Every fragment from the translated source; IPv4 headers valid.
        for f in &frames {
            let (src, _, _, _) = tuple(&{
                let mut g = f.clone();
                // tuple() reads ports at the L4 offset; only the source matters.
                g.resize(g.len().max(L3 + 64), 0);
                g
            });
            assert_eq!(src, nat_ip.parse::<std::net::IpAddr>().unwrap());
            if !v6 {
                assert!(matches!(ipf::check(f, L3, 1200, 1280), Check::Frag(_)));
            }
        }
        // Reassembled again: the translated datagram, checksums valid.
        let mut run2 = Run::new(frames);
        run2.add(0, 0);
        run2.add(1, 0);
        let Add::Complete(l) = run2.add(2, 0) else {
            panic!()
        };
        let (_, _, dg2) = run2.take(l);
        assert_eq!(dg2, dg);
        assert!(checksums_ok(&dg2));
        assert_eq!(tuple(&dg2).2, 2000);
    }
}

#[test]
fn shards_complete_a_datagram_from_two_threads_and_expire_while_idle() {
    use std::sync::Arc;
    let ipf = Arc::new(Ipf::default());
    let shards: Arc<ipf::Shards<usize>> = Arc::new(ipf::Shards::new(16));
    let frames = Arc::new(fragments(&big_udp(false), 7, &CUTS3));
    // Fragments 0 and 2 from one thread, 1 from another: one list.
    let add = |i: usize, now: u64| {
        let fi = info(&frames[i], &ipf);
        let key = ListKey::of(&fi, 0, 0);
        let mut g = shards.lock(&key);
        match g.add(&ipf, &key, &fi, i, now) {
            Add::Complete(l) => {
                let mut got = Vec::new();
                g.take(&ipf, l, &mut got);
                got.iter().map(|g| g.0).collect()
            }
            Add::Held => Vec::new(),
            _ => panic!("refused"),
        }
    };
    std::thread::scope(|s| {
        assert!(s.spawn(|| add(0, 0)).join().unwrap().is_empty());
        assert!(s.spawn(|| add(2, 0)).join().unwrap().is_empty());
    });
    assert_eq!(add(1, 0), vec![0, 1, 2]);
    // Another datagram's fragment, held; nothing is due before 15 s.
    assert!(add(0, 100).is_empty());
    let mut dropped = Vec::new();
    assert_eq!(shards.expire(&ipf, 15_099, |i| dropped.push(i)), 0);
    assert_eq!(shards.held(), 1);
    assert_eq!(shards.expire(&ipf, 15_100, |i| dropped.push(i)), 1);
    assert_eq!((dropped, shards.held()), (vec![0], 0));
    let s = ipf.status();
    assert_eq!((s.frags, s.v4.completed, s.v4.expired), (0, 3, 1));
}
