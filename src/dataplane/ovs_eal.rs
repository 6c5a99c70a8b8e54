//! EAL arguments from the `Open_vSwitch` row, as `ovs-vswitchd` reads
//! them once at start (`vswitch run --ovsdb` without `--eal`).
//!
//! | `other_config` key | EAL argument |
//! |---|---|
//! | `dpdk-lcore-mask` | the main lcore (lowest bit; default: CPU 0) |
//! | `pmd-cpu-mask` | the forwarding lcores (default: the next CPU) |
//! | `dpdk-socket-mem` | `--socket-mem` (with hugepages) |
//! | `dpdk-extra` | appended as they are (split on white space) |
//!
//! `dpdk-init` is implied (this switch is DPDK). Changes to these keys
//! after start need a restart, as in OVS.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

/// The keys read here.
pub const KEYS: [&str; 4] = [
    "dpdk-lcore-mask",
    "pmd-cpu-mask",
    "dpdk-socket-mem",
    "dpdk-extra",
];

/// Reads the `Open_vSwitch` row's `other_config` (empty when the row is
/// missing, as in a database `ovs-vsctl init` has not touched yet).
pub fn read_other_config(target: &str) -> Result<BTreeMap<String, String>, String> {
    let (client, _updates) = ovsdb::Client::connect(target, Duration::from_secs(5))
        .map_err(|e| format!("OVSDB {target}: {e}"))?;
    let res = client
        .transact(
            "Open_vSwitch",
            vec![json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["other_config"]})],
        )
        .map_err(|e| format!("OVSDB {target}: reading Open_vSwitch: {e}"))?;
    let rows = res
        .first()
        .and_then(|r| r.get("rows"))
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    match rows.first().and_then(|r| r.get("other_config")) {
        Some(v) => ovsdb::datum::Datum::to_string_map(v).map_err(|e| format!("other_config: {e}")),
        None => Ok(BTreeMap::new()),
    }
}

fn cpus(mask: &str, key: &str) -> Result<Vec<u32>, String> {
    let hex = mask
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X");
    let v = u128::from_str_radix(hex, 16)
        .map_err(|_| format!("other_config:{key}={mask:?} is not a hex CPU mask"))?;
    let out: Vec<u32> = (0..128).filter(|b| v >> b & 1 == 1).collect();
    if out.is_empty() {
        return Err(format!("other_config:{key}={mask:?} selects no CPU"));
    }
    Ok(out)
}

/// EAL arguments for `other_config`, with `defaults` (the switch's own
/// default EAL arguments) supplying what it does not say.
pub fn eal_args(oc: &BTreeMap<String, String>, defaults: &[String]) -> Result<Vec<String>, String> {
    let main = match oc.get("dpdk-lcore-mask") {
        Some(m) => cpus(m, "dpdk-lcore-mask")?[0],
        None => 0,
    };
    let pmds = match oc.get("pmd-cpu-mask") {
        Some(m) => cpus(m, "pmd-cpu-mask")?,
        None => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            if n > 1 {
                vec![(main + 1) % n]
            } else {
                vec![]
            }
        }
    };
    let mut lcores = vec![main];
    lcores.extend(pmds.iter().filter(|c| **c != main));
    let list: Vec<String> = lcores.iter().map(u32::to_string).collect();
    let mut eal = vec![
        "-l".to_string(),
        list.join(","),
        "--main-lcore".into(),
        main.to_string(),
    ];
    // The switch's defaults for the rest, minus the lcore list.
    let mut skip = false;
    for a in defaults {
        if skip {
            skip = false;
            continue;
        }
        if a == "-l" {
            skip = true;
            continue;
        }
        eal.push(a.clone());
    }
    if let Some(mem) = oc.get("dpdk-socket-mem") {
        if !eal.iter().any(|a| a == "--no-huge") {
            eal.push("--socket-mem".into());
            eal.push(mem.clone());
        }
    }
    if let Some(extra) = oc.get("dpdk-extra") {
        let extra: Vec<String> = extra.split_whitespace().map(str::to_owned).collect();
        // An allow or block list means the PCI bus is wanted.
        if extra
            .iter()
            .any(|a| matches!(a.as_str(), "-a" | "--allow" | "-b" | "--block"))
        {
            eal.retain(|a| a != "--no-pci");
        }
        eal.extend(extra);
    }
    Ok(eal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oc(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn masks_and_extras_become_eal_arguments() {
        let defaults: Vec<String> = ["-l", "0-1", "--file-prefix", "x", "--no-pci"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = eal_args(
            &oc(&[
                ("dpdk-lcore-mask", "0x1"),
                ("pmd-cpu-mask", "0x6"),
                ("dpdk-extra", "-a 0000:01:00.0 --log-level=*:info"),
            ]),
            &defaults,
        )
        .unwrap();
        assert_eq!(
            e,
            [
                "-l",
                "0,1,2",
                "--main-lcore",
                "0",
                "--file-prefix",
                "x",
                "-a",
                "0000:01:00.0",
                "--log-level=*:info"
            ]
        );
        let e = eal_args(&oc(&[("pmd-cpu-mask", "0x2")]), &defaults).unwrap();
        assert_eq!(&e[..4], ["-l", "0,1", "--main-lcore", "0"]);
        assert!(e.contains(&"--no-pci".to_string()));
        let err = eal_args(&oc(&[("pmd-cpu-mask", "zz")]), &defaults).unwrap_err();
        assert!(err.contains("pmd-cpu-mask"), "{err}");
        assert!(eal_args(&oc(&[("pmd-cpu-mask", "0x0")]), &defaults).is_err());
    }
}
