//! Rule actions: parsing/printing in `ovs-ofctl` syntax and execution on a
//! [`Frame`].
//!
//! Semantics: actions run in order; modifications apply to the frame in
//! place and every output port collects into one port set, so all outputs
//! of one [`execute`] send the same (final) bytes. An action list that
//! modifies the frame after an output (OVS: the modification affects only
//! later outputs) is cut into segments at those points and run by
//! [`execute_plan`], which hands a copy of the frame to the outputs
//! of each earlier segment.

use core::fmt;

use crate::ct::CtId;
use crate::fdb::Fdb;
use crate::frame::Frame;
use crate::regs::{RegLoad, RegMove, Subfield, XxRegSet};
use crate::verdict::{DropReason, Verdict, MAX_PORTS};
use crate::wire::ethernet::{ethertype, is_vlan_tpid};
use crate::wire::ipv4::Ipv4Packet;

/// One action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `output:N` — send to port N (not to the ingress port, per OpenFlow).
    Output(u16),
    /// `flood` — every port except the ingress port.
    Flood,
    /// `normal` — learning bridge (per-VLAN MAC table, flood unknown).
    Normal,
    /// `NORMAL` after a write of `in_port` (the translation's, never in a
    /// rule): learn and flood as if the frame came in on this port (OVS's
    /// `xlate_normal` takes the flow's `in_port`), so the real ingress
    /// port may be flooded to and a destination learned there is sent
    /// to. Printed `NORMAL`.
    NormalFrom(u16),
    /// `drop` — explicit drop (must be the only action).
    Drop,
    /// `push_vlan:TPID` — push a tag with TCI 0 (VID 0, PCP 0), as OVS.
    PushVlan(u16),
    /// `pop_vlan` / `strip_vlan` — remove the outer tag, if any.
    PopVlan,
    /// `mod_vlan_vid:VID` / `set_vlan_vid:VID` — set the VID of the outer
    /// tag, pushing an 802.1Q tag first when untagged (as OVS does).
    SetVlanVid(u16),
    /// `mod_vlan_pcp:PCP` — set the PCP, pushing a tag when untagged.
    SetVlanPcp(u8),
    /// `mod_dl_src:MAC` / `set_eth_src:MAC`.
    SetEthSrc([u8; 6]),
    /// `mod_dl_dst:MAC` / `set_eth_dst:MAC`.
    SetEthDst([u8; 6]),
    /// `set_ip_dscp:DSCP` / `mod_nw_tos:TOS` — rewrite DSCP (ECN kept).
    SetIpDscp(u8),
    /// `dec_ttl` — decrement TTL / hop limit, drop when it would reach 0.
    DecTtl,
    /// `resubmit(,N)` — (Nicira) run table N's matching rule's actions at
    /// this point, then continue. Resolved by the pipeline; never reaches
    /// [`execute`].
    Resubmit(u8),
    /// `group:N` — run group N's bucket(s). Resolved by the pipeline into
    /// the buckets' actions; never reaches [`execute`].
    Group(u32),
    /// `IN_PORT` / `in_port` — send back out of the ingress port
    /// (OpenFlow `OFPP_IN_PORT`).
    InPort,
    /// `ALL` / `all` — OpenFlow `OFPP_ALL`: every port but the ingress
    /// port (as [`Action::Flood`]: no port is excluded from flooding).
    All,
    /// `mod_nw_src:A` / `set_field:A->ip_src` — IPv4 source, with the IPv4
    /// header checksum and the TCP/UDP pseudo-header checksum updated
    /// incrementally (RFC 1624; a UDP checksum 0 stays 0).
    SetIpv4Src([u8; 4]),
    /// `mod_nw_dst:A` / `set_field:A->ip_dst` — IPv4 destination (as
    /// [`Action::SetIpv4Src`]).
    SetIpv4Dst([u8; 4]),
    /// `set_field:A->ipv6_src` — IPv6 source, TCP/UDP/ICMPv6 checksum
    /// updated incrementally.
    SetIpv6Src([u8; 16]),
    /// `set_field:A->ipv6_dst` — IPv6 destination (as
    /// [`Action::SetIpv6Src`]).
    SetIpv6Dst([u8; 16]),
    /// `set_field:P->tcp_src` (`udp_src`, `sctp_src`) or `mod_tp_src:P`
    /// ([`L4Proto::Any`]) — L4 source port, L4 checksum updated (TCP, UDP
    /// incrementally, a UDP checksum 0 stays 0; SCTP: CRC32c, an incorrect
    /// one stays incorrect by the same bits, as OVS).
    SetL4Src(L4Proto, u16),
    /// L4 destination port (as [`Action::SetL4Src`]): `set_field:P->tcp_dst`
    /// etc., `mod_tp_dst:P`.
    SetL4Dst(L4Proto, u16),
    /// `mod_nw_ecn:E` / `set_field:E->ip_ecn` — the two ECN bits (DSCP
    /// kept; IPv4 checksum updated; IPv6 traffic class).
    SetIpEcn(u8),
    /// `mod_nw_ttl:T` — set the IPv4 TTL (checksum updated) or IPv6 hop
    /// limit (OpenFlow `OFPAT_SET_NW_TTL`).
    SetNwTtl(u8),
    /// `set_tunnel:K` / `set_field:K->tun_id` — the key (VNI) an output to
    /// a `key=flow` tunnel port encapsulates with.
    SetTunId(u32),
    /// `set_field:A->tun_dst` — the outer destination of an output to a
    /// `remote_ip=flow` tunnel port.
    SetTunDst([u8; 4]),
    /// `ct(...)` — send the frame through the connection tracker (see
    /// [`crate::ct`]): its options are interned behind the [`CtId`]. With
    /// `table=N` the frame recirculates into table N with its ct fields.
    Ct(CtId),
    /// `ct_clear` — zero the frame's ct fields (`ct_state`, `ct_zone`,
    /// `ct_mark`, `ct_label`, the original tuple).
    CtClear,
    /// `load:V->NXM_NX_REG0[0..15]` / `set_field:V->reg0` — write a
    /// register (or `metadata`, see [`crate::regs`]). Resolved by the
    /// pipeline translation; never reaches [`execute`].
    SetReg(RegLoad),
    /// `set_field:V->xxreg0`: a whole 128-bit register (its value may be
    /// wider than a [`RegLoad`]'s 64 bits). Resolved by the pipeline
    /// translation; never reaches [`execute`].
    SetXxReg(XxRegSet),
    /// `move:SRC[..]->DST[..]` between registers, `metadata` and packet
    /// fields. Resolved by the pipeline translation (a packet destination
    /// becomes the constant rewrite it amounts to); never reaches
    /// [`execute`].
    Move(RegMove),
    /// `push:FIELD[a..b]` — push the bits onto the flow's field stack
    /// (NXAST_STACK_PUSH, OVS's `nxm_execute_stack_push`). Resolved by the
    /// pipeline translation; never reaches [`execute`].
    StackPush(Subfield),
    /// `pop:FIELD[a..b]` — pop the stack's top into the bits (its low bits
    /// when it was pushed wider; nothing when the stack is empty, as OVS's
    /// "stack underflow"). Resolved by the pipeline translation.
    StackPop(Subfield),
    /// `set_field:OP->arp_op` — the ARP opcode (also what a `load`/`move`
    /// into NXM_OF_ARP_OP becomes).
    SetArpOp(u16),
    /// `set_field:A->arp_spa` — the ARP sender protocol address.
    SetArpSpa([u8; 4]),
    /// `set_field:A->arp_tpa` — the ARP target protocol address.
    SetArpTpa([u8; 4]),
    /// `set_field:MAC->arp_sha` — the ARP sender hardware address.
    SetArpSha([u8; 6]),
    /// `set_field:MAC->arp_tha` — the ARP target hardware address.
    SetArpTha([u8; 6]),
    /// `set_field:T->icmp_type` — ICMPv4 type, checksum updated (RFC 1624).
    SetIcmpType(u8),
    /// `set_field:C->icmp_code` — ICMPv4 code, checksum updated.
    SetIcmpCode(u8),
}

/// The transport protocol a port rewrite applies to: the frame must carry
/// it, else the rewrite does nothing (OpenFlow set-field prerequisites).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Proto {
    /// `mod_tp_src`/`mod_tp_dst`: TCP, UDP or SCTP, whichever the frame has.
    Any,
    /// `tcp_src`/`tcp_dst`.
    Tcp,
    /// `udp_src`/`udp_dst`.
    Udp,
    /// `sctp_src`/`sctp_dst`.
    Sctp,
}

impl L4Proto {
    /// True when a frame with IP protocol `proto` carries these ports.
    pub fn applies_to(self, proto: u8) -> bool {
        match self {
            L4Proto::Any => matches!(proto, 6 | 17 | 132),
            L4Proto::Tcp => proto == 6,
            L4Proto::Udp => proto == 17,
            L4Proto::Sctp => proto == 132,
        }
    }

    fn name(self) -> &'static str {
        match self {
            L4Proto::Any => "tp",
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
            L4Proto::Sctp => "sctp",
        }
    }
}

impl Action {
    /// True for actions that rewrite the frame (a `ct` with `nat` may).
    pub fn modifies(&self) -> bool {
        match self {
            Action::Ct(c) => c.spec().nat.is_some(),
            Action::SetReg(l) => l.dst.field.in_frame(),
            Action::SetXxReg(_) => false,
            Action::Move(m) => m.dst.field.in_frame(),
            Action::StackPush(_) => false,
            Action::StackPop(sf) => sf.field.in_frame(),
            _ => !matches!(
                self,
                Action::Output(_)
                    | Action::Flood
                    | Action::All
                    | Action::InPort
                    | Action::Normal
                    | Action::NormalFrom(_)
                    | Action::Drop
                    | Action::Resubmit(_)
                    | Action::Group(_)
                    | Action::CtClear
            ),
        }
    }

    /// The packet field a `set_field` primitive that needs prerequisites
    /// checked at flow add writes (the ARP and ICMP fields).
    pub fn pkt_field_written(&self) -> Option<crate::pkt_field::PktField> {
        use crate::pkt_field::PktField as P;
        Some(match self {
            Action::SetArpOp(_) => P::ArpOp,
            Action::SetArpSpa(_) => P::ArpSpa,
            Action::SetArpTpa(_) => P::ArpTpa,
            Action::SetArpSha(_) => P::ArpSha,
            Action::SetArpTha(_) => P::ArpTha,
            Action::SetIcmpType(_) => P::IcmpType,
            Action::SetIcmpCode(_) => P::IcmpCode,
            _ => return None,
        })
    }

    /// True for `ct` and `ct_clear` (they need the recirculating datapath).
    pub fn is_ct(&self) -> bool {
        matches!(self, Action::Ct(_) | Action::CtClear)
    }

    /// True for register writes (`load`, `move`, `set_field` to a
    /// register or `metadata`): pipeline state, resolved by the
    /// translation.
    pub fn is_reg(&self) -> bool {
        matches!(
            self,
            Action::SetReg(_)
                | Action::SetXxReg(_)
                | Action::Move(_)
                | Action::StackPush(_)
                | Action::StackPop(_)
        )
    }

    /// True for the IP/L4 rewrites (addresses, ports, ECN, TTL): what they
    /// do depends on the frame's dl_type, nw_proto and fragment bits.
    pub fn rewrites_l3_l4(&self) -> bool {
        matches!(
            self,
            Action::SetIpv4Src(_)
                | Action::SetIpv4Dst(_)
                | Action::SetIpv6Src(_)
                | Action::SetIpv6Dst(_)
                | Action::SetL4Src(..)
                | Action::SetL4Dst(..)
                | Action::SetIpEcn(_)
                | Action::SetNwTtl(_)
                | Action::SetArpOp(_)
                | Action::SetArpSpa(_)
                | Action::SetArpTpa(_)
                | Action::SetArpSha(_)
                | Action::SetArpTha(_)
                | Action::SetIcmpType(_)
                | Action::SetIcmpCode(_)
        )
    }

    /// True for actions that may send the frame somewhere (outputs, and
    /// resubmits and groups, whose actions may output).
    pub fn may_output(&self) -> bool {
        matches!(
            self,
            Action::Output(_)
                | Action::Flood
                | Action::All
                | Action::InPort
                | Action::Normal
                | Action::NormalFrom(_)
                | Action::Resubmit(_)
                | Action::Group(_)
        )
    }
}

/// Highest OpenFlow table number (254 = OFPTT_MAX is reserved by OVS; 255
/// means "all tables").
pub const MAX_TABLE: u8 = 253;

pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(':') {
        if n == 6 || part.is_empty() || part.len() > 2 {
            return Err(format!("bad MAC address `{s}` (want xx:xx:xx:xx:xx:xx)"));
        }
        out[n] = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC address `{s}`"))?;
        n += 1;
    }
    if n != 6 {
        return Err(format!("bad MAC address `{s}` (want xx:xx:xx:xx:xx:xx)"));
    }
    Ok(out)
}

pub(crate) fn fmt_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parse an unsigned integer, decimal or `0x` hex, bounded by `max`.
pub(crate) fn parse_uint(s: &str, max: u64, what: &str) -> Result<u64, String> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    }
    .map_err(|_| format!("bad {what} `{s}` (want a number)"))?;
    if v > max {
        return Err(format!("{what} {v} out of range (max {max})"));
    }
    Ok(v)
}

fn parse_port(s: &str) -> Result<u16, String> {
    let p = parse_uint(s, u64::from(MAX_PORTS - 1), "port number")
        .map_err(|e| format!("{e}; ports are numbered 0..={}", MAX_PORTS - 1))?;
    Ok(p as u16)
}

fn parse_ipv4(s: &str) -> Result<[u8; 4], String> {
    s.trim()
        .parse::<std::net::Ipv4Addr>()
        .map(|a| a.octets())
        .map_err(|_| format!("bad IPv4 address `{s}`"))
}

fn parse_ipv6(s: &str) -> Result<[u8; 16], String> {
    s.trim()
        .parse::<std::net::Ipv6Addr>()
        .map(|a| a.octets())
        .map_err(|_| format!("bad IPv6 address `{s}`"))
}

/// A tunnel key: VXLAN and Geneve carry 24 bits (RFC 7348 §5, RFC 8926
/// §3.4), so larger keys are refused rather than silently cut.
fn parse_tun_id(v: &str) -> Result<u32, String> {
    let k = parse_uint(v, u64::MAX, "tunnel key")?;
    if k > 0xff_ffff {
        return Err(format!(
            "tunnel key {v}: VXLAN and Geneve carry 24-bit keys (at most 0xffffff)"
        ));
    }
    Ok(k as u32)
}

/// `set_field:VALUE->FIELD` (`ovs-ofctl` syntax) for the fields the switch
/// rewrites.
fn parse_set_field(arg: &str) -> Result<Action, String> {
    let (v, field) = arg
        .split_once("->")
        .ok_or_else(|| format!("`set_field:{arg}`: want `set_field:VALUE->FIELD`"))?;
    let (v, field) = (v.trim(), field.trim().to_ascii_lowercase());
    if let Some(crate::regs::RegField::XXReg(n)) = crate::regs::RegField::parse_reg(&field) {
        // A whole xxreg (no mask, or all ones): one 128-bit set_field.
        let (val, mask) = v
            .split_once('/')
            .unwrap_or((v, "0xffffffffffffffffffffffffffffffff"));
        if crate::regs::parse_u128(mask, "set_field mask")? == u128::MAX {
            let x = XxRegSet::new(n, crate::regs::parse_u128(val, "set_field value")?)?;
            return Ok(Action::SetXxReg(x));
        }
    }
    if let Some(loads) = crate::regs::parse_set_field(v, &field) {
        let loads = loads?;
        if loads.len() != 1 {
            return Err(format!(
                "set_field:{arg}: a register set_field with a mask of several runs of bits is \
                 written as one `load` per run (as ovs-ofctl sends it in OpenFlow 1.3)"
            ));
        }
        return Ok(Action::SetReg(loads[0]));
    }
    let port = || parse_uint(v, 0xffff, "port").map(|x| x as u16);
    // OVS's MFF_IN_PORT (NXM_OF_IN_PORT) and MFF_VLAN_TCI
    // (NXM_OF_VLAN_TCI), 16 bits each: the same writes as
    // `load:N->NXM_OF_IN_PORT[]`, printed and sent as set_fields.
    let pkt = match field.as_str() {
        "in_port" => Some(crate::pkt_field::PktField::InPort),
        "vlan_tci" => Some(crate::pkt_field::PktField::VlanTci),
        _ => None,
    };
    if let Some(p) = pkt {
        let dst = Subfield::whole(crate::regs::RegField::Pkt(p));
        return Ok(Action::SetReg(RegLoad::new(dst, u64::from(port()?), true)?));
    }
    Ok(match field.as_str() {
        "eth_src" | "dl_src" => Action::SetEthSrc(parse_mac(v)?),
        "eth_dst" | "dl_dst" => Action::SetEthDst(parse_mac(v)?),
        "ip_dscp" => Action::SetIpDscp(parse_uint(v, 63, "DSCP")? as u8),
        "ip_ecn" | "nw_ecn" => Action::SetIpEcn(parse_uint(v, 3, "ECN")? as u8),
        "ip_src" | "nw_src" => Action::SetIpv4Src(parse_ipv4(v)?),
        "ip_dst" | "nw_dst" => Action::SetIpv4Dst(parse_ipv4(v)?),
        "ipv6_src" => Action::SetIpv6Src(parse_ipv6(v)?),
        "ipv6_dst" => Action::SetIpv6Dst(parse_ipv6(v)?),
        "nw_ttl" => Action::SetNwTtl(parse_uint(v, 255, "TTL")? as u8),
        "tcp_src" => Action::SetL4Src(L4Proto::Tcp, port()?),
        "tcp_dst" => Action::SetL4Dst(L4Proto::Tcp, port()?),
        "udp_src" => Action::SetL4Src(L4Proto::Udp, port()?),
        "udp_dst" => Action::SetL4Dst(L4Proto::Udp, port()?),
        "sctp_src" => Action::SetL4Src(L4Proto::Sctp, port()?),
        "sctp_dst" => Action::SetL4Dst(L4Proto::Sctp, port()?),
        "tp_src" => Action::SetL4Src(L4Proto::Any, port()?),
        "tp_dst" => Action::SetL4Dst(L4Proto::Any, port()?),
        "tun_id" => Action::SetTunId(parse_tun_id(v)?),
        "tun_dst" => Action::SetTunDst(parse_ipv4(v)?),
        "arp_op" => Action::SetArpOp(parse_uint(v, 0xffff, "ARP opcode")? as u16),
        "arp_spa" => Action::SetArpSpa(parse_ipv4(v)?),
        "arp_tpa" => Action::SetArpTpa(parse_ipv4(v)?),
        "arp_sha" => Action::SetArpSha(parse_mac(v)?),
        "arp_tha" => Action::SetArpTha(parse_mac(v)?),
        "icmp_type" | "icmpv4_type" => Action::SetIcmpType(parse_uint(v, 255, "ICMP type")? as u8),
        "icmp_code" | "icmpv4_code" => Action::SetIcmpCode(parse_uint(v, 255, "ICMP code")? as u8),
        _ => {
            return Err(format!(
                "set_field of `{field}` is not supported (eth_src, eth_dst, ip_dscp, ip_ecn, ip_src, ip_dst, \
                 ipv6_src, ipv6_dst, nw_ttl, tcp/udp/sctp_src/dst, tun_id, tun_dst, arp_op, arp_spa, arp_tpa, arp_sha, arp_tha, icmp_type, icmp_code; VLAN: mod_vlan_vid, mod_vlan_pcp)"
            ))
        }
    })
}

impl core::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s, None),
        };
        let lname = name.to_ascii_lowercase();
        let need =
            || arg.ok_or_else(|| format!("action `{name}` needs an argument (`{name}:VALUE`)"));
        let none = |a: Option<&str>, act: Action| match a {
            None => Ok(act),
            Some(_) => Err(format!("action `{name}` takes no argument")),
        };
        match lname.as_str() {
            "output" => Ok(Action::Output(parse_port(need()?)?)),
            "flood" => none(arg, Action::Flood),
            "normal" => none(arg, Action::Normal),
            "drop" => none(arg, Action::Drop),
            "pop_vlan" | "strip_vlan" => none(arg, Action::PopVlan),
            "dec_ttl" => none(arg, Action::DecTtl),
            "push_vlan" => {
                let t = parse_uint(need()?, 0xffff, "TPID")? as u16;
                if !is_vlan_tpid(t) {
                    return Err(format!("push_vlan:{t:#06x}: TPID must be 0x8100 or 0x88a8"));
                }
                Ok(Action::PushVlan(t))
            }
            "set_tunnel" | "set_tunnel64" => Ok(Action::SetTunId(parse_tun_id(need()?)?)),
            "group" => Ok(Action::Group(parse_uint(need()?, 0xffff_ff00, "group id")? as u32)),
            "resubmit" => Err("`resubmit:PORT` is not supported; use `resubmit(,TABLE)`".into()),
            "mod_vlan_vid" | "set_vlan_vid" => Ok(Action::SetVlanVid(parse_uint(need()?, 4095, "VLAN id")? as u16)),
            "mod_vlan_pcp" | "set_vlan_pcp" => Ok(Action::SetVlanPcp(parse_uint(need()?, 7, "VLAN PCP")? as u8)),
            "mod_dl_src" | "set_eth_src" => Ok(Action::SetEthSrc(parse_mac(need()?)?)),
            "mod_dl_dst" | "set_eth_dst" => Ok(Action::SetEthDst(parse_mac(need()?)?)),
            "set_ip_dscp" => Ok(Action::SetIpDscp(parse_uint(need()?, 63, "DSCP")? as u8)),
            "mod_nw_tos" => {
                let t = parse_uint(need()?, 255, "TOS")? as u8;
                if t & 3 != 0 {
                    return Err(format!("mod_nw_tos:{t}: the two ECN bits must be 0 (use set_ip_dscp:{})", t >> 2));
                }
                Ok(Action::SetIpDscp(t >> 2))
            }
            "all" => none(arg, Action::All),
            "in_port" => none(arg, Action::InPort),
            "mod_nw_src" | "set_nw_src" => Ok(Action::SetIpv4Src(parse_ipv4(need()?)?)),
            "mod_nw_dst" | "set_nw_dst" => Ok(Action::SetIpv4Dst(parse_ipv4(need()?)?)),
            "mod_tp_src" | "set_tp_src" => Ok(Action::SetL4Src(L4Proto::Any, parse_uint(need()?, 0xffff, "port")? as u16)),
            "mod_tp_dst" | "set_tp_dst" => Ok(Action::SetL4Dst(L4Proto::Any, parse_uint(need()?, 0xffff, "port")? as u16)),
            "mod_nw_ecn" => Ok(Action::SetIpEcn(parse_uint(need()?, 3, "ECN")? as u8)),
            "mod_nw_ttl" => Ok(Action::SetNwTtl(parse_uint(need()?, 255, "TTL")? as u8)),
            "set_field" => parse_set_field(need()?),
            "load" => Ok(Action::SetReg(crate::regs::parse_load(need()?)?)),
            "move" => Ok(Action::Move(RegMove::parse(need()?)?)),
            "push" => Ok(Action::StackPush(crate::regs::parse_stack(need()?, false)?)),
            "pop" => Ok(Action::StackPop(crate::regs::parse_stack(need()?, true)?)),
            "ct_clear" => none(arg, Action::CtClear),
            _ if arg.is_none() && name.bytes().all(|b| b.is_ascii_digit()) => Ok(Action::Output(parse_port(name)?)),
            _ if lname.starts_with("ct(") && s.ends_with(')') => {
                let (spec, zone_src) = crate::ct::action::parse_zone_src(&s[3..s.len() - 1])?;
                Ok(Action::Ct(CtId::intern_zone_src(spec, zone_src)?))
            }
            _ if lname == "ct" => Ok(Action::Ct(CtId::intern(conntrack::CtSpec::default())?)),
            _ if arg.is_none() && lname.starts_with("resubmit(") && lname.ends_with(')') => {
                let inner = &s[9..s.len() - 1];
                let (port, table) = inner.split_once(',').ok_or_else(|| {
                    format!("`{s}`: want `resubmit(,TABLE)`")
                })?;
                if !port.trim().is_empty() {
                    return Err(format!("`{s}`: resubmit to another in_port is not supported; use `resubmit(,TABLE)`"));
                }
                let t = parse_uint(table.trim(), u64::from(MAX_TABLE), "table")?;
                Ok(Action::Resubmit(t as u8))
            }
            _ => Err(format!(
                "unknown action `{name}` (known: output:N, flood, all, in_port, normal, drop, push_vlan:TPID, pop_vlan, \
                 mod_vlan_vid:VID, mod_vlan_pcp:PCP, mod_dl_src:MAC, mod_dl_dst:MAC, set_ip_dscp:DSCP, \
                 mod_nw_tos:TOS, mod_nw_ecn:ECN, mod_nw_src:IP, mod_nw_dst:IP, mod_tp_src:PORT, mod_tp_dst:PORT, \
                 mod_nw_ttl:TTL, set_field:VALUE->FIELD, load:V->REG[a..b], move:SRC[..]->DST[..], dec_ttl, resubmit(,TABLE), group:N, ct(...), ct_clear, goto_table:N, \
                 write_metadata:V[/M], write_actions(...), clear_actions)"
            )),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(p) => write!(f, "output:{p}"),
            Action::Flood => write!(f, "FLOOD"),
            Action::Normal | Action::NormalFrom(_) => write!(f, "NORMAL"),
            Action::Drop => write!(f, "drop"),
            Action::PushVlan(t) => write!(f, "push_vlan:{t:#06x}"),
            Action::PopVlan => write!(f, "pop_vlan"),
            Action::SetVlanVid(v) => write!(f, "mod_vlan_vid:{v}"),
            Action::SetVlanPcp(p) => write!(f, "mod_vlan_pcp:{p}"),
            Action::SetEthSrc(m) => write!(f, "mod_dl_src:{}", fmt_mac(m)),
            Action::SetEthDst(m) => write!(f, "mod_dl_dst:{}", fmt_mac(m)),
            Action::SetIpDscp(d) => write!(f, "mod_nw_tos:{}", d << 2),
            Action::DecTtl => write!(f, "dec_ttl"),
            Action::Resubmit(t) => write!(f, "resubmit(,{t})"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::InPort => write!(f, "IN_PORT"),
            Action::All => write!(f, "ALL"),
            Action::SetIpv4Src(a) => write!(f, "mod_nw_src:{}", std::net::Ipv4Addr::from(*a)),
            Action::SetIpv4Dst(a) => write!(f, "mod_nw_dst:{}", std::net::Ipv4Addr::from(*a)),
            Action::SetIpv6Src(a) => {
                write!(f, "set_field:{}->ipv6_src", std::net::Ipv6Addr::from(*a))
            }
            Action::SetIpv6Dst(a) => {
                write!(f, "set_field:{}->ipv6_dst", std::net::Ipv6Addr::from(*a))
            }
            Action::SetL4Src(L4Proto::Any, p) => write!(f, "mod_tp_src:{p}"),
            Action::SetL4Dst(L4Proto::Any, p) => write!(f, "mod_tp_dst:{p}"),
            Action::SetL4Src(l4, p) => write!(f, "set_field:{p}->{}_src", l4.name()),
            Action::SetL4Dst(l4, p) => write!(f, "set_field:{p}->{}_dst", l4.name()),
            Action::SetIpEcn(e) => write!(f, "mod_nw_ecn:{e}"),
            Action::SetNwTtl(t) => write!(f, "mod_nw_ttl:{t}"),
            Action::SetTunId(k) => write!(f, "set_field:{k:#x}->tun_id"),
            Action::SetTunDst(a) => {
                write!(f, "set_field:{}->tun_dst", std::net::Ipv4Addr::from(*a))
            }
            Action::Ct(c) => write!(f, "{c}"),
            Action::CtClear => write!(f, "ct_clear"),
            Action::SetReg(l) => write!(f, "{l}"),
            Action::SetXxReg(x) => write!(f, "{x}"),
            Action::Move(m) => write!(f, "{m}"),
            Action::StackPush(sf) => write!(f, "push:{sf}"),
            Action::StackPop(sf) => write!(f, "pop:{sf}"),
            Action::SetArpOp(o) => write!(f, "set_field:{o}->arp_op"),
            Action::SetArpSpa(a) => {
                write!(f, "set_field:{}->arp_spa", std::net::Ipv4Addr::from(*a))
            }
            Action::SetArpTpa(a) => {
                write!(f, "set_field:{}->arp_tpa", std::net::Ipv4Addr::from(*a))
            }
            Action::SetArpSha(m) => write!(f, "set_field:{}->arp_sha", fmt_mac(m)),
            Action::SetArpTha(m) => write!(f, "set_field:{}->arp_tha", fmt_mac(m)),
            Action::SetIcmpType(t) => write!(f, "set_field:{t}->icmp_type"),
            Action::SetIcmpCode(c) => write!(f, "set_field:{c}->icmp_code"),
        }
    }
}

/// Split `s` at commas outside parentheses.
pub(crate) fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The OpenFlow 1.3 instructions of a rule besides its apply-actions list
/// (executed in this order after the apply-actions: clear, write,
/// write-metadata, goto).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instructions {
    /// `clear_actions`: empty the action set.
    pub clear_actions: bool,
    /// `write_actions(...)`: merge these actions into the action set.
    pub write_actions: Option<Vec<Action>>,
    /// `write_metadata:V/M`: `metadata = metadata & !M | V & M`.
    pub write_metadata: Option<(u64, u64)>,
    /// `goto_table:N`: continue in table N (> the rule's table).
    pub goto_table: Option<u8>,
}

impl Instructions {
    /// No instruction besides apply-actions.
    pub fn is_empty(&self) -> bool {
        *self == Instructions::default()
    }
}

/// Check an apply-actions list: `drop` alone.
pub fn validate_actions(acts: &[Action]) -> Result<(), String> {
    if acts.contains(&Action::Drop) && acts.len() > 1 {
        return Err("`drop` must be the only action".into());
    }
    Ok(())
}

/// True when a modification follows an output (or a resubmit/group,
/// which may output) in `acts`: then later outputs see other bytes than
/// earlier ones and the list needs [`execute_plan`].
pub fn modifies_after_output(acts: &[Action]) -> bool {
    acts.iter()
        .position(Action::may_output)
        .is_some_and(|i| acts[i..].iter().any(Action::modifies))
}

/// Parse a comma-separated action list and validate it: `drop` alone, at
/// least one action. Instructions (`goto_table` etc.) are refused here;
/// see [`parse_instructions`].
pub fn parse_actions(s: &str) -> Result<Vec<Action>, String> {
    let (acts, ins) = parse_instructions(s)?;
    if !ins.is_empty() {
        return Err("instructions (goto_table, write_actions, write_metadata, clear_actions) are not allowed here".into());
    }
    if acts.is_empty() {
        return Err("empty action list (use `actions=drop` to drop)".into());
    }
    Ok(acts)
}

fn parse_u64_masked(s: &str, what: &str) -> Result<(u64, u64), String> {
    match s.split_once('/') {
        Some((v, m)) => {
            let (v, m) = (
                parse_uint(v.trim(), u64::MAX, what)?,
                parse_uint(m.trim(), u64::MAX, what)?,
            );
            Ok((v & m, m))
        }
        None => Ok((parse_uint(s.trim(), u64::MAX, what)?, u64::MAX)),
    }
}

/// Parse the text after `actions=`: apply-actions and OpenFlow 1.3
/// instructions (`clear_actions`, `write_actions(...)`,
/// `write_metadata:V[/M]`, `goto_table:N`), in any order. The apply list
/// may be empty when an instruction is present.
pub fn parse_instructions(s: &str) -> Result<(Vec<Action>, Instructions), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty action list (use `actions=drop` to drop)".into());
    }
    let mut acts = Vec::new();
    let mut ins = Instructions::default();
    let mut n = 0;
    for tok in split_top(s) {
        let tok = tok.trim();
        if tok.is_empty() {
            return Err(format!("empty action in `{s}`"));
        }
        n += 1;
        let low = tok.to_ascii_lowercase();
        if low == "clear_actions" {
            ins.clear_actions = true;
        } else if let Some(rest) = low.strip_prefix("write_actions(") {
            if !rest.ends_with(')') || ins.write_actions.is_some() {
                return Err(format!("bad or repeated `{tok}`"));
            }
            let inner = &tok[14..tok.len() - 1];
            let mut set = Vec::new();
            if !inner.trim().is_empty() {
                for a in split_top(inner) {
                    let a: Action = a.parse()?;
                    if matches!(a, Action::Drop | Action::Resubmit(_)) || a.is_ct() {
                        return Err(format!("`{a}` is not allowed in write_actions"));
                    }
                    set.push(a);
                }
            }
            ins.write_actions = Some(set);
        } else if let Some(v) = low.strip_prefix("write_metadata:") {
            if ins.write_metadata.is_some() {
                return Err("`write_metadata` given twice".into());
            }
            ins.write_metadata = Some(parse_u64_masked(v, "metadata")?);
        } else if let Some(v) = low.strip_prefix("goto_table:") {
            if ins.goto_table.is_some() {
                return Err("`goto_table` given twice".into());
            }
            ins.goto_table = Some(parse_uint(v.trim(), u64::from(MAX_TABLE), "table")? as u8);
        } else if low.starts_with("load:") {
            // A load into more than 64 bits is one NXAST_REG_LOAD per 64
            // bits, as ovs-ofctl sends and prints it.
            for l in crate::regs::parse_load_segments(&tok[5..])? {
                acts.push(Action::SetReg(l));
            }
        } else {
            acts.push(tok.parse::<Action>()?);
        }
    }
    if acts.contains(&Action::Drop) && n > 1 {
        return Err("`drop` must be the only action".into());
    }
    validate_actions(&acts)?;
    Ok((acts, ins))
}

/// Format an apply-actions list followed by instructions (canonical order:
/// actions, clear_actions, write_actions, write_metadata, goto_table).
pub fn fmt_instructions(acts: &[Action], ins: &Instructions) -> String {
    let mut parts: Vec<String> = acts.iter().map(ToString::to_string).collect();
    if ins.clear_actions {
        parts.push("clear_actions".into());
    }
    if let Some(w) = &ins.write_actions {
        parts.push(format!("write_actions({})", fmt_actions(w)));
    }
    if let Some((v, m)) = ins.write_metadata {
        if m == u64::MAX {
            parts.push(format!("write_metadata:{v:#x}"));
        } else {
            parts.push(format!("write_metadata:{v:#x}/{m:#x}"));
        }
    }
    if let Some(t) = ins.goto_table {
        parts.push(format!("goto_table:{t}"));
    }
    if parts.is_empty() {
        return "drop".into();
    }
    parts.join(",")
}

/// Format an action list.
pub fn fmt_actions(acts: &[Action]) -> String {
    acts.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

const CONTROLLER_BIT: u64 = 1 << crate::verdict::CONTROLLER_PORT;

/// Per-packet context the actions need.
pub struct ExecCtx<'a> {
    /// Ingress port.
    pub in_port: u16,
    /// Ports that exist (bit N = port N).
    pub ports_up: u64,
    /// MAC table for `normal`.
    pub fdb: &'a Fdb,
    /// Current time in milliseconds.
    pub now_ms: u64,
    /// The connection tracker `ct` actions use (`None`: a `ct` marks the
    /// frame `+trk+inv`, as a tracker that cannot parse it would).
    pub ct: Option<&'a conntrack::Conntrack>,
}

/// Counters the execution reports back (MAC learning events).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecEvents {
    /// New MACs learned.
    pub learned: u64,
    /// MACs that moved to another port.
    pub moved: u64,
    /// Live entries evicted because the table was full.
    pub evicted: u64,
    /// Frames flooded (flood action or unknown/broadcast under normal).
    pub flooded: u64,
    /// Tunnel fields set by the frame's actions (`set_tunnel`,
    /// `set_field:...->tun_dst`), for outputs to tunnel ports; the
    /// datapath takes them after each frame (see `tunnel_set`).
    pub tunnel: TunnelSet,
    /// An action set [`ExecEvents::tunnel`] for the current frame.
    pub tunnel_set: bool,
    /// The current frame's ct fields, as `ct`/`ct_clear` left them (the
    /// datapath sets them before and reads them after a frame with ct
    /// actions; zero for every other frame).
    pub ct: conntrack::CtMeta,
    /// The frame as the tracker looked at it before the burst ran
    /// (`Conntrack::prepare`, for a pass starting with `ct`): the first
    /// `ct` of the frame uses it and clears it.
    pub ct_prep: conntrack::Prepared,
}

/// Tunnel fields set by actions: what an output to a tunnel port whose
/// options say `key=flow` / `remote_ip=flow` encapsulates with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelSet {
    /// `set_tunnel:K`.
    pub id: Option<u32>,
    /// `set_field:A->tun_dst`.
    pub dst: Option<[u8; 4]>,
}

const ETH_TYPE_OFF: usize = 12;

fn outer_tci<F: Frame>(frame: &F) -> Option<u16> {
    let d = frame.data();
    if d.len() >= 18 && is_vlan_tpid(u16::from_be_bytes([d[12], d[13]])) {
        Some(u16::from_be_bytes([d[14], d[15]]))
    } else {
        None
    }
}

fn push_tag<F: Frame>(frame: &mut F, tpid: u16, tci: u16) -> bool {
    if frame.data().len() < ETH_TYPE_OFF || !frame.prepend(4) {
        return false;
    }
    let d = frame.data_mut();
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&tpid.to_be_bytes());
    d[14..16].copy_from_slice(&tci.to_be_bytes());
    true
}

fn set_tci<F: Frame>(frame: &mut F, tci: u16) {
    frame.data_mut()[14..16].copy_from_slice(&tci.to_be_bytes());
}

/// Execute `acts` on `frame`. `l3` is the L3 offset from extraction (0 when
/// the frame has no IP/ARP header); it is kept up to date across VLAN
/// push/pop.
#[inline]
pub fn execute<F: Frame>(
    acts: &[Action],
    frame: &mut F,
    l3: usize,
    ctx: &ExecCtx<'_>,
    ev: &mut ExecEvents,
) -> Verdict {
    let mut l3 = l3;
    execute_l3(acts, frame, &mut l3, ctx, ev)
}

/// One piece of a [`execute_plan`] plan: `acts[start..end]`, run on the
/// frame itself or (`clone`) on a copy of it (a group bucket, which must
/// not change what the frame looks like afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seg {
    /// First action.
    pub start: u16,
    /// One past the last action.
    pub end: u16,
    /// Run on a copy (its outputs leave as that copy).
    pub clone: bool,
    /// (Clone segments) continue on the previous clone segment's copy (a
    /// bucket that rewrites after an output is cut like a frame list),
    /// rather than on a fresh copy of the frame.
    pub cont: bool,
}

/// Execute an action list cut into `plan` (see [`Seg`]), for lists that
/// modify the frame after an output or hold group buckets that rewrite:
/// the outputs of every frame segment but the last go to a copy of the
/// frame as it is at the segment's end, and clone segments run on a copy;
/// copies are pushed to `copies` with their port sets. The last frame
/// segment's outputs are the returned verdict (for `frame` itself).
/// Without a sink (`None`) or when the frame cannot be duplicated, the
/// segments run on the frame itself and every output joins the final
/// verdict (final bytes). A TTL expiry or headroom failure in a frame
/// segment stops the list (copies already made stay sent).
pub fn execute_plan<F: Frame>(
    acts: &[Action],
    plan: &[Seg],
    frame: &mut F,
    l3: usize,
    ctx: &ExecCtx<'_>,
    ev: &mut ExecEvents,
    mut copies: Option<&mut Vec<(F, u64)>>,
) -> Verdict {
    let mut l3 = l3;
    let last_run = plan.iter().rposition(|s| !s.clone);
    let (mut out, mut why) = (0u64, DropReason::Action);
    // The copy clone segments run on, and whether it was dropped (its
    // continuation segments are then skipped).
    let (mut clone, mut clone_l3, mut clone_dead) = (None::<F>, 0usize, false);
    let mut clone_ct = ev.ct;
    for (i, s) in plan.iter().enumerate() {
        let seg = acts
            .get(usize::from(s.start)..usize::from(s.end))
            .unwrap_or(&[]);
        if s.clone {
            if let Some(sink) = copies.as_deref_mut() {
                if !s.cont {
                    clone = frame.duplicate();
                    (clone_l3, clone_dead, clone_ct) = (l3, false, ev.ct);
                }
                if clone_dead {
                    continue;
                }
                if let Some(c) = clone.as_mut() {
                    let more = plan.get(i + 1).is_some_and(|n| n.clone && n.cont);
                    // A copy has ct fields of its own (a `ct` in a fork's
                    // tail runs on the copy, not on the recirculating frame).
                    core::mem::swap(&mut ev.ct, &mut clone_ct);
                    let v = execute_l3(seg, c, &mut clone_l3, ctx, ev);
                    core::mem::swap(&mut ev.ct, &mut clone_ct);
                    match v {
                        Verdict::Output(m) if more => {
                            if let Some(d) = c.duplicate() {
                                sink.push((d, m));
                            }
                        }
                        Verdict::Output(m) => {
                            if let Some(c) = clone.take() {
                                sink.push((c, m));
                            }
                        }
                        Verdict::Drop(DropReason::TtlExpired | DropReason::NoHeadroom) => {
                            clone_dead = true;
                        }
                        Verdict::Drop(_) => {}
                    }
                    continue;
                }
            }
        }
        let v = execute_l3(seg, frame, &mut l3, ctx, ev);
        match v {
            Verdict::Output(m) if Some(i) == last_run || s.clone => out |= m,
            Verdict::Output(m) => match copies
                .as_deref_mut()
                .and_then(|sink| frame.duplicate().map(|d| sink.push((d, m))))
            {
                Some(()) => {}
                None => out |= m,
            },
            Verdict::Drop(r @ (DropReason::TtlExpired | DropReason::NoHeadroom)) => {
                return if out != 0 {
                    Verdict::Output(out)
                } else {
                    Verdict::Drop(r)
                };
            }
            Verdict::Drop(r) => why = r,
        }
    }
    if out != 0 {
        Verdict::Output(out)
    } else {
        Verdict::Drop(why)
    }
}

#[inline(always)]
pub(crate) fn execute_l3<F: Frame>(
    acts: &[Action],
    frame: &mut F,
    l3: &mut usize,
    ctx: &ExecCtx<'_>,
    ev: &mut ExecEvents,
) -> Verdict {
    let in_bit = if ctx.in_port < MAX_PORTS {
        1u64 << ctx.in_port
    } else {
        0
    };
    let mut out = 0u64;
    let mut why = DropReason::Action;
    for a in acts {
        match *a {
            Action::Output(p) => {
                let b = 1u64 << p;
                // The controller channel needs no "up" port (see CONTROLLER_PORT).
                if b & (ctx.ports_up | CONTROLLER_BIT) & !in_bit != 0 {
                    out |= b;
                } else {
                    why = DropReason::NoOutput;
                }
            }
            Action::InPort => {
                if in_bit & ctx.ports_up != 0 {
                    out |= in_bit;
                } else {
                    why = DropReason::NoOutput;
                }
            }
            Action::Flood | Action::All => {
                let m = ctx.ports_up & !in_bit;
                ev.flooded += 1;
                if m == 0 {
                    why = DropReason::NoOutput;
                }
                out |= m;
            }
            Action::Normal => match normal(frame, ctx, ev, ctx.in_port) {
                Ok(m) => out |= m,
                Err(r) => why = r,
            },
            Action::NormalFrom(p) => match normal(frame, ctx, ev, p) {
                Ok(m) => out |= m,
                Err(r) => why = r,
            },
            Action::Drop => return Verdict::Drop(DropReason::Action),
            Action::PushVlan(tpid) => {
                // As OVS: the new tag has VID 0 and PCP 0 (a following
                // set_vlan_vid/pcp fills them), not a copy of the outer one.
                if !push_tag(frame, tpid, 0) {
                    return Verdict::Drop(DropReason::NoHeadroom);
                }
                if *l3 != 0 {
                    *l3 += 4;
                }
            }
            Action::PopVlan => {
                if outer_tci(frame).is_some() {
                    frame.data_mut().copy_within(0..12, 4);
                    frame.adj(4);
                    if *l3 != 0 {
                        *l3 -= 4;
                    }
                }
            }
            // A changed tag goes out with DEI 0, an unchanged one as it
            // came: OVS pops and pushes a tag that differs from the
            // frame's (`commit_vlan_action`), and its push clears the
            // bit (`eth_push_vlan`), which its flow keeps as "present".
            Action::SetVlanVid(vid) => match outer_tci(frame) {
                Some(t) if t & 0x0fff != vid => set_tci(frame, (t & 0xe000) | vid),
                Some(_) => {}
                None => {
                    if !push_tag(frame, ethertype::VLAN, vid) {
                        return Verdict::Drop(DropReason::NoHeadroom);
                    }
                    if *l3 != 0 {
                        *l3 += 4;
                    }
                }
            },
            Action::SetVlanPcp(pcp) => match outer_tci(frame) {
                Some(t) if t >> 13 != u16::from(pcp) => {
                    set_tci(frame, (t & 0x0fff) | (u16::from(pcp) << 13))
                }
                Some(_) => {}
                None => {
                    if !push_tag(frame, ethertype::VLAN, u16::from(pcp) << 13) {
                        return Verdict::Drop(DropReason::NoHeadroom);
                    }
                    if *l3 != 0 {
                        *l3 += 4;
                    }
                }
            },
            Action::SetEthSrc(m) => {
                if let Some(d) = frame.data_mut().get_mut(6..12) {
                    d.copy_from_slice(&m);
                }
            }
            Action::SetEthDst(m) => {
                if let Some(d) = frame.data_mut().get_mut(0..6) {
                    d.copy_from_slice(&m);
                }
            }
            Action::SetIpDscp(dscp) => set_dscp(frame, *l3, dscp),
            Action::DecTtl => {
                if !dec_ttl(frame, *l3) {
                    return Verdict::Drop(DropReason::TtlExpired);
                }
            }
            Action::SetIpv4Src(a) => {
                let partial = frame.l4_csum_partial();
                set_ipv4_addr(frame.data_mut(), *l3, IPV4_SRC, a, partial)
            }
            Action::SetIpv4Dst(a) => {
                let partial = frame.l4_csum_partial();
                set_ipv4_addr(frame.data_mut(), *l3, IPV4_DST, a, partial)
            }
            Action::SetIpv6Src(a) => {
                let partial = frame.l4_csum_partial();
                set_ipv6_addr(frame.data_mut(), *l3, IPV6_SRC, a, partial)
            }
            Action::SetIpv6Dst(a) => {
                let partial = frame.l4_csum_partial();
                set_ipv6_addr(frame.data_mut(), *l3, IPV6_DST, a, partial)
            }
            Action::SetL4Src(l4, p) => {
                let partial = frame.l4_csum_partial();
                set_l4_port(frame.data_mut(), *l3, l4, 0, p, partial)
            }
            Action::SetL4Dst(l4, p) => {
                let partial = frame.l4_csum_partial();
                set_l4_port(frame.data_mut(), *l3, l4, 2, p, partial)
            }
            Action::SetIpEcn(e) => set_ecn(frame, *l3, e),
            Action::SetNwTtl(t) => set_ttl(frame, *l3, t),
            Action::SetTunId(k) => {
                ev.tunnel.id = Some(k);
                ev.tunnel_set = true;
            }
            Action::SetTunDst(a) => {
                ev.tunnel.dst = Some(a);
                ev.tunnel_set = true;
            }
            Action::Ct(c) => ct_execute(frame, *l3, c, ctx, ev),
            Action::CtClear => ev.ct = conntrack::CtMeta::default(),
            Action::SetArpOp(_)
            | Action::SetArpSpa(_)
            | Action::SetArpTpa(_)
            | Action::SetArpSha(_)
            | Action::SetArpTha(_) => crate::pkt_field::exec::set_arp(frame.data_mut(), *l3, a),
            Action::SetIcmpType(_) | Action::SetIcmpCode(_) => {
                if let Some((1, l4, len, false)) = l4_of(frame.data(), *l3) {
                    crate::pkt_field::exec::set_icmp(frame.data_mut(), l4, len, a)
                }
            }
            // Resolved by the pipeline before execution.
            Action::Resubmit(_)
            | Action::Group(_)
            | Action::SetReg(_)
            | Action::SetXxReg(_)
            | Action::Move(_)
            | Action::StackPush(_)
            | Action::StackPop(_) => {}
        }
    }
    if out == 0 {
        Verdict::Drop(why)
    } else {
        Verdict::Output(out)
    }
}

/// Run one `ct` action on the frame (NAT may rewrite it in place).
#[cold]
#[inline(never)]
fn ct_execute<F: Frame>(frame: &mut F, l3: usize, c: CtId, ctx: &ExecCtx<'_>, ev: &mut ExecEvents) {
    let spec = c.spec();
    match ctx.ct {
        Some(t) => {
            let p = std::mem::take(&mut ev.ct_prep);
            t.execute_prepared(frame.data_mut(), l3, &p, spec, &mut ev.ct, ctx.now_ms)
        }
        None => {
            ev.ct = conntrack::CtMeta {
                state: conntrack::state::TRK | conntrack::state::INV,
                zone: spec.zone,
                ..conntrack::CtMeta::default()
            }
        }
    }
}

/// The L3 ethertype of the frame as it is now (after VLAN tags).
fn l3_type<F: Frame>(frame: &F, l3: usize) -> Option<u16> {
    let d = frame.data();
    if l3 < 14 {
        return None;
    }
    d.get(l3 - 2..l3).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn set_dscp<F: Frame>(frame: &mut F, l3: usize, dscp: u8) {
    match l3_type(frame, l3) {
        Some(ethertype::IPV4) => {
            if let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame.data_mut()[l3..]) {
                let tos = (dscp << 2) | (ip.tos() & 3);
                ip.set_tos_incremental(tos);
            }
        }
        Some(ethertype::IPV6) => {
            if let Some(h) = frame.data_mut().get_mut(l3..l3 + 2) {
                // Version(4) | TC(8) | flow label: TC spans the two bytes.
                let tc = (dscp << 2) | ((h[1] >> 4) & 3);
                h[0] = (h[0] & 0xf0) | (tc >> 4);
                h[1] = (h[1] & 0x0f) | (tc << 4);
            }
        }
        _ => {}
    }
}

fn set_ecn<F: Frame>(frame: &mut F, l3: usize, ecn: u8) {
    match l3_type(frame, l3) {
        Some(ethertype::IPV4) => {
            if let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame.data_mut()[l3..]) {
                let tos = (ip.tos() & !3) | (ecn & 3);
                ip.set_tos_incremental(tos);
            }
        }
        Some(ethertype::IPV6) => {
            if let Some(h) = frame.data_mut().get_mut(l3..l3 + 2) {
                // The ECN bits are the low two bits of the traffic class,
                // bits 4-5 of the second byte.
                h[1] = (h[1] & !0x30) | ((ecn & 3) << 4);
            }
        }
        _ => {}
    }
}

fn set_ttl<F: Frame>(frame: &mut F, l3: usize, ttl: u8) {
    match l3_type(frame, l3) {
        Some(ethertype::IPV4) => {
            if let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame.data_mut()[l3..]) {
                ip.set_ttl_incremental(ttl);
            }
        }
        Some(ethertype::IPV6) => {
            if let Some(h) = frame.data_mut().get_mut(l3 + 7) {
                *h = ttl;
            }
        }
        _ => {}
    }
}

const IPV4_SRC: usize = 12;
const IPV4_DST: usize = 16;
const IPV6_SRC: usize = 8;
const IPV6_DST: usize = 24;

fn ethertype_at(d: &[u8], l3: usize) -> Option<u16> {
    if l3 < 14 {
        return None;
    }
    d.get(l3 - 2..l3).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn get16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// RFC 1624 incremental update of checksum `csum` for `old` → `new`
/// (same length, 16-bit words).
pub(crate) fn csum_replace(mut csum: u16, old: &[u8], new: &[u8]) -> u16 {
    use crate::wire::checksum::update;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        csum = update(
            csum,
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([n[0], n[1]]),
        );
    }
    csum
}

/// Where the L4 header of the IP packet at `l3` is: `(protocol, offset,
/// length up to the end of the IP packet)`. `None` when the header is
/// cut, or (IPv6) for a later fragment or an endless extension chain.
/// An IPv4 later fragment is reported (OVS updates the bytes at the L4
/// offset of every IPv4 packet; port rewrites skip later fragments).
fn l4_of(d: &[u8], l3: usize) -> Option<(u8, usize, usize, bool)> {
    match ethertype_at(d, l3)? {
        ethertype::IPV4 => {
            let h = d.get(l3..l3 + 20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(get16(h, 2));
            let later = get16(h, 6) & 0x1fff != 0;
            if ihl < 20 || l3 + ihl > d.len() {
                return None;
            }
            let end = (l3 + total).min(d.len());
            Some((h[9], l3 + ihl, end.saturating_sub(l3 + ihl), later))
        }
        ethertype::IPV6 => {
            let h = d.get(l3..l3 + 40)?;
            let end = (l3 + 40 + usize::from(get16(h, 4))).min(d.len());
            let (mut next, mut off) = (h[6], l3 + 40);
            for _ in 0..16 {
                match next {
                    0 | 43 | 60 => {
                        let e = d.get(off..off + 2)?;
                        next = e[0];
                        off += (usize::from(e[1]) + 1) * 8;
                    }
                    44 => {
                        let e = d.get(off..off + 8)?;
                        if get16(e, 2) & 0xfff8 != 0 {
                            return None;
                        }
                        next = e[0];
                        off += 8;
                    }
                    p => {
                        if off > end {
                            return None;
                        }
                        return Some((p, off, end - off, false));
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Update the TCP/UDP (and, `icmp6`, ICMPv6) checksum for a pseudo-header
/// change `old` → `new`, as OVS does: TCP and UDP only with a whole
/// header present, a UDP checksum 0 (none) stays 0, a result of 0 becomes
/// 0xffff.
///
fn l4_pseudo_update(
    d: &mut [u8],
    proto: u8,
    l4: usize,
    len: usize,
    old: &[u8],
    new: &[u8],
    icmp6: bool,
) {
    match proto {
        6 if len >= 20 => {
            let c = get16(d, l4 + 16);
            put16(d, l4 + 16, csum_replace(c, old, new));
        }
        17 if len >= 8 => {
            let c = get16(d, l4 + 6);
            if c != 0 {
                let n = csum_replace(c, old, new);
                put16(d, l4 + 6, if n == 0 { 0xffff } else { n });
            }
        }
        58 if icmp6 && len >= 4 => {
            let c = get16(d, l4 + 2);
            put16(d, l4 + 2, csum_replace(c, old, new));
        }
        _ => {}
    }
}

/// [`l4_pseudo_update`] for a partial TCP/UDP checksum: the field holds
/// the pseudo-header sum itself, not its complement (VIRTIO 1.2 §5.1.6.2:
/// the device sums from `csum_start` on and stores the complement), so the
/// RFC 1624 update applies to its complement, and no UDP zero rule applies.
fn l4_partial_update(d: &mut [u8], proto: u8, l4: usize, len: usize, old: &[u8], new: &[u8]) {
    let at = match proto {
        6 if len >= 20 => l4 + 16,
        17 if len >= 8 => l4 + 6,
        _ => return,
    };
    let c = get16(d, at);
    put16(d, at, !csum_replace(!c, old, new));
}

fn set_ipv4_addr(d: &mut [u8], l3: usize, at: usize, addr: [u8; 4], partial: bool) {
    if ethertype_at(d, l3) != Some(ethertype::IPV4) || d.len() < l3 + 20 {
        return;
    }
    let mut old = [0u8; 4];
    old.copy_from_slice(&d[l3 + at..l3 + at + 4]);
    if let Some((proto, l4, len, _)) = l4_of(d, l3) {
        if partial {
            l4_partial_update(d, proto, l4, len, &old, &addr);
        } else {
            l4_pseudo_update(d, proto, l4, len, &old, &addr, false);
        }
    }
    let c = get16(d, l3 + 10);
    put16(d, l3 + 10, csum_replace(c, &old, &addr));
    d[l3 + at..l3 + at + 4].copy_from_slice(&addr);
}

fn set_ipv6_addr(d: &mut [u8], l3: usize, at: usize, addr: [u8; 16], partial: bool) {
    if ethertype_at(d, l3) != Some(ethertype::IPV6) || d.len() < l3 + 40 {
        return;
    }
    let mut old = [0u8; 16];
    old.copy_from_slice(&d[l3 + at..l3 + at + 16]);
    if let Some((proto, l4, len, _)) = l4_of(d, l3) {
        if partial {
            l4_partial_update(d, proto, l4, len, &old, &addr);
        } else {
            l4_pseudo_update(d, proto, l4, len, &old, &addr, true);
        }
    }
    d[l3 + at..l3 + at + 16].copy_from_slice(&addr);
}

/// Set the L4 source (`at` 0) or destination (`at` 2) port of a TCP, UDP
/// or SCTP packet whose protocol `l4` allows, with its checksum. A
/// `partial` TCP/UDP checksum covers the pseudo-header only (the device
/// sums the ports later): it stays as it is.
fn set_l4_port(d: &mut [u8], l3: usize, l4: L4Proto, at: usize, port: u16, partial: bool) {
    let Some((proto, off, len, later)) = l4_of(d, l3) else {
        return;
    };
    if later || !l4.applies_to(proto) {
        return;
    }
    let new = port.to_be_bytes();
    if partial && ((proto == 6 && len >= 20) || (proto == 17 && len >= 8)) {
        d[off + at..off + at + 2].copy_from_slice(&new);
        return;
    }
    match proto {
        6 if len >= 20 => {
            let old = get16(d, off + at);
            let c = get16(d, off + 16);
            put16(d, off + 16, crate::wire::checksum::update(c, old, port));
            d[off + at..off + at + 2].copy_from_slice(&new);
        }
        17 if len >= 8 => {
            let old = get16(d, off + at);
            let c = get16(d, off + 6);
            if c != 0 {
                let n = crate::wire::checksum::update(c, old, port);
                put16(d, off + 6, if n == 0 { 0xffff } else { n });
            }
            d[off + at..off + at + 2].copy_from_slice(&new);
        }
        132 if len >= 12 => {
            // CRC32c over the whole SCTP packet, not incremental: keep
            // whatever error the old checksum had (OVS: old ^ correct_old
            // ^ correct_new).
            let sctp = &mut d[off..off + len];
            let mut stored = [0u8; 4];
            stored.copy_from_slice(&sctp[8..12]);
            sctp[8..12].fill(0);
            let before = crc32c(sctp);
            sctp[at..at + 2].copy_from_slice(&new);
            let after = crc32c(sctp);
            let v = u32::from_le_bytes(stored) ^ before ^ after;
            sctp[8..12].copy_from_slice(&v.to_le_bytes());
        }
        _ => {}
    }
}

/// CRC32c (Castagnoli, reflected), as SCTP stores it (little-endian).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    static TABLE: [u32; 256] = table();
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Returns false when the packet must be dropped (TTL expired).
fn dec_ttl<F: Frame>(frame: &mut F, l3: usize) -> bool {
    match l3_type(frame, l3) {
        Some(ethertype::IPV4) => match Ipv4Packet::new_checked(&mut frame.data_mut()[l3..]) {
            Ok(mut ip) => {
                let t = ip.ttl();
                if t <= 1 {
                    return false;
                }
                ip.set_ttl_incremental(t - 1);
                true
            }
            Err(_) => true,
        },
        Some(ethertype::IPV6) => match frame.data_mut().get_mut(l3 + 7) {
            Some(h) if hop_limit_ok(*h) => {
                *h -= 1;
                true
            }
            Some(_) => false,
            None => true,
        },
        _ => true,
    }
}

fn hop_limit_ok(hop: u8) -> bool {
    hop > 1
}

/// The learning bridge for a frame taken to come in on `in_port` (the
/// real ingress port, or the one an `in_port` write names).
fn normal<F: Frame>(
    frame: &F,
    ctx: &ExecCtx<'_>,
    ev: &mut ExecEvents,
    in_port: u16,
) -> Result<u64, DropReason> {
    let in_bit = if in_port < MAX_PORTS {
        1u64 << in_port
    } else {
        0
    };
    let d = frame.data();
    if d.len() < 14 {
        // Runt: nothing to learn, cannot address it; flood like unknown.
        return flood(ctx, ev, in_bit);
    }
    let vlan = outer_tci(frame).map_or(0, |t| t & 0x0fff);
    let dst: [u8; 6] = d[0..6].try_into().unwrap();
    let src: [u8; 6] = d[6..12].try_into().unwrap();
    match ctx.fdb.learn(vlan, src, in_port, ctx.now_ms) {
        crate::fdb::Learned::New => ev.learned += 1,
        crate::fdb::Learned::Evicted => {
            ev.learned += 1;
            ev.evicted += 1
        }
        crate::fdb::Learned::Moved => ev.moved += 1,
        _ => {}
    }
    if dst[0] & 1 != 0 {
        return flood(ctx, ev, in_bit);
    }
    match ctx.fdb.lookup(vlan, dst, ctx.now_ms) {
        Some(p) if p == in_port => Err(DropReason::Hairpin),
        Some(p) if p < MAX_PORTS && ctx.ports_up & (1 << p) != 0 => Ok(1 << p),
        _ => flood(ctx, ev, in_bit),
    }
}

fn flood(ctx: &ExecCtx<'_>, ev: &mut ExecEvents, in_bit: u64) -> Result<u64, DropReason> {
    ev.flooded += 1;
    let m = ctx.ports_up & !in_bit;
    if m == 0 {
        Err(DropReason::NoOutput)
    } else {
        Ok(m)
    }
}

#[cfg(test)]
mod partial_csum_tests {
    use super::*;
    use crate::offload::{complete_checksums, Headers};

    /// Ethernet/IPv4/TCP with 100 bytes of payload.
    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + 100];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&140u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[46] = 5 << 4;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    /// The partial checksum a guest would leave: the pseudo-header sum
    /// (the complement of the checksum of the pseudo-header alone).
    fn partial_of(f: &[u8]) -> u16 {
        let mut p = Vec::new();
        p.extend_from_slice(&f[26..34]);
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(&120u16.to_be_bytes());
        !crate::wire::checksum::internet(&p)
    }

    #[test]
    fn rewrites_keep_a_partial_checksum_partial() {
        let mut f = frame();
        let p = partial_of(&f);
        put16(&mut f, 50, p);
        set_ipv4_addr(&mut f, 14, IPV4_DST, [192, 168, 7, 9], true);
        set_l4_port(&mut f, 14, L4Proto::Tcp, 2, 8080, true);
        // Still exactly the pseudo-header sum of the rewritten frame ...
        assert_eq!(get16(&f, 50), partial_of(&f));
        // ... and completing it gives the checksum a full-checksum frame
        // rewritten the ordinary way has.
        let mut full = frame();
        let h = Headers::parse(&full).unwrap();
        complete_checksums(&mut full, &h);
        set_ipv4_addr(&mut full, 14, IPV4_DST, [192, 168, 7, 9], false);
        set_l4_port(&mut full, 14, L4Proto::Tcp, 2, 8080, false);
        complete_checksums(&mut f, &h);
        assert_eq!(f, full);
    }
}
