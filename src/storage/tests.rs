//! The registry through the SPDK method table, no VM: QoS and resize reach
//! the serving device, a deleted controller gives its bdev's backend back,
//! and a saved configuration replays into the same state.

use std::sync::Arc;

use serde_json::{json, Value};
use vfio::poller::PollGroup;

use super::rpc::methods;
use super::Storage;

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn registry(tag: &str) -> (Storage, Dir, Arc<PollGroup>) {
    let d = std::env::temp_dir().join(format!("vswitch-storage-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let group = PollGroup::new();
    (Storage::new(Arc::clone(&group), &d, 64), Dir(d), group)
}

fn call(s: &mut Storage, method: &str, params: Value) -> Result<Value, rpc::RpcError> {
    let p = (!params.is_null()).then_some(params);
    methods().call(s, method, p)
}

#[test]
fn qos_and_resize_reach_the_serving_device() {
    let (mut s, _d, group) = registry("qos");
    let poller = group.spawn(vfio::poller::PollMode::Busy).unwrap();
    call(
        &mut s,
        "bdev_null_create",
        json!({"name": "n0", "num_blocks": 2048, "block_size": 512}),
    )
    .unwrap();
    // Limits set before the controller exists apply when it is made.
    call(
        &mut s,
        "bdev_set_qos_limit",
        json!({"name": "n0", "rw_ios_per_sec": 5000}),
    )
    .unwrap();
    call(
        &mut s,
        "vhost_create_blk_controller",
        json!({"ctrlr": "c0", "dev_name": "n0"}),
    )
    .unwrap();
    let dev = Arc::clone(&s.controller_list()[0].dev);
    assert_eq!(dev.lock().qos_handle().get().rw_ios_per_sec, 5000);
    // And later changes reach it live; absent limits stay as they were.
    call(
        &mut s,
        "bdev_set_qos_limit",
        json!({"name": "n0", "w_mbytes_per_sec": 7}),
    )
    .unwrap();
    let q = dev.lock().qos_handle().get();
    assert_eq!((q.rw_ios_per_sec, q.w_mbytes_per_sec), (5000, 7));
    let b = call(&mut s, "bdev_get_bdevs", json!({"name": "n0"})).unwrap();
    assert_eq!(b[0]["assigned_rate_limits"]["w_mbytes_per_sec"], 7);

    // Online resize: 1 MiB -> 4 MiB, the device's capacity follows.
    call(
        &mut s,
        "bdev_null_resize",
        json!({"name": "n0", "new_size": 4}),
    )
    .unwrap();
    assert_eq!(dev.lock().config().capacity_bytes(), 4 << 20);
    let b = call(&mut s, "bdev_get_bdevs", json!({"name": "n0"})).unwrap();
    assert_eq!(b[0]["num_blocks"], 8192);
    let e = call(
        &mut s,
        "bdev_null_resize",
        json!({"name": "n0", "new_size": 1}),
    )
    .unwrap_err();
    assert_eq!(e.code, -libc::EINVAL, "null bdevs only grow, as SPDK's");

    // Deleting the controller gives the (resized) backend back to the bdev.
    drop(dev);
    call(&mut s, "vhost_delete_controller", json!({"ctrlr": "c0"})).unwrap();
    let b = call(&mut s, "bdev_get_bdevs", json!({"name": "n0"})).unwrap();
    assert_eq!(b[0]["claimed"], false);
    assert_eq!(b[0]["num_blocks"], 8192);
    call(
        &mut s,
        "vhost_create_blk_controller",
        json!({"ctrlr": "c1", "dev_name": "n0"}),
    )
    .unwrap();
    let dev = Arc::clone(&s.controller_list()[0].dev);
    assert_eq!(dev.lock().config().capacity_bytes(), 4 << 20);
    assert_eq!(dev.lock().qos_handle().get().rw_ios_per_sec, 5000);
    drop(dev);
    call(&mut s, "vhost_delete_controller", json!({"ctrlr": "c1"})).unwrap();

    // bdev_aio_rescan: the file grew behind the server's back; the serving
    // device takes its new size.
    let img = _d.0.join("grow.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    call(
        &mut s,
        "bdev_aio_create",
        json!({"name": "a0", "filename": img}),
    )
    .unwrap();
    call(
        &mut s,
        "vhost_create_blk_controller",
        json!({"ctrlr": "c2", "dev_name": "a0"}),
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    call(&mut s, "bdev_aio_rescan", json!({"name": "a0"})).unwrap();
    let dev = Arc::clone(&s.controller_list()[0].dev);
    assert_eq!(dev.lock().config().capacity_bytes(), 3 << 20);
    drop(dev);
    let e = call(
        &mut s,
        "bdev_null_resize",
        json!({"name": "a0", "new_size": 8}),
    )
    .unwrap_err();
    assert_eq!(e.code, -libc::ENODEV, "not a null bdev");
    call(&mut s, "vhost_delete_controller", json!({"ctrlr": "c2"})).unwrap();
    group.stop();
    poller.join().unwrap();
}

#[test]
fn a_saved_configuration_replays_into_the_same_state() {
    let (mut s, d, group) = registry("cfg");
    let poller = group.spawn(vfio::poller::PollMode::Busy).unwrap();
    let img = d.0.join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    call(
        &mut s,
        "bdev_malloc_create",
        json!({"num_blocks": 256, "block_size": 4096}),
    )
    .unwrap();
    call(
        &mut s,
        "bdev_aio_create",
        json!({"name": "a0", "filename": img, "readonly": true}),
    )
    .unwrap();
    call(
        &mut s,
        "bdev_set_qos_limit",
        json!({"name": "a0", "r_mbytes_per_sec": 3}),
    )
    .unwrap();
    call(
        &mut s,
        "vhost_create_blk_controller",
        json!({"ctrlr": "c0", "dev_name": "Malloc0", "num_queues": 2, "cache": "1M",
               "cache_mode": "writeback", "readonly": false}),
    )
    .unwrap();
    let save = |s: &mut Storage| {
        let subs: Vec<Value> = ["bdev", "vhost_blk"]
            .iter()
            .map(|n| json!({"subsystem": n, "config": call(s, "framework_get_config", json!({"name": n})).unwrap()}))
            .collect();
        json!({"subsystems": subs})
    };
    let saved = save(&mut s);
    let before = (
        call(&mut s, "bdev_get_bdevs", Value::Null).unwrap(),
        call(&mut s, "vhost_get_controllers", Value::Null).unwrap(),
    );
    call(&mut s, "vhost_delete_controller", json!({"ctrlr": "c0"})).unwrap();
    drop(s);

    let (mut s2, _d2, group2) = registry("cfg2");
    let poller2 = group2.spawn(vfio::poller::PollMode::Busy).unwrap();
    let n = rpc::spdk::config::load(&methods(), &mut s2, &saved.to_string()).unwrap();
    assert_eq!(n, 4, "{saved}");
    let after = (
        call(&mut s2, "bdev_get_bdevs", Value::Null).unwrap(),
        call(&mut s2, "vhost_get_controllers", Value::Null).unwrap(),
    );
    assert_eq!(
        before.0, after.0,
        "bdevs (UUIDs, QoS, read-only) come back the same"
    );
    assert_eq!(
        before.1[0]["backend_specific"],
        after.1[0]["backend_specific"]
    );
    assert_eq!(after.1[0]["backend_specific"]["block"]["num_queues"], 2);
    assert!(after.1[0]["socket"].as_str().unwrap().ends_with("/c0"));
    assert!(save(&mut s2)["subsystems"][0]["config"][1]["params"]["readonly"] == true);
    // A configuration naming a method this server lacks is refused.
    let bad = json!({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_nvme_attach_controller", "params": {"name": "x"}}]}]});
    let e = rpc::spdk::config::load(&methods(), &mut s2, &bad.to_string()).unwrap_err();
    assert!(e.contains("Method not found"), "{e}");
    call(&mut s2, "vhost_delete_controller", json!({"ctrlr": "c0"})).unwrap();
    for g in [group, group2] {
        g.stop();
    }
    poller.join().unwrap();
    poller2.join().unwrap();
}
