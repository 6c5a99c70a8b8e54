//! A blocking std TCP driver for [`Session`]: writes what the session wants sent, reads
//! what arrives, fires its timers, and on connection loss reconnects and logs in again
//! (ErrorRecoveryLevel 0), so commands in flight are reissued and none is lost.
//! With several portals ([`Connection::login_portals`]) a reconnect tries the
//! next one; login redirects (RFC 7143 section 11.13.5) are followed a
//! bounded number of times ([`crate::portals::PortalSet`]).

use crate::portals::{self, PortalSet, Redirect};
use crate::session::{Completion, DiscoveredTarget, Event, Session, SessionConfig, SubmitError};
use crate::task::{Command, TaskTag};
use crate::{CommandError, SessionError};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Errors of the driver.
#[derive(Debug)]
pub enum Error {
    /// Socket error (after reconnect attempts ran out).
    Io(io::Error),
    /// Session failure (after reconnect attempts ran out).
    Session(SessionError),
    /// The command could not be queued.
    Submit(SubmitError),
    /// The command completed with an error.
    Command(CommandError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Session(e) => write!(f, "{e}"),
            Error::Submit(e) => write!(f, "{e}"),
            Error::Command(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Error {
        Error::Session(e)
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        Error::Command(e)
    }
}

/// Opens a TCP connection to `portal`, each resolved address bounded by
/// [`CONNECT_TIMEOUT`] (a portal that drops SYNs must not stall failover).
fn dial(portal: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "portal resolved to no address");
    for addr in std::net::ToSocketAddrs::to_socket_addrs(portal)? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// How long one TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Result of the driver.
pub type Result<T> = std::result::Result<T, Error>;

/// How the driver recovers from a lost connection.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// Try at all.
    pub enabled: bool,
    /// Give up after this long without a successful login.
    pub give_up_after: Duration,
}

/// A session on one TCP connection, driven synchronously.
pub struct Connection {
    portals: PortalSet,
    stream: Option<TcpStream>,
    session: Session,
    buf: Vec<u8>,
    completions: VecDeque<Completion>,
    other: VecDeque<Event>,
    /// Reconnect policy.
    pub reconnect: Reconnect,
    /// Number of successful re-logins after a connection loss.
    pub recoveries: u32,
    /// Login redirects followed.
    pub redirects: u32,
    read_timeout_bucket: u64,
}

impl Connection {
    /// Connects to `portal` (`host:port`) and logs in.
    pub fn login(portal: &str, cfg: SessionConfig) -> Result<Connection> {
        Connection::login_portals(vec![portal.to_owned()], cfg)
    }

    /// Connects to the first of `portals` (each `host:port`) that logs in;
    /// later reconnects go to the next one in turn.
    pub fn login_portals(portals: Vec<String>, cfg: SessionConfig) -> Result<Connection> {
        let portals = PortalSet::new(portals)
            .map_err(|e| Error::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let n = portals.portals().len();
        let mut c = Connection {
            portals,
            stream: None,
            session: Session::new(cfg),
            buf: vec![0u8; 1 << 20],
            completions: VecDeque::new(),
            other: VecDeque::new(),
            reconnect: Reconnect {
                enabled: false,
                give_up_after: Duration::from_secs(30),
            },
            recoveries: 0,
            redirects: 0,
            read_timeout_bucket: u64::MAX,
        };
        let mut last = None;
        for _ in 0..n {
            match c.open() {
                Ok(()) => return Ok(c),
                Err(e) => {
                    c.stream = None;
                    c.portals.failed();
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one portal"))
    }

    /// The address of the current connection (`host:port`).
    pub fn portal(&self) -> &str {
        self.portals.address()
    }

    /// The session (negotiated parameters etc.).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs SendTargets=All on a discovery session to `portal`.
    pub fn discover(portal: &str, initiator_name: &str) -> Result<Vec<DiscoveredTarget>> {
        let mut c = Connection::login(portal, SessionConfig::new(initiator_name, None))?;
        c.session.send_targets();
        loop {
            c.step()?;
            let found = c.other.iter_mut().find_map(|e| match e {
                Event::Targets(t) => Some(std::mem::take(t)),
                _ => None,
            });
            if let Some(t) = found {
                c.other.retain(|e| !matches!(e, Event::Targets(_)));
                c.logout()?;
                return Ok(t);
            }
        }
    }

    /// Connects to the current portal and logs in, following redirects.
    fn open(&mut self) -> Result<()> {
        loop {
            match self.open_once() {
                Err(Error::Session(SessionError::Redirected { address, permanent })) => {
                    let to = portals::parse_target_address(&address).map_err(|e| {
                        Error::Session(SessionError::Protocol(format!("login redirect: {e}")))
                    })?;
                    match self.portals.redirected(&to, permanent) {
                        Redirect::Follow(_) => self.redirects += 1,
                        Redirect::TooManyHops => {
                            return Err(Error::Session(SessionError::Protocol(format!(
                                "more than {} login redirects in a row",
                                portals::MAX_REDIRECT_HOPS
                            ))))
                        }
                    }
                }
                Ok(()) => {
                    self.portals.logged_in();
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn open_once(&mut self) -> Result<()> {
        let stream = dial(self.portals.address())?;
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        self.read_timeout_bucket = u64::MAX;
        self.session.start_login(Instant::now());
        loop {
            self.step_inner()?;
            if let Some(i) = self
                .other
                .iter()
                .position(|e| matches!(e, Event::LoggedIn { .. }))
            {
                self.other.remove(i);
                return Ok(());
            }
        }
    }

    fn recover(&mut self, why: Error) -> Result<()> {
        if !self.reconnect.enabled {
            return Err(why);
        }
        self.stream = None;
        // The portal in use just failed: start with the next one.
        self.portals.failed();
        let start = Instant::now();
        let wait = Duration::from_secs(self.session.params().default_time2wait.min(2) as u64);
        std::thread::sleep(wait);
        let mut last = why;
        while start.elapsed() < self.reconnect.give_up_after {
            match self.open() {
                Ok(()) => {
                    self.recoveries += 1;
                    return Ok(());
                }
                Err(e) => {
                    self.stream = None;
                    self.portals.failed();
                    last = e;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last)
    }

    /// One round of I/O; on connection loss, reconnects per policy.
    fn step(&mut self) -> Result<()> {
        match self.step_inner() {
            Ok(()) => Ok(()),
            Err(e @ (Error::Io(_) | Error::Session(_))) => self.recover(e),
            Err(e) => Err(e),
        }
    }

    /// Writes pending bytes, then blocks until some bytes arrive or a timer fires.
    fn step_inner(&mut self) -> Result<()> {
        if self.session.is_closed() {
            // Logged out (e.g. the target asked for it) while the caller still waits:
            // treat as a lost connection, so the reconnect policy applies and the
            // commands not completed are reissued after the next login.
            return Err(Error::Session(SessionError::ConnectionLost(
                "session logged out".into(),
            )));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Error::Session(SessionError::ConnectionLost(
                "not connected".into(),
            )));
        };
        let out = self.session.poll_transmit();
        if !out.is_empty() {
            let n = out.len();
            if let Err(e) = stream.write_all(out) {
                self.session.connection_lost(&e.to_string());
                let _ = self.drain_events();
                return Err(e.into());
            }
            self.session.consume_transmit(n);
        }
        // The socket's read timeout is only changed when the session's next timer
        // moves to a coarser or finer 10 ms bucket, so the busy path makes no extra
        // setsockopt call per read.
        let now = Instant::now();
        if let Some(t) = self.session.poll_timeout() {
            if now >= t {
                self.session.handle_timeout(now);
                return self.drain_events();
            }
        }
        let wanted = self
            .session
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(60))
            .clamp(Duration::from_millis(10), Duration::from_secs(60));
        let bucket = wanted.as_millis() as u64 / 10;
        if self.read_timeout_bucket != bucket {
            stream.set_read_timeout(Some(Duration::from_millis(bucket * 10)))?;
            self.read_timeout_bucket = bucket;
        }
        match stream.read(&mut self.buf) {
            Ok(0) => {
                self.session.connection_lost("target closed the connection");
            }
            Ok(n) => self.session.receive(&self.buf[..n], Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.session.handle_timeout(Instant::now())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.session.connection_lost(&e.to_string()),
        }
        self.drain_events()
    }

    fn drain_events(&mut self) -> Result<()> {
        let mut failure = None;
        while let Some(e) = self.session.poll_event() {
            match e {
                Event::Completed(c) => self.completions.push_back(c),
                Event::Failed(e) => failure = Some(e),
                Event::LogoutRequested => self.session.logout(),
                // Retried by the session; nothing to keep.
                Event::UnitAttention { .. } => {}
                other => self.other.push_back(other),
            }
        }
        match failure {
            Some(e) => Err(Error::Session(e)),
            None => Ok(()),
        }
    }

    /// Queues a command (sent at the next I/O round).
    pub fn submit(&mut self, cmd: Command) -> Result<TaskTag> {
        self.session.submit(cmd).map_err(Error::Submit)
    }

    /// Commands submitted whose completion the caller has not taken yet.
    pub fn outstanding(&self) -> usize {
        self.session.outstanding() + self.completions.len()
    }

    /// Keeps the connection serviced (keepalives, target pings) for `d`.
    pub fn run_for(&mut self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.step()?;
        }
        Ok(())
    }

    /// Waits for any completion.
    pub fn next_completion(&mut self) -> Result<Completion> {
        loop {
            if let Some(c) = self.completions.pop_front() {
                return Ok(c);
            }
            self.step()?;
        }
    }

    /// Takes every completion already received; blocks for at least one when none.
    pub fn completions(&mut self, out: &mut Vec<Completion>) -> Result<()> {
        if self.completions.is_empty() {
            self.step()?;
        }
        out.extend(self.completions.drain(..));
        Ok(())
    }

    /// Waits for the completion of `tag`.
    pub fn wait(&mut self, tag: TaskTag) -> Result<Completion> {
        loop {
            if let Some(i) = self.completions.iter().position(|c| c.tag == tag) {
                return Ok(self.completions.remove(i).expect("index from position()"));
            }
            self.step()?;
        }
    }

    /// Submits a command and waits for it; a non-GOOD status is an error.
    pub fn execute(&mut self, cmd: Command) -> Result<Completion> {
        let tag = self.submit(cmd)?;
        let c = self.wait(tag)?;
        match &c.result {
            Ok(()) => Ok(c),
            Err(e) => Err(Error::Command(e.clone())),
        }
    }

    /// Sends LOGICAL UNIT RESET and waits for the answer (0 = function complete).
    pub fn lun_reset(&mut self, lun: u16) -> Result<u8> {
        let tag = self.session.lun_reset(lun);
        self.wait_tmf(tag)
    }

    /// Sends ABORT TASK for `task` and waits for the answer.
    pub fn abort_task(&mut self, task: TaskTag) -> Result<u8> {
        match self.session.abort_task(task) {
            Some(tag) => self.wait_tmf(tag),
            None => Ok(1), // task does not exist (already complete)
        }
    }

    fn wait_tmf(&mut self, tag: u32) -> Result<u8> {
        loop {
            if let Some(i) = self
                .other
                .iter()
                .position(|e| matches!(e, Event::TaskManagement { tag: t, .. } if *t == tag))
            {
                if let Some(Event::TaskManagement { response, .. }) = self.other.remove(i) {
                    return Ok(response);
                }
            }
            self.step()?;
        }
    }

    /// Logs out and closes the connection.
    pub fn logout(mut self) -> Result<()> {
        self.session.logout();
        while !self.session.is_closed() {
            self.step_inner()?;
        }
        Ok(())
    }

    /// Drops the TCP connection without logging out (for fault tests).
    pub fn kill_transport(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.session.connection_lost("transport killed by caller");
        let _ = self.drain_events();
    }
}
