//! The simulated guest driver the vhost-user-blk benchmarks share: a
//! vhost-user front end (`vfio::vhost_user::mock_frontend`) that keeps
//! requests in flight on every queue, polls completions, and records latency
//! in an hdrhistogram; plus the CPU-time and process helpers around it.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use vfio::blk::{VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use vfio::vhost_user::mock_frontend::MockFrontend;
use vfio::virtq::mock::Buf;

/// Request size: 4 KiB.
pub const BS: u32 = 4096;

/// The time-stamp counter.
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC frequency, measured over 200 ms.
pub fn tsc_hz() -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(200));
    (tsc() - c0) as f64 / t0.elapsed().as_secs_f64()
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects the caller.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Lets the calling thread run on every CPU (threads it spawns inherit it).
pub fn unpin() {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects the
    // caller; CPUs the machine lacks are ignored by the kernel.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Makes the child `cmd` starts run on `cpu` only.
pub fn pin_child(cmd: &mut std::process::Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (sched_setaffinity on plain data)
    // run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}

/// Involuntary context switches of `who` so far (`RUSAGE_THREAD`, ...).
pub fn preemptions(who: i32) -> u64 {
    // SAFETY: getrusage fills the struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    ru.ru_nivcsw as u64
}

/// User + system CPU seconds of `who` (`RUSAGE_SELF`, `RUSAGE_THREAD`, ...).
pub fn rusage(who: i32) -> f64 {
    // SAFETY: getrusage fills the struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// User + system CPU seconds of process `pid`, from `/proc/PID/stat`.
pub fn proc_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm.
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf is always safe to call.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// One measured configuration.
pub struct Result {
    /// Which back end was driven.
    pub target: &'static str,
    /// Requests kept in flight per queue.
    pub qd: usize,
    /// Queues driven.
    pub queues: u16,
    /// Requests completed while measuring.
    pub ops: u64,
    /// Seconds measured.
    pub wall: f64,
    /// CPU seconds the back end used while measuring.
    pub backend_cpu: f64,
    /// Kicks the driver had to send.
    pub kicks: u64,
    /// Requests completed with a non-OK status.
    pub errors: u64,
    /// Latency of each request, ns.
    pub hist: Histogram<u64>,
    /// TSC ticks per second.
    pub hz: f64,
    /// TSC ticks the back end's polling core spent in poll rounds that
    /// found work and in rounds that did not, while measuring (`None`: the
    /// target does not say). Both busy-polling targets count them by the
    /// same rule: SPDK's reactor `busy`/`idle` (`framework_get_reactors`)
    /// and our poller's (`PollGroup::busy_idle_ticks`).
    pub busy_idle: Option<(u64, u64)>,
    /// Percent of CPU 0's (the driver's) and CPU 1's (the back end's)
    /// ticks the hypervisor stole while measuring.
    pub steal_pct: [f64; 2],
    /// Times the driver thread was preempted while measuring (involuntary
    /// context switches).
    pub driver_preempts: u64,
}

impl Result {
    /// Busy back-end cycles (TSC ticks) per request, if the target counts
    /// them: its CPU time times the busy share of its rounds, per request.
    /// The share, not the busy ticks themselves: a round the scheduler
    /// preempted counts the time it was off the CPU, and on a loaded host
    /// preemptions land in busy and idle rounds in proportion to their
    /// time, so the share stays right where busy ticks would not (on an
    /// idle host the two are the same).
    pub fn busy_per_req(&self) -> Option<f64> {
        let (busy, idle) = self.busy_idle?;
        let share = busy as f64 / (busy + idle).max(1) as f64;
        Some(self.backend_cpu * self.hz * share / self.ops.max(1) as f64)
    }
}

/// How the back end's CPU time is read.
pub enum Cpu {
    /// This process minus the driver thread.
    InProcess,
    /// Another process.
    Pid(u32),
}

/// What the simulated driver asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Workload {
    /// 4 KiB writes instead of reads.
    pub write: bool,
    /// `Some((first, count))`: each request goes to a 4 KiB block drawn
    /// uniformly from `first..first + count` (xorshift, fixed seed; the draw
    /// happens after the completion is timed). `None`: each slot rereads its
    /// own block.
    pub blocks: Option<(u64, u64)>,
}

/// Drives the vhost-user-blk back end at `sock` as a guest would, through
/// the mock front end: `qd` 4 KiB reads in flight on each of `queues`
/// queues, polled, for `secs` after a half-second warm-up.
pub fn drive(
    sock: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
    cpu: &Cpu,
    target: &'static str,
) -> std::result::Result<Result, String> {
    drive_workload(
        sock,
        qd,
        queues,
        secs,
        hz,
        cpu,
        target,
        &Workload::default(),
    )
}

/// [`drive`] with a [`Workload`].
#[allow(clippy::too_many_arguments)]
pub fn drive_workload(
    sock: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
    cpu: &Cpu,
    target: &'static str,
    work: &Workload,
) -> std::result::Result<Result, String> {
    drive_probed(sock, qd, queues, secs, hz, cpu, target, work, &mut || None)
}

/// [`drive_workload`], reading the back end's busy and idle round ticks
/// with `busy` when the measurement starts and ends ([`Result::busy_idle`]).
#[allow(clippy::too_many_arguments)]
pub fn drive_probed(
    sock: &Path,
    qd: usize,
    queues: u16,
    secs: f64,
    hz: f64,
    cpu: &Cpu,
    target: &'static str,
    work: &Workload,
    busy: &mut dyn FnMut() -> Option<(u64, u64)>,
) -> std::result::Result<Result, String> {
    let req_type = if work.write {
        VIRTIO_BLK_T_OUT
    } else {
        VIRTIO_BLK_T_IN
    };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next_sector = move |cap: u64| -> Option<u64> {
        let (first, count) = work.blocks?;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let block = first + rng % count.max(1);
        Some((block * 8).min(cap.saturating_sub(8)))
    };
    let qsize = ((qd * 3).next_power_of_two() as u16).clamp(128, 1024);
    let mem_size = 64 << 20;
    let mut fe = MockFrontend::connect(sock, mem_size, queues, qsize)?;
    let cap = fe.capacity_sectors;
    let mut start = vec![vec![0u64; qsize as usize]; queues as usize];
    let mut status = vec![vec![0u64; qsize as usize]; queues as usize];
    for q in 0..queues as usize {
        for i in 0..qd {
            let buf = fe.data_base + ((q * qd + i) as u64) * BS as u64;
            if buf + BS as u64 > mem_size {
                return Err("guest memory too small".into());
            }
            let sector = next_sector(cap).unwrap_or((i as u64 * 8 + q as u64 * 4096) % (cap - 8));
            let data = if work.write {
                Buf::r(buf, BS)
            } else {
                Buf::w(buf, BS)
            };
            let r = fe.drivers[q].request(req_type, sector, &[data], false);
            start[q][r.head as usize] = tsc();
            status[q][r.head as usize] = r.status_addr;
        }
        fe.drivers[q].q.suppress_interrupts();
        fe.kick(q);
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let ns_per_tick = 1e9 / hz;
    let warm = (0.5 * hz) as u64;
    let run = (secs * hz) as u64;
    let t0 = tsc();
    let mut measuring = false;
    let (mut ops, mut kicks, mut errors) = (0u64, 0u64, 0u64);
    let (mut m_t0, mut m_cpu0, mut m_busy0) = (0u64, 0f64, None);
    let (mut m_ticks0, mut m_preempt0) = (Vec::new(), 0u64);
    let backend_cpu = |c: &Cpu| match c {
        Cpu::InProcess => rusage(libc::RUSAGE_SELF) - rusage(libc::RUSAGE_THREAD),
        Cpu::Pid(p) => proc_cpu(*p),
    };
    let mut last_progress = tsc();
    let mut iter = 0u64;
    loop {
        let mut any = false;
        for q in 0..queues as usize {
            let d = &mut fe.drivers[q];
            let mut pushed = false;
            while let Some((id, _len)) = d.q.pop_used() {
                let now = tsc();
                let id = id as usize;
                if measuring {
                    let _ = hist.record(((now - start[q][id]) as f64 * ns_per_tick) as u64);
                    ops += 1;
                }
                let mut st = [0u8];
                let _ = fe.mem.read(status[q][id], &mut st);
                if st[0] != 0 {
                    errors += 1;
                }
                let _ = fe.mem.write(status[q][id], &[0xff]);
                if let Some(sector) = next_sector(cap) {
                    // The header (type, reserved, sector) sits just before
                    // the status byte in the simulator's layout.
                    let _ = fe.mem.write(status[q][id] - 8, &sector.to_le_bytes());
                }
                start[q][id] = tsc();
                d.q.push_avail(id as u16);
                pushed = true;
            }
            if pushed {
                any = true;
                let kick = d.q.publish_needs_kick();
                d.q.suppress_interrupts();
                if kick {
                    fe.kick(q);
                    kicks += 1;
                }
            }
        }
        iter += 1;
        if any {
            last_progress = tsc();
        }
        if iter & 0x3ff == 0 {
            let now = tsc();
            if now - last_progress > (5.0 * hz) as u64 {
                return Err(format!("{target}: no completion for 5 s"));
            }
            if !measuring && now - t0 > warm {
                // The probe first: it may take a while (an RPC), during
                // which nothing is resubmitted and the target idles.
                m_busy0 = busy();
                measuring = true;
                m_t0 = tsc();
                m_cpu0 = backend_cpu(cpu);
                m_ticks0 = crate::threads::cpu_ticks();
                m_preempt0 = preemptions(libc::RUSAGE_THREAD);
            }
            if measuring && now.saturating_sub(m_t0) > run {
                let wall = (now - m_t0) as f64 / hz;
                let bcpu = backend_cpu(cpu) - m_cpu0;
                let ticks = crate::threads::cpu_ticks();
                let steal = |c: usize| match (m_ticks0.get(c), ticks.get(c)) {
                    (Some(a), Some(b)) if b.total > a.total => {
                        b.steal.saturating_sub(a.steal) as f64 * 100.0 / (b.total - a.total) as f64
                    }
                    _ => 0.0,
                };
                let steal_pct = [steal(0), steal(1)];
                let driver_preempts = preemptions(libc::RUSAGE_THREAD) - m_preempt0;
                let busy_idle = match (m_busy0, busy()) {
                    (Some((b0, i0)), Some((b1, i1))) => {
                        Some((b1.saturating_sub(b0), i1.saturating_sub(i0)))
                    }
                    _ => None,
                };
                return Ok(Result {
                    target,
                    qd,
                    queues,
                    ops,
                    wall,
                    backend_cpu: bcpu,
                    kicks,
                    errors,
                    hist,
                    hz,
                    busy_idle,
                    steal_pct,
                    driver_preempts,
                });
            }
        }
    }
}

/// Kills and reaps a child process when dropped.
pub struct Reaper(pub Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to 10 s for a socket file to appear.
pub fn wait_socket(p: &Path) {
    let t = Instant::now();
    while !p.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
}
