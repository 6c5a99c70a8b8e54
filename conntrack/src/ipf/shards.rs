//! The fragments in process of every forwarding lcore: [`Reassembler`]s
//! behind the table's spin lock (`crate::lock`), one per shard, a list's
//! shard picked by its key's hash. Fragments of one datagram meet in one
//! shard whichever lcore (rx queue, port) receives them, as in OVS's
//! single `ipf` (one mutex there; shards here so that lcores reassembling
//! different datagrams do not wait on each other).
//!
//! ```text
//!  lcore k: fragment ─► ListKey::hash ─► shard (hash >> 61) ─ lock ─► Reassembler::add / take
//!  any thread:  Shards::expire(now) ─► shards whose earliest expiry passed (an atomic each,
//!               read without the lock) ─ try_lock ─► Reassembler::expire
//! ```
//!
//! Frames that are not fragments never come here; everything is
//! preallocated at [`Shards::new`].

use core::sync::atomic::{AtomicU64, Ordering};

use super::{Ipf, ListKey, Reassembler};
use crate::lock::{SpinGuard, SpinLock};

/// Shards (a power of two).
pub const SHARDS: usize = 8;

/// One shard: its reassembler and, readable without the lock, the
/// earliest expiry of its lists.
struct Shard<T> {
    reass: SpinLock<Reassembler<T>>,
    next_expiry: AtomicU64,
}

/// Fragment lists shared by every lcore (see the module docs).
pub struct Shards<T> {
    shards: Box<[Shard<T>]>,
}

/// A locked shard; dropping it publishes the shard's earliest expiry and
/// releases the lock.
pub struct ShardGuard<'a, T> {
    guard: SpinGuard<'a, Reassembler<T>>,
    next_expiry: &'a AtomicU64,
}

impl<T> core::ops::Deref for ShardGuard<'_, T> {
    type Target = Reassembler<T>;
    fn deref(&self) -> &Reassembler<T> {
        &self.guard
    }
}

impl<T> core::ops::DerefMut for ShardGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut Reassembler<T> {
        &mut self.guard
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    fn drop(&mut self) {
        self.next_expiry
            .store(self.guard.next_expiry(), Ordering::Relaxed);
    }
}

impl<T> Shards<T> {
    /// [`SHARDS`] reassemblers of `cap` fragments each.
    pub fn new(cap: u32) -> Shards<T> {
        Shards {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    reass: SpinLock::new(Reassembler::new(cap)),
                    next_expiry: AtomicU64::new(u64::MAX),
                })
                .collect(),
        }
    }

    /// The shard of `key`'s list, locked.
    pub fn lock(&self, key: &ListKey) -> ShardGuard<'_, T> {
        let s = &self.shards[(key.hash() >> 61) as usize & (SHARDS - 1)];
        ShardGuard {
            guard: s.reass.lock(),
            next_expiry: &s.next_expiry,
        }
    }

    /// Drop the fragments of every list whose time is up, handing each to
    /// `dropped`; returns how many. Shards with nothing due are not
    /// locked; a shard another thread holds is left for the next call.
    pub fn expire(&self, ipf: &Ipf, now: u64, mut dropped: impl FnMut(T)) -> usize {
        let mut n = 0;
        for s in self.shards.iter() {
            if s.next_expiry.load(Ordering::Relaxed) > now {
                continue;
            }
            if let Some(mut g) = s.reass.try_lock() {
                n += g.expire(ipf, now, &mut dropped);
                s.next_expiry.store(g.next_expiry(), Ordering::Relaxed);
            }
        }
        n
    }

    /// Fragments held in every shard.
    pub fn held(&self) -> usize {
        self.shards.iter().map(|s| s.reass.lock().held()).sum()
    }
}
