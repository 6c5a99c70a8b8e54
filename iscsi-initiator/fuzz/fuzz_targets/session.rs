//! The session fed arbitrary target bytes, both during login and in full feature phase
//! with commands outstanding: no panic, no hang, no completion twice.
#![no_main]

use iscsi_initiator::scsi::cdb;
use iscsi_initiator::{Command, Direction, Event, Session, SessionConfig};
use iscsi_pdu::pdu::{LoginResponse, Stage};
use iscsi_pdu::{frame, DigestConfig, Pdu};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::new("iqn.2026-01.f:i", Some("iqn.2026-01.f:t")));
    s.start_login(now);
    if mode & 1 == 1 {
        // Reach full feature phase first, with commands outstanding.
        let (f, _) = frame::parse(s.poll_transmit(), DigestConfig::default()).unwrap().unwrap();
        let Ok(Pdu::LoginRequest(req)) = f.pdu() else { return };
        let n = s.poll_transmit().len();
        s.consume_transmit(n);
        let resp = Pdu::LoginResponse(LoginResponse {
            transit: true, continue_flag: false, csg: Stage::Operational, nsg: Stage::FullFeature,
            version_max: 0, version_active: 0, isid: req.isid, tsih: 1, itt: req.itt, stat_sn: 1,
            exp_cmd_sn: req.cmd_sn, max_cmd_sn: req.cmd_sn.wrapping_add(8), status_class: 0,
            status_detail: 0,
        });
        let mut b = Vec::new();
        frame::emit(&mut b, &resp, &[], b"MaxRecvDataSegmentLength=8192\0", DigestConfig::default()).unwrap();
        s.receive(&b, now);
        for i in 0..4u64 {
            let write = i % 2 == 1;
            let _ = s.submit(Command {
                lun: 1,
                cdb: if write { cdb::write(i, 16, false) } else { cdb::read(i, 8) },
                direction: if write { Direction::Write } else { Direction::Read },
                buffer: vec![0u8; if write { 8192 } else { 4096 }],
            });
        }
    }
    let mut done = HashSet::new();
    let step = 1 + (mode as usize >> 1);
    for (i, chunk) in input.chunks(step * 13).enumerate() {
        s.receive(chunk, now + Duration::from_millis(i as u64));
        s.handle_timeout(now + Duration::from_secs(i as u64));
        while let Some(e) = s.poll_event() {
            if let Event::Completed(c) = e {
                assert!(done.insert(c.tag), "completed twice");
            }
        }
        let n = s.poll_transmit().len();
        assert!(n < 64 << 20);
        s.consume_transmit(n);
    }
});
