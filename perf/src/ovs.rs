//! A private Open vSwitch with DPDK (`ovs-vswitchd-dpdk`, Debian package
//! `openvswitch-switch-dpdk`), started entirely under a temp dir, used as the
//! peer of `vswitch` in the switching benchmark.
//!
//! Data flow:
//!
//! ```text
//! ovsdb-server (fresh conf.db, punix:<dir>/db.sock)
//!     ▲ ovs-vsctl: dpdk-init, lcore/PMD masks, dpdk-extra, bridge, ports
//! ovs-vswitchd-dpdk (own netns via `unshare --net`, own EAL --file-prefix)
//!     br0 (datapath_type=netdev, fail_mode=secure)
//!       ofport 1: dpdk, net_pcap0,rx_pcap=F,infinite_rx=1  (source)
//!       ofport 2: dpdk, net_null0,no-rx=1                  (sink)
//!     ▲ ovs-ofctl add-flows <file>; dump-ports (live netdev counters)
//!     ▲ ovs-appctl dpif-netdev/pmd-stats-clear | pmd-stats-show
//! ```
//!
//! Nothing touches the system's own OVS: the daemons get their own
//! `OVS_RUNDIR`/`OVS_DBDIR`/`OVS_LOGDIR`/`OVS_SYSCONFDIR`, unixctl sockets and
//! pidfiles under the temp dir, and `ovs-vswitchd` runs in a fresh network
//! namespace, so the bridge's internal tap port never appears on the host.
//! [`Ovs`] kills both daemons and removes every file it made when dropped,
//! also when start-up failed half-way. Starting, driving and stopping the
//! daemons is [`ovs_sandbox::Sandbox`], the same code the tests' OVS
//! harness runs; this module adds the benchmark's configuration, its
//! clean-up records, flow tables and counters.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ovs_sandbox::{Net, Sandbox};

pub use ovs_sandbox::{vswitchd_dpdk as vswitchd_bin, SCHEMA, VSWITCHD_DPDK};

/// A port of [`Ovs::start_with_ports`].
pub type OvsPort = ovs_sandbox::Port;

/// The bridge's name (private to the instance's run dir and netns).
pub const BRIDGE: &str = "br0";
/// OpenFlow port number of the source port (`net_pcap`).
pub const OF_IN: u32 = 1;
/// OpenFlow port number of the sink port (`net_null`).
pub const OF_OUT: u32 = 2;

/// How to start the instance.
#[derive(Clone, Debug)]
pub struct Config {
    /// Unique tag: names the temp dir and the EAL `--file-prefix`.
    pub tag: String,
    /// The one core the PMD thread polls on (`pmd-cpu-mask`).
    pub pmd_core: u32,
    /// The core of the main thread (`dpdk-lcore-mask`).
    pub main_core: u32,
    /// Hugepage memory for the EAL in MiB (`dpdk-socket-mem`).
    pub socket_mem_mb: u32,
    /// Devargs of the source port (OpenFlow port [`OF_IN`]).
    pub source_devargs: String,
    /// Devargs of the sink port (OpenFlow port [`OF_OUT`]).
    pub sink_devargs: String,
}

/// The PMD thread's counters from `dpif-netdev/pmd-stats-show`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PmdStats {
    /// Packets received by the PMD.
    pub packets: u64,
    /// Exact-match-cache hits.
    pub emc_hits: u64,
    /// Signature-match-cache hits.
    pub smc_hits: u64,
    /// Simple-match (in_port-only) hits.
    pub simple_match_hits: u64,
    /// Megaflow (dpcls) hits.
    pub megaflow_hits: u64,
    /// Upcalls (slow path) that installed a megaflow.
    pub upcalls: u64,
    /// Busy (processing) TSC cycles per packet.
    pub processing_cycles_per_packet: Option<f64>,
    /// Busy (processing) TSC cycles: polling iterations that received
    /// packets.
    pub processing_cycles: u64,
}

impl PmdStats {
    /// Parses the first `pmd thread` block of `pmd-stats-show` output.
    pub fn parse(text: &str) -> Option<PmdStats> {
        // The block: the "pmd thread ..." line and its indented lines.
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("pmd thread"))
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
            .map(|(_, l)| l)
            .collect();
        if block.is_empty() {
            return None;
        }
        let num = |key: &str| -> u64 {
            block
                .iter()
                .find_map(|l| l.trim().strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let cpp = block
            .iter()
            .find_map(|l| l.trim().strip_prefix("avg processing cycles per packet:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        Some(PmdStats {
            packets: num("packets received:"),
            emc_hits: num("emc hits:"),
            smc_hits: num("smc hits:"),
            simple_match_hits: num("simple match hits:"),
            megaflow_hits: num("megaflow hits:"),
            upcalls: num("miss with success upcall:"),
            processing_cycles_per_packet: cpp,
            processing_cycles: num("processing cycles:"),
        })
    }
}

/// A running private OVS-DPDK instance; dropping it tears it down.
pub struct Ovs {
    sb: Sandbox,
}

impl Ovs {
    /// Starts ovsdb-server and ovs-vswitchd-dpdk, creates the bridge with
    /// both ports and checks that OVS opened them. Errors carry the exact
    /// reason and the tail of the daemon's log.
    pub fn start(cfg: &Config) -> Result<Ovs, String> {
        let ports = [
            OvsPort::dpdk("src", OF_IN, &cfg.source_devargs),
            OvsPort::dpdk("sink", OF_OUT, &cfg.sink_devargs),
        ];
        Self::start_with_ports(cfg, &ports, &[])
    }

    /// [`Ovs::start`] with any ports (`cfg`'s source and sink devargs are
    /// not used) and extra `other_config:KEY=VALUE` settings of the
    /// Open_vSwitch table, applied before vswitchd starts (e.g.
    /// `other_config:userspace-tso-enable=true`).
    pub fn start_with_ports(
        cfg: &Config,
        ports: &[OvsPort],
        other_config: &[String],
    ) -> Result<Ovs, String> {
        let bin = vswitchd_bin()?;
        let prefix = format!("perf-ovs-{}", cfg.tag);
        let dir = std::env::temp_dir().join(&prefix);
        crate::cleanup::record(crate::cleanup::Resource::Path(dir.clone()));
        crate::cleanup::record(crate::cleanup::Resource::Path(
            Path::new("/var/run/dpdk").join(&prefix),
        ));
        let mut sb = Sandbox::new(dir, &prefix, "OVS")?;
        sb.on_spawn = crate::cleanup::record_child;
        sb.start_ovsdb()?;
        let more: Vec<&str> = other_config.iter().map(String::as_str).collect();
        sb.dpdk_init(
            1 << cfg.main_core,
            1 << cfg.pmd_core,
            cfg.socket_mem_mb,
            &more,
        )?;
        sb.start_vswitchd(Net::Fresh, bin.as_os_str(), false)?;
        sb.add_bridge(BRIDGE, &["fail_mode=secure"])?;
        sb.check_dpdk()?;
        let ovs = Ovs { sb };
        for p in ports {
            ovs.add_port(p)?;
        }
        Ok(ovs)
    }

    /// Adds `p` to the bridge and checks that OVS opened it.
    pub fn add_port(&self, p: &OvsPort) -> Result<(), String> {
        self.add_port_to(BRIDGE, p)
    }

    /// Adds another netdev bridge `name` (`fail_mode=secure`; `hwaddr`:
    /// its MAC, e.g. the `br-phy` of OVS's user-space tunnelling, whose
    /// internal port holds the tunnel endpoint's IP) with `ports`.
    pub fn add_bridge(&self, name: &str, hwaddr: &str, ports: &[OvsPort]) -> Result<(), String> {
        self.sb.add_bridge(
            name,
            &["fail_mode=secure", &format!("other_config:hwaddr={hwaddr}")],
        )?;
        for p in ports {
            self.add_port_to(name, p)?;
        }
        Ok(())
    }

    /// Runs `cmd` (e.g. `ip addr add ...`) in ovs-vswitchd's network
    /// namespace (`nsenter`), where its bridges' internal ports live.
    pub fn in_netns(&self, cmd: &[&str]) -> Result<String, String> {
        let pid = self
            .vswitchd_pid()
            .ok_or_else(|| self.sb.failure("no ovs-vswitchd pid"))?
            .to_string();
        let mut v = vec!["-t", pid.as_str(), "-n", "--"];
        v.extend_from_slice(cmd);
        self.sb.tool("nsenter", &v)
    }

    /// Adds `p` to `bridge` and checks that OVS opened it.
    pub fn add_port_to(&self, bridge: &str, p: &OvsPort) -> Result<(), String> {
        self.sb.add_port(bridge, p)
    }

    /// Adds a `net_pcap` port `name` (OpenFlow `ofport`) that replays
    /// `pcap` once, every frame of it through the flow table
    /// ([`Sandbox::add_replay_port`]: OVS's PMD polls a new port before
    /// ofproto-dpif knows it and drops what it reads then, so the port
    /// starts on an empty pcap and restarts on the real one).
    pub fn add_replay_port(&self, name: &str, ofport: u32, pcap: &Path) -> Result<(), String> {
        self.sb.add_replay_port(BRIDGE, name, ofport, pcap, None)
    }

    /// The rx packet counter of OpenFlow port `ofport` (`dump-ports`).
    pub fn rx_packets(&self, ofport: u32) -> Result<u64, String> {
        let out = self.dump_ports(BRIDGE, ofport)?;
        ovs_sandbox::counter(&out, "rx pkts=").ok_or_else(|| {
            self.sb
                .failure(&format!("no rx counter in dump-ports output: {out}"))
        })
    }

    /// Connections in the userspace tracker and how many of them are TCP
    /// `ESTABLISHED` (`ovs-appctl dpctl/dump-conntrack`).
    pub fn conntrack_entries(&self) -> Result<(usize, usize), String> {
        let out = self.appctl(&["dpctl/dump-conntrack"])?;
        let n = out.lines().filter(|l| !l.trim().is_empty()).count();
        let est = out.lines().filter(|l| l.contains("ESTABLISHED")).count();
        Ok((n, est))
    }

    /// Where a `dpdkvhostuser` port named `name` has its socket (the
    /// instance's run dir).
    pub fn vhost_socket(&self, name: &str) -> PathBuf {
        self.sb.vhost_socket(name)
    }

    /// Runs `ovs-appctl` against this instance's ovs-vswitchd.
    pub fn appctl(&self, args: &[&str]) -> Result<String, String> {
        self.sb.appctl(args)
    }

    /// The tail of ovs-vswitchd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        ovs_sandbox::tail(&self.sb.dir.join("ovs-vswitchd.log"), lines)
    }

    /// Replaces the bridge's OpenFlow table with the rules in `rules`
    /// (`ovs-ofctl add-flows` syntax, one rule a line) in one bundle.
    pub fn replace_flows(&self, rules: &str) -> Result<(), String> {
        self.replace_flows_of(BRIDGE, rules)
    }

    /// [`Ovs::replace_flows`] of bridge `bridge`.
    pub fn replace_flows_of(&self, bridge: &str, rules: &str) -> Result<(), String> {
        let f = self.sb.path("flows.txt");
        fs::write(&f, rules).map_err(|e| format!("write {f}: {e}"))?;
        self.sb.tool("ovs-ofctl", &["del-flows", bridge])?;
        self.sb
            .tool("ovs-ofctl", &["--bundle", "add-flows", bridge, &f])?;
        let n = self
            .sb
            .tool("ovs-ofctl", &["dump-aggregate", bridge])?
            .split("flow_count=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let want = rules.lines().filter(|l| !l.trim().is_empty()).count();
        if n != want {
            return Err(self
                .sb
                .failure(&format!("{want} rules added but {n} installed")));
        }
        Ok(())
    }

    /// The live tx packet counter of OpenFlow port `ofport`
    /// (`ovs-ofctl dump-ports`, read from the DPDK port, not from OVSDB,
    /// whose statistics column is only refreshed every 5 s).
    pub fn tx_packets(&self, ofport: u32) -> Result<u64, String> {
        self.tx_packets_of(BRIDGE, ofport)
    }

    /// [`Ovs::tx_packets`] of a port of bridge `bridge`.
    pub fn tx_packets_of(&self, bridge: &str, ofport: u32) -> Result<u64, String> {
        let out = self.dump_ports(bridge, ofport)?;
        parse_dump_ports_tx(&out).ok_or_else(|| {
            self.sb
                .failure(&format!("no tx counter in dump-ports output: {out}"))
        })
    }

    fn dump_ports(&self, bridge: &str, ofport: u32) -> Result<String, String> {
        self.sb
            .tool("ovs-ofctl", &["dump-ports", bridge, &ofport.to_string()])
    }

    /// Port `ofport` of `bridge`'s tx rate (Mpps) in each of the next
    /// `secs` seconds, from its `dump-ports` counter read once a second.
    pub fn tx_rates(&self, bridge: &str, ofport: u32, secs: u64) -> Result<Vec<f64>, String> {
        let sample = || -> Result<(Instant, u64), String> {
            Ok((Instant::now(), self.tx_packets_of(bridge, ofport)?))
        };
        let mut prev = sample()?;
        let mut samples = Vec::new();
        for _ in 0..secs {
            std::thread::sleep(Duration::from_secs(1).saturating_sub(prev.0.elapsed()));
            let now = sample()?;
            let dt = now.0.duration_since(prev.0).as_secs_f64();
            samples.push(now.1.saturating_sub(prev.1) as f64 / dt / 1e6);
            prev = now;
        }
        Ok(samples)
    }

    /// Zeroes the PMD counters.
    pub fn pmd_stats_clear(&self) -> Result<(), String> {
        self.appctl(&["dpif-netdev/pmd-stats-clear"]).map(|_| ())
    }

    /// The PMD counters since the last clear.
    pub fn pmd_stats(&self) -> Result<PmdStats, String> {
        let out = self.appctl(&["dpif-netdev/pmd-stats-show"])?;
        PmdStats::parse(&out).ok_or_else(|| self.sb.failure(&format!("no PMD thread in: {out}")))
    }

    /// The PMD's busy iterations (polling rounds that received packets)
    /// since the last clear, from `dpif-netdev/pmd-perf-show` (recorded
    /// without `pmd-perf-metrics`): packets / busy iterations is its mean
    /// rx batch per round.
    pub fn pmd_busy_iterations(&self) -> Result<u64, String> {
        let out = self.appctl(&["dpif-netdev/pmd-perf-show"])?;
        parse_busy_iterations(&out)
            .ok_or_else(|| self.sb.failure(&format!("no busy iterations in: {out}")))
    }

    /// ovs-vswitchd's process id (from its pidfile).
    pub fn vswitchd_pid(&self) -> Option<u32> {
        self.sb.vswitchd_pid()
    }

    /// Whether ovs-vswitchd is still running.
    pub fn alive(&mut self) -> bool {
        self.sb.alive()
    }
}

/// `- busy iterations: N` of the first PMD thread in `pmd-perf-show`
/// output.
pub fn parse_busy_iterations(out: &str) -> Option<u64> {
    out.lines()
        .skip_while(|l| !l.starts_with("pmd thread"))
        .find_map(|l| l.trim().strip_prefix("- busy iterations:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The `tx pkts=` counter in `ovs-ofctl dump-ports BR PORT` output.
pub fn parse_dump_ports_tx(out: &str) -> Option<u64> {
    ovs_sandbox::counter(out, "tx pkts=")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PMD: &str = "pmd thread numa_id 0 core_id 1:
  packets received: 49220992
  packet recirculations: 0
  avg. datapath passes per packet: 1.00
  phwol hits: 0
  mfex opt hits: 0
  simple match hits: 49219456
  emc hits: 7
  smc hits: 0
  megaflow hits: 31
  avg. subtable lookups per megaflow hit: 1.00
  miss with success upcall: 1
  miss with failed upcall: 1504
  avg. packets per output batch: 32.00
  idle cycles: 0 (0.00%)
  processing cycles: 8249396089 (100.00%)
  avg cycles per packet: 167.60 (8249396089/49220992)
  avg processing cycles per packet: 167.60 (8249396089/49220992)
main thread:
  packets received: 5
  emc hits: 99
";

    #[test]
    fn parse_pmd_perf_busy_iterations() {
        let out = "Time: 01:02:03.456\nMeasurement duration: 4.001 s\n\n\
                   pmd thread numa_id 0 core_id 1:\n\n\
                   \x20 Iterations:             12345678  (0.32 us/it)\n\
                   \x20 - Used TSC cycles:   10400000000  (100.0 % of total cycles)\n\
                   \x20 - idle iterations:       345678  (  1.2 % of used cycles)\n\
                   \x20 - busy iterations:     12000000  ( 98.8 % of used cycles)\n";
        assert_eq!(parse_busy_iterations(out), Some(12000000));
        assert_eq!(parse_busy_iterations("  - busy iterations: 5\n"), None);
    }

    #[test]
    fn parse_pmd_stats() {
        let s = PmdStats::parse(PMD).unwrap();
        assert_eq!(
            s,
            PmdStats {
                packets: 49220992,
                emc_hits: 7,
                smc_hits: 0,
                simple_match_hits: 49219456,
                megaflow_hits: 31,
                upcalls: 1,
                processing_cycles_per_packet: Some(167.60),
                processing_cycles: 8249396089,
            }
        );
        assert_eq!(
            PmdStats::parse("main thread:\n  packets received: 5\n"),
            None
        );
    }

    #[test]
    fn parse_tx_counter() {
        let out = "OFPST_PORT reply (xid=0x2): 1 ports
  port  2: rx pkts=0, bytes=0, drop=0, errs=0, frame=?, over=?, crc=?
           tx pkts=47730656, bytes=0, drop=0, errs=0, coll=?
";
        assert_eq!(parse_dump_ports_tx(out), Some(47730656));
        assert_eq!(parse_dump_ports_tx("garbage"), None);
    }
}
