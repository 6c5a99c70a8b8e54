//! Test support: a real ovsdb-server in a temp dir, ovs-vsctl against it, and
//! a recording mock Datapath.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ovsdb::{BridgeConfig, Datapath, InterfaceConfig, InterfaceState};

pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// `add-br NAME -- set bridge NAME datapath_type=netdev`: a bridge of the
/// datapath type the reconciler serves.
pub fn netdev_bridge(name: &str) -> Vec<String> {
    let args = ["add-br", name, "--", "set", "bridge", name];
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push("datapath_type=netdev".into());
    v
}

/// `add-port BR NAME -- set Interface NAME type=dpdk
/// options:dpdk-devargs=DEVARGS`.
pub fn dpdk_port(br: &str, name: &str, devargs: &str) -> Vec<String> {
    let args = ["add-port", br, name, "--", "set", "Interface", name];
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push("type=dpdk".into());
    v.push(format!("options:dpdk-devargs={devargs}"));
    v
}

/// An ovsdb-server child process over its own database in its own directory.
pub struct Server {
    pub dir: PathBuf,
    child: Option<Child>,
    /// Also listen on ptcp:PORT:127.0.0.1.
    pub tcp_port: Option<u16>,
}

impl Server {
    /// Creates DIR/conf.db from the installed schema (the server is not started).
    pub fn create(name: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("ovsdb-tool")
            .arg("create")
            .arg(dir.join("conf.db"))
            .arg(SCHEMA)
            .status()
            .expect("ovsdb-tool (openvswitch-common) is installed");
        assert!(st.success());
        Server {
            dir,
            child: None,
            tcp_port: None,
        }
    }

    /// Creates the database and starts the server.
    pub fn start_new(name: &str) -> Server {
        let mut s = Server::create(name);
        s.start();
        s
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// `unix:DIR/db.sock`.
    pub fn target(&self) -> String {
        format!("unix:{}", self.sock().display())
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let _ = std::fs::remove_file(self.sock());
        let d = |f: &str| self.dir.join(f).display().to_string();
        let child = Command::new("ovsdb-server")
            .arg(d("conf.db"))
            .arg(format!("--remote=punix:{}", d("db.sock")))
            .arg(format!("--unixctl={}", d("ovsdb-server.ctl")))
            .arg(format!("--pidfile={}", d("ovsdb-server.pid")))
            .arg(format!("--log-file={}", d("ovsdb-server.log")))
            .args(
                self.tcp_port
                    .map(|p| format!("--remote=ptcp:{p}:127.0.0.1")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ovsdb-server is installed");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(self.sock()).is_err()
            || self
                .tcp_port
                .is_some_and(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_err())
        {
            assert!(Instant::now() < end, "ovsdb-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `ovs-vsctl --db=unix:DIR/db.sock --timeout=10 ARGS` (waiting for
    /// cur_cfg, i.e. for the reconciler, as operators run it).
    pub fn vsctl<S: AsRef<str>>(&self, args: &[S]) -> Output {
        Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.target()))
            .arg("--timeout=10")
            .args(args.iter().map(AsRef::as_ref))
            .output()
            .expect("ovs-vsctl is installed")
    }

    /// [`Server::vsctl`] that must succeed; returns stdout trimmed.
    pub fn ok<S: AsRef<str>>(&self, args: &[S]) -> String {
        let o = self.vsctl(args);
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        assert!(
            o.status.success(),
            "ovs-vsctl {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `f` every 20 ms until it is true; false after `timeout`.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Datapath that records every call. Interfaces named `bad*` fail.
#[derive(Default)]
pub struct Mock {
    pub events: Mutex<Vec<String>>,
    next_port: Mutex<u16>,
    /// rx_packets reported for every interface.
    pub rx_packets: AtomicU64,
    /// link_state reported for every interface is down when set.
    pub link_down: AtomicBool,
}

impl Mock {
    fn log(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Events starting with `prefix`.
    pub fn matching(&self, prefix: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }
}

impl Datapath for Mock {
    fn bridge_set(&self, br: &BridgeConfig) -> Result<(), String> {
        self.log(format!(
            "bridge_set {} fail_mode={:?} controllers={:?}",
            br.name, br.fail_mode, br.controllers
        ));
        if br.name.starts_with("badbr") {
            return Err("out of hugepages".into());
        }
        Ok(())
    }

    fn bridge_del(&self, name: &str) {
        self.log(format!("bridge_del {name}"));
    }

    fn iface_add(&self, bridge: &str, iface: &InterfaceConfig) -> Result<u16, String> {
        let opts: Vec<String> = iface
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let desc = format!(
            "{bridge} {} type={} options={} mtu_request={:?}",
            iface.name,
            iface.kind,
            opts.join(","),
            iface.mtu_request
        );
        if iface.name.starts_with("bad") {
            self.log(format!("iface_add_failed {desc}"));
            return Err(format!("could not open {}: no such device", iface.name));
        }
        let ofport = if iface.kind == "internal" && iface.name == bridge {
            65534
        } else if let Some(r) = iface.ofport_request {
            r
        } else {
            let mut n = self.next_port.lock().unwrap();
            *n += 1;
            *n
        };
        self.log(format!("iface_add {desc} ofport={ofport}"));
        Ok(ofport)
    }

    fn iface_del(&self, bridge: &str, name: &str, ofport: u16) -> Result<(), String> {
        self.log(format!("iface_del {bridge} {name} ofport={ofport}"));
        Ok(())
    }

    fn iface_state(&self, _bridge: &str, ofport: u16) -> Option<InterfaceState> {
        let mut statistics = BTreeMap::new();
        statistics.insert(
            "rx_packets".to_string(),
            self.rx_packets.load(Ordering::Relaxed),
        );
        statistics.insert("tx_packets".to_string(), 0);
        let mut status = BTreeMap::new();
        status.insert("driver_name".to_string(), "mock".to_string());
        Some(InterfaceState {
            admin_up: true,
            link_up: !self.link_down.load(Ordering::Relaxed),
            mtu: Some(1500),
            mac: Some([0x02, 0, 0, 0, (ofport >> 8) as u8, ofport as u8]),
            statistics,
            status,
        })
    }

    fn system_config(&self, oc: &BTreeMap<String, String>) -> Vec<String> {
        if !oc.is_empty() {
            let kv: Vec<String> = oc.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.log(format!("system_config {}", kv.join(",")));
        }
        // Pretend DPDK's EAL arguments need a restart.
        oc.keys()
            .filter(|k| k.starts_with("dpdk-"))
            .cloned()
            .collect()
    }

    fn datapath_id(&self, bridge: &str) -> Option<u64> {
        (bridge == "br0").then_some(0x0000_0200_0000_00aa)
    }

    fn iface_types(&self) -> Vec<String> {
        vec![
            "dpdk".into(),
            "dpdkvhostuserclient".into(),
            "internal".into(),
        ]
    }
}
