//! The memory backend: a RAM disk in this process (zero-filled pages are
//! only allocated when written).

use super::{
    in_range, Backend, BackendInfo, DoneQueue, IoCompletion, IoOp, IoRequest, IoStatus, SubmitError,
};
use crate::iovec::{gather, scatter};

/// A RAM disk.
#[derive(Debug)]
pub struct MemBackend {
    data: Vec<u8>,
    done: DoneQueue,
}

impl MemBackend {
    /// A zeroed RAM disk of `capacity` bytes.
    pub fn new(capacity: u64, max_inflight: usize) -> Result<Self, String> {
        let n = usize::try_from(capacity)
            .map_err(|_| "mem backend larger than the address space".to_string())?;
        Ok(MemBackend {
            data: vec![0; n],
            done: DoneQueue::new(max_inflight),
        })
    }

    /// The disk's bytes (tests check what a guest wrote).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    fn run(&mut self, req: &IoRequest<'_>) -> IoStatus {
        if !in_range(req, self.data.len() as u64) {
            return IoStatus::IoErr;
        }
        // In range of a Vec, so both fit in usize.
        let (a, b) = (req.offset as usize, (req.offset + req.len) as usize);
        match req.op {
            IoOp::Read if scatter(req.iovs, &self.data[a..b]) => IoStatus::Ok,
            IoOp::Write if gather(req.iovs, &mut self.data[a..b]) => IoStatus::Ok,
            IoOp::Read | IoOp::Write => IoStatus::IoErr,
            IoOp::Flush => IoStatus::Ok,
            IoOp::Discard | IoOp::WriteZeroes { .. } => {
                self.data[a..b].fill(0);
                IoStatus::Ok
            }
        }
    }
}

impl Backend for MemBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            capacity: self.data.len() as u64,
            read_only: false,
            flush: false,
            discard: true,
            write_zeroes: true,
            max_inflight: self.done.cap_hint(),
        }
    }

    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.done.len() >= self.done.cap_hint() {
            return Err(SubmitError::Busy);
        }
        let status = self.run(req);
        self.done.push(IoCompletion { id: req.id, status })
    }

    fn synchronous(&self) -> bool {
        true
    }

    fn execute(&mut self, req: &IoRequest<'_>) -> IoStatus {
        self.run(req)
    }

    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.done.drain_into(out)
    }

    fn inflight(&self) -> usize {
        self.done.len()
    }

    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        super::check_resize(bytes)?;
        let n = usize::try_from(bytes)
            .map_err(|_| "mem backend larger than the address space".to_string())?;
        // New bytes read as zeroes (a grown RAM disk is a zeroed one).
        self.data
            .try_reserve_exact(n.saturating_sub(self.data.len()))
            .map_err(|e| format!("mem backend: cannot grow to {bytes} bytes: {e}"))?;
        self.data.resize(n, 0);
        Ok(bytes)
    }
}
