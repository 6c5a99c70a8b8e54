//! Connection tracking with real kernel endpoints: network namespaces on
//! veth pairs whose host ends are the switch's `net_af_packet` ports, and
//! the README's `ct` flow tables between them.
//!
//! ```text
//!  firewall:  ns A 10.88.0.1 ─ port 0 ┐                 ┌ port 1 ─ ns B 10.88.0.2
//!             (inside)                └ ct(zone=5) ─────┘          (outside)
//!             A → B: TCP (20 KiB echoed intact) and ping work; B → A: neither
//!
//!  SNAT:      ns A 10.90.0.11 ─ port 0 ─ ct(commit,nat(src=10.90.0.100)) ─ port 1 ─ ns S 10.90.0.2
//!             S accepts A's connections from 10.90.0.100 (its peer address);
//!             S reaches A neither at 10.90.0.11 nor at 10.90.0.100
//!
//!  full table: ns A 10.89.0.1 ─ port 0 ─ ct(commit), --ct-max-conns 2 ─ port 1 ─ ns B 10.89.0.2
//!             two connections echo; a third is refused; the two keep echoing
//! ```
//!
//! The tables are the README's examples. Every namespace has static
//! neighbours (no ARP crosses the tables: only IP frames pass, and only as
//! the tables say).

mod netns;

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use netns::*;

/// One switch at a time: DPDK 22.11's af_packet PMD names its fanout group
/// `pid ^ ifindex`, so two switches started together (consecutive pids,
/// consecutive veth indexes) can pick the same group for different devices,
/// and the kernel refuses the second socket (`PACKET_FANOUT`: EINVAL).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn id() -> u32 {
    std::process::id() % 100000
}

/// The `n_packets` of the one rule of `flows dump` containing `needle`.
fn n_packets(r: &Running, needle: &str) -> u64 {
    let dump = r.must(&["flows", "dump"]);
    let line = dump
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle:?} in:\n{dump}"));
    line.split("n_packets=")
        .nth(1)
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no n_packets in {line}"))
}

/// A TCP server in `ns` on `ip:port` accepting `n` connections one after
/// the other: it prints each peer's address, reads 20 KiB and echoes them
/// upper-cased.
fn server(ns: &str, ip: &str, port: u16, n: usize, timeout: u32) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg(format!(
            "import socket\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{ip}',{port})); s.listen(8); s.settimeout({timeout})\n\
             for _ in range({n}):\n\
             \x20   try:\n\
             \x20       c,a=s.accept()\n\
             \x20   except socket.timeout:\n\
             \x20       print('no connection', flush=True); break\n\
             \x20   print('peer', a[0], flush=True)\n\
             \x20   c.settimeout(20); d=b''\n\
             \x20   while len(d) < 20480:\n\
             \x20       b=c.recv(65536)\n\
             \x20       if not b: break\n\
             \x20       d+=b\n\
             \x20   c.sendall(d.upper()); c.close()\n"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A client in `ns`: connects to `ip:port` (3 s), sends 20 KiB and checks
/// the upper-cased echo. `Ok` if all of it came back intact, else the
/// Python error.
fn client(ns: &str, ip: &str, port: u16) -> Result<(), String> {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg(format!(
            "import socket\n\
             d=(b'conntrack-payload-' * 2000)[:20480]\n\
             c=socket.create_connection(('{ip}',{port}), timeout=3); c.settimeout(20); c.sendall(d)\n\
             r=b''\n\
             while len(r) < len(d):\n    b=c.recv(65536)\n    if not b: break\n    r+=b\n\
             assert r == d.upper(), (len(r), r[:40])\n\
             print('ok')\n"
        ))
        .output()
        .unwrap();
    if String::from_utf8_lossy(&o.stdout).contains("ok") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

/// The server's output once it exited.
fn finish(c: Child) -> String {
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ping(ns: &str, ip: &str) -> bool {
    sh(&format!("ip netns exec {ns} ping -c 2 -i 0.2 -W 1 {ip}"))
        .status
        .success()
}

/// `vswitch ct show` when this build has it: the connections listed.
fn ct_show(r: &Running) -> Option<String> {
    let (ok, out, _) = r.ctl(&["ct", "show"]);
    ok.then_some(out)
}

const FIREWALL: &str = "
table=0,priority=100,ip,actions=ct(table=1,zone=5)
table=0,priority=0,actions=drop
table=1,priority=100,ct_state=+trk+new,in_port=0,tcp,actions=ct(commit,zone=5),output:1
table=1,priority=100,ct_state=+trk+new,in_port=0,icmp,actions=ct(commit,zone=5),output:1
table=1,priority=90,ct_state=+trk+est,in_port=0,actions=output:1
table=1,priority=90,ct_state=+trk+est,in_port=1,actions=output:0
table=1,priority=80,ct_state=+trk+rel,in_port=1,actions=output:0
table=1,priority=0,actions=drop
";

#[test]
fn firewall_lets_the_inside_out_and_keeps_the_outside_out() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let id = id();
    let (a, b) = (format!("cfa{id}"), format!("cfb{id}"));
    let (ha, hb) = (format!("cfha{id}"), format!("cfhb{id}"));
    let mut ns = Netns::default();
    ns.host(&a, &ha, "02:00:00:88:00:01", "10.88.0.1/24");
    ns.host(&b, &hb, "02:00:00:88:00:02", "10.88.0.2/24");
    must(&format!(
        "ip -n {a} neigh add 10.88.0.2 lladdr 02:00:00:88:00:02 dev eth0"
    ));
    must(&format!(
        "ip -n {b} neigh add 10.88.0.1 lladdr 02:00:00:88:00:01 dev eth0"
    ));
    let r = start(
        "ctfw",
        &[
            format!("net_af_packet0,iface={ha}"),
            format!("net_af_packet1,iface={hb}"),
        ],
    );
    r.add_flows(FIREWALL);

    // Inside → outside: ping and a TCP echo, data intact.
    until("ping A -> B through the firewall", 20, || {
        ping(&a, "10.88.0.2")
    });
    let srv = server(&b, "10.88.0.2", 8080, 1, 20);
    std::thread::sleep(Duration::from_millis(500));
    client(&a, "10.88.0.2", 8080).unwrap_or_else(|e| panic!("TCP A -> B: {e}"));
    assert!(finish(srv).contains("peer 10.88.0.1"));
    assert!(
        n_packets(&r, "tcp,") >= 1,
        "the TCP commit rule counted nothing"
    );

    // Outside → inside: neither a connection nor a ping.
    let srv = server(&a, "10.88.0.1", 8081, 1, 6);
    std::thread::sleep(Duration::from_millis(500));
    let refused = client(&b, "10.88.0.1", 8081);
    let out = finish(srv);
    assert!(
        refused.is_err() && out.contains("no connection"),
        "B -> A connected through the firewall: client {refused:?}, server {out:?}"
    );
    assert!(!ping(&b, "10.88.0.1"), "B pinged A through the firewall");
    // The inside still gets out.
    let srv = server(&b, "10.88.0.2", 8082, 1, 20);
    std::thread::sleep(Duration::from_millis(500));
    client(&a, "10.88.0.2", 8082).unwrap_or_else(|e| panic!("TCP A -> B again: {e}"));
    finish(srv);
    if let Some(ct) = ct_show(&r) {
        assert!(
            ct.contains("10.88.0.1")
                && ct.contains("10.88.0.2")
                && (ct.contains("zone=5") || ct.contains("zone 5")),
            "vswitch ct show does not list A's connections:\n{ct}"
        );
    }
    drop(r);
    drop(ns);
}

/// The README's SNAT gateway: port 0 inside, port 1 outside.
const SNAT: &str = "
table=0,priority=100,in_port=0,ip,actions=ct(table=1,zone=7,nat)
table=0,priority=100,in_port=1,ip,actions=ct(table=2,zone=7,nat)
table=0,priority=0,actions=drop
table=1,ct_state=+trk+new,tcp,actions=ct(commit,zone=7,nat(src=10.90.0.100)),output:1
table=1,ct_state=+trk+est,actions=output:1
table=2,ct_state=+trk+est+rpl,actions=output:0
";

#[test]
fn snat_gateway_hides_the_inside_behind_one_address() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let id = id();
    let (a, s) = (format!("cna{id}"), format!("cns{id}"));
    let (ha, hs) = (format!("cnha{id}"), format!("cnhs{id}"));
    let mut ns = Netns::default();
    ns.host(&a, &ha, "02:00:00:90:00:0b", "10.90.0.11/24");
    ns.host(&s, &hs, "02:00:00:90:00:02", "10.90.0.2/24");
    must(&format!(
        "ip -n {a} neigh add 10.90.0.2 lladdr 02:00:00:90:00:02 dev eth0"
    ));
    // The server reaches the translated address at the inside's MAC (the
    // gateway's, in a real network) and, to show that only the translated
    // path works, knows A's real address too.
    for ip in ["10.90.0.100", "10.90.0.11"] {
        must(&format!(
            "ip -n {s} neigh add {ip} lladdr 02:00:00:90:00:0b dev eth0"
        ));
    }
    let r = start(
        "ctnat",
        &[
            format!("net_af_packet0,iface={ha}"),
            format!("net_af_packet1,iface={hs}"),
        ],
    );
    r.add_flows(SNAT);

    // Two connections from the inside; the server sees the translated
    // address only.
    let srv = server(&s, "10.90.0.2", 8090, 2, 30);
    std::thread::sleep(Duration::from_millis(500));
    let mut first = Err(String::new());
    for _ in 0..3 {
        // The first SYN may meet af_packet ports still coming up.
        first = client(&a, "10.90.0.2", 8090);
        if first.is_ok() {
            break;
        }
    }
    first.unwrap_or_else(|e| panic!("TCP A -> S through SNAT: {e}"));
    client(&a, "10.90.0.2", 8090).unwrap_or_else(|e| panic!("TCP A -> S again: {e}"));
    let out = finish(srv);
    let peers: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("peer "))
        .collect();
    assert_eq!(
        peers,
        ["10.90.0.100", "10.90.0.100"],
        "the server's peers (server output {out:?})"
    );
    assert!(n_packets(&r, "nat(src=") >= 2, "two connections committed");

    // The server reaches the inside neither directly nor at the
    // translated address (no connection to answer).
    for ip in ["10.90.0.11", "10.90.0.100"] {
        let srv = server(&a, "0.0.0.0", 8091, 1, 5);
        std::thread::sleep(Duration::from_millis(500));
        let direct = client(&s, ip, 8091);
        let out = finish(srv);
        assert!(
            direct.is_err() && out.contains("no connection"),
            "S reached A at {ip} without an inside connection: client {direct:?}, server {out:?}"
        );
    }
    if let Some(ct) = ct_show(&r) {
        assert!(
            ct.contains("10.90.0.11") && ct.contains("10.90.0.100"),
            "vswitch ct show does not list the translated connections:\n{ct}"
        );
    }
    drop(r);
    drop(ns);
}

/// The firewall with TCP commits only, for the table-exhaustion test.
const TCP_ONLY: &str = "
table=0,priority=100,ip,actions=ct(table=1,zone=5)
table=0,priority=0,actions=drop
table=1,priority=100,ct_state=+trk+new,in_port=0,tcp,actions=ct(commit,zone=5),output:1
table=1,priority=90,ct_state=+trk+est,in_port=0,actions=output:1
table=1,priority=90,ct_state=+trk+est,in_port=1,actions=output:0
table=1,priority=0,actions=drop
";

/// Table exhaustion with kernel TCP: `--ct-max-conns 2`, two connections
/// open and echo; a third is refused (its SYN is not committed, so the
/// server's SYN-ACK is `+inv` and dropped; counted as limit drops), while
/// the two established connections keep flowing in both directions.
#[test]
fn a_full_table_refuses_new_connections_and_established_ones_keep_flowing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let id = id();
    let (a, b) = (format!("cxa{id}"), format!("cxb{id}"));
    let (ha, hb) = (format!("cxha{id}"), format!("cxhb{id}"));
    let mut ns = Netns::default();
    ns.host(&a, &ha, "02:00:00:89:00:01", "10.89.0.1/24");
    ns.host(&b, &hb, "02:00:00:89:00:02", "10.89.0.2/24");
    must(&format!(
        "ip -n {a} neigh add 10.89.0.2 lladdr 02:00:00:89:00:02 dev eth0"
    ));
    must(&format!(
        "ip -n {b} neigh add 10.89.0.1 lladdr 02:00:00:89:00:01 dev eth0"
    ));
    let r = start_with(
        "ctfull",
        &[
            format!("net_af_packet0,iface={ha}"),
            format!("net_af_packet1,iface={hb}"),
        ],
        &["--ct-max-conns", "2"],
    );
    r.add_flows(TCP_ONLY);
    // B: an upper-casing echo per connection, each in its own thread.
    let srv = Command::new("ip")
        .args(["netns", "exec", &b, "python3", "-c"])
        .arg(
            "import socket, threading\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('10.89.0.2',8095)); s.listen(8); s.settimeout(40)\n\
             def echo(c):\n\
             \x20   c.settimeout(30)\n\
             \x20   while True:\n\
             \x20       b=c.recv(65536)\n\
             \x20       if not b: break\n\
             \x20       c.sendall(b.upper())\n\
             \x20   c.close()\n\
             while True:\n\
             \x20   try:\n\
             \x20       c,a=s.accept()\n\
             \x20   except socket.timeout:\n\
             \x20       break\n\
             \x20   print('accepted', flush=True)\n\
             \x20   threading.Thread(target=echo, args=(c,), daemon=True).start()\n",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // A: two connections (the first SYN may meet ports still coming up),
    // data through both, a third connection, data through the two again.
    let o = Command::new("ip")
        .args(["netns", "exec", &a, "python3", "-c"])
        .arg(
            "import socket, time\n\
             def rt(c, m):\n\
             \x20   c.sendall(m); r=b''\n\
             \x20   while len(r) < len(m):\n\
             \x20       b=c.recv(65536)\n\
             \x20       if not b: break\n\
             \x20       r+=b\n\
             \x20   assert r == m.upper(), (len(r), r[:30])\n\
             def conn():\n\
             \x20   for _ in range(3):\n\
             \x20       try:\n\
             \x20           return socket.create_connection(('10.89.0.2',8095), timeout=3)\n\
             \x20       except OSError:\n\
             \x20           time.sleep(0.5)\n\
             \x20   raise SystemExit('no connection')\n\
             cs=[conn(), conn()]\n\
             for c in cs: c.settimeout(20); rt(c, b'first-' * 3000)\n\
             print('two open', flush=True)\n\
             try:\n\
             \x20   x=socket.create_connection(('10.89.0.2',8095), timeout=3)\n\
             \x20   print('third connected', flush=True)\n\
             except OSError as e:\n\
             \x20   print('third refused', type(e).__name__, flush=True)\n\
             for c in cs: rt(c, b'after-' * 5000)\n\
             print('still flowing', flush=True)\n",
        )
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(out.contains("two open"), "two connections: {out} {err}");
    assert!(
        out.contains("third refused"),
        "the third connection went through a full table: {out} {err}"
    );
    assert!(
        out.contains("still flowing"),
        "established connections stopped: {out} {err}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&r.must(&["stats", "--json"])).expect("stats JSON");
    let ct = &stats["ct"];
    assert_eq!(ct["entries"], 2, "{ct}");
    assert!(ct["limit_drops"].as_u64().unwrap_or(0) >= 1, "{ct}");
    drop(r);
    let mut srv = srv;
    let _ = srv.kill();
    let srv_out = finish(srv);
    assert_eq!(
        srv_out.matches("accepted").count(),
        2,
        "the server accepted: {srv_out}"
    );
    drop(ns);
}
