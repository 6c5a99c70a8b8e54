//! One walked descriptor chain: host I/O vectors, device-readable ones first.

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
