//! `FlowKey`: the fixed-size (64 bytes, one cache line), hashable, maskable
//! summary of a frame's headers that rules match against.
//!
//! Layout (all multi-byte fields in network byte order so IP prefixes are
//! leading bits):
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0..6   | dl_dst                                                       |
//! | 6..8   | in_port                                                      |
//! | 8..14  | dl_src                                                       |
//! | 14..16 | dl_type (0x05ff for 802.3 frames, like OVS)                  |
//! | 16..18 | vlan_tci of the outer tag, 0x1000 (CFI) set when present     |
//! | 18..20 | vlan_tci of the inner tag (QinQ), same encoding              |
//! | 20     | nw_proto (ARP: low byte of the opcode)                       |
//! | 21     | nw_tos (DSCP << 2 \| ECN)                                    |
//! | 22     | nw_ttl (IPv6: hop limit)                                     |
//! | 23     | nw_frag (bit 0: fragment, bit 1: later fragment)             |
//! | 24..26 | tp_src (ICMP: type)                                          |
//! | 26..28 | tp_dst (ICMP: code)                                          |
//! | 28..30 | tcp_flags                                                    |
//! | 30     | tun_flags (bit 0: 52..64 hold tunnel metadata)               |
//! | 32..48 | nw_src: IPv4 in 32..36 (ARP spa), ARP sha in 36..42, ARP tha in 42..48, or IPv6 |
//! | 48..64 | nw_dst: IPv4 in 48..52 (ARP tpa), or IPv6                    |
//! | 52..64 | frames from tunnel ports, not IPv6: tun_id 52..56, tun_src 56..60, tun_dst 60..64 |
//!
//! A mask is a `FlowKey` too: a rule matches a key when `key & mask == value`.
//!
//! Tunnel metadata (`tun_id`, `tun_src`, `tun_dst`) lives in bytes every
//! non-IPv6 frame leaves zero, and only frames decapsulated by a tunnel port
//! fill them (with [`TUN_PRESENT`] set), so the key stays one cache line and
//! the extraction of every other frame is unchanged. An IPv6 inner frame
//! needs those bytes for its destination address: it keeps them, with
//! `TUN_PRESENT` clear, so rules that match tunnel fields (which all require
//! `TUN_PRESENT`) never match it (see `switch/README.md`, "Tunnels").

use core::ops::Range;

/// Field byte ranges inside [`FlowKey`].
pub mod field {
    use core::ops::Range;
    /// Destination MAC.
    pub const DL_DST: Range<usize> = 0..6;
    /// Ingress port.
    pub const IN_PORT: Range<usize> = 6..8;
    /// Source MAC.
    pub const DL_SRC: Range<usize> = 8..14;
    /// EtherType after the VLAN tags.
    pub const DL_TYPE: Range<usize> = 14..16;
    /// Outer VLAN TCI (+CFI as presence bit).
    pub const VLAN_TCI: Range<usize> = 16..18;
    /// Inner VLAN TCI (+CFI as presence bit).
    pub const VLAN_TCI2: Range<usize> = 18..20;
    /// IP protocol / ARP opcode.
    pub const NW_PROTO: usize = 20;
    /// IP TOS / traffic class.
    pub const NW_TOS: usize = 21;
    /// IP TTL / hop limit.
    pub const NW_TTL: usize = 22;
    /// Fragment bits.
    pub const NW_FRAG: usize = 23;
    /// L4 source port / ICMP type.
    pub const TP_SRC: Range<usize> = 24..26;
    /// L4 destination port / ICMP code.
    pub const TP_DST: Range<usize> = 26..28;
    /// TCP flags.
    pub const TCP_FLAGS: Range<usize> = 28..30;
    /// Tunnel flags ([`super::TUN_PRESENT`]).
    pub const TUN_FLAGS: usize = 30;
    /// IPv4 source / ARP spa.
    pub const NW_SRC4: Range<usize> = 32..36;
    /// ARP sender hardware address.
    pub const ARP_SHA: Range<usize> = 36..42;
    /// IPv6 source.
    pub const NW_SRC6: Range<usize> = 32..48;
    /// IPv4 destination / ARP tpa.
    pub const NW_DST4: Range<usize> = 48..52;
    /// ARP target hardware address.
    pub const ARP_THA: Range<usize> = 42..48;
    /// IPv6 destination.
    pub const NW_DST6: Range<usize> = 48..64;
    /// Tunnel key (VNI, 24 bits used) of a frame from a tunnel port.
    pub const TUN_ID: Range<usize> = 52..56;
    /// Outer IPv4 source of a frame from a tunnel port.
    pub const TUN_SRC: Range<usize> = 56..60;
    /// Outer IPv4 destination of a frame from a tunnel port.
    pub const TUN_DST: Range<usize> = 60..64;
    /// Everything tunnel metadata occupies (with [`TUN_FLAGS`]).
    pub const TUN_META: Range<usize> = 52..64;
}

/// `tun_flags` bit: bytes 52..64 hold the tunnel metadata of a frame
/// received on a tunnel port (never set for IPv6 inner frames).
pub const TUN_PRESENT: u8 = 1;

/// `nw_frag` bit: the packet is a fragment.
pub const FRAG_ANY: u8 = 1;
/// `nw_frag` bit: the packet is a non-first fragment.
pub const FRAG_LATER: u8 = 2;
/// Presence bit in the stored VLAN TCI (the CFI/DEI position, as in OVS).
pub const VLAN_PRESENT: u16 = 0x1000;

/// Size of a key in bytes.
pub const KEY_LEN: usize = 64;
const WORDS: usize = KEY_LEN / 8;

/// The flow key; see the module docs for the layout.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct FlowKey {
    bytes: [u8; KEY_LEN],
}

impl PartialEq for FlowKey {
    /// Branch-free word compare (the derived one calls `memcmp`, which
    /// showed up as a quarter of the cache-hit path).
    #[inline(always)]
    fn eq(&self, o: &FlowKey) -> bool {
        let mut d = 0u64;
        for i in 0..WORDS {
            d |= self.word(i) ^ o.word(i);
        }
        d == 0
    }
}

impl Eq for FlowKey {}

impl core::hash::Hash for FlowKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.bytes);
    }
}

impl Default for FlowKey {
    fn default() -> Self {
        Self::ZERO
    }
}

impl core::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FlowKey(")?;
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

macro_rules! u16_field {
    ($get:ident, $set:ident, $f:expr, $doc:literal) => {
        #[doc = $doc]
        #[inline(always)]
        pub fn $get(&self) -> u16 {
            u16::from_be_bytes([self.bytes[$f.start], self.bytes[$f.start + 1]])
        }
        #[doc = concat!("Set: ", $doc)]
        #[inline(always)]
        pub fn $set(&mut self, v: u16) {
            self.bytes[$f].copy_from_slice(&v.to_be_bytes());
        }
    };
}

macro_rules! u8_field {
    ($get:ident, $set:ident, $f:expr, $doc:literal) => {
        #[doc = $doc]
        #[inline(always)]
        pub fn $get(&self) -> u8 {
            self.bytes[$f]
        }
        #[doc = concat!("Set: ", $doc)]
        #[inline(always)]
        pub fn $set(&mut self, v: u8) {
            self.bytes[$f] = v;
        }
    };
}

macro_rules! arr_field {
    ($get:ident, $set:ident, $f:expr, $n:literal, $doc:literal) => {
        #[doc = $doc]
        #[inline(always)]
        pub fn $get(&self) -> [u8; $n] {
            self.bytes[$f].try_into().unwrap()
        }
        #[doc = concat!("Set: ", $doc)]
        #[inline(always)]
        pub fn $set(&mut self, v: [u8; $n]) {
            self.bytes[$f].copy_from_slice(&v);
        }
    };
}

impl FlowKey {
    /// All-zero key (also the "match anything" mask).
    pub const ZERO: FlowKey = FlowKey {
        bytes: [0; KEY_LEN],
    };
    /// All-ones mask (exact match on every field).
    pub const ONES: FlowKey = FlowKey {
        bytes: [0xff; KEY_LEN],
    };

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
    /// Raw bytes, mutable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.bytes
    }
    /// Build from raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        FlowKey { bytes }
    }

    #[inline(always)]
    pub(crate) fn word(&self, i: usize) -> u64 {
        u64::from_ne_bytes(self.bytes[i * 8..i * 8 + 8].try_into().unwrap())
    }

    /// `self & mask`.
    #[inline]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::ZERO;
        for i in 0..KEY_LEN {
            out.bytes[i] = self.bytes[i] & mask.bytes[i];
        }
        out
    }

    /// Overwrite the key with eight words (native byte order), the way
    /// [`crate::extract`]'s fast path builds it: wide stores only.
    #[inline(always)]
    pub(crate) fn set_words(&mut self, w: [u64; WORDS]) {
        for (i, v) in w.iter().enumerate() {
            self.bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// `self &= mask`, a word at a time.
    #[inline(always)]
    pub fn mask_in_place(&mut self, mask: &FlowKey) {
        for i in 0..WORDS {
            let w = self.word(i) & mask.word(i);
            self.bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
    }

    /// `self | other`: the bits either looks at.
    pub fn union(&self, other: &FlowKey) -> FlowKey {
        let mut out = *self;
        for (o, b) in out.bytes.iter_mut().zip(&other.bytes) {
            *o |= b;
        }
        out
    }

    /// True when `self & mask == value` (value must already be masked).
    #[inline]
    pub fn matches(&self, mask: &FlowKey, value: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..WORDS {
            diff |= (self.word(i) & mask.word(i)) ^ value.word(i);
        }
        diff == 0
    }

    /// True when every bit set in `other` is also set in `self`.
    pub fn covers(&self, other: &FlowKey) -> bool {
        (0..WORDS).all(|i| other.word(i) & !self.word(i) == 0)
    }

    /// 64-bit hash of the key (multiply-fold, wyhash style): cheap, all 64
    /// bytes mixed, good low bits for bucket selection and high bits for
    /// signatures.
    #[inline]
    pub fn hash(&self) -> u64 {
        const K: [u64; 4] = [
            0xa076_1d64_78bd_642f,
            0xe703_7ed1_a0b4_28db,
            0x8ebc_6af0_9c88_c6e3,
            0x5899_65cc_7537_4cc3,
        ];
        #[inline(always)]
        fn mix(a: u64, b: u64) -> u64 {
            let r = u128::from(a).wrapping_mul(u128::from(b));
            (r as u64) ^ ((r >> 64) as u64)
        }
        let a = mix(self.word(0) ^ K[0], self.word(1) ^ K[1]);
        let b = mix(self.word(2) ^ K[2], self.word(3) ^ K[3]);
        let c = mix(self.word(4) ^ K[1], self.word(5) ^ K[2]);
        let d = mix(self.word(6) ^ K[3], self.word(7) ^ K[0]);
        mix(a ^ c ^ K[1], b ^ d ^ K[3])
    }

    /// Set every bit of a byte range (used to build masks).
    pub fn set_range(&mut self, r: Range<usize>, v: &[u8]) {
        self.bytes[r].copy_from_slice(v);
    }

    /// Byte range view.
    pub fn range(&self, r: Range<usize>) -> &[u8] {
        &self.bytes[r]
    }

    arr_field!(dl_dst, set_dl_dst, field::DL_DST, 6, "Destination MAC.");
    arr_field!(dl_src, set_dl_src, field::DL_SRC, 6, "Source MAC.");
    u16_field!(in_port, set_in_port, field::IN_PORT, "Ingress port.");
    u16_field!(
        dl_type,
        set_dl_type,
        field::DL_TYPE,
        "EtherType after VLAN tags."
    );
    u16_field!(
        vlan_tci,
        set_vlan_tci,
        field::VLAN_TCI,
        "Outer VLAN TCI, `VLAN_PRESENT` set when tagged."
    );
    u16_field!(
        vlan_tci2,
        set_vlan_tci2,
        field::VLAN_TCI2,
        "Inner VLAN TCI (QinQ), `VLAN_PRESENT` set when present."
    );
    u8_field!(
        nw_proto,
        set_nw_proto,
        field::NW_PROTO,
        "IP protocol or ARP opcode."
    );
    u8_field!(
        nw_tos,
        set_nw_tos,
        field::NW_TOS,
        "TOS byte / traffic class."
    );
    u8_field!(nw_ttl, set_nw_ttl, field::NW_TTL, "TTL / hop limit.");
    u8_field!(
        nw_frag,
        set_nw_frag,
        field::NW_FRAG,
        "Fragment bits (`FRAG_ANY`, `FRAG_LATER`)."
    );
    u16_field!(
        tp_src,
        set_tp_src,
        field::TP_SRC,
        "L4 source port or ICMP type."
    );
    u16_field!(
        tp_dst,
        set_tp_dst,
        field::TP_DST,
        "L4 destination port or ICMP code."
    );
    u16_field!(tcp_flags, set_tcp_flags, field::TCP_FLAGS, "TCP flags.");
    arr_field!(
        nw_src4,
        set_nw_src4,
        field::NW_SRC4,
        4,
        "IPv4 source / ARP spa."
    );
    arr_field!(
        nw_dst4,
        set_nw_dst4,
        field::NW_DST4,
        4,
        "IPv4 destination / ARP tpa."
    );
    arr_field!(nw_src6, set_nw_src6, field::NW_SRC6, 16, "IPv6 source.");
    arr_field!(
        nw_dst6,
        set_nw_dst6,
        field::NW_DST6,
        16,
        "IPv6 destination."
    );
    arr_field!(
        arp_sha,
        set_arp_sha,
        field::ARP_SHA,
        6,
        "ARP sender hardware address."
    );
    arr_field!(
        arp_tha,
        set_arp_tha,
        field::ARP_THA,
        6,
        "ARP target hardware address."
    );

    u8_field!(
        tun_flags,
        set_tun_flags,
        field::TUN_FLAGS,
        "Tunnel flags (`TUN_PRESENT`)."
    );
    arr_field!(
        tun_id_bytes,
        set_tun_id_bytes,
        field::TUN_ID,
        4,
        "Tunnel key, big endian."
    );
    arr_field!(
        tun_src,
        set_tun_src,
        field::TUN_SRC,
        4,
        "Outer IPv4 source."
    );
    arr_field!(
        tun_dst,
        set_tun_dst,
        field::TUN_DST,
        4,
        "Outer IPv4 destination."
    );

    /// Tunnel key (VNI) of a frame from a tunnel port.
    pub fn tun_id(&self) -> u32 {
        u32::from_be_bytes(self.tun_id_bytes())
    }

    /// Write a tunnel port's metadata, masked by `mask` (the table's lookup
    /// mask), unless the frame is IPv6 (`ipv6`: its destination address
    /// uses those bytes, and the frame then matches no tunnel-field rule).
    #[inline]
    pub fn set_tunnel(&mut self, id: u32, src: [u8; 4], dst: [u8; 4], ipv6: bool, mask: &FlowKey) {
        if ipv6 {
            return;
        }
        let m = &mask.bytes;
        self.bytes[field::TUN_FLAGS] = TUN_PRESENT & m[field::TUN_FLAGS];
        let mut v = [0u8; 12];
        v[0..4].copy_from_slice(&id.to_be_bytes());
        v[4..8].copy_from_slice(&src);
        v[8..12].copy_from_slice(&dst);
        for (i, b) in v.iter().enumerate() {
            self.bytes[field::TUN_META.start + i] = b & m[field::TUN_META.start + i];
        }
    }

    /// VLAN id of the outer tag, or `None` when untagged.
    pub fn vlan_vid(&self) -> Option<u16> {
        let t = self.vlan_tci();
        (t & VLAN_PRESENT != 0).then_some(t & 0x0fff)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn accessors_round_trip_and_layout() {
        let mut k = FlowKey::ZERO;
        k.set_in_port(0x0102);
        k.set_nw_dst4([10, 0, 0, 1]);
        k.set_tp_dst(80);
        assert_eq!(k.as_bytes()[6..8], [1, 2]);
        assert_eq!(k.as_bytes()[48..52], [10, 0, 0, 1]);
        assert_eq!(k.as_bytes()[26..28], [0, 80]);
        assert_eq!(k.in_port(), 0x0102);
        assert_eq!(core::mem::size_of::<FlowKey>(), 64);
    }

    #[test]
    fn mask_and_match() {
        let mut k = FlowKey::ZERO;
        k.set_nw_dst4([10, 1, 2, 3]);
        let mut m = FlowKey::ZERO;
        m.set_nw_dst4([255, 0, 0, 0]);
        let v = k.masked(&m);
        assert_eq!(v.nw_dst4(), [10, 0, 0, 0]);
        assert!(k.matches(&m, &v));
        k.set_nw_dst4([11, 1, 2, 3]);
        assert!(!k.matches(&m, &v));
        assert!(FlowKey::ONES.covers(&m));
        assert!(!m.covers(&FlowKey::ONES));
    }

    #[test]
    fn hash_differs_per_field_bit() {
        let base = FlowKey::ZERO.hash();
        for i in 0..KEY_LEN * 8 {
            let mut k = FlowKey::ZERO;
            k.as_bytes_mut()[i / 8] = 1 << (i % 8);
            assert_ne!(k.hash(), base, "bit {i}");
        }
    }
}
