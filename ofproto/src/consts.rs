//! OpenFlow 1.3 constants the request handlers share.

/// `OFPTT_ALL`.
pub(crate) const OFPTT_ALL: u8 = 0xff;
/// `OFPP_ANY`.
pub(crate) const OFPP_ANY: u32 = 0xffff_ffff;
/// `OFPG_ANY`.
pub(crate) const OFPG_ANY: u32 = 0xffff_ffff;
/// `OFPG_ALL`.
pub(crate) const OFPG_ALL: u32 = 0xffff_fffc;
/// `OFP_NO_BUFFER`.
pub(crate) const NO_BUFFER: u32 = 0xffff_ffff;
/// Tables the switch offers (0..=253, like OVS).
pub(crate) const N_TABLES: u8 = switch::action::MAX_TABLE + 1;
