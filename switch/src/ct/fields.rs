//! The ct match fields in rule text, with OVS's names and syntax
//! (`ovs-fields(7)`, "Connection Tracking Fields"; formatting as OVS's
//! `match_format`): `ct_state`, `ct_zone`, `ct_mark`, `ct_label`,
//! `ct_nw_src`/`ct_nw_dst`, `ct_ipv6_src`/`ct_ipv6_dst`, `ct_nw_proto`,
//! `ct_tp_src`/`ct_tp_dst`.

use core::ops::Range;

use conntrack::state;

use super::action::{hex_masked, masked_u128};
use super::key::{field as cf, CtKey};
use crate::action::parse_uint;
use crate::rule::{fmt_ip, ip_value};

/// `ct_state` flag names in bit order (OVS's `CS_STATES`).
pub const STATE_NAMES: [(&str, u8); 8] = [
    ("new", state::NEW),
    ("est", state::EST),
    ("rel", state::REL),
    ("rpl", state::RPL),
    ("inv", state::INV),
    ("trk", state::TRK),
    ("snat", state::SNAT),
    ("dnat", state::DNAT),
];

/// Names of the ct match fields.
pub const NAMES: [&str; 11] = [
    "ct_state",
    "ct_zone",
    "ct_mark",
    "ct_label",
    "ct_nw_src",
    "ct_nw_dst",
    "ct_ipv6_src",
    "ct_ipv6_dst",
    "ct_nw_proto",
    "ct_tp_src",
    "ct_tp_dst",
];

/// A ct field's key range, value and mask.
pub type CtField = (Range<usize>, Vec<u8>, Vec<u8>);

fn state_bit(name: &str) -> Result<u8, String> {
    STATE_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, b)| b)
        .ok_or_else(|| {
            format!("unknown ct_state flag `{name}` (new est rel rpl inv trk snat dnat)")
        })
}

/// `ct_state=+trk+new-est` (masked flags), `ct_state=new|trk` (exactly
/// these), `ct_state=0x21/0x3f` or `ct_state=0x21` (numbers).
pub fn parse_state(s: &str) -> Result<(u8, u8), String> {
    if s.starts_with(['+', '-']) {
        let (mut v, mut m) = (0u8, 0u8);
        let mut rest = s;
        while !rest.is_empty() {
            let set = rest.starts_with('+');
            if !set && !rest.starts_with('-') {
                return Err(format!(
                    "{rest}: ct_state flags must be preceded by '+' (set) or '-' (not set)"
                ));
            }
            rest = &rest[1..];
            let end = rest.find(['+', '-']).unwrap_or(rest.len());
            let bit = state_bit(&rest[..end])?;
            if m & bit != 0 {
                return Err(format!(
                    "ct_state={s}: each ct_state flag can be specified only once"
                ));
            }
            m |= bit;
            if set {
                v |= bit;
            }
            rest = &rest[end..];
        }
        return Ok((v, m));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let (v, m) = match s.split_once('/') {
            Some((v, m)) => (
                parse_uint(v, 0xff, "ct_state")?,
                parse_uint(m, 0xff, "ct_state")?,
            ),
            None => (parse_uint(s, 0xff, "ct_state")?, 0xff),
        };
        return Ok(((v & m) as u8, m as u8));
    }
    let mut v = 0u8;
    for name in s.split('|') {
        v |= state_bit(name.trim())?;
    }
    Ok((v, 0xff))
}

fn u16_masked(s: &str, what: &str) -> Result<(u16, u16), String> {
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (parse_uint(v, 0xffff, what)?, parse_uint(m, 0xffff, what)?),
        None => (parse_uint(s, 0xffff, what)?, 0xffff),
    };
    Ok(((v & m) as u16, m as u16))
}

/// Parse ct field `name` = `val`: the [`CtKey`] ranges to set (the tuple
/// fields also set the address family byte). `None` when `name` is not a
/// ct field.
pub fn parse(name: &str, val: &str) -> Option<Result<Vec<CtField>, String>> {
    let r = match name {
        "ct_state" => {
            parse_state(val).map(|(v, m)| vec![(cf::STATE..cf::STATE + 1, vec![v], vec![m])])
        }
        "ct_zone" => {
            if val.contains('/') {
                return Some(Err("ct_zone is not maskable".into()));
            }
            parse_uint(val, 0xffff, "ct_zone")
                .map(|z| vec![(cf::ZONE, (z as u16).to_be_bytes().to_vec(), vec![0xff; 2])])
        }
        "ct_nw_proto" => {
            if val.contains('/') {
                return Some(Err("ct_nw_proto is not maskable".into()));
            }
            parse_uint(val, 0xff, "ct_nw_proto")
                .map(|p| vec![(cf::NW_PROTO..cf::NW_PROTO + 1, vec![p as u8], vec![0xff])])
        }
        "ct_mark" => masked_u128(val, u128::from(u32::MAX), "ct_mark").map(|(v, m)| {
            vec![(
                cf::MARK,
                (v as u32).to_be_bytes().to_vec(),
                (m as u32).to_be_bytes().to_vec(),
            )]
        }),
        "ct_label" => masked_u128(val, u128::MAX, "ct_label").map(|(v, m)| {
            vec![(
                cf::LABEL,
                v.to_be_bytes().to_vec(),
                m.to_be_bytes().to_vec(),
            )]
        }),
        "ct_tp_src" | "ct_tp_dst" => u16_masked(val, name).map(|(v, m)| {
            let r = if name == "ct_tp_src" {
                cf::TP_SRC
            } else {
                cf::TP_DST
            };
            vec![(r, v.to_be_bytes().to_vec(), m.to_be_bytes().to_vec())]
        }),
        "ct_nw_src" | "ct_nw_dst" | "ct_ipv6_src" | "ct_ipv6_dst" => {
            let v6 = name.starts_with("ct_ipv6");
            let r = match name {
                "ct_nw_src" => cf::NW_SRC4,
                "ct_nw_dst" => cf::NW_DST4,
                "ct_ipv6_src" => cf::NW_SRC6,
                _ => cf::NW_DST6,
            };
            ip_value(val, v6)
                .map_err(|e| format!("{name}: {e}"))
                .map(|(v, m)| {
                    let mut out = Vec::new();
                    if m.iter().any(|&b| b != 0) {
                        out.push((
                            cf::FAMILY..cf::FAMILY + 1,
                            vec![if v6 { 6 } else { 4 }],
                            vec![0xff],
                        ));
                    }
                    out.push((r, v, m));
                    out
                })
        }
        _ => return None,
    };
    Some(r)
}

/// OVS's `CT` prerequisite of the tuple fields (`is_ct_valid` on a match):
/// the match must name a state that implies a connection (`+new`, `+est`,
/// `+rel`, `+rpl`, `+snat`, `+dnat`) or `+trk-inv`.
pub fn check_prerequisites(value: &CtKey, mask: &CtKey) -> Result<(), String> {
    let tuple = [
        cf::NW_PROTO..cf::NW_PROTO + 1,
        cf::NW_SRC6,
        cf::NW_DST6,
        cf::TP_SRC,
        cf::TP_DST,
    ]
    .iter()
    .any(|r| mask.as_bytes()[r.clone()].iter().any(|&b| b != 0));
    if !tuple {
        return Ok(());
    }
    let (v, m) = (value.state(), mask.state());
    let valid = state::NEW | state::EST | state::REL | state::RPL | state::SNAT | state::DNAT;
    if v & valid != 0 || (v & state::TRK != 0 && m & state::INV != 0 && v & state::INV == 0) {
        Ok(())
    } else {
        Err("ct_nw_src/dst, ct_ipv6_src/dst, ct_nw_proto and ct_tp_src/dst need a tracked \
             connection in the match (ct_state with +new, +est, +rel, +rpl, +snat, +dnat, or +trk-inv)"
            .into())
    }
}

fn fmt_state(v: u8, m: u8) -> String {
    if m == 0xff {
        if v == 0 {
            return "0".into();
        }
        return STATE_NAMES
            .iter()
            .filter(|(_, b)| v & b != 0)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join("|");
    }
    STATE_NAMES
        .iter()
        .filter(|(_, b)| m & b != 0)
        .map(|(n, b)| format!("{}{n}", if v & b != 0 { '+' } else { '-' }))
        .collect()
}

/// The ct fields of a match, in OVS's order and format (`match_format`).
pub fn format(value: &CtKey, mask: &CtKey) -> Vec<String> {
    let (vb, mb) = (value.as_bytes(), mask.as_bytes());
    let mut out = Vec::new();
    if mask.state() != 0 {
        out.push(format!(
            "ct_state={}",
            fmt_state(value.state(), mask.state())
        ));
    }
    if mask.zone() != 0 {
        out.push(format!("ct_zone={}", value.zone()));
    }
    if mask.mark() != 0 {
        out.push(format!(
            "ct_mark={}",
            hex_masked(value.mark().into(), mask.mark().into(), u32::MAX.into())
        ));
    }
    if mask.label() != 0 {
        out.push(format!(
            "ct_label={}",
            hex_masked(value.label(), mask.label(), u128::MAX)
        ));
    }
    let v6 = value.family() == 6;
    for (name4, name6, r4, r6) in [
        ("ct_nw_src", "ct_ipv6_src", cf::NW_SRC4, cf::NW_SRC6),
        ("ct_nw_dst", "ct_ipv6_dst", cf::NW_DST4, cf::NW_DST6),
    ] {
        let (name, r) = if v6 { (name6, r6) } else { (name4, r4) };
        if mb[r.clone()].iter().any(|&b| b != 0) {
            out.push(format!("{name}={}", fmt_ip(&vb[r.clone()], &mb[r])));
        }
    }
    if mask.nw_proto() != 0 {
        out.push(format!("ct_nw_proto={}", value.nw_proto()));
    }
    for (name, v, m) in [
        ("ct_tp_src", value.tp_src(), mask.tp_src()),
        ("ct_tp_dst", value.tp_dst(), mask.tp_dst()),
    ] {
        match m {
            0 => {}
            0xffff => out.push(format!("{name}={v}")),
            _ => out.push(format!("{name}={v:#x}/{m:#x}")),
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn state_syntax() {
        assert_eq!(parse_state("+trk+new-est").unwrap(), (0x21, 0x23));
        assert_eq!(parse_state("-trk").unwrap(), (0, 0x20));
        assert_eq!(parse_state("0x21/0x3f").unwrap(), (0x21, 0x3f));
        assert_eq!(parse_state("0x21").unwrap(), (0x21, 0xff));
        assert_eq!(parse_state("new|trk").unwrap(), (0x21, 0xff));
        assert!(parse_state("+trk+trk").unwrap_err().contains("only once"));
        assert!(parse_state("+bogus")
            .unwrap_err()
            .contains("unknown ct_state flag"));
        assert!(parse_state("0x100").is_err());
        assert_eq!(fmt_state(0x21, 0x23), "+new-est+trk");
        assert_eq!(fmt_state(0x21, 0xff), "new|trk");
        assert_eq!(fmt_state(0, 0xff), "0");
    }
}
