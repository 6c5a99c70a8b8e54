//! The dirty-log rule checked byte for byte against a shadow copy of guest
//! memory (vhost-user spec, "Migration": "the back-end must ... log all
//! writes to guest memory while `VHOST_F_LOG_ALL` is set").
//!
//! A simulated VMM drives [`BlkHandler`] the way QEMU does for a migration
//! (memory table of two regions whose guest-physical addresses, fd offsets
//! and VMM addresses all differ; `SET_LOG_BASE`, `LOG_ALL`,
//! `VHOST_VRING_F_LOG`), and a simulated driver keeps two queues busy
//! with reads (into buffers that straddle pages), writes and GET_ID. The
//! device runs one step at a time on this thread (a poll, arming and
//! disarming kicks around a sleep, a memory-table change that restarts the
//! rings, the final `GET_VRING_BASE`), and before every step the log is
//! emptied, as QEMU's dirty-bitmap sync does between the device's writes.
//! After each step, every page of guest memory whose bytes the step changed
//! must be marked in the log, except the data buffers of reads still in
//! flight (the backend fills them asynchronously; they must be marked by
//! the step that completes the request). After the last ring stopped, the
//! device must not change guest memory at all.
//!
//! Split and packed rings, with and without `VIRTIO_RING_F_EVENT_IDX`.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::RawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::io::FromRawFd;
use std::sync::Arc;

use vhost::vhost_user::message::{
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserVringAddrFlags,
};
use vhost::vhost_user::VhostUserBackendReqHandlerMut;

use crate::backend::mem::MemBackend;
use crate::backend::{Backend, BackendInfo, IoCompletion, IoRequest, SubmitError};
use crate::blk::mock::BlkDriver;
use crate::blk::request::HEADER_LEN;
use crate::blk::{
    BlkConfig, BlkDevice, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use crate::dirty_log::{log_size_for, VHOST_LOG_PAGE};
use crate::guest_memory::{GuestMemory, RegionDesc};
use crate::poller::{DeviceCell, SharedDevice};
use crate::vhost_user::{BlkHandler, VHOST_F_LOG_ALL, VHOST_USER_F_PROTOCOL_FEATURES};
use crate::virtq::mock::{Buf, MockPackedQueue};
use crate::virtq::{
    VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};

/// Guest memory: region A at GPA 0 (fd offset 0), region B at GPA 1 MiB
/// but fd offset 640 KiB; the VMM maps them far apart.
const A: RegionDesc = RegionDesc {
    guest_phys_addr: 0,
    size: 0xa_0000,
    user_addr: 0x7f00_0000_0000,
    mmap_offset: 0,
};
const B: RegionDesc = RegionDesc {
    guest_phys_addr: 0x10_0000,
    size: 0x10_0000,
    user_addr: 0x7f40_0000_0000,
    mmap_offset: 0xa_0000,
};
const FD_LEN: u64 = 0x1a_0000;
const GUEST_END: u64 = 0x20_0000;
const QSIZE: u16 = 16;
const QUEUES: usize = 2;
/// Requests in flight per queue at most (chains of up to 5 descriptors in
/// a ring of 16).
const MAX_INFLIGHT: usize = 3;
/// Offset of the log in its fd (not page-aligned, as the spec allows).
const LOG_OFF: u64 = 100;

fn memfd(name: &std::ffi::CStr, len: u64) -> File {
    // SAFETY: plain syscall; the fd is checked and then owned by File.
    let f = unsafe {
        let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        File::from_raw_fd(fd)
    };
    f.set_len(len).unwrap();
    f
}

fn eventfd() -> File {
    // SAFETY: eventfd returns a new fd (or -1, checked) that the File owns.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_NONBLOCK);
        assert!(fd >= 0);
        File::from_raw_fd(fd)
    }
}

/// The memory backend, completing each request only at every third poll
/// (a read's data is in guest memory from its submission on, as with an
/// asynchronous backend, and the device learns of it later).
struct Slow {
    inner: MemBackend,
    tick: u32,
}

impl Backend for Slow {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }
    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        self.inner.submit(req)
    }
    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.tick += 1;
        if !self.tick.is_multiple_of(3) {
            return 0;
        }
        self.inner.poll(out)
    }
    fn inflight(&self) -> usize {
        self.inner.inflight()
    }
}

/// A tiny deterministic generator (the run must be the same every time).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One request the driver made available.
#[derive(Debug, Clone)]
struct Pending {
    id: u16,
    /// Guest ranges the device may write (read data, GET_ID's buffer).
    written: Vec<(u64, u64)>,
}

/// The driver of one queue, split or packed.
enum Ring {
    Split(BlkDriver),
    Packed {
        q: MockPackedQueue,
        scratch: u64,
        next_id: u16,
    },
}

struct Queue {
    ring: Ring,
    pending: Vec<Pending>,
}

impl Queue {
    fn config(&self) -> crate::virtq::QueueConfig {
        match &self.ring {
            Ring::Split(d) => d.q.config(),
            Ring::Packed { q, .. } => q.config(),
        }
    }

    /// Places a request and makes it available.
    fn request(&mut self, mem: &GuestMemory, ty: u32, sector: u64, data: &[Buf], indirect: bool) {
        let written = data
            .iter()
            .filter(|b| b.write)
            .map(|b| (b.addr, b.len as u64))
            .collect();
        let id = match &mut self.ring {
            Ring::Split(d) => d.request(ty, sector, data, indirect).head,
            Ring::Packed {
                q,
                scratch,
                next_id,
            } => {
                let id = *next_id;
                *next_id = (*next_id + 1) % QSIZE;
                let hdr = *scratch + id as u64 * 32;
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&ty.to_le_bytes());
                h[8..16].copy_from_slice(&sector.to_le_bytes());
                mem.write(hdr, &h).unwrap();
                mem.write(hdr + HEADER_LEN, &[0xff]).unwrap();
                let mut bufs = vec![Buf::r(hdr, 16)];
                bufs.extend_from_slice(data);
                bufs.push(Buf::w(hdr + HEADER_LEN, 1));
                q.add_chain(&bufs, id);
                id
            }
        };
        self.pending.push(Pending { id, written });
    }

    /// Takes the used elements; returns the requests they complete.
    fn reap(&mut self) -> Vec<Pending> {
        let mut done = Vec::new();
        loop {
            let used = match &mut self.ring {
                Ring::Split(d) => d.q.pop_used(),
                Ring::Packed { q, .. } => q.pop_used(),
            };
            let Some((id, _)) = used else {
                return done;
            };
            let i = self
                .pending
                .iter()
                .position(|p| p.id == id)
                .unwrap_or_else(|| panic!("used element for id {id}, not in flight"));
            done.push(self.pending.remove(i));
        }
    }
}

/// The simulated VMM, driver and the device under test.
struct Rig {
    h: BlkHandler,
    dev: SharedDevice,
    guest: File,
    log: File,
    log_size: u64,
    mem: GuestMemory,
    queues: Vec<Queue>,
    features: u64,
    /// The kick eventfds (kept open: the device holds clones).
    _kicks: Vec<File>,
}

fn table() -> Vec<VhostUserMemoryRegion> {
    [A, B]
        .iter()
        .map(|r| VhostUserMemoryRegion::new(r.guest_phys_addr, r.size, r.user_addr, r.mmap_offset))
        .collect()
}

/// The VMM address of guest address `gpa`.
fn vmm(gpa: u64) -> u64 {
    let r = [A, B]
        .into_iter()
        .find(|r| gpa >= r.guest_phys_addr && gpa < r.guest_phys_addr + r.size)
        .expect("address in guest memory");
    r.user_addr + (gpa - r.guest_phys_addr)
}

/// The guest address of byte `off` of the memory fd, if it is guest memory.
fn gpa_of(off: u64) -> Option<u64> {
    [A, B].into_iter().find_map(|r| {
        (off >= r.mmap_offset && off < r.mmap_offset + r.size)
            .then(|| r.guest_phys_addr + off - r.mmap_offset)
    })
}

impl Rig {
    fn new(packed: bool, event_idx: bool) -> Rig {
        let backend = Box::new(Slow {
            inner: MemBackend::new(1 << 20, 64).unwrap(),
            tick: 0,
        });
        let cfg = BlkConfig::new(&backend.info(), 512, QUEUES as u16, "shadow").unwrap();
        let dev = DeviceCell::new(BlkDevice::new("shadow", backend, cfg));
        let mut h = BlkHandler::new(Arc::clone(&dev));
        h.set_owner().unwrap();
        let mut features =
            VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VHOST_USER_F_PROTOCOL_FEATURES;
        if packed {
            features |= VIRTIO_F_RING_PACKED;
        }
        if event_idx {
            features |= VIRTIO_RING_F_EVENT_IDX;
        }
        assert_eq!(h.get_features().unwrap() & features, features);
        h.set_features(features).unwrap();
        h.set_protocol_features(
            (VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::LOG_SHMFD).bits(),
        )
        .unwrap();
        let guest = memfd(c"shadow-guest", FD_LEN);
        let files = || vec![guest.try_clone().unwrap(), guest.try_clone().unwrap()];
        h.set_mem_table(&table(), files(), None).unwrap();
        let mem = GuestMemory::from_fds(&[A, B], files()).unwrap();

        // Rings in region A (as a guest kernel's), request scratch and data
        // buffers in region B.
        let mut queues = Vec::new();
        let mut kicks = Vec::new();
        for qi in 0..QUEUES {
            let base = 0x1_0000 + qi as u64 * 0x1_0000;
            let scratch = B.guest_phys_addr + qi as u64 * 0x2_0000;
            let ring = if packed {
                Ring::Packed {
                    q: MockPackedQueue::new(&mem, base, QSIZE),
                    scratch,
                    next_id: 0,
                }
            } else {
                let mut d = BlkDriver::new(&mem, base, QSIZE, scratch);
                d.q.set_event_idx(event_idx);
                Ring::Split(d)
            };
            let q = Queue {
                ring,
                pending: Vec::new(),
            };
            let c = q.config();
            let i = qi as u32;
            h.set_vring_num(i, QSIZE as u32).unwrap();
            let base = if packed {
                MockPackedQueue::initial_base()
            } else {
                0
            };
            h.set_vring_base(i, base).unwrap();
            h.set_vring_addr(
                i,
                VhostUserVringAddrFlags::empty(),
                vmm(c.desc),
                vmm(c.used),
                vmm(c.avail),
                0,
            )
            .unwrap();
            let kick = eventfd();
            h.set_vring_kick(qi as u8, Some(kick.try_clone().unwrap()))
                .unwrap();
            h.set_vring_enable(i, true).unwrap();
            assert!(dev.lock().queue_running(qi), "queue {qi} started");
            kicks.push(kick);
            queues.push(q);
        }
        Rig {
            h,
            dev,
            guest,
            log: memfd(c"shadow-log", 4096),
            log_size: log_size_for(GUEST_END),
            mem,
            queues,
            features,
            _kicks: kicks,
        }
    }

    /// The migration starts: a log, `LOG_ALL`, the rings' used-ring logging
    /// (QEMU: `log_guest_addr` is the used ring's, or for packed rings the
    /// device area's, guest address).
    fn start_logging(&mut self) {
        self.h
            .set_log_base(
                &VhostUserLog::new(self.log_size, LOG_OFF),
                self.log.try_clone().unwrap(),
            )
            .unwrap();
        self.h
            .set_features(self.features | VHOST_F_LOG_ALL)
            .unwrap();
        for (qi, q) in self.queues.iter().enumerate() {
            let c = q.config();
            self.h
                .set_vring_addr(
                    qi as u32,
                    VhostUserVringAddrFlags::VHOST_VRING_F_LOG,
                    vmm(c.desc),
                    vmm(c.used),
                    vmm(c.avail),
                    c.used,
                )
                .unwrap();
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut b = vec![0u8; FD_LEN as usize];
        self.guest.read_exact_at(&mut b, 0).unwrap();
        b
    }

    /// QEMU's sync: takes the marked pages and clears them.
    fn sync(&self) -> BTreeSet<u64> {
        let mut b = vec![0u8; self.log_size as usize];
        self.log.read_exact_at(&mut b, LOG_OFF).unwrap();
        self.log.write_all_at(&vec![0u8; b.len()], LOG_OFF).unwrap();
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

    /// Guest pages whose bytes differ between two snapshots.
    fn changed(before: &[u8], after: &[u8]) -> BTreeSet<u64> {
        let mut set = BTreeSet::new();
        for (i, (x, y)) in before.chunks(4096).zip(after.chunks(4096)).enumerate() {
            if x != y {
                let off = i as u64 * 4096;
                // A page of the fd maps to one guest page (regions are
                // page-aligned in both).
                set.insert(
                    gpa_of(off).expect("the device wrote outside guest memory") / VHOST_LOG_PAGE,
                );
            }
        }
        set
    }

    /// Pages of the guest ranges the in-flight requests may still get
    /// written (their completion marks them).
    fn in_flight_pages(&self) -> BTreeSet<u64> {
        let mut set = BTreeSet::new();
        for q in &self.queues {
            for p in &q.pending {
                for &(a, l) in &p.written {
                    set.extend(a / VHOST_LOG_PAGE..=(a + l - 1) / VHOST_LOG_PAGE);
                }
            }
        }
        set
    }

    /// Runs one device step between two syncs of the log and checks the
    /// rule; `what` names the step in a failure.
    fn step(&mut self, what: &str, f: impl FnOnce(&mut Rig)) {
        self.sync();
        let before = self.snapshot();
        f(self);
        let after = self.snapshot();
        let marked = self.sync();
        // Requests this step completed: their buffers must be marked now.
        let mut done_pages = BTreeSet::new();
        let mut done_reqs = Vec::new();
        for q in &mut self.queues {
            for p in q.reap() {
                done_reqs.push(p.clone());
                for &(a, l) in &p.written {
                    done_pages.extend(a / VHOST_LOG_PAGE..=(a + l - 1) / VHOST_LOG_PAGE);
                }
            }
        }
        let still = self.in_flight_pages();
        let unmarked_done: Vec<_> = done_pages.difference(&marked).collect();
        assert!(
            unmarked_done.is_empty(),
            "{what}: completed requests' buffers in pages {unmarked_done:x?} not marked (marked {marked:x?}; completed {done_reqs:x?})"
        );
        assert_eq!(
            self.dev.lock().stats().queue_resets,
            0,
            "{what}: a queue broke"
        );
        let unmarked: Vec<_> = Self::changed(&before, &after)
            .into_iter()
            .filter(|p| !marked.contains(p) && !still.contains(p))
            .collect();
        assert!(
            unmarked.is_empty(),
            "{what}: the device wrote guest pages {unmarked:x?} without marking them (marked {marked:x?})"
        );
    }

    /// The driver places a random request on queue `qi`.
    fn random_request(&mut self, rng: &mut Lcg, qi: usize, n: u64) {
        let data = B.guest_phys_addr + 0x8_0000 + (qi as u64 * 8 + n % 8) * 0x3000;
        // Any byte offset: buffers straddle page boundaries.
        let at = data + rng.next(4096);
        let sectors = 1 + rng.next(8);
        let len = sectors * 512;
        let mem = self.mem.clone();
        let sector = rng.next(1024);
        match rng.next(8) {
            0 => {
                // GET_ID into a 20-byte buffer across a page boundary.
                let at = (at | 0xfff) - 9;
                self.queues[qi].request(&mem, VIRTIO_BLK_T_GET_ID, 0, &[Buf::w(at, 20)], false);
            }
            1..=2 => {
                mem.write(at, &vec![n as u8 | 1; len as usize]).unwrap();
                self.queues[qi].request(
                    &mem,
                    VIRTIO_BLK_T_OUT,
                    sector,
                    &[Buf::r(at, len as u32)],
                    false,
                );
            }
            k => {
                // A read in one to three descriptors, some indirect.
                let cut = (sectors / 2) * 512;
                let bufs: Vec<Buf> = if cut == 0 || k == 3 {
                    vec![Buf::w(at, len as u32)]
                } else {
                    vec![Buf::w(at, cut as u32), Buf::w(at + cut, (len - cut) as u32)]
                };
                let indirect = k == 7 && matches!(self.queues[qi].ring, Ring::Split(_));
                self.queues[qi].request(&mem, VIRTIO_BLK_T_IN, sector, &bufs, indirect);
            }
        }
    }

    fn poll(&mut self) {
        self.dev.lock().poll();
    }

    /// The poller's sleep: kicks armed, then (a sync may happen while it
    /// sleeps) disarmed.
    fn arm(&mut self) -> bool {
        let mut fds: Vec<RawFd> = Vec::new();
        self.dev.lock().arm_kicks(&mut fds)
    }

    fn disarm(&mut self) {
        self.dev.lock().disarm_kicks_fired(Some(&[]));
    }
}

fn run(packed: bool, event_idx: bool) {
    let what = format!(
        "{} ring, event index {}",
        if packed { "packed" } else { "split" },
        if event_idx { "on" } else { "off" }
    );
    let mut r = Rig::new(packed, event_idx);
    let mut rng = Lcg(0x5eed ^ packed as u64 ^ (event_idx as u64) << 1);
    // Some traffic before the migration.
    for n in 0..4 {
        r.random_request(&mut rng, n as usize % QUEUES, n);
        r.poll();
        r.poll();
        r.poll();
        for q in &mut r.queues {
            q.reap();
        }
    }
    r.start_logging();
    let mut n = 100;
    for round in 0..400 {
        for qi in 0..QUEUES {
            let room = MAX_INFLIGHT - r.queues[qi].pending.len();
            for _ in 0..rng.next(room as u64 + 1) {
                r.random_request(&mut rng, qi, n);
                n += 1;
            }
        }
        match rng.next(10) {
            0..=5 => r.step(&format!("{what}: poll (round {round})"), Rig::poll),
            6..=7 => {
                r.step(&format!("{what}: arm kicks (round {round})"), |r| {
                    r.arm();
                });
                r.step(
                    &format!("{what}: disarm kicks (round {round})"),
                    Rig::disarm,
                );
            }
            8 => {
                r.step(&format!("{what}: short sleep (round {round})"), |r| {
                    r.arm();
                    r.disarm();
                });
            }
            _ => {
                // A new memory table while logging: the rings restart.
                r.step(&format!("{what}: memory table (round {round})"), |r| {
                    let g = &r.guest;
                    let files = vec![g.try_clone().unwrap(), g.try_clone().unwrap()];
                    r.h.set_mem_table(&table(), files, None).unwrap();
                });
            }
        }
    }
    // The switch-over: the rings stop with requests in flight; what they
    // complete is marked, and every request they took is complete (the base
    // is the used index: the destination owes the guest nothing). Requests
    // not taken yet stay in the ring for the destination.
    r.step(&format!("{what}: GET_VRING_BASE"), |r| {
        for qi in 0..QUEUES {
            let base = r.h.get_vring_base(qi as u32).unwrap().num;
            if packed {
                assert_eq!(base & 0xffff, base >> 16, "{qi}: base {base:#x}");
            } else {
                let mut used = [0u8; 2];
                r.mem
                    .read(r.queues[qi].config().used + 2, &mut used)
                    .unwrap();
                assert_eq!(base, u16::from_le_bytes(used) as u32, "queue {qi}");
            }
        }
    });
    // Stopped: the device writes nothing any more, whatever runs.
    let before = r.snapshot();
    r.poll();
    r.arm();
    r.disarm();
    r.poll();
    assert!(
        Rig::changed(&before, &r.snapshot()).is_empty(),
        "{what}: the device wrote guest memory after its rings stopped"
    );
    assert_eq!(r.dev.lock().stats().queue_resets, 0, "{what}");
    assert!(
        r.dev.lock().stats().reads > 50,
        "{what}: {:?}",
        r.dev.lock().stats()
    );
    let _ = VIRTIO_BLK_S_OK;
}

#[test]
fn shadow_memory_split_ring() {
    run(false, false);
}

#[test]
fn shadow_memory_split_ring_event_idx() {
    run(false, true);
}

#[test]
fn shadow_memory_packed_ring() {
    run(true, false);
}

#[test]
fn shadow_memory_packed_ring_event_idx() {
    run(true, true);
}
