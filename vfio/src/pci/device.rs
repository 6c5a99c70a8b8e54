//! A VFIO device: its regions (BARs, config space), BAR mapping, interrupts
//! and reset.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;

use super::error::VfioError;
use super::ioctl::{self, argsz, DeviceInfo, IrqInfo, IrqSet1, RegionInfo};
use super::irq::EventFd;
use super::mmio::Mmio;

/// An open VFIO device fd.
#[derive(Debug)]
pub struct Device {
    file: File,
    info: DeviceInfo,
}

/// PCI command register offset and its bits.
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 1 << 1;
const PCI_COMMAND_MASTER: u16 = 1 << 2;

impl Device {
    /// Wraps a device fd from a group or a cdev and reads its info.
    pub fn new(file: File) -> Result<Device, VfioError> {
        let mut info = DeviceInfo {
            argsz: argsz::<DeviceInfo>(),
            ..Default::default()
        };
        // SAFETY: `info` is a valid vfio_device_info.
        unsafe { ioctl::ioctl_ptr(file.as_fd(), ioctl::VFIO_DEVICE_GET_INFO, &mut info) }
            .map_err(|e| VfioError::os("VFIO_DEVICE_GET_INFO", e))?;
        Ok(Device { file, info })
    }

    /// Device info.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device fd.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether this is a PCI device.
    pub fn is_pci(&self) -> bool {
        self.info.flags & ioctl::VFIO_DEVICE_FLAGS_PCI != 0
    }

    /// Information about region `index` (BAR n is index n, config space 7).
    pub fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        if index >= self.info.num_regions {
            return Err(VfioError::Region(format!(
                "region {index} does not exist ({} regions)",
                self.info.num_regions
            )));
        }
        let mut r = RegionInfo {
            argsz: argsz::<RegionInfo>(),
            index,
            ..Default::default()
        };
        // SAFETY: `r` is a valid vfio_region_info.
        unsafe {
            ioctl::ioctl_ptr(
                self.file.as_fd(),
                ioctl::VFIO_DEVICE_GET_REGION_INFO,
                &mut r,
            )
        }
        .map_err(|e| VfioError::os(format!("VFIO_DEVICE_GET_REGION_INFO {index}"), e))?;
        Ok(r)
    }

    /// Maps `len` bytes of region `index` at `offset` (page-aligned) into
    /// this process.
    pub fn map_region(&self, index: u32, offset: u64, len: usize) -> Result<Mmio, VfioError> {
        let r = self.region_info(index)?;
        if r.size == 0 {
            return Err(VfioError::Region(format!(
                "region {index} is not implemented by the device (size 0)"
            )));
        }
        if r.flags & ioctl::VFIO_REGION_INFO_FLAG_MMAP == 0 {
            return Err(VfioError::Region(format!(
                "region {index} cannot be mmapped (flags {:#x})",
                r.flags
            )));
        }
        let end = offset.checked_add(len as u64);
        if len == 0 || end.is_none_or(|e| e > r.size) {
            return Err(VfioError::Region(format!(
                "range {offset:#x}+{len:#x} outside region {index} of {:#x} bytes",
                r.size
            )));
        }
        Mmio::map(&self.file, r.offset + offset, len)
            .map_err(|e| VfioError::os(format!("mmap region {index}"), e))
    }

    /// Maps a whole region.
    pub fn map_whole_region(&self, index: u32) -> Result<Mmio, VfioError> {
        let r = self.region_info(index)?;
        self.map_region(index, 0, r.size as usize)
    }

    /// Reads `buf.len()` bytes at `offset` of region `index` (through the
    /// fd: for config space and regions that cannot be mapped).
    pub fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), VfioError> {
        let r = self.region_info(index)?;
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > r.size)
        {
            return Err(VfioError::Region(format!("read outside region {index}")));
        }
        self.file
            .read_exact_at(buf, r.offset + offset)
            .map_err(|e| VfioError::os(format!("read region {index} at {offset:#x}"), e))
    }

    /// Writes `buf` at `offset` of region `index` through the fd.
    pub fn region_write(&self, index: u32, offset: u64, buf: &[u8]) -> Result<(), VfioError> {
        let r = self.region_info(index)?;
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > r.size)
        {
            return Err(VfioError::Region(format!("write outside region {index}")));
        }
        self.file
            .write_all_at(buf, r.offset + offset)
            .map_err(|e| VfioError::os(format!("write region {index} at {offset:#x}"), e))
    }

    /// Reads a 16-bit config-space register.
    pub fn config_read16(&self, offset: u64) -> Result<u16, VfioError> {
        let mut b = [0u8; 2];
        self.region_read(ioctl::VFIO_PCI_CONFIG_REGION_INDEX, offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Writes a 16-bit config-space register.
    pub fn config_write16(&self, offset: u64, v: u16) -> Result<(), VfioError> {
        self.region_write(
            ioctl::VFIO_PCI_CONFIG_REGION_INDEX,
            offset,
            &v.to_le_bytes(),
        )
    }

    /// Enables memory decoding and bus mastering (the device may DMA).
    pub fn enable_bus_master(&self) -> Result<(), VfioError> {
        let c = self.config_read16(PCI_COMMAND)?;
        self.config_write16(PCI_COMMAND, c | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)
    }

    /// Information about interrupt index `index` (INTx 0, MSI 1, MSI-X 2).
    pub fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        let mut i = IrqInfo {
            argsz: argsz::<IrqInfo>(),
            index,
            ..Default::default()
        };
        // SAFETY: `i` is a valid vfio_irq_info.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_DEVICE_GET_IRQ_INFO, &mut i) }
            .map_err(|e| VfioError::os(format!("VFIO_DEVICE_GET_IRQ_INFO {index}"), e))?;
        Ok(i)
    }

    /// Routes vector 0 of interrupt `index` to `efd` (enables MSI when
    /// `index` is MSI).
    pub fn enable_irq(&self, index: u32, efd: &EventFd) -> Result<(), VfioError> {
        let info = self.irq_info(index)?;
        if info.count == 0 || info.flags & ioctl::VFIO_IRQ_INFO_EVENTFD == 0 {
            return Err(VfioError::Region(format!(
                "interrupt index {index} has no eventfd-capable vector"
            )));
        }
        let mut s = IrqSet1 {
            argsz: argsz::<IrqSet1>(),
            flags: ioctl::VFIO_IRQ_SET_DATA_EVENTFD | ioctl::VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 1,
            fd: efd.raw(),
        };
        // SAFETY: `s` is a vfio_irq_set followed by exactly `count` eventfds.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_DEVICE_SET_IRQS, &mut s) }
            .map_err(|e| VfioError::os(format!("VFIO_DEVICE_SET_IRQS index {index}"), e))?;
        Ok(())
    }

    /// Unmasks INTx after an interrupt was handled (VFIO masks it on
    /// delivery).
    pub fn unmask_intx(&self) -> Result<(), VfioError> {
        let mut s = IrqSet1 {
            argsz: argsz::<IrqSet1>() - 4,
            flags: ioctl::VFIO_IRQ_SET_DATA_NONE | ioctl::VFIO_IRQ_SET_ACTION_UNMASK,
            index: ioctl::VFIO_PCI_INTX_IRQ_INDEX,
            start: 0,
            count: 1,
            fd: -1,
        };
        // SAFETY: `s` is a valid vfio_irq_set without data.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_DEVICE_SET_IRQS, &mut s) }
            .map_err(|e| VfioError::os("VFIO_DEVICE_SET_IRQS unmask INTx", e))?;
        Ok(())
    }

    /// Disables every vector of interrupt `index`.
    pub fn disable_irq(&self, index: u32) -> Result<(), VfioError> {
        let mut s = IrqSet1 {
            argsz: argsz::<IrqSet1>() - 4,
            flags: ioctl::VFIO_IRQ_SET_DATA_NONE | ioctl::VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 0,
            fd: -1,
        };
        // SAFETY: `s` is a valid vfio_irq_set with count 0.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_DEVICE_SET_IRQS, &mut s) }
            .map_err(|e| VfioError::os(format!("VFIO_DEVICE_SET_IRQS disable {index}"), e))?;
        Ok(())
    }

    /// Function-level reset.
    pub fn reset(&self) -> Result<(), VfioError> {
        ioctl::ioctl_val(self.file.as_fd(), ioctl::VFIO_DEVICE_RESET, 0)
            .map_err(|e| VfioError::os("VFIO_DEVICE_RESET", e))?;
        Ok(())
    }

    /// Raw fd (for diagnostics).
    pub fn raw_fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}
