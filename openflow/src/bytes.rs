//! Big-endian accessors that cannot panic. Callers check lengths first (once, when a
//! structure is entered); these helpers return 0 / do nothing on an out-of-range field
//! as a second line of defence, never a panic.

use crate::field::Field;

pub(crate) fn u8_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn arr<const N: usize>(b: &[u8], f: Field) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(f) {
        if s.len() == N {
            out.copy_from_slice(s);
        }
    }
    out
}

pub(crate) fn u16_at(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes(arr(b, f))
}

pub(crate) fn u32_at(b: &[u8], f: Field) -> u32 {
    u32::from_be_bytes(arr(b, f))
}

pub(crate) fn u64_at(b: &[u8], f: Field) -> u64 {
    u64::from_be_bytes(arr(b, f))
}

pub(crate) fn mac_at(b: &[u8], f: Field) -> [u8; 6] {
    arr(b, f)
}

/// Appends `n` zero bytes.
pub(crate) fn zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// Bytes needed to pad `n` to a multiple of 8.
pub(crate) fn pad8(n: usize) -> usize {
    (8 - n % 8) % 8
}

/// `n` rounded up to a multiple of 8.
pub(crate) fn round8(n: usize) -> usize {
    n + pad8(n)
}

/// A NUL-padded fixed-size string field as text: the bytes before the first NUL, at
/// most `len - 1` of them (the spec's strings are NUL-terminated). Bytes that are not
/// UTF-8 make every non-ASCII byte a `?`, so the text has as many bytes as the field
/// held and re-emits to the same length.
pub(crate) fn str_at(b: &[u8], f: Field) -> String {
    let s = b.get(f).unwrap_or(&[]);
    let s = &s[..s.len().saturating_sub(1)];
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    match std::str::from_utf8(&s[..end]) {
        Ok(t) => t.to_owned(),
        Err(_) => s[..end]
            .iter()
            .map(|&c| if c.is_ascii() { c as char } else { '?' })
            .collect(),
    }
}

/// Appends `s` NUL-padded to `len` bytes, truncated (at a character boundary) to
/// `len - 1` bytes so a NUL always ends it.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str, len: usize) {
    let mut n = s.len().min(len.saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.extend_from_slice(&s.as_bytes()[..n]);
    zeros(out, len - n);
}
