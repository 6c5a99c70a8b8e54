//! The type-length element actions and instructions share: a 16-bit type, a
//! 16-bit length that counts the header, then a body padded to 8 bytes.
//!
//! ```text
//! +---------------+---------------+---------------------------------+
//! | type          | len (incl hdr)| type-specific body, pad to 8    |
//! +---------------+---------------+---------------------------------+
//! ```
//!
//! Section 7.2.4 (`ofp_instruction`) and 7.2.5 (`ofp_action_header`: "len:
//! Length of action, including this header. This is the length of action,
//! including any padding to make it 64-bit aligned."). The length is checked
//! here once; [`crate::action`] and [`crate::instruction`] read the body.

use crate::bytes::{u16_at, zeros};
use crate::field::action as field;
use crate::{Error, Result};

/// The element at the front of `buf`: its type and its bytes (header and
/// padding included, exactly `len` of them). A short buffer, a length that
/// is not a positive multiple of 8 or one that runs past `buf` is `err` of
/// what is wrong (`Error::BadAction` or `Error::BadInstruction`).
pub(crate) fn parse(buf: &[u8], err: fn(&'static str) -> Error) -> Result<(u16, &[u8])> {
    if buf.len() < field::LEN {
        return Err(err("truncated header"));
    }
    let len = u16_at(buf, field::LENGTH) as usize;
    if len < field::LEN || !len.is_multiple_of(8) {
        return Err(err("length not a positive multiple of 8"));
    }
    let e = buf.get(..len).ok_or(err("length runs past the list"))?;
    Ok((u16_at(buf, field::TYPE), e))
}

/// Every element of `buf` by `one` (which returns an element and its
/// length); the bytes must hold whole elements only.
pub(crate) fn parse_list<T>(
    mut buf: &[u8],
    mut one: impl FnMut(&[u8]) -> Result<(T, usize)>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (t, n) = one(buf)?;
        out.push(t);
        buf = &buf[n..];
    }
    Ok(out)
}

/// Appends an element of type `ty` whose whole length is `len`: the
/// header, what `body` appends, zeros up to `len`. Over 65535 bytes is
/// [`Error::TooLong`].
pub(crate) fn emit(
    out: &mut Vec<u8>,
    ty: u16,
    len: usize,
    body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let Ok(len16) = u16::try_from(len) else {
        return Err(Error::TooLong(len));
    };
    let start = out.len();
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&len16.to_be_bytes());
    body(out)?;
    let written = out.len() - start;
    debug_assert!(
        written <= len && len.is_multiple_of(8),
        "{written} of {len}"
    );
    zeros(out, len.saturating_sub(written));
    Ok(())
}
