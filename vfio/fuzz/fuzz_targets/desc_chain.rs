//! Fuzzes the device against arbitrary guest memory contents: the input is
//! written over the descriptor table, the available ring and a data area of
//! a simulated guest, then the virtio-blk device polls the queue. It must
//! never panic, never loop, and every I/O vector it builds must lie inside
//! guest memory (the walk itself checks the latter; a bug would crash or
//! trip the address sanitizer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfio::backend::{mem::MemBackend, Backend};
use vfio::blk::{BlkConfig, BlkDevice};
use vfio::guest_memory::GuestMemory;
use vfio::virtq::mock::MockQueue;
use vfio::virtq::{
    Chain, PackedQueue, SplitQueue, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};

const MEM: usize = 1 << 16;
const QSIZE: u16 = 16;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mem = GuestMemory::anonymous(&[(0, MEM / 2), (MEM as u64 / 2 + 0x1000, MEM / 2)]).unwrap();
    let mut mq = MockQueue::new(&mem, 0, QSIZE);
    let cfg = mq.config();
    let features = VIRTIO_F_VERSION_1
        | if data[0] & 1 != 0 { VIRTIO_RING_F_INDIRECT_DESC } else { 0 }
        | if data[0] & 2 != 0 { VIRTIO_RING_F_EVENT_IDX } else { 0 };
    // Descriptor table + available ring from the input, rest to a data area.
    let ring_len = (16 * QSIZE as usize + 4 + 2 * QSIZE as usize).min(data.len() - 1);
    let _ = mem.write(cfg.desc, &data[1..1 + ring_len]);
    let rest = &data[1 + ring_len..];
    let _ = mem.write(0x2000, &rest[..rest.len().min(0x4000)]);
    let n = data[1] % (QSIZE as u8 + 2);
    mq.force_avail_idx(n as u16);

    // The bare walk.
    let q = SplitQueue::new(mem.clone(), cfg, features, 0, 0).unwrap();
    let mut chain = Chain::new();
    for head in 0..QSIZE + 2 {
        let _ = q.walk(head, &mut chain);
        for v in &chain.iovs {
            let p = v.as_libc().iov_base as u64;
            assert!(mem.regions().iter().any(|r| {
                let base = mem.host_range(r.guest_phys_addr, 0).unwrap() as u64;
                p >= base && p + v.len() as u64 <= base + r.size
            }));
        }
    }

    // The same bytes read as a packed ring.
    let base = u32::from(data[1] & 0x0f) | u32::from(data[0] & 0x80) << 8 | 1 << 31;
    if let Ok(mut pq) = PackedQueue::new(mem.clone(), cfg, features | VIRTIO_F_RING_PACKED, base) {
        for _ in 0..QSIZE {
            match pq.pop(&mut chain) {
                Ok(Some(id)) => pq.add_used(id, 1, chain.ring_descs),
                _ => break,
            }
        }
        pq.publish_used();
    }

    // The whole device.
    let backend = Box::new(MemBackend::new(1 << 20, 64).unwrap());
    let bcfg = BlkConfig::new(&backend.info(), 512, 1, "fuzz").unwrap();
    let mut dev = BlkDevice::new("fuzz", backend, bcfg);
    dev.set_features(features);
    dev.set_memory(mem.clone());
    dev.start_queue(0, cfg, 0).unwrap();
    for _ in 0..4 {
        dev.poll();
    }
});
