//! The Nicira `ct` action (NXAST_CT with its nested NXAST_NAT, set-field
//! and reg-load) ↔ the switch's [`Action::Ct`], and `ct_clear`.
//!
//! OVS's rules (`lib/ofp-actions.c`): `decode_NXAST_RAW_CT` /
//! `decode_NXAST_RAW_NAT` (flags, ranges; [`Ct::check`], [`Nat::check`]),
//! `ofpacts_verify_nested` (inside `ct` only `nat` and writes of `ct_mark` /
//! `ct_label`; `nat` and those writes only inside `ct`), all answered with
//! the code OVS uses. A zone taken from a register (`zone=NXM_NX_REG0[0..15]`)
//! is NXAST_CT's `zone_src` (see [`crate::reg_fields`]). What OVS has and
//! this switch does not — application-layer gateways
//! (`alg=ftp|tftp`) — is refused with OFPBAC_BAD_ARGUMENT.
//!
//! Back to OpenFlow, a spec is encoded as `ovs-ofctl` encodes the same text:
//! the `nat` first, then `ct_mark`, then `ct_label`; a whole-field write as
//! OFPAT_SET_FIELD, a masked one as one NXAST_REG_LOAD per run of mask bits
//! of at most 64 bits (OVS's `set_field_to_nxast` / `next_load_segment`),
//! so `ovs-ofctl dump-flows` prints what it prints against OVS.

use std::net::IpAddr;

use conntrack::{CtSpec, NatKind, NatRange, NatSpec};
use openflow::error_msg::bad_action;
use openflow::nicira::{reg_load_decode, reg_load_ofs_nbits, NxAction};
use openflow::nx_ct::{ct_flags, nat_flags, Ct, Nat, RECIRC_NONE};
use openflow::oxm::{Field, OxmField};
use openflow::Action as OfAction;
use switch::action::Action;
use switch::ct::CtId;

use crate::error::OfError;

fn bad_arg(why: impl Into<String>) -> OfError {
    OfError::action(bad_action::BAD_ARGUMENT, why)
}

/// `(value, mask)` written over `slot`'s (later writes win on their bits).
fn merge(slot: &mut Option<(u128, u128)>, v: u128, m: u128) {
    let (ov, om) = slot.unwrap_or((0, 0));
    *slot = Some(((ov & !m) | (v & m), om | m));
}

/// The bits of a `width`-bit field a subfield `[ofs .. ofs + n_bits - 1]`
/// covers, or `None` when it does not fit.
fn subfield_mask(ofs: u16, n_bits: u16, width: u32) -> Option<u128> {
    let (ofs, n) = (u32::from(ofs), u32::from(n_bits));
    if ofs + n > width {
        return None;
    }
    let ones = if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    };
    Some(ones << ofs)
}

/// Where a nested write of `field` lands: (mark, label) slots.
struct Exec {
    mark: Option<(u128, u128)>,
    label: Option<(u128, u128)>,
}

impl Exec {
    fn slot(&mut self, f: Field) -> Option<(&mut Option<(u128, u128)>, u32)> {
        match f {
            Field::NxCtMark => Some((&mut self.mark, 32)),
            Field::NxCtLabel => Some((&mut self.label, 128)),
            _ => None,
        }
    }

    /// A nested OFPAT_SET_FIELD (whole field, or masked in OpenFlow 1.5 form).
    fn set_field(&mut self, f: &OxmField) -> Result<(), OfError> {
        let (slot, width) = self.slot(f.field).ok_or_else(|| {
            bad_arg(format!(
                "ct action doesn't support nested modification of {:?}",
                f.field
            ))
        })?;
        let be = |b: &[u8]| b.iter().fold(0u128, |a, &x| a << 8 | u128::from(x));
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        let m = f.mask.as_deref().map_or(all, be);
        merge(slot, be(&f.value) & m, m);
        Ok(())
    }

    /// A nested NXAST_REG_LOAD of a subfield of ct_mark / ct_label.
    fn reg_load(&mut self, ofs_nbits: u16, dst: u32, value: u64) -> Result<(), OfError> {
        let field = Field::from_nxm_header(dst);
        let (slot, width) = self.slot(field).ok_or_else(|| {
            bad_arg(format!(
                "ct action doesn't support nested modification of {field:?}"
            ))
        })?;
        let (ofs, n_bits) = reg_load_decode(ofs_nbits);
        let m = subfield_mask(ofs, n_bits, width).ok_or_else(|| {
            bad_arg(format!(
                "load to {field:?} bits {ofs}+{n_bits} out of range"
            ))
        })?;
        // OVS's decode_NXAST_RAW_REG_LOAD: the value must fit in n_bits.
        if n_bits < 64 && value >> n_bits != 0 {
            return Err(bad_arg("load value wider than its destination"));
        }
        merge(slot, u128::from(value) << ofs, m);
        Ok(())
    }
}

/// NXAST_NAT → the switch's [`NatSpec`] (after [`Nat::check`]).
fn nat_to_switch(n: &Nat) -> Result<NatSpec, OfError> {
    n.check().map_err(bad_arg)?;
    let kind = if n.flags & nat_flags::SRC != 0 {
        NatKind::Src
    } else if n.flags & nat_flags::DST != 0 {
        NatKind::Dst
    } else {
        NatKind::Existing
    };
    let addrs = match (n.ipv4_min, n.ipv6_min) {
        (Some(a), _) => Some((IpAddr::V4(a), IpAddr::V4(n.ipv4_max.unwrap_or(a)))),
        (_, Some(a)) => Some((IpAddr::V6(a), IpAddr::V6(n.ipv6_max.unwrap_or(a)))),
        _ => None,
    };
    let range = addrs.map(|(addr_min, addr_max)| {
        let port_min = n.proto_min.unwrap_or(0);
        NatRange {
            addr_min,
            addr_max,
            port_min,
            port_max: n.proto_max.unwrap_or(port_min),
        }
    });
    let keep = nat_flags::PERSISTENT | nat_flags::PROTO_HASH | nat_flags::PROTO_RANDOM;
    Ok(NatSpec {
        kind,
        range,
        flags: (n.flags & keep) as u8,
    })
}

/// NXAST_CT → [`Action::Ct`].
pub fn ct_to_switch(c: &Ct) -> Result<Action, OfError> {
    c.check().map_err(bad_arg)?;
    let zone_src = match c.zone_src {
        0 => None,
        h => Some(crate::reg_fields::zone_src_to_switch(h, c.zone)?),
    };
    if c.alg != 0 {
        return Err(bad_arg(format!(
            "ct alg={} (application layer gateways) is not supported",
            c.alg
        )));
    }
    let mut spec = CtSpec {
        zone: if zone_src.is_some() { 0 } else { c.zone },
        table: (c.recirc_table != RECIRC_NONE).then_some(c.recirc_table),
        commit: c.flags & ct_flags::COMMIT != 0,
        force: c.flags & ct_flags::FORCE != 0,
        ..CtSpec::default()
    };
    let mut exec = Exec {
        mark: None,
        label: None,
    };
    for a in &c.actions {
        match a {
            OfAction::Nicira(NxAction::Nat(n)) => {
                if spec.nat.is_some() {
                    return Err(bad_arg("ct with more than one nat"));
                }
                spec.nat = Some(nat_to_switch(n)?);
            }
            OfAction::SetField(f) => exec.set_field(f)?,
            OfAction::Nicira(NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            }) => exec.reg_load(*ofs_nbits, *dst, *value)?,
            other => {
                return Err(bad_arg(format!(
                    "ct action doesn't support nested action {other:?}"
                )))
            }
        }
    }
    spec.set_mark = exec.mark.map(|(v, m)| (v as u32, m as u32));
    spec.set_label = exec.label;
    CtId::intern_zone_src(spec, zone_src)
        .map(Action::Ct)
        .map_err(bad_arg)
}

/// The error for `nat` or a write of ct_mark / ct_label outside `ct`
/// (OVS's `ofpacts_verify_nested`: OFPBAC_BAD_SET_ARGUMENT).
pub fn outside_ct(what: &str) -> OfError {
    OfError::action(
        bad_action::BAD_SET_ARGUMENT,
        format!("{what} is allowed only inside a ct action"),
    )
}

/// NatSpec → NXAST_NAT, as `ovs-ofctl` encodes the same text (a max only
/// when it differs from the min).
fn nat_from_switch(n: &NatSpec) -> Nat {
    let kind = match n.kind {
        NatKind::Src => nat_flags::SRC,
        NatKind::Dst => nat_flags::DST,
        NatKind::Existing => 0,
    };
    let mut out = Nat {
        flags: kind | u16::from(n.flags),
        ..Nat::default()
    };
    if let Some(r) = n.range {
        match (r.addr_min, r.addr_max) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                out.ipv4_min = Some(a);
                out.ipv4_max = (b != a).then_some(b);
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                out.ipv6_min = Some(a);
                out.ipv6_max = (b != a).then_some(b);
            }
            // validate() keeps one family per range.
            _ => {}
        }
        if r.port_min != 0 {
            out.proto_min = Some(r.port_min);
            out.proto_max = (r.port_max != r.port_min).then_some(r.port_max);
        }
    }
    out
}

/// A write of `(value, mask)` to a `width`-bit field: one SET_FIELD for the
/// whole field, else OVS's reg-load segments (runs of mask bits from bit 0
/// up, at most 64 bits each).
fn write_field(field: Field, width: u32, v: u128, m: u128, out: &mut Vec<OfAction>) {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let bytes = (width / 8) as usize;
    if m & all == all {
        out.push(OfAction::SetField(OxmField::exact(
            field,
            &v.to_be_bytes()[16 - bytes..],
        )));
        return;
    }
    if let Some(dst) = field.nxm_header() {
        reg_loads(dst, width, v, m, out);
    }
}

/// OVS's reg-load segments of a `(value, mask)` write to the `width`-bit
/// field `dst`: one NXAST_REG_LOAD per run of mask bits, from bit 0 up, at
/// most 64 bits each.
fn reg_loads(dst: u32, width: u32, v: u128, m: u128, out: &mut Vec<OfAction>) {
    let mut ofs = 0u32;
    while ofs < width {
        if m >> ofs & 1 == 0 {
            ofs += 1;
            continue;
        }
        let mut n = 1u32;
        while ofs + n < width && n < 64 && m >> (ofs + n) & 1 == 1 {
            n += 1;
        }
        let ones = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        out.push(OfAction::Nicira(NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(ofs as u16, n as u16),
            dst,
            value: (v >> ofs) as u64 & ones,
        }));
        ofs += n;
    }
}

/// NXAST_CT's nested set-fields as OpenFlow 1.0 has them: one
/// NXAST_REG_LOAD per 64 bits of the field from bit 0 (OVS's
/// `set_field_to_nxast`, printed `load:0xab->NXM_NX_CT_MARK[]`).
pub fn nested_for_of10(c: &mut Ct) {
    let mut out = Vec::with_capacity(c.actions.len());
    for a in c.actions.drain(..) {
        let OfAction::SetField(f) = &a else {
            out.push(a);
            continue;
        };
        let Some(dst) = f.field.nxm_header() else {
            out.push(a);
            continue;
        };
        let width = 8 * f.value.len() as u32;
        let v = f
            .value
            .iter()
            .fold(0u128, |acc, &b| acc << 8 | u128::from(b));
        reg_loads(dst, width, v, u128::MAX, &mut out);
    }
    c.actions = out;
}

/// [`Action::Ct`]'s spec and zone field → NXAST_CT.
pub fn ct_from_switch_zone(s: &CtSpec, zone_src: Option<switch::regs::Subfield>) -> OfAction {
    let OfAction::Nicira(NxAction::Ct(mut c)) = ct_from_switch(s) else {
        unreachable!("ct_from_switch makes an NXAST_CT")
    };
    if let Some(z) = zone_src {
        (c.zone_src, c.zone) = crate::reg_fields::zone_src_from_switch(z);
    }
    OfAction::Nicira(NxAction::Ct(c))
}

/// [`Action::Ct`]'s spec → NXAST_CT.
pub fn ct_from_switch(s: &CtSpec) -> OfAction {
    let mut actions = Vec::new();
    if let Some(n) = &s.nat {
        actions.push(OfAction::Nicira(NxAction::Nat(nat_from_switch(n))));
    }
    if let Some((v, m)) = s.set_mark {
        write_field(Field::NxCtMark, 32, v.into(), m.into(), &mut actions);
    }
    if let Some((v, m)) = s.set_label {
        write_field(Field::NxCtLabel, 128, v, m, &mut actions);
    }
    let flags =
        if s.commit { ct_flags::COMMIT } else { 0 } | if s.force { ct_flags::FORCE } else { 0 };
    OfAction::Nicira(NxAction::Ct(Ct {
        flags,
        zone_src: 0,
        zone: s.zone,
        recirc_table: s.table.unwrap_or(RECIRC_NONE),
        alg: 0,
        actions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::nx_ct::alg;

    fn text(a: &Action) -> String {
        a.to_string()
    }

    fn ct(flags: u16, zone: u16, table: u8, actions: Vec<OfAction>) -> Ct {
        Ct {
            flags,
            zone_src: 0,
            zone,
            recirc_table: table,
            alg: 0,
            actions,
        }
    }

    /// The same `ct(...)` text through the switch's parser and through the
    /// OpenFlow encoding `ovs-ofctl` sends gives the same action, and the
    /// switch's action encodes back to those bytes' meaning.
    #[test]
    fn nested_set_fields_become_reg_loads_in_of10() {
        let a: Action = "ct(commit,exec(set_field:0xab->ct_mark,set_field:0xa000064000002aabbccddee->ct_label))"
            .parse()
            .unwrap();
        let Action::Ct(id) = a else { panic!() };
        let OfAction::Nicira(NxAction::Ct(mut c)) = ct_from_switch(id.spec()) else {
            panic!()
        };
        nested_for_of10(&mut c);
        let loads: Vec<(u16, u32, u64)> = c
            .actions
            .iter()
            .map(|a| match a {
                OfAction::Nicira(NxAction::RegLoad {
                    ofs_nbits,
                    dst,
                    value,
                }) => (*ofs_nbits, *dst, *value),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            loads,
            [
                (reg_load_ofs_nbits(0, 32), 0x0001_d604, 0xab),
                (
                    reg_load_ofs_nbits(0, 64),
                    0x0001_d810,
                    0x0000_02aa_bbcc_ddee
                ),
                (reg_load_ofs_nbits(64, 64), 0x0001_d810, 0x0a00_0064),
            ]
        );
    }

    #[test]
    fn construct_ct_like_the_rule_parser() {
        let snat = OfAction::Nicira(NxAction::Nat(Nat {
            flags: nat_flags::SRC | nat_flags::PERSISTENT | nat_flags::PROTO_RANDOM,
            ipv4_min: Some([192, 168, 1, 1].into()),
            ipv4_max: Some([192, 168, 1, 4].into()),
            proto_min: Some(5000),
            proto_max: Some(6000),
            ..Nat::default()
        }));
        let mark = OfAction::SetField(OxmField::exact(Field::NxCtMark, &[0, 0, 0, 1]));
        let label_low = OfAction::Nicira(NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(0, 8),
            dst: Field::NxCtLabel.nxm_header().unwrap(),
            value: 2,
        });
        let cases: Vec<(Ct, &str)> =
            vec![
            (ct(0, 5, 1, vec![]), "ct(table=1,zone=5)"),
            (ct(ct_flags::COMMIT, 5, RECIRC_NONE, vec![]), "ct(commit,zone=5)"),
            (
                ct(
                    ct_flags::COMMIT,
                    7,
                    RECIRC_NONE,
                    vec![snat, mark, label_low],
                ),
                "ct(commit,zone=7,nat(src=192.168.1.1-192.168.1.4:5000-6000,persistent,random),\
                 exec(set_field:0x1->ct_mark,set_field:0x2/0xff->ct_label))",
            ),
            (
                ct(0, 7, 3, vec![OfAction::Nicira(NxAction::Nat(Nat::default()))]),
                "ct(table=3,zone=7,nat)",
            ),
            (
                ct(
                    ct_flags::COMMIT | ct_flags::FORCE,
                    0,
                    RECIRC_NONE,
                    vec![OfAction::Nicira(NxAction::Nat(Nat {
                        flags: nat_flags::SRC | nat_flags::PROTO_HASH,
                        ipv6_min: Some("2001:db8::1".parse().unwrap()),
                        ipv6_max: Some("2001:db8::5".parse().unwrap()),
                        ..Nat::default()
                    }))],
                ),
                "ct(commit,force,nat(src=2001:db8::1-2001:db8::5,hash))",
            ),
            (
                ct(
                    ct_flags::COMMIT,
                    0,
                    3,
                    vec![OfAction::Nicira(NxAction::Nat(Nat {
                        flags: nat_flags::DST,
                        ipv6_min: Some("2001:db8::1".parse().unwrap()),
                        proto_min: Some(80),
                        ..Nat::default()
                    }))],
                ),
                "ct(commit,table=3,nat(dst=[2001:db8::1]:80))",
            ),
        ];
        for (of, t) in cases {
            let a = ct_to_switch(&of).unwrap_or_else(|e| panic!("{t}: {e}"));
            let parsed: Action = t.parse().unwrap();
            assert_eq!(a, parsed, "{t}");
            let Action::Ct(id) = a else { panic!() };
            assert_eq!(
                ct_from_switch(id.spec()),
                OfAction::Nicira(NxAction::Ct(of)),
                "{t}"
            );
            assert_eq!(text(&a), text(&parsed));
        }
    }

    #[test]
    fn masked_writes_split_like_ovs() {
        // 0x00ff00ff/0x00ff00ff → [0..7] and [16..23].
        let mut out = Vec::new();
        write_field(Field::NxCtMark, 32, 0x00ab_00cd, 0x00ff_00ff, &mut out);
        let h = Field::NxCtMark.nxm_header().unwrap();
        assert_eq!(
            out,
            vec![
                OfAction::Nicira(NxAction::RegLoad {
                    ofs_nbits: reg_load_ofs_nbits(0, 8),
                    dst: h,
                    value: 0xcd
                }),
                OfAction::Nicira(NxAction::RegLoad {
                    ofs_nbits: reg_load_ofs_nbits(16, 8),
                    dst: h,
                    value: 0xab
                }),
            ]
        );
        // A 128-bit label under a 96-bit mask: 64 + 32 bits.
        let mut out = Vec::new();
        let m = (1u128 << 96) - 1;
        write_field(Field::NxCtLabel, 128, 0x1234 << 64 | 5, m, &mut out);
        assert_eq!(out.len(), 2);
        // And back: the loads rebuild value and mask.
        let mut e = Exec {
            mark: None,
            label: None,
        };
        for a in &out {
            let OfAction::Nicira(NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            }) = a
            else {
                panic!()
            };
            e.reg_load(*ofs_nbits, *dst, *value).unwrap();
        }
        assert_eq!(e.label, Some((0x1234 << 64 | 5, m)));
    }

    #[test]
    fn unsupported_and_bad_ct_get_bad_argument() {
        let code = |c: Ct| ct_to_switch(&c).unwrap_err().code;
        // zone=NXM_NX_REG0[0..15] is taken (and comes back the same) ...
        let mut c = ct(ct_flags::COMMIT, 15, RECIRC_NONE, vec![]);
        c.zone_src = Field::NxReg(0).nxm_header().unwrap();
        let a = ct_to_switch(&c).unwrap();
        assert_eq!(a.to_string(), "ct(commit,zone=NXM_NX_REG0[0..15])");
        let Action::Ct(id) = a else { panic!() };
        assert_eq!(
            ct_from_switch_zone(id.spec(), id.zone_src()),
            OfAction::Nicira(NxAction::Ct(c.clone()))
        );
        // ... a zone field of 8 bits is not (decode_NXAST_RAW_CT) ...
        c.zone = 7;
        assert_eq!(code(c), bad_action::BAD_ARGUMENT);
        // ... nor a zone from a ct field.
        let mut c = ct(ct_flags::COMMIT, 15, RECIRC_NONE, vec![]);
        c.zone_src = Field::NxCtMark.nxm_header().unwrap();
        assert_eq!(code(c), bad_action::BAD_ARGUMENT);
        // alg=ftp
        let mut c = ct(ct_flags::COMMIT, 0, RECIRC_NONE, vec![]);
        c.alg = alg::FTP;
        assert_eq!(code(c), bad_action::BAD_ARGUMENT);
        // force without commit; exec without commit; a nested output.
        assert_eq!(
            code(ct(ct_flags::FORCE, 0, RECIRC_NONE, vec![])),
            bad_action::BAD_ARGUMENT
        );
        let mark = OfAction::SetField(OxmField::exact(Field::NxCtMark, &[0, 0, 0, 1]));
        assert_eq!(
            code(ct(0, 0, RECIRC_NONE, vec![mark])),
            bad_action::BAD_ARGUMENT
        );
        let out = OfAction::output(1);
        assert_eq!(
            code(ct(ct_flags::COMMIT, 0, RECIRC_NONE, vec![out])),
            bad_action::BAD_ARGUMENT
        );
        // set_field of another field inside ct.
        let eth = OfAction::SetField(OxmField::exact(Field::EthDst, &[2, 0, 0, 0, 0, 1]));
        assert_eq!(
            code(ct(ct_flags::COMMIT, 0, RECIRC_NONE, vec![eth])),
            bad_action::BAD_ARGUMENT
        );
        // nat(src,dst) and a reversed range.
        let both = OfAction::Nicira(NxAction::Nat(Nat {
            flags: nat_flags::SRC | nat_flags::DST,
            ..Nat::default()
        }));
        assert_eq!(
            code(ct(ct_flags::COMMIT, 0, RECIRC_NONE, vec![both])),
            bad_action::BAD_ARGUMENT
        );
        let reversed = OfAction::Nicira(NxAction::Nat(Nat {
            flags: nat_flags::SRC,
            ipv4_min: Some([10, 0, 0, 9].into()),
            ipv4_max: Some([10, 0, 0, 1].into()),
            ..Nat::default()
        }));
        assert_eq!(
            code(ct(ct_flags::COMMIT, 0, RECIRC_NONE, vec![reversed])),
            bad_action::BAD_ARGUMENT
        );
        // A load past the end of ct_mark, or wider than its bits.
        let mut e = Exec {
            mark: None,
            label: None,
        };
        let h = Field::NxCtMark.nxm_header().unwrap();
        assert!(e.reg_load(reg_load_ofs_nbits(30, 4), h, 1).is_err());
        assert!(e.reg_load(reg_load_ofs_nbits(0, 4), h, 0x10).is_err());
    }
}
