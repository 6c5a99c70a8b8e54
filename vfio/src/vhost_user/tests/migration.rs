//! Live migration on the back end's side, through a simulated VMM: the
//! dirty log marks exactly the pages the device wrote (read data, status
//! bytes, the used ring when the ring asks for it), logging follows
//! `VHOST_F_LOG_ALL` and `VHOST_VRING_F_LOG`, stopping a ring leaves no
//! request unreported, and log areas that do not fit are refused.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{VhostUserLog, VhostUserVringAddrFlags};
use vhost::vhost_user::VhostUserBackendReqHandlerMut;

use super::{serve, wait};
use crate::backend::mem::MemBackend;
use crate::backend::Backend;
use crate::blk::{BlkConfig, BlkDevice, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use crate::dirty_log::{log_size_for, VHOST_LOG_PAGE};
use crate::poller::DeviceCell;
use crate::vhost_user::mock_frontend::MockFrontend;
use crate::vhost_user::BlkHandler;
use crate::virtq::mock::Buf;
use crate::virtq::split::used_ring_len;

const MEM: u64 = 16 << 20;
const QSIZE: u16 = 64;

fn memfd(len: u64) -> File {
    // SAFETY: plain syscall; the fd is checked and then owned by File.
    let f = unsafe {
        let fd = libc::memfd_create(c"vhost-log-test".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        File::from_raw_fd(fd)
    };
    f.set_len(len).unwrap();
    f
}

/// The pages marked in the log (`size` bytes at `offset` of `log`).
fn marked(log: &File, offset: u64, size: u64) -> BTreeSet<u64> {
    let mut b = vec![0u8; size as usize];
    log.read_exact_at(&mut b, offset).unwrap();
    let mut set = BTreeSet::new();
    for (i, byte) in b.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                set.insert(i as u64 * 8 + bit);
            }
        }
    }
    set
}

fn clear(log: &File, offset: u64, size: u64) {
    log.write_all_at(&vec![0u8; size as usize], offset).unwrap();
}

fn pages(gpa: u64, len: u64) -> impl Iterator<Item = u64> {
    gpa / VHOST_LOG_PAGE..=(gpa + len - 1) / VHOST_LOG_PAGE
}

/// Waits until the log holds `want` (the device marks the used ring right
/// after publishing, so a moment after the driver sees the completion),
/// then checks it holds nothing else.
fn expect_marked(log: &File, offset: u64, size: u64, want: &BTreeSet<u64>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = marked(log, offset, size);
        if got.is_superset(want) {
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(&marked(log, offset, size), want, "{what}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: marked {got:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn dirty_log_marks_reads_status_and_used_ring() {
    let s = serve("dirtylog", 1);
    let mut fe = MockFrontend::connect(&s.path, MEM, 1, QSIZE).unwrap();
    let size = log_size_for(MEM);
    // The log at a non-page-aligned offset of its fd, as the spec allows.
    let (log, off) = (memfd(4096), 100);
    fe.set_log_base(&log, off, size).unwrap();

    let data: Vec<u8> = (0..8192u32).map(|i| (i * 13 + 5) as u8).collect();
    let src = fe.data_base + 0x10000;
    let dst = fe.data_base + 0x40000;
    fe.mem.write(src, &data).unwrap();
    let used = fe.drivers[0].q.config().used;
    let ring_pages: Vec<u64> = pages(used, used_ring_len(QSIZE)).collect();

    // A log but no LOG_ALL yet: nothing is marked.
    let w = fe.drivers[0].request(VIRTIO_BLK_T_OUT, 8, &[Buf::r(src, 8192)], false);
    assert_eq!(wait(&mut fe, 0, &w), VIRTIO_BLK_S_OK);
    std::thread::sleep(Duration::from_millis(20));
    assert!(marked(&log, off, size).is_empty(), "logged before LOG_ALL");

    // Migration starts: LOG_ALL, then the ring's used-ring logging.
    fe.set_log_all(true).unwrap();
    fe.set_ring_log(0, Some(used)).unwrap();

    // A write: the device only reads the data; it writes the status byte and
    // the used ring.
    let w = fe.drivers[0].request(VIRTIO_BLK_T_OUT, 16, &[Buf::r(src, 8192)], true);
    assert_eq!(wait(&mut fe, 0, &w), VIRTIO_BLK_S_OK);
    let mut want: BTreeSet<u64> = pages(w.status_addr, 1).collect();
    want.extend(&ring_pages);
    expect_marked(&log, off, size, &want, "write request");

    // A read into two pages (from an indirect table): both data pages too.
    clear(&log, off, size);
    let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 8, &[Buf::w(dst, 8192)], true);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
    let mut got = vec![0u8; 8192];
    fe.mem.read(dst, &mut got).unwrap();
    assert_eq!(got, data);
    let mut want: BTreeSet<u64> = pages(r.status_addr, 1).collect();
    want.extend(pages(dst, 8192));
    want.extend(&ring_pages);
    expect_marked(&log, off, size, &want, "read request");

    // The ring stops logging its used ring (VHOST_VRING_F_LOG cleared): the
    // buffers are still marked.
    fe.set_ring_log(0, None).unwrap();
    clear(&log, off, size);
    let dst2 = fe.data_base + 0x80000;
    let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 16, &[Buf::w(dst2, 4096)], false);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
    let mut want: BTreeSet<u64> = pages(r.status_addr, 1).collect();
    want.extend(pages(dst2, 4096));
    expect_marked(&log, off, size, &want, "read without F_LOG");

    // LOG_ALL cleared: logging stops.
    fe.set_log_all(false).unwrap();
    clear(&log, off, size);
    let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 16, &[Buf::w(dst2, 4096)], false);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        marked(&log, off, size).is_empty(),
        "logged after LOG_ALL off"
    );
}

#[test]
fn stopping_a_ring_reports_every_request_it_took() {
    let s = serve("drain", 1);
    let mut fe = MockFrontend::connect(&s.path, MEM, 1, QSIZE).unwrap();
    let log = memfd(4096);
    fe.set_log_base(&log, 0, log_size_for(MEM)).unwrap();
    fe.set_log_all(true).unwrap();
    let used = fe.drivers[0].q.config().used;
    fe.set_ring_log(0, Some(used)).unwrap();
    let buf = fe.data_base;
    for i in 0..32u64 {
        fe.drivers[0].request(VIRTIO_BLK_T_OUT, i * 8, &[Buf::r(buf, 4096)], false);
    }
    // Stop at once, requests possibly in flight: the reply comes after they
    // completed, so the ring base (the destination's starting point) equals
    // the used index the guest sees.
    let base = fe.stop_queue(0).unwrap();
    assert!(base <= 32);
    assert_eq!(fe.drivers[0].q.used_idx() as u32, base);
    assert!(!marked(&log, 0, log_size_for(MEM)).is_empty() || base == 0);
}

#[test]
fn log_areas_that_do_not_fit_are_refused() {
    let s = serve("badlog", 1);
    let log = memfd(4096);
    let need = log_size_for(MEM);
    let cases: [(u64, u64, &str); 4] = [
        (0, 8192, "longer than its fd"),
        (4000, need, "offset + size past the fd"),
        (0, need - 1, "smaller than guest memory"),
        (u64::MAX - 8, 16, "offset + size overflows"),
    ];
    for (off, size, what) in cases {
        let mut fe = MockFrontend::connect(&s.path, MEM, 1, QSIZE).unwrap();
        assert!(
            fe.set_log_base(&log, off, size).is_err(),
            "{what}: accepted"
        );
    }
    // The server is still fine, and a log that fits is taken.
    let mut fe = MockFrontend::connect(&s.path, MEM, 1, QSIZE).unwrap();
    fe.set_log_base(&log, 64, need).unwrap();
    fe.set_log_all(true).unwrap();
    let dst = fe.data_base;
    let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(dst, 4096)], false);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
    assert!(marked(&log, 64, need).contains(&(dst / VHOST_LOG_PAGE)));
}

#[test]
fn ring_log_address_outside_the_log_is_refused() {
    let backend = Box::new(MemBackend::new(1 << 20, 16).unwrap());
    let cfg = BlkConfig::new(&backend.info(), 512, 1, "ringlog").unwrap();
    let dev = DeviceCell::new(BlkDevice::new("ringlog", backend, cfg));
    let mut h = BlkHandler::new(Arc::clone(&dev));
    let size = log_size_for(MEM);
    h.set_log_base(&VhostUserLog::new(size, 0), memfd(4096))
        .unwrap();
    h.set_vring_num(0, QSIZE as u32).unwrap();
    let flag = || VhostUserVringAddrFlags::VHOST_VRING_F_LOG;
    let ring_len = used_ring_len(QSIZE);
    assert!(h.set_vring_addr(0, flag(), 0, 0, 0, MEM - ring_len).is_ok());
    assert!(h
        .set_vring_addr(0, flag(), 0, 0, 0, MEM - ring_len + 1)
        .is_err());
    assert!(h.set_vring_addr(0, flag(), 0, 0, 0, u64::MAX - 4).is_err());
    // Without the flag the address is not used.
    assert!(h
        .set_vring_addr(0, VhostUserVringAddrFlags::empty(), 0, 0, 0, u64::MAX)
        .is_ok());
    // A smaller log would leave a logging ring uncovered: refused, the old
    // log stays.
    h.set_vring_addr(0, flag(), 0, 0, 0, MEM - ring_len)
        .unwrap();
    assert!(h
        .set_log_base(&VhostUserLog::new(size / 2, 0), memfd(4096))
        .is_err());
    assert!(h
        .set_log_base(&VhostUserLog::new(0, 0), memfd(4096))
        .is_err());
}
