//! virtio-blk configuration: the features offered and the config space
//! (VIRTIO 1.2 §5.2.4, `struct virtio_blk_config`).

use super::*;
use crate::backend::BackendInfo;
use crate::virtq::{
    VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};

/// Field offsets in the config space (§5.2.4).
mod field {
    use std::ops::Range;
    pub const CAPACITY: Range<usize> = 0..8;
    pub const SIZE_MAX: Range<usize> = 8..12;
    pub const SEG_MAX: Range<usize> = 12..16;
    pub const BLK_SIZE: Range<usize> = 20..24;
    pub const PHYSICAL_BLOCK_EXP: usize = 24;
    pub const MIN_IO_SIZE: Range<usize> = 26..28;
    pub const OPT_IO_SIZE: Range<usize> = 28..32;
    pub const WRITEBACK: usize = 32;
    pub const NUM_QUEUES: Range<usize> = 34..36;
    pub const MAX_DISCARD_SECTORS: Range<usize> = 36..40;
    pub const MAX_DISCARD_SEG: Range<usize> = 40..44;
    pub const DISCARD_SECTOR_ALIGNMENT: Range<usize> = 44..48;
    pub const MAX_WRITE_ZEROES_SECTORS: Range<usize> = 48..52;
    pub const MAX_WRITE_ZEROES_SEG: Range<usize> = 52..56;
    pub const WRITE_ZEROES_MAY_UNMAP: usize = 56;
}

/// Size of the config space this device serves (fields past §5.2.4's
/// `write_zeroes_may_unmap` read as zero).
pub const CONFIG_SPACE_LEN: usize = 256;

/// Segments per request the device accepts (`seg_max`).
pub const SEG_MAX: u32 = 126;
/// Bytes per segment (`size_max`).
pub const SIZE_MAX: u32 = 1 << 20;
/// Sectors per discard / write-zeroes segment.
pub const MAX_DISCARD_SECTORS: u32 = 1 << 22;

/// The device's virtio-blk configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkConfig {
    /// Capacity in 512-byte sectors.
    pub capacity_sectors: u64,
    /// Logical block size (512 or 4096).
    pub blk_size: u32,
    /// Number of request queues.
    pub num_queues: u16,
    /// Writes are refused.
    pub read_only: bool,
    /// FLUSH offered.
    pub flush: bool,
    /// DISCARD offered.
    pub discard: bool,
    /// WRITE_ZEROES offered.
    pub write_zeroes: bool,
    /// GET_ID answer (padded with NULs to 20 bytes).
    pub serial: [u8; 20],
    /// Write-back cache flag as the driver last set it.
    pub writeback: u8,
}

impl BlkConfig {
    /// Configuration for a backend.
    pub fn new(
        info: &BackendInfo,
        blk_size: u32,
        num_queues: u16,
        serial: &str,
    ) -> Result<Self, String> {
        if blk_size != 512 && blk_size != 4096 {
            return Err(format!("block size {blk_size}: must be 512 or 4096"));
        }
        if num_queues == 0 {
            return Err("at least one queue".into());
        }
        let mut s = [0u8; 20];
        let n = serial.len().min(20);
        s[..n].copy_from_slice(&serial.as_bytes()[..n]);
        Ok(BlkConfig {
            capacity_sectors: info.capacity / blk_size as u64 * blk_size as u64 / SECTOR_SIZE,
            blk_size,
            num_queues,
            read_only: info.read_only,
            flush: info.flush,
            discard: info.discard,
            write_zeroes: info.write_zeroes,
            serial: s,
            writeback: info.flush as u8,
        })
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_sectors * SECTOR_SIZE
    }

    /// Device feature bits offered to the driver.
    pub fn features(&self) -> u64 {
        let mut f = VIRTIO_F_VERSION_1
            | VIRTIO_F_RING_PACKED
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_RING_F_EVENT_IDX
            | VIRTIO_BLK_F_SIZE_MAX
            | VIRTIO_BLK_F_SEG_MAX
            | VIRTIO_BLK_F_BLK_SIZE
            | VIRTIO_BLK_F_TOPOLOGY
            | VIRTIO_BLK_F_MQ;
        if self.read_only {
            f |= VIRTIO_BLK_F_RO;
        }
        if self.flush {
            f |= VIRTIO_BLK_F_FLUSH;
        }
        if self.discard {
            f |= VIRTIO_BLK_F_DISCARD;
        }
        if self.write_zeroes {
            f |= VIRTIO_BLK_F_WRITE_ZEROES;
        }
        f
    }

    /// The config space bytes (little-endian, §5.2.4).
    pub fn space(&self) -> [u8; CONFIG_SPACE_LEN] {
        let mut b = [0u8; CONFIG_SPACE_LEN];
        b[field::CAPACITY].copy_from_slice(&self.capacity_sectors.to_le_bytes());
        b[field::SIZE_MAX].copy_from_slice(&SIZE_MAX.to_le_bytes());
        b[field::SEG_MAX].copy_from_slice(&SEG_MAX.to_le_bytes());
        b[field::BLK_SIZE].copy_from_slice(&self.blk_size.to_le_bytes());
        b[field::PHYSICAL_BLOCK_EXP] = 0;
        b[field::MIN_IO_SIZE].copy_from_slice(&((self.blk_size / 512) as u16).to_le_bytes());
        b[field::OPT_IO_SIZE].copy_from_slice(&0u32.to_le_bytes());
        b[field::WRITEBACK] = self.writeback;
        b[field::NUM_QUEUES].copy_from_slice(&self.num_queues.to_le_bytes());
        if self.discard {
            b[field::MAX_DISCARD_SECTORS].copy_from_slice(&MAX_DISCARD_SECTORS.to_le_bytes());
            b[field::MAX_DISCARD_SEG].copy_from_slice(&1u32.to_le_bytes());
            b[field::DISCARD_SECTOR_ALIGNMENT]
                .copy_from_slice(&(self.blk_size / 512).to_le_bytes());
        }
        if self.write_zeroes {
            b[field::MAX_WRITE_ZEROES_SECTORS].copy_from_slice(&MAX_DISCARD_SECTORS.to_le_bytes());
            b[field::MAX_WRITE_ZEROES_SEG].copy_from_slice(&1u32.to_le_bytes());
            b[field::WRITE_ZEROES_MAY_UNMAP] = 1;
        }
        b
    }

    /// Reads `len` config bytes at `offset`; `None` if outside the space.
    pub fn read(&self, offset: u32, len: u32) -> Option<Vec<u8>> {
        let end = (offset as usize).checked_add(len as usize)?;
        let space = self.space();
        space.get(offset as usize..end).map(<[u8]>::to_vec)
    }

    /// Driver write to the config space: only `writeback` is writable.
    pub fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), String> {
        if offset as usize == field::WRITEBACK && data.len() == 1 {
            self.writeback = data[0] & 1;
            Ok(())
        } else {
            Err(format!(
                "config write of {} bytes at {offset}: read-only field",
                data.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(capacity: u64) -> BackendInfo {
        BackendInfo {
            capacity,
            read_only: false,
            flush: true,
            discard: true,
            write_zeroes: true,
            max_inflight: 8,
        }
    }

    #[test]
    fn construct() {
        let c = BlkConfig::new(&info((1 << 30) + 1000), 4096, 4, "serial-123").unwrap();
        let b = c.space();
        // Capacity in 512-byte sectors, rounded down to whole 4 KiB blocks.
        assert_eq!(&b[0..8], &((1u64 << 30) / 512).to_le_bytes());
        assert_eq!(&b[8..12], &SIZE_MAX.to_le_bytes());
        assert_eq!(&b[12..16], &SEG_MAX.to_le_bytes());
        assert_eq!(&b[20..24], &4096u32.to_le_bytes());
        assert_eq!(
            &b[26..28],
            &8u16.to_le_bytes(),
            "min_io_size in logical blocks of 512"
        );
        assert_eq!(b[32], 1, "writeback: the backend has a cache to flush");
        assert_eq!(&b[34..36], &4u16.to_le_bytes());
        assert_eq!(&b[36..40], &MAX_DISCARD_SECTORS.to_le_bytes());
        assert_eq!(&b[40..44], &1u32.to_le_bytes());
        assert_eq!(&b[44..48], &8u32.to_le_bytes());
        assert_eq!(&b[48..52], &MAX_DISCARD_SECTORS.to_le_bytes());
        assert_eq!(&b[52..56], &1u32.to_le_bytes());
        assert_eq!(b[56], 1);
        assert!(b[60..].iter().all(|&x| x == 0));
        assert_eq!(&c.serial[..10], b"serial-123");
        let f = c.features();
        for bit in [
            VIRTIO_BLK_F_FLUSH,
            VIRTIO_BLK_F_DISCARD,
            VIRTIO_BLK_F_WRITE_ZEROES,
            VIRTIO_BLK_F_MQ,
            VIRTIO_F_VERSION_1,
        ] {
            assert_ne!(f & bit, 0);
        }
        assert_eq!(f & VIRTIO_BLK_F_RO, 0);
    }

    #[test]
    fn read_and_write_the_space() {
        let mut c = BlkConfig::new(&info(1 << 20), 512, 1, "s").unwrap();
        assert_eq!(c.read(0, 8).unwrap(), 2048u64.to_le_bytes().to_vec());
        assert_eq!(c.read(250, 6).unwrap().len(), 6);
        assert!(c.read(250, 7).is_none(), "past the space");
        assert!(c.read(u32::MAX, 2).is_none());
        c.write(32, &[0]).unwrap();
        assert_eq!(c.space()[32], 0, "driver turned write-back off");
        assert!(
            c.write(0, &[1, 2, 3, 4, 5, 6, 7, 8]).is_err(),
            "capacity is read-only"
        );
        assert!(c.write(32, &[1, 1]).is_err());
    }

    #[test]
    fn refuses_bad_geometry() {
        assert!(BlkConfig::new(&info(1 << 20), 1024, 1, "s").is_err());
        assert!(BlkConfig::new(&info(1 << 20), 512, 0, "s").is_err());
        let ro = BlkConfig::new(
            &BackendInfo {
                read_only: true,
                ..info(1 << 20)
            },
            512,
            1,
            "s",
        )
        .unwrap();
        assert_ne!(ro.features() & VIRTIO_BLK_F_RO, 0);
    }
}
