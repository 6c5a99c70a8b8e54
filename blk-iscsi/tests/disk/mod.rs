//! What the tests against tgtd share: the real virtio-blk device
//! (`vfio::blk::BlkDevice`) on an `IscsiBackend`, driven by the guest-driver
//! simulator, and the data patterns they write.

#![allow(dead_code)]

use blk_iscsi::IscsiBackend;
use std::time::{Duration, Instant};
use vfio::backend::Backend;
use vfio::blk::mock::{BlkDriver, BlkReq};
use vfio::blk::{BlkConfig, BlkDevice};
use vfio::guest_memory::GuestMemory;
use vfio::virtq::mock::MockQueue;
use vfio::virtq::{VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC};

/// Guest memory.
pub const MEM: usize = 64 << 20;
/// Entries of the one queue.
pub const QSIZE: u16 = 128;

/// A device on an iSCSI LU with one started queue and its driver.
pub struct Disk {
    /// The guest's memory (buffers the tests write and read).
    pub mem: GuestMemory,
    /// The device under test.
    pub dev: BlkDevice,
    /// The guest driver's side of the queue.
    pub drv: BlkDriver,
}

impl Disk {
    /// `be` behind a device named `name` with one QSIZE queue (indirect
    /// descriptors negotiated) in MEM bytes of guest memory.
    pub fn new(be: IscsiBackend, name: &str) -> Disk {
        let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
        let cfg = BlkConfig::new(&be.info(), 512, 1, name).unwrap();
        let mut dev = BlkDevice::new(name, Box::new(be), cfg);
        dev.set_features(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC);
        dev.set_memory(mem.clone());
        let base = 0x1000;
        let drv = BlkDriver::new(&mem, base, QSIZE, base + MockQueue::footprint(QSIZE));
        dev.start_queue(0, drv.q.config(), 0).unwrap();
        Disk { mem, dev, drv }
    }

    /// [`complete_within`](Self::complete_within) 60 s.
    pub fn complete(&mut self, reqs: &[BlkReq], during: impl FnMut(usize)) -> Vec<u8> {
        self.complete_within(reqs, Duration::from_secs(60), during)
    }

    /// Polls until every request of `reqs` is used, each exactly once,
    /// within `limit` (`during` runs after each poll, with the round's
    /// number); returns their statuses.
    pub fn complete_within(
        &mut self,
        reqs: &[BlkReq],
        limit: Duration,
        mut during: impl FnMut(usize),
    ) -> Vec<u8> {
        let mut used = vec![0u32; reqs.len()];
        let mut seen = 0;
        let deadline = Instant::now() + limit;
        let mut rounds = 0;
        while seen < reqs.len() {
            self.dev.poll();
            rounds += 1;
            during(rounds);
            while let Some((head, _)) = self.drv.q.pop_used() {
                let i = reqs
                    .iter()
                    .position(|r| r.head == head)
                    .unwrap_or_else(|| panic!("unknown head {head} used"));
                used[i] += 1;
                seen += 1;
            }
            assert!(
                Instant::now() < deadline,
                "{seen} of {} requests completed in {limit:?}",
                reqs.len()
            );
            if rounds % 64 == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        assert!(
            used.iter().all(|&u| u == 1),
            "each request used exactly once: {used:?}"
        );
        reqs.iter().map(|r| self.drv.status(r)).collect()
    }
}

/// `len` bytes of xorshift output from `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len / 8)
        .flat_map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s.to_le_bytes()
        })
        .collect()
}
