//! PDUs captured from libiscsi's `iscsi-inq` against tgtd (tcpdump on loopback, decoded
//! with `tshark -d tcp.port==13260,iscsi`: Login Command, Login Response (Success),
//! Test Unit Ready, SCSI Response (Check Condition), Inquiry, Data-In, Logout). Each test
//! deconstructs the real bytes and checks the fields tshark shows, then re-emits the
//! parsed representation and expects the identical bytes back.

use iscsi_pdu::pdu::{Stage, TaskAttribute};
use iscsi_pdu::{frame, text, DigestConfig, Pdu};

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/captures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    hex(&std::fs::read_to_string(path).unwrap())
}

/// Parses the single PDU in `bytes`, checks it re-emits byte for byte, returns it.
fn parse_and_reemit(bytes: &[u8]) -> (Pdu, Vec<u8>) {
    let (f, used) = frame::parse(bytes, DigestConfig::default())
        .unwrap()
        .expect("complete PDU");
    assert_eq!(used, bytes.len());
    let pdu = f.pdu().unwrap();
    let mut out = Vec::new();
    frame::emit(&mut out, &pdu, f.ahs, f.data, DigestConfig::default()).unwrap();
    assert_eq!(out, bytes, "re-emitted PDU differs from the capture");
    (pdu, f.data.to_vec())
}

#[test]
fn deconstruct_login_request() {
    let (pdu, data) = parse_and_reemit(&capture("login_request"));
    let Pdu::LoginRequest(l) = pdu else {
        panic!("not a login request: {pdu:?}")
    };
    assert!(l.transit);
    assert!(!l.continue_flag);
    assert_eq!(l.csg, Stage::Operational);
    assert_eq!(l.nsg, Stage::FullFeature);
    assert_eq!(l.tsih, 0);
    assert_eq!(l.cmd_sn, 0x000f_ab2d);
    assert_eq!(l.isid, [0x80, 0x6a, 0xa4, 0x2f, 0x00, 0x00]);
    assert_eq!(text::get(&data, "TargetName"), Some("iqn.2026-01.test:cap"));
    assert_eq!(text::get(&data, "InitialR2T"), Some("No"));
    assert_eq!(text::get(&data, "HeaderDigest"), Some("None,CRC32C"));
}

#[test]
fn deconstruct_login_response() {
    let (pdu, data) = parse_and_reemit(&capture("login_response"));
    let Pdu::LoginResponse(l) = pdu else {
        panic!("not a login response")
    };
    assert!(l.transit);
    assert_eq!(l.nsg, Stage::FullFeature);
    assert_eq!(l.status_class, 0);
    assert_eq!(l.tsih, 0x0100);
    assert_eq!(l.exp_cmd_sn, 0x000f_ab2d);
    assert_eq!(l.max_cmd_sn, 0x000f_ab2e);
    assert_eq!(text::get(&data, "FirstBurstLength"), Some("65536"));
    assert_eq!(text::get(&data, "InitialR2T"), Some("Yes"));
}

#[test]
fn deconstruct_test_unit_ready() {
    let (pdu, _) = parse_and_reemit(&capture("tur_command"));
    let Pdu::ScsiCommand(c) = pdu else {
        panic!("not a command")
    };
    assert!(c.final_flag && !c.read && !c.write);
    assert_eq!(c.attr, TaskAttribute::Simple);
    assert_eq!(iscsi_pdu::bhs::decode_lun(c.lun), 1);
    assert_eq!(c.expected_data_len, 0);
    assert_eq!(c.cdb, [0u8; 16]);
}

#[test]
fn deconstruct_check_condition() {
    let (pdu, data) = parse_and_reemit(&capture("check_condition_response"));
    let Pdu::ScsiResponse(r) = pdu else {
        panic!("not a response")
    };
    assert_eq!(r.response, 0);
    assert_eq!(r.status, 0x02);
    let (sense, rest) = iscsi_pdu::pdu::ScsiResponse::sense(&data).unwrap();
    assert!(rest.is_empty());
    assert_eq!(sense.len(), 18);
    // Fixed format, UNIT ATTENTION, ASC 0x29 (power on / reset).
    assert_eq!(sense[0], 0x70);
    assert_eq!(sense[2] & 0x0f, 0x06);
    assert_eq!(sense[12], 0x29);
}

#[test]
fn deconstruct_good_response() {
    let (pdu, data) = parse_and_reemit(&capture("good_response"));
    let Pdu::ScsiResponse(r) = pdu else {
        panic!("not a response")
    };
    assert_eq!((r.response, r.status), (0, 0));
    assert_eq!(r.stat_sn, 2);
    assert!(data.is_empty());
}

#[test]
fn deconstruct_inquiry_and_data_in() {
    let (pdu, _) = parse_and_reemit(&capture("inquiry_command"));
    let Pdu::ScsiCommand(c) = pdu else {
        panic!("not a command")
    };
    assert!(c.read && !c.immediate);
    assert_eq!(c.cdb[0], 0x12);
    assert_eq!(c.expected_data_len, 64);

    let (pdu, data) = parse_and_reemit(&capture("data_in_inquiry"));
    let Pdu::DataIn(d) = pdu else {
        panic!("not data-in")
    };
    assert!(d.final_flag && d.status_present);
    assert_eq!(d.status, 0);
    assert_eq!(d.ttt, 0xffff_ffff);
    assert_eq!(d.buffer_offset, 0);
    assert_eq!(data.len(), 64);
    assert_eq!(&data[8..16], b"IET     ");
}

#[test]
fn deconstruct_logout() {
    let (pdu, _) = parse_and_reemit(&capture("logout_request"));
    let Pdu::LogoutRequest(l) = pdu else {
        panic!("not a logout")
    };
    assert!(l.immediate);
    assert_eq!(l.reason, 0);
    let (pdu, _) = parse_and_reemit(&capture("logout_response"));
    let Pdu::LogoutResponse(l) = pdu else {
        panic!("not a logout response")
    };
    assert_eq!(l.response, 0);
}

#[test]
fn digests_detect_corruption() {
    let bytes = capture("data_in_inquiry");
    let (f, _) = frame::parse(&bytes, DigestConfig::default())
        .unwrap()
        .unwrap();
    let pdu = f.pdu().unwrap();
    let d = DigestConfig {
        header: true,
        data: true,
    };
    let mut out = Vec::new();
    frame::emit(&mut out, &pdu, f.ahs, f.data, d).unwrap();
    assert_eq!(out.len(), bytes.len() + 8);
    let (g, used) = frame::parse(&out, d).unwrap().unwrap();
    assert_eq!(used, out.len());
    assert_eq!(g.data, f.data);
    let mut bad = out.clone();
    bad[20] ^= 1;
    assert!(matches!(
        frame::parse(&bad, d),
        Err(iscsi_pdu::Error::HeaderDigest { .. })
    ));
    let mut bad = out.clone();
    bad[60] ^= 1;
    assert!(matches!(
        frame::parse(&bad, d),
        Err(iscsi_pdu::Error::DataDigest { .. })
    ));
    // Every prefix is "need more bytes", never an error or a panic.
    for n in 0..out.len() {
        assert!(frame::parse(&out[..n], d).unwrap().is_none());
    }
}

// The following were captured from this project's initiator (`vswitch iscsi discover`
// and `vswitch iscsi write` of 128 KiB) against tgtd, and decoded by tshark as
// "Text Command", "Text Response", "Ready To Transfer" and "SCSI: Data Out".

#[test]
fn deconstruct_send_targets() {
    let (pdu, data) = parse_and_reemit(&capture("text_request"));
    let Pdu::TextRequest(t) = pdu else {
        panic!("not a text request")
    };
    assert!(t.final_flag && !t.continue_flag);
    assert_eq!(t.ttt, 0xffff_ffff);
    assert_eq!(text::get(&data, "SendTargets"), Some("All"));
    let (pdu, data) = parse_and_reemit(&capture("text_response"));
    let Pdu::TextResponse(t) = pdu else {
        panic!("not a text response")
    };
    assert!(t.final_flag);
    assert_eq!(t.ttt, 0xffff_ffff);
    assert_eq!(text::get(&data, "TargetName"), Some("iqn.2026-01.test:cap"));
    assert_eq!(text::get(&data, "TargetAddress"), Some("127.0.0.1:13260,1"));
}

#[test]
fn deconstruct_r2t() {
    let (pdu, data) = parse_and_reemit(&capture("r2t"));
    let Pdu::R2t(r) = pdu else {
        panic!("not an R2T")
    };
    assert!(data.is_empty());
    assert_eq!(iscsi_pdu::bhs::decode_lun(r.lun), 1);
    assert_eq!(r.ttt, 0x00a8_1f53);
    assert_eq!((r.stat_sn, r.exp_cmd_sn, r.max_cmd_sn), (7, 8, 0x88));
    assert_eq!(r.r2t_sn, 0);
    // 8 KiB went as immediate data; the target asks for the remaining 120 KiB.
    assert_eq!((r.buffer_offset, r.desired_len), (8192, 122_880));
}

#[test]
fn deconstruct_data_out() {
    let (pdu, data) = parse_and_reemit(&capture("data_out"));
    let Pdu::DataOut(d) = pdu else {
        panic!("not a Data-Out")
    };
    assert!(!d.final_flag);
    assert_eq!(d.ttt, 0x00a8_1f53, "echoes the R2T's TTT");
    assert_eq!((d.data_sn, d.buffer_offset), (0, 8192));
    assert_eq!(data.len(), 8192);
}

// Captured from this project's test suite against tgtd (LUN reset; tgtd with
// nop_interval=1), decoded by tshark as "Task Management Function (Logical Unit Reset)",
// "... Response (Function complete)", "NOP In" and "NOP Out".

#[test]
fn deconstruct_task_management() {
    let (pdu, _) = parse_and_reemit(&capture("tmf_request"));
    let Pdu::TaskMgmtRequest(t) = pdu else {
        panic!("not a TMF request")
    };
    assert!(t.immediate);
    assert_eq!(t.function, iscsi_pdu::pdu::tmf::LOGICAL_UNIT_RESET);
    assert_eq!(iscsi_pdu::bhs::decode_lun(t.lun), 1);
    assert_eq!(t.referenced_task_tag, 0xffff_ffff);
    let (pdu, _) = parse_and_reemit(&capture("tmf_response"));
    let Pdu::TaskMgmtResponse(r) = pdu else {
        panic!("not a TMF response")
    };
    assert_eq!((r.response, r.itt), (0, t.itt));
}

#[test]
fn deconstruct_nop_both_directions() {
    // Target ping (TTT valid, ITT reserved) and our answer echoing the TTT.
    let (pdu, _) = parse_and_reemit(&capture("nop_in_ping"));
    let Pdu::NopIn(ping) = pdu else {
        panic!("not NOP-In")
    };
    assert_eq!((ping.itt, ping.ttt), (0xffff_ffff, 1));
    let (pdu, _) = parse_and_reemit(&capture("nop_out_answer"));
    let Pdu::NopOut(ans) = pdu else {
        panic!("not NOP-Out")
    };
    assert!(ans.immediate);
    assert_eq!((ans.itt, ans.ttt), (0xffff_ffff, ping.ttt));
    assert_eq!(ans.exp_stat_sn, ping.stat_sn);
    // Our ping (ITT valid, TTT reserved) and the target's answer echoing the ITT.
    let (pdu, _) = parse_and_reemit(&capture("nop_out_ping"));
    let Pdu::NopOut(ours) = pdu else {
        panic!("not NOP-Out")
    };
    assert_eq!(ours.ttt, 0xffff_ffff);
    let (pdu, _) = parse_and_reemit(&capture("nop_in_answer"));
    let Pdu::NopIn(reply) = pdu else {
        panic!("not NOP-In")
    };
    assert_eq!((reply.itt, reply.ttt), (ours.itt, 0xffff_ffff));
}
