//! Jobs a virtual function's work queue executes, and the engine that runs
//! them inside the VF's memory window.
//!
//! Isolation: every offset in a descriptor is relative to the VF's memory
//! window and is checked (with overflow-checked arithmetic) against the
//! window's size before any byte is touched; a job that reaches outside the
//! window fails with [`JobStatus::OutOfWindow`] and changes nothing.

use crate::pci::mmio::Mmio;

use super::resources::Span;

/// Job opcodes (descriptor `OPCODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum JobOp {
    /// CRC32C (Castagnoli) of `[src, src+len)`, seeded with `arg` (as u32).
    Crc32c = 1,
    /// Vector checksum: wrapping sum of the little-endian u64 lanes of
    /// `[src, src+len)` (a short tail is zero-padded), plus `arg`.
    Checksum = 2,
    /// Copy `[src, src+len)` to `[dst, dst+len)`.
    Copy = 3,
    /// Fill `[dst, dst+len)` with the low byte of `arg`.
    Fill = 4,
}

impl JobOp {
    /// Decodes an opcode.
    pub fn from_u32(v: u32) -> Option<JobOp> {
        Some(match v {
            1 => JobOp::Crc32c,
            2 => JobOp::Checksum,
            3 => JobOp::Copy,
            4 => JobOp::Fill,
            _ => return None,
        })
    }

    /// Parses a job name as used on the command line.
    pub fn from_name(s: &str) -> Option<JobOp> {
        Some(match s {
            "crc32c" => JobOp::Crc32c,
            "checksum" => JobOp::Checksum,
            "copy" => JobOp::Copy,
            "fill" => JobOp::Fill,
            _ => return None,
        })
    }
}

/// Job completion status (descriptor `STATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum JobStatus {
    /// The job completed; `RESULT` is valid.
    Ok = 0,
    /// Unknown job opcode.
    BadOpcode = 1,
    /// The job's range reaches outside the VF's memory window.
    OutOfWindow = 2,
}

impl JobStatus {
    /// Decodes a status value.
    pub fn from_u32(v: u32) -> Option<JobStatus> {
        Some(match v {
            0 => JobStatus::Ok,
            1 => JobStatus::BadOpcode,
            2 => JobStatus::OutOfWindow,
            _ => return None,
        })
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobStatus::Ok => "ok",
            JobStatus::BadOpcode => "unknown job opcode",
            JobStatus::OutOfWindow => "job range outside the VF memory window",
        })
    }
}

/// A job descriptor as the host writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Job {
    /// Raw opcode (a [`JobOp`] for valid jobs).
    pub opcode: u32,
    /// Source offset in the window.
    pub src: u64,
    /// Destination offset in the window.
    pub dst: u64,
    /// Length in bytes.
    pub len: u64,
    /// Argument.
    pub arg: u64,
}

impl Job {
    /// A CRC32C job over `[src, src+len)`.
    pub fn crc32c(src: u64, len: u64) -> Job {
        Job {
            opcode: JobOp::Crc32c as u32,
            src,
            len,
            ..Default::default()
        }
    }

    /// A checksum job over `[src, src+len)`.
    pub fn checksum(src: u64, len: u64) -> Job {
        Job {
            opcode: JobOp::Checksum as u32,
            src,
            len,
            ..Default::default()
        }
    }

    /// A copy job.
    pub fn copy(src: u64, dst: u64, len: u64) -> Job {
        Job {
            opcode: JobOp::Copy as u32,
            src,
            dst,
            len,
            ..Default::default()
        }
    }

    /// A fill job.
    pub fn fill(dst: u64, len: u64, byte: u8) -> Job {
        Job {
            opcode: JobOp::Fill as u32,
            dst,
            len,
            arg: byte.into(),
            ..Default::default()
        }
    }

    /// Bytes of work the job represents (what compute time is charged for).
    pub fn work_bytes(&self) -> u64 {
        self.len
    }
}

/// Reference CRC32C over a host buffer (what [`JobOp::Crc32c`] computes
/// with seed 0), for verifying device results on the host CPU.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Reference checksum over a host buffer (what [`JobOp::Checksum`] computes).
pub fn checksum(seed: u64, data: &[u8]) -> u64 {
    let mut acc = seed;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc = acc.wrapping_add(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        acc = acc.wrapping_add(u64::from_le_bytes(b));
    }
    acc
}

/// Checks `[off, off+len)` lies inside a window of `size` bytes and returns
/// the absolute device-memory offset.
fn in_window(win: &Span, off: u64, len: u64) -> Option<u64> {
    let end = off.checked_add(len)?;
    if end > win.len {
        return None;
    }
    win.base.checked_add(off)
}

/// Executes `job` against device memory `mem`, confined to window `win`.
/// `scratch` is the engine's staging buffer (its size bounds each chunk; no
/// allocation happens here). Returns the status and result.
pub fn execute(mem: &Mmio, win: &Span, job: &Job, scratch: &mut [u8]) -> (JobStatus, u64) {
    let Some(op) = JobOp::from_u32(job.opcode) else {
        return (JobStatus::BadOpcode, 0);
    };
    let oob = (JobStatus::OutOfWindow, 0);
    match op {
        JobOp::Crc32c | JobOp::Checksum => {
            let Some(mut at) = in_window(win, job.src, job.len) else {
                return oob;
            };
            let mut left = job.len;
            let mut crc = job.arg as u32;
            let mut sum = job.arg;
            // Chunks are multiples of 8 bytes so checksum lanes stay aligned.
            let chunk_max = (scratch.len() & !7) as u64;
            while left > 0 {
                let n = left.min(chunk_max) as usize;
                let buf = &mut scratch[..n];
                if mem.read_bytes(at, buf).is_err() {
                    return oob;
                }
                match op {
                    JobOp::Crc32c => crc = crc32c::crc32c_append(crc, buf),
                    _ => sum = checksum(sum, buf),
                }
                at += n as u64;
                left -= n as u64;
            }
            match op {
                JobOp::Crc32c => (JobStatus::Ok, crc.into()),
                _ => (JobStatus::Ok, sum),
            }
        }
        JobOp::Copy => {
            let (Some(s), Some(d)) = (
                in_window(win, job.src, job.len),
                in_window(win, job.dst, job.len),
            ) else {
                return oob;
            };
            match mem.copy_within(s, d, job.len) {
                Ok(()) => (JobStatus::Ok, job.len),
                Err(_) => oob,
            }
        }
        JobOp::Fill => {
            let Some(d) = in_window(win, job.dst, job.len) else {
                return oob;
            };
            match mem.fill(d, job.len, job.arg as u8) {
                Ok(()) => (JobStatus::Ok, job.len),
                Err(_) => oob,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answer() {
        let mem = Mmio::anonymous(8192).unwrap();
        mem.write_bytes(4096 + 10, b"123456789").unwrap();
        let win = Span {
            base: 4096,
            len: 4096,
        };
        let mut scratch = [0u8; 16];
        let (st, r) = execute(&mem, &win, &Job::crc32c(10, 9), &mut scratch);
        assert_eq!((st, r), (JobStatus::Ok, 0xE306_9283));
    }

    #[test]
    fn window_is_enforced() {
        let mem = Mmio::anonymous(3 * 4096).unwrap();
        mem.fill(0, 3 * 4096, 0xAA).unwrap();
        let win = Span {
            base: 4096,
            len: 4096,
        };
        let mut s = [0u8; 64];
        for job in [
            Job::crc32c(4096, 1),
            Job::crc32c(1, 4096),
            Job::crc32c(u64::MAX, 2),
            Job::fill(4000, 97, 0),
            Job::fill(u64::MAX - 1, 4, 0),
            Job::copy(0, 4095, 2),
            Job::copy(4095, 0, 2),
        ] {
            assert_eq!(
                execute(&mem, &win, &job, &mut s).0,
                JobStatus::OutOfWindow,
                "{job:?}"
            );
        }
        let mut all = vec![0u8; 3 * 4096];
        mem.read_bytes(0, &mut all).unwrap();
        assert!(all.iter().all(|&b| b == 0xAA));
        assert_eq!(
            execute(&mem, &win, &Job::fill(0, 4096, 1), &mut s).0,
            JobStatus::Ok
        );
        mem.read_bytes(0, &mut all).unwrap();
        assert!(all[..4096].iter().all(|&b| b == 0xAA));
        assert!(all[4096..8192].iter().all(|&b| b == 1));
        assert!(all[8192..].iter().all(|&b| b == 0xAA));
        let bad = Job {
            opcode: 77,
            ..Default::default()
        };
        assert_eq!(execute(&mem, &win, &bad, &mut s).0, JobStatus::BadOpcode);
    }

    #[test]
    fn checksum_matches_reference() {
        let mem = Mmio::anonymous(4096).unwrap();
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        mem.write_bytes(0, &data).unwrap();
        let win = Span { base: 0, len: 4096 };
        let mut s = [0u8; 100];
        let (st, r) = execute(&mem, &win, &Job::checksum(0, 1001), &mut s);
        assert_eq!((st, r), (JobStatus::Ok, checksum(0, &data)));
    }
}
