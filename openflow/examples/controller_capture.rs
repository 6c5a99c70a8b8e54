//! Capture tool, controller side: connects to a switch's OpenFlow management socket
//! (e.g. Open vSwitch's `unix:$OVS_RUNDIR/br0.mgmt`), sends a fixed script of requests
//! built by this crate and records every message the switch sends back, one hex line
//! each, for SECONDS seconds (default 4; flows in the script expire after 1 s, so
//! FLOW_REMOVED arrives; ports added meanwhile give PORT_STATUS).
//!
//! ```text
//! cargo run -p openflow --example controller_capture -- SOCKET OUT_FILE [SECONDS]
//! ```
//!
//! Only the first TABLE_FEATURES reply message is recorded (OVS sends 254 tables).

use openflow::action::{port_no, Action};
use openflow::flow_mod::{flags, FlowMod};
use openflow::group::{Bucket, GroupCommand, GroupMod, GroupType};
use openflow::hello::Hello;
use openflow::instruction::Instruction;
use openflow::multipart::{
    FlowStatsRequest, MultipartReplyBody, MultipartRequest, MultipartRequestBody as Q,
};
use openflow::oxm::{Field, OxmField};
use openflow::packet_out::PacketOut;
use openflow::role::{roles, Role};
use openflow::switch_config::SwitchConfig;
use openflow::{framing::Framer, Match, Message};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mp(body: Q) -> Message {
    Message::MultipartRequest(MultipartRequest { flags: 0, body })
}

fn all_flows() -> FlowStatsRequest {
    FlowStatsRequest {
        table_id: openflow::table_mod::OFPTT_ALL,
        out_port: port_no::ANY,
        out_group: openflow::flow_mod::OFPG_ANY,
        cookie: 0,
        cookie_mask: 0,
        matching: Match::new(),
    }
}

/// An ARP request from 02:00:00:00:00:01 (10.0.0.1) for 10.0.0.2.
pub fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f.resize(60, 0);
    f
}

fn script() -> Vec<Message> {
    let tcp_flow = FlowMod {
        cookie: 0x1001,
        table_id: 0,
        priority: 200,
        idle_timeout: 1,
        flags: flags::SEND_FLOW_REM,
        matching: Match::new()
            .with(OxmField::from_u64(Field::InPort, 1))
            .with(OxmField::from_u64(Field::EthType, 0x0800))
            .with(OxmField::from_u64(Field::IpProto, 6))
            .with(OxmField::from_u64(Field::TcpDst, 80)),
        instructions: vec![
            Instruction::ApplyActions(vec![Action::DecNwTtl, Action::output(2)]),
            Instruction::GotoTable(1),
        ],
        ..FlowMod::default()
    };
    let miss = FlowMod {
        cookie: 0x2002,
        priority: 0,
        instructions: vec![Instruction::ApplyActions(vec![Action::output(
            port_no::CONTROLLER,
        )])],
        ..FlowMod::default()
    };
    let group = GroupMod {
        command: GroupCommand::Add,
        group_type: GroupType::Select,
        group_id: 5,
        buckets: vec![
            Bucket {
                weight: 1,
                watch_port: port_no::ANY,
                watch_group: openflow::group::group_id::ANY,
                actions: vec![Action::output(1)],
            },
            Bucket {
                weight: 2,
                watch_port: port_no::ANY,
                watch_group: openflow::group::group_id::ANY,
                actions: vec![Action::output(2)],
            },
        ],
    };
    let bad_action = FlowMod {
        table_id: 0,
        priority: 5,
        instructions: vec![Instruction::ApplyActions(vec![Action::Unknown {
            action_type: 0x63,
            data: vec![0; 4],
        }])],
        ..FlowMod::default()
    };
    vec![
        Message::FeaturesRequest,
        Message::GetConfigRequest,
        Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: 0xffff,
        }),
        mp(Q::Desc),
        mp(Q::PortDesc),
        mp(Q::Table),
        mp(Q::PortStats {
            port_no: port_no::ANY,
        }),
        mp(Q::GroupFeatures),
        mp(Q::MeterFeatures),
        mp(Q::TableFeatures(vec![])),
        Message::FlowMod(tcp_flow),
        Message::FlowMod(miss),
        Message::GroupMod(group),
        Message::BarrierRequest,
        mp(Q::Flow(all_flows())),
        mp(Q::Aggregate(all_flows())),
        mp(Q::GroupDesc),
        mp(Q::Group {
            group_id: openflow::group::group_id::ALL,
        }),
        Message::RoleRequest(Role {
            role: roles::NOCHANGE,
            generation_id: 0,
        }),
        Message::GetAsyncRequest,
        Message::EchoRequest(b"capture".to_vec()),
        Message::Unknown {
            msg_type: 99,
            body: vec![],
        },
        Message::FlowMod(bad_action),
        Message::PacketOut(PacketOut {
            buffer_id: openflow::flow_mod::OFP_NO_BUFFER,
            in_port: port_no::CONTROLLER,
            actions: vec![Action::output(port_no::CONTROLLER)],
            data: arp_request(),
        }),
        Message::BarrierRequest,
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: controller_capture SOCKET OUT_FILE [SECONDS]");
        std::process::exit(2);
    }
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut s = UnixStream::connect(&args[1]).expect("connect");
    let mut out = std::fs::File::create(&args[2]).expect("create output");
    let mut sent = Message::Hello(Hello::ours()).to_vec(1).expect("hello");
    for (i, m) in script().iter().enumerate() {
        m.emit(i as u32 + 2, &mut sent).expect("emit");
    }
    s.write_all(&sent).expect("send");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 65536];
    let mut table_features = 0;
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => framer.push(&buf[..n]),
            Err(_) => continue,
        }
        while let Ok(Some(m)) = framer.next_message() {
            if let Ok((h, Message::EchoRequest(b))) = Message::parse(&m) {
                let _ = s.write_all(&Message::EchoReply(b).to_vec(h.xid).expect("echo"));
            }
            if let Ok((_, Message::MultipartReply(r))) = Message::parse(&m) {
                if matches!(r.body, MultipartReplyBody::TableFeatures(_)) {
                    table_features += 1;
                    if table_features > 1 {
                        continue;
                    }
                }
            }
            writeln!(out, "{}", hex(&m)).expect("write");
        }
    }
}
