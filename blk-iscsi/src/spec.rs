//! The backend argument `iscsi://PORTAL/IQN/LUN` (PORTAL = `host:port`, the
//! port defaulting to 3260, the iSCSI well-known port of RFC 7143 section 13.2).

use std::fmt;

/// A parsed `iscsi://` backend argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiSpec {
    /// `host:port`.
    pub portal: String,
    /// Target name (iqn./eui./naa. form, checked loosely).
    pub target: String,
    /// Logical unit number.
    pub lun: u16,
}

impl IscsiSpec {
    /// Parses `iscsi://PORTAL/IQN/LUN`.
    pub fn parse(s: &str) -> Result<IscsiSpec, String> {
        let bad = |why: &str| format!("backend `{s}`: {why} (expected iscsi://HOST:PORT/IQN/LUN)");
        let rest = s
            .strip_prefix("iscsi://")
            .ok_or_else(|| bad("not an iscsi:// URL"))?;
        let mut parts = rest.split('/');
        let (Some(portal), Some(target), Some(lun), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("three parts needed"));
        };
        if portal.is_empty() {
            return Err(bad("empty portal"));
        }
        // RFC 7143 section 4.2.7.1: names are iqn., eui. or naa. forms.
        let lower = target.to_ascii_lowercase();
        if !(lower.starts_with("iqn.") || lower.starts_with("eui.") || lower.starts_with("naa.")) {
            return Err(bad("the target name must start with iqn., eui. or naa."));
        }
        let lun: u16 = lun
            .parse()
            .map_err(|_| bad("LUN must be a number 0..65535"))?;
        // host:port, [v6]:port, or a bare host (port 3260).
        let has_port = if let Some(r) = portal.strip_prefix('[') {
            r.contains("]:")
        } else {
            portal.contains(':')
        };
        let portal = if has_port {
            portal.to_owned()
        } else {
            format!("{portal}:3260")
        };
        Ok(IscsiSpec {
            portal,
            target: target.to_owned(),
            lun,
        })
    }
}

impl fmt::Display for IscsiSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iscsi://{}/{}/{}", self.portal, self.target, self.lun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let s = IscsiSpec::parse("iscsi://127.0.0.1:3261/iqn.2026-01.dev.vswitch:x/1").unwrap();
        assert_eq!(s.portal, "127.0.0.1:3261");
        assert_eq!(s.target, "iqn.2026-01.dev.vswitch:x");
        assert_eq!(s.lun, 1);
        assert_eq!(
            s.to_string(),
            "iscsi://127.0.0.1:3261/iqn.2026-01.dev.vswitch:x/1"
        );
        let s = IscsiSpec::parse("iscsi://host/iqn.a:b/0").unwrap();
        assert_eq!(s.portal, "host:3260");
        let s = IscsiSpec::parse("iscsi://[::1]:3262/iqn.a:b/0").unwrap();
        assert_eq!(s.portal, "[::1]:3262");
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "iscsi://",
            "file:/x",
            "iscsi://h:1/iqn.a",
            "iscsi://h:1/iqn.a/1/2",
            "iscsi://h:1/iqn.a/x",
            "iscsi://h:1/iqn.a/70000",
            "iscsi:///iqn.a/1",
            "iscsi://h:1/target/1",
        ] {
            assert!(IscsiSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[u8] = b"iscs:/[]0123456789.qneuaAh\xc3\xa9";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let n = (x % 40) as usize;
            let s: String = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
                })
                .collect();
            let _ = IscsiSpec::parse(&format!("iscsi://{s}"));
            let _ = IscsiSpec::parse(&s);
        }
    }
}
