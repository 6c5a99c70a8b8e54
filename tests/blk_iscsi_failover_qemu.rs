//! iSCSI portal failover under a real guest: a QEMU guest (TCG) runs a
//! write/verify loop with O_DIRECT on its virtio-blk disk, served by
//! `vswitch blk serve --backend iscsi://A,B/IQN/1` where A and B are two tgtd
//! processes on 127.0.0.1 and 127.0.0.2 serving the same backing file. A
//! is SIGKILLed while the loop runs: the session logs in on B and reissues
//! what was in flight; the guest sees no I/O error (no `GUEST-ERROR`, every
//! read-back verifies, the device's error counter stays 0), and the blocks
//! it last wrote are in the backing file.
//!
//! Needs the Debian packages tgt, qemu-system-x86, linux-image-amd64 and
//! busybox-static.

mod vm;

#[path = "../iscsi-initiator/tests/common/mod.rs"]
mod tgt;

use std::io::{Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use vm::*;

fn tagged(console: &str, tag: &str) -> Vec<u64> {
    console
        .lines()
        .filter_map(|l| l.trim().strip_prefix(tag)?.trim().parse().ok())
        .collect()
}

#[test]
fn qemu_guest_write_verify_survives_portal_failover() {
    let (dir, _cleanup) = TempDir::fresh("vswitch-iscsi-fo-vm");
    let mut a = tgt::Tgtd::start("qemu-fo", DISK_LEN);
    let b = tgt::Tgtd::start_sibling("qemu-fo-b", &a, "127.0.0.2");
    let sock = dir.join("vhost-blk.sock");
    let log = dir.join("vswitch.log");
    let server = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--queues", "2", "--stats-interval", "0"])
        .args(["--poll", "wait"])
        .arg("--socket")
        .arg(&sock)
        .arg("--backend")
        .arg(format!(
            "iscsi://{},{}/{}/1?nop_interval=1&nop_timeout=3&replacement_timeout=60",
            a.portal(),
            b.portal(),
            a.iqn
        ))
        .arg("--stats-file")
        .arg(sock.with_extension("stats"))
        .stdin(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start vswitch");
    let mut server = Reaper(Some(server));
    wait_for_socket(&sock, server.0.as_mut().unwrap());
    let initrd = build_initramfs_with(&dir, &write_verify_loop_script(), &[]);
    let backing = a.backing.clone();
    let mut killed_at = None;
    let mut stopped = false;
    let console = boot_guest(&dir, &sock, &initrd, false, "", |out| {
        let last = tagged(out, "GUEST-ACK ").into_iter().max().unwrap_or(0);
        match killed_at {
            // The loop runs: kill the active portal's tgtd under it.
            None if last >= 10 => {
                a.stop();
                killed_at = Some(last);
            }
            // 20 more verified writes on the second portal: end the loop
            // (the guest polls the STOP block with O_DIRECT).
            Some(k) if !stopped && last >= k + 20 => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&backing)
                    .unwrap();
                f.seek(SeekFrom::Start(LOOP_STOP_BLOCK * 4096)).unwrap();
                f.write_all(b"STOP").unwrap();
                stopped = true;
            }
            _ => {}
        }
    });
    let vlog = std::fs::read_to_string(&log).unwrap_or_default();
    let ctx = format!("guest console:\n{console}\nvswitch log:\n{vlog}");
    let k = killed_at.unwrap_or_else(|| panic!("the loop never reached 10 writes; {ctx}"));
    assert!(
        !console.contains("GUEST-ERROR"),
        "an I/O error reached the guest; {ctx}"
    );
    let last = *tagged(&console, "GUEST-LAST-ACK ")
        .first()
        .unwrap_or_else(|| panic!("the loop did not end; {ctx}"));
    assert!(last >= k + 20, "only {last} writes, killed at {k}; {ctx}");
    assert!(
        vlog.contains("session reinstated") && vlog.contains(&format!("on {}", b.portal())),
        "the session moved to the second portal; {ctx}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let stats = std::fs::read_to_string(sock.with_extension("stats")).unwrap();
    assert_eq!(stat_u64(&stats, "errors"), 0, "{stats}; {ctx}");
    drop(server);
    // The newest write of every block of the loop is in the backing file.
    for seq in last.saturating_sub(LOOP_BLOCKS - 1)..=last {
        let blk = LOOP_BASE_BLOCK + seq % LOOP_BLOCKS;
        assert!(
            b.backing_bytes(blk * 4096, 4096) == loop_block(seq),
            "block {blk} does not hold write {seq}; {ctx}"
        );
    }
}
