//! Key extraction on arbitrary bytes: never panics, never reads past the
//! frame, and offsets it reports lie inside the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switch::extract::extract;
use switch::key::FlowKey;

fuzz_target!(|data: &[u8]| {
    let mut k = FlowKey::ZERO;
    let m = extract(data, 7, &mut k);
    assert_eq!(k.in_port(), 7);
    assert!(usize::from(m.l3) <= data.len());
    assert!(usize::from(m.l4) <= data.len());
});
