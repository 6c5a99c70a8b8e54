//! Benchmarks stopped by a signal leave nothing behind (issue 17: a
//! `blk_iscsi` stopped with Ctrl-C left its tgtd processes and network
//! namespace), and a run after one that was killed outright (SIGKILL)
//! removes what that one left and starts fine.
//!
//! These need root, iproute2, tgt and qemu-storage-daemon (CI has them: `bash
//! .ci/install-deps.sh test`). Without them a test says what is missing and
//! passes, except under CI (`CI` set), where it fails.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One benchmark at a time: a starting benchmark removes what dead runs
/// left, which would race with the SIGKILL test's look at its leftovers.
static SERIAL: Mutex<()> = Mutex::new(());

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file()
}

/// Whether this machine can run the test; if not, says why (and fails
/// under CI, which has everything).
fn prerequisites(tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = format!(
        "needs root (have {}) and {tools:?} (missing {missing:?}): bash .ci/install-deps.sh test",
        if root { "it" } else { "not" }
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}

/// A started benchmark, its stderr in a file; killed if the test fails.
struct Bench {
    child: Child,
    name: &'static str,
    log: std::path::PathBuf,
}

impl Bench {
    fn start(name: &'static str, bin: &str, args: &[&str]) -> Bench {
        let log = std::env::temp_dir().join(format!(
            "perf-cleanup-test-{name}-{}-{}.log",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e}"));
        Bench { child, name, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 40 s) until `ready`; fails if the benchmark exits.
    fn wait_for(&mut self, what: &str, mut ready: impl FnMut(&Bench) -> bool) {
        let t = Instant::now();
        while !ready(self) {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({st}) before {what}:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(40),
                "{}: no {what} after 40 s:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` and waits (at most 20 s) for the exit.
    fn signal(&mut self, sig: i32) -> ExitStatus {
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(self.pid() as i32, sig) };
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{} did not exit within 20 s of signal {sig}:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` and asserts the bench exited with status 128 + sig
    /// (its handler cleaned up, then exited as the signal asks).
    fn stop_by(&mut self, sig: i32) {
        let st = self.signal(sig);
        assert_eq!(st.code(), Some(128 + sig), "{st}:\n{}", self.stderr());
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(3));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A process by pid and start time (so a reused pid is not mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Proc {
    pid: u32,
    start: u64,
}

fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

impl Proc {
    fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, _, start)| start == self.start && state != 'Z')
    }
}

/// Live children of `parent` whose command is `comm`.
fn children(parent: u32, comm: &str) -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Some((state, ppid, start)) = stat(pid) else {
            continue;
        };
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if ppid == parent && state != 'Z' && name.trim() == comm {
            out.push(Proc { pid, start });
        }
    }
    out
}

/// tgtd's management socket number (`-C N`).
fn tgtd_control(p: Proc) -> Option<String> {
    let cmd = std::fs::read(format!("/proc/{}/cmdline", p.pid)).ok()?;
    let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
    args.windows(2)
        .find(|w| w[0] == b"-C")
        .and_then(|w| String::from_utf8(w[1].to_vec()).ok())
}

fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// What a `blk_iscsi` run makes: tgtd on loopback and tgtd in the namespace
/// `vswbi<pid>` behind the veth `vbi<pid>h`.
struct IscsiRun {
    ns: String,
    link: String,
    tgtds: Vec<Proc>,
    sockets: Vec<String>,
}

impl IscsiRun {
    fn gone(&self) -> Result<(), String> {
        if netns_exists(&self.ns) {
            return Err(format!("namespace {} left", self.ns));
        }
        if link_exists(&self.link) {
            return Err(format!("link {} left", self.link));
        }
        if let Some(p) = self.tgtds.iter().find(|p| p.alive()) {
            return Err(format!("tgtd {p:?} left"));
        }
        for c in &self.sockets {
            if Path::new(&format!("/var/run/tgtd/socket.{c}")).exists() {
                return Err(format!("tgtd management socket {c} left"));
            }
        }
        Ok(())
    }
}

const BLK_ISCSI_ARGS: [&str; 6] = ["--targets", "vs-utcp", "--secs", "30", "--repeat", "1"];

/// Starts `blk_iscsi` and waits for both its tgtds and its namespace.
fn blk_iscsi_up() -> (Bench, IscsiRun) {
    let mut b = Bench::start(
        "blk_iscsi",
        env!("CARGO_BIN_EXE_blk_iscsi"),
        &BLK_ISCSI_ARGS,
    );
    let id = b.pid() % 1_000_000;
    let (ns, link) = (format!("vswbi{id}"), format!("vbi{id}h"));
    b.wait_for("two tgtds and the namespace", |b| {
        netns_exists(&ns) && children(b.pid(), "tgtd").len() == 2
    });
    let tgtds = children(b.pid(), "tgtd");
    let sockets = tgtds.iter().filter_map(|p| tgtd_control(*p)).collect();
    (
        b,
        IscsiRun {
            ns,
            link,
            tgtds,
            sockets,
        },
    )
}

#[test]
fn blk_iscsi_stopped_by_sigterm_leaves_no_tgtd_or_namespace() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !prerequisites(&["ip", "tgtd", "tgtadm", "ethtool"]) {
        return;
    }
    let (mut b, run) = blk_iscsi_up();
    assert_eq!(run.sockets.len(), 2, "{:?}", run.tgtds);
    b.stop_by(libc::SIGTERM);
    if let Err(e) = run.gone() {
        panic!("after SIGTERM: {e}\n{}", b.stderr());
    }
}

#[test]
fn blk_iscsi_after_a_sigkilled_run_removes_its_leftovers_and_starts() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !prerequisites(&["ip", "tgtd", "tgtadm", "ethtool"]) {
        return;
    }
    let (mut killed, old) = blk_iscsi_up();
    let old_pid = killed.pid();
    killed.signal(libc::SIGKILL);
    // SIGKILL leaves everything: what the next run must clean.
    assert!(netns_exists(&old.ns), "SIGKILL removed {}?", old.ns);
    assert!(old.tgtds.iter().all(Proc::alive), "{:?}", old.tgtds);

    let (mut next, new) = blk_iscsi_up();
    if let Err(e) = old.gone() {
        panic!(
            "the next run did not remove the killed one's leftovers: {e}\n{}",
            next.stderr()
        );
    }
    let err = next.stderr();
    assert!(
        err.contains(&format!(
            "removed what an earlier, killed blk_iscsi (pid {old_pid}) left behind"
        )),
        "{err}"
    );
    next.stop_by(libc::SIGINT);
    if let Err(e) = new.gone() {
        panic!("after SIGINT: {e}\n{}", next.stderr());
    }
}

#[test]
fn iscsi_bench_stopped_by_sigint_leaves_no_tgtd_or_namespace() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !prerequisites(&["ip", "tgtd", "tgtadm"]) {
        return;
    }
    let mut b = Bench::start(
        "iscsi_bench",
        env!("CARGO_BIN_EXE_iscsi_bench"),
        &[
            "--veth",
            "--file-mib",
            "16",
            "--seconds",
            "30",
            "--repeat",
            "1",
        ],
    );
    let ns = format!("vswbench-{}", b.pid());
    let link = format!("vb{}h", b.pid() % 250);
    b.wait_for("tgtd in its namespace", |b| {
        netns_exists(&ns) && !children(b.pid(), "tgtd").is_empty()
    });
    let run = IscsiRun {
        ns,
        link,
        tgtds: children(b.pid(), "tgtd"),
        sockets: children(b.pid(), "tgtd")
            .into_iter()
            .filter_map(tgtd_control)
            .collect(),
    };
    b.stop_by(libc::SIGINT);
    if let Err(e) = run.gone() {
        panic!("after SIGINT: {e}\n{}", b.stderr());
    }
}

#[test]
fn blk_vhost_stopped_by_sigterm_leaves_no_qemu_storage_daemon() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !prerequisites(&["qemu-storage-daemon"]) {
        return;
    }
    let mut b = Bench::start(
        "blk_vhost",
        env!("CARGO_BIN_EXE_blk_vhost"),
        &["--secs", "2", "--repeat", "1"],
    );
    b.wait_for("qemu-storage-daemon", |b| {
        !children(b.pid(), "qemu-storage-da").is_empty()
    });
    let qsd = children(b.pid(), "qemu-storage-da");
    b.stop_by(libc::SIGTERM);
    assert!(
        !qsd.iter().any(Proc::alive),
        "qemu-storage-daemon {qsd:?} left:\n{}",
        b.stderr()
    );
}

/// With `SPDK_VHOST_APP` (SPDK's `build/bin/vhost`, see perf/spdk/build.sh;
/// CI does not build SPDK): SIGTERM during an SPDK run stops the app.
#[test]
fn blk_vhost_stopped_by_sigterm_leaves_no_spdk_app() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(app) = std::env::var_os("SPDK_VHOST_APP") else {
        eprintln!("skipped: set SPDK_VHOST_APP to SPDK's build/bin/vhost (perf/spdk/build.sh)");
        return;
    };
    let app = app.to_string_lossy().into_owned();
    let mut b = Bench::start(
        "blk_vhost",
        env!("CARGO_BIN_EXE_blk_vhost"),
        &[
            "--secs",
            "3",
            "--repeat",
            "1",
            "--targets",
            "spdk",
            "--rows",
            "1:1",
            "--spdk",
            &app,
        ],
    );
    // SPDK names its main thread after the reactor it runs.
    let spdk = |b: &Bench| {
        let mut v = children(b.pid(), "reactor_1");
        v.extend(children(b.pid(), "vhost"));
        v
    };
    b.wait_for("the SPDK vhost app", |b| !spdk(b).is_empty());
    let apps = spdk(&b);
    b.stop_by(libc::SIGTERM);
    assert!(
        !apps.iter().any(Proc::alive),
        "SPDK vhost app {apps:?} left:\n{}",
        b.stderr()
    );
}
