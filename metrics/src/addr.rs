//! Where the endpoint listens: loopback unless the operator says otherwise.
//!
//! The endpoint has no authentication and no TLS, and what it serves names
//! the host's devices and sockets and shows its traffic: on a loopback
//! address only local processes (a Prometheus agent, an SSH tunnel) reach
//! it. Any other address must be asked for explicitly.

use std::net::{SocketAddr, ToSocketAddrs};

/// Parses a listen address (`127.0.0.1:9100`, `[::1]:9100`,
/// `localhost:9100`; port 0 picks a free one). Refuses an address that is
/// not loopback unless `allow_remote`; `flag` names the option in errors.
pub fn parse_listen(s: &str, allow_remote: bool, flag: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{flag} {s}: not an address and port like 127.0.0.1:9100 ({e})"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{flag} {s}: resolves to no address"))?;
    if !allow_remote {
        if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "{flag} {s}: {} is not a loopback address, and the metrics endpoint has no \
                 authentication or TLS (it shows device names and traffic): listen on 127.0.0.1 \
                 and scrape through a local agent or an SSH tunnel, or add {flag}-allow-remote",
                a.ip()
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_by_default() {
        let f = "--metrics";
        assert_eq!(
            parse_listen("127.0.0.1:9100", false, f).unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert!(parse_listen("[::1]:0", false, f).is_ok());
        assert!(parse_listen("127.0.0.2:9100", false, f).is_ok());
        let e = parse_listen("0.0.0.0:9100", false, f).unwrap_err();
        assert!(
            e.contains("not a loopback") && e.contains("--metrics-allow-remote"),
            "{e}"
        );
        assert!(parse_listen("10.1.2.3:9100", false, f).is_err());
        assert!(parse_listen("0.0.0.0:9100", true, f).is_ok());
        assert!(parse_listen("127.0.0.1", false, f).is_err());
        assert!(parse_listen("127.0.0.1:99999", false, f).is_err());
        assert!(parse_listen("", false, f).is_err());
    }
}
