//! Text `key=value` lists (RFC 7143 section 6): the data segment of Login and Text PDUs.
//!
//! Section 6.1: "key=value pairs ... each of which is terminated by a null (0x00)
//! delimiter". Keys and values are UTF-8; a key is at most 63 bytes.

use crate::{Error, Result};

/// Longest key allowed (section 6.1: "A key name ... up to 63 bytes").
pub const MAX_KEY_LEN: usize = 63;

/// Iterates over the pairs of a complete text list. A trailing fragment without
/// its null delimiter is an error (callers reassemble C-bit continuations first).
pub fn pairs(data: &[u8]) -> impl Iterator<Item = Result<(&str, &str)>> {
    // Padding after the last delimiter is not part of DataSegmentLength, but some
    // targets pad with extra nulls: skip empty entries.
    let mut rest = data;
    core::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            rest = &[];
            return Some(Err(Error::MalformedText("pair without null delimiter")));
        };
        let item = &rest[..end];
        rest = &rest[end + 1..];
        if item.is_empty() {
            continue;
        }
        return Some(parse_pair(item));
    })
}

fn parse_pair(item: &[u8]) -> Result<(&str, &str)> {
    let s = core::str::from_utf8(item).map_err(|_| Error::MalformedText("not UTF-8"))?;
    let (k, v) = s
        .split_once('=')
        .ok_or(Error::MalformedText("missing '='"))?;
    if k.is_empty() || k.len() > MAX_KEY_LEN {
        return Err(Error::MalformedText("key empty or longer than 63 bytes"));
    }
    Ok((k, v))
}

/// Parses a whole list into owned pairs, in order.
pub fn parse(data: &[u8]) -> Result<Vec<(String, String)>> {
    pairs(data)
        .map(|r| r.map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// Appends `key=value\0` to `out`.
pub fn push(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
    out.push(0);
}

/// Finds the value of `key` in a list, if present and well formed.
pub fn get<'a>(data: &'a [u8], key: &str) -> Option<&'a str> {
    pairs(data)
        .filter_map(|r| r.ok())
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_list() {
        let data = b"HeaderDigest=None\0MaxBurstLength=262144\0";
        let v = parse(data).unwrap();
        assert_eq!(v[0], ("HeaderDigest".into(), "None".into()));
        assert_eq!(v[1], ("MaxBurstLength".into(), "262144".into()));
        assert_eq!(get(data, "MaxBurstLength"), Some("262144"));
    }

    #[test]
    fn value_may_contain_equals() {
        let v = parse(b"TargetAddress=[::1]:3260,1\0X=a=b\0").unwrap();
        assert_eq!(v[1].1, "a=b");
    }

    #[test]
    fn errors() {
        assert!(parse(b"NoEquals\0").is_err());
        assert!(parse(b"A=B").is_err());
        assert!(parse(b"=B\0").is_err());
        assert!(parse(&[b'A', b'=', 0xff, 0]).is_err());
    }

    #[test]
    fn push_then_parse() {
        let mut out = Vec::new();
        push(&mut out, "InitiatorName", "iqn.2026-01.test:init");
        push(&mut out, "SessionType", "Normal");
        assert_eq!(
            parse(&out).unwrap(),
            vec![
                ("InitiatorName".into(), "iqn.2026-01.test:init".into()),
                ("SessionType".into(), "Normal".into())
            ]
        );
    }
}
