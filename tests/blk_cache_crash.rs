//! Crash consistency of the write-back cache: `vswitch blk serve --cache
//! --cache-mode writeback` on a file is killed (SIGKILL) in the middle of
//! write traffic from a simulated VMM and guest driver; a new server on the
//! same file must return, for every block, the content of the last write
//! acknowledged before a completed FLUSH, or of a write sent after that
//! FLUSH (those may or may not have reached the file; nothing else may).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vfio::blk::mock::BlkReq;
use vfio::blk::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use vfio::vhost_user::mock_frontend::MockFrontend;
use vfio::virtq::mock::Buf;

const BLOCKS: u64 = 1024; // 4 MiB of a 16 MiB disk, 4x the 1 MiB cache
const BATCH: usize = 16;

/// Kills the server however the test ends.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server(sock: &Path, disk: &Path, cache: bool) -> Reaper {
    let _ = std::fs::remove_file(sock);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vswitch"));
    cmd.args(["blk", "serve", "--stats-interval", "0", "--socket"])
        .arg(sock)
        .arg("--backend")
        .arg(format!("file:{}", disk.display()));
    if cache {
        cmd.args(["--cache", "1M", "--cache-mode", "writeback"]);
    }
    let mut child = cmd.stdin(Stdio::null()).spawn().expect("start vswitch");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("vswitch blk serve exited early: {st}");
        }
        assert!(Instant::now() < deadline, "no socket {}", sock.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Reaper(Some(child))
}

fn wait(fe: &mut MockFrontend, reqs: &[BlkReq]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut left = reqs.len();
    while left > 0 {
        if let Some((id, _)) = fe.drivers[0].q.pop_used() {
            let r = reqs.iter().find(|r| r.head == id).expect("known head");
            assert_eq!(fe.drivers[0].status(r), VIRTIO_BLK_S_OK);
            left -= 1;
        }
        assert!(Instant::now() < deadline, "requests not completed in 20 s");
        std::thread::yield_now();
    }
}

/// Block content: its number and a version, repeated.
fn content(block: u64, version: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(4096);
    for _ in 0..256 {
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&version.to_le_bytes());
    }
    v
}

/// A fresh directory (removed on drop) with a 16 MiB disk file, and the
/// socket path to serve it on.
fn scratch(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("vswitch-cache-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let sock = dir.join("blk.sock");
    (TempDir(dir), disk, sock)
}

#[test]
fn acknowledged_and_flushed_writes_survive_a_killed_server() {
    let (_cleanup, disk, sock) = scratch("crash");
    let mut srv = server(&sock, &disk, true);
    let mut fe = MockFrontend::connect(&sock, 16 << 20, 1, 64).unwrap();
    // Per block: the version a completed flush made durable, and the
    // versions sent since then.
    let mut durable: HashMap<u64, u64> = HashMap::new();
    let mut since: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut acked: HashMap<u64, u64> = HashMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut version = 1u64;
    let mut flushes = 0;
    for round in 0..60 {
        // A batch of writes to distinct blocks, Zipf-ish: half in a hot 64.
        let mut blocks = Vec::new();
        while blocks.len() < BATCH {
            let b = if next(2) == 0 { next(64) } else { next(BLOCKS) };
            if !blocks.contains(&b) {
                blocks.push(b);
            }
        }
        let mut reqs = Vec::new();
        for (i, &b) in blocks.iter().enumerate() {
            let buf = fe.data_base + i as u64 * 4096;
            fe.mem.write(buf, &content(b, version)).unwrap();
            since.entry(b).or_default().push(version);
            reqs.push(fe.drivers[0].request(VIRTIO_BLK_T_OUT, b * 8, &[Buf::r(buf, 4096)], false));
            version += 1;
        }
        fe.drivers[0].q.publish();
        fe.kick(0);
        if round == 59 {
            // Kill with these writes in flight and unflushed ones before.
            break;
        }
        wait(&mut fe, &reqs);
        for (&b, vs) in &since {
            acked.insert(b, *vs.last().unwrap());
        }
        if round % 7 == 6 {
            let f = fe.drivers[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
            fe.drivers[0].q.publish();
            fe.kick(0);
            wait(&mut fe, &[f]);
            // Everything acknowledged before the flush is now durable.
            durable.extend(acked.iter().map(|(&b, &v)| (b, v)));
            since.clear();
            flushes += 1;
        }
    }
    assert!(flushes >= 8);
    // SIGKILL: no clean shutdown, the cache's dirty blocks are lost.
    if let Some(mut c) = srv.0.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    drop(fe);

    // A new server (no cache) on the same file reads every block back.
    let _srv2 = server(&sock, &disk, false);
    let mut fe = MockFrontend::connect(&sock, 16 << 20, 1, 64).unwrap();
    let mut checked = 0;
    for chunk in 0..BLOCKS / BATCH as u64 {
        let mut reqs = Vec::new();
        for i in 0..BATCH as u64 {
            let b = chunk * BATCH as u64 + i;
            let buf = fe.data_base + i * 4096;
            reqs.push(fe.drivers[0].request(VIRTIO_BLK_T_IN, b * 8, &[Buf::w(buf, 4096)], false));
        }
        fe.drivers[0].q.publish();
        fe.kick(0);
        wait(&mut fe, &reqs);
        for i in 0..BATCH as u64 {
            let b = chunk * BATCH as u64 + i;
            let mut got = vec![0u8; 4096];
            fe.mem.read(fe.data_base + i * 4096, &mut got).unwrap();
            let ok_flushed = durable.get(&b).is_some_and(|&v| got == content(b, v));
            let ok_later = since
                .get(&b)
                .is_some_and(|vs| vs.iter().any(|&v| got == content(b, v)));
            let never_written = !durable.contains_key(&b) && got.iter().all(|&x| x == 0);
            assert!(
                ok_flushed || ok_later || never_written,
                "block {b}: neither its flushed version {:?} nor a later write {:?} (got version {})",
                durable.get(&b),
                since.get(&b),
                u64::from_le_bytes(got[8..16].try_into().unwrap())
            );
            if durable.contains_key(&b) {
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} flushed blocks checked");
}

/// Blocks of `disk` (4 KiB each) that hold `content(b, version)`.
fn blocks_on_disk(disk: &Path, writes: &[(u64, u64)]) -> usize {
    let data = std::fs::read(disk).unwrap();
    writes
        .iter()
        .filter(|&&(b, v)| data[(b * 4096) as usize..][..4096] == content(b, v)[..])
        .count()
}

#[test]
fn sigterm_writes_back_the_dirty_blocks() {
    let (_cleanup, disk, sock) = scratch("term");
    let mut srv = server(&sock, &disk, true);
    let mut fe = MockFrontend::connect(&sock, 16 << 20, 1, 64).unwrap();
    // 96 distinct blocks, acknowledged, never flushed: below the 1 MiB
    // cache's write-back high-water mark (half of its 256 slots), so they
    // stay dirty in the cache only.
    let mut writes = Vec::new();
    for round in 0..6u64 {
        let mut reqs = Vec::new();
        for i in 0..BATCH as u64 {
            let b = 7 + (round * BATCH as u64 + i) * 3;
            let buf = fe.data_base + i * 4096;
            fe.mem.write(buf, &content(b, round + 1)).unwrap();
            reqs.push(fe.drivers[0].request(VIRTIO_BLK_T_OUT, b * 8, &[Buf::r(buf, 4096)], false));
            writes.push((b, round + 1));
        }
        fe.drivers[0].q.publish();
        fe.kick(0);
        wait(&mut fe, &reqs);
    }
    assert_eq!(
        blocks_on_disk(&disk, &writes),
        0,
        "write-back: acknowledged writes are in the cache, not yet in the file"
    );
    // The server is stopped while the VM is still connected (and never
    // flushed): it stops polling, leaves the connection to its exit, and
    // commits the cache.
    let mut child = srv.0.take().unwrap();
    // SAFETY: kill(2) on the child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(fe);
    assert!(status.success(), "clean shutdown failed: {status}");
    assert_eq!(
        blocks_on_disk(&disk, &writes),
        writes.len(),
        "a clean shutdown writes every dirty block back to the file"
    );
}
