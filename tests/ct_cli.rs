//! `vswitch ct show|flush|limit` and the conntrack counters of `vswitch
//! stats` and `--metrics`, against a real `vswitch run` on DPDK ports: a
//! pcap port replays a UDP datagram, a TCP SYN and a second UDP datagram
//! through `ct(commit)` flows with `--ct-max-conns 2`, so two connections
//! are listed (in the text of `ovs-appctl dpctl/dump-conntrack`), the third
//! commit is refused and counted, and `flush` empties the table; a
//! `ct(commit,nat(src=...))` connection is listed with its translated reply
//! tuple while the frame leaves translated; a fragmented datagram passes
//! `ct` reassembled (its fragments unchanged, in order) and `vswitch ct
//! ipf` reports and changes reassembly as `ovs-appctl dpctl/ipf-*`.
//!
//! Busy-polling DPDK: run with `flock /work/heavy.lock` on shared hosts.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vswitch-ct-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 10.0.0.1 → 10.0.0.2 + `l4` of protocol `proto`, with
/// the IPv4 and L4 checksums right (the tracker checks them, as OVS's).
fn frame(proto: u8, mut l4: Vec<u8>) -> Vec<u8> {
    let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&l4);
    if proto != 1 {
        let c = checksum(&pseudo);
        let at = if proto == 6 { 16 } else { 6 };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&12u16.to_be_bytes());
    u.extend_from_slice(b"ping");
    frame(17, u)
}

fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1000u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    frame(6, t)
}

fn icmp_echo(id: u16) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(b"ping");
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    frame(1, m)
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(i as u64),
            f.len() as u32,
            f,
        ))
        .unwrap();
    }
}

fn vswitch(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A running switch, stopped on drop.
struct Running {
    child: Child,
    sock: PathBuf,
    metrics: String,
}

impl Running {
    fn ct(&self, args: &[&str]) -> (bool, String, String) {
        let mut a = vec!["ct"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--socket", self.sock.to_str().unwrap()]);
        vswitch(&a)
    }

    fn stats(&self) -> serde_json::Value {
        let (ok, out, err) = vswitch(&["stats", "--json", "--socket", self.sock.to_str().unwrap()]);
        assert!(ok, "stats: {err}");
        serde_json::from_str(&out).unwrap()
    }

    fn scrape(&self) -> String {
        let mut s = TcpStream::connect(&self.metrics).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn start(d: &Path, frames: &[Vec<u8>], out: &str, flows: &[&str], extra: &[&str]) -> Running {
    let pcap = d.join("in.pcap");
    write_pcap(&pcap, frames);
    let sock = d.join("ctl.sock");
    let metrics = format!("127.0.0.1:{}", tgt_sandbox::free_tcp_port().unwrap());
    let mut args: Vec<String> = vec![
        "run".into(),
        "--eal".into(),
        format!(
            "-l 0 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix {}",
            // One prefix per run (the tmpdir's name: tag and pid).
            d.file_name().unwrap().to_string_lossy()
        ),
        "--control".into(),
        sock.display().to_string(),
        "--port".into(),
        format!("net_pcap0,rx_pcap={}", pcap.display()),
        "--port".into(),
        out.into(),
        "--stats-interval".into(),
        "0".into(),
        "--flow-cache".into(),
        "4096".into(),
        "--metrics".into(),
        metrics.clone(),
    ];
    for f in flows {
        args.push("--flow".into());
        args.push(f.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = Running {
        child,
        sock,
        metrics,
    };
    let t = Instant::now();
    while !r.sock.exists() || !r.ct(&["show"]).0 {
        if let Ok(Some(st)) = r.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = r.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("vswitch {args:?} exited ({st}): {err}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "switch did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const UDP_LINE: &str = "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=5000,dport=53),\
                        reply=(src=10.0.0.2,dst=10.0.0.1,sport=53,dport=5000)";
const TCP_LINE: &str = "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),\
                        reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),\
                        zone=5,mark=7,protoinfo=(state=SYN_SENT)";

#[test]
fn ct_show_flush_limit_on_a_running_switch() {
    let d = tmpdir("show");
    let r = start(
        &d,
        &[udp(5000, 53), tcp_syn(40000, 80), udp(5001, 53)],
        "net_null1,no-rx=1",
        &[
            "priority=100,udp,actions=ct(commit),output:1",
            "priority=100,tcp,actions=ct(commit,zone=5,exec(set_field:7->ct_mark)),output:1",
            "priority=0,actions=drop",
        ],
        &["--ct-max-conns", "2"],
    );
    wait_until("the three frames", || {
        r.stats()["total"]["counters"]["rx_packets"] == 3
    });

    // Two connections, sorted by zone; the third commit hit --ct-max-conns.
    let (ok, out, err) = r.ct(&["show"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [UDP_LINE, TCP_LINE],
        "{out}"
    );
    let (ok, out, _) = r.ct(&["show", "--zone", "5"]);
    assert!(ok);
    assert_eq!(out.trim(), TCP_LINE);
    let (ok, out, _) = r.ct(&["show", "--zone", "6"]);
    assert!(ok && out.is_empty(), "{out}");
    let (_, out, _) = r.ct(&["show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "ct_conns");
    assert_eq!(v["conns"][1], TCP_LINE);

    let ct = &r.stats()["ct"];
    assert_eq!(
        (ct["entries"].as_u64(), ct["committed"].as_u64()),
        (Some(2), Some(2)),
        "{ct}"
    );
    assert_eq!(ct["limit_drops"], 1, "{ct}");
    let (ok, out, _) = vswitch(&["stats", "--socket", r.sock.to_str().unwrap()]);
    assert!(ok);
    assert!(
        out.contains("conntrack: 2 entries, 2 committed, 0 invalid, 1 limit drops"),
        "{out}"
    );
    let m = r.scrape();
    assert!(m.contains("\nvswitch_ct_entries 2\n"), "{m}");
    assert!(m.contains("\nvswitch_ct_limit_drops_total 1\n"), "{m}");
    assert!(m.contains("\nvswitch_ct_committed_total 2\n"), "{m}");

    // Flush one zone, then everything.
    let (ok, out, _) = r.ct(&["flush", "--zone", "5"]);
    assert!(ok);
    assert_eq!(out.trim(), "flushed 1 connection(s)");
    let (_, out, _) = r.ct(&["show"]);
    assert_eq!(out.trim(), UDP_LINE);
    let (ok, out, _) = r.ct(&["flush"]);
    assert!(ok);
    assert_eq!(out.trim(), "flushed 1 connection(s)");
    let (ok, out, _) = r.ct(&["show"]);
    assert!(ok && out.is_empty(), "{out}");
    assert_eq!(r.stats()["ct"]["entries"], 0);
    assert!(r.scrape().contains("\nvswitch_ct_entries 0\n"));

    // Zone limits.
    let (ok, out, err) = r.ct(&["limit", "--zone", "5", "--limit", "10"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "zone 5: at most 10 connection(s)");
    let (_, out, _) = r.ct(&["limit", "--zone", "5", "--limit", "0"]);
    assert_eq!(out.trim(), "zone 5: unlimited");
    let (_, out, _) = r.ct(&["limit", "--zone", "5", "--default"]);
    assert_eq!(out.trim(), "zone 5: default limit");

    // Bad arguments: clear errors, the switch unchanged.
    for (args, want) in [
        (&["show", "--zone", "70000"][..], "70000"),
        (
            &["show", "--zone", "five"],
            "invalid value 'five' for '--zone <Z>'",
        ),
        (&["flush", "--zone", "-1"], "unexpected argument '-1'"),
        (&["limit", "--zone", "5"], "--limit <N>"),
        (&["limit", "--limit", "3"], "--zone <Z>"),
        (
            &["limit", "--zone", "5", "--limit", "3", "--default"],
            "cannot be used with",
        ),
        (&["limit", "--zone", "5", "--limit", "-3"], "'-3'"),
        (&["bogus"], "unrecognized subcommand 'bogus'"),
    ] {
        let (ok, _, err) = r.ct(args);
        assert!(!ok, "ct {args:?} succeeded");
        assert!(err.contains(want), "ct {args:?}: {err}");
    }
    let (ok, _, _) = r.ct(&["show"]);
    assert!(ok, "the switch still answers");
    drop(r);
    let _ = std::fs::remove_dir_all(&d);
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

/// A source-NAT connection is listed with its translated reply tuple, and
/// the frame left translated with checksums that add up.
#[test]
fn ct_show_lists_a_snat_connection_translated() {
    let d = tmpdir("snat");
    let out_pcap = d.join("out.pcap");
    let r = start(
        &d,
        &[udp(5000, 53), icmp_echo(0x1234)],
        &format!("net_pcap1,tx_pcap={}", out_pcap.display()),
        &[
            "priority=100,udp,actions=ct(commit,zone=3,nat(src=192.168.0.9)),output:1",
            "priority=100,icmp,actions=ct(commit),output:1",
            "priority=0,actions=drop",
        ],
        &[],
    );
    wait_until("the frames", || {
        r.stats()["total"]["counters"]["rx_packets"] == 2
    });
    // ICMP echo: identifier, type and code, the reply direction with the
    // reply type (as OVS's dump).
    let (_, out, _) = r.ct(&["show", "--zone", "0"]);
    assert_eq!(
        out.trim(),
        "icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=4660,type=8,code=0),\
         reply=(src=10.0.0.2,dst=10.0.0.1,id=4660,type=0,code=0)"
    );
    let (ok, out, err) = r.ct(&["show", "--zone", "3"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=5000,dport=53),\
         reply=(src=10.0.0.2,dst=192.168.0.9,sport=53,dport=5000),zone=3"
    );
    drop(r); // closes the ports: the capture is complete
    let sent = read_pcap(&out_pcap);
    assert_eq!(sent.len(), 2);
    let f = sent.iter().find(|f| f[23] == 17).expect("the UDP frame");
    assert_eq!(f[26..30], [192, 168, 0, 9], "source translated");
    assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
    let mut pseudo = f[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&((f.len() - 34) as u16).to_be_bytes());
    pseudo.extend_from_slice(&f[34..]);
    assert_eq!(checksum(&pseudo), 0, "UDP checksum");
    assert_eq!(f[34..40], udp(5000, 53)[34..40], "ports and length kept");
    let _ = std::fs::remove_dir_all(&d);
}

/// IPv4 fragments 10.0.0.1 → 10.0.0.2 of a UDP datagram 5000 → 53 with
/// `len` payload bytes (checksum right), cut at `(offset, length, more)`.
fn udp_fragments(id: u16, len: usize, cuts: &[(usize, usize, bool)]) -> Vec<Vec<u8>> {
    let whole = {
        let mut u = vec![0u8; 8];
        u[0..2].copy_from_slice(&5000u16.to_be_bytes());
        u[2..4].copy_from_slice(&53u16.to_be_bytes());
        u[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
        u.extend((0..len).map(|i| (i * 11) as u8));
        frame(17, u)
    };
    let udp = &whole[34..];
    cuts.iter()
        .map(|&(off, n, more)| {
            let mut f = whole[..34].to_vec();
            f.extend_from_slice(&udp[off..off + n]);
            let ip = &mut f[14..34];
            ip[2..4].copy_from_slice(&((20 + n) as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&id.to_be_bytes());
            let fo = (if more { 0x2000 } else { 0 }) | (off / 8) as u16;
            ip[6..8].copy_from_slice(&fo.to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f
        })
        .collect()
}

/// `ct(table=1)` with reassembly (on by default, as OVS 3.1): a datagram's
/// two fragments leave unchanged and in order once both arrived, its
/// connection is listed; a too-small fragment is `+inv`; `vswitch ct ipf`
/// prints OVS's `dpctl/ipf-get-status` and changes the settings.
#[test]
fn ct_ipf_reassembles_and_is_controlled_on_a_running_switch() {
    let d = tmpdir("ipf");
    let out_pcap = d.join("out.pcap");
    let frags = udp_fragments(77, 2000, &[(0, 1400, true), (1400, 608, false)]);
    let small = udp_fragments(78, 200, &[(0, 64, true)]);
    let r = start(
        &d,
        &[frags[0].clone(), small[0].clone(), frags[1].clone()],
        &format!("net_pcap1,tx_pcap={}", out_pcap.display()),
        &[
            "table=0,priority=100,ip,actions=ct(table=1)",
            "table=0,priority=0,actions=drop",
            "table=1,priority=100,ct_state=+trk+new,ip,actions=ct(commit),output:1",
            "table=1,priority=100,ct_state=+trk+inv,actions=drop",
        ],
        &[],
    );
    wait_until("the three frames", || {
        r.stats()["total"]["counters"]["rx_packets"] == 3
    });
    wait_until("the datagram's connection", || {
        r.ct(&["show"]).1.contains("sport=5000,dport=53")
    });
    let (ok, out, err) = r.ct(&["ipf", "status"]);
    assert!(ok, "{err}");
    for line in [
        "        Fragmentation Module Status",
        "        v4 enabled: 1",
        "        v6 enabled: 1",
        "        max num frags (v4/v6): 1000",
        "        num frag: 0",
        "        min v4 frag size: 1200",
        // Held at ct(table=1), then at ct(commit): twice each.
        "        v4 frags accepted: 4",
        "        v4 frags completed: 4",
        "        v4 frags too small: 1",
        "        min v6 frag size: 1280",
        "        v6 frags accepted: 0",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    // Settings, and refused ones (nothing changed then).
    let (ok, out, _) = r.ct(&["ipf", "disable", "v4"]);
    assert!(
        ok && out.contains("v4 enabled: 0") && out.contains("v6 enabled: 1"),
        "{out}"
    );
    let (ok, out, _) = r.ct(&["ipf", "enable"]);
    assert!(ok && out.contains("v4 enabled: 1"), "{out}");
    let (ok, out, _) = r.ct(&["ipf", "min-frag", "v6", "600"]);
    assert!(ok && out.contains("min v6 frag size: 600"), "{out}");
    let (ok, out, _) = r.ct(&["ipf", "max-frags", "10"]);
    assert!(ok && out.contains("max num frags (v4/v6): 10"), "{out}");
    for (args, want) in [
        (&["ipf", "min-frag", "v4", "300"][..], "at least 400"),
        (&["ipf", "max-frags", "6000"], "at most 5000"),
        (&["ipf", "min-frag", "v5", "600"], "invalid value 'v5'"),
        (&["ipf", "max-frags", "-1"], "unexpected argument '-1'"),
    ] {
        let (ok, _, err) = r.ct(args);
        assert!(!ok, "ct {args:?} succeeded");
        assert!(err.contains(want), "ct {args:?}: {err}");
    }
    let (_, out, _) = r.ct(&["ipf", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["v4"]["min_frag_size"], 1200, "{v}");
    assert_eq!(v["max_frags"], 10, "{v}");
    drop(r);
    let sent = read_pcap(&out_pcap);
    assert_eq!(sent, frags, "the two fragments, unchanged, in order");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ct_max_conns_is_checked_before_dpdk_starts() {
    for (n, want) in [
        ("0", "--ct-max-conns 0 must be between 1 and 67108864"),
        ("x", "invalid value 'x'"),
    ] {
        let (ok, _, err) = vswitch(&[
            "run",
            "--port",
            "net_null0",
            "--no-control",
            "--ct-max-conns",
            n,
        ]);
        assert!(!ok);
        assert!(err.contains(want), "{err}");
    }
    let d = tmpdir("toml");
    let f = d.join("run.toml");
    std::fs::write(&f, "ct_max_conns = 0\n[[port]]\ndevargs = \"net_null0\"\n").unwrap();
    let (ok, _, err) = vswitch(&["run", "--no-control", "--config", f.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("--ct-max-conns 0 must be between"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ct_without_a_switch_fails_clearly() {
    let (ok, _, err) = vswitch(&["ct", "show", "--socket", "/tmp/vswitch-no-such-switch.sock"]);
    assert!(!ok);
    assert!(err.contains("is `vswitch run` running?"), "{err}");
}
