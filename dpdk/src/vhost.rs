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
//!     ─► free(sent): one rte_mempool_put_bulk when every mbuf is direct,
//!        one-segment, refcnt 1 and of one pool, else rte_pktmbuf_free_bulk
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
//!
//! # Own rings ([`crate::vring`])
//! By default (unless `VSWITCH_VHOST_RING=lib` is in the environment when
//! a port is configured: then the library's burst functions serve every
//! ring), a port's queues drive the guest's split rings
//! themselves instead of calling the library's burst functions, ring by
//! ring, whenever that applies (not for packed rings, dirty logging,
//! IOMMU, a disabled ring: [`crate::vring::ring::LIBRARY_ONLY`]). Each
//! gate has a mode:
//!
//! ```text
//! LIB ──(device up, or after a vhost-user message)──► WANT
//! WANT ──poller: takes the library's ring state (SNAP)──► FAST (or LIB)
//! FAST/SNAP ──(before a vhost-user message, device down)──► HANDOFF
//!     ──waits for the poller to leave, writes the indices back
//!       (rte_vhost_set_vring_base)──► LIB
//! ```
//!
//! The vhost library changes a running device under its own per-ring
//! locks (`SET_MEM_TABLE` unmaps guest memory, `SET_VRING_CALL` closes the
//! call fd, `SET_FEATURES` turns on dirty logging) and tells the PMD
//! nothing; a pre/post message hook (`rte_vhost_extern_callback_register`,
//! called for every message of the device) gives the rings back before
//! each message and lets the pollers take them again after it.
//! `GET_VRING_BASE` (guest stop, migration) finds the indices written back
//! by that hook; a disconnect runs `destroy_device`, whose link event does
//! the same before the library frees the device. Only the poller takes a
//! ring (it is the one thread that could be inside the library's burst
//! function for it), and the hook waits only for pollers in their own
//! ring code, never for one in a library call (which can block on the
//! ring locks the message handler holds).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use crate::burst::Burst;
use crate::mempool::Mempool;
use crate::vring::ring::NetRing;

/// Gate modes (see the module docs).
const LIB: u8 = 0;
const WANT: u8 = 1;
const SNAP: u8 = 2;
const FAST: u8 = 3;
const HANDOFF: u8 = 4;

/// `VHOST_USER_SET_VRING_ENABLE` (vhost-user protocol).
const SET_VRING_ENABLE: u32 = 18;

/// Whether ports configured now drive the guests' split rings themselves,
/// from `VSWITCH_VHOST_RING`: `lib` no (the vhost library's burst
/// functions); unset (or anything else) yes, the default: the own rings
/// cost fewer cycles per packet than the library's in the vm_net runs of
/// perf/README.md, 64-byte frames and 64 KiB TSO segments alike.
fn own_rings_wanted() -> bool {
    std::env::var("VSWITCH_VHOST_RING").as_deref() != Ok("lib")
}

/// One queue's in-call flag and counters, on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Gate {
    /// Set while the queue's poller is inside a vhost library call.
    busy: AtomicBool,
    /// LIB, WANT, SNAP, FAST or HANDOFF.
    mode: AtomicU8,
    /// The queue's own ring: the poller's in SNAP and FAST, the message
    /// hook's in HANDOFF, nobody's in LIB and WANT (then `None`).
    ring: UnsafeCell<Option<Box<NetRing>>>,
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Malformed chains the own ring refused.
    errors: AtomicU64,
}

// SAFETY: `ring` is only touched by the thread the mode hands it to (see
// the module docs); everything else is atomic.
unsafe impl Sync for Gate {}

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
    /// Queues drive the guest's split rings themselves when they can.
    own: bool,
    /// The guest's device id as last seen up (kept while it is down: its
    /// vhost-user messages still name it).
    dev_vid: AtomicI32,
    /// Rings the guest disabled (`SET_VRING_ENABLE` 0), by vring index.
    disabled: Box<[AtomicBool]>,
    /// Serialises the gate-mode changes ([`VhostLink::withdraw`],
    /// [`VhostLink::resume`]); true while the vhost library handles a
    /// message (between the hooks): no ring is taken then. Never held
    /// while waiting for a poller inside the library (the message handler
    /// holds the library's ring locks, which such a poller may wait for).
    modes: Mutex<bool>,
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
    /// Malformed guest chains refused by own rings.
    pub ierrors: u64,
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
            own: own_rings_wanted(),
            dev_vid: AtomicI32::new(-1),
            disabled: (0..2 * rxq.max(txq))
                .map(|_| AtomicBool::new(false))
                .collect(),
            modes: Mutex::new(false),
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
        let old = self.vid.load(Ordering::SeqCst);
        if old >= 0 && old != vid {
            // The device is still alive here (destroy_device runs first).
            let _m = lock(&self.modes);
            self.withdraw(old);
        }
        self.vid.store(vid.max(-1), Ordering::SeqCst);
        if vid < 0 {
            for g in self.rx.iter().chain(self.tx.iter()) {
                while g.busy.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            }
        } else if self.own {
            if self.dev_vid.swap(vid, Ordering::SeqCst) != vid {
                for d in self.disabled.iter() {
                    d.store(false, Ordering::Relaxed);
                }
            }
            let ops = sys::rte_vhost_user_extern_ops {
                pre_msg_handle: Some(pre_msg),
                post_msg_handle: Some(post_msg),
            };
            // SAFETY: a live device (new_device raised this event); the
            // library copies `ops`; the hooks are plain functions with no
            // context.
            unsafe { sys::rte_vhost_extern_callback_register(vid, &ops, std::ptr::null_mut()) };
            if !*lock(&self.modes) {
                self.resume();
            }
        }
    }

    /// The gates with their vring index (rx queue q: the guest's transmit
    /// ring 2q+1; tx queue q: its receive ring 2q).
    fn gates(&self) -> impl Iterator<Item = (&Gate, u16)> {
        let rx = self
            .rx
            .iter()
            .enumerate()
            .map(|(q, g)| (g, 2 * q as u16 + 1));
        rx.chain(self.tx.iter().enumerate().map(|(q, g)| (g, 2 * q as u16)))
    }

    /// Lets the pollers take their rings (again), with `modes` held.
    fn resume(&self) {
        for (g, _) in self.gates() {
            let _ = g
                .mode
                .compare_exchange(LIB, WANT, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Takes every own ring back from the pollers and writes its indices
    /// into device `vid`'s library state, with `modes` held. Waits only
    /// for pollers in their own ring code (never inside the library).
    fn withdraw(&self, vid: i32) {
        for (g, _) in self.gates() {
            loop {
                let m = g.mode.load(Ordering::SeqCst);
                let next = match m {
                    WANT => LIB,
                    FAST | SNAP => HANDOFF,
                    _ => break,
                };
                if g.mode
                    .compare_exchange(m, next, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    continue;
                }
                if next == HANDOFF {
                    // The poller is in its own ring code or about to see
                    // HANDOFF: it leaves without calling the library.
                    while g.busy.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    // SAFETY: HANDOFF and the poller gone: the ring is ours.
                    if let Some(r) = unsafe { (*g.ring.get()).take() } {
                        r.give_back(vid);
                        bump(&g.errors, r.errors());
                    }
                    g.mode.store(LIB, Ordering::SeqCst);
                }
                break;
            }
        }
    }

    /// The mode of gate `g` (held) for this burst: WANT first takes
    /// vring `vring` from the library (or leaves it there), so the burst
    /// goes on, on whichever path, with nothing dropped.
    #[inline(always)]
    fn mode(&self, g: &Gate, vid: i32, vring: u16) -> u8 {
        let m = g.mode.load(Ordering::SeqCst);
        if m != WANT {
            return m;
        }
        self.take_ring(g, vid, vring);
        g.mode.load(Ordering::SeqCst)
    }

    /// The poller of gate `g` takes vring `vring` of device `vid` from the
    /// library (mode WANT), or leaves it there.
    #[cold]
    fn take_ring(&self, g: &Gate, vid: i32, vring: u16) {
        if g.mode
            .compare_exchange(WANT, SNAP, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let off = self
            .disabled
            .get(vring as usize)
            .is_none_or(|d| d.load(Ordering::Relaxed));
        // SAFETY: `vid` is live while the gate is held; in SNAP no other
        // thread uses this ring (the poller is this thread; the message
        // hook waits for it).
        let taken = if off {
            Err("disabled")
        } else {
            unsafe { NetRing::from_library(vid, vring) }
        };
        // Once per device event, on the poller (a cold path).
        match &taken {
            Ok(_) => eprintln!("vhost port {}: vring {vring} on own ring code", self.port),
            Err(why) => eprintln!(
                "vhost port {}: vring {vring} stays with the vhost library ({why})",
                self.port
            ),
        }
        match taken {
            Ok(r) => {
                // SAFETY: SNAP: the ring slot is this poller's.
                unsafe { *g.ring.get() = Some(Box::new(r)) };
                // Fails only if the hook moved to HANDOFF: it takes the
                // ring back (its indices are still the library's).
                let _ = g
                    .mode
                    .compare_exchange(SNAP, FAST, Ordering::SeqCst, Ordering::SeqCst);
            }
            Err(_) => {
                let _ = g
                    .mode
                    .compare_exchange(SNAP, LIB, Ordering::SeqCst, Ordering::SeqCst);
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
        match self.mode(g, vid, q * 2 + 1) {
            LIB => {}
            FAST => {
                // SAFETY: FAST: the ring is this poller's while the gate is
                // held; `slots` has `room` free entries; the pool is alive.
                let (n, bytes) = unsafe {
                    match (*g.ring.get()).as_mut() {
                        Some(r) => r.rx_burst(self.pool.as_ptr(), self.port, slots, room),
                        None => (0, 0),
                    }
                };
                g.busy.store(false, Ordering::Release);
                if n == 0 {
                    return 0;
                }
                // SAFETY: the ring filled `n` owned mbufs there.
                unsafe { burst.commit(n) };
                bump(&g.packets, n as u64);
                bump(&g.bytes, bytes);
                return n;
            }
            _ => {
                g.busy.store(false, Ordering::Release);
                return 0;
            }
        }
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
        let (sent, bytes) = match self.mode(g, vid, q * 2) {
            LIB => {
                // SAFETY: `vid` is live while the gate is held; virtqueue
                // 2q is the guest's receive ring of pair q (`VIRTIO_RXQ`);
                // the first `n` slots hold owned mbufs, which the library
                // only reads.
                let sent = unsafe { sys::rte_vhost_enqueue_burst(vid, q * 2, pkts, n as u16) };
                let sent = (sent as usize).min(n);
                let mut bytes = 0u64;
                for i in 0..sent {
                    // SAFETY: the first `sent` slots hold valid mbufs.
                    bytes += u64::from(unsafe { (**pkts.add(i)).pkt_len });
                }
                (sent, bytes)
            }
            // SAFETY: FAST: the ring is this poller's while the gate is
            // held; the first `n` slots hold owned mbufs.
            FAST => unsafe {
                match (*g.ring.get()).as_mut() {
                    Some(r) => r.tx_burst(pkts, n),
                    None => (0, 0),
                }
            },
            _ => (0, 0),
        };
        g.busy.store(false, Ordering::Release);
        let sent = sent.min(n);
        if sent == 0 {
            return 0;
        }
        // SAFETY: the guest has its copy; the first `sent` mbufs are ours
        // to free, once, and the burst forgets them right after.
        unsafe {
            sys::shim_rte_pktmbuf_free_bulk_fast(pkts, sent as u32);
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
        for g in self.rx.iter().chain(self.tx.iter()) {
            t.ierrors += get(&g.errors);
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
        t.ierrors -= b.ierrors.min(t.ierrors);
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

/// The link whose guest device is `vid` (the vhost-user message hooks).
fn link_of_vid(vid: i32) -> Option<Arc<VhostLink>> {
    lock(&LINKS)
        .iter()
        .flatten()
        .find(|l| l.own && l.dev_vid.load(Ordering::SeqCst) == vid)
        .cloned()
}

/// Before the vhost library handles a message of device `vid`: own rings
/// go back to the library (the message may unmap memory, close the call
/// fd, turn on logging or read the indices). Records ring enabling.
unsafe extern "C" fn pre_msg(
    vid: std::os::raw::c_int,
    msg: *mut std::os::raw::c_void,
) -> sys::rte_vhost_msg_result {
    if let Some(link) = link_of_vid(vid) {
        let mut in_msg = lock(&link.modes);
        *in_msg = true;
        // SAFETY: `msg` is the library's `VhostUserMsg` (packed): request
        // (u32) at 0, flags, size, then the payload; SET_VRING_ENABLE's
        // payload is a `vhost_vring_state` (index, num as u32) at 12.
        let (req, index, num) = unsafe {
            let b = msg as *const u8;
            (
                std::ptr::read_unaligned(b as *const u32),
                std::ptr::read_unaligned(b.add(12) as *const u32),
                std::ptr::read_unaligned(b.add(16) as *const u32),
            )
        };
        if req == SET_VRING_ENABLE {
            if let Some(d) = link.disabled.get(index as usize) {
                d.store(num == 0, Ordering::Relaxed);
            }
        }
        if link.vid.load(Ordering::SeqCst) == vid {
            link.withdraw(vid);
        }
    }
    sys::RTE_VHOST_MSG_RESULT_NOT_HANDLED
}

/// After the library handled a message of device `vid`: the pollers may
/// take their rings again (they re-read everything).
unsafe extern "C" fn post_msg(
    vid: std::os::raw::c_int,
    _msg: *mut std::os::raw::c_void,
) -> sys::rte_vhost_msg_result {
    if let Some(link) = link_of_vid(vid) {
        let mut in_msg = lock(&link.modes);
        *in_msg = false;
        if link.vid.load(Ordering::SeqCst) == vid {
            link.resume();
        }
    }
    sys::RTE_VHOST_MSG_RESULT_NOT_HANDLED
}
