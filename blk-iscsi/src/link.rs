//! A sans-IO [`Session`] on a non-blocking kernel TCP socket.
//!
//! [`Link::pump`] never blocks: it writes what the session queued until the
//! socket's send buffer is full, reads what arrived (a bounded number of
//! reads per call, so one busy connection cannot starve the poller's other
//! devices), writes again (Data-Out the new R2Ts asked for) and fires the
//! session's timers. A failed socket is reported to the session
//! ([`Session::connection_lost`]), which then emits `Event::Failed`; the owner
//! reconnects with [`Link::reconnect`] and the session reinstates itself
//! (RFC 7143 section 6.3.5, ErrorRecoveryLevel 0).

use iscsi_initiator::Session;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Reads per [`Link::pump`] call at most.
const READS_PER_PUMP: usize = 16;
/// Receive buffer size.
const RX_BYTES: usize = 256 << 10;

/// The session and its socket.
pub struct Link {
    portal: String,
    stream: Option<TcpStream>,
    /// The session (submit commands here, take events from it).
    pub session: Session,
    rx: Box<[u8]>,
}

impl Link {
    /// A link with no connection yet; call [`Link::reconnect`].
    pub fn new(portal: &str, session: Session) -> Link {
        Link {
            portal: portal.to_owned(),
            stream: None,
            session,
            rx: vec![0u8; RX_BYTES].into_boxed_slice(),
        }
    }

    /// The portal (`host:port`).
    pub fn portal(&self) -> &str {
        &self.portal
    }

    /// True while a socket is open.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Opens a fresh TCP connection (bounded by `timeout`) and starts a login
    /// on it. On error the link stays disconnected.
    pub fn reconnect(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream = None;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "portal resolved to no address");
        for addr in self.portal.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_nonblocking(true)?;
                    self.stream = Some(s);
                    self.session.start_login(Instant::now());
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn lost(&mut self, why: &str) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.session.connection_lost(why);
    }

    /// Drops the socket (the session learns it is lost).
    pub fn disconnect(&mut self, why: &str) {
        self.lost(why);
    }

    /// Writes queued bytes until done or the socket is full.
    pub fn flush(&mut self) {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let out = self.session.poll_transmit();
            if out.is_empty() {
                return;
            }
            match stream.write(out) {
                Ok(0) => return self.lost("socket write returned 0"),
                Ok(n) => self.session.consume_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(&format!("write: {e}")),
            }
        }
    }

    /// One non-blocking round: write, read, write, timers. Returns the bytes
    /// read.
    pub fn pump(&mut self, now: Instant) -> usize {
        self.flush();
        let mut got = 0;
        for _ in 0..READS_PER_PUMP {
            let Some(stream) = self.stream.as_mut() else {
                break;
            };
            match stream.read(&mut self.rx) {
                Ok(0) => {
                    self.lost("the target closed the connection");
                    break;
                }
                Ok(n) => {
                    got += n;
                    self.session.receive(&self.rx[..n], now);
                    if n < self.rx.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.lost(&format!("read: {e}"));
                    break;
                }
            }
        }
        if got > 0 {
            self.flush();
        }
        if self.stream.is_some() {
            if let Some(t) = self.session.poll_timeout() {
                if now >= t {
                    self.session.handle_timeout(now);
                    self.flush();
                }
            }
        }
        got
    }
}
