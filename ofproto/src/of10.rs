//! OpenFlow 1.0 connections: what a plain `ovs-ofctl` (no `-O`, which
//! offers only OpenFlow 1.0) and 1.0 controllers speak, with the Nicira
//! extensions `ovs-ofctl` uses in 1.0 (NXM matches, NXT_FLOW_MOD,
//! NXT_FLOW_MOD_TABLE_ID, NXST_FLOW / NXST_AGGREGATE; wire formats in
//! [`openflow::of10`]).
//!
//! ```text
//! Connection (version 1) ─► Message10::parse ─► request():
//!   FEATURES_REQUEST ─► 1.0 FEATURES_REPLY with the port list (ovs-ofctl show)
//!   FLOW_MOD / NXT_FLOW_MOD ─► of10_flow::flow_mod (same switch rules as 1.3)
//!   PACKET_OUT ─► the frame with 1.0 actions (or through the tables)
//!   STATS: DESC, TABLE, PORT via the 1.3 multipart handler, re-encoded;
//!          NXST_FLOW / NXST_AGGREGATE, OFPST_FLOW / OFPST_AGGREGATE via of10_flow
//!   errors ─► their 1.0 form (openflow::of10::error: 1.0 codes or Nicira vendor errors)
//! ```
//!
//! A 1.0 connection gets no asynchronous messages (packet-in, flow-removed,
//! port-status are sent to 1.3 connections only).

use openflow::error_msg::{self, ErrorType};
use openflow::multipart::{MultipartReplyBody as R, MultipartRequest, MultipartRequestBody as Q};
use openflow::of10::action::{port_no, Action10};
use openflow::of10::matching::Match10;
use openflow::of10::matching::{port_to_16, port_to_32};
use openflow::of10::message::Message10;
use openflow::of10::nx::{flow_format, Vendor};
use openflow::of10::packet_out::PacketOut10;
use openflow::of10::port::{speed_bits, FeaturesReply10, PhyPort, PortStats10};
use openflow::of10::stats::{
    Aggregate10, FlowStats10, NxFlowStats, StatsReply10, StatsReplyBody10, StatsRequest10,
    TableStats10, REPLY_MORE,
};
use openflow::of10::{matching::wildcards, nxm};

use crate::bridge::Bridge;
use crate::conn::Connection;
use crate::consts::{NO_BUFFER, N_TABLES};
use crate::error::OfError;
use crate::{multipart, of10_flow};

/// OpenFlow 1.0's wire version.
pub(crate) const VERSION: u8 = openflow::of10::VERSION;

/// What a 1.0 connection set with Nicira messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    /// NXT_FLOW_MOD_TABLE_ID: the high byte of a flow_mod's command is the
    /// table.
    pub table_id_ext: bool,
    /// NXT_SET_FLOW_FORMAT (NXFF_OPENFLOW10 or NXFF_NXM).
    pub flow_format: u32,
}

/// Serves one message of a 1.0 connection; appends the replies (or the
/// 1.0 error) to `out`.
pub(crate) fn handle(c: &mut Connection, raw: &[u8], br: &Bridge, out: &mut Vec<u8>) {
    let xid = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
    let res = match Message10::parse(raw) {
        Ok((_, m)) => request(&mut c.of10, m, br),
        Err(e) => {
            let (ty, code) = e.of_error();
            Err(OfError::new(ty, code, e.to_string()))
        }
    };
    match res {
        Ok(replies) => {
            for m in replies {
                if let Err(e) = m.emit(xid, out) {
                    eprintln!("ofproto {}: cannot encode a 1.0 reply: {e}", br.name);
                }
            }
        }
        Err(e) => {
            eprintln!("ofproto {}: OpenFlow 1.0 request refused: {e}", br.name);
            let _ = error(&e, raw).emit(xid, out);
        }
    }
}

/// The OFPT_ERROR of 1.0 for `e` about `raw`.
pub(crate) fn error(e: &OfError, raw: &[u8]) -> Message10 {
    Message10::Error(openflow::of10::error::error_msg(e.ty, e.code, raw))
}

fn request(st: &mut State, msg: Message10, br: &Bridge) -> Result<Vec<Message10>, OfError> {
    use Message10 as M;
    Ok(match msg {
        M::EchoRequest(p) => vec![M::EchoReply(p)],
        M::EchoReply(_) | M::BarrierReply | M::Error(_) | M::Hello(_) => vec![],
        M::FeaturesRequest => vec![M::FeaturesReply(features(br))],
        M::GetConfigRequest => vec![M::GetConfigReply(br.config())],
        M::SetConfig(c) => {
            crate::conn::set_config(br, c)?;
            vec![]
        }
        M::BarrierRequest => vec![M::BarrierReply],
        M::FlowMod(fm) => {
            of10_flow::flow_mod(br, st, fm.matching.to_oxm(), &fm.fields)?;
            vec![]
        }
        M::Vendor(v) => vendor(st, v, br)?,
        M::PacketOut(po) => {
            packet_out(br, po)?;
            vec![]
        }
        M::StatsRequest(r) => stats(br, r)?.into_iter().map(M::StatsReply).collect(),
        other => {
            return Err(OfError::request(
                error_msg::bad_request::BAD_TYPE,
                format!(
                    "OpenFlow 1.0 message type {} is not supported",
                    other.msg_type()
                ),
            ))
        }
    })
}

fn vendor(st: &mut State, v: Vendor, br: &Bridge) -> Result<Vec<Message10>, OfError> {
    match v {
        Vendor::SetFlowFormat(f @ (flow_format::OPENFLOW10 | flow_format::NXM)) => {
            st.flow_format = f
        }
        Vendor::SetFlowFormat(f) => {
            return Err(OfError::request(
                error_msg::bad_request::EPERM,
                format!("flow format {f}"),
            ))
        }
        Vendor::FlowModTableId(on) => st.table_id_ext = on,
        Vendor::SetPacketInFormat(_) => {}
        Vendor::FlowMod(nx) => {
            let fields = nxm::list_to_oxm(&nx.matching).map_err(|e| {
                let (ty, code) = e.of_error();
                OfError::new(ty, code, e.to_string())
            })?;
            of10_flow::flow_mod(br, st, fields, &nx.fields)?;
        }
        Vendor::Nicira { subtype, .. } => {
            return Err(OfError::request(
                error_msg::bad_request::BAD_EXP_TYPE,
                format!("Nicira message subtype {subtype} is not supported"),
            ))
        }
        Vendor::Other { vendor, .. } => {
            return Err(OfError::request(
                error_msg::bad_request::BAD_EXPERIMENTER,
                format!("vendor {vendor:#x}"),
            ))
        }
    }
    Ok(vec![])
}

/// OFPT_PACKET_OUT (1.0 §5.3.6): the frame with 1.0 actions, or through
/// the tables for a lone output to OFPP_TABLE (as the 1.3 handler).
fn packet_out(br: &Bridge, po: PacketOut10) -> Result<(), OfError> {
    if po.buffer_id != NO_BUFFER {
        return Err(OfError::request(
            error_msg::bad_request::BUFFER_UNKNOWN,
            "this switch buffers no packets",
        ));
    }
    let map = br.port_map();
    let in_port = match po.in_port {
        port_no::CONTROLLER | port_no::NONE => None,
        p => Some(map.to_switch(port_to_32(p)).ok_or_else(|| {
            OfError::request(error_msg::bad_request::BAD_PORT, format!("in_port {p:#x}"))
        })?),
    };
    let table = matches!(
        po.actions.as_slice(),
        [Action10::Output {
            port: port_no::TABLE,
            ..
        }]
    );
    let actions = if table {
        None
    } else {
        Some(of10_flow::list_to_switch(&po.actions, &map)?)
    };
    crate::packet_out::send(br, in_port, actions, po.data)
}

/// The 1.0 FEATURES_REPLY: OpenFlow 1.0 lists the ports in it
/// (`ovs-ofctl show` prints them).
fn features(br: &Bridge) -> FeaturesReply10 {
    let map = br.port_map();
    let ports = br
        .ports()
        .iter()
        .filter_map(|p| {
            let no = port_to_16(map.to_openflow(p.no))?;
            let speed = speed_bits(p.speed_mbps);
            Some(PhyPort {
                port_no: no,
                hw_addr: p.mac,
                name: p.name.clone(),
                config: 0,
                // OFPPS_LINK_DOWN.
                state: u32::from(!p.link_up),
                curr: speed,
                advertised: 0,
                supported: speed,
                peer: 0,
            })
        })
        .collect();
    FeaturesReply10 {
        datapath_id: br.datapath_id(),
        n_buffers: 0,
        n_tables: N_TABLES,
        // FLOW_STATS | TABLE_STATS | PORT_STATS | ARP_MATCH_IP.
        capabilities: 1 | 2 | 4 | 0x80,
        // OUTPUT .. SET_TP_DST (not ENQUEUE).
        actions: (1 << 11) - 1,
        ports,
    }
}

/// One 1.3 multipart reply body (the handler's single reply).
fn mp(br: &Bridge, body: Q) -> Result<Vec<R>, OfError> {
    Ok(multipart::handle(br, &MultipartRequest { flags: 0, body })?
        .into_iter()
        .map(|r| r.body)
        .collect())
}

fn one(body: StatsReplyBody10) -> Vec<StatsReply10> {
    vec![StatsReply10 { flags: 0, body }]
}

fn stats(br: &Bridge, r: StatsRequest10) -> Result<Vec<StatsReply10>, OfError> {
    Ok(match r {
        StatsRequest10::Desc => match mp(br, Q::Desc)?.pop() {
            Some(R::Desc(d)) => one(StatsReplyBody10::Desc(d)),
            _ => vec![],
        },
        StatsRequest10::Table => {
            let mut t = Vec::new();
            for body in mp(br, Q::Table)? {
                if let R::Table(v) = body {
                    t.extend(v.into_iter().map(|s| TableStats10 {
                        table_id: s.table_id,
                        name: String::new(),
                        wildcards: wildcards::ALL,
                        max_entries: 1_000_000,
                        active_count: s.active_count,
                        lookup_count: s.lookup_count,
                        matched_count: s.matched_count,
                    }));
                }
            }
            one(StatsReplyBody10::Table(t))
        }
        StatsRequest10::Port(p) => {
            let mut out = Vec::new();
            for body in mp(
                br,
                Q::PortStats {
                    port_no: port_to_32(p),
                },
            )? {
                if let R::PortStats(v) = body {
                    out.extend(v.into_iter().filter_map(|s| {
                        Some(PortStats10 {
                            port_no: port_to_16(s.port_no)?,
                            rx_packets: s.rx_packets,
                            tx_packets: s.tx_packets,
                            rx_bytes: s.rx_bytes,
                            tx_bytes: s.tx_bytes,
                            rx_dropped: s.rx_dropped,
                            tx_dropped: s.tx_dropped,
                            rx_errors: s.rx_errors,
                            tx_errors: s.tx_errors,
                            rx_frame_err: s.rx_frame_err,
                            rx_over_err: s.rx_over_err,
                            rx_crc_err: s.rx_crc_err,
                            collisions: s.collisions,
                        })
                    }));
                }
            }
            one(StatsReplyBody10::Port(out))
        }
        StatsRequest10::NxFlow(q) => {
            let fields = nx_fields(&q.matching)?;
            let flows = of10_flow::flow_stats(br, q.table_id, fields, q.out_port)?;
            chunked(flows, NxFlowStats::buffer_len, StatsReplyBody10::NxFlow)
        }
        StatsRequest10::NxAggregate(q) => {
            let fields = nx_fields(&q.matching)?;
            let flows = of10_flow::flow_stats(br, q.table_id, fields, q.out_port)?;
            one(StatsReplyBody10::NxAggregate(aggregate(&flows)))
        }
        StatsRequest10::Aggregate(q) => {
            let flows = of10_flow::flow_stats(br, q.table_id, q.matching.to_oxm(), q.out_port)?;
            one(StatsReplyBody10::Aggregate(aggregate(&flows)))
        }
        StatsRequest10::Flow(q) => {
            // OpenFlow 1.0's own flow statistics (`ovs-ofctl -F openflow10`,
            // 1.0 controllers): the match as ofp10_match, as OVS encodes it.
            let flows = of10_flow::flow_stats(br, q.table_id, q.matching.to_oxm(), q.out_port)?;
            let flows = flows
                .into_iter()
                .map(|f| FlowStats10 {
                    table_id: f.table_id,
                    matching: Match10::from_oxm(&nxm::list_to_oxm(&f.matching).unwrap_or_default()),
                    duration_sec: f.duration_sec,
                    duration_nsec: f.duration_nsec,
                    priority: f.priority,
                    idle_timeout: f.idle_timeout,
                    hard_timeout: f.hard_timeout,
                    cookie: f.cookie,
                    packet_count: f.packet_count,
                    byte_count: f.byte_count,
                    actions: f.actions,
                })
                .collect();
            chunked(flows, FlowStats10::buffer_len, StatsReplyBody10::Flow)
        }
        StatsRequest10::Other { stats_type, .. } => {
            return Err(OfError::new(
                ErrorType::BadRequest,
                error_msg::bad_request::BAD_MULTIPART,
                format!("statistics type {stats_type:#x}"),
            ))
        }
    })
}

fn nx_fields(m: &[openflow::OxmField]) -> Result<Vec<openflow::OxmField>, OfError> {
    nxm::list_to_oxm(m).map_err(|e| {
        let (ty, code) = e.of_error();
        OfError::new(ty, code, e.to_string())
    })
}

fn aggregate(flows: &[NxFlowStats]) -> Aggregate10 {
    Aggregate10 {
        packet_count: flows.iter().map(|f| f.packet_count).sum(),
        byte_count: flows.iter().map(|f| f.byte_count).sum(),
        flow_count: flows.len() as u32,
    }
}

/// Flow statistics replies of at most 64 KiB (all but the last flagged
/// OFPSF_REPLY_MORE).
fn chunked<T>(
    flows: Vec<T>,
    len: impl Fn(&T) -> usize,
    wrap: impl Fn(Vec<T>) -> StatsReplyBody10,
) -> Vec<StatsReply10> {
    const BUDGET: usize = openflow::MAX_MESSAGE_LEN - 64;
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    let mut used = 0;
    for f in flows {
        let n = len(&f);
        if used + n > BUDGET && !out.last().is_some_and(Vec::is_empty) {
            out.push(Vec::new());
            used = 0;
        }
        used += n;
        out.last_mut().expect("one chunk").push(f);
    }
    let last = out.len() - 1;
    out.into_iter()
        .enumerate()
        .map(|(i, v)| StatsReply10 {
            flags: if i < last { REPLY_MORE } else { 0 },
            body: wrap(v),
        })
        .collect()
}
