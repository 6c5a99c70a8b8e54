//! The vhost-user requests, applied to a virtio-blk device.
//!
//! Ring life cycle (vhost-user spec, "Starting and stopping rings"): a ring
//! starts once it has a size, addresses, a kick fd and, when
//! `VHOST_USER_F_PROTOCOL_FEATURES` was negotiated, `SET_VRING_ENABLE 1`; it
//! stops on `GET_VRING_BASE` (which returns the next available index after
//! the ring's in-flight requests finished) or `SET_VRING_ENABLE 0`. The kick
//! fd is kept but never read: the poller polls.

use std::fs::File;

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{Backend, Error, GpuBackend, Result, VhostUserBackendReqHandlerMut};
use vhost::VhostUserMemoryRegionBase;

use super::VHOST_USER_F_PROTOCOL_FEATURES;
use crate::guest_memory::{GuestMemory, RegionDesc};
use crate::inflight::InflightArea;
use crate::poller::SharedDevice;
use crate::virtq::QueueConfig;

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
        }
    }

    /// Stops every ring and forgets the connection's state (on disconnect).
    pub fn disconnect(&mut self) {
        let mut dev = self.dev.lock();
        for (i, v) in self.vrings.iter_mut().enumerate() {
            dev.stop_queue(i);
            dev.set_call(i, None);
            dev.set_err(i, None);
            *v = Vring::default();
        }
        self.owned = false;
        self.mem = None;
        self.inflight = None;
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
        if v.started {
            if let Some(base) = self.dev.lock().stop_queue(i) {
                v.base = base;
            }
            v.started = false;
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
        Ok(self.dev.lock().config().features() | VHOST_USER_F_PROTOCOL_FEATURES)
    }

    fn set_features(&mut self, features: u64) -> Result<()> {
        let offered = self.get_features()?;
        if features & !offered != 0 {
            return Err(Error::InvalidParam);
        }
        self.features = features;
        self.dev
            .lock()
            .set_features(features & !VHOST_USER_F_PROTOCOL_FEATURES);
        // Without protocol features rings start enabled (vhost-user spec).
        let enabled = features & VHOST_USER_F_PROTOCOL_FEATURES == 0;
        for v in &mut self.vrings {
            if !v.started {
                v.enabled = enabled;
            }
        }
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
        let running: Vec<usize> = (0..self.vrings.len())
            .filter(|&i| self.vrings[i].started)
            .collect();
        for &i in &running {
            self.stop(i);
        }
        self.dev.lock().set_memory(mem.clone());
        self.mem = Some(mem);
        for i in running {
            self.try_start(i)?;
        }
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
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> Result<()> {
        let v = self.vring(index)?;
        v.desc = descriptor;
        v.used = used;
        v.avail = available;
        v.addr_set = true;
        self.try_start(index as usize)
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

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> Result<()> {
        Err(err("LOG_SHMFD not offered"))
    }
}
