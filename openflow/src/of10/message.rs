//! [`Message10`]: one typed representation per OpenFlow 1.0 message type a
//! switch receives from `ovs-ofctl` or a 1.0 controller, and the replies it
//! sends (section 5.1, `ofp_type` of 1.0).
//!
//! ```text
//! bytes ──Packet::new_checked──► (version 0x01) ──Message10::parse──► (Header, Message10)
//! Message10 ──Message10::emit(xid)──► bytes (ofp_header version 0x01, computed length)
//! ```
//!
//! HELLO, ERROR, ECHO and the switch configuration have the 1.3 layout and
//! reuse its types; the rest are in this module's siblings. Types not
//! modelled (PORT_MOD, QUEUE_GET_CONFIG, ...) parse as
//! [`Message10::Unknown`] so a switch can answer OFPBRC_BAD_TYPE.

use super::flow_mod::FlowMod10;
use super::nx::Vendor;
use super::packet_out::PacketOut10;
use super::port::FeaturesReply10;
use super::stats::{StatsReply10, StatsRequest10};
use super::VERSION;
use crate::error::exact_len;
use crate::error_msg::ErrorMsg;
use crate::field::header as hfield;
use crate::header::{Header, Packet};
use crate::hello::Hello;
use crate::switch_config::SwitchConfig;
use crate::{Error, Result, MAX_MESSAGE_LEN};

/// OFPT_* message types of OpenFlow 1.0.
pub mod msg_type {
    /// OFPT_HELLO: version negotiation.
    pub const HELLO: u8 = 0;
    /// OFPT_ERROR: an error about a request.
    pub const ERROR: u8 = 1;
    /// OFPT_ECHO_REQUEST: liveness probe.
    pub const ECHO_REQUEST: u8 = 2;
    /// OFPT_ECHO_REPLY: answer to an echo request.
    pub const ECHO_REPLY: u8 = 3;
    /// OFPT_VENDOR: a vendor extension message (Nicira's NXT_* here).
    pub const VENDOR: u8 = 4;
    /// OFPT_FEATURES_REQUEST: ask for the datapath id and ports.
    pub const FEATURES_REQUEST: u8 = 5;
    /// OFPT_FEATURES_REPLY: the datapath id, capabilities and ports.
    pub const FEATURES_REPLY: u8 = 6;
    /// OFPT_GET_CONFIG_REQUEST: ask for the switch configuration.
    pub const GET_CONFIG_REQUEST: u8 = 7;
    /// OFPT_GET_CONFIG_REPLY: the fragment handling and miss_send_len.
    pub const GET_CONFIG_REPLY: u8 = 8;
    /// OFPT_SET_CONFIG: set the fragment handling and miss_send_len.
    pub const SET_CONFIG: u8 = 9;
    /// OFPT_PACKET_IN: a packet sent to the controller.
    pub const PACKET_IN: u8 = 10;
    /// OFPT_FLOW_REMOVED: a flow expired or was deleted.
    pub const FLOW_REMOVED: u8 = 11;
    /// OFPT_PORT_STATUS: a port was added, removed or changed.
    pub const PORT_STATUS: u8 = 12;
    /// OFPT_PACKET_OUT: send a packet through actions.
    pub const PACKET_OUT: u8 = 13;
    /// OFPT_FLOW_MOD: add, change or delete flows.
    pub const FLOW_MOD: u8 = 14;
    /// OFPT_PORT_MOD: change a port's configuration.
    pub const PORT_MOD: u8 = 15;
    /// OFPT_STATS_REQUEST: ask for statistics (OFPST_*).
    pub const STATS_REQUEST: u8 = 16;
    /// OFPT_STATS_REPLY: statistics.
    pub const STATS_REPLY: u8 = 17;
    /// OFPT_BARRIER_REQUEST: finish every earlier message first.
    pub const BARRIER_REQUEST: u8 = 18;
    /// OFPT_BARRIER_REPLY: every earlier message is done.
    pub const BARRIER_REPLY: u8 = 19;
}

/// An OpenFlow 1.0 message (the xid is in the [`Header`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Message10 {
    /// OFPT_HELLO.
    Hello(Hello),
    /// OFPT_ERROR (build 1.0 codes with [`super::error::error_msg`]).
    Error(ErrorMsg),
    /// OFPT_ECHO_REQUEST.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY.
    EchoReply(Vec<u8>),
    /// OFPT_VENDOR (Nicira extensions).
    Vendor(Vendor),
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY with the port list.
    FeaturesReply(FeaturesReply10),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_FLOW_MOD.
    FlowMod(FlowMod10),
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut10),
    /// OFPT_STATS_REQUEST.
    StatsRequest(StatsRequest10),
    /// OFPT_STATS_REPLY.
    StatsReply(StatsReply10),
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
    /// Another type: its number and body.
    Unknown {
        /// The type.
        msg_type: u8,
        /// The body after the header.
        body: Vec<u8>,
    },
}

fn no_body(msg: &[u8], m: Message10) -> Result<Message10> {
    exact_len(msg, hfield::LEN)?;
    Ok(m)
}

impl Message10 {
    /// Parses one whole message of version 0x01 (HELLO and ERROR of any
    /// version, as in [`crate::Message::parse`]).
    pub fn parse(buf: &[u8]) -> Result<(Header, Message10)> {
        let p = Packet::new_checked(buf)?;
        let h = p.header();
        let msg = p.message();
        use msg_type as t;
        if h.version != VERSION && h.msg_type != t::HELLO && h.msg_type != t::ERROR {
            return Err(Error::BadVersion(h.version));
        }
        let m = match h.msg_type {
            t::HELLO => Message10::Hello(Hello::parse(msg)?),
            t::ERROR => Message10::Error(ErrorMsg::parse(msg)?),
            t::ECHO_REQUEST => Message10::EchoRequest(p.body().to_vec()),
            t::ECHO_REPLY => Message10::EchoReply(p.body().to_vec()),
            t::VENDOR => Message10::Vendor(Vendor::parse(msg)?),
            t::FEATURES_REQUEST => no_body(msg, Message10::FeaturesRequest)?,
            t::FEATURES_REPLY => Message10::FeaturesReply(FeaturesReply10::parse(msg)?),
            t::GET_CONFIG_REQUEST => no_body(msg, Message10::GetConfigRequest)?,
            t::GET_CONFIG_REPLY => Message10::GetConfigReply(SwitchConfig::parse(msg)?),
            t::SET_CONFIG => Message10::SetConfig(SwitchConfig::parse(msg)?),
            t::FLOW_MOD => Message10::FlowMod(FlowMod10::parse(msg)?),
            t::PACKET_OUT => Message10::PacketOut(PacketOut10::parse(msg)?),
            t::STATS_REQUEST => Message10::StatsRequest(StatsRequest10::parse(msg)?),
            t::STATS_REPLY => Message10::StatsReply(StatsReply10::parse(msg)?),
            t::BARRIER_REQUEST => no_body(msg, Message10::BarrierRequest)?,
            t::BARRIER_REPLY => no_body(msg, Message10::BarrierReply)?,
            other => Message10::Unknown {
                msg_type: other,
                body: p.body().to_vec(),
            },
        };
        Ok((h, m))
    }

    /// The OFPT_* type.
    pub fn msg_type(&self) -> u8 {
        use msg_type as t;
        match self {
            Message10::Hello(_) => t::HELLO,
            Message10::Error(_) => t::ERROR,
            Message10::EchoRequest(_) => t::ECHO_REQUEST,
            Message10::EchoReply(_) => t::ECHO_REPLY,
            Message10::Vendor(_) => t::VENDOR,
            Message10::FeaturesRequest => t::FEATURES_REQUEST,
            Message10::FeaturesReply(_) => t::FEATURES_REPLY,
            Message10::GetConfigRequest => t::GET_CONFIG_REQUEST,
            Message10::GetConfigReply(_) => t::GET_CONFIG_REPLY,
            Message10::SetConfig(_) => t::SET_CONFIG,
            Message10::FlowMod(_) => t::FLOW_MOD,
            Message10::PacketOut(_) => t::PACKET_OUT,
            Message10::StatsRequest(_) => t::STATS_REQUEST,
            Message10::StatsReply(_) => t::STATS_REPLY,
            Message10::BarrierRequest => t::BARRIER_REQUEST,
            Message10::BarrierReply => t::BARRIER_REPLY,
            Message10::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message10::Hello(h) => h.buffer_len(),
            Message10::Error(e) => e.buffer_len(),
            Message10::EchoRequest(b) | Message10::EchoReply(b) => hfield::LEN + b.len(),
            Message10::Vendor(v) => v.buffer_len(),
            Message10::FeaturesReply(f) => f.buffer_len(),
            Message10::GetConfigReply(c) | Message10::SetConfig(c) => c.buffer_len(),
            Message10::FlowMod(f) => f.buffer_len(),
            Message10::PacketOut(p) => p.buffer_len(),
            Message10::StatsRequest(r) => r.buffer_len(),
            Message10::StatsReply(r) => r.buffer_len(),
            Message10::Unknown { body, .. } => hfield::LEN + body.len(),
            Message10::FeaturesRequest
            | Message10::GetConfigRequest
            | Message10::BarrierRequest
            | Message10::BarrierReply => hfield::LEN,
        }
    }

    /// Appends the whole message (header version 0x01) with transaction `xid`.
    pub fn emit(&self, xid: u32, out: &mut Vec<u8>) -> Result<()> {
        let len = self.buffer_len();
        if len > MAX_MESSAGE_LEN {
            return Err(Error::TooLong(len));
        }
        let start = out.len();
        Header {
            version: VERSION,
            msg_type: self.msg_type(),
            length: len as u16,
            xid,
        }
        .emit(out);
        match self {
            Message10::Hello(h) => h.emit(out)?,
            Message10::Error(e) => e.emit(out)?,
            Message10::EchoRequest(b) | Message10::EchoReply(b) => out.extend_from_slice(b),
            Message10::Vendor(v) => v.emit(out)?,
            Message10::FeaturesReply(f) => f.emit(out),
            Message10::GetConfigReply(c) | Message10::SetConfig(c) => c.emit(out)?,
            Message10::FlowMod(f) => f.emit(out)?,
            Message10::PacketOut(p) => p.emit(out)?,
            Message10::StatsRequest(r) => r.emit(out)?,
            Message10::StatsReply(r) => r.emit(out)?,
            Message10::Unknown { body, .. } => out.extend_from_slice(body),
            Message10::FeaturesRequest
            | Message10::GetConfigRequest
            | Message10::BarrierRequest
            | Message10::BarrierReply => {}
        }
        debug_assert_eq!(out.len() - start, len, "{self:?}");
        Ok(())
    }

    /// The whole message as a new buffer.
    pub fn to_vec(&self, xid: u32) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(xid, &mut v)?;
        Ok(v)
    }
}
