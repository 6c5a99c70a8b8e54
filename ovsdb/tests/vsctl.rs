//! The reconciler against a real ovsdb-server, driven by the real ovs-vsctl,
//! with a recording mock Datapath.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{dpdk_port, netdev_bridge, wait_for, Mock, Server};
use ovsdb::{Error, Options};

fn opts() -> Options {
    Options {
        stats_interval: Duration::from_millis(200),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        ..Options::default()
    }
}

fn start(server: &Server) -> (Arc<Mock>, ovsdb::Handle) {
    let mock = Arc::new(Mock::default());
    let h = ovsdb::spawn(&server.target(), mock.clone(), opts()).unwrap();
    assert!(wait_for(Duration::from_secs(5), || h.is_connected()));
    (mock, h)
}

#[test]
fn vsctl_bridges_ports_and_errors() {
    let s = Server::start_new("ports");
    let (mock, h) = start(&s);

    // add-br: the bridge, and its internal port as LOCAL.
    s.ok(&netdev_bridge("br0"));
    assert_eq!(mock.matching("bridge_set br0").len(), 1);
    assert_eq!(
        mock.matching("iface_add br0 br0"),
        vec!["iface_add br0 br0 type=internal options= mtu_request=None ofport=65534"]
    );
    assert_eq!(s.ok(&["get", "Interface", "br0", "ofport"]), "65534");
    assert_eq!(
        s.ok(&["get", "Bridge", "br0", "datapath_id"]),
        "\"00000200000000aa\""
    );
    // cur_cfg caught up with next_cfg: that is what ovs-vsctl waited on.
    assert_eq!(
        s.ok(&["get", "Open_vSwitch", ".", "cur_cfg"]),
        s.ok(&["get", "Open_vSwitch", ".", "next_cfg"])
    );
    assert_eq!(
        s.ok(&["get", "Open_vSwitch", ".", "dpdk_initialized"]),
        "true"
    );
    assert_eq!(
        s.ok(&["get", "Open_vSwitch", ".", "datapath_types"]),
        "[netdev]"
    );

    s.ok(&dpdk_port("br0", "dpdk0", "net_null0"));
    assert_eq!(
        mock.matching("iface_add br0 dpdk0"),
        vec!["iface_add br0 dpdk0 type=dpdk options=dpdk-devargs=net_null0 mtu_request=None ofport=1"]
    );
    assert_eq!(s.ok(&["get", "Interface", "dpdk0", "ofport"]), "1");
    assert_eq!(s.ok(&["get", "Interface", "dpdk0", "admin_state"]), "up");
    assert_eq!(s.ok(&["get", "Interface", "dpdk0", "link_state"]), "up");
    assert_eq!(s.ok(&["get", "Interface", "dpdk0", "mtu"]), "1500");
    assert_eq!(
        s.ok(&["get", "Interface", "dpdk0", "mac_in_use"]),
        "\"02:00:00:00:00:01\""
    );
    assert_eq!(
        s.ok(&["get", "Interface", "dpdk0", "status:driver_name"]),
        "mock"
    );
    assert_eq!(s.ok(&["get", "Interface", "dpdk0", "error"]), "[]");

    let vhost = format!(
        "options:vhost-server-path={}",
        s.dir.join("x.sock").display()
    );
    s.ok(&[
        "add-port",
        "br0",
        "vhu0",
        "--",
        "set",
        "Interface",
        "vhu0",
        "type=dpdkvhostuserclient",
        &vhost,
    ]);
    let adds = mock.matching("iface_add br0 vhu0");
    assert_eq!(adds.len(), 1);
    assert!(
        adds[0].contains("type=dpdkvhostuserclient options=vhost-server-path="),
        "{adds:?}"
    );
    assert_eq!(s.ok(&["get", "Interface", "vhu0", "ofport"]), "2");

    // A port the datapath refuses: ovs-vsctl reports it, the row says why.
    // (ovs-vsctl exits 0 after printing this up to OVS 3.5, 65 from 3.6 on.)
    let o = s.vsctl(&[
        "add-port",
        "br0",
        "bad0",
        "--",
        "set",
        "Interface",
        "bad0",
        "type=dpdk",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 65)), "{stderr}");
    assert!(
        stderr.contains(
            "Error detected while setting up 'bad0': could not open bad0: no such device"
        ),
        "{stderr}"
    );
    assert_eq!(s.ok(&["get", "Interface", "bad0", "ofport"]), "-1");
    assert_eq!(
        s.ok(&["get", "Interface", "bad0", "error"]),
        "\"could not open bad0: no such device\""
    );
    assert_eq!(mock.matching("iface_add_failed").len(), 1);
    // Not retried while its row is unchanged, retried when it changes.
    s.ok(&["set", "Open_vSwitch", ".", "external_ids:x=1"]);
    assert_eq!(mock.matching("iface_add_failed").len(), 1);
    s.ok(&["set", "Interface", "bad0", "options:dpdk-devargs=net_null9"]);
    assert_eq!(mock.matching("iface_add_failed").len(), 2);
    // Everything else kept going.
    assert_eq!(mock.matching("iface_del").len(), 0);

    s.ok(&[
        "add-port",
        "br0",
        "p10",
        "--",
        "set",
        "Interface",
        "p10",
        "ofport_request=10",
    ]);
    assert_eq!(s.ok(&["get", "Interface", "p10", "ofport"]), "10");

    // Changed options and ofport_request: removed and added again.
    s.ok(&["set", "Interface", "dpdk0", "options:n_rxq=2"]);
    assert_eq!(
        mock.matching("iface_del br0 dpdk0"),
        vec!["iface_del br0 dpdk0 ofport=1"]
    );
    assert_eq!(mock.matching("iface_add br0 dpdk0").len(), 2);
    s.ok(&["set", "Interface", "p10", "ofport_request=11"]);
    assert_eq!(s.ok(&["get", "Interface", "p10", "ofport"]), "11");
    s.ok(&["set", "Interface", "vhu0", "mtu_request=9000"]);
    assert!(mock
        .matching("iface_add br0 vhu0")
        .last()
        .unwrap()
        .contains("mtu_request=Some(9000)"));

    // Bridge settings: bridge_set again, interfaces untouched.
    let before = mock.matching("iface_").len();
    s.ok(&["set-controller", "br0", "tcp:127.0.0.1:6653"]);
    assert_eq!(
        mock.matching("bridge_set br0").last().unwrap(),
        "bridge_set br0 fail_mode=None controllers=[\"tcp:127.0.0.1:6653\"]"
    );
    s.ok(&["set-fail-mode", "br0", "secure"]);
    assert_eq!(
        mock.matching("bridge_set br0").last().unwrap(),
        "bridge_set br0 fail_mode=Some(\"secure\") controllers=[\"tcp:127.0.0.1:6653\"]"
    );
    assert_eq!(mock.matching("iface_").len(), before);

    let vhu0_port = s.ok(&["get", "Interface", "vhu0", "ofport"]);
    s.ok(&["del-port", "br0", "vhu0"]);
    assert_eq!(mock.matching("iface_del br0 vhu0").len(), 2);
    assert_eq!(
        mock.matching("iface_del br0 vhu0").last().unwrap(),
        &format!("iface_del br0 vhu0 ofport={vhu0_port}")
    );

    // A bridge of another datapath type is not ours: its interfaces say so.
    let o = s.vsctl(&["add-br", "br1"]);
    assert!(matches!(o.status.code(), Some(0 | 65)));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("datapath_type"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(mock.matching("bridge_set br1").is_empty());
    s.ok(&["set", "bridge", "br1", "datapath_type=netdev"]);
    assert_eq!(mock.matching("bridge_set br1").len(), 1);
    assert_eq!(s.ok(&["get", "Interface", "br1", "ofport"]), "65534");
    assert_eq!(s.ok(&["get", "Interface", "br1", "error"]), "[]");

    // A bridge the datapath refuses: its interfaces carry the error.
    let o = s.vsctl(&netdev_bridge("badbr0"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr
            .contains("Error detected while setting up 'badbr0': bridge badbr0: out of hugepages"),
        "{stderr}"
    );
    assert_eq!(s.ok(&["get", "Interface", "badbr0", "ofport"]), "-1");
    assert!(mock.matching("iface_add badbr0").is_empty());

    // Global settings go to system_config.
    s.ok(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:pmd-cpu-mask=0x3",
        "other_config:dpdk-extra=-n 4",
    ]);
    assert_eq!(
        mock.matching("system_config"),
        vec!["system_config dpdk-extra=-n 4,pmd-cpu-mask=0x3"]
    );

    // del-br: interfaces first, then the bridge.
    s.ok(&["del-br", "br0"]);
    let ev = mock.events();
    let bridge_del = ev.iter().position(|e| e == "bridge_del br0").unwrap();
    for name in ["br0", "dpdk0", "p10"] {
        let del = ev
            .iter()
            .rposition(|e| e.starts_with(&format!("iface_del br0 {name} ")))
            .unwrap_or_else(|| panic!("{name} not removed: {ev:?}"));
        assert!(del < bridge_del, "{ev:?}");
    }
    assert!(mock.matching("bridge_del br1").is_empty());
    h.stop();
}

#[test]
fn vsctl_statistics_written_back_when_changed() {
    let s = Server::start_new("stats");
    let (mock, h) = start(&s);
    s.ok(&[
        netdev_bridge("br0"),
        vec!["--".into()],
        dpdk_port("br0", "dpdk0", "net_null0"),
    ]
    .concat());
    assert_eq!(
        s.ok(&["get", "Interface", "dpdk0", "statistics:rx_packets"]),
        "0"
    );
    mock.rx_packets.store(1234, Ordering::Relaxed);
    assert!(wait_for(Duration::from_secs(3), || {
        s.ok(&["get", "Interface", "dpdk0", "statistics:rx_packets"]) == "1234"
    }));
    mock.link_down.store(true, Ordering::Relaxed);
    assert!(wait_for(Duration::from_secs(3), || {
        s.ok(&["get", "Interface", "dpdk0", "link_state"]) == "down"
    }));

    // Nothing changes: nothing is written (watch with a monitor of our own).
    let (c, rx) = ovsdb::Client::connect(&s.target(), Duration::from_secs(5)).unwrap();
    c.monitor(
        "Open_vSwitch",
        serde_json::json!(1),
        serde_json::json!({"Interface": {"columns": ["statistics", "link_state"]}}),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1000)); // 5 stats periods
    assert!(rx.try_recv().is_err(), "unchanged statistics were written");
    mock.rx_packets.store(1235, Ordering::Relaxed);
    let n = rx.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(n.method, "update");
    assert!(n.params.to_string().contains("1235"), "{}", n.params);
    h.stop();
}

#[test]
fn vsctl_ovsdb_server_restart_reconnects_without_readding() {
    // The reconciler starts before the server: it keeps trying.
    let mut s = Server::create("restart");
    let mock = Arc::new(Mock::default());
    let h = ovsdb::spawn(&s.target(), mock.clone(), opts()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!h.is_connected());
    s.start();
    assert!(wait_for(Duration::from_secs(5), || h.is_connected()));

    s.ok(&netdev_bridge("br0"));
    s.ok(&dpdk_port("br0", "dpdk0", "net_null0"));
    let before = mock.events();
    assert_eq!(before.len(), 3, "{before:?}");

    s.kill();
    assert!(wait_for(Duration::from_secs(5), || !h.is_connected()));
    s.start();
    assert!(wait_for(Duration::from_secs(5), || h.connections() == 2));
    // Ephemeral columns were lost with the server; they are written again.
    assert!(wait_for(Duration::from_secs(5), || {
        s.ok(&["get", "Interface", "dpdk0", "admin_state"]) == "up"
    }));
    assert_eq!(s.ok(&["get", "Interface", "dpdk0", "ofport"]), "1");
    assert_eq!(mock.events(), before, "running ports were touched");

    // Later changes still apply.
    s.ok(&[
        "add-port",
        "br0",
        "vhu0",
        "--",
        "set",
        "Interface",
        "vhu0",
        "type=dpdkvhostuserclient",
    ]);
    assert_eq!(mock.matching("iface_add br0 vhu0").len(), 1);
    assert_eq!(s.ok(&["get", "Interface", "vhu0", "ofport"]), "2");
    s.ok(&["del-br", "br0"]);
    assert_eq!(mock.matching("bridge_del br0").len(), 1);
    h.stop();
}

#[test]
fn spawn_rejects_bad_targets() {
    let mock = Arc::new(Mock::default());
    for bad in ["tcp:localhost", "punix:/x", "/tmp/db.sock"] {
        match ovsdb::spawn(bad, mock.clone(), Options::default()) {
            Err(Error::Target(m)) => assert!(m.contains(bad), "{m}"),
            Err(e) => panic!("{bad}: {e}"),
            Ok(_) => panic!("{bad} accepted"),
        }
    }
}
