//! iSCSI failover against real tgtd: two tgtd processes serve the same LU
//! (same IQN, same backing file) on two portals, 127.0.0.1 and 127.0.0.2;
//! the device names both (`iscsi://A,B/IQN/1`). The real virtio-blk device
//! code (`vfio::blk::BlkDevice`, driven by the guest-driver simulator) runs a
//! write/verify workload on `IscsiBackend` while the active portal dies:
//!
//! * SIGKILL (TCP reset): the session logs in on the other portal at once
//!   and reissues what was in flight; every request completes OK, the data
//!   read back and in the backing file is exact;
//! * SIGSTOP (a silent portal): the NOP-Out ping goes unanswered, the
//!   connection is declared dead after `nop_interval + nop_timeout`, same
//!   outcome;
//! * both portals gone: past `replacement_timeout` the outstanding and the
//!   new requests fail with VIRTIO_BLK_S_IOERR (the device and the process
//!   carry on), and once a portal is back the device works again.
//!
//! Also: a login redirect (tgtd's RedirectAddress/RedirectPort/RedirectReason)
//! is followed, temporarily and permanently; mutual CHAP against tgtd's
//! outgoing account works, and a wrong target secret is a clear error.
//!
//! Needs the Debian package `tgt`, and root (tgtd).

#[path = "../../iscsi-initiator/tests/common/mod.rs"]
mod tgt;

mod disk;

use blk_iscsi::{IscsiBackend, IscsiSpec, SessionState, SessionStats};
use disk::{pattern, Disk};
use iscsi_initiator::chap::Chap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vfio::backend::Backend;
use vfio::blk::mock::BlkReq;
use vfio::blk::{VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK};
use vfio::blk::{VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use vfio::virtq::mock::Buf;

const LUN_BYTES: u64 = 16 << 20;
/// Bytes per request.
const REQ: u64 = 64 << 10;
/// Requests per batch (all outstanding together).
const BATCH: usize = 32;
/// Guest buffers: writes here, reads 16 MiB above.
const WBUF: u64 = 8 << 20;
const RBUF: u64 = 24 << 20;

struct Rig {
    disk: Disk,
    stats: Arc<SessionStats>,
    /// What the LU must hold.
    model: Vec<u8>,
}

impl std::ops::Deref for Rig {
    type Target = Disk;
    fn deref(&self) -> &Disk {
        &self.disk
    }
}

impl std::ops::DerefMut for Rig {
    fn deref_mut(&mut self) -> &mut Disk {
        &mut self.disk
    }
}

fn rig(url: &str) -> Rig {
    let spec = IscsiSpec::parse(url).unwrap();
    let be = IscsiBackend::connect(&spec, 256).expect("log in to tgtd");
    assert_eq!(be.info().capacity, LUN_BYTES, "READ CAPACITY");
    let stats = be.stats();
    assert_eq!(stats.state(), SessionState::LoggedIn);
    assert!(
        blk_iscsi::stats::registry()
            .iter()
            .any(|s| Arc::ptr_eq(s, &stats)),
        "the device's stats are listed for metrics"
    );
    Rig {
        disk: Disk::new(be, "failover"),
        stats,
        model: vec![0; LUN_BYTES as usize],
    }
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    SessionStats::get(c)
}

impl Rig {
    /// Queues BATCH writes of fresh data into region `region` of the LU.
    fn queue_writes(&mut self, region: u64, seed: u64) -> Vec<BlkReq> {
        (0..BATCH as u64)
            .map(|i| {
                let d = pattern(seed * 1000 + i, REQ as usize);
                let buf = WBUF + i * REQ;
                self.mem.write(buf, &d).unwrap();
                let at = (region * BATCH as u64 + i) * REQ;
                self.model[at as usize..(at + REQ) as usize].copy_from_slice(&d);
                self.drv
                    .request(VIRTIO_BLK_T_OUT, at / 512, &[Buf::r(buf, REQ as u32)], true)
            })
            .collect()
    }

    /// Queues BATCH reads of region `region`.
    fn queue_reads(&mut self, region: u64) -> Vec<BlkReq> {
        self.mem
            .write(RBUF, &vec![0xee; BATCH * REQ as usize])
            .unwrap();
        (0..BATCH as u64)
            .map(|i| {
                let at = (region * BATCH as u64 + i) * REQ;
                self.drv.request(
                    VIRTIO_BLK_T_IN,
                    at / 512,
                    &[Buf::w(RBUF + i * REQ, REQ as u32)],
                    true,
                )
            })
            .collect()
    }

    /// The data read into the read buffers equals the model's region.
    fn check_read(&self, region: u64) {
        let mut got = vec![0u8; BATCH * REQ as usize];
        self.mem.read(RBUF, &mut got).unwrap();
        let at = (region * BATCH as u64 * REQ) as usize;
        assert!(
            got == self.model[at..at + got.len()],
            "region {region} read back differs from what was written"
        );
    }

    /// Write a region, then read it back and verify; all must succeed.
    fn write_verify(&mut self, region: u64, seed: u64, during: impl FnMut(usize)) {
        let w = self.queue_writes(region, seed);
        let st = self.complete_within(&w, Duration::from_secs(40), during);
        assert!(
            st.iter().all(|&s| s == VIRTIO_BLK_S_OK),
            "write statuses {st:?} (an I/O error reached the driver)"
        );
        let r = self.queue_reads(region);
        let st = self.complete_within(&r, Duration::from_secs(40), |_| {});
        assert!(
            st.iter().all(|&s| s == VIRTIO_BLK_S_OK),
            "read statuses {st:?}"
        );
        self.check_read(region);
    }

    fn poll_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&Rig) -> bool) {
        let end = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < end, "{what} not within {limit:?}");
            self.dev.poll();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The tests of this file run one at a time: their timing assertions
/// (a silent portal is noticed only after the NOP timeout) must not depend
/// on what another test's tgtds do on the same loopback meanwhile.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn two_portals(name: &str) -> (tgt::Tgtd, tgt::Tgtd) {
    let a = tgt::Tgtd::start(name, LUN_BYTES);
    let b = tgt::Tgtd::start_sibling(&format!("{name}-b"), &a, "127.0.0.2");
    (a, b)
}

#[test]
fn active_portal_killed_then_all_gone_then_back() {
    let _serial = serial();
    let (mut a, mut b) = two_portals("fo-kill");
    let mut r = rig(&format!(
        "iscsi://{},{}/{}/1?replacement_timeout=3&nop_interval=1&nop_timeout=2",
        a.portal(),
        b.portal(),
        a.iqn
    ));
    r.write_verify(0, 1, |_| {});
    // SIGKILL the active portal's tgtd with a batch of writes in flight.
    let mut killed = false;
    r.write_verify(1, 2, |round| {
        if round == 1 {
            a.stop();
            killed = true;
        }
    });
    assert!(killed);
    let s = Arc::clone(&r.stats);
    assert_eq!(s.state(), SessionState::LoggedIn);
    assert_eq!(get(&s.reconnects), 1, "one reconnect");
    assert_eq!(get(&s.portal_switches), 1, "moved to the second portal");
    assert_eq!(s.portal_index.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(
        get(&s.failed_over_commands) > 0,
        "the writes in flight were reissued on the new portal"
    );
    assert_eq!(get(&s.timed_out_commands), 0);
    // More rounds on the second portal, overwriting earlier regions.
    r.write_verify(0, 3, |_| {});
    r.write_verify(2, 4, |_| {});
    assert!(
        b.backing_bytes(0, 3 * BATCH * REQ as usize) == r.model[..3 * BATCH * REQ as usize],
        "the backing file holds exactly what the guest wrote"
    );

    // Both portals gone (the second killed before the batch goes out, so
    // none of it can complete): the batch fails after the replacement
    // timeout (3 s), cleanly.
    b.stop();
    let w = r.queue_writes(3, 5);
    let t0 = Instant::now();
    let st = r.complete_within(&w, Duration::from_secs(30), |_| {});
    let waited = t0.elapsed();
    assert!(
        st.iter().all(|&s| s == VIRTIO_BLK_S_IOERR),
        "statuses past the replacement timeout: {st:?}"
    );
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(15),
        "failed after {waited:?}, replacement timeout 3 s"
    );
    assert_eq!(s.state(), SessionState::Failed);
    assert_eq!(get(&s.timed_out_commands), BATCH as u64);
    // New I/O fails at once while no portal answers.
    let rd = r.queue_reads(0);
    let t0 = Instant::now();
    let st = r.complete_within(&rd, Duration::from_secs(5), |_| {});
    assert!(st.iter().all(|&s| s == VIRTIO_BLK_S_IOERR), "{st:?}");
    assert!(t0.elapsed() < Duration::from_secs(1), "failed fast");
    // The failed writes are not in the model: put back what the LU holds.
    let at = (3 * BATCH as u64 * REQ) as usize;
    let len = BATCH * REQ as usize;
    r.model[at..at + len].copy_from_slice(&a.backing_bytes(at as u64, len));

    // A portal comes back: the device recovers by itself.
    a.resume();
    r.poll_until("a new login", Duration::from_secs(20), |r| {
        r.stats.state() == SessionState::LoggedIn
    });
    assert_eq!(get(&s.reconnects), 2);
    r.write_verify(3, 6, |_| {});
    r.write_verify(1, 7, |_| {});
    assert!(
        a.backing_bytes(0, LUN_BYTES as usize) == r.model,
        "backing file after recovery"
    );
}

#[test]
fn silent_portal_detected_by_unanswered_nop() {
    let _serial = serial();
    let (a, b) = two_portals("fo-stop");
    let mut r = rig(&format!(
        "iscsi://{},{}/{}/1?replacement_timeout=30&nop_interval=1&nop_timeout=2",
        a.portal(),
        b.portal(),
        a.iqn
    ));
    r.write_verify(0, 11, |_| {});
    let t0 = Instant::now();
    let mut frozen = false;
    // SIGSTOP: the TCP connection stays up, nothing answers.
    r.write_verify(1, 12, |round| {
        if round == 1 {
            a.freeze();
            frozen = true;
        }
    });
    assert!(frozen);
    let took = t0.elapsed();
    let s = Arc::clone(&r.stats);
    assert_eq!(get(&s.connection_losses), 1);
    assert_eq!(get(&s.portal_switches), 1, "moved to the second portal");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "failover after {took:?} (NOP-Out after 1 s idle, 2 s to answer)"
    );
    r.write_verify(2, 13, |_| {});
    r.write_verify(0, 14, |_| {});
    let n = 3 * BATCH * REQ as usize;
    assert!(b.backing_bytes(0, n) == r.model[..n]);
    // `a` stays frozen until its Drop SIGKILLs it: the writes it had taken
    // but not performed never run after the newer ones.
}

#[test]
fn login_redirect_is_followed() {
    let _serial = serial();
    let (a, b) = two_portals("fo-redir");
    // tgtd redirects only initiators whose address differs from the
    // redirect address: we come from 127.0.0.1, the redirect names 127.0.0.2.
    a.redirect_to("127.0.0.2", b.port, false);
    let url = format!("iscsi://{}/{}/1", a.portal(), a.iqn);
    let mut r = rig(&url);
    assert_eq!(get(&r.stats.redirects), 1, "one redirect followed");
    r.write_verify(0, 21, |_| {});
    let n = BATCH * REQ as usize;
    assert!(b.backing_bytes(0, n) == r.model[..n]);
    drop(r);
    // Permanent: followed the same way.
    a.redirect_to("127.0.0.2", b.port, true);
    let mut r = rig(&url);
    assert_eq!(get(&r.stats.redirects), 1);
    r.write_verify(1, 22, |_| {});
    // A redirect to a portal that does not answer fails the login clearly.
    a.redirect_to("127.0.0.2", 1, false);
    let e = IscsiBackend::connect(&IscsiSpec::parse(&url).unwrap(), 4).unwrap_err();
    assert!(e.contains("127.0.0.2:1") && e.contains("connect"), "{e}");
}

#[test]
fn mutual_chap_with_tgtd() {
    let _serial = serial();
    let chap = Chap {
        user: "vsw-init".into(),
        secret: "init-secret-12".into(),
        mutual: Some(("vsw-target".into(), "target-secret-1".into())),
    };
    let t = tgt::Tgtd::start_with("fo-chap", LUN_BYTES, Some(chap));
    let url = |user: &str, secret: &str, tsecret: &str| {
        format!(
            "iscsi://{user}%{secret}@{}/{}/1?target_user=vsw-target&target_password={tsecret}",
            t.portal(),
            t.iqn
        )
    };
    let mut r = rig(&url("vsw-init", "init-secret-12", "target-secret-1"));
    r.write_verify(0, 31, |_| {});
    let n = BATCH * REQ as usize;
    assert!(t.backing_bytes(0, n) == r.model[..n]);
    drop(r);
    // The target proves a different secret than we expect: refused by us.
    let e = IscsiBackend::connect(
        &IscsiSpec::parse(&url("vsw-init", "init-secret-12", "wrong-secret-9")).unwrap(),
        4,
    )
    .unwrap_err();
    assert!(
        e.contains("CHAP authentication failed") && e.contains("target's CHAP_R is wrong"),
        "{e}"
    );
    assert!(
        !e.contains("wrong-secret-9") && !e.contains("init-secret-12"),
        "secret leaked: {e}"
    );
    // Our own secret wrong: the target refuses.
    let e = IscsiBackend::connect(
        &IscsiSpec::parse(&url("vsw-init", "bad-init-secret", "target-secret-1")).unwrap(),
        4,
    )
    .unwrap_err();
    assert!(e.contains("authentication failed"), "{e}");
}
