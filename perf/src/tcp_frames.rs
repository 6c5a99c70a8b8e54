//! TCP conversations for the connection-tracking benchmark
//! (`src/bin/conntrack.rs`): 60-byte Ethernet/IPv4/TCP frames (64 on the
//! wire) with valid IP and TCP checksums (trackers drop bad ones) and
//! consistent sequence numbers, written to pcap files.
//!
//! Connection `i` of a set runs from `10.0.(i / 250).(i % 250 + 1)` port
//! `1024 + i % 64000` to `10.200.0.1` port 80, so no two connections share
//! a source port towards the server and a single-address SNAT keeps every
//! port (no collisions).

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};

use crate::frames::inet_checksum;

/// TCP flags (RFC 9293 §3.1).
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The server every connection talks to.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
/// The server's port.
pub const SERVER_PORT: u16 = 80;
/// Most connections a set may hold (distinct client ports).
pub const MAX_CONNS: u32 = 64_000;

/// One TCP segment's fields.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// TCP source port.
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (sent as is; meaningful with ACK).
    pub ack: u32,
    /// Flags ([`flags`]).
    pub flags: u8,
}

/// A 60-byte frame (6 bytes of data) carrying `s`, checksums valid.
pub fn tcp_frame(s: &Segment) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    {
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&46u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&s.src.octets());
        ip[16..20].copy_from_slice(&s.dst.octets());
        let c = inet_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    {
        let t = &mut f[34..60];
        t[0..2].copy_from_slice(&s.sport.to_be_bytes());
        t[2..4].copy_from_slice(&s.dport.to_be_bytes());
        t[4..8].copy_from_slice(&s.seq.to_be_bytes());
        t[8..12].copy_from_slice(&s.ack.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = s.flags;
        t[14..16].copy_from_slice(&65535u16.to_be_bytes());
        t[20..26].copy_from_slice(b"vswct!");
    }
    let mut ph = Vec::with_capacity(12 + 26);
    ph.extend_from_slice(&s.src.octets());
    ph.extend_from_slice(&s.dst.octets());
    ph.extend_from_slice(&[0, 6, 0, 26]);
    ph.extend_from_slice(&f[34..60]);
    let c = inet_checksum(&ph);
    f[50..52].copy_from_slice(&c.to_be_bytes());
    f
}

/// Connection `i`'s client address and port.
pub fn client(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 1) as u8),
        1024 + (i % MAX_CONNS) as u16,
    )
}

/// Initial sequence numbers of connection `i` (client, server).
pub fn isn(i: u32) -> (u32, u32) {
    (
        0x1000_0000u32.wrapping_add(i.wrapping_mul(7919)),
        0x9000_0000u32.wrapping_add(i.wrapping_mul(104_729)),
    )
}

/// Connection `i`'s segment from the client with `flags`, `n`-th data
/// segment (sequence numbers after the handshake advance 6 bytes each).
pub fn from_client(i: u32, flags: u8, n: u32) -> Segment {
    let (src, sport) = client(i);
    let (c, s) = isn(i);
    let syn = flags & flags::SYN != 0;
    Segment {
        src,
        dst: SERVER,
        sport,
        dport: SERVER_PORT,
        seq: if syn { c } else { c.wrapping_add(1 + 6 * n) },
        ack: if flags & flags::ACK != 0 {
            s.wrapping_add(1)
        } else {
            0
        },
        flags,
    }
}

/// Connection `i`'s SYN-ACK from the server, addressed to `to` (the
/// client, or its SNAT address).
pub fn syn_ack(i: u32, to: Ipv4Addr) -> Segment {
    let (_, sport) = client(i);
    let (c, s) = isn(i);
    Segment {
        src: SERVER,
        dst: to,
        sport: SERVER_PORT,
        dport: sport,
        seq: s,
        ack: c.wrapping_add(1),
        flags: flags::SYN | flags::ACK,
    }
}

/// Writes `frames` to a pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    let mut w = PcapWriter::new(File::create(path)?).map_err(std::io::Error::other)?;
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(i as u64),
            f.len() as u32,
            f,
        ))
        .map_err(std::io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify() {
        let f = tcp_frame(&from_client(7, flags::SYN, 0));
        assert_eq!(f.len(), 60);
        assert_eq!(inet_checksum(&f[14..34]), 0);
        let mut ph = f[26..34].to_vec();
        ph.extend_from_slice(&[0, 6, 0, 26]);
        ph.extend_from_slice(&f[34..]);
        assert_eq!(inet_checksum(&ph), 0);
    }

    #[test]
    fn clients_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..MAX_CONNS {
            assert!(seen.insert(client(i)));
            assert!(seen.len() as u32 == i + 1);
        }
        let ports: std::collections::HashSet<u16> = (0..MAX_CONNS).map(|i| client(i).1).collect();
        assert_eq!(ports.len() as u32, MAX_CONNS);
    }
}
