//! virtio-blk device tests through the guest-driver simulator: the real
//! device code, mem/null/file backends, well-behaved and malicious guests.

use super::mock::{BlkDriver, BlkReq};
use super::*;
use crate::backend::{mem::MemBackend, null::NullBackend, Backend};
use crate::guest_memory::GuestMemory;
use crate::virtq::mock::Buf;
use crate::virtq::{VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

pub(super) const MEM: usize = 8 << 20;
pub(super) const QSIZE: u16 = 64;
pub(super) const DATA: u64 = 4 << 20;
pub(super) const DISK: u64 = 1 << 20;

pub(super) struct Rig {
    pub(super) mem: GuestMemory,
    pub(super) dev: BlkDevice,
    pub(super) drv: Vec<BlkDriver>,
}

pub(super) fn rig_with(backend: Box<dyn Backend>, queues: u16) -> Rig {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let cfg = BlkConfig::new(&backend.info(), 512, queues, "vfio-test-serial").unwrap();
    let mut dev = BlkDevice::new("t", backend, cfg);
    dev.set_features(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX);
    dev.set_memory(mem.clone());
    let per = crate::virtq::mock::MockQueue::footprint(QSIZE) + BlkDriver::scratch_len(QSIZE);
    let mut drv = Vec::new();
    for qi in 0..queues as u64 {
        let base = 0x1000 + qi * per.next_multiple_of(0x1000);
        let d = BlkDriver::new(
            &mem,
            base,
            QSIZE,
            base + crate::virtq::mock::MockQueue::footprint(QSIZE),
        );
        dev.start_queue(qi as usize, d.q.config(), 0).unwrap();
        drv.push(d);
    }
    Rig { mem, dev, drv }
}

pub(super) fn rig(queues: u16) -> Rig {
    rig_with(Box::new(MemBackend::new(DISK, 256).unwrap()), queues)
}

impl Rig {
    pub(super) fn run(&mut self) {
        for _ in 0..4 {
            self.dev.poll();
        }
    }
    pub(super) fn done(&mut self, q: usize, r: &BlkReq) -> (u8, u32) {
        self.run();
        let (id, len) = self.drv[q].q.pop_used().expect("a used element");
        assert_eq!(id, r.head);
        (self.drv[q].status(r), len)
    }
}

fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn write_then_read_back_multi_descriptor_and_indirect() {
    let mut r = rig(1);
    let data = pattern(7, 12288);
    r.mem.write(DATA, &data).unwrap();
    // Write 12 KiB at sector 8 from three descriptors.
    let bufs = [
        Buf::r(DATA, 4096),
        Buf::r(DATA + 4096, 4096),
        Buf::r(DATA + 8192, 4096),
    ];
    let w = r.drv[0].request(VIRTIO_BLK_T_OUT, 8, &bufs, false);
    assert_eq!(r.done(0, &w), (VIRTIO_BLK_S_OK, 1));
    // Read it back through an indirect table into another area, split unevenly.
    let back = DATA + 0x10000;
    let bufs = [
        Buf::w(back, 512),
        Buf::w(back + 512, 11264),
        Buf::w(back + 11776, 512),
    ];
    let rd = r.drv[0].request(VIRTIO_BLK_T_IN, 8, &bufs, true);
    assert_eq!(r.done(0, &rd), (VIRTIO_BLK_S_OK, 12288 + 1));
    let mut got = vec![0u8; 12288];
    r.mem.read(back, &mut got).unwrap();
    assert_eq!(got, data);
    let s = r.dev.stats();
    assert_eq!(
        (s.reads, s.writes, s.bytes_read, s.bytes_written),
        (1, 1, 12288, 12288)
    );
}

#[test]
fn many_queues_and_deep_batches() {
    let mut r = rig(4);
    for q in 0..4usize {
        for i in 0..24u64 {
            let addr = DATA + (q as u64 * 24 + i) * 512;
            r.mem.write(addr, &[q as u8 * 50 + i as u8; 512]).unwrap();
            r.drv[q].request(
                VIRTIO_BLK_T_OUT,
                q as u64 * 24 + i,
                &[Buf::r(addr, 512)],
                i % 2 == 0,
            );
        }
    }
    r.run();
    for q in 0..4usize {
        let mut n = 0;
        while r.drv[q].q.pop_used().is_some() {
            n += 1;
        }
        assert_eq!(n, 24, "queue {q}");
    }
    // Read all 96 sectors in one request and check every queue's writes landed.
    let back = DATA + 0x100000;
    let rd = r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(back, 96 * 512)], false);
    assert_eq!(r.done(0, &rd).0, VIRTIO_BLK_S_OK);
    for s in 0..96u64 {
        let mut b = [0u8; 512];
        r.mem.read(back + s * 512, &mut b).unwrap();
        let (q, i) = (s / 24, s % 24);
        assert!(b.iter().all(|&x| x == q as u8 * 50 + i as u8), "sector {s}");
    }
}

#[test]
fn flush_get_id_discard_write_zeroes() {
    let mut r = rig(1);
    let f = r.drv[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    assert_eq!(r.done(0, &f), (VIRTIO_BLK_S_OK, 1));
    let id = r.drv[0].request(VIRTIO_BLK_T_GET_ID, 0, &[Buf::w(DATA, 20)], false);
    assert_eq!(r.done(0, &id), (VIRTIO_BLK_S_OK, 21));
    let mut serial = [0u8; 20];
    r.mem.read(DATA, &mut serial).unwrap();
    assert_eq!(&serial[..16], b"vfio-test-serial");
    // Fill sectors 0..4 with 0xee, write-zeroes sectors 1..3, read back.
    r.mem.write(DATA, &[0xee; 2048]).unwrap();
    let w = r.drv[0].request(VIRTIO_BLK_T_OUT, 0, &[Buf::r(DATA, 2048)], false);
    assert_eq!(r.done(0, &w).0, VIRTIO_BLK_S_OK);
    let seg = DATA + 0x8000;
    let mut s = [0u8; 16];
    s[0..8].copy_from_slice(&1u64.to_le_bytes());
    s[8..12].copy_from_slice(&2u32.to_le_bytes());
    r.mem.write(seg, &s).unwrap();
    let wz = r.drv[0].request(VIRTIO_BLK_T_WRITE_ZEROES, 0, &[Buf::r(seg, 16)], false);
    assert_eq!(r.done(0, &wz).0, VIRTIO_BLK_S_OK);
    let rd = r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(DATA + 0x10000, 2048)], false);
    assert_eq!(r.done(0, &rd).0, VIRTIO_BLK_S_OK);
    let mut b = vec![0u8; 2048];
    r.mem.read(DATA + 0x10000, &mut b).unwrap();
    assert!(
        b[..512].iter().all(|&x| x == 0xee)
            && b[512..1536].iter().all(|&x| x == 0)
            && b[1536..].iter().all(|&x| x == 0xee)
    );
    let d = r.drv[0].request(VIRTIO_BLK_T_DISCARD, 0, &[Buf::r(seg, 16)], false);
    assert_eq!(r.done(0, &d).0, VIRTIO_BLK_S_OK);
    // Discard with the unmap flag: UNSUPP (§5.2.6.2).
    s[12..16].copy_from_slice(&1u32.to_le_bytes());
    r.mem.write(seg, &s).unwrap();
    let d = r.drv[0].request(VIRTIO_BLK_T_DISCARD, 0, &[Buf::r(seg, 16)], false);
    assert_eq!(r.done(0, &d).0, VIRTIO_BLK_S_UNSUPP);
    let u = r.drv[0].request(99, 0, &[], false);
    assert_eq!(r.done(0, &u), (VIRTIO_BLK_S_UNSUPP, 1));
    assert_eq!(r.dev.stats().flushes, 1);
}

#[test]
fn bad_requests_fail_with_ioerr() {
    let mut r = rig(1);
    let sectors = DISK / 512;
    // Past the end, straddling the end, overflowing sector, unaligned length.
    for (sector, len) in [
        (sectors, 512u32),
        (sectors - 1, 1024),
        (u64::MAX / 256, 512),
        (0, 100),
    ] {
        let q = r.drv[0].request(VIRTIO_BLK_T_IN, sector, &[Buf::w(DATA, len)], false);
        assert_eq!(
            r.done(0, &q),
            (VIRTIO_BLK_S_IOERR, 1),
            "sector {sector} len {len}"
        );
    }
    // Data buffer outside guest memory: IOERR, nothing written anywhere.
    let q = r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(MEM as u64 - 256, 512)], false);
    assert_eq!(r.done(0, &q), (VIRTIO_BLK_S_IOERR, 1));
    // Wrong direction: a read whose data buffer is device-readable.
    let q = r.drv[0].request(
        VIRTIO_BLK_T_IN,
        0,
        &[Buf::r(DATA, 512), Buf::w(DATA + 512, 512)],
        false,
    );
    assert_eq!(r.done(0, &q).0, VIRTIO_BLK_S_IOERR);
    // A write with a device-writable data buffer.
    let q = r.drv[0].request(VIRTIO_BLK_T_OUT, 0, &[Buf::w(DATA, 512)], false);
    assert_eq!(r.done(0, &q).0, VIRTIO_BLK_S_IOERR);
    // Header too short.
    let h = r.drv[0]
        .q
        .add_chain(&[Buf::r(DATA, 8), Buf::w(DATA + 100, 1)]);
    r.drv[0].q.push_avail(h);
    r.drv[0].q.publish();
    r.run();
    assert_eq!(r.drv[0].q.pop_used(), Some((h, 1)));
    let mut st = [0u8];
    r.mem.read(DATA + 100, &mut st).unwrap();
    assert_eq!(st[0], VIRTIO_BLK_S_IOERR);
    assert!(
        r.dev.queue_running(0),
        "request errors do not break the queue"
    );
    assert_eq!(r.dev.stats().errors, 8);
}

#[test]
fn malicious_chains_break_the_queue_not_the_host() {
    // Each case breaks queue 0; queue 1 keeps working.
    type Case = fn(&mut BlkDriver);
    let cases: [(&str, Case); 5] = [
        ("loop", |d| {
            d.q.write_desc(0, DATA, 16, crate::virtq::VIRTQ_DESC_F_NEXT, 1);
            d.q.write_desc(1, DATA, 16, crate::virtq::VIRTQ_DESC_F_NEXT, 0);
            d.q.push_avail(0);
            d.q.publish();
        }),
        ("status outside memory", |d| {
            let h =
                d.q.add_chain(&[Buf::r(DATA, 16), Buf::w(MEM as u64 + 4096, 1)]);
            d.q.push_avail(h);
            d.q.publish();
        }),
        ("no writable descriptor", |d| {
            let h = d.q.add_chain(&[Buf::r(DATA, 16)]);
            d.q.push_avail(h);
            d.q.publish();
        }),
        ("avail index jump", |d| d.q.force_avail_idx(1000)),
        ("head out of range", |d| {
            d.q.push_avail(QSIZE + 3);
            d.q.publish();
        }),
    ];
    for (name, make) in cases {
        let mut r = rig(2);
        make(&mut r.drv[0]);
        r.run();
        assert!(!r.dev.queue_running(0), "{name}: queue 0 must need a reset");
        assert!(r.dev.queue_error(0).is_some());
        assert_eq!(r.drv[0].q.pop_used(), None, "{name}: nothing completed");
        r.mem.write(DATA, &[0x5a; 512]).unwrap();
        let w = r.drv[1].request(VIRTIO_BLK_T_OUT, 3, &[Buf::r(DATA, 512)], false);
        assert_eq!(
            r.done(1, &w).0,
            VIRTIO_BLK_S_OK,
            "{name}: queue 1 still serves"
        );
        assert_eq!(r.dev.stats().queue_resets, 1);
        // Restarting the queue (what the VMM does on reset) recovers it.
        let cfg = r.drv[0].q.config();
        assert!(r.dev.stop_queue(0).is_some());
        let mut fresh = BlkDriver::new(&r.mem, cfg.desc, QSIZE, 0x600000);
        r.dev.start_queue(0, fresh.q.config(), 0).unwrap();
        let rd = fresh.request(VIRTIO_BLK_T_IN, 3, &[Buf::w(DATA + 4096, 512)], false);
        r.run();
        assert!(
            fresh.q.pop_used().is_some(),
            "{name}: restarted queue serves"
        );
        assert_eq!(fresh.status(&rd), VIRTIO_BLK_S_OK);
    }
}

#[test]
fn used_index_scribble_is_ignored() {
    let mut r = rig(1);
    let a = r.drv[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    r.drv[0].q.scribble_used_idx(40000);
    r.run();
    assert_eq!(r.drv[0].q.used_idx(), 1);
    assert_eq!(r.drv[0].status(&a), VIRTIO_BLK_S_OK);
}

#[test]
fn random_requests_never_panic() {
    // Random headers, directions and lengths through the whole device.
    let mut r = rig_with(Box::new(NullBackend::new(DISK, 256)), 1);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let t = [0, 1, 4, 8, 11, 13, 77][(rnd() % 7) as usize];
        let mut bufs = vec![];
        for _ in 0..rnd() % 4 {
            let addr = if rnd() % 8 == 0 {
                rnd()
            } else {
                DATA + (rnd() % 0x10000)
            };
            let len = (rnd() % 9000) as u32;
            bufs.push(if rnd() % 2 == 0 {
                Buf::r(addr, len)
            } else {
                Buf::w(addr, len)
            });
        }
        let w: Vec<Buf> = bufs.iter().filter(|b| b.write).copied().collect();
        let mut ordered: Vec<Buf> = bufs.iter().filter(|b| !b.write).copied().collect();
        ordered.extend(w);
        let q = r.drv[0].request(t, rnd() % 4096, &ordered, rnd() % 2 == 0);
        r.run();
        let (id, _) = r.drv[0].q.pop_used().expect("completed");
        assert_eq!(id, q.head);
        assert!(r.drv[0].status(&q) <= VIRTIO_BLK_S_UNSUPP);
    }
    assert!(r.dev.queue_running(0));
}

/// A backend that holds completions and returns them later in reverse order,
/// as an iSCSI or cached backend may: proves the device does not depend on
/// synchronous or in-order completion.
struct Reorder {
    inner: MemBackend,
    held: Vec<crate::backend::IoCompletion>,
    release_every: usize,
}

impl Backend for Reorder {
    fn info(&self) -> crate::backend::BackendInfo {
        self.inner.info()
    }
    fn submit(
        &mut self,
        req: &crate::backend::IoRequest<'_>,
    ) -> Result<(), crate::backend::SubmitError> {
        self.inner.submit(req)
    }
    fn poll(&mut self, out: &mut Vec<crate::backend::IoCompletion>) -> usize {
        let mut tmp = Vec::with_capacity(256);
        self.inner.poll(&mut tmp);
        self.held.extend(tmp);
        if self.held.len() < self.release_every {
            return 0;
        }
        let n = self.held.len();
        out.extend(self.held.drain(..).rev());
        n
    }
    fn inflight(&self) -> usize {
        self.inner.inflight() + self.held.len()
    }
}

#[test]
fn late_out_of_order_completions() {
    let backend = Reorder {
        inner: MemBackend::new(DISK, 256).unwrap(),
        held: Vec::new(),
        release_every: 6,
    };
    let mut r = rig_with(Box::new(backend), 1);
    let mut reqs = Vec::new();
    for i in 0..6u64 {
        r.mem.write(DATA + i * 512, &[i as u8 + 1; 512]).unwrap();
        reqs.push(r.drv[0].request(VIRTIO_BLK_T_OUT, i, &[Buf::r(DATA + i * 512, 512)], false));
        r.dev.poll();
        if i < 5 {
            assert_eq!(r.drv[0].q.pop_used(), None, "held back by the backend");
            assert_eq!(
                r.drv[0].status(reqs.last().unwrap()),
                0xff,
                "status untouched while in flight"
            );
        }
    }
    r.run();
    let order: Vec<u16> = std::iter::from_fn(|| r.drv[0].q.pop_used().map(|(id, _)| id)).collect();
    let heads: Vec<u16> = reqs.iter().rev().map(|q| q.head).collect();
    assert_eq!(
        order, heads,
        "used ring follows completion order, not submission order"
    );
    assert!(reqs.iter().all(|q| r.drv[0].status(q) == VIRTIO_BLK_S_OK));
    // A request the backend still holds stays unanswered.
    let q = r.drv[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    r.dev.poll();
    assert_eq!(r.drv[0].status(&q), 0xff);
}

/// Completes everything at once except requests at one byte offset, which
/// it never completes (a back end that dies with them in flight).
struct HoldOffset {
    inner: MemBackend,
    hold: u64,
    held: usize,
}

impl Backend for HoldOffset {
    fn info(&self) -> crate::backend::BackendInfo {
        self.inner.info()
    }
    fn submit(
        &mut self,
        req: &crate::backend::IoRequest<'_>,
    ) -> Result<(), crate::backend::SubmitError> {
        if req.offset == self.hold && req.op == crate::backend::IoOp::Write {
            self.held += 1;
            return Ok(());
        }
        self.inner.submit(req)
    }
    fn poll(&mut self, out: &mut Vec<crate::backend::IoCompletion>) -> usize {
        self.inner.poll(out)
    }
    fn inflight(&self) -> usize {
        self.inner.inflight() + self.held
    }
}

#[test]
fn inflight_tracking_resubmits_after_a_crash() {
    use crate::inflight::InflightArea;
    let (area, _fd, _) = InflightArea::create(1, QSIZE).unwrap();
    // First back end: never finishes the write at sector 3 (C), finishes the
    // later write A and GET_ID at once; so C is in flight *behind* finished
    // requests, which restarting from the used index alone would lose.
    let hold = HoldOffset {
        inner: MemBackend::new(DISK, 256).unwrap(),
        hold: 3 * 512,
        held: 0,
    };
    let mut r = rig_with(Box::new(hold), 1);
    let cfg = r.drv[0].q.config();
    r.dev.stop_queue(0);
    r.dev.start_queue_tracked(0, cfg, 0, area.queue(0)).unwrap();
    r.mem.write(DATA + 3 * 512, &[0xc3; 512]).unwrap();
    let c = r.drv[0].request(VIRTIO_BLK_T_OUT, 3, &[Buf::r(DATA + 3 * 512, 512)], false);
    r.mem.write(DATA + 512, &[0xa1; 512]).unwrap();
    let a = r.drv[0].request(VIRTIO_BLK_T_OUT, 1, &[Buf::r(DATA + 512, 512)], false);
    let id = r.drv[0].request(VIRTIO_BLK_T_GET_ID, 0, &[Buf::w(DATA + 0x8000, 20)], true);
    r.run();
    let mut seen: Vec<u16> =
        std::iter::from_fn(|| r.drv[0].q.pop_used().map(|(id, _)| id)).collect();
    assert_eq!(seen.len(), 2, "A and GET_ID done, C in flight");
    assert_eq!(r.drv[0].status(&c), 0xff);

    // The back end dies without stopping the ring; a new one starts on the
    // same guest memory and inflight area, told (as QEMU does after a crash)
    // to start from the used index.
    let used_idx = r.drv[0].q.used_idx() as u32;
    assert_eq!(used_idx, 2);
    let backend = Box::new(MemBackend::new(DISK, 256).unwrap());
    let bcfg = BlkConfig::new(&backend.info(), 512, 1, "vfio-test-serial").unwrap();
    let mut dev2 = BlkDevice::new("t2", backend, bcfg);
    dev2.set_features(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX);
    dev2.set_memory(r.mem.clone());
    dev2.start_queue_tracked(0, cfg, used_idx, area.queue(0))
        .unwrap();
    drop(r.dev);
    // A new request after the restart.
    r.mem.write(DATA + 4 * 512, &[0xe4; 512]).unwrap();
    let e = r.drv[0].request(VIRTIO_BLK_T_OUT, 4, &[Buf::r(DATA + 4 * 512, 512)], false);
    for _ in 0..4 {
        dev2.poll();
    }
    seen.extend(std::iter::from_fn(|| {
        r.drv[0].q.pop_used().map(|(id, _)| id)
    }));
    let mut got_ids = seen.clone();
    got_ids.sort_unstable();
    let mut want = vec![c.head, a.head, id.head, e.head];
    want.sort_unstable();
    assert_eq!(
        got_ids, want,
        "every request completed exactly once: {seen:?}"
    );
    assert_eq!(r.drv[0].status(&c), VIRTIO_BLK_S_OK);
    assert_eq!(r.drv[0].status(&e), VIRTIO_BLK_S_OK);
    // C and E reached the new back end's disk.
    let back = DATA + 0x20000;
    let rd = r.drv[0].request(VIRTIO_BLK_T_IN, 3, &[Buf::w(back, 1024)], false);
    for _ in 0..4 {
        dev2.poll();
    }
    assert_eq!(r.drv[0].q.pop_used().map(|u| u.0), Some(rd.head));
    let mut got = [0u8; 1024];
    r.mem.read(back, &mut got).unwrap();
    assert!(got[..512].iter().all(|&x| x == 0xc3) && got[512..].iter().all(|&x| x == 0xe4));
}

#[test]
fn latency_histograms_and_metrics_count_every_completed_request() {
    let mut r = rig(1);
    // Off by default: nothing measured, no histogram family.
    let w = r.drv[0].request(VIRTIO_BLK_T_OUT, 0, &[Buf::r(DATA, 4096)], false);
    assert_eq!(r.done(0, &w).0, VIRTIO_BLK_S_OK);
    assert!(r.dev.latency().is_none());
    let mut m = ::metrics::MetricSet::new();
    metrics::collect(&r.dev, &mut m);
    assert!(!m.encode().contains("latency"));

    r.dev.track_latency();
    for i in 0..5 {
        let rd = r.drv[0].request(VIRTIO_BLK_T_IN, i * 8, &[Buf::w(DATA, 4096)], false);
        assert_eq!(r.done(0, &rd).0, VIRTIO_BLK_S_OK);
    }
    let f = r.drv[0].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    assert_eq!(r.done(0, &f).0, VIRTIO_BLK_S_OK);
    let lat = r.dev.latency().unwrap();
    assert_eq!(lat.ops[0].count(), 5);
    assert_eq!(lat.ops[1].count(), 0);
    assert_eq!(lat.ops[2].count(), 1);

    let mut m = ::metrics::MetricSet::new();
    metrics::collect(&r.dev, &mut m);
    let t = m.encode();
    for line in [
        "vswitch_blk_reads_total{device=\"t\"} 5\n",
        "vswitch_blk_writes_total{device=\"t\"} 1\n",
        "vswitch_blk_flushes_total{device=\"t\"} 1\n",
        "vswitch_blk_read_bytes_total{device=\"t\"} 20480\n",
        "vswitch_blk_requests_in_flight{device=\"t\"} 0\n",
        "# TYPE vswitch_blk_request_latency_seconds histogram\n",
        "vswitch_blk_request_latency_seconds_bucket{device=\"t\",op=\"read\",le=\"+Inf\"} 5\n",
        "vswitch_blk_request_latency_seconds_count{device=\"t\",op=\"read\"} 5\n",
        "vswitch_blk_request_latency_seconds_count{device=\"t\",op=\"write\"} 0\n",
        "vswitch_blk_request_latency_seconds_count{device=\"t\",op=\"flush\"} 1\n",
    ] {
        assert!(t.contains(line), "missing {line:?} in\n{t}");
    }
    // The +Inf bucket is the last of 23 per operation.
    assert_eq!(
        t.matches("vswitch_blk_request_latency_seconds_bucket{device=\"t\",op=\"read\"")
            .count(),
        latency::BUCKETS + 1
    );
}

/// The latency stamp of a step's takes is the previous step's completion
/// time only when that step ended with completions (a synchronous
/// backend's, here): a step after an idle one reads the clock, so a pause
/// between the two is not counted.
#[test]
fn latency_stamp_after_an_idle_step_is_fresh() {
    let mut r = rig_with(Box::new(NullBackend::new(DISK, 64)), 1);
    check_stamp_after_idle_step(&mut r);
}

/// Turns latency on, serves a read, polls once idle, pauses 50 ms, serves
/// another: the pause must not count in the two reads' latency. Shared by
/// the synchronous and the asynchronous path's tests.
pub(super) fn check_stamp_after_idle_step(r: &mut Rig) {
    r.dev.track_latency();
    r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(DATA, 512)], false);
    assert_eq!(r.dev.poll(), 2, "taken and completed");
    assert_eq!(r.dev.poll(), 0, "an idle step");
    std::thread::sleep(std::time::Duration::from_millis(50));
    r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(DATA, 512)], false);
    assert_eq!(r.dev.poll(), 2);
    let l = r.dev.latency().unwrap().ops[0];
    assert_eq!(l.count(), 2);
    assert!(l.sum_ns < 40_000_000, "the pause counted: {} ns", l.sum_ns);
}

/// A synchronous backend's step counts each operation it completed,
/// whichever queue it came from, all at the step's one interval.
#[test]
fn latency_of_a_mixed_synchronous_step_counts_every_operation() {
    let mut r = rig_with(Box::new(NullBackend::new(DISK, 64)), 2);
    r.dev.track_latency();
    for q in 0..2 {
        for i in 0..3 {
            r.drv[q].request(VIRTIO_BLK_T_IN, i, &[Buf::w(DATA, 512)], false);
        }
        r.drv[q].request(VIRTIO_BLK_T_OUT, 8, &[Buf::r(DATA, 512)], false);
    }
    r.drv[1].request(VIRTIO_BLK_T_FLUSH, 0, &[], false);
    assert_eq!(r.dev.poll(), 2 * 9, "all taken and completed in one step");
    let l = r.dev.latency().unwrap();
    let counts: Vec<u64> = l.ops.iter().map(|o| o.count()).collect();
    assert_eq!(counts, [6, 2, 1, 0]);
    // One interval for the step: each operation's sum is its count times it.
    let each = l.ops[2].sum_ns;
    assert_eq!(l.ops[0].sum_ns, 6 * each);
    assert_eq!(l.ops[1].sum_ns, 2 * each);
    // The step's end read is offered to the poller's busy accounting; a
    // step that counted nothing read nothing.
    let end = r.dev.end_read().expect("the step read the clock");
    assert_eq!(r.dev.poll(), 0);
    assert_eq!(r.dev.end_read(), None);
    // The next step adds to them.
    r.drv[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(DATA, 512)], false);
    assert_eq!(r.dev.poll(), 2);
    assert_eq!(r.dev.latency().unwrap().ops[0].count(), 7);
    assert!(r.dev.end_read().is_some_and(|t| t >= end));
}

#[test]
fn one_publication_interrupts_exactly_the_queues_that_want_it() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let mut r = rig_with(Box::new(NullBackend::new(DISK, 64)), 4);
    let mut calls = Vec::new();
    for q in 0..4 {
        // SAFETY: eventfd returns a new fd (or -1, checked) that the File owns.
        let call = unsafe {
            let fd = libc::eventfd(0, libc::EFD_NONBLOCK);
            assert!(fd >= 0, "eventfd");
            std::fs::File::from_raw_fd(fd)
        };
        r.dev.set_call(q, Some(call.try_clone().unwrap()));
        calls.push(call);
        // Queues 1 and 3 poll (used_event far ahead); 0 and 2 want an
        // interrupt for their first used element (used_event 0).
        r.drv[q].q.set_event_idx(true);
        if q % 2 == 1 {
            r.drv[q].q.suppress_interrupts();
        }
    }
    let reqs: Vec<_> = (0..4)
        .map(|q| {
            r.drv[q].request(
                VIRTIO_BLK_T_IN,
                q as u64,
                &[Buf::w(DATA + q as u64 * 512, 512)],
                false,
            )
        })
        .collect();
    // One poll step takes, completes and publishes all four; no interrupt
    // yet: the next step opens with the fence and the decisions.
    assert_eq!(r.dev.poll(), 8);
    assert_eq!(r.dev.stats().interrupts, 0);
    assert_eq!(r.dev.poll(), 0);
    for (q, req) in reqs.iter().enumerate() {
        assert_eq!(
            r.drv[q].q.pop_used().map(|u| u.0),
            Some(req.head),
            "queue {q}"
        );
        let mut b = [0u8; 8];
        let fired = (&calls[q]).read(&mut b).is_ok();
        assert_eq!(fired, q % 2 == 0, "queue {q} interrupt");
    }
    assert_eq!(r.dev.stats().interrupts, 2);
    // Nothing new: no interrupt at the next steps.
    r.run();
    assert_eq!(r.dev.stats().interrupts, 2);
}
