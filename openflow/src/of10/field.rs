#![allow(missing_docs)]

//! Field offsets of the OpenFlow 1.0 and Nicira structures in [`super`], as
//! byte ranges (OpenFlow 1.0.0 spec section 5; Open vSwitch
//! `include/openflow/openflow-1.0.h` and `include/openflow/nicira-ext.h`).

pub use crate::field::Field;

/// `struct ofp10_match` (section 5.2.3), 40 bytes.
pub mod matching {
    use super::Field;
    pub const WILDCARDS: Field = 0..4;
    pub const IN_PORT: Field = 4..6;
    pub const DL_SRC: Field = 6..12;
    pub const DL_DST: Field = 12..18;
    pub const DL_VLAN: Field = 18..20;
    pub const DL_VLAN_PCP: usize = 20;
    pub const DL_TYPE: Field = 22..24;
    pub const NW_TOS: usize = 24;
    pub const NW_PROTO: usize = 25;
    pub const NW_SRC: Field = 28..32;
    pub const NW_DST: Field = 32..36;
    pub const TP_SRC: Field = 36..38;
    pub const TP_DST: Field = 38..40;
    pub const LEN: usize = 40;
}

/// `struct ofp10_flow_mod` (section 5.3.3), from the start of the message.
pub mod flow_mod {
    use super::Field;
    pub const MATCH: Field = 8..48;
    pub const COOKIE: Field = 48..56;
    pub const COMMAND: Field = 56..58;
    pub const IDLE_TIMEOUT: Field = 58..60;
    pub const HARD_TIMEOUT: Field = 60..62;
    pub const PRIORITY: Field = 62..64;
    pub const BUFFER_ID: Field = 64..68;
    pub const OUT_PORT: Field = 68..70;
    pub const FLAGS: Field = 70..72;
    pub const ACTIONS: usize = 72;
}

/// `struct ofp_vendor_header` / `struct nicira_header`: a vendor message and
/// its Nicira subtype.
pub mod vendor {
    use super::Field;
    pub const VENDOR: Field = 8..12;
    pub const SUBTYPE: Field = 12..16;
    pub const LEN: usize = 16;
}

/// `struct nx_flow_mod` after the 16-byte `nicira_header`.
pub mod nx_flow_mod {
    use super::Field;
    pub const COOKIE: Field = 16..24;
    pub const COMMAND: Field = 24..26;
    pub const IDLE_TIMEOUT: Field = 26..28;
    pub const HARD_TIMEOUT: Field = 28..30;
    pub const PRIORITY: Field = 30..32;
    pub const BUFFER_ID: Field = 32..36;
    pub const OUT_PORT: Field = 36..38;
    pub const FLAGS: Field = 38..40;
    pub const MATCH_LEN: Field = 40..42;
    pub const MATCH: usize = 48;
}

/// `struct ofp10_stats_msg` (section 5.3.5) and the Nicira stats header
/// (`struct nicira10_stats_msg`) that follows it for OFPST_VENDOR.
pub mod stats {
    use super::Field;
    pub const TYPE: Field = 8..10;
    pub const FLAGS: Field = 10..12;
    pub const BODY: usize = 12;
    pub const VENDOR: Field = 12..16;
    pub const SUBTYPE: Field = 16..20;
    pub const NX_BODY: usize = 24;
}

/// `struct ofp10_flow_stats_request` (also aggregate), within the body.
pub mod flow_stats_request {
    use super::Field;
    pub const MATCH: Field = 0..40;
    pub const TABLE_ID: usize = 40;
    pub const OUT_PORT: Field = 42..44;
    pub const LEN: usize = 44;
}

/// `struct nx_flow_stats_request` (also NXST_AGGREGATE), within the body.
pub mod nx_flow_stats_request {
    use super::Field;
    pub const OUT_PORT: Field = 0..2;
    pub const MATCH_LEN: Field = 2..4;
    pub const TABLE_ID: usize = 4;
    pub const MATCH: usize = 8;
}

/// `struct nx_flow_stats`: one flow of an NXST_FLOW reply.
pub mod nx_flow_stats {
    use super::Field;
    pub const LENGTH: Field = 0..2;
    pub const TABLE_ID: usize = 2;
    pub const DURATION_SEC: Field = 4..8;
    pub const DURATION_NSEC: Field = 8..12;
    pub const PRIORITY: Field = 12..14;
    pub const IDLE_TIMEOUT: Field = 14..16;
    pub const HARD_TIMEOUT: Field = 16..18;
    pub const MATCH_LEN: Field = 18..20;
    pub const IDLE_AGE: Field = 20..22;
    pub const HARD_AGE: Field = 22..24;
    pub const COOKIE: Field = 24..32;
    pub const PACKET_COUNT: Field = 32..40;
    pub const BYTE_COUNT: Field = 40..48;
    pub const MATCH: usize = 48;
}

/// `struct ofp_aggregate_stats_reply` / `struct nx_aggregate_stats_reply`.
pub mod aggregate {
    use super::Field;
    pub const PACKET_COUNT: Field = 0..8;
    pub const BYTE_COUNT: Field = 8..16;
    pub const FLOW_COUNT: Field = 16..20;
    pub const LEN: usize = 24;
}

/// `struct ofp10_table_stats`.
pub mod table_stats {
    use super::Field;
    pub const TABLE_ID: usize = 0;
    pub const NAME: Field = 4..36;
    pub const WILDCARDS: Field = 36..40;
    pub const MAX_ENTRIES: Field = 40..44;
    pub const ACTIVE_COUNT: Field = 44..48;
    pub const LOOKUP_COUNT: Field = 48..56;
    pub const MATCHED_COUNT: Field = 56..64;
    pub const LEN: usize = 64;
}

/// `struct ofp10_port_stats_request` and `struct ofp10_port_stats`.
pub mod port_stats {
    use super::Field;
    pub const PORT_NO: Field = 0..2;
    pub const REQUEST_LEN: usize = 8;
    /// The 12 64-bit counters from rx_packets to collisions.
    pub const COUNTERS: usize = 8;
    pub const LEN: usize = 104;
}

/// `struct ofp10_phy_port` (section 5.2.1).
pub mod phy_port {
    use super::Field;
    pub const PORT_NO: Field = 0..2;
    pub const HW_ADDR: Field = 2..8;
    pub const NAME: Field = 8..24;
    pub const CONFIG: Field = 24..28;
    pub const STATE: Field = 28..32;
    pub const CURR: Field = 32..36;
    pub const ADVERTISED: Field = 36..40;
    pub const SUPPORTED: Field = 40..44;
    pub const PEER: Field = 44..48;
    pub const LEN: usize = 48;
}

/// `struct ofp_switch_features` of OpenFlow 1.0 (section 5.3.1).
pub mod features {
    use super::Field;
    pub const DATAPATH_ID: Field = 8..16;
    pub const N_BUFFERS: Field = 16..20;
    pub const N_TABLES: usize = 20;
    pub const CAPABILITIES: Field = 24..28;
    pub const ACTIONS: Field = 28..32;
    pub const PORTS: usize = 32;
}

/// OpenFlow 1.0 actions (section 5.2.4): type, length, body.
pub mod action {
    use super::Field;
    pub const TYPE: Field = 0..2;
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
    pub const LENGTH: Field = 0..2;
    pub const TABLE_ID: usize = 2;
    pub const MATCH: Field = 4..44;
    pub const DURATION_SEC: Field = 44..48;
    pub const DURATION_NSEC: Field = 48..52;
    pub const PRIORITY: Field = 52..54;
    pub const IDLE_TIMEOUT: Field = 54..56;
    pub const HARD_TIMEOUT: Field = 56..58;
    pub const COOKIE: Field = 64..72;
    pub const PACKET_COUNT: Field = 72..80;
    pub const BYTE_COUNT: Field = 80..88;
    pub const ACTIONS: usize = 88;
}
