//! The host driver: issues management commands through the BAR0 mailbox and
//! exposes the resulting virtual functions (memory window and work queues).
//!
//! The driver talks to BARs through a [`BarMapper`], so the same code drives
//! the emulated device (shared-memory files) and a real device (BARs mapped
//! through VFIO).
//!
//! Mailbox protocol (one command at a time per device, across threads and
//! processes):
//! 1. take ownership: compare-and-swap `MBOX_LOCK` from 0 to this process's
//!    id (a lock held by a process that no longer exists is taken over);
//! 2. write `MBOX_OPCODE` and the 16 `MBOX_ARG` words;
//! 3. write `MBOX_SEQ_DONE + 1` to `MBOX_DOORBELL`;
//! 4. poll `MBOX_SEQ_DONE` until it equals that sequence number, then read
//!    `MBOX_COMPLETION` and, on success, the `MBOX_RESULT` words;
//! 5. release `MBOX_LOCK`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::command::{Caps, Command, Completion, VfInfo, VfRequest};
use super::device::{BAR0_FILE, MEM_FILE, QUEUES_FILE};
use super::job::{Job, JobStatus};
use super::regs::{self, queue, MBOX_WORDS};
use crate::pci::mmio::{open_sized, Mmio};

/// Errors of the host driver.
#[derive(Debug)]
pub enum AccelError {
    /// An operating-system error (mapping, opening BAR files, VFIO).
    Io(io::Error),
    /// No device answers: the message says why and how to start one.
    NotRunning(String),
    /// The device rejected the command.
    Command(Completion),
    /// The device wrote a completion code this driver does not know.
    UnknownCompletion(u32),
    /// The device did not complete the command in time.
    Timeout,
    /// The device returned a configuration that does not fit its own capabilities.
    BadDeviceState(String),
    /// A job failed.
    Job(JobStatus),
    /// The device wrote an unknown job status.
    UnknownJobStatus(u32),
    /// A queue number outside the VF's queues.
    NoSuchQueue(u32),
}

impl std::fmt::Display for AccelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccelError::Io(e) => write!(f, "{e}"),
            AccelError::NotRunning(m) => f.write_str(m),
            AccelError::Command(c) => write!(f, "device rejected the command: {c}"),
            AccelError::UnknownCompletion(c) => {
                write!(f, "device returned unknown completion code {c}")
            }
            AccelError::Timeout => f.write_str("device did not complete the command within 5 s"),
            AccelError::BadDeviceState(m) => write!(f, "inconsistent device state: {m}"),
            AccelError::Job(s) => write!(f, "job failed: {s}"),
            AccelError::UnknownJobStatus(s) => write!(f, "device returned unknown job status {s}"),
            AccelError::NoSuchQueue(q) => write!(f, "no queue {q} on this VF"),
        }
    }
}

impl std::error::Error for AccelError {}

impl From<io::Error> for AccelError {
    fn from(e: io::Error) -> Self {
        AccelError::Io(e)
    }
}

/// Which BAR of the physical function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// Registers and mailbox.
    Regs,
    /// Device memory.
    Mem,
    /// Work-queue pages.
    Queues,
}

impl Bar {
    /// PCI BAR index of this BAR.
    pub fn index(self) -> u32 {
        match self {
            Bar::Regs => 0,
            Bar::Mem => 2,
            Bar::Queues => 4,
        }
    }
}

/// Maps ranges of the device's BARs.
pub trait BarMapper: Send + Sync {
    /// Maps `len` bytes of `bar` at `offset` (page-aligned).
    fn map(&self, bar: Bar, offset: u64, len: usize) -> io::Result<Mmio>;
}

/// The emulated device's BAR files in a directory.
#[derive(Debug)]
pub struct FileBars {
    dir: PathBuf,
}

impl FileBars {
    /// BAR files in `dir`.
    pub fn new(dir: &Path) -> Self {
        FileBars {
            dir: dir.to_path_buf(),
        }
    }
}

impl BarMapper for FileBars {
    fn map(&self, bar: Bar, offset: u64, len: usize) -> io::Result<Mmio> {
        let name = match bar {
            Bar::Regs => BAR0_FILE,
            Bar::Mem => MEM_FILE,
            Bar::Queues => QUEUES_FILE,
        };
        let end = offset
            .checked_add(len as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
        let f = open_sized(&self.dir.join(name), end, false)?;
        Mmio::map(&f, offset, len)
    }
}

/// Default directory of the emulated device's BAR files.
pub fn default_dir() -> PathBuf {
    if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm/vswitch-accel")
    } else {
        PathBuf::from("/run/vswitch-accel")
    }
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence; no signal is sent.
    pid != 0
        && (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// A driver bound to one accelerator.
pub struct Accel {
    bars: Box<dyn BarMapper>,
    bar0: Mmio,
    caps: Caps,
    emulated: bool,
}

const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

impl Accel {
    /// Binds to the emulated device whose BAR files are in `dir`; fails with
    /// [`AccelError::NotRunning`] (saying how to start one) if none runs.
    pub fn open_emulated(dir: &Path) -> Result<Accel, AccelError> {
        let how = format!(
            "start one with `vswitch accel device --dir {}` (it runs in the foreground; add `&` to background it)",
            dir.display()
        );
        let bars = FileBars::new(dir);
        let bar0 = bars.map(Bar::Regs, 0, regs::BAR0_SIZE).map_err(|e| {
            AccelError::NotRunning(format!(
                "no emulated accelerator at {} ({e}); {how}",
                dir.display()
            ))
        })?;
        if bar0.read32(regs::ID) != regs::DEVICE_ID
            || bar0.read32(regs::DEV_STATUS) & regs::DEV_STATUS_READY == 0
            || !pid_alive(bar0.read32(regs::DEV_PID))
        {
            return Err(AccelError::NotRunning(format!(
                "the emulated accelerator at {} is not running; {how}",
                dir.display()
            )));
        }
        Self::with_bar0(Box::new(bars), bar0, true)
    }

    /// Binds to a device through any BAR mapper (for example VFIO).
    pub fn open(bars: Box<dyn BarMapper>) -> Result<Accel, AccelError> {
        let bar0 = bars.map(Bar::Regs, 0, regs::BAR0_SIZE)?;
        if bar0.read32(regs::ID) != regs::DEVICE_ID {
            return Err(AccelError::BadDeviceState(format!(
                "identification register is {:#010x}, expected {:#010x}",
                bar0.read32(regs::ID),
                regs::DEVICE_ID
            )));
        }
        Self::with_bar0(bars, bar0, false)
    }

    fn with_bar0(
        bars: Box<dyn BarMapper>,
        bar0: Mmio,
        emulated: bool,
    ) -> Result<Accel, AccelError> {
        let mut a = Accel {
            bars,
            bar0,
            caps: Caps::default(),
            emulated,
        };
        a.caps = a.query_caps()?;
        Ok(a)
    }

    /// Capabilities read at bind time.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The BAR0 mapping (for tests and diagnostics).
    pub fn bar0(&self) -> &Mmio {
        &self.bar0
    }

    fn lock(&self) -> Result<u32, AccelError> {
        let me = std::process::id();
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut spins = 0u32;
        loop {
            if self
                .bar0
                .try_cas32(regs::MBOX_LOCK as u64, 0, me)
                .map_err(io_range)?
            {
                return Ok(me);
            }
            let holder = self.bar0.read32(regs::MBOX_LOCK);
            if self.emulated && holder != 0 && holder != me && !pid_alive(holder) {
                // The holder died mid-command: take its lock over.
                if self
                    .bar0
                    .try_cas32(regs::MBOX_LOCK as u64, holder, me)
                    .map_err(io_range)?
                {
                    return Ok(me);
                }
            }
            let now = Instant::now();
            if now > deadline {
                return Err(AccelError::Timeout);
            }
            spins += 1;
            if spins < 64 || deadline - now > COMMAND_TIMEOUT - Duration::from_millis(2) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    /// Issues one management command and returns its result words.
    pub fn command(&self, cmd: &Command) -> Result<[u64; MBOX_WORDS], AccelError> {
        let (op, args) = cmd.emit();
        self.raw_command(op, &args)
    }

    /// Issues raw mailbox contents (any opcode, any words): the device must
    /// answer malformed contents with an error code.
    pub fn raw_command(
        &self,
        op: u32,
        args: &[u64; MBOX_WORDS],
    ) -> Result<[u64; MBOX_WORDS], AccelError> {
        self.lock()?;
        let r = self.submit_locked(op, args);
        self.bar0.write32(regs::MBOX_LOCK, 0);
        r
    }

    fn submit_locked(
        &self,
        op: u32,
        args: &[u64; MBOX_WORDS],
    ) -> Result<[u64; MBOX_WORDS], AccelError> {
        let b = &self.bar0;
        b.write32(regs::MBOX_OPCODE, op);
        for (i, a) in args.iter().enumerate() {
            b.write64(regs::MBOX_ARG + 8 * i, *a);
        }
        let seq = b.read32(regs::MBOX_SEQ_DONE).wrapping_add(1);
        b.write32(regs::MBOX_DOORBELL, seq);
        // Completion polling: spin briefly, then yield the CPU (the device
        // may share it) for up to 2 ms, then back off to sleeping.
        let start = Instant::now();
        let mut spins = 0u32;
        while b.read32(regs::MBOX_SEQ_DONE) != seq {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
                continue;
            }
            let waited = start.elapsed();
            if waited > COMMAND_TIMEOUT {
                return Err(AccelError::Timeout);
            }
            if waited < Duration::from_millis(2) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let code = b.read32(regs::MBOX_COMPLETION);
        match Completion::from_u32(code) {
            Some(Completion::Ok) => {
                let mut r = [0u64; MBOX_WORDS];
                for (i, w) in r.iter_mut().enumerate() {
                    *w = b.read64(regs::MBOX_RESULT + 8 * i);
                }
                Ok(r)
            }
            Some(c) => Err(AccelError::Command(c)),
            None => Err(AccelError::UnknownCompletion(code)),
        }
    }

    /// QUERY_CAPS.
    pub fn query_caps(&self) -> Result<Caps, AccelError> {
        Ok(Caps::from_words(&self.command(&Command::QueryCaps)?))
    }

    /// CREATE_VF.
    pub fn create_vf(&self, req: &VfRequest) -> Result<VfInfo, AccelError> {
        Ok(VfInfo::from_words(&self.command(&Command::CreateVf(*req))?))
    }

    /// DESTROY_VF.
    pub fn destroy_vf(&self, vf: u32) -> Result<(), AccelError> {
        self.command(&Command::DestroyVf { vf }).map(|_| ())
    }

    /// SET_QUOTA.
    pub fn set_quota(&self, vf: u32, permille: u32) -> Result<(), AccelError> {
        self.command(&Command::SetQuota { vf, permille })
            .map(|_| ())
    }

    /// QUERY_VF.
    pub fn query_vf(&self, vf: u32) -> Result<VfInfo, AccelError> {
        Ok(VfInfo::from_words(&self.command(&Command::QueryVf { vf })?))
    }

    /// RESET_VF.
    pub fn reset_vf(&self, vf: u32) -> Result<VfInfo, AccelError> {
        Ok(VfInfo::from_words(&self.command(&Command::ResetVf { vf })?))
    }

    /// All existing VFs.
    pub fn list_vfs(&self) -> Result<Vec<VfInfo>, AccelError> {
        let mut out = Vec::new();
        for vf in 0..self.caps.max_vfs {
            match self.query_vf(vf) {
                Ok(i) => out.push(i),
                Err(AccelError::Command(Completion::NoSuchVf)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Maps a VF's memory window and work queues.
    pub fn open_vf(&self, vf: u32) -> Result<VfHandle, AccelError> {
        let info = self.query_vf(vf)?;
        let c = &self.caps;
        let mem_ok = info
            .mem_base
            .checked_add(info.mem_size)
            .is_some_and(|e| e <= c.mem_size);
        let q_ok = info
            .queue_base
            .checked_add(info.queue_count)
            .is_some_and(|e| e <= c.queues);
        if !mem_ok || !q_ok || info.mem_size == 0 || info.queue_count == 0 {
            return Err(AccelError::BadDeviceState(format!(
                "vf{vf} resources outside the device: {info:?}"
            )));
        }
        let v_ok = info.vector_count > 0
            && (info.vector_base as usize)
                .checked_add(info.vector_count as usize)
                .is_some_and(|e| e <= regs::MAX_VECTORS);
        if !v_ok {
            return Err(AccelError::BadDeviceState(format!(
                "vf{vf} interrupt vectors out of range: {info:?}"
            )));
        }
        let mem = self
            .bars
            .map(Bar::Mem, info.mem_base, info.mem_size as usize)?;
        let irq = self.bars.map(Bar::Regs, regs::IRQ_BASE as u64, 4096)?;
        let mut queues = Vec::with_capacity(info.queue_count as usize);
        for i in 0..info.queue_count {
            let q = info.queue_base + i;
            let page = self.bars.map(
                Bar::Queues,
                u64::from(q) * regs::QUEUE_PAGE as u64,
                regs::QUEUE_PAGE,
            )?;
            let tail = page.read32(queue::SQ_TAIL);
            let done = page.read32(queue::CQ_DONE);
            let vector = info.vector_base + i % info.vector_count;
            let irq_off = regs::irq_count(vector as usize) - regs::IRQ_BASE;
            queues.push(QueueHandle {
                page,
                tail,
                done,
                irq_off,
            });
        }
        Ok(VfHandle {
            info,
            mem,
            queues,
            irq,
        })
    }
}

fn io_range(e: crate::pci::mmio::OutOfRange) -> AccelError {
    AccelError::Io(io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// One work queue of a VF, as the host sees it.
pub struct QueueHandle {
    page: Mmio,
    tail: u32,
    done: u32,
    /// Offset of this queue's interrupt counter in the VF's IRQ page.
    irq_off: usize,
}

/// Outcome of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobResult {
    /// Status the device wrote.
    pub status: JobStatus,
    /// Result the device wrote (valid when `status` is `Ok`).
    pub result: u64,
}

impl QueueHandle {
    /// Descriptors posted and not yet completed.
    pub fn outstanding(&self) -> u32 {
        self.tail.wrapping_sub(self.done)
    }

    /// Posts `job` and rings the doorbell; returns its index, or `None` when
    /// the ring is full.
    pub fn submit(&mut self, job: &Job) -> Option<u32> {
        if self.outstanding() >= queue::RING_SIZE {
            return None;
        }
        let idx = self.tail;
        let d = queue::desc_offset(idx);
        let p = &self.page;
        p.write32(d + queue::desc::OPCODE, job.opcode);
        p.write32(d + queue::desc::STATUS, u32::MAX);
        p.write64(d + queue::desc::SRC, job.src);
        p.write64(d + queue::desc::DST, job.dst);
        p.write64(d + queue::desc::LEN, job.len);
        p.write64(d + queue::desc::ARG, job.arg);
        p.write64(d + queue::desc::RESULT, 0);
        self.tail = idx.wrapping_add(1);
        p.write32(queue::SQ_TAIL, self.tail);
        Some(idx)
    }

    /// Reaps completed jobs in order, calling `f` for each; returns how many.
    pub fn poll(&mut self, mut f: impl FnMut(u32, JobResult)) -> u32 {
        let done = self.page.read32(queue::CQ_DONE);
        let n = done.wrapping_sub(self.done).min(self.outstanding());
        for _ in 0..n {
            let d = queue::desc_offset(self.done);
            let raw = self.page.read32(d + queue::desc::STATUS);
            let result = self.page.read64(d + queue::desc::RESULT);
            let status = JobStatus::from_u32(raw).unwrap_or(JobStatus::BadOpcode);
            f(self.done, JobResult { status, result });
            self.done = self.done.wrapping_add(1);
        }
        n
    }

    /// Raw access to the queue page (tests write malformed doorbells).
    pub fn page(&self) -> &Mmio {
        &self.page
    }
}

/// A virtual function mapped for use.
pub struct VfHandle {
    info: VfInfo,
    mem: Mmio,
    queues: Vec<QueueHandle>,
    /// The BAR0 page of interrupt counters.
    irq: Mmio,
}

impl VfHandle {
    /// Configuration at open time.
    pub fn info(&self) -> &VfInfo {
        &self.info
    }

    /// The VF's memory window.
    pub fn mem(&self) -> &Mmio {
        &self.mem
    }

    /// Queue `q` (0-based within the VF).
    pub fn queue(&mut self, q: u32) -> Result<&mut QueueHandle, AccelError> {
        self.queues
            .get_mut(q as usize)
            .ok_or(AccelError::NoSuchQueue(q))
    }

    /// Number of queues.
    pub fn queue_count(&self) -> u32 {
        self.queues.len() as u32
    }

    /// Runs one job on queue `q` and waits for its completion.
    pub fn run(&mut self, q: u32, job: &Job) -> Result<u64, AccelError> {
        let r = self.run_raw(q, job)?;
        match r.status {
            JobStatus::Ok => Ok(r.result),
            s => Err(AccelError::Job(s)),
        }
    }

    /// Interrupt count of queue `q`'s vector (pass it to
    /// [`VfHandle::wait_irq`] after polling to sleep without missing a
    /// completion).
    pub fn irq_count(&self, q: u32) -> Result<u32, AccelError> {
        let qh = self
            .queues
            .get(q as usize)
            .ok_or(AccelError::NoSuchQueue(q))?;
        Ok(self.irq.read32(qh.irq_off))
    }

    /// Sleeps until queue `q`'s vector fires after `seen` (a value from
    /// [`VfHandle::irq_count`]) or `timeout` passes.
    pub fn wait_irq(&self, q: u32, seen: u32, timeout: Duration) -> Result<(), AccelError> {
        let qh = self
            .queues
            .get(q as usize)
            .ok_or(AccelError::NoSuchQueue(q))?;
        self.irq
            .futex_wait(qh.irq_off as u64, seen, timeout)
            .map_err(io_range)
    }

    /// Runs one job and returns its status and result, failed or not.
    /// Sleeps on the completion interrupt rather than spinning.
    pub fn run_raw(&mut self, q: u32, job: &Job) -> Result<JobResult, AccelError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let qh = self
            .queues
            .get_mut(q as usize)
            .ok_or(AccelError::NoSuchQueue(q))?;
        let irq = &self.irq;
        let off = qh.irq_off;
        let wait = |seen: u32| -> Result<(), AccelError> {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or(AccelError::Timeout)?;
            irq.futex_wait(off as u64, seen, left.min(Duration::from_millis(100)))
                .map_err(io_range)
        };
        loop {
            let seen = irq.read32(off);
            if qh.submit(job).is_some() {
                break;
            }
            qh.poll(|_, _| {});
            wait(seen)?;
        }
        let mut out = None;
        loop {
            // Read the counter before polling: a completion posted after the
            // poll changes it, so the wait returns at once.
            let seen = irq.read32(off);
            qh.poll(|_, r| out = Some(r));
            if qh.outstanding() == 0 {
                break;
            }
            wait(seen)?;
        }
        out.ok_or(AccelError::Timeout)
    }
}
