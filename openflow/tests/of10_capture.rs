//! Every OpenFlow 1.0 message in `captures/of10_session.txt` (what the real
//! `ovs-ofctl` 3.1 without `-O` sent to a real OVS 3.1 bridge, and what that
//! bridge answered: `show`, `add-flow` with OpenFlow 1.0 and NXM matches,
//! `mod-flows`, `del-flows`, `dump-flows`, `dump-aggregate`, `dump-ports`,
//! `dump-tables`, `dump-desc`, `get-frags`) parses and re-emits byte for
//! byte, and the flows and replies decode to what `ovs-ofctl` was given and
//! printed.

use openflow::of10::action::{port_no, Action10};
use openflow::of10::message::Message10;
use openflow::of10::nx::{flow_format, Vendor};
use openflow::of10::nxm;
use openflow::of10::stats::{StatsReplyBody10, StatsRequest10};
use openflow::oxm::{Field, OxmField};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// (session, from the client, bytes) of every message.
fn messages() -> Vec<(String, bool, Vec<u8>)> {
    let text = include_str!("captures/of10_session.txt");
    text.lines()
        .filter(|l| !l.starts_with("==") && !l.is_empty())
        .map(|l| {
            let mut it = l.split(' ');
            let session = it.next().unwrap().to_string();
            let client = it.next().unwrap() == "C>S";
            (session, client, unhex(it.next().unwrap()))
        })
        .collect()
}

fn parse(b: &[u8]) -> Message10 {
    let (h, m) = Message10::parse(b).unwrap_or_else(|e| panic!("{e}: {}", hex(b)));
    let again = m.to_vec(h.xid).unwrap();
    if b[0] == 1 {
        assert_eq!(again, b, "{m:?}");
    }
    m
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_message_parses_and_re_emits() {
    let all = messages();
    assert!(all.len() > 100, "{}", all.len());
    for (_, _, b) in &all {
        parse(b);
        for n in 0..b.len() {
            // Every truncation is an error, never a panic.
            let mut t = b[..n].to_vec();
            if t.len() >= 4 {
                t[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            }
            let _ = Message10::parse(&t);
        }
    }
}

#[test]
fn deconstruct_the_flow_mods() {
    let mods: Vec<Message10> = messages()
        .iter()
        .filter(|(_, c, b)| *c && (b[1] == 14 || (b[1] == 4 && b[15] == 13)))
        .map(|(_, _, b)| parse(b))
        .collect();
    // add-flow priority=100,in_port=1,ip,nw_dst=10.0.0.2,actions=output:2
    let Message10::FlowMod(f) = &mods[0] else {
        panic!("{:?}", mods[0])
    };
    assert_eq!(f.fields.priority, 100);
    assert_eq!(f.fields.table_and_command(false), (None, 0));
    assert_eq!(
        f.fields.actions,
        vec![Action10::Output {
            port: 2,
            max_len: 0
        }]
    );
    assert_eq!(f.matching.to_oxm().len(), 3);
    // table=1,priority=1,actions=drop: the table in command's high byte.
    let t1 = mods
        .iter()
        .find_map(|m| match m {
            Message10::FlowMod(f) if f.fields.command == 0x0100 => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(t1.fields.table_and_command(true), (Some(1), 0));
    assert!(t1.fields.actions.is_empty());
    // table=2,cookie=0x1234,idle_timeout=60,priority=7,ipv6,ipv6_dst=fe80::1,
    // actions=dec_ttl,output:2 as NXT_FLOW_MOD.
    let nx = mods
        .iter()
        .find_map(|m| match m {
            Message10::Vendor(Vendor::FlowMod(f)) if f.fields.cookie == 0x1234 => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(nx.fields.table_and_command(true), (Some(2), 0));
    assert_eq!((nx.fields.idle_timeout, nx.fields.priority), (60, 7));
    let mut dst = [0u8; 16];
    dst[0] = 0xfe;
    dst[1] = 0x80;
    dst[15] = 1;
    assert_eq!(
        nxm::list_to_oxm(&nx.matching).unwrap(),
        vec![
            OxmField::exact(Field::EthType, &[0x86, 0xdd]),
            OxmField::exact(Field::Ipv6Dst, &dst),
        ]
    );
    assert_eq!(nx.fields.actions.len(), 2);
    // FLOOD,IN_PORT,LOCAL,CONTROLLER:100,ALL
    let reserved = mods
        .iter()
        .find_map(|m| match m {
            Message10::FlowMod(f) if f.fields.priority == 9 => Some(f),
            _ => None,
        })
        .unwrap();
    let ports: Vec<u16> = reserved
        .fields
        .actions
        .iter()
        .map(|a| match a {
            Action10::Output { port, .. } => *port,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ports,
        [
            port_no::FLOOD,
            port_no::IN_PORT,
            port_no::LOCAL,
            port_no::CONTROLLER,
            port_no::ALL
        ]
    );
}

#[test]
fn deconstruct_the_dumps() {
    let all = messages();
    let msgs: Vec<Message10> = all.iter().map(|(_, _, b)| parse(b)).collect();
    assert!(msgs.contains(&Message10::Vendor(Vendor::SetFlowFormat(flow_format::NXM))));
    assert!(msgs.contains(&Message10::Vendor(Vendor::FlowModTableId(true))));
    assert!(msgs
        .iter()
        .any(|m| matches!(m, Message10::StatsRequest(StatsRequest10::Port(0xffff)))));
    // The NXST_FLOW reply to `dump-flows br0 table=2,ipv6`.
    let flows = msgs
        .iter()
        .find_map(|m| match m {
            Message10::StatsReply(r) => match &r.body {
                StatsReplyBody10::NxFlow(f) if f.len() == 1 && f[0].table_id == 2 => Some(f),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    let f = &flows[0];
    assert_eq!((f.cookie, f.priority, f.idle_timeout), (0x1234, 7, 60));
    assert_eq!(f.idle_age, 1, "idle_age is sent plus one");
    // The show reply: three ports, LOCAL among them.
    let features = msgs
        .iter()
        .find_map(|m| match m {
            Message10::FeaturesReply(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(features.ports.len(), 3);
    assert!(features
        .ports
        .iter()
        .any(|p| p.port_no == 0xfffe && p.name == "br0"));
    assert_eq!(features.n_tables, 254);
    let tables = msgs
        .iter()
        .find_map(|m| match m {
            Message10::StatsReply(r) => match &r.body {
                StatsReplyBody10::Table(t) => Some(t),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(tables.len(), 254);
    assert_eq!(tables[0].max_entries, 1_000_000);
}
