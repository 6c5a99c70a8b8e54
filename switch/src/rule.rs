//! Rules in `ovs-ofctl add-flow` syntax: parsing with clear errors, and a
//! canonical `Display` that parses back to the same rule.
//!
//! ```text
//! priority=100,in_port=1,ip,nw_dst=10.0.0.0/8,tcp,tp_dst=80,actions=output:2
//! ```
//! The full syntax is documented in `switch/README.md`.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::action::{
    fmt_instructions, fmt_mac, parse_instructions, parse_mac, parse_uint, Action, Instructions,
    L4Proto, MAX_TABLE,
};
use crate::ct::CtKey;
use crate::key::{field as kf, FlowKey, FRAG_ANY, FRAG_LATER, TUN_PRESENT, VLAN_PRESENT};
use crate::regs::{RegField, Regs};
use crate::verdict::MAX_PORTS;
use crate::wire::ethernet::ethertype;
use crate::wire::l4::protocol;

/// Default rule priority (as in OVS).
pub const DEFAULT_PRIORITY: u16 = 32768;

/// A wildcarded match: a key matches when `key & mask == value`, the
/// pipeline metadata `meta & meta_mask == meta_value` and the ct fields
/// `ct & ct_mask == ct_value` (see [`crate::ct::key`]; a frame that met no
/// `ct` action has ct fields 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Match {
    /// Expected values (already masked).
    pub value: FlowKey,
    /// Bits that matter.
    pub mask: FlowKey,
    /// Expected OpenFlow `metadata` (already masked).
    pub meta_value: u64,
    /// Metadata bits that matter (0: metadata not matched).
    pub meta_mask: u64,
    /// Expected ct fields (already masked).
    pub ct_value: CtKey,
    /// ct field bits that matter (zero: no ct field matched).
    pub ct_mask: CtKey,
    /// Expected registers `reg0..15` (already masked; see [`crate::regs`]).
    pub reg_value: Regs,
    /// Register bits that matter (zero: no register matched).
    pub reg_mask: Regs,
}

impl Match {
    /// Matches everything.
    pub const ANY: Match = Match {
        value: FlowKey::ZERO,
        mask: FlowKey::ZERO,
        meta_value: 0,
        meta_mask: 0,
        ct_value: CtKey::ZERO,
        ct_mask: CtKey::ZERO,
        reg_value: Regs::ZERO,
        reg_mask: Regs::ZERO,
    };

    /// True when `key` (with metadata 0, as at the pipeline's start) matches.
    #[inline]
    pub fn matches(&self, key: &FlowKey) -> bool {
        self.matches_meta(key, 0)
    }

    /// True when `key` with pipeline metadata `meta` (and no ct fields)
    /// matches.
    #[inline]
    pub fn matches_meta(&self, key: &FlowKey, meta: u64) -> bool {
        key.matches(&self.mask, &self.value)
            && meta & self.meta_mask == self.meta_value
            && self.ct_value.is_zero()
            && self.reg_value.is_zero()
    }

    /// True when `key` with metadata `meta` and ct fields `ct` matches.
    #[inline]
    pub fn matches_ct(&self, key: &FlowKey, meta: u64, ct: &CtKey) -> bool {
        self.matches_regs(key, meta, &Regs::ZERO, ct)
    }

    /// True when `key` with metadata `meta`, registers `regs` and ct
    /// fields `ct` matches.
    #[inline]
    pub fn matches_regs(&self, key: &FlowKey, meta: u64, regs: &Regs, ct: &CtKey) -> bool {
        key.matches(&self.mask, &self.value)
            && meta & self.meta_mask == self.meta_value
            && ct.matches(&self.ct_mask, &self.ct_value)
            && regs.matches(&self.reg_mask, &self.reg_value)
    }

    /// True when the match reads a register.
    #[inline]
    pub fn has_regs(&self) -> bool {
        !self.reg_mask.is_zero()
    }

    /// True when the match reads a ct field.
    #[inline]
    pub fn has_ct(&self) -> bool {
        !self.ct_mask.is_zero()
    }

    /// True when every packet matching `self` also matches `filter`
    /// (non-strict `del-flows` semantics: `self` is at least as specific).
    pub fn within(&self, filter: &Match) -> bool {
        self.mask.covers(&filter.mask)
            && self.value.masked(&filter.mask) == filter.value
            && self.meta_mask & filter.meta_mask == filter.meta_mask
            && self.meta_value & filter.meta_mask == filter.meta_value
            && self.ct_mask.covers(&filter.ct_mask)
            && self.ct_value.masked(&filter.ct_mask) == filter.ct_value
            && self.reg_mask.covers(&filter.reg_mask)
            && self.reg_value.masked(&filter.reg_mask) == filter.reg_value
    }

    /// True when some packet matches both (OpenFlow `check_overlap`).
    pub fn overlaps(&self, other: &Match) -> bool {
        let both = self.mask.masked(&other.mask);
        let ct_both = self.ct_mask.masked(&other.ct_mask);
        self.value.masked(&both) == other.value.masked(&both)
            && (self.meta_value ^ other.meta_value) & self.meta_mask & other.meta_mask == 0
            && self.ct_value.masked(&ct_both) == other.ct_value.masked(&ct_both)
            && {
                let reg_both = self.reg_mask.masked(&other.reg_mask);
                self.reg_value.masked(&reg_both) == other.reg_value.masked(&reg_both)
            }
    }

    /// Set `value/mask` on register `reg` (`reg0..15`); errors when an
    /// earlier field set overlapping bits to a different value. For the
    /// OpenFlow layer's NXM_NX_REG fields as for the rule parser.
    pub fn set_reg(&mut self, reg: usize, v: u32, m: u32, name: &str) -> Result<(), String> {
        let (old_v, old_m) = (self.reg_value.0[reg], self.reg_mask.0[reg]);
        if (old_v ^ v) & old_m & m != 0 {
            return Err(format!(
                "`{name}` conflicts with an earlier field of this match"
            ));
        }
        self.reg_mask.0[reg] = old_m | m;
        self.reg_value.0[reg] = (old_v & old_m) | (v & m);
        Ok(())
    }

    /// Set `value/mask` on a byte range of the ct fields (see
    /// [`crate::ct::key::field`]); errors when an earlier field set
    /// overlapping bits to a different value. For the OpenFlow layer's
    /// NXM ct fields as for the rule parser.
    pub fn set_ct(
        &mut self,
        r: core::ops::Range<usize>,
        v: &[u8],
        m: &[u8],
        name: &str,
    ) -> Result<(), String> {
        merge_masked(
            self.ct_value.as_bytes_mut(),
            self.ct_mask.as_bytes_mut(),
            r,
            v,
            m,
            name,
        )
    }

    /// Set `value/mask` on a byte range; errors when an earlier field set
    /// overlapping bits to a different value.
    fn set(
        &mut self,
        r: core::ops::Range<usize>,
        v: &[u8],
        m: &[u8],
        name: &str,
    ) -> Result<(), String> {
        merge_masked(
            self.value.as_bytes_mut(),
            self.mask.as_bytes_mut(),
            r,
            v,
            m,
            name,
        )
    }

    fn exact16(&self, r: core::ops::Range<usize>) -> Option<u16> {
        let m = &self.mask.as_bytes()[r.clone()];
        (m == [0xff, 0xff])
            .then(|| u16::from_be_bytes(self.value.as_bytes()[r].try_into().unwrap()))
    }

    fn dl_type(&self) -> Option<u16> {
        self.exact16(kf::DL_TYPE)
    }

    fn nw_proto(&self) -> Option<u8> {
        (self.mask.nw_proto() == 0xff).then(|| self.value.nw_proto())
    }
}

/// Adds `v/m` to the bytes `r` of a match's `value`/`mask` pair; errors,
/// naming `name`, when an earlier field set overlapping bits to a
/// different value (a prerequisite or a repeated field that disagrees).
fn merge_masked(
    value: &mut [u8],
    mask: &mut [u8],
    r: core::ops::Range<usize>,
    v: &[u8],
    m: &[u8],
    name: &str,
) -> Result<(), String> {
    for (i, idx) in r.enumerate() {
        let (old_m, old_v) = (mask[idx], value[idx]);
        let both = old_m & m[i];
        if (old_v & both) != (v[i] & both) {
            return Err(format!(
                "`{name}` conflicts with an earlier field of this match"
            ));
        }
        mask[idx] = old_m | m[i];
        value[idx] = (old_v & old_m) | (v[i] & m[i]);
    }
    Ok(())
}

/// A rule as written by the user: table, cookie, match, priority,
/// timeouts, actions and OpenFlow 1.3 instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Table (0..=[`MAX_TABLE`]).
    pub table: u8,
    /// Opaque controller-chosen identifier (`cookie=0x..`).
    pub cookie: u64,
    /// Send an OpenFlow flow_removed message when the rule goes
    /// (`send_flow_rem`); kept for the OpenFlow layer, unused here.
    pub send_flow_rem: bool,
    /// Higher wins; equal priorities on overlapping matches are resolved by
    /// insertion order (first installed wins), which OpenFlow leaves undefined.
    pub priority: u16,
    /// The match.
    pub matcher: Match,
    /// Remove after this many seconds without traffic (0 = never).
    pub idle_timeout: u16,
    /// Remove this many seconds after installation (0 = never).
    pub hard_timeout: u16,
    /// Apply-actions list (executed in order when the rule is hit).
    pub actions: Vec<Action>,
    /// The other instructions (action set, metadata, goto_table).
    pub instructions: Instructions,
}

impl RuleSpec {
    /// A table-0 rule with default priority and no timeouts, cookie or
    /// instructions.
    pub fn new(matcher: Match, actions: Vec<Action>) -> RuleSpec {
        RuleSpec {
            table: 0,
            cookie: 0,
            send_flow_rem: false,
            priority: DEFAULT_PRIORITY,
            matcher,
            idle_timeout: 0,
            hard_timeout: 0,
            actions,
            instructions: Instructions::default(),
        }
    }

    /// Every group the rule references (apply-actions and write_actions).
    pub fn groups(&self) -> impl Iterator<Item = u32> + '_ {
        self.actions
            .iter()
            .chain(self.instructions.write_actions.iter().flatten())
            .filter_map(|a| match a {
                Action::Group(g) => Some(*g),
                _ => None,
            })
    }

    /// True when the rule outputs to `port` (`output:N` in its actions or
    /// action set): OpenFlow's `out_port` filter.
    pub fn outputs_to(&self, port: u16) -> bool {
        self.actions
            .iter()
            .chain(self.instructions.write_actions.iter().flatten())
            .any(|a| *a == Action::Output(port))
    }

    /// Check what does not need the rest of the table: goto only forward.
    pub fn validate(&self) -> Result<(), String> {
        if self.table > MAX_TABLE {
            return Err(format!(
                "table {} out of range (0..={MAX_TABLE})",
                self.table
            ));
        }
        if let Some(g) = self.instructions.goto_table {
            if g <= self.table {
                return Err(format!(
                    "goto_table:{g} in table {}: goto_table must go to a later table",
                    self.table
                ));
            }
        }
        crate::ct::check_rule(self)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Mac,
    Ip4,
    Ip6,
    Int,
}

#[derive(Clone, Copy)]
enum Pre {
    None,
    Ip,  // IPv4 or IPv6
    Ip4, // IPv4 or ARP (nw_src/nw_dst)
    Ip6,
    Arp,
    Ports, // tcp/udp/sctp
    Tcp,
    Icmp,
    Icmp6,
}

struct Def {
    name: &'static str,
    range: core::ops::Range<usize>,
    kind: Kind,
    pre: Pre,
}

const fn def(name: &'static str, range: core::ops::Range<usize>, kind: Kind, pre: Pre) -> Def {
    Def {
        name,
        range,
        kind,
        pre,
    }
}

const DEFS: &[Def] = &[
    def("in_port", kf::IN_PORT, Kind::Int, Pre::None),
    def("dl_src", kf::DL_SRC, Kind::Mac, Pre::None),
    def("dl_dst", kf::DL_DST, Kind::Mac, Pre::None),
    def("dl_type", kf::DL_TYPE, Kind::Int, Pre::None),
    def("vlan_tci", kf::VLAN_TCI, Kind::Int, Pre::None),
    def("vlan_tci2", kf::VLAN_TCI2, Kind::Int, Pre::None),
    def("nw_src", kf::NW_SRC4, Kind::Ip4, Pre::Ip4),
    def("nw_dst", kf::NW_DST4, Kind::Ip4, Pre::Ip4),
    def("arp_spa", kf::NW_SRC4, Kind::Ip4, Pre::Arp),
    def("arp_tpa", kf::NW_DST4, Kind::Ip4, Pre::Arp),
    def("arp_sha", kf::ARP_SHA, Kind::Mac, Pre::Arp),
    def("arp_tha", kf::ARP_THA, Kind::Mac, Pre::Arp),
    def("ipv6_src", kf::NW_SRC6, Kind::Ip6, Pre::Ip6),
    def("ipv6_dst", kf::NW_DST6, Kind::Ip6, Pre::Ip6),
    def(
        "nw_proto",
        kf::NW_PROTO..kf::NW_PROTO + 1,
        Kind::Int,
        Pre::Ip,
    ),
    def(
        "arp_op",
        kf::NW_PROTO..kf::NW_PROTO + 1,
        Kind::Int,
        Pre::Arp,
    ),
    def("nw_ttl", kf::NW_TTL..kf::NW_TTL + 1, Kind::Int, Pre::Ip),
    def("tp_src", kf::TP_SRC, Kind::Int, Pre::Ports),
    def("tp_dst", kf::TP_DST, Kind::Int, Pre::Ports),
    def("tcp_flags", kf::TCP_FLAGS, Kind::Int, Pre::Tcp),
    def("icmp_type", kf::TP_SRC, Kind::Int, Pre::Icmp),
    def("icmp_code", kf::TP_DST, Kind::Int, Pre::Icmp),
    def("icmpv6_type", kf::TP_SRC, Kind::Int, Pre::Icmp6),
    def("icmpv6_code", kf::TP_DST, Kind::Int, Pre::Icmp6),
];

const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
    ("ip", ethertype::IPV4, None),
    ("ipv6", ethertype::IPV6, None),
    ("arp", ethertype::ARP, None),
    ("tcp", ethertype::IPV4, Some(protocol::TCP)),
    ("udp", ethertype::IPV4, Some(protocol::UDP)),
    ("sctp", ethertype::IPV4, Some(protocol::SCTP)),
    ("icmp", ethertype::IPV4, Some(protocol::ICMP)),
    ("tcp6", ethertype::IPV6, Some(protocol::TCP)),
    ("udp6", ethertype::IPV6, Some(protocol::UDP)),
    ("sctp6", ethertype::IPV6, Some(protocol::SCTP)),
    ("icmp6", ethertype::IPV6, Some(protocol::ICMPV6)),
];

const TCP_FLAG_NAMES: &[(&str, u16)] = &[
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
];

fn full(n: usize) -> Vec<u8> {
    vec![0xff; n]
}

fn int_value(s: &str, width: usize, name: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let max = if width == 1 { 0xff } else { 0xffff };
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (parse_uint(v, max, name)?, parse_uint(m, max, name)?),
        None => (parse_uint(s, max, name)?, max),
    };
    let b = |x: u64| {
        if width == 1 {
            vec![x as u8]
        } else {
            (x as u16).to_be_bytes().to_vec()
        }
    };
    Ok((b(v & m), b(m)))
}

/// The mask of a `len`-bit prefix over `bytes` bytes.
pub(crate) fn prefix_mask(len: u32, bytes: usize) -> Vec<u8> {
    (0..bytes)
        .map(|i| {
            let bits = len.saturating_sub(i as u32 * 8).min(8);
            if bits == 0 {
                0
            } else {
                0xffu8 << (8 - bits)
            }
        })
        .collect()
}

/// An IPv4 or IPv6 address with an optional `/prefix` or `/mask`, as
/// (value & mask, mask).
pub(crate) fn ip_value(s: &str, v6: bool) -> Result<(Vec<u8>, Vec<u8>), String> {
    let n = if v6 { 16 } else { 4 };
    let addr = |a: &str| -> Result<Vec<u8>, String> {
        if v6 {
            a.parse::<Ipv6Addr>()
                .map(|x| x.octets().to_vec())
                .map_err(|_| format!("bad IPv6 address `{a}`"))
        } else {
            a.parse::<Ipv4Addr>()
                .map(|x| x.octets().to_vec())
                .map_err(|_| format!("bad IPv4 address `{a}`"))
        }
    };
    let (a, m) = match s.split_once('/') {
        None => (addr(s)?, full(n)),
        Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let len: u32 = p.parse().map_err(|_| format!("bad prefix length `{p}`"))?;
            if len > n as u32 * 8 {
                return Err(format!("prefix length /{len} too long for `{a}`"));
            }
            (addr(a)?, prefix_mask(len, n))
        }
        Some((a, m)) => (addr(a)?, addr(m)?),
    };
    let v = a.iter().zip(&m).map(|(x, y)| x & y).collect();
    Ok((v, m))
}

fn mac_value(s: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (parse_mac(a)?, parse_mac(m)?),
        None => (parse_mac(s)?, [0xff; 6]),
    };
    Ok((a.iter().zip(&m).map(|(x, y)| x & y).collect(), m.to_vec()))
}

fn tcp_flags_value(s: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    if !s.starts_with(['+', '-']) {
        return int_value(s, 2, "tcp_flags");
    }
    let (mut v, mut m) = (0u16, 0u16);
    let mut rest = s;
    while !rest.is_empty() {
        let set = rest.starts_with('+');
        rest = &rest[1..];
        let end = rest.find(['+', '-']).unwrap_or(rest.len());
        let name = &rest[..end];
        let bit = TCP_FLAG_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| {
                format!("unknown TCP flag `{name}` (fin syn rst psh ack urg ece cwr ns)")
            })?
            .1;
        m |= bit;
        if set {
            v |= bit;
        }
        rest = &rest[end..];
    }
    Ok((v.to_be_bytes().to_vec(), m.to_be_bytes().to_vec()))
}

/// `(keyword, value)` pairs that are not match fields.
type Extra<'a> = Vec<(&'a str, &'a str)>;

/// Parse the match part of a rule (comma-separated `field=value[/mask]` and
/// protocol shorthands) and the non-match keywords. Returns the match and the
/// leftover `(key, value)` pairs it did not recognise as match fields.
fn parse_fields(s: &str) -> Result<(Match, Extra<'_>), String> {
    let mut m = Match::ANY;
    let mut other = Vec::new();
    let mut used: Vec<&str> = Vec::new();
    for tok in s
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (name, val) = match tok.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (tok, None),
        };
        if let Some(&(_, dl, proto)) = SHORTHANDS.iter().find(|(n, _, _)| *n == name) {
            if val.is_some() {
                return Err(format!(
                    "`{name}` is a protocol shorthand and takes no value"
                ));
            }
            m.set(kf::DL_TYPE, &dl.to_be_bytes(), &[0xff, 0xff], name)?;
            if let Some(p) = proto {
                m.set(kf::NW_PROTO..kf::NW_PROTO + 1, &[p], &[0xff], name)?;
            }
            continue;
        }
        let Some(val) = val else {
            return Err(format!(
                "unknown keyword `{name}` (a field needs `{name}=VALUE`)"
            ));
        };
        if val.is_empty() {
            return Err(format!("`{name}=` has no value"));
        }
        if let Some(fields) = crate::ct::fields::parse(name, val) {
            for (r, v, mk) in fields? {
                m.set_ct(r, &v, &mk, name)?;
            }
            continue;
        }
        if set_reg_field(&mut m, name, val)? {
            continue;
        }
        if name == "metadata" {
            set_metadata(&mut m, val)?;
            continue;
        }
        let Some((r, v, mk)) = field_value(&mut m, name, val)? else {
            other.push((name, val));
            continue;
        };
        m.set(r, &v, &mk, name)?;
        used.push(name);
    }
    check_prerequisites(&m, &used)?;
    crate::ct::fields::check_prerequisites(&m.ct_value, &m.ct_mask)?;
    Ok((m, other))
}

/// A register match (`regN`, `xregN`, `xxregN`: OVS's names for matches)
/// set into `m`'s 32-bit registers; false when `name` is none of them.
fn set_reg_field(m: &mut Match, name: &str, val: &str) -> Result<bool, String> {
    // Only the names OVS's parser takes for matches (`reg0`, `xreg0`,
    // `xxreg0`); each lands in its 32-bit registers.
    let l = name.to_ascii_lowercase();
    if !(l.starts_with("reg") || l.starts_with("xreg") || l.starts_with("xxreg")) {
        return Ok(false);
    }
    let (f, first, n) = match RegField::parse_reg(name) {
        Some(f @ RegField::Reg(i)) => (f, usize::from(i), 1),
        Some(f @ RegField::XReg(i)) => (f, usize::from(i) * 2, 2),
        Some(f @ RegField::XXReg(i)) => (f, usize::from(i) * 4, 4),
        _ => return Ok(false),
    };
    let bits = u32::from(f.bits());
    let max = crate::regs::ones(bits);
    let num = |x: &str| -> Result<u128, String> {
        let n = crate::regs::parse_u128(x, name)?;
        if n > max {
            return Err(format!("{name}: {x} does not fit in {bits} bits"));
        }
        Ok(n)
    };
    let (v, mk) = match val.split_once('/') {
        Some((v, mk)) => (num(v)?, num(mk)?),
        None => (num(val)?, max),
    };
    for j in 0..n {
        let sh = 32 * (n - 1 - j);
        m.set_reg(first + j, (v >> sh) as u32, (mk >> sh) as u32, name)?;
    }
    Ok(true)
}

/// `metadata=V[/M]` merged into `m` (a conflict with an earlier value is
/// an error).
fn set_metadata(m: &mut Match, val: &str) -> Result<(), String> {
    let (v, mk) = match val.split_once('/') {
        Some((v, mk)) => (
            parse_uint(v, u64::MAX, "metadata")?,
            parse_uint(mk, u64::MAX, "metadata")?,
        ),
        None => (parse_uint(val, u64::MAX, "metadata")?, u64::MAX),
    };
    if (m.meta_value ^ v) & m.meta_mask & mk != 0 {
        return Err("`metadata` conflicts with an earlier field of this match".into());
    }
    m.meta_value = (m.meta_value & m.meta_mask) | (v & mk);
    m.meta_mask |= mk;
    Ok(())
}

/// The key bytes of field `name` = `val` (the tunnel fields also set the
/// tunnel-present flag in `m`); `None` when `name` is no match field (an
/// action or a rule keyword, for the caller).
fn field_value(m: &mut Match, name: &str, val: &str) -> Result<Option<FieldBytes>, String> {
    let fb: FieldBytes = match name {
        "dl_vlan" | "dl_vlan2" => {
            let r = if name == "dl_vlan" {
                kf::VLAN_TCI
            } else {
                kf::VLAN_TCI2
            };
            let vid = parse_uint(val, 0xffff, "VLAN id")?;
            if vid == 0xffff {
                // OpenFlow 1.0: 0xffff = no VLAN tag.
                (r, vec![0, 0], (VLAN_PRESENT).to_be_bytes().to_vec())
            } else if vid > 4095 {
                return Err(format!(
                    "VLAN id {vid} out of range (0..=4095, or 0xffff for untagged)"
                ));
            } else {
                (
                    r,
                    (vid as u16 | VLAN_PRESENT).to_be_bytes().to_vec(),
                    0x1fffu16.to_be_bytes().to_vec(),
                )
            }
        }
        "dl_vlan_pcp" => {
            let p = parse_uint(val, 7, "VLAN PCP")? as u16;
            (
                kf::VLAN_TCI,
                ((p << 13) | VLAN_PRESENT).to_be_bytes().to_vec(),
                0xf000u16.to_be_bytes().to_vec(),
            )
        }
        "ip_dscp" => {
            let d = parse_uint(val, 63, "DSCP")? as u8;
            (kf::NW_TOS..kf::NW_TOS + 1, vec![d << 2], vec![0xfc])
        }
        "nw_tos" => {
            let t = parse_uint(val, 255, "TOS")? as u8;
            if t & 3 != 0 {
                return Err(format!(
                    "nw_tos={t}: the ECN bits must be 0 (use ip_dscp/ip_ecn)"
                ));
            }
            (kf::NW_TOS..kf::NW_TOS + 1, vec![t], vec![0xfc])
        }
        "ip_ecn" | "nw_ecn" => {
            let e = parse_uint(val, 3, "ECN")? as u8;
            (kf::NW_TOS..kf::NW_TOS + 1, vec![e], vec![0x03])
        }
        "nw_frag" => {
            let (v, mk) = match val {
                "no" => (0, FRAG_ANY),
                "yes" => (FRAG_ANY, FRAG_ANY),
                "first" => (FRAG_ANY, FRAG_ANY | FRAG_LATER),
                "later" => (FRAG_ANY | FRAG_LATER, FRAG_ANY | FRAG_LATER),
                "not_later" => (0, FRAG_LATER),
                _ => {
                    return Err(format!(
                        "nw_frag={val}: want no, yes, first, later or not_later"
                    ))
                }
            };
            (kf::NW_FRAG..kf::NW_FRAG + 1, vec![v], vec![mk])
        }
        "tcp_flags" => {
            let (v, mk) = tcp_flags_value(val)?;
            (kf::TCP_FLAGS, v, mk)
        }
        "tun_id" | "tun_src" | "tun_dst" => {
            let (r, v, mk) = tunnel_value(name, val)?;
            m.set(
                kf::TUN_FLAGS..kf::TUN_FLAGS + 1,
                &[TUN_PRESENT],
                &[TUN_PRESENT],
                name,
            )?;
            (r, v, mk)
        }
        "in_port" => {
            let p = parse_uint(val, u64::from(MAX_PORTS - 1), "in_port")?;
            (kf::IN_PORT, (p as u16).to_be_bytes().to_vec(), full(2))
        }
        _ => match DEFS.iter().find(|d| d.name == name) {
            Some(d) => {
                let (v, mk) = match d.kind {
                    Kind::Mac => mac_value(val)?,
                    Kind::Ip4 => ip_value(val, false)?,
                    Kind::Ip6 => ip_value(val, true)?,
                    Kind::Int => int_value(val, d.range.len(), d.name)?,
                };
                (d.range.clone(), v, mk)
            }
            None => return Ok(None),
        },
    };
    Ok(Some(fb))
}

/// A field's key range, value and mask.
type FieldBytes = (core::ops::Range<usize>, Vec<u8>, Vec<u8>);

/// `tun_id=V[/M]` (a 24-bit VXLAN/Geneve VNI), `tun_src=A[/P]`,
/// `tun_dst=A[/P]`: the key range, value and mask.
fn tunnel_value(name: &str, val: &str) -> Result<FieldBytes, String> {
    const VNI: u64 = 0xff_ffff;
    match name {
        "tun_id" => {
            let (v, mk) = match val.split_once('/') {
                Some((v, mk)) => (
                    parse_uint(v, u64::MAX, name)?,
                    parse_uint(mk, u64::MAX, name)?,
                ),
                None => (parse_uint(val, u64::MAX, name)?, VNI),
            };
            if v > VNI {
                return Err(format!(
                    "tun_id={val}: VXLAN and Geneve carry 24-bit keys (at most {VNI:#x})"
                ));
            }
            let mk = (mk & VNI) as u32;
            Ok((
                kf::TUN_ID,
                ((v as u32) & mk).to_be_bytes().to_vec(),
                mk.to_be_bytes().to_vec(),
            ))
        }
        "tun_src" => ip_value(val, false).map(|(v, m)| (kf::TUN_SRC, v, m)),
        _ => ip_value(val, false).map(|(v, m)| (kf::TUN_DST, v, m)),
    }
}

fn field_pre(name: &str) -> Pre {
    match name {
        "ip_dscp" | "nw_tos" | "ip_ecn" | "nw_ecn" | "nw_frag" => Pre::Ip,
        _ => DEFS
            .iter()
            .find(|d| d.name == name)
            .map_or(Pre::None, |d| d.pre),
    }
}

/// OpenFlow prerequisites: a field is only meaningful under its protocol;
/// checked against the final match so the shorthand may come anywhere.
fn check_prerequisites(m: &Match, used: &[&str]) -> Result<(), String> {
    let dl = m.dl_type();
    let proto = m.nw_proto();
    let ip = matches!(dl, Some(ethertype::IPV4 | ethertype::IPV6));
    if dl == Some(ethertype::IPV6) && m.mask.tun_flags() & TUN_PRESENT != 0 {
        return Err(
            "tun_id/tun_src/tun_dst cannot be matched with ipv6: an IPv6 inner frame's \
             destination address takes the key bytes of the tunnel metadata"
                .into(),
        );
    }
    for name in used {
        let pre = field_pre(name);
        let ok = match pre {
            Pre::None => true,
            Pre::Ip => ip,
            Pre::Ip4 => matches!(dl, Some(ethertype::IPV4 | ethertype::ARP)),
            Pre::Ip6 => dl == Some(ethertype::IPV6),
            Pre::Arp => dl == Some(ethertype::ARP),
            Pre::Ports => {
                ip && matches!(proto, Some(protocol::TCP | protocol::UDP | protocol::SCTP))
            }
            Pre::Tcp => ip && proto == Some(protocol::TCP),
            // OVS takes `icmp_type`/`icmp_code` on ICMPv6 flows too (the same
            // tp_src/tp_dst bits as `icmpv6_type`/`icmpv6_code`).
            Pre::Icmp => {
                (dl == Some(ethertype::IPV4) && proto == Some(protocol::ICMP))
                    || (dl == Some(ethertype::IPV6) && proto == Some(protocol::ICMPV6))
            }
            Pre::Icmp6 => dl == Some(ethertype::IPV6) && proto == Some(protocol::ICMPV6),
        };
        if !ok {
            let need = match pre {
                Pre::Ip => "ip or ipv6",
                Pre::Ip4 => "ip or arp",
                Pre::Ip6 => "ipv6",
                Pre::Arp => "arp",
                Pre::Ports => "tcp, udp or sctp (or tcp6/udp6/sctp6)",
                Pre::Tcp => "tcp or tcp6",
                Pre::Icmp => "icmp or icmp6",
                Pre::Icmp6 => "icmp6",
                Pre::None => "its protocol",
            };
            return Err(format!("`{name}` needs {need} in the match"));
        }
    }
    Ok(())
}

/// Parse a match alone (for `flows del` filters); `priority=` is returned
/// too when present. See [`parse_filter`] for table/cookie/out_port.
pub fn parse_match(s: &str) -> Result<(Match, Option<u16>), String> {
    let f = parse_filter(s, false)?;
    Ok((f.matcher, f.priority))
}

/// Which rules an OpenFlow flow_mod (modify/delete) or a flow stats
/// request applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowFilter {
    /// One table, or `None` for all tables (OFPTT_ALL).
    pub table: Option<u8>,
    /// The match.
    pub matcher: Match,
    /// Strict: the rule's match equals `matcher` (and its priority equals
    /// `priority` when given). Loose: the rule's match is at least as
    /// specific as `matcher` (and `priority`, when given, equals).
    pub strict: bool,
    /// Priority (OpenFlow: only for strict; the CLI also accepts it loose).
    pub priority: Option<u16>,
    /// `rule.cookie & cookie_mask == cookie & cookie_mask`.
    pub cookie: u64,
    /// 0: any cookie.
    pub cookie_mask: u64,
    /// Only rules with an `output:N` to this port.
    pub out_port: Option<u16>,
    /// Only rules referencing this group.
    pub out_group: Option<u32>,
}

impl Default for FlowFilter {
    fn default() -> Self {
        FlowFilter::all()
    }
}

impl FlowFilter {
    /// Every rule of every table.
    pub fn all() -> FlowFilter {
        FlowFilter {
            table: None,
            matcher: Match::ANY,
            strict: false,
            priority: None,
            cookie: 0,
            cookie_mask: 0,
            out_port: None,
            out_group: None,
        }
    }

    /// True when the filter selects `r`.
    pub fn selects(&self, r: &RuleSpec) -> bool {
        self.table.is_none_or(|t| t == r.table)
            && (if self.strict {
                r.matcher == self.matcher
            } else {
                r.matcher.within(&self.matcher)
            })
            && self.priority.is_none_or(|p| p == r.priority)
            && (r.cookie ^ self.cookie) & self.cookie_mask == 0
            && self.out_port.is_none_or(|p| r.outputs_to(p))
            && self.out_group.is_none_or(|g| r.groups().any(|x| x == g))
    }
}

/// Parse a filter in `ovs-ofctl del-flows/mod-flows/dump-flows` syntax:
/// match fields plus `table=N`, `priority=N`, `cookie=V/M`, `out_port=N`,
/// `out_group=N`.
pub fn parse_filter(s: &str, strict: bool) -> Result<FlowFilter, String> {
    let (m, other) = parse_fields(s)?;
    let mut f = FlowFilter {
        matcher: m,
        strict,
        ..FlowFilter::all()
    };
    for (k, v) in other {
        match k {
            "priority" => f.priority = Some(parse_uint(v, 0xffff, "priority")? as u16),
            "table" if v == "all" || v == "255" => f.table = None,
            "table" => f.table = Some(parse_uint(v, u64::from(MAX_TABLE), "table")? as u8),
            "cookie" => {
                let (c, cm) = match v.split_once('/') {
                    Some((c, cm)) => (
                        parse_uint(c, u64::MAX, "cookie")?,
                        parse_uint(cm, u64::MAX, "cookie mask")?,
                    ),
                    None => (parse_uint(v, u64::MAX, "cookie")?, u64::MAX),
                };
                (f.cookie, f.cookie_mask) = (c & cm, cm);
            }
            "out_port" => {
                f.out_port = Some(parse_uint(v, u64::from(MAX_PORTS - 1), "out_port")? as u16)
            }
            "out_group" => f.out_group = Some(parse_uint(v, 0xffff_ff00, "out_group")? as u32),
            _ => return Err(unknown_field(k)),
        }
    }
    Ok(f)
}

/// Separate value-less rule flags (`send_flow_rem`, `check_overlap`,
/// `reset_counts`) from the match text.
fn take_flags(s: &str) -> (String, Vec<&'static str>) {
    const FLAGS: [&str; 3] = ["send_flow_rem", "check_overlap", "reset_counts"];
    let mut flags = Vec::new();
    let rest: Vec<&str> = s
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|t| match FLAGS.iter().find(|f| *f == t) {
            Some(f) => {
                flags.push(*f);
                false
            }
            None => true,
        })
        .collect();
    (rest.join(","), flags)
}

/// Parse a list of rules (e.g. `flows = [...]` of the TOML config); the
/// error names the 1-based position of the first bad rule.
pub fn parse_rules<S: AsRef<str>>(rules: &[S]) -> Result<Vec<RuleSpec>, String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.as_ref()
                .parse::<RuleSpec>()
                .map_err(|e| format!("flow {} `{}`: {e}", i + 1, r.as_ref()))
        })
        .collect()
}

fn unknown_field(k: &str) -> String {
    format!("unknown match field `{k}` (see switch/README.md for the syntax)")
}

impl core::str::FromStr for RuleSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let idx = s
            .find("actions=")
            .ok_or("missing `actions=` (e.g. `in_port=1,actions=output:2`)")?;
        if s[idx + 8..].contains("actions=") {
            return Err("`actions=` given twice".into());
        }
        let (mut actions, mut instructions) = parse_instructions(&s[idx + 8..])?;
        let (head, flags) = take_flags(&s[..idx]);
        let (matcher, other) = parse_fields(&head)?;
        // `mod_tp_src`/`mod_tp_dst` rewrite the protocol the match names
        // (as ovs-ofctl makes them `tcp_src`, `udp_src`, `sctp_src`).
        let l4 = match matcher.nw_proto() {
            Some(6) => Some(L4Proto::Tcp),
            Some(17) => Some(L4Proto::Udp),
            Some(132) => Some(L4Proto::Sctp),
            _ => None,
        };
        if let Some(l4) = l4.filter(|_| matches!(matcher.dl_type(), Some(0x0800 | 0x86dd))) {
            for a in actions
                .iter_mut()
                .chain(instructions.write_actions.iter_mut().flatten())
            {
                match a {
                    Action::SetL4Src(p @ L4Proto::Any, _)
                    | Action::SetL4Dst(p @ L4Proto::Any, _) => *p = l4,
                    _ => {}
                }
            }
        }
        let mut r = RuleSpec::new(matcher, actions);
        r.instructions = instructions;
        r.send_flow_rem = flags.contains(&"send_flow_rem");
        for (k, v) in other {
            match k {
                "priority" => r.priority = parse_uint(v, 0xffff, "priority")? as u16,
                "idle_timeout" => r.idle_timeout = parse_uint(v, 0xffff, "idle_timeout")? as u16,
                "hard_timeout" => r.hard_timeout = parse_uint(v, 0xffff, "hard_timeout")? as u16,
                "table" => r.table = parse_uint(v, u64::from(MAX_TABLE), "table")? as u8,
                "cookie" => {
                    if v.contains('/') {
                        return Err(
                            "a cookie mask is only allowed in filters (mod/del/dump)".into()
                        );
                    }
                    r.cookie = parse_uint(v, u64::MAX, "cookie")?
                }
                _ => return Err(unknown_field(k)),
            }
        }
        r.validate()?;
        Ok(r)
    }
}

/// An address and mask as OVS prints them: bare when exact, `/len` for a
/// prefix, `/mask` otherwise.
pub(crate) fn fmt_ip(v: &[u8], m: &[u8]) -> String {
    let addr = |b: &[u8]| {
        if b.len() == 4 {
            Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap()).to_string()
        } else {
            Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()).to_string()
        }
    };
    let len: u32 = m.iter().map(|b| b.count_ones()).sum();
    if m.iter().all(|&b| b == 0xff) {
        addr(v)
    } else if prefix_mask(len, m.len()) == m {
        format!("{}/{len}", addr(v))
    } else {
        format!("{}/{}", addr(v), addr(m))
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As OVS's match_format: the ct fields before the protocol.
        let mut parts: Vec<String> = crate::ct::fields::format(&self.ct_value, &self.ct_mask);
        let dl = self.dl_type();
        let proto = self.nw_proto();
        let short = SHORTHANDS
            .iter()
            .find(|(_, d, p)| Some(*d) == dl && p.is_some() && *p == proto)
            .or_else(|| {
                SHORTHANDS
                    .iter()
                    .find(|(_, d, p)| Some(*d) == dl && p.is_none())
            });
        let (skip_dl, skip_proto) = match short {
            Some((n, _, p)) => {
                parts.push((*n).to_string());
                (true, p.is_some())
            }
            None => (false, false),
        };
        let vb = self.value.as_bytes();
        let mb = self.mask.as_bytes();
        let is_arp = dl == Some(ethertype::ARP);
        let is_v6 = dl == Some(ethertype::IPV6);
        let icmp = match proto {
            Some(protocol::ICMP) if !is_v6 && !is_arp => Some("icmp"),
            Some(protocol::ICMPV6) if is_v6 => Some("icmpv6"),
            _ => None,
        };
        for d in DEFS {
            let r = d.range.clone();
            if mb[r.clone()].iter().all(|&b| b == 0) {
                continue;
            }
            let name = d.name;
            let wanted = match name {
                "dl_type" => !skip_dl,
                "nw_proto" => !skip_proto && !is_arp,
                "arp_op" => is_arp,
                "nw_src" | "nw_dst" => !is_arp && !is_v6,
                "arp_spa" | "arp_tpa" | "arp_sha" | "arp_tha" => is_arp,
                "ipv6_src" | "ipv6_dst" => is_v6,
                "tp_src" | "tp_dst" => icmp.is_none(),
                "icmp_type" | "icmp_code" => icmp == Some("icmp"),
                "icmpv6_type" | "icmpv6_code" => icmp == Some("icmpv6"),
                _ => true,
            };
            if !wanted {
                continue;
            }
            let (v, m) = (&vb[r.clone()], &mb[r.clone()]);
            let s = match d.kind {
                Kind::Mac if m.iter().all(|&b| b == 0xff) => fmt_mac(v),
                Kind::Mac => format!("{}/{}", fmt_mac(v), fmt_mac(m)),
                Kind::Ip4 | Kind::Ip6 => fmt_ip(v, m),
                Kind::Int => {
                    let (vi, mi, fullm) = if v.len() == 1 {
                        (u64::from(v[0]), u64::from(m[0]), 0xff)
                    } else {
                        (
                            u64::from(u16::from_be_bytes([v[0], v[1]])),
                            u64::from(u16::from_be_bytes([m[0], m[1]])),
                            0xffff,
                        )
                    };
                    if name.starts_with("vlan_tci") || name == "dl_type" || name == "tcp_flags" {
                        if mi == fullm {
                            format!("{vi:#06x}")
                        } else {
                            format!("{vi:#06x}/{mi:#06x}")
                        }
                    } else if mi == fullm {
                        vi.to_string()
                    } else {
                        format!("{vi:#x}/{mi:#x}")
                    }
                }
            };
            parts.push(format!("{name}={s}"));
        }
        // Byte-wide fields with sub-byte masks.
        let (tv, tm) = (vb[kf::NW_TOS], mb[kf::NW_TOS]);
        if tm & 0xfc == 0xfc {
            parts.push(format!("ip_dscp={}", tv >> 2));
        }
        if tm & 0x03 == 0x03 {
            parts.push(format!("ip_ecn={}", tv & 3));
        }
        for (i, (&v, &mk)) in self.reg_value.0.iter().zip(&self.reg_mask.0).enumerate() {
            // OVS's format_uint32_masked (`%#x`: 0 is `0`).
            match mk {
                0 => {}
                u32::MAX => parts.push(format!("reg{i}={}", crate::regs::hex(v.into()))),
                _ => parts.push(format!("reg{i}={}/{mk:#x}", crate::regs::hex(v.into()))),
            }
        }
        if self.meta_mask == u64::MAX {
            parts.push(format!("metadata={:#x}", self.meta_value));
        } else if self.meta_mask != 0 {
            parts.push(format!(
                "metadata={:#x}/{:#x}",
                self.meta_value, self.meta_mask
            ));
        }
        if mb[kf::TUN_FLAGS] & TUN_PRESENT != 0 {
            let (id, idm) = (self.value.tun_id(), self.mask.tun_id());
            let others = mb[kf::TUN_SRC.start..kf::TUN_DST.end]
                .iter()
                .any(|&b| b != 0);
            match idm {
                0 if !others => parts.push("tun_id=0/0".into()),
                0 => {}
                0xff_ffff => parts.push(format!("tun_id={id:#x}")),
                _ => parts.push(format!("tun_id={id:#x}/{idm:#x}")),
            }
            for (name, r) in [("tun_src", kf::TUN_SRC), ("tun_dst", kf::TUN_DST)] {
                if mb[r.clone()].iter().any(|&b| b != 0) {
                    parts.push(format!("{name}={}", fmt_ip(&vb[r.clone()], &mb[r])));
                }
            }
        }
        let (fv, fm) = (vb[kf::NW_FRAG], mb[kf::NW_FRAG]);
        if fm != 0 {
            let s = match (fv, fm) {
                (0, FRAG_ANY) => "no",
                (FRAG_ANY, FRAG_ANY) => "yes",
                (FRAG_ANY, 3) => "first",
                (3, 3) => "later",
                _ => "not_later",
            };
            parts.push(format!("nw_frag={s}"));
        }
        write!(f, "{}", parts.join(","))
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Priority first: `vswitch flows dump` strips this prefix.
        write!(f, "priority={}", self.priority)?;
        if self.table != 0 {
            write!(f, ",table={}", self.table)?;
        }
        if self.cookie != 0 {
            write!(f, ",cookie={:#x}", self.cookie)?;
        }
        if self.send_flow_rem {
            write!(f, ",send_flow_rem")?;
        }
        if self.idle_timeout != 0 {
            write!(f, ",idle_timeout={}", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, ",hard_timeout={}", self.hard_timeout)?;
        }
        let m = self.matcher.to_string();
        if !m.is_empty() {
            write!(f, ",{m}")?;
        }
        write!(
            f,
            ",actions={}",
            fmt_instructions(&self.actions, &self.instructions)
        )
    }
}
