//! The server loop: a unix stream socket (SPDK's default transport, what
//! `rpc.py -s PATH` connects to), one thread per connection, each feeding
//! a [`Decoder`] and answering every complete value through the handler,
//! one response per line (SPDK ends each response with `\n`).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::decoder::{Decoder, Next};
use crate::error::RpcError;
use crate::request::response;

/// Answers one received JSON value (`None`: nothing to send back).
pub type Handler = Arc<dyn Fn(Value) -> Option<Value> + Send + Sync>;

/// A running server; dropping it stops it and removes the socket.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often blocked reads and accepts look at the stop flag.
const TICK: Duration = Duration::from_millis(100);

impl Server {
    /// Listens on `path` (a stale socket file nobody answers on is
    /// replaced; one a live server answers on is an error) and serves
    /// until dropped.
    pub fn start(path: &Path, handler: Handler) -> std::io::Result<Server> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is served by a running process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vswitch-rpc".into())
            .spawn(move || accept_loop(&listener, &handler, &st))?;
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &UnixListener, handler: &Handler, stop: &Arc<AtomicBool>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((s, _)) => {
                let (h, st) = (Arc::clone(handler), Arc::clone(stop));
                match std::thread::Builder::new()
                    .name("vswitch-rpc-conn".into())
                    .spawn(move || serve_conn(s, &h, &st))
                {
                    Ok(t) => conns.push(t),
                    Err(e) => eprintln!("rpc: cannot start a connection thread: {e}"),
                }
                conns.retain(|t| !t.is_finished());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) => {
                eprintln!("rpc: accept: {e}");
                std::thread::sleep(TICK);
            }
        }
    }
    for t in conns {
        let _ = t.join();
    }
}

/// Serves one connection until the peer closes it, sends invalid JSON
/// (answered with a parse error first), or the server stops.
pub fn serve_conn(mut s: UnixStream, handler: &Handler, stop: &AtomicBool) {
    if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let mut dec = Decoder::new();
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Acquire) {
        let n = match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        dec.push(&buf[..n]);
        loop {
            let reply = match dec.next_value() {
                Next::Incomplete => break,
                Next::Invalid => {
                    let _ = send(&mut s, &response(Value::Null, Err(RpcError::parse())));
                    return;
                }
                Next::Value(v) => handler(v),
            };
            if let Some(r) = reply {
                if send(&mut s, &r).is_err() {
                    return;
                }
            }
        }
    }
}

fn send(s: &mut UnixStream, v: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    text.push(b'\n');
    s.write_all(&text)
}
