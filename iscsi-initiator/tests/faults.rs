//! Faults against tgtd: the target killed and restarted in the middle of a write stream,
//! and the connection dropped under outstanding commands. ErrorRecoveryLevel 0: the
//! initiator logs in again (session reinstatement) and reissues every command not yet
//! completed; every command completes exactly once and the data is complete.

mod common;

use common::{Rng, Tgtd, INITIATOR};
use iscsi_initiator::scsi::cdb;
use iscsi_initiator::transport::{Connection, Reconnect};
use iscsi_initiator::{Command, Direction, SessionConfig};
use std::collections::HashMap;
use std::time::Duration;

const SIZE: u64 = 32 << 20;
const IO: u64 = 64 << 10;

fn login(t: &Tgtd) -> Connection {
    let mut cfg = SessionConfig::new(INITIATOR, Some(&t.iqn));
    cfg.response_timeout = Duration::from_secs(5);
    let mut c = Connection::login(&t.portal(), cfg).expect("login");
    c.reconnect = Reconnect {
        enabled: true,
        give_up_after: Duration::from_secs(30),
    };
    c
}

/// Streams `n` 64 KiB writes at QD 8, calling `fault` once after `at` completions.
fn write_stream(
    t: &mut Tgtd,
    conn: &mut Connection,
    n: u64,
    at: u64,
    mut fault: impl FnMut(&mut Tgtd, &mut Connection),
) -> Vec<u8> {
    let mut model = vec![0u8; SIZE as usize];
    let mut rng = Rng(0xfeed);
    let mut inflight: HashMap<u32, u64> = HashMap::new();
    let mut completed = 0u64;
    let mut next = 0u64;
    let mut faulted = false;
    while completed < n {
        while next < n && inflight.len() < 8 {
            let off = (next * IO) % SIZE;
            let mut data = vec![0u8; IO as usize];
            rng.fill(&mut data);
            model[off as usize..(off + IO) as usize].copy_from_slice(&data);
            let tag = conn
                .submit(Command {
                    lun: 1,
                    cdb: cdb::write(off / 512, (IO / 512) as u32, false),
                    direction: Direction::Write,
                    buffer: data,
                })
                .unwrap();
            inflight.insert(tag, off);
            next += 1;
        }
        if !faulted && completed >= at {
            faulted = true;
            fault(t, conn);
        }
        let c = conn.next_completion().expect("completion (after recovery)");
        c.result.expect("write status");
        assert!(
            inflight.remove(&c.tag).is_some(),
            "tag {:#x} completed twice or never submitted",
            c.tag
        );
        completed += 1;
    }
    assert!(inflight.is_empty());
    model
}

fn verify(t: &Tgtd, conn: &mut Connection, model: &[u8]) {
    let mut all = vec![0u8; SIZE as usize];
    for (i, chunk) in all.chunks_mut(1 << 20).enumerate() {
        let c = conn
            .execute(Command {
                lun: 1,
                cdb: cdb::read(i as u64 * 2048, 2048),
                direction: Direction::Read,
                buffer: vec![0u8; 1 << 20],
            })
            .unwrap();
        chunk.copy_from_slice(&c.buffer);
    }
    assert!(all == model, "data read back differs after recovery");
    assert!(
        t.backing_bytes(0, SIZE as usize) == model,
        "backing file differs"
    );
}

#[test]
fn tgtd_killed_and_restarted_mid_write_stream() {
    let mut t = Tgtd::start("restart", SIZE);
    let mut conn = login(&t);
    let model = write_stream(&mut t, &mut conn, 400, 150, |t, _| t.restart());
    assert!(conn.recoveries >= 1, "the session never had to recover");
    verify(&t, &mut conn, &model);
    conn.logout().unwrap();
}

#[test]
fn connection_dropped_with_commands_outstanding() {
    let mut t = Tgtd::start("dropconn", SIZE);
    let mut conn = login(&t);
    let model = write_stream(&mut t, &mut conn, 300, 100, |_, c| c.kill_transport());
    assert_eq!(conn.recoveries, 1);
    verify(&t, &mut conn, &model);
    conn.logout().unwrap();
}

#[test]
fn reads_outstanding_when_tgtd_restarts_are_reissued() {
    let mut t = Tgtd::start("readfault", SIZE);
    let mut conn = login(&t);
    let model = write_stream(&mut t, &mut conn, (SIZE / IO) * 2, u64::MAX, |_, _| {});
    // 16 reads of 1 MiB in flight, then tgtd dies and comes back.
    let mut inflight = HashMap::new();
    for i in 0..16u64 {
        let tag = conn
            .submit(Command {
                lun: 1,
                cdb: cdb::read(i * 2048, 2048),
                direction: Direction::Read,
                buffer: vec![0u8; 1 << 20],
            })
            .unwrap();
        inflight.insert(tag, i);
    }
    // Put them on the wire (some may complete), then kill the target under them.
    conn.run_for(Duration::from_millis(1)).unwrap();
    t.restart();
    while !inflight.is_empty() {
        let c = conn.next_completion().expect("completion after recovery");
        c.result.clone().expect("read status");
        let i = inflight.remove(&c.tag).expect("each read completes once");
        let off = (i << 20) as usize;
        assert!(c.buffer == model[off..off + (1 << 20)], "read {i} differs");
    }
    assert!(conn.recoveries >= 1);
    conn.logout().unwrap();
}

#[test]
fn blocking_connection_fails_over_to_the_next_portal_and_follows_redirects() {
    let mut a = Tgtd::start("cfail", SIZE);
    let b = Tgtd::start_sibling("cfail-b", &a, "127.0.0.2");
    let mut cfg = SessionConfig::new(INITIATOR, Some(&a.iqn));
    cfg.response_timeout = Duration::from_secs(5);
    let mut conn =
        Connection::login_portals(vec![a.portal(), b.portal()], cfg.clone()).expect("login");
    assert_eq!(conn.portal(), a.portal());
    conn.reconnect = Reconnect {
        enabled: true,
        give_up_after: Duration::from_secs(30),
    };
    // The first portal's tgtd dies mid stream: the connection moves to the
    // second one (same LU) and the stream completes.
    let model = write_stream(&mut a, &mut conn, 200, 60, |t, _| t.stop());
    assert_eq!(conn.recoveries, 1);
    assert_eq!(conn.portal(), b.portal());
    verify(&b, &mut conn, &model);
    conn.logout().unwrap();
    // A portal list whose first entry is dead logs in on the second.
    let conn = Connection::login_portals(vec![a.portal(), b.portal()], cfg.clone()).unwrap();
    assert_eq!(conn.portal(), b.portal());
    conn.logout().unwrap();
    // A redirect (RFC 7143 section 11.13.5) is followed.
    a.resume();
    a.redirect_to("127.0.0.2", b.port, false);
    let conn = Connection::login(&a.portal(), cfg).unwrap();
    assert_eq!((conn.redirects, conn.portal()), (1, b.portal().as_str()));
    conn.logout().unwrap();
}
