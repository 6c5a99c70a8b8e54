//! One walked descriptor chain: host I/O vectors, device-readable ones first.

use crate::guest_memory::{GuestMemory, MemoryError};
use crate::iovec::IoVec;

/// Largest number of I/O vectors one chain may produce; longer chains fail
/// with [`ChainError::TooManySegments`].
pub const MAX_CHAIN_IOVS: usize = 1024;

/// Why a descriptor chain was refused. Every variant is a driver bug or a
/// malicious guest; the queue that produced it needs a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// The available ring named a head index `>=` the queue size.
    HeadOutOfRange(u16),
    /// A `next` field pointed past the (direct or indirect) table.
    NextOutOfRange(u16),
    /// The chain is longer than its table: it loops (§2.7.5.3.1 "A driver
    /// MUST NOT create a descriptor chain longer than the Queue Size").
    Loop,
    /// `VIRTQ_DESC_F_INDIRECT` without `VIRTIO_F_INDIRECT_DESC` negotiated.
    IndirectNotNegotiated,
    /// `VIRTQ_DESC_F_INDIRECT` together with `VIRTQ_DESC_F_NEXT`.
    IndirectWithNext,
    /// An indirect descriptor inside an indirect table.
    NestedIndirect,
    /// Indirect table length is 0, not a multiple of 16, too large, or the
    /// table is not inside guest memory.
    BadIndirectTable,
    /// A device-readable descriptor after a device-writable one (§2.7.4.2).
    ReadableAfterWritable,
    /// More than [`MAX_CHAIN_IOVS`] pieces.
    TooManySegments,
    /// The chain's byte count overflows 32 bits.
    LengthOverflow,
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed descriptor chain: {self:?}")
    }
}

impl std::error::Error for ChainError {}

/// A walked chain. Reused from request to request: `clear` keeps capacity.
#[derive(Debug)]
pub struct Chain {
    /// Head descriptor index (the id returned in the used ring).
    pub head: u16,
    /// Device-readable vectors, then device-writable vectors.
    pub iovs: Vec<IoVec>,
    /// How many of `iovs` are device-readable.
    pub readable: usize,
    /// Bytes in device-readable descriptors.
    pub readable_len: u64,
    /// Bytes in device-writable descriptors.
    pub writable_len: u64,
    /// Some descriptor's buffer was (partly) outside guest memory; its bytes
    /// are missing from `iovs`.
    pub out_of_bounds: bool,
    /// The last descriptor was device-writable and inside guest memory, so its
    /// last byte (the last of `iovs`) can carry a status.
    pub last_writable_ok: bool,
    /// Ring slots the chain occupies (packed rings: the used ring advances by
    /// this much; split rings: 1).
    pub ring_descs: u16,
    seen_writable: bool,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// An empty chain with room for [`MAX_CHAIN_IOVS`] vectors.
    pub fn new() -> Self {
        Chain {
            head: 0,
            iovs: Vec::with_capacity(MAX_CHAIN_IOVS),
            readable: 0,
            readable_len: 0,
            writable_len: 0,
            out_of_bounds: false,
            last_writable_ok: false,
            ring_descs: 1,
            seen_writable: false,
        }
    }

    /// Forgets the previous chain.
    pub fn clear(&mut self, head: u16) {
        self.head = head;
        self.iovs.clear();
        self.readable = 0;
        self.readable_len = 0;
        self.writable_len = 0;
        self.out_of_bounds = false;
        self.last_writable_ok = false;
        self.ring_descs = 1;
        self.seen_writable = false;
    }

    /// Adds one descriptor's buffer: checks direction order (§2.7.4.2 / §2.8.4
    /// "device-writable descriptor elements after any device-readable"), the
    /// 32-bit total, and translates it to host vectors. A buffer outside guest
    /// memory is left out and flagged.
    pub(crate) fn add_buffer(
        &mut self,
        mem: &GuestMemory,
        addr: u64,
        len: u32,
        writable: bool,
    ) -> Result<(), ChainError> {
        if writable {
            self.seen_writable = true;
        } else if self.seen_writable {
            return Err(ChainError::ReadableAfterWritable);
        }
        if self.readable_len + self.writable_len + len as u64 > u32::MAX as u64 {
            return Err(ChainError::LengthOverflow);
        }
        let before = self.iovs.len();
        let mut too_many = false;
        let res = mem.for_each_chunk(addr, len as u64, |p, l| {
            if self.iovs.len() == self.iovs.capacity() {
                too_many = true;
                return Err(MemoryError::OutOfBounds {
                    addr,
                    len: len as u64,
                });
            }
            // SAFETY: `for_each_chunk` hands out only mapped ranges of one
            // region; `l` <= len fits in u32; the mapping lives as long as the
            // queue's GuestMemory, which outlives the request (crate::iovec).
            self.iovs.push(unsafe { IoVec::new(p, l as u32) });
            Ok(())
        });
        if too_many {
            return Err(ChainError::TooManySegments);
        }
        let ok = res.is_ok();
        if !ok {
            self.iovs.truncate(before);
            self.out_of_bounds = true;
        }
        if writable {
            self.writable_len += len as u64;
        } else {
            self.readable_len += len as u64;
            self.readable = self.iovs.len();
        }
        self.last_writable_ok = writable && ok && len > 0;
        Ok(())
    }

    /// The device-readable vectors.
    pub fn readable(&self) -> &[IoVec] {
        &self.iovs[..self.readable]
    }

    /// The device-writable vectors.
    pub fn writable(&self) -> &[IoVec] {
        &self.iovs[self.readable..]
    }
}
