//! The SPDK methods on the registry: `rpc::spdk::BlockService` for
//! [`Storage`], and the configuration it saves.

use rpc::spdk::info::{BdevInfo, ConfigEntry, Controller, IoStat, RateLimits};
use rpc::spdk::params::{QosLimit, VhostBlkCreate};
use rpc::spdk::{BlockService, Create, Module, Resize};
use rpc::RpcError;
use serde_json::json;

use super::bdev::product_name;
use super::registry::{apply_qos, Storage};

fn enodev(what: &str, name: &str) -> RpcError {
    RpcError::errno(libc::ENODEV, format!("{what} {name}"))
}

impl BlockService for Storage {
    fn create_bdev(&mut self, req: Create) -> Result<String, RpcError> {
        Storage::create_bdev(self, req)
    }

    fn delete_bdev(&mut self, module: Module, name: &str) -> Result<(), RpcError> {
        Storage::delete_bdev(self, module, name)
    }

    fn resize_bdev(&mut self, module: Module, name: &str, how: Resize) -> Result<(), RpcError> {
        self.resize(module, name, how)
    }

    fn bdevs(&mut self, name: Option<&str>) -> Result<Vec<BdevInfo>, RpcError> {
        if let Some(n) = name {
            self.bdev(n).ok_or_else(|| enodev("bdev", n))?;
        }
        Ok(self
            .bdevs
            .iter()
            .filter(|b| name.is_none_or(|n| b.name == n))
            .map(|b| {
                let holder = self.holder(&b.name);
                let cap = holder.map(|c| c.dev.lock().config().capacity_bytes());
                BdevInfo {
                    name: b.name.clone(),
                    aliases: Vec::new(),
                    product_name: product_name(b.module).to_owned(),
                    block_size: b.block_size,
                    num_blocks: b.num_blocks(cap),
                    uuid: b.uuid.clone(),
                    assigned_rate_limits: b.qos,
                    claimed: holder.is_some() || b.claimed(),
                    claim_type: (holder.is_some() || b.claimed())
                        .then(|| "exclusive_write".to_owned()),
                    zoned: false,
                    supported_io_types: b.io_types(),
                    driver_specific: b.driver_specific(),
                }
            })
            .collect())
    }

    fn iostat(&mut self, name: Option<&str>) -> Result<Vec<IoStat>, RpcError> {
        if let Some(n) = name {
            self.bdev(n).ok_or_else(|| enodev("bdev", n))?;
        }
        Ok(self
            .bdevs
            .iter()
            .filter(|b| name.is_none_or(|n| b.name == n))
            .map(|b| {
                let s = self.bdev_stats(b);
                IoStat {
                    name: b.name.clone(),
                    bytes_read: s.bytes_read,
                    num_read_ops: s.reads,
                    bytes_written: s.bytes_written,
                    num_write_ops: s.writes,
                    num_unmap_ops: s.discards,
                    num_flush_ops: s.flushes,
                    num_errors: s.errors,
                    ..IoStat::default()
                }
            })
            .collect())
    }

    fn set_qos(&mut self, req: QosLimit) -> Result<(), RpcError> {
        let b = self
            .bdev(&req.name)
            .ok_or_else(|| enodev("bdev", &req.name))?;
        let mut q = b.qos;
        let set = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut q.rw_ios_per_sec, req.rw_ios_per_sec);
        set(&mut q.rw_mbytes_per_sec, req.rw_mbytes_per_sec);
        set(&mut q.r_mbytes_per_sec, req.r_mbytes_per_sec);
        set(&mut q.w_mbytes_per_sec, req.w_mbytes_per_sec);
        if let Some(c) = self.holder(&req.name) {
            apply_qos(&c.dev, q);
        }
        if let Some(b) = self.bdev_mut(&req.name) {
            b.qos = q;
        }
        Ok(())
    }

    fn create_vhost_blk(&mut self, req: VhostBlkCreate) -> Result<(), RpcError> {
        self.create_controller(req)
    }

    fn delete_vhost(&mut self, ctrlr: &str) -> Result<(), RpcError> {
        self.delete_controller(ctrlr)
    }

    fn controllers(&mut self, name: Option<&str>) -> Result<Vec<Controller>, RpcError> {
        if let Some(n) = name {
            if !self.controller_list().iter().any(|c| c.name == n) {
                return Err(enodev("vhost controller", n));
            }
        }
        Ok(self
            .controller_list()
            .iter()
            .filter(|c| name.is_none_or(|n| c.name == n))
            .map(|c| {
                let connected = c.connected();
                Controller {
                    ctrlr: c.name.clone(),
                    cpumask: c.params.cpumask.clone().unwrap_or_else(|| "0x1".into()),
                    delay_base_us: 0,
                    iops_threshold: 0,
                    socket: c.socket.display().to_string(),
                    sessions: if connected {
                        vec![json!({"vid": 0, "id": 0, "name": format!("{}s0", c.name),
                                    "started": true})]
                    } else {
                        Vec::new()
                    },
                    backend_specific: json!({"block": {
                        "readonly": c.params.readonly.unwrap_or(false),
                        "bdev": c.bdev,
                        "transport": "vhost_user_blk",
                        "num_queues": c.dev.lock().num_queues(),
                        "cache": c.params.cache,
                    }}),
                }
            })
            .collect())
    }

    fn config(&mut self, subsystem: &str) -> Vec<ConfigEntry> {
        match subsystem {
            "bdev" => {
                let mut out = Vec::new();
                for b in &self.bdevs {
                    out.push(match &b.create {
                        Create::Null(p) => ConfigEntry::new("bdev_null_create", p),
                        Create::Malloc(p) => ConfigEntry::new("bdev_malloc_create", p),
                        Create::Aio(p) => ConfigEntry::new("bdev_aio_create", p),
                        Create::Iscsi(p) => ConfigEntry::new("bdev_iscsi_create", p),
                    });
                    if b.qos != RateLimits::default() {
                        out.push(ConfigEntry::new(
                            "bdev_set_qos_limit",
                            &QosLimit {
                                name: b.name.clone(),
                                rw_ios_per_sec: Some(b.qos.rw_ios_per_sec),
                                rw_mbytes_per_sec: Some(b.qos.rw_mbytes_per_sec),
                                r_mbytes_per_sec: Some(b.qos.r_mbytes_per_sec),
                                w_mbytes_per_sec: Some(b.qos.w_mbytes_per_sec),
                            },
                        ));
                    }
                }
                out
            }
            "vhost_blk" => self
                .controller_list()
                .iter()
                .map(|c| ConfigEntry::new("vhost_create_blk_controller", &c.params))
                .collect(),
            _ => Vec::new(),
        }
    }
}
