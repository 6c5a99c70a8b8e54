//! Devices given on the command line or in TOML (`--socket PATH --backend
//! SPEC`, `--blk SOCKET=BACKEND`, `[[blk]]`): each becomes a bdev and a
//! controller of the same name (the socket's file name), made through the
//! same calls as the JSON-RPC methods, so they are listed, saved and
//! deleted like any other.

use std::path::Path;

use rpc::spdk::info::RateLimits;
use rpc::spdk::params::VhostBlkCreate;
use vfio::blk::QosLimits;

use super::bdev::create_of_spec;
use super::device::name_of_socket;
use super::registry::Storage;

/// One device from the command line.
pub struct CliDevice<'a> {
    /// vhost-user socket.
    pub socket: &'a Path,
    /// `null:SIZE`, `mem:SIZE`, `file:PATH` or `iscsi://...`.
    pub backend: &'a str,
    /// Logical block size (for null, mem and file backends).
    pub block_size: u32,
    /// Request queues.
    pub queues: u16,
    /// Cache size in bytes.
    pub cache: Option<u64>,
    /// Write-back cache.
    pub writeback: bool,
    /// `clock` or `2q`.
    pub cache_policy: Option<&'a str>,
    /// File for the cache's metadata table.
    pub cache_meta: Option<&'a Path>,
    /// QoS limits (all 0: none).
    pub qos: QosLimits,
}

/// Adds device number `i`; returns its name.
pub fn add(s: &mut Storage, i: usize, d: &CliDevice<'_>) -> Result<String, String> {
    let mut name = name_of_socket(d.socket, i);
    if s.bdev(&name).is_some() || s.controller_list().iter().any(|c| c.name == name) {
        name = format!("{name}.{i}");
    }
    let create = create_of_spec(&name, d.backend, d.block_size)?;
    s.create_bdev(create).map_err(|e| {
        // No CHAP secret of an iscsi:// URL in the message.
        let b = blk_iscsi::spec::redact_url(d.backend);
        format!("{b}: {}", e.message)
    })?;
    if let Some(b) = s.bdev_mut(&name) {
        b.qos = RateLimits {
            rw_ios_per_sec: d.qos.rw_ios_per_sec,
            rw_mbytes_per_sec: d.qos.rw_mbytes_per_sec,
            r_mbytes_per_sec: d.qos.r_mbytes_per_sec,
            w_mbytes_per_sec: d.qos.w_mbytes_per_sec,
        };
    }
    let p = VhostBlkCreate {
        ctrlr: name.clone(),
        dev_name: name.clone(),
        num_queues: Some(d.queues),
        cache: d.cache.map(serde_json::Value::from),
        cache_mode: d.cache.map(|_| {
            if d.writeback {
                "writeback"
            } else {
                "writethrough"
            }
            .to_owned()
        }),
        cache_policy: d.cache.and(d.cache_policy.map(str::to_owned)),
        cache_meta: d.cache_meta.map(|p| p.display().to_string()),
        socket: Some(d.socket.display().to_string()),
        ..VhostBlkCreate::default()
    };
    if let Err(e) = s.create_controller(p) {
        let _ = s.delete_bdev(super::bdev::module_of_name(s, &name), &name);
        return Err(format!("{}: {}", d.socket.display(), e.message));
    }
    Ok(name)
}
