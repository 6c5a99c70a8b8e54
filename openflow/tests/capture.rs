//! Messages captured from the real `ovs-ofctl -O OpenFlow13` (OVS 3.1) talking to the
//! capture tool (`examples/capture.rs`; commands in `captures/README.md`), and what a
//! real OVS 3.1 switch sent to `examples/controller_capture.rs` (`ovs_switch.hex`). Each test
//! deconstructs the real bytes and checks the fields `ovs-ofctl ofp-print` shows; one
//! test re-emits every captured message and expects the identical bytes back.

use openflow::action::{port_no, Action};
use openflow::flow_mod::{flags, FlowMod, FlowModCommand};
use openflow::group::{GroupCommand, GroupMod, GroupType};
use openflow::instruction::Instruction;
use openflow::multipart::{MultipartRequest, MultipartRequestBody};
use openflow::nicira::{NxAction, OFPP_IN_PORT_16};
use openflow::nx_ct::{ct_flags, nat_flags, Nat, RECIRC_NONE};
use openflow::oxm::{Field, OFPVID_PRESENT};
use openflow::{Message, MsgType};
use std::net::{Ipv4Addr, Ipv6Addr};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every message of a capture, in order.
fn capture(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/captures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| hex(l.trim()))
        .collect()
}

/// Parses a message, checks it re-emits byte for byte.
fn parse_and_reemit(bytes: &[u8]) -> Message {
    let (h, m) = Message::parse(bytes).unwrap_or_else(|e| panic!("{e}: {bytes:02x?}"));
    assert_eq!(h.version, 4);
    assert_eq!(m.buffer_len(), bytes.len(), "buffer_len of {m:?}");
    let out = m.to_vec(h.xid).unwrap();
    assert_eq!(out, bytes, "re-emitted message differs for {m:?}");
    m
}

/// The messages of type `t` in a capture, parsed and re-emitted.
fn of_type(name: &str, t: MsgType) -> Vec<Message> {
    capture(name)
        .iter()
        .filter(|b| b[1] == t as u8)
        .map(|b| parse_and_reemit(b))
        .collect()
}

fn flow_mods(name: &str) -> Vec<FlowMod> {
    of_type(name, MsgType::FlowMod)
        .into_iter()
        .map(|m| match m {
            Message::FlowMod(f) => f,
            m => panic!("not a flow mod: {m:?}"),
        })
        .collect()
}

fn multipart_request(name: &str) -> Vec<MultipartRequest> {
    of_type(name, MsgType::MultipartRequest)
        .into_iter()
        .map(|m| match m {
            Message::MultipartRequest(r) => r,
            m => panic!("not a multipart request: {m:?}"),
        })
        .collect()
}

const ALL: &[&str] = &[
    "add_flows",
    "add_ct_flows",
    "add_groups",
    "del_flows_all",
    "del_flows_cookie",
    "del_flows_strict",
    "del_groups",
    "dump_aggregate",
    "dump_desc",
    "dump_flows",
    "dump_flows_match",
    "dump_group_features",
    "dump_group_stats",
    "dump_groups",
    "dump_ports",
    "dump_ports_desc",
    "dump_ports_one",
    "dump_table_features",
    "dump_tables",
    "get_frags",
    "meter_features",
    "mod_flows",
    "mod_flows_strict",
    "mod_port",
    "packet_out",
    "set_frags",
    "show",
    "add_meter",
    "add_meter_remark",
    "del_meter",
    "dump_meters",
    "ovs_switch",
];

#[test]
fn emit_every_capture_byte_exact() {
    let mut n = 0;
    for name in ALL {
        for m in capture(name) {
            let parsed = parse_and_reemit(&m);
            assert!(
                !matches!(parsed, Message::Unknown { .. }),
                "{name}: unknown message {parsed:?}"
            );
            n += 1;
        }
    }
    assert!(n > 100, "only {n} messages");
}

fn apply(f: &FlowMod) -> &[Action] {
    match f.instructions.first() {
        Some(Instruction::ApplyActions(a)) => a,
        i => panic!("first instruction is not apply_actions: {i:?}"),
    }
}

fn ct(a: &Action) -> &openflow::nicira::Ct {
    match a {
        Action::Nicira(NxAction::Ct(c)) => c,
        a => panic!("not ct: {a:?}"),
    }
}

#[test]
fn deconstruct_hello() {
    let first = &capture("add_flows")[0];
    let Message::Hello(h) = parse_and_reemit(first) else {
        panic!("not a hello")
    };
    assert_eq!(h.version_bitmap(), Some(&[0x10u32][..]));
    assert_eq!(openflow::hello::negotiate(&[4], first[0], &h), Some(4));
}

#[test]
fn deconstruct_flow_mod_l2_and_reserved_ports() {
    let f = &flow_mods("add_flows")[0];
    assert_eq!(f.command, FlowModCommand::Add);
    assert_eq!((f.table_id, f.priority), (0, 100));
    assert_eq!(f.buffer_id, openflow::flow_mod::OFP_NO_BUFFER);
    let m = &f.matching;
    assert_eq!(m.in_port(), Some(1));
    assert_eq!(m.eth_src(), Some(([0, 0x11, 0x22, 0x33, 0x44, 0x55], None)));
    assert_eq!(
        m.eth_dst(),
        Some(([1, 0, 0, 0, 0, 0], Some([1, 0, 0, 0, 0, 0])))
    );
    assert_eq!(m.eth_type(), Some(0x0800));
    let vid = openflow::OxmField::exact(Field::VlanVid, &(OFPVID_PRESENT | 100).to_be_bytes());
    assert_eq!(
        apply(f),
        &[
            Action::PushVlan(0x8100),
            Action::SetField(vid),
            Action::output(2),
            Action::output(port_no::NORMAL),
            Action::output(port_no::FLOOD),
            Action::Output {
                port: port_no::CONTROLLER,
                max_len: 128
            },
            Action::output(port_no::LOCAL),
            Action::output(port_no::IN_PORT),
        ]
    );
}

#[test]
fn deconstruct_flow_mod_tcp_with_flags_and_instructions() {
    let f = &flow_mods("add_flows")[1];
    assert_eq!((f.table_id, f.priority, f.cookie), (1, 200, 0x1234));
    assert_eq!((f.idle_timeout, f.hard_timeout), (30, 60));
    assert_eq!(
        f.flags,
        flags::SEND_FLOW_REM
            | flags::CHECK_OVERLAP
            | flags::RESET_COUNTS
            | flags::NO_PKT_COUNTS
            | flags::NO_BYT_COUNTS
    );
    let m = &f.matching;
    assert_eq!(m.vlan_vid(), Some((OFPVID_PRESENT | 5, None)));
    assert_eq!(m.exact_u64(Field::VlanPcp), Some(3));
    assert_eq!(
        m.ipv4(Field::Ipv4Src),
        Some((
            Ipv4Addr::new(10, 0, 0, 0),
            Some(Ipv4Addr::new(255, 0, 0, 0))
        ))
    );
    assert_eq!(
        m.ipv4(Field::Ipv4Dst),
        Some((Ipv4Addr::new(192, 168, 1, 1), None))
    );
    assert_eq!(m.exact_u64(Field::IpDscp), Some(8));
    assert_eq!(m.exact_u64(Field::IpEcn), Some(1));
    // nw_ttl has no OXM in 1.3: ovs-ofctl sends NXM_NX_IP_TTL.
    assert_eq!(m.exact_u64(Field::NxIpTtl), Some(64));
    assert_eq!(m.ip_proto(), Some(6));
    assert_eq!(m.exact_u64(Field::TcpSrc), Some(1000));
    assert_eq!(m.exact_u64(Field::TcpDst), Some(80));
    // tcp_flags=+syn-ack: the ONF experimenter OXM (not NXM_NX_TCP_FLAGS).
    assert!(m.get(Field::OnfTcpFlags).is_some());
    assert_eq!(m.tcp_flags(), Some((0x002, Some(0x012))));
    assert_eq!(m.metadata(), Some((5, Some(0xff))));
    assert_eq!(
        f.instructions,
        vec![
            Instruction::ApplyActions(vec![
                Action::DecNwTtl,
                Action::SetField(openflow::OxmField::exact(Field::Ipv4Src, &[10, 0, 0, 1])),
            ]),
            Instruction::WriteMetadata {
                metadata: 0x10,
                mask: 0xff
            },
            Instruction::GotoTable(2),
        ]
    );
}

#[test]
fn deconstruct_flow_mod_udp_frag_meter_write_actions() {
    let f = &flow_mods("add_flows")[2];
    let m = &f.matching;
    // vlan_tci=0x1000/0x1000 becomes a masked OXM VLAN_VID.
    assert_eq!(m.vlan_vid(), Some((0x1000, Some(0x1000))));
    // nw_frag=first: NXM_NX_IP_FRAG, value ANY.
    assert_eq!(
        m.exact_u64(Field::NxIpFrag),
        Some(openflow::oxm::ip_frag::ANY as u64)
    );
    assert_eq!(m.exact_u64(Field::UdpSrc), Some(53));
    assert_eq!(m.masked_u64(Field::UdpDst), Some((0x14e0, Some(0xfff0))));
    assert_eq!(
        f.instructions,
        vec![
            Instruction::Meter(1),
            Instruction::ClearActions,
            Instruction::WriteActions(vec![Action::output(3), Action::Group(7)]),
        ]
    );
}

#[test]
fn deconstruct_flow_mod_sctp_icmp_resubmit() {
    let fm = flow_mods("add_flows");
    let m = &fm[3].matching;
    assert_eq!(m.ip_proto(), Some(132));
    assert_eq!(m.exact_u64(Field::SctpSrc), Some(1));
    assert_eq!(m.exact_u64(Field::SctpDst), Some(2));
    assert_eq!(apply(&fm[3]), &[Action::SetQueue(2), Action::output(4)]);
    let m = &fm[4].matching;
    assert_eq!(m.exact_u64(Field::Icmpv4Type), Some(8));
    assert_eq!(m.exact_u64(Field::Icmpv4Code), Some(0));
    // resubmit(,2) and resubmit:3 both use NXAST_RESUBMIT_TABLE.
    assert_eq!(
        apply(&fm[4]),
        &[
            Action::Nicira(NxAction::ResubmitTable {
                in_port: OFPP_IN_PORT_16,
                table: 2
            }),
            Action::Nicira(NxAction::ResubmitTable {
                in_port: 3,
                table: 0xff
            }),
        ]
    );
}

#[test]
fn deconstruct_flow_mod_arp_ipv6() {
    let fm = flow_mods("add_flows");
    let m = &fm[5].matching;
    assert_eq!(m.eth_type(), Some(0x0806));
    assert_eq!(m.exact_u64(Field::ArpOp), Some(1));
    assert_eq!(
        m.ipv4(Field::ArpSpa),
        Some((Ipv4Addr::new(10, 0, 0, 1), None))
    );
    assert_eq!(
        m.ipv4(Field::ArpTpa),
        Some((
            Ipv4Addr::new(10, 0, 0, 0),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        ))
    );
    assert_eq!(m.mac(Field::ArpSha), Some(([0, 0, 0, 0, 0, 1], None)));
    assert_eq!(
        m.mac(Field::ArpTha),
        Some(([0; 6], Some([0xff, 0xff, 0xff, 0, 0, 0])))
    );
    assert_eq!(apply(&fm[5])[0], Action::PopVlan);
    let m = &fm[6].matching;
    let net: Ipv6Addr = "2001:db8::".parse().unwrap();
    let mask: Ipv6Addr = "ffff:ffff::".parse().unwrap();
    assert_eq!(m.ipv6(Field::Ipv6Src), Some((net, Some(mask))));
    assert_eq!(
        m.ipv6(Field::Ipv6Dst),
        Some(("2001:db8::1".parse().unwrap(), None))
    );
    assert_eq!(m.exact_u64(Field::Icmpv6Type), Some(135));
    assert_eq!(m.exact_u64(Field::Icmpv6Code), Some(0));
    let Action::SetField(sf) = &apply(&fm[6])[0] else {
        panic!("not set_field")
    };
    assert_eq!(sf.value_ipv6(), Some("2001:db8::2".parse().unwrap()));
}

#[test]
fn deconstruct_flow_mod_tunnel_and_registers() {
    let f = &flow_mods("add_flows")[7];
    let m = &f.matching;
    assert_eq!(m.tunnel_id(), Some((0x1234, Some(0xffff))));
    assert_eq!(
        m.ipv4(Field::NxTunIpv4Src),
        Some((Ipv4Addr::new(192, 0, 2, 1), None))
    );
    assert_eq!(
        m.ipv4(Field::NxTunIpv4Dst),
        Some((Ipv4Addr::new(192, 0, 2, 2), None))
    );
    assert_eq!(m.reg(0), Some((1, None)));
    assert_eq!(m.reg(1), Some((2, Some(0xff))));
    for n in 2..8u8 {
        assert_eq!(m.reg(n), Some((n as u32 + 1, None)));
    }
    // set_tunnel / set_tunnel64 are sent as set_field of OXM TUNNEL_ID in 1.3.
    assert_eq!(
        apply(f)[..2],
        [
            Action::SetField(openflow::OxmField::from_u64(Field::TunnelId, 0x55)),
            Action::SetField(openflow::OxmField::from_u64(
                Field::TunnelId,
                0x1122_3344_5566_7788
            )),
        ]
    );
}

#[test]
fn deconstruct_flow_mod_conntrack() {
    let fm = flow_mods("add_flows");
    let m = &fm[8].matching;
    // ct_state=+trk+new: trk 0x20 | new 0x01.
    assert_eq!(m.masked_u64(Field::NxCtState), Some((0x21, Some(0x21))));
    assert_eq!(m.exact_u64(Field::NxCtZone), Some(5));
    assert_eq!(m.masked_u64(Field::NxCtMark), Some((1, Some(0xff))));
    let label = m.get(Field::NxCtLabel).unwrap();
    assert_eq!(label.value[15], 1);
    assert_eq!(label.mask.as_ref().unwrap()[15], 0xff);
    let c = ct(&apply(&fm[8])[0]);
    assert_eq!(c.flags, openflow::nicira::ct_flags::COMMIT);
    assert_eq!((c.zone_src, c.zone, c.recirc_table), (0, 5, 6));
    assert!(c.actions.is_empty());
    assert_eq!(apply(&fm[8])[1], Action::Nicira(NxAction::CtClear));
    // ct(commit,zone=NXM_NX_REG0[0..15],exec(set_field:0x1->ct_mark,nat(src=10.0.0.1)))
    let c = ct(&apply(&fm[12])[0]);
    assert_eq!(c.zone_src, 0x0001_0004); // NXM_NX_REG0 header
    assert_eq!(c.zone, 15); // ofs 0, n_bits 16 - 1
    assert_eq!(c.recirc_table, 0xff);
    assert_eq!(
        c.actions[0],
        Action::SetField(openflow::OxmField::exact(Field::NxCtMark, &[0, 0, 0, 1]))
    );
    assert_eq!(
        c.actions[1],
        Action::Nicira(NxAction::Nat(Nat {
            flags: nat_flags::SRC,
            ipv4_min: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Nat::default()
        }))
    );
    assert_eq!(
        apply(&fm[12])[1],
        Action::Output {
            port: port_no::CONTROLLER,
            max_len: openflow::action::OFPCML_NO_BUFFER
        }
    );
}

/// The firewall and NAT flows of `captures/add_ct_flows.txt`: every ct
/// option, NAT form and ct match field `ovs-ofctl` 3.1 encodes.
#[test]
fn deconstruct_ct_flows() {
    let fm = flow_mods("add_ct_flows");
    assert_eq!(fm.len(), 13);
    let nat = |a: &Action| match a {
        Action::Nicira(NxAction::Nat(n)) => *n,
        a => panic!("not nat: {a:?}"),
    };
    // ct_state=-trk,ip actions=ct(table=1,zone=5)
    assert_eq!(
        fm[0].matching.masked_u64(Field::NxCtState),
        Some((0, Some(0x20)))
    );
    let c = ct(&apply(&fm[0])[0]);
    assert_eq!((c.flags, c.zone, c.recirc_table), (0, 5, 1));
    // ct_state=+inv+trk: inv 0x10 | trk 0x20; actions=drop (no instruction).
    assert_eq!(
        fm[4].matching.masked_u64(Field::NxCtState),
        Some((0x30, Some(0x30)))
    );
    assert!(fm[4].instructions.is_empty());
    // ct(commit,zone=7,nat(src=192.168.1.1-192.168.1.4:5000-6000,persistent,random),
    //    exec(set_field:0x1->ct_mark,set_field:0x2/0xff->ct_label))
    let c = ct(&apply(&fm[5])[0]);
    assert_eq!(
        (c.flags, c.zone, c.recirc_table),
        (ct_flags::COMMIT, 7, RECIRC_NONE)
    );
    let n = nat(&c.actions[0]);
    assert_eq!(
        n.flags,
        nat_flags::SRC | nat_flags::PERSISTENT | nat_flags::PROTO_RANDOM
    );
    assert_eq!(
        (n.ipv4_min, n.ipv4_max, n.proto_min, n.proto_max),
        (
            Some(Ipv4Addr::new(192, 168, 1, 1)),
            Some(Ipv4Addr::new(192, 168, 1, 4)),
            Some(5000),
            Some(6000)
        )
    );
    assert_eq!(n.check(), Ok(()));
    assert_eq!(
        c.actions[1],
        Action::SetField(openflow::OxmField::exact(Field::NxCtMark, &[0, 0, 0, 1]))
    );
    // The masked set_field of ct_label travels as load:0x2->NXM_NX_CT_LABEL[0..7].
    match c.actions[2] {
        Action::Nicira(NxAction::RegLoad {
            ofs_nbits,
            dst,
            value,
        }) => {
            assert_eq!(openflow::nicira::reg_load_decode(ofs_nbits), (0, 8));
            assert_eq!(Field::from_nxm_header(dst), Field::NxCtLabel);
            assert_eq!(value, 2);
        }
        ref a => panic!("not reg_load: {a:?}"),
    }
    // ct(table=3,zone=7,nat): a plain nat, allowed without commit.
    let c = ct(&apply(&fm[6])[0]);
    assert!(nat(&c.actions[0]).is_plain());
    assert_eq!(c.check(), Ok(()));
    // ct(commit,table=3,nat(dst=[2001:db8::1]:80))
    let n = nat(&ct(&apply(&fm[7])[0]).actions[0]);
    assert_eq!(n.flags, nat_flags::DST);
    assert_eq!(n.ipv6_min, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(
        (n.ipv6_max, n.proto_min, n.proto_max),
        (None, Some(80), None)
    );
    // ct(commit,force,nat(src=2001:db8::1-2001:db8::5,hash))
    let c = ct(&apply(&fm[8])[0]);
    assert_eq!(c.flags, ct_flags::COMMIT | ct_flags::FORCE);
    let n = nat(&c.actions[0]);
    assert_eq!(n.flags, nat_flags::SRC | nat_flags::PROTO_HASH);
    assert_eq!(n.ipv6_max, Some("2001:db8::5".parse().unwrap()));
    // ct(commit,zone=NXM_NX_REG0[0..15],alg=ftp),ct_clear
    let c = ct(&apply(&fm[9])[0]);
    assert_eq!(Field::from_nxm_header(c.zone_src), Field::NxReg(0));
    assert_eq!(openflow::nicira::reg_load_decode(c.zone), (0, 16));
    assert_eq!(c.alg, openflow::nx_ct::alg::FTP);
    assert_eq!(apply(&fm[9])[1], Action::Nicira(NxAction::CtClear));
    // The original-direction tuple fields (NXM_NX_CT_NW_PROTO ... CT_TP_DST).
    let m = &fm[10].matching;
    assert_eq!(m.masked_u64(Field::NxCtState), Some((0x22, Some(0x2a))));
    assert_eq!(m.exact_u64(Field::NxCtNwProto), Some(6));
    assert_eq!(m.exact_u64(Field::NxCtNwSrc), Some(0x0a00_0001));
    assert_eq!(
        m.masked_u64(Field::NxCtNwDst),
        Some((0x0a00_0000, Some(0xff00_0000)))
    );
    assert_eq!(m.exact_u64(Field::NxCtTpSrc), Some(1000));
    assert_eq!(m.masked_u64(Field::NxCtTpDst), Some((0x50, Some(0xfff0))));
    let m = &fm[11].matching;
    assert_eq!(
        m.get(Field::NxCtIpv6Src).unwrap().value_ipv6(),
        Some("2001:db8::1".parse().unwrap())
    );
    let d = m.get(Field::NxCtIpv6Dst).unwrap();
    assert_eq!(d.mask_ipv6(), Some("ffff:ffff::".parse().unwrap()));
    // Two ct actions in one list.
    assert_eq!(apply(&fm[12]).len(), 2);
}

#[test]
fn deconstruct_flow_mod_mpls_and_vlan_rewrites() {
    let fm = flow_mods("add_flows");
    assert_eq!(fm[9].matching.exact_u64(Field::MplsLabel), Some(5));
    assert_eq!(apply(&fm[9])[0], Action::PopMpls(0x0800));
    assert_eq!(
        apply(&fm[10]),
        &[
            Action::SetNwTtl(9),
            Action::PushMpls(0x8847),
            Action::SetMplsTtl(10),
            Action::DecMplsTtl,
            Action::output(2),
        ]
    );
    assert_eq!(fm[11].matching.exact_u64(Field::Ipv6Flabel), Some(0x12345));
    assert_eq!(apply(&fm[11])[3], Action::PopVlan);
}

#[test]
fn deconstruct_del_and_mod_flows() {
    let f = &flow_mods("del_flows_all")[0];
    assert_eq!(f.command, FlowModCommand::Delete);
    assert_eq!(f.table_id, openflow::table_mod::OFPTT_ALL);
    assert_eq!(f.out_port, port_no::ANY);
    assert!(f.matching.fields.is_empty() && f.instructions.is_empty());

    let f = &flow_mods("del_flows_strict")[0];
    assert_eq!(f.command, FlowModCommand::DeleteStrict);
    assert_eq!(f.priority, 100);
    assert_eq!(f.matching.in_port(), Some(1));
    assert_eq!(f.matching.eth_type(), Some(0x0800));

    let f = &flow_mods("del_flows_cookie")[0];
    assert_eq!(f.command, FlowModCommand::Delete);
    assert_eq!((f.cookie, f.cookie_mask), (0x1234, u64::MAX));
    assert_eq!((f.table_id, f.out_port), (1, 2));

    let f = &flow_mods("mod_flows")[0];
    assert_eq!(f.command, FlowModCommand::Modify);
    assert_eq!(apply(f), &[Action::output(3)]);
    let f = &flow_mods("mod_flows_strict")[0];
    assert_eq!(f.command, FlowModCommand::ModifyStrict);
    assert_eq!(f.priority, 100);
}

#[test]
fn deconstruct_multipart_requests() {
    use MultipartRequestBody as Q;
    let last = |name: &str| multipart_request(name).pop().unwrap().body;
    assert!(
        matches!(last("dump_flows"), Q::Flow(ref r) if r.matching.fields.is_empty()
        && r.table_id == 0xff && r.out_port == port_no::ANY)
    );
    let Q::Flow(r) = last("dump_flows_match") else {
        panic!("not a flow request")
    };
    assert_eq!(
        (r.table_id, r.out_port, r.cookie, r.cookie_mask),
        (1, 2, 0x1234, u64::MAX)
    );
    assert_eq!(r.matching.ip_proto(), Some(6));
    assert!(matches!(last("dump_aggregate"), Q::Aggregate(_)));
    assert_eq!(
        last("dump_ports"),
        Q::PortStats {
            port_no: port_no::ANY
        }
    );
    assert_eq!(last("dump_ports_one"), Q::PortStats { port_no: 1 });
    assert_eq!(last("dump_tables"), Q::Table);
    assert_eq!(last("dump_ports_desc"), Q::PortDesc);
    assert_eq!(last("dump_desc"), Q::Desc);
    assert_eq!(last("dump_table_features"), Q::TableFeatures(vec![]));
    assert_eq!(last("dump_groups"), Q::GroupDesc);
    assert_eq!(
        last("dump_group_stats"),
        Q::Group {
            group_id: openflow::group::group_id::ALL
        }
    );
    assert_eq!(last("dump_group_features"), Q::GroupFeatures);
    assert_eq!(last("meter_features"), Q::MeterFeatures);
}

#[test]
fn deconstruct_group_mods() {
    let g: Vec<GroupMod> = of_type("add_groups", MsgType::GroupMod)
        .into_iter()
        .map(|m| match m {
            Message::GroupMod(g) => g,
            m => panic!("{m:?}"),
        })
        .collect();
    let types: Vec<_> = g.iter().map(|g| (g.group_id, g.group_type)).collect();
    assert_eq!(
        types,
        [
            (1, GroupType::All),
            (2, GroupType::Select),
            (3, GroupType::Indirect),
            (4, GroupType::FastFailover)
        ]
    );
    assert!(g.iter().all(|g| g.command == GroupCommand::Add));
    assert_eq!(g[0].buckets.len(), 2);
    assert_eq!(g[1].buckets[1].weight, 20);
    assert_eq!(g[1].buckets[1].actions.len(), 2);
    assert_eq!(g[2].buckets[0].actions[0], Action::DecNwTtl);
    assert_eq!(
        (g[3].buckets[1].watch_port, g[3].buckets[1].watch_group),
        (2, 1)
    );
    let Message::GroupMod(d) = of_type("del_groups", MsgType::GroupMod).remove(0) else {
        panic!()
    };
    assert_eq!((d.command, d.group_id), (GroupCommand::Delete, 2));
}

#[test]
fn deconstruct_packet_out_port_mod_set_config() {
    let Message::PacketOut(p) = of_type("packet_out", MsgType::PacketOut).remove(0) else {
        panic!()
    };
    assert_eq!(p.buffer_id, openflow::flow_mod::OFP_NO_BUFFER);
    assert_eq!(p.in_port, 1);
    assert_eq!(
        p.actions,
        [Action::output(2), Action::output(port_no::FLOOD)]
    );
    assert_eq!(&p.data[12..14], &[0x08, 0x06]);

    let Message::PortMod(m) = of_type("mod_port", MsgType::PortMod).remove(0) else {
        panic!()
    };
    assert_eq!(m.port_no, 1);
    assert_eq!(m.hw_addr, [2, 0, 0, 0, 0, 1]);
    assert_eq!((m.config, m.mask), (1, 1));

    let Message::SetConfig(c) = of_type("set_frags", MsgType::SetConfig).remove(0) else {
        panic!()
    };
    assert_eq!(c.frag(), openflow::switch_config::FragHandling::Drop);
    assert_eq!(c.miss_send_len, 128);
    assert_eq!(
        of_type("show", MsgType::FeaturesRequest),
        [Message::FeaturesRequest]
    );
}

/// Every message of the real switch's capture, parsed (and re-emitted byte for byte).
fn switch_messages() -> Vec<Message> {
    capture("ovs_switch")
        .iter()
        .map(|b| parse_and_reemit(b))
        .collect()
}

#[test]
fn deconstruct_ovs_switch_replies() {
    use openflow::multipart::MultipartReplyBody as R;
    let msgs = switch_messages();
    let replies: Vec<&R> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::MultipartReply(r) => Some(&r.body),
            _ => None,
        })
        .collect();
    let Some(Message::FeaturesReply(f)) = msgs.get(1) else {
        panic!(
            "second message is not the features reply: {:?}",
            msgs.get(1)
        )
    };
    assert_eq!((f.datapath_id, f.n_tables), (0x0000_0200_0000_0001, 254));
    let desc = replies.iter().find_map(|r| match r {
        R::Desc(d) => Some(d),
        _ => None,
    });
    assert_eq!(desc.unwrap().mfr_desc, "Nicira, Inc.");
    let ports = replies.iter().find_map(|r| match r {
        R::PortDesc(p) => Some(p),
        _ => None,
    });
    let names: Vec<&str> = ports.unwrap().iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"p1") && names.contains(&"br0"), "{names:?}");
    let tables = replies.iter().find_map(|r| match r {
        R::Table(t) => Some(t),
        _ => None,
    });
    assert_eq!(tables.unwrap().len(), 254);
    // OVS's table features: the full property lists, typed.
    let tf = replies.iter().find_map(|r| match r {
        R::TableFeatures(t) => Some(t),
        _ => None,
    });
    let t0 = &tf.unwrap()[0];
    assert_eq!((t0.table_id, t0.max_entries), (0, 1_000_000));
    assert!(t0.properties.iter().any(|p| matches!(p,
        openflow::table_features::TableFeatureProp::Match(m) if m.len() > 20)));
    let flows = replies.iter().find_map(|r| match r {
        R::Flow(f) => Some(f),
        _ => None,
    });
    let fl = &flows.unwrap()[0];
    assert_eq!((fl.cookie, fl.priority, fl.idle_timeout), (0x1001, 200, 1));
    assert_eq!(fl.flags, flags::SEND_FLOW_REM);
    assert_eq!(fl.matching.exact_u64(Field::TcpDst), Some(80));
    assert!(replies
        .iter()
        .any(|r| matches!(r, R::Aggregate(a) if a.flow_count == 2)));
    assert!(replies.iter().any(|r| matches!(r, R::GroupDesc(g) if g[0].group_type == GroupType::Select && g[0].buckets.len() == 2)));
    assert!(replies
        .iter()
        .any(|r| matches!(r, R::Group(g) if g[0].group_id == 5 && g[0].bucket_stats.len() == 2)));
    assert!(replies
        .iter()
        .any(|r| matches!(r, R::GroupFeatures(g) if g.types == 0xf)));
    assert!(replies
        .iter()
        .any(|r| matches!(r, R::MeterFeatures(m) if m.max_meter > 0)));
    assert!(msgs.iter().any(|m| matches!(m, Message::RoleReply(_))));
    assert!(msgs.iter().any(|m| matches!(m, Message::GetAsyncReply(_))));
    assert!(msgs.contains(&Message::EchoReply(b"capture".to_vec())));
}

#[test]
fn deconstruct_ovs_switch_errors_and_async() {
    use openflow::error_msg::{bad_action, bad_request, ErrorType};
    let msgs = switch_messages();
    let errors: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    // The unknown message type 99 and the unknown action type 0x63.
    assert_eq!(
        (errors[0].err_type, errors[0].code),
        (ErrorType::BadRequest, bad_request::BAD_TYPE)
    );
    assert_eq!(errors[0].data[1], 99);
    assert_eq!(
        (errors[1].err_type, errors[1].code),
        (ErrorType::BadAction, bad_action::BAD_TYPE)
    );
    assert_eq!(errors[1].data[1], MsgType::FlowMod as u8);

    let pins: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::PacketIn(p) => Some(p),
            _ => None,
        })
        .collect();
    // packet-out to CONTROLLER: reason ACTION, in_port CONTROLLER.
    assert_eq!(pins[0].reason, openflow::packet_in::reason::ACTION);
    assert_eq!(pins[0].matching.in_port(), Some(port_no::CONTROLLER));
    assert_eq!(pins[0].data.len(), 60);
    // the ARP into p1 missing every flow: reason NO_MATCH, the table-miss cookie.
    assert_eq!(pins[1].reason, openflow::packet_in::reason::NO_MATCH);
    assert_eq!(
        (pins[1].cookie, pins[1].matching.in_port()),
        (0x2002, Some(1))
    );
    assert_eq!(&pins[1].data[12..14], &[0x08, 0x06]);

    let Some(Message::FlowRemoved(fr)) = msgs.iter().find(|m| matches!(m, Message::FlowRemoved(_)))
    else {
        panic!("no flow removed")
    };
    assert_eq!(
        (fr.cookie, fr.reason),
        (0x1001, openflow::flow_removed::reason::IDLE_TIMEOUT)
    );
    assert_eq!(fr.matching.exact_u64(Field::TcpDst), Some(80));

    let status: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::PortStatus(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(status[0].reason, openflow::port::reason::ADD);
    assert_eq!(
        (status[0].desc.port_no, status[0].desc.name.as_str()),
        (3, "p3")
    );
}

#[test]
fn deconstruct_meter_mods() {
    use openflow::meter_mod::{command, flags as mf, BandKind, MeterMod};
    let meter = |name: &str| match of_type(name, MsgType::MeterMod).remove(0) {
        Message::MeterMod(m) => m,
        m => panic!("{m:?}"),
    };
    let m: MeterMod = meter("add_meter");
    assert_eq!((m.command, m.meter_id), (command::ADD, 1));
    assert_eq!(m.flags, mf::KBPS | mf::BURST | mf::STATS);
    assert_eq!(m.bands.len(), 1);
    assert_eq!(m.bands[0].kind, BandKind::Drop);
    assert_eq!((m.bands[0].rate, m.bands[0].burst_size), (1000, 100));
    let m = meter("add_meter_remark");
    assert_eq!(m.flags, mf::PKTPS);
    assert_eq!(m.bands[0].kind, BandKind::DscpRemark { prec_level: 1 });
    let m = meter("del_meter");
    assert_eq!(
        (m.command, m.meter_id, m.bands.len()),
        (command::DELETE, 1, 0)
    );
    // dump-meters asks OFPMP_METER_CONFIG, kept raw.
    let r = multipart_request("dump_meters").pop().unwrap();
    assert_eq!(r.mp_type(), openflow::multipart::mp_type::METER_CONFIG);
}
