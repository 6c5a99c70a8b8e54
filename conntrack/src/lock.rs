//! The shard lock: one compare-and-swap to take it, a plain release store
//! to drop it.
//!
//! ```text
//!  lock      CAS false → true (Acquire) ── failed? ─► spin on a plain load, then yield, retry
//!  unlock    store false (Release)          (no locked instruction, no waiter bookkeeping)
//! ```
//!
//! Why not `std::sync::Mutex`: its unlock is a locked exchange (it must
//! learn whether a thread sleeps on the futex), i.e. a second locked
//! instruction per tracked frame, which drains the store buffer (the
//! frame's NAT rewrite, the connection's window update) before the next
//! frame's loads may run. A shard is held for a lookup and one
//! connection's update, or by a control thread for at most 64 slots of a
//! sweep, so a waiter spins briefly and then yields its core: nobody
//! sleeps on it for long, and nothing needs waking. A panic while the lock
//! is held releases it (as the `Mutex` whose poisoning the table ignored).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// Spins on a held lock before yielding the core.
const SPINS: u32 = 128;

/// A value behind a spin lock.
pub(crate) struct SpinLock<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and at most one guard
// exists at a time (the `held` flag, taken with Acquire and dropped with
// Release, orders every access of one holder before the next holder's), as
// `Mutex<T>` is `Sync` for `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// The holder of a [`SpinLock`]; dropping it releases the lock.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    /// An unlocked value.
    pub(crate) fn new(value: T) -> SpinLock<T> {
        SpinLock {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Take the lock, waiting for the holder if any.
    #[inline(always)]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    /// Take the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        self.held
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(SpinGuard { lock: self })
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            // Wait on a plain load (the line stays shared) until it looks free.
            while self.held.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .held
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (see `Sync` above).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock, and `&mut self` makes this
        // the only reference derived from it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.held.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod test {
    use super::SpinLock;
    use std::sync::Arc;

    #[test]
    fn spin_lock_excludes_and_try_lock_fails_while_held() {
        let l = Arc::new(SpinLock::new(0u64));
        {
            let g = l.lock();
            assert!(l.try_lock().is_none());
            drop(g);
        }
        assert!(l.try_lock().is_some());
        // Non-atomic read-modify-writes under the lock from four threads:
        // any overlap would lose increments.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut g = l.lock();
                        let v = *g;
                        std::hint::black_box(&v);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*l.lock(), 80_000);
    }

    #[test]
    fn a_panic_while_held_releases_the_lock() {
        let l = Arc::new(SpinLock::new(1u32));
        let l2 = Arc::clone(&l);
        let r = std::thread::spawn(move || {
            let _g = l2.lock();
            panic!("holder panics");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*l.try_lock().expect("released by the unwinding guard"), 1);
    }
}
