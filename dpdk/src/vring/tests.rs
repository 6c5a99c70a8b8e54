//! The ring code against the mock driver: chains, mergeable buffers,
//! malformed descriptors, index wrap, notification suppression.

use super::mock::{MockDriver, BASE, DATA, MEM};
use super::net::{dequeue, dequeue_counted, enqueue, Reader, RxSource, TxSink, Writer};
use super::split::{ChainError, Segs};
use super::{
    VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};

const HDR: u32 = 12;

/// Frames as byte vectors (header included).
#[derive(Default)]
struct VecSink(Vec<Vec<u8>>, usize);

impl TxSink for VecSink {
    fn take(&mut self, frame: &mut Reader<'_>, total: u32) -> bool {
        if self.0.len() == self.1 {
            return false;
        }
        let mut v = vec![0u8; total as usize];
        assert_eq!(frame.read(&mut v), total as usize);
        self.0.push(v);
        true
    }
}

/// [`VecSink`] that also takes frames in one piece
/// ([`TxSink::take_plain`]): `dequeue`'s fast path; counts those.
struct PlainSink(VecSink, usize);

impl TxSink for PlainSink {
    fn take(&mut self, frame: &mut Reader<'_>, total: u32) -> bool {
        self.0.take(frame, total)
    }
    fn take_plain(&mut self, p: *const u8, total: u32) -> Option<bool> {
        if self.0 .0.len() == self.0 .1 {
            return Some(false);
        }
        // SAFETY: the caller's readable range of `total` bytes.
        let v = unsafe { std::slice::from_raw_parts(p, total as usize) }.to_vec();
        self.0 .0.push(v);
        self.1 += 1;
        Some(true)
    }
}

fn sink(cap: usize) -> VecSink {
    VecSink(Vec::new(), cap)
}

/// Frames to send, without header.
struct VecSource(Vec<Vec<u8>>);

impl RxSource for VecSource {
    fn len(&self, i: usize) -> u32 {
        self.0[i].len() as u32
    }
    fn write(&mut self, i: usize, num_buffers: u16, out: &mut Writer<'_>) {
        let mut h = [0u8; 12];
        h[10..12].copy_from_slice(&num_buffers.to_le_bytes());
        out.write(&h);
        out.write(&self.0[i]);
    }
}

/// [`VecSource`] whose frames are also offered in one piece
/// ([`RxSource::plain`]): `enqueue`'s fast path.
struct PlainSource(VecSource, usize);

impl RxSource for PlainSource {
    fn len(&self, i: usize) -> u32 {
        self.0.len(i)
    }
    fn write(&mut self, i: usize, num_buffers: u16, out: &mut Writer<'_>) {
        self.0.write(i, num_buffers, out)
    }
    fn plain(&self, i: usize) -> Option<*const u8> {
        Some(self.0 .0[i].as_ptr())
    }
    fn sent_plain(&mut self, _i: usize) {
        self.1 += 1;
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

#[test]
fn tx_chain_across_descriptors_is_one_frame() {
    let mut d = MockDriver::new(256);
    let mut r = d.ring(false, false);
    let f = frame(HDR as usize + 60, 1);
    d.write(DATA, &f[..12]);
    d.write(DATA + 0x100, &f[12..40]);
    d.write(DATA + 0x200, &f[40..]);
    let h = d.add_chain(&[
        (DATA, 12, false),
        (DATA + 0x100, 28, false),
        (DATA + 0x200, 32, false),
    ]);
    d.publish(h);
    let mut s = sink(32);
    let done = dequeue(&mut r, &mut Segs::default(), HDR, 32, &mut s);
    assert_eq!((done.frames, done.errors), (1, 0));
    assert_eq!(s.0, vec![f]);
    assert_eq!(d.pop_used(), Some((h, 0)));
    assert_eq!(d.pop_used(), None);
    // Nothing more: nothing taken, nothing published.
    let done = dequeue(&mut r, &mut Segs::default(), HDR, 32, &mut s);
    assert_eq!(done.frames, 0);
}

#[test]
fn tx_stops_where_the_sink_is_full_and_resumes() {
    let mut d = MockDriver::new(8);
    let mut r = d.ring(false, false);
    for i in 0..3u64 {
        d.write(DATA + 0x100 * i, &frame(64, i as u8));
        let h = d.add_chain(&[(DATA + 0x100 * i, 64, false)]);
        d.publish(h);
    }
    let mut s = sink(2);
    assert_eq!(
        dequeue(&mut r, &mut Segs::default(), HDR, 32, &mut s).frames,
        2
    );
    assert_eq!(d.used_idx(), 2);
    let mut s = sink(8);
    assert_eq!(
        dequeue(&mut r, &mut Segs::default(), HDR, 32, &mut s).frames,
        1
    );
    assert_eq!(s.0, vec![frame(64, 2)]);
    assert_eq!(d.used_idx(), 3);
}

#[test]
fn indirect_tables_when_negotiated_only() {
    let mut d = MockDriver::new(16);
    let f = frame(100, 7);
    d.write(DATA, &f[..50]);
    d.write(DATA + 0x80, &f[50..]);
    let table = DATA + 0x1000;
    let h = d.add_indirect(table, &[(DATA, 50, false), (DATA + 0x80, 50, false)]);
    let mut r = d.ring(true, false);
    d.publish(h);
    let mut s = sink(8);
    assert_eq!(
        dequeue(&mut r, &mut Segs::default(), HDR, 8, &mut s).frames,
        1
    );
    assert_eq!(s.0, vec![f]);
    // Without the feature, the same chain is refused (§2.7.5.3.1).
    let mut r = d.ring(false, false);
    let h = d.add_indirect(table, &[(DATA, 50, false), (DATA + 0x80, 50, false)]);
    d.publish(h);
    let mut segs = Segs::default();
    assert_eq!(r.walk(h, false, &mut segs), Err(ChainError::BadIndirect));
}

/// Each malformed chain is returned with length 0, counted, and does not
/// stop the good chain behind it.
#[test]
fn malformed_tx_chains_are_dropped_and_counted() {
    let mut d = MockDriver::new(64);
    let mut r = d.ring(true, false);
    let end = BASE + MEM as u64;
    // Outside guest memory, and straddling its end.
    let mut heads = vec![d.add_chain(&[(end + 0x1000, 64, false)])];
    heads.push(d.add_chain(&[(end - 10, 64, false)]));
    // Device-writable where device-readable is due.
    heads.push(d.add_chain(&[(DATA, 64, true)]));
    // Shorter than the header.
    heads.push(d.add_chain(&[(DATA, 4, false)]));
    // A loop: the descriptor names itself.
    let lp = 40;
    d.set_desc(lp, DATA, 64, VIRTQ_DESC_F_NEXT, lp);
    heads.push(lp);
    // `next` beyond the table.
    d.set_desc(41, DATA, 64, VIRTQ_DESC_F_NEXT, 500);
    heads.push(41);
    // Indirect with NEXT, indirect of odd length, nested indirect.
    d.set_desc(
        42,
        DATA + 0x1000,
        32,
        VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT,
        0,
    );
    heads.push(42);
    d.set_desc(43, DATA + 0x1000, 17, VIRTQ_DESC_F_INDIRECT, 0);
    heads.push(43);
    d.write_desc_at(DATA + 0x2000, DATA + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    d.set_desc(44, DATA + 0x2000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    heads.push(44);
    // Lengths that overflow 32 bits.
    d.set_desc(45, DATA, u32::MAX, VIRTQ_DESC_F_NEXT, 46);
    d.set_desc(46, DATA, 16, 0, 0);
    heads.push(45);
    // A head beyond the queue.
    heads.push(1000);
    let good = frame(80, 3);
    d.write(DATA + 0x3000, &good);
    d.set_desc(50, DATA + 0x3000, 80, 0, 0);
    heads.push(50);
    for &h in &heads {
        d.publish(h);
    }
    let mut s = sink(64);
    let done = dequeue(&mut r, &mut Segs::default(), HDR, 64, &mut s);
    assert_eq!(done.frames, 1);
    assert_eq!(done.errors, heads.len() as u64 - 1);
    assert_eq!(r.errors, heads.len() as u64 - 1);
    assert_eq!(s.0, vec![good]);
    for &h in &heads {
        assert_eq!(d.pop_used(), Some((h, 0)));
    }
}

#[test]
fn walk_reports_each_malformation() {
    let mut d = MockDriver::new(16);
    let mut r = d.ring(false, false);
    let mut segs = Segs::default();
    d.set_desc(0, DATA, 64, VIRTQ_DESC_F_NEXT, 0);
    assert_eq!(r.walk(0, false, &mut segs), Err(ChainError::TooLong));
    d.set_desc(1, BASE + MEM as u64, 1, 0, 0);
    assert_eq!(r.walk(1, false, &mut segs), Err(ChainError::OutOfBounds));
    d.set_desc(2, DATA, 1, VIRTQ_DESC_F_WRITE, 0);
    assert_eq!(r.walk(2, false, &mut segs), Err(ChainError::WrongDirection));
    d.set_desc(3, DATA, 1, 0, 0);
    assert_eq!(r.walk(3, true, &mut segs), Err(ChainError::WrongDirection));
    assert_eq!(r.walk(16, false, &mut segs), Err(ChainError::BadIndex));
    d.set_desc(4, DATA, 70000, 0, 0);
    assert_eq!(r.walk(4, false, &mut segs), Err(ChainError::TooBig));
}

#[test]
fn rx_without_mergeable_buffers_takes_one_chain_per_frame() {
    let mut d = MockDriver::new(16);
    let mut r = d.ring(false, false);
    let h1 = d.add_chain(&[(DATA, 12, true), (DATA + 0x100, 1500, true)]);
    let h2 = d.add_chain(&[(DATA + 0x1000, 1600, true)]);
    d.publish(h1);
    d.publish(h2);
    let frames = vec![frame(60, 1), frame(1000, 2), frame(70, 3)];
    let mut src = VecSource(frames.clone());
    let done = enqueue(&mut r, &mut Segs::default(), HDR, false, &mut src, 3);
    // Two chains: the third frame waits.
    assert_eq!(done.frames, 2);
    assert_eq!(d.pop_used(), Some((h1, 72)));
    assert_eq!(d.pop_used(), Some((h2, 1012)));
    assert_eq!(d.read(DATA + 10, 2), vec![1, 0]);
    assert_eq!(d.read(DATA + 0x100, 60), frames[0]);
    assert_eq!(d.read(DATA + 0x100c, 1000), frames[1]);
    // A chain too short for a frame: it waits too (and is not consumed).
    let h3 = d.add_chain(&[(DATA + 0x2000, 40, true)]);
    d.publish(h3);
    let mut src = VecSource(vec![frame(100, 4)]);
    assert_eq!(
        enqueue(&mut r, &mut Segs::default(), HDR, false, &mut src, 1).frames,
        0
    );
    assert_eq!(d.pop_used(), None);
    let mut src = VecSource(vec![frame(20, 5)]);
    assert_eq!(
        enqueue(&mut r, &mut Segs::default(), HDR, false, &mut src, 1).frames,
        1
    );
    assert_eq!(d.pop_used(), Some((h3, 32)));
}

#[test]
fn rx_mergeable_buffers_spread_a_frame_and_count_them() {
    let mut d = MockDriver::new(16);
    let mut r = d.ring(false, false);
    let heads: Vec<u16> = (0..4u64)
        .map(|i| d.add_chain(&[(DATA + 0x100 * i, 32, true)]))
        .collect();
    for &h in &heads {
        d.publish(h);
    }
    let f = frame(70, 9);
    let mut src = VecSource(vec![f.clone(), frame(40, 1)]);
    let done = enqueue(&mut r, &mut Segs::default(), HDR, true, &mut src, 2);
    // 82 bytes over three 32-byte buffers; the second frame (52) does not
    // fit the one left and waits, without consuming it.
    assert_eq!(done.frames, 1);
    assert_eq!(d.pop_used(), Some((heads[0], 32)));
    assert_eq!(d.pop_used(), Some((heads[1], 32)));
    assert_eq!(d.pop_used(), Some((heads[2], 18)));
    assert_eq!(d.pop_used(), None);
    // num_buffers (§5.1.6.4) = 3.
    assert_eq!(d.read(DATA + 10, 2), vec![3, 0]);
    let mut got = d.read(DATA + 12, 20);
    got.extend(d.read(DATA + 0x100, 32));
    got.extend(d.read(DATA + 0x200, 18));
    assert_eq!(got, f);
    let h = d.add_chain(&[(DATA + 0x400, 64, true)]);
    d.publish(h);
    let mut src = VecSource(vec![frame(40, 1)]);
    assert_eq!(
        enqueue(&mut r, &mut Segs::default(), HDR, true, &mut src, 1).frames,
        1
    );
    assert_eq!(d.pop_used(), Some((heads[3], 32)));
    assert_eq!(d.pop_used(), Some((h, 20)));
}

#[test]
fn malformed_rx_chain_is_returned_empty() {
    let mut d = MockDriver::new(16);
    let mut r = d.ring(false, false);
    let bad = d.add_chain(&[(DATA, 64, false)]);
    let good = d.add_chain(&[(DATA + 0x100, 128, true)]);
    d.publish(bad);
    d.publish(good);
    let mut src = VecSource(vec![frame(60, 1), frame(60, 2)]);
    let done = enqueue(&mut r, &mut Segs::default(), HDR, true, &mut src, 2);
    // The first frame met the bad chain and was consumed undelivered; the
    // second went into the good chain.
    assert_eq!((done.frames, done.errors), (2, 1));
    assert_eq!(d.pop_used(), Some((bad, 0)));
    assert_eq!(d.pop_used(), Some((good, 72)));
    assert_eq!(d.read(DATA + 0x100 + 12, 60), frame(60, 2));
}

#[test]
fn indices_wrap_at_65535() {
    let mut d = MockDriver::new(4);
    d.start_at(65534);
    let mut r = d.ring(false, false);
    for round in 0..3u8 {
        let heads: Vec<u16> = (0..3u64)
            .map(|i| {
                d.write(DATA + 0x100 * i, &frame(64, round));
                d.add_chain(&[(DATA + 0x100 * i, 64, false)])
            })
            .collect();
        for &h in &heads {
            d.publish(h);
        }
        let mut s = sink(8);
        assert_eq!(
            dequeue(&mut r, &mut Segs::default(), HDR, 8, &mut s).frames,
            3
        );
        for &h in &heads {
            assert_eq!(d.pop_used(), Some((h, 0)));
        }
    }
    assert_eq!(r.last_avail(), 65534u16.wrapping_add(9));
    assert_eq!(d.used_idx(), 7);
}

#[test]
fn an_available_index_jump_breaks_the_ring() {
    let mut d = MockDriver::new(8);
    let mut r = d.ring(false, false);
    d.set_avail_idx(9);
    let mut s = sink(8);
    assert_eq!(
        dequeue(&mut r, &mut Segs::default(), HDR, 8, &mut s).frames,
        0
    );
    assert!(r.broken);
    assert_eq!(d.used_idx(), 0);
}

#[test]
fn notifications_follow_no_interrupt_flag() {
    let mut d = MockDriver::new(8);
    let mut r = d.ring(false, false);
    let send = |d: &mut MockDriver, r: &mut super::split::SplitRing| {
        d.write(DATA, &frame(64, 0));
        let h = d.add_chain(&[(DATA, 64, false)]);
        d.publish(h);
        let done = dequeue(r, &mut Segs::default(), HDR, 8, &mut sink(8));
        assert_eq!(done.frames, 1);
        done.notify
    };
    assert!(send(&mut d, &mut r));
    d.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert!(!send(&mut d, &mut r));
    d.set_avail_flags(0);
    assert!(send(&mut d, &mut r));
}

#[test]
fn notifications_follow_used_event() {
    let mut d = MockDriver::new(8);
    let mut r = d.ring(false, true);
    let send = |d: &mut MockDriver, r: &mut super::split::SplitRing, n: u64| {
        for i in 0..n {
            d.write(DATA + 0x100 * i, &frame(64, 0));
            let h = d.add_chain(&[(DATA + 0x100 * i, 64, false)]);
            d.publish(h);
        }
        let done = dequeue(r, &mut Segs::default(), HDR, 8, &mut sink(8));
        assert_eq!(done.frames, n as usize);
        while d.pop_used().is_some() {}
        done.notify
    };
    // The first publication always notifies (nothing signalled yet).
    assert!(send(&mut d, &mut r, 1));
    // used_event 5: the driver wants to hear once used idx passes 5
    // (§2.7.7.2): 1 -> 3 does not, 3 -> 6 does, 6 -> 7 does not.
    d.set_used_event(5);
    assert!(!send(&mut d, &mut r, 2));
    assert!(send(&mut d, &mut r, 3));
    assert!(!send(&mut d, &mut r, 1));
    // The flag is ignored under event index.
    d.set_used_event(7);
    d.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert!(send(&mut d, &mut r, 1));
}

/// More used entries in one burst than the shadow holds: all of them
/// reach the ring, in order, under one published index.
#[test]
fn a_burst_longer_than_the_shadow_returns_every_chain() {
    let mut d = MockDriver::new(256);
    let mut r = d.ring(false, false);
    let n = super::split::SHADOW * 2 + 5;
    let mut heads = Vec::new();
    for i in 0..n as u64 {
        d.write(DATA + 0x40 * i, &frame(HDR as usize + 20, i as u8));
        let h = d.add_chain(&[(DATA + 0x40 * i, HDR + 20, false)]);
        d.publish(h);
        heads.push(h);
    }
    let mut s = sink(n);
    let done = dequeue(&mut r, &mut Segs::default(), HDR, n, &mut s);
    assert_eq!(done.frames, n);
    assert_eq!(d.used_idx(), n as u16);
    for (i, &h) in heads.iter().enumerate() {
        assert_eq!(d.pop_used(), Some((h, 0)));
        assert_eq!(s.0[i], frame(HDR as usize + 20, i as u8));
    }
    assert_eq!(d.pop_used(), None);
}

/// The header without offloads reads as if written whole, whatever the
/// buffer held before (the bytes it already had right are left alone),
/// also when it does not fit the first buffer of the chain.
#[test]
fn plain_header_is_written_whatever_the_buffer_held() {
    let mut d = MockDriver::new(16);
    let mut r = d.ring(false, false);
    let mut want = [0u8; 12];
    want[10..12].copy_from_slice(&3u16.to_le_bytes());
    for (held, len) in [([0xa5u8; 16], 12usize), ([0u8; 16], 12), ([0x5a; 16], 10)] {
        d.write(DATA, &held);
        let h = d.add_chain(&[(DATA, 64, true)]);
        let mut segs = Segs::default();
        r.walk(h, true, &mut segs).unwrap();
        let mut w = Writer::new(&segs);
        w.write_plain_hdr(len, 3);
        w.write(&[0xee]);
        assert_eq!(w.written as usize, len + 1);
        assert_eq!(d.read(DATA, len), want[..len].to_vec());
        assert_eq!(d.read(DATA + len as u64, 1), vec![0xee]);
    }
    // Split over a first buffer of 8 bytes and the next one.
    d.write(DATA, &[0xa5; 16]);
    d.write(DATA + 0x100, &[0xa5; 16]);
    let h = d.add_chain(&[(DATA, 8, true), (DATA + 0x100, 64, true)]);
    let mut segs = Segs::default();
    r.walk(h, true, &mut segs).unwrap();
    let mut w = Writer::new(&segs);
    w.write_plain_hdr(12, 3);
    w.write(&[0xee]);
    assert_eq!(d.read(DATA, 8), want[..8].to_vec());
    assert_eq!(d.read(DATA + 0x100, 5), [&want[8..], &[0xee][..]].concat());
}

#[test]
fn copy_bytes_copies_exactly_the_range() {
    let src: Vec<u8> = (0..=255u8).collect();
    for n in 0..=160 {
        let mut dst = vec![0xeeu8; 200];
        // SAFETY: 3 + 160 <= 256 bytes read, 5 + 160 <= 200 written, two
        // vectors.
        unsafe { super::copy::copy_bytes(src.as_ptr().add(3), dst.as_mut_ptr().add(5), n) };
        assert_eq!(&dst[5..5 + n], &src[3..3 + n], "n {n}");
        assert!(
            dst[..5].iter().chain(&dst[5 + n..]).all(|&b| b == 0xee),
            "n {n}"
        );
    }
}

/// Long pieces (the AVX2 loop from `copy::LONG` bytes on, `memcpy` below
/// it): every length around the loop's 128-byte turns and its threshold,
/// at offsets that align neither side, copy exactly their range.
#[test]
fn copy_long_copies_exactly_the_range() {
    use super::copy::LONG;
    let src: Vec<u8> = (0..LONG * 4).map(|i| (i * 7 + i / 251) as u8).collect();
    let lens = (LONG - 130..LONG + 260).chain([65, 127, 2048, 2049, 4000]);
    for n in lens {
        let mut dst = vec![0xeeu8; LONG * 4 + 16];
        // SAFETY: 12 + n <= 4 * LONG bytes read, 5 + n + 11 written, two
        // vectors.
        unsafe { super::copy::copy_long(src.as_ptr().add(12), dst.as_mut_ptr().add(5), n) };
        assert_eq!(&dst[5..5 + n], &src[12..12 + n], "n {n}");
        assert!(
            dst[..5].iter().chain(&dst[5 + n..]).all(|&b| b == 0xee),
            "n {n}"
        );
    }
}

/// The same receive bursts through the general path and through the fast
/// path (frames in one piece; with AVX2 also its 32-byte copies): the
/// same guest bytes, used entries and frame counts, for buffers that fit
/// the frame, buffers too short for it (mergeable: spread; otherwise the
/// frame waits), chains of two descriptors, and a malformed chain.
#[test]
fn rx_fast_path_writes_what_the_general_path_writes() {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Way {
        General,
        Plain,
        Avx2,
    }
    let mut ways = vec![Way::General, Way::Plain];
    if std::arch::is_x86_feature_detected!("avx2") {
        ways.push(Way::Avx2);
    }
    let lens = [
        0usize, 1, 15, 16, 17, 31, 32, 33, 52, 60, 63, 64, 65, 100, 1500,
    ];
    for mergeable in [false, true] {
        let mut results = Vec::new();
        for &way in &ways {
            let mut d = MockDriver::new(64);
            // Stale bytes where headers go: the fast path must clear them.
            for i in 0..64u64 {
                d.write(DATA + 0x800 * i, &[0x5a; 16]);
            }
            let mut r = d.ring(false, false);
            let mut heads = Vec::new();
            for i in 0..lens.len() as u64 {
                let at = DATA + 0x800 * i;
                let h = match i % 5 {
                    // Too short for most frames.
                    3 => d.add_chain(&[(at, 40, true)]),
                    // Two descriptors.
                    4 => d.add_chain(&[(at, 20, true), (at + 0x400, 1600, true)]),
                    _ => d.add_chain(&[(at, 2048, true)]),
                };
                heads.push(h);
                d.publish(h);
            }
            let bad = d.add_chain(&[(DATA + 0x800 * 40, 2048, false)]);
            d.publish(bad);
            for i in 0..8u64 {
                let h = d.add_chain(&[(DATA + 0x800 * (41 + i), 2048, true)]);
                d.publish(h);
            }
            let frames: Vec<Vec<u8>> = lens.iter().map(|&l| frame(l, l as u8)).collect();
            let mut segs = Segs::default();
            let mut sent = Vec::new();
            let mut fast = 0;
            let mut at = 0;
            while at < frames.len() {
                let batch = frames[at..].to_vec();
                let n = batch.len();
                let done = match way {
                    Way::General => {
                        enqueue(&mut r, &mut segs, HDR, mergeable, &mut VecSource(batch), n)
                    }
                    Way::Plain => {
                        let mut src = PlainSource(VecSource(batch), 0);
                        let done = enqueue(&mut r, &mut segs, HDR, mergeable, &mut src, n);
                        fast += src.1;
                        done
                    }
                    Way::Avx2 => {
                        let mut src = PlainSource(VecSource(batch), 0);
                        // SAFETY: AVX2 detected above.
                        let done = unsafe {
                            super::net::enqueue_avx2(&mut r, &mut segs, HDR, mergeable, &mut src, n)
                        };
                        fast += src.1;
                        done
                    }
                };
                sent.push((done.frames, done.errors));
                if done.frames == 0 {
                    // A frame waits for a longer chain: drop it from the
                    // source, as the switch would retry it later.
                    at += 1;
                } else {
                    at += done.frames;
                }
            }
            let mut used = Vec::new();
            while let Some(u) = d.pop_used() {
                used.push(u);
            }
            let bytes = d.read(DATA, 0x800 * 50);
            if way != Way::General {
                assert!(fast > 0, "{way:?}: the fast path never ran");
            }
            results.push((way, sent, used, bytes));
        }
        let (_, s0, u0, b0) = &results[0];
        for (way, s, u, b) in &results[1..] {
            assert_eq!(s, s0, "{way:?} mergeable {mergeable}: frames per burst");
            assert_eq!(u, u0, "{way:?} mergeable {mergeable}: used entries");
            assert!(b == b0, "{way:?} mergeable {mergeable}: guest bytes differ");
        }
    }
}

#[test]
fn copy_frame_wide_copies_exactly_the_range() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return;
    }
    let src: Vec<u8> = (0..=255u8).collect();
    for n in 0..=160 {
        let mut dst = vec![0xeeu8; 200];
        // SAFETY: as in `copy_bytes_copies_exactly_the_range`; AVX2 is
        // there.
        unsafe { super::copy::copy_frame::<true>(src.as_ptr().add(3), dst.as_mut_ptr().add(5), n) };
        assert_eq!(&dst[5..5 + n], &src[3..3 + n], "n {n}");
        assert!(
            dst[..5].iter().chain(&dst[5 + n..]).all(|&b| b == 0xee),
            "n {n}"
        );
    }
}

/// The same transmit bursts through the general path and the fast path
/// (one-buffer chains taken in one piece): the same frames, used entries
/// and counts, for one-buffer chains, a chain of three, a chain shorter
/// than the header, a device-writable one and a sink that fills up.
#[test]
fn tx_fast_path_takes_what_the_general_path_takes() {
    let mut results = Vec::new();
    for plain in [false, true] {
        let mut d = MockDriver::new(32);
        let mut r = d.ring(false, false);
        let mut segs = Segs::default();
        for i in 0..12u64 {
            let at = DATA + 0x800 * i;
            let f = frame(HDR as usize + 10 * i as usize, i as u8);
            d.write(at, &f);
            let h = match i {
                3 => d.add_chain(&[(at, 12, false), (at + 12, 5, false), (at + 17, 25, false)]),
                5 => d.add_chain(&[(at, HDR - 1, false)]),
                7 => d.add_chain(&[(at, f.len() as u32, true)]),
                _ => d.add_chain(&[(at, f.len() as u32, false)]),
            };
            d.publish(h);
        }
        let mut out = Vec::new();
        let mut fast = 0;
        for cap in [4usize, 32] {
            let n = r.avail_count();
            if plain {
                let mut s = PlainSink(sink(cap), 0);
                let done = dequeue_counted(&mut r, &mut segs, HDR, n, &mut s);
                fast += s.1;
                out.push((done.frames, done.errors, s.0 .0));
            } else {
                let mut s = sink(cap);
                let done = dequeue_counted(&mut r, &mut segs, HDR, n, &mut s);
                out.push((done.frames, done.errors, s.0));
            }
        }
        let mut used = Vec::new();
        while let Some(u) = d.pop_used() {
            used.push(u);
        }
        if plain {
            assert!(fast > 0, "the fast path never ran");
        }
        results.push((out, used));
    }
    assert_eq!(results[0], results[1]);
}
