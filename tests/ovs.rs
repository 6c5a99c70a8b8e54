//! `vswitch run --ovsdb` driven as operators drive `ovs-vswitchd`: a real
//! `ovsdb-server` on a database made from OVS's own schema, and the real
//! `ovs-vsctl` adding and removing bridges and ports while traffic flows
//! between two network namespaces.

mod ovs_harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ovs_harness::netns::{sh, until, Netns};
use ovs_harness::{ok, Kind, Net, Rig};

/// One switch at a time: each busy-polls a core of this 2-core machine,
/// and three at once starve the kernel's side of the veths.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh `ovsdb-server` on a database created from `vswitch.ovsschema`
/// and `vswitch run --ovsdb` on it, in the test's network namespace (its
/// ports are the host's links, its bridges' taps the host's); both
/// stopped on drop.
fn switch(tag: &str) -> Rig {
    let mut rig = Rig::new(Kind::Vswitch, &format!("ovs-{tag}"));
    ok(rig.start_ovsdb());
    ok(rig.start_daemon(Net::Host, &[]));
    rig
}

/// `ovs-vsctl` with the words of `args` (waiting for the switch to apply
/// the change, as operators do), whose failure the caller judges.
fn vsctl_raw(db: &Rig, args: &str) -> Output {
    ok(db.vsctl_output(&args.split_whitespace().collect::<Vec<_>>()))
}

/// [`vsctl_raw`] that must succeed; its stdout, trimmed.
fn vsctl(db: &Rig, args: &str) -> String {
    ok(db.vsctl(&args.split_whitespace().collect::<Vec<_>>()))
        .trim()
        .to_owned()
}

/// The switch's port numbers (`vswitch ports show` on its control socket).
fn port_numbers(db: &Rig) -> Vec<u64> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(db.vswitch(&["ports", "show", "--json"]))).unwrap();
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect()
}

/// What the switch wrote to its stderr.
fn switch_log(db: &Rig) -> String {
    std::fs::read_to_string(db.dir.join(db.log_name())).unwrap_or_default()
}

/// Two network namespaces `vo{tag}{1,2}*` with addresses `{subnet}.1` and
/// `{subnet}.2`, each behind a veth whose host end is in `links`.
fn hosts(tag: &str, subnet: &str) -> Netns {
    let id = std::process::id() % 100000;
    let mut h = Netns::default();
    for i in 1..=2 {
        h.host(
            &format!("vo{tag}{i}{id}"),
            &format!("vo{tag}{i}h{id}"),
            &format!("02:00:00:00:0{i}:01"),
            &format!("{subnet}.{i}/24"),
        );
    }
    h
}

/// Whether the first host pings `to`.
fn ping(h: &Netns, to: &str) -> bool {
    sh(&format!(
        "ip netns exec {} ping -c 2 -i 0.2 -W 1 {to}",
        h.names[0]
    ))
    .status
    .success()
}

fn wait_ping(h: &Netns, to: &str) {
    until(&format!("ping to {to} through the switch"), 20, || {
        ping(h, to)
    });
}

fn stat(db: &Rig, iface: &str, key: &str) -> u64 {
    vsctl(db, &format!("get Interface {iface} statistics:{key}"))
        .trim_matches('"')
        .parse()
        .unwrap_or(0)
}

#[test]
fn ovs_vsctl_builds_the_bridge_while_traffic_flows() {
    let _one = serial();
    let mut db = switch("gs");
    // Bridge names are kernel tap names: one per test and process.
    let br = format!("vsg{}", std::process::id() % 100000);
    let hosts = hosts("g", "10.201.0");
    let (l1, l2) = (&hosts.links[0], &hosts.links[1]);

    // The OVS-DPDK getting-started sequence, verbatim but for the devargs.
    vsctl(
        &db,
        &format!("add-br {br} -- set bridge {br} datapath_type=netdev"),
    );
    vsctl(
        &db,
        &format!(
            "add-port {br} dpdk0 -- set Interface dpdk0 type=dpdk \
         options:dpdk-devargs=net_af_packet0,iface={l1}"
        ),
    );
    // A kernel interface as a system port, with a requested OpenFlow number.
    vsctl(
        &db,
        &format!("add-port {br} {l2} -- set Interface {l2} ofport_request=10"),
    );
    assert_eq!(
        vsctl(&db, "get Interface dpdk0 ofport"),
        "1",
        "error: {}",
        vsctl(&db, "get Interface dpdk0 error")
    );
    assert_eq!(vsctl(&db, &format!("get Interface {l2} ofport")), "10");
    // The bridge's own internal interface is LOCAL, a tap device named like it.
    assert_eq!(vsctl(&db, &format!("get Interface {br} ofport")), "65534");
    assert!(
        sh(&format!("ip link show {br}")).status.success(),
        "no {br} tap device"
    );
    // (63: the controller channel.)
    assert_eq!(port_numbers(&db), vec![0, 1, 10, 63]);

    // No flows, no controller: a learning bridge, like OVS's NORMAL.
    wait_ping(&hosts, "10.201.0.2");
    until("statistics written back", 15, || {
        stat(&db, "dpdk0", "rx_packets") >= 2 && stat(&db, l2, "tx_packets") >= 2
    });
    assert_eq!(vsctl(&db, "get Interface dpdk0 link_state"), "up");
    assert_eq!(vsctl(&db, "get Interface dpdk0 admin_state"), "up");

    // A port that cannot be created gets the error column and ofport -1;
    // the rest keeps running.
    let o = vsctl_raw(
        &db,
        &format!(
        "add-port {br} bad0 -- set Interface bad0 type=dpdk options:dpdk-devargs=net_nosuchpmd0"
    ),
    );
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("bad0"), "ovs-vsctl reported nothing: {said}");
    assert_eq!(vsctl(&db, "get Interface bad0 ofport"), "-1");
    let err = vsctl(&db, "get Interface bad0 error");
    assert!(err.contains("net_nosuchpmd0"), "error column: {err}");
    let o = vsctl_raw(
        &db,
        &format!("add-port {br} noargs -- set Interface noargs type=dpdk"),
    );
    assert!(!String::from_utf8_lossy(&o.stderr).is_empty());
    assert!(vsctl(&db, "get Interface noargs error").contains("dpdk-devargs"));
    vsctl(&db, &format!("del-port {br} noargs"));
    wait_ping(&hosts, "10.201.0.2");

    // A vhost-user client port (QEMU would own the socket) gets a number.
    let vhu = db.dir.join("vhu0.sock");
    vsctl(
        &db,
        &format!(
            "add-port {br} vhu0 -- set Interface vhu0 type=dpdkvhostuserclient \
         options:vhost-server-path={}",
            vhu.display()
        ),
    );
    assert_eq!(vsctl(&db, "get Interface vhu0 ofport"), "2");

    // ovsdb-server restarts under the running switch: it reconnects and
    // resyncs without recreating anything, and traffic never stops.
    let rx_before = stat(&db, "dpdk0", "rx_packets");
    db.kill_ovsdb();
    assert!(
        ping(&hosts, "10.201.0.2"),
        "traffic stopped with the database"
    );
    ok(db.spawn_ovsdb());
    vsctl(
        &db,
        &format!("add-port {br} vhu1 -- set Interface vhu1 type=dpdkvhostuser"),
    );
    assert!(
        db.dir.join("vhu1").exists(),
        "the dpdkvhostuser socket is in the run directory"
    );
    assert_eq!(vsctl(&db, "get Interface vhu1 ofport"), "3");
    until("statistics after the restart", 15, || {
        stat(&db, "dpdk0", "rx_packets") > rx_before
    });
    let log = switch_log(&db);
    assert_eq!(
        log.matches("interface dpdk0 (").count(),
        1,
        "dpdk0 was created again after the reconnect: {log}"
    );
    assert!(!log.contains("interface dpdk0 (port 1) removed"), "{log}");

    // Removing a port while traffic flows stops that traffic only.
    vsctl(&db, &format!("del-port {br} {l2}"));
    assert!(!ping(&hosts, "10.201.0.2"), "ping crossed a deleted port");
    assert_eq!(port_numbers(&db), vec![0, 1, 2, 3, 63]);
    // Deleting the bridge removes every port.
    vsctl(&db, &format!("del-br {br}"));
    until("every port removed", 10, || port_numbers(&db) == [63]);
    assert!(
        !sh(&format!("ip link show {br}")).status.success(),
        "{br} tap left behind"
    );
}

/// `ovs-ofctl -O OpenFlow13` with the words of `args` against the bridge
/// by name (it finds `RUNDIR/BRIDGE.mgmt` as with `ovs-vswitchd`): the
/// error (its stderr) if it fails.
fn ofctl_raw(db: &Rig, args: &str) -> Result<String, String> {
    db.ofctl(&args.split_whitespace().collect::<Vec<_>>())
}

/// [`ofctl_raw`] that must succeed; its stdout.
fn ofctl(db: &Rig, args: &str) -> String {
    ok(ofctl_raw(db, args))
}

/// The `n_packets` of the dumped flow whose text contains `needle`.
fn flow_packets(dump: &str, needle: &str) -> u64 {
    let line = dump
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no flow with {needle:?} in\n{dump}"));
    line.split("n_packets=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no n_packets in {line}"))
}

#[test]
fn ovs_ofctl_programs_the_bridge() {
    let _one = serial();
    let db = switch("of");
    let br = format!("vso{}", std::process::id() % 100000);
    let hosts = hosts("o", "10.202.0");
    let (l1, l2) = (&hosts.links[0], &hosts.links[1]);
    vsctl(
        &db,
        &format!("add-br {br} -- set bridge {br} datapath_type=netdev"),
    );
    vsctl(&db, &format!("add-port {br} {l1} -- add-port {br} {l2}"));

    // A standalone bridge without a controller: one NORMAL flow, as OVS.
    let dump = ofctl(&db, &format!("dump-flows {br}"));
    assert!(dump.contains("priority=0 actions=NORMAL"), "{dump}");
    let show = ofctl(&db, &format!("show {br}"));
    assert!(show.contains(&format!("1({l1})")), "{show}");
    assert!(show.contains(&format!("LOCAL({br})")), "{show}");
    wait_ping(&hosts, "10.202.0.2");

    // add-flows from a file; mod-flows changes the actions, keeps the flow.
    let flows = db.dir.join("flows.txt");
    std::fs::write(
        &flows,
        "priority=50,udp,tp_dst=5001,actions=drop\npriority=50,udp,tp_dst=5002,actions=drop\n",
    )
    .unwrap();
    ofctl(&db, &format!("add-flows {br} {}", flows.display()));
    ofctl(
        &db,
        &format!("mod-flows {br} udp,tp_dst=5002,actions=output:1"),
    );
    let dump = ofctl(&db, &format!("dump-flows {br}"));
    assert!(dump.contains("tp_dst=5001 actions=drop"), "{dump}");
    assert!(dump.contains("tp_dst=5002 actions=output:1"), "{dump}");
    ofctl(&db, &format!("del-flows {br} udp"));
    assert!(!ofctl(&db, &format!("dump-flows {br}")).contains("udp"));

    // A drop flow stops ICMP and counts it; deleting it restores ping.
    ofctl(
        &db,
        &format!("add-flow {br} priority=100,icmp,actions=drop"),
    );
    assert!(!ping(&hosts, "10.202.0.2"), "ping crossed a drop flow");
    let dump = ofctl(&db, &format!("dump-flows {br}"));
    assert!(flow_packets(&dump, "priority=100,icmp") >= 2, "{dump}");
    ofctl(&db, &format!("del-flows {br} icmp"));
    wait_ping(&hosts, "10.202.0.2");
    assert!(ofctl(&db, &format!("dump-flows {br}")).contains("actions=NORMAL"));

    // A pipeline: IPv4 goes through table 1, where ICMP is dropped.
    ofctl(
        &db,
        &format!("add-flow {br} table=0,priority=200,ip,actions=goto_table:1"),
    );
    ofctl(
        &db,
        &format!("add-flow {br} table=1,priority=10,ip,actions=NORMAL"),
    );
    wait_ping(&hosts, "10.202.0.2");
    ofctl(
        &db,
        &format!("add-flow {br} table=1,priority=20,cookie=0x77,icmp,actions=drop"),
    );
    assert!(
        !ping(&hosts, "10.202.0.2"),
        "ping crossed table 1's drop flow"
    );
    let dump = ofctl(&db, &format!("dump-flows {br} table=1"));
    assert!(flow_packets(&dump, "cookie=0x77") >= 2, "{dump}");
    // Deleting by cookie removes exactly that flow.
    ofctl(&db, &format!("del-flows {br} cookie=0x77/-1"));
    wait_ping(&hosts, "10.202.0.2");
    let dump = ofctl(&db, &format!("dump-flows {br}"));
    assert!(
        !dump.contains("0x77") && dump.contains("goto_table:1"),
        "{dump}"
    );
    let tables = ofctl(&db, &format!("dump-tables {br}"));
    assert!(tables.contains("table 1:"), "{tables}");

    // Groups: an ALL group floods to both ports.
    ofctl(
        &db,
        &format!("add-group {br} group_id=7,type=all,bucket=output:1,bucket=output:2"),
    );
    let groups = ofctl(&db, &format!("dump-groups {br}"));
    assert!(groups.contains("group_id=7,type=all"), "{groups}");
    ofctl(
        &db,
        &format!("add-flow {br} table=1,priority=30,arp,actions=group:7"),
    );
    wait_ping(&hosts, "10.202.0.2");

    // Port counters move with traffic.
    let ports = ofctl(&db, &format!("dump-ports {br} 1"));
    assert!(ports.contains("rx pkts="), "{ports}");
    assert!(!ports.contains("rx pkts=0,"), "{ports}");

    // Bad requests get OpenFlow errors; the connection and the switch live on.
    // (Port 42 may appear later, as in OVS; port 100 is beyond this
    // switch's 63 ports.)
    ofctl(
        &db,
        &format!("add-flow {br} priority=1,udp,tp_dst=9,actions=output:42"),
    );
    let err = ofctl_raw(&db, &format!("add-flow {br} ip,actions=output:100")).unwrap_err();
    assert!(err.contains("OFPBAC_BAD_OUT_PORT"), "{err}");
    assert!(ofctl_raw(
        &db,
        &format!("add-flow {br} table=2,ip,actions=goto_table:1"),
    )
    .is_err());
    assert!(ofctl_raw(&db, &format!("add-flow {br} udp,actions=meter:1,output:1")).is_err());
    wait_ping(&hosts, "10.202.0.2");

    // Fragment handling, as `ovs-ofctl set-frags`: OVS's default first.
    assert!(ofctl(&db, &format!("get-frags {br}")).contains("normal"));
    ofctl(&db, &format!("set-frags {br} nx-match"));
    assert!(ofctl(&db, &format!("get-frags {br}")).contains("nx-match"));
    assert!(ofctl_raw(&db, &format!("set-frags {br} reassemble")).is_err());
    ofctl(&db, &format!("set-frags {br} normal"));

    // fail_mode: a standalone bridge whose controller never answers fails
    // open (NORMAL over every flow); secure keeps the flows.
    ofctl(
        &db,
        &format!("add-flow {br} table=0,priority=300,icmp,actions=drop"),
    );
    assert!(!ping(&hosts, "10.202.0.2"));
    vsctl(&db, &format!("set-controller {br} tcp:127.0.0.1:1"));
    until("fail-open", 20, || ping(&hosts, "10.202.0.2"));
    assert!(!ofctl(&db, &format!("dump-flows {br}")).contains("0xf0f0f0f0"));
    vsctl(&db, &format!("set-fail-mode {br} secure"));
    until("fail-open ends in secure mode", 10, || {
        !ping(&hosts, "10.202.0.2")
    });
}

/// An os-ken controller running `tests/controllers/learning_switch.py`,
/// killed on drop; what it printed is in `log`.
struct Controller {
    child: Child,
    log: PathBuf,
}

/// The Python that has os-ken (`.ci/install-deps.sh test` makes this venv).
const OSKEN_PYTHON: &str = "/opt/vswitch-venv/bin/python";

impl Controller {
    fn start(db: &Rig, port: u16) -> Controller {
        assert!(
            Path::new(OSKEN_PYTHON).exists(),
            "{OSKEN_PYTHON} is missing: bash .ci/install-deps.sh test (a venv with os-ken)"
        );
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/controllers");
        let log = db.dir.join(format!("osken-{port}.log"));
        let child = Command::new(OSKEN_PYTHON)
            .arg(format!("{dir}/run_osken.py"))
            .arg(port.to_string())
            .arg(format!("{dir}/learning_switch.py"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let c = Controller { child, log };
        until("os-ken listening", 30, || c.log().contains("listening"));
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_os_ken_controller_drives_the_switch() {
    let _one = serial();
    let db = switch("ctl");
    let br = format!("vsc{}", std::process::id() % 100000);
    let hosts = hosts("c", "10.203.0");
    let (l1, l2) = (&hosts.links[0], &hosts.links[1]);
    let port = 16000 + (std::process::id() % 1000) as u16;
    // Secure mode: nothing forwards until the controller says so.
    vsctl(
        &db,
        &format!(
            "add-br {br} -- set bridge {br} datapath_type=netdev fail_mode=secure \
         -- add-port {br} {l1} -- add-port {br} {l2}"
        ),
    );
    assert!(!ofctl(&db, &format!("dump-flows {br}")).contains("actions"));
    assert!(
        !ping(&hosts, "10.203.0.2"),
        "secure bridge forwarded without flows"
    );

    vsctl(&db, &format!("set-controller {br} tcp:127.0.0.1:{port}"));
    let ctl = Controller::start(&db, port);
    // ARP and ICMP go to the controller as packet-ins, come back as
    // packet-outs, and the controller installs a flow per learned MAC.
    wait_ping(&hosts, "10.203.0.2");
    let log = ctl.log();
    assert!(log.contains("connected dpid="), "{log}");
    assert!(log.contains("packet_in in_port=1"), "{log}");
    assert!(log.contains("packet_in in_port=2"), "{log}");
    let dump = ofctl(&db, &format!("dump-flows {br}"));
    assert!(
        dump.contains("priority=0 actions=CONTROLLER:65535"),
        "{dump}"
    );
    assert!(dump.contains("priority=1,in_port=1,dl_dst="), "{dump}");
    assert!(
        flow_packets(&dump, "priority=1,in_port=2,dl_dst=") >= 1,
        "{dump}"
    );

    // Asynchronous messages: a new port (PORT_STATUS), a flow that times
    // out and one deleted by ovs-ofctl (FLOW_REMOVED, reasons 1 and 2).
    vsctl(
        &db,
        &format!("add-port {br} extra0 -- set Interface extra0 type=internal"),
    );
    until("port_status", 10, || {
        ctl.log().contains("port_status reason=0")
    });
    assert!(ctl.log().contains("name=extra0"), "{}", ctl.log());
    ofctl(
        &db,
        &format!(
            "add-flow {br} cookie=0x51,hard_timeout=1,send_flow_rem,priority=5,udp,actions=drop"
        ),
    );
    ofctl(
        &db,
        &format!("add-flow {br} cookie=0x52,send_flow_rem,priority=5,tcp,actions=drop"),
    );
    ofctl(&db, &format!("del-flows {br} cookie=0x52/-1"));
    until("flow_removed", 10, || {
        let l = ctl.log();
        l.contains("flow_removed reason=1 cookie=0x51")
            && l.contains("flow_removed reason=2 cookie=0x52")
    });

    // Secure mode keeps the controller's flows when it goes.
    drop(ctl);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        ping(&hosts, "10.203.0.2"),
        "learned flows lost with the controller"
    );
    assert!(ofctl(&db, &format!("dump-flows {br}")).contains("priority=1,in_port=1"));

    // Standalone mode without its controller fails open: NORMAL above
    // every flow (an ICMP drop flow included); the controller's return
    // ends it and the flows rule again.
    ofctl(
        &db,
        &format!("add-flow {br} priority=300,icmp,actions=drop"),
    );
    assert!(!ping(&hosts, "10.203.0.2"));
    vsctl(&db, &format!("set-fail-mode {br} standalone"));
    until("fail-open without the controller", 20, || {
        ping(&hosts, "10.203.0.2")
    });
    let ctl = Controller::start(&db, port);
    until("the controller back, fail-open over", 20, || {
        ctl.log().contains("connected dpid=") && !ping(&hosts, "10.203.0.2")
    });
}

/// The Faucet controller (its own venv: Faucet pins an older os-ken).
const FAUCET: &str = "/opt/vswitch-faucet/bin/faucet";

#[test]
fn faucet_drives_the_switch() {
    let _one = serial();
    assert!(
        Path::new(FAUCET).exists(),
        "{FAUCET} is missing: bash .ci/install-deps.sh test (a venv with faucet)"
    );
    let db = switch("fct");
    let br = format!("vsf{}", std::process::id() % 100000);
    let hosts = hosts("f", "10.204.0");
    let (l1, l2) = (&hosts.links[0], &hosts.links[1]);
    let port = 17000 + (std::process::id() % 1000) as u16;
    // The setup that makes two namespaces ping through OVS-DPDK with Faucet.
    let yaml = db.dir.join("faucet.yaml");
    std::fs::write(
        &yaml,
        "vlans:\n  office:\n    vid: 100\ndps:\n  sw1:\n    dp_id: 0x1\n    hardware: \"Open vSwitch\"\n    \
         interfaces:\n      1:\n        native_vlan: office\n      2:\n        native_vlan: office\n",
    )
    .unwrap();
    vsctl(
        &db,
        &format!(
            "add-br {br} -- set bridge {br} datapath_type=netdev fail_mode=secure \
         protocols=OpenFlow13 other_config:datapath-id=0000000000000001 \
         -- add-port {br} {l1} -- set Interface {l1} ofport_request=1 \
         -- add-port {br} {l2} -- set Interface {l2} ofport_request=2"
        ),
    );
    assert_eq!(
        vsctl(&db, &format!("get Bridge {br} datapath_id")),
        "\"0000000000000001\""
    );
    vsctl(&db, &format!("set-controller {br} tcp:127.0.0.1:{port}"));
    let log = db.dir.join("faucet.log");
    let mut faucet = Command::new(FAUCET)
        .args([
            "--ryu-ofp-tcp-listen-port",
            &port.to_string(),
            "--ryu-ofp-listen-host",
            "127.0.0.1",
        ])
        // Faucet execs osken-manager from PATH.
        .env(
            "PATH",
            format!(
                "{}:{}",
                Path::new(FAUCET).parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("FAUCET_CONFIG", &yaml)
        .env("FAUCET_LOG", &log)
        .env("FAUCET_EXCEPTION_LOG", db.dir.join("faucet.exceptions"))
        .env("FAUCET_PROMETHEUS_PORT", (port + 1).to_string())
        .env("FAUCET_PROMETHEUS_ADDR", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(db.dir.join("faucet.stderr")).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !ping(&hosts, "10.204.0.2") {
        if t.elapsed() > Duration::from_secs(40) {
            let _ = faucet.kill();
            panic!(
                "no ping under Faucet; faucet log:\n{}\nstderr:\n{}\nflows:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                std::fs::read_to_string(db.dir.join("faucet.stderr")).unwrap_or_default(),
                ofctl(&db, &format!("dump-flows {br}"))
            );
        }
    }
    let dump = ofctl(&db, &format!("dump-flows {br}"));
    let _ = faucet.kill();
    let _ = faucet.wait();
    let n = dump.lines().filter(|l| l.contains("actions=")).count();
    eprintln!("Faucet installed {n} flows");
    assert!(n >= 10, "Faucet installed only {n} flows:\n{dump}");
    assert!(
        dump.contains("table=1"),
        "Faucet's multi-table pipeline: {dump}"
    );
}
