//! Storage operations a real guest drives (issue 16): DISCARD frees the
//! blocks of a file-backed disk, WRITE_ZEROES reads back zeroes (with and
//! without the unmap flag), and an online resize on the host reaches the
//! running guest (`/sys/block/vda/size` changes, the new sectors work).
//!
//! The device runs in this process (`vfio` library: file backend, one
//! poller thread, the vhost-user server) so the test can resize it while
//! the guest runs, as the JSON-RPC server does. The guest uses busybox
//! `blkdiscard` (BLKDISCARD), util-linux `blkdiscard -z` (BLKZEROOUT:
//! WRITE_ZEROES without unmap) and util-linux `fallocate -p` on the block
//! device (WRITE_ZEROES with unmap), copied from the host with their
//! libraries since busybox has no `-z`.
//!
//! Needs qemu-system-x86, linux-image-amd64, busybox-static and util-linux.

mod vm;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use vfio::backend::file::FileBackend;
use vfio::backend::Backend;
use vfio::blk::{BlkConfig, BlkDevice};
use vfio::poller::{DeviceCell, PollGroup, PollMode};
use vfio::vhost_user::BlkServer;

use vm::*;

const MIB: u64 = 1 << 20;
/// busybox blkdiscard: 16 MiB at 16 MiB.
const DISCARD: (u64, u64) = (16 * MIB, 16 * MIB);
/// util-linux blkdiscard -z (no unmap): 1 MiB at 40 MiB.
const ZERO: (u64, u64) = (40 * MIB, MIB);
/// util-linux fallocate -p (write zeroes with unmap): 1 MiB at 48 MiB.
const PUNCH: (u64, u64) = (48 * MIB, MIB);
/// The size the host grows the disk to while the guest runs.
const GROWN: u64 = 96 * MIB;
/// Where the guest writes into the grown part.
const TAIL_WRITE: u64 = 80 * MIB;

fn script() -> String {
    let n = |x: u64| x.to_string();
    format!(
        r#"s0=$(cat /sys/block/vda/size)
echo "GUEST-SIZE $s0"
echo "GUEST-DISCARD-MAX $(cat /sys/block/vda/queue/discard_max_bytes)"
echo "GUEST-WZ-MAX $(cat /sys/block/vda/queue/write_zeroes_max_bytes)"
blkdiscard -o {d0} -l {d1} /dev/vda && echo GUEST-DISCARD-OK
/ul/blkdiscard -z -o {z0} -l {z1} /dev/vda && echo GUEST-WZ-OK
/ul/fallocate -p -o {p0} -l {p1} /dev/vda && echo GUEST-PUNCH-OK
sync
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/zero of=/zero bs=65536 count=16 2>/dev/null
dd if=/dev/vda of=/wz bs=65536 skip={z0k} count=16 2>/dev/null
cmp /wz /zero && echo GUEST-WZ-ZEROES
dd if=/dev/vda of=/wz bs=65536 skip={p0k} count=16 2>/dev/null
cmp /wz /zero && echo GUEST-PUNCH-ZEROES
dd if=/dev/vda of=/wz bs=65536 skip={d0k} count=16 2>/dev/null
cmp /wz /zero && echo GUEST-DISCARD-ZEROES
echo GUEST-RESIZE-READY
i=0
while [ "$(cat /sys/block/vda/size)" = "$s0" ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
echo "GUEST-NEWSIZE $(cat /sys/block/vda/size)"
dd if=/tail of=/dev/vda bs=65536 seek={t} conv=fsync 2>/dev/null && echo GUEST-TAIL-WRITE-OK
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/vda of=/back bs=65536 skip={t} count=1 2>/dev/null
cmp /tail /back && echo GUEST-TAIL-OK
"#,
        d0 = n(DISCARD.0),
        d1 = n(DISCARD.1),
        z0 = n(ZERO.0),
        z1 = n(ZERO.1),
        p0 = n(PUNCH.0),
        p1 = n(PUNCH.1),
        z0k = ZERO.0 / 65536,
        p0k = PUNCH.0 / 65536,
        d0k = DISCARD.0 / 65536,
        t = TAIL_WRITE / 65536,
    )
}

#[test]
fn guest_discard_write_zeroes_and_online_resize() {
    let (dir, _cleanup) = TempDir::fresh("vswitch-blk-ops");
    // A disk whose every block is allocated (0xab everywhere).
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0xabu8; DISK_LEN as usize]).unwrap();
    let blocks_before = std::fs::metadata(&disk).unwrap().blocks();
    let tail: Vec<u8> = random_pattern()[..65536].to_vec();
    let mut files: Vec<(String, Vec<u8>)> = vec![("tail".into(), tail.clone())];
    for (path, pkg) in [
        ("/usr/sbin/blkdiscard", "util-linux"),
        ("/usr/bin/fallocate", "util-linux"),
    ] {
        for f in host_tool(path, pkg) {
            if !files.iter().any(|(n, _)| *n == f.0) {
                files.push(f);
            }
        }
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let initrd = build_initramfs_with(&dir, &init_script_with(&script()), &refs);

    // The device, its poller and its vhost-user server, in this process.
    let be = FileBackend::open(disk.to_str().unwrap(), 256).unwrap();
    let cfg = BlkConfig::new(&be.info(), 512, 2, "blk-ops").unwrap();
    let dev = DeviceCell::new(BlkDevice::new("ops", Box::new(be), cfg));
    let sock = dir.join("blk.sock");
    let server = BlkServer::bind(&sock, Arc::clone(&dev)).unwrap();
    let group = PollGroup::new();
    group.add(Arc::clone(&dev));
    let poller = group
        .spawn(PollMode::Adaptive {
            spin_rounds: 20_000,
            sleep: Duration::from_micros(50),
        })
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let srv = std::thread::spawn(move || server.run(&st));

    let mut resized = None;
    let console = boot_guest(&dir, &sock, &initrd, false, "", |out| {
        if resized.is_none() && out.contains("GUEST-RESIZE-READY") {
            resized = Some(dev.lock().resize(GROWN));
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    group.stop();
    let _ = poller.join();
    let ctx = format!("guest console:\n{console}");
    for want in [
        format!("GUEST-SIZE {}", DISK_LEN / 512),
        "GUEST-DISCARD-OK".into(),
        "GUEST-WZ-OK".into(),
        "GUEST-PUNCH-OK".into(),
        "GUEST-WZ-ZEROES".into(),
        "GUEST-PUNCH-ZEROES".into(),
        "GUEST-DISCARD-ZEROES".into(),
        format!("GUEST-NEWSIZE {}", GROWN / 512),
        "GUEST-TAIL-WRITE-OK".into(),
        "GUEST-TAIL-OK".into(),
    ] {
        assert!(console.contains(&want), "no {want}; {ctx}");
    }
    assert!(
        !console.contains("GUEST-DISCARD-MAX 0") && !console.contains("GUEST-WZ-MAX 0"),
        "the guest must see DISCARD and WRITE_ZEROES; {ctx}"
    );
    let (new, notified) = resized.expect("resized").expect("resize");
    assert_eq!(new, GROWN);
    assert!(notified, "QEMU gave no back-end request channel");

    // Host side: the discarded and punched ranges are holes (their blocks
    // freed), the zeroed one reads zeroes, the file grew, the guest's
    // write into the new sectors landed.
    let meta = std::fs::metadata(&disk).unwrap();
    assert_eq!(meta.len(), GROWN);
    let freed = (blocks_before - meta.blocks()) * 512;
    let expect = DISCARD.1 + PUNCH.1;
    assert!(
        freed >= expect - MIB / 4 && freed <= expect + MIB,
        "{freed} bytes freed, {expect} discarded/punched (blocks {blocks_before} -> {})",
        meta.blocks()
    );
    let bytes = std::fs::read(&disk).unwrap();
    for (what, (at, len)) in [("discard", DISCARD), ("zero", ZERO), ("punch", PUNCH)] {
        let r = &bytes[at as usize..(at + len) as usize];
        assert!(
            r.iter().all(|&b| b == 0),
            "{what} range not zero on the host"
        );
    }
    assert!(bytes[(ZERO.0 + ZERO.1) as usize..PUNCH.0 as usize]
        .iter()
        .all(|&b| b == 0xab));
    let t = TAIL_WRITE as usize;
    assert_eq!(&bytes[t..t + tail.len()], &tail[..]);
    let s = dev.lock().stats();
    assert!(s.discards >= 3, "{s:?}");
    assert_eq!(s.config_changes, 1);
    assert_eq!(s.errors, 0, "{s:?}");
    let _ = srv.join();
}
