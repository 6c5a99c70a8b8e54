//! The virtualized block cache, with its metadata in VM memory.
//!
//! Implements the published design: the cache *metadata* maps virtual
//! addresses (block numbers of the virtual disk) to *first physical
//! addresses* (guest-physical addresses of cache slots); a table configured
//! once per device maps first physical addresses to *second physical
//! addresses* (host memory of the cache pool, hugepages when available);
//! data is read and written at the second physical address. A hit is served
//! on the host, by a copy between the pool slot and the request's guest
//! buffers, without touching the backend.
//!
//! ```text
//!  BlkDevice ──submit/poll──▶ CachedBackend ──miss / write-through / write-back──▶ inner Backend
//!                               │  lookup: metadata table (guest-shared memfd, layout.rs)
//!                               │          validated against the host-private shadow
//!                               │  slot GPA ──SlotMap (mapping.rs)──▶ pool host address
//!                               │  eviction: per-set CLOCK (policy.rs); dirty → write-back first
//!                               └  counters (stats.rs) ──▶ vswitch blk serve stats
//! ```
//!
//! Where the "VM memory" is. A vhost-user back end cannot add memory to
//! the guest's address space by itself (QEMU's memory map comes from QEMU).
//! So the metadata table and the slot pool are each a shared memfd
//! ([`mapping::SharedRegion`]) that the device creates and maps; the fds
//! are what a VMM would map into the guest (as a device memory BAR or a
//! reserved RAM range at [`cached::DEFAULT_SLOT_GPA_BASE`]), and the slot
//! addresses in the metadata are guest-physical addresses in that window.
//! This crate does not ask QEMU to map them (no guest driver uses them
//! yet); it treats both regions exactly as untrusted guest memory: only
//! byte copies in and out, never a Rust reference, and every entry
//! validated before use.
//!
//! Threat model. The guest may write anything into the metadata at any
//! time: torn entries, out-of-range slots, wrong checksums, duplicates, an
//! entry pointing block A at block B's slot. Every entry the host uses
//! passes: CRC32C over the entry, reserved bits zero, slot address equal to
//! the address fixed by the entry's position (so it is in range by
//! construction), the first→second mapping exists, and generation, owner
//! block and dirty bit equal the host-private shadow of that slot (16 bytes
//! per slot, never shared). A failing entry is counted
//! ([`stats::CacheCounters::bad_entries`]), treated as a miss and rewritten
//! from the shadow; since the shadow is authoritative, the guest still gets
//! its correct (possibly dirty) data and can never make the host touch
//! memory outside the pool. What a guest *can* do is waste its own cache.
//!
//! Crates: `crc32c` (hardware CRC32C) for entry checksums, already used by
//! the accelerator code.

pub mod cached;
pub mod layout;
pub mod mapping;
pub mod policy;
pub mod stats;
#[cfg(test)]
mod tests;

pub use cached::{CacheConfig, CachedBackend, WriteMode, BLOCK};
pub use stats::{CacheCounters, CacheStats};
