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
    let path = std::env::temp_dir().join(format!("vfio-vu-{name}-{}.sock", std::process::id()));
    let backend = Box::new(MemBackend::new(4 << 20, 256).unwrap());
    let cfg = BlkConfig::new(&backend.info(), 512, queues, "vu-test").unwrap();
    let dev = DeviceCell::new(BlkDevice::new(name, backend, cfg));
    let group = PollGroup::new();
    group.add(Arc::clone(&dev));
    let poller = group
        .spawn(PollMode::Adaptive {
            spin_rounds: 1000,
            sleep: Duration::from_micros(50),
        })
        .unwrap();
    let server = BlkServer::bind(&path, dev).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let srv = std::thread::spawn(move || server.run(&s2).unwrap());
    Served {
        path,
        stop,
        group,
        threads: vec![poller, srv],
    }
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
