//! Packet loss and delay (`tc netem`) on a veth pair between the test and a tgtd in a
//! network namespace the test creates: the data is still exactly right.

mod common;

use common::{Rng, Tgtd, VethNetns, INITIATOR};
use iscsi_initiator::device::BlockDevice;
use iscsi_initiator::transport::Connection;
use iscsi_initiator::SessionConfig;

#[test]
fn loss_and_delay_on_veth() {
    let net = VethNetns::create("nm");
    let t = Tgtd::start_in_netns("netem", 16 << 20, &net.ns, &net.ns_addr);
    let how = net.impair(&["delay", "2ms", "1ms", "loss", "2%", "reorder", "5%"], 2);
    eprintln!("link impairment: {how}");
    let mut cfg = SessionConfig::new(INITIATOR, Some(&t.iqn));
    cfg.proposal.header_digest = false;
    let conn = Connection::login(&t.portal(), cfg).expect("login over the lossy veth");
    let mut dev = BlockDevice::open(conn, 1).unwrap();
    let mut rng = Rng(11);
    let mut model = vec![0u8; 16 << 20];
    for _ in 0..12 {
        let blocks = 1 + rng.below(1024);
        let off = rng.below((16 << 20) / 512 - blocks) * 512;
        let mut data = vec![0u8; (blocks * 512) as usize];
        rng.fill(&mut data);
        dev.write_at(off, &data).unwrap();
        model[off as usize..off as usize + data.len()].copy_from_slice(&data);
    }
    dev.flush().unwrap();
    let mut all = vec![0u8; 16 << 20];
    dev.read_at(0, &mut all).unwrap();
    assert!(all == model, "data differs after loss/delay");
    let dropped = net.dropped();
    eprintln!("packets dropped by the impairment: {dropped}");
    assert!(
        dropped > 0,
        "the impairment dropped nothing: the test proved nothing"
    );
    assert!(
        t.backing_bytes(0, 16 << 20) == model,
        "backing file differs"
    );
    dev.into_connection().logout().unwrap();
}
