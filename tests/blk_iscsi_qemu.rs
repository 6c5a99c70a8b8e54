//! The product's main storage path with real parts end to end: a QEMU guest
//! (TCG) writes a random pattern to its virtio-blk disk with dd, drops its
//! caches and reads it back; the disk is `vswitch blk serve --backend
//! iscsi://...`, whose requests go as SCSI commands over the user-mode iSCSI
//! initiator to a tgtd the test starts on loopback with a file-backed LUN.
//! The pattern must then be in tgtd's backing file at the offset the guest
//! wrote it. A second test kills tgtd (SIGKILL) between two guest phases and
//! starts it again: the session is reinstated (ErrorRecoveryLevel 0) and the
//! guest's second pattern still lands.
//!
//! Needs the Debian packages tgt, qemu-system-x86, linux-image-amd64 and
//! busybox-static; fails with a message naming them when they are missing.

mod vm;

#[path = "../iscsi-initiator/tests/common/mod.rs"]
mod tgt;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use tgt::ip;
use vm::*;

/// `poll`: the poller mode (`--poll`).
fn serve_iscsi(sock: &Path, t: &tgt::Tgtd, log: &Path, poll: &str) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--queues", "2", "--stats-interval", "0"])
        .args(["--poll", poll])
        .arg("--socket")
        .arg(sock)
        .arg("--backend")
        .arg(format!("iscsi://{}/{}/1", t.portal(), t.iqn))
        .arg("--stats-file")
        .arg(sock.with_extension("stats"))
        .stdin(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start vswitch")
}

fn setup(name: &str) -> (std::path::PathBuf, TempDir) {
    TempDir::fresh(&format!("vswitch-blk-iscsi-{name}"))
}

/// Once the server is gone: the guest's pattern is in tgtd's backing file.
fn assert_pattern_in_backing(target: &tgt::Tgtd, pattern: &[u8], ctx: &str) {
    assert!(
        target.backing_bytes(PATTERN_OFFSET, PATTERN_LEN) == pattern,
        "the pattern is not in tgtd's backing file at byte {PATTERN_OFFSET}; {ctx}"
    );
}

#[test]
fn qemu_guest_reads_back_through_iscsi_backend() {
    let (dir, _cleanup) = setup("vm");
    let target = tgt::Tgtd::start("blk-iscsi-vm", DISK_LEN);
    let sock = dir.join("vhost-blk.sock");
    let log = dir.join("vswitch.log");
    let pattern = random_pattern();
    let initrd = build_initramfs(&dir, &pattern, None);
    let server = Reaper::serving(serve_iscsi(&sock, &target, &log, "busy"), &sock);
    let console = boot_guest(&dir, &sock, &initrd, false, "", |_| {});
    let ctx = guest_context(&console, &log);
    assert!(
        !console.contains("GUEST-NO-BLOCK-DEVICE"),
        "no /dev/vda; {ctx}"
    );
    assert!(
        console.contains(&format!("GUEST-SIZE {}", DISK_LEN / 512)),
        "the LU's capacity reaches the guest; {ctx}"
    );
    assert!(
        console.contains("GUEST-PATTERN-OK"),
        "pattern not read back; {ctx}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let stats = std::fs::read_to_string(sock.with_extension("stats")).unwrap();
    assert!(
        stat_u64(&stats, "writes") > 0 && stat_u64(&stats, "reads") > 0,
        "{stats}"
    );
    assert!(
        stat_u64(&stats, "flushes") > 0,
        "fsync became SYNCHRONIZE CACHE: {stats}"
    );
    assert!(
        stat_u64(&stats, "bytes_written") >= PATTERN_LEN as u64,
        "{stats}"
    );
    assert_eq!(stat_u64(&stats, "errors"), 0, "{stats}; {ctx}");
    drop(server);
    assert_pattern_in_backing(&target, &pattern, &ctx);
    assert!(
        target
            .backing_bytes(0, PATTERN_OFFSET as usize)
            .iter()
            .all(|&b| b == 0),
        "bytes before the pattern changed"
    );
}

#[test]
fn qemu_guest_survives_tgtd_restart() {
    let (dir, _cleanup) = setup("restart");
    let mut target = tgt::Tgtd::start("blk-iscsi-restart", DISK_LEN);
    let sock = dir.join("vhost-blk.sock");
    let log = dir.join("vswitch.log");
    let pattern = random_pattern();
    let pattern2: Vec<u8> = pattern.iter().map(|b| b ^ 0xa5).collect();
    let initrd = build_initramfs(&dir, &pattern, Some(&pattern2));
    // The blocking poller (sleeps on the iSCSI socket) through a lost
    // connection and the reconnect.
    let server = Reaper::serving(serve_iscsi(&sock, &target, &log, "wait"), &sock);
    let mut restarted = false;
    let console = boot_guest(&dir, &sock, &initrd, true, "", |out| {
        if !restarted && out.contains("GUEST-PHASE1-DONE") {
            restarted = true;
            // SIGKILL: the connection dies without a logout; same portal and LUN after.
            target.restart();
        }
    });
    check_restart(
        &console, &log, restarted, server, &target, &pattern, &pattern2,
    );
}

/// After a guest run across a tgtd restart: both phases read back, the
/// session was reinstated, and (once the server is gone) both patterns are
/// in tgtd's backing file.
fn check_restart(
    console: &str,
    log: &Path,
    restarted: bool,
    server: Reaper,
    target: &tgt::Tgtd,
    pattern: &[u8],
    pattern2: &[u8],
) {
    let vlog = std::fs::read_to_string(log).unwrap_or_default();
    let ctx = format!("guest console:\n{console}\nvswitch log:\n{vlog}");
    assert!(restarted, "guest never finished phase 1; {ctx}");
    assert!(console.contains("GUEST-PATTERN-OK"), "first pattern; {ctx}");
    assert!(
        console.contains("GUEST-PATTERN2-OK"),
        "second pattern after tgtd restart; {ctx}"
    );
    // blk-iscsi's recovery (blk-iscsi/src/recovery.rs) logs the loss, then
    // "session reinstated: logged in on PORTAL, N commands reissued" once
    // the new connection's login is done (RFC 7143 section 6.3.5: same
    // ISID, TSIH 0, on the same portal).
    let portal = target.portal();
    assert!(
        vlog.contains(&format!("connection to {portal} lost")),
        "the backend saw the connection to {portal} die; {ctx}"
    );
    assert!(
        vlog.contains(&format!("session reinstated: logged in on {portal},")),
        "the backend logged in again on {portal}; {ctx}"
    );
    drop(server);
    assert!(
        target.backing_bytes(PATTERN_OFFSET, PATTERN_LEN) == pattern,
        "first pattern not in the backing file; {ctx}"
    );
    assert!(
        target.backing_bytes(PATTERN2_OFFSET, PATTERN_LEN) == pattern2,
        "second pattern not in the backing file; {ctx}"
    );
}

/// A network namespace and a veth pair, removed on drop.
struct Netns {
    ns: String,
    host_if: String,
    ns_if: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
    }
}

/// tgtd in a fresh network namespace at `SUBNET.2`, behind a veth whose host
/// end (`Netns::host_if`) is left without an address: only a user-space stack
/// on a DPDK port bound to it can reach the target.
fn tgtd_behind_veth(tag: &str, name: &str) -> (Netns, tgt::Tgtd, String) {
    let id = std::process::id();
    let net = Netns {
        ns: format!("vsw{tag}{id}"),
        host_if: format!("v{tag}{}h", id % 10_000_000),
        ns_if: format!("v{tag}{}n", id % 10_000_000),
    };
    let ns_if = net.ns_if.clone();
    let subnet = format!("10.{}.{}", if tag == "ut" { 78 } else { 79 }, id % 250 + 1);
    let tgt_addr = format!("{subnet}.2");
    ip(&["netns", "add", &net.ns]);
    ip(&[
        "link",
        "add",
        &net.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &ns_if,
    ]);
    ip(&["link", "set", &ns_if, "netns", &net.ns]);
    ip(&[
        "-n",
        &net.ns,
        "addr",
        "add",
        &format!("{tgt_addr}/24"),
        "dev",
        &ns_if,
    ]);
    ip(&["-n", &net.ns, "link", "set", &ns_if, "up"]);
    ip(&["-n", &net.ns, "link", "set", "lo", "up"]);
    ip(&["link", "set", &net.host_if, "up"]);
    // smoltcp verifies checksums: the kernel's veth must compute them.
    let eth = Command::new("ip")
        .args([
            "netns", "exec", &net.ns, "ethtool", "-K", &ns_if, "tx", "off",
        ])
        .output()
        .expect("ethtool (Debian package ethtool)");
    assert!(eth.status.success(), "ethtool -K tx off: {eth:?}");
    // The tgtd harness checks the portal from the host: a temporary address.
    ip(&[
        "addr",
        "add",
        &format!("{subnet}.3/24"),
        "dev",
        &net.host_if,
    ]);
    let target = tgt::Tgtd::start_in_netns(name, DISK_LEN, &net.ns, &tgt_addr);
    ip(&["addr", "flush", "dev", &net.host_if]);
    (net, target, subnet)
}

/// Boots the guest on `sock` (served by `server`), checks the pattern round
/// trip and that it is in tgtd's backing file.
fn guest_round_trip(dir: &Path, sock: &Path, log: &Path, server: Child, target: &tgt::Tgtd) {
    let pattern = random_pattern();
    let initrd = build_initramfs(dir, &pattern, None);
    let server = Reaper::serving(server, sock);
    let console = boot_guest(dir, sock, &initrd, false, "", |_| {});
    let ctx = guest_context(&console, log);
    assert!(
        console.contains(&format!("GUEST-SIZE {}", DISK_LEN / 512)),
        "the LU's capacity reaches the guest; {ctx}"
    );
    assert!(
        console.contains("GUEST-PATTERN-OK"),
        "pattern not read back; {ctx}"
    );
    assert!(
        ctx.contains("over user TCP (smoltcp)"),
        "the session ran on the user TCP stack; {ctx}"
    );
    drop(server);
    assert_pattern_in_backing(target, &pattern, &ctx);
}

/// DPDK's af_packet PMD derives its PACKET_FANOUT group id from the pid and
/// the interface index, so two processes of parallel tests can pick the same
/// id and the second probe fails with EINVAL: run the af_packet tests one at
/// a time.
static AF_PACKET: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serve_user_tcp(sock: &Path, log: &Path, target: &tgt::Tgtd, user_tcp: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--queues", "2", "--stats-interval", "0"])
        .arg("--socket")
        .arg(sock)
        .arg("--backend")
        .arg(format!("iscsi://{}/{}/1", target.portal(), target.iqn))
        .arg("--user-tcp")
        .arg(user_tcp)
        .stdin(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("start vswitch")
}

#[test]
fn qemu_guest_on_iscsi_over_user_tcp_on_a_dpdk_port() {
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    // The iSCSI session's TCP is smoltcp on the stack's own DPDK
    // net_af_packet port, bound to the host end of the veth.
    let (dir, _cleanup) = setup("utcp");
    let (net, target, subnet) = tgtd_behind_veth("ut", "blk-iscsi-utcp");
    let (sock, log) = (dir.join("vhost-blk.sock"), dir.join("vswitch.log"));
    let server = serve_user_tcp(
        &sock,
        &log,
        &target,
        &format!(
            "{subnet}.1/24@net_af_packet{},iface={}",
            std::process::id() % 1000,
            net.host_if
        ),
    );
    guest_round_trip(&dir, &sock, &log, server, &target);
    drop(target);
    drop(net);
}

#[test]
fn qemu_guest_on_iscsi_through_the_switch() {
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    // Issue 7's path: guest virtio-blk → vswitch blk serve (iSCSI, smoltcp on
    // a net_memif client port) → memif → `vswitch run` (flow table, NORMAL
    // learning rule) → net_af_packet port on the veth → tgtd in a namespace.
    let (dir, _cleanup) = setup("switch");
    let (net, target, subnet) = tgtd_behind_veth("sw", "blk-iscsi-switch");
    let memif = dir.join("memif.sock");
    let ctl = dir.join("ctl.sock");
    let switch_log = dir.join("switch.log");
    let switch = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .arg("run")
        .arg("--eal")
        .arg(format!(
            "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-blksw-{}",
            std::process::id()
        ))
        .arg("--port")
        .arg(format!("net_memif0,role=server,socket={}", memif.display()))
        .arg("--port")
        .arg(format!("net_af_packet1,iface={}", net.host_if))
        .arg("--control")
        .arg(&ctl)
        .args(["--stats-interval", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&switch_log).unwrap()))
        .spawn()
        .expect("start vswitch run");
    let switch = Reaper(Some(switch));
    let ctl_cmd = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(args)
            .arg("--socket")
            .arg(&ctl)
            .output()
            .unwrap()
    };
    let t = std::time::Instant::now();
    while !ctl_cmd(&["ports", "show", "--json"]).status.success() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "switch did not come up: {}",
            std::fs::read_to_string(&switch_log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (sock, log) = (dir.join("vhost-blk.sock"), dir.join("vswitch.log"));
    let server = serve_user_tcp(
        &sock,
        &log,
        &target,
        &format!(
            "{subnet}.1/24@net_memif0,role=client,socket={}",
            memif.display()
        ),
    );
    guest_round_trip(&dir, &sock, &log, server, &target);
    // The bytes crossed the switch: the memif port received the initiator's
    // frames, the af_packet port sent them, and the flow table's rule counted them.
    let ports = String::from_utf8_lossy(&ctl_cmd(&["ports", "show", "--json"]).stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&ports).expect("ports show --json");
    let port = |i: u64, k: &str| {
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == i)
            .and_then(|p| p[k].as_u64())
            .unwrap_or(0)
    };
    // The guest wrote 1 MiB: far more than 1000 frames each way.
    assert!(
        port(1, "tx_bytes") > PATTERN_LEN as u64 && port(1, "tx_packets") > 500,
        "the write data left through the af_packet port: {ports}"
    );
    let flows = String::from_utf8_lossy(&ctl_cmd(&["flows", "dump"]).stdout).to_string();
    assert!(flows.contains("NORMAL"), "{flows}");
    drop(switch);
    drop(target);
    drop(net);
}

/// `vswitch run` with everything in one process: the switch (af_packet port
/// on the veth + the internal port of the host stack), the host TCP stack and
/// the vhost-user-blk device on iscsi:// with the cache, one polling core.
fn one_process_system(dir: &Path, net: &Netns, subnet: &str, target: &tgt::Tgtd) -> Child {
    let log = std::fs::File::create(dir.join("vswitch.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .arg("run")
        .arg("--eal")
        .arg(format!(
            "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-one-{}",
            std::process::id()
        ))
        .arg("--port")
        .arg(format!("net_af_packet0,iface={}", net.host_if))
        .arg("--host-ip")
        .arg(format!("{subnet}.1/24"))
        .arg("--blk")
        .arg(format!(
            "{}=iscsi://{}/{}/1",
            dir.join("vhost-blk.sock").display(),
            target.portal(),
            target.iqn
        ))
        .args(["--blk-queues", "2", "--blk-cache", "16M"])
        .arg("--blk-stats-file")
        .arg(dir.join("blk.stats"))
        .arg("--control")
        .arg(dir.join("ctl.sock"))
        .args(["--stats-interval", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start vswitch run")
}

/// CPU time (user + system) process `pid` used over `window`, as a share
/// of one CPU (`/proc/PID/stat` fields 14 and 15, in clock ticks).
fn cpu_share(pid: u32, window: std::time::Duration) -> f64 {
    let ticks = || -> u64 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
        // Fields after the command name, which ends at the last ')'.
        let rest = &st[st.rfind(')').expect("stat format") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let t0 = ticks();
    std::thread::sleep(window);
    (ticks() - t0) as f64 / hz / window.as_secs_f64()
}

#[test]
fn qemu_guest_on_the_one_process_system() {
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    // Issue 7's whole path in ONE process: guest virtio-blk → vhost-user-blk
    // → cache → iSCSI → smoltcp → internal port → flow table (NORMAL) →
    // net_af_packet port → veth → tgtd in a namespace.
    let (dir, _cleanup) = setup("one");
    let (net, target, subnet) = tgtd_behind_veth("op", "blk-iscsi-one");
    let sock = dir.join("vhost-blk.sock");
    let stats = dir.join("blk.stats");
    let ctl = dir.join("ctl.sock");
    let log = dir.join("vswitch.log");
    let pattern = random_pattern();
    let initrd = build_initramfs(&dir, &pattern, None);
    let server = Reaper::serving(one_process_system(&dir, &net, &subnet, &target), &sock);
    let console = boot_guest(&dir, &sock, &initrd, false, "", |_| {});
    let ctx = || guest_context(&console, &log);
    assert!(
        console.contains(&format!("GUEST-SIZE {}", DISK_LEN / 512)),
        "the LU's capacity reaches the guest; {}",
        ctx()
    );
    assert!(
        console.contains("GUEST-PATTERN-OK") && console.contains("GUEST-REREAD-OK"),
        "pattern not read back twice; {}",
        ctx()
    );
    assert!(
        ctx().contains("over the host stack (smoltcp)"),
        "the session ran on the host stack; {}",
        ctx()
    );
    // The guest reads the 1 MiB pattern twice (GUEST-PATTERN-OK, then
    // GUEST-REREAD-OK after dropping its page cache): 256 blocks each. At
    // least twice that many hits means the second read was served by the
    // cache too (the write-through cache kept the written blocks, so the first
    // read hits as well). The file is republished every 250 ms: wait for it.
    let blocks = (PATTERN_LEN / 4096) as u64;
    let t = std::time::Instant::now();
    let (st, hits) = loop {
        let st = std::fs::read_to_string(&stats).unwrap();
        let hits = stat_u64(&st, "cache_hits");
        if hits >= 2 * blocks || t.elapsed() > std::time::Duration::from_secs(10) {
            break (st, hits);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        hits >= 2 * blocks,
        "both reads, the second included, are served by the cache: {hits} hits; {st}"
    );
    assert_eq!(stat_u64(&st, "errors"), 0, "{st}");
    // The frames crossed the switch: the internal port received the
    // initiator's frames, the af_packet port sent them, NORMAL counted them.
    let ctl_cmd = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(args)
            .arg("--socket")
            .arg(&ctl)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let ports = ctl_cmd(&["ports", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ports).expect("ports show --json");
    let port = |name: &str, k: &str| {
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str().is_some_and(|n| n.starts_with(name)))
            .and_then(|p| p[k].as_u64())
            .unwrap_or(0)
    };
    assert!(
        port("net_af_packet", "tx_bytes") > PATTERN_LEN as u64
            && port("net_af_packet", "tx_packets") > 500,
        "the write data left through the af_packet port: {ports}"
    );
    assert!(
        port("net_ring_host", "rx_packets") > 500 && port("net_ring_host", "tx_packets") > 100,
        "the iSCSI frames entered and left the switch at the internal port: {ports}"
    );
    // The ring PMD counts no bytes; the switch reports the host stack's: the
    // 1 MiB the guest wrote entered at the internal port, the answers left
    // by it (at least the SCSI responses' 48-byte headers).
    assert!(
        port("net_ring_host", "rx_bytes") > PATTERN_LEN as u64
            && port("net_ring_host", "tx_bytes") > 48 * 100,
        "the internal port counts bytes: {ports}"
    );
    let flows = ctl_cmd(&["flows", "dump", "--json"]);
    let f: serde_json::Value = serde_json::from_str(&flows).expect("flows dump --json");
    let normal = f["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"].as_str().is_some_and(|r| r.contains("NORMAL")))
        .unwrap_or_else(|| panic!("no NORMAL rule: {flows}"));
    // The write-through cache kept what the guest wrote, so its reads never
    // left the host: the flow table saw the write data (and the commands).
    assert!(
        normal["packets"].as_u64().unwrap() > 500
            && normal["bytes"].as_u64().unwrap() > PATTERN_LEN as u64,
        "the flow table's NORMAL rule carried the iSCSI frames: {flows}"
    );
    // The default poll mode with storage on one lcore blocks the core when
    // the switch and the devices are idle (the guest is gone): over a
    // second it uses a small fraction of a CPU, where a spinning core uses
    // all of it.
    assert!(
        ctx().contains("blocks on the guests' kicks and the ports' rx"),
        "the core serves storage in wait mode; {}",
        ctx()
    );
    let pid = server.0.as_ref().unwrap().id();
    let busy = cpu_share(pid, std::time::Duration::from_secs(1));
    assert!(
        busy < 0.3,
        "an idle one-process system uses {busy:.2} of a CPU: its core spins instead of blocking"
    );
    drop(server);
    assert_pattern_in_backing(&target, &pattern, &ctx());
    drop(target);
    drop(net);
}

#[test]
fn no_argument_demo_runs_the_whole_path() {
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    for (tool, pkg) in [("/usr/sbin/tgtd", "tgt"), ("/usr/sbin/tgtadm", "tgt")] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: install the Debian package `{pkg}`"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .stdin(Stdio::null())
        .output()
        .expect("run vswitch");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let all = format!("{out}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{all}");
    assert!(out.contains("the whole path in one process"), "{all}");
    assert!(
        out.contains("pattern read back twice: identical; found in tgtd's backing file"),
        "{all}"
    );
    assert!(
        out.contains("both reads, the second included, are served by the cache"),
        "{all}"
    );
    assert!(out.contains("IOPS"), "{all}");
    assert!(
        out.contains("net_ring_host0") && out.contains("actions=NORMAL"),
        "{all}"
    );
    assert!(out.contains("cleaned up"), "{all}");
    // Nothing is left behind.
    let ns = String::from_utf8_lossy(&Command::new("ip").args(["netns"]).output().unwrap().stdout)
        .to_string();
    let leftover: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("vswdemo")))
        .filter(|n| ns.contains(n))
        .collect();
    assert!(leftover.is_empty(), "namespaces left behind: {leftover:?}");
}

/// One request on queue 0 of a simulated guest, waited for (10 s).
fn guest_io(
    fe: &mut vfio::vhost_user::mock_frontend::MockFrontend,
    op: u32,
    sector: u64,
    len: u32,
) {
    use vfio::virtq::mock::Buf;
    let buf = fe.data_base;
    let data = if op == vfio::blk::VIRTIO_BLK_T_IN {
        Buf::w(buf, len)
    } else {
        Buf::r(buf, len)
    };
    let r = fe.drivers[0].request(op, sector, &[data], false);
    fe.kick(0);
    let t = std::time::Instant::now();
    while fe.drivers[0].q.pop_used().is_none() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "request not completed in 10 s"
        );
        std::thread::yield_now();
    }
    assert_eq!(fe.drivers[0].status(&r), 0, "virtio-blk status");
}

#[test]
fn two_iscsi_devices_share_the_host_stack() {
    use vfio::blk::{VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
    use vfio::vhost_user::mock_frontend::MockFrontend;
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    // Two vhost-user-blk devices, two iSCSI sessions, two TCP connections of
    // the one host stack, one internal port, one switch core.
    // On jumbo frames (MTU 9000 on both ends of the veth, --host-mtu 9000):
    // 64 KiB transfers cross the switch in ~9 KB frames.
    let (dir, _cleanup) = setup("two");
    let (net, target, subnet) = tgtd_behind_veth("tw", "blk-iscsi-two");
    ip(&["link", "set", &net.host_if, "mtu", "9000"]);
    ip(&["-n", &net.ns, "link", "set", &net.ns_if, "mtu", "9000"]);
    nft_in(&net.ns, &["add", "table", "inet", "jumbo"]);
    for hook in ["input", "output"] {
        let chain = format!("{{ type filter hook {hook} priority 0; }}");
        nft_in(&net.ns, &["add", "chain", "inet", "jumbo", hook, &chain]);
        nft_in(
            &net.ns,
            &[
                "add", "rule", "inet", "jumbo", hook, "meta", "length", ">", "1500", "counter",
            ],
        );
    }
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    let log = dir.join("vswitch.log");
    let lun = format!("iscsi://{}/{}/1", target.portal(), target.iqn);
    let server = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .arg("run")
        .arg("--eal")
        .arg(format!(
            "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-two-{}",
            std::process::id()
        ))
        .arg("--port")
        .arg(format!(
            "net_af_packet0,iface={},framesz=9216,blocksz=36864",
            net.host_if
        ))
        .arg("--host-ip")
        .arg(format!("{subnet}.1/24"))
        .args(["--host-mtu", "9000"])
        .arg("--blk")
        .arg(format!("{}={lun}", a.display()))
        .arg("--blk")
        .arg(format!("{}={lun}", b.display()))
        .args(["--no-control", "--stats-interval", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start vswitch run");
    let mut server = Reaper(Some(server));
    wait_for_socket(&a, server.0.as_mut().unwrap());
    wait_for_socket(&b, server.0.as_mut().unwrap());
    let vlog = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        vlog().matches("over the host stack (smoltcp)").count(),
        2,
        "both sessions on the host stack: {}",
        vlog()
    );
    let mut fa = MockFrontend::connect(&a, 4 << 20, 1, 128).expect("connect a");
    let mut fb = MockFrontend::connect(&b, 4 << 20, 1, 128).expect("connect b");
    const LEN: usize = 64 << 10;
    let pa: Vec<u8> = (0..LEN).map(|i| (i * 7 + 1) as u8).collect();
    let pb: Vec<u8> = (0..LEN).map(|i| (i * 13 + 5) as u8).collect();
    let (sa, sb) = (2048u64, 4096u64);
    fa.mem.write(fa.data_base, &pa).unwrap();
    guest_io(&mut fa, VIRTIO_BLK_T_OUT, sa, LEN as u32);
    fb.mem.write(fb.data_base, &pb).unwrap();
    guest_io(&mut fb, VIRTIO_BLK_T_OUT, sb, LEN as u32);
    // Each device reads what the other wrote (same LU, two sessions).
    let mut got = vec![0u8; LEN];
    guest_io(&mut fb, VIRTIO_BLK_T_IN, sa, LEN as u32);
    fb.mem.read(fb.data_base, &mut got).unwrap();
    assert!(got == pa, "device b reads device a's pattern; {}", vlog());
    guest_io(&mut fa, VIRTIO_BLK_T_IN, sb, LEN as u32);
    fa.mem.read(fa.data_base, &mut got).unwrap();
    assert!(got == pb, "device a reads device b's pattern; {}", vlog());
    // tgtd's side counted the IP packets above 1500 bytes it received: the
    // host stack's write data, 128 KiB in segments of up to 8960 bytes (at
    // least 14 of them). Its output hook sees its own segments before GSO
    // cuts them to our MSS, so only their bytes are checked; that the reads
    // came back whole shows the switch carried them in jumbo frames.
    let jumbo = nft_in(&net.ns, &["list", "table", "inet", "jumbo"]);
    let counts: Vec<u64> = jumbo
        .split("counter packets ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect();
    let out_bytes: u64 = jumbo
        .split("bytes ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        counts.len() == 2 && counts[0] >= 14 && out_bytes >= 2 * LEN as u64,
        "jumbo frames crossed the switch: {jumbo}; {}",
        vlog()
    );
    drop((fa, fb));
    drop(server);
    assert!(
        target.backing_bytes(sa * 512, LEN) == pa,
        "pattern a in tgtd's file"
    );
    assert!(
        target.backing_bytes(sb * 512, LEN) == pb,
        "pattern b in tgtd's file"
    );
    drop(target);
    drop(net);
}

/// `nft ARGS` inside namespace `ns`; its stdout.
fn nft_in(ns: &str, args: &[&str]) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .output()
        .expect("nft (Debian package nftables)");
    assert!(
        o.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Drops `percent`% of the TCP segments each way inside the namespace
/// (nftables `numgen random`; this kernel has no `sch_netem`).
fn make_lossy(ns: &str, percent: u32) {
    nft_in(ns, &["add", "table", "inet", "impair"]);
    let pct = percent.to_string();
    for hook in ["input", "output"] {
        nft_in(
            ns,
            &[
                "add",
                "chain",
                "inet",
                "impair",
                hook,
                &format!("{{ type filter hook {hook} priority 0; }}"),
            ],
        );
        nft_in(
            ns,
            &[
                "add", "rule", "inet", "impair", hook, "meta", "l4proto", "tcp", "numgen",
                "random", "mod", "100", "<", &pct, "counter", "drop",
            ],
        );
    }
}

/// Segments [`make_lossy`] dropped so far.
fn dropped_in(ns: &str) -> u64 {
    nft_in(ns, &["list", "table", "inet", "impair"])
        .split("counter packets ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn qemu_guest_on_the_one_process_system_over_a_lossy_link() {
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    // The whole path in one process, with 3% of the TCP segments dropped
    // each way between the switch's af_packet port and tgtd: smoltcp
    // retransmits, the iSCSI session carries on, and the guest's data is
    // complete and correct, in the guest and in tgtd's file.
    let (dir, _cleanup) = setup("lossy");
    let (net, target, subnet) = tgtd_behind_veth("ls", "blk-iscsi-lossy");
    make_lossy(&net.ns, 3);
    let sock = dir.join("vhost-blk.sock");
    let log = dir.join("vswitch.log");
    let pattern = random_pattern();
    let initrd = build_initramfs(&dir, &pattern, None);
    let server = Reaper::serving(one_process_system(&dir, &net, &subnet, &target), &sock);
    let console = boot_guest(&dir, &sock, &initrd, false, "", |_| {});
    let ctx = || guest_context(&console, &log);
    assert!(
        console.contains("GUEST-PATTERN-OK") && console.contains("GUEST-REREAD-OK"),
        "pattern not read back over the lossy link; {}",
        ctx()
    );
    let lost = dropped_in(&net.ns);
    assert!(
        lost > 0,
        "the impairment dropped nothing: the test proved nothing; {}",
        ctx()
    );
    eprintln!("TCP segments dropped between the switch and tgtd: {lost}");
    drop(server);
    assert_pattern_in_backing(&target, &pattern, &ctx());
    drop(target);
    drop(net);
}

#[test]
fn qemu_guest_on_the_one_process_system_survives_tgtd_restart() {
    let _serial = AF_PACKET.lock().unwrap_or_else(|e| e.into_inner());
    // The whole path in one process; tgtd is killed (SIGKILL, no logout)
    // between the guest's two write/read phases and started again: the
    // session over the host stack is reinstated and the second pattern
    // lands too.
    let (dir, _cleanup) = setup("onerestart");
    let (net, mut target, subnet) = tgtd_behind_veth("rs", "blk-iscsi-one-restart");
    let sock = dir.join("vhost-blk.sock");
    let log = dir.join("vswitch.log");
    let pattern = random_pattern();
    let pattern2: Vec<u8> = pattern.iter().map(|b| b ^ 0x5a).collect();
    let initrd = build_initramfs(&dir, &pattern, Some(&pattern2));
    let server = Reaper::serving(one_process_system(&dir, &net, &subnet, &target), &sock);
    let mut restarted = false;
    let console = boot_guest(&dir, &sock, &initrd, true, "", |out| {
        if !restarted && out.contains("GUEST-PHASE1-DONE") {
            restarted = true;
            // The harness checks the new portal from the host: a temporary
            // address on the host end, as at set-up.
            ip(&[
                "addr",
                "add",
                &format!("{subnet}.3/24"),
                "dev",
                &net.host_if,
            ]);
            target.restart();
            ip(&["addr", "flush", "dev", &net.host_if]);
        }
    });
    check_restart(
        &console, &log, restarted, server, &target, &pattern, &pattern2,
    );
    drop(target);
    drop(net);
}
