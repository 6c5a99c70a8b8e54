//! The storage registry: bdevs and vhost-blk controllers created and
//! deleted while the poller runs. CLI flags, TOML and JSON-RPC all build
//! devices through it.
//!
//! ```text
//!  create bdev ─► open backend ─► Bdev { home: Some(backend) }
//!  create controller ─► Lease::take(home) ─► [cache] ─► BlkDevice ─► PollGroup::add
//!                                                         └─► BlkServer thread (socket)
//!  delete controller ─► stop its server ─► PollGroup::remove ─► drain + flush
//!                       ─► last Arc dropped (poller refreshed) ─► backend back home
//!  delete bdev ─► (not while a controller holds it) ─► backend dropped (logout, close)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpc::spdk::info::RateLimits;
use rpc::spdk::params::{IscsiCreate, VhostBlkCreate};
use rpc::spdk::{Create, Module};
use rpc::RpcError;
use vfio::backend::{self, Backend};
use vfio::blk::{BlkStats, QosLimits};
use vfio::cache::{CacheConfig, CacheCounters, Eviction, WriteMode};
use vfio::poller::{PollGroup, SharedDevice};

use super::bdev::{self, Bdev};
use super::device::{make_device, DeviceSpec};
use vfio::backend::lease::{self, Lease};

/// Gives an iSCSI session its transport: `Some` (a user-space TCP
/// connection), or `None` for the kernel's TCP.
pub type TransportFn =
    Box<dyn FnMut() -> Result<Option<Box<dyn blk_iscsi::link::Transport>>, String> + Send>;

/// A vhost-blk controller.
pub struct Controller {
    /// Name.
    pub name: String,
    /// The bdev it serves.
    pub bdev: String,
    /// Its vhost-user socket.
    pub socket: PathBuf,
    /// The device.
    pub dev: SharedDevice,
    /// The cache's counters, if cached.
    pub cache: Option<Arc<CacheCounters>>,
    /// Its params (what the saved configuration replays).
    pub params: VhostBlkCreate,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Controller {
    /// Whether a front end has started the device's rings.
    pub fn connected(&self) -> bool {
        let d = self.dev.lock();
        (0..d.num_queues()).any(|q| d.queue_running(q))
    }
}

/// Bdevs and controllers.
pub struct Storage {
    group: Arc<PollGroup>,
    vhost_dir: PathBuf,
    max_inflight: usize,
    pub(super) bdevs: Vec<Bdev>,
    pub(super) ctrlrs: Vec<Controller>,
    transport: Option<TransportFn>,
    next_index: usize,
    malloc_seq: usize,
}

/// Request queues of a controller made without `num_queues`: QEMU's
/// vhost-user-blk-pci asks for as many as the guest has vCPUs by default
/// and refuses a back end that offers fewer; queues the driver does not
/// use cost nothing but an idle check.
pub const DEFAULT_QUEUES: u16 = 16;

/// How long a deleted controller's device may take to be let go by the
/// poller (one poll round, normally microseconds).
const RELEASE_WAIT: Duration = Duration::from_secs(3);
/// How long a deleted controller's requests in flight and flush may take.
const DELETE_FLUSH: Duration = Duration::from_secs(30);

fn einval(why: impl std::fmt::Display) -> RpcError {
    RpcError::errno(libc::EINVAL, why)
}

impl Storage {
    /// An empty registry whose devices `group` polls; controllers made by
    /// name get their socket in `vhost_dir` (SPDK's `-S`).
    pub fn new(group: Arc<PollGroup>, vhost_dir: &Path, max_inflight: usize) -> Storage {
        Storage {
            group,
            vhost_dir: vhost_dir.to_path_buf(),
            max_inflight,
            bdevs: Vec::new(),
            ctrlrs: Vec::new(),
            transport: None,
            next_index: 0,
            malloc_seq: 0,
        }
    }

    /// Where iSCSI sessions get their transport (default: kernel TCP).
    pub fn set_transport(&mut self, f: TransportFn) {
        self.transport = Some(f);
    }

    /// The controllers' devices and caches (for stats).
    pub fn devices(&self) -> (Vec<SharedDevice>, Vec<Option<Arc<CacheCounters>>>) {
        self.ctrlrs
            .iter()
            .map(|c| (Arc::clone(&c.dev), c.cache.clone()))
            .unzip()
    }

    /// The controllers.
    pub fn controller_list(&self) -> &[Controller] {
        &self.ctrlrs
    }

    pub(super) fn bdev(&self, name: &str) -> Option<&Bdev> {
        self.bdevs.iter().find(|b| b.name == name)
    }

    /// What bdev `name` is, in the CLI's words (reports).
    pub fn bdev_label(&self, name: &str) -> String {
        self.bdev(name)
            .map_or_else(|| name.to_owned(), |b| bdev::spec_text(&b.create))
    }

    pub(super) fn bdev_mut(&mut self, name: &str) -> Option<&mut Bdev> {
        self.bdevs.iter_mut().find(|b| b.name == name)
    }

    pub(super) fn holder(&self, bdev: &str) -> Option<&Controller> {
        self.ctrlrs.iter().find(|c| c.bdev == bdev)
    }

    /// Creates a bdev (SPDK's `bdev_*_create`); returns its name.
    pub fn create_bdev(&mut self, mut req: Create) -> Result<String, RpcError> {
        if let Create::Malloc(p) = &mut req {
            if p.name.is_none() {
                // bdev_malloc.c: "Malloc%d" from a counter.
                while self.bdev(&format!("Malloc{}", self.malloc_seq)).is_some() {
                    self.malloc_seq += 1;
                }
                p.name = Some(format!("Malloc{}", self.malloc_seq));
            }
        }
        let name = bdev::name_of(&req).unwrap_or_default().to_owned();
        if name.is_empty() || name.contains('/') || name.len() > 255 {
            return Err(einval(format!("bdev name `{name}`")));
        }
        if self.bdev(&name).is_some() {
            // bdev.c bdev_name_add: "Bdev name %s already exists" -EEXIST.
            return Err(RpcError::errno(
                libc::EEXIST,
                format!("bdev {name} already exists"),
            ));
        }
        let uuid = uuid_of(&mut req)?;
        let (be, block_size) = self.open(&req)?;
        let info = be.info();
        if info.capacity < block_size as u64 {
            return Err(einval(format!("bdev {name}: empty")));
        }
        eprintln!(
            "bdev {name}: {} of {} blocks of {block_size} bytes",
            bdev::product_name(bdev::module_of(&req)),
            info.capacity / block_size as u64
        );
        self.bdevs.push(Bdev {
            name: name.clone(),
            module: bdev::module_of(&req),
            create: req,
            block_size,
            uuid,
            home: Arc::new(std::sync::Mutex::new(Some(be))),
            info,
            qos: RateLimits::default(),
            past: BlkStats::default(),
        });
        Ok(name)
    }

    /// Opens the backend a creation request describes, and its block size.
    pub(super) fn open(&mut self, req: &Create) -> Result<(Box<dyn Backend>, u32), RpcError> {
        let n = self.max_inflight;
        let size = |blocks: u64, bs: u32| {
            blocks
                .checked_mul(bs as u64)
                .filter(|b| *b > 0)
                .ok_or_else(|| einval("Disk num_blocks must be greater than 0"))
        };
        match req {
            Create::Null(p) => {
                bdev::check_no_md(p.md_size, p.dif_type)?;
                let bs = bdev::check_block_size(p.block_size)?;
                let be = backend::null::NullBackend::new(size(p.num_blocks, bs)?, n);
                Ok((Box::new(be), bs))
            }
            Create::Malloc(p) => {
                bdev::check_no_md(p.md_size, p.dif_type)?;
                let bs = bdev::check_block_size(p.block_size)?;
                let be = backend::mem::MemBackend::new(size(p.num_blocks, bs)?, n)
                    .map_err(|e| RpcError::errno(libc::ENOMEM, e))?;
                Ok((Box::new(be), bs))
            }
            Create::Aio(p) => {
                let bs = bdev::check_block_size(p.block_size.unwrap_or(512))?;
                let be = backend::file::FileBackend::open(&p.filename, n).map_err(|e| {
                    RpcError::errno(e.raw_os_error().unwrap_or(libc::EIO), &p.filename)
                })?;
                let be: Box<dyn Backend> = Box::new(be);
                if p.readonly == Some(true) {
                    return Ok((Box::new(ReadOnly(be)), bs));
                }
                Ok((be, bs))
            }
            Create::Iscsi(p) => {
                let spec = iscsi_spec(p)?;
                let be = match self.transport.as_mut().map(|f| f()).transpose() {
                    Ok(Some(Some(t))) => blk_iscsi::IscsiBackend::connect_with(&spec, n, t),
                    Ok(_) => blk_iscsi::IscsiBackend::connect(&spec, n),
                    Err(e) => Err(e),
                }
                .map_err(|e| RpcError::errno(libc::EIO, e))?;
                let bs = match be.geometry().capacity.block_size {
                    4096 => 4096,
                    _ => 512,
                };
                Ok((Box::new(be), bs))
            }
        }
    }

    /// Deletes a bdev of `module` (SPDK's `bdev_*_delete`).
    pub fn delete_bdev(&mut self, module: Module, name: &str) -> Result<(), RpcError> {
        let i = self
            .bdevs
            .iter()
            .position(|b| b.name == name && b.module == module)
            .ok_or_else(|| RpcError::errno(libc::ENODEV, format!("bdev {name}")))?;
        if let Some(c) = self.holder(name) {
            return Err(RpcError::errno(
                libc::EBUSY,
                format!(
                    "bdev {name} is served by vhost controller {}: delete the controller first",
                    c.name
                ),
            ));
        }
        let b = self.bdevs.remove(i);
        drop(lease::lock(&b.home).take());
        eprintln!("bdev {name}: deleted");
        Ok(())
    }

    /// Creates a vhost-blk controller (SPDK's `vhost_create_blk_controller`);
    /// its socket is `p.socket` if given (the CLI's), else `VHOST_DIR/ctrlr`.
    pub fn create_controller(&mut self, p: VhostBlkCreate) -> Result<(), RpcError> {
        let name = p.ctrlr.clone();
        if name.is_empty() || name.contains('/') {
            return Err(einval(format!("controller name `{name}`")));
        }
        if self.ctrlrs.iter().any(|c| c.name == name) {
            // vhost.c vhost_dev_register: "vhost controller %s already exists." -EEXIST.
            return Err(RpcError::errno(
                libc::EEXIST,
                format!("vhost controller {name} already exists"),
            ));
        }
        if let Some(t) = p.transport.as_deref().filter(|t| *t != "vhost_user_blk") {
            // vhost_blk.c: "Transport type '%s' unavailable." -EINVAL.
            return Err(einval(format!("Transport type '{t}' unavailable")));
        }
        let queues = p.num_queues.unwrap_or(DEFAULT_QUEUES);
        if !(1..=64).contains(&queues) {
            return Err(einval(format!("num_queues {queues}: 1 to 64")));
        }
        let cache = cache_of(&p)?;
        let socket = p
            .socket
            .as_ref()
            .map_or_else(|| self.vhost_dir.join(&name), PathBuf::from);
        // BlkServer::bind replaces what is at the path: only ever a stale
        // socket, never a file a caller names by mistake (or on purpose).
        if let Ok(m) = std::fs::symlink_metadata(&socket) {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(RpcError::errno(
                    libc::EEXIST,
                    format!("{} exists and is not a socket", socket.display()),
                ));
            }
        }
        let index = self.next_index;
        let b = self
            .bdev(&p.dev_name)
            .ok_or_else(|| RpcError::errno(libc::ENODEV, format!("bdev {}", p.dev_name)))?;
        let lease = match Lease::take(&b.home) {
            Some(l) => l,
            None => {
                // bdev.c: a second exclusive claim is -EPERM ("already claimed").
                let by = self.holder(&p.dev_name).map_or("", |c| c.name.as_str());
                return Err(RpcError::errno(
                    libc::EPERM,
                    format!(
                        "bdev {} is already claimed by vhost controller {by}",
                        p.dev_name
                    ),
                ));
            }
        };
        let (block_size, qos) = (b.block_size, b.qos);
        let served = make_device(
            DeviceSpec {
                name: name.clone(),
                socket: &socket,
                label: &format!("bdev {}", p.dev_name),
                index,
                cache,
                block_size,
                queues,
                read_only: p.readonly == Some(true),
            },
            Box::new(lease),
        )
        .map_err(|e| RpcError::errno(libc::EINVAL, e))?;
        self.next_index += 1;
        apply_qos(&served.dev, qos);
        self.group.add(Arc::clone(&served.dev));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, server) = (Arc::clone(&stop), served.server);
        let thread = std::thread::Builder::new()
            .name("vswitch-vhost".into())
            .spawn(move || {
                if let Err(e) = server.run(&st) {
                    eprintln!("vhost-user server {}: {e}", server.path().display());
                }
            })
            .map_err(|e| RpcError::errno(libc::ENOMEM, format!("vhost-user thread: {e}")))?;
        self.ctrlrs.push(Controller {
            name,
            bdev: p.dev_name.clone(),
            socket,
            dev: served.dev,
            cache: served.cache,
            params: p,
            stop,
            thread: Some(thread),
        });
        Ok(())
    }

    /// Deletes a controller (SPDK's `vhost_delete_controller`): refused
    /// while a front end is connected (SPDK: -EBUSY); the bdev stays.
    pub fn delete_controller(&mut self, name: &str) -> Result<(), RpcError> {
        let i = self
            .ctrlrs
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| RpcError::errno(libc::ENODEV, format!("vhost controller {name}")))?;
        if self.ctrlrs[i].connected() {
            return Err(RpcError::errno(
                libc::EBUSY,
                format!("vhost controller {name} has a connected front end"),
            ));
        }
        let mut c = self.ctrlrs.remove(i);
        c.stop.store(true, Ordering::Release);
        if let Some(t) = c.thread.take() {
            let _ = t.join();
        }
        self.group.remove(&c.dev);
        let stats = {
            let mut d = c.dev.lock();
            if let Err(e) = d.drain_and_flush(DELETE_FLUSH) {
                eprintln!("vhost controller {name}: {e}");
            }
            d.stats()
        };
        let bdev = c.bdev.clone();
        drop(c);
        let Some(b) = self.bdev_mut(&bdev) else {
            return Ok(());
        };
        add_stats(&mut b.past, &stats);
        let deadline = Instant::now() + RELEASE_WAIT;
        while b.claimed() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        eprintln!("vhost controller {name}: deleted");
        if b.claimed() {
            return Err(RpcError::errno(
                libc::EBUSY,
                format!("vhost controller {name} deleted, but the poller still holds bdev {bdev}"),
            ));
        }
        Ok(())
    }

    /// Stops every controller's server (process shutdown); the devices
    /// stay for the final flush.
    pub fn stop_servers(&mut self) -> Vec<JoinHandle<()>> {
        for c in &self.ctrlrs {
            c.stop.store(true, Ordering::Release);
        }
        self.ctrlrs
            .iter_mut()
            .filter_map(|c| c.thread.take())
            .collect()
    }

    /// Current counters of a bdev: its past controllers' plus its
    /// controller's.
    pub fn bdev_stats(&self, b: &Bdev) -> BlkStats {
        let mut s = b.past;
        if let Some(c) = self.holder(&b.name) {
            add_stats(&mut s, &c.dev.lock().stats());
        }
        s
    }
}

/// The session a `bdev_iscsi_create` describes: the URL (portals, CHAP,
/// timers: blk-iscsi's form), `portals` appended, and `initiator_iqn` as
/// our name unless the URL's `initiator_name=` sets one.
fn iscsi_spec(p: &IscsiCreate) -> Result<blk_iscsi::IscsiSpec, RpcError> {
    let mut url = p.url.clone();
    for portal in p.portals.iter().flatten() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("portal=");
        url.push_str(portal);
    }
    let mut spec = blk_iscsi::IscsiSpec::parse(&url).map_err(einval)?;
    // RFC 7143 section 4.2.7.1: iqn., eui. or naa. names.
    let lower = p.initiator_iqn.to_ascii_lowercase();
    if !["iqn.", "eui.", "naa."]
        .iter()
        .any(|f| lower.starts_with(f))
        || p.initiator_iqn.len() > 223
    {
        return Err(einval(format!(
            "initiator_iqn {}: not an iSCSI name",
            p.initiator_iqn
        )));
    }
    spec.initiator
        .get_or_insert_with(|| p.initiator_iqn.clone());
    Ok(spec)
}

/// Fills in (and checks) a creation request's UUID.
fn uuid_of(req: &mut Create) -> Result<String, RpcError> {
    let slot = match req {
        Create::Null(p) => &mut p.uuid,
        Create::Malloc(p) => &mut p.uuid,
        Create::Aio(p) => &mut p.uuid,
        // bdev_iscsi_create has no uuid param: made per run, as SPDK
        // derives it from the LU only when the target reports one.
        Create::Iscsi(_) => return Ok(bdev::new_uuid()),
    };
    match slot {
        Some(u) => {
            bdev::check_uuid(u)?;
            Ok(u.to_ascii_lowercase())
        }
        None => {
            let u = bdev::new_uuid();
            *slot = Some(u.clone());
            Ok(u)
        }
    }
}

/// The block cache a controller's extra params ask for.
fn cache_of(p: &VhostBlkCreate) -> Result<Option<(CacheConfig, Option<PathBuf>)>, RpcError> {
    let Some(size) = &p.cache else {
        if p.cache_mode.is_some() || p.cache_policy.is_some() || p.cache_meta.is_some() {
            return Err(einval("cache_mode, cache_policy and cache_meta need cache"));
        }
        return Ok(None);
    };
    let bytes = match size {
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| einval("cache: bytes"))?,
        serde_json::Value::String(s) => backend::parse_size(s).map_err(einval)?,
        _ => return Err(einval("cache: a size in bytes or like \"64M\"")),
    };
    let mode = match p.cache_mode.as_deref() {
        None | Some("writethrough") => WriteMode::WriteThrough,
        Some("writeback") => WriteMode::WriteBack,
        Some(m) => return Err(einval(format!("cache_mode {m}: writethrough or writeback"))),
    };
    let mut cfg = CacheConfig::new(bytes, mode);
    cfg.eviction = match p.cache_policy.as_deref() {
        None | Some("clock") => Eviction::Clock,
        Some("2q") => Eviction::TwoQ,
        Some(m) => return Err(einval(format!("cache_policy {m}: clock or 2q"))),
    };
    Ok(Some((cfg, p.cache_meta.as_ref().map(PathBuf::from))))
}

/// Applies a bdev's QoS limits to the device serving it (the device picks
/// them up at its next poll step; `vfio::blk::qos`).
pub(super) fn apply_qos(dev: &SharedDevice, qos: RateLimits) {
    dev.lock().qos_handle().set(QosLimits {
        rw_ios_per_sec: qos.rw_ios_per_sec,
        rw_mbytes_per_sec: qos.rw_mbytes_per_sec,
        r_mbytes_per_sec: qos.r_mbytes_per_sec,
        w_mbytes_per_sec: qos.w_mbytes_per_sec,
    });
}

fn add_stats(a: &mut BlkStats, b: &BlkStats) {
    a.reads += b.reads;
    a.writes += b.writes;
    a.flushes += b.flushes;
    a.discards += b.discards;
    a.get_ids += b.get_ids;
    a.bytes_read += b.bytes_read;
    a.bytes_written += b.bytes_written;
    a.errors += b.errors;
    a.queue_resets += b.queue_resets;
    a.interrupts += b.interrupts;
}

/// A backend whose writes are refused (`bdev_aio_create --readonly`).
struct ReadOnly(Box<dyn Backend>);

impl Backend for ReadOnly {
    fn info(&self) -> backend::BackendInfo {
        backend::BackendInfo {
            read_only: true,
            ..self.0.info()
        }
    }
    fn submit(&mut self, req: &backend::IoRequest<'_>) -> Result<(), backend::SubmitError> {
        self.0.submit(req)
    }
    fn commit(&mut self) {
        self.0.commit()
    }
    fn poll(&mut self, out: &mut Vec<backend::IoCompletion>) -> usize {
        self.0.poll(out)
    }
    fn inflight(&self) -> usize {
        self.0.inflight()
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.0.wait_fd()
    }
    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        self.0.resize(bytes)
    }
    fn capacity_change(&mut self) -> Option<u64> {
        self.0.capacity_change()
    }
}
