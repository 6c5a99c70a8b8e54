//! `vswitch` with no arguments (or `vswitch demo`): the whole product path
//! on this machine, in one process.
//!
//! ```text
//!  simulated guest (vhost-user front end, in-process)
//!     │ virtio-blk requests
//!     ▼
//!  vhost-user-blk device ─ cache ─ iSCSI initiator ─ host TCP (smoltcp)
//!     │                     all polled by the switch's core
//!     ▼ internal port (ring PMD)
//!  flow-table switch (NORMAL) ─ net_af_packet port ─ veth ─► netns: tgtd, file LUN
//! ```
//!
//! It needs root, tgtd/tgtadm (Debian `tgt`), `ip` (`iproute2`) and
//! `ethtool`; without them it says what to install and runs the switch-only
//! demo on virtual ports instead (`vswitch demo --switch-only`). Everything
//! it creates (namespace, veth, tgtd, files) is removed on exit, also on
//! Ctrl-C.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use switch::control::{request, PortInfo, Reply, Request};
use switch::table::RuleInfo;
use tgt_sandbox::{free_control_port, Daemon, Launch};
use vfio::blk::{VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use vfio::vhost_user::mock_frontend::MockFrontend;
use vfio::virtq::mock::Buf;

use crate::dataplane::config::{BlkSpec, HostStack, RunConfig};
use crate::dataplane::{self, storage};

/// Arguments of `vswitch demo`.
#[derive(Args, Debug, Default)]
pub struct DemoArgs {
    /// Only the switch on virtual ports (net_null, no root or packages needed).
    #[arg(long)]
    pub switch_only: bool,
}

/// The LUN's size.
const DISK: u64 = 64 << 20;
/// Where the pattern goes, and how long it is.
const OFFSET: u64 = 4 << 20;
const LEN: usize = 1 << 20;
/// Request size of the pattern's writes and reads.
const CHUNK: usize = 64 << 10;

/// What the whole-path demo needs and how to get it.
const INSTALL: &str = "bash .ci/install-deps.sh build   (Debian packages tgt iproute2 ethtool)";

/// `vswitch demo` / `vswitch` with no arguments.
pub fn run(a: &DemoArgs) -> Result<(), String> {
    if a.switch_only {
        return super::run::demo();
    }
    let (tools, root) = missing();
    if !tools.is_empty() || !root {
        let mut why = String::new();
        if !tools.is_empty() {
            why += &format!("  missing: {}; install with: {INSTALL}\n", tools.join(", "));
        }
        if !root {
            why += "  not root: run it as root (it creates a network namespace, a veth pair and an af_packet port)\n";
        }
        println!(
            "vswitch demo: the whole path (VM block I/O → cache → iSCSI over the user-mode TCP stack →\n\
             switch → NIC → tgtd) cannot run here:\n{why}\
             Running the switch-only demo instead.\n"
        );
        return super::run::demo();
    }
    whole_path()
}

/// The tools the whole-path demo lacks, and whether it runs as root.
fn missing() -> (Vec<String>, bool) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = [
        ("tgtd", "tgt"),
        ("tgtadm", "tgt"),
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
    ]
    .iter()
    .filter(|(t, _)| which(t).is_none())
    .map(|(t, p)| format!("`{t}` (Debian package {p})"))
    .collect();
    (tools, root)
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn sh(cmd: &mut Command) -> Result<(), String> {
    let o = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !o.status.success() {
        return Err(format!(
            "{:?} {:?}: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<(), String> {
    sh(Command::new("ip").args(args))
}

/// The namespace and veth pair; deleted on drop.
struct Net {
    ns: String,
    host_if: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
    }
}

/// The temporary directory; removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn step(stop: &AtomicBool, what: &str) -> Result<(), String> {
    if stop.load(Ordering::Relaxed) {
        return Err(format!("interrupted ({what})"));
    }
    println!("  - {what}");
    Ok(())
}

fn whole_path() -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let id = std::process::id();
    remove_leftovers();
    println!(
        "vswitch demo: the whole path in one process. A simulated guest writes a pattern to a\n\
         vhost-user-blk disk whose backend is an iSCSI LUN served by tgtd in a network namespace; the\n\
         iSCSI session runs on the user-mode TCP stack, which reaches tgtd through the flow-table switch\n\
         (internal port → NORMAL → net_af_packet port on a veth). One core polls the switch, the TCP\n\
         stack and the virtqueues. Everything created here is removed at the end (also on Ctrl-C).\n"
    );
    // Names unique to this process.
    let net = Net {
        ns: format!("vswdemo{id}"),
        host_if: format!("vdm{}h", id % 10_000_000),
    };
    let ns_if = format!("vdm{}n", id % 10_000_000);
    let subnet = format!("10.81.{}", id % 250 + 1);
    let (host_ip, tgt_ip) = (format!("{subnet}.1"), format!("{subnet}.2"));
    let dir = Dir(std::env::temp_dir().join(format!("vswitch-demo-{id}")));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("{}: {e}", dir.0.display()))?;

    create_netns(&stop, &net, &ns_if, &tgt_ip)?;
    let (tgtd, lun, iqn) = start_tgtd(&stop, &net, &dir, &tgt_ip)?;

    let sock = dir.0.join("disk.sock");
    let ctl = dir.0.join("ctl.sock");
    let stats = dir.0.join("blk.stats");
    let backend = format!("iscsi://{tgt_ip}:3260/{iqn}/1");
    let cfg = demo_config(&net, &host_ip, &backend, (&sock, &ctl, &stats))?;
    step(
        &stop,
        &format!(
            "one process: switch (port 0 net_af_packet on {}, port 1 internal port to the host stack {host_ip}),\n    \
             vhost-user-blk device {} on {backend} with a 16 MiB write-through cache",
            net.host_if,
            sock.display()
        ),
    )?;
    let dp = {
        let (cfg, stop) = (cfg.clone(), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("vswitch-demo-dp".into())
            .spawn(move || dataplane::run_until(&cfg, stop))
            .map_err(|e| e.to_string())?
    };
    let driven = drive(&stop, &sock, &stats, &lun, &ctl, &dp);
    stop.store(true, Ordering::Relaxed);
    let summary = dp
        .join()
        .map_err(|_| "the data plane panicked".to_string())?;
    // The data plane's own error explains a failed drive best (an interrupt
    // stops the data plane cleanly: then the drive's error says so).
    let summary = summary?;
    let report = driven?;
    println!("\n--- the one-process system's final counters ---");
    super::run::print_summary(&summary, false);
    println!("\n{report}");
    drop(tgtd);
    drop(net);
    drop(dir);
    println!("cleaned up: namespace, veth, tgtd and temporary files removed.");
    Ok(())
}

/// The namespace `net.ns` with its end of the veth (`ns_if`, address
/// `tgt_ip`), the host end up.
fn create_netns(stop: &AtomicBool, net: &Net, ns_if: &str, tgt_ip: &str) -> Result<(), String> {
    step(
        stop,
        &format!(
            "network namespace {} with tgtd at {tgt_ip}, veth {} ↔ {ns_if}",
            net.ns, net.host_if
        ),
    )?;
    ip(&["netns", "add", &net.ns])?;
    ip(&[
        "link",
        "add",
        &net.host_if,
        "type",
        "veth",
        "peer",
        "name",
        ns_if,
    ])?;
    ip(&["link", "set", ns_if, "netns", &net.ns])?;
    ip(&[
        "-n",
        &net.ns,
        "addr",
        "add",
        &format!("{tgt_ip}/24"),
        "dev",
        ns_if,
    ])?;
    ip(&["-n", &net.ns, "link", "set", ns_if, "up"])?;
    ip(&["-n", &net.ns, "link", "set", "lo", "up"])?;
    ip(&["link", "set", &net.host_if, "up"])?;
    // The user-mode stack checks checksums: the kernel must fill them in.
    sh(Command::new("ip").args([
        "netns", "exec", &net.ns, "ethtool", "-K", ns_if, "tx", "off",
    ]))?;
    Ok(())
}

/// tgtd in the namespace on `tgt_ip`:3260, serving one file LUN in the
/// demo's directory: the daemon, the LUN's file and the target's IQN.
fn start_tgtd(
    stop: &AtomicBool,
    net: &Net,
    dir: &Dir,
    tgt_ip: &str,
) -> Result<(Daemon, PathBuf, String), String> {
    let id = std::process::id();
    let lun = dir.0.join("lun1.img");
    std::fs::File::create(&lun)
        .and_then(|f| f.set_len(DISK))
        .map_err(|e| format!("{}: {e}", lun.display()))?;
    let mut tgtd = Daemon::spawn(Launch {
        control: free_control_port(id).ok_or("no free tgtd control port")?,
        portal: format!("{tgt_ip}:3260"),
        netns: Some(net.ns.clone()),
        log: Some(dir.0.join("tgtd.log")),
    })?;
    // The portal is in the namespace, behind the switch: not reachable
    // from here before the switch runs, so only the channel is waited for.
    tgtd.wait_ready(Duration::from_secs(10), false)?;
    step_wait(stop)?;
    let iqn = format!("iqn.2026-01.dev.vswitch:demo{id}");
    tgtd.adm().export_lun(&iqn, &lun)?;
    Ok((tgtd, lun, iqn))
}

/// The one-process system of the demo: the af_packet port on the veth's
/// host end, the host stack on `host_ip`, one cached vhost-user-blk disk
/// on `backend`, the control socket and the stats file.
fn demo_config(
    net: &Net,
    host_ip: &str,
    backend: &str,
    (sock, ctl, stats): (&Path, &Path, &Path),
) -> Result<RunConfig, String> {
    let id = std::process::id();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(RunConfig {
        eal: crate::dataplane::config::split_eal(&format!(
            "-l {} --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:error --file-prefix vswdemo{id}",
            if cores >= 2 { "0-1" } else { "0" }
        )),
        ports: vec![format!("net_af_packet0,iface={}", net.host_if)],
        duration: None,
        stats_interval: None,
        json: false,
        mbufs: dataplane::default_mbufs(2),
        flows: vec![],
        xconnect: false,
        control: Some(ctl.to_path_buf()),
        flow_cache: 1 << 16,
        ct_max_conns: 1 << 16,
        idle_exit: None,
        blk: vec![BlkSpec {
            socket: sock.to_path_buf(),
            backend: backend.to_string(),
            cache: Some(16 << 20),
            writeback: false,
            queues: 1,
            block_size: 512,
            cache_meta: None,
            qos: Default::default(),
        }],
        host: Some(HostStack::parse(&format!("{host_ip}/24"), None)?),
        blk_stats_file: Some(stats.to_path_buf()),
        poll: Default::default(),
        ovsdb: None,
        rundir: crate::dataplane::config::DEFAULT_RUNDIR.into(),
        metrics: None,
        storage_rpc: Default::default(),
    })
}

/// Removes what an earlier demo that was killed (SIGKILL, abort) left:
/// namespaces `vswdemo<pid>` of processes that no longer exist, with their
/// tgtd, veth and temporary directory.
fn remove_leftovers() {
    let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = ns
            .strip_prefix("vswdemo")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Alive, unless gone or a zombie (killed, not yet reaped).
        let alive = std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|st| {
            !st.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        });
        if alive {
            continue;
        }
        if let Ok(p) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for q in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                let Ok(q) = q.parse::<i32>() else { continue };
                // tgtd's management socket is named after its `-C` number.
                let cmd = std::fs::read(format!("/proc/{q}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
                let control = args
                    .windows(2)
                    .find(|w| w[0] == b"-C")
                    .and_then(|w| std::str::from_utf8(w[1]).ok().map(str::to_owned));
                // SAFETY: kill has no memory-safety preconditions; the pid is
                // a process in the dead demo's namespace (its tgtd, which
                // ignores SIGTERM while it has targets).
                unsafe { libc::kill(q, libc::SIGKILL) };
                if let Some(c) = control {
                    std::thread::sleep(Duration::from_millis(100));
                    for suffix in ["", ".lock"] {
                        let _ = std::fs::remove_file(format!("/var/run/tgtd/socket.{c}{suffix}"));
                    }
                }
            }
        }
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &format!("vdm{}h", pid % 10_000_000)])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("vswitch-demo-{pid}")));
        println!("(removed what an earlier, killed demo left behind: {ns})");
    }
}

fn step_wait(stop: &AtomicBool) -> Result<(), String> {
    if stop.load(Ordering::Relaxed) {
        return Err("interrupted".into());
    }
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}

/// The simulated guest: I/O through the vhost-user device, then the checks.
fn drive(
    stop: &AtomicBool,
    sock: &Path,
    stats: &Path,
    lun: &Path,
    ctl: &Path,
    dp: &std::thread::JoinHandle<Result<dataplane::Summary, String>>,
) -> Result<String, String> {
    wait_for_device(stop, sock, dp)?;
    step(
        stop,
        "the iSCSI session is logged in; a simulated guest connects over vhost-user",
    )?;
    let mut g = Guest::connect(sock)?;
    let seen = exercise(stop, &mut g, stats)?;
    let mut in_file = vec![0u8; LEN];
    std::fs::File::open(lun)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(OFFSET))?;
            f.read_exact(&mut in_file)
        })
        .map_err(|e| format!("{}: {e}", lun.display()))?;
    if in_file != seen.pattern {
        return Err(format!(
            "the pattern is not in tgtd's backing file {} at byte {OFFSET}",
            lun.display()
        ));
    }
    if stop.load(Ordering::Relaxed) {
        return Err("interrupted; everything created is being removed".into());
    }
    let ports = match request(ctl, &Request::PortsShow)? {
        Reply::Ports { ports } => ports,
        r => return Err(format!("ports show: {r:?}")),
    };
    let flows = match request(ctl, &Request::FlowsDump)? {
        Reply::Flows { flows } => flows,
        r => return Err(format!("flows dump: {r:?}")),
    };
    let out = report(lun, &seen, &ports, &flows);
    // Frames from the host stack entered at the internal port and left by
    // the af_packet port (at least the written pattern's bytes, in frames of
    // at most 1500 bytes), and tgtd's answers came back the other way.
    let internal = ports.iter().find(|p| p.name == storage::INTERNAL_PORT);
    let wire = ports.iter().find(|p| p.name != storage::INTERNAL_PORT);
    let crossed = internal.zip(wire).is_some_and(|(i, w)| {
        i.rx_packets > (LEN / 1500) as u64
            && w.tx_bytes as usize > LEN
            && w.rx_packets > 100
            && i.tx_packets > 100
    });
    if !crossed {
        return Err(format!(
            "the internal port's counters do not show the iSCSI traffic:\n{out}"
        ));
    }
    Ok(out)
}

/// Waits (60 s at most) for the device's vhost-user socket.
fn wait_for_device(
    stop: &AtomicBool,
    sock: &Path,
    dp: &std::thread::JoinHandle<Result<dataplane::Summary, String>>,
) -> Result<(), String> {
    let t = Instant::now();
    while !sock.exists() {
        if dp.is_finished() {
            return Err("the data plane stopped before the device was ready".into());
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!("{} did not appear within 60 s", sock.display()));
        }
        step_wait(stop)?;
    }
    Ok(())
}

/// What the guest wrote and what the device's counters showed.
struct Seen {
    /// The pattern written and read back twice.
    pattern: Vec<u8>,
    /// Cache (hits, misses) after the write, the first and the second read.
    hits: [(u64, u64); 3],
    /// Random reads done, in how many seconds, and the cache then.
    random: (u64, f64, (u64, u64)),
}

/// The guest's work: a pattern written and flushed, read back twice (the
/// second read must hit the cache), then random reads for 2 s.
fn exercise(stop: &AtomicBool, g: &mut Guest, stats: &Path) -> Result<Seen, String> {
    let pattern: Vec<u8> = {
        let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
        (0..LEN / 8)
            .flat_map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s.to_le_bytes()
            })
            .collect()
    };
    step(
        stop,
        &format!(
            "writes a {} KiB pattern at byte {OFFSET} ({} requests of {} KiB in flight), then FLUSH",
            LEN >> 10,
            LEN / CHUNK,
            CHUNK >> 10
        ),
    )?;
    g.rw(VIRTIO_BLK_T_OUT, OFFSET, Some(&pattern), stop)?;
    g.flush(stop)?;
    // The cache counters once the published stats (every 250 ms) cover the
    // `done` requests completed so far.
    let hits = |when: &str, done: u64| -> Result<(u64, u64), String> {
        let t = Instant::now();
        loop {
            let line = storage::stats_line_of(stats, "disk.sock").unwrap_or_default();
            let n = |k| storage::stat_of(&line, k).unwrap_or(0);
            if n("reads") + n("writes") + n("flushes") >= done {
                return Ok((n("cache_hits"), n("cache_misses")));
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "the device's stats do not show {done} requests ({when}): {line}"
                ));
            }
            step_wait(stop)?;
        }
    };
    let per = (LEN / CHUNK) as u64;
    let h0 = hits("after the write", per + 1)?;
    step(stop, "reads it back (first read)")?;
    let r1 = g.rw(VIRTIO_BLK_T_IN, OFFSET, None, stop)?;
    let h1 = hits("after the first read", 2 * per + 1)?;
    step(stop, "reads it back again (second read)")?;
    let r2 = g.rw(VIRTIO_BLK_T_IN, OFFSET, None, stop)?;
    let h2 = hits("after the second read", 3 * per + 1)?;
    if r1 != pattern || r2 != pattern {
        return Err("the pattern read back differs from the one written".into());
    }
    if h2.0 <= h1.0 {
        return Err(format!(
            "the second read did not hit the cache (hits {} → {})",
            h1.0, h2.0
        ));
    }
    step(stop, "4 KiB random reads, 32 in flight, for 2 s")?;
    let (ops, secs) = g.random_reads(Duration::from_secs(2), stop)?;
    let h3 = hits("after the random reads", 3 * per + 1 + ops)?;
    Ok(Seen {
        pattern,
        hits: [h0, h1, h2],
        random: (ops, secs, h3),
    })
}

/// The demo's closing text: the data check, the cache, the switch's ports
/// and flow table.
fn report(lun: &Path, seen: &Seen, ports: &[PortInfo], flows: &[RuleInfo]) -> String {
    let [h0, h1, h2] = seen.hits;
    let (ops, secs, h3) = seen.random;
    let mut out = String::from("--- what happened ---\n");
    out += &format!(
        "pattern read back twice: identical; found in tgtd's backing file {} at byte {OFFSET}: yes\n",
        lun.display()
    );
    out += &format!(
        "cache: after the write hits {} misses {}; first read → hits {} misses {}; second read → hits {} misses {} \
         (the write-through cache kept the written blocks, so both reads, the second included, are served by the cache)\n",
        h0.0, h0.1, h1.0, h1.1, h2.0, h2.1
    );
    out += &format!(
        "random 4 KiB reads: {ops} in {secs:.2} s = {:.0} IOPS (cache hits {} misses {} by then)\n",
        ops as f64 / secs,
        h3.0,
        h3.1
    );
    out += "switch ports (the iSCSI frames crossed the switch):\n";
    for p in ports {
        out += &format!(
            "  port {} {:<16} rx {:>7} pkts {:>10} bytes | tx {:>7} pkts {:>10} bytes\n",
            p.port, p.name, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes
        );
    }
    out += "flow table:\n";
    for f in flows {
        out += &format!("  {} (packets {}, bytes {})\n", f.rule, f.packets, f.bytes);
    }
    out += "  (DPDK's ring PMD counts packets, not bytes, on the internal port)\n";
    out
}

/// The simulated guest driver on queue 0.
struct Guest {
    fe: MockFrontend,
    cap: u64,
}

impl Guest {
    fn connect(sock: &Path) -> Result<Guest, String> {
        let fe = MockFrontend::connect(sock, 8 << 20, 1, 256)?;
        fe.drivers[0].q.suppress_interrupts();
        let cap = fe.capacity_sectors;
        if cap * 512 < DISK {
            return Err(format!(
                "the device has {cap} sectors, {} expected",
                DISK / 512
            ));
        }
        Ok(Guest { fe, cap })
    }

    /// Waits for `n` completions; fails on a bad status or a 10 s stall.
    fn complete(
        &mut self,
        reqs: &[vfio::blk::mock::BlkReq],
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let mut done = 0;
        let t = Instant::now();
        while done < reqs.len() {
            if let Some(_c) = self.fe.drivers[0].q.pop_used() {
                done += 1;
                continue;
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "{} of {} requests completed in 10 s",
                    done,
                    reqs.len()
                ));
            }
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            std::hint::spin_loop();
        }
        for r in reqs {
            let s = self.fe.drivers[0].status(r);
            if s != 0 {
                return Err(format!("a request completed with virtio-blk status {s}"));
            }
        }
        Ok(())
    }

    /// Writes `data` (or reads LEN bytes) at byte `at`, all chunks in flight.
    fn rw(
        &mut self,
        op: u32,
        at: u64,
        data: Option<&[u8]>,
        stop: &AtomicBool,
    ) -> Result<Vec<u8>, String> {
        let base = self.fe.data_base;
        let mut reqs = Vec::new();
        for off in (0..LEN).step_by(CHUNK) {
            let buf = base + off as u64;
            let sector = (at + off as u64) / 512;
            let b = match data {
                Some(d) => {
                    self.fe
                        .mem
                        .write(buf, &d[off..off + CHUNK])
                        .map_err(|e| format!("guest memory: {e:?}"))?;
                    Buf::r(buf, CHUNK as u32)
                }
                None => {
                    self.fe
                        .mem
                        .write(buf, &[0u8; CHUNK])
                        .map_err(|e| format!("guest memory: {e:?}"))?;
                    Buf::w(buf, CHUNK as u32)
                }
            };
            reqs.push(self.fe.drivers[0].request(op, sector, &[b], false));
        }
        self.fe.kick(0);
        self.complete(&reqs, stop)?;
        let mut out = vec![0u8; LEN];
        if data.is_none() {
            self.fe
                .mem
                .read(base, &mut out)
                .map_err(|e| format!("guest memory: {e:?}"))?;
        }
        Ok(out)
    }

    fn flush(&mut self, stop: &AtomicBool) -> Result<(), String> {
        let r = self.fe.drivers[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
        self.fe.kick(0);
        self.complete(&[r], stop)
    }

    /// 4 KiB reads at random offsets, 32 in flight, for `d`.
    fn random_reads(&mut self, d: Duration, stop: &AtomicBool) -> Result<(u64, f64), String> {
        const QD: usize = 32;
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let base = self.fe.data_base + LEN as u64;
        let blocks = self.cap / 8;
        let mut status = std::collections::HashMap::new();
        for i in 0..QD {
            let r = self.fe.drivers[0].request(
                VIRTIO_BLK_T_IN,
                (next() % blocks) * 8,
                &[Buf::w(base + (i as u64) * 4096, 4096)],
                false,
            );
            status.insert(r.head, (r, i));
        }
        self.fe.kick(0);
        let t = Instant::now();
        let (mut ops, mut last) = (0u64, Instant::now());
        let mut inflight = QD;
        while inflight > 0 {
            let Some((head, _)) = self.fe.drivers[0].q.pop_used() else {
                if last.elapsed() > Duration::from_secs(10) {
                    return Err("random reads stalled for 10 s".into());
                }
                if stop.load(Ordering::Relaxed) {
                    return Err("interrupted".into());
                }
                std::hint::spin_loop();
                continue;
            };
            last = Instant::now();
            let (r, slot) = status.remove(&head).ok_or("unknown completion")?;
            if self.fe.drivers[0].status(&r) != 0 {
                return Err("a random read failed".into());
            }
            ops += 1;
            inflight -= 1;
            if t.elapsed() < d && !stop.load(Ordering::Relaxed) {
                let r = self.fe.drivers[0].request(
                    VIRTIO_BLK_T_IN,
                    (next() % blocks) * 8,
                    &[Buf::w(base + (slot as u64) * 4096, 4096)],
                    false,
                );
                status.insert(r.head, (r, slot));
                inflight += 1;
                self.fe.kick(0);
            }
        }
        Ok((ops, t.elapsed().as_secs_f64()))
    }
}
