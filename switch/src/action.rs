//! Rule actions: parsing/printing in `ovs-ofctl` syntax and execution on a
//! [`Frame`].
//!
//! Semantics: actions run in order; modifications apply to the frame in
//! place and every output port collects into one port set, so all outputs
//! of a rule send the same (final) bytes. A rule that modifies the frame
//! after an output is therefore rejected by the parser rather than silently
//! sending the later bytes to the earlier port.

use core::fmt;

use crate::fdb::Fdb;
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict, MAX_PORTS};
use crate::wire::ethernet::{ethertype, is_vlan_tpid};
use crate::wire::ipv4::Ipv4Packet;

/// One action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `output:N` — send to port N (not to the ingress port, per OpenFlow).
    Output(u16),
    /// `flood` — every port except the ingress port.
    Flood,
    /// `normal` — learning bridge (per-VLAN MAC table, flood unknown).
    Normal,
    /// `drop` — explicit drop (must be the only action).
    Drop,
    /// `push_vlan:TPID` — push a tag; its TCI copies the outer tag's, or 0.
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
}

impl Action {
    fn modifies(&self) -> bool {
        !matches!(
            self,
            Action::Output(_) | Action::Flood | Action::Normal | Action::Drop
        )
    }
}

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
                    return Err(format!("push_vlan:{t:#06x}: TPID must be 0x8100, 0x88a8 or 0x9100"));
                }
                Ok(Action::PushVlan(t))
            }
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
            _ if arg.is_none() && name.bytes().all(|b| b.is_ascii_digit()) => Ok(Action::Output(parse_port(name)?)),
            _ => Err(format!(
                "unknown action `{name}` (known: output:N, flood, normal, drop, push_vlan:TPID, pop_vlan, \
                 mod_vlan_vid:VID, mod_vlan_pcp:PCP, mod_dl_src:MAC, mod_dl_dst:MAC, set_ip_dscp:DSCP, \
                 mod_nw_tos:TOS, dec_ttl)"
            )),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(p) => write!(f, "output:{p}"),
            Action::Flood => write!(f, "FLOOD"),
            Action::Normal => write!(f, "NORMAL"),
            Action::Drop => write!(f, "drop"),
            Action::PushVlan(t) => write!(f, "push_vlan:{t:#06x}"),
            Action::PopVlan => write!(f, "pop_vlan"),
            Action::SetVlanVid(v) => write!(f, "mod_vlan_vid:{v}"),
            Action::SetVlanPcp(p) => write!(f, "mod_vlan_pcp:{p}"),
            Action::SetEthSrc(m) => write!(f, "mod_dl_src:{}", fmt_mac(m)),
            Action::SetEthDst(m) => write!(f, "mod_dl_dst:{}", fmt_mac(m)),
            Action::SetIpDscp(d) => write!(f, "mod_nw_tos:{}", d << 2),
            Action::DecTtl => write!(f, "dec_ttl"),
        }
    }
}

/// Parse a comma-separated action list and validate it: `drop` alone, no
/// modification after an output, at least one action.
pub fn parse_actions(s: &str) -> Result<Vec<Action>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty action list (use `actions=drop` to drop)".into());
    }
    let acts = s
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<Action>, _>>()?;
    if acts.contains(&Action::Drop) && acts.len() > 1 {
        return Err("`drop` must be the only action".into());
    }
    if let Some(first_out) = acts
        .iter()
        .position(|a| !a.modifies() && *a != Action::Drop)
    {
        if let Some(m) = acts[first_out..].iter().find(|a| a.modifies()) {
            return Err(format!(
                "`{m}` after an output: all outputs of a rule send the same bytes, put modifications first"
            ));
        }
    }
    Ok(acts)
}

/// Format an action list.
pub fn fmt_actions(acts: &[Action]) -> String {
    acts.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

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
    mut l3: usize,
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
                if b & ctx.ports_up & !in_bit != 0 {
                    out |= b;
                } else {
                    why = DropReason::NoOutput;
                }
            }
            Action::Flood => {
                let m = ctx.ports_up & !in_bit;
                ev.flooded += 1;
                if m == 0 {
                    why = DropReason::NoOutput;
                }
                out |= m;
            }
            Action::Normal => match normal(frame, ctx, ev, in_bit) {
                Ok(m) => out |= m,
                Err(r) => why = r,
            },
            Action::Drop => return Verdict::Drop(DropReason::Action),
            Action::PushVlan(tpid) => {
                let tci = outer_tci(frame).unwrap_or(0);
                if !push_tag(frame, tpid, tci) {
                    return Verdict::Drop(DropReason::NoHeadroom);
                }
                if l3 != 0 {
                    l3 += 4;
                }
            }
            Action::PopVlan => {
                if outer_tci(frame).is_some() {
                    frame.data_mut().copy_within(0..12, 4);
                    frame.adj(4);
                    if l3 != 0 {
                        l3 -= 4;
                    }
                }
            }
            Action::SetVlanVid(vid) => match outer_tci(frame) {
                Some(t) => set_tci(frame, (t & 0xf000) | vid),
                None => {
                    if !push_tag(frame, ethertype::VLAN, vid) {
                        return Verdict::Drop(DropReason::NoHeadroom);
                    }
                    if l3 != 0 {
                        l3 += 4;
                    }
                }
            },
            Action::SetVlanPcp(pcp) => match outer_tci(frame) {
                Some(t) => set_tci(frame, (t & 0x1fff) | (u16::from(pcp) << 13)),
                None => {
                    if !push_tag(frame, ethertype::VLAN, u16::from(pcp) << 13) {
                        return Verdict::Drop(DropReason::NoHeadroom);
                    }
                    if l3 != 0 {
                        l3 += 4;
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
            Action::SetIpDscp(dscp) => set_dscp(frame, l3, dscp),
            Action::DecTtl => {
                if !dec_ttl(frame, l3) {
                    return Verdict::Drop(DropReason::TtlExpired);
                }
            }
        }
    }
    if out == 0 {
        Verdict::Drop(why)
    } else {
        Verdict::Output(out)
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

fn normal<F: Frame>(
    frame: &F,
    ctx: &ExecCtx<'_>,
    ev: &mut ExecEvents,
    in_bit: u64,
) -> Result<u64, DropReason> {
    let d = frame.data();
    if d.len() < 14 {
        // Runt: nothing to learn, cannot address it; flood like unknown.
        return flood(ctx, ev, in_bit);
    }
    let vlan = outer_tci(frame).map_or(0, |t| t & 0x0fff);
    let dst: [u8; 6] = d[0..6].try_into().unwrap();
    let src: [u8; 6] = d[6..12].try_into().unwrap();
    match ctx.fdb.learn(vlan, src, ctx.in_port, ctx.now_ms) {
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
        Some(p) if p == ctx.in_port => Err(DropReason::Hairpin),
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
