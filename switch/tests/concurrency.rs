//! Rule updates from a control thread while workers switch traffic: once
//! `add`/`del` returns, no frame is switched by the superseded rule.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use switch::frame::{Frame, VecFrame};
use switch::rule::RuleSpec;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::*;
use switch::verdict::Verdict;

fn rule_for_round(r: u64) -> RuleSpec {
    format!(
        "priority={},udp,actions=set_eth_src:02:00:00:00:{:02x}:{:02x},output:2",
        100 + r,
        (r >> 8) as u8,
        r as u8
    )
    .parse()
    .unwrap()
}

#[test]
fn no_frame_uses_a_superseded_rule_after_update_returns() {
    const ROUNDS: u64 = 300;
    let sw = Switch::new(SwitchConfig {
        workers: 2,
        cache_entries: 4096,
        ..Default::default()
    });
    sw.port_add(1).unwrap();
    sw.port_add(2).unwrap();
    sw.table.add(rule_for_round(0), 0).unwrap();
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let frame = udp4([10, 0, 0, 1], [10, 0, 0, 2], 7, 9);
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (sw, published, stop, frame) = (Arc::clone(&sw), Arc::clone(&published), Arc::clone(&stop), frame.clone());
            thread::spawn(move || {
                let mut dp = sw.datapath(w);
                let mut fs: Vec<VecFrame> = (0..32).map(|_| VecFrame::new(&frame)).collect();
                let mut vs = vec![Verdict::default(); 32];
                let mut checked = 0u64;
                while !stop.load(Relaxed) {
                    for f in &mut fs {
                        f.reset(&frame, 128);
                    }
                    let floor = published.load(SeqCst);
                    dp.process_burst(1, &mut fs, &mut vs, 0);
                    for (f, v) in fs.iter().zip(&vs) {
                        assert_eq!(*v, Verdict::Output(1 << 2));
                        let d = f.data();
                        let round = u64::from(d[10]) << 8 | u64::from(d[11]);
                        assert!(round >= floor, "worker {w}: frame switched by rule {round} after rule {floor} was installed");
                        checked += 1;
                    }
                }
                checked
            })
        })
        .collect();
    for r in 1..=ROUNDS {
        sw.table.add(rule_for_round(r), 0).unwrap();
        // remove the superseded rule as well (strict delete)
        let old = rule_for_round(r - 1);
        assert_eq!(sw.table.del(&old.matcher, Some(old.priority), true), 1);
        published.store(r, SeqCst);
    }
    thread::sleep(Duration::from_millis(20));
    stop.store(true, Relaxed);
    let total: u64 = workers
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .sum();
    assert!(total > 0);
    assert_eq!(sw.table.dump(0).len(), 1);
}

/// A frame whose first `data()` call parks the worker inside its burst until
/// the test releases it.
struct GateFrame {
    inner: VecFrame,
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
    waited: Cell<bool>,
}

impl Frame for GateFrame {
    fn data(&self) -> &[u8] {
        if !self.waited.replace(true) {
            self.entered.store(true, SeqCst);
            while !self.release.load(SeqCst) {
                thread::yield_now();
            }
        }
        self.inner.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.inner.data_mut()
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.inner.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.inner.adj(n)
    }
}

#[test]
fn update_waits_for_bursts_in_flight_but_not_for_idle_workers() {
    let sw = Switch::new(SwitchConfig {
        workers: 3,
        cache_entries: 1024,
        ..Default::default()
    });
    for p in [1, 2, 3] {
        sw.port_add(p).unwrap();
    }
    sw.table
        .add("priority=1,actions=output:2".parse().unwrap(), 0)
        .unwrap();
    // workers 1 and 2 exist but are idle: they must not block updates
    let _idle = (sw.datapath(1), sw.datapath(2));
    let t = Instant::now();
    sw.table
        .add("priority=2,tcp,actions=output:3".parse().unwrap(), 0)
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));

    let entered = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let worker = {
        let (sw, entered, release) = (Arc::clone(&sw), Arc::clone(&entered), Arc::clone(&release));
        thread::spawn(move || {
            let mut dp = sw.datapath(0);
            let mut fs = [GateFrame {
                inner: VecFrame::new(&udp4([1; 4], [2; 4], 1, 2)),
                entered,
                release,
                waited: Cell::new(false),
            }];
            let mut vs = [Verdict::default()];
            dp.process_burst(1, &mut fs, &mut vs, 0);
            vs[0]
        })
    };
    while !entered.load(SeqCst) {
        thread::yield_now();
    }
    let done = Arc::new(AtomicBool::new(false));
    let updater = {
        let (sw, done) = (Arc::clone(&sw), Arc::clone(&done));
        thread::spawn(move || {
            sw.table
                .add("priority=3,udp,actions=output:3".parse().unwrap(), 0)
                .unwrap();
            done.store(true, SeqCst);
        })
    };
    thread::sleep(Duration::from_millis(200));
    assert!(
        !done.load(SeqCst),
        "update returned while a burst on the old table was still running"
    );
    release.store(true, SeqCst);
    // The burst began before the update: it used the old rule.
    assert_eq!(worker.join().unwrap(), Verdict::Output(1 << 2));
    updater.join().unwrap();
    assert!(done.load(SeqCst));
}

/// The same guarantee through a multi-table pipeline: workers switch from
/// compiled, cached flows while the control thread modifies the rule in
/// table 2 and the group it uses; once the update returns, no frame
/// carries an older round's bytes.
#[test]
fn compiled_pipelines_see_every_update_once_it_returns() {
    const ROUNDS: u64 = 200;
    let sw = Switch::new(SwitchConfig {
        workers: 2,
        cache_entries: 4096,
        ..Default::default()
    });
    for p in 1..=3 {
        sw.port_add(p).unwrap();
    }
    let group = |r: u64| -> switch::group::GroupSpec {
        format!(
            "group_id=1,type=all,bucket=actions=mod_dl_dst:02:00:00:00:{:02x}:{:02x},output:3,bucket=output:2",
            (r >> 8) as u8,
            r as u8
        )
        .parse()
        .unwrap()
    };
    let table2 = |r: u64| -> RuleSpec {
        format!(
            "table=2,udp,actions=set_eth_src:02:00:00:00:{:02x}:{:02x},group:1",
            (r >> 8) as u8,
            r as u8
        )
        .parse()
        .unwrap()
    };
    sw.group_add(group(0)).unwrap();
    for r in ["actions=goto_table:1", "table=1,ip,actions=goto_table:2"] {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    sw.table.add(table2(0), 0).unwrap();
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let frame = udp4([10, 0, 0, 1], [10, 0, 0, 2], 7, 9);
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (sw, published, stop, frame) = (
                Arc::clone(&sw),
                Arc::clone(&published),
                Arc::clone(&stop),
                frame.clone(),
            );
            thread::spawn(move || {
                let mut dp = sw.datapath(w);
                let mut fs: Vec<VecFrame> = (0..32).map(|_| VecFrame::new(&frame)).collect();
                let mut vs = vec![Verdict::default(); 32];
                let mut copies = Vec::new();
                let mut checked = 0u64;
                let round = |b: &[u8]| u64::from(b[0]) << 8 | u64::from(b[1]);
                while !stop.load(Relaxed) {
                    for f in &mut fs {
                        f.reset(&frame, 128);
                    }
                    copies.clear();
                    let floor = published.load(SeqCst);
                    dp.process_burst_copies(1, &mut fs, &mut vs, &mut copies, 0);
                    assert_eq!(copies.len(), 32);
                    for ((f, v), (c, m)) in fs.iter().zip(&vs).zip(&copies) {
                        assert_eq!(*v, Verdict::Output(1 << 2));
                        assert_eq!(*m, 1 << 3);
                        let src = round(&f.data()[10..12]);
                        let dst = round(&c.data()[4..6]);
                        assert!(
                            src >= floor && dst >= floor,
                            "worker {w}: rule round {src}, group round {dst} after round {floor}"
                        );
                        checked += 1;
                    }
                }
                checked
            })
        })
        .collect();
    for r in 1..=ROUNDS {
        sw.table.add(table2(r), 0).unwrap(); // same match: replaces
        sw.group_mod(group(r)).unwrap();
        published.store(r, SeqCst);
    }
    thread::sleep(Duration::from_millis(20));
    stop.store(true, Relaxed);
    let total: u64 = workers
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .sum();
    assert!(total > 0);
}
