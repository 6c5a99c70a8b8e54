//! ofp_port (spec section 7.2.1), OFPT_PORT_STATUS (7.4.3), OFPT_PORT_MOD (7.3.4.3)
//! and ofp_port_stats (7.3.5.6).
//!
//! ```text
//! ofp_port: port_no (4) | pad (4) | hw_addr (6) | pad (2) | name[16] | config | state
//!           | curr | advertised | supported | peer | curr_speed | max_speed   (64 bytes)
//! ```

use crate::bytes::{mac_at, put_str, str_at, u32_at, u64_at, u8_at, zeros};
use crate::error::{check_len, exact_len};
use crate::field::{port as field, port_mod, port_stats, port_status};
use crate::Result;

/// OFPPC_* port config bits.
pub mod config {
    /// OFPPC_PORT_DOWN: the port is administratively down.
    pub const PORT_DOWN: u32 = 1 << 0;
    /// OFPPC_NO_RECV: drop every packet received on the port.
    pub const NO_RECV: u32 = 1 << 2;
    /// OFPPC_NO_FWD: drop packets forwarded to the port.
    pub const NO_FWD: u32 = 1 << 5;
    /// OFPPC_NO_PACKET_IN: send no packet-in for packets from the port.
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// OFPPS_* port state bits.
pub mod state {
    /// OFPPS_LINK_DOWN: no physical link.
    pub const LINK_DOWN: u32 = 1 << 0;
    /// OFPPS_BLOCKED: blocked (by STP, for instance).
    pub const BLOCKED: u32 = 1 << 1;
    /// OFPPS_LIVE: live for fast-failover groups.
    pub const LIVE: u32 = 1 << 2;
}

/// OFPPF_* port feature bits.
pub mod features {
    /// OFPPF_10MB_HD: 10 Mbit/s half duplex.
    pub const F_10MB_HD: u32 = 1 << 0;
    /// OFPPF_10MB_FD: 10 Mbit/s full duplex.
    pub const F_10MB_FD: u32 = 1 << 1;
    /// OFPPF_100MB_HD: 100 Mbit/s half duplex.
    pub const F_100MB_HD: u32 = 1 << 2;
    /// OFPPF_100MB_FD: 100 Mbit/s full duplex.
    pub const F_100MB_FD: u32 = 1 << 3;
    /// OFPPF_1GB_HD: 1 Gbit/s half duplex.
    pub const F_1GB_HD: u32 = 1 << 4;
    /// OFPPF_1GB_FD: 1 Gbit/s full duplex.
    pub const F_1GB_FD: u32 = 1 << 5;
    /// OFPPF_10GB_FD: 10 Gbit/s full duplex.
    pub const F_10GB_FD: u32 = 1 << 6;
    /// OFPPF_40GB_FD: 40 Gbit/s full duplex.
    pub const F_40GB_FD: u32 = 1 << 7;
    /// OFPPF_100GB_FD: 100 Gbit/s full duplex.
    pub const F_100GB_FD: u32 = 1 << 8;
    /// OFPPF_1TB_FD: 1 Tbit/s full duplex.
    pub const F_1TB_FD: u32 = 1 << 9;
    /// OFPPF_OTHER: another rate, not in the list.
    pub const OTHER: u32 = 1 << 10;
    /// OFPPF_COPPER: copper medium.
    pub const COPPER: u32 = 1 << 11;
    /// OFPPF_FIBER: fiber medium.
    pub const FIBER: u32 = 1 << 12;
    /// OFPPF_AUTONEG: auto-negotiation.
    pub const AUTONEG: u32 = 1 << 13;
    /// OFPPF_PAUSE: pause frames.
    pub const PAUSE: u32 = 1 << 14;
    /// OFPPF_PAUSE_ASYM: asymmetric pause frames.
    pub const PAUSE_ASYM: u32 = 1 << 15;
}

/// OFPPR_* port status reasons.
pub mod reason {
    /// OFPPR_ADD: the port was added.
    pub const ADD: u8 = 0;
    /// OFPPR_DELETE: the port was removed.
    pub const DELETE: u8 = 1;
    /// OFPPR_MODIFY: an attribute of the port changed.
    pub const MODIFY: u8 = 2;
}

/// Length of the name field, NUL included.
pub const OFP_MAX_PORT_NAME_LEN: usize = 16;

/// A port description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Port {
    /// Port number.
    pub port_no: u32,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name (at most 15 bytes are sent).
    pub name: String,
    /// [`config`] bits.
    pub config: u32,
    /// [`state`] bits.
    pub state: u32,
    /// Current [`features`].
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Features advertised by the peer.
    pub peer: u32,
    /// Current bit rate in kbps.
    pub curr_speed: u32,
    /// Maximum bit rate in kbps.
    pub max_speed: u32,
}

impl Port {
    /// Bytes on the wire.
    pub const LEN: usize = field::LEN;

    /// Parses an ofp_port at the front of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Port> {
        check_len(buf, field::LEN)?;
        Ok(Port {
            port_no: u32_at(buf, field::PORT_NO),
            hw_addr: mac_at(buf, field::HW_ADDR),
            name: str_at(buf, field::NAME),
            config: u32_at(buf, field::CONFIG),
            state: u32_at(buf, field::STATE),
            curr: u32_at(buf, field::CURR),
            advertised: u32_at(buf, field::ADVERTISED),
            supported: u32_at(buf, field::SUPPORTED),
            peer: u32_at(buf, field::PEER),
            curr_speed: u32_at(buf, field::CURR_SPEED),
            max_speed: u32_at(buf, field::MAX_SPEED),
        })
    }

    /// Appends the 64-byte ofp_port.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.port_no.to_be_bytes());
        zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        zeros(out, 2);
        put_str(out, &self.name, OFP_MAX_PORT_NAME_LEN);
        for w in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
    }
}

/// OFPT_PORT_STATUS: a port was added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// One of [`reason`].
    pub reason: u8,
    /// The port.
    pub desc: Port,
}

impl PortStatus {
    /// Parses a whole PORT_STATUS.
    pub fn parse(msg: &[u8]) -> Result<PortStatus> {
        exact_len(msg, port_status::LEN)?;
        Ok(PortStatus {
            reason: u8_at(msg, port_status::REASON),
            desc: Port::parse(&msg[port_status::DESC..])?,
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        port_status::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.reason);
        zeros(out, 7);
        self.desc.emit(out);
        Ok(())
    }
}

/// OFPT_PORT_MOD: change a port's config bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMod {
    /// Port number.
    pub port_no: u32,
    /// Must match the port's MAC (a sanity check by the controller).
    pub hw_addr: [u8; 6],
    /// New [`config`] bits.
    pub config: u32,
    /// Which config bits to change.
    pub mask: u32,
    /// Features to advertise (0: unchanged).
    pub advertise: u32,
}

impl PortMod {
    /// Parses a whole PORT_MOD.
    pub fn parse(msg: &[u8]) -> Result<PortMod> {
        exact_len(msg, port_mod::LEN)?;
        Ok(PortMod {
            port_no: u32_at(msg, port_mod::PORT_NO),
            hw_addr: mac_at(msg, port_mod::HW_ADDR),
            config: u32_at(msg, port_mod::CONFIG),
            mask: u32_at(msg, port_mod::MASK),
            advertise: u32_at(msg, port_mod::ADVERTISE),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        port_mod::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.port_no.to_be_bytes());
        zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        zeros(out, 2);
        out.extend_from_slice(&self.config.to_be_bytes());
        out.extend_from_slice(&self.mask.to_be_bytes());
        out.extend_from_slice(&self.advertise.to_be_bytes());
        zeros(out, 4);
        Ok(())
    }
}

/// One port's counters (a PORT_STATS multipart reply entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Port number.
    pub port_no: u32,
    /// Received packets.
    pub rx_packets: u64,
    /// Transmitted packets.
    pub tx_packets: u64,
    /// Received bytes.
    pub rx_bytes: u64,
    /// Transmitted bytes.
    pub tx_bytes: u64,
    /// Packets dropped by RX.
    pub rx_dropped: u64,
    /// Packets dropped by TX.
    pub tx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Frame alignment errors.
    pub rx_frame_err: u64,
    /// Packets with RX overrun.
    pub rx_over_err: u64,
    /// CRC errors.
    pub rx_crc_err: u64,
    /// Collisions.
    pub collisions: u64,
    /// Seconds the port has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond duration_sec.
    pub duration_nsec: u32,
}

impl PortStats {
    /// Bytes on the wire.
    pub const LEN: usize = port_stats::LEN;

    /// Parses one entry at the front of `buf`.
    pub fn parse(buf: &[u8]) -> Result<PortStats> {
        check_len(buf, port_stats::LEN)?;
        let c = |i: usize| {
            let at = port_stats::COUNTERS + 8 * i;
            u64_at(buf, at..at + 8)
        };
        Ok(PortStats {
            port_no: u32_at(buf, port_stats::PORT_NO),
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
            duration_sec: u32_at(buf, port_stats::DURATION_SEC),
            duration_nsec: u32_at(buf, port_stats::DURATION_NSEC),
        })
    }

    /// Appends the 112-byte entry.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.port_no.to_be_bytes());
        zeros(out, 4);
        for c in [
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
        ] {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(&self.duration_sec.to_be_bytes());
        out.extend_from_slice(&self.duration_nsec.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_round_trip() {
        let p = Port {
            port_no: 3,
            hw_addr: [2, 0, 0, 0, 0, 3],
            name: "a-very-long-port-name".into(),
            state: state::LIVE,
            curr_speed: 10_000_000,
            ..Port::default()
        };
        let mut out = Vec::new();
        p.emit(&mut out);
        assert_eq!(out.len(), 64);
        let q = Port::parse(&out).unwrap();
        assert_eq!(q.name, "a-very-long-por");
        assert_eq!(q.curr_speed, 10_000_000);
    }

    #[test]
    fn non_utf8_name_is_stable() {
        let mut b = vec![0u8; 64];
        b[16..32].copy_from_slice(&[0xd8; 16]);
        let p = Port::parse(&b).unwrap();
        assert_eq!(p.name, "???????????????");
        let mut out = Vec::new();
        p.emit(&mut out);
        assert_eq!(Port::parse(&out).unwrap(), p);
    }
}
