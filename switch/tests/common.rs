#![allow(dead_code)]
use std::sync::Arc;

use switch::datapath::Datapath;
use switch::frame::{Frame, VecFrame};
use switch::switch::{Switch, SwitchConfig};
use switch::verdict::Verdict;

pub fn switch_with(rules: &[&str], ports: &[u16]) -> Arc<Switch> {
    let sw = Switch::new(SwitchConfig {
        workers: 2,
        cache_entries: 4096,
        ..Default::default()
    });
    for p in ports {
        sw.port_add(*p).unwrap();
    }
    for r in rules {
        sw.table
            .add(r.parse().unwrap_or_else(|e| panic!("{r}: {e}")), 0)
            .unwrap();
    }
    sw
}

pub fn send(dp: &mut Datapath, in_port: u16, frame: &[u8], now: u64) -> (Verdict, Vec<u8>) {
    let mut fs = [VecFrame::new(frame)];
    let mut vs = [Verdict::default()];
    dp.process_burst(in_port, &mut fs, &mut vs, now);
    (vs[0], fs[0].data().to_vec())
}

/// One rule, ports 1..=4, one frame: verdict and bytes out.
pub fn run1(rule: &str, in_port: u16, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let sw = switch_with(&[rule], &[1, 2, 3, 4]);
    let mut dp = sw.datapath(0);
    send(&mut dp, in_port, frame, 0)
}

pub fn ports(ps: &[u16]) -> Verdict {
    Verdict::Output(ps.iter().fold(0u64, |m, p| m | 1 << p))
}
