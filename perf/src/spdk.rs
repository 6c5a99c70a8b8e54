//! SPDK's vhost target as a benchmark peer: its `vhost` app started on one
//! core, a null bdev and a vhost-blk controller created through its JSON-RPC
//! socket (the same JSON `scripts/rpc.py` sends, through this repository's
//! client in the `rpc` crate).
//!
//! SPDK is not packaged for Debian 12: `perf/spdk/build.sh` builds v24.09
//! from a source tree against the system DPDK. The app runs as
//! `vhost -m MASK -u --no-huge -s 1024 -S DIR -r DIR/spdk.sock`: no PCI
//! (`-u`), 1 GiB of ordinary memory instead of hugepages (with hugepages it
//! crashed on a guest memory region backed by 4 KiB pages), vhost sockets
//! and the RPC socket in the benchmark's own directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rpc::client::Client;
use serde_json::{json, Value};

use crate::vhost_driver::{pin_child, Reaper};

/// A running SPDK vhost app; stopped (killed and reaped) when dropped.
pub struct SpdkVhost {
    child: Reaper,
    rpc: Client,
    dir: PathBuf,
    log: PathBuf,
}

impl SpdkVhost {
    /// Starts `app` (SPDK's `build/bin/vhost`) with its reactor on `cpu`
    /// (`-m`, and the whole process confined to that CPU like the other
    /// targets), sockets in `dir`, and waits for its RPC socket to answer.
    pub fn start(app: &Path, dir: &Path, cpu: usize) -> Result<SpdkVhost, String> {
        let sock = dir.join("spdk.sock");
        let log = dir.join("spdk.log");
        let _ = std::fs::remove_file(&sock);
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(app);
        cmd.args(["-m", &format!("{:#x}", 1u64 << cpu), "-u", "--no-huge"])
            .args(["-s", "1024", "-S"])
            .arg(dir)
            .arg("-r")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Built against the system DPDK, SPDK links its own libraries
        // shared, from `build/lib` next to `build/bin`.
        if let Some(lib) = app.parent().and_then(Path::parent).map(|b| b.join("lib")) {
            if lib.is_dir() {
                let mut path = lib.into_os_string();
                if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                    path.push(":");
                    path.push(old);
                }
                cmd.env("LD_LIBRARY_PATH", path);
            }
        }
        pin_child(&mut cmd, cpu);
        let child = Reaper(
            cmd.spawn()
                .map_err(|e| format!("SPDK vhost app {}: {e}", app.display()))?,
        );
        crate::cleanup::record_child(&child.0);
        let mut child = child;
        let rpc = connect(&sock, &mut child, &log)?;
        let mut me = SpdkVhost {
            child,
            rpc,
            dir: dir.to_owned(),
            log,
        };
        // The subsystems are up once this answers.
        me.call("framework_wait_init", None)?;
        Ok(me)
    }

    /// The pid of the app (its CPU time is the back end's).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// `bdev_null_create`: a null bdev of `bytes` in `block_size` blocks.
    pub fn null_bdev(&mut self, name: &str, bytes: u64, block_size: u32) -> Result<(), String> {
        let p = json!({"name": name, "num_blocks": bytes / block_size as u64, "block_size": block_size});
        self.call("bdev_null_create", Some(p)).map(drop)
    }

    /// `vhost_create_blk_controller`: controller `ctrlr` on bdev `bdev`,
    /// served by the reactors in `cpumask`; returns its socket path.
    pub fn blk_controller(
        &mut self,
        ctrlr: &str,
        bdev: &str,
        cpumask: &str,
    ) -> Result<PathBuf, String> {
        let p = json!({"ctrlr": ctrlr, "dev_name": bdev, "cpumask": cpumask});
        self.call("vhost_create_blk_controller", Some(p))?;
        Ok(self.dir.join(ctrlr))
    }

    /// TSC ticks its reactors spent in busy and in idle iterations so far
    /// (`framework_get_reactors`: each reactor's `busy` and `idle`; an
    /// iteration is busy when a poller of one of its threads did work; SPDK
    /// reads the TSC once per thread poll for it).
    pub fn busy_idle_ticks(&mut self) -> Result<(u64, u64), String> {
        let v = self.call("framework_get_reactors", None)?;
        let reactors = v
            .get("reactors")
            .and_then(Value::as_array)
            .ok_or("framework_get_reactors: no reactors array")?;
        let sum = |k: &str| {
            reactors
                .iter()
                .map(|r| r.get(k).and_then(Value::as_u64))
                .sum::<Option<u64>>()
                .ok_or_else(|| format!("framework_get_reactors: a reactor without {k}"))
        };
        Ok((sum("busy")?, sum("idle")?))
    }

    /// One JSON-RPC call; an error names the method and carries SPDK's
    /// message and the end of its log.
    pub fn call(&mut self, method: &str, params: Option<Value>) -> Result<Value, String> {
        let failed = |what: String, log: &Path| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("SPDK {method}: {what} (log: {})", tail.join(" | "))
        };
        match self.rpc.call(method, params) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(failed(e.to_string(), &self.log)),
            Err(e) => Err(failed(e.to_string(), &self.log)),
        }
    }
}

impl Drop for SpdkVhost {
    /// SIGTERM first (the app removes its sockets and runtime files), then
    /// the [`Reaper`] kills what has not exited within 3 s.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        unsafe { libc::kill(self.child.0.id() as libc::pid_t, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Connects to SPDK's RPC socket once the app listens on it (20 s at
/// most); an app that exits first fails with the end of its log.
fn connect(sock: &Path, app: &mut Reaper, log: &Path) -> Result<Client, String> {
    let t0 = Instant::now();
    let tail = || {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    };
    loop {
        if let Ok(Some(st)) = app.0.try_wait() {
            return Err(format!("SPDK vhost app exited ({st}):\n{}", tail()));
        }
        match Client::connect(sock, Duration::from_secs(10)) {
            Ok(c) => return Ok(c),
            Err(e) if t0.elapsed() > Duration::from_secs(20) => {
                return Err(format!(
                    "SPDK RPC socket {}: {e}\n{}",
                    sock.display(),
                    tail()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
