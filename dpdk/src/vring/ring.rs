//! One queue's ring state taken from the vhost library, and its bursts.

use std::os::fd::RawFd;

use dpdk_sys as sys;

use super::mbuf_io::{MbufSink, MbufSource, HDR_LEN, HDR_LEN_MRG};
use super::mem::{GuestMem, Region};
use super::net::{dequeue_counted, enqueue, Done};
use super::split::{RingAddrs, Segs, SplitRing};

/// VIRTIO 1.2 §5.1.3 feature bits this path reads.
const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;
const VIRTIO_NET_F_HOST_TSO6: u64 = 1 << 12;
const VIRTIO_NET_F_HOST_ECN: u64 = 1 << 13;
const VIRTIO_NET_F_HOST_UFO: u64 = 1 << 14;
const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// vhost-user: dirty-page logging (live migration) is on.
const VHOST_F_LOG_ALL: u64 = 1 << 26;
/// §6.3 reserved feature bits.
const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_F_IOMMU_PLATFORM: u64 = 1 << 33;
const VIRTIO_F_RING_PACKED: u64 = 1 << 34;
const VIRTIO_F_NOTIFICATION_DATA: u64 = 1 << 38;

/// Features under which the vhost library keeps the ring: packed layout,
/// dirty logging (every guest write would have to be logged), guest
/// addresses through an IOMMU (IOTLB), notification data.
pub(crate) const LIBRARY_ONLY: u64 =
    VHOST_F_LOG_ALL | VIRTIO_F_IOMMU_PLATFORM | VIRTIO_F_RING_PACKED | VIRTIO_F_NOTIFICATION_DATA;

/// The guest may send segments of up to 64 KiB (§5.1.3).
const HOST_LARGE: u64 = VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_HOST_UFO;

/// Whether the CPU has AVX2 (asked once per ring set-up, never per frame).
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A queue's own ring state.
pub(crate) struct NetRing {
    ring: SplitRing,
    segs: Box<Segs>,
    vring: u16,
    callfd: RawFd,
    hdr_len: usize,
    mergeable: bool,
    offload: bool,
    /// The CPU has AVX2: receive bursts go through `enqueue_avx2`.
    avx2: bool,
    /// The guest sends large segments: the pool of large mbufs they go
    /// into ([`super::large`]).
    large: Option<&'static crate::mempool::Mempool>,
}

impl std::fmt::Debug for NetRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRing")
            .field("vring", &self.vring)
            .finish_non_exhaustive()
    }
}

/// Why a ring stays with the library.
pub(crate) type Refusal = &'static str;

impl NetRing {
    /// Takes ring `vring` of device `vid` from the vhost library.
    ///
    /// # Safety
    /// `vid` is a live device, and no other thread uses this ring through
    /// the library until [`NetRing::give_back`].
    pub(crate) unsafe fn from_library(vid: i32, vring: u16) -> Result<NetRing, Refusal> {
        let mut features = 0u64;
        // SAFETY: out-pointer to a local; `vid` is live.
        if unsafe { sys::rte_vhost_get_negotiated_features(vid, &mut features) } != 0 {
            return Err("no features");
        }
        if features & LIBRARY_ONLY != 0 {
            return Err("packed ring, dirty logging, IOMMU or notification data");
        }
        let mut v = sys::rte_vhost_vring::default();
        // SAFETY: out-pointer to a local.
        if unsafe { sys::rte_vhost_get_vhost_vring(vid, vring, &mut v) } != 0 {
            return Err("no ring");
        }
        if v.callfd < 0 {
            return Err("no call fd");
        }
        let (mut last_avail, mut last_used) = (0u16, 0u16);
        // SAFETY: out-pointers to locals.
        if unsafe { sys::rte_vhost_get_vring_base(vid, vring, &mut last_avail, &mut last_used) }
            != 0
        {
            return Err("no ring base");
        }
        let mut mem: *mut sys::rte_vhost_memory = std::ptr::null_mut();
        // SAFETY: out-pointer; the library mallocs a copy we free below.
        if unsafe { sys::rte_vhost_get_mem_table(vid, &mut mem) } != 0 || mem.is_null() {
            return Err("no memory table");
        }
        let mut regions = [Region::default(); super::mem::MAX_REGIONS];
        // SAFETY: the copy holds `nregions` regions; freed once, here.
        let n = unsafe {
            let n = ((*mem).nregions as usize).min(regions.len());
            let rs = (*mem).regions.as_slice(n);
            for (d, r) in regions.iter_mut().zip(rs) {
                *d = Region {
                    gpa: r.guest_phys_addr,
                    size: r.size,
                    host: r.host_user_addr,
                };
            }
            libc::free(mem.cast());
            n
        };
        // SAFETY: plain reads of the union's split-ring members.
        let addrs = unsafe {
            RingAddrs {
                desc: v.__bindgen_anon_1.desc.cast(),
                avail: v.__bindgen_anon_2.avail.cast(),
                used: v.__bindgen_anon_3.used.cast(),
                size: v.size,
            }
        };
        let ring = SplitRing::new(
            GuestMem::new(&regions[..n]),
            addrs,
            last_avail,
            last_used,
            features & VIRTIO_RING_F_INDIRECT_DESC != 0,
            features & VIRTIO_RING_F_EVENT_IDX != 0,
        )
        .map_err(|_| "bad ring size or alignment")?;
        let mergeable = features & VIRTIO_NET_F_MRG_RXBUF != 0;
        let hdr_len = if mergeable || features & VIRTIO_F_VERSION_1 != 0 {
            HDR_LEN_MRG
        } else {
            HDR_LEN
        };
        let host_offloads = VIRTIO_NET_F_CSUM
            | VIRTIO_NET_F_HOST_TSO4
            | VIRTIO_NET_F_HOST_TSO6
            | VIRTIO_NET_F_HOST_ECN
            | VIRTIO_NET_F_HOST_UFO;
        Ok(NetRing {
            ring,
            segs: Box::default(),
            vring,
            callfd: v.callfd,
            hdr_len,
            mergeable,
            offload: features & host_offloads != 0,
            avx2: has_avx2(),
            large: if features & HOST_LARGE != 0 {
                super::large::pool()
            } else {
                None
            },
        })
    }

    /// Writes this ring's indices back into the library (what it reports
    /// on `GET_VRING_BASE` and resumes from).
    pub(crate) fn give_back(&self, vid: i32) {
        // SAFETY: a plain store into the library's ring state; `vid` is
        // live (the caller holds the device).
        unsafe {
            sys::rte_vhost_set_vring_base(
                vid,
                self.vring,
                self.ring.last_avail(),
                self.ring.last_used(),
            )
        };
    }

    /// Chains refused so far.
    pub(crate) fn errors(&self) -> u64 {
        self.ring.errors
    }

    fn notify(&self, d: &Done) {
        if d.notify {
            let one = 1u64;
            // SAFETY: an eventfd the library holds open while the ring is
            // ours (a new one comes with a message, which takes the ring
            // back first); writes 8 bytes from a local.
            unsafe { libc::write(self.callfd, (&one as *const u64).cast(), 8) };
        }
    }

    /// Takes up to `room` frames from the guest's transmit ring into fresh
    /// mbufs of `pool` at `slots`. Returns (frames, bytes).
    ///
    /// # Safety
    /// `slots` has `room` writable entries; `pool` is a live pktmbuf pool.
    #[inline(always)]
    pub(crate) unsafe fn rx_burst(
        &mut self,
        pool: *mut sys::rte_mempool,
        port: u16,
        slots: *mut *mut sys::rte_mbuf,
        room: usize,
    ) -> (usize, u64) {
        let n = (self.ring.avail_count() as usize).min(room);
        if n == 0 {
            return (0, 0);
        }
        // SAFETY: `slots` has room for n >= 1 mbufs.
        if unsafe { sys::shim_rte_pktmbuf_alloc_bulk(pool, slots, n as u32) } != 0 {
            return (0, 0);
        }
        let mut sink = MbufSink {
            pool,
            large: self
                .large
                .map_or(std::ptr::null_mut(), crate::mempool::Mempool::as_ptr),
            out: slots,
            filled: 0,
            cap: n,
            hdr_len: self.hdr_len,
            offload: self.offload,
            port,
            bytes: 0,
        };
        let d = dequeue_counted(
            &mut self.ring,
            &mut self.segs,
            self.hdr_len as u32,
            n as u16,
            &mut sink,
        );
        self.notify(&d);
        if sink.filled < n {
            // SAFETY: the unfilled tail holds mbufs allocated above.
            unsafe {
                sys::shim_rte_pktmbuf_free_bulk(slots.add(sink.filled), (n - sink.filled) as u32)
            };
        }
        (sink.filled, sink.bytes)
    }

    /// Copies the `n` mbufs at `pkts` into the guest's receive ring;
    /// returns (sent, bytes). The caller keeps (and frees) all of them.
    ///
    /// # Safety
    /// `pkts` holds `n` valid mbufs.
    #[inline(always)]
    pub(crate) unsafe fn tx_burst(
        &mut self,
        pkts: *const *mut sys::rte_mbuf,
        n: usize,
    ) -> (usize, u64) {
        let mut src = MbufSource {
            pkts,
            hdr_len: self.hdr_len,
            bytes: 0,
        };
        #[cfg(target_arch = "x86_64")]
        let d = if self.avx2 {
            // SAFETY: `avx2` only where the CPU has AVX2 (`has_avx2`).
            unsafe {
                super::net::enqueue_avx2(
                    &mut self.ring,
                    &mut self.segs,
                    self.hdr_len as u32,
                    self.mergeable,
                    &mut src,
                    n,
                )
            }
        } else {
            enqueue(
                &mut self.ring,
                &mut self.segs,
                self.hdr_len as u32,
                self.mergeable,
                &mut src,
                n,
            )
        };
        #[cfg(not(target_arch = "x86_64"))]
        let d = enqueue(
            &mut self.ring,
            &mut self.segs,
            self.hdr_len as u32,
            self.mergeable,
            &mut src,
            n,
        );
        self.notify(&d);
        (d.frames, src.bytes)
    }
}
