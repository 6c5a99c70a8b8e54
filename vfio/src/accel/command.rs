//! Management commands: their opcodes, arguments, results and completion
//! codes, and the parser that turns raw mailbox words into a [`Command`].
//!
//! Arguments are the 16 `MBOX_ARG` words. Unused argument words must be zero
//! (a non-zero reserved word is [`Completion::ReservedNonZero`]), so a future
//! version can give them meaning without old devices misreading them.
//!
//! | opcode | command     | arguments                                                        | results |
//! |--------|-------------|------------------------------------------------------------------|---------|
//! | 1      | QUERY_CAPS  | —                                                                | cu, max_vfs, queues, doorbells, vectors, granule, mem_size, cu_rate, ring_size, free_cu_mask, free_mem |
//! | 2      | CREATE_VF   | cu_count, mem_size, queues, doorbells, vectors, mem_base, cu_mask, queue_base | vf, then the QUERY_VF results |
//! | 3      | DESTROY_VF  | vf                                                               | — |
//! | 4      | SET_QUOTA   | vf, permille (1..=1000)                                          | — |
//! | 5      | QUERY_VF    | vf                                                               | see [`VfInfo`] |
//! | 6      | RESET_VF    | vf                                                               | — |
//!
//! In CREATE_VF, `mem_base` and `queue_base` equal to [`AUTO`] and `cu_mask`
//! equal to 0 let the device place the resource; any other value requests
//! that exact placement. `doorbells` 0 means one per queue; `vectors` 0 means 1.

use super::regs::MBOX_WORDS;

/// Placement value meaning "let the device choose".
pub const AUTO: u64 = u64::MAX;

/// Command opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Opcode {
    /// Read the device's capabilities and free resources.
    QueryCaps = 1,
    /// Carve a virtual function out of the free resources.
    CreateVf = 2,
    /// Return a virtual function's resources.
    DestroyVf = 3,
    /// Set a virtual function's compute-unit quota.
    SetQuota = 4,
    /// Read a virtual function's configuration and statistics.
    QueryVf = 5,
    /// Reset a virtual function: drop queued jobs, zero its memory and statistics.
    ResetVf = 6,
}

impl Opcode {
    /// Decodes an opcode register value.
    pub fn from_u32(v: u32) -> Option<Opcode> {
        Some(match v {
            1 => Opcode::QueryCaps,
            2 => Opcode::CreateVf,
            3 => Opcode::DestroyVf,
            4 => Opcode::SetQuota,
            5 => Opcode::QueryVf,
            6 => Opcode::ResetVf,
            _ => return None,
        })
    }
}

/// Completion codes written to `MBOX_COMPLETION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Completion {
    /// The command succeeded.
    Ok = 0,
    /// The opcode is not a known command.
    UnknownOpcode = 1,
    /// An argument is out of its valid range.
    InvalidArgument = 2,
    /// The VF number names no existing VF.
    NoSuchVf = 3,
    /// The request needs more of a resource than is free (overcommit).
    NoResources = 4,
    /// The requested placement overlaps resources of another VF.
    Overlap = 5,
    /// Every VF slot is in use.
    NoFreeVf = 6,
    /// A reserved (unused) argument word is not zero.
    ReservedNonZero = 7,
}

impl Completion {
    /// Decodes a completion register value.
    pub fn from_u32(v: u32) -> Option<Completion> {
        Some(match v {
            0 => Completion::Ok,
            1 => Completion::UnknownOpcode,
            2 => Completion::InvalidArgument,
            3 => Completion::NoSuchVf,
            4 => Completion::NoResources,
            5 => Completion::Overlap,
            6 => Completion::NoFreeVf,
            7 => Completion::ReservedNonZero,
            _ => return None,
        })
    }

    /// A short human-readable description.
    pub fn describe(self) -> &'static str {
        match self {
            Completion::Ok => "success",
            Completion::UnknownOpcode => "unknown command opcode",
            Completion::InvalidArgument => "invalid argument",
            Completion::NoSuchVf => "no such virtual function",
            Completion::NoResources => "not enough free resources (overcommit)",
            Completion::Overlap => "requested resources overlap another virtual function",
            Completion::NoFreeVf => "all virtual function slots are in use",
            Completion::ReservedNonZero => "reserved argument word is not zero",
        }
    }
}

impl std::fmt::Display for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.describe(), *self as u32)
    }
}

/// Resources requested by CREATE_VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfRequest {
    /// Number of compute units (0 when `cu_mask` is given).
    pub cu_count: u32,
    /// Memory window size in bytes.
    pub mem_size: u64,
    /// Number of work queues.
    pub queues: u32,
    /// Number of doorbells (0: one per queue).
    pub doorbells: u32,
    /// Number of interrupt vectors (0: one).
    pub vectors: u32,
    /// Memory window base, or [`AUTO`].
    pub mem_base: u64,
    /// Exact compute-unit mask, or 0 to let the device choose.
    pub cu_mask: u64,
    /// First work queue, or [`AUTO`].
    pub queue_base: u64,
}

impl VfRequest {
    /// A request with automatic placement.
    pub fn new(cu_count: u32, mem_size: u64, queues: u32) -> Self {
        VfRequest {
            cu_count,
            mem_size,
            queues,
            doorbells: 0,
            vectors: 0,
            mem_base: AUTO,
            cu_mask: 0,
            queue_base: AUTO,
        }
    }
}

/// A decoded management command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// QUERY_CAPS.
    QueryCaps,
    /// CREATE_VF.
    CreateVf(VfRequest),
    /// DESTROY_VF.
    DestroyVf {
        /// VF number.
        vf: u32,
    },
    /// SET_QUOTA.
    SetQuota {
        /// VF number.
        vf: u32,
        /// Share of the VF's compute units, in permille.
        permille: u32,
    },
    /// QUERY_VF.
    QueryVf {
        /// VF number.
        vf: u32,
    },
    /// RESET_VF.
    ResetVf {
        /// VF number.
        vf: u32,
    },
}

fn narrow(v: u64) -> Result<u32, Completion> {
    u32::try_from(v).map_err(|_| Completion::InvalidArgument)
}

fn reserved_zero(args: &[u64; MBOX_WORDS], used: usize) -> Result<(), Completion> {
    if args[used..].iter().any(|&w| w != 0) {
        return Err(Completion::ReservedNonZero);
    }
    Ok(())
}

impl Command {
    /// Decodes raw mailbox contents. Never panics: every combination of
    /// words yields a command or a completion code.
    pub fn parse(opcode: u32, args: &[u64; MBOX_WORDS]) -> Result<Command, Completion> {
        let op = Opcode::from_u32(opcode).ok_or(Completion::UnknownOpcode)?;
        let cmd = match op {
            Opcode::QueryCaps => {
                reserved_zero(args, 0)?;
                Command::QueryCaps
            }
            Opcode::CreateVf => {
                reserved_zero(args, 8)?;
                Command::CreateVf(VfRequest {
                    cu_count: narrow(args[0])?,
                    mem_size: args[1],
                    queues: narrow(args[2])?,
                    doorbells: narrow(args[3])?,
                    vectors: narrow(args[4])?,
                    mem_base: args[5],
                    cu_mask: args[6],
                    queue_base: args[7],
                })
            }
            Opcode::DestroyVf => {
                reserved_zero(args, 1)?;
                Command::DestroyVf {
                    vf: narrow(args[0])?,
                }
            }
            Opcode::SetQuota => {
                reserved_zero(args, 2)?;
                Command::SetQuota {
                    vf: narrow(args[0])?,
                    permille: narrow(args[1])?,
                }
            }
            Opcode::QueryVf => {
                reserved_zero(args, 1)?;
                Command::QueryVf {
                    vf: narrow(args[0])?,
                }
            }
            Opcode::ResetVf => {
                reserved_zero(args, 1)?;
                Command::ResetVf {
                    vf: narrow(args[0])?,
                }
            }
        };
        Ok(cmd)
    }

    /// Encodes the command as an opcode and argument words (the inverse of
    /// [`Command::parse`]).
    pub fn emit(&self) -> (u32, [u64; MBOX_WORDS]) {
        let mut a = [0u64; MBOX_WORDS];
        let op = match *self {
            Command::QueryCaps => Opcode::QueryCaps,
            Command::CreateVf(r) => {
                a[..8].copy_from_slice(&[
                    r.cu_count.into(),
                    r.mem_size,
                    r.queues.into(),
                    r.doorbells.into(),
                    r.vectors.into(),
                    r.mem_base,
                    r.cu_mask,
                    r.queue_base,
                ]);
                Opcode::CreateVf
            }
            Command::DestroyVf { vf } => {
                a[0] = vf.into();
                Opcode::DestroyVf
            }
            Command::SetQuota { vf, permille } => {
                a[0] = vf.into();
                a[1] = permille.into();
                Opcode::SetQuota
            }
            Command::QueryVf { vf } => {
                a[0] = vf.into();
                Opcode::QueryVf
            }
            Command::ResetVf { vf } => {
                a[0] = vf.into();
                Opcode::ResetVf
            }
        };
        (op as u32, a)
    }
}

/// Device capabilities and free resources (QUERY_CAPS results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    /// Compute units.
    pub cu: u32,
    /// Maximum virtual functions.
    pub max_vfs: u32,
    /// Work queues.
    pub queues: u32,
    /// Doorbells.
    pub doorbells: u32,
    /// Interrupt vectors.
    pub vectors: u32,
    /// Memory granule in bytes.
    pub granule: u32,
    /// Device memory in bytes.
    pub mem_size: u64,
    /// Bytes per second one compute unit processes.
    pub cu_rate: u64,
    /// Descriptors per work-queue ring.
    pub ring_size: u32,
    /// Compute units not assigned to any VF.
    pub free_cu_mask: u64,
    /// Bytes of device memory not assigned to any VF.
    pub free_mem: u64,
}

impl Caps {
    /// Encodes as result words.
    pub fn to_words(&self) -> [u64; MBOX_WORDS] {
        let mut r = [0u64; MBOX_WORDS];
        r[..11].copy_from_slice(&[
            self.cu.into(),
            self.max_vfs.into(),
            self.queues.into(),
            self.doorbells.into(),
            self.vectors.into(),
            self.granule.into(),
            self.mem_size,
            self.cu_rate,
            self.ring_size.into(),
            self.free_cu_mask,
            self.free_mem,
        ]);
        r
    }

    /// Decodes result words (values wider than a field are truncated).
    pub fn from_words(r: &[u64; MBOX_WORDS]) -> Self {
        Caps {
            cu: r[0] as u32,
            max_vfs: r[1] as u32,
            queues: r[2] as u32,
            doorbells: r[3] as u32,
            vectors: r[4] as u32,
            granule: r[5] as u32,
            mem_size: r[6],
            cu_rate: r[7],
            ring_size: r[8] as u32,
            free_cu_mask: r[9],
            free_mem: r[10],
        }
    }
}

/// A virtual function's configuration and statistics (QUERY_VF results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VfInfo {
    /// VF number.
    pub vf: u32,
    /// Compute-unit mask.
    pub cu_mask: u64,
    /// Memory window base.
    pub mem_base: u64,
    /// Memory window size.
    pub mem_size: u64,
    /// First work queue.
    pub queue_base: u32,
    /// Number of work queues.
    pub queue_count: u32,
    /// First doorbell.
    pub doorbell_base: u32,
    /// Number of doorbells.
    pub doorbell_count: u32,
    /// First interrupt vector.
    pub vector_base: u32,
    /// Number of interrupt vectors.
    pub vector_count: u32,
    /// Quota in permille of the VF's compute units.
    pub quota: u32,
    /// Resets since creation.
    pub resets: u32,
    /// Jobs completed.
    pub jobs: u64,
    /// Bytes processed.
    pub bytes: u64,
    /// Jobs failed.
    pub failed: u64,
    /// Modelled compute time consumed, in nanoseconds.
    pub busy_ns: u64,
}

impl VfInfo {
    /// Encodes as result words.
    pub fn to_words(&self) -> [u64; MBOX_WORDS] {
        let mut r = [0u64; MBOX_WORDS];
        r.copy_from_slice(&[
            self.vf.into(),
            self.cu_mask,
            self.mem_base,
            self.mem_size,
            self.queue_base.into(),
            self.queue_count.into(),
            self.doorbell_base.into(),
            self.doorbell_count.into(),
            self.vector_base.into(),
            self.vector_count.into(),
            self.quota.into(),
            self.resets.into(),
            self.jobs,
            self.bytes,
            self.failed,
            self.busy_ns,
        ]);
        r
    }

    /// Decodes result words (values wider than a field are truncated).
    pub fn from_words(r: &[u64; MBOX_WORDS]) -> Self {
        VfInfo {
            vf: r[0] as u32,
            cu_mask: r[1],
            mem_base: r[2],
            mem_size: r[3],
            queue_base: r[4] as u32,
            queue_count: r[5] as u32,
            doorbell_base: r[6] as u32,
            doorbell_count: r[7] as u32,
            vector_base: r[8] as u32,
            vector_count: r[9] as u32,
            quota: r[10] as u32,
            resets: r[11] as u32,
            jobs: r[12],
            bytes: r[13],
            failed: r[14],
            busy_ns: r[15],
        }
    }

    /// Number of compute units.
    pub fn cu_count(&self) -> u32 {
        self.cu_mask.count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_emit_roundtrip() {
        let cmds = [
            Command::QueryCaps,
            Command::CreateVf(VfRequest::new(2, 1 << 20, 4)),
            Command::DestroyVf { vf: 3 },
            Command::SetQuota {
                vf: 1,
                permille: 500,
            },
            Command::QueryVf { vf: 7 },
            Command::ResetVf { vf: 0 },
        ];
        for c in cmds {
            let (op, a) = c.emit();
            assert_eq!(Command::parse(op, &a), Ok(c));
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        let z = [0u64; MBOX_WORDS];
        assert_eq!(Command::parse(0, &z), Err(Completion::UnknownOpcode));
        assert_eq!(Command::parse(99, &z), Err(Completion::UnknownOpcode));
        let mut a = z;
        a[1] = 5;
        assert_eq!(
            Command::parse(Opcode::DestroyVf as u32, &a),
            Err(Completion::ReservedNonZero)
        );
        let mut a = z;
        a[0] = 1 << 40;
        assert_eq!(
            Command::parse(Opcode::QueryVf as u32, &a),
            Err(Completion::InvalidArgument)
        );
        let mut a = z;
        a[15] = 1;
        assert_eq!(
            Command::parse(Opcode::QueryCaps as u32, &a),
            Err(Completion::ReservedNonZero)
        );
    }

    #[test]
    fn parse_garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let op = (next() % 10) as u32;
            let mut a = [0u64; MBOX_WORDS];
            for w in a.iter_mut() {
                *w = if next() % 3 == 0 { next() } else { 0 };
            }
            let _ = Command::parse(op, &a);
        }
    }
}
