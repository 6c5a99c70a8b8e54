//! The private OVS-DPDK instance of `perf::ovs` against the real
//! `ovs-vswitchd-dpdk`: it starts, forwards the pcap to the sink under the
//! installed rules, reports PMD counters, explains a failed start, and
//! leaves nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use perf::{frames, ovs, rules};

fn pcap(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("perf-ovs-test-{tag}-{}.pcap", std::process::id()));
    frames::write_flows_pcap(&p, 16, 60).expect("write pcap");
    p
}

fn config(tag: &str, source: String) -> ovs::Config {
    ovs::Config {
        tag: format!("test-{tag}-{}", std::process::id()),
        pmd_core: 1,
        main_core: 0,
        socket_mem_mb: 256,
        source_devargs: source,
        sink_devargs: "net_null0,no-rx=1".into(),
    }
}

#[test]
fn ovs_forwards_the_pcap_under_the_rules_and_cleans_up() {
    let p = pcap("fwd");
    let cfg = config(
        "fwd",
        format!("net_pcap0,rx_pcap={},infinite_rx=1", p.display()),
    );
    let dir = std::env::temp_dir().join(format!("perf-ovs-{}", cfg.tag));
    {
        let o = ovs::Ovs::start(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert!(dir.join("conf.db").exists());
        // fail_mode=secure and no rules: nothing reaches the sink.
        let before = o.tx_packets(ovs::OF_OUT).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            o.tx_packets(ovs::OF_OUT).unwrap(),
            before,
            "no rule, no forwarding"
        );

        o.replace_flows(&rules::rule_set(100, rules::OVS_PORTS).unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        o.pmd_stats_clear().unwrap();
        let a = o.tx_packets(ovs::OF_OUT).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let b = o.tx_packets(ovs::OF_OUT).unwrap();
        assert!(b > a + 100_000, "OVS forwards to the sink: {a} -> {b}");
        let s = o.pmd_stats().unwrap();
        assert!(s.packets > 100_000, "{s:?}");
        assert!(s.processing_cycles_per_packet.unwrap() > 0.0, "{s:?}");

        // The drop-everything rule set stops forwarding again.
        // (The revalidator drops the old megaflows shortly after the change.)
        o.replace_flows("priority=1,actions=drop\n").unwrap();
        let start = std::time::Instant::now();
        let mut last = o.tx_packets(ovs::OF_OUT).unwrap();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = o.tx_packets(ovs::OF_OUT).unwrap();
            if now == last {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "still forwarding 10 s after the drop rule replaced the table"
            );
            last = now;
        }
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
    let _ = std::fs::remove_file(p);
}

#[test]
fn a_port_ovs_cannot_open_is_reported_with_the_log() {
    let cfg = config(
        "bad",
        "net_pcap0,rx_pcap=/nonexistent/perf-ovs.pcap,infinite_rx=1".into(),
    );
    let dir = std::env::temp_dir().join(format!("perf-ovs-{}", cfg.tag));
    let err = match ovs::Ovs::start(&cfg) {
        Ok(_) => panic!("OVS opened a pcap port on a missing file"),
        Err(e) => e,
    };
    assert!(err.contains("port src"), "{err}");
    assert!(err.contains("tail of ovs-vswitchd.log"), "{err}");
    assert!(err.contains("/nonexistent/perf-ovs.pcap"), "{err}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
