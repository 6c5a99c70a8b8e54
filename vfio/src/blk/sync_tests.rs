//! Synchronous backends (`Backend::synchronous`: null, mem) are completed
//! in the step that takes their requests, without the `submit`/`poll`
//! round trip; what the driver sees must be exactly what the asynchronous
//! path gives it.

use super::mock::BlkReq;
use super::tests::{check_stamp_after_idle_step, rig_with, Rig, DATA, DISK};
use super::*;
use crate::backend::mem::MemBackend;
use crate::backend::{Backend, BackendInfo, IoCompletion, IoRequest, SubmitError};
use crate::virtq::mock::Buf;

/// A backend forwarding to a synchronous one but not saying so: the device
/// then takes the asynchronous path (`submit`, `commit`, `poll`).
struct Hidden(MemBackend);

impl Backend for Hidden {
    fn info(&self) -> BackendInfo {
        self.0.info()
    }
    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        self.0.submit(req)
    }
    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.0.poll(out)
    }
    fn inflight(&self) -> usize {
        self.0.inflight()
    }
}

fn mem() -> MemBackend {
    MemBackend::new(DISK, 256).unwrap()
}

/// Every kind of request, good and bad, on queue 0; returns (status byte, used length) of each
/// in order, the bytes read back, and the device's counters.
fn script(r: &mut Rig) -> (Vec<(u8, u32)>, Vec<u8>, BlkStats) {
    let pat: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    r.mem.write(DATA, &pat).unwrap();
    let d = &mut r.drv[0];
    let reqs: Vec<BlkReq> = vec![
        d.request(VIRTIO_BLK_T_OUT, 8, &[Buf::r(DATA, 8192)], false),
        d.request(VIRTIO_BLK_T_IN, 8, &[Buf::w(DATA + 0x10000, 4096)], false),
        d.request(VIRTIO_BLK_T_IN, 16, &[Buf::w(DATA + 0x11000, 4096)], true),
        d.request(VIRTIO_BLK_T_FLUSH, 0, &[], false),
        // Past the end: IOERR from the request check.
        d.request(
            VIRTIO_BLK_T_IN,
            DISK / 512,
            &[Buf::w(DATA + 0x12000, 512)],
            false,
        ),
        d.request(VIRTIO_BLK_T_GET_ID, 0, &[Buf::w(DATA + 0x13000, 20)], false),
        d.request(99, 0, &[], false),
        d.segments(VIRTIO_BLK_T_DISCARD, DATA + 0x14000, &[(8, 8, 0)], 16),
        d.request(VIRTIO_BLK_T_IN, 8, &[Buf::w(DATA + 0x15000, 8192)], false),
    ];
    r.run();
    // The asynchronous path puts the requests the device answers itself
    // (bad range, unknown type, GET_ID) before the backend's: compared by
    // head, not by position.
    let mut used = std::collections::HashMap::new();
    while let Some((id, len)) = r.drv[0].q.pop_used() {
        assert!(used.insert(id, len).is_none(), "head {id} used twice");
    }
    assert_eq!(used.len(), reqs.len(), "every request used");
    let out = reqs
        .iter()
        .map(|q| (r.drv[0].status(q), used[&q.head]))
        .collect();
    let mut back = vec![0u8; 8192 + 2 * 4096];
    r.mem.read(DATA + 0x10000, &mut back[..8192]).unwrap();
    r.mem.read(DATA + 0x15000, &mut back[8192..]).unwrap();
    (out, back, r.dev.stats())
}

#[test]
fn synchronous_completions_match_the_asynchronous_path() {
    let mut sync = rig_with(Box::new(mem()), 1);
    let mut hidden = rig_with(Box::new(Hidden(mem())), 1);
    assert!(sync.dev.backend().synchronous());
    assert!(!hidden.dev.backend().synchronous());
    sync.dev.track_latency();
    hidden.dev.track_latency();
    let a = script(&mut sync);
    let b = script(&mut hidden);
    assert_eq!(a.0, b.0, "status bytes and used lengths");
    assert_eq!(a.1, b.1, "data read back");
    let (mut sa, mut sb) = (a.2, b.2);
    // Polls with work differ (the asynchronous path completes in the
    // same step too, for a backend that completes inside submit).
    sa.busy_polls = 0;
    sb.busy_polls = 0;
    assert_eq!(sa, sb, "counters");
    assert_eq!(sa.reads, 3);
    assert_eq!(sa.errors, 2, "the read past the end and the unknown type");
    let (la, lb) = (sync.dev.latency().unwrap(), hidden.dev.latency().unwrap());
    for op in 0..4 {
        assert_eq!(
            la.ops[op].count(),
            lb.ops[op].count(),
            "latency counts, op {op}"
        );
    }
    assert_eq!(la.ops[0].count(), 3, "the reads the backend did");
    assert_eq!(la.ops[2].count(), 1, "the flush");
}

#[test]
fn a_synchronous_request_is_used_in_the_step_that_takes_it() {
    let mut r = rig_with(Box::new(mem()), 1);
    let q = r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(DATA, 4096)], false);
    assert_eq!(r.dev.poll(), 2, "taken and completed: two moves, as before");
    assert_eq!(r.drv[0].q.pop_used(), Some((q.head, 4097)));
    assert_eq!(r.drv[0].status(&q), VIRTIO_BLK_S_OK);
    assert_eq!(r.dev.backend().inflight(), 0, "nothing left for poll");
    assert_eq!(r.dev.poll(), 0);
}

/// On the asynchronous path too, the read that counted a step's
/// completions stamps the next step's takes only when that step follows
/// at once: after an idle step the stamp is fresh, so a pause between the
/// two is not counted.
#[test]
fn asynchronous_latency_stamp_after_an_idle_step_is_fresh() {
    let mut r = rig_with(Box::new(Hidden(mem())), 1);
    check_stamp_after_idle_step(&mut r);
    // Back to back, the second step's stamp is the first's completion read.
    for _ in 0..2 {
        r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(DATA, 512)], false);
        assert_eq!(r.dev.poll(), 2);
    }
    assert_eq!(r.dev.latency().unwrap().ops[0].count(), 4);
    assert_eq!(
        r.dev.end_read(),
        None,
        "the asynchronous path offers no end read"
    );
}
