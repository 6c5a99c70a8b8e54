//! Bdevs: named backends (SPDK's block devices) that vhost controllers
//! serve. A bdev is made from SPDK's creation params (null, malloc, aio,
//! iscsi) or from the CLI's `--backend` spec, which maps onto the same
//! params, so both are saved and restored the same way.

use rpc::spdk::info::{IoTypes, RateLimits};
use rpc::spdk::params::{AioCreate, IscsiCreate, MallocCreate, NullCreate};
use rpc::spdk::{Create, Module};
use rpc::RpcError;
use serde_json::{json, Value};
use vfio::backend::{self, BackendInfo};
use vfio::blk::BlkStats;

use vfio::backend::lease::{self, Home};

/// A bdev.
pub struct Bdev {
    /// Name.
    pub name: String,
    /// The module that made it.
    pub module: Module,
    /// Its creation params (UUID and name filled in): what the saved
    /// configuration replays.
    pub create: Create,
    /// Logical block size.
    pub block_size: u32,
    /// UUID.
    pub uuid: String,
    /// The backend, while no controller holds it.
    pub home: Home,
    /// What the backend offered when it was opened.
    pub info: BackendInfo,
    /// QoS limits (applied to the controller's device).
    pub qos: RateLimits,
    /// Counters of controllers that served it before.
    pub past: BlkStats,
}

/// A `--backend` spec (`null:SIZE`, `mem:SIZE`, `file:PATH`,
/// `iscsi://...`) as SPDK creation params for bdev `name`.
pub fn create_of_spec(name: &str, spec: &str, block_size: u32) -> Result<Create, String> {
    let blocks = |size: &str| -> Result<u64, String> {
        let bytes = backend::parse_size(size)?;
        if bytes % block_size as u64 != 0 {
            return Err(format!(
                "backend `{spec}`: size is not a multiple of the block size {block_size}"
            ));
        }
        Ok(bytes / block_size as u64)
    };
    if spec.starts_with("iscsi://") {
        return Ok(Create::Iscsi(IscsiCreate {
            name: name.to_owned(),
            url: spec.to_owned(),
            initiator_iqn: blk_iscsi::backend::INITIATOR.to_owned(),
            portals: None,
        }));
    }
    let (kind, arg) = spec
        .split_once(':')
        .ok_or_else(|| format!("backend `{spec}`: expected KIND:ARG"))?;
    Ok(match kind {
        "null" => Create::Null(NullCreate {
            name: name.to_owned(),
            num_blocks: blocks(arg)?,
            block_size,
            ..Default::default()
        }),
        "mem" => Create::Malloc(MallocCreate {
            name: Some(name.to_owned()),
            num_blocks: blocks(arg)?,
            block_size,
            ..Default::default()
        }),
        "file" => Create::Aio(AioCreate {
            name: name.to_owned(),
            filename: arg.to_owned(),
            block_size: Some(block_size),
            ..Default::default()
        }),
        _ => {
            return Err(format!(
                "backend `{spec}`: kind must be file, null or mem (or an iscsi:// URL)"
            ))
        }
    })
}

/// SPDK's product name of a module.
pub fn product_name(m: Module) -> &'static str {
    match m {
        Module::Null => "Null disk",
        Module::Malloc => "Malloc disk",
        Module::Aio => "AIO disk",
        Module::Iscsi => "iSCSI LUN",
    }
}

/// The module of a creation request.
pub fn module_of(c: &Create) -> Module {
    match c {
        Create::Null(_) => Module::Null,
        Create::Malloc(_) => Module::Malloc,
        Create::Aio(_) => Module::Aio,
        Create::Iscsi(_) => Module::Iscsi,
    }
}

/// A bdev's backend in the CLI's words (`null:SIZE`, `file:PATH`, ...).
pub fn spec_text(c: &Create) -> String {
    match c {
        Create::Null(p) => format!("null:{}", p.num_blocks * p.block_size as u64),
        Create::Malloc(p) => format!("mem:{}", p.num_blocks * p.block_size as u64),
        Create::Aio(p) => format!("file:{}", p.filename),
        Create::Iscsi(p) => redact(&p.url),
    }
}

/// The module of bdev `name` (Null if there is none).
pub fn module_of_name(s: &super::Storage, name: &str) -> Module {
    s.bdev(name).map_or(Module::Null, |b| b.module)
}

/// The name a creation request gives.
pub fn name_of(c: &Create) -> Option<&str> {
    match c {
        Create::Null(p) => Some(&p.name),
        Create::Malloc(p) => p.name.as_deref(),
        Create::Aio(p) => Some(&p.name),
        Create::Iscsi(p) => Some(&p.name),
    }
}

/// Checks a block size: the device serves 512 and 4096 (virtio-blk
/// `blk_size`), SPDK any multiple of 512.
pub fn check_block_size(bs: u32) -> Result<u32, RpcError> {
    match bs {
        512 | 4096 => Ok(bs),
        _ => Err(RpcError::errno(
            libc::EINVAL,
            format!("block size {bs}: 512 or 4096 here"),
        )),
    }
}

/// Refuses metadata and protection information (no DIF/DIX here).
pub fn check_no_md(md_size: Option<u32>, dif_type: Option<i32>) -> Result<(), RpcError> {
    if md_size.unwrap_or(0) != 0 || dif_type.unwrap_or(0) != 0 {
        return Err(RpcError::errno(
            libc::ENOTSUP,
            "metadata and protection information (md_size, dif_type) are not supported here",
        ));
    }
    Ok(())
}

/// A fresh random (version 4) UUID.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`, which is
    // valid and exclusively borrowed for the call.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // No entropy source: time and pid still make it unique enough for
        // a name (it is not a secret).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ ((std::process::id() as u128) << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Checks a UUID's text form (8-4-4-4-12 hex digits), as `spdk_uuid_parse`.
pub fn check_uuid(u: &str) -> Result<(), RpcError> {
    let ok = u.len() == 36
        && u.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(RpcError::errno(libc::EINVAL, "Failed to parse bdev UUID"))
    }
}

impl Bdev {
    /// Blocks now (the device's capacity while a controller holds it).
    pub fn num_blocks(&self, capacity: Option<u64>) -> u64 {
        let cap = capacity
            .or_else(|| lease::lock(&self.home).as_ref().map(|b| b.info().capacity))
            .unwrap_or(self.info.capacity);
        cap / self.block_size as u64
    }

    /// Whether a controller holds the backend.
    pub fn claimed(&self) -> bool {
        lease::lock(&self.home).is_none()
    }

    /// The supported I/O types.
    pub fn io_types(&self) -> IoTypes {
        IoTypes {
            read: true,
            write: !self.info.read_only,
            unmap: self.info.discard,
            flush: self.info.flush,
            reset: false,
            write_zeroes: self.info.write_zeroes,
            ..IoTypes::default()
        }
    }

    /// `driver_specific` of `bdev_get_bdevs`.
    pub fn driver_specific(&self) -> Value {
        match &self.create {
            Create::Aio(p) => json!({"aio": {
                "filename": p.filename,
                "block_size_override": p.block_size.is_some(),
                "readonly": p.readonly.unwrap_or(false),
                "fallocate": p.fallocate.unwrap_or(false),
            }}),
            Create::Iscsi(p) => json!({"iscsi": {
                "initiator_name": p.initiator_iqn,
                "url": redact(&p.url),
                "portals": p.portals,
            }}),
            _ => json!({}),
        }
    }
}

/// The URL without CHAP secrets (`user%secret@` and `*_password=`).
pub fn redact(url: &str) -> String {
    blk_iscsi::spec::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let (a, b) = (new_uuid(), new_uuid());
        check_uuid(&a).unwrap();
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert!(check_uuid("not-a-uuid").is_err());
    }

    #[test]
    fn cli_specs_map_to_spdk_params() {
        match create_of_spec("d", "null:1M", 512).unwrap() {
            Create::Null(p) => assert_eq!((p.num_blocks, p.block_size), (2048, 512)),
            c => panic!("{c:?}"),
        }
        match create_of_spec("d", "mem:64K", 4096).unwrap() {
            Create::Malloc(p) => assert_eq!(p.num_blocks, 16),
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            create_of_spec("d", "file:/x", 512).unwrap(),
            Create::Aio(_)
        ));
        assert!(create_of_spec("d", "tape:/x", 512).is_err());
    }

    #[test]
    fn secrets_stay_out_of_listings() {
        assert_eq!(
            redact("iscsi://u%s3cret@h/iqn.a:b/0?target_user=t&target_password=p"),
            "iscsi://u%***@h/iqn.a:b/0?target_user=t&target_password=***"
        );
    }
}
