//! A hostile guest: descriptor tables, available entries and receive
//! buffers drawn at random (addresses in, out of and straddling guest
//! memory, any length, any flag bits, any `next`, heads beyond the queue,
//! descriptors rewritten while the device works). The ring code must not
//! panic, must return every chain it consumes exactly once (VIRTIO 1.2
//! §2.7.8) and in the order the guest made them available (§2.7.9, which
//! VIRTIO_F_IN_ORDER makes a must), must never report more bytes written
//! than the frames it sent hold, and must leave the ring working for a
//! well-behaved chain after it (transmit: a frame after the hostile ones
//! comes out whole). The addresses drawn reach far past guest memory, so
//! a translation that skipped its bounds check would most likely fault.

use super::mock::{MockDriver, BASE, DATA, MEM};
use super::net::{dequeue, enqueue, Reader, RxSource, TxSink, Writer};
use super::split::{Segs, SplitRing};
use super::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

const HDR: u32 = 12;

/// xorshift64: the same runs every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A guest-physical address: mostly in the data area, sometimes at or past
/// the end of guest memory, straddling it, below it or anywhere.
fn addr(r: &mut Rng) -> u64 {
    let end = BASE + MEM as u64;
    match r.below(10) {
        0 => end - r.below(64),
        1 => end + r.below(1 << 20),
        2 => r.below(BASE),
        3 => r.next(),
        _ => DATA + r.below(end - DATA - 4096),
    }
}

/// A length: mostly a frame's, sometimes 0, tiny or huge.
fn len(r: &mut Rng) -> u32 {
    match r.below(8) {
        0 => 0,
        1 => r.below(HDR as u64) as u32,
        2 => r.next() as u32,
        _ => r.below(2048) as u32,
    }
}

/// One random descriptor: the NEXT, WRITE and INDIRECT bits each set at
/// random (plus, rarely, undefined bits), `next` anywhere.
fn scribble(d: &mut MockDriver, r: &mut Rng, at: u16) {
    let mut flags = 0;
    for f in [VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT] {
        if r.below(3) == 0 {
            flags |= f;
        }
    }
    if r.below(16) == 0 {
        flags |= r.next() as u16;
    }
    let next = if r.below(4) == 0 {
        r.next() as u16
    } else {
        r.below(u64::from(d.size)) as u16
    };
    d.set_desc(at, addr(r), len(r), flags, next);
}

/// Counts what it is given; reads every frame whole. Every other frame
/// offered in one piece ([`TxSink::take_plain`], `dequeue`'s fast path) is
/// taken that way.
struct CountSink(usize, usize);

impl TxSink for CountSink {
    fn take(&mut self, frame: &mut Reader<'_>, total: u32) -> bool {
        if self.0 == self.1 {
            return false;
        }
        assert!(total >= HDR, "a frame shorter than the header was taken");
        let mut v = vec![0u8; total as usize];
        assert_eq!(frame.read(&mut v), total as usize);
        self.0 += 1;
        true
    }
    fn take_plain(&mut self, p: *const u8, total: u32) -> Option<bool> {
        if self.0 % 2 == 1 {
            return None;
        }
        if self.0 == self.1 {
            return Some(false);
        }
        assert!(total >= HDR, "a frame shorter than the header was taken");
        // SAFETY: the caller's readable range of `total` bytes.
        let v = unsafe { std::slice::from_raw_parts(p, total as usize) }.to_vec();
        assert_eq!(v.len(), total as usize);
        self.0 += 1;
        Some(true)
    }
}

/// Frames of random lengths (header written by the source), every
/// other one also offered in one piece ([`RxSource::plain`]: the fast path
/// of `enqueue`); the bytes of either are 0xa5.
struct Frames(Vec<u32>, Vec<u8>);

impl RxSource for Frames {
    fn len(&self, i: usize) -> u32 {
        self.0[i]
    }
    fn plain(&self, i: usize) -> Option<*const u8> {
        i.is_multiple_of(2).then_some(self.1.as_ptr())
    }
    fn write(&mut self, i: usize, num_buffers: u16, out: &mut Writer<'_>) {
        let mut h = [0u8; HDR as usize];
        h[10..12].copy_from_slice(&num_buffers.to_le_bytes());
        out.write(&h);
        out.write(&vec![0xa5; self.0[i] as usize]);
    }
}

/// One queue under a hostile driver: `rounds` bursts, each after a random
/// number of random heads were published and some descriptors rewritten.
fn hostile_queue(seed: u64, size: u16, rx: bool, mergeable: bool, rounds: usize) {
    let mut r = Rng(seed | 1);
    let mut d = MockDriver::new(size);
    let indirect = r.below(2) == 0;
    let mut ring = d.ring(indirect, r.below(2) == 0);
    for i in 0..size {
        scribble(&mut d, &mut r, i);
    }
    let mut published = std::collections::VecDeque::new();
    let mut segs = Segs::default();
    for _ in 0..rounds {
        for _ in 0..r.below(u64::from(size) + 1) {
            if published.len() == usize::from(size) {
                break;
            }
            let head = if r.below(8) == 0 {
                r.next() as u16
            } else {
                r.below(u64::from(size)) as u16
            };
            d.publish(head);
            published.push_back(head);
        }
        for _ in 0..r.below(4) {
            let at = r.below(u64::from(size)) as u16;
            scribble(&mut d, &mut r, at);
        }
        let max = 1 + r.below(64) as usize;
        let (frames, sent_bytes) = if rx {
            let lens: Vec<u32> = (0..max).map(|_| r.below(3000) as u32).collect();
            let done = enqueue(
                &mut ring,
                &mut segs,
                HDR,
                mergeable,
                &mut Frames(lens.clone(), vec![0xa5; 3000]),
                max,
            );
            let bytes: u64 = lens[..done.frames]
                .iter()
                .map(|&l| u64::from(l + HDR))
                .sum();
            (done.frames, bytes)
        } else {
            let mut sink = CountSink(0, 1 + r.below(64) as usize);
            let done = dequeue(&mut ring, &mut segs, HDR, max, &mut sink);
            assert_eq!(
                done.frames, sink.0,
                "frames counted and frames taken differ"
            );
            (done.frames + done.errors as usize, 0)
        };
        // Every chain consumed comes back once, in the order published.
        let mut used = 0;
        let mut written = 0u64;
        while let Some((id, l)) = d.pop_used() {
            assert_eq!(Some(id), published.pop_front(), "used entry out of order");
            if rx {
                written += u64::from(l);
            } else {
                assert_eq!(l, 0, "a transmit chain reported bytes written");
            }
            used += 1;
        }
        if rx {
            assert!(used >= frames.min(1), "frames sent without a used entry");
            assert!(
                written <= sent_bytes,
                "{written} bytes reported written for frames of {sent_bytes}"
            );
            if !mergeable {
                assert_eq!(
                    used, frames,
                    "one chain per frame without mergeable buffers"
                );
            }
        } else {
            assert_eq!(used, frames, "chains consumed and used entries differ");
        }
        if ring.broken {
            return;
        }
    }
    if !rx {
        recovers(&mut d, &mut ring, &mut segs, published.len());
    }
}

/// Once the hostile chains still available are consumed, a well-formed
/// frame goes through whole.
fn recovers(d: &mut MockDriver, ring: &mut SplitRing, segs: &mut Segs, pending: usize) {
    let mut sink = CountSink(0, usize::MAX);
    let done = dequeue(ring, segs, HDR, pending, &mut sink);
    assert_eq!(done.frames + done.errors as usize, pending);
    while d.pop_used().is_some() {}
    let frame: Vec<u8> = (0..200u8).collect();
    d.write(DATA, &frame);
    d.set_desc(0, DATA, 200, 0, 0);
    d.publish(0);
    let mut got = Vec::new();
    let done = dequeue(ring, segs, HDR, 1, &mut KeepSink(&mut got));
    assert_eq!((done.frames, done.errors), (1, 0));
    assert_eq!(
        got, frame,
        "a good frame after the hostile ones came out changed"
    );
    assert_eq!(d.pop_used(), Some((0, 0)));
}

/// Keeps the one frame it takes.
struct KeepSink<'a>(&'a mut Vec<u8>);

impl TxSink for KeepSink<'_> {
    fn take(&mut self, frame: &mut Reader<'_>, total: u32) -> bool {
        self.0.resize(total as usize, 0);
        frame.read(self.0) == total as usize
    }
}

#[test]
fn random_transmit_chains_are_each_returned_once_in_order() {
    let seeds = 300;
    for seed in 0..seeds {
        for size in [8u16, 64, 256] {
            hostile_queue(seed * 7919 + u64::from(size), size, false, false, 12);
        }
    }
}

#[test]
fn random_receive_chains_never_report_more_than_was_sent() {
    let seeds = 300;
    for seed in 0..seeds {
        for size in [8u16, 64, 256] {
            for mergeable in [false, true] {
                hostile_queue(seed * 104_729 + u64::from(size), size, true, mergeable, 12);
            }
        }
    }
}
