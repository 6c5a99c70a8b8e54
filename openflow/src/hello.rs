//! OFPT_HELLO (spec section 7.5.1) and version negotiation (section 6.3.1).
//!
//! ```text
//! ofp_header | elements: type (2) | length (2, excl. padding) | body | pad to 8 ...
//! ```
//!
//! The only element 1.3 defines is OFPHET_VERSIONBITMAP: bit `n` set means version
//! `n` is supported.

use crate::bytes::{pad8, round8, u16_at, u32_at, zeros};
use crate::field::{header, hello_elem as field};
use crate::{Error, Result, VERSION};

/// OFPHET_VERSIONBITMAP.
pub const OFPHET_VERSIONBITMAP: u16 = 1;

/// One hello element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloElement {
    /// OFPHET_VERSIONBITMAP: 32-bit words, bit `n` of word `w` = version `32*w + n`.
    VersionBitmap(Vec<u32>),
    /// Any other element, its body kept (without padding).
    Unknown {
        /// Element type.
        elem_type: u16,
        /// Body after type and length.
        data: Vec<u8>,
    },
}

/// OFPT_HELLO body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// Elements in wire order (empty for a plain OpenFlow 1.0-style hello).
    pub elements: Vec<HelloElement>,
}

impl Hello {
    /// The hello this crate sends: one version bitmap with only 1.3.
    pub fn ours() -> Hello {
        Hello::with_versions(&[VERSION])
    }

    /// A hello announcing `versions` in a bitmap.
    pub fn with_versions(versions: &[u8]) -> Hello {
        let words = versions
            .iter()
            .map(|&v| v as usize / 32 + 1)
            .max()
            .unwrap_or(1);
        let mut bm = vec![0u32; words];
        for &v in versions {
            bm[v as usize / 32] |= 1 << (v % 32);
        }
        Hello {
            elements: vec![HelloElement::VersionBitmap(bm)],
        }
    }

    /// Parses a whole HELLO message. Section 7.5.1: element lengths include the 4-byte
    /// element header and exclude padding to 8; an element may not run past the
    /// message. A missing final padding is tolerated.
    pub fn parse(msg: &[u8]) -> Result<Hello> {
        let mut rest = msg.get(header::LEN..).unwrap_or(&[]);
        let mut elements = Vec::new();
        while !rest.is_empty() {
            if rest.len() < field::LEN {
                return Err(Error::BadLength("truncated hello element"));
            }
            let ty = u16_at(rest, field::TYPE);
            let len = u16_at(rest, field::LENGTH) as usize;
            if len < field::LEN || len > rest.len() {
                return Err(Error::BadLength("hello element length out of range"));
            }
            let body = &rest[field::LEN..len];
            elements.push(if ty == OFPHET_VERSIONBITMAP {
                if !body.len().is_multiple_of(4) {
                    return Err(Error::BadLength("version bitmap not a multiple of 4"));
                }
                HelloElement::VersionBitmap(body.chunks_exact(4).map(|c| u32_at(c, 0..4)).collect())
            } else {
                HelloElement::Unknown {
                    elem_type: ty,
                    data: body.to_vec(),
                }
            });
            rest = &rest[round8(len).min(rest.len())..];
        }
        Ok(Hello { elements })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        header::LEN
            + self
                .elements
                .iter()
                .map(|e| round8(field::LEN + e.body_len()))
                .sum::<usize>()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        for e in &self.elements {
            let len = field::LEN + e.body_len();
            if len > u16::MAX as usize {
                return Err(Error::TooLong(len));
            }
            let ty = match e {
                HelloElement::VersionBitmap(_) => OFPHET_VERSIONBITMAP,
                HelloElement::Unknown { elem_type, .. } => *elem_type,
            };
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&(len as u16).to_be_bytes());
            match e {
                HelloElement::VersionBitmap(bm) => bm
                    .iter()
                    .for_each(|w| out.extend_from_slice(&w.to_be_bytes())),
                HelloElement::Unknown { data, .. } => out.extend_from_slice(data),
            }
            zeros(out, pad8(len));
        }
        Ok(())
    }

    /// The version bitmap, if the peer sent one.
    pub fn version_bitmap(&self) -> Option<&[u32]> {
        self.elements.iter().find_map(|e| match e {
            HelloElement::VersionBitmap(b) => Some(b.as_slice()),
            _ => None,
        })
    }

    /// True when the bitmap (if any) announces `version`.
    pub fn supports(&self, version: u8) -> Option<bool> {
        self.version_bitmap().map(|bm| {
            bm.get(version as usize / 32)
                .is_some_and(|w| w & (1 << (version % 32)) != 0)
        })
    }
}

impl HelloElement {
    fn body_len(&self) -> usize {
        match self {
            HelloElement::VersionBitmap(b) => b.len() * 4,
            HelloElement::Unknown { data, .. } => data.len(),
        }
    }
}

/// Version negotiation (section 6.3.1): the highest version in both our `supported`
/// list and the peer's bitmap when the peer sent one; otherwise the smaller of our
/// highest version and the peer's header version, if we support it. `None`: no common
/// version (answer OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE and close).
pub fn negotiate(supported: &[u8], peer_version: u8, peer: &Hello) -> Option<u8> {
    let mut ours: Vec<u8> = supported.to_vec();
    ours.sort_unstable();
    if peer.version_bitmap().is_some() {
        return ours
            .iter()
            .rev()
            .copied()
            .find(|&v| peer.supports(v) == Some(true));
    }
    let highest = *ours.last()?;
    let v = highest.min(peer_version);
    ours.contains(&v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_versions() {
        let peer = Hello::with_versions(&[1, 4, 5]);
        assert_eq!(negotiate(&[4], 6, &peer), Some(4));
        assert_eq!(negotiate(&[1, 4], 6, &peer), Some(4));
        assert_eq!(negotiate(&[4], 1, &Hello::with_versions(&[1])), None);
        assert_eq!(negotiate(&[4], 5, &Hello::default()), Some(4));
        assert_eq!(negotiate(&[4], 1, &Hello::default()), None);
    }

    #[test]
    fn parse_ovs_hello() {
        let b = [4u8, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10];
        let h = Hello::parse(&b).unwrap();
        assert_eq!(h, Hello::ours());
        assert_eq!(h.buffer_len(), 16);
    }
}
