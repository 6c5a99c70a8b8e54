//! Connection-tracking flows through OpenFlow, as operators and OVN write
//! them: the real `ovs-ofctl -O OpenFlow13` adds a stateful firewall and
//! SNAT/DNAT flows (`ct(...)`, `nat(...)`, `exec(...)`, `ct_clear`, every
//! ct match field) to `vswitch run --ovsdb` and, in the same test, to a
//! real Open vSwitch 3.1 (`ovs-vswitchd` on its dummy datapath, which runs
//! the same ofproto code as OVS-DPDK without hugepages); `dump-flows`,
//! `mod-flows`, `del-flows` (strict and not) and filtered dumps must print
//! the same text on both. Options OVS has and this switch does not
//! (`alg=ftp`) must earn an OpenFlow error, not a crash, and leave the
//! switch serving. The register flows (`reg_flows.txt`: OVN's zones in
//! registers, `load`/`move`/`set_field`, `ct(zone=NXM_NX_REG0[0..15])`)
//! print the same too, and an OVN-style ACL pipeline with its zone in a
//! register passes kernel TCP one way.
//!
//! ```text
//!  ovs-ofctl ──unix:RUN/br0.mgmt──► vswitch run --ovsdb   (ovs_harness::Rig)
//!  ovs-ofctl ──unix:RUN/br0.mgmt──► ovs-vswitchd --enable-dummy=override
//!            the same commands, the dumps compared line by line (sorted)
//! ```

mod netns;
mod ovs_harness;

use netns::{sh, tcp_echo, until, Netns};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ovs_harness::{Kind, Net, Rig, Sandbox};

/// The flows both switches accept, one per line (`add-flows` syntax). The
/// firewall of the issue (track untracked IP in zone 5, pass established
/// and related, commit new connections to port 80 from port 1, drop
/// invalid), a SNAT gateway with a port range and conntrack marks, DNAT
/// over IPv6, and matches on every ct field.
const FLOWS: &str = include_str!("../ofproto/tests/ct_flows.txt");

/// The bridge settings of both switches: secure, OpenFlow 1.3.
const BRIDGE: &[&str] = &["fail_mode=secure", "protocols=OpenFlow13"];

/// A real Open vSwitch on its dummy datapath (`ovs-vswitchd
/// --enable-dummy=override --disable-system`: nothing touches the host's
/// network) with bridge `br0`, killed and removed on drop.
fn dummy_ovs() -> Sandbox {
    let dir = std::env::temp_dir().join(format!("vsw-ctofd-dummy-{}", std::process::id()));
    Sandbox::start_dummy(dir, "br0", BRIDGE).unwrap_or_else(|e| panic!("{e}"))
}

/// `vswitch run --ovsdb` in the test's network namespace (its ports are
/// the host's links) with bridge `bridge`. Its run directory is
/// `vsw-ctofd-vsw-*`: the `Rig` of the other test uses `vsw-ctof-vsw-*`
/// (the two tests also take turns: `serial`).
fn vswitch(bridge: &str) -> Rig {
    let mut rig = Rig::new(Kind::Vswitch, "ctofd");
    rig.start_ovsdb()
        .and_then(|_| rig.start_daemon(Net::Host, &[]))
        .and_then(|_| rig.add_bridge(bridge, BRIDGE))
        .and_then(|_| rig.wait_for_file(&format!("{bridge}.mgmt"), 30))
        .unwrap_or_else(|e| panic!("{e}"));
    rig
}

/// `ovs-ofctl -O OpenFlow13 ARGS` against the switch in `dir`:
/// (success, stdout, stderr).
fn ofctl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new("ovs-ofctl")
        .env("OVS_RUNDIR", dir)
        .args(["-O", "OpenFlow13"])
        .args(args)
        .output()
        .expect("ovs-ofctl");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (good, out, err) = ofctl(dir, args);
    assert!(good, "ovs-ofctl {args:?} on {}: {err}", dir.display());
    out
}

/// The dumped flows, one trimmed line each, sorted (the two switches reply
/// in their own orders).
fn dump(dir: &Path, bridge: &str, filter: Option<&str>) -> Vec<String> {
    let mut args = vec!["dump-flows", bridge, "--no-stats"];
    args.extend(filter);
    let mut v: Vec<String> = ok(dir, &args)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn same(what: &str, vsw: &Path, ovs: &Path, filter: Option<&str>) -> Vec<String> {
    let (a, b) = (dump(vsw, "br0", filter), dump(ovs, "br0", filter));
    assert_eq!(
        a,
        b,
        "{what}: vswitch and OVS print different flows\n--- vswitch:\n{}\n--- OVS:\n{}",
        a.join("\n"),
        b.join("\n")
    );
    a
}

/// OVS on its dummy datapath and `vswitch run --ovsdb`, `text` added to
/// both `br0` with `ovs-ofctl add-flows`; both must print the same dump
/// (`what`), a line per line of `text`. The switches (kept until the
/// caller drops them), their run directories (vswitch's, OVS's) and the
/// dump.
fn both_with_flows(what: &str, text: &str) -> (Sandbox, Rig, PathBuf, PathBuf, Vec<String>) {
    let ovs = dummy_ovs();
    let mut rig = Rig::new(Kind::Vswitch, "ctof");
    rig.start().unwrap_or_else(|e| panic!("{e}"));
    let (vsw, ovsd) = (rig.dir.clone(), ovs.dir.clone());
    let file = vsw.join("flows.txt");
    std::fs::write(&file, text).unwrap();
    let file = file.to_string_lossy().into_owned();
    for d in [&vsw, &ovsd] {
        ok(d, &["add-flows", "br0", &file]);
    }
    let flows = same(what, &vsw, &ovsd, None);
    assert_eq!(flows.len(), text.lines().count(), "{flows:#?}");
    eprintln!("both print:\n{}", flows.join("\n"));
    (ovs, rig, vsw, ovsd, flows)
}

/// The OpenFlow error code ovs-ofctl printed (`OFPBAC_BAD_ARGUMENT`, ...).
fn error_code(stderr: &str) -> Option<String> {
    stderr
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.starts_with("OFPB") || w.starts_with("OFPFMFC"))
        .map(str::to_owned)
}

/// One switch at a time (each busy-polls a core of this 2-core machine).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn ct_flows_round_trip_as_with_ovs() {
    let _one = serial();
    for tool in ["ovs-ofctl", "ovs-vsctl", "ovsdb-server", "ovs-vswitchd"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is missing: apt-get install openvswitch-switch openvswitch-common"
        );
    }
    // add-flows, then the dumps print the same text.
    let (_ovs, _rig, vsw, ovsd, flows) = both_with_flows("after add-flows", FLOWS);
    // What OVS prints for the SNAT gateway flow (checked by hand against
    // ovs-actions(7)): the masked ct_label write travels as a reg_load.
    let snat = "table=2, priority=10,ip,in_port=1 actions=ct(commit,zone=7,\
                nat(src=192.168.1.1-192.168.1.4:5000-6000,persistent,random),\
                exec(set_field:0x1->ct_mark,load:0x2->NXM_NX_CT_LABEL[0..7])),output:2";
    assert!(flows.iter().any(|l| l == snat), "{flows:#?}");
    assert!(
        flows
            .iter()
            .any(|l| l == "priority=100,ct_state=-trk,ip actions=ct(table=1,zone=5)"),
        "{flows:#?}"
    );

    // Filtered dumps select by ct fields the same way.
    same("dump-flows ct_zone=7", &vsw, &ovsd, Some("ct_zone=7"));
    let est = same(
        "dump-flows ct_state=+trk",
        &vsw,
        &ovsd,
        Some("table=1,ct_state=+trk"),
    );
    assert_eq!(est.len(), 5, "{est:#?}");

    // mod-flows (non-strict: every flow at least as specific), strict
    // del-flows of a flow matching every IPv6 ct field, non-strict
    // del-flows by ct_state.
    for d in [&vsw, &ovsd] {
        ok(
            d,
            &[
                "mod-flows",
                "br0",
                "table=1,ct_state=+est+trk,ip,actions=output:3",
            ],
        );
        ok(
            d,
            &[
                "del-flows",
                "br0",
                "--strict",
                "table=3,ct_state=-inv+trk+snat+dnat,ct_label=0x1/0x1,\
                 ct_ipv6_src=2001:db8::1,ct_ipv6_dst=2001:db8::/32,ipv6",
            ],
        );
        ok(d, &["del-flows", "br0", "table=0,ct_state=-trk"]);
    }
    let after = same("after mod-flows and del-flows", &vsw, &ovsd, None);
    assert_eq!(after.len(), flows.len() - 3, "{after:#?}");
    assert!(after
        .iter()
        .any(|l| l == "table=1, priority=100,ct_state=+est+trk,ip actions=output:3"));

    // Refused alike: a tuple field without a tracked state (BAD_PREREQ).
    let bad_prereq = "table=9,ip,ct_nw_src=10.0.0.1,actions=drop";
    for d in [&vsw, &ovsd] {
        let (good, _, err) = ofctl(d, &["add-flow", "br0", bad_prereq]);
        assert!(!good);
        assert_eq!(
            error_code(&err).as_deref(),
            Some("OFPBMC_BAD_PREREQ"),
            "{err}"
        );
    }
    // What OVS accepts and this switch does not: a proper OpenFlow error.
    for (flow, code) in [
        (
            "table=9,tcp,actions=ct(commit,alg=ftp)",
            "OFPBAC_BAD_ARGUMENT",
        ),
        (
            "table=9,ip,actions=write_actions(ct_clear)",
            "OFPBAC_BAD_TYPE",
        ),
    ] {
        ok(&ovsd, &["add-flow", "br0", flow]);
        let (good, _, err) = ofctl(&vsw, &["add-flow", "br0", flow]);
        assert!(!good, "vswitch took {flow}");
        assert_eq!(error_code(&err).as_deref(), Some(code), "{flow}: {err}");
    }
    // The switch lives on, its flows intact.
    ok(&ovsd, &["del-flows", "br0", "table=9"]);
    same("after the refused flows", &vsw, &ovsd, None);
}

#[test]
fn reg_flows_round_trip_as_with_ovs() {
    let _one = serial();
    let text = include_str!("../ofproto/tests/reg_flows.txt");
    let (_ovs, _rig, vsw, ovsd, flows) = both_with_flows("register flows", text);
    // What OVS 3.1 prints for OVN's zone-in-a-register pattern.
    for want in [
        "priority=100,ip,in_port=1 actions=load:0x7->NXM_NX_REG0[0..15],ct(table=1,zone=NXM_NX_REG0[0..15])",
        "table=1, priority=90,ct_state=+est+trk,ip,reg0=0x7/0xffff actions=output:2",
        "table=1, priority=100,ct_state=+new+trk,tcp,reg0=0x7,tp_dst=80 actions=ct(commit,zone=NXM_NX_REG0[0..15]),output:2",
    ] {
        assert!(flows.iter().any(|l| l == want), "{want}\n{flows:#?}");
    }
    // Filtered dumps and deletions by register fields select alike.
    same("dump-flows reg0=0x7", &vsw, &ovsd, Some("reg0=0x7"));
    same(
        "dump-flows table=1,reg1",
        &vsw,
        &ovsd,
        Some("table=1,reg1=0x10/0xf0"),
    );
    for d in [&vsw, &ovsd] {
        ok(
            d,
            &[
                "del-flows",
                "br0",
                "--strict",
                "table=1,priority=80,reg1=0x10/0xf0,reg15=0xffffffff",
            ],
        );
        ok(
            d,
            &[
                "mod-flows",
                "br0",
                "table=1,reg0=0x7/0xffff,actions=set_field:0x8->reg0,output:3",
            ],
        );
    }
    let after = same("after del-flows and mod-flows", &vsw, &ovsd, None);
    assert_eq!(after.len(), flows.len() - 1, "{after:#?}");
    // Refused alike: a zone field that is not 16 bits wide.
    for d in [&vsw, &ovsd] {
        let (good, _, _) = ofctl(
            d,
            &[
                "add-flow",
                "br0",
                "table=9,ip,actions=ct(zone=NXM_NX_REG0[0..7])",
            ],
        );
        assert!(!good);
    }
    same("after the refused flow", &vsw, &ovsd, None);
}

/// Two namespaces behind `vswitch run --ovsdb` on real kernel TCP: `a`
/// (`10.N.0.1`, OpenFlow port 1) and `b` (`10.N.0.2`, port 2) on veths,
/// the bridge's flows added with `ovs-ofctl add-flows`.
struct TwoHosts {
    /// First field: the links go before the switch stops.
    _ns: Netns,
    sw: Rig,
    br: String,
    a: String,
    b: String,
    net: u8,
}

impl TwoHosts {
    /// `tag` names the bridge, the namespaces (`TAGa`, `TAGb`) and their
    /// links; `net` the subnet `10.net.0.0/24`; `mac` the MACs' fifth
    /// byte. Every line of `flows` must be installed.
    fn start(tag: &str, net: u8, mac: u8, flows: &str) -> TwoHosts {
        let id = std::process::id() % 100000;
        let br = format!("{tag}{id}");
        let sw = vswitch(&br);
        let mut ns = Netns::default();
        let (a, b) = (format!("{tag}a{id}"), format!("{tag}b{id}"));
        let (la, lb) = (format!("{a}h"), format!("{b}h"));
        ns.host(
            &a,
            &la,
            &format!("02:00:00:0c:{mac:02x}:01"),
            &format!("10.{net}.0.1/24"),
        );
        ns.host(
            &b,
            &lb,
            &format!("02:00:00:0c:{mac:02x}:02"),
            &format!("10.{net}.0.2/24"),
        );
        sw.vsctl(&[
            "add-port",
            &br,
            &la,
            "--",
            "set",
            "Interface",
            &la,
            "ofport_request=1",
            "--",
            "add-port",
            &br,
            &lb,
            "--",
            "set",
            "Interface",
            &lb,
            "ofport_request=2",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let file = sw.dir.join("flows.txt");
        std::fs::write(&file, flows).unwrap();
        ok(&sw.dir, &["add-flows", &br, &file.to_string_lossy()]);
        assert_eq!(dump(&sw.dir, &br, None).len(), flows.lines().count());
        TwoHosts {
            _ns: ns,
            sw,
            br,
            a,
            b,
            net,
        }
    }

    fn ping(&self, from: &str, to: u8) -> bool {
        sh(&format!(
            "ip netns exec {from} ping -c 1 -W 1 10.{}.0.{to}",
            self.net
        ))
        .status
        .success()
    }

    /// Port 1's ping reaches port 2 (`what`: the flows, once the ports
    /// came up), TCP from port 1 to port 2:8080 is echoed; a new ping from
    /// port 2 is dropped, and TCP from port 2 to port 1 (its SYN is `+new`
    /// from port 2) neither connects nor is accepted.
    fn passes_one_way(&self, what: &str) {
        let (a, b, net) = (&self.a, &self.b, self.net);
        // Ports come up asynchronously: wait for the allowed direction.
        until(&format!("ping 1 -> 2 through {what}"), 30, || {
            self.ping(a, 2)
        });
        tcp_echo(b, a, &format!("10.{net}.0.2"), 8080);
        assert!(!self.ping(b, 1), "a new ping from port 2 crossed");
        let server = Command::new("ip")
            .args(["netns", "exec", a, "timeout", "6", "python3", "-c"])
            .arg(format!(
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('10.{net}.0.1',8080)); s.listen(1); s.settimeout(5)\n\
                 try:\n    s.accept(); print('accepted')\nexcept OSError: pass\n"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let client = sh(&format!(
            "ip netns exec {b} python3 -c \"import socket; socket.create_connection(('10.{net}.0.1',8080), timeout=3)\""
        ));
        assert!(!client.status.success(), "TCP from port 2 was let through");
        let out = server.wait_with_output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains("accepted"));
    }

    /// The bridge's `dump-flows` with counters (printed).
    fn dump_flows(&self) -> String {
        let d = ok(&self.sw.dir, &["dump-flows", &self.br]);
        eprintln!("{d}");
        d
    }
}

/// The packet counter of the flow of `dump` whose line contains `needle`.
fn packets(dump: &str, needle: &str) -> u64 {
    let l = dump
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no flow with {needle} in\n{dump}"));
    l.split("n_packets=")
        .nth(1)
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no n_packets in {l}"))
}

/// OVN's ACL pattern installed with `ovs-ofctl`, on real kernel TCP: table
/// 0 loads the logical port's zone into reg0 (and which side it is into
/// reg1) and tracks the frame in that zone (`ct(zone=NXM_NX_REG0[0..15],
/// table=1)`); table 1 matches the registers kept across the
/// recirculation: new TCP to 8080 from port 1 is committed in the zone,
/// established traffic passes both ways, the rest is dropped. The
/// connection must sit in zone 9 (`vswitch ct show --zone 9`).
#[test]
fn an_ovn_acl_with_zone_in_a_register_passes_tcp_one_way() {
    let _one = serial();
    let flows = "\
table=0,priority=10,arp,in_port=1,actions=output:2
table=0,priority=10,arp,in_port=2,actions=output:1
table=0,priority=100,ip,in_port=1,actions=load:0x9->NXM_NX_REG0[0..15],load:0x1->NXM_NX_REG1[],ct(table=1,zone=NXM_NX_REG0[0..15])
table=0,priority=100,ip,in_port=2,actions=load:0x9->NXM_NX_REG0[0..15],load:0x2->NXM_NX_REG1[],ct(table=1,zone=NXM_NX_REG0[0..15])
table=1,priority=100,ct_state=+est+trk,ip,reg0=0x9,reg1=0x1,actions=output:2
table=1,priority=100,ct_state=+est+trk,ip,reg0=0x9,reg1=0x2,actions=output:1
table=1,priority=90,ct_state=+new+trk,tcp,reg1=0x1,tp_dst=8080,actions=ct(commit,zone=NXM_NX_REG0[0..15]),output:2
table=1,priority=90,ct_state=+new+trk,icmp,reg1=0x1,actions=ct(commit,zone=NXM_NX_REG0[0..15]),output:2
table=1,priority=80,ct_state=+inv+trk,ip,actions=drop
table=1,priority=1,actions=drop
";
    let h = TwoHosts::start("ovna", 204, 0x1f, flows);
    h.passes_one_way("the OVN ACL");
    // The connections were tracked in the register's zone, 9.
    let ct = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["ct", "show", "--zone", "9", "--control"])
        .arg(h.sw.dir.join("ctl.sock"))
        .output()
        .unwrap();
    let ct = String::from_utf8_lossy(&ct.stdout).into_owned();
    assert!(ct.contains("dport=8080") && ct.contains("zone=9"), "{ct}");
    let d = h.dump_flows();
    assert!(packets(&d, "tp_dst=8080") >= 1, "{d}");
    assert!(packets(&d, "reg0=0x9,reg1=0x2") >= 2, "{d}");
    assert!(packets(&d, "priority=1 ") >= 2, "{d}");
}

/// A stateful firewall installed with `ovs-ofctl` works on real kernel
/// TCP: two namespaces behind `vswitch run --ovsdb`; new TCP connections
/// to port 8080 and pings are allowed from port 1 only (committed in zone
/// 5, the TCP ones with ct_mark 7 through `exec`); replies pass as `+est`,
/// and TCP replies only with that mark; everything new from port 2 is
/// dropped. The flows' counters show which flow did what.
#[test]
fn an_openflow_ct_firewall_passes_tcp_one_way() {
    let _one = serial();
    let flows = "\
table=0,priority=10,arp,in_port=1,actions=output:2
table=0,priority=10,arp,in_port=2,actions=output:1
table=0,priority=100,ct_state=-trk,ip,actions=ct(table=1,zone=5)
table=1,priority=100,ct_state=+est+trk,ip,in_port=1,actions=output:2
table=1,priority=100,ct_state=+est+trk,ct_mark=0x7,tcp,in_port=2,actions=output:1
table=1,priority=99,ct_state=+est+trk,icmp,in_port=2,actions=output:1
table=1,priority=90,ct_state=+new+trk,tcp,in_port=1,tp_dst=8080,actions=ct(commit,zone=5,exec(set_field:0x7->ct_mark)),output:2
table=1,priority=90,ct_state=+new+trk,icmp,in_port=1,actions=ct(commit,zone=5),output:2
table=1,priority=80,ct_state=+inv+trk,ip,actions=drop
table=1,priority=1,actions=drop
";
    let h = TwoHosts::start("ctof", 203, 0x0f, flows);
    h.passes_one_way("the ct firewall");
    let d = h.dump_flows();
    // One SYN committed (with the mark), the replies matched the mark, the
    // SYNs and pings from port 2 hit the final drop.
    assert!(packets(&d, "tp_dst=8080") >= 1, "{d}");
    assert!(packets(&d, "ct_mark=0x7") >= 2, "{d}");
    assert!(packets(&d, "priority=1 ") >= 2, "{d}");
    assert!(packets(&d, "ct_state=-trk,ip") >= 6, "{d}");
}
