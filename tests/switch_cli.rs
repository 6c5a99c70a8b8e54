//! `vswitch flows|fdb|stats` against a control server running in this test
//! process, through the real binary.

mod netns;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use netns::ctl as vswitch;

use switch::control::{ControlServer, NoPorts};
use switch::frame::VecFrame;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::*;
use switch::verdict::Verdict;

#[test]
fn flows_fdb_stats_cli() {
    let sock = PathBuf::from(format!(
        "/tmp/vswitch-cli-test-{}/ctl.sock",
        std::process::id()
    ));
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 1024,
        ..Default::default()
    });
    for p in [1, 2, 3] {
        sw.port_add(p).unwrap();
    }
    let _srv = ControlServer::start(&sock, Arc::clone(&sw), Arc::new(NoPorts)).unwrap();

    let (ok, out, _) = vswitch(
        &sock,
        &[
            "flows",
            "add",
            "priority=100,in_port=1,ip,nw_dst=10.0.0.0/8,tcp,tp_dst=80,actions=output:2",
        ],
    );
    assert!(ok);
    assert_eq!(out.trim(), "added flow 1");
    let (ok, _, err) = vswitch(
        &sock,
        &["flows", "add", "in_port=1,tp_dst=80,actions=output:2"],
    );
    assert!(!ok);
    assert!(err.contains("`tp_dst` needs tcp"), "{err}");
    assert!(vswitch(&sock, &["flows", "add", "priority=0,actions=NORMAL"]).0);

    let mut dp = sw.datapath(0);
    let mut fs = [VecFrame::new(&tcp4(
        [1, 1, 1, 1],
        [10, 0, 0, 2],
        5,
        80,
        2,
        64,
    ))];
    let mut vs = [Verdict::default()];
    dp.process_burst(1, &mut fs, &mut vs, sw.now_ms());
    assert_eq!(vs[0], Verdict::Output(1 << 2));

    let (ok, out, _) = vswitch(&sock, &["flows", "dump"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("n_packets=1, n_bytes=54"), "{out}");
    assert!(
        lines[0]
            .ends_with("priority=100,tcp,in_port=1,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:2"),
        "{out}"
    );

    let (ok, out, _) = vswitch(&sock, &["flows", "dump", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "flows");
    assert_eq!(v["flows"][0]["packets"], 1);

    // learn a MAC through NORMAL, then show it
    let mut fs = [VecFrame::new(&l2_frame(MAC_B, MAC_A))];
    dp.process_burst(3, &mut fs, &mut vs, sw.now_ms());
    let (ok, out, _) = vswitch(&sock, &["fdb", "show"]);
    assert!(ok);
    assert!(out.contains("    3     0  02:00:00:00:00:0a"), "{out}");
    let (_, out, _) = vswitch(&sock, &["fdb", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entries"][0]["port"], 3);

    let (ok, out, _) = vswitch(&sock, &["stats"]);
    assert!(ok);
    assert!(out.contains("no_match"), "{out}");
    let (_, out, _) = vswitch(&sock, &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"]["counters"]["rx_packets"], 2);
    assert_eq!(v["rules"], 2);

    let (ok, out, _) = vswitch(&sock, &["flows", "del", "tcp"]);
    assert!(ok);
    assert_eq!(out.trim(), "deleted 1 flow(s)");
    let (ok, out, _) = vswitch(&sock, &["flows", "del", "--strict", "priority=0"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "deleted 1 flow(s)");
}

#[test]
fn cli_without_a_switch_fails_clearly() {
    let (ok, _, err) = vswitch(Path::new("/tmp/vswitch-no-such-switch.sock"), &["stats"]);
    assert!(!ok);
    assert!(err.contains("is `vswitch run` running?"), "{err}");
}
