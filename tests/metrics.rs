//! `--metrics`: a running `vswitch blk serve` and `vswitch run` scraped by
//! `curl`, the text parsed by the Prometheus Python client's parser
//! (Debian's python3-prometheus-client), with traffic between two scrapes:
//! storage driven through vhost-user by the repo's front end
//! (`vfio::vhost_user::mock_frontend`), switch traffic from net_null ports.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vfio::blk::mock::BlkReq;
use vfio::blk::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use vfio::vhost_user::mock_frontend::MockFrontend;
use vfio::virtq::mock::Buf;

/// The Prometheus client's own parser: families (name, type, help) and
/// samples keyed `name{sorted labels}`, as JSON.
const PARSE: &str = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
fams, samples = [], {}
for f in text_string_to_metric_families(sys.stdin.read()):
    fams.append({"name": f.name, "type": f.type, "help": f.documentation})
    for s in f.samples:
        key = s.name + "{" + ",".join('%s="%s"' % kv for kv in sorted(s.labels.items())) + "}"
        samples[key] = s.value
print(json.dumps({"families": fams, "samples": samples}))
"#;

struct Scrape {
    text: String,
    types: HashMap<String, String>,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn get(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in\n{}", self.text))
    }
}

fn curl(args: &[&str]) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (bash .ci/install-deps.sh test)");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// Scrapes with curl, parses with prometheus_client, checks the format's
/// rules the lenient parser does not.
fn scrape(port: u16) -> Scrape {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = curl(&[&url]).expect("curl GET /metrics");
    let mut py = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut types = HashMap::new();
    for f in v["families"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap().to_string();
        assert!(
            !f["help"].as_str().unwrap().is_empty(),
            "{name} has no HELP"
        );
        types.insert(name, f["type"].as_str().unwrap().to_string());
    }
    let samples = v["samples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    check_format(&text);
    Scrape {
        text,
        types,
        samples,
    }
}

/// Every sample follows its family's HELP and TYPE; counters end in
/// `_total`; histogram buckets ascend, are cumulative and end at +Inf =
/// count.
fn check_format(text: &str) {
    let mut family = String::new();
    let mut kind = String::new();
    let mut last_bucket: Option<(String, f64)> = None;
    let mut seen = std::collections::HashSet::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix("# HELP ") {
            family = rest.split(' ').next().unwrap().to_string();
            assert!(seen.insert(family.clone()), "family {family} twice");
            let t = lines.next().expect("TYPE after HELP");
            let want = format!("# TYPE {family} ");
            assert!(t.starts_with(&want), "{t}");
            kind = t[want.len()..].to_string();
            if kind == "counter" {
                assert!(family.ends_with("_total"), "{family}");
            }
            continue;
        }
        let (series, value) = l.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with(&family), "{l} outside its family {family}");
        value
            .parse::<f64>()
            .or_else(|_| {
                if value == "+Inf" {
                    Ok(f64::INFINITY)
                } else {
                    Err(())
                }
            })
            .unwrap_or_else(|_| panic!("value of {l}"));
        if kind == "histogram" && name.ends_with("_bucket") {
            let le = series
                .rsplit_once("le=\"")
                .unwrap()
                .1
                .trim_end_matches("\"}");
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let labels = series.rsplit_once(",le=").unwrap().0.to_string();
            let n: f64 = value.parse().unwrap();
            if let Some((prev_labels, prev_n)) = &last_bucket {
                if *prev_labels == labels {
                    assert!(n >= *prev_n, "buckets not cumulative at {l}");
                }
            }
            last_bucket = Some((labels, n));
            if le.is_infinite() {
                let count = lines.clone().nth(1).unwrap();
                assert!(
                    count.contains("_count") && count.ends_with(&format!(" {value}")),
                    "{count}"
                );
            }
        }
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ends the child with SIGTERM and returns its output.
fn stop(child: Child) -> (bool, String) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Kills the child if a test fails before stopping it.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` 4 KiB writes then reads of the first blocks, and a flush, through
/// the vhost-user front end; every request must complete OK.
fn drive(fe: &mut MockFrontend, n: u64) {
    let mut all: Vec<BlkReq> = Vec::new();
    for op in [VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_IN] {
        let reqs: Vec<BlkReq> = (0..n)
            .map(|i| {
                let buf = fe.data_base + i * 4096;
                let b = if op == VIRTIO_BLK_T_OUT {
                    Buf::r(buf, 4096)
                } else {
                    Buf::w(buf, 4096)
                };
                fe.drivers[0].request(op, i * 8, &[b], false)
            })
            .collect();
        fe.drivers[0].q.publish();
        fe.kick(0);
        complete(fe, &reqs);
        all.extend(reqs);
    }
    let f = fe.drivers[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    fe.drivers[0].q.publish();
    fe.kick(0);
    complete(fe, &[f]);
}

fn complete(fe: &mut MockFrontend, reqs: &[BlkReq]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut left = reqs.len();
    while left > 0 {
        if let Some((id, _)) = fe.drivers[0].q.pop_used() {
            let r = reqs.iter().find(|r| r.head == id).expect("known head");
            assert_eq!(fe.drivers[0].status(r), VIRTIO_BLK_S_OK);
            left -= 1;
        }
        assert!(Instant::now() < deadline, "requests not completed in 20 s");
        std::thread::yield_now();
    }
}

fn connect(sock: &Path) -> MockFrontend {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match MockFrontend::connect(sock, 16 << 20, 1, 128) {
            Ok(fe) => return fe,
            Err(e) if Instant::now() > deadline => panic!("connect {}: {e}", sock.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Raw HTTP: what a broken client gets.
fn raw(port: u16, req: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn http_code(args: &[&str]) -> String {
    curl(
        &["-o", "/dev/null", "-w", "%{http_code}"]
            .iter()
            .chain(args)
            .copied()
            .collect::<Vec<_>>(),
    )
    .expect("curl")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vsw-metrics-{}-{name}", std::process::id()))
}

#[test]
fn blk_serve_metrics_move_with_io() {
    // A device name that needs escaping in a label value.
    let sock = tmp("d\"q\\x.sock");
    let name = sock.file_name().unwrap().to_str().unwrap().to_string();
    let port = tgt_sandbox::free_tcp_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--socket"])
        .arg(&sock)
        .args([
            "--backend",
            "mem:16M",
            "--cache",
            "1M",
            "--stats-interval",
            "0",
        ])
        .args(["--metrics", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    wait_for("the metrics endpoint", 30, || {
        curl(&[&format!("http://{addr}/metrics")]).is_some()
    });
    let mut fe = connect(&sock);

    let a = scrape(port);
    assert_eq!(a.types["vswitch_blk_reads"], "counter");
    assert_eq!(a.types["vswitch_blk_request_latency_seconds"], "histogram");
    assert_eq!(a.types["vswitch_blk_cache_dirty_blocks"], "gauge");
    // The parser gives the label value back unescaped: the raw name.
    let dev = format!("device=\"{name}\"");
    assert!(a.text.contains("d\\\"q\\\\x.sock\""), "escaped in the text");
    assert_eq!(a.get(&format!("vswitch_blk_reads_total{{{dev}}}")), 0.0);

    drive(&mut fe, 32);
    let b = scrape(port);
    let n = |s: &Scrape, k: &str| s.get(&format!("{k}{{{dev}}}"));
    assert_eq!(n(&b, "vswitch_blk_writes_total"), 32.0);
    assert_eq!(n(&b, "vswitch_blk_reads_total"), 32.0);
    assert_eq!(n(&b, "vswitch_blk_flushes_total"), 1.0);
    assert_eq!(n(&b, "vswitch_blk_read_bytes_total"), 32.0 * 4096.0);
    assert_eq!(n(&b, "vswitch_blk_written_bytes_total"), 32.0 * 4096.0);
    assert_eq!(n(&b, "vswitch_blk_errors_total"), 0.0);
    // Write-through, allocate on write: the reads hit the cache.
    assert!(n(&b, "vswitch_blk_cache_hits_total") >= 32.0, "{}", b.text);
    let lat = |s: &Scrape, op: &str, what: &str| {
        s.get(&format!(
            "vswitch_blk_request_latency_seconds_{what}{{{dev},op=\"{op}\"}}"
        ))
    };
    assert_eq!(lat(&b, "read", "count"), 32.0);
    assert_eq!(lat(&b, "write", "count"), 32.0);
    assert_eq!(lat(&b, "flush", "count"), 1.0);
    assert!(lat(&b, "read", "sum") > 0.0 && lat(&b, "read", "sum") < 32.0);
    assert_eq!(
        b.get(&format!(
            "vswitch_blk_request_latency_seconds_bucket{{{dev},le=\"+Inf\",op=\"read\"}}"
        )),
        32.0
    );

    drive(&mut fe, 16);
    let c = scrape(port);
    assert_eq!(n(&c, "vswitch_blk_reads_total"), 48.0);
    assert_eq!(lat(&c, "write", "count"), 48.0);

    // HTTP errors, from curl and from a broken client; the server goes on.
    assert_eq!(
        http_code(&["-X", "POST", &format!("http://{addr}/metrics")]),
        "405"
    );
    assert_eq!(http_code(&[&format!("http://{addr}/")]), "404");
    assert!(raw(port, b"BLAH\r\n\r\n").starts_with("HTTP/1.1 400 "));
    assert!(raw(port, &vec![b'x'; 100_000]).starts_with("HTTP/1.1 431 "));
    assert_eq!(http_code(&[&format!("http://{addr}/metrics")]), "200");

    drop(fe);
    let (ok, out) = stop(guard.0.take().unwrap());
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("metrics on http://{addr}/metrics")),
        "{out}"
    );
}

#[test]
fn metrics_refuse_remote_addresses_unless_asked() {
    let sock = tmp("remote.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--socket"])
        .arg(&sock)
        .args(["--backend", "null:1M", "--metrics", "0.0.0.0:9"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("not a loopback address") && text.contains("--metrics-allow-remote"),
        "{text}"
    );
    assert!(!sock.exists());
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args([
            "run",
            "--port",
            "net_null0",
            "--no-control",
            "--metrics",
            "10.1.2.3:9100",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("not a loopback address"), "{text}");
    // The TOML form too.
    let toml = tmp("remote.toml");
    std::fs::write(
        &toml,
        "metrics = \"0.0.0.0:9100\"\n[[port]]\ndevargs = \"net_null0\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["run", "--no-control", "--config"])
        .arg(&toml)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&toml);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("not a loopback address"), "{text}");
}

#[test]
fn run_metrics_move_with_switch_and_storage_traffic() {
    let sock = tmp("run-disk.sock");
    let port = tgt_sandbox::free_tcp_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let eal = format!(
        "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:error --file-prefix vsw-metrics-{}",
        std::process::id()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args([
            "run",
            "--eal",
            &eal,
            "--no-control",
            "--stats-interval",
            "0",
        ])
        .args(["--port", "net_null0", "--port", "net_null1,no-rx=1"])
        // A match on a parsed field: frames go through the flow cache.
        .args([
            "--flow",
            "priority=10,in_port=0,dl_dst=00:00:00:00:00:00,actions=output:1",
        ])
        .args(["--blk", &format!("{}=mem:16M", sock.display())])
        .args(["--metrics", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    wait_for("the metrics endpoint", 60, || {
        curl(&[&format!("http://{addr}/metrics")]).is_some()
    });
    let mut fe = connect(&sock);
    let a = scrape(port);
    drive(&mut fe, 8);
    std::thread::sleep(Duration::from_millis(300));
    let b = scrape(port);

    let p0 = "name=\"net_null0\",port=\"0\"";
    let p1 = "name=\"net_null1\",port=\"1\"";
    let grew = |k: &str| {
        let (x, y) = (a.get(k), b.get(k));
        assert!(y > x, "{k} did not move: {x} -> {y}");
    };
    grew(&format!("vswitch_port_rx_packets_total{{{p0}}}"));
    grew(&format!("vswitch_port_tx_packets_total{{{p1}}}"));
    // (net_null counts no bytes; the datapath does.)
    grew("vswitch_datapath_bytes_total{core=\"0\"}");
    grew("vswitch_datapath_packets_total{core=\"0\"}");
    grew("vswitch_flow_cache_hits_total{core=\"0\"}");
    grew("vswitch_worker_rx_packets_total{core=\"0\"}");
    grew("vswitch_worker_busy_cycles_total{core=\"0\"}");
    grew("vswitch_worker_busy_rounds_total{core=\"0\"}");
    // One rx queue (net_null1 has none): a busy round received one burst
    // of at most 32 frames. The worker adds a burst's packets before it
    // counts the round, and a scrape reads the two counters one after the
    // other, so each scrape may hold one round's packets without the
    // round: at most 32 per round plus 32 at either end of the interval.
    let d = |k: &str| b.get(k) - a.get(k);
    let (packets, rounds) = (
        d("vswitch_worker_rx_packets_total{core=\"0\"}"),
        d("vswitch_worker_busy_rounds_total{core=\"0\"}"),
    );
    assert!(
        rounds >= 1.0 && packets >= rounds && packets <= 32.0 * (rounds + 2.0),
        "{packets} packets in {rounds} busy rounds"
    );
    assert_eq!(a.types["vswitch_port_rx_packets"], "counter");
    assert!(
        b.samples.contains_key(&format!(
            "vswitch_port_drops_total{{{p1},reason=\"tx_full\"}}"
        )),
        "{}",
        b.text
    );
    assert_eq!(b.get("vswitch_flow_rules{}"), 1.0);
    assert!(b.get("vswitch_tsc_hz{}") > 1e6);
    let dev =
        "device=\"vsw-metrics-".to_string() + &std::process::id().to_string() + "-run-disk.sock\"";
    assert_eq!(b.get(&format!("vswitch_blk_reads_total{{{dev}}}")), 8.0);
    assert_eq!(b.get(&format!("vswitch_blk_writes_total{{{dev}}}")), 8.0);
    assert_eq!(
        b.get(&format!(
            "vswitch_blk_request_latency_seconds_count{{{dev},op=\"read\"}}"
        )),
        8.0
    );

    drop(fe);
    let (ok, out) = stop(guard.0.take().unwrap());
    assert!(ok, "{out}");
}

/// One JSON-RPC call on SPDK's socket (as rpc.py sends it).
fn rpc(sock: &Path, method: &str, params: serde_json::Value) -> serde_json::Value {
    let mut c = UnixStream::connect(sock).unwrap();
    let req = serde_json::json!({"jsonrpc": "2.0", "method": method, "id": 1, "params": params});
    c.write_all(req.to_string().as_bytes()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    loop {
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
        if let Some(Ok(v)) = it.next() {
            return v;
        }
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "{method}: connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn devices_made_over_json_rpc_are_scraped_too() {
    let dir = tmp("rpc");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("rpc.sock");
    let port = tgt_sandbox::free_tcp_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--stats-interval", "0", "--rpc"])
        .arg(&sock)
        .arg("--vhost-dir")
        .arg(&dir)
        .args(["--metrics", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    wait_for("the metrics endpoint", 30, || {
        curl(&[&format!("http://{addr}/metrics")]).is_some()
    });
    let a = scrape(port);
    assert!(!a.text.contains("vswitch_blk_reads_total"), "{}", a.text);
    wait_for("the RPC socket", 30, || UnixStream::connect(&sock).is_ok());
    let r = rpc(
        &sock,
        "bdev_malloc_create",
        serde_json::json!({"name": "m0", "num_blocks": 8192, "block_size": 512}),
    );
    assert_eq!(r["result"], "m0", "{r}");
    let r = rpc(
        &sock,
        "vhost_create_blk_controller",
        serde_json::json!({"ctrlr": "c0", "dev_name": "m0"}),
    );
    assert!(r.get("error").is_none(), "{r}");
    let mut fe = connect(&dir.join("c0"));
    drive(&mut fe, 8);
    let b = scrape(port);
    let line = b
        .text
        .lines()
        .find(|l| l.starts_with("vswitch_blk_reads_total{"))
        .unwrap_or_else(|| panic!("no device after the RPC: {}", b.text));
    assert!(line.ends_with(" 8"), "{line}");
    assert!(
        b.text.lines().any(
            |l| l.starts_with("vswitch_blk_request_latency_seconds_count{")
                && l.contains("op=\"write\"")
                && l.ends_with(" 8")
        ),
        "{}",
        b.text
    );
    drop(fe);
    let (ok, out) = stop(guard.0.take().unwrap());
    assert!(ok, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
