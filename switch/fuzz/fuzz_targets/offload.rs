//! Arbitrary frames through the software offloads: header parsing,
//! checksum completion and TCP segmentation must never panic, and every
//! segment fits its headers plus one MSS of payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switch::offload::{complete_checksums, finish_segment, Headers, Segments};

fuzz_target!(|data: &[u8]| {
    let Some((&m, frame)) = data.split_first() else {
        return;
    };
    let Some(h) = Headers::parse(frame) else {
        return;
    };
    let mut copy = frame.to_vec();
    complete_checksums(&mut copy, &h);
    let mss = u16::from(m).max(1) * 8;
    let Some(segs) = Segments::new(&h, frame.len(), mss) else {
        return;
    };
    for i in 0..segs.count().min(64) {
        let r = segs.range(i);
        let mut out = frame[..h.len()].to_vec();
        out.extend_from_slice(&frame[h.len() + r.start..h.len() + r.end]);
        assert!(out.len() <= h.len() + usize::from(mss));
        finish_segment(&mut out, &h, &segs, i);
    }
});
