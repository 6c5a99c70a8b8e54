//! The backend argument, libiscsi's URL form extended with a portal list:
//!
//! ```text
//! iscsi://[USER%SECRET@]PORTAL[,PORTAL...]/IQN/LUN[?KEY=VALUE&...]
//! ```
//!
//! * PORTAL: `host[:port]` or `[IPv6][:port]`, port 3260 by default (the
//!   iSCSI well-known port, RFC 7143 section 13.2). Several portals of the
//!   same target give failover: a connection that dies is replaced by one
//!   to the next portal ([`crate::backend`]).
//! * `USER%SECRET@`: CHAP (RFC 7143 section 12.1.3), libiscsi's spelling
//!   (`%` separates user and secret; no percent-decoding).
//! * keys:
//!   - `portal=HOST[:PORT]`, repeatable: more portals (the form a JSON-RPC
//!     caller builds from a list);
//!   - `target_user=NAME&target_password=SECRET` (libiscsi's names): mutual
//!     CHAP, the name and secret the target must answer our challenge with
//!     (tgtd: `tgtadm --op bind --mode account --outgoing`); needs USER%SECRET;
//!   - `replacement_timeout=SECS` (default 120, as open-iscsi's
//!     `node.session.timeo.replacement_timeout`): how long I/O waits for a
//!     new connection before it fails; 0 fails it at once;
//!   - `nop_interval=SECS` (default 5), `nop_timeout=SECS` (default 15): the
//!     NOP-Out keepalive after idle time and how long a ping, a login step
//!     or a TCP connect may go unanswered before the connection counts as
//!     dead (open-iscsi's `noop_out_interval` / `noop_out_timeout`);
//!   - `initiator_name=IQN`: our iSCSI name (default
//!     [`crate::backend::INITIATOR`]).
//!
//! The [`fmt::Display`] form hides the secrets (it goes to logs).

use iscsi_initiator::chap::Chap;
use iscsi_initiator::portals::{parse_portal, parse_portal_list};
use std::fmt;
use std::time::Duration;

/// Session timers of an iSCSI device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long outstanding and new I/O waits for a replacement connection
    /// before it fails (`VIRTIO_BLK_S_IOERR`); reconnecting goes on.
    pub replacement: Duration,
    /// Idle time before a NOP-Out ping.
    pub nop_interval: Duration,
    /// How long a ping, a login step or a TCP connect may take.
    pub nop_timeout: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            replacement: Duration::from_secs(120),
            nop_interval: Duration::from_secs(5),
            nop_timeout: Duration::from_secs(15),
        }
    }
}

/// A parsed `iscsi://` backend argument.
#[derive(Clone, PartialEq, Eq)]
pub struct IscsiSpec {
    /// The target's portals, `host:port` each, in the order they are tried
    /// (at least one).
    pub portals: Vec<String>,
    /// Target name (iqn./eui./naa. form, checked loosely).
    pub target: String,
    /// Logical unit number.
    pub lun: u16,
    /// CHAP credentials (one-way, or mutual with `target_user`).
    pub chap: Option<Chap>,
    /// Session timers.
    pub timeouts: Timeouts,
    /// Our initiator name, when not the default.
    pub initiator: Option<String>,
}

impl fmt::Debug for IscsiSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through Display: no secrets in debug output either.
        write!(f, "IscsiSpec({self})")
    }
}

/// The most portals one device may name.
pub const MAX_PORTALS: usize = 16;

fn secs(key: &str, v: &str, max: u64) -> Result<Duration, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{key}={v}: not a number of seconds"))?;
    if !s.is_finite() || s < 0.0 || s > max as f64 {
        return Err(format!("{key}={v}: must be 0..={max} seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn check_name(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 255 || v.bytes().any(|b| b.is_ascii_control() || b == b'=') {
        return Err(format!(
            "{what}: 1..255 characters without control characters or `=`"
        ));
    }
    Ok(())
}

impl IscsiSpec {
    /// Parses `iscsi://[USER%SECRET@]PORTAL[,PORTAL...]/IQN/LUN[?KEY=VALUE&...]`.
    pub fn parse(s: &str) -> Result<IscsiSpec, String> {
        let bad = |why: &str| {
            format!(
                "backend `{}`: {why} (expected iscsi://[USER%SECRET@]HOST[:PORT][,HOST[:PORT]...]/IQN/LUN[?KEY=VALUE&...])",
                redact(s)
            )
        };
        let rest = s
            .strip_prefix("iscsi://")
            .ok_or_else(|| bad("not an iscsi:// URL"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut parts = rest.split('/');
        let (Some(authority), Some(target), Some(lun), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("three parts needed"));
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let portals = parse_portal_list(hosts).map_err(|e| bad(&e.to_string()))?;
        if portals.len() > MAX_PORTALS {
            return Err(bad(&format!("more than {MAX_PORTALS} portals")));
        }
        // RFC 7143 section 4.2.7.1: names are iqn., eui. or naa. forms.
        let lower = target.to_ascii_lowercase();
        if !(lower.starts_with("iqn.") || lower.starts_with("eui.") || lower.starts_with("naa.")) {
            return Err(bad("the target name must start with iqn., eui. or naa."));
        }
        check_name("target name", target).map_err(|e| bad(&e))?;
        let lun: u16 = lun
            .parse()
            .map_err(|_| bad("LUN must be a number 0..65535"))?;
        let chap = match userinfo {
            None => None,
            Some(u) => {
                let Some((user, secret)) = u.split_once('%') else {
                    return Err(bad("CHAP needs USER%SECRET@ (the secret is missing)"));
                };
                check_name("CHAP user", user).map_err(|e| bad(&e))?;
                check_name("CHAP secret", secret).map_err(|e| bad(&e))?;
                Some(Chap {
                    user: user.to_owned(),
                    secret: secret.to_owned(),
                    mutual: None,
                })
            }
        };
        let mut spec = IscsiSpec {
            portals,
            target: target.to_owned(),
            lun,
            chap,
            timeouts: Timeouts::default(),
            initiator: None,
        };
        if let Some(q) = query {
            spec.apply_query(q).map_err(|e| bad(&e))?;
        }
        Ok(spec)
    }

    fn apply_query(&mut self, q: &str) -> Result<(), String> {
        let (mut tuser, mut tsecret) = (None, None);
        let mut seen: Vec<&str> = Vec::new();
        for kv in q.split('&') {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!("`{}`: KEY=VALUE expected", redact_kv(kv)));
            };
            if k != "portal" {
                if seen.contains(&k) {
                    return Err(format!("{k} given twice"));
                }
                seen.push(k);
            }
            match k {
                "portal" => self.add_portal(v)?,
                "target_user" => {
                    check_name("target_user", v)?;
                    tuser = Some(v.to_owned());
                }
                "target_password" => {
                    check_name("target_password", v)?;
                    tsecret = Some(v.to_owned());
                }
                "replacement_timeout" => self.timeouts.replacement = secs(k, v, 86_400)?,
                "nop_interval" => {
                    self.timeouts.nop_interval = secs(k, v, 3600)?.max(Duration::from_millis(100))
                }
                "nop_timeout" => {
                    self.timeouts.nop_timeout = secs(k, v, 3600)?.max(Duration::from_millis(100))
                }
                "initiator_name" => {
                    check_name("initiator_name", v)?;
                    self.initiator = Some(v.to_owned());
                }
                _ => {
                    return Err(format!(
                        "unknown key `{k}` (known: portal, target_user, target_password, \
                         replacement_timeout, nop_interval, nop_timeout, initiator_name)"
                    ))
                }
            }
        }
        match (tuser, tsecret) {
            (None, None) => Ok(()),
            (Some(u), Some(p)) => match &mut self.chap {
                Some(c) => {
                    c.mutual = Some((u, p));
                    Ok(())
                }
                None => Err("mutual CHAP (target_user) needs USER%SECRET@ as well".into()),
            },
            _ => Err("target_user and target_password go together".into()),
        }
    }

    /// Adds a portal (`host[:port]`) after the others: the repeated-param
    /// form of a portal list.
    pub fn add_portal(&mut self, portal: &str) -> Result<(), String> {
        let p = parse_portal(portal).map_err(|e| e.to_string())?;
        if self.portals.contains(&p) {
            return Err(format!("portal {p} given twice"));
        }
        if self.portals.len() >= MAX_PORTALS {
            return Err(format!("more than {MAX_PORTALS} portals"));
        }
        self.portals.push(p);
        Ok(())
    }

    /// The first portal.
    pub fn portal(&self) -> &str {
        &self.portals[0]
    }
}

/// `s` with the secrets of its userinfo and query replaced by `***`: an
/// `iscsi://` argument fit for a log or an error message, valid or not
/// (other strings come back unchanged unless they look like one).
pub fn redact_url(s: &str) -> String {
    redact(s)
}

fn redact(s: &str) -> String {
    let (head, query) = match s.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (s, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((u, after)) => {
                let user = u.split_once('%').map_or(u, |(u, _)| u);
                format!("{scheme}://{user}%***@{after}")
            }
            None => head.to_owned(),
        },
        None => head.to_owned(),
    };
    if let Some(q) = query {
        out.push('?');
        let kvs: Vec<String> = q.split('&').map(redact_kv).collect();
        out.push_str(&kvs.join("&"));
    }
    out
}

fn redact_kv(kv: &str) -> String {
    match kv.split_once('=') {
        Some((k, _)) if k.contains("password") || k.contains("secret") => format!("{k}=***"),
        _ => kv.to_owned(),
    }
}

impl fmt::Display for IscsiSpec {
    /// The URL with `***` for the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iscsi://")?;
        if let Some(c) = &self.chap {
            write!(f, "{}%***@", c.user)?;
        }
        write!(f, "{}/{}/{}", self.portals.join(","), self.target, self.lun)?;
        let mut sep = '?';
        if let Some(Chap {
            mutual: Some((u, _)),
            ..
        }) = &self.chap
        {
            write!(f, "{sep}target_user={u}&target_password=***")?;
            sep = '&';
        }
        let d = Timeouts::default();
        let t = self.timeouts;
        for (k, v, dv) in [
            ("replacement_timeout", t.replacement, d.replacement),
            ("nop_interval", t.nop_interval, d.nop_interval),
            ("nop_timeout", t.nop_timeout, d.nop_timeout),
        ] {
            if v != dv {
                write!(f, "{sep}{k}={}", v.as_secs_f64())?;
                sep = '&';
            }
        }
        if let Some(i) = &self.initiator {
            write!(f, "{sep}initiator_name={i}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let s = IscsiSpec::parse("iscsi://127.0.0.1:3261/iqn.2026-01.dev.vswitch:x/1").unwrap();
        assert_eq!(s.portals, ["127.0.0.1:3261"]);
        assert_eq!(s.portal(), "127.0.0.1:3261");
        assert_eq!(s.target, "iqn.2026-01.dev.vswitch:x");
        assert_eq!(s.lun, 1);
        assert_eq!(s.chap, None);
        assert_eq!(s.timeouts, Timeouts::default());
        assert_eq!(
            s.to_string(),
            "iscsi://127.0.0.1:3261/iqn.2026-01.dev.vswitch:x/1"
        );
        let s = IscsiSpec::parse("iscsi://host/iqn.a:b/0").unwrap();
        assert_eq!(s.portals, ["host:3260"]);
        let s = IscsiSpec::parse("iscsi://[::1]:3262/iqn.a:b/0").unwrap();
        assert_eq!(s.portals, ["[::1]:3262"]);
    }

    #[test]
    fn portal_lists() {
        let s = IscsiSpec::parse("iscsi://h1:1,h2,[::1]:3/iqn.a:b/2").unwrap();
        assert_eq!(s.portals, ["h1:1", "h2:3260", "[::1]:3"]);
        assert_eq!(s.to_string(), "iscsi://h1:1,h2:3260,[::1]:3/iqn.a:b/2");
        // Repeated-param form, and both together.
        let s = IscsiSpec::parse("iscsi://h1:1/iqn.a:b/2?portal=h2:2&portal=h3").unwrap();
        assert_eq!(s.portals, ["h1:1", "h2:2", "h3:3260"]);
        let mut s = IscsiSpec::parse("iscsi://h1/iqn.a:b/2").unwrap();
        s.add_portal("h4:4").unwrap();
        assert_eq!(s.portals, ["h1:3260", "h4:4"]);
        assert!(s.add_portal("h4:4").unwrap_err().contains("twice"));
        assert!(s.add_portal("h5:0").is_err());
        // The Display form parses back to the same spec.
        let s = IscsiSpec::parse(
            "iscsi://h1:1,h2:2/iqn.a:b/3?replacement_timeout=2.5&nop_interval=1&initiator_name=iqn.x:y",
        )
        .unwrap();
        assert_eq!(IscsiSpec::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn chap_and_options() {
        let s = IscsiSpec::parse(
            "iscsi://alice%s3cret@h:1/iqn.a:b/1?target_user=tgt&target_password=t0p&replacement_timeout=5&nop_interval=1&nop_timeout=2",
        )
        .unwrap();
        let c = s.chap.clone().unwrap();
        assert_eq!((c.user.as_str(), c.secret.as_str()), ("alice", "s3cret"));
        assert_eq!(c.mutual, Some(("tgt".into(), "t0p".into())));
        assert_eq!(s.timeouts.replacement, Duration::from_secs(5));
        assert_eq!(s.timeouts.nop_interval, Duration::from_secs(1));
        assert_eq!(s.timeouts.nop_timeout, Duration::from_secs(2));
        // Secrets never show in Display or Debug.
        for shown in [s.to_string(), format!("{s:?}")] {
            assert!(
                !shown.contains("s3cret") && !shown.contains("t0p"),
                "{shown}"
            );
            assert!(shown.contains("alice%***@") && shown.contains("target_user=tgt"));
        }
        let s = IscsiSpec::parse("iscsi://u%p@h/iqn.a:b/1?replacement_timeout=0").unwrap();
        assert_eq!(s.timeouts.replacement, Duration::ZERO);
        assert_eq!(s.chap.unwrap().mutual, None);
    }

    #[test]
    fn malformed() {
        for (bad, says) in [
            ("", "not an iscsi:// URL"),
            ("iscsi://", "three parts"),
            ("file:/x", "not an iscsi:// URL"),
            ("iscsi://h:1/iqn.a", "three parts"),
            ("iscsi://h:1/iqn.a/1/2", "three parts"),
            ("iscsi://h:1/iqn.a/x", "LUN"),
            ("iscsi://h:1/iqn.a/70000", "LUN"),
            ("iscsi:///iqn.a/1", "no portal"),
            ("iscsi://h:1/target/1", "iqn."),
            ("iscsi://h1,/iqn.a:b/1", "empty"),
            ("iscsi://h1,,h2/iqn.a:b/1", "empty"),
            ("iscsi://h1:1,h1:1/iqn.a:b/1", "twice"),
            ("iscsi://h1:99999/iqn.a:b/1", "port"),
            ("iscsi://h1:x/iqn.a:b/1", "port"),
            ("iscsi://[::1/iqn.a:b/1", "`]`"),
            ("iscsi://user@h/iqn.a:b/1", "secret is missing"),
            ("iscsi://%pw@h/iqn.a:b/1", "CHAP user"),
            ("iscsi://u%@h/iqn.a:b/1", "CHAP secret"),
            ("iscsi://h/iqn.a:b/1?nop", "KEY=VALUE"),
            ("iscsi://h/iqn.a:b/1?colour=red", "unknown key `colour`"),
            ("iscsi://h/iqn.a:b/1?replacement_timeout=-1", "0..="),
            ("iscsi://h/iqn.a:b/1?replacement_timeout=x", "not a number"),
            ("iscsi://h/iqn.a:b/1?nop_timeout=inf", "0..="),
            (
                "iscsi://h/iqn.a:b/1?replacement_timeout=1&replacement_timeout=2",
                "twice",
            ),
            ("iscsi://h/iqn.a:b/1?portal=h", "twice"),
            ("iscsi://h/iqn.a:b/1?portal=", "empty"),
            ("iscsi://u%p@h/iqn.a:b/1?target_user=t", "go together"),
            (
                "iscsi://h/iqn.a:b/1?target_user=t&target_password=p",
                "needs USER%SECRET",
            ),
        ] {
            let e = IscsiSpec::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A secret in a malformed URL is not echoed back.
        let e = IscsiSpec::parse("iscsi://u%hunter2@h/iqn.a:b/x").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = IscsiSpec::parse("iscsi://u%p@h/iqn.a:b/1?target_password=hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let many: Vec<String> = (0..MAX_PORTALS + 1)
            .map(|i| format!("portal=h{i}"))
            .collect();
        let e = IscsiSpec::parse(&format!("iscsi://h/iqn.a:b/1?{}", many.join("&"))).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[u8] = b"iscs:/[]0123456789.qneuaAh,%@?&=_\xc3\xa9";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..4000 {
            let n = (x % 48) as usize;
            let s: String = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
                })
                .collect();
            let _ = IscsiSpec::parse(&format!("iscsi://{s}"));
            let _ = IscsiSpec::parse(&format!("iscsi://h/iqn.a:b/1?{s}"));
            let _ = IscsiSpec::parse(&s);
        }
    }
}
