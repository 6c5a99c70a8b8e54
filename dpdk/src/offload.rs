//! Transmit offloads a port can take (checksum, TCP segmentation) and the
//! mbuf flags that carry them.
//!
//! Only vhost-user ports (`net_vhost`) take offloads here: what they can
//! take is what the guest's virtio-net driver negotiated (VIRTIO 1.2
//! §5.1.3 "Feature bits": `VIRTIO_NET_F_GUEST_CSUM`, `GUEST_TSO4/6`), known
//! only once the guest connects. The PMD reports connection changes as link
//! status events; `watch_vhost` registers a callback that re-reads the
//! negotiated features then, and [`tx_caps`] reads the result with one
//! relaxed load (the worker's slow path for offloaded frames).

use std::sync::atomic::{AtomicU8, Ordering};

use dpdk_sys as sys;

/// `RTE_MBUF_F_RX_LRO`: the frame is larger than the MTU and its
/// `tso_segsz` is the segment size (vhost: a guest's GSO frame).
pub const RX_LRO: u64 = sys::RTE_MBUF_F_RX_LRO as u64;
/// `RTE_MBUF_F_RX_L4_CKSUM_MASK`.
pub const RX_L4_CKSUM_MASK: u64 = sys::RTE_MBUF_F_RX_L4_CKSUM_MASK as u64;
/// `RTE_MBUF_F_RX_L4_CKSUM_NONE`: the L4 checksum field holds only the
/// pseudo-header sum (a guest's `VIRTIO_NET_HDR_F_NEEDS_CSUM`); the data
/// is intact.
pub const RX_L4_CKSUM_NONE: u64 = sys::RTE_MBUF_F_RX_L4_CKSUM_NONE as u64;
/// The receive flags that make a frame need offload handling at output:
/// a worker ORs every frame's flags and tests this mask, once per burst.
pub const RX_OFFLOAD_MASK: u64 = RX_LRO | RX_L4_CKSUM_MASK;
/// `RTE_MBUF_F_TX_TCP_SEG`.
pub const TX_TCP_SEG: u64 = sys::RTE_MBUF_F_TX_TCP_SEG;
/// `RTE_MBUF_F_TX_TCP_CKSUM`.
pub const TX_TCP_CKSUM: u64 = sys::RTE_MBUF_F_TX_TCP_CKSUM;
/// `RTE_MBUF_F_TX_UDP_CKSUM`.
pub const TX_UDP_CKSUM: u64 = sys::RTE_MBUF_F_TX_UDP_CKSUM;
/// `RTE_MBUF_F_TX_IP_CKSUM`.
pub const TX_IP_CKSUM: u64 = sys::RTE_MBUF_F_TX_IP_CKSUM;
/// `RTE_MBUF_F_TX_IPV4`.
pub const TX_IPV4: u64 = sys::RTE_MBUF_F_TX_IPV4;
/// `RTE_MBUF_F_TX_IPV6`.
pub const TX_IPV6: u64 = sys::RTE_MBUF_F_TX_IPV6;

// rte_ethdev.h's offload bits are function-like macros (RTE_BIT64) that
// bindgen cannot read: their values, for PortConfig.

/// `RTE_ETH_RX_OFFLOAD_UDP_CKSUM`.
pub const RX_OFFLOAD_UDP_CKSUM: u64 = 1 << 2;
/// `RTE_ETH_RX_OFFLOAD_TCP_CKSUM`.
pub const RX_OFFLOAD_TCP_CKSUM: u64 = 1 << 3;
/// `RTE_ETH_RX_OFFLOAD_TCP_LRO`.
pub const RX_OFFLOAD_TCP_LRO: u64 = 1 << 4;
/// `RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`.
pub const TX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;
/// `RTE_ETH_TX_OFFLOAD_UDP_CKSUM`.
pub const TX_OFFLOAD_UDP_CKSUM: u64 = 1 << 2;
/// `RTE_ETH_TX_OFFLOAD_TCP_CKSUM`.
pub const TX_OFFLOAD_TCP_CKSUM: u64 = 1 << 3;
/// `RTE_ETH_TX_OFFLOAD_TCP_TSO`.
pub const TX_OFFLOAD_TCP_TSO: u64 = 1 << 5;
/// `RTE_ETH_TX_OFFLOAD_MULTI_SEGS`.
pub const TX_OFFLOAD_MULTI_SEGS: u64 = 1 << 15;

/// VIRTIO 1.2 §5.1.3: the driver (guest) takes packets with partial
/// checksum.
const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
/// VIRTIO 1.2 §5.1.3: the driver takes TSOv4.
const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
/// VIRTIO 1.2 §5.1.3: the driver takes TSOv6.
const VIRTIO_NET_F_GUEST_TSO6: u64 = 1 << 8;

/// What a port's transmit side takes, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxCaps(u8);

impl TxCaps {
    /// Nothing: every frame must leave complete (checksums, MTU-sized).
    pub const NONE: TxCaps = TxCaps(0);
    /// TCP/UDP checksum offload (partial checksums may leave).
    pub const CSUM: TxCaps = TxCaps(1);
    /// TCP segmentation of IPv4 frames.
    pub const TSO4: TxCaps = TxCaps(2);
    /// TCP segmentation of IPv6 frames.
    pub const TSO6: TxCaps = TxCaps(4);

    /// Whether every capability of `other` is here.
    #[inline]
    pub fn has(self, other: TxCaps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    #[inline]
    pub fn with(self, other: TxCaps) -> TxCaps {
        TxCaps(self.0 | other.0)
    }

    /// What a virtio-net driver that negotiated `features` takes.
    pub fn from_virtio_features(features: u64) -> TxCaps {
        let mut c = TxCaps::NONE;
        if features & VIRTIO_NET_F_GUEST_CSUM != 0 {
            c = c.with(TxCaps::CSUM);
            // TSO needs the checksum offload too (§5.1.3.1).
            if features & VIRTIO_NET_F_GUEST_TSO4 != 0 {
                c = c.with(TxCaps::TSO4);
            }
            if features & VIRTIO_NET_F_GUEST_TSO6 != 0 {
                c = c.with(TxCaps::TSO6);
            }
        }
        c
    }
}

const MAX_PORTS: usize = sys::RTE_MAX_ETHPORTS as usize;

/// Capabilities per DPDK port id (not per switch port): written by the
/// link-status callback, read by workers.
static CAPS: [AtomicU8; MAX_PORTS] = [const { AtomicU8::new(0) }; MAX_PORTS];

/// What port `port_id` can take on transmit now (`NONE` for ports that are
/// not watched vhost-user ports, and for vhost ports with no guest).
#[inline]
pub fn tx_caps(port_id: u16) -> TxCaps {
    CAPS.get(port_id as usize)
        .map_or(TxCaps::NONE, |c| TxCaps(c.load(Ordering::Relaxed)))
}

/// Re-reads the negotiated virtio features of vhost port `port_id`.
pub(crate) fn refresh_vhost(port_id: u16) {
    // Without a guest (link down) the PMD's queues may still hold a
    // zeroed vid, which the vhost library would look up and log as "device
    // not found".
    let vid = if crate::vhost::link_up(port_id) {
        // SAFETY: plain lookups by id; an unknown or unconnected port gives -1.
        unsafe { sys::rte_eth_vhost_get_vid_from_port_id(port_id) }
    } else {
        -1
    };
    let mut features = 0u64;
    // SAFETY: `vid` came from the PMD; the out-pointer is a local.
    let caps =
        if vid >= 0 && unsafe { sys::rte_vhost_get_negotiated_features(vid, &mut features) } == 0 {
            TxCaps::from_virtio_features(features)
        } else {
            TxCaps::NONE
        };
    if let Some(c) = CAPS.get(port_id as usize) {
        c.store(caps.0, Ordering::Relaxed);
    }
}

/// Forgets what port `port_id` could take (the port is closed).
pub(crate) fn clear(port_id: u16) {
    if let Some(c) = CAPS.get(port_id as usize) {
        c.store(0, Ordering::Relaxed);
    }
}

unsafe extern "C" fn on_link_change(
    port_id: u16,
    _event: sys::rte_eth_event_type,
    _arg: *mut std::os::raw::c_void,
    _ret: *mut std::os::raw::c_void,
) -> std::os::raw::c_int {
    // The vhost PMD raises the event after new_device() stored the
    // negotiated features, and after destroy_device().
    refresh_vhost(port_id);
    0
}

/// Watches vhost port `port_id`: its capabilities follow the guest's
/// negotiated features from now on.
pub(crate) fn watch_vhost(port_id: u16) {
    // SAFETY: a valid port id; the callback is a plain function with no
    // argument, alive for the whole process.
    unsafe {
        sys::rte_eth_dev_callback_register(
            port_id,
            sys::RTE_ETH_EVENT_INTR_LSC,
            Some(on_link_change),
            std::ptr::null_mut(),
        );
    }
    refresh_vhost(port_id);
}

/// Stops watching vhost port `port_id`.
pub(crate) fn unwatch_vhost(port_id: u16) {
    // SAFETY: as in `watch_vhost`; unregistering an absent callback is a
    // harmless error.
    unsafe {
        sys::rte_eth_dev_callback_unregister(
            port_id,
            sys::RTE_ETH_EVENT_INTR_LSC,
            Some(on_link_change),
            std::ptr::null_mut(),
        );
    }
    clear(port_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_features_map_to_caps() {
        assert_eq!(TxCaps::from_virtio_features(0), TxCaps::NONE);
        // TSO without GUEST_CSUM is not valid: nothing.
        assert_eq!(
            TxCaps::from_virtio_features(VIRTIO_NET_F_GUEST_TSO4),
            TxCaps::NONE
        );
        let all = TxCaps::from_virtio_features(
            VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6,
        );
        assert!(all.has(TxCaps::CSUM) && all.has(TxCaps::TSO4) && all.has(TxCaps::TSO6));
        let v4 = TxCaps::from_virtio_features(VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4);
        assert!(v4.has(TxCaps::TSO4) && !v4.has(TxCaps::TSO6));
    }
}
