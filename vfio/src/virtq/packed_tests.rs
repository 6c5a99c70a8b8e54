//! Packed-queue tests against the packed guest-driver simulator.

use super::mock::{Buf, MockPackedQueue};
use super::packed::{VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED};
use super::*;
use crate::guest_memory::GuestMemory;

const MEM: usize = 1 << 20;
const FEAT: u64 = VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_F_RING_PACKED;

fn setup(size: u16, features: u64) -> (GuestMemory, MockPackedQueue, PackedQueue) {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let mq = MockPackedQueue::new(&mem, 0x1000, size);
    let q = PackedQueue::new(
        mem.clone(),
        mq.config(),
        features,
        MockPackedQueue::initial_base(),
    )
    .unwrap();
    (mem, mq, q)
}

#[test]
fn chains_round_trip_across_many_wraps() {
    let (mem, mut mq, mut q) = setup(8, FEAT);
    let mut c = Chain::new();
    assert_eq!(q.pop(&mut c), Ok(None));
    for round in 0..50u32 {
        // 3 descriptors per chain on an 8-slot ring: wraps at odd places.
        mem.write(0x10000, &round.to_le_bytes()).unwrap();
        let id = (round % 8) as u16;
        mq.add_chain(
            &[Buf::r(0x10000, 4), Buf::w(0x20000, 64), Buf::w(0x30000, 1)],
            id,
        );
        assert_eq!(q.pop(&mut c), Ok(Some(id)));
        assert_eq!(c.ring_descs, 3);
        assert_eq!((c.readable_len, c.writable_len), (4, 65));
        let mut b = [0u8; 4];
        assert!(crate::iovec::gather(c.readable(), &mut b));
        assert_eq!(u32::from_le_bytes(b), round);
        assert_eq!(q.pop(&mut c), Ok(None));
        q.add_used(id, 7, c.ring_descs);
        q.publish_used();
        assert_eq!(mq.pop_used(), Some((id, 7)));
        assert_eq!(mq.pop_used(), None);
    }
}

#[test]
fn indirect_and_unpop_and_base() {
    let (_mem, mut mq, mut q) = setup(4, FEAT);
    let mut c = Chain::new();
    mq.add_indirect_chain(
        0x40000,
        &[
            Buf::r(0x10000, 16),
            Buf::w(0x20000, 512),
            Buf::w(0x30000, 1),
        ],
        2,
    );
    assert_eq!(q.pop(&mut c), Ok(Some(2)));
    assert_eq!((c.ring_descs, c.iovs.len()), (1, 3));
    q.unpop();
    assert_eq!(q.pop(&mut c), Ok(Some(2)), "given back, taken again");
    q.add_used(2, 513, 1);
    assert!(q.publish_used());
    assert_eq!(mq.pop_used(), Some((2, 513)));
    // Base: next avail 1 / wrap 1, next used 1 / wrap 1.
    assert_eq!(q.base(), 1 | 1 << 15 | (1 | 1 << 15) << 16);
    q.suppress_kicks();
    assert_eq!(mq.device_event_flags(), 1);
}

#[test]
fn driver_event_suppression() {
    let (_mem, mut mq, mut q) = setup(8, FEAT | VIRTIO_RING_F_EVENT_IDX);
    let mut c = Chain::new();
    mq.set_driver_event(0, 1);
    mq.add_chain(&[Buf::w(0x30000, 1)], 0);
    q.pop(&mut c).unwrap().unwrap();
    q.add_used(0, 1, 1);
    assert!(!q.publish_used(), "disabled");
    // Interrupt when the used index passes slot 2 of the current lap.
    mq.set_driver_event(2 | 1 << 15, 2);
    let mut irq = vec![];
    for id in 1..4u16 {
        mq.add_chain(&[Buf::w(0x30000, 1)], id);
        q.pop(&mut c).unwrap().unwrap();
        q.add_used(id, 1, 1);
        irq.push(q.publish_used());
    }
    assert_eq!(irq, vec![false, true, false]);
}

#[test]
fn malicious_packed_rings() {
    let mut c = Chain::new();
    // A chain of NEXT descriptors all around the ring: longer than the ring.
    let (_mem, mq, mut q) = setup(4, FEAT);
    for i in 0..4 {
        mq.write_raw(i, 0x10000, 16, 0, mq.avail_bits(VIRTQ_DESC_F_NEXT));
    }
    assert_eq!(q.pop(&mut c), Err(ChainError::Loop));
    // Buffer id out of range.
    let (_mem, mq, mut q) = setup(4, FEAT);
    mq.write_raw(0, 0x10000, 16, 9, mq.avail_bits(0));
    assert_eq!(q.pop(&mut c), Err(ChainError::HeadOutOfRange(9)));
    // Indirect without the feature, with NEXT, bad table.
    let (_mem, mq, mut q) = setup(4, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_PACKED);
    mq.write_raw(0, 0x40000, 16, 0, mq.avail_bits(VIRTQ_DESC_F_INDIRECT));
    assert_eq!(q.pop(&mut c), Err(ChainError::IndirectNotNegotiated));
    let (_mem, mq, mut q) = setup(4, FEAT);
    mq.write_raw(
        0,
        0x40000,
        16,
        0,
        mq.avail_bits(VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT),
    );
    assert_eq!(q.pop(&mut c), Err(ChainError::IndirectWithNext));
    let (_mem, mq, mut q) = setup(4, FEAT);
    mq.write_raw(
        0,
        MEM as u64 - 8,
        32,
        0,
        mq.avail_bits(VIRTQ_DESC_F_INDIRECT),
    );
    assert_eq!(q.pop(&mut c), Err(ChainError::BadIndirectTable));
    // Readable after writable.
    let (_mem, mut mq, mut q) = setup(4, FEAT);
    mq.add_chain(&[Buf::w(0x20000, 4), Buf::r(0x10000, 4)], 1);
    assert_eq!(q.pop(&mut c), Err(ChainError::ReadableAfterWritable));
    // Buffers outside memory are left out and flagged.
    let (_mem, mut mq, mut q) = setup(4, FEAT);
    mq.add_chain(&[Buf::r(u64::MAX - 2, 16), Buf::w(0x30000, 1)], 1);
    assert_eq!(q.pop(&mut c), Ok(Some(1)));
    assert!(c.out_of_bounds && c.last_writable_ok && c.iovs.len() == 1);
    // A descriptor marked with the wrong lap's bits is not available.
    let (_mem, mq, mut q) = setup(4, FEAT);
    mq.write_raw(0, 0x10000, 16, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
    assert_eq!(q.pop(&mut c), Ok(None));
    // Bad configs and bases.
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let cfg = QueueConfig {
        size: 4,
        desc: 8,
        avail: 0x1000,
        used: 0x1008,
    };
    assert!(matches!(
        PackedQueue::new(mem.clone(), cfg, FEAT, 0),
        Err(QueueError::Misaligned(_))
    ));
    let cfg = QueueConfig {
        size: 4,
        desc: 0,
        avail: 0x1000,
        used: 0x1008,
    };
    assert!(
        PackedQueue::new(mem.clone(), cfg, FEAT, 7).is_err(),
        "base past the ring"
    );
    let cfg = QueueConfig {
        size: 4,
        desc: MEM as u64 - 32,
        avail: 0x1000,
        used: 0x1008,
    };
    assert!(matches!(
        PackedQueue::new(mem, cfg, FEAT, 0),
        Err(QueueError::RingOutOfBounds(_))
    ));
}

#[test]
fn random_packed_rings_never_escape_memory() {
    let (mem, mq, _q) = setup(16, FEAT);
    let lo = mem.host_range(0, 1).unwrap() as usize;
    let mut seed = 0xdead_beef_1234_5678u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut c = Chain::new();
    for _ in 0..2000 {
        for i in 0..16u16 {
            let r = rnd();
            let addr = if r & 1 == 0 { r >> 44 } else { r };
            let flags = (rnd() as u16 & 7) | mq.avail_bits(0);
            mq.write_raw(i, addr, (rnd() >> 48) as u32, (rnd() & 31) as u16, flags);
        }
        let mut q = PackedQueue::new(
            mem.clone(),
            mq.config(),
            FEAT,
            MockPackedQueue::initial_base(),
        )
        .unwrap();
        for _ in 0..4 {
            if !matches!(q.pop(&mut c), Ok(Some(_))) {
                break;
            }
            for v in &c.iovs {
                let p = v.as_libc().iov_base as usize;
                assert!(p >= lo && p + v.len() <= lo + MEM);
            }
        }
    }
}
