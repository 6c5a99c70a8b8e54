//! VFIO: binding PCI devices to user space (container, group, device; or
//! iommufd with a device cdev where the kernel has it), DMA through the
//! IOMMU, BAR mapping, interrupts through eventfd, and SR-IOV through sysfs.
//!
//! Data flow: [`sysfs`] finds the device's IOMMU group (or cdev);
//! [`VfioPci::open`] opens the [`container::Container`] and
//! [`group::Group`] (or an [`iommufd::IommuFd`]) and gets a
//! [`device::Device`]; BARs are mapped as [`mmio::Mmio`]; DMA buffers are
//! mapped into the device's I/O address space with [`VfioPci::map_dma`],
//! which returns a guard that unmaps them.

pub mod container;
pub mod device;
pub mod error;
pub mod group;
pub mod ioctl;
pub mod iommufd;
pub mod irq;
pub mod mmio;
pub mod sysfs;

pub use error::VfioError;
pub use sysfs::{PciAddress, Sysfs};

use container::Container;
use device::Device;
use group::Group;
use iommufd::IommuFd;
use mmio::Mmio;

/// Which kernel interface holds the device's IOMMU context.
#[derive(Debug)]
enum Iommu {
    Legacy { container: Container, _group: Group },
    Iommufd(IommuFd),
}

/// A PCI device opened through VFIO.
#[derive(Debug)]
pub struct VfioPci {
    addr: PciAddress,
    iommu: Iommu,
    device: Device,
}

/// A DMA mapping of a buffer, removed on drop. It borrows the buffer, so
/// the buffer cannot be unmapped from this process while the device can
/// reach it.
#[derive(Debug)]
pub struct DmaMapping<'a> {
    pci: &'a VfioPci,
    iova: u64,
    size: u64,
    _buf: &'a Mmio,
}

impl DmaMapping<'_> {
    /// Device address of the buffer's first byte.
    pub fn iova(&self) -> u64 {
        self.iova
    }
}

impl Drop for DmaMapping<'_> {
    fn drop(&mut self) {
        let _ = self.pci.unmap_dma(self.iova, self.size);
    }
}

impl VfioPci {
    /// Opens the device at `addr`, which must be bound to vfio-pci. Uses
    /// iommufd and the device cdev when the kernel offers both, else the
    /// container/group interface.
    pub fn open(addr: &str) -> Result<VfioPci, VfioError> {
        Self::open_with(addr, true)
    }

    /// As [`VfioPci::open`], choosing whether iommufd may be used.
    pub fn open_with(addr: &str, allow_iommufd: bool) -> Result<VfioPci, VfioError> {
        let sys = Sysfs::default();
        let a = PciAddress::parse(addr)?;
        sys.device_dir(&a)?;
        let driver = sys.driver(&a)?;
        if driver.as_deref() != Some("vfio-pci") {
            return Err(VfioError::NotBound {
                addr: a.to_string(),
                driver,
            });
        }
        if allow_iommufd && IommuFd::available() {
            if let Some(cdev) = sys.vfio_cdev(&a) {
                let fd = IommuFd::open()?;
                let device = fd.open_device(&cdev)?;
                return Ok(VfioPci {
                    addr: a,
                    iommu: Iommu::Iommufd(fd),
                    device,
                });
            }
        }
        let gid = sys.iommu_group(&a)?;
        let mut container = Container::open()?;
        let group = Group::open(gid)?;
        group.attach(&mut container)?;
        let device = Device::new(group.device_fd(a.as_str())?)?;
        Ok(VfioPci {
            addr: a,
            iommu: Iommu::Legacy {
                container,
                _group: group,
            },
            device,
        })
    }

    /// The PCI address.
    pub fn address(&self) -> &PciAddress {
        &self.addr
    }

    /// The VFIO device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the device was opened through iommufd.
    pub fn uses_iommufd(&self) -> bool {
        matches!(self.iommu, Iommu::Iommufd(_))
    }

    /// Maps `buf` at device address `iova`; the mapping lasts as long as
    /// the returned guard.
    pub fn map_dma<'a>(&'a self, buf: &'a Mmio, iova: u64) -> Result<DmaMapping<'a>, VfioError> {
        let (vaddr, size) = (buf.as_ptr() as u64, buf.len() as u64);
        // SAFETY: `buf` is a live mapping owned by the caller; the returned
        // guard borrows it, so it stays mapped until the guard unmaps the
        // DMA range.
        unsafe {
            match &self.iommu {
                Iommu::Legacy { container, .. } => container.map_dma(vaddr, iova, size)?,
                Iommu::Iommufd(fd) => fd.map_dma(vaddr, iova, size)?,
            }
        }
        Ok(DmaMapping {
            pci: self,
            iova,
            size,
            _buf: buf,
        })
    }

    fn unmap_dma(&self, iova: u64, size: u64) -> Result<u64, VfioError> {
        match &self.iommu {
            Iommu::Legacy { container, .. } => container.unmap_dma(iova, size),
            Iommu::Iommufd(fd) => fd.unmap_dma(iova, size),
        }
    }
}
