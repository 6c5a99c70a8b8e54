//! `vswitch run`: the data plane, from flags or a TOML file; and the demo
//! that `vswitch` with no arguments runs.

// The doc comments of the clap types below are `--help` text, where
// `[...]` marks an optional part, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Args;

use crate::dataplane::config::{self, CorePoll, FileConfig, RunConfig};
use crate::dataplane::exporter::MetricsArgs;
use crate::dataplane::{self, Summary};

/// Arguments of `vswitch run`.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// EAL arguments as one string, e.g. "-l 0-1 --no-huge --no-pci".
    /// Default: two lcores, hugepages if free (else --no-huge), no PCI scan
    /// unless a port is a PCI address, a per-process file prefix.
    #[arg(long, allow_hyphen_values = true)]
    pub eal: Option<String>,
    /// A port, as DPDK devargs (repeat; port N is the N-th given):
    /// `net_null0`, `net_pcap0,rx_pcap=in.pcap`, `net_tap0,iface=tap0`,
    /// `0000:01:00.0`, a VM's NIC `net_vhost0,iface=/run/vm1.sock,client=1`
    /// (QEMU owns the socket; `queues=N` for multiqueue). The switch's own
    /// `mtu=N` (68..=9710) sizes the port's mbufs for its frames.
    /// Ports are cross-connected pairwise: 0↔1, 2↔3, ...
    ///
    /// A tunnel port is `NAME,type=vxlan|geneve,local_ip=A,remote_ip=B|flow,
    /// key=K|flow,underlay=PORT[,dst_port=N,ttl=N,tos=N,df_default=false]`
    /// (also `--tunnel`).
    #[arg(long = "port", visible_alias = "tunnel", value_name = "DEVARGS")]
    pub ports: Vec<String>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Seconds between per-port stats lines (0: only the final summary).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub stats_interval: f64,
    /// Mbufs in the packet pool (default: enough for every port's rx ring,
    /// plus the frames of `net_pcap` ports with `infinite_rx=1`, which DPDK
    /// keeps in the pool for the whole run).
    #[arg(long)]
    pub mbufs: Option<u32>,
    /// Print stats and the summary as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// A rule to install at start, in `ovs-ofctl add-flow` syntax (repeat).
    /// With no rules the switch is a learning bridge (NORMAL).
    #[arg(long = "flow", value_name = "RULE")]
    pub flow: Vec<String>,
    /// A file of rules, one per line (`#` comments and blank lines skipped).
    #[arg(long = "flows", value_name = "FILE")]
    pub flows_file: Option<PathBuf>,
    /// Patch-panel mode: forward port 0↔1, 2↔3, ... untouched, bypassing
    /// the flow table (like `testpmd --forward-mode=io`).
    #[arg(long)]
    pub xconnect: bool,
    /// Control socket for `vswitch flows|ports|fdb|stats` (which take it as
    /// `--socket PATH`; `--socket` is accepted here too).
    #[arg(long, visible_alias = "socket", value_name = "PATH", default_value = switch::control::DEFAULT_SOCKET)]
    pub control: PathBuf,
    /// Run without a control socket.
    #[arg(long)]
    pub no_control: bool,
    /// Stop once traffic has flowed and then no port received a frame for
    /// this many seconds (for replaying a finite pcap).
    #[arg(long, value_name = "SECS")]
    pub idle_exit: Option<f64>,
    /// Exact-match flow cache entries per forwarding lcore (default 1M).
    #[arg(long, value_name = "ENTRIES")]
    pub flow_cache: Option<usize>,
    /// Connections the connection tracker (the `ct` action) holds, all
    /// zones together (default 1M; a commit beyond it is refused and
    /// counted as a limit drop). TOML: `ct_max_conns`.
    #[arg(long, value_name = "N")]
    pub ct_max_conns: Option<u32>,
    /// Read the run configuration from a TOML file (flags given as well
    /// override it; ports and devices from flags are added after the file's).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve a virtio-blk device to a VM on vhost-user socket SOCKET, from
    /// BACKEND (iscsi://[USER%SECRET@]HOST:PORT[,HOST:PORT...]/IQN/LUN[?OPTIONS], file:PATH, mem:SIZE, null:SIZE),
    /// polled by the switch's own core between bursts (repeat for more).
    #[arg(long = "blk", value_name = "SOCKET=BACKEND")]
    pub blk: Vec<String>,
    /// Block cache of SIZE bytes (like 64M) in front of each --blk device.
    #[arg(long, value_name = "SIZE", value_parser = vfio::backend::parse_size)]
    pub blk_cache: Option<u64>,
    /// When cached writes of the --blk devices complete.
    #[arg(long, value_enum, default_value_t = CacheMode::Writethrough, requires = "blk_cache")]
    pub blk_cache_mode: CacheMode,
    /// Request queues of each --blk device.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub blk_queues: u16,
    /// QoS limits of each --blk device (requests wait in the ring, never fail).
    #[command(flatten)]
    pub blk_qos: crate::cmd::blk::BlkQosArgs,
    /// Give the host TCP/IP stack (smoltcp) this address on an internal
    /// port of the switch (port number: after the --port ports); the
    /// iscsi:// devices' sessions then run over it (one TCP connection
    /// each), through the flow table.
    #[arg(long, value_name = "ADDR/PREFIX")]
    pub host_ip: Option<String>,
    /// MAC of the host stack's internal port (default: locally administered).
    #[arg(long, value_name = "MAC", requires = "host_ip")]
    pub host_mac: Option<String>,
    /// IP MTU of the host stack (default 1500, at most 9000). Above 1500 the
    /// switch's mbufs grow to hold the frames, and net_af_packet ports need
    /// `framesz=9216,blocksz=36864` (and the interface that MTU): a 4 KiB
    /// iSCSI write or read then crosses in one frame instead of three.
    #[arg(long, value_name = "BYTES")]
    pub host_mtu: Option<u16>,
    /// Publish the devices' counters here every 250 ms (`vswitch blk stats`).
    #[arg(long, value_name = "PATH")]
    pub blk_stats_file: Option<PathBuf>,
    /// How the core that serves the switch and the --blk devices waits when
    /// both are idle: busy (always spin), adaptive (after 20000 idle rounds,
    /// sleep 20 µs per round until work appears) or wait (spin 50 µs after
    /// completions, then block on the guests' kicks and the ports' rx until
    /// one fires; needs one forwarding lcore; ports other than
    /// net_af_packet keep the core spinning). Adaptive and wait free the
    /// core for a target or a VM on small hosts. Default: the file's
    /// `poll`, else wait with --blk devices on one forwarding lcore, else
    /// busy.
    #[arg(long, value_enum)]
    pub poll: Option<Poll>,
    /// Serve SPDK's JSON-RPC storage methods on this unix socket (rpc.py
    /// -s PATH, `vswitch rpc`; default /var/tmp/spdk.sock): bdevs and
    /// vhost-blk controllers made and deleted while the switch runs.
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = crate::storage::rpc::DEFAULT_SOCKET)]
    pub rpc: Option<PathBuf>,
    /// Directory of the sockets of controllers made by JSON-RPC or
    /// --config-json (SPDK's -S; default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub vhost_dir: Option<PathBuf>,
    /// Create the bdevs and controllers a saved configuration lists (rpc.py
    /// save_config's JSON; SPDK's --json).
    #[arg(long, alias = "json-config", value_name = "FILE")]
    pub config_json: Option<PathBuf>,
    /// Take bridges and ports from an OVSDB server's `Open_vSwitch`
    /// database, as `ovs-vswitchd` does (`unix:PATH` or `tcp:IP:PORT`;
    /// without a value: `unix:/var/run/openvswitch/db.sock`), so `ovs-vsctl`
    /// configures the switch while it runs.
    #[arg(long, value_name = "TARGET", num_args = 0..=1,
          default_missing_value = config::DEFAULT_OVSDB)]
    pub ovsdb: Option<String>,
    /// Run directory: bridges' OpenFlow sockets (`BRIDGE.mgmt`) and
    /// `dpdkvhostuser` sockets (default `/var/run/openvswitch`, as OVS).
    #[arg(long, value_name = "DIR")]
    pub rundir: Option<PathBuf>,
    /// Prometheus metrics endpoint.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// How the switch core waits when idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Poll {
    /// Always spin.
    Busy,
    /// Spin, then sleep per round while idle.
    Adaptive,
    /// Spin after completions, then block on kicks and rx wake-ups.
    Wait,
}

/// When cached writes complete.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum CacheMode {
    /// Once they are in the backend.
    #[default]
    Writethrough,
    /// Once they are in the cache (FLUSH writes back).
    Writeback,
}

impl RunArgs {
    /// Merges flags and file into a validated configuration.
    pub fn to_config(&self) -> Result<RunConfig, String> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let mut ports: Vec<String> = file.port.into_iter().map(|p| p.devargs).collect();
        ports.extend(self.ports.iter().cloned());
        let ovsdb = self.ovsdb.clone().or(file.ovsdb);
        let eal = match (self.eal.as_deref().or(file.eal.as_deref()), &ovsdb) {
            (Some(s), _) => config::split_eal(s),
            // As ovs-vswitchd: the cores and EAL extras from other_config.
            (None, Some(target)) => {
                let defaults = dataplane::default_eal(&ports);
                match dataplane::ovs_eal::read_other_config(target) {
                    Ok(oc) => dataplane::ovs_eal::eal_args(&oc, &defaults)?,
                    Err(e) => {
                        eprintln!("vswitch: {e}; using the default EAL arguments");
                        defaults
                    }
                }
            }
            (None, None) => dataplane::default_eal(&ports),
        };
        let duration = match self.duration.or(file.duration) {
            Some(s) => Some(config::seconds("--duration", s)?),
            None => None,
        };
        let interval_s = if self.config.is_some() && self.stats_interval == 1.0 {
            file.stats_interval.unwrap_or(1.0)
        } else {
            self.stats_interval
        };
        let iv = config::seconds("--stats-interval", interval_s)?;
        let mut flows = file.flows;
        if let Some(path) = &self.flows_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read flows file {}: {e}", path.display()))?;
            flows.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        flows.extend(self.flow.iter().cloned());
        let control = if self.no_control {
            None
        } else if self.control.as_os_str() == switch::control::DEFAULT_SOCKET {
            Some(file.control.unwrap_or_else(|| self.control.clone()))
        } else {
            Some(self.control.clone())
        };
        let mut blk = file
            .blk
            .iter()
            .map(config::FileBlk::to_spec)
            .collect::<Result<Vec<_>, _>>()?;
        for b in &self.blk {
            let mut spec = config::BlkSpec::parse_flag(b)?;
            spec.cache = self.blk_cache;
            spec.writeback = matches!(self.blk_cache_mode, CacheMode::Writeback);
            spec.queues = self.blk_queues;
            spec.qos = self.blk_qos.limits();
            blk.push(spec);
        }
        let host = match (&self.host_ip, &file.host) {
            (Some(ip), f) => Some(
                config::HostStack::parse(ip, self.host_mac.as_deref())?
                    .with_mtu(self.host_mtu.or(f.as_ref().and_then(|h| h.mtu)))?,
            ),
            (None, Some(h)) => Some(
                config::HostStack::parse(&h.address, h.mac.as_deref())?
                    .with_mtu(self.host_mtu.or(h.mtu))?,
            ),
            (None, None) => None,
        };
        let mut cfg = RunConfig {
            eal,
            // Sized below when neither the flag nor the file gives it.
            mbufs: self.mbufs.or(file.mbufs).unwrap_or(0),
            ports,
            duration,
            stats_interval: (!iv.is_zero()).then_some(iv),
            json: self.json,
            flows,
            xconnect: self.xconnect || file.xconnect,
            control,
            flow_cache: self.flow_cache.or(file.flow_cache).unwrap_or(1 << 20),
            ct_max_conns: self
                .ct_max_conns
                .or(file.ct_max_conns)
                .unwrap_or(config::DEFAULT_CT_CONNS),
            idle_exit: match self.idle_exit {
                Some(s) => Some(config::seconds("--idle-exit", s)?),
                None => None,
            },
            blk,
            host,
            blk_stats_file: self.blk_stats_file.clone().or(file.blk_stats_file),
            poll: CorePoll::parse(match (self.poll, file.poll.as_deref()) {
                (Some(Poll::Busy), _) => "busy",
                (Some(Poll::Adaptive), _) => "adaptive",
                (Some(Poll::Wait), _) => "wait",
                (None, p) => p.unwrap_or("auto"),
            })?,
            ovsdb,
            rundir: self
                .rundir
                .clone()
                .or(file.rundir)
                .unwrap_or_else(|| config::DEFAULT_RUNDIR.into()),
            metrics: match (&self.metrics.metrics, file.metrics) {
                (Some(_), _) => self.metrics.addr()?,
                (None, Some(a)) => Some(metrics::parse_listen(
                    &a,
                    file.metrics_allow_remote,
                    "--metrics",
                )?),
                (None, None) => None,
            },
            storage_rpc: config::StorageRpc {
                socket: self.rpc.clone().or(file.rpc),
                vhost_dir: self
                    .vhost_dir
                    .clone()
                    .or(file.vhost_dir)
                    .unwrap_or_else(|| ".".into()),
                config_json: self.config_json.clone().or(file.config_json),
            },
        };
        if self.mbufs.or(file.mbufs).is_none() {
            // Room for pcap ports that preload their frames (infinite_rx).
            cfg.mbufs = cfg.needed_mbufs();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `vswitch run`.
pub fn run(args: &RunArgs) -> Result<(), String> {
    let cfg = args.to_config()?;
    let summary = dataplane::run(&cfg)?;
    print_summary(&summary, cfg.json);
    Ok(())
}

/// Prints the final summary.
pub fn print_summary(s: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::json!({"type": "summary", "summary": s}));
        return;
    }
    println!("--- summary after {:.2} s ---", s.seconds);
    for p in &s.ports {
        println!(
            "port {:<2} {:<14} rx {:>12} pkts {:>14} bytes | tx {:>12} pkts {:>14} bytes | drops {}",
            p.port, p.name, p.total.rx_packets, p.total.rx_bytes, p.total.tx_packets, p.total.tx_bytes, p.total.drops
        );
    }
    for b in &s.blk {
        println!(
            "blk {:<14} {} | reads {} writes {} flushes {} | read {} KiB written {} KiB | errors {}{}",
            b.device,
            b.backend,
            b.reads,
            b.writes,
            b.flushes,
            b.bytes_read >> 10,
            b.bytes_written >> 10,
            b.errors,
            match (b.cache_hits, b.cache_misses) {
                (Some(h), Some(m)) => format!(" | cache hits {h} misses {m}"),
                _ => String::new(),
            }
        );
    }
    println!(
        "forwarded {:.3} Mpps; {:.1} cycles/packet (per burst p50 {} p90 {} p99 {} max {})",
        s.forwarded_pps / 1e6,
        s.cycles_per_packet,
        s.cycles_per_packet_pct[0],
        s.cycles_per_packet_pct[1],
        s.cycles_per_packet_pct[2],
        s.cycles_per_packet_pct[3]
    );
}

/// `vswitch` with no arguments: a demo on virtual PMDs, no NIC, no hugepages.
pub fn demo() -> Result<(), String> {
    println!(
        "vswitch demo: no arguments were given, so this switches packets between two virtual DPDK ports\n\
         for 3 seconds, with no NIC and no hugepages, through the flow table with one rule:\n  \
         priority=100,in_port=0,actions=output:1\n  \
         port 0 = net_null0        (a generator: every rx burst returns 64-byte packets)\n  \
         port 1 = net_null1,no-rx=1 (a sink: counts and frees what it is sent)\n\
         Equivalent command:\n  \
         vswitch run --eal \"-l 0-1 --no-huge --no-shconf --no-pci\" --port net_null0 --port net_null1,no-rx=1 --duration 3 --no-control \\\n      \
         --flow priority=100,in_port=0,actions=output:1\n\
         See `vswitch --help` for the rest (run, and the other subcommands).\n"
    );
    let args = RunArgs {
        eal: Some(format!(
            "-l {} --no-huge --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vswitch-demo-{}",
            if std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) >= 2 { "0-1" } else { "0" },
            std::process::id()
        )),
        ports: vec!["net_null0".into(), "net_null1,no-rx=1".into()],
        flow: vec!["priority=100,in_port=0,actions=output:1".into()],
        duration: Some(3.0),
        stats_interval: 1.0,
        no_control: true,
        ..Default::default()
    };
    run(&args)?;
    println!(
        "\nThe numbers above are frames one forwarding lcore received on port 0, looked up in the flow cache\n\
         and flow table, and sent to port 1. Add rules with --flow, or run with a control socket and use\n\
         `vswitch flows add ...` while it runs."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_flags_make_the_config() {
        let a = RunArgs {
            ports: vec!["net_null0".into()],
            blk: vec!["/tmp/d.sock=iscsi://10.0.0.2:3260/iqn.a:b/1".into()],
            blk_cache: Some(64 << 20),
            blk_cache_mode: CacheMode::Writeback,
            blk_queues: 2,
            host_ip: Some("10.0.0.1/24".into()),
            host_mac: Some("02:00:00:00:00:09".into()),
            poll: Some(Poll::Adaptive),
            stats_interval: 1.0,
            control: switch::control::DEFAULT_SOCKET.into(),
            ..Default::default()
        };
        let c = a.to_config().unwrap();
        assert_eq!(c.blk.len(), 1);
        let b = &c.blk[0];
        assert_eq!((b.cache, b.writeback, b.queues), (Some(64 << 20), true, 2));
        let h = c.host.unwrap();
        assert_eq!(h.mac, Some([2, 0, 0, 0, 0, 9]));
        assert!(matches!(c.poll, CorePoll::Adaptive(_)));

        // Storage made at run time: no port and no --blk needed.
        let rpc = RunArgs {
            rpc: Some("/tmp/spdk.sock".into()),
            config_json: Some("/tmp/saved.json".into()),
            control: switch::control::DEFAULT_SOCKET.into(),
            ..Default::default()
        };
        let c = rpc.to_config().unwrap();
        assert!(c.ports.is_empty() && c.blk.is_empty() && c.has_storage());
        assert_eq!(c.storage_rpc.socket, Some(PathBuf::from("/tmp/spdk.sock")));
        assert_eq!(c.storage_rpc.vhost_dir, PathBuf::from("."));
        let f = config::FileConfig::parse("rpc = \"/r.sock\"\nvhost_dir = \"/run/v\"\n").unwrap();
        assert_eq!(f.rpc, Some(PathBuf::from("/r.sock")));
        assert_eq!(f.vhost_dir, Some(PathBuf::from("/run/v")));

        let bad = RunArgs {
            blk: vec!["no-equals-sign".into()],
            ..a
        };
        assert!(bad.to_config().unwrap_err().contains("SOCKET=BACKEND"));
    }
}
