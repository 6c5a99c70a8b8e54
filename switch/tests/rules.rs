//! Rule syntax: parsing, canonical printing that parses back, clear errors.

use switch::rule::{parse_match, RuleSpec};

fn rt(s: &str) -> String {
    let r: RuleSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
    let shown = r.to_string();
    let again: RuleSpec = shown
        .parse()
        .unwrap_or_else(|e| panic!("reparse {shown}: {e}"));
    assert_eq!(again, r, "{s} -> {shown}");
    assert_eq!(again.to_string(), shown);
    shown
}

#[test]
fn canonical_forms() {
    assert_eq!(
        rt("priority=100,in_port=1,ip,nw_dst=10.0.0.0/8,tcp,tp_dst=80,actions=output:2"),
        "priority=100,tcp,in_port=1,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:2"
    );
    assert_eq!(rt("actions=normal"), "priority=32768,actions=NORMAL");
    assert_eq!(
        rt("arp,arp_op=1,arp_tpa=10.0.0.1,actions=flood"),
        "priority=32768,arp,arp_tpa=10.0.0.1,arp_op=1,actions=FLOOD"
    );
    assert_eq!(
        rt("dl_vlan=10,actions=pop_vlan,output:1"),
        "priority=32768,vlan_tci=0x100a/0x1fff,actions=pop_vlan,output:1"
    );
    assert_eq!(
        rt("ip,ip_dscp=46,actions=drop"),
        "priority=32768,ip,ip_dscp=46,actions=drop"
    );
    assert_eq!(
        rt("icmp,icmp_type=8,icmp_code=0,actions=1"),
        "priority=32768,icmp,icmp_type=8,icmp_code=0,actions=output:1"
    );
    // OVS reads icmp_type/icmp_code on ICMPv6 flows as icmpv6_type/code.
    assert_eq!(
        rt("icmp6,icmp_type=128,icmp_code=0,actions=1"),
        "priority=32768,icmp6,icmpv6_type=128,icmpv6_code=0,actions=output:1"
    );
    assert_eq!(
        rt("tcp,tcp_flags=+syn-ack,actions=1"),
        "priority=32768,tcp,tcp_flags=0x0002/0x0012,actions=output:1"
    );
    assert_eq!(
        rt("ip,nw_frag=later,actions=drop"),
        "priority=32768,ip,nw_frag=later,actions=drop"
    );
    assert_eq!(
        rt("udp,tp_src=0x100/0xff00,actions=1"),
        "priority=32768,udp,tp_src=0x100/0xff00,actions=output:1"
    );
    assert_eq!(
        rt("idle_timeout=10,hard_timeout=20,priority=5,actions=mod_nw_tos:184,dec_ttl,output:3"),
        "priority=5,idle_timeout=10,hard_timeout=20,actions=mod_nw_tos:184,dec_ttl,output:3"
    );
}

#[test]
fn round_trips() {
    for s in [
        "dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,actions=drop",
        "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=flood",
        "dl_type=0x88cc,actions=drop",
        "dl_vlan=0xffff,actions=mod_vlan_vid:5,output:2",
        "dl_vlan=5,dl_vlan_pcp=3,dl_vlan2=7,actions=pop_vlan,pop_vlan,output:2",
        "vlan_tci=0x1000/0x1000,actions=output:1",
        "ip,nw_src=192.168.0.0/255.255.0.255,nw_ttl=1,actions=drop",
        "ipv6,ipv6_src=2001:db8::/32,ipv6_dst=fe80::1,actions=output:4",
        "tcp6,tp_dst=443,actions=output:4",
        "udp6,tp_src=546,actions=drop",
        "sctp,tp_dst=9,actions=output:1",
        "icmp6,icmpv6_type=135,actions=NORMAL",
        "ip,ip_ecn=3,actions=set_ip_dscp:0,output:1",
        "arp,arp_sha=02:00:00:00:00:01,arp_tha=00:00:00:00:00:00,arp_spa=10.0.0.0/24,actions=flood",
        "in_port=3,actions=push_vlan:0x88a8,mod_vlan_pcp:7,set_eth_src:02:00:00:00:00:09,output:1,output:2",
        "tcp,tcp_flags=0x0002,actions=output:1",
        "ip,nw_frag=no,actions=1",
        "ip,nw_frag=first,actions=1",
        "ip,nw_frag=yes,actions=1",
        "ip,nw_frag=not_later,actions=1",
        "priority=0,actions=NORMAL",
        "priority=65535,table=0,actions=drop",
    ] {
        rt(s);
    }
}

fn err(s: &str) -> String {
    s.parse::<RuleSpec>().expect_err(s)
}

#[test]
fn clear_errors() {
    assert!(err("in_port=1").contains("missing `actions=`"));
    assert!(err("nw_dst=10.0.0.1,actions=1").contains("needs ip or arp"));
    assert!(err("ip,tp_dst=80,actions=1").contains("needs tcp, udp or sctp"));
    assert!(err("udp,tcp_flags=2,actions=1").contains("needs tcp"));
    assert!(err("ipv6_src=::1,actions=1").contains("needs ipv6"));
    assert!(err("arp_sha=02:00:00:00:00:01,actions=1").contains("needs arp"));
    assert!(err("frobnicate=1,actions=1").contains("unknown match field `frobnicate`"));
    assert!(err("in_port=1,actions=teleport").contains("unknown action `teleport`"));
    assert!(err("actions=output:64").contains("out of range"));
    assert!(err("in_port=x,actions=1").contains("bad in_port"));
    assert!(err("ip,nw_dst=10.0.0.300,actions=1").contains("bad IPv4 address"));
    assert!(err("ip,nw_dst=10.0.0.0/33,actions=1").contains("prefix length"));
    assert!(err("dl_src=02:00:00:00:00,actions=1").contains("bad MAC"));
    assert!(err("dl_vlan=4096,actions=1").contains("out of range"));
    assert!(err("actions=drop,output:1").contains("`drop` must be the only action"));
    assert!("actions=output:1,dec_ttl,output:2"
        .parse::<RuleSpec>()
        .is_ok());
    assert!(err("actions=").contains("empty action list"));
    assert!(err("tcp,udp,actions=1").contains("conflicts"));
    assert!(err("ip,arp,actions=1").contains("conflicts"));
    assert!(err("actions=push_vlan:0x0800").contains("TPID"));
    assert!(err("actions=mod_nw_tos:185").contains("ECN"));
    assert!(err("tcp,actions=1,actions=2").contains("twice"));
    assert!(err("ip,nw_frag=maybe,actions=1").contains("nw_frag"));
    assert!(err("tcp,tcp_flags=+bogus,actions=1").contains("unknown TCP flag"));
    assert!(err("table=254,actions=1").contains("out of range"));
    assert!(err("table=2,actions=goto_table:1").contains("later table"));
}

#[test]
fn match_filters() {
    let (m, p) = parse_match("priority=7,tcp,nw_dst=10.0.0.0/8").unwrap();
    assert_eq!(p, Some(7));
    let (narrow, _) = parse_match("tcp,nw_dst=10.1.0.0/16,tp_dst=80").unwrap();
    assert!(narrow.within(&m));
    assert!(!m.within(&narrow));
    assert!(parse_match("bogus=1").is_err());
}

#[test]
fn garbage_rules_never_panic() {
    let atoms = [
        "priority=",
        "in_port=",
        "ip",
        "tcp",
        "arp",
        "ipv6",
        "nw_dst=",
        "tp_dst=",
        "actions=",
        "output:",
        "/",
        ",",
        "=",
        ":",
        "0x",
        "1",
        "65536",
        "10.0.0.1",
        "::",
        "ff:ff",
        "dl_vlan=",
        "push_vlan:",
        "tcp_flags=",
        "+syn",
        "-",
        " ",
        "\u{00e9}",
        "\0",
        "mod_vlan_vid:",
        "nw_frag=",
        "dec_ttl",
        "drop",
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(x % 9) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(atoms[(x % atoms.len() as u64) as usize]);
        }
        if let Ok(r) = s.parse::<RuleSpec>() {
            // anything accepted must print and parse back identically
            let again: RuleSpec = r
                .to_string()
                .parse()
                .unwrap_or_else(|e| panic!("{s} -> {r}: {e}"));
            assert_eq!(again, r, "{s}");
        }
        let _ = parse_match(&s);
    }
}

#[test]
fn rule_lists_name_the_bad_entry() {
    let ok = switch::rule::parse_rules(&["actions=NORMAL", "tcp,actions=drop"]).unwrap();
    assert_eq!(ok.len(), 2);
    let e = switch::rule::parse_rules(&["actions=NORMAL", "tcp,actions=teleport"]).unwrap_err();
    assert!(
        e.starts_with("flow 2 `tcp,actions=teleport`: unknown action"),
        "{e}"
    );
}
