//! Builders for well-formed test frames (used by the unit tests, the
//! benchmark and the lead's integration tests). Checksums are correct.

use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};

/// Source MAC used by the builders.
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
/// Destination MAC used by the builders.
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// Ethernet header only.
pub fn eth(dst: [u8; 6], src: [u8; 6], ty: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    v.extend_from_slice(&ty.to_be_bytes());
    v
}

/// MAC_A -> MAC_B IPv4 frame with `payload` after a 20-byte header (TTL 64).
pub fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = eth(MAC_B, MAC_A, 0x0800);
    let repr = Ipv4Repr {
        src,
        dst,
        protocol: proto,
        tos: 0,
        ttl: 64,
        payload_len: payload.len(),
    };
    let at = v.len();
    v.resize(at + repr.buffer_len(), 0);
    repr.emit(&mut v[at..]);
    v.extend_from_slice(payload);
    v
}

/// TCP/IPv4 frame with the given flags and TTL.
pub fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u16, ttl: u8) -> Vec<u8> {
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[12..14].copy_from_slice(&(0x5000 | flags).to_be_bytes());
    let mut f = ipv4_frame(src, dst, 6, &tcp);
    f[14 + 8] = ttl;
    fix_ip_csum(&mut f);
    f
}

/// UDP/IPv4 frame with 4 bytes of payload.
pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut udp = [0u8; 12];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&12u16.to_be_bytes());
    udp[8..12].copy_from_slice(b"data");
    ipv4_frame(src, dst, 17, &udp)
}

/// Recompute the IPv4 header checksum of an untagged frame.
pub fn fix_ip_csum(f: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut f[14..34]).fill_checksum();
}

/// Set the TOS byte of an untagged IPv4 frame (checksum recomputed).
pub fn set_tos(f: &mut [u8], tos: u8) {
    f[15] = tos;
    fix_ip_csum(f);
}

/// Insert a VLAN tag (`tpid`, `tci`) right after the MAC addresses.
pub fn with_vlan(f: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&tpid.to_be_bytes());
    v.extend_from_slice(&tci.to_be_bytes());
    v.extend_from_slice(&f[12..]);
    v
}

/// Ethernet/IPv4 ARP frame from MAC_A (broadcast destination).
pub fn arp_frame(op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut v = eth([0xff; 6], MAC_A, 0x0806);
    v.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&spa);
    v.extend_from_slice(&[0; 6]);
    v.extend_from_slice(&tpa);
    v
}

/// IPv6 frame fe80::1 -> fe80::2, hop limit 64, traffic class 0.
pub fn ipv6_frame(nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = eth(MAC_B, MAC_A, 0x86dd);
    v.extend_from_slice(&[0x60, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 64]);
    v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(payload);
    v
}

/// A frame from `src` to `dst` MAC (IPv4/UDP inside), for L2 tests.
pub fn l2_frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}
