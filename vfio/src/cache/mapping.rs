//! The first→second address table: cache-slot guest-physical addresses
//! ("first physical addresses", what the metadata entries hold) to host
//! addresses in the cache pool ("second physical addresses", where the data
//! is read and written), plus the shared-memory regions behind both.
//!
//! The table is configured once per device when the cache starts
//! ([`SlotMap::add`] per pool region) and rebuilt on memory hot-plug
//! (`CachedBackend::relocate` moves the slot window to new guest-physical
//! addresses and rewrites the metadata). Lookups are checked: a range that is not wholly inside one
//! mapped region gives `None`, never a host address.

use std::io;
use std::ptr;

/// A shared anonymous mapping backed by a memfd (hugepages when the host
/// has them reserved, normal pages otherwise).
#[derive(Debug)]
pub struct SharedRegion {
    ptr: *mut u8,
    len: usize,
    fd: i32,
    hugepages: bool,
}

// SAFETY: the region owns its mapping; the pointer stays valid until Drop.
unsafe impl Send for SharedRegion {}

impl SharedRegion {
    /// Maps `len` zeroed bytes; tries 2 MiB hugepages first if `try_huge`.
    pub fn new(name: &str, len: usize, try_huge: bool) -> io::Result<SharedRegion> {
        const HUGE: usize = 2 << 20;
        let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
        if try_huge && len.is_multiple_of(HUGE) {
            if let Ok(r) = Self::map(&cname, len, libc::MFD_HUGETLB) {
                return Ok(r);
            }
        }
        Self::map(&cname, len, 0)
    }

    fn map(name: &std::ffi::CStr, len: usize, flags: libc::c_uint) -> io::Result<SharedRegion> {
        // SAFETY: plain syscalls on a fresh fd; the fd is closed on every
        // error path and owned by the region otherwise.
        unsafe {
            let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | flags);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ftruncate(fd, len as libc::off_t) != 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            let p = libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            );
            if p == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            Ok(SharedRegion {
                ptr: p.cast(),
                len,
                fd,
                hugepages: flags & libc::MFD_HUGETLB != 0,
            })
        }
    }

    /// Host address of the first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd (what a VMM would map into the guest).
    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// Backed by hugepages.
    pub fn hugepages(&self) -> bool {
        self.hugepages
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: unmaps and closes what `map` created; no IoVec into the
        // pool outlives the cache (it drains its backend first).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
            libc::close(self.fd);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct MapRegion {
    gpa: u64,
    len: u64,
    host: *mut u8,
}

/// First physical address → second physical address (host pointer).
#[derive(Debug, Default)]
pub struct SlotMap {
    regions: Vec<MapRegion>,
}

// SAFETY: plain address ranges into mappings the cache owns.
unsafe impl Send for SlotMap {}

impl SlotMap {
    /// An empty table.
    pub fn new() -> SlotMap {
        SlotMap::default()
    }

    /// Maps `[gpa, gpa+len)` to `host..host+len`; refuses overlaps and
    /// wrap-around.
    ///
    /// # Safety
    /// `host..host+len` must be a live mapping that outlives this table.
    pub unsafe fn add(&mut self, gpa: u64, len: u64, host: *mut u8) -> Result<(), String> {
        let end = gpa
            .checked_add(len)
            .ok_or_else(|| format!("region {gpa:#x}+{len:#x} wraps"))?;
        if self
            .regions
            .iter()
            .any(|r| gpa < r.gpa + r.len && r.gpa < end)
        {
            return Err(format!("region {gpa:#x}+{len:#x} overlaps another"));
        }
        self.regions.push(MapRegion { gpa, len, host });
        self.regions.sort_by_key(|r| r.gpa);
        Ok(())
    }

    /// Host address of `[gpa, gpa+len)`; `None` unless the range lies
    /// wholly inside one mapped region.
    #[inline]
    pub fn translate(&self, gpa: u64, len: u64) -> Option<*mut u8> {
        for r in &self.regions {
            let off = gpa.checked_sub(r.gpa)?;
            if off >= r.len {
                continue;
            }
            if off.checked_add(len)? > r.len {
                return None;
            }
            // SAFETY: `off + len <= r.len`, inside the live mapping.
            return Some(unsafe { r.host.add(off as usize) });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_checks_bounds() {
        let r = SharedRegion::new("t", 8192, false).unwrap();
        let mut m = SlotMap::new();
        // SAFETY: `r` outlives `m` in this test.
        unsafe { m.add(0x1000_0000, 8192, r.as_ptr()).unwrap() };
        assert_eq!(m.translate(0x1000_0000, 4096), Some(r.as_ptr()));
        // SAFETY: 4096 < 8192.
        assert_eq!(
            m.translate(0x1000_1000, 4096),
            Some(unsafe { r.as_ptr().add(4096) })
        );
        assert_eq!(m.translate(0x1000_1001, 4096), None, "runs past the end");
        assert_eq!(m.translate(0x0fff_f000, 4096), None, "before");
        assert_eq!(m.translate(u64::MAX, 4096), None, "wraps");
        assert_eq!(m.translate(0x1000_2000, 1), None, "after");
        // SAFETY: never translated to (overlap refused).
        assert!(unsafe { m.add(0x1000_1000, 4096, r.as_ptr()) }.is_err());
    }
}
