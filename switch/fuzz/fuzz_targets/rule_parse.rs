//! The rule parser on arbitrary text: never panics, and whatever it accepts
//! prints in a canonical form that parses back to the same rule.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switch::rule::{parse_match, RuleSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = s.parse::<RuleSpec>() {
        let shown = r.to_string();
        let again: RuleSpec = shown.parse().expect("canonical form must parse");
        assert_eq!(again, r);
    }
    let _ = parse_match(s);
});
