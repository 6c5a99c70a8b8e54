//! The [`Message`] enum: one typed representation per OpenFlow 1.3 message type.
//!
//! ```text
//! bytes ──Packet::new_checked──► Packet (length checked) ──Message::parse──► (Header, Message)
//! Message ──Message::emit(xid)──► bytes (ofp_header with the computed length, body)
//! ```
//!
//! Unknown types (and the 1.3 types not modelled: QUEUE_GET_CONFIG) parse
//! as [`Message::Unknown`] so a switch can answer OFPBRC_BAD_TYPE instead of closing.

use crate::async_config::AsyncConfig;
use crate::error::exact_len;
use crate::error_msg::ErrorMsg;
use crate::experimenter::Experimenter;
use crate::features::FeaturesReply;
use crate::field::header as hfield;
use crate::flow_mod::FlowMod;
use crate::flow_removed::FlowRemoved;
use crate::group::GroupMod;
use crate::header::{Header, MsgType, Packet};
use crate::hello::Hello;
use crate::meter_mod::MeterMod;
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::packet_in::PacketIn;
use crate::packet_out::PacketOut;
use crate::port::{PortMod, PortStatus};
use crate::role::Role;
use crate::switch_config::SwitchConfig;
use crate::table_mod::TableMod;
use crate::{Error, Result, MAX_MESSAGE_LEN, VERSION};

/// Any OpenFlow 1.3 message (without its xid, which [`Message::parse`] returns in the
/// [`Header`] and [`Message::emit`] takes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Message {
    /// OFPT_HELLO.
    Hello(Hello),
    /// OFPT_ERROR.
    Error(ErrorMsg),
    /// OFPT_ECHO_REQUEST with its arbitrary payload.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY (the request's payload, echoed).
    EchoReply(Vec<u8>),
    /// OFPT_EXPERIMENTER.
    Experimenter(Experimenter),
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY.
    FeaturesReply(FeaturesReply),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_PACKET_IN.
    PacketIn(PacketIn),
    /// OFPT_FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// OFPT_PORT_STATUS.
    PortStatus(PortStatus),
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut),
    /// OFPT_FLOW_MOD.
    FlowMod(FlowMod),
    /// OFPT_GROUP_MOD.
    GroupMod(GroupMod),
    /// OFPT_PORT_MOD.
    PortMod(PortMod),
    /// OFPT_TABLE_MOD.
    TableMod(TableMod),
    /// OFPT_METER_MOD.
    MeterMod(MeterMod),
    /// OFPT_MULTIPART_REQUEST.
    MultipartRequest(MultipartRequest),
    /// OFPT_MULTIPART_REPLY.
    MultipartReply(MultipartReply),
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
    /// OFPT_ROLE_REQUEST.
    RoleRequest(Role),
    /// OFPT_ROLE_REPLY.
    RoleReply(Role),
    /// OFPT_GET_ASYNC_REQUEST.
    GetAsyncRequest,
    /// OFPT_GET_ASYNC_REPLY.
    GetAsyncReply(AsyncConfig),
    /// OFPT_SET_ASYNC.
    SetAsync(AsyncConfig),
    /// A type this crate does not model, body kept raw.
    Unknown {
        /// The message type byte.
        msg_type: u8,
        /// The body (after the header).
        body: Vec<u8>,
    },
}

fn no_body(msg: &[u8], m: Message) -> Result<Message> {
    exact_len(msg, hfield::LEN).map(|_| m)
}

impl Message {
    /// Parses one whole message from the front of `buf` (bytes after the header's
    /// length are ignored; see [`crate::framing`]). HELLO and ERROR parse at any
    /// version (for negotiation); other types require version 0x04 ([`Error::BadVersion`]: answer
    /// OFPBRC_BAD_VERSION).
    pub fn parse(buf: &[u8]) -> Result<(Header, Message)> {
        let p = Packet::new_checked(buf)?;
        let h = p.header();
        let msg = p.message();
        let Some(t) = MsgType::from_u8(h.msg_type) else {
            return Ok((h, Message::unknown(h.msg_type, msg)));
        };
        // HELLO and ERROR have the same layout in every version: a peer speaking only
        // another version still gets its hello read and its HELLO_FAILED error seen.
        if h.version != VERSION && t != MsgType::Hello && t != MsgType::Error {
            return Err(Error::BadVersion(h.version));
        }
        use MsgType as T;
        let m = match t {
            T::Hello => Message::Hello(Hello::parse(msg)?),
            T::Error => Message::Error(ErrorMsg::parse(msg)?),
            T::EchoRequest => Message::EchoRequest(p.body().to_vec()),
            T::EchoReply => Message::EchoReply(p.body().to_vec()),
            T::Experimenter => Message::Experimenter(Experimenter::parse(msg)?),
            T::FeaturesRequest => no_body(msg, Message::FeaturesRequest)?,
            T::FeaturesReply => Message::FeaturesReply(FeaturesReply::parse(msg)?),
            T::GetConfigRequest => no_body(msg, Message::GetConfigRequest)?,
            T::GetConfigReply => Message::GetConfigReply(SwitchConfig::parse(msg)?),
            T::SetConfig => Message::SetConfig(SwitchConfig::parse(msg)?),
            T::PacketIn => Message::PacketIn(PacketIn::parse(msg)?),
            T::FlowRemoved => Message::FlowRemoved(FlowRemoved::parse(msg)?),
            T::PortStatus => Message::PortStatus(PortStatus::parse(msg)?),
            T::PacketOut => Message::PacketOut(PacketOut::parse(msg)?),
            T::FlowMod => Message::FlowMod(FlowMod::parse(msg)?),
            T::GroupMod => Message::GroupMod(GroupMod::parse(msg)?),
            T::PortMod => Message::PortMod(PortMod::parse(msg)?),
            T::TableMod => Message::TableMod(TableMod::parse(msg)?),
            T::MultipartRequest => Message::MultipartRequest(MultipartRequest::parse(msg)?),
            T::MultipartReply => Message::MultipartReply(MultipartReply::parse(msg)?),
            T::BarrierRequest => no_body(msg, Message::BarrierRequest)?,
            T::BarrierReply => no_body(msg, Message::BarrierReply)?,
            T::RoleRequest => Message::RoleRequest(Role::parse(msg)?),
            T::RoleReply => Message::RoleReply(Role::parse(msg)?),
            T::GetAsyncRequest => no_body(msg, Message::GetAsyncRequest)?,
            T::GetAsyncReply => Message::GetAsyncReply(AsyncConfig::parse(msg)?),
            T::SetAsync => Message::SetAsync(AsyncConfig::parse(msg)?),
            T::MeterMod => Message::MeterMod(MeterMod::parse(msg)?),
            T::QueueGetConfigRequest | T::QueueGetConfigReply => Message::unknown(h.msg_type, msg),
        };
        Ok((h, m))
    }

    fn unknown(msg_type: u8, msg: &[u8]) -> Message {
        Message::Unknown {
            msg_type,
            body: msg.get(hfield::LEN..).unwrap_or(&[]).to_vec(),
        }
    }

    /// The message type byte.
    pub fn msg_type(&self) -> u8 {
        use MsgType as T;
        let t = match self {
            Message::Hello(_) => T::Hello,
            Message::Error(_) => T::Error,
            Message::EchoRequest(_) => T::EchoRequest,
            Message::EchoReply(_) => T::EchoReply,
            Message::Experimenter(_) => T::Experimenter,
            Message::FeaturesRequest => T::FeaturesRequest,
            Message::FeaturesReply(_) => T::FeaturesReply,
            Message::GetConfigRequest => T::GetConfigRequest,
            Message::GetConfigReply(_) => T::GetConfigReply,
            Message::SetConfig(_) => T::SetConfig,
            Message::PacketIn(_) => T::PacketIn,
            Message::FlowRemoved(_) => T::FlowRemoved,
            Message::PortStatus(_) => T::PortStatus,
            Message::PacketOut(_) => T::PacketOut,
            Message::FlowMod(_) => T::FlowMod,
            Message::GroupMod(_) => T::GroupMod,
            Message::PortMod(_) => T::PortMod,
            Message::TableMod(_) => T::TableMod,
            Message::MeterMod(_) => T::MeterMod,
            Message::MultipartRequest(_) => T::MultipartRequest,
            Message::MultipartReply(_) => T::MultipartReply,
            Message::BarrierRequest => T::BarrierRequest,
            Message::BarrierReply => T::BarrierReply,
            Message::RoleRequest(_) => T::RoleRequest,
            Message::RoleReply(_) => T::RoleReply,
            Message::GetAsyncRequest => T::GetAsyncRequest,
            Message::GetAsyncReply(_) => T::GetAsyncReply,
            Message::SetAsync(_) => T::SetAsync,
            Message::Unknown { msg_type, .. } => return *msg_type,
        };
        t as u8
    }

    /// Length of the whole message (header included).
    pub fn buffer_len(&self) -> usize {
        let h = hfield::LEN;
        match self {
            Message::Hello(m) => m.buffer_len(),
            Message::Error(m) => m.buffer_len(),
            Message::EchoRequest(b) | Message::EchoReply(b) => h + b.len(),
            Message::Experimenter(m) => m.buffer_len(),
            Message::FeaturesReply(m) => m.buffer_len(),
            Message::GetConfigReply(m) | Message::SetConfig(m) => m.buffer_len(),
            Message::PacketIn(m) => m.buffer_len(),
            Message::FlowRemoved(m) => m.buffer_len(),
            Message::PortStatus(m) => m.buffer_len(),
            Message::PacketOut(m) => m.buffer_len(),
            Message::FlowMod(m) => m.buffer_len(),
            Message::GroupMod(m) => m.buffer_len(),
            Message::PortMod(m) => m.buffer_len(),
            Message::TableMod(m) => m.buffer_len(),
            Message::MeterMod(m) => m.buffer_len(),
            Message::MultipartRequest(m) => m.buffer_len(),
            Message::MultipartReply(m) => m.buffer_len(),
            Message::RoleRequest(m) | Message::RoleReply(m) => m.buffer_len(),
            Message::GetAsyncReply(m) | Message::SetAsync(m) => m.buffer_len(),
            Message::Unknown { body, .. } => h + body.len(),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => h,
        }
    }

    /// Appends the whole message (version 0x04, `xid`, computed length). Fails with
    /// [`Error::TooLong`] above 65535 bytes (nothing is appended then).
    pub fn emit(&self, xid: u32, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        Header {
            version: VERSION,
            msg_type: self.msg_type(),
            length: 0,
            xid,
        }
        .emit(out);
        let r = match self {
            Message::Hello(m) => m.emit(out),
            Message::Error(m) => m.emit(out),
            Message::EchoRequest(b) | Message::EchoReply(b) => {
                out.extend_from_slice(b);
                Ok(())
            }
            Message::Experimenter(m) => m.emit(out),
            Message::FeaturesReply(m) => m.emit(out),
            Message::GetConfigReply(m) | Message::SetConfig(m) => m.emit(out),
            Message::PacketIn(m) => m.emit(out),
            Message::FlowRemoved(m) => m.emit(out),
            Message::PortStatus(m) => m.emit(out),
            Message::PacketOut(m) => m.emit(out),
            Message::FlowMod(m) => m.emit(out),
            Message::GroupMod(m) => m.emit(out),
            Message::PortMod(m) => m.emit(out),
            Message::TableMod(m) => m.emit(out),
            Message::MeterMod(m) => m.emit(out),
            Message::MultipartRequest(m) => m.emit(out),
            Message::MultipartReply(m) => m.emit(out),
            Message::RoleRequest(m) | Message::RoleReply(m) => m.emit(out),
            Message::GetAsyncReply(m) | Message::SetAsync(m) => m.emit(out),
            Message::Unknown { body, .. } => {
                out.extend_from_slice(body);
                Ok(())
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => Ok(()),
        };
        let len = out.len() - start;
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
        if len > MAX_MESSAGE_LEN {
            out.truncate(start);
            return Err(Error::TooLong(len));
        }
        Packet::new_unchecked(&mut out[start..]).set_length(len as u16);
        Ok(())
    }

    /// The whole message as a new buffer.
    pub fn to_vec(&self, xid: u32) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(xid, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_type_is_raw() {
        let b = [4u8, 99, 0, 10, 0, 0, 0, 5, 1, 2];
        let (h, m) = Message::parse(&b).unwrap();
        assert_eq!(h.xid, 5);
        assert_eq!(
            m,
            Message::Unknown {
                msg_type: 99,
                body: vec![1, 2]
            }
        );
        assert_eq!(m.to_vec(5).unwrap(), b);
    }

    #[test]
    fn barrier_with_body_is_bad_len() {
        let b = [4u8, 20, 0, 9, 0, 0, 0, 5, 1];
        assert!(matches!(Message::parse(&b), Err(Error::BadLength(_))));
    }

    #[test]
    fn wrong_version_is_bad_version() {
        let b = [1u8, 20, 0, 8, 0, 0, 0, 5];
        assert_eq!(Message::parse(&b), Err(Error::BadVersion(1)));
    }
}
