//! Whole PDUs on a byte stream (RFC 7143 section 11.1):
//!
//! ```text
//! BHS (48) | AHS (TotalAHSLength*4) | HeaderDigest (0/4) | Data (DataSegmentLength)
//!          | padding to 4 bytes | DataDigest (0/4)
//! ```
//!
//! Section 11.1: "the data segment ... is padded to an integer number of 4-byte words";
//! section 13.1: the header digest covers BHS and AHS, the data digest covers the data
//! segment and its padding.

use crate::bhs::field;
use crate::{digest, Bhs, Error, Pdu, Result};

/// Which digests the connection negotiated (CRC32C or None, per direction both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DigestConfig {
    /// HeaderDigest=CRC32C.
    pub header: bool,
    /// DataDigest=CRC32C.
    pub data: bool,
}

/// A complete, digest-checked PDU borrowed from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The Basic Header Segment.
    pub bhs: Bhs<&'a [u8]>,
    /// The AHS area (TotalAHSLength * 4 bytes), see [`crate::ahs::iter`].
    pub ahs: &'a [u8],
    /// The data segment, without padding.
    pub data: &'a [u8],
}

impl Frame<'_> {
    /// Parses the typed header.
    pub fn pdu(&self) -> Result<Pdu> {
        Pdu::parse(&self.bhs)
    }
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Total length of the PDU starting at `buf`, once its BHS is available.
/// Returns `None` while fewer than 48 bytes are buffered.
pub fn pdu_len(buf: &[u8], d: DigestConfig) -> Option<usize> {
    let bhs = Bhs::new_checked(buf).ok()?;
    let mut n = field::LEN + bhs.total_ahs_len() as usize * 4;
    if d.header {
        n += 4;
    }
    let data = bhs.data_segment_len() as usize;
    if data > 0 {
        n += pad4(data);
        if d.data {
            n += 4;
        }
    }
    Some(n)
}

/// Parses one PDU from the front of `buf`. `Ok(None)` means more bytes are needed;
/// otherwise returns the frame and the number of bytes it occupies.
pub fn parse(buf: &[u8], d: DigestConfig) -> Result<Option<(Frame<'_>, usize)>> {
    let Some(total) = pdu_len(buf, d) else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    let bhs = Bhs::new_unchecked(&buf[..field::LEN]);
    let ahs_end = field::LEN + bhs.total_ahs_len() as usize * 4;
    let mut at = ahs_end;
    if d.header {
        let computed = digest::crc32c(&buf[..ahs_end]);
        let received = digest::from_wire([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        if computed != received {
            return Err(Error::HeaderDigest { computed, received });
        }
        at += 4;
    }
    let data_len = bhs.data_segment_len() as usize;
    let data = &buf[at..at + data_len];
    if data_len > 0 {
        let padded = pad4(data_len);
        if d.data {
            let computed = digest::crc32c(&buf[at..at + padded]);
            let dg = at + padded;
            let received = digest::from_wire([buf[dg], buf[dg + 1], buf[dg + 2], buf[dg + 3]]);
            if computed != received {
                return Err(Error::DataDigest { computed, received });
            }
        }
    }
    Ok(Some((
        Frame {
            bhs,
            ahs: &buf[field::LEN..ahs_end],
            data,
        },
        total,
    )))
}

/// Appends a complete PDU to `out`: header, AHS (already padded, see
/// [`crate::ahs::emit`]), header digest, data, padding, data digest.
pub fn emit(out: &mut Vec<u8>, pdu: &Pdu, ahs: &[u8], data: &[u8], d: DigestConfig) -> Result<()> {
    if ahs.len() & 3 != 0 || ahs.len() / 4 > u8::MAX as usize {
        return Err(Error::MalformedAhs(
            "AHS area not a multiple of 4 or too long",
        ));
    }
    if data.len() > 0x00ff_ffff {
        return Err(Error::DataTooLong(data.len()));
    }
    let start = out.len();
    out.resize(start + field::LEN, 0);
    {
        let mut bhs = Bhs::new_unchecked(&mut out[start..start + field::LEN]);
        pdu.emit(&mut bhs);
        bhs.set_total_ahs_len((ahs.len() / 4) as u8);
        bhs.set_data_segment_len(data.len() as u32)?;
    }
    out.extend_from_slice(ahs);
    if d.header {
        let crc = digest::crc32c(&out[start..]);
        out.extend_from_slice(&digest::to_wire(crc));
    }
    if !data.is_empty() {
        let data_start = out.len();
        out.extend_from_slice(data);
        let pad = pad4(data.len()) - data.len();
        out.extend_from_slice(&[0u8; 3][..pad]);
        if d.data {
            let crc = digest::crc32c(&out[data_start..]);
            out.extend_from_slice(&digest::to_wire(crc));
        }
    }
    Ok(())
}
