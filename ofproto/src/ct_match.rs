//! The Nicira ct match fields (`NXM_NX_CT_STATE` ... `NXM_NX_CT_TP_DST`,
//! OVS's `lib/meta-flow.xml`) ↔ the ct half of the switch's match
//! ([`Match::ct_value`] / [`Match::ct_mask`], laid out in
//! [`switch::ct::key`]).
//!
//! As OVS: `ct_zone` and `ct_nw_proto` take no mask; `ct_state` is 32 bits
//! on the wire of which the 8 defined flags may be set (others:
//! OFPBMC_BAD_VALUE, OVS's `CS_SUPPORTED_MASK`), and OVS sends it back
//! with a mask of those 8 bits (`match_set_ct_state_masked`), so an exact
//! `ct_state=new|trk` travels as `0x21/0xff`; the tuple fields need a
//! `ct_state` that implies a connection (OVS's `CT` prerequisite,
//! OFPBMC_BAD_PREREQ).

use core::ops::Range;

use openflow::oxm::{Field, OxmField};
use switch::ct::key::field as cf;
use switch::rule::Match;

use crate::flow_match::MatchError;

/// The ct fields, in the order `from_switch` emits them.
const FIELDS: [Field; 11] = [
    Field::NxCtState,
    Field::NxCtZone,
    Field::NxCtMark,
    Field::NxCtLabel,
    Field::NxCtNwSrc,
    Field::NxCtNwDst,
    Field::NxCtIpv6Src,
    Field::NxCtIpv6Dst,
    Field::NxCtNwProto,
    Field::NxCtTpSrc,
    Field::NxCtTpDst,
];

/// Where a ct field lives in the ct key, and the tuple family it implies.
fn place(f: Field) -> Option<(Range<usize>, Option<u8>)> {
    Some(match f {
        Field::NxCtState => (cf::STATE..cf::STATE + 1, None),
        Field::NxCtZone => (cf::ZONE, None),
        Field::NxCtMark => (cf::MARK, None),
        Field::NxCtLabel => (cf::LABEL, None),
        Field::NxCtNwProto => (cf::NW_PROTO..cf::NW_PROTO + 1, None),
        Field::NxCtNwSrc => (cf::NW_SRC4, Some(4)),
        Field::NxCtNwDst => (cf::NW_DST4, Some(4)),
        Field::NxCtIpv6Src => (cf::NW_SRC6, Some(6)),
        Field::NxCtIpv6Dst => (cf::NW_DST6, Some(6)),
        Field::NxCtTpSrc => (cf::TP_SRC, None),
        Field::NxCtTpDst => (cf::TP_DST, None),
        _ => return None,
    })
}

/// True for the ct fields this module places.
pub fn is_ct_field(f: Field) -> bool {
    place(f).is_some()
}

/// Writes one ct field into `m` (`f` already has a value of the field's
/// length and, when masked, a mask of the same length).
pub fn to_switch(f: &OxmField, m: &mut Match) -> Result<(), MatchError> {
    let field = f.field;
    let (range, family) = place(field).ok_or(MatchError::BadField(field))?;
    let len = field.value_len().ok_or(MatchError::BadField(field))?;
    if f.value.len() != len {
        return Err(MatchError::BadValue(field));
    }
    let mask = match &f.mask {
        Some(_) if matches!(field, Field::NxCtZone | Field::NxCtNwProto) => {
            return Err(MatchError::BadMask(field))
        }
        Some(mk) if mk.len() != len => return Err(MatchError::BadMask(field)),
        Some(mk) => mk.clone(),
        None => vec![0xff; len],
    };
    // OpenFlow 1.3 §7.2.3.5: a value bit whose mask bit is 0 must be 0.
    if f.value.iter().zip(&mask).any(|(v, mk)| v & !mk != 0) {
        return Err(MatchError::BadValue(field));
    }
    let (value, mask) = if field == Field::NxCtState {
        if f.value[..3] != [0, 0, 0] {
            return Err(MatchError::BadValue(field));
        }
        (vec![f.value[3]], vec![mask[3]])
    } else {
        (f.value.clone(), mask)
    };
    let conflict = |_| MatchError::BadValue(field);
    if let Some(fam) = family.filter(|_| mask.iter().any(|&b| b != 0)) {
        m.set_ct(cf::FAMILY..cf::FAMILY + 1, &[fam], &[0xff], "ct family")
            .map_err(conflict)?;
    }
    m.set_ct(range, &value, &mask, "ct field").map_err(conflict)
}

/// OVS's `CT` prerequisite of the tuple fields, once every field is placed.
pub fn check_prerequisites(m: &Match, fields: &[OxmField]) -> Result<(), MatchError> {
    if switch::ct::fields::check_prerequisites(&m.ct_value, &m.ct_mask).is_ok() {
        return Ok(());
    }
    let tuple = fields
        .iter()
        .map(|f| f.field)
        .find(|f| {
            is_ct_field(*f)
                && !matches!(
                    f,
                    Field::NxCtState | Field::NxCtZone | Field::NxCtMark | Field::NxCtLabel
                )
        })
        .unwrap_or(Field::NxCtState);
    Err(MatchError::BadPrereq(tuple))
}

/// The ct fields of a switch match as NXM TLVs.
pub fn from_switch(m: &Match, out: &mut Vec<OxmField>) {
    if m.ct_mask.is_zero() {
        return;
    }
    let (v, mk) = (m.ct_value.as_bytes(), m.ct_mask.as_bytes());
    let v6 = v[cf::FAMILY] == 6;
    for f in FIELDS {
        let Some((r, family)) = place(f) else {
            continue;
        };
        if family.is_some_and(|fam| (fam == 6) != v6) {
            continue;
        }
        let (val, mask) = (&v[r.clone()], &mk[r]);
        if mask.iter().all(|&b| b == 0) {
            continue;
        }
        out.push(match f {
            // As OVS sends it: 32 bits, the mask always present.
            Field::NxCtState => OxmField::masked(f, &[0, 0, 0, val[0]], &[0, 0, 0, mask[0]]),
            _ if mask.iter().all(|&b| b == 0xff) => OxmField::exact(f, val),
            _ => OxmField::masked(f, val, mask),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_match;
    use crate::port_map::PortMap;

    fn rule(text: &str) -> Match {
        let r: switch::rule::RuleSpec = format!("{text},actions=drop").parse().unwrap();
        r.matcher
    }

    /// The ct matches of `openflow/tests/captures/add_ct_flows.txt`, as
    /// `ovs-ofctl` encodes them, give the switch's own parse of the text.
    #[test]
    fn construct_ct_matches_like_the_rule_parser() {
        let p = PortMap::new(Some(0));
        let ip = OxmField::exact(Field::EthType, &[0x08, 0x00]);
        let ip6 = OxmField::exact(Field::EthType, &[0x86, 0xdd]);
        let state = |v: u8, m: u8| OxmField::masked(Field::NxCtState, &[0, 0, 0, v], &[0, 0, 0, m]);
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let cases: Vec<(Vec<OxmField>, &str)> = vec![
            (vec![ip.clone(), state(0, 0x20)], "ct_state=-trk,ip"),
            (vec![ip.clone(), state(0x22, 0x22)], "ct_state=+est+trk,ip"),
            (
                vec![
                    ip.clone(),
                    state(0x22, 0x2a),
                    OxmField::exact(Field::NxCtZone, &[0, 7]),
                    OxmField::masked(Field::NxCtMark, &[0, 0, 0, 1], &[0, 0, 0, 0xff]),
                    OxmField::exact(Field::NxCtLabel, &2u128.to_be_bytes()),
                    OxmField::exact(Field::NxCtNwSrc, &[10, 0, 0, 1]),
                    OxmField::masked(Field::NxCtNwDst, &[10, 0, 0, 0], &[255, 0, 0, 0]),
                    OxmField::exact(Field::NxCtNwProto, &[6]),
                    OxmField::exact(Field::NxCtTpSrc, &1000u16.to_be_bytes()),
                    OxmField::masked(Field::NxCtTpDst, &[0, 0x50], &[0xff, 0xf0]),
                ],
                "ct_state=+est-rpl+trk,ct_zone=7,ct_mark=0x1/0xff,ct_label=0x2,ct_nw_src=10.0.0.1,\
                 ct_nw_dst=10.0.0.0/8,ct_nw_proto=6,ct_tp_src=1000,ct_tp_dst=0x50/0xfff0,ip",
            ),
            (
                vec![
                    ip6,
                    state(0xe0, 0xf0),
                    OxmField::masked(Field::NxCtLabel, &1u128.to_be_bytes(), &1u128.to_be_bytes()),
                    OxmField::exact(Field::NxCtIpv6Src, &v6("2001:db8::1")),
                    OxmField::masked(Field::NxCtIpv6Dst, &v6("2001:db8::"), &v6("ffff:ffff::")),
                ],
                "ct_state=-inv+trk+snat+dnat,ct_label=0x1/0x1,ct_ipv6_src=2001:db8::1,\
                 ct_ipv6_dst=2001:db8::/32,ipv6",
            ),
            (vec![ip, state(0x21, 0xff)], "ct_state=new|trk,ip"),
        ];
        for (fields, text) in cases {
            let m = flow_match::to_switch(&fields, &p).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m, rule(text), "{text}");
            // And back: the same TLVs (in this module's order).
            let back = flow_match::to_switch(&flow_match::from_switch(&m, &p), &p).unwrap();
            assert_eq!(back, m, "{text}");
            let mut ct = Vec::new();
            from_switch(&m, &mut ct);
            for f in &ct {
                assert!(fields.contains(f), "{text}: {f:?} not in {fields:?}");
            }
        }
    }

    #[test]
    fn bad_ct_matches_are_refused() {
        let p = PortMap::new(Some(0));
        let ip = OxmField::exact(Field::EthType, &[0x08, 0x00]);
        let go = |f: Vec<OxmField>| flow_match::to_switch(&f, &p);
        // A masked ct_zone / ct_nw_proto.
        let z = OxmField::masked(Field::NxCtZone, &[0, 1], &[0, 0xff]);
        assert_eq!(go(vec![z]), Err(MatchError::BadMask(Field::NxCtZone)));
        // ct_state bits OVS does not define.
        let s = OxmField::exact(Field::NxCtState, &[0, 0, 1, 0]);
        assert_eq!(go(vec![s]), Err(MatchError::BadValue(Field::NxCtState)));
        // A tuple field without a ct_state implying a connection.
        let src = OxmField::exact(Field::NxCtNwSrc, &[10, 0, 0, 1]);
        assert_eq!(
            go(vec![ip.clone(), src.clone()]),
            Err(MatchError::BadPrereq(Field::NxCtNwSrc))
        );
        let trk = OxmField::masked(Field::NxCtState, &[0, 0, 0, 0x20], &[0, 0, 0, 0x20]);
        assert_eq!(
            go(vec![ip.clone(), trk, src.clone()]),
            Err(MatchError::BadPrereq(Field::NxCtNwSrc))
        );
        let trk_inv = OxmField::masked(Field::NxCtState, &[0, 0, 0, 0x20], &[0, 0, 0, 0x30]);
        assert!(go(vec![ip, trk_inv, src]).is_ok());
    }
}
