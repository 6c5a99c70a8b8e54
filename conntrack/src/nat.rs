//! NAT tuple allocation: on `ct(commit, nat(src=..|dst=..))` pick the
//! translated address and port so that the connection's reply key collides
//! with no other connection's key (OVS's `nat_get_unique_tuple`, same
//! choices so that a differential against OVS sees the same frames when
//! the choice is determined):
//!
//! - Address: `addr_min + hash % count` (hash of the original tuple and the
//!   range; with `persistent`, of the source address only, so one client
//!   keeps one address). If all its ports are taken, the next addresses of
//!   the range are tried (up to 8; OVS tries only the first).
//! - SNAT port: with a port range, start at `min + hash % len` (`random`:
//!   a random offset); without one, keep the client's port if free, else
//!   search its class as Linux and OVS do: 1–511, 600–1023, 1024–65535.
//! - DNAT port: with a range, the destination port as above; if every one
//!   collides (or without a range), keep the destination port and move
//!   the source port in its class.
//! - ICMP queries translate the identifier as a port.
//! - Search: up to 128 consecutive candidates from the start, then rounds
//!   of 64, 32 and 16 from random starting points.

use std::net::IpAddr;

use crate::key::{proto, Key};
use crate::spec::{nat_flags, NatKind, NatRange};

/// An address range as integers.
#[derive(Clone, Copy)]
struct Addrs {
    min: u128,
    count: u128,
    v6: bool,
}

fn to_int(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_int(x: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(x.into())
    } else {
        IpAddr::V4((x as u32).into())
    }
}

/// The port class of a port (RFC 6056 §2.1 ranges as OVS applies them).
fn class(port: u16) -> (u16, u16) {
    match port {
        0..=511 => (1, 511),
        512..=1023 => (600, 1023),
        _ => (1024, 65535),
    }
}

/// A small PRNG step (SplitMix64).
fn next_rand(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Try ports of [min, max] starting at `curr`, calling `f` on each until
/// it returns true: 128 consecutive ones, then random rounds.
fn search_ports(
    curr: u16,
    min: u16,
    max: u16,
    rnd: &mut u64,
    mut f: impl FnMut(u16) -> bool,
) -> bool {
    let range = (max as u32) - (min as u32) + 1;
    let mut attempts = range.min(128);
    let mut start = curr.clamp(min, max);
    loop {
        let mut p = start;
        for _ in 0..attempts {
            if f(p) {
                return true;
            }
            p = if p == max { min } else { p + 1 };
        }
        if attempts >= range || attempts < 16 {
            return false;
        }
        attempts /= 2;
        start = min + (next_rand(rnd) % range as u64) as u16;
    }
}

/// Search a reply key for a new connection `fwd` translated as `kind`
/// into `range`. `claim(rev)` must return true if `rev` is free (and then
/// keep it for the caller). `hash`: a hash of the tuple (port/address
/// offsets); `rnd`: randomness for `random` and the later rounds.
pub(crate) fn search(
    fwd: &Key,
    kind: NatKind,
    range: &NatRange,
    flags: u8,
    hash: u64,
    rnd: u64,
    mut claim: impl FnMut(&Key) -> bool,
) -> Option<Key> {
    let mut rnd = rnd ^ hash;
    let base = fwd.reverse();
    let p = fwd.proto();
    let icmp = fwd.is_icmp();
    let ported = p == proto::TCP || p == proto::UDP || p == 132 /* SCTP */ || icmp;
    let (lo, hi) = (to_int(range.addr_min), to_int(range.addr_max));
    let v6 = matches!(range.addr_min, IpAddr::V6(_));
    if v6 != fwd.is_v6() {
        return None;
    }
    let addrs = if lo == 0 {
        // No address given: keep the one the packet has.
        let keep = if kind == NatKind::Src {
            fwd.src()
        } else {
            fwd.dst()
        };
        Addrs {
            min: to_int(keep),
            count: 1,
            v6,
        }
    } else {
        Addrs {
            min: lo,
            count: hi.saturating_sub(lo).saturating_add(1),
            v6,
        }
    };
    let addr_hash = if flags & nat_flags::PERSISTENT != 0 {
        to_int(fwd.src()) as u64 ^ 0x5bd1_e995
    } else {
        hash
    };
    let first = (addr_hash as u128) % addrs.count;
    let port_off = if flags & nat_flags::PROTO_RANDOM != 0 {
        next_rand(&mut rnd)
    } else {
        hash >> 16
    };
    let has_ports = range.port_min != 0 || range.port_max != 0;
    let (pmin, pmax) = (
        range.port_min.min(range.port_max),
        range.port_max.max(range.port_min),
    );
    let pick = |min: u16, max: u16| min + (port_off % ((max - min) as u64 + 1)) as u16;

    for a in 0..addrs.count.min(8) {
        let addr = from_int(addrs.min + (first + a) % addrs.count, addrs.v6);
        // The reply key with the new address: SNAT changes where replies
        // go (their destination), DNAT where they come from (their source).
        let with_addr = match kind {
            NatKind::Src => base.with_dst(addr, base.dport()),
            _ => base.with_src(addr, base.sport()),
        };
        if !ported {
            if claim(&with_addr) {
                return Some(with_addr);
            }
            continue;
        }
        // The client-side port: the reply's destination port (ICMP: the
        // identifier, which the key keeps in `sport` for both directions).
        let set_client = |k: &Key, port: u16| {
            if icmp {
                k.with_src(k.src(), port)
            } else {
                k.with_dst(k.dst(), port)
            }
        };
        let client_port = fwd.sport();
        let mut found = None;
        match kind {
            NatKind::Src => {
                let (min, max, curr) = if has_ports {
                    (pmin, pmax, pick(pmin, pmax))
                } else {
                    let (a, b) = class(client_port);
                    (a, b, client_port)
                };
                search_ports(curr, min, max, &mut rnd, |port| {
                    let k = set_client(&with_addr, port);
                    claim(&k).then(|| found = Some(k)).is_some()
                });
            }
            _ => {
                if has_ports && !icmp {
                    search_ports(pick(pmin, pmax), pmin, pmax, &mut rnd, |port| {
                        let k = with_addr.with_src(with_addr.src(), port);
                        claim(&k).then(|| found = Some(k)).is_some()
                    });
                }
                if found.is_none() {
                    let keep = if has_ports && !icmp {
                        with_addr.with_src(with_addr.src(), pick(pmin, pmax))
                    } else {
                        with_addr
                    };
                    let (min, max) = class(client_port);
                    search_ports(client_port, min, max, &mut rnd, |port| {
                        let k = set_client(&keep, port);
                        claim(&k).then(|| found = Some(k)).is_some()
                    });
                }
            }
        }
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn fwd(sport: u16) -> Key {
        Key::new(
            "10.0.0.1".parse().unwrap(),
            "192.168.1.10".parse().unwrap(),
            sport,
            80,
            proto::TCP,
            0,
        )
    }

    fn range(a: &str, b: &str, pmin: u16, pmax: u16) -> NatRange {
        NatRange {
            addr_min: a.parse().unwrap(),
            addr_max: b.parse().unwrap(),
            port_min: pmin,
            port_max: pmax,
        }
    }

    #[test]
    fn test_snat_keeps_free_port_then_moves_in_class() {
        let r = range("172.16.0.1", "172.16.0.1", 0, 0);
        let k = search(&fwd(40000), NatKind::Src, &r, 0, 1, 2, |_| true).unwrap();
        assert_eq!(k.dst(), "172.16.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (k.src(), k.sport(), k.dport()),
            ("192.168.1.10".parse().unwrap(), 80, 40000)
        );
        let k2 = search(&fwd(40000), NatKind::Src, &r, 0, 1, 2, |k| {
            k.dport() != 40000
        })
        .unwrap();
        assert_eq!(k2.dport(), 40001);
        let low = search(&fwd(22), NatKind::Src, &r, 0, 1, 2, |k| k.dport() != 22).unwrap();
        assert!((1..=511).contains(&low.dport()));
    }

    #[test]
    fn test_snat_range_exhaustion() {
        let r = range("172.16.0.1", "172.16.0.1", 5000, 5003);
        let mut used = HashSet::new();
        for i in 0..4 {
            let k = search(&fwd(1000 + i), NatKind::Src, &r, 0, i as u64, 9, |k| {
                !used.contains(&k.dport())
            })
            .unwrap();
            assert!((5000..=5003).contains(&k.dport()));
            used.insert(k.dport());
        }
        assert!(search(&fwd(2000), NatKind::Src, &r, 0, 3, 9, |k| !used
            .contains(&k.dport()))
        .is_none());
    }

    #[test]
    fn test_dnat_changes_destination() {
        let r = range("10.9.0.5", "10.9.0.5", 8080, 8080);
        let k = search(&fwd(40000), NatKind::Dst, &r, 0, 1, 2, |_| true).unwrap();
        assert_eq!(
            (k.src(), k.sport(), k.dst(), k.dport()),
            (
                "10.9.0.5".parse().unwrap(),
                8080,
                "10.0.0.1".parse().unwrap(),
                40000
            )
        );
    }
}
