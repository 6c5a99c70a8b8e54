//! SPDK's JSON-RPC on `vswitch blk serve --rpc`, driven the way rpc.py
//! drives it, with bad input: malformed JSON, invalid requests, unknown
//! methods, missing and mistyped params, duplicate and unknown names, a
//! claimed bdev. Each gets its JSON-RPC error (SPDK's code), nothing
//! crashes, and the server keeps serving. No root, no VM.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Server(Child, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start(tag: &str) -> (Server, PathBuf) {
    let dir = std::env::temp_dir().join(format!("vswitch-rpc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("rpc.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--stats-interval", "0", "--rpc"])
        .arg(&sock)
        .arg("--vhost-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("server.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut s = Server(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&sock).is_err() {
        assert!(s.0.try_wait().unwrap().is_none(), "server exited");
        assert!(Instant::now() < deadline, "no {}", sock.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    (s, sock)
}

/// Sends `bytes`, returns the next whole JSON value (None: closed).
fn exchange(c: &mut UnixStream, bytes: &[u8]) -> Option<Value> {
    c.write_all(bytes).unwrap();
    read_value(c)
}

fn read_value(c: &mut UnixStream) -> Option<Value> {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
        if let Some(Ok(v)) = it.next() {
            return Some(v);
        }
        let n = c.read(&mut chunk).unwrap();
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `n` whole values (they may arrive in one read).
fn read_values(c: &mut UnixStream, n: usize) -> Vec<Value> {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let got: Vec<Value> = serde_json::Deserializer::from_slice(&buf)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .collect();
        if got.len() >= n {
            return got;
        }
        let k = c.read(&mut chunk).unwrap();
        assert!(k > 0, "closed after {} values", got.len());
        buf.extend_from_slice(&chunk[..k]);
    }
}

fn call(sock: &Path, method: &str, params: Value) -> Value {
    let mut c = UnixStream::connect(sock).unwrap();
    let mut req = json!({"jsonrpc": "2.0", "method": method, "id": 1});
    if !params.is_null() {
        req["params"] = params;
    }
    // rpc.py sends pretty-printed JSON.
    exchange(
        &mut c,
        serde_json::to_string_pretty(&req).unwrap().as_bytes(),
    )
    .unwrap()
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {v}"))
}

#[test]
fn bad_input_gets_json_rpc_errors_and_the_server_keeps_serving() {
    let (mut server, sock) = start("errors");
    protocol_errors(&sock);
    spdk_errno_codes(&sock, &server.1);
    batch_and_deletion_order(&sock, &server.1);
    // Still serving, and alive.
    let methods = call(
        &sock,
        "rpc_get_methods",
        json!({"current": false, "include_aliases": false}),
    );
    assert!(methods["result"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "bdev_get_iostat"));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server is still running"
    );

    cli_client(&sock);
}

/// JSON-RPC 2.0's own errors: parse error (-32700), invalid request
/// (-32600), unknown method (-32601), bad params (-32602).
fn protocol_errors(sock: &Path) {
    // Not JSON: -32700, then the connection closes (no resync point in a
    // stream); a new connection is served.
    let mut c = UnixStream::connect(sock).unwrap();
    let r = exchange(&mut c, b"{\"jsonrpc\": \"2.0\", \"method\": ]").unwrap();
    assert_eq!(code(&r), -32700, "{r}");
    assert_eq!(r["id"], Value::Null);
    assert!(
        read_value(&mut c).is_none(),
        "connection closed after a parse error"
    );

    // Invalid requests: -32600, the request's id kept when it was usable.
    for (req, id) in [
        (json!({"method": "bdev_get_bdevs", "id": 3}), json!(3)),
        (
            json!({"jsonrpc": "1.0", "method": "x", "id": "a"}),
            json!("a"),
        ),
        (json!({"jsonrpc": "2.0", "method": 7, "id": 4}), json!(4)),
        (
            json!({"jsonrpc": "2.0", "method": "x", "id": 5, "params": 1}),
            json!(5),
        ),
        (json!(42), Value::Null),
        (json!([]), Value::Null),
    ] {
        let mut c = UnixStream::connect(sock).unwrap();
        let r = exchange(&mut c, req.to_string().as_bytes()).unwrap();
        assert_eq!(code(&r), -32600, "{req} -> {r}");
        assert_eq!(r["id"], id, "{req} -> {r}");
    }

    assert_eq!(code(&call(sock, "bdev_make_coffee", Value::Null)), -32601);

    // Params: missing, mistyped, unknown member, positional: -32602.
    for params in [
        json!({"name": "n0"}),
        json!({"name": "n0", "num_blocks": "many", "block_size": 512}),
        json!({"name": "n0", "num_blocks": -1, "block_size": 512}),
        json!({"name": "n0", "num_blocks": 8, "block_size": 512, "colour": "red"}),
        json!(["n0", 8, 512]),
    ] {
        let r = call(sock, "bdev_null_create", params.clone());
        assert_eq!(code(&r), -32602, "{params} -> {r}");
    }
    assert_eq!(
        code(&call(sock, "vhost_delete_controller", Value::Null)),
        -32602
    );
}

/// SPDK's errno codes for what its methods refuse; leaves bdev `n0` with
/// controller `c0` on it.
fn spdk_errno_codes(sock: &Path, dir: &Path) {
    // SPDK's errno codes.
    let null = |name: &str, bs: u32| json!({"name": name, "num_blocks": 2048, "block_size": bs});
    let ok = call(sock, "bdev_null_create", null("n0", 512));
    assert_eq!(ok["result"], "n0", "{ok}");
    assert_eq!(
        code(&call(sock, "bdev_null_create", null("n0", 512))),
        -libc::EEXIST as i64
    );
    assert_eq!(
        code(&call(sock, "bdev_null_create", null("n1", 1000))),
        -libc::EINVAL as i64
    );
    let zero = json!({"name": "n2", "num_blocks": 0, "block_size": 512});
    assert_eq!(
        code(&call(sock, "bdev_null_create", zero)),
        -libc::EINVAL as i64
    );
    let uuid = json!({"name": "n3", "num_blocks": 8, "block_size": 512, "uuid": "nope"});
    assert_eq!(
        code(&call(sock, "bdev_null_create", uuid)),
        -libc::EINVAL as i64
    );
    let enodev = -libc::ENODEV as i64;
    assert_eq!(
        code(&call(sock, "bdev_get_bdevs", json!({"name": "nope"}))),
        enodev
    );
    assert_eq!(
        code(&call(sock, "bdev_null_delete", json!({"name": "nope"}))),
        enodev
    );
    // Another module's bdev: as SPDK, no such device for this module.
    assert_eq!(
        code(&call(sock, "bdev_malloc_delete", json!({"name": "n0"}))),
        enodev
    );
    let missing_file = json!({"name": "a0", "filename": "/nonexistent/disk.img"});
    assert_eq!(
        code(&call(sock, "bdev_aio_create", missing_file)),
        -libc::ENOENT as i64
    );
    let bad_url = json!({"name": "i0", "url": "http://x/y", "initiator_iqn": "iqn.a:b"});
    assert_eq!(
        code(&call(sock, "bdev_iscsi_create", bad_url)),
        -libc::EINVAL as i64
    );
    let ctrl = |c: &str, d: &str| json!({"ctrlr": c, "dev_name": d, "cpumask": "0x1"});
    assert_eq!(
        code(&call(
            sock,
            "vhost_create_blk_controller",
            ctrl("c0", "nope")
        )),
        enodev
    );
    let r = call(sock, "vhost_create_blk_controller", ctrl("c0", "n0"));
    assert_eq!(r["result"], true, "{r}");
    // The bdev is claimed now: a second controller, deleting it.
    let r = call(sock, "bdev_get_bdevs", json!({"name": "n0"}));
    assert_eq!(r["result"][0]["claimed"], true, "{r}");
    assert_eq!(
        code(&call(sock, "vhost_create_blk_controller", ctrl("c1", "n0"))),
        -libc::EPERM as i64
    );
    assert_eq!(
        code(&call(sock, "vhost_create_blk_controller", ctrl("c0", "n0"))),
        -libc::EEXIST as i64
    );
    assert_eq!(
        code(&call(sock, "bdev_null_delete", json!({"name": "n0"}))),
        -libc::EBUSY as i64
    );
    assert_eq!(
        code(&call(
            sock,
            "vhost_delete_controller",
            json!({"ctrlr": "c9"})
        )),
        enodev
    );
    // A controller socket never replaces a file that is not a socket.
    let victim = dir.join("precious.txt");
    std::fs::write(&victim, "keep").unwrap();
    call(sock, "bdev_null_create", null("n5", 512));
    let over = json!({"ctrlr": "c5", "dev_name": "n5", "socket": victim});
    assert_eq!(
        code(&call(sock, "vhost_create_blk_controller", over)),
        -libc::EEXIST as i64
    );
    let dotdot = json!({"ctrlr": "..", "dev_name": "n5"});
    assert_eq!(
        code(&call(sock, "vhost_create_blk_controller", dotdot)),
        -libc::EEXIST as i64
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(
        call(sock, "bdev_null_delete", json!({"name": "n5"}))["result"],
        true
    );
    assert_eq!(
        code(&call(sock, "bdev_set_qos_limit", json!({"name": "n0"}))),
        -libc::EINVAL as i64
    );
    assert_eq!(
        code(&call(sock, "framework_get_config", json!({"name": "nvmf"}))),
        -32602
    );
}

/// Several requests in one write (one a notification), then the
/// controller and its bdev deleted in the right order.
fn batch_and_deletion_order(sock: &Path, dir: &Path) {
    // Several requests in one write, the second a notification (no answer).
    let mut c = UnixStream::connect(sock).unwrap();
    let two = b"{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":\"v\"}\n\
                {\"jsonrpc\":\"2.0\",\"method\":\"vhost_get_controllers\"}\n\
                {\"jsonrpc\":\"2.0\",\"method\":\"vhost_get_controllers\",\"id\":9}";
    c.write_all(two).unwrap();
    let rs = read_values(&mut c, 2);
    let r = &rs[0];
    assert_eq!(r["id"], "v");
    assert!(r["result"]["version"].as_str().unwrap().contains("vswitch"));
    let r = &rs[1];
    assert_eq!(r["id"], 9);
    assert_eq!(r["result"][0]["ctrlr"], "c0", "{r}");

    // Deleting in the right order works; the socket goes away.
    let csock = dir.join("c0");
    assert!(csock.exists());
    assert_eq!(
        call(sock, "vhost_delete_controller", json!({"ctrlr": "c0"}))["result"],
        true
    );
    assert!(!csock.exists(), "the controller's socket is removed");
    assert_eq!(
        call(sock, "bdev_null_delete", json!({"name": "n0"}))["result"],
        true
    );
    assert_eq!(
        call(sock, "bdev_get_bdevs", Value::Null)["result"],
        json!([])
    );
}

/// `vswitch rpc`: a result on stdout and status 0, an error and status 1.
fn cli_client(sock: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["rpc", "--rpc"])
        .arg(sock)
        .args([
            "bdev_malloc_create",
            r#"{"num_blocks": 64, "block_size": 512}"#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Malloc0"),
        "{out:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["rpc", "-s"])
        .arg(sock)
        .args(["bdev_malloc_delete", r#"{"name": "Malloc7"}"#])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error -19"),
        "{out:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["rpc", "-s"])
        .arg(sock)
        .args(["bdev_get_bdevs", "{not json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not JSON"),
        "{out:?}"
    );
}
