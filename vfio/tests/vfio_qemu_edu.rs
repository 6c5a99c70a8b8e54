//! Real VFIO on a real kernel: boots a QEMU guest (TCG, q35, emulated
//! Intel IOMMU) with QEMU's `edu` PCI device and Debian's kernel; the guest's
//! initramfs (busybox-static, the vfio modules from /lib/modules, and our
//! statically linked `vfio_edu_guest` example) binds the device to vfio-pci
//! and drives it through this crate's VFIO layer: group, container, config
//! space, BAR0 mapping, IOMMU DMA mappings, INTx and MSI on eventfds.
//!
//! Needs: qemu-system-x86 (qemu-system-x86_64), linux-image-amd64 (a kernel
//! in /boot with its modules), busybox-static and cpio.

mod guest;

#[test]
fn vfio_drives_qemu_edu_device_in_a_guest() {
    let (result, log) = guest::run(&guest::Guest {
        example: "vfio_edu_guest",
        modules: &[("vfio_iommu_type1", ""), ("vfio_pci", "")],
        devices: &["edu"],
        tag: "VFIO-EDU-RESULT:",
    });
    assert!(result.contains("id=0x010000ed"), "{result}");
    assert!(result.contains("config-ids=ok"), "{result}");
    assert!(
        result.contains("intx=2") && result.contains("msi=2"),
        "{result}"
    );
    assert!(result.contains("blocked-unmapped=yes"), "{result}");
    assert!(result.contains("accel-driver=rejected"), "{result}");
    // The write to the unmapped IOVA was stopped by the IOMMU, and the
    // guest kernel's VT-d driver reported the fault.
    assert!(
        log.iter()
            .any(|l| l.contains("DMAR") && l.contains("fault addr 0x1001000")),
        "no DMAR fault reported for the unmapped IOVA"
    );
}
