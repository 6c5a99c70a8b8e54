//! Nicira experimenter actions (experimenter id 0x00002320), the ones `ovs-ofctl`
//! emits for this switch: `resubmit`, `set_tunnel`, `load` and `move` (registers),
//! `push` and `pop` (the field stack),
//! `ct` (with its nested `nat` and `load`, see [`crate::nx_ct`]), `ct_clear`. Layouts from Open vSwitch's
//! `include/openflow/nicira-ext.h` and `lib/ofp-actions.c`:
//!
//! ```text
//! +-------+-------+---------------+---------+-------------------------+
//! | 0xffff| len   | 0x00002320    | subtype | subtype body, pad to 8  |
//! +-------+-------+---------------+---------+-------------------------+
//! ```
//!
//! Other subtypes are kept as [`NxAction::Raw`].

use crate::bytes::{round8, u16_at, u32_at, u64_at, u8_at, zeros};
use crate::field::nx_action as field;
use crate::{Error, Result};

pub use crate::nx_ct::{ct_flags, Ct, Nat};

/// The Nicira experimenter id (NX_VENDOR_ID).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

/// Nicira action subtypes parsed here.
pub mod subtype {
    /// NXAST_RESUBMIT: look the packet up again in the current table.
    pub const RESUBMIT: u16 = 1;
    /// NXAST_SET_TUNNEL: set the 32-bit tunnel id.
    pub const SET_TUNNEL: u16 = 2;
    /// NXAST_SET_TUNNEL64: set the 64-bit tunnel id.
    pub const SET_TUNNEL64: u16 = 9;
    /// NXAST_REG_LOAD: load an immediate value into bits of a field.
    pub const REG_LOAD: u16 = 7;
    /// NXAST_REG_MOVE: copy bits of one field into another.
    pub const REG_MOVE: u16 = 6;
    /// NXAST_RESUBMIT_TABLE: look the packet up again in a given table.
    pub const RESUBMIT_TABLE: u16 = 14;
    /// NXAST_STACK_PUSH: push bits of a field onto the field stack.
    pub const STACK_PUSH: u16 = 27;
    /// NXAST_STACK_POP: pop the field stack's top into bits of a field.
    pub const STACK_POP: u16 = 28;
    /// NXAST_CT: send the packet through connection tracking.
    pub const CT: u16 = 35;
    /// NXAST_NAT: network address translation, nested in `ct`.
    pub const NAT: u16 = 36;
    /// NXAST_CT_CLEAR: clear the packet's connection tracking state.
    pub const CT_CLEAR: u16 = 43;
}

/// The 16-bit OFPP_IN_PORT that `resubmit` uses for "keep the packet's in_port".
pub const OFPP_IN_PORT_16: u16 = 0xfff8;

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
    /// NXAST_REG_LOAD: `load:VALUE->DST[OFS..OFS+N_BITS-1]`; `ovs-ofctl`
    /// sends a masked `set_field` in OpenFlow 1.3 as one of these per run of
    /// mask bits (e.g. `set_field:0x2/0xff->ct_label` inside `ct(exec(...))`).
    RegLoad {
        /// `ofs << 6 | (n_bits - 1)` ([`reg_load_ofs_nbits`]).
        ofs_nbits: u16,
        /// The destination field's NXM header ([`crate::oxm::Field::nxm_header`]).
        dst: u32,
        /// The value, in the low `n_bits` bits.
        value: u64,
    },
    /// NXAST_REG_MOVE: `move:SRC[SRC_OFS..]->DST[DST_OFS..]`, `n_bits`
    /// wide (4-byte NXM/OXM headers; OVS sends it for `move` in OpenFlow
    /// 1.3, `encode_REG_MOVE`).
    RegMove {
        /// Bits copied.
        n_bits: u16,
        /// First source bit.
        src_ofs: u16,
        /// First destination bit.
        dst_ofs: u16,
        /// Source field's NXM/OXM header.
        src: u32,
        /// Destination field's NXM/OXM header.
        dst: u32,
    },
    /// NXAST_STACK_PUSH: `push:FIELD[OFS..OFS+N_BITS-1]`.
    StackPush(NxStack),
    /// NXAST_STACK_POP: `pop:FIELD[OFS..OFS+N_BITS-1]`.
    StackPop(NxStack),
    /// NXAST_CT: send to the connection tracker.
    Ct(Ct),
    /// NXAST_NAT: address translation (only nested in [`NxAction::Ct`]).
    Nat(Nat),
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

/// The body of NXAST_STACK_PUSH/POP (`struct nx_action_stack`): the bits
/// pushed or popped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NxStack {
    /// First bit of the field.
    pub ofs: u16,
    /// The field's NXM/OXM header.
    pub field: u32,
    /// Number of bits.
    pub n_bits: u16,
}

impl NxAction {
    /// `set_tunnel:KEY` as OVS puts it on the wire in OpenFlow 1.0 and 1.1
    /// (`encode_SET_TUNNEL`, `lib/ofp-actions.c`): NXAST_SET_TUNNEL when the
    /// key fits in 32 bits, NXAST_SET_TUNNEL64 otherwise. (From 1.2 on OVS
    /// sends a SET_FIELD of `tun_id` instead; a switch takes all three.)
    pub fn set_tunnel(key: u64) -> NxAction {
        match u32::try_from(key) {
            Ok(k) => NxAction::SetTunnel(k),
            Err(_) => NxAction::SetTunnel64(key),
        }
    }

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
            subtype::REG_LOAD => {
                fixed(field::REG_LOAD_LEN)?;
                NxAction::RegLoad {
                    ofs_nbits: u16_at(a, field::REG_LOAD_OFS_NBITS),
                    dst: u32_at(a, field::REG_LOAD_DST),
                    value: u64_at(a, field::REG_LOAD_VALUE),
                }
            }
            subtype::REG_MOVE => {
                fixed(field::REG_MOVE_LEN)?;
                NxAction::RegMove {
                    n_bits: u16_at(a, field::REG_MOVE_N_BITS),
                    src_ofs: u16_at(a, field::REG_MOVE_SRC_OFS),
                    dst_ofs: u16_at(a, field::REG_MOVE_DST_OFS),
                    src: u32_at(a, field::REG_MOVE_SRC),
                    dst: u32_at(a, field::REG_MOVE_DST),
                }
            }
            subtype::STACK_PUSH | subtype::STACK_POP => {
                fixed(field::STACK_LEN)?;
                if a[field::STACK_PAD].iter().any(|&b| b != 0) {
                    // decode_stack_action: OFPERR_NXBRC_MUST_BE_ZERO.
                    return Err(Error::BadAction("nonzero padding in a Nicira stack action"));
                }
                let s = NxStack {
                    ofs: u16_at(a, field::STACK_OFS),
                    field: u32_at(a, field::STACK_FIELD),
                    n_bits: u16_at(a, field::STACK_N_BITS),
                };
                if st == subtype::STACK_PUSH {
                    NxAction::StackPush(s)
                } else {
                    NxAction::StackPop(s)
                }
            }
            subtype::CT => NxAction::Ct(Ct::parse(a, depth)?),
            subtype::NAT => NxAction::Nat(Nat::parse(a)?),
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
            NxAction::RegLoad { .. } => subtype::REG_LOAD,
            NxAction::RegMove { .. } => subtype::REG_MOVE,
            NxAction::StackPush(_) => subtype::STACK_PUSH,
            NxAction::StackPop(_) => subtype::STACK_POP,
            NxAction::Ct(_) => subtype::CT,
            NxAction::Nat(_) => subtype::NAT,
            NxAction::CtClear => subtype::CT_CLEAR,
            NxAction::Raw { subtype, .. } => *subtype,
        }
    }

    /// Bytes the whole action (header included) occupies.
    pub fn buffer_len(&self) -> usize {
        match self {
            NxAction::SetTunnel64(_) => field::SET_TUNNEL64_LEN,
            NxAction::RegLoad { .. } => field::REG_LOAD_LEN,
            NxAction::RegMove { .. } => field::REG_MOVE_LEN,
            NxAction::StackPush(_) | NxAction::StackPop(_) => field::STACK_LEN,
            NxAction::Ct(c) => c.buffer_len(),
            NxAction::Nat(n) => n.buffer_len(),
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
            NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            } => {
                out.extend_from_slice(&ofs_nbits.to_be_bytes());
                out.extend_from_slice(&dst.to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            NxAction::RegMove {
                n_bits,
                src_ofs,
                dst_ofs,
                src,
                dst,
            } => {
                for v in [n_bits, src_ofs, dst_ofs] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                out.extend_from_slice(&src.to_be_bytes());
                out.extend_from_slice(&dst.to_be_bytes());
            }
            NxAction::StackPush(st) | NxAction::StackPop(st) => {
                out.extend_from_slice(&st.ofs.to_be_bytes());
                out.extend_from_slice(&st.field.to_be_bytes());
                out.extend_from_slice(&st.n_bits.to_be_bytes());
            }
            NxAction::Ct(c) => c.emit_body(out)?,
            NxAction::Nat(n) => n.emit_body(out),
            NxAction::CtClear => {}
            NxAction::Raw { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

/// `ofs_nbits` of a subfield `[ofs .. ofs + n_bits - 1]` (OVS's
/// `nxm_encode_ofs_nbits`): `ofs << 6 | (n_bits - 1)`; `n_bits` is 1..=64.
pub fn reg_load_ofs_nbits(ofs: u16, n_bits: u16) -> u16 {
    ofs << 6 | (n_bits.clamp(1, 64) - 1)
}

/// (ofs, n_bits) of an `ofs_nbits` (OVS's `nxm_decode_ofs` / `nxm_decode_n_bits`).
pub fn reg_load_decode(ofs_nbits: u16) -> (u16, u16) {
    (ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;

    #[test]
    fn reg_move_round_trip() {
        // move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31] in the layout of
        // OVS's `struct nx_action_reg_move` (the live test in ofproto
        // checks it against ovs-ofctl itself).
        let a = Action::Nicira(NxAction::RegMove {
            n_bits: 16,
            src_ofs: 0,
            dst_ofs: 16,
            src: 0x0001_0004,
            dst: 0x0001_0204,
        });
        let mut out = Vec::new();
        a.emit(&mut out).unwrap();
        assert_eq!(
            out,
            [
                0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 6, 0, 16, 0, 0, 0, 16, 0, 1, 0, 4, 0, 1, 2,
                4
            ]
        );
        let (back, n) = Action::parse(&out).unwrap();
        assert_eq!((back, n), (a, 24));
    }

    #[test]
    fn stack_push_pop_round_trip_and_bad_padding() {
        // push:NXM_NX_REG0[0..15] / pop:NXM_NX_REG1[] as OVS's
        // `encode_STACK_op` lays them out.
        for (st, a) in [
            (
                27u8,
                NxAction::StackPush(NxStack {
                    ofs: 0,
                    field: 0x0001_0004,
                    n_bits: 16,
                }),
            ),
            (
                28,
                NxAction::StackPop(NxStack {
                    ofs: 0,
                    field: 0x0001_0204,
                    n_bits: 32,
                }),
            ),
        ] {
            let a = Action::Nicira(a);
            let mut out = Vec::new();
            a.emit(&mut out).unwrap();
            let Action::Nicira(NxAction::StackPush(s) | NxAction::StackPop(s)) = &a else {
                unreachable!()
            };
            let f = s.field.to_be_bytes();
            let n = s.n_bits.to_be_bytes();
            assert_eq!(
                out,
                [
                    0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, st, 0, 0, f[0], f[1], f[2], f[3], n[0],
                    n[1], 0, 0, 0, 0, 0, 0
                ]
            );
            assert_eq!(Action::parse(&out).unwrap(), (a, 24));
            out[20] = 1;
            assert!(Action::parse(&out).is_err(), "nonzero padding");
            out[20] = 0;
            out[3] = 16;
            assert!(Action::parse(&out[..16]).is_err(), "short action");
        }
    }

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

    /// OVS's encodings (`ovs-ofctl parse-actions OpenFlow10` prints them
    /// `set_tunnel:0x2a` and `set_tunnel64:0x12345678a`).
    #[test]
    fn set_tunnel_and_set_tunnel64_wire_round_trip() {
        let cases: [(&[u8], NxAction); 2] = [
            (
                &[
                    0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 2, 0, 0, 0, 0, 0, 0x2a,
                ],
                NxAction::SetTunnel(0x2a),
            ),
            (
                &[
                    0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                    0x23, 0x45, 0x67, 0x8a,
                ],
                NxAction::SetTunnel64(0x1_2345_678a),
            ),
        ];
        for (wire, nx) in &cases {
            let a = Action::Nicira(nx.clone());
            assert_eq!(Action::parse(wire).unwrap(), (a.clone(), wire.len()));
            assert_eq!(a.buffer_len(), wire.len());
            let mut out = Vec::new();
            a.emit(&mut out).unwrap();
            assert_eq!(out, *wire);
        }
        // The encoding OVS picks by the key's width.
        assert_eq!(NxAction::set_tunnel(0x2a), NxAction::SetTunnel(0x2a));
        assert_eq!(
            NxAction::set_tunnel(0xffff_ffff),
            NxAction::SetTunnel(0xffff_ffff)
        );
        assert_eq!(
            NxAction::set_tunnel(0x1_2345_678a),
            NxAction::SetTunnel64(0x1_2345_678a)
        );
        // Each has one length (OVS: OFPBAC_BAD_LEN): a set_tunnel of 24
        // bytes and a set_tunnel64 of 16 are malformed.
        let mut long = cases[0].0.to_vec();
        long[3] = 24;
        long.extend_from_slice(&[0; 8]);
        assert!(Action::parse(&long).is_err());
        let mut short = cases[1].0[..16].to_vec();
        short[3] = 16;
        assert!(Action::parse(&short).is_err());
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
