//! The VFIO and iommufd kernel ABI (`<linux/vfio.h>`, `<linux/iommufd.h>`):
//! ioctl numbers, argument structures and the one function that issues an
//! ioctl.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `_IO(';', nr)`: VFIO and iommufd ioctls carry their size in `argsz`.
const fn io(nr: u32) -> libc::c_ulong {
    ((b';' as u32) << 8 | nr) as libc::c_ulong
}

/// Expected `VFIO_GET_API_VERSION`.
pub const VFIO_API_VERSION: i32 = 0;
/// Container: API version.
pub const VFIO_GET_API_VERSION: libc::c_ulong = io(100);
/// Container: extension supported?
pub const VFIO_CHECK_EXTENSION: libc::c_ulong = io(101);
/// Container: select the IOMMU model.
pub const VFIO_SET_IOMMU: libc::c_ulong = io(102);
/// Group: status.
pub const VFIO_GROUP_GET_STATUS: libc::c_ulong = io(103);
/// Group: attach to a container.
pub const VFIO_GROUP_SET_CONTAINER: libc::c_ulong = io(104);
/// Group: get a device fd by name.
pub const VFIO_GROUP_GET_DEVICE_FD: libc::c_ulong = io(106);
/// Device: info.
pub const VFIO_DEVICE_GET_INFO: libc::c_ulong = io(107);
/// Device: region info.
pub const VFIO_DEVICE_GET_REGION_INFO: libc::c_ulong = io(108);
/// Device: interrupt info.
pub const VFIO_DEVICE_GET_IRQ_INFO: libc::c_ulong = io(109);
/// Device: configure interrupts.
pub const VFIO_DEVICE_SET_IRQS: libc::c_ulong = io(110);
/// Device: function-level reset.
pub const VFIO_DEVICE_RESET: libc::c_ulong = io(111);
/// Container (type1): IOMMU info.
pub const VFIO_IOMMU_GET_INFO: libc::c_ulong = io(112);
/// Container (type1): map DMA.
pub const VFIO_IOMMU_MAP_DMA: libc::c_ulong = io(113);
/// Container (type1): unmap DMA.
pub const VFIO_IOMMU_UNMAP_DMA: libc::c_ulong = io(114);
/// Device cdev: bind to an iommufd (Linux 6.6+).
pub const VFIO_DEVICE_BIND_IOMMUFD: libc::c_ulong = io(118);
/// Device cdev: attach to an IOAS (Linux 6.6+).
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: libc::c_ulong = io(119);
/// iommufd: destroy an object.
pub const IOMMU_DESTROY: libc::c_ulong = io(0x80);
/// iommufd: allocate an I/O address space.
pub const IOMMU_IOAS_ALLOC: libc::c_ulong = io(0x81);
/// iommufd: map user memory into an IOAS.
pub const IOMMU_IOAS_MAP: libc::c_ulong = io(0x85);
/// iommufd: unmap an IOVA range.
pub const IOMMU_IOAS_UNMAP: libc::c_ulong = io(0x86);

/// Type1 IOMMU model.
pub const VFIO_TYPE1_IOMMU: libc::c_ulong = 1;
/// Type1v2 IOMMU model.
pub const VFIO_TYPE1V2_IOMMU: libc::c_ulong = 3;

/// Group status: all devices of the group are bound to VFIO or unbound.
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
/// Device info flag: PCI device.
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// Region flag: readable.
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1;
/// Region flag: writable.
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 2;
/// Region flag: mmap-able.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 4;
/// IRQ info flag: eventfd signalling supported.
pub const VFIO_IRQ_INFO_EVENTFD: u32 = 1;
/// IRQ set: data is an array of eventfds.
pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1;
/// IRQ set: data is an array of eventfds.
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 4;
/// IRQ set: unmask action.
pub const VFIO_IRQ_SET_ACTION_UNMASK: u32 = 16;
/// IRQ set: trigger action.
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 32;
/// DMA map flag: device may read.
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
/// DMA map flag: device may write.
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;
/// iommufd map flag: use the given IOVA.
pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1;
/// iommufd map flag: device may write.
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 2;
/// iommufd map flag: device may read.
pub const IOMMU_IOAS_MAP_READABLE: u32 = 4;

/// PCI region indexes of a vfio-pci device.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// PCI interrupt indexes.
pub const VFIO_PCI_INTX_IRQ_INDEX: u32 = 0;
/// MSI interrupt index.
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
/// MSI-X interrupt index.
pub const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct GroupStatus {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_GROUP_FLAGS_*`.
    pub flags: u32,
}

/// `struct vfio_device_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DeviceInfo {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of interrupt types.
    pub num_irqs: u32,
    /// Offset of the capability chain.
    pub cap_offset: u32,
    /// Padding.
    pub pad: u32,
}

/// `struct vfio_region_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RegionInfo {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Region index.
    pub index: u32,
    /// Offset of the capability chain.
    pub cap_offset: u32,
    /// Region size in bytes.
    pub size: u64,
    /// Offset of the region within the device fd.
    pub offset: u64,
}

/// `struct vfio_irq_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct IrqInfo {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// Interrupt index.
    pub index: u32,
    /// Number of vectors.
    pub count: u32,
}

/// `struct vfio_irq_set` with room for one eventfd.
#[repr(C)]
#[derive(Debug, Default)]
pub struct IrqSet1 {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_IRQ_SET_*`.
    pub flags: u32,
    /// Interrupt index.
    pub index: u32,
    /// First vector.
    pub start: u32,
    /// Number of vectors.
    pub count: u32,
    /// The eventfd.
    pub fd: i32,
}

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaMap {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_DMA_MAP_FLAG_*`.
    pub flags: u32,
    /// Process virtual address.
    pub vaddr: u64,
    /// Device (I/O virtual) address.
    pub iova: u64,
    /// Size in bytes.
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaUnmap {
    /// Size of this struct.
    pub argsz: u32,
    /// Flags.
    pub flags: u32,
    /// Device address.
    pub iova: u64,
    /// Size in bytes.
    pub size: u64,
}

/// `struct vfio_device_bind_iommufd`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct BindIommufd {
    /// Size of this struct.
    pub argsz: u32,
    /// Flags.
    pub flags: u32,
    /// The iommufd.
    pub iommufd: i32,
    /// Device id in the iommufd (out).
    pub out_devid: u32,
}

/// `struct vfio_device_attach_iommufd_pt`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct AttachPt {
    /// Size of this struct.
    pub argsz: u32,
    /// Flags.
    pub flags: u32,
    /// IOAS or HWPT id.
    pub pt_id: u32,
}

/// `struct iommu_ioas_alloc`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct IoasAlloc {
    /// Size of this struct.
    pub size: u32,
    /// Flags.
    pub flags: u32,
    /// IOAS id (out).
    pub out_ioas_id: u32,
}

/// `struct iommu_ioas_map`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct IoasMap {
    /// Size of this struct.
    pub size: u32,
    /// `IOMMU_IOAS_MAP_*`.
    pub flags: u32,
    /// IOAS id.
    pub ioas_id: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Process virtual address.
    pub user_va: u64,
    /// Length in bytes.
    pub length: u64,
    /// Device address (in with FIXED_IOVA, else out).
    pub iova: u64,
}

/// `struct iommu_ioas_unmap`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct IoasUnmap {
    /// Size of this struct.
    pub size: u32,
    /// IOAS id.
    pub ioas_id: u32,
    /// Device address.
    pub iova: u64,
    /// Length in bytes.
    pub length: u64,
}

/// Issues `ioctl(fd, req, arg)` with a pointer argument.
///
/// # Safety
/// `arg` must point to the structure `req` expects, valid for reads and
/// writes of that structure's size (its `argsz`/`size` field set).
pub unsafe fn ioctl_ptr<T>(fd: BorrowedFd<'_>, req: libc::c_ulong, arg: *mut T) -> io::Result<i32> {
    // SAFETY: guaranteed by the caller.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Issues `ioctl(fd, req, value)` with an integer argument (no memory is
/// passed to the kernel).
pub fn ioctl_val(fd: BorrowedFd<'_>, req: libc::c_ulong, value: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: the argument is a plain integer; the kernel reads no memory
    // of ours for these requests.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, value) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// `argsz` of a structure.
pub fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}
