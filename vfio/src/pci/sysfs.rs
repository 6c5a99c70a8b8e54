//! PCI devices in sysfs: addresses, IOMMU groups, driver binding and SR-IOV
//! enablement (`sriov_numvfs`).

use std::path::{Path, PathBuf};

use super::error::VfioError;

/// A validated PCI address `DDDD:BB:DD.F`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciAddress(String);

impl PciAddress {
    /// Parses `DDDD:BB:DD.F` (or `BB:DD.F`, meaning domain 0000).
    pub fn parse(s: &str) -> Result<PciAddress, VfioError> {
        let bad = || VfioError::BadAddress(s.to_string());
        let full = if s.len() == 7 {
            format!("0000:{s}")
        } else {
            s.to_string()
        };
        let b = full.as_bytes();
        if b.len() != 12 || b[4] != b':' || b[7] != b':' || b[10] != b'.' {
            return Err(bad());
        }
        let hex = |r: std::ops::Range<usize>| {
            full.get(r)
                .filter(|t| t.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or_else(bad)
        };
        hex(0..4)?;
        hex(5..7)?;
        let dev = u8::from_str_radix(hex(8..10)?, 16).map_err(|_| bad())?;
        let func = hex(11..12)?.parse::<u8>().map_err(|_| bad())?;
        if dev > 0x1f || func > 7 {
            return Err(bad());
        }
        Ok(PciAddress(full.to_ascii_lowercase()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Root of sysfs (overridable for tests).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs {
            root: PathBuf::from("/sys"),
        }
    }
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn write(p: &Path, v: &str) -> Result<(), VfioError> {
    std::fs::write(p, v).map_err(|e| VfioError::os(format!("write {v:?} to {}", p.display()), e))
}

impl Sysfs {
    /// sysfs rooted at `root` instead of `/sys`.
    pub fn at(root: &Path) -> Self {
        Sysfs {
            root: root.to_path_buf(),
        }
    }

    /// The device's sysfs directory, which must exist.
    pub fn device_dir(&self, a: &PciAddress) -> Result<PathBuf, VfioError> {
        let d = self.root.join("bus/pci/devices").join(a.as_str());
        if !d.exists() {
            return Err(VfioError::NoDevice(a.to_string()));
        }
        Ok(d)
    }

    /// Vendor and device id.
    pub fn ids(&self, a: &PciAddress) -> Result<(u16, u16), VfioError> {
        let d = self.device_dir(a)?;
        let id = |f: &str| {
            read_trim(&d.join(f))
                .and_then(|s| u16::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .ok_or_else(|| {
                    VfioError::os(
                        format!("read {f} of {a}"),
                        std::io::ErrorKind::InvalidData.into(),
                    )
                })
        };
        Ok((id("vendor")?, id("device")?))
    }

    /// The device's IOMMU group number.
    pub fn iommu_group(&self, a: &PciAddress) -> Result<u32, VfioError> {
        let d = self.device_dir(a)?;
        let link = std::fs::read_link(d.join("iommu_group"))
            .map_err(|_| VfioError::NoIommuGroup(a.to_string()))?;
        link.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| VfioError::NoIommuGroup(a.to_string()))
    }

    /// Name of the driver bound to the device.
    pub fn driver(&self, a: &PciAddress) -> Result<Option<String>, VfioError> {
        let d = self.device_dir(a)?;
        Ok(std::fs::read_link(d.join("driver"))
            .ok()
            .and_then(|l| l.file_name().and_then(|n| n.to_str()).map(str::to_string)))
    }

    /// The VFIO character device of the device (`/dev/vfio/devices/vfioN`,
    /// Linux 6.6+ with `CONFIG_VFIO_DEVICE_CDEV`), if the kernel offers one.
    pub fn vfio_cdev(&self, a: &PciAddress) -> Option<PathBuf> {
        let d = self.device_dir(a).ok()?;
        let entry = std::fs::read_dir(d.join("vfio-dev"))
            .ok()?
            .flatten()
            .next()?;
        let p = Path::new("/dev/vfio/devices").join(entry.file_name());
        p.exists().then_some(p)
    }

    /// Binds the device to vfio-pci through `driver_override`.
    pub fn bind_vfio_pci(&self, a: &PciAddress) -> Result<(), VfioError> {
        self.bind_driver(a, "vfio-pci")
    }

    /// Binds the device to `driver` through `driver_override` (unbinding
    /// it from its current driver first).
    pub fn bind_driver(&self, a: &PciAddress, driver: &str) -> Result<(), VfioError> {
        let d = self.device_dir(a)?;
        if self.driver(a)?.as_deref() == Some(driver) {
            return Ok(());
        }
        write(&d.join("driver_override"), driver)?;
        if d.join("driver").exists() {
            write(&d.join("driver/unbind"), a.as_str())?;
        }
        write(&self.root.join("bus/pci/drivers_probe"), a.as_str())?;
        match self.driver(a)? {
            Some(d) if d == driver => Ok(()),
            Some(other) if driver == "vfio-pci" => Err(VfioError::NotBound {
                addr: a.to_string(),
                driver: Some(other),
            }),
            got => Err(VfioError::Region(format!(
                "{a}: binding to {driver} failed (now bound to {}); is the {driver} module loaded?",
                got.as_deref().unwrap_or("no driver")
            ))),
        }
    }

    /// Whether new VFs are probed by drivers automatically
    /// (`sriov_drivers_autoprobe`); turn it off to bind VFs to vfio-pci
    /// before any host driver touches them.
    pub fn set_sriov_drivers_autoprobe(&self, a: &PciAddress, on: bool) -> Result<(), VfioError> {
        let d = self.device_dir(a)?;
        write(
            &d.join("sriov_drivers_autoprobe"),
            if on { "1" } else { "0" },
        )
    }

    /// Maximum number of SR-IOV virtual functions.
    pub fn sriov_totalvfs(&self, a: &PciAddress) -> Result<u32, VfioError> {
        let d = self.device_dir(a)?;
        read_trim(&d.join("sriov_totalvfs"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| VfioError::NoSriov(a.to_string()))
    }

    /// Currently enabled SR-IOV virtual functions.
    pub fn sriov_numvfs(&self, a: &PciAddress) -> Result<u32, VfioError> {
        let d = self.device_dir(a)?;
        read_trim(&d.join("sriov_numvfs"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| VfioError::NoSriov(a.to_string()))
    }

    /// Enables `n` SR-IOV virtual functions (0 disables them). The kernel
    /// only accepts a change from or to 0, so a different non-zero count
    /// goes through 0 first.
    pub fn set_sriov_numvfs(&self, a: &PciAddress, n: u32) -> Result<(), VfioError> {
        let total = self.sriov_totalvfs(a)?;
        if n > total {
            return Err(VfioError::Region(format!(
                "{a} supports at most {total} VFs, asked for {n}"
            )));
        }
        let d = self.device_dir(a)?;
        let cur = self.sriov_numvfs(a)?;
        if cur == n {
            return Ok(());
        }
        if cur != 0 && n != 0 {
            write(&d.join("sriov_numvfs"), "0")?;
        }
        write(&d.join("sriov_numvfs"), &n.to_string())
    }

    /// PCI addresses of the enabled virtual functions (`virtfnN` links).
    pub fn sriov_vfs(&self, a: &PciAddress) -> Result<Vec<PciAddress>, VfioError> {
        let d = self.device_dir(a)?;
        let n = self.sriov_numvfs(a)?;
        (0..n)
            .map(|i| {
                let l = std::fs::read_link(d.join(format!("virtfn{i}")))
                    .map_err(|e| VfioError::os(format!("read virtfn{i} of {a}"), e))?;
                PciAddress::parse(l.file_name().and_then(|n| n.to_str()).unwrap_or(""))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        assert_eq!(
            PciAddress::parse("0000:00:04.0").unwrap().as_str(),
            "0000:00:04.0"
        );
        assert_eq!(
            PciAddress::parse("03:00.1").unwrap().as_str(),
            "0000:03:00.1"
        );
        assert_eq!(
            PciAddress::parse("0000:AB:1f.7").unwrap().as_str(),
            "0000:ab:1f.7"
        );
        for bad in [
            "",
            "0000:00:04",
            "0000:00:20.0",
            "0000:00:04.8",
            "zz00:00:04.0",
            "0000-00:04.0",
            "0000:00:04.0\n",
            "ééé:00:04.0",
        ] {
            assert!(PciAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sriov_through_a_fake_sysfs() {
        let root = std::env::temp_dir().join(format!("vfio-sysfs-{}", std::process::id()));
        let dev = root.join("bus/pci/devices/0000:03:00.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("sriov_totalvfs"), "8\n").unwrap();
        std::fs::write(dev.join("sriov_numvfs"), "0\n").unwrap();
        let s = Sysfs::at(&root);
        let a = PciAddress::parse("0000:03:00.0").unwrap();
        assert_eq!(s.sriov_totalvfs(&a).unwrap(), 8);
        s.set_sriov_numvfs(&a, 4).unwrap();
        assert_eq!(s.sriov_numvfs(&a).unwrap(), 4);
        assert!(s.set_sriov_numvfs(&a, 9).is_err());
        assert!(matches!(s.iommu_group(&a), Err(VfioError::NoIommuGroup(_))));
        let other = PciAddress::parse("0000:04:00.0").unwrap();
        assert!(matches!(
            s.sriov_totalvfs(&other),
            Err(VfioError::NoDevice(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
