//! `ovs-ofctl -O OpenFlow13` against a small switch built on this crate (a unix socket
//! listener; one thread per connection): the whole conversation — framing, HELLO
//! negotiation, requests, replies with REPLY_MORE — must work and ovs-ofctl must print
//! what the switch said. Skipped (with a message) when `ovs-ofctl` is not installed.

use openflow::action::Action;
use openflow::features::FeaturesReply;
use openflow::flow_mod::FlowMod;
use openflow::framing::Framer;
use openflow::group::{Bucket, GroupType};
use openflow::hello::{self, Hello};
use openflow::instruction::Instruction;
use openflow::multipart::{
    AggregateStats, Desc, FlowStats, GroupDesc, MultipartReply, MultipartReplyBody as R,
    MultipartRequestBody as Q, TableStats, MORE,
};
use openflow::oxm::{Field, OxmField};
use openflow::port::{Port, PortStats};
use openflow::switch_config::SwitchConfig;
use openflow::table_features::{TableFeatureProp, TableFeatures};
use openflow::{Match, Message};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// What the switch received, shared with the test.
type Log = Arc<Mutex<Vec<Message>>>;

fn port(n: u32) -> Port {
    Port {
        port_no: n,
        hw_addr: [2, 0, 0, 0, 0, n as u8],
        name: format!("eth{n}"),
        state: openflow::port::state::LIVE,
        curr_speed: 25_000_000,
        max_speed: 25_000_000,
        ..Port::default()
    }
}

fn a_flow() -> FlowStats {
    FlowStats {
        table_id: 0,
        duration_sec: 12,
        duration_nsec: 0,
        priority: 100,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: 0x7,
        packet_count: 42,
        byte_count: 4200,
        matching: Match::new()
            .with(OxmField::from_u64(Field::InPort, 1))
            .with(OxmField::from_u64(Field::EthType, 0x0800))
            .with(OxmField::exact(Field::Ipv4Dst, &[10, 1, 2, 3])),
        instructions: vec![Instruction::ApplyActions(vec![
            Action::DecNwTtl,
            Action::output(2),
        ])],
    }
}

/// The switch's answers; multipart replies are split in two messages (REPLY_MORE)
/// where the body is a list.
fn answer(msg: Message) -> Vec<Message> {
    let one = |body| vec![Message::MultipartReply(MultipartReply { flags: 0, body })];
    match msg {
        Message::EchoRequest(b) => vec![Message::EchoReply(b)],
        Message::FeaturesRequest => vec![Message::FeaturesReply(FeaturesReply {
            datapath_id: 0xabcdef,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0xf,
            reserved: 0,
        })],
        Message::GetConfigRequest => vec![Message::GetConfigReply(SwitchConfig::default())],
        Message::BarrierRequest => vec![Message::BarrierReply],
        Message::MultipartRequest(r) => match r.body {
            Q::Desc => one(R::Desc(Desc {
                mfr_desc: "vswitch".into(),
                hw_desc: "DPDK".into(),
                sw_desc: "live test".into(),
                serial_num: "1".into(),
                dp_desc: "br-live".into(),
            })),
            Q::PortDesc => vec![
                Message::MultipartReply(MultipartReply {
                    flags: MORE,
                    body: R::PortDesc(vec![port(1)]),
                }),
                Message::MultipartReply(MultipartReply {
                    flags: 0,
                    body: R::PortDesc(vec![port(2)]),
                }),
            ],
            Q::Flow(_) => vec![
                Message::MultipartReply(MultipartReply {
                    flags: MORE,
                    body: R::Flow(vec![a_flow()]),
                }),
                Message::MultipartReply(MultipartReply {
                    flags: 0,
                    body: R::Flow(vec![FlowStats {
                        table_id: 1,
                        priority: 0,
                        matching: Match::new(),
                        instructions: vec![],
                        ..a_flow()
                    }]),
                }),
            ],
            Q::Aggregate(_) => one(R::Aggregate(AggregateStats {
                packet_count: 42,
                byte_count: 4200,
                flow_count: 2,
            })),
            Q::Table => one(R::Table(vec![TableStats {
                table_id: 0,
                active_count: 1,
                lookup_count: 50,
                matched_count: 42,
            }])),
            Q::PortStats { .. } => one(R::PortStats(vec![PortStats {
                port_no: 1,
                rx_packets: 11,
                tx_packets: 22,
                ..PortStats::default()
            }])),
            Q::GroupDesc => one(R::GroupDesc(vec![GroupDesc {
                group_type: GroupType::Select,
                group_id: 9,
                buckets: vec![Bucket {
                    weight: 5,
                    watch_port: u32::MAX,
                    watch_group: u32::MAX,
                    actions: vec![Action::output(1)],
                }],
            }])),
            Q::TableFeatures(_) => one(R::TableFeatures(vec![TableFeatures {
                table_id: 0,
                name: "classifier".into(),
                max_entries: 1000,
                properties: TableFeatureProp::required_empty(),
                ..TableFeatures::default()
            }])),
            _ => vec![],
        },
        _ => vec![],
    }
}

fn serve(mut s: UnixStream, log: Log) {
    let _ = s.write_all(
        &Message::Hello(Hello::with_versions(&[1, 4]))
            .to_vec(0)
            .unwrap(),
    );
    let mut framer = Framer::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Ok(Some(bytes)) = framer.next_message() {
            let (h, m) = Message::parse(&bytes).expect("ovs-ofctl sent a message we cannot parse");
            if let Message::Hello(peer) = &m {
                assert_eq!(hello::negotiate(&[1, 4], h.version, peer), Some(4));
            }
            log.lock().unwrap().push(m.clone());
            for r in answer(m) {
                if s.write_all(&r.to_vec(h.xid).unwrap()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs one ovs-ofctl command against a fresh switch; returns its output and what the
/// switch received, or `None` when ovs-ofctl is not installed.
fn ofctl(args: &[&str]) -> Option<(String, Vec<Message>)> {
    if Command::new("ovs-ofctl").arg("--version").output().is_err() {
        eprintln!("skipped: ovs-ofctl not installed");
        return None;
    }
    // Short, unique paths: a unix socket path must stay under 108 bytes.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::PathBuf::from(format!("/tmp/of-live-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let log: Log = Arc::default();
    let l2 = log.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let l3 = l2.clone();
            std::thread::spawn(move || serve(s, l3));
        }
    });
    let target = format!("unix:{}", path.display());
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "ovs-ofctl", "-O", "OpenFlow13", args[0], &target]);
    cmd.args(&args[1..]);
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "ovs-ofctl {args:?} failed:\n{text}");
    for bad in ["decode error", "***", "|WARN|", "|ERR|"] {
        assert!(
            !text.contains(bad),
            "ovs-ofctl {args:?} reported {bad}:\n{text}"
        );
    }
    let got = log.lock().unwrap().clone();
    Some((text, got))
}

#[test]
fn live_show_and_dump_desc() {
    let Some((text, _)) = ofctl(&["show"]) else {
        return;
    };
    assert!(text.contains("dpid:0000000000abcdef"), "{text}");
    assert!(text.contains("1(eth1): addr:02:00:00:00:00:01"), "{text}");
    assert!(text.contains("2(eth2)"), "{text}");
    let Some((text, _)) = ofctl(&["dump-desc"]) else {
        return;
    };
    assert!(text.contains("DP Description: br-live"), "{text}");
}

#[test]
fn live_dump_flows_with_reply_more() {
    let Some((text, got)) = ofctl(&["dump-flows"]) else {
        return;
    };
    assert!(
        text.contains("cookie=0x7")
            && text.contains("n_packets=42")
            && text.contains("n_bytes=4200"),
        "{text}"
    );
    assert!(
        text.contains("priority=100,ip,in_port=1,nw_dst=10.1.2.3 actions=dec_ttl,output:2"),
        "{text}"
    );
    assert!(text.contains("table=1"), "{text}");
    assert!(got
        .iter()
        .any(|m| matches!(m, Message::MultipartRequest(r) if matches!(r.body, Q::Flow(_)))));
    let Some((text, _)) = ofctl(&["dump-aggregate"]) else {
        return;
    };
    assert!(text.contains("flow_count=2"), "{text}");
}

#[test]
fn live_dump_tables_ports_groups() {
    let Some((text, _)) = ofctl(&["dump-tables"]) else {
        return;
    };
    assert!(text.contains("active=1, lookup=50, matched=42"), "{text}");
    let Some((text, _)) = ofctl(&["dump-ports", "1"]) else {
        return;
    };
    assert!(
        text.contains("rx pkts=11") && text.contains("tx pkts=22"),
        "{text}"
    );
    let Some((text, _)) = ofctl(&["dump-groups"]) else {
        return;
    };
    eprintln!("{text}");
    assert!(text.contains("group_id=9,type=select"), "{text}");
    assert!(text.contains("weight:5,actions=output:1"), "{text}");
}

#[test]
fn live_add_flow_reaches_the_switch_typed() {
    let Some((_, got)) = ofctl(&[
        "add-flow",
        "table=0,priority=7,tcp,nw_dst=10.0.0.0/8,tp_dst=443,actions=goto_table:3",
    ]) else {
        return;
    };
    let f: Vec<&FlowMod> = got
        .iter()
        .filter_map(|m| match m {
            Message::FlowMod(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].priority, 7);
    assert_eq!(f[0].matching.exact_u64(Field::TcpDst), Some(443));
    assert_eq!(f[0].instructions, vec![Instruction::GotoTable(3)]);
    // The flow-mod is followed by a barrier, which the switch answered.
    assert!(matches!(got.last(), Some(Message::BarrierRequest)));
}
