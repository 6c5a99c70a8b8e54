//! The SPDK method table over a [`BlockService`].

use serde_json::{json, Value};

use super::params::{
    AioCreate, ByName, DeleteController, GetBdevs, GetConfig, GetControllers, GetIostat,
    GetMethods, IscsiCreate, MallocCreate, NoParams, NullCreate, NullResize, QosLimit,
    VhostBlkCreate,
};
use super::service::{BlockService, Create, Module, Resize, SUBSYSTEMS};
use crate::error::RpcError;
use crate::methods::{decode, Methods};

/// Nanoseconds: `bdev_get_iostat`'s ticks are nanoseconds here.
pub const TICK_RATE: u64 = 1_000_000_000;

/// The table of every method in the subset; `version` is what
/// `spdk_get_version` reports (`MAJOR.MINOR.PATCH[-SUFFIX]`).
pub fn table<S: BlockService + 'static>(version: &'static str) -> Methods<S> {
    let mut m = Methods::new();
    bdev_methods(&mut m);
    vhost_methods(&mut m);
    m.add("framework_get_subsystems", |_s: &mut S, _: NoParams| {
        Ok(json!([
            {"subsystem": "bdev", "depends_on": []},
            {"subsystem": "vhost_blk", "depends_on": ["bdev"]},
        ]))
    });
    m.add("framework_get_config", |s: &mut S, p: GetConfig| {
        if !SUBSYSTEMS.contains(&p.name.as_str()) {
            // lib/init/subsystem_rpc.c: "Subsystem '%s' not found".
            return Err(RpcError::invalid_params(format!(
                "Subsystem '{}' not found",
                p.name
            )));
        }
        Ok(s.config(&p.name))
    });
    m.add("spdk_get_version", move |_s: &mut S, _: NoParams| {
        Ok(version_json(version))
    });
    // rpc_get_methods lists the table itself: added last, it names them all.
    let mut names = m.names();
    names.push("rpc_get_methods");
    m.add("rpc_get_methods", move |_s: &mut S, _: GetMethods| {
        Ok(names.clone())
    });
    m
}

fn version_json(version: &str) -> Value {
    let (core, suffix) = version.split_once('-').unwrap_or((version, ""));
    let mut parts = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    json!({
        "version": format!("vswitch v{version} (SPDK JSON-RPC subset)"),
        "fields": {"major": major, "minor": minor, "patch": patch, "suffix": suffix},
    })
}

fn bdev_methods<S: BlockService + 'static>(m: &mut Methods<S>) {
    m.add("bdev_null_create", |s: &mut S, p: NullCreate| {
        s.create_bdev(Create::Null(p))
    });
    m.add("bdev_malloc_create", |s: &mut S, p: MallocCreate| {
        s.create_bdev(Create::Malloc(p))
    });
    m.add("bdev_aio_create", |s: &mut S, p: AioCreate| {
        s.create_bdev(Create::Aio(p))
    });
    m.add("bdev_iscsi_create", |s: &mut S, p: IscsiCreate| {
        s.create_bdev(Create::Iscsi(p))
    });
    for (name, module) in [
        ("bdev_null_delete", Module::Null),
        ("bdev_malloc_delete", Module::Malloc),
        ("bdev_aio_delete", Module::Aio),
        ("bdev_iscsi_delete", Module::Iscsi),
    ] {
        m.add(name, move |s: &mut S, p: ByName| {
            s.delete_bdev(module, &p.name).map(|()| true)
        });
    }
    m.add("bdev_null_resize", |s: &mut S, p: NullResize| {
        let bytes = p
            .new_size
            .checked_mul(1 << 20)
            .ok_or_else(|| RpcError::errno(libc::EINVAL, "new_size too large"))?;
        s.resize_bdev(Module::Null, &p.name, Resize::To(bytes))
            .map(|()| true)
    });
    m.add("bdev_aio_rescan", |s: &mut S, p: ByName| {
        s.resize_bdev(Module::Aio, &p.name, Resize::Rescan)
            .map(|()| true)
    });
    m.add("bdev_get_bdevs", |s: &mut S, p: GetBdevs| {
        s.bdevs(p.name.as_deref())
    });
    m.add("bdev_get_iostat", |s: &mut S, p: GetIostat| {
        if p.per_channel == Some(true) {
            return Err(RpcError::errno(
                libc::ENOTSUP,
                "per_channel statistics: one poller serves every device here",
            ));
        }
        if p.reset_mode.as_deref().is_some_and(|r| r != "none") {
            return Err(RpcError::errno(libc::ENOTSUP, "reset_mode other than none"));
        }
        let bdevs = s.iostat(p.name.as_deref())?;
        Ok(json!({
            "tick_rate": TICK_RATE,
            "ticks": now_ns(),
            "bdevs": bdevs,
        }))
    });
    m.add("bdev_set_qos_limit", |s: &mut S, p: QosLimit| {
        if p.rw_ios_per_sec.is_none()
            && p.rw_mbytes_per_sec.is_none()
            && p.r_mbytes_per_sec.is_none()
            && p.w_mbytes_per_sec.is_none()
        {
            // bdev_rpc.c: "No rate limits specified".
            return Err(RpcError::errno(libc::EINVAL, "No rate limits specified"));
        }
        s.set_qos(p).map(|()| true)
    });
}

fn vhost_methods<S: BlockService + 'static>(m: &mut Methods<S>) {
    // vhost_rpc.c answers every vhost failure with -32602 and strerror;
    // ours carry the errno as the code (rpc.py shows both the same way).
    m.add_raw("vhost_create_blk_controller", |s: &mut S, params| {
        let p: VhostBlkCreate = decode(params)?;
        s.create_vhost_blk(p).map(|()| Value::Bool(true))
    });
    m.add(
        "vhost_delete_controller",
        |s: &mut S, p: DeleteController| s.delete_vhost(&p.ctrlr).map(|()| true),
    );
    m.add("vhost_get_controllers", |s: &mut S, p: GetControllers| {
        s.controllers(p.name.as_deref())
    });
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
