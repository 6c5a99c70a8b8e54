//! Arbitrary frames through connection-tracking pipelines with the real
//! tracker: a stateful firewall, SNAT/DNAT with recirculation, a fork with
//! actions after it, ct_clear, marks and zones. The first byte picks the
//! ingress port and whether copies are taken; the tracker keeps its state
//! across runs, so sequences of frames build connections. Never panics,
//! outputs only to existing ports.
#![no_main]
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use switch::frame::VecFrame;
use switch::switch::{Switch, SwitchConfig};
use switch::verdict::Verdict;

fn switch() -> &'static Arc<Switch> {
    static SW: OnceLock<Arc<Switch>> = OnceLock::new();
    SW.get_or_init(|| {
        let sw = Switch::new(SwitchConfig { workers: 1, cache_entries: 1024, ..Default::default() });
        for p in 0..4 {
            sw.port_add(p).unwrap();
        }
        let ct = conntrack::Conntrack::new(conntrack::Config { max_conns: 4096, default_zone_limit: 64 });
        sw.set_conntrack(Arc::new(ct)).unwrap();
        for r in [
            "priority=100,ip,ct_state=-trk,in_port=0,actions=ct(table=1,zone=1,nat)",
            "priority=100,ip,ct_state=-trk,in_port=1,actions=ct(table=1,zone=1,nat)",
            "priority=100,ipv6,ct_state=-trk,actions=output:3,ct(table=2),mod_dl_dst:02:00:00:00:00:01,output:2",
            "priority=50,ip,actions=ct(table=0)",
            "priority=0,actions=NORMAL",
            "table=1,ct_state=+trk+new,tcp,in_port=0,actions=ct(commit,zone=1,nat(src=172.16.0.1-172.16.0.3:2000-2100),exec(set_field:0x7->ct_mark)),output:1",
            "table=1,ct_state=+trk+new,udp,in_port=0,actions=ct(commit,zone=1,nat(dst=10.9.9.9:53)),output:1",
            "table=1,ct_state=+trk+new,icmp,actions=ct(commit,zone=1),output:1",
            "table=1,ct_state=+trk+est,ct_mark=0x7,actions=ct_clear,resubmit(,3)",
            "table=1,ct_state=+trk+est,actions=output:0,output:1",
            "table=1,ct_state=+trk+rel,actions=output:2",
            "table=1,ct_state=+trk+inv,actions=drop",
            "table=2,ct_state=+trk+new,ct_ipv6_src=fd00::/8,ipv6,actions=ct(commit,force),output:1",
            "table=2,ct_state=+trk,ipv6,actions=ct(table=3,zone=2)",
            "table=3,ct_state=-trk,actions=output:2",
            "table=3,ct_state=+trk,ct_zone=2,actions=mod_dl_src:02:00:00:00:00:02,output:0",
        ] {
            sw.table.add(r.parse().unwrap(), 0).unwrap();
        }
        sw
    })
}

fuzz_target!(|data: &[u8]| {
    let sw = switch();
    let b = data.first().copied().unwrap_or(0);
    let mut dp = sw.datapath(0);
    let frame = data.get(1..).unwrap_or(&[]);
    let mut fs = [VecFrame::new(frame), VecFrame::new(frame)];
    let mut vs = [Verdict::default(); 2];
    let mut copies = Vec::new();
    let in_port = u16::from(b & 3);
    if b & 4 != 0 {
        dp.process_burst_copies(in_port, &mut fs, &mut vs, &mut copies, u64::from(b));
    } else {
        dp.process_burst(in_port, &mut fs, &mut vs, u64::from(b));
    }
    for v in vs.iter().copied().chain(copies.iter().map(|(_, m)| Verdict::Output(*m))) {
        if let Verdict::Output(m) = v {
            assert_eq!(m & !0xf, 0, "output to a port that does not exist");
        }
    }
});
