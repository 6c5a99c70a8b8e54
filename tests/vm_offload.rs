//! Offloads through the virtio-net header (issue 14): a "guest" (DPDK's
//! virtio-user front end in this test process, with TSO and checksum
//! offload on) sends large TCP segments and partial checksums into a
//! vhost-user port of `vswitch run`; one rule sends them both to a second
//! vhost-user port (whose guest, also here, took TSO and checksum offload:
//! the 64 KiB segment must arrive whole) and to a `net_pcap` port, which
//! takes no offload (the switch must cut the segments and complete the
//! checksums: checked byte by byte in the capture, with this file's own
//! checksum code).
//!
//! Run with the heavy lock: `flock /work/heavy.lock cargo test --test vm_offload`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::offload as ol;
use dpdk::{Burst, Eal, Mempool, Port, PortConfig};
use pcap_file::pcap::{PcapReader, PcapWriter};

/// IPv4 TSO payload: the largest TCP segment (its IPv4 packet 65 535
/// bytes, the frame 65 549): longer than one mbuf (65 407 bytes of room
/// at most), so the guest sends it in two and the switch's own rings fill
/// a large mbuf and chain the rest.
const V4_PAYLOAD: usize = 65_535 - 20 - 32;
/// IPv6 TSO payload.
const V6_PAYLOAD: usize = 20_000;
/// The guest's MSS (`gso_size`) over IPv4: 1500 - 20 - 32 (timestamps).
const MSS4: u16 = 1448;
/// Over IPv6: 1500 - 40 - 32.
const MSS6: u16 = 1428;

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("vswitch-vmoff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One's-complement sum of `data` (RFC 1071), not complemented.
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    acc
}

/// Whether the frame's IPv4 header and TCP/UDP checksums verify (the
/// receiver's check: everything covered sums to 0xffff).
fn checksums_ok(f: &[u8]) -> bool {
    let v4 = f[12..14] == [0x08, 0x00];
    let (l4, proto, l4_len, pseudo) = if v4 {
        let ihl = usize::from(f[14] & 15) * 4;
        if sum(0, &f[14..14 + ihl]) != 0xffff {
            return false;
        }
        let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
        let mut p = f[26..34].to_vec();
        p.extend_from_slice(&[0, f[23]]);
        p.extend_from_slice(&((total - ihl) as u16).to_be_bytes());
        (14 + ihl, f[23], total - ihl, p)
    } else {
        let plen = usize::from(u16::from_be_bytes([f[18], f[19]]));
        let mut p = f[22..54].to_vec();
        p.extend_from_slice(&(plen as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, f[20]]);
        (54, f[20], plen, p)
    };
    assert!(proto == 6 || proto == 17);
    sum(sum(0, &pseudo), &f[l4..l4 + l4_len]) == 0xffff
}

/// The pseudo-header sum a guest leaves in the checksum field with
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM` (not complemented).
fn partial(f: &[u8], l4: usize, l4_len: usize, v4: bool, proto: u8) -> u16 {
    let mut p = if v4 {
        f[26..34].to_vec()
    } else {
        f[22..54].to_vec()
    };
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(l4_len as u16).to_be_bytes());
    let _ = l4;
    sum(0, &p) as u16
}

/// Ethernet + IPv4 or IPv6 + TCP (32-byte header) or UDP, payload pattern
/// `seed`, the L4 checksum field partial.
fn frame(v4: bool, tcp: bool, payload: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(if v4 { &[0x08, 0x00] } else { &[0x86, 0xdd] });
    let l4_len = if tcp { 32 } else { 8 } + payload;
    let proto = if tcp { 6 } else { 17 };
    if v4 {
        let mut ip = vec![
            0x45, 0, 0, 0, 0x40, 0x00, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        let c = !(sum(0, &ip) as u16);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
    } else {
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
        ip[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&ip);
    }
    let l4 = f.len();
    if tcp {
        let mut t = vec![0u8; 32];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&5201u16.to_be_bytes());
        t[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = 0x18; // PSH|ACK
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        f.extend_from_slice(&t);
    } else {
        let mut u = vec![0u8; 8];
        u[0..2].copy_from_slice(&5353u16.to_be_bytes());
        u[2..4].copy_from_slice(&5354u16.to_be_bytes());
        u[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&u);
    }
    f.extend((0..payload).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    let p = partial(&f, l4, l4_len, v4, proto);
    let at = l4 + if tcp { 16 } else { 6 };
    f[at..at + 2].copy_from_slice(&p.to_be_bytes());
    f
}

struct Switch {
    child: Child,
    ctl: PathBuf,
}

impl Switch {
    fn ports(&self) -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .args(["ports", "show", "--json", "--socket"])
            .arg(&self.ctl)
            .output()
            .unwrap();
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
    }

    fn port(&self, no: u64) -> serde_json::Value {
        self.ports()["ports"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["port"] == no).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first offset where `a` and `b` differ (or the shorter length).
fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter().zip(b).position(|(x, y)| x != y)
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_switch(d: &Path) -> Switch {
    PcapWriter::new(File::create(d.join("empty.pcap")).unwrap()).unwrap();
    let ctl = d.join("ctl.sock");
    let eal = format!(
        "-l 0-1 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning --file-prefix vsw-vmoff-{}",
        std::process::id()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["run", "--eal", &eal, "--control"])
        .arg(&ctl)
        .arg("--port")
        .arg(format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            d.join("empty.pcap").display(),
            d.join("out.pcap").display()
        ))
        .arg("--port")
        .arg(format!("net_vhost0,iface={},tso=1", d.join("s0").display()))
        .arg("--port")
        .arg(format!("net_vhost1,iface={},tso=1", d.join("s1").display()))
        .args(["--flow", "priority=10,in_port=1,actions=output:0,output:2"])
        .args(["--stats-interval", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let sw = Switch { child, ctl };
    wait_until("the switch's control socket", 30, || {
        sw.ports()["ports"].as_array().is_some_and(|a| a.len() == 3)
    });
    sw
}

/// A guest port: virtio-user on the switch's socket `path`.
fn guest(name: &str, path: &Path, pool: &Arc<Mempool>) -> Port {
    let mut p = Port::probe(&format!("{name},path={},queues=1", path.display())).unwrap();
    p.configure(
        PortConfig {
            rx_desc: 256,
            tx_desc: 256,
            // GUEST_CSUM + GUEST_TSO4/6 (receive) and CSUM + HOST_TSO4/6
            // (send) in the virtio features the front end asks for.
            rx_offloads: ol::RX_OFFLOAD_TCP_CKSUM
                | ol::RX_OFFLOAD_UDP_CKSUM
                | ol::RX_OFFLOAD_TCP_LRO,
            tx_offloads: ol::TX_OFFLOAD_TCP_CKSUM
                | ol::TX_OFFLOAD_UDP_CKSUM
                | ol::TX_OFFLOAD_TCP_TSO
                | ol::TX_OFFLOAD_MULTI_SEGS,
            ..PortConfig::default()
        },
        pool,
    )
    .unwrap();
    p.start().unwrap();
    p
}

/// `f` in an mbuf of `pool`, chained to a second one for what does not
/// fit the first.
fn guest_mbuf(pool: &Mempool, f: &[u8]) -> dpdk::Mbuf {
    let mut m = pool.alloc().unwrap();
    let first = f.len().min(m.tailroom());
    m.append(first).unwrap().copy_from_slice(&f[..first]);
    if first < f.len() {
        let mut tail = pool.alloc().unwrap();
        tail.append(f.len() - first)
            .unwrap()
            .copy_from_slice(&f[first..]);
        let tail = tail.into_raw().as_ptr();
        // SAFETY: both mbufs are ours and single-segment; the head takes
        // the tail (and frees it with itself): `rte_pktmbuf_chain`.
        unsafe {
            let h = &mut *m.as_ptr();
            h.next = tail;
            h.nb_segs = 2;
            h.pkt_len += u32::from((*tail).data_len);
        }
    }
    assert_eq!(m.pkt_len(), f.len());
    m
}

/// (frame, IPv4, TCP, TSO) of what the guest sends.
fn sent_frames() -> Vec<(Vec<u8>, bool, bool, bool)> {
    vec![
        (frame(true, true, V4_PAYLOAD, 1), true, true, true),
        (frame(false, true, V6_PAYLOAD, 2), false, true, true),
        (frame(true, true, 700, 3), true, true, false),
        (frame(false, false, 300, 4), false, false, false),
    ]
}

#[test]
fn guest_tso_and_partial_checksums_cross_the_switch() {
    let d = tmpdir();
    let sw = start_switch(&d);
    let eal_args = format!(
        "-l 0 --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level=*:warning \
         --file-prefix vmoff-guest-{}",
        std::process::id()
    );
    let _eal = Eal::init(&eal_args.split_whitespace().collect::<Vec<_>>()).unwrap();
    // Buffers that hold a whole 64 KiB segment.
    let pool = Arc::new(Mempool::pktmbuf("vmoff", 1024, 0, 65535, -1).unwrap());
    let mut tx_guest = guest("net_virtio_user0", &d.join("s0"), &pool);
    let mut rx_guest = guest("net_virtio_user1", &d.join("s1"), &pool);
    wait_until("both vhost ports up", 20, || {
        sw.port(1)["link_up"] == true && sw.port(2)["link_up"] == true
    });
    let mut txq = tx_guest.tx_queue(0).unwrap();
    let mut rxq = rx_guest.rx_queue(0).unwrap();

    let frames = sent_frames();
    let mut burst = Burst::new();
    for (f, v4, tcp, tso) in &frames {
        let mut m = guest_mbuf(&pool, f);
        let l3 = if *v4 { 20 } else { 40 };
        let l4 = if *tcp { 32 } else { 8 };
        let ip = if *v4 { ol::TX_IPV4 } else { ol::TX_IPV6 };
        let csum = if *tcp {
            ol::TX_TCP_CKSUM
        } else {
            ol::TX_UDP_CKSUM
        };
        let seg = if *tso { ol::TX_TCP_SEG } else { 0 };
        m.set_ol_flags(ip | csum | seg);
        let mss = if *v4 { MSS4 } else { MSS6 };
        m.set_tx_offload(14, l3, l4, if *tso { mss } else { 0 });
        burst.push(m).ok().unwrap();
    }
    let t = Instant::now();
    while !burst.is_empty() {
        txq.tx_burst(&mut burst);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "guest could not send"
        );
    }

    // The TSO guest receives every frame whole: the large segments as one
    // frame each, flagged as large with the guest's MSS.
    let mut got: Vec<(Vec<u8>, u64, u16)> = Vec::new();
    let t = Instant::now();
    while got.len() < frames.len() && t.elapsed() < Duration::from_secs(10) {
        let mut b = Burst::new();
        rxq.rx_burst(&mut b);
        while let Some(m) = b.pop() {
            let mut bytes = vec![0u8; m.pkt_len()];
            assert!(m.read_into(0, &mut bytes));
            got.push((bytes, m.ol_flags(), m.tso_segsz()));
        }
    }
    got.sort_by_key(|g| std::cmp::Reverse(g.0.len()));
    assert_eq!(got.len(), frames.len(), "frames reaching the TSO guest");
    for ((g, flags, segsz), (f, v4, tcp, tso)) in got.iter().zip(&frames) {
        assert_eq!(
            g.len(),
            f.len(),
            "a frame was cut on its way to the TSO guest"
        );
        let hl = 14 + if *v4 { 20 } else { 40 } + if *tcp { 32 } else { 8 };
        // Payload and addresses unchanged (checksum fields may be rewritten).
        assert_eq!(
            first_diff(&g[hl..], &f[hl..]),
            None,
            "payload of the {}-byte frame changed",
            f.len()
        );
        assert_eq!(g[..12], f[..12], "MAC addresses changed");
        if *tso {
            assert!(
                flags & ol::RX_LRO != 0,
                "large segment not flagged: {flags:#x}"
            );
            assert_eq!(*segsz, if *v4 { MSS4 } else { MSS6 });
        }
    }

    // Counters: two large frames in on port 1, cut for port 0 into
    // ceil(payload / MSS) segments each, two checksums completed for it.
    let (n4, n6) = (
        V4_PAYLOAD.div_ceil(MSS4.into()),
        V6_PAYLOAD.div_ceil(MSS6.into()),
    );
    let want_segs = n4 + n6;
    wait_until("offload counters", 10, || {
        sw.port(0)["offload"]["tx_segments"].as_u64() == Some(want_segs as u64)
    });
    let p1 = sw.port(1)["offload"].clone();
    assert_eq!(p1["rx_large_packets"], 2, "{p1}");
    let big = frames[0].0.len() + frames[1].0.len();
    assert_eq!(p1["rx_large_bytes"].as_u64(), Some(big as u64), "{p1}");
    let p0 = sw.port(0)["offload"].clone();
    assert_eq!(p0["tx_segmented"], 2, "{p0}");
    assert_eq!(p0["tx_csum_sw"], 2, "{p0}");
    assert_eq!(p0["tx_offload_drops"], 0, "{p0}");
    // The TSO guest's port needed no software work.
    let p2 = sw.port(2)["offload"].clone();
    assert_eq!(p2["tx_segments"], 0, "{p2}");
    assert_eq!(p2["tx_csum_sw"], 0, "{p2}");
    let text = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["ports", "show", "--socket"])
        .arg(&sw.ctl)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("tx segmented 2 -> {want_segs} segments")),
        "{text}"
    );
    sw.stop();

    // The pcap port (no offloads): MTU-sized segments with valid checksums
    // whose payloads, in order, are the large segments' payloads; the
    // partial checksums completed, every other byte as sent.
    let mut r = PcapReader::new(File::open(d.join("out.pcap")).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    assert_eq!(out.len(), want_segs + 2, "frames on the pcap port");
    for (i, o) in out.iter().enumerate() {
        assert!(o.len() <= 1514, "frame {i} is {} bytes", o.len());
        assert!(checksums_ok(o), "frame {i}: bad checksum");
    }
    let (v4, rest) = out.split_at(n4);
    let (v6, small) = rest.split_at(n6);
    for (segs, (f, is4, _, _)) in [(v4, &frames[0]), (v6, &frames[1])] {
        let hl = if *is4 { 14 + 20 + 32 } else { 14 + 40 + 32 };
        let mut payload = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            let seq = u32::from_be_bytes(s[hl - 28..hl - 24].try_into().unwrap());
            assert_eq!(seq, 0x1000_0000 + payload.len() as u32, "segment {k} seq");
            let psh = s[hl - 19] & 0x08 != 0;
            assert_eq!(psh, k + 1 == segs.len(), "PSH only on the last segment");
            assert_eq!(s[..12], f[..12], "MAC addresses");
            payload.extend_from_slice(&s[hl..]);
        }
        assert_eq!(
            first_diff(&payload, &f[hl..]),
            None,
            "segments' payloads joined"
        );
    }
    for (o, (f, is4, tcp, _)) in small.iter().zip(&frames[2..]) {
        let at = if *is4 { 14 + 20 } else { 14 + 40 } + if *tcp { 16 } else { 6 };
        assert_eq!(o.len(), f.len());
        assert_eq!(o[..at], f[..at]);
        assert_eq!(o[at + 2..], f[at + 2..]);
    }
    drop((txq, rxq, tx_guest, rx_guest));
    let _ = std::fs::remove_dir_all(&d);
}
