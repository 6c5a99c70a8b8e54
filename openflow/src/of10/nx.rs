//! OFPT_VENDOR messages (OpenFlow 1.0 section 5.5.4) and the Nicira ones
//! (vendor 0x00002320, Open vSwitch `include/openflow/nicira-ext.h`) that
//! `ovs-ofctl` sends in OpenFlow 1.0.
//!
//! ```text
//! header(8) | vendor(4) | subtype(4) | body
//! NXT_SET_FLOW_FORMAT (12):    format(4)             0 = OpenFlow 1.0 match, 2 = NXM
//! NXT_FLOW_MOD (13):           see flow_mod::NxFlowMod
//! NXT_FLOW_MOD_TABLE_ID (15):  set(1) pad(7)         command's high byte is the table
//! NXT_SET_PACKET_IN_FORMAT (16): format(4)
//! ```

use super::field::vendor as field;
use super::flow_mod::NxFlowMod;
use crate::bytes::{u32_at, u8_at};
use crate::error::{check_len, exact_len};
use crate::nicira::NX_VENDOR_ID;
use crate::Result;

/// Nicira message subtypes.
pub mod subtype {
    /// NXT_SET_FLOW_FORMAT: choose OpenFlow 1.0 or NXM matches ([`super::flow_format`]).
    pub const SET_FLOW_FORMAT: u32 = 12;
    /// NXT_FLOW_MOD: a flow-mod with an NXM match (`struct nx_flow_mod`).
    pub const FLOW_MOD: u32 = 13;
    /// NXT_FLOW_MOD_TABLE_ID: let flow-mods carry a table id in the command's high byte.
    pub const FLOW_MOD_TABLE_ID: u32 = 15;
    /// NXT_SET_PACKET_IN_FORMAT: choose the packet-in format.
    pub const SET_PACKET_IN_FORMAT: u32 = 16;
}

/// NXFF_* flow formats.
pub mod flow_format {
    /// NXFF_OPENFLOW10: the standard `ofp10_match`.
    pub const OPENFLOW10: u32 = 0;
    /// NXFF_NXM: Nicira extended matches (NXM TLVs).
    pub const NXM: u32 = 2;
}

/// An OFPT_VENDOR message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Vendor {
    /// NXT_SET_FLOW_FORMAT.
    SetFlowFormat(u32),
    /// NXT_FLOW_MOD.
    FlowMod(NxFlowMod),
    /// NXT_FLOW_MOD_TABLE_ID: on or off.
    FlowModTableId(bool),
    /// NXT_SET_PACKET_IN_FORMAT.
    SetPacketInFormat(u32),
    /// Another Nicira subtype: its body after the subtype.
    Nicira {
        /// The subtype.
        subtype: u32,
        /// The body.
        body: Vec<u8>,
    },
    /// Another vendor: its id and the bytes after it.
    Other {
        /// The vendor id.
        vendor: u32,
        /// The bytes after the vendor id.
        body: Vec<u8>,
    },
}

impl Vendor {
    /// Parses a whole OFPT_VENDOR message.
    pub fn parse(msg: &[u8]) -> Result<Vendor> {
        check_len(msg, field::VENDOR.end)?;
        let vendor = u32_at(msg, field::VENDOR);
        if vendor != NX_VENDOR_ID {
            return Ok(Vendor::Other {
                vendor,
                body: msg[field::VENDOR.end..].to_vec(),
            });
        }
        check_len(msg, field::LEN)?;
        let st = u32_at(msg, field::SUBTYPE);
        let body = &msg[field::LEN..];
        Ok(match st {
            subtype::SET_FLOW_FORMAT => {
                exact_len(msg, field::LEN + 4)?;
                Vendor::SetFlowFormat(u32_at(body, 0..4))
            }
            subtype::SET_PACKET_IN_FORMAT => {
                exact_len(msg, field::LEN + 4)?;
                Vendor::SetPacketInFormat(u32_at(body, 0..4))
            }
            subtype::FLOW_MOD_TABLE_ID => {
                exact_len(msg, field::LEN + 8)?;
                Vendor::FlowModTableId(u8_at(body, 0) != 0)
            }
            subtype::FLOW_MOD => Vendor::FlowMod(NxFlowMod::parse(msg)?),
            _ => Vendor::Nicira {
                subtype: st,
                body: body.to_vec(),
            },
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Vendor::SetFlowFormat(_) | Vendor::SetPacketInFormat(_) => field::LEN + 4,
            Vendor::FlowModTableId(_) => field::LEN + 8,
            Vendor::FlowMod(f) => f.buffer_len(),
            Vendor::Nicira { body, .. } => field::LEN + body.len(),
            Vendor::Other { body, .. } => field::VENDOR.end + body.len(),
        }
    }

    /// Appends the body (after the ofp_header).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        if let Vendor::Other { vendor, body } = self {
            out.extend_from_slice(&vendor.to_be_bytes());
            out.extend_from_slice(body);
            return Ok(());
        }
        out.extend_from_slice(&NX_VENDOR_ID.to_be_bytes());
        let st = match self {
            Vendor::SetFlowFormat(_) => subtype::SET_FLOW_FORMAT,
            Vendor::SetPacketInFormat(_) => subtype::SET_PACKET_IN_FORMAT,
            Vendor::FlowModTableId(_) => subtype::FLOW_MOD_TABLE_ID,
            Vendor::FlowMod(_) => subtype::FLOW_MOD,
            Vendor::Nicira { subtype, .. } => *subtype,
            Vendor::Other { .. } => 0,
        };
        out.extend_from_slice(&st.to_be_bytes());
        match self {
            Vendor::SetFlowFormat(v) | Vendor::SetPacketInFormat(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Vendor::FlowModTableId(on) => {
                out.push(*on as u8);
                crate::bytes::zeros(out, 7);
            }
            Vendor::FlowMod(f) => f.emit(out)?,
            Vendor::Nicira { body, .. } => out.extend_from_slice(body),
            Vendor::Other { .. } => {}
        }
        Ok(())
    }
}
