//! What each table can do (`OFPMP_TABLE_FEATURES`, OpenFlow 1.3.5
//! §7.3.5.5), in the property form peers require: `ovs-ofctl` refuses a
//! reply that lacks any of the eight non-`_MISS` properties.

use openflow::oxm::Field;
use openflow::table_features::{OxmId, TableFeatureProp as P, TableFeatures, TlvId};

/// Instructions the switch carries out: GOTO_TABLE, WRITE_METADATA,
/// WRITE_ACTIONS, APPLY_ACTIONS, CLEAR_ACTIONS.
const INSTRUCTIONS: [u16; 5] = [1, 2, 3, 4, 5];
/// Actions: OUTPUT, PUSH_VLAN, POP_VLAN, GROUP, DEC_NW_TTL, SET_FIELD.
const ACTIONS: [u16; 6] = [0, 17, 18, 22, 24, 25];

/// Fields the switch matches (see `flow_match`).
fn match_fields() -> Vec<Field> {
    use Field::*;
    vec![
        InPort,
        Metadata,
        EthDst,
        EthSrc,
        EthType,
        VlanVid,
        VlanPcp,
        IpDscp,
        IpEcn,
        IpProto,
        Ipv4Src,
        Ipv4Dst,
        TcpSrc,
        TcpDst,
        UdpSrc,
        UdpDst,
        SctpSrc,
        SctpDst,
        Icmpv4Type,
        Icmpv4Code,
        ArpOp,
        ArpSpa,
        ArpTpa,
        ArpSha,
        ArpTha,
        Ipv6Src,
        Ipv6Dst,
        Icmpv6Type,
        Icmpv6Code,
        NxVlanTci,
        NxIpFrag,
        NxIpTtl,
        NxTcpFlags,
        NxCtState,
        NxCtZone,
        NxCtMark,
        NxCtLabel,
        NxCtNwProto,
        NxCtNwSrc,
        NxCtNwDst,
        NxCtIpv6Src,
        NxCtIpv6Dst,
        NxCtTpSrc,
        NxCtTpDst,
    ]
}

/// Fields `set_field` can write.
fn set_fields() -> Vec<Field> {
    use Field::*;
    vec![VlanVid, VlanPcp, EthDst, EthSrc, IpDscp]
}

fn oxm_ids(list: &[Field]) -> Vec<OxmId> {
    list.iter()
        .map(|f| {
            let (class, code, _) = f.to_wire();
            let len = f.value_len().unwrap_or(0) as u32;
            OxmId {
                header: u32::from(class) << 16 | u32::from(code) << 9 | len,
                experimenter: None,
            }
        })
        .collect()
}

fn tlv_ids(ids: &[u16]) -> Vec<TlvId> {
    ids.iter().map(|t| TlvId::new(*t)).collect()
}

/// The features of table `id` of `n_tables`.
pub fn table(id: u8, n_tables: u8) -> TableFeatures {
    let next: Vec<u8> = (id.saturating_add(1)..n_tables).collect();
    let (m, s) = (oxm_ids(&match_fields()), oxm_ids(&set_fields()));
    let mut properties = Vec::new();
    for miss in [false, true] {
        properties.extend([
            P::Instructions {
                miss,
                ids: tlv_ids(&INSTRUCTIONS),
            },
            P::NextTables {
                miss,
                tables: next.clone(),
            },
            P::WriteActions {
                miss,
                ids: tlv_ids(&ACTIONS),
            },
            P::ApplyActions {
                miss,
                ids: tlv_ids(&ACTIONS),
            },
            P::WriteSetfield {
                miss,
                oxms: s.clone(),
            },
            P::ApplySetfield {
                miss,
                oxms: s.clone(),
            },
        ]);
    }
    properties.push(P::Match(m.clone()));
    properties.push(P::Wildcards(m));
    TableFeatures {
        table_id: id,
        name: format!("table{id}"),
        metadata_match: u64::MAX,
        metadata_write: u64::MAX,
        config: 0,
        max_entries: 1_000_000,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::table_features::REQUIRED;

    #[test]
    fn every_required_property_is_there_and_emits() {
        let t = table(0, 254);
        let mut out = Vec::new();
        t.emit(&mut out).unwrap();
        assert_eq!(out.len() % 8, 0);
        let back = TableFeatures::parse_list(&out).unwrap();
        assert_eq!(back, vec![t.clone()]);
        let types: Vec<u16> = t
            .properties
            .iter()
            .map(|p| {
                let mut b = Vec::new();
                p.emit(&mut b).unwrap();
                u16::from_be_bytes([b[0], b[1]])
            })
            .collect();
        for r in REQUIRED {
            assert!(types.contains(&r), "{r} missing");
        }
        assert!(table(253, 254).buffer_len() < t.buffer_len());
    }
}
