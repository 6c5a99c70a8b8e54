//! QoS limits hold under a deep queue, and a live change applies within a
//! second: the in-repo vhost-user driver (`perf::vhost_driver`, the
//! benchmarks' simulated guest) keeps 32 4 KiB reads in flight against a
//! null-backed device served in this process, and the completed rate is
//! compared with the limit (±5%). Requests over the limit wait in the ring:
//! none fails.
//!
//! Run alone with the heavy lock (it spins a driver thread):
//! `flock /work/heavy.lock cargo test -p perf --test blk_qos`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use perf::vhost_driver::{drive, tsc_hz, wait_socket, Cpu, BS};
use vfio::backend::null::NullBackend;
use vfio::backend::Backend;
use vfio::blk::{BlkConfig, BlkDevice, QosLimits};
use vfio::poller::{DeviceCell, PollGroup, PollMode, SharedDevice};
use vfio::vhost_user::BlkServer;

const QD: usize = 32;
const MIB: f64 = 1024.0 * 1024.0;

/// A null-backed device, its poller and its vhost-user server.
struct Served {
    dev: SharedDevice,
    sock: PathBuf,
    group: Arc<PollGroup>,
    poller: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.group.stop();
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(name: &str, limits: QosLimits) -> Served {
    let dir = std::env::temp_dir().join(format!("blk-qos-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("qos.sock");
    let backend = Box::new(NullBackend::new(1 << 30, 1024));
    let cfg = BlkConfig::new(&backend.info(), 512, 1, "qos").unwrap();
    let dev = DeviceCell::new(BlkDevice::new("qos", backend, cfg));
    dev.lock().qos_handle().set(limits);
    let group = PollGroup::new();
    group.add(Arc::clone(&dev));
    let poller = group.spawn(PollMode::Busy).unwrap();
    let server = BlkServer::bind(&sock, Arc::clone(&dev)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let server = std::thread::spawn(move || server.run(&st));
    wait_socket(&sock);
    Served {
        dev,
        sock,
        group,
        poller: Some(poller),
        stop,
        server: Some(server),
        dir,
    }
}

/// What the device does with no limit: IOPS and p99 latency (µs).
struct Check {
    free: f64,
    p99: f64,
}

impl Check {
    /// `got` is within 5% of the limit `want`: never above (the limit is
    /// enforced); not below either, when this host lets the driver and the
    /// device run: unlimited, at least 1.5 times the limit (`iops` is the
    /// limit in IOPS) with a p99 under 2 ms. On a loaded host the threads
    /// stall for longer than the queue holds work at the limit (32
    /// requests at 5000/s: 6.4 ms) plus the burst, and the rate falls
    /// below the limit for want of CPU, not because of QoS.
    fn within(&self, got: f64, want: f64, iops: f64, what: &str) {
        let dev = (got - want) / want;
        eprintln!(
            "{what}: {got:.1} against a limit of {want:.1} ({:+.1}%)",
            dev * 100.0
        );
        assert!(dev <= 0.05, "{what}: {got:.1}, over the limit {want:.1}");
        if self.free >= 1.5 * iops && self.p99 < 2000.0 {
            assert!(dev >= -0.05, "{what}: {got:.1}, limit {want:.1}");
        } else {
            eprintln!(
                "{what}: unlimited the device does {:.0} IOPS with p99 {:.0} us here (host \
                 loaded): the lower bound is not checked",
                self.free, self.p99
            );
        }
    }
}

fn run(sock: &Path, secs: f64, hz: f64) -> (f64, u64) {
    let r = drive(sock, QD, 1, secs, hz, &Cpu::InProcess, "vswitch").unwrap();
    (r.ops as f64 / r.wall, r.errors)
}

#[test]
fn limits_hold_at_qd32_and_change_live() {
    let hz = tsc_hz();
    // What this machine does without a limit: a limit can only be met
    // from below if the device can go faster than it (a loaded host, or a
    // debug build, may not).
    let (free, p99) = {
        let s = serve("free", QosLimits::default());
        let r = drive(&s.sock, QD, 1, 1.0, hz, &Cpu::InProcess, "vswitch").unwrap();
        (
            r.ops as f64 / r.wall,
            r.hist.value_at_quantile(0.99) as f64 / 1e3,
        )
    };
    eprintln!("unlimited: {free:.0} IOPS at QD {QD}, p99 {p99:.0} us");
    let check = Check { free, p99 };
    // 5000 IOPS.
    let s = serve(
        "iops",
        QosLimits {
            rw_ios_per_sec: 5000,
            ..QosLimits::default()
        },
    );
    let (iops, errors) = run(&s.sock, 2.0, hz);
    check.within(iops, 5000.0, 5000.0, "IOPS at QD 32");
    assert_eq!(errors, 0, "held requests must not fail");
    drop(s);

    // 20 MiB/s of 4 KiB reads.
    let s = serve(
        "mbps",
        QosLimits {
            rw_mbytes_per_sec: 20,
            ..QosLimits::default()
        },
    );
    let (iops, errors) = run(&s.sock, 2.0, hz);
    check.within(
        iops * BS as f64 / MIB,
        20.0,
        20.0 * MIB / BS as f64,
        "MiB/s at QD 32",
    );
    assert_eq!(errors, 0);
    drop(s);

    // 5000 IOPS, lowered to 1000 live at 1.5 s: the rate of the second
    // after the change settles (1.5 s + 1 s .. + 2 s) is the new limit.
    let s = serve(
        "live",
        QosLimits {
            rw_ios_per_sec: 5000,
            ..QosLimits::default()
        },
    );
    let dev = Arc::clone(&s.dev);
    let qos = dev.lock().qos_handle();
    let monitor = std::thread::spawn(move || {
        let t0 = Instant::now();
        let reads = || dev.lock().stats().reads as f64;
        let at = |t: f64| {
            let d = Duration::from_secs_f64(t).saturating_sub(t0.elapsed());
            std::thread::sleep(d);
            (t0.elapsed().as_secs_f64(), reads())
        };
        let a = at(0.5);
        let b = at(1.5);
        qos.set(QosLimits {
            rw_ios_per_sec: 1000,
            ..QosLimits::default()
        });
        let c = at(2.5);
        let d = at(3.5);
        ((b.1 - a.1) / (b.0 - a.0), (d.1 - c.1) / (d.0 - c.0))
    });
    let (_, errors) = run(&s.sock, 3.5, hz);
    let (before, after) = monitor.join().unwrap();
    check.within(before, 5000.0, 5000.0, "IOPS before the live change");
    check.within(after, 1000.0, 1000.0, "IOPS from 1 s after the live change");
    assert_eq!(errors, 0);
}
