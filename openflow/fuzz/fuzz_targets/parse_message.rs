//! Arbitrary bytes through the stream framing and the message decoder, and through the
//! TLV parsers directly; whatever parses must re-emit to bytes that parse to the same
//! message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::action::Action;
use openflow::group::Bucket;
use openflow::instruction::Instruction;
use openflow::nicira::NxAction;
use openflow::{framing, Match, Message, OxmField};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((msg, tail))) = framing::split(rest) {
        assert!(msg.len() >= 8 && msg.len() <= rest.len());
        if let Ok((h, m)) = Message::parse(msg) {
            let out = m.to_vec(h.xid).expect("a parsed message re-emits");
            assert_eq!(out.len(), m.buffer_len());
            let (h2, m2) = Message::parse(&out).expect("re-emitted message parses");
            assert_eq!((h2.xid, m2), (h.xid, m));
        }
        rest = tail;
    }
    let _ = Match::parse(data);
    if let Ok(list) = Action::parse_list(data) {
        // The semantic checks a switch runs on ct / nat never panic either.
        for a in &list {
            if let Action::Nicira(NxAction::Ct(c)) = a {
                let _ = c.check();
            }
            if let Action::Nicira(NxAction::Nat(n)) = a {
                let _ = n.check();
            }
        }
    }
    let _ = Instruction::parse_list(data);
    let _ = OxmField::parse(data);
    let _ = Bucket::parse_list(data);
});
