//! The tgtd process: its command line, readiness, and SIGKILL with the
//! clean-up SIGKILL needs.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Tgtadm;

/// Where tgtd keeps its management sockets (`socket.N`, `socket.N.lock`).
const SOCKET_DIR: &str = "/var/run/tgtd";

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick
/// for a listener bound to port 0, closed again): a portal for a tgtd, or
/// a port that nothing listens on.
pub fn free_tcp_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A management channel in 10000..30000 whose socket is absent, scanning
/// from `seed` (e.g. the process id times a per-process counter). tgtd's
/// channel names a unix socket and must stay below 32768; a SIGKILLed
/// tgtd's socket stays behind unless removed, so taken ones are skipped.
pub fn free_control_port(seed: u32) -> Option<u16> {
    (0..20_000u32)
        .map(|k| (10_000 + seed.wrapping_add(k) % 20_000) as u16)
        .find(|&p| control_port_free(p))
}

/// Whether no tgtd's management socket for channel `control` exists.
/// Callers that pick channels from several threads at once give each
/// candidate to one thread (e.g. from a shared counter) and test it here,
/// rather than scanning from nearby seeds, which could meet.
pub fn control_port_free(control: u16) -> bool {
    !Path::new(&format!("{SOCKET_DIR}/socket.{control}")).exists()
}

/// How to start one tgtd.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Management channel (`-C`), e.g. from [`free_control_port`].
    pub control: u16,
    /// `ADDR:PORT` the iSCSI portal listens on.
    pub portal: String,
    /// Run inside this network namespace (`ip netns exec NS tgtd ...`).
    pub netns: Option<String>,
    /// File for tgtd's stdout and stderr (discarded when `None`).
    pub log: Option<PathBuf>,
}

/// A running tgtd, SIGKILLed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    launch: Launch,
}

impl Daemon {
    /// Starts tgtd in the foreground (`-f`) as `launch` says.
    pub fn spawn(launch: Launch) -> Result<Daemon, String> {
        let mut cmd = match &launch.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "tgtd"]);
                c
            }
            None => Command::new("tgtd"),
        };
        cmd.args(["-f", "-C", &launch.control.to_string(), "--iscsi"])
            .arg(format!("portal={}", launch.portal));
        match &launch.log {
            Some(path) => {
                let log = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let err = log.try_clone().map_err(|e| e.to_string())?;
                cmd.stdout(Stdio::from(log)).stderr(Stdio::from(err));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("tgtd (Debian package `tgt`): {e}"))?;
        Ok(Daemon { child, launch })
    }

    /// Waits until tgtd answers on its management channel and, with
    /// `portal`, its portal accepts a TCP connection from this namespace.
    /// The error says why (tgtd exited, or the time ran out) with the log.
    pub fn wait_ready(&mut self, timeout: Duration, portal: bool) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if (!portal || TcpStream::connect(&self.launch.portal).is_ok()) && self.adm().ready() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("tgtd exited ({status}){}", self.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "tgtd did not start in {timeout:?}{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `tgtadm` on this tgtd's channel.
    pub fn adm(&self) -> Tgtadm {
        Tgtadm::new(self.launch.control)
    }

    /// How it was started.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// The process id (`ip netns exec` execs tgtd, so it is tgtd's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        self.launch
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| format!("; log: {}", s.trim()))
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    /// SIGKILL: tgtd ignores SIGTERM while it has targets. SIGKILL leaves
    /// its management socket and lock behind, so both are removed.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for suffix in ["", ".lock"] {
            let _ = std::fs::remove_file(format!(
                "{SOCKET_DIR}/socket.{}{suffix}",
                self.launch.control
            ));
        }
    }
}
