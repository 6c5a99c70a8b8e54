//! The device-side configuration module: validates management commands
//! against the [`Partition`] and programs the per-VF configuration
//! registers of BAR0.
//!
//! Atomicity: a command is validated and applied to a copy of the partition
//! first; registers are written only after the whole command succeeded. A
//! failed command therefore leaves every configuration register, and the
//! result registers, exactly as they were.

use super::command::{Command, Completion, VfInfo};
use super::regs::{self, vf_reg, MBOX_WORDS};
use super::resources::{Partition, Physical, VfResources};
use crate::pci::mmio::Mmio;

/// What the rest of the device must do after a successful command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond the registers.
    None,
    /// A VF was created: enable its queues.
    Created(u32, VfResources),
    /// A VF was destroyed: drop its jobs, scrub its memory and queues.
    Destroyed(u32, VfResources),
    /// A VF was reset: drop its jobs, scrub its memory, queues and statistics.
    Reset(u32, VfResources),
    /// A VF's quota changed.
    Quota(u32, u32),
}

/// The configuration module of one accelerator.
#[derive(Debug)]
pub struct ConfigModule {
    part: Partition,
}

impl ConfigModule {
    /// A configuration module for an undivided device.
    pub fn new(phys: Physical) -> Self {
        ConfigModule {
            part: Partition::new(phys),
        }
    }

    /// The current partition.
    pub fn partition(&self) -> &Partition {
        &self.part
    }

    /// Writes identification and capability registers and clears every VF
    /// block (device power-on).
    pub fn power_on(&self, bar0: &Mmio) {
        bar0.write32(regs::ID, regs::DEVICE_ID);
        bar0.write32(regs::REG_VERSION, regs::VERSION);
        let c = self.part.caps();
        bar0.write32(regs::CAPS_CU, c.cu);
        bar0.write32(regs::CAPS_MAX_VFS, c.max_vfs);
        bar0.write32(regs::CAPS_QUEUES, c.queues);
        bar0.write32(regs::CAPS_DOORBELLS, c.doorbells);
        bar0.write32(regs::CAPS_VECTORS, c.vectors);
        bar0.write32(regs::CAPS_MEM_GRANULE, c.granule);
        bar0.write64(regs::CAPS_MEM_SIZE, c.mem_size);
        bar0.write64(regs::CAPS_CU_RATE, c.cu_rate);
        bar0.write32(regs::CAPS_RING_SIZE, c.ring_size);
        for vf in 0..regs::MAX_VFS {
            for r in (0..regs::VF_STRIDE).step_by(8) {
                bar0.write64(vf_reg(vf, r), 0);
            }
        }
    }

    fn program(bar0: &Mmio, vf: u32, r: Option<&VfResources>) {
        let vf = vf as usize;
        let z = VfResources {
            cu_mask: 0,
            mem: Default::default(),
            queues: Default::default(),
            doorbells: Default::default(),
            vectors: Default::default(),
            quota: 0,
            resets: 0,
        };
        let v = r.unwrap_or(&z);
        bar0.write32(vf_reg(vf, regs::VF_QUOTA), v.quota);
        bar0.write64(vf_reg(vf, regs::VF_MEM_BASE), v.mem.base);
        bar0.write64(vf_reg(vf, regs::VF_MEM_SIZE), v.mem.len);
        bar0.write64(vf_reg(vf, regs::VF_CU_MASK), v.cu_mask);
        bar0.write32(vf_reg(vf, regs::VF_QUEUE_BASE), v.queues.base as u32);
        bar0.write32(vf_reg(vf, regs::VF_QUEUE_COUNT), v.queues.len as u32);
        bar0.write32(vf_reg(vf, regs::VF_DOORBELL_BASE), v.doorbells.base as u32);
        bar0.write32(vf_reg(vf, regs::VF_DOORBELL_COUNT), v.doorbells.len as u32);
        bar0.write32(vf_reg(vf, regs::VF_VECTOR_BASE), v.vectors.base as u32);
        bar0.write32(vf_reg(vf, regs::VF_VECTOR_COUNT), v.vectors.len as u32);
        bar0.write32(vf_reg(vf, regs::VF_RESETS), v.resets);
        // Enable last, so a host that sees the VF enabled sees its resources.
        bar0.write32(vf_reg(vf, regs::VF_ENABLE), r.is_some() as u32);
    }

    /// Reads a VF's configuration (from the partition) and statistics (from
    /// the registers the job engine maintains).
    pub fn vf_info(&self, bar0: &Mmio, vf: u32) -> Option<VfInfo> {
        let r = self.part.vf(vf)?;
        let v = vf as usize;
        Some(VfInfo {
            vf,
            cu_mask: r.cu_mask,
            mem_base: r.mem.base,
            mem_size: r.mem.len,
            queue_base: r.queues.base as u32,
            queue_count: r.queues.len as u32,
            doorbell_base: r.doorbells.base as u32,
            doorbell_count: r.doorbells.len as u32,
            vector_base: r.vectors.base as u32,
            vector_count: r.vectors.len as u32,
            quota: r.quota,
            resets: r.resets,
            jobs: bar0.read64(vf_reg(v, regs::VF_STAT_JOBS)),
            bytes: bar0.read64(vf_reg(v, regs::VF_STAT_BYTES)),
            failed: bar0.read64(vf_reg(v, regs::VF_STAT_FAILED)),
            busy_ns: bar0.read64(vf_reg(v, regs::VF_STAT_BUSY_NS)),
        })
    }

    /// Validates and executes one command. On success the registers are
    /// programmed and the result words and side effect returned; on failure
    /// nothing was changed.
    pub fn execute(
        &mut self,
        bar0: &Mmio,
        cmd: &Command,
    ) -> Result<([u64; MBOX_WORDS], Effect), Completion> {
        let mut next = self.part.clone();
        let (vf, effect) = match *cmd {
            Command::QueryCaps => return Ok((self.part.caps().to_words(), Effect::None)),
            Command::QueryVf { vf } => {
                let info = self.vf_info(bar0, vf).ok_or(Completion::NoSuchVf)?;
                return Ok((info.to_words(), Effect::None));
            }
            Command::CreateVf(req) => {
                let (vf, r) = next.create(&req)?;
                (vf, Effect::Created(vf, r))
            }
            Command::DestroyVf { vf } => {
                let r = next.destroy(vf)?;
                (vf, Effect::Destroyed(vf, r))
            }
            Command::SetQuota { vf, permille } => {
                next.set_quota(vf, permille)?;
                (vf, Effect::Quota(vf, permille))
            }
            Command::ResetVf { vf } => {
                next.reset(vf)?;
                let r = *next.vf(vf).ok_or(Completion::NoSuchVf)?;
                (vf, Effect::Reset(vf, r))
            }
        };
        // Commit: the command is valid as a whole.
        debug_assert!(next.check_invariants().is_ok());
        self.part = next;
        Self::program(bar0, vf, self.part.vf(vf));
        let words = match self.vf_info(bar0, vf) {
            Some(info) => info.to_words(),
            None => [0; MBOX_WORDS],
        };
        Ok((words, effect))
    }
}

/// The device side of the mailbox: detects a rung doorbell and posts
/// completions.
#[derive(Debug, Default)]
pub struct MailboxServer;

/// A command fetched from the mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Fetched {
    /// Sequence number written to the doorbell.
    pub seq: u32,
    /// The opcode register.
    pub opcode: u32,
    /// The argument registers.
    pub args: [u64; MBOX_WORDS],
}

impl MailboxServer {
    /// Returns the submitted command, if the doorbell holds a sequence
    /// number not yet completed, and marks the mailbox busy.
    pub fn fetch(bar0: &Mmio) -> Option<Fetched> {
        let seq = bar0.read32(regs::MBOX_DOORBELL);
        if seq == bar0.read32(regs::MBOX_SEQ_DONE) {
            return None;
        }
        bar0.write32(regs::MBOX_STATUS, regs::MBOX_BUSY);
        let opcode = bar0.read32(regs::MBOX_OPCODE);
        let mut args = [0u64; MBOX_WORDS];
        for (i, a) in args.iter_mut().enumerate() {
            *a = bar0.read64(regs::MBOX_ARG + 8 * i);
        }
        Some(Fetched { seq, opcode, args })
    }

    /// Posts a completion: results (only on success), completion code, then
    /// the sequence number the host polls.
    pub fn complete(bar0: &Mmio, seq: u32, res: Result<[u64; MBOX_WORDS], Completion>) {
        let code = match res {
            Ok(words) => {
                for (i, w) in words.iter().enumerate() {
                    bar0.write64(regs::MBOX_RESULT + 8 * i, *w);
                }
                Completion::Ok
            }
            Err(c) => c,
        };
        bar0.write32(regs::MBOX_COMPLETION, code as u32);
        bar0.write32(regs::MBOX_STATUS, regs::MBOX_DONE);
        bar0.write32(regs::MBOX_SEQ_DONE, seq);
    }
}
