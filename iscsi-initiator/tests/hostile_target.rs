//! The session against arbitrary target responses: garbage bytes, and well-framed PDUs
//! with arbitrary fields aimed at real task tags. Never a panic, never a completion
//! twice, no unbounded output, and every failure is a clear `Event::Failed`.

use iscsi_initiator::scsi::cdb;
use iscsi_initiator::{Command, Direction, Event, Session, SessionConfig};
use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, DigestConfig, Pdu};
use proptest::prelude::*;
use std::collections::HashSet;
use std::time::Instant;

fn logged_in() -> (Session, Vec<u32>) {
    let mut s = Session::new(SessionConfig::new(
        "iqn.2026-01.test:i",
        Some("iqn.2026-01.test:t"),
    ));
    let now = Instant::now();
    s.start_login(now);
    let (f, _) = frame::parse(s.poll_transmit(), DigestConfig::default())
        .unwrap()
        .unwrap();
    let Ok(Pdu::LoginRequest(req)) = f.pdu() else {
        panic!("first PDU is not a login request")
    };
    let n = s.poll_transmit().len();
    s.consume_transmit(n);
    let mut data = Vec::new();
    iscsi_pdu::text::push(&mut data, "MaxRecvDataSegmentLength", "8192");
    iscsi_pdu::text::push(&mut data, "ImmediateData", "Yes");
    iscsi_pdu::text::push(&mut data, "InitialR2T", "Yes");
    let resp = Pdu::LoginResponse(LoginResponse {
        transit: true,
        continue_flag: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_active: 0,
        isid: req.isid,
        tsih: 1,
        itt: req.itt,
        stat_sn: 1,
        exp_cmd_sn: req.cmd_sn,
        max_cmd_sn: req.cmd_sn.wrapping_add(64),
        status_class: 0,
        status_detail: 0,
    });
    let mut bytes = Vec::new();
    frame::emit(&mut bytes, &resp, &[], &data, DigestConfig::default()).unwrap();
    s.receive(&bytes, now);
    assert!(matches!(s.poll_event(), Some(Event::LoggedIn { .. })));
    let mut tags = Vec::new();
    for i in 0..4u64 {
        let (direction, cdb, len) = if i % 2 == 0 {
            (Direction::Read, cdb::read(i * 8, 8), 4096)
        } else {
            (Direction::Write, cdb::write(i * 8, 64, false), 32768)
        };
        tags.push(
            s.submit(Command {
                lun: 1,
                cdb,
                direction,
                buffer: vec![0u8; len],
            })
            .unwrap(),
        );
    }
    (s, tags)
}

fn target_pdu(tags: Vec<u32>) -> impl Strategy<Value = (Pdu, Vec<u8>)> {
    let tag = prop_oneof![
        proptest::sample::select(tags),
        any::<u32>(),
        Just(0xffff_ffffu32)
    ];
    let u = any::<u32>;
    let small = || 0u32..70_000;
    let data = proptest::collection::vec(any::<u8>(), 0..9000);
    prop_oneof![
        (
            tag.clone(),
            small(),
            any::<[bool; 5]>(),
            any::<u8>(),
            u(),
            u(),
            data.clone()
        )
            .prop_map(|(itt, off, f, st, sn, r, d)| (
                Pdu::DataIn(DataIn {
                    final_flag: f[0],
                    ack: f[1],
                    overflow: f[2],
                    underflow: f[3],
                    status_present: f[4],
                    status: st,
                    lun: 0,
                    itt,
                    ttt: u32::MAX,
                    stat_sn: sn,
                    exp_cmd_sn: 1,
                    max_cmd_sn: 100,
                    data_sn: r % 3,
                    buffer_offset: off,
                    residual: r
                }),
                d
            )),
        (tag.clone(), small(), small(), u()).prop_map(|(itt, off, len, ttt)| (
            Pdu::R2t(R2t {
                lun: 0,
                itt,
                ttt,
                stat_sn: 2,
                exp_cmd_sn: 1,
                max_cmd_sn: 100,
                r2t_sn: 0,
                buffer_offset: off,
                desired_len: len
            }),
            Vec::new()
        )),
        (tag.clone(), any::<u8>(), any::<u8>(), u(), data.clone()).prop_map(
            |(itt, resp, st, sn, d)| (
                Pdu::ScsiResponse(ScsiResponse {
                    bidi_overflow: false,
                    bidi_underflow: false,
                    overflow: false,
                    underflow: sn % 2 == 0,
                    response: resp % 2,
                    status: st,
                    itt,
                    snack_tag: 0,
                    stat_sn: sn,
                    exp_cmd_sn: 1,
                    max_cmd_sn: 100,
                    exp_data_sn: 0,
                    bidi_residual: 0,
                    residual: sn
                }),
                d
            )
        ),
        (tag.clone(), u(), u()).prop_map(|(itt, ttt, sn)| (
            Pdu::NopIn(NopIn {
                lun: 0,
                itt,
                ttt,
                stat_sn: sn,
                exp_cmd_sn: sn,
                max_cmd_sn: sn.wrapping_add(5)
            }),
            Vec::new()
        )),
        (any::<u8>(), data.clone()).prop_map(|(reason, d)| (
            Pdu::Reject(Reject {
                reason,
                stat_sn: 3,
                exp_cmd_sn: 1,
                max_cmd_sn: 100,
                data_sn: 0
            }),
            d
        )),
        (any::<u8>(), u()).prop_map(|(event, sn)| (
            Pdu::AsyncMessage(AsyncMessage {
                lun: 0,
                stat_sn: sn,
                exp_cmd_sn: 1,
                max_cmd_sn: 100,
                event,
                vcode: 0,
                parameter1: 0,
                parameter2: 0,
                parameter3: 0
            }),
            Vec::new()
        )),
        (tag.clone(), data).prop_map(|(itt, d)| (
            Pdu::TextResponse(TextResponse {
                final_flag: true,
                continue_flag: false,
                lun: 0,
                itt,
                ttt: u32::MAX,
                stat_sn: 4,
                exp_cmd_sn: 1,
                max_cmd_sn: 100
            }),
            d
        )),
        (tag, any::<u8>()).prop_map(|(itt, r)| (
            Pdu::TaskMgmtResponse(TaskMgmtResponse {
                response: r,
                itt,
                stat_sn: 5,
                exp_cmd_sn: 1,
                max_cmd_sn: 100
            }),
            Vec::new()
        )),
    ]
}

fn drain(s: &mut Session, done: &mut HashSet<u32>) -> bool {
    let mut failed = false;
    while let Some(e) = s.poll_event() {
        match e {
            Event::Completed(c) => assert!(done.insert(c.tag), "tag {:#x} completed twice", c.tag),
            Event::Failed(e) => {
                assert!(!e.to_string().is_empty());
                failed = true;
            }
            _ => {}
        }
    }
    let n = s.poll_transmit().len();
    assert!(n < 16 << 20, "unbounded output: {n} bytes");
    s.consume_transmit(n);
    failed
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn garbage_bytes_after_login_start(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 0..8)) {
        let mut s = Session::new(SessionConfig::new("iqn.2026-01.test:i", Some("iqn.2026-01.test:t")));
        s.start_login(Instant::now());
        let mut done = HashSet::new();
        for c in chunks {
            s.receive(&c, Instant::now());
            drain(&mut s, &mut done);
        }
    }

    #[test]
    fn arbitrary_target_pdus_in_full_feature_phase(
        seq in proptest::collection::vec(target_pdu(vec![0x1_0000, 0x1_0001, 0x1_0002, 0x1_0003]), 1..12),
        split in 1usize..64,
    ) {
        let (mut s, tags) = logged_in();
        let mut done = HashSet::new();
        drain(&mut s, &mut done);
        let mut bytes = Vec::new();
        for (p, d) in &seq {
            frame::emit(&mut bytes, p, &[], d, DigestConfig::default()).unwrap();
        }
        // Delivered in odd-sized pieces, as TCP may.
        for c in bytes.chunks(split * 37) {
            s.receive(c, Instant::now());
            if drain(&mut s, &mut done) {
                break;
            }
        }
        for t in done {
            prop_assert!(tags.contains(&t), "completion for a tag never submitted");
        }
    }
}

#[test]
fn oversized_data_segment_is_a_clear_error() {
    let (mut s, tags) = logged_in();
    let mut done = HashSet::new();
    drain(&mut s, &mut done);
    let mut bhs = [0u8; 48];
    bhs[0] = 0x25;
    bhs[1] = 0x80;
    bhs[5..8].copy_from_slice(&[0x10, 0, 0]); // 1 MiB > our MaxRecvDataSegmentLength
    bhs[16..20].copy_from_slice(&tags[0].to_be_bytes());
    s.receive(&bhs, Instant::now());
    let mut failed = None;
    while let Some(e) = s.poll_event() {
        if let Event::Failed(e) = e {
            failed = Some(e.to_string());
        }
    }
    let msg = failed.expect("session must fail");
    assert!(msg.contains("MaxRecvDataSegmentLength"), "{msg}");
    // ERL 0: the commands survive for reissue after the next login.
    assert_eq!(s.outstanding(), 4);
}
