//! Failover: where and when the session's next connection goes, and what
//! happens to I/O meanwhile (RFC 7143 section 7.1.5 / 7.12,
//! ErrorRecoveryLevel 0).
//!
//! ```text
//!            first_login: each portal in turn, redirects followed
//!                 │
//!                 ▼          connection lost (reset, close, NOP-Out or
//!   ┌────────► LoggedIn ────── login timeout, protocol error) ──┐
//!   │                                                            ▼
//!   │ login                                               Recovering
//!   │ (reissue every command                 reconnect: next portal at once,
//!   │  not yet answered)                     after a whole round RETRY apart;
//!   │                                        redirects followed (bounded)
//!   │                                                            │
//!   │                                    replacement timeout     │
//!   │                                    ran out                 ▼
//!   └───────────────────────────────────────────────────────  Failed
//!                                             outstanding I/O failed
//!                                             (IOERR), new I/O fails at once;
//!                                             reconnecting goes on
//! ```
//!
//! The session logs in again with the same ISID and TSIH 0: on the same
//! target that reinstates the session (section 6.3.5: the target "MUST"
//! then terminate the old one, so no stale command of it runs later); on
//! another portal or target it is a new session. Either way every command
//! whose status never arrived is issued again from the start (section
//! 7.1.5: at ERL 0 "the initiator ... reissues" them); reads and writes of
//! whole blocks are idempotent, so a command that had been performed before
//! the failure does no harm when performed again.

use crate::link::Link;
use crate::spec::{IscsiSpec, Timeouts};
use crate::stats::{SessionState, SessionStats};
use iscsi_initiator::portals::{self, PortalSet, Redirect};
use iscsi_initiator::{Event, SessionError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pause between two rounds of attempts over every portal.
pub const RETRY: Duration = Duration::from_millis(250);

enum Phase {
    Up,
    Down {
        /// When the connection was lost.
        since: Instant,
        /// Earliest next attempt.
        next: Instant,
        /// An attempt (connect + login) started at this time is running.
        attempt: Option<Instant>,
        /// Failed attempts since the loss (a pause after each full round).
        tries: usize,
        /// The portal that failed.
        lost_at: usize,
        /// The replacement timeout ran out.
        failed: bool,
    },
}

/// The failover state machine of one device.
pub(crate) struct Recovery {
    portals: PortalSet,
    timeouts: Timeouts,
    phase: Phase,
    stats: Arc<SessionStats>,
    name: String,
}

/// How a blocking wait for a session event ended.
pub(crate) enum WaitError {
    /// The session failed.
    Session(SessionError),
    /// Nothing in time.
    Timeout,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::Session(e) => write!(f, "{e}"),
            WaitError::Timeout => write!(f, "no answer from the target"),
        }
    }
}

/// Pumps `link` until `want` takes an event (setup only: blocks).
pub(crate) fn wait_event<T>(
    link: &mut Link,
    deadline: Instant,
    mut want: impl FnMut(Event) -> Option<T>,
) -> Result<T, WaitError> {
    loop {
        let got = link.pump(Instant::now());
        while let Some(e) = link.session.poll_event() {
            if let Event::Failed(e) = e {
                return Err(WaitError::Session(e));
            }
            if let Some(r) = want(e) {
                return Ok(r);
            }
        }
        if Instant::now() > deadline {
            return Err(WaitError::Timeout);
        }
        if got == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Recovery {
    pub(crate) fn new(spec: &IscsiSpec, stats: Arc<SessionStats>) -> Recovery {
        Recovery {
            portals: PortalSet::new(spec.portals.clone()).expect("a spec has a portal"),
            timeouts: spec.timeouts,
            phase: Phase::Up,
            stats,
            name: spec.to_string(),
        }
    }

    /// True once the replacement timeout ran out (until a login): I/O
    /// fails at once.
    pub(crate) fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Down { failed: true, .. })
    }

    /// True while logged in.
    pub(crate) fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up)
    }

    /// The portal in use.
    pub(crate) fn portal(&self) -> &str {
        self.portals.address()
    }

    /// Follows a login redirect. On `Err` the set has moved on to the next
    /// portal (too many hops, or an address that is not a portal).
    fn follow(&mut self, address: &str, permanent: bool) -> Result<(), String> {
        let to = match portals::parse_target_address(address) {
            Ok(to) => to,
            Err(e) => {
                self.portals.failed();
                return Err(format!("login redirect to an unusable address: {e}"));
            }
        };
        match self.portals.redirected(&to, permanent) {
            Redirect::Follow(_) => {
                SessionStats::add(&self.stats.redirects, 1);
                eprintln!(
                    "blk iscsi {}: login redirected ({}) to {to}",
                    self.name,
                    if permanent {
                        "permanently"
                    } else {
                        "temporarily"
                    }
                );
                Ok(())
            }
            Redirect::TooManyHops => Err(format!(
                "more than {} login redirects in a row",
                portals::MAX_REDIRECT_HOPS
            )),
        }
    }

    /// The blocking first login: each portal in turn until one logs in,
    /// redirects followed. The error names every portal's failure.
    pub(crate) fn first_login(&mut self, link: &mut Link) -> Result<(), String> {
        let n = self.portals.portals().len();
        let mut errors: Vec<String> = Vec::new();
        while errors.len() < n {
            let addr = self.portals.address().to_owned();
            link.set_portal(&addr);
            let r = match link.reconnect(self.timeouts.nop_timeout) {
                Err(e) => Err(WaitError::Session(SessionError::ConnectionLost(format!(
                    "connect: {e}"
                )))),
                Ok(()) => wait_event(
                    link,
                    Instant::now() + self.timeouts.nop_timeout + Duration::from_secs(1),
                    |e| matches!(e, Event::LoggedIn { .. }).then_some(()),
                ),
            };
            match r {
                Ok(()) => {
                    self.portals.logged_in();
                    self.publish_portal();
                    self.stats.set_state(SessionState::LoggedIn);
                    return Ok(());
                }
                Err(WaitError::Session(SessionError::Redirected { address, permanent })) => {
                    link.disconnect("login redirected");
                    if let Err(e) = self.follow(&address, permanent) {
                        errors.push(format!("{addr}: {e}"));
                    }
                }
                Err(e) => {
                    link.disconnect("login failed");
                    errors.push(format!("{addr}: {e}"));
                    self.portals.failed();
                }
            }
        }
        Err(errors.join("; "))
    }

    fn publish_portal(&self) {
        self.stats
            .portal_index
            .store(self.portals.index() as u32, Ordering::Relaxed);
    }

    /// The session failed: the connection is lost, or an attempt to get a
    /// new one failed (or was redirected).
    pub(crate) fn on_failed(&mut self, link: &mut Link, e: SessionError, now: Instant) {
        link.disconnect("session failed");
        match &mut self.phase {
            Phase::Up => {
                SessionStats::add(&self.stats.connection_losses, 1);
                eprintln!(
                    "blk iscsi {}: connection to {} lost: {e}; reconnecting",
                    self.name,
                    self.portals.address()
                );
                let lost_at = self.portals.index();
                // The next attempt goes to the next portal, at once.
                self.portals.failed();
                self.phase = Phase::Down {
                    since: now,
                    next: now,
                    attempt: None,
                    tries: 0,
                    lost_at,
                    failed: false,
                };
                self.stats.set_state(SessionState::Recovering);
            }
            Phase::Down { attempt, .. } => {
                *attempt = None;
                let followed = match &e {
                    SessionError::Redirected { address, permanent } => {
                        let (address, permanent) = (address.clone(), *permanent);
                        match self.follow(&address, permanent) {
                            Ok(()) => true,
                            Err(why) => {
                                eprintln!("blk iscsi {}: {why}", self.name);
                                false
                            }
                        }
                    }
                    _ => {
                        self.portals.failed();
                        false
                    }
                };
                let round = self.portals.portals().len();
                if let Phase::Down { next, tries, .. } = &mut self.phase {
                    if followed {
                        *next = now;
                    } else {
                        *tries += 1;
                        // Every portal tried once more: pause before the
                        // next round.
                        *next = if (*tries).is_multiple_of(round) {
                            now + RETRY
                        } else {
                            now
                        };
                    }
                }
            }
        }
    }

    /// The target asked for a logout and it is done: log in again at once,
    /// on the same portal.
    pub(crate) fn on_logged_out(&mut self, link: &mut Link, now: Instant) {
        link.disconnect("logged out");
        if self.is_up() {
            SessionStats::add(&self.stats.connection_losses, 1);
            self.phase = Phase::Down {
                since: now,
                next: now,
                attempt: None,
                tries: 0,
                lost_at: self.portals.index(),
                failed: false,
            };
            self.stats.set_state(SessionState::Recovering);
        }
    }

    /// Logged in again: `reissued` commands went out on the new connection.
    pub(crate) fn on_logged_in(&mut self, reissued: usize) {
        self.portals.logged_in();
        self.publish_portal();
        if let Phase::Down {
            lost_at, failed, ..
        } = self.phase
        {
            SessionStats::add(&self.stats.reconnects, 1);
            SessionStats::add(&self.stats.failed_over_commands, reissued as u64);
            if lost_at != self.portals.index() {
                SessionStats::add(&self.stats.portal_switches, 1);
            }
            eprintln!(
                "blk iscsi {}: session reinstated: logged in on {}{}, {reissued} commands reissued",
                self.name,
                self.portals.address(),
                if failed {
                    " (after the replacement timeout)"
                } else {
                    ""
                }
            );
        }
        self.phase = Phase::Up;
        self.stats.set_state(SessionState::LoggedIn);
    }

    /// Timers while down: the replacement timeout (outstanding commands
    /// fail: their completions follow as session events) and reconnect
    /// attempts, which never block (kernel TCP dials on a helper thread,
    /// user TCP sends a SYN).
    pub(crate) fn tick(&mut self, link: &mut Link, now: Instant) {
        let t = self.timeouts;
        let Phase::Down {
            since,
            next,
            attempt,
            failed,
            ..
        } = &mut self.phase
        else {
            return;
        };
        if !*failed && now.duration_since(*since) >= t.replacement {
            *failed = true;
            let n = link.session.fail_outstanding();
            SessionStats::add(&self.stats.timed_out_commands, n as u64);
            self.stats.set_state(SessionState::Failed);
            eprintln!(
                "blk iscsi {}: no connection within the replacement timeout ({:?}): \
                 {n} commands failed, new I/O fails until a portal answers",
                self.name, t.replacement
            );
        }
        if let Some(started) = *attempt {
            // The session's login timer ends an attempt; this guards
            // against a transport that never reports.
            if now.duration_since(started) > 2 * t.nop_timeout + Duration::from_secs(1) {
                link.disconnect("reconnect attempt stalled");
            }
            return;
        }
        if now < *next {
            return;
        }
        let addr = self.portals.address().to_owned();
        link.set_portal(&addr);
        match link.reconnect(t.nop_timeout) {
            // Login proceeds in `pump`; LoggedIn or Failed ends the attempt.
            Ok(()) => *attempt = Some(now),
            Err(_) => {
                *next = now + RETRY;
                self.portals.failed();
            }
        }
        self.publish_portal();
    }
}
