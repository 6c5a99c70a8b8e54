//! A real tgtd through the crate: started, configured, refused where it
//! should be, and gone without a trace after drop.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tgt_sandbox::{free_control_port, free_tcp_port, Daemon, Launch, Tgtadm};

fn show(control: u16) -> String {
    let o = Command::new("tgtadm")
        .args(["-C", &control.to_string(), "--lld", "iscsi"])
        .args(["--mode", "target", "--op", "show"])
        .output()
        .expect("tgtadm (Debian package `tgt`)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn exports_a_lun_with_chap_and_leaves_nothing_behind() {
    let dir = std::env::temp_dir().join(format!("tgt-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backing = dir.join("lun1.img");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let control = free_control_port(std::process::id()).unwrap();
    let mut tgtd = Daemon::spawn(Launch {
        control,
        portal: format!("127.0.0.1:{}", free_tcp_port().unwrap()),
        netns: None,
        log: Some(dir.join("tgtd.log")),
    })
    .unwrap();
    tgtd.wait_ready(Duration::from_secs(5), true).unwrap();
    let pid = tgtd.pid();
    let adm = tgtd.adm();
    assert_eq!(adm.control(), control);

    let iqn = "iqn.2026-01.dev.vswitch:tgt-sandbox-test";
    adm.export_lun(iqn, &backing).unwrap();
    adm.new_lun(2, Path::new("/dev/null"), Some("null"))
        .unwrap();
    adm.new_account("alice", "alicesecret12").unwrap();
    adm.bind_account("alice", false).unwrap();
    adm.update_lun(1, "thin_provisioning=1").unwrap();
    adm.update_target("HeaderDigest", "CRC32C,None").unwrap();
    let out = show(control);
    for want in [
        iqn,
        "LUN: 1",
        "LUN: 2",
        backing.to_str().unwrap(),
        "alice",
        "ALL",
    ] {
        assert!(out.contains(want), "`{want}` missing from:\n{out}");
    }

    // tgtd's own refusals come back as errors with its message.
    let e = adm.export_lun(iqn, &backing).unwrap_err();
    assert!(e.contains("tgtadm") && e.contains("exist"), "{e}");
    let e = adm
        .new_lun(3, Path::new("/nonexistent/file"), None)
        .unwrap_err();
    assert!(e.contains("--lun"), "{e}");

    drop(tgtd);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "tgtd {pid} still runs"
    );
    for suffix in ["", ".lock"] {
        let sock = format!("/var/run/tgtd/socket.{control}{suffix}");
        assert!(!Path::new(&sock).exists(), "{sock} left behind");
    }
    assert!(!Tgtadm::new(control).ready());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tgtd_that_exits_is_reported_with_its_log() {
    // No such namespace: `ip netns exec` fails and says why in the log.
    let dir = std::env::temp_dir().join(format!("tgt-sandbox-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tgtd = Daemon::spawn(Launch {
        control: free_control_port(std::process::id() + 7).unwrap(),
        portal: format!("127.0.0.1:{}", free_tcp_port().unwrap()),
        netns: Some(format!("tgt-sandbox-none-{}", std::process::id())),
        log: Some(dir.join("tgtd.log")),
    })
    .unwrap();
    let e = tgtd
        .wait_ready(Duration::from_secs(5), false)
        .expect_err("a tgtd that never ran must not be ready");
    assert!(e.contains("tgtd exited"), "{e}");
    assert!(e.contains("log:") && e.contains("tgt-sandbox-none"), "{e}");
    drop(tgtd);
    let _ = std::fs::remove_dir_all(&dir);
}
