//! What the database asks for: the netdev bridges and their interfaces, read
//! from a [`Model`] the way `ovs-vswitchd` reads them (vswitchd/bridge.c):
//! bridges of the `Open_vSwitch` row, ports of a bridge, interfaces of a port.

use std::collections::{BTreeMap, BTreeSet};

use crate::datapath::{BridgeConfig, InterfaceConfig};
use crate::datum::Uuid;
use crate::model::{Bridge, Interface, Model};

/// The only datapath type this switch runs.
pub const NETDEV: &str = "netdev";

/// One bridge the datapath should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredBridge {
    /// Its `Bridge` row.
    pub uuid: Uuid,
    /// Its configuration.
    pub cfg: BridgeConfig,
    /// Its interfaces by name, with their row UUIDs.
    pub ifaces: BTreeMap<String, (Uuid, InterfaceConfig)>,
}

/// The configuration the database asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// The netdev bridges by name.
    pub bridges: BTreeMap<String, DesiredBridge>,
    /// Interface rows that cannot be created, with the reason (written to their
    /// `error` column): interfaces of bridges of another datapath type, bad or
    /// duplicate rows.
    pub rejected: Vec<(Uuid, String)>,
    /// Bridges of another datapath type: name → datapath_type.
    pub foreign: BTreeMap<String, String>,
    /// Values that were ignored (logged once by the reconciler).
    pub warnings: Vec<String>,
    /// The `Open_vSwitch` row's other_config.
    pub system_config: BTreeMap<String, String>,
}

/// Parses other_config:datapath-id: exactly 16 hex digits, as ovs-vswitchd
/// (an optional `0x` is tolerated).
pub fn parse_datapath_id(s: &str) -> Option<u64> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.len() != 16 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

fn bridge_config(model: &Model, br: &Bridge, warnings: &mut Vec<String>) -> BridgeConfig {
    let mut controllers: Vec<String> = br
        .controller
        .iter()
        .filter_map(|u| model.controllers.get(u))
        .map(|c| c.target.clone())
        .collect();
    controllers.sort();
    let mut protocols = br.protocols.clone();
    protocols.sort();
    let datapath_id = br.other_config.get("datapath-id").and_then(|s| {
        let id = parse_datapath_id(s);
        if id.is_none() {
            warnings.push(format!(
                "bridge {}: other_config:datapath-id={s:?} is not 16 hex digits, ignored",
                br.name
            ));
        }
        id
    });
    BridgeConfig {
        name: br.name.clone(),
        datapath_type: br.datapath_type.clone(),
        fail_mode: br.fail_mode.clone(),
        controllers,
        protocols,
        other_config: br.other_config.clone(),
        datapath_id,
    }
}

fn iface_config(i: &Interface) -> Result<InterfaceConfig, String> {
    let ofport_request = i
        .ofport_request
        .map(|r| match u16::try_from(r) {
            Ok(p) if (1..=65279).contains(&p) => Ok(p),
            _ => Err(format!("ofport_request {r} is out of range 1..65279")),
        })
        .transpose()?;
    let mtu_request = i
        .mtu_request
        .map(|m| match u32::try_from(m) {
            Ok(m) if m > 0 => Ok(m),
            _ => Err(format!("mtu_request {m} is out of range")),
        })
        .transpose()?;
    Ok(InterfaceConfig {
        name: i.name.clone(),
        kind: i.kind.clone(),
        options: i.options.clone(),
        ofport_request,
        mtu_request,
    })
}

impl Desired {
    /// Reads the desired configuration from the snapshot.
    pub fn from_model(model: &Model) -> Desired {
        let mut d = Desired::default();
        let Some((_, root)) = model.root() else {
            return d;
        };
        d.system_config = root.other_config.clone();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for br_uuid in &root.bridges {
            let Some(br) = model.bridges.get(br_uuid) else {
                continue;
            };
            let ours = br.datapath_type == NETDEV;
            if !ours {
                let t = if br.datapath_type.is_empty() {
                    "system"
                } else {
                    br.datapath_type.as_str()
                };
                d.foreign.insert(br.name.clone(), t.to_string());
            }
            let mut ifaces = BTreeMap::new();
            for port in br.ports.iter().filter_map(|u| model.ports.get(u)) {
                for if_uuid in &port.interfaces {
                    let Some(iface) = model.interfaces.get(if_uuid) else {
                        continue;
                    };
                    if !ours {
                        d.rejected.push((
                            if_uuid.clone(),
                            format!(
                                "bridge {} has datapath_type {:?}; this switch runs only \
                                 netdev bridges (set bridge {} datapath_type=netdev)",
                                br.name, br.datapath_type, br.name
                            ),
                        ));
                        continue;
                    }
                    if !seen.insert(iface.name.as_str()) {
                        d.rejected.push((
                            if_uuid.clone(),
                            format!("interface {} is configured twice", iface.name),
                        ));
                        continue;
                    }
                    match iface_config(iface) {
                        Ok(cfg) => {
                            ifaces.insert(iface.name.clone(), (if_uuid.clone(), cfg));
                        }
                        Err(e) => d.rejected.push((if_uuid.clone(), e)),
                    }
                }
            }
            if ours {
                let cfg = bridge_config(model, br, &mut d.warnings);
                d.bridges.insert(
                    br.name.clone(),
                    DesiredBridge {
                        uuid: br_uuid.clone(),
                        cfg,
                        ifaces,
                    },
                );
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_datapath_ids() {
        assert_eq!(parse_datapath_id("0000000000000001"), Some(1));
        assert_eq!(parse_datapath_id("0x00000000000000ff"), Some(255));
        assert_eq!(parse_datapath_id("1"), None);
        assert_eq!(parse_datapath_id("000000000000000g"), None);
    }
}
