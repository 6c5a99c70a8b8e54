//! A logical unit used as a block device over a [`Connection`]: discovers its geometry
//! (READ CAPACITY, Block Limits and Provisioning VPD pages) and runs [`BlockRequest`]s,
//! submitting all the commands of a request at once.

use crate::block::{self, BlockError, BlockOp, BlockRequest, Geometry};
use crate::scsi::capacity::Capacity;
use crate::scsi::cdb::{self, Cdb};
use crate::scsi::inquiry::{self, BlockLimits, Provisioning, StandardInquiry};
use crate::scsi::sense::SenseKey;
use crate::task::{Command, Direction, TaskTag};
use crate::transport::{Connection, Error, Result};
use crate::CommandError;

/// A LUN on a logged-in connection.
pub struct BlockDevice {
    conn: Connection,
    lun: u16,
    geometry: Geometry,
}

/// Errors of block requests: conversion or transport.
#[derive(Debug)]
pub enum DeviceError {
    /// The request cannot be expressed in SCSI for this LU.
    Block(BlockError),
    /// The commands failed.
    Transport(Error),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::Block(e) => write!(f, "{e}"),
            DeviceError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DeviceError {}

impl From<Error> for DeviceError {
    fn from(e: Error) -> DeviceError {
        DeviceError::Transport(e)
    }
}

impl From<BlockError> for DeviceError {
    fn from(e: BlockError) -> DeviceError {
        DeviceError::Block(e)
    }
}

/// Runs a no-data or read command with `len` bytes of buffer and returns the data.
pub fn read_command(conn: &mut Connection, lun: u16, cdb: Cdb, len: usize) -> Result<Vec<u8>> {
    let c = conn.execute(Command {
        lun,
        cdb,
        direction: if len == 0 {
            Direction::None
        } else {
            Direction::Read
        },
        buffer: vec![0u8; len],
    })?;
    let mut b = c.buffer;
    b.truncate(c.transferred as usize);
    Ok(b)
}

/// TEST UNIT READY, retrying through UNIT ATTENTION (reported once after login/reset).
pub fn test_unit_ready(conn: &mut Connection, lun: u16) -> Result<()> {
    let mut tries = 0;
    loop {
        match read_command(conn, lun, cdb::test_unit_ready(), 0) {
            Err(Error::Command(CommandError::CheckCondition(s)))
                if s.key == SenseKey::UnitAttention && tries < 5 =>
            {
                tries += 1
            }
            other => return other.map(|_| ()),
        }
    }
}

/// Standard INQUIRY.
pub fn inquiry(conn: &mut Connection, lun: u16) -> Result<StandardInquiry> {
    let d = read_command(conn, lun, cdb::inquiry(None, 96), 96)?;
    StandardInquiry::parse(&d)
        .map_err(|e| Error::Session(crate::SessionError::Protocol(e.to_string())))
}

/// READ CAPACITY (16), falling back to (10).
pub fn capacity(conn: &mut Connection, lun: u16) -> Result<Capacity> {
    let bad =
        |e: crate::scsi::ParseError| Error::Session(crate::SessionError::Protocol(e.to_string()));
    match read_command(conn, lun, cdb::read_capacity16(32), 32) {
        Ok(d) => Capacity::parse16(&d).map_err(bad),
        Err(Error::Command(_)) => {
            let d = read_command(conn, lun, cdb::read_capacity10(), 8)?;
            Capacity::parse10(&d).map_err(bad)
        }
        Err(e) => Err(e),
    }
}

impl BlockDevice {
    /// Opens `lun`: TEST UNIT READY, capacity, VPD pages 0x00, 0xB0, 0xB2.
    pub fn open(mut conn: Connection, lun: u16) -> Result<BlockDevice> {
        test_unit_ready(&mut conn, lun)?;
        let capacity = capacity(&mut conn, lun)?;
        let pages = read_command(&mut conn, lun, cdb::inquiry(Some(0), 255), 255)
            .ok()
            .and_then(|d| inquiry::supported_pages(&d).ok())
            .unwrap_or_default();
        let vpd = |conn: &mut Connection, p: u8| {
            if pages.contains(&p) {
                read_command(conn, lun, cdb::inquiry(Some(p), 255), 255).ok()
            } else {
                None
            }
        };
        let limits = vpd(&mut conn, inquiry::page::BLOCK_LIMITS)
            .and_then(|d| BlockLimits::parse(&d).ok())
            .unwrap_or_default();
        let provisioning = vpd(&mut conn, inquiry::page::PROVISIONING)
            .and_then(|d| Provisioning::parse(&d).ok())
            .unwrap_or_default();
        Ok(BlockDevice {
            conn,
            lun,
            geometry: Geometry {
                capacity,
                limits,
                provisioning,
                max_command_bytes: 1 << 20,
            },
        })
    }

    /// The LU's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Sets the per-command cap (bytes).
    pub fn set_max_command_bytes(&mut self, n: u32) {
        self.geometry.max_command_bytes = n;
    }

    /// The connection.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Gives the connection back (for logout).
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// Runs one block request with scatter-gather buffers: for reads they receive the
    /// data, for writes they hold it, for flush/discard they are empty.
    pub fn request<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        req: BlockRequest,
        sg: &mut [B],
    ) -> std::result::Result<(), DeviceError> {
        let pieces = block::plan(&req, &self.geometry)?;
        if matches!(req.op, BlockOp::Read | BlockOp::Write) {
            let actual = block::sg_len(sg);
            if actual != req.len {
                return Err(BlockError::BufferLength {
                    expected: req.len,
                    actual,
                }
                .into());
            }
        }
        let mut tags: Vec<(TaskTag, std::ops::Range<u64>)> = Vec::with_capacity(pieces.len());
        let mut first_err = None;
        for p in pieces {
            let buffer = match (&p.parameter, p.direction) {
                (Some(param), _) => param.clone(),
                (None, Direction::Write) => {
                    let mut b = Vec::new();
                    block::gather(sg, p.range.clone(), &mut b);
                    b
                }
                (None, Direction::Read) => vec![0u8; (p.range.end - p.range.start) as usize],
                (None, Direction::None) => Vec::new(),
            };
            let tag = self.conn.submit(Command {
                lun: self.lun,
                cdb: p.cdb,
                direction: p.direction,
                buffer,
            })?;
            tags.push((tag, p.range));
        }
        for (tag, range) in tags {
            let c = self.conn.wait(tag)?;
            match c.result {
                Ok(()) if req.op == BlockOp::Read => {
                    if (c.transferred as u64) < range.end - range.start {
                        first_err.get_or_insert(Error::Command(CommandError::Residual {
                            expected: (range.end - range.start) as u32,
                            transferred: c.transferred,
                        }));
                    }
                    block::scatter(sg, range, &c.buffer[..c.transferred as usize]);
                }
                Ok(()) => {}
                Err(e) => {
                    first_err.get_or_insert(Error::Command(e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), DeviceError> {
        let len = buf.len() as u64;
        self.request(
            BlockRequest {
                op: BlockOp::Read,
                offset,
                len,
            },
            &mut [buf],
        )
    }

    /// Writes `data` at `offset`.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> std::result::Result<(), DeviceError> {
        // `request` needs AsMut for reads only; copy-free path for writes.
        let mut sg = [WriteBuf(data)];
        self.request(
            BlockRequest {
                op: BlockOp::Write,
                offset,
                len: data.len() as u64,
            },
            &mut sg,
        )
    }

    /// SYNCHRONIZE CACHE over the whole LU.
    pub fn flush(&mut self) -> std::result::Result<(), DeviceError> {
        let mut none: [&mut [u8]; 0] = [];
        self.request(
            BlockRequest {
                op: BlockOp::Flush,
                offset: 0,
                len: 0,
            },
            &mut none,
        )
    }

    /// Discards `len` bytes at `offset`.
    pub fn discard(&mut self, offset: u64, len: u64) -> std::result::Result<(), DeviceError> {
        let mut none: [&mut [u8]; 0] = [];
        self.request(
            BlockRequest {
                op: BlockOp::Discard,
                offset,
                len,
            },
            &mut none,
        )
    }
}

/// A read-only buffer in a scatter-gather list used for writes. Writing into it is a
/// bug in this module; `as_mut` returns an empty slice so nothing can be overwritten.
struct WriteBuf<'a>(&'a [u8]);

impl AsRef<[u8]> for WriteBuf<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl AsMut<[u8]> for WriteBuf<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut []
    }
}
