//! The JSON-RPC server on the registry, and loading a saved configuration
//! at start.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rpc::server::{Handler, Server};
use rpc::Methods;

use super::registry::Storage;

/// SPDK's default JSON-RPC socket (rpc.py's default `-s`).
pub const DEFAULT_SOCKET: &str = "/var/tmp/spdk.sock";

/// The registry as the server threads and the process share it.
pub type Shared = Arc<Mutex<Storage>>;

/// Locks the registry (a panicked holder leaves it usable).
pub fn lock(s: &Shared) -> MutexGuard<'_, Storage> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The devices for a stats round, if the registry is free: a method
/// holding it may take seconds (an iSCSI login), and the stats loop and
/// its stop check must not wait for it (that round is skipped). Nothing
/// keeps the devices past the round, so a deleted controller's device is
/// let go at once.
pub fn devices_now(s: &Shared) -> Option<Devices> {
    match s.try_lock() {
        Ok(g) => Some(g.devices()),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner().devices()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Devices and their caches' counters.
pub type Devices = (
    Vec<vfio::poller::SharedDevice>,
    Vec<Option<Arc<vfio::cache::CacheCounters>>>,
);

/// The SPDK method table over the registry.
pub fn methods() -> Methods<Storage> {
    rpc::spdk::table::<Storage>(env!("CARGO_PKG_VERSION"))
}

/// Serves the SPDK methods on `path` (what `rpc.py -s PATH` talks to).
pub fn serve(path: &Path, storage: &Shared) -> Result<Server, String> {
    let methods = Arc::new(methods());
    let s = Arc::clone(storage);
    let handler: Handler = Arc::new(move |v| methods.process(&mut lock(&s), v));
    let server =
        Server::start(path, handler).map_err(|e| format!("--rpc {}: {e}", path.display()))?;
    eprintln!("vswitch: JSON-RPC (SPDK methods) on {}", path.display());
    Ok(server)
}

/// Replays a saved configuration (`--config-json FILE`).
pub fn load_config(storage: &mut Storage, file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("--config-json {}: {e}", file.display()))?;
    let n = rpc::spdk::config::load(&methods(), storage, &text)
        .map_err(|e| format!("--config-json {}: {e}", file.display()))?;
    eprintln!("vswitch: {} call(s) from {}", n, file.display());
    Ok(())
}
