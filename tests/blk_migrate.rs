//! Live migration of a real QEMU guest whose disk is a vhost-user-blk
//! device served by `vswitch blk serve`: two QEMU processes (TCG), each
//! attached to its own `blk serve` process on the same backing file, the
//! destination started with `-incoming`. The guest runs a write/verify loop
//! on /dev/vda (tests/vm: `write_verify_loop_script`); the test migrates it
//! through the source's QMP monitor while the loop runs, checks that the
//! loop carries on on the destination without an error, stops it through a
//! marker block, and checks that the backing file holds every write the
//! guest saw acknowledged.
//!
//! The guest has 256 MiB - 8 KiB of RAM, which steers QEMU 7.2 around its
//! TCG dirty-tracking bug (see `qemu`).
//!
//! QEMU refuses to migrate a vhost-user device without `VHOST_F_LOG_ALL`,
//! so this is also the test that the back end's dirty log is accepted and
//! used (the source server logs the log it mapped and the flush at the
//! stop).
//!
//! Needs qemu-system-x86, linux-image-amd64 and busybox-static.

mod vm;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm::*;

type Console = Arc<Mutex<String>>;

/// Collects a child's piped stdout and stderr into one string.
fn capture(child: &mut Child) -> Console {
    let out: Console = Arc::default();
    let pipes = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for mut pipe in pipes.into_iter().flatten() {
        let out = Arc::clone(&out);
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
    out
}

fn server(sock: &Path, disk: &Path) -> (Reaper, Console) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["blk", "serve", "--queues", "2", "--poll", "wait"])
        .args(["--stats-interval", "2", "--socket"])
        .arg(sock)
        .arg("--backend")
        .arg(format!("file:{}", disk.display()))
        .arg("--stats-file")
        .arg(sock.with_extension("stats"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vswitch blk serve");
    let out = capture(&mut c);
    wait_for_socket(sock, &mut c);
    (Reaper(Some(c)), out)
}

/// Guest RAM (see `qemu`).
const GUEST_RAM: &str = "262136K";

fn qemu(
    dev_opts: &str,
    dir: &Path,
    sock: &Path,
    initrd: &Path,
    qmp: &Path,
    incoming: Option<&Path>,
) -> (Reaper, Console) {
    let qemu = need("/usr/bin/qemu-system-x86_64", "qemu-system-x86");
    let (kernel, _) = kernel();
    let mut cmd = Command::new(qemu);
    // 256 MiB - 8 KiB, not 256 MiB: QEMU 7.2 (Debian's 7.2.22 too) loses
    // stores of a TCG guest during migration when it syncs a RAM block
    // whose length is a multiple of 64 pages (its fast path clears the
    // dirty bits without resetting the TLB's not-dirty traps; fixed in QEMU
    // 9.0, 03bfc2188f "physmem: Fix migration dirty bitmap coherency with
    // TCG memory access"), and the destination kernel oopses on stale
    // pages whatever the back end logs. Any other length takes the
    // per-page path, which resets the TLB. See vfio/README.md.
    cmd.args(["-machine", "pc,accel=tcg", "-m", GUEST_RAM, "-smp", "1"])
        .args([
            "-object",
            &format!("memory-backend-memfd,id=mem,size={GUEST_RAM},share=on"),
            "-numa",
            "node,memdev=mem",
        ])
        .arg("-chardev")
        .arg(format!("socket,id=vublk,path={}", sock.display()))
        .arg("-device")
        .arg(format!(
            "vhost-user-blk-pci,chardev=vublk,num-queues=2{dev_opts}"
        ))
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet loglevel=3"])
        .args(["-display", "none", "-vga", "none"])
        .args(["-serial", "stdio", "-monitor", "none"])
        .arg("-no-reboot")
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()));
    if let Some(m) = incoming {
        cmd.arg("-incoming").arg(format!("unix:{}", m.display()));
    }
    let mut c = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // The console is the guest's serial line alone (QEMU's own
        // messages go to the test's stderr): the destination's output
        // continues the source's byte for byte.
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qemu-system-x86_64 (Debian package qemu-system-x86)");
    let out = capture(&mut c);
    (Reaper(Some(c)), out)
}

/// A QMP connection (one command at a time; events are skipped). A failure
/// shows the outputs in `ctx` (servers, consoles).
struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
    ctx: Vec<(&'static str, Console)>,
}

impl Qmp {
    fn connect(path: &Path, ctx: Vec<(&'static str, Console)>) -> Qmp {
        let deadline = Instant::now() + Duration::from_secs(30);
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "QMP {}: {e}", path.display());
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut q = Qmp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            ctx,
        };
        let mut greeting = String::new();
        q.r.read_line(&mut greeting).unwrap();
        assert!(greeting.contains("QMP"), "QMP greeting: {greeting}");
        q.cmd(r#"{"execute":"qmp_capabilities"}"#);
        q
    }

    /// Sends `json`, returns the reply line (panics on an error reply).
    fn cmd(&mut self, json: &str) -> String {
        if let Err(e) = writeln!(self.w, "{json}") {
            self.fail(&format!("QMP {json}: {e}"));
        }
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => self.fail(&format!("QMP closed after {json}")),
                Err(e) => self.fail(&format!("QMP {json}: {e}")),
                Ok(_) => {}
            }
            if line.contains("\"event\"") {
                continue;
            }
            if line.contains("\"error\"") {
                self.fail(&format!("QMP {json}: {line}"));
            }
            return line;
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}:{}", dump(&self.ctx));
    }
}

/// The numbers after `tag` at the start of complete console lines. A line
/// still arriving is left out: a TCG guest's serial console prints a few
/// characters at a time under load, and "GUEST-LAST-ACK 4" read before its
/// "8" arrived would be a wrong number, not a short one.
fn tagged(console: &str, tag: &str) -> Vec<u64> {
    let done = console.rfind('\n').map_or("", |end| &console[..end]);
    done.lines()
        .filter_map(|l| l.trim().strip_prefix(tag)?.trim().parse().ok())
        .collect()
}

fn max_ack(console: &Console) -> u64 {
    tagged(&console.lock().unwrap(), "GUEST-ACK ")
        .into_iter()
        .max()
        .unwrap_or(0)
}

/// Everything the processes printed (progress lines left out).
fn dump(ctx: &[(&'static str, Console)]) -> String {
    let mut msg = String::new();
    for (name, out) in ctx {
        msg += &format!("\n--- {name}:\n");
        for l in out.lock().unwrap().lines() {
            if !l.starts_with("GUEST-ACK") {
                msg += l;
                msg.push('\n');
            }
        }
    }
    msg
}

/// Waits until `cond` holds on the console, failing with the outputs in
/// `ctx` after `secs`.
fn wait_console(
    console: &Console,
    secs: u64,
    what: &str,
    ctx: &[(&'static str, Console)],
    cond: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (error, done) = {
            let c = console.lock().unwrap();
            (c.contains("GUEST-ERROR"), cond(&c))
        };
        assert!(!error, "guest error; {what}:{}", dump(ctx));
        if done {
            return;
        }
        let last = max_ack(console);
        assert!(
            Instant::now() < deadline,
            "{what} not within {secs} s (last acknowledged write {last}):{}",
            dump(ctx)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_u64(line: &str, key: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.pointer(key)?.as_u64()
}

/// Prints every process's output if the test fails after it was made
/// (any assertion, including those that do not show `ctx` themselves).
struct DumpOnPanic(Vec<(&'static str, Console)>);

impl Drop for DumpOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("outputs of the failed migration:{}", dump(&self.0));
        }
    }
}

/// One pair of guests at a time (each test boots two QEMUs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Split rings (QEMU's default).
#[test]
fn live_migration_keeps_every_acknowledged_write() {
    migrate("split", "");
}

/// Packed rings: used descriptors go into the descriptor ring, which is
/// logged, and the ring base carries both wrap counters.
#[test]
fn live_migration_with_packed_rings() {
    migrate("packed", ",packed=on");
}

fn migrate(name: &str, dev_opts: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir: PathBuf =
        std::env::temp_dir().join(format!("vswitch-blk-migrate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; DISK_LEN as usize]).unwrap();
    let initrd = build_initramfs_with(&dir, &write_verify_loop_script(), &[]);

    // Two hosts' worth of storage back ends on the one backing file.
    let (src_sock, dst_sock) = (dir.join("src.sock"), dir.join("dst.sock"));
    let (_src_srv, src_log) = server(&src_sock, &disk);
    let (_dst_srv, dst_log) = server(&dst_sock, &disk);

    let (src_qmp, dst_qmp, mig) = (
        dir.join("src.qmp"),
        dir.join("dst.qmp"),
        dir.join("mig.sock"),
    );
    let (_src_vm, src_con) = qemu(dev_opts, &dir, &src_sock, &initrd, &src_qmp, None);
    let mut ctx = vec![
        ("source server", Arc::clone(&src_log)),
        ("destination server", Arc::clone(&dst_log)),
        ("source QEMU", Arc::clone(&src_con)),
    ];
    wait_console(&src_con, 180, "20 writes on the source", &ctx, |c| {
        tagged(c, "GUEST-ACK ").into_iter().max().unwrap_or(0) >= 20
    });

    // Bit 34 of the features the guest driver took: VIRTIO_F_RING_PACKED.
    let features = src_con
        .lock()
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("GUEST-FEATURES ").map(str::to_string))
        .expect("the guest prints its features");
    assert_eq!(
        features.as_bytes().get(34) == Some(&b'1'),
        dev_opts.contains("packed=on"),
        "{name}: guest features {features}"
    );
    let (mut dst_vm, dst_con) = qemu(dev_opts, &dir, &dst_sock, &initrd, &dst_qmp, Some(&mig));
    ctx.push(("destination QEMU", Arc::clone(&dst_con)));
    let _dump = DumpOnPanic(ctx.clone());
    let mut dq = Qmp::connect(&dst_qmp, ctx.clone());
    let mut sq = Qmp::connect(&src_qmp, ctx.clone());
    sq.cmd(r#"{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":4294967296}}"#);
    let t0 = Instant::now();
    let before = max_ack(&src_con);
    sq.cmd(&format!(
        r#"{{"execute":"migrate","arguments":{{"uri":"unix:{}"}}}}"#,
        mig.display()
    ));
    let info = loop {
        let r = sq.cmd(r#"{"execute":"query-migrate"}"#);
        if r.contains("\"completed\"") {
            break r;
        }
        assert!(
            !r.contains("\"failed\"") && !r.contains("\"cancelled\""),
            "migration failed: {r}\nsource server:\n{}\nsource QEMU:\n{}",
            src_log.lock().unwrap(),
            src_con.lock().unwrap()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "migration not done in 60 s: {r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = t0.elapsed();
    let src_last = max_ack(&src_con);
    let status = dq.cmd(r#"{"execute":"query-status"}"#);
    assert!(
        status.contains("\"running\""),
        "destination not running: {status}"
    );
    eprintln!(
        "{name}: migration: {:.1} s wall, total-time {:?} ms, downtime {:?} ms, {:?} RAM bytes; source acknowledged seq {before}..{src_last}",
        took.as_secs_f64(),
        json_u64(&info, "/return/total-time"),
        json_u64(&info, "/return/downtime"),
        json_u64(&info, "/return/ram/transferred"),
    );
    let s = src_log.lock().unwrap().clone();
    assert!(
        s.contains("dirty-page log of"),
        "the source back end got no dirty log:\n{s}"
    );
    assert!(
        s.contains("requests drained, backend flushed") && s.contains("written pages marked again"),
        "the source back end was not stopped for the switch-over:\n{s}"
    );

    // The loop carries on on the destination, from where the source left off.
    wait_console(
        &dst_con,
        120,
        "20 more writes on the destination",
        &ctx,
        |c| tagged(c, "GUEST-ACK ").into_iter().max().unwrap_or(0) >= src_last + 20,
    );

    // Stop the loop through the marker block; the guest reports its last
    // acknowledged write and powers off.
    let mut stop = vec![0u8; 4096];
    stop[..4].copy_from_slice(b"STOP");
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    f.write_all_at(&stop, LOOP_STOP_BLOCK * 4096).unwrap();
    f.sync_all().unwrap();
    wait_console(&dst_con, 60, "GUEST-LAST-ACK", &ctx, |c| {
        !tagged(c, "GUEST-LAST-ACK ").is_empty()
    });
    let last = tagged(&dst_con.lock().unwrap(), "GUEST-LAST-ACK ")[0];
    let deadline = Instant::now() + Duration::from_secs(30);
    while dst_vm.0.as_mut().unwrap().try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "destination guest did not power off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last, max_ack(&dst_con), "last acknowledged write");
    // The serial stream continues on the destination (a line the guest was
    // printing at the switch-over starts on one console and ends on the
    // other): every write was acknowledged once, in order, none skipped.
    let stream = format!("{}{}", src_con.lock().unwrap(), dst_con.lock().unwrap());
    let acks = tagged(&stream, "GUEST-ACK ");
    assert!(
        acks.iter().copied().eq(1..=last),
        "acknowledged writes are not 1..={last} in order (source's last {src_last}): {acks:?}"
    );

    // Every acknowledged write is in the backing file: each block of the
    // loop holds the last sequence number written to it.
    let img = std::fs::read(&disk).unwrap();
    for b in 0..LOOP_BLOCKS {
        let at = ((LOOP_BASE_BLOCK + b) * 4096) as usize;
        let got = &img[at..at + 4096];
        let newest = (1..=last).rev().find(|s| s % LOOP_BLOCKS == b);
        match newest {
            Some(seq) => assert_eq!(
                got,
                &loop_block(seq)[..],
                "block {b}: want sequence {seq}, found {:?}",
                String::from_utf8_lossy(&got[..24])
            ),
            None => assert!(got.iter().all(|&x| x == 0), "block {b} never written"),
        }
    }
    // The destination's server did the I/O after the switch-over (its stats
    // file is rewritten every second).
    std::thread::sleep(Duration::from_millis(1500));
    let stats = std::fs::read_to_string(dst_sock.with_extension("stats")).unwrap_or_default();
    let writes = json_u64(stats.lines().next().unwrap_or(""), "/writes").unwrap_or(0);
    // (The write whose acknowledgement was printed first on the destination
    // may have completed on the source just before it stopped.)
    assert!(
        writes + 1 >= last - src_last,
        "destination server wrote {writes} times, the guest acknowledged {} writes there; stats: {stats}\n{}",
        last - src_last,
        dst_log.lock().unwrap()
    );
    eprintln!(
        "{name}: guest acknowledged {last} writes, {} of them on the destination",
        last - src_last
    );
    // BLK_MIGRATE_VERBOSE=1: the servers' and guests' output of a passing
    // run too (ring bases, log and memory-table messages).
    if std::env::var_os("BLK_MIGRATE_VERBOSE").is_some() {
        eprintln!("outputs:{}", dump(&ctx));
    }
}
