//! Block I/O to SCSI: a [`BlockRequest`] (read / write / flush / discard at a byte
//! offset, with scatter-gather buffers) becomes one or more SCSI commands that respect
//! the logical unit's block size and transfer limits.
//!
//! Limits honoured:
//! * Block Limits VPD (SBC-3 6.6.4): MAXIMUM TRANSFER LENGTH caps each READ/WRITE;
//!   MAXIMUM UNMAP LBA COUNT / DESCRIPTOR COUNT cap each UNMAP.
//! * `max_command_bytes`: the caller's cap per command (default 1 MiB).
//! * MaxBurstLength / FirstBurstLength are honoured by the session when it moves the
//!   data: a command larger than MaxBurstLength is carried by several R2T sequences,
//!   immediate + unsolicited data never exceed FirstBurstLength.

use crate::scsi::capacity::Capacity;
use crate::scsi::cdb::{self, Cdb};
use crate::scsi::inquiry::{BlockLimits, Provisioning};
use crate::task::Direction;
use std::fmt;
use std::ops::Range;

/// The operation of a block request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOp {
    /// Read into the buffers.
    Read,
    /// Write from the buffers.
    Write,
    /// Make earlier writes durable (SYNCHRONIZE CACHE).
    Flush,
    /// Deallocate (UNMAP, or WRITE SAME (16) with UNMAP).
    Discard,
    /// Make the range read as zeroes: WRITE SAME (16) of one zero block,
    /// without UNMAP (SBC-3 5.42: the device server writes the block to
    /// every LBA of the range), within MAXIMUM WRITE SAME LENGTH.
    WriteZeroes,
}

/// A block request at byte granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRequest {
    /// Operation.
    pub op: BlockOp,
    /// Byte offset on the LU.
    pub offset: u64,
    /// Length in bytes (0 for flush).
    pub len: u64,
}

/// What the block layer knows of a logical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Capacity and block size.
    pub capacity: Capacity,
    /// Block Limits VPD (zeroes if the LU has none).
    pub limits: BlockLimits,
    /// Provisioning VPD (all false if the LU has none).
    pub provisioning: Provisioning,
    /// Cap on one READ/WRITE, bytes.
    pub max_command_bytes: u32,
}

/// Why a block request cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// Offset or length not a multiple of the block size.
    Unaligned {
        /// Offset asked.
        offset: u64,
        /// Length asked.
        len: u64,
        /// The LU's block size.
        block_size: u32,
    },
    /// The range runs past the end of the LU.
    OutOfRange {
        /// End of the range asked.
        end: u64,
        /// Capacity in bytes.
        capacity: u64,
    },
    /// Discard asked of a LU that offers neither UNMAP nor WRITE SAME with UNMAP.
    DiscardUnsupported,
    /// Write zeroes asked of a LU that reports no WRITE SAME support.
    WriteSameUnsupported,
    /// The scatter-gather buffers do not add up to the request length.
    BufferLength {
        /// Request length.
        expected: u64,
        /// Sum of buffer lengths.
        actual: u64,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Unaligned {
                offset,
                len,
                block_size,
            } => write!(
                f,
                "request at offset {offset} length {len} is not aligned to the {block_size}-byte block size"
            ),
            BlockError::OutOfRange { end, capacity } => {
                write!(f, "request ends at byte {end}, beyond the LU's {capacity} bytes")
            }
            BlockError::DiscardUnsupported => {
                write!(f, "the LU supports neither UNMAP nor WRITE SAME with UNMAP")
            }
            BlockError::WriteSameUnsupported => {
                write!(f, "the LU reports no WRITE SAME support")
            }
            BlockError::BufferLength { expected, actual } => write!(
                f,
                "scatter-gather buffers hold {actual} bytes, the request is {expected}"
            ),
        }
    }
}

impl std::error::Error for BlockError {}

/// One SCSI command of a converted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The CDB.
    pub cdb: Cdb,
    /// Data direction.
    pub direction: Direction,
    /// Bytes of the request this command moves (empty for flush/discard).
    pub range: Range<u64>,
    /// Data the command sends that is not the request's (UNMAP parameter list,
    /// the one zero block of WRITE SAME).
    pub parameter: Option<Vec<u8>>,
}

impl Geometry {
    /// Whether the LU takes WRITE SAME (16): it reports a MAXIMUM WRITE
    /// SAME LENGTH (Block Limits VPD) or WRITE SAME with UNMAP (LBPWS,
    /// Logical Block Provisioning VPD).
    pub fn write_same(&self) -> bool {
        self.limits.max_write_same_blocks != 0 || self.provisioning.write_same16_unmap
    }

    /// Bytes per READ/WRITE: the smaller of the LU's MAXIMUM TRANSFER LENGTH and our cap,
    /// rounded down to whole blocks (at least one block).
    pub fn command_bytes(&self) -> u64 {
        let bs = self.capacity.block_size as u64;
        let mut max = self.max_command_bytes as u64;
        if self.limits.max_transfer_blocks != 0 {
            max = max.min(self.limits.max_transfer_blocks as u64 * bs);
        }
        (max / bs).max(1) * bs
    }
}

/// Converts a request into SCSI commands.
pub fn plan(req: &BlockRequest, geo: &Geometry) -> Result<Vec<Piece>, BlockError> {
    let bs = geo.capacity.block_size as u64;
    let flush = || Piece {
        cdb: cdb::synchronize_cache(0, 0),
        direction: Direction::None,
        range: 0..0,
        parameter: None,
    };
    if req.op == BlockOp::Flush {
        return Ok(vec![flush()]);
    }
    if bs == 0 || !req.offset.is_multiple_of(bs) || !req.len.is_multiple_of(bs) {
        return Err(BlockError::Unaligned {
            offset: req.offset,
            len: req.len,
            block_size: geo.capacity.block_size,
        });
    }
    let end = req
        .offset
        .checked_add(req.len)
        .ok_or(BlockError::OutOfRange {
            end: u64::MAX,
            capacity: geo.capacity.bytes(),
        })?;
    if end > geo.capacity.bytes() {
        return Err(BlockError::OutOfRange {
            end,
            capacity: geo.capacity.bytes(),
        });
    }
    let mut out = Vec::new();
    match req.op {
        BlockOp::Read | BlockOp::Write => {
            let step = geo.command_bytes();
            let mut at = 0u64;
            while at < req.len {
                let n = step.min(req.len - at);
                let lba = (req.offset + at) / bs;
                let blocks = (n / bs) as u32;
                let (cdb, direction) = if req.op == BlockOp::Read {
                    (cdb::read(lba, blocks), Direction::Read)
                } else {
                    (cdb::write(lba, blocks, false), Direction::Write)
                };
                out.push(Piece {
                    cdb,
                    direction,
                    range: at..at + n,
                    parameter: None,
                });
                at += n;
            }
        }
        BlockOp::Discard => {
            let total = req.len / bs;
            let mut lba = req.offset / bs;
            let mut left = total;
            if geo.provisioning.unmap {
                // One descriptor per command, within MAXIMUM UNMAP LBA COUNT.
                let max = match geo.limits.max_unmap_blocks {
                    0 => u32::MAX as u64,
                    n => n as u64,
                };
                while left > 0 {
                    let n = left.min(max).min(u32::MAX as u64);
                    let params = cdb::unmap_params(&[(lba, n as u32)]);
                    out.push(Piece {
                        cdb: cdb::unmap(params.len() as u16),
                        direction: Direction::Write,
                        range: 0..0,
                        parameter: Some(params),
                    });
                    lba += n;
                    left -= n;
                }
            } else if geo.provisioning.write_same16_unmap {
                let max = match geo.limits.max_write_same_blocks {
                    0 => u32::MAX as u64,
                    n => n.min(u32::MAX as u64),
                };
                while left > 0 {
                    let n = left.min(max);
                    out.push(Piece {
                        cdb: cdb::write_same16(lba, n as u32, true),
                        direction: Direction::Write,
                        range: 0..0,
                        parameter: Some(vec![0u8; bs as usize]),
                    });
                    lba += n;
                    left -= n;
                }
            } else {
                return Err(BlockError::DiscardUnsupported);
            }
        }
        BlockOp::WriteZeroes => {
            if !geo.write_same() {
                return Err(BlockError::WriteSameUnsupported);
            }
            let max = match geo.limits.max_write_same_blocks {
                0 => u32::MAX as u64,
                n => n.min(u32::MAX as u64),
            };
            let (mut lba, mut left) = (req.offset / bs, req.len / bs);
            while left > 0 {
                let n = left.min(max);
                out.push(Piece {
                    cdb: cdb::write_same16(lba, n as u32, false),
                    direction: Direction::Write,
                    range: 0..0,
                    parameter: Some(vec![0u8; bs as usize]),
                });
                lba += n;
                left -= n;
            }
        }
        BlockOp::Flush => out.push(flush()),
    }
    Ok(out)
}

/// Total length of scatter-gather buffers.
pub fn sg_len<B: AsRef<[u8]>>(sg: &[B]) -> u64 {
    sg.iter().map(|b| b.as_ref().len() as u64).sum()
}

/// Copies bytes `range` of the scatter-gather list into `out` (cleared first).
pub fn gather<B: AsRef<[u8]>>(sg: &[B], range: Range<u64>, out: &mut Vec<u8>) {
    out.clear();
    let mut base = 0u64;
    for b in sg {
        let b = b.as_ref();
        let (lo, hi) = (base, base + b.len() as u64);
        let s = range.start.max(lo);
        let e = range.end.min(hi);
        if s < e {
            out.extend_from_slice(&b[(s - lo) as usize..(e - lo) as usize]);
        }
        base = hi;
    }
}

/// Copies `data` into bytes `range.start..` of the scatter-gather list.
pub fn scatter<B: AsMut<[u8]>>(sg: &mut [B], range: Range<u64>, data: &[u8]) {
    let end = range.start + data.len() as u64;
    let mut base = 0u64;
    for b in sg {
        let b = b.as_mut();
        let (lo, hi) = (base, base + b.len() as u64);
        let s = range.start.max(lo);
        let e = end.min(hi);
        if s < e {
            b[(s - lo) as usize..(e - lo) as usize]
                .copy_from_slice(&data[(s - range.start) as usize..(e - range.start) as usize]);
        }
        base = hi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo() -> Geometry {
        Geometry {
            capacity: Capacity {
                blocks: 1 << 20,
                block_size: 512,
                thin_provisioned: false,
            },
            limits: BlockLimits {
                max_transfer_blocks: 256,
                ..BlockLimits::default()
            },
            provisioning: Provisioning::default(),
            max_command_bytes: 1 << 20,
        }
    }

    #[test]
    fn split_by_max_transfer_length() {
        let p = plan(
            &BlockRequest {
                op: BlockOp::Write,
                offset: 4096,
                len: 300 * 512,
            },
            &geo(),
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].range, 0..256 * 512);
        assert_eq!(&p[0].cdb.bytes[..10], &[0x2a, 0, 0, 0, 0, 8, 0, 1, 0, 0]);
        assert_eq!(p[1].range, 256 * 512..300 * 512);
        assert_eq!(&p[1].cdb.bytes[2..6], &(8u32 + 256).to_be_bytes());
        assert_eq!(&p[1].cdb.bytes[7..9], &44u16.to_be_bytes());
    }

    #[test]
    fn unaligned_is_a_clear_error() {
        let e = plan(
            &BlockRequest {
                op: BlockOp::Read,
                offset: 100,
                len: 512,
            },
            &geo(),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("not aligned to the 512-byte block size"));
        assert!(plan(
            &BlockRequest {
                op: BlockOp::Read,
                offset: 0,
                len: 513
            },
            &geo()
        )
        .is_err());
    }

    #[test]
    fn out_of_range() {
        let g = geo();
        let e = plan(
            &BlockRequest {
                op: BlockOp::Read,
                offset: g.capacity.bytes() - 512,
                len: 1024,
            },
            &g,
        )
        .unwrap_err();
        assert!(matches!(e, BlockError::OutOfRange { .. }));
        assert!(plan(
            &BlockRequest {
                op: BlockOp::Read,
                offset: u64::MAX - 511,
                len: 1024
            },
            &g
        )
        .is_err());
    }

    #[test]
    fn write_zeroes_is_write_same_without_unmap() {
        let r = BlockRequest {
            op: BlockOp::WriteZeroes,
            offset: 4096,
            len: 10 * 512,
        };
        let mut g = geo();
        assert_eq!(plan(&r, &g), Err(BlockError::WriteSameUnsupported));
        g.limits.max_write_same_blocks = 4;
        let p = plan(&r, &g).unwrap();
        assert_eq!(p.len(), 3, "10 blocks in pieces of at most 4");
        assert_eq!(p[0].cdb, cdb::write_same16(8, 4, false));
        assert_eq!(p[2].cdb, cdb::write_same16(16, 2, false));
        assert!(p
            .iter()
            .all(|x| x.parameter.as_deref() == Some(&[0u8; 512][..])));
        assert_eq!(p[0].cdb.bytes[1] & 0x08, 0, "no UNMAP bit");
    }

    #[test]
    fn discard_needs_support_then_uses_unmap() {
        let mut g = geo();
        let r = BlockRequest {
            op: BlockOp::Discard,
            offset: 0,
            len: 1 << 20,
        };
        assert_eq!(plan(&r, &g), Err(BlockError::DiscardUnsupported));
        g.provisioning.unmap = true;
        g.limits.max_unmap_blocks = 1024;
        let p = plan(&r, &g).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].cdb.bytes[0], 0x42);
    }

    #[test]
    fn gather_scatter_across_buffers() {
        let a = [1u8, 2, 3];
        let b = [4u8, 5, 6, 7];
        let sg: [&[u8]; 2] = [&a, &b];
        let mut out = Vec::new();
        gather(&sg, 2..6, &mut out);
        assert_eq!(out, vec![3, 4, 5, 6]);
        let mut x = [0u8; 3];
        let mut y = [0u8; 4];
        {
            let mut sgm: [&mut [u8]; 2] = [&mut x, &mut y];
            scatter(&mut sgm, 2..6, &[9, 8, 7, 6]);
        }
        assert_eq!(x, [0, 0, 9]);
        assert_eq!(y, [8, 7, 6, 0]);
    }
}
