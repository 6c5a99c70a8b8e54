//! Arbitrary bytes through every parser of the wire layer; parse -> emit -> parse must
//! give the same header back.
#![no_main]

use iscsi_pdu::{ahs, frame, pdu::ScsiResponse, text, DigestConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let d = DigestConfig {
        header: sel & 1 != 0,
        data: sel & 2 != 0,
    };
    let mut rest = bytes;
    while let Ok(Some((f, used))) = frame::parse(rest, d) {
        assert!(used > 0 && used <= rest.len());
        for a in ahs::iter(f.ahs) {
            let _ = a;
        }
        let _ = text::parse(f.data);
        let _ = ScsiResponse::sense(f.data);
        if let Ok(p) = f.pdu() {
            let mut out = Vec::new();
            frame::emit(&mut out, &p, f.ahs, f.data, d).unwrap();
            let (g, _) = frame::parse(&out, d).unwrap().unwrap();
            assert_eq!(g.pdu().unwrap(), p);
            assert_eq!(g.data, f.data);
        }
        rest = &rest[used..];
    }
});
