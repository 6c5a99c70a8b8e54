//! The emulated accelerator: the device side, running in its own thread or
//! process, with its BARs as shared-memory files so that a host driver in
//! another process talks to it exactly as to hardware (loads and stores on
//! mapped memory, doorbells, completion polling).
//!
//! Files in the device directory: [`BAR0_FILE`] (registers and mailbox),
//! [`MEM_FILE`] (BAR2, device memory) and [`QUEUES_FILE`] (BAR4, one
//! [`regs::QUEUE_PAGE`] per work queue).
//!
//! Compute model: a compute unit processes `cu_rate` bytes per second. A VF
//! with `k` compute units and quota `q` permille gets `k * cu_rate * q / 1000`
//! bytes per second: each job is executed for real (its result is exact), and
//! its completion is posted when the VF's compute timeline reaches the job's
//! modelled end time. VFs have disjoint compute units, so one VF's load never
//! slows another: that is the isolation a real accelerator's partitioning
//! gives, and it is what the statistics registers and the benchmark show.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::command::Command;
use super::config::{ConfigModule, Effect, MailboxServer};
use super::job::{self, Job, JobStatus};
use super::regs::{self, queue, vf_reg};
use super::resources::{Physical, VfResources};
use crate::pci::mmio::{open_sized, Mmio};

/// BAR0 file name.
pub const BAR0_FILE: &str = "bar0";
/// Device memory (BAR2) file name.
pub const MEM_FILE: &str = "mem";
/// Queue pages (BAR4) file name.
pub const QUEUES_FILE: &str = "queues";
/// Fixed cost charged per job, in nanoseconds (descriptor fetch and
/// completion write on the modelled device).
pub const JOB_OVERHEAD_NS: u64 = 500;
/// How far ahead of real time a VF's compute timeline may run: jobs are
/// started up to this early so that the timeline has no gaps when the
/// service loop sleeps.
const LOOKAHEAD_NS: u64 = 2_000_000;
/// Staging buffer for job data.
const SCRATCH: usize = 256 * 1024;

/// Per-queue device state (the device never trusts the host's copies).
#[derive(Debug, Clone, Copy, Default)]
struct QueueState {
    head: u32,
    done: u32,
}

/// A job started but whose completion is not posted yet.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    queue: u32,
    done_at: u64,
}

/// Per-VF engine state.
#[derive(Debug)]
struct VfEngine {
    res: VfResources,
    busy_until: u64,
    inflight: VecDeque<InFlight>,
    rr: u32,
}

/// The device: configuration module, mailbox and job engine over its BARs.
pub struct Device {
    dir: PathBuf,
    bar0: Mmio,
    mem: Mmio,
    queues: Mmio,
    config: ConfigModule,
    qstate: Vec<QueueState>,
    vfs: Vec<Option<VfEngine>>,
    scratch: Vec<u8>,
    epoch: Instant,
}

fn scrub_queue(queues: &Mmio, q: u32, enabled: bool) {
    let base = q as usize * regs::QUEUE_PAGE;
    let _ = queues.fill(base as u64, regs::QUEUE_PAGE as u64, 0);
    queues.write32(
        base + queue::Q_STATUS,
        if enabled { queue::STATUS_ENABLED } else { 0 },
    );
}

impl Device {
    /// Creates the BAR files in `dir` (replacing any previous ones) and
    /// powers the device on.
    pub fn create(dir: &Path, phys: Physical) -> io::Result<Device> {
        phys.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        std::fs::create_dir_all(dir)?;
        let qbytes = phys.queues as usize * regs::QUEUE_PAGE;
        let mut files = Vec::new();
        for (name, len) in [
            (BAR0_FILE, regs::BAR0_SIZE as u64),
            (MEM_FILE, phys.mem_size),
            (QUEUES_FILE, qbytes as u64),
        ] {
            let p = dir.join(name);
            let _ = std::fs::remove_file(&p);
            files.push(open_sized(&p, len, true)?);
        }
        let bar0 = Mmio::map(&files[0], 0, regs::BAR0_SIZE)?;
        let mem = Mmio::map(&files[1], 0, phys.mem_size as usize)?;
        let queues = Mmio::map(&files[2], 0, qbytes)?;
        let config = ConfigModule::new(phys);
        config.power_on(&bar0);
        let mut vfs = Vec::new();
        vfs.resize_with(phys.max_vfs as usize, || None);
        Ok(Device {
            dir: dir.to_path_buf(),
            bar0,
            mem,
            queues,
            config,
            qstate: vec![QueueState::default(); phys.queues as usize],
            vfs,
            scratch: vec![0; SCRATCH],
            epoch: Instant::now(),
        })
    }

    /// The directory holding the BAR files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Marks the device ready and names its process in BAR0 (a host binds
    /// only to a ready device whose process is alive). Commands submitted
    /// before the service loop starts wait in the mailbox.
    pub fn announce(&self) {
        self.bar0.write32(regs::DEV_PID, std::process::id());
        self.bar0.write32(regs::DEV_STATUS, regs::DEV_STATUS_READY);
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Runs the service loop until `stop` is set. Marks the device ready on
    /// entry and not ready on exit.
    pub fn run(&mut self, stop: &AtomicBool) {
        self.announce();
        let mut last_work = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let hb = self.bar0.read64(regs::HEARTBEAT);
            self.bar0.write64(regs::HEARTBEAT, hb.wrapping_add(1));
            let mut worked = self.service_mailbox();
            worked |= self.service_queues();
            if worked {
                last_work = Instant::now();
                continue;
            }
            // Nothing to do right now. Sleep until the next modelled
            // completion is due (never longer than 1 ms, well inside the
            // 2 ms lookahead, so compute timelines have no gaps); when fully
            // idle, poll the doorbells every 100 us, then every 1 ms.
            let next_due = self
                .vfs
                .iter()
                .flatten()
                .filter_map(|v| v.inflight.front())
                .map(|f| f.done_at)
                .min();
            let idle = last_work.elapsed();
            match next_due {
                Some(due) => {
                    let wait = Duration::from_nanos(due.saturating_sub(self.now()));
                    if wait < Duration::from_micros(200) {
                        std::thread::yield_now();
                    } else {
                        // Wake a little early: sleeps overshoot.
                        std::thread::sleep(
                            wait.min(Duration::from_millis(1)) - Duration::from_micros(100),
                        );
                    }
                }
                None if idle < Duration::from_millis(2) => std::thread::yield_now(),
                None if idle < Duration::from_millis(100) => {
                    std::thread::sleep(Duration::from_micros(100))
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        self.bar0.write32(regs::DEV_STATUS, 0);
    }

    /// Serves at most one management command; returns whether it did.
    pub fn service_mailbox(&mut self) -> bool {
        let Some(f) = MailboxServer::fetch(&self.bar0) else {
            return false;
        };
        let res = Command::parse(f.opcode, &f.args)
            .and_then(|cmd| self.config.execute(&self.bar0, &cmd))
            .map(|(words, effect)| {
                self.apply(effect);
                match effect {
                    // The reset cleared the statistics: report them as they are now.
                    Effect::Reset(vf, _) => self
                        .config
                        .vf_info(&self.bar0, vf)
                        .map_or(words, |i| i.to_words()),
                    _ => words,
                }
            });
        MailboxServer::complete(&self.bar0, f.seq, res);
        true
    }

    fn scrub_vf(&mut self, vf: u32, r: &VfResources, enabled: bool) {
        let _ = self.mem.fill(r.mem.base, r.mem.len, 0);
        for v in r.vectors.base..r.vectors.base + r.vectors.len {
            self.bar0.write32(regs::irq_count(v as usize), 0);
        }
        for q in r.queues.base..r.queues.base + r.queues.len {
            scrub_queue(&self.queues, q as u32, enabled);
            self.qstate[q as usize] = QueueState::default();
        }
        for reg in [
            regs::VF_STAT_JOBS,
            regs::VF_STAT_BYTES,
            regs::VF_STAT_FAILED,
            regs::VF_STAT_BUSY_NS,
        ] {
            self.bar0.write64(vf_reg(vf as usize, reg), 0);
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Created(vf, r) => {
                self.scrub_vf(vf, &r, true);
                let cap = (r.queues.len as usize) * queue::RING_SIZE as usize;
                self.vfs[vf as usize] = Some(VfEngine {
                    res: r,
                    busy_until: 0,
                    inflight: VecDeque::with_capacity(cap),
                    rr: 0,
                });
            }
            Effect::Destroyed(vf, r) => {
                self.vfs[vf as usize] = None;
                self.scrub_vf(vf, &r, false);
            }
            Effect::Reset(vf, r) => {
                if let Some(e) = self.vfs[vf as usize].as_mut() {
                    e.inflight.clear();
                    e.res = r;
                }
                self.scrub_vf(vf, &r, true);
            }
            Effect::Quota(vf, q) => {
                if let Some(e) = self.vfs[vf as usize].as_mut() {
                    e.res.quota = q;
                }
            }
        }
    }

    /// Cost of a job in nanoseconds of the VF's compute timeline.
    fn cost_ns(cu_rate: u64, r: &VfResources, bytes: u64) -> u64 {
        let rate = u128::from(cu_rate) * u128::from(r.cu_mask.count_ones()) * u128::from(r.quota);
        let ns = u128::from(bytes) * 1_000_000_000u128 * 1000 / rate.max(1);
        JOB_OVERHEAD_NS + ns.min(u128::from(u64::MAX / 2)) as u64
    }

    /// Starts ready jobs and posts due completions on every VF's queues.
    fn service_queues(&mut self) -> bool {
        let now = self.now();
        let cu_rate = self.config.partition().physical().cu_rate;
        let mut worked = false;
        for vf in 0..self.vfs.len() {
            let Some(e) = self.vfs[vf].as_mut() else {
                continue;
            };
            let win = e.res.mem;
            let qbase = e.res.queues.base as u32;
            let qn = e.res.queues.len as u32;
            // Start jobs, round-robin over the VF's queues, while the
            // compute timeline is within the lookahead.
            let mut idle_rounds = 0;
            while e.busy_until <= now + LOOKAHEAD_NS && idle_rounds < qn {
                let q = qbase + e.rr % qn;
                e.rr = e.rr.wrapping_add(1);
                let page = q as usize * regs::QUEUE_PAGE;
                let st = &mut self.qstate[q as usize];
                let tail = self.queues.read32(page + queue::SQ_TAIL);
                let posted = tail.wrapping_sub(st.done);
                if posted > queue::RING_SIZE {
                    // Impossible doorbell value: flag it and take nothing.
                    let s = self.queues.read32(page + queue::Q_STATUS);
                    self.queues
                        .write32(page + queue::Q_STATUS, s | queue::STATUS_ERROR);
                    idle_rounds += 1;
                    continue;
                }
                if st.head == tail {
                    idle_rounds += 1;
                    continue;
                }
                idle_rounds = 0;
                let d = page + queue::desc_offset(st.head);
                let jb = Job {
                    opcode: self.queues.read32(d + queue::desc::OPCODE),
                    src: self.queues.read64(d + queue::desc::SRC),
                    dst: self.queues.read64(d + queue::desc::DST),
                    len: self.queues.read64(d + queue::desc::LEN),
                    arg: self.queues.read64(d + queue::desc::ARG),
                };
                let (status, result) = job::execute(&self.mem, &win, &jb, &mut self.scratch);
                self.queues.write64(d + queue::desc::RESULT, result);
                self.queues.write32(d + queue::desc::STATUS, status as u32);
                let charged = if status == JobStatus::Ok {
                    jb.work_bytes()
                } else {
                    0
                };
                let cost = Self::cost_ns(cu_rate, &e.res, charged);
                e.busy_until = e.busy_until.max(now) + cost;
                e.inflight.push_back(InFlight {
                    queue: q,
                    done_at: e.busy_until,
                });
                st.head = st.head.wrapping_add(1);
                self.queues.write32(page + queue::SQ_HEAD, st.head);
                let s = |r| vf_reg(vf, r);
                let b = &self.bar0;
                if status == JobStatus::Ok {
                    b.write64(s(regs::VF_STAT_JOBS), b.read64(s(regs::VF_STAT_JOBS)) + 1);
                    b.write64(
                        s(regs::VF_STAT_BYTES),
                        b.read64(s(regs::VF_STAT_BYTES)) + charged,
                    );
                } else {
                    b.write64(
                        s(regs::VF_STAT_FAILED),
                        b.read64(s(regs::VF_STAT_FAILED)) + 1,
                    );
                }
                b.write64(
                    s(regs::VF_STAT_BUSY_NS),
                    b.read64(s(regs::VF_STAT_BUSY_NS)) + cost,
                );
                worked = true;
            }
            // Post completions whose modelled end time has passed, and
            // raise the queue's interrupt vector.
            let (vbase, vcount) = (e.res.vectors.base as usize, e.res.vectors.len.max(1) as u32);
            let mut raised = 0u64;
            while let Some(f) = e.inflight.front() {
                if f.done_at > now {
                    break;
                }
                let st = &mut self.qstate[f.queue as usize];
                st.done = st.done.wrapping_add(1);
                self.queues.write32(
                    f.queue as usize * regs::QUEUE_PAGE + queue::CQ_DONE,
                    st.done,
                );
                let v = ((f.queue - qbase) % vcount) as usize;
                let c = regs::irq_count(vbase + v);
                self.bar0.write32(c, self.bar0.read32(c).wrapping_add(1));
                raised |= 1 << (v % 64);
                e.inflight.pop_front();
                worked = true;
            }
            while raised != 0 {
                let v = raised.trailing_zeros() as usize;
                raised &= raised - 1;
                // Vectors past 64 share wake-ups with v % 64: wake them all.
                let mut w = v;
                while w < vcount as usize {
                    let _ = self.bar0.futex_wake(regs::irq_count(vbase + w) as u64);
                    w += 64;
                }
            }
        }
        worked
    }
}

/// An emulated device running on a thread of this process; stopped and
/// joined on drop (the BAR files stay until the directory is removed).
pub struct DeviceThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl DeviceThread {
    /// Creates the device's BAR files in `dir` and starts serving them.
    pub fn spawn(dir: &Path, phys: Physical) -> io::Result<DeviceThread> {
        let mut dev = Device::create(dir, phys)?;
        dev.announce();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("accel-device".into())
            .spawn(move || dev.run(&s))?;
        Ok(DeviceThread {
            stop,
            thread: Some(thread),
            dir: dir.to_path_buf(),
        })
    }

    /// The directory holding the BAR files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs SIGINT and SIGTERM handlers that set the returned flag, for
/// running [`Device::run`] in the foreground of a process.
pub fn stop_on_signals() -> io::Result<&'static AtomicBool> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the function pointer lives forever.
        let r = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if r == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}
