//! The switch's ct path, in process (no DPDK): established TCP flows
//! through OVS's example firewall and a SNAT gateway (two passes each: the
//! `ct(table=1)` recirculation), against a two-table pipeline without ct.
//! Bursts of 32 frames, 4M frames per case, one core; the time includes
//! refilling the frames.
//!
//! ```text
//! cargo run --release -p switch --example ct_path [-- fw,snat,plain [1,10000]]
//! ```

use std::sync::Arc;
use std::time::Instant;
use switch::frame::{Frame, VecFrame};
use switch::switch::{Switch, SwitchConfig};
use switch::verdict::Verdict;

/// RFC 1071 sum of `d` added to `a`.
fn sum(d: &[u8], mut a: u32) -> u32 {
    for c in d.chunks(2) {
        a += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    a
}
/// Fold and complement a sum.
fn fold(mut a: u32) -> u16 {
    while a > 0xffff {
        a = (a & 0xffff) + (a >> 16);
    }
    !(a as u16)
}
/// Ethernet/IPv4/TCP without payload, checksums correct.
fn tcp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 8, 0];
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = fold(sum(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut ph = Vec::new();
    ph.extend_from_slice(&src);
    ph.extend_from_slice(&dst);
    ph.extend_from_slice(&[0, 6, 0, 20]);
    let c = fold(sum(&t, sum(&ph, 0)));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&t);
    f
}

/// The time-stamp counter.
fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no memory effects; x86_64 always has it.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Open `n` connections (handshake through the switch), then time 4M
/// established client segments over them.
fn run(rules: &[&str], snat: bool, n: usize, label: &str) {
    let sw = Switch::new(SwitchConfig {
        workers: 1,
        cache_entries: 1 << 16,
        ..Default::default()
    });
    for p in 1..=2 {
        sw.port_add(p).unwrap();
    }
    sw.set_conntrack(Arc::new(conntrack::Conntrack::new(conntrack::Config {
        max_conns: 1 << 16,
        default_zone_limit: 0,
    })))
    .unwrap();
    for r in rules {
        sw.table.add(r.parse().unwrap(), 0).unwrap();
    }
    let mut dp = sw.datapath(0);
    let srv = [192, 168, 1, 2];
    let gw = [172, 16, 0, 1];
    let cli = |i: usize| [10, 0, (i >> 8) as u8, i as u8];
    let mut vs = [Verdict::default(); 32];
    let mut copies = Vec::new();
    // Handshakes.
    for i in 0..n {
        let sp = 10000 + (i % 50000) as u16;
        let mut f = [VecFrame::new(&tcp(cli(i), srv, sp, 80, 0x02, 1000, 0))];
        dp.process_burst_copies(1, &mut f, &mut vs[..1], &mut copies, 0);
        let out = f[0].data().to_vec();
        let nsp = u16::from_be_bytes([out[34], out[35]]);
        let dst = if snat { gw } else { cli(i) };
        let mut f = [VecFrame::new(&tcp(srv, dst, 80, nsp, 0x12, 5000, 1001))];
        dp.process_burst_copies(2, &mut f, &mut vs[..1], &mut copies, 1);
        assert_eq!(vs[0], Verdict::Output(1 << 1), "{label} synack {i}");
    }
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            tcp(
                cli(i),
                srv,
                10000 + (i % 50000) as u16,
                80,
                0x10,
                1001,
                5001,
            )
        })
        .collect();
    let mut burst: Vec<VecFrame> = (0..32).map(|_| VecFrame::new(&frames[0])).collect();
    let rounds = 4_000_000 / 32;
    let mut tsc = Vec::with_capacity(rounds);
    let t = Instant::now();
    let mut k = 0usize;
    for r in 0..rounds {
        for f in burst.iter_mut() {
            f.reset(&frames[k % n], 128);
            k += 1;
        }
        let t0 = rdtsc();
        dp.process_burst_copies(1, &mut burst, &mut vs, &mut copies, 2 + r as u64 / 1000);
        tsc.push(rdtsc() - t0);
        debug_assert!(vs.iter().all(|v| *v == Verdict::Output(1 << 2)));
    }
    let dt = t.elapsed();
    assert!(
        vs.iter().all(|v| *v == Verdict::Output(1 << 2)),
        "{label}: {:?}",
        vs[0]
    );
    let pk = (rounds * 32) as f64;
    tsc.sort_unstable();
    println!(
        "{label:40} {n:>6} conns: {:6.1} ns/pkt, {:5.2} Mpps (incl. frame reset); median {:4} TSC cycles/pkt in process_burst",
        dt.as_nanos() as f64 / pk,
        pk / dt.as_secs_f64() / 1e6,
        tsc[tsc.len() / 2] / 32
    );
}

fn main() {
    // `ct_path [CASE[,CASE..]] [CONNS[,CONNS..]]`: cases plain, fw, snat
    // (default all), connection counts (default 1,10000).
    let args: Vec<String> = std::env::args().collect();
    let cases: Vec<String> = args
        .get(1)
        .map_or("plain,fw,snat", String::as_str)
        .split(',')
        .map(String::from)
        .collect();
    let conns: Vec<usize> = args
        .get(2)
        .map_or("1,10000", String::as_str)
        .split(',')
        .map(|n| n.parse().expect("connection count"))
        .collect();
    let fw = [
        "priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,ct_state=+trk+new,tcp,in_port=1,actions=ct(commit),output:2",
        "table=1,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,ct_state=+trk+est,in_port=2,actions=output:1",
    ];
    let snat = [
        "priority=100,ip,ct_state=-trk,actions=ct(table=1,nat)",
        "table=1,ct_state=+trk+new,tcp,in_port=1,actions=ct(commit,nat(src=172.16.0.1)),output:2",
        "table=1,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,ct_state=+trk+est,in_port=2,actions=output:1",
    ];
    let plain = [
        "priority=100,ip,actions=goto_table:1",
        "table=1,tcp,in_port=1,actions=output:2",
        "table=1,in_port=2,actions=output:1",
    ];
    for n in conns {
        for c in &cases {
            match c.as_str() {
                "plain" => run(&plain, false, n, "2-table pipeline, no ct (reference)"),
                "fw" => run(&fw, false, n, "ct firewall, established"),
                "snat" => run(&snat, true, n, "ct SNAT, established"),
                other => panic!("unknown case {other} (plain, fw, snat)"),
            }
        }
    }
}
