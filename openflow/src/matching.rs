//! ofp_match (spec section 7.2.3.1): OXM match type, a list of OXM TLVs, padded to 8.
//!
//! ```text
//! +---------------+---------------+----------------------------------+
//! | type = 1 (OXM)| length        | oxm_fields ... | pad to 8        |
//! +---------------+---------------+----------------------------------+
//! ```
//!
//! "length: Length of ofp_match (excluding padding)"; "the ofp_match is padded as
//! needed, to make its overall size a multiple of 8". Prerequisites (section 7.2.3.6)
//! are not checked here: that is the switch's business; [`Match::fields`] lists what
//! was asked for, in wire order.

use crate::bytes::{pad8, round8, u16_at, zeros};
use crate::error::check_len;
use crate::field::matching as field;
use crate::oxm::{Field, OxmField};
use crate::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

/// OFPMT_STANDARD (OpenFlow 1.1's fixed match; rejected here).
pub const OFPMT_STANDARD: u16 = 0;
/// OFPMT_OXM.
pub const OFPMT_OXM: u16 = 1;

/// A flow match: the OXM TLVs in wire order. Empty matches every packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Match {
    /// The TLVs, in wire order.
    pub fields: Vec<OxmField>,
}

impl Match {
    /// The empty match (all wildcards).
    pub fn new() -> Match {
        Match::default()
    }

    /// Adds a TLV (builder style).
    pub fn with(mut self, f: OxmField) -> Match {
        self.fields.push(f);
        self
    }

    /// Parses the ofp_match at the front of `buf`; returns it and the bytes it
    /// occupies including padding. The padding must be present in `buf`.
    pub fn parse(buf: &[u8]) -> Result<(Match, usize)> {
        check_len(buf, field::LEN).map_err(|_| Error::BadMatch("truncated ofp_match"))?;
        let ty = u16_at(buf, field::TYPE);
        if ty != OFPMT_OXM {
            return Err(Error::BadMatchType(ty));
        }
        let len = u16_at(buf, field::LENGTH) as usize;
        if len < field::LEN {
            return Err(Error::BadMatch("ofp_match length below 4"));
        }
        let padded = round8(len);
        if buf.len() < padded {
            return Err(Error::BadMatch(
                "ofp_match (with padding) runs past the message",
            ));
        }
        let mut rest = &buf[field::OXM..len];
        let mut fields = Vec::new();
        while !rest.is_empty() {
            let (f, n) = OxmField::parse(rest)?;
            fields.push(f);
            rest = &rest[n..];
        }
        Ok((Match { fields }, padded))
    }

    /// The length field's value (unpadded).
    pub fn unpadded_len(&self) -> usize {
        field::LEN + self.fields.iter().map(OxmField::buffer_len).sum::<usize>()
    }

    /// Bytes the match occupies on the wire, padding included.
    pub fn buffer_len(&self) -> usize {
        round8(self.unpadded_len())
    }

    /// Appends the match and its padding.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.unpadded_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&OFPMT_OXM.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        for f in &self.fields {
            f.emit(out)?;
        }
        zeros(out, pad8(len));
        Ok(())
    }

    /// The first TLV of `field`.
    pub fn get(&self, field: Field) -> Option<&OxmField> {
        self.fields.iter().find(|f| f.field == field)
    }

    /// The fields matched, in wire order.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.fields.iter().map(|f| f.field)
    }

    /// The value of an exact (unmasked) integer field.
    pub fn exact_u64(&self, field: Field) -> Option<u64> {
        self.get(field)
            .filter(|f| f.mask.is_none())
            .and_then(OxmField::value_u64)
    }

    /// Value and optional mask of an integer field.
    pub fn masked_u64(&self, field: Field) -> Option<(u64, Option<u64>)> {
        let f = self.get(field)?;
        Some((f.value_u64()?, f.mask_u64()))
    }

    /// IN_PORT.
    pub fn in_port(&self) -> Option<u32> {
        self.exact_u64(Field::InPort).map(|v| v as u32)
    }

    /// ETH_TYPE.
    pub fn eth_type(&self) -> Option<u16> {
        self.exact_u64(Field::EthType).map(|v| v as u16)
    }

    /// IP_PROTO.
    pub fn ip_proto(&self) -> Option<u8> {
        self.exact_u64(Field::IpProto).map(|v| v as u8)
    }

    /// VLAN_VID value (with [`crate::oxm::OFPVID_PRESENT`]) and mask.
    pub fn vlan_vid(&self) -> Option<(u16, Option<u16>)> {
        self.masked_u64(Field::VlanVid)
            .map(|(v, m)| (v as u16, m.map(|m| m as u16)))
    }

    /// ETH_SRC and mask.
    pub fn eth_src(&self) -> Option<([u8; 6], Option<[u8; 6]>)> {
        self.mac(Field::EthSrc)
    }

    /// ETH_DST and mask.
    pub fn eth_dst(&self) -> Option<([u8; 6], Option<[u8; 6]>)> {
        self.mac(Field::EthDst)
    }

    /// A 6-byte field and its mask.
    pub fn mac(&self, field: Field) -> Option<([u8; 6], Option<[u8; 6]>)> {
        let f = self.get(field)?;
        Some((f.value_mac()?, f.mask_mac()))
    }

    /// A 4-byte address field (IPV4_SRC/DST, ARP_SPA/TPA, tunnel addresses) and mask.
    pub fn ipv4(&self, field: Field) -> Option<(Ipv4Addr, Option<Ipv4Addr>)> {
        let f = self.get(field)?;
        Some((f.value_ipv4()?, f.mask_ipv4()))
    }

    /// A 16-byte address field (IPV6_SRC/DST, ND target) and mask.
    pub fn ipv6(&self, field: Field) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
        let f = self.get(field)?;
        Some((f.value_ipv6()?, f.mask_ipv6()))
    }

    /// METADATA and mask.
    pub fn metadata(&self) -> Option<(u64, Option<u64>)> {
        self.masked_u64(Field::Metadata)
    }

    /// TUNNEL_ID (OXM or NXM form) and mask.
    pub fn tunnel_id(&self) -> Option<(u64, Option<u64>)> {
        self.masked_u64(Field::TunnelId)
            .or_else(|| self.masked_u64(Field::NxTunId))
    }

    /// tcp_flags (ONF OXM or NXM form) and mask.
    pub fn tcp_flags(&self) -> Option<(u16, Option<u16>)> {
        self.masked_u64(Field::OnfTcpFlags)
            .or_else(|| self.masked_u64(Field::NxTcpFlags))
            .map(|(v, m)| (v as u16, m.map(|m| m as u16)))
    }

    /// Nicira register `n` (0..7) and mask.
    pub fn reg(&self, n: u8) -> Option<(u32, Option<u32>)> {
        self.masked_u64(Field::NxReg(n))
            .map(|(v, m)| (v as u32, m.map(|m| m as u32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_and_parse_match() {
        let m = Match::new()
            .with(OxmField::from_u64(Field::InPort, 1))
            .with(OxmField::from_u64(Field::EthType, 0x0800));
        let mut out = Vec::new();
        m.emit(&mut out).unwrap();
        // 4 + 8 + 6 = 18, padded to 24.
        assert_eq!(out.len(), 24);
        assert_eq!(&out[..4], &[0, 1, 0, 18]);
        let (p, n) = Match::parse(&out).unwrap();
        assert_eq!(n, 24);
        assert_eq!(p, m);
        assert_eq!(p.in_port(), Some(1));
        assert_eq!(p.eth_type(), Some(0x0800));
    }

    #[test]
    fn padding_must_be_present() {
        assert!(Match::parse(&[0, 1, 0, 4]).is_err());
        assert!(Match::parse(&[0, 1, 0, 4, 0, 0, 0, 0]).is_ok());
        assert!(Match::parse(&[0, 0, 0, 4, 0, 0, 0, 0]).is_err());
    }
}
