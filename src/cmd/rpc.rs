//! `vswitch rpc`: call a JSON-RPC method of a running `vswitch blk serve
//! --rpc` or `vswitch run --rpc` (SPDK's methods; for people without
//! rpc.py).
//!
//! ```text
//! vswitch rpc [--rpc PATH] METHOD ['{"param": value, ...}']
//! vswitch rpc [--rpc PATH] save_config      # rpc.py's save_config: the whole configuration
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

/// `vswitch rpc ...`
#[derive(Args, Debug)]
pub struct RpcArgs {
    /// The server's socket (`--rpc PATH` of the server; rpc.py's -s).
    #[arg(long, short = 's', visible_alias = "socket", default_value = crate::storage::rpc::DEFAULT_SOCKET)]
    rpc: PathBuf,
    /// Seconds to wait for the answer (an iSCSI login may take 20).
    #[arg(long, short = 't', default_value_t = 60.0)]
    timeout: f64,
    /// Method name (`rpc_get_methods` lists them), or `save_config`.
    method: String,
    /// Params: a JSON object.
    params: Option<String>,
}

/// Runs `vswitch rpc`.
pub fn run(a: &RpcArgs) -> Result<(), String> {
    let params = match &a.params {
        None => None,
        Some(p) => Some(
            serde_json::from_str::<Value>(p).map_err(|e| format!("params {p:?}: not JSON: {e}"))?,
        ),
    };
    let timeout = Duration::try_from_secs_f64(a.timeout)
        .map_err(|_| format!("--timeout {}: not a duration", a.timeout))?;
    let mut c = rpc::client::Client::connect(&a.rpc, timeout).map_err(|e| {
        format!(
            "{}: {e} (is `vswitch blk serve --rpc` or `vswitch run --rpc` running?)",
            a.rpc.display()
        )
    })?;
    let mut call = |m: &str, p: Option<Value>| -> Result<Value, String> {
        c.call(m, p)
            .map_err(|e| format!("{}: {e}", a.rpc.display()))?
            .map_err(|e| format!("{m}: error {}: {}", e.code, e.message))
    };
    let out = if a.method == "save_config" && params.is_none() {
        // As rpc.py: every subsystem's configuration, in dependency order.
        let subs = call("framework_get_subsystems", None)?;
        let mut list = Vec::new();
        for s in subs.as_array().into_iter().flatten() {
            let name = s["subsystem"].clone();
            let config = call("framework_get_config", Some(json!({"name": name})))?;
            list.push(json!({"subsystem": name, "config": config}));
        }
        json!({"subsystems": list})
    } else {
        call(&a.method, params)?
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}
