//! Leaving nothing behind. A benchmark that starts tgtd, qemu-storage-daemon,
//! OVS, network namespaces or veths calls [`install`] first; then
//!
//! * SIGINT or SIGTERM stops it after removing what it made: every process
//!   it started (its descendants, SIGTERM then SIGKILL: tgtd ignores SIGTERM
//!   while it has targets), the processes of its namespaces, the namespaces,
//!   links and files it [`record`]ed, and tgtd's management sockets;
//! * a run killed outright (SIGKILL, a crash) is cleaned up by the next run
//!   of any benchmark: each run writes what it records to a file
//!   (`/run/vswitch-perf/<pid>`, or under the temp dir without root) before
//!   making it, and [`install`] removes what the files of dead runs list.
//!
//! A resource is recorded before it is made, so a signal between the two
//! finds at worst a name that does not exist yet (removing it is a no-op).
//! Recorded resources the benchmark removed itself stay in the record until
//! the run ends; removing them again is harmless, and processes are
//! identified by pid *and* start time, so a reused pid is never killed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Something a benchmark makes that must not outlive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A network namespace (`ip netns add NAME`); its processes are killed
    /// before it is deleted.
    Netns(String),
    /// A network interface in the root namespace (the host end of a veth).
    Link(String),
    /// A file or directory (removed recursively).
    Path(PathBuf),
    /// A process, by pid and start time (from `/proc/PID/stat`).
    Process {
        /// Its pid.
        pid: u32,
        /// Its start time in clock ticks after boot.
        start: u64,
    },
}

impl Resource {
    /// The process `pid` as it runs now (`None` if it is gone).
    pub fn process(pid: u32) -> Option<Resource> {
        stat(pid).map(|s| Resource::Process {
            pid,
            start: s.start,
        })
    }

    fn to_line(&self) -> String {
        match self {
            Resource::Netns(n) => format!("netns {n}"),
            Resource::Link(n) => format!("link {n}"),
            Resource::Path(p) => format!("path {}", p.display()),
            Resource::Process { pid, start } => format!("pid {pid} {start}"),
        }
    }

    fn from_line(l: &str) -> Option<Resource> {
        let (kind, rest) = l.split_once(' ')?;
        Some(match kind {
            "netns" => Resource::Netns(rest.to_owned()),
            "link" => Resource::Link(rest.to_owned()),
            "path" => Resource::Path(PathBuf::from(rest)),
            "pid" => {
                let (p, s) = rest.split_once(' ')?;
                Resource::Process {
                    pid: p.parse().ok()?,
                    start: s.parse().ok()?,
                }
            }
            _ => return None,
        })
    }
}

struct State {
    bench: String,
    file: Option<PathBuf>,
    recorded: Vec<Resource>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Keeps the run's record; removes the record file when dropped at the end
/// of a run (after the benchmark's own clean-up). While a signal's clean-up
/// is under way, dropping it waits for that to end the process.
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        if STOPPING.load(Ordering::SeqCst) {
            park_forever();
        }
        let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = st.as_mut().and_then(|s| s.file.take()) {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn park_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The directory of the runs' records.
pub fn record_dir() -> PathBuf {
    let run = PathBuf::from("/run/vswitch-perf");
    if std::fs::create_dir_all(&run).is_ok() && is_writable(&run) {
        return run;
    }
    let tmp = std::env::temp_dir().join("vswitch-perf-runs");
    let _ = std::fs::create_dir_all(&tmp);
    tmp
}

fn is_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(probe);
    ok
}

/// Call first in `main` of a benchmark named `bench`: removes what killed
/// earlier runs left, starts this run's record and handles SIGINT/SIGTERM
/// (clean-up, then exit with 128 + the signal number). Keep the guard until
/// `main` returns.
pub fn install(bench: &str) -> Guard {
    remove_leftovers(bench);
    let me = std::process::id();
    let start = stat(me).map_or(0, |s| s.start);
    let file = record_dir().join(me.to_string());
    let header = format!("owner {me} {start} {bench}\n");
    let file = std::fs::write(&file, header).is_ok().then_some(file);
    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
        bench: bench.to_owned(),
        file,
        recorded: Vec::new(),
    });
    // A thread that panics because the clean-up pulled a resource from
    // under it waits for the exit instead of ending the process early.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if STOPPING.load(Ordering::SeqCst) {
            park_forever();
        }
        prev(info);
    }));
    match signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM]) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new()
                .name("cleanup-on-signal".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        on_signal(sig);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("{bench}: no clean-up on signals: {e}");
            }
        }
        Err(e) => eprintln!("{bench}: no clean-up on signals: {e}"),
    }
    Guard(())
}

/// Records a resource this run is about to make (or just made).
pub fn record(r: Resource) {
    let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = st.as_mut() else { return };
    if s.recorded.contains(&r) {
        return;
    }
    if let Some(f) = &s.file {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(f) {
            let _ = writeln!(f, "{}", r.to_line());
        }
    }
    s.recorded.push(r);
}

/// Records a spawned child process (no-op if it already exited).
pub fn record_child(child: &std::process::Child) {
    if let Some(r) = Resource::process(child.id()) {
        record(r);
    }
}

fn on_signal(sig: i32) {
    STOPPING.store(true, Ordering::SeqCst);
    let (bench, recorded, file) = {
        let st = STATE.lock().unwrap_or_else(|e| e.into_inner());
        match st.as_ref() {
            Some(s) => (s.bench.clone(), s.recorded.clone(), s.file.clone()),
            None => (String::new(), Vec::new(), None),
        }
    };
    let name = if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    eprintln!("\n{bench}: {name}: stopping the processes it started and removing what it made");
    // The other threads run on meanwhile and may start the next step
    // (a process, a namespace) after the first pass: a second pass, with
    // what was recorded by then, catches that.
    for pass in 0..2 {
        let recorded = if pass == 0 {
            recorded.clone()
        } else {
            STATE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map_or_else(Vec::new, |s| s.recorded.clone())
        };
        let mut pids = descendants(std::process::id());
        pids.extend(recorded.iter().filter_map(live_process));
        teardown(&pids, &recorded);
    }
    if let Some(f) = file {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::io::stderr().flush();
    // SAFETY: _exit has no preconditions; it ends the process without
    // running atexit handlers or destructors that may race with the other
    // threads' use of what was just removed.
    unsafe { libc::_exit(128 + sig) };
}

/// Kills `pids` and the processes of the recorded namespaces, then removes
/// the recorded namespaces, links and paths.
fn teardown(pids: &[u32], recorded: &[Resource]) {
    let mut pids = pids.to_vec();
    for r in recorded {
        if let Resource::Netns(ns) = r {
            pids.extend(netns_pids(ns));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.retain(|&p| p != std::process::id());
    kill_all(&pids);
    for r in recorded {
        match r {
            Resource::Netns(ns) => {
                let _ = Command::new("ip")
                    .args(["netns", "del", ns])
                    .stderr(Stdio::null())
                    .status();
            }
            Resource::Link(l) => {
                let _ = Command::new("ip")
                    .args(["link", "del", l])
                    .stderr(Stdio::null())
                    .status();
            }
            Resource::Path(p) => {
                if p.is_dir() {
                    let _ = std::fs::remove_dir_all(p);
                } else {
                    let _ = std::fs::remove_file(p);
                }
            }
            Resource::Process { .. } => {}
        }
    }
}

/// SIGTERM, up to 1 s, then SIGKILL what is left (up to 2 s more); tgtd's
/// management socket files are removed after it is gone.
fn kill_all(pids: &[u32]) {
    let mut sockets = Vec::new();
    for &p in pids {
        if let Some(c) = tgtd_control(p) {
            sockets.push(c);
        }
        // SAFETY: kill has no memory-safety preconditions; p is a process
        // this run started (a descendant, a recorded pid whose start time
        // matched, or a process of a namespace this run made).
        unsafe { libc::kill(p as i32, libc::SIGTERM) };
    }
    let alive = |p: &u32| stat(*p).is_some_and(|s| s.state != 'Z');
    let wait = |d: Duration| {
        let t = Instant::now();
        while pids.iter().any(alive) && t.elapsed() < d {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait(Duration::from_secs(1));
    for p in pids.iter().filter(|p| alive(p)) {
        // SAFETY: as above.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    wait(Duration::from_secs(2));
    for c in sockets {
        for suffix in ["", ".lock"] {
            let _ = std::fs::remove_file(format!("/var/run/tgtd/socket.{c}{suffix}"));
        }
    }
}

/// Removes what the records of dead runs list (processes, namespaces,
/// links, paths) and the records.
pub fn remove_leftovers(bench: &str) {
    let Ok(dir) = std::fs::read_dir(record_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let path = e.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.lines();
        let Some(owner) = lines.next().and_then(|h| h.strip_prefix("owner ")) else {
            continue;
        };
        let mut f = owner.split(' ');
        let (Some(pid), Some(start)) = (
            f.next().and_then(|v| v.parse::<u32>().ok()),
            f.next().and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let who = f.next().unwrap_or("?");
        if live_process(&Resource::Process { pid, start }).is_some() {
            continue;
        }
        let recorded: Vec<Resource> = lines.filter_map(Resource::from_line).collect();
        let pids: Vec<u32> = recorded.iter().filter_map(live_process).collect();
        teardown(&pids, &recorded);
        let _ = std::fs::remove_file(&path);
        let names: Vec<String> = recorded
            .iter()
            .filter_map(|r| match r {
                Resource::Netns(n) => Some(format!("namespace {n}")),
                Resource::Link(l) => Some(format!("link {l}")),
                _ => None,
            })
            .collect();
        eprintln!(
            "{bench}: removed what an earlier, killed {who} (pid {pid}) left behind{}{}",
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        );
    }
}

/// The pid of a recorded process that still runs (same start time, not a
/// zombie).
fn live_process(r: &Resource) -> Option<u32> {
    match r {
        Resource::Process { pid, start } => {
            stat(*pid).filter(|s| s.start == *start && s.state != 'Z')?;
            Some(*pid)
        }
        _ => None,
    }
}

struct Stat {
    state: char,
    ppid: u32,
    start: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Every live descendant of `root`.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid).filter(|s| s.state != 'Z') {
            children.entry(s.ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

fn netns_pids(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// tgtd's `-C` number (its management socket's), if `pid` is tgtd.
fn tgtd_control(pid: u32) -> Option<String> {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
    if !args.first()?.ends_with(b"tgtd") {
        return None;
    }
    args.windows(2)
        .find(|w| w[0] == b"-C")
        .and_then(|w| std::str::from_utf8(w[1]).ok().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_round_trip() {
        for r in [
            Resource::Netns("vswbi12".into()),
            Resource::Link("vbi12h".into()),
            Resource::Path("/tmp/a b".into()),
            Resource::Process { pid: 7, start: 99 },
        ] {
            assert_eq!(Resource::from_line(&r.to_line()), Some(r));
        }
        assert_eq!(Resource::from_line("bogus"), None);
    }

    #[test]
    fn finds_its_own_children_and_start_times() {
        let mut c = Command::new("sleep").arg("5").spawn().unwrap();
        let me = Resource::process(std::process::id()).unwrap();
        assert_eq!(live_process(&me), Some(std::process::id()));
        assert!(descendants(std::process::id()).contains(&c.id()));
        let Resource::Process { pid, start } = Resource::process(c.id()).unwrap() else {
            unreachable!()
        };
        // Another start time is another process.
        assert_eq!(
            live_process(&Resource::Process {
                pid,
                start: start + 1
            }),
            None
        );
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(live_process(&Resource::Process { pid, start }), None);
    }
}
