//! Storage made at run time through SPDK's JSON-RPC, with real parts: SPDK's
//! own client (`spdk-rpc`, rpc.py from the `spdk` PyPI package) creates a
//! null bdev and a file (aio) bdev, `vswitch rpc` an iSCSI bdev on tgtd
//! running in a network namespace (two portals, the first dead), and
//! rpc.py a vhost-blk controller on each, in a running `vswitch blk serve
//! --rpc`. A QEMU guest (TCG) with the three disks
//! writes a random pattern to the file and iSCSI disks, drops its caches
//! and reads it back, and writes and reads the null disk; the pattern must
//! be in the file and in tgtd's backing file, and `bdev_get_iostat` must
//! count the guest's I/O on all three. With the guest gone the null
//! controller and bdev are deleted (a claimed bdev cannot be), `save_config`
//! writes the configuration, the server stops, and `vswitch run
//! --config-json` brings the devices back: a second guest reads the
//! pattern from both restored disks. tgtd is SIGKILLed at the end.
//!
//! Needs tgt, iproute2, qemu-system-x86, linux-image-amd64, busybox-static
//! and the `spdk` PyPI package in /opt/vswitch-spdk (`.ci/install-deps.sh
//! test`); fails naming them when missing.

mod vm;

#[path = "../iscsi-initiator/tests/common/mod.rs"]
mod tgt;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vm::*;

/// SPDK's rpc.py, as the `spdk` package installs it.
const SPDK_RPC: &str = "/opt/vswitch-spdk/bin/spdk-rpc";
const NULL_MB: u64 = 32;
const FILE_LEN: u64 = 48 << 20;

fn spdk_rpc(sock: &Path, args: &[&str]) -> Output {
    let bin = need(
        SPDK_RPC,
        "the `spdk` PyPI package (bash .ci/install-deps.sh test)",
    );
    Command::new(bin)
        .arg("-s")
        .arg(sock)
        .args(args)
        .output()
        .expect("run spdk-rpc")
}

/// Calls rpc.py; panics with its output if it fails; returns its stdout.
fn ok(sock: &Path, args: &[&str]) -> String {
    let o = spdk_rpc(sock, args);
    assert!(
        o.status.success(),
        "spdk-rpc {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(sock: &Path, args: &[&str]) -> Value {
    let out = ok(sock, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn wait_rpc(sock: &Path, server: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        if let Ok(Some(st)) = server.try_wait() {
            panic!(
                "server exited early: {st}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no {}", sock.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn disk_args(id: &str, sock: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!("socket,id={id},path={}", sock.display()),
        "-device".into(),
        format!("vhost-user-blk-pci,chardev={id},num-queues=2"),
    ]
}

/// The first guest: per disk (told apart by size), the pattern round trip,
/// or for the null disk a write and a read that must complete.
fn first_guest_script() -> String {
    let seek = PATTERN_OFFSET / 4096;
    let count = PATTERN_LEN / 4096;
    init_script_with(&format!(
        r#"for d in vda vdb vdc; do
  s=$(cat /sys/block/$d/size 2>/dev/null)
  echo "GUEST-DISK $d $s"
  if [ "$s" = "{null_sectors}" ]; then
    dd if=/pattern of=/dev/$d bs=4096 seek={seek} conv=fsync 2>/dev/null && echo GUEST-NULL-WRITE-OK
    echo 3 > /proc/sys/vm/drop_caches
    dd if=/dev/$d of=/nullread bs=4096 skip={seek} count={count} 2>/dev/null && echo GUEST-NULL-READ-OK
    rm -f /nullread
  else
    dd if=/pattern of=/dev/$d bs=4096 seek={seek} conv=fsync 2>/dev/null || echo "GUEST-WRITE-FAIL $s"
    echo 3 > /proc/sys/vm/drop_caches
    dd if=/dev/$d of=/readback bs=4096 skip={seek} count={count} 2>/dev/null || echo "GUEST-READ-FAIL $s"
    if cmp /pattern /readback; then echo "GUEST-PATTERN-OK $s"; else echo "GUEST-PATTERN-MISMATCH $s"; fi
    rm -f /readback
  fi
done
"#,
        null_sectors = NULL_MB << 11,
    ))
}

/// The second guest: the pattern the first one wrote, on every disk.
fn second_guest_script() -> String {
    init_script_with(&format!(
        r#"for d in vda vdb; do
  s=$(cat /sys/block/$d/size 2>/dev/null)
  dd if=/dev/$d of=/readback bs=4096 skip={seek} count={count} 2>/dev/null || echo "GUEST-READ-FAIL $s"
  if cmp /pattern /readback; then echo "GUEST-RESTORED-OK $s"; else echo "GUEST-RESTORED-MISMATCH $s"; fi
  rm -f /readback
done
"#,
        seek = PATTERN_OFFSET / 4096,
        count = PATTERN_LEN / 4096
    ))
}

fn bdev<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no bdev {name} in {list}"))
}

fn file_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

fn sigterm_and_wait(child: &mut Child, log: &Path) {
    // SAFETY: kill(2) with a pid this test spawned and a valid signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(
                st.success(),
                "server exit {st}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rpc_made_disks_serve_a_guest_and_come_back_from_a_saved_config() {
    let dir = std::env::temp_dir().join(format!("vswitch-rpc-qemu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    need(
        SPDK_RPC,
        "the `spdk` PyPI package (bash .ci/install-deps.sh test)",
    );
    let net = tgt::VethNetns::create("rq");
    let target = tgt::Tgtd::start_in_netns("rpc-qemu", DISK_LEN, &net.ns, &net.ns_addr);
    let image = dir.join("disk.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(FILE_LEN)
        .unwrap();
    let sock = dir.join("spdk.sock");
    let log = dir.join("serve.log");

    // 1. An empty server, then the devices through rpc.py.
    let mut server = Reaper(Some(
        Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(["blk", "serve", "--stats-interval", "0", "--rpc"])
            .arg(&sock)
            .arg("--vhost-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    ));
    wait_rpc(&sock, server.0.as_mut().unwrap(), &log);
    assert_eq!(
        ok(
            &sock,
            &["bdev_null_create", "null0", &NULL_MB.to_string(), "512"]
        )
        .trim(),
        "null0"
    );
    let img = image.to_str().unwrap();
    assert_eq!(
        ok(&sock, &["bdev_aio_create", img, "file0", "512"]).trim(),
        "file0"
    );
    // The iSCSI bdev through `vswitch rpc`, with a second portal (not in
    // rpc.py): the URL's portal refuses connections, the target answers on
    // the next one.
    let params = serde_json::json!({
        "name": "iscsi0",
        "url": format!("iscsi://127.0.0.1:9/{}/1", target.iqn),
        "initiator_iqn": "iqn.2026-01.dev.vswitch:rpc-test",
        "portals": [target.portal()],
    });
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["rpc", "-s"])
        .arg(&sock)
        .args(["bdev_iscsi_create", &params.to_string()])
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("iscsi0"),
        "{o:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for (c, b) in [
        ("vhost.null", "null0"),
        ("vhost.file", "file0"),
        ("vhost.iscsi", "iscsi0"),
    ] {
        ok(
            &sock,
            &["vhost_create_blk_controller", "--cpumask", "0x1", c, b],
        );
    }
    let bdevs = json(&sock, &["bdev_get_bdevs"]);
    assert_eq!(
        bdev(&bdevs, "iscsi0")["num_blocks"],
        DISK_LEN / 512,
        "{bdevs}"
    );
    assert_eq!(bdev(&bdevs, "file0")["product_name"], "AIO disk");
    assert_eq!(bdev(&bdevs, "null0")["claimed"], true);
    let file_uuid = bdev(&bdevs, "file0")["uuid"].clone();

    // 2. A guest on the three disks.
    let pattern = random_pattern();
    let initrd = build_initramfs_with(&dir, &first_guest_script(), &[("pattern", &pattern)]);
    let mut extra = disk_args("dfile", &dir.join("vhost.file"));
    extra.extend(disk_args("dnull", &dir.join("vhost.null")));
    let console = boot_guest_with(
        &dir,
        &dir.join("vhost.iscsi"),
        &initrd,
        false,
        "",
        &extra,
        |_| {},
    );
    let ctx = || {
        format!(
            "guest console:\n{console}\nserver log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };
    for want in [
        format!("GUEST-PATTERN-OK {}", DISK_LEN / 512),
        format!("GUEST-PATTERN-OK {}", FILE_LEN / 512),
        "GUEST-NULL-WRITE-OK".into(),
        "GUEST-NULL-READ-OK".into(),
    ] {
        assert!(console.contains(&want), "no {want}; {}", ctx());
    }
    assert!(
        file_bytes(&image, PATTERN_OFFSET, PATTERN_LEN) == pattern,
        "the pattern is not in the aio bdev's file; {}",
        ctx()
    );
    assert!(
        target.backing_bytes(PATTERN_OFFSET, PATTERN_LEN) == pattern,
        "the pattern is not in tgtd's backing file; {}",
        ctx()
    );
    let stat = json(&sock, &["bdev_get_iostat"]);
    for b in ["null0", "file0", "iscsi0"] {
        let s = bdev(&stat["bdevs"], b);
        assert!(
            s["num_write_ops"].as_u64().unwrap() > 0
                && s["bytes_written"].as_u64().unwrap() >= PATTERN_LEN as u64
                && s["num_read_ops"].as_u64().unwrap() > 0,
            "{b}: {s}"
        );
    }

    // 3. The guest is gone: delete the null disk; the claimed file bdev
    // cannot be deleted before its controller.
    ok(&sock, &["vhost_delete_controller", "vhost.null"]);
    assert!(
        !dir.join("vhost.null").exists(),
        "the controller's socket is gone"
    );
    ok(&sock, &["bdev_null_delete", "null0"]);
    let busy = spdk_rpc(&sock, &["bdev_aio_delete", "file0"]);
    assert!(!busy.status.success());
    let text =
        String::from_utf8_lossy(&busy.stdout).to_string() + &String::from_utf8_lossy(&busy.stderr);
    assert!(
        text.contains("-16") && text.contains("Device or resource busy"),
        "{text}"
    );
    let saved = dir.join("config.json");
    std::fs::write(&saved, ok(&sock, &["save_config"])).unwrap();
    sigterm_and_wait(server.0.as_mut().unwrap(), &log);
    server.0 = None;
    assert!(!dir.join("vhost.file").exists());

    // 4. `vswitch run --config-json`: the saved devices come back.
    let log2 = dir.join("run.log");
    let mut run = Reaper(Some(
        Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(["run", "--no-control", "--stats-interval", "0", "--eal"])
            .arg(format!(
                "-l 0-1 --no-pci --no-huge -m 512 --no-shconf --file-prefix rpcq{}",
                std::process::id()
            ))
            .arg("--rpc")
            .arg(&sock)
            .arg("--vhost-dir")
            .arg(&dir)
            .arg("--config-json")
            .arg(&saved)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log2).unwrap()))
            .spawn()
            .unwrap(),
    ));
    wait_rpc(&sock, run.0.as_mut().unwrap(), &log2);
    let bdevs = json(&sock, &["bdev_get_bdevs"]);
    let names: Vec<&str> = bdevs
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["file0", "iscsi0"], "{bdevs}");
    assert_eq!(
        bdev(&bdevs, "file0")["uuid"],
        file_uuid,
        "the UUID is saved too"
    );
    let ctrls = json(&sock, &["vhost_get_controllers"]);
    assert_eq!(ctrls.as_array().unwrap().len(), 2, "{ctrls}");
    let initrd = build_initramfs_with(&dir, &second_guest_script(), &[("pattern", &pattern)]);
    let extra = disk_args("dfile", &dir.join("vhost.file"));
    let console = boot_guest_with(
        &dir,
        &dir.join("vhost.iscsi"),
        &initrd,
        false,
        "",
        &extra,
        |_| {},
    );
    let ctx = format!(
        "guest console:\n{console}\nrun log:\n{}",
        std::fs::read_to_string(&log2).unwrap_or_default()
    );
    assert!(
        console.contains(&format!("GUEST-RESTORED-OK {}", DISK_LEN / 512)),
        "{ctx}"
    );
    assert!(
        console.contains(&format!("GUEST-RESTORED-OK {}", FILE_LEN / 512)),
        "{ctx}"
    );
    sigterm_and_wait(run.0.as_mut().unwrap(), &log2);
    run.0 = None;
    drop(target); // SIGKILL
    drop(net);
}
