//! `vswitch accel ...` against an emulated accelerator running in its own
//! process: the commands reach it only through its shared-memory BARs.

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vswitch");

/// The device process and its BAR directory; killed and removed on drop.
struct DeviceProc {
    child: Child,
    dir: PathBuf,
}

impl Drop for DeviceProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn accel(dir: &PathBuf, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("accel")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run vswitch")
}

fn ok(dir: &PathBuf, args: &[&str]) -> String {
    let o = accel(dir, args);
    assert!(
        o.status.success(),
        "vswitch accel {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(dir: &PathBuf, args: &[&str], needle: &str) {
    let o = accel(dir, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "vswitch accel {args:?} should fail");
    assert!(
        err.contains(needle),
        "vswitch accel {args:?}: {err:?} lacks {needle:?}"
    );
}

#[test]
fn cli_drives_an_emulated_device_in_another_process() {
    let dir = std::env::temp_dir().join(format!("accel-cli-{}", std::process::id()));
    fails(&dir, &["caps"], "vswitch accel device --dir");
    let child = Command::new(BIN)
        .args(["accel", "device", "--cu", "4", "--mem", "16M", "--dir"])
        .arg(&dir)
        .spawn()
        .expect("start device process");
    let dev = DeviceProc {
        child,
        dir: dir.clone(),
    };
    let t = Instant::now();
    while !accel(&dir, &["caps"]).status.success() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "device process did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let caps = ok(&dir, &["caps"]);
    assert!(caps.contains("compute units   4 (free mask 0xf)"), "{caps}");
    assert!(caps.contains("device memory   16M"), "{caps}");
    let out = ok(
        &dir,
        &["vf", "create", "--cu", "3", "--mem", "4M", "--queues", "2"],
    );
    assert!(out.starts_with("created vf 0"), "{out}");
    fails(
        &dir,
        &["vf", "create", "--cu", "2", "--mem", "1M", "--queues", "1"],
        "overcommit",
    );
    fails(
        &dir,
        &[
            "vf", "create", "--cu", "1", "--mem", "1000", "--queues", "1",
        ],
        "invalid argument",
    );
    fails(
        &dir,
        &[
            "vf", "create", "--cu", "1", "--mem", "1M", "--queues", "1", "--quota", "0",
        ],
        "invalid argument",
    );
    // The failed quota left no VF behind.
    let out = ok(
        &dir,
        &[
            "vf", "create", "--cu", "1", "--mem", "1M", "--queues", "1", "--quota", "500",
        ],
    );
    assert!(out.starts_with("created vf 1"), "{out}");
    assert!(out.contains("quota          500/1000"), "{out}");
    // CRC32C of a file's bytes, computed by the device and checked against
    // the well-known check value of "123456789".
    let input = dir.join("input");
    std::fs::write(&input, b"123456789").unwrap();
    let out = ok(
        &dir,
        &["run", "1", "crc32c", "--input", input.to_str().unwrap()],
    );
    assert!(
        out.contains("len 9 result 0xe3069283 (verified on host)"),
        "{out}"
    );
    let out = ok(
        &dir,
        &[
            "run", "0", "checksum", "--len", "1M", "--count", "4", "--queue", "1",
        ],
    );
    assert!(
        out.contains("(verified on host)") && out.contains("4 jobs, 4194304 bytes"),
        "{out}"
    );
    fails(
        &dir,
        &[
            "run",
            "1",
            "crc32c",
            "--offset",
            "1M",
            "--len",
            "16",
            "--no-fill",
        ],
        "outside the VF memory window",
    );
    fails(&dir, &["run", "0", "sha1"], "unknown job");
    fails(&dir, &["run", "7", "crc32c"], "no such virtual function");
    let list = ok(&dir, &["vf", "list"]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(
        rows[0].split_whitespace().nth(8) == Some("4194304"),
        "{list}"
    );
    ok(&dir, &["vf", "destroy", "1"]);
    fails(&dir, &["vf", "destroy", "1"], "no such virtual function");
    assert_eq!(ok(&dir, &["vf", "list"]).lines().count(), 2);
    drop(dev);
}

#[test]
fn concurrent_cli_processes_get_distinct_vfs() {
    let dir = std::env::temp_dir().join(format!("accel-cli-conc-{}", std::process::id()));
    let child = Command::new(BIN)
        .args(["accel", "device", "--cu", "8", "--mem", "16M", "--dir"])
        .arg(&dir)
        .spawn()
        .expect("start device process");
    let _dev = DeviceProc {
        child,
        dir: dir.clone(),
    };
    let t = Instant::now();
    while !accel(&dir, &["caps"]).status.success() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "device process did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Ten processes race for eight compute units.
    let kids: Vec<Child> = (0..10)
        .map(|_| {
            Command::new(BIN)
                .arg("accel")
                .arg("--dir")
                .arg(&dir)
                .args(["vf", "create", "--cu", "1", "--mem", "1M", "--queues", "2"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    let mut refused = 0;
    for k in kids {
        let o = k.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        if o.status.success() {
            let id: u32 = out
                .lines()
                .next()
                .unwrap()
                .trim_start_matches("created vf ")
                .parse()
                .unwrap();
            ids.push(id);
        } else {
            assert!(String::from_utf8_lossy(&o.stderr).contains("overcommit"));
            refused += 1;
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        (0..8).collect::<Vec<u32>>(),
        "each winner got its own VF"
    );
    assert_eq!(refused, 2);
    let caps = ok(&dir, &["caps"]);
    assert!(caps.contains("free mask 0x0"), "{caps}");
    assert!(caps.contains("device memory   16M (free 8M"), "{caps}");
}

#[test]
fn real_device_commands_explain_what_is_missing() {
    let run = |args: &[&str]| Command::new(BIN).arg("accel").args(args).output().unwrap();
    let o = run(&["--pci", "0000:fe:1f.7", "caps"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no PCI device 0000:fe:1f.7"));
    let o = run(&["--pci", "nonsense", "vf", "list"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a PCI address"));
    let o = run(&["sriov", "0000:fe:1f.7", "--numvfs", "2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no PCI device 0000:fe:1f.7"));
    let o = run(&["--pci", "0000:00:00.0", "--dir", "/tmp", "caps"]);
    assert!(
        !o.status.success(),
        "--pci and --dir together must be refused"
    );
}
