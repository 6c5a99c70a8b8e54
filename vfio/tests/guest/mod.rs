//! Shared harness for the real-kernel VFIO tests: builds a static guest
//! program from `examples/`, packs it with busybox-static and kernel modules
//! (resolved through modules.dep) into an initramfs, boots Debian's kernel
//! under QEMU (TCG, q35, emulated VT-d) and collects the serial console.
//!
//! Needs: qemu-system-x86 (qemu-system-x86_64), linux-image-amd64 (a kernel
//! in /boot with its modules), busybox-static and cpio.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(420);

pub fn need(ok: bool, what: &str, package: &str) {
    assert!(
        ok,
        "{what} is missing: install the Debian package `{package}` (apt-get install {package})"
    );
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// Newest kernel in /boot that has its modules installed.
pub fn kernel() -> Option<(PathBuf, PathBuf)> {
    let mut best: Option<(PathBuf, PathBuf)> = None;
    for e in std::fs::read_dir("/boot").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(ver) = name.strip_prefix("vmlinuz-") else {
            continue;
        };
        let mods = Path::new("/lib/modules").join(ver);
        if mods.join("modules.dep").exists() && best.as_ref().is_none_or(|(b, _)| e.path() > *b) {
            best = Some((e.path(), mods));
        }
    }
    best
}

/// Modules to load, dependencies first, resolved through modules.dep.
pub fn module_order(mods: &Path, wanted: &[&str]) -> Vec<String> {
    let dep = std::fs::read_to_string(mods.join("modules.dep")).expect("read modules.dep");
    let deps: Vec<(String, Vec<String>)> = dep
        .lines()
        .filter_map(|l| {
            let (m, d) = l.split_once(':')?;
            Some((
                m.to_string(),
                d.split_whitespace().map(str::to_string).collect(),
            ))
        })
        .collect();
    let find = |name: &str| {
        deps.iter()
            .find(|(m, _)| {
                let base = Path::new(m)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                let stem = base.split(".ko").next().unwrap().replace('-', "_");
                stem == name.replace('-', "_")
            })
            .unwrap_or_else(|| panic!("module {name} not in {}/modules.dep", mods.display()))
    };
    let mut order: Vec<String> = Vec::new();
    for w in wanted {
        let (m, d) = find(w);
        // modules.dep lists a module's dependencies with the deepest last.
        for x in d.iter().rev().chain(std::iter::once(m)) {
            if !order.contains(x) {
                order.push(x.clone());
            }
        }
    }
    order
}

/// Builds the guest program statically linked (crt-static works for a
/// std-only program on the gnu target).
pub fn build_guest(example: &str) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vfio-guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--quiet", "-p", "vfio", "--example", example])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for the guest program");
    assert!(st.success(), "building the static guest program failed");
    target_dir
        .join("x86_64-unknown-linux-gnu/debug/examples")
        .join(example)
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The QEMU process, killed on drop.
pub struct Qemu(pub Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn make_initramfs(tmp: &Path, guest: &Path, mods: &Path, modules: &[(&str, &str)]) -> PathBuf {
    let root = tmp.join("root");
    for d in ["bin", "lib/modules", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy /bin/busybox");
    std::fs::copy(guest, root.join("guest")).expect("copy guest program");
    let mut load = String::new();
    let names: Vec<&str> = modules.iter().map(|(n, _)| *n).collect();
    for (i, m) in module_order(mods, &names).iter().enumerate() {
        let src = mods.join(m);
        let dst = root.join(format!("lib/modules/{i:02}.ko"));
        if m.ends_with(".xz") {
            let out = Command::new("xz").arg("-dc").arg(&src).output();
            need(out.is_ok(), "xz (to decompress kernel modules)", "xz-utils");
            let out = out.unwrap();
            assert!(out.status.success(), "xz -dc {}", src.display());
            std::fs::write(&dst, out.stdout).unwrap();
        } else if m.ends_with(".zst") {
            let out = Command::new("zstd").arg("-dc").arg(&src).output();
            need(out.is_ok(), "zstd (to decompress kernel modules)", "zstd");
            std::fs::write(&dst, out.unwrap().stdout).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
        // Parameters given for this module (matched by file stem).
        let stem = Path::new(m)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .split(".ko")
            .next()
            .unwrap()
            .replace('-', "_");
        let params = modules
            .iter()
            .find(|(n, _)| n.replace('-', "_") == stem)
            .map_or("", |(_, p)| *p);
        load.push_str(&format!(
            "/bin/busybox insmod /lib/modules/{i:02}.ko {params} || echo 'insmod {m} failed'\n"
        ));
    }
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t sysfs sys /sys\n\
         /bin/busybox mount -t devtmpfs dev /dev\n\
         {load}\
         /guest\n\
         echo \"GUEST-EXIT: $?\"\n\
         /bin/busybox poweroff -f\n"
    );
    std::fs::write(root.join("init"), init).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cpio = tmp.join("initrd.cpio");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find . | cpio --quiet -o -H newc > '{}'",
            cpio.display()
        ))
        .current_dir(&root)
        .status()
        .expect("run cpio");
    assert!(st.success(), "cpio failed");
    cpio
}

/// What to boot.
pub struct Guest<'a> {
    /// Example (in `vfio/examples/`) run as the guest program.
    pub example: &'a str,
    /// Kernel modules to load (with dependencies), and their parameters.
    pub modules: &'a [(&'a str, &'a str)],
    /// QEMU `-device` arguments after the IOMMU.
    pub devices: &'a [&'a str],
    /// The guest program's result line starts with this tag.
    pub tag: &'a str,
}

/// Boots the guest and returns the text after `tag` on the result line,
/// and the console log.
pub fn run(g: &Guest<'_>) -> (String, Vec<String>) {
    let qemu = which("qemu-system-x86_64");
    need(qemu.is_some(), "qemu-system-x86_64", "qemu-system-x86");
    need(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox",
        "busybox-static",
    );
    need(which("cpio").is_some(), "cpio", "cpio");
    let k = kernel();
    need(
        k.is_some(),
        "a kernel in /boot with modules in /lib/modules",
        "linux-image-amd64",
    );
    let (vmlinuz, mods) = k.unwrap();

    let guest = build_guest(g.example);
    let tmp = TempDir(std::env::temp_dir().join(format!(
        "vfio-guest-{}-{}",
        g.example,
        std::process::id()
    )));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).unwrap();
    let initrd = make_initramfs(&tmp.0, &guest, &mods, g.modules);

    let child = Command::new(qemu.unwrap())
        .args([
            "-machine", "q35", "-accel", "tcg", "-m", "512M", "-smp", "1",
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
        .args(["-device", "intel-iommu,intremap=on"])
        .args(g.devices.iter().flat_map(|d| ["-device", d]))
        .arg("-kernel")
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args([
            "-append",
            "console=ttyS0 intel_iommu=on panic=-1 loglevel=4 no_timer_check",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64");
    let mut qemu = Qemu(child);
    let (tx, rx) = mpsc::channel::<String>();
    let out = qemu.0.stdout.take().unwrap();
    let err = qemu.0.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("qemu stderr: {l}"));
        }
    });
    let start = Instant::now();
    let mut log = Vec::new();
    let mut result = None;
    while start.elapsed() < BOOT_TIMEOUT {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => {
                if let Some(r) = l.trim_end().split(g.tag).nth(1) {
                    result = Some(r.trim_start().to_string());
                }
                let done = l.contains("GUEST-EXIT:");
                log.push(l);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = qemu.0.try_wait() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let tail = log[log.len().saturating_sub(60)..].join("\n");
    let result = result.unwrap_or_else(|| {
        panic!(
            "guest printed no result within {:?}; console tail:\n{tail}",
            BOOT_TIMEOUT
        )
    });
    eprintln!("guest: {result} ({:.1} s)", start.elapsed().as_secs_f64());
    if std::env::var_os("VFIO_GUEST_LOG").is_some() {
        eprintln!("{}", log.join("\n"));
    }
    assert!(
        result.starts_with("ok "),
        "guest failed: {result}\nconsole tail:\n{tail}"
    );
    (result, log)
}
