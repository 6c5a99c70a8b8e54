//! The emulated accelerator driven through its shared-memory BARs exactly as
//! a host driver drives hardware: management commands through the mailbox,
//! jobs through work queues.

use std::path::PathBuf;
use std::time::Instant;

use vfio::accel::command::{Opcode, AUTO};
use vfio::accel::host::Accel;
use vfio::accel::regs::{self, queue, MBOX_WORDS};
use vfio::accel::{AccelError, Completion, DeviceThread, Job, JobStatus, Physical, VfRequest};

const G: u64 = regs::MEM_GRANULE;

/// A running emulated device in a unique directory, removed on drop.
struct Fixture {
    dev: Option<DeviceThread>,
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str, phys: Physical) -> Fixture {
        let dir = std::env::temp_dir().join(format!("accel-test-{}-{name}", std::process::id()));
        let dev = DeviceThread::spawn(&dir, phys).expect("start emulated device");
        Fixture {
            dev: Some(dev),
            dir,
        }
    }

    fn accel(&self) -> Accel {
        Accel::open_emulated(&self.dir).expect("bind to emulated device")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.dev.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Snapshot of everything a command may change except the mailbox's own
/// status words and the heartbeat: all of BAR0 from the result registers on.
fn snapshot(a: &Accel) -> Vec<u8> {
    let mut v = vec![0u8; regs::BAR0_SIZE - regs::MBOX_RESULT];
    a.bar0()
        .read_bytes(regs::MBOX_RESULT as u64, &mut v)
        .unwrap();
    v
}

fn rejects(r: Result<impl std::fmt::Debug, AccelError>, want: Completion) {
    match r {
        Err(AccelError::Command(c)) => assert_eq!(c, want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn caps_and_create_query_destroy() {
    let fx = Fixture::new("basic", Physical::default());
    let a = fx.accel();
    let c = a.query_caps().unwrap();
    assert_eq!(
        (c.cu, c.max_vfs, c.queues, c.mem_size),
        (8, 16, 64, 64 << 20)
    );
    assert_eq!(c.free_cu_mask, 0xff);
    let v = a.create_vf(&VfRequest::new(3, 4 * G, 2)).unwrap();
    assert_eq!(
        (v.vf, v.cu_mask, v.mem_base, v.mem_size, v.queue_count),
        (0, 0b111, 0, 4 * G, 2)
    );
    assert_eq!(v.quota, 1000);
    // The configuration registers hold what the command programmed.
    let b = a.bar0();
    assert_eq!(b.read32(regs::vf_reg(0, regs::VF_ENABLE)), 1);
    assert_eq!(b.read64(regs::vf_reg(0, regs::VF_CU_MASK)), 0b111);
    assert_eq!(b.read64(regs::vf_reg(0, regs::VF_MEM_SIZE)), 4 * G);
    assert_eq!(b.read32(regs::vf_reg(0, regs::VF_QUEUE_COUNT)), 2);
    assert_eq!(b.read32(regs::vf_reg(0, regs::VF_DOORBELL_COUNT)), 2);
    let c = a.query_caps().unwrap();
    assert_eq!((c.free_cu_mask, c.free_mem), (0xf8, (64 << 20) - 4 * G));
    a.set_quota(0, 300).unwrap();
    assert_eq!(a.query_vf(0).unwrap().quota, 300);
    assert_eq!(b.read32(regs::vf_reg(0, regs::VF_QUOTA)), 300);
    assert_eq!(a.list_vfs().unwrap().len(), 1);
    a.destroy_vf(0).unwrap();
    assert_eq!(b.read32(regs::vf_reg(0, regs::VF_ENABLE)), 0);
    rejects(a.query_vf(0), Completion::NoSuchVf);
    assert!(a.list_vfs().unwrap().is_empty());
    assert_eq!(a.query_caps().unwrap().free_cu_mask, 0xff);
}

#[test]
fn failed_commands_change_no_register() {
    let fx = Fixture::new("atomic", Physical::default());
    let a = fx.accel();
    a.create_vf(&VfRequest::new(4, 16 * G, 4)).unwrap();
    a.create_vf(&VfRequest::new(2, 8 * G, 2)).unwrap();
    let before = snapshot(&a);
    let mut exact_cu = VfRequest::new(0, G, 1);
    exact_cu.cu_mask = 0b1_0000; // owned by vf1
    let mut exact_mem = VfRequest::new(1, 2 * G, 1);
    exact_mem.mem_base = 17 * G; // inside vf1's window
    let mut exact_q = VfRequest::new(1, G, 2);
    exact_q.queue_base = 5; // vf1 has queues 4..6
    let mut unaligned = VfRequest::new(1, G, 1);
    unaligned.mem_base = 100 * G + 4096;
    let mut too_many_cu = VfRequest::new(1, G, 1);
    too_many_cu.cu_mask = 1 << 8;
    let cases: Vec<(Result<_, AccelError>, Completion)> = vec![
        (
            a.create_vf(&VfRequest::new(3, G, 1)),
            Completion::NoResources,
        ),
        (
            a.create_vf(&VfRequest::new(1, 1 << 30, 1)),
            Completion::NoResources,
        ),
        (
            a.create_vf(&VfRequest::new(1, G, 59)),
            Completion::NoResources,
        ),
        (a.create_vf(&exact_cu), Completion::Overlap),
        (a.create_vf(&exact_mem), Completion::Overlap),
        (a.create_vf(&exact_q), Completion::Overlap),
        (a.create_vf(&unaligned), Completion::InvalidArgument),
        (a.create_vf(&too_many_cu), Completion::InvalidArgument),
        (
            a.create_vf(&VfRequest::new(1, 1000, 1)),
            Completion::InvalidArgument,
        ),
        (
            a.create_vf(&VfRequest::new(0, G, 1)),
            Completion::InvalidArgument,
        ),
        (
            a.create_vf(&VfRequest::new(1, G, 0)),
            Completion::InvalidArgument,
        ),
    ];
    for (r, want) in cases {
        rejects(r, want);
        assert!(
            snapshot(&a) == before,
            "a failed CREATE_VF changed registers"
        );
    }
    rejects(a.destroy_vf(7), Completion::NoSuchVf);
    rejects(a.destroy_vf(1 << 20), Completion::NoSuchVf);
    rejects(a.set_quota(0, 0), Completion::InvalidArgument);
    rejects(a.set_quota(0, 1001), Completion::InvalidArgument);
    rejects(a.set_quota(9, 500), Completion::NoSuchVf);
    rejects(a.reset_vf(3), Completion::NoSuchVf);
    rejects(
        a.raw_command(0, &[0; MBOX_WORDS]),
        Completion::UnknownOpcode,
    );
    rejects(
        a.raw_command(0xdead, &[0; MBOX_WORDS]),
        Completion::UnknownOpcode,
    );
    let mut args = [0u64; MBOX_WORDS];
    args[0] = 1;
    args[9] = 1;
    rejects(
        a.raw_command(Opcode::DestroyVf as u32, &args),
        Completion::ReservedNonZero,
    );
    assert!(snapshot(&a) == before, "a failed command changed registers");
    // The VF the reserved-word command named still exists.
    assert_eq!(a.list_vfs().unwrap().len(), 2);
}

#[test]
fn malformed_mailbox_contents_get_error_codes() {
    let fx = Fixture::new("garbage", Physical::default());
    let a = fx.accel();
    a.create_vf(&VfRequest::new(2, 4 * G, 2)).unwrap();
    let mut x: u64 = 0x243f_6a88_85a3_08d3;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut errors = 0;
    for i in 0..2000 {
        let op = if i % 2 == 0 {
            (next() % 8) as u32
        } else {
            next() as u32
        };
        let mut args = [0u64; MBOX_WORDS];
        for w in args.iter_mut() {
            *w = match next() % 4 {
                0 => next(),
                1 => next() % 64,
                2 => AUTO,
                _ => 0,
            };
        }
        match a.raw_command(op, &args) {
            Ok(_) => {}
            Err(AccelError::Command(_)) => errors += 1,
            Err(e) => panic!("garbage command {op:#x} {args:x?}: {e}"),
        }
    }
    assert!(
        errors > 1500,
        "only {errors} of 2000 garbage commands were rejected"
    );
    // Whatever was accepted, the partition is still consistent: no two VFs
    // share a resource, every resource lies inside the device.
    let vfs = a.list_vfs().unwrap();
    let caps = a.query_caps().unwrap();
    let mut cu = 0u64;
    let mut mem = Vec::new();
    for v in &vfs {
        assert_eq!(cu & v.cu_mask, 0, "compute units shared");
        cu |= v.cu_mask;
        assert!(v.mem_base + v.mem_size <= caps.mem_size);
        assert!(v.queue_base + v.queue_count <= caps.queues);
        mem.push((v.mem_base, v.mem_base + v.mem_size));
    }
    mem.sort();
    for w in mem.windows(2) {
        assert!(w[0].1 <= w[1].0, "memory windows overlap: {w:?}");
    }
    assert_eq!(caps.free_cu_mask, 0xff & !cu);
}

#[test]
fn crc32c_and_checksum_jobs_are_exact() {
    let fx = Fixture::new("jobs", Physical::default());
    let a = fx.accel();
    let v = a.create_vf(&VfRequest::new(2, 4 * G, 2)).unwrap();
    let mut vf = a.open_vf(v.vf).unwrap();
    assert_eq!(
        vf.mem().len() as u64,
        4 * G,
        "the host maps exactly the VF's window"
    );
    vf.mem().write_bytes(100, b"123456789").unwrap();
    assert_eq!(vf.run(0, &Job::crc32c(100, 9)).unwrap(), 0xE306_9283);
    let data = pattern(7, 150_000);
    vf.mem().write_bytes(G, &data).unwrap();
    assert_eq!(
        vf.run(1, &Job::crc32c(G, data.len() as u64)).unwrap(),
        u64::from(crc32c::crc32c(&data))
    );
    assert_eq!(
        vf.run(0, &Job::checksum(G, data.len() as u64)).unwrap(),
        vfio::accel::job::checksum(0, &data)
    );
    // Copy then CRC the copy; fill then read back.
    vf.run(0, &Job::copy(G, 3 * G, 1000)).unwrap();
    let mut back = vec![0u8; 1000];
    vf.mem().read_bytes(3 * G, &mut back).unwrap();
    assert_eq!(back, data[..1000]);
    vf.run(1, &Job::fill(5, 10, 0x5a)).unwrap();
    let mut b = [0u8; 12];
    vf.mem().read_bytes(4, &mut b).unwrap();
    assert_eq!(
        b,
        [0, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0]
    );
    // Pipelined: a full ring of jobs, reaped in order with correct results.
    let q = vf.queue(0).unwrap();
    let mut expect = Vec::new();
    for i in 0..queue::RING_SIZE as u64 {
        let len = 1000 + i * 37;
        q.submit(&Job::crc32c(G + i, len)).unwrap();
        expect.push(u64::from(crc32c::crc32c(
            &data[i as usize..(i + len) as usize],
        )));
    }
    assert!(
        q.submit(&Job::crc32c(0, 1)).is_none(),
        "ring overflow must be refused"
    );
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < expect.len() && t.elapsed().as_secs() < 10 {
        q.poll(|_, r| {
            assert_eq!(r.status, JobStatus::Ok);
            got.push(r.result);
        });
    }
    assert_eq!(got, expect);
    let info = a.query_vf(v.vf).unwrap();
    assert_eq!(info.jobs, 5 + u64::from(queue::RING_SIZE));
    assert_eq!(info.failed, 0);
}

#[test]
fn jobs_cannot_reach_outside_their_window() {
    let fx = Fixture::new("isolation", Physical::default());
    let a = fx.accel();
    let va = a.create_vf(&VfRequest::new(1, 2 * G, 1)).unwrap();
    let vb = a.create_vf(&VfRequest::new(1, 2 * G, 1)).unwrap();
    assert_eq!(
        vb.mem_base,
        va.mem_base + va.mem_size,
        "windows are adjacent"
    );
    let mut a_vf = a.open_vf(va.vf).unwrap();
    let b_vf = a.open_vf(vb.vf).unwrap();
    let secret = pattern(99, (2 * G) as usize);
    b_vf.mem().write_bytes(0, &secret).unwrap();
    let win = 2 * G;
    let bad = [
        Job::crc32c(win, 16),     // starts right after the window: vf B's first bytes
        Job::crc32c(win - 8, 16), // straddles the boundary
        Job::crc32c(u64::MAX - 4, 16), // offset + len overflows
        Job::checksum(0, win + 1), // one byte too long
        Job::fill(win, 4096, 0),  // write into vf B
        Job::fill(win - 1, 2, 0), // straddling write
        Job::copy(win, 0, 64),    // read vf B into own window
        Job::copy(0, win + 64, 64), // write own data into vf B
        Job::copy(0, u64::MAX - 10, 64), // overflowing destination
    ];
    for j in bad {
        let r = a_vf.run_raw(0, &j).unwrap();
        assert_eq!(r.status, JobStatus::OutOfWindow, "{j:?}");
    }
    assert!(matches!(
        a_vf.run(
            0,
            &Job {
                opcode: 99,
                ..Default::default()
            }
        ),
        Err(AccelError::Job(JobStatus::BadOpcode))
    ));
    let mut now = vec![0u8; secret.len()];
    b_vf.mem().read_bytes(0, &mut now).unwrap();
    assert!(now == secret, "vf B's memory changed");
    assert_eq!(a.query_vf(va.vf).unwrap().failed, 10);
    // The whole window is usable up to its last byte.
    a_vf.run(0, &Job::fill(0, win, 0xee)).unwrap();
    a_vf.run(0, &Job::crc32c(win - 1, 1)).unwrap();
    b_vf.mem().read_bytes(0, &mut now).unwrap();
    assert!(now == secret, "a full-window fill leaked into vf B");
    // Destroying a VF scrubs its memory: the next owner sees zeros.
    drop(a_vf);
    a.destroy_vf(va.vf).unwrap();
    let vc = a.create_vf(&VfRequest::new(1, 2 * G, 1)).unwrap();
    assert_eq!(vc.mem_base, va.mem_base);
    let mut c_vf = a.open_vf(vc.vf).unwrap();
    let mut buf = vec![0xffu8; win as usize];
    c_vf.mem().read_bytes(0, &mut buf).unwrap();
    assert!(
        buf.iter().all(|&b| b == 0),
        "a new VF saw its predecessor's data"
    );
    assert_eq!(c_vf.run(0, &Job::checksum(0, win)).unwrap(), 0);
}

#[test]
fn bad_doorbell_is_flagged_and_reset_recovers() {
    let fx = Fixture::new("doorbell", Physical::default());
    let a = fx.accel();
    let v = a.create_vf(&VfRequest::new(1, G, 1)).unwrap();
    let mut vf = a.open_vf(v.vf).unwrap();
    vf.mem().write_bytes(0, b"hello").unwrap();
    vf.run(0, &Job::crc32c(0, 5)).unwrap();
    // A tail 1000 descriptors ahead of the device is impossible.
    let page = vf.queue(0).unwrap().page();
    page.write32(queue::SQ_TAIL, 1001);
    let t = Instant::now();
    while page.read32(queue::Q_STATUS) & queue::STATUS_ERROR == 0 {
        assert!(t.elapsed().as_secs() < 5, "bad doorbell not flagged");
        std::thread::yield_now();
    }
    assert_eq!(
        page.read32(queue::SQ_HEAD),
        1,
        "the device took descriptors past a bad doorbell"
    );
    let info = a.reset_vf(v.vf).unwrap();
    assert_eq!((info.resets, info.jobs, info.busy_ns), (1, 0, 0));
    drop(vf);
    let mut vf = a.open_vf(v.vf).unwrap();
    assert_eq!(
        vf.queue(0).unwrap().page().read32(queue::Q_STATUS),
        queue::STATUS_ENABLED
    );
    let mut b = [1u8; 5];
    vf.mem().read_bytes(0, &mut b).unwrap();
    assert_eq!(b, [0; 5], "reset must scrub the window");
    vf.mem().write_bytes(0, b"hello").unwrap();
    assert_eq!(
        vf.run(0, &Job::crc32c(0, 5)).unwrap(),
        u64::from(crc32c::crc32c(b"hello"))
    );
}

/// Time the modelled device must spend on `bytes` at `cus` compute units and
/// `quota` permille, in nanoseconds.
fn model_ns(phys: &Physical, cus: u64, quota: u64, bytes: u64) -> u64 {
    bytes * 1_000_000_000 * 1000 / (phys.cu_rate * cus * quota)
}

#[test]
fn quotas_bound_throughput() {
    // Slow compute units so the modelled time dominates.
    let phys = Physical {
        cu_rate: 64 << 20,
        ..Physical::default()
    };
    let fx = Fixture::new("quota", phys);
    let a = fx.accel();
    let full = a.create_vf(&VfRequest::new(2, 4 * G, 1)).unwrap();
    let quarter = a.create_vf(&VfRequest::new(2, 4 * G, 1)).unwrap();
    a.set_quota(quarter.vf, 250).unwrap();
    let job = Job::crc32c(0, 4 * G);
    let jobs = 8u64;
    let bytes = jobs * 4 * G;
    // Both VFs run concurrently from their own threads.
    let run = |vf: u32| {
        let a = fx.accel();
        let mut h = a.open_vf(vf).unwrap();
        let t = Instant::now();
        for _ in 0..jobs {
            h.run(0, &job).unwrap();
        }
        t.elapsed()
    };
    let (t_full, t_quarter) = std::thread::scope(|s| {
        let f = s.spawn(|| run(full.vf));
        let q = s.spawn(|| run(quarter.vf));
        (f.join().unwrap(), q.join().unwrap())
    });
    let i_full = a.query_vf(full.vf).unwrap();
    let i_quarter = a.query_vf(quarter.vf).unwrap();
    assert_eq!((i_full.bytes, i_quarter.bytes), (bytes, bytes));
    // The device charged exactly the modelled compute time...
    let overhead = jobs * vfio::accel::device::JOB_OVERHEAD_NS;
    assert_eq!(
        i_full.busy_ns,
        model_ns(&phys, 2, 1000, 4 * G) * jobs + overhead
    );
    assert_eq!(
        i_quarter.busy_ns,
        model_ns(&phys, 2, 250, 4 * G) * jobs + overhead
    );
    // ...and no VF finished faster than its quota allows, under contention.
    let min_full = std::time::Duration::from_nanos(i_full.busy_ns);
    let min_quarter = std::time::Duration::from_nanos(i_quarter.busy_ns);
    assert!(
        t_full >= min_full,
        "full VF beat its compute budget: {t_full:?} < {min_full:?}"
    );
    assert!(
        t_quarter >= min_quarter,
        "quota exceeded: {t_quarter:?} < {min_quarter:?}"
    );
    // The quarter-quota VF needed at least 4x the modelled time of the full one.
    assert!(t_quarter >= min_full * 4);
}

#[test]
fn concurrent_commands_from_many_threads() {
    let phys = Physical {
        max_vfs: 64,
        queues: 256,
        doorbells: 256,
        vectors: 256,
        cu: 64,
        mem_size: 256 * G,
        ..Physical::default()
    };
    let fx = Fixture::new("concurrent", phys);
    let threads = 8;
    let per_thread = 20;
    let created: Vec<Vec<u32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let fx = &fx;
                s.spawn(move || {
                    // Each thread binds on its own, like a separate process.
                    let a = fx.accel();
                    let mut kept = Vec::new();
                    for i in 0..per_thread {
                        let v = a.create_vf(&VfRequest::new(1, G, 1 + (i % 3))).unwrap();
                        let q = a.query_vf(v.vf).unwrap();
                        assert_eq!((q.cu_mask, q.mem_base), (v.cu_mask, v.mem_base));
                        if i % 5 == t % 5 {
                            kept.push(v.vf);
                        } else {
                            a.set_quota(v.vf, 100 + i).unwrap();
                            a.destroy_vf(v.vf).unwrap();
                        }
                    }
                    kept
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let a = fx.accel();
    let mut kept: Vec<u32> = created.into_iter().flatten().collect();
    kept.sort();
    let listed: Vec<u32> = a.list_vfs().unwrap().iter().map(|v| v.vf).collect();
    assert_eq!(
        listed, kept,
        "every kept VF exists, every destroyed one is gone"
    );
    assert_eq!(kept.len(), threads as usize * (per_thread as usize / 5));
    let caps = a.query_caps().unwrap();
    assert_eq!(caps.free_cu_mask.count_ones() as usize, 64 - kept.len());
    assert_eq!(caps.free_mem, 256 * G - kept.len() as u64 * G);
    assert_eq!(a.bar0().read32(regs::MBOX_LOCK), 0, "mailbox left locked");
}

#[test]
fn mailbox_lock_of_a_dead_process_is_taken_over() {
    let fx = Fixture::new("stale-lock", Physical::default());
    let a = fx.accel();
    // A process that held the mailbox and died mid-command.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn `true`");
    let dead = child.id();
    child.wait().unwrap();
    a.bar0().write32(regs::MBOX_LOCK, dead);
    let v = a.create_vf(&VfRequest::new(1, G, 1)).unwrap();
    assert_eq!(v.vf, 0);
    assert_eq!(a.bar0().read32(regs::MBOX_LOCK), 0);
    // A live holder (this process, another thread's command in flight) is
    // waited for, not overridden: hold it briefly from here.
    a.bar0().write32(regs::MBOX_LOCK, std::process::id());
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            a.bar0().write32(regs::MBOX_LOCK, 0);
        });
        fx.accel().query_caps().unwrap();
    });
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(50),
        "a live lock holder was overridden"
    );
}

#[test]
fn completions_raise_the_queue_vector() {
    let fx = Fixture::new("irq", Physical::default());
    let a = fx.accel();
    let mut req = VfRequest::new(1, G, 3);
    req.vectors = 2;
    let v = a.create_vf(&req).unwrap();
    assert_eq!((v.vector_count, v.queue_count), (2, 3));
    let mut vf = a.open_vf(v.vf).unwrap();
    let counts =
        |vf: &vfio::accel::VfHandle| (0..3).map(|q| vf.irq_count(q).unwrap()).collect::<Vec<_>>();
    assert_eq!(counts(&vf), [0, 0, 0]);
    vf.run(1, &Job::crc32c(0, 64)).unwrap();
    // Queue 1 signals vector 1; queues 0 and 2 share vector 0.
    assert_eq!(counts(&vf), [0, 1, 0]);
    vf.run(2, &Job::crc32c(0, 64)).unwrap();
    vf.run(2, &Job::crc32c(0, 64)).unwrap();
    assert_eq!(counts(&vf), [2, 1, 2]);
    // A waiter sleeping on the vector is woken by the completion, not by
    // its 10 s timeout.
    let seen = vf.irq_count(0).unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let h = fx.accel().open_vf(v.vf).unwrap();
            h.wait_irq(0, seen, std::time::Duration::from_secs(10))
                .unwrap();
            h.irq_count(0).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        vf.queue(0).unwrap().submit(&Job::crc32c(0, 64)).unwrap();
        assert_eq!(waiter.join().unwrap(), seen + 1);
    });
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "waiter was not woken by the interrupt"
    );
    // Reset clears the VF's interrupt counters.
    a.reset_vf(v.vf).unwrap();
    assert_eq!(counts(&vf), [0, 0, 0]);
}

#[test]
fn random_descriptors_never_escape_the_window() {
    let fx = Fixture::new("random-desc", Physical::default());
    let a = fx.accel();
    let va = a.create_vf(&VfRequest::new(1, 2 * G, 1)).unwrap();
    let vb = a.create_vf(&VfRequest::new(1, 2 * G, 1)).unwrap();
    let mut av = a.open_vf(va.vf).unwrap();
    let bv = a.open_vf(vb.vf).unwrap();
    let secret = pattern(5, (2 * G) as usize);
    bv.mem().write_bytes(0, &secret).unwrap();
    let win = 2 * G;
    let mut x: u64 = 0x0123_4567_89ab_cdef;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pick = |n: &mut dyn FnMut() -> u64| match n() % 4 {
        0 => n(),             // anything, mostly huge
        1 => n() % (2 * win), // around the window
        2 => win - n() % 64,  // at the end of the window
        _ => n() % 64,        // small
    };
    let (mut ok, mut failed) = (0u64, 0u64);
    let q = av.queue(0).unwrap();
    for _ in 0..2000 {
        let job = Job {
            opcode: (next() % 6) as u32,
            src: pick(&mut next),
            dst: pick(&mut next),
            len: pick(&mut next) % (win + 2),
            arg: next(),
        };
        while q.submit(&job).is_none() {
            q.poll(|_, r| {
                if r.status == JobStatus::Ok {
                    ok += 1
                } else {
                    failed += 1
                }
            });
        }
    }
    let t = Instant::now();
    while q.outstanding() > 0 {
        assert!(t.elapsed().as_secs() < 30, "device stopped completing jobs");
        q.poll(|_, r| {
            if r.status == JobStatus::Ok {
                ok += 1
            } else {
                failed += 1
            }
        });
    }
    assert_eq!(ok + failed, 2000);
    assert!(
        ok > 100 && failed > 100,
        "ok {ok} failed {failed}: the generator is not exercising both paths"
    );
    let info = a.query_vf(va.vf).unwrap();
    assert_eq!((info.jobs, info.failed), (ok, failed));
    let mut now = vec![0u8; secret.len()];
    bv.mem().read_bytes(0, &mut now).unwrap();
    assert!(now == secret, "random jobs on vf A changed vf B's memory");
    // And the device still computes exact results.
    av.mem().write_bytes(0, b"123456789").unwrap();
    assert_eq!(av.run(0, &Job::crc32c(0, 9)).unwrap(), 0xE306_9283);
}
