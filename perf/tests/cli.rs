//! Every benchmark's command line (issue 17): `--help` and `-h` print usage
//! and exit at once without running anything; an unknown flag is an error
//! (exit 2) that names the flag.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINS: [(&str, &str); 11] = [
    ("accel_vf", env!("CARGO_BIN_EXE_accel_vf")),
    ("blk_cache", env!("CARGO_BIN_EXE_blk_cache")),
    ("blk_device", env!("CARGO_BIN_EXE_blk_device")),
    ("blk_iscsi", env!("CARGO_BIN_EXE_blk_iscsi")),
    ("blk_vhost", env!("CARGO_BIN_EXE_blk_vhost")),
    ("classifier", env!("CARGO_BIN_EXE_classifier")),
    ("forward", env!("CARGO_BIN_EXE_forward")),
    ("iscsi_bench", env!("CARGO_BIN_EXE_iscsi_bench")),
    ("switch", env!("CARGO_BIN_EXE_switch")),
    ("switch_latency", env!("CARGO_BIN_EXE_switch_latency")),
    ("vm_net", env!("CARGO_BIN_EXE_vm_net")),
];

/// Runs `bin arg`; a benchmark that starts running instead of answering is
/// killed after 10 s and fails the test.
fn run(name: &str, bin: &str, arg: &str) -> Output {
    let mut child = Command::new(bin)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{name} {arg} ran for 10 s instead of answering:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn help_prints_usage_and_exits() {
    for (name, bin) in BINS {
        for arg in ["--help", "-h"] {
            let o = run(name, bin, arg);
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "{name} {arg}: {:?}\n{out}", o.status);
            assert!(
                out.contains(&format!("Usage: {name}")),
                "{name} {arg} printed no usage:\n{out}"
            );
        }
    }
}

#[test]
fn an_unknown_flag_is_an_error_naming_it() {
    for (name, bin) in BINS {
        let o = run(name, bin, "--no-such-flag");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name} --no-such-flag:\n{err}");
        assert!(err.contains("--no-such-flag"), "{name}:\n{err}");
    }
}

#[test]
fn blk_vhost_refuses_bad_rows_and_reports_a_missing_spdk_app() {
    let bin = env!("CARGO_BIN_EXE_blk_vhost");
    let o = Command::new(bin).args(["--rows", "1:0"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--rows"), "{err}");
    // No SPDK app at that path: its row fails with the reason, the run ends.
    let o = Command::new(bin)
        .args(["--targets", "spdk", "--rows", "1:1", "--repeat", "1"])
        .args(["--spdk", "/nonexistent/spdk/build/bin/vhost"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("spdk") && out.contains("failed: SPDK vhost app /nonexistent"),
        "{out}"
    );
    // Without --spdk the SPDK rows are skipped with a note.
    let o = Command::new(bin)
        .args(["--targets", "spdk", "--rows", "1:1", "--repeat", "1"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("spdk: skipped"), "{out}");
}

#[test]
fn vm_net_refuses_zero_rounds_and_bad_numbers() {
    let bin = env!("CARGO_BIN_EXE_vm_net");
    for args in [
        ["--rounds", "0"],
        ["--rounds", "x"],
        ["--seconds", "0"],
        ["--in-flight", "513"],
        ["--in-flight", "many"],
    ] {
        let o = Command::new(bin).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
