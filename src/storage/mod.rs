//! The storage-device factory, below `cmd/` and `dataplane/`: bdevs
//! (named backends) and vhost-blk controllers (a device on a bdev, its
//! vhost-user socket, an optional cache), created and deleted while the
//! poller runs. `blk serve` and `run --blk` flags, the TOML `[[blk]]`
//! tables, `--config-json` files and the JSON-RPC methods all build
//! devices here.
//!
//! ```text
//!  --socket/--backend, [[blk]] ─► cli::add ─┐
//!  rpc.py / vswitch rpc ─► rpc::serve ──────┼─► Storage (registry.rs)
//!  --config-json FILE ─► rpc::load_config ──┘     bdev.rs: Create ─► backend.rs / vfio backends
//!                                                 device.rs: [cache] ─► BlkDevice ─► BlkServer
//!                                                 vfio::backend::lease: the bdev's backend lent to the device
//!  stats.rs: stats lines and file, shutdown flush; resize.rs; service.rs: SPDK's views
//! ```

pub mod bdev;
pub mod cli;
pub mod device;
pub mod registry;
pub mod resize;
pub mod rpc;
pub mod service;
pub mod stats;

pub use registry::Storage;

#[cfg(test)]
mod tests;
