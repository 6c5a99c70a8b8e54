//! [`Sandbox`]: one run directory with ovsdb-server and a switch daemon,
//! the tools run against them, and the teardown.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pcap_file::pcap::PcapWriter;

use crate::{command, stop, tail, Port, SCHEMA};

/// The network namespace a daemon runs in.
#[derive(Clone, Copy, Debug)]
pub enum Net<'a> {
    /// A fresh one of its own (`unshare --net`): a netdev bridge's internal
    /// port is a tap device, kept off the host.
    Fresh,
    /// The caller's own.
    Host,
    /// A named one (`ip netns exec NAME`).
    Named(&'a str),
}

/// A run directory with ovsdb-server and a switch daemon (`ovs-vswitchd`,
/// or any daemon serving OVSDB's `Open_vSwitch` database, started with
/// [`Sandbox::spawn_daemon`]), both in the background; both stopped and
/// every file removed on drop, also when start-up failed half-way.
pub struct Sandbox {
    /// The run directory: database, sockets, pidfiles, logs.
    pub dir: PathBuf,
    /// The EAL `--file-prefix` of a DPDK daemon (`/var/run/dpdk/PREFIX` is
    /// removed on drop).
    pub prefix: String,
    /// Names the switch in errors (`OVS`, `OVS-DPDK`, `vswitch`).
    pub label: String,
    /// The daemon's log file in [`Sandbox::dir`], whose tail errors carry.
    pub daemon_log: &'static str,
    /// Called with every daemon just spawned (a benchmark records it for
    /// its clean-up on signals).
    pub on_spawn: fn(&Child),
    ovsdb: Option<Child>,
    daemon: Option<Child>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(c) = self.daemon.as_mut() {
            stop(c, Duration::from_secs(10));
        }
        if let Some(c) = self.ovsdb.as_mut() {
            stop(c, Duration::from_secs(5));
        }
        let _ = fs::remove_dir_all(&self.dir);
        // OVS passes --in-memory, yet EAL still makes its runtime dir.
        let _ = fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

impl Sandbox {
    /// The run directory `dir`, created empty (whatever a killed earlier
    /// run left there is removed first); no daemon yet. `prefix`: the EAL
    /// file prefix; `label`: the switch's name in errors.
    pub fn new(dir: PathBuf, prefix: &str, label: &str) -> Result<Sandbox, String> {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(Sandbox {
            dir,
            prefix: prefix.into(),
            label: label.into(),
            daemon_log: "ovs-vswitchd.log",
            on_spawn: |_| {},
            ovsdb: None,
            daemon: None,
        })
    }

    /// A real Open vSwitch on its dummy datapath (`ovs-vswitchd
    /// --enable-dummy=override --disable-system`: the ofproto of OVS-DPDK,
    /// no DPDK, nothing on the host's network) in `dir`, with the netdev
    /// bridge `bridge` (`settings`, e.g. `protocols=OpenFlow13`) serving
    /// OpenFlow on `dir/BRIDGE.mgmt`.
    pub fn start_dummy(dir: PathBuf, bridge: &str, settings: &[&str]) -> Result<Sandbox, String> {
        let prefix = dir.file_name().unwrap_or_default().to_string_lossy();
        let mut sb = Sandbox::new(dir.clone(), &prefix, "OVS")?;
        sb.start_ovsdb()?;
        sb.start_vswitchd(Net::Host, OsStr::new("ovs-vswitchd"), true)?;
        sb.add_bridge(bridge, settings)?;
        sb.wait_for_file(&format!("{bridge}.mgmt"), 30)?;
        Ok(sb)
    }

    /// `name` in the run directory, as a string (for tool arguments).
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A [`command`] with the sandbox's private OVS directories in its
    /// env; stderr is null.
    pub fn command(&self, prog: impl AsRef<OsStr>) -> Command {
        let mut c = command(prog);
        for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(v, &self.dir);
        }
        c.stderr(Stdio::null());
        c
    }

    /// [`Sandbox::command`] running `prog` in the network namespace `net`.
    pub fn daemon_command(&self, net: Net, prog: &OsStr) -> Command {
        match net {
            Net::Fresh => {
                let mut d = self.command("unshare");
                d.arg("--net").arg(prog);
                d
            }
            Net::Named(ns) => {
                let mut d = self.command("ip");
                d.args(["netns", "exec", ns]).arg(prog);
                d
            }
            Net::Host => self.command(prog),
        }
    }

    /// `what` plus the tail of the daemon's log (or ovsdb-server's, if no
    /// daemon was started).
    pub fn failure(&self, what: &str) -> String {
        let log = if self.daemon.is_some() {
            self.daemon_log
        } else {
            "ovsdb-server.log"
        };
        format!(
            "{}: {what}\n--- tail of {log}:\n{}",
            self.label,
            tail(&self.dir.join(log), 40)
        )
    }

    /// Runs `prog` with the sandbox's env; what it did, failed or not.
    pub fn tool_output(&self, prog: &str, args: &[&str]) -> Result<Output, String> {
        self.command(prog)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("run {prog} (package openvswitch-common/-switch): {e}"))
    }

    /// Runs `prog` with the sandbox's env; its stdout, or an error with its
    /// stderr and the daemon's log tail.
    pub fn tool(&self, prog: &str, args: &[&str]) -> Result<String, String> {
        let out = self.tool_output(prog, args)?;
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

    /// `ovs-vsctl` on the sandbox's database (60 s timeout unless `args`
    /// give another).
    pub fn vsctl(&self, args: &[&str]) -> Result<String, String> {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut v = vec![db.as_str(), "--timeout=60"];
        v.extend_from_slice(args);
        self.tool("ovs-vsctl", &v)
    }

    /// [`Sandbox::vsctl`] whose failure the caller judges.
    pub fn vsctl_output(&self, args: &[&str]) -> Result<Output, String> {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut v = vec![db.as_str(), "--timeout=60"];
        v.extend_from_slice(args);
        self.tool_output("ovs-vsctl", &v)
    }

    /// `ovs-appctl` to the switch daemon's unixctl socket.
    pub fn appctl(&self, args: &[&str]) -> Result<String, String> {
        let target = format!("--target={}", self.path("vswitchd.ctl"));
        let mut v = vec![target.as_str()];
        v.extend_from_slice(args);
        self.tool("ovs-appctl", &v)
    }

    /// Waits (at most `secs`) until `name` appears in the run directory;
    /// an error if a daemon exits first.
    pub fn wait_for_file(&mut self, name: &str, secs: u64) -> Result<(), String> {
        let start = Instant::now();
        let p = self.dir.join(name);
        while !p.exists() {
            let mut exited = None;
            for c in [self.ovsdb.as_mut(), self.daemon.as_mut()]
                .into_iter()
                .flatten()
            {
                if let Ok(Some(st)) = c.try_wait() {
                    exited = Some(st);
                }
            }
            if let Some(st) = exited {
                return Err(self.failure(&format!("a daemon exited ({st}) before {name} appeared")));
            }
            if start.elapsed() > Duration::from_secs(secs) {
                return Err(self.failure(&format!("{name} did not appear within {secs} s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// A fresh database from OVS's schema, ovsdb-server on it, `init`.
    pub fn start_ovsdb(&mut self) -> Result<(), String> {
        if !Path::new(SCHEMA).exists() {
            return Err(format!(
                "{SCHEMA} not found: install the Debian package openvswitch-common"
            ));
        }
        self.tool("ovsdb-tool", &["create", &self.path("conf.db"), SCHEMA])?;
        self.spawn_ovsdb()?;
        self.vsctl(&["--no-wait", "init"]).map(|_| ())
    }

    /// ovsdb-server on the sandbox's database (again, after
    /// [`Sandbox::kill_ovsdb`]).
    pub fn spawn_ovsdb(&mut self) -> Result<(), String> {
        let mut db = self.command("ovsdb-server");
        db.args([
            &self.path("conf.db"),
            &format!("--remote=punix:{}", self.path("db.sock")),
            &format!("--unixctl={}", self.path("ovsdb-server.ctl")),
            &format!("--log-file={}", self.path("ovsdb-server.log")),
        ]);
        let c = db
            .spawn()
            .map_err(|e| format!("spawn ovsdb-server (package openvswitch-switch): {e}"))?;
        (self.on_spawn)(&c);
        self.ovsdb = Some(c);
        self.wait_for_file("db.sock", 20)
    }

    /// Kills ovsdb-server (SIGKILL: a crash) and removes its socket.
    pub fn kill_ovsdb(&mut self) {
        if let Some(mut c) = self.ovsdb.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_file(self.dir.join("db.sock"));
    }

    /// OVS-DPDK's EAL settings, before its vswitchd starts: DPDK on the
    /// cores of `lcore_mask`, the PMD threads on `pmd_mask`,
    /// `socket_mem_mb` MiB of hugepages, no PCI, no telemetry, the
    /// sandbox's file prefix; then the `other_config:KEY=VALUE` settings
    /// `more`.
    pub fn dpdk_init(
        &self,
        lcore_mask: u64,
        pmd_mask: u64,
        socket_mem_mb: u32,
        more: &[&str],
    ) -> Result<(), String> {
        let lcores = format!("other_config:dpdk-lcore-mask={lcore_mask:#x}");
        let pmds = format!("other_config:pmd-cpu-mask={pmd_mask:#x}");
        let mem = format!("other_config:dpdk-socket-mem={socket_mem_mb}");
        let extra = format!(
            "other_config:dpdk-extra=--no-pci --no-telemetry --file-prefix={}",
            self.prefix
        );
        let mut set = vec![
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:dpdk-init=true",
            &lcores,
            &pmds,
            &mem,
            &extra,
        ];
        set.extend_from_slice(more);
        self.vsctl(&set).map(|_| ())
    }

    /// `ovs-vswitchd` (`bin`: Debian's DPDK build, or the plain one with
    /// `dummy`: `--enable-dummy=override --disable-system`) on the
    /// sandbox's database in network namespace `net`; returns once its
    /// unixctl socket exists.
    pub fn start_vswitchd(&mut self, net: Net, bin: &OsStr, dummy: bool) -> Result<(), String> {
        let mut d = self.daemon_command(net, bin);
        d.arg(format!("unix:{}", self.path("db.sock")));
        if dummy {
            d.args(["--enable-dummy=override", "--disable-system"]);
        }
        d.args([
            &format!("--unixctl={}", self.path("vswitchd.ctl")),
            &format!("--pidfile={}", self.path("ovs-vswitchd.pid")),
            &format!("--log-file={}", self.path("ovs-vswitchd.log")),
        ]);
        self.spawn_daemon(d, "vswitchd.ctl")
    }

    /// Spawns the switch daemon `cmd` and waits (30 s at most) until it
    /// made `ready` in the run directory.
    pub fn spawn_daemon(&mut self, mut cmd: Command, ready: &str) -> Result<(), String> {
        let what = format!(
            "{} {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args().next().unwrap_or_default().to_string_lossy()
        );
        let c = cmd.spawn().map_err(|e| format!("spawn {what}: {e}"))?;
        (self.on_spawn)(&c);
        self.daemon = Some(c);
        self.wait_for_file(ready, 30)
    }

    /// Whether a switch daemon was started.
    pub fn has_daemon(&self) -> bool {
        self.daemon.is_some()
    }

    /// Whether the switch daemon is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.daemon.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// ovs-vswitchd's process id (from its pidfile).
    pub fn vswitchd_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("ovs-vswitchd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// OVS-DPDK: an error unless DPDK initialised (`dpdk_initialized`).
    pub fn check_dpdk(&self) -> Result<(), String> {
        let init = self.vsctl(&["get", "Open_vSwitch", ".", "dpdk_initialized"])?;
        if init.trim() != "true" {
            return Err(self.failure("DPDK did not initialise (dpdk_initialized != true)"));
        }
        Ok(())
    }

    /// Adds the netdev bridge `name` with the Bridge `settings`
    /// (`fail_mode=secure`, `other_config:hwaddr=...`); `ovs-vsctl`
    /// returns once the daemon applied it (OVS-DPDK initialises DPDK
    /// before its first reconfiguration: up to 120 s).
    pub fn add_bridge(&self, name: &str, settings: &[&str]) -> Result<(), String> {
        let mut args = vec![
            "--timeout=120",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ];
        args.extend_from_slice(settings);
        self.vsctl(&args).map(|_| ())
    }

    /// Adds `p` to `bridge`; an error (with the `Interface`'s `error`
    /// column) unless it got its OpenFlow port number.
    pub fn add_port(&self, bridge: &str, p: &Port) -> Result<(), String> {
        let kind = format!("type={}", p.kind);
        let req = format!("ofport_request={}", p.ofport);
        let mut args = vec![
            "--timeout=300",
            "add-port",
            bridge,
            &p.name,
            "--",
            "set",
            "Interface",
            &p.name,
            &kind,
            &req,
        ];
        args.extend(p.options.iter().map(String::as_str));
        self.vsctl(&args)?;
        let ofport = self.vsctl(&["get", "Interface", &p.name, "ofport"])?;
        if ofport.trim() != p.ofport.to_string() {
            let error = self.vsctl(&["get", "Interface", &p.name, "error"])?;
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

    /// Adds a `net_pcap` port `name` (OpenFlow `ofport`, capturing what it
    /// sends to `tx_pcap` if given) to `bridge` that replays `input` once,
    /// every frame of it through the flow table. OVS's PMD polls a new port
    /// before ofproto-dpif knows it and drops what it reads then (failed
    /// upcalls: coverage `datapath_drop_upcall_error`, a race of OVS, not a
    /// flow result), so the port opens an empty pcap first; once it is on
    /// the bridge the file is replaced and a queue-size change makes OVS
    /// restart the port (rte_eth_dev_stop/start), which replays the file.
    pub fn add_replay_port(
        &self,
        bridge: &str,
        name: &str,
        ofport: u32,
        input: &Path,
        tx_pcap: Option<&Path>,
    ) -> Result<(), String> {
        let file = self.dir.join(format!("{name}.pcap"));
        File::create(&file)
            .map_err(|e| e.to_string())
            .and_then(|f| PcapWriter::new(f).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let mut devargs = format!("net_pcap{ofport},rx_pcap={}", file.display());
        if let Some(tx) = tx_pcap {
            devargs += &format!(",tx_pcap={}", tx.display());
        }
        self.add_port(bridge, &Port::dpdk(name, ofport, &devargs))?;
        // OVS may restart a new port once more right after adding it; let
        // that happen on the empty file.
        std::thread::sleep(Duration::from_millis(300));
        let tmp = self.dir.join(format!("{name}.pcap.tmp"));
        fs::copy(input, &tmp).map_err(|e| format!("copy {}: {e}", input.display()))?;
        fs::rename(&tmp, &file).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
        self.vsctl(&["set", "Interface", name, "options:n_rxq_desc=1024"])
            .map(|_| ())
    }

    /// Where a `dpdkvhostuser` port named `name` has its socket (the run
    /// directory).
    pub fn vhost_socket(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
