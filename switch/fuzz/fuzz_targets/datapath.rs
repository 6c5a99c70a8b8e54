//! Arbitrary frames through the whole pipeline with rewriting actions.
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
        for r in [
            "priority=30,ip,actions=dec_ttl,set_ip_dscp:46,push_vlan:0x88a8,output:1",
            "priority=20,dl_vlan=5,actions=pop_vlan,pop_vlan,mod_dl_src:02:00:00:00:00:01,output:2",
            "priority=10,ipv6,actions=dec_ttl,set_ip_dscp:10,mod_vlan_vid:7,output:3",
            "priority=0,actions=NORMAL",
        ] {
            sw.table.add(r.parse().unwrap(), 0).unwrap();
        }
        sw
    })
}

fuzz_target!(|data: &[u8]| {
    let sw = switch();
    let mut dp = sw.datapath(0);
    let mut fs = [VecFrame::with_headroom(data, (data.first().copied().unwrap_or(0) % 12) as usize)];
    let mut vs = [Verdict::default()];
    dp.process_burst(0, &mut fs, &mut vs, 0);
});
