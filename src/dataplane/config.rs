//! What `vswitch run` runs: EAL arguments, ports, timing. Built from the
//! command line or from a TOML file, and validated before DPDK is touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A validated run configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// EAL arguments, already split into words.
    pub eal: Vec<String>,
    /// Port devargs, in port order (the first is port 0).
    pub ports: Vec<String>,
    /// Stop after this long (`None`: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Period of the stats lines (`None`: only the final summary).
    pub stats_interval: Option<Duration>,
    /// Print stats as JSON lines instead of a table.
    pub json: bool,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Rules to install at start (`ovs-ofctl add-flow` syntax).
    pub flows: Vec<String>,
    /// Patch-panel mode: pairwise cross-connect (0↔1, 2↔3, ...) with no
    /// flow table.
    pub xconnect: bool,
    /// Control socket path (`None`: no control socket).
    pub control: Option<PathBuf>,
    /// Exact-match flow cache entries per worker.
    pub flow_cache: usize,
    /// Stop once traffic has flowed and then no port received anything for
    /// this long (replaying a finite capture).
    pub idle_exit: Option<Duration>,
}

/// The TOML form: every field of the command line.
///
/// ```toml
/// eal = "-l 0-1 --no-huge --no-pci"
/// duration = 10          # seconds, optional
/// stats_interval = 1     # seconds, optional
/// [[port]]
/// devargs = "net_pcap0,rx_pcap=in.pcap"
/// [[port]]
/// devargs = "net_pcap1,tx_pcap=out.pcap"
/// flows = ["priority=10,in_port=0,actions=output:1"]
/// ```
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// EAL arguments as one string.
    pub eal: Option<String>,
    /// Ports.
    #[serde(default)]
    pub port: Vec<FilePort>,
    /// Seconds to run.
    pub duration: Option<f64>,
    /// Seconds between stats lines (0: none).
    pub stats_interval: Option<f64>,
    /// Mbufs in the packet pool.
    pub mbufs: Option<u32>,
    /// Rules installed at start.
    #[serde(default)]
    pub flows: Vec<String>,
    /// Patch-panel mode (no flow table).
    #[serde(default)]
    pub xconnect: bool,
    /// Control socket path.
    pub control: Option<PathBuf>,
    /// Exact-match flow cache entries per worker.
    pub flow_cache: Option<usize>,
}

/// One `[[port]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePort {
    /// DPDK devargs of the port.
    pub devargs: String,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))
    }
}

/// Splits an EAL argument string on whitespace (quotes are not needed by any
/// EAL option; devargs never contain spaces).
pub fn split_eal(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// Turns seconds into a duration, refusing negative, NaN and absurd values.
pub fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if !s.is_finite() || !(0.0..=1e9).contains(&s) {
        return Err(format!("{what} must be a number of seconds >= 0, got {s}"));
    }
    Ok(Duration::from_secs_f64(s))
}

impl RunConfig {
    /// Checks what can be checked without DPDK: at least one port, no port
    /// given twice, no empty devargs, a sane pool size.
    pub fn validate(&self) -> Result<(), String> {
        if self.ports.is_empty() {
            return Err(
                "no ports: give at least one --port <devargs> (e.g. --port net_null0)".into(),
            );
        }
        let mut names: Vec<&str> = Vec::new();
        for p in &self.ports {
            let name = dpdk_port_name(p);
            if name.is_empty() {
                return Err(format!("port devargs {p:?} has no device name"));
            }
            if names.contains(&name) {
                return Err(format!(
                    "port {name:?} is given twice; each device is one port (number virtual ones: net_null0, net_null1)"
                ));
            }
            names.push(name);
        }
        if !(1024..=1 << 26).contains(&self.flow_cache) {
            return Err(format!(
                "--flow-cache {} must be between 1024 and 2^26 entries",
                self.flow_cache
            ));
        }
        if self.mbufs < 1024 {
            return Err(format!(
                "--mbufs {} is too small (at least 1024)",
                self.mbufs
            ));
        }
        Ok(())
    }

    /// Whether the EAL arguments ask for no hugepages.
    pub fn no_huge(&self) -> bool {
        self.eal.iter().any(|a| a == "--no-huge")
    }

    /// Forwarding pairs: port 0 ↔ 1, 2 ↔ 3, ...; an odd last port forwards
    /// to itself. Returned as (rx port index, tx port index) streams.
    pub fn streams(&self) -> Vec<(usize, usize)> {
        let n = self.ports.len();
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i + 1 < n {
            out.push((i, i + 1));
            out.push((i + 1, i));
            i += 2;
        }
        if i < n {
            out.push((i, i));
        }
        out
    }
}

/// The device name part of devargs (before the first comma).
pub fn dpdk_port_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ports: &[&str]) -> RunConfig {
        RunConfig {
            eal: vec![],
            ports: ports.iter().map(|s| s.to_string()).collect(),
            duration: None,
            stats_interval: None,
            json: false,
            mbufs: 8191,
            flows: vec![],
            xconnect: false,
            control: None,
            flow_cache: 1 << 16,
            idle_exit: None,
        }
    }

    #[test]
    fn pairs_ports() {
        assert_eq!(cfg(&["a", "b"]).streams(), vec![(0, 1), (1, 0)]);
        assert_eq!(
            cfg(&["a", "b", "c"]).streams(),
            vec![(0, 1), (1, 0), (2, 2)]
        );
        assert_eq!(cfg(&["a"]).streams(), vec![(0, 0)]);
    }

    #[test]
    fn rejects_duplicates_and_empty() {
        assert!(cfg(&[]).validate().unwrap_err().contains("no ports"));
        let e = cfg(&["net_null0", "net_null0,no-rx=1"])
            .validate()
            .unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        assert!(cfg(&[",x=1"])
            .validate()
            .unwrap_err()
            .contains("no device name"));
        assert!(cfg(&["net_null0", "net_null1"]).validate().is_ok());
    }

    #[test]
    fn parses_toml() {
        let f = FileConfig::parse(
            "eal = \"-l 0-1 --no-huge\"\nduration = 2.5\n[[port]]\ndevargs = \"net_null0\"\n[[port]]\ndevargs = \"net_null1\"\n",
        )
        .unwrap();
        assert_eq!(f.eal.as_deref(), Some("-l 0-1 --no-huge"));
        assert_eq!(f.port.len(), 2);
        assert_eq!(f.duration, Some(2.5));
    }

    #[test]
    fn toml_errors_are_clear() {
        let e = FileConfig::parse("bogus = 1").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = FileConfig::parse("[[port]]\nname = \"x\"").unwrap_err();
        assert!(e.contains("devargs") || e.contains("unknown field"), "{e}");
    }

    #[test]
    fn seconds_are_checked() {
        assert!(seconds("--duration", -1.0).is_err());
        assert!(seconds("--duration", f64::NAN).is_err());
        assert_eq!(
            seconds("--duration", 1.5).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn split_eal_words() {
        assert_eq!(
            split_eal(" -l 0-1  --no-huge "),
            vec!["-l", "0-1", "--no-huge"]
        );
    }
}
