//! Arbitrary bytes through the OpenFlow 1.0 / Nicira decoder (`openflow::of10`): whatever
//! parses must re-emit to bytes that parse to the same message; the fixed 1.0 match, the
//! 1.0 action lists and NXM matches (with their OXM translations) never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::framing;
use openflow::of10::{nxm, Action10, Match10, Message10};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((msg, tail))) = framing::split(rest) {
        if let Ok((h, m)) = Message10::parse(msg) {
            let out = m.to_vec(h.xid).expect("a parsed message re-emits");
            assert_eq!(out.len(), m.buffer_len());
            let (h2, m2) = Message10::parse(&out).expect("re-emitted message parses");
            assert_eq!((h2.xid, m2), (h.xid, m));
        }
        rest = tail;
    }
    if let Ok(m) = Match10::parse(data) {
        let _ = m.to_oxm();
    }
    if let Ok(list) = Action10::parse_list(data) {
        let mut out = Vec::new();
        Action10::emit_list(&list, &mut out).expect("a parsed list re-emits");
        assert_eq!(Action10::parse_list(&out).expect("re-parses"), list);
    }
    if let Ok(fields) = nxm::parse(data, data.len()) {
        if let Ok(oxm) = nxm::list_to_oxm(&fields) {
            let _ = nxm::from_oxm(&oxm);
        }
    }
});
