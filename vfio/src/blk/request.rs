//! Turns one walked descriptor chain into a virtio-blk request (VIRTIO 1.2
//! §5.2.6):
//!
//! ```text
//! struct virtio_blk_req { le32 type; le32 reserved; le64 sector;
//!                         u8 data[]; u8 status; }
//! ```
//!
//! The header is the first 16 device-readable bytes and the status the last
//! device-writable byte, whatever the descriptor layout (§2.6.4 "Message
//! Framing": the device must not assume a particular arrangement).

use super::config::{BlkConfig, MAX_DISCARD_SECTORS};
use super::*;
use crate::backend::IoOp;
use crate::iovec::{carve, gather, gather_array, IoVec};
use crate::virtq::Chain;

/// Length of the request header.
pub const HEADER_LEN: u64 = 16;
/// Length of one discard / write-zeroes segment (§5.2.6).
pub const SEGMENT_LEN: u64 = 16;
/// `flags` bit of a write-zeroes segment: the range may be unmapped.
pub const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP: u32 = 1;

/// What the device does with a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No usable status byte: the queue needs a reset.
    Fatal(&'static str),
    /// Finish now with this status; `used_len` counts the status byte and any
    /// data already written.
    Complete {
        /// virtio-blk status.
        status: u8,
        /// Bytes written to the chain.
        used_len: u32,
    },
    /// GET_ID: write the serial into `data` (already carved), then OK.
    GetId,
    /// Send to the backend; `data` holds the buffers of reads and writes.
    Backend {
        /// Operation.
        op: IoOp,
        /// Byte offset.
        offset: u64,
        /// Byte count.
        len: u64,
    },
}

/// Parses `chain`. On return `status` is the status byte's vector (when the
/// verdict is not `Fatal`) and `data` holds the data vectors (its capacity is
/// the most it may take; never grown). Inline: its one caller is the
/// device's per-request loop, where the verdict then stays in registers
/// (~24 fewer instructions per read than returned through memory).
#[inline]
pub fn parse(
    chain: &Chain,
    cfg: &BlkConfig,
    data: &mut Vec<IoVec>,
    status: &mut Option<IoVec>,
) -> Verdict {
    data.clear();
    *status = None;
    if !chain.last_writable_ok {
        return Verdict::Fatal("request has no device-writable status byte");
    }
    let last = chain
        .iovs
        .last()
        .expect("last_writable_ok implies a vector");
    *status = last.slice(last.len() - 1, 1);
    let ioerr = Verdict::Complete {
        status: VIRTIO_BLK_S_IOERR,
        used_len: 1,
    };
    let unsupp = Verdict::Complete {
        status: VIRTIO_BLK_S_UNSUPP,
        used_len: 1,
    };
    if chain.out_of_bounds || chain.readable_len < HEADER_LEN {
        return ioerr;
    }
    let Some(hdr) = gather_array::<{ HEADER_LEN as usize }>(chain.readable()) else {
        return ioerr;
    };
    let req_type = u32::from_le_bytes(hdr[0..4].try_into().expect("4"));
    let sector = u64::from_le_bytes(hdr[8..16].try_into().expect("8"));
    let out_len = chain.readable_len - HEADER_LEN;
    let in_len = chain.writable_len - 1;
    let cap = cfg.capacity_bytes();
    let range_ok = |sector: u64, len: u64| {
        sector
            .checked_mul(SECTOR_SIZE)
            .and_then(|o| o.checked_add(len).map(|e| (o, e)))
            .filter(|&(_, e)| e <= cap)
            .map(|(o, _)| o)
    };
    match req_type {
        VIRTIO_BLK_T_IN | VIRTIO_BLK_T_OUT => {
            let write = req_type == VIRTIO_BLK_T_OUT;
            // Direction check: a read carries no data for the device, a write
            // expects nothing back but the status.
            let (len, extra) = if write {
                (out_len, in_len)
            } else {
                (in_len, out_len)
            };
            if extra != 0 || len % SECTOR_SIZE != 0 || (write && cfg.read_only) {
                return ioerr;
            }
            let Some(offset) = range_ok(sector, len) else {
                return ioerr;
            };
            let ok = if write {
                carve(chain.readable(), HEADER_LEN, len, data)
            } else {
                carve(chain.writable(), 0, len, data)
            };
            if !ok {
                return ioerr;
            }
            Verdict::Backend {
                op: if write { IoOp::Write } else { IoOp::Read },
                offset,
                len,
            }
        }
        VIRTIO_BLK_T_FLUSH => Verdict::Backend {
            op: IoOp::Flush,
            offset: 0,
            len: 0,
        },
        VIRTIO_BLK_T_GET_ID => {
            let n = in_len.min(20);
            if !carve(chain.writable(), 0, n, data) {
                return ioerr;
            }
            Verdict::GetId
        }
        VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => {
            let discard = req_type == VIRTIO_BLK_T_DISCARD;
            if (discard && !cfg.discard) || (!discard && !cfg.write_zeroes) || cfg.read_only {
                return unsupp;
            }
            // max_discard_seg = max_write_zeroes_seg = 1: more segments (or
            // a partial one, or data for the device to write) is IOERR.
            if out_len != SEGMENT_LEN || in_len != 0 {
                return ioerr;
            }
            let mut seg = [0u8; SEGMENT_LEN as usize];
            let mut tmp = [0u8; (HEADER_LEN + SEGMENT_LEN) as usize];
            if !gather(chain.readable(), &mut tmp) {
                return ioerr;
            }
            seg.copy_from_slice(&tmp[HEADER_LEN as usize..]);
            let seg_sector = u64::from_le_bytes(seg[0..8].try_into().expect("8"));
            let num = u32::from_le_bytes(seg[8..12].try_into().expect("4"));
            let flags = u32::from_le_bytes(seg[12..16].try_into().expect("4"));
            // §5.2.6.2: "the device MUST set the status to VIRTIO_BLK_S_UNSUPP
            // for discard commands if the unmap flag is set"; reserved flag
            // bits likewise.
            if (discard && flags != 0)
                || (!discard && flags & !VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0)
            {
                return unsupp;
            }
            // §5.2.6.2 driver requirements: num_sectors at most
            // max_discard_sectors / max_write_zeroes_sectors. A segment must
            // also cover whole logical blocks (discard_sector_alignment is
            // blk_size / 512): the device cannot deallocate or zero part of a
            // block. Either error, or an empty segment, is IOERR.
            let per_block = (cfg.blk_size as u64 / SECTOR_SIZE).max(1);
            if num == 0
                || num > MAX_DISCARD_SECTORS
                || !seg_sector.is_multiple_of(per_block)
                || !(num as u64).is_multiple_of(per_block)
            {
                return ioerr;
            }
            let len = num as u64 * SECTOR_SIZE;
            let Some(offset) = range_ok(seg_sector, len) else {
                return ioerr;
            };
            let op = if discard {
                IoOp::Discard
            } else {
                IoOp::WriteZeroes {
                    unmap: flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0,
                }
            };
            Verdict::Backend { op, offset, len }
        }
        _ => unsupp,
    }
}
