//! Where a benchmark's threads run, read back from `/proc`.
//!
//! A benchmark on two CPUs pins itself to the guests' CPU before it starts
//! anything ([`pin_self`]), so every process it starts, and every thread
//! of those, inherits that CPU; only the polling thread of the program
//! measured moves itself to the polling CPU (its EAL lcore, OVS's
//! `pmd-cpu-mask`). [`Placement`] reads back, over a measured window, what
//! else could run on the polling CPU and what it cost: the threads of the
//! program allowed there besides the poller, the CPU's ticks the poller did
//! not use, the poller's preemptions and the hypervisor's steal.

use std::path::Path;

/// Pins the calling thread to `cpu`; threads and processes it starts
/// afterwards inherit the mask.
pub fn pin_self(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data, zeroed is an empty set; CPU_SET
    // writes inside it; sched_setaffinity(0) affects the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Median one-way time (ns) for a cache line to move between CPUs `a` and
/// `b`: a thread on `b` answers each value the calling thread (moved to
/// `a`, then back to `home`) writes, `trips` round trips in batches of
/// 256. On a VM it tells where the hypervisor placed the two vCPUs (one
/// core complex or not), which bounds any path that moves frames and ring
/// lines between them. Run it while neither CPU is polling.
pub fn cross_core_ns(a: usize, b: usize, home: usize, trips: u32) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let line = std::sync::Arc::new(AtomicU64::new(0));
    let peer = std::sync::Arc::clone(&line);
    let last = 2 * trips as u64;
    let answer = std::thread::spawn(move || {
        let _ = pin_self(b);
        let mut want = 1;
        while want < last {
            if peer.load(Ordering::Acquire) == want {
                peer.store(want + 1, Ordering::Release);
                want += 2;
            }
        }
    });
    let _ = pin_self(a);
    let (mut v, mut batches) = (0u64, Vec::new());
    while v < last {
        let n = (last - v).min(512) / 2;
        let t = std::time::Instant::now();
        for _ in 0..n {
            line.store(v + 1, Ordering::Release);
            while line.load(Ordering::Acquire) != v + 2 {}
            v += 2;
        }
        batches.push(t.elapsed().as_nanos() as f64 / n as f64 / 2.0);
    }
    let _ = answer.join();
    let _ = pin_self(home);
    crate::report::median(&batches)
}

/// One thread of a process, from `/proc/PID/task/TID/{stat,status}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    /// Thread id.
    pub tid: u32,
    /// Its name (`comm`), e.g. `lcore-worker-1` or `pmd-c01/id:8`.
    pub name: String,
    /// The CPU it last ran on (`stat` field 39).
    pub last_cpu: usize,
    /// The CPUs it may run on (`Cpus_allowed_list`).
    pub allowed: Vec<usize>,
    /// User + system ticks (USER_HZ) it has used (`stat` fields 14, 15).
    pub ticks: u64,
    /// Times it was preempted (`nonvoluntary_ctxt_switches`).
    pub preempted: u64,
}

/// Every thread of process `pid` (empty when it is gone).
pub fn threads(pid: u32) -> Vec<Thread> {
    let dir = format!("/proc/{pid}/task");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<Thread> = rd
        .flatten()
        .filter_map(|e| read_thread(&e.path()))
        .collect();
    v.sort_by_key(|t| t.tid);
    v
}

fn read_thread(task: &Path) -> Option<Thread> {
    let tid = task.file_name()?.to_str()?.parse().ok()?;
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    let status = std::fs::read_to_string(task.join("status")).ok()?;
    let (name, last_cpu, ticks) = parse_stat(&stat)?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    Some(Thread {
        tid,
        name,
        last_cpu,
        allowed: parse_cpu_list(&field("Cpus_allowed_list:")),
        ticks,
        preempted: field("nonvoluntary_ctxt_switches:").parse().unwrap_or(0),
    })
}

/// Name, last CPU (field 39) and user + system ticks (fields 14 and 15)
/// of a `/proc/.../stat` line (the name, field 2, may hold spaces and
/// parentheses: the fields after it follow its last `)`).
fn parse_stat(s: &str) -> Option<(String, usize, u64)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let name = s.get(open + 1..close)?.to_string();
    // Field 3 is the first after the name.
    let rest: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let f = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((name, f(39)? as usize, f(14)? + f(15)?))
}

/// A kernel CPU list (`0-2,5`) as CPU numbers.
fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
            v.extend(a..=b);
        }
    }
    v
}

/// Ticks of each CPU from `/proc/stat`: busy (user, nice, system, irq,
/// softirq), steal and all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTicks {
    /// Ticks something of this machine ran.
    pub busy: u64,
    /// Ticks the hypervisor ran something else on this vCPU.
    pub steal: u64,
    /// Every tick counted (user to steal).
    pub total: u64,
}

/// [`CpuTicks`] of every CPU, by CPU number.
pub fn cpu_ticks() -> Vec<CpuTicks> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

fn parse_proc_stat(s: &str) -> Vec<CpuTicks> {
    s.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            let at = |i: usize| f.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal
            CpuTicks {
                busy: at(0) + at(1) + at(2) + at(5) + at(6),
                steal: at(7),
                total: (0..8).map(at).sum(),
            }
        })
        .collect()
}

/// A snapshot of the polling CPU and the program's threads at one end of a
/// measured window.
#[derive(Debug, Clone)]
pub struct Snapshot {
    cpus: Vec<CpuTicks>,
    threads: Vec<Thread>,
}

impl Snapshot {
    /// Now, for the process `pid`.
    pub fn take(pid: u32) -> Snapshot {
        Snapshot {
            cpus: cpu_ticks(),
            threads: threads(pid),
        }
    }
}

/// What ran where over a window (two [`Snapshot`]s of one process).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Placement {
    /// The polling thread: the program's busiest thread allowed only on the
    /// polling CPU.
    pub poller: Option<String>,
    /// Other threads of the program allowed on the polling CPU (empty when
    /// pinning worked), as `name(tid)`.
    pub others_on_poll_cpu: Vec<String>,
    /// Share (%) of the polling CPU's ticks that the poller did not use but
    /// something of this machine did (other programs, kernel work).
    pub poll_cpu_other_pct: f64,
    /// Times the poller was preempted.
    pub poller_preempted: u64,
    /// Share (%) of each CPU's ticks stolen by the hypervisor.
    pub steal_pct: Vec<f64>,
}

impl Placement {
    /// Placement between `a` and `b` with the polling CPU `poll_cpu`.
    pub fn between(a: &Snapshot, b: &Snapshot, poll_cpu: usize) -> Placement {
        let poller = b
            .threads
            .iter()
            .filter(|t| t.allowed == [poll_cpu])
            .max_by_key(|t| t.ticks);
        let others = b
            .threads
            .iter()
            .filter(|t| Some(t.tid) != poller.map(|p| p.tid) && t.allowed.contains(&poll_cpu))
            .map(|t| format!("{}({})", t.name, t.tid))
            .collect();
        let before = |t: &Thread| a.threads.iter().find(|x| x.tid == t.tid);
        let poller_ticks = poller.map_or(0, |p| p.ticks - before(p).map_or(0, |x| x.ticks));
        let delta = |cpu: usize| -> Option<(CpuTicks, CpuTicks)> {
            Some((*a.cpus.get(cpu)?, *b.cpus.get(cpu)?))
        };
        let pct = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 * 100.0 / whole as f64
            }
        };
        let poll_cpu_other_pct = delta(poll_cpu).map_or(0.0, |(x, y)| {
            let busy = y.busy.saturating_sub(x.busy);
            pct(
                busy.saturating_sub(poller_ticks),
                y.total.saturating_sub(x.total),
            )
        });
        Placement {
            poller: poller.map(|p| format!("{}({})", p.name, p.tid)),
            others_on_poll_cpu: others,
            poll_cpu_other_pct,
            poller_preempted: poller.map_or(0, |p| {
                p.preempted - before(p).map_or(p.preempted, |x| x.preempted)
            }),
            steal_pct: (0..b.cpus.len())
                .map(|c| {
                    delta(c).map_or(0.0, |(x, y)| {
                        pct(
                            y.steal.saturating_sub(x.steal),
                            y.total.saturating_sub(x.total),
                        )
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_names() {
        // Fields 14/15 = 7/3, field 39 = 1.
        let mut f: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        f[14 - 3] = "7".into();
        f[15 - 3] = "3".into();
        f[39 - 3] = "1".into();
        let line = format!("42 (pmd-c01/id:8) x) {}", f.join(" "));
        assert_eq!(parse_stat(&line), Some(("pmd-c01/id:8) x".into(), 1, 10)));
        assert_eq!(parse_stat("42 (short) S 1 2"), None);
        assert_eq!(parse_cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("1\n"), vec![1]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn reads_its_own_threads_and_the_cpus() {
        let me = threads(std::process::id());
        assert!(!me.is_empty());
        assert!(me.iter().all(|t| !t.allowed.is_empty()));
        let cpus = cpu_ticks();
        assert!(!cpus.is_empty() && cpus[0].total >= cpus[0].busy);
        let t = parse_proc_stat("cpu  9 9 9 9\ncpu0 1 2 3 100 5 6 7 8 0 0\nintr 1\n");
        assert_eq!(
            t,
            vec![CpuTicks {
                busy: 1 + 2 + 3 + 6 + 7,
                steal: 8,
                total: 132
            }]
        );
    }

    #[test]
    fn cross_core_time_is_measured() {
        let ns = cross_core_ns(0, 0, 0, 0);
        assert_eq!(ns, 0.0, "no trips, no time");
        if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
            let ns = cross_core_ns(0, 1, 0, 2000);
            assert!(ns > 0.0 && ns < 100_000.0, "{ns} ns");
        }
    }

    fn th(tid: u32, name: &str, allowed: &[usize], ticks: u64, preempted: u64) -> Thread {
        Thread {
            tid,
            name: name.into(),
            last_cpu: allowed[0],
            allowed: allowed.to_vec(),
            ticks,
            preempted,
        }
    }

    #[test]
    fn placement_names_the_poller_and_what_else_ran_there() {
        let cpu = |busy, steal, total| CpuTicks { busy, steal, total };
        let a = Snapshot {
            cpus: vec![cpu(0, 0, 0), cpu(0, 0, 0)],
            threads: vec![
                th(1, "main", &[0], 5, 0),
                th(2, "lcore-worker-1", &[1], 100, 3),
                th(3, "eal-intr-thread", &[1], 0, 0),
            ],
        };
        let b = Snapshot {
            cpus: vec![cpu(180, 10, 200), cpu(195, 5, 200)],
            threads: vec![
                th(1, "main", &[0], 6, 0),
                th(2, "lcore-worker-1", &[1], 280, 7),
                th(3, "eal-intr-thread", &[1], 0, 0),
            ],
        };
        let p = Placement::between(&a, &b, 1);
        assert_eq!(p.poller.as_deref(), Some("lcore-worker-1(2)"));
        assert_eq!(p.others_on_poll_cpu, vec!["eal-intr-thread(3)"]);
        // CPU 1: 195 busy ticks of 200, 180 the poller's: 15 others.
        assert_eq!(p.poll_cpu_other_pct, 7.5);
        assert_eq!(p.poller_preempted, 4);
        assert_eq!(p.steal_pct, vec![5.0, 2.5]);
    }
}
