//! A real VM on our vhost-user-blk server: QEMU (TCG) boots the host's Debian
//! kernel with a busybox initramfs built here at run time; the guest loads the
//! virtio modules, writes a random pattern to /dev/vda with dd, drops its
//! caches, reads the pattern back and compares; the test then checks the
//! pattern is in the backing file. The same test against
//! `qemu-storage-daemon` (QEMU's own vhost-user-blk export) shows the harness
//! itself is sound.
//!
//! Needs the Debian packages qemu-system-x86 (with qemu-system-common's
//! qemu-storage-daemon), linux-image-amd64 and busybox-static; fails with a
//! message naming them when they are missing.

mod vm;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vm::*;

fn vswitch_server(sock: &Path, disk: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args([
            "blk",
            "serve",
            "--queues",
            "2",
            "--stats-interval",
            "0",
            "--socket",
        ])
        .arg(sock)
        .arg("--backend")
        .arg(format!("file:{}", disk.display()))
        .arg("--stats-file")
        .arg(sock.with_extension("stats"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start vswitch")
}

fn guest_test(
    name: &str,
    start_server: impl FnOnce(&Path, &Path) -> Child,
    check_serial: Option<&str>,
    dev_opts: &str,
) {
    let (dir, _cleanup) = TempDir::fresh(&format!("vswitch-blk-qemu-{name}"));
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; DISK_LEN as usize]).unwrap();
    let sock = dir.join("vhost-blk.sock");
    let pattern = random_pattern();
    let initrd = build_initramfs(&dir, &pattern, None);
    let mut server = Reaper(Some(start_server(&sock, &disk)));
    wait_for_socket(&sock, server.0.as_mut().unwrap());
    let console = boot_guest(&dir, &sock, &initrd, false, dev_opts, |_| {});
    let ctx = format!("{name}: guest console:\n{console}");
    assert!(
        !console.contains("GUEST-NO-BLOCK-DEVICE"),
        "no /dev/vda block device; {ctx}"
    );
    assert!(
        !console.contains("GUEST-INSMOD-FAIL"),
        "module load failed; {ctx}"
    );
    assert!(
        console.contains(&format!("GUEST-SIZE {}", DISK_LEN / 512)),
        "wrong capacity; {ctx}"
    );
    assert!(
        console.contains("GUEST-PATTERN-OK"),
        "pattern not read back; {ctx}"
    );
    assert!(
        console.contains("GUEST-REREAD-OK"),
        "pattern not read back the second time; {ctx}"
    );
    // The guest's negotiated feature bits, as a string of 0/1 by bit number.
    let features = console
        .lines()
        .find_map(|l| l.trim().strip_prefix("GUEST-FEATURES "))
        .unwrap_or_else(|| panic!("no feature line; {ctx}"))
        .to_string();
    let packed = features.as_bytes().get(34) == Some(&b'1');
    if name == "vswitch-packed" {
        assert!(
            console.contains("GUEST-LBS 4096"),
            "--block-size 4096 reaches the guest; {ctx}"
        );
    } else {
        assert!(
            console.contains("GUEST-LBS 512"),
            "512-byte logical blocks; {ctx}"
        );
    }
    assert_eq!(
        packed,
        dev_opts.contains("packed=on"),
        "VIRTIO_F_RING_PACKED negotiated: {features}; {ctx}"
    );
    if let Some(serial) = check_serial {
        assert!(
            console.contains(&format!("GUEST-SERIAL {serial}")),
            "GET_ID serial; {ctx}"
        );
        assert!(console.contains("GUEST-QUEUES 2"), "two queues; {ctx}");
    }
    let stats_file = sock.with_extension("stats");
    if stats_file.exists() {
        // `vswitch blk stats` shows what the guest did (published every second).
        std::thread::sleep(Duration::from_millis(1500));
        let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(["blk", "stats", "--stats-file"])
            .arg(&stats_file)
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "vswitch blk stats failed: {table}");
        let row: Vec<u64> = table
            .lines()
            .find(|l| l.starts_with("vhost-blk"))
            .unwrap_or_else(|| panic!("no device row in:\n{table}"))
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        // reads, writes, flushes, discards, MiB read, MiB written, errors, resets
        assert!(
            row[0] > 0 && row[1] > 0 && row[2] > 0,
            "guest reads, writes and flushes counted: {table}"
        );
        assert!(row[5] >= 1, "at least the 1 MiB pattern written: {table}");
        assert_eq!((row[6], row[7]), (0, 0), "no errors, no resets: {table}");
        if name.contains("cache") {
            // The pattern was read twice after the write; with the cache on,
            // the second read (and, write-allocate, the first) are hits.
            let cache = |k: &str| -> u64 {
                let at = table
                    .find(&format!("{k} "))
                    .unwrap_or_else(|| panic!("no cache {k} in:\n{table}"));
                table[at + k.len() + 1..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let blocks = (PATTERN_LEN / 4096) as u64;
            eprintln!("{name}: {table}");
            assert!(
                cache("hits") >= 2 * blocks,
                "both reads of the {blocks}-block pattern are cache hits: {table}"
            );
            assert_eq!(cache("bad_entries"), 0, "{table}");
        }
    }
    drop(server);
    let on_disk = std::fs::read(&disk).unwrap();
    let at = PATTERN_OFFSET as usize;
    assert!(
        on_disk[at..at + PATTERN_LEN] == pattern[..],
        "{name}: the pattern is not in the backing file"
    );
    assert!(
        on_disk[..at].iter().all(|&b| b == 0),
        "{name}: bytes before the pattern changed"
    );
}

#[test]
fn qemu_guest_reads_back_through_vswitch_blk() {
    guest_test("vswitch", vswitch_server, Some("vswitch-blk0"), "");
}

#[test]
fn qemu_guest_reads_back_through_the_write_back_cache() {
    cached_guest_test("writeback");
}

#[test]
fn qemu_guest_reads_back_through_the_write_through_cache() {
    cached_guest_test("writethrough");
}

fn cached_guest_test(mode: &'static str) {
    guest_test(
        &format!("vswitch-cache-{mode}"),
        move |sock, disk| {
            Command::new(env!("CARGO_BIN_EXE_vswitch"))
                .args(["blk", "serve", "--queues", "2", "--stats-interval", "0"])
                .args(["--cache", "16M", "--cache-mode", mode])
                .arg("--socket")
                .arg(sock)
                .arg("--backend")
                .arg(format!("file:{}", disk.display()))
                .arg("--stats-file")
                .arg(sock.with_extension("stats"))
                .stdin(Stdio::null())
                .spawn()
                .expect("start vswitch")
        },
        Some("vswitch-blk0"),
        "",
    );
}

#[test]
fn qemu_guest_on_packed_virtqueues_with_4k_blocks() {
    guest_test(
        "vswitch-packed",
        |sock, disk| {
            Command::new(env!("CARGO_BIN_EXE_vswitch"))
                .args([
                    "blk",
                    "serve",
                    "--queues",
                    "2",
                    "--block-size",
                    "4096",
                    "--stats-interval",
                    "0",
                    // The sleeping poller: packed-ring kick enabling with a
                    // real guest, and the io_uring file backend's wait fd.
                    "--poll",
                    "wait",
                ])
                .arg("--socket")
                .arg(sock)
                .arg("--backend")
                .arg(format!("file:{}", disk.display()))
                .stdin(Stdio::null())
                .spawn()
                .expect("start vswitch")
        },
        Some("vswitch-blk0"),
        ",packed=on",
    );
}

#[test]
fn qemu_guest_reads_back_through_qemu_storage_daemon_reference() {
    let qsd = need("/usr/bin/qemu-storage-daemon", "qemu-system-common");
    guest_test(
        "qsd",
        |sock, disk| {
            Command::new(qsd)
                .arg("--blockdev")
                .arg(format!("driver=file,node-name=disk0,filename={},cache.direct=off", disk.display()))
                .arg("--export")
                .arg(format!(
                    "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path={},writable=on,num-queues=2",
                    sock.display()
                ))
                .stdin(Stdio::null())
                .spawn()
                .expect("start qemu-storage-daemon")
        },
        None,
        "",
    );
}

#[test]
fn qemu_guest_survives_vswitch_restart() {
    // QEMU's chardev reconnects (reconnect=1); the back end is killed after
    // the guest's first pattern and started again; the guest's second write
    // and read go through the new process.
    let (dir, _cleanup) = TempDir::fresh("vswitch-blk-qemu-restart");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; DISK_LEN as usize]).unwrap();
    let sock = dir.join("vhost-blk.sock");
    let pattern = random_pattern();
    let pattern2: Vec<u8> = pattern.iter().map(|b| b ^ 0x5a).collect();
    let initrd = build_initramfs(&dir, &pattern, Some(&pattern2));
    let server = Arc::new(Mutex::new(Reaper(Some(vswitch_server(&sock, &disk)))));
    wait_for_socket(&sock, server.lock().unwrap().0.as_mut().unwrap());
    let mut restarted = false;
    let console = boot_guest(&dir, &sock, &initrd, true, "", |out| {
        if !restarted && out.contains("GUEST-PHASE1-DONE") {
            restarted = true;
            let mut s = server.lock().unwrap();
            let mut old = s.0.take().unwrap();
            old.kill().unwrap();
            old.wait().unwrap();
            s.0 = Some(vswitch_server(&sock, &disk));
        }
    });
    let ctx = format!("guest console:\n{console}");
    assert!(restarted, "guest never finished phase 1; {ctx}");
    assert!(console.contains("GUEST-PATTERN-OK"), "first pattern; {ctx}");
    assert!(
        console.contains("GUEST-PATTERN2-OK"),
        "second pattern after the restart; {ctx}"
    );
    drop(server);
    let on_disk = std::fs::read(&disk).unwrap();
    let (a, b) = (PATTERN_OFFSET as usize, PATTERN2_OFFSET as usize);
    assert!(
        on_disk[a..a + PATTERN_LEN] == pattern[..],
        "first pattern not in the backing file"
    );
    assert!(
        on_disk[b..b + PATTERN_LEN] == pattern2[..],
        "second pattern not in the backing file"
    );
}
