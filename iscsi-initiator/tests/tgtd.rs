//! Against a real target: tgtd (Debian `tgt`) on loopback, file-backed LUN.

mod common;

use common::{Rng, Tgtd, INITIATOR};
use iscsi_initiator::device::{self, BlockDevice};
use iscsi_initiator::negotiate::Proposal;
use iscsi_initiator::scsi::cdb;
use iscsi_initiator::transport::Connection;
use iscsi_initiator::{Command, Direction, SessionConfig};

const SIZE: u64 = 64 << 20;

fn config(t: &Tgtd, p: Proposal) -> SessionConfig {
    let mut c = SessionConfig::new(INITIATOR, Some(&t.iqn));
    c.proposal = p;
    c
}

/// Writes random data at random offsets and lengths (up to 1.5 MiB, so above
/// MaxBurstLength = 256 KiB and above one command), reads it back, checks the backing
/// file, flushes, logs out.
fn write_read_verify(name: &str, p: Proposal, seed: u64) {
    let t = Tgtd::start(name, SIZE);
    if p.header_digest {
        // tgtd offers only None unless told otherwise.
        t.set_param("HeaderDigest", "CRC32C,None");
        t.set_param("DataDigest", "CRC32C,None");
    }
    // Let tgtd accept what we propose (its defaults: InitialR2T=Yes, ImmediateData=Yes).
    t.set_param("InitialR2T", if p.initial_r2t { "Yes" } else { "No" });
    t.set_param("ImmediateData", if p.immediate_data { "Yes" } else { "No" });
    let conn = Connection::login(&t.portal(), config(&t, p)).expect("login");
    let params = *conn.session().params();
    assert_eq!(params.initial_r2t, p.initial_r2t);
    assert_eq!(params.immediate_data, p.immediate_data);
    assert_eq!(params.header_digest, p.header_digest);
    assert_eq!(params.data_digest, p.data_digest);
    let mut dev = BlockDevice::open(conn, 1).expect("open LUN 1");
    assert_eq!(dev.geometry().capacity.bytes(), SIZE);
    let bs = dev.geometry().capacity.block_size as u64;
    let mut rng = Rng(seed);
    let mut model = vec![0u8; SIZE as usize];
    for i in 0..24 {
        let max_blocks = if i % 4 == 0 { 3 << 20 } else { 64 << 10 } / bs;
        let blocks = 1 + rng.below(max_blocks);
        let len = blocks * bs;
        let offset = rng.below((SIZE - len) / bs + 1) * bs;
        let mut data = vec![0u8; len as usize];
        rng.fill(&mut data);
        dev.write_at(offset, &data).expect("write");
        model[offset as usize..(offset + len) as usize].copy_from_slice(&data);
        let mut back = vec![0u8; len as usize];
        dev.read_at(offset, &mut back).expect("read");
        assert!(
            back == data,
            "read-back differs at offset {offset} length {len}"
        );
    }
    dev.flush().expect("flush");
    // Whole-LU read through the initiator and through the backing file.
    let mut all = vec![0u8; SIZE as usize];
    dev.read_at(0, &mut all).expect("read all");
    assert!(all == model, "LU contents differ from the model");
    assert!(
        t.backing_bytes(0, SIZE as usize) == model,
        "backing file differs from the model"
    );
    // Unaligned requests are refused with a clear error, nothing sent.
    let e = dev.write_at(100, &[0u8; 512]).unwrap_err();
    assert!(e.to_string().contains("not aligned"), "{e}");
    dev.into_connection().logout().expect("logout");
}

#[test]
fn immediate_data_unsolicited_no_digests() {
    write_read_verify(
        "imm-unsol",
        Proposal {
            immediate_data: true,
            initial_r2t: false,
            ..Proposal::default()
        },
        1,
    );
}

#[test]
fn r2t_only_no_immediate_no_digests() {
    write_read_verify(
        "r2t-only",
        Proposal {
            immediate_data: false,
            initial_r2t: true,
            max_recv_data_segment_length: 8192,
            ..Proposal::default()
        },
        2,
    );
}

#[test]
fn immediate_then_r2t_with_digests() {
    write_read_verify(
        "digests",
        Proposal {
            immediate_data: true,
            initial_r2t: true,
            header_digest: true,
            data_digest: true,
            ..Proposal::default()
        },
        3,
    );
}

#[test]
fn discovery_inquiry_capacity_vpd() {
    let t = Tgtd::start("discover", SIZE);
    let targets = Connection::discover(&t.portal(), INITIATOR).expect("discovery");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].name, t.iqn);
    assert!(
        targets[0].addresses[0].starts_with("127.0.0.1:"),
        "{:?}",
        targets[0]
    );

    let mut conn = Connection::login(&t.portal(), config(&t, Proposal::default())).unwrap();
    device::test_unit_ready(&mut conn, 1).unwrap();
    let inq = device::inquiry(&mut conn, 1).unwrap();
    assert_eq!(inq.device_type, 0);
    assert_eq!(inq.vendor, "IET");
    let cap = device::capacity(&mut conn, 1).unwrap();
    assert_eq!((cap.blocks, cap.block_size), (SIZE / 512, 512));
    let pages = device::read_command(&mut conn, 1, cdb::inquiry(Some(0), 255), 255).unwrap();
    let pages = iscsi_initiator::scsi::inquiry::supported_pages(&pages).unwrap();
    assert!(pages.contains(&0x80) && pages.contains(&0x83), "{pages:x?}");
    let sn = device::read_command(&mut conn, 1, cdb::inquiry(Some(0x80), 255), 255).unwrap();
    assert_eq!(
        iscsi_initiator::scsi::inquiry::unit_serial(&sn).unwrap(),
        "beaf11"
    );
    let id = device::read_command(&mut conn, 1, cdb::inquiry(Some(0x83), 255), 255).unwrap();
    assert!(!iscsi_initiator::scsi::inquiry::device_id(&id)
        .unwrap()
        .is_empty());
    let luns = device::read_command(&mut conn, 0, cdb::report_luns(4096), 4096).unwrap();
    assert_eq!(
        iscsi_initiator::scsi::report_luns::parse(&luns).unwrap(),
        vec![0, 1]
    );
    // A read past the end is a typed CHECK CONDITION (ILLEGAL REQUEST, LBA out of range).
    let e = device::read_command(&mut conn, 1, cdb::read(SIZE / 512, 1), 512).unwrap_err();
    assert!(e.to_string().contains("IllegalRequest"), "{e}");
    assert_eq!(conn.lun_reset(1).unwrap(), 0);
    conn.logout().unwrap();
}

#[test]
fn queue_depth_32_many_outstanding() {
    let t = Tgtd::start("qd32", SIZE);
    let mut conn = Connection::login(&t.portal(), config(&t, Proposal::default())).unwrap();
    device::test_unit_ready(&mut conn, 1).unwrap();
    let mut rng = Rng(7);
    let mut expect = std::collections::HashMap::new();
    let mut tags = Vec::new();
    for i in 0..256u64 {
        let mut data = vec![0u8; 4096];
        rng.fill(&mut data);
        let lba = i * 8;
        expect.insert(lba, data.clone());
        tags.push(
            conn.submit(Command {
                lun: 1,
                cdb: cdb::write(lba, 8, false),
                direction: Direction::Write,
                buffer: data,
            })
            .unwrap(),
        );
        while conn.outstanding() >= 32 {
            let c = conn.next_completion().unwrap();
            c.result.unwrap();
        }
    }
    while conn.outstanding() > 0 {
        conn.next_completion().unwrap().result.unwrap();
    }
    let mut pending = std::collections::HashMap::new();
    for lba in (0..256u64).map(|i| i * 8) {
        let tag = conn
            .submit(Command {
                lun: 1,
                cdb: cdb::read(lba, 8),
                direction: Direction::Read,
                buffer: vec![0u8; 4096],
            })
            .unwrap();
        pending.insert(tag, lba);
    }
    let mut seen = 0;
    while seen < 256 {
        let c = conn.next_completion().unwrap();
        c.result.clone().unwrap();
        let lba = pending.remove(&c.tag).expect("each tag completes once");
        assert!(c.buffer == expect[&lba], "data at LBA {lba} differs");
        seen += 1;
    }
    assert!(pending.is_empty());
    conn.logout().unwrap();
}

fn chap_login(name: &str, mutual: bool, wrong_secret: bool) -> Result<(), String> {
    use iscsi_initiator::chap::Chap;
    let chap = Chap {
        user: "vswitch-user".into(),
        secret: "initiator-secret-1".into(),
        mutual: mutual.then(|| ("tgt-user".into(), "target-secret-12".into())),
    };
    let t = Tgtd::start_with(name, 1 << 20, Some(chap.clone()));
    let mut cfg = config(&t, Proposal::default());
    cfg.chap = Some(Chap {
        secret: if wrong_secret {
            "not-the-secret".into()
        } else {
            chap.secret.clone()
        },
        ..chap
    });
    let mut conn = Connection::login(&t.portal(), cfg).map_err(|e| e.to_string())?;
    device::test_unit_ready(&mut conn, 1).map_err(|e| e.to_string())?;
    conn.logout().map_err(|e| e.to_string())
}

#[test]
fn chap_one_way_and_mutual() {
    chap_login("chap1", false, false).expect("one-way CHAP");
    chap_login("chap2", true, false).expect("mutual CHAP");
    let e = chap_login("chap3", false, true).expect_err("wrong secret must fail");
    assert!(e.contains("authentication failed"), "{e}");
}

#[test]
fn nop_keepalive_both_directions_with_tgtd() {
    let t = Tgtd::start("nop", 1 << 20);
    // tgtd pings every second and drops the connection after 2 unanswered pings.
    t.set_param("nop_interval", "1");
    t.set_param("nop_count", "2");
    let mut cfg = config(&t, Proposal::default());
    cfg.nop_interval = std::time::Duration::from_millis(700);
    cfg.response_timeout = std::time::Duration::from_secs(2);
    let mut conn = Connection::login(&t.portal(), cfg).unwrap();
    device::test_unit_ready(&mut conn, 1).unwrap();
    conn.run_for(std::time::Duration::from_millis(3500))
        .expect("connection stays up");
    let n = conn.session().nop_stats();
    assert!(n.target_pings_answered >= 2, "{n:?}");
    // At most the last ping is still in flight.
    assert!(
        n.pings_answered >= 1 && n.pings_answered + 1 >= n.pings_sent,
        "{n:?}"
    );
    device::test_unit_ready(&mut conn, 1).expect("still usable after idling");
    conn.logout().unwrap();
}

#[test]
fn discard_with_unmap_where_the_target_offers_it() {
    let t = Tgtd::start("discard", 8 << 20);
    // Without thin provisioning tgtd offers no UNMAP: a clear error, nothing sent.
    let conn = Connection::login(&t.portal(), config(&t, Proposal::default())).unwrap();
    let mut dev = BlockDevice::open(conn, 1).unwrap();
    let e = dev.discard(0, 1 << 20).unwrap_err();
    assert!(
        e.to_string().contains("neither UNMAP nor WRITE SAME"),
        "{e}"
    );
    dev.into_connection().logout().unwrap();

    t.set_lun_params("thin_provisioning=1");
    let conn = Connection::login(&t.portal(), config(&t, Proposal::default())).unwrap();
    let mut dev = BlockDevice::open(conn, 1).unwrap();
    assert!(dev.geometry().provisioning.unmap);
    let mut data = vec![0u8; 2 << 20];
    Rng(3).fill(&mut data);
    dev.write_at(1 << 20, &data).unwrap();
    // Discard the middle MiB: it reads back as zeroes, the rest is intact.
    dev.discard(2 << 20, 1 << 20).unwrap();
    let mut back = vec![0u8; 2 << 20];
    dev.read_at(1 << 20, &mut back).unwrap();
    assert!(
        back[..1 << 20] == data[..1 << 20],
        "data before the discarded range changed"
    );
    assert!(
        back[1 << 20..].iter().all(|&b| b == 0),
        "discarded range is not zero"
    );
    assert!(t.backing_bytes(2 << 20, 1 << 20).iter().all(|&b| b == 0));
    dev.into_connection().logout().unwrap();
}

#[test]
fn read16_write16_for_transfers_above_65535_blocks() {
    let t = Tgtd::start("rw16", 48 << 20);
    let mut conn = Connection::login(&t.portal(), config(&t, Proposal::default())).unwrap();
    device::test_unit_ready(&mut conn, 1).unwrap();
    let blocks = 70_000u32; // over READ(10)'s 16-bit length: the builders pick (16)
    let mut data = vec![0u8; blocks as usize * 512];
    Rng(16).fill(&mut data);
    let w = cdb::write(1, blocks, false);
    assert_eq!((w.len, w.bytes[0]), (16, 0x8a));
    conn.execute(Command {
        lun: 1,
        cdb: w,
        direction: Direction::Write,
        buffer: data.clone(),
    })
    .expect("WRITE(16)");
    let r = cdb::read(1, blocks);
    assert_eq!((r.len, r.bytes[0]), (16, 0x88));
    let c = conn
        .execute(Command {
            lun: 1,
            cdb: r,
            direction: Direction::Read,
            buffer: vec![0u8; data.len()],
        })
        .expect("READ(16)");
    assert_eq!(c.transferred as usize, data.len());
    assert!(c.buffer == data, "READ(16) data differs");
    assert!(t.backing_bytes(512, data.len()) == data);
    let rc10 = device::read_command(&mut conn, 1, cdb::read_capacity10(), 8).unwrap();
    let cap = iscsi_initiator::scsi::capacity::Capacity::parse10(&rc10).unwrap();
    assert_eq!(cap.bytes(), 48 << 20);
    conn.logout().unwrap();
}
