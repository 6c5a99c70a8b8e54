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
use std::path::{Path, PathBuf};
use std::ptr;

/// A shared mapping: a memfd (hugepages when the host has them reserved,
/// normal pages otherwise), or a named file that a VMM maps into the guest
/// too ([`SharedRegion::open_file`]).
#[derive(Debug)]
pub struct SharedRegion {
    ptr: *mut u8,
    len: usize,
    fd: i32,
    hugepages: bool,
    path: Option<PathBuf>,
}

/// `statfs(2)` magic of hugetlbfs.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// Bytes of a guest-mappable region holding `len` bytes: QEMU's
/// `ivshmem-plain` exposes its memory backend as PCI BAR 2, and a PCI BAR
/// is a power of two in size (PCI Local Bus 3.0 §6.2.5.1: "the size of the
/// address space ... must be a power of two"); QEMU also wants whole pages.
pub fn guest_region_len(len: usize) -> usize {
    len.max(4096).next_power_of_two()
}

/// The QEMU command-line arguments that map the file at `path`, `len`
/// bytes, into a guest as BAR 2 of an `ivshmem-plain` PCI device
/// (1af4:1110), under object id `id`.
pub fn qemu_ivshmem_args(path: &Path, len: usize, id: &str) -> String {
    format!(
        "-object memory-backend-file,id={id},mem-path={},size={len},share=on \
         -device ivshmem-plain,memdev={id}",
        path.display()
    )
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
        // SAFETY: a plain syscall; the fd is owned by `map_fd` from here.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map_fd(fd, len, flags & libc::MFD_HUGETLB != 0, None)
    }

    /// Maps the file at `path` (created with mode 0600 if absent; a regular
    /// file owned by this user, not a symlink, on tmpfs such as /dev/shm or
    /// on hugetlbfs) shared, at least
    /// `len` bytes, rounded up to [`guest_region_len`] and, on hugetlbfs, to
    /// the huge page size. A larger existing file is not shrunk (a running
    /// QEMU may map all of it). Its contents are the caller's to rewrite.
    pub fn open_file(path: &Path, len: usize) -> io::Result<SharedRegion> {
        use std::os::unix::ffi::OsStrExt;
        let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: plain syscalls on a fresh fd, closed on every error path
        // and owned by the region otherwise; `st`/`fs` are plain C structs
        // the kernel fills.
        unsafe {
            let fd = libc::open(
                cpath.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o600,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fail = |e: io::Error| {
                libc::close(fd);
                Err(e)
            };
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                return fail(io::Error::last_os_error());
            }
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return fail(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file",
                ));
            }
            // A file someone else made (in a shared directory like /dev/shm)
            // could be truncated under our mapping: SIGBUS in the data plane.
            if st.st_uid != libc::geteuid() {
                return fail(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("owned by uid {}, not by this process's user", st.st_uid),
                ));
            }
            let mut fs: libc::statfs = std::mem::zeroed();
            if libc::fstatfs(fd, &mut fs) != 0 {
                return fail(io::Error::last_os_error());
            }
            let huge = fs.f_type as i64 == HUGETLBFS_MAGIC;
            let mut want = guest_region_len(len);
            if huge {
                want = want.max(fs.f_bsize as usize);
            }
            let len = want.max(st.st_size as usize);
            if (st.st_size as usize) < len && libc::ftruncate(fd, len as libc::off_t) != 0 {
                return fail(io::Error::last_os_error());
            }
            Self::map_fd(fd, len, huge, Some(path.to_path_buf()))
        }
    }

    fn map_fd(
        fd: i32,
        len: usize,
        hugepages: bool,
        path: Option<PathBuf>,
    ) -> io::Result<SharedRegion> {
        // SAFETY: plain syscalls on `fd`, which this function owns: it is
        // closed on every error path and owned by the region otherwise.
        unsafe {
            if path.is_none() && libc::ftruncate(fd, len as libc::off_t) != 0 {
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
                hugepages,
                path,
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

    /// The memfd or file descriptor.
    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// The file, for a region made by [`SharedRegion::open_file`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
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

    #[test]
    fn file_region_is_shared_and_power_of_two() {
        let dir = std::env::temp_dir().join(format!("vswitch-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("meta");
        let _ = std::fs::remove_file(&f);
        {
            let r = SharedRegion::open_file(&f, 5000).unwrap();
            assert_eq!(r.len(), 8192, "rounded up to a power of two");
            assert_eq!(r.path(), Some(f.as_path()));
            // SAFETY: 4 bytes inside the 8192-byte mapping.
            unsafe { ptr::copy_nonoverlapping(b"VSWC".as_ptr(), r.as_ptr().add(100), 4) };
            // What another process (QEMU) mapping the file sees.
            let bytes = std::fs::read(&f).unwrap();
            assert_eq!(bytes.len(), 8192);
            assert_eq!(&bytes[100..104], b"VSWC");
        }
        // A bigger existing file is not shrunk under a VMM that maps it.
        std::fs::write(&f, vec![7u8; 65536]).unwrap();
        let r = SharedRegion::open_file(&f, 100).unwrap();
        assert_eq!(r.len(), 65536);
        // Not a regular file: refused.
        assert!(SharedRegion::open_file(&dir, 100).is_err());
        drop(r);
        // Someone else's file: refused (checked where we can chown, as root).
        let theirs = dir.join("theirs");
        std::fs::write(&theirs, [0u8; 4096]).unwrap();
        if std::os::unix::fs::chown(&theirs, Some(65534), None).is_ok() {
            let e = SharedRegion::open_file(&theirs, 100).unwrap_err();
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(guest_region_len(64 + 32 * 4096), 256 << 10);
        assert_eq!(guest_region_len(1), 4096);
    }
}
