//! A session of this initiator captured with tcpdump on loopback decodes in tshark
//! with no malformed iSCSI PDU and no expert error, with and without digests
//! (Debian packages `tcpdump` and `tshark`; capturing needs root, as CI runs).

mod common;

use common::{Rng, Tgtd, INITIATOR};
use iscsi_initiator::device::BlockDevice;
use iscsi_initiator::negotiate::Proposal;
use iscsi_initiator::transport::Connection;
use iscsi_initiator::SessionConfig;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Capture {
    child: std::process::Child,
}

impl Capture {
    fn stop(&mut self) {
        // SIGINT by pid so tcpdump flushes the file.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn session(t: &Tgtd, digests: bool) {
    let mut cfg = SessionConfig::new(INITIATOR, Some(&t.iqn));
    cfg.proposal = Proposal {
        header_digest: digests,
        data_digest: digests,
        initial_r2t: false,
        ..Proposal::default()
    };
    let conn = Connection::login(&t.portal(), cfg).expect("login");
    assert_eq!(conn.session().params().header_digest, digests);
    let mut dev = BlockDevice::open(conn, 1).unwrap();
    let mut rng = Rng(5);
    for len in [4096usize, 65536, 600 << 10] {
        let mut data = vec![0u8; len];
        rng.fill(&mut data);
        dev.write_at(8192, &data).unwrap();
        let mut back = vec![0u8; len];
        dev.read_at(8192, &mut back).unwrap();
        assert!(back == data);
    }
    dev.flush().unwrap();
    dev.into_connection().logout().unwrap();
}

fn tshark(pcap: &str, port: u16, filter: &str, fields: &[&str]) -> String {
    let mut c = Command::new("tshark");
    c.args([
        "-r",
        pcap,
        "-d",
        &format!("tcp.port=={port},iscsi"),
        "-Y",
        filter,
        "-T",
        "fields",
    ]);
    for f in fields {
        c.args(["-e", f]);
    }
    let o = c
        .stderr(Stdio::null())
        .output()
        .expect("tshark not found: install the Debian package `tshark`");
    assert!(o.status.success(), "tshark failed on {pcap}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn capture_decodes_without_malformed_pdus() {
    let mut t = Tgtd::start("capture", 8 << 20);
    t.set_param("HeaderDigest", "CRC32C,None");
    t.set_param("DataDigest", "CRC32C,None");
    t.set_param("InitialR2T", "No");
    let pcap = t.dir.join("session.pcap");
    let pcap_s = pcap.to_str().unwrap().to_owned();
    let child = Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-s", "0", "-w", &pcap_s])
        .arg(format!("tcp port {}", t.port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump not found: install the Debian package `tcpdump`");
    let mut cap = Capture { child };
    std::thread::sleep(Duration::from_millis(700));
    session(&t, false);
    session(&t, true);
    std::thread::sleep(Duration::from_millis(300));
    cap.stop();

    let opcodes = tshark(&pcap_s, t.port, "iscsi", &["iscsi.opcode"]);
    let ops: Vec<&str> = opcodes
        .split(['\n', ','])
        .filter(|s| !s.is_empty())
        .collect();
    for (op, name) in [
        ("0x03", "Login Command"),
        ("0x23", "Login Response"),
        ("0x01", "SCSI Command"),
        ("0x05", "SCSI Data Out"),
        ("0x25", "SCSI Data In"),
        ("0x31", "R2T"),
        ("0x21", "SCSI Response"),
        ("0x06", "Logout Command"),
        ("0x26", "Logout Response"),
    ] {
        assert!(
            ops.contains(&op),
            "no {name} ({op}) in the capture: {ops:?}"
        );
    }
    let bad = tshark(
        &pcap_s,
        t.port,
        // TCP's own analysis (window full on loopback) is not about iSCSI.
        "_ws.malformed || _ws.expert.severity == error \
         || (iscsi && _ws.expert.severity == warning && !tcp.analysis.flags)",
        &["frame.number", "_ws.expert.message"],
    );
    assert!(bad.trim().is_empty(), "tshark flags PDUs:\n{bad}");
    t.stop();
}
