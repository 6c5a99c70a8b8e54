//! What a storage process implements to be driven by the SPDK methods.

use super::info::{BdevInfo, ConfigEntry, Controller, IoStat};
use super::params::{AioCreate, IscsiCreate, MallocCreate, NullCreate, QosLimit, VhostBlkCreate};
use crate::error::RpcError;

/// A bdev module (which `bdev_*_delete` may remove which bdev: SPDK's
/// `spdk_bdev_unregister_by_name` answers -ENODEV for another module's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// `bdev_null_*`.
    Null,
    /// `bdev_malloc_*`.
    Malloc,
    /// `bdev_aio_*`.
    Aio,
    /// `bdev_iscsi_*`.
    Iscsi,
}

/// A bdev creation request.
#[derive(Debug, Clone, PartialEq)]
pub enum Create {
    /// `bdev_null_create`.
    Null(NullCreate),
    /// `bdev_malloc_create`.
    Malloc(MallocCreate),
    /// `bdev_aio_create`.
    Aio(AioCreate),
    /// `bdev_iscsi_create`.
    Iscsi(IscsiCreate),
}

/// A size change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// `bdev_null_resize`: the new size in bytes.
    To(u64),
    /// `bdev_aio_rescan`: take the file's current size.
    Rescan,
}

/// The configuration subsystems, in dependency order.
pub const SUBSYSTEMS: [&str; 2] = ["bdev", "vhost_blk"];

/// Bdevs and vhost-blk controllers that come and go at run time.
///
/// Errors follow SPDK: `-EEXIST` for a name in use, `-ENODEV` for an
/// unknown bdev or controller, `-EINVAL` for values out of range,
/// `-EBUSY`/`-EPERM` for a bdev a controller holds.
pub trait BlockService {
    /// Creates a bdev; returns its name.
    fn create_bdev(&mut self, req: Create) -> Result<String, RpcError>;
    /// Deletes a bdev of `module`.
    fn delete_bdev(&mut self, module: Module, name: &str) -> Result<(), RpcError>;
    /// Changes a bdev's size (the guest sees the new capacity).
    fn resize_bdev(&mut self, module: Module, name: &str, how: Resize) -> Result<(), RpcError>;
    /// Every bdev, or the one named.
    fn bdevs(&mut self, name: Option<&str>) -> Result<Vec<BdevInfo>, RpcError>;
    /// Counters of every bdev, or of the one named.
    fn iostat(&mut self, name: Option<&str>) -> Result<Vec<IoStat>, RpcError>;
    /// Sets QoS limits (absent ones unchanged, 0 removes one).
    fn set_qos(&mut self, req: QosLimit) -> Result<(), RpcError>;
    /// Creates a vhost-user-blk controller on a bdev.
    fn create_vhost_blk(&mut self, req: VhostBlkCreate) -> Result<(), RpcError>;
    /// Deletes a controller (-EBUSY while a front end is connected).
    fn delete_vhost(&mut self, ctrlr: &str) -> Result<(), RpcError>;
    /// Every controller, or the one named.
    fn controllers(&mut self, name: Option<&str>) -> Result<Vec<Controller>, RpcError>;
    /// The calls that rebuild a subsystem's current state.
    fn config(&mut self, subsystem: &str) -> Vec<ConfigEntry>;
}
