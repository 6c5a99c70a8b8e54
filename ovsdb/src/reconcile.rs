//! The reconciler: turns the desired configuration into [`Datapath`] calls,
//! remembering what it created so that every pass (and every reconnect)
//! applies only differences, and computes the status write-back.
//!
//! Semantics follow `ovs-vswitchd` (vswitchd/bridge.c):
//! - interfaces whose `type`, `options`, `ofport_request` or `mtu_request`
//!   change are removed and added again; bridges whose configuration changes
//!   get `bridge_set` again without touching their interfaces;
//! - an interface that fails gets `ofport = -1` and `error` = the message, and
//!   is retried only when its configuration changes;
//! - a created interface gets `ofport`, `error` cleared and its state
//!   (`admin_state`, `link_state`, `mtu`, `mac_in_use`, `status`, `statistics`);
//! - `cur_cfg` is set to the `next_cfg` the pass saw, in the same transaction
//!   as the interface results: `ovs-vsctl` reads `ofport`/`error` of the
//!   interfaces it added as soon as it sees `cur_cfg >= next_cfg`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::datapath::{BridgeConfig, Datapath, InterfaceConfig, InterfaceState};
use crate::datum::{Datum, Uuid};
use crate::desired::{Desired, NETDEV};
use crate::model::{Interface, Model};

/// An interface the reconciler created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The configuration it was created with.
    pub cfg: InterfaceConfig,
    /// The OpenFlow port number the datapath gave it.
    pub ofport: u16,
}

/// The reconciler's memory of what exists in the datapath. It outlives
/// connections: after a reconnect the new snapshot is compared against it.
pub struct Reconciler {
    dp: Arc<dyn Datapath>,
    bridges: BTreeMap<String, BridgeConfig>,
    failed_bridges: BTreeMap<String, (BridgeConfig, String)>,
    ifaces: BTreeMap<(String, String), Created>,
    failed: BTreeMap<(String, String), (InterfaceConfig, String)>,
    system_config: Option<BTreeMap<String, String>>,
    logged: BTreeSet<String>,
    foreign: BTreeMap<String, String>,
}

fn log_once(logged: &mut BTreeSet<String>, msg: String) {
    if logged.insert(msg.clone()) {
        eprintln!("ovsdb: {msg}");
    }
}

fn mac_string(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The status columns of one `Interface` row, as the switch wants them.
#[derive(Debug, Clone, Default, PartialEq)]
struct IfaceStatus {
    ofport: Option<i64>,
    error: Option<String>,
    admin_state: Option<String>,
    link_state: Option<String>,
    mtu: Option<i64>,
    mac_in_use: Option<String>,
    status: BTreeMap<String, String>,
    statistics: BTreeMap<String, i64>,
}

impl IfaceStatus {
    fn failed(error: &str) -> IfaceStatus {
        IfaceStatus {
            ofport: Some(-1),
            error: Some(error.to_string()),
            ..IfaceStatus::default()
        }
    }

    fn created(ofport: u16, state: Option<InterfaceState>) -> IfaceStatus {
        let mut s = IfaceStatus {
            ofport: Some(i64::from(ofport)),
            ..IfaceStatus::default()
        };
        if let Some(st) = state {
            let updown = |b: bool| Some(if b { "up" } else { "down" }.to_string());
            s.admin_state = updown(st.admin_up);
            s.link_state = updown(st.link_up);
            s.mtu = st.mtu.map(i64::from);
            s.mac_in_use = st.mac.as_ref().map(mac_string);
            s.status = st.status;
            s.statistics = st
                .statistics
                .into_iter()
                .map(|(k, v)| (k, i64::try_from(v).unwrap_or(i64::MAX)))
                .collect();
        }
        s
    }

    /// The columns of `row` that differ from this status, as an update `row`.
    fn diff(&self, row: &Interface) -> Map<String, Value> {
        let mut m = Map::new();
        if row.ofport != self.ofport {
            m.insert("ofport".into(), Datum::opt_i64(self.ofport));
        }
        if row.error != self.error {
            m.insert("error".into(), Datum::opt_string(self.error.as_deref()));
        }
        if row.admin_state != self.admin_state {
            m.insert(
                "admin_state".into(),
                Datum::opt_string(self.admin_state.as_deref()),
            );
        }
        if row.link_state != self.link_state {
            m.insert(
                "link_state".into(),
                Datum::opt_string(self.link_state.as_deref()),
            );
        }
        if row.mtu != self.mtu {
            m.insert("mtu".into(), Datum::opt_i64(self.mtu));
        }
        if row.mac_in_use != self.mac_in_use {
            m.insert(
                "mac_in_use".into(),
                Datum::opt_string(self.mac_in_use.as_deref()),
            );
        }
        if row.status != self.status {
            m.insert("status".into(), Datum::string_map(&self.status));
        }
        if row.statistics != self.statistics {
            m.insert("statistics".into(), Datum::int_map(&self.statistics));
        }
        m
    }
}

fn update_op(table: &str, uuid: &Uuid, row: Map<String, Value>) -> Value {
    json!({
        "op": "update",
        "table": table,
        "where": [["_uuid", "==", uuid.to_json()]],
        "row": row,
    })
}

impl Reconciler {
    /// A reconciler that has created nothing yet.
    pub fn new(dp: Arc<dyn Datapath>) -> Reconciler {
        Reconciler {
            dp,
            bridges: BTreeMap::new(),
            failed_bridges: BTreeMap::new(),
            ifaces: BTreeMap::new(),
            failed: BTreeMap::new(),
            system_config: None,
            logged: BTreeSet::new(),
            foreign: BTreeMap::new(),
        }
    }

    /// The interfaces created so far, by (bridge, interface name).
    pub fn created(&self) -> &BTreeMap<(String, String), Created> {
        &self.ifaces
    }

    /// Brings the datapath in line with `model`: removals first (interfaces,
    /// then bridges), then bridge changes, then additions.
    pub fn apply(&mut self, model: &Model) -> Desired {
        let d = Desired::from_model(model);
        for w in &d.warnings {
            log_once(&mut self.logged, w.clone());
        }
        for (name, t) in &d.foreign {
            if self.foreign.get(name) != Some(t) {
                eprintln!(
                    "ovsdb: bridge {name} has datapath_type {t}: not ours (only {NETDEV}), skipped"
                );
            }
        }
        self.foreign = d.foreign.clone();

        if self.system_config.as_ref() != Some(&d.system_config) {
            for key in self.dp.system_config(&d.system_config) {
                log_once(
                    &mut self.logged,
                    format!("other_config:{key} cannot be applied at run time (restart to apply)"),
                );
            }
            self.system_config = Some(d.system_config.clone());
        }

        let want = |br: &str, name: &str| -> Option<&InterfaceConfig> {
            d.bridges
                .get(br)
                .and_then(|b| b.ifaces.get(name))
                .map(|(_, c)| c)
        };

        // 1. Interfaces gone or changed.
        let stale: Vec<(String, String)> = self
            .ifaces
            .iter()
            .filter(|((br, name), c)| want(br, name) != Some(&c.cfg))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(c) = self.ifaces.remove(&key) {
                eprintln!("ovsdb: removing interface {} from {}", key.1, key.0);
                if let Err(e) = self.dp.iface_del(&key.0, &key.1, c.ofport) {
                    eprintln!("ovsdb: removing interface {} from {}: {e}", key.1, key.0);
                }
            }
        }
        self.failed.retain(|(br, name), _| want(br, name).is_some());

        // 2. Bridges gone (their interfaces went in step 1).
        let gone: Vec<String> = self
            .bridges
            .keys()
            .filter(|b| !d.bridges.contains_key(*b))
            .cloned()
            .collect();
        for name in gone {
            eprintln!("ovsdb: removing bridge {name}");
            self.bridges.remove(&name);
            self.dp.bridge_del(&name);
        }
        self.failed_bridges.retain(|b, _| d.bridges.contains_key(b));

        // 3. Bridges new or changed.
        for (name, db) in &d.bridges {
            if self.bridges.get(name) == Some(&db.cfg) {
                continue;
            }
            if matches!(self.failed_bridges.get(name), Some((c, _)) if *c == db.cfg) {
                continue;
            }
            match self.dp.bridge_set(&db.cfg) {
                Ok(()) => {
                    eprintln!("ovsdb: bridge {name} configured");
                    self.bridges.insert(name.clone(), db.cfg.clone());
                    self.failed_bridges.remove(name);
                }
                Err(e) => {
                    eprintln!("ovsdb: bridge {name}: {e}");
                    self.failed_bridges
                        .insert(name.clone(), (db.cfg.clone(), e));
                }
            }
        }

        // 4. Interfaces new or changed, on bridges that exist.
        for (br, db) in &d.bridges {
            if !self.bridges.contains_key(br) {
                continue;
            }
            for (name, (_, cfg)) in &db.ifaces {
                let key = (br.clone(), name.clone());
                if self.ifaces.contains_key(&key) {
                    continue;
                }
                if matches!(self.failed.get(&key), Some((c, _)) if c == cfg) {
                    continue;
                }
                match self.dp.iface_add(br, cfg) {
                    Ok(ofport) => {
                        eprintln!("ovsdb: interface {name} added to {br} as port {ofport}");
                        self.failed.remove(&key);
                        self.ifaces.insert(
                            key,
                            Created {
                                cfg: cfg.clone(),
                                ofport,
                            },
                        );
                    }
                    Err(e) => {
                        eprintln!("ovsdb: interface {name} on {br}: {e}");
                        self.failed.insert(key, (cfg.clone(), e));
                    }
                }
            }
        }
        d
    }

    /// The `transact` operations that bring the status columns in the
    /// database in line with the datapath (only the columns that differ), and
    /// `cur_cfg` up to the `next_cfg` in `model`. Empty when all is current.
    pub fn write_back(&self, model: &Model, d: &Desired) -> Vec<Value> {
        let mut ops = Vec::new();
        if let Some((uuid, root)) = model.root() {
            let mut row = Map::new();
            if root.cur_cfg != root.next_cfg {
                row.insert("cur_cfg".into(), json!(root.next_cfg));
            }
            if !root.dpdk_initialized {
                row.insert("dpdk_initialized".into(), json!(true));
            }
            if let Some(v) = self.dp.dpdk_version() {
                if root.dpdk_version.as_deref() != Some(v.as_str()) {
                    row.insert("dpdk_version".into(), Datum::opt_string(Some(&v)));
                }
            }
            if root.datapath_types != [NETDEV] {
                row.insert("datapath_types".into(), Datum::strings(&[NETDEV]));
            }
            let mut types = self.dp.iface_types();
            types.sort();
            if !types.is_empty() && root.iface_types != types {
                row.insert("iface_types".into(), Datum::strings(&types));
            }
            if !row.is_empty() {
                ops.push(update_op("Open_vSwitch", uuid, row));
            }
        }

        for (br, db) in &d.bridges {
            if !self.bridges.contains_key(br) {
                continue;
            }
            let Some(id) = self.dp.datapath_id(br).map(|id| format!("{id:016x}")) else {
                continue;
            };
            if let Some(row) = model.bridges.get(&db.uuid) {
                if row.datapath_id.as_deref() != Some(id.as_str()) {
                    let mut m = Map::new();
                    m.insert("datapath_id".into(), Datum::opt_string(Some(&id)));
                    ops.push(update_op("Bridge", &db.uuid, m));
                }
            }
        }

        let mut push = |uuid: &Uuid, st: IfaceStatus| {
            if let Some(row) = model.interfaces.get(uuid) {
                let diff = st.diff(row);
                if !diff.is_empty() {
                    ops.push(update_op("Interface", uuid, diff));
                }
            }
        };
        for (uuid, why) in &d.rejected {
            push(uuid, IfaceStatus::failed(why));
        }
        for (br, db) in &d.bridges {
            let bridge_error = self
                .failed_bridges
                .get(br)
                .filter(|_| !self.bridges.contains_key(br))
                .map(|(_, e)| format!("bridge {br}: {e}"));
            for (name, (uuid, _)) in &db.ifaces {
                let key = (br.clone(), name.clone());
                let st = if let Some(c) = self.ifaces.get(&key) {
                    IfaceStatus::created(c.ofport, self.dp.iface_state(br, c.ofport))
                } else if let Some((_, e)) = self.failed.get(&key) {
                    IfaceStatus::failed(e)
                } else if let Some(e) = &bridge_error {
                    IfaceStatus::failed(e)
                } else {
                    continue;
                };
                push(uuid, st);
            }
        }
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Rec(Mutex<Vec<String>>);

    impl Datapath for Rec {
        fn bridge_set(&self, br: &BridgeConfig) -> Result<(), String> {
            self.0.lock().unwrap().push(format!("set {}", br.name));
            if br.name == "badbr" {
                return Err("no memory".into());
            }
            Ok(())
        }
        fn bridge_del(&self, name: &str) {
            self.0.lock().unwrap().push(format!("del {name}"));
        }
        fn iface_add(&self, bridge: &str, i: &InterfaceConfig) -> Result<u16, String> {
            self.0
                .lock()
                .unwrap()
                .push(format!("add {bridge} {}", i.name));
            Ok(i.ofport_request.unwrap_or(7))
        }
        fn iface_del(&self, bridge: &str, name: &str, ofport: u16) -> Result<(), String> {
            self.0
                .lock()
                .unwrap()
                .push(format!("rm {bridge} {name} {ofport}"));
            Ok(())
        }
        fn iface_state(&self, _: &str, _: u16) -> Option<InterfaceState> {
            None
        }
    }

    const OVS: &str = "11111111-1111-4111-8111-111111111111";
    const BR: &str = "22222222-2222-4222-8222-222222222222";
    const PORT: &str = "33333333-3333-4333-8333-333333333333";
    const IF: &str = "44444444-4444-4444-8444-444444444444";

    fn model(br_name: &str, dtype: &str, options: Value) -> Model {
        let mut m = Model::default();
        m.apply(&json!({
            "Open_vSwitch": {OVS: {"new": {"next_cfg": 3, "cur_cfg": 1, "bridges": ["uuid", BR]}}},
            "Bridge": {BR: {"new": {"name": br_name, "datapath_type": dtype, "ports": ["uuid", PORT]}}},
            "Port": {PORT: {"new": {"name": "p0", "interfaces": ["uuid", IF]}}},
            "Interface": {IF: {"new": {"name": "p0", "type": "dpdk", "options": options, "ofport_request": 5}}},
        }))
        .unwrap();
        m
    }

    fn run(r: &mut Reconciler, m: &Model) -> Vec<Value> {
        let d = r.apply(m);
        r.write_back(m, &d)
    }

    #[test]
    fn emit_writeback_and_idempotence() {
        let dp = Arc::new(Rec::default());
        let mut r = Reconciler::new(dp.clone());
        let m = model("br0", "netdev", json!(["map", []]));
        let ops = run(&mut r, &m);
        assert_eq!(*dp.0.lock().unwrap(), vec!["set br0", "add br0 p0"]);
        // cur_cfg and the interface's ofport/error, in one transaction.
        assert_eq!(ops[0]["row"]["cur_cfg"], json!(3));
        assert_eq!(ops[0]["row"]["datapath_types"], json!("netdev"));
        assert_eq!(ops[1]["table"], json!("Interface"));
        assert_eq!(ops[1]["where"], json!([["_uuid", "==", ["uuid", IF]]]));
        assert_eq!(ops[1]["row"], json!({"ofport": 5}));

        // Same snapshot again (or after a reconnect): no datapath calls.
        run(&mut r, &m);
        run(&mut r, &m.clone());
        assert_eq!(dp.0.lock().unwrap().len(), 2);

        // Options change: removed and added again.
        let m2 = model("br0", "netdev", json!(["map", [["n_rxq", "2"]]]));
        run(&mut r, &m2);
        assert_eq!(dp.0.lock().unwrap()[2..], ["rm br0 p0 5", "add br0 p0"]);

        // Not netdev any more: interfaces then bridge removed, error written.
        let m3 = model("br0", "system", json!(["map", []]));
        let ops = run(&mut r, &m3);
        assert_eq!(dp.0.lock().unwrap()[4..], ["rm br0 p0 5", "del br0"]);
        assert_eq!(ops[1]["row"]["ofport"], json!(-1));
        assert!(ops[1]["row"]["error"].as_str().unwrap().contains("netdev"));
    }

    #[test]
    fn emit_bridge_failure_on_its_interfaces() {
        let dp = Arc::new(Rec::default());
        let mut r = Reconciler::new(dp.clone());
        let m = model("badbr", "netdev", json!(["map", []]));
        let ops = run(&mut r, &m);
        assert_eq!(*dp.0.lock().unwrap(), vec!["set badbr"]);
        assert_eq!(ops[1]["row"]["ofport"], json!(-1));
        assert_eq!(ops[1]["row"]["error"], json!("bridge badbr: no memory"));
        // Not retried until the bridge's configuration changes.
        run(&mut r, &m);
        assert_eq!(dp.0.lock().unwrap().len(), 1);
    }
}
