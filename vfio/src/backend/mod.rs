//! Block backends behind one asynchronous trait.
//!
//! The device hands requests to a backend in batches ([`Backend::submit`] for
//! each, then [`Backend::commit`] once per batch) and later collects
//! completions with [`Backend::poll`], in any order. [`null`] and [`mem`]
//! finish a request inside the call: they are [`Backend::synchronous`], and
//! the device hands them each request through [`Backend::execute`] and
//! completes it in the same poll step (through `submit` they report it at
//! the next `poll`);
//! [`mod@file`] queues reads, writes and flushes on io_uring, sends the batch
//! in `commit` and reports completions as the kernel finishes them, out of
//! order, which is also how an iSCSI backend or a cache will behave.
//!
//! Buffer lifetime: the [`IoVec`]s of a request stay valid until its
//! completion has been returned by `poll` (see [`crate::iovec`]).

pub mod file;
pub mod lease;
pub mod mem;
pub mod null;

use crate::iovec::IoVec;

/// What a request does. Offsets and lengths are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Read `len` bytes at `offset` into the vectors.
    Read,
    /// Write the vectors' `len` bytes at `offset`.
    Write,
    /// Make every completed write durable.
    Flush,
    /// The range may be deallocated; reads of it return unspecified data.
    Discard,
    /// The range must read back as zeroes; `unmap` allows deallocating it.
    WriteZeroes {
        /// The driver allows deallocation.
        unmap: bool,
    },
}

/// One request handed to a backend.
#[derive(Debug, Clone, Copy)]
pub struct IoRequest<'a> {
    /// Opaque tag, returned in the completion.
    pub id: u64,
    /// Operation.
    pub op: IoOp,
    /// Byte offset on the device.
    pub offset: u64,
    /// Byte count (equals the vectors' total for reads and writes).
    pub len: u64,
    /// Guest buffers (reads and writes only).
    pub iovs: &'a [IoVec],
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStatus {
    /// Done.
    Ok,
    /// Failed (I/O error, out of range).
    IoErr,
    /// The backend does not do this operation.
    Unsupported,
}

/// A finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoCompletion {
    /// The request's tag.
    pub id: u64,
    /// Result.
    pub status: IoStatus,
}

/// Why `submit` refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// Too many requests in flight: retry after some completions.
    Busy,
}

/// What a backend offers; the device derives its config space from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// Capacity in bytes (a multiple of 512).
    pub capacity: u64,
    /// Writes are refused.
    pub read_only: bool,
    /// Has a volatile write cache that `Flush` empties.
    pub flush: bool,
    /// Supports `Discard`.
    pub discard: bool,
    /// Supports `WriteZeroes`.
    pub write_zeroes: bool,
    /// Requests it accepts in flight before `submit` says `Busy`.
    pub max_inflight: usize,
}

/// A block backend. One poller thread drives it; it need not be `Sync`.
pub trait Backend: Send {
    /// Geometry and capabilities.
    fn info(&self) -> BackendInfo;
    /// Starts one request of the current batch.
    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError>;
    /// Ends the current batch: the backend may now send it (no-op for
    /// synchronous backends).
    fn commit(&mut self) {}
    /// Whether every request finishes inside the call that starts it (the
    /// null and memory backends): the device then hands it to
    /// [`execute`](Backend::execute) and writes its completion back in the
    /// same poll step, with no trip through `poll` (a queue push, a virtual
    /// call, a copy and the lookup of the request by its tag). Read once,
    /// when a device takes the backend. Default: false.
    fn synchronous(&self) -> bool {
        false
    }
    /// For a [`synchronous`](Backend::synchronous) backend: does `req` now
    /// and returns how it ended; nothing of it is left for `poll`, and it
    /// never counts as in flight. Never refused (a synchronous backend has
    /// no queue to fill). Default (for backends that are not synchronous,
    /// which are never asked): `Unsupported`.
    fn execute(&mut self, req: &IoRequest<'_>) -> IoStatus {
        let _ = req;
        IoStatus::Unsupported
    }
    /// Appends finished requests to `out` (up to its spare capacity, so the
    /// caller's preallocated vector never grows) and returns how many.
    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize;
    /// Requests submitted and not yet returned by `poll`.
    fn inflight(&self) -> usize;
    /// A file descriptor that turns readable when `poll` has work (a network
    /// backend's socket), for pollers that block when idle
    /// ([`PollMode::Wait`](crate::poller::PollMode::Wait)); `None` (the
    /// default) when there is none or while `poll` would not consume it (a
    /// level-triggered fd nobody reads would wake the poller in a loop).
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// Adds the backend's own counters (a cache's hits, an iSCSI session's
    /// state) to a Prometheus scrape, each sample with `labels` (the
    /// device). Called at scrape time under the device lock, never on the
    /// I/O path; a backend that wraps another reports the inner one too.
    /// Default: nothing.
    fn metrics(&self, m: &mut metrics::MetricSet, labels: &[(&str, &str)]) {
        let _ = (m, labels);
    }
    /// Changes the capacity to `bytes` (a nonzero multiple of 512) at the
    /// operator's request (online resize): a file is truncated or grown, a
    /// RAM disk grows or shrinks. Returns the new capacity. Called with no
    /// request in flight on the range that goes away (the device holds its
    /// poller off meanwhile). Default: refused (the capacity of an iSCSI LU
    /// is changed on the target, and reported by [`Backend::capacity_change`]).
    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        let _ = bytes;
        Err("this backend cannot be resized from here".into())
    }
    /// The capacity-change hook: a capacity the backend changed to by
    /// itself since the last call (an iSCSI LU resized on the target, seen
    /// by READ CAPACITY after a UNIT ATTENTION), `None` (the default) if
    /// none. [`crate::blk::BlkDevice::poll`] asks once per poll step; the
    /// device then updates `capacity` in its config space and sends the
    /// driver a config-change notification.
    fn capacity_change(&mut self) -> Option<u64> {
        None
    }
}

/// Checks an online-resize target: a nonzero multiple of 512.
pub fn check_resize(bytes: u64) -> Result<(), String> {
    if bytes == 0 || !bytes.is_multiple_of(512) {
        return Err(format!(
            "new size {bytes}: must be a nonzero multiple of 512 bytes"
        ));
    }
    Ok(())
}

/// Completions of a synchronous backend waiting for `poll`: a preallocated
/// FIFO shared by the backends in this module. A plain vector, not a
/// `VecDeque`: `poll` almost always takes everything (one copy and a
/// clear; a deque's drain moved element by element), and a partial take
/// shifts the rest down, keeping the order.
#[derive(Debug)]
pub(crate) struct DoneQueue {
    done: Vec<IoCompletion>,
    cap: usize,
}

impl DoneQueue {
    pub(crate) fn new(cap: usize) -> Self {
        DoneQueue {
            done: Vec::with_capacity(cap),
            cap,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, c: IoCompletion) -> Result<(), SubmitError> {
        if self.done.len() >= self.cap {
            return Err(SubmitError::Busy);
        }
        self.done.push(c);
        Ok(())
    }

    pub(crate) fn cap_hint(&self) -> usize {
        self.cap
    }

    #[inline]
    pub(crate) fn drain_into(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        let n = (out.capacity() - out.len()).min(self.done.len());
        if n == 0 {
            return 0;
        }
        if n == self.done.len() {
            out.extend_from_slice(&self.done);
            self.done.clear();
        } else {
            out.extend_from_slice(&self.done[..n]);
            self.done.drain(..n);
        }
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.done.len()
    }
}

/// Checks a request against the capacity; `None` if it runs past the end.
pub(crate) fn in_range(req: &IoRequest<'_>, capacity: u64) -> bool {
    req.offset
        .checked_add(req.len)
        .is_some_and(|end| end <= capacity)
}

/// Parses a `--backend` argument: `file:PATH`, `null:SIZE`, `mem:SIZE`
/// (SIZE with an optional K/M/G/T suffix, binary).
pub fn from_spec(spec: &str, max_inflight: usize) -> Result<Box<dyn Backend>, String> {
    let (kind, arg) = spec
        .split_once(':')
        .ok_or_else(|| format!("backend `{spec}`: expected KIND:ARG"))?;
    match kind {
        "file" => Ok(Box::new(
            file::FileBackend::open(arg, max_inflight).map_err(|e| format!("{arg}: {e}"))?,
        )),
        "null" => Ok(Box::new(null::NullBackend::new(
            parse_size(arg)?,
            max_inflight,
        ))),
        "mem" => Ok(Box::new(mem::MemBackend::new(
            parse_size(arg)?,
            max_inflight,
        )?)),
        _ => Err(format!("backend `{spec}`: kind must be file, null or mem")),
    }
}

/// Parses `4096`, `64K`, `512M`, `1G`, `2T`; the result must be a nonzero
/// multiple of 512.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        Some(b'T' | b't') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("size `{s}`: not a number"))?;
    let v = n
        .checked_mul(mul)
        .ok_or_else(|| format!("size `{s}`: too large"))?;
    if v == 0 || v % 512 != 0 {
        return Err(format!("size `{s}`: must be a nonzero multiple of 512"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("100").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert!(from_spec("disk", 8).is_err());
        assert!(from_spec("tape:1G", 8).is_err());
        assert!(from_spec("file:/nonexistent/dir/x", 8).is_err());
        assert_eq!(from_spec("null:1G", 8).unwrap().info().capacity, 1 << 30);
    }
}
