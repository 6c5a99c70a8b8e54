//! Guest-side check of the VFIO layer against QEMU's `edu` PCI device
//! (1234:11e8), run inside a QEMU guest by `tests/vfio_qemu_edu.rs`.
//!
//! Binds the device to vfio-pci through sysfs, opens it through VFIO, maps
//! BAR0, reads the identification register, then runs DMA through an IOMMU
//! mapping in both directions with MSI completion interrupts delivered on an
//! eventfd, and finally checks that a DMA to an unmapped IOVA is blocked by
//! the IOMMU. Prints one `VFIO-EDU-RESULT:` line.

use std::time::{Duration, Instant};

use vfio::accel::host::{Accel, AccelError};
use vfio::accel::vfio_bars::VfioBars;
use vfio::pci::ioctl::{VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX};
use vfio::pci::irq::EventFd;
use vfio::pci::mmio::Mmio;
use vfio::pci::{PciAddress, Sysfs, VfioPci};

const EDU_ID: usize = 0x00;
const EDU_LIVENESS: usize = 0x04;
const EDU_IRQ_STATUS: usize = 0x24;
const EDU_IRQ_RAISE: usize = 0x60;
const EDU_IRQ_ACK: usize = 0x64;
const EDU_DMA_SRC: usize = 0x80;
const EDU_DMA_DST: usize = 0x88;
const EDU_DMA_CNT: usize = 0x90;
const EDU_DMA_CMD: usize = 0x98;
const EDU_DMA_RUN: u64 = 1;
const EDU_DMA_TO_RAM: u64 = 2;
const EDU_DMA_IRQ: u64 = 4;
const EDU_DMA_IRQ_BIT: u32 = 0x100;
const EDU_BUF: u64 = 0x40000;
/// Bytes per DMA: less than edu's 4 KiB buffer, because QEMU 7.2's range
/// check wrongly rejects a transfer that ends at the buffer's last byte.
const DMA_LEN: usize = 2048;
/// Inside edu's 28-bit DMA mask.
const IOVA: u64 = 0x0100_0000;

fn find_edu(sys: &Sysfs) -> Result<PciAddress, String> {
    let rd = std::fs::read_dir("/sys/bus/pci/devices")
        .map_err(|e| format!("/sys/bus/pci/devices: {e}"))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Ok(a) = PciAddress::parse(&name) {
            if sys.ids(&a).ok() == Some((0x1234, 0x11e8)) {
                return Ok(a);
            }
        }
    }
    Err("no edu device (1234:11e8) on the PCI bus".into())
}

/// Runs one edu DMA and waits for its MSI.
fn dma(bar: &Mmio, efd: &EventFd, src: u64, dst: u64, to_ram: bool) -> Result<(), String> {
    bar.write64(EDU_DMA_SRC, src);
    bar.write64(EDU_DMA_DST, dst);
    bar.write64(EDU_DMA_CNT, DMA_LEN as u64);
    let dir = if to_ram { EDU_DMA_TO_RAM } else { 0 };
    bar.write64(EDU_DMA_CMD, EDU_DMA_RUN | EDU_DMA_IRQ | dir);
    let n = efd
        .wait(Duration::from_secs(20))
        .map_err(|e| format!("eventfd: {e}"))?;
    if n == 0 {
        return Err("no MSI within 20 s".into());
    }
    let t = Instant::now();
    while bar.read64(EDU_DMA_CMD) & EDU_DMA_RUN != 0 {
        if t.elapsed() > Duration::from_secs(20) {
            return Err("DMA did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let st = bar.read32(EDU_IRQ_STATUS);
    if st & EDU_DMA_IRQ_BIT == 0 {
        return Err(format!("interrupt status {st:#x} lacks the DMA bit"));
    }
    bar.write32(EDU_IRQ_ACK, st);
    Ok(())
}

fn run() -> Result<String, String> {
    let sys = Sysfs::default();
    let addr = find_edu(&sys)?;
    sys.bind_vfio_pci(&addr).map_err(|e| e.to_string())?;
    let pci = VfioPci::open(addr.as_str()).map_err(|e| e.to_string())?;
    let iommufd = pci.uses_iommufd();
    let dev = pci.device();
    if !dev.is_pci() {
        return Err("VFIO device is not a PCI device".into());
    }
    let r0 = dev.region_info(0).map_err(|e| e.to_string())?;
    let bar = dev.map_whole_region(0).map_err(|e| e.to_string())?;
    let id = bar.read32(EDU_ID);
    if id != 0x0100_00ed {
        return Err(format!(
            "identification register {id:#010x}, expected 0x010000ed"
        ));
    }
    bar.write32(EDU_LIVENESS, 0x1234_5678);
    let live = bar.read32(EDU_LIVENESS);
    if live != !0x1234_5678u32 {
        return Err(format!("liveness register {live:#x}"));
    }
    // Config space through the device fd: vendor and device id.
    let ids = (
        dev.config_read16(0).map_err(|e| e.to_string())?,
        dev.config_read16(2).map_err(|e| e.to_string())?,
    );
    if ids != (0x1234, 0x11e8) {
        return Err(format!("config space ids {:04x}:{:04x}", ids.0, ids.1));
    }
    dev.enable_bus_master().map_err(|e| e.to_string())?;
    // INTx on an eventfd: raise edu's interrupt by hand, ack it, unmask.
    let intx = EventFd::new().map_err(|e| e.to_string())?;
    dev.enable_irq(VFIO_PCI_INTX_IRQ_INDEX, &intx)
        .map_err(|e| e.to_string())?;
    for round in 0..2 {
        bar.write32(EDU_IRQ_RAISE, 0x1);
        if intx
            .wait(Duration::from_secs(20))
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err(format!("no INTx within 20 s (round {round})"));
        }
        bar.write32(EDU_IRQ_ACK, 0x1);
        dev.unmask_intx().map_err(|e| e.to_string())?;
    }
    dev.disable_irq(VFIO_PCI_INTX_IRQ_INDEX)
        .map_err(|e| e.to_string())?;
    let efd = EventFd::new().map_err(|e| e.to_string())?;
    dev.enable_irq(VFIO_PCI_MSI_IRQ_INDEX, &efd)
        .map_err(|e| e.to_string())?;

    // Two pages: the source at 0, the destination at 4096.
    let buf = Mmio::anonymous(8192).map_err(|e| e.to_string())?;
    let pattern: Vec<u8> = (0..DMA_LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    buf.write_bytes(0, &pattern).map_err(|e| e.to_string())?;
    let map = pci.map_dma(&buf, IOVA).map_err(|e| e.to_string())?;
    dma(&bar, &efd, map.iova(), EDU_BUF, false)?;
    dma(&bar, &efd, EDU_BUF, map.iova() + 4096, true)?;
    let mut back = vec![0u8; DMA_LEN];
    buf.read_bytes(4096, &mut back).map_err(|e| e.to_string())?;
    if back != pattern {
        let diff = back
            .iter()
            .zip(&pattern)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!("DMA round trip differs at byte {diff}"));
    }
    // Without the mapping the IOMMU must block the device's writes.
    buf.fill(4096, DMA_LEN as u64, 0xA5)
        .map_err(|e| e.to_string())?;
    drop(map);
    bar.write64(EDU_DMA_SRC, EDU_BUF);
    bar.write64(EDU_DMA_DST, IOVA + 4096);
    bar.write64(EDU_DMA_CNT, DMA_LEN as u64);
    bar.write64(EDU_DMA_CMD, EDU_DMA_RUN | EDU_DMA_TO_RAM);
    let t = Instant::now();
    while bar.read64(EDU_DMA_CMD) & EDU_DMA_RUN != 0 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    buf.read_bytes(4096, &mut back).map_err(|e| e.to_string())?;
    if back.iter().any(|&b| b != 0xA5) {
        return Err("DMA to an unmapped IOVA reached memory: the IOMMU did not block it".into());
    }
    let _ = dev.disable_irq(VFIO_PCI_MSI_IRQ_INDEX);
    let bar0_size = r0.size;
    drop(bar);
    drop(pci);
    // The accelerator driver's real-device path (BARs mapped through VFIO)
    // must refuse a device that is not an accelerator, naming what it found.
    let bars =
        VfioBars::open(addr.as_str()).map_err(|e| format!("reopen through VfioBars: {e}"))?;
    let accel_check = match Accel::open(Box::new(bars)) {
        Err(AccelError::BadDeviceState(m)) if m.contains("0x010000ed") => "rejected",
        Err(e) => return Err(format!("accel driver on edu: unexpected error {e}")),
        Ok(_) => return Err("accel driver accepted the edu device".into()),
    };
    Ok(format!(
        "ok addr={addr} id={id:#010x} bar0={bar0_size:#x} iommufd={iommufd} config-ids=ok intx=2 \
         dma={DMA_LEN}x2 msi=2 blocked-unmapped=yes accel-driver={accel_check}"
    ))
}

fn main() {
    match run() {
        Ok(s) => println!("VFIO-EDU-RESULT: {s}"),
        Err(e) => {
            println!("VFIO-EDU-RESULT: error {e}");
            std::process::exit(1);
        }
    }
}
