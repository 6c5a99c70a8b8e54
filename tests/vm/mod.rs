//! Guest harness shared by the real-VM block tests: a busybox initramfs built at
//! run time (the host's Debian kernel and virtio modules), a guest init script
//! that dd's a random pattern to /dev/vda and reads it back, and QEMU (TCG)
//! booted against a vhost-user-blk socket. Used by `blk_qemu.rs` and
//! `blk_iscsi_qemu.rs`. After the first read the guest drops its caches and
//! reads the pattern a second time (`GUEST-REREAD-OK`), so a cache under the
//! device sees a repeated read.
//!
//! Needs qemu-system-x86, linux-image-amd64 and busybox-static; fails naming
//! them when missing.

#![allow(dead_code)]

pub mod net;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PATTERN_LEN: usize = 1 << 20;
/// The guest writes the pattern at this byte offset of the disk.
pub const PATTERN_OFFSET: u64 = 4 << 20;
pub const DISK_LEN: u64 = 64 << 20;
/// Where the reconnect test's second pattern goes.
pub const PATTERN2_OFFSET: u64 = 8 << 20;
pub const MODULES: [&str; 6] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
];

/// Kills a child process when the test ends, however it ends.
pub struct Reaper(pub Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Reaper {
    /// A vhost-user server, once it has created `sock` (panics if it exits
    /// first or takes more than 20 s).
    pub fn serving(mut server: Child, sock: &Path) -> Reaper {
        wait_for_socket(sock, &mut server);
        Reaper(Some(server))
    }
}

/// What a failed assertion about a guest run shows: the guest's console and
/// the server's log.
pub fn guest_context(console: &str, log: &Path) -> String {
    format!(
        "guest console:\n{console}\nvswitch log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    )
}

/// The number after `"key":` in a stats JSON line (the servers' `--stats-file`).
pub fn stat_u64(line: &str, key: &str) -> u64 {
    let at = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 3;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Removes the temp dir when the test ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// An empty `$TMPDIR/{prefix}-{pid}` (whatever a killed run left there
    /// is removed first), and its remover.
    pub fn fresh(prefix: &str) -> (PathBuf, TempDir) {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (dir.clone(), TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn need(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install {package})"
    );
    p
}

pub fn kernel() -> (PathBuf, PathBuf) {
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

pub fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
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
pub struct Cpio {
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

pub fn init_script(reconnect: bool) -> String {
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
    init_script_with(&format!(
        r#"echo "GUEST-SIZE $(cat /sys/block/vda/size)"
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
{phase2}"#,
        seek = PATTERN_OFFSET / 4096,
        count = PATTERN_LEN / 4096
    ))
}

pub fn random_pattern() -> Vec<u8> {
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

pub fn build_initramfs(dir: &Path, pattern: &[u8], pattern2: Option<&[u8]>) -> PathBuf {
    let mut files: Vec<(&str, &[u8])> = vec![("pattern", pattern)];
    if let Some(p2) = pattern2 {
        files.push(("pattern2", p2));
    }
    build_initramfs_with(dir, &init_script(pattern2.is_some()), &files)
}

/// An init script that mounts /proc, /sys and /dev, loads the virtio
/// modules, waits for /dev/vda (`GUEST-NO-BLOCK-DEVICE` if it never comes),
/// runs `body` and powers off.
pub fn init_script_with(body: &str) -> String {
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
{body}
poweroff -f
"#,
        mods = MODULES.join(" ")
    )
}

/// An initramfs with busybox, the virtio modules, `init` as /init and
/// `files` (name, bytes) at the root.
pub fn build_initramfs_with(dir: &Path, init: &str, files: &[(&str, &[u8])]) -> PathBuf {
    initramfs(&dir.join("initramfs.cpio"), init, files, &MODULES)
}

/// Writes to `path` an initramfs with busybox, the kernel `modules` (under
/// /mod), `init` as /init and `files` (name, bytes; parent directories
/// made, host tools under `ul/` and libraries executable).
pub fn initramfs(path: &Path, init: &str, files: &[(&str, &[u8])], modules: &[&str]) -> PathBuf {
    const DIRS: [&str; 6] = ["bin", "dev", "mod", "proc", "sys", "tmp"];
    let busybox = need("/bin/busybox", "busybox-static");
    let (_, module_dir) = kernel();
    let mut c = Cpio {
        out: Vec::new(),
        ino: 0,
    };
    for d in DIRS {
        c.entry(d, 0o040755, &[], (0, 0));
    }
    c.entry("dev/console", 0o020600, &[], (5, 1));
    let bb = std::fs::read(busybox).unwrap();
    assert!(
        !bb.windows(14).any(|w| w == b"/lib64/ld-linu"),
        "/bin/busybox is dynamically linked: install the Debian package `busybox-static`"
    );
    c.entry("bin/busybox", 0o100755, &bb, (0, 0));
    c.entry("init", 0o100755, init.as_bytes(), (0, 0));
    let mut dirs: Vec<&str> = Vec::new();
    for (name, data) in files {
        // Parent directories of nested names (host tools and their libraries).
        for (i, _) in name.match_indices('/') {
            let d = &name[..i];
            if !dirs.contains(&d) && !DIRS.contains(&d) {
                dirs.push(d);
                c.entry(d, 0o040755, &[], (0, 0));
            }
        }
        // Host tools are executable; data files are not.
        let mode = if name.starts_with("ul/") || name.contains(".so") {
            0o100755
        } else {
            0o100644
        };
        c.entry(name, mode, data, (0, 0));
    }
    for m in modules {
        let f = find_module(&module_dir, m).unwrap_or_else(|| {
            panic!(
                "module {m}.ko not found under {}: install `linux-image-amd64`",
                module_dir.display()
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
    std::fs::write(path, c.out).unwrap();
    path.to_owned()
}

pub fn wait_for_socket(sock: &Path, server: &mut Child) {
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
pub fn boot_guest(
    dir: &Path,
    sock: &Path,
    initrd: &Path,
    reconnect: bool,
    dev_opts: &str,
    watch: impl FnMut(&str),
) -> String {
    boot_guest_with(dir, sock, initrd, reconnect, dev_opts, &[], watch)
}

/// [`boot_guest`] with `extra` QEMU arguments appended (more devices).
pub fn boot_guest_with(
    dir: &Path,
    sock: &Path,
    initrd: &Path,
    reconnect: bool,
    dev_opts: &str,
    extra: &[String],
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
        .args(extra)
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

/// A dynamically linked host tool (e.g. util-linux's `/usr/sbin/blkdiscard`,
/// whose `-z` busybox lacks) for the initramfs: the binary as `ul/NAME` and
/// the shared libraries `ldd` names, at their host paths.
pub fn host_tool(path: &str, package: &str) -> Vec<(String, Vec<u8>)> {
    let bin = need(path, package);
    let name = bin.file_name().unwrap().to_string_lossy().into_owned();
    let mut out = vec![(format!("ul/{name}"), std::fs::read(&bin).unwrap())];
    let ldd = Command::new("ldd")
        .arg(&bin)
        .output()
        .expect("ldd (libc-bin)");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let lib = line
            .split("=>")
            .last()
            .and_then(|r| r.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(lib) = lib {
            let data = std::fs::read(lib).unwrap_or_else(|e| panic!("{lib}: {e}"));
            out.push((lib.trim_start_matches('/').to_string(), data));
        }
    }
    out
}

/// Block (4 KiB) where [`write_verify_loop_script`]'s area starts.
pub const LOOP_BASE_BLOCK: u64 = 4096;
/// Blocks the loop cycles through.
pub const LOOP_BLOCKS: u64 = 16;
/// The block the loop polls for `STOP` (the host writes it to end the loop).
pub const LOOP_STOP_BLOCK: u64 = LOOP_BASE_BLOCK - 1;

/// What the loop writes to block `LOOP_BASE_BLOCK + seq % LOOP_BLOCKS` for
/// sequence number `seq`.
pub fn loop_block(seq: u64) -> Vec<u8> {
    format!("{:<4095}\n", format!("SEQ {seq} BLK {}", seq % LOOP_BLOCKS)).into_bytes()
}

/// A guest that writes and verifies until the host stops it (live
/// migration tests): each round writes sequence number `seq` to its block
/// with O_DIRECT, reads it back, re-reads the block written half a cycle
/// earlier, and prints `GUEST-ACK seq`; any failure prints `GUEST-ERROR ...`
/// and ends the loop. When block [`LOOP_STOP_BLOCK`] starts with `STOP` it
/// prints `GUEST-LAST-ACK seq` (the last acknowledged write) and powers off.
pub fn write_verify_loop_script() -> String {
    init_script_with(&format!(
        r#"echo "GUEST-SIZE $(cat /sys/block/vda/size)"
echo "GUEST-FEATURES $(cat /sys/block/vda/device/features)"
seq=0
while true; do
  dd if=/dev/vda of=/tmp/stop bs=4096 skip={stop} count=1 iflag=direct 2>/dev/null || echo "GUEST-ERROR stop-read after $seq"
  if grep -q STOP /tmp/stop; then echo "GUEST-LAST-ACK $seq"; break; fi
  seq=$((seq+1))
  b=$((seq % {n}))
  printf "%-4095s\n" "SEQ $seq BLK $b" > /tmp/w
  if ! dd if=/tmp/w of=/dev/vda bs=4096 seek=$(({base}+b)) count=1 oflag=direct 2>/dev/null; then echo "GUEST-ERROR write $seq"; break; fi
  dd if=/dev/vda of=/tmp/r bs=4096 skip=$(({base}+b)) count=1 iflag=direct 2>/dev/null
  if ! cmp -s /tmp/w /tmp/r; then echo "GUEST-ERROR verify $seq"; break; fi
  if [ $seq -gt {n} ]; then
    o=$((seq - {half})); ob=$((o % {n}))
    printf "%-4095s\n" "SEQ $o BLK $ob" > /tmp/e
    dd if=/dev/vda of=/tmp/r bs=4096 skip=$(({base}+ob)) count=1 iflag=direct 2>/dev/null
    if ! cmp -s /tmp/e /tmp/r; then echo "GUEST-ERROR old $o at $seq"; break; fi
  fi
  echo "GUEST-ACK $seq"
done"#,
        stop = LOOP_STOP_BLOCK,
        n = LOOP_BLOCKS,
        half = LOOP_BLOCKS / 2,
        base = LOOP_BASE_BLOCK,
    ))
}
