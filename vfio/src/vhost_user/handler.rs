//! The vhost-user requests, applied to a virtio-blk device.
//!
//! Ring life cycle (vhost-user spec, "Starting and stopping rings"): a ring
//! starts once it has a size, addresses, a kick fd and, when
//! `VHOST_USER_F_PROTOCOL_FEATURES` was negotiated, `SET_VRING_ENABLE 1`; it
//! stops on `GET_VRING_BASE` (which returns the next available index after
//! the ring's in-flight requests finished) or `SET_VRING_ENABLE 0`. The kick
//! fd is kept but never read: the poller polls.
//!
//! Live migration (spec, "Migration"): `VHOST_F_LOG_ALL` and
//! `VHOST_USER_PROTOCOL_F_LOG_SHMFD` are offered; while the VMM has
//! `LOG_ALL` set and gave a log (`SET_LOG_BASE`), every queue marks the
//! pages it writes ([`crate::dirty_log`]), and its used ring too when
//! `SET_VRING_ADDR` carried `VHOST_VRING_F_LOG` (at `log_guest_addr`).
//! Stopping a ring drains its requests before the ring base is reported,
//! so the destination, started at that base, owes the guest nothing; when
//! the last ring stops while logging, every page the device wrote during
//! the migration is marked again ([`DirtyLog::replay`]) and the backend is
//! flushed (a write-back cache's blocks reach the disk the destination
//! reads).

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{Backend, Error, GpuBackend, Result, VhostUserBackendReqHandlerMut};
use vhost::VhostUserMemoryRegionBase;

use super::{VHOST_F_LOG_ALL, VHOST_USER_F_PROTOCOL_FEATURES};
use crate::dirty_log::{log_size_for, DirtyLog, QueueLog};
use crate::guest_memory::{GuestMemory, RegionDesc};
use crate::inflight::InflightArea;
use crate::poller::SharedDevice;
use crate::virtq::split::used_ring_len;
use crate::virtq::{QueueConfig, VIRTIO_F_RING_PACKED};

/// Largest ring the device accepts.
pub const MAX_VRING_SIZE: u32 = 1024;

#[derive(Debug, Default)]
struct Vring {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    addr_set: bool,
    base: u32,
    kick: Option<File>,
    kick_set: bool,
    enabled: bool,
    started: bool,
    /// `VHOST_VRING_F_LOG`: log used-ring writes at `log_addr`.
    log_used: bool,
    /// `log_guest_addr` of `SET_VRING_ADDR` (a guest-physical address).
    log_addr: u64,
}

/// Handles the vhost-user requests of one connection for one device.
#[derive(Debug)]
pub struct BlkHandler {
    dev: SharedDevice,
    owned: bool,
    features: u64,
    protocol_features: u64,
    mem: Option<GuestMemory>,
    vrings: Vec<Vring>,
    inflight: Option<InflightArea>,
    /// The dirty log of `SET_LOG_BASE` (used while `LOG_ALL` is set).
    log: Option<Arc<DirtyLog>>,
}

/// The split ring's used index at guest address `used` (diagnostics).
fn used_index(mem: &GuestMemory, used: u64) -> u16 {
    let mut b = [0u8; 2];
    let _ = mem.read(used.wrapping_add(2), &mut b);
    u16::from_le_bytes(b)
}

fn err(msg: &'static str) -> Error {
    Error::InvalidOperation(msg)
}

impl BlkHandler {
    /// A handler for a fresh connection to `dev`.
    pub fn new(dev: SharedDevice) -> Self {
        let n = dev.lock().num_queues();
        BlkHandler {
            dev,
            owned: false,
            features: 0,
            protocol_features: 0,
            mem: None,
            vrings: (0..n).map(|_| Vring::default()).collect(),
            inflight: None,
            log: None,
        }
    }

    /// Stops every ring and forgets the connection's state (on disconnect).
    pub fn disconnect(&mut self) {
        let mut dev = self.dev.lock();
        for (i, v) in self.vrings.iter_mut().enumerate() {
            dev.stop_queue(i);
            dev.set_call(i, None);
            dev.set_err(i, None);
            dev.set_queue_log(i, None);
            *v = Vring::default();
        }
        self.owned = false;
        self.mem = None;
        self.inflight = None;
        self.log = None;
    }

    /// Whether the device marks what it writes in a dirty log now.
    fn logging(&self) -> bool {
        self.features & VHOST_F_LOG_ALL != 0 && self.log.is_some()
    }

    /// What queue `i` logs: nothing unless logging; its guest buffers; and
    /// the ring areas it writes if the ring has `VHOST_VRING_F_LOG` (split:
    /// the used ring at `log_guest_addr`; packed: the device event area at
    /// `log_guest_addr`, which QEMU sets to the device area, and the
    /// descriptor ring, where used descriptors go).
    fn queue_log(&self, i: usize) -> Option<QueueLog> {
        if !self.logging() {
            return None;
        }
        let (log, mem) = (self.log.clone()?, self.mem.clone()?);
        let v = &self.vrings[i];
        let mut rings = [(0, 0); 2];
        if v.log_used && v.size > 0 {
            if self.features & VIRTIO_F_RING_PACKED != 0 {
                rings[0] = (v.log_addr, 4);
                if let Some(desc) = mem.vmm_to_guest(v.desc) {
                    rings[1] = (desc, 16 * v.size as u64);
                }
            } else {
                rings[0] = (v.log_addr, used_ring_len(v.size));
            }
        }
        Some(QueueLog::new(log, mem, rings))
    }

    /// Hands every queue its current log (after the features, the log, the
    /// memory table or a ring's addresses changed).
    fn apply_log(&mut self) {
        let logs: Vec<Option<QueueLog>> =
            (0..self.vrings.len()).map(|i| self.queue_log(i)).collect();
        let mut dev = self.dev.lock();
        for (i, l) in logs.into_iter().enumerate() {
            dev.set_queue_log(i, l);
        }
    }

    /// The used-ring log area of a ring with `VHOST_VRING_F_LOG` must lie
    /// inside the log (spec: "the bit offset of the last byte of the ring
    /// must fall within the size supplied by `VhostUserLog`").
    fn check_ring_log(&self, v: &Vring) -> Result<()> {
        let (Some(log), true) = (&self.log, v.log_used) else {
            return Ok(());
        };
        let len = if self.features & VIRTIO_F_RING_PACKED != 0 {
            4
        } else {
            used_ring_len(v.size.max(1))
        };
        let end = v
            .log_addr
            .checked_add(len)
            .ok_or(err("vring log address overflows"))?;
        if !log.covers(end) {
            eprintln!(
                "vhost-user-blk: used ring log at {:#x} is beyond the {}-byte dirty log",
                v.log_addr,
                log.size()
            );
            return Err(Error::InvalidParam);
        }
        Ok(())
    }

    fn vring(&mut self, index: u32) -> Result<&mut Vring> {
        self.vrings
            .get_mut(index as usize)
            .ok_or(Error::InvalidParam)
    }

    fn try_start(&mut self, i: usize) -> Result<()> {
        let Some(mem) = self.mem.clone() else {
            return Ok(());
        };
        let v = &mut self.vrings[i];
        if v.started || !v.addr_set || !v.kick_set || !v.enabled || v.size == 0 {
            return Ok(());
        }
        let t = |a| {
            mem.vmm_to_guest(a)
                .ok_or(err("vring address outside the memory table"))
        };
        let cfg = QueueConfig {
            size: v.size,
            desc: t(v.desc)?,
            avail: t(v.avail)?,
            used: t(v.used)?,
        };
        let tracker = self.inflight.as_ref().and_then(|a| a.queue(i));
        eprintln!(
            "vhost-user-blk: vring {i} starts at base {:#x} ({}), used index in guest memory {}",
            v.base,
            if self.features & VIRTIO_F_RING_PACKED != 0 {
                "packed"
            } else {
                "split"
            },
            used_index(&mem, cfg.used),
        );
        let mut dev = self.dev.lock();
        dev.start_queue_tracked(i, cfg, v.base, tracker)
            .map_err(|e| {
                eprintln!("vhost-user-blk: {e}");
                err("cannot start vring")
            })?;
        // For a poller that sleeps (it asks for kicks first).
        dev.set_kick(i, v.kick.as_ref().and_then(|f| f.try_clone().ok()));
        v.started = true;
        Ok(())
    }

    fn stop(&mut self, i: usize) {
        let v = &mut self.vrings[i];
        if !v.started {
            return;
        }
        let mut dev = self.dev.lock();
        if let Some(base) = dev.stop_queue(i) {
            v.base = base;
        }
        if let Some(mem) = &self.mem {
            let used = mem.vmm_to_guest(v.used).map_or(0, |u| used_index(mem, u));
            eprintln!(
                "vhost-user-blk: vring {i} stopped at base {:#x}, used index in guest memory {used}",
                v.base
            );
        }
        v.started = false;
        // The source of a migration stops its rings last: what the guest was
        // told is written must be on the disk the destination opens.
        if self.features & VHOST_F_LOG_ALL != 0
            && self.log.is_some()
            && !self.vrings.iter().any(|v| v.started)
        {
            let replayed = self.log.as_ref().map_or(0, |l| l.replay());
            match dev.drain_and_flush(Duration::from_secs(30)) {
                Ok(_) => eprintln!(
                    "vhost-user-blk: rings stopped while logging (migration): requests drained, backend flushed, {replayed} written pages marked again"
                ),
                Err(e) => eprintln!("vhost-user-blk: flush at migration stop: {e}"),
            }
        }
    }
}

impl VhostUserBackendReqHandlerMut for BlkHandler {
    fn set_owner(&mut self) -> Result<()> {
        if self.owned {
            return Err(err("already owned"));
        }
        self.owned = true;
        Ok(())
    }

    fn reset_owner(&mut self) -> Result<()> {
        self.disconnect();
        Ok(())
    }

    fn reset_device(&mut self) -> Result<()> {
        let owned = self.owned;
        self.disconnect();
        self.owned = owned;
        Ok(())
    }

    fn get_features(&mut self) -> Result<u64> {
        Ok(self.dev.lock().config().features() | VHOST_USER_F_PROTOCOL_FEATURES | VHOST_F_LOG_ALL)
    }

    fn set_features(&mut self, features: u64) -> Result<()> {
        let offered = self.get_features()?;
        if features & !offered != 0 {
            return Err(Error::InvalidParam);
        }
        if (self.features ^ features) & VHOST_F_LOG_ALL != 0 {
            eprintln!(
                "vhost-user-blk: LOG_ALL {}",
                if features & VHOST_F_LOG_ALL != 0 {
                    "set"
                } else {
                    "cleared"
                }
            );
        }
        self.features = features;
        self.dev
            .lock()
            .set_features(features & !(VHOST_USER_F_PROTOCOL_FEATURES | VHOST_F_LOG_ALL));
        // Without protocol features rings start enabled (vhost-user spec).
        let enabled = features & VHOST_USER_F_PROTOCOL_FEATURES == 0;
        for v in &mut self.vrings {
            if !v.started {
                v.enabled = enabled;
            }
        }
        // `LOG_ALL` set or cleared: logging starts or stops.
        self.apply_log();
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<Vec<VhostUserMemoryRegionBase>>> {
        let table: Vec<RegionDesc> = ctx
            .iter()
            .map(|r| RegionDesc {
                guest_phys_addr: r.guest_phys_addr,
                size: r.memory_size,
                user_addr: r.user_addr,
                mmap_offset: r.mmap_offset,
            })
            .collect();
        let mem = GuestMemory::from_fds(&table, files).map_err(|e| {
            eprintln!("vhost-user-blk: memory table refused: {e}");
            Error::InvalidParam
        })?;
        if let Some(log) = &self.log {
            let end = table.iter().map(|r| r.guest_phys_addr + r.size).max();
            if !log.covers(end.unwrap_or(0)) {
                eprintln!("vhost-user-blk: memory table larger than the dirty log");
                return Err(Error::InvalidParam);
            }
        }
        let running: Vec<usize> = (0..self.vrings.len())
            .filter(|&i| self.vrings[i].started)
            .collect();
        eprintln!(
            "vhost-user-blk: memory table of {} regions ({} running rings restarted)",
            table.len(),
            running.len()
        );
        for &i in &running {
            self.stop(i);
        }
        self.dev.lock().set_memory(mem.clone());
        self.mem = Some(mem);
        for i in running {
            self.try_start(i)?;
        }
        self.apply_log();
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> Result<()> {
        if num == 0 || num > MAX_VRING_SIZE || !num.is_power_of_two() {
            return Err(Error::InvalidParam);
        }
        self.vring(index)?.size = num as u16;
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        log: u64,
    ) -> Result<()> {
        let mut next = Vring {
            log_used: flags.contains(VhostUserVringAddrFlags::VHOST_VRING_F_LOG),
            log_addr: log,
            ..Default::default()
        };
        next.size = self.vring(index)?.size;
        self.check_ring_log(&next)?;
        let v = self.vring(index)?;
        v.desc = descriptor;
        v.used = used;
        v.avail = available;
        v.log_used = next.log_used;
        v.log_addr = next.log_addr;
        v.addr_set = true;
        self.try_start(index as usize)?;
        // The VMM turns used-ring logging on and off with this message.
        self.apply_log();
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> Result<()> {
        let v = self.vring(index)?;
        v.base = base;
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> Result<VhostUserVringState> {
        self.vring(index)?;
        self.stop(index as usize);
        let v = self.vring(index)?;
        v.kick_set = false;
        v.kick = None;
        Ok(VhostUserVringState::new(index, v.base))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let v = self.vring(index as u32)?;
        v.kick = fd;
        v.kick_set = true;
        self.try_start(index as usize)
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        self.vring(index as u32)?;
        self.dev.lock().set_call(index as usize, fd);
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        self.vring(index as u32)?;
        self.dev.lock().set_err(index as usize, fd);
        Ok(())
    }

    fn get_protocol_features(&mut self) -> Result<VhostUserProtocolFeatures> {
        Ok(VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::INFLIGHT_SHMFD
            | VhostUserProtocolFeatures::LOG_SHMFD
            // The channel config-change notifications (online resize) take.
            | VhostUserProtocolFeatures::BACKEND_REQ)
    }

    fn set_protocol_features(&mut self, features: u64) -> Result<()> {
        self.protocol_features = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> Result<u64> {
        Ok(self.vrings.len() as u64)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> Result<()> {
        if self.features & VHOST_USER_F_PROTOCOL_FEATURES == 0 {
            return Err(err("SET_VRING_ENABLE without protocol features"));
        }
        self.vring(index)?.enabled = enable;
        if enable {
            self.try_start(index as usize)
        } else {
            self.stop(index as usize);
            Ok(())
        }
    }

    fn get_config(
        &mut self,
        offset: u32,
        size: u32,
        _flags: VhostUserConfigFlags,
    ) -> Result<Vec<u8>> {
        self.dev
            .lock()
            .config()
            .read(offset, size)
            .ok_or(Error::InvalidParam)
    }

    fn set_config(&mut self, offset: u32, buf: &[u8], _flags: VhostUserConfigFlags) -> Result<()> {
        self.dev
            .lock()
            .config_mut()
            .write(offset, buf)
            .map_err(|e| {
                eprintln!("vhost-user-blk: {e}");
                Error::InvalidParam
            })
    }

    fn set_backend_req_fd(&mut self, _backend: Backend) {}

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> Result<()> {
        Err(err("not a GPU"))
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> Result<File> {
        Err(err("no shared objects"))
    }

    fn get_inflight_fd(
        &mut self,
        inflight: &VhostUserInflight,
    ) -> Result<(VhostUserInflight, File)> {
        let (area, file, size) = InflightArea::create(inflight.num_queues, inflight.queue_size)
            .map_err(|e| {
                eprintln!("vhost-user-blk: inflight area: {e}");
                Error::InvalidParam
            })?;
        self.inflight = Some(area);
        eprintln!(
            "vhost-user-blk: inflight tracking area for {} queues of {} entries",
            inflight.num_queues, inflight.queue_size
        );
        Ok((
            VhostUserInflight {
                mmap_size: size,
                mmap_offset: 0,
                num_queues: inflight.num_queues,
                queue_size: inflight.queue_size,
            },
            file,
        ))
    }

    fn set_inflight_fd(&mut self, inflight: &VhostUserInflight, file: File) -> Result<()> {
        let area = InflightArea::from_file(
            file,
            inflight.mmap_offset,
            inflight.mmap_size,
            inflight.num_queues,
            inflight.queue_size,
        )
        .map_err(|e| {
            eprintln!("vhost-user-blk: inflight area refused: {e}");
            Error::InvalidParam
        })?;
        self.inflight = Some(area);
        eprintln!(
            "vhost-user-blk: inflight tracking area for {} queues of {} entries",
            inflight.num_queues, inflight.queue_size
        );
        Ok(())
    }

    fn get_max_mem_slots(&mut self) -> Result<u64> {
        Err(err("CONFIGURE_MEM_SLOTS not offered"))
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<VhostUserMemoryRegionBase>> {
        Err(err("CONFIGURE_MEM_SLOTS not offered"))
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> Result<()> {
        Err(err("CONFIGURE_MEM_SLOTS not offered"))
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> Result<Option<File>> {
        Err(err("DEVICE_STATE not offered"))
    }

    fn check_device_state(&mut self) -> Result<()> {
        Err(err("DEVICE_STATE not offered"))
    }

    fn get_shmem_config(&mut self) -> Result<VhostUserShMemConfig> {
        Err(err("SHMEM not offered"))
    }

    /// `VHOST_USER_SET_LOG_BASE` (with `LOG_SHMFD`; the `vhost` crate
    /// sends the reply the spec requires). The area must lie inside its fd
    /// and cover the memory table and every ring that logs; otherwise it is
    /// refused, which ends the connection (the message has no error reply).
    fn set_log_base(&mut self, log: &VhostUserLog, file: File) -> Result<()> {
        let area = DirtyLog::from_file(file, log.mmap_offset, log.mmap_size).map_err(|e| {
            eprintln!("vhost-user-blk: {e}");
            Error::InvalidParam
        })?;
        if let Some(mem) = &self.mem {
            let end = mem
                .regions()
                .iter()
                .map(|r| r.guest_phys_addr + r.size)
                .max()
                .unwrap_or(0);
            if !area.covers(end) {
                eprintln!(
                    "vhost-user-blk: dirty log of {} bytes does not cover guest memory up to {end:#x} ({} bytes needed)",
                    area.size(),
                    log_size_for(end)
                );
                return Err(Error::InvalidParam);
            }
        }
        eprintln!(
            "vhost-user-blk: dirty-page log of {} bytes (guest addresses up to {} MiB)",
            area.size(),
            (area.size() * 8 * crate::dirty_log::VHOST_LOG_PAGE) >> 20
        );
        let old = self.log.replace(Arc::new(area));
        if let Some(bad) = (0..self.vrings.len()).find(|&i| {
            let v = &self.vrings[i];
            self.check_ring_log(v).is_err()
        }) {
            self.log = old;
            eprintln!("vhost-user-blk: dirty log does not cover the used ring of queue {bad}");
            return Err(Error::InvalidParam);
        }
        if let Some(old) = old {
            if old.missed() > 0 {
                eprintln!(
                    "vhost-user-blk: {} written pages were beyond the previous dirty log",
                    old.missed()
                );
            }
        }
        self.apply_log();
        Ok(())
    }
}
