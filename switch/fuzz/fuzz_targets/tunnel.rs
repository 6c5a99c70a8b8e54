//! Tunnel endpoints on arbitrary underlay frames: classification (outer
//! IPv4/UDP, VXLAN, Geneve, ARP) never panics, and a decapsulated inner
//! frame always lies inside the frame; the wire views on raw bytes too.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use switch::tunnel::decap::Tunnel;
use switch::tunnel::{ArpCache, Endpoints, Rx, TunnelConfig, TunnelStats};
use switch::wire::{geneve, udp, vxlan};

fn endpoints() -> Endpoints {
    let t = |spec: &str, port| Tunnel {
        port,
        cfg: TunnelConfig::parse(spec).unwrap().unwrap(),
        mac: [2, 0, 0, 0, 0, 1],
        stats: Arc::new(TunnelStats::default()),
    };
    Endpoints::new(
        vec![
            t("vx0,type=vxlan,local_ip=10.0.0.1,remote_ip=10.0.0.2,key=42,underlay=0", 5),
            t("vx1,type=vxlan,local_ip=10.0.0.1,remote_ip=flow,key=flow,underlay=0", 6),
            t("gn0,type=geneve,local_ip=10.0.0.1,remote_ip=flow,key=flow", 7),
        ],
        Arc::new(ArpCache::default()),
    )
    .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let ep = endpoints();
    if let Rx::Decap {
        outer_len,
        inner_len,
        ..
    } = ep.classify(0, data, 0)
    {
        assert!(outer_len + inner_len <= data.len());
        assert!(inner_len >= 14);
    }
    let _ = ep.classify(1, data, 0);
    if let Ok(p) = vxlan::VxlanPacket::new_checked(data) {
        let _ = vxlan::VxlanRepr::parse(&p);
        let _ = p.payload();
    }
    if let Ok(p) = geneve::GenevePacket::new_checked(data) {
        let _ = geneve::GeneveRepr::parse(&p);
        let _ = geneve::options(p.options()).count();
        let _ = p.payload();
    }
    if let Ok(p) = udp::UdpPacket::new_checked(data) {
        let _ = udp::UdpRepr::parse(&p);
        let _ = p.payload();
    }
});
