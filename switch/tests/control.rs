//! The control socket: requests over a real unix socket against a switch
//! that is switching frames.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use switch::control::*;
use switch::frame::VecFrame;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::*;
use switch::verdict::Verdict;

fn sock(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "vswitch-test-{}-{name}/ctl.sock",
        std::process::id()
    ))
}

/// Stand-in for the DPDK port layer: records ports and registers them.
struct FakePorts {
    sw: Arc<Switch>,
    ports: Mutex<Vec<PortInfo>>,
}

impl PortBackend for FakePorts {
    fn add(&self, spec: &PortSpec) -> Result<u16, String> {
        let p = spec
            .port
            .unwrap_or(self.ports.lock().unwrap().len() as u16 + 1);
        self.sw.port_add(p)?;
        self.ports.lock().unwrap().push(PortInfo {
            port: p,
            name: spec.name.clone(),
            devargs: spec.devargs.clone(),
            link_up: true,
            ..Default::default()
        });
        Ok(p)
    }
    fn del(&self, port: u16) -> Result<(), String> {
        self.sw.port_del(port)?;
        self.ports.lock().unwrap().retain(|p| p.port != port);
        Ok(())
    }
    fn show(&self) -> Vec<PortInfo> {
        self.ports.lock().unwrap().clone()
    }
}

#[test]
fn flows_ports_fdb_stats_over_the_socket() {
    let sw = Switch::new(SwitchConfig {
        workers: 2,
        cache_entries: 1024,
        ..Default::default()
    });
    let backend = Arc::new(FakePorts {
        sw: Arc::clone(&sw),
        ports: Mutex::new(Vec::new()),
    });
    let path = sock("all");
    let srv = ControlServer::start(&path, Arc::clone(&sw), backend).unwrap();
    let req = |r: Request| request(srv.path(), &r);

    for (name, p) in [("vm1", 1), ("vm2", 2), ("uplink", 3)] {
        let r = req(Request::PortsAdd(PortSpec {
            name: name.into(),
            devargs: format!("net_null{p}"),
            port: Some(p),
        }))
        .unwrap();
        assert_eq!(r, Reply::PortAdded { port: p });
    }
    let Reply::FlowAdded { id } = req(Request::FlowsAdd {
        rule: "priority=100,tcp,tp_dst=80,actions=output:3".into(),
    })
    .unwrap() else {
        panic!()
    };
    req(Request::FlowsAdd {
        rule: "priority=0,actions=NORMAL".into(),
    })
    .unwrap();
    let e = req(Request::FlowsAdd {
        rule: "priority=1,tp_dst=80,actions=output:3".into(),
    })
    .unwrap_err();
    assert!(e.contains("needs tcp"), "{e}");

    // traffic through worker 0 and 1
    let mut dp0 = sw.datapath(0);
    let mut dp1 = sw.datapath(1);
    let mut fs = [VecFrame::new(&tcp4(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        1,
        80,
        0,
        64,
    ))];
    let mut vs = [Verdict::default()];
    dp0.process_burst(1, &mut fs, &mut vs, sw.now_ms());
    assert_eq!(vs[0], Verdict::Output(1 << 3));
    let mut fs = [VecFrame::new(&l2_frame(MAC_B, MAC_A))];
    dp1.process_burst(1, &mut fs, &mut vs, sw.now_ms());
    assert_eq!(vs[0], Verdict::Output((1 << 2) | (1 << 3)));

    let Reply::Flows { flows } = req(Request::FlowsDump).unwrap() else {
        panic!()
    };
    assert_eq!(flows.len(), 2);
    assert_eq!((flows[0].id, flows[0].packets, flows[0].bytes), (id, 1, 54));
    assert_eq!(flows[0].rule, "priority=100,tcp,tp_dst=80,actions=output:3");
    assert_eq!(flows[1].packets, 1);

    let Reply::Fdb { entries } = req(Request::FdbShow).unwrap() else {
        panic!()
    };
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.mac, e.port, e.vlan))
            .collect::<Vec<_>>(),
        vec![(MAC_A, 1, 0)]
    );

    let Reply::Stats(s) = req(Request::Stats).unwrap() else {
        panic!()
    };
    assert_eq!(s.per_core.len(), 2);
    assert_eq!(s.total.counters.rx_packets, 2);
    assert_eq!(s.per_core[0].counters.rx_packets, 1);
    assert_eq!(s.total.counters.tx_packets, 3);
    assert_eq!(s.rules, 2);
    assert_eq!(s.total.drops["no_match"], 0);
    assert_eq!(s.fdb_entries, 1);

    let Reply::Ports { ports } = req(Request::PortsShow).unwrap() else {
        panic!()
    };
    assert_eq!(ports.len(), 3);
    assert_eq!(
        req(Request::PortsDel { port: 2 }).unwrap(),
        Reply::PortDeleted { port: 2 }
    );
    assert!(req(Request::PortsDel { port: 2 })
        .unwrap_err()
        .contains("no port 2"));
    assert_eq!(sw.ports_up(), (1 << 1) | (1 << 3));

    assert_eq!(
        req(Request::FlowsDel {
            filter: "tcp".into(),
            strict: false
        })
        .unwrap(),
        Reply::FlowsDeleted { count: 1 }
    );
    assert!(req(Request::FlowsDel {
        filter: "bogus=1".into(),
        strict: false
    })
    .is_err());
    assert_eq!(
        req(Request::FlowsDel {
            filter: String::new(),
            strict: false
        })
        .unwrap(),
        Reply::FlowsDeleted { count: 1 }
    );
    drop(srv);
    assert!(!path.exists(), "socket removed on drop");
}

#[test]
fn bad_requests_get_errors_and_the_connection_survives() {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 64,
        ..Default::default()
    });
    let srv = ControlServer::start(&sock("bad"), sw, Arc::new(NoPorts)).unwrap();
    let mut c = UnixStream::connect(srv.path()).unwrap();
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut ask = |line: &str| {
        // The server may close after an oversized line: a write error is fine,
        // the reply must still be readable.
        let _ = c
            .write_all(line.as_bytes())
            .and_then(|()| c.write_all(b"\n"));
        let mut s = String::new();
        rd.read_line(&mut s).unwrap();
        serde_json::from_str::<Reply>(&s).unwrap()
    };
    assert!(matches!(ask("not json"), Reply::Error { error } if error.contains("bad request")));
    assert!(matches!(ask(r#"{"cmd":"reboot"}"#), Reply::Error { .. }));
    assert!(
        matches!(ask(r#"{"cmd":"ports_add","name":"x","devargs":"y"}"#), Reply::Error { error } if error.contains("no port backend"))
    );
    assert!(matches!(ask(r#"{"cmd":"flows_dump"}"#), Reply::Flows { flows } if flows.is_empty()));
    let big = format!(
        r#"{{"cmd":"flows_add","rule":"{}"}}"#,
        "x".repeat(MAX_LINE + 10)
    );
    assert!(matches!(ask(&big), Reply::Error { error } if error.contains("longer than")));
}

#[test]
fn second_server_on_a_live_socket_is_refused_and_expiry_runs() {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 64,
        ..Default::default()
    });
    let path = sock("dup");
    let srv = ControlServer::start(&path, Arc::clone(&sw), Arc::new(NoPorts)).unwrap();
    let e = ControlServer::start(&path, Arc::clone(&sw), Arc::new(NoPorts))
        .err()
        .unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    // a 1-second hard timeout is removed by the server's housekeeping timer
    request(
        srv.path(),
        &Request::FlowsAdd {
            rule: "hard_timeout=1,actions=drop".into(),
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    loop {
        let Reply::Flows { flows } = request(srv.path(), &Request::FlowsDump).unwrap() else {
            panic!()
        };
        if flows.is_empty() {
            break;
        }
        assert!(t.elapsed().as_secs() < 5, "rule not expired");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(t.elapsed().as_millis() >= 800);
}

#[test]
fn tables_cookies_and_groups_over_the_socket() {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 1024,
        ..Default::default()
    });
    for p in 1..=3 {
        sw.port_add(p).unwrap();
    }
    let path = sock("groups");
    let srv = ControlServer::start(&path, Arc::clone(&sw), Arc::new(NoPorts)).unwrap();
    let req = |r: Request| request(srv.path(), &r);
    let e = req(Request::FlowsAdd {
        rule: "table=1,actions=group:4".into(),
    })
    .unwrap_err();
    assert!(e.contains("group 4 does not exist"), "{e}");
    assert_eq!(
        req(Request::GroupsAdd {
            group: "group_id=4,type=all,bucket=output:2,bucket=output:3".into()
        })
        .unwrap(),
        Reply::GroupDone { id: 4 }
    );
    for rule in [
        "cookie=0x7,in_port=1,actions=goto_table:1",
        "table=1,actions=group:4",
    ] {
        req(Request::FlowsAdd { rule: rule.into() }).unwrap();
    }
    let mut dp = sw.datapath(0);
    let mut fs = [VecFrame::new(&l2_frame(MAC_B, MAC_A))];
    let mut vs = [Verdict::default()];
    dp.process_burst(1, &mut fs, &mut vs, sw.now_ms());
    assert_eq!(vs[0], Verdict::Output((1 << 2) | (1 << 3)));
    let Reply::Flows { flows } = req(Request::FlowsDump).unwrap() else {
        panic!()
    };
    let rules: Vec<_> = flows.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "priority=32768,cookie=0x7,in_port=1,actions=goto_table:1",
            "priority=32768,table=1,actions=group:4"
        ]
    );
    assert!(flows.iter().all(|f| f.packets == 1));
    let Reply::Groups { groups } = req(Request::GroupsDump).unwrap() else {
        panic!()
    };
    assert_eq!(
        groups[0].group,
        "group_id=4,type=all,bucket=actions=output:2,bucket=actions=output:3"
    );
    assert_eq!((groups[0].stats.packets, groups[0].stats.ref_count), (1, 1));
    // Filters with table and cookie masks delete across tables.
    assert_eq!(
        req(Request::FlowsDel {
            filter: "cookie=0x7/0xff".into(),
            strict: false
        })
        .unwrap(),
        Reply::FlowsDeleted { count: 1 }
    );
    assert_eq!(
        req(Request::GroupsDel { id: Some(4) }).unwrap(),
        Reply::GroupsDeleted { flows: 1 }
    );
    let Reply::Flows { flows } = req(Request::FlowsDump).unwrap() else {
        panic!()
    };
    assert!(flows.is_empty());
}
