//! What this crate emits, decoded by the reference peer: every message a switch sends
//! (and a few a controller sends) is built here, handed to `ovs-ofctl -O OpenFlow13
//! ofp-print HEX`, and its output must name the message and contain no decode error.
//! Skipped (with a message) when `ovs-ofctl` is not installed.

use openflow::action::{port_no, Action};
use openflow::async_config::AsyncConfig;
use openflow::error_msg::{self, ErrorMsg, ErrorType};
use openflow::experimenter::Experimenter;
use openflow::features::{capabilities, FeaturesReply};
use openflow::flow_mod::{FlowMod, FlowModCommand};
use openflow::flow_removed::{self, FlowRemoved};
use openflow::group::{Bucket, GroupType};
use openflow::hello::Hello;
use openflow::instruction::Instruction;
use openflow::multipart::{
    AggregateStats, Desc, FlowStats, GroupDesc, GroupFeatures, GroupStats, MeterFeatures,
    MultipartReply, MultipartReplyBody as R, TableFeatures, TableStats, MORE,
};
use openflow::nicira::{NxAction, OFPP_IN_PORT_16};
use openflow::nx_ct::{ct_flags, nat_flags, Ct, Nat, RECIRC_NONE};
use openflow::oxm::{Field, OxmField, OFPVID_PRESENT};
use openflow::packet_in::{self, PacketIn};
use openflow::port::{self, Port, PortStats, PortStatus};
use openflow::role::{roles, Role};
use openflow::switch_config::{flags as frag, SwitchConfig};
use openflow::table_features::{OxmId, TableFeatureProp, TlvId};
use openflow::table_mod::TableMod;
use openflow::{Match, Message};
use std::process::Command;

fn ovs_ofctl_present() -> bool {
    Command::new("ovs-ofctl").arg("--version").output().is_ok()
}

/// Decodes `msg` with ovs-ofctl; returns its output. Panics on any decode problem.
fn ofp_print(msg: &Message) -> String {
    let bytes = msg.to_vec(0x42).unwrap();
    assert_eq!(bytes.len(), msg.buffer_len());
    // What we emit must parse back to the same message.
    let (h, back) = Message::parse(&bytes).unwrap();
    assert_eq!((h.xid, &back), (0x42, msg));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "ofp-print", &hex])
        .output()
        .expect("run ovs-ofctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An error carries only the first 64 bytes of the offending request, as OVS's own
    // errors do; ofp-print notes that, which is not a decode problem.
    let checked: String = text
        .lines()
        .filter(|l| !l.starts_with("(***truncated to 64 bytes from"))
        .collect::<Vec<_>>()
        .join("\n");
    for bad in ["decode error", "***", "|WARN|", "|ERR|", "truncated"] {
        assert!(
            !checked.contains(bad),
            "ovs-ofctl found a problem ({bad}) in {msg:?}:\n{text}"
        );
    }
    assert!(out.status.success(), "ovs-ofctl failed:\n{text}");
    text
}

fn check(msg: Message, expect: &[&str]) {
    if !ovs_ofctl_present() {
        eprintln!("skipped: ovs-ofctl not installed");
        return;
    }
    let text = ofp_print(&msg);
    for e in expect {
        assert!(text.contains(e), "expected {e:?} in:\n{text}");
    }
}

fn a_match() -> Match {
    Match::new()
        .with(OxmField::from_u64(Field::InPort, 1))
        .with(OxmField::from_u64(Field::EthType, 0x0800))
        .with(OxmField::from_u64(
            Field::VlanVid,
            (OFPVID_PRESENT | 10) as u64,
        ))
        .with(OxmField::masked(
            Field::Ipv4Dst,
            &[10, 0, 0, 0],
            &[255, 0, 0, 0],
        ))
        .with(OxmField::from_u64(Field::IpProto, 6))
        .with(OxmField::from_u64(Field::TcpDst, 80))
}

fn instructions() -> Vec<Instruction> {
    vec![
        Instruction::ApplyActions(vec![
            Action::PopVlan,
            Action::SetField(OxmField::exact(Field::EthDst, &[2, 0, 0, 0, 0, 9])),
            Action::Nicira(NxAction::ResubmitTable {
                in_port: OFPP_IN_PORT_16,
                table: 3,
            }),
            Action::output(2),
        ]),
        Instruction::WriteMetadata {
            metadata: 1,
            mask: 0xff,
        },
        Instruction::GotoTable(1),
    ]
}

fn port(n: u32) -> Port {
    Port {
        port_no: n,
        hw_addr: [2, 0, 0, 0, 0, n as u8],
        name: format!("vport{n}"),
        config: 0,
        state: port::state::LIVE,
        curr: port::features::F_10GB_FD | port::features::FIBER,
        advertised: 0,
        supported: port::features::F_10GB_FD,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

fn table_props() -> Vec<TableFeatureProp> {
    use openflow::instruction::kind as ik;
    let ids = |v: &[u16]| v.iter().map(|&t| TlvId::new(t)).collect::<Vec<_>>();
    let oxms = |v: &[u32]| {
        v.iter()
            .map(|&header| OxmId {
                header,
                experimenter: None,
            })
            .collect::<Vec<_>>()
    };
    vec![
        TableFeatureProp::Instructions {
            miss: false,
            ids: ids(&[ik::GOTO_TABLE, ik::APPLY_ACTIONS, ik::WRITE_METADATA]),
        },
        TableFeatureProp::NextTables {
            miss: false,
            tables: vec![1, 2],
        },
        TableFeatureProp::WriteActions {
            miss: false,
            ids: ids(&[0]),
        },
        TableFeatureProp::ApplyActions {
            miss: false,
            ids: ids(&[0, 17, 18]),
        },
        // OXM headers of IN_PORT and ETH_TYPE.
        TableFeatureProp::Match(oxms(&[0x8000_0004, 0x8000_0a02])),
        TableFeatureProp::Wildcards(oxms(&[0x8000_0004])),
        TableFeatureProp::WriteSetfield {
            miss: false,
            oxms: vec![],
        },
        TableFeatureProp::ApplySetfield {
            miss: false,
            oxms: oxms(&[0x8000_0806]),
        },
    ]
}

fn reply(body: R) -> Message {
    Message::MultipartReply(MultipartReply { flags: 0, body })
}

#[test]
fn emit_hello_echo_barrier_features_config() {
    check(
        Message::Hello(Hello::ours()),
        &["OFPT_HELLO", "version bitmap: 0x04"],
    );
    check(Message::EchoReply(b"ping".to_vec()), &["OFPT_ECHO_REPLY"]);
    check(Message::BarrierReply, &["OFPT_BARRIER_REPLY"]);
    check(
        Message::FeaturesReply(FeaturesReply {
            datapath_id: 0x0000_0200_0000_0001,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: capabilities::FLOW_STATS
                | capabilities::TABLE_STATS
                | capabilities::PORT_STATS
                | capabilities::GROUP_STATS,
            reserved: 0,
        }),
        &[
            "OFPT_FEATURES_REPLY",
            "dpid:0000020000000001",
            "n_tables:254",
        ],
    );
    check(
        Message::GetConfigReply(SwitchConfig {
            flags: frag::FRAG_DROP,
            miss_send_len: 0xffff,
        }),
        &["OFPT_GET_CONFIG_REPLY", "frags=drop", "miss_send_len=65535"],
    );
    check(
        Message::SetConfig(SwitchConfig {
            flags: frag::FRAG_REASM,
            miss_send_len: 128,
        }),
        &["OFPT_SET_CONFIG", "frags=reassemble"],
    );
}

#[test]
fn emit_errors_with_offending_bytes() {
    let offending = FlowMod {
        matching: a_match(),
        instructions: instructions(),
        ..FlowMod::default()
    };
    let req = Message::FlowMod(offending).to_vec(7).unwrap();
    for (t, code, name) in [
        (
            ErrorType::HelloFailed,
            error_msg::hello_failed::INCOMPATIBLE,
            "OFPHFC_INCOMPATIBLE",
        ),
        (
            ErrorType::BadRequest,
            error_msg::bad_request::BAD_TYPE,
            "OFPBRC_BAD_TYPE",
        ),
        (
            ErrorType::BadRequest,
            error_msg::bad_request::BAD_MULTIPART,
            "OFPBRC_BAD_STAT",
        ),
        (
            ErrorType::BadAction,
            error_msg::bad_action::BAD_TYPE,
            "OFPBAC_BAD_TYPE",
        ),
        (
            ErrorType::BadAction,
            error_msg::bad_action::BAD_OUT_PORT,
            "OFPBAC_BAD_OUT_PORT",
        ),
        (
            ErrorType::BadInstruction,
            error_msg::bad_instruction::UNKNOWN_INST,
            "OFPBIC_UNKNOWN_INST",
        ),
        (
            ErrorType::BadMatch,
            error_msg::bad_match::BAD_FIELD,
            "OFPBMC_BAD_FIELD",
        ),
        (
            ErrorType::BadMatch,
            error_msg::bad_match::BAD_PREREQ,
            "OFPBMC_BAD_PREREQ",
        ),
        (
            ErrorType::FlowModFailed,
            error_msg::flow_mod_failed::TABLE_FULL,
            "OFPFMFC_TABLE_FULL",
        ),
        (
            ErrorType::FlowModFailed,
            error_msg::flow_mod_failed::OVERLAP,
            "OFPFMFC_OVERLAP",
        ),
        (
            ErrorType::GroupModFailed,
            error_msg::group_mod_failed::GROUP_EXISTS,
            "OFPGMFC_GROUP_EXISTS",
        ),
        (
            ErrorType::GroupModFailed,
            error_msg::group_mod_failed::UNKNOWN_GROUP,
            "OFPGMFC_UNKNOWN_GROUP",
        ),
        (
            ErrorType::PortModFailed,
            error_msg::port_mod_failed::BAD_PORT,
            "OFPPMFC_BAD_PORT",
        ),
        (
            ErrorType::TableModFailed,
            error_msg::table_mod_failed::BAD_TABLE,
            "OFPTMFC_BAD_TABLE",
        ),
        (
            ErrorType::SwitchConfigFailed,
            error_msg::switch_config_failed::BAD_FLAGS,
            "OFPSCFC_BAD_FLAGS",
        ),
        (
            ErrorType::RoleRequestFailed,
            error_msg::role_request_failed::STALE,
            "OFPRRFC_STALE",
        ),
        (
            ErrorType::MeterModFailed,
            error_msg::meter_mod_failed::UNKNOWN_METER,
            "OFPMMFC_UNKNOWN_METER",
        ),
    ] {
        let data: &[u8] = if t == ErrorType::HelloFailed {
            b"no common version"
        } else {
            &req
        };
        let e = ErrorMsg::new(t, code, data);
        assert!(e.data.len() <= error_msg::OFFENDING_BYTES);
        check(Message::Error(e), &["OFPT_ERROR", name]);
    }
}

#[test]
fn emit_packet_in_flow_removed_port_status() {
    let frame: Vec<u8> = (0..60u8).collect();
    check(
        Message::PacketIn(PacketIn {
            buffer_id: openflow::flow_mod::OFP_NO_BUFFER,
            total_len: 60,
            reason: packet_in::reason::ACTION,
            table_id: 3,
            cookie: 0xabcd,
            matching: Match::new().with(OxmField::from_u64(Field::InPort, 7)),
            data: frame,
        }),
        &[
            "OFPT_PACKET_IN",
            "total_len=60",
            "in_port=7",
            "table_id=3",
            "cookie=0xabcd",
        ],
    );
    check(
        Message::FlowRemoved(FlowRemoved {
            cookie: 0x99,
            priority: 100,
            reason: flow_removed::reason::IDLE_TIMEOUT,
            table_id: 2,
            duration_sec: 5,
            duration_nsec: 500_000_000,
            idle_timeout: 10,
            hard_timeout: 0,
            packet_count: 12,
            byte_count: 3400,
            matching: a_match(),
        }),
        &[
            "OFPT_FLOW_REMOVED",
            "reason=idle",
            "pkts12",
            "bytes3400",
            "tp_dst=80",
        ],
    );
    check(
        Message::PortStatus(PortStatus {
            reason: port::reason::ADD,
            desc: port(3),
        }),
        &[
            "OFPT_PORT_STATUS",
            "ADD",
            "3(vport3)",
            "addr:02:00:00:00:00:03",
        ],
    );
}

#[test]
fn emit_controller_messages() {
    check(
        Message::FlowMod(FlowMod {
            cookie: 0x55,
            table_id: 0,
            command: FlowModCommand::Add,
            priority: 300,
            matching: a_match(),
            instructions: instructions(),
            ..FlowMod::default()
        }),
        &[
            "OFPT_FLOW_MOD",
            "priority=300",
            "nw_dst=10.0.0.0/8",
            "dl_vlan=10",
            "resubmit(,3)",
            "goto_table:1",
        ],
    );
    check(
        Message::PacketOut(openflow::packet_out::PacketOut {
            buffer_id: openflow::flow_mod::OFP_NO_BUFFER,
            in_port: port_no::CONTROLLER,
            actions: vec![Action::output(port_no::TABLE)],
            data: vec![0xff; 60],
        }),
        &["OFPT_PACKET_OUT", "in_port=CONTROLLER", "actions=TABLE"],
    );
    check(
        Message::RoleRequest(Role {
            role: roles::MASTER,
            generation_id: 3,
        }),
        &["OFPT_ROLE_REQUEST", "role=primary", "generation_id=3"],
    );
    check(
        Message::RoleReply(Role {
            role: roles::SLAVE,
            generation_id: 3,
        }),
        &["OFPT_ROLE_REPLY", "role=secondary"],
    );
    let async_cfg = AsyncConfig {
        packet_in_mask: [0x7, 0x0],
        port_status_mask: [0x7, 0x7],
        flow_removed_mask: [0xf, 0x0],
    };
    check(Message::GetAsyncRequest, &["OFPT_GET_ASYNC_REQUEST"]);
    check(
        Message::GetAsyncReply(async_cfg),
        &["OFPT_GET_ASYNC_REPLY", "PACKET_IN"],
    );
    check(Message::SetAsync(async_cfg), &["OFPT_SET_ASYNC"]);
    check(
        Message::MeterMod(openflow::meter_mod::MeterMod {
            command: openflow::meter_mod::command::ADD,
            flags: openflow::meter_mod::flags::KBPS | openflow::meter_mod::flags::BURST,
            meter_id: 3,
            bands: vec![openflow::meter_mod::Band {
                kind: openflow::meter_mod::BandKind::Drop,
                rate: 10_000,
                burst_size: 1_000,
            }],
        }),
        &[
            "OFPT_METER_MOD",
            "meter=3",
            "kbps",
            "type=drop rate=10000 burst_size=1000",
        ],
    );
    check(
        Message::TableMod(TableMod {
            table_id: 1,
            config: 0,
        }),
        &["OFPT_TABLE_MOD", "table_id=1"],
    );
    check(
        Message::Experimenter(Experimenter {
            experimenter: 0x0000_2320,
            // NXT_SET_PACKET_IN_FORMAT, format 0 (standard).
            exp_type: 16,
            data: vec![0; 4],
        }),
        &["NXT_SET_PACKET_IN_FORMAT"],
    );
}

#[test]
fn emit_multipart_replies() {
    check(
        reply(R::Desc(Desc {
            mfr_desc: "vswitch project".into(),
            hw_desc: "DPDK".into(),
            sw_desc: "vswitch 0.1".into(),
            serial_num: "none".into(),
            dp_desc: "br0".into(),
        })),
        &[
            "OFPST_DESC reply",
            "Manufacturer: vswitch project",
            "DP Description: br0",
        ],
    );
    check(
        reply(R::Flow(vec![FlowStats {
            table_id: 0,
            duration_sec: 3,
            duration_nsec: 0,
            priority: 300,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: 0x55,
            packet_count: 10,
            byte_count: 640,
            matching: a_match(),
            instructions: instructions(),
        }])),
        &[
            "OFPST_FLOW reply",
            "n_packets=10",
            "n_bytes=640",
            "priority=300",
            "goto_table:1",
        ],
    );
    // A ct firewall flow and a SNAT flow built here, as OVS prints them.
    let ct = |flags, zone, recirc_table, actions| {
        Action::Nicira(NxAction::Ct(Ct {
            flags,
            zone_src: 0,
            zone,
            recirc_table,
            alg: 0,
            actions,
        }))
    };
    let snat = Action::Nicira(NxAction::Nat(Nat {
        flags: nat_flags::SRC | nat_flags::PROTO_HASH,
        ipv4_min: Some([10, 0, 0, 1].into()),
        ipv4_max: Some([10, 0, 0, 9].into()),
        proto_min: Some(1024),
        proto_max: Some(2047),
        ..Nat::default()
    }));
    let flow = |table_id, matching, actions| FlowStats {
        table_id,
        duration_sec: 1,
        duration_nsec: 0,
        priority: 100,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: 0,
        packet_count: 0,
        byte_count: 0,
        matching,
        instructions: vec![Instruction::ApplyActions(actions)],
    };
    check(
        reply(R::Flow(vec![
            flow(
                0,
                Match::new()
                    .with(OxmField::from_u64(Field::EthType, 0x0800))
                    .with(OxmField::masked(
                        Field::NxCtState,
                        &[0, 0, 0, 0],
                        &[0, 0, 0, 0x20],
                    )),
                vec![ct(0, 5, 1, vec![])],
            ),
            flow(
                1,
                Match::new()
                    .with(OxmField::from_u64(Field::EthType, 0x0800))
                    .with(OxmField::masked(
                        Field::NxCtState,
                        &[0, 0, 0, 0x21],
                        &[0, 0, 0, 0x21],
                    ))
                    .with(OxmField::from_u64(Field::NxCtZone, 5))
                    .with(OxmField::from_u64(Field::NxCtNwProto, 6))
                    .with(OxmField::masked(
                        Field::NxCtNwDst,
                        &[10, 0, 0, 0],
                        &[255, 0, 0, 0],
                    ))
                    .with(OxmField::from_u64(Field::NxCtTpDst, 80)),
                vec![
                    ct(
                        ct_flags::COMMIT,
                        5,
                        RECIRC_NONE,
                        vec![
                            snat,
                            Action::SetField(OxmField::exact(Field::NxCtMark, &[0, 0, 0, 7])),
                            Action::Nicira(NxAction::RegLoad {
                                ofs_nbits: openflow::nicira::reg_load_ofs_nbits(64, 8),
                                dst: Field::NxCtLabel.nxm_header().unwrap(),
                                value: 0x3,
                            }),
                        ],
                    ),
                    Action::Nicira(NxAction::CtClear),
                    Action::output(2),
                ],
            ),
        ])),
        &[
            "ct_state=-trk,ip actions=ct(table=1,zone=5)",
            "ct_state=+new+trk,ct_zone=5,ct_nw_dst=10.0.0.0/8,ct_nw_proto=6,ct_tp_dst=80,ip",
            "actions=ct(commit,zone=5,nat(src=10.0.0.1-10.0.0.9:1024-2047,hash),\
             exec(set_field:0x7->ct_mark,load:0x3->NXM_NX_CT_LABEL[64..71])),ct_clear,output:2",
        ],
    );
    check(
        reply(R::Aggregate(AggregateStats {
            packet_count: 10,
            byte_count: 640,
            flow_count: 1,
        })),
        &["OFPST_AGGREGATE reply", "flow_count=1"],
    );
    check(
        reply(R::Table(vec![TableStats {
            table_id: 0,
            active_count: 4,
            lookup_count: 100,
            matched_count: 90,
        }])),
        &["OFPST_TABLE reply", "active=4", "lookup=100", "matched=90"],
    );
    check(
        reply(R::PortStats(vec![PortStats {
            port_no: 1,
            rx_packets: 5,
            tx_packets: 6,
            rx_bytes: 500,
            tx_bytes: 600,
            duration_sec: 9,
            ..PortStats::default()
        }])),
        &[
            "OFPST_PORT reply",
            "port  1: rx pkts=5, bytes=500",
            "tx pkts=6, bytes=600",
        ],
    );
    check(
        reply(R::PortDesc(vec![port(1), port(2)])),
        &["OFPST_PORT_DESC reply", "1(vport1)", "2(vport2)", "10GB-FD"],
    );
    check(
        reply(R::Group(vec![GroupStats {
            group_id: 1,
            ref_count: 2,
            packet_count: 3,
            byte_count: 4,
            duration_sec: 5,
            duration_nsec: 0,
            bucket_stats: vec![(1, 2), (2, 2)],
        }])),
        &[
            "OFPST_GROUP reply",
            "group_id=1",
            "ref_count=2",
            "bucket0:packet_count=1",
        ],
    );
    check(
        reply(R::GroupDesc(vec![
            GroupDesc {
                group_type: GroupType::Select,
                group_id: 2,
                buckets: vec![Bucket {
                    weight: 10,
                    watch_port: port_no::ANY,
                    watch_group: openflow::group::group_id::ANY,
                    actions: vec![Action::output(1)],
                }],
            },
            GroupDesc {
                group_type: GroupType::FastFailover,
                group_id: 4,
                buckets: vec![Bucket {
                    weight: 0,
                    watch_port: 1,
                    watch_group: openflow::group::group_id::ANY,
                    actions: vec![Action::output(1)],
                }],
            },
        ])),
        &[
            "OFPST_GROUP_DESC reply",
            "group_id=2,type=select",
            "weight:10",
            "type=ff",
            "watch_port:1",
        ],
    );
    check(
        reply(R::GroupFeatures(GroupFeatures {
            types: 0xf,
            capabilities: 0x1,
            max_groups: [64, 64, 64, 64],
            actions: [1, 1, 1, 1],
        })),
        &["OFPST_GROUP_FEATURES reply", "max_groups=0x40"],
    );
    check(
        reply(R::MeterFeatures(MeterFeatures::default())),
        &["OFPST_METER_FEATURES reply", "max_meter:0"],
    );
    check(
        reply(R::TableFeatures(vec![TableFeatures {
            table_id: 0,
            name: "classifier".into(),
            metadata_match: u64::MAX,
            metadata_write: u64::MAX,
            config: 0,
            max_entries: 1_000_000,
            properties: table_props(),
        }])),
        &[
            "OFPST_TABLE_FEATURES reply",
            "classifier",
            "max_entries=1000000",
        ],
    );
    let mut more = MultipartReply {
        flags: MORE,
        body: R::PortDesc(vec![port(1)]),
    };
    check(Message::MultipartReply(more.clone()), &["flags=[more]"]);
    more.flags = 0;
    check(Message::MultipartReply(more), &["OFPST_PORT_DESC reply"]);
}
