//! Tunnel ports against a real peer: a network namespace is the far host,
//! with a Linux kernel `vxlan` device on a veth whose other end is the
//! switch's underlay port (`net_af_packet`); a second namespace sits behind
//! the switch on another af_packet port. Ping and TCP cross the overlay in
//! both directions, tshark decodes the outer packets as VXLAN with the
//! right VNI, and bad outer packets (wrong VNI, wrong UDP port, a clear I
//! flag, truncated) are dropped and counted on the tunnel port.

mod netns;

use std::process::{Command, Stdio};
use std::time::Duration;

use netns::*;

/// Sends one UDP datagram from namespace `ns` to the switch's local IP.
fn udp_send(ns: &str, port: u16, payload_hex: &str) {
    must(&format!(
        "ip netns exec {ns} python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.sendto(bytes.fromhex('{payload_hex}'), ('192.168.77.1', {port}))\""
    ));
}

#[test]
fn kernel_vxlan_peer_pings_and_talks_tcp_over_the_tunnel() {
    let id = std::process::id() % 100000;
    let (na, nb) = (format!("vta{id}"), format!("vtb{id}"));
    let (ha, hb) = (format!("vtha{id}"), format!("vthb{id}"));
    let ns = Netns {
        names: vec![na.clone(), nb.clone()],
        links: vec![ha.clone(), hb.clone()],
    };
    for (n, h) in [(&na, &ha), (&nb, &hb)] {
        must(&format!("ip netns add {n}"));
        must(&format!(
            "ip link add {h} type veth peer name eth0 netns {n}"
        ));
        must(&format!("ip link set {h} up"));
        must(&format!("ip -n {n} link set eth0 up"));
        must(&format!("ip -n {n} link set lo up"));
    }
    // Host A behind the switch, on the overlay (room for the 50 bytes of
    // encapsulation on the 1500-byte underlay).
    must(&format!("ip -n {na} addr add 10.200.0.1/24 dev eth0"));
    must(&format!("ip -n {na} link set eth0 mtu 1450"));
    // Host B: the far VTEP, with the kernel's VXLAN device (RFC 7348).
    must(&format!("ip -n {nb} addr add 192.168.77.2/24 dev eth0"));
    must(&format!(
        "ip -n {nb} link add vx0 type vxlan id 42 remote 192.168.77.1 local 192.168.77.2 dstport 4789 dev eth0"
    ));
    must(&format!("ip -n {nb} addr add 10.200.0.2/24 dev vx0"));
    must(&format!("ip -n {nb} link set vx0 up"));
    // Checksums in software: a packet socket sees a frame with checksum
    // offload before the checksum is filled in.
    for (n, dev) in [(&na, "eth0"), (&nb, "eth0"), (&nb, "vx0")] {
        must(&format!("ip netns exec {n} ethtool -K {dev} tx off"));
    }

    let r = start(
        "vx",
        &[
            format!("net_af_packet0,iface={ha}"),
            format!("net_af_packet1,iface={hb}"),
            "vx0,type=vxlan,local_ip=192.168.77.1,remote_ip=192.168.77.2,key=42,underlay=1".into(),
        ],
    );
    for rule in [
        "priority=10,in_port=0,actions=output:2",
        "priority=10,in_port=2,tun_id=42,tun_src=192.168.77.2,actions=output:0",
    ] {
        let (ok, _, err) = r.ctl(&["flows", "add", rule]);
        assert!(ok, "{rule}: {err}");
    }
    // Capture the underlay while the traffic flows.
    let cap = std::env::temp_dir().join(format!("vswitch-tun-{id}.pcap"));
    let _ = std::fs::remove_file(&cap);
    let mut tshark = Command::new("ip")
        .args(["netns", "exec", &nb, "tshark", "-q", "-i", "eth0", "-w"])
        .arg(&cap)
        .args(["-f", "udp port 4789"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("tshark capturing", 15, || cap.exists());

    // Ping A -> B (the first round also resolves B's MAC on the underlay).
    until("ping A -> B over VXLAN", 20, || {
        sh(&format!(
            "ip netns exec {na} ping -c 2 -i 0.2 -W 1 10.200.0.2"
        ))
        .status
        .success()
    });
    must(&format!(
        "ip netns exec {nb} ping -c 3 -i 0.2 -W 1 10.200.0.1"
    ));
    tcp_echo(&nb, &na, "10.200.0.2", 5001);
    tcp_echo(&na, &nb, "10.200.0.1", 5002);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tshark.id() as i32, libc::SIGINT) };
    let _ = tshark.wait();
    // `ip netns exec` passes the signal on; give tshark time to finish.
    std::thread::sleep(Duration::from_millis(500));

    let t = r.port(2);
    assert!(t["rx_packets"].as_u64().unwrap() >= 20, "decapsulated: {t}");
    assert!(t["tx_packets"].as_u64().unwrap() >= 20, "encapsulated: {t}");

    // tshark decodes our outer packets (and the kernel's) as VXLAN, VNI 42,
    // without malformed-packet expert info.
    let o = Command::new("tshark")
        .args(["-r"])
        .arg(&cap)
        .args(["-V", "-Y", "ip.src == 192.168.77.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Virtual eXtensible Local Area Network"),
        "not decoded as VXLAN: {}",
        &text[..text.len().min(3000)]
    );
    assert!(text.contains("VXLAN Network Identifier (VNI): 42"), "VNI");
    assert!(text.contains("Don't fragment: Set"), "DF");
    assert!(text.contains("Time to Live: 64"), "TTL");
    assert!(!text.contains("Malformed"), "malformed: {text}");
    let n = text
        .matches("Virtual eXtensible Local Area Network")
        .count();
    assert!(n >= 10, "only {n} of our packets captured");
    let _ = std::fs::remove_file(&cap);

    // Bad outer packets from the far host: counted and dropped.
    let before = r.port(2);
    let drops = |p: &serde_json::Value, k: &str| p["drops"][k].as_u64().unwrap_or(0);
    // VNI 43 on a key=42 port.
    udp_send(&nb, 4789, "08000000 00002b00 ffffffffffff020000000001 0800");
    // To UDP port 4790.
    udp_send(&nb, 4790, "08000000 00002a00 ffffffffffff020000000001 0800");
    // I flag clear.
    udp_send(&nb, 4789, "00000000 00002a00 ffffffffffff020000000001 0800");
    // Shorter than the VXLAN header.
    udp_send(&nb, 4789, "0800");
    // A VXLAN header and half an Ethernet header.
    udp_send(&nb, 4789, "08000000 00002a00 ffffff");
    until("bad packets counted", 10, || {
        let p = r.port(2);
        drops(&p, "bad_vni") > drops(&before, "bad_vni")
            && drops(&p, "bad_port") > drops(&before, "bad_port")
            && drops(&p, "bad_header") > drops(&before, "bad_header")
            && drops(&p, "truncated") >= drops(&before, "truncated") + 2
    });
    // The tunnel still works.
    must(&format!(
        "ip netns exec {na} ping -c 2 -i 0.2 -W 1 10.200.0.2"
    ));
    let after = r.port(2);
    assert!(after["rx_dropped"].as_u64().unwrap() >= 5, "{after}");
    drop(r);
    drop(ns);
}
