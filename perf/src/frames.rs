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

/// Frames in the pcap for `flows` distinct flows: every flow once, and at
/// least 1024 frames so that small flow counts still give `net_pcap` a
/// varied ring (net_pcap preloads every frame into an mbuf).
pub fn frames_for_flows(flows: u32) -> u32 {
    flows.max(1024)
}

/// The most flows [`udp_frame`] keeps distinct (16 bits of source IP times
/// 8 bits of source port).
pub const MAX_FLOWS: u32 = 1 << 24;

/// An IPv4 5-tuple: (source, destination, protocol, source port,
/// destination port).
pub type FiveTuple = ([u8; 4], [u8; 4], u8, u16, u16);

/// The IPv4/UDP 5-tuple of an Ethernet frame, or `None` for anything else
/// or a truncated frame.
pub fn five_tuple(f: &[u8]) -> Option<FiveTuple> {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(f[14] & 0xf) * 4;
    let l4 = 14 + ihl;
    if ihl < 20 || f.len() < l4 + 4 || f[23] != 17 {
        return None;
    }
    Some((
        f[26..30].try_into().ok()?,
        f[30..34].try_into().ok()?,
        f[23],
        u16::from_be_bytes([f[l4], f[l4 + 1]]),
        u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]),
    ))
}

/// Writes the benchmark pcap for `flows` distinct 5-tuples: each flow
/// once, cycling over the flows for [`frames_for_flows`] frames.
pub fn write_flows_pcap(path: &Path, flows: u32, len: usize) -> std::io::Result<u32> {
    if flows == 0 || flows > MAX_FLOWS {
        return Err(std::io::Error::other(format!(
            "flow count {flows} not in 1..={MAX_FLOWS}"
        )));
    }
    let n = frames_for_flows(flows);
    write_udp_pcap(path, flows, n, len)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use std::collections::HashSet;

    fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
        let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
        let mut v = Vec::new();
        while let Some(p) = r.next_packet() {
            v.push(p.unwrap().data.into_owned());
        }
        v
    }

    #[test]
    fn flows_pcap_has_exactly_n_distinct_tuples() {
        let dir = std::env::temp_dir().join(format!("perf-frames-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for flows in [1u32, 1000, 10_000] {
            let p = dir.join(format!("{flows}.pcap"));
            let n = write_flows_pcap(&p, flows, 60).unwrap();
            assert_eq!(n, flows.max(1024));
            let frames = read_pcap(&p);
            assert_eq!(frames.len(), n as usize);
            let mut tuples = HashSet::new();
            for f in &frames {
                assert_eq!(f.len(), 60, "64-byte frames on the wire with FCS");
                assert_eq!(inet_checksum(&f[14..34]), 0);
                tuples.insert(five_tuple(f).expect("IPv4/UDP"));
            }
            assert_eq!(tuples.len(), flows as usize);
            let again = dir.join("again.pcap");
            write_flows_pcap(&again, flows, 60).unwrap();
            assert_eq!(
                std::fs::read(&p).unwrap(),
                std::fs::read(&again).unwrap(),
                "deterministic"
            );
        }
        assert!(write_flows_pcap(&dir.join("x.pcap"), 0, 60).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// 1M flows: the generator itself (without the pcap) stays distinct.
    #[test]
    fn a_million_distinct_tuples() {
        let mut tuples = HashSet::with_capacity(1 << 20);
        for i in 0..1u32 << 20 {
            tuples.insert(five_tuple(&udp_frame(i, 60)).unwrap());
        }
        assert_eq!(tuples.len(), 1 << 20);
    }

    #[test]
    fn five_tuple_rejects_garbage() {
        assert_eq!(five_tuple(&[]), None);
        assert_eq!(five_tuple(&[0u8; 60]), None);
        let mut f = udp_frame(3, 60);
        assert_eq!(
            five_tuple(&f),
            Some(([10, 0, 0, 0], [10, 1, 0, 1], 17, 1027, 4789))
        );
        f[23] = 6;
        assert_eq!(five_tuple(&f), None);
        for len in 0..60 {
            let _ = five_tuple(&udp_frame(7, 60)[..len]);
        }
    }

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
