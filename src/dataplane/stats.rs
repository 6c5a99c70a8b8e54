//! Per-port statistics: periodic rates and the final summary, as a table or
//! as JSON lines.

use serde::Serialize;

/// Counters of one port at one instant.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct PortSample {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Drops: rx misses, rx/tx errors, mbuf shortage and packets the tx
    /// queue refused.
    pub drops: u64,
}

/// Rates of one port between two samples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PortRates {
    /// Port index.
    pub port: usize,
    /// Device name.
    pub name: String,
    /// Received packets per second.
    pub rx_pps: f64,
    /// Sent packets per second.
    pub tx_pps: f64,
    /// Received bits per second.
    pub rx_bps: f64,
    /// Sent bits per second.
    pub tx_bps: f64,
    /// Drops per second.
    pub drops_ps: f64,
    /// Cumulative counters.
    pub total: PortSample,
}

/// Rates from two samples `secs` apart.
pub fn rates(port: usize, name: &str, prev: &PortSample, cur: &PortSample, secs: f64) -> PortRates {
    let per = |a: u64, b: u64| {
        if secs > 0.0 {
            b.saturating_sub(a) as f64 / secs
        } else {
            0.0
        }
    };
    PortRates {
        port,
        name: name.to_owned(),
        rx_pps: per(prev.rx_packets, cur.rx_packets),
        tx_pps: per(prev.tx_packets, cur.tx_packets),
        rx_bps: per(prev.rx_bytes, cur.rx_bytes) * 8.0,
        tx_bps: per(prev.tx_bytes, cur.tx_bytes) * 8.0,
        drops_ps: per(prev.drops, cur.drops),
        total: *cur,
    }
}

/// A human line for one port.
pub fn format_line(r: &PortRates) -> String {
    format!(
        "port {:<2} {:<14} rx {:>9.3} Mpps {:>8.1} Mbps | tx {:>9.3} Mpps {:>8.1} Mbps | drops {:>9.0}/s (total rx {} tx {} drops {})",
        r.port,
        truncate(&r.name, 14),
        r.rx_pps / 1e6,
        r.rx_bps / 1e6,
        r.tx_pps / 1e6,
        r.tx_bps / 1e6,
        r.drops_ps,
        r.total.rx_packets,
        r.total.tx_packets,
        r.total.drops
    )
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_deltas() {
        let a = PortSample {
            rx_packets: 100,
            tx_packets: 50,
            rx_bytes: 6400,
            tx_bytes: 3200,
            drops: 0,
        };
        let b = PortSample {
            rx_packets: 300,
            tx_packets: 250,
            rx_bytes: 19200,
            tx_bytes: 16000,
            drops: 10,
        };
        let r = rates(1, "net_null0", &a, &b, 2.0);
        assert_eq!(r.rx_pps, 100.0);
        assert_eq!(r.tx_pps, 100.0);
        assert_eq!(r.rx_bps, (19200.0 - 6400.0) * 8.0 / 2.0);
        assert_eq!(r.drops_ps, 5.0);
        let line = format_line(&r);
        assert!(
            line.contains("net_null0") && line.contains("drops"),
            "{line}"
        );
    }

    #[test]
    fn counter_reset_does_not_underflow() {
        let a = PortSample {
            rx_packets: 10,
            ..Default::default()
        };
        let r = rates(0, "p", &a, &PortSample::default(), 1.0);
        assert_eq!(r.rx_pps, 0.0);
        assert_eq!(rates(0, "p", &a, &a, 0.0).rx_pps, 0.0);
    }
}
