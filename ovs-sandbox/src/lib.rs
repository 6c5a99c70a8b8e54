//! A private Open vSwitch in a run directory of its own: `ovsdb-server` on
//! a fresh database and `ovs-vswitchd` (Debian's DPDK build, or the plain
//! one on its dummy datapath), driven with OVS's own tools (`ovs-vsctl`,
//! `ovs-ofctl`, `ovs-appctl`). The benchmarks (`perf::ovs`, OVS-DPDK as the
//! peer) and the tests (`tests/ovs_harness`, OVS as the reference; the
//! `ofproto` wire test) start it the same way through [`Sandbox`].
//!
//! Data flow:
//!
//! ```text
//! Sandbox::new(dir)          fresh DIR; OVS_RUNDIR/DBDIR/LOGDIR/SYSCONFDIR=DIR for every tool
//!   start_ovsdb              ovsdb-tool create DIR/conf.db; ovsdb-server punix:DIR/db.sock; vsctl init
//!   dpdk_init                other_config: dpdk-init, lcore/PMD masks, socket-mem, dpdk-extra --file-prefix
//!   start_vswitchd(Net, ..)  ovs-vswitchd[-dpdk] (own netns: `unshare --net`) → DIR/vswitchd.ctl
//!   add_bridge / add_port    ovs-vsctl add-br (netdev) / add-port, the ofport checked
//!   tool / vsctl / appctl    errors carry the daemon's log tail
//! drop                       SIGTERM (SIGKILL after a grace), DIR and /var/run/dpdk/PREFIX removed
//! ```
//!
//! Nothing touches the system's own OVS. Every process is started with
//! `PR_SET_PDEATHSIG`, so a crashed test or benchmark never leaves a PMD
//! thread spinning on a shared core.
//!
//! No external crate drives OVS from Rust; the tools' text interface is
//! what operators use, so it is what is exercised. `pcap-file` writes the
//! replay port's empty placeholder capture.

#![deny(missing_docs)]

mod port;
mod sandbox;

pub use port::Port;
pub use sandbox::{Net, Sandbox};

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The OVSDB schema shipped by `openvswitch-common`.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// Where Debian installs the DPDK build of `ovs-vswitchd`
/// (`openvswitch-switch-dpdk`).
pub const VSWITCHD_DPDK: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

/// The `ovs-vswitchd-dpdk` binary: `$OVS_VSWITCHD_DPDK` or Debian's path,
/// an error naming the package if it is missing.
pub fn vswitchd_dpdk() -> Result<PathBuf, String> {
    let p = std::env::var_os("OVS_VSWITCHD_DPDK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(VSWITCHD_DPDK));
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: install the Debian package openvswitch-switch-dpdk",
            p.display()
        ))
    }
}

/// A command killed with the thread that spawns it (`PR_SET_PDEATHSIG`),
/// so no busy-polling daemon it starts spins on after a crash; stdin and
/// stdout are null, stderr is inherited.
pub fn command(prog: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(prog);
    c.stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches no memory of the
    // forked child; it only asks the kernel to SIGKILL the child when the
    // spawning thread dies. The flag survives the exec.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// Stops `child`: SIGTERM, then SIGKILL after `grace`.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of the file `path` (or why it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// The counter `key` (`"rx pkts="`, `"tx pkts="`, ...) in the output of
/// `ovs-ofctl dump-ports BRIDGE PORT`.
pub fn counter(dump_ports: &str, key: &str) -> Option<u64> {
    dump_ports
        .split(key)
        .nth(1)
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_dump_ports() {
        let out = "OFPST_PORT reply (xid=0x2): 1 ports
  port  2: rx pkts=12, bytes=0, drop=0, errs=0, frame=?, over=?, crc=?
           tx pkts=47730656, bytes=0, drop=0, errs=0, coll=?
";
        assert_eq!(counter(out, "tx pkts="), Some(47730656));
        assert_eq!(counter(out, "rx pkts="), Some(12));
        assert_eq!(counter("garbage", "tx pkts="), None);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let p = std::env::temp_dir().join(format!("ovs-sandbox-tail-{}", std::process::id()));
        fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&p, 2), "b\nc");
        assert_eq!(tail(&p, 9), "a\nb\nc");
        fs::remove_file(&p).unwrap();
        assert!(tail(&p, 2).starts_with("(cannot read"));
    }
}
