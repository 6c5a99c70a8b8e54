//! Encapsulation: the outer Ethernet/IPv4/UDP and VXLAN or Geneve headers
//! in front of a frame sent to a tunnel port.

use super::arp::{Neighbour, Resolve};
use super::decap::Endpoints;
use super::stats::TunnelDrop;
use super::{TunnelKind, TunnelMeta};
use crate::action::TunnelSet;
use crate::frame::Frame;
use crate::wire::ethernet::{ethertype, HEADER_LEN as ETH_LEN};
use crate::wire::geneve::{GenevePacket, GeneveRepr};
use crate::wire::ipv4::{field as ipf, Ipv4Packet, Ipv4Repr, MIN_HEADER_LEN as IP_LEN};
use crate::wire::l4::protocol;
use crate::wire::udp::{UdpRepr, HEADER_LEN as UDP_LEN};
use crate::wire::vxlan::{VxlanPacket, VxlanRepr};

/// Bytes put in front of the inner frame (both encapsulations, Geneve
/// without options): Ethernet 14 + IPv4 20 + UDP 8 + 8.
pub const OVERHEAD: usize = ETH_LEN + IP_LEN + UDP_LEN + 8;

/// First port of the UDP source range. RFC 7348 §5: "it is recommended
/// that the UDP source port number be calculated using a hash of fields
/// from the inner packet ... the dynamic/private port range 49152-65535"
/// (RFC 8926 §3.3 says the same for Geneve).
pub const SRC_PORT_BASE: u16 = 49152;

/// A hash of the inner frame's flow (MACs, EtherType, and for untagged
/// IPv4 the protocol, addresses and, with a 20-byte header, the L4 ports):
/// what stays the same for every packet of a flow, so a flow keeps one
/// outer source port (one ECMP path, no reordering).
#[inline]
pub fn flow_hash(inner: &[u8]) -> u32 {
    #[inline(always)]
    fn mix(h: u64, v: u64) -> u64 {
        (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
    }
    let word = |r: core::ops::Range<usize>| {
        inner.get(r).map_or(0, |b| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        })
    };
    let mut h = mix(0, word(0..8));
    h = mix(h, word(8..14));
    if inner.get(12..14) == Some(&ethertype::IPV4.to_be_bytes()) {
        h = mix(h, word(23..24));
        h = mix(h, word(26..34));
        let proto = inner.get(23).copied().unwrap_or(0);
        if inner.get(14) == Some(&0x45)
            && matches!(proto, protocol::TCP | protocol::UDP | protocol::SCTP)
        {
            h = mix(h, word(34..38));
        }
    }
    (h ^ (h >> 32)) as u32
}

/// The outer source port for a flow hash.
#[inline]
pub fn source_port(hash: u32) -> u16 {
    SRC_PORT_BASE + (hash % (65536 - u32::from(SRC_PORT_BASE))) as u16
}

/// The outer headers of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// VXLAN or Geneve.
    pub kind: TunnelKind,
    /// Outer source MAC.
    pub src_mac: [u8; 6],
    /// Next-hop MAC.
    pub dst_mac: [u8; 6],
    /// Local endpoint.
    pub src_ip: [u8; 4],
    /// Remote endpoint.
    pub dst_ip: [u8; 4],
    /// TTL.
    pub ttl: u8,
    /// TOS byte.
    pub tos: u8,
    /// Don't-fragment bit.
    pub df: bool,
    /// UDP destination port.
    pub dst_port: u16,
    /// VNI.
    pub vni: u32,
}

/// Put `o`'s headers in front of `frame`; false when the frame has no
/// headroom for them or is too long for an IPv4 packet.
pub fn encap<F: Frame>(frame: &mut F, o: &Outer) -> bool {
    let inner = frame.data().len();
    if inner + OVERHEAD - ETH_LEN > usize::from(u16::MAX) {
        return false;
    }
    let sport = source_port(flow_hash(frame.data()));
    if !frame.prepend(OVERHEAD) {
        return false;
    }
    let b = frame.data_mut();
    b[0..6].copy_from_slice(&o.dst_mac);
    b[6..12].copy_from_slice(&o.src_mac);
    b[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    let ip = Ipv4Repr {
        src: o.src_ip,
        dst: o.dst_ip,
        protocol: protocol::UDP,
        tos: o.tos,
        ttl: o.ttl,
        payload_len: UDP_LEN + 8 + inner,
    };
    ip.emit(&mut b[ETH_LEN..]);
    if !o.df {
        b[ETH_LEN + ipf::FLG_OFF.start] = 0;
        Ipv4Packet::new_unchecked(&mut b[ETH_LEN..ETH_LEN + IP_LEN]).fill_checksum();
    }
    let u = ETH_LEN + IP_LEN;
    UdpRepr {
        src_port: sport,
        dst_port: o.dst_port,
        payload_len: 8 + inner,
    }
    .emit(&mut b[u..u + UDP_LEN]);
    let t = &mut b[u + UDP_LEN..u + UDP_LEN + 8];
    match o.kind {
        TunnelKind::Vxlan => VxlanRepr { vni: o.vni }.emit(&mut VxlanPacket::new_unchecked(t)),
        TunnelKind::Geneve => GeneveRepr {
            vni: o.vni,
            options_len: 0,
        }
        .emit(&mut GenevePacket::new_unchecked(t)),
    }
    true
}

/// What to do with a frame sent to a tunnel port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    /// Encapsulated: transmit it on this underlay port.
    Send(u16),
    /// Dropped (counted on the tunnel).
    Drop(TunnelDrop),
    /// Dropped: the next hop is unknown; send an ARP request for `ip` from
    /// `mac`/`local_ip` on `port` (`None`: every non-tunnel port).
    Resolve {
        /// Remote endpoint to ask for.
        ip: [u8; 4],
        /// Asking endpoint's MAC.
        mac: [u8; 6],
        /// Asking endpoint's IP.
        local_ip: [u8; 4],
        /// Where to ask.
        port: Option<u16>,
    },
}

/// A worker's copy of the last neighbour it used, valid while the shared
/// table's generation is unchanged (one atomic load instead of a lock per
/// frame).
#[derive(Debug, Default)]
pub struct NeighbourMemo {
    ip: [u8; 4],
    generation: u64,
    n: Option<Neighbour>,
}

impl Endpoints {
    /// Encapsulate `frame`, sent to tunnel `t` (an index), with the key and
    /// remote of the port's options or, for `key=flow` / `remote_ip=flow`,
    /// `set` (the frame's `set_tunnel` / `tun_dst` actions) and then `rx`
    /// (the tunnel the frame arrived from, as OVS keeps a flow's tunnel
    /// metadata); key 0 when neither says.
    pub fn encap<F: Frame>(
        &self,
        t: usize,
        frame: &mut F,
        set: TunnelSet,
        rx: Option<&TunnelMeta>,
        memo: &mut NeighbourMemo,
        now_ms: u64,
    ) -> Tx {
        let Some(tun) = self.tunnels.get(t) else {
            return Tx::Drop(TunnelDrop::TxError);
        };
        let c = &tun.cfg;
        let Some(dst_ip) = c.remote_ip.or(set.dst) else {
            return Tx::Drop(TunnelDrop::NoRemote);
        };
        let vni = c.key.or(set.id).or(rx.map(|m| m.id)).unwrap_or(0);
        let Some(n) = self.next_hop(dst_ip, memo, now_ms) else {
            return Tx::Resolve {
                ip: dst_ip,
                mac: tun.mac,
                local_ip: c.local_ip,
                port: c.underlay,
            };
        };
        let o = Outer {
            kind: c.kind,
            src_mac: tun.mac,
            dst_mac: n.mac,
            src_ip: c.local_ip,
            dst_ip,
            ttl: c.ttl,
            tos: c.tos,
            df: c.df,
            dst_port: c.dst_port,
            vni,
        };
        if encap(frame, &o) {
            Tx::Send(n.port)
        } else {
            Tx::Drop(TunnelDrop::TxError)
        }
    }

    /// The next hop for `ip`, from the memo while the table is unchanged
    /// and the entry young; `None` when unresolved (a request is then due
    /// unless one went out within the last second: `Resolve` is returned
    /// either way, and the caller's request is rate-limited here).
    fn next_hop(&self, ip: [u8; 4], memo: &mut NeighbourMemo, now_ms: u64) -> Option<Neighbour> {
        let g = self.arp.generation();
        if let Some(n) = memo.n {
            if memo.ip == ip
                && memo.generation == g
                && now_ms + super::arp::ENTRY_TTL_MS / 2 < n.expires_ms
            {
                return Some(n);
            }
        }
        match self.arp.resolve(ip, now_ms) {
            Resolve::Known(n, refresh) => {
                *memo = NeighbourMemo {
                    ip,
                    generation: g,
                    n: (!refresh).then_some(n),
                };
                Some(n)
            }
            Resolve::Request | Resolve::Pending => None,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn source_port_in_range_and_stable_per_flow() {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&[8, 0]);
        f[14] = 0x45;
        f[23] = 6;
        let a = flow_hash(&f);
        // Fields that change per packet (ident, checksum, length) do not
        // move the flow.
        f[16..22].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        f[24..26].copy_from_slice(&[9, 9]);
        assert_eq!(flow_hash(&f), a);
        f[37] = 1; // destination port
        assert_ne!(flow_hash(&f), a);
        for h in [0, 1, 16383, 16384, u32::MAX] {
            assert!(source_port(h) >= 49152);
        }
        assert_eq!(flow_hash(&[]), flow_hash(&[]));
    }
}
