//! GROUP_MOD (OpenFlow 1.3 §7.3.4.2): the switch's group table.

use openflow::error_msg::{self, ErrorType};
use openflow::group::{GroupCommand, GroupMod, GroupType as OfGroupType};
use switch::group::{Bucket, GroupSpec, GroupType};

use crate::actions;
use crate::bridge::Bridge;
use crate::consts::{OFPG_ALL, OFPG_ANY, OFPP_ANY};
use crate::error::OfError;

pub(crate) fn handle(br: &Bridge, gm: &GroupMod) -> Result<(), OfError> {
    let map = br.port_map();
    let bad = |code, why: String| OfError::new(ErrorType::GroupModFailed, code, why);
    let spec = || -> Result<GroupSpec, OfError> {
        let kind = match gm.group_type {
            OfGroupType::All => GroupType::All,
            OfGroupType::Select => GroupType::Select,
            OfGroupType::Indirect => GroupType::Indirect,
            OfGroupType::FastFailover => GroupType::FastFailover,
            OfGroupType::Other(t) => {
                return Err(bad(
                    error_msg::group_mod_failed::BAD_TYPE,
                    format!("group type {t}"),
                ))
            }
        };
        let buckets = gm
            .buckets
            .iter()
            .map(|b| {
                if b.watch_group != OFPG_ANY {
                    return Err(bad(
                        error_msg::group_mod_failed::WATCH_UNSUPPORTED,
                        "watch_group is not supported".into(),
                    ));
                }
                let watch_port = match b.watch_port {
                    OFPP_ANY => None,
                    p => Some(map.to_switch(p).ok_or_else(|| {
                        bad(
                            error_msg::group_mod_failed::BAD_WATCH,
                            format!("watch_port {p}"),
                        )
                    })?),
                };
                Ok(Bucket {
                    weight: b.weight,
                    watch_port,
                    actions: actions::list_to_switch(&b.actions, &map)?,
                })
            })
            .collect::<Result<Vec<_>, OfError>>()?;
        Ok(GroupSpec {
            id: gm.group_id,
            kind,
            buckets,
        })
    };
    match gm.command {
        GroupCommand::Add => br.sw.group_add(spec()?)?,
        GroupCommand::Modify => br.sw.group_mod(spec()?)?,
        GroupCommand::Delete => {
            let id = (gm.group_id != OFPG_ALL).then_some(gm.group_id);
            let gone = br.sw.group_del(id);
            br.flow_removed(&gone);
        }
        GroupCommand::Other(c) => {
            return Err(bad(
                error_msg::group_mod_failed::BAD_COMMAND,
                format!("group_mod command {c}"),
            ))
        }
    }
    Ok(())
}
