//! Request framing as SPDK speaks it: no framing at all. A connection
//! carries JSON values back to back (rpc.py sends one pretty-printed object
//! per request, several separated by newlines); a value ends where the JSON
//! grammar says. [`Decoder`] buffers bytes until a whole value is there.
//!
//! As in SPDK (`spdk_jsonrpc_parse_request`: "Can't recover from parse
//! error (no guaranteed resync point in streaming JSON)"), invalid JSON is
//! answered with a parse error and the connection is then closed.

use serde_json::Value;

/// Most bytes one request may take (a value still incomplete past this is
/// a parse error, so a peer cannot make the server buffer without bound).
pub const MAX_REQUEST: usize = 4 << 20;

/// What the next complete value is.
#[derive(Debug)]
pub enum Next {
    /// A whole JSON value.
    Value(Value),
    /// Not a whole value yet: read more bytes.
    Incomplete,
    /// Not JSON (or too long): answer a parse error, then close.
    Invalid,
}

/// Accumulates a connection's bytes and splits them into JSON values.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    broken: bool,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet consumed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next complete value off the front of the buffer.
    pub fn next_value(&mut self) -> Next {
        if self.broken {
            return Next::Invalid;
        }
        let start = self
            .buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.buf.len());
        self.buf.drain(..start);
        if self.buf.is_empty() {
            return Next::Incomplete;
        }
        let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        let r = match it.next() {
            Some(Ok(v)) => {
                let used = it.byte_offset();
                self.buf.drain(..used);
                return Next::Value(v);
            }
            Some(Err(e)) if e.is_eof() && self.buf.len() <= MAX_REQUEST => Next::Incomplete,
            None => Next::Incomplete,
            Some(Err(_)) => Next::Invalid,
        };
        if matches!(r, Next::Invalid) {
            self.broken = true;
            self.buf.clear();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(d: &mut Decoder) -> Vec<Value> {
        let mut out = Vec::new();
        while let Next::Value(v) = d.next_value() {
            out.push(v);
        }
        out
    }

    #[test]
    fn splits_back_to_back_values_across_reads() {
        let text = b"{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"a\", \"id\": 1\n}\n{\"jsonrpc\":\"2.0\",\"method\":\"b\",\"id\":2}";
        for cut in 0..text.len() {
            let mut d = Decoder::new();
            d.push(&text[..cut]);
            let mut got = values(&mut d);
            d.push(&text[cut..]);
            got.extend(values(&mut d));
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[1]["method"], "b");
        }
    }

    #[test]
    fn garbage_is_invalid_and_stays_so() {
        let mut d = Decoder::new();
        d.push(b"{\"a\": ]");
        assert!(matches!(d.next_value(), Next::Invalid));
        d.push(b"{}");
        assert!(matches!(d.next_value(), Next::Invalid));
    }

    #[test]
    fn a_value_growing_past_the_limit_is_invalid() {
        let mut d = Decoder::new();
        d.push(b"[\"");
        d.push(&vec![b'a'; MAX_REQUEST + 1]);
        assert!(matches!(d.next_value(), Next::Invalid));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut d = Decoder::new();
        d.push(&vec![b'['; 100_000]);
        d.push(&vec![b']'; 100_000]);
        assert!(matches!(d.next_value(), Next::Invalid));
    }
}
