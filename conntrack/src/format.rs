//! Connections in the text of `ovs-appctl dpctl/dump-conntrack` (OVS
//! `lib/ct-dpif.c`, `ct_dpif_format_entry`), which `vswitch ct show` prints:
//!
//! ```text
//! tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),zone=5,mark=3,protoinfo=(state=ESTABLISHED)
//! icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=7,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=7,type=0,code=0)
//! ```
//!
//! As OVS: `zone`, `mark` and `labels` only when non-zero, `protoinfo` for
//! TCP only; ICMP tuples give identifier, type and code (see [`Tuple`]).

use crate::packet::proto;
use crate::{ConnInfo, Tuple};
use std::fmt;

/// The protocol's name as OVS's `ct_dpif_format_ipproto` gives it.
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        proto::ICMP => "icmp",
        proto::ICMPV6 => "icmpv6",
        proto::TCP => "tcp",
        proto::UDP => "udp",
        132 => "sctp",
        136 => "udplite",
        33 => "dccp",
        2 => "igmp",
        _ => return None,
    })
}

/// A tuple as `ct_dpif_format_tuple`: `src=A,dst=B,sport=P,dport=Q`, or
/// for ICMP `src=A,dst=B,id=I,type=T,code=C`.
pub struct DumpTuple<'a>(pub &'a Tuple);

impl fmt::Display for DumpTuple<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(f, "src={},dst={}", t.src, t.dst)?;
        if matches!(t.proto, proto::ICMP | proto::ICMPV6) {
            write!(
                f,
                ",id={},type={},code={}",
                t.src_port,
                t.dst_port >> 8,
                t.dst_port & 0xff
            )
        } else {
            write!(f, ",sport={},dport={}", t.src_port, t.dst_port)
        }
    }
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match proto_name(self.orig.proto) {
            Some(n) => f.write_str(n)?,
            None => write!(f, "{}", self.orig.proto)?,
        }
        write!(
            f,
            ",orig=({}),reply=({})",
            DumpTuple(&self.orig),
            DumpTuple(&self.reply)
        )?;
        if self.zone != 0 {
            write!(f, ",zone={}", self.zone)?;
        }
        if self.mark != 0 {
            write!(f, ",mark={}", self.mark)?;
        }
        if self.label != 0 {
            write!(f, ",labels={:#x}", self.label)?;
        }
        if self.orig.proto == proto::TCP {
            write!(f, ",protoinfo=(state={})", self.state)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(proto_: u8, orig: (&str, &str, u16, u16), reply: (&str, &str, u16, u16)) -> ConnInfo {
        let t = |(s, d, sp, dp): (&str, &str, u16, u16)| Tuple {
            src: s.parse().unwrap(),
            dst: d.parse().unwrap(),
            src_port: sp,
            dst_port: dp,
            proto: proto_,
        };
        ConnInfo {
            zone: 0,
            orig: t(orig),
            reply: t(reply),
            state: "ESTABLISHED",
            mark: 0,
            label: 0,
            expires_in_ms: 1000,
        }
    }

    #[test]
    fn format_tcp_as_dpctl_dump_conntrack() {
        let mut c = conn(
            6,
            ("10.0.0.1", "10.0.0.2", 40000, 80),
            ("10.0.0.2", "10.0.0.1", 80, 40000),
        );
        assert_eq!(
            c.to_string(),
            "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),\
             reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),protoinfo=(state=ESTABLISHED)"
        );
        (c.zone, c.mark, c.label) = (5, 3, 0x1234);
        assert!(c
            .to_string()
            .ends_with(",zone=5,mark=3,labels=0x1234,protoinfo=(state=ESTABLISHED)"));
    }

    #[test]
    fn format_udp_v6_and_icmp() {
        let c = conn(
            17,
            ("fd00::1", "fd00::2", 5000, 53),
            ("fd00::2", "fd00::1", 53, 5000),
        );
        assert_eq!(
            c.to_string(),
            "udp,orig=(src=fd00::1,dst=fd00::2,sport=5000,dport=53),reply=(src=fd00::2,dst=fd00::1,sport=53,dport=5000)"
        );
        let c = conn(
            1,
            ("10.0.0.1", "10.0.0.2", 7, 8 << 8),
            ("10.0.0.2", "10.0.0.1", 7, 0),
        );
        assert_eq!(
            c.to_string(),
            "icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=7,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=7,type=0,code=0)"
        );
        let c = conn(
            47,
            ("10.0.0.1", "10.0.0.2", 0, 0),
            ("10.0.0.2", "10.0.0.1", 0, 0),
        );
        assert!(c
            .to_string()
            .starts_with("47,orig=(src=10.0.0.1,dst=10.0.0.2,sport=0,dport=0)"));
    }
}
