//! Errors of the VFIO layer, each saying what is missing and how to fix it.

use std::io;

/// A VFIO error.
#[derive(Debug)]
pub enum VfioError {
    /// `/dev/vfio/vfio` does not exist.
    NoVfio,
    /// The PCI address is not well-formed (`DDDD:BB:DD.F`).
    BadAddress(String),
    /// No such PCI device in sysfs.
    NoDevice(String),
    /// The device has no IOMMU group.
    NoIommuGroup(String),
    /// The device is not bound to vfio-pci.
    NotBound {
        /// PCI address.
        addr: String,
        /// Current driver, if any.
        driver: Option<String>,
    },
    /// The group's device node is missing.
    NoGroupNode(String),
    /// Some device of the group is bound to a host driver.
    GroupNotViable(u32),
    /// The kernel's VFIO API version is not the one this code speaks.
    ApiVersion(i32),
    /// The container supports no IOMMU model this code speaks.
    NoIommuModel,
    /// The device does not support SR-IOV.
    NoSriov(String),
    /// A region cannot be used as asked.
    Region(String),
    /// A system call failed.
    Os {
        /// What was being done.
        what: String,
        /// The OS error.
        err: io::Error,
    },
}

impl VfioError {
    /// Wraps an OS error with what was being done.
    pub fn os(what: impl Into<String>, err: io::Error) -> Self {
        VfioError::Os {
            what: what.into(),
            err,
        }
    }
}

impl std::fmt::Display for VfioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VfioError::NoVfio => f.write_str(
                "/dev/vfio/vfio does not exist: load the VFIO modules (`modprobe vfio-pci`, which \
                 pulls in vfio and vfio_iommu_type1)",
            ),
            VfioError::BadAddress(a) => {
                write!(f, "{a:?} is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:00:04.0)")
            }
            VfioError::NoDevice(a) => write!(f, "no PCI device {a} (/sys/bus/pci/devices/{a} is missing)"),
            VfioError::NoIommuGroup(a) => write!(
                f,
                "PCI device {a} has no IOMMU group: enable the IOMMU (boot with intel_iommu=on or \
                 amd_iommu=on, and VT-d/AMD-Vi in firmware)"
            ),
            VfioError::NotBound { addr, driver } => write!(
                f,
                "PCI device {addr} is bound to {}, not vfio-pci: run `echo vfio-pci > \
                 /sys/bus/pci/devices/{addr}/driver_override`, unbind it from its driver and `echo \
                 {addr} > /sys/bus/pci/drivers_probe` (vfio::pci::sysfs::bind_vfio_pci does this)",
                driver.as_deref().unwrap_or("no driver")
            ),
            VfioError::NoGroupNode(p) => {
                write!(f, "{p} does not exist: is the device bound to vfio-pci?")
            }
            VfioError::GroupNotViable(g) => write!(
                f,
                "IOMMU group {g} is not viable: every device in /sys/kernel/iommu_groups/{g}/devices \
                 must be bound to vfio-pci or to no driver"
            ),
            VfioError::ApiVersion(v) => write!(f, "kernel VFIO API version {v}, expected 0"),
            VfioError::NoIommuModel => f.write_str(
                "the VFIO container supports neither the type1v2 nor the type1 IOMMU model (is \
                 vfio_iommu_type1 loaded?)",
            ),
            VfioError::NoSriov(a) => write!(f, "PCI device {a} does not support SR-IOV (no sriov_totalvfs)"),
            VfioError::Region(m) => f.write_str(m),
            VfioError::Os { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

impl std::error::Error for VfioError {}

impl From<VfioError> for io::Error {
    fn from(e: VfioError) -> io::Error {
        match e {
            VfioError::Os { what, err } => io::Error::new(err.kind(), format!("{what}: {err}")),
            e => io::Error::other(e.to_string()),
        }
    }
}
