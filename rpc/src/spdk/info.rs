//! What the query methods answer, in SPDK's shapes: `bdev_get_bdevs`
//! (`rpc_dump_bdev_info` in lib/bdev/bdev_rpc.c), `bdev_get_iostat`
//! (`spdk_bdev_dump_io_stat_json` in lib/bdev/bdev.c),
//! `vhost_get_controllers` (`_rpc_get_vhost_controller` in
//! lib/vhost/vhost_rpc.c) and the configuration entries.

use serde::Serialize;
use serde_json::Value;

/// The QoS limits as `assigned_rate_limits` shows them (0: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RateLimits {
    /// Read+write I/Os per second.
    pub rw_ios_per_sec: u64,
    /// Read+write MiB per second.
    pub rw_mbytes_per_sec: u64,
    /// Read MiB per second.
    pub r_mbytes_per_sec: u64,
    /// Write MiB per second.
    pub w_mbytes_per_sec: u64,
}

impl RateLimits {
    /// No limit set.
    pub fn is_unlimited(&self) -> bool {
        *self == RateLimits::default()
    }
}

/// The I/O types a bdev supports (`supported_io_types`, SPDK's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IoTypes {
    /// READ.
    pub read: bool,
    /// WRITE.
    pub write: bool,
    /// UNMAP (virtio-blk DISCARD).
    pub unmap: bool,
    /// FLUSH.
    pub flush: bool,
    /// RESET.
    pub reset: bool,
    /// NVMe admin passthrough.
    pub nvme_admin: bool,
    /// NVMe I/O passthrough.
    pub nvme_io: bool,
    /// WRITE ZEROES.
    pub write_zeroes: bool,
    /// Zero-copy.
    pub zcopy: bool,
    /// COMPARE.
    pub compare: bool,
    /// COMPARE AND WRITE.
    pub compare_and_write: bool,
    /// ABORT.
    pub abort: bool,
}

/// One element of `bdev_get_bdevs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BdevInfo {
    /// Name.
    pub name: String,
    /// Aliases (none here).
    pub aliases: Vec<String>,
    /// SPDK's product name of the module ("Null disk", "Malloc disk",
    /// "AIO disk", "iSCSI LUN").
    pub product_name: String,
    /// Block size.
    pub block_size: u32,
    /// Blocks.
    pub num_blocks: u64,
    /// UUID.
    pub uuid: String,
    /// QoS limits.
    pub assigned_rate_limits: RateLimits,
    /// A vhost controller serves it.
    pub claimed: bool,
    /// `exclusive_write` when claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_type: Option<String>,
    /// Never zoned.
    pub zoned: bool,
    /// Supported I/O.
    pub supported_io_types: IoTypes,
    /// Module details (`{"aio": {"filename": ...}}`, ...).
    pub driver_specific: Value,
}

/// One bdev's counters in `bdev_get_iostat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoStat {
    /// Bdev name.
    pub name: String,
    /// Bytes read.
    pub bytes_read: u64,
    /// Read requests.
    pub num_read_ops: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Write requests.
    pub num_write_ops: u64,
    /// Bytes discarded.
    pub bytes_unmapped: u64,
    /// Discard requests.
    pub num_unmap_ops: u64,
    /// Not measured here (0).
    pub read_latency_ticks: u64,
    /// Not measured here (0).
    pub max_read_latency_ticks: u64,
    /// Not measured here (0).
    pub min_read_latency_ticks: u64,
    /// Not measured here (0).
    pub write_latency_ticks: u64,
    /// Not measured here (0).
    pub max_write_latency_ticks: u64,
    /// Not measured here (0).
    pub min_write_latency_ticks: u64,
    /// Not measured here (0).
    pub unmap_latency_ticks: u64,
    /// Not measured here (0).
    pub max_unmap_latency_ticks: u64,
    /// Not measured here (0).
    pub min_unmap_latency_ticks: u64,
    /// Flush requests (not in SPDK's list).
    pub num_flush_ops: u64,
    /// Requests that failed (not in SPDK's list).
    pub num_errors: u64,
}

/// One element of `vhost_get_controllers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Controller {
    /// Name.
    pub ctrlr: String,
    /// The cpumask it was given (`0x1` if none).
    pub cpumask: String,
    /// Interrupt coalescing (none here).
    pub delay_base_us: u32,
    /// Interrupt coalescing (none here).
    pub iops_threshold: u32,
    /// The vhost-user socket.
    pub socket: String,
    /// Connected front ends (`[{"vid": 0, ...}]` while one is).
    pub sessions: Vec<Value>,
    /// `{"block": {"readonly", "bdev", "transport"}}`, plus this server's
    /// `num_queues` and cache options.
    pub backend_specific: Value,
}

/// One `{"method": ..., "params": ...}` of a configuration.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ConfigEntry {
    /// Method to call.
    pub method: String,
    /// Its params.
    pub params: Value,
}

impl ConfigEntry {
    /// An entry calling `method` with `params` serialized.
    pub fn new(method: &str, params: &impl Serialize) -> ConfigEntry {
        ConfigEntry {
            method: method.to_owned(),
            params: serde_json::to_value(params).unwrap_or(Value::Null),
        }
    }
}
