//! Packet header fields as `load`/`move` operands (OVS's `lib/meta-flow.xml`
//! fields that live in the frame, as opposed to the registers of
//! [`crate::regs`]): `move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]`,
//! `load:0x2->NXM_OF_ARP_OP[]`, `move:NXM_OF_IN_PORT[]->NXM_NX_REG14[]`.
//!
//! Every field here is in the [`FlowKey`], so the pipeline translation
//! ([`crate::pipeline`]) reads a source field from the (masked) key and
//! turns a write into the constant rewrite it amounts to (`SetEthDst(mac)`,
//! `SetArpOp(2)`, ...). The version's lookup mask includes every field an
//! action reads (OVS un-wildcards a `move` source the same way), so the
//! compiled entry holds for every frame that shares the cached key and
//! frames pay nothing at run time beyond the rewrite itself.

use crate::action::{Action, L4Proto};
use crate::key::{field as kf, FlowKey, VLAN_PRESENT};
use crate::wire::ethernet::ethertype;

/// A packet field `load`/`move` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PktField {
    /// NXM_OF_IN_PORT (16 bits). A write changes what the rest of the
    /// pipeline takes for the ingress port (later lookups, `IN_PORT`,
    /// the "never out of the ingress port" rule of `output`/`FLOOD`/`ALL`),
    /// not the port the frame came in by.
    InPort,
    /// NXM_OF_ETH_DST.
    EthDst,
    /// NXM_OF_ETH_SRC.
    EthSrc,
    /// NXM_OF_ETH_TYPE (read only).
    EthType,
    /// NXM_OF_IP_TOS: the DSCP in the upper 6 of 8 bits (`nw_tos`).
    IpTos,
    /// NXM_OF_IP_PROTO (read only).
    IpProto,
    /// NXM_OF_IP_SRC.
    IpSrc,
    /// NXM_OF_IP_DST.
    IpDst,
    /// NXM_OF_TCP_SRC.
    TcpSrc,
    /// NXM_OF_TCP_DST.
    TcpDst,
    /// NXM_OF_UDP_SRC.
    UdpSrc,
    /// NXM_OF_UDP_DST.
    UdpDst,
    /// NXM_OF_ICMP_TYPE.
    IcmpType,
    /// NXM_OF_ICMP_CODE.
    IcmpCode,
    /// NXM_OF_ARP_OP (16 bits; the key keeps opcodes 0..=255, as OVS).
    ArpOp,
    /// NXM_OF_ARP_SPA.
    ArpSpa,
    /// NXM_OF_ARP_TPA.
    ArpTpa,
    /// NXM_NX_ARP_SHA.
    ArpSha,
    /// NXM_NX_ARP_THA.
    ArpTha,
    /// NXM_NX_IPV6_SRC.
    Ipv6Src,
    /// NXM_NX_IPV6_DST.
    Ipv6Dst,
    /// NXM_NX_IP_ECN (2 bits).
    IpEcn,
    /// NXM_NX_IP_TTL.
    IpTtl,
    /// NXM_OF_VLAN_TCI (16 bits: PCP, the CFI bit as "a tag is present",
    /// VID; 0 without a tag). A write with the CFI bit sets the outer tag
    /// (pushing an 802.1Q tag on an untagged frame), one without it pops
    /// the frame's tags (OVS's `commit_vlan_action`).
    VlanTci,
    /// NXM_NX_TUN_ID (64 bits; the switch's tunnels carry 24-bit keys, so
    /// writes go to bits 0..23 only, as `set_tunnel`). Reads 0 for frames
    /// not from a tunnel port and for IPv6 frames (their key has no room
    /// for the tunnel fields).
    TunId,
    /// NXM_NX_TUN_IPV4_SRC: the outer source (read only: the local
    /// address is the tunnel port's).
    TunSrc,
    /// NXM_NX_TUN_IPV4_DST: the outer destination (as `set_field:A->tun_dst`
    /// when written).
    TunDst,
}

/// What a field needs the flow to be (OVS's `enum mf_prereqs`), checked
/// against a rule's match when the rule is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    /// Any frame.
    None,
    /// `arp` or `rarp` (MFP_ARP).
    Arp,
    /// `ip` or `ipv6` (MFP_IP_ANY).
    IpAny,
    /// `ip` (MFP_IPV4).
    Ipv4,
    /// `ipv6` (MFP_IPV6).
    Ipv6,
    /// IP with `nw_proto=6` (MFP_TCP).
    Tcp,
    /// IP with `nw_proto=17` (MFP_UDP).
    Udp,
    /// `icmp` (MFP_ICMPV4: IPv4 with `nw_proto=1`).
    Icmpv4,
}

/// Every field, in NXM order (for tests and the fuzz dictionary).
pub const ALL: [PktField; 27] = [
    PktField::InPort,
    PktField::EthDst,
    PktField::EthSrc,
    PktField::EthType,
    PktField::IpTos,
    PktField::IpProto,
    PktField::IpSrc,
    PktField::IpDst,
    PktField::TcpSrc,
    PktField::TcpDst,
    PktField::UdpSrc,
    PktField::UdpDst,
    PktField::IcmpType,
    PktField::IcmpCode,
    PktField::ArpOp,
    PktField::ArpSpa,
    PktField::ArpTpa,
    PktField::ArpSha,
    PktField::ArpTha,
    PktField::Ipv6Src,
    PktField::Ipv6Dst,
    PktField::IpEcn,
    PktField::IpTtl,
    PktField::VlanTci,
    PktField::TunId,
    PktField::TunSrc,
    PktField::TunDst,
];

impl PktField {
    /// `(NXM name, meta-flow name, other accepted name)`.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        use PktField::*;
        match self {
            InPort => ("NXM_OF_IN_PORT", "in_port", "in_port"),
            EthDst => ("NXM_OF_ETH_DST", "eth_dst", "dl_dst"),
            EthSrc => ("NXM_OF_ETH_SRC", "eth_src", "dl_src"),
            EthType => ("NXM_OF_ETH_TYPE", "eth_type", "dl_type"),
            IpTos => ("NXM_OF_IP_TOS", "nw_tos", "nw_tos"),
            IpProto => ("NXM_OF_IP_PROTO", "nw_proto", "ip_proto"),
            IpSrc => ("NXM_OF_IP_SRC", "ip_src", "nw_src"),
            IpDst => ("NXM_OF_IP_DST", "ip_dst", "nw_dst"),
            TcpSrc => ("NXM_OF_TCP_SRC", "tcp_src", "tcp_src"),
            TcpDst => ("NXM_OF_TCP_DST", "tcp_dst", "tcp_dst"),
            UdpSrc => ("NXM_OF_UDP_SRC", "udp_src", "udp_src"),
            UdpDst => ("NXM_OF_UDP_DST", "udp_dst", "udp_dst"),
            IcmpType => ("NXM_OF_ICMP_TYPE", "icmp_type", "icmpv4_type"),
            IcmpCode => ("NXM_OF_ICMP_CODE", "icmp_code", "icmpv4_code"),
            ArpOp => ("NXM_OF_ARP_OP", "arp_op", "arp_op"),
            ArpSpa => ("NXM_OF_ARP_SPA", "arp_spa", "arp_spa"),
            ArpTpa => ("NXM_OF_ARP_TPA", "arp_tpa", "arp_tpa"),
            ArpSha => ("NXM_NX_ARP_SHA", "arp_sha", "arp_sha"),
            ArpTha => ("NXM_NX_ARP_THA", "arp_tha", "arp_tha"),
            Ipv6Src => ("NXM_NX_IPV6_SRC", "ipv6_src", "ipv6_src"),
            Ipv6Dst => ("NXM_NX_IPV6_DST", "ipv6_dst", "ipv6_dst"),
            IpEcn => ("NXM_NX_IP_ECN", "nw_ecn", "ip_ecn"),
            IpTtl => ("NXM_NX_IP_TTL", "nw_ttl", "nw_ttl"),
            VlanTci => ("NXM_OF_VLAN_TCI", "vlan_tci", "vlan_tci"),
            TunId => ("NXM_NX_TUN_ID", "tun_id", "tunnel_id"),
            TunSrc => ("NXM_NX_TUN_IPV4_SRC", "tun_src", "tun_ipv4_src"),
            TunDst => ("NXM_NX_TUN_IPV4_DST", "tun_dst", "tun_ipv4_dst"),
        }
    }

    /// The name `ovs-ofctl` prints in a subfield (the field's NXM name).
    pub fn nxm_name(self) -> &'static str {
        self.names().0
    }

    /// The meta-flow name `ovs-ofctl` prints after `set_field:V->`
    /// (`in_port`, `eth_src`).
    pub fn mf_name(self) -> &'static str {
        self.names().1
    }

    /// Parse an NXM name, its OXM twin (`OXM_OF_ETH_SRC`) or a meta-flow
    /// name (`eth_src`, `dl_src`), case-insensitively.
    pub fn parse(s: &str) -> Option<PktField> {
        let l = s.trim().to_ascii_lowercase();
        ALL.into_iter().find(|f| {
            let (nxm, a, b) = f.names();
            let nxm = nxm.to_ascii_lowercase();
            let oxm = nxm
                .replacen("nxm_of_", "oxm_of_", 1)
                .replacen("nxm_nx_", "oxm_of_", 1);
            l == nxm || l == a || l == b || l == oxm
        })
    }

    /// Width in bits.
    pub fn bits(self) -> u8 {
        use PktField::*;
        match self {
            TunId => 64,
            EthDst | EthSrc | ArpSha | ArpTha => 48,
            InPort | EthType | VlanTci | TcpSrc | TcpDst | UdpSrc | UdpDst | ArpOp => 16,
            IpTos | IpProto | IcmpType | IcmpCode | IpTtl => 8,
            IpEcn => 2,
            IpSrc | IpDst | ArpSpa | ArpTpa | TunSrc | TunDst => 32,
            Ipv6Src | Ipv6Dst => 128,
        }
    }

    /// False for the fields OVS does not let actions write (`eth_type`,
    /// `nw_proto`), and `tun_src`, which this switch does not write.
    pub fn writable(self) -> bool {
        !matches!(
            self,
            PktField::EthType | PktField::IpProto | PktField::TunSrc
        )
    }

    /// True for the tunnel metadata fields.
    pub fn is_tunnel(self) -> bool {
        matches!(self, PktField::TunId | PktField::TunSrc | PktField::TunDst)
    }

    /// The field's prerequisites (`lib/meta-flow.xml`).
    pub fn prereq(self) -> Prereq {
        use PktField::*;
        match self {
            InPort | EthDst | EthSrc | EthType | VlanTci | TunId | TunSrc | TunDst => Prereq::None,
            IpTos | IpProto | IpEcn | IpTtl => Prereq::IpAny,
            IpSrc | IpDst => Prereq::Ipv4,
            Ipv6Src | Ipv6Dst => Prereq::Ipv6,
            TcpSrc | TcpDst => Prereq::Tcp,
            UdpSrc | UdpDst => Prereq::Udp,
            IcmpType | IcmpCode => Prereq::Icmpv4,
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => Prereq::Arp,
        }
    }

    /// The key bytes the field occupies (whole bytes: `nw_tos` for the
    /// DSCP and ECN fields).
    pub fn key_range(self) -> core::ops::Range<usize> {
        use PktField::*;
        let b = |i: usize| i..i + 1;
        match self {
            InPort => kf::IN_PORT,
            VlanTci => kf::VLAN_TCI,
            EthDst => kf::DL_DST,
            EthSrc => kf::DL_SRC,
            EthType => kf::DL_TYPE,
            IpTos | IpEcn => b(kf::NW_TOS),
            IpProto | ArpOp => b(kf::NW_PROTO),
            IpTtl => b(kf::NW_TTL),
            IpSrc | ArpSpa => kf::NW_SRC4,
            IpDst | ArpTpa => kf::NW_DST4,
            TcpSrc | UdpSrc => kf::TP_SRC,
            TcpDst | UdpDst => kf::TP_DST,
            IcmpType => kf::TP_SRC.end - 1..kf::TP_SRC.end,
            IcmpCode => kf::TP_DST.end - 1..kf::TP_DST.end,
            ArpSha => kf::ARP_SHA,
            ArpTha => kf::ARP_THA,
            Ipv6Src => kf::NW_SRC6,
            Ipv6Dst => kf::NW_DST6,
            TunId => kf::TUN_ID,
            TunSrc => kf::TUN_SRC,
            TunDst => kf::TUN_DST,
        }
    }

    /// The field's value in `key` (right-aligned).
    pub fn get(self, key: &FlowKey) -> u128 {
        if self.is_tunnel() && key.dl_type() == ethertype::IPV6 {
            // The tunnel fields' bytes hold the IPv6 destination.
            return 0;
        }
        let v = key
            .range(self.key_range())
            .iter()
            .fold(0u128, |a, &b| a << 8 | u128::from(b));
        match self {
            PktField::IpTos => v & 0xfc,
            PktField::IpEcn => v & 3,
            _ => v,
        }
    }

    /// True when the key's frame has the field (a rewrite of a field the
    /// frame lacks does nothing, as OVS's `commit_set_*_action`s).
    pub fn present(self, key: &FlowKey) -> bool {
        let t = key.dl_type();
        let ip = matches!(t, ethertype::IPV4 | ethertype::IPV6);
        let not_later = key.nw_frag() & crate::key::FRAG_LATER == 0;
        match self.prereq() {
            Prereq::None => true,
            Prereq::Arp => t == ethertype::ARP || t == RARP,
            Prereq::IpAny => ip,
            Prereq::Ipv4 => t == ethertype::IPV4,
            Prereq::Ipv6 => t == ethertype::IPV6,
            Prereq::Tcp => ip && key.nw_proto() == 6 && not_later,
            Prereq::Udp => ip && key.nw_proto() == 17 && not_later,
            Prereq::Icmpv4 => t == ethertype::IPV4 && key.nw_proto() == 1 && not_later,
        }
    }

    /// The primitive rewrite that sets the whole field to `v`; `None` for
    /// fields not [`writable`](Self::writable), for `in_port` (pipeline
    /// state: the translation keeps it in the key) and for `vlan_tci`
    /// (up to three rewrites: [`vlan_tci_actions`]).
    pub fn set_action(self, v: u128) -> Option<Action> {
        use PktField::*;
        let b = v.to_be_bytes();
        let mac = || -> [u8; 6] { b[10..16].try_into().unwrap() };
        let ip4 = || -> [u8; 4] { b[12..16].try_into().unwrap() };
        let u16v = v as u16;
        Some(match self {
            EthDst => Action::SetEthDst(mac()),
            EthSrc => Action::SetEthSrc(mac()),
            IpTos => Action::SetIpDscp((v as u8) >> 2),
            IpEcn => Action::SetIpEcn(v as u8 & 3),
            IpTtl => Action::SetNwTtl(v as u8),
            IpSrc => Action::SetIpv4Src(ip4()),
            IpDst => Action::SetIpv4Dst(ip4()),
            Ipv6Src => Action::SetIpv6Src(b),
            Ipv6Dst => Action::SetIpv6Dst(b),
            TcpSrc => Action::SetL4Src(L4Proto::Tcp, u16v),
            TcpDst => Action::SetL4Dst(L4Proto::Tcp, u16v),
            UdpSrc => Action::SetL4Src(L4Proto::Udp, u16v),
            UdpDst => Action::SetL4Dst(L4Proto::Udp, u16v),
            IcmpType => Action::SetIcmpType(v as u8),
            IcmpCode => Action::SetIcmpCode(v as u8),
            ArpOp => Action::SetArpOp(u16v),
            ArpSpa => Action::SetArpSpa(ip4()),
            ArpTpa => Action::SetArpTpa(ip4()),
            ArpSha => Action::SetArpSha(mac()),
            ArpTha => Action::SetArpTha(mac()),
            TunId => Action::SetTunId(v as u32 & 0x00ff_ffff),
            TunDst => Action::SetTunDst(ip4()),
            InPort | EthType | IpProto | VlanTci | TunSrc => return None,
        })
    }
}

/// The rewrites a write of NXM_OF_VLAN_TCI from `old` to `new` amounts
/// to, the first `n` of the array (OVS's `commit_vlan_action` with its
/// default `vlan-limit=1`, one tag known): none when unchanged; with the
/// CFI bit ([`VLAN_PRESENT`]) the outer tag's VID and PCP set, an 802.1Q
/// tag pushed first on an untagged frame (a changed tag goes out with DEI
/// 0, as after OVS's pop and push: see the executor of
/// [`Action::SetVlanVid`]); without it the outer tag popped.
pub fn vlan_tci_actions(old: u16, new: u16) -> ([Action; 2], usize) {
    if new == old {
        return ([Action::PopVlan; 2], 0);
    }
    if new & VLAN_PRESENT == 0 {
        return ([Action::PopVlan; 2], usize::from(old & VLAN_PRESENT != 0));
    }
    let set = [
        Action::SetVlanVid(new & 0x0fff),
        Action::SetVlanPcp((new >> 13) as u8),
    ];
    (set, 2)
}

/// RARP's EtherType (RFC 903), which OVS's MFP_ARP also admits.
pub const RARP: u16 = 0x8035;

impl Prereq {
    /// True when every frame `matcher` admits satisfies the prerequisite
    /// (OVS's `mf_are_match_prereqs_ok`: the match must pin `dl_type`, and
    /// `nw_proto` for the L4 fields).
    pub fn ok(self, matcher: &crate::rule::Match) -> bool {
        let (m, v) = (&matcher.mask, &matcher.value);
        let dl = (m.dl_type() == 0xffff).then(|| v.dl_type());
        let proto = (m.nw_proto() == 0xff).then(|| v.nw_proto());
        let ip = matches!(dl, Some(ethertype::IPV4 | ethertype::IPV6));
        match self {
            Prereq::None => true,
            Prereq::Arp => matches!(dl, Some(ethertype::ARP | RARP)),
            Prereq::IpAny => ip,
            Prereq::Ipv4 => dl == Some(ethertype::IPV4),
            Prereq::Ipv6 => dl == Some(ethertype::IPV6),
            Prereq::Tcp => ip && proto == Some(6),
            Prereq::Udp => ip && proto == Some(17),
            Prereq::Icmpv4 => dl == Some(ethertype::IPV4) && proto == Some(1),
        }
    }
}

/// Running the ARP and ICMP rewrites on frame bytes.
pub(crate) mod exec {
    use crate::action::{csum_replace, Action};
    use crate::wire::ethernet::ethertype;

    /// ARP for Ethernet/IPv4 (RFC 826): opcode at 6, sha 8, spa 14, tha 18,
    /// tpa 24, 28 bytes. Other ARP frames (other hardware or protocol
    /// sizes) are left alone, as the key extraction leaves their fields 0.
    pub(crate) fn set_arp(d: &mut [u8], l3: usize, a: &Action) {
        if l3 < 14 || d.len() < l3 + 28 {
            return;
        }
        let t = u16::from_be_bytes([d[l3 - 2], d[l3 - 1]]);
        if (t != ethertype::ARP && t != super::RARP) || d[l3 + 4] != 6 || d[l3 + 5] != 4 {
            return;
        }
        let h = &mut d[l3..l3 + 28];
        match *a {
            Action::SetArpOp(o) => h[6..8].copy_from_slice(&o.to_be_bytes()),
            Action::SetArpSha(m) => h[8..14].copy_from_slice(&m),
            Action::SetArpSpa(x) => h[14..18].copy_from_slice(&x),
            Action::SetArpTha(m) => h[18..24].copy_from_slice(&m),
            Action::SetArpTpa(x) => h[24..28].copy_from_slice(&x),
            _ => {}
        }
    }

    /// ICMPv4 type/code at `l4` (RFC 792), the checksum updated
    /// incrementally (RFC 1624) as OVS's `packet_set_icmp`.
    pub(crate) fn set_icmp(d: &mut [u8], l4: usize, len: usize, a: &Action) {
        if len < 4 || d.len() < l4 + 4 {
            return;
        }
        let old = [d[l4], d[l4 + 1]];
        let mut new = old;
        match *a {
            Action::SetIcmpType(t) => new[0] = t,
            Action::SetIcmpCode(c) => new[1] = c,
            _ => return,
        }
        let c = u16::from_be_bytes([d[l4 + 2], d[l4 + 3]]);
        let c = csum_replace(c, &old, &new);
        d[l4..l4 + 2].copy_from_slice(&new);
        d[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_widths_and_key_values() {
        for f in ALL {
            assert_eq!(PktField::parse(f.nxm_name()), Some(f));
            assert!(
                matches!(f, PktField::ArpOp | PktField::TunId)
                    || f.bits() as usize <= f.key_range().len() * 8
            );
        }
        assert_eq!(PktField::parse("OXM_OF_ARP_SHA"), Some(PktField::ArpSha));
        assert_eq!(PktField::parse("dl_src"), Some(PktField::EthSrc));
        assert_eq!(PktField::parse("NXM_OF_FOO"), None);
        let mut k = FlowKey::ZERO;
        k.set_dl_src([1, 2, 3, 4, 5, 6]);
        k.set_nw_tos(0xb9);
        k.set_tp_src(8);
        assert_eq!(PktField::EthSrc.get(&k), 0x0102_0304_0506);
        assert_eq!(PktField::IpTos.get(&k), 0xb8);
        assert_eq!(PktField::IpEcn.get(&k), 1);
        assert_eq!(PktField::IcmpType.get(&k), 8);
        assert_eq!(
            PktField::EthDst.set_action(0x0a0b_0c0d_0e0f),
            Some(Action::SetEthDst([10, 11, 12, 13, 14, 15]))
        );
        assert_eq!(PktField::IpProto.set_action(1), None);
    }

    #[test]
    fn vlan_tci_writes() {
        let set = |v, p| [Action::SetVlanVid(v), Action::SetVlanPcp(p)];
        assert_eq!(vlan_tci_actions(0x1005, 0x1005).1, 0);
        assert_eq!(vlan_tci_actions(0, 0x7005), (set(5, 3), 2));
        assert_eq!(vlan_tci_actions(0x1005, 0x1007), (set(7, 0), 2));
        assert_eq!(vlan_tci_actions(0x1005, 0), ([Action::PopVlan; 2], 1));
        // No tag and none written (a VID without the CFI bit): nothing.
        assert_eq!(vlan_tci_actions(0, 0x0009).1, 0);
    }

    #[test]
    fn prerequisites() {
        let m = |s: &str| crate::rule::parse_match(s).unwrap().0;
        assert!(Prereq::Arp.ok(&m("arp,arp_op=1")));
        assert!(!Prereq::Arp.ok(&m("ip")));
        assert!(!Prereq::Arp.ok(&m("in_port=1")));
        assert!(Prereq::Icmpv4.ok(&m("icmp")));
        assert!(!Prereq::Icmpv4.ok(&m("ip")));
        assert!(Prereq::Tcp.ok(&m("tcp6")));
        assert!(Prereq::IpAny.ok(&m("ipv6")));
    }
}
