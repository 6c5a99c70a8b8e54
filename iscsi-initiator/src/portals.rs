//! Portals: parsing `host[:port]` network portals and login-redirect
//! `TargetAddress` values, and [`PortalSet`], the sans-IO choice of where the
//! next connection of a session goes (failover across several portals,
//! redirects followed a bounded number of times).
//!
//! A portal is an IP address or DNS name and a TCP port (RFC 7143 section
//! 4.2.6; port 3260 when none is given, section 13.2 "well-known port").
//! IPv6 literals are bracketed (`[::1]:3260`); a bare IPv6 literal (more than
//! one colon, no brackets) is taken as an address without a port.

use std::fmt;

/// The iSCSI well-known TCP port (RFC 7143 section 13.2).
pub const DEFAULT_PORT: u16 = 3260;

/// Redirects followed per login attempt before it counts as failed (RFC
/// 7143 section 11.13.5 does not bound them; a target pair redirecting to
/// each other must not loop forever).
pub const MAX_REDIRECT_HOPS: u32 = 5;

/// Why a portal string is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalError {
    /// The input as given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for PortalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "portal `{}`: {} (expected HOST[:PORT] or [IPv6][:PORT])",
            self.input, self.why
        )
    }
}

impl std::error::Error for PortalError {}

fn bad(input: &str, why: &'static str) -> PortalError {
    PortalError {
        input: input.to_owned(),
        why,
    }
}

fn port(input: &str, p: &str) -> Result<u16, PortalError> {
    match p.parse::<u16>() {
        Ok(0) => Err(bad(input, "port 0")),
        Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(bad(input, "the port must be a number 1..65535")),
    }
}

/// Parses one portal and returns it as `host:port` (`[v6]:port`), ready for
/// `ToSocketAddrs`.
pub fn parse_portal(s: &str) -> Result<String, PortalError> {
    if s.is_empty() {
        return Err(bad(s, "empty"));
    }
    if s.len() > 300 {
        return Err(bad(s, "longer than 300 bytes"));
    }
    // A DNS name or an IPv4 address, or an IPv6 one in brackets.
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
    {
        return Err(bad(s, "stray character"));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(bad(s, "`[` without `]`"));
        };
        // 45 characters: the longest IPv6 text form (with a dotted IPv4 tail).
        if host.is_empty()
            || host.len() > 45
            || !host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(bad(s, "not an IPv6 address between the brackets"));
        }
        let p = match after {
            "" => DEFAULT_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) => port(s, p)?,
                None => return Err(bad(s, "text after `]` that is not `:PORT`")),
            },
        };
        return Ok(format!("[{host}]:{p}"));
    }
    if s.contains('[') || s.contains(']') {
        return Err(bad(s, "unbalanced brackets"));
    }
    let name = |host: &str| match host.len() {
        0 => Err(bad(s, "empty host")),
        // RFC 1035 section 2.3.4: names are at most 255 octets on the wire.
        254.. => Err(bad(s, "host name longer than 253 characters")),
        _ => Ok(()),
    };
    match s.matches(':').count() {
        0 => {
            name(s)?;
            Ok(format!("{s}:{DEFAULT_PORT}"))
        }
        1 => {
            let (host, p) = s.split_once(':').expect("one colon");
            name(host)?;
            Ok(format!("{host}:{}", port(s, p)?))
        }
        // A bare IPv6 literal: no port can be told apart from it.
        _ => {
            if s.len() > 45
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(bad(s, "several colons but not an IPv6 address"));
            }
            Ok(format!("[{s}]:{DEFAULT_PORT}"))
        }
    }
}

/// Parses a comma-separated portal list (`h1:p1,h2:p2`); at least one.
pub fn parse_portal_list(s: &str) -> Result<Vec<String>, PortalError> {
    if s.is_empty() {
        return Err(bad(s, "no portal given"));
    }
    let mut out: Vec<String> = Vec::new();
    for p in s.split(',') {
        let p = parse_portal(p)?;
        if out.contains(&p) {
            return Err(bad(s, "the same portal twice"));
        }
        out.push(p);
    }
    Ok(out)
}

/// Parses a `TargetAddress` value (RFC 7143 section 13.8:
/// `domainname[:port][,portal-group-tag]`) into a portal.
pub fn parse_target_address(v: &str) -> Result<String, PortalError> {
    let addr = match v.rsplit_once(',') {
        Some((a, tag)) if tag.parse::<u16>().is_ok() => a,
        Some(_) => return Err(bad(v, "bad portal group tag")),
        None => v,
    };
    parse_portal(addr)
}

/// Where a session's connections go: its portals in order, the one in use,
/// and a redirect the target asked for (RFC 7143 section 11.13.5, status
/// class 1).
///
/// * [`PortalSet::failed`]: the connection (or the login on it) failed:
///   the next attempt goes to the next portal, wrapping around (with one
///   portal, the same one again); a temporary redirect is forgotten.
/// * [`PortalSet::redirected`]: the target answered the login with
///   "moved temporarily" (0x0101) or "moved permanently" (0x0102): the next
///   attempt goes to its `TargetAddress`; a permanent move replaces the
///   portal in the list for all later logins. More than
///   [`MAX_REDIRECT_HOPS`] redirects without a login in between count as a
///   failure.
/// * [`PortalSet::logged_in`]: the hop count starts again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSet {
    portals: Vec<String>,
    current: usize,
    redirect: Option<String>,
    hops: u32,
}

/// What [`PortalSet::redirected`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Dial this address next.
    Follow(String),
    /// Too many hops: treated as a failed login (the set moved on to the
    /// next portal).
    TooManyHops,
}

impl PortalSet {
    /// A set over `portals` (already parsed, at least one).
    pub fn new(portals: Vec<String>) -> Result<PortalSet, PortalError> {
        if portals.is_empty() {
            return Err(bad("", "no portal given"));
        }
        Ok(PortalSet {
            portals,
            current: 0,
            redirect: None,
            hops: 0,
        })
    }

    /// The address to dial now: the redirect if one is pending, else the
    /// current portal.
    pub fn address(&self) -> &str {
        self.redirect
            .as_deref()
            .unwrap_or(&self.portals[self.current])
    }

    /// Index of the current portal in [`PortalSet::portals`].
    pub fn index(&self) -> usize {
        self.current
    }

    /// The portals (permanent redirects applied).
    pub fn portals(&self) -> &[String] {
        &self.portals
    }

    /// True when the address to dial is a redirect's.
    pub fn is_redirected(&self) -> bool {
        self.redirect.is_some()
    }

    /// The connection or its login failed: move to the next portal.
    pub fn failed(&mut self) {
        self.redirect = None;
        self.hops = 0;
        self.current = (self.current + 1) % self.portals.len();
    }

    /// The login succeeded on [`PortalSet::address`].
    pub fn logged_in(&mut self) {
        self.hops = 0;
    }

    /// The target redirected the login to `address` (a `TargetAddress`
    /// value, already parsed into a portal).
    pub fn redirected(&mut self, address: &str, permanent: bool) -> Redirect {
        self.hops += 1;
        if self.hops > MAX_REDIRECT_HOPS {
            self.failed();
            return Redirect::TooManyHops;
        }
        if permanent {
            // Section 11.13.5, 0x0102: "the initiator SHOULD use the new
            // address for all future" logins to this target.
            self.portals[self.current] = address.to_owned();
            self.redirect = None;
        } else {
            self.redirect = Some(address.to_owned());
        }
        Redirect::Follow(address.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portals() {
        assert_eq!(parse_portal("10.0.0.1").unwrap(), "10.0.0.1:3260");
        assert_eq!(parse_portal("10.0.0.1:3261").unwrap(), "10.0.0.1:3261");
        assert_eq!(parse_portal("host.example").unwrap(), "host.example:3260");
        assert_eq!(parse_portal("[::1]").unwrap(), "[::1]:3260");
        assert_eq!(parse_portal("[fe80::1]:99").unwrap(), "[fe80::1]:99");
        assert_eq!(parse_portal("fe80::1").unwrap(), "[fe80::1]:3260");
        for b in [
            "", ":3260", "h:", "h:0", "h:65536", "h:+1", "h:x", "[::1", "::1]", "[]:1", "[zz]:1",
            "[::1]x", "[::1]:", "a b", "h/x", "u@h", "h,i", "fe80::g", "é", "h;x", "h*",
        ] {
            let e = parse_portal(b).unwrap_err();
            assert!(e.to_string().contains("portal `"), "{b}: {e}");
        }
    }

    #[test]
    fn lengths() {
        let long = "a".repeat(254);
        assert!(parse_portal(&long).unwrap_err().why.contains("253"));
        assert!(parse_portal(&format!("{long}:1")).is_err());
        assert!(parse_portal(&"a".repeat(253)).is_ok());
        let v6 = format!("[{}]", "1:".repeat(23));
        assert!(parse_portal(&v6).is_err());
        assert!(parse_portal(&"b".repeat(301))
            .unwrap_err()
            .why
            .contains("300"));
        // What parses, parses again to itself.
        for ok in ["a", "a:1", "[::1]", "::1", &"c".repeat(253)] {
            let p = parse_portal(ok).unwrap();
            assert_eq!(parse_portal(&p).unwrap(), p);
        }
    }

    #[test]
    fn lists() {
        assert_eq!(
            parse_portal_list("a:1,[::2]:3,c").unwrap(),
            vec!["a:1", "[::2]:3", "c:3260"]
        );
        assert!(parse_portal_list("").is_err());
        assert!(parse_portal_list("a,").is_err());
        assert!(parse_portal_list(",a").is_err());
        assert!(parse_portal_list("a:1,a:1").is_err());
        assert!(parse_portal_list("a,a:3260").is_err());
    }

    #[test]
    fn target_addresses() {
        assert_eq!(
            parse_target_address("10.1.1.1:3262,1").unwrap(),
            "10.1.1.1:3262"
        );
        assert_eq!(parse_target_address("10.1.1.1").unwrap(), "10.1.1.1:3260");
        assert_eq!(parse_target_address("[::1]:5,7").unwrap(), "[::1]:5");
        assert!(parse_target_address("10.1.1.1,x").is_err());
        assert!(parse_target_address("").is_err());
    }

    #[test]
    fn failover_wraps_and_redirects_are_bounded() {
        let mut s = PortalSet::new(vec!["a:1".into(), "b:2".into()]).unwrap();
        assert_eq!(s.address(), "a:1");
        s.failed();
        assert_eq!(s.address(), "b:2");
        s.failed();
        assert_eq!(s.address(), "a:1");
        // Temporary: used until the next failure, the list unchanged.
        assert_eq!(s.redirected("t:9", false), Redirect::Follow("t:9".into()));
        assert_eq!(s.address(), "t:9");
        assert!(s.is_redirected());
        s.logged_in();
        s.failed();
        assert_eq!(s.address(), "b:2");
        assert_eq!(s.portals(), ["a:1", "b:2"]);
        // Permanent: replaces the portal.
        s.redirected("p:7", true);
        assert_eq!(s.address(), "p:7");
        assert_eq!(s.portals(), ["a:1", "p:7"]);
        s.logged_in();
        // A loop of redirects ends after MAX_REDIRECT_HOPS.
        for _ in 0..MAX_REDIRECT_HOPS {
            assert!(matches!(s.redirected("x:1", false), Redirect::Follow(_)));
        }
        assert_eq!(s.redirected("x:1", false), Redirect::TooManyHops);
        assert_eq!(s.address(), "a:1");
        // One portal: the same one again.
        let mut one = PortalSet::new(vec!["a:1".into()]).unwrap();
        one.failed();
        assert_eq!(one.address(), "a:1");
        assert!(PortalSet::new(Vec::new()).is_err());
    }
}
