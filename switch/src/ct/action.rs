//! The `ct` action's text form (`ovs-actions(7)`, "The ct action"), its
//! validation (`ofp-actions.c`'s rules), and the registry that lets
//! [`crate::action::Action`] stay `Copy` and small: an action carries a
//! [`CtId`], the index of its interned [`CtSpec`].
//!
//! ```text
//! ct(commit,force,table=N,zone=Z,nat(src=A[-B][:P[-Q]][,persistent|hash|random]),
//!    exec(set_field:V[/M]->ct_mark,set_field:V[/M]->ct_label))
//! ```
//!
//! Formatting follows OVS's `format_CT`/`format_NAT` exactly: `commit`,
//! `force`, `table=`, `zone=` (only when non-zero), `nat...`, `exec(...)`.

use core::fmt;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use conntrack::{CtSpec, NatKind, NatRange, NatSpec};

use crate::action::{parse_uint, split_top, MAX_TABLE};
use crate::regs::{Regs, Subfield};

/// `NatSpec::flags` bit: `persistent` (OVS's `NX_NAT_F_PERSISTENT`).
pub const NAT_PERSISTENT: u8 = conntrack::nat_flags::PERSISTENT;
/// `NatSpec::flags` bit: `hash` (OVS's `NX_NAT_F_PROTO_HASH`).
pub const NAT_HASH: u8 = conntrack::nat_flags::PROTO_HASH;
/// `NatSpec::flags` bit: `random` (OVS's `NX_NAT_F_PROTO_RANDOM`).
pub const NAT_RANDOM: u8 = conntrack::nat_flags::PROTO_RANDOM;

/// Distinct `ct` actions a process can hold (interned, never freed: the
/// specs a flow table names are few; a controller inventing more gets an
/// error, not unbounded memory).
pub const MAX_CT_SPECS: usize = 1 << 16;

/// What the registry holds: the tracker's options and, for
/// `ct(zone=NXM_NX_REG0[0..15])`, the field the zone comes from (the
/// pipeline translation resolves it to an immediate zone per flow).
type Interned = (CtSpec, Option<Subfield>);

static SPECS: [AtomicPtr<Interned>; MAX_CT_SPECS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CT_SPECS];
static INDEX: Mutex<Option<HashMap<Interned, u32>>> = Mutex::new(None);

/// A `ct` action's options, interned: what [`crate::action::Action::Ct`]
/// carries. Equal specs get the same id. Only [`CtId::intern`] makes one,
/// so every id names a spec.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtId(u32);

impl CtId {
    /// Validate `spec` (as OVS does, see [`validate`]) and intern it.
    pub fn intern(spec: CtSpec) -> Result<CtId, String> {
        CtId::intern_zone_src(spec, None)
    }

    /// [`CtId::intern`] with the zone taken from `zone_src` (16 bits of a
    /// register or `metadata`) when the action runs; `spec.zone` is then
    /// ignored (kept 0).
    pub fn intern_zone_src(mut spec: CtSpec, zone_src: Option<Subfield>) -> Result<CtId, String> {
        validate(&spec)?;
        if let Some(z) = zone_src {
            if z.n_bits != 16 {
                return Err(format!("ct: zone={z}: the zone field must be 16 bits wide"));
            }
            spec.zone = 0;
        }
        let spec = (spec, zone_src);
        let mut g = INDEX.lock().unwrap_or_else(|e| e.into_inner());
        let map = g.get_or_insert_with(HashMap::new);
        if let Some(&i) = map.get(&spec) {
            return Ok(CtId(i));
        }
        let i = map.len();
        if i >= MAX_CT_SPECS {
            return Err(format!(
                "too many distinct ct actions (at most {MAX_CT_SPECS} per process)"
            ));
        }
        let p = Box::into_raw(Box::new(spec.clone()));
        // Published before the id is handed out: a reader with the id
        // always finds the pointer.
        SPECS[i].store(p, Ordering::Release);
        map.insert(spec, i as u32);
        Ok(CtId(i as u32))
    }

    /// The spec.
    #[inline]
    pub fn spec(self) -> &'static CtSpec {
        &self.interned().0
    }

    /// The field the zone comes from (`None`: `spec().zone`).
    #[inline]
    pub fn zone_src(self) -> Option<Subfield> {
        self.interned().1
    }

    /// This action with its zone read from `(metadata, regs)` when it
    /// takes it from a field (the pipeline translation's step); itself
    /// otherwise.
    pub fn resolve_zone(self, meta: u64, regs: &Regs) -> Result<CtId, String> {
        match self.zone_src() {
            None => Ok(self),
            Some(z) => {
                let mut spec = self.spec().clone();
                spec.zone = z.get(meta, regs) as u16;
                CtId::intern(spec)
            }
        }
    }

    #[inline]
    fn interned(self) -> &'static Interned {
        let p = SPECS[self.0 as usize].load(Ordering::Acquire);
        // SAFETY: a CtId exists only once `intern` stored a pointer to a
        // leaked (never freed, never mutated) Box at its index, with
        // Release ordering before the id escaped; the Acquire load sees it.
        unsafe { &*p }
    }

    /// The raw index (for diagnostics).
    pub fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for CtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CtId({}: {})",
            self.0,
            FmtZone(self.spec(), self.zone_src())
        )
    }
}

impl fmt::Display for CtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FmtZone(self.spec(), self.zone_src()).fmt(f)
    }
}

/// OVS's rules for a `ct` action: `force` needs `commit` (`parse_CT`);
/// without `commit` only a bare `nat` may come along (`decode_NXAST_RAW_CT`:
/// "CT action requires commit flag if actions other than NAT without
/// arguments are specified"); `nat` flags only with `src`/`dst`
/// (`parse_NAT`), not both `hash` and `random`; ranges ordered.
pub fn validate(s: &CtSpec) -> Result<(), String> {
    if s.force && !s.commit {
        return Err("ct: \"force\" flag requires \"commit\" flag".into());
    }
    if let Some(t) = s.table {
        if t > MAX_TABLE {
            return Err(format!("ct: table {t} out of range (0..={MAX_TABLE})"));
        }
    }
    let bare_nat = s
        .nat
        .is_none_or(|n| n.kind == NatKind::Existing && n.range.is_none() && n.flags == 0);
    if !s.commit && (s.set_mark.is_some() || s.set_label.is_some() || !bare_nat) {
        return Err(
            "ct: exec(...) and nat(src=...)/nat(dst=...) need \"commit\" (only a bare `nat` may come without it)"
                .into(),
        );
    }
    if let Some(n) = s.nat {
        if n.flags & !(NAT_PERSISTENT | NAT_HASH | NAT_RANDOM) != 0 {
            return Err(format!("ct: unknown nat flags {:#x}", n.flags));
        }
        if n.kind == NatKind::Existing && (n.flags != 0 || n.range.is_some()) {
            return Err("ct: nat flags and ranges are allowed only with \"src\" or \"dst\"".into());
        }
        if n.flags & NAT_HASH != 0 && n.flags & NAT_RANDOM != 0 {
            return Err("ct: nat: both \"hash\" and \"random\" are not allowed".into());
        }
        if let Some(r) = n.range {
            let ordered = match (r.addr_min, r.addr_max) {
                (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
                (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
                _ => false,
            };
            if !ordered {
                return Err("ct: nat range addresses must be of one family, first <= last".into());
            }
            if r.port_max < r.port_min {
                return Err("ct: nat port range must be first <= last".into());
            }
        }
    }
    Ok(())
}

/// Parse the inside of `ct(...)` (`ovs-ofctl` syntax) with an immediate
/// zone.
pub fn parse(args: &str) -> Result<CtSpec, String> {
    let (s, z) = parse_zone_src(args)?;
    if let Some(z) = z {
        return Err(format!("ct: zone={z}: want a number 0..=65535 here"));
    }
    Ok(s)
}

/// Parse the inside of `ct(...)`; the zone may come from a field
/// (`zone=NXM_NX_REG0[0..15]`, OVS's `mf_parse_subfield` after a number
/// failed), returned beside the spec.
pub fn parse_zone_src(args: &str) -> Result<(CtSpec, Option<Subfield>), String> {
    let mut s = CtSpec::default();
    let mut zone_src = None;
    let mut seen_exec = false;
    for tok in split_top(args) {
        let tok = tok.trim();
        if tok.is_empty() {
            continue;
        }
        let (key, val) = key_value(tok);
        match (key, val) {
            ("commit", None) => s.commit = true,
            ("force", None) => s.force = true,
            ("table", Some(v)) => {
                s.table = Some(parse_uint(v, u64::from(MAX_TABLE), "ct table")? as u8);
            }
            ("zone", Some(v)) => match parse_uint(v, 0xffff, "ct zone") {
                Ok(z) => (s.zone, zone_src) = (z as u16, None),
                Err(_) => {
                    let z = Subfield::parse(v).map_err(|e| {
                        format!("ct: zone={v}: want a number 0..=65535 or a 16-bit register field ({e})")
                    })?;
                    if !z.field.is_reg() {
                        return Err(format!(
                            "ct: zone={z}: the zone comes from a register or metadata"
                        ));
                    }
                    if z.n_bits != 16 {
                        return Err(format!("ct: zone={z}: the zone field must be 16 bits wide"));
                    }
                    (s.zone, zone_src) = (0, Some(z));
                }
            },
            ("nat", v) => {
                if s.nat.is_some() {
                    return Err("ct: `nat` given twice".into());
                }
                s.nat = Some(parse_nat(v.unwrap_or(""))?);
            }
            ("exec", Some(v)) => {
                if seen_exec {
                    return Err("ct: `exec` given twice".into());
                }
                seen_exec = true;
                parse_exec(v, &mut s)?;
            }
            ("alg", _) => {
                return Err("ct: alg= (application layer gateways) is not supported".into())
            }
            _ => return Err(format!("invalid argument to \"ct\" action: `{tok}`")),
        }
    }
    validate(&s)?;
    Ok((s, zone_src))
}

/// `key=value`, `key(value)` or a bare `key` (OVS's
/// `ofputil_parse_key_value`).
fn key_value(tok: &str) -> (&str, Option<&str>) {
    let eq = tok.find('=');
    let par = tok.find('(');
    match (eq, par) {
        (Some(e), p) if p.is_none_or(|p| e < p) => (tok[..e].trim(), Some(tok[e + 1..].trim())),
        (_, Some(p)) if tok.ends_with(')') => (tok[..p].trim(), Some(&tok[p + 1..tok.len() - 1])),
        _ => (tok, None),
    }
}

fn parse_exec(v: &str, s: &mut CtSpec) -> Result<(), String> {
    for a in split_top(v) {
        let a = a.trim();
        if a.is_empty() {
            continue;
        }
        let body = a.strip_prefix("set_field:").ok_or_else(|| {
            format!("ct: exec({a}): only set_field:V[/M]->ct_mark and ->ct_label are allowed")
        })?;
        let (val, fieldname) = body
            .split_once("->")
            .ok_or_else(|| format!("ct: exec({a}): want set_field:VALUE[/MASK]->FIELD"))?;
        match fieldname.trim() {
            "ct_mark" => {
                if s.set_mark.is_some() {
                    return Err("ct: exec sets ct_mark twice".into());
                }
                let (v, m) = masked_u128(val.trim(), u128::from(u32::MAX), "ct_mark")?;
                s.set_mark = Some((v as u32, m as u32));
            }
            "ct_label" => {
                if s.set_label.is_some() {
                    return Err("ct: exec sets ct_label twice".into());
                }
                s.set_label = Some(masked_u128(val.trim(), u128::MAX, "ct_label")?);
            }
            f => {
                return Err(format!(
                    "ct: exec may only set ct_mark or ct_label, not `{f}`"
                ))
            }
        }
    }
    Ok(())
}

/// An unsigned number up to 128 bits, decimal or `0x` hex.
pub(crate) fn parse_u128(s: &str, max: u128, what: &str) -> Result<u128, String> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u128::from_str_radix(h, 16)
    } else {
        s.parse::<u128>()
    }
    .map_err(|_| format!("bad {what} `{s}` (want a number)"))?;
    if v > max {
        return Err(format!("{what} `{s}` out of range (max {max:#x})"));
    }
    Ok(v)
}

/// `V[/M]`: (value & mask, mask); no mask = all of `max`.
pub(crate) fn masked_u128(s: &str, max: u128, what: &str) -> Result<(u128, u128), String> {
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (
            parse_u128(v.trim(), max, what)?,
            parse_u128(m.trim(), max, what)?,
        ),
        None => (parse_u128(s, max, what)?, max),
    };
    Ok((v & m, m))
}

fn parse_nat(v: &str) -> Result<NatSpec, String> {
    let mut n = NatSpec {
        kind: NatKind::Existing,
        range: None,
        flags: 0,
    };
    let (mut src, mut dst) = (false, false);
    for tok in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (key, val) = match tok.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (tok, None),
        };
        match key {
            "src" | "dst" => {
                if key == "src" {
                    src = true;
                } else {
                    dst = true;
                }
                n.kind = if key == "src" {
                    NatKind::Src
                } else {
                    NatKind::Dst
                };
                n.range = match val {
                    Some(r) if !r.is_empty() => Some(parse_range(r)?),
                    _ => None,
                };
            }
            "persistent" => n.flags |= NAT_PERSISTENT,
            "hash" => n.flags |= NAT_HASH,
            "random" => n.flags |= NAT_RANDOM,
            _ => return Err(format!("invalid key \"{key}\" in \"nat\" argument")),
        }
    }
    if src && dst {
        return Err("ct: nat: may only specify one of \"src\" or \"dst\"".into());
    }
    if !src && !dst && n.flags != 0 {
        return Err("ct: nat: flags allowed only with \"src\" or \"dst\"".into());
    }
    Ok(n)
}

/// `A[-B][:P[-Q]]`; IPv6 addresses in brackets when ports follow.
fn parse_range(s: &str) -> Result<NatRange, String> {
    let bad = || format!("invalid nat range \"{s}\"");
    let (addrs, ports) = if s.contains('[') {
        // [A]-[B]:P-Q or [A]:P
        let close = s.rfind(']').ok_or_else(bad)?;
        let (a, rest) = s.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(p) => (a, Some(p)),
            None if rest.is_empty() => (a, None),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() > 1 {
        // Unbracketed IPv6: no ports.
        (s, None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let addr = |a: &str| -> Result<IpAddr, String> {
        let a = a.trim().trim_start_matches('[').trim_end_matches(']');
        a.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .or_else(|_| a.parse::<Ipv6Addr>().map(IpAddr::V6))
            .map_err(|_| bad())
    };
    let (lo, hi) = match split_dash(addrs) {
        (a, Some(b)) => (addr(a)?, addr(b)?),
        (a, None) => {
            let a = addr(a)?;
            (a, a)
        }
    };
    let (pmin, pmax) = match ports {
        None => (0, 0),
        Some(p) => {
            let port = |x: &str| x.trim().parse::<u16>().map_err(|_| bad());
            match p.split_once('-') {
                Some((a, b)) => (port(a)?, port(b)?),
                None => {
                    let a = port(p)?;
                    (a, a)
                }
            }
        }
    };
    let r = NatRange {
        addr_min: lo,
        addr_max: hi,
        port_min: pmin,
        port_max: pmax,
    };
    let ordered = match (lo, hi) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => false,
    };
    if !ordered || pmax < pmin {
        return Err(bad());
    }
    Ok(r)
}

/// Split an address range at the dash between two addresses (IPv6
/// addresses hold no dash, so the first one does).
fn split_dash(s: &str) -> (&str, Option<&str>) {
    match s.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

/// Formats a [`CtSpec`] as OVS does (`format_CT`).
pub struct Fmt<'a>(pub &'a CtSpec);

impl fmt::Display for Fmt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FmtZone(self.0, None).fmt(f)
    }
}

/// Formats a [`CtSpec`] whose zone may come from a field.
pub struct FmtZone<'a>(pub &'a CtSpec, pub Option<Subfield>);

impl fmt::Display for FmtZone<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut parts: Vec<String> = Vec::new();
        if s.commit {
            parts.push("commit".into());
        }
        if s.force {
            parts.push("force".into());
        }
        if let Some(t) = s.table {
            parts.push(format!("table={t}"));
        }
        if let Some(z) = self.1 {
            parts.push(format!("zone={z}"));
        } else if s.zone != 0 {
            parts.push(format!("zone={}", s.zone));
        }
        if let Some(n) = &s.nat {
            parts.push(fmt_nat(n));
        }
        let mut exec = Vec::new();
        if let Some((v, m)) = s.set_mark {
            exec.push(format!(
                "set_field:{}->ct_mark",
                hex_masked(u128::from(v), u128::from(m), u128::from(u32::MAX))
            ));
        }
        if let Some((v, m)) = s.set_label {
            exec.push(format!(
                "set_field:{}->ct_label",
                hex_masked(v, m, u128::MAX)
            ));
        }
        if !exec.is_empty() {
            parts.push(format!("exec({})", exec.join(",")));
        }
        write!(f, "ct({})", parts.join(","))
    }
}

/// OVS's `ds_put_hex`: `0x` and the value without leading zeros, or `0`.
pub(crate) fn hex(v: u128) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// `V` or `V/M` in OVS's hex form (`mf_format` of a hexadecimal field).
pub(crate) fn hex_masked(v: u128, m: u128, full: u128) -> String {
    if m == full {
        hex(v)
    } else {
        format!("{}/{}", hex(v), hex(m))
    }
}

fn fmt_nat(n: &NatSpec) -> String {
    let kind = match n.kind {
        NatKind::Existing => return "nat".into(),
        NatKind::Src => "src",
        NatKind::Dst => "dst",
    };
    let Some(r) = n.range else {
        return format!("nat({kind})");
    };
    // OVS prints ports when the first is non-zero; a range starting at 0
    // is printed too, so that it parses back.
    let ports = r.port_min != 0 || r.port_max != 0;
    let addr = |a: IpAddr| match a {
        IpAddr::V6(a) if ports => format!("[{a}]"),
        a => a.to_string(),
    };
    let mut s = format!("nat({kind}={}", addr(r.addr_min));
    if r.addr_max != r.addr_min {
        s += &format!("-{}", addr(r.addr_max));
    }
    if ports {
        s += &format!(":{}", r.port_min);
        if r.port_max != r.port_min {
            s += &format!("-{}", r.port_max);
        }
    }
    for (bit, name) in [
        (NAT_PERSISTENT, "persistent"),
        (NAT_HASH, "hash"),
        (NAT_RANDOM, "random"),
    ] {
        if n.flags & bit != 0 {
            s += &format!(",{name}");
        }
    }
    s + ")"
}

#[cfg(test)]
mod test {
    use super::*;

    fn rt(s: &str) -> String {
        let inner = s.strip_prefix("ct(").unwrap().strip_suffix(')').unwrap();
        Fmt(&parse(inner).unwrap()).to_string()
    }

    #[test]
    fn formats_as_ovs() {
        for s in [
            "ct(table=1)",
            "ct(commit)",
            "ct(commit,zone=5)",
            "ct(commit,force,table=3,zone=7)",
            "ct(nat)",
            "ct(table=2,nat)",
            "ct(commit,nat(src=10.0.0.1))",
            "ct(commit,nat(src=10.0.0.1-10.0.0.9:1000-2000,persistent,random))",
            "ct(commit,nat(dst=10.1.1.1:80))",
            "ct(commit,nat(src))",
            "ct(commit,nat(dst=[fd00::1]-[fd00::9]:80-90,hash))",
            "ct(commit,nat(dst=fd00::1-fd00::9))",
            "ct(commit,exec(set_field:0x1->ct_mark))",
            "ct(commit,exec(set_field:0x1/0xff->ct_mark,set_field:0x1000000000000000000/0xff000000000000000000->ct_label))",
            "ct(commit,nat(src=1.2.3.4),exec(set_field:0->ct_mark))",
        ] {
            assert_eq!(rt(s), s);
        }
        // Canonical forms.
        assert_eq!(rt("ct(zone=0,table=1)"), "ct(table=1)");
        assert_eq!(
            rt("ct(exec(set_field:7->ct_mark),commit)"),
            "ct(commit,exec(set_field:0x7->ct_mark))"
        );
        assert_eq!(
            rt("ct(commit,nat(src=10.0.0.1:5-5))"),
            "ct(commit,nat(src=10.0.0.1:5))"
        );
    }

    #[test]
    fn errors() {
        for (s, want) in [
            ("force", "requires \"commit\""),
            ("exec(set_field:1->ct_mark)", "need \"commit\""),
            ("nat(src=1.1.1.1)", "need \"commit\""),
            ("commit,nat(src=1.1.1.1,dst=2.2.2.2)", "one of"),
            ("commit,nat(persistent)", "only with"),
            ("commit,nat(src=1.1.1.1,hash,random)", "both"),
            ("commit,nat(src=1.1.1.9-1.1.1.1)", "invalid nat range"),
            ("commit,nat(src=1.1.1.1:9-1)", "invalid nat range"),
            ("commit,nat(src=1.1.1.1:x)", "invalid nat range"),
            ("commit,exec(output:1)", "only set_field"),
            ("commit,exec(set_field:1->ip_src)", "ct_mark or ct_label"),
            (
                "commit,exec(set_field:0x100000000->ct_mark)",
                "out of range",
            ),
            ("table=300", "out of range"),
            ("zone=NXM_NX_REG0[0..15]", "want a number"),
            ("alg=ftp", "not supported"),
            ("bogus", "invalid argument"),
        ] {
            let e = parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn interning_dedups() {
        let a = CtId::intern(parse("commit,zone=9").unwrap()).unwrap();
        let b = CtId::intern(parse("zone=9,commit").unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.spec().zone, 9);
        assert_eq!(a.to_string(), "ct(commit,zone=9)");
    }

    #[test]
    fn zone_from_a_register() {
        let (s, z) = parse_zone_src("table=1,zone=NXM_NX_REG0[0..15]").unwrap();
        let id = CtId::intern_zone_src(s, z).unwrap();
        assert_eq!(id.to_string(), "ct(table=1,zone=NXM_NX_REG0[0..15])");
        let mut regs = Regs::ZERO;
        regs.0[0] = 0xabcd_0007;
        let r = id.resolve_zone(0, &regs).unwrap();
        assert_eq!(r.zone_src(), None);
        assert_eq!(r.spec().zone, 7);
        assert_eq!(r.spec().table, Some(1));
        let (s, z) = parse_zone_src("commit,zone=reg1[16..31]").unwrap();
        let id = CtId::intern_zone_src(s, z).unwrap();
        assert_eq!(id.to_string(), "ct(commit,zone=NXM_NX_REG1[16..31])");
        assert_eq!(id.resolve_zone(0, &regs).unwrap().to_string(), "ct(commit)");
        regs.0[1] = 0x0005_0000;
        assert_eq!(
            id.resolve_zone(0, &regs).unwrap().to_string(),
            "ct(commit,zone=5)"
        );
        for bad in [
            "zone=NXM_NX_REG0[0..7]",
            "zone=NXM_NX_CT_MARK[0..15]",
            "zone=70000",
        ] {
            assert!(parse_zone_src(bad).is_err(), "{bad}");
        }
    }
}
