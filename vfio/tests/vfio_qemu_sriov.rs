//! SR-IOV on a real kernel: a QEMU guest with an SR-IOV capable NVMe
//! controller (QEMU's `nvme` with `sriov_max_vfs=2` behind a PCIe root
//! port); the guest enables the VFs through `sriov_numvfs` with this crate's
//! sysfs layer, binds them to vfio-pci and opens them through VFIO.
//!
//! Needs: qemu-system-x86 (qemu-system-x86_64), linux-image-amd64,
//! busybox-static and cpio.

mod guest;

#[test]
fn sriov_vfs_enabled_through_sysfs_and_opened_with_vfio() {
    let (result, _log) = guest::run(&guest::Guest {
        example: "vfio_sriov_guest",
        modules: &[
            ("vfio_iommu_type1", ""),
            ("vfio_pci", ""),
            ("pci-pf-stub", ""),
        ],
        devices: &[
            "pcie-root-port,id=rp0,chassis=1",
            "nvme-subsys,id=subsys0",
            "nvme,serial=vswitch0,subsys=subsys0,bus=rp0,sriov_max_vfs=2,sriov_vq_flexible=4,\
             sriov_vi_flexible=2,max_ioqpairs=6,msix_qsize=4",
        ],
        tag: "VFIO-SRIOV-RESULT:",
    });
    assert!(result.contains("totalvfs=2 vfs=2"), "{result}");
    let vfs: Vec<&str> = result
        .split_whitespace()
        .filter(|w| w.contains(":group"))
        .collect();
    assert_eq!(vfs.len(), 2, "{result}");
    for v in vfs {
        // Each VF sits in its own IOMMU group here, so it must open.
        assert!(v.contains(":open,cfg=1b36:0010,bar0=0x"), "{v}");
    }
}
