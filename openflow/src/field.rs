//! Every field offset this crate uses, one sub-module per wire structure. Message
//! offsets count from the first byte of the ofp_header (as the spec's C structures
//! do); nested structures (ports, buckets, stats entries, TLVs) count from their own
//! first byte. `LEN` is the fixed part of each structure.
#![allow(missing_docs)]

use core::ops::Range;

/// A byte range of a structure.
pub type Field = Range<usize>;

/// ofp_header (spec section 7.1).
pub mod header {
    use super::Field;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const XID: Field = 4..8;
    pub const LEN: usize = 8;
}

/// ofp_hello_elem_header and the version bitmap element (section 7.5.1).
pub mod hello_elem {
    use super::Field;
    pub const TYPE: Field = 0..2;
    pub const LENGTH: Field = 2..4;
    pub const LEN: usize = 4;
}

/// ofp_error_msg and ofp_error_experimenter_msg (section 7.4.4).
pub mod error_msg {
    use super::Field;
    pub const TYPE: Field = 8..10;
    pub const CODE: Field = 10..12;
    pub const DATA: usize = 12;
    pub const EXP_TYPE: Field = 10..12;
    pub const EXPERIMENTER: Field = 12..16;
    pub const EXP_DATA: usize = 16;
    pub const LEN: usize = 12;
    pub const EXP_LEN: usize = 16;
}

/// ofp_experimenter_header (section 7.5.4).
pub mod experimenter {
    use super::Field;
    pub const EXPERIMENTER: Field = 8..12;
    pub const EXP_TYPE: Field = 12..16;
    pub const DATA: usize = 16;
    pub const LEN: usize = 16;
}

/// ofp_switch_features (section 7.3.1).
pub mod features {
    use super::Field;
    pub const DATAPATH_ID: Field = 8..16;
    pub const N_BUFFERS: Field = 16..20;
    pub const N_TABLES: usize = 20;
    pub const AUXILIARY_ID: usize = 21;
    pub const CAPABILITIES: Field = 24..28;
    pub const RESERVED: Field = 28..32;
    pub const LEN: usize = 32;
}

/// ofp_switch_config (section 7.3.2).
pub mod switch_config {
    use super::Field;
    pub const FLAGS: Field = 8..10;
    pub const MISS_SEND_LEN: Field = 10..12;
    pub const LEN: usize = 12;
}

/// ofp_table_mod (section 7.3.3).
pub mod table_mod {
    use super::Field;
    pub const TABLE_ID: usize = 8;
    pub const CONFIG: Field = 12..16;
    pub const LEN: usize = 16;
}

/// ofp_flow_mod (section 7.3.4.1); the match starts at `MATCH`.
pub mod flow_mod {
    use super::Field;
    pub const COOKIE: Field = 8..16;
    pub const COOKIE_MASK: Field = 16..24;
    pub const TABLE_ID: usize = 24;
    pub const COMMAND: usize = 25;
    pub const IDLE_TIMEOUT: Field = 26..28;
    pub const HARD_TIMEOUT: Field = 28..30;
    pub const PRIORITY: Field = 30..32;
    pub const BUFFER_ID: Field = 32..36;
    pub const OUT_PORT: Field = 36..40;
    pub const OUT_GROUP: Field = 40..44;
    pub const FLAGS: Field = 44..46;
    pub const MATCH: usize = 48;
    pub const LEN: usize = 48;
}

/// ofp_group_mod (section 7.3.4.2).
pub mod group_mod {
    use super::Field;
    pub const COMMAND: Field = 8..10;
    pub const TYPE: usize = 10;
    pub const GROUP_ID: Field = 12..16;
    pub const BUCKETS: usize = 16;
    pub const LEN: usize = 16;
}

/// ofp_bucket (section 7.3.4.2).
pub mod bucket {
    use super::Field;
    pub const LENGTH: Field = 0..2;
    pub const WEIGHT: Field = 2..4;
    pub const WATCH_PORT: Field = 4..8;
    pub const WATCH_GROUP: Field = 8..12;
    pub const ACTIONS: usize = 16;
    pub const LEN: usize = 16;
}

/// ofp_port_mod (section 7.3.4.3).
pub mod port_mod {
    use super::Field;
    pub const PORT_NO: Field = 8..12;
    pub const HW_ADDR: Field = 16..22;
    pub const CONFIG: Field = 24..28;
    pub const MASK: Field = 28..32;
    pub const ADVERTISE: Field = 32..36;
    pub const LEN: usize = 40;
}

/// ofp_port (section 7.2.1).
pub mod port {
    use super::Field;
    pub const PORT_NO: Field = 0..4;
    pub const HW_ADDR: Field = 8..14;
    pub const NAME: Field = 16..32;
    pub const CONFIG: Field = 32..36;
    pub const STATE: Field = 36..40;
    pub const CURR: Field = 40..44;
    pub const ADVERTISED: Field = 44..48;
    pub const SUPPORTED: Field = 48..52;
    pub const PEER: Field = 52..56;
    pub const CURR_SPEED: Field = 56..60;
    pub const MAX_SPEED: Field = 60..64;
    pub const LEN: usize = 64;
}

/// ofp_port_status (section 7.4.3).
pub mod port_status {
    pub const REASON: usize = 8;
    pub const DESC: usize = 16;
    pub const LEN: usize = 80;
}

/// ofp_packet_in (section 7.4.1); match at `MATCH`, then 2 pad bytes, then data.
pub mod packet_in {
    use super::Field;
    pub const BUFFER_ID: Field = 8..12;
    pub const TOTAL_LEN: Field = 12..14;
    pub const REASON: usize = 14;
    pub const TABLE_ID: usize = 15;
    pub const COOKIE: Field = 16..24;
    pub const MATCH: usize = 24;
    pub const LEN: usize = 24;
    pub const DATA_PAD: usize = 2;
}

/// ofp_flow_removed (section 7.4.2).
pub mod flow_removed {
    use super::Field;
    pub const COOKIE: Field = 8..16;
    pub const PRIORITY: Field = 16..18;
    pub const REASON: usize = 18;
    pub const TABLE_ID: usize = 19;
    pub const DURATION_SEC: Field = 20..24;
    pub const DURATION_NSEC: Field = 24..28;
    pub const IDLE_TIMEOUT: Field = 28..30;
    pub const HARD_TIMEOUT: Field = 30..32;
    pub const PACKET_COUNT: Field = 32..40;
    pub const BYTE_COUNT: Field = 40..48;
    pub const MATCH: usize = 48;
    pub const LEN: usize = 48;
}

/// ofp_packet_out (section 7.3.7).
pub mod packet_out {
    use super::Field;
    pub const BUFFER_ID: Field = 8..12;
    pub const IN_PORT: Field = 12..16;
    pub const ACTIONS_LEN: Field = 16..18;
    pub const ACTIONS: usize = 24;
    pub const LEN: usize = 24;
}

/// ofp_role_request (section 7.3.9).
pub mod role {
    use super::Field;
    pub const ROLE: Field = 8..12;
    pub const GENERATION_ID: Field = 16..24;
    pub const LEN: usize = 24;
}

/// ofp_async_config (section 7.3.10).
pub mod async_config {
    use super::Field;
    pub const PACKET_IN_MASK: [Field; 2] = [8..12, 12..16];
    pub const PORT_STATUS_MASK: [Field; 2] = [16..20, 20..24];
    pub const FLOW_REMOVED_MASK: [Field; 2] = [24..28, 28..32];
    pub const LEN: usize = 32;
}

/// ofp_multipart_request / ofp_multipart_reply (section 7.3.5).
pub mod multipart {
    use super::Field;
    pub const TYPE: Field = 8..10;
    pub const FLAGS: Field = 10..12;
    pub const BODY: usize = 16;
    pub const LEN: usize = 16;
}

/// ofp_flow_stats_request / ofp_aggregate_stats_request (sections 7.3.5.2, 7.3.5.3),
/// from the start of the multipart body.
pub mod flow_stats_request {
    use super::Field;
    pub const TABLE_ID: usize = 0;
    pub const OUT_PORT: Field = 4..8;
    pub const OUT_GROUP: Field = 8..12;
    pub const COOKIE: Field = 16..24;
    pub const COOKIE_MASK: Field = 24..32;
    pub const MATCH: usize = 32;
    pub const LEN: usize = 32;
}

/// ofp_flow_stats (section 7.3.5.2).
pub mod flow_stats {
    use super::Field;
    pub const LENGTH: Field = 0..2;
    pub const TABLE_ID: usize = 2;
    pub const DURATION_SEC: Field = 4..8;
    pub const DURATION_NSEC: Field = 8..12;
    pub const PRIORITY: Field = 12..14;
    pub const IDLE_TIMEOUT: Field = 14..16;
    pub const HARD_TIMEOUT: Field = 16..18;
    pub const FLAGS: Field = 18..20;
    pub const COOKIE: Field = 24..32;
    pub const PACKET_COUNT: Field = 32..40;
    pub const BYTE_COUNT: Field = 40..48;
    pub const MATCH: usize = 48;
    pub const LEN: usize = 48;
}

/// ofp_aggregate_stats_reply (section 7.3.5.3).
pub mod aggregate_stats {
    use super::Field;
    pub const PACKET_COUNT: Field = 0..8;
    pub const BYTE_COUNT: Field = 8..16;
    pub const FLOW_COUNT: Field = 16..20;
    pub const LEN: usize = 24;
}

/// ofp_table_stats (section 7.3.5.4).
pub mod table_stats {
    use super::Field;
    pub const TABLE_ID: usize = 0;
    pub const ACTIVE_COUNT: Field = 4..8;
    pub const LOOKUP_COUNT: Field = 8..16;
    pub const MATCHED_COUNT: Field = 16..24;
    pub const LEN: usize = 24;
}

/// ofp_port_stats_request and ofp_group_stats_request (a 32-bit id and 4 pad bytes).
pub mod id_request {
    use super::Field;
    pub const ID: Field = 0..4;
    pub const LEN: usize = 8;
}

/// ofp_port_stats (section 7.3.5.6).
pub mod port_stats {
    use super::Field;
    pub const PORT_NO: Field = 0..4;
    /// The twelve 64-bit counters, rx_packets first.
    pub const COUNTERS: usize = 8;
    pub const DURATION_SEC: Field = 104..108;
    pub const DURATION_NSEC: Field = 108..112;
    pub const LEN: usize = 112;
}

/// ofp_desc (section 7.3.5.1).
pub mod desc {
    use super::Field;
    pub const MFR_DESC: Field = 0..256;
    pub const HW_DESC: Field = 256..512;
    pub const SW_DESC: Field = 512..768;
    pub const SERIAL_NUM: Field = 768..800;
    pub const DP_DESC: Field = 800..1056;
    pub const LEN: usize = 1056;
}

/// ofp_group_stats (section 7.3.5.9) and ofp_bucket_counter.
pub mod group_stats {
    use super::Field;
    pub const LENGTH: Field = 0..2;
    pub const GROUP_ID: Field = 4..8;
    pub const REF_COUNT: Field = 8..12;
    pub const PACKET_COUNT: Field = 16..24;
    pub const BYTE_COUNT: Field = 24..32;
    pub const DURATION_SEC: Field = 32..36;
    pub const DURATION_NSEC: Field = 36..40;
    pub const BUCKET_STATS: usize = 40;
    pub const LEN: usize = 40;
    pub const BUCKET_COUNTER_LEN: usize = 16;
}

/// ofp_group_desc (section 7.3.5.10).
pub mod group_desc {
    use super::Field;
    pub const LENGTH: Field = 0..2;
    pub const TYPE: usize = 2;
    pub const GROUP_ID: Field = 4..8;
    pub const BUCKETS: usize = 8;
    pub const LEN: usize = 8;
}

/// ofp_group_features (section 7.3.5.11).
pub mod group_features {
    use super::Field;
    pub const TYPES: Field = 0..4;
    pub const CAPABILITIES: Field = 4..8;
    pub const MAX_GROUPS: usize = 8;
    pub const ACTIONS: usize = 24;
    pub const LEN: usize = 40;
}

/// ofp_meter_features (section 7.3.5.14).
pub mod meter_features {
    use super::Field;
    pub const MAX_METER: Field = 0..4;
    pub const BAND_TYPES: Field = 4..8;
    pub const CAPABILITIES: Field = 8..12;
    pub const MAX_BANDS: usize = 12;
    pub const MAX_COLOR: usize = 13;
    pub const LEN: usize = 16;
}

/// ofp_match (section 7.2.3.1): type, length, then OXM TLVs, padded to 8.
pub mod matching {
    use super::Field;
    pub const TYPE: Field = 0..2;
    pub const LENGTH: Field = 2..4;
    pub const OXM: usize = 4;
    pub const LEN: usize = 4;
}

/// OXM TLV header (section 7.2.3.2): class, field and hasmask, payload length.
pub mod oxm {
    use super::Field;
    pub const CLASS: Field = 0..2;
    pub const FIELD_HASMASK: usize = 2;
    pub const LENGTH: usize = 3;
    pub const PAYLOAD: usize = 4;
    pub const LEN: usize = 4;
    /// For class 0xffff: the experimenter id leads the payload.
    pub const EXPERIMENTER: Field = 4..8;
}

/// ofp_action_header and the fixed actions (section 7.2.5).
pub mod action {
    use super::Field;
    pub const TYPE: Field = 0..2;
    pub const LENGTH: Field = 2..4;
    pub const LEN: usize = 8;
    /// OUTPUT: port and max_len.
    pub const OUTPUT_PORT: Field = 4..8;
    pub const OUTPUT_MAX_LEN: Field = 8..10;
    pub const OUTPUT_LEN: usize = 16;
    /// GROUP, SET_QUEUE: a 32-bit id.
    pub const ID: Field = 4..8;
    /// SET_MPLS_TTL, SET_NW_TTL: a TTL byte.
    pub const TTL: usize = 4;
    /// PUSH_VLAN / PUSH_MPLS / PUSH_PBB / POP_MPLS: an ethertype.
    pub const ETHERTYPE: Field = 4..6;
    /// SET_FIELD: the OXM TLV.
    pub const SET_FIELD_OXM: usize = 4;
    /// EXPERIMENTER: experimenter id, then data.
    pub const EXPERIMENTER: Field = 4..8;
    pub const EXPERIMENTER_DATA: usize = 8;
}

/// Nicira experimenter actions (OVS include/openflow/nicira-ext.h), from the start of
/// the action.
pub mod nx_action {
    use super::Field;
    pub const SUBTYPE: Field = 8..10;
    pub const BODY: usize = 10;
    pub const LEN: usize = 16;
    /// NXAST_RESUBMIT / NXAST_RESUBMIT_TABLE.
    pub const RESUBMIT_IN_PORT: Field = 10..12;
    pub const RESUBMIT_TABLE: usize = 12;
    /// NXAST_SET_TUNNEL (32-bit id after 2 pad bytes).
    pub const SET_TUNNEL_ID: Field = 12..16;
    /// NXAST_SET_TUNNEL64 (64-bit id after 6 pad bytes).
    pub const SET_TUNNEL64_ID: Field = 16..24;
    pub const SET_TUNNEL64_LEN: usize = 24;
    /// NXAST_CT.
    pub const CT_FLAGS: Field = 10..12;
    pub const CT_ZONE_SRC: Field = 12..16;
    pub const CT_ZONE: Field = 16..18;
    pub const CT_RECIRC_TABLE: usize = 18;
    pub const CT_ALG: Field = 22..24;
    pub const CT_ACTIONS: usize = 24;
    pub const CT_LEN: usize = 24;
    /// NXAST_NAT (2 pad bytes after the subtype), then the ranges
    /// `range_present` announces.
    pub const NAT_FLAGS: Field = 12..14;
    pub const NAT_RANGE_PRESENT: Field = 14..16;
    pub const NAT_RANGE: usize = 16;
    pub const NAT_LEN: usize = 16;
    /// NXAST_REG_LOAD.
    pub const REG_LOAD_OFS_NBITS: Field = 10..12;
    pub const REG_LOAD_DST: Field = 12..16;
    pub const REG_LOAD_VALUE: Field = 16..24;
    pub const REG_LOAD_LEN: usize = 24;
    /// NXAST_REG_MOVE (`struct nx_action_reg_move`, 4-byte NXM/OXM headers).
    pub const REG_MOVE_N_BITS: Field = 10..12;
    pub const REG_MOVE_SRC_OFS: Field = 12..14;
    pub const REG_MOVE_DST_OFS: Field = 14..16;
    pub const REG_MOVE_SRC: Field = 16..20;
    pub const REG_MOVE_DST: Field = 20..24;
    pub const REG_MOVE_LEN: usize = 24;
}

/// ofp_instruction and the instructions (section 7.2.4).
pub mod instruction {
    use super::Field;
    pub const TYPE: Field = 0..2;
    pub const LENGTH: Field = 2..4;
    pub const LEN: usize = 8;
    pub const GOTO_TABLE_ID: usize = 4;
    pub const METADATA: Field = 8..16;
    pub const METADATA_MASK: Field = 16..24;
    pub const WRITE_METADATA_LEN: usize = 24;
    pub const ACTIONS: usize = 8;
    pub const METER_ID: Field = 4..8;
    pub const EXPERIMENTER: Field = 4..8;
    pub const EXPERIMENTER_DATA: usize = 8;
}

/// ofp_table_features (section 7.3.5.5.1).
pub mod table_features {
    use super::Field;
    pub const LENGTH: Field = 0..2;
    pub const TABLE_ID: usize = 2;
    pub const NAME: Field = 8..40;
    pub const METADATA_MATCH: Field = 40..48;
    pub const METADATA_WRITE: Field = 48..56;
    pub const CONFIG: Field = 56..60;
    pub const MAX_ENTRIES: Field = 60..64;
    pub const PROPERTIES: usize = 64;
    pub const LEN: usize = 64;
}

/// ofp_meter_mod (section 7.3.4.4) and ofp_meter_band_* (section 7.3.4.4).
pub mod meter_mod {
    use super::Field;
    pub const COMMAND: Field = 8..10;
    pub const FLAGS: Field = 10..12;
    pub const METER_ID: Field = 12..16;
    pub const BANDS: usize = 16;
    pub const LEN: usize = 16;
    pub const BAND_TYPE: Field = 0..2;
    pub const BAND_LEN: Field = 2..4;
    pub const BAND_RATE: Field = 4..8;
    pub const BAND_BURST: Field = 8..12;
    pub const BAND_PREC_LEVEL: usize = 12;
    pub const BAND_EXPERIMENTER: Field = 12..16;
    pub const BAND_SIZE: usize = 16;
}
