//! emit -> parse round trips for every PDU (property tests), and garbage input.

use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, Bhs, DigestConfig, Pdu};
use proptest::prelude::*;

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        Just(Stage::Security),
        Just(Stage::Operational),
        Just(Stage::FullFeature)
    ]
}

fn attr() -> impl Strategy<Value = TaskAttribute> {
    (0u8..5).prop_map(|v| match v {
        0 => TaskAttribute::Untagged,
        1 => TaskAttribute::Simple,
        2 => TaskAttribute::Ordered,
        3 => TaskAttribute::HeadOfQueue,
        _ => TaskAttribute::Aca,
    })
}

/// Every PDU an initiator sends (RFC 7143 §11: NOP-Out, SCSI Command,
/// Task Management, Login, Text, Data-Out, Logout, SNACK) or a target
/// sends ([`target_pdu`]).
fn pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![initiator_pdu(), target_pdu()]
}

/// The PDUs an initiator sends.
fn initiator_pdu() -> impl Strategy<Value = Pdu> {
    let u = any::<u32>;
    prop_oneof![
        (any::<bool>(), any::<u64>(), u(), u(), u(), u()).prop_map(|(i, l, a, b, c, d)| {
            Pdu::NopOut(NopOut {
                immediate: i,
                lun: l,
                itt: a,
                ttt: b,
                cmd_sn: c,
                exp_stat_sn: d,
            })
        }),
        (
            any::<[bool; 4]>(),
            attr(),
            any::<u64>(),
            u(),
            u(),
            u(),
            u(),
            any::<[u8; 16]>()
        )
            .prop_map(
                |(f, attr, lun, itt, e, c, s, cdb)| Pdu::ScsiCommand(ScsiCommand {
                    immediate: f[0],
                    final_flag: f[1],
                    read: f[2],
                    write: f[3],
                    attr,
                    lun,
                    itt,
                    expected_data_len: e,
                    cmd_sn: c,
                    exp_stat_sn: s,
                    cdb
                })
            ),
        (
            any::<bool>(),
            1u8..9,
            any::<u64>(),
            u(),
            u(),
            u(),
            u(),
            u(),
            u()
        )
            .prop_map(|(i, f, lun, itt, r, c, s, rc, ed)| Pdu::TaskMgmtRequest(
                TaskMgmtRequest {
                    immediate: i,
                    function: f,
                    lun,
                    itt,
                    referenced_task_tag: r,
                    cmd_sn: c,
                    exp_stat_sn: s,
                    ref_cmd_sn: rc,
                    exp_data_sn: ed
                }
            )),
        (
            any::<[bool; 2]>(),
            stage(),
            stage(),
            any::<[u8; 6]>(),
            any::<u16>(),
            u(),
            any::<u16>(),
            u(),
            u()
        )
            .prop_map(
                |(f, csg, nsg, isid, tsih, itt, cid, c, s)| Pdu::LoginRequest(LoginRequest {
                    transit: f[0],
                    continue_flag: f[1],
                    csg,
                    nsg,
                    version_max: 0,
                    version_min: 0,
                    isid,
                    tsih,
                    itt,
                    cid,
                    cmd_sn: c,
                    exp_stat_sn: s
                })
            ),
        (any::<[bool; 3]>(), any::<u64>(), u(), u(), u(), u()).prop_map(
            |(f, lun, itt, t, c, s)| {
                Pdu::TextRequest(TextRequest {
                    immediate: f[0],
                    final_flag: f[1],
                    continue_flag: f[2],
                    lun,
                    itt,
                    ttt: t,
                    cmd_sn: c,
                    exp_stat_sn: s,
                })
            }
        ),
        (any::<bool>(), any::<u64>(), u(), u(), u(), u(), u()).prop_map(
            |(f, lun, itt, t, s, d, o)| {
                Pdu::DataOut(DataOut {
                    final_flag: f,
                    lun,
                    itt,
                    ttt: t,
                    exp_stat_sn: s,
                    data_sn: d,
                    buffer_offset: o,
                })
            }
        ),
        (any::<bool>(), 0u8..3, u(), any::<u16>(), u(), u()).prop_map(|(i, r, itt, cid, c, s)| {
            Pdu::LogoutRequest(LogoutRequest {
                immediate: i,
                reason: r,
                itt,
                cid,
                cmd_sn: c,
                exp_stat_sn: s,
            })
        }),
        (0u8..4, any::<u64>(), u(), u(), u(), u(), u()).prop_map(|(t, lun, itt, ttt, s, b, r)| {
            Pdu::Snack(Snack {
                snack_type: t,
                lun,
                itt,
                ttt,
                exp_stat_sn: s,
                beg_run: b,
                run_length: r,
            })
        }),
    ]
}

/// The PDUs a target sends (NOP-In, SCSI Response, Task Management
/// Response, Login and Text Responses, Data-In, Logout Response, R2T,
/// Asynchronous Message, Reject).
fn target_pdu() -> impl Strategy<Value = Pdu> {
    let u = any::<u32>;
    prop_oneof![
        (any::<u64>(), u(), u(), u(), u(), u()).prop_map(|(lun, itt, t, s, e, m)| {
            Pdu::NopIn(NopIn {
                lun,
                itt,
                ttt: t,
                stat_sn: s,
                exp_cmd_sn: e,
                max_cmd_sn: m,
            })
        }),
        (
            any::<[bool; 4]>(),
            any::<u8>(),
            any::<u8>(),
            u(),
            u(),
            u(),
            u(),
            u(),
            (u(), u(), u())
        )
            .prop_map(
                |(f, resp, st, itt, tag, s, e, m, (ed, br, r))| Pdu::ScsiResponse(ScsiResponse {
                    bidi_overflow: f[0],
                    bidi_underflow: f[1],
                    overflow: f[2],
                    underflow: f[3],
                    response: resp,
                    status: st,
                    itt,
                    snack_tag: tag,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                    exp_data_sn: ed,
                    bidi_residual: br,
                    residual: r
                })
            ),
        (any::<u8>(), u(), u(), u(), u()).prop_map(|(r, itt, s, e, m)| {
            Pdu::TaskMgmtResponse(TaskMgmtResponse {
                response: r,
                itt,
                stat_sn: s,
                exp_cmd_sn: e,
                max_cmd_sn: m,
            })
        }),
        (
            any::<[bool; 2]>(),
            stage(),
            stage(),
            any::<[u8; 6]>(),
            any::<u16>(),
            u(),
            (u(), u(), u()),
            any::<[u8; 2]>()
        )
            .prop_map(
                |(f, csg, nsg, isid, tsih, itt, (s, e, m), st)| Pdu::LoginResponse(LoginResponse {
                    transit: f[0],
                    continue_flag: f[1],
                    csg,
                    nsg,
                    version_max: 0,
                    version_active: 0,
                    isid,
                    tsih,
                    itt,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                    status_class: st[0],
                    status_detail: st[1]
                })
            ),
        (any::<[bool; 2]>(), any::<u64>(), u(), u(), u(), u(), u()).prop_map(
            |(f, lun, itt, t, s, e, m)| {
                Pdu::TextResponse(TextResponse {
                    final_flag: f[0],
                    continue_flag: f[1],
                    lun,
                    itt,
                    ttt: t,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                })
            }
        ),
        (
            any::<[bool; 5]>(),
            any::<u8>(),
            any::<u64>(),
            u(),
            u(),
            (u(), u(), u()),
            (u(), u(), u())
        )
            .prop_map(
                |(f, st, lun, itt, t, (s, e, m), (d, o, r))| Pdu::DataIn(DataIn {
                    final_flag: f[0],
                    ack: f[1],
                    overflow: f[2],
                    underflow: f[3],
                    status_present: f[4],
                    status: st,
                    lun,
                    itt,
                    ttt: t,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                    data_sn: d,
                    buffer_offset: o,
                    residual: r
                })
            ),
        (any::<u8>(), u(), u(), u(), u(), any::<u16>(), any::<u16>()).prop_map(
            |(r, itt, s, e, m, w, t)| {
                Pdu::LogoutResponse(LogoutResponse {
                    response: r,
                    itt,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                    time2wait: w,
                    time2retain: t,
                })
            }
        ),
        (any::<u64>(), u(), u(), (u(), u(), u()), (u(), u(), u())).prop_map(
            |(lun, itt, t, (s, e, m), (r, o, d))| {
                Pdu::R2t(R2t {
                    lun,
                    itt,
                    ttt: t,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                    r2t_sn: r,
                    buffer_offset: o,
                    desired_len: d,
                })
            }
        ),
        (
            any::<u64>(),
            u(),
            u(),
            u(),
            any::<[u8; 2]>(),
            any::<[u16; 3]>()
        )
            .prop_map(|(lun, s, e, m, ev, p)| {
                Pdu::AsyncMessage(AsyncMessage {
                    lun,
                    stat_sn: s,
                    exp_cmd_sn: e,
                    max_cmd_sn: m,
                    event: ev[0],
                    vcode: ev[1],
                    parameter1: p[0],
                    parameter2: p[1],
                    parameter3: p[2],
                })
            }),
        (any::<u8>(), u(), u(), u(), u()).prop_map(|(r, s, e, m, d)| {
            Pdu::Reject(Reject {
                reason: r,
                stat_sn: s,
                exp_cmd_sn: e,
                max_cmd_sn: m,
                data_sn: d,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn emit_then_parse(p in pdu(), data in proptest::collection::vec(any::<u8>(), 0..600),
                       hd in any::<bool>(), dd in any::<bool>(), ahs_words in 0usize..3) {
        let d = DigestConfig { header: hd, data: dd };
        let mut ahs = Vec::new();
        for _ in 0..ahs_words {
            iscsi_pdu::ahs::emit(&mut ahs, iscsi_pdu::ahs::kind::EXTENDED_CDB, &[7u8; 7]).unwrap();
        }
        let mut out = Vec::new();
        frame::emit(&mut out, &p, &ahs, &data, d).unwrap();
        prop_assert_eq!(out.len() % 4, 0);
        prop_assert_eq!(frame::pdu_len(&out, d), Some(out.len()));
        let (f, used) = frame::parse(&out, d).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(f.pdu().unwrap(), p);
        prop_assert_eq!(f.data, &data[..]);
        prop_assert_eq!(f.ahs, &ahs[..]);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                            hd in any::<bool>(), dd in any::<bool>()) {
        let d = DigestConfig { header: hd, data: dd };
        if let Ok(Some((f, used))) = frame::parse(&bytes, d) {
            prop_assert!(used <= bytes.len());
            let _ = f.pdu();
            for a in iscsi_pdu::ahs::iter(f.ahs) { let _ = a; }
            let _ = iscsi_pdu::text::parse(f.data);
            let _ = ScsiResponse::sense(f.data);
        }
        if let Ok(b) = Bhs::new_checked(&bytes[..]) { let _ = Pdu::parse(&b); }
    }
}

#[test]
fn unknown_opcode_is_an_error() {
    let mut b = [0u8; 48];
    b[0] = 0x3e;
    assert_eq!(
        Pdu::parse(&Bhs::new_unchecked(&b[..])),
        Err(iscsi_pdu::Error::UnknownOpcode(0x3e))
    );
}
