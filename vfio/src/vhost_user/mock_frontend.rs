//! A vhost-user front end that plays the VMM and, through
//! [`crate::blk::mock::BlkDriver`], the guest's virtio-blk driver: it shares
//! a memfd as guest memory, negotiates with any vhost-user-blk back end (this
//! crate's, `qemu-storage-daemon`, SPDK) and drives its queues. Tests use it
//! to exercise the server end to end; the benchmark uses it to measure any
//! back end with the same driver.

use std::fs::File;
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::Path;

use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserDirtyLogRegion, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::EventFd;

use super::{VHOST_F_LOG_ALL, VHOST_USER_F_PROTOCOL_FEATURES};
use crate::blk::mock::BlkDriver;
use crate::guest_memory::{GuestMemory, RegionDesc};
use crate::virtq::mock::MockQueue;
use crate::virtq::{VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

/// Where the simulated VMM pretends guest memory sits in its own address
/// space (the back end must translate vring addresses from here).
pub const VMM_BASE: u64 = 0x7f00_0000_0000;

/// A connected simulated VMM + guest driver.
pub struct MockFrontend {
    /// The vhost-user connection.
    pub frontend: Frontend,
    /// Guest memory (a memfd shared with the back end).
    pub mem: GuestMemory,
    /// One driver per queue.
    pub drivers: Vec<BlkDriver>,
    /// Interrupt eventfds, one per queue.
    pub calls: Vec<EventFd>,
    kicks: Vec<EventFd>,
    /// Device capacity in 512-byte sectors, from the config space.
    pub capacity_sectors: u64,
    /// Free guest memory for data buffers starts here.
    pub data_base: u64,
    /// The features set with `SET_FEATURES`.
    pub features: u64,
    qsize: u16,
}

impl std::fmt::Debug for MockFrontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockFrontend")
            .field("capacity_sectors", &self.capacity_sectors)
            .finish()
    }
}

fn e<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |err| format!("{what}: {err}")
}

impl MockFrontend {
    /// Connects to `socket`, shares `mem_size` bytes of guest memory and
    /// starts `queues` queues of `qsize` entries.
    pub fn connect(socket: &Path, mem_size: u64, queues: u16, qsize: u16) -> Result<Self, String> {
        let mut fe = Frontend::connect(socket, queues as u64).map_err(e("connect"))?;
        fe.set_owner().map_err(e("SET_OWNER"))?;
        let offered = fe.get_features().map_err(e("GET_FEATURES"))?;
        let wanted = VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_RING_F_EVENT_IDX
            | VHOST_USER_F_PROTOCOL_FEATURES
            | crate::blk::VIRTIO_BLK_F_FLUSH
            | crate::blk::VIRTIO_BLK_F_MQ
            | crate::blk::VIRTIO_BLK_F_BLK_SIZE
            | crate::blk::VIRTIO_BLK_F_SEG_MAX;
        if offered & VHOST_USER_F_PROTOCOL_FEATURES == 0 {
            return Err("back end lacks VHOST_USER_F_PROTOCOL_FEATURES".into());
        }
        let pf = fe
            .get_protocol_features()
            .map_err(e("GET_PROTOCOL_FEATURES"))?;
        fe.set_protocol_features(
            pf & (VhostUserProtocolFeatures::MQ
                | VhostUserProtocolFeatures::CONFIG
                | VhostUserProtocolFeatures::LOG_SHMFD),
        )
        .map_err(e("SET_PROTOCOL_FEATURES"))?;
        if pf.contains(VhostUserProtocolFeatures::MQ) {
            let n = fe.get_queue_num().map_err(e("GET_QUEUE_NUM"))?;
            if n < queues as u64 {
                return Err(format!("back end has {n} queues, {queues} wanted"));
            }
        }
        let (_, cfg) = fe
            .get_config(0, 60, VhostUserConfigFlags::WRITABLE, &[0u8; 60])
            .map_err(e("GET_CONFIG"))?;
        let capacity_sectors = u64::from_le_bytes(cfg[0..8].try_into().map_err(e("config"))?);
        let features = offered & wanted;
        fe.set_features(features).map_err(e("SET_FEATURES"))?;

        // SAFETY: plain syscalls; the fd is checked and then owned by `File`.
        let memfd = unsafe {
            let fd = libc::memfd_create(c"vfio-mock-guest".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
            }
            File::from_raw_fd(fd)
        };
        memfd.set_len(mem_size).map_err(e("ftruncate"))?;
        let region = RegionDesc {
            guest_phys_addr: 0,
            size: mem_size,
            user_addr: VMM_BASE,
            mmap_offset: 0,
        };
        let mem = GuestMemory::from_fds(&[region], vec![memfd.try_clone().map_err(e("dup"))?])
            .map_err(e("mmap"))?;
        fe.set_mem_table(&[VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: mem_size,
            userspace_addr: VMM_BASE,
            mmap_offset: 0,
            mmap_handle: memfd.as_raw_fd(),
        }])
        .map_err(e("SET_MEM_TABLE"))?;

        let per =
            (MockQueue::footprint(qsize) + BlkDriver::scratch_len(qsize)).next_multiple_of(4096);
        let mut drivers = Vec::new();
        let mut calls = Vec::new();
        let mut kicks = Vec::new();
        for q in 0..queues as usize {
            let base = 4096 + q as u64 * per;
            let mut d = BlkDriver::new(&mem, base, qsize, base + MockQueue::footprint(qsize));
            d.q.set_event_idx(features & VIRTIO_RING_F_EVENT_IDX != 0);
            let c = d.q.config();
            fe.set_vring_num(q, qsize).map_err(e("SET_VRING_NUM"))?;
            fe.set_vring_base(q, 0).map_err(e("SET_VRING_BASE"))?;
            fe.set_vring_addr(
                q,
                &VringConfigData {
                    queue_max_size: qsize,
                    queue_size: qsize,
                    flags: 0,
                    desc_table_addr: VMM_BASE + c.desc,
                    used_ring_addr: VMM_BASE + c.used,
                    avail_ring_addr: VMM_BASE + c.avail,
                    log_addr: None,
                },
            )
            .map_err(e("SET_VRING_ADDR"))?;
            let kick = EventFd::new(libc::EFD_NONBLOCK).map_err(e("eventfd"))?;
            let call = EventFd::new(libc::EFD_NONBLOCK).map_err(e("eventfd"))?;
            fe.set_vring_kick(q, &kick).map_err(e("SET_VRING_KICK"))?;
            fe.set_vring_call(q, &call).map_err(e("SET_VRING_CALL"))?;
            fe.set_vring_enable(q, true)
                .map_err(e("SET_VRING_ENABLE"))?;
            drivers.push(d);
            calls.push(call);
            kicks.push(kick);
        }
        let data_base = 4096 + queues as u64 * per;
        if data_base >= mem_size {
            return Err("guest memory too small for the queues".into());
        }
        Ok(MockFrontend {
            frontend: fe,
            mem,
            drivers,
            calls,
            kicks,
            capacity_sectors,
            data_base,
            features,
            qsize,
        })
    }

    /// `SET_LOG_BASE`: shares `size` bytes of `log` from `offset` as the
    /// dirty log (live migration; needs `LOG_SHMFD`, negotiated when offered).
    pub fn set_log_base(&mut self, log: &File, offset: u64, size: u64) -> Result<(), String> {
        let region = VhostUserDirtyLogRegion {
            mmap_size: size,
            mmap_offset: offset,
            mmap_handle: log.as_raw_fd(),
        };
        self.frontend
            .set_log_base(0, Some(region))
            .map_err(e("SET_LOG_BASE"))
    }

    /// `SET_FEATURES` with or without `VHOST_F_LOG_ALL` (logging on/off).
    pub fn set_log_all(&mut self, on: bool) -> Result<(), String> {
        self.features = if on {
            self.features | VHOST_F_LOG_ALL
        } else {
            self.features & !VHOST_F_LOG_ALL
        };
        self.frontend
            .set_features(self.features)
            .map_err(e("SET_FEATURES"))?;
        self.sync()
    }

    /// Waits until the back end handled every message sent so far (a
    /// `GET_FEATURES` round trip: messages without a reply are handled in
    /// order, and the guest's next request does not wait for them).
    pub fn sync(&mut self) -> Result<(), String> {
        self.frontend
            .get_features()
            .map(|_| ())
            .map_err(e("GET_FEATURES"))
    }

    /// `SET_VRING_ADDR` again for queue `q`, with `VHOST_VRING_F_LOG` and
    /// `log_guest_addr` when `log` is given (QEMU passes the used ring's
    /// guest address).
    pub fn set_ring_log(&mut self, q: usize, log: Option<u64>) -> Result<(), String> {
        let c = self.drivers[q].q.config();
        self.frontend
            .set_vring_addr(
                q,
                &VringConfigData {
                    queue_max_size: self.qsize,
                    queue_size: self.qsize,
                    flags: log.map_or(0, |_| 1),
                    desc_table_addr: VMM_BASE + c.desc,
                    used_ring_addr: VMM_BASE + c.used,
                    avail_ring_addr: VMM_BASE + c.avail,
                    log_addr: log,
                },
            )
            .map_err(e("SET_VRING_ADDR"))?;
        self.sync()
    }

    /// Kicks queue `q` (back ends that are not polling need it; ours ignores it).
    pub fn kick(&self, q: usize) {
        let _ = self.kicks[q].write(1);
    }

    /// Stops queue `q` (`GET_VRING_BASE`) and returns the back end's next
    /// available index.
    pub fn stop_queue(&mut self, q: usize) -> Result<u32, String> {
        self.frontend.get_vring_base(q).map_err(e("GET_VRING_BASE"))
    }
}
