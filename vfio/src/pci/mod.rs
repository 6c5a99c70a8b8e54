//! VFIO: binding PCI devices to user space (container, group, device), DMA
//! through the IOMMU, BAR mapping, interrupts through eventfd, and SR-IOV.

pub mod mmio;
