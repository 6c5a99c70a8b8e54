//! Guest memory as the VMM shares it: regions received over vhost-user
//! (`SET_MEM_TABLE`, one fd per region, mmapped here), guest-physical to
//! host-virtual translation, and translation of the VMM's own virtual
//! addresses (which vhost-user uses for the vring addresses) to guest-physical.
//!
//! The mapping itself is rust-vmm's `vm-memory` (`GuestMemoryMmap`): every
//! access through it is bounds-checked against the regions. The guest is
//! untrusted, so nothing in this crate dereferences a guest address except
//! through [`GuestMemory::host_range`], which checks that the whole range lies
//! inside one mapped region.

use std::fs::File;
use std::sync::Arc;

use vm_memory::{
    Address, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    GuestRegionMmap, MmapRegion,
};

/// Why a memory table was refused or a guest range could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryError {
    /// A region of the table is empty, overflows, or overlaps another.
    BadRegion(u64),
    /// mmap of a region's fd failed.
    Mmap(String),
    /// The number of fds does not match the number of regions.
    FdCount,
    /// The guest range is not inside one region of guest memory.
    OutOfBounds {
        /// Guest-physical start.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
}

impl std::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryError::BadRegion(a) => write!(f, "bad memory region at guest address {a:#x}"),
            MemoryError::Mmap(e) => write!(f, "mmap of guest memory failed: {e}"),
            MemoryError::FdCount => write!(f, "memory table and fd count differ"),
            MemoryError::OutOfBounds { addr, len } => {
                write!(f, "guest range {addr:#x}+{len:#x} is outside guest memory")
            }
        }
    }
}

impl std::error::Error for MemoryError {}

/// One region as the VMM describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionDesc {
    /// Guest-physical start address.
    pub guest_phys_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Start address in the VMM's own address space.
    pub user_addr: u64,
    /// Offset of the region in its fd.
    pub mmap_offset: u64,
}

/// The guest's memory, mapped into this process.
#[derive(Clone, Debug)]
pub struct GuestMemory {
    mem: Arc<GuestMemoryMmap<()>>,
    regions: Arc<[RegionDesc]>,
    /// The same regions as `mem`, sorted, as plain (guest start, length,
    /// host address) triples: the per-descriptor translation scans these
    /// (a VMM gives a handful of regions) instead of going through
    /// `vm-memory`'s generic lookup, which cost ~13% of a request's cycles
    /// on the poll path. Valid as long as `mem` lives (same struct).
    fast: Arc<[FastRegion]>,
}

/// One mapped region for [`GuestMemory`]'s translation.
#[derive(Clone, Copy, Debug)]
struct FastRegion {
    start: u64,
    len: u64,
    host: usize,
}

impl GuestMemory {
    /// Maps the regions of a vhost-user memory table, one fd per region.
    pub fn from_fds(table: &[RegionDesc], files: Vec<File>) -> Result<Self, MemoryError> {
        if table.len() != files.len() {
            return Err(MemoryError::FdCount);
        }
        let mut regions = Vec::with_capacity(table.len());
        for (r, file) in table.iter().zip(files) {
            let size =
                usize::try_from(r.size).map_err(|_| MemoryError::BadRegion(r.guest_phys_addr))?;
            if size == 0 || r.guest_phys_addr.checked_add(r.size).is_none() {
                return Err(MemoryError::BadRegion(r.guest_phys_addr));
            }
            // A mapping past the end of the file would fault (SIGBUS) on first
            // touch: refuse it up front rather than trust the VMM.
            let meta = file
                .metadata()
                .map_err(|e| MemoryError::Mmap(e.to_string()))?;
            let end = r
                .mmap_offset
                .checked_add(r.size)
                .ok_or(MemoryError::BadRegion(r.guest_phys_addr))?;
            if meta.is_file() && end > meta.len() {
                return Err(MemoryError::Mmap(format!(
                    "region at {:#x} needs {end} bytes of its fd, which has {}",
                    r.guest_phys_addr,
                    meta.len()
                )));
            }
            let mmap = MmapRegion::<()>::from_file(FileOffset::new(file, r.mmap_offset), size)
                .map_err(|e| MemoryError::Mmap(e.to_string()))?;
            let region = GuestRegionMmap::new(mmap, GuestAddress(r.guest_phys_addr))
                .ok_or(MemoryError::BadRegion(r.guest_phys_addr))?;
            regions.push(region);
        }
        Self::from_regions(regions, table.to_vec())
    }

    /// Anonymous guest memory for tests and benchmarks: `(guest address, size)` ranges.
    pub fn anonymous(ranges: &[(u64, usize)]) -> Result<Self, MemoryError> {
        let mut regions = Vec::with_capacity(ranges.len());
        let mut descs = Vec::with_capacity(ranges.len());
        for &(gpa, size) in ranges {
            let mmap = MmapRegion::<()>::new(size).map_err(|e| MemoryError::Mmap(e.to_string()))?;
            regions.push(
                GuestRegionMmap::new(mmap, GuestAddress(gpa)).ok_or(MemoryError::BadRegion(gpa))?,
            );
            descs.push(RegionDesc {
                guest_phys_addr: gpa,
                size: size as u64,
                user_addr: gpa,
                mmap_offset: 0,
            });
        }
        Self::from_regions(regions, descs)
    }

    fn from_regions(
        mut regions: Vec<GuestRegionMmap<()>>,
        mut descs: Vec<RegionDesc>,
    ) -> Result<Self, MemoryError> {
        regions.sort_by_key(|r| r.start_addr());
        descs.sort_by_key(|r| r.guest_phys_addr);
        let mem = GuestMemoryMmap::from_regions(regions)
            .map_err(|_| MemoryError::BadRegion(descs.first().map_or(0, |d| d.guest_phys_addr)))?;
        let fast: Vec<FastRegion> = mem
            .iter()
            .map(|r| FastRegion {
                start: r.start_addr().raw_value(),
                len: r.len(),
                host: r.as_ptr() as usize,
            })
            .collect();
        Ok(GuestMemory {
            mem: Arc::new(mem),
            regions: descs.into(),
            fast: fast.into(),
        })
    }

    /// The region holding guest address `addr`: its host address of `addr`
    /// and the bytes left in the region from there.
    #[inline]
    fn lookup(&self, addr: u64) -> Option<(usize, u64)> {
        self.fast.iter().find_map(|r| {
            let off = addr.wrapping_sub(r.start);
            (off < r.len).then(|| (r.host + off as usize, r.len - off))
        })
    }

    /// The checked `vm-memory` view (implements `Bytes<GuestAddress>`).
    pub fn mmap(&self) -> &GuestMemoryMmap<()> {
        &self.mem
    }

    /// The regions as the VMM described them.
    pub fn regions(&self) -> &[RegionDesc] {
        &self.regions
    }

    /// Translates an address in the VMM's address space (vhost-user
    /// `SET_VRING_ADDR` carries those) to a guest-physical address.
    pub fn vmm_to_guest(&self, user_addr: u64) -> Option<u64> {
        self.regions.iter().find_map(|r| {
            let off = user_addr.checked_sub(r.user_addr)?;
            (off < r.size).then(|| r.guest_phys_addr + off)
        })
    }

    /// The guest-physical address of `len` bytes at host address `host`, if
    /// they lie inside one mapped region (the reverse of
    /// [`host_range`](Self::host_range); the dirty log uses it to mark the
    /// pages behind the host ranges a backend wrote).
    pub fn host_to_guest(&self, host: *const u8, len: u64) -> Option<u64> {
        let h = host as usize as u64;
        self.mem.iter().find_map(|r| {
            let base = r.as_ptr() as usize as u64;
            let off = h.checked_sub(base)?;
            (off.checked_add(len)? <= r.len()).then(|| r.start_addr().raw_value() + off)
        })
    }

    /// Host pointer to `len` bytes at guest address `addr`, if the whole range
    /// lies inside one region. `len` may be 0 (then `addr` must still be mapped).
    ///
    /// The pointer stays valid as long as this `GuestMemory` (or a clone) lives.
    #[inline]
    pub fn host_range(&self, addr: u64, len: u64) -> Result<*mut u8, MemoryError> {
        match self.lookup(addr) {
            Some((host, left)) if len <= left => Ok(host as *mut u8),
            _ => Err(MemoryError::OutOfBounds { addr, len }),
        }
    }

    /// The checked range `[addr, addr+len)` as an [`crate::iovec::IoVec`], for
    /// benchmarks and tests that drive a backend directly (the caller keeps
    /// this memory alive while the vector is in use).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn iovec(&self, addr: u64, len: u32) -> Result<crate::iovec::IoVec, MemoryError> {
        let p = self.host_range(addr, len as u64)?;
        // SAFETY: `host_range` checked the range lies in one mapped region.
        Ok(unsafe { crate::iovec::IoVec::new(p, len) })
    }

    /// Splits the guest range `[addr, addr+len)` at region boundaries and calls
    /// `f(host_ptr, chunk_len)` for each piece; fails if any byte is unmapped.
    #[inline]
    pub fn for_each_chunk(
        &self,
        addr: u64,
        len: u64,
        mut f: impl FnMut(*mut u8, u64) -> Result<(), MemoryError>,
    ) -> Result<(), MemoryError> {
        let oob = || MemoryError::OutOfBounds { addr, len };
        let mut cur = addr;
        let mut left = len;
        addr.checked_add(len).ok_or_else(oob)?;
        while left > 0 {
            let (host, room) = self.lookup(cur).ok_or_else(oob)?;
            let chunk = left.min(room);
            f(host as *mut u8, chunk)?;
            cur += chunk;
            left -= chunk;
        }
        Ok(())
    }

    /// Copies guest bytes out (checked).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        use vm_memory::Bytes;
        self.mem
            .read_slice(buf, GuestAddress(addr))
            .map_err(|_| MemoryError::OutOfBounds {
                addr,
                len: buf.len() as u64,
            })
    }

    /// Copies bytes into guest memory (checked).
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemoryError> {
        use vm_memory::Bytes;
        self.mem
            .write_slice(buf, GuestAddress(addr))
            .map_err(|_| MemoryError::OutOfBounds {
                addr,
                len: buf.len() as u64,
            })
    }

    /// Whether `[addr, addr+len)` is entirely guest memory.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.for_each_chunk(addr, len, |_, _| Ok(())).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_and_bounds() {
        let m = GuestMemory::anonymous(&[(0, 0x10000), (0x20000, 0x1000)]).unwrap();
        assert!(m.host_range(0, 0x10000).is_ok());
        assert!(m.host_range(0xffff, 2).is_err(), "crosses end of region");
        assert!(m.host_range(0x10000, 1).is_err(), "hole");
        assert!(m.host_range(u64::MAX, 2).is_err(), "overflow");
        assert!(m.host_range(0x20fff, 1).is_ok());
        assert!(!m.contains(0xff00, 0x200));
        m.write(0x20010, b"abc").unwrap();
        let mut b = [0u8; 3];
        m.read(0x20010, &mut b).unwrap();
        assert_eq!(&b, b"abc");
        assert!(m.write(0x20fff, b"ab").is_err());
        assert_eq!(m.vmm_to_guest(0x20004), Some(0x20004));
        assert_eq!(m.vmm_to_guest(0x30000), None);
        let p = m.host_range(0x20010, 3).unwrap();
        assert_eq!(m.host_to_guest(p, 3), Some(0x20010));
        assert_eq!(m.host_to_guest(p, 0x1000), None, "past the region");
        let q = m.host_range(0xfff0, 0x10).unwrap();
        assert_eq!(m.host_to_guest(q, 0x10), Some(0xfff0));
    }

    #[test]
    fn table_larger_than_its_fd_is_refused() {
        let path = std::env::temp_dir().join(format!("vfio-gm-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let r = |size, off| RegionDesc {
            guest_phys_addr: 0,
            size,
            user_addr: 0x1000,
            mmap_offset: off,
        };
        assert!(GuestMemory::from_fds(&[r(8192, 0)], vec![open()]).is_ok());
        assert!(GuestMemory::from_fds(&[r(16384, 0)], vec![open()]).is_err());
        assert!(GuestMemory::from_fds(&[r(8192, 4096)], vec![open()]).is_err());
        assert!(GuestMemory::from_fds(&[r(4096, u64::MAX)], vec![open()]).is_err());
        assert_eq!(
            GuestMemory::from_fds(&[r(4096, 0)], vec![]).unwrap_err(),
            MemoryError::FdCount
        );
        let two = [
            r(4096, 0),
            RegionDesc {
                guest_phys_addr: 0x800,
                ..r(4096, 0)
            },
        ];
        assert!(
            GuestMemory::from_fds(&two, vec![open(), open()]).is_err(),
            "overlap"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn chunks_across_adjacent_regions() {
        let m = GuestMemory::anonymous(&[(0, 0x1000), (0x1000, 0x1000)]).unwrap();
        let mut n = 0;
        m.for_each_chunk(0xf00, 0x200, |_, l| {
            n += 1;
            assert_eq!(l, 0x100);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
        assert!(m.host_range(0xf00, 0x200).is_err());
    }
}
