//! The hot path allocates nothing: once warmed up, submitting a read, sending it,
//! receiving its phase-collapsed Data-In and taking the completion makes no heap
//! allocation inside the session (counted by a global allocator that only counts while
//! the session is being called).

use iscsi_initiator::scsi::cdb;
use iscsi_initiator::{Command, Direction, Event, Session, SessionConfig};
use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, DigestConfig, Pdu};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the thread-local
// counters are plain Cells touched only by the allocating thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> T {
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    r
}

#[test]
fn read_path_allocates_nothing_after_warm_up() {
    // The counter itself works.
    ALLOCS.with(|a| a.set(0));
    let v = counted(|| Vec::<u8>::with_capacity(10));
    assert_eq!(ALLOCS.with(|a| a.get()), 1);
    drop(v);
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::new(
        "iqn.2026-01.t:i",
        Some("iqn.2026-01.t:t"),
    ));
    s.start_login(now);
    let (f, _) = frame::parse(s.poll_transmit(), DigestConfig::default())
        .unwrap()
        .unwrap();
    let Ok(Pdu::LoginRequest(req)) = f.pdu() else {
        panic!()
    };
    let n = s.poll_transmit().len();
    s.consume_transmit(n);
    let mut b = Vec::new();
    frame::emit(
        &mut b,
        &Pdu::LoginResponse(LoginResponse {
            transit: true,
            continue_flag: false,
            csg: Stage::Operational,
            nsg: Stage::FullFeature,
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih: 1,
            itt: req.itt,
            stat_sn: 1,
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn.wrapping_add(1000),
            status_class: 0,
            status_detail: 0,
        }),
        &[],
        b"MaxRecvDataSegmentLength=262144\0",
        DigestConfig::default(),
    )
    .unwrap();
    s.receive(&b, now);
    assert!(matches!(s.poll_event(), Some(Event::LoggedIn { .. })));

    let payload = vec![0x42u8; 4096];
    let mut buffers: Vec<Vec<u8>> = (0..32).map(|_| vec![0u8; 4096]).collect();
    let mut wire = Vec::with_capacity(1 << 16);
    let mut stat_sn = 2u32;
    let mut completed = 0u32;
    let first_cmd_sn = req.cmd_sn;
    let mut run = |rounds: usize, s: &mut Session, buffers: &mut Vec<Vec<u8>>| -> u64 {
        ALLOCS.with(|a| a.set(0));
        for _ in 0..rounds {
            let mut tags = [0u32; 32];
            for (i, t) in tags.iter_mut().enumerate() {
                let buffer = buffers.pop().unwrap();
                *t = counted(|| {
                    s.submit(Command {
                        lun: 1,
                        cdb: cdb::read(i as u64 * 8, 8),
                        direction: Direction::Read,
                        buffer,
                    })
                    .unwrap()
                });
            }
            counted(|| {
                let n = s.poll_transmit().len();
                s.consume_transmit(n);
            });
            wire.clear();
            for t in tags {
                frame::emit(
                    &mut wire,
                    &Pdu::DataIn(DataIn {
                        final_flag: true,
                        ack: false,
                        overflow: false,
                        underflow: false,
                        status_present: true,
                        status: 0,
                        lun: 0,
                        itt: t,
                        ttt: u32::MAX,
                        stat_sn,
                        exp_cmd_sn: first_cmd_sn.wrapping_add(completed + 1),
                        max_cmd_sn: first_cmd_sn.wrapping_add(completed + 100),
                        data_sn: 0,
                        buffer_offset: 0,
                        residual: 0,
                    }),
                    &[],
                    &payload,
                    DigestConfig::default(),
                )
                .unwrap();
                stat_sn += 1;
                completed += 1;
            }
            counted(|| s.receive(&wire, now));
            while let Some(e) = counted(|| s.poll_event()) {
                let Event::Completed(c) = e else {
                    panic!("unexpected {e:?}")
                };
                assert_eq!(c.buffer[4095], 0x42);
                buffers.push(c.buffer);
            }
        }
        ALLOCS.with(|a| a.get())
    };
    run(4, &mut s, &mut buffers); // warm-up: buffers and queues reach their size
    let allocs = run(200, &mut s, &mut buffers);
    assert_eq!(
        allocs, 0,
        "the session allocated {allocs} times on the hot path"
    );
}
