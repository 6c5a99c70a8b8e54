//! Idle timeouts per protocol state, with the defaults of OVS's user-space
//! tracker (`lib/conntrack-tp.c`, `ct_dpif_netdev_tp_def`, in seconds).

/// Which timeout a connection's state selects (OVS's `enum ct_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tm {
    /// TCP: only the first packet (SYN) seen. `tcp_syn_sent`, 30 s.
    TcpFirstPacket,
    /// TCP: opening (one side not established yet). `tcp_syn_recv`, 30 s.
    TcpOpening,
    /// TCP: both sides established. `tcp_established`, 24 h.
    TcpEstablished,
    /// TCP: one side has sent a FIN. `tcp_fin_wait`, 15 min.
    TcpClosing,
    /// TCP: both sides have sent a FIN. `tcp_time_wait`, 45 s.
    TcpFinWait,
    /// TCP: both FINs acknowledged or a RST. `tcp_close`, 30 s.
    TcpClosed,
    /// UDP/other: one packet seen. `udp_first`, 60 s.
    OtherFirst,
    /// UDP/other: more packets, one direction only. `udp_single`, 60 s.
    OtherMultiple,
    /// UDP/other: packets in both directions. `udp_multiple`, 30 s.
    OtherBidir,
    /// ICMP: request seen. `icmp_first`, 60 s.
    IcmpFirst,
    /// ICMP: reply seen. `icmp_reply`, 30 s.
    IcmpReply,
}

impl Tm {
    /// The timeout in milliseconds.
    #[inline]
    pub(crate) fn ms(self) -> u64 {
        let s: u64 = match self {
            Tm::TcpFirstPacket => 30,
            Tm::TcpOpening => 30,
            Tm::TcpEstablished => 24 * 60 * 60,
            Tm::TcpClosing => 15 * 60,
            Tm::TcpFinWait => 45,
            Tm::TcpClosed => 30,
            Tm::OtherFirst => 60,
            Tm::OtherMultiple => 60,
            Tm::OtherBidir => 30,
            Tm::IcmpFirst => 60,
            Tm::IcmpReply => 30,
        };
        s * 1000
    }
}
