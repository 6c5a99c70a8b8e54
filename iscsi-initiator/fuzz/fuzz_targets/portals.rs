//! Portal lists and TargetAddress values (operator input and login-redirect
//! answers from a target): any bytes give a portal or an error, never a
//! panic, and a parsed portal parses again to itself.
#![no_main]

use iscsi_initiator::portals::{self, PortalSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = portals::parse_portal(s) {
        assert_eq!(portals::parse_portal(&p).as_deref(), Ok(p.as_str()));
    }
    if let Ok(list) = portals::parse_portal_list(s) {
        let mut set = PortalSet::new(list).expect("a parsed list is not empty");
        for (i, part) in s.split(';').enumerate() {
            if let Ok(to) = portals::parse_target_address(part) {
                let _ = set.redirected(&to, i % 2 == 0);
            } else {
                set.failed();
            }
            assert!(!set.address().is_empty());
        }
    }
    let _ = portals::parse_target_address(s);
});
