//! Flow key extraction: walk a frame's headers through the bounds-checked
//! views of [`crate::wire`] and fill a [`FlowKey`].
//!
//! Extraction never fails and never reads past the frame: when a header is
//! truncated or malformed, the fields parsed so far stay in the key, the rest
//! stay zero, and [`Meta::malformed`] says why. The frame is still switched on
//! what parsed (at least L2 when the Ethernet header is there).

use crate::key::{FlowKey, FRAG_ANY, FRAG_LATER, VLAN_PRESENT};
use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{self, ethertype, EthernetFrame, VlanTag};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::l4::{self, TransportHeader};
use crate::wire::Error;

/// Why a frame is counted as malformed. The discriminant indexes counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Malformed {
    /// Shorter than an Ethernet header (runt).
    Runt = 0,
    /// A VLAN TPID with fewer than 4 bytes after it.
    TruncatedVlan,
    /// More than two VLAN tags (the third is left as dl_type).
    TooManyVlans,
    /// ARP shorter than 28 bytes or not Ethernet/IPv4.
    BadArp,
    /// IPv4 header or total length past the end of the frame.
    TruncatedIpv4,
    /// IPv4 version/IHL/total length inconsistent (e.g. IHL < 5).
    BadIpv4Header,
    /// IPv6 header or payload length past the end of the frame.
    TruncatedIpv6,
    /// IPv6 version wrong or extension-header chain too long.
    BadIpv6Header,
    /// Transport header truncated or TCP data offset < 5.
    BadL4,
}

impl Malformed {
    /// Number of reasons (size of a counter array).
    pub const COUNT: usize = 9;
    /// All reasons, in discriminant order.
    pub const ALL: [Malformed; Self::COUNT] = [
        Malformed::Runt,
        Malformed::TruncatedVlan,
        Malformed::TooManyVlans,
        Malformed::BadArp,
        Malformed::TruncatedIpv4,
        Malformed::BadIpv4Header,
        Malformed::TruncatedIpv6,
        Malformed::BadIpv6Header,
        Malformed::BadL4,
    ];
    /// Stable snake_case name used in stats output.
    pub fn name(self) -> &'static str {
        match self {
            Malformed::Runt => "runt",
            Malformed::TruncatedVlan => "truncated_vlan",
            Malformed::TooManyVlans => "too_many_vlans",
            Malformed::BadArp => "bad_arp",
            Malformed::TruncatedIpv4 => "truncated_ipv4",
            Malformed::BadIpv4Header => "bad_ipv4_header",
            Malformed::TruncatedIpv6 => "truncated_ipv6",
            Malformed::BadIpv6Header => "bad_ipv6_header",
            Malformed::BadL4 => "bad_l4",
        }
    }
}

/// What extraction learned besides the key: header offsets for the actions
/// and the malformed reason, if any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Offset of the L3 header (after all VLAN tags); 0 when there is none.
    pub l3: u16,
    /// Offset of the L4 header; 0 when not parsed.
    pub l4: u16,
    /// Set when the frame was truncated or malformed.
    pub malformed: Option<Malformed>,
    /// The frame is an IP fragment (first or later).
    pub frag: bool,
    /// `malformed.is_some() || frag`: the one flag the datapath tests per
    /// frame before looking at either.
    pub special: bool,
}

/// Extract the key of `frame` received on `in_port` into `key` (overwritten).
#[inline]
pub fn extract(frame: &[u8], in_port: u16, key: &mut FlowKey) -> Meta {
    if let Some(meta) = extract_ipv4_fast(frame, in_port, key, None) {
        return meta;
    }
    extract_generic(frame, in_port, key)
}

/// [`extract`], then `key &= mask` (what the datapath looks up: see
/// [`crate::table::TableVersion::lookup_mask`]). On the fast path the mask
/// is applied in registers before the key is stored.
#[inline]
pub fn extract_masked(frame: &[u8], in_port: u16, key: &mut FlowKey, mask: &FlowKey) -> Meta {
    if let Some(meta) = extract_ipv4_fast(frame, in_port, key, Some(mask)) {
        return meta;
    }
    let meta = extract_generic(frame, in_port, key);
    key.mask_in_place(mask);
    meta
}

/// The frame shape most traffic has: untagged IPv4 with a 20-byte header,
/// not a fragment, carrying UDP or TCP. Checked with a handful of byte
/// compares, then the key is built in registers from fixed offsets and
/// stored as eight words: no per-field bounds checks and no narrow stores
/// (which would stall the word-wise masking and hashing that read the key
/// next). Anything else, including every malformed frame, returns `None`
/// and takes [`extract_generic`]; both give identical keys and metadata
/// for the frames this accepts (`fast_path_equals_generic` checks it).
#[inline(always)]
fn extract_ipv4_fast(
    f: &[u8],
    in_port: u16,
    key: &mut FlowKey,
    mask: Option<&FlowKey>,
) -> Option<Meta> {
    let (_, tcp_flags) = fast_shape(f)?;
    let mut w = fast_words(f, in_port, tcp_flags);
    if let Some(m) = mask {
        for (i, v) in w.iter_mut().enumerate() {
            *v &= m.word(i);
        }
    }
    key.set_words(w);
    Some(FAST_META)
}

/// Offsets of the fast path's frame shape (Ethernet, 20-byte IPv4 header).
const FAST_L3: usize = ethernet::HEADER_LEN;
const FAST_L4: usize = FAST_L3 + 20;

/// What the fast path's frames get besides their key.
const FAST_META: Meta = Meta {
    l3: FAST_L3 as u16,
    l4: FAST_L4 as u16,
    malformed: None,
    frag: false,
    special: false,
};

/// Is `f` of the fast path's shape (see [`extract_ipv4_fast`])? Then
/// `Some((is_tcp, tcp_flags))` (flags 0 for UDP); the frame holds at least
/// the 42 bytes up to the end of a UDP header, 54 for TCP.
#[inline(always)]
fn fast_shape(f: &[u8]) -> Option<(bool, u16)> {
    const L3: usize = FAST_L3;
    const L4: usize = FAST_L4;
    // IPv4 and UDP headers; TCP reads 6 bytes more (checked below).
    let h: &[u8; L4 + 8] = f.get(..L4 + 8)?.try_into().ok()?;
    let be16 = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    // EtherType IPv4, version 4 with IHL 5 (RFC 791 §3.1).
    if be16(12) != ethertype::IPV4 || h[L3] != 0x45 {
        return None;
    }
    let total = usize::from(be16(L3 + 2));
    // Not a fragment: MF clear and offset zero (DF may be set).
    if total > f.len() - L3 || be16(L3 + 6) & 0x3fff != 0 {
        return None;
    }
    match h[L3 + 9] {
        // UDP: the 8-byte header inside the datagram (RFC 768).
        17 if total >= 20 + 8 => Some((false, 0)),
        // TCP: 20 bytes with a data offset of at least 5 (RFC 9293 §3.1)
        // that stays inside the datagram.
        6 if total >= 20 + 20
            && f[L4 + 12] >> 4 >= 5
            && usize::from(f[L4 + 12] >> 4) * 4 <= total - 20 =>
        {
            Some((true, u16::from_be_bytes([f[L4 + 12], f[L4 + 13]]) & 0x0fff))
        }
        _ => None,
    }
}

/// The eight key words (unmasked) of a frame [`fast_shape`] accepted.
#[inline(always)]
fn fast_words(f: &[u8], in_port: u16, tcp_flags: u16) -> [u64; 8] {
    const L3: usize = FAST_L3;
    const L4: usize = FAST_L4;
    let h: &[u8; L4 + 8] = f[..L4 + 8].try_into().unwrap();
    let le64 = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
    let le32 = |i: usize| u64::from(u32::from_le_bytes(h[i..i + 4].try_into().unwrap()));
    // Words of the key in the layout of `crate::key` (little-endian loads
    // of big-endian fields keep their byte order in memory).
    let port = u64::from(u16::from_le_bytes(in_port.to_be_bytes()));
    let proto = h[L3 + 9];
    [
        (le64(0) & 0xffff_ffff_ffff) | port << 48, // dl_dst, in_port
        le64(6),                                   // dl_src, dl_type
        u64::from(proto) << 32 | u64::from(h[L3 + 1]) << 40 | u64::from(h[L3 + 8]) << 48,
        le32(L4) | u64::from(u16::from_le_bytes(tcp_flags.to_be_bytes())) << 32,
        le32(L3 + 12), // nw_src
        0,
        le32(L3 + 16), // nw_dst
        0,
    ]
}

/// What [`extract_burst`] learned about a burst as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BurstInfo {
    /// Bytes of all frames.
    pub rx_bytes: u64,
    /// Bit i: frame i is malformed or a fragment (`meta[i].special`).
    pub special: u32,
    /// Bit i: frame i's masked key differs from frame i - 1's (bit 0 is
    /// set for a non-empty burst): the heads of the runs of equal keys.
    pub heads: u32,
}

/// Extract and mask the keys of a burst of at most 32 frames:
/// `keys[i]`/`meta[i]`/`lens[i]` for `frames[i]`, and which frames start
/// runs of equal keys. Same keys and metadata as [`extract_masked`] frame
/// by frame (`burst_equals_frame_by_frame` checks it).
///
/// Fast-path frames ([`extract_ipv4_fast`]'s shape) are compared with
/// their predecessor while the key is still in registers; a frame after
/// a generic one is compared afterwards, from memory, once every key is
/// stored (reading back the generic extractor's narrow stores right away
/// would stall on store-to-load forwarding). On x86-64 CPUs with
/// AVX-512 VBMI the fast path builds, masks and compares each key in one
/// 64-byte register (one masked load, one byte permutation, one store).
#[inline(always)]
pub(crate) fn extract_burst<F: crate::frame::Frame>(
    frames: &[F],
    in_port: u16,
    mask: &FlowKey,
    keys: &mut [FlowKey],
    meta: &mut [Meta],
    lens: &mut [u32],
) -> BurstInfo {
    assert!(frames.len() <= 32 && keys.len() >= frames.len());
    assert!(meta.len() >= frames.len() && lens.len() >= frames.len());
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: the CPU has the features the function is compiled for
        // (checked just above).
        return unsafe { avx512::extract_burst(frames, in_port, mask, keys, meta, lens) };
    }
    extract_burst_words(frames, in_port, mask, keys, meta, lens)
}

/// [`extract_burst`] on any CPU: fast-path keys built as eight words.
#[inline(always)]
fn extract_burst_words<F: crate::frame::Frame>(
    frames: &[F],
    in_port: u16,
    mask: &FlowKey,
    keys: &mut [FlowKey],
    meta: &mut [Meta],
    lens: &mut [u32],
) -> BurstInfo {
    let n = frames.len();
    let (keys, meta, lens) = (&mut keys[..n], &mut meta[..n], &mut lens[..n]);
    let m: [u64; 8] = core::array::from_fn(|i| mask.word(i));
    // A fast-path key is compared with the key stored before it (eight
    // word stores read back as the same words: store-to-load forwarding
    // works); where that one is not a fast-path key of this burst the
    // answer is replaced by [`finish_burst`]. Generic frames are extracted
    // after this loop, so it has no calls (nothing spilled around them).
    let (mut rx_bytes, mut heads, mut fast) = (0u64, 0u32, 0u32);
    for i in 0..n {
        let d = frames[i].data();
        lens[i] = d.len() as u32;
        rx_bytes += d.len() as u64;
        if let Some((_, flags)) = fast_shape(d) {
            let mut w = fast_words(d, in_port, flags);
            for (v, m) in w.iter_mut().zip(&m) {
                *v &= m;
            }
            if i > 0 {
                let p = &keys[i - 1];
                let diff = (0..8).fold(0, |acc, j| acc | (w[j] ^ p.word(j)));
                heads |= u32::from(diff != 0) << i;
            }
            keys[i].set_words(w);
            meta[i] = FAST_META;
            fast |= 1 << i;
        }
    }
    finish_burst(frames, in_port, mask, keys, meta, rx_bytes, heads, fast)
}

/// The end of [`extract_burst`] once the fast-path frames (`fast`, bit i:
/// frame i) are done: extract the other frames, compare each of them and
/// each frame after one of them with its predecessor (replacing what
/// `heads` says for them), and frame 0 starts a run.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn finish_burst<F: crate::frame::Frame>(
    frames: &[F],
    in_port: u16,
    mask: &FlowKey,
    keys: &mut [FlowKey],
    meta: &mut [Meta],
    rx_bytes: u64,
    heads: u32,
    fast: u32,
) -> BurstInfo {
    let n = frames.len();
    let generic = !fast & low_bits(n);
    let mut special = 0;
    let mut later = (generic | generic << 1) & low_bits(n) & !1;
    let mut heads = (heads & !later) | u32::from(n > 0);
    if generic != 0 {
        special = extract_generic_frames(frames, generic, in_port, mask, keys, meta);
        while later != 0 {
            let i = later.trailing_zeros() as usize;
            later &= later - 1;
            heads |= u32::from(keys[i] != keys[i - 1]) << i;
        }
    }
    BurstInfo {
        rx_bytes,
        special,
        heads,
    }
}

/// The low `n` bits set (`n` ≤ 32).
#[inline(always)]
pub(crate) fn low_bits(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1 << n) - 1
    }
}

/// The frames of `generic` (bit i: frame i) through [`extract_generic`],
/// masked; returns which of them are special (malformed or fragments).
#[inline(always)]
fn extract_generic_frames<F: crate::frame::Frame>(
    frames: &[F],
    mut generic: u32,
    in_port: u16,
    mask: &FlowKey,
    keys: &mut [FlowKey],
    meta: &mut [Meta],
) -> u32 {
    let mut special = 0;
    while generic != 0 {
        let i = generic.trailing_zeros() as usize;
        generic &= generic - 1;
        meta[i] = extract_generic(frames[i].data(), in_port, &mut keys[i]);
        keys[i].mask_in_place(mask);
        special |= u32::from(meta[i].special) << i;
    }
    special
}

/// The fast path in 64-byte registers (AVX-512 F, BW and VBMI).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;
    use core::arch::x86_64::*;

    /// The CPU has what [`extract_burst`] is compiled for (the standard
    /// library caches the CPUID answer: one load and test per call).
    #[inline(always)]
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
    }

    /// Key byte j comes from frame byte `SRC[j]` (fast-path shape; see the
    /// layout in [`crate::key`]); bytes outside `KEEP_UDP`/`KEEP_TCP` are 0.
    const SRC: [u8; 64] = {
        let mut s = [0u8; 64];
        let mut j = 0;
        while j < 6 {
            s[j] = j as u8; // dl_dst
            s[8 + j] = 6 + j as u8; // dl_src
            j += 1;
        }
        s[14] = 12; // dl_type
        s[15] = 13;
        s[20] = 23; // nw_proto
        s[21] = 15; // nw_tos
        s[22] = 22; // nw_ttl
        let mut j = 0;
        while j < 4 {
            s[24 + j] = 34 + j as u8; // tp_src, tp_dst
            s[32 + j] = 26 + j as u8; // nw_src
            s[48 + j] = 30 + j as u8; // nw_dst
            j += 1;
        }
        s[28] = 46; // TCP data offset / flags (masked to 12 bits below)
        s[29] = 47;
        s
    };
    /// Key bytes taken from the frame for UDP (bit j: byte j).
    const KEEP_UDP: u64 =
        0x3f | 0x3f << 8 | 0b11 << 14 | 0b111 << 20 | 0xf << 24 | 0xf << 32 | 0xf << 48;
    /// For TCP: also the flags.
    const KEEP_TCP: u64 = KEEP_UDP | 0b11 << 28;

    /// The TCP flags are the low 12 bits of key bytes 28..30.
    const TCP_FLAGS_BITS: [u8; 64] = {
        let mut b = [0xff; 64];
        b[28] = 0x0f;
        b
    };

    /// [`super::extract_burst`] with the fast path in one register per key.
    /// Callers check [`available`] first.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    pub(super) fn extract_burst<F: crate::frame::Frame>(
        frames: &[F],
        in_port: u16,
        mask: &FlowKey,
        keys: &mut [FlowKey],
        meta: &mut [Meta],
        lens: &mut [u32],
    ) -> BurstInfo {
        let n = frames.len();
        let (keys, meta, lens) = (&mut keys[..n], &mut meta[..n], &mut lens[..n]);
        let mut port = FlowKey::ZERO;
        port.set_in_port(in_port);
        // SAFETY: `FlowKey` is 64 bytes aligned to 64 (aligned 512-bit
        // loads); the constants are 64-byte arrays (unaligned loads).
        let (m, src, flags_bits, port) = unsafe {
            (
                _mm512_load_si512(mask.as_bytes().as_ptr().cast()),
                _mm512_loadu_si512(SRC.as_ptr().cast()),
                _mm512_loadu_si512(TCP_FLAGS_BITS.as_ptr().cast()),
                _mm512_load_si512(port.as_bytes().as_ptr().cast()),
            )
        };
        let m_tcp = _mm512_and_si512(m, flags_bits);
        let port = _mm512_and_si512(m, port);
        // Each fast-path key is compared with the previous one in its
        // register (see `extract_burst_words` for the rest). No calls in
        // this loop: the constants and the previous key stay in registers
        // (a call would spill every vector register).
        let mut prev = _mm512_setzero_si512();
        let (mut rx_bytes, mut heads, mut fast) = (0u64, 0u32, 0u32);
        for i in 0..n {
            let d = frames[i].data();
            lens[i] = d.len() as u32;
            rx_bytes += d.len() as u64;
            if let Some((tcp, _)) = fast_shape(d) {
                let take = _bzhi_u64(!0, d.len().min(64) as u32);
                // SAFETY: a masked load reads (and can fault on) only the
                // bytes its mask selects: the first min(len, 64) of the
                // frame, all inside `d`.
                let v = unsafe { _mm512_maskz_loadu_epi8(take, d.as_ptr().cast()) };
                let k =
                    _mm512_maskz_permutexvar_epi8(if tcp { KEEP_TCP } else { KEEP_UDP }, src, v);
                let k = _mm512_or_si512(_mm512_and_si512(k, if tcp { m_tcp } else { m }), port);
                heads |= u32::from(_mm512_cmpneq_epi64_mask(k, prev) != 0) << i;
                // SAFETY: aligned 64-byte store into a key (see above).
                unsafe { _mm512_store_si512(keys[i].as_bytes_mut().as_mut_ptr().cast(), k) };
                meta[i] = FAST_META;
                prev = k;
                fast |= 1 << i;
            }
        }
        finish_burst(frames, in_port, mask, keys, meta, rx_bytes, heads, fast)
    }
}

/// The general extractor: every header shape, every malformation.
#[inline]
fn extract_generic(frame: &[u8], in_port: u16, key: &mut FlowKey) -> Meta {
    *key = FlowKey::ZERO;
    key.set_in_port(in_port);
    let mut meta = Meta::default();
    if let Err(m) = extract_inner(frame, key, &mut meta) {
        meta.malformed = Some(m);
    }
    meta.special = meta.malformed.is_some() || meta.frag;
    meta
}

#[inline]
fn extract_inner(frame: &[u8], key: &mut FlowKey, meta: &mut Meta) -> Result<(), Malformed> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Malformed::Runt)?;
    key.set_dl_dst(eth.dst_addr());
    key.set_dl_src(eth.src_addr());
    let mut ty = eth.ethertype();
    let mut off = ethernet::HEADER_LEN;
    key.set_dl_type(ty);
    // Up to two tags: outer (vlan_tci) and inner (vlan_tci2).
    for n in 0..3 {
        if !ethernet::is_vlan_tpid(ty) {
            break;
        }
        if n == 2 {
            return Err(Malformed::TooManyVlans);
        }
        let tag = VlanTag::new_checked(&frame[off..]).map_err(|_| Malformed::TruncatedVlan)?;
        let tci = tag.tci() | VLAN_PRESENT;
        if n == 0 {
            key.set_vlan_tci(tci);
        } else {
            key.set_vlan_tci2(tci);
        }
        ty = tag.ethertype();
        off += ethernet::VLAN_TAG_LEN;
        key.set_dl_type(ty);
    }
    if ty < ethertype::MIN_ETHERTYPE {
        key.set_dl_type(ethertype::NOT_ETH_TYPE);
        return Ok(());
    }
    let l3 = &frame[off..];
    match ty {
        ethertype::ARP => {
            meta.l3 = off as u16;
            let arp = ArpPacket::new_checked(l3).map_err(|_| Malformed::BadArp)?;
            // OpenFlow: nw_proto carries the ARP opcode when it fits in 8
            // bits; OVS leaves it 0 for larger opcodes.
            let op = arp.operation();
            key.set_nw_proto(if op <= 0xff { op as u8 } else { 0 });
            key.set_nw_src4(arp.spa());
            key.set_nw_dst4(arp.tpa());
            key.set_arp_sha(arp.sha());
            key.set_arp_tha(arp.tha());
            Ok(())
        }
        ethertype::IPV4 => {
            meta.l3 = off as u16;
            let ip = Ipv4Packet::new_checked(l3).map_err(|e| match e {
                Error::Truncated => Malformed::TruncatedIpv4,
                Error::Malformed => Malformed::BadIpv4Header,
            })?;
            key.set_nw_src4(ip.src_addr());
            key.set_nw_dst4(ip.dst_addr());
            key.set_nw_proto(ip.protocol());
            key.set_nw_tos(ip.tos());
            key.set_nw_ttl(ip.ttl());
            if ip.is_fragment() {
                let later = ip.frag_offset() != 0;
                key.set_nw_frag(FRAG_ANY | if later { FRAG_LATER } else { 0 });
                meta.frag = true;
                if later {
                    return Ok(());
                }
            }
            let l4_off = off + ip.header_len();
            transport(ip.payload(), ip.protocol(), key)?;
            meta.l4 = l4_off as u16;
            Ok(())
        }
        ethertype::IPV6 => {
            meta.l3 = off as u16;
            let ip = Ipv6Packet::new_checked(l3).map_err(|e| match e {
                Error::Truncated => Malformed::TruncatedIpv6,
                Error::Malformed => Malformed::BadIpv6Header,
            })?;
            key.set_nw_src6(ip.src_addr());
            key.set_nw_dst6(ip.dst_addr());
            key.set_nw_tos(ip.traffic_class());
            key.set_nw_ttl(ip.hop_limit());
            key.set_nw_proto(ip.next_header());
            let up =
                ipv6::skip_extension_headers(ip.payload(), ip.next_header()).map_err(
                    |e| match e {
                        Error::Truncated => Malformed::TruncatedIpv6,
                        Error::Malformed => Malformed::BadIpv6Header,
                    },
                )?;
            key.set_nw_proto(up.protocol);
            if up.fragment {
                key.set_nw_frag(FRAG_ANY | if up.later_fragment { FRAG_LATER } else { 0 });
                meta.frag = true;
                if up.later_fragment {
                    // As OVS: a later fragment's protocol is the Fragment
                    // header itself (44), not what follows it.
                    key.set_nw_proto(ipv6::next_header::FRAGMENT);
                    return Ok(());
                }
            }
            transport(&ip.payload()[up.offset..], up.protocol, key)?;
            meta.l4 = (off + ipv6::HEADER_LEN + up.offset) as u16;
            Ok(())
        }
        _ => Ok(()),
    }
}

#[inline(always)]
fn transport(payload: &[u8], proto: u8, key: &mut FlowKey) -> Result<(), Malformed> {
    if l4::min_header_len(proto).is_none() {
        return Ok(());
    }
    // As OVS: a TCP data offset beyond the segment leaves the header
    // unparsed (no ports, no flags).
    if proto == l4::protocol::TCP
        && payload
            .get(12)
            .is_some_and(|b| usize::from(b >> 4) * 4 > payload.len())
    {
        return Err(Malformed::BadL4);
    }
    let t = TransportHeader::new_checked(payload, proto).map_err(|_| Malformed::BadL4)?;
    key.set_tp_src(t.src());
    key.set_tp_dst(t.dst());
    key.set_tcp_flags(t.tcp_flags());
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn parse_tcp_ipv4() {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 0x12, 64);
        let mut k = FlowKey::ZERO;
        let m = extract(&f, 3, &mut k);
        assert_eq!(
            m,
            Meta {
                l3: 14,
                l4: 34,
                malformed: None,
                frag: false,
                special: false,
            }
        );
        assert_eq!(k.in_port(), 3);
        assert_eq!(k.dl_src(), MAC_A);
        assert_eq!(k.dl_dst(), MAC_B);
        assert_eq!(k.dl_type(), 0x0800);
        assert_eq!(k.vlan_tci(), 0);
        assert_eq!(k.nw_src4(), [10, 0, 0, 1]);
        assert_eq!(k.nw_dst4(), [10, 0, 0, 2]);
        assert_eq!(k.nw_proto(), 6);
        assert_eq!(k.nw_ttl(), 64);
        assert_eq!((k.tp_src(), k.tp_dst(), k.tcp_flags()), (1234, 80, 0x12));
        assert_eq!(k.nw_frag(), 0);
    }

    #[test]
    fn parse_vlan_qinq_dscp_udp() {
        let f = with_vlan(
            &with_vlan(&udp4([1, 2, 3, 4], [5, 6, 7, 8], 53, 5353), 0x8100, 0x2064),
            0x88a8,
            0x0005,
        );
        let mut k = FlowKey::ZERO;
        let m = extract(&f, 1, &mut k);
        assert_eq!(m.malformed, None);
        assert_eq!(m.l3, 22);
        assert_eq!(k.vlan_tci(), 0x0005 | VLAN_PRESENT);
        assert_eq!(k.vlan_tci2(), 0x2064 | VLAN_PRESENT);
        assert_eq!(k.vlan_vid(), Some(5));
        assert_eq!(k.dl_type(), 0x0800);
        assert_eq!((k.nw_proto(), k.tp_src(), k.tp_dst()), (17, 53, 5353));
    }

    #[test]
    fn parse_ecn_dscp_sctp_icmp() {
        let mut f = ipv4_frame(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            132,
            &[0, 9, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        set_tos(&mut f, (46 << 2) | 1);
        let mut k = FlowKey::ZERO;
        extract(&f, 1, &mut k);
        assert_eq!(
            (k.nw_tos(), k.nw_proto(), k.tp_src(), k.tp_dst()),
            ((46 << 2) | 1, 132, 9, 10)
        );
        let f = ipv4_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, &[3, 1, 0, 0, 0, 0, 0, 0]);
        extract(&f, 1, &mut k);
        assert_eq!((k.nw_proto(), k.tp_src(), k.tp_dst()), (1, 3, 1));
    }

    #[test]
    fn parse_arp() {
        let f = arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]);
        let mut k = FlowKey::ZERO;
        let m = extract(&f, 1, &mut k);
        assert_eq!(m.malformed, None);
        assert_eq!(k.dl_type(), 0x0806);
        assert_eq!(k.nw_proto(), 1);
        assert_eq!(k.nw_src4(), [10, 0, 0, 1]);
        assert_eq!(k.nw_dst4(), [10, 0, 0, 2]);
        assert_eq!(k.arp_sha(), MAC_A);
        assert_eq!(k.arp_tha(), [0; 6]);
    }

    #[test]
    fn parse_ipv6_icmpv6_and_fragment() {
        let f = ipv6_frame(58, &[135, 0, 0, 0, 0, 0, 0, 0]);
        let mut k = FlowKey::ZERO;
        let m = extract(&f, 1, &mut k);
        assert_eq!(
            m,
            Meta {
                l3: 14,
                l4: 54,
                malformed: None,
                frag: false,
                special: false,
            }
        );
        assert_eq!(k.dl_type(), 0x86dd);
        assert_eq!(k.nw_src6()[15], 1);
        assert_eq!(k.nw_dst6()[15], 2);
        assert_eq!(
            (k.nw_proto(), k.tp_src(), k.tp_dst(), k.nw_ttl()),
            (58, 135, 0, 64)
        );
        // fragment header, offset 0, then UDP
        let f = ipv6_frame(44, &[17, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 2, 0, 8, 0, 0]);
        extract(&f, 1, &mut k);
        assert_eq!(
            (k.nw_proto(), k.nw_frag(), k.tp_src(), k.tp_dst()),
            (17, FRAG_ANY, 1, 2)
        );
    }

    /// As switch/README.md says ("IP fragments"): extraction keeps the
    /// first fragment's L4 fields; the datapath's `FragMode` then zeroes
    /// the ports (`normal`, the default) or keeps them (`nx-match`).
    #[test]
    fn ipv4_first_fragment_has_ports() {
        let mut f = udp4([1, 1, 1, 1], [2, 2, 2, 2], 7, 9);
        f[14 + 6] = 0x20; // MF, offset 0
        f[14 + 7] = 0x00;
        fix_ip_csum(&mut f);
        let mut k = FlowKey::ZERO;
        let m = extract(&f, 1, &mut k);
        assert_eq!(m.malformed, None);
        assert_eq!(k.nw_frag(), FRAG_ANY);
        assert_eq!((k.nw_proto(), k.tp_src(), k.tp_dst()), (17, 7, 9));
    }

    #[test]
    fn ipv4_later_fragment_has_no_ports() {
        let mut f = udp4([1, 1, 1, 1], [2, 2, 2, 2], 7, 9);
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // offset 16*8
        fix_ip_csum(&mut f);
        let mut k = FlowKey::ZERO;
        let m = extract(&f, 1, &mut k);
        assert_eq!(m.malformed, None);
        assert_eq!(k.nw_frag(), FRAG_ANY | FRAG_LATER);
        assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
    }

    #[test]
    fn llc_frame() {
        let mut f = eth(MAC_B, MAC_A, 0x0040);
        f.extend_from_slice(&[0x42, 0x42, 0x03]);
        let mut k = FlowKey::ZERO;
        assert_eq!(extract(&f, 1, &mut k).malformed, None);
        assert_eq!(k.dl_type(), 0x05ff);
    }

    #[test]
    fn malformed_frames_keep_l2() {
        let good = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0, 64);
        let mut k = FlowKey::ZERO;
        // runt
        assert_eq!(
            extract(&good[..13], 4, &mut k).malformed,
            Some(Malformed::Runt)
        );
        assert_eq!(k.in_port(), 4);
        assert_eq!(k.dl_src(), [0; 6]);
        // VLAN with nothing after it
        let v = with_vlan(&good, 0x8100, 10);
        assert_eq!(
            extract(&v[..16], 1, &mut k).malformed,
            Some(Malformed::TruncatedVlan)
        );
        assert_eq!(k.dl_src(), MAC_A);
        assert_eq!(k.dl_type(), 0x8100);
        // truncated IPv4 header
        assert_eq!(
            extract(&good[..30], 1, &mut k).malformed,
            Some(Malformed::TruncatedIpv4)
        );
        assert_eq!((k.dl_type(), k.nw_src4()), (0x0800, [0; 4]));
        // bad IHL
        let mut b = good.clone();
        b[14] = 0x43;
        assert_eq!(
            extract(&b, 1, &mut k).malformed,
            Some(Malformed::BadIpv4Header)
        );
        assert_eq!(k.dl_dst(), MAC_B);
        // total length beyond frame
        let mut b = good.clone();
        b[16] = 0x05;
        assert_eq!(
            extract(&b, 1, &mut k).malformed,
            Some(Malformed::TruncatedIpv4)
        );
        // truncated TCP: L3 fields kept, ports zero
        let mut b = good[..44].to_vec();
        b[17] = 30; // total length 30 -> 10 bytes of TCP
        fix_ip_csum(&mut b);
        assert_eq!(extract(&b, 1, &mut k).malformed, Some(Malformed::BadL4));
        assert_eq!((k.nw_dst4(), k.tp_dst()), ([10, 0, 0, 2], 0));
        // three tags
        let t = with_vlan(
            &with_vlan(&with_vlan(&good, 0x8100, 1), 0x8100, 2),
            0x88a8,
            3,
        );
        assert_eq!(
            extract(&t, 1, &mut k).malformed,
            Some(Malformed::TooManyVlans)
        );
        // ARP truncated
        let a = arp_frame(1, [1, 1, 1, 1], [2, 2, 2, 2]);
        assert_eq!(
            extract(&a[..40], 1, &mut k).malformed,
            Some(Malformed::BadArp)
        );
        // IPv6 truncated
        let s = ipv6_frame(17, &[0; 8]);
        assert_eq!(
            extract(&s[..50], 1, &mut k).malformed,
            Some(Malformed::TruncatedIpv6)
        );
    }

    /// The fast path accepts the common shapes and, for every frame it
    /// accepts, gives exactly what the generic extractor gives: valid UDP
    /// and TCP frames, then each with random bytes changed and random
    /// truncations.
    /// Where the OVS differential found vswitch parsing differently, it now
    /// parses as OVS does.
    #[test]
    fn parsed_as_ovs_parses() {
        let mut k = FlowKey::ZERO;
        // IPv6 later fragment: nw_proto is the Fragment header (44).
        let frag = [17, 0, 0x00, 0x11, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
        let m = extract(&ipv6_frame(44, &frag), 1, &mut k);
        assert!(m.frag);
        assert_eq!((k.nw_proto(), k.nw_frag()), (44, FRAG_ANY | FRAG_LATER));
        // First fragment: the protocol after the Fragment header.
        let mut first = vec![17, 0, 0x00, 0x01, 0, 0, 0, 1];
        first.extend_from_slice(&[0, 7, 0, 9, 0, 8, 0, 0]);
        extract(&ipv6_frame(44, &first), 1, &mut k);
        assert_eq!((k.nw_proto(), k.tp_dst()), (17, 9));
        // 0x0800 with a version nibble of 6: parsed as IPv4.
        let mut v6 = udp4([10, 0, 0, 1], [10, 0, 0, 2], 53, 99);
        v6[14] = 0x65;
        let m = extract(&v6, 1, &mut k);
        assert_eq!(m.malformed, None);
        assert_eq!((k.nw_src4(), k.tp_src()), ([10, 0, 0, 1], 53));
        // TCP data offset beyond the segment: no ports, counted bad_l4,
        // on the fast path too.
        let mut t = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 0x10, 64);
        t[14 + 20 + 12] = 0xf0;
        assert!(extract_ipv4_fast(&t, 1, &mut k, None).is_none());
        let m = extract(&t, 1, &mut k);
        assert_eq!(m.malformed, Some(Malformed::BadL4));
        assert_eq!((k.tp_src(), k.tp_dst(), k.tcp_flags()), (0, 0, 0));
        // ARP opcodes above 255: nw_proto 0.
        extract(&arp_frame(0x0101, [1; 4], [2; 4]), 1, &mut k);
        assert_eq!(k.nw_proto(), 0);
        extract(&arp_frame(2, [1; 4], [2; 4]), 1, &mut k);
        assert_eq!(k.nw_proto(), 2);
        // TPID 0x9100 is an EtherType, not a tag.
        let q = with_vlan(&udp4([1; 4], [2; 4], 1, 2), 0x9100, 5);
        extract(&q, 1, &mut k);
        assert_eq!((k.dl_type(), k.vlan_tci()), (0x9100, 0));
    }

    #[test]
    fn fast_path_equals_generic() {
        let mut k = FlowKey::ZERO;
        let u = udp4([10, 1, 2, 3], [192, 168, 9, 8], 4242, 53);
        let t = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 0x1d2, 7);
        assert!(extract_ipv4_fast(&u, 1, &mut k, None).is_some());
        assert!(extract_ipv4_fast(&t, 1, &mut k, None).is_some());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut accepted, mut rejected) = (0, 0);
        for i in 0..50_000 {
            let mut f = if i % 2 == 0 { u.clone() } else { t.clone() };
            // Change up to three bytes, mostly in the headers, and pad or
            // truncate sometimes.
            for _ in 0..next() % 4 {
                let at = (next() % 58) as usize % f.len();
                f[at] = next() as u8;
            }
            match next() % 8 {
                0 => f.truncate((next() % 70) as usize),
                1 => f.extend_from_slice(&[0xee; 9]),
                _ => {}
            }
            let port = next() as u16;
            // Masked extraction = extraction, then the mask (fast or not).
            let mut mask = [0u8; 64];
            for b in mask.iter_mut() {
                *b = next() as u8;
            }
            let mask = FlowKey::from_bytes(mask);
            let (mut plain, mut masked) = (FlowKey::ZERO, FlowKey::ZERO);
            let mp = extract(&f, port, &mut plain);
            assert_eq!(extract_masked(&f, port, &mut masked, &mask), mp);
            assert_eq!(masked, plain.masked(&mask));
            let mut fast = FlowKey::from_bytes([0xa5; 64]);
            let Some(m) = extract_ipv4_fast(&f, port, &mut fast, None) else {
                rejected += 1;
                continue;
            };
            accepted += 1;
            let mut slow = FlowKey::from_bytes([0x5a; 64]);
            let ms = extract_generic(&f, port, &mut slow);
            assert_eq!(m, ms, "meta of {f:02x?}");
            assert_eq!(fast, slow, "key of {f:02x?}");
        }
        assert!(
            accepted > 10_000 && rejected > 10_000,
            "{accepted} {rejected}"
        );
    }

    type BurstFn<'a> = dyn Fn(&mut [FlowKey], &mut [Meta], &mut [u32]) -> BurstInfo + 'a;

    /// The burst extractor (every implementation this CPU runs) gives each
    /// frame what [`extract_masked`] gives it, and marks exactly the frames
    /// whose masked key differs from the previous frame's.
    #[test]
    fn burst_equals_frame_by_frame() {
        use crate::frame::{Frame, VecFrame};
        let mut x = 0x51a7_c0de_d00d_f00du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = [
            udp4([10, 1, 2, 3], [192, 168, 9, 8], 4242, 53),
            udp4([10, 1, 2, 4], [192, 168, 9, 8], 4242, 53),
            tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 0x1d2, 7),
            tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1235, 80, 0x012, 7),
            with_vlan(&udp4([10, 1, 2, 3], [192, 168, 9, 8], 4242, 53), 0x8100, 5),
            ipv6_frame(17, &[0, 1, 0, 2, 0, 8, 0, 0]),
            arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]),
        ];
        let masks = [FlowKey::ONES, FlowKey::ZERO, {
            // in_port, dl_type and a /28 on nw_dst: the benchmark's.
            let mut m = FlowKey::ZERO;
            m.set_in_port(0xffff);
            m.set_dl_type(0xffff);
            m.set_nw_dst4([255, 255, 255, 240]);
            m
        }];
        let (mut fast_runs, mut checked) = (0, 0);
        for round in 0..3000 {
            let n = (next() % 33) as usize;
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                let mut f = match next() % 4 {
                    // Runs: the same frame as the one before.
                    0 | 1 if !frames.is_empty() => {
                        let prev: &VecFrame = frames.last().unwrap();
                        prev.data().to_vec()
                    }
                    _ => base[(next() % base.len() as u64) as usize].clone(),
                };
                match next() % 10 {
                    0 if !f.is_empty() => {
                        let at = (next() % 64) as usize % f.len();
                        f[at] = next() as u8;
                    }
                    1 => f.truncate((next() % 70) as usize),
                    2 => f.resize(f.len() + (next() % 40) as usize, 0xee),
                    3 if f.len() > 15 => f[15] = next() as u8, // TOS: masked out or not
                    _ => {}
                }
                frames.push(VecFrame::new(&f));
            }
            let port = if round % 2 == 0 { 3 } else { next() as u16 };
            let mask = if round % 4 == 3 {
                let mut m = [0u8; 64];
                for b in m.iter_mut() {
                    *b = next() as u8;
                }
                FlowKey::from_bytes(m)
            } else {
                masks[round % 3]
            };
            let mut want = vec![FlowKey::ZERO; n];
            let mut want_meta = vec![Meta::default(); n];
            let (mut want_heads, mut want_special, mut want_bytes) = (0u32, 0u32, 0u64);
            for i in 0..n {
                let d = frames[i].data();
                want_meta[i] = extract_masked(d, port, &mut want[i], &mask);
                want_special |= u32::from(want_meta[i].special) << i;
                want_heads |= u32::from(i == 0 || want[i] != want[i - 1]) << i;
                want_bytes += d.len() as u64;
                fast_runs +=
                    usize::from(i > 0 && want[i] == want[i - 1] && fast_shape(d).is_some());
            }
            let mut run = |imp: &str, f: &BurstFn| {
                let mut keys = [FlowKey::from_bytes([0x5a; 64]); 32];
                let mut meta = [Meta::default(); 32];
                let mut lens = [0u32; 32];
                let info = f(&mut keys, &mut meta, &mut lens);
                assert_eq!(
                    info,
                    BurstInfo {
                        rx_bytes: want_bytes,
                        special: want_special,
                        heads: want_heads
                    },
                    "{imp}: burst {round}"
                );
                for i in 0..n {
                    assert_eq!(keys[i], want[i], "{imp}: burst {round} frame {i}");
                    assert_eq!(meta[i], want_meta[i], "{imp}: burst {round} frame {i}");
                    assert_eq!(lens[i] as usize, frames[i].data().len());
                }
                checked += 1;
            };
            run("words", &|k, m, l| {
                extract_burst_words(&frames, port, &mask, k, m, l)
            });
            run("dispatch", &|k, m, l| {
                extract_burst(&frames, port, &mask, k, m, l)
            });
            #[cfg(target_arch = "x86_64")]
            if avx512::available() {
                // SAFETY: the CPU has the features (checked).
                run("avx512", &|k, m, l| unsafe {
                    avx512::extract_burst(&frames, port, &mask, k, m, l)
                });
            }
        }
        assert!(
            fast_runs > 10_000 && checked >= 6000,
            "{fast_runs} {checked}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic xorshift garbage plus every prefix of valid frames.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut k = FlowKey::ZERO;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 128) as usize;
            let mut buf = vec![0u8; len];
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (x.rotate_left(i as u32 * 7) >> 3) as u8;
            }
            // steer some frames into the interesting ethertypes
            if len > 14 {
                let t: [u16; 5] = [0x0800, 0x86dd, 0x8100, 0x0806, 0x88a8];
                buf[12..14].copy_from_slice(&t[(x >> 40) as usize % 5].to_be_bytes());
                if len > 15 && buf[12] == 0x08 && buf[13] == 0 {
                    buf[14] = 0x40 | (buf[14] & 0x0f);
                }
            }
            extract(&buf, 1, &mut k);
        }
        for f in [
            tcp4([1; 4], [2; 4], 1, 2, 2, 3),
            ipv6_frame(6, &[0; 20]),
            arp_frame(2, [1; 4], [2; 4]),
        ] {
            for n in 0..=f.len() {
                extract(&f[..n], 1, &mut k);
            }
        }
    }
}
