//! The iommufd interface (`/dev/iommu` with per-device VFIO cdevs,
//! Linux 6.6+): an I/O address space (IOAS) that device cdevs attach to.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use super::device::Device;
use super::error::VfioError;
use super::ioctl::{self, argsz, AttachPt, BindIommufd, IoasAlloc, IoasMap, IoasUnmap};

/// An open `/dev/iommu` with one IOAS.
#[derive(Debug)]
pub struct IommuFd {
    file: File,
    ioas: u32,
}

impl IommuFd {
    /// Whether this kernel offers iommufd.
    pub fn available() -> bool {
        Path::new("/dev/iommu").exists()
    }

    /// Opens `/dev/iommu` and allocates an IOAS.
    pub fn open() -> Result<IommuFd, VfioError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/iommu")
            .map_err(|e| VfioError::os("open /dev/iommu", e))?;
        let mut a = IoasAlloc {
            size: argsz::<IoasAlloc>(),
            ..Default::default()
        };
        // SAFETY: `a` is a valid iommu_ioas_alloc.
        unsafe { ioctl::ioctl_ptr(file.as_fd(), ioctl::IOMMU_IOAS_ALLOC, &mut a) }
            .map_err(|e| VfioError::os("IOMMU_IOAS_ALLOC", e))?;
        Ok(IommuFd {
            file,
            ioas: a.out_ioas_id,
        })
    }

    /// Opens a device cdev, binds it to this iommufd and attaches it to the IOAS.
    pub fn open_device(&self, cdev: &Path) -> Result<Device, VfioError> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(cdev)
            .map_err(|e| VfioError::os(format!("open {}", cdev.display()), e))?;
        let mut b = BindIommufd {
            argsz: argsz::<BindIommufd>(),
            iommufd: self.file.as_raw_fd(),
            ..Default::default()
        };
        // SAFETY: `b` is a valid vfio_device_bind_iommufd.
        unsafe { ioctl::ioctl_ptr(f.as_fd(), ioctl::VFIO_DEVICE_BIND_IOMMUFD, &mut b) }
            .map_err(|e| VfioError::os("VFIO_DEVICE_BIND_IOMMUFD", e))?;
        let mut at = AttachPt {
            argsz: argsz::<AttachPt>(),
            flags: 0,
            pt_id: self.ioas,
        };
        // SAFETY: `at` is a valid vfio_device_attach_iommufd_pt.
        unsafe { ioctl::ioctl_ptr(f.as_fd(), ioctl::VFIO_DEVICE_ATTACH_IOMMUFD_PT, &mut at) }
            .map_err(|e| VfioError::os("VFIO_DEVICE_ATTACH_IOMMUFD_PT", e))?;
        Device::new(f)
    }

    /// Maps `size` bytes at `vaddr` to `iova` in the IOAS.
    ///
    /// # Safety
    /// As [`super::container::Container::map_dma`].
    pub unsafe fn map_dma(&self, vaddr: u64, iova: u64, size: u64) -> Result<(), VfioError> {
        let mut m = IoasMap {
            size: argsz::<IoasMap>(),
            flags: ioctl::IOMMU_IOAS_MAP_FIXED_IOVA
                | ioctl::IOMMU_IOAS_MAP_READABLE
                | ioctl::IOMMU_IOAS_MAP_WRITEABLE,
            ioas_id: self.ioas,
            reserved: 0,
            user_va: vaddr,
            length: size,
            iova,
        };
        // SAFETY: `m` is a valid iommu_ioas_map; the memory is the caller's
        // responsibility.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::IOMMU_IOAS_MAP, &mut m) }
            .map_err(|e| VfioError::os(format!("IOMMU_IOAS_MAP iova {iova:#x}"), e))?;
        Ok(())
    }

    /// Unmaps `[iova, iova+size)`.
    pub fn unmap_dma(&self, iova: u64, size: u64) -> Result<u64, VfioError> {
        let mut u = IoasUnmap {
            size: argsz::<IoasUnmap>(),
            ioas_id: self.ioas,
            iova,
            length: size,
        };
        // SAFETY: `u` is a valid iommu_ioas_unmap.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::IOMMU_IOAS_UNMAP, &mut u) }
            .map_err(|e| VfioError::os(format!("IOMMU_IOAS_UNMAP iova {iova:#x}"), e))?;
        Ok(u.length)
    }
}
