//! One OpenFlow connection, sans I/O: bytes in, bytes out.
//!
//! ```text
//! receive(bytes) ─► framing ─► Message::parse ─► handle_* ─► replies appended to `out`
//!                                   │ bad message: OFPT_ERROR with its first 64 bytes,
//!                                   ▼ the connection stays up
//! ```
//!
//! Version negotiation follows OpenFlow 1.3.5 §6.3.1: both sides send
//! HELLO; the version is the highest both support, which must be 1.3
//! (0x04) here, else `OFPET_HELLO_FAILED` and the connection closes.
//! Every request is carried out before the next is read, so a
//! BARRIER_REPLY is sent at once.

use openflow::error_msg::{self, ErrorMsg, ErrorType};
use openflow::flow_mod::{flags as ff, FlowMod, FlowModCommand};
use openflow::framing;
use openflow::group::{Bucket as OfBucket, GroupCommand, GroupMod, GroupType as OfGroupType};
use openflow::hello::{Hello, HelloElement};
use openflow::message::Message;
use openflow::multipart::{
    AggregateStats, Desc, FlowStats, FlowStatsRequest, GroupDesc, GroupFeatures,
    GroupStats as OfGroupStats, MeterFeatures, MultipartReply, MultipartReplyBody,
    MultipartRequest, MultipartRequestBody, TableStats as OfTableStats, MORE,
};
use openflow::port::{Port as OfPort, PortStats as OfPortStats};
use openflow::role::Role;
use openflow::switch_config::SwitchConfig;
use openflow::{Match as OfMatch, VERSION};
use switch::group::{Bucket, GroupSpec, GroupType};
use switch::rule::{FlowFilter, RuleSpec};
use switch::table::AddOptions;

use crate::actions;
use crate::bridge::{Bridge, PortInfo};
use crate::error::OfError;
use crate::flow_match;
use crate::port_map::{PortMap, OFPP_MAX};

/// `OFPTT_ALL`.
const OFPTT_ALL: u8 = 0xff;
/// `OFPP_ANY`.
const OFPP_ANY: u32 = 0xffff_ffff;
/// `OFPG_ANY` / `OFPG_ALL`.
const OFPG_ANY: u32 = 0xffff_ffff;
const OFPG_ALL: u32 = 0xffff_fffc;
/// `OFP_NO_BUFFER`.
const NO_BUFFER: u32 = 0xffff_ffff;
/// Tables the switch offers (0..=253, like OVS).
const N_TABLES: u8 = switch::action::MAX_TABLE + 1;

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
            return self.negotiate(raw[0], h, raw, out);
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
        out: &mut Vec<u8>,
    ) -> Result<(), Close> {
        let bitmap = h.elements.iter().find_map(|e| match e {
            HelloElement::VersionBitmap(b) => Some(b),
            _ => None,
        });
        let ok = match bitmap {
            Some(b) => b.first().is_some_and(|w| w & (1 << VERSION) != 0),
            None => version >= VERSION,
        };
        if !ok {
            let e = OfError::new(
                ErrorType::HelloFailed,
                error_msg::hello_failed::INCOMPATIBLE,
                "this switch speaks OpenFlow 1.3 only (ovs-ofctl -O OpenFlow13)",
            );
            let _ = error(&e, raw).emit(0, out);
            return Err(Close::Incompatible(e.why));
        }
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
                flow_mod(br, &fm)?;
                vec![]
            }
            M::GroupMod(gm) => {
                group_mod(br, &gm)?;
                vec![]
            }
            M::MultipartRequest(r) => multipart(br, &r)?
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
                packet_out(br, po)?;
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

fn set_config(br: &Bridge, c: SwitchConfig) -> Result<(), OfError> {
    br.set_config(c).map_err(|why| {
        OfError::new(
            ErrorType::SwitchConfigFailed,
            error_msg::switch_config_failed::BAD_FLAGS,
            why,
        )
    })
}

/// OpenFlow 1.3 §7.3.7: a frame from the controller, with actions (an
/// output to `OFPP_TABLE` runs it through the flow tables).
fn packet_out(br: &Bridge, po: openflow::packet_out::PacketOut) -> Result<(), OfError> {
    use openflow::action::port_no;
    if po.buffer_id != NO_BUFFER {
        return Err(OfError::request(
            error_msg::bad_request::BUFFER_UNKNOWN,
            "this switch buffers no packets",
        ));
    }
    let map = br.port_map();
    let in_port = match po.in_port {
        port_no::CONTROLLER | port_no::ANY => None,
        p => Some(map.to_switch(p).ok_or_else(|| {
            OfError::request(error_msg::bad_request::BAD_PORT, format!("in_port {p:#x}"))
        })?),
    };
    let table = matches!(
        po.actions.as_slice(),
        [openflow::Action::Output {
            port: port_no::TABLE,
            ..
        }]
    );
    let actions = if table {
        None
    } else {
        let acts = actions::list_to_switch(&po.actions, &map)?;
        if acts.iter().any(|a| {
            matches!(
                a,
                switch::action::Action::Group(_) | switch::action::Action::Resubmit(_)
            )
        }) {
            return Err(OfError::action(
                error_msg::bad_action::BAD_TYPE,
                "group and resubmit are not supported in packet_out",
            ));
        }
        Some(acts)
    };
    if po.data.is_empty() {
        return Err(OfError::request(
            error_msg::bad_request::BAD_PACKET,
            "packet_out without a frame",
        ));
    }
    br.packet_out(crate::bridge::PacketOut {
        in_port,
        actions,
        data: po.data,
    })
    .map_err(|why| OfError::request(error_msg::bad_request::EPERM, why))
}

fn table_filter(t: u8) -> Result<Option<u8>, OfError> {
    match t {
        OFPTT_ALL => Ok(None),
        t if t < N_TABLES => Ok(Some(t)),
        t => Err(OfError::new(
            ErrorType::FlowModFailed,
            error_msg::flow_mod_failed::BAD_TABLE_ID,
            format!("table {t}"),
        )),
    }
}

fn out_port(p: u32, map: &PortMap) -> Option<u16> {
    match p {
        OFPP_ANY => None,
        // A port that cannot exist selects no rule with an output to it;
        // u16::MAX is never a switch port.
        p => Some(map.to_switch(p).unwrap_or(u16::MAX)),
    }
}

fn filter(
    map: &PortMap,
    table: u8,
    m: &OfMatch,
    strict: bool,
    priority: u16,
    cookie: (u64, u64),
    out: (u32, u32),
) -> Result<FlowFilter, OfError> {
    Ok(FlowFilter {
        table: table_filter(table)?,
        matcher: flow_match::to_switch(&m.fields, map)?,
        strict,
        priority: strict.then_some(priority),
        cookie: cookie.0,
        cookie_mask: cookie.1,
        out_port: out_port(out.0, map),
        out_group: (out.1 != OFPG_ANY).then_some(out.1),
    })
}

fn flow_mod(br: &Bridge, fm: &FlowMod) -> Result<(), OfError> {
    let map = br.port_map();
    let now = br.now_ms();
    let strict = matches!(
        fm.command,
        FlowModCommand::ModifyStrict | FlowModCommand::DeleteStrict
    );
    match fm.command {
        FlowModCommand::Add => {
            if fm.table_id >= N_TABLES {
                table_filter(fm.table_id)?;
            }
            if fm.buffer_id != NO_BUFFER {
                return Err(OfError::request(
                    error_msg::bad_request::BUFFER_UNKNOWN,
                    "this switch buffers no packets",
                ));
            }
            let acts = actions::to_switch(&fm.instructions, &map)?;
            let mut spec = RuleSpec::new(
                flow_match::to_switch(&fm.matching.fields, &map)?,
                acts.actions,
            );
            spec.instructions = acts.instructions;
            spec.table = fm.table_id;
            spec.cookie = fm.cookie;
            spec.priority = fm.priority;
            spec.idle_timeout = fm.idle_timeout;
            spec.hard_timeout = fm.hard_timeout;
            spec.send_flow_rem = fm.flags & ff::SEND_FLOW_REM != 0;
            let opts = AddOptions {
                check_overlap: fm.flags & ff::CHECK_OVERLAP != 0,
                keep_counters: fm.flags & ff::RESET_COUNTS == 0,
            };
            br.sw.table.add_with(spec, now, opts)?;
        }
        FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
            // §6.4: modify ignores out_port/out_group.
            let f = filter(
                &map,
                fm.table_id,
                &fm.matching,
                strict,
                fm.priority,
                (fm.cookie, fm.cookie_mask),
                (OFPP_ANY, OFPG_ANY),
            )?;
            let acts = actions::to_switch(&fm.instructions, &map)?;
            br.sw.table.modify(
                &f,
                acts.actions,
                acts.instructions,
                fm.flags & ff::RESET_COUNTS != 0,
            )?;
        }
        FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
            let f = filter(
                &map,
                fm.table_id,
                &fm.matching,
                strict,
                fm.priority,
                (fm.cookie, fm.cookie_mask),
                (fm.out_port, fm.out_group),
            )?;
            let gone = br.sw.table.delete(&f, now);
            br.flow_removed(&gone);
        }
        FlowModCommand::Other(c) => {
            return Err(OfError::new(
                ErrorType::FlowModFailed,
                error_msg::flow_mod_failed::BAD_COMMAND,
                format!("flow_mod command {c}"),
            ))
        }
    }
    Ok(())
}

fn group_mod(br: &Bridge, gm: &GroupMod) -> Result<(), OfError> {
    let map = br.port_map();
    let bad = |code, why: String| OfError::new(ErrorType::GroupModFailed, code, why);
    let spec = || -> Result<GroupSpec, OfError> {
        let kind = match gm.group_type {
            OfGroupType::All => GroupType::All,
            OfGroupType::Select => GroupType::Select,
            OfGroupType::Indirect => GroupType::Indirect,
            OfGroupType::FastFailover => GroupType::FastFailover,
            OfGroupType::Other(t) => {
                return Err(bad(
                    error_msg::group_mod_failed::BAD_TYPE,
                    format!("group type {t}"),
                ))
            }
        };
        let buckets = gm
            .buckets
            .iter()
            .map(|b| {
                if b.watch_group != OFPG_ANY {
                    return Err(bad(
                        error_msg::group_mod_failed::WATCH_UNSUPPORTED,
                        "watch_group is not supported".into(),
                    ));
                }
                let watch_port = match b.watch_port {
                    OFPP_ANY => None,
                    p => Some(map.to_switch(p).ok_or_else(|| {
                        bad(
                            error_msg::group_mod_failed::BAD_WATCH,
                            format!("watch_port {p}"),
                        )
                    })?),
                };
                Ok(Bucket {
                    weight: b.weight,
                    watch_port,
                    actions: actions::list_to_switch(&b.actions, &map)?,
                })
            })
            .collect::<Result<Vec<_>, OfError>>()?;
        Ok(GroupSpec {
            id: gm.group_id,
            kind,
            buckets,
        })
    };
    match gm.command {
        GroupCommand::Add => br.sw.group_add(spec()?)?,
        GroupCommand::Modify => br.sw.group_mod(spec()?)?,
        GroupCommand::Delete => {
            let id = (gm.group_id != OFPG_ALL).then_some(gm.group_id);
            let gone = br.sw.group_del(id);
            br.flow_removed(&gone);
        }
        GroupCommand::Other(c) => {
            return Err(bad(
                error_msg::group_mod_failed::BAD_COMMAND,
                format!("group_mod command {c}"),
            ))
        }
    }
    Ok(())
}

/// Splits entries into replies of at most 64 KiB each (all but the last
/// flagged OFPMPF_REPLY_MORE).
fn chunked<T: Clone>(
    items: Vec<T>,
    wrap: impl Fn(Vec<T>) -> MultipartReplyBody,
) -> Vec<MultipartReply> {
    const BUDGET: usize = openflow::MAX_MESSAGE_LEN - 1024;
    let size = |v: Vec<T>| {
        Message::MultipartReply(MultipartReply {
            flags: 0,
            body: wrap(v),
        })
        .buffer_len()
    };
    let empty = size(Vec::new());
    let mut out = Vec::new();
    let mut cur: Vec<T> = Vec::new();
    let mut cur_len = empty;
    for it in items {
        let n = size(vec![it.clone()]) - empty;
        if !cur.is_empty() && cur_len + n > BUDGET {
            out.push(std::mem::take(&mut cur));
            cur_len = empty;
        }
        cur_len += n;
        cur.push(it);
    }
    out.push(cur);
    let last = out.len() - 1;
    out.into_iter()
        .enumerate()
        .map(|(i, v)| MultipartReply {
            flags: if i < last { MORE } else { 0 },
            body: wrap(v),
        })
        .collect()
}

fn flow_stats(br: &Bridge, r: &FlowStatsRequest) -> Result<Vec<FlowStats>, OfError> {
    let map = br.port_map();
    let f = filter(
        &map,
        r.table_id,
        &r.matching,
        false,
        0,
        (r.cookie, r.cookie_mask),
        (r.out_port, r.out_group),
    )
    .map_err(|mut e| {
        if e.ty == ErrorType::FlowModFailed {
            e = OfError::request(error_msg::bad_request::BAD_TABLE_ID, e.why);
        }
        e
    })?;
    let now = br.now_ms();
    let snap = br.sw.table.snapshot();
    let mut out = Vec::new();
    for rule in snap
        .rules
        .iter()
        .filter(|r| f.selects(&r.spec) && r.spec.cookie != crate::FAIL_OPEN_COOKIE)
    {
        let s = &rule.spec;
        let (packets, bytes, _) = rule.counters();
        let age = now.saturating_sub(rule.created_ms);
        out.push(FlowStats {
            table_id: s.table,
            duration_sec: (age / 1000) as u32,
            duration_nsec: ((age % 1000) * 1_000_000) as u32,
            priority: s.priority,
            idle_timeout: s.idle_timeout,
            hard_timeout: s.hard_timeout,
            flags: if s.send_flow_rem {
                ff::SEND_FLOW_REM
            } else {
                0
            },
            cookie: s.cookie,
            packet_count: packets,
            byte_count: bytes,
            matching: OfMatch {
                fields: flow_match::from_switch(&s.matcher, &map),
            },
            instructions: actions::from_switch(&s.actions, &s.instructions, &map),
        });
    }
    Ok(out)
}

/// The OpenFlow description of a port.
pub(crate) fn of_port(p: &PortInfo, map: &PortMap) -> OfPort {
    // OFPPS_LINK_DOWN = 1 << 0, OFPPS_LIVE = 1 << 2.
    let state = if p.link_up { 1 << 2 } else { 1 };
    OfPort {
        port_no: map.to_openflow(p.no),
        hw_addr: p.mac,
        name: p.name.clone(),
        config: 0,
        state,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: p.speed_mbps.saturating_mul(1000),
        max_speed: p.speed_mbps.saturating_mul(1000),
    }
}

fn port_stats(p: &PortInfo, map: &PortMap) -> OfPortStats {
    OfPortStats {
        port_no: map.to_openflow(p.no),
        rx_packets: p.rx_packets,
        tx_packets: p.tx_packets,
        rx_bytes: p.rx_bytes,
        tx_bytes: p.tx_bytes,
        rx_dropped: p.rx_dropped,
        tx_dropped: p.tx_dropped,
        rx_errors: p.rx_errors,
        tx_errors: p.tx_errors,
        rx_frame_err: 0,
        rx_over_err: 0,
        rx_crc_err: 0,
        collisions: 0,
        duration_sec: p.age_secs,
        duration_nsec: 0,
    }
}

fn multipart(br: &Bridge, r: &MultipartRequest) -> Result<Vec<MultipartReply>, OfError> {
    use MultipartReplyBody as R;
    use MultipartRequestBody as Q;
    let map = br.port_map();
    let one = |body| vec![MultipartReply { flags: 0, body }];
    Ok(match &r.body {
        Q::Desc => one(R::Desc(Desc {
            mfr_desc: "vswitch".into(),
            hw_desc: "DPDK user-mode data plane".into(),
            sw_desc: env!("CARGO_PKG_VERSION").into(),
            serial_num: "None".into(),
            dp_desc: br.name.clone(),
        })),
        Q::Flow(f) => chunked(flow_stats(br, f)?, R::Flow),
        Q::Aggregate(f) => {
            let st = flow_stats(br, f)?;
            one(R::Aggregate(AggregateStats {
                packet_count: st.iter().map(|s| s.packet_count).sum(),
                byte_count: st.iter().map(|s| s.byte_count).sum(),
                flow_count: st.len() as u32,
            }))
        }
        Q::Table => {
            let stats = br.sw.table.table_stats();
            let lookups = br.sw.totals().rx_packets;
            let tables = (0..N_TABLES)
                .map(|t| {
                    let s = stats.iter().find(|s| s.table_id == t);
                    OfTableStats {
                        table_id: t,
                        active_count: s.map_or(0, |s| s.active_count as u32),
                        lookup_count: if t == 0 { lookups } else { 0 },
                        matched_count: s.map_or(0, |s| s.matched_count),
                    }
                })
                .collect();
            chunked(tables, R::Table)
        }
        Q::PortStats { port_no } => {
            let ports = br.ports();
            let want = match *port_no {
                OFPP_ANY => None,
                p if p <= OFPP_MAX || p == crate::port_map::OFPP_LOCAL => Some(map.to_switch(p)),
                p => {
                    return Err(OfError::request(
                        error_msg::bad_request::BAD_PORT,
                        format!("port {p:#x}"),
                    ))
                }
            };
            let st = ports
                .iter()
                .filter(|p| want.is_none_or(|w| w == Some(p.no)))
                .map(|p| port_stats(p, &map))
                .collect();
            chunked(st, R::PortStats)
        }
        Q::PortDesc => chunked(
            br.ports().iter().map(|p| of_port(p, &map)).collect(),
            R::PortDesc,
        ),
        Q::Group { group_id } => {
            let st = br
                .sw
                .group_stats()
                .into_iter()
                .filter(|g| *group_id == OFPG_ALL || g.id == *group_id)
                .map(|g| OfGroupStats {
                    group_id: g.id,
                    ref_count: g.ref_count as u32,
                    packet_count: g.packets,
                    byte_count: g.bytes,
                    duration_sec: (g.duration_ms / 1000) as u32,
                    duration_nsec: ((g.duration_ms % 1000) * 1_000_000) as u32,
                    bucket_stats: g.buckets,
                })
                .collect();
            chunked(st, R::Group)
        }
        Q::GroupDesc => {
            let d = br
                .sw
                .group_desc()
                .into_iter()
                .map(|g| GroupDesc {
                    group_type: match g.kind {
                        GroupType::All => OfGroupType::All,
                        GroupType::Select => OfGroupType::Select,
                        GroupType::Indirect => OfGroupType::Indirect,
                        GroupType::FastFailover => OfGroupType::FastFailover,
                    },
                    group_id: g.id,
                    buckets: g
                        .buckets
                        .iter()
                        .map(|b| OfBucket {
                            weight: b.weight,
                            watch_port: b.watch_port.map_or(OFPP_ANY, |p| map.to_openflow(p)),
                            watch_group: OFPG_ANY,
                            actions: actions::list_from_switch(&b.actions, &map),
                        })
                        .collect(),
                })
                .collect();
            chunked(d, R::GroupDesc)
        }
        Q::GroupFeatures => one(R::GroupFeatures(GroupFeatures {
            // ALL | SELECT | INDIRECT | FF; capabilities SELECT_WEIGHT | SELECT_LIVENESS.
            types: 0b1111,
            capabilities: 1 | 2,
            max_groups: [u32::MAX; 4],
            // OUTPUT, PUSH/POP_VLAN, GROUP, DEC_NW_TTL, SET_FIELD.
            actions: [(1 << 0) | (1 << 17) | (1 << 18) | (1 << 22) | (1 << 24) | (1 << 25); 4],
        })),
        Q::MeterFeatures => one(R::MeterFeatures(MeterFeatures::default())),
        Q::TableFeatures(t) if t.is_empty() => {
            let tables = (0..N_TABLES)
                .map(|id| crate::table_features::table(id, N_TABLES))
                .collect();
            chunked(tables, R::TableFeatures)
        }
        Q::TableFeatures(_) => {
            return Err(OfError::new(
                ErrorType::TableFeaturesFailed,
                5, // OFPTFFC_EPERM
                "table features cannot be changed",
            ));
        }
        Q::Other { mp_type, .. } => {
            return Err(OfError::request(
                error_msg::bad_request::BAD_MULTIPART,
                format!("multipart type {mp_type}"),
            ))
        }
    })
}
