//! NAT rewrites of a frame: addresses and ports, with the IPv4 header and
//! TCP/UDP/ICMP checksums updated incrementally (RFC 1624), including the
//! packet quoted inside an ICMP error.
