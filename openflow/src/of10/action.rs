//! OpenFlow 1.0 actions (section 5.2.4): a type, a length that is a multiple
//! of 8, and a fixed body per type; OFPAT10_VENDOR (0xffff) carries the
//! Nicira actions (`resubmit`, `set_tunnel`, `dec_ttl`, `ct`, ...), whose
//! layout is the same as OpenFlow 1.3's experimenter actions, so they are
//! parsed by [`crate::action::Action`] into [`Action10::Vendor`].
//!
//! ```text
//! +-------+-------+---------------------------+
//! | type  | len   | body (len - 4), see below |
//! +-------+-------+---------------------------+
//! OUTPUT: port(2) max_len(2) | SET_VLAN_VID: vid(2) pad(2) | SET_VLAN_PCP: pcp pad(3)
//! STRIP_VLAN: pad(4) | SET_DL_SRC/DST: mac(6) pad(6) | SET_NW_SRC/DST: addr(4)
//! SET_NW_TOS: tos pad(3) | SET_TP_SRC/DST: port(2) pad(2) | ENQUEUE: port(2) pad(6) queue(4)
//! ```

use std::net::Ipv4Addr;

use super::field::action as field;
use crate::bytes::{mac_at, u16_at, u32_at, u8_at, zeros};
use crate::{Action, Error, Result};

/// OFPAT10_* action types.
pub mod action_type {
    /// OFPAT10_OUTPUT: output to a port.
    pub const OUTPUT: u16 = 0;
    /// OFPAT10_SET_VLAN_VID: set the 802.1Q VLAN id.
    pub const SET_VLAN_VID: u16 = 1;
    /// OFPAT10_SET_VLAN_PCP: set the 802.1Q priority.
    pub const SET_VLAN_PCP: u16 = 2;
    /// OFPAT10_STRIP_VLAN: remove the 802.1Q tag.
    pub const STRIP_VLAN: u16 = 3;
    /// OFPAT10_SET_DL_SRC: set the Ethernet source address.
    pub const SET_DL_SRC: u16 = 4;
    /// OFPAT10_SET_DL_DST: set the Ethernet destination address.
    pub const SET_DL_DST: u16 = 5;
    /// OFPAT10_SET_NW_SRC: set the IPv4 source address.
    pub const SET_NW_SRC: u16 = 6;
    /// OFPAT10_SET_NW_DST: set the IPv4 destination address.
    pub const SET_NW_DST: u16 = 7;
    /// OFPAT10_SET_NW_TOS: set the IP ToS (DSCP bits).
    pub const SET_NW_TOS: u16 = 8;
    /// OFPAT10_SET_TP_SRC: set the TCP/UDP source port.
    pub const SET_TP_SRC: u16 = 9;
    /// OFPAT10_SET_TP_DST: set the TCP/UDP destination port.
    pub const SET_TP_DST: u16 = 10;
    /// OFPAT10_ENQUEUE: output to a queue of a port.
    pub const ENQUEUE: u16 = 11;
    /// OFPAT10_VENDOR: a vendor action (Nicira's NXAST_* here).
    pub const VENDOR: u16 = 0xffff;
}

/// OpenFlow 1.0 reserved port numbers (OFPP_*, section 5.2.1).
pub mod port_no {
    /// OFPP_MAX: the highest number of a physical port.
    pub const MAX: u16 = 0xff00;
    /// OFPP_IN_PORT: send the packet out the port it came in on.
    pub const IN_PORT: u16 = 0xfff8;
    /// OFPP_TABLE: run the packet through the flow table (packet-out only).
    pub const TABLE: u16 = 0xfff9;
    /// OFPP_NORMAL: forward as a learning switch.
    pub const NORMAL: u16 = 0xfffa;
    /// OFPP_FLOOD: every port but the input port and those with flooding off.
    pub const FLOOD: u16 = 0xfffb;
    /// OFPP_ALL: every port but the input port.
    pub const ALL: u16 = 0xfffc;
    /// OFPP_CONTROLLER: send to the controller.
    pub const CONTROLLER: u16 = 0xfffd;
    /// OFPP_LOCAL: the switch's local port.
    pub const LOCAL: u16 = 0xfffe;
    /// OFPP_NONE: no port (also "any port" in stats requests and deletes).
    pub const NONE: u16 = 0xffff;
}

/// One OpenFlow 1.0 action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action10 {
    /// OFPAT10_OUTPUT: port and the bytes to send to the controller.
    Output {
        /// Output port ([`port_no`]).
        port: u16,
        /// Bytes of the packet for CONTROLLER.
        max_len: u16,
    },
    /// OFPAT10_SET_VLAN_VID (pushes a tag on an untagged frame).
    SetVlanVid(u16),
    /// OFPAT10_SET_VLAN_PCP.
    SetVlanPcp(u8),
    /// OFPAT10_STRIP_VLAN.
    StripVlan,
    /// OFPAT10_SET_DL_SRC.
    SetDlSrc([u8; 6]),
    /// OFPAT10_SET_DL_DST.
    SetDlDst([u8; 6]),
    /// OFPAT10_SET_NW_SRC.
    SetNwSrc(Ipv4Addr),
    /// OFPAT10_SET_NW_DST.
    SetNwDst(Ipv4Addr),
    /// OFPAT10_SET_NW_TOS: the ToS byte (DSCP in the upper 6 bits).
    SetNwTos(u8),
    /// OFPAT10_SET_TP_SRC.
    SetTpSrc(u16),
    /// OFPAT10_SET_TP_DST.
    SetTpDst(u16),
    /// OFPAT10_ENQUEUE.
    Enqueue {
        /// Port.
        port: u16,
        /// Queue.
        queue_id: u32,
    },
    /// OFPAT10_VENDOR: a Nicira action ([`Action::Nicira`]) or another
    /// vendor's ([`Action::Experimenter`]).
    Vendor(Action),
    /// Any other type: the type and the bytes after the 4-byte header.
    Unknown {
        /// The action type.
        action_type: u16,
        /// The body.
        data: Vec<u8>,
    },
}

impl Action10 {
    /// Parses the action at the front of `buf`; returns it and its length.
    /// Section 5.2.4: the length includes the header and is a multiple of 8.
    pub fn parse(buf: &[u8]) -> Result<(Action10, usize)> {
        if buf.len() < 8 {
            return Err(Error::BadAction("truncated action header"));
        }
        let ty = u16_at(buf, field::TYPE);
        let len = u16_at(buf, field::LEN) as usize;
        if len < 8 || !len.is_multiple_of(8) || len > buf.len() {
            return Err(Error::BadAction(
                "action length not a multiple of 8 within the list",
            ));
        }
        let a = &buf[..len];
        let fixed = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(Error::BadAction("wrong length for the action type"))
            }
        };
        use action_type as t;
        let act = match ty {
            t::OUTPUT => {
                fixed(8)?;
                Action10::Output {
                    port: u16_at(a, field::U16),
                    max_len: u16_at(a, field::MAX_LEN),
                }
            }
            t::SET_VLAN_VID => {
                fixed(8)?;
                Action10::SetVlanVid(u16_at(a, field::U16))
            }
            t::SET_VLAN_PCP => {
                fixed(8)?;
                Action10::SetVlanPcp(u8_at(a, field::U8))
            }
            t::STRIP_VLAN => {
                fixed(8)?;
                Action10::StripVlan
            }
            t::SET_DL_SRC | t::SET_DL_DST => {
                fixed(16)?;
                let mac = mac_at(a, field::DL_ADDR);
                if ty == t::SET_DL_SRC {
                    Action10::SetDlSrc(mac)
                } else {
                    Action10::SetDlDst(mac)
                }
            }
            t::SET_NW_SRC | t::SET_NW_DST => {
                fixed(8)?;
                let ip = Ipv4Addr::from(u32_at(a, field::NW_ADDR));
                if ty == t::SET_NW_SRC {
                    Action10::SetNwSrc(ip)
                } else {
                    Action10::SetNwDst(ip)
                }
            }
            t::SET_NW_TOS => {
                fixed(8)?;
                Action10::SetNwTos(u8_at(a, field::U8))
            }
            t::SET_TP_SRC => {
                fixed(8)?;
                Action10::SetTpSrc(u16_at(a, field::U16))
            }
            t::SET_TP_DST => {
                fixed(8)?;
                Action10::SetTpDst(u16_at(a, field::U16))
            }
            t::ENQUEUE => {
                fixed(16)?;
                Action10::Enqueue {
                    port: u16_at(a, field::U16),
                    queue_id: u32_at(a, field::QUEUE_ID),
                }
            }
            t::VENDOR => {
                let (v, n) = Action::parse(a)?;
                if n != len {
                    return Err(Error::BadAction("vendor action length"));
                }
                Action10::Vendor(v)
            }
            _ => Action10::Unknown {
                action_type: ty,
                data: a[4..].to_vec(),
            },
        };
        Ok((act, len))
    }

    /// Parses a whole action list.
    pub fn parse_list(mut buf: &[u8]) -> Result<Vec<Action10>> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (a, n) = Action10::parse(buf)?;
            out.push(a);
            buf = &buf[n..];
        }
        Ok(out)
    }

    /// The action type.
    pub fn action_type(&self) -> u16 {
        use action_type as t;
        match self {
            Action10::Output { .. } => t::OUTPUT,
            Action10::SetVlanVid(_) => t::SET_VLAN_VID,
            Action10::SetVlanPcp(_) => t::SET_VLAN_PCP,
            Action10::StripVlan => t::STRIP_VLAN,
            Action10::SetDlSrc(_) => t::SET_DL_SRC,
            Action10::SetDlDst(_) => t::SET_DL_DST,
            Action10::SetNwSrc(_) => t::SET_NW_SRC,
            Action10::SetNwDst(_) => t::SET_NW_DST,
            Action10::SetNwTos(_) => t::SET_NW_TOS,
            Action10::SetTpSrc(_) => t::SET_TP_SRC,
            Action10::SetTpDst(_) => t::SET_TP_DST,
            Action10::Enqueue { .. } => t::ENQUEUE,
            Action10::Vendor(_) => t::VENDOR,
            Action10::Unknown { action_type, .. } => *action_type,
        }
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            Action10::SetDlSrc(_) | Action10::SetDlDst(_) | Action10::Enqueue { .. } => 16,
            Action10::Vendor(a) => a.buffer_len(),
            Action10::Unknown { data, .. } => crate::bytes::round8(4 + data.len()),
            _ => 8,
        }
    }

    /// Appends the action.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        if let Action10::Vendor(a) = self {
            return match a {
                Action::Nicira(_) | Action::Experimenter { .. } => a.emit(out),
                _ => Err(Error::BadAction("an OpenFlow 1.3 action in a 1.0 list")),
            };
        }
        let len = self.buffer_len();
        let start = out.len();
        out.extend_from_slice(&self.action_type().to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        match self {
            Action10::Output { port, max_len } => {
                out.extend_from_slice(&port.to_be_bytes());
                out.extend_from_slice(&max_len.to_be_bytes());
            }
            Action10::SetVlanVid(v) | Action10::SetTpSrc(v) | Action10::SetTpDst(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Action10::SetVlanPcp(v) | Action10::SetNwTos(v) => out.push(*v),
            Action10::SetDlSrc(m) | Action10::SetDlDst(m) => out.extend_from_slice(m),
            Action10::SetNwSrc(a) | Action10::SetNwDst(a) => out.extend_from_slice(&a.octets()),
            Action10::Enqueue { port, queue_id } => {
                out.extend_from_slice(&port.to_be_bytes());
                zeros(out, 6);
                out.extend_from_slice(&queue_id.to_be_bytes());
            }
            Action10::Unknown { data, .. } => out.extend_from_slice(data),
            Action10::StripVlan | Action10::Vendor(_) => {}
        }
        let n = out.len() - start;
        zeros(out, len - n);
        Ok(())
    }

    /// Total length of a list.
    pub fn list_len(list: &[Action10]) -> usize {
        list.iter().map(Action10::buffer_len).sum()
    }

    /// Appends a list.
    pub fn emit_list(list: &[Action10], out: &mut Vec<u8>) -> Result<()> {
        list.iter().try_for_each(|a| a.emit(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nicira::NxAction;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `mod_vlan_vid:7,mod_nw_tos:8,mod_tp_dst:99,strip_vlan,NORMAL` and
    /// `mod_dl_src:02:00:00:00:00:99,output:1`, `resubmit(,1)`,
    /// `FLOOD,IN_PORT,LOCAL,CONTROLLER:100,ALL`, `dec_ttl`: the action lists
    /// the real `ovs-ofctl` 3.1 sent (tests/captures/of10_session.txt).
    const LISTS: [(&str, usize); 5] = [
        (
            "00010008000700000008000808000000000a000800630000000300080000000000000008fffa0000",
            5,
        ),
        ("000400100200000000990000000000000000000800010000", 2),
        ("ffff001000002320000efff801000000", 1),
        (
            "00000008fffb000000000008fff8000000000008fffe000000000008fffd006400000008fffc0000",
            5,
        ),
        ("ffff00100000232000120000000000000000000800020000", 2),
    ];

    #[test]
    fn deconstruct_and_reconstruct_the_captures() {
        for (hex, n) in LISTS {
            let b = unhex(hex);
            let list = Action10::parse_list(&b).unwrap();
            assert_eq!(list.len(), n, "{hex}");
            let mut out = Vec::new();
            Action10::emit_list(&list, &mut out).unwrap();
            assert_eq!(out, b, "{list:?}");
            assert_eq!(Action10::list_len(&list), b.len());
        }
        let l = Action10::parse_list(&unhex(LISTS[0].0)).unwrap();
        assert_eq!(
            l,
            vec![
                Action10::SetVlanVid(7),
                Action10::SetNwTos(8),
                Action10::SetTpDst(99),
                Action10::StripVlan,
                Action10::Output {
                    port: port_no::NORMAL,
                    max_len: 0
                },
            ]
        );
        let l = Action10::parse_list(&unhex(LISTS[2].0)).unwrap();
        assert_eq!(
            l,
            vec![Action10::Vendor(Action::Nicira(NxAction::ResubmitTable {
                in_port: 0xfff8,
                table: 1
            }))]
        );
    }

    #[test]
    fn construct_like_ovs() {
        let mut out = Vec::new();
        Action10::SetDlSrc([2, 0, 0, 0, 0, 0x99])
            .emit(&mut out)
            .unwrap();
        Action10::Output {
            port: 1,
            max_len: 0,
        }
        .emit(&mut out)
        .unwrap();
        assert_eq!(out, unhex(LISTS[1].0));
    }

    #[test]
    fn bad_lengths_are_errors() {
        for bad in [
            "0000000400010000",                 // length below 8
            "00000010000100000000000000000000", // OUTPUT of 16 bytes
            "000400080200000000990000",         // SET_DL_SRC of 8 bytes
            "00000018",                         // runs past the list
        ] {
            assert!(Action10::parse_list(&unhex(bad)).is_err(), "{bad}");
        }
        let l = Action10::parse_list(&unhex("0063000800000000")).unwrap();
        assert!(matches!(
            l[0],
            Action10::Unknown {
                action_type: 0x63,
                ..
            }
        ));
    }
}
