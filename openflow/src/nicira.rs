//! Nicira experimenter actions (experimenter id 0x00002320), the ones `ovs-ofctl`
//! emits for this switch: `resubmit`, `set_tunnel`, `ct`, `ct_clear`. Layouts from Open
//! vSwitch's `include/openflow/nicira-ext.h` and `lib/ofp-actions.c`:
//!
//! ```text
//! +-------+-------+---------------+---------+-------------------------+
//! | 0xffff| len   | 0x00002320    | subtype | subtype body, pad to 8  |
//! +-------+-------+---------------+---------+-------------------------+
//! ```
//!
//! Other subtypes are kept as [`NxAction::Raw`].

use crate::action::Action;
use crate::bytes::{round8, u16_at, u32_at, u64_at, u8_at, zeros};
use crate::field::nx_action as field;
use crate::{Error, Result};

/// The Nicira experimenter id (NX_VENDOR_ID).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

/// Nicira action subtypes parsed here.
pub mod subtype {
    #![allow(missing_docs)]
    pub const RESUBMIT: u16 = 1;
    pub const SET_TUNNEL: u16 = 2;
    pub const SET_TUNNEL64: u16 = 9;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const CT: u16 = 35;
    pub const CT_CLEAR: u16 = 43;
}

/// NXAST_CT flags.
pub mod ct_flags {
    /// NX_CT_F_COMMIT.
    pub const COMMIT: u16 = 1 << 0;
    /// NX_CT_F_FORCE.
    pub const FORCE: u16 = 1 << 1;
}

/// The 16-bit OFPP_IN_PORT that `resubmit` uses for "keep the packet's in_port".
pub const OFPP_IN_PORT_16: u16 = 0xfff8;

/// The `ct` action (NXAST_CT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ct {
    /// [`ct_flags`].
    pub flags: u16,
    /// Field to take the zone from (an NXM header), 0 for an immediate zone.
    pub zone_src: u32,
    /// The immediate zone, or ofs_nbits of `zone_src`.
    pub zone: u16,
    /// Table to recirculate to (0xff: none).
    pub recirc_table: u8,
    /// Application layer gateway (0: none, 21: FTP, 69: TFTP).
    pub alg: u16,
    /// Nested actions (nat, set_field of ct_mark / ct_label).
    pub actions: Vec<Action>,
}

/// One Nicira action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NxAction {
    /// NXAST_RESUBMIT: resubmit to the current table with `in_port`.
    Resubmit {
        /// Port to look up with (0xfff8: the packet's own).
        in_port: u16,
    },
    /// NXAST_RESUBMIT_TABLE: `resubmit(port,table)`.
    ResubmitTable {
        /// Port to look up with (0xfff8: the packet's own).
        in_port: u16,
        /// Table (0xff: the current table).
        table: u8,
    },
    /// NXAST_SET_TUNNEL: 32-bit tunnel id.
    SetTunnel(u32),
    /// NXAST_SET_TUNNEL64: 64-bit tunnel id.
    SetTunnel64(u64),
    /// NXAST_CT: send to the connection tracker.
    Ct(Ct),
    /// NXAST_CT_CLEAR.
    CtClear,
    /// Any other subtype: the bytes after the subtype, padding included.
    Raw {
        /// The subtype.
        subtype: u16,
        /// Bytes after the subtype.
        data: Vec<u8>,
    },
}

impl NxAction {
    /// Parses from a whole action (`a` starts at the action type and is exactly `len`
    /// bytes, a multiple of 8 of at least 8).
    pub(crate) fn parse(a: &[u8], depth: usize) -> Result<NxAction> {
        if a.len() < field::LEN {
            return Err(Error::BadAction("Nicira action shorter than 16 bytes"));
        }
        let st = u16_at(a, field::SUBTYPE);
        let fixed = |n: usize| {
            if a.len() == n {
                Ok(())
            } else {
                Err(Error::BadAction("wrong length for the Nicira action"))
            }
        };
        Ok(match st {
            subtype::RESUBMIT => {
                fixed(field::LEN)?;
                NxAction::Resubmit {
                    in_port: u16_at(a, field::RESUBMIT_IN_PORT),
                }
            }
            subtype::RESUBMIT_TABLE => {
                fixed(field::LEN)?;
                NxAction::ResubmitTable {
                    in_port: u16_at(a, field::RESUBMIT_IN_PORT),
                    table: u8_at(a, field::RESUBMIT_TABLE),
                }
            }
            subtype::SET_TUNNEL => {
                fixed(field::LEN)?;
                NxAction::SetTunnel(u32_at(a, field::SET_TUNNEL_ID))
            }
            subtype::SET_TUNNEL64 => {
                fixed(field::SET_TUNNEL64_LEN)?;
                NxAction::SetTunnel64(u64_at(a, field::SET_TUNNEL64_ID))
            }
            subtype::CT_CLEAR => {
                fixed(field::LEN)?;
                NxAction::CtClear
            }
            subtype::CT => {
                if a.len() < field::CT_LEN {
                    return Err(Error::BadAction("ct action shorter than 24 bytes"));
                }
                NxAction::Ct(Ct {
                    flags: u16_at(a, field::CT_FLAGS),
                    zone_src: u32_at(a, field::CT_ZONE_SRC),
                    zone: u16_at(a, field::CT_ZONE),
                    recirc_table: u8_at(a, field::CT_RECIRC_TABLE),
                    alg: u16_at(a, field::CT_ALG),
                    actions: Action::parse_list_nested(&a[field::CT_ACTIONS..], depth + 1)?,
                })
            }
            st => NxAction::Raw {
                subtype: st,
                data: a[field::BODY..].to_vec(),
            },
        })
    }

    /// The subtype code.
    pub fn subtype(&self) -> u16 {
        match self {
            NxAction::Resubmit { .. } => subtype::RESUBMIT,
            NxAction::ResubmitTable { .. } => subtype::RESUBMIT_TABLE,
            NxAction::SetTunnel(_) => subtype::SET_TUNNEL,
            NxAction::SetTunnel64(_) => subtype::SET_TUNNEL64,
            NxAction::Ct(_) => subtype::CT,
            NxAction::CtClear => subtype::CT_CLEAR,
            NxAction::Raw { subtype, .. } => *subtype,
        }
    }

    /// Bytes the whole action (header included) occupies.
    pub fn buffer_len(&self) -> usize {
        match self {
            NxAction::SetTunnel64(_) => field::SET_TUNNEL64_LEN,
            NxAction::Ct(c) => field::CT_LEN + Action::list_len(&c.actions),
            NxAction::Raw { data, .. } => round8(field::BODY + data.len()),
            _ => field::LEN,
        }
    }

    /// Appends subtype and body (after type, len and experimenter id); the caller
    /// pads to `buffer_len`.
    pub(crate) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.subtype().to_be_bytes());
        match self {
            NxAction::Resubmit { in_port } => out.extend_from_slice(&in_port.to_be_bytes()),
            NxAction::ResubmitTable { in_port, table } => {
                out.extend_from_slice(&in_port.to_be_bytes());
                out.push(*table);
            }
            NxAction::SetTunnel(id) => {
                zeros(out, 2);
                out.extend_from_slice(&id.to_be_bytes());
            }
            NxAction::SetTunnel64(id) => {
                zeros(out, 6);
                out.extend_from_slice(&id.to_be_bytes());
            }
            NxAction::Ct(c) => {
                out.extend_from_slice(&c.flags.to_be_bytes());
                out.extend_from_slice(&c.zone_src.to_be_bytes());
                out.extend_from_slice(&c.zone.to_be_bytes());
                out.push(c.recirc_table);
                zeros(out, 3);
                out.extend_from_slice(&c.alg.to_be_bytes());
                Action::emit_list(&c.actions, out)?;
            }
            NxAction::CtClear => {}
            NxAction::Raw { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_resubmit_table() {
        let a = Action::Nicira(NxAction::ResubmitTable {
            in_port: OFPP_IN_PORT_16,
            table: 2,
        });
        let mut out = Vec::new();
        a.emit(&mut out).unwrap();
        assert_eq!(
            out,
            [0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 14, 0xff, 0xf8, 2, 0, 0, 0]
        );
        assert_eq!(Action::parse(&out).unwrap(), (a, 16));
    }

    #[test]
    fn nesting_is_bounded() {
        // ct containing ct containing ... deeper than MAX_NESTING.
        let mut a = Action::Nicira(NxAction::CtClear);
        for _ in 0..8 {
            a = Action::Nicira(NxAction::Ct(Ct {
                flags: 0,
                zone_src: 0,
                zone: 0,
                recirc_table: 0xff,
                alg: 0,
                actions: vec![a],
            }));
        }
        let mut out = Vec::new();
        a.emit(&mut out).unwrap();
        assert!(Action::parse(&out).is_err());
    }
}
