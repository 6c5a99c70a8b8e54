//! Prints every message of a capture file (one hex message per line) as parsed by
//! this crate: `cargo run -p openflow --example dump_capture -- FILE.hex`.

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: dump_capture FILE.hex");
    for line in std::fs::read_to_string(path).expect("read").lines() {
        let b: Vec<u8> = (0..line.len() / 2)
            .filter_map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).ok())
            .collect();
        match openflow::Message::parse(&b) {
            Ok((h, m)) => println!("xid={:#x} {m:?}", h.xid),
            Err(e) => println!("error: {e}"),
        }
    }
}
