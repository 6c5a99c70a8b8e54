//! A plain `ovs-ofctl` (no `-O`: it offers OpenFlow 1.0 only) drives
//! `vswitch run --ovsdb` as it drives Open vSwitch: the same commands
//! against a real OVS 3.1 (`ovs-vswitchd` on its dummy datapath) and
//! against vswitch print the same flows (`add-flow` with OpenFlow 1.0 and
//! NXM matches, `dump-flows` with and without filters, `mod-flows`,
//! `del-flows` strict, by out_port and all, `dump-aggregate`), `show`,
//! `dump-ports`, `dump-tables`, `dump-desc` answer, errors come back in
//! their 1.0 form, the flows forward frames (pcap ports, bytes checked),
//! and the bridge's `protocols` column decides who may connect.
//!
//! ```text
//!  ovs-ofctl (OpenFlow 1.0 + Nicira) ──unix:RUN/br0.mgmt──► vswitch run --ovsdb   (Rig)
//!  ovs-ofctl (OpenFlow 1.0 + Nicira) ──unix:RUN/br0.mgmt──► ovs-vswitchd --enable-dummy=override
//!  in.pcap ─► port 1 ─► flows added by plain ovs-ofctl ─► port 2 ─► out2.pcap
//! ```

mod ovs_harness;

use std::process::Output;

use ovs_harness::*;

/// Flows as an operator types them, one `add-flow` each: OpenFlow 1.0
/// matches (sent as OFPT_FLOW_MOD) and matches only NXM can say (IPv6,
/// masked VLAN TCI: NXT_FLOW_MOD), named tables (NXT_FLOW_MOD_TABLE_ID),
/// cookies and timeouts, 1.0 and Nicira actions.
const FLOWS: [&str; 10] = [
    "priority=100,in_port=1,ip,nw_dst=10.0.0.2,actions=mod_dl_src:02:00:00:00:00:99,output:2",
    "priority=90,in_port=1,ipv6,actions=mod_vlan_vid:7,output:2",
    "priority=60,tcp,tp_dst=80,actions=resubmit(,1)",
    "priority=8,tcp,nw_src=10.1.0.0/24,tp_src=1000,vlan_tci=0x1005/0x1fff,\
     actions=mod_vlan_vid:9,mod_nw_tos:8,mod_tp_dst:99,strip_vlan,NORMAL",
    "priority=9,arp,arp_spa=10.0.0.1,dl_vlan=0xffff,actions=FLOOD,IN_PORT,LOCAL,CONTROLLER,ALL",
    "table=1,priority=1,actions=drop",
    "table=2,cookie=0x1234,idle_timeout=60,priority=7,ipv6,ipv6_dst=fe80::1,\
     actions=dec_ttl,output:2",
    "table=3,priority=5,udp,dl_dst=02:00:00:00:00:02,tp_src=53,actions=mod_nw_src:10.9.9.9,mod_tp_src:5353,output:1",
    "priority=1,in_port=1,actions=drop",
    "table=5,priority=5,reg0=0x5,ip,actions=set_field:0x7->reg1,load:0x3->NXM_NX_REG2[0..7],\
     move:NXM_NX_REG0[0..15]->NXM_NX_REG3[0..15],output:2",
];

/// `ovs-ofctl ARGS` (no `-O`) against the rig's bridge socket directory.
fn plain(rig: &Rig, args: &[&str]) -> Output {
    ok(rig.tool_output("ovs-ofctl", args))
}

fn plain_ok(rig: &Rig, args: &[&str]) -> String {
    let o = plain(rig, args);
    assert!(
        o.status.success(),
        "{}: ovs-ofctl {args:?}: {}",
        rig.name(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The flows of a `dump-flows`, one trimmed line each, without the
/// timing fields (`duration=`, `idle_age=`, `hard_age=`: seconds, which
/// the two switches, run one after the other, need not agree on), sorted
/// (each switch answers in its own order).
fn flows(rig: &Rig, filter: Option<&str>) -> Vec<String> {
    flows_as(rig, &[], filter, "NXST_FLOW reply")
}

/// [`flows`] with `ovs-ofctl` options `opts`, whose reply starts `head`.
fn flows_as(rig: &Rig, opts: &[&str], filter: Option<&str>, head: &str) -> Vec<String> {
    let mut args = opts.to_vec();
    args.extend(["dump-flows", "br0"]);
    args.extend(filter);
    let out = plain_ok(rig, &args);
    let mut lines = out.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with(head)),
        "{}: {out}",
        rig.name()
    );
    let mut v: Vec<String> = lines
        .map(|l| {
            l.trim()
                .split(", ")
                .filter(|f| {
                    !["duration=", "idle_age=", "hard_age="]
                        .iter()
                        .any(|t| f.starts_with(t))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn same(what: &str, vsw: &Rig, ovs: &Rig, filter: Option<&str>) -> Vec<String> {
    let (a, b) = (flows(vsw, filter), flows(ovs, filter));
    assert_eq!(
        a,
        b,
        "{what}: vswitch and OVS print different flows\n--- vswitch:\n{}\n--- OVS:\n{}",
        a.join("\n"),
        b.join("\n")
    );
    a
}

/// Runs the same command on both switches, each must succeed.
fn both(vsw: &Rig, ovs: &Rig, args: &[&str]) {
    plain_ok(vsw, args);
    plain_ok(ovs, args);
}

#[test]
fn plain_ovs_ofctl_drives_vswitch_as_it_drives_ovs() {
    // The reference: OVS 3.1 on its dummy datapath, protocols unset.
    let mut ovs = Rig::new(Kind::Ovs, "of10").dummy();
    ok(ovs.start_ovsdb());
    ok(ovs.start_daemon(Net::Fresh, &[]));
    ok(ovs.add_bridge("br0", &["fail_mode=secure"]));
    ok(ovs.wait_for_file("br0.mgmt", 20));
    let mut vsw = Rig::new(Kind::Vswitch, "of10");
    ok(vsw.start());

    for f in FLOWS {
        both(&vsw, &ovs, &["add-flow", "br0", f]);
    }
    let all = same("after add-flow", &vsw, &ovs, None);
    assert_eq!(all.len(), FLOWS.len(), "{all:#?}");
    eprintln!("both print:\n{}", all.join("\n"));
    for want in [
        "cookie=0x0, table=0, n_packets=0, n_bytes=0, priority=100,ip,in_port=1,nw_dst=10.0.0.2 \
         actions=mod_dl_src:02:00:00:00:00:99,output:2",
        "cookie=0x1234, table=2, n_packets=0, n_bytes=0, idle_timeout=60, \
         priority=7,ipv6,ipv6_dst=fe80::1 actions=dec_ttl,output:2",
        "cookie=0x0, table=0, n_packets=0, n_bytes=0, priority=8,tcp,dl_vlan=5,\
         nw_src=10.1.0.0/24,tp_src=1000 actions=mod_vlan_vid:9,mod_nw_tos:8,mod_tp_dst:99,\
         strip_vlan,NORMAL",
        // A register write in 1.0 is a reg_load, printed as one.
        "cookie=0x0, table=5, n_packets=0, n_bytes=0, priority=5,ip,reg0=0x5 \
         actions=load:0x7->NXM_NX_REG1[],load:0x3->NXM_NX_REG2[0..7],\
         move:NXM_NX_REG0[0..15]->NXM_NX_REG3[0..15],output:2",
    ] {
        assert!(all.iter().any(|l| l == want), "{want}\nnot in {all:#?}");
    }
    // OpenFlow 1.0's own flow statistics (OFPST_FLOW, ofp10_match: what
    // 1.0 cannot say is left out, as OVS does).
    let std10 = |r: &Rig| flows_as(r, &["-F", "openflow10"], None, "OFPST_FLOW reply");
    assert_eq!(
        std10(&vsw),
        std10(&ovs),
        "ovs-ofctl -F openflow10 dump-flows"
    );
    // vswitch reports the idle age as OVS does (NXST_FLOW), the hard age
    // only when a modify made it differ from the duration.
    let raw = plain_ok(&vsw, &["dump-flows", "br0"]);
    assert!(raw.contains("idle_age="), "{raw}");
    assert!(!raw.contains("hard_age="), "{raw}");

    // Filtered dumps (an NXM match in NXST_FLOW), aggregate.
    let t2 = same("dump-flows table=2,ipv6", &vsw, &ovs, Some("table=2,ipv6"));
    assert_eq!(t2.len(), 1, "{t2:#?}");
    assert_eq!(same("dump-flows tcp", &vsw, &ovs, Some("tcp")).len(), 2);
    let agg = |r: &Rig| plain_ok(r, &["dump-aggregate", "br0"]);
    assert_eq!(agg(&vsw), agg(&ovs));
    assert!(agg(&vsw).contains("flow_count=10"), "{}", agg(&vsw));

    // mod-flows (non-strict; OpenFlow 1.0 reaches every table), strict
    // del-flows, del-flows by out_port.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    both(
        &vsw,
        &ovs,
        &["mod-flows", "br0", "in_port=1,actions=output:3"],
    );
    same("after mod-flows", &vsw, &ovs, None);
    let raw = plain_ok(&vsw, &["dump-flows", "br0", "in_port=1"]);
    assert_eq!(raw.matches("hard_age=0,").count(), 3, "{raw}");
    both(
        &vsw,
        &ovs,
        &["del-flows", "--strict", "br0", "priority=60,tcp,tp_dst=80"],
    );
    both(&vsw, &ovs, &["del-flows", "br0", "out_port=1"]);
    let left = same("after del-flows", &vsw, &ovs, None);
    assert_eq!(left.len(), FLOWS.len() - 2, "{left:#?}");
    // A modify that reaches nothing adds the flow in 1.0.
    both(
        &vsw,
        &ovs,
        &[
            "mod-flows",
            "br0",
            "table=4,priority=3,icmp,actions=output:2",
        ],
    );
    assert_eq!(
        same("mod-flows as add", &vsw, &ovs, None).len(),
        left.len() + 1
    );
    both(&vsw, &ovs, &["del-flows", "br0"]);
    assert!(same("after del-flows (all)", &vsw, &ovs, None).is_empty());

    // Errors in their OpenFlow 1.0 form: a Nicira vendor error (BAD_PREREQ
    // is NX1.0(1,260)) and a standard one.
    for r in [&vsw, &ovs] {
        let o = plain(
            r,
            &["add-flow", "br0", "ip,ct_nw_src=10.0.0.1,actions=drop"],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("OFPBMC_BAD_PREREQ"), "{}: {err}", r.name());
    }
    let o = plain(&vsw, &["add-flow", "br0", "tcp,actions=ct(commit,alg=ftp)"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("OFPBAC_BAD_ARGUMENT"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // dump-tables, dump-desc, get-frags answer as OVS's do.
    let tables = plain_ok(&vsw, &["dump-tables", "br0"]);
    assert!(tables.starts_with("OFPST_TABLE reply"), "{tables}");
    assert!(tables.contains("...253: ditto"), "{tables}");
    assert!(plain_ok(&vsw, &["dump-desc", "br0"]).starts_with("OFPST_DESC reply"));
    both(&vsw, &ovs, &["set-frags", "br0", "drop"]);
    assert_eq!(plain_ok(&vsw, &["get-frags", "br0"]), "drop\n");
    assert_eq!(
        plain_ok(&vsw, &["get-frags", "br0"]),
        plain_ok(&ovs, &["get-frags", "br0"])
    );
    drop(ovs);

    // The flows forward: port 1 reads in.pcap, port 2 writes out2.pcap.
    ok(vsw.add_port(
        2,
        &format!("net_pcap2,tx_pcap={}", vsw.sink(2).display()),
        &[],
    ));
    let show = plain_ok(&vsw, &["show", "br0"]);
    assert!(show.starts_with("OFPT_FEATURES_REPLY"), "{show}");
    assert!(show.contains("n_tables:254"), "{show}");
    assert!(show.contains("OFPT_GET_CONFIG_REPLY"), "{show}");
    assert!(show.contains(" 2(p2): addr:"), "{show}");
    assert!(show.contains("LOCAL(br0): addr:"), "{show}");
    for f in &FLOWS[..2] {
        plain_ok(&vsw, &["add-flow", "br0", f]);
    }
    plain_ok(&vsw, &["add-flow", "br0", FLOWS[8]]);
    let (a, b, c) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]);
    let v4 = |dst: [u8; 4], n: usize| {
        let l4 = l4_csum(&[a, dst].concat(), 17, udp(1000, 53, n));
        eth(mac(2), mac(1), &[], 0x0800, &ipv4(a, dst, 17, 64, 0, &l4))
    };
    let frame6 = {
        let l4 = l4_csum(&[v6(1), v6(2)].concat(), 17, udp(1000, 53, 30));
        eth(
            mac(2),
            mac(1),
            &[],
            0x86dd,
            &ipv6(v6(1), v6(2), 17, 64, 0, &l4),
        )
    };
    let frames = [v4(b, 20), v4(c, 21), frame6.clone(), v4(b, 22)];
    let input = vsw.dir.join("in.pcap");
    write_frames(&input, frames.iter().map(Vec::as_slice));
    ok(vsw.add_source(&input));
    let (rx, tx) = ok(vsw.wait_replayed(frames.len() as u64, &[2]));
    assert_eq!(rx, frames.len() as u64);
    let out = ok(vsw.captures(&tx)).remove(&2).unwrap();
    // to 10.0.0.2: the source MAC rewritten; to 10.0.0.3: dropped; IPv6:
    // an 802.1Q tag with VID 7 pushed (mod_vlan_vid on an untagged frame).
    let mut want_v4 = frames[0].clone();
    want_v4[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
    let mut want_v6 = frame6[..12].to_vec();
    want_v6.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    want_v6.extend_from_slice(&frame6[12..]);
    let mut want_v4b = frames[3].clone();
    want_v4b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
    assert_eq!(
        out.len(),
        3,
        "{}",
        out.iter().map(|f| hex(f)).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(hex(&out[0]), hex(&want_v4));
    assert_eq!(hex(&out[1]), hex(&want_v6));
    assert_eq!(hex(&out[2]), hex(&want_v4b));
    // The counters, through plain dump-flows and dump-ports.
    let dump = flows(&vsw, None);
    for (prio, n) in [
        ("priority=100,", 2),
        ("priority=90,", 1),
        ("priority=1,", 1),
    ] {
        let l = dump.iter().find(|l| l.contains(prio)).unwrap();
        assert!(l.contains(&format!("n_packets={n},")), "{l}");
    }
    let ports = plain_ok(&vsw, &["dump-ports", "br0", "2"]);
    assert!(ports.starts_with("OFPST_PORT reply"), "{ports}");
    assert!(ports.contains("tx pkts=3,"), "{ports}");
    let ports = plain_ok(&vsw, &["dump-ports", "br0"]);
    assert!(ports.contains("port  1: rx pkts=4,"), "{ports}");
    // packet-out (OFPT_PACKET_OUT with 1.0 actions) leaves by port 2.
    let packet: String = frames[1].iter().map(|b| format!("{b:02x}")).collect();
    let po = format!("in_port=1,packet={packet},actions=mod_dl_dst:02:00:00:00:00:42,output:2");
    plain_ok(&vsw, &["packet-out", "br0", &po]);
    let mut sent = false;
    for _ in 0..50 {
        if plain_ok(&vsw, &["dump-ports", "br0", "2"]).contains("tx pkts=4,") {
            sent = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(sent, "{}", plain_ok(&vsw, &["dump-ports", "br0", "2"]));
    let out = read_pcap(&vsw.sink(2)).unwrap();
    let mut want = frames[1].clone();
    want[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x42]);
    assert_eq!(out.last().map(|f| hex(f)), Some(hex(&want)));

    // The bridge's protocols column: OpenFlow13 only turns plain ovs-ofctl
    // away (as OVS does) and keeps 1.3 working; cleared, 1.0 is back.
    ok(vsw.vsctl(&["set", "bridge", "br0", "protocols=OpenFlow13"]));
    let mut refused = false;
    for _ in 0..50 {
        let o = plain(&vsw, &["dump-flows", "br0"]);
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("version negotiation failed"), "{err}");
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(refused, "protocols=OpenFlow13 still let OpenFlow 1.0 in");
    assert!(ok(vsw.ofctl(&["dump-flows", "br0"])).contains("priority=100"));
    ok(vsw.vsctl(&["clear", "bridge", "br0", "protocols"]));
    let mut back = false;
    for _ in 0..50 {
        if plain(&vsw, &["dump-flows", "br0"]).status.success() {
            back = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(back, "plain ovs-ofctl refused after protocols was cleared");
}
