//! The fast path of `net_vhost` ports straight into DPDK's vhost library.
//!
//! The `net_vhost` PMD keeps what it is good at: the vhost-user socket
//! (server or client mode, reconnecting), the guest's negotiation, link
//! state and queue state. Its burst functions, though, wrap
//! `rte_vhost_dequeue_burst` / `rte_vhost_enqueue_burst` with per-packet
//! work this crate does not need (statistics per packet, a VLAN and
//! checksum check per packet, one `rte_pktmbuf_free` per sent packet).
//! Queues of a `net_vhost` port ([`crate::Port::rx_queue`]) call the
//! vhost library with the guest's device id (`vid`) instead:
//!
//! ```text
//! rx: gate.busy=1 ─► vid (or -1: no guest) ─► rte_vhost_dequeue_burst(vid, 2q+1, pool) ─► gate.busy=0
//!     ─► per frame: mbuf.port = port id (packet-in needs it), bytes += pkt_len
//! tx: gate.busy=1 ─► rte_vhost_enqueue_burst(vid, 2q) (copies into the guest) ─► gate.busy=0
//!     ─► rte_pktmbuf_free_bulk(sent)
//! ```
//!
//! Device lifetime: a vid names a `struct virtio_net` the vhost library
//! frees when the guest goes away (disconnect, reset, `GET_VRING_BASE`):
//! it calls the PMD's `destroy_device()` first, which raises
//! `RTE_ETH_EVENT_INTR_LSC` synchronously (`rte_eth_dev_callback_process`,
//! DPDK 22.11 `drivers/net/vhost/rte_eth_vhost.c`) before returning, and
//! only then frees the device. This module's LSC callback stores vid = -1
//! and waits until no queue of the port is inside a vhost call (each
//! queue's `busy` flag, sequentially consistent on both sides, as Dekker's
//! protocol: either the poller sees -1, or the callback sees it busy and
//! waits). The PMD's `new_device()` raises the same event after it set the
//! queues up: the callback then reads the new vid
//! (`rte_eth_vhost_get_vid_from_port_id`) if the port is started and its
//! link up. Within a live device the vhost library itself guards each ring
//! (`vq->access_lock`, `vq->enabled`): a ring the guest has not enabled
//! gives and takes nothing.
//!
//! The PMD's rx checksum completion (`rx_sw_csum`) is off for ports
//! configured with rx checksum offloads (as the switch configures every
//! vhost port), and its tx one (`tx_sw_csum`) only acts on frames flagged
//! for checksum offload, which the switch flags only towards guests that
//! negotiated `VIRTIO_NET_F_GUEST_CSUM`: nothing of them is lost here.
//! Ports configured with VLAN stripping keep the PMD path.
//!
//! Counters: packets and bytes per queue, one writer each, added to the
//! port's `rte_eth_stats` by [`crate::stats_of`].

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use crate::burst::Burst;
use crate::mempool::Mempool;

/// One queue's in-call flag and counters, on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Gate {
    /// Set while the queue's poller is inside a vhost library call.
    busy: AtomicBool,
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// A `net_vhost` port's guest connection as its queues see it.
pub(crate) struct VhostLink {
    port: u16,
    /// The guest's vhost device id, -1 when there is none (or the port is
    /// stopped).
    vid: AtomicI32,
    /// Serialises the vid updates (the LSC callback, start and stop).
    update: Mutex<bool>,
    rx: Box<[Gate]>,
    tx: Box<[Gate]>,
    /// Counter values at the last [`VhostLink::reset_stats`].
    base: Mutex<Totals>,
    /// The pool dequeued frames come from (the rx queues' pool).
    pool: Arc<Mempool>,
}

/// Summed counters of one port's direct queues.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    pub ipackets: u64,
    pub ibytes: u64,
    pub opackets: u64,
    pub obytes: u64,
    pub q_ipackets: [u64; crate::QUEUE_STAT_COUNTERS],
    pub q_opackets: [u64; crate::QUEUE_STAT_COUNTERS],
}

const MAX_PORTS: usize = sys::RTE_MAX_ETHPORTS as usize;

/// The links by port id, for [`crate::stats_of`] (off the fast path).
static LINKS: Mutex<[Option<Arc<VhostLink>>; MAX_PORTS]> = Mutex::new([const { None }; MAX_PORTS]);

/// `-EAGAIN`: `rte_eth_dev_callback_unregister` while the callback runs.
const EAGAIN: i32 = -(libc::EAGAIN);

impl VhostLink {
    /// Takes over the fast path of `net_vhost` port `port` with `rxq`/`txq`
    /// queues (already set up) receiving into `pool`: registers the link
    /// status callback that follows the guest. `None` when it cannot be
    /// registered (the port keeps the PMD's burst functions then).
    pub(crate) fn attach(
        port: u16,
        rxq: u16,
        txq: u16,
        pool: &Arc<Mempool>,
    ) -> Option<Arc<VhostLink>> {
        let gates = |n: u16| (0..n).map(|_| Gate::default()).collect::<Box<[Gate]>>();
        let link = Arc::new(VhostLink {
            port,
            vid: AtomicI32::new(-1),
            update: Mutex::new(false),
            rx: gates(rxq),
            tx: gates(txq),
            base: Mutex::new(Totals::default()),
            pool: Arc::clone(pool),
        });
        let arg = Arc::into_raw(Arc::clone(&link)) as *mut std::os::raw::c_void;
        // SAFETY: a valid port id; the callback is a plain function and
        // `arg` a reference it owns until `detach` unregisters it.
        let rc = unsafe {
            sys::rte_eth_dev_callback_register(
                port,
                sys::RTE_ETH_EVENT_INTR_LSC,
                Some(on_link_change),
                arg,
            )
        };
        if rc != 0 {
            // SAFETY: not registered: the reference comes back here.
            drop(unsafe { Arc::from_raw(arg as *const VhostLink) });
            return None;
        }
        if let Some(slot) = lock(&LINKS).get_mut(port as usize) {
            *slot = Some(Arc::clone(&link));
        }
        Some(link)
    }

    /// Stops following the guest (the port closes): the callback is
    /// unregistered, the vid forgotten.
    pub(crate) fn detach(self: &Arc<VhostLink>) {
        self.set_started(false);
        let arg = Arc::as_ptr(self) as *mut std::os::raw::c_void;
        loop {
            // SAFETY: the same port, function and argument as registered.
            let rc = unsafe {
                sys::rte_eth_dev_callback_unregister(
                    self.port,
                    sys::RTE_ETH_EVENT_INTR_LSC,
                    Some(on_link_change),
                    arg,
                )
            };
            if rc == EAGAIN {
                // The callback is running now: let it finish.
                std::thread::yield_now();
                continue;
            }
            if rc == 0 {
                // SAFETY: the registration's reference, given up by
                // `attach` with `Arc::into_raw`, returns here once.
                drop(unsafe { Arc::from_raw(arg as *const VhostLink) });
            }
            break;
        }
        let mut links = lock(&LINKS);
        if let Some(slot) = links.get_mut(self.port as usize) {
            if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, self)) {
                *slot = None;
            }
        }
    }

    /// The port was started (queues set up by the PMD) or is stopping.
    pub(crate) fn set_started(&self, on: bool) {
        let mut started = lock(&self.update);
        *started = on;
        self.refresh(on);
    }

    /// Publishes the guest's vid (or -1), with `update` held. Before a
    /// device can go away its vid is withdrawn and every queue left the
    /// vhost library.
    fn refresh(&self, started: bool) {
        let vid = if started && link_up(self.port) {
            // SAFETY: a plain lookup by port id (-1 when unknown).
            unsafe { sys::rte_eth_vhost_get_vid_from_port_id(self.port) }
        } else {
            -1
        };
        self.vid.store(vid.max(-1), Ordering::SeqCst);
        if vid < 0 {
            for g in self.rx.iter().chain(self.tx.iter()) {
                while g.busy.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Enters queue gate `g`: the vid to call with, or `None` (no guest;
    /// the gate is left again).
    #[inline(always)]
    fn enter(&self, g: &Gate) -> Option<i32> {
        // SeqCst store then load (Dekker, with `refresh`): an xchg per
        // burst.
        g.busy.store(true, Ordering::SeqCst);
        let vid = self.vid.load(Ordering::SeqCst);
        if vid < 0 {
            g.busy.store(false, Ordering::Release);
            return None;
        }
        Some(vid)
    }

    /// Receives what the guest sent on its queue pair `q` into the free
    /// slots of `burst`.
    #[inline(always)]
    pub(crate) fn rx_burst(&self, q: u16, burst: &mut Burst) -> usize {
        let room = burst.room();
        let Some(g) = self.rx.get(q as usize) else {
            return 0;
        };
        if room == 0 {
            return 0;
        }
        let Some(vid) = self.enter(g) else {
            return 0;
        };
        let slots = burst.spare_ptr();
        // SAFETY: `vid` is live while the gate is held (see the module
        // docs); virtqueue 2q+1 is the guest's transmit ring of pair q
        // (`VIRTIO_TXQ`); `slots` has `room` free entries; the pool is
        // alive (held by `self`).
        let n = unsafe {
            sys::rte_vhost_dequeue_burst(vid, q * 2 + 1, self.pool.as_ptr(), slots, room as u16)
        };
        g.busy.store(false, Ordering::Release);
        let n = (n as usize).min(room);
        if n == 0 {
            return 0;
        }
        let mut bytes = 0u64;
        for i in 0..n {
            // SAFETY: the library wrote `n` valid, owned mbufs there.
            unsafe {
                let m = *slots.add(i);
                (*m).port = self.port;
                bytes += u64::from((*m).pkt_len);
            }
        }
        // SAFETY: as above: `n` owned mbufs now fill those slots.
        unsafe { burst.commit(n) };
        bump(&g.packets, n as u64);
        bump(&g.bytes, bytes);
        n
    }

    /// Copies what `burst` holds into the guest's receive ring of queue
    /// pair `q` and frees the frames sent; the unsent stay in `burst` (at
    /// the front). Returns how many were sent.
    #[inline(always)]
    pub(crate) fn tx_burst(&self, q: u16, burst: &mut Burst) -> usize {
        let n = burst.len();
        let Some(g) = self.tx.get(q as usize) else {
            return 0;
        };
        let Some(vid) = self.enter(g) else {
            return 0;
        };
        let pkts = burst.raw_ptr();
        // SAFETY: `vid` is live while the gate is held; virtqueue 2q is
        // the guest's receive ring of pair q (`VIRTIO_RXQ`); the first `n`
        // slots hold owned mbufs, which the library only reads.
        let sent = unsafe { sys::rte_vhost_enqueue_burst(vid, q * 2, pkts, n as u16) };
        g.busy.store(false, Ordering::Release);
        let sent = (sent as usize).min(n);
        if sent == 0 {
            return 0;
        }
        let mut bytes = 0u64;
        for i in 0..sent {
            // SAFETY: the first `sent` slots hold valid mbufs.
            bytes += u64::from(unsafe { (**pkts.add(i)).pkt_len });
        }
        // SAFETY: the guest has its copy; the first `sent` mbufs are ours
        // to free, once, and the burst forgets them right after.
        unsafe {
            sys::shim_rte_pktmbuf_free_bulk(pkts, sent as u32);
            burst.consume_front(sent);
        }
        bump(&g.packets, sent as u64);
        bump(&g.bytes, bytes);
        sent
    }

    /// The counters since the last reset.
    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (i, g) in self.rx.iter().enumerate() {
            t.ipackets += get(&g.packets);
            t.ibytes += get(&g.bytes);
            if let Some(q) = t.q_ipackets.get_mut(i) {
                *q = get(&g.packets);
            }
        }
        for (i, g) in self.tx.iter().enumerate() {
            t.opackets += get(&g.packets);
            t.obytes += get(&g.bytes);
            if let Some(q) = t.q_opackets.get_mut(i) {
                *q = get(&g.packets);
            }
        }
        let b = lock(&self.base);
        t.ipackets -= b.ipackets.min(t.ipackets);
        t.ibytes -= b.ibytes.min(t.ibytes);
        t.opackets -= b.opackets.min(t.opackets);
        t.obytes -= b.obytes.min(t.obytes);
        for (q, bq) in t.q_ipackets.iter_mut().zip(b.q_ipackets) {
            *q -= bq.min(*q);
        }
        for (q, bq) in t.q_opackets.iter_mut().zip(b.q_opackets) {
            *q -= bq.min(*q);
        }
        t
    }

    /// Zeroes the counters as [`VhostLink::totals`] reports them.
    pub(crate) fn reset_stats(&self) {
        let now = {
            *lock(&self.base) = Totals::default();
            self.totals()
        };
        *lock(&self.base) = now;
    }
}

impl std::fmt::Debug for VhostLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostLink")
            .field("port", &self.port)
            .field("vid", &self.vid.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The direct queues' counters of port `port`, if it has them.
pub(crate) fn totals_of(port: u16) -> Option<Totals> {
    let link = lock(&LINKS).get(port as usize)?.clone()?;
    Some(link.totals())
}

#[inline(always)]
fn bump(c: &AtomicU64, v: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether port `port`'s link is up (for `net_vhost`: a guest is attached).
pub(crate) fn link_up(port: u16) -> bool {
    let mut l = sys::rte_eth_link::default();
    // SAFETY: valid out-pointer; the vhost PMD's link_update only copies
    // its stored status.
    unsafe { sys::rte_eth_link_get_nowait(port, &mut l) == 0 && l.link_status() != 0 }
}

/// `RTE_ETH_EVENT_INTR_LSC` of a direct `net_vhost` port: raised by the
/// PMD's `new_device()` (guest ready) and `destroy_device()` (before the
/// vhost library frees the device), on the vhost-user events thread.
unsafe extern "C" fn on_link_change(
    _port_id: u16,
    _event: sys::rte_eth_event_type,
    arg: *mut std::os::raw::c_void,
    _ret: *mut std::os::raw::c_void,
) -> std::os::raw::c_int {
    // SAFETY: `arg` is the reference `attach` registered, alive until
    // `detach` has unregistered this callback (which waits for it).
    let link = unsafe { &*(arg as *const VhostLink) };
    let started = lock(&link.update);
    link.refresh(*started);
    0
}
