//! Random fixed-size I/O at a fixed queue depth, the loop shared by `vswitch iscsi bench`
//! and `perf/src/bin/iscsi_bench.rs`. Buffers are allocated once and recycled through
//! the completions, so the measured loop allocates nothing per I/O.

use crate::scsi::cdb;
use crate::task::{Command, Direction};
use crate::transport::{Connection, Error, Result};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// LUN.
    pub lun: u16,
    /// Writes (true) or reads.
    pub write: bool,
    /// Bytes per I/O (multiple of the block size).
    pub io_size: u32,
    /// Commands kept outstanding.
    pub queue_depth: usize,
    /// How long to run.
    pub duration: Duration,
    /// Block size of the LU.
    pub block_size: u32,
    /// LU size in blocks (offsets are drawn below it).
    pub blocks: u64,
    /// Seed of the offset generator.
    pub seed: u64,
}

/// Totals of a run.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// I/Os completed.
    pub ios: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs the workload; `on_latency` gets each I/O's latency in nanoseconds.
pub fn run(
    conn: &mut Connection,
    w: &Workload,
    mut on_latency: impl FnMut(u64),
) -> Result<Outcome> {
    let per_io = (w.io_size / w.block_size).max(1);
    let slots = w.blocks / per_io as u64;
    if slots == 0 {
        return Err(Error::Session(crate::SessionError::Protocol(
            "LU smaller than one I/O".into(),
        )));
    }
    let mut rng = w.seed | 1;
    let mut next_lba = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % slots) * per_io as u64
    };
    let mut started = vec![Instant::now(); 1 << 16];
    let mut free: Vec<Vec<u8>> = (0..w.queue_depth)
        .map(|i| vec![i as u8; w.io_size as usize])
        .collect();
    let mut done = Vec::with_capacity(w.queue_depth);
    let start = Instant::now();
    let end = start + w.duration;
    let mut ios = 0u64;
    loop {
        let now = Instant::now();
        if now < end {
            while let Some(buffer) = free.pop() {
                let lba = next_lba();
                let cmd = Command {
                    lun: w.lun,
                    cdb: if w.write {
                        cdb::write(lba, per_io, false)
                    } else {
                        cdb::read(lba, per_io)
                    },
                    direction: if w.write {
                        Direction::Write
                    } else {
                        Direction::Read
                    },
                    buffer,
                };
                let tag = conn.submit(cmd)?;
                started[(tag & 0xffff) as usize] = now;
            }
        } else if conn.outstanding() == 0 {
            break;
        }
        done.clear();
        conn.completions(&mut done)?;
        let t = Instant::now();
        for c in done.drain(..) {
            if let Err(e) = c.result {
                return Err(Error::Command(e));
            }
            on_latency(
                t.duration_since(started[(c.tag & 0xffff) as usize])
                    .as_nanos() as u64,
            );
            ios += 1;
            free.push(c.buffer);
        }
    }
    Ok(Outcome {
        ios,
        elapsed: start.elapsed(),
    })
}
