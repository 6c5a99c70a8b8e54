//! [`IscsiBackend`]: virtio-blk requests as SCSI commands on one iSCSI session.
//!
//! Each request takes a slot (one per request the device may have in flight).
//! A read or write is split at the LU's transfer limit
//! ([`Geometry::command_bytes`]) into commands that are all submitted at once;
//! the slot completes when its last command does, and fails if any failed.
//! Data moves through buffers recycled from a pool: write data is gathered
//! from guest memory at submit, read data scattered into it at completion,
//! so after warm-up the path allocates nothing.
//!
//! Recovery ([`crate::recovery`]): when the connection fails, `poll`
//! reconnects, on the next portal of the device first; the session logs in
//! again and reissues every command not yet answered, so each guest request
//! still completes exactly once. Past the spec's replacement timeout the
//! outstanding requests fail with `IoErr`, and so do new ones until a
//! portal answers again.
//!
//! UNIT ATTENTION with CAPACITY DATA HAS CHANGED (SBC-4 / SPC-4 ASC 2Ah
//! ASCQ 09h): the backend sends READ CAPACITY (16) on the data path (no
//! blocking) and reports a new size through [`IscsiBackend::set_capacity`]
//! (the device's `Backend::capacity_change` hook) and
//! [`SessionStats::capacity_bytes`].

use crate::link::{KernelTcp, Link, Transport};
use crate::recovery::{wait_event, Recovery, WaitError};
use crate::spec::IscsiSpec;
use crate::stats::{self, SessionStats};
use iscsi_initiator::block::{self, BlockOp, BlockRequest, Geometry};
use iscsi_initiator::scsi::capacity::Capacity;
use iscsi_initiator::scsi::cdb::{self, Cdb};
use iscsi_initiator::scsi::inquiry::{self, BlockLimits, Provisioning};
use iscsi_initiator::{Command, CommandError, Direction, Event, Session, SessionConfig, TaskTag};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vfio::backend::{Backend, BackendInfo, IoCompletion, IoOp, IoRequest, IoStatus, SubmitError};
use vfio::iovec::IoVec;

/// Our initiator name.
pub const INITIATOR: &str = "iqn.2026-01.dev.vswitch:blk";
/// Buffers kept for reuse.
const POOL: usize = 256;
/// I/O vectors preallocated per slot (virtio-blk `seg_max` is well below).
const IOVS_PER_SLOT: usize = 256;
/// `poll` reads the clock and runs the session's timers once per this many
/// calls (every call while the session is down): a busy poller calls it
/// millions of times a second, the timers are seconds long, and reading the
/// clock was a tenth of the poller's time.
const CLOCK_EVERY: u32 = 64;

/// One guest request in flight.
#[derive(Debug)]
struct Slot {
    id: u64,
    read: bool,
    /// Commands not yet completed.
    pieces: u32,
    failed: bool,
    iovs: Vec<IoVec>,
}

/// A `vfio` block backend on an iSCSI logical unit.
pub struct IscsiBackend {
    spec: IscsiSpec,
    link: Link,
    geo: Geometry,
    info: BackendInfo,
    max_tasks: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// By the session's task slab index (the tag's low 16 bits, see
    /// `iscsi_initiator::task`): the command's tag, its slot and its byte
    /// offset within the request. A plain array: no hashing per command.
    tags: Vec<Option<(TaskTag, u32, u64)>>,
    pool: Vec<Vec<u8>>,
    done: VecDeque<(u32, IoStatus)>,
    recovery: Recovery,
    stats: Arc<SessionStats>,
    /// The READ CAPACITY (16) sent after a capacity-changed UNIT ATTENTION.
    capacity_probe: Option<TaskTag>,
    /// The clock as last read by `poll`, and the calls since.
    now: Instant,
    polls: u32,
    /// A capacity not yet reported through `Backend::capacity_change`.
    capacity_pending: Option<u64>,
}

impl std::fmt::Debug for IscsiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IscsiBackend")
            .field("spec", &self.spec)
            .field("geometry", &self.geo)
            .field("inflight", &self.inflight())
            .finish()
    }
}

/// Runs one command to completion (setup only: blocks the caller).
fn execute(link: &mut Link, lun: u16, cdb: Cdb, len: usize) -> Result<Vec<u8>, String> {
    let direction = if len == 0 {
        Direction::None
    } else {
        Direction::Read
    };
    let tag = link
        .session
        .submit(Command {
            lun,
            cdb,
            direction,
            buffer: vec![0u8; len],
        })
        .map_err(|e| format!("submit: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    wait_event(link, deadline, |e| match e {
        Event::Completed(c) if c.tag == tag => Some(match c.result {
            Ok(()) => {
                let mut b = c.buffer;
                b.truncate(c.transferred as usize);
                Ok(b)
            }
            Err(e) => Err(format!("command {:#04x}: {e}", cdb.bytes[0])),
        }),
        _ => None,
    })
    .map_err(|e: WaitError| format!("{}: {e}", link.portal()))?
}

impl IscsiBackend {
    /// Connects to the target, logs in and reads the LU's geometry (READ
    /// CAPACITY, Block Limits and Logical Block Provisioning VPD pages). Blocks
    /// for up to about 20 s; the data path never blocks.
    pub fn connect(spec: &IscsiSpec, max_inflight: usize) -> Result<IscsiBackend, String> {
        Self::connect_with(spec, max_inflight, Box::new(KernelTcp::default()))
    }

    /// [`IscsiBackend::connect`] over another transport (a user-space TCP stack).
    pub fn connect_with(
        spec: &IscsiSpec,
        max_inflight: usize,
        transport: Box<dyn Transport>,
    ) -> Result<IscsiBackend, String> {
        let max_inflight = max_inflight.clamp(1, 4096);
        let mut cfg = SessionConfig::new(
            spec.initiator.as_deref().unwrap_or(INITIATOR),
            Some(&spec.target),
        );
        // Room for every request split in a few commands.
        let max_tasks = (max_inflight * 4).clamp(64, 16384);
        // One more for the READ CAPACITY sent after a capacity change.
        cfg.max_tasks = max_tasks + 1;
        cfg.chap = spec.chap.clone();
        cfg.nop_interval = spec.timeouts.nop_interval;
        cfg.response_timeout = spec.timeouts.nop_timeout;
        let mut link = Link::new(spec.portal(), Session::new(cfg), transport);
        let stats = Arc::new(SessionStats {
            name: spec.to_string(),
            ..SessionStats::default()
        });
        let mut recovery = Recovery::new(spec, Arc::clone(&stats));
        recovery
            .first_login(&mut link)
            .map_err(|e| format!("{spec}: {e}"))?;
        let lun = spec.lun;
        // The session retries UNIT ATTENTION (raised after login) itself.
        execute(&mut link, lun, cdb::test_unit_ready(), 0)
            .map_err(|e| format!("{spec}: TEST UNIT READY: {e}"))?;
        let capacity = match execute(&mut link, lun, cdb::read_capacity16(32), 32) {
            Ok(d) => Capacity::parse16(&d).map_err(|e| e.to_string()),
            Err(_) => execute(&mut link, lun, cdb::read_capacity10(), 8)
                .and_then(|d| Capacity::parse10(&d).map_err(|e| e.to_string())),
        }
        .map_err(|e| format!("{spec}: READ CAPACITY: {e}"))?;
        let pages = execute(&mut link, lun, cdb::inquiry(Some(0), 255), 255)
            .ok()
            .and_then(|d| inquiry::supported_pages(&d).ok())
            .unwrap_or_default();
        let mut vpd = |p: u8| {
            if pages.contains(&p) {
                execute(&mut link, lun, cdb::inquiry(Some(p), 255), 255).ok()
            } else {
                None
            }
        };
        let limits = vpd(inquiry::page::BLOCK_LIMITS)
            .and_then(|d| BlockLimits::parse(&d).ok())
            .unwrap_or_default();
        let provisioning = vpd(inquiry::page::PROVISIONING)
            .and_then(|d| Provisioning::parse(&d).ok())
            .unwrap_or_default();
        let geo = Geometry {
            capacity,
            limits,
            provisioning,
            max_command_bytes: 1 << 20,
        };
        let bytes = capacity.bytes();
        stats.capacity_bytes.store(bytes, Ordering::Relaxed);
        if bytes == 0 || !bytes.is_multiple_of(512) || capacity.block_size < 512 {
            return Err(format!(
                "{spec}: LU of {bytes} bytes in {}-byte blocks cannot be a virtio-blk disk",
                capacity.block_size
            ));
        }
        let info = BackendInfo {
            capacity: bytes,
            read_only: false,
            flush: true,
            discard: provisioning.unmap || provisioning.write_same16_unmap,
            // Without WRITE SAME the feature is not offered: the guest's
            // kernel then writes zero pages itself.
            write_zeroes: geo.write_same(),
            max_inflight,
        };
        let slots = (0..max_inflight)
            .map(|_| Slot {
                id: 0,
                read: false,
                pieces: 0,
                failed: false,
                iovs: Vec::with_capacity(IOVS_PER_SLOT),
            })
            .collect();
        Ok(IscsiBackend {
            spec: spec.clone(),
            link,
            geo,
            info,
            max_tasks,
            slots,
            free: (0..max_inflight as u32).rev().collect(),
            tags: vec![None; max_tasks + 1],
            pool: Vec::with_capacity(POOL),
            done: VecDeque::with_capacity(max_inflight),
            recovery,
            stats: {
                stats::register(&stats);
                stats
            },
            capacity_probe: None,
            now: Instant::now(),
            polls: 0,
            capacity_pending: None,
        })
    }

    /// The session's state and recovery counters (also listed by
    /// [`stats::registry`]).
    pub fn stats(&self) -> Arc<SessionStats> {
        Arc::clone(&self.stats)
    }

    /// The portal of the current (or next) connection.
    pub fn portal(&self) -> &str {
        self.recovery.portal()
    }

    /// The LU's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The capacity-change hook: the LU now has `capacity` (READ CAPACITY
    /// read again, e.g. after a UNIT ATTENTION "CAPACITY DATA HAS CHANGED",
    /// SPC-4 ASC/ASCQ 2Ah/09h). Requests are bounded by it from now on, and
    /// the device learns it through `Backend::capacity_change` at its next
    /// poll step (config space `capacity`, config-change notification to
    /// the guest). Refused if the block size changed or the size is not a
    /// whole number of 512-byte sectors (the disk keeps its old geometry).
    pub fn set_capacity(&mut self, capacity: Capacity) -> Result<(), String> {
        let bytes = capacity.bytes();
        if capacity.block_size != self.geo.capacity.block_size {
            return Err(format!(
                "{}: block size changed from {} to {}",
                self.spec, self.geo.capacity.block_size, capacity.block_size
            ));
        }
        if bytes == 0 || !bytes.is_multiple_of(512) {
            return Err(format!("{}: new capacity of {bytes} bytes", self.spec));
        }
        if bytes != self.info.capacity {
            self.geo.capacity = capacity;
            self.info.capacity = bytes;
            self.capacity_pending = Some(bytes);
        }
        Ok(())
    }

    /// Drops the TCP connection (fault injection for tests; recovery follows).
    pub fn kill_connection(&mut self) {
        self.link.disconnect("connection killed by the caller");
    }

    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        b
    }

    fn recycle(&mut self, b: Vec<u8>) {
        if self.pool.len() < POOL {
            self.pool.push(b);
        }
    }

    /// Submits one command of slot `si` covering request bytes `start..`.
    fn issue(&mut self, si: u32, start: u64, cdb: Cdb, direction: Direction, buffer: Vec<u8>) {
        match self.link.session.submit(Command {
            lun: self.spec.lun,
            cdb,
            direction,
            buffer,
        }) {
            Ok(tag) => match self.tags.get_mut(tag_index(tag)) {
                Some(e) => {
                    *e = Some((tag, si, start));
                    self.slots[si as usize].pieces += 1;
                }
                // The session's slab is max_tasks long: cannot happen.
                None => self.slots[si as usize].failed = true,
            },
            Err(_) => self.slots[si as usize].failed = true,
        }
    }

    /// Removes `tag`'s entry: its slot and byte offset.
    fn take_tag(&mut self, tag: TaskTag) -> Option<(u32, u64)> {
        let e = self.tags.get_mut(tag_index(tag))?;
        match *e {
            Some((t, si, start)) if t == tag => {
                *e = None;
                Some((si, start))
            }
            _ => None,
        }
    }

    fn finish_if_done(&mut self, si: u32) {
        let s = &self.slots[si as usize];
        if s.pieces == 0 {
            let st = if s.failed {
                IoStatus::IoErr
            } else {
                IoStatus::Ok
            };
            self.done.push_back((si, st));
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Completed(c) if Some(c.tag) == self.capacity_probe => {
                self.capacity_probe = None;
                self.on_capacity(c.result.map(|()| &c.buffer[..c.transferred as usize]));
            }
            Event::Completed(c) => {
                let Some((si, start)) = self.take_tag(c.tag) else {
                    self.recycle(c.buffer);
                    return;
                };
                let slot = &mut self.slots[si as usize];
                match &c.result {
                    Ok(()) if slot.read => {
                        if (c.transferred as usize) < c.buffer.len()
                            || !scatter_at(&slot.iovs, start, &c.buffer)
                        {
                            slot.failed = true;
                        }
                    }
                    Ok(()) => {}
                    // Counted and logged once by the recovery.
                    Err(CommandError::SessionDown) => slot.failed = true,
                    Err(e) => {
                        if !slot.failed {
                            eprintln!("blk iscsi {}: command failed: {e}", self.spec);
                        }
                        slot.failed = true;
                    }
                }
                slot.pieces -= 1;
                self.recycle(c.buffer);
                self.finish_if_done(si);
            }
            Event::LoggedIn { reissued, .. } => self.recovery.on_logged_in(reissued),
            Event::Failed(e) => self.recovery.on_failed(&mut self.link, e, Instant::now()),
            // RFC 7143 section 11.9.1 AsyncEvent 1: the target asks us to log
            // out; the session logs out and `LoggedOut` follows, then we
            // log in again like after a lost connection.
            Event::LogoutRequested => self.link.session.logout(),
            Event::LoggedOut => self.recovery.on_logged_out(&mut self.link, Instant::now()),
            // SPC-4 annex F, ASC 2Ah ASCQ 09h: ask the new capacity (the
            // command that saw it is retried by the session).
            Event::UnitAttention { sense, .. } if sense.is_capacity_changed() => {
                if self.capacity_probe.is_none() {
                    let cmd = Command {
                        lun: self.spec.lun,
                        cdb: cdb::read_capacity16(32),
                        direction: Direction::Read,
                        buffer: vec![0u8; 32],
                    };
                    self.capacity_probe = self.link.session.submit(cmd).ok();
                }
            }
            Event::UnitAttention { .. } | Event::Targets(_) | Event::TaskManagement { .. } => {}
        }
    }

    /// The answer to the READ CAPACITY (16) sent after a capacity change.
    fn on_capacity(&mut self, r: Result<&[u8], CommandError>) {
        let cap = match r {
            Ok(d) => Capacity::parse16(d).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let cap = match cap {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "blk iscsi {}: READ CAPACITY after a capacity change: {e}",
                    self.spec
                );
                return;
            }
        };
        let old = self.info.capacity;
        SessionStats::add(&self.stats.capacity_changes, 1);
        match self.set_capacity(cap) {
            Ok(()) if self.info.capacity != old => {
                eprintln!(
                    "blk iscsi {}: capacity changed from {old} to {} bytes",
                    self.spec, self.info.capacity
                );
                self.stats
                    .capacity_bytes
                    .store(self.info.capacity, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) => eprintln!("blk iscsi: capacity change refused, size kept: {e}"),
        }
    }
}

/// The session's slab index in a tag (ITT = generation << 16 | slot).
fn tag_index(tag: TaskTag) -> usize {
    (tag & 0xffff) as usize
}

/// Copies `data` into bytes `start..` of the concatenated vectors.
fn scatter_at(iovs: &[IoVec], mut start: u64, mut data: &[u8]) -> bool {
    for v in iovs {
        if data.is_empty() {
            break;
        }
        let vl = v.len() as u64;
        if start >= vl {
            start -= vl;
            continue;
        }
        let Some(piece) = v.slice(start as usize, (vl - start) as usize) else {
            return false;
        };
        let n = piece.copy_from(data);
        data = &data[n..];
        start = 0;
    }
    data.is_empty()
}

/// Copies bytes `start..start + out.len()` of the concatenated vectors.
fn gather_at(iovs: &[IoVec], mut start: u64, mut out: &mut [u8]) -> bool {
    for v in iovs {
        if out.is_empty() {
            break;
        }
        let vl = v.len() as u64;
        if start >= vl {
            start -= vl;
            continue;
        }
        let Some(piece) = v.slice(start as usize, (vl - start) as usize) else {
            return false;
        };
        let n = piece.copy_to(out);
        out = &mut out[n..];
        start = 0;
    }
    out.is_empty()
}

impl Backend for IscsiBackend {
    fn info(&self) -> BackendInfo {
        self.info
    }

    /// The session's [`SessionStats`] as `vswitch_iscsi_*` samples, with
    /// the device's labels plus `target` (the device's URL, secrets hidden).
    fn metrics(&self, m: &mut metrics::MetricSet, labels: &[(&str, &str)]) {
        use crate::stats::SessionState;
        let st = &self.stats;
        let mut l = labels.to_vec();
        l.push(("target", &st.name));
        let state = st.state();
        m.gauge(
            "vswitch_iscsi_session_up",
            "1 while the iSCSI session is logged in (I/O flows), else 0.",
            &l,
            u64::from(state == SessionState::LoggedIn),
        );
        for s in [
            SessionState::LoggedIn,
            SessionState::Recovering,
            SessionState::Failed,
        ] {
            let mut ls = l.clone();
            ls.push(("state", s.name()));
            m.gauge(
                "vswitch_iscsi_session_state",
                "1 for the session's current state (logged_in, recovering: I/O waits, \
                 failed: past the replacement timeout, I/O fails), 0 for the others.",
                &ls,
                u64::from(state == s),
            );
        }
        let counters = [
            (
                "vswitch_iscsi_reconnects_total",
                "Successful logins after a connection loss (session reinstatements).",
                &st.reconnects,
            ),
            (
                "vswitch_iscsi_connection_losses_total",
                "iSCSI connections lost (reset, close, keepalive or login timeout, protocol error).",
                &st.connection_losses,
            ),
            (
                "vswitch_iscsi_portal_switches_total",
                "Logins that moved to another portal than the one that failed.",
                &st.portal_switches,
            ),
            (
                "vswitch_iscsi_redirects_total",
                "Login redirects followed.",
                &st.redirects,
            ),
            (
                "vswitch_iscsi_failed_over_commands_total",
                "Commands reissued on a new connection after a loss (ERL 0).",
                &st.failed_over_commands,
            ),
            (
                "vswitch_iscsi_timed_out_commands_total",
                "Commands failed because no connection came back within the replacement timeout.",
                &st.timed_out_commands,
            ),
            (
                "vswitch_iscsi_capacity_changes_total",
                "LU capacity changes seen (UNIT ATTENTION, then READ CAPACITY).",
                &st.capacity_changes,
            ),
        ];
        for (name, help, c) in counters {
            m.counter(name, help, &l, SessionStats::get(c));
        }
        m.gauge(
            "vswitch_iscsi_portal_index",
            "Index of the portal in use (or last tried) in the device's portal list.",
            &l,
            u64::from(st.portal_index.load(Ordering::Relaxed)),
        );
    }

    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        let bs = self.geo.capacity.block_size as u64;
        let step = self.geo.command_bytes();
        let commands = match req.op {
            IoOp::Read | IoOp::Write => req.len.div_ceil(step).max(1) as usize,
            _ => 1,
        };
        // Keep the session's task slab from filling halfway through a request.
        if self.free.is_empty()
            || (self.link.session.outstanding() + commands > self.max_tasks
                && self.link.session.outstanding() > 0)
        {
            return Err(SubmitError::Busy);
        }
        let si = self.free.pop().expect("checked non-empty");
        if self.recovery.is_failed() {
            // Past the replacement timeout without a connection: fail at
            // once, as open-iscsi does, instead of queueing.
            SessionStats::add(&self.stats.timed_out_commands, 1);
            self.slots[si as usize].id = req.id;
            self.done.push_back((si, IoStatus::IoErr));
            return Ok(());
        }
        let slot = &mut self.slots[si as usize];
        slot.id = req.id;
        slot.read = req.op == IoOp::Read;
        slot.pieces = 0;
        slot.failed = false;
        slot.iovs.clear();
        slot.iovs.extend_from_slice(req.iovs);
        let status = match req.op {
            IoOp::Read | IoOp::Write => {
                let aligned =
                    req.offset.is_multiple_of(bs) && req.len.is_multiple_of(bs) && req.len > 0;
                let in_range = req
                    .offset
                    .checked_add(req.len)
                    .is_some_and(|e| e <= self.info.capacity);
                if !aligned || !in_range || vfio::iovec::total_len(req.iovs) < req.len {
                    Some(IoStatus::IoErr)
                } else {
                    let write = req.op == IoOp::Write;
                    let mut at = 0;
                    while at < req.len {
                        let n = step.min(req.len - at);
                        let lba = (req.offset + at) / bs;
                        let blocks = (n / bs) as u32;
                        let mut buf = self.buffer(n as usize);
                        let (cdb, dir) = if write {
                            if !gather_at(&self.slots[si as usize].iovs, at, &mut buf) {
                                self.slots[si as usize].failed = true;
                                self.recycle(buf);
                                break;
                            }
                            (cdb::write(lba, blocks, false), Direction::Write)
                        } else {
                            (cdb::read(lba, blocks), Direction::Read)
                        };
                        self.issue(si, at, cdb, dir, buf);
                        at += n;
                    }
                    None
                }
            }
            IoOp::Flush => {
                // SBC-3 5.22: SYNCHRONIZE CACHE with LBA 0 and 0 blocks covers
                // the whole medium.
                self.issue(
                    si,
                    0,
                    cdb::synchronize_cache(0, 0),
                    Direction::None,
                    Vec::new(),
                );
                None
            }
            IoOp::Discard | IoOp::WriteZeroes { .. }
                if (req.op == IoOp::Discard && self.info.discard)
                    || (req.op != IoOp::Discard && self.info.write_zeroes) =>
            {
                // Discard: UNMAP or WRITE SAME (16) with UNMAP; write
                // zeroes: WRITE SAME (16) of a zero block (block::plan).
                let op = if req.op == IoOp::Discard {
                    BlockOp::Discard
                } else {
                    BlockOp::WriteZeroes
                };
                let r = BlockRequest {
                    op,
                    offset: req.offset,
                    len: req.len,
                };
                match block::plan(&r, &self.geo) {
                    Ok(pieces) => {
                        for p in pieces {
                            let buf = p.parameter.unwrap_or_default();
                            self.issue(si, 0, p.cdb, p.direction, buf);
                        }
                        None
                    }
                    Err(_) => Some(IoStatus::IoErr),
                }
            }
            IoOp::Discard | IoOp::WriteZeroes { .. } => Some(IoStatus::Unsupported),
        };
        match status {
            Some(st) => self.done.push_back((si, st)),
            None => self.finish_if_done(si),
        }
        Ok(())
    }

    fn commit(&mut self) {
        self.link.flush();
    }

    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.polls += 1;
        let tick = self.polls >= CLOCK_EVERY || !self.recovery.is_up();
        if tick {
            self.polls = 0;
            self.now = Instant::now();
            self.recovery.tick(&mut self.link, self.now);
        }
        if self.link.is_connected() {
            self.link.pump_io(self.now);
            if tick {
                self.link.run_timers(self.now);
            }
        }
        while let Some(e) = self.link.session.poll_event() {
            self.on_event(e);
        }
        let mut n = 0;
        while out.len() < out.capacity() {
            let Some((si, status)) = self.done.pop_front() else {
                break;
            };
            out.push(IoCompletion {
                id: self.slots[si as usize].id,
                status,
            });
            self.free.push(si);
            n += 1;
        }
        n
    }

    fn inflight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        // `poll` pumps the link whenever it is connected.
        self.link.wait_fd()
    }

    fn capacity_change(&mut self) -> Option<u64> {
        self.capacity_pending.take()
    }
}
