//! The `ct` action and the ct match fields: rule syntax (OVS's text forms,
//! round trips, errors), and the stateful pipeline with the real tracker.

use switch::rule::RuleSpec;

fn rt(s: &str) -> String {
    let r: RuleSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
    let out = r.to_string();
    let back: RuleSpec = out.parse().unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(back, r, "{out}");
    out
}

#[test]
fn ct_rules_print_as_ovs_ofctl_and_parse_back() {
    for (input, want) in [
        (
            "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
            "priority=100,ct_state=-trk,ip,actions=ct(table=1)",
        ),
        (
            "table=1,ct_state=+trk+new,tcp,tp_dst=80,in_port=1,actions=ct(commit),output:2",
            "priority=32768,table=1,ct_state=+new+trk,tcp,in_port=1,tp_dst=80,actions=ct(commit),output:2",
        ),
        (
            "table=1,ct_state=+est+trk,actions=output:1",
            "priority=32768,table=1,ct_state=+est+trk,actions=output:1",
        ),
        (
            "ct_state=0x21/0x3f,ct_zone=5,ct_mark=0x1/0xff,ct_label=0x10,ip,actions=drop",
            "priority=32768,ct_state=+new-est-rel-rpl-inv+trk,ct_zone=5,ct_mark=0x1/0xff,ct_label=0x10,ip,actions=drop",
        ),
        (
            "ct_state=new|trk,actions=drop",
            "priority=32768,ct_state=new|trk,actions=drop",
        ),
        (
            "ct_state=+trk+est,ct_nw_src=10.0.0.0/8,ct_nw_dst=10.1.1.1,ct_nw_proto=6,ct_tp_src=0x100/0xff00,ct_tp_dst=80,actions=drop",
            "priority=32768,ct_state=+est+trk,ct_nw_src=10.0.0.0/8,ct_nw_dst=10.1.1.1,ct_nw_proto=6,ct_tp_src=0x100/0xff00,ct_tp_dst=80,actions=drop",
        ),
        (
            "ct_state=+rpl+trk,ct_ipv6_src=fd00::/64,actions=drop",
            "priority=32768,ct_state=+rpl+trk,ct_ipv6_src=fd00::/64,actions=drop",
        ),
        (
            "ip,actions=ct(commit,zone=7,nat(src=192.168.0.1-192.168.0.9:1024-2048,random),exec(set_field:0x5->ct_mark))",
            "priority=32768,ip,actions=ct(commit,zone=7,nat(src=192.168.0.1-192.168.0.9:1024-2048,random),exec(set_field:0x5->ct_mark))",
        ),
        (
            "table=2,ipv6,actions=ct(table=3,nat),ct_clear,output:1",
            "priority=32768,table=2,ipv6,actions=ct(table=3,nat),ct_clear,output:1",
        ),
    ] {
        assert_eq!(rt(input), want);
    }
}

#[test]
fn ct_rule_errors_are_clear() {
    for (s, want) in [
        ("actions=ct(table=1)", "needs ip or ipv6"),
        ("ct_state=+inv+trk,ip,actions=ct(commit)", "cannot commit"),
        (
            "ct_nw_src=10.0.0.1,actions=drop",
            "need a tracked connection",
        ),
        (
            "ct_state=-trk,ct_tp_dst=80,actions=drop",
            "need a tracked connection",
        ),
        ("ct_state=+trk+flying,actions=drop", "unknown ct_state flag"),
        ("ct_zone=1/1,actions=drop", "not maskable"),
        ("ct_mark=0x100000000,actions=drop", "out of range"),
        (
            "ct_state=+trk+est,ct_nw_src=1.1.1.1,ct_ipv6_src=::1,actions=drop",
            "conflicts",
        ),
        ("ip,actions=ct(force)", "requires \"commit\""),
        (
            "ip,actions=ct(exec(set_field:1->ct_mark))",
            "need \"commit\"",
        ),
        (
            "ip,actions=ct(commit,nat(src=1.1.1.1,dst=2.2.2.2))",
            "one of",
        ),
        (
            "ip,actions=ct(commit,nat(src=10.0.0.9-10.0.0.1))",
            "invalid nat range",
        ),
        (
            "ip,actions=ct(commit,exec(set_field:1->ip_dst))",
            "ct_mark or ct_label",
        ),
        (
            "ip,actions=write_actions(ct(commit))",
            "not allowed in write_actions",
        ),
        ("ip,actions=ct(alg=ftp)", "not supported"),
        ("ip,actions=ct(table=1", "unknown action"),
    ] {
        let e = s.parse::<RuleSpec>().unwrap_err();
        assert!(e.contains(want), "{s}: {e}");
    }
}
