//! OpenFlow instructions and actions ↔ the switch's action lists.
//!
//! OpenFlow 1.3 §5.9–5.12: an `apply_actions` list runs in order (the
//! switch's `actions=`), `write_actions`/`clear_actions` edit the action
//! set that runs at the end of the pipeline, `write_metadata` and
//! `goto_table` continue the pipeline. Reserved ports map to the switch's
//! own actions (`NORMAL`, `FLOOD`, `ALL`, `IN_PORT`, `LOCAL` → the bridge's
//! internal port); the Nicira `resubmit(,N)` is the switch's resubmit, the
//! Nicira `ct`/`ct_clear` its conntrack actions (`ct_action`).

use openflow::action::port_no;
use openflow::error_msg::{bad_action, bad_instruction};
use openflow::nicira::{NxAction, OFPP_IN_PORT_16};
use openflow::oxm::{Field, OxmField, OFPVID_PRESENT};
use openflow::{Action as OfAction, Instruction};
use switch::action::{Action, Instructions, L4Proto};
use switch::key::VLAN_PRESENT;
use switch::rule::Match;

use crate::ct_action;
use crate::error::OfError;
use crate::port_map::PortMap;
use crate::reg_fields;

/// A rule's actions as the switch keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchActions {
    /// Apply-actions.
    pub actions: Vec<Action>,
    /// The other instructions.
    pub instructions: Instructions,
}

/// Translates one OpenFlow action (in an apply or write list, or a bucket).
pub fn action_to_switch(a: &OfAction, ports: &PortMap) -> Result<Action, OfError> {
    Ok(match a {
        OfAction::Output { port, .. } => match *port {
            port_no::NORMAL => Action::Normal,
            port_no::FLOOD => Action::Flood,
            port_no::ALL => Action::All,
            port_no::IN_PORT => Action::InPort,
            p => match ports.to_switch(p) {
                Some(no) => Action::Output(no),
                None => {
                    return Err(OfError::action(
                        bad_action::BAD_OUT_PORT,
                        format!("output to port {p:#x} is not supported"),
                    ))
                }
            },
        },
        OfAction::PushVlan(tpid) => {
            // As OVS (eth_type_vlan): 802.1Q and 802.1ad only; 0x9100 is
            // not a VLAN TPID for the switch either.
            if !matches!(*tpid, 0x8100 | 0x88a8) {
                return Err(OfError::action(
                    bad_action::BAD_ARGUMENT,
                    format!("push_vlan ethertype {tpid:#06x} (0x8100 or 0x88a8)"),
                ));
            }
            Action::PushVlan(*tpid)
        }
        OfAction::PopVlan => Action::PopVlan,
        OfAction::Group(g) => Action::Group(*g),
        OfAction::DecNwTtl => Action::DecTtl,
        OfAction::SetNwTtl(t) => Action::SetNwTtl(*t),
        OfAction::SetField(f) => match reg_fields::set_field_to_switch(f) {
            Some(r) => r?,
            None => set_field(f)?,
        },
        OfAction::Nicira(NxAction::ResubmitTable { in_port, table })
            if *in_port == OFPP_IN_PORT_16 =>
        {
            Action::Resubmit(*table)
        }
        OfAction::Nicira(NxAction::SetTunnel(k)) => set_tunnel(u64::from(*k))?,
        OfAction::Nicira(NxAction::SetTunnel64(k)) => set_tunnel(*k)?,
        OfAction::Nicira(NxAction::Ct(c)) => ct_action::ct_to_switch(c)?,
        OfAction::Nicira(NxAction::CtClear) => Action::CtClear,
        OfAction::Nicira(NxAction::Nat(_)) => return Err(ct_action::outside_ct("nat")),
        OfAction::Nicira(
            n @ (NxAction::RegLoad { .. }
            | NxAction::RegMove { .. }
            | NxAction::StackPush(_)
            | NxAction::StackPop(_)),
        ) if reg_fields::nx_to_switch(n).is_some() => {
            reg_fields::nx_to_switch(n).expect("checked")?
        }
        OfAction::Nicira(NxAction::RegLoad { dst, .. })
            if matches!(
                Field::from_nxm_header(*dst),
                Field::NxCtMark | Field::NxCtLabel
            ) =>
        {
            return Err(ct_action::outside_ct("a write of ct_mark/ct_label"))
        }
        OfAction::Nicira(NxAction::Resubmit { .. } | NxAction::ResubmitTable { .. }) => {
            return Err(OfError::action(
                bad_action::BAD_ARGUMENT,
                "resubmit with another in_port is not supported (use resubmit(,TABLE))",
            ))
        }
        OfAction::Nicira(_) | OfAction::Experimenter { .. } => {
            return Err(OfError::action(
                bad_action::BAD_EXPERIMENTER,
                format!("unsupported experimenter action {a:?}"),
            ))
        }
        OfAction::Unknown { action_type, .. } => {
            return Err(OfError::action(
                bad_action::BAD_TYPE,
                format!("unknown action type {action_type}"),
            ))
        }
        other => {
            return Err(OfError::action(
                bad_action::BAD_TYPE,
                format!("unsupported action {other:?}"),
            ))
        }
    })
}

/// NXAST_SET_TUNNEL / NXAST_SET_TUNNEL64 (OVS's `set_tunnel:K` and
/// `set_tunnel64:K`, `lib/ofp-actions.c`; a peer may send them in any
/// OpenFlow version, `ovs-ofctl` does in 1.0 and 1.1 and sends `set_field`
/// of `tun_id` in 1.2 and later): the key an output to a tunnel port
/// sends. The tunnel ports' keys are 24-bit VNIs (VXLAN, RFC 7348 §5;
/// Geneve, RFC 8926 §3.4): a wider key is OFPBAC_BAD_ARGUMENT.
fn set_tunnel(k: u64) -> Result<Action, OfError> {
    match u32::try_from(k) {
        Ok(vni) if vni <= 0xff_ffff => Ok(Action::SetTunId(vni)),
        _ => Err(OfError::action(
            bad_action::BAD_ARGUMENT,
            format!("set_tunnel:{k:#x}: tunnel keys here are 24-bit VNIs"),
        )),
    }
}

fn set_field(f: &OxmField) -> Result<Action, OfError> {
    let bad = || {
        OfError::action(
            bad_action::BAD_SET_ARGUMENT,
            format!("bad set_field value {f:?}"),
        )
    };
    let port = || -> Result<u16, OfError> {
        let b: [u8; 2] = f.value.as_slice().try_into().map_err(|_| bad())?;
        Ok(u16::from_be_bytes(b))
    };
    if f.mask.is_some() {
        return Err(OfError::action(
            bad_action::BAD_SET_TYPE,
            "masked set_field is not supported",
        ));
    }
    Ok(match f.field {
        // Tunnel keys are 24-bit VNIs (VXLAN, Geneve).
        Field::NxTunId | Field::TunnelId => match f.value_u64() {
            Some(k) if k <= 0xff_ffff => Action::SetTunId(k as u32),
            _ => return Err(bad()),
        },
        Field::NxTunIpv4Dst => Action::SetTunDst(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::VlanVid => {
            let v = f.value_u64().ok_or_else(bad)? as u16;
            if v & OFPVID_PRESENT == 0 && v != 0 {
                return Err(bad());
            }
            Action::SetVlanVid(v & 0x0fff)
        }
        Field::VlanPcp => {
            let p = *f.value.first().ok_or_else(bad)?;
            if p > 7 {
                return Err(bad());
            }
            Action::SetVlanPcp(p)
        }
        Field::EthSrc => Action::SetEthSrc(f.value_mac().ok_or_else(bad)?),
        Field::EthDst => Action::SetEthDst(f.value_mac().ok_or_else(bad)?),
        Field::IpDscp => {
            let d = *f.value.first().ok_or_else(bad)?;
            if d > 63 {
                return Err(bad());
            }
            Action::SetIpDscp(d)
        }
        Field::IpEcn => {
            let e = *f.value.first().ok_or_else(bad)?;
            if e > 3 {
                return Err(bad());
            }
            Action::SetIpEcn(e)
        }
        Field::Ipv4Src => Action::SetIpv4Src(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::Ipv4Dst => Action::SetIpv4Dst(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::Ipv6Src => Action::SetIpv6Src(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::Ipv6Dst => Action::SetIpv6Dst(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::TcpSrc => Action::SetL4Src(L4Proto::Tcp, port()?),
        Field::TcpDst => Action::SetL4Dst(L4Proto::Tcp, port()?),
        Field::UdpSrc => Action::SetL4Src(L4Proto::Udp, port()?),
        Field::UdpDst => Action::SetL4Dst(L4Proto::Udp, port()?),
        Field::SctpSrc => Action::SetL4Src(L4Proto::Sctp, port()?),
        Field::SctpDst => Action::SetL4Dst(L4Proto::Sctp, port()?),
        Field::ArpOp => Action::SetArpOp(port()?),
        Field::ArpSpa => Action::SetArpSpa(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::ArpTpa => Action::SetArpTpa(f.value.as_slice().try_into().map_err(|_| bad())?),
        Field::ArpSha => Action::SetArpSha(f.value_mac().ok_or_else(bad)?),
        Field::ArpTha => Action::SetArpTha(f.value_mac().ok_or_else(bad)?),
        Field::Icmpv4Type => Action::SetIcmpType(*f.value.first().ok_or_else(bad)?),
        Field::Icmpv4Code => Action::SetIcmpCode(*f.value.first().ok_or_else(bad)?),
        Field::NxCtMark | Field::NxCtLabel => {
            return Err(ct_action::outside_ct("set_field of ct_mark/ct_label"))
        }
        other => {
            return Err(OfError::action(
                bad_action::BAD_SET_TYPE,
                format!("set_field of {other:?} is not supported"),
            ))
        }
    })
}

/// Translates an OpenFlow action list.
pub fn list_to_switch(list: &[OfAction], ports: &PortMap) -> Result<Vec<Action>, OfError> {
    list.iter().map(|a| action_to_switch(a, ports)).collect()
}

/// Translates a flow's instructions (OpenFlow 1.3 §5.9: at most one of
/// each type).
pub fn to_switch(ins: &[Instruction], ports: &PortMap) -> Result<SwitchActions, OfError> {
    let mut out = SwitchActions::default();
    let mut seen = [false; 6];
    for i in ins {
        let slot = match i {
            Instruction::ApplyActions(_) => 0,
            Instruction::ClearActions => 1,
            Instruction::WriteActions(_) => 2,
            Instruction::WriteMetadata { .. } => 3,
            Instruction::GotoTable(_) => 4,
            Instruction::Meter(_) => 5,
            _ => {
                return Err(OfError::instruction(
                    bad_instruction::UNKNOWN_INST,
                    format!("unknown instruction {i:?}"),
                ))
            }
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(OfError::instruction(
                bad_instruction::UNSUP_INST,
                format!("instruction given twice: {i:?}"),
            ));
        }
        match i {
            Instruction::ApplyActions(list) => out.actions = list_to_switch(list, ports)?,
            Instruction::ClearActions => out.instructions.clear_actions = true,
            Instruction::WriteActions(list) => {
                let set = list_to_switch(list, ports)?;
                // As OVS (`ofpacts_verify_action_set`): ct and ct_clear have
                // no place in the action set.
                if let Some(a) = set.iter().find(|a| a.is_ct()) {
                    return Err(OfError::action(
                        bad_action::BAD_TYPE,
                        format!("`{a}` is not allowed in write_actions"),
                    ));
                }
                out.instructions.write_actions = Some(set)
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.instructions.write_metadata = Some((*metadata, *mask))
            }
            Instruction::GotoTable(t) => out.instructions.goto_table = Some(*t),
            _ => {
                return Err(OfError::instruction(
                    bad_instruction::UNSUP_INST,
                    "meters are not supported",
                ))
            }
        }
    }
    Ok(out)
}

/// OVS's consistency check of a flow's actions against its match
/// (`ofpacts_check_consistency`, OpenFlow 1.3): a set-field whose
/// prerequisites the match does not guarantee (`ipv4_src` without `ip`,
/// `tcp_dst` without `tcp`, `ip_dscp`/`ip_ecn` without `ip`/`ipv6`,
/// `vlan_vid`/`vlan_pcp` without a tag matched or pushed before it), and
/// `dec_ttl`/`set_nw_ttl` without `ip`/`ipv6`, earn
/// OFPBAC_MATCH_INCONSISTENT. `push_vlan`/`pop_vlan` change what later
/// actions may assume, as in OVS; the write-actions are checked after the
/// apply-actions. (Group buckets are not checked, as in OVS.)
pub fn check_consistency(acts: &SwitchActions, m: &Match) -> Result<(), OfError> {
    let (v, k) = (&m.value, &m.mask);
    let dl_type = (k.dl_type() == 0xffff).then(|| v.dl_type());
    let nw_proto = (k.nw_proto() == 0xff).then(|| v.nw_proto());
    let ip_any = matches!(dl_type, Some(0x0800 | 0x86dd));
    let present = |t: u16, mask: u16| mask & VLAN_PRESENT != 0 && t & VLAN_PRESENT != 0;
    // Tag presence of the outer and inner tag, as the match's flow says.
    let mut vlan = [
        present(v.vlan_tci(), k.vlan_tci()),
        present(v.vlan_tci2(), k.vlan_tci2()),
    ];
    let bad = |what: &str| {
        Err(OfError::action(
            bad_action::MATCH_INCONSISTENT,
            format!("{what} lacks correct prerequisites in the match"),
        ))
    };
    check_ct(acts, m)?;
    let lists =
        std::iter::once(acts.actions.as_slice()).chain(acts.instructions.write_actions.as_deref());
    for a in lists.flatten() {
        match *a {
            Action::PushVlan(_) => vlan = [true, vlan[0]],
            Action::PopVlan => vlan = [vlan[1], false],
            Action::SetVlanVid(_) | Action::SetVlanPcp(_) if !vlan[0] => {
                return bad("set_field of vlan_vid/vlan_pcp")
            }
            Action::SetIpDscp(_) | Action::SetIpEcn(_) if !ip_any => {
                return bad("set_field of ip_dscp/ip_ecn")
            }
            Action::DecTtl | Action::SetNwTtl(_) if !ip_any => return bad("dec_ttl/set_nw_ttl"),
            Action::SetIpv4Src(_) | Action::SetIpv4Dst(_) if dl_type != Some(0x0800) => {
                return bad("set_field of ipv4_src/ipv4_dst")
            }
            Action::SetIpv6Src(_) | Action::SetIpv6Dst(_) if dl_type != Some(0x86dd) => {
                return bad("set_field of ipv6_src/ipv6_dst")
            }
            Action::SetL4Src(l4, _) | Action::SetL4Dst(l4, _)
                if !ip_any || !nw_proto.is_some_and(|p| l4.applies_to(p)) =>
            {
                return bad("set_field of an L4 port")
            }
            _ => {}
        }
    }
    Ok(())
}

/// OVS's `check_CT` and `check_NAT`: a `ct` needs `ip` or `ipv6` in the
/// match, may not commit from a rule matching `ct_state=+inv`, and its
/// `nat` range's family must be the match's (OFPBAC_MATCH_INCONSISTENT).
fn check_ct(acts: &SwitchActions, m: &Match) -> Result<(), OfError> {
    let dl = (m.mask.dl_type() == 0xffff).then(|| m.value.dl_type());
    let inv = conntrack::state::INV;
    let matches_inv = m.ct_mask.state() & inv != 0 && m.ct_value.state() & inv != 0;
    let bad = |why: String| Err(OfError::action(bad_action::MATCH_INCONSISTENT, why));
    for a in &acts.actions {
        let Action::Ct(id) = a else { continue };
        let s = id.spec();
        if !matches!(dl, Some(0x0800 | 0x86dd)) {
            return bad(format!("`{a}` needs ip or ipv6 in the match"));
        }
        if s.commit && matches_inv {
            return bad(format!("`{a}` commits from a rule matching ct_state=+inv"));
        }
        let family = s.nat.and_then(|n| n.range).map(|r| r.addr_min.is_ipv4());
        if family.is_some_and(|v4| dl != Some(if v4 { 0x0800 } else { 0x86dd })) {
            return bad(format!("`{a}`: the nat range's family is not the match's"));
        }
    }
    Ok(())
}

/// The OpenFlow form of one switch action.
pub fn action_from_switch(a: &Action, ports: &PortMap) -> Option<OfAction> {
    Some(match *a {
        // Whole frames (no buffering): OFPCML_NO_BUFFER.
        Action::Output(n) => OfAction::output(ports.to_openflow(n)),
        Action::Flood => OfAction::output(port_no::FLOOD),
        Action::Normal | Action::NormalFrom(_) => OfAction::output(port_no::NORMAL),
        Action::Drop => return None,
        Action::PushVlan(t) => OfAction::PushVlan(t),
        Action::PopVlan => OfAction::PopVlan,
        Action::SetVlanVid(v) => OfAction::SetField(OxmField::exact(
            Field::VlanVid,
            &(v | OFPVID_PRESENT).to_be_bytes(),
        )),
        Action::SetVlanPcp(p) => OfAction::SetField(OxmField::exact(Field::VlanPcp, &[p])),
        Action::SetEthSrc(m) => OfAction::SetField(OxmField::exact(Field::EthSrc, &m)),
        Action::SetEthDst(m) => OfAction::SetField(OxmField::exact(Field::EthDst, &m)),
        Action::SetIpDscp(d) => OfAction::SetField(OxmField::exact(Field::IpDscp, &[d])),
        Action::DecTtl => OfAction::DecNwTtl,
        Action::Resubmit(t) => OfAction::Nicira(NxAction::ResubmitTable {
            in_port: OFPP_IN_PORT_16,
            table: t,
        }),
        Action::Group(g) => OfAction::Group(g),
        Action::All => OfAction::output(port_no::ALL),
        Action::InPort => OfAction::output(port_no::IN_PORT),
        Action::SetIpv4Src(a) => OfAction::SetField(OxmField::exact(Field::Ipv4Src, &a)),
        Action::SetIpv4Dst(a) => OfAction::SetField(OxmField::exact(Field::Ipv4Dst, &a)),
        Action::SetIpv6Src(a) => OfAction::SetField(OxmField::exact(Field::Ipv6Src, &a)),
        Action::SetIpv6Dst(a) => OfAction::SetField(OxmField::exact(Field::Ipv6Dst, &a)),
        // `mod_tp_src`/`mod_tp_dst` from a text rule name no protocol:
        // OpenFlow 1.3 has no protocol-less port action, so they are
        // reported as TCP (rules from OpenFlow always name one).
        Action::SetL4Src(l4, p) => OfAction::SetField(OxmField::exact(
            match l4 {
                L4Proto::Udp => Field::UdpSrc,
                L4Proto::Sctp => Field::SctpSrc,
                L4Proto::Tcp | L4Proto::Any => Field::TcpSrc,
            },
            &p.to_be_bytes(),
        )),
        Action::SetL4Dst(l4, p) => OfAction::SetField(OxmField::exact(
            match l4 {
                L4Proto::Udp => Field::UdpDst,
                L4Proto::Sctp => Field::SctpDst,
                L4Proto::Tcp | L4Proto::Any => Field::TcpDst,
            },
            &p.to_be_bytes(),
        )),
        Action::SetIpEcn(e) => OfAction::SetField(OxmField::exact(Field::IpEcn, &[e])),
        Action::SetNwTtl(t) => OfAction::SetNwTtl(t),
        // As OVS encodes a tunnel key for OpenFlow 1.2 and later, whether it
        // came as `set_tunnel`, `set_tunnel64` or `set_field` (`encode_SET_TUNNEL`:
        // set_field of OXM_OF_TUNNEL_ID); `ovs-ofctl` prints it
        // `set_field:0x2a->tun_id`.
        Action::SetTunId(k) => OfAction::SetField(OxmField::exact(
            Field::TunnelId,
            &u64::from(k).to_be_bytes(),
        )),
        Action::SetTunDst(a) => OfAction::SetField(OxmField::exact(Field::NxTunIpv4Dst, &a)),
        Action::Ct(id) => ct_action::ct_from_switch_zone(id.spec(), id.zone_src()),
        Action::CtClear => OfAction::Nicira(NxAction::CtClear),
        Action::SetReg(_)
        | Action::SetXxReg(_)
        | Action::Move(_)
        | Action::StackPush(_)
        | Action::StackPop(_) => reg_fields::action_from_switch(a)?,
        Action::SetArpOp(o) => OfAction::SetField(OxmField::exact(Field::ArpOp, &o.to_be_bytes())),
        Action::SetArpSpa(x) => OfAction::SetField(OxmField::exact(Field::ArpSpa, &x)),
        Action::SetArpTpa(x) => OfAction::SetField(OxmField::exact(Field::ArpTpa, &x)),
        Action::SetArpSha(m) => OfAction::SetField(OxmField::exact(Field::ArpSha, &m)),
        Action::SetArpTha(m) => OfAction::SetField(OxmField::exact(Field::ArpTha, &m)),
        Action::SetIcmpType(t) => OfAction::SetField(OxmField::exact(Field::Icmpv4Type, &[t])),
        Action::SetIcmpCode(c) => OfAction::SetField(OxmField::exact(Field::Icmpv4Code, &[c])),
    })
}

/// The OpenFlow form of a switch action list.
pub fn list_from_switch(list: &[Action], ports: &PortMap) -> Vec<OfAction> {
    list.iter()
        .filter_map(|a| action_from_switch(a, ports))
        .collect()
}

/// A rule's instructions, in the order OVS writes them.
pub fn from_switch(actions: &[Action], ins: &Instructions, ports: &PortMap) -> Vec<Instruction> {
    let mut out = Vec::new();
    let apply = list_from_switch(actions, ports);
    if !apply.is_empty() {
        out.push(Instruction::ApplyActions(apply));
    }
    if ins.clear_actions {
        out.push(Instruction::ClearActions);
    }
    if let Some(w) = &ins.write_actions {
        out.push(Instruction::WriteActions(list_from_switch(w, ports)));
    }
    if let Some((metadata, mask)) = ins.write_metadata {
        out.push(Instruction::WriteMetadata { metadata, mask });
    }
    if let Some(t) = ins.goto_table {
        out.push(Instruction::GotoTable(t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_and_emit_round_trip() {
        let p = PortMap::new(Some(0));
        let ins = vec![
            Instruction::ApplyActions(vec![
                OfAction::PushVlan(0x8100),
                OfAction::SetField(OxmField::exact(
                    Field::VlanVid,
                    &(0x1000u16 | 10).to_be_bytes(),
                )),
                OfAction::output(3),
                OfAction::output(port_no::LOCAL),
                OfAction::Nicira(NxAction::ResubmitTable {
                    in_port: OFPP_IN_PORT_16,
                    table: 2,
                }),
            ]),
            Instruction::WriteActions(vec![OfAction::output(port_no::NORMAL)]),
            Instruction::WriteMetadata {
                metadata: 5,
                mask: 0xff,
            },
            Instruction::GotoTable(4),
        ];
        let s = to_switch(&ins, &p).unwrap();
        assert_eq!(
            s.actions,
            vec![
                Action::PushVlan(0x8100),
                Action::SetVlanVid(10),
                Action::Output(3),
                Action::Output(0),
                Action::Resubmit(2)
            ]
        );
        assert_eq!(s.instructions.goto_table, Some(4));
        assert_eq!(s.instructions.write_metadata, Some((5, 0xff)));
        assert_eq!(s.instructions.write_actions, Some(vec![Action::Normal]));
        let back = from_switch(&s.actions, &s.instructions, &p);
        assert_eq!(back, ins);
    }

    #[test]
    fn l3_l4_rewrites_and_reserved_ports_round_trip() {
        let p = PortMap::new(Some(0));
        let sf = |f: Field, v: &[u8]| OfAction::SetField(OxmField::exact(f, v));
        let cases = [
            (sf(Field::Ipv4Src, &[10, 7, 7, 7]), "mod_nw_src:10.7.7.7"),
            (sf(Field::Ipv4Dst, &[10, 7, 7, 8]), "mod_nw_dst:10.7.7.8"),
            (
                sf(
                    Field::Ipv6Dst,
                    &"fd00::99".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                ),
                "set_field:fd00::99->ipv6_dst",
            ),
            (
                sf(
                    Field::Ipv6Src,
                    &"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                ),
                "set_field:fd00::1->ipv6_src",
            ),
            (
                sf(Field::TcpSrc, &8080u16.to_be_bytes()),
                "set_field:8080->tcp_src",
            ),
            (
                sf(Field::TcpDst, &80u16.to_be_bytes()),
                "set_field:80->tcp_dst",
            ),
            (
                sf(Field::UdpSrc, &53u16.to_be_bytes()),
                "set_field:53->udp_src",
            ),
            (
                sf(Field::UdpDst, &5353u16.to_be_bytes()),
                "set_field:5353->udp_dst",
            ),
            (
                sf(Field::SctpSrc, &9u16.to_be_bytes()),
                "set_field:9->sctp_src",
            ),
            (
                sf(Field::SctpDst, &10u16.to_be_bytes()),
                "set_field:10->sctp_dst",
            ),
            (sf(Field::IpEcn, &[3]), "mod_nw_ecn:3"),
            (OfAction::SetNwTtl(5), "mod_nw_ttl:5"),
            (OfAction::output(port_no::IN_PORT), "IN_PORT"),
            (OfAction::output(port_no::ALL), "ALL"),
            (OfAction::output(port_no::FLOOD), "FLOOD"),
        ];
        for (of, text) in cases {
            let a = action_to_switch(&of, &p).unwrap();
            assert_eq!(a.to_string(), text);
            assert_eq!(text.parse::<Action>().unwrap(), a);
            assert_eq!(action_from_switch(&a, &p).unwrap(), of);
        }
        // Out-of-range values are BAD_SET_ARGUMENT.
        let e = action_to_switch(&sf(Field::IpEcn, &[4]), &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_SET_ARGUMENT);
    }

    #[test]
    fn set_fields_need_their_prerequisites_in_the_match() {
        let m = |s: &str| s.parse::<switch::rule::RuleSpec>().unwrap().matcher;
        let acts = |s: &str| {
            let (actions, instructions) = switch::action::parse_instructions(s).unwrap();
            SwitchActions {
                actions,
                instructions,
            }
        };
        let ok = [
            ("ip,actions=mod_nw_src:1.2.3.4", "mod_nw_src:1.2.3.4"),
            (
                "udp,actions=drop",
                "set_field:53->udp_dst,set_field:1->ip_ecn",
            ),
            (
                "ipv6,actions=drop",
                "set_field:fd00::1->ipv6_dst,dec_ttl,mod_nw_ttl:3",
            ),
            ("dl_vlan=5,actions=drop", "mod_vlan_vid:6,pop_vlan"),
            (
                "actions=drop",
                "push_vlan:0x8100,mod_vlan_vid:6,mod_dl_src:02:00:00:00:00:01",
            ),
            ("tcp6,actions=drop", "write_actions(set_field:80->tcp_src)"),
        ];
        for (mt, a) in ok {
            check_consistency(&acts(a), &m(mt)).unwrap_or_else(|e| panic!("{mt} {a}: {e:?}"));
        }
        let inconsistent = [
            ("actions=drop", "mod_nw_src:1.2.3.4"),
            ("ipv6,actions=drop", "mod_nw_dst:1.2.3.4"),
            ("ip,actions=drop", "set_field:fd00::1->ipv6_src"),
            ("udp,actions=drop", "set_field:80->tcp_dst"),
            ("ip,actions=drop", "set_field:80->udp_dst"),
            ("actions=drop", "dec_ttl"),
            ("arp,actions=drop", "mod_nw_ttl:4"),
            ("actions=drop", "set_field:1->ip_ecn"),
            ("actions=drop", "mod_vlan_vid:6"),
            ("dl_vlan=5,actions=drop", "pop_vlan,mod_vlan_pcp:3"),
            ("actions=drop", "write_actions(set_ip_dscp:3)"),
        ];
        for (mt, a) in inconsistent {
            let e = check_consistency(&acts(a), &m(mt)).unwrap_err();
            assert_eq!(e.code, bad_action::MATCH_INCONSISTENT, "{mt} {a}");
        }
    }

    #[test]
    fn ct_needs_ip_and_no_commit_from_invalid() {
        let m = |s: &str| s.parse::<switch::rule::RuleSpec>().unwrap().matcher;
        let p = PortMap::new(Some(0));
        let ct = |flags, nat: Option<openflow::nicira::Nat>| {
            let c = openflow::nicira::Ct {
                flags,
                zone_src: 0,
                zone: 0,
                recirc_table: 0xff,
                alg: 0,
                actions: nat
                    .map(|n| OfAction::Nicira(NxAction::Nat(n)))
                    .into_iter()
                    .collect(),
            };
            to_switch(
                &[Instruction::ApplyActions(vec![OfAction::Nicira(
                    NxAction::Ct(c),
                )])],
                &p,
            )
            .unwrap()
        };
        let commit = openflow::nicira::ct_flags::COMMIT;
        let snat4 = openflow::nicira::Nat {
            flags: openflow::nx_ct::nat_flags::SRC,
            ipv4_min: Some([10, 0, 0, 1].into()),
            ..Default::default()
        };
        check_consistency(&ct(commit, None), &m("ip,actions=drop")).unwrap();
        check_consistency(&ct(commit, Some(snat4)), &m("tcp,actions=drop")).unwrap();
        for (acts, mt) in [
            (ct(0, None), "actions=drop"),
            (ct(0, None), "arp,actions=drop"),
            (ct(commit, None), "ip,ct_state=+inv+trk,actions=drop"),
            (ct(commit, Some(snat4)), "ipv6,actions=drop"),
        ] {
            let e = check_consistency(&acts, &m(mt)).unwrap_err();
            assert_eq!(e.code, bad_action::MATCH_INCONSISTENT, "{mt}");
        }
        // ct and ct_clear have no place in the action set.
        let e = to_switch(
            &[Instruction::WriteActions(vec![OfAction::Nicira(
                NxAction::CtClear,
            )])],
            &p,
        )
        .unwrap_err();
        assert_eq!(e.code, bad_action::BAD_TYPE);
        // nat and ct_mark writes outside ct.
        let e = action_to_switch(&OfAction::Nicira(NxAction::Nat(snat4)), &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_SET_ARGUMENT);
        let mark = OfAction::SetField(OxmField::exact(Field::NxCtMark, &[0, 0, 0, 1]));
        let e = action_to_switch(&mark, &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_SET_ARGUMENT);
    }

    #[test]
    fn controller_is_the_controller_channel() {
        let p = PortMap::new(Some(0));
        let a = action_to_switch(&OfAction::output(port_no::CONTROLLER), &p).unwrap();
        assert_eq!(a, Action::Output(switch::verdict::CONTROLLER_PORT));
        let back = action_from_switch(&a, &p).unwrap();
        assert_eq!(back, OfAction::output(port_no::CONTROLLER));
    }

    /// The bytes of `ovs-ofctl parse-actions OpenFlow13` (OVS 3.1): what
    /// OVS decodes as `set_tunnel:0x2a`, `set_tunnel64:0x2a` and
    /// `set_field:0x2a->tun_id`, and the one encoding it gives all three in
    /// OpenFlow 1.3.
    const NXAST_SET_TUNNEL: [u8; 16] = [
        0xff, 0xff, 0x00, 0x10, 0x00, 0x00, 0x23,
        0x20, // experimenter, 16 bytes, NX_VENDOR_ID
        0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // subtype 2, pad, tun_id (32)
    ];
    const NXAST_SET_TUNNEL64: [u8; 24] = [
        0xff, 0xff, 0x00, 0x18, 0x00, 0x00, 0x23,
        0x20, // experimenter, 24 bytes, NX_VENDOR_ID
        0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // subtype 9, pad
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // tun_id (64)
    ];
    const SET_FIELD_TUNNEL_ID: [u8; 16] = [
        0x00, 0x19, 0x00, 0x10, 0x80, 0x00, 0x4c,
        0x08, // SET_FIELD, 16 bytes, OXM_OF_TUNNEL_ID
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // value
    ];

    #[test]
    fn set_tunnel_and_set_tunnel64_decode_to_the_tunnel_key_and_encode_as_ovs() {
        let p = PortMap::new(Some(0));
        for wire in [
            &NXAST_SET_TUNNEL[..],
            &NXAST_SET_TUNNEL64[..],
            &SET_FIELD_TUNNEL_ID[..],
        ] {
            let (of, len) = OfAction::parse(wire).unwrap();
            assert_eq!(len, wire.len());
            let mut again = Vec::new();
            of.emit(&mut again).unwrap();
            assert_eq!(again, wire, "{of:?} re-emitted");
            let a = action_to_switch(&of, &p).unwrap();
            assert_eq!(a, Action::SetTunId(0x2a));
            assert_eq!(a.to_string(), "set_field:0x2a->tun_id");
            let mut back = Vec::new();
            action_from_switch(&a, &p).unwrap().emit(&mut back).unwrap();
            assert_eq!(back, SET_FIELD_TUNNEL_ID);
        }
        // The text forms ovs-ofctl takes parse to the same action.
        for text in ["set_tunnel:42", "set_tunnel64:0x2a", "set_field:42->tun_id"] {
            assert_eq!(text.parse::<Action>().unwrap(), Action::SetTunId(0x2a));
        }
        // The widest VNI; one bit more (a 64-bit key OVS would take) is
        // refused with an OpenFlow error.
        let wide = |k: u64| OfAction::Nicira(NxAction::SetTunnel64(k));
        assert_eq!(
            action_to_switch(&wide(0xff_ffff), &p).unwrap(),
            Action::SetTunId(0xff_ffff)
        );
        for k in [0x100_0000, 0x1_2345_678a, u64::MAX] {
            let e = action_to_switch(&wide(k), &p).unwrap_err();
            assert_eq!(e.code, bad_action::BAD_ARGUMENT, "{k:#x}");
        }
        let e = action_to_switch(&OfAction::Nicira(NxAction::SetTunnel(u32::MAX)), &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_ARGUMENT);
    }

    #[test]
    fn unsupported_actions_get_openflow_errors() {
        let p = PortMap::new(Some(0));
        let e = action_to_switch(&OfAction::output(200), &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_OUT_PORT);
        let e = action_to_switch(
            &OfAction::SetField(OxmField::exact(Field::MplsTc, &[1])),
            &p,
        )
        .unwrap_err();
        assert_eq!(e.code, bad_action::BAD_SET_TYPE);
        // push_vlan: as OVS, 0x8100 and 0x88a8 only (OFPBAC_BAD_ARGUMENT).
        for tpid in [0x0800, 0x9100] {
            let e = action_to_switch(&OfAction::PushVlan(tpid), &p).unwrap_err();
            assert_eq!(e.code, bad_action::BAD_ARGUMENT);
        }
        let e = to_switch(&[Instruction::GotoTable(1), Instruction::GotoTable(2)], &p).unwrap_err();
        assert_eq!(e.code, bad_instruction::UNSUP_INST);
        let e = to_switch(&[Instruction::Meter(1)], &p).unwrap_err();
        assert_eq!(e.code, bad_instruction::UNSUP_INST);
    }
}
