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

    // A closure on the worker lcore, with its result.
    let job = dpdk::lcore::launch(1, || dpdk::lcore::current() * 10).unwrap();
    assert_eq!(job.join(), Some(10));

    drop(port);
    drop(ring);
    assert_eq!(pool.available(), before, "no mbuf leaked");
    drop(pool);
    drop(eal);
}
