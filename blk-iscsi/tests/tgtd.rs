//! `IscsiBackend` under the real virtio-blk device code (`vfio::blk::BlkDevice`
//! driven by the guest-driver simulator) against a real tgtd on loopback:
//! many requests outstanding at once, requests split across several SCSI
//! commands, data checked in tgtd's backing file and read back through the
//! device; and tgtd killed (SIGKILL) and restarted while writes are in
//! flight: every request still completes exactly once with OK status and the
//! data lands (ErrorRecoveryLevel 0 session reinstatement).
//!
//! Needs the Debian package `tgt`.

#[path = "../../iscsi-initiator/tests/common/mod.rs"]
mod tgt;

mod disk;

use blk_iscsi::{IscsiBackend, IscsiSpec};
use disk::{pattern, Disk};
use vfio::backend::Backend;
use vfio::blk::mock::BlkReq;
use vfio::blk::VIRTIO_BLK_T_OUT;
use vfio::blk::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN};
use vfio::virtq::mock::Buf;

const DATA: u64 = 8 << 20;
const LUN_BYTES: u64 = 32 << 20;
/// Each request moves this much (two 1 MiB segments when split).
const REQ: u64 = 64 << 10;

type Rig = Disk;

fn rig(t: &tgt::Tgtd) -> Rig {
    rig_on(t, Box::new(blk_iscsi::link::KernelTcp::default()))
}

fn rig_on(t: &tgt::Tgtd, transport: Box<dyn blk_iscsi::link::Transport>) -> Rig {
    let spec = IscsiSpec::parse(&format!("iscsi://{}/{}/1", t.portal(), t.iqn)).unwrap();
    let be = IscsiBackend::connect_with(&spec, 256, transport).expect("log in to tgtd");
    assert_eq!(be.info().capacity, LUN_BYTES, "READ CAPACITY");
    Disk::new(be, "t")
}

/// Queues `n` writes of REQ bytes at byte `REQ * i`, each from its own guest
/// buffer; returns the requests and the data.
fn queue_writes(r: &mut Rig, n: usize, seed: u64) -> (Vec<BlkReq>, Vec<Vec<u8>>) {
    let mut reqs = Vec::new();
    let mut datas = Vec::new();
    for i in 0..n as u64 {
        let d = pattern(seed + i, REQ as usize);
        let at = DATA + i * REQ;
        r.mem.write(at, &d).unwrap();
        // Two segments per request, to exercise scatter-gather.
        let half = (REQ / 2) as u32;
        reqs.push(r.drv.request(
            VIRTIO_BLK_T_OUT,
            i * REQ / 512,
            &[Buf::r(at, half), Buf::r(at + half as u64, half)],
            // Indirect: one ring descriptor per request, so 96 fit a 128 ring.
            true,
        ));
        datas.push(d);
    }
    (reqs, datas)
}

#[test]
fn many_outstanding_writes_and_reads_reach_tgtd() {
    let t = tgt::Tgtd::start("blk-iscsi-qd", LUN_BYTES);
    let mut r = rig(&t);
    let n = 64;
    let (reqs, datas) = queue_writes(&mut r, n, 7);
    // One poll takes the whole batch: all 64 writes are outstanding together.
    r.dev.poll();
    let st = r.complete(&reqs, |_| {});
    assert!(st.iter().all(|&s| s == VIRTIO_BLK_S_OK), "statuses {st:?}");
    let fl = r.drv.request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    assert_eq!(r.complete(&[fl], |_| {}), vec![VIRTIO_BLK_S_OK]);
    for (i, d) in datas.iter().enumerate() {
        assert!(
            t.backing_bytes(i as u64 * REQ, REQ as usize) == *d,
            "write {i} not at byte {} of tgtd's backing file",
            i as u64 * REQ
        );
    }
    // Read everything back in one 4 MiB request of four 1 MiB segments: split
    // into several SCSI commands when the LU's transfer limit is smaller.
    let back = DATA + (16 << 20);
    r.mem.write(back, &vec![0xee; n * REQ as usize]).unwrap();
    let segs: Vec<Buf> = (0..4).map(|k| Buf::w(back + (k << 20), 1 << 20)).collect();
    let rd = r.drv.request(VIRTIO_BLK_T_IN, 0, &segs, true);
    assert_eq!(r.complete(&[rd], |_| {}), vec![VIRTIO_BLK_S_OK]);
    let mut got = vec![0u8; n * REQ as usize];
    r.mem.read(back, &mut got).unwrap();
    assert!(
        got == datas.concat(),
        "data read back through the device differs"
    );
    // A read past the end fails cleanly.
    let bad = r.drv.request(
        VIRTIO_BLK_T_IN,
        LUN_BYTES / 512,
        &[Buf::w(back, 4096)],
        false,
    );
    assert_ne!(r.complete(&[bad], |_| {}), vec![VIRTIO_BLK_S_OK]);
}

#[test]
fn tgtd_killed_with_writes_in_flight() {
    let mut t = tgt::Tgtd::start("blk-iscsi-kill", LUN_BYTES);
    // Reads gated by the io_uring readiness watch, through the reconnect
    // (a new socket, a new watch).
    let mut r = rig_on(&t, Box::new(blk_iscsi::link::KernelTcp::with_ready_watch()));
    let n = 96;
    let (reqs, datas) = queue_writes(&mut r, n, 99);
    let mut killed = false;
    let st = r.complete(&reqs, |round| {
        // After the first poll sent the batch: SIGKILL tgtd and start it again.
        if round == 1 && !killed {
            killed = true;
            t.restart();
        }
    });
    assert!(killed);
    assert!(st.iter().all(|&s| s == VIRTIO_BLK_S_OK), "statuses {st:?}");
    for (i, d) in datas.iter().enumerate() {
        assert!(
            t.backing_bytes(i as u64 * REQ, REQ as usize) == *d,
            "write {i} lost across the target restart"
        );
    }
    // The device still works on the reinstated session.
    let back = DATA + (16 << 20);
    let rd = r
        .drv
        .request(VIRTIO_BLK_T_IN, 0, &[Buf::w(back, REQ as u32)], false);
    assert_eq!(r.complete(&[rd], |_| {}), vec![VIRTIO_BLK_S_OK]);
    let mut got = vec![0u8; REQ as usize];
    r.mem.read(back, &mut got).unwrap();
    assert!(got == datas[0]);
    // A scrape shows the session up again after at least one reconnect.
    let mut m = metrics::MetricSet::new();
    vfio::blk::metrics::collect(&r.dev, &mut m);
    let text = m.encode();
    let value = |name: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{device=\"t\",target=\"iscsi://")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("vswitch_iscsi_session_up"), 1);
    assert!(value("vswitch_iscsi_reconnects_total") >= 1, "{text}");
    assert!(
        value("vswitch_iscsi_connection_losses_total") >= 1,
        "{text}"
    );
}
