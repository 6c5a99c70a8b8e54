//! Messages captured from the real `ovs-ofctl -O OpenFlow13` (OVS 3.1) talking to the
//! capture tool (`examples/capture.rs`; commands in `captures/README.md`). Each test
//! deconstructs the real bytes and checks the fields `ovs-ofctl ofp-print` shows; one
//! test re-emits every captured message and expects the identical bytes back.

use openflow::action::{port_no, Action};
use openflow::flow_mod::{flags, FlowMod, FlowModCommand};
use openflow::group::{GroupCommand, GroupMod, GroupType};
use openflow::instruction::Instruction;
use openflow::multipart::{MultipartRequest, MultipartRequestBody};
use openflow::nicira::{NxAction, OFPP_IN_PORT_16};
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
