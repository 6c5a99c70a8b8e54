//! One OpenFlow connection, sans I/O: bytes in, bytes out.
//!
//! ```text
//! receive(bytes) ─► framing ─► Message::parse ─► handle_* ─► replies appended to `out`
//!                                   │ bad message: OFPT_ERROR with its first 64 bytes,
//!                                   ▼ the connection stays up
//! ```
//!
//! Version negotiation follows OpenFlow 1.3.5 §6.3.1: both sides send
//! HELLO; the version is the highest both support (a HELLO without a
//! version bitmap supports every version up to its own, as Open vSwitch
//! reads it), among the bridge's allowed ones
//! ([`Bridge::versions`]: OpenFlow 1.0 and 1.3), else
//! `OFPET_HELLO_FAILED` and the connection closes. A 1.0 connection (a
//! plain `ovs-ofctl`) is served by the private `of10` module.
//! Every request is carried out before the next is read, so a
//! BARRIER_REPLY is sent at once.

use openflow::error_msg::{self, ErrorMsg, ErrorType};
use openflow::framing;
use openflow::hello::{Hello, HelloElement};
use openflow::message::Message;
use openflow::role::Role;
use openflow::switch_config::SwitchConfig;

use crate::bridge::Bridge;
use crate::consts::N_TABLES;
use crate::error::OfError;
use crate::{flow_mod, group_mod, multipart, packet_out};

/// Why a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// Version negotiation failed (HELLO_FAILED was sent).
    Incompatible(String),
    /// The byte stream cannot be framed (a length below 8).
    Framing(String),
}

/// The state of one connection.
pub struct Connection {
    negotiated: bool,
    /// The negotiated version (0 before).
    version: u8,
    /// What a 1.0 connection set with Nicira messages.
    pub(crate) of10: crate::of10::State,
    buf: Vec<u8>,
    role: u32,
    generation_id: u64,
    next_xid: u32,
}

impl Default for Connection {
    fn default() -> Self {
        Connection::new()
    }
}

impl Connection {
    /// A new connection; send [`Connection::hello`] first.
    pub fn new() -> Connection {
        Connection {
            negotiated: false,
            version: 0,
            of10: Default::default(),
            buf: Vec::new(),
            role: openflow::role::roles::EQUAL,
            generation_id: 0,
            next_xid: 1,
        }
    }

    /// The HELLO to send when the connection opens.
    pub fn hello(&mut self) -> Vec<u8> {
        self.message(&Message::Hello(Hello::ours()))
    }

    /// The HELLO to send when the connection opens on `br`: the highest
    /// version the bridge allows in the header, all of them in the bitmap.
    pub fn hello_for(&mut self, br: &Bridge) -> Vec<u8> {
        let versions: Vec<u8> = (0..32u8).filter(|v| br.versions() & 1 << v != 0).collect();
        let mut h = self.message(&Message::Hello(Hello::with_versions(&versions)));
        if let Some(&top) = versions.last() {
            h[0] = top;
        }
        h
    }

    /// The negotiated version (0 before negotiation).
    pub fn version(&self) -> u8 {
        self.version
    }

    fn message(&mut self, m: &Message) -> Vec<u8> {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1);
        m.to_vec(xid).unwrap_or_default()
    }

    /// An ECHO_REQUEST (liveness probe of a controller connection).
    pub fn echo_request(&mut self) -> Vec<u8> {
        self.message(&Message::EchoRequest(Vec::new()))
    }

    /// Whether HELLOs were exchanged.
    pub fn is_negotiated(&self) -> bool {
        self.negotiated
    }

    /// Takes received bytes; appends whatever must be sent to `out`.
    pub fn receive(&mut self, data: &[u8], br: &Bridge, out: &mut Vec<u8>) -> Result<(), Close> {
        self.buf.extend_from_slice(data);
        let mut used = 0;
        loop {
            let rest = &self.buf[used..];
            let n = match framing::message_len(rest) {
                Ok(Some(n)) if n <= rest.len() => n,
                Ok(_) => break,
                Err(e) => return Err(Close::Framing(e.to_string())),
            };
            let msg = rest[..n].to_vec();
            used += n;
            self.handle(&msg, br, out)?;
        }
        self.buf.drain(..used);
        Ok(())
    }

    fn handle(&mut self, raw: &[u8], br: &Bridge, out: &mut Vec<u8>) -> Result<(), Close> {
        if self.version == crate::of10::VERSION && raw[1] != 0 {
            crate::of10::handle(self, raw, br, out);
            return Ok(());
        }
        let xid = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let parsed = Message::parse(raw);
        let reply = |m: Message, out: &mut Vec<u8>| {
            let _ = m.emit(xid, out);
        };
        let msg = match parsed {
            Ok((_, m)) => m,
            Err(openflow::Error::BadVersion(v)) => {
                let e = OfError::request(
                    error_msg::bad_request::BAD_VERSION,
                    format!("version {v:#x}"),
                );
                reply(error(&e, raw), out);
                return Ok(());
            }
            Err(e) => {
                let e = OfError::request(error_msg::bad_request::BAD_LEN, e.to_string());
                reply(error(&e, raw), out);
                return Ok(());
            }
        };
        if let Message::Hello(h) = &msg {
            return self.negotiate(raw[0], h, raw, br, out);
        }
        match self.request(msg, br) {
            Ok(replies) => {
                for m in replies {
                    reply(m, out);
                }
            }
            Err(e) => {
                eprintln!("ofproto {}: request refused: {e}", br.name);
                reply(error(&e, raw), out);
            }
        }
        Ok(())
    }

    fn negotiate(
        &mut self,
        version: u8,
        h: &Hello,
        raw: &[u8],
        br: &Bridge,
        out: &mut Vec<u8>,
    ) -> Result<(), Close> {
        let bitmap = h.elements.iter().find_map(|e| match e {
            HelloElement::VersionBitmap(b) => Some(b.first().copied().unwrap_or(0)),
            _ => None,
        });
        // §6.3.1; without a bitmap the peer supports every version up to
        // its header's (Open vSwitch's `ofputil_decode_hello`).
        let theirs = bitmap.unwrap_or_else(|| {
            if version >= 31 {
                u32::MAX
            } else {
                (1u32 << (version + 1)) - 1
            }
        });
        let common = theirs & br.versions();
        if common == 0 {
            let e = OfError::new(
                ErrorType::HelloFailed,
                error_msg::hello_failed::INCOMPATIBLE,
                format!(
                    "no common OpenFlow version (this bridge allows {:#x}, the peer {theirs:#x}; \
                     see the bridge's protocols column)",
                    br.versions()
                ),
            );
            let _ = error(&e, raw).emit(0, out);
            return Err(Close::Incompatible(e.why));
        }
        self.version = 31 - common.leading_zeros() as u8;
        self.negotiated = true;
        Ok(())
    }

    fn request(&mut self, msg: Message, br: &Bridge) -> Result<Vec<Message>, OfError> {
        use Message as M;
        Ok(match msg {
            M::EchoRequest(p) => vec![M::EchoReply(p)],
            M::EchoReply(_) | M::BarrierReply | M::Error(_) => vec![],
            M::FeaturesRequest => vec![M::FeaturesReply(openflow::features::FeaturesReply {
                datapath_id: br.datapath_id(),
                n_buffers: 0,
                n_tables: N_TABLES,
                auxiliary_id: 0,
                // FLOW_STATS | TABLE_STATS | PORT_STATS | GROUP_STATS
                capabilities: 1 | 2 | 4 | 8,
                reserved: 0,
            })],
            M::GetConfigRequest => vec![M::GetConfigReply(br.config())],
            M::SetConfig(c) => {
                set_config(br, c)?;
                vec![]
            }
            M::BarrierRequest => vec![M::BarrierReply],
            M::FlowMod(fm) => {
                flow_mod::handle(br, &fm)?;
                vec![]
            }
            M::GroupMod(gm) => {
                group_mod::handle(br, &gm)?;
                vec![]
            }
            M::MultipartRequest(r) => multipart::handle(br, &r)?
                .into_iter()
                .map(M::MultipartReply)
                .collect(),
            M::RoleRequest(r) => vec![M::RoleReply(self.role(r)?)],
            M::GetAsyncRequest => vec![M::GetAsyncReply(Default::default())],
            M::SetAsync(_) | M::TableMod(_) => vec![],
            M::PortMod(_) => {
                return Err(OfError::new(
                    ErrorType::PortModFailed,
                    error_msg::port_mod_failed::EPERM,
                    "port configuration through OpenFlow is not supported",
                ))
            }
            M::PacketOut(po) => {
                packet_out::handle(br, po)?;
                vec![]
            }
            M::Experimenter(_) => {
                return Err(OfError::request(
                    error_msg::bad_request::BAD_EXPERIMENTER,
                    "no experimenter messages are supported",
                ))
            }
            other => {
                return Err(OfError::request(
                    error_msg::bad_request::BAD_TYPE,
                    format!("unexpected message type {}", other.msg_type()),
                ))
            }
        })
    }

    fn role(&mut self, r: Role) -> Result<Role, OfError> {
        use openflow::role::roles;
        match r.role {
            roles::NOCHANGE => {}
            roles::EQUAL | roles::MASTER | roles::SLAVE => {
                if r.role != roles::EQUAL {
                    // §6.3.6: a stale generation id is refused.
                    if self.generation_id != 0
                        && (r.generation_id.wrapping_sub(self.generation_id) as i64) < 0
                    {
                        return Err(OfError::new(
                            ErrorType::RoleRequestFailed,
                            error_msg::role_request_failed::STALE,
                            "stale generation id",
                        ));
                    }
                    self.generation_id = r.generation_id;
                }
                self.role = r.role;
            }
            _ => {
                return Err(OfError::new(
                    ErrorType::RoleRequestFailed,
                    error_msg::role_request_failed::BAD_ROLE,
                    format!("role {}", r.role),
                ))
            }
        }
        Ok(Role {
            role: self.role,
            generation_id: self.generation_id,
        })
    }
}

/// An OFPT_ERROR carrying the first bytes of the refused request.
fn error(e: &OfError, raw: &[u8]) -> Message {
    Message::Error(ErrorMsg::new(e.ty, e.code, raw))
}

pub(crate) fn set_config(br: &Bridge, c: SwitchConfig) -> Result<(), OfError> {
    br.set_config(c).map_err(|why| {
        OfError::new(
            ErrorType::SwitchConfigFailed,
            error_msg::switch_config_failed::BAD_FLAGS,
            why,
        )
    })
}
