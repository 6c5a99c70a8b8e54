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
//! also when start-up failed half-way.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the DPDK build of `ovs-vswitchd`.
pub const VSWITCHD_DPDK: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
/// The OVSDB schema shipped by `openvswitch-common`.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
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

/// A port of [`Ovs::start_with_ports`].
#[derive(Clone, Debug)]
pub struct OvsPort {
    /// Interface name.
    pub name: String,
    /// OpenFlow port number asked for (`ofport_request`).
    pub ofport: u32,
    /// Interface type (`dpdk`, `dpdkvhostuser`, `dpdkvhostuserclient`).
    pub kind: String,
    /// More `Interface` columns, e.g. `options:dpdk-devargs=...`.
    pub options: Vec<String>,
}

impl OvsPort {
    /// A `type=dpdk` port on `devargs`.
    pub fn dpdk(name: &str, ofport: u32, devargs: &str) -> OvsPort {
        OvsPort {
            name: name.into(),
            ofport,
            kind: "dpdk".into(),
            options: vec![format!("options:dpdk-devargs={devargs}")],
        }
    }

    /// A `type=dpdkvhostuserclient` port: the guest's front end serves the
    /// socket `server_path` and OVS connects (and reconnects) to it; with
    /// `userspace-tso-enable=true` OVS takes large segments on such ports
    /// only (external mbuf buffers; `dpdkvhostuser` ports register linear
    /// buffers alone, so a 64 KiB segment from the guest does not fit).
    pub fn vhost_user_client(name: &str, ofport: u32, server_path: &Path) -> OvsPort {
        OvsPort {
            name: name.into(),
            ofport,
            kind: "dpdkvhostuserclient".into(),
            options: vec![format!(
                "options:vhost-server-path={}",
                server_path.display()
            )],
        }
    }

    /// A `type=dpdkvhostuser` port: OVS serves the socket
    /// [`Ovs::vhost_socket`]`(name)`, a guest's virtio front end connects.
    pub fn vhost_user(name: &str, ofport: u32) -> OvsPort {
        OvsPort {
            name: name.into(),
            ofport,
            kind: "dpdkvhostuser".into(),
            options: vec![],
        }
    }
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
        })
    }
}

/// A running private OVS-DPDK instance; dropping it tears it down.
pub struct Ovs {
    dir: PathBuf,
    file_prefix: String,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
}

/// The `ovs-vswitchd-dpdk` binary: `$OVS_VSWITCHD_DPDK` or Debian's path.
pub fn vswitchd_bin() -> Result<PathBuf, String> {
    let p = std::env::var_os("OVS_VSWITCHD_DPDK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(VSWITCHD_DPDK));
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: install the Debian package openvswitch-switch-dpdk",
            p.display()
        ))
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
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
        if !Path::new(SCHEMA).exists() {
            return Err(format!(
                "{SCHEMA} not found: install the Debian package openvswitch-common"
            ));
        }
        let dir = std::env::temp_dir().join(format!("perf-ovs-{}", cfg.tag));
        crate::cleanup::record(crate::cleanup::Resource::Path(dir.clone()));
        crate::cleanup::record(crate::cleanup::Resource::Path(
            Path::new("/var/run/dpdk").join(format!("perf-ovs-{}", cfg.tag)),
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut ovs = Ovs {
            dir,
            file_prefix: format!("perf-ovs-{}", cfg.tag),
            ovsdb: None,
            vswitchd: None,
        };
        ovs.tool("ovsdb-tool", &["create", &ovs.path("conf.db"), SCHEMA])?;
        let mut db = ovs.command("ovsdb-server");
        db.args([
            &ovs.path("conf.db"),
            &format!("--remote=punix:{}", ovs.path("db.sock")),
            &format!("--unixctl={}", ovs.path("ovsdb-server.ctl")),
            &format!("--pidfile={}", ovs.path("ovsdb-server.pid")),
            &format!("--log-file={}", ovs.path("ovsdb-server.log")),
        ]);
        ovs.ovsdb = Some(
            db.spawn()
                .inspect(crate::cleanup::record_child)
                .map_err(|e| format!("spawn ovsdb-server (package openvswitch-switch): {e}"))?,
        );
        ovs.wait_for_file("db.sock", "ovsdb-server", "ovsdb-server.log")?;
        ovs.vsctl(&["--no-wait", "init"])?;
        let extra = format!(
            "other_config:dpdk-extra=--no-pci --no-telemetry --file-prefix={}",
            ovs.file_prefix
        );
        ovs.vsctl(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:dpdk-init=true",
            &format!("other_config:dpdk-lcore-mask={:#x}", 1u64 << cfg.main_core),
            &format!("other_config:pmd-cpu-mask={:#x}", 1u64 << cfg.pmd_core),
            &format!("other_config:dpdk-socket-mem={}", cfg.socket_mem_mb),
            &extra,
        ])?;
        for kv in other_config {
            ovs.vsctl(&["--no-wait", "set", "Open_vSwitch", ".", kv])?;
        }
        // `unshare --net` execs vswitchd in a fresh network namespace: the
        // netdev bridge's internal port is a tap device, kept off the host.
        let mut vs = ovs.command("unshare");
        vs.arg("--net").arg(&bin).args([
            &format!("unix:{}", ovs.path("db.sock")),
            &format!("--unixctl={}", ovs.path("vswitchd.ctl")),
            &format!("--pidfile={}", ovs.path("ovs-vswitchd.pid")),
            &format!("--log-file={}", ovs.path("ovs-vswitchd.log")),
        ]);
        ovs.vswitchd = Some(
            vs.spawn()
                .inspect(crate::cleanup::record_child)
                .map_err(|e| format!("spawn unshare --net {}: {e}", bin.display()))?,
        );
        ovs.wait_for_file("vswitchd.ctl", "ovs-vswitchd", "ovs-vswitchd.log")?;
        // DPDK initialises before the first reconfiguration; ovs-vsctl
        // (without --no-wait) returns once vswitchd applied the change.
        ovs.vsctl(&[
            "--timeout=120",
            "add-br",
            BRIDGE,
            "--",
            "set",
            "bridge",
            BRIDGE,
            "datapath_type=netdev",
            "fail_mode=secure",
        ])?;
        let init = ovs.vsctl(&["get", "Open_vSwitch", ".", "dpdk_initialized"])?;
        if init.trim() != "true" {
            return Err(ovs.failure("DPDK did not initialise (dpdk_initialized != true)"));
        }
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
        self.vsctl(&[
            "--timeout=120",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
            "fail_mode=secure",
            &format!("other_config:hwaddr={hwaddr}"),
        ])?;
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
            .ok_or_else(|| self.failure("no ovs-vswitchd pid"))?
            .to_string();
        let mut v = vec!["-t", pid.as_str(), "-n", "--"];
        v.extend_from_slice(cmd);
        self.tool("nsenter", &v)
    }

    /// Adds `p` to `bridge` and checks that OVS opened it.
    pub fn add_port_to(&self, bridge: &str, p: &OvsPort) -> Result<(), String> {
        let mut args = vec![
            "--timeout=300".to_string(),
            "add-port".into(),
            bridge.into(),
            p.name.clone(),
            "--".into(),
            "set".into(),
            "Interface".into(),
            p.name.clone(),
            format!("type={}", p.kind),
            format!("ofport_request={}", p.ofport),
        ];
        args.extend(p.options.iter().cloned());
        self.vsctl(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let ofport = self.vsctl(&["get", "Interface", &p.name, "ofport"])?;
        let error = self.vsctl(&["get", "Interface", &p.name, "error"])?;
        if ofport.trim() != p.ofport.to_string() {
            return Err(self.failure(&format!(
                "port {} ({} {:?}) not opened: ofport {} error {}",
                p.name,
                p.kind,
                p.options,
                ofport.trim(),
                error.trim()
            )));
        }
        Ok(())
    }

    /// Adds a `net_pcap` port `name` (OpenFlow `ofport`) that replays
    /// `pcap` once, every frame of it through the flow table. OVS's PMD
    /// polls a new port before ofproto-dpif knows it and drops what it
    /// reads then (failed upcalls), so the port opens an empty pcap first;
    /// once it is on the bridge the file is replaced and a queue-size
    /// change makes OVS restart the port, which replays the file.
    pub fn add_replay_port(&self, name: &str, ofport: u32, pcap: &Path) -> Result<(), String> {
        let file = self.dir.join(format!("{name}.pcap"));
        crate::tcp_frames::write_pcap(&file, &[])
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let devargs = format!("net_pcap{ofport},rx_pcap={}", file.display());
        self.add_port(&OvsPort::dpdk(name, ofport, &devargs))?;
        std::thread::sleep(Duration::from_millis(300));
        let tmp = self.dir.join(format!("{name}.pcap.tmp"));
        fs::copy(pcap, &tmp).map_err(|e| format!("copy {}: {e}", pcap.display()))?;
        fs::rename(&tmp, &file).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
        self.vsctl(&["set", "Interface", name, "options:n_rxq_desc=1024"])?;
        Ok(())
    }

    /// The rx packet counter of OpenFlow port `ofport` (`dump-ports`).
    pub fn rx_packets(&self, ofport: u32) -> Result<u64, String> {
        let out = self.tool("ovs-ofctl", &["dump-ports", BRIDGE, &ofport.to_string()])?;
        out.split("rx pkts=")
            .nth(1)
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| self.failure(&format!("no rx counter in dump-ports output: {out}")))
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
        self.dir.join(name)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A command with the instance's private OVS directories in its env.
    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(v, &self.dir);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // forked child; it only asks the kernel to SIGKILL the child when
        // the spawning thread dies, so a killed benchmark never leaves a
        // PMD thread spinning on a shared core. It survives the exec.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    fn tool(&self, prog: &str, args: &[&str]) -> Result<String, String> {
        let mut c = self.command(prog);
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = c
            .output()
            .map_err(|e| format!("run {prog} (package openvswitch-common/-switch): {e}"))?;
        if !out.status.success() {
            return Err(self.failure(&format!(
                "{prog} {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn vsctl(&self, args: &[&str]) -> Result<String, String> {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut v = vec![db.as_str()];
        v.extend_from_slice(args);
        self.tool("ovs-vsctl", &v)
    }

    /// Runs `ovs-appctl` against this instance's ovs-vswitchd.
    pub fn appctl(&self, args: &[&str]) -> Result<String, String> {
        let t = format!("--target={}", self.path("vswitchd.ctl"));
        let mut v = vec![t.as_str()];
        v.extend_from_slice(args);
        self.tool("ovs-appctl", &v)
    }

    fn wait_for_file(&mut self, name: &str, who: &str, log: &str) -> Result<(), String> {
        let start = Instant::now();
        let p = self.dir.join(name);
        while !p.exists() {
            let exited = match who {
                "ovsdb-server" => self.ovsdb.as_mut(),
                _ => self.vswitchd.as_mut(),
            }
            .and_then(|c| c.try_wait().ok().flatten());
            if let Some(st) = exited {
                return Err(format!(
                    "{who} exited ({st}) before creating {name}; log tail:\n{}",
                    tail(&self.dir.join(log), 30)
                ));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "{who} did not create {name} within 30 s; log tail:\n{}",
                    tail(&self.dir.join(log), 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `reason` plus the tail of ovs-vswitchd's log (or ovsdb-server's,
    /// if vswitchd never started).
    fn failure(&self, reason: &str) -> String {
        let log = if self.vswitchd.is_some() {
            "ovs-vswitchd.log"
        } else {
            "ovsdb-server.log"
        };
        format!(
            "OVS: {reason}\n--- tail of {log}:\n{}",
            tail(&self.dir.join(log), 30)
        )
    }

    /// The tail of ovs-vswitchd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.dir.join("ovs-vswitchd.log"), lines)
    }

    /// Replaces the bridge's OpenFlow table with the rules in `rules`
    /// (`ovs-ofctl add-flows` syntax, one rule a line) in one bundle.
    pub fn replace_flows(&self, rules: &str) -> Result<(), String> {
        self.replace_flows_of(BRIDGE, rules)
    }

    /// [`Ovs::replace_flows`] of bridge `bridge`.
    pub fn replace_flows_of(&self, bridge: &str, rules: &str) -> Result<(), String> {
        let f = self.path("flows.txt");
        fs::write(&f, rules).map_err(|e| format!("write {f}: {e}"))?;
        self.tool("ovs-ofctl", &["del-flows", bridge])?;
        self.tool("ovs-ofctl", &["--bundle", "add-flows", bridge, &f])?;
        let n = self
            .tool("ovs-ofctl", &["dump-aggregate", bridge])?
            .split("flow_count=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let want = rules.lines().filter(|l| !l.trim().is_empty()).count();
        if n != want {
            return Err(self.failure(&format!("{want} rules added but {n} installed")));
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
        let out = self.tool("ovs-ofctl", &["dump-ports", bridge, &ofport.to_string()])?;
        parse_dump_ports_tx(&out)
            .ok_or_else(|| self.failure(&format!("no tx counter in dump-ports output: {out}")))
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
        PmdStats::parse(&out).ok_or_else(|| self.failure(&format!("no PMD thread in: {out}")))
    }

    /// ovs-vswitchd's process id (from its pidfile).
    pub fn vswitchd_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("ovs-vswitchd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether ovs-vswitchd is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.vswitchd.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

/// The `tx pkts=` counter in `ovs-ofctl dump-ports BR PORT` output.
pub fn parse_dump_ports_tx(out: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("tx pkts="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
}

fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Ovs {
    fn drop(&mut self) {
        if let Some(c) = self.vswitchd.as_mut() {
            stop(c, Duration::from_secs(10));
        }
        if let Some(c) = self.ovsdb.as_mut() {
            stop(c, Duration::from_secs(5));
        }
        let _ = fs::remove_dir_all(&self.dir);
        // OVS passes --in-memory, yet EAL still makes its runtime dir.
        let _ = fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.file_prefix));
    }
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
