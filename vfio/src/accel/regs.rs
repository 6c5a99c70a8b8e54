//! The accelerator's register map: the contract between the host driver and
//! the device's configuration module.
//!
//! The physical function exposes three memory regions:
//!
//! * **BAR0** ([`BAR0_SIZE`] bytes): identification, the management-command
//!   mailbox, the capability block and one configuration block per virtual
//!   function. All registers are little-endian, naturally aligned, and must
//!   be accessed with loads/stores of their own width.
//! * **BAR2** (device memory, `CAPS_MEM_SIZE` bytes): carved into per-VF
//!   memory windows of [`MEM_GRANULE`]-aligned size.
//! * **BAR4** (queue pages, [`QUEUE_PAGE`] bytes per work queue): each page
//!   holds one work queue's doorbell, counters and descriptor ring (see
//!   [`queue`]).
//!
//! ```text
//! BAR0
//! 0x0000 ID              u32 RO  DEVICE_ID ("ACC1")
//! 0x0004 VERSION         u32 RO  register map version (1)
//! 0x0008 DEV_STATUS      u32 RO  bit0 READY
//! 0x000C DEV_PID         u32 RO  process id of the emulated device (0 on hardware)
//! 0x0010 HEARTBEAT       u64 RO  incremented by the device's service loop
//! 0x0040 MBOX_LOCK       u32 RW  host-side ownership token (compare-and-swap 0 -> token)
//! 0x0044 MBOX_OPCODE     u32 RW  command opcode (see command::Opcode)
//! 0x0048 MBOX_DOORBELL   u32 RW  host writes a new sequence number to submit
//! 0x004C MBOX_STATUS     u32 RO  0 idle, 1 busy, 2 done
//! 0x0050 MBOX_SEQ_DONE   u32 RO  sequence number of the last completed command
//! 0x0054 MBOX_COMPLETION u32 RO  completion code of that command
//! 0x0080 MBOX_ARG[16]    u64 RW  command arguments
//! 0x0100 MBOX_RESULT[16] u64 RO  command results
//! 0x0200 CAPS block      RO  (CAPS_* offsets)
//! 0x1000 + vf*0x80       per-VF configuration block (VF_* offsets)
//! 0x3000 + v*4   IRQ_COUNT[256] u32 RO  interrupt counter of vector v
//! ```
//!
//! Interrupts: the emulated device raises vector `v` by incrementing
//! `IRQ_COUNT[v]` and waking futex waiters on that word (the shared-memory
//! stand-in for MSI-X delivered to an eventfd, which is what VFIO gives for a
//! real device: see `pci::device::Device::enable_irq`). Work queue `i` of a
//! VF signals the VF's vector `vector_base + i % vector_count` when jobs
//! complete.

/// Size of the physical function's BAR0.
pub const BAR0_SIZE: usize = 0x4000;
/// Value of the identification register.
pub const DEVICE_ID: u32 = 0x3143_4341; // "ACC1" little-endian
/// Register-map version.
pub const VERSION: u32 = 1;

/// Identification register.
pub const ID: usize = 0x0000;
/// Register-map version register.
pub const REG_VERSION: usize = 0x0004;
/// Device status: bit 0 set once the device serves the mailbox.
pub const DEV_STATUS: usize = 0x0008;
/// `DEV_STATUS` bit: the device is ready.
pub const DEV_STATUS_READY: u32 = 1;
/// Process id of the emulated device (lets a host detect a dead device).
pub const DEV_PID: usize = 0x000C;
/// Heartbeat counter, incremented by the device's service loop.
pub const HEARTBEAT: usize = 0x0010;

/// Mailbox ownership token (compare-and-swap from 0).
pub const MBOX_LOCK: usize = 0x0040;
/// Command opcode.
pub const MBOX_OPCODE: usize = 0x0044;
/// Command doorbell: the host writes a sequence number different from
/// `MBOX_SEQ_DONE` to submit the command in the mailbox.
pub const MBOX_DOORBELL: usize = 0x0048;
/// Mailbox status (`MBOX_IDLE`, `MBOX_BUSY`, `MBOX_DONE`).
pub const MBOX_STATUS: usize = 0x004C;
/// Sequence number of the last completed command.
pub const MBOX_SEQ_DONE: usize = 0x0050;
/// Completion code of the last completed command (see `command::Completion`).
pub const MBOX_COMPLETION: usize = 0x0054;
/// First argument register; argument `i` is at `MBOX_ARG + 8 * i`.
pub const MBOX_ARG: usize = 0x0080;
/// First result register; result `i` is at `MBOX_RESULT + 8 * i`.
pub const MBOX_RESULT: usize = 0x0100;
/// Number of argument and of result registers.
pub const MBOX_WORDS: usize = 16;
/// `MBOX_STATUS`: no command has been submitted yet.
pub const MBOX_IDLE: u32 = 0;
/// `MBOX_STATUS`: a command is executing.
pub const MBOX_BUSY: u32 = 1;
/// `MBOX_STATUS`: the command of `MBOX_SEQ_DONE` has completed.
pub const MBOX_DONE: u32 = 2;

/// Number of compute units (u32).
pub const CAPS_CU: usize = 0x0200;
/// Maximum number of virtual functions (u32).
pub const CAPS_MAX_VFS: usize = 0x0204;
/// Number of work queues (u32).
pub const CAPS_QUEUES: usize = 0x0208;
/// Number of doorbells (u32).
pub const CAPS_DOORBELLS: usize = 0x020C;
/// Number of interrupt vectors (u32).
pub const CAPS_VECTORS: usize = 0x0210;
/// Memory allocation granule in bytes (u32).
pub const CAPS_MEM_GRANULE: usize = 0x0214;
/// Device memory size in bytes (u64).
pub const CAPS_MEM_SIZE: usize = 0x0218;
/// Throughput of one compute unit in bytes per second (u64).
pub const CAPS_CU_RATE: usize = 0x0220;
/// Descriptors per work queue ring (u32).
pub const CAPS_RING_SIZE: usize = 0x0228;

/// Start of the per-VF configuration blocks.
pub const VF_BASE: usize = 0x1000;
/// Size of one per-VF configuration block.
pub const VF_STRIDE: usize = 0x80;
/// Hard upper bound of VFs the register map has room for.
pub const MAX_VFS: usize = 64;
/// Per-VF: enable (u32, 1 when the VF exists).
pub const VF_ENABLE: usize = 0x00;
/// Per-VF: compute-unit quota in permille of the VF's compute units (u32).
pub const VF_QUOTA: usize = 0x04;
/// Per-VF: memory window base in device memory (u64).
pub const VF_MEM_BASE: usize = 0x08;
/// Per-VF: memory window size (u64).
pub const VF_MEM_SIZE: usize = 0x10;
/// Per-VF: compute-unit mask (u64, bit i = compute unit i).
pub const VF_CU_MASK: usize = 0x18;
/// Per-VF: first work queue (u32).
pub const VF_QUEUE_BASE: usize = 0x20;
/// Per-VF: number of work queues (u32).
pub const VF_QUEUE_COUNT: usize = 0x24;
/// Per-VF: first doorbell (u32).
pub const VF_DOORBELL_BASE: usize = 0x28;
/// Per-VF: number of doorbells (u32).
pub const VF_DOORBELL_COUNT: usize = 0x2C;
/// Per-VF: first interrupt vector (u32).
pub const VF_VECTOR_BASE: usize = 0x30;
/// Per-VF: number of interrupt vectors (u32).
pub const VF_VECTOR_COUNT: usize = 0x34;
/// Per-VF: number of resets since creation (u32).
pub const VF_RESETS: usize = 0x38;
/// End of the configuration words of a VF block; statistics follow.
pub const VF_CONFIG_END: usize = 0x40;
/// Per-VF statistic: jobs completed successfully (u64).
pub const VF_STAT_JOBS: usize = 0x40;
/// Per-VF statistic: bytes processed (u64).
pub const VF_STAT_BYTES: usize = 0x48;
/// Per-VF statistic: jobs failed (u64).
pub const VF_STAT_FAILED: usize = 0x50;
/// Per-VF statistic: modelled compute time consumed, in nanoseconds (u64).
pub const VF_STAT_BUSY_NS: usize = 0x58;

/// Offset of register `reg` in the block of virtual function `vf`.
pub const fn vf_reg(vf: usize, reg: usize) -> usize {
    VF_BASE + vf * VF_STRIDE + reg
}

/// Byte range of the configuration part of BAR0 (capabilities and the
/// configuration words of every VF block, statistics excluded): what a failed
/// command must leave unchanged.
pub fn config_words() -> impl Iterator<Item = usize> {
    let caps = (CAPS_CU..CAPS_RING_SIZE + 4).step_by(4);
    let vfs = (0..MAX_VFS).flat_map(|vf| (0..VF_CONFIG_END).step_by(4).map(move |r| vf_reg(vf, r)));
    caps.chain(vfs)
}

/// Start of the interrupt counters (one u32 per vector).
pub const IRQ_BASE: usize = 0x3000;
/// Number of interrupt vectors the register map has room for.
pub const MAX_VECTORS: usize = 256;

/// Offset of the interrupt counter of vector `v`.
pub const fn irq_count(v: usize) -> usize {
    IRQ_BASE + 4 * v
}

/// Size of one work-queue page in BAR4.
pub const QUEUE_PAGE: usize = 4096;
/// Memory allocation granule (VF windows are multiples of it, aligned to it).
pub const MEM_GRANULE: u64 = 64 * 1024;

/// Layout of one work-queue page (BAR4 offset `queue * QUEUE_PAGE`).
///
/// ```text
/// 0x000 SQ_TAIL  u32 RW  doorbell: free-running count of descriptors posted
/// 0x004 SQ_HEAD  u32 RO  free-running count of descriptors the device took
/// 0x008 CQ_DONE  u32 RO  free-running count of descriptors completed
/// 0x00C Q_STATUS u32 RO  bit0 owned by an enabled VF, bit1 error (bad doorbell)
/// 0x100 RING     RING_SIZE descriptors of DESC_SIZE bytes
/// ```
pub mod queue {
    /// Submission tail (doorbell), written by the host.
    pub const SQ_TAIL: usize = 0x000;
    /// Submission head, written by the device.
    pub const SQ_HEAD: usize = 0x004;
    /// Completion counter, written by the device.
    pub const CQ_DONE: usize = 0x008;
    /// Queue status, written by the device.
    pub const Q_STATUS: usize = 0x00C;
    /// `Q_STATUS` bit: the queue belongs to an enabled VF.
    pub const STATUS_ENABLED: u32 = 1;
    /// `Q_STATUS` bit: the host rang the doorbell with an impossible tail.
    pub const STATUS_ERROR: u32 = 2;
    /// Start of the descriptor ring.
    pub const RING: usize = 0x100;
    /// Number of descriptors in a ring.
    pub const RING_SIZE: u32 = 64;
    /// Size of one descriptor.
    pub const DESC_SIZE: usize = 48;

    /// Descriptor field offsets.
    ///
    /// ```text
    /// 0x00 OPCODE u32 (job::JobOp)     0x04 STATUS u32 (job::JobStatus, device)
    /// 0x08 SRC    u64 window offset    0x10 DST    u64 window offset
    /// 0x18 LEN    u64 bytes            0x20 ARG    u64 (seed / fill byte)
    /// 0x28 RESULT u64 (device)
    /// ```
    pub mod desc {
        /// Job opcode.
        pub const OPCODE: usize = 0x00;
        /// Job status, written by the device on completion.
        pub const STATUS: usize = 0x04;
        /// Source offset within the VF's memory window.
        pub const SRC: usize = 0x08;
        /// Destination offset within the VF's memory window.
        pub const DST: usize = 0x10;
        /// Length in bytes.
        pub const LEN: usize = 0x18;
        /// Job argument (CRC seed, fill byte).
        pub const ARG: usize = 0x20;
        /// Job result, written by the device.
        pub const RESULT: usize = 0x28;
    }

    /// Offset of descriptor slot `idx` (free-running index) in a queue page.
    pub const fn desc_offset(idx: u32) -> usize {
        RING + (idx % RING_SIZE) as usize * DESC_SIZE
    }
}

// The layout is checked at compile time.
const _: () = {
    assert!(vf_reg(MAX_VFS - 1, VF_STAT_BUSY_NS) + 8 <= IRQ_BASE);
    assert!(irq_count(MAX_VECTORS) <= BAR0_SIZE);
    assert!(IRQ_BASE.is_multiple_of(4096));
    assert!(MBOX_RESULT + 8 * MBOX_WORDS <= CAPS_CU);
    assert!(MBOX_ARG + 8 * MBOX_WORDS <= MBOX_RESULT);
    assert!(queue::desc_offset(queue::RING_SIZE - 1) + queue::DESC_SIZE <= QUEUE_PAGE);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_words_cover_caps_and_vf_blocks() {
        assert_eq!(config_words().count(), 11 + MAX_VFS * (VF_CONFIG_END / 4));
    }
}
