//! A typed snapshot of the `Open_vSwitch` database tables the switch needs,
//! kept current by applying `monitor` table-updates (RFC 7047 §4.1.5, §4.1.6).
//!
//! What ovsdb-server sends for a plain `monitor` (checked against OVS 3.1):
//! each `<row-update>` has `old` and/or `new`. *initial* and *insert* carry
//! only `new`, with every monitored column; *delete* carries only `old`;
//! *modify* carries `old` with the columns that changed (their previous
//! values) and `new` with every monitored column. Rows are therefore
//! rebuilt from `new` on top of what we had, which is also correct if a
//! server sends only the changed columns in `new`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::datum::{Datum, Uuid};
use crate::Error;

/// A table row type: its table name, the columns monitored, and how a column
/// value is stored into the typed row.
pub trait Row: Default + Clone {
    /// The table's name in the schema.
    const TABLE: &'static str;
    /// The columns monitored (only these are ever read).
    const COLUMNS: &'static [&'static str];
    /// Stores one column's value; unknown columns are ignored.
    fn set_column(&mut self, column: &str, value: &Value) -> Result<(), Error>;
}

/// The `Open_vSwitch` table's single row: global configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenVSwitch {
    /// Bumped by `ovs-vsctl` with each change it waits on.
    pub next_cfg: i64,
    /// Set by the switch to `next_cfg` once that configuration is applied.
    pub cur_cfg: i64,
    /// Global settings (`pmd-cpu-mask`, `dpdk-extra`, `stats-update-interval`, ...).
    pub other_config: BTreeMap<String, String>,
    /// The bridges.
    pub bridges: Vec<Uuid>,
    /// Written by the switch: DPDK is up.
    pub dpdk_initialized: bool,
    /// Written by the switch: the DPDK version string.
    pub dpdk_version: Option<String>,
    /// Written by the switch: the datapath types it supports.
    pub datapath_types: Vec<String>,
    /// Written by the switch: the interface types it supports.
    pub iface_types: Vec<String>,
}

impl Row for OpenVSwitch {
    const TABLE: &'static str = "Open_vSwitch";
    const COLUMNS: &'static [&'static str] = &[
        "next_cfg",
        "cur_cfg",
        "other_config",
        "bridges",
        "dpdk_initialized",
        "dpdk_version",
        "datapath_types",
        "iface_types",
    ];
    fn set_column(&mut self, column: &str, v: &Value) -> Result<(), Error> {
        match column {
            "next_cfg" => self.next_cfg = Datum::to_i64(v)?,
            "cur_cfg" => self.cur_cfg = Datum::to_i64(v)?,
            "other_config" => self.other_config = Datum::to_string_map(v)?,
            "bridges" => self.bridges = Datum::to_uuids(v)?,
            "dpdk_initialized" => self.dpdk_initialized = Datum::to_bool(v)?,
            "dpdk_version" => self.dpdk_version = Datum::to_opt_string(v)?,
            "datapath_types" => self.datapath_types = Datum::to_strings(v)?,
            "iface_types" => self.iface_types = Datum::to_strings(v)?,
            _ => {}
        }
        Ok(())
    }
}

/// A `Bridge` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bridge {
    /// Bridge name (immutable).
    pub name: String,
    /// `netdev` for a user-space bridge; `""` or `system` is the kernel datapath.
    pub datapath_type: String,
    /// Its ports.
    pub ports: Vec<Uuid>,
    /// Its OpenFlow controllers (`Controller` rows).
    pub controller: Vec<Uuid>,
    /// `standalone` or `secure`, if set.
    pub fail_mode: Option<String>,
    /// Allowed OpenFlow versions (`OpenFlow13`, ...).
    pub protocols: Vec<String>,
    /// Settings such as `datapath-id`, `hwaddr`.
    pub other_config: BTreeMap<String, String>,
    /// Written by the switch: the datapath ID in use, 16 hex digits.
    pub datapath_id: Option<String>,
}

impl Row for Bridge {
    const TABLE: &'static str = "Bridge";
    const COLUMNS: &'static [&'static str] = &[
        "name",
        "datapath_type",
        "ports",
        "controller",
        "fail_mode",
        "protocols",
        "other_config",
        "datapath_id",
    ];
    fn set_column(&mut self, column: &str, v: &Value) -> Result<(), Error> {
        match column {
            "name" => self.name = Datum::to_string_value(v)?,
            "datapath_type" => self.datapath_type = Datum::to_string_value(v)?,
            "ports" => self.ports = Datum::to_uuids(v)?,
            "controller" => self.controller = Datum::to_uuids(v)?,
            "fail_mode" => self.fail_mode = Datum::to_opt_string(v)?,
            "protocols" => self.protocols = Datum::to_strings(v)?,
            "other_config" => self.other_config = Datum::to_string_map(v)?,
            "datapath_id" => self.datapath_id = Datum::to_opt_string(v)?,
            _ => {}
        }
        Ok(())
    }
}

/// A `Port` row: a group of interfaces (one, except for bonds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Port {
    /// Port name (immutable).
    pub name: String,
    /// Its interfaces.
    pub interfaces: Vec<Uuid>,
}

impl Row for Port {
    const TABLE: &'static str = "Port";
    const COLUMNS: &'static [&'static str] = &["name", "interfaces"];
    fn set_column(&mut self, column: &str, v: &Value) -> Result<(), Error> {
        match column {
            "name" => self.name = Datum::to_string_value(v)?,
            "interfaces" => self.interfaces = Datum::to_uuids(v)?,
            _ => {}
        }
        Ok(())
    }
}

/// An `Interface` row: configuration, and the status columns the switch writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interface {
    /// Interface name (immutable).
    pub name: String,
    /// The `type` column: `""` (system), `internal`, `dpdk`, `dpdkvhostuserclient`, ...
    pub kind: String,
    /// Type-specific options (`dpdk-devargs`, `vhost-server-path`, ...).
    pub options: BTreeMap<String, String>,
    /// Requested OpenFlow port number (1..=65279).
    pub ofport_request: Option<i64>,
    /// Requested MTU.
    pub mtu_request: Option<i64>,
    /// Other settings.
    pub other_config: BTreeMap<String, String>,
    /// Written by the switch: the OpenFlow port number, -1 on failure.
    pub ofport: Option<i64>,
    /// Written by the switch: why the interface could not be created.
    pub error: Option<String>,
    /// Written by the switch: `up` or `down`.
    pub admin_state: Option<String>,
    /// Written by the switch: `up` or `down`.
    pub link_state: Option<String>,
    /// Written by the switch: the MTU in use.
    pub mtu: Option<i64>,
    /// Written by the switch: the MAC address in use.
    pub mac_in_use: Option<String>,
    /// Written by the switch: driver-specific status.
    pub status: BTreeMap<String, String>,
    /// Written by the switch: counters.
    pub statistics: BTreeMap<String, i64>,
}

impl Row for Interface {
    const TABLE: &'static str = "Interface";
    const COLUMNS: &'static [&'static str] = &[
        "name",
        "type",
        "options",
        "ofport_request",
        "mtu_request",
        "other_config",
        "ofport",
        "error",
        "admin_state",
        "link_state",
        "mtu",
        "mac_in_use",
        "status",
        "statistics",
    ];
    fn set_column(&mut self, column: &str, v: &Value) -> Result<(), Error> {
        match column {
            "name" => self.name = Datum::to_string_value(v)?,
            "type" => self.kind = Datum::to_string_value(v)?,
            "options" => self.options = Datum::to_string_map(v)?,
            "ofport_request" => self.ofport_request = Datum::to_opt_i64(v)?,
            "mtu_request" => self.mtu_request = Datum::to_opt_i64(v)?,
            "other_config" => self.other_config = Datum::to_string_map(v)?,
            "ofport" => self.ofport = Datum::to_opt_i64(v)?,
            "error" => self.error = Datum::to_opt_string(v)?,
            "admin_state" => self.admin_state = Datum::to_opt_string(v)?,
            "link_state" => self.link_state = Datum::to_opt_string(v)?,
            "mtu" => self.mtu = Datum::to_opt_i64(v)?,
            "mac_in_use" => self.mac_in_use = Datum::to_opt_string(v)?,
            "status" => self.status = Datum::to_string_map(v)?,
            "statistics" => self.statistics = Datum::to_int_map(v)?,
            _ => {}
        }
        Ok(())
    }
}

/// A `Controller` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controller {
    /// `tcp:IP:PORT`, `ssl:...`, `ptcp:...`, ...
    pub target: String,
}

impl Row for Controller {
    const TABLE: &'static str = "Controller";
    const COLUMNS: &'static [&'static str] = &["target"];
    fn set_column(&mut self, column: &str, v: &Value) -> Result<(), Error> {
        if column == "target" {
            self.target = Datum::to_string_value(v)?;
        }
        Ok(())
    }
}

/// The snapshot: every monitored row of every table, by UUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// `Open_vSwitch` rows (there is one).
    pub open_vswitch: BTreeMap<Uuid, OpenVSwitch>,
    /// `Bridge` rows.
    pub bridges: BTreeMap<Uuid, Bridge>,
    /// `Port` rows.
    pub ports: BTreeMap<Uuid, Port>,
    /// `Interface` rows.
    pub interfaces: BTreeMap<Uuid, Interface>,
    /// `Controller` rows.
    pub controllers: BTreeMap<Uuid, Controller>,
}

fn request<R: Row>(requests: &mut Map<String, Value>) {
    requests.insert(R::TABLE.to_string(), json!({ "columns": R::COLUMNS }));
}

fn apply_table<R: Row>(
    rows: &mut BTreeMap<Uuid, R>,
    table_update: &Value,
    errors: &mut Vec<String>,
) {
    let Some(table_update) = table_update.as_object() else {
        errors.push(format!("{}: table-update is not an object", R::TABLE));
        return;
    };
    for (uuid, row_update) in table_update {
        let uuid = match Uuid::parse(uuid) {
            Ok(u) => u,
            Err(e) => {
                errors.push(format!("{}: {e}", R::TABLE));
                continue;
            }
        };
        match row_update.get("new") {
            // §4.1.6: "new" absent means the row was deleted.
            None | Some(Value::Null) => {
                rows.remove(&uuid);
            }
            Some(Value::Object(new)) => {
                // "old" absent: initial or insert, the row starts from defaults.
                let mut row = match row_update.get("old") {
                    Some(_) => rows.get(&uuid).cloned().unwrap_or_default(),
                    None => R::default(),
                };
                let mut bad = None;
                for (column, value) in new {
                    if let Err(e) = row.set_column(column, value) {
                        bad = Some(format!("{} {uuid} column {column}: {e}", R::TABLE));
                        break;
                    }
                }
                match bad {
                    // A bad row leaves the old version (if any) in place.
                    Some(m) => errors.push(m),
                    None => {
                        rows.insert(uuid, row);
                    }
                }
            }
            Some(other) => errors.push(format!("{} {uuid}: \"new\" is {other}", R::TABLE)),
        }
    }
}

impl Model {
    /// The `<monitor-requests>` (§4.1.5) for exactly the columns this model reads,
    /// with every kind of change selected (the default).
    pub fn monitor_requests() -> Value {
        let mut m = Map::new();
        request::<OpenVSwitch>(&mut m);
        request::<Bridge>(&mut m);
        request::<Port>(&mut m);
        request::<Interface>(&mut m);
        request::<Controller>(&mut m);
        Value::Object(m)
    }

    /// Applies a `<table-updates>` object (the monitor reply, or the second
    /// parameter of an `update` notification). Good rows are applied even if
    /// others are bad; the bad ones are returned as one [`Error::Datum`].
    pub fn apply(&mut self, updates: &Value) -> Result<(), Error> {
        let Some(updates) = updates.as_object() else {
            return Err(Error::Datum(format!(
                "table-updates is not an object: {updates}"
            )));
        };
        let mut errors = Vec::new();
        for (table, tu) in updates {
            match table.as_str() {
                OpenVSwitch::TABLE => apply_table(&mut self.open_vswitch, tu, &mut errors),
                Bridge::TABLE => apply_table(&mut self.bridges, tu, &mut errors),
                Port::TABLE => apply_table(&mut self.ports, tu, &mut errors),
                Interface::TABLE => apply_table(&mut self.interfaces, tu, &mut errors),
                Controller::TABLE => apply_table(&mut self.controllers, tu, &mut errors),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Datum(errors.join("; ")))
        }
    }

    /// The `Open_vSwitch` row (the first, if a broken database had several).
    pub fn root(&self) -> Option<(&Uuid, &OpenVSwitch)> {
        self.open_vswitch.iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{decode_stream, Message};

    /// What ovsdb-server 3.1 sent, byte for byte (no delimiters), to a
    /// `monitor` of [`Model::monitor_requests`] while `ovs-vsctl --no-wait` ran:
    /// the reply, then `update`s for add-br (netdev), add-port dpdk0 with
    /// ofport_request=5, set options/mtu_request, set-controller +
    /// set-fail-mode secure, del-port dpdk0.
    const CAPTURE: &[u8] = include_bytes!("../testdata/monitor-ovs-3.1.json");

    fn captured() -> Vec<Value> {
        decode_stream(CAPTURE)
            .map(|m| match m.unwrap() {
                Message::Response { result, .. } => result,
                Message::Notification { method, params } => {
                    assert_eq!(method, "update");
                    assert_eq!(params[0], json!("vswitch"));
                    params[1].clone()
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn iface<'a>(m: &'a Model, name: &str) -> Option<&'a Interface> {
        m.interfaces.values().find(|i| i.name == name)
    }

    #[test]
    fn parse_captured_monitor_session() {
        let steps = captured();
        assert_eq!(steps.len(), 6);
        let mut m = Model::default();

        m.apply(&steps[0]).unwrap(); // initial
        let (_, root) = m.root().unwrap();
        assert_eq!((root.next_cfg, root.cur_cfg), (0, 0));
        assert!(root.bridges.is_empty() && !root.dpdk_initialized);

        m.apply(&steps[1]).unwrap(); // add-br: insert + modify of Open_vSwitch
        assert_eq!(m.root().unwrap().1.bridges.len(), 1);
        let br = m.bridges.values().next().unwrap();
        assert_eq!(
            (br.name.as_str(), br.datapath_type.as_str()),
            ("br0", "netdev")
        );
        assert_eq!(br.ports.len(), 1);
        assert_eq!(iface(&m, "br0").unwrap().kind, "internal");
        assert_eq!(iface(&m, "br0").unwrap().ofport, None);

        m.apply(&steps[2]).unwrap(); // add-port
        let d = iface(&m, "dpdk0").unwrap();
        assert_eq!(d.kind, "dpdk");
        assert_eq!(d.options["dpdk-devargs"], "net_null0");
        assert_eq!(d.ofport_request, Some(5));
        assert_eq!(m.bridges.values().next().unwrap().ports.len(), 2);

        m.apply(&steps[3]).unwrap(); // modify: old has only changed columns
        let d = iface(&m, "dpdk0").unwrap();
        assert_eq!(d.mtu_request, Some(9000));
        assert_eq!(d.options.len(), 2);

        m.apply(&steps[4]).unwrap(); // controller + fail mode
        let br = m.bridges.values().next().unwrap();
        assert_eq!(br.fail_mode.as_deref(), Some("secure"));
        assert_eq!(
            m.controllers[&br.controller[0]].target,
            "tcp:127.0.0.1:6653"
        );

        m.apply(&steps[5]).unwrap(); // del-port: delete has only "old"
        assert!(iface(&m, "dpdk0").is_none());
        assert_eq!(m.ports.len(), 1);
        assert_eq!(m.interfaces.len(), 1);
    }

    #[test]
    fn parse_bad_rows_keep_good_ones() {
        let u1 = "11111111-1111-4111-8111-111111111111";
        let u2 = "22222222-2222-4222-8222-222222222222";
        let mut m = Model::default();
        let e = m
            .apply(&json!({
                "Interface": {
                    u1: {"new": {"name": "good", "type": "dpdk"}},
                    u2: {"new": {"name": "bad", "ofport_request": "five"}},
                    "not-a-uuid": {"new": {"name": "x"}},
                },
                "Port": [],
                "Unknown_Table": {"x": 1},
            }))
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ofport_request"), "{msg}");
        assert!(msg.contains("not-a-uuid"), "{msg}");
        assert!(msg.contains("Port"), "{msg}");
        assert_eq!(m.interfaces.len(), 1);
        assert!(m.apply(&json!([])).is_err());
        // A bad modify keeps the previous version of the row.
        let _ = m.apply(&json!({"Interface": {u1: {"old": {"type": "dpdk"}, "new": {"name": "good", "type": 7}}}}));
        assert_eq!(m.interfaces.values().next().unwrap().kind, "dpdk");
    }

    #[test]
    fn emit_monitor_requests() {
        let r = Model::monitor_requests();
        assert_eq!(r["Port"], json!({"columns": ["name", "interfaces"]}));
        assert_eq!(r["Controller"], json!({"columns": ["target"]}));
        assert_eq!(r.as_object().unwrap().len(), 5);
    }
}
