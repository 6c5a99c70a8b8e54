//! The params of each SPDK method in the subset, as SPDK's decoders
//! (`spdk_json_object_decoder` tables in module/bdev/*/..._rpc.c,
//! lib/bdev/bdev_rpc.c, lib/vhost/vhost_rpc.c) define them: the same
//! member names, required ones required, SPDK's optional ones accepted.
//! Like `spdk_json_decode_object`, unknown members are refused
//! (`deny_unknown_fields`), except for `vhost_create_blk_controller`,
//! which SPDK decodes with `spdk_json_decode_object_relaxed` (transport
//! options ride along; ours are the cache options).
//!
//! The same types serialize into `framework_get_config`'s entries, so a
//! saved configuration replays through the same decoders.

use serde::{Deserialize, Serialize};

/// `bdev_null_create` (module/bdev/null/bdev_null_rpc.c).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullCreate {
    /// Bdev name.
    pub name: String,
    /// Blocks.
    pub num_blocks: u64,
    /// Data block size (512 or 4096 here).
    pub block_size: u32,
    /// UUID (generated if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Physical block size (accepted; the guest sees `block_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_block_size: Option<u32>,
    /// Metadata bytes per block: only 0 here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md_size: Option<u32>,
    /// Protection information type: only 0 (none) here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dif_type: Option<i32>,
    /// Accepted (meaningless without DIF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dif_is_head_of_md: Option<bool>,
    /// Accepted (meaningless without DIF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dif_pi_format: Option<u32>,
    /// Accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_write_alignment: Option<u32>,
    /// Accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_write_granularity: Option<u32>,
    /// Accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimal_write_size: Option<u32>,
    /// Accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_unmap_alignment: Option<u32>,
    /// Accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_unmap_granularity: Option<u32>,
}

/// `bdev_malloc_create` (module/bdev/malloc/bdev_malloc_rpc.c).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MallocCreate {
    /// Bdev name (`MallocN` if absent, as SPDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Blocks.
    pub num_blocks: u64,
    /// Block size (512 or 4096 here).
    pub block_size: u32,
    /// UUID (generated if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_block_size: Option<u32>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimal_io_boundary: Option<u32>,
    /// Only 0 here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md_size: Option<u32>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md_interleave: Option<bool>,
    /// Only 0 here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dif_type: Option<i32>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dif_is_head_of_md: Option<bool>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dif_pi_format: Option<u32>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_id: Option<i32>,
}

/// `bdev_aio_create` (module/bdev/aio/bdev_aio_rpc.c); served by the
/// io_uring file backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AioCreate {
    /// Bdev name.
    pub name: String,
    /// File or block device.
    pub filename: String,
    /// Block size (512 or 4096; 512 if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Refuse writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// Accepted (SPDK: fallocate on write-zeroes/unmap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallocate: Option<bool>,
    /// UUID (generated if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Accepted (SPDK: RWF_NOWAIT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nowait: Option<bool>,
}

/// `bdev_iscsi_create` (module/bdev/iscsi/bdev_iscsi_rpc.c).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IscsiCreate {
    /// Bdev name.
    pub name: String,
    /// `iscsi://HOST[:PORT]/IQN/LUN`.
    pub url: String,
    /// The initiator's name.
    pub initiator_iqn: String,
    /// More portals of the same target, tried in order when a connection
    /// dies (`host[:port]` each; appended to the URL's as `portal=` keys).
    /// Not in SPDK, whose URL names one portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portals: Option<Vec<String>>,
}

/// The `{"name": ...}` of the delete methods and `bdev_aio_rescan`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByName {
    /// Bdev name.
    pub name: String,
}

/// `bdev_null_resize`: `new_size` in MiB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullResize {
    /// Bdev name.
    pub name: String,
    /// New size in MiB.
    pub new_size: u64,
}

/// `bdev_get_bdevs` (lib/bdev/bdev_rpc.c).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetBdevs {
    /// Only this bdev (-ENODEV if unknown).
    #[serde(default)]
    pub name: Option<String>,
    /// Accepted (SPDK: how long to wait for the bdev to appear).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// `bdev_get_iostat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetIostat {
    /// Only this bdev.
    #[serde(default)]
    pub name: Option<String>,
    /// Only `false` here (one poller: no per-channel split).
    #[serde(default)]
    pub per_channel: Option<bool>,
    /// Accepted: `none` only.
    #[serde(default)]
    pub reset_mode: Option<String>,
}

/// `bdev_set_qos_limit`: each limit absent leaves it as it is, 0 removes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QosLimit {
    /// Bdev name.
    pub name: String,
    /// Read+write I/Os per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rw_ios_per_sec: Option<u64>,
    /// Read+write MiB per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rw_mbytes_per_sec: Option<u64>,
    /// Read MiB per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_mbytes_per_sec: Option<u64>,
    /// Write MiB per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w_mbytes_per_sec: Option<u64>,
}

/// `vhost_create_blk_controller` (lib/vhost/vhost_rpc.c, vhost_blk.c),
/// plus this server's device options. Decoded relaxed, as SPDK does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VhostBlkCreate {
    /// Controller name: the socket is `VHOST_DIR/ctrlr`.
    pub ctrlr: String,
    /// The bdev to serve.
    pub dev_name: String,
    /// Accepted and reported (one poller serves every device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpumask: Option<String>,
    /// `vhost_user_blk` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Offer VIRTIO_BLK_F_RO and refuse writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// Accepted (the packed ring is always offered; the driver chooses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed_ring: Option<bool>,
    /// Request queues (16 if absent). Not in SPDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_queues: Option<u16>,
    /// Block cache size in front of the bdev: bytes, or "64M". Not in SPDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<serde_json::Value>,
    /// `writethrough` (default) or `writeback`. Not in SPDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_mode: Option<String>,
    /// `clock` (default) or `2q`. Not in SPDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_policy: Option<String>,
    /// File for the cache's metadata table (mapped into the guest). Not in SPDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_meta: Option<String>,
    /// The socket path, when not `VHOST_DIR/ctrlr` (devices made by the
    /// CLI's `--socket`/`--blk`). Not in SPDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

/// `vhost_delete_controller`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteController {
    /// Controller name.
    pub ctrlr: String,
}

/// `vhost_get_controllers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetControllers {
    /// Only this controller (-ENODEV if unknown).
    #[serde(default)]
    pub name: Option<String>,
}

/// `framework_get_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetConfig {
    /// Subsystem name (`bdev`, `vhost_blk`).
    pub name: String,
    /// Accepted; entries are never batched here.
    #[serde(default)]
    pub with_batches: Option<bool>,
}

/// `rpc_get_methods`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetMethods {
    /// Accepted: every method is callable at run time here.
    #[serde(default)]
    pub current: Option<bool>,
    /// Accepted: there are no aliases here.
    #[serde(default)]
    pub include_aliases: Option<bool>,
}

/// Methods without params (`spdk_get_version`, `framework_get_subsystems`):
/// SPDK refuses params given to them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}
