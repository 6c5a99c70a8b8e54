//! Actions (spec section 7.2.5): a list of TLVs, each a multiple of 8 bytes.
//!
//! ```text
//! +---------------+---------------+---------------------------------+
//! | type          | len (incl hdr)| type-specific body, pad to 8    |
//! +---------------+---------------+---------------------------------+
//! ```
//!
//! Section 7.2.5: "len: Length of action, including this header. This is the length of
//! action, including any padding to make it 64-bit aligned." Known fixed-size actions
//! must have exactly their size (OFPBAC_BAD_LEN otherwise). Unknown types parse as
//! [`Action::Unknown`] so a switch can answer OFPBAC_BAD_TYPE; unknown experimenters as
//! [`Action::Experimenter`].

use crate::bytes::{round8, u16_at, u32_at, u8_at};
use crate::field::action as field;
use crate::nicira::{NxAction, NX_VENDOR_ID};
use crate::oxm::OxmField;
use crate::tlv;
use crate::{Error, Result};

/// Action type codes (ofp_action_type).
pub mod kind {
    /// OFPAT_OUTPUT: output to a port.
    pub const OUTPUT: u16 = 0;
    /// OFPAT_COPY_TTL_OUT: copy the TTL outwards, from next-to-outermost to outermost.
    pub const COPY_TTL_OUT: u16 = 11;
    /// OFPAT_COPY_TTL_IN: copy the TTL inwards, from outermost to next-to-outermost.
    pub const COPY_TTL_IN: u16 = 12;
    /// OFPAT_SET_MPLS_TTL: set the MPLS TTL.
    pub const SET_MPLS_TTL: u16 = 15;
    /// OFPAT_DEC_MPLS_TTL: decrement the MPLS TTL.
    pub const DEC_MPLS_TTL: u16 = 16;
    /// OFPAT_PUSH_VLAN: push a new VLAN tag.
    pub const PUSH_VLAN: u16 = 17;
    /// OFPAT_POP_VLAN: pop the outer VLAN tag.
    pub const POP_VLAN: u16 = 18;
    /// OFPAT_PUSH_MPLS: push a new MPLS label.
    pub const PUSH_MPLS: u16 = 19;
    /// OFPAT_POP_MPLS: pop the outer MPLS label.
    pub const POP_MPLS: u16 = 20;
    /// OFPAT_SET_QUEUE: set the output queue.
    pub const SET_QUEUE: u16 = 21;
    /// OFPAT_GROUP: apply a group.
    pub const GROUP: u16 = 22;
    /// OFPAT_SET_NW_TTL: set the IP TTL.
    pub const SET_NW_TTL: u16 = 23;
    /// OFPAT_DEC_NW_TTL: decrement the IP TTL.
    pub const DEC_NW_TTL: u16 = 24;
    /// OFPAT_SET_FIELD: set a header field from an OXM TLV.
    pub const SET_FIELD: u16 = 25;
    /// OFPAT_PUSH_PBB: push a new PBB service tag.
    pub const PUSH_PBB: u16 = 26;
    /// OFPAT_POP_PBB: pop the outer PBB service tag.
    pub const POP_PBB: u16 = 27;
    /// OFPAT_EXPERIMENTER: an experimenter action (Nicira's NXAST_* here).
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Reserved port numbers (ofp_port_no, section 7.2.1).
pub mod port_no {
    /// Maximum number of physical and logical switch ports.
    pub const MAX: u32 = 0xffff_ff00;
    /// Send the packet out the input port.
    pub const IN_PORT: u32 = 0xffff_fff8;
    /// Submit the packet to the first flow table (packet-out only).
    pub const TABLE: u32 = 0xffff_fff9;
    /// Forward using non-OpenFlow pipeline.
    pub const NORMAL: u32 = 0xffff_fffa;
    /// Flood using non-OpenFlow pipeline.
    pub const FLOOD: u32 = 0xffff_fffb;
    /// All standard ports except input port.
    pub const ALL: u32 = 0xffff_fffc;
    /// Send to controller.
    pub const CONTROLLER: u32 = 0xffff_fffd;
    /// Local openflow "port".
    pub const LOCAL: u32 = 0xffff_fffe;
    /// Special value used in some requests when no port is specified (wildcarded).
    pub const ANY: u32 = 0xffff_ffff;
}

/// OFPCML_NO_BUFFER: send the whole packet to the controller, unbuffered.
pub const OFPCML_NO_BUFFER: u16 = 0xffff;
/// OFPCML_MAX: largest max_len that may ask for buffering.
pub const OFPCML_MAX: u16 = 0xffe5;

/// Nested action lists (inside Nicira `ct`) deeper than this are refused, so a hostile
/// message cannot exhaust the stack.
pub const MAX_NESTING: usize = 4;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// OFPAT_OUTPUT: port (see [`port_no`]) and max_len for CONTROLLER.
    Output {
        /// Output port.
        port: u32,
        /// Bytes to send to the controller (OFPCML_NO_BUFFER = whole packet).
        max_len: u16,
    },
    /// OFPAT_COPY_TTL_OUT.
    CopyTtlOut,
    /// OFPAT_COPY_TTL_IN.
    CopyTtlIn,
    /// OFPAT_SET_MPLS_TTL.
    SetMplsTtl(u8),
    /// OFPAT_DEC_MPLS_TTL.
    DecMplsTtl,
    /// OFPAT_PUSH_VLAN with its ethertype (0x8100 or 0x88a8).
    PushVlan(u16),
    /// OFPAT_POP_VLAN.
    PopVlan,
    /// OFPAT_PUSH_MPLS with its ethertype.
    PushMpls(u16),
    /// OFPAT_POP_MPLS with the ethertype of the payload.
    PopMpls(u16),
    /// OFPAT_SET_QUEUE.
    SetQueue(u32),
    /// OFPAT_GROUP.
    Group(u32),
    /// OFPAT_SET_NW_TTL.
    SetNwTtl(u8),
    /// OFPAT_DEC_NW_TTL.
    DecNwTtl,
    /// OFPAT_SET_FIELD: one OXM TLV (without mask in 1.3).
    SetField(OxmField),
    /// OFPAT_PUSH_PBB with its ethertype.
    PushPbb(u16),
    /// OFPAT_POP_PBB.
    PopPbb,
    /// A Nicira (experimenter 0x00002320) action.
    Nicira(NxAction),
    /// Any other experimenter action: id and the bytes after it (padding included).
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Bytes after the experimenter id.
        data: Vec<u8>,
    },
    /// An action type this crate does not know: type and the bytes after the 4-byte
    /// header (answer OFPBAC_BAD_TYPE).
    Unknown {
        /// The action type.
        action_type: u16,
        /// Bytes after type and len.
        data: Vec<u8>,
    },
}

impl Action {
    /// An OUTPUT action with max_len 0 (or OFPCML_NO_BUFFER for CONTROLLER).
    pub fn output(port: u32) -> Action {
        let max_len = if port == port_no::CONTROLLER {
            OFPCML_NO_BUFFER
        } else {
            0
        };
        Action::Output { port, max_len }
    }

    /// Parses the action at the front of `buf`; returns it and its length.
    pub fn parse(buf: &[u8]) -> Result<(Action, usize)> {
        Action::parse_nested(buf, 0)
    }

    pub(crate) fn parse_nested(buf: &[u8], depth: usize) -> Result<(Action, usize)> {
        let (ty, a) = tlv::parse(buf, Error::BadAction)?;
        let len = a.len();
        let fixed = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(Error::BadAction("wrong length for the action type"))
            }
        };
        let act = match ty {
            kind::OUTPUT => {
                fixed(field::OUTPUT_LEN)?;
                Action::Output {
                    port: u32_at(a, field::OUTPUT_PORT),
                    max_len: u16_at(a, field::OUTPUT_MAX_LEN),
                }
            }
            kind::COPY_TTL_OUT => fixed(8).map(|_| Action::CopyTtlOut)?,
            kind::COPY_TTL_IN => fixed(8).map(|_| Action::CopyTtlIn)?,
            kind::SET_MPLS_TTL => fixed(8).map(|_| Action::SetMplsTtl(u8_at(a, field::TTL)))?,
            kind::DEC_MPLS_TTL => fixed(8).map(|_| Action::DecMplsTtl)?,
            kind::PUSH_VLAN => fixed(8).map(|_| Action::PushVlan(u16_at(a, field::ETHERTYPE)))?,
            kind::POP_VLAN => fixed(8).map(|_| Action::PopVlan)?,
            kind::PUSH_MPLS => fixed(8).map(|_| Action::PushMpls(u16_at(a, field::ETHERTYPE)))?,
            kind::POP_MPLS => fixed(8).map(|_| Action::PopMpls(u16_at(a, field::ETHERTYPE)))?,
            kind::SET_QUEUE => fixed(8).map(|_| Action::SetQueue(u32_at(a, field::ID)))?,
            kind::GROUP => fixed(8).map(|_| Action::Group(u32_at(a, field::ID)))?,
            kind::SET_NW_TTL => fixed(8).map(|_| Action::SetNwTtl(u8_at(a, field::TTL)))?,
            kind::DEC_NW_TTL => fixed(8).map(|_| Action::DecNwTtl)?,
            kind::PUSH_PBB => fixed(8).map(|_| Action::PushPbb(u16_at(a, field::ETHERTYPE)))?,
            kind::POP_PBB => fixed(8).map(|_| Action::PopPbb)?,
            kind::SET_FIELD => {
                // Section 7.2.5: "len: Length is padded to 64 bits"; the OXM must fit.
                let (oxm, n) = OxmField::parse(&a[field::SET_FIELD_OXM..])
                    .map_err(|_| Error::BadAction("malformed OXM in set_field"))?;
                if round8(field::SET_FIELD_OXM + n) != len {
                    return Err(Error::BadAction("set_field length is not the padded OXM"));
                }
                Action::SetField(oxm)
            }
            kind::EXPERIMENTER => {
                let experimenter = u32_at(a, field::EXPERIMENTER);
                if experimenter == NX_VENDOR_ID {
                    Action::Nicira(NxAction::parse(a, depth)?)
                } else {
                    Action::Experimenter {
                        experimenter,
                        data: a[field::EXPERIMENTER_DATA..].to_vec(),
                    }
                }
            }
            t => Action::Unknown {
                action_type: t,
                data: a[4..].to_vec(),
            },
        };
        Ok((act, len))
    }

    /// Parses a whole action list (the bytes must hold whole actions only).
    pub fn parse_list(buf: &[u8]) -> Result<Vec<Action>> {
        Action::parse_list_nested(buf, 0)
    }

    pub(crate) fn parse_list_nested(buf: &[u8], depth: usize) -> Result<Vec<Action>> {
        if depth > MAX_NESTING {
            return Err(Error::BadAction("action lists nested too deeply"));
        }
        tlv::parse_list(buf, |b| Action::parse_nested(b, depth))
    }

    /// The action type code.
    pub fn action_type(&self) -> u16 {
        match self {
            Action::Output { .. } => kind::OUTPUT,
            Action::CopyTtlOut => kind::COPY_TTL_OUT,
            Action::CopyTtlIn => kind::COPY_TTL_IN,
            Action::SetMplsTtl(_) => kind::SET_MPLS_TTL,
            Action::DecMplsTtl => kind::DEC_MPLS_TTL,
            Action::PushVlan(_) => kind::PUSH_VLAN,
            Action::PopVlan => kind::POP_VLAN,
            Action::PushMpls(_) => kind::PUSH_MPLS,
            Action::PopMpls(_) => kind::POP_MPLS,
            Action::SetQueue(_) => kind::SET_QUEUE,
            Action::Group(_) => kind::GROUP,
            Action::SetNwTtl(_) => kind::SET_NW_TTL,
            Action::DecNwTtl => kind::DEC_NW_TTL,
            Action::SetField(_) => kind::SET_FIELD,
            Action::PushPbb(_) => kind::PUSH_PBB,
            Action::PopPbb => kind::POP_PBB,
            Action::Nicira(_) | Action::Experimenter { .. } => kind::EXPERIMENTER,
            Action::Unknown { action_type, .. } => *action_type,
        }
    }

    /// Bytes this action occupies.
    pub fn buffer_len(&self) -> usize {
        match self {
            Action::Output { .. } => field::OUTPUT_LEN,
            Action::SetField(o) => round8(field::SET_FIELD_OXM + o.buffer_len()),
            Action::Nicira(n) => n.buffer_len(),
            Action::Experimenter { data, .. } => round8(field::EXPERIMENTER_DATA + data.len()),
            Action::Unknown { data, .. } => round8(4 + data.len()),
            _ => field::LEN,
        }
    }

    /// Appends the action.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        tlv::emit(out, self.action_type(), self.buffer_len(), |out| {
            match self {
                Action::Output { port, max_len } => {
                    out.extend_from_slice(&port.to_be_bytes());
                    out.extend_from_slice(&max_len.to_be_bytes());
                }
                Action::SetMplsTtl(t) | Action::SetNwTtl(t) => out.push(*t),
                Action::PushVlan(e)
                | Action::PushMpls(e)
                | Action::PopMpls(e)
                | Action::PushPbb(e) => out.extend_from_slice(&e.to_be_bytes()),
                Action::SetQueue(id) | Action::Group(id) => {
                    out.extend_from_slice(&id.to_be_bytes())
                }
                Action::SetField(o) => o.emit(out)?,
                Action::Nicira(n) => {
                    out.extend_from_slice(&NX_VENDOR_ID.to_be_bytes());
                    n.emit_body(out)?;
                }
                Action::Experimenter { experimenter, data } => {
                    out.extend_from_slice(&experimenter.to_be_bytes());
                    out.extend_from_slice(data);
                }
                Action::Unknown { data, .. } => out.extend_from_slice(data),
                Action::CopyTtlOut
                | Action::CopyTtlIn
                | Action::DecMplsTtl
                | Action::PopVlan
                | Action::DecNwTtl
                | Action::PopPbb => {}
            }
            Ok(())
        })
    }

    /// Bytes a list of actions occupies.
    pub fn list_len(list: &[Action]) -> usize {
        list.iter().map(Action::buffer_len).sum()
    }

    /// Appends a list of actions.
    pub fn emit_list(list: &[Action], out: &mut Vec<u8>) -> Result<()> {
        list.iter().try_for_each(|a| a.emit(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_output() {
        let mut out = Vec::new();
        Action::output(port_no::CONTROLLER).emit(&mut out).unwrap();
        assert_eq!(
            out,
            [0, 0, 0, 16, 0xff, 0xff, 0xff, 0xfd, 0xff, 0xff, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Action::parse(&out).unwrap(),
            (Action::output(port_no::CONTROLLER), 16)
        );
    }

    #[test]
    fn unknown_type_is_raw() {
        let b = [0x00, 0x63, 0x00, 0x08, 1, 2, 3, 4];
        let (a, n) = Action::parse(&b).unwrap();
        assert_eq!(n, 8);
        assert_eq!(
            a,
            Action::Unknown {
                action_type: 0x63,
                data: vec![1, 2, 3, 4]
            }
        );
        let mut out = Vec::new();
        a.emit(&mut out).unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(Action::parse(&[0, 0, 0, 8, 0, 0, 0, 1]).is_err());
        assert!(Action::parse(&[0, 18, 0, 4, 0, 0, 0, 0]).is_err());
        assert!(Action::parse(&[0, 18, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Action::parse(&[0, 18, 0, 16, 0, 0, 0, 0]).is_err());
    }
}
