//! OpenFlow instructions and actions ↔ the switch's action lists.
//!
//! OpenFlow 1.3 §5.9–5.12: an `apply_actions` list runs in order (the
//! switch's `actions=`), `write_actions`/`clear_actions` edit the action
//! set that runs at the end of the pipeline, `write_metadata` and
//! `goto_table` continue the pipeline. Reserved ports map to the switch's
//! own actions (`NORMAL`, `FLOOD`/`ALL` → flood, `LOCAL` → the bridge's
//! internal port); the Nicira `resubmit(,N)` is the switch's resubmit.

use openflow::action::port_no;
use openflow::error_msg::{bad_action, bad_instruction};
use openflow::nicira::{NxAction, OFPP_IN_PORT_16};
use openflow::oxm::{Field, OxmField, OFPVID_PRESENT};
use openflow::{Action as OfAction, Instruction};
use switch::action::{Action, Instructions};

use crate::error::OfError;
use crate::port_map::PortMap;

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
            port_no::FLOOD | port_no::ALL => Action::Flood,
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
            if !matches!(*tpid, 0x8100 | 0x88a8 | 0x9100) {
                return Err(OfError::action(
                    bad_action::BAD_ARGUMENT,
                    format!("push_vlan ethertype {tpid:#06x}"),
                ));
            }
            Action::PushVlan(*tpid)
        }
        OfAction::PopVlan => Action::PopVlan,
        OfAction::Group(g) => Action::Group(*g),
        OfAction::DecNwTtl => Action::DecTtl,
        OfAction::SetField(f) => set_field(f)?,
        OfAction::Nicira(NxAction::ResubmitTable { in_port, table })
            if *in_port == OFPP_IN_PORT_16 =>
        {
            Action::Resubmit(*table)
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

fn set_field(f: &OxmField) -> Result<Action, OfError> {
    let bad = || {
        OfError::action(
            bad_action::BAD_SET_ARGUMENT,
            format!("bad set_field value {f:?}"),
        )
    };
    if f.mask.is_some() {
        return Err(OfError::action(
            bad_action::BAD_SET_TYPE,
            "masked set_field is not supported",
        ));
    }
    Ok(match f.field {
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
                out.instructions.write_actions = Some(list_to_switch(list, ports)?)
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

/// The OpenFlow form of one switch action.
pub fn action_from_switch(a: &Action, ports: &PortMap) -> Option<OfAction> {
    Some(match *a {
        // Whole frames (no buffering): OFPCML_NO_BUFFER.
        Action::Output(n) => OfAction::output(ports.to_openflow(n)),
        Action::Flood => OfAction::output(port_no::FLOOD),
        Action::Normal => OfAction::output(port_no::NORMAL),
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
    fn controller_is_the_controller_channel() {
        let p = PortMap::new(Some(0));
        let a = action_to_switch(&OfAction::output(port_no::CONTROLLER), &p).unwrap();
        assert_eq!(a, Action::Output(switch::verdict::CONTROLLER_PORT));
        let back = action_from_switch(&a, &p).unwrap();
        assert_eq!(back, OfAction::output(port_no::CONTROLLER));
    }

    #[test]
    fn unsupported_actions_get_openflow_errors() {
        let p = PortMap::new(Some(0));
        let e = action_to_switch(&OfAction::output(200), &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_OUT_PORT);
        let e = action_to_switch(
            &OfAction::SetField(OxmField::exact(Field::Ipv4Src, &[1, 2, 3, 4])),
            &p,
        )
        .unwrap_err();
        assert_eq!(e.code, bad_action::BAD_SET_TYPE);
        let e = action_to_switch(&OfAction::PushVlan(0x0800), &p).unwrap_err();
        assert_eq!(e.code, bad_action::BAD_ARGUMENT);
        let e = to_switch(&[Instruction::GotoTable(1), Instruction::GotoTable(2)], &p).unwrap_err();
        assert_eq!(e.code, bad_instruction::UNSUP_INST);
        let e = to_switch(&[Instruction::Meter(1)], &p).unwrap_err();
        assert_eq!(e.code, bad_instruction::UNSUP_INST);
    }
}
