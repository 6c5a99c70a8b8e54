//! OVS's registers on the wire (`lib/meta-flow.xml`, "Register Fields")
//! ↔ the switch's [`switch::regs`]:
//!
//! * matches: NXM_NX_REG0..15 (class 0x0001, fields 0..15, 32 bits,
//!   maskable) and OXM_OF_PKT_REG0..7 (class 0x8001, 64 bits: `xregN` =
//!   `reg(2N)` high, `reg(2N+1)` low); dumped as NXM_NX_REG fields, as OVS
//!   does, so `ovs-ofctl` prints `reg0=0x5/0xff`;
//! * `set_field:V->reg0` (OFPAT_SET_FIELD of the register, `xreg0`,
//!   `metadata`), `load:V->NXM_NX_REG0[a..b]` (NXAST_REG_LOAD) and
//!   `move:SRC[..]->DST[..]` (NXAST_REG_MOVE, what `ovs-ofctl -O
//!   OpenFlow13` sends for `move`, `encode_REG_MOVE`). Each comes back in
//!   the form it came in, so `dump-flows` prints what `add-flow` was given;
//! * `ct(zone=NXM_NX_REG0[0..15])`: NXAST_CT's `zone_src` and 16-bit
//!   `ofs_nbits` (`decode_NXAST_RAW_CT`: the zone field must be 16 bits).

use openflow::error_msg::bad_action;
use openflow::nicira::{reg_load_decode, reg_load_ofs_nbits, NxAction};
use openflow::oxm::{Field, OxmField};
use openflow::Action as OfAction;
use switch::action::Action;
use switch::regs::{RegField, RegLoad, RegMove, Subfield};
use switch::rule::Match;

use crate::error::OfError;
use crate::flow_match::MatchError;

/// True for the register match fields.
pub fn is_reg_field(f: Field) -> bool {
    matches!(f, Field::NxReg(_) | Field::PktReg(_))
}

/// Puts a register match field into `m`.
pub fn match_to_switch(f: &OxmField, m: &mut Match) -> Result<(), MatchError> {
    let v = f.value_u64().ok_or(MatchError::BadValue(f.field))?;
    let width = if matches!(f.field, Field::PktReg(_)) {
        64
    } else {
        32
    };
    let all = if width == 64 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    let mask = match &f.mask {
        None => all,
        Some(_) => f.mask_u64().ok_or(MatchError::BadMask(f.field))?,
    };
    if v & !mask != 0 {
        // OVS: a value bit outside the mask is OFPBMC_BAD_WILDCARDS; the
        // switch's closest code.
        return Err(MatchError::BadValue(f.field));
    }
    let bad = |_| MatchError::DupField(f.field);
    match f.field {
        Field::NxReg(n) => m
            .set_reg(usize::from(n), v as u32, mask as u32, "reg")
            .map_err(bad),
        Field::PktReg(n) => {
            let i = usize::from(n) * 2;
            m.set_reg(i, (v >> 32) as u32, (mask >> 32) as u32, "xreg")
                .map_err(bad)?;
            m.set_reg(i + 1, v as u32, mask as u32, "xreg").map_err(bad)
        }
        other => Err(MatchError::BadField(other)),
    }
}

/// The register match fields of `m` (NXM_NX_REG0..15, OVS's `nx_put_match`).
pub fn match_from_switch(m: &Match, out: &mut Vec<OxmField>) {
    for (i, (&v, &mk)) in m.reg_value.0.iter().zip(&m.reg_mask.0).enumerate() {
        let f = Field::NxReg(i as u8);
        match mk {
            0 => {}
            u32::MAX => out.push(OxmField::exact(f, &v.to_be_bytes())),
            _ => out.push(OxmField::masked(f, &v.to_be_bytes(), &mk.to_be_bytes())),
        }
    }
}

fn bad_arg(why: impl Into<String>) -> OfError {
    OfError::action(bad_action::BAD_ARGUMENT, why.into())
}

/// The register-like field an OpenFlow field names.
pub fn reg_field(f: Field) -> Option<RegField> {
    match f {
        Field::NxReg(n) if usize::from(n) < switch::regs::N_REGS => Some(RegField::Reg(n)),
        Field::PktReg(n) if usize::from(n) < switch::regs::N_XREGS => Some(RegField::XReg(n)),
        Field::Metadata => Some(RegField::Metadata),
        _ => None,
    }
}

fn to_field(f: RegField) -> Field {
    match f {
        RegField::Reg(n) => Field::NxReg(n),
        RegField::XReg(n) => Field::PktReg(n),
        RegField::Metadata => Field::Metadata,
    }
}

/// The 32-bit header NXAST_REG_LOAD/REG_MOVE/CT carry for a field.
fn header(f: RegField) -> u32 {
    to_field(f)
        .header32()
        .expect("register fields have 4-byte headers")
}

fn subfield(h: u32, ofs: u16, n_bits: u16) -> Result<Subfield, OfError> {
    let f = Field::from_nxm_header(h);
    let rf = reg_field(f).ok_or_else(|| {
        OfError::action(
            bad_action::BAD_ARGUMENT,
            format!(
                "{f:?}: only registers (NXM_NX_REG0..15, OXM_OF_PKT_REG0..7) and metadata here"
            ),
        )
    })?;
    Subfield::new(rf, u32::from(ofs), u32::from(n_bits)).map_err(bad_arg)
}

/// An unmasked OFPAT_SET_FIELD of a register, `xreg` or `metadata`;
/// `None` for other fields.
pub fn set_field_to_switch(f: &OxmField) -> Option<Result<Action, OfError>> {
    let rf = reg_field(f.field)?;
    Some((|| {
        let v = f
            .value_u64()
            .ok_or_else(|| bad_arg(format!("bad set_field value {f:?}")))?;
        RegLoad::new(Subfield::whole(rf), v, true)
            .map(Action::SetReg)
            .map_err(bad_arg)
    })())
}

/// NXAST_REG_LOAD / NXAST_REG_MOVE into a register-like field; `None`
/// for other actions (and loads of other fields).
pub fn nx_to_switch(a: &NxAction) -> Option<Result<Action, OfError>> {
    match *a {
        NxAction::RegLoad {
            ofs_nbits,
            dst,
            value,
        } => {
            reg_field(Field::from_nxm_header(dst))?;
            let (ofs, n) = reg_load_decode(ofs_nbits);
            Some(subfield(dst, ofs, n).and_then(|sf| {
                // OVS's decode_NXAST_RAW_REG_LOAD: the value must fit.
                RegLoad::new(sf, value, false)
                    .map(Action::SetReg)
                    .map_err(bad_arg)
            }))
        }
        NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        } => Some((|| {
            Ok(Action::Move(RegMove {
                src: subfield(src, src_ofs, n_bits)?,
                dst: subfield(dst, dst_ofs, n_bits)?,
            }))
        })()),
        _ => None,
    }
}

/// The OpenFlow form of a register action (the form it was given in).
pub fn action_from_switch(a: &Action) -> Option<OfAction> {
    Some(match *a {
        Action::SetReg(l) if l.set_field => {
            let f = to_field(l.dst.field);
            let v = l.value();
            OfAction::SetField(match l.dst.field.bits() {
                32 => OxmField::exact(f, &(v as u32).to_be_bytes()),
                _ => OxmField::exact(f, &v.to_be_bytes()),
            })
        }
        Action::SetReg(l) => OfAction::Nicira(NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(u16::from(l.dst.ofs), u16::from(l.dst.n_bits)),
            dst: header(l.dst.field),
            value: l.value(),
        }),
        Action::Move(m) => OfAction::Nicira(NxAction::RegMove {
            n_bits: u16::from(m.src.n_bits),
            src_ofs: u16::from(m.src.ofs),
            dst_ofs: u16::from(m.dst.ofs),
            src: header(m.src.field),
            dst: header(m.dst.field),
        }),
        _ => return None,
    })
}

/// NXAST_CT's `zone_src`/`ofs_nbits` → the switch's zone field.
pub fn zone_src_to_switch(zone_src: u32, ofs_nbits: u16) -> Result<Subfield, OfError> {
    let (ofs, n) = reg_load_decode(ofs_nbits);
    if n != 16 {
        // decode_NXAST_RAW_CT: "zone bit count %d is not 16".
        return Err(bad_arg(format!("ct: zone field of {n} bits (must be 16)")));
    }
    subfield(zone_src, ofs, n)
}

/// The switch's zone field → NXAST_CT's `(zone_src, ofs_nbits)`.
pub fn zone_src_from_switch(z: Subfield) -> (u32, u16) {
    (
        header(z.field),
        reg_load_ofs_nbits(u16::from(z.ofs), u16::from(z.n_bits)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_in_their_form() {
        for text in [
            "load:0x7->NXM_NX_REG0[0..15]",
            "load:0->NXM_NX_REG15[]",
            "load:0xdeadbeef12->OXM_OF_PKT_REG3[0..39]",
            "load:0x1->OXM_OF_METADATA[63]",
            "set_field:0x5->reg0",
            "set_field:0x1122334455667788->xreg7",
            "set_field:0x9->metadata",
            "move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31]",
            "move:OXM_OF_PKT_REG0[]->OXM_OF_METADATA[]",
        ] {
            let a: Action = text.parse().unwrap();
            let of = action_from_switch(&a).unwrap();
            let back = match &of {
                OfAction::SetField(f) => set_field_to_switch(f).unwrap().unwrap(),
                OfAction::Nicira(n) => nx_to_switch(n).unwrap().unwrap(),
                _ => panic!("{of:?}"),
            };
            assert_eq!(back, a, "{text}");
            assert_eq!(back.to_string(), text);
        }
    }

    #[test]
    fn wire_checks() {
        // A load whose value does not fit, a move of a ct field.
        let h = Field::NxReg(0).header32().unwrap();
        let load = NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(0, 8),
            dst: h,
            value: 0x100,
        };
        assert!(nx_to_switch(&load).unwrap().is_err());
        let mv = NxAction::RegMove {
            n_bits: 16,
            src_ofs: 0,
            dst_ofs: 0,
            src: Field::NxCtMark.header32().unwrap(),
            dst: h,
        };
        assert!(nx_to_switch(&mv).unwrap().is_err());
        let mv = NxAction::RegMove {
            n_bits: 40,
            src_ofs: 0,
            dst_ofs: 0,
            src: h,
            dst: h,
        };
        assert!(nx_to_switch(&mv).unwrap().is_err());
        assert!(zone_src_to_switch(h, reg_load_ofs_nbits(0, 8)).is_err());
        let z = zone_src_to_switch(h, reg_load_ofs_nbits(16, 16)).unwrap();
        assert_eq!(z.to_string(), "NXM_NX_REG0[16..31]");
        assert_eq!(zone_src_from_switch(z), (h, reg_load_ofs_nbits(16, 16)));
        // Loads of other fields are not this module's.
        let other = NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(0, 8),
            dst: Field::NxCtMark.header32().unwrap(),
            value: 1,
        };
        assert!(nx_to_switch(&other).is_none());
    }

    #[test]
    fn matches_round_trip() {
        let (m, _) = switch::rule::parse_match("reg0=0x5/0xff,reg3=0,xreg2=0x100000002").unwrap();
        let mut fields = Vec::new();
        match_from_switch(&m, &mut fields);
        assert_eq!(fields.len(), 4);
        let mut back = Match::ANY;
        for f in &fields {
            match_to_switch(f, &mut back).unwrap();
        }
        assert_eq!(back, m);
        assert_eq!(back.to_string(), "reg0=0x5/0xff,reg3=0,reg4=0x1,reg5=0x2");
        let x = OxmField::masked(
            Field::PktReg(1),
            &7u64.to_be_bytes(),
            &0xffu64.to_be_bytes(),
        );
        let mut m = Match::ANY;
        match_to_switch(&x, &mut m).unwrap();
        assert_eq!((m.reg_value.0[3], m.reg_mask.0[3]), (7, 0xff));
        let bad = OxmField::masked(Field::NxReg(0), &7u32.to_be_bytes(), &3u32.to_be_bytes());
        let mut m = Match::ANY;
        assert!(match_to_switch(&bad, &mut m).is_err());
    }
}
