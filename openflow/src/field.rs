//! Every field offset this crate uses, one sub-module per wire structure. Message
//! offsets count from the first byte of the ofp_header (as the spec's C structures
//! do); nested structures (ports, buckets, stats entries, TLVs) count from their own
//! first byte. `LEN` is the fixed part of each structure.

use core::ops::Range;

/// A byte range of a structure.
pub type Field = Range<usize>;

/// ofp_header (spec section 7.1).
pub mod header {
    use super::Field;
    /// `version`: the protocol version byte (0x04 for OpenFlow 1.3).
    pub const VERSION: usize = 0;
    /// `type`: the message type ([`crate::MsgType`]).
    pub const TYPE: usize = 1;
    /// `length`: the whole message's length in bytes, this header included.
    pub const LENGTH: Field = 2..4;
    /// `xid`: transaction id; a reply carries its request's.
    pub const XID: Field = 4..8;
    /// Size of `ofp_header`: 8 bytes.
    pub const LEN: usize = 8;
}

/// ofp_hello_elem_header and the version bitmap element (section 7.5.1).
pub mod hello_elem {
    use super::Field;
    /// `type`: OFPHET_* element type (1: OFPHET_VERSIONBITMAP).
    pub const TYPE: Field = 0..2;
    /// `length`: the element's length in bytes without its padding to 8.
    pub const LENGTH: Field = 2..4;
    /// Size of `ofp_hello_elem_header`: 4 bytes.
    pub const LEN: usize = 4;
}

/// ofp_error_msg and ofp_error_experimenter_msg (section 7.4.4).
pub mod error_msg {
    use super::Field;
    /// `type`: OFPET_* error type.
    pub const TYPE: Field = 8..10;
    /// `code`: the error code within the type.
    pub const CODE: Field = 10..12;
    /// Start of `data`: the offending request's first bytes (or ASCII text).
    pub const DATA: usize = 12;
    /// `exp_type` of an experimenter error (where `code` is otherwise).
    pub const EXP_TYPE: Field = 10..12;
    /// `experimenter` id of an experimenter error.
    pub const EXPERIMENTER: Field = 12..16;
    /// Start of an experimenter error's `data`.
    pub const EXP_DATA: usize = 16;
    /// Size of `ofp_error_msg` without data: 12 bytes.
    pub const LEN: usize = 12;
    /// Size of `ofp_error_experimenter_msg` without data: 16 bytes.
    pub const EXP_LEN: usize = 16;
}

/// ofp_experimenter_header (section 7.5.4).
pub mod experimenter {
    use super::Field;
    /// `experimenter` id (0x00002320 for Nicira).
    pub const EXPERIMENTER: Field = 8..12;
    /// `exp_type`: the experimenter-defined message type.
    pub const EXP_TYPE: Field = 12..16;
    /// Start of the experimenter-defined body.
    pub const DATA: usize = 16;
    /// Size of `ofp_experimenter_header`: 16 bytes.
    pub const LEN: usize = 16;
}

/// ofp_switch_features (section 7.3.1).
pub mod features {
    use super::Field;
    /// `datapath_id`: lower 48 bits a MAC address, upper 16 implementer-defined.
    pub const DATAPATH_ID: Field = 8..16;
    /// `n_buffers`: packets the switch can buffer at once.
    pub const N_BUFFERS: Field = 16..20;
    /// `n_tables`: number of flow tables.
    pub const N_TABLES: usize = 20;
    /// `auxiliary_id`: 0 for the main connection.
    pub const AUXILIARY_ID: usize = 21;
    /// `capabilities`: OFPC_* bits ([`crate::features::capabilities`]).
    pub const CAPABILITIES: Field = 24..28;
    /// `reserved`: must be zero.
    pub const RESERVED: Field = 28..32;
    /// Size of `ofp_switch_features`: 32 bytes.
    pub const LEN: usize = 32;
}

/// ofp_switch_config (section 7.3.2).
pub mod switch_config {
    use super::Field;
    /// `flags`: OFPC_FRAG_* handling of IP fragments.
    pub const FLAGS: Field = 8..10;
    /// `miss_send_len`: bytes of a table-miss packet sent to the controller.
    pub const MISS_SEND_LEN: Field = 10..12;
    /// Size of `ofp_switch_config`: 12 bytes.
    pub const LEN: usize = 12;
}

/// ofp_table_mod (section 7.3.3).
pub mod table_mod {
    use super::Field;
    /// `table_id` (0xff: all tables).
    pub const TABLE_ID: usize = 8;
    /// `config`: OFPTC_* bits.
    pub const CONFIG: Field = 12..16;
    /// Size of `ofp_table_mod`: 16 bytes.
    pub const LEN: usize = 16;
}

/// ofp_flow_mod (section 7.3.4.1); the match starts at `MATCH`.
pub mod flow_mod {
    use super::Field;
    /// `cookie`: opaque controller-issued identifier.
    pub const COOKIE: Field = 8..16;
    /// `cookie_mask`: bits of `cookie` that must match (MODIFY/DELETE).
    pub const COOKIE_MASK: Field = 16..24;
    /// `table_id` (0xff: all tables, DELETE only).
    pub const TABLE_ID: usize = 24;
    /// `command`: OFPFC_* (ADD, MODIFY, MODIFY_STRICT, DELETE, DELETE_STRICT).
    pub const COMMAND: usize = 25;
    /// `idle_timeout`: seconds without a hit before removal (0: none).
    pub const IDLE_TIMEOUT: Field = 26..28;
    /// `hard_timeout`: seconds before removal (0: none).
    pub const HARD_TIMEOUT: Field = 28..30;
    /// `priority`: higher wins among overlapping entries.
    pub const PRIORITY: Field = 30..32;
    /// `buffer_id`: a buffered packet to apply to, or OFP_NO_BUFFER.
    pub const BUFFER_ID: Field = 32..36;
    /// `out_port`: DELETE only matches entries that output here (OFPP_ANY: all).
    pub const OUT_PORT: Field = 36..40;
    /// `out_group`: DELETE only matches entries that use this group (OFPG_ANY: all).
    pub const OUT_GROUP: Field = 40..44;
    /// `flags`: OFPFF_* ([`crate::flow_mod::flags`]).
    pub const FLAGS: Field = 44..46;
    /// Start of the `ofp_match`.
    pub const MATCH: usize = 48;
    /// Size of `ofp_flow_mod` up to its match: 48 bytes.
    pub const LEN: usize = 48;
}

/// ofp_group_mod (section 7.3.4.2).
pub mod group_mod {
    use super::Field;
    /// `command`: OFPGC_* (ADD, MODIFY, DELETE).
    pub const COMMAND: Field = 8..10;
    /// `type`: OFPGT_* (ALL, SELECT, INDIRECT, FF).
    pub const TYPE: usize = 10;
    /// `group_id`.
    pub const GROUP_ID: Field = 12..16;
    /// Start of the bucket list.
    pub const BUCKETS: usize = 16;
    /// Size of `ofp_group_mod` without buckets: 16 bytes.
    pub const LEN: usize = 16;
}

/// ofp_bucket (section 7.3.4.2).
pub mod bucket {
    use super::Field;
    /// `len`: the bucket's length in bytes, its actions included.
    pub const LENGTH: Field = 0..2;
    /// `weight`: relative share of a SELECT group's traffic.
    pub const WEIGHT: Field = 2..4;
    /// `watch_port`: a fast-failover bucket is live while this port is.
    pub const WATCH_PORT: Field = 4..8;
    /// `watch_group`: a fast-failover bucket is live while this group is.
    pub const WATCH_GROUP: Field = 8..12;
    /// Start of the bucket's actions.
    pub const ACTIONS: usize = 16;
    /// Size of `ofp_bucket` without actions: 16 bytes.
    pub const LEN: usize = 16;
}

/// ofp_port_mod (section 7.3.4.3).
pub mod port_mod {
    use super::Field;
    /// `port_no`.
    pub const PORT_NO: Field = 8..12;
    /// `hw_addr`: must be the port's MAC address (a sanity check).
    pub const HW_ADDR: Field = 16..22;
    /// `config`: OFPPC_* bits to set.
    pub const CONFIG: Field = 24..28;
    /// `mask`: OFPPC_* bits of `config` to change.
    pub const MASK: Field = 28..32;
    /// `advertise`: OFPPF_* bits to advertise (0: unchanged).
    pub const ADVERTISE: Field = 32..36;
    /// Size of `ofp_port_mod`: 40 bytes.
    pub const LEN: usize = 40;
}

/// ofp_port (section 7.2.1).
pub mod port {
    use super::Field;
    /// `port_no`.
    pub const PORT_NO: Field = 0..4;
    /// `hw_addr`: the port's MAC address.
    pub const HW_ADDR: Field = 8..14;
    /// `name`: NUL-padded ASCII, 16 bytes.
    pub const NAME: Field = 16..32;
    /// `config`: OFPPC_* bits.
    pub const CONFIG: Field = 32..36;
    /// `state`: OFPPS_* bits.
    pub const STATE: Field = 36..40;
    /// `curr`: OFPPF_* bits of the current link.
    pub const CURR: Field = 40..44;
    /// `advertised`: OFPPF_* bits the port advertises.
    pub const ADVERTISED: Field = 44..48;
    /// `supported`: OFPPF_* bits the port supports.
    pub const SUPPORTED: Field = 48..52;
    /// `peer`: OFPPF_* bits the link partner advertises.
    pub const PEER: Field = 52..56;
    /// `curr_speed`: current bit rate in kbit/s.
    pub const CURR_SPEED: Field = 56..60;
    /// `max_speed`: maximum bit rate in kbit/s.
    pub const MAX_SPEED: Field = 60..64;
    /// Size of `ofp_port`: 64 bytes.
    pub const LEN: usize = 64;
}

/// ofp_port_status (section 7.4.3).
pub mod port_status {
    /// `reason`: OFPPR_* (ADD, DELETE, MODIFY).
    pub const REASON: usize = 8;
    /// Start of the `ofp_port` description.
    pub const DESC: usize = 16;
    /// Size of `ofp_port_status`: 80 bytes.
    pub const LEN: usize = 80;
}

/// ofp_packet_in (section 7.4.1); match at `MATCH`, then 2 pad bytes, then data.
pub mod packet_in {
    use super::Field;
    /// `buffer_id`: where the switch keeps the packet, or OFP_NO_BUFFER.
    pub const BUFFER_ID: Field = 8..12;
    /// `total_len`: the frame's full length in bytes.
    pub const TOTAL_LEN: Field = 12..14;
    /// `reason`: OFPR_* ([`crate::packet_in::reason`]).
    pub const REASON: usize = 14;
    /// `table_id`: the table that sent the packet.
    pub const TABLE_ID: usize = 15;
    /// `cookie`: the cookie of the flow entry that sent it.
    pub const COOKIE: Field = 16..24;
    /// Start of the `ofp_match` (the packet's pipeline fields).
    pub const MATCH: usize = 24;
    /// Size of `ofp_packet_in` up to its match: 24 bytes.
    pub const LEN: usize = 24;
    /// Pad bytes between the (8-aligned) match and the frame.
    pub const DATA_PAD: usize = 2;
}

/// ofp_flow_removed (section 7.4.2).
pub mod flow_removed {
    use super::Field;
    /// `cookie` of the removed entry.
    pub const COOKIE: Field = 8..16;
    /// `priority` of the removed entry.
    pub const PRIORITY: Field = 16..18;
    /// `reason`: OFPRR_* ([`crate::flow_removed::reason`]).
    pub const REASON: usize = 18;
    /// `table_id` the entry was in.
    pub const TABLE_ID: usize = 19;
    /// `duration_sec`: seconds the entry was installed.
    pub const DURATION_SEC: Field = 20..24;
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub const DURATION_NSEC: Field = 24..28;
    /// `idle_timeout` of the entry, in seconds.
    pub const IDLE_TIMEOUT: Field = 28..30;
    /// `hard_timeout` of the entry, in seconds.
    pub const HARD_TIMEOUT: Field = 30..32;
    /// `packet_count`: packets the entry matched.
    pub const PACKET_COUNT: Field = 32..40;
    /// `byte_count`: bytes the entry matched.
    pub const BYTE_COUNT: Field = 40..48;
    /// Start of the entry's `ofp_match`.
    pub const MATCH: usize = 48;
    /// Size of `ofp_flow_removed` up to its match: 48 bytes.
    pub const LEN: usize = 48;
}

/// ofp_packet_out (section 7.3.7).
pub mod packet_out {
    use super::Field;
    /// `buffer_id`: a buffered packet, or OFP_NO_BUFFER (the frame follows).
    pub const BUFFER_ID: Field = 8..12;
    /// `in_port`: the packet's ingress port (OFPP_CONTROLLER when none).
    pub const IN_PORT: Field = 12..16;
    /// `actions_len`: bytes of actions.
    pub const ACTIONS_LEN: Field = 16..18;
    /// Start of the actions; the frame follows them.
    pub const ACTIONS: usize = 24;
    /// Size of `ofp_packet_out` without actions: 24 bytes.
    pub const LEN: usize = 24;
}

/// ofp_role_request (section 7.3.9).
pub mod role {
    use super::Field;
    /// `role`: OFPCR_ROLE_* ([`crate::role::roles`]).
    pub const ROLE: Field = 8..12;
    /// `generation_id`: the master election generation.
    pub const GENERATION_ID: Field = 16..24;
    /// Size of `ofp_role_request`: 24 bytes.
    pub const LEN: usize = 24;
}

/// ofp_async_config (section 7.3.10).
pub mod async_config {
    use super::Field;
    /// `packet_in_mask[2]`: OFPR_* bits wanted as master/equal, then as slave.
    pub const PACKET_IN_MASK: [Field; 2] = [8..12, 12..16];
    /// `port_status_mask[2]`: OFPPR_* bits, master/equal then slave.
    pub const PORT_STATUS_MASK: [Field; 2] = [16..20, 20..24];
    /// `flow_removed_mask[2]`: OFPRR_* bits, master/equal then slave.
    pub const FLOW_REMOVED_MASK: [Field; 2] = [24..28, 28..32];
    /// Size of `ofp_async_config`: 32 bytes.
    pub const LEN: usize = 32;
}

/// ofp_multipart_request / ofp_multipart_reply (section 7.3.5).
pub mod multipart {
    use super::Field;
    /// `type`: OFPMP_* ([`crate::multipart::mp_type`]).
    pub const TYPE: Field = 8..10;
    /// `flags`: OFPMPF_REQ_MORE / OFPMPF_REPLY_MORE.
    pub const FLAGS: Field = 10..12;
    /// Start of the type's body.
    pub const BODY: usize = 16;
    /// Size of `ofp_multipart_request`/`_reply` without body: 16 bytes.
    pub const LEN: usize = 16;
}

/// ofp_flow_stats_request / ofp_aggregate_stats_request (sections 7.3.5.2, 7.3.5.3),
/// from the start of the multipart body.
pub mod flow_stats_request {
    use super::Field;
    /// `table_id` (0xff: all tables).
    pub const TABLE_ID: usize = 0;
    /// `out_port`: only entries that output here (OFPP_ANY: all).
    pub const OUT_PORT: Field = 4..8;
    /// `out_group`: only entries that use this group (OFPG_ANY: all).
    pub const OUT_GROUP: Field = 8..12;
    /// `cookie` the entries must have (under `cookie_mask`).
    pub const COOKIE: Field = 16..24;
    /// `cookie_mask`: bits of `cookie` that must match (0: any).
    pub const COOKIE_MASK: Field = 24..32;
    /// Start of the `ofp_match`.
    pub const MATCH: usize = 32;
    /// Size of the request up to its match: 32 bytes.
    pub const LEN: usize = 32;
}

/// ofp_flow_stats (section 7.3.5.2).
pub mod flow_stats {
    use super::Field;
    /// `length`: the entry's length in bytes, match and instructions included.
    pub const LENGTH: Field = 0..2;
    /// `table_id` the flow is in.
    pub const TABLE_ID: usize = 2;
    /// `duration_sec`: seconds the flow has been installed.
    pub const DURATION_SEC: Field = 4..8;
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub const DURATION_NSEC: Field = 8..12;
    /// `priority` of the flow.
    pub const PRIORITY: Field = 12..14;
    /// `idle_timeout` in seconds.
    pub const IDLE_TIMEOUT: Field = 14..16;
    /// `hard_timeout` in seconds.
    pub const HARD_TIMEOUT: Field = 16..18;
    /// `flags`: OFPFF_* of the flow.
    pub const FLAGS: Field = 18..20;
    /// `cookie` of the flow.
    pub const COOKIE: Field = 24..32;
    /// `packet_count`: packets the flow matched.
    pub const PACKET_COUNT: Field = 32..40;
    /// `byte_count`: bytes the flow matched.
    pub const BYTE_COUNT: Field = 40..48;
    /// Start of the `ofp_match`; the instructions follow it.
    pub const MATCH: usize = 48;
    /// Size of `ofp_flow_stats` up to its match: 48 bytes.
    pub const LEN: usize = 48;
}

/// ofp_aggregate_stats_reply (section 7.3.5.3).
pub mod aggregate_stats {
    use super::Field;
    /// `packet_count`: packets matched by all selected flows.
    pub const PACKET_COUNT: Field = 0..8;
    /// `byte_count`: bytes matched by all selected flows.
    pub const BYTE_COUNT: Field = 8..16;
    /// `flow_count`: number of selected flows.
    pub const FLOW_COUNT: Field = 16..20;
    /// Size of `ofp_aggregate_stats_reply`: 24 bytes.
    pub const LEN: usize = 24;
}

/// ofp_table_stats (section 7.3.5.4).
pub mod table_stats {
    use super::Field;
    /// `table_id`.
    pub const TABLE_ID: usize = 0;
    /// `active_count`: entries in the table.
    pub const ACTIVE_COUNT: Field = 4..8;
    /// `lookup_count`: packets looked up in the table.
    pub const LOOKUP_COUNT: Field = 8..16;
    /// `matched_count`: packets that hit an entry.
    pub const MATCHED_COUNT: Field = 16..24;
    /// Size of `ofp_table_stats`: 24 bytes.
    pub const LEN: usize = 24;
}

/// ofp_port_stats_request and ofp_group_stats_request (a 32-bit id and 4 pad bytes).
pub mod id_request {
    use super::Field;
    /// `port_no` or `group_id` (OFPP_ANY / OFPG_ALL: every one).
    pub const ID: Field = 0..4;
    /// Size of the request: 8 bytes.
    pub const LEN: usize = 8;
}

/// ofp_port_stats (section 7.3.5.6).
pub mod port_stats {
    use super::Field;
    /// `port_no`.
    pub const PORT_NO: Field = 0..4;
    /// The twelve 64-bit counters, rx_packets first.
    pub const COUNTERS: usize = 8;
    /// `duration_sec`: seconds the port has been alive.
    pub const DURATION_SEC: Field = 104..108;
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub const DURATION_NSEC: Field = 108..112;
    /// Size of `ofp_port_stats`: 112 bytes.
    pub const LEN: usize = 112;
}

/// ofp_desc (section 7.3.5.1).
pub mod desc {
    use super::Field;
    /// `mfr_desc`: manufacturer, NUL-padded ASCII (DESC_STR_LEN 256).
    pub const MFR_DESC: Field = 0..256;
    /// `hw_desc`: hardware description (256 bytes).
    pub const HW_DESC: Field = 256..512;
    /// `sw_desc`: software description (256 bytes).
    pub const SW_DESC: Field = 512..768;
    /// `serial_num`: serial number (SERIAL_NUM_LEN 32).
    pub const SERIAL_NUM: Field = 768..800;
    /// `dp_desc`: human-readable datapath description (256 bytes).
    pub const DP_DESC: Field = 800..1056;
    /// Size of `ofp_desc`: 1056 bytes.
    pub const LEN: usize = 1056;
}

/// ofp_group_stats (section 7.3.5.9) and ofp_bucket_counter.
pub mod group_stats {
    use super::Field;
    /// `length`: the entry's length in bytes, bucket counters included.
    pub const LENGTH: Field = 0..2;
    /// `group_id`.
    pub const GROUP_ID: Field = 4..8;
    /// `ref_count`: flows or groups that forward to this group.
    pub const REF_COUNT: Field = 8..12;
    /// `packet_count`: packets processed by the group.
    pub const PACKET_COUNT: Field = 16..24;
    /// `byte_count`: bytes processed by the group.
    pub const BYTE_COUNT: Field = 24..32;
    /// `duration_sec`: seconds the group has been alive.
    pub const DURATION_SEC: Field = 32..36;
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub const DURATION_NSEC: Field = 36..40;
    /// Start of the `ofp_bucket_counter` array.
    pub const BUCKET_STATS: usize = 40;
    /// Size of `ofp_group_stats` without bucket counters: 40 bytes.
    pub const LEN: usize = 40;
    /// Size of one `ofp_bucket_counter` (packet and byte count): 16 bytes.
    pub const BUCKET_COUNTER_LEN: usize = 16;
}

/// ofp_group_desc (section 7.3.5.10).
pub mod group_desc {
    use super::Field;
    /// `length`: the entry's length in bytes, buckets included.
    pub const LENGTH: Field = 0..2;
    /// `type`: OFPGT_*.
    pub const TYPE: usize = 2;
    /// `group_id`.
    pub const GROUP_ID: Field = 4..8;
    /// Start of the bucket list.
    pub const BUCKETS: usize = 8;
    /// Size of `ofp_group_desc` without buckets: 8 bytes.
    pub const LEN: usize = 8;
}

/// ofp_group_features (section 7.3.5.11).
pub mod group_features {
    use super::Field;
    /// `types`: bitmap of the OFPGT_* supported.
    pub const TYPES: Field = 0..4;
    /// `capabilities`: OFPGFC_* bits.
    pub const CAPABILITIES: Field = 4..8;
    /// Start of `max_groups[4]`: maximum groups of each type (32-bit each).
    pub const MAX_GROUPS: usize = 8;
    /// Start of `actions[4]`: bitmaps of the OFPAT_* each type supports.
    pub const ACTIONS: usize = 24;
    /// Size of `ofp_group_features`: 40 bytes.
    pub const LEN: usize = 40;
}

/// ofp_meter_features (section 7.3.5.14).
pub mod meter_features {
    use super::Field;
    /// `max_meter`: maximum number of meters.
    pub const MAX_METER: Field = 0..4;
    /// `band_types`: bitmap of the OFPMBT_* supported.
    pub const BAND_TYPES: Field = 4..8;
    /// `capabilities`: OFPMF_* bits.
    pub const CAPABILITIES: Field = 8..12;
    /// `max_bands`: maximum bands per meter.
    pub const MAX_BANDS: usize = 12;
    /// `max_color`: maximum color value.
    pub const MAX_COLOR: usize = 13;
    /// Size of `ofp_meter_features`: 16 bytes.
    pub const LEN: usize = 16;
}

/// ofp_match (section 7.2.3.1): type, length, then OXM TLVs, padded to 8.
pub mod matching {
    use super::Field;
    /// `type`: OFPMT_OXM (1).
    pub const TYPE: Field = 0..2;
    /// `length`: bytes of type, length and OXM TLVs, without the padding.
    pub const LENGTH: Field = 2..4;
    /// Start of the OXM TLVs.
    pub const OXM: usize = 4;
    /// Size of the match header: 4 bytes.
    pub const LEN: usize = 4;
}

/// OXM TLV header (section 7.2.3.2): class, field and hasmask, payload length.
pub mod oxm {
    use super::Field;
    /// `oxm_class` (0x8000: OpenFlow basic, 0x0000/0x0001: Nicira NXM, 0xffff: experimenter).
    pub const CLASS: Field = 0..2;
    /// `oxm_field` (7 bits) and `oxm_hasmask` (lowest bit).
    pub const FIELD_HASMASK: usize = 2;
    /// `oxm_length`: payload bytes (value and mask).
    pub const LENGTH: usize = 3;
    /// Start of the value (then the mask when `hasmask`).
    pub const PAYLOAD: usize = 4;
    /// Size of the OXM TLV header: 4 bytes.
    pub const LEN: usize = 4;
    /// For class 0xffff: the experimenter id leads the payload.
    pub const EXPERIMENTER: Field = 4..8;
}

/// ofp_action_header and the fixed actions (section 7.2.5).
pub mod action {
    use super::Field;
    /// `type`: OFPAT_* ([`crate::action::kind`]).
    pub const TYPE: Field = 0..2;
    /// `len`: the action's length in bytes, a multiple of 8.
    pub const LENGTH: Field = 2..4;
    /// Size of `ofp_action_header`: 8 bytes.
    pub const LEN: usize = 8;
    /// OUTPUT: port and max_len.
    pub const OUTPUT_PORT: Field = 4..8;
    /// `max_len`: bytes of the packet sent to the controller (OFPCML_NO_BUFFER: all).
    pub const OUTPUT_MAX_LEN: Field = 8..10;
    /// Size of `ofp_action_output`: 16 bytes.
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
    /// Start of the experimenter-defined body.
    pub const EXPERIMENTER_DATA: usize = 8;
}

/// Nicira experimenter actions (OVS include/openflow/nicira-ext.h), from the start of
/// the action.
pub mod nx_action {
    use super::Field;
    /// `subtype`: NXAST_* ([`crate::nicira::subtype`]).
    pub const SUBTYPE: Field = 8..10;
    /// Start of the subtype's fields.
    pub const BODY: usize = 10;
    /// Size of the shortest Nicira action (`nx_action_header`): 16 bytes.
    pub const LEN: usize = 16;
    /// NXAST_RESUBMIT / NXAST_RESUBMIT_TABLE.
    pub const RESUBMIT_IN_PORT: Field = 10..12;
    /// `table`: the table to resubmit to (255: the current one).
    pub const RESUBMIT_TABLE: usize = 12;
    /// NXAST_SET_TUNNEL (32-bit id after 2 pad bytes).
    pub const SET_TUNNEL_ID: Field = 12..16;
    /// NXAST_SET_TUNNEL64 (64-bit id after 6 pad bytes).
    pub const SET_TUNNEL64_ID: Field = 16..24;
    /// Size of `nx_action_set_tunnel64`: 24 bytes.
    pub const SET_TUNNEL64_LEN: usize = 24;
    /// NXAST_CT.
    pub const CT_FLAGS: Field = 10..12;
    /// `zone_src`: the NXM header of the field the zone comes from (0: `zone_imm`).
    pub const CT_ZONE_SRC: Field = 12..16;
    /// `zone_imm`, or `zone_ofs_nbits` when `zone_src` is set.
    pub const CT_ZONE: Field = 16..18;
    /// `recirc_table`: the table to continue in (255: none).
    pub const CT_RECIRC_TABLE: usize = 18;
    /// `alg`: the L7 helper's port (0: none).
    pub const CT_ALG: Field = 22..24;
    /// Start of the nested actions (`nat`, `set_field` of ct_mark/ct_label).
    pub const CT_ACTIONS: usize = 24;
    /// Size of `nx_action_conntrack` without nested actions: 24 bytes.
    pub const CT_LEN: usize = 24;
    /// NXAST_NAT (2 pad bytes after the subtype), then the ranges
    /// `range_present` announces.
    pub const NAT_FLAGS: Field = 12..14;
    /// `range_present`: NX_NAT_RANGE_* bits saying which ranges follow.
    pub const NAT_RANGE_PRESENT: Field = 14..16;
    /// Start of the ranges (IPv4 4 bytes or IPv6 16 bytes each, ports 2 bytes each).
    pub const NAT_RANGE: usize = 16;
    /// Size of `nx_action_nat` without ranges: 16 bytes.
    pub const NAT_LEN: usize = 16;
    /// NXAST_REG_LOAD.
    pub const REG_LOAD_OFS_NBITS: Field = 10..12;
    /// `dst`: the NXM header of the destination field.
    pub const REG_LOAD_DST: Field = 12..16;
    /// `value`: the value, right-aligned.
    pub const REG_LOAD_VALUE: Field = 16..24;
    /// Size of `nx_action_reg_load`: 24 bytes.
    pub const REG_LOAD_LEN: usize = 24;
    /// NXAST_REG_MOVE (`struct nx_action_reg_move`, 4-byte NXM/OXM headers).
    pub const REG_MOVE_N_BITS: Field = 10..12;
    /// `src_ofs`: first bit of the source.
    pub const REG_MOVE_SRC_OFS: Field = 12..14;
    /// `dst_ofs`: first bit of the destination.
    pub const REG_MOVE_DST_OFS: Field = 14..16;
    /// `src`: the NXM header of the source field.
    pub const REG_MOVE_SRC: Field = 16..20;
    /// `dst`: the NXM header of the destination field.
    pub const REG_MOVE_DST: Field = 20..24;
    /// Size of `nx_action_reg_move` with 4-byte headers: 24 bytes.
    pub const REG_MOVE_LEN: usize = 24;
    /// NXAST_STACK_PUSH/POP (`struct nx_action_stack`): `offset`, the
    /// first bit of the field.
    pub const STACK_OFS: Field = 10..12;
    /// The NXM header of the field (4 bytes).
    pub const STACK_FIELD: Field = 12..16;
    /// `n_bits`: the number of bits pushed or popped.
    pub const STACK_N_BITS: Field = 16..18;
    /// Zero padding to the end of the action.
    pub const STACK_PAD: Field = 18..24;
    /// Size of `nx_action_stack`: 24 bytes.
    pub const STACK_LEN: usize = 24;
}

/// ofp_instruction and the instructions (section 7.2.4).
pub mod instruction {
    use super::Field;
    /// `type`: OFPIT_* ([`crate::instruction::kind`]).
    pub const TYPE: Field = 0..2;
    /// `len`: the instruction's length in bytes.
    pub const LENGTH: Field = 2..4;
    /// Size of `ofp_instruction` (and of GOTO_TABLE, METER): 8 bytes.
    pub const LEN: usize = 8;
    /// GOTO_TABLE's `table_id`.
    pub const GOTO_TABLE_ID: usize = 4;
    /// WRITE_METADATA's `metadata`.
    pub const METADATA: Field = 8..16;
    /// WRITE_METADATA's `metadata_mask`.
    pub const METADATA_MASK: Field = 16..24;
    /// Size of `ofp_instruction_write_metadata`: 24 bytes.
    pub const WRITE_METADATA_LEN: usize = 24;
    /// Start of WRITE/APPLY_ACTIONS' actions.
    pub const ACTIONS: usize = 8;
    /// METER's `meter_id`.
    pub const METER_ID: Field = 4..8;
    /// EXPERIMENTER's `experimenter` id.
    pub const EXPERIMENTER: Field = 4..8;
    /// Start of the experimenter-defined body.
    pub const EXPERIMENTER_DATA: usize = 8;
}

/// ofp_table_features (section 7.3.5.5.1).
pub mod table_features {
    use super::Field;
    /// `length`: the entry's length in bytes, properties included.
    pub const LENGTH: Field = 0..2;
    /// `table_id`.
    pub const TABLE_ID: usize = 2;
    /// `name`: NUL-padded ASCII (OFP_MAX_TABLE_NAME_LEN 32).
    pub const NAME: Field = 8..40;
    /// `metadata_match`: metadata bits the table can match.
    pub const METADATA_MATCH: Field = 40..48;
    /// `metadata_write`: metadata bits the table can write.
    pub const METADATA_WRITE: Field = 48..56;
    /// `config`: OFPTC_* bits.
    pub const CONFIG: Field = 56..60;
    /// `max_entries`: the table's capacity.
    pub const MAX_ENTRIES: Field = 60..64;
    /// Start of the OFPTFPT_* properties.
    pub const PROPERTIES: usize = 64;
    /// Size of `ofp_table_features` without properties: 64 bytes.
    pub const LEN: usize = 64;
}

/// ofp_meter_mod (section 7.3.4.4) and ofp_meter_band_* (section 7.3.4.4).
pub mod meter_mod {
    use super::Field;
    /// `command`: OFPMC_* ([`crate::meter_mod::command`]).
    pub const COMMAND: Field = 8..10;
    /// `flags`: OFPMF_* ([`crate::meter_mod::flags`]).
    pub const FLAGS: Field = 10..12;
    /// `meter_id`.
    pub const METER_ID: Field = 12..16;
    /// Start of the band list.
    pub const BANDS: usize = 16;
    /// Size of `ofp_meter_mod` without bands: 16 bytes.
    pub const LEN: usize = 16;
    /// A band's `type`: OFPMBT_* (1: DROP, 2: DSCP_REMARK, 0xffff: experimenter).
    pub const BAND_TYPE: Field = 0..2;
    /// A band's `len` in bytes.
    pub const BAND_LEN: Field = 2..4;
    /// A band's `rate`: kbit/s or packets/s as the meter's flags say.
    pub const BAND_RATE: Field = 4..8;
    /// A band's `burst_size`: kbit or packets.
    pub const BAND_BURST: Field = 8..12;
    /// DSCP_REMARK's `prec_level`: how much to raise the drop precedence.
    pub const BAND_PREC_LEVEL: usize = 12;
    /// An experimenter band's `experimenter` id.
    pub const BAND_EXPERIMENTER: Field = 12..16;
    /// Size of one band: 16 bytes.
    pub const BAND_SIZE: usize = 16;
}
