//! [`TcpStack`]: a smoltcp interface on a [`PortDevice`]; [`UserTcp`]: one
//! TCP connection on it, as a `blk_iscsi` transport (several connections,
//! e.g. one per iSCSI session, share one stack and one port).

use crate::device::PortDevice;
use blk_iscsi::link::Transport;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};
use std::io;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Socket buffer sizes (each direction).
const SOCKET_BUFFER: usize = 1 << 20;

/// Where the stack lives: `ADDR/PREFIX@DEVARGS`, e.g.
/// `10.77.0.1/24@net_af_packet0,iface=veth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTcpConfig {
    /// Our IPv4 address.
    pub addr: Ipv4Address,
    /// Prefix length of the on-link network.
    pub prefix: u8,
    /// DPDK devargs of the port.
    pub devargs: String,
}

impl UserTcpConfig {
    /// Parses `ADDR/PREFIX@DEVARGS`.
    pub fn parse(s: &str) -> Result<UserTcpConfig, String> {
        let bad = |why: &str| format!("user TCP `{s}`: {why} (expected ADDR/PREFIX@DEVARGS)");
        let (cidr, devargs) = s.split_once('@').ok_or_else(|| bad("no @"))?;
        let (addr, prefix) = cidr.split_once('/').ok_or_else(|| bad("no /PREFIX"))?;
        let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad("bad IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .ok_or_else(|| bad("prefix must be 1..32"))?;
        if devargs.is_empty() {
            return Err(bad("empty devargs"));
        }
        Ok(UserTcpConfig {
            addr,
            prefix,
            devargs: devargs.to_owned(),
        })
    }
}

/// A smoltcp interface on a DPDK port: one address, any number of TCP
/// connections ([`TcpStack::connection`]). Every connection's `poll` polls
/// the whole interface, so whichever thread polls one serves them all (in
/// `vswitch run`, the switch's core).
#[derive(Clone)]
pub struct TcpStack {
    inner: Arc<Mutex<Stack>>,
}

struct Stack {
    dev: PortDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    next_port: u16,
    /// A socket changed (data queued or read, connect, abort) or the last
    /// poll changed socket state: the next poll must run.
    dirty: bool,
    /// Polls skipped since the last one that ran.
    skipped: u32,
}

/// Egress passes per poll at most (one segment per socket each).
const EGRESS_PER_POLL: usize = 32;

/// An idle stack still runs every this many polls (smoltcp's timers:
/// retransmission, keep-alive, ARP retries).
const IDLE_POLL_EVERY: u32 = 64;

impl Stack {
    /// Runs smoltcp when there is something to do: frames received, a
    /// socket changed, or every [`IDLE_POLL_EVERY`] calls for the timers.
    /// Callers spin on this (the switch core), and an idle poll would
    /// otherwise read the clock and walk every socket each time.
    fn poll(&mut self) {
        if !self.dirty && self.skipped < IDLE_POLL_EVERY && !self.dev.rx_pending() {
            self.skipped += 1;
            return;
        }
        self.force_poll();
    }

    fn force_poll(&mut self) {
        self.skipped = 0;
        let t = now();
        let r = self.iface.poll(t, &mut self.dev, &mut self.sockets);
        let mut changed = r == PollResult::SocketStateChanged;
        // smoltcp's egress sends at most one segment per socket per call: a
        // 4 KiB write is three segments. Send what the windows allow now,
        // up to a burst, so it leaves in one burst (one system call on an
        // af_packet port, one wake-up for the peer) instead of one per poll.
        for _ in 1..EGRESS_PER_POLL {
            let built = self.dev.tx_built();
            changed |= self.iface.poll_egress(t, &mut self.dev, &mut self.sockets)
                == PollResult::SocketStateChanged;
            if self.dev.tx_built() == built {
                break;
            }
        }
        self.dirty = changed;
        self.dev.flush();
    }
}

/// One TCP connection over smoltcp on a DPDK port.
pub struct UserTcp {
    stack: Arc<Mutex<Stack>>,
    handle: SocketHandle,
    open: bool,
    established: bool,
}

fn now() -> Instant {
    Instant::now()
}

impl TcpStack {
    /// Sets up the interface on an opened device with address
    /// `addr/prefix` and MAC `mac` (default: derived from the port's).
    pub fn on_device(
        mut dev: PortDevice,
        addr: Ipv4Address,
        prefix: u8,
        mac: Option<[u8; 6]>,
    ) -> Result<TcpStack, String> {
        // A MAC of our own (locally administered, unicast), distinct from the
        // kernel interface's, so the host stack ignores our frames: on an
        // af_packet port the kernel sees the same wire.
        let mac = mac.unwrap_or_else(|| {
            let mut mac = dev.mac();
            mac[0] = (mac[0] | 0x02) & 0xfe;
            mac[5] ^= 0x5a;
            mac
        });
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(format!(
                "user TCP MAC {mac:02x?} must be a unicast, non-zero address"
            ));
        }
        let mut c = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        c.random_seed = std::process::id() as u64 ^ 0x5eed;
        let mut iface = Interface::new(c, &mut dev, now());
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(addr), prefix));
        });
        Ok(TcpStack {
            inner: Arc::new(Mutex::new(Stack {
                dev,
                iface,
                // Owned storage: grows with each connection.
                sockets: SocketSet::new(Vec::<SocketStorage>::new()),
                next_port: 49152 + (std::process::id() % 8192) as u16,
                dirty: true,
                skipped: 0,
            })),
        })
    }

    /// A new (not yet connected) TCP connection on this interface.
    pub fn connection(&self) -> UserTcp {
        let sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        );
        let handle = lock(&self.inner).sockets.add(sock);
        UserTcp {
            stack: Arc::clone(&self.inner),
            handle,
            open: false,
            established: false,
        }
    }
}

/// The stack's lock (all users poll from one thread; a panic elsewhere
/// leaves it usable).
fn lock(m: &Mutex<Stack>) -> MutexGuard<'_, Stack> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl UserTcp {
    /// Opens the port (the EAL must be initialised) and sets up a stack
    /// with this one connection.
    pub fn open(cfg: &UserTcpConfig) -> Result<UserTcp, String> {
        let dev = PortDevice::open(&cfg.devargs)?;
        Ok(TcpStack::on_device(dev, cfg.addr, cfg.prefix, None)?.connection())
    }
}

impl Drop for UserTcp {
    fn drop(&mut self) {
        let mut st = lock(&self.stack);
        st.sockets.get_mut::<tcp::Socket>(self.handle).abort();
        st.force_poll();
        st.sockets.remove(self.handle);
    }
}

impl Transport for UserTcp {
    fn connect(&mut self, portal: &str, _timeout: Duration) -> io::Result<()> {
        let to: SocketAddrV4 = portal.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("user TCP needs an IPv4 portal ADDR:PORT, not {portal}"),
            )
        })?;
        self.close();
        let mut guard = lock(&self.stack);
        let st = &mut *guard;
        st.next_port = if st.next_port >= 65000 {
            49152
        } else {
            st.next_port + 1
        };
        let local = st.next_port;
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        s.set_nagle_enabled(false);
        // Delayed ACKs (smoltcp default 10 ms) hold back the target's next
        // segments when its window or Nagle waits for them.
        s.set_ack_delay(None);
        s.set_timeout(Some(smoltcp::time::Duration::from_secs(10)));
        s.connect(
            st.iface.context(),
            (IpAddress::Ipv4(*to.ip()), to.port()),
            local,
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        self.open = true;
        self.established = false;
        st.force_poll();
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open
    }

    fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut st = lock(&self.stack);
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        match s.state() {
            State::SynSent | State::SynReceived => Err(io::ErrorKind::WouldBlock.into()),
            State::Established | State::CloseWait => match s.send_slice(data) {
                Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                Ok(n) => {
                    st.dirty = true;
                    Ok(n)
                }
                Err(e) => Err(io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())),
            },
            st => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("TCP state {st}"),
            )),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let established = self.established;
        let mut st = lock(&self.stack);
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        let state = s.state();
        if state == State::Established {
            self.established = true;
        }
        if s.can_recv() {
            let r = s
                .recv_slice(buf)
                .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()));
            // The window opened: the next poll may owe the peer an update.
            st.dirty = true;
            return r;
        }
        match state {
            State::SynSent | State::SynReceived | State::Established => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            State::Closed if !established => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection not established",
            )),
            // The peer closed (FIN or RST) and everything was read.
            _ => Ok(0),
        }
    }

    fn close(&mut self) {
        if self.open {
            let mut st = lock(&self.stack);
            st.sockets.get_mut::<tcp::Socket>(self.handle).abort();
            st.force_poll();
        }
        self.open = false;
        self.established = false;
    }

    fn poll(&mut self) {
        lock(&self.stack).poll();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let c = UserTcpConfig::parse("10.77.0.1/24@net_af_packet0,iface=veth0").unwrap();
        assert_eq!(c.addr, Ipv4Address::new(10, 77, 0, 1));
        assert_eq!(c.prefix, 24);
        assert_eq!(c.devargs, "net_af_packet0,iface=veth0");
        for bad in [
            "",
            "10.0.0.1/24",
            "10.0.0.1@x",
            "10.0.0.1/33@x",
            "x/24@y",
            "10.0.0.1/24@",
        ] {
            assert!(UserTcpConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
