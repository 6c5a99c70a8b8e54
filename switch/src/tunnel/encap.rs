//! Encapsulation: the outer Ethernet/IPv4/UDP and VXLAN or Geneve headers
//! in front of a frame sent to a tunnel port.

use super::arp::Resolve;
use super::decap::Endpoints;
use super::stats::TunnelDrop;
use super::{TunnelKind, TunnelMeta};
use crate::action::TunnelSet;
use crate::frame::Frame;
use crate::wire::ethernet::{ethertype, HEADER_LEN as ETH_LEN};
use crate::wire::geneve::{GenevePacket, GeneveRepr};
use crate::wire::ipv4::{field as ipf, Ipv4Repr, MIN_HEADER_LEN as IP_LEN};
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
///
/// Four 64-bit words folded by two independent 128-bit multiplies and a
/// third (as [`crate::key::FlowKey::hash`]): a short dependency chain, since
/// it runs once per encapsulated frame.
#[inline]
pub fn flow_hash(inner: &[u8]) -> u32 {
    const K: [u64; 4] = [
        0xa076_1d64_78bd_642f,
        0xe703_7ed1_a0b4_28db,
        0x8ebc_6af0_9c88_c6e3,
        0x5899_65cc_7537_4cc3,
    ];
    #[inline(always)]
    fn mix(a: u64, b: u64) -> u64 {
        let r = u128::from(a).wrapping_mul(u128::from(b));
        (r as u64) ^ ((r >> 64) as u64)
    }
    // Shorter frames hash as if zero-padded.
    let mut pad = [0u8; 38];
    let b: &[u8; 38] = match inner.first_chunk::<38>() {
        Some(b) => b,
        None => {
            pad[..inner.len()].copy_from_slice(inner);
            &pad
        }
    };
    let w = |o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    // Destination MAC and source MAC, EtherType (bytes 0..14).
    let (macs, src_type) = (w(0), w(6));
    let (ip, l4) = if b[12..14] == ethertype::IPV4.to_be_bytes() {
        let proto = b[23];
        let ports =
            if b[14] == 0x45 && matches!(proto, protocol::TCP | protocol::UDP | protocol::SCTP) {
                u32::from_le_bytes([b[34], b[35], b[36], b[37]])
            } else {
                0
            };
        (w(26), u64::from(ports) | u64::from(proto) << 32)
    } else {
        (0, 0)
    };
    let x = mix(macs ^ K[0], src_type ^ K[1]);
    let y = mix(ip ^ K[2], l4 ^ K[3]);
    let h = mix(x ^ K[1], y ^ K[3]);
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

/// Put `o`'s headers in front of `frame` (outer source port from the
/// inner flow, [`flow_hash`]); false when the frame has no headroom for
/// them or is too long for an IPv4 packet.
pub fn encap<F: Frame>(frame: &mut F, o: &Outer) -> bool {
    let sport = source_port(flow_hash(frame.data()));
    Template::new(o).apply(frame, sport)
}

/// Offsets of the per-packet fields in the outer headers.
mod at {
    use super::{ETH_LEN, IP_LEN};
    use crate::wire::ipv4::field as ip;
    use crate::wire::udp::field as udp;
    /// IPv4 total length.
    pub const IP_TOTAL: usize = ETH_LEN + ip::LENGTH.start;
    /// IPv4 header checksum.
    pub const IP_CSUM: usize = ETH_LEN + ip::CHECKSUM.start;
    /// UDP source port.
    pub const UDP_SRC: usize = ETH_LEN + IP_LEN + udp::SRC_PORT.start;
    /// UDP length.
    pub const UDP_LEN: usize = ETH_LEN + IP_LEN + udp::LENGTH.start;
}

/// The outer headers of one tunnel, next hop and VNI, built once: each
/// packet then costs one 50-byte copy and four 16-bit stores (IPv4 total
/// length and checksum, UDP source port and length), not a header build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// The headers with the per-packet fields zero (UDP checksum 0: RFC
    /// 7348 §5 "UDP Checksum: It SHOULD be transmitted as zero", RFC 8926
    /// §3.3 allows it over IPv4).
    hdr: [u8; OVERHEAD],
    /// One's-complement sum of the IPv4 header's 16-bit words with the
    /// total length and checksum zero, folded to 16 bits: the checksum of
    /// a packet is this plus its total length, folded and complemented
    /// (RFC 1071 §1: the sum may be taken in any order, and an
    /// incremental update of one field is a sum too, RFC 1624 §3).
    sum: u32,
}

impl Template {
    /// The headers `o` describes.
    pub fn new(o: &Outer) -> Template {
        let mut hdr = [0u8; OVERHEAD];
        hdr[0..6].copy_from_slice(&o.dst_mac);
        hdr[6..12].copy_from_slice(&o.src_mac);
        hdr[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        Ipv4Repr {
            src: o.src_ip,
            dst: o.dst_ip,
            protocol: protocol::UDP,
            tos: o.tos,
            ttl: o.ttl,
            payload_len: 0,
        }
        .emit(&mut hdr[ETH_LEN..ETH_LEN + IP_LEN]);
        if !o.df {
            // RFC 791 §3.1 flags: bit 1 "DF"; the options' df_default=false.
            hdr[ETH_LEN + ipf::FLG_OFF.start] = 0;
        }
        hdr[at::IP_TOTAL..at::IP_TOTAL + 2].fill(0);
        hdr[at::IP_CSUM..at::IP_CSUM + 2].fill(0);
        let u = ETH_LEN + IP_LEN;
        UdpRepr {
            src_port: 0,
            dst_port: o.dst_port,
            payload_len: 0,
        }
        .emit(&mut hdr[u..u + UDP_LEN]);
        hdr[at::UDP_LEN..at::UDP_LEN + 2].fill(0);
        let t = &mut hdr[u + UDP_LEN..];
        match o.kind {
            TunnelKind::Vxlan => VxlanRepr { vni: o.vni }.emit(&mut VxlanPacket::new_unchecked(t)),
            TunnelKind::Geneve => GeneveRepr {
                vni: o.vni,
                options_len: 0,
            }
            .emit(&mut GenevePacket::new_unchecked(t)),
        }
        let mut sum: u32 = hdr[ETH_LEN..ETH_LEN + IP_LEN]
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        Template { hdr, sum }
    }

    /// Put the headers in front of `frame`, with outer UDP source port
    /// `sport`; false when the frame has no headroom for them or is too
    /// long for an IPv4 packet.
    #[inline(always)]
    pub fn apply<F: Frame>(&self, frame: &mut F, sport: u16) -> bool {
        let total = frame.data().len() + OVERHEAD - ETH_LEN;
        let Ok(total) = u16::try_from(total) else {
            return false;
        };
        if !frame.prepend(OVERHEAD) {
            return false;
        }
        // The template with the per-packet fields patched in a register
        // copy, stored once (no store then overwrite of the same bytes).
        let mut h = self.hdr;
        let mut s = self.sum + u32::from(total);
        s = (s & 0xffff) + (s >> 16);
        h[at::IP_TOTAL..at::IP_TOTAL + 2].copy_from_slice(&total.to_be_bytes());
        h[at::IP_CSUM..at::IP_CSUM + 2].copy_from_slice(&(!(s as u16)).to_be_bytes());
        h[at::UDP_SRC..at::UDP_SRC + 2].copy_from_slice(&sport.to_be_bytes());
        h[at::UDP_LEN..at::UDP_LEN + 2].copy_from_slice(&(total - IP_LEN as u16).to_be_bytes());
        frame.data_mut()[..OVERHEAD].copy_from_slice(&h);
        true
    }
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

/// A worker's prebuilt outer headers for the last tunnel, VNI and remote
/// it encapsulated for, valid while the shared neighbour table's
/// generation is unchanged and the entry young (one atomic load instead
/// of a lock and a header build per frame).
#[derive(Debug)]
pub struct NeighbourMemo {
    tunnel: usize,
    ip: [u8; 4],
    vni: u32,
    generation: u64,
    /// Reused until this time (ms); 0: not reusable.
    use_until: u64,
    /// The underlay port the next hop was learned on.
    port: u16,
    tpl: Template,
}

impl Default for NeighbourMemo {
    fn default() -> NeighbourMemo {
        NeighbourMemo {
            tunnel: usize::MAX,
            ip: [0; 4],
            vni: 0,
            generation: 0,
            use_until: 0,
            port: 0,
            tpl: Template {
                hdr: [0; OVERHEAD],
                sum: 0,
            },
        }
    }
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
        match self.template(t, set, rx, memo, now_ms) {
            Ok((tpl, port)) => {
                if tpl.apply(frame, source_port(flow_hash(frame.data()))) {
                    Tx::Send(port)
                } else {
                    Tx::Drop(TunnelDrop::TxError)
                }
            }
            Err(tx) => tx,
        }
    }

    /// True when tunnel `t`'s outer headers do not depend on the frame
    /// (fixed `key` and `remote_ip`): one [`Endpoints::template`] serves
    /// every frame of a burst.
    #[inline]
    pub fn fixed_outer(&self, t: usize) -> bool {
        self.tunnels
            .get(t)
            .is_some_and(|x| x.cfg.key.is_some() && x.cfg.remote_ip.is_some())
    }

    /// The outer headers for a frame sent to tunnel `t` (see
    /// [`Endpoints::encap`] for `set` and `rx`) and the underlay port to
    /// send it on, from `memo` when it holds them; otherwise what to do
    /// instead (`Tx::Drop` or `Tx::Resolve`).
    #[inline]
    pub fn template<'m>(
        &self,
        t: usize,
        set: TunnelSet,
        rx: Option<&TunnelMeta>,
        memo: &'m mut NeighbourMemo,
        now_ms: u64,
    ) -> Result<(&'m Template, u16), Tx> {
        let Some(tun) = self.tunnels.get(t) else {
            return Err(Tx::Drop(TunnelDrop::TxError));
        };
        let c = &tun.cfg;
        let Some(dst_ip) = c.remote_ip.or(set.dst) else {
            return Err(Tx::Drop(TunnelDrop::NoRemote));
        };
        let vni = c.key.or(set.id).or(rx.map(|m| m.id)).unwrap_or(0);
        let g = self.arp.generation();
        if memo.tunnel == t
            && memo.ip == dst_ip
            && memo.vni == vni
            && memo.generation == g
            && now_ms < memo.use_until
        {
            return Ok((&memo.tpl, memo.port));
        }
        self.build_template(t, dst_ip, vni, g, memo, now_ms)
    }

    /// [`Endpoints::template`]'s slow path: resolve the next hop (unknown:
    /// `Resolve`; the caller's request is rate-limited by the table) and
    /// build the headers into `memo`.
    #[cold]
    #[inline(never)]
    fn build_template<'m>(
        &self,
        t: usize,
        dst_ip: [u8; 4],
        vni: u32,
        generation: u64,
        memo: &'m mut NeighbourMemo,
        now_ms: u64,
    ) -> Result<(&'m Template, u16), Tx> {
        let tun = &self.tunnels[t];
        let c = &tun.cfg;
        let (n, refresh) = match self.arp.resolve(dst_ip, now_ms) {
            Resolve::Known(n, refresh) => (n, refresh),
            // A request went out less than a second ago: drop without
            // asking again (one request per remote per interval, not one
            // per dropped frame).
            Resolve::Pending => return Err(Tx::Drop(TunnelDrop::NoArp)),
            Resolve::Request => {
                return Err(Tx::Resolve {
                    ip: dst_ip,
                    mac: tun.mac,
                    local_ip: c.local_ip,
                    port: c.underlay,
                })
            }
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
        *memo = NeighbourMemo {
            tunnel: t,
            ip: dst_ip,
            vni,
            generation,
            // An entry due for refresh is not reused: the next frame asks
            // the table again (which sends the refresh request).
            use_until: if refresh {
                0
            } else {
                n.expires_ms.saturating_sub(super::arp::ENTRY_TTL_MS / 2)
            },
            port: n.port,
            tpl: Template::new(&o),
        };
        Ok((&memo.tpl, memo.port))
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

    /// The template's per-packet fields: lengths, checksum (checked by a
    /// full computation over the written header) and source port, for
    /// every option combination and frame sizes up to the IPv4 limit.
    #[test]
    fn template_writes_valid_headers() {
        use crate::frame::VecFrame;
        use crate::wire::ipv4::Ipv4Packet;
        use crate::wire::udp::UdpPacket;
        for (kind, df, tos, ttl) in [
            (TunnelKind::Vxlan, true, 0, 64),
            (TunnelKind::Geneve, false, 0xb8, 1),
            (TunnelKind::Vxlan, false, 0xff, 255),
        ] {
            let o = Outer {
                kind,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                src_ip: [192, 168, 1, 1],
                dst_ip: [10, 255, 0, 254],
                ttl,
                tos,
                df,
                dst_port: 4789,
                vni: 0xabcdef,
            };
            let tpl = Template::new(&o);
            for len in [14, 60, 1514, 9000, 65535 - 50, 65535 - 49] {
                let inner: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut f = VecFrame::new(&inner);
                let ok = tpl.apply(&mut f, 50000);
                assert_eq!(ok, len + OVERHEAD - ETH_LEN <= 65535, "{len}");
                if !ok {
                    continue;
                }
                let b = f.data();
                assert_eq!(&b[OVERHEAD..], &inner[..]);
                assert_eq!(&b[0..6], &o.dst_mac);
                let ip = Ipv4Packet::new_checked(&b[ETH_LEN..]).unwrap();
                assert!(ip.verify_checksum(), "{kind:?} {len}");
                let r = Ipv4Repr::parse(&ip);
                assert_eq!((r.src, r.dst, r.tos, r.ttl), (o.src_ip, o.dst_ip, tos, ttl));
                assert_eq!(r.payload_len, len + OVERHEAD - ETH_LEN - IP_LEN);
                assert_eq!(b[ETH_LEN + 6] & 0x40 != 0, df);
                let u = UdpPacket::new_checked(&b[ETH_LEN + IP_LEN..]).unwrap();
                assert_eq!((u.src_port(), u.dst_port()), (50000, 4789));
                assert_eq!(usize::from(u.len()), len + OVERHEAD - ETH_LEN - IP_LEN);
                assert_eq!(u.checksum(), 0);
            }
        }
    }
}
