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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PATTERN_LEN: usize = 1 << 20;
/// The guest writes the pattern at this byte offset of the disk.
const PATTERN_OFFSET: u64 = 4 << 20;
const DISK_LEN: u64 = 64 << 20;
/// Where the reconnect test's second pattern goes.
const PATTERN2_OFFSET: u64 = 8 << 20;
const MODULES: [&str; 6] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
];

/// Kills a child process when the test ends, however it ends.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Removes the temp dir when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn need(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install {package})"
    );
    p
}

fn kernel() -> (PathBuf, PathBuf) {
    let mut ks: Vec<PathBuf> = std::fs::read_dir("/boot")
        .expect("/boot: install the Debian package `linux-image-amd64`")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    ks.sort();
    let k = ks
        .pop()
        .expect("no /boot/vmlinuz-*: install the Debian package `linux-image-amd64`");
    let ver = k
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    let modules = PathBuf::from(format!("/lib/modules/{ver}"));
    assert!(
        modules.exists(),
        "{} missing: install the Debian package `linux-image-amd64`",
        modules.display()
    );
    (k, modules)
}

fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_module(&p, name) {
                return Some(f);
            }
        } else if p
            .file_name()
            .is_some_and(|n| n == format!("{name}.ko").as_str())
        {
            return Some(p);
        }
    }
    None
}

/// A newc cpio archive writer (the initramfs format).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(hdr.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
        self.out.extend_from_slice(data);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

fn init_script(reconnect: bool) -> String {
    let phase2 = if reconnect {
        format!(
            r#"echo GUEST-PHASE1-DONE
sleep 6
dd if=/pattern2 of=/dev/vda bs=4096 seek={seek2} conv=fsync 2>/dev/null || echo GUEST-WRITE2-FAIL
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/vda of=/readback2 bs=4096 skip={seek2} count={count} 2>/dev/null || echo GUEST-READ2-FAIL
if cmp /pattern2 /readback2; then echo GUEST-PATTERN2-OK; else echo GUEST-PATTERN2-MISMATCH; fi
"#,
            seek2 = PATTERN2_OFFSET / 4096,
            count = PATTERN_LEN / 4096
        )
    } else {
        String::new()
    };
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {mods}; do insmod /mod/$m.ko || echo "GUEST-INSMOD-FAIL $m"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done
if [ ! -b /dev/vda ]; then echo GUEST-NO-BLOCK-DEVICE; poweroff -f; fi
echo "GUEST-SIZE $(cat /sys/block/vda/size)"
echo "GUEST-SERIAL $(cat /sys/block/vda/serial)"
echo "GUEST-QUEUES $(ls /sys/block/vda/mq | wc -l)"
echo "GUEST-FEATURES $(cat /sys/block/vda/device/features)"
echo "GUEST-LBS $(cat /sys/block/vda/queue/logical_block_size)"
dd if=/pattern of=/dev/vda bs=4096 seek={seek} conv=fsync 2>/dev/null || echo GUEST-WRITE-FAIL
sync
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/vda of=/readback bs=4096 skip={seek} count={count} 2>/dev/null || echo GUEST-READ-FAIL
if cmp /pattern /readback; then echo GUEST-PATTERN-OK; else echo GUEST-PATTERN-MISMATCH; fi
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/vda of=/reread bs=4096 skip={seek} count={count} 2>/dev/null || echo GUEST-REREAD-FAIL
if cmp /pattern /reread; then echo GUEST-REREAD-OK; else echo GUEST-REREAD-MISMATCH; fi
rm -f /reread
{phase2}poweroff -f
"#,
        mods = MODULES.join(" "),
        seek = PATTERN_OFFSET / 4096,
        count = PATTERN_LEN / 4096
    )
}

fn random_pattern() -> Vec<u8> {
    let mut s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    (0..PATTERN_LEN / 8)
        .flat_map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s.to_le_bytes()
        })
        .collect()
}

fn build_initramfs(dir: &Path, pattern: &[u8], pattern2: Option<&[u8]>) -> PathBuf {
    let busybox = need("/bin/busybox", "busybox-static");
    let (_, modules) = kernel();
    let mut c = Cpio {
        out: Vec::new(),
        ino: 0,
    };
    for d in ["bin", "dev", "mod", "proc", "sys"] {
        c.entry(d, 0o040755, &[], (0, 0));
    }
    c.entry("dev/console", 0o020600, &[], (5, 1));
    let bb = std::fs::read(busybox).unwrap();
    assert!(
        !bb.windows(14).any(|w| w == b"/lib64/ld-linu"),
        "/bin/busybox is dynamically linked: install the Debian package `busybox-static`"
    );
    c.entry("bin/busybox", 0o100755, &bb, (0, 0));
    c.entry(
        "init",
        0o100755,
        init_script(pattern2.is_some()).as_bytes(),
        (0, 0),
    );
    c.entry("pattern", 0o100644, pattern, (0, 0));
    if let Some(p2) = pattern2 {
        c.entry("pattern2", 0o100644, p2, (0, 0));
    }
    for m in MODULES {
        let f = find_module(&modules, m).unwrap_or_else(|| {
            panic!(
                "module {m}.ko not found under {}: install `linux-image-amd64`",
                modules.display()
            )
        });
        c.entry(
            &format!("mod/{m}.ko"),
            0o100644,
            &std::fs::read(f).unwrap(),
            (0, 0),
        );
    }
    c.entry("TRAILER!!!", 0, &[], (0, 0));
    let p = dir.join("initramfs.cpio");
    std::fs::write(&p, c.out).unwrap();
    p
}

fn wait_for_socket(sock: &Path, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        if let Ok(Some(st)) = server.try_wait() {
            panic!("vhost-user server exited early: {st}");
        }
        assert!(
            Instant::now() < deadline,
            "server did not create {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Boots the guest against the vhost-user socket; returns its console output.
fn boot_guest(
    dir: &Path,
    sock: &Path,
    initrd: &Path,
    reconnect: bool,
    dev_opts: &str,
    mut watch: impl FnMut(&str),
) -> String {
    let qemu = need("/usr/bin/qemu-system-x86_64", "qemu-system-x86");
    let (kernel, _) = kernel();
    let mut child = Command::new(qemu)
        .args(["-machine", "pc,accel=tcg", "-m", "512M", "-smp", "2"])
        .args([
            "-object",
            "memory-backend-memfd,id=mem,size=512M,share=on",
            "-numa",
            "node,memdev=mem",
        ])
        .arg("-chardev")
        .arg(format!(
            "socket,id=vublk,path={}{}",
            sock.display(),
            if reconnect { ",reconnect=1" } else { "" }
        ))
        .arg("-device")
        .arg(format!(
            "vhost-user-blk-pci,chardev=vublk,num-queues=2{dev_opts}"
        ))
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet loglevel=3"])
        .args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64 (Debian package qemu-system-x86)");
    let out = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    for mut pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
    ] {
        let out = Arc::clone(&out);
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }));
    }
    let mut guard = Reaper(Some(child));
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Some(st) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            let _ = st;
            break;
        }
        let so_far = out.lock().unwrap().clone();
        watch(&so_far);
        if Instant::now() > deadline {
            drop(guard);
            panic!(
                "guest did not power off within 240 s; console:\n{}",
                out.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    guard.0 = None;
    for r in readers {
        let _ = r.join();
    }
    let s = out.lock().unwrap().clone();
    s
}

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
    let dir = std::env::temp_dir().join(format!("vswitch-blk-qemu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
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
    let dir = std::env::temp_dir().join(format!("vswitch-blk-qemu-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
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
