//! The device alone, in one thread, no scheduler in the way: cycles per
//! request of `BlkDevice::poll` (ring + parse + null backend + status + used
//! ring) for split and packed rings, and cycles per chain of the split-ring
//! walk itself against rust-vmm's `virtio-queue` (the peer) on identical
//! chains in the same guest memory.
//!
//! Each request is a Linux-style 4 KiB read: header, data, status (3
//! descriptors). Only the device side is timed (rdtsc around it); the
//! simulated driver's work is outside the timed region.
//!
//! Run: `cargo run --release -p perf --bin blk_device -- [--iters N]`
//!
//! `--qos`: only the cost of QoS at QD 128 (off against limits far above
//! the rate), median cycles per request.
//!
//! `--latency-cost` measures only what the latency histograms of
//! `--metrics` cost the device (`BlkDevice::track_latency`): the split-ring
//! case off and on, alternating, at batch 1 (a clock read per request) and
//! 64 (one poll's worth, as at QD 128).

use hdrhistogram::Histogram;
use vfio::backend::null::NullBackend;
use vfio::backend::Backend;
use vfio::blk::mock::BlkDriver;
use vfio::blk::{BlkConfig, BlkDevice, QosLimits, VIRTIO_BLK_T_IN};
use vfio::guest_memory::GuestMemory;
use vfio::virtq::mock::{Buf, MockPackedQueue, MockQueue};
use vfio::virtq::{
    Chain, SplitQueue, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestAddress;

const MEM: usize = 32 << 20;
const DATA: u64 = 16 << 20;
const QSIZE: u16 = 256;

fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn tsc_hz() -> f64 {
    let (t0, c0) = (std::time::Instant::now(), tsc());
    std::thread::sleep(std::time::Duration::from_millis(200));
    (tsc() - c0) as f64 / t0.elapsed().as_secs_f64()
}

struct Row {
    name: String,
    batch: usize,
    cycles_per: f64,
    hist: Histogram<u64>,
}

/// Cycles of the timed region, per request, after the first tenth of the
/// iterations (warm-up).
struct Timer {
    hist: Histogram<u64>,
    cycles: u64,
    n: u64,
    warmup: usize,
}

impl Timer {
    fn new(iters: usize) -> Timer {
        Timer {
            hist: Histogram::<u64>::new(3).unwrap(),
            cycles: 0,
            n: 0,
            warmup: iters / 10,
        }
    }

    /// Iteration `it` took `dt` cycles for `batch` requests.
    fn record(&mut self, it: usize, dt: u64, batch: usize) {
        if it >= self.warmup {
            self.cycles += dt;
            self.n += batch as u64;
            let _ = self.hist.record(dt / batch as u64);
        }
    }

    fn row(self, name: &str, batch: usize) -> Row {
        Row {
            name: name.into(),
            batch,
            cycles_per: self.cycles as f64 / self.n as f64,
            hist: self.hist,
        }
    }
}

/// A device on `backend` (indirect descriptors, event index) with one split
/// ring driven by a mock driver; `setup` runs before the ring starts.
fn split_device(
    mem: &GuestMemory,
    backend: Box<dyn Backend>,
    setup: impl FnOnce(&mut BlkDevice),
) -> (BlkDevice, BlkDriver) {
    let cfg = BlkConfig::new(&backend.info(), 512, 1, "bench").unwrap();
    let mut dev = BlkDevice::new("bench", backend, cfg);
    dev.set_features(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX);
    dev.set_memory(mem.clone());
    setup(&mut dev);
    let mut drv = BlkDriver::new(mem, 0x1000, QSIZE, 0x1000 + MockQueue::footprint(QSIZE));
    drv.q.set_event_idx(true);
    dev.start_queue(0, drv.q.config(), 0).unwrap();
    (dev, drv)
}

/// `leased`: the backend is lent to the device (`vfio::backend::lease`, how
/// `vswitch`'s bdevs serve their vhost controllers): one more indirect call
/// per backend call.
fn device_split(batch: usize, iters: usize, leased: bool) -> Row {
    device_split_with(batch, iters, leased, false)
}

/// `latency`: the device measures request latency (`--metrics`).
fn device_split_with(batch: usize, iters: usize, leased: bool, latency: bool) -> Row {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let backend: Box<dyn Backend> = Box::new(NullBackend::new(1 << 30, 4096));
    let home: vfio::backend::lease::Home =
        std::sync::Arc::new(std::sync::Mutex::new(Some(backend)));
    let backend: Box<dyn Backend> = if leased {
        Box::new(vfio::backend::lease::Lease::take(&home).unwrap())
    } else {
        vfio::backend::lease::lock(&home).take().unwrap()
    };
    let (mut dev, mut drv) = split_device(&mem, backend, |_| {});
    if latency {
        dev.track_latency();
    }
    let mut heads = Vec::new();
    for i in 0..batch {
        let r = drv.request(
            VIRTIO_BLK_T_IN,
            i as u64 * 8,
            &[Buf::w(DATA + i as u64 * 4096, 4096)],
            false,
        );
        heads.push(r.head);
    }
    let mut timer = Timer::new(iters);
    for it in 0..iters {
        let t = tsc();
        let moved = dev.poll();
        let dt = tsc() - t;
        let mut done = 0;
        while let Some((id, _)) = drv.q.pop_used() {
            drv.q.push_avail(id);
            done += 1;
        }
        drv.q.publish();
        drv.q.suppress_interrupts();
        assert_eq!(done, batch, "every request completes in one poll");
        assert!(moved >= batch);
        timer.record(it, dt, batch);
    }
    if latency {
        let counted: u64 = dev.latency().expect("tracked").ops[0].count();
        assert_eq!(counted, (iters * batch) as u64, "every read measured");
    }
    let name = if latency {
        "device split +lat"
    } else if leased {
        "device split leased"
    } else {
        "device split"
    };
    timer.row(name, batch)
}

fn device_packed(batch: usize, iters: usize) -> Row {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let backend = Box::new(NullBackend::new(1 << 30, 4096));
    let cfg = BlkConfig::new(&backend.info(), 512, 1, "bench").unwrap();
    let mut dev = BlkDevice::new("bench", backend, cfg);
    dev.set_features(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_F_RING_PACKED);
    dev.set_memory(mem.clone());
    let mut q = MockPackedQueue::new(&mem, 0x1000, QSIZE);
    q.set_driver_event(0, 1);
    dev.start_queue(0, q.config(), MockPackedQueue::initial_base())
        .unwrap();
    let hdr = 0x100000u64;
    for i in 0..batch as u64 {
        let mut h = [0u8; 16];
        h[8..16].copy_from_slice(&(i * 8).to_le_bytes());
        mem.write(hdr + i * 32, &h).unwrap();
    }
    let bufs = |i: u64| {
        [
            Buf::r(hdr + i * 32, 16),
            Buf::w(DATA + i * 4096, 4096),
            Buf::w(hdr + i * 32 + 16, 1),
        ]
    };
    for i in 0..batch as u64 {
        q.add_chain(&bufs(i), i as u16);
    }
    let mut timer = Timer::new(iters);
    for it in 0..iters {
        let t = tsc();
        dev.poll();
        let dt = tsc() - t;
        let mut done = 0;
        while let Some((id, _)) = q.pop_used() {
            q.add_chain(&bufs(id as u64), id);
            done += 1;
        }
        assert_eq!(done, batch);
        timer.record(it, dt, batch);
    }
    timer.row("device packed", batch)
}

/// A split ring holding `batch` 4 KiB read chains (header, data, status),
/// and their heads.
fn read_chains(mem: &GuestMemory, batch: usize) -> (MockQueue, Vec<u16>) {
    let mut mq = MockQueue::new(mem, 0x1000, QSIZE);
    let heads = (0..batch as u64)
        .map(|i| {
            mq.add_chain(&[
                Buf::r(0x100000 + i * 32, 16),
                Buf::w(DATA + i * 4096, 4096),
                Buf::w(0x100010 + i * 32, 1),
            ])
        })
        .collect();
    (mq, heads)
}

/// The split-ring walk alone: take `batch` chains, translate every buffer to
/// host memory, return them to the used ring, publish.
fn walk_ours(batch: usize, iters: usize) -> Row {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let (mut mq, heads) = read_chains(&mem, batch);
    let mut q = SplitQueue::new(mem.clone(), mq.config(), VIRTIO_F_VERSION_1, 0, 0).unwrap();
    let mut chain = Chain::new();
    let mut timer = Timer::new(iters);
    let mut bytes = 0u64;
    for it in 0..iters {
        for &h in &heads {
            mq.push_avail(h);
        }
        mq.publish();
        let t = tsc();
        let pending = q.avail_pending().unwrap();
        for _ in 0..pending {
            let head = q.pop_head();
            q.walk(head, &mut chain).unwrap();
            bytes += chain.iovs.iter().map(|v| v.len() as u64).sum::<u64>();
            q.add_used(head, 1);
        }
        q.publish_used();
        let dt = tsc() - t;
        while mq.pop_used().is_some() {}
        timer.record(it, dt, batch);
    }
    assert!(bytes > 0);
    timer.row("walk vfio::virtq", batch)
}

fn walk_peer(batch: usize, iters: usize) -> Row {
    let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
    let (mut mq, heads) = read_chains(&mem, batch);
    let cfg = mq.config();
    let gm = mem.mmap();
    let mut q = Queue::new(QSIZE).unwrap();
    q.set_size(QSIZE);
    q.try_set_desc_table_address(GuestAddress(cfg.desc))
        .unwrap();
    q.try_set_avail_ring_address(GuestAddress(cfg.avail))
        .unwrap();
    q.try_set_used_ring_address(GuestAddress(cfg.used)).unwrap();
    q.set_ready(true);
    let mut timer = Timer::new(iters);
    let mut bytes = 0u64;
    for it in 0..iters {
        for &h in &heads {
            mq.push_avail(h);
        }
        mq.publish();
        let t = tsc();
        while let Some(chain) = q.pop_descriptor_chain(gm) {
            let head = chain.head_index();
            for d in chain {
                // Same work as ours: translate each buffer to a host slice.
                let s = vm_memory::GuestMemoryBackend::get_slice(gm, d.addr(), d.len() as usize)
                    .unwrap();
                bytes += s.len() as u64;
            }
            q.add_used(gm, head, 1).unwrap();
        }
        let _ = q.needs_notification(gm);
        let dt = tsc() - t;
        while mq.pop_used().is_some() {}
        timer.record(it, dt, batch);
    }
    assert!(bytes > 0);
    timer.row("walk virtio-queue", batch)
}

/// virtio-blk device alone: cycles per request of the split and packed
/// rings, and the split-ring walk against rust-vmm's virtio-queue.
#[derive(clap::Parser)]
#[command(name = "blk_device")]
struct Args {
    /// Requests timed per case.
    #[arg(long, default_value_t = 20000)]
    iters: usize,
    /// Only measure what QoS costs the device: QD 128, QoS off against
    /// limits far above the rate (every bucket checked per request).
    #[arg(long)]
    qos: bool,
    /// Only the cost of the latency histograms: split ring off and on,
    /// alternating, REPEAT times per batch size.
    #[arg(long)]
    latency_cost: bool,
    /// Runs per case for --latency-cost.
    #[arg(long, default_value_t = 7)]
    repeat: usize,
}

/// `--qos`: `qd` reads kept in flight on one split ring; each iteration
/// polls until all complete and records cycles per request; QoS off and
/// on alternate in rounds. The medians are compared (robust to a host
/// that deschedules the thread now and then).
fn qos_cost(iters: usize) {
    const QD: usize = 128;
    let on = QosLimits {
        rw_ios_per_sec: 1 << 40,
        rw_mbytes_per_sec: 1 << 30,
        r_mbytes_per_sec: 1 << 30,
        w_mbytes_per_sec: 0,
    };
    let mut hists = [
        Histogram::<u64>::new(3).unwrap(),
        Histogram::<u64>::new(3).unwrap(),
    ];
    let mut sums = [(0u64, 0u64); 2];
    for _round in 0..10 {
        for (k, limits) in [QosLimits::default(), on].into_iter().enumerate() {
            let mem = GuestMemory::anonymous(&[(0, MEM)]).unwrap();
            let backend = Box::new(NullBackend::new(1 << 30, 4096));
            let (mut dev, mut drv) =
                split_device(&mem, backend, |dev| dev.qos_handle().set(limits));
            for i in 0..QD {
                drv.request(
                    VIRTIO_BLK_T_IN,
                    i as u64 * 8,
                    &[Buf::w(DATA + i as u64 * 4096, 4096)],
                    false,
                );
            }
            for it in 0..iters / 10 {
                let mut done = 0;
                let mut dt = 0;
                while done < QD {
                    let t = tsc();
                    dev.poll();
                    dt += tsc() - t;
                    while let Some((id, _)) = drv.q.pop_used() {
                        drv.q.push_avail(id);
                        done += 1;
                    }
                }
                drv.q.publish();
                drv.q.suppress_interrupts();
                if it >= 10 {
                    let _ = hists[k].record(dt / QD as u64);
                    sums[k].0 += dt;
                    sums[k].1 += QD as u64;
                }
            }
        }
    }
    println!("QoS cost, device alone, split ring, QD {QD}, 4 KiB reads, null backend");
    for (k, name) in ["off", "on"].iter().enumerate() {
        println!(
            "qos {name:<3} cycles/req median {:>6} mean {:>8.1} p99 {:>6}",
            hists[k].value_at_quantile(0.5),
            sums[k].0 as f64 / sums[k].1.max(1) as f64,
            hists[k].value_at_quantile(0.99)
        );
    }
    let med = |k: usize| hists[k].value_at_quantile(0.5) as f64;
    println!(
        "qos on/off cycles per request: median {:+.1}%, mean {:+.1}%",
        (med(1) / med(0) - 1.0) * 100.0,
        (sums[1].0 as f64 / sums[1].1 as f64) / (sums[0].0 as f64 / sums[0].1 as f64) * 100.0
            - 100.0
    );
}

/// `--latency-cost`: per batch size, alternating off/on runs; the median
/// of the per-pair ratios of mean cycles per request, and of p50s.
fn latency_cost(iters: usize, repeat: usize) {
    println!("latency histograms (--metrics) cost in BlkDevice::poll, split ring, 4 KiB reads, null backend");
    for batch in [1usize, 64] {
        let (mut mean, mut p50) = (Vec::new(), Vec::new());
        let (mut best_off, mut best_on) = (f64::MAX, f64::MAX);
        for i in 0..repeat.max(1) {
            let order = if i % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            let mut r = [None, None];
            for on in order {
                r[usize::from(on)] = Some(device_split_with(batch, iters, false, on));
            }
            let [Some(off), Some(on)] = r else { continue };
            mean.push(on.cycles_per / off.cycles_per);
            p50.push(
                on.hist.value_at_quantile(0.5) as f64
                    / off.hist.value_at_quantile(0.5).max(1) as f64,
            );
            best_off = best_off.min(off.cycles_per);
            best_on = best_on.min(on.cycles_per);
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (m, p) = (med(mean), med(p50));
        println!(
            "batch {batch:>2}: best off {best_off:.0} cyc/req, best on {best_on:.0} cyc/req ({:+.1}%); \
             median of pairs: mean {:+.1}%, p50 {:+.1}%",
            (best_on / best_off - 1.0) * 100.0,
            (m - 1.0) * 100.0,
            (p - 1.0) * 100.0
        );
        println!(
            "{{\"bench\":\"blk_device_latency_cost\",\"batch\":{batch},\"best_off_cycles\":{best_off:.1},\"best_on_cycles\":{best_on:.1},\"mean_ratio_median\":{m:.4},\"p50_ratio_median\":{p:.4}}}"
        );
    }
}

/// Per batch size, row `b` over row `a`: mean and median cycles.
fn print_ratios(rows: &[Row], (a, b): (&str, &str), what: &str) {
    for batch in [1usize, 32] {
        let get = |n: &str| rows.iter().find(|r| r.name == n && r.batch == batch);
        if let (Some(a), Some(b)) = (get(a), get(b)) {
            println!(
                "batch {batch:>2}: {what}: mean {:.2}x, median {:.2}x",
                b.cycles_per / a.cycles_per,
                b.hist.value_at_quantile(0.5) as f64 / a.hist.value_at_quantile(0.5).max(1) as f64
            );
        }
    }
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let iters = a.iters;
    if a.qos {
        qos_cost(iters);
        return;
    }
    if a.latency_cost {
        latency_cost(iters, a.repeat);
        return;
    }
    let hz = tsc_hz();
    println!("virtio-blk device alone (one thread, rdtsc around the device side), TSC {:.2} GHz, {iters} iterations", hz / 1e9);
    println!(
        "{:<20} {:>6} {:>10} {:>12} {:>10} {:>10}",
        "what", "batch", "cyc/req", "Mreq/s/core", "p50 cyc", "p99 cyc"
    );
    let mut rows = Vec::new();
    for batch in [1usize, 32] {
        rows.push(device_split(batch, iters, false));
        rows.push(device_split(batch, iters, true));
        rows.push(device_packed(batch, iters));
        rows.push(walk_ours(batch, iters));
        rows.push(walk_peer(batch, iters));
    }
    for r in &rows {
        println!(
            "{:<20} {:>6} {:>10.0} {:>12.2} {:>10} {:>10}",
            r.name,
            r.batch,
            r.cycles_per,
            hz / r.cycles_per / 1e6,
            r.hist.value_at_quantile(0.5),
            r.hist.value_at_quantile(0.99)
        );
    }
    print_ratios(
        &rows,
        ("walk vfio::virtq", "walk virtio-queue"),
        "split-ring walk, virtio-queue / vfio::virtq cycles",
    );
    print_ratios(
        &rows,
        ("device split", "device split leased"),
        "backend on loan (bdev under a vhost controller) / owned cycles per request",
    );
    for r in &rows {
        println!(
            "{{\"bench\":\"blk_device\",\"what\":\"{}\",\"batch\":{},\"cycles_per_req\":{:.1},\"mreq_per_s_core\":{:.2},\"p50_cycles\":{},\"p99_cycles\":{}}}",
            r.name,
            r.batch,
            r.cycles_per,
            hz / r.cycles_per / 1e6,
            r.hist.value_at_quantile(0.5),
            r.hist.value_at_quantile(0.99)
        );
    }
}
