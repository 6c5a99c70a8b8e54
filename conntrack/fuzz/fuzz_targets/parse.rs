//! Arbitrary frames at an arbitrary L3 offset: `packet::parse` never
//! panics, and what it accepts has its offsets inside the frame and
//! passes the checksum check without panicking either.

#![no_main]

use conntrack::checksum::verify;
use conntrack::packet::{parse, L4Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&l3, frame)) = data.split_first() else {
        return;
    };
    let l3 = usize::from(l3 % 32);
    if let Ok(p) = parse(frame, l3) {
        assert!(p.l3 == l3 && p.l3 < p.l4 && p.l4 <= p.end && p.end <= frame.len());
        if let L4Kind::IcmpError(e) = p.kind {
            assert!(p.l4 < e.inner_l3 && e.inner_l3 < e.inner_l4 && e.inner_l4 <= p.end);
            assert_eq!(p.tuple, e.inner.reverse());
        }
        assert_eq!(p.tuple.reverse().reverse(), p.tuple);
        let _ = verify(frame, &p);
    }
});
