//! OpenFlow matches ↔ the switch's wildcarded [`FlowKey`] matches.
//!
//! `to_switch` writes each OXM field's value and mask into the key bytes the
//! switch's extractor fills for that field (`switch::key` documents the
//! layout) after checking the field's prerequisites (OpenFlow 1.3.5
//! §7.2.3.6, table 12); `from_switch` reads them back, in the order
//! `ovs-ofctl` prints them, for flow statistics and flow-removed messages.
//! The Nicira ct fields go to the match's ct half (`ct_match`).

use openflow::oxm::{Field, OxmField, OFPVID_PRESENT};
use switch::key::{field as kf, FlowKey, TUN_PRESENT, VLAN_PRESENT};
use switch::rule::Match;

use crate::ct_match;
use crate::port_map::PortMap;
use crate::reg_fields;

/// Why a match cannot be installed (OpenFlow's `OFPET_BAD_MATCH` codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// A field this switch cannot match (`OFPBMC_BAD_FIELD`).
    BadField(Field),
    /// A value out of range (`OFPBMC_BAD_VALUE`).
    BadValue(Field),
    /// A mask on a field that takes none, or of the wrong size (`OFPBMC_BAD_MASK`).
    BadMask(Field),
    /// A field without its prerequisite (`OFPBMC_BAD_PREREQ`).
    BadPrereq(Field),
    /// A field given twice (`OFPBMC_DUP_FIELD`).
    DupField(Field),
}

impl core::fmt::Display for MatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MatchError::BadField(x) => write!(f, "cannot match field {x:?}"),
            MatchError::BadValue(x) => write!(f, "bad value for {x:?}"),
            MatchError::BadMask(x) => write!(f, "bad mask for {x:?}"),
            MatchError::BadPrereq(x) => write!(f, "{x:?} without its prerequisite"),
            MatchError::DupField(x) => write!(f, "{x:?} given twice"),
        }
    }
}

const ETH_IP: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;

/// What a field needs matched before it (table 12).
#[derive(Clone, Copy)]
enum Pre {
    None,
    Vlan,
    Ip,
    Ip4,
    Ip6,
    Arp,
    Proto(u8),
    Icmp6,
}

/// Where a field lives in the key, and what it needs.
struct Place {
    range: core::ops::Range<usize>,
    pre: Pre,
}

fn place(f: Field) -> Option<Place> {
    use Field::*;
    let p = |range, pre| Some(Place { range, pre });
    match f {
        InPort => p(kf::IN_PORT, Pre::None),
        EthDst => p(kf::DL_DST, Pre::None),
        EthSrc => p(kf::DL_SRC, Pre::None),
        EthType => p(kf::DL_TYPE, Pre::None),
        VlanVid | NxVlanTci => p(kf::VLAN_TCI, Pre::None),
        VlanPcp => p(kf::VLAN_TCI, Pre::Vlan),
        IpDscp | IpEcn => p(kf::NW_TOS..kf::NW_TOS + 1, Pre::Ip),
        IpProto => p(kf::NW_PROTO..kf::NW_PROTO + 1, Pre::Ip),
        NxIpTtl => p(kf::NW_TTL..kf::NW_TTL + 1, Pre::Ip),
        // Tunnel metadata of frames from tunnel ports (switch::tunnel).
        NxTunId | TunnelId => p(kf::TUN_ID, Pre::None),
        NxTunIpv4Src => p(kf::TUN_SRC, Pre::None),
        NxTunIpv4Dst => p(kf::TUN_DST, Pre::None),
        NxIpFrag => p(kf::NW_FRAG..kf::NW_FRAG + 1, Pre::Ip),
        Ipv4Src => p(kf::NW_SRC4, Pre::Ip4),
        Ipv4Dst => p(kf::NW_DST4, Pre::Ip4),
        TcpSrc => p(kf::TP_SRC, Pre::Proto(6)),
        TcpDst => p(kf::TP_DST, Pre::Proto(6)),
        UdpSrc => p(kf::TP_SRC, Pre::Proto(17)),
        UdpDst => p(kf::TP_DST, Pre::Proto(17)),
        SctpSrc => p(kf::TP_SRC, Pre::Proto(132)),
        SctpDst => p(kf::TP_DST, Pre::Proto(132)),
        NxTcpFlags | OnfTcpFlags => p(kf::TCP_FLAGS, Pre::Proto(6)),
        Icmpv4Type => p(kf::TP_SRC, Pre::Proto(1)),
        Icmpv4Code => p(kf::TP_DST, Pre::Proto(1)),
        Icmpv6Type => p(kf::TP_SRC, Pre::Icmp6),
        Icmpv6Code => p(kf::TP_DST, Pre::Icmp6),
        ArpOp => p(kf::NW_PROTO..kf::NW_PROTO + 1, Pre::Arp),
        ArpSpa => p(kf::NW_SRC4, Pre::Arp),
        ArpTpa => p(kf::NW_DST4, Pre::Arp),
        ArpSha => p(kf::ARP_SHA, Pre::Arp),
        ArpTha => p(kf::ARP_THA, Pre::Arp),
        Ipv6Src => p(kf::NW_SRC6, Pre::Ip6),
        Ipv6Dst => p(kf::NW_DST6, Pre::Ip6),
        _ => None,
    }
}

/// Whether a field may carry a mask (OpenFlow 1.3 table 11, and the
/// Nicira fields' own rules).
fn maskable(f: Field) -> bool {
    use Field::*;
    matches!(
        f,
        EthDst
            | EthSrc
            | VlanVid
            | NxVlanTci
            | Ipv4Src
            | Ipv4Dst
            | ArpSpa
            | ArpTpa
            | ArpSha
            | ArpTha
            | Ipv6Src
            | Ipv6Dst
            | NxIpFrag
            | NxTcpFlags
            | OnfTcpFlags
            | TcpSrc
            | TcpDst
            | UdpSrc
            | UdpDst
            | SctpSrc
            | SctpDst
            | NxTunId
            | TunnelId
            | NxTunIpv4Src
            | NxTunIpv4Dst
    )
}

/// The exact value of a two-byte field of `m`, if it is matched exactly.
fn exact16(m: &Match, r: core::ops::Range<usize>) -> Option<u16> {
    let mask = &m.mask.as_bytes()[r.clone()];
    let v = &m.value.as_bytes()[r];
    (mask == [0xff, 0xff]).then(|| u16::from_be_bytes([v[0], v[1]]))
}

fn exact8(m: &Match, i: usize) -> Option<u8> {
    (m.mask.as_bytes()[i] == 0xff).then(|| m.value.as_bytes()[i])
}

fn satisfied(m: &Match, pre: Pre) -> bool {
    let dl = exact16(m, kf::DL_TYPE);
    let ip = matches!(dl, Some(ETH_IP) | Some(ETH_IPV6));
    match pre {
        Pre::None => true,
        Pre::Vlan => {
            let tci = &m.value.as_bytes()[kf::VLAN_TCI];
            let mask = &m.mask.as_bytes()[kf::VLAN_TCI];
            // The tag must be known present (OFPVID_NONE excluded).
            mask[0] & 0x10 != 0 && tci[0] & 0x10 != 0
        }
        Pre::Ip => ip,
        Pre::Ip4 => dl == Some(ETH_IP),
        Pre::Ip6 => dl == Some(ETH_IPV6),
        Pre::Arp => dl == Some(ETH_ARP),
        Pre::Proto(p) => ip && exact8(m, kf::NW_PROTO) == Some(p),
        Pre::Icmp6 => dl == Some(ETH_IPV6) && exact8(m, kf::NW_PROTO) == Some(58),
    }
}

/// Value and mask bytes of `f` in the key's layout.
fn key_bytes(f: &OxmField, ports: &PortMap) -> Result<(Vec<u8>, Vec<u8>), MatchError> {
    let field = f.field;
    let len = field.value_len().ok_or(MatchError::BadField(field))?;
    if f.value.len() != len {
        return Err(MatchError::BadValue(field));
    }
    let mask = match &f.mask {
        Some(_) if !maskable(field) => return Err(MatchError::BadMask(field)),
        Some(m) if m.len() != len => return Err(MatchError::BadMask(field)),
        Some(m) => m.clone(),
        None => vec![0xff; len],
    };
    // OpenFlow 1.3 §7.2.3.5: a value bit whose mask bit is 0 must be 0.
    if f.value.iter().zip(&mask).any(|(v, m)| v & !m != 0) {
        return Err(MatchError::BadValue(field));
    }
    let be16 = |v: u16| v.to_be_bytes().to_vec();
    Ok(match field {
        Field::InPort => {
            let p = u32::from_be_bytes([f.value[0], f.value[1], f.value[2], f.value[3]]);
            let no = ports.to_switch(p).ok_or(MatchError::BadValue(field))?;
            (be16(no), vec![0xff, 0xff])
        }
        Field::VlanVid => {
            // OpenFlow 1.3 §7.2.3.7: OFPVID_PRESENT marks a tag; the key
            // uses the same bit (0x1000) in its stored TCI.
            let v = u16::from_be_bytes([f.value[0], f.value[1]]) & 0x1fff;
            let m = u16::from_be_bytes([mask[0], mask[1]]) & 0x1fff;
            debug_assert_eq!(OFPVID_PRESENT, VLAN_PRESENT);
            (be16(v), be16(m))
        }
        Field::VlanPcp => {
            let p = f.value[0];
            if p > 7 {
                return Err(MatchError::BadValue(field));
            }
            (be16(u16::from(p) << 13), be16(0xe000))
        }
        Field::IpDscp => {
            if f.value[0] > 63 {
                return Err(MatchError::BadValue(field));
            }
            (vec![f.value[0] << 2], vec![0xfc])
        }
        Field::IpEcn => {
            if f.value[0] > 3 {
                return Err(MatchError::BadValue(field));
            }
            (vec![f.value[0]], vec![0x03])
        }
        Field::ArpOp => {
            // The key keeps the opcode's low byte, as OVS's nw_proto does.
            if f.value[0] != 0 {
                return Err(MatchError::BadValue(field));
            }
            (vec![f.value[1]], vec![0xff])
        }
        Field::Icmpv4Type | Field::Icmpv4Code | Field::Icmpv6Type | Field::Icmpv6Code => {
            (vec![0, f.value[0]], vec![0xff, 0xff])
        }
        Field::NxIpFrag => {
            // The key's two low bits are the same ANY/LATER bits.
            if f.value[0] & !3 != 0 {
                return Err(MatchError::BadValue(field));
            }
            (f.value.clone(), vec![mask[0] & 3])
        }
        Field::NxTcpFlags | Field::OnfTcpFlags => (f.value.clone(), mask),
        Field::NxTunId | Field::TunnelId => {
            // VXLAN and Geneve carry 24-bit keys: a key with more bits
            // would never match, so it is refused.
            let v = f.value_u64().ok_or(MatchError::BadValue(field))?;
            let mk = u64::from_be_bytes(
                mask[..8]
                    .try_into()
                    .map_err(|_| MatchError::BadMask(field))?,
            );
            if v > 0xff_ffff {
                return Err(MatchError::BadValue(field));
            }
            (
                (v as u32).to_be_bytes().to_vec(),
                ((mk & 0xff_ffff) as u32).to_be_bytes().to_vec(),
            )
        }
        _ => (f.value.clone(), mask),
    })
}

/// Builds the switch match for OpenFlow match fields; `ports` maps
/// OpenFlow port numbers to the switch's.
pub fn to_switch(fields: &[OxmField], ports: &PortMap) -> Result<Match, MatchError> {
    let mut m = Match::ANY;
    let mut seen: Vec<Field> = Vec::with_capacity(fields.len());
    // Prerequisites may come in any order (OVS accepts that): place every
    // field first, check them after.
    for f in fields {
        if seen.contains(&f.field) {
            return Err(MatchError::DupField(f.field));
        }
        seen.push(f.field);
        if ct_match::is_ct_field(f.field) {
            ct_match::to_switch(f, &mut m)?;
            continue;
        }
        if reg_fields::is_reg_field(f.field) {
            reg_fields::match_to_switch(f, &mut m)?;
            continue;
        }
        if f.field == Field::Metadata {
            let v = f.value_u64().ok_or(MatchError::BadValue(f.field))?;
            let mask = match &f.mask {
                None => u64::MAX,
                Some(_) => f.mask_u64().ok_or(MatchError::BadMask(f.field))?,
            };
            if v & !mask != 0 {
                return Err(MatchError::BadValue(f.field));
            }
            m.meta_value = v;
            m.meta_mask = mask;
            continue;
        }
        let p = place(f.field).ok_or(MatchError::BadField(f.field))?;
        let (v, mask) = key_bytes(f, ports)?;
        let r = p.range.clone();
        let (mut mv, mut mm) = (m.value, m.mask);
        for (i, idx) in r.enumerate() {
            let (old_v, old_m) = (mv.as_bytes()[idx], mm.as_bytes()[idx]);
            if (old_v ^ v[i]) & old_m & mask[i] != 0 {
                // Two fields share key bits (VLAN_VID and NX VLAN_TCI) and disagree.
                return Err(MatchError::BadValue(f.field));
            }
            mv.as_bytes_mut()[idx] = (old_v & old_m) | (v[i] & mask[i]);
            mm.as_bytes_mut()[idx] = old_m | mask[i];
        }
        if matches!(
            f.field,
            Field::NxTunId | Field::TunnelId | Field::NxTunIpv4Src | Field::NxTunIpv4Dst
        ) {
            mv.set_tun_flags(TUN_PRESENT);
            mm.set_tun_flags(TUN_PRESENT);
        }
        m.value = mv;
        m.mask = mm;
    }
    for f in fields {
        if let Some(p) = place(f.field) {
            if !satisfied(&m, p.pre) {
                return Err(MatchError::BadPrereq(f.field));
            }
        }
    }
    ct_match::check_prerequisites(&m, fields)?;
    Ok(m)
}

fn push(out: &mut Vec<OxmField>, field: Field, v: &[u8], mask: &[u8]) {
    if mask.iter().all(|b| *b == 0) {
        return;
    }
    if mask.iter().all(|b| *b == 0xff) {
        out.push(OxmField::exact(field, v));
    } else {
        out.push(OxmField::masked(field, v, mask));
    }
}

/// The OpenFlow match fields of a switch match, in prerequisite order.
pub fn from_switch(m: &Match, ports: &PortMap) -> Vec<OxmField> {
    let mut out = Vec::new();
    let (v, mk) = (m.value.as_bytes(), m.mask.as_bytes());
    let get = |r: core::ops::Range<usize>| (&v[r.clone()], &mk[r]);
    let (pv, pm) = get(kf::IN_PORT);
    if pm != [0, 0] {
        let no = u16::from_be_bytes([pv[0], pv[1]]);
        out.push(OxmField::exact(
            Field::InPort,
            &ports.to_openflow(no).to_be_bytes(),
        ));
    }
    reg_fields::match_from_switch(m, &mut out);
    if m.meta_mask != 0 {
        push(
            &mut out,
            Field::Metadata,
            &m.meta_value.to_be_bytes(),
            &m.meta_mask.to_be_bytes(),
        );
    }
    if mk[kf::TUN_FLAGS] & TUN_PRESENT != 0 {
        let (a, b) = get(kf::TUN_ID);
        let wide = |x: &[u8]| u64::from(u32::from_be_bytes([x[0], x[1], x[2], x[3]])).to_be_bytes();
        if b == [0, 0xff, 0xff, 0xff] {
            // A whole VNI: exact, as ovs-ofctl sends `tun_id=N`.
            out.push(OxmField::exact(Field::NxTunId, &wide(a)));
        } else {
            push(&mut out, Field::NxTunId, &wide(a), &wide(b));
        }
        let (a, b) = get(kf::TUN_SRC);
        push(&mut out, Field::NxTunIpv4Src, a, b);
        let (a, b) = get(kf::TUN_DST);
        push(&mut out, Field::NxTunIpv4Dst, a, b);
    }
    let (a, b) = get(kf::DL_DST);
    push(&mut out, Field::EthDst, a, b);
    let (a, b) = get(kf::DL_SRC);
    push(&mut out, Field::EthSrc, a, b);
    let dl = exact16(m, kf::DL_TYPE);
    let (a, b) = get(kf::DL_TYPE);
    push(&mut out, Field::EthType, a, b);
    let (a, b) = get(kf::VLAN_TCI);
    let tci = u16::from_be_bytes([a[0], a[1]]);
    let tmask = u16::from_be_bytes([b[0], b[1]]);
    if tmask & 0x1fff != 0 {
        push(
            &mut out,
            Field::VlanVid,
            &(tci & 0x1fff).to_be_bytes(),
            &(tmask & 0x1fff).to_be_bytes(),
        );
    }
    if tmask & 0xe000 == 0xe000 {
        out.push(OxmField::exact(Field::VlanPcp, &[(tci >> 13) as u8]));
    }
    let ip = matches!(dl, Some(ETH_IP) | Some(ETH_IPV6));
    if ip {
        let (tos, tm) = (v[kf::NW_TOS], mk[kf::NW_TOS]);
        if tm & 0xfc == 0xfc {
            out.push(OxmField::exact(Field::IpDscp, &[tos >> 2]));
        }
        if tm & 3 == 3 {
            out.push(OxmField::exact(Field::IpEcn, &[tos & 3]));
        }
        if mk[kf::NW_PROTO] == 0xff {
            out.push(OxmField::exact(Field::IpProto, &[v[kf::NW_PROTO]]));
        }
    }
    match dl {
        Some(ETH_IP) => {
            let (a, b) = get(kf::NW_SRC4);
            push(&mut out, Field::Ipv4Src, a, b);
            let (a, b) = get(kf::NW_DST4);
            push(&mut out, Field::Ipv4Dst, a, b);
        }
        Some(ETH_IPV6) => {
            let (a, b) = get(kf::NW_SRC6);
            push(&mut out, Field::Ipv6Src, a, b);
            let (a, b) = get(kf::NW_DST6);
            push(&mut out, Field::Ipv6Dst, a, b);
        }
        Some(ETH_ARP) => {
            if mk[kf::NW_PROTO] == 0xff {
                out.push(OxmField::exact(Field::ArpOp, &[0, v[kf::NW_PROTO]]));
            }
            for (f, r) in [
                (Field::ArpSpa, kf::NW_SRC4),
                (Field::ArpTpa, kf::NW_DST4),
                (Field::ArpSha, kf::ARP_SHA),
                (Field::ArpTha, kf::ARP_THA),
            ] {
                let (a, b) = get(r);
                push(&mut out, f, a, b);
            }
        }
        _ => {}
    }
    let proto = exact8(m, kf::NW_PROTO).filter(|_| ip);
    let (sf, df, one_byte) = match (proto, dl) {
        (Some(6), _) => (Field::TcpSrc, Field::TcpDst, false),
        (Some(17), _) => (Field::UdpSrc, Field::UdpDst, false),
        (Some(132), _) => (Field::SctpSrc, Field::SctpDst, false),
        (Some(1), Some(ETH_IP)) => (Field::Icmpv4Type, Field::Icmpv4Code, true),
        (Some(58), Some(ETH_IPV6)) => (Field::Icmpv6Type, Field::Icmpv6Code, true),
        _ => return finish(out, m, ip, proto),
    };
    for (f, r) in [(sf, kf::TP_SRC), (df, kf::TP_DST)] {
        let (a, b) = get(r);
        if one_byte {
            push(&mut out, f, &a[1..], &b[1..]);
        } else {
            push(&mut out, f, a, b);
        }
    }
    finish(out, m, ip, proto)
}

/// The Nicira fields that follow the standard ones (the ct fields last).
fn finish(mut out: Vec<OxmField>, m: &Match, ip: bool, proto: Option<u8>) -> Vec<OxmField> {
    let (v, mk) = (m.value.as_bytes(), m.mask.as_bytes());
    if ip {
        if mk[kf::NW_TTL] == 0xff {
            out.push(OxmField::exact(Field::NxIpTtl, &[v[kf::NW_TTL]]));
        }
        push(
            &mut out,
            Field::NxIpFrag,
            &[v[kf::NW_FRAG]],
            &[mk[kf::NW_FRAG]],
        );
    }
    if proto == Some(6) {
        push(
            &mut out,
            Field::NxTcpFlags,
            &v[kf::TCP_FLAGS],
            &mk[kf::TCP_FLAGS],
        );
    }
    ct_match::from_switch(m, &mut out);
    out
}

/// The switch key bytes of `k` for a field (used by tests and packet-in).
pub fn key_field(k: &FlowKey, f: Field) -> Option<&[u8]> {
    place(f).map(|p| &k.as_bytes()[p.range])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> PortMap {
        PortMap::new(Some(0))
    }

    fn rule(text: &str) -> Match {
        let r: switch::rule::RuleSpec = format!("{text},actions=drop").parse().unwrap();
        r.matcher
    }

    #[test]
    fn construct_matches_like_the_rule_parser() {
        let p = ports();
        let cases: Vec<(Vec<OxmField>, &str)> = vec![
            (
                // ovs-ofctl's `tun_id=42,tun_src=...` (NXM, 64-bit key).
                vec![
                    OxmField::exact(Field::NxTunId, &42u64.to_be_bytes()),
                    OxmField::exact(Field::NxTunIpv4Src, &[192, 168, 1, 2]),
                ],
                "tun_id=42,tun_src=192.168.1.2",
            ),
            (
                vec![
                    OxmField::exact(Field::InPort, &3u32.to_be_bytes()),
                    OxmField::exact(Field::EthType, &[0x08, 0x00]),
                    OxmField::exact(Field::IpProto, &[6]),
                    OxmField::masked(Field::Ipv4Dst, &[10, 0, 0, 0], &[255, 0, 0, 0]),
                    OxmField::exact(Field::TcpDst, &80u16.to_be_bytes()),
                ],
                "in_port=3,tcp,nw_dst=10.0.0.0/8,tp_dst=80",
            ),
            (
                vec![
                    OxmField::exact(Field::VlanVid, &(0x1000u16 | 42).to_be_bytes()),
                    OxmField::exact(Field::VlanPcp, &[5]),
                ],
                "dl_vlan=42,dl_vlan_pcp=5",
            ),
            (
                vec![
                    OxmField::exact(Field::EthType, &[0x08, 0x06]),
                    OxmField::exact(Field::ArpOp, &[0, 1]),
                    OxmField::exact(Field::ArpTpa, &[10, 0, 0, 9]),
                ],
                "arp,arp_op=1,arp_tpa=10.0.0.9",
            ),
            (
                vec![
                    OxmField::exact(Field::EthType, &[0x86, 0xdd]),
                    OxmField::exact(Field::IpProto, &[58]),
                    OxmField::exact(Field::Icmpv6Type, &[135]),
                ],
                "icmp6,icmpv6_type=135",
            ),
            (
                vec![
                    OxmField::exact(Field::EthType, &[0x08, 0x00]),
                    OxmField::exact(Field::IpDscp, &[46]),
                    OxmField::exact(Field::NxIpTtl, &[1]),
                ],
                "ip,ip_dscp=46,nw_ttl=1",
            ),
            (
                vec![OxmField::exact(
                    Field::InPort,
                    &0xffff_fffeu32.to_be_bytes(),
                )],
                "in_port=0",
            ),
        ];
        for (fields, text) in cases {
            let m = to_switch(&fields, &p).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m, rule(text), "{text}");
        }
    }

    #[test]
    fn prerequisites_and_bad_fields_are_refused() {
        let p = ports();
        let tcp_alone = [OxmField::exact(Field::TcpDst, &80u16.to_be_bytes())];
        assert_eq!(
            to_switch(&tcp_alone, &p),
            Err(MatchError::BadPrereq(Field::TcpDst))
        );
        let v4_on_v6 = [
            OxmField::exact(Field::EthType, &[0x86, 0xdd]),
            OxmField::exact(Field::Ipv4Src, &[1, 2, 3, 4]),
        ];
        assert_eq!(
            to_switch(&v4_on_v6, &p),
            Err(MatchError::BadPrereq(Field::Ipv4Src))
        );
        let dup = [
            OxmField::exact(Field::EthType, &[0x08, 0x00]),
            OxmField::exact(Field::EthType, &[0x08, 0x00]),
        ];
        assert_eq!(
            to_switch(&dup, &p),
            Err(MatchError::DupField(Field::EthType))
        );
        let masked_proto = [
            OxmField::exact(Field::EthType, &[0x08, 0x00]),
            OxmField::masked(Field::IpProto, &[6], &[0xf0]),
        ];
        assert_eq!(
            to_switch(&masked_proto, &p),
            Err(MatchError::BadMask(Field::IpProto))
        );
        let stray = [OxmField::masked(
            Field::EthDst,
            &[1, 0, 0, 0, 0, 1],
            &[1, 0, 0, 0, 0, 0],
        )];
        assert_eq!(
            to_switch(&stray, &p),
            Err(MatchError::BadValue(Field::EthDst))
        );
        let far_port = [OxmField::exact(Field::InPort, &500u32.to_be_bytes())];
        assert_eq!(
            to_switch(&far_port, &p),
            Err(MatchError::BadValue(Field::InPort))
        );
        let pcp_untagged = [OxmField::exact(Field::VlanPcp, &[1])];
        assert_eq!(
            to_switch(&pcp_untagged, &p),
            Err(MatchError::BadPrereq(Field::VlanPcp))
        );
    }

    #[test]
    fn emit_round_trips_through_the_switch() {
        let p = ports();
        for text in [
            "in_port=3,tcp,nw_src=192.168.0.0/16,tp_dst=80,tcp_flags=+syn-ack",
            "udp6,ipv6_dst=fe80::/10,tp_src=53",
            "arp,arp_op=2,arp_spa=10.0.0.1,arp_sha=02:00:00:00:00:01",
            "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_vlan=7",
            "icmp,icmp_type=8,icmp_code=0",
            "ip,nw_frag=later,nw_tos=32",
            "metadata=0x5/0xff,ip",
            "tun_id=0x2a,tun_src=10.0.0.2,tun_dst=10.0.0.0/8,ip",
            "tun_id=0x2a/0xff",
            "",
        ] {
            let m = if text.is_empty() {
                Match::ANY
            } else {
                rule(text)
            };
            let fields = from_switch(&m, &p);
            assert_eq!(to_switch(&fields, &p), Ok(m), "{text}: {fields:?}");
        }
    }
}
