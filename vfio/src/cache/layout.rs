//! The cache metadata table as it lies in the guest-shared region: a
//! versioned header and a set-associative array of fixed-size entries.
//!
//! ```text
//! offset  size  header (64 bytes, little endian)
//!   0      8    magic  "VSWCACHE"
//!   8      4    version (1)
//!  12      4    entry_len (32)
//!  16      4    ways
//!  20      4    sets
//!  24      4    block_size (4096)
//!  28      4    reserved (0)
//!  32      8    slot_gpa_base: first physical address of slot 0
//!  40     20    reserved (0)
//!  60      4    crc32c of bytes 0..60
//!
//! entry i = set * ways + way, at 64 + 32 * i
//!   0      8    block: virtual address (virtual-disk block number)
//!   8      8    slot_gpa: first physical address of the cache slot
//!  16      4    generation (bumped by the host on every change of the slot)
//!  20      4    flags: bit 0 valid, bit 1 dirty
//!  24      4    reserved (0)
//!  28      4    crc32c of bytes 0..28
//! ```
//!
//! Where a guest finds it: with `vswitch blk serve --cache-meta FILE` and
//! the QEMU arguments the server logs, the table starts at offset 0 of BAR 2
//! of the guest's ivshmem PCI device (1af4:1110); see the module docs of
//! `cache`. Block `b`'s entry, if any, is one of the `ways` entries of set
//! `((b * 0x9E3779B97F4A7C15 mod 2^64) * sets) >> 64` (Fibonacci hash, then
//! multiply-shift), way order unspecified.
//!
//! Entry `i` always describes slot `i`: the set/way position fixes the slot,
//! so `slot_gpa` must equal `slot_gpa_base + i * block_size`. The guest can
//! write anything here; [`Entry::parse`] checks the checksum, and the cache
//! (`cached.rs`) checks the rest against its private per-slot shadow before a
//! single byte of slot memory is touched.

use std::ptr;

/// `"VSWCACHE"`.
pub const MAGIC: [u8; 8] = *b"VSWCACHE";
/// Layout version this code reads and writes.
pub const VERSION: u32 = 1;
/// Header bytes.
pub const HEADER_LEN: usize = 64;
/// Bytes per entry.
pub const ENTRY_LEN: usize = 32;

/// Entry flag: the entry maps a block.
pub const FLAG_VALID: u32 = 1;
/// Entry flag: the slot holds data not yet in the backend.
pub const FLAG_DIRTY: u32 = 2;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..12;
    pub const ENTRY_LEN: Range<usize> = 12..16;
    pub const WAYS: Range<usize> = 16..20;
    pub const SETS: Range<usize> = 20..24;
    pub const BLOCK_SIZE: Range<usize> = 24..28;
    pub const SLOT_BASE: Range<usize> = 32..40;
    pub const HDR_CRC: Range<usize> = 60..64;

    pub const E_BLOCK: Range<usize> = 0..8;
    pub const E_SLOT: Range<usize> = 8..16;
    pub const E_GEN: Range<usize> = 16..20;
    pub const E_FLAGS: Range<usize> = 20..24;
    pub const E_CRC: Range<usize> = 28..32;
}

fn le32(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_le_bytes(b[r].try_into().expect("4-byte field"))
}

fn le64(b: &[u8], r: std::ops::Range<usize>) -> u64 {
    u64::from_le_bytes(b[r].try_into().expect("8-byte field"))
}

/// The table header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Ways per set.
    pub ways: u32,
    /// Sets.
    pub sets: u32,
    /// Bytes per block and per slot.
    pub block_size: u32,
    /// First physical address of slot 0.
    pub slot_gpa_base: u64,
}

impl Header {
    /// Parses a header; `None` if the magic, version, entry size or
    /// checksum is wrong.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Option<Header> {
        if b[field::MAGIC] != MAGIC
            || le32(b, field::VERSION) != VERSION
            || le32(b, field::ENTRY_LEN) as usize != ENTRY_LEN
            || crc32c::crc32c(&b[..field::HDR_CRC.start]) != le32(b, field::HDR_CRC)
        {
            return None;
        }
        Some(Header {
            ways: le32(b, field::WAYS),
            sets: le32(b, field::SETS),
            block_size: le32(b, field::BLOCK_SIZE),
            slot_gpa_base: le64(b, field::SLOT_BASE),
        })
    }

    /// Writes the header.
    pub fn emit(&self, b: &mut [u8; HEADER_LEN]) {
        b.fill(0);
        b[field::MAGIC].copy_from_slice(&MAGIC);
        b[field::VERSION].copy_from_slice(&VERSION.to_le_bytes());
        b[field::ENTRY_LEN].copy_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
        b[field::WAYS].copy_from_slice(&self.ways.to_le_bytes());
        b[field::SETS].copy_from_slice(&self.sets.to_le_bytes());
        b[field::BLOCK_SIZE].copy_from_slice(&self.block_size.to_le_bytes());
        b[field::SLOT_BASE].copy_from_slice(&self.slot_gpa_base.to_le_bytes());
        let crc = crc32c::crc32c(&b[..field::HDR_CRC.start]);
        b[field::HDR_CRC].copy_from_slice(&crc.to_le_bytes());
    }

    /// Table bytes: header plus `ways * sets` entries.
    pub fn table_len(&self) -> usize {
        HEADER_LEN + ENTRY_LEN * self.ways as usize * self.sets as usize
    }
}

/// One table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Virtual-disk block number.
    pub block: u64,
    /// First physical address of the slot.
    pub slot_gpa: u64,
    /// Generation.
    pub generation: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
}

impl Entry {
    /// Parses an entry; `None` if its checksum does not match (torn or
    /// forged) or a reserved bit is set.
    pub fn parse(b: &[u8; ENTRY_LEN]) -> Option<Entry> {
        if crc32c::crc32c(&b[..field::E_CRC.start]) != le32(b, field::E_CRC) || b[24..28] != [0; 4]
        {
            return None;
        }
        let flags = le32(b, field::E_FLAGS);
        if flags & !(FLAG_VALID | FLAG_DIRTY) != 0 {
            return None;
        }
        Some(Entry {
            block: le64(b, field::E_BLOCK),
            slot_gpa: le64(b, field::E_SLOT),
            generation: le32(b, field::E_GEN),
            flags,
        })
    }

    /// Writes the entry with its checksum.
    pub fn emit(&self, b: &mut [u8; ENTRY_LEN]) {
        b.fill(0);
        b[field::E_BLOCK].copy_from_slice(&self.block.to_le_bytes());
        b[field::E_SLOT].copy_from_slice(&self.slot_gpa.to_le_bytes());
        b[field::E_GEN].copy_from_slice(&self.generation.to_le_bytes());
        b[field::E_FLAGS].copy_from_slice(&self.flags.to_le_bytes());
        let crc = crc32c::crc32c(&b[..field::E_CRC.start]);
        b[field::E_CRC].copy_from_slice(&crc.to_le_bytes());
    }

    /// Only the block field, for the lookup's first filter.
    pub fn peek_block(b: &[u8; ENTRY_LEN]) -> u64 {
        le64(b, field::E_BLOCK)
    }
}

/// The table inside a guest-shared mapping. Accesses copy whole entries
/// in and out (never a Rust reference into memory the guest may change).
#[derive(Debug)]
pub struct MetaTable {
    base: *mut u8,
    entries: usize,
}

// SAFETY: a plain pointer into a shared mapping owned by the cache, which
// keeps it alive; only the poller thread uses it.
unsafe impl Send for MetaTable {}

impl MetaTable {
    /// Wraps `len` bytes at `base` and writes the header and empty entries.
    ///
    /// # Safety
    /// `base..base+hdr.table_len()` must be a live, writable mapping that
    /// outlives the table.
    pub unsafe fn init(base: *mut u8, hdr: &Header) -> MetaTable {
        let mut h = [0u8; HEADER_LEN];
        hdr.emit(&mut h);
        // SAFETY: the header lies inside the mapping (caller's contract).
        unsafe { ptr::copy_nonoverlapping(h.as_ptr(), base, HEADER_LEN) };
        let t = MetaTable {
            base,
            entries: hdr.ways as usize * hdr.sets as usize,
        };
        for i in 0..t.entries {
            t.write(
                i,
                &Entry {
                    block: 0,
                    slot_gpa: 0,
                    generation: 0,
                    flags: 0,
                },
            );
        }
        t
    }

    /// Rewrites the header (after the slot window moved).
    pub fn write_header(&self, hdr: &Header) {
        let mut h = [0u8; HEADER_LEN];
        hdr.emit(&mut h);
        // SAFETY: the header lies inside the mapping (`init`'s contract).
        unsafe { ptr::copy_nonoverlapping(h.as_ptr(), self.base, HEADER_LEN) };
    }

    /// Copies the header out and parses it.
    pub fn header(&self) -> Option<Header> {
        let mut h = [0u8; HEADER_LEN];
        // SAFETY: as in `write_header`.
        unsafe { ptr::copy_nonoverlapping(self.base, h.as_mut_ptr(), HEADER_LEN) };
        Header::parse(&h)
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True if the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Copies entry `i` out (the bytes as the guest left them); `None` if
    /// `i` is out of range.
    #[inline]
    pub fn read_raw(&self, i: usize) -> Option<[u8; ENTRY_LEN]> {
        if i >= self.entries {
            return None;
        }
        let mut b = [0u8; ENTRY_LEN];
        // SAFETY: `i < entries`, so the 32 bytes lie inside the mapping; a
        // byte copy, as the guest may be writing them concurrently.
        unsafe {
            ptr::copy_nonoverlapping(
                self.base.add(HEADER_LEN + i * ENTRY_LEN),
                b.as_mut_ptr(),
                ENTRY_LEN,
            )
        };
        Some(b)
    }

    /// Writes entry `i` (ignored if out of range).
    #[inline]
    pub fn write(&self, i: usize, e: &Entry) {
        if i >= self.entries {
            return;
        }
        let mut b = [0u8; ENTRY_LEN];
        e.emit(&mut b);
        // SAFETY: as in `read_raw`.
        unsafe {
            ptr::copy_nonoverlapping(
                b.as_ptr(),
                self.base.add(HEADER_LEN + i * ENTRY_LEN),
                ENTRY_LEN,
            )
        };
    }

    /// Overwrites entry `i` with raw bytes (tests forge entries with it, as
    /// a guest would).
    pub fn write_raw(&self, i: usize, b: &[u8; ENTRY_LEN]) {
        if i >= self.entries {
            return;
        }
        // SAFETY: as in `read_raw`.
        unsafe {
            ptr::copy_nonoverlapping(
                b.as_ptr(),
                self.base.add(HEADER_LEN + i * ENTRY_LEN),
                ENTRY_LEN,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ENTRY_BYTES: [u8; 32] = [
        0x07, 0, 0, 0, 0, 0, 0, 0, // block 7
        0x00, 0x10, 0, 0, 0x10, 0, 0, 0, // slot gpa 0x10_0000_1000
        0x03, 0, 0, 0, // generation 3
        0x03, 0, 0, 0, // valid | dirty
        0, 0, 0, 0, // reserved
        0, 0, 0, 0, // crc, filled in by the test
    ];

    fn entry_bytes() -> [u8; 32] {
        let mut b = ENTRY_BYTES;
        let crc = crc32c::crc32c(&b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn parse_entry() {
        let e = Entry::parse(&entry_bytes()).unwrap();
        assert_eq!(
            e,
            Entry {
                block: 7,
                slot_gpa: 0x10_0000_1000,
                generation: 3,
                flags: FLAG_VALID | FLAG_DIRTY
            }
        );
    }

    #[test]
    fn emit_entry() {
        let mut b = [0u8; 32];
        Entry::parse(&entry_bytes()).unwrap().emit(&mut b);
        assert_eq!(b, entry_bytes());
    }

    #[test]
    fn torn_or_forged_entry() {
        let good = entry_bytes();
        for i in 0..32 {
            let mut b = good;
            b[i] ^= 0x40;
            assert_eq!(Entry::parse(&b), None, "byte {i} flipped");
        }
        // Garbage never panics.
        let mut x = 0x1234_5678u32;
        for _ in 0..10_000 {
            let mut b = [0u8; 32];
            for v in &mut b {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = x as u8;
            }
            let _ = Entry::parse(&b);
        }
    }

    #[test]
    fn header_roundtrip() {
        let h = Header {
            ways: 8,
            sets: 16,
            block_size: 4096,
            slot_gpa_base: 1 << 40,
        };
        let mut b = [0u8; HEADER_LEN];
        h.emit(&mut b);
        assert_eq!(&b[..8], b"VSWCACHE");
        assert_eq!(Header::parse(&b), Some(h));
        assert_eq!(h.table_len(), 64 + 32 * 128);
        b[8] = 2;
        assert_eq!(Header::parse(&b), None, "version 2 refused");
        // Garbage headers are refused, never a panic.
        let mut x = 0x9876_5431u32;
        for _ in 0..10_000 {
            let mut g = [0u8; HEADER_LEN];
            for v in &mut g {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = x as u8;
            }
            g[..8].copy_from_slice(&MAGIC);
            assert_eq!(Header::parse(&g), None);
        }
    }
}
