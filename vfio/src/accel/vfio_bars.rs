//! The accelerator's BARs on a real device, mapped through VFIO.

use std::io;

use super::host::{Bar, BarMapper};
use crate::pci::{VfioError, VfioPci};

/// BAR mapper over a device bound to vfio-pci.
#[derive(Debug)]
pub struct VfioBars {
    pci: VfioPci,
}

impl VfioBars {
    /// Opens the device at PCI address `addr` through VFIO.
    pub fn open(addr: &str) -> Result<VfioBars, VfioError> {
        let pci = VfioPci::open(addr)?;
        pci.device().enable_bus_master()?;
        Ok(VfioBars { pci })
    }

    /// The underlying VFIO device.
    pub fn pci(&self) -> &VfioPci {
        &self.pci
    }
}

impl BarMapper for VfioBars {
    fn map(&self, bar: Bar, offset: u64, len: usize) -> io::Result<crate::pci::mmio::Mmio> {
        Ok(self.pci.device().map_region(bar.index(), offset, len)?)
    }
}
