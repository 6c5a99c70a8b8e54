//! The per-port fast path ("simple match"): when every rule matches on
//! `in_port` alone and only outputs, floods or drops, a burst is decided with
//! one lookup. Its verdicts and counters must equal the full pipeline's.

use switch::frame::VecFrame;
use switch::switch::{Switch, SwitchConfig};
use switch::testutil::*;
use switch::verdict::{DropReason, Verdict};

fn switch_with(rules: &[&str]) -> std::sync::Arc<Switch> {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 1024,
        ..Default::default()
    });
    for p in 0..4 {
        sw.port_add(p).unwrap();
    }
    for r in rules {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    sw
}

fn run(dp: &mut switch::datapath::Datapath, in_port: u16, frames: &[Vec<u8>]) -> Vec<Verdict> {
    let mut fs: Vec<VecFrame> = frames.iter().map(|f| VecFrame::new(f)).collect();
    let mut v = vec![Verdict::default(); fs.len()];
    dp.process_burst(in_port, &mut fs, &mut v, 0);
    v
}

fn mixed_frames() -> Vec<Vec<u8>> {
    vec![
        udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2),
        tcp4([10, 0, 0, 1], [10, 0, 0, 2], 3, 80, 0x02, 64),
        arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]),
        vec![0x02; 20], // runt: never parsed on this path
    ]
}

#[test]
fn in_port_rules_take_the_port_table() {
    let sw = switch_with(&[
        "priority=10,in_port=0,actions=output:1,output:2",
        "priority=10,in_port=1,actions=drop",
        "priority=5,actions=flood",
    ]);
    assert!(sw.table.snapshot().port_only.is_some());
    let frames = mixed_frames();
    // One datapath: a worker publishes its own running totals.
    let mut dp = sw.datapath(0);
    assert!(run(&mut dp, 0, &frames)
        .iter()
        .all(|v| *v == Verdict::Output(0b110)));
    assert!(run(&mut dp, 1, &frames)
        .iter()
        .all(|v| *v == Verdict::Drop(DropReason::Action)));
    // Port 3 falls to the priority-5 flood: every port up but the ingress.
    assert!(run(&mut dp, 3, &frames)
        .iter()
        .all(|v| *v == Verdict::Output(0b0111)));
    let t = sw.totals();
    assert_eq!(t.port_only, 12);
    assert_eq!(t.rx_packets, 12);
    assert_eq!(
        t.cache_hits + t.cache_misses,
        0,
        "no frame was parsed or looked up"
    );
    // Per-rule counters still count.
    let dump = sw.table.dump(0);
    let hits: u64 = dump.iter().map(|r| r.packets).sum();
    assert_eq!(hits, 12);
}

#[test]
fn a_miss_on_the_port_table_drops_as_no_match() {
    let sw = switch_with(&["priority=10,in_port=0,actions=output:1"]);
    let v = run(&mut sw.datapath(0), 2, &mixed_frames());
    assert!(v.iter().all(|v| *v == Verdict::Drop(DropReason::NoMatch)));
}

#[test]
fn any_other_field_or_a_rewrite_or_normal_turns_it_off() {
    for extra in [
        "priority=20,ip,actions=output:3",
        "priority=20,in_port=2,actions=mod_vlan_vid:5,output:3",
        "priority=20,in_port=2,actions=NORMAL",
        "priority=20,dl_dst=02:00:00:00:00:02,actions=output:3",
    ] {
        let sw = switch_with(&["priority=10,in_port=0,actions=output:1", extra]);
        assert!(sw.table.snapshot().port_only.is_none(), "{extra}");
        // And the full pipeline still decides port 0's frames the same way,
        // except where the extra rule wins.
        let v = run(
            &mut sw.datapath(0),
            0,
            &[udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2)],
        );
        assert!(matches!(v[0], Verdict::Output(_)), "{extra}: {v:?}");
    }
}
