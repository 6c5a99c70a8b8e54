//! Loading a saved configuration at start (`--config-json FILE`, SPDK's
//! `--json FILE`): the `{"subsystems": [{"subsystem": S, "config":
//! [{"method": M, "params": P}, ...]}, ...]}` that `save_config` (rpc.py:
//! `framework_get_subsystems`, then `framework_get_config` for each) wrote.
//! Like SPDK's `lib/init/json_config.c`, every entry is a method call made
//! in order, subsystem after subsystem; the first failure stops the load.

use serde::Deserialize;
use serde_json::Value;

use super::info::ConfigEntry;
use crate::methods::Methods;

#[derive(Deserialize)]
struct File {
    subsystems: Vec<Subsystem>,
}

#[derive(Deserialize)]
struct Subsystem {
    subsystem: String,
    #[serde(default)]
    config: Option<Vec<Value>>,
}

/// Replays `json` through `methods` on `s`; returns how many calls it made.
pub fn load<S>(methods: &Methods<S>, s: &mut S, json: &str) -> Result<usize, String> {
    let file: File =
        serde_json::from_str(json).map_err(|e| format!("configuration: not SPDK's JSON: {e}"))?;
    let mut calls = 0;
    for sub in file.subsystems {
        for entry in sub.config.unwrap_or_default() {
            // A batch (save_config --with-batches) is a list of entries.
            let entries = match entry {
                Value::Array(a) => a,
                v => vec![v],
            };
            for e in entries {
                let e: ConfigEntry = serde_json::from_value(e)
                    .map_err(|e| format!("subsystem {}: bad entry: {e}", sub.subsystem))?;
                let params = (!e.params.is_null()).then_some(e.params);
                methods
                    .call(s, &e.method, params)
                    .map_err(|err| format!("subsystem {}: {}: {}", sub.subsystem, e.method, err))?;
                calls += 1;
            }
        }
    }
    Ok(calls)
}
