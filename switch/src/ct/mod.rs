//! Connection tracking in the switch: the `ct` and `ct_clear` actions and
//! the ct match fields, with Open vSwitch's syntax and semantics
//! (`ovs-actions(7)` "The ct action", `ovs-fields(7)`). The tracker itself
//! is the `conntrack` crate; this module is what the rule language, the
//! pipeline and the datapath need around it.
//!
//! * [`key`]: `CtKey`, the 64-byte key of the ct fields beside the flow key;
//! * [`fields`]: the ct match fields in rule text;
//! * [`action`]: `ct(...)` in rule text, and the interned specs behind
//!   [`crate::action::Action::Ct`];
//! * `recirc`: the datapath's ct path (passes, recirculation);
//! * `ipf`: IP fragments held at `ct` until their datagram completes
//!   (OVS's `ipf`), then sent on with its state.

pub mod action;
pub mod fields;
pub(crate) mod ipf;
pub mod key;
pub mod operand;
pub mod recirc;

pub use action::CtId;
pub use key::CtKey;

use crate::action::Action;
use crate::rule::RuleSpec;
use crate::wire::ethernet::ethertype;

/// OVS's consistency rules for rules with ct actions (`check_CT`, else
/// OFPBAC_MATCH_INCONSISTENT): a `ct` needs `ip` or `ipv6` in the match, a
/// committing `ct` may not come from a rule matching `+inv`; `ct` and
/// `ct_clear` are apply-actions only (not in `write_actions`).
pub fn check_rule(r: &RuleSpec) -> Result<(), String> {
    if let Some(a) = r
        .instructions
        .write_actions
        .iter()
        .flatten()
        .find(|a| a.is_ct())
    {
        return Err(format!("`{a}` is not allowed in write_actions"));
    }
    let m = &r.matcher;
    let dl = (m.mask.dl_type() == 0xffff).then(|| m.value.dl_type());
    for a in &r.actions {
        let Action::Ct(c) = a else { continue };
        if !matches!(dl, Some(ethertype::IPV4 | ethertype::IPV6)) {
            return Err(format!("`{a}` needs ip or ipv6 in the match"));
        }
        let inv = conntrack::state::INV;
        if c.spec().commit && m.ct_mask.state() & inv != 0 && m.ct_value.state() & inv != 0 {
            return Err(format!(
                "`{a}`: a rule matching ct_state=+inv cannot commit"
            ));
        }
    }
    Ok(())
}
