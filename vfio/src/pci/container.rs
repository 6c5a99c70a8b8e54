//! A VFIO container: an IOMMU context (type1) that groups attach to, and
//! the DMA mappings made in it.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use super::error::VfioError;
use super::ioctl::{self, argsz, DmaMap, DmaUnmap};

/// An open `/dev/vfio/vfio`.
#[derive(Debug)]
pub struct Container {
    file: File,
    iommu_set: bool,
}

impl Container {
    /// Opens the container device and checks the API version.
    pub fn open() -> Result<Container, VfioError> {
        let p = Path::new("/dev/vfio/vfio");
        if !p.exists() {
            return Err(VfioError::NoVfio);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .map_err(|e| VfioError::os("open /dev/vfio/vfio", e))?;
        let v = ioctl::ioctl_val(file.as_fd(), ioctl::VFIO_GET_API_VERSION, 0)
            .map_err(|e| VfioError::os("VFIO_GET_API_VERSION", e))?;
        if v != ioctl::VFIO_API_VERSION {
            return Err(VfioError::ApiVersion(v));
        }
        Ok(Container {
            file,
            iommu_set: false,
        })
    }

    /// Whether the container supports an extension (an IOMMU model).
    pub fn check_extension(&self, ext: libc::c_ulong) -> bool {
        ioctl::ioctl_val(self.file.as_fd(), ioctl::VFIO_CHECK_EXTENSION, ext).is_ok_and(|r| r > 0)
    }

    /// Selects the best type1 IOMMU model (after the first group attached).
    pub fn set_iommu(&mut self) -> Result<(), VfioError> {
        if self.iommu_set {
            return Ok(());
        }
        let model = [ioctl::VFIO_TYPE1V2_IOMMU, ioctl::VFIO_TYPE1_IOMMU]
            .into_iter()
            .find(|&m| self.check_extension(m))
            .ok_or(VfioError::NoIommuModel)?;
        ioctl::ioctl_val(self.file.as_fd(), ioctl::VFIO_SET_IOMMU, model)
            .map_err(|e| VfioError::os("VFIO_SET_IOMMU", e))?;
        self.iommu_set = true;
        Ok(())
    }

    /// The container fd.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Maps `size` bytes of this process's memory at `vaddr` to device
    /// address `iova`, readable and writable by the device.
    ///
    /// # Safety
    /// `[vaddr, vaddr+size)` must be memory this process keeps mapped (and
    /// does not reuse for anything the device must not see) until
    /// [`Container::unmap_dma`] removes the mapping: the device may access
    /// it at any time in between.
    pub unsafe fn map_dma(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), VfioError> {
        let mut m = DmaMap {
            argsz: argsz::<DmaMap>(),
            flags: ioctl::VFIO_DMA_MAP_FLAG_READ | ioctl::VFIO_DMA_MAP_FLAG_WRITE,
            vaddr,
            iova,
            size,
        };
        // SAFETY: `m` is a valid vfio_iommu_type1_dma_map for the call; the
        // memory it names is the caller's responsibility (see above).
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_IOMMU_MAP_DMA, &mut m) }.map_err(
            |e| {
                VfioError::os(
                    format!("VFIO_IOMMU_MAP_DMA iova {iova:#x} size {size:#x}"),
                    e,
                )
            },
        )?;
        Ok(())
    }

    /// Removes the mapping at `iova`; returns the bytes unmapped.
    pub fn unmap_dma(&self, iova: u64, size: u64) -> Result<u64, VfioError> {
        let mut u = DmaUnmap {
            argsz: argsz::<DmaUnmap>(),
            flags: 0,
            iova,
            size,
        };
        // SAFETY: `u` is a valid vfio_iommu_type1_dma_unmap; unmapping only
        // removes device access.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_IOMMU_UNMAP_DMA, &mut u) }
            .map_err(|e| VfioError::os(format!("VFIO_IOMMU_UNMAP_DMA iova {iova:#x}"), e))?;
        Ok(u.size)
    }
}
