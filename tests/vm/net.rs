//! Guests with virtio-net NICs on vhost-user sockets, driven from the test
//! through their serial console.
//!
//! [`NetGuest::boot`] builds a busybox initramfs (the host's Debian kernel,
//! the virtio and `virtio_net` modules), boots QEMU (TCG, guest memory in a
//! shared memfd, as vhost-user needs) with one `virtio-net-pci` device per
//! [`Nic`] on a `vhost-user` netdev, runs the test's `setup` script (`ip
//! addr add ...`) and then reads commands from the console: [`NetGuest::run`]
//! sends one and returns its exit status and output.
//!
//! By default QEMU owns each socket (`-chardev
//! socket,...,server=on,wait=off`): the switch attaches in client mode
//! (`net_vhost...,client=1`, OVS's `dpdkvhostuserclient`) and reconnects
//! when either side restarts. With [`Nic::switch_serves`] the switch owns
//! the socket (`dpdkvhostuser`) and QEMU connects (`reconnect=1`). QEMU
//! waits at start until a backend is connected on each NIC.
//!
//! ```ignore
//! let nic = Nic::new(dir.join("a.sock"), "52:54:00:00:00:01");
//! let mut a = NetGuest::boot(&dir, "a", &[nic], "ip addr add 10.0.0.1/24 dev eth0; ip link set eth0 up");
//! // ... start `vswitch run --port net_vhost0,iface=<a.sock>,client=1 ...`
//! a.wait_ready();
//! let (rc, out) = a.run("ping -c 1 10.0.0.2", Duration::from_secs(10));
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{initramfs, kernel, need, Reaper};

/// The modules a virtio-net guest loads, in order.
pub const NET_MODULES: [&str; 8] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
];

/// One virtio-net NIC of a guest on a vhost-user socket.
#[derive(Debug, Clone)]
pub struct Nic {
    /// The socket QEMU listens on.
    pub sock: PathBuf,
    /// The guest MAC address.
    pub mac: String,
    /// Queue pairs (`queues=` on the netdev, `mq=on` on the device when > 1).
    pub queues: u16,
    /// More `virtio-net-pci` properties (`,host_mtu=9000`, ...).
    pub dev_opts: String,
    /// QEMU listens on the socket (the switch's port in client mode,
    /// `client=1` / `dpdkvhostuserclient`); false: the switch serves it and
    /// QEMU connects, reconnecting every second (`dpdkvhostuser`).
    pub qemu_server: bool,
}

impl Nic {
    /// A single-queue NIC.
    pub fn new(sock: impl Into<PathBuf>, mac: &str) -> Nic {
        Nic {
            sock: sock.into(),
            mac: mac.to_owned(),
            queues: 1,
            dev_opts: String::new(),
            qemu_server: true,
        }
    }

    /// QEMU connects to a socket the switch serves.
    pub fn switch_serves(mut self) -> Nic {
        self.qemu_server = false;
        self
    }

    /// With `n` queue pairs.
    pub fn queues(mut self, n: u16) -> Nic {
        self.queues = n;
        self
    }

    /// The QEMU arguments of NIC number `i`: the server socket, the
    /// vhost-user netdev and the device. `vectors=0,romfile=`: QEMU 7.2
    /// under TCG crashes with MSI-X on vhost-user virtio-net devices.
    pub fn qemu_args(&self, i: usize) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!(
                "socket,id=nc{i},path={},{}",
                self.sock.display(),
                if self.qemu_server {
                    "server=on,wait=off"
                } else {
                    "reconnect=1"
                }
            ),
            "-netdev".into(),
            format!("vhost-user,id=nd{i},chardev=nc{i},queues={}", self.queues),
            "-device".into(),
            format!(
                "virtio-net-pci,netdev=nd{i},mac={},vectors=0,romfile={}{}",
                self.mac,
                if self.queues > 1 { ",mq=on" } else { "" },
                self.dev_opts
            ),
        ]
    }
}

/// The guest's init: modules, wait for `nics` interfaces, `setup`, then a
/// command loop on the console (`ID COMMAND` lines; each answered by
/// `@@END ID rc=N`).
pub fn net_init_script(nics: usize, setup: &str) -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {mods}; do insmod /mod/$m.ko || echo "GUEST-INSMOD-FAIL $m"; done
i=0
while [ ! -e /sys/class/net/eth{last} ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done
if [ ! -e /sys/class/net/eth{last} ]; then echo GUEST-NO-NIC; ls /sys/class/net; poweroff -f; fi
ip link set lo up
{setup}
stty -echo
echo GUEST-READY
while read -r id line; do eval "$line"; echo "@@END $id rc=$?"; done
poweroff -f
"#,
        mods = NET_MODULES.join(" "),
        last = nics.saturating_sub(1),
    )
}

/// A running guest with virtio-net NICs; killed when dropped.
pub struct NetGuest {
    /// Name (for messages).
    pub name: String,
    qemu: Reaper,
    stdin: Option<ChildStdin>,
    console: Arc<Mutex<String>>,
    next_id: u32,
    /// What [`NetGuest::boot`] was given, for [`NetGuest::restart`].
    dir: PathBuf,
    initrd: PathBuf,
    nics: Vec<Nic>,
}

impl NetGuest {
    /// Builds the initramfs (`dir/NAME.cpio`) and starts QEMU with `nics`;
    /// `setup` runs in the guest before it takes commands. Does not wait
    /// for the guest: QEMU waits for a backend on every socket first.
    pub fn boot(dir: &Path, name: &str, nics: &[Nic], setup: &str) -> NetGuest {
        let initrd = initramfs(
            &dir.join(format!("{name}.cpio")),
            &net_init_script(nics.len(), setup),
            &[],
            &NET_MODULES,
        );
        let mut g = NetGuest {
            name: name.to_owned(),
            qemu: Reaper(None),
            stdin: None,
            console: Arc::new(Mutex::new(String::new())),
            next_id: 0,
            dir: dir.to_owned(),
            initrd,
            nics: nics.to_vec(),
        };
        g.start();
        g
    }

    fn start(&mut self) {
        let qemu = need("/usr/bin/qemu-system-x86_64", "qemu-system-x86");
        let (kernel, _) = kernel();
        for n in self.nics.iter().filter(|n| n.qemu_server) {
            let _ = std::fs::remove_file(&n.sock);
        }
        let mut cmd = Command::new(qemu);
        cmd.args(["-machine", "pc,accel=tcg", "-m", "256M", "-smp", "2"])
            .args([
                "-object",
                "memory-backend-memfd,id=mem,size=256M,share=on",
                "-numa",
                "node,memdev=mem",
            ]);
        for (i, n) in self.nics.iter().enumerate() {
            cmd.args(n.qemu_args(i));
        }
        let mut child = cmd
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            // no_timer_check: a TCG guest on a busy host can miss the
            // kernel's IO-APIC timer check (and panic).
            .args([
                "-append",
                "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check",
            ])
            .args([
                "-display",
                "none",
                "-serial",
                "stdio",
                "-monitor",
                "none",
                "-no-reboot",
            ])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64 (Debian package qemu-system-x86)");
        self.console = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
        ] {
            let out = Arc::clone(&self.console);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        self.stdin = child.stdin.take();
        self.qemu = Reaper(Some(child));
        // QEMU creates its sockets before it waits for the backends.
        let t = Instant::now();
        while !self.nics.iter().all(|n| !n.qemu_server || n.sock.exists()) {
            if let Ok(Some(st)) = self.qemu.0.as_mut().unwrap().try_wait() {
                panic!("{}: QEMU exited ({st}): {}", self.name, self.console());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{}: QEMU created no socket: {}",
                self.name,
                self.console()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills QEMU and starts it again on the same sockets (the guest boots
    /// afresh; call [`NetGuest::wait_ready`]).
    pub fn restart(&mut self) {
        self.stdin = None;
        self.qemu = Reaper(None);
        self.start();
    }

    /// The console so far (and QEMU's stderr).
    pub fn console(&self) -> String {
        self.console.lock().unwrap().clone()
    }

    /// Waits until the guest has run its setup and takes commands.
    pub fn wait_ready(&mut self, timeout: Duration) {
        self.wait_for("GUEST-READY", timeout);
        for bad in ["GUEST-INSMOD-FAIL", "GUEST-NO-NIC"] {
            assert!(
                !self.console().contains(bad),
                "{}: {bad}: {}",
                self.name,
                self.console()
            );
        }
    }

    /// Waits until the console shows `marker`; panics with the console
    /// after `timeout` or when QEMU exits.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) {
        let t = Instant::now();
        while !self.console().contains(marker) {
            if let Some(Ok(Some(st))) = self.qemu.0.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "{}: QEMU exited ({st}) before {marker:?}: {}",
                    self.name,
                    self.console()
                );
            }
            assert!(
                t.elapsed() < timeout,
                "{}: no {marker:?} within {timeout:?}: {}",
                self.name,
                self.console()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `cmd` (one line of busybox sh) in the guest; returns its exit
    /// status and what it printed. Panics after `timeout`.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> (i32, String) {
        assert!(!cmd.contains('\n'), "one line: {cmd:?}");
        self.next_id += 1;
        let id = self.next_id;
        let from = self.console().len();
        let stdin = self.stdin.as_mut().expect("guest running");
        stdin
            .write_all(format!("{id} {cmd}\n").as_bytes())
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: console write: {e}", self.name));
        let end = format!("@@END {id} rc=");
        let t = Instant::now();
        loop {
            let c = self.console();
            if let Some(at) = c[from..].find(&end) {
                let rest = &c[from + at + end.len()..];
                if let Some(nl) = rest.find(['\r', '\n']) {
                    let rc = rest[..nl].trim().parse().unwrap_or(-1);
                    return (rc, c[from..from + at].to_string());
                }
            }
            if let Some(Ok(Some(st))) = self.qemu.0.as_mut().map(|c| c.try_wait()) {
                panic!("{}: QEMU exited ({st}) during {cmd:?}: {c}", self.name);
            }
            assert!(
                t.elapsed() < timeout,
                "{}: {cmd:?} did not finish within {timeout:?}: {}",
                self.name,
                &c[from..]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`NetGuest::run`] that must succeed; returns the output.
    pub fn must(&mut self, cmd: &str, timeout: Duration) -> String {
        let (rc, out) = self.run(cmd, timeout);
        assert_eq!(rc, 0, "{}: {cmd:?} failed: {out}", self.name);
        out
    }
}

/// A `vswitch run` the test starts, with a control socket; SIGTERM on drop.
pub struct Switch {
    /// The `vswitch run` arguments (for [`Switch::restart`]).
    pub args: Vec<String>,
    /// Its control socket.
    pub ctl: PathBuf,
    /// Its stderr and stdout.
    pub log: PathBuf,
    child: Reaper,
}

impl Switch {
    /// Starts `vswitch run ARGS --control DIR/ctl.sock` (output in
    /// DIR/vswitch.log) and waits until its control socket answers.
    pub fn start(dir: &Path, args: &[String]) -> Switch {
        let mut s = Switch {
            args: args.to_vec(),
            ctl: dir.join("ctl.sock"),
            log: dir.join("vswitch.log"),
            child: Reaper(None),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .arg("run")
            .args(&self.args)
            .arg("--control")
            .arg(&self.ctl)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start vswitch run");
        self.child = Reaper(Some(child));
        let t = Instant::now();
        while !self.ctl("stats", &[]).0 {
            if let Ok(Some(st)) = self.child.0.as_mut().unwrap().try_wait() {
                panic!("vswitch run exited ({st}): {}", self.log_text());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "vswitch run did not answer on its control socket: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The switch's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `vswitch CMD ARGS --socket CTL`: (success, stdout, stderr).
    pub fn ctl(&self, cmd: &str, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .arg(cmd)
            .args(args)
            .arg("--socket")
            .arg(&self.ctl)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// [`Switch::ctl`] that must succeed; returns stdout.
    pub fn must(&self, cmd: &str, args: &[&str]) -> String {
        let (ok, out, err) = self.ctl(cmd, args);
        assert!(ok, "vswitch {cmd} {args:?}: {err}");
        out
    }

    /// `ports show --json`: the port numbered `no`.
    pub fn port(&self, no: u64) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.must("ports", &["show", "--json"])).unwrap();
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == no)
            .cloned()
            .unwrap_or_else(|| panic!("no port {no}: {v}"))
    }

    /// Waits until port `no`'s link is `up` (or not).
    pub fn wait_link(&self, no: u64, up: bool, timeout: Duration) {
        let t = Instant::now();
        while self.port(no)["link_up"] != up {
            assert!(
                t.elapsed() < timeout,
                "port {no}: link not {} within {timeout:?}: {}",
                if up { "up" } else { "down" },
                self.port(no)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, wait for the exit (which must be clean).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.0.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let st = c.wait().unwrap();
            assert!(st.success(), "vswitch run exited {st}: {}", self.log_text());
        }
    }

    /// Starts a stopped switch again with the same arguments.
    /// How many rings the switch's queues took over from the vhost library
    /// (its log's "on own ring code" lines, one per ring and device start;
    /// `dpdk::vring`). 0 with `VSWITCH_VHOST_RING=lib`.
    pub fn own_rings(&self) -> usize {
        self.log_text().matches("on own ring code").count()
    }

    pub fn start_again(&mut self) {
        assert!(self.child.0.is_none(), "the switch is running");
        self.spawn();
    }

    /// [`Switch::stop`], then [`Switch::start_again`].
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(c) = self.child.0.as_mut() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The reaper kills what is left. A failing test gets the switch's
        // side of the story (its directory goes with the test).
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "--- vswitch log (last {} lines) ---\n{}",
                tail.len(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Whether the switch (which inherits this environment) serves the
/// guests' split rings with its own ring code: yes by default, no with
/// `VSWITCH_VHOST_RING=lib` (the vhost library's bursts).
pub fn own_rings_expected() -> bool {
    std::env::var("VSWITCH_VHOST_RING").as_deref() != Ok("lib")
}

/// EAL arguments for a test switch: `lcores` (`-l ...` / `--lcores ...`),
/// no hugepages, a unique file prefix.
pub fn test_eal(lcores: &str, tag: &str) -> String {
    format!(
        "{lcores} --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vmnet-{tag}-{}",
        std::process::id()
    )
}
