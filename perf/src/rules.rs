//! Equivalent rule sets for OVS (`ovs-ofctl add-flows`) and for `vswitch
//! run --flows` (the same ovs-ofctl syntax, ports numbered from 0 in
//! `--port` order).
//!
//! A set of `n` rules is `n - 1` higher-priority wildcard rules that never
//! match the benchmark traffic (IPv4 destination /28 prefixes inside
//! 172.16.0.0/12, while the traffic goes to 10.1.0.1) plus one low-priority
//! rule forwarding the source port to the sink. Every packet is therefore
//! looked up against all wildcard rules and forwarded by the last one: the
//! classifier's cost grows with `n` and the forwarding result stays the same.

/// The most wildcard rules [`rule_set`] can make (distinct /28s in
/// 172.16.0.0/12).
pub const MAX_RULES: u32 = 1 << 16;

/// Port numbering of a rule dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Number of the source port.
    pub input: u32,
    /// Number of the sink port.
    pub output: u32,
}

/// OVS: OpenFlow port numbers (`ofport_request` 1 and 2).
pub const OVS_PORTS: Ports = Ports {
    input: 1,
    output: 2,
};
/// vswitch: ports numbered from 0 in `--port` order.
pub const VSWITCH_PORTS: Ports = Ports {
    input: 0,
    output: 1,
};

/// The `i`-th non-matching prefix: 172.(16 + i/4096).(i/16 % 256).(i%16 * 16)/28.
pub fn drop_prefix(i: u32) -> String {
    format!(
        "172.{}.{}.{}/28",
        16 + (i >> 12),
        (i >> 4) & 0xff,
        (i & 0xf) << 4
    )
}

/// `n` rules (at least 1, at most [`MAX_RULES`]), one per line, each line
/// ending in `\n`: `n - 1` non-matching drop rules, then the forwarding rule.
pub fn rule_set(n: u32, ports: Ports) -> Result<String, String> {
    if n == 0 || n > MAX_RULES {
        return Err(format!("rule count {n} not in 1..={MAX_RULES}"));
    }
    let mut s = String::with_capacity(n as usize * 56);
    for i in 0..n - 1 {
        s.push_str(&format!(
            "priority=100,ip,nw_dst={},actions=drop\n",
            drop_prefix(i)
        ));
    }
    s.push_str(&format!(
        "priority=1,in_port={},actions=output:{}\n",
        ports.input, ports.output
    ));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::process::Command;

    #[test]
    fn one_rule_forwards() {
        assert_eq!(
            rule_set(1, VSWITCH_PORTS).unwrap(),
            "priority=1,in_port=0,actions=output:1\n"
        );
        assert_eq!(
            rule_set(1, OVS_PORTS).unwrap(),
            "priority=1,in_port=1,actions=output:2\n"
        );
    }

    #[test]
    fn counts_prefixes_and_determinism() {
        for n in [1, 100, 10_000] {
            let a = rule_set(n, OVS_PORTS).unwrap();
            assert_eq!(a, rule_set(n, OVS_PORTS).unwrap(), "deterministic");
            let lines: Vec<&str> = a.lines().collect();
            assert_eq!(lines.len(), n as usize);
            let drops: HashSet<&str> = lines[..lines.len() - 1].iter().copied().collect();
            assert_eq!(drops.len(), n as usize - 1, "distinct drop rules");
            assert!(drops.iter().all(|l| l.ends_with(",actions=drop")));
        }
        assert_eq!(drop_prefix(0), "172.16.0.0/28");
        assert_eq!(drop_prefix(17), "172.16.1.16/28");
        assert_eq!(drop_prefix(MAX_RULES - 1), "172.31.255.240/28");
        assert!(rule_set(0, OVS_PORTS).is_err());
        assert!(rule_set(MAX_RULES + 1, OVS_PORTS).is_err());
    }

    /// No drop prefix covers the benchmark traffic's destination 10.1.0.1,
    /// and every prefix is a proper /28 network address inside 172.16/12.
    #[test]
    fn drop_prefixes_never_match_traffic() {
        let dst = u32::from_be_bytes([10, 1, 0, 1]);
        for i in 0..MAX_RULES {
            let p = drop_prefix(i);
            let (addr, len) = p.split_once('/').unwrap();
            assert_eq!(len, "28");
            let a: std::net::Ipv4Addr = addr.parse().unwrap();
            let a = u32::from(a);
            assert_eq!(a & 0xf, 0, "{p} is a network address");
            assert_eq!(a & 0xfff0_0000, 0xac10_0000, "{p} inside 172.16.0.0/12");
            assert_ne!(dst & 0xffff_fff0, a);
        }
    }

    /// The vswitch dialect is the OVS one with ports renumbered from 0.
    #[test]
    fn dialects_differ_only_in_port_numbers() {
        let o = rule_set(100, OVS_PORTS).unwrap();
        let v = rule_set(100, VSWITCH_PORTS).unwrap();
        assert_eq!(
            o.replace("in_port=1,actions=output:2", "in_port=0,actions=output:1"),
            v
        );
    }

    /// `ovs-ofctl parse-flows` accepts the OVS rule set and reads back the
    /// same matches and actions.
    #[test]
    fn ovs_ofctl_parses_the_rules() {
        let dir = std::env::temp_dir().join(format!("perf-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flows.txt");
        std::fs::write(&f, rule_set(100, OVS_PORTS).unwrap()).unwrap();
        let out = Command::new("ovs-ofctl")
            .arg("parse-flows")
            .arg(&f)
            .output()
            .expect("ovs-ofctl not runnable: install the Debian package openvswitch-common");
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ovs-ofctl parse-flows failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.matches("actions=drop").count(), 99, "{text}");
        assert!(text.contains("nw_dst=172.16.6.0/28"), "{text}");
        assert!(text.contains("in_port=1 actions=output:2"), "{text}");
    }
}
