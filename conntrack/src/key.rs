//! The connection key the table indexes: one direction's tuple plus the
//! zone, packed in five `u64` words so that comparing two keys is five
//! integer compares and hashing is three multiplies.
//!
//! ```text
//!  w[0], w[1]  source address (IPv4: 0, addr)      as a big-endian u128
//!  w[2], w[3]  destination address
//!  w[4]        sport | dport << 16 | proto << 32 | family << 40 | zone << 48
//! ```
//!
//! ICMP echo-style keys (RFC 792 echo/timestamp/information, RFC 4443 §4
//! echo) carry the identifier in `sport` and the message type in `dport`,
//! as OVS's `conn_key` does (`icmp_id` on both sides, `icmp_type` and its
//! reverse): the reply of an echo request with id 7 is the key with the
//! addresses swapped, id 7 and the echo-reply type.
//!
//! The hash is *symmetric*: a key and its reverse hash to the same value,
//! so both directions of an untranslated connection live in one shard
//! under one index entry (see `table.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Tuple;

/// IP protocol numbers the tracker knows.
pub(crate) mod proto {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

/// One direction of a connection, in a zone.
#[derive(Clone, Copy, Eq, Debug, Default)]
pub(crate) struct Key {
    w: [u64; 5],
}

impl PartialEq for Key {
    /// Five word compares, no `memcmp` call.
    #[inline(always)]
    fn eq(&self, o: &Key) -> bool {
        ((self.w[0] ^ o.w[0])
            | (self.w[1] ^ o.w[1])
            | (self.w[2] ^ o.w[2])
            | (self.w[3] ^ o.w[3])
            | (self.w[4] ^ o.w[4]))
            == 0
    }
}

const FAM4: u64 = 4;
const FAM6: u64 = 6;

/// The reply type of an ICMP query type (echo, timestamp, information;
/// ICMPv6 echo), or the type itself for anything else.
#[inline]
pub(crate) fn reverse_icmp_type(proto: u8, ty: u8) -> u8 {
    match (proto, ty) {
        (proto::ICMP, 8) => 0,
        (proto::ICMP, 0) => 8,
        (proto::ICMP, 13) => 14,
        (proto::ICMP, 14) => 13,
        (proto::ICMP, 15) => 16,
        (proto::ICMP, 16) => 15,
        (proto::ICMPV6, 128) => 129,
        (proto::ICMPV6, 129) => 128,
        (_, t) => t,
    }
}

#[inline]
fn is_icmp(proto: u8) -> bool {
    proto == proto::ICMP || proto == proto::ICMPV6
}

#[inline]
fn addr_words(a: IpAddr) -> (u64, u64, u64) {
    match a {
        IpAddr::V4(v4) => (0, u32::from(v4) as u64, FAM4),
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            ((x >> 64) as u64, x as u64, FAM6)
        }
    }
}

#[inline]
fn words_addr(hi: u64, lo: u64, fam: u64) -> IpAddr {
    if fam == FAM4 {
        IpAddr::V4(Ipv4Addr::from(lo as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(((hi as u128) << 64) | lo as u128))
    }
}

/// Word 4 of a key: ports, protocol, family and zone (see the module docs).
#[inline(always)]
fn meta_word(sport: u16, dport: u16, proto: u8, fam: u64, zone: u16) -> u64 {
    sport as u64 | (dport as u64) << 16 | (proto as u64) << 32 | fam << 40 | (zone as u64) << 48
}

/// Folded 64×64→128 multiply: the mixing step of the hash.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Key {
    /// All zeros (no connection has it: family 0).
    pub(crate) const ZERO: Key = Key { w: [0; 5] };

    /// A key from its parts. `sport`/`dport` for ICMP queries: identifier
    /// and message type (see the module docs).
    #[inline]
    pub(crate) fn new(
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
        zone: u16,
    ) -> Key {
        let (s0, s1, fam) = addr_words(src);
        let (d0, d1, _) = addr_words(dst);
        Key {
            w: [s0, s1, d0, d1, meta_word(sport, dport, proto, fam, zone)],
        }
    }

    /// An IPv4 key from the header's address words (host order).
    #[inline(always)]
    pub(crate) fn v4(src: u32, dst: u32, sport: u16, dport: u16, proto: u8, zone: u16) -> Key {
        Key {
            w: [
                0,
                src as u64,
                0,
                dst as u64,
                meta_word(sport, dport, proto, FAM4, zone),
            ],
        }
    }

    /// An IPv6 key from the addresses as big-endian integers.
    #[inline(always)]
    pub(crate) fn v6(src: u128, dst: u128, sport: u16, dport: u16, proto: u8, zone: u16) -> Key {
        Key {
            w: [
                (src >> 64) as u64,
                src as u64,
                (dst >> 64) as u64,
                dst as u64,
                meta_word(sport, dport, proto, FAM6, zone),
            ],
        }
    }

    /// The key of a tuple as `packet::parse` gives it (ICMP queries:
    /// identifier in `src_port`, `type << 8 | code` in `dst_port`).
    #[inline]
    pub(crate) fn from_tuple(t: &Tuple, zone: u16) -> Key {
        let dport = if is_icmp(t.proto) {
            t.dst_port >> 8
        } else {
            t.dst_port
        };
        Key::new(t.src, t.dst, t.src_port, dport, t.proto, zone)
    }

    /// Source address.
    #[inline]
    pub(crate) fn src(&self) -> IpAddr {
        words_addr(self.w[0], self.w[1], self.family())
    }

    /// Destination address.
    #[inline]
    pub(crate) fn dst(&self) -> IpAddr {
        words_addr(self.w[2], self.w[3], self.family())
    }

    /// The addresses as they are on the wire: 4 bytes each for IPv4, 16
    /// for IPv6 (`n` of the arrays used).
    #[inline(always)]
    pub(crate) fn addr_bytes(&self) -> ([u8; 16], [u8; 16], usize) {
        if self.family() == FAM4 {
            let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
            s[..4].copy_from_slice(&(self.w[1] as u32).to_be_bytes());
            d[..4].copy_from_slice(&(self.w[3] as u32).to_be_bytes());
            (s, d, 4)
        } else {
            let a = |hi: u64, lo: u64| ((hi as u128) << 64 | lo as u128).to_be_bytes();
            (a(self.w[0], self.w[1]), a(self.w[2], self.w[3]), 16)
        }
    }

    /// Source port (ICMP: identifier).
    #[inline]
    pub(crate) fn sport(&self) -> u16 {
        self.w[4] as u16
    }

    /// Destination port (ICMP: message type).
    #[inline]
    pub(crate) fn dport(&self) -> u16 {
        (self.w[4] >> 16) as u16
    }

    /// IP protocol.
    #[inline]
    pub(crate) fn proto(&self) -> u8 {
        (self.w[4] >> 32) as u8
    }

    /// 4 or 6.
    #[inline]
    fn family(&self) -> u64 {
        (self.w[4] >> 40) & 0xff
    }

    /// Whether the addresses are IPv6.
    #[inline]
    pub(crate) fn is_v6(&self) -> bool {
        self.family() == FAM6
    }

    /// Zone.
    #[inline]
    pub(crate) fn zone(&self) -> u16 {
        (self.w[4] >> 48) as u16
    }

    /// Whether this is an ICMP/ICMPv6 query key.
    #[inline]
    pub(crate) fn is_icmp(&self) -> bool {
        is_icmp(self.proto())
    }

    #[inline]
    fn with_ports(&self, sport: u16, dport: u16) -> u64 {
        (self.w[4] & !0xffff_ffff) | sport as u64 | (dport as u64) << 16
    }

    /// The same key with another source address and port.
    #[inline]
    pub(crate) fn with_src(&self, addr: IpAddr, port: u16) -> Key {
        let (a0, a1, _) = addr_words(addr);
        Key {
            w: [
                a0,
                a1,
                self.w[2],
                self.w[3],
                self.with_ports(port, self.dport()),
            ],
        }
    }

    /// The same key with another destination address and port.
    #[inline]
    pub(crate) fn with_dst(&self, addr: IpAddr, port: u16) -> Key {
        let (a0, a1, _) = addr_words(addr);
        Key {
            w: [
                self.w[0],
                self.w[1],
                a0,
                a1,
                self.with_ports(self.sport(), port),
            ],
        }
    }

    /// The key the other direction's packets carry: addresses and ports
    /// swapped (ICMP: addresses swapped, same identifier, reply type).
    #[inline]
    pub(crate) fn reverse(&self) -> Key {
        let (sp, dp) = (self.sport(), self.dport());
        let w4 = if self.is_icmp() {
            self.with_ports(sp, reverse_icmp_type(self.proto(), dp as u8) as u16)
        } else {
            self.with_ports(dp, sp)
        };
        Key {
            w: [self.w[2], self.w[3], self.w[0], self.w[1], w4],
        }
    }

    /// The public tuple (ICMP queries: `src_port` = identifier, `dst_port` =
    /// `type << 8 | code`, as [`Tuple`] says, with code 0 for queries:
    /// `vswitch ct show` prints them).
    #[inline]
    pub(crate) fn tuple(&self) -> Tuple {
        if self.is_icmp() {
            self.tuple_with_ports(self.sport(), self.dport() << 8)
        } else {
            self.tuple_with_ports(self.sport(), self.dport())
        }
    }

    /// The tuple `CtMeta::orig` carries (`ct_nw_*`, `ct_tp_*`): as
    /// [`Key::tuple`], but ICMP gives the type in `src_port` and the code
    /// (0 for queries) in `dst_port`, as OVS's `ct_tp_src`/`ct_tp_dst`.
    #[inline]
    pub(crate) fn meta_tuple(&self) -> Tuple {
        if self.is_icmp() {
            self.tuple_with_ports(self.dport(), 0)
        } else {
            self.tuple_with_ports(self.sport(), self.dport())
        }
    }

    /// The key's addresses and protocol with the given ports.
    #[inline]
    fn tuple_with_ports(&self, src_port: u16, dst_port: u16) -> Tuple {
        Tuple {
            src: self.src(),
            dst: self.dst(),
            src_port,
            dst_port,
            proto: self.proto(),
        }
    }

    /// Symmetric hash: `k.hash(s) == k.reverse().hash(s)`. The endpoints
    /// (address, port) are put in a canonical order before mixing; ICMP's
    /// type is left out (it differs between the directions), the
    /// identifier is hashed.
    #[inline]
    pub(crate) fn hash(&self, seed: &[u64; 4]) -> u64 {
        let w4 = self.w[4];
        let (sp, dp) = if self.is_icmp() {
            (self.sport() as u64, self.sport() as u64)
        } else {
            (self.sport() as u64, self.dport() as u64)
        };
        let (a, b) = ((self.w[0], self.w[1], sp), (self.w[2], self.w[3], dp));
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        let rest = w4 >> 32; // proto, family, zone
        let h = fold_mul(a.0 ^ seed[0], a.1 ^ seed[1]);
        let h = fold_mul(h ^ b.0, b.1 ^ seed[2]);
        fold_mul(h ^ (a.2 << 16 | b.2 | rest << 32), seed[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> [u64; 4] {
        [
            0x9e37_79b9_7f4a_7c15,
            0xbf58_476d_1ce4_e5b9,
            0x94d0_49bb_1331_11eb,
            0x2545_f491_4f6c_dd1d,
        ]
    }

    /// `Key::new` from address strings.
    fn key(src: &str, dst: &str, sport: u16, dport: u16, proto: u8, zone: u16) -> Key {
        Key::new(
            src.parse().unwrap(),
            dst.parse().unwrap(),
            sport,
            dport,
            proto,
            zone,
        )
    }

    #[test]
    fn test_reverse_and_symmetric_hash() {
        let k = key("10.0.0.1", "10.0.0.2", 1234, 80, proto::TCP, 5);
        let r = k.reverse();
        assert_eq!(r.src(), "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (r.sport(), r.dport(), r.zone(), r.proto()),
            (80, 1234, 5, proto::TCP)
        );
        assert_eq!(r.reverse(), k);
        assert_eq!(k.hash(&seed()), r.hash(&seed()));
        let other = key("10.0.0.1", "10.0.0.2", 1235, 80, proto::TCP, 5);
        assert_ne!(k.hash(&seed()), other.hash(&seed()));
        let z = key("10.0.0.1", "10.0.0.2", 1234, 80, proto::TCP, 6);
        assert_ne!(k, z);
        assert_ne!(k.hash(&seed()), z.hash(&seed()));
    }

    #[test]
    fn test_icmp_reverse_keeps_id() {
        let k = key("fd00::1", "fd00::2", 77, 128, proto::ICMPV6, 0);
        let r = k.reverse();
        assert_eq!((r.sport(), r.dport()), (77, 129));
        assert!(r.is_v6());
        assert_eq!(k.hash(&seed()), r.hash(&seed()));
    }

    #[test]
    fn test_v4_and_v6_differ() {
        let a = key("0.0.0.1", "0.0.0.2", 1, 2, proto::UDP, 0);
        let b = key("::1", "::2", 1, 2, proto::UDP, 0);
        assert_ne!(a, b);
    }

    #[test]
    fn test_fast_constructors_match_new() {
        let a = Key::v4(0x0a00_0001, 0x0a00_0002, 1234, 80, proto::TCP, 9);
        assert_eq!(a, key("10.0.0.1", "10.0.0.2", 1234, 80, proto::TCP, 9));
        let (s, d) = (
            u128::from(0xfd00u16) << 112 | 1,
            u128::from(0xfd00u16) << 112 | 2,
        );
        let b = Key::v6(s, d, 5000, 53, proto::UDP, 3);
        assert_eq!(b, key("fd00::1", "fd00::2", 5000, 53, proto::UDP, 3));
        assert_eq!(
            (b.sport(), b.dport(), b.proto(), b.zone()),
            (5000, 53, proto::UDP, 3)
        );
    }
}
