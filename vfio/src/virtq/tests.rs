//! Split-queue tests against the guest-driver simulator, including
//! malicious guests.

use super::mock::{Buf, MockQueue};
use super::*;
use crate::guest_memory::GuestMemory;

const MEM: usize = 1 << 20;
const FEAT: u64 = VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC;

fn setup(size: u16, features: u64) -> (GuestMemory, MockQueue, SplitQueue) {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let mq = MockQueue::new(&mem, 0x1000, size);
    let q = SplitQueue::new(mem.clone(), mq.config(), features, 0, 0).unwrap();
    (mem, mq, q)
}

fn pop(q: &mut SplitQueue, chain: &mut Chain) -> Option<Result<(), ChainError>> {
    if q.avail_pending().unwrap() == 0 {
        return None;
    }
    let head = q.pop_head();
    Some(q.walk(head, chain))
}

#[test]
fn direct_chain_round_trip() {
    let (mem, mut mq, mut q) = setup(16, FEAT);
    mem.write(0x10000, b"hello").unwrap();
    let head = mq.add_chain(&[Buf::r(0x10000, 5), Buf::w(0x20000, 100), Buf::w(0x30000, 1)]);
    mq.push_avail(head);
    assert_eq!(q.avail_pending().unwrap(), 0, "not published yet");
    mq.publish();
    let mut c = Chain::new();
    pop(&mut q, &mut c).unwrap().unwrap();
    assert_eq!(c.head, head);
    assert_eq!((c.readable_len, c.writable_len), (5, 101));
    assert_eq!((c.readable().len(), c.writable().len()), (1, 2));
    let mut b = [0u8; 5];
    assert!(crate::iovec::gather(c.readable(), &mut b));
    assert_eq!(&b, b"hello");
    assert!(crate::iovec::scatter(c.writable(), b"xyz"));
    let mut out = [0u8; 3];
    mem.read(0x20000, &mut out).unwrap();
    assert_eq!(&out, b"xyz");
    assert!(c.last_writable_ok && !c.out_of_bounds);
    q.add_used(head, 3);
    assert!(q.publish_used(), "no suppression: interrupt wanted");
    assert_eq!(mq.pop_used(), Some((head, 3)));
    assert_eq!(mq.pop_used(), None);
    assert!(pop(&mut q, &mut c).is_none());
}

#[test]
fn indirect_chain() {
    let (mem, mut mq, mut q) = setup(8, FEAT);
    mem.write(0x10000, &[7u8; 16]).unwrap();
    let bufs = [
        Buf::r(0x10000, 16),
        Buf::w(0x20000, 4096),
        Buf::w(0x21000, 4096),
        Buf::w(0x30000, 1),
    ];
    let head = mq.add_indirect_chain(0x40000, &bufs);
    mq.push_avail(head);
    mq.publish();
    let mut c = Chain::new();
    pop(&mut q, &mut c).unwrap().unwrap();
    assert_eq!((c.readable_len, c.writable_len), (16, 8193));
    assert_eq!(c.iovs.len(), 4);
}

#[test]
fn indirect_refused_without_feature() {
    let (_mem, mut mq, mut q) = setup(8, VIRTIO_F_VERSION_1);
    let head = mq.add_indirect_chain(0x40000, &[Buf::w(0x20000, 1)]);
    mq.push_avail(head);
    mq.publish();
    let mut c = Chain::new();
    assert_eq!(
        pop(&mut q, &mut c).unwrap(),
        Err(ChainError::IndirectNotNegotiated)
    );
}

#[test]
fn many_chains_wrap_the_ring() {
    let (_mem, mut mq, mut q) = setup(4, FEAT);
    let mut c = Chain::new();
    for round in 0..100u32 {
        let head = mq.add_chain(&[Buf::r(0x10000, 16), Buf::w(0x30000 + round as u64, 1)]);
        mq.push_avail(head);
        mq.publish();
        pop(&mut q, &mut c).unwrap().unwrap();
        q.add_used(c.head, round);
        q.publish_used();
        assert_eq!(mq.pop_used(), Some((head, round)));
    }
    assert_eq!(q.next_avail(), 100);
    assert_eq!(q.next_used(), 100);
}

#[test]
fn event_idx_suppresses_interrupts_and_kicks() {
    let (_mem, mut mq, mut q) = setup(8, FEAT | VIRTIO_RING_F_EVENT_IDX);
    q.suppress_kicks();
    assert_eq!(mq.used_flags(), VIRTQ_USED_F_NO_NOTIFY);
    // The driver asks for an interrupt only after the 3rd used entry (used_event = 2).
    mq.set_used_event(2);
    let mut c = Chain::new();
    let mut irqs = vec![];
    for _ in 0..4 {
        let h = mq.add_chain(&[Buf::w(0x30000, 1)]);
        mq.push_avail(h);
        mq.publish();
        pop(&mut q, &mut c).unwrap().unwrap();
        q.add_used(c.head, 1);
        irqs.push(q.publish_used());
    }
    assert_eq!(irqs, vec![false, false, true, false]);
    // Without event index, VIRTQ_AVAIL_F_NO_INTERRUPT suppresses.
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    mq.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    let h = mq.add_chain(&[Buf::w(0x30000, 1)]);
    mq.push_avail(h);
    mq.publish();
    pop(&mut q, &mut c).unwrap().unwrap();
    q.add_used(h, 1);
    assert!(!q.publish_used());
}

#[test]
fn bad_queue_configs_are_refused() {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let cfg = |size, desc, avail, used| QueueConfig {
        size,
        desc,
        avail,
        used,
    };
    assert_eq!(
        SplitQueue::new(mem.clone(), cfg(3, 0, 0x1000, 0x2000), 0, 0, 0).unwrap_err(),
        QueueError::BadSize(3)
    );
    assert_eq!(
        SplitQueue::new(mem.clone(), cfg(0, 0, 0x1000, 0x2000), 0, 0, 0).unwrap_err(),
        QueueError::BadSize(0)
    );
    assert!(matches!(
        SplitQueue::new(mem.clone(), cfg(8, 8, 0x1000, 0x2000), 0, 0, 0),
        Err(QueueError::Misaligned(_))
    ));
    assert!(matches!(
        SplitQueue::new(mem.clone(), cfg(8, 0, 0x1000, 0x2002), 0, 0, 0),
        Err(QueueError::Misaligned(_))
    ));
    assert!(matches!(
        SplitQueue::new(
            mem.clone(),
            cfg(256, MEM as u64 - 0x100, 0x1000, 0x2000),
            0,
            0,
            0
        ),
        Err(QueueError::RingOutOfBounds(_))
    ));
    assert!(matches!(
        SplitQueue::new(mem, cfg(8, 0, 0x1000, u64::MAX - 3), 0, 0, 0),
        Err(QueueError::RingOutOfBounds(_))
    ));
}

// ---- malicious guests ----

#[test]
fn looping_chain_is_detected() {
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    mq.write_desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
    mq.write_desc(1, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0);
    mq.push_avail(0);
    mq.publish();
    let mut c = Chain::new();
    assert_eq!(pop(&mut q, &mut c).unwrap(), Err(ChainError::Loop));
    // A self-loop inside an indirect table.
    let (mem, mut mq, mut q) = setup(8, FEAT);
    mock::write_desc_at(&mem, 0x40000, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0);
    mq.write_desc(0, 0x40000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    mq.push_avail(0);
    mq.publish();
    assert_eq!(pop(&mut q, &mut c).unwrap(), Err(ChainError::Loop));
}

#[test]
fn indices_out_of_range() {
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    let mut c = Chain::new();
    mq.push_avail(9);
    mq.publish();
    assert_eq!(
        pop(&mut q, &mut c).unwrap(),
        Err(ChainError::HeadOutOfRange(9))
    );
    mq.write_desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 200);
    mq.push_avail(0);
    mq.publish();
    assert_eq!(
        pop(&mut q, &mut c).unwrap(),
        Err(ChainError::NextOutOfRange(200))
    );
}

#[test]
fn indirect_abuse() {
    let mut c = Chain::new();
    let cases: [(u64, u32, u16, ChainError); 5] = [
        (
            0x40000,
            16,
            VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT,
            ChainError::IndirectWithNext,
        ),
        (
            0x40000,
            0,
            VIRTQ_DESC_F_INDIRECT,
            ChainError::BadIndirectTable,
        ),
        (
            0x40000,
            17,
            VIRTQ_DESC_F_INDIRECT,
            ChainError::BadIndirectTable,
        ),
        (
            MEM as u64 - 16,
            32,
            VIRTQ_DESC_F_INDIRECT,
            ChainError::BadIndirectTable,
        ),
        (
            0x40000,
            !15,
            VIRTQ_DESC_F_INDIRECT,
            ChainError::BadIndirectTable,
        ),
    ];
    for (addr, len, flags, want) in cases {
        let (_mem, mut mq, mut q) = setup(8, FEAT);
        mq.write_desc(0, addr, len, flags, 1);
        mq.push_avail(0);
        mq.publish();
        assert_eq!(
            pop(&mut q, &mut c).unwrap(),
            Err(want),
            "{addr:#x} {len} {flags}"
        );
    }
    // Nested indirect.
    let (mem, mut mq, mut q) = setup(8, FEAT);
    mock::write_desc_at(&mem, 0x40000, 0x50000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    mq.write_desc(0, 0x40000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    mq.push_avail(0);
    mq.publish();
    assert_eq!(
        pop(&mut q, &mut c).unwrap(),
        Err(ChainError::NestedIndirect)
    );
}

#[test]
fn wrong_direction_order() {
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    let h = mq.add_chain(&[Buf::w(0x20000, 8), Buf::r(0x10000, 16)]);
    mq.push_avail(h);
    mq.publish();
    let mut c = Chain::new();
    assert_eq!(
        pop(&mut q, &mut c).unwrap(),
        Err(ChainError::ReadableAfterWritable)
    );
}

#[test]
fn buffers_outside_guest_memory_are_left_out() {
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    let mut c = Chain::new();
    for bad in [MEM as u64, MEM as u64 - 8, u64::MAX - 4, 0xdead_beef_0000] {
        let h = mq.add_chain(&[Buf::r(0x10000, 16), Buf::w(bad, 4096), Buf::w(0x30000, 1)]);
        mq.push_avail(h);
        mq.publish();
        pop(&mut q, &mut c).unwrap().unwrap();
        assert!(c.out_of_bounds);
        assert!(c.last_writable_ok, "status byte is still usable");
        assert_eq!(c.iovs.len(), 2, "the bad buffer is not there");
        // The status itself out of bounds: nothing to report through.
        let bad = if bad == MEM as u64 - 8 {
            MEM as u64
        } else {
            bad
        };
        let h = mq.add_chain(&[Buf::r(0x10000, 16), Buf::w(bad, 1)]);
        mq.push_avail(h);
        mq.publish();
        pop(&mut q, &mut c).unwrap().unwrap();
        assert!(c.out_of_bounds && !c.last_writable_ok);
    }
}

#[test]
fn absurd_lengths() {
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    let mut c = Chain::new();
    let h = mq.add_chain(&[Buf::r(0x10000, u32::MAX), Buf::w(0x30000, 2)]);
    mq.push_avail(h);
    mq.publish();
    assert_eq!(
        pop(&mut q, &mut c).unwrap(),
        Err(ChainError::LengthOverflow)
    );
    let h = mq.add_chain(&[Buf::r(0x10000, u32::MAX - 1), Buf::w(0x30000, 1)]);
    mq.push_avail(h);
    mq.publish();
    let r = pop(&mut q, &mut c).unwrap();
    assert!(
        r.is_ok() && c.out_of_bounds,
        "4 GiB buffer in 1 MiB of memory: left out"
    );
}

#[test]
fn avail_index_jump_and_used_scribble() {
    let (_mem, mut mq, q) = setup(8, FEAT);
    mq.force_avail_idx(9);
    assert_eq!(
        q.avail_pending(),
        Err(QueueError::AvailIndexJump {
            avail_idx: 9,
            next_avail: 0
        })
    );
    let (_mem, mut mq, mut q) = setup(8, FEAT);
    let h = mq.add_chain(&[Buf::w(0x30000, 1)]);
    mq.push_avail(h);
    mq.publish();
    let mut c = Chain::new();
    pop(&mut q, &mut c).unwrap().unwrap();
    mq.scribble_used_idx(0x5555);
    q.add_used(h, 1);
    q.publish_used();
    assert_eq!(mq.used_idx(), 1, "the device keeps its own used index");
}

#[test]
fn random_descriptor_tables_never_escape_memory() {
    // Garbage descriptor tables: the walk must end (ok or error) and every
    // vector it yields must lie inside guest memory.
    let (mem, mut mq, mut q) = setup(64, FEAT);
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut c = Chain::new();
    let lo = mem.host_range(0, 1).unwrap() as usize;
    for _ in 0..2000 {
        for i in 0..64u16 {
            let r = rnd();
            let addr = if r & 1 == 0 { r >> 44 } else { r };
            mq.write_desc(
                i,
                addr,
                (rnd() >> 48) as u32,
                (rnd() & 7) as u16,
                (rnd() & 127) as u16,
            );
        }
        mock::write_desc_at(
            &mem,
            0x40000,
            rnd() >> 44,
            (rnd() >> 50) as u32,
            (rnd() & 7) as u16,
            (rnd() & 7) as u16,
        );
        mq.push_avail((rnd() & 127) as u16);
        mq.publish();
        let _ = pop(&mut q, &mut c).unwrap();
        for v in &c.iovs {
            let p = v.as_libc().iov_base as usize;
            assert!(p >= lo && p + v.len() <= lo + MEM);
        }
    }
}

#[test]
fn polling_device_does_not_rewrite_kick_suppression_per_publication() {
    let size = 8u16;
    let (mem, mut mq, mut q) = setup(size, FEAT | VIRTIO_RING_F_EVENT_IDX);
    let avail_event = mq.config().used + 4 + 8 * size as u64;
    let read_event = || {
        let mut b = [0u8; 2];
        mem.read(avail_event, &mut b).unwrap();
        u16::from_le_bytes(b)
    };
    q.suppress_kicks();
    assert_eq!(mq.used_flags(), VIRTQ_USED_F_NO_NOTIFY);
    assert_eq!(read_event(), 0x8000);
    let mut c = Chain::new();
    let mut round = |mq: &mut MockQueue, q: &mut SplitQueue| {
        let h = mq.add_chain(&[Buf::w(0x30000, 1)]);
        mq.push_avail(h);
        let kick = mq.publish_needs_kick();
        pop(q, &mut c).unwrap().unwrap();
        q.add_used(h, 1);
        q.suppress_kicks();
        q.publish_used();
        assert_eq!(mq.pop_used(), Some((h, 1)));
        kick
    };
    // A mark in the field: publications leave it alone (no store, so the
    // line stays in the driver's cache) ...
    mem.write(avail_event, &0x7000u16.to_le_bytes()).unwrap();
    for _ in 0..16 {
        round(&mut mq, &mut q);
    }
    assert_eq!(
        read_event(),
        0x7000,
        "avail_event rewritten per publication"
    );
    // ... until kicks were enabled once, which makes the next suppression
    // write both fields again.
    assert!(!q.enable_kicks());
    assert_eq!(mq.used_flags(), 0);
    q.suppress_kicks();
    assert_eq!(mq.used_flags(), VIRTQ_USED_F_NO_NOTIFY);
    assert_eq!(read_event(), 16u16.wrapping_add(0x8000));
    // Over 2^16 + more chains the driver never has to kick: the field is
    // refreshed every 0x4000 chains, before the driver's index reaches it.
    for i in 0..0x1_2000u32 {
        assert!(!round(&mut mq, &mut q), "kick wanted at chain {i}");
    }
}
