//! `set_tunnel` through OpenFlow, as operators and controllers write it:
//! the real `ovs-ofctl -O OpenFlow13` adds `actions=set_tunnel:42,output:3`
//! (a `set_field` of `tun_id` on the wire in 1.3, as OVS encodes it) and a
//! controller sends the Nicira NXAST_SET_TUNNEL64 and NXAST_SET_TUNNEL
//! actions itself; the frames that match leave
//! the VXLAN port with the VNI each flow set (tshark and a byte-level check
//! of the outer headers agree), and `ovs-ofctl dump-flows` prints what it
//! prints for the same flows against a real Open vSwitch 3.1.
//!
//! ```text
//!  in.pcap ─► port 1 (net_pcap) ─► br0: udp → set_tunnel:42, output:3
//!                                      tcp → NXAST_SET_TUNNEL64 0x123456, output:3
//!                                      icmp → NXAST_SET_TUNNEL 0x77, output:3
//!             port 3: vx0 (type=vxlan, key=flow, underlay=2) ─► port 2 (net_pcap tx) ─► out2.pcap
//!  vswitch run --ovsdb (ovs_harness::Rig)  vs  ovs-vswitchd --enable-dummy=override: dump-flows
//! ```

mod ovs_harness;

use std::process::Command;

use openflow::flow_mod::FlowMod;
use openflow::instruction::Instruction;
use openflow::nicira::NxAction;
use openflow::oxm::{Field, OxmField};
use openflow::{Action, Match, Message};
use ovs_harness::*;

/// The VXLAN port's underlay addresses and the far end's MAC.
const LOCAL_IP: [u8; 4] = [192, 168, 90, 1];
const REMOTE_IP: [u8; 4] = [192, 168, 90, 2];
const REMOTE_MAC: [u8; 6] = [2, 0, 0, 0, 0x90, 2];

/// The flow ovs-ofctl adds (the text of the issue, on port 1's UDP).
const OFCTL_FLOW: &str = "priority=10,in_port=1,udp,actions=set_tunnel:42,output:3";
/// The VNI the controller's NXAST_SET_TUNNEL64 sets for port 1's TCP.
const NX64_VNI: u64 = 0x12_3456;
/// The VNI the controller's NXAST_SET_TUNNEL sets for port 1's ICMP.
const NX_VNI: u64 = 0x77;

/// The controller's flow-mod: `priority=10,in_port=1,ip,nw_proto=PROTO`,
/// apply `set_tunnel` and output to port 3.
fn nx_flow_mod(proto: u8, set_tunnel: NxAction) -> Message {
    Message::FlowMod(FlowMod {
        priority: 10,
        matching: Match::new()
            .with(OxmField::exact(Field::InPort, &1u32.to_be_bytes()))
            .with(OxmField::exact(Field::EthType, &0x0800u16.to_be_bytes()))
            .with(OxmField::exact(Field::IpProto, &[proto])),
        instructions: vec![Instruction::ApplyActions(vec![
            Action::Nicira(set_tunnel),
            Action::output(3),
        ])],
        ..FlowMod::default()
    })
}

/// The flows of `dump-flows br0` without counters and durations, sorted.
fn installed(rig: &Rig) -> Vec<String> {
    let dump = ok(rig.ofctl(&["dump-flows", "br0"]));
    let mut v: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("actions="))
        .map(flow_text)
        .collect();
    v.sort();
    v
}

/// The bridge's flows as each switch takes them: `ovs-ofctl -O OpenFlow13
/// add-flow` (1.3, whose set_field encoding this test compares; a plain
/// `ovs-ofctl` speaks 1.0, `tests/ovs_of10.rs`), then the controller's flow-mods (NXAST_SET_TUNNEL64 for TCP,
/// NXAST_SET_TUNNEL, as OVS picks it for a 32-bit key, for ICMP), which
/// must earn no error.
fn program(rig: &Rig) {
    ok(rig.ofctl(&["add-flow", "br0", OFCTL_FLOW]));
    let answers = controller_sends(
        &rig.dir.join("br0.mgmt"),
        vec![
            nx_flow_mod(6, NxAction::SetTunnel64(NX64_VNI)),
            nx_flow_mod(1, NxAction::set_tunnel(NX_VNI)),
        ],
    );
    assert!(
        answers.iter().all(|m| !matches!(m, Message::Error(_))),
        "{}: {answers:?}",
        rig.name()
    );
}

/// VNI and inner frame of a VXLAN packet on the underlay, its outer
/// headers checked (RFC 7348 §5: UDP to 4789, flags 0x08, VNI in bytes
/// 4-6 of the VXLAN header).
fn vxlan(outer: &[u8]) -> (u32, &[u8]) {
    assert_eq!(outer[..6], REMOTE_MAC, "outer destination MAC");
    assert_eq!(outer[12..14], [0x08, 0x00], "outer EtherType");
    let ip = &outer[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    assert_eq!(ip[9], 17, "outer protocol");
    assert_eq!(ip[12..16], LOCAL_IP, "outer source");
    assert_eq!(ip[16..20], REMOTE_IP, "outer destination");
    assert_eq!(checksum(&ip[..ihl]), 0, "outer IPv4 checksum");
    let udp = &ip[ihl..];
    assert_eq!(udp[2..4], 4789u16.to_be_bytes(), "UDP destination port");
    let vx = &udp[8..16];
    assert_eq!(vx[0], 0x08, "VXLAN flags: I");
    (u32::from_be_bytes([0, vx[4], vx[5], vx[6]]), &udp[16..])
}

#[test]
fn set_tunnel_from_ovs_ofctl_and_a_controller_sets_the_vni_a_vxlan_port_sends() {
    // The reference: what OVS 3.1 takes and prints.
    let mut ovs = Rig::new(Kind::Ovs, "settun").dummy();
    ok(ovs.start_ovsdb());
    ok(ovs.start_daemon(Net::Fresh, &[]));
    ok(ovs.add_bridge("br0", &["fail_mode=secure"]));
    ok(ovs.wait_for_file("br0.mgmt", 20));
    program(&ovs);
    let want = installed(&ovs);
    drop(ovs);
    assert_eq!(
        want,
        [
            "table=0, priority=10,icmp,in_port=1 actions=set_field:0x77->tun_id,output:3",
            "table=0, priority=10,tcp,in_port=1 actions=set_field:0x123456->tun_id,output:3",
            "table=0, priority=10,udp,in_port=1 actions=set_field:0x2a->tun_id,output:3",
        ],
        "OVS 3.1 prints set_tunnel in OpenFlow 1.3 as a set_field of tun_id"
    );

    let mut rig = Rig::new(Kind::Vswitch, "settun");
    ok(rig.start());
    ok(rig.add_port(
        2,
        &format!("net_pcap2,tx_pcap={}", rig.sink(2).display()),
        &[],
    ));
    let ip = |a: [u8; 4]| std::net::Ipv4Addr::from(a).to_string();
    ok(rig.vsctl(&[
        "add-port",
        "br0",
        "vx0",
        "--",
        "set",
        "Interface",
        "vx0",
        "type=vxlan",
        "ofport_request=3",
        &format!("options:local_ip={}", ip(LOCAL_IP)),
        &format!("options:remote_ip={}", ip(REMOTE_IP)),
        "options:key=flow",
        "options:underlay=2",
        "options:remote_mac=02:00:00:00:90:02",
    ]));
    program(&rig);
    assert_eq!(installed(&rig), want, "vswitch's dump-flows against OVS's");

    // UDP, TCP and ICMP frames, and ARP that no flow takes (table miss:
    // dropped).
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut frames = Vec::new();
    for i in 0..24u16 {
        let (proto, l4) = match i % 4 {
            0 => (17, udp(1000 + i, 53, 40 + usize::from(i))),
            1 => (6, tcp(40000 + i, 80, 20 + usize::from(i))),
            2 => (1, icmp(8, 0, usize::from(i))),
            _ => {
                let arp = arp(1, mac(1), a, [0; 6], b);
                frames.push(eth(BCAST, mac(1), &[], 0x0806, &arp));
                continue;
            }
        };
        let l4 = l4_csum(&[a, b].concat(), proto, l4);
        frames.push(eth(
            mac(2),
            mac(1),
            &[],
            0x0800,
            &ipv4(a, b, proto, 64, 0, &l4),
        ));
    }
    let input = rig.dir.join("in.pcap");
    write_frames(&input, frames.iter().map(Vec::as_slice));
    ok(rig.add_source(&input));
    let tunnelled: Vec<&Vec<u8>> = frames.iter().filter(|f| f[12..14] == [8, 0]).collect();
    let (rx, tx) = ok(rig.wait_replayed(frames.len() as u64, &[2]));
    assert_eq!(rx, frames.len() as u64);
    let out = ok(rig.captures(&tx)).remove(&2).unwrap();
    assert_eq!(
        out.len(),
        tunnelled.len(),
        "one VXLAN packet per IPv4 frame"
    );
    for (outer, sent) in out.iter().zip(&tunnelled) {
        let (vni, inner) = vxlan(outer);
        assert_eq!(inner, &sent[..], "the inner frame is the frame sent");
        let want = match sent[14 + 9] {
            17 => 42,
            6 => NX64_VNI,
            _ => NX_VNI,
        } as u32;
        assert_eq!(vni, want, "VNI of {}", hex(sent));
    }

    // tshark's own VXLAN dissector reads the same VNIs.
    let o = Command::new("tshark")
        .arg("-r")
        .arg(rig.sink(2))
        .args(["-T", "fields", "-e", "vxlan.vni", "-e", "ip.proto"])
        .output()
        .expect("tshark (apt-get install tshark)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), tunnelled.len(), "{rows:?}");
    for r in &rows {
        // ip.proto: outer UDP, then the inner protocol.
        let want = match r.split('\t').nth(1) {
            Some("17,17") => "42",
            Some("17,6") => "1193046",
            Some("17,1") => "119",
            other => panic!("unexpected protocols {other:?} in {r}"),
        };
        assert_eq!(r.split('\t').next(), Some(want), "{r}");
    }
    // Each flow counted its frames.
    let dump = ok(rig.ofctl(&["dump-flows", "br0"]));
    let packets = |needle: &str| {
        counters(&dump)
            .lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.trim_start().split('/').next().map(str::to_owned))
            .unwrap_or_default()
    };
    for proto in ["udp", "tcp", "icmp"] {
        assert_eq!(packets(proto), "6", "{proto}: {dump}");
    }
}
