//! The virtio-blk device (VIRTIO 1.2 §5.2): config space, request parsing and
//! the per-device engine that moves requests from virtqueues to a backend and
//! completions back.

pub mod config;
pub mod device;
pub mod latency;
pub mod metrics;
pub mod notify;
pub mod qos;
pub mod request;

#[cfg(any(test, feature = "test-utils"))]
pub mod mock;

#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;

pub use config::BlkConfig;
pub use device::{BlkDevice, BlkStats};
pub use notify::ConfigNotifier;
pub use qos::{QosHandle, QosLimits};

/// Request type: read (§5.2.6).
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// Request type: write.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// Request type: flush.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// Request type: device id string.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;
/// Request type: discard.
pub const VIRTIO_BLK_T_DISCARD: u32 = 11;
/// Request type: write zeroes.
pub const VIRTIO_BLK_T_WRITE_ZEROES: u32 = 13;

/// Status: success.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Status: I/O error (also: malformed request).
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Status: request type not supported.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// Feature: `size_max` is valid (§5.2.3).
pub const VIRTIO_BLK_F_SIZE_MAX: u64 = 1 << 1;
/// Feature: `seg_max` is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// Feature: read-only device.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// Feature: `blk_size` is valid.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// Feature: flush command.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
/// Feature: topology fields are valid.
pub const VIRTIO_BLK_F_TOPOLOGY: u64 = 1 << 10;
/// Feature: more than one queue (`num_queues`).
pub const VIRTIO_BLK_F_MQ: u64 = 1 << 12;
/// Feature: discard command.
pub const VIRTIO_BLK_F_DISCARD: u64 = 1 << 13;
/// Feature: write-zeroes command.
pub const VIRTIO_BLK_F_WRITE_ZEROES: u64 = 1 << 14;

/// Bytes per sector: virtio-blk addresses in 512-byte units whatever the
/// block size (§5.2.6).
pub const SECTOR_SIZE: u64 = 512;
