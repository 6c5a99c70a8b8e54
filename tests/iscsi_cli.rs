//! `vswitch iscsi ...` against a private tgtd (Debian package `tgt`).

#[path = "../iscsi-initiator/tests/common/mod.rs"]
mod common;

use common::{Rng, Tgtd};
use std::process::Command;

fn vswitch(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .output()
        .expect("run vswitch");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn discover_inquiry_capacity_write_read() {
    let t = Tgtd::start("cli", 16 << 20);
    let portal = t.portal();
    let (ok, out, err) = vswitch(&["iscsi", "discover", &portal]);
    assert!(ok, "{err}");
    assert!(out.contains(&t.iqn), "{out}");

    let (ok, out, err) = vswitch(&["iscsi", "inquiry", &portal, &t.iqn, "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("vendor: IET"), "{out}");

    let (ok, out, err) = vswitch(&["iscsi", "capacity", &portal, &t.iqn, "1"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("16777216 bytes (32768 blocks of 512 bytes)"),
        "{out}"
    );

    let input = t.dir.join("in.bin");
    let output = t.dir.join("out.bin");
    let mut data = vec![0u8; 640 << 10];
    Rng(99).fill(&mut data);
    std::fs::write(&input, &data).unwrap();
    let (ok, _, err) = vswitch(&[
        "iscsi",
        "write",
        &portal,
        &t.iqn,
        "1",
        "--offset",
        "1048576",
        "--in",
        input.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        t.backing_bytes(1 << 20, data.len()) == data,
        "backing file differs"
    );
    let (ok, _, err) = vswitch(&[
        "iscsi",
        "read",
        &portal,
        &t.iqn,
        "1",
        "--offset",
        "1048576",
        "--length",
        &data.len().to_string(),
        "--out",
        output.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(std::fs::read(&output).unwrap() == data, "read-back differs");

    // Bad input: clear errors, non-zero exit.
    let (ok, _, err) = vswitch(&[
        "iscsi",
        "read",
        &portal,
        &t.iqn,
        "1",
        "--offset",
        "100",
        "--length",
        "512",
        "--out",
        output.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("not aligned"), "{err}");
    let (ok, _, err) = vswitch(&[
        "iscsi",
        "capacity",
        &portal,
        "iqn.2026-01.dev.vswitch:nope",
        "1",
    ]);
    assert!(!ok && err.contains("target not found"), "{err}");
}
