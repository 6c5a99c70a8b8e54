//! MULTIPART requests (OpenFlow 1.3 §7.3.5): descriptions and statistics
//! of the switch, its flows, tables, ports and groups, split into replies
//! of at most 64 KiB.

use openflow::error_msg::{self, ErrorType};
use openflow::flow_mod::flags as ff;
use openflow::group::{Bucket as OfBucket, GroupType as OfGroupType};
use openflow::message::Message;
use openflow::multipart::{
    AggregateStats, Desc, FlowStats, FlowStatsRequest, GroupDesc, GroupFeatures,
    GroupStats as OfGroupStats, MeterFeatures, MultipartReply, MultipartReplyBody,
    MultipartRequest, MultipartRequestBody, TableStats as OfTableStats, MORE,
};
use openflow::port::{Port as OfPort, PortStats as OfPortStats};
use openflow::Match as OfMatch;
use switch::group::GroupType;

use crate::actions;
use crate::bridge::{Bridge, PortInfo};
use crate::consts::{N_TABLES, OFPG_ALL, OFPG_ANY, OFPP_ANY};
use crate::error::OfError;
use crate::flow_match;
use crate::flow_mod::filter;
use crate::port_map::{PortMap, OFPP_MAX};

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

pub(crate) fn handle(br: &Bridge, r: &MultipartRequest) -> Result<Vec<MultipartReply>, OfError> {
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
