//! `vswitch blk serve --backend iscsi://...` and `--user-tcp`: bad arguments
//! (malformed portal lists and options too, secrets never echoed)
//! and an unreachable portal are refused with a clear message and exit code 1,
//! before any socket is created.

use std::process::Command;

fn serve(args: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("vswitch-blk-iscsi-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("never.sock");
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--stats-interval", "0", "--socket"])
        .arg(&sock)
        .args(args)
        .output()
        .unwrap();
    assert!(!sock.exists(), "no socket on error");
    let _ = std::fs::remove_dir_all(&dir);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_iscsi_backends_are_refused_clearly() {
    // A port nobody listens on: bind one, note it, close it.
    let port = tgt_sandbox::free_tcp_port().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (
            &["--backend", "iscsi://127.0.0.1:3260,127.0.0.2:0/iqn.a:b/1"],
            "portal `127.0.0.2:0`: port 0",
        ),
        (
            &["--backend", "iscsi://127.0.0.1/iqn.a:b/1?colour=red"],
            "unknown key `colour`",
        ),
        (
            &[
                "--backend",
                "iscsi://u%hunter2@127.0.0.1/iqn.a:b/1?target_user=t",
            ],
            "target_user and target_password go together",
        ),
        // Every portal is tried and named in the error.
        (
            &[
                "--backend",
                &format!("iscsi://127.0.0.1:{port},127.0.0.2:{port}/iqn.a:b/1"),
            ],
            &format!("127.0.0.2:{port}: connect"),
        ),
        (
            &["--backend", "iscsi://127.0.0.1:3260/target/1"],
            "must start with iqn.",
        ),
        (
            &["--backend", "iscsi://127.0.0.1:3260/iqn.a:b"],
            "three parts",
        ),
        (
            &["--backend", "iscsi://127.0.0.1:3260/iqn.a:b/x"],
            "LUN must be a number",
        ),
        (
            &["--backend", &format!("iscsi://127.0.0.1:{port}/iqn.a:b/1")],
            "connect",
        ),
        (
            &[
                "--backend",
                "null:1M",
                "--user-tcp",
                "10.0.0.1/24@net_null0",
            ],
            "exactly one iscsi:// backend",
        ),
        (
            &[
                "--backend",
                "iscsi://10.0.0.2:3260/iqn.a:b/1",
                "--user-tcp",
                "10.0.0.1/24",
            ],
            "ADDR/PREFIX@DEVARGS",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = serve(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected `{want}` in: {err}");
        assert!(!err.contains("hunter2"), "a secret in the message: {err}");
    }
}
