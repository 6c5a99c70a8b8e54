//! The cache metadata in VM memory, seen and attacked from a real guest.
//!
//! `vswitch blk serve --cache 8M --cache-mode writeback --cache-meta FILE`
//! puts the cache's metadata table in FILE (on /dev/shm) and logs the QEMU
//! arguments that map FILE into the guest as BAR 2 of an `ivshmem-plain`
//! PCI device; the test passes exactly those arguments to QEMU (TCG). The
//! busybox guest then:
//!
//! 1. finds the ivshmem device (1af4:1110) in sysfs and reads the table
//!    header at its BAR 2 with `devmem` (the host asserts the magic,
//!    version and geometry: the table is in guest memory);
//! 2. reads a region the host pre-filled in the backing file twice with
//!    O_DIRECT (the host asserts: the first read only missed, the second
//!    only hit, the bytes are right);
//! 3. writes a random pattern with O_DIRECT (write-back: dirty in the
//!    cache, not yet in the file) and reads it back (hits);
//! 4. forges four entries of pattern blocks with `devmem`: a corrupted
//!    checksum, a slot address moved to the next slot, a copy of another
//!    entry (a valid checksum at the wrong position; the overwritten
//!    block's data is dirty, only in the cache, so a host that trusted the
//!    table would return stale bytes), and a replay of an entry saved before
//!    the guest rewrote its block (valid checksum, position and owner, old
//!    generation); then re-reads everything (the host asserts: the bytes
//!    are right, all hits, no misses, `cache_bad_entries` rose by at least
//!    four, and the guest saw the host rewrite the four entries back in its
//!    memory);
//! 5. flushes (the host asserts nothing is left dirty and the pattern is in
//!    the backing file).
//!
//! Host and guest take turns: at each step the guest prints `GUEST-STEP n`
//! and waits until the host, having read the stats file, writes `n` into
//! the shared region's last page (past the table, unused by the cache),
//! which the guest polls with `devmem`: the same memory, both ways.
//!
//! Needs the Debian packages qemu-system-x86, linux-image-amd64 and
//! busybox-static; fails with a message naming them when they are missing.

mod vm;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use vm::*;

/// Cache size given to `--cache` (2048 slots: 256 sets of 8 ways).
const CACHE: &str = "8M";
const SLOTS: u64 = 2048;
const WAYS: u64 = 8;
/// Pre-filled region: 16 blocks at 16 MiB.
const PREFILL_OFFSET: u64 = 16 << 20;
const PREFILL_LEN: usize = 16 * 4096;
/// Header 64 bytes + 32 per entry, rounded up to a power of two (a BAR).
const META_LEN: u64 = (64 + 32 * SLOTS).next_power_of_two();

/// Where the host acknowledges a step: the first word of the region's last
/// page (past the table; not at the very end, because busybox `devmem` maps
/// two pages for an access within 64 bytes of a page end, and the page
/// after BAR 2 belongs to another device).
const ACK_OFFSET: u64 = META_LEN - 4096;

/// Removes the metadata file when the test ends.
struct RmFile(PathBuf);

impl Drop for RmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn guest_body() -> String {
    let pat_first = PATTERN_OFFSET / 4096;
    let pat_n = PATTERN_LEN as u64 / 4096;
    let pf_first = PREFILL_OFFSET / 4096;
    let pf_n = PREFILL_LEN as u64 / 4096;
    format!(
        r#"dev=
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1110 ]; then dev=$d; fi
done
if [ -z "$dev" ]; then echo GUEST-NO-IVSHMEM; poweroff -f; fi
echo 1 > $dev/enable 2>/dev/null
res=$(sed -n 3p $dev/resource)
bar=$(( $(echo $res | cut -d' ' -f1) ))
size=$(( $(echo $res | cut -d' ' -f2) - bar + 1 ))
echo "GUEST-IVSHMEM $(basename $dev) bar2=$(printf 0x%x $bar) size=$size"
echo "GUEST-META magic=$(devmem $bar 64) version=$(devmem $((bar+8)) 32) entry_len=$(devmem $((bar+12)) 32) ways=$(devmem $((bar+16)) 32) sets=$(devmem $((bar+20)) 32) block_size=$(devmem $((bar+24)) 32)"
ack=$((bar+size-4096))
step() {{
  echo "GUEST-STEP $1"
  i=0
  while true; do
    a=$(devmem $ack 32) || {{ echo "GUEST-DEVMEM-FAIL $ack"; poweroff -f; }}
    [ $((a)) -eq $1 ] && break
    i=$((i+1))
    if [ $i -ge 240 ]; then echo "GUEST-ACK-TIMEOUT $1"; poweroff -f; fi
    sleep 0.25
  done
}}
dump() {{
  s=""
  for k in 0 4 8 12 16 20 24 28; do s="$s $(devmem $(($1+k)) 32)"; done
  echo $s
}}
step 1
dd if=/dev/vda of=/pf1 bs=4096 skip={pf_first} count={pf_n} iflag=direct 2>/dev/null || echo GUEST-PREFILL-READ-FAIL
if cmp /prefill /pf1; then echo GUEST-PREFILL1-OK; else echo GUEST-PREFILL1-MISMATCH; fi
step 2
dd if=/dev/vda of=/pf2 bs=4096 skip={pf_first} count={pf_n} iflag=direct 2>/dev/null || echo GUEST-PREFILL-READ-FAIL
if cmp /prefill /pf2; then echo GUEST-PREFILL2-OK; else echo GUEST-PREFILL2-MISMATCH; fi
step 3
dd if=/pattern of=/dev/vda bs=4096 seek={pat_first} oflag=direct 2>/dev/null || echo GUEST-WRITE-FAIL
dd if=/dev/vda of=/rb bs=4096 skip={pat_first} count={pat_n} iflag=direct 2>/dev/null || echo GUEST-READ-FAIL
if cmp /pattern /rb; then echo GUEST-PATTERN-OK; else echo GUEST-PATTERN-MISMATCH; fi
rm -f /rb
step 4
n=0
i=0
entries=$(( $(devmem $((bar+16)) 32) * $(devmem $((bar+20)) 32) ))
while [ $i -lt $entries ] && [ $n -lt 4 ]; do
  e=$((bar+64+32*i))
  blk=$(( $(devmem $e 64) ))
  fl=$(( $(devmem $((e+20)) 32) ))
  if [ $blk -ge {pat_first} ] && [ $blk -lt $(({pat_first}+{pat_n})) ] && [ $((fl & 1)) -eq 1 ]; then
    eval "e$n=$e"
    eval "orig$n=\"$(dump $e)\""
    echo "GUEST-VALID-ENTRY $n index=$i block=$blk flags=$fl: $(dump $e)"
    n=$((n+1))
  fi
  i=$((i+1))
done
if [ $n -lt 4 ]; then echo "GUEST-TOO-FEW-ENTRIES $n"; fi
c=$(devmem $((e0+28)) 32)
devmem $((e0+28)) 32 $(( c ^ 0x5a5a5a5a ))
s=$(devmem $((e1+8)) 32)
devmem $((e1+8)) 32 $(( (s + 4096) & 0xffffffff ))
k=0
for w in $orig0; do devmem $((e2+k)) 32 $w; k=$((k+4)); done
old3="$orig3"
b3=$(( $(devmem $e3 64) ))
dd if=/pattern of=/dev/vda bs=4096 skip=$((b3-{pat_first})) seek=$b3 count=1 oflag=direct 2>/dev/null || echo GUEST-REWRITE-FAIL
orig3="$(dump $e3)"
echo "GUEST-REWRITTEN-ENTRY 3 block=$b3: $orig3"
if [ "$orig3" = "$old3" ]; then echo GUEST-GENERATION-UNCHANGED-FAIL; fi
k=0
for w in $old3; do devmem $((e3+k)) 32 $w; k=$((k+4)); done
f=0
for j in 0 1 2 3; do
  eval "e=\$e$j; o=\"\$orig$j\""
  now="$(dump $e)"
  echo "GUEST-FORGED-ENTRY $j: $now"
  [ "$now" != "$o" ] && f=$((f+1))
done
echo "GUEST-FORGED $f"
step 5
dd if=/dev/vda of=/rb bs=4096 skip={pat_first} count={pat_n} iflag=direct 2>/dev/null || echo GUEST-READ-FAIL
if cmp /pattern /rb; then echo GUEST-FORGED-REREAD-OK; else echo GUEST-FORGED-REREAD-MISMATCH; fi
dd if=/dev/vda of=/pf3 bs=4096 skip={pf_first} count={pf_n} iflag=direct 2>/dev/null || echo GUEST-PREFILL-READ-FAIL
if cmp /prefill /pf3; then echo GUEST-PREFILL3-OK; else echo GUEST-PREFILL3-MISMATCH; fi
r=0
for j in 0 1 2 3; do
  eval "e=\$e$j; o=\"\$orig$j\""
  now="$(dump $e)"
  echo "GUEST-AFTER-ENTRY $j: $now"
  [ "$now" = "$o" ] && r=$((r+1))
done
echo "GUEST-REPAIRED $r"
step 6
dd if=/pattern of=/dev/vda bs=4096 seek={pat_first} count=1 oflag=direct conv=fsync 2>/dev/null || echo GUEST-FLUSH-FAIL
step 7
echo GUEST-DONE"#
    )
}

/// The stats line published after `since` (the server writes every second).
fn stats_after(file: &Path, since: SystemTime) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(m) = std::fs::metadata(file).and_then(|m| m.modified()) {
            if m > since {
                if let Ok(t) = std::fs::read_to_string(file) {
                    if let Some(l) = t.lines().find(|l| l.starts_with('{')) {
                        return l.to_string();
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "stats file {} not updated",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A field of a `GUEST-...` line: `key=value`.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not a hex number: {s}"))
}

/// `vswitch blk serve` with a write-back cache whose metadata table is
/// `meta`: the server (reaped on drop), the thread forwarding its log, and
/// the QEMU arguments it logged for mapping the table into the guest
/// (checked against what the table's file and size say).
fn serve(
    meta: &Path,
    sock: &Path,
    disk: &Path,
    stats: &Path,
) -> (Reaper, std::thread::JoinHandle<()>, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--queues", "2", "--stats-interval", "0"])
        .args([
            "--cache",
            CACHE,
            "--cache-mode",
            "writeback",
            "--cache-meta",
        ])
        .arg(meta)
        .arg("--socket")
        .arg(sock)
        .arg("--backend")
        .arg(format!("file:{}", disk.display()))
        .arg("--stats-file")
        .arg(stats)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vswitch");
    // Forward the server's log and keep it: it names the QEMU arguments.
    let log = Arc::new(Mutex::new(String::new()));
    let err = child.stderr.take().unwrap();
    let log2 = Arc::clone(&log);
    let logger = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("vswitch: {line}");
            let mut l = log2.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let mut server = Reaper(Some(child));
    wait_for_socket(sock, server.0.as_mut().unwrap());
    const MARK: &str = "map it into the guest with QEMU arguments: ";
    let qemu_args: Vec<String> = {
        let l = log.lock().unwrap();
        let line = l
            .lines()
            .find(|l| l.contains(MARK))
            .unwrap_or_else(|| panic!("vswitch logged no QEMU arguments for the metadata:\n{l}"));
        line[line.find(MARK).unwrap() + MARK.len()..]
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        qemu_args,
        [
            "-object".to_string(),
            format!(
                "memory-backend-file,id=vswitch-cmeta0,mem-path={},size={META_LEN},share=on",
                meta.display()
            ),
            "-device".into(),
            "ivshmem-plain,memdev=vswitch-cmeta0".into(),
        ],
        "logged QEMU arguments"
    );
    assert_eq!(std::fs::metadata(meta).unwrap().len(), META_LEN);
    (server, logger, qemu_args)
}

/// Step 1: the guest found the table at the ivshmem device's BAR 2 and
/// read its header.
fn check_table_in_guest(console: &str, ctx: &str) {
    let meta_line = console
        .lines()
        .find(|l| l.contains("GUEST-META "))
        .unwrap_or_else(|| panic!("no GUEST-META line; {ctx}"));
    assert_eq!(
        hex(field(meta_line, "magic")).to_le_bytes(),
        *b"VSWCACHE",
        "magic seen by the guest; {ctx}"
    );
    assert_eq!(hex(field(meta_line, "version")), 1, "{ctx}");
    assert_eq!(hex(field(meta_line, "entry_len")), 32, "{ctx}");
    assert_eq!(hex(field(meta_line, "ways")), WAYS, "{ctx}");
    assert_eq!(hex(field(meta_line, "sets")), SLOTS / WAYS, "{ctx}");
    assert_eq!(hex(field(meta_line, "block_size")), 4096, "{ctx}");
    let iv = console
        .lines()
        .find(|l| l.contains("GUEST-IVSHMEM "))
        .unwrap_or_else(|| panic!("no GUEST-IVSHMEM line; {ctx}"));
    assert_eq!(field(iv, "size"), META_LEN.to_string(), "BAR 2 size; {ctx}");
}

/// Steps 2-5 by the server's counters at each of the guest's seven steps:
/// misses then hits on the pre-filled region, the pattern dirty in the
/// cache, forged entries detected and repaired, the flush's write-backs.
fn check_cache_counters(snaps: &[String], console: &str, ctx: &str) {
    let s = |i: usize, k: &str| stat_u64(&snaps[i - 1], k);
    let blocks = PATTERN_LEN as u64 / 4096;
    let pf = PREFILL_LEN as u64 / 4096;
    // 2. First O_DIRECT read of the pre-filled region: misses only; second: hits only.
    assert!(console.contains("GUEST-PREFILL1-OK") && console.contains("GUEST-PREFILL2-OK"));
    assert_eq!(
        s(2, "cache_misses") - s(1, "cache_misses"),
        pf,
        "first read: every block a miss; {ctx}"
    );
    assert_eq!(
        s(2, "cache_hits"),
        s(1, "cache_hits"),
        "first read: no hit; {ctx}"
    );
    assert_eq!(
        s(3, "cache_hits") - s(2, "cache_hits"),
        pf,
        "second read: every block a hit; {ctx}"
    );
    assert_eq!(
        s(3, "cache_misses"),
        s(2, "cache_misses"),
        "second read: no miss; {ctx}"
    );
    // 3. Pattern written (write-back: dirty, only in the cache) and read back from the cache.
    assert!(console.contains("GUEST-PATTERN-OK"), "{ctx}");
    assert!(
        s(4, "cache_hits") - s(3, "cache_hits") >= blocks,
        "pattern read back from the cache; {ctx}"
    );
    assert_eq!(s(4, "cache_misses"), s(3, "cache_misses"), "{ctx}");
    assert!(
        s(4, "cache_dirty") >= blocks,
        "pattern dirty in the cache; {ctx}"
    );
    assert_eq!(s(4, "cache_bad_entries"), 0, "nothing forged yet; {ctx}");
    // 4. Forged entries: detected, data still right (from the cache: it is
    //    not in the backend yet), entries rewritten in guest memory.
    assert!(
        console.contains("GUEST-FORGED 4"),
        "four entries forged; {ctx}"
    );
    assert!(console.contains("GUEST-FORGED-REREAD-OK"), "{ctx}");
    assert!(console.contains("GUEST-PREFILL3-OK"), "{ctx}");
    assert!(
        s(6, "cache_bad_entries") > s(5, "cache_bad_entries"),
        "the host noticed the forged entries; {ctx}"
    );
    assert!(
        s(6, "cache_bad_entries") >= 4,
        "each forged entry counted; {ctx}"
    );
    assert!(
        s(6, "cache_hits") - s(5, "cache_hits") >= blocks + pf,
        "re-read served from the cache; {ctx}"
    );
    assert_eq!(s(6, "cache_misses"), s(5, "cache_misses"), "{ctx}");
    assert!(
        s(5, "cache_dirty") >= blocks,
        "still dirty at the re-read: the bytes came from the cache; {ctx}"
    );
    assert!(
        console.contains("GUEST-REPAIRED 4"),
        "the host rewrote the forged entries in guest memory; {ctx}"
    );
    // 5. Flush wrote everything back.
    assert_eq!(s(7, "cache_dirty"), 0, "{ctx}");
    assert!(s(7, "cache_writebacks") >= blocks, "{ctx}");
    assert_eq!(s(7, "errors"), 0, "{ctx}");
}

#[test]
fn guest_sees_and_forges_cache_metadata_in_its_memory() {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("vswitch-blk-cache-qemu-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let shm = Path::new("/dev/shm");
    let meta =
        if shm.is_dir() { shm } else { dir.as_path() }.join(format!("vswitch-test-cmeta-{id}"));
    let _ = std::fs::remove_file(&meta);
    let _rm = RmFile(meta.clone());

    let disk = dir.join("disk.img");
    let pattern = random_pattern();
    let prefill: Vec<u8> = pattern[..PREFILL_LEN].iter().map(|b| !b).collect();
    let mut img = vec![0u8; DISK_LEN as usize];
    img[PREFILL_OFFSET as usize..PREFILL_OFFSET as usize + PREFILL_LEN].copy_from_slice(&prefill);
    std::fs::write(&disk, &img).unwrap();
    let sock = dir.join("vhost-blk.sock");
    let stats = dir.join("vhost-blk.stats");
    let init = init_script_with(&guest_body());
    let initrd = build_initramfs_with(
        &dir,
        &init,
        &[("pattern", &pattern[..]), ("prefill", &prefill[..])],
    );

    let (server, logger, qemu_args) = serve(&meta, &sock, &disk, &stats);

    // Step n: snapshot the stats, then let the guest go on.
    let ack_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&meta)
        .unwrap();
    let mut snaps: Vec<String> = Vec::new();
    let console = boot_guest_with(&dir, &sock, &initrd, false, "", &qemu_args, |out| {
        let n = snaps.len() + 1;
        if out.contains(&format!("GUEST-STEP {n}\n")) || out.contains(&format!("GUEST-STEP {n}\r"))
        {
            let now = SystemTime::now();
            snaps.push(stats_after(&stats, now));
            ack_file
                .write_at(&(n as u32).to_le_bytes(), ACK_OFFSET)
                .unwrap();
        }
    });
    let ctx = format!("guest console:\n{console}\nstats snapshots:\n{snaps:#?}");
    eprintln!("{ctx}");
    for bad in [
        "GUEST-NO-BLOCK-DEVICE",
        "GUEST-NO-IVSHMEM",
        "GUEST-DEVMEM-FAIL",
        "GUEST-ACK-TIMEOUT",
        "GUEST-TOO-FEW-ENTRIES",
    ] {
        assert!(!console.contains(bad), "guest reported {bad}; {ctx}");
    }
    if let Some(l) = console
        .lines()
        .find(|l| l.contains("GUEST-") && (l.contains("FAIL") || l.contains("MISMATCH")))
    {
        panic!("guest reported `{l}`; {ctx}");
    }
    assert!(
        console.contains("GUEST-DONE"),
        "guest did not finish; {ctx}"
    );
    assert_eq!(snaps.len(), 7, "seven steps; {ctx}");

    check_table_in_guest(&console, &ctx);
    check_cache_counters(&snaps, &console, &ctx);

    drop(server);
    let _ = logger.join();
    let on_disk = std::fs::read(&disk).unwrap();
    let at = PATTERN_OFFSET as usize;
    assert!(
        on_disk[at..at + PATTERN_LEN] == pattern[..],
        "the pattern is not in the backing file after the flush"
    );
    let p = PREFILL_OFFSET as usize;
    assert!(
        on_disk[p..p + PREFILL_LEN] == prefill[..],
        "pre-filled bytes changed"
    );
    assert!(
        on_disk[..at].iter().all(|&b| b == 0),
        "bytes before the pattern changed"
    );
}
