//! Test traffic: Ethernet/IPv4/UDP frames with correct checksums, written
//! to pcap files that `net_pcap` replays (`rx_pcap=F,infinite_rx=1`).

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};

/// The RFC 1071 Internet checksum of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A `len`-byte (without FCS, at least 42) Ethernet/IPv4/UDP frame of flow
/// number `flow`: the flow number is spread over the source IP and the UDP
/// ports, so `n` flows give `n` distinct 5-tuples.
pub fn udp_frame(flow: u32, len: usize) -> Vec<u8> {
    let len = len.max(42);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    let src = 0x0a00_0000u32 | (flow >> 8 & 0xffff);
    ip[12..16].copy_from_slice(&src.to_be_bytes());
    ip[16..20].copy_from_slice(&[10, 1, 0, 1]);
    let c = inet_checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp_len = ip_len - 20;
    let sport = 1024 + (flow & 0xff) as u16;
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&4789u16.to_be_bytes());
    f[38..40].copy_from_slice(&udp_len.to_be_bytes());
    // UDP checksum 0: "no checksum" is valid for IPv4 (RFC 768).
    f
}

/// Writes `count` frames cycling over `flows` flows to a pcap file.
pub fn write_udp_pcap(path: &Path, flows: u32, count: u32, len: usize) -> std::io::Result<()> {
    let mut w = PcapWriter::new(File::create(path)?).map_err(std::io::Error::other)?;
    for i in 0..count {
        let f = udp_frame(i % flows.max(1), len);
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(i as u64),
            f.len() as u32,
            &f,
        ))
        .map_err(std::io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_header() {
        // RFC 1071 example header from Wikipedia's IPv4 checksum article.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(inet_checksum(&h), 0xb861);
    }

    #[test]
    fn frames_are_valid_and_distinct() {
        let a = udp_frame(1, 60);
        let b = udp_frame(2, 60);
        assert_eq!(a.len(), 60);
        assert_ne!(a, b);
        assert_eq!(inet_checksum(&a[14..34]), 0, "header checksum verifies");
        assert_eq!(u16::from_be_bytes([a[16], a[17]]), 46);
    }
}
