//! A sans-IO [`Session`] on a non-blocking byte stream ([`Transport`]): the
//! kernel's TCP ([`KernelTcp`]) or a user-space TCP stack.
//!
//! [`Link::pump`] never blocks: it writes what the session queued until the
//! socket's send buffer is full (everything queued goes in one `send`: the
//! session keeps its PDUs in one buffer), reads what arrived (a bounded number
//! of reads per call, so one busy connection cannot starve the poller's other
//! devices; [`KernelTcp::with_ready_watch`] reads only after its
//! [`ReadyWatch`] saw a wake-up, so an idle round costs no syscall), writes
//! again (Data-Out the new R2Ts asked for) and fires the session's timers. A failed socket is reported to the session
//! ([`Session::connection_lost`]), which then emits `Event::Failed`; the owner
//! reconnects with [`Link::reconnect`] and the session reinstates itself
//! (RFC 7143 section 6.3.5, ErrorRecoveryLevel 0).

use iscsi_initiator::Session;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vfio::readiness::ReadyWatch;

/// A non-blocking byte stream to the target.
pub trait Transport: Send {
    /// Opens a new connection to `portal` (`host:port`), dropping any previous
    /// one. May return before the connection is established: `send` then
    /// reports `WouldBlock` until it is.
    fn connect(&mut self, portal: &str, timeout: Duration) -> io::Result<()>;
    /// True while a connection is open (or opening).
    fn is_open(&self) -> bool;
    /// Writes some of `data`; `WouldBlock` when nothing can be written now.
    fn send(&mut self, data: &[u8]) -> io::Result<usize>;
    /// Reads into `buf`; `Ok(0)` when the peer closed, `WouldBlock` when
    /// nothing arrived.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Drops the connection.
    fn close(&mut self);
    /// Drives the transport (a user-space stack polls its device here).
    fn poll(&mut self) {}
    /// A descriptor that turns readable when `recv` has something (for a
    /// poller that blocks when idle), or `None`.
    fn wait_fd(&self) -> Option<RawFd> {
        None
    }
}

/// The kernel's TCP on a non-blocking socket.
///
/// The first connection is opened synchronously (so a wrong portal is a
/// clear error at start-up); later ones (recovery) on a short-lived helper
/// thread, so a target that does not answer SYNs never stalls the poller
/// thread and the other devices on it.
#[derive(Debug, Default)]
pub struct KernelTcp {
    /// The socket and its readiness watch (dropped together: the watch's
    /// io_uring poll refers to the socket's fd).
    stream: Option<(TcpStream, ReadyWatch)>,
    /// A reconnect in progress on a helper thread.
    pending: Option<mpsc::Receiver<io::Result<TcpStream>>>,
    /// Connected once: further connects go to a helper thread.
    background: bool,
    /// Read only after a [`ReadyWatch`] wake-up.
    watch: bool,
}

fn dial(portal: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "portal resolved to no address");
    for addr in portal.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl KernelTcp {
    /// A transport that reads the socket only after its [`ReadyWatch`] saw
    /// a wake-up: no syscall in a poll round with nothing to read. Not the
    /// default: on the 2-core bench host it did not lower CPU per request
    /// under `PollMode::Wait` and raised busy-poll latency at QD 1 (a poller
    /// that never enters the kernel is slow to give its core to the target
    /// sharing it); with a dedicated poller core it saves the `recv` per idle
    /// round (40% of that poller's time in a profile).
    pub fn with_ready_watch() -> KernelTcp {
        KernelTcp {
            watch: true,
            ..KernelTcp::default()
        }
    }

    fn watched(&self, s: TcpStream) -> (TcpStream, ReadyWatch) {
        let w = if self.watch {
            ReadyWatch::new(s.as_raw_fd())
        } else {
            ReadyWatch::disabled()
        };
        (s, w)
    }

    /// Takes the helper thread's result: `WouldBlock` while it is connecting.
    fn settle(&mut self) -> io::Result<()> {
        let Some(rx) = &self.pending else {
            return Ok(());
        };
        match rx.try_recv() {
            Ok(Ok(s)) => {
                self.stream = Some(self.watched(s));
                self.pending = None;
                Ok(())
            }
            Ok(Err(e)) => {
                self.pending = None;
                Err(e)
            }
            Err(mpsc::TryRecvError::Empty) => Err(io::ErrorKind::WouldBlock.into()),
            Err(mpsc::TryRecvError::Disconnected) => {
                self.pending = None;
                Err(io::Error::other("connect thread vanished"))
            }
        }
    }
}

impl Transport for KernelTcp {
    fn connect(&mut self, portal: &str, timeout: Duration) -> io::Result<()> {
        self.close();
        if !self.background {
            self.stream = Some(self.watched(dial(portal, timeout)?));
            self.background = true;
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        let portal = portal.to_owned();
        std::thread::Builder::new()
            .name("iscsi-connect".into())
            .spawn(move || {
                let _ = tx.send(dial(&portal, timeout));
            })?;
        self.pending = Some(rx);
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.stream.is_some() || self.pending.is_some()
    }

    fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.settle()?;
        match self.stream.as_mut() {
            Some((s, _)) => s.write(data),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.settle()?;
        let Some((s, watch)) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if !watch.maybe_readable() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let r = s.read(buf);
        match &r {
            // Fewer bytes than asked: the receive queue is empty now.
            Ok(n) if *n < buf.len() && *n > 0 => watch.drained(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => watch.drained(),
            _ => {}
        }
        r
    }

    fn wait_fd(&self) -> Option<RawFd> {
        self.stream.as_ref().map(|(s, _)| s.as_raw_fd())
    }

    fn close(&mut self) {
        self.pending = None;
        if let Some((s, _)) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Reads per [`Link::pump`] call at most.
const READS_PER_PUMP: usize = 16;
/// Receive buffer size.
const RX_BYTES: usize = 256 << 10;

/// The session and its transport.
pub struct Link {
    portal: String,
    transport: Box<dyn Transport>,
    /// The session (submit commands here, take events from it).
    pub session: Session,
    rx: Box<[u8]>,
}

impl Link {
    /// A link with no connection yet; call [`Link::reconnect`].
    pub fn new(portal: &str, session: Session, transport: Box<dyn Transport>) -> Link {
        Link {
            portal: portal.to_owned(),
            transport,
            session,
            rx: vec![0u8; RX_BYTES].into_boxed_slice(),
        }
    }

    /// The portal (`host:port`).
    pub fn portal(&self) -> &str {
        &self.portal
    }

    /// Sets where the next [`Link::reconnect`] dials (failover to another
    /// portal, a login redirect).
    pub fn set_portal(&mut self, portal: &str) {
        if self.portal != portal {
            self.portal = portal.to_owned();
        }
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.transport.is_open()
    }

    /// The transport's wait descriptor (see [`Transport::wait_fd`]).
    pub fn wait_fd(&self) -> Option<RawFd> {
        self.transport.wait_fd()
    }

    /// Opens a fresh TCP connection (bounded by `timeout`) and starts a login
    /// on it. On error the link stays disconnected.
    pub fn reconnect(&mut self, timeout: Duration) -> io::Result<()> {
        self.transport.connect(&self.portal, timeout)?;
        self.session.start_login(Instant::now());
        Ok(())
    }

    fn lost(&mut self, why: &str) {
        self.transport.close();
        self.session.connection_lost(why);
    }

    /// Drops the socket (the session learns it is lost).
    pub fn disconnect(&mut self, why: &str) {
        self.lost(why);
    }

    /// Writes queued bytes until done or the socket is full.
    pub fn flush(&mut self) {
        let mut wrote = false;
        loop {
            if !self.transport.is_open() {
                break;
            }
            let out = self.session.poll_transmit();
            if out.is_empty() {
                break;
            }
            match self.transport.send(out) {
                Ok(0) => return self.lost("socket write returned 0"),
                Ok(n) => {
                    self.session.consume_transmit(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(&format!("write: {e}")),
            }
        }
        if wrote {
            self.transport.poll();
        }
    }

    /// One non-blocking round: write, read, write, timers. Returns the bytes
    /// read.
    pub fn pump(&mut self, now: Instant) -> usize {
        let got = self.pump_io(now);
        self.run_timers(now);
        got
    }

    /// [`Link::pump`] without the timers: write, read, write. `now` only
    /// stamps what was read (the keepalive's idle clock), so a clock read a
    /// few microseconds ago does.
    pub fn pump_io(&mut self, now: Instant) -> usize {
        self.transport.poll();
        self.flush();
        let mut got = 0;
        for _ in 0..READS_PER_PUMP {
            if !self.transport.is_open() {
                break;
            }
            match self.transport.recv(&mut self.rx) {
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
        got
    }

    /// Fires the session's timers that are due at `now` (keepalive, login
    /// and response timeouts) and sends what they queued.
    pub fn run_timers(&mut self, now: Instant) {
        if self.transport.is_open() {
            if let Some(t) = self.session.poll_timeout() {
                if now >= t {
                    self.session.handle_timeout(now);
                    self.flush();
                }
            }
        }
    }
}
