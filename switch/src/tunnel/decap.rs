//! The tunnel endpoints of a switch, and what a frame received on an
//! underlay port is to them ([`Endpoints::classify`]).

use std::sync::Arc;

use super::arp::ArpCache;
use super::stats::{TunnelDrop, TunnelStats};
use super::{TunnelConfig, TunnelKind, TunnelMeta};
use crate::verdict::MAX_PORTS;
use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{ethertype, HEADER_LEN};
use crate::wire::geneve::{GenevePacket, GeneveRepr};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::l4::protocol;
use crate::wire::udp::UdpPacket;
use crate::wire::vxlan::{VxlanPacket, VxlanRepr};
use crate::wire::{get_u16, Error};

/// One tunnel port.
#[derive(Debug, Clone)]
pub struct Tunnel {
    /// Its switch port number.
    pub port: u16,
    /// Its options.
    pub cfg: TunnelConfig,
    /// The outer source MAC (the option, or the underlay port's MAC).
    pub mac: [u8; 6],
    /// Its counters.
    pub stats: Arc<TunnelStats>,
}

/// What a frame received on an underlay port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    /// Not for a tunnel endpoint: the switch handles it as usual.
    Pass,
    /// A tunnel packet for `tunnel` (an index into [`Endpoints::tunnels`]):
    /// the inner frame is `outer_len..outer_len + inner_len`.
    Decap {
        /// Index of the tunnel.
        tunnel: usize,
        /// Outer header fields for the flow key.
        meta: TunnelMeta,
        /// Bytes of outer headers to strip.
        outer_len: usize,
        /// Length of the inner frame.
        inner_len: usize,
    },
    /// An ARP request for `tunnel`'s local IP: answer it
    /// ([`super::arp::build_reply`]) on the port it came from.
    ArpRequest {
        /// Index of the tunnel whose local IP was asked for.
        tunnel: usize,
        /// The asker's MAC.
        mac: [u8; 6],
        /// The asker's IP.
        ip: [u8; 4],
    },
    /// An ARP reply to a local IP: learned, nothing else to do.
    Consumed,
    /// For `tunnel`, but dropped (and counted there) for `why`.
    Drop {
        /// Index of the tunnel that counted it.
        tunnel: usize,
        /// Why.
        why: TunnelDrop,
    },
}

/// Every tunnel port of a switch, and the neighbour table they share.
#[derive(Default)]
pub struct Endpoints {
    /// The tunnel ports.
    pub tunnels: Vec<Tunnel>,
    /// Next hops of remote endpoints.
    pub arp: Arc<ArpCache>,
    underlays: u64,
    tunnel_ports: u64,
}

impl Endpoints {
    /// The endpoints of `tunnels`, sharing `arp`. Tunnels with the same
    /// local IP and UDP port must be of one kind.
    pub fn new(tunnels: Vec<Tunnel>, arp: Arc<ArpCache>) -> Result<Endpoints, String> {
        let (mut underlays, mut tunnel_ports) = (0u64, 0u64);
        for (i, t) in tunnels.iter().enumerate() {
            underlays |= match t.cfg.underlay {
                Some(u) if u < MAX_PORTS => 1 << u,
                Some(u) => return Err(format!("underlay port {u} out of range")),
                None => u64::MAX,
            };
            tunnel_ports |= 1 << t.port;
            if let Some(o) = tunnels[..i].iter().find(|o| {
                o.cfg.local_ip == t.cfg.local_ip
                    && o.cfg.dst_port == t.cfg.dst_port
                    && o.cfg.kind != t.cfg.kind
            }) {
                return Err(format!(
                    "{} and {} share local IP and UDP port {} but not the encapsulation",
                    o.cfg.name, t.cfg.name, t.cfg.dst_port
                ));
            }
        }
        for t in &tunnels {
            if let (Some(mac), Some(ip), Some(u)) =
                (t.cfg.remote_mac, t.cfg.remote_ip, t.cfg.underlay)
            {
                arp.set_static(ip, mac, u);
            }
        }
        Ok(Endpoints {
            underlays: underlays & !tunnel_ports,
            tunnel_ports,
            tunnels,
            arp,
        })
    }

    /// True when frames received on `port` must go through
    /// [`Endpoints::classify`] (it is, or may be, an underlay).
    #[inline(always)]
    pub fn is_underlay(&self, port: u16) -> bool {
        port < MAX_PORTS && self.underlays & (1 << port) != 0
    }

    /// Bit N set: switch port N is a tunnel port.
    #[inline(always)]
    pub fn tunnel_ports(&self) -> u64 {
        self.tunnel_ports
    }

    /// The index of the tunnel with switch port `port`.
    pub fn index_of(&self, port: u16) -> Option<usize> {
        self.tunnels.iter().position(|t| t.port == port)
    }

    fn underlay_ok(t: &Tunnel, in_port: u16) -> bool {
        t.cfg.underlay.is_none_or(|u| u == in_port)
    }

    /// What frame `d`, received on `in_port` at `now_ms`, is to the
    /// endpoints (ARP learning happens here). Never reads past `d`.
    pub fn classify(&self, in_port: u16, d: &[u8], now_ms: u64) -> Rx {
        if d.len() < HEADER_LEN {
            return Rx::Pass;
        }
        match get_u16(d, 12) {
            ethertype::IPV4 => self.classify_ipv4(in_port, d),
            ethertype::ARP => self.classify_arp(in_port, &d[HEADER_LEN..], now_ms),
            _ => Rx::Pass,
        }
    }

    fn local(&self, in_port: u16, ip: [u8; 4]) -> Option<usize> {
        self.tunnels
            .iter()
            .position(|t| t.cfg.local_ip == ip && Self::underlay_ok(t, in_port))
    }

    fn classify_arp(&self, in_port: u16, a: &[u8], now_ms: u64) -> Rx {
        let Ok(a) = ArpPacket::new_checked(a) else {
            return Rx::Pass;
        };
        let (spa, tpa) = (a.spa(), a.tpa());
        match (self.local(in_port, tpa), a.operation()) {
            // RFC 826: a request for our address: merge the sender, reply.
            (Some(t), 1) => {
                self.arp.learn(spa, a.sha(), in_port, now_ms);
                Rx::ArpRequest {
                    tunnel: t,
                    mac: a.sha(),
                    ip: spa,
                }
            }
            (Some(_), 2) => {
                self.arp.learn(spa, a.sha(), in_port, now_ms);
                Rx::Consumed
            }
            _ => {
                // Gratuitous ARP (sender = target) of a remote endpoint
                // we talk to: it moved or changed its MAC.
                let ours = self.tunnels.iter().any(|t| t.cfg.remote_ip == Some(spa))
                    || self.arp.entries().iter().any(|(ip, _)| *ip == spa);
                if spa == tpa && ours {
                    self.arp.learn(spa, a.sha(), in_port, now_ms);
                }
                Rx::Pass
            }
        }
    }

    fn classify_ipv4(&self, in_port: u16, d: &[u8]) -> Rx {
        // The common case, a frame not addressed to a local IP, leaves
        // after reading the destination address.
        let Some(dst) = d.get(30..34) else {
            return Rx::Pass;
        };
        let dst: [u8; 4] = dst.try_into().unwrap_or_default();
        let Some(first) = self.local(in_port, dst) else {
            return Rx::Pass;
        };
        let drop = |tunnel, why| Rx::Drop { tunnel, why };
        let ip = match Ipv4Packet::new_checked(&d[HEADER_LEN..]) {
            Ok(ip) => ip,
            Err(Error::Truncated) => return drop(first, TunnelDrop::Truncated),
            Err(Error::Malformed) => return drop(first, TunnelDrop::BadHeader),
        };
        if ip.protocol() != protocol::UDP {
            return Rx::Pass;
        }
        // RFC 7348 §4.3 / RFC 8926 §4.1.1: the endpoints do not fragment;
        // a fragment cannot be decapsulated on its own.
        if ip.is_fragment() || !ip.verify_checksum() {
            return drop(first, TunnelDrop::BadHeader);
        }
        let ip_payload = &d[HEADER_LEN + ip.header_len()..HEADER_LEN + usize::from(ip.total_len())];
        let udp = match UdpPacket::new_checked(ip_payload) {
            Ok(u) => u,
            Err(Error::Truncated) => return drop(first, TunnelDrop::Truncated),
            Err(Error::Malformed) => return drop(first, TunnelDrop::BadHeader),
        };
        let dport = udp.dst_port();
        let src = ip.src_addr();
        let cands = || {
            self.tunnels.iter().enumerate().filter(move |(_, t)| {
                t.cfg.local_ip == dst && t.cfg.dst_port == dport && Self::underlay_ok(t, in_port)
            })
        };
        let Some((_, t0)) = cands().next() else {
            return drop(first, TunnelDrop::BadPort);
        };
        let first = cands().next().map_or(first, |(i, _)| i);
        let payload = udp.payload();
        let (vni, hdr) = match t0.cfg.kind {
            TunnelKind::Vxlan => {
                let Ok(p) = VxlanPacket::new_checked(payload) else {
                    return drop(first, TunnelDrop::Truncated);
                };
                match VxlanRepr::parse(&p) {
                    Ok(r) => (r.vni, r.buffer_len()),
                    Err(_) => return drop(first, TunnelDrop::BadHeader),
                }
            }
            TunnelKind::Geneve => {
                let Ok(p) = GenevePacket::new_checked(payload) else {
                    return drop(first, TunnelDrop::Truncated);
                };
                match GeneveRepr::parse(&p) {
                    Ok(r) => (r.vni, crate::wire::geneve::HEADER_LEN + r.options_len),
                    Err(_) => return drop(first, TunnelDrop::BadHeader),
                }
            }
        };
        let inner_len = payload.len() - hdr;
        if inner_len < HEADER_LEN {
            return drop(first, TunnelDrop::Truncated);
        }
        // The most specific port wins: fixed remote over remote_ip=flow,
        // then fixed key over key=flow (as OVS's tunnel port lookup).
        let mut best: Option<(usize, u8)> = None;
        let mut remote_hit = None;
        for (i, t) in cands() {
            let remote_fixed = match t.cfg.remote_ip {
                Some(r) if r == src => true,
                Some(_) => continue,
                None => false,
            };
            remote_hit.get_or_insert(i);
            let key_fixed = match t.cfg.key {
                Some(k) if k == vni => true,
                Some(_) => continue,
                None => false,
            };
            let score = u8::from(remote_fixed) * 2 + u8::from(key_fixed);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        match (best, remote_hit) {
            (Some((tunnel, _)), _) => Rx::Decap {
                tunnel,
                meta: TunnelMeta { id: vni, src, dst },
                outer_len: HEADER_LEN + ip.header_len() + crate::wire::udp::HEADER_LEN + hdr,
                inner_len,
            },
            (None, Some(t)) => drop(t, TunnelDrop::BadVni),
            (None, None) => drop(first, TunnelDrop::UnknownRemote),
        }
    }
}
