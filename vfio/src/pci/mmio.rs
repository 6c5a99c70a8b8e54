//! A mapped register or memory region: a BAR mapped through VFIO, or a
//! shared-memory file standing in for one.
//!
//! Every access is bounds-checked against the mapping. Register accesses are
//! single naturally-aligned atomic loads/stores, which is what an MMIO access
//! is on x86-64 and aarch64; bulk accesses copy bytes without ever forming a
//! Rust reference to memory another party may write concurrently.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Error of an out-of-range or misaligned access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    /// Offset of the access.
    pub offset: u64,
    /// Length of the access.
    pub len: u64,
    /// Size of the region.
    pub size: u64,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "access of {} bytes at offset {:#x} outside region of {:#x} bytes (or misaligned)",
            self.len, self.offset, self.size
        )
    }
}

impl std::error::Error for OutOfRange {}

/// A mapped region, unmapped on drop.
#[derive(Debug)]
pub struct Mmio {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory (or device MMIO) owned by this value;
// all accesses go through atomics or raw copies, never through references, so
// sharing it between threads is as safe as sharing it between processes.
unsafe impl Send for Mmio {}
// SAFETY: see `Send`.
unsafe impl Sync for Mmio {}

impl Mmio {
    /// Maps `len` bytes of `file` at `offset` shared and read-write.
    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: a fresh mapping chosen by the kernel (addr null) cannot
        // alias any Rust object; the fd is valid for the call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmio {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Maps `len` bytes of anonymous, zeroed, private memory (a DMA buffer or
    /// a register file for tests).
    pub fn anonymous(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh anonymous mapping cannot alias any Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmio {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true: mappings are non-empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start address of the mapping (for DMA mapping through an IOMMU).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn check(&self, offset: u64, len: u64, align: u64) -> Result<usize, OutOfRange> {
        let err = OutOfRange {
            offset,
            len,
            size: self.len as u64,
        };
        let end = offset.checked_add(len).ok_or(err)?;
        if end > self.len as u64 || !offset.is_multiple_of(align) {
            return Err(err);
        }
        Ok(offset as usize)
    }

    /// Reads the 32-bit register at `offset`.
    pub fn try_read32(&self, offset: u64) -> Result<u32, OutOfRange> {
        let off = self.check(offset, 4, 4)?;
        // SAFETY: `check` proved [off, off+4) is inside the mapping and
        // 4-aligned (the mapping is page-aligned); AtomicU32 has the layout
        // of u32 and the memory lives as long as `self`.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU32) };
        Ok(a.load(Ordering::Acquire))
    }

    /// Writes the 32-bit register at `offset`.
    pub fn try_write32(&self, offset: u64, v: u32) -> Result<(), OutOfRange> {
        let off = self.check(offset, 4, 4)?;
        // SAFETY: as in `try_read32`.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU32) };
        a.store(v, Ordering::Release);
        Ok(())
    }

    /// Reads the 64-bit register at `offset`.
    pub fn try_read64(&self, offset: u64) -> Result<u64, OutOfRange> {
        let off = self.check(offset, 8, 8)?;
        // SAFETY: `check` proved [off, off+8) is inside the mapping and
        // 8-aligned; AtomicU64 has the layout of u64.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU64) };
        Ok(a.load(Ordering::Acquire))
    }

    /// Writes the 64-bit register at `offset`.
    pub fn try_write64(&self, offset: u64, v: u64) -> Result<(), OutOfRange> {
        let off = self.check(offset, 8, 8)?;
        // SAFETY: as in `try_read64`.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU64) };
        a.store(v, Ordering::Release);
        Ok(())
    }

    /// Compare-and-swap of the 32-bit register at `offset`; returns whether
    /// it held `current` and now holds `new`.
    pub fn try_cas32(&self, offset: u64, current: u32, new: u32) -> Result<bool, OutOfRange> {
        let off = self.check(offset, 4, 4)?;
        // SAFETY: as in `try_read32`.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU32) };
        Ok(
            a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
        )
    }

    /// Sleeps while the 32-bit word at `offset` holds `expected`, until
    /// another thread or process calls [`Mmio::futex_wake`] on it (through
    /// any shared mapping of the same memory) or `timeout` passes. Returns
    /// immediately if the word already differs.
    pub fn futex_wait(
        &self,
        offset: u64,
        expected: u32,
        timeout: std::time::Duration,
    ) -> Result<(), OutOfRange> {
        let off = self.check(offset, 4, 4)?;
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the futex word lies inside the mapping and is 4-aligned;
        // FUTEX_WAIT (shared, not PRIVATE, so it works across processes)
        // only reads it. Errors (EAGAIN, ETIMEDOUT, EINTR) are all "stop
        // waiting", which the caller re-checks.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.ptr.add(off),
                libc::FUTEX_WAIT,
                expected,
                &ts as *const libc::timespec,
            )
        };
        Ok(())
    }

    /// Wakes every waiter in [`Mmio::futex_wait`] on the word at `offset`.
    pub fn futex_wake(&self, offset: u64) -> Result<(), OutOfRange> {
        let off = self.check(offset, 4, 4)?;
        // SAFETY: the word lies inside the mapping and is 4-aligned;
        // FUTEX_WAKE does not access it.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.ptr.add(off),
                libc::FUTEX_WAKE,
                i32::MAX,
            )
        };
        Ok(())
    }

    /// Reads the 32-bit register at a fixed, known-valid offset.
    ///
    /// # Panics
    /// If the offset is outside the mapping: fixed offsets are a programming
    /// contract, untrusted offsets use [`Mmio::try_read32`].
    pub fn read32(&self, offset: usize) -> u32 {
        self.try_read32(offset as u64)
            .expect("register offset inside the BAR")
    }

    /// Writes the 32-bit register at a fixed, known-valid offset.
    ///
    /// # Panics
    /// As [`Mmio::read32`].
    pub fn write32(&self, offset: usize, v: u32) {
        self.try_write32(offset as u64, v)
            .expect("register offset inside the BAR")
    }

    /// Reads the 64-bit register at a fixed, known-valid offset.
    ///
    /// # Panics
    /// As [`Mmio::read32`].
    pub fn read64(&self, offset: usize) -> u64 {
        self.try_read64(offset as u64)
            .expect("register offset inside the BAR")
    }

    /// Writes the 64-bit register at a fixed, known-valid offset.
    ///
    /// # Panics
    /// As [`Mmio::read32`].
    pub fn write64(&self, offset: usize, v: u64) {
        self.try_write64(offset as u64, v)
            .expect("register offset inside the BAR")
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let off = self.check(offset, buf.len() as u64, 1)?;
        // SAFETY: `check` proved the source range is inside the mapping; the
        // destination is a distinct Rust buffer. A concurrent writer can only
        // change which bytes are copied.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into the region at `offset`.
    pub fn write_bytes(&self, offset: u64, buf: &[u8]) -> Result<(), OutOfRange> {
        let off = self.check(offset, buf.len() as u64, 1)?;
        // SAFETY: `check` proved the destination range is inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.add(off), buf.len()) };
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` inside the region (the ranges
    /// may overlap).
    pub fn copy_within(&self, src: u64, dst: u64, len: u64) -> Result<(), OutOfRange> {
        let s = self.check(src, len, 1)?;
        let d = self.check(dst, len, 1)?;
        // SAFETY: both ranges were checked to lie inside the mapping;
        // `copy` handles overlap.
        unsafe { std::ptr::copy(self.ptr.add(s), self.ptr.add(d), len as usize) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `byte`.
    pub fn fill(&self, offset: u64, len: u64, byte: u8) -> Result<(), OutOfRange> {
        let off = self.check(offset, len, 1)?;
        // SAFETY: the range was checked to lie inside the mapping.
        unsafe { std::ptr::write_bytes(self.ptr.add(off), byte, len as usize) };
        Ok(())
    }
}

impl Drop for Mmio {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value owns; no
        // reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Opens (creating if needed) a file of exactly `len` bytes for a BAR.
pub fn open_sized(path: &std::path::Path, len: u64, create: bool) -> io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)?;
    if create {
        f.set_len(len)?;
    } else if f.metadata()?.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is smaller than {len} bytes", path.display()),
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_alignment() {
        let m = Mmio::anonymous(4096).unwrap();
        m.write32(0, 0xdead_beef);
        assert_eq!(m.read32(0), 0xdead_beef);
        assert!(m.try_read32(4094).is_err());
        assert!(m.try_read32(2).is_err());
        assert!(m.try_read64(4096).is_err());
        assert!(m.try_read64(u64::MAX - 3).is_err());
        let mut b = [0u8; 8];
        assert!(m.read_bytes(4090, &mut b).is_err());
        assert!(m.read_bytes(u64::MAX, &mut b[..1]).is_err());
        assert!(m.copy_within(0, 4095, 2).is_err());
        assert!(m.try_cas32(0, 0xdead_beef, 1).unwrap());
        assert!(!m.try_cas32(0, 0xdead_beef, 2).unwrap());
        assert_eq!(m.read32(0), 1);
    }
}
