//! smoltcp's `phy::Device` on a DPDK port's queue 0.

use dpdk::{Burst, Mbuf, Mempool, Port, PortConfig, RxQueue, TxQueue, BURST_SIZE};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of the frames a [`PortDevice`] sent and received, readable from
/// other threads: the switch reports them as its internal port's byte
/// counts (the ring PMD counts packets only).
#[derive(Debug, Default)]
pub struct FrameBytes {
    /// Bytes of frames handed to the port.
    pub sent: AtomicU64,
    /// Bytes of frames received from the port.
    pub received: AtomicU64,
}

impl FrameBytes {
    /// Adds `n` (one writer: the polling thread).
    fn add(c: &AtomicU64, n: usize) {
        c.store(c.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
    }
}

/// Default Ethernet frame size limit (1500-byte MTU + 14-byte header).
const FRAME: usize = 1514;

struct RxPart {
    q: RxQueue,
    burst: Burst,
    next: usize,
    bytes: Arc<FrameBytes>,
}

struct TxPart {
    q: TxQueue,
    burst: Burst,
    pool: Arc<Mempool>,
    /// Frames smoltcp built while the pool was empty are built here and dropped.
    scratch: Vec<u8>,
    /// Frames dropped (no mbuf, or the port's queue full).
    drops: u64,
    /// Frames built (sent or dropped).
    built: u64,
    /// Largest frame (MTU + Ethernet header).
    frame: usize,
    bytes: Arc<FrameBytes>,
}

/// A started DPDK port as a smoltcp device.
pub struct PortDevice {
    _port: Port,
    rx: RxPart,
    tx: TxPart,
    mac: [u8; 6],
}

impl PortDevice {
    /// Probes `devargs` (e.g. `net_af_packet0,iface=veth0`), configures one
    /// rx and one tx queue with a pool of its own and starts it. The EAL
    /// must be initialised.
    pub fn open(devargs: &str) -> Result<PortDevice, String> {
        let port = Port::probe(devargs).map_err(|e| format!("{devargs}: {e}"))?;
        Self::from_port(port)
    }

    /// Configures and starts a port created elsewhere (e.g. one end of an
    /// internal ring link to the switch) with a pool of its own.
    pub fn from_port(port: Port) -> Result<PortDevice, String> {
        let name = format!("utcp{}", port.id());
        let pool = Arc::new(
            Mempool::pktmbuf(&name, 4095, 64, 2048 + 128, -1)
                .map_err(|e| format!("{}: mbuf pool: {e}", port.name()))?,
        );
        Self::from_port_with_pool(port, pool)
    }

    /// Like [`PortDevice::from_port`], building frames in mbufs of `pool`.
    /// A port whose frames reach other ports in the same process (the
    /// switch's internal port) must use a pool that outlives all of them:
    /// the switch's own.
    pub fn from_port_with_pool(mut port: Port, pool: Arc<Mempool>) -> Result<PortDevice, String> {
        let devargs = port.name().to_owned();
        port.configure(
            PortConfig {
                rx_desc: 512,
                tx_desc: 512,
                ..PortConfig::default()
            },
            &pool,
        )
        .map_err(|e| format!("{devargs}: {e}"))?;
        port.start().map_err(|e| format!("{devargs}: {e}"))?;
        let mac = port.mac().map_err(|e| format!("{devargs}: {e}"))?;
        let rxq = port.rx_queue(0).map_err(|e| format!("{devargs}: {e}"))?;
        let txq = port.tx_queue(0).map_err(|e| format!("{devargs}: {e}"))?;
        let bytes = Arc::new(FrameBytes::default());
        Ok(PortDevice {
            _port: port,
            rx: RxPart {
                q: rxq,
                burst: Burst::new(),
                next: 0,
                bytes: Arc::clone(&bytes),
            },
            tx: TxPart {
                q: txq,
                burst: Burst::new(),
                pool,
                scratch: vec![0; FRAME],
                drops: 0,
                built: 0,
                frame: FRAME,
                bytes,
            },
            mac,
        })
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends the frames smoltcp queued; what the port does not take is
    /// dropped (TCP retransmits).
    pub fn flush(&mut self) {
        if self.tx.burst.is_empty() {
            return;
        }
        self.tx.q.tx_burst(&mut self.tx.burst);
        self.tx.drops += self.tx.burst.len() as u64;
        self.tx.burst.clear();
    }

    /// Whether received frames wait to be processed (pulls one burst from
    /// the port if none is buffered; reads no clock).
    pub fn rx_pending(&mut self) -> bool {
        let rx = &mut self.rx;
        if rx.next < rx.burst.len() {
            return true;
        }
        rx.burst.clear();
        rx.next = 0;
        rx.q.rx_burst(&mut rx.burst) > 0
    }

    /// Frames dropped on transmit.
    pub fn tx_drops(&self) -> u64 {
        self.tx.drops
    }

    /// Frames smoltcp built so far (sent or dropped).
    pub fn tx_built(&self) -> u64 {
        self.tx.built
    }

    /// The device's byte counters (shared, updated as frames pass).
    pub fn frame_bytes(&self) -> Arc<FrameBytes> {
        Arc::clone(&self.tx.bytes)
    }

    /// Sets the IP MTU (default 1500): the stack then builds frames of up
    /// to `mtu + 14` bytes, which the mbufs of its pool must hold (else they
    /// are dropped and counted). Call before the stack is made on it.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.tx.frame = mtu + 14;
        self.tx.scratch.resize(self.tx.frame, 0);
    }

    /// Counts into `bytes` from now on (counters made before the device,
    /// e.g. handed to the switch with its end of an internal link).
    pub fn count_into(&mut self, bytes: Arc<FrameBytes>) {
        self.rx.bytes = Arc::clone(&bytes);
        self.tx.bytes = bytes;
    }
}

/// A received frame, read in place.
pub struct Rx<'a>(&'a Mbuf);

/// Room for one frame to send.
pub struct Tx<'a>(&'a mut TxPart);

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0.data())
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let t = self.0;
        t.built += 1;
        if t.burst.room() == 0 {
            t.q.tx_burst(&mut t.burst);
        }
        let mbuf = if t.burst.room() > 0 {
            t.pool.alloc()
        } else {
            None
        };
        if let Some(mut m) = mbuf {
            if let Some(buf) = m.append(len) {
                let r = f(buf);
                let _ = t.burst.push(m);
                FrameBytes::add(&t.bytes.sent, len);
                return r;
            }
        }
        t.drops += 1;
        t.scratch.resize(len.max(t.scratch.len()), 0);
        f(&mut t.scratch[..len])
    }
}

impl phy::Device for PortDevice {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _ts: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let rx = &mut self.rx;
        if rx.next >= rx.burst.len() {
            rx.burst.clear();
            rx.next = 0;
            if rx.q.rx_burst(&mut rx.burst) == 0 {
                return None;
            }
        }
        let m = &rx.burst.as_slice()[rx.next];
        rx.next += 1;
        FrameBytes::add(&rx.bytes.received, m.data().len());
        Some((Rx(m), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _ts: Instant) -> Option<Self::TxToken<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.tx.frame;
        caps.max_burst_size = Some(BURST_SIZE);
        caps
    }
}
