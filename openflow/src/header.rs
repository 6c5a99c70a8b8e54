//! The ofp_header (spec section 7.1) and a zero-copy view over one whole message.
//!
//! ```text
//!  0        1        2                 4                                 8
//! +--------+--------+-----------------+---------------------------------+
//! |version |  type  |     length      |               xid               |
//! +--------+--------+-----------------+---------------------------------+
//! | body (length - 8 bytes)                                             |
//! ```

use crate::bytes::{u16_at, u32_at, u8_at};
use crate::error::check_len;
use crate::field::header as field;
use crate::{Error, Result};

/// OpenFlow 1.3 message types (ofp_type, section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MsgType {
    /// OFPT_HELLO: version negotiation (section 7.5.1).
    Hello = 0,
    /// OFPT_ERROR: an error about a request (section 7.4.4).
    Error = 1,
    /// OFPT_ECHO_REQUEST: liveness probe.
    EchoRequest = 2,
    /// OFPT_ECHO_REPLY: answer to an echo request.
    EchoReply = 3,
    /// OFPT_EXPERIMENTER: an experimenter message (Nicira's NXT_* here).
    Experimenter = 4,
    /// OFPT_FEATURES_REQUEST: ask for the datapath id and capabilities.
    FeaturesRequest = 5,
    /// OFPT_FEATURES_REPLY: the datapath id and capabilities.
    FeaturesReply = 6,
    /// OFPT_GET_CONFIG_REQUEST: ask for the switch configuration.
    GetConfigRequest = 7,
    /// OFPT_GET_CONFIG_REPLY: the fragment handling and miss_send_len.
    GetConfigReply = 8,
    /// OFPT_SET_CONFIG: set the fragment handling and miss_send_len.
    SetConfig = 9,
    /// OFPT_PACKET_IN: a packet sent to the controller.
    PacketIn = 10,
    /// OFPT_FLOW_REMOVED: a flow expired or was deleted.
    FlowRemoved = 11,
    /// OFPT_PORT_STATUS: a port was added, removed or changed.
    PortStatus = 12,
    /// OFPT_PACKET_OUT: send a packet through actions.
    PacketOut = 13,
    /// OFPT_FLOW_MOD: add, change or delete flows.
    FlowMod = 14,
    /// OFPT_GROUP_MOD: add, change or delete groups.
    GroupMod = 15,
    /// OFPT_PORT_MOD: change a port's configuration.
    PortMod = 16,
    /// OFPT_TABLE_MOD: change a table's configuration.
    TableMod = 17,
    /// OFPT_MULTIPART_REQUEST: ask for statistics or descriptions (OFPMP_*).
    MultipartRequest = 18,
    /// OFPT_MULTIPART_REPLY: statistics or descriptions.
    MultipartReply = 19,
    /// OFPT_BARRIER_REQUEST: finish every earlier message first.
    BarrierRequest = 20,
    /// OFPT_BARRIER_REPLY: every earlier message is done.
    BarrierReply = 21,
    /// OFPT_QUEUE_GET_CONFIG_REQUEST: ask for a port's queues.
    QueueGetConfigRequest = 22,
    /// OFPT_QUEUE_GET_CONFIG_REPLY: a port's queues.
    QueueGetConfigReply = 23,
    /// OFPT_ROLE_REQUEST: change or query the controller's role.
    RoleRequest = 24,
    /// OFPT_ROLE_REPLY: the controller's role.
    RoleReply = 25,
    /// OFPT_GET_ASYNC_REQUEST: ask which asynchronous messages are sent.
    GetAsyncRequest = 26,
    /// OFPT_GET_ASYNC_REPLY: which asynchronous messages are sent.
    GetAsyncReply = 27,
    /// OFPT_SET_ASYNC: choose which asynchronous messages are sent.
    SetAsync = 28,
    /// OFPT_METER_MOD: add, change or delete meters.
    MeterMod = 29,
}

impl MsgType {
    /// Decodes a type byte; `None` for types OpenFlow 1.3 does not define.
    pub fn from_u8(v: u8) -> Option<MsgType> {
        use MsgType::*;
        const ALL: [MsgType; 30] = [
            Hello,
            Error,
            EchoRequest,
            EchoReply,
            Experimenter,
            FeaturesRequest,
            FeaturesReply,
            GetConfigRequest,
            GetConfigReply,
            SetConfig,
            PacketIn,
            FlowRemoved,
            PortStatus,
            PacketOut,
            FlowMod,
            GroupMod,
            PortMod,
            TableMod,
            MultipartRequest,
            MultipartReply,
            BarrierRequest,
            BarrierReply,
            QueueGetConfigRequest,
            QueueGetConfigReply,
            RoleRequest,
            RoleReply,
            GetAsyncRequest,
            GetAsyncReply,
            SetAsync,
            MeterMod,
        ];
        ALL.get(v as usize).copied()
    }
}

/// The decoded ofp_header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Wire protocol version (0x04 for 1.3).
    pub version: u8,
    /// Raw message type (see [`MsgType::from_u8`]).
    pub msg_type: u8,
    /// Length of the whole message, header included.
    pub length: u16,
    /// Transaction id; replies echo the request's.
    pub xid: u32,
}

impl Header {
    /// Parses the 8 header bytes at the front of `buf` (the length field is not
    /// checked against `buf` here; [`Packet::new_checked`] does that).
    pub fn parse(buf: &[u8]) -> Result<Header> {
        check_len(buf, field::LEN)?;
        Ok(Header {
            version: u8_at(buf, field::VERSION),
            msg_type: u8_at(buf, field::TYPE),
            length: u16_at(buf, field::LENGTH),
            xid: u32_at(buf, field::XID),
        })
    }

    /// Appends the 8 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.push(self.msg_type);
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.xid.to_be_bytes());
    }
}

/// A read/write view of one whole OpenFlow message: header and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking it holds a header and the whole message its length
    /// field announces. All accessors rely on this check.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Section 7.1: "length: Length including this ofp_header". It must cover the
    /// header and may not run past the buffer. Bytes after `length` are not part of
    /// this message.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len(b, field::LEN)?;
        let len = u16_at(b, field::LENGTH) as usize;
        if len < field::LEN {
            return Err(Error::BadLength("ofp_header length below 8"));
        }
        check_len(b, len)
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Protocol version.
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::VERSION)
    }

    /// Raw message type.
    pub fn msg_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::TYPE)
    }

    /// Length field (whole message).
    pub fn length(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::LENGTH)
    }

    /// Transaction id.
    pub fn xid(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::XID)
    }

    /// The decoded header.
    pub fn header(&self) -> Header {
        Header {
            version: self.version(),
            msg_type: self.msg_type(),
            length: self.length(),
            xid: self.xid(),
        }
    }

    /// The whole message, header included, `length` bytes.
    pub fn message(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(..self.length() as usize).unwrap_or(b)
    }

    /// The body: the bytes after the header, up to `length`.
    pub fn body(&self) -> &[u8] {
        self.message().get(field::LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version byte.
    pub fn set_version(&mut self, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::VERSION) {
            *b = v;
        }
    }

    /// Sets the type byte.
    pub fn set_msg_type(&mut self, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::TYPE) {
            *b = v;
        }
    }

    /// Sets the length field.
    pub fn set_length(&mut self, v: u16) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::LENGTH) {
            b.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Sets the transaction id.
    pub fn set_xid(&mut self, v: u32) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::XID) {
            b.copy_from_slice(&v.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deconstruct_header() {
        let b = [4u8, 0, 0, 8, 0, 0, 0, 7, 0xee];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.msg_type(), 0);
        assert_eq!(p.xid(), 7);
        assert_eq!(p.message().len(), 8);
        assert!(p.body().is_empty());
    }

    #[test]
    fn length_is_checked() {
        assert!(Packet::new_checked(&[4u8, 0, 0, 7, 0, 0, 0, 0][..]).is_err());
        assert!(Packet::new_checked(&[4u8, 0, 0, 9, 0, 0, 0, 0][..]).is_err());
        assert!(Packet::new_checked(&[4u8, 0, 0][..]).is_err());
    }

    #[test]
    fn construct_header() {
        let mut p = Packet::new_unchecked([0u8; 8]);
        p.set_version(4);
        p.set_msg_type(MsgType::BarrierRequest as u8);
        p.set_length(8);
        p.set_xid(0x01020304);
        assert_eq!(p.into_inner(), [4, 20, 0, 8, 1, 2, 3, 4]);
    }
}
