//! The driver over real TCP against a minimal in-process target that asks for a logout
//! (Asynchronous Message, event 1) while a read is outstanding: the initiator logs out,
//! logs in again and reissues the read, which then completes exactly once. tgtd never
//! sends this message on its own, hence the scripted target beside the tgtd tests.

use iscsi_initiator::scsi::cdb;
use iscsi_initiator::transport::{Connection, Reconnect};
use iscsi_initiator::{Command, Direction, SessionConfig};
use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, DigestConfig, Pdu};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn next_pdu(s: &mut TcpStream, buf: &mut Vec<u8>) -> (Pdu, Vec<u8>) {
    loop {
        if let Some((f, used)) = frame::parse(buf, DigestConfig::default()).unwrap() {
            let out = (f.pdu().unwrap(), f.data.to_vec());
            buf.drain(..used);
            return out;
        }
        let mut tmp = [0u8; 4096];
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "initiator closed the connection early");
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn send(s: &mut TcpStream, p: Pdu, data: &[u8]) {
    let mut b = Vec::new();
    frame::emit(&mut b, &p, &[], data, DigestConfig::default()).unwrap();
    s.write_all(&b).unwrap();
}

fn accept_login(l: &TcpListener) -> (TcpStream, Vec<u8>, u32) {
    let (mut s, _) = l.accept().unwrap();
    let mut buf = Vec::new();
    let (Pdu::LoginRequest(req), _) = next_pdu(&mut s, &mut buf) else {
        panic!("expected a login request")
    };
    assert_eq!(req.tsih, 0);
    send(
        &mut s,
        Pdu::LoginResponse(LoginResponse {
            transit: true,
            continue_flag: false,
            csg: Stage::Operational,
            nsg: Stage::FullFeature,
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih: 3,
            itt: req.itt,
            stat_sn: 1,
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn.wrapping_add(16),
            status_class: 0,
            status_detail: 0,
        }),
        b"MaxRecvDataSegmentLength=65536\0DefaultTime2Wait=2\0",
    );
    (s, buf, req.cmd_sn)
}

fn answer_logout(s: &mut TcpStream, buf: &mut Vec<u8>, stat_sn: u32) {
    let (Pdu::LogoutRequest(l), _) = next_pdu(s, buf) else {
        panic!("expected a logout request")
    };
    send(
        s,
        Pdu::LogoutResponse(LogoutResponse {
            response: 0,
            itt: l.itt,
            stat_sn,
            exp_cmd_sn: l.cmd_sn,
            max_cmd_sn: l.cmd_sn.wrapping_add(16),
            time2wait: 0,
            time2retain: 0,
        }),
        &[],
    );
}

#[test]
fn target_requested_logout_then_relogin_and_reissue() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let portal = l.local_addr().unwrap().to_string();
    let target = std::thread::spawn(move || {
        // Connection 1: take the read, ask for a logout instead of answering it.
        let (mut s, mut buf, cmd_sn) = accept_login(&l);
        let (Pdu::ScsiCommand(c), _) = next_pdu(&mut s, &mut buf) else {
            panic!("expected the read")
        };
        assert!(c.read);
        send(
            &mut s,
            Pdu::AsyncMessage(AsyncMessage {
                lun: 0,
                stat_sn: 2,
                exp_cmd_sn: cmd_sn.wrapping_add(1),
                max_cmd_sn: cmd_sn.wrapping_add(16),
                event: async_event::LOGOUT_REQUEST,
                vcode: 0,
                parameter1: 0,
                parameter2: 0,
                parameter3: 1,
            }),
            &[],
        );
        answer_logout(&mut s, &mut buf, 3);
        drop(s);
        // Connection 2: the same read again, answered with phase-collapsed Data-In.
        let (mut s, mut buf, _) = accept_login(&l);
        let (Pdu::ScsiCommand(c2), _) = next_pdu(&mut s, &mut buf) else {
            panic!("expected the reissued read")
        };
        assert_eq!((c2.itt, c2.cdb), (c.itt, c.cdb), "same command reissued");
        send(
            &mut s,
            Pdu::DataIn(DataIn {
                final_flag: true,
                ack: false,
                overflow: false,
                underflow: false,
                status_present: true,
                status: 0,
                lun: c2.lun,
                itt: c2.itt,
                ttt: u32::MAX,
                stat_sn: 2,
                exp_cmd_sn: c2.cmd_sn.wrapping_add(1),
                max_cmd_sn: c2.cmd_sn.wrapping_add(16),
                data_sn: 0,
                buffer_offset: 0,
                residual: 0,
            }),
            &[0x5a; 4096],
        );
        answer_logout(&mut s, &mut buf, 3);
    });
    let cfg = SessionConfig::new("iqn.2026-01.test:i", Some("iqn.2026-01.test:t"));
    let mut conn = Connection::login(&portal, cfg).unwrap();
    conn.reconnect = Reconnect {
        enabled: true,
        give_up_after: Duration::from_secs(10),
    };
    let c = conn
        .execute(Command {
            lun: 1,
            cdb: cdb::read(0, 8),
            direction: Direction::Read,
            buffer: vec![0u8; 4096],
        })
        .expect("read completes after the re-login");
    assert_eq!(c.buffer, vec![0x5a; 4096]);
    assert_eq!(conn.recoveries, 1);
    conn.logout().unwrap();
    target.join().unwrap();
}
