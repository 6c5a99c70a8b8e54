//! OFPT_STATS_REQUEST / OFPT_STATS_REPLY of OpenFlow 1.0 (section 5.3.5)
//! and the Nicira statistics `ovs-ofctl` asks for in 1.0: NXST_FLOW
//! (`dump-flows`, flows with NXM matches, idle and hard ages) and
//! NXST_AGGREGATE (`dump-aggregate`).
//!
//! ```text
//! header(8) | type(2) | flags(2) | body                       (OFPSF_REPLY_MORE = 1)
//! OFPST_VENDOR: header(8) | 0xffff | flags | vendor(4) | subtype(4) | pad(4) | body
//! nx_flow_stats_request: out_port(2) match_len(2) table_id(1) pad(3) | nx_match, pad to 8
//! nx_flow_stats: length(2) table_id(1) pad(1) duration_sec(4) duration_nsec(4) priority(2)
//!                idle_timeout(2) hard_timeout(2) match_len(2) idle_age(2) hard_age(2)
//!                cookie(8) packet_count(8) byte_count(8) | nx_match, pad to 8 | actions
//! ```

use super::action::Action10;
use super::field::{
    aggregate as fa, flow_stats as ffs, flow_stats_request as ffr, nx_flow_stats as fnf,
    nx_flow_stats_request as fnr, port_stats as fps, stats as field, table_stats as ft,
};
use super::matching::Match10;
use super::nxm;
use super::port::PortStats10;
use crate::bytes::{put_str, round8, str_at, u16_at, u32_at, u64_at, u8_at, zeros};
use crate::error::check_len;
use crate::multipart::Desc;
use crate::nicira::NX_VENDOR_ID;
use crate::oxm::OxmField;
use crate::{Error, Result};

/// OFPST_* statistics types.
pub mod stats_type {
    /// OFPST_DESC: the switch's description strings (`ofp_desc_stats`).
    pub const DESC: u16 = 0;
    /// OFPST_FLOW: individual flow statistics.
    pub const FLOW: u16 = 1;
    /// OFPST_AGGREGATE: totals over a set of flows.
    pub const AGGREGATE: u16 = 2;
    /// OFPST_TABLE: one entry per flow table.
    pub const TABLE: u16 = 3;
    /// OFPST_PORT: per-port counters.
    pub const PORT: u16 = 4;
    /// OFPST_QUEUE: per-queue counters.
    pub const QUEUE: u16 = 5;
    /// OFPST_VENDOR: a vendor extension (Nicira's NXST_* here).
    pub const VENDOR: u16 = 0xffff;
}

/// NXST_* subtypes.
pub mod nx_stats {
    /// NXST_FLOW: flow statistics with NXM matches.
    pub const FLOW: u32 = 0;
    /// NXST_AGGREGATE: totals over the flows an NXM match selects.
    pub const AGGREGATE: u32 = 1;
}

/// OFPSF_REPLY_MORE.
pub const REPLY_MORE: u16 = 1;

/// OFPST_FLOW / OFPST_AGGREGATE request of OpenFlow 1.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest10 {
    /// Flows to report.
    pub matching: Match10,
    /// Table (0xff: all).
    pub table_id: u8,
    /// Only flows that output to this port (0xffff: any).
    pub out_port: u16,
}

/// NXST_FLOW / NXST_AGGREGATE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NxFlowStatsRequest {
    /// Only flows that output to this port (0xffff: any).
    pub out_port: u16,
    /// Table (0xff: all).
    pub table_id: u8,
    /// The NXM match.
    pub matching: Vec<OxmField>,
}

/// A statistics request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsRequest10 {
    /// OFPST_DESC.
    Desc,
    /// OFPST_FLOW.
    Flow(FlowStatsRequest10),
    /// OFPST_AGGREGATE.
    Aggregate(FlowStatsRequest10),
    /// OFPST_TABLE.
    Table,
    /// OFPST_PORT for one port (0xffff: all).
    Port(u16),
    /// NXST_FLOW.
    NxFlow(NxFlowStatsRequest),
    /// NXST_AGGREGATE.
    NxAggregate(NxFlowStatsRequest),
    /// Anything else: the type, the vendor's subtype (0) and the body.
    Other {
        /// OFPST_* type.
        stats_type: u16,
        /// The body after type and flags.
        body: Vec<u8>,
    },
}

impl StatsRequest10 {
    /// Parses a whole OFPT_STATS_REQUEST.
    pub fn parse(msg: &[u8]) -> Result<StatsRequest10> {
        check_len(msg, field::BODY)?;
        let ty = u16_at(msg, field::TYPE);
        let b = &msg[field::BODY..];
        let flow = |b: &[u8]| -> Result<FlowStatsRequest10> {
            if b.len() != ffr::LEN {
                return Err(Error::BadLength("flow stats request is 44 bytes"));
            }
            Ok(FlowStatsRequest10 {
                matching: Match10::parse(&b[ffr::MATCH])?,
                table_id: u8_at(b, ffr::TABLE_ID),
                out_port: u16_at(b, ffr::OUT_PORT),
            })
        };
        Ok(match ty {
            stats_type::DESC | stats_type::TABLE if !b.is_empty() => {
                return Err(Error::BadLength("stats request body must be empty"))
            }
            stats_type::DESC => StatsRequest10::Desc,
            stats_type::TABLE => StatsRequest10::Table,
            stats_type::FLOW => StatsRequest10::Flow(flow(b)?),
            stats_type::AGGREGATE => StatsRequest10::Aggregate(flow(b)?),
            stats_type::PORT => {
                if b.len() != fps::REQUEST_LEN {
                    return Err(Error::BadLength("port stats request is 8 bytes"));
                }
                StatsRequest10::Port(u16_at(b, fps::PORT_NO))
            }
            stats_type::VENDOR
                if msg.len() >= field::NX_BODY && u32_at(msg, field::VENDOR) == NX_VENDOR_ID =>
            {
                let st = u32_at(msg, field::SUBTYPE);
                let b = &msg[field::NX_BODY..];
                if !matches!(st, nx_stats::FLOW | nx_stats::AGGREGATE) {
                    return Ok(StatsRequest10::Other {
                        stats_type: ty,
                        body: msg[field::BODY..].to_vec(),
                    });
                }
                check_len(b, fnr::MATCH)?;
                let match_len = u16_at(b, fnr::MATCH_LEN) as usize;
                if b.len() != fnr::MATCH + round8(match_len) {
                    return Err(Error::BadLength("nx_flow_stats_request length"));
                }
                let r = NxFlowStatsRequest {
                    out_port: u16_at(b, fnr::OUT_PORT),
                    table_id: u8_at(b, fnr::TABLE_ID),
                    matching: nxm::parse(&b[fnr::MATCH..], match_len)?,
                };
                if st == nx_stats::FLOW {
                    StatsRequest10::NxFlow(r)
                } else {
                    StatsRequest10::NxAggregate(r)
                }
            }
            _ => StatsRequest10::Other {
                stats_type: ty,
                body: b.to_vec(),
            },
        })
    }

    /// The OFPST_* type.
    pub fn stats_type(&self) -> u16 {
        match self {
            StatsRequest10::Desc => stats_type::DESC,
            StatsRequest10::Flow(_) => stats_type::FLOW,
            StatsRequest10::Aggregate(_) => stats_type::AGGREGATE,
            StatsRequest10::Table => stats_type::TABLE,
            StatsRequest10::Port(_) => stats_type::PORT,
            StatsRequest10::NxFlow(_) | StatsRequest10::NxAggregate(_) => stats_type::VENDOR,
            StatsRequest10::Other { stats_type, .. } => *stats_type,
        }
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::BODY
            + match self {
                StatsRequest10::Desc | StatsRequest10::Table => 0,
                StatsRequest10::Flow(_) | StatsRequest10::Aggregate(_) => ffr::LEN,
                StatsRequest10::Port(_) => fps::REQUEST_LEN,
                StatsRequest10::NxFlow(r) | StatsRequest10::NxAggregate(r) => {
                    field::NX_BODY - field::BODY
                        + fnr::MATCH
                        + round8(nxm::unpadded_len(&r.matching))
                }
                StatsRequest10::Other { body, .. } => body.len(),
            }
    }

    /// Appends the body (type, flags 0, request).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.stats_type().to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        match self {
            StatsRequest10::Desc | StatsRequest10::Table => {}
            StatsRequest10::Flow(r) | StatsRequest10::Aggregate(r) => {
                r.matching.emit(out);
                out.extend_from_slice(&[r.table_id, 0]);
                out.extend_from_slice(&r.out_port.to_be_bytes());
            }
            StatsRequest10::Port(p) => {
                out.extend_from_slice(&p.to_be_bytes());
                zeros(out, 6);
            }
            StatsRequest10::NxFlow(r) | StatsRequest10::NxAggregate(r) => {
                let st = if matches!(self, StatsRequest10::NxFlow(_)) {
                    nx_stats::FLOW
                } else {
                    nx_stats::AGGREGATE
                };
                nx_header(st, out);
                out.extend_from_slice(&r.out_port.to_be_bytes());
                out.extend_from_slice(&(nxm::unpadded_len(&r.matching) as u16).to_be_bytes());
                out.push(r.table_id);
                zeros(out, 3);
                nxm::emit(&r.matching, out)?;
            }
            StatsRequest10::Other { body, .. } => out.extend_from_slice(body),
        }
        Ok(())
    }
}

fn nx_header(subtype: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&NX_VENDOR_ID.to_be_bytes());
    out.extend_from_slice(&subtype.to_be_bytes());
    zeros(out, 4);
}

/// `ofp10_table_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableStats10 {
    /// `table_id`: the table's number.
    pub table_id: u8,
    /// `name`: the table's name (up to 31 ASCII bytes).
    pub name: String,
    /// OFPFW_* fields the table can wildcard.
    pub wildcards: u32,
    /// `max_entries`: how many flows the table can hold.
    pub max_entries: u32,
    /// `active_count`: flows in the table now.
    pub active_count: u32,
    /// `lookup_count`: packets looked up in the table.
    pub lookup_count: u64,
    /// `matched_count`: packets that hit a flow of the table.
    pub matched_count: u64,
}

impl TableStats10 {
    fn parse(b: &[u8]) -> TableStats10 {
        TableStats10 {
            table_id: u8_at(b, ft::TABLE_ID),
            name: str_at(b, ft::NAME),
            wildcards: u32_at(b, ft::WILDCARDS),
            max_entries: u32_at(b, ft::MAX_ENTRIES),
            active_count: u32_at(b, ft::ACTIVE_COUNT),
            lookup_count: u64_at(b, ft::LOOKUP_COUNT),
            matched_count: u64_at(b, ft::MATCHED_COUNT),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.table_id);
        zeros(out, 3);
        put_str(out, &self.name, ft::NAME.len());
        out.extend_from_slice(&self.wildcards.to_be_bytes());
        out.extend_from_slice(&self.max_entries.to_be_bytes());
        out.extend_from_slice(&self.active_count.to_be_bytes());
        out.extend_from_slice(&self.lookup_count.to_be_bytes());
        out.extend_from_slice(&self.matched_count.to_be_bytes());
    }
}

/// Aggregate statistics (OFPST_AGGREGATE and NXST_AGGREGATE replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Aggregate10 {
    /// `packet_count`: packets matched by the selected flows.
    pub packet_count: u64,
    /// `byte_count`: bytes matched by the selected flows.
    pub byte_count: u64,
    /// `flow_count`: how many flows were selected.
    pub flow_count: u32,
}

impl Aggregate10 {
    fn parse(b: &[u8]) -> Result<Aggregate10> {
        if b.len() != fa::LEN {
            return Err(Error::BadLength("aggregate reply is 24 bytes"));
        }
        Ok(Aggregate10 {
            packet_count: u64_at(b, fa::PACKET_COUNT),
            byte_count: u64_at(b, fa::BYTE_COUNT),
            flow_count: u32_at(b, fa::FLOW_COUNT),
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.byte_count.to_be_bytes());
        out.extend_from_slice(&self.flow_count.to_be_bytes());
        zeros(out, 4);
    }
}

/// `nx_flow_stats`: one flow of an NXST_FLOW reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NxFlowStats {
    /// `table_id`: the table the flow is in.
    pub table_id: u8,
    /// `duration_sec`: seconds since the flow was added.
    pub duration_sec: u32,
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// `priority` of the flow.
    pub priority: u16,
    /// `idle_timeout`: seconds without a hit before removal (0: none).
    pub idle_timeout: u16,
    /// `hard_timeout`: seconds before removal (0: none).
    pub hard_timeout: u16,
    /// Seconds since the flow last matched a packet, plus one (0: unknown).
    pub idle_age: u16,
    /// Seconds since the flow was added or modified, plus one (0: unknown).
    pub hard_age: u16,
    /// `cookie`: the controller's opaque identifier of the flow.
    pub cookie: u64,
    /// `packet_count`: packets the flow matched.
    pub packet_count: u64,
    /// `byte_count`: bytes the flow matched.
    pub byte_count: u64,
    /// The NXM match.
    pub matching: Vec<OxmField>,
    /// The flow's actions, decoded as OpenFlow 1.0 (and Nicira) actions.
    pub actions: Vec<Action10>,
}

impl NxFlowStats {
    fn parse(b: &[u8]) -> Result<(NxFlowStats, usize)> {
        check_len(b, fnf::MATCH)?;
        let len = u16_at(b, fnf::LENGTH) as usize;
        let match_len = u16_at(b, fnf::MATCH_LEN) as usize;
        let acts_at = fnf::MATCH + round8(match_len);
        if len > b.len() || acts_at > len || !len.is_multiple_of(8) {
            return Err(Error::BadLength("nx_flow_stats length"));
        }
        Ok((
            NxFlowStats {
                table_id: u8_at(b, fnf::TABLE_ID),
                duration_sec: u32_at(b, fnf::DURATION_SEC),
                duration_nsec: u32_at(b, fnf::DURATION_NSEC),
                priority: u16_at(b, fnf::PRIORITY),
                idle_timeout: u16_at(b, fnf::IDLE_TIMEOUT),
                hard_timeout: u16_at(b, fnf::HARD_TIMEOUT),
                idle_age: u16_at(b, fnf::IDLE_AGE),
                hard_age: u16_at(b, fnf::HARD_AGE),
                cookie: u64_at(b, fnf::COOKIE),
                packet_count: u64_at(b, fnf::PACKET_COUNT),
                byte_count: u64_at(b, fnf::BYTE_COUNT),
                matching: nxm::parse(&b[fnf::MATCH..], match_len)?,
                actions: Action10::parse_list(&b[acts_at..len])?,
            },
            len,
        ))
    }

    /// Bytes of this entry.
    pub fn buffer_len(&self) -> usize {
        fnf::MATCH + round8(nxm::unpadded_len(&self.matching)) + Action10::list_len(&self.actions)
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.buffer_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[self.table_id, 0]);
        out.extend_from_slice(&self.duration_sec.to_be_bytes());
        out.extend_from_slice(&self.duration_nsec.to_be_bytes());
        for v in [self.priority, self.idle_timeout, self.hard_timeout] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(nxm::unpadded_len(&self.matching) as u16).to_be_bytes());
        out.extend_from_slice(&self.idle_age.to_be_bytes());
        out.extend_from_slice(&self.hard_age.to_be_bytes());
        for v in [self.cookie, self.packet_count, self.byte_count] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        nxm::emit(&self.matching, out)?;
        Action10::emit_list(&self.actions, out)
    }
}

/// `ofp10_flow_stats`: one flow of an OFPST_FLOW reply (OpenFlow 1.0's own
/// flow statistics, with an `ofp10_match`; what `ovs-ofctl -F openflow10`
/// and 1.0 controllers ask for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats10 {
    /// `table_id`: the table the flow is in.
    pub table_id: u8,
    /// `match`: the flow's `ofp10_match`.
    pub matching: Match10,
    /// `duration_sec`: seconds since the flow was added.
    pub duration_sec: u32,
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// `priority` of the flow.
    pub priority: u16,
    /// `idle_timeout`: seconds without a hit before removal (0: none).
    pub idle_timeout: u16,
    /// `hard_timeout`: seconds before removal (0: none).
    pub hard_timeout: u16,
    /// `cookie`: the controller's opaque identifier of the flow.
    pub cookie: u64,
    /// `packet_count`: packets the flow matched.
    pub packet_count: u64,
    /// `byte_count`: bytes the flow matched.
    pub byte_count: u64,
    /// The flow's OpenFlow 1.0 actions.
    pub actions: Vec<Action10>,
}

impl FlowStats10 {
    fn parse(b: &[u8]) -> Result<(FlowStats10, usize)> {
        check_len(b, ffs::ACTIONS)?;
        let len = u16_at(b, ffs::LENGTH) as usize;
        if len < ffs::ACTIONS || len > b.len() || !len.is_multiple_of(8) {
            return Err(Error::BadLength("ofp10_flow_stats length"));
        }
        Ok((
            FlowStats10 {
                table_id: u8_at(b, ffs::TABLE_ID),
                matching: Match10::parse(&b[ffs::MATCH])?,
                duration_sec: u32_at(b, ffs::DURATION_SEC),
                duration_nsec: u32_at(b, ffs::DURATION_NSEC),
                priority: u16_at(b, ffs::PRIORITY),
                idle_timeout: u16_at(b, ffs::IDLE_TIMEOUT),
                hard_timeout: u16_at(b, ffs::HARD_TIMEOUT),
                cookie: u64_at(b, ffs::COOKIE),
                packet_count: u64_at(b, ffs::PACKET_COUNT),
                byte_count: u64_at(b, ffs::BYTE_COUNT),
                actions: Action10::parse_list(&b[ffs::ACTIONS..len])?,
            },
            len,
        ))
    }

    /// Bytes of this entry.
    pub fn buffer_len(&self) -> usize {
        ffs::ACTIONS + Action10::list_len(&self.actions)
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.buffer_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[self.table_id, 0]);
        self.matching.emit(out);
        out.extend_from_slice(&self.duration_sec.to_be_bytes());
        out.extend_from_slice(&self.duration_nsec.to_be_bytes());
        for v in [self.priority, self.idle_timeout, self.hard_timeout] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        zeros(out, 6);
        for v in [self.cookie, self.packet_count, self.byte_count] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        Action10::emit_list(&self.actions, out)
    }
}

/// A statistics reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsReplyBody10 {
    /// OFPST_DESC.
    Desc(Desc),
    /// OFPST_TABLE.
    Table(Vec<TableStats10>),
    /// OFPST_PORT.
    Port(Vec<PortStats10>),
    /// OFPST_AGGREGATE.
    Aggregate(Aggregate10),
    /// OFPST_FLOW.
    Flow(Vec<FlowStats10>),
    /// NXST_FLOW.
    NxFlow(Vec<NxFlowStats>),
    /// NXST_AGGREGATE.
    NxAggregate(Aggregate10),
    /// Anything else, raw.
    Other {
        /// OFPST_* type.
        stats_type: u16,
        /// Body after type and flags.
        body: Vec<u8>,
    },
}

/// OFPT_STATS_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsReply10 {
    /// OFPSF_REPLY_MORE when more replies follow.
    pub flags: u16,
    /// The body.
    pub body: StatsReplyBody10,
}

impl StatsReply10 {
    /// Parses a whole OFPT_STATS_REPLY.
    pub fn parse(msg: &[u8]) -> Result<StatsReply10> {
        check_len(msg, field::BODY)?;
        let ty = u16_at(msg, field::TYPE);
        let flags = u16_at(msg, field::FLAGS);
        let b = &msg[field::BODY..];
        let list = |n: usize| -> Result<core::slice::ChunksExact<'_, u8>> {
            if !b.len().is_multiple_of(n) {
                return Err(Error::BadLength("stats entries of a fixed size"));
            }
            Ok(b.chunks_exact(n))
        };
        let body = match ty {
            stats_type::DESC => StatsReplyBody10::Desc(Desc::parse(b)?),
            stats_type::TABLE => {
                StatsReplyBody10::Table(list(ft::LEN)?.map(TableStats10::parse).collect())
            }
            stats_type::PORT => StatsReplyBody10::Port(
                list(fps::LEN)?
                    .map(PortStats10::parse)
                    .collect::<Result<_>>()?,
            ),
            stats_type::AGGREGATE => StatsReplyBody10::Aggregate(Aggregate10::parse(b)?),
            stats_type::FLOW => {
                let (mut v, mut b) = (Vec::new(), b);
                while !b.is_empty() {
                    let (f, n) = FlowStats10::parse(b)?;
                    v.push(f);
                    b = &b[n..];
                }
                StatsReplyBody10::Flow(v)
            }
            stats_type::VENDOR
                if msg.len() >= field::NX_BODY && u32_at(msg, field::VENDOR) == NX_VENDOR_ID =>
            {
                let st = u32_at(msg, field::SUBTYPE);
                let mut b = &msg[field::NX_BODY..];
                match st {
                    nx_stats::FLOW => {
                        let mut v = Vec::new();
                        while !b.is_empty() {
                            let (f, n) = NxFlowStats::parse(b)?;
                            v.push(f);
                            b = &b[n..];
                        }
                        StatsReplyBody10::NxFlow(v)
                    }
                    nx_stats::AGGREGATE => StatsReplyBody10::NxAggregate(Aggregate10::parse(b)?),
                    _ => StatsReplyBody10::Other {
                        stats_type: ty,
                        body: msg[field::BODY..].to_vec(),
                    },
                }
            }
            _ => StatsReplyBody10::Other {
                stats_type: ty,
                body: b.to_vec(),
            },
        };
        Ok(StatsReply10 { flags, body })
    }

    /// The OFPST_* type.
    pub fn stats_type(&self) -> u16 {
        match &self.body {
            StatsReplyBody10::Desc(_) => stats_type::DESC,
            StatsReplyBody10::Table(_) => stats_type::TABLE,
            StatsReplyBody10::Port(_) => stats_type::PORT,
            StatsReplyBody10::Aggregate(_) => stats_type::AGGREGATE,
            StatsReplyBody10::Flow(_) => stats_type::FLOW,
            StatsReplyBody10::NxFlow(_) | StatsReplyBody10::NxAggregate(_) => stats_type::VENDOR,
            StatsReplyBody10::Other { stats_type, .. } => *stats_type,
        }
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        let nx = field::NX_BODY - field::BODY;
        field::BODY
            + match &self.body {
                StatsReplyBody10::Desc(_) => crate::field::desc::LEN,
                StatsReplyBody10::Table(t) => ft::LEN * t.len(),
                StatsReplyBody10::Port(p) => fps::LEN * p.len(),
                StatsReplyBody10::Aggregate(_) => fa::LEN,
                StatsReplyBody10::Flow(f) => f.iter().map(FlowStats10::buffer_len).sum::<usize>(),
                StatsReplyBody10::NxFlow(f) => {
                    nx + f.iter().map(NxFlowStats::buffer_len).sum::<usize>()
                }
                StatsReplyBody10::NxAggregate(_) => nx + fa::LEN,
                StatsReplyBody10::Other { body, .. } => body.len(),
            }
    }

    /// Appends the body (type, flags, entries).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.stats_type().to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        match &self.body {
            StatsReplyBody10::Desc(d) => d.emit(out),
            StatsReplyBody10::Table(t) => t.iter().for_each(|t| t.emit(out)),
            StatsReplyBody10::Port(p) => p.iter().for_each(|p| p.emit(out)),
            StatsReplyBody10::Aggregate(a) => a.emit(out),
            StatsReplyBody10::Flow(f) => {
                for f in f {
                    f.emit(out)?;
                }
            }
            StatsReplyBody10::NxFlow(f) => {
                nx_header(nx_stats::FLOW, out);
                for f in f {
                    f.emit(out)?;
                }
            }
            StatsReplyBody10::NxAggregate(a) => {
                nx_header(nx_stats::AGGREGATE, out);
                a.emit(out);
            }
            StatsReplyBody10::Other { body, .. } => out.extend_from_slice(body),
        }
        Ok(())
    }
}
