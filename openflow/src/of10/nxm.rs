//! NXM matches (`nx_match`, Open vSwitch `include/openflow/nicira-ext.h` and
//! `lib/nx-match.c`): a list of TLVs with the same header as OXM (class,
//! field, has-mask bit, length), without the `ofp_match` header, padded to 8
//! by the message that carries it. The NXM_OF_* fields (class 0) are the
//! OpenFlow 1.0 fields; NXM_NX_* (class 1) the Nicira ones; an OXM basic
//! header is accepted too, as Open vSwitch does for fields NXM lacks.
//!
//! [`to_oxm`] and [`from_oxm`] translate between NXM and the OXM form the
//! switch side takes (`NXM_OF_IN_PORT` is 16 bits, `NXM_OF_IP_TOS` holds the
//! DSCP in its upper 6 bits, a VLAN match is one `NXM_OF_VLAN_TCI`).

use crate::bytes::{pad8, zeros};
use crate::oxm::{class, Field, OxmField};
use crate::{Error, Result};

use super::matching::{port_to_16, port_to_32};

/// NXM_OF_* (class 0) field codes and the OXM field each is.
const NXM_OF: [(u8, Field); 17] = [
    (0, Field::InPort),
    (1, Field::EthDst),
    (2, Field::EthSrc),
    (3, Field::EthType),
    (5, Field::IpDscp),
    (6, Field::IpProto),
    (7, Field::Ipv4Src),
    (8, Field::Ipv4Dst),
    (9, Field::TcpSrc),
    (10, Field::TcpDst),
    (11, Field::UdpSrc),
    (12, Field::UdpDst),
    (13, Field::Icmpv4Type),
    (14, Field::Icmpv4Code),
    (15, Field::ArpOp),
    (16, Field::ArpSpa),
    (17, Field::ArpTpa),
];

/// NXM_NX_* (class 1) field codes that are OXM basic fields in 1.3.
const NXM_NX: [(u8, Field); 11] = [
    (17, Field::ArpSha),
    (18, Field::ArpTha),
    (19, Field::Ipv6Src),
    (20, Field::Ipv6Dst),
    (21, Field::Icmpv6Type),
    (22, Field::Icmpv6Code),
    (23, Field::Ipv6NdTarget),
    (24, Field::Ipv6NdSll),
    (25, Field::Ipv6NdTll),
    (27, Field::Ipv6Flabel),
    (28, Field::IpEcn),
];

/// Parses `len` bytes of NXM TLVs at the front of `buf` (the padding after
/// them is the caller's).
pub fn parse(buf: &[u8], len: usize) -> Result<Vec<OxmField>> {
    let mut rest = buf
        .get(..len)
        .ok_or(Error::BadMatch("nx_match runs past the message"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (f, n) = OxmField::parse(rest)?;
        out.push(f);
        rest = &rest[n..];
    }
    Ok(out)
}

/// Bytes of the TLVs, without padding.
pub fn unpadded_len(fields: &[OxmField]) -> usize {
    fields.iter().map(OxmField::buffer_len).sum()
}

/// Appends the TLVs and their padding to 8; returns the unpadded length
/// (the `match_len` of the carrying message).
pub fn emit(fields: &[OxmField], out: &mut Vec<u8>) -> Result<usize> {
    for f in fields {
        f.emit(out)?;
    }
    let n = unpadded_len(fields);
    zeros(out, pad8(n));
    Ok(n)
}

/// One NXM TLV as the OXM field the switch side takes. NXM_OF_IN_PORT
/// widens to 32 bits; NXM_OF_IP_TOS (`value & 0xfc`) becomes IP_DSCP. A
/// masked NXM_OF_IP_TOS or IN_PORT is an error ([`Error::BadMatch`]).
pub fn to_oxm(f: &OxmField) -> Result<OxmField> {
    let Field::Unknown {
        class: c, field, ..
    } = f.field
    else {
        return Ok(f.clone());
    };
    let table: &[(u8, Field)] = match c {
        class::NXM_0 => &NXM_OF,
        class::NXM_1 => &NXM_NX,
        _ => return Ok(f.clone()),
    };
    let Some(&(_, oxm)) = table.iter().find(|e| e.0 == field) else {
        return Ok(f.clone());
    };
    match oxm {
        Field::InPort => {
            if f.mask.is_some() || f.value.len() != 2 {
                return Err(Error::BadMatch("NXM_OF_IN_PORT is 16 bits, not maskable"));
            }
            let p = u16::from_be_bytes([f.value[0], f.value[1]]);
            Ok(OxmField::exact(Field::InPort, &port_to_32(p).to_be_bytes()))
        }
        Field::IpDscp => {
            if f.mask.is_some() || f.value.len() != 1 {
                return Err(Error::BadMatch("NXM_OF_IP_TOS is one unmasked byte"));
            }
            Ok(OxmField::exact(Field::IpDscp, &[f.value[0] >> 2]))
        }
        _ => {
            if oxm.value_len() != Some(f.value.len()) {
                return Err(Error::BadMatch("NXM length does not match the field"));
            }
            Ok(OxmField {
                field: oxm,
                value: f.value.clone(),
                mask: f.mask.clone(),
            })
        }
    }
}

/// An NXM match as OXM fields ([`to_oxm`] on each).
pub fn list_to_oxm(fields: &[OxmField]) -> Result<Vec<OxmField>> {
    fields.iter().map(to_oxm).collect()
}

fn nxm(class: u16, code: u8, f: &OxmField, value: Vec<u8>) -> OxmField {
    OxmField {
        field: Field::from_wire(class, code, 0),
        value,
        mask: f.mask.clone(),
    }
}

/// OXM fields (as the switch side reports a match) in the NXM form Open
/// vSwitch sends in OpenFlow 1.0 (`nx_put_match`): NXM_OF_*/NXM_NX_* where
/// NXM has the field, VLAN_VID and VLAN_PCP merged into one
/// NXM_OF_VLAN_TCI, other OXM basic fields (metadata, SCTP, MPLS) kept.
/// `None` when an in_port has no 16-bit number.
pub fn from_oxm(fields: &[OxmField]) -> Option<Vec<OxmField>> {
    let mut out = Vec::new();
    let (mut tci, mut tmask, mut vlan_at, mut vid) = (0u16, 0u16, None, false);
    for f in fields {
        let u16v = |v: &[u8]| u16::from_be_bytes([v[0], v.get(1).copied().unwrap_or(0)]);
        match f.field {
            Field::InPort => {
                let p = u32::from_be_bytes(f.value.as_slice().try_into().ok()?);
                out.push(OxmField::exact(
                    Field::from_wire(class::NXM_0, 0, 0),
                    &port_to_16(p)?.to_be_bytes(),
                ));
            }
            Field::IpDscp => out.push(OxmField::exact(
                Field::from_wire(class::NXM_0, 5, 0),
                &[f.value.first().copied().unwrap_or(0) << 2],
            )),
            Field::VlanVid | Field::VlanPcp | Field::NxVlanTci => {
                vlan_at.get_or_insert(out.len());
                vid |= f.field != Field::VlanPcp;
                let (v, m) = match f.field {
                    Field::VlanVid => {
                        let m = f.mask.as_deref().map_or(0x1fff, u16v) & 0x1fff;
                        (u16v(&f.value) & m, m)
                    }
                    Field::VlanPcp => (
                        u16::from(f.value.first().copied().unwrap_or(0) & 7) << 13,
                        0xe000,
                    ),
                    _ => (u16v(&f.value), f.mask.as_deref().map_or(0xffff, u16v)),
                };
                tci |= v;
                tmask |= m;
            }
            field => {
                let of = NXM_OF
                    .iter()
                    .find(|e| e.1 == field)
                    .map(|e| (class::NXM_0, e.0));
                let nx = NXM_NX
                    .iter()
                    .find(|e| e.1 == field)
                    .map(|e| (class::NXM_1, e.0));
                match of.or(nx) {
                    Some((c, code)) => out.push(nxm(c, code, f, f.value.clone())),
                    None => out.push(f.clone()),
                }
            }
        }
    }
    if let Some(at) = vlan_at {
        if !vid {
            // A PCP alone (OXM: its prerequisite is a tag) matches tagged frames.
            tci |= 0x1000;
            tmask |= 0x1000;
        }
        let v = OxmField {
            field: Field::NxVlanTci,
            value: tci.to_be_bytes().to_vec(),
            mask: (tmask != 0xffff).then(|| tmask.to_be_bytes().to_vec()),
        };
        out.insert(at, v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `tcp,nw_src=10.0.0.0/24,tp_src=1000,vlan_tci=0x1005/0x1fff` as the
    /// real `ovs-ofctl` 3.1 sent it in NXT_FLOW_MOD (match_len 37).
    const TCP_VLAN: &str =
        "0000060208000000090410051fff00000f080a000000ffffff0000000c01060000120203e8000000";

    #[test]
    fn deconstruct_and_construct_the_capture() {
        let b = unhex(TCP_VLAN);
        let nx = parse(&b, 37).unwrap();
        let oxm = list_to_oxm(&nx).unwrap();
        assert_eq!(
            oxm,
            vec![
                OxmField::exact(Field::EthType, &[8, 0]),
                OxmField::masked(Field::NxVlanTci, &[0x10, 0x05], &[0x1f, 0xff]),
                OxmField::masked(Field::Ipv4Src, &[10, 0, 0, 0], &[255, 255, 255, 0]),
                OxmField::exact(Field::IpProto, &[6]),
                OxmField::exact(Field::TcpSrc, &[0x03, 0xe8]),
            ]
        );
        let back = from_oxm(&oxm).unwrap();
        assert_eq!(back, nx);
        let mut out = Vec::new();
        assert_eq!(emit(&back, &mut out).unwrap(), 37);
        assert_eq!(out, b);
    }

    #[test]
    fn in_port_tos_and_vlan_fields() {
        let nx = vec![
            OxmField::exact(Field::from_wire(0, 0, 0), &[0xff, 0xfe]),
            OxmField::exact(Field::from_wire(0, 5, 0), &[0x20]),
        ];
        let oxm = list_to_oxm(&nx).unwrap();
        assert_eq!(
            oxm[0],
            OxmField::exact(Field::InPort, &0xffff_fffeu32.to_be_bytes())
        );
        assert_eq!(oxm[1], OxmField::exact(Field::IpDscp, &[8]));
        assert_eq!(from_oxm(&oxm).unwrap(), nx);
        let v = from_oxm(&[
            OxmField::masked(Field::VlanVid, &[0x10, 5], &[0x1f, 0xff]),
            OxmField::exact(Field::VlanPcp, &[3]),
        ])
        .unwrap();
        assert_eq!(v, vec![OxmField::exact(Field::NxVlanTci, &[0x70, 5])]);
        assert!(to_oxm(&OxmField::masked(
            Field::from_wire(0, 0, 0),
            &[0, 1],
            &[0, 1]
        ))
        .is_err());
        assert!(parse(&[0, 0, 6, 2, 8], 5).is_err());
        assert!(parse(&[0, 0, 6, 2], 8).is_err());
        assert_eq!(
            from_oxm(&[OxmField::exact(Field::InPort, &[0, 1, 0, 0])]),
            None
        );
    }
}
