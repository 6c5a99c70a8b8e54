//! OFPT_METER_MOD (spec section 7.3.4.4): rate limiters used by the METER instruction.
//!
//! ```text
//! ofp_header | command (2) | flags (2) | meter_id (4) | bands ...
//! band:        type (2) | len (2) | rate (4) | burst_size (4) | type-specific (4)
//! ```

use crate::bytes::{u16_at, u32_at, u8_at};
use crate::error::check_len;
use crate::field::meter_mod as field;
use crate::{Error, Result};

/// OFPMC_* commands.
pub mod command {
    /// OFPMC_ADD: a new meter.
    pub const ADD: u16 = 0;
    /// OFPMC_MODIFY: change a meter's bands.
    pub const MODIFY: u16 = 1;
    /// OFPMC_DELETE: remove a meter.
    pub const DELETE: u16 = 2;
}

/// OFPMF_* flags.
pub mod flags {
    /// OFPMF_KBPS: rates in kbit/s.
    pub const KBPS: u16 = 1 << 0;
    /// OFPMF_PKTPS: rates in packets/s.
    pub const PKTPS: u16 = 1 << 1;
    /// OFPMF_BURST: honour the bands' burst sizes.
    pub const BURST: u16 = 1 << 2;
    /// OFPMF_STATS: collect statistics.
    pub const STATS: u16 = 1 << 3;
}

/// Reserved meter ids (ofp_meter).
pub mod meter_id {
    /// Last usable meter.
    pub const MAX: u32 = 0xffff_0000;
    /// Meter for slow datapath.
    pub const SLOWPATH: u32 = 0xffff_fffd;
    /// Meter for controller connection.
    pub const CONTROLLER: u32 = 0xffff_fffe;
    /// All meters (stats requests, delete).
    pub const ALL: u32 = 0xffff_ffff;
}

/// What a band does above its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandKind {
    /// OFPMBT_DROP.
    Drop,
    /// OFPMBT_DSCP_REMARK: raise the drop precedence by `prec_level`.
    DscpRemark {
        /// Drop precedence increase.
        prec_level: u8,
    },
    /// OFPMBT_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
    },
    /// Another band type (answer OFPMMFC_BAD_BAND).
    Other {
        /// The band type.
        band_type: u16,
        /// The last 4 bytes of the band.
        data: u32,
    },
}

/// One meter band (16 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// What the band does.
    pub kind: BandKind,
    /// Rate for this band (kb/s or packets/s per the meter's flags).
    pub rate: u32,
    /// Burst size (with OFPMF_BURST).
    pub burst_size: u32,
}

/// A meter table modification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMod {
    /// One of [`command`].
    pub command: u16,
    /// [`flags`] bits.
    pub flags: u16,
    /// Meter id.
    pub meter_id: u32,
    /// Bands.
    pub bands: Vec<Band>,
}

impl MeterMod {
    /// Parses a whole METER_MOD. Every band defined by 1.3 is 16 bytes; a band length
    /// other than 16 is OFPMMFC_BAD_BAND territory and reported as a length error.
    pub fn parse(msg: &[u8]) -> Result<MeterMod> {
        check_len(msg, field::LEN)?;
        let mut rest = &msg[field::BANDS..];
        let mut bands = Vec::new();
        while !rest.is_empty() {
            check_len(rest, field::BAND_SIZE)?;
            if u16_at(rest, field::BAND_LEN) as usize != field::BAND_SIZE {
                return Err(Error::BadLength("meter band length is not 16"));
            }
            let kind = match u16_at(rest, field::BAND_TYPE) {
                1 => BandKind::Drop,
                2 => BandKind::DscpRemark {
                    prec_level: u8_at(rest, field::BAND_PREC_LEVEL),
                },
                0xffff => BandKind::Experimenter {
                    experimenter: u32_at(rest, field::BAND_EXPERIMENTER),
                },
                t => BandKind::Other {
                    band_type: t,
                    data: u32_at(rest, field::BAND_EXPERIMENTER),
                },
            };
            bands.push(Band {
                kind,
                rate: u32_at(rest, field::BAND_RATE),
                burst_size: u32_at(rest, field::BAND_BURST),
            });
            rest = &rest[field::BAND_SIZE..];
        }
        Ok(MeterMod {
            command: u16_at(msg, field::COMMAND),
            flags: u16_at(msg, field::FLAGS),
            meter_id: u32_at(msg, field::METER_ID),
            bands,
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + self.bands.len() * field::BAND_SIZE
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.command.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.meter_id.to_be_bytes());
        for b in &self.bands {
            let (ty, tail) = match b.kind {
                BandKind::Drop => (1u16, 0u32),
                BandKind::DscpRemark { prec_level } => (2, (prec_level as u32) << 24),
                BandKind::Experimenter { experimenter } => (0xffff, experimenter),
                BandKind::Other { band_type, data } => (band_type, data),
            };
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&(field::BAND_SIZE as u16).to_be_bytes());
            out.extend_from_slice(&b.rate.to_be_bytes());
            out.extend_from_slice(&b.burst_size.to_be_bytes());
            out.extend_from_slice(&tail.to_be_bytes());
        }
        Ok(())
    }
}
