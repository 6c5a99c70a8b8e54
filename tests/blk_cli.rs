//! `vswitch blk serve` as a user runs it: bad arguments get clear errors,
//! a good one serves until SIGTERM and then prints its stats and removes
//! its socket.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vswitch(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let sock = std::env::temp_dir().join(format!("vswitch-cli-{}.sock", std::process::id()));
    let s = sock.to_str().unwrap();
    // Each line: the arguments (split at spaces; SOCK is the socket path)
    // and what the error must say.
    let cases = [
        ("blk serve --socket SOCK --backend disk", "expected KIND:ARG"),
        ("blk serve --socket SOCK --backend null:1G --cache 100", "multiple of 512"),
        ("blk serve --socket SOCK --backend null:1G --cache 4K", "need at least"),
        ("blk serve --socket SOCK --backend null:1G --cache-mode writeback", "--cache"),
        ("blk serve --socket SOCK --backend null:1G --cache 1M --cache-mode later", "writeback"),
        ("blk serve --socket SOCK --backend null:1G --cache-meta /dev/shm/x", "--cache"),
        ("blk serve --socket SOCK --backend null:1G --cache 1M --cache-meta /dev/shm/x --cache-meta /dev/shm/y", "one metadata file per device"),
        ("blk serve --socket SOCK --backend null:1G --cache 1M --cache-meta /proc", "cache metadata file /proc"),
        ("blk serve --socket SOCK --backend tape:1G", "kind must be file, null or mem"),
        ("blk serve --socket SOCK --backend null:100", "multiple of 512"),
        ("blk serve --socket SOCK --backend file:/nonexistent/disk.img", "/nonexistent/disk.img"),
        ("blk serve --socket SOCK --backend null:1G --block-size 1000", "must be 512 or 4096"),
        ("blk serve --socket SOCK --backend null:1G --queues 0", "--queues"),
        ("blk stats --stats-file /nonexistent/stats", "is `vswitch blk serve --stats-file` running?"),
        ("blk serve --socket SOCK --socket SOCK --backend null:1G", "one backend per socket"),
    ];
    for (line, want) in cases {
        let args: Vec<&str> = line
            .split(' ')
            .map(|w| if w == "SOCK" { s } else { w })
            .collect();
        let (code, text) = vswitch(&args);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(
            text.contains(want),
            "{args:?}: expected `{want}` in:\n{text}"
        );
    }
    assert!(!sock.exists());
}

#[test]
fn serves_until_sigterm_then_reports() {
    let sock = std::env::temp_dir().join(format!("vswitch-cli-run-{}.sock", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args([
            "blk",
            "serve",
            "--backend",
            "mem:64M",
            "--queues",
            "2",
            "--block-size",
            "4096",
            "--socket",
        ])
        .arg(&sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        if t.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("socket never appeared");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("131072 sectors, block size 4096, 2 queues"),
        "{stderr}"
    );
    assert!(
        stdout.contains("reads 0 writes 0"),
        "final stats line: {stdout}"
    );
    assert!(!sock.exists(), "socket removed on exit");
}

#[test]
fn run_refuses_wait_polling_on_several_lcores() {
    // Two forwarding lcores (both on CPU 1, so it runs on any 2-CPU host):
    // the host stack, polled by the first, could get frames from the second
    // while the first blocks, so `--poll wait` is refused before any setup.
    let sock = std::env::temp_dir().join(format!("vswitch-wait-{}.sock", std::process::id()));
    let eal = format!(
        "--lcores 0@0,1@1,2@1 --no-huge -m 256 --no-shconf --no-pci --no-telemetry --log-level=*:error --file-prefix vsw-wait-{}",
        std::process::id()
    );
    let blk = format!("{}=null:1M", sock.display());
    let (code, text) = vswitch(&[
        "run",
        "--eal",
        &eal,
        "--port",
        "net_null0",
        "--no-control",
        "--blk",
        &blk,
        "--poll",
        "wait",
    ]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("--poll wait needs one forwarding lcore, and the EAL gives 2"),
        "{text}"
    );
    assert!(!sock.exists(), "no device was served");
}
