//! CHAP authentication (RFC 7143 section 12.1.3, RFC 1994), one-way and mutual.
//!
//! Response = MD5(identifier || secret || challenge). Binary values travel as `0x` hex
//! (section 6.1, "binary-value"). MD5 comes from the RustCrypto `md-5` crate.

use md5::{Digest, Md5};

/// Credentials for CHAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chap {
    /// Our name (CHAP_N) and the secret the target knows us by.
    pub user: String,
    /// Secret shared with the target.
    pub secret: String,
    /// For mutual CHAP: the name and secret the target must prove.
    pub mutual: Option<(String, String)>,
}

/// CHAP response MD5(id || secret || challenge).
pub fn response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// Encodes bytes as `0x...` hex.
pub fn to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Decodes a `0x` hex (or `0b` base64 is not supported) binary value.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() % 2 != 0 || h.is_empty() {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(from_hex(&to_hex(&[0, 1, 0xab])), Some(vec![0, 1, 0xab]));
        assert_eq!(from_hex("0x1"), None);
        assert_eq!(from_hex("12"), None);
        assert_eq!(from_hex("0xzz"), None);
    }

    #[test]
    fn md5_response() {
        // MD5(0x01 || "secret" || 0x00 0x01 0x02) computed with Python's hashlib.
        let r = response(1, b"secret", &[0, 1, 2]);
        assert_eq!(to_hex(&r), "0xc4081e0c9f89346155ddb08f0bf91611");
    }
}
