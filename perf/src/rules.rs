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

/// The 3-table pipeline of issue 13 item 4 (`target/release/switch
/// --pipeline`), in ovs-ofctl syntax (OpenFlow 1.3 instructions):
///
/// * table 0 classifies: `in_port=IN` with `udp` or `tcp` → `goto_table:1`,
///   anything else dropped (priority 0);
/// * table 1: `per_table` wildcard ACL rules (`ip,nw_dst=172.16.x.y/28` →
///   drop, never matching the traffic to 10.1.0.1) above a catch-all
///   `goto_table:2`;
/// * table 2: `per_table` rules `udp,tp_src=1024+i` → output (the
///   benchmark's UDP source ports are 1024..1279, so with ≥ 100 rules most
///   flows hit one of them) above a catch-all output.
///
/// Every frame of the benchmark traffic crosses three tables and leaves on
/// the output port. `3 + 2 × (per_table + 1) - 1` rules in all.
pub fn pipeline_set(per_table: u32, ports: Ports) -> String {
    let (i, o) = (ports.input, ports.output);
    let mut s = String::new();
    s.push_str(&format!(
        "table=0,priority=100,in_port={i},udp,actions=goto_table:1\n"
    ));
    s.push_str(&format!(
        "table=0,priority=100,in_port={i},tcp,actions=goto_table:1\n"
    ));
    s.push_str("table=0,priority=0,actions=drop\n");
    for k in 0..per_table {
        s.push_str(&format!(
            "table=1,priority=100,ip,nw_dst={},actions=drop\n",
            drop_prefix(k)
        ));
    }
    s.push_str("table=1,priority=0,actions=goto_table:2\n");
    for k in 0..per_table {
        s.push_str(&format!(
            "table=2,priority=100,udp,tp_src={},actions=output:{o}\n",
            1024 + k % 64512
        ));
    }
    s.push_str(&format!("table=2,priority=0,actions=output:{o}\n"));
    s
}

/// Priorities the churn rules cycle through: above every rule of
/// [`rule_set`] (200), between the drop rules and the forwarding rule (50),
/// and below the forwarding rule (0).
pub const CHURN_PRIORITIES: [u32; 3] = [200, 50, 0];

/// Churn rule number `seq` (issue 13 item 5): a table-0 drop rule for one
/// /32 destination in 192.168.0.0/16 (the traffic goes to 10.1.0.1, so it
/// never matches). Returns the `add-flow` text and the `del-flows
/// --strict` match (priority included) that removes exactly it. Distinct
/// for 65536 consecutive `seq`.
pub fn churn_rule(seq: u32) -> (String, String) {
    let p = CHURN_PRIORITIES[(seq % 3) as usize];
    let m = format!(
        "priority={p},ip,nw_dst=192.168.{}.{}",
        (seq >> 8) & 0xff,
        seq & 0xff
    );
    (format!("{m},actions=drop"), m)
}

/// One ACL rule (see [`acl_rule_set`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclRule {
    /// OpenFlow priority.
    pub priority: u32,
    /// `in_port` match (the forwarding rule only).
    pub in_port: Option<u32>,
    /// IP protocol (`None`: any IPv4).
    pub proto: Option<u8>,
    /// Source prefix (address, length).
    pub src: Option<(u32, u8)>,
    /// Destination prefix (address, length).
    pub dst: Option<(u32, u8)>,
    /// Source port (value, mask).
    pub sport: Option<(u16, u16)>,
    /// Destination port (value, mask).
    pub dport: Option<(u16, u16)>,
    /// `Some(port)`: output there; `None`: drop.
    pub output: Option<u32>,
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn fmt_ip(a: u32) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

fn fmt_port((v, m): (u16, u16)) -> String {
    if m == 0xffff {
        v.to_string()
    } else {
        format!("{v:#06x}/{m:#06x}")
    }
}

impl AclRule {
    /// Whether the rule matches `f` arriving on `in_port`.
    pub fn matches(&self, f: &crate::acl::Flow, in_port: u32) -> bool {
        let pfx = |p: Option<(u32, u8)>, a: u32| {
            p.is_none_or(|(v, l)| a & prefix_mask(l) == v & prefix_mask(l))
        };
        let port = |p: Option<(u16, u16)>, x: u16| p.is_none_or(|(v, m)| x & m == v & m);
        self.in_port.is_none_or(|p| p == in_port)
            && self.proto.is_none_or(|p| p == f.proto)
            && pfx(self.src, f.src)
            && pfx(self.dst, f.dst)
            && port(self.sport, f.sport)
            && port(self.dport, f.dport)
    }

    /// The rule's mask shape: (in_port?, proto?, src len, dst len, sport
    /// mask, dport mask). Rules of one shape share a classifier subtable.
    pub fn shape(&self) -> (bool, bool, u8, u8, u16, u16) {
        (
            self.in_port.is_some(),
            self.proto.is_some(),
            self.src.map_or(0, |p| p.1),
            self.dst.map_or(0, |p| p.1),
            self.sport.map_or(0, |p| p.1),
            self.dport.map_or(0, |p| p.1),
        )
    }

    /// The ovs-ofctl text (without a trailing newline).
    pub fn text(&self) -> String {
        let mut s = format!("priority={}", self.priority);
        if let Some(p) = self.in_port {
            s.push_str(&format!(",in_port={p}"));
        }
        if self.proto.is_some() || self.src.is_some() || self.dst.is_some() {
            s.push_str(match self.proto {
                Some(crate::acl::TCP) => ",tcp",
                Some(crate::acl::UDP) => ",udp",
                _ => ",ip",
            });
        }
        if let Some((a, l)) = self.src {
            s.push_str(&format!(",nw_src={}/{l}", fmt_ip(a & prefix_mask(l))));
        }
        if let Some((a, l)) = self.dst {
            s.push_str(&format!(",nw_dst={}/{l}", fmt_ip(a & prefix_mask(l))));
        }
        if let Some(p) = self.sport {
            s.push_str(&format!(",tp_src={}", fmt_port(p)));
        }
        if let Some(p) = self.dport {
            s.push_str(&format!(",tp_dst={}", fmt_port(p)));
        }
        match self.output {
            Some(o) => s.push_str(&format!(",actions=output:{o}")),
            None => s.push_str(",actions=drop"),
        }
        s
    }
}

/// L4 part of an ACL mask shape.
#[derive(Clone, Copy)]
enum L4 {
    No,
    Exact,
    Mask(u16),
}

/// The deny rules' mask shapes: (needs tcp/udp, src len, dst len, sport,
/// dport). With `ip`/`tcp`/`udp` variants of the L3-only ones and the
/// allow rules, over 30 distinct masks.
const ACL_SHAPES: [(bool, u8, u8, L4, L4); 24] = [
    (false, 8, 0, L4::No, L4::No),
    (false, 0, 8, L4::No, L4::No),
    (false, 16, 0, L4::No, L4::No),
    (false, 0, 16, L4::No, L4::No),
    (false, 24, 0, L4::No, L4::No),
    (false, 0, 24, L4::No, L4::No),
    (false, 32, 0, L4::No, L4::No),
    (false, 0, 32, L4::No, L4::No),
    (false, 16, 16, L4::No, L4::No),
    (false, 24, 24, L4::No, L4::No),
    (false, 32, 32, L4::No, L4::No),
    (false, 12, 20, L4::No, L4::No),
    (false, 20, 12, L4::No, L4::No),
    (true, 0, 0, L4::No, L4::Exact),
    (true, 24, 0, L4::No, L4::Exact),
    (true, 0, 24, L4::No, L4::Exact),
    (true, 32, 0, L4::No, L4::Exact),
    (true, 0, 32, L4::No, L4::Exact),
    (true, 16, 16, L4::No, L4::Exact),
    (true, 0, 0, L4::Exact, L4::No),
    (true, 32, 32, L4::Exact, L4::Exact),
    (true, 0, 16, L4::No, L4::Mask(0xff00)),
    (true, 8, 0, L4::Mask(0xfc00), L4::No),
    (true, 28, 0, L4::No, L4::Exact),
];

/// splitmix64: a small deterministic generator for the rule values.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The ACL case's rules (issue 17) for the traffic of
/// [`crate::acl::flow`]`(0..flows)`: `n` rules (at least 20, at most
/// [`MAX_RULES`]):
///
/// * `n - 11` deny rules (priorities 1099 down to 1100 - (n - 11)) over 24
///   mask shapes (src/dst prefixes /8, /12, /16, /20, /24, /28, /32 alone
///   and combined, exact and masked source/destination ports, `ip`, `tcp`
///   and `udp`), each built from a real flow's values with **one field
///   changed to a near miss** (a prefix with one bit flipped, half the
///   time among its last 12 bits, the bits after it drawn at random; a
///   port no flow uses) that no flow has: no deny rule
///   matches any packet, but each shares leading bits with the traffic, so
///   a classifier cannot rule it out by the first bits (OVS's prefix tries
///   must un-wildcard deep, and its megaflows get many masks);
/// * 8 allow rules (priority 50..57, output) that match parts of the
///   traffic (by /13../16 prefixes and service ports), below every deny
///   rule: a packet they match has still probed every deny subtable;
/// * 2 rules that match all TCP / all UDP traffic at priority 0, below the
///   forwarding rule (shadowed);
/// * the forwarding rule `priority=1,in_port=IN,actions=output:OUT`.
///
/// With `near == false` every field of a drop rule misses instead, and
/// early: addresses leave the traffic's within the first octet, source
/// ports lie below 1024, destination ports at or above 32768, so every
/// flow leaves every rule within the same few leading bits (a classifier
/// with prefix tries, like OVS's, then needs the same bits of every flow
/// and its megaflows share a few masks). Near misses built from real flows
/// make the needed bits differ per flow and multiply OVS's megaflow masks,
/// the "tuple space explosion" of Csikor et al., CoNEXT 2019.
pub fn acl_rule_set(flows: u32, n: u32, ports: Ports) -> Result<Vec<AclRule>, String> {
    acl_rule_set_with(flows, n, ports, true)
}

/// [`acl_rule_set`] with near (`true`) or far (`false`) address misses.
pub fn acl_rule_set_with(
    flows: u32,
    n: u32,
    ports: Ports,
    near: bool,
) -> Result<Vec<AclRule>, String> {
    use crate::acl::{flow, TCP, UDP};
    use std::collections::{HashMap, HashSet};
    if !(20..=MAX_RULES).contains(&n) {
        return Err(format!("ACL rule count {n} not in 20..={MAX_RULES}"));
    }
    if flows == 0 || flows > crate::acl::MAX_FLOWS {
        return Err(format!("ACL flow count {flows} out of range"));
    }
    let out = Some(ports.output);
    let mut rules = allow_rules(out);
    let traffic: Vec<crate::acl::Flow> = (0..flows).map(flow).collect();
    // Values the traffic has per (field, mask): a deny rule's miss field
    // must be outside its set, so the rule cannot match any flow.
    let mut seen: HashMap<(u8, u32), HashSet<u32>> = HashMap::new();
    let mut taken = |field: u8, mask: u32, v: u32| -> bool {
        seen.entry((field, mask))
            .or_insert_with(|| {
                traffic
                    .iter()
                    .map(|f| {
                        mask & match field {
                            0 => f.src,
                            1 => f.dst,
                            2 => f.sport as u32,
                            _ => f.dport as u32,
                        }
                    })
                    .collect()
            })
            .contains(&(v & mask))
    };
    let mut rng = Rng(0x5eed_ac10 ^ flows as u64 ^ (near as u64) << 40);
    let mut texts = HashSet::new();
    let denies = n - 11;
    let mut k = 0u32;
    let mut attempts = 0u32;
    while k < denies {
        attempts += 1;
        if attempts > denies * 64 {
            return Err(format!(
                "could not build distinct non-matching ACL rules (stuck at rule {k}, shape {})",
                k as usize % ACL_SHAPES.len()
            ));
        }
        let (l4, sl, dl, sp, dp) = ACL_SHAPES[(k as usize) % ACL_SHAPES.len()];
        let variant = k / ACL_SHAPES.len() as u32;
        let t = traffic[rng.below(flows as u64) as usize];
        let proto = if l4 {
            Some(if variant.is_multiple_of(2) { TCP } else { UDP })
        } else {
            [None, Some(TCP), Some(UDP)][(variant % 3) as usize]
        };
        let port = |l: L4, v: u16| match l {
            L4::No => None,
            L4::Exact => Some((v, 0xffff)),
            L4::Mask(m) => Some((v & m, m)),
        };
        let mut r = AclRule {
            priority: 1099 - k % 1000,
            in_port: None,
            proto,
            src: (sl > 0).then_some((t.src & prefix_mask(sl), sl)),
            dst: (dl > 0).then_some((t.dst & prefix_mask(dl), dl)),
            sport: port(sp, t.sport),
            dport: port(dp, t.dport),
            output: None,
        };
        // Fields present: 0 src, 1 dst, 2 sport, 3 dport; one becomes the miss.
        let present: Vec<u8> = [
            r.src.is_some(),
            r.dst.is_some(),
            r.sport.is_some(),
            r.dport.is_some(),
        ]
        .iter()
        .enumerate()
        .filter(|(_, p)| **p)
        .map(|(i, _)| i as u8)
        .collect();
        if !near {
            // Far: every field misses every flow early.
            move_far(&mut r, &mut rng);
            if r.src.is_some_and(|(v, l)| taken(0, prefix_mask(l), v))
                || r.dst.is_some_and(|(v, l)| taken(1, prefix_mask(l), v))
                || r.sport.is_some_and(|(v, m)| taken(2, m as u32, v as u32))
                || r.dport.is_some_and(|(v, m)| taken(3, m as u32, v as u32))
            {
                continue;
            }
        }
        let field = present[rng.below(present.len() as u64) as usize];
        let ok = !near || near_miss(&mut r, field, &mut rng, &mut taken);
        if !ok {
            continue;
        }
        let text = r.text();
        // Same match twice (any priority) would be a duplicate subtable
        // entry; keep every deny rule distinct.
        let key = text
            .split_once(',')
            .map(|(_, m)| m.to_string())
            .unwrap_or_default();
        if !texts.insert(key) {
            continue;
        }
        rules.push(r);
        k += 1;
    }
    rules.push(AclRule {
        priority: 1,
        in_port: Some(ports.input),
        proto: None,
        src: None,
        dst: None,
        sport: None,
        dport: None,
        output: out,
    });
    Ok(rules)
}

/// The ACL's allow rules (priorities 50-57, each to `out`) and the
/// lowest-priority TCP and UDP drops.
fn allow_rules(out: Option<u32>) -> Vec<AclRule> {
    use crate::acl::{TCP, UDP};
    let ip = |a: u32, b: u32, c: u32, d: u32| a << 24 | b << 16 | c << 8 | d;
    let allow = |priority, proto, src, dst, dport: Option<u16>| AclRule {
        priority,
        in_port: None,
        proto,
        src,
        dst,
        sport: None,
        dport: dport.map(|p| (p, 0xffff)),
        output: out,
    };
    let mut rules = vec![
        allow(57, Some(TCP), Some((ip(10, 2, 0, 0), 16)), None, Some(443)),
        allow(56, Some(UDP), None, None, Some(53)),
        allow(55, Some(TCP), None, Some((ip(10, 202, 0, 0), 16)), None),
        allow(
            54,
            Some(UDP),
            Some((ip(10, 5, 0, 0), 16)),
            Some((ip(10, 205, 0, 0), 16)),
            None,
        ),
        allow(53, Some(TCP), Some((ip(10, 0, 0, 0), 12)), None, Some(22)),
        allow(52, None, None, Some((ip(10, 207, 0, 0), 16)), None),
        allow(51, Some(UDP), None, None, Some(123)),
        allow(
            50,
            Some(TCP),
            None,
            Some((ip(10, 200, 0, 0), 13)),
            Some(8080),
        ),
    ];
    for proto in [TCP, UDP] {
        rules.push(AclRule {
            priority: 0,
            in_port: None,
            proto: Some(proto),
            src: None,
            dst: None,
            sport: None,
            dport: None,
            output: None,
        });
    }
    rules
}

/// Moves every field of deny rule `r` far from the traffic: addresses
/// leave 10/8 within the first octet, source ports below 1024 (the
/// traffic's are above), destination ports at or above 32768 (the
/// traffic's are below).
fn move_far(r: &mut AclRule, rng: &mut Rng) {
    let far_addr = |rng: &mut Rng, (a, l): (u32, u8)| {
        let bit = rng.below((l as u64).min(8)) as u32;
        let below = u32::MAX >> (bit + 1);
        (
            ((a ^ (1 << (31 - bit))) & !below | rng.next() as u32 & below) & prefix_mask(l),
            l,
        )
    };
    r.src = r.src.map(|p| far_addr(rng, p));
    r.dst = r.dst.map(|p| far_addr(rng, p));
    r.sport = r.sport.map(|(_, m)| ((1 + rng.below(1023) as u16) & m, m));
    r.dport = r.dport.map(|(_, m)| ((0x8000 | rng.next() as u16) & m, m));
}

/// Moves field `field` (0 source, 1 destination address, 2 source, 3
/// destination port) of deny rule `r` just off the traffic (`taken` says
/// whether a value under a mask is some flow's); false when the value
/// drawn is still some flow's.
fn near_miss(
    r: &mut AclRule,
    field: u8,
    rng: &mut Rng,
    taken: &mut impl FnMut(u8, u32, u32) -> bool,
) -> bool {
    match field {
        0 | 1 => {
            let (a, l) = if field == 0 {
                r.src.unwrap()
            } else {
                r.dst.unwrap()
            };
            // Flip one bit among the prefix's last 12 (near miss: the
            // leading bits stay the flow's) and draw the bits after it.
            // (Half the time anywhere in the prefix: where the traffic
            // fills every value of the last 12 bits, the miss lies above.)
            let depth = if rng.below(2) == 0 {
                (l as u64).min(12)
            } else {
                l as u64
            };
            let bit = l as u32 - 1 - rng.below(depth) as u32;
            let below = if bit == 31 { 0 } else { u32::MAX >> (bit + 1) };
            let v = ((a ^ (1 << (31 - bit))) & !below | rng.next() as u32 & below) & prefix_mask(l);
            let miss = !taken(field, prefix_mask(l), v);
            if field == 0 {
                r.src = Some((v, l));
            } else {
                r.dst = Some((v, l));
            }
            miss
        }
        _ => {
            let (v, m) = if field == 2 {
                r.sport.unwrap()
            } else {
                r.dport.unwrap()
            };
            // A port near a used one (low 10 bits changed), or any value
            // under the mask.
            let v = if m == 0xffff {
                v ^ (1 + rng.below(0x3ff) as u16)
            } else {
                (rng.next() as u16) & m
            };
            let miss = !taken(field, m as u32, v as u32);
            if field == 2 {
                r.sport = Some((v, m));
            } else {
                r.dport = Some((v, m));
            }
            miss
        }
    }
}

/// The rules as ovs-ofctl text, one a line.
pub fn acl_text(rules: &[AclRule]) -> String {
    rules.iter().map(|r| r.text() + "\n").collect()
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

    fn ofctl_parse(text: &str, of13: bool) -> String {
        let dir =
            std::env::temp_dir().join(format!("perf-rules-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flows.txt");
        std::fs::write(&f, text).unwrap();
        let mut c = Command::new("ovs-ofctl");
        if of13 {
            c.args(["-O", "OpenFlow13"]);
        }
        let out = c
            .arg("parse-flows")
            .arg(&f)
            .output()
            .expect("ovs-ofctl not runnable: install the Debian package openvswitch-common");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "ovs-ofctl parse-flows failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn vswitch_parses(text: &str) {
        for l in text.lines() {
            l.parse::<switch::rule::RuleSpec>()
                .unwrap_or_else(|e| panic!("vswitch rejects {l:?}: {e}"));
        }
    }

    /// Every pipeline rule parses in both: ovs-ofctl -O OpenFlow13 and
    /// the vswitch rule parser; both dialects differ only in port numbers.
    #[test]
    fn pipeline_parses_in_both() {
        let o = pipeline_set(100, OVS_PORTS);
        let v = pipeline_set(100, VSWITCH_PORTS);
        assert_eq!(o.lines().count(), 3 + 101 + 101);
        vswitch_parses(&v);
        vswitch_parses(&o);
        let text = ofctl_parse(&o, true);
        assert_eq!(text.matches("OFPT_FLOW_MOD").count(), 205, "{text}");
        assert_eq!(text.matches("goto_table:1").count(), 2);
        assert_eq!(text.matches("goto_table:2").count(), 1);
        assert_eq!(text.matches("actions=output:2").count(), 101);
        assert_eq!(
            o.replace("in_port=1,", "in_port=0,")
                .replace("output:2", "output:1"),
            v
        );
    }

    /// Churn rules: distinct, never matching 10.1.0.1, parse in both, and
    /// the strict-delete match is the add's match.
    #[test]
    fn churn_rules() {
        let mut seen = HashSet::new();
        let mut text = String::new();
        for s in 0..65536 {
            let (add, del) = churn_rule(s);
            assert!(add.starts_with(&del) && add.ends_with(",actions=drop"));
            assert!(seen.insert(del));
            if s < 30 {
                text.push_str(&add);
                text.push('\n');
            }
        }
        vswitch_parses(&text);
        let out = ofctl_parse(&text, false);
        assert!(
            out.contains("priority=200,ip,nw_dst=192.168.0.0 actions=drop"),
            "{out}"
        );
        for s in 0..3 {
            assert_eq!(
                churn_rule(s).1.split(',').next().unwrap(),
                format!("priority={}", CHURN_PRIORITIES[s as usize])
            );
        }
    }

    /// The ACL set: n rules, ≥ 20 mask shapes, no deny rule matches any
    /// flow, every allow rule matches some, every packet is forwarded, and
    /// every rule parses in both.
    #[test]
    fn acl_rules() {
        use crate::acl::flow;
        let flows = 10_000;
        let r = acl_rule_set(flows, 1000, OVS_PORTS).unwrap();
        assert_eq!(r.len(), 1000);
        assert_eq!(
            r,
            acl_rule_set(flows, 1000, OVS_PORTS).unwrap(),
            "deterministic"
        );
        let shapes: HashSet<_> = r.iter().map(|r| r.shape()).collect();
        assert!(shapes.len() >= 20, "{} shapes", shapes.len());
        let deny_shapes: HashSet<_> = r
            .iter()
            .filter(|r| r.output.is_none() && r.priority > 0)
            .map(|r| r.shape())
            .collect();
        assert!(deny_shapes.len() >= 20, "{} deny shapes", deny_shapes.len());
        let lens: HashSet<u8> = r.iter().filter_map(|r| r.src.map(|p| p.1)).collect();
        assert!(
            lens.contains(&8) && lens.contains(&32) && lens.len() >= 5,
            "{lens:?}"
        );
        let texts: HashSet<String> = r.iter().map(|r| r.text()).collect();
        assert_eq!(texts.len(), 1000, "distinct rules");
        let traffic: Vec<_> = (0..flows).map(flow).collect();
        let mut allow_hits = vec![0u32; r.len()];
        for f in &traffic {
            // The winner: highest priority among matches (no ties among matches).
            let m: Vec<usize> = (0..r.len())
                .filter(|&i| r[i].matches(f, OVS_PORTS.input))
                .collect();
            for &i in &m {
                assert!(
                    r[i].output.is_some() || r[i].priority == 0,
                    "deny rule {} matches {f:?}",
                    r[i].text()
                );
            }
            let w = m.iter().max_by_key(|&&i| r[i].priority).unwrap();
            assert_eq!(r[*w].output, Some(OVS_PORTS.output), "{f:?} forwarded");
            allow_hits[*w] += 1;
        }
        let allows: Vec<usize> = (0..r.len())
            .filter(|&i| r[i].output.is_some() && r[i].in_port.is_none())
            .collect();
        assert_eq!(allows.len(), 8);
        for i in allows {
            assert!(
                allow_hits[i] > 0,
                "allow rule {} matches no flow",
                r[i].text()
            );
        }
        let o = acl_text(&r);
        vswitch_parses(&o);
        vswitch_parses(&acl_text(
            &acl_rule_set(flows, 1000, VSWITCH_PORTS).unwrap(),
        ));
        let out = ofctl_parse(&o, false);
        assert_eq!(out.matches("FLOW_MOD").count(), 1000, "{out}");
        // Far misses: still 1000 distinct rules matching no flow.
        let far = acl_rule_set_with(flows, 1000, OVS_PORTS, false).unwrap();
        assert_eq!(
            far.iter().map(|r| r.text()).collect::<HashSet<_>>().len(),
            1000
        );
        for f in traffic.iter().step_by(7) {
            assert!(far
                .iter()
                .all(|r| !r.matches(f, 1) || r.output.is_some() || r.priority == 0));
        }
        vswitch_parses(&acl_text(&far));
        // Small flow counts still give distinct non-matching rules.
        for n in [1, 1000] {
            let r = acl_rule_set(n, 1000, OVS_PORTS).unwrap();
            let f = flow(0);
            assert!(r
                .iter()
                .all(|r| !r.matches(&f, 1) || r.output.is_some() || r.priority == 0));
        }
    }
}
