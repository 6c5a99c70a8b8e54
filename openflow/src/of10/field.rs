//! Field offsets of the OpenFlow 1.0 and Nicira structures in [`super`], as
//! byte ranges (OpenFlow 1.0.0 spec section 5; Open vSwitch
//! `include/openflow/openflow-1.0.h` and `include/openflow/nicira-ext.h`).

pub use crate::field::Field;

/// `struct ofp10_match` (section 5.2.3), 40 bytes.
pub mod matching {
    use super::Field;
    /// `wildcards`: OFPFW_* bits of the fields to ignore ([`crate::of10::matching::wildcards`]).
    pub const WILDCARDS: Field = 0..4;
    /// `in_port`: the 16-bit ingress port.
    pub const IN_PORT: Field = 4..6;
    /// `dl_src`: Ethernet source address.
    pub const DL_SRC: Field = 6..12;
    /// `dl_dst`: Ethernet destination address.
    pub const DL_DST: Field = 12..18;
    /// `dl_vlan`: VLAN id (0xffff: no VLAN tag).
    pub const DL_VLAN: Field = 18..20;
    /// `dl_vlan_pcp`: VLAN priority (3 bits).
    pub const DL_VLAN_PCP: usize = 20;
    /// `dl_type`: Ethernet type.
    pub const DL_TYPE: Field = 22..24;
    /// `nw_tos`: IP ToS byte (its 6 DSCP bits).
    pub const NW_TOS: usize = 24;
    /// `nw_proto`: IP protocol, or the low 8 bits of the ARP opcode.
    pub const NW_PROTO: usize = 25;
    /// `nw_src`: IPv4 source address (or ARP SPA), masked by the wildcards' NW_SRC bits.
    pub const NW_SRC: Field = 28..32;
    /// `nw_dst`: IPv4 destination address (or ARP TPA).
    pub const NW_DST: Field = 32..36;
    /// `tp_src`: TCP/UDP source port, or ICMP type.
    pub const TP_SRC: Field = 36..38;
    /// `tp_dst`: TCP/UDP destination port, or ICMP code.
    pub const TP_DST: Field = 38..40;
    /// Size of `ofp10_match`: 40 bytes.
    pub const LEN: usize = 40;
}

/// `struct ofp10_flow_mod` (section 5.3.3), from the start of the message.
pub mod flow_mod {
    use super::Field;
    /// `match`: the `ofp10_match`.
    pub const MATCH: Field = 8..48;
    /// `cookie`: opaque controller-issued identifier.
    pub const COOKIE: Field = 48..56;
    /// `command`: OFPFC_* ([`crate::of10::flow_mod::command`]).
    pub const COMMAND: Field = 56..58;
    /// `idle_timeout`: seconds without a hit before removal (0: none).
    pub const IDLE_TIMEOUT: Field = 58..60;
    /// `hard_timeout`: seconds before removal (0: none).
    pub const HARD_TIMEOUT: Field = 60..62;
    /// `priority`: higher wins among overlapping entries.
    pub const PRIORITY: Field = 62..64;
    /// `buffer_id`: a buffered packet to apply to, or 0xffffffff.
    pub const BUFFER_ID: Field = 64..68;
    /// `out_port`: DELETE only matches entries that output here (OFPP_NONE: all).
    pub const OUT_PORT: Field = 68..70;
    /// `flags`: OFPFF_* ([`crate::of10::flow_mod::flags`]).
    pub const FLAGS: Field = 70..72;
    /// Start of the OpenFlow 1.0 actions.
    pub const ACTIONS: usize = 72;
}

/// `struct ofp_vendor_header` / `struct nicira_header`: a vendor message and
/// its Nicira subtype.
pub mod vendor {
    use super::Field;
    /// `vendor`: the vendor id (NX_VENDOR_ID 0x00002320 for Nicira).
    pub const VENDOR: Field = 8..12;
    /// `subtype`: NXT_* ([`crate::of10::nx::subtype`]).
    pub const SUBTYPE: Field = 12..16;
    /// Size of `nicira_header`: 16 bytes.
    pub const LEN: usize = 16;
}

/// `struct nx_flow_mod` after the 16-byte `nicira_header`.
pub mod nx_flow_mod {
    use super::Field;
    /// `cookie`: opaque controller-issued identifier.
    pub const COOKIE: Field = 16..24;
    /// `command`: OFPFC_*; with NXT_FLOW_MOD_TABLE_ID on, the high byte is the table id.
    pub const COMMAND: Field = 24..26;
    /// `idle_timeout`: seconds without a hit before removal (0: none).
    pub const IDLE_TIMEOUT: Field = 26..28;
    /// `hard_timeout`: seconds before removal (0: none).
    pub const HARD_TIMEOUT: Field = 28..30;
    /// `priority`: higher wins among overlapping entries.
    pub const PRIORITY: Field = 30..32;
    /// `buffer_id`: a buffered packet to apply to, or 0xffffffff.
    pub const BUFFER_ID: Field = 32..36;
    /// `out_port`: DELETE only matches entries that output here (OFPP_NONE: all).
    pub const OUT_PORT: Field = 36..38;
    /// `flags`: OFPFF_*.
    pub const FLAGS: Field = 38..40;
    /// `match_len`: bytes of NXM TLVs in the match (without padding to 8).
    pub const MATCH_LEN: Field = 40..42;
    /// Start of the NXM match; the actions follow it, 8-aligned.
    pub const MATCH: usize = 48;
}

/// `struct ofp10_stats_msg` (section 5.3.5) and the Nicira stats header
/// (`struct nicira10_stats_msg`) that follows it for OFPST_VENDOR.
pub mod stats {
    use super::Field;
    /// `type`: OFPST_* ([`crate::of10::stats::stats_type`]).
    pub const TYPE: Field = 8..10;
    /// `flags`: OFPSF_REPLY_MORE in a reply that continues.
    pub const FLAGS: Field = 10..12;
    /// Start of the type's body.
    pub const BODY: usize = 12;
    /// `vendor` of an OFPST_VENDOR message.
    pub const VENDOR: Field = 12..16;
    /// `subtype` of a Nicira stats message: NXST_* ([`crate::of10::stats::nx_stats`]).
    pub const SUBTYPE: Field = 16..20;
    /// Start of a Nicira stats message's body (after 4 pad bytes).
    pub const NX_BODY: usize = 24;
}

/// `struct ofp10_flow_stats_request` (also aggregate), within the body.
pub mod flow_stats_request {
    use super::Field;
    /// `match`: the `ofp10_match` selecting flows.
    pub const MATCH: Field = 0..40;
    /// `table_id` (0xff: all tables).
    pub const TABLE_ID: usize = 40;
    /// `out_port`: only entries that output here (OFPP_NONE: all).
    pub const OUT_PORT: Field = 42..44;
    /// Size of `ofp10_flow_stats_request`: 44 bytes.
    pub const LEN: usize = 44;
}

/// `struct nx_flow_stats_request` (also NXST_AGGREGATE), within the body.
pub mod nx_flow_stats_request {
    use super::Field;
    /// `out_port`: only entries that output here (OFPP_NONE: all).
    pub const OUT_PORT: Field = 0..2;
    /// `match_len`: bytes of NXM TLVs in the match.
    pub const MATCH_LEN: Field = 2..4;
    /// `table_id` (0xff: all tables).
    pub const TABLE_ID: usize = 4;
    /// Start of the NXM match.
    pub const MATCH: usize = 8;
}

/// `struct nx_flow_stats`: one flow of an NXST_FLOW reply.
pub mod nx_flow_stats {
    use super::Field;
    /// `length`: the entry's length in bytes, match and actions included.
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
    /// `match_len`: bytes of NXM TLVs in the match.
    pub const MATCH_LEN: Field = 18..20;
    /// `idle_age`: seconds since the last hit, plus one (0: unknown).
    pub const IDLE_AGE: Field = 20..22;
    /// `hard_age`: seconds since the last modification, plus one (0: unknown).
    pub const HARD_AGE: Field = 22..24;
    /// `cookie` of the flow.
    pub const COOKIE: Field = 24..32;
    /// `packet_count`: packets the flow matched.
    pub const PACKET_COUNT: Field = 32..40;
    /// `byte_count`: bytes the flow matched.
    pub const BYTE_COUNT: Field = 40..48;
    /// Start of the NXM match; the actions follow it, 8-aligned.
    pub const MATCH: usize = 48;
}

/// `struct ofp_aggregate_stats_reply` / `struct nx_aggregate_stats_reply`.
pub mod aggregate {
    use super::Field;
    /// `packet_count`: packets matched by all selected flows.
    pub const PACKET_COUNT: Field = 0..8;
    /// `byte_count`: bytes matched by all selected flows.
    pub const BYTE_COUNT: Field = 8..16;
    /// `flow_count`: number of selected flows.
    pub const FLOW_COUNT: Field = 16..20;
    /// Size of the reply: 24 bytes.
    pub const LEN: usize = 24;
}

/// `struct ofp10_table_stats`.
pub mod table_stats {
    use super::Field;
    /// `table_id`.
    pub const TABLE_ID: usize = 0;
    /// `name`: NUL-padded ASCII (32 bytes).
    pub const NAME: Field = 4..36;
    /// `wildcards`: OFPFW_* bits the table supports.
    pub const WILDCARDS: Field = 36..40;
    /// `max_entries`: the table's capacity.
    pub const MAX_ENTRIES: Field = 40..44;
    /// `active_count`: entries in the table.
    pub const ACTIVE_COUNT: Field = 44..48;
    /// `lookup_count`: packets looked up in the table.
    pub const LOOKUP_COUNT: Field = 48..56;
    /// `matched_count`: packets that hit an entry.
    pub const MATCHED_COUNT: Field = 56..64;
    /// Size of `ofp10_table_stats`: 64 bytes.
    pub const LEN: usize = 64;
}

/// `struct ofp10_port_stats_request` and `struct ofp10_port_stats`.
pub mod port_stats {
    use super::Field;
    /// `port_no` (OFPP_NONE in a request: every port).
    pub const PORT_NO: Field = 0..2;
    /// Size of `ofp10_port_stats_request`: 8 bytes.
    pub const REQUEST_LEN: usize = 8;
    /// The 12 64-bit counters from rx_packets to collisions.
    pub const COUNTERS: usize = 8;
    /// Size of `ofp10_port_stats`: 104 bytes.
    pub const LEN: usize = 104;
}

/// `struct ofp10_phy_port` (section 5.2.1).
pub mod phy_port {
    use super::Field;
    /// `port_no`.
    pub const PORT_NO: Field = 0..2;
    /// `hw_addr`: the port's MAC address.
    pub const HW_ADDR: Field = 2..8;
    /// `name`: NUL-padded ASCII (16 bytes).
    pub const NAME: Field = 8..24;
    /// `config`: OFPPC_* bits.
    pub const CONFIG: Field = 24..28;
    /// `state`: OFPPS_* bits.
    pub const STATE: Field = 28..32;
    /// `curr`: OFPPF_* bits of the current link.
    pub const CURR: Field = 32..36;
    /// `advertised`: OFPPF_* bits the port advertises.
    pub const ADVERTISED: Field = 36..40;
    /// `supported`: OFPPF_* bits the port supports.
    pub const SUPPORTED: Field = 40..44;
    /// `peer`: OFPPF_* bits the link partner advertises.
    pub const PEER: Field = 44..48;
    /// Size of `ofp10_phy_port`: 48 bytes.
    pub const LEN: usize = 48;
}

/// `struct ofp_switch_features` of OpenFlow 1.0 (section 5.3.1).
pub mod features {
    use super::Field;
    /// `datapath_id`: lower 48 bits a MAC address, upper 16 implementer-defined.
    pub const DATAPATH_ID: Field = 8..16;
    /// `n_buffers`: packets the switch can buffer at once.
    pub const N_BUFFERS: Field = 16..20;
    /// `n_tables`: number of flow tables.
    pub const N_TABLES: usize = 20;
    /// `capabilities`: OFPC_* bits.
    pub const CAPABILITIES: Field = 24..28;
    /// `actions`: bitmap of the OFPAT10_* the switch supports.
    pub const ACTIONS: Field = 28..32;
    /// Start of the `ofp10_phy_port` array.
    pub const PORTS: usize = 32;
}

/// OpenFlow 1.0 actions (section 5.2.4): type, length, body.
pub mod action {
    use super::Field;
    /// `type`: OFPAT10_* ([`crate::of10::action::action_type`]).
    pub const TYPE: Field = 0..2;
    /// `len`: the action's length in bytes, a multiple of 8.
    pub const LEN: Field = 2..4;
    /// The 16-bit port of OUTPUT and ENQUEUE, the value of SET_VLAN_VID,
    /// SET_TP_SRC/DST.
    pub const U16: Field = 4..6;
    /// OUTPUT's max_len.
    pub const MAX_LEN: Field = 6..8;
    /// The byte of SET_VLAN_PCP and SET_NW_TOS.
    pub const U8: usize = 4;
    /// SET_NW_SRC/DST's address.
    pub const NW_ADDR: Field = 4..8;
    /// SET_DL_SRC/DST's address.
    pub const DL_ADDR: Field = 4..10;
    /// ENQUEUE's queue id.
    pub const QUEUE_ID: Field = 12..16;
}

/// `struct ofp10_flow_stats`: one flow of an OFPST_FLOW reply.
pub mod flow_stats {
    use super::Field;
    /// `length`: the entry's length in bytes, actions included.
    pub const LENGTH: Field = 0..2;
    /// `table_id` the flow is in.
    pub const TABLE_ID: usize = 2;
    /// `match`: the flow's `ofp10_match`.
    pub const MATCH: Field = 4..44;
    /// `duration_sec`: seconds the flow has been installed.
    pub const DURATION_SEC: Field = 44..48;
    /// `duration_nsec`: nanoseconds beyond `duration_sec`.
    pub const DURATION_NSEC: Field = 48..52;
    /// `priority` of the flow.
    pub const PRIORITY: Field = 52..54;
    /// `idle_timeout` in seconds.
    pub const IDLE_TIMEOUT: Field = 54..56;
    /// `hard_timeout` in seconds.
    pub const HARD_TIMEOUT: Field = 56..58;
    /// `cookie` of the flow.
    pub const COOKIE: Field = 64..72;
    /// `packet_count`: packets the flow matched.
    pub const PACKET_COUNT: Field = 72..80;
    /// `byte_count`: bytes the flow matched.
    pub const BYTE_COUNT: Field = 80..88;
    /// Start of the flow's actions.
    pub const ACTIONS: usize = 88;
}
