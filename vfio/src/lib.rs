//! The device module: VFIO and accelerator virtual functions.
#![deny(missing_docs)]

pub mod accel;
pub mod pci;
