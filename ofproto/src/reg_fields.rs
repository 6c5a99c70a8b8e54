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
//! * `xxreg0..3` (NXM_NX_XXREG0..3, class 1, fields 111..114, 128 bits):
//!   matches land in the four registers each overlays; `set_field` and
//!   `load`/`move` subfields;
//! * packet fields as `load`/`move` operands (`lib/nx-match.c`): an
//!   NXAST_REG_LOAD/REG_MOVE header names NXM_OF_*/NXM_NX_* (or the OXM
//!   twin) of the field, sent back in its NXM form as `ovs-ofctl` does;
//!   errors as OVS's decoders: an unknown field OFPBAC_BAD_SET_TYPE, bits
//!   out of range OFPBAC_BAD_SET_LEN, a value wider than its bits
//!   OFPBAC_BAD_ARGUMENT, a read-only destination OFPBAC_BAD_SET_ARGUMENT;
//! * `ct(zone=NXM_NX_REG0[0..15])`: NXAST_CT's `zone_src` and 16-bit
//!   `ofs_nbits` (`decode_NXAST_RAW_CT`: the zone field must be 16 bits).

use openflow::error_msg::{bad_action, bad_match, ErrorType};
use openflow::nicira::{reg_load_decode, reg_load_ofs_nbits, NxAction, NxStack};
use openflow::oxm::{Field, OxmField};
use openflow::Action as OfAction;
use switch::action::Action;
use switch::pkt_field::PktField;
use switch::regs::{CtField, RegField, RegLoad, RegMove, Subfield, XxRegSet};
use switch::rule::Match;

use crate::error::OfError;
use crate::flow_match::MatchError;

/// True for the register match fields.
pub fn is_reg_field(f: Field) -> bool {
    matches!(
        f,
        Field::NxReg(_)
            | Field::PktReg(_)
            | Field::NxXxReg0
            | Field::NxXxReg1
            | Field::NxXxReg2
            | Field::NxXxReg3
    )
}

/// The `xxreg` an NXM_NX_XXREG field is.
fn xxreg_no(f: Field) -> Option<u8> {
    Some(match f {
        Field::NxXxReg0 => 0,
        Field::NxXxReg1 => 1,
        Field::NxXxReg2 => 2,
        Field::NxXxReg3 => 3,
        _ => return None,
    })
}

fn xxreg_field(n: u8) -> Field {
    [
        Field::NxXxReg0,
        Field::NxXxReg1,
        Field::NxXxReg2,
        Field::NxXxReg3,
    ][usize::from(n & 3)]
}

/// A big-endian value of up to 16 bytes.
fn be_u128(b: &[u8]) -> Option<u128> {
    (!b.is_empty() && b.len() <= 16).then(|| b.iter().fold(0u128, |a, &x| a << 8 | u128::from(x)))
}

/// Packet fields and their NXM `(class, field, bytes)` (`lib/meta-flow.xml`:
/// the NXM_OF_* (class 0) and NXM_NX_* (class 1) names `ovs-ofctl` prints).
const PKT_NXM: [(PktField, u16, u8, u8); 27] = [
    (PktField::InPort, 0, 0, 2),
    (PktField::EthDst, 0, 1, 6),
    (PktField::EthSrc, 0, 2, 6),
    (PktField::EthType, 0, 3, 2),
    (PktField::IpTos, 0, 5, 1),
    (PktField::IpProto, 0, 6, 1),
    (PktField::IpSrc, 0, 7, 4),
    (PktField::IpDst, 0, 8, 4),
    (PktField::TcpSrc, 0, 9, 2),
    (PktField::TcpDst, 0, 10, 2),
    (PktField::UdpSrc, 0, 11, 2),
    (PktField::UdpDst, 0, 12, 2),
    (PktField::IcmpType, 0, 13, 1),
    (PktField::IcmpCode, 0, 14, 1),
    (PktField::ArpOp, 0, 15, 2),
    (PktField::ArpSpa, 0, 16, 4),
    (PktField::ArpTpa, 0, 17, 4),
    (PktField::ArpSha, 1, 17, 6),
    (PktField::ArpTha, 1, 18, 6),
    (PktField::Ipv6Src, 1, 19, 16),
    (PktField::Ipv6Dst, 1, 20, 16),
    (PktField::IpEcn, 1, 28, 1),
    (PktField::IpTtl, 1, 29, 1),
    (PktField::VlanTci, 0, 4, 2),
    (PktField::TunId, 1, 16, 8),
    (PktField::TunSrc, 1, 31, 4),
    (PktField::TunDst, 1, 32, 4),
];

/// The packet field an OXM basic field is (the same meta-flow field as
/// its NXM twin; OXM_OF_IN_PORT (32 bits) and OXM_OF_IP_DSCP (shifted)
/// are other fields and not taken).
fn pkt_of_oxm(f: Field) -> Option<PktField> {
    Some(match f {
        Field::EthDst => PktField::EthDst,
        Field::EthSrc => PktField::EthSrc,
        Field::EthType => PktField::EthType,
        Field::IpProto => PktField::IpProto,
        Field::IpEcn => PktField::IpEcn,
        Field::NxIpTtl => PktField::IpTtl,
        Field::Ipv4Src => PktField::IpSrc,
        Field::Ipv4Dst => PktField::IpDst,
        Field::TcpSrc => PktField::TcpSrc,
        Field::TcpDst => PktField::TcpDst,
        Field::UdpSrc => PktField::UdpSrc,
        Field::UdpDst => PktField::UdpDst,
        Field::Icmpv4Type => PktField::IcmpType,
        Field::Icmpv4Code => PktField::IcmpCode,
        Field::ArpOp => PktField::ArpOp,
        Field::ArpSpa => PktField::ArpSpa,
        Field::ArpTpa => PktField::ArpTpa,
        Field::ArpSha => PktField::ArpSha,
        Field::ArpTha => PktField::ArpTha,
        Field::Ipv6Src => PktField::Ipv6Src,
        Field::Ipv6Dst => PktField::Ipv6Dst,
        Field::TunnelId => PktField::TunId,
        _ => return None,
    })
}

/// The field a 32-bit NXM/OXM header in NXAST_REG_LOAD/REG_MOVE names.
pub fn field_of_header(h: u32) -> Option<RegField> {
    let (class, code) = ((h >> 16) as u16, (h >> 9 & 0x7f) as u8);
    if let Some(e) = PKT_NXM.iter().find(|e| e.1 == class && e.2 == code) {
        return Some(RegField::Pkt(e.0));
    }
    let f = Field::from_nxm_header(h);
    reg_field(f)
        .or_else(|| pkt_of_oxm(f).map(RegField::Pkt))
        .or_else(|| ct_of_nxm(f).map(RegField::Ct))
}

/// The conntrack fields `move`/`push` read, and their NXM fields.
const CT_NXM: [(CtField, Field); 4] = [
    (CtField::State, Field::NxCtState),
    (CtField::Zone, Field::NxCtZone),
    (CtField::Mark, Field::NxCtMark),
    (CtField::Label, Field::NxCtLabel),
];

fn ct_of_nxm(f: Field) -> Option<CtField> {
    CT_NXM.iter().find(|e| e.1 == f).map(|e| e.0)
}

/// Puts a register match field into `m`.
pub fn match_to_switch(f: &OxmField, m: &mut Match) -> Result<(), MatchError> {
    if let Some(n) = xxreg_no(f.field) {
        let v = be_u128(&f.value)
            .filter(|_| f.value.len() == 16)
            .ok_or(MatchError::BadValue(f.field))?;
        let mask = match &f.mask {
            None => u128::MAX,
            Some(mk) => be_u128(mk)
                .filter(|_| mk.len() == 16)
                .ok_or(MatchError::BadMask(f.field))?,
        };
        if v & !mask != 0 {
            return Err(MatchError::BadValue(f.field));
        }
        let i = usize::from(n) * 4;
        for j in 0..4 {
            let sh = 96 - 32 * j;
            m.set_reg(i + j, (v >> sh) as u32, (mask >> sh) as u32, "xxreg")
                .map_err(|_| MatchError::DupField(f.field))?;
        }
        return Ok(());
    }
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
        f => xxreg_no(f).map(RegField::XXReg),
    }
}

fn to_field(f: RegField) -> Option<Field> {
    Some(match f {
        RegField::Reg(n) => Field::NxReg(n),
        RegField::XReg(n) => Field::PktReg(n),
        RegField::XXReg(n) => xxreg_field(n),
        RegField::Metadata => Field::Metadata,
        RegField::Pkt(_) | RegField::Ct(_) => return None,
    })
}

/// The 32-bit header NXAST_REG_LOAD/REG_MOVE/CT carry for a field (a
/// packet field's NXM form, `nx_put_mff_header` with version 0).
pub fn header(f: RegField) -> u32 {
    if let RegField::Ct(c) = f {
        let e = CT_NXM.iter().find(|e| e.0 == c).expect("every ct field");
        return e.1.nxm_header().expect("NXM_NX_CT_* are NXM fields");
    }
    if let RegField::Pkt(p) = f {
        let e = PKT_NXM
            .iter()
            .find(|e| e.0 == p)
            .expect("every packet field has an NXM header");
        return u32::from(e.1) << 16 | u32::from(e.2) << 9 | u32::from(e.3);
    }
    to_field(f)
        .and_then(|f| f.header32())
        .expect("register fields have 4-byte headers")
}

/// Which action a wire subfield comes from: OVS's decoders differ in the
/// error for an unknown field (`nx_pull_header__`: NXAST_REG_LOAD's
/// destination is read as an action field, OFPBAC_BAD_SET_TYPE;
/// NXAST_REG_MOVE's and NXAST_CT's as match fields, OFPBMC_BAD_FIELD).
#[derive(Clone, Copy, PartialEq)]
enum From {
    Load,
    MoveSrc,
    MoveDst,
}

/// A subfield from the wire, checked as OVS's decoders
/// (`nx_pull_header__`, `mf_check__`, `mf_check_dst`).
fn subfield(h: u32, ofs: u16, n_bits: u16, from: From) -> Result<Subfield, OfError> {
    let dst = from != From::MoveSrc;
    let rf = field_of_header(h).ok_or_else(|| {
        let (ty, code) = match from {
            From::Load => (ErrorType::BadAction, bad_action::BAD_SET_TYPE),
            From::MoveSrc | From::MoveDst => (ErrorType::BadMatch, bad_match::BAD_FIELD),
        };
        OfError::new(
            ty,
            code,
            format!(
                "{:?} (NXM header {h:#010x}): not a field load/move supports (registers, metadata, Ethernet/ARP/IPv4/IPv6/TCP/UDP/ICMP header fields)",
                Field::from_nxm_header(h)
            ),
        )
    })?;
    let sf = Subfield::new(rf, u32::from(ofs), u32::from(n_bits))
        .map_err(|e| OfError::action(bad_action::BAD_SET_LEN, e))?;
    if let (true, RegField::Pkt(p)) = (dst, rf) {
        if !p.writable() {
            return Err(OfError::action(
                bad_action::BAD_SET_ARGUMENT,
                format!("destination field {} is not writable", p.nxm_name()),
            ));
        }
    }
    if let (true, RegField::Ct(c)) = (dst, rf) {
        return Err(OfError::action(
            bad_action::BAD_SET_ARGUMENT,
            format!(
                "destination field {} is not writable outside ct(commit,exec(...))",
                c.nxm_name()
            ),
        ));
    }
    Ok(sf)
}

/// The packet field an OFPAT_SET_FIELD in NXM form names that the
/// switch keeps as a [`RegLoad`] (OVS takes NXM headers in a set-field;
/// `ovs-ofctl -O OpenFlow13` sends `set_field:N->in_port` as
/// NXM_OF_IN_PORT and `set_field:V->vlan_tci` as NXM_OF_VLAN_TCI, the two
/// fields having no OXM form).
fn nxm_set_field(f: Field) -> Option<PktField> {
    match f {
        Field::Unknown {
            class: 0, field: 0, ..
        } => Some(PktField::InPort),
        Field::NxVlanTci => Some(PktField::VlanTci),
        _ => None,
    }
}

/// The OFPAT_SET_FIELD field of a whole-field `set_field` the switch keeps
/// as a [`RegLoad`] of a packet field.
fn nxm_set_field_of(p: PktField) -> Option<Field> {
    match p {
        PktField::InPort => Some(Field::Unknown {
            class: 0,
            field: 0,
            experimenter: 0,
        }),
        PktField::VlanTci => Some(Field::NxVlanTci),
        _ => None,
    }
}

/// An unmasked OFPAT_SET_FIELD of a register, `xreg`, `xxreg`,
/// `metadata`, NXM_OF_IN_PORT or NXM_OF_VLAN_TCI; `None` for other fields.
pub fn set_field_to_switch(f: &OxmField) -> Option<Result<Action, OfError>> {
    if let Some(p) = nxm_set_field(f.field) {
        return Some((|| {
            if f.mask.is_some() || f.value.len() != usize::from(p.bits() / 8) {
                // OVS's nx_pull_entry: a masked or wrong-length entry of a
                // field that is not maskable.
                return Err(OfError::action(
                    bad_action::BAD_SET_ARGUMENT,
                    format!("set_field of {}: bad length or mask", p.mf_name()),
                ));
            }
            let v = be_u128(&f.value).unwrap_or(0) as u64;
            RegLoad::new(Subfield::whole(RegField::Pkt(p)), v, true)
                .map(Action::SetReg)
                .map_err(bad_arg)
        })());
    }
    let rf = reg_field(f.field)?;
    Some((|| {
        let v = be_u128(&f.value).ok_or_else(|| bad_arg(format!("bad set_field value {f:?}")))?;
        if let RegField::XXReg(n) = rf {
            return XxRegSet::new(n, v).map(Action::SetXxReg).map_err(bad_arg);
        }
        let v = u64::try_from(v).map_err(|_| {
            OfError::action(
                bad_action::BAD_SET_ARGUMENT,
                format!("set_field of {v:#x}: values above 64 bits are not supported"),
            )
        })?;
        RegLoad::new(Subfield::whole(rf), v, true)
            .map(Action::SetReg)
            .map_err(bad_arg)
    })())
}

/// NXAST_REG_LOAD / NXAST_REG_MOVE / NXAST_STACK_PUSH / NXAST_STACK_POP;
/// `None` for other actions and for
/// loads of `ct_mark`/`ct_label` (only valid inside `ct`).
pub fn nx_to_switch(a: &NxAction) -> Option<Result<Action, OfError>> {
    match *a {
        NxAction::RegLoad {
            ofs_nbits,
            dst,
            value,
        } => {
            if matches!(
                Field::from_nxm_header(dst),
                Field::NxCtMark | Field::NxCtLabel
            ) {
                return None;
            }
            let (ofs, n) = reg_load_decode(ofs_nbits);
            Some(subfield(dst, ofs, n, From::Load).and_then(|sf| {
                // OVS's decode_NXAST_RAW_REG_LOAD: the value must fit
                // (OFPBAC_BAD_ARGUMENT).
                RegLoad::new(sf, value, false)
                    .map(Action::SetReg)
                    .map_err(bad_arg)
            }))
        }
        // decode_stack_action: the field read as a match field, a push's
        // checked as a source, a pop's as a destination.
        NxAction::StackPush(st) => {
            Some(subfield(st.field, st.ofs, st.n_bits, From::MoveSrc).map(Action::StackPush))
        }
        NxAction::StackPop(st) => {
            Some(subfield(st.field, st.ofs, st.n_bits, From::MoveDst).map(Action::StackPop))
        }
        NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        } => Some((|| {
            Ok(Action::Move(RegMove {
                src: subfield(src, src_ofs, n_bits, From::MoveSrc)?,
                dst: subfield(dst, dst_ofs, n_bits, From::MoveDst)?,
            }))
        })()),
        _ => None,
    }
}

/// The OpenFlow form of a register action (the form it was given in).
pub fn action_from_switch(a: &Action) -> Option<OfAction> {
    Some(match *a {
        Action::SetReg(l) if l.set_field => {
            if let RegField::Pkt(p) = l.dst.field {
                let f = nxm_set_field_of(p)?;
                let v = l.value().to_be_bytes();
                return Some(OfAction::SetField(OxmField::exact(
                    f,
                    &v[8 - usize::from(p.bits() / 8)..],
                )));
            }
            let f = to_field(l.dst.field)?;
            let v = l.value();
            OfAction::SetField(match l.dst.field.bits() {
                32 => OxmField::exact(f, &(v as u32).to_be_bytes()),
                128 => OxmField::exact(f, &u128::from(v).to_be_bytes()),
                _ => OxmField::exact(f, &v.to_be_bytes()),
            })
        }
        Action::SetXxReg(x) => OfAction::SetField(OxmField::exact(
            xxreg_field(x.reg()),
            &x.value().to_be_bytes(),
        )),
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
        Action::StackPush(sf) => OfAction::Nicira(NxAction::StackPush(stack(sf))),
        Action::StackPop(sf) => OfAction::Nicira(NxAction::StackPop(stack(sf))),
        _ => return None,
    })
}

/// The wire body of `push:`/`pop:` a subfield.
fn stack(sf: Subfield) -> NxStack {
    NxStack {
        ofs: u16::from(sf.ofs),
        field: header(sf.field),
        n_bits: u16::from(sf.n_bits),
    }
}

/// NXAST_CT's `zone_src`/`ofs_nbits` → the switch's zone field.
pub fn zone_src_to_switch(zone_src: u32, ofs_nbits: u16) -> Result<Subfield, OfError> {
    let (ofs, n) = reg_load_decode(ofs_nbits);
    if n != 16 {
        // decode_NXAST_RAW_CT: "zone bit count %d is not 16".
        return Err(bad_arg(format!("ct: zone field of {n} bits (must be 16)")));
    }
    let z = subfield(zone_src, ofs, n, From::MoveSrc).map_err(|e| bad_arg(e.why))?;
    if !z.field.is_reg() {
        return Err(bad_arg(format!(
            "ct: zone from {z}: only registers and metadata here"
        )));
    }
    Ok(z)
}

/// An ARP/ICMP set-field as NXAST_REG_LOAD of its NXM field (OpenFlow 1.0
/// has no set_field; OVS's `set_field_to_nxast`).
pub fn pkt_set_as_reg_load(a: &Action) -> Option<NxAction> {
    let p = a.pkt_field_written()?;
    let v: u64 = match *a {
        Action::SetArpOp(o) => u64::from(o),
        Action::SetArpSpa(x) | Action::SetArpTpa(x) => u64::from(u32::from_be_bytes(x)),
        Action::SetArpSha(m) | Action::SetArpTha(m) => {
            m.iter().fold(0, |a, &b| a << 8 | u64::from(b))
        }
        Action::SetIcmpType(t) | Action::SetIcmpCode(t) => u64::from(t),
        _ => return None,
    };
    Some(NxAction::RegLoad {
        ofs_nbits: reg_load_ofs_nbits(0, u16::from(p.bits())),
        dst: header(RegField::Pkt(p)),
        value: v,
    })
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

    /// Each action text goes to OpenFlow (SET_FIELD or a Nicira action)
    /// and back to the same action, printed as it was written.
    fn assert_wire_round_trip(texts: &[&str]) {
        for text in texts {
            let a: Action = text.parse().unwrap();
            let of = action_from_switch(&a).unwrap();
            let back = match &of {
                OfAction::SetField(f) => set_field_to_switch(f).unwrap().unwrap(),
                OfAction::Nicira(n) => nx_to_switch(n).unwrap().unwrap(),
                _ => panic!("{of:?}"),
            };
            assert_eq!(back, a, "{text}");
            assert_eq!(back.to_string(), *text);
        }
    }

    #[test]
    fn actions_round_trip_in_their_form() {
        assert_wire_round_trip(&[
            "load:0x7->NXM_NX_REG0[0..15]",
            "load:0->NXM_NX_REG15[]",
            "load:0xdeadbeef12->OXM_OF_PKT_REG3[0..39]",
            "load:0x1->OXM_OF_METADATA[63]",
            "set_field:0x5->reg0",
            "set_field:0x1122334455667788->xreg7",
            "set_field:0x9->metadata",
            "move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31]",
            "move:OXM_OF_PKT_REG0[]->OXM_OF_METADATA[]",
        ]);
    }

    #[test]
    fn packet_fields_and_xxregs_round_trip_on_the_wire() {
        assert_wire_round_trip(&[
            "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
            "load:0x2->NXM_OF_ARP_OP[]",
            "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]",
            "load:0xa000001->NXM_OF_ARP_SPA[]",
            "move:NXM_OF_IN_PORT[]->NXM_NX_REG14[0..15]",
            "move:NXM_NX_REG0[]->NXM_OF_IP_DST[]",
            "load:0xff->NXM_NX_IP_TTL[]",
            "load:0->NXM_OF_ICMP_TYPE[]",
            "move:NXM_NX_IPV6_SRC[]->NXM_NX_XXREG1[]",
            "load:0x1->NXM_NX_XXREG3[100..127]",
            "set_field:0x5->xxreg2",
            "move:NXM_OF_TCP_SRC[0..7]->NXM_OF_UDP_DST[8..15]",
            "move:NXM_NX_CT_LABEL[32..79]->NXM_OF_ETH_DST[]",
            "move:NXM_NX_CT_MARK[]->NXM_NX_REG0[]",
            "move:NXM_NX_CT_ZONE[]->NXM_NX_REG1[0..15]",
            "push:NXM_NX_CT_STATE[]",
            "move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[]",
            "move:NXM_NX_TUN_IPV4_SRC[]->NXM_NX_REG1[]",
            "push:NXM_NX_TUN_IPV4_DST[]",
        ]);
        // The ct and tunnel fields' NXM headers (nicira-ext.h), read only
        // here.
        let h = |s: &str| header(Subfield::parse(s).unwrap().field);
        assert_eq!(h("NXM_NX_TUN_ID[]"), 0x0001_2008);
        assert_eq!(h("NXM_NX_CT_MARK[]"), 0x0001_d604);
        assert_eq!(h("NXM_NX_CT_LABEL[]"), 0x0001_d810);
        let into_mark = NxAction::RegMove {
            n_bits: 32,
            src_ofs: 0,
            dst_ofs: 0,
            src: 0x0001_0004,
            dst: 0x0001_d604,
        };
        let e = nx_to_switch(&into_mark).unwrap().unwrap_err();
        assert_eq!(e.code, bad_action::BAD_SET_ARGUMENT);
        // NXM headers as ovs-ofctl puts them (nicira-ext.h).
        let h = |s: &str| header(Subfield::parse(s).unwrap().field);
        assert_eq!(h("NXM_OF_ETH_SRC[]"), 0x0000_0406);
        assert_eq!(h("NXM_OF_ARP_OP[]"), 0x0000_1e02);
        assert_eq!(h("NXM_NX_ARP_THA[]"), 0x0001_2406);
        assert_eq!(h("NXM_NX_IP_TTL[]"), 0x0001_3a01);
        assert_eq!(h("NXM_NX_XXREG0[]"), 0x0001_de10);
        // The OXM twin of a field is the same field.
        let oxm_eth_src = Field::EthSrc.header32().unwrap();
        assert_eq!(
            field_of_header(oxm_eth_src),
            Some(RegField::Pkt(PktField::EthSrc))
        );
        // An ARP set_field goes to OpenFlow 1.0 as a REG_LOAD.
        let l = pkt_set_as_reg_load(&"set_field:2->arp_op".parse().unwrap()).unwrap();
        assert_eq!(
            nx_to_switch(&l).unwrap().unwrap().to_string(),
            "load:0x2->NXM_OF_ARP_OP[]"
        );
    }

    /// `set_field:5->in_port` as `ovs-ofctl -O OpenFlow13` sends it: an
    /// OFPAT_SET_FIELD of NXM_OF_IN_PORT (MFF_IN_PORT has no OXM form).
    static SET_IN_PORT_5: [u8; 16] = [
        0x00, 0x19, 0x00, 0x10, // OFPAT_SET_FIELD, 16 bytes
        0x00, 0x00, 0x00, 0x02, // NXM_OF_IN_PORT, 2 bytes
        0x00, 0x05, // port 5
        0, 0, 0, 0, 0, 0, // padding
    ];

    #[test]
    fn set_field_in_port_vlan_tci_and_xxreg_parse_and_emit_as_ovs() {
        let (of, n) = OfAction::parse(&SET_IN_PORT_5).unwrap();
        assert_eq!(n, SET_IN_PORT_5.len());
        let OfAction::SetField(f) = &of else {
            panic!("{of:?}")
        };
        let a = set_field_to_switch(f).unwrap().unwrap();
        assert_eq!(a.to_string(), "set_field:5->in_port");
        assert_eq!(a, "set_field:5->in_port".parse().unwrap());
        let back = action_from_switch(&a).unwrap();
        let mut out = Vec::new();
        back.emit(&mut out).unwrap();
        assert_eq!(out, SET_IN_PORT_5);
        // set_field:0x7007->vlan_tci: SET_FIELD of NXM_OF_VLAN_TCI.
        let vlan: [u8; 16] = [
            0x00, 0x19, 0x00, 0x10, 0x00, 0x00, 0x08, 0x02, 0x70, 0x07, 0, 0, 0, 0, 0, 0,
        ];
        let (of, _) = OfAction::parse(&vlan).unwrap();
        let OfAction::SetField(v) = &of else {
            panic!("{of:?}")
        };
        let a = set_field_to_switch(v).unwrap().unwrap();
        assert_eq!(a.to_string(), "set_field:0x7007->vlan_tci");
        let mut out = Vec::new();
        action_from_switch(&a).unwrap().emit(&mut out).unwrap();
        assert_eq!(out, vlan);
        // A 128-bit set_field of NXM_NX_XXREG1 (class 1, field 112).
        let mut xx = vec![0x00, 0x19, 0x00, 0x18, 0x00, 0x01, 0xe0, 0x10];
        xx.extend_from_slice(&0x1122_3344_5566_7788_99aa_bbcc_0a00_0063u128.to_be_bytes());
        let (of, _) = OfAction::parse(&xx).unwrap();
        let OfAction::SetField(v) = &of else {
            panic!("{of:?}")
        };
        let a = set_field_to_switch(v).unwrap().unwrap();
        assert_eq!(
            a.to_string(),
            "set_field:0x112233445566778899aabbcc0a000063->xxreg1"
        );
        let mut out = Vec::new();
        action_from_switch(&a).unwrap().emit(&mut out).unwrap();
        assert_eq!(out, xx);
        // A masked or wider NXM_OF_IN_PORT is refused.
        let mut wide = f.clone();
        wide.value = vec![0, 0, 0, 5];
        assert!(set_field_to_switch(&wide).unwrap().is_err());
    }

    #[test]
    fn malformed_loads_and_moves_get_ovs_errors() {
        let load = |dst: u32, ofs: u16, n: u16, value: u64| NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(ofs, n),
            dst,
            value,
        };
        let mv = |src: u32, dst: u32, n_bits: u16, src_ofs: u16, dst_ofs: u16| NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        };
        let code = |a: NxAction| nx_to_switch(&a).unwrap().unwrap_err().code;
        let (eth, ttl, ethtype) = (0x0000_0406, 0x0001_3a01, 0x0000_0602);
        // Unknown field (class 0, field 99): OFPBAC_BAD_SET_TYPE.
        assert_eq!(code(load(0x0000_c604, 0, 8, 1)), bad_action::BAD_SET_TYPE);
        // ... but as a move's source or destination OFPBMC_BAD_FIELD (OVS
        // reads REG_MOVE's headers as match fields).
        let e = nx_to_switch(&mv(0x0000_c604, eth, 8, 0, 0))
            .unwrap()
            .unwrap_err();
        assert_eq!((e.ty, e.code), (ErrorType::BadMatch, bad_match::BAD_FIELD));
        // Bits beyond the field: OFPBAC_BAD_SET_LEN.
        assert_eq!(code(load(ttl, 4, 8, 1)), bad_action::BAD_SET_LEN);
        assert_eq!(code(mv(eth, ttl, 16, 0, 0)), bad_action::BAD_SET_LEN);
        assert_eq!(code(mv(eth, eth, 0, 0, 0)), bad_action::BAD_SET_LEN);
        // A value wider than its bits: OFPBAC_BAD_ARGUMENT.
        assert_eq!(code(load(ttl, 0, 8, 0x100)), bad_action::BAD_ARGUMENT);
        // A read-only destination: OFPBAC_BAD_SET_ARGUMENT.
        assert_eq!(code(load(ethtype, 0, 16, 1)), bad_action::BAD_SET_ARGUMENT);
        assert_eq!(
            code(mv(eth, ethtype, 16, 0, 0)),
            bad_action::BAD_SET_ARGUMENT
        );
        // ... but a read-only field is a fine source.
        assert!(nx_to_switch(&mv(ethtype, 0x0001_0004, 16, 0, 0))
            .unwrap()
            .is_ok());
    }

    #[test]
    fn xxreg_matches_land_in_four_registers() {
        let v: u128 = 0x0000_0000_0000_0002_0000_0003_0000_0004;
        let f = OxmField::masked(
            Field::NxXxReg1,
            &v.to_be_bytes(),
            &(u128::MAX >> 32).to_be_bytes(),
        );
        let mut m = Match::ANY;
        match_to_switch(&f, &mut m).unwrap();
        assert_eq!(&m.reg_value.0[4..8], &[0, 2, 3, 4]);
        assert_eq!(&m.reg_mask.0[4..8], &[0, u32::MAX, u32::MAX, u32::MAX]);
        let bad = OxmField::exact(Field::NxXxReg0, &[1; 8]);
        let mut m = Match::ANY;
        assert!(match_to_switch(&bad, &mut m).is_err());
    }

    #[test]
    fn wire_checks() {
        // A load whose value does not fit; a move from a ct field is taken.
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
        assert_eq!(
            nx_to_switch(&mv).unwrap().unwrap().to_string(),
            "move:NXM_NX_CT_MARK[0..15]->NXM_NX_REG0[0..15]"
        );
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
