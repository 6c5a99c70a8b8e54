//! Guest TSO through the switch (issue 14): two real QEMU guests (TCG, the
//! host's Debian kernel) on `net_vhost` ports opened with `tso=1`, MTU
//! 1500. The guests' virtio-net drivers negotiate TSO and checksum offload,
//! so a TCP stream from one to the other leaves the sender as segments of
//! up to 64 KiB: the switch must see frames larger than the MTU (its
//! offload counter moves) and hand them whole to the other guest, whose
//! kernel accepts them (the data arrives intact: checksums compared).
//!
//! Needs qemu-system-x86, linux-image-amd64, busybox-static; run with the
//! heavy lock: `flock /work/heavy.lock cargo test --test vm_tso`.

mod vm;

use std::time::{Duration, Instant};

use vm::net::{test_eal, NetGuest, Nic, Switch};
use vm::TempDir;

const BOOT: Duration = Duration::from_secs(120);
const CMD: Duration = Duration::from_secs(30);

#[test]
fn guest_tcp_stream_crosses_as_large_segments() {
    let dir = std::env::temp_dir().join(format!("vswitch-vmtso-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _tmp = TempDir(dir.clone());
    let (sa, sb) = (dir.join("a.sock"), dir.join("b.sock"));
    let setup = |ip: &str| format!("ip addr add {ip} dev eth0; ip link set eth0 up");
    let mut a = NetGuest::boot(
        &dir,
        "a",
        &[Nic::new(&sa, "52:54:00:00:0b:01")],
        &setup("10.0.1.1/24"),
    );
    let mut b = NetGuest::boot(
        &dir,
        "b",
        &[Nic::new(&sb, "52:54:00:00:0b:02")],
        &setup("10.0.1.2/24"),
    );
    let mut args = vec!["--eal".to_string(), test_eal("-l 0-1", "tso")];
    for p in [
        format!("net_vhost0,iface={},client=1,tso=1", sa.display()),
        format!("net_vhost1,iface={},client=1,tso=1", sb.display()),
    ] {
        args.extend(["--port".to_string(), p]);
    }
    for f in [
        "priority=10,in_port=0,actions=output:1",
        "priority=10,in_port=1,actions=output:0",
    ] {
        args.extend(["--flow".to_string(), f.to_string()]);
    }
    args.extend(["--stats-interval".into(), "0".into()]);
    let sw = Switch::start(&dir, &args);
    a.wait_ready(BOOT);
    b.wait_ready(BOOT);
    sw.wait_link(0, true, Duration::from_secs(10));
    sw.wait_link(1, true, Duration::from_secs(10));
    a.must("ping -c 2 -W 5 10.0.1.2", CMD);

    // 4 MiB of random bytes from a to b over TCP, checksums compared.
    b.must("sleep 120 | nc -l -p 5001 > /tmp/got &", CMD);
    let sum_a = a.must(
        "dd if=/dev/urandom of=/tmp/file bs=64k count=64 2>/dev/null; md5sum /tmp/file",
        CMD,
    );
    std::thread::sleep(Duration::from_millis(300));
    a.must("nc 10.0.1.2 5001 < /tmp/file", Duration::from_secs(120));
    let t = Instant::now();
    let sum_b = loop {
        let s = b.must("md5sum /tmp/got", CMD);
        if s.split_whitespace().next() == sum_a.split_whitespace().next()
            || t.elapsed() > Duration::from_secs(30)
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sum_b.split_whitespace().next(),
        sum_a.split_whitespace().next(),
        "the file b received differs"
    );
    // The switch saw segments larger than the MTU from guest a, and cut
    // none of them for guest b (whose driver takes TSO).
    let pa = sw.port(0);
    let large = pa["offload"]["rx_large_packets"].as_u64().unwrap_or(0);
    assert!(large > 0, "no large segment seen on guest a's port: {pa}");
    let pb = sw.port(1);
    assert_eq!(pb["offload"]["tx_segments"], 0, "{pb}");
    assert_eq!(pb["offload"]["tx_offload_drops"], 0, "{pb}");
    // The large segments crossed the switch's own ring code (dpdk::vring:
    // large mbufs in, mergeable buffers out) unless the library was asked
    // for.
    if vm::net::own_rings_expected() {
        assert!(sw.own_rings() >= 4, "own rings: {}", sw.log_text());
    }
}
