//! The sans-IO initiator session (RFC 7143): bytes in, bytes out, timers driven by the
//! caller. One connection per session (MaxConnections=1), ErrorRecoveryLevel 0.
//!
//! ```text
//!   caller ── submit(Command) ──► pending ──(CmdSN window)──► SCSI Command [+ immediate
//!                                                              data, unsolicited Data-Out]
//!   caller ◄── poll_transmit() ◄── tx buffer ◄─────────────── Data-Out (per R2T), NOP-Out
//!   caller ── receive(bytes) ──► rx buffer ─► frame::parse ─► Data-In / R2T / Response ...
//!   caller ◄── poll_event() ◄── Completion, LoggedIn, Targets, Failed ...
//!   caller ── handle_timeout(now) at poll_timeout() ──► NOP-Out keepalive, login timeout
//! ```
//!
//! Error recovery level 0 (section 7.1.5 / 7.12): when the connection fails, the caller
//! opens a new transport and calls [`Session::start_login`] again. The login reuses the
//! ISID with TSIH 0, which reinstates the session (section 6.3.5: "session
//! reinstatement ... the target ... MUST ... terminate the old session"), and every
//! command not yet completed to the caller is issued again. A command is completed to
//! the caller exactly once, when its status arrives.

use crate::chap::Chap;
use crate::error::{CommandError, SessionError};
use crate::login::{Login, LoginProgress, LoginStep};
use crate::negotiate::{Params, Proposal};
use crate::scsi::sense::{Sense, SenseKey};
use crate::scsi::status;
use crate::task::{Command, Direction, Task, TaskTag, Tasks};
use iscsi_pdu::bhs::{encode_lun, Bhs};
use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, text, DigestConfig, Pdu, SerialNumber};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const RESERVED: u32 = 0xffff_ffff;
/// ITTs with the top bit set are the session's own (login, NOP, text, TMF, logout);
/// command tags never set it (see [`crate::task`]).
const OWN_TAG: u32 = 0x8000_0000;

/// Session configuration.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our iSCSI name.
    pub initiator_name: String,
    /// The target, or `None` for a discovery session.
    pub target_name: Option<String>,
    /// ISID (RFC 7143 section 11.12.5); type 0x80 = random.
    pub isid: [u8; 6],
    /// What we offer in the operational stage.
    pub proposal: Proposal,
    /// CHAP credentials, or `None` for AuthMethod=None.
    pub chap: Option<Chap>,
    /// Idle time after which we send a NOP-Out ping.
    pub nop_interval: Duration,
    /// How long a ping (or a login) may go unanswered.
    pub response_timeout: Duration,
    /// Most commands outstanding at once (the slab size).
    pub max_tasks: usize,
    /// How often a command failed with UNIT ATTENTION is retried before the caller sees
    /// it. SAM-5 5.14: a command answered with a unit attention condition was not
    /// performed, so reissuing it is safe; targets raise one after every login that
    /// follows a reset or a session reinstatement.
    pub unit_attention_retries: u8,
}

impl SessionConfig {
    /// A configuration with sensible defaults for `target` (None = discovery).
    pub fn new(initiator_name: &str, target_name: Option<&str>) -> SessionConfig {
        let seed = std::process::id() as u64 ^ now_nanos();
        SessionConfig {
            initiator_name: initiator_name.to_owned(),
            target_name: target_name.map(str::to_owned),
            isid: [
                0x80,
                (seed >> 8) as u8,
                (seed >> 16) as u8,
                (seed >> 24) as u8,
                (seed >> 32) as u8,
                seed as u8,
            ],
            proposal: Proposal::default(),
            chap: None,
            nop_interval: Duration::from_secs(5),
            response_timeout: Duration::from_secs(15),
            max_tasks: 256,
            unit_attention_retries: 3,
        }
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The end of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The tag returned by [`Session::submit`].
    pub tag: TaskTag,
    /// The command's buffer: read data (first `transferred` bytes valid) or the write
    /// data, handed back for reuse.
    pub buffer: Vec<u8>,
    /// Bytes the target moved (Expected Data Transfer Length minus residual).
    pub transferred: u32,
    /// GOOD, or why not.
    pub result: Result<(), CommandError>,
}

/// A target found by SendTargets (RFC 7143 appendix C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTarget {
    /// TargetName.
    pub name: String,
    /// TargetAddress values: `address[:port],portal-group-tag`.
    pub addresses: Vec<String>,
}

/// Something the caller must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Full feature phase reached. `reissued` commands were sent again after a
    /// reconnect.
    LoggedIn {
        /// Negotiated parameters.
        params: Params,
        /// Target-assigned session handle.
        tsih: u16,
        /// Commands reissued after session reinstatement.
        reissued: usize,
    },
    /// A command completed.
    Completed(Completion),
    /// SendTargets answer.
    Targets(Vec<DiscoveredTarget>),
    /// A task management function finished (response per section 11.6.1).
    TaskManagement {
        /// The tag returned by the request.
        tag: u32,
        /// Response code: 0 = function complete.
        response: u8,
    },
    /// A command was answered with UNIT ATTENTION (retried by the session
    /// per [`SessionConfig::unit_attention_retries`]); the caller may act on
    /// the condition, e.g. re-read the capacity after CAPACITY DATA HAS
    /// CHANGED ([`Sense::is_capacity_changed`]).
    UnitAttention {
        /// The command that saw it.
        tag: TaskTag,
        /// The sense data.
        sense: Sense,
    },
    /// The target asked us to log out (Asynchronous Message, event 1).
    LogoutRequested,
    /// Logout finished; the transport may be closed.
    LoggedOut,
    /// The connection is unusable. Outstanding commands are kept: reconnect and call
    /// [`Session::start_login`] to reissue them.
    Failed(SessionError),
}

/// Keepalive counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NopStats {
    /// NOP-Out pings we sent.
    pub pings_sent: u64,
    /// Our pings the target answered.
    pub pings_answered: u64,
    /// Target NOP-In pings we answered.
    pub target_pings_answered: u64,
}

/// Why a command could not be submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// All `max_tasks` slots are in use.
    QueueFull,
    /// The buffer is larger than a SCSI command can move.
    TooLarge,
    /// The session is logged out.
    Closed,
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::QueueFull => write!(f, "too many outstanding commands"),
            SubmitError::TooLarge => write!(f, "transfer larger than 4 GiB"),
            SubmitError::Closed => write!(f, "session is logged out"),
        }
    }
}

impl std::error::Error for SubmitError {}

#[derive(Debug)]
enum Phase {
    /// No transport: before the first login or after a failure.
    Down,
    /// Login in progress.
    Login(Box<Login>),
    /// Full feature phase.
    FullFeature,
    /// Logout sent.
    LoggingOut,
    /// Logged out.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnRequest {
    Ping,
    Text,
    TaskMgmt {
        function: u8,
        referenced: u32,
        lun: u64,
    },
    Logout,
}

/// The initiator session state machine.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    phase: Phase,
    params: Params,
    digests: DigestConfig,
    tsih: u16,
    cmd_sn: SerialNumber,
    exp_cmd_sn: SerialNumber,
    max_cmd_sn: SerialNumber,
    exp_stat_sn: SerialNumber,
    tasks: Tasks,
    pending: VecDeque<TaskTag>,
    own: Vec<(u32, OwnRequest)>,
    own_tag: u32,
    seq: u64,
    rx: Vec<u8>,
    rx_start: usize,
    tx: Vec<u8>,
    events: VecDeque<Event>,
    text_data: Vec<u8>,
    last_rx: Instant,
    deadline: Option<Instant>,
    login_itt: u32,
    nop: NopStats,
}

impl Session {
    /// A new session, not yet connected.
    pub fn new(cfg: SessionConfig) -> Session {
        let max = cfg.max_tasks;
        let now = Instant::now();
        Session {
            cfg,
            phase: Phase::Down,
            params: Params::default(),
            digests: DigestConfig::default(),
            tsih: 0,
            cmd_sn: SerialNumber(1),
            exp_cmd_sn: SerialNumber(1),
            max_cmd_sn: SerialNumber(1),
            exp_stat_sn: SerialNumber(0),
            tasks: Tasks::with_capacity(max),
            pending: VecDeque::with_capacity(max),
            own: Vec::new(),
            own_tag: 0,
            seq: 0,
            rx: Vec::with_capacity(64 << 10),
            rx_start: 0,
            tx: Vec::with_capacity(64 << 10),
            events: VecDeque::new(),
            text_data: Vec::new(),
            last_rx: now,
            deadline: None,
            login_itt: 0,
            nop: NopStats::default(),
        }
    }

    /// Keepalive counters.
    pub fn nop_stats(&self) -> NopStats {
        self.nop
    }

    /// Negotiated parameters (defaults before login).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// True in full feature phase.
    pub fn is_logged_in(&self) -> bool {
        matches!(self.phase, Phase::FullFeature)
    }

    /// True once logged out.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Commands submitted and not yet completed.
    pub fn outstanding(&self) -> usize {
        self.tasks.len()
    }

    /// Begins a login on a fresh transport. Also the recovery step after
    /// [`Event::Failed`] or [`Session::connection_lost`].
    pub fn start_login(&mut self, now: Instant) {
        self.rx.clear();
        self.rx_start = 0;
        self.tx.clear();
        self.digests = DigestConfig::default();
        self.text_data.clear();
        self.own.clear();
        // A new session: reinstatement uses TSIH 0 with the same ISID.
        self.tsih = 0;
        self.exp_stat_sn = SerialNumber(0);
        let mut login = Box::new(Login::new(
            &self.cfg.initiator_name,
            self.cfg.target_name.as_deref(),
            self.cfg.chap.clone(),
            &self.cfg.proposal,
            now_nanos(),
        ));
        let step = login.start();
        self.phase = Phase::Login(login);
        self.login_itt = self.next_own_tag();
        self.send_login(step);
        self.last_rx = now;
        self.deadline = Some(now + self.cfg.response_timeout);
    }

    /// Tells the session its transport died. Outstanding commands are kept for
    /// reissue after the next [`Session::start_login`].
    pub fn connection_lost(&mut self, why: &str) {
        if matches!(self.phase, Phase::Down | Phase::Closed) {
            return;
        }
        self.fail(SessionError::ConnectionLost(why.to_owned()));
    }

    fn fail(&mut self, e: SessionError) {
        let was_closing = matches!(self.phase, Phase::LoggingOut);
        self.phase = if was_closing {
            Phase::Closed
        } else {
            Phase::Down
        };
        self.tx.clear();
        self.deadline = None;
        for t in self.tasks.tags() {
            if let Some(task) = self.tasks.get_mut(t) {
                task.sent = false;
            }
        }
        for (tag, req) in std::mem::take(&mut self.own) {
            if let OwnRequest::TaskMgmt { .. } = req {
                self.events.push_back(Event::TaskManagement {
                    tag,
                    response: 0xff,
                });
            }
        }
        if was_closing {
            self.events.push_back(Event::LoggedOut);
        } else {
            self.events.push_back(Event::Failed(e));
        }
    }

    /// Completes every outstanding command with [`CommandError::SessionDown`]
    /// (the caller's replacement timeout ran out while the session had no
    /// connection). Returns how many. The session stays usable: the next
    /// [`Session::start_login`] starts with an empty task set.
    pub fn fail_outstanding(&mut self) -> usize {
        let tags = self.tasks.tags();
        for &t in &tags {
            self.complete(t, 0, Err(CommandError::SessionDown));
        }
        self.pending.clear();
        tags.len()
    }

    /// Submits a SCSI command. It is sent as soon as the CmdSN window allows.
    pub fn submit(&mut self, cmd: Command) -> Result<TaskTag, SubmitError> {
        if cmd.buffer.len() > u32::MAX as usize {
            return Err(SubmitError::TooLarge);
        }
        if matches!(self.phase, Phase::Closed | Phase::LoggingOut) {
            return Err(SubmitError::Closed);
        }
        self.seq += 1;
        let task = Task {
            lun: encode_lun(cmd.lun),
            cdb: cmd.cdb,
            direction: cmd.direction,
            buffer: cmd.buffer,
            seq: self.seq,
            sent: false,
            cmd_sn: 0,
            received: 0,
            next_data_sn: 0,
            r2ts: 0,
            ua_retries: 0,
        };
        let tag = self.tasks.insert(task).ok_or(SubmitError::QueueFull)?;
        self.pending.push_back(tag);
        self.pump();
        Ok(tag)
    }

    /// Asks the discovery session for all targets (SendTargets=All).
    pub fn send_targets(&mut self) -> u32 {
        let itt = self.next_own_tag();
        self.own.push((itt, OwnRequest::Text));
        self.text_data.clear();
        let mut data = Vec::new();
        text::push(&mut data, "SendTargets", "All");
        self.send_text(itt, RESERVED, &data);
        itt
    }

    fn send_text(&mut self, itt: u32, ttt: u32, data: &[u8]) {
        let p = Pdu::TextRequest(TextRequest {
            immediate: true,
            final_flag: true,
            continue_flag: false,
            lun: 0,
            itt,
            ttt,
            cmd_sn: self.cmd_sn.0,
            exp_stat_sn: self.exp_stat_sn.0,
        });
        self.emit(&p, data);
    }

    /// ABORT TASK for `tag` (section 11.5.1). Returns the TMF's own tag.
    pub fn abort_task(&mut self, tag: TaskTag) -> Option<u32> {
        let (lun, ref_sn) = {
            let t = self.tasks.get_mut(tag)?;
            (t.lun, t.cmd_sn)
        };
        Some(self.task_mgmt(tmf::ABORT_TASK, lun, tag, ref_sn))
    }

    /// LOGICAL UNIT RESET. Returns the TMF's tag.
    pub fn lun_reset(&mut self, lun: u16) -> u32 {
        self.task_mgmt(tmf::LOGICAL_UNIT_RESET, encode_lun(lun), RESERVED, 0)
    }

    fn task_mgmt(&mut self, function: u8, lun: u64, referenced: u32, ref_cmd_sn: u32) -> u32 {
        let itt = self.next_own_tag();
        self.own.push((
            itt,
            OwnRequest::TaskMgmt {
                function,
                referenced,
                lun,
            },
        ));
        let p = Pdu::TaskMgmtRequest(TaskMgmtRequest {
            immediate: true,
            function,
            lun,
            itt,
            referenced_task_tag: referenced,
            cmd_sn: self.cmd_sn.0,
            exp_stat_sn: self.exp_stat_sn.0,
            ref_cmd_sn,
            exp_data_sn: 0,
        });
        self.emit(&p, &[]);
        itt
    }

    /// Starts a logout (close the session). [`Event::LoggedOut`] follows.
    pub fn logout(&mut self) {
        if !matches!(self.phase, Phase::FullFeature) {
            self.phase = Phase::Closed;
            self.events.push_back(Event::LoggedOut);
            return;
        }
        let itt = self.next_own_tag();
        self.own.push((itt, OwnRequest::Logout));
        let p = Pdu::LogoutRequest(LogoutRequest {
            immediate: true,
            reason: logout_reason::CLOSE_SESSION,
            itt,
            cid: 0,
            cmd_sn: self.cmd_sn.0,
            exp_stat_sn: self.exp_stat_sn.0,
        });
        self.emit(&p, &[]);
        self.phase = Phase::LoggingOut;
    }

    /// Bytes waiting to be written to the transport.
    pub fn poll_transmit(&self) -> &[u8] {
        &self.tx
    }

    /// Marks `n` bytes of [`Session::poll_transmit`] as written.
    pub fn consume_transmit(&mut self, n: usize) {
        let n = n.min(self.tx.len());
        self.tx.drain(..n);
    }

    /// Next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::FullFeature => Some(
                self.deadline
                    .unwrap_or(self.last_rx + self.cfg.nop_interval),
            ),
            Phase::Login(_) | Phase::LoggingOut => self.deadline,
            _ => None,
        }
    }

    /// Drives timers: NOP-Out keepalive (section 11.18) and response timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(d) = self.deadline {
            if now >= d {
                let what = match self.phase {
                    Phase::Login(_) => "login response",
                    Phase::LoggingOut => "logout response",
                    _ => "NOP-In answer to our ping",
                };
                self.fail(SessionError::Timeout(what));
            }
            return;
        }
        if matches!(self.phase, Phase::FullFeature) && now >= self.last_rx + self.cfg.nop_interval {
            let itt = self.next_own_tag();
            self.own.push((itt, OwnRequest::Ping));
            let p = Pdu::NopOut(NopOut {
                immediate: true,
                lun: 0,
                itt,
                ttt: RESERVED,
                cmd_sn: self.cmd_sn.0,
                exp_stat_sn: self.exp_stat_sn.0,
            });
            self.emit(&p, &[]);
            self.nop.pings_sent += 1;
            self.deadline = Some(now + self.cfg.response_timeout);
        }
    }

    /// Feeds bytes read from the transport.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.phase, Phase::Down | Phase::Closed) {
            return;
        }
        self.last_rx = now;
        self.rx.extend_from_slice(bytes);
        let mut rx = std::mem::take(&mut self.rx);
        let mut start = self.rx_start;
        loop {
            if matches!(self.phase, Phase::Down | Phase::Closed) {
                rx.clear();
                start = 0;
                break;
            }
            let buf = &rx[start..];
            if buf.len() >= 48 {
                // Refuse oversized segments before buffering them (section 13.12:
                // MaxRecvDataSegmentLength is what we declared).
                let len = Bhs::new_unchecked(&buf[..48]).data_segment_len();
                let limit = self.params.initiator_mrdsl.max(8192);
                if len > limit {
                    self.fail(SessionError::Protocol(format!(
                        "data segment of {len} bytes exceeds our MaxRecvDataSegmentLength {limit}"
                    )));
                    continue;
                }
            }
            match frame::parse(buf, self.digests) {
                Ok(None) => break,
                Ok(Some((f, used))) => {
                    start += used;
                    let r = f
                        .pdu()
                        .map_err(SessionError::from)
                        .and_then(|p| self.on_pdu(p, f.data, now));
                    if let Err(e) = r {
                        self.fail(e);
                    }
                }
                Err(e) => self.fail(e.into()),
            }
        }
        if start == rx.len() {
            rx.clear();
            start = 0;
        } else if start > rx.len() / 2 {
            rx.drain(..start);
            start = 0;
        }
        self.rx = rx;
        self.rx_start = start;
        self.pump();
    }

    fn next_own_tag(&mut self) -> u32 {
        self.own_tag = self.own_tag.wrapping_add(1) & 0x7fff_ffff;
        if self.own_tag == 0x7fff_ffff {
            self.own_tag = 0;
        }
        OWN_TAG | self.own_tag
    }

    fn emit(&mut self, p: &Pdu, data: &[u8]) {
        // Lengths are checked by callers (segments never exceed MaxRecvDataSegmentLength).
        if let Err(e) = frame::emit(&mut self.tx, p, &[], data, self.digests) {
            self.fail(SessionError::Protocol(format!("cannot emit PDU: {e}")));
        }
    }

    fn send_login(&mut self, step: LoginStep) {
        let p = Pdu::LoginRequest(LoginRequest {
            transit: step.transit,
            continue_flag: false,
            csg: step.csg,
            nsg: step.nsg,
            version_max: 0,
            version_min: 0,
            isid: self.cfg.isid,
            tsih: self.tsih,
            itt: self.login_itt,
            cid: 0,
            cmd_sn: self.cmd_sn.0,
            exp_stat_sn: self.exp_stat_sn.0,
        });
        self.emit(&p, &step.data);
    }

    /// Updates ExpCmdSN/MaxCmdSN (section 4.2.2.1: "If MaxCmdSN < ExpCmdSN - 1 ... the
    /// initiator MUST ignore" them; they only move forward).
    fn window(&mut self, exp: u32, max: u32) {
        let (exp, max) = (SerialNumber(exp), SerialNumber(max));
        if max.lt(SerialNumber(exp.0.wrapping_sub(1))) {
            return;
        }
        if self.exp_cmd_sn.lt(exp) {
            self.exp_cmd_sn = exp;
        }
        if self.max_cmd_sn.lt(max) {
            self.max_cmd_sn = max;
        }
    }

    /// Advances ExpStatSN past a status-carrying PDU.
    fn stat(&mut self, stat_sn: u32) {
        let s = SerialNumber(stat_sn);
        if self.exp_stat_sn.le(s) {
            self.exp_stat_sn = s.plus(1);
        }
    }

    fn on_pdu(&mut self, p: Pdu, data: &[u8], now: Instant) -> Result<(), SessionError> {
        if let Phase::Login(_) = self.phase {
            let Pdu::LoginResponse(r) = p else {
                return Err(SessionError::Protocol(format!(
                    "{:?} during login",
                    p.opcode()
                )));
            };
            return self.on_login_response(&r, data, now);
        }
        match p {
            Pdu::DataIn(d) => self.on_data_in(&d, data),
            Pdu::ScsiResponse(r) => self.on_response(&r, data),
            Pdu::R2t(r) => self.on_r2t(&r),
            Pdu::NopIn(n) => {
                self.window(n.exp_cmd_sn, n.max_cmd_sn);
                if n.itt != RESERVED {
                    self.stat(n.stat_sn);
                    if let Some(i) = self.own.iter().position(|(t, _)| *t == n.itt) {
                        self.own.swap_remove(i);
                        self.deadline = None;
                        self.nop.pings_answered += 1;
                    }
                }
                if n.ttt != RESERVED {
                    self.nop.target_pings_answered += 1;
                    // Section 11.19.2: a target ping is answered with the same TTT and LUN.
                    let p = Pdu::NopOut(NopOut {
                        immediate: true,
                        lun: n.lun,
                        itt: RESERVED,
                        ttt: n.ttt,
                        cmd_sn: self.cmd_sn.0,
                        exp_stat_sn: self.exp_stat_sn.0,
                    });
                    self.emit(
                        &p,
                        data.get(..data.len().min(self.params.target_mrdsl as usize))
                            .unwrap_or(&[]),
                    );
                }
                Ok(())
            }
            Pdu::TextResponse(t) => self.on_text(&t, data),
            Pdu::TaskMgmtResponse(t) => {
                self.window(t.exp_cmd_sn, t.max_cmd_sn);
                self.stat(t.stat_sn);
                let i = self
                    .own
                    .iter()
                    .position(|(tag, _)| *tag == t.itt)
                    .ok_or_else(|| SessionError::Protocol("TMF response for unknown tag".into()))?;
                let (_, req) = self.own.swap_remove(i);
                if let OwnRequest::TaskMgmt {
                    function,
                    referenced,
                    lun,
                } = req
                {
                    if t.response == 0 {
                        // Section 11.5.1: aborted tasks get no response of their own.
                        let victims: Vec<TaskTag> = match function {
                            tmf::ABORT_TASK => vec![referenced],
                            tmf::LOGICAL_UNIT_RESET | tmf::ABORT_TASK_SET | tmf::CLEAR_TASK_SET => {
                                self.tasks
                                    .tags()
                                    .into_iter()
                                    .filter(|tag| {
                                        self.tasks
                                            .get_mut(*tag)
                                            .is_some_and(|x| x.lun == lun && x.sent)
                                    })
                                    .collect()
                            }
                            _ => Vec::new(),
                        };
                        for v in victims {
                            self.complete(v, 0, Err(CommandError::Aborted));
                        }
                    }
                }
                self.events.push_back(Event::TaskManagement {
                    tag: t.itt,
                    response: t.response,
                });
                Ok(())
            }
            Pdu::LogoutResponse(l) => {
                self.stat(l.stat_sn);
                self.own.retain(|(t, _)| *t != l.itt);
                self.phase = Phase::Closed;
                self.deadline = None;
                self.events.push_back(Event::LoggedOut);
                Ok(())
            }
            Pdu::Reject(r) => {
                self.window(r.exp_cmd_sn, r.max_cmd_sn);
                self.stat(r.stat_sn);
                // The data segment is the rejected PDU's header (section 11.17.4).
                let bhs = Bhs::new_checked(data)?;
                let itt = bhs.itt();
                if bhs.opcode_raw() == 0x01 && self.tasks.get_mut(itt).is_some() {
                    self.complete(itt, 0, Err(CommandError::Rejected(r.reason)));
                    Ok(())
                } else {
                    Err(SessionError::Protocol(format!(
                        "target rejected a PDU (opcode {:#04x}) with reason {:#04x}",
                        bhs.opcode_raw(),
                        r.reason
                    )))
                }
            }
            Pdu::AsyncMessage(a) => {
                self.window(a.exp_cmd_sn, a.max_cmd_sn);
                self.stat(a.stat_sn);
                if a.event == async_event::LOGOUT_REQUEST {
                    self.events.push_back(Event::LogoutRequested);
                }
                Ok(())
            }
            Pdu::LoginResponse(_) => Err(SessionError::Protocol(
                "Login Response in full feature phase".into(),
            )),
            other => Err(SessionError::Protocol(format!(
                "initiator-only PDU {:?} received",
                other.opcode()
            ))),
        }
    }

    fn on_login_response(
        &mut self,
        r: &LoginResponse,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        if r.itt != self.login_itt {
            return Err(SessionError::Protocol(
                "login response with wrong ITT".into(),
            ));
        }
        if r.version_active != 0 {
            return Err(SessionError::Protocol(format!(
                "unsupported iSCSI version {}",
                r.version_active
            )));
        }
        self.stat(r.stat_sn);
        let Phase::Login(login) = &mut self.phase else {
            return Err(SessionError::Protocol("login state lost".into()));
        };
        let progress = login.on_response(r, data)?;
        // Section 11.13: ExpCmdSN/MaxCmdSN of the login response start the window.
        self.exp_cmd_sn = SerialNumber(r.exp_cmd_sn);
        self.max_cmd_sn = SerialNumber(r.max_cmd_sn);
        self.cmd_sn = SerialNumber(r.exp_cmd_sn);
        self.deadline = Some(now + self.cfg.response_timeout);
        match progress {
            LoginProgress::Send(step) => {
                self.send_login(step);
                Ok(())
            }
            LoginProgress::Done(params) => {
                self.params = params;
                self.digests = DigestConfig {
                    header: params.header_digest,
                    data: params.data_digest,
                };
                self.tsih = r.tsih;
                self.phase = Phase::FullFeature;
                self.deadline = None;
                // ERL 0: reissue everything not completed, in submission order.
                let mut tags: Vec<(u64, TaskTag)> = self
                    .tasks
                    .tags()
                    .into_iter()
                    .filter_map(|t| self.tasks.get_mut(t).map(|x| (x.seq, t)))
                    .collect();
                tags.sort_unstable();
                let reissued = tags
                    .iter()
                    .filter(|(_, t)| !self.pending.contains(t))
                    .count();
                self.pending = tags.into_iter().map(|(_, t)| t).collect();
                for t in self.pending.iter().copied().collect::<Vec<_>>() {
                    if let Some(task) = self.tasks.get_mut(t) {
                        task.sent = false;
                        task.received = 0;
                        task.next_data_sn = 0;
                        task.r2ts = 0;
                    }
                }
                self.events.push_back(Event::LoggedIn {
                    params,
                    tsih: r.tsih,
                    reissued,
                });
                Ok(())
            }
        }
    }

    /// Sends pending commands while CmdSN <= MaxCmdSN (section 4.2.2.1).
    fn pump(&mut self) {
        if !matches!(self.phase, Phase::FullFeature) {
            return;
        }
        while let Some(&tag) = self.pending.front() {
            if !self.cmd_sn.le(self.max_cmd_sn) {
                break;
            }
            self.pending.pop_front();
            if self.tasks.get_mut(tag).is_some() {
                self.send_command(tag);
            }
        }
    }

    fn send_command(&mut self, tag: TaskTag) {
        let p = self.params;
        let cmd_sn = self.cmd_sn;
        self.cmd_sn = cmd_sn.plus(1);
        let exp_stat_sn = self.exp_stat_sn.0;
        let mut tx = std::mem::take(&mut self.tx);
        let digests = self.digests;
        let Some(t) = self.tasks.get_mut(tag) else {
            self.tx = tx;
            return;
        };
        t.sent = true;
        t.cmd_sn = cmd_sn.0;
        let len = t.expected_len();
        let write = t.direction == Direction::Write;
        // Section 13.13/13.14: immediate data and unsolicited Data-Out together stay
        // within FirstBurstLength; each PDU within the target's MaxRecvDataSegmentLength.
        let (imm, unsol) = if write {
            let first = len.min(p.first_burst_length);
            let imm = if p.immediate_data {
                first.min(p.target_mrdsl)
            } else {
                0
            };
            let unsol = if p.initial_r2t { imm } else { first };
            (imm, unsol)
        } else {
            (0, 0)
        };
        let header = Pdu::ScsiCommand(ScsiCommand {
            immediate: false,
            final_flag: unsol == imm,
            read: t.direction == Direction::Read,
            write,
            attr: TaskAttribute::Simple,
            lun: t.lun,
            itt: tag,
            expected_data_len: len,
            cmd_sn: cmd_sn.0,
            exp_stat_sn,
            cdb: t.cdb.bytes,
        });
        let mut ok = frame::emit(&mut tx, &header, &[], &t.buffer[..imm as usize], digests);
        if ok.is_ok() && unsol > imm {
            ok = data_out_sequence(
                &mut tx,
                t,
                tag,
                RESERVED,
                imm,
                unsol - imm,
                p.target_mrdsl,
                exp_stat_sn,
                digests,
            );
        }
        self.tx = tx;
        if let Err(e) = ok {
            self.fail(SessionError::Protocol(format!("cannot emit command: {e}")));
        }
    }

    fn on_r2t(&mut self, r: &R2t) -> Result<(), SessionError> {
        self.window(r.exp_cmd_sn, r.max_cmd_sn);
        let p = self.params;
        let exp_stat_sn = self.exp_stat_sn.0;
        let digests = self.digests;
        let t = self
            .tasks
            .get_mut(r.itt)
            .filter(|t| t.sent)
            .ok_or_else(|| SessionError::Protocol(format!("R2T for unknown task {:#x}", r.itt)))?;
        if t.direction != Direction::Write {
            return Err(SessionError::Protocol(
                "R2T for a command that is not a write".into(),
            ));
        }
        // Section 11.8.4: DesiredDataTransferLength "MUST NOT be 0 and MUST NOT exceed
        // MaxBurstLength"; the range must lie within the command's data.
        let end = r.buffer_offset as u64 + r.desired_len as u64;
        if r.desired_len == 0 || r.desired_len > p.max_burst_length || end > t.expected_len() as u64
        {
            return Err(SessionError::Protocol(format!(
                "R2T offset {} length {} invalid for a {}-byte write (MaxBurstLength {})",
                r.buffer_offset,
                r.desired_len,
                t.expected_len(),
                p.max_burst_length
            )));
        }
        t.r2ts += 1;
        let mut tx = std::mem::take(&mut self.tx);
        let res = data_out_sequence(
            &mut tx,
            t,
            r.itt,
            r.ttt,
            r.buffer_offset,
            r.desired_len,
            p.target_mrdsl,
            exp_stat_sn,
            digests,
        );
        self.tx = tx;
        res.map_err(|e| SessionError::Protocol(format!("cannot emit Data-Out: {e}")))
    }

    fn on_data_in(&mut self, d: &DataIn, data: &[u8]) -> Result<(), SessionError> {
        self.window(d.exp_cmd_sn, d.max_cmd_sn);
        let t = self
            .tasks
            .get_mut(d.itt)
            .filter(|t| t.sent)
            .ok_or_else(|| {
                SessionError::Protocol(format!("Data-In for unknown task {:#x}", d.itt))
            })?;
        if !data.is_empty() {
            if t.direction != Direction::Read {
                return Err(SessionError::Protocol(
                    "Data-In for a command that is not a read".into(),
                ));
            }
            if d.data_sn != t.next_data_sn {
                // ERL 0 cannot recover a lost PDU inside a connection (section 7.1.5).
                return Err(SessionError::Protocol(format!(
                    "Data-In DataSN {} where {} expected",
                    d.data_sn, t.next_data_sn
                )));
            }
            let start = d.buffer_offset as usize;
            let end = start
                .checked_add(data.len())
                .filter(|&e| e <= t.buffer.len())
                .ok_or_else(|| {
                    SessionError::Protocol(format!(
                        "Data-In at offset {} length {} beyond the {}-byte buffer",
                        d.buffer_offset,
                        data.len(),
                        t.buffer.len()
                    ))
                })?;
            t.buffer[start..end].copy_from_slice(data);
            t.received = t.received.saturating_add(data.len() as u32);
        }
        t.next_data_sn = t.next_data_sn.wrapping_add(1);
        if d.status_present {
            // Phase collapse (section 11.7.4): status rides on the last Data-In.
            if !d.final_flag {
                return Err(SessionError::Protocol("Data-In with S but not F".into()));
            }
            let expected = t.expected_len();
            self.stat(d.stat_sn);
            let transferred = if d.underflow {
                expected.saturating_sub(d.residual)
            } else {
                expected
            };
            let result = if d.status == status::GOOD {
                Ok(())
            } else {
                Err(CommandError::Status(d.status))
            };
            self.complete(d.itt, transferred, result);
        }
        Ok(())
    }

    fn on_response(&mut self, r: &ScsiResponse, data: &[u8]) -> Result<(), SessionError> {
        self.window(r.exp_cmd_sn, r.max_cmd_sn);
        self.stat(r.stat_sn);
        let t = self
            .tasks
            .get_mut(r.itt)
            .filter(|t| t.sent)
            .ok_or_else(|| {
                SessionError::Protocol(format!("SCSI Response for unknown task {:#x}", r.itt))
            })?;
        let expected = t.expected_len();
        let transferred = if r.underflow {
            expected.saturating_sub(r.residual)
        } else {
            expected
        };
        let result = if r.response != 0 {
            Err(CommandError::TargetFailure(r.response))
        } else if r.status == status::GOOD {
            Ok(())
        } else if r.status == status::CHECK_CONDITION {
            match ScsiResponse::sense(data)
                .ok()
                .and_then(|(s, _)| Sense::parse(s).ok())
            {
                Some(s) => Err(CommandError::CheckCondition(s)),
                None => Err(CommandError::CheckConditionNoSense),
            }
        } else {
            Err(CommandError::Status(r.status))
        };
        if let Err(CommandError::CheckCondition(s)) = &result {
            if s.key == SenseKey::UnitAttention {
                self.events.push_back(Event::UnitAttention {
                    tag: r.itt,
                    sense: *s,
                });
            }
            if s.key == SenseKey::UnitAttention && t.ua_retries < self.cfg.unit_attention_retries {
                t.ua_retries += 1;
                t.sent = false;
                t.received = 0;
                t.next_data_sn = 0;
                t.r2ts = 0;
                self.pending.push_back(r.itt);
                return Ok(());
            }
        }
        self.complete(r.itt, transferred, result);
        Ok(())
    }

    fn complete(&mut self, tag: TaskTag, transferred: u32, result: Result<(), CommandError>) {
        if let Some(t) = self.tasks.remove(tag) {
            self.pending.retain(|p| *p != tag);
            self.events.push_back(Event::Completed(Completion {
                tag,
                buffer: t.buffer,
                transferred,
                result,
            }));
        }
    }

    fn on_text(&mut self, t: &TextResponse, data: &[u8]) -> Result<(), SessionError> {
        self.window(t.exp_cmd_sn, t.max_cmd_sn);
        self.stat(t.stat_sn);
        if !self
            .own
            .iter()
            .any(|(tag, r)| *tag == t.itt && *r == OwnRequest::Text)
        {
            return Err(SessionError::Protocol(
                "Text Response for unknown tag".into(),
            ));
        }
        if self.text_data.len() + data.len() > 1 << 20 {
            return Err(SessionError::Protocol(
                "SendTargets answer over 1 MiB".into(),
            ));
        }
        self.text_data.extend_from_slice(data);
        if t.final_flag && !t.continue_flag {
            self.own.retain(|(tag, _)| *tag != t.itt);
            let data = std::mem::take(&mut self.text_data);
            let mut targets: Vec<DiscoveredTarget> = Vec::new();
            for pair in text::pairs(&data) {
                let (k, v) = pair?;
                match k {
                    "TargetName" => targets.push(DiscoveredTarget {
                        name: v.to_owned(),
                        addresses: Vec::new(),
                    }),
                    "TargetAddress" => match targets.last_mut() {
                        Some(last) => last.addresses.push(v.to_owned()),
                        None => {
                            return Err(SessionError::Protocol(
                                "TargetAddress before TargetName".into(),
                            ))
                        }
                    },
                    _ => {}
                }
            }
            self.events.push_back(Event::Targets(targets));
        } else {
            // Section 11.10.4: continue with an empty request echoing the TTT.
            self.send_text(t.itt, t.ttt, &[]);
        }
        Ok(())
    }
}

/// Emits Data-Out PDUs for `len` bytes at `offset` of the task's buffer, each at most
/// `mrdsl` bytes, DataSN from 0, F on the last (section 11.7).
#[allow(clippy::too_many_arguments)]
fn data_out_sequence(
    tx: &mut Vec<u8>,
    t: &Task,
    itt: u32,
    ttt: u32,
    offset: u32,
    len: u32,
    mrdsl: u32,
    exp_stat_sn: u32,
    digests: DigestConfig,
) -> Result<(), iscsi_pdu::Error> {
    let mrdsl = mrdsl.max(512);
    let mut sent = 0u32;
    let mut data_sn = 0u32;
    while sent < len {
        let n = (len - sent).min(mrdsl);
        let at = (offset + sent) as usize;
        let p = Pdu::DataOut(DataOut {
            final_flag: sent + n == len,
            lun: t.lun,
            itt,
            ttt,
            exp_stat_sn,
            data_sn,
            buffer_offset: offset + sent,
        });
        frame::emit(tx, &p, &[], &t.buffer[at..at + n as usize], digests)?;
        sent += n;
        data_sn += 1;
    }
    Ok(())
}
