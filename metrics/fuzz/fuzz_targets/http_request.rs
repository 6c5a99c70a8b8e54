//! Any bytes as an HTTP request head: parsing and answering never panic,
//! and the answer is always a well-formed status line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    static REG: OnceLock<std::sync::Arc<metrics::Registry>> = OnceLock::new();
    let reg = REG.get_or_init(|| {
        let r = metrics::Registry::new();
        r.register(|m| m.counter("x_total", "X.", &[("l", "v\"\\\n")], 1));
        r
    });
    let mut rd = data;
    let deadline = Instant::now() + Duration::from_secs(1);
    let head = match metrics::http::read_head(&mut rd, deadline) {
        Ok(h) => h,
        Err(_) => data.to_vec(),
    };
    let resp = metrics::http::respond(&head, reg);
    assert!((200..=505).contains(&resp.status));
    assert!(resp.to_bytes().starts_with(b"HTTP/1.1 "));
});
