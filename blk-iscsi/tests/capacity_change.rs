//! UNIT ATTENTION "CAPACITY DATA HAS CHANGED" (ASC 2Ah, ASCQ 09h) on the
//! iSCSI backend: the command that saw it is retried, the backend sends
//! READ CAPACITY (16) on the data path and the virtio-blk device's config
//! space follows (through the `Backend::capacity_change` hook), so the guest
//! can use the new blocks. tgtd cannot resize a LU online, so the target
//! here is a scripted one behind the backend's `Transport` trait (bytes in,
//! bytes out, the same PDUs a real target sends).

use blk_iscsi::link::Transport;
use blk_iscsi::{IscsiBackend, IscsiSpec, SessionStats};
use iscsi_pdu::pdu::*;
use iscsi_pdu::{frame, DigestConfig, Pdu};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vfio::backend::Backend;
use vfio::blk::mock::BlkDriver;
use vfio::blk::{BlkConfig, BlkDevice, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN};
use vfio::guest_memory::GuestMemory;
use vfio::virtq::mock::{Buf, MockQueue};
use vfio::virtq::VIRTIO_F_VERSION_1;

const BS: u64 = 512;

/// The scripted target's state, shared with the test.
#[derive(Default)]
struct Lu {
    blocks: u64,
    /// The next READ gets UNIT ATTENTION 2Ah/09h and the LU grows to this.
    grow_to: Option<u64>,
    unit_attentions: u32,
    read_capacities: u32,
}

struct Scripted {
    lu: Arc<Mutex<Lu>>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    stat_sn: u32,
    open: bool,
}

impl Scripted {
    fn emit(&mut self, p: Pdu, data: &[u8]) {
        frame::emit(&mut self.out, &p, &[], data, DigestConfig::default()).unwrap();
    }

    fn status(&mut self, itt: u32, cmd_sn: u32, status: u8, sense: &[u8]) {
        self.stat_sn += 1;
        let mut data = Vec::new();
        if !sense.is_empty() {
            data.extend_from_slice(&(sense.len() as u16).to_be_bytes());
            data.extend_from_slice(sense);
        }
        self.emit(
            Pdu::ScsiResponse(ScsiResponse {
                bidi_overflow: false,
                bidi_underflow: false,
                overflow: false,
                underflow: false,
                response: 0,
                status,
                itt,
                snack_tag: 0,
                stat_sn: self.stat_sn,
                exp_cmd_sn: cmd_sn.wrapping_add(1),
                max_cmd_sn: cmd_sn.wrapping_add(64),
                exp_data_sn: 0,
                bidi_residual: 0,
                residual: 0,
            }),
            &data,
        );
    }

    fn data_in(&mut self, itt: u32, cmd_sn: u32, data: &[u8]) {
        self.stat_sn += 1;
        self.emit(
            Pdu::DataIn(DataIn {
                final_flag: true,
                ack: false,
                overflow: false,
                underflow: false,
                status_present: true,
                status: 0,
                lun: 0,
                itt,
                ttt: 0xffff_ffff,
                stat_sn: self.stat_sn,
                exp_cmd_sn: cmd_sn.wrapping_add(1),
                max_cmd_sn: cmd_sn.wrapping_add(64),
                data_sn: 0,
                buffer_offset: 0,
                residual: 0,
            }),
            data,
        );
    }

    fn on_pdu(&mut self, p: Pdu) {
        match p {
            Pdu::LoginRequest(req) => {
                let mut data = Vec::new();
                iscsi_pdu::text::push(&mut data, "MaxRecvDataSegmentLength", "262144");
                iscsi_pdu::text::push(&mut data, "ImmediateData", "Yes");
                iscsi_pdu::text::push(&mut data, "InitialR2T", "Yes");
                self.emit(
                    Pdu::LoginResponse(LoginResponse {
                        transit: true,
                        continue_flag: false,
                        csg: Stage::Operational,
                        nsg: Stage::FullFeature,
                        version_max: 0,
                        version_active: 0,
                        isid: req.isid,
                        tsih: 1,
                        itt: req.itt,
                        stat_sn: self.stat_sn,
                        exp_cmd_sn: req.cmd_sn,
                        max_cmd_sn: req.cmd_sn.wrapping_add(64),
                        status_class: 0,
                        status_detail: 0,
                    }),
                    &data,
                );
            }
            Pdu::ScsiCommand(c) => {
                let op = c.cdb[0];
                let mut lu = self.lu.lock().unwrap();
                match op {
                    // READ CAPACITY (16): SERVICE ACTION IN (16), action 10h.
                    0x9e => {
                        lu.read_capacities += 1;
                        let mut d = [0u8; 32];
                        d[..8].copy_from_slice(&(lu.blocks - 1).to_be_bytes());
                        d[8..12].copy_from_slice(&(BS as u32).to_be_bytes());
                        drop(lu);
                        let n = (c.expected_data_len as usize).min(32);
                        self.data_in(c.itt, c.cmd_sn, &d[..n]);
                    }
                    // READ (10) / READ (16).
                    0x28 | 0x88 => {
                        if let Some(g) = lu.grow_to.take() {
                            lu.blocks = g;
                            lu.unit_attentions += 1;
                            drop(lu);
                            // Fixed sense: UNIT ATTENTION, ASC 2Ah ASCQ 09h.
                            let mut sense = [0u8; 18];
                            sense[0] = 0x70;
                            sense[2] = 0x06;
                            sense[7] = 10;
                            sense[12] = 0x2a;
                            sense[13] = 0x09;
                            self.status(c.itt, c.cmd_sn, 0x02, &sense);
                        } else {
                            drop(lu);
                            let d = vec![0x5a; c.expected_data_len as usize];
                            self.data_in(c.itt, c.cmd_sn, &d);
                        }
                    }
                    // INQUIRY: not offered (the backend does without VPD).
                    0x12 => {
                        drop(lu);
                        let mut sense = [0u8; 18];
                        sense[0] = 0x70;
                        sense[2] = 0x05;
                        sense[7] = 10;
                        sense[12] = 0x24;
                        self.status(c.itt, c.cmd_sn, 0x02, &sense);
                    }
                    _ => {
                        drop(lu);
                        self.status(c.itt, c.cmd_sn, 0, &[]);
                    }
                }
            }
            Pdu::NopOut(n) if n.itt != 0xffff_ffff => {
                self.emit(
                    Pdu::NopIn(NopIn {
                        lun: 0,
                        itt: n.itt,
                        ttt: 0xffff_ffff,
                        stat_sn: self.stat_sn + 1,
                        exp_cmd_sn: n.cmd_sn,
                        max_cmd_sn: n.cmd_sn.wrapping_add(64),
                    }),
                    &[],
                );
                self.stat_sn += 1;
            }
            _ => {}
        }
    }
}

impl Transport for Scripted {
    fn connect(&mut self, _portal: &str, _timeout: Duration) -> io::Result<()> {
        self.inbuf.clear();
        self.out.clear();
        self.open = true;
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open
    }

    fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.inbuf.extend_from_slice(data);
        loop {
            let parsed = frame::parse(&self.inbuf, DigestConfig::default())
                .map_err(|e| io::Error::other(e.to_string()))?
                .map(|(f, used)| (f.pdu().map_err(|e| io::Error::other(e.to_string())), used));
            let Some((p, used)) = parsed else { break };
            self.inbuf.drain(..used);
            self.on_pdu(p?);
        }
        Ok(data.len())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.out.len());
        buf[..n].copy_from_slice(&self.out[..n]);
        self.out.drain(..n);
        Ok(n)
    }

    fn close(&mut self) {
        self.open = false;
    }
}

#[test]
fn capacity_changed_unit_attention_resizes_the_device() {
    let lu = Arc::new(Mutex::new(Lu {
        blocks: 2048,
        ..Lu::default()
    }));
    let t = Scripted {
        lu: Arc::clone(&lu),
        inbuf: Vec::new(),
        out: Vec::new(),
        stat_sn: 0,
        open: false,
    };
    let spec = IscsiSpec::parse("iscsi://scripted:3260/iqn.2026-01.dev.vswitch:grow/0").unwrap();
    let be = IscsiBackend::connect_with(&spec, 8, Box::new(t)).expect("login");
    assert_eq!(be.info().capacity, 2048 * BS);
    let stats = be.stats();
    let mem = GuestMemory::anonymous(&[(0, 8 << 20)]).unwrap();
    let cfg = BlkConfig::new(&be.info(), 512, 1, "grow").unwrap();
    let mut dev = BlkDevice::new("grow", Box::new(be), cfg);
    dev.set_features(VIRTIO_F_VERSION_1);
    dev.set_memory(mem.clone());
    let drv = BlkDriver::new(&mem, 0x1000, 64, 0x1000 + MockQueue::footprint(64));
    dev.start_queue(0, drv.q.config(), 0).unwrap();
    assert_eq!(dev.config().capacity_sectors, 2048);

    // The LU grows to 4096 blocks; the next read sees the unit attention.
    lu.lock().unwrap().grow_to = Some(4096);
    let read = |dev: &mut BlkDevice, drv: &mut BlkDriver, sector: u64| {
        let r = drv.request(VIRTIO_BLK_T_IN, sector, &[Buf::w(1 << 20, 4096)], false);
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            dev.poll();
            if let Some((head, _)) = drv.q.pop_used() {
                assert_eq!(head, r.head);
                return drv.status(&r);
            }
            assert!(Instant::now() < end, "read not completed");
        }
    };
    let mut drv = drv;
    // The command that saw the unit attention is retried: the guest sees OK.
    assert_eq!(read(&mut dev, &mut drv, 0), VIRTIO_BLK_S_OK);
    let mut got = vec![0u8; 4096];
    mem.read(1 << 20, &mut got).unwrap();
    assert!(got.iter().all(|&b| b == 0x5a), "read data after the retry");
    let end = Instant::now() + Duration::from_secs(5);
    while dev.config().capacity_sectors != 4096 {
        dev.poll();
        assert!(
            Instant::now() < end,
            "capacity not updated in the config space"
        );
    }
    let l = lu.lock().unwrap();
    assert_eq!((l.unit_attentions, l.read_capacities), (1, 2));
    drop(l);
    assert_eq!(SessionStats::get(&stats.capacity_bytes), 4096 * BS);
    assert_eq!(SessionStats::get(&stats.capacity_changes), 1);
    assert_eq!(dev.stats().config_changes, 1);
    // A block past the old end is now readable.
    assert_eq!(read(&mut dev, &mut drv, 3000), VIRTIO_BLK_S_OK);
}
