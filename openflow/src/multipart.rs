//! OFPT_MULTIPART_REQUEST / OFPT_MULTIPART_REPLY (spec section 7.3.5): statistics and
//! descriptions.
//!
//! ```text
//! ofp_header | type (2) | flags (2) | pad (4) | body ...
//! ```
//!
//! Bodies parsed here: DESC, FLOW, AGGREGATE, TABLE, PORT_STATS, PORT_DESC, GROUP,
//! GROUP_DESC, GROUP_FEATURES, METER_FEATURES, TABLE_FEATURES (see [`crate::table_features`]);
//! other types are [`MultipartRequestBody::Other`] / [`MultipartReplyBody::Other`]
//! (answer OFPBRC_BAD_MULTIPART).

use crate::bytes::{put_str, str_at, u16_at, u32_at, u64_at, u8_at, zeros};
use crate::error::check_len;
use crate::field::{self, multipart as mfield};
use crate::group::{Bucket, GroupType};
use crate::instruction::Instruction;
use crate::matching::Match;
use crate::port::{Port, PortStats};
pub use crate::table_features::TableFeatures;
use crate::{Error, Result};

/// OFPMP_* multipart types.
pub mod mp_type {
    /// OFPMP_DESC: the switch's description strings.
    pub const DESC: u16 = 0;
    /// OFPMP_FLOW: individual flow statistics.
    pub const FLOW: u16 = 1;
    /// OFPMP_AGGREGATE: totals over a set of flows.
    pub const AGGREGATE: u16 = 2;
    /// OFPMP_TABLE: flow table statistics.
    pub const TABLE: u16 = 3;
    /// OFPMP_PORT_STATS: per-port counters.
    pub const PORT_STATS: u16 = 4;
    /// OFPMP_QUEUE: per-queue counters.
    pub const QUEUE: u16 = 5;
    /// OFPMP_GROUP: group counters.
    pub const GROUP: u16 = 6;
    /// OFPMP_GROUP_DESC: the groups and their buckets.
    pub const GROUP_DESC: u16 = 7;
    /// OFPMP_GROUP_FEATURES: what the group table supports.
    pub const GROUP_FEATURES: u16 = 8;
    /// OFPMP_METER: meter statistics.
    pub const METER: u16 = 9;
    /// OFPMP_METER_CONFIG: the meters and their bands.
    pub const METER_CONFIG: u16 = 10;
    /// OFPMP_METER_FEATURES: what the meters support.
    pub const METER_FEATURES: u16 = 11;
    /// OFPMP_TABLE_FEATURES: what each table can match and do.
    pub const TABLE_FEATURES: u16 = 12;
    /// OFPMP_PORT_DESC: the ports (`ofp_port` each).
    pub const PORT_DESC: u16 = 13;
    /// OFPMP_EXPERIMENTER: an experimenter multipart.
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// OFPMPF_REQ_MORE / OFPMPF_REPLY_MORE: more messages of this multipart follow.
pub const MORE: u16 = 1;

/// Flow (and aggregate) statistics request: which flows to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// Table, or OFPTT_ALL.
    pub table_id: u8,
    /// Only flows outputting to this port (OFPP_ANY: all).
    pub out_port: u32,
    /// Only flows outputting to this group (OFPG_ANY: all).
    pub out_group: u32,
    /// Only flows with this cookie (under `cookie_mask`).
    pub cookie: u64,
    /// Cookie bits that must match; 0: no restriction.
    pub cookie_mask: u64,
    /// Fields to match (non-strict).
    pub matching: Match,
}

impl FlowStatsRequest {
    fn parse(b: &[u8]) -> Result<FlowStatsRequest> {
        use field::flow_stats_request as f;
        check_len(b, f::LEN)?;
        let (matching, n) = Match::parse(&b[f::MATCH..])?;
        if f::MATCH + n != b.len() {
            return Err(Error::BadLength("bytes after the flow stats request match"));
        }
        Ok(FlowStatsRequest {
            table_id: u8_at(b, f::TABLE_ID),
            out_port: u32_at(b, f::OUT_PORT),
            out_group: u32_at(b, f::OUT_GROUP),
            cookie: u64_at(b, f::COOKIE),
            cookie_mask: u64_at(b, f::COOKIE_MASK),
            matching,
        })
    }

    fn buffer_len(&self) -> usize {
        field::flow_stats_request::LEN + self.matching.buffer_len()
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.table_id);
        zeros(out, 3);
        out.extend_from_slice(&self.out_port.to_be_bytes());
        out.extend_from_slice(&self.out_group.to_be_bytes());
        zeros(out, 4);
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.cookie_mask.to_be_bytes());
        self.matching.emit(out)
    }
}

/// The body of a multipart request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    /// OFPMP_DESC (empty body).
    Desc,
    /// OFPMP_FLOW.
    Flow(FlowStatsRequest),
    /// OFPMP_AGGREGATE.
    Aggregate(FlowStatsRequest),
    /// OFPMP_TABLE (empty body).
    Table,
    /// OFPMP_PORT_STATS for a port (OFPP_ANY: all).
    PortStats {
        /// Port, or OFPP_ANY.
        port_no: u32,
    },
    /// OFPMP_PORT_DESC (empty body).
    PortDesc,
    /// OFPMP_GROUP for a group (OFPG_ALL: all).
    Group {
        /// Group, or OFPG_ALL.
        group_id: u32,
    },
    /// OFPMP_GROUP_DESC (empty body).
    GroupDesc,
    /// OFPMP_GROUP_FEATURES (empty body).
    GroupFeatures,
    /// OFPMP_METER_FEATURES (empty body).
    MeterFeatures,
    /// OFPMP_TABLE_FEATURES: empty (query) or a list of tables to configure.
    TableFeatures(Vec<TableFeatures>),
    /// Any other type, body raw.
    Other {
        /// The multipart type.
        mp_type: u16,
        /// The body.
        body: Vec<u8>,
    },
}

/// A multipart request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    /// OFPMPF_REQ_MORE ([`MORE`]) when more requests follow.
    pub flags: u16,
    /// The typed body.
    pub body: MultipartRequestBody,
}

fn empty(b: &[u8]) -> Result<()> {
    if b.is_empty() {
        Ok(())
    } else {
        Err(Error::BadLength("multipart body must be empty"))
    }
}

fn id_request(b: &[u8]) -> Result<u32> {
    if b.len() != field::id_request::LEN {
        return Err(Error::BadLength("multipart id request must be 8 bytes"));
    }
    Ok(u32_at(b, field::id_request::ID))
}

impl MultipartRequest {
    /// Parses a whole MULTIPART_REQUEST.
    pub fn parse(msg: &[u8]) -> Result<MultipartRequest> {
        check_len(msg, mfield::LEN)?;
        let ty = u16_at(msg, mfield::TYPE);
        let b = &msg[mfield::BODY..];
        use MultipartRequestBody as R;
        let body = match ty {
            mp_type::DESC => empty(b).map(|_| R::Desc)?,
            mp_type::FLOW => R::Flow(FlowStatsRequest::parse(b)?),
            mp_type::AGGREGATE => R::Aggregate(FlowStatsRequest::parse(b)?),
            mp_type::TABLE => empty(b).map(|_| R::Table)?,
            mp_type::PORT_STATS => R::PortStats {
                port_no: id_request(b)?,
            },
            mp_type::PORT_DESC => empty(b).map(|_| R::PortDesc)?,
            mp_type::GROUP => R::Group {
                group_id: id_request(b)?,
            },
            mp_type::GROUP_DESC => empty(b).map(|_| R::GroupDesc)?,
            mp_type::GROUP_FEATURES => empty(b).map(|_| R::GroupFeatures)?,
            mp_type::METER_FEATURES => empty(b).map(|_| R::MeterFeatures)?,
            mp_type::TABLE_FEATURES => R::TableFeatures(TableFeatures::parse_list(b)?),
            t => R::Other {
                mp_type: t,
                body: b.to_vec(),
            },
        };
        Ok(MultipartRequest {
            flags: u16_at(msg, mfield::FLAGS),
            body,
        })
    }

    /// The multipart type.
    pub fn mp_type(&self) -> u16 {
        use MultipartRequestBody as R;
        match &self.body {
            R::Desc => mp_type::DESC,
            R::Flow(_) => mp_type::FLOW,
            R::Aggregate(_) => mp_type::AGGREGATE,
            R::Table => mp_type::TABLE,
            R::PortStats { .. } => mp_type::PORT_STATS,
            R::PortDesc => mp_type::PORT_DESC,
            R::Group { .. } => mp_type::GROUP,
            R::GroupDesc => mp_type::GROUP_DESC,
            R::GroupFeatures => mp_type::GROUP_FEATURES,
            R::MeterFeatures => mp_type::METER_FEATURES,
            R::TableFeatures(_) => mp_type::TABLE_FEATURES,
            R::Other { mp_type, .. } => *mp_type,
        }
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        use MultipartRequestBody as R;
        mfield::LEN
            + match &self.body {
                R::Flow(f) | R::Aggregate(f) => f.buffer_len(),
                R::PortStats { .. } | R::Group { .. } => field::id_request::LEN,
                R::TableFeatures(v) => v.iter().map(TableFeatures::buffer_len).sum(),
                R::Other { body: b, .. } => b.len(),
                _ => 0,
            }
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        use MultipartRequestBody as R;
        out.extend_from_slice(&self.mp_type().to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        zeros(out, 4);
        match &self.body {
            R::Flow(f) | R::Aggregate(f) => f.emit(out)?,
            R::PortStats { port_no: id } | R::Group { group_id: id } => {
                out.extend_from_slice(&id.to_be_bytes());
                zeros(out, 4);
            }
            R::TableFeatures(v) => v.iter().try_for_each(|t| t.emit(out))?,
            R::Other { body: b, .. } => out.extend_from_slice(b),
            _ => {}
        }
        Ok(())
    }
}

/// OFPMP_DESC reply: the switch's description strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desc {
    /// Manufacturer description (255 bytes max).
    pub mfr_desc: String,
    /// Hardware description.
    pub hw_desc: String,
    /// Software description.
    pub sw_desc: String,
    /// Serial number (31 bytes max).
    pub serial_num: String,
    /// Human readable datapath description.
    pub dp_desc: String,
}

impl Desc {
    pub(crate) fn parse(b: &[u8]) -> Result<Desc> {
        use field::desc as f;
        if b.len() != f::LEN {
            return Err(Error::BadLength("desc reply must be 1056 bytes"));
        }
        Ok(Desc {
            mfr_desc: str_at(b, f::MFR_DESC),
            hw_desc: str_at(b, f::HW_DESC),
            sw_desc: str_at(b, f::SW_DESC),
            serial_num: str_at(b, f::SERIAL_NUM),
            dp_desc: str_at(b, f::DP_DESC),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        use field::desc as f;
        put_str(out, &self.mfr_desc, f::MFR_DESC.len());
        put_str(out, &self.hw_desc, f::HW_DESC.len());
        put_str(out, &self.sw_desc, f::SW_DESC.len());
        put_str(out, &self.serial_num, f::SERIAL_NUM.len());
        put_str(out, &self.dp_desc, f::DP_DESC.len());
    }
}

/// One flow's statistics (OFPMP_FLOW reply entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    /// Table.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond duration_sec.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// OFPFF_* flags.
    pub flags: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// Match.
    pub matching: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    fn parse(b: &[u8]) -> Result<FlowStats> {
        use field::flow_stats as f;
        let (matching, n) = Match::parse(&b[f::MATCH..])?;
        Ok(FlowStats {
            table_id: u8_at(b, f::TABLE_ID),
            duration_sec: u32_at(b, f::DURATION_SEC),
            duration_nsec: u32_at(b, f::DURATION_NSEC),
            priority: u16_at(b, f::PRIORITY),
            idle_timeout: u16_at(b, f::IDLE_TIMEOUT),
            hard_timeout: u16_at(b, f::HARD_TIMEOUT),
            flags: u16_at(b, f::FLAGS),
            cookie: u64_at(b, f::COOKIE),
            packet_count: u64_at(b, f::PACKET_COUNT),
            byte_count: u64_at(b, f::BYTE_COUNT),
            matching,
            instructions: Instruction::parse_list(&b[f::MATCH + n..])?,
        })
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        field::flow_stats::LEN
            + self.matching.buffer_len()
            + Instruction::list_len(&self.instructions)
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.buffer_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(self.table_id);
        out.push(0);
        out.extend_from_slice(&self.duration_sec.to_be_bytes());
        out.extend_from_slice(&self.duration_nsec.to_be_bytes());
        out.extend_from_slice(&self.priority.to_be_bytes());
        out.extend_from_slice(&self.idle_timeout.to_be_bytes());
        out.extend_from_slice(&self.hard_timeout.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        zeros(out, 4);
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.byte_count.to_be_bytes());
        self.matching.emit(out)?;
        Instruction::emit_list(&self.instructions, out)
    }
}

/// OFPMP_AGGREGATE reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregateStats {
    /// Packets in flows.
    pub packet_count: u64,
    /// Bytes in flows.
    pub byte_count: u64,
    /// Number of flows.
    pub flow_count: u32,
}

/// One table's statistics (OFPMP_TABLE reply entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    /// Table.
    pub table_id: u8,
    /// Active entries.
    pub active_count: u32,
    /// Packets looked up.
    pub lookup_count: u64,
    /// Packets that hit an entry.
    pub matched_count: u64,
}

/// One group's statistics (OFPMP_GROUP reply entry).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupStats {
    /// Group.
    pub group_id: u32,
    /// Flows or groups forwarding to it.
    pub ref_count: u32,
    /// Packets processed.
    pub packet_count: u64,
    /// Bytes processed.
    pub byte_count: u64,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond duration_sec.
    pub duration_nsec: u32,
    /// (packet_count, byte_count) per bucket.
    pub bucket_stats: Vec<(u64, u64)>,
}

/// One group's description (OFPMP_GROUP_DESC reply entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDesc {
    /// Group type.
    pub group_type: GroupType,
    /// Group.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

/// OFPMP_GROUP_FEATURES reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupFeatures {
    /// Bitmap of supported OFPGT_* types.
    pub types: u32,
    /// OFPGFC_* capability bits.
    pub capabilities: u32,
    /// Maximum groups per type.
    pub max_groups: [u32; 4],
    /// Bitmaps of OFPAT_* supported per type.
    pub actions: [u32; 4],
}

/// OFPMP_METER_FEATURES reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterFeatures {
    /// Maximum number of meters.
    pub max_meter: u32,
    /// Bitmap of OFPMBT_* band types.
    pub band_types: u32,
    /// OFPMF_* capability bits.
    pub capabilities: u32,
    /// Maximum bands per meter.
    pub max_bands: u8,
    /// Maximum color value.
    pub max_color: u8,
}

/// The body of a multipart reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    /// OFPMP_DESC.
    Desc(Desc),
    /// OFPMP_FLOW.
    Flow(Vec<FlowStats>),
    /// OFPMP_AGGREGATE.
    Aggregate(AggregateStats),
    /// OFPMP_TABLE.
    Table(Vec<TableStats>),
    /// OFPMP_PORT_STATS.
    PortStats(Vec<PortStats>),
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<Port>),
    /// OFPMP_GROUP.
    Group(Vec<GroupStats>),
    /// OFPMP_GROUP_DESC.
    GroupDesc(Vec<GroupDesc>),
    /// OFPMP_GROUP_FEATURES.
    GroupFeatures(GroupFeatures),
    /// OFPMP_METER_FEATURES.
    MeterFeatures(MeterFeatures),
    /// OFPMP_TABLE_FEATURES (OVS expects at least one entry).
    TableFeatures(Vec<TableFeatures>),
    /// Any other type, body raw.
    Other {
        /// The multipart type.
        mp_type: u16,
        /// The body.
        body: Vec<u8>,
    },
}

/// A multipart reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    /// OFPMPF_REPLY_MORE ([`MORE`]) when more replies follow.
    pub flags: u16,
    /// The typed body.
    pub body: MultipartReplyBody,
}

/// Splits a list of entries each starting with a 16-bit length (at `len_at`) of at
/// least `min`; calls `f` on each entry.
fn entries<T>(
    mut b: &[u8],
    len_at: field::Field,
    min: usize,
    mut f: impl FnMut(&[u8]) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        check_len(b, min)?;
        let len = u16_at(b, len_at.clone()) as usize;
        if len < min || len > b.len() {
            return Err(Error::BadLength("multipart entry length out of range"));
        }
        out.push(f(&b[..len])?);
        b = &b[len..];
    }
    Ok(out)
}

/// Splits a list of fixed-size entries.
fn fixed<T>(b: &[u8], size: usize, f: impl Fn(&[u8]) -> Result<T>) -> Result<Vec<T>> {
    if !b.len().is_multiple_of(size) {
        return Err(Error::BadLength(
            "multipart body not a multiple of the entry size",
        ));
    }
    b.chunks_exact(size).map(f).collect()
}

impl MultipartReply {
    /// Parses a whole MULTIPART_REPLY.
    pub fn parse(msg: &[u8]) -> Result<MultipartReply> {
        check_len(msg, mfield::LEN)?;
        let ty = u16_at(msg, mfield::TYPE);
        let b = &msg[mfield::BODY..];
        use MultipartReplyBody as R;
        let body = match ty {
            mp_type::DESC => R::Desc(Desc::parse(b)?),
            mp_type::FLOW => R::Flow(entries(
                b,
                field::flow_stats::LENGTH,
                field::flow_stats::LEN,
                FlowStats::parse,
            )?),
            mp_type::AGGREGATE => {
                use field::aggregate_stats as f;
                if b.len() != f::LEN {
                    return Err(Error::BadLength("aggregate reply must be 24 bytes"));
                }
                R::Aggregate(AggregateStats {
                    packet_count: u64_at(b, f::PACKET_COUNT),
                    byte_count: u64_at(b, f::BYTE_COUNT),
                    flow_count: u32_at(b, f::FLOW_COUNT),
                })
            }
            mp_type::TABLE => {
                use field::table_stats as f;
                R::Table(fixed(b, f::LEN, |e| {
                    Ok(TableStats {
                        table_id: u8_at(e, f::TABLE_ID),
                        active_count: u32_at(e, f::ACTIVE_COUNT),
                        lookup_count: u64_at(e, f::LOOKUP_COUNT),
                        matched_count: u64_at(e, f::MATCHED_COUNT),
                    })
                })?)
            }
            mp_type::PORT_STATS => R::PortStats(fixed(b, PortStats::LEN, PortStats::parse)?),
            mp_type::PORT_DESC => R::PortDesc(fixed(b, Port::LEN, Port::parse)?),
            mp_type::GROUP => {
                use field::group_stats as f;
                R::Group(entries(b, f::LENGTH, f::LEN, |e| {
                    let buckets = &e[f::BUCKET_STATS..];
                    Ok(GroupStats {
                        group_id: u32_at(e, f::GROUP_ID),
                        ref_count: u32_at(e, f::REF_COUNT),
                        packet_count: u64_at(e, f::PACKET_COUNT),
                        byte_count: u64_at(e, f::BYTE_COUNT),
                        duration_sec: u32_at(e, f::DURATION_SEC),
                        duration_nsec: u32_at(e, f::DURATION_NSEC),
                        bucket_stats: fixed(buckets, f::BUCKET_COUNTER_LEN, |c| {
                            Ok((u64_at(c, 0..8), u64_at(c, 8..16)))
                        })?,
                    })
                })?)
            }
            mp_type::GROUP_DESC => {
                use field::group_desc as f;
                R::GroupDesc(entries(b, f::LENGTH, f::LEN, |e| {
                    Ok(GroupDesc {
                        group_type: GroupType::from_u8(u8_at(e, f::TYPE)),
                        group_id: u32_at(e, f::GROUP_ID),
                        buckets: Bucket::parse_list(&e[f::BUCKETS..])?,
                    })
                })?)
            }
            mp_type::GROUP_FEATURES => {
                use field::group_features as f;
                if b.len() != f::LEN {
                    return Err(Error::BadLength("group features reply must be 40 bytes"));
                }
                let word = |at: usize, i: usize| u32_at(b, at + 4 * i..at + 4 * i + 4);
                R::GroupFeatures(GroupFeatures {
                    types: u32_at(b, f::TYPES),
                    capabilities: u32_at(b, f::CAPABILITIES),
                    max_groups: [0, 1, 2, 3].map(|i| word(f::MAX_GROUPS, i)),
                    actions: [0, 1, 2, 3].map(|i| word(f::ACTIONS, i)),
                })
            }
            mp_type::METER_FEATURES => {
                use field::meter_features as f;
                if b.len() != f::LEN {
                    return Err(Error::BadLength("meter features reply must be 16 bytes"));
                }
                R::MeterFeatures(MeterFeatures {
                    max_meter: u32_at(b, f::MAX_METER),
                    band_types: u32_at(b, f::BAND_TYPES),
                    capabilities: u32_at(b, f::CAPABILITIES),
                    max_bands: u8_at(b, f::MAX_BANDS),
                    max_color: u8_at(b, f::MAX_COLOR),
                })
            }
            mp_type::TABLE_FEATURES => R::TableFeatures(TableFeatures::parse_list(b)?),
            t => R::Other {
                mp_type: t,
                body: b.to_vec(),
            },
        };
        Ok(MultipartReply {
            flags: u16_at(msg, mfield::FLAGS),
            body,
        })
    }

    /// The multipart type.
    pub fn mp_type(&self) -> u16 {
        use MultipartReplyBody as R;
        match &self.body {
            R::Desc(_) => mp_type::DESC,
            R::Flow(_) => mp_type::FLOW,
            R::Aggregate(_) => mp_type::AGGREGATE,
            R::Table(_) => mp_type::TABLE,
            R::PortStats(_) => mp_type::PORT_STATS,
            R::PortDesc(_) => mp_type::PORT_DESC,
            R::Group(_) => mp_type::GROUP,
            R::GroupDesc(_) => mp_type::GROUP_DESC,
            R::GroupFeatures(_) => mp_type::GROUP_FEATURES,
            R::MeterFeatures(_) => mp_type::METER_FEATURES,
            R::TableFeatures(_) => mp_type::TABLE_FEATURES,
            R::Other { mp_type, .. } => *mp_type,
        }
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        use MultipartReplyBody as R;
        mfield::LEN
            + match &self.body {
                R::Desc(_) => field::desc::LEN,
                R::Flow(v) => v.iter().map(FlowStats::buffer_len).sum(),
                R::Aggregate(_) => field::aggregate_stats::LEN,
                R::Table(v) => v.len() * field::table_stats::LEN,
                R::PortStats(v) => v.len() * PortStats::LEN,
                R::PortDesc(v) => v.len() * Port::LEN,
                R::Group(v) => v
                    .iter()
                    .map(|g| {
                        field::group_stats::LEN
                            + g.bucket_stats.len() * field::group_stats::BUCKET_COUNTER_LEN
                    })
                    .sum(),
                R::GroupDesc(v) => v
                    .iter()
                    .map(|g| field::group_desc::LEN + Bucket::list_len(&g.buckets))
                    .sum(),
                R::GroupFeatures(_) => field::group_features::LEN,
                R::MeterFeatures(_) => field::meter_features::LEN,
                R::TableFeatures(v) => v.iter().map(TableFeatures::buffer_len).sum(),
                R::Other { body: b, .. } => b.len(),
            }
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        use MultipartReplyBody as R;
        out.extend_from_slice(&self.mp_type().to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        zeros(out, 4);
        match &self.body {
            R::Desc(d) => d.emit(out),
            R::Flow(v) => v.iter().try_for_each(|f| f.emit(out))?,
            R::Aggregate(a) => {
                out.extend_from_slice(&a.packet_count.to_be_bytes());
                out.extend_from_slice(&a.byte_count.to_be_bytes());
                out.extend_from_slice(&a.flow_count.to_be_bytes());
                zeros(out, 4);
            }
            R::Table(v) => {
                for t in v {
                    out.push(t.table_id);
                    zeros(out, 3);
                    out.extend_from_slice(&t.active_count.to_be_bytes());
                    out.extend_from_slice(&t.lookup_count.to_be_bytes());
                    out.extend_from_slice(&t.matched_count.to_be_bytes());
                }
            }
            R::PortStats(v) => v.iter().for_each(|p| p.emit(out)),
            R::PortDesc(v) => v.iter().for_each(|p| p.emit(out)),
            R::Group(v) => {
                for g in v {
                    let len = field::group_stats::LEN
                        + g.bucket_stats.len() * field::group_stats::BUCKET_COUNTER_LEN;
                    if len > u16::MAX as usize {
                        return Err(Error::TooLong(len));
                    }
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                    zeros(out, 2);
                    out.extend_from_slice(&g.group_id.to_be_bytes());
                    out.extend_from_slice(&g.ref_count.to_be_bytes());
                    zeros(out, 4);
                    out.extend_from_slice(&g.packet_count.to_be_bytes());
                    out.extend_from_slice(&g.byte_count.to_be_bytes());
                    out.extend_from_slice(&g.duration_sec.to_be_bytes());
                    out.extend_from_slice(&g.duration_nsec.to_be_bytes());
                    for (p, b) in &g.bucket_stats {
                        out.extend_from_slice(&p.to_be_bytes());
                        out.extend_from_slice(&b.to_be_bytes());
                    }
                }
            }
            R::GroupDesc(v) => {
                for g in v {
                    let len = field::group_desc::LEN + Bucket::list_len(&g.buckets);
                    if len > u16::MAX as usize {
                        return Err(Error::TooLong(len));
                    }
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                    out.push(g.group_type.to_u8());
                    out.push(0);
                    out.extend_from_slice(&g.group_id.to_be_bytes());
                    Bucket::emit_list(&g.buckets, out)?;
                }
            }
            R::GroupFeatures(g) => {
                out.extend_from_slice(&g.types.to_be_bytes());
                out.extend_from_slice(&g.capabilities.to_be_bytes());
                for w in g.max_groups.iter().chain(&g.actions) {
                    out.extend_from_slice(&w.to_be_bytes());
                }
            }
            R::MeterFeatures(m) => {
                out.extend_from_slice(&m.max_meter.to_be_bytes());
                out.extend_from_slice(&m.band_types.to_be_bytes());
                out.extend_from_slice(&m.capabilities.to_be_bytes());
                out.push(m.max_bands);
                out.push(m.max_color);
                zeros(out, 2);
            }
            R::TableFeatures(v) => v.iter().try_for_each(|t| t.emit(out))?,
            R::Other { body: b, .. } => out.extend_from_slice(b),
        }
        Ok(())
    }
}
