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
//!                               │  lookup: metadata table (layout.rs) in a file QEMU maps as
//!                               │          ivshmem BAR 2 (--cache-meta), or a memfd
//!                               │          validated against the host-private shadow
//!                               │  slot GPA ──SlotMap (mapping.rs)──▶ pool host address
//!                               │  eviction: per-set CLOCK (policy.rs) or 2Q (twoq.rs); dirty → write-back first
//!                               └  counters (stats.rs) ──▶ vswitch blk serve stats
//! ```
//!
//! Where the "VM memory" is. A vhost-user back end cannot add memory to
//! the guest's address space by itself (QEMU's memory map comes from
//! QEMU), so the device puts the metadata table in a file and QEMU maps
//! that file into the guest:
//!
//! ```text
//! vswitch blk serve --socket S --backend B --cache 8M --cache-meta /dev/shm/cmeta
//!   → logs: -object memory-backend-file,id=vswitch-cmeta0,mem-path=/dev/shm/cmeta,size=131072,share=on
//!           -device ivshmem-plain,memdev=vswitch-cmeta0
//! qemu-system-x86_64 ... <those arguments>
//!   → guest: PCI device 1af4:1110 (ivshmem), BAR 2 = the table, byte for byte
//! ```
//!
//! [`mapping::SharedRegion::open_file`] creates (or reuses, never shrinks)
//! the file on tmpfs (/dev/shm) or hugetlbfs and maps it `MAP_SHARED`;
//! QEMU's `memory-backend-file,share=on` maps the same pages, and
//! `ivshmem-plain` makes them the guest's BAR 2, so a guest store is seen
//! by the host's next lookup and a host rewrite by the guest's next load
//! (`tests/blk_cache_qemu.rs` shows both from a real guest). The region is
//! a power of two, at least one page ([`mapping::guest_region_len`]):
//! a PCI BAR must be (QEMU 7.2 aborts on `pci_register_bar: Assertion
//! is_power_of_2(size)` otherwise); the bytes past the table are zero and
//! unused. Without `--cache-meta` the table is an anonymous memfd no guest
//! maps. The slot pool stays host memory: the slot addresses in the
//! entries are guest-physical addresses of a window at
//! [`cached::DEFAULT_SLOT_GPA_BASE`] that the first→second table
//! translates, not mapped into the guest. Either way the host treats the
//! table as untrusted guest memory: only byte copies in and out, never a
//! Rust reference, and every entry validated before use.
//!
//! For a guest driver: BAR 2 offset 0 holds the 64-byte header (magic
//! `"VSWCACHE"`, version 1, entry_len 32, ways, sets, block_size 4096,
//! slot_gpa_base, CRC32C), followed by `ways * sets` 32-byte entries;
//! block `b`'s entry, if cached, is one of the `ways` entries of set
//! `((b * 0x9E3779B97F4A7C15 mod 2^64) * sets) >> 64`. Byte layout in
//! [`layout`]. Entries are the host's to write; a guest store is, at
//! best, ignored and repaired.
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
pub mod twoq;

pub use cached::{CacheConfig, CachedBackend, Eviction, WriteMode, BLOCK};
pub use stats::{CacheCounters, CacheStats};
