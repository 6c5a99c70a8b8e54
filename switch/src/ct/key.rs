//! `CtKey`: the connection-tracking fields a frame carries after a `ct`
//! action (`ct_state`, `ct_zone`, `ct_mark`, `ct_label` and the original
//! direction tuple), as a second 64-byte key beside [`crate::key::FlowKey`].
//!
//! The flow key is full, and frames that never meet a `ct` action must pay
//! nothing for conntrack: they keep the flow key alone (their ct fields are
//! all zero, "untracked"). Rules that match ct fields carry a `CtKey` value
//! and mask in their [`crate::rule::Match`]; only classifier subtables whose
//! masks touch ct fields read it, and only recirculated passes (after a
//! `ct(table=N)`) have a non-zero one.
//!
//! Layout (multi-byte fields big-endian, so prefixes are leading bits):
//!
//! | bytes  | field                                                     |
//! |--------|-----------------------------------------------------------|
//! | 0      | ct_state (`conntrack::state` bits, OVS's values)          |
//! | 1      | ct_nw_proto                                               |
//! | 2..4   | ct_zone                                                   |
//! | 4..8   | ct_mark                                                   |
//! | 8..24  | ct_label (128 bits)                                       |
//! | 24..40 | ct_nw_src (IPv4 in 24..28) / ct_ipv6_src                  |
//! | 40..56 | ct_nw_dst (IPv4 in 40..44) / ct_ipv6_dst                  |
//! | 56..58 | ct_tp_src                                                 |
//! | 58..60 | ct_tp_dst                                                 |
//! | 60..63 | recirculation id (the datapath's, never in a rule)        |
//! | 63     | address family of the tuple: 4, 6, or 0 (no connection)   |
//!
//! The family byte keeps `ct_nw_src` (IPv4) and `ct_ipv6_src` apart as in
//! OVS, where an IPv4 connection has `ct_ipv6_src` 0: a rule matching an
//! IPv4 tuple field also matches family 4, an IPv6 one family 6.

use conntrack::{CtMeta, Tuple};
use std::net::IpAddr;

/// Field byte ranges inside [`CtKey`].
pub mod field {
    use core::ops::Range;
    /// `ct_state`.
    pub const STATE: usize = 0;
    /// `ct_nw_proto`.
    pub const NW_PROTO: usize = 1;
    /// `ct_zone`.
    pub const ZONE: Range<usize> = 2..4;
    /// `ct_mark`.
    pub const MARK: Range<usize> = 4..8;
    /// `ct_label`.
    pub const LABEL: Range<usize> = 8..24;
    /// `ct_nw_src` (IPv4).
    pub const NW_SRC4: Range<usize> = 24..28;
    /// `ct_ipv6_src`.
    pub const NW_SRC6: Range<usize> = 24..40;
    /// `ct_nw_dst` (IPv4).
    pub const NW_DST4: Range<usize> = 40..44;
    /// `ct_ipv6_dst`.
    pub const NW_DST6: Range<usize> = 40..56;
    /// `ct_tp_src`.
    pub const TP_SRC: Range<usize> = 56..58;
    /// `ct_tp_dst`.
    pub const TP_DST: Range<usize> = 58..60;
    /// The recirculation id (24 bits), set by the datapath only.
    pub const RECIRC: Range<usize> = 60..63;
    /// Address family of the tuple (4, 6, 0).
    pub const FAMILY: usize = 63;
}

/// Size of a [`CtKey`] in bytes.
pub const CT_KEY_LEN: usize = 64;
const WORDS: usize = CT_KEY_LEN / 8;

/// The conntrack fields of a frame (see the module docs for the layout).
/// A mask is a `CtKey` too.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct CtKey {
    bytes: [u8; CT_KEY_LEN],
}

impl PartialEq for CtKey {
    #[inline(always)]
    fn eq(&self, o: &CtKey) -> bool {
        let mut d = 0u64;
        for i in 0..WORDS {
            d |= self.word(i) ^ o.word(i);
        }
        d == 0
    }
}

impl Eq for CtKey {}

impl core::hash::Hash for CtKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.bytes);
    }
}

impl Default for CtKey {
    fn default() -> Self {
        CtKey::ZERO
    }
}

impl core::fmt::Debug for CtKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CtKey(")?;
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl CtKey {
    /// Untracked (and the "match anything" mask).
    pub const ZERO: CtKey = CtKey {
        bytes: [0; CT_KEY_LEN],
    };

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8; CT_KEY_LEN] {
        &self.bytes
    }

    /// Raw bytes, mutable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8; CT_KEY_LEN] {
        &mut self.bytes
    }

    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        u64::from_ne_bytes(self.bytes[i * 8..i * 8 + 8].try_into().unwrap())
    }

    /// True when every byte is 0.
    #[inline]
    pub fn is_zero(&self) -> bool {
        (0..WORDS).all(|i| self.word(i) == 0)
    }

    /// A key from its eight native-endian words (word `i`: bytes
    /// `8i..8i+8`); word stores, so the word loads that follow (compare,
    /// hash, mask) are forwarded instead of stalling on byte stores.
    #[inline(always)]
    fn from_words(w: [u64; WORDS]) -> CtKey {
        let mut out = CtKey::ZERO;
        for (i, w) in w.iter().enumerate() {
            out.bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
        out
    }

    /// `self & mask`.
    #[inline]
    pub fn masked(&self, mask: &CtKey) -> CtKey {
        CtKey::from_words(core::array::from_fn(|i| self.word(i) & mask.word(i)))
    }

    /// `self | other`.
    pub fn union(&self, other: &CtKey) -> CtKey {
        let mut out = *self;
        for (o, b) in out.bytes.iter_mut().zip(&other.bytes) {
            *o |= b;
        }
        out
    }

    /// True when `self & mask == value` (value already masked).
    #[inline]
    pub fn matches(&self, mask: &CtKey, value: &CtKey) -> bool {
        let mut d = 0u64;
        for i in 0..WORDS {
            d |= (self.word(i) & mask.word(i)) ^ value.word(i);
        }
        d == 0
    }

    /// True when every bit set in `other` is also set in `self`.
    pub fn covers(&self, other: &CtKey) -> bool {
        (0..WORDS).all(|i| other.word(i) & !self.word(i) == 0)
    }

    /// 64-bit hash (multiply-fold, as [`crate::key::FlowKey::hash`]).
    #[inline]
    pub fn hash(&self) -> u64 {
        #[inline(always)]
        fn mix(a: u64, b: u64) -> u64 {
            let r = u128::from(a).wrapping_mul(u128::from(b));
            (r as u64) ^ ((r >> 64) as u64)
        }
        const K: [u64; 4] = [
            0x2d35_8dcc_aa6c_78a5,
            0x8bb8_4b93_962e_acc9,
            0x4b33_a62e_d433_d4a3,
            0x4d5a_2da5_1de1_aa47,
        ];
        let a = mix(self.word(0) ^ K[0], self.word(1) ^ K[1]);
        let b = mix(self.word(2) ^ K[2], self.word(3) ^ K[3]);
        let c = mix(self.word(4) ^ K[1], self.word(5) ^ K[2]);
        let d = mix(self.word(6) ^ K[3], self.word(7) ^ K[0]);
        mix(a ^ c ^ K[2], b ^ d ^ K[0])
    }

    /// `ct_state`.
    pub fn state(&self) -> u8 {
        self.bytes[field::STATE]
    }
    /// Set `ct_state`.
    pub fn set_state(&mut self, v: u8) {
        self.bytes[field::STATE] = v;
    }
    /// `ct_zone`.
    pub fn zone(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }
    /// Set `ct_zone`.
    pub fn set_zone(&mut self, v: u16) {
        self.bytes[field::ZONE].copy_from_slice(&v.to_be_bytes());
    }
    /// `ct_mark`.
    pub fn mark(&self) -> u32 {
        u32::from_be_bytes(self.bytes[field::MARK].try_into().unwrap())
    }
    /// Set `ct_mark`.
    pub fn set_mark(&mut self, v: u32) {
        self.bytes[field::MARK].copy_from_slice(&v.to_be_bytes());
    }
    /// `ct_label`.
    pub fn label(&self) -> u128 {
        u128::from_be_bytes(self.bytes[field::LABEL].try_into().unwrap())
    }
    /// Set `ct_label`.
    pub fn set_label(&mut self, v: u128) {
        self.bytes[field::LABEL].copy_from_slice(&v.to_be_bytes());
    }
    /// `ct_nw_proto`.
    pub fn nw_proto(&self) -> u8 {
        self.bytes[field::NW_PROTO]
    }
    /// `ct_tp_src`.
    pub fn tp_src(&self) -> u16 {
        u16::from_be_bytes([self.bytes[56], self.bytes[57]])
    }
    /// `ct_tp_dst`.
    pub fn tp_dst(&self) -> u16 {
        u16::from_be_bytes([self.bytes[58], self.bytes[59]])
    }
    /// Address family of the original tuple: 4, 6, or 0 (no connection).
    pub fn family(&self) -> u8 {
        self.bytes[field::FAMILY]
    }
    /// The original tuple's source address, if any.
    pub fn nw_src(&self) -> Option<IpAddr> {
        self.addr(field::NW_SRC6.start)
    }
    /// The original tuple's destination address, if any.
    pub fn nw_dst(&self) -> Option<IpAddr> {
        self.addr(field::NW_DST6.start)
    }
    fn addr(&self, at: usize) -> Option<IpAddr> {
        match self.family() {
            4 => Some(IpAddr::from(
                <[u8; 4]>::try_from(&self.bytes[at..at + 4]).unwrap(),
            )),
            6 => Some(IpAddr::from(
                <[u8; 16]>::try_from(&self.bytes[at..at + 16]).unwrap(),
            )),
            _ => None,
        }
    }
    /// The recirculation id (datapath-internal).
    pub fn recirc(&self) -> u32 {
        let r = &self.bytes[field::RECIRC];
        u32::from_be_bytes([0, r[0], r[1], r[2]])
    }
    /// Set the recirculation id (24 bits).
    #[inline]
    pub fn set_recirc(&mut self, id: u32) {
        // Bytes 60..63 of word 7, rewritten as a word (see `from_words`).
        let mut b = self.word(7).to_ne_bytes();
        b[4..7].copy_from_slice(&id.to_be_bytes()[1..]);
        self.bytes[56..64].copy_from_slice(&b);
    }

    /// The key of a frame whose ct fields are `m`.
    #[inline]
    pub fn from_meta(m: &CtMeta) -> CtKey {
        if m.state == 0 {
            return CtKey::ZERO;
        }
        let (z, mk) = (m.zone.to_be_bytes(), m.mark.to_be_bytes());
        let l = m.label.to_be_bytes();
        let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap());
        let (proto, mut tail, src, dst, family) = match m.orig {
            None => (0, [0u8; 8], [0u8; 16], [0u8; 16], 0),
            Some(t) => {
                let (s, d, fam) = match (t.src, t.dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
                        a[..4].copy_from_slice(&s.octets());
                        b[..4].copy_from_slice(&d.octets());
                        (a, b, 4)
                    }
                    (s, d) => (v6(s), v6(d), 6),
                };
                let (sp, dp) = (t.src_port.to_be_bytes(), t.dst_port.to_be_bytes());
                (t.proto, [sp[0], sp[1], dp[0], dp[1], 0, 0, 0, 0], s, d, fam)
            }
        };
        tail[7] = family;
        CtKey::from_words([
            u64::from_ne_bytes([m.state, proto, z[0], z[1], mk[0], mk[1], mk[2], mk[3]]),
            word(&l[..8]),
            word(&l[8..]),
            word(&src[..8]),
            word(&src[8..]),
            word(&dst[..8]),
            word(&dst[8..]),
            u64::from_ne_bytes(tail),
        ])
    }

    /// `CtKey::from_meta(m).masked(mask)`, building only what the mask
    /// reads: a table whose rules match `ct_state` (and zone, mark,
    /// label) but no original-tuple field never converts the tuple.
    #[inline]
    pub fn from_meta_masked(m: &CtMeta, mask: &CtKey) -> CtKey {
        // ct_nw_proto (byte 1) and bytes 24..64 come from the tuple.
        let tuple = mask.bytes[field::NW_PROTO] != 0
            || (mask.word(3) | mask.word(4) | mask.word(5) | mask.word(6) | mask.word(7)) != 0;
        if tuple {
            return CtKey::from_meta(m).masked(mask);
        }
        if m.state == 0 {
            return CtKey::ZERO;
        }
        let (z, mk) = (m.zone.to_be_bytes(), m.mark.to_be_bytes());
        let w0 = u64::from_ne_bytes([m.state, 0, z[0], z[1], mk[0], mk[1], mk[2], mk[3]]);
        let (mut w1, mut w2) = (0, 0);
        if mask.word(1) | mask.word(2) != 0 {
            let l = m.label.to_be_bytes();
            w1 = u64::from_ne_bytes(l[..8].try_into().unwrap());
            w2 = u64::from_ne_bytes(l[8..].try_into().unwrap());
        }
        CtKey::from_words([
            w0 & mask.word(0),
            w1 & mask.word(1),
            w2 & mask.word(2),
            0,
            0,
            0,
            0,
            0,
        ])
    }

    /// Write the original-direction tuple.
    pub fn set_tuple(&mut self, t: &Tuple) {
        let b = &mut self.bytes;
        b[field::NW_PROTO] = t.proto;
        b[field::TP_SRC].copy_from_slice(&t.src_port.to_be_bytes());
        b[field::TP_DST].copy_from_slice(&t.dst_port.to_be_bytes());
        b[field::NW_SRC6].fill(0);
        b[field::NW_DST6].fill(0);
        match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                b[field::NW_SRC4].copy_from_slice(&s.octets());
                b[field::NW_DST4].copy_from_slice(&d.octets());
                b[field::FAMILY] = 4;
            }
            (s, d) => {
                b[field::NW_SRC6].copy_from_slice(&v6(s));
                b[field::NW_DST6].copy_from_slice(&v6(d));
                b[field::FAMILY] = 6;
            }
        }
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn layout_and_meta() {
        assert_eq!(core::mem::size_of::<CtKey>(), 64);
        let m = CtMeta {
            state: 0x21,
            zone: 5,
            mark: 0xdead_beef,
            label: 1 << 100,
            orig: Some(Tuple {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                src_port: 1234,
                dst_port: 80,
                proto: 6,
            }),
        };
        let k = CtKey::from_meta(&m);
        assert_eq!(k.state(), 0x21);
        assert_eq!(k.zone(), 5);
        assert_eq!(k.mark(), 0xdead_beef);
        assert_eq!(k.label(), 1 << 100);
        assert_eq!(k.nw_src(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(k.nw_dst(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!(
            (k.tp_src(), k.tp_dst(), k.nw_proto(), k.family()),
            (1234, 80, 6, 4)
        );
        assert!(CtKey::from_meta(&CtMeta::default()).is_zero());
        // The word-built key equals the one built field by field.
        for orig in [
            m.orig,
            None,
            Some(Tuple {
                src: "fd00::1".parse().unwrap(),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                src_port: 1,
                dst_port: 2,
                proto: 17,
            }),
        ] {
            let m = CtMeta { orig, ..m };
            let mut f = CtKey::ZERO;
            f.set_state(m.state);
            f.set_zone(m.zone);
            f.set_mark(m.mark);
            f.set_label(m.label);
            if let Some(t) = m.orig {
                f.set_tuple(&t);
            }
            assert_eq!(CtKey::from_meta(&m), f, "{orig:?}");
            // Masked building equals building then masking, for masks
            // with and without tuple or label fields.
            for set in [
                &[field::STATE][..],
                &[field::STATE, 2, 3, 4, 7],
                &[field::STATE, 9, 23],
                &[field::NW_PROTO],
                &[field::STATE, 25],
                &[41],
                &[57],
                &[field::FAMILY],
            ] {
                let mut mask = CtKey::ZERO;
                for &b in set {
                    mask.as_bytes_mut()[b] = 0xa5;
                }
                for st in [0, m.state] {
                    let m = CtMeta { state: st, ..m };
                    assert_eq!(
                        CtKey::from_meta_masked(&m, &mask),
                        CtKey::from_meta(&m).masked(&mask),
                        "{orig:?} {set:?} state {st}"
                    );
                }
            }
            let mut mask = CtKey::ZERO;
            mask.set_state(0xff);
            mask.set_mark(0xffff);
            assert_eq!(f.masked(&mask).mark(), 0xbeef);
            assert_eq!(f.masked(&mask).zone(), 0);
        }
        let mut r = k;
        r.set_recirc(0x12_3456);
        assert_eq!(r.recirc(), 0x12_3456);
        assert_ne!(r.hash(), k.hash());
        assert_eq!(r.family(), 4);
    }
}
