//! FLOW_MOD (OpenFlow 1.3 §7.3.4.1, §6.4): add, modify and delete rules
//! in the switch's tables, and the filters flow statistics share.

use openflow::error_msg::{self, ErrorType};
use openflow::flow_mod::{flags as ff, FlowMod, FlowModCommand};
use openflow::Match as OfMatch;
use switch::rule::{FlowFilter, RuleSpec};
use switch::table::AddOptions;

use crate::actions;
use crate::bridge::Bridge;
use crate::consts::{NO_BUFFER, N_TABLES, OFPG_ANY, OFPP_ANY, OFPTT_ALL};
use crate::error::OfError;
use crate::flow_match;
use crate::port_map::PortMap;

fn table_filter(t: u8) -> Result<Option<u8>, OfError> {
    match t {
        OFPTT_ALL => Ok(None),
        t if t < N_TABLES => Ok(Some(t)),
        t => Err(OfError::new(
            ErrorType::FlowModFailed,
            error_msg::flow_mod_failed::BAD_TABLE_ID,
            format!("table {t}"),
        )),
    }
}

fn out_port(p: u32, map: &PortMap) -> Option<u16> {
    match p {
        OFPP_ANY => None,
        // A port that cannot exist selects no rule with an output to it;
        // u16::MAX is never a switch port.
        p => Some(map.to_switch(p).unwrap_or(u16::MAX)),
    }
}

pub(crate) fn filter(
    map: &PortMap,
    table: u8,
    m: &OfMatch,
    strict: bool,
    priority: u16,
    cookie: (u64, u64),
    out: (u32, u32),
) -> Result<FlowFilter, OfError> {
    Ok(FlowFilter {
        table: table_filter(table)?,
        matcher: flow_match::to_switch(&m.fields, map)?,
        strict,
        priority: strict.then_some(priority),
        cookie: cookie.0,
        cookie_mask: cookie.1,
        out_port: out_port(out.0, map),
        out_group: (out.1 != OFPG_ANY).then_some(out.1),
    })
}

pub(crate) fn handle(br: &Bridge, fm: &FlowMod) -> Result<(), OfError> {
    let map = br.port_map();
    let now = br.now_ms();
    let strict = matches!(
        fm.command,
        FlowModCommand::ModifyStrict | FlowModCommand::DeleteStrict
    );
    // The flows a modify or delete reaches, restricted to those that output
    // to `out` (port, group).
    let reached = |out| {
        filter(
            &map,
            fm.table_id,
            &fm.matching,
            strict,
            fm.priority,
            (fm.cookie, fm.cookie_mask),
            out,
        )
    };
    match fm.command {
        FlowModCommand::Add => {
            if fm.table_id >= N_TABLES {
                table_filter(fm.table_id)?;
            }
            if fm.buffer_id != NO_BUFFER {
                return Err(OfError::request(
                    error_msg::bad_request::BUFFER_UNKNOWN,
                    "this switch buffers no packets",
                ));
            }
            let acts = actions::to_switch(&fm.instructions, &map)?;
            let matcher = flow_match::to_switch(&fm.matching.fields, &map)?;
            actions::check_consistency(&acts, &matcher)?;
            let mut spec = RuleSpec::new(matcher, acts.actions);
            spec.instructions = acts.instructions;
            spec.table = fm.table_id;
            spec.cookie = fm.cookie;
            spec.priority = fm.priority;
            spec.idle_timeout = fm.idle_timeout;
            spec.hard_timeout = fm.hard_timeout;
            spec.send_flow_rem = fm.flags & ff::SEND_FLOW_REM != 0;
            let opts = AddOptions {
                check_overlap: fm.flags & ff::CHECK_OVERLAP != 0,
                keep_counters: fm.flags & ff::RESET_COUNTS == 0,
            };
            br.sw.table.add_with(spec, now, opts)?;
        }
        FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
            // §6.4: modify ignores out_port/out_group.
            let f = reached((OFPP_ANY, OFPG_ANY))?;
            let acts = actions::to_switch(&fm.instructions, &map)?;
            actions::check_consistency(&acts, &f.matcher)?;
            br.sw.table.modify(
                &f,
                acts.actions,
                acts.instructions,
                fm.flags & ff::RESET_COUNTS != 0,
            )?;
            crate::of10_flow::note_modified(br, &f, now);
        }
        FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
            let f = reached((fm.out_port, fm.out_group))?;
            let gone = br.sw.table.delete(&f, now);
            br.flow_removed(&gone);
        }
        FlowModCommand::Other(c) => {
            return Err(OfError::new(
                ErrorType::FlowModFailed,
                error_msg::flow_mod_failed::BAD_COMMAND,
                format!("flow_mod command {c}"),
            ))
        }
    }
    Ok(())
}
