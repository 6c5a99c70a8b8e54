//! ACL traffic (issue 17): mixed TCP/UDP 5-tuples with different source
//! and destination addresses and ports, written to a pcap `net_pcap`
//! replays. [`crate::rules::acl_rule_set`] builds the rules against it.
//!
//! Flow `i` (of `n`):
//!
//! | field | value |
//! |---|---|
//! | protocol | TCP for even `i`, UDP for odd `i` |
//! | source IP | 10.A.B.C: A = i % 16, B = (i / 16) % 256, C = 1 + (i / 4096) % 250 |
//! | destination IP | 10.(200 + i % 8).((i / 8) % 256).(1 + (i / 2048) % 250) |
//! | source port | 1024 + (i × 31) % 50000 |
//! | destination port | one of 80 443 53 8080 22 3306 5432 6379 123 8443 (i / 2 % 10) |
//!
//! The source address alone is distinct for the first 1M flows, so `n`
//! flows are `n` distinct 5-tuples.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};

use crate::frames::inet_checksum;

/// IP protocol numbers.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;

/// The service ports the traffic goes to.
pub const DST_PORTS: [u16; 10] = [80, 443, 53, 8080, 22, 3306, 5432, 6379, 123, 8443];

/// The most flows [`flow`] keeps distinct.
pub const MAX_FLOWS: u32 = 16 * 256 * 250;

/// One 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// IP protocol ([`TCP`] or [`UDP`]).
    pub proto: u8,
    /// Source address (host order).
    pub src: u32,
    /// Destination address (host order).
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// Flow number `i` (see the module doc).
pub fn flow(i: u32) -> Flow {
    let ip = |a: u32, b: u32, c: u32, d: u32| a << 24 | b << 16 | c << 8 | d;
    Flow {
        proto: if i.is_multiple_of(2) { TCP } else { UDP },
        src: ip(10, i % 16, (i / 16) % 256, 1 + (i / 4096) % 250),
        dst: ip(10, 200 + i % 8, (i / 8) % 256, 1 + (i / 2048) % 250),
        sport: 1024 + ((i as u64 * 31) % 50_000) as u16,
        dport: DST_PORTS[(i / 2 % 10) as usize],
    }
}

/// A `len`-byte (without FCS, at least 54) Ethernet/IPv4/TCP-or-UDP frame
/// of `f`, with a valid IPv4 header checksum (L4 checksum 0).
pub fn frame(f: &Flow, len: usize) -> Vec<u8> {
    let len = len.max(54);
    let mut b = vec![0u8; len];
    b[0..6].copy_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
    b[6..12].copy_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    b[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    {
        let ip = &mut b[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = f.proto;
        ip[12..16].copy_from_slice(&f.src.to_be_bytes());
        ip[16..20].copy_from_slice(&f.dst.to_be_bytes());
        let c = inet_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    b[34..36].copy_from_slice(&f.sport.to_be_bytes());
    b[36..38].copy_from_slice(&f.dport.to_be_bytes());
    if f.proto == TCP {
        b[46] = 5 << 4; // data offset 5 words
        b[47] = 0x10; // ACK
        b[48..50].copy_from_slice(&65535u16.to_be_bytes());
    } else {
        b[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    }
    b
}

/// Writes the ACL pcap for `flows` 5-tuples: every flow once, cycling for
/// [`crate::frames::frames_for_flows`] frames. Returns the frame count.
pub fn write_pcap(path: &Path, flows: u32, len: usize) -> std::io::Result<u32> {
    if flows == 0 || flows > MAX_FLOWS {
        return Err(std::io::Error::other(format!(
            "ACL flow count {flows} not in 1..={MAX_FLOWS}"
        )));
    }
    let n = crate::frames::frames_for_flows(flows);
    let mut w = PcapWriter::new(File::create(path)?).map_err(std::io::Error::other)?;
    for i in 0..n {
        let f = frame(&flow(i % flows), len);
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(i as u64),
            f.len() as u32,
            &f,
        ))
        .map_err(std::io::Error::other)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn flows_are_distinct_and_mixed() {
        let v: Vec<Flow> = (0..10_000).map(flow).collect();
        assert_eq!(v.iter().collect::<HashSet<_>>().len(), 10_000);
        assert_eq!(v.iter().filter(|f| f.proto == TCP).count(), 5000);
        assert!(v.iter().map(|f| f.src).collect::<HashSet<_>>().len() == 10_000);
        assert!(v.iter().map(|f| f.dst).collect::<HashSet<_>>().len() > 1000);
        assert!(v.iter().map(|f| f.sport).collect::<HashSet<_>>().len() > 5000);
        let dports: HashSet<(u8, u16)> = v.iter().map(|f| (f.proto, f.dport)).collect();
        assert_eq!(dports.len(), 20, "every service port over TCP and UDP");
        let a: HashSet<Flow> = (0..MAX_FLOWS).step_by(97).map(flow).collect();
        assert_eq!(a.len(), (0..MAX_FLOWS).step_by(97).count());
    }

    #[test]
    fn frames_parse_back() {
        for i in 0..64 {
            let f = flow(i);
            let b = frame(&f, 60);
            assert_eq!(b.len(), 60);
            assert_eq!(inet_checksum(&b[14..34]), 0);
            assert_eq!(b[23], f.proto);
            assert_eq!(u32::from_be_bytes(b[26..30].try_into().unwrap()), f.src);
            assert_eq!(u32::from_be_bytes(b[30..34].try_into().unwrap()), f.dst);
            assert_eq!(u16::from_be_bytes([b[34], b[35]]), f.sport);
            assert_eq!(u16::from_be_bytes([b[36], b[37]]), f.dport);
        }
    }
}
