//! One pool of large mbufs (64 KiB of data room each) for the segments
//! guests send for the switch to cut (host TSO/UFO: a `gso_type` in the
//! header, VIRTIO 1.2 §5.1.6.2). Such a segment is copied into one large
//! mbuf instead of a chain of 2 KiB ones, which saves the chain's 31
//! allocations and frees and makes the copies out of and into guest
//! memory one long piece each (`vm_net --tso`, own rings: see
//! `perf/README.md`).
//!
//! The pool is made once per process, on the first ring that needs it
//! (a cold path: a device coming up), and never freed: its mbufs may be
//! anywhere in the switch. Where it cannot be made (too little memory)
//! the frames are chained as before, and it is said once.

use std::sync::OnceLock;

use crate::mempool::Mempool;

/// Data room of a large mbuf (its `buf_len` is 16 bits): 65 407 bytes of
/// frame after the headroom; a longer frame continues in a chained mbuf.
pub(crate) const ROOM: u16 = u16::MAX;
/// Large mbufs in the pool (about 32 MiB): a burst of 32 per queue and
/// what transmit queues hold. When they are all out, frames are chained.
const COUNT: u32 = 511;
/// Per-lcore cache of the pool.
const CACHE: u32 = 32;

static POOL: OnceLock<Option<Mempool>> = OnceLock::new();

/// The large pool, made on first use; `None` where it could not be made.
pub(crate) fn pool() -> Option<&'static Mempool> {
    POOL.get_or_init(|| {
        Mempool::pktmbuf("vring_large", COUNT, CACHE, ROOM, -1)
            .map_err(|e| {
                eprintln!("vhost: no pool of large mbufs ({e}): large segments are chained")
            })
            .ok()
    })
    .as_ref()
}
