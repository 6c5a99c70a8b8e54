//! Test harness: a private tgtd (Debian package `tgt`) on loopback with its own control
//! port, iSCSI port and file-backed LUN, torn down by Drop even when a test fails.

#![allow(dead_code)]

use iscsi_initiator::chap::Chap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INITIATOR: &str = "iqn.2026-01.dev.vswitch:test-initiator";

fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "`{tool}` not found: install the Debian package `{package}` (apt-get install {package})"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tgtd's management channel number must stay below 32768; it names a unix socket
/// (/var/run/tgtd/socket.N), so pick one from the pid and a counter.
fn control_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 10;
        let port = 10_000 + (std::process::id() % 2000) as u16 * 10 + n;
        if !Path::new(&format!("/var/run/tgtd/socket.{port}")).exists() {
            return port;
        }
    }
}

/// A running tgtd with one target.
pub struct Tgtd {
    child: Option<Child>,
    pub control_port: u16,
    pub port: u16,
    pub iqn: String,
    pub dir: PathBuf,
    pub backing: PathBuf,
    pub size: u64,
    null_lun: bool,
    chap: Option<Chap>,
}

impl Tgtd {
    /// tgtd with a `size`-byte file-backed LUN 1.
    pub fn start(name: &str, size: u64) -> Tgtd {
        Tgtd::start_with(name, size, false, None)
    }

    pub fn start_with(name: &str, size: u64, null_lun: bool, chap: Option<Chap>) -> Tgtd {
        need("tgtd", "tgt");
        need("tgtadm", "tgt");
        let dir = std::env::temp_dir().join(format!("vswitch-iscsi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let backing = dir.join("lun1.img");
        let f = std::fs::File::create(&backing).unwrap();
        f.set_len(size).unwrap();
        let mut t = Tgtd {
            child: None,
            control_port: 0,
            port: 0,
            iqn: format!("iqn.2026-01.dev.vswitch:{name}"),
            dir,
            backing,
            size,
            null_lun,
            chap,
        };
        t.launch();
        t
    }

    pub fn portal(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        for _attempt in 0..5 {
            if self.port == 0 {
                self.port = free_port();
                self.control_port = control_port();
            }
            let log = std::fs::File::create(self.dir.join("tgtd.log")).unwrap();
            let child = Command::new("tgtd")
                .args(["-f", "-C", &self.control_port.to_string(), "--iscsi"])
                .arg(format!("portal=127.0.0.1:{}", self.port))
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn tgtd (Debian package `tgt`)");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut up = false;
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(self.portal()).is_ok()
                    && self.tgtadm_ok(&["--mode", "target", "--op", "show"])
                {
                    up = true;
                    break;
                }
                if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if up {
                self.configure();
                return;
            }
            self.kill();
            // Port taken meanwhile: pick new ones.
            self.port = 0;
        }
        panic!(
            "tgtd did not start; log: {}",
            std::fs::read_to_string(self.dir.join("tgtd.log")).unwrap_or_default()
        );
    }

    fn tgtadm_ok(&self, args: &[&str]) -> bool {
        Command::new("tgtadm")
            .args(["-C", &self.control_port.to_string(), "--lld", "iscsi"])
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    pub fn tgtadm(&self, args: &[&str]) {
        let o = Command::new("tgtadm")
            .args(["-C", &self.control_port.to_string(), "--lld", "iscsi"])
            .args(args)
            .output()
            .expect("run tgtadm");
        assert!(
            o.status.success(),
            "tgtadm {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn configure(&self) {
        self.tgtadm(&[
            "--mode",
            "target",
            "--op",
            "new",
            "--tid",
            "1",
            "--targetname",
            &self.iqn,
        ]);
        let path = self.backing.to_str().unwrap().to_owned();
        if self.null_lun {
            let size = format!("{}", self.size >> 20);
            let _ = size;
            self.tgtadm(&[
                "--mode",
                "logicalunit",
                "--op",
                "new",
                "--tid",
                "1",
                "--lun",
                "1",
                "--bstype",
                "null",
                "-b",
                "/dev/null",
            ]);
        } else {
            self.tgtadm(&[
                "--mode",
                "logicalunit",
                "--op",
                "new",
                "--tid",
                "1",
                "--lun",
                "1",
                "-b",
                &path,
            ]);
        }
        self.tgtadm(&[
            "--mode", "target", "--op", "bind", "--tid", "1", "-I", "ALL",
        ]);
        if let Some(Chap {
            user,
            secret,
            mutual,
        }) = &self.chap
        {
            self.tgtadm(&[
                "--mode",
                "account",
                "--op",
                "new",
                "--user",
                user,
                "--password",
                secret,
            ]);
            self.tgtadm(&[
                "--mode", "account", "--op", "bind", "--tid", "1", "--user", user,
            ]);
            if let Some((mu, ms)) = mutual {
                self.tgtadm(&[
                    "--mode",
                    "account",
                    "--op",
                    "new",
                    "--user",
                    mu,
                    "--password",
                    ms,
                ]);
                self.tgtadm(&[
                    "--mode",
                    "account",
                    "--op",
                    "bind",
                    "--tid",
                    "1",
                    "--user",
                    mu,
                    "--outgoing",
                ]);
            }
        }
    }

    /// Sets a target-wide iSCSI parameter (e.g. HeaderDigest CRC32C) before login.
    pub fn set_param(&self, name: &str, value: &str) {
        self.tgtadm(&[
            "--mode", "target", "--op", "update", "--tid", "1", "--name", name, "--value", value,
        ]);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills tgtd (SIGKILL) and starts it again on the same ports with the same LUN.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Kills tgtd; `resume` starts it again.
    pub fn stop(&mut self) {
        self.kill();
    }

    pub fn resume(&mut self) {
        self.launch();
    }

    pub fn backing_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.backing).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut v = vec![0u8; len];
        f.read_exact(&mut v).unwrap();
        v
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// xorshift64*: reproducible random data and offsets without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}
