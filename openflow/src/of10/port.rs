//! OpenFlow 1.0 port structures: `ofp10_phy_port` (section 5.2.1) in the
//! FEATURES_REPLY (section 5.3.1), which in 1.0 carries the port list that
//! `ovs-ofctl show` prints, and `ofp10_port_stats` (section 5.3.5.6).
//!
//! ```text
//! phy_port:  port_no(2) hw_addr(6) name(16) config(4) state(4) curr(4) advertised(4) supported(4) peer(4)
//! features:  header(8) datapath_id(8) n_buffers(4) n_tables(1) pad(3) capabilities(4) actions(4) | ports
//! port stats: port_no(2) pad(6) rx/tx packets, rx/tx bytes, rx/tx dropped, rx/tx errors,
//!             rx_frame_err, rx_over_err, rx_crc_err, collisions (12 x 8)
//! ```

use super::field::{features as ff, phy_port as fp, port_stats as fs};
use crate::bytes::{mac_at, put_str, str_at, u16_at, u32_at, u64_at, u8_at, zeros};
use crate::error::check_len;
use crate::{Error, Result};

/// OFPPF_* speed bits (section 5.2.1) a port's `curr` reports.
pub mod features {
    /// OFPPF_10MB_FD: 10 Mbit/s full duplex.
    pub const F10MB_FD: u32 = 1 << 1;
    /// OFPPF_100MB_FD: 100 Mbit/s full duplex.
    pub const F100MB_FD: u32 = 1 << 3;
    /// OFPPF_1GB_FD: 1 Gbit/s full duplex.
    pub const F1GB_FD: u32 = 1 << 5;
    /// OFPPF_10GB_FD: 10 Gbit/s full duplex.
    pub const F10GB_FD: u32 = 1 << 6;
    /// OFPPF_COPPER: copper medium.
    pub const COPPER: u32 = 1 << 7;
}

/// The OFPPF_* full-duplex bit nearest below `mbps` (0 when unknown).
pub fn speed_bits(mbps: u32) -> u32 {
    match mbps {
        10_000.. => features::F10GB_FD,
        1_000.. => features::F1GB_FD,
        100.. => features::F100MB_FD,
        10.. => features::F10MB_FD,
        _ => 0,
    }
}

/// `ofp10_phy_port`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhyPort {
    /// `port_no`: the 16-bit OpenFlow port number.
    pub port_no: u16,
    /// `hw_addr`: the port's MAC address.
    pub hw_addr: [u8; 6],
    /// Up to 15 bytes.
    pub name: String,
    /// `config`: OFPPC_* bits (port down, no flood, ...).
    pub config: u32,
    /// OFPPS_LINK_DOWN = 1.
    pub state: u32,
    /// `curr`: OFPPF_* bits of the current link ([`features`]).
    pub curr: u32,
    /// `advertised`: OFPPF_* bits the port advertises.
    pub advertised: u32,
    /// `supported`: OFPPF_* bits the port supports.
    pub supported: u32,
    /// `peer`: OFPPF_* bits the link partner advertises.
    pub peer: u32,
}

impl PhyPort {
    /// Parses the 48 bytes at the front of `b`.
    pub fn parse(b: &[u8]) -> Result<PhyPort> {
        check_len(b, fp::LEN)?;
        Ok(PhyPort {
            port_no: u16_at(b, fp::PORT_NO),
            hw_addr: mac_at(b, fp::HW_ADDR),
            name: str_at(b, fp::NAME),
            config: u32_at(b, fp::CONFIG),
            state: u32_at(b, fp::STATE),
            curr: u32_at(b, fp::CURR),
            advertised: u32_at(b, fp::ADVERTISED),
            supported: u32_at(b, fp::SUPPORTED),
            peer: u32_at(b, fp::PEER),
        })
    }

    /// Appends the 48 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.port_no.to_be_bytes());
        out.extend_from_slice(&self.hw_addr);
        put_str(out, &self.name, fp::NAME.len());
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// OFPT_FEATURES_REPLY of OpenFlow 1.0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeaturesReply10 {
    /// Datapath id.
    pub datapath_id: u64,
    /// Packets the switch can buffer.
    pub n_buffers: u32,
    /// Tables.
    pub n_tables: u8,
    /// OFPC_* bits (1.0: FLOW_STATS 1, TABLE_STATS 2, PORT_STATS 4, STP 8,
    /// IP_REASM 0x20, QUEUE_STATS 0x40, ARP_MATCH_IP 0x80).
    pub capabilities: u32,
    /// Bit `n` set: OFPAT10 action type `n` supported.
    pub actions: u32,
    /// The ports.
    pub ports: Vec<PhyPort>,
}

impl FeaturesReply10 {
    /// Parses a whole message.
    pub fn parse(msg: &[u8]) -> Result<FeaturesReply10> {
        check_len(msg, ff::PORTS)?;
        let rest = &msg[ff::PORTS..];
        if !rest.len().is_multiple_of(fp::LEN) {
            return Err(Error::BadLength("port list not a multiple of 48 bytes"));
        }
        Ok(FeaturesReply10 {
            datapath_id: u64_at(msg, ff::DATAPATH_ID),
            n_buffers: u32_at(msg, ff::N_BUFFERS),
            n_tables: u8_at(msg, ff::N_TABLES),
            capabilities: u32_at(msg, ff::CAPABILITIES),
            actions: u32_at(msg, ff::ACTIONS),
            ports: rest
                .chunks_exact(fp::LEN)
                .map(PhyPort::parse)
                .collect::<Result<_>>()?,
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        ff::PORTS + fp::LEN * self.ports.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.datapath_id.to_be_bytes());
        out.extend_from_slice(&self.n_buffers.to_be_bytes());
        out.push(self.n_tables);
        zeros(out, 3);
        out.extend_from_slice(&self.capabilities.to_be_bytes());
        out.extend_from_slice(&self.actions.to_be_bytes());
        self.ports.iter().for_each(|p| p.emit(out));
    }
}

/// `ofp10_port_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortStats10 {
    /// `port_no`: the 16-bit OpenFlow port number.
    pub port_no: u16,
    /// `rx_packets`: frames received.
    pub rx_packets: u64,
    /// `tx_packets`: frames sent.
    pub tx_packets: u64,
    /// `rx_bytes`: bytes received.
    pub rx_bytes: u64,
    /// `tx_bytes`: bytes sent.
    pub tx_bytes: u64,
    /// `rx_dropped`: received frames dropped.
    pub rx_dropped: u64,
    /// `tx_dropped`: frames dropped on transmit.
    pub tx_dropped: u64,
    /// `rx_errors`: receive errors of any kind.
    pub rx_errors: u64,
    /// `tx_errors`: transmit errors of any kind.
    pub tx_errors: u64,
    /// `rx_frame_err`: frame alignment errors.
    pub rx_frame_err: u64,
    /// `rx_over_err`: receive overruns.
    pub rx_over_err: u64,
    /// `rx_crc_err`: CRC errors.
    pub rx_crc_err: u64,
    /// `collisions`: collisions.
    pub collisions: u64,
}

impl PortStats10 {
    fn counters(&self) -> [u64; 12] {
        [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ]
    }

    /// Parses the 104 bytes at the front of `b`.
    pub fn parse(b: &[u8]) -> Result<PortStats10> {
        check_len(b, fs::LEN)?;
        let c = |i: usize| u64_at(b, fs::COUNTERS + 8 * i..fs::COUNTERS + 8 * i + 8);
        Ok(PortStats10 {
            port_no: u16_at(b, fs::PORT_NO),
            rx_packets: c(0),
            tx_packets: c(1),
            rx_bytes: c(2),
            tx_bytes: c(3),
            rx_dropped: c(4),
            tx_dropped: c(5),
            rx_errors: c(6),
            tx_errors: c(7),
            rx_frame_err: c(8),
            rx_over_err: c(9),
            rx_crc_err: c(10),
            collisions: c(11),
        })
    }

    /// Appends the 104 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.port_no.to_be_bytes());
        zeros(out, 6);
        for c in self.counters() {
            out.extend_from_slice(&c.to_be_bytes());
        }
    }
}
