//! Guest-side check of SR-IOV enablement through sysfs and VFIO on a virtual
//! function, run inside a QEMU guest by `tests/vfio_qemu_sriov.rs` against
//! QEMU's NVMe controller with SR-IOV (`sriov_max_vfs=2`).
//!
//! Binds the physical function to pci-pf-stub (a driver that only enables
//! VFs), turns VF driver autoprobe off, enables the VFs through
//! `sriov_numvfs`, binds each VF to vfio-pci, opens it through VFIO, maps
//! its BAR0 and reads its ids through VFIO's config region, then disables
//! the VFs.
//! Prints one `VFIO-SRIOV-RESULT:` line.

use vfio::pci::{PciAddress, Sysfs, VfioError, VfioPci};

/// QEMU's NVMe controller (Red Hat vendor id).
const NVME_IDS: (u16, u16) = (0x1b36, 0x0010);

fn find_pf(sys: &Sysfs) -> Result<PciAddress, String> {
    let rd = std::fs::read_dir("/sys/bus/pci/devices")
        .map_err(|e| format!("/sys/bus/pci/devices: {e}"))?;
    for e in rd.flatten() {
        if let Ok(a) = PciAddress::parse(&e.file_name().to_string_lossy()) {
            if sys.ids(&a).ok() == Some(NVME_IDS) && sys.sriov_totalvfs(&a).is_ok() {
                return Ok(a);
            }
        }
    }
    Err("no SR-IOV capable NVMe controller (1b36:0010) on the PCI bus".into())
}

fn run() -> Result<String, String> {
    let sys = Sysfs::default();
    let e = |e: VfioError| e.to_string();
    let pf = find_pf(&sys)?;
    let total = sys.sriov_totalvfs(&pf).map_err(e)?;
    sys.bind_driver(&pf, "pci-pf-stub").map_err(|err| {
        let drivers: Vec<String> = std::fs::read_dir("/sys/bus/pci/drivers")
            .map(|rd| {
                rd.flatten()
                    .map(|d| d.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let ov = std::fs::read_to_string(format!("/sys/bus/pci/devices/{pf}/driver_override"))
            .unwrap_or_default();
        let mods = std::fs::read_to_string("/proc/modules").unwrap_or_default();
        format!(
            "{err} (drivers: {drivers:?}, override {ov:?}, modules: {})",
            mods.lines()
                .map(|l| l.split(' ').next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(",")
        )
    })?;
    sys.set_sriov_drivers_autoprobe(&pf, false).map_err(e)?;
    sys.set_sriov_numvfs(&pf, total).map_err(e)?;
    let vfs = sys.sriov_vfs(&pf).map_err(e)?;
    if vfs.len() != total as usize || sys.sriov_numvfs(&pf).map_err(e)? != total {
        return Err(format!("asked for {total} VFs, sysfs lists {}", vfs.len()));
    }
    let mut report = Vec::new();
    for vf in &vfs {
        let driver = sys.driver(vf).map_err(e)?;
        if driver.is_some() {
            return Err(format!(
                "{vf} was probed by {driver:?} although autoprobe is off"
            ));
        }
        sys.bind_vfio_pci(vf).map_err(e)?;
        let group = sys.iommu_group(vf).map_err(e)?;
        let outcome = match VfioPci::open(vf.as_str()) {
            Ok(pci) => {
                let dev = pci.device();
                // A VF's own config space reads vendor 0xffff; vfio-pci
                // presents the ids from the PF's SR-IOV capability.
                let ids = (
                    dev.config_read16(0).map_err(e)?,
                    dev.config_read16(2).map_err(e)?,
                );
                if ids != NVME_IDS {
                    return Err(format!(
                        "{vf}: config ids {:04x}:{:04x} through VFIO",
                        ids.0, ids.1
                    ));
                }
                let r0 = dev.region_info(0).map_err(e)?;
                // The BAR maps (QEMU keeps an offline secondary controller's
                // registers reading 0, so only the mapping is checked here).
                let bar = dev.map_region(0, 0, 4096).map_err(e)?;
                let _ = bar.read32(0);
                format!("open,cfg={:04x}:{:04x},bar0={:#x}", ids.0, ids.1, r0.size)
            }
            // A VF sharing an IOMMU group with its PF (no ACS) cannot be
            // given to user space while the PF has a host driver: the error
            // must say so.
            Err(VfioError::GroupNotViable(g)) if g == group => format!("group{g}-not-viable"),
            Err(err) => return Err(format!("{vf}: {err}")),
        };
        report.push(format!("{vf}:group{group}:{outcome}"));
    }
    sys.set_sriov_numvfs(&pf, 0).map_err(e)?;
    if sys.sriov_numvfs(&pf).map_err(e)? != 0
        || PciAddress::parse(vfs[0].as_str()).is_ok_and(|a| sys.device_dir(&a).is_ok())
    {
        return Err("VFs still present after sriov_numvfs=0".into());
    }
    Ok(format!(
        "ok pf={pf} totalvfs={total} vfs={} {}",
        vfs.len(),
        report.join(" ")
    ))
}

fn main() {
    match run() {
        Ok(s) => println!("VFIO-SRIOV-RESULT: {s}"),
        Err(e) => {
            println!("VFIO-SRIOV-RESULT: error {e}");
            std::process::exit(1);
        }
    }
}
