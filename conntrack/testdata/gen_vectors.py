#!/usr/bin/env python3
"""Writes src/vectors.rs: the test frames of the parse/rewrite tests, built
here with Python's struct and an independent checksum (RFC 1071) so the
Rust code is checked against another implementation.
Run: python3 conntrack/testdata/gen_vectors.py > conntrack/src/vectors.rs && cargo fmt"""
import struct, ipaddress

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def a4(s): return ipaddress.IPv4Address(s).packed
def a6(s): return ipaddress.IPv6Address(s).packed

ETH4 = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
ETH6 = bytes.fromhex("020000000002020000000001") + b"\x86\xdd"

def ipv4(src, dst, proto, payload, ident=1, flags_off=0x4000, ttl=64, opts=b""):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(payload), ident, flags_off, ttl, proto, 0, a4(src), a4(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload

def ipv6(src, dst, nxt, payload, hlim=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nxt, hlim, a6(src), a6(dst)) + payload

def pseudo4(src, dst, proto, l):
    return a4(src) + a4(dst) + struct.pack("!BBH", 0, proto, l)

def pseudo6(src, dst, proto, l):
    return a6(src) + a6(dst) + struct.pack("!IxxxB", l, proto)

def tcp(src, dst, sp, dp, seq, ack, flags, win, opts=b"", data=b"", v6=False):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIHHHH", sp, dp, seq, ack, (off << 12) | flags, win, 0, 0) + opts + data
    ph = (pseudo6 if v6 else pseudo4)(src, dst, 6, len(h))
    c = csum(ph + h)
    return h[:16] + struct.pack("!H", c) + h[18:]

def udp(src, dst, sp, dp, data, v6=False, zero=False):
    h = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
    if zero:
        return h
    ph = (pseudo6 if v6 else pseudo4)(src, dst, 17, len(h))
    c = csum(ph + h) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + h[8:]

def icmp4(ty, code, rest, data):
    h = struct.pack("!BBH", ty, code, 0) + rest + data
    return h[:2] + struct.pack("!H", csum(h)) + h[4:]

def icmp6(src, dst, ty, code, rest, data):
    h = struct.pack("!BBH", ty, code, 0) + rest + data
    c = csum(pseudo6(src, dst, 58, len(h)) + h)
    return h[:2] + struct.pack("!H", c) + h[4:]

C4, S4, R4 = "10.0.0.1", "10.0.0.2", "10.0.0.254"
C6, S6 = "fd00::1", "fd00::2"
SYN_OPTS = bytes.fromhex("020405b4") + bytes.fromhex("0402") + bytes.fromhex("080a000000010000000001") [:10] + bytes.fromhex("01030307")
# MSS 1460, SACK-permitted, timestamps (10 bytes), NOP, window scale 7 = 20 bytes

v = {}
v["TCP4_SYN"] = ETH4 + ipv4(C4, S4, 6, tcp(C4, S4, 40000, 80, 1000, 0, 0x002, 64240, SYN_OPTS))
v["TCP4_DATA"] = ETH4 + ipv4(C4, S4, 6, tcp(C4, S4, 40000, 80, 1001, 5001, 0x018, 502, data=b"GET / HTTP/1.0\r\n\r\n"))
u = udp(C4, S4, 5000, 53, b"hello")
v["UDP4"] = ETH4 + ipv4(C4, S4, 17, u) + b"\0" * 13   # Ethernet padding to 60 bytes
v["UDP4_NOCSUM"] = ETH4 + ipv4(C4, S4, 17, udp(C4, S4, 5000, 53, b"hello", zero=True))
v["ICMP4_ECHO"] = ETH4 + ipv4(C4, S4, 1, icmp4(8, 0, struct.pack("!HH", 0x1234, 1), b"pingdata"))
# Port unreachable from the server back to the client, quoting the whole UDP datagram.
quoted_udp = ipv4(C4, S4, 17, u)
v["ICMP4_UNREACH_UDP"] = ETH4 + ipv4(S4, C4, 1, icmp4(3, 3, b"\0\0\0\0", quoted_udp))
# Time exceeded from a router, quoting the SYN's IP header and 8 bytes (RFC 792).
syn_ip = ipv4(C4, S4, 6, tcp(C4, S4, 40000, 80, 1000, 0, 0x002, 64240, SYN_OPTS))
v["ICMP4_TTL_TCP"] = ETH4 + ipv4(R4, C4, 1, icmp4(11, 0, b"\0\0\0\0", syn_ip[:28]))
# Host unreachable for an echo request.
echo_ip = ipv4(C4, S4, 1, icmp4(8, 0, struct.pack("!HH", 0x1234, 1), b"pingdata"))
v["ICMP4_UNREACH_ECHO"] = ETH4 + ipv4(R4, C4, 1, icmp4(3, 1, b"\0\0\0\0", echo_ip))
# Fragments of a UDP datagram (first: MF, offset 0; later: offset 8 bytes).
big = udp(C4, S4, 5000, 53, b"x" * 24)
v["UDP4_FRAG_FIRST"] = ETH4 + ipv4(C4, S4, 17, big[:16], ident=7, flags_off=0x2000)
v["UDP4_FRAG_LATER"] = ETH4 + ipv4(C4, S4, 17, big[16:], ident=7, flags_off=0x0002)
# IPv6: TCP SYN-ACK, UDP behind hop-by-hop + destination options, ICMPv6 echo, unreachable, fragments.
v["TCP6_SYNACK"] = ETH6 + ipv6(S6, C6, 6, tcp(S6, C6, 443, 50000, 7000, 1001, 0x012, 65535, bytes.fromhex("0204058c0402010303080000"), v6=True))
u6 = udp(C6, S6, 5000, 53, b"hello6", v6=True)
hbh = bytes([60, 0]) + bytes.fromhex("010400000000")   # next: dst opts, PadN
dopt = bytes([17, 1]) + bytes.fromhex("0106000000000000") + bytes(6)  # next: UDP, 16 bytes, PadN
v["UDP6_EXT"] = ETH6 + ipv6(C6, S6, 0, hbh + dopt + u6)
v["ICMP6_ECHO"] = ETH6 + ipv6(C6, S6, 58, icmp6(C6, S6, 128, 0, struct.pack("!HH", 0x0abc, 1), b"ping6"))
quoted6 = ipv6(C6, S6, 17, u6)
v["ICMP6_UNREACH_UDP"] = ETH6 + ipv6(S6, C6, 58, icmp6(S6, C6, 1, 4, b"\0\0\0\0", quoted6))
big6 = udp(C6, S6, 5000, 53, b"y" * 24, v6=True)
v["UDP6_FRAG_FIRST"] = ETH6 + ipv6(C6, S6, 44, bytes([17, 0]) + struct.pack("!HI", 0x0001, 99) + big6[:16])
v["UDP6_FRAG_LATER"] = ETH6 + ipv6(C6, S6, 44, bytes([17, 0]) + struct.pack("!HI", 0x0010, 99) + big6[16:])

doc = {
    "TCP4_SYN": "TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80 with MSS, SACK-permitted, timestamps and window scale.",
    "TCP4_DATA": "TCP PSH+ACK of the same connection carrying an HTTP request.",
    "UDP4": "UDP 10.0.0.1:5000 -> 10.0.0.2:53, `hello`, padded to the 60-byte Ethernet minimum.",
    "UDP4_NOCSUM": "The same UDP datagram with checksum 0 (none, RFC 768), unpadded.",
    "ICMP4_ECHO": "ICMP echo request 10.0.0.1 -> 10.0.0.2, id 0x1234, seq 1.",
    "ICMP4_UNREACH_UDP": "ICMP port unreachable from 10.0.0.2 quoting the whole `UDP4` datagram.",
    "ICMP4_TTL_TCP": "ICMP time exceeded from router 10.0.0.254 quoting the SYN's IP header and 8 bytes (RFC 792).",
    "ICMP4_UNREACH_ECHO": "ICMP host unreachable from 10.0.0.254 quoting the echo request.",
    "UDP4_FRAG_FIRST": "First fragment (MF, offset 0) of a 32-byte UDP datagram, IP id 7.",
    "UDP4_FRAG_LATER": "Last fragment (offset 8 bytes) of the same datagram.",
    "TCP6_SYNACK": "TCP SYN-ACK [fd00::2]:443 -> [fd00::1]:50000.",
    "UDP6_EXT": "UDP [fd00::1]:5000 -> [fd00::2]:53 behind hop-by-hop and destination options headers.",
    "ICMP6_ECHO": "ICMPv6 echo request fd00::1 -> fd00::2, id 0x0abc, seq 1.",
    "ICMP6_UNREACH_UDP": "ICMPv6 port unreachable from fd00::2 quoting a UDP datagram of fd00::1.",
    "UDP6_FRAG_FIRST": "First fragment (M, offset 0) of a 32-byte UDPv6 datagram, identification 99.",
    "UDP6_FRAG_LATER": "Last fragment (offset 16 bytes) of the same datagram.",
}

print("//! Test frames (Ethernet + IP, L3 at offset 14), written by")
print("//! `testdata/gen_vectors.py` with an independent checksum implementation.")
print()
for k, b in v.items():
    print("/// " + doc[k])
    print("pub const %s: &[u8] = &[" % k)
    for i in range(0, len(b), 16):
        print("    " + " ".join("0x%02x," % x for x in b[i:i + 16]))
    print("];")
