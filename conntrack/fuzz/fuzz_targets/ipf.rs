//! Fragment reassembly over arbitrary frames: the input is cut into up to
//! 16 frames (a length byte before each) offered one after the other to
//! small reassemblers behind `ipf::Shards` (as the switch's workers share
//! them); nothing panics, the fragments in process always
//! match what the reassembler holds, a completed list reassembles into a
//! frame that starts with the first fragment's Ethernet header, and
//! writing a (tracked, possibly NATed) datagram back into the fragments
//! stays inside them.

#![no_main]

use conntrack::ipf::{self, Add, Check, Ipf, ListKey, Shards};
use conntrack::{Config, Conntrack, CtMeta, CtSpec};
use libfuzzer_sys::fuzz_target;

const L3: usize = 14;

fuzz_target!(|data: &[u8]| {
    let ipf = Ipf::default();
    let _ = ipf.set_min_frag(false, 400);
    let _ = ipf.set_min_frag(true, 400);
    let _ = ipf.set_max_frags(12);
    let ct = Conntrack::new(Config {
        max_conns: 64,
        default_zone_limit: 0,
    });
    let r: Shards<Vec<u8>> = Shards::new(8);
    let mut frames = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        // Lengths 0..=2047: short fragments and a few long ones.
        let n = usize::from(n) * 8;
        let n = n.min(tail.len());
        let mut f = vec![0u8; L3];
        f.extend_from_slice(&tail[..n]);
        // IPv4: a right header checksum, so that the search reaches the
        // lists (a wrong one is refused first; the unit tests cover it).
        if f.len() >= L3 + 20 && f[L3] >> 4 == 4 {
            let ihl = (usize::from(f[L3] & 15) * 4).clamp(20, f.len() - L3);
            f[L3 + 10..L3 + 12].copy_from_slice(&[0, 0]);
            let c = !conntrack::checksum::fold(conntrack::checksum::sum(&f[L3..L3 + ihl]));
            f[L3 + 10..L3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        frames.push(f);
        rest = &tail[n..];
        if frames.len() == 16 {
            break;
        }
    }
    let mut now = 0u64;
    let mut out = Vec::new();
    let mut dg = Vec::new();
    for f in frames {
        now += 1000;
        r.expire(&ipf, now, drop);
        let Check::Frag(fi) = ipf::check(&f, L3, 400, 400) else {
            continue;
        };
        assert!(fi.data <= f.len() && fi.data + fi.len <= f.len());
        let key = ListKey::of(&fi, 0, 0);
        let mut g = r.lock(&key);
        match g.add(&ipf, &key, &fi, f, now) {
            Add::Complete(l) => {
                out.clear();
                g.take(&ipf, l, &mut out);
                drop(g);
                assert!(!out.is_empty());
                if ipf::reassemble(fi.v6, L3, out.iter().map(|(f, p)| (&f[..], *p)), &mut dg) {
                    assert_eq!(dg[..L3], out[0].0[..L3]);
                    let mut meta = CtMeta::default();
                    ct.execute(&mut dg, L3, &CtSpec::default(), &mut meta, now);
                    for (k, (f, p)) in out.iter_mut().enumerate() {
                        let len = f.len();
                        ipf::write_back(fi.v6, &dg, f, L3, p, k == 0);
                        assert_eq!(f.len(), len);
                    }
                }
            }
            Add::Held | Add::Refused(_) | Add::Overlap(_) => drop(g),
        }
        assert_eq!(ipf.status().frags as usize, r.held());
    }
});
