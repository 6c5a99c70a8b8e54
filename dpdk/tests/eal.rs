//! The safe layer against a real EAL. DPDK allows one EAL per process, so this
//! file holds a single test that walks through every wrapper in order.

use std::sync::Arc;

use dpdk::{Burst, Eal, Error, MbufRing, Mempool, Port, PortConfig};

fn eal_args() -> Vec<String> {
    let prefix = format!("dpdk-test-{}", std::process::id());
    [
        "-l",
        "0-1",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "--log-level=*:warning",
        "--file-prefix",
        &prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn frame(i: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    for (k, b) in f[14..].iter_mut().enumerate() {
        *b = i.wrapping_mul(31).wrapping_add(k as u8);
    }
    f
}

#[test]
fn safe_layer_end_to_end() {
    let eal = Eal::init(&eal_args()).expect("EAL init");
    // A second init is an error, not a crash.
    assert_eq!(
        Eal::init(&eal_args()).err(),
        Some(Error::EalAlreadyInitialised)
    );
    assert!(eal.tsc_hz() > 0);
    assert_eq!(eal.worker_lcores(), vec![1]);

    let pool =
        Arc::new(Mempool::pktmbuf("test_pool", 4095, 64, Mempool::DEFAULT_DATA_ROOM, -1).unwrap());
    let before = pool.available();

    // Mbuf editing: append, prepend, adj, trim.
    {
        let mut m = pool.alloc().expect("alloc");
        assert_eq!(pool.available(), before - 1);
        m.append(4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
        assert!(m.prepend(2));
        m.data_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(m.data(), &[9, 9, 1, 2, 3, 4]);
        assert!(m.adj(1));
        assert!(m.trim(1));
        assert_eq!(m.data(), &[9, 1, 2, 3]);
        assert!(!m.adj(100), "adj past the end is refused");
        assert!(m.is_exclusive());
        let c = m.clone_ref();
        assert!(!m.is_exclusive());
        drop(c);
        assert!(m.is_exclusive());
    }
    assert_eq!(pool.available(), before, "dropping mbufs returns them");

    // Ring: bursts in and out, in order.
    let ring = MbufRing::new("test_ring", 64).unwrap();
    let mut b = Burst::new();
    for i in 0..10u8 {
        let mut m = pool.alloc().unwrap();
        m.append(1).unwrap()[0] = i;
        b.push(m).ok().unwrap();
    }
    assert_eq!(ring.enqueue_burst(&mut b), 10);
    assert!(b.is_empty());
    assert_eq!(ring.len(), 10);
    assert_eq!(ring.dequeue_burst(&mut b), 10);
    let got: Vec<u8> = b.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    b.clear();
    assert_eq!(pool.available(), before);

    // Ports: a bad driver and a duplicate are clear errors.
    let err = Port::probe("net_nosuchpmd0")
        .err()
        .expect("unknown PMD fails");
    assert!(err.to_string().contains("PMD is installed"), "{err}");
    // net_ring with no arguments loops its tx ring back to its rx ring.
    let mut port = Port::probe("net_ring0").expect("net_ring0");
    let dup = Port::probe("net_ring0").err().expect("duplicate fails");
    assert!(dup.to_string().contains("given twice"), "{dup}");
    port.configure(PortConfig::default(), &pool).unwrap();
    port.start().unwrap();
    assert!(port.link().unwrap().up);
    let mut rxq = port.rx_queue(0).unwrap();
    assert!(port.rx_queue(0).is_err(), "a queue is taken once");
    let mut txq = port.tx_queue(0).unwrap();

    let frames: Vec<Vec<u8>> = (0..20).map(|i| frame(i, 60 + i as usize)).collect();
    let mut out = Burst::new();
    for f in &frames {
        let mut m = pool.alloc().unwrap();
        m.append(f.len()).unwrap().copy_from_slice(f);
        out.push(m).ok().unwrap();
    }
    assert_eq!(txq.tx_burst(&mut out), 20);
    let mut inb = Burst::new();
    assert_eq!(rxq.rx_burst(&mut inb), 20);
    for (m, f) in inb.as_slice().iter().zip(&frames) {
        assert_eq!(m.data(), &f[..], "looped frame differs");
    }
    inb.clear();
    let st = port.stats().unwrap();
    assert_eq!((st.opackets, st.ipackets), (20, 20));
    assert!(!port.xstats().unwrap().is_empty());

    // Two ring ports over crossed rings: an in-process link (the switch's
    // internal port). What one sends, the other receives, both ways.
    assert!(Port::from_rings("bad_name", &[], &[]).is_err());
    let (ab, ba) = (
        Arc::new(MbufRing::new("test_ab", 256).unwrap()),
        Arc::new(MbufRing::new("test_ba", 256).unwrap()),
    );
    let mut a = Port::from_rings(
        "net_ring_ta",
        std::slice::from_ref(&ba),
        std::slice::from_ref(&ab),
    )
    .expect("ring port a");
    let mut b = Port::from_rings("net_ring_tb", &[ab], &[ba]).expect("ring port b");
    for p in [&mut a, &mut b] {
        p.configure(PortConfig::default(), &pool).unwrap();
        p.start().unwrap();
    }
    let (mut atx, mut arx) = (a.tx_queue(0).unwrap(), a.rx_queue(0).unwrap());
    let (mut btx, mut brx) = (b.tx_queue(0).unwrap(), b.rx_queue(0).unwrap());
    for (tx, rx) in [(&mut atx, &mut brx), (&mut btx, &mut arx)] {
        for f in &frames[..5] {
            let mut m = pool.alloc().unwrap();
            m.append(f.len()).unwrap().copy_from_slice(f);
            out.push(m).ok().unwrap();
        }
        assert_eq!(tx.tx_burst(&mut out), 5);
        assert_eq!(rx.rx_burst(&mut inb), 5);
        for (m, f) in inb.as_slice().iter().zip(&frames) {
            assert_eq!(m.data(), &f[..], "frame over the crossed rings differs");
        }
        inb.clear();
    }
    assert_eq!(a.stats().unwrap().opackets, 5);
    assert_eq!(a.stats().unwrap().ipackets, 5);
    drop((a, b));

    // One tx queue shared by two threads (more pollers than the device
    // has tx queues): every frame of both arrives, once, and the queue's
    // own counter has them all.
    let shared_ring = Arc::new(MbufRing::new("test_ring_s", 2048).unwrap());
    let mut sp = Port::from_rings(
        "net_ring_ts",
        &[Arc::clone(&shared_ring)],
        &[Arc::clone(&shared_ring)],
    )
    .unwrap();
    sp.configure(PortConfig::default(), &pool).unwrap();
    sp.start().unwrap();
    let handles = sp.tx_queue_shared(0, 2).unwrap();
    assert!(handles.iter().all(|h| h.is_shared()));
    assert!(sp.tx_queue(0).is_err(), "a shared queue is taken too");
    let senders: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(t, mut txq)| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let mut b = Burst::new();
                for i in 0..500u32 {
                    let mut m = pool.alloc().unwrap();
                    let d = m.append(64).unwrap();
                    d.fill(0);
                    d[0] = t as u8;
                    d[1..5].copy_from_slice(&i.to_be_bytes());
                    b.push(m).ok().unwrap();
                    if b.len() == 10 {
                        while !b.is_empty() {
                            txq.tx_burst(&mut b);
                        }
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let mut srx = sp.rx_queue(0).unwrap();
    let mut seen = vec![[false; 500]; 2];
    let mut n = 0;
    loop {
        let got = srx.rx_burst(&mut inb);
        if got == 0 {
            break;
        }
        for m in inb.as_slice() {
            let d = m.data();
            let i = u32::from_be_bytes([d[1], d[2], d[3], d[4]]) as usize;
            assert!(
                !seen[d[0] as usize][i],
                "frame {i} of thread {} twice",
                d[0]
            );
            seen[d[0] as usize][i] = true;
            n += 1;
        }
        inb.clear();
    }
    assert_eq!(n, 1000, "every frame of both threads arrived");
    assert_eq!(sp.stats().unwrap().q_opackets[0], 1000);
    drop(sp);
    drop(shared_ring);

    // Receive wake-ups: a ring port has none; an af_packet port's fd is
    // readable exactly while its ring holds a frame the PMD has not taken.
    let loopback = Arc::new(MbufRing::new("test_ring_w", 64).unwrap());
    let mut ring_port =
        Port::from_rings("net_ring_tw", &[Arc::clone(&loopback)], &[loopback]).unwrap();
    ring_port.configure(PortConfig::default(), &pool).unwrap();
    ring_port.start().unwrap();
    assert_eq!(ring_port.rx_wake_fd(0), None, "a ring port has no wake fd");
    drop(ring_port);
    wake_fd_of_an_af_packet_port(&pool);

    // A closure on the worker lcore, with its result.
    let job = dpdk::lcore::launch(1, || dpdk::lcore::current() * 10).unwrap();
    assert_eq!(job.join(), Some(10));

    drop(port);
    drop(ring);
    assert_eq!(pool.available(), before, "no mbuf leaked");
    drop(pool);
    drop(eal);
}

fn sh(cmd: &str) {
    let st = std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .unwrap();
    assert!(st.success(), "{cmd}");
}

/// Whether `fd` is readable within `ms` milliseconds.
fn readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, exclusively borrowed.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

/// An af_packet port on one end of a fresh veth pair (IPv6 off, so the
/// kernel sends nothing on it by itself); frames sent into the other end.
fn wake_fd_of_an_af_packet_port(pool: &Arc<Mempool>) {
    let (a, b) = (
        format!("dwa{}", std::process::id() % 100_000),
        format!("dwb{}", std::process::id() % 100_000),
    );
    sh(&format!(
        "ip link add {a} type veth peer name {b} && \
         sysctl -qw net.ipv6.conf.{a}.disable_ipv6=1 net.ipv6.conf.{b}.disable_ipv6=1 && \
         ip link set {a} up && ip link set {b} up"
    ));
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.0])
                .status();
        }
    }
    let _del = Del(a.clone());
    let mut port = Port::probe(&format!("net_af_packet9,iface={a}")).expect("af_packet port");
    assert_eq!(port.rx_wake_fd(0), None, "no socket before the port starts");
    port.configure(PortConfig::default(), pool).unwrap();
    port.start().unwrap();
    let fd = port.rx_wake_fd(0).expect("an af_packet port has a wake fd");
    let mut rx = port.rx_queue(0).unwrap();
    let mut got = Burst::new();
    while rx.rx_burst(&mut got) > 0 {
        got.clear();
    }
    assert!(!readable(fd, 50), "readable with nothing received");

    // SAFETY: socket(2); the fd is closed below.
    let tx = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
    };
    assert!(tx >= 0, "packet socket (run as root)");
    let ifindex: i32 = std::fs::read_to_string(format!("/sys/class/net/{b}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let to = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: 0,
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [2, 0, 0, 0, 0, 2, 0, 0],
    };
    let f = frame(7, 100);
    // SAFETY: `f` and `to` outlive the call; sizes are theirs.
    let sent = unsafe {
        libc::sendto(
            tx,
            f.as_ptr().cast(),
            f.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    // SAFETY: closes the socket opened above, once.
    unsafe { libc::close(tx) };
    assert_eq!(sent, f.len() as isize);
    assert!(readable(fd, 2000), "a received frame makes the fd readable");
    assert_eq!(rx.rx_burst(&mut got), 1);
    assert_eq!(got.as_slice()[0].data(), &f[..]);
    got.clear();
    assert!(
        !readable(fd, 0),
        "once the PMD took the frame, the fd is no longer readable"
    );
    drop(port);
}
