//! Connection targets in OVS syntax: `unix:PATH` and `tcp:IP:PORT`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// Where an OVSDB server listens (the active connection methods of `ovsdb-server --help`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unix:PATH`: a Unix domain socket.
    Unix(PathBuf),
    /// `tcp:IP:PORT`: a TCP socket; IPv6 addresses are written in brackets (`tcp:[::1]:6640`).
    Tcp(SocketAddr),
}

impl Target {
    /// Parses `unix:PATH` or `tcp:IP:PORT`; anything else is an [`Error::Target`].
    pub fn parse(s: &str) -> Result<Target, Error> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(Error::Target(format!("{s:?}: empty socket path")));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            // OVS writes IPv6 as [addr]:port, which is also what SocketAddr parses.
            if let Ok(sa) = rest.parse::<SocketAddr>() {
                return Ok(Target::Tcp(sa));
            }
            let (ip, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| Error::Target(format!("{s:?}: expected tcp:IP:PORT")))?;
            let ip: IpAddr = ip
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| Error::Target(format!("{s:?}: {ip:?} is not an IP address")))?;
            let port: u16 = port
                .parse()
                .map_err(|_| Error::Target(format!("{s:?}: {port:?} is not a port number")))?;
            return Ok(Target::Tcp(SocketAddr::new(ip, port)));
        }
        Err(Error::Target(format!(
            "{s:?}: expected unix:PATH or tcp:IP:PORT"
        )))
    }

    /// Opens a blocking stream to the target (`timeout` bounds a TCP connect).
    pub fn connect(&self, timeout: Duration) -> Result<Stream, Error> {
        match self {
            Target::Unix(p) => Ok(Stream::Unix(UnixStream::connect(p)?)),
            Target::Tcp(sa) => {
                let s = TcpStream::connect_timeout(sa, timeout)?;
                // Requests are small and latency matters more than batching.
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(sa) => write!(f, "tcp:{sa}"),
        }
    }
}

/// A connected byte stream, Unix or TCP.
#[derive(Debug)]
pub enum Stream {
    /// A Unix domain socket.
    Unix(UnixStream),
    /// A TCP socket.
    Tcp(TcpStream),
}

impl Stream {
    /// Another handle to the same socket (for a reader thread beside the writer).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    /// Bounds how long a write may block (a server that stops reading must not hang us).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }

    /// Shuts both directions down, which wakes a thread blocked reading it.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets() {
        assert_eq!(
            Target::parse("unix:/run/db.sock").unwrap(),
            Target::Unix("/run/db.sock".into())
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6640").unwrap(),
            Target::Tcp("127.0.0.1:6640".parse().unwrap())
        );
        assert_eq!(
            Target::parse("tcp:[::1]:6640").unwrap(),
            Target::Tcp("[::1]:6640".parse().unwrap())
        );
        assert_eq!(
            Target::parse("tcp:::1:6640").unwrap(),
            Target::Tcp("[::1]:6640".parse().unwrap())
        );
        assert_eq!(Target::parse("unix:/x").unwrap().to_string(), "unix:/x");
    }

    #[test]
    fn parse_bad_targets() {
        for bad in [
            "",
            "unix:",
            "punix:/x",
            "tcp:127.0.0.1",
            "tcp:host:6640",
            "tcp:1.2.3.4:70000",
            "ssl:1.2.3.4:6640",
            "/run/db.sock",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(matches!(e, Error::Target(_)), "{bad}: {e}");
            assert!(e.to_string().contains("bad OVSDB target"), "{e}");
        }
    }
}
