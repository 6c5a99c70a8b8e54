//! What the tracker reads from a frame: the connection tuple, and for TCP
//! the fields window tracking needs; for ICMP errors the tuple of the
//! packet quoted inside (RFC 792, RFC 4443 §2.4). Bounds-checked, never
//! panics on any input (fuzzed).
