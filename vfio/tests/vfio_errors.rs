//! The VFIO layer on the host it runs on: every missing piece (VFIO
//! modules, IOMMU group, vfio-pci binding) is reported with an error that
//! names it and says how to fix it. The success path is exercised on a real
//! kernel by `vfio_qemu_edu.rs`.

use std::path::Path;

use vfio::pci::container::Container;
use vfio::pci::group::Group;
use vfio::pci::{PciAddress, Sysfs, VfioError, VfioPci};

#[test]
fn bad_and_missing_addresses() {
    let e = VfioPci::open("not-an-address").unwrap_err();
    assert!(matches!(e, VfioError::BadAddress(_)));
    assert!(e.to_string().contains("DDDD:BB:DD.F"), "{e}");
    let e = VfioPci::open("0000:fe:1f.7").unwrap_err();
    assert!(matches!(e, VfioError::NoDevice(_)), "{e}");
    assert!(
        e.to_string().contains("/sys/bus/pci/devices/0000:fe:1f.7"),
        "{e}"
    );
}

#[test]
fn container_reports_missing_vfio() {
    match Container::open() {
        Ok(c) => {
            assert!(Path::new("/dev/vfio/vfio").exists());
            // API version was checked; type1 is what vfio_iommu_type1 offers.
            let _ = c.check_extension(vfio::pci::ioctl::VFIO_TYPE1V2_IOMMU);
        }
        Err(e) => {
            assert!(
                !Path::new("/dev/vfio/vfio").exists(),
                "unexpected error: {e}"
            );
            assert!(matches!(e, VfioError::NoVfio));
            assert!(e.to_string().contains("modprobe vfio-pci"), "{e}");
        }
    }
    let e = Group::open(999_999).unwrap_err();
    assert!(
        matches!(e, VfioError::NoVfio | VfioError::NoGroupNode(_)),
        "{e}"
    );
}

#[test]
fn device_not_bound_to_vfio_pci_is_explained() {
    let sys = Sysfs::default();
    let Ok(rd) = std::fs::read_dir("/sys/bus/pci/devices") else {
        // No PCI bus visible: every open must say the device is missing.
        assert!(matches!(
            VfioPci::open("0000:00:00.0"),
            Err(VfioError::NoDevice(_))
        ));
        return;
    };
    let mut checked = 0;
    for e in rd.flatten() {
        let Ok(a) = PciAddress::parse(&e.file_name().to_string_lossy()) else {
            continue;
        };
        let driver = sys.driver(&a).unwrap();
        if driver.as_deref() == Some("vfio-pci") {
            continue;
        }
        let err = VfioPci::open(a.as_str()).unwrap_err();
        match &err {
            VfioError::NotBound { addr, driver: d } => {
                assert_eq!(addr, a.as_str());
                assert_eq!(d, &driver);
            }
            other => panic!("{a}: expected NotBound, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("driver_override") && msg.contains(a.as_str()),
            "{msg}"
        );
        checked += 1;
    }
    assert!(checked > 0 || std::fs::read_dir("/sys/bus/pci/devices").unwrap().count() == 0);
}
