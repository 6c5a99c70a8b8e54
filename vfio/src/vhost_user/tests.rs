//! The vhost-user-blk server end to end: a simulated VMM and guest driver on
//! one side of a real unix socket, the server, device and poller thread on
//! the other.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mock_frontend::MockFrontend;
use super::BlkServer;
use crate::backend::{mem::MemBackend, Backend};
use crate::blk::mock::BlkReq;
use crate::blk::{BlkConfig, BlkDevice, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
use crate::poller::{DeviceCell, PollGroup, PollMode};
use crate::virtq::mock::Buf;

struct Served {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    group: Arc<PollGroup>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.group.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(name: &str, queues: u16) -> Served {
    serve_many(&[name], queues).pop().unwrap()
}

/// Several devices, each on its own socket, all polled by ONE poller thread
/// (owned by the first `Served`).
fn serve_many(names: &[&str], queues: u16) -> Vec<Served> {
    let group = PollGroup::new();
    let mut out = Vec::new();
    for name in names {
        let path = std::env::temp_dir().join(format!("vfio-vu-{name}-{}.sock", std::process::id()));
        let backend = Box::new(MemBackend::new(4 << 20, 256).unwrap());
        let cfg = BlkConfig::new(&backend.info(), 512, queues, name).unwrap();
        let dev = DeviceCell::new(BlkDevice::new(name, backend, cfg));
        group.add(Arc::clone(&dev));
        let server = BlkServer::bind(&path, dev).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&stop);
        let srv = std::thread::spawn(move || server.run(&s2).unwrap());
        out.push(Served {
            path,
            stop,
            group: Arc::clone(&group),
            threads: vec![srv],
        });
    }
    let poller = group
        .spawn(PollMode::Adaptive {
            spin_rounds: 1000,
            sleep: Duration::from_micros(50),
        })
        .unwrap();
    out[0].threads.push(poller);
    out
}

fn wait(fe: &mut MockFrontend, q: usize, r: &BlkReq) -> u8 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((id, _)) = fe.drivers[q].q.pop_used() {
            assert_eq!(id, r.head);
            return fe.drivers[q].status(r);
        }
        assert!(Instant::now() < deadline, "request not completed in 10 s");
        std::thread::yield_now();
    }
}

#[test]
fn end_to_end_write_read_and_reconnect() {
    let s = serve("e2e", 2);
    let mut fe = MockFrontend::connect(&s.path, 16 << 20, 2, 64).unwrap();
    assert_eq!(fe.capacity_sectors, (4 << 20) / 512);
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    let buf = fe.data_base;
    fe.mem.write(buf, &data).unwrap();
    let w = fe.drivers[1].request(
        VIRTIO_BLK_T_OUT,
        100,
        &[Buf::r(buf, 4096), Buf::r(buf + 4096, 4096)],
        true,
    );
    assert_eq!(wait(&mut fe, 1, &w), VIRTIO_BLK_S_OK);
    // The interrupt follows the used-index store; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fe.calls[1].read().is_err() {
        assert!(
            Instant::now() < deadline,
            "the device never interrupted the driver"
        );
        std::thread::yield_now();
    }
    let back = buf + 0x10000;
    let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 100, &[Buf::w(back, 8192)], false);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
    let mut got = vec![0u8; 8192];
    fe.mem.read(back, &mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(
        fe.stop_queue(0).unwrap(),
        1,
        "one request taken from queue 0"
    );
    drop(fe);

    // The VMM comes back (reconnect): a fresh handshake serves the same disk.
    let mut fe = MockFrontend::connect(&s.path, 16 << 20, 1, 32).unwrap();
    let back = fe.data_base;
    let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 100, &[Buf::w(back, 8192)], false);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
    let mut got = vec![0u8; 8192];
    fe.mem.read(back, &mut got).unwrap();
    assert_eq!(got, data);
}

#[test]
fn one_poller_serves_several_devices() {
    let served = serve_many(&["multi-a", "multi-b", "multi-c"], 2);
    let mut fes: Vec<MockFrontend> = served
        .iter()
        .map(|s| MockFrontend::connect(&s.path, 8 << 20, 2, 32).unwrap())
        .collect();
    // Each device gets its own byte on every queue; nothing leaks between them.
    for (d, fe) in fes.iter_mut().enumerate() {
        for q in 0..2 {
            let buf = fe.data_base + q as u64 * 4096;
            fe.mem
                .write(buf, &[0x10 * d as u8 + q as u8; 4096])
                .unwrap();
            let w =
                fe.drivers[q].request(VIRTIO_BLK_T_OUT, q as u64 * 8, &[Buf::r(buf, 4096)], q == 1);
            assert_eq!(wait(fe, q, &w), VIRTIO_BLK_S_OK);
        }
    }
    for (d, fe) in fes.iter_mut().enumerate() {
        let back = fe.data_base + 0x10000;
        let r = fe.drivers[0].request(VIRTIO_BLK_T_IN, 0, &[Buf::w(back, 8192)], false);
        assert_eq!(wait(fe, 0, &r), VIRTIO_BLK_S_OK);
        let mut got = vec![0u8; 8192];
        fe.mem.read(back, &mut got).unwrap();
        assert!(
            got[..4096].iter().all(|&b| b == 0x10 * d as u8),
            "device {d} queue 0 data"
        );
        assert!(
            got[4096..].iter().all(|&b| b == 0x10 * d as u8 + 1),
            "device {d} queue 1 data"
        );
    }
}

#[test]
fn garbage_on_the_socket_ends_that_connection_only() {
    use std::io::Write;
    let s = serve("garbage", 1);
    let mut seed = 0x1234_5678u64;
    for round in 0..20 {
        let mut sock = std::os::unix::net::UnixStream::connect(&s.path).unwrap();
        let junk: Vec<u8> = (0..64 + round * 37)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = sock.write_all(&junk);
        drop(sock);
    }
    // A well-formed VMM is still served afterwards.
    let mut fe = MockFrontend::connect(&s.path, 8 << 20, 1, 32).unwrap();
    let r = fe.drivers[0].request(crate::blk::VIRTIO_BLK_T_FLUSH, 0, &[], false);
    assert_eq!(wait(&mut fe, 0, &r), VIRTIO_BLK_S_OK);
}

mod migration;
mod shadow;
