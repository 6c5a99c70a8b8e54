//! The null backend: every request succeeds at once, reads return whatever
//! the buffers held, writes are dropped. Measures the device's own cost.

use super::{
    in_range, Backend, BackendInfo, DoneQueue, IoCompletion, IoRequest, IoStatus, SubmitError,
};

/// A backend that stores nothing.
#[derive(Debug)]
pub struct NullBackend {
    capacity: u64,
    done: DoneQueue,
}

impl NullBackend {
    /// A null device of `capacity` bytes.
    pub fn new(capacity: u64, max_inflight: usize) -> Self {
        NullBackend {
            capacity,
            done: DoneQueue::new(max_inflight),
        }
    }
}

impl Backend for NullBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            capacity: self.capacity,
            read_only: false,
            flush: true,
            discard: true,
            write_zeroes: true,
            max_inflight: self.done.cap_hint(),
        }
    }

    #[inline]
    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        let status = self.execute(req);
        self.done.push(IoCompletion { id: req.id, status })
    }

    fn synchronous(&self) -> bool {
        true
    }

    #[inline]
    fn execute(&mut self, req: &IoRequest<'_>) -> IoStatus {
        if in_range(req, self.capacity) {
            IoStatus::Ok
        } else {
            IoStatus::IoErr
        }
    }

    #[inline]
    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.done.drain_into(out)
    }

    fn inflight(&self) -> usize {
        self.done.len()
    }

    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        super::check_resize(bytes)?;
        self.capacity = bytes;
        Ok(bytes)
    }
}
