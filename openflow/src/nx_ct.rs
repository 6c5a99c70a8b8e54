//! The connection-tracking actions of Open vSwitch's Nicira extension:
//! NXAST_CT (subtype 35) and the NXAST_NAT (subtype 36) it nests. Layouts and
//! rules from OVS's `lib/ofp-actions.c` (`struct nx_action_conntrack`,
//! `struct nx_action_nat`, `decode_NXAST_RAW_CT`, `decode_NXAST_RAW_NAT`):
//!
//! ```text
//! NXAST_CT (24 bytes, then nested actions; len counts them)
//! +-------+-------+------------+---------+-------+----------+-----------------+
//! | 0xffff| len   | 0x00002320 | 35      | flags | zone_src | zone_imm or     |
//! |       |       |            |         |       | (NXM hdr)| zone_ofs_nbits  |
//! +-------+-------+------------+---------+-------+----------+-----------------+
//! | recirc_table | pad[3] | alg (be16) | nested actions (nat, set_field, reg_load)
//! +--------------+--------+------------+----------------------------------------
//!
//! NXAST_NAT (16 bytes, then the ranges range_present names, in this order, pad to 8)
//! +-------+-------+------------+---------+--------+-------+---------------+
//! | 0xffff| len   | 0x00002320 | 36      | pad[2] | flags | range_present |
//! +-------+-------+------------+---------+--------+-------+---------------+
//! | [ipv4_min be32] [ipv4_max be32] [ipv6_min 16] [ipv6_max 16]           |
//! | [proto_min be16] [proto_max be16] zeros to a multiple of 8            |
//! ```
//!
//! Parsing checks lengths only (every range announced must be there); the
//! rules OVS enforces on the values (`src` xor `dst`, `hash` xor `random`,
//! `min <= max`, `force` needs `commit`, ...) are [`Nat::check`] and
//! [`Ct::check`], which a switch answers with OFPBAC_BAD_ARGUMENT as OVS does.

use crate::action::Action;
use crate::bytes::{round8, u16_at, u32_at, u8_at, zeros};
use crate::field::nx_action as field;
use crate::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

/// NXAST_CT flags (`enum nx_conntrack_flags`).
pub mod ct_flags {
    /// NX_CT_F_COMMIT: commit the connection.
    pub const COMMIT: u16 = 1 << 0;
    /// NX_CT_F_FORCE: end a connection tracked in the other direction first.
    pub const FORCE: u16 = 1 << 1;
}

/// NX_CT_RECIRC_NONE: `recirc_table` value for "no recirculation".
pub const RECIRC_NONE: u8 = 0xff;

/// The `alg` values OVS names (`ct(alg=ftp)`, `ct(alg=tftp)`).
pub mod alg {
    /// IPPORT_FTP.
    pub const FTP: u16 = 21;
    /// IPPORT_TFTP.
    pub const TFTP: u16 = 69;
}

/// The `ct` action (NXAST_CT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ct {
    /// [`ct_flags`].
    pub flags: u16,
    /// Field to take the zone from (an NXM header), 0 for an immediate zone.
    pub zone_src: u32,
    /// The immediate zone, or ofs_nbits of `zone_src`.
    pub zone: u16,
    /// Table to recirculate to ([`RECIRC_NONE`]: none).
    pub recirc_table: u8,
    /// Application layer gateway (0: none, [`alg`]).
    pub alg: u16,
    /// Nested actions (nat, set_field or reg_load of ct_mark / ct_label).
    pub actions: Vec<Action>,
}

impl Ct {
    /// Parses a whole NXAST_CT action (`a` starts at the action type and
    /// is exactly its `len` bytes).
    pub(crate) fn parse(a: &[u8], depth: usize) -> Result<Ct> {
        if a.len() < field::CT_LEN {
            return Err(Error::BadAction("ct action shorter than 24 bytes"));
        }
        Ok(Ct {
            flags: u16_at(a, field::CT_FLAGS),
            zone_src: u32_at(a, field::CT_ZONE_SRC),
            zone: u16_at(a, field::CT_ZONE),
            recirc_table: u8_at(a, field::CT_RECIRC_TABLE),
            alg: u16_at(a, field::CT_ALG),
            actions: Action::parse_list_nested(&a[field::CT_ACTIONS..], depth + 1)?,
        })
    }

    /// Bytes the whole action occupies (nested actions included).
    pub fn buffer_len(&self) -> usize {
        field::CT_LEN + Action::list_len(&self.actions)
    }

    /// Appends the body after the subtype.
    pub(crate) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.zone_src.to_be_bytes());
        out.extend_from_slice(&self.zone.to_be_bytes());
        out.push(self.recirc_table);
        zeros(out, 3);
        out.extend_from_slice(&self.alg.to_be_bytes());
        Action::emit_list(&self.actions, out)
    }

    /// OVS's `decode_NXAST_RAW_CT` rules (each an OFPBAC_BAD_ARGUMENT):
    /// unknown flags, `force` without `commit`, and, without `commit`,
    /// any nested action but a `nat` with neither flags nor range. Nested
    /// NAT actions are checked with [`Nat::check`].
    pub fn check(&self) -> core::result::Result<(), &'static str> {
        if self.flags & !(ct_flags::COMMIT | ct_flags::FORCE) != 0 {
            return Err("unknown ct flags");
        }
        if self.flags & ct_flags::FORCE != 0 && self.flags & ct_flags::COMMIT == 0 {
            return Err("\"force\" flag requires \"commit\" flag");
        }
        for a in &self.actions {
            if let Action::Nicira(crate::nicira::NxAction::Nat(n)) = a {
                n.check()?;
                if self.flags & ct_flags::COMMIT == 0 && !n.is_plain() {
                    return Err("ct with a nat range requires the commit flag");
                }
            } else if self.flags & ct_flags::COMMIT == 0 {
                return Err("ct with actions other than a plain nat requires commit");
            }
        }
        Ok(())
    }
}

/// NXAST_NAT flags (`enum nx_nat_flags`).
pub mod nat_flags {
    /// NX_NAT_F_SRC: source NAT (exclusive with DST).
    pub const SRC: u16 = 1 << 0;
    /// NX_NAT_F_DST: destination NAT.
    pub const DST: u16 = 1 << 1;
    /// NX_NAT_F_PERSISTENT.
    pub const PERSISTENT: u16 = 1 << 2;
    /// NX_NAT_F_PROTO_HASH (exclusive with PROTO_RANDOM).
    pub const PROTO_HASH: u16 = 1 << 3;
    /// NX_NAT_F_PROTO_RANDOM.
    pub const PROTO_RANDOM: u16 = 1 << 4;
    /// NX_NAT_F_MASK: every defined flag.
    pub const MASK: u16 = SRC | DST | PERSISTENT | PROTO_HASH | PROTO_RANDOM;
}

/// NXAST_NAT `range_present` bits (`enum nx_nat_range`): which optional
/// fields follow the fixed part, in this order.
pub mod nat_range {
    /// NX_NAT_RANGE_IPV4_MIN (be32).
    pub const IPV4_MIN: u16 = 1 << 0;
    /// NX_NAT_RANGE_IPV4_MAX (be32).
    pub const IPV4_MAX: u16 = 1 << 1;
    /// NX_NAT_RANGE_IPV6_MIN (16 bytes).
    pub const IPV6_MIN: u16 = 1 << 2;
    /// NX_NAT_RANGE_IPV6_MAX (16 bytes).
    pub const IPV6_MAX: u16 = 1 << 3;
    /// NX_NAT_RANGE_PROTO_MIN (be16).
    pub const PROTO_MIN: u16 = 1 << 4;
    /// NX_NAT_RANGE_PROTO_MAX (be16).
    pub const PROTO_MAX: u16 = 1 << 5;
}

/// The `nat` action (NXAST_NAT), nested in `ct`. Each present range field
/// is `Some`; `range_present` on the wire is derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Nat {
    /// [`nat_flags`].
    pub flags: u16,
    /// First IPv4 address of the range.
    pub ipv4_min: Option<Ipv4Addr>,
    /// Last IPv4 address of the range.
    pub ipv4_max: Option<Ipv4Addr>,
    /// First IPv6 address of the range.
    pub ipv6_min: Option<Ipv6Addr>,
    /// Last IPv6 address of the range.
    pub ipv6_max: Option<Ipv6Addr>,
    /// First port of the range.
    pub proto_min: Option<u16>,
    /// Last port of the range.
    pub proto_max: Option<u16>,
}

impl Nat {
    /// Parses a whole NXAST_NAT action (`a` starts at the action type and
    /// is exactly its `len` bytes). Unknown `range_present` bits are
    /// ignored, as OVS ignores them.
    pub(crate) fn parse(a: &[u8]) -> Result<Nat> {
        if a.len() < field::NAT_LEN {
            return Err(Error::BadAction("nat action shorter than 16 bytes"));
        }
        let present = u16_at(a, field::NAT_RANGE_PRESENT);
        let mut rest = &a[field::NAT_RANGE..];
        let mut take = |bit: u16, n: usize| -> Result<Option<&[u8]>> {
            if present & bit == 0 {
                return Ok(None);
            }
            if rest.len() < n {
                return Err(Error::BadAction("nat range runs past the action"));
            }
            let (v, tail) = rest.split_at(n);
            rest = tail;
            Ok(Some(v))
        };
        let v4 = |b: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap_or_default());
        let v6 = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or_default());
        let port = |b: &[u8]| u16::from_be_bytes(<[u8; 2]>::try_from(b).unwrap_or_default());
        Ok(Nat {
            flags: u16_at(a, field::NAT_FLAGS),
            ipv4_min: take(nat_range::IPV4_MIN, 4)?.map(v4),
            ipv4_max: take(nat_range::IPV4_MAX, 4)?.map(v4),
            ipv6_min: take(nat_range::IPV6_MIN, 16)?.map(v6),
            ipv6_max: take(nat_range::IPV6_MAX, 16)?.map(v6),
            proto_min: take(nat_range::PROTO_MIN, 2)?.map(port),
            proto_max: take(nat_range::PROTO_MAX, 2)?.map(port),
        })
    }

    /// The `range_present` bits of this action.
    pub fn range_present(&self) -> u16 {
        let bit = |present: bool, b: u16| if present { b } else { 0 };
        bit(self.ipv4_min.is_some(), nat_range::IPV4_MIN)
            | bit(self.ipv4_max.is_some(), nat_range::IPV4_MAX)
            | bit(self.ipv6_min.is_some(), nat_range::IPV6_MIN)
            | bit(self.ipv6_max.is_some(), nat_range::IPV6_MAX)
            | bit(self.proto_min.is_some(), nat_range::PROTO_MIN)
            | bit(self.proto_max.is_some(), nat_range::PROTO_MAX)
    }

    fn ranges_len(&self) -> usize {
        4 * (self.ipv4_min.is_some() as usize + self.ipv4_max.is_some() as usize)
            + 16 * (self.ipv6_min.is_some() as usize + self.ipv6_max.is_some() as usize)
            + 2 * (self.proto_min.is_some() as usize + self.proto_max.is_some() as usize)
    }

    /// Bytes the whole action occupies (padded to 8, as OVS's `pad_ofpat`).
    pub fn buffer_len(&self) -> usize {
        round8(field::NAT_LEN + self.ranges_len())
    }

    /// Appends the body after the subtype (the caller pads).
    pub(crate) fn emit_body(&self, out: &mut Vec<u8>) {
        zeros(out, 2);
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.range_present().to_be_bytes());
        for a in [self.ipv4_min, self.ipv4_max].into_iter().flatten() {
            out.extend_from_slice(&a.octets());
        }
        for a in [self.ipv6_min, self.ipv6_max].into_iter().flatten() {
            out.extend_from_slice(&a.octets());
        }
        for p in [self.proto_min, self.proto_max].into_iter().flatten() {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }

    /// A `nat` with no flags and no range: apply the connection's existing
    /// translation only.
    pub fn is_plain(&self) -> bool {
        self.flags == 0 && self.range_present() == 0
    }

    /// OVS's `decode_NXAST_RAW_NAT` rules (each an OFPBAC_BAD_ARGUMENT):
    /// known flags only, not both `src` and `dst`, not both `hash` and
    /// `random`; an IPv4 and an IPv6 range not both; a max only with its
    /// min, a min not zero (0.0.0.0 / ::), max ≥ min; ports only with an
    /// address range, the first port not 0.
    pub fn check(&self) -> core::result::Result<(), &'static str> {
        use nat_flags::*;
        let f = self.flags;
        if f & !MASK != 0 {
            return Err("unknown nat flags");
        }
        if f & SRC != 0 && f & DST != 0 {
            return Err("nat: only one of \"src\" and \"dst\"");
        }
        if f & PROTO_HASH != 0 && f & PROTO_RANDOM != 0 {
            return Err("nat: not both \"hash\" and \"random\"");
        }
        let v4 = self.ipv4_min.is_some() || self.ipv4_max.is_some();
        let v6 = self.ipv6_min.is_some() || self.ipv6_max.is_some();
        if v4 && v6 {
            return Err("nat: an IPv4 and an IPv6 range");
        }
        match (self.ipv4_min, self.ipv4_max) {
            (None, Some(_)) => return Err("nat: IPv4 max without min"),
            (Some(min), _) if min.is_unspecified() => return Err("nat: IPv4 min is 0.0.0.0"),
            (Some(min), Some(max)) if max < min => return Err("nat: IPv4 max below min"),
            _ => {}
        }
        match (self.ipv6_min, self.ipv6_max) {
            (None, Some(_)) => return Err("nat: IPv6 max without min"),
            (Some(min), _) if min.is_unspecified() => return Err("nat: IPv6 min is ::"),
            (Some(min), Some(max)) if max < min => return Err("nat: IPv6 max below min"),
            _ => {}
        }
        match (self.proto_min, self.proto_max) {
            (None, Some(_)) => return Err("nat: port max without min"),
            (Some(_), _) if !v4 && !v6 => return Err("nat: ports without addresses"),
            (Some(0), _) => return Err("nat: port min is 0"),
            (Some(min), Some(max)) if max < min => return Err("nat: port max below min"),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nicira::NxAction;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn round_trip(bytes: &[u8], want: Action) {
        let (a, n) = Action::parse(bytes).unwrap();
        assert_eq!((&a, n), (&want, bytes.len()));
        assert_eq!(a.buffer_len(), bytes.len());
        let mut out = Vec::new();
        want.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    /// `ct(commit,zone=7,nat(src=192.168.1.1-192.168.1.4:5000-6000,persistent,random),
    /// exec(set_field:0x1->ct_mark,set_field:0x2/0xff->ct_label))` as
    /// `ovs-ofctl -O OpenFlow13` 3.1 sends it (captures/add_ct_flows.hex).
    #[test]
    fn deconstruct_and_construct_snat_with_exec() {
        let bytes = hex("ffff 0060 00002320 0023 0001 00000000 0007 ff 000000 0000
             ffff 0020 00002320 0024 0000 0015 0033 c0a80101 c0a80104 1388 1770 00000000
             0019 0010 0001d604 00000001 00000000
             ffff 0018 00002320 0007 0007 0001d810 0000000000000002");
        let nat = Nat {
            flags: nat_flags::SRC | nat_flags::PERSISTENT | nat_flags::PROTO_RANDOM,
            ipv4_min: Some(Ipv4Addr::new(192, 168, 1, 1)),
            ipv4_max: Some(Ipv4Addr::new(192, 168, 1, 4)),
            proto_min: Some(5000),
            proto_max: Some(6000),
            ..Nat::default()
        };
        assert_eq!(nat.check(), Ok(()));
        let ct = Ct {
            flags: ct_flags::COMMIT,
            zone_src: 0,
            zone: 7,
            recirc_table: RECIRC_NONE,
            alg: 0,
            actions: vec![
                Action::Nicira(NxAction::Nat(nat)),
                Action::SetField(crate::OxmField::exact(
                    crate::Field::NxCtMark,
                    &[0, 0, 0, 1],
                )),
                Action::Nicira(NxAction::RegLoad {
                    ofs_nbits: 7,
                    dst: 0x0001_d810,
                    value: 2,
                }),
            ],
        };
        assert_eq!(ct.check(), Ok(()));
        round_trip(&bytes, Action::Nicira(NxAction::Ct(ct)));
    }

    /// `nat(dst=[2001:db8::1]:80)` and `nat(src=2001:db8::1-2001:db8::5,hash)`.
    #[test]
    fn deconstruct_and_construct_ipv6_nat() {
        let ip = |s: &str| Some(s.parse::<Ipv6Addr>().unwrap());
        round_trip(
            &hex("ffff 0028 00002320 0024 0000 0002 0014
                  20010db8000000000000000000000001 0050 000000000000"),
            Action::Nicira(NxAction::Nat(Nat {
                flags: nat_flags::DST,
                ipv6_min: ip("2001:db8::1"),
                proto_min: Some(80),
                ..Nat::default()
            })),
        );
        round_trip(
            &hex("ffff 0030 00002320 0024 0000 0009 000c
                  20010db8000000000000000000000001 20010db8000000000000000000000005"),
            Action::Nicira(NxAction::Nat(Nat {
                flags: nat_flags::SRC | nat_flags::PROTO_HASH,
                ipv6_min: ip("2001:db8::1"),
                ipv6_max: ip("2001:db8::5"),
                ..Nat::default()
            })),
        );
        // Plain `nat`: 16 bytes, nothing present.
        round_trip(
            &hex("ffff 0010 00002320 0024 0000 0000 0000"),
            Action::Nicira(NxAction::Nat(Nat::default())),
        );
    }

    #[test]
    fn truncated_ranges_are_errors() {
        // range_present says IPv6 min, the action has 16 bytes only.
        let b = hex("ffff 0010 00002320 0024 0000 0001 0004");
        assert!(Action::parse(&b).is_err());
        let b = hex("ffff 0018 00002320 0024 0000 0001 0033 0a000001 0a000002");
        assert!(Action::parse(&b).is_err());
    }

    #[test]
    fn ovs_rules_are_checked() {
        let a4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        let bad = [
            Nat {
                flags: nat_flags::SRC | nat_flags::DST,
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC | nat_flags::PROTO_HASH | nat_flags::PROTO_RANDOM,
                ..Nat::default()
            },
            Nat {
                flags: 0x40,
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC,
                ipv4_max: a4("10.0.0.1"),
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC,
                ipv4_min: a4("10.0.0.2"),
                ipv4_max: a4("10.0.0.1"),
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC,
                ipv4_min: a4("0.0.0.0"),
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC,
                proto_min: Some(5),
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC,
                ipv4_min: a4("10.0.0.1"),
                proto_min: Some(6),
                proto_max: Some(5),
                ..Nat::default()
            },
            Nat {
                flags: nat_flags::SRC,
                ipv4_min: a4("10.0.0.1"),
                ipv6_min: Some(Ipv6Addr::LOCALHOST),
                ..Nat::default()
            },
        ];
        for n in bad {
            assert!(n.check().is_err(), "{n:?}");
        }
        let ct = |flags, actions| Ct {
            flags,
            zone_src: 0,
            zone: 0,
            recirc_table: RECIRC_NONE,
            alg: 0,
            actions,
        };
        assert!(ct(ct_flags::FORCE, vec![]).check().is_err());
        assert!(ct(0x4, vec![]).check().is_err());
        let snat = Action::Nicira(NxAction::Nat(Nat {
            flags: nat_flags::SRC,
            ipv4_min: a4("10.0.0.1"),
            ..Nat::default()
        }));
        assert!(ct(0, vec![snat.clone()]).check().is_err());
        assert_eq!(ct(ct_flags::COMMIT, vec![snat]).check(), Ok(()));
        let plain = Action::Nicira(NxAction::Nat(Nat::default()));
        assert_eq!(ct(0, vec![plain]).check(), Ok(()));
    }
}
