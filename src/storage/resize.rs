//! Size changes: `bdev_null_resize` (a new size) and `bdev_aio_rescan`
//! (the file's size now).

use rpc::spdk::{Create, Module, Resize};
use rpc::RpcError;

use super::registry::Storage;
use vfio::backend::lease;

impl Storage {
    /// Resizes bdev `name` of `module`.
    pub fn resize(&mut self, module: Module, name: &str, how: Resize) -> Result<(), RpcError> {
        let b = self
            .bdev(name)
            .filter(|b| b.module == module)
            .ok_or_else(|| RpcError::errno(libc::ENODEV, format!("bdev {name}")))?;
        let bs = b.block_size as u64;
        let bytes = match (how, &b.create) {
            (Resize::To(bytes), Create::Null(_)) => {
                // bdev_null.c: the size may only grow.
                if bytes < b.num_blocks(None) * bs {
                    return Err(RpcError::errno(
                        libc::EINVAL,
                        "new bdev size must not be less than current bdev size",
                    ));
                }
                bytes
            }
            (Resize::Rescan, Create::Aio(p)) => std::fs::metadata(&p.filename)
                .map_err(|e| RpcError::errno(e.raw_os_error().unwrap_or(libc::EIO), &p.filename))?
                .len(),
            _ => return Err(RpcError::errno(libc::ENOTSUP, "resize")),
        };
        let bytes = bytes / bs * bs;
        let einval = |e: String| RpcError::errno(libc::EINVAL, e);
        let new = match self.holder(name) {
            // Online: the device tells the driver (config-change message).
            Some(c) => {
                let (new, told) = c.dev.lock().resize(bytes).map_err(einval)?;
                eprintln!(
                    "bdev {name}: resized to {new} bytes under controller {}{}",
                    c.name,
                    if told { ", driver notified" } else { "" }
                );
                new
            }
            None => {
                let b = self.bdev(name).expect("found above");
                let mut home = lease::lock(&b.home);
                let be = home.as_mut().ok_or_else(|| {
                    RpcError::errno(libc::EBUSY, format!("bdev {name} is being released"))
                })?;
                be.resize(bytes).map_err(einval)?
            }
        };
        let b = self.bdev_mut(name).expect("found above");
        b.info.capacity = new;
        if let Create::Null(p) = &mut b.create {
            p.num_blocks = new / bs;
        }
        eprintln!("bdev {name}: now {} blocks", new / bs);
        Ok(())
    }
}
