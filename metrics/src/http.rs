//! A minimal HTTP/1.1 endpoint: `GET /metrics` (and `HEAD`), one request
//! per connection, on one thread over [`std::net::TcpListener`].
//!
//! ```text
//!  accept ─► read the head (≤ MAX_HEAD bytes, IO_DEADLINE for all of it)
//!         ─► parse_request ─► respond (200 with Registry::render, 404, 405, 400, ...)
//!         ─► write, close
//! ```
//!
//! Message syntax is RFC 9112 (HTTP/1.1); what this server enforces is
//! quoted where it does. A malformed request gets a 4xx answer and the
//! connection closes; nothing a client sends can end the thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::registry::Registry;

/// Largest request head (request line and header fields) accepted; a longer
/// one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its whole request head, and to take the answer.
pub const IO_DEADLINE: Duration = Duration::from_secs(5);
/// The text exposition format's media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The one path served.
pub const PATH: &str = "/metrics";

/// HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Method (case-sensitive, RFC 9110 §9.1).
    pub method: &'a str,
    /// Path of the target, without query.
    pub path: &'a str,
    /// Version.
    pub version: Version,
}

/// An error status and its reason phrase.
pub type Status = (u16, &'static str);

const BAD_REQUEST: Status = (400, "Bad Request");

/// RFC 9110 §5.6.2: `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Parses a request head: the bytes before the empty line that ends it.
pub fn parse_request(head: &[u8]) -> Result<Request<'_>, Status> {
    let text = std::str::from_utf8(head).map_err(|_| BAD_REQUEST)?;
    // RFC 9112 §2.2: a recipient MAY recognize a single LF as a line
    // terminator and ignore the preceding CR.
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // §2.2: a server SHOULD ignore at least one empty line received
    // before the request-line.
    let request_line = lines.find(|l| !l.is_empty()).ok_or(BAD_REQUEST)?;
    // §3: request-line = method SP request-target SP HTTP-version
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD_REQUEST);
    };
    if !is_token(method) || target.is_empty() || target.bytes().any(|c| c.is_ascii_control()) {
        return Err(BAD_REQUEST);
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.len() == 8
            && v.starts_with("HTTP/")
            && v.as_bytes()[5].is_ascii_digit()
            && v.as_bytes()[6] == b'.'
            && v.as_bytes()[7].is_ascii_digit() =>
        {
            return Err((505, "HTTP Version Not Supported"))
        }
        _ => return Err(BAD_REQUEST),
    };
    // §3.2.1 origin-form ("/path?query"); §3.2.2: a server MUST accept the
    // absolute-form ("http://host/path").
    let path_and_query = if target.starts_with('/') {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        return Err(BAD_REQUEST);
    };
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p);
    let mut hosts = 0;
    for l in lines {
        if l.is_empty() {
            break;
        }
        // §5.2: obsolete line folding may be rejected with 400.
        if l.starts_with([' ', '\t']) {
            return Err(BAD_REQUEST);
        }
        // §5.1: field-line = field-name ":" OWS field-value OWS; no
        // whitespace is allowed between the name and the colon (400).
        let (name, _) = l.split_once(':').ok_or(BAD_REQUEST)?;
        if !is_token(name) {
            return Err(BAD_REQUEST);
        }
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        }
    }
    // §3.2: a server MUST respond with 400 to an HTTP/1.1 request that
    // lacks a Host header field and to one with more than one.
    if (version == Version::Http11 && hosts == 0) || hosts > 1 {
        return Err(BAD_REQUEST);
    }
    Ok(Request {
        method,
        path,
        version,
    })
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Body (left out on the wire for HEAD).
    pub body: Vec<u8>,
    /// Whether to send the body (not for HEAD).
    pub send_body: bool,
    /// Whether the answer lists the allowed methods (405).
    pub allow: bool,
}

impl Response {
    /// An error answer with a one-line text body.
    pub fn error((status, reason): Status) -> Response {
        Response {
            status,
            reason,
            body: format!("{status} {reason}\n").into_bytes(),
            send_body: true,
            allow: status == 405,
        }
    }

    /// The answer on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ctype = if self.status == 200 {
            CONTENT_TYPE
        } else {
            "text/plain; charset=utf-8"
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.body.len(),
            if self.allow { "Allow: GET, HEAD\r\n" } else { "" },
        )
        .into_bytes();
        if self.send_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The answer to a request head: the metrics for `GET /metrics`.
pub fn respond(head: &[u8], registry: &Registry) -> Response {
    let req = match parse_request(head) {
        Ok(r) => r,
        Err(s) => return Response::error(s),
    };
    if req.path != PATH {
        return Response::error((404, "Not Found"));
    }
    let head_only = match req.method {
        "GET" => false,
        "HEAD" => true,
        _ => return Response::error((405, "Method Not Allowed")),
    };
    Response {
        status: 200,
        reason: "OK",
        body: registry.render().into_bytes(),
        send_body: !head_only,
        allow: false,
    }
}

/// Why no request head could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The client closed without sending anything: no answer.
    Closed,
    /// Answer with this status and close.
    Status(Status),
}

/// Where the head ends: (its length, the length with the empty line).
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Reads a request head from `s` (a stream with a read timeout), within
/// `deadline`; at most [`MAX_HEAD`] bytes. Returns the head without its
/// terminating empty line.
pub fn read_head(s: &mut impl Read, deadline: Instant) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some((end, _)) = head_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Status((431, "Request Header Fields Too Large")));
        }
        if Instant::now() >= deadline {
            return Err(ReadError::Status((408, "Request Timeout")));
        }
        match s.read(&mut chunk) {
            Ok(0) if buf.iter().all(|c| c.is_ascii_whitespace()) => return Err(ReadError::Closed),
            Ok(0) => return Err(ReadError::Status(BAD_REQUEST)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Status((408, "Request Timeout")))
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

/// Serves one connection: reads its request, answers, closes.
pub fn handle(mut s: TcpStream, registry: &Registry) {
    let deadline = Instant::now() + IO_DEADLINE;
    // Each read waits at most what is left of the deadline, so a client
    // trickling bytes cannot hold the thread past it.
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(IO_DEADLINE));
    let resp = match read_head(&mut TimedRead(&mut s, deadline), deadline) {
        Ok(head) => respond(&head, registry),
        Err(ReadError::Closed) => return,
        Err(ReadError::Status(st)) => Response::error(st),
    };
    let _ = s.write_all(&resp.to_bytes());
    let _ = s.flush();
    let _ = s.shutdown(Shutdown::Write);
    // Let the client read the answer before the close: a close with unread
    // request bytes would send it a reset instead (RFC 9112 §9.6).
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 512];
    while let Ok(n) = s.read(&mut sink) {
        if n == 0 || Instant::now() >= deadline {
            break;
        }
    }
}

/// Reads that retry a read timeout until the deadline.
struct TimedRead<'a>(&'a mut TcpStream, Instant);

impl Read for TimedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && Instant::now() < self.1 => {}
                r => return r,
            }
        }
    }
}

/// The metrics endpoint: a thread answering on a listening socket until
/// dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `addr` and serves `registry` at `/metrics`.
    pub fn start(addr: SocketAddr, registry: Arc<Registry>) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vswitch-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.load(Ordering::Acquire) {
                        break;
                    }
                    match conn {
                        Ok(s) => handle(s, &registry),
                        // Out of descriptors, a connection reset before
                        // accept: try again shortly.
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen if 0 was given).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Arc<Registry> {
        let r = Registry::new();
        r.register(|m| m.counter("x_total", "X.", &[], 3));
        r
    }

    fn status(head: &str) -> u16 {
        respond(head.as_bytes(), &reg()).status
    }

    #[test]
    fn get_metrics() {
        let r = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*", &reg());
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n"
        );
        let wire = String::from_utf8(r.to_bytes()).unwrap();
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
        assert!(wire.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(wire.contains(&format!("Content-Length: {}\r\n", r.body.len())));
        assert!(wire.ends_with("x_total 3\n"));
        assert_eq!(status("GET /metrics?x=1 HTTP/1.0"), 200);
        assert_eq!(status("GET http://h:9100/metrics HTTP/1.1\r\nHost: h"), 200);
        assert_eq!(status("\r\nGET /metrics HTTP/1.1\nHost: h"), 200);
    }

    #[test]
    fn head_has_no_body() {
        let r = respond(b"HEAD /metrics HTTP/1.1\r\nHost: x", &reg());
        assert_eq!(r.status, 200);
        let wire = String::from_utf8(r.to_bytes()).unwrap();
        assert!(wire.ends_with("\r\n\r\n"), "{wire}");
        assert!(wire.contains(&format!("Content-Length: {}\r\n", r.body.len())));
    }

    #[test]
    fn other_paths_and_methods() {
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x"), 404);
        assert_eq!(status("GET /metricsx HTTP/1.1\r\nHost: x"), 404);
        assert_eq!(status("POST /metrics HTTP/1.1\r\nHost: x"), 405);
        assert_eq!(status("get /metrics HTTP/1.1\r\nHost: x"), 405);
        let r = respond(b"DELETE /metrics HTTP/1.1\r\nHost: x", &reg());
        assert!(String::from_utf8(r.to_bytes())
            .unwrap()
            .contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn bad_requests_get_400() {
        for bad in [
            "",
            "\r\n",
            "GET",
            "GET /metrics",
            "GET  /metrics HTTP/1.1\r\nHost: x",
            "GET /metrics HTTP/1.1 extra\r\nHost: x",
            "GET metrics HTTP/1.1\r\nHost: x",
            "GET /metrics FTP/1.1\r\nHost: x",
            "GET /metrics HTTP/1.1",
            "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b",
            "GET /metrics HTTP/1.1\r\nHost : x",
            "GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon",
            "GET /metrics HTTP/1.1\r\nHost: x\r\n folded",
            "G(T /metrics HTTP/1.1\r\nHost: x",
            "GET /met\x01rics HTTP/1.1\r\nHost: x",
        ] {
            assert_eq!(status(bad), 400, "{bad:?}");
        }
        assert_eq!(respond(&[0xff, 0xfe, b' ', b'/'], &reg()).status, 400);
        assert_eq!(status("GET /metrics HTTP/2.0\r\nHost: x"), 505);
    }

    #[test]
    fn reading_heads() {
        let far = Instant::now() + Duration::from_secs(5);
        let mut r: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nbody";
        assert_eq!(
            read_head(&mut r, far).unwrap(),
            b"GET /metrics HTTP/1.1\r\nHost: x"
        );
        let mut r: &[u8] = b"GET /metrics HTTP/1.0\n\n";
        assert_eq!(read_head(&mut r, far).unwrap(), b"GET /metrics HTTP/1.0");
        let mut r: &[u8] = b"";
        assert_eq!(read_head(&mut r, far), Err(ReadError::Closed));
        let mut r: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(read_head(&mut r, far), Err(ReadError::Status(BAD_REQUEST)));
        let big = vec![b'a'; MAX_HEAD + 2048];
        let mut r: &[u8] = &big;
        assert!(matches!(
            read_head(&mut r, far),
            Err(ReadError::Status((431, _)))
        ));
    }

    fn exchange(addr: SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn server_answers_over_tcp_and_survives_garbage() {
        let srv = Server::start("127.0.0.1:0".parse().unwrap(), reg()).unwrap();
        let a = srv.local_addr();
        assert_ne!(a.port(), 0);
        let ok = exchange(a, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("x_total 3\n"),
            "{ok}"
        );
        let bad = exchange(a, b"\x00\x01\x02 garbage\r\n\r\n");
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
        let big = exchange(a, &vec![b'A'; 64 * 1024]);
        assert!(big.starts_with("HTTP/1.1 431 "), "{big}");
        // A client that connects and leaves.
        drop(TcpStream::connect(a).unwrap());
        let nf = exchange(a, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(nf.starts_with("HTTP/1.1 404 "), "{nf}");
        let ok = exchange(a, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        drop(srv);
        assert!(TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_err());
    }
}
