//! The session against a scripted target (sans-IO: bytes in, bytes out), for the
//! behaviours a real tgtd does not show on demand: the exact Data-Out sequences for
//! R2Ts, the CmdSN window, NOP-Out/NOP-In in both directions and their timeouts, and
//! reissue after reconnect with exactly-once completion. The same paths run against
//! tgtd in tests/tgtd.rs and tests/faults.rs.

use iscsi_initiator::negotiate::Proposal;
use iscsi_initiator::scsi::cdb;
use iscsi_initiator::{Command, Direction, Event, Session, SessionConfig, SessionError};
use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, DigestConfig, Pdu};
use std::time::{Duration, Instant};

/// Parses everything the session wants to send.
fn sent(s: &mut Session) -> Vec<(Pdu, Vec<u8>)> {
    let mut out = Vec::new();
    let buf = s.poll_transmit().to_vec();
    s.consume_transmit(buf.len());
    let mut rest = &buf[..];
    while let Some((f, used)) = frame::parse(rest, DigestConfig::default()).unwrap() {
        out.push((f.pdu().unwrap(), f.data.to_vec()));
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    out
}

fn deliver(s: &mut Session, p: Pdu, data: &[u8], now: Instant) {
    let mut b = Vec::new();
    frame::emit(&mut b, &p, &[], data, DigestConfig::default()).unwrap();
    s.receive(&b, now);
}

fn login(s: &mut Session, now: Instant, keys: &[(&str, &str)], max_cmd_window: u32) -> u32 {
    s.start_login(now);
    let pdus = sent(s);
    let Pdu::LoginRequest(req) = pdus[0].0 else {
        panic!("expected a login request")
    };
    assert_eq!(req.tsih, 0, "leading login / reinstatement uses TSIH 0");
    let mut data = Vec::new();
    for (k, v) in keys {
        iscsi_pdu::text::push(&mut data, k, v);
    }
    deliver(
        s,
        Pdu::LoginResponse(LoginResponse {
            transit: true,
            continue_flag: false,
            csg: Stage::Operational,
            nsg: Stage::FullFeature,
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih: 7,
            itt: req.itt,
            stat_sn: 100,
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn.wrapping_add(max_cmd_window - 1),
            status_class: 0,
            status_detail: 0,
        }),
        &data,
        now,
    );
    req.cmd_sn
}

/// A login response that does not log in: `class` 1 (redirect), 2
/// (initiator error) or 3 (target error) with `detail` (RFC 7143 section
/// 11.13.5), staying in the operational stage.
fn login_refusal(req: &LoginRequest, class: u8, detail: u8) -> LoginResponse {
    LoginResponse {
        transit: false,
        continue_flag: false,
        csg: Stage::Operational,
        nsg: Stage::Operational,
        version_max: 0,
        version_active: 0,
        isid: req.isid,
        tsih: 0,
        itt: req.itt,
        stat_sn: 0,
        exp_cmd_sn: req.cmd_sn,
        max_cmd_sn: req.cmd_sn,
        status_class: class,
        status_detail: detail,
    }
}

/// A SCSI response to `itt` with `status` (StatSN 100, no residuals, the
/// window fields 0).
fn response(itt: u32, status: u8) -> ScsiResponse {
    ScsiResponse {
        bidi_overflow: false,
        bidi_underflow: false,
        overflow: false,
        underflow: false,
        response: 0,
        status,
        itt,
        snack_tag: 0,
        stat_sn: 100,
        exp_cmd_sn: 0,
        max_cmd_sn: 0,
        exp_data_sn: 0,
        bidi_residual: 0,
        residual: 0,
    }
}

fn session(p: Proposal) -> Session {
    let mut c = SessionConfig::new("iqn.2026-01.test:i", Some("iqn.2026-01.test:t"));
    c.proposal = p;
    c.nop_interval = Duration::from_secs(5);
    c.response_timeout = Duration::from_secs(3);
    Session::new(c)
}

fn write(lba: u64, len: usize) -> Command {
    Command {
        lun: 1,
        cdb: cdb::write(lba, (len / 512) as u32, false),
        direction: Direction::Write,
        buffer: (0..len).map(|i| (i % 251) as u8).collect(),
    }
}

#[test]
fn write_with_immediate_unsolicited_and_r2t_data() {
    let now = Instant::now();
    let mut s = session(Proposal {
        initial_r2t: false,
        immediate_data: true,
        ..Proposal::default()
    });
    login(
        &mut s,
        now,
        &[
            ("InitialR2T", "No"),
            ("ImmediateData", "Yes"),
            ("MaxRecvDataSegmentLength", "8192"),
            ("FirstBurstLength", "32768"),
            ("MaxBurstLength", "65536"),
        ],
        32,
    );
    assert!(matches!(s.poll_event(), Some(Event::LoggedIn { .. })));
    let tag = s.submit(write(0, 100 * 1024)).unwrap();
    let pdus = sent(&mut s);
    // Command with 8 KiB immediate data, then unsolicited Data-Out up to FirstBurstLength.
    let (Pdu::ScsiCommand(c), imm) = &pdus[0] else {
        panic!("expected the command first")
    };
    assert!(
        c.write && !c.final_flag,
        "unsolicited Data-Out follows: F must be 0"
    );
    assert_eq!(c.expected_data_len, 100 * 1024);
    assert_eq!(imm.len(), 8192);
    let unsol: Vec<&DataOut> = pdus[1..]
        .iter()
        .map(|(p, d)| match p {
            Pdu::DataOut(o) => {
                assert!(d.len() <= 8192);
                o
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(unsol.len(), 3);
    assert!(unsol.iter().all(|o| o.ttt == 0xffff_ffff));
    assert_eq!(
        unsol.iter().map(|o| o.buffer_offset).collect::<Vec<_>>(),
        vec![8192, 16384, 24576]
    );
    assert_eq!(
        unsol.iter().map(|o| o.data_sn).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(unsol[2].final_flag && !unsol[0].final_flag);
    // R2T for the rest: 64 KiB at 32 KiB, then 4 KiB at 96 KiB.
    for (sn, off, len) in [(0u32, 32768u32, 65536u32), (1, 98304, 4096)] {
        deliver(
            &mut s,
            Pdu::R2t(R2t {
                lun: c.lun,
                itt: tag,
                ttt: 0x1000 + sn,
                stat_sn: 101,
                exp_cmd_sn: c.cmd_sn.wrapping_add(1),
                max_cmd_sn: c.cmd_sn.wrapping_add(32),
                r2t_sn: sn,
                buffer_offset: off,
                desired_len: len,
            }),
            &[],
            now,
        );
        let outs = sent(&mut s);
        assert_eq!(outs.len(), len.div_ceil(8192) as usize);
        let mut at = off;
        for (i, (p, d)) in outs.iter().enumerate() {
            let Pdu::DataOut(o) = p else {
                panic!("expected Data-Out")
            };
            assert_eq!(
                (o.ttt, o.data_sn, o.buffer_offset),
                (0x1000 + sn, i as u32, at)
            );
            assert_eq!(o.final_flag, i + 1 == outs.len());
            let expect: Vec<u8> = (at as usize..at as usize + d.len())
                .map(|i| (i % 251) as u8)
                .collect();
            assert_eq!(d, &expect, "Data-Out carries the right bytes");
            at += d.len() as u32;
        }
        assert_eq!(at, off + len);
    }
    // R2T beyond the buffer is a protocol error, not a panic.
    deliver(
        &mut s,
        Pdu::R2t(R2t {
            lun: c.lun,
            itt: tag,
            ttt: 9,
            stat_sn: 101,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
            r2t_sn: 2,
            buffer_offset: 100 * 1024,
            desired_len: 512,
        }),
        &[],
        now,
    );
    match s.poll_event() {
        Some(Event::Failed(SessionError::Protocol(m))) => assert!(m.contains("R2T"), "{m}"),
        other => panic!("expected a protocol failure, got {other:?}"),
    }
}

#[test]
fn cmdsn_window_holds_commands_until_max_cmd_sn_opens() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    let first = login(&mut s, now, &[], 2);
    let _ = s.poll_event();
    let tags: Vec<u32> = (0..5)
        .map(|i| {
            s.submit(Command {
                lun: 1,
                cdb: cdb::read(i, 1),
                direction: Direction::Read,
                buffer: vec![0; 512],
            })
            .unwrap()
        })
        .collect();
    let pdus = sent(&mut s);
    assert_eq!(pdus.len(), 2, "only CmdSN..=MaxCmdSN may be sent");
    // Complete the first with phase-collapsed Data-In and open the window by 2.
    deliver(
        &mut s,
        Pdu::DataIn(DataIn {
            final_flag: true,
            ack: false,
            overflow: false,
            underflow: false,
            status_present: true,
            status: 0,
            lun: 0,
            itt: tags[0],
            ttt: 0xffff_ffff,
            stat_sn: 100,
            exp_cmd_sn: first.wrapping_add(1),
            max_cmd_sn: first.wrapping_add(3),
            data_sn: 0,
            buffer_offset: 0,
            residual: 0,
        }),
        &[7u8; 512],
        now,
    );
    let Some(Event::Completed(c)) = s.poll_event() else {
        panic!("expected a completion")
    };
    assert_eq!(c.tag, tags[0]);
    assert_eq!(c.buffer, vec![7u8; 512]);
    assert_eq!(c.transferred, 512);
    let pdus = sent(&mut s);
    assert_eq!(pdus.len(), 2, "window opened by two");
    let Pdu::ScsiCommand(c3) = pdus[1].0 else {
        panic!()
    };
    assert_eq!(c3.cmd_sn, first.wrapping_add(3));
    assert_eq!(c3.exp_stat_sn, 101, "ExpStatSN follows StatSN");
}

#[test]
fn nop_in_both_directions_and_ping_timeout() {
    let t0 = Instant::now();
    let mut s = session(Proposal::default());
    login(&mut s, t0, &[], 8);
    let _ = s.poll_event();
    // Target ping: answered with the same TTT and LUN, ITT 0xffffffff, immediate.
    deliver(
        &mut s,
        Pdu::NopIn(NopIn {
            lun: 0x0001_0000_0000_0000,
            itt: 0xffff_ffff,
            ttt: 0xabcd,
            stat_sn: 101,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
        }),
        &[],
        t0,
    );
    let pdus = sent(&mut s);
    let Pdu::NopOut(o) = pdus[0].0 else {
        panic!("expected a NOP-Out answer")
    };
    assert_eq!(
        (o.itt, o.ttt, o.lun, o.immediate),
        (0xffff_ffff, 0xabcd, 0x0001_0000_0000_0000, true)
    );
    // Our keepalive after nop_interval of silence.
    let t1 = s.poll_timeout().unwrap();
    assert_eq!(t1, t0 + Duration::from_secs(5));
    s.handle_timeout(t1);
    let pdus = sent(&mut s);
    let Pdu::NopOut(ping) = pdus[0].0 else {
        panic!("expected a NOP-Out ping")
    };
    assert_ne!(ping.itt, 0xffff_ffff);
    assert_eq!(ping.ttt, 0xffff_ffff);
    // Answered: no failure.
    deliver(
        &mut s,
        Pdu::NopIn(NopIn {
            lun: 0,
            itt: ping.itt,
            ttt: 0xffff_ffff,
            stat_sn: 101,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
        }),
        &[],
        t1,
    );
    let t2 = s.poll_timeout().unwrap();
    assert_eq!(t2, t1 + Duration::from_secs(5));
    s.handle_timeout(t2);
    let _ = sent(&mut s);
    // Unanswered: the connection fails after response_timeout.
    let t3 = s.poll_timeout().unwrap();
    assert_eq!(t3, t2 + Duration::from_secs(3));
    s.handle_timeout(t3);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Failed(SessionError::Timeout(_)))
    ));
}

#[test]
fn reissue_after_reconnect_completes_each_command_once() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    login(&mut s, now, &[], 16);
    let _ = s.poll_event();
    let tags: Vec<u32> = (0..3)
        .map(|i| s.submit(write(i * 8, 4096)).unwrap())
        .collect();
    let first = sent(&mut s);
    assert_eq!(first.len(), 3);
    // The first completes; then the connection dies.
    deliver(&mut s, Pdu::ScsiResponse(response(tags[0], 0)), &[], now);
    assert!(matches!(s.poll_event(), Some(Event::Completed(c)) if c.tag == tags[0]));
    s.connection_lost("reset by peer");
    assert!(matches!(
        s.poll_event(),
        Some(Event::Failed(SessionError::ConnectionLost(_)))
    ));
    assert_eq!(s.outstanding(), 2);
    // New connection: reinstatement, then exactly the two unacknowledged writes again.
    login(&mut s, now, &[], 16);
    match s.poll_event() {
        Some(Event::LoggedIn { reissued, .. }) => assert_eq!(reissued, 2),
        other => panic!("expected LoggedIn, got {other:?}"),
    }
    let again = sent(&mut s);
    let itts: Vec<u32> = again
        .iter()
        .filter_map(|(p, _)| match p {
            Pdu::ScsiCommand(c) => Some(c.itt),
            _ => None,
        })
        .collect();
    assert_eq!(
        itts,
        vec![tags[1], tags[2]],
        "reissued in order, acknowledged one not resent"
    );
    // A stale response for the completed tag is a protocol error, never a 2nd completion.
    deliver(&mut s, Pdu::ScsiResponse(response(tags[0], 0)), &[], now);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Failed(SessionError::Protocol(_)))
    ));
}

#[test]
fn check_condition_descriptor_sense_is_typed() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    login(&mut s, now, &[], 8);
    let _ = s.poll_event();
    let tag = s.submit(write(0, 512)).unwrap();
    let _ = sent(&mut s);
    let mut data = vec![0, 8];
    data.extend_from_slice(&[0x72, 0x07, 0x27, 0x00, 0, 0, 0, 0]); // DATA PROTECT, write protected
    deliver(&mut s, Pdu::ScsiResponse(response(tag, 2)), &data, now);
    let Some(Event::Completed(c)) = s.poll_event() else {
        panic!()
    };
    let e = c.result.unwrap_err();
    assert!(
        e.to_string().contains("DataProtect") && e.to_string().contains("write protected"),
        "{e}"
    );
}

#[test]
fn abort_task_completes_the_task_as_aborted() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    login(&mut s, now, &[], 8);
    let _ = s.poll_event();
    let victim = s.submit(write(0, 512)).unwrap();
    let other = s.submit(write(8, 512)).unwrap();
    let _ = sent(&mut s);
    let tmf_tag = s.abort_task(victim).unwrap();
    let pdus = sent(&mut s);
    let Pdu::TaskMgmtRequest(t) = pdus[0].0 else {
        panic!("expected a TMF request")
    };
    assert_eq!(
        (t.function, t.referenced_task_tag, t.itt),
        (tmf::ABORT_TASK, victim, tmf_tag)
    );
    assert!(t.immediate);
    deliver(
        &mut s,
        Pdu::TaskMgmtResponse(TaskMgmtResponse {
            response: 0,
            itt: tmf_tag,
            stat_sn: 100,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
        }),
        &[],
        now,
    );
    let mut aborted = false;
    let mut tmf_done = false;
    while let Some(e) = s.poll_event() {
        match e {
            Event::Completed(c) => {
                assert_eq!(c.tag, victim);
                assert_eq!(c.result, Err(iscsi_initiator::CommandError::Aborted));
                aborted = true;
            }
            Event::TaskManagement { tag, response } => {
                assert_eq!((tag, response), (tmf_tag, 0));
                tmf_done = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(aborted && tmf_done);
    assert_eq!(s.outstanding(), 1, "the other command is untouched");
    let _ = other;
}

#[test]
fn login_text_continuation_and_extra_operational_round() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    s.start_login(now);
    let Pdu::LoginRequest(req) = sent(&mut s)[0].0 else {
        panic!()
    };
    let resp = |transit: bool, cont: bool, stat_sn: u32| {
        Pdu::LoginResponse(LoginResponse {
            transit,
            continue_flag: cont,
            csg: Stage::Operational,
            nsg: Stage::FullFeature,
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih: if transit { 9 } else { 0 },
            itt: req.itt,
            stat_sn,
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn.wrapping_add(8),
            status_class: 0,
            status_detail: 0,
        })
    };
    // A key split across two PDUs (C bit): "MaxBurstLength=65536".
    deliver(&mut s, resp(false, true, 1), b"MaxBurstLen", now);
    let p = sent(&mut s);
    let (Pdu::LoginRequest(r), d) = &p[0] else {
        panic!()
    };
    assert!(
        d.is_empty() && !r.transit,
        "C-bit response answered with an empty request"
    );
    // Rest of the key, and the target offers MaxOutstandingR2T... but no transit yet.
    deliver(&mut s, resp(false, false, 2), b"gth=65536\0", now);
    let p = sent(&mut s);
    let (Pdu::LoginRequest(r), _) = &p[0] else {
        panic!()
    };
    assert!(r.transit, "another operational round asks to transit");
    deliver(&mut s, resp(true, false, 3), b"", now);
    match s.poll_event() {
        Some(Event::LoggedIn { params, tsih, .. }) => {
            assert_eq!(tsih, 9);
            assert_eq!(params.max_burst_length, 65536);
        }
        other => panic!("expected LoggedIn, got {other:?}"),
    }
}

#[test]
fn login_reject_is_reported_with_its_meaning() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    s.start_login(now);
    let Pdu::LoginRequest(req) = sent(&mut s)[0].0 else {
        panic!()
    };
    deliver(
        &mut s,
        Pdu::LoginResponse(LoginResponse {
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
            ..login_refusal(&req, 2, 1)
        }),
        &[],
        now,
    );
    match s.poll_event() {
        Some(Event::Failed(e)) => assert!(e.to_string().contains("authentication failed"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn submit_after_logout_is_refused() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    login(&mut s, now, &[], 8);
    let _ = s.poll_event();
    s.logout();
    let pdus = sent(&mut s);
    let Pdu::LogoutRequest(l) = pdus[0].0 else {
        panic!("expected a logout")
    };
    assert_eq!(
        s.submit(write(0, 512)),
        Err(iscsi_initiator::session::SubmitError::Closed)
    );
    deliver(
        &mut s,
        Pdu::LogoutResponse(LogoutResponse {
            response: 0,
            itt: l.itt,
            stat_sn: 100,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
            time2wait: 0,
            time2retain: 0,
        }),
        &[],
        now,
    );
    assert_eq!(s.poll_event(), Some(Event::LoggedOut));
    assert!(s.is_closed());
}

#[test]
fn capacity_changed_unit_attention_is_reported_and_the_command_retried() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    login(&mut s, now, &[], 8);
    let _ = s.poll_event();
    let tag = s.submit(write(0, 512)).unwrap();
    let _ = sent(&mut s);
    // Fixed-format sense: UNIT ATTENTION, CAPACITY DATA HAS CHANGED (2Ah/09h).
    let mut sense = vec![0u8; 18];
    sense[0] = 0x70;
    sense[2] = 0x06;
    sense[7] = 10;
    sense[12] = 0x2a;
    sense[13] = 0x09;
    let mut data = (sense.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&sense);
    deliver(
        &mut s,
        Pdu::ScsiResponse(ScsiResponse {
            exp_cmd_sn: 2,
            max_cmd_sn: 9,
            ..response(tag, 2)
        }),
        &data,
        now,
    );
    match s.poll_event() {
        Some(Event::UnitAttention { tag: t, sense }) => {
            assert_eq!(t, tag);
            assert!(sense.is_capacity_changed(), "{sense:?}");
        }
        other => panic!("expected UnitAttention, got {other:?}"),
    }
    assert_eq!(
        s.poll_event(),
        None,
        "no completion: the command is retried"
    );
    let pdus = sent(&mut s);
    assert!(
        matches!(&pdus[0].0, Pdu::ScsiCommand(c) if c.itt == tag),
        "the command went out again: {pdus:?}"
    );
}

#[test]
fn login_redirect_is_a_typed_failure() {
    let now = Instant::now();
    let mut s = session(Proposal::default());
    for (detail, addr, want) in [
        (0x01, Some("10.9.9.9:3262,1"), Ok(false)),
        (0x02, Some("[::1]:3260,2"), Ok(true)),
        (0x01, None, Err(())),
    ] {
        s.start_login(now);
        let pdus = sent(&mut s);
        let Pdu::LoginRequest(req) = pdus[0].0 else {
            panic!("expected a login request")
        };
        let mut data = Vec::new();
        if let Some(a) = addr {
            iscsi_pdu::text::push(&mut data, "TargetAddress", a);
        }
        deliver(
            &mut s,
            Pdu::LoginResponse(login_refusal(&req, 1, detail)),
            &data,
            now,
        );
        match (want, s.poll_event()) {
            (Ok(perm), Some(Event::Failed(SessionError::Redirected { address, permanent }))) => {
                assert_eq!(Some(address.as_str()), addr);
                assert_eq!(permanent, perm);
            }
            (Err(()), Some(Event::Failed(SessionError::Protocol(m)))) => {
                assert!(m.contains("without a TargetAddress"), "{m}")
            }
            (w, e) => panic!("detail {detail}: wanted {w:?}, got {e:?}"),
        }
    }
}
