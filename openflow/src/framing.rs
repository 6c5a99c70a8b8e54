//! Message boundaries on a byte stream (spec section 6.1: messages follow each other
//! on the channel, each announcing its own length in the ofp_header).

use crate::field::header as field;
use crate::{Error, Result};

/// How many bytes the message at the front of `buf` occupies, once its header has
/// arrived: `Ok(None)` while fewer than 8 bytes are buffered; an error when the length
/// field is below the header size (the stream cannot be resynchronised then).
pub fn message_len(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < field::LEN {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    if len < field::LEN {
        return Err(Error::BadLength("ofp_header length below 8"));
    }
    Ok(Some(len))
}

/// How many more bytes must arrive before the first message in `buf` is complete
/// (0 when it is complete; at least 1 while the header is incomplete).
pub fn bytes_needed(buf: &[u8]) -> Result<usize> {
    Ok(match message_len(buf)? {
        None => field::LEN - buf.len(),
        Some(n) => n.saturating_sub(buf.len()),
    })
}

/// Splits the first complete message off `buf`: `Ok(Some((message, rest)))`, or
/// `Ok(None)` when more bytes are needed.
pub fn split(buf: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
    match message_len(buf)? {
        Some(n) if buf.len() >= n => Ok(Some(buf.split_at(n))),
        _ => Ok(None),
    }
}

/// An iterator over the complete messages of a buffer; stops at the first incomplete
/// one (see [`Messages::remainder`]) or yields one error and stops.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Messages<'a> {
    /// The bytes not yet yielded (an incomplete message, or empty).
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8]>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match split(self.rest) {
            Ok(Some((m, rest))) => {
                self.rest = rest;
                Some(Ok(m))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the complete messages at the front of `buf`.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages {
        rest: buf,
        failed: false,
    }
}

/// A receive buffer for a stream connection: push what the socket gave, pop whole
/// messages.
#[derive(Debug, Clone, Default)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 65536 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Pops the next complete message (header included). An error means the stream is
    /// corrupt (a length below 8) and the connection should be closed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>> {
        let pending = &self.buf[self.start..];
        match split(pending)? {
            Some((m, _)) => {
                let m = m.to_vec();
                self.start += m.len();
                Ok(Some(m))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_stream() {
        let mut s = vec![4u8, 2, 0, 10, 0, 0, 0, 1, 0xaa, 0xbb];
        s.extend_from_slice(&[4, 20, 0, 8, 0, 0, 0, 2]);
        s.extend_from_slice(&[4, 0, 0]);
        let all: Vec<_> = messages(&s).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap().len(), 10);
        assert_eq!(bytes_needed(&[4, 0, 0]).unwrap(), 5);
        assert_eq!(bytes_needed(&[4, 0, 0, 16, 0, 0, 0, 0]).unwrap(), 8);
        assert!(message_len(&[4, 0, 0, 4, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn framer_reassembles() {
        let mut f = Framer::new();
        f.push(&[4, 2, 0, 10, 0]);
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&[0, 0, 1, 0xaa, 0xbb, 4, 20, 0, 8]);
        assert_eq!(f.next_message().unwrap().unwrap().len(), 10);
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&[0, 0, 0, 2]);
        assert_eq!(f.next_message().unwrap().unwrap().len(), 8);
        assert_eq!(f.buffered(), 0);
    }
}
