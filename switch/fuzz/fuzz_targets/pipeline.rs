//! Arbitrary frames through a multi-table pipeline: goto, resubmit loops,
//! groups of every type, action sets, metadata, rewrites after outputs
//! (copies), `load`/`move` into and out of packet fields (ARP, ICMP, L4,
//! `in_port`, `xxreg`), on arbitrary headroom; the first byte also picks the ingress
//! port and the fragment mode.
#![no_main]
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use switch::frame::VecFrame;
use switch::switch::{Switch, SwitchConfig};
use switch::table::FragMode;
use switch::verdict::Verdict;

fn switch() -> &'static Arc<Switch> {
    static SW: OnceLock<Arc<Switch>> = OnceLock::new();
    SW.get_or_init(|| {
        let sw = Switch::new(SwitchConfig { workers: 1, cache_entries: 1024, ..Default::default() });
        for p in 0..4 {
            sw.port_add(p).unwrap();
        }
        for g in [
            "group_id=1,type=all,bucket=actions=push_vlan:0x8100,output:1,pop_vlan,pop_vlan,output:2,bucket=output:3",
            "group_id=2,type=select,bucket=weight:3,actions=dec_ttl,output:1,bucket=weight:1,actions=mod_vlan_vid:9,output:2",
            "group_id=3,type=ff,bucket=watch_port:7,actions=output:1,bucket=watch_port:2,actions=set_ip_dscp:46,output:2",
            "group_id=4,type=indirect,bucket=actions=mod_dl_dst:02:00:00:00:00:01,output:3",
        ] {
            sw.group_add(g.parse().unwrap()).unwrap();
        }
        for r in [
            // OVN's packet-field loads and moves: an ARP responder, an
            // ICMP reply through a register, field->xxreg->match.
            "priority=40,arp,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:00:00:00:00:00:01->arp_sha,IN_PORT",
            "priority=40,icmp,actions=move:NXM_OF_IP_SRC[]->NXM_NX_REG0[],move:NXM_OF_IP_DST[]->NXM_OF_IP_SRC[],move:NXM_NX_REG0[]->NXM_OF_IP_DST[],load:0->NXM_OF_ICMP_TYPE[],set_field:3->icmp_code,output:1,load:0x5->NXM_NX_IP_TTL[],output:2",
            "priority=40,tcp,actions=move:NXM_OF_TCP_SRC[0..7]->NXM_OF_TCP_DST[8..15],move:NXM_OF_IN_PORT[]->NXM_NX_XXREG1[0..15],load:0x1->NXM_OF_ETH_DST[40],resubmit(,4)",
            // The field stack and an in_port write (a pop from the
            // empty stack, outputs and FLOOD after the write).
            "priority=40,udp,actions=push:NXM_OF_UDP_SRC[],load:0x2->NXM_OF_IN_PORT[],pop:NXM_NX_IP_TTL[],output:2,output:1,pop:NXM_OF_ETH_SRC[],FLOOD,resubmit(,4)",
            "table=4,ip,reg7=0x1,actions=load:0x3->NXM_NX_IP_ECN[],output:2",
            "table=4,priority=0,ipv6,actions=move:NXM_NX_IPV6_SRC[]->NXM_NX_XXREG0[],move:NXM_NX_XXREG0[]->NXM_NX_IPV6_DST[],output:3",
            "priority=30,ip,actions=output:1,dec_ttl,write_metadata:0x1/0xff,goto_table:1",
            "priority=20,dl_vlan=5,actions=pop_vlan,resubmit(,2),push_vlan:0x88a8,output:2,goto_table:3",
            "priority=10,ipv6,actions=write_actions(group:1,output:3),goto_table:2",
            "priority=0,actions=NORMAL,resubmit(,0)",
            "table=1,metadata=0x1/0xff,udp,actions=group:2,mod_vlan_vid:7,output:3,goto_table:2",
            "table=1,priority=0,actions=clear_actions,write_actions(push_vlan:0x8100,mod_vlan_vid:3,dec_ttl,output:1)",
            "table=2,tcp,actions=group:3,resubmit(,1),resubmit(,2)",
            "table=2,priority=1,actions=group:4,FLOOD",
            "table=3,dl_vlan2=5,actions=dec_ttl,dec_ttl,output:1,set_ip_dscp:10,output:2",
        ] {
            sw.table.add(r.parse().unwrap(), 0).unwrap();
        }
        sw
    })
}

fuzz_target!(|data: &[u8]| {
    let sw = switch();
    let b = data.first().copied().unwrap_or(0);
    let mode = match b % 3 {
        0 => FragMode::Normal,
        1 => FragMode::NxMatch,
        _ => FragMode::Drop,
    };
    if sw.table.snapshot().frag_mode != mode {
        sw.table.set_frag_mode(mode);
    }
    let mut dp = sw.datapath(0);
    let mut fs = [VecFrame::with_headroom(data, usize::from(b >> 4))];
    let mut vs = [Verdict::default()];
    let mut copies = Vec::new();
    dp.process_burst_copies(u16::from(b >> 2) % 4, &mut fs, &mut vs, &mut copies, 0);
    dp.process_burst(u16::from(b >> 2) % 4, &mut fs, &mut vs, 0);
});
