//! Flows over OpenFlow 1.0: OFPT_FLOW_MOD / NXT_FLOW_MOD onto the switch's
//! tables, NXST_FLOW entries back, and OpenFlow 1.0 actions ↔ switch
//! actions.
//!
//! The match arrives as OXM fields (from `ofp10_match` or NXM, see
//! [`openflow::of10`]) and goes through [`crate::flow_match`] like a 1.3
//! match, so a flow added in 1.0 and in 1.3 is the same rule. What differs
//! is 1.0's semantics, as Open vSwitch implements them:
//!
//! * a table is named only with NXT_FLOW_MOD_TABLE_ID (the command's high
//!   byte); otherwise an add goes to table 0 and a modify or delete reaches
//!   every table (`ofputil_decode_flow_mod`);
//! * a modify that reaches no flow adds one (OpenFlow 1.0.0 §4.6, "If no
//!   flow entry currently exists ... the MODIFY ... is treated as an ADD");
//! * `mod_vlan_vid` / `mod_vlan_pcp` push a tag on an untagged frame, so
//!   they need no VLAN in the match;
//! * NXM_NX_COOKIE in an NXM match selects by cookie.
//!
//! Back to 1.0 a rule's actions are encoded as `ovs-ofctl` encodes the same
//! text (`encode_*` in Open vSwitch `lib/ofp-actions.c`): `set_field`s of
//! the 1.0 fields as OFPAT10_SET_*, `dec_ttl` as NXAST_DEC_TTL,
//! `goto_table` as NXAST_RESUBMIT_TABLE, `write_metadata` as
//! NXAST_WRITE_METADATA, a tunnel key as NXAST_SET_TUNNEL(64), and
//! `push_vlan` as nothing (in 1.0 it is implied by `mod_vlan_vid`).

use openflow::action::Action as OfAction;
use openflow::error_msg::{self, bad_action, ErrorType};
use openflow::nicira::{reg_load_ofs_nbits, NxAction, OFPP_IN_PORT_16};
use openflow::of10::action::{port_no, Action10};
use openflow::of10::flow_mod::{command, flags, FlowModFields};
use openflow::of10::matching::{port_to_16, port_to_32};
use openflow::of10::nxm;
use openflow::of10::stats::NxFlowStats;
use openflow::oxm::{class, Field, OxmField};
use openflow::Match as OfMatch;
use switch::action::{Action, Instructions, L4Proto};
use switch::rule::RuleSpec;
use switch::table::AddOptions;

use crate::actions::{self, SwitchActions};
use crate::bridge::Bridge;
use crate::consts::{NO_BUFFER, N_TABLES, OFPG_ANY, OFPP_ANY, OFPTT_ALL};
use crate::error::OfError;
use crate::flow_match;
use crate::flow_mod::filter;
use crate::of10::State;
use crate::port_map::PortMap;

/// NXM_OF_VLAN_TCI as a `set_field` destination.
const VLAN_TCI: switch::regs::RegField =
    switch::regs::RegField::Pkt(switch::pkt_field::PktField::VlanTci);

/// NXAST_DEC_TTL's subtype.
const NXAST_DEC_TTL: u16 = 18;
/// NXAST_WRITE_METADATA's subtype.
const NXAST_WRITE_METADATA: u16 = 22;
/// NXM_NX_COOKIE's field code (class 1).
const NXM_NX_COOKIE: u8 = 30;

/// Takes NXM_NX_COOKIE out of a match: (cookie, mask).
fn take_cookie(fields: &mut Vec<OxmField>) -> (u64, u64) {
    let is_cookie = |f: &OxmField| {
        f.field
            == Field::Unknown {
                class: class::NXM_1,
                field: NXM_NX_COOKIE,
                experimenter: 0,
            }
    };
    let Some(i) = fields.iter().position(is_cookie) else {
        return (0, 0);
    };
    let f = fields.remove(i);
    (
        f.value_u64().unwrap_or(0),
        f.mask
            .as_ref()
            .map_or(u64::MAX, |_| f.mask_u64().unwrap_or(0)),
    )
}

/// Carries out an OFPT_FLOW_MOD or NXT_FLOW_MOD whose match is `fields`.
pub(crate) fn flow_mod(
    br: &Bridge,
    st: &State,
    mut fields: Vec<OxmField>,
    fm: &FlowModFields,
) -> Result<(), OfError> {
    let map = br.port_map();
    let now = br.now_ms();
    let cookie = take_cookie(&mut fields);
    let (table, cmd) = fm.table_and_command(st.table_id_ext);
    let m = OfMatch { fields };
    let strict = matches!(cmd, command::MODIFY_STRICT | command::DELETE_STRICT);
    let table = table.unwrap_or(if cmd == command::ADD { 0 } else { OFPTT_ALL });
    let reached = |out: u32| {
        filter(
            &map,
            table,
            &m,
            strict,
            fm.priority,
            cookie,
            (out, OFPG_ANY),
        )
    };
    match cmd {
        command::ADD => add(br, &map, table, &m, fm, now),
        command::MODIFY | command::MODIFY_STRICT => {
            let f = reached(OFPP_ANY)?;
            let acts = list_to_switch(&fm.actions, &map)?;
            check(&acts, &f.matcher)?;
            let n = br
                .sw
                .table
                .modify(&f, acts, Instructions::default(), false)?;
            note_modified(br, &f, now);
            if n == 0 {
                let t = if table == OFPTT_ALL { 0 } else { table };
                add(br, &map, t, &m, fm, now)?;
            }
            Ok(())
        }
        command::DELETE | command::DELETE_STRICT => {
            let f = reached(port_to_32(fm.out_port))?;
            let gone = br.sw.table.delete(&f, now);
            br.flow_removed(&gone);
            Ok(())
        }
        c => Err(OfError::new(
            ErrorType::FlowModFailed,
            error_msg::flow_mod_failed::BAD_COMMAND,
            format!("flow_mod command {c}"),
        )),
    }
}

fn add(
    br: &Bridge,
    map: &PortMap,
    table: u8,
    m: &OfMatch,
    fm: &FlowModFields,
    now: u64,
) -> Result<(), OfError> {
    if table >= N_TABLES {
        return Err(OfError::new(
            ErrorType::FlowModFailed,
            error_msg::flow_mod_failed::BAD_TABLE_ID,
            format!("table {table}"),
        ));
    }
    if fm.buffer_id != NO_BUFFER {
        return Err(OfError::request(
            error_msg::bad_request::BUFFER_UNKNOWN,
            "this switch buffers no packets",
        ));
    }
    let acts = list_to_switch(&fm.actions, map)?;
    let matcher = flow_match::to_switch(&m.fields, map)?;
    check(&acts, &matcher)?;
    let mut spec = RuleSpec::new(matcher, acts);
    spec.table = table;
    spec.cookie = fm.cookie;
    spec.priority = fm.priority;
    spec.idle_timeout = fm.idle_timeout;
    spec.hard_timeout = fm.hard_timeout;
    spec.send_flow_rem = fm.flags & flags::SEND_FLOW_REM != 0;
    let opts = AddOptions {
        check_overlap: fm.flags & flags::CHECK_OVERLAP != 0,
        keep_counters: true,
    };
    br.sw.table.add_with(spec, now, opts)?;
    Ok(())
}

/// Records that the rules `f` selects were modified at `now` (the hard age
/// of NXST_FLOW, OVS's `rule->modified`); forgets rules that are gone.
pub(crate) fn note_modified(br: &Bridge, f: &switch::rule::FlowFilter, now: u64) {
    let snap = br.sw.table.snapshot();
    let mut m = br.modified.lock().unwrap_or_else(|e| e.into_inner());
    m.retain(|id, _| snap.rules.iter().any(|r| r.id == *id));
    for r in snap.rules.iter().filter(|r| f.selects(&r.spec)) {
        m.insert(r.id, now);
    }
}

/// OVS's consistency checks, except that 1.0's VLAN rewrites push a tag
/// when there is none (`push_vlan_if_needed`), so need none in the match.
fn check(acts: &[Action], m: &switch::rule::Match) -> Result<(), OfError> {
    let checked = SwitchActions {
        actions: acts
            .iter()
            .filter(|a| !matches!(a, Action::SetVlanVid(_) | Action::SetVlanPcp(_)))
            .cloned()
            .collect(),
        instructions: Instructions::default(),
    };
    actions::check_consistency(&checked, m)
}

/// Translates one OpenFlow 1.0 action.
pub(crate) fn action_to_switch(a: &Action10, map: &PortMap) -> Result<Action, OfError> {
    let arg = |why: String| OfError::action(bad_action::BAD_ARGUMENT, why);
    Ok(match *a {
        Action10::Output { port, max_len } => actions::action_to_switch(
            &OfAction::Output {
                port: port_to_32(port),
                max_len,
            },
            map,
        )?,
        Action10::SetVlanVid(v) if v > 0x0fff => return Err(arg(format!("vlan id {v}"))),
        Action10::SetVlanVid(v) => Action::SetVlanVid(v),
        Action10::SetVlanPcp(p) if p > 7 => return Err(arg(format!("vlan pcp {p}"))),
        Action10::SetVlanPcp(p) => Action::SetVlanPcp(p),
        Action10::StripVlan => Action::PopVlan,
        Action10::SetDlSrc(m) => Action::SetEthSrc(m),
        Action10::SetDlDst(m) => Action::SetEthDst(m),
        Action10::SetNwSrc(ip) => Action::SetIpv4Src(ip.octets()),
        Action10::SetNwDst(ip) => Action::SetIpv4Dst(ip.octets()),
        // OVS: the ECN bits of mod_nw_tos must be zero.
        Action10::SetNwTos(t) if t & 3 != 0 => return Err(arg(format!("nw_tos {t:#x}"))),
        Action10::SetNwTos(t) => Action::SetIpDscp(t >> 2),
        Action10::SetTpSrc(p) => Action::SetL4Src(L4Proto::Any, p),
        Action10::SetTpDst(p) => Action::SetL4Dst(L4Proto::Any, p),
        Action10::Vendor(OfAction::Nicira(NxAction::Raw {
            subtype: NXAST_DEC_TTL,
            ..
        })) => Action::DecTtl,
        Action10::Vendor(ref v) => actions::action_to_switch(v, map)?,
        Action10::Enqueue { .. } => {
            return Err(OfError::action(
                bad_action::BAD_QUEUE,
                "enqueue: this switch has no queues",
            ))
        }
        Action10::Unknown { action_type, .. } => {
            return Err(OfError::action(
                bad_action::BAD_TYPE,
                format!("unknown OpenFlow 1.0 action type {action_type}"),
            ))
        }
    })
}

/// Translates an OpenFlow 1.0 action list.
pub(crate) fn list_to_switch(list: &[Action10], map: &PortMap) -> Result<Vec<Action>, OfError> {
    list.iter().map(|a| action_to_switch(a, map)).collect()
}

fn output(port: u32) -> Option<Action10> {
    let p = port_to_16(port)?;
    Some(Action10::Output {
        port: p,
        max_len: if p == port_no::CONTROLLER { 0xffff } else { 0 },
    })
}

fn nx(a: NxAction) -> Action10 {
    Action10::Vendor(OfAction::Nicira(a))
}

/// The OpenFlow 1.0 encoding of one switch action (`None`: 1.0 has none,
/// as `push_vlan`).
pub(crate) fn action_from_switch(a: &Action, map: &PortMap) -> Option<Action10> {
    Some(match *a {
        Action::Output(n) => return output(map.to_openflow(n)),
        Action::Flood => return output(0xffff_fffb),
        Action::Normal | Action::NormalFrom(_) => return output(0xffff_fffa),
        Action::All => return output(0xffff_fffc),
        Action::InPort => return output(0xffff_fff8),
        Action::Drop | Action::PushVlan(_) => return None,
        Action::PopVlan => Action10::StripVlan,
        Action::SetVlanVid(v) => Action10::SetVlanVid(v),
        Action::SetVlanPcp(p) => Action10::SetVlanPcp(p),
        Action::SetEthSrc(m) => Action10::SetDlSrc(m),
        Action::SetEthDst(m) => Action10::SetDlDst(m),
        Action::SetIpv4Src(ip) => Action10::SetNwSrc(ip.into()),
        Action::SetIpv4Dst(ip) => Action10::SetNwDst(ip.into()),
        Action::SetIpDscp(d) => Action10::SetNwTos(d << 2),
        Action::SetL4Src(_, p) => Action10::SetTpSrc(p),
        Action::SetL4Dst(_, p) => Action10::SetTpDst(p),
        Action::DecTtl => nx(NxAction::Raw {
            subtype: NXAST_DEC_TTL,
            data: vec![0; 6],
        }),
        Action::SetTunId(k) => nx(NxAction::set_tunnel(u64::from(k))),
        Action::SetArpOp(_)
        | Action::SetArpSpa(_)
        | Action::SetArpTpa(_)
        | Action::SetArpSha(_)
        | Action::SetArpTha(_)
        | Action::SetIcmpType(_)
        | Action::SetIcmpCode(_) => nx(crate::reg_fields::pkt_set_as_reg_load(a)?),
        // A set_field of a packet field kept as a load (`in_port`): OVS's
        // `set_field_to_nxast`, printed `load:0x5->NXM_OF_IN_PORT[]`.
        Action::SetReg(l) if l.set_field && !l.dst.field.is_reg() => nx(NxAction::RegLoad {
            ofs_nbits: reg_load_ofs_nbits(0, u16::from(l.dst.n_bits)),
            dst: crate::reg_fields::header(l.dst.field),
            value: l.value(),
        }),
        _ => match actions::action_from_switch(a, map)? {
            // NXAST_CT's exec(...) in 1.0 form (no set_field there).
            OfAction::Nicira(NxAction::Ct(mut c)) => {
                crate::ct_action::nested_for_of10(&mut c);
                nx(NxAction::Ct(c))
            }
            v @ OfAction::Nicira(_) => Action10::Vendor(v),
            // OpenFlow 1.0 has no set_field: OVS sends a whole-field write
            // of an NXM field (a register) as NXAST_REG_LOAD, which
            // `ovs-ofctl` prints `load:V->NXM_NX_REG1[]`.
            OfAction::SetField(f) => {
                let bits = 8 * f.value.len();
                let (dst, value) = (f.field.nxm_header()?, f.value_u64()?);
                nx(NxAction::RegLoad {
                    ofs_nbits: reg_load_ofs_nbits(0, bits as u16),
                    dst,
                    value,
                })
            }
            _ => return None,
        },
    })
}

/// A rule's actions and instructions in 1.0 form (apply-actions, then
/// write_metadata, then goto_table as a resubmit, as OVS orders them).
pub(crate) fn list_from_switch(
    acts: &[Action],
    ins: &Instructions,
    map: &PortMap,
) -> Vec<Action10> {
    let mut out: Vec<Action10> = acts
        .iter()
        .flat_map(|a| match a {
            // A whole-`xxreg` set_field: OpenFlow 1.0 has no set_field and
            // REG_LOAD carries 64 bits, so two loads (OVS's
            // `next_load_segment`, printed as two `load:`s).
            Action::SetXxReg(x) => {
                let h = crate::reg_fields::header(x.dst().field);
                let v = x.value();
                [(0u16, v as u64), (64, (v >> 64) as u64)]
                    .into_iter()
                    .map(|(ofs, value)| {
                        nx(NxAction::RegLoad {
                            ofs_nbits: reg_load_ofs_nbits(ofs, 64),
                            dst: h,
                            value,
                        })
                    })
                    .collect()
            }
            // A set_field of vlan_tci: OVS's `set_field_to_legacy_openflow`
            // (with the CFI bit the VID and PCP set, else the tag stripped).
            Action::SetReg(l) if l.set_field && l.dst.field == VLAN_TCI => {
                let tci = l.value() as u16;
                if tci & switch::key::VLAN_PRESENT != 0 {
                    vec![
                        Action10::SetVlanVid(tci & 0x0fff),
                        Action10::SetVlanPcp((tci >> 13) as u8),
                    ]
                } else {
                    vec![Action10::StripVlan]
                }
            }
            _ => action_from_switch(a, map).into_iter().collect::<Vec<_>>(),
        })
        .collect();
    if let Some((metadata, mask)) = ins.write_metadata {
        let mut data = vec![0; 6];
        data.extend_from_slice(&metadata.to_be_bytes());
        data.extend_from_slice(&mask.to_be_bytes());
        out.push(nx(NxAction::Raw {
            subtype: NXAST_WRITE_METADATA,
            data,
        }));
    }
    if let Some(t) = ins.goto_table {
        out.push(nx(NxAction::ResubmitTable {
            in_port: OFPP_IN_PORT_16,
            table: t,
        }));
    }
    out
}

/// The flows in `table` (0xff: all) that `fields` selects (not strict) and
/// that output to `out_port` (0xffff: any), as NXST_FLOW entries.
pub(crate) fn flow_stats(
    br: &Bridge,
    table: u8,
    mut fields: Vec<OxmField>,
    out_port: u16,
) -> Result<Vec<NxFlowStats>, OfError> {
    let map = br.port_map();
    let cookie = take_cookie(&mut fields);
    let m = OfMatch { fields };
    let f = filter(
        &map,
        table,
        &m,
        false,
        0,
        cookie,
        (port_to_32(out_port), OFPG_ANY),
    )
    .map_err(|mut e| {
        if e.ty == ErrorType::FlowModFailed {
            e = OfError::request(error_msg::bad_request::BAD_TABLE_ID, e.why);
        }
        e
    })?;
    let now = br.now_ms();
    let snap = br.sw.table.snapshot();
    let modified = br
        .modified
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut out = Vec::new();
    for rule in snap
        .rules
        .iter()
        .filter(|r| f.selects(&r.spec) && r.spec.cookie != crate::FAIL_OPEN_COOKIE)
    {
        let s = &rule.spec;
        let (packets, bytes, used) = rule.counters();
        let age = now.saturating_sub(rule.created_ms);
        // nx_flow_stats: "seconds since ..., plus one" (0: unknown).
        let plus_one = |t: u64| (now.saturating_sub(t) / 1000 + 1).min(u64::from(u16::MAX)) as u16;
        let changed = modified.get(&rule.id).copied().unwrap_or(rule.created_ms);
        out.push(NxFlowStats {
            table_id: s.table,
            duration_sec: (age / 1000) as u32,
            duration_nsec: ((age % 1000) * 1_000_000) as u32,
            priority: s.priority,
            idle_timeout: s.idle_timeout,
            hard_timeout: s.hard_timeout,
            idle_age: plus_one(used),
            hard_age: plus_one(changed),
            cookie: s.cookie,
            packet_count: packets,
            byte_count: bytes,
            matching: nxm::from_oxm(&flow_match::from_switch(&s.matcher, &map)).unwrap_or_default(),
            actions: list_from_switch(&s.actions, &s.instructions, &map),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::of10::action::Action10 as A;

    #[test]
    fn one_zero_actions_round_trip_through_the_switch() {
        let map = PortMap::new(Some(0));
        let list = vec![
            A::SetVlanVid(7),
            A::SetNwTos(8),
            A::SetTpDst(99),
            A::StripVlan,
            A::SetDlSrc([2, 0, 0, 0, 0, 0x99]),
            A::SetNwDst([10, 0, 0, 9].into()),
            A::Output {
                port: port_no::NORMAL,
                max_len: 0,
            },
            A::Output {
                port: port_no::LOCAL,
                max_len: 0,
            },
            A::Output {
                port: 3,
                max_len: 0,
            },
            A::Vendor(OfAction::Nicira(NxAction::ResubmitTable {
                in_port: OFPP_IN_PORT_16,
                table: 2,
            })),
            nx(NxAction::Raw {
                subtype: NXAST_DEC_TTL,
                data: vec![0; 6],
            }),
        ];
        let sw = list_to_switch(&list, &map).unwrap();
        assert_eq!(sw[0], Action::SetVlanVid(7));
        assert_eq!(sw[1], Action::SetIpDscp(2));
        assert_eq!(sw[7], Action::Output(0));
        assert_eq!(sw[10], Action::DecTtl);
        let back = list_from_switch(&sw, &Instructions::default(), &map);
        assert_eq!(back, list);
    }

    #[test]
    fn bad_one_zero_actions_are_refused() {
        let map = PortMap::new(None);
        for (a, code) in [
            (A::SetVlanVid(0x1000), bad_action::BAD_ARGUMENT),
            (A::SetNwTos(1), bad_action::BAD_ARGUMENT),
            (
                A::Enqueue {
                    port: 1,
                    queue_id: 1,
                },
                bad_action::BAD_QUEUE,
            ),
            (
                A::Unknown {
                    action_type: 99,
                    data: vec![0; 4],
                },
                bad_action::BAD_TYPE,
            ),
            (
                A::Output {
                    port: port_no::TABLE,
                    max_len: 0,
                },
                bad_action::BAD_OUT_PORT,
            ),
        ] {
            let e = action_to_switch(&a, &map).unwrap_err();
            assert_eq!((e.ty, e.code), (ErrorType::BadAction, code), "{a:?}");
        }
    }

    #[test]
    fn goto_table_and_write_metadata_as_ovs_encodes_them_in_one_zero() {
        let ins = Instructions {
            goto_table: Some(3),
            write_metadata: Some((1, 0xff)),
            ..Default::default()
        };
        let l = list_from_switch(&[Action::PushVlan(0x8100)], &ins, &PortMap::new(None));
        let mut out = Vec::new();
        Action10::emit_list(&l, &mut out).unwrap();
        // NXAST_WRITE_METADATA (32 bytes) then NXAST_RESUBMIT_TABLE.
        assert_eq!(out.len(), 48);
        assert_eq!(&out[8..10], &[0, 22]);
        assert_eq!(
            &out[32..],
            &[0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 14, 0xff, 0xf8, 3, 0, 0, 0]
        );
    }
}
