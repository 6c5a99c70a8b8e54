//! The `ct` action's options (`ovs-actions(7)`: `ct(commit, zone=Z,
//! table=N, force, exec(...), nat(...))`), as the switch's rule parser and
//! the OpenFlow `NXAST_CT`/`NXAST_NAT` decoder produce them.

use std::net::IpAddr;

/// One `ct(...)` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CtSpec {
    /// `zone=Z` (immediate zones only).
    pub zone: u16,
    /// `table=N`: recirculate the frame into table N with its ct fields.
    pub table: Option<u8>,
    /// `commit`: create the connection (and apply `exec`, `nat`).
    pub commit: bool,
    /// `force`: a reply-direction packet of a committed connection ends it
    /// and starts a new one in this direction.
    pub force: bool,
    /// `exec(set_field:V/M->ct_mark)`: (value, mask).
    pub set_mark: Option<(u32, u32)>,
    /// `exec(set_field:V/M->ct_label)`: (value, mask).
    pub set_label: Option<(u128, u128)>,
    /// `nat` / `nat(src=...)` / `nat(dst=...)`.
    pub nat: Option<NatSpec>,
}

/// `nat(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatSpec {
    /// Source, destination, or (plain `nat`) only what an existing
    /// connection already translates.
    pub kind: NatKind,
    /// The range to translate to (None for `NatKind::Existing`).
    pub range: Option<NatRange>,
    /// `persistent`, `hash`, `random`: [`nat_flags`] bits (the values of
    /// OpenFlow's `NX_NAT_F_*`, so the decoder passes them through).
    pub flags: u8,
}

/// Which side `nat` translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// `nat(src=...)`.
    Src,
    /// `nat(dst=...)`.
    Dst,
    /// `nat`: apply the connection's existing translation (both
    /// directions), translate nothing new.
    Existing,
}

/// `A[-B][:P[-Q]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatRange {
    /// First address.
    pub addr_min: IpAddr,
    /// Last address (= `addr_min` for one address).
    pub addr_max: IpAddr,
    /// Port range; (0, 0): keep the port unless it collides.
    pub port_min: u16,
    /// Last port.
    pub port_max: u16,
}

/// `NatSpec::flags` bits, with the values of `NX_NAT_F_*`
/// (`include/openvswitch/ofp-actions.h`).
pub mod nat_flags {
    /// `persistent`: the address depends on the source address only.
    pub const PERSISTENT: u8 = 1 << 2;
    /// `hash`: the port offset is a hash of the tuple (the default).
    pub const PROTO_HASH: u8 = 1 << 3;
    /// `random`: the port offset is random.
    pub const PROTO_RANDOM: u8 = 1 << 4;
}
