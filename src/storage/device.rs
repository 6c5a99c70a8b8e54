//! Assembling one served device: the backend, an optional block cache in
//! front of it (with its metadata table in a file the guest maps, or in an
//! anonymous memfd), the virtio-blk device and its vhost-user socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vfio::backend::Backend;
use vfio::blk::{BlkConfig, BlkDevice};
use vfio::cache::mapping::qemu_ivshmem_args;
use vfio::cache::{CacheConfig, CacheCounters, CachedBackend};
use vfio::poller::{DeviceCell, SharedDevice};
use vfio::vhost_user::BlkServer;

/// A served device: the device the poller polls, its vhost-user server
/// (not yet running) and its cache's counters.
pub struct Served {
    /// The device (add it to a poll group).
    pub dev: SharedDevice,
    /// Its vhost-user server (run it on a thread of its own).
    pub server: BlkServer,
    /// The cache's counters, if cached.
    pub cache: Option<Arc<CacheCounters>>,
}

/// What a device is made of.
pub struct DeviceSpec<'a> {
    /// Device name (stats, logs).
    pub name: String,
    /// Its vhost-user socket.
    pub socket: &'a Path,
    /// What the backend is, for the log (`iscsi://...`, a bdev name).
    pub label: &'a str,
    /// Device number: the serial (`vswitch-blkN`) and the cache's QEMU id.
    pub index: usize,
    /// The block cache and the file for its metadata table.
    pub cache: Option<(CacheConfig, Option<PathBuf>)>,
    /// Logical block size the guest sees (512 or 4096).
    pub block_size: u32,
    /// Request queues.
    pub queues: u16,
    /// Offer the device read-only (VIRTIO_BLK_F_RO; writes refused).
    pub read_only: bool,
}

/// The device name `blk serve --socket PATH` and `run --blk` give: the
/// socket's file name.
pub fn name_of_socket(sock: &Path, i: usize) -> String {
    sock.file_name()
        .map_or_else(|| format!("dev{i}"), |n| n.to_string_lossy().into_owned())
}

/// Puts the optional cache in front of `be`, makes the device and binds
/// its vhost-user socket.
pub fn make_device(spec: DeviceSpec<'_>, mut be: Box<dyn Backend>) -> Result<Served, String> {
    let DeviceSpec {
        name,
        socket,
        label,
        index,
        cache,
        block_size,
        queues,
        read_only,
    } = spec;
    let mut counters = None;
    if let Some((cc, cache_meta)) = cache {
        let mode = cc.mode;
        let c = match &cache_meta {
            Some(meta) => CachedBackend::with_meta_file(be, cc, meta)?,
            None => CachedBackend::new(be, cc)?,
        };
        eprintln!(
            "blk: {label}: {mode:?} cache of {} slots of 4 KiB, {:?} eviction{}",
            c.slots(),
            cc.eviction,
            if c.hugepages() { " (hugepages)" } else { "" }
        );
        let m = c.meta_region();
        if let Some(p) = m.path() {
            eprintln!(
                "blk: {label}: cache metadata in {} ({} bytes); map it into the guest with QEMU \
                 arguments: {}",
                p.display(),
                m.len(),
                qemu_ivshmem_args(p, m.len(), &format!("vswitch-cmeta{index}"))
            );
        }
        counters = Some(c.counters());
        be = Box::new(c);
    }
    let serial = format!("vswitch-blk{index}");
    let mut cfg = BlkConfig::new(&be.info(), block_size, queues, &serial)?;
    cfg.read_only |= read_only;
    eprintln!(
        "blk {name}: {label} ({} sectors, block size {}, {} queues{}) on {}",
        cfg.capacity_sectors,
        cfg.blk_size,
        cfg.num_queues,
        if cfg.read_only { ", read-only" } else { "" },
        socket.display()
    );
    let dev = DeviceCell::new(BlkDevice::new(&name, be, cfg));
    let server = BlkServer::bind(socket, Arc::clone(&dev))
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    Ok(Served {
        dev,
        server,
        cache: counters,
    })
}
