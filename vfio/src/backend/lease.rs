//! A backend lent to a device.
//!
//! A device owns its backend (`Box<dyn Backend>`: the poller calls it with
//! no lock and no indirection beyond the box). A backend that outlives the
//! devices serving it (an SPDK-style bdev, which vhost controllers come and
//! go on: `vswitch`'s `src/storage`) is lent as a [`Lease`]: a backend that
//! forwards every call to the real one and, when the device (with a cache
//! in front, which flushes through the lease as it drops) is dropped, puts
//! the real backend back in its [`Home`]. The cost on the data path is one
//! more indirect call per backend call (`perf` `blk_device`, "device split
//! leased").

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Backend, BackendInfo, IoCompletion, IoRequest, IoStatus, SubmitError};

/// Where a lent backend lives while no device holds it.
pub type Home = Arc<Mutex<Option<Box<dyn Backend>>>>;

/// Locks a home (a panic while it was held leaves a usable slot).
pub fn lock(home: &Home) -> MutexGuard<'_, Option<Box<dyn Backend>>> {
    home.lock().unwrap_or_else(|e| e.into_inner())
}

/// A backend on loan.
pub struct Lease {
    inner: Option<Box<dyn Backend>>,
    home: Home,
}

impl Lease {
    /// Takes the backend out of `home`; `None` if a device already holds it.
    pub fn take(home: &Home) -> Option<Lease> {
        let inner = lock(home).take()?;
        Some(Lease {
            inner: Some(inner),
            home: Arc::clone(home),
        })
    }

    fn be(&self) -> &dyn Backend {
        self.inner
            .as_deref()
            .expect("a lease holds its backend until dropped")
    }

    fn be_mut(&mut self) -> &mut dyn Backend {
        self.inner
            .as_deref_mut()
            .expect("a lease holds its backend until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *lock(&self.home) = self.inner.take();
    }
}

impl Backend for Lease {
    fn info(&self) -> BackendInfo {
        self.be().info()
    }
    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        self.be_mut().submit(req)
    }
    fn synchronous(&self) -> bool {
        self.be().synchronous()
    }
    fn execute(&mut self, req: &IoRequest<'_>) -> IoStatus {
        self.be_mut().execute(req)
    }
    fn commit(&mut self) {
        self.be_mut().commit()
    }
    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.be_mut().poll(out)
    }
    fn inflight(&self) -> usize {
        self.be().inflight()
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.be().wait_fd()
    }
    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        self.be_mut().resize(bytes)
    }
    fn capacity_change(&mut self) -> Option<u64> {
        self.be_mut().capacity_change()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::null::NullBackend;

    #[test]
    fn the_backend_goes_home_when_the_lease_drops() {
        let home: Home = Arc::new(Mutex::new(Some(Box::new(NullBackend::new(1 << 20, 4)))));
        let l = Lease::take(&home).unwrap();
        assert!(lock(&home).is_none());
        assert!(Lease::take(&home).is_none());
        assert_eq!(l.info().capacity, 1 << 20);
        drop(l);
        assert_eq!(lock(&home).as_ref().unwrap().info().capacity, 1 << 20);
    }
}
