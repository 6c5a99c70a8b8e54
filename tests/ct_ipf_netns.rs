//! IP fragments through the `ct` firewall with real kernel endpoints
//! (`vswitch run`, network namespaces on veth pairs). The namespaces' own
//! ports are `net_pcap` on the host ends (`rx_iface_in`): an af_packet
//! port's fanout group defragments, so fragments would never reach the
//! switch as fragments.
//!
//! ```text
//!  two lcores:  ns A eth0 10.86.0.1 ─ port 0 (lcore 1) ┐
//!               ns A eth1 (raw frames only) ─ port 1 (lcore 2) ├─ ct(zone=9) ─ port 2 ─ ns B 10.86.0.2
//!    ping -s 3000 and a 4000-byte UDP echo A → B (fragments both ways, reassembled at
//!    each ct, the connection committed from A's datagram, B's replies +est);
//!    one datagram's fragments sent by A half on eth0, half on eth1 (two lcores)
//!    reach B whole; a lone fragment is freed 15 s later with no traffic (expired).
//!
//!  VXLAN:       ns A 10.201.0.1 ─ port 0 ─ ct(zone=4) ─ vx0 (port 2, VNI 42) ─ underlay port 1 ─
//!               ns B eth0 192.168.78.2, kernel vxlan vx0 10.201.0.2
//!    ping -s 3000 both ways: every fragment leaves encapsulated.
//! ```

mod netns;

use std::sync::Mutex;
use std::time::Duration;

use netns::*;

/// One switch at a time (the VXLAN test's underlay is af_packet: DPDK
/// 22.11 names its fanout group `pid ^ ifindex`).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn id() -> u32 {
    std::process::id() % 100000
}

/// `vswitch ct ipf status`'s value on the line starting with `name`.
fn ipf(r: &Running, name: &str) -> u64 {
    let out = r.must(&["ct", "ipf", "status"]);
    out.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim_start_matches(':').trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in:\n{out}"))
}

/// A net_pcap port on host link `link`: frames the kernel sends in, raw.
fn pcap_port(n: u16, link: &str) -> String {
    format!("net_pcap{n},rx_iface_in={link},tx_iface={link}")
}

/// In namespace `ns`: a UDP server on `ip:port` that echoes one datagram
/// and prints its length (runs in the background; its output: `take`).
fn udp_echo_server(ns: &str, ip: &str, port: u16, timeout: u32) -> std::process::Child {
    std::process::Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg(format!(
            "import socket,sys\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.bind(('{ip}',{port}))\n\
             s.settimeout({timeout})\n\
             try:\n d,a=s.recvfrom(65535)\n s.sendto(d,a)\n print('got',len(d),flush=True)\n\
             except Exception as e:\n print('none',e,flush=True)\n"
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn take(c: std::process::Child) -> String {
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// From `ns`: a UDP datagram of `len` bytes to `dst:port`, echoed back
/// intact within 5 s.
fn udp_echo(ns: &str, dst: &str, port: u16, len: usize) -> bool {
    sh(&format!(
        "ip netns exec {ns} python3 -c \"import socket,os\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.settimeout(5)\n\
         d=os.urandom({len})\n\
         s.sendto(d,('{dst}',{port}))\n\
         assert s.recv(65535)==d\""
    ))
    .status
    .success()
}

/// From `ns`, as raw Ethernet frames: a UDP datagram `src:7000 →
/// dst:port` of 3000 bytes in three IPv4 fragments, fragment `k` sent on
/// `links[k]` (`None`: not sent).
#[allow(clippy::too_many_arguments)]
fn raw_fragments(
    ns: &str,
    links: [Option<&str>; 3],
    src_mac: &str,
    dst_mac: &str,
    src: &str,
    dst: &str,
    port: u16,
    ip_id: u16,
) {
    let links = links.map(|l| l.map_or("None".to_string(), |l| format!("'{l}'")));
    must(&format!(
        "ip netns exec {ns} python3 -c \"
import socket, struct
def csum(b):
    if len(b) % 2: b += bytes(1)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton('{src}'), socket.inet_aton('{dst}')
data = bytes((i * 7 + 3) & 255 for i in range(3000))
u = struct.pack('!HHHH', 7000, {port}, 8 + len(data), 0) + data
c = csum(src + dst + struct.pack('!BBH', 0, 17, len(u)) + u) or 0xffff
u = u[:6] + struct.pack('!H', c) + u[8:]
eth = bytes.fromhex('{dst_mac}'.replace(':', '')) + bytes.fromhex('{src_mac}'.replace(':', '')) + b'\\x08\\x00'
links = [{l0}, {l1}, {l2}]
for k, off in enumerate((0, 1480, 2960)):
    piece = u[off:off + 1480]
    more = 0x2000 if off + len(piece) < len(u) else 0
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(piece), {ip_id}, more | off // 8, 64, 17, 0, src, dst)
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    if links[k] is None: continue
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((links[k], 0))
    s.send(eth + h + piece)
\"",
        l0 = links[0],
        l1 = links[1],
        l2 = links[2],
    ));
}

const FIREWALL: &str = "
table=0,priority=100,ip,actions=ct(table=1,zone=9)
table=0,priority=0,actions=drop
table=1,priority=10,ct_state=+trk+new,ip,in_port=0,actions=ct(commit,zone=9),output:2
table=1,priority=10,ct_state=+trk+new,ip,in_port=1,actions=ct(commit,zone=9),output:2
table=1,priority=10,ct_state=+trk+est,ip,in_port=0,actions=output:2
table=1,priority=10,ct_state=+trk+est,ip,in_port=1,actions=output:2
table=1,priority=10,ct_state=+trk+est,ip,in_port=2,actions=output:0
table=1,priority=0,actions=drop
";

#[test]
fn fragmented_ping_and_udp_cross_the_ct_firewall_on_two_lcores() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let id = id();
    let (a, b) = (format!("ifa{id}"), format!("ifb{id}"));
    let (ha, ha1, hb) = (
        format!("ifha{id}"),
        format!("ifhc{id}"),
        format!("ifhb{id}"),
    );
    let (mac_a, mac_b) = ("02:00:00:86:00:01", "02:00:00:86:00:02");
    let mut ns = Netns::default();
    ns.host(&a, &ha, mac_a, "10.86.0.1/24");
    ns.host(&b, &hb, mac_b, "10.86.0.2/24");
    // A's second link, for raw frames only (no address).
    ns.veth(&ha1, "eth1", &a);
    must(&format!("ip -n {a} link set eth1 up"));
    must(&format!(
        "ip -n {a} neigh add 10.86.0.2 lladdr {mac_b} dev eth0"
    ));
    must(&format!(
        "ip -n {b} neigh add 10.86.0.1 lladdr {mac_a} dev eth0"
    ));
    // Ports 0 and 1 on different forwarding lcores (rx queues are handed
    // out round robin), port 2 with port 0.
    let r = Start {
        lcores: "0@0,1@1,2@1",
        ..Start::new("ipf2")
    }
    .ports(&[pcap_port(0, &ha), pcap_port(1, &ha1), pcap_port(2, &hb)])
    .run();
    r.add_flows(FIREWALL);

    // ping -s 3000: three fragments each way, tracked as one datagram.
    until("ping -s 3000 A -> B through the firewall", 30, || {
        sh(&format!(
            "ip netns exec {a} ping -c 2 -i 0.3 -W 1 -s 3000 10.86.0.2"
        ))
        .status
        .success()
    });
    // A UDP datagram of 4000 bytes, echoed.
    let srv = udp_echo_server(&b, "10.86.0.2", 9000, 10);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        udp_echo(&a, "10.86.0.2", 9000, 4000),
        "4000-byte UDP echo A -> B"
    );
    assert_eq!(take(srv), "got 4000");
    // B cannot start anything: its fragments are +new at table 1 from
    // port 2, and dropped.
    assert!(
        !sh(&format!(
            "ip netns exec {b} ping -c 1 -W 1 -s 3000 10.86.0.1"
        ))
        .status
        .success(),
        "B pinged A through the firewall"
    );

    // One datagram's fragments on two ports, i.e. two lcores: B gets it.
    let srv = udp_echo_server(&b, "10.86.0.2", 9001, 8);
    std::thread::sleep(Duration::from_millis(500));
    raw_fragments(
        &a,
        [Some("eth0"), Some("eth1"), Some("eth0")],
        mac_a,
        mac_b,
        "10.86.0.1",
        "10.86.0.2",
        9001,
        0x4242,
    );
    let got = take(srv);
    assert_eq!(
        got,
        "got 3000",
        "the datagram split over two lcores:\n{}\n{}",
        r.must(&["ct", "ipf", "status"]),
        r.must(&["ports", "show"])
    );
    until("nothing held", 10, || ipf(&r, "num frag") == 0);
    assert!(ipf(&r, "v4 frags completed") >= 12, "completed");

    // A lone fragment: held, then freed 15 s later while no traffic flows.
    let expired = ipf(&r, "v4 frags expired");
    raw_fragments(
        &a,
        [Some("eth1"), None, None],
        mac_a,
        mac_b,
        "10.86.0.1",
        "10.86.0.2",
        9002,
        0x4343,
    );
    until("the lone fragment held", 10, || ipf(&r, "num frag") == 1);
    until("the lone fragment expired without traffic", 25, || {
        ipf(&r, "num frag") == 0
    });
    assert_eq!(ipf(&r, "v4 frags expired"), expired + 1);
    drop(r);
    drop(ns);
}

#[test]
fn fragments_reach_a_kernel_vxlan_peer_through_the_ct_firewall() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let id = id();
    let (na, nb) = (format!("ixa{id}"), format!("ixb{id}"));
    let (ha, hb) = (format!("ixha{id}"), format!("ixhb{id}"));
    let (mac_a, mac_vx) = ("02:00:00:87:00:01", "02:00:00:87:00:02");
    let mut ns = Netns::default();
    // Host A behind the switch, on the overlay (room for the 50 bytes of
    // encapsulation on the 1500-byte underlay).
    ns.host(&na, &ha, mac_a, "10.201.0.1/24");
    must(&format!("ip -n {na} link set eth0 mtu 1450"));
    // Host B: the far VTEP, with the kernel's VXLAN device (RFC 7348).
    ns.host(&nb, &hb, "02:00:00:87:00:03", "192.168.78.2/24");
    must(&format!(
        "ip -n {nb} link add vx0 type vxlan id 42 remote 192.168.78.1 local 192.168.78.2 dstport 4789 dev eth0"
    ));
    must(&format!("ip -n {nb} link set vx0 address {mac_vx}"));
    must(&format!("ip -n {nb} addr add 10.201.0.2/24 dev vx0"));
    must(&format!("ip -n {nb} link set vx0 up"));
    must(&format!("ip netns exec {nb} ethtool -K vx0 tx off"));
    must(&format!(
        "ip -n {na} neigh add 10.201.0.2 lladdr {mac_vx} dev eth0"
    ));
    must(&format!(
        "ip -n {nb} neigh add 10.201.0.1 lladdr {mac_a} dev vx0"
    ));
    let r = start(
        "ipfvx",
        &[
            pcap_port(0, &ha),
            format!("net_af_packet1,iface={hb}"),
            "vx0,type=vxlan,local_ip=192.168.78.1,remote_ip=192.168.78.2,key=42,underlay=1".into(),
        ],
    );
    r.add_flows(
        "
        table=0,priority=100,in_port=0,ip,actions=ct(table=1,zone=4)
        table=0,priority=100,in_port=2,ip,actions=ct(table=1,zone=4)
        table=0,priority=0,actions=drop
        table=1,ct_state=+trk+new,in_port=0,ip,actions=ct(commit,zone=4),output:2
        table=1,ct_state=+trk+est,in_port=0,ip,actions=output:2
        table=1,ct_state=+trk+est,in_port=2,ip,actions=output:0
        table=1,priority=0,actions=drop
        ",
    );
    // The first round also resolves B's MAC on the underlay.
    until("ping -s 3000 A -> B over VXLAN", 30, || {
        sh(&format!(
            "ip netns exec {na} ping -c 2 -i 0.3 -W 1 -s 3000 10.201.0.2"
        ))
        .status
        .success()
    });
    let before = r.port(2)["tx_packets"].as_u64().unwrap_or(0);
    must(&format!(
        "ip netns exec {na} ping -c 3 -i 0.3 -W 1 -s 3000 10.201.0.2"
    ));
    let t = r.port(2);
    assert!(
        t["tx_packets"].as_u64().unwrap_or(0) >= before + 9,
        "three fragments per request encapsulated: {t}"
    );
    assert!(ipf(&r, "v4 frags completed") >= 18);
    drop(r);
    drop(ns);
}
