//! OpenFlow connections on sockets: a bridge's passive listeners
//! (`unix:RUNDIR/BRIDGE.mgmt` for `ovs-ofctl`, `ptcp:PORT[:IP]` from the
//! Bridge's `controller` column) and its active controller connections
//! (`tcp:IP[:PORT]`, reconnecting with backoff). One thread per listener
//! and per connection; each connection runs a [`Connection`].

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bridge::{AsyncPeer, Bridge};
use crate::conn::Connection;

/// OpenFlow's IANA port (`tcp:IP` without a port).
pub const DEFAULT_PORT: u16 = 6653;
/// How often a stopped listener or connection notices.
const TICK: Duration = Duration::from_millis(100);
/// Probe a silent controller after this long; drop it after three.
const PROBE: Duration = Duration::from_secs(5);

/// A stream a connection runs on.
trait Stream: Read + Write + Send + 'static {
    fn set_timeout(&self, d: Duration) -> std::io::Result<()>;
    /// A second handle that writes to the same socket.
    fn writer(&self) -> std::io::Result<Box<dyn Write + Send>>;
}

impl Stream for UnixStream {
    fn set_timeout(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))
    }

    fn writer(&self) -> std::io::Result<Box<dyn Write + Send>> {
        Ok(Box::new(self.try_clone()?))
    }
}

impl Stream for TcpStream {
    fn set_timeout(&self, d: Duration) -> std::io::Result<()> {
        self.set_nodelay(true)?;
        self.set_read_timeout(Some(d))
    }

    fn writer(&self) -> std::io::Result<Box<dyn Write + Send>> {
        Ok(Box::new(self.try_clone()?))
    }
}

/// A target from the `controller` column or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Connect to a controller.
    Tcp(SocketAddr),
    /// Listen for controllers and tools.
    Ptcp(SocketAddr),
    /// Listen on a unix socket.
    Punix(PathBuf),
    /// Connect to a unix socket.
    Unix(PathBuf),
}

impl Target {
    /// Parses `tcp:IP[:PORT]`, `ptcp:[PORT][:IP]`, `punix:PATH`, `unix:PATH`
    /// (OVS's syntax; IPv6 addresses in brackets).
    pub fn parse(s: &str) -> Result<Target, String> {
        let bad = || {
            format!("bad OpenFlow target {s:?} (tcp:IP[:PORT], ptcp:[PORT][:IP], punix:PATH, unix:PATH)")
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let ip_port = |ip: &str, port: Option<&str>| -> Result<SocketAddr, String> {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
            let port = match port {
                Some(p) if !p.is_empty() => p.parse().map_err(|_| bad())?,
                _ => DEFAULT_PORT,
            };
            Ok(SocketAddr::new(ip, port))
        };
        Ok(match kind {
            "tcp" => {
                let (ip, port) = match rest.rsplit_once(':') {
                    Some((ip, p)) if !ip.is_empty() && !ip.ends_with(':') => (ip, Some(p)),
                    _ => (rest, None),
                };
                Target::Tcp(ip_port(ip, port)?)
            }
            "ptcp" => {
                let (port, ip) = match rest.split_once(':') {
                    Some((p, ip)) => (p, ip),
                    None => (rest, "0.0.0.0"),
                };
                Target::Ptcp(ip_port(ip, Some(port))?)
            }
            "punix" if !rest.is_empty() => Target::Punix(rest.into()),
            "unix" if !rest.is_empty() => Target::Unix(rest.into()),
            _ => return Err(bad()),
        })
    }
}

/// Runs one connection until the peer goes, `stop` is raised, or (for a
/// controller) the peer stops answering echo requests. Controllers also
/// get the bridge's asynchronous messages (packet-ins), written under the
/// same lock as the replies so messages never interleave.
fn serve<S: Stream>(mut s: S, br: Arc<Bridge>, stop: Arc<AtomicBool>, controller: bool) {
    let mut c = Connection::new();
    let Ok(w) = s.writer() else { return };
    let peer = Arc::new(AsyncPeer {
        writer: Mutex::new(w),
        ready: AtomicBool::new(false),
        closed: AtomicBool::new(false),
    });
    let send = |bytes: &[u8]| -> bool {
        let mut w = peer.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(bytes).is_ok()
    };
    if s.set_timeout(TICK).is_err() || !send(&c.hello_for(&br)) {
        return;
    }
    if controller {
        br.add_peer(Arc::clone(&peer));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut heard = Instant::now();
    let mut probed = Instant::now();
    while !stop.load(Ordering::Relaxed) && !peer.closed.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                heard = Instant::now();
                out.clear();
                let r = c.receive(&buf[..n], &br, &mut out);
                if !out.is_empty() && !send(&out) {
                    break;
                }
                // Asynchronous messages are 1.3 messages: a 1.0 connection
                // gets none.
                if c.is_negotiated() && c.version() == openflow::VERSION {
                    peer.ready.store(true, Ordering::Relaxed);
                }
                if let Err(e) = r {
                    eprintln!("ofproto {}: closing a connection: {e:?}", br.name);
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
        if controller && heard.elapsed() > PROBE && probed.elapsed() > PROBE {
            if heard.elapsed() > PROBE * 3 {
                eprintln!(
                    "ofproto {}: controller silent for 15 s, disconnecting",
                    br.name
                );
                break;
            }
            probed = Instant::now();
            if !send(&c.echo_request()) {
                break;
            }
        }
    }
    peer.closed.store(true, Ordering::Relaxed);
}

/// A running listener or controller connection; stopped on drop.
pub struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    connected: Arc<AtomicUsize>,
    cleanup: Option<PathBuf>,
    /// What it serves.
    pub target: String,
}

impl Service {
    /// Connections open now (an active controller: 0 or 1).
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.cleanup {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Serves a connection on its own thread, counting it in `connected`.
fn spawn_conn<S: Stream>(
    s: S,
    br: &Arc<Bridge>,
    stop: &Arc<AtomicBool>,
    connected: &Arc<AtomicUsize>,
    probe: bool,
) -> Option<JoinHandle<()>> {
    let (br, stop, connected) = (Arc::clone(br), Arc::clone(stop), Arc::clone(connected));
    std::thread::Builder::new()
        .name(format!("ofconn-{}", br.name))
        .spawn(move || {
            connected.fetch_add(1, Ordering::Relaxed);
            serve(s, br, stop, probe);
            connected.fetch_sub(1, Ordering::Relaxed);
        })
        .ok()
}

/// Accepts connections until stopped; each is served on its own thread.
fn accept_loop<S: Stream>(
    mut accept: impl FnMut() -> std::io::Result<S> + Send + 'static,
    br: Arc<Bridge>,
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicUsize>,
    probe: bool,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("oflisten-{}", br.name))
        .spawn(move || {
            let mut conns: Vec<JoinHandle<()>> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match accept() {
                    Ok(s) => {
                        conns.retain(|t| !t.is_finished());
                        if let Some(t) = spawn_conn(s, &br, &stop, &connected, probe) {
                            conns.push(t);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
                    Err(_) => std::thread::sleep(TICK),
                }
            }
            for t in conns {
                let _ = t.join();
            }
        })
}

/// Starts serving `target` for bridge `br`.
pub fn start(br: &Arc<Bridge>, target: &str) -> Result<Service, String> {
    let t = Target::parse(target)?;
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Arc::new(AtomicUsize::new(0));
    let (thread, cleanup) = match t {
        Target::Punix(path) => {
            let l = listen_unix(&path)?;
            let th = accept_loop(
                move || l.accept().map(|(s, _)| s),
                Arc::clone(br),
                Arc::clone(&stop),
                Arc::clone(&connected),
                false,
            );
            (th, Some(path))
        }
        Target::Ptcp(addr) => {
            let l = TcpListener::bind(addr).map_err(|e| format!("{target}: {e}"))?;
            l.set_nonblocking(true)
                .map_err(|e| format!("{target}: {e}"))?;
            let th = accept_loop(
                move || {
                    let (s, _) = l.accept()?;
                    s.set_nonblocking(false)?;
                    Ok(s)
                },
                Arc::clone(br),
                Arc::clone(&stop),
                Arc::clone(&connected),
                true,
            );
            (th, None)
        }
        Target::Tcp(addr) => (
            active(
                Arc::clone(br),
                Arc::clone(&stop),
                Arc::clone(&connected),
                move || TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
            ),
            None,
        ),
        Target::Unix(path) => (
            active(
                Arc::clone(br),
                Arc::clone(&stop),
                Arc::clone(&connected),
                move || UnixStream::connect(&path),
            ),
            None,
        ),
    };
    let thread = thread.map_err(|e| format!("{target}: cannot start a thread: {e}"))?;
    Ok(Service {
        stop,
        thread: Some(thread),
        connected,
        cleanup,
        target: target.to_owned(),
    })
}

fn listen_unix(path: &Path) -> Result<UnixListener, String> {
    if path.exists() {
        // A socket nobody answers on is a leftover of a killed process.
        if UnixStream::connect(path).is_ok() {
            return Err(format!("{} is served by another process", path.display()));
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(l)
}

/// Keeps one connection to a controller, reconnecting with backoff
/// (100 ms doubling to 4 s).
fn active<S: Stream>(
    br: Arc<Bridge>,
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicUsize>,
    connect: impl Fn() -> std::io::Result<S> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("ofctl-{}", br.name))
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            while !stop.load(Ordering::Relaxed) {
                match connect() {
                    Ok(s) => {
                        backoff = Duration::from_millis(100);
                        connected.fetch_add(1, Ordering::Relaxed);
                        serve(s, Arc::clone(&br), Arc::clone(&stop), true);
                        connected.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        let until = Instant::now() + backoff;
                        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(TICK);
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(4));
                    }
                }
            }
        })
}

/// The set of services of one bridge, changed to match a list of targets.
#[derive(Default)]
pub struct Services {
    running: Mutex<Vec<Service>>,
}

impl Services {
    /// Starts the targets not running yet and stops those not listed;
    /// returns the errors of targets that could not start.
    pub fn set(&self, br: &Arc<Bridge>, targets: &[String]) -> Vec<String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|s| targets.contains(&s.target));
        let mut errors = Vec::new();
        for t in targets {
            if running.iter().any(|s| &s.target == t) {
                continue;
            }
            match start(br, t) {
                Ok(s) => running.push(s),
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Connections open on targets matching `pred`.
    pub fn connected(&self, pred: impl Fn(&str) -> bool) -> usize {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .iter()
            .filter(|s| pred(&s.target))
            .map(Service::connected)
            .sum()
    }

    /// Stops everything.
    pub fn clear(&self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets_as_ovs_writes_them() {
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6653"),
            Ok(Target::Tcp("127.0.0.1:6653".parse().unwrap()))
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1"),
            Ok(Target::Tcp("127.0.0.1:6653".parse().unwrap()))
        );
        assert_eq!(
            Target::parse("ptcp:6634"),
            Ok(Target::Ptcp("0.0.0.0:6634".parse().unwrap()))
        );
        assert_eq!(
            Target::parse("ptcp:6634:127.0.0.1"),
            Ok(Target::Ptcp("127.0.0.1:6634".parse().unwrap()))
        );
        assert_eq!(
            Target::parse("tcp:[::1]:6653"),
            Ok(Target::Tcp("[::1]:6653".parse().unwrap()))
        );
        assert_eq!(
            Target::parse("punix:/run/br0.mgmt"),
            Ok(Target::Punix("/run/br0.mgmt".into()))
        );
        for bad in [
            "tcp:",
            "ssl:1.2.3.4",
            "tcp:host:99999",
            "punix:",
            "nonsense",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
