//! A blocking RFC 7047 client: one connection, a reader thread, replies
//! matched to requests by id, `echo` probes answered, notifications on a channel.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{json, Value};

use crate::jsonrpc::{decode_stream, Message};
use crate::target::{Stream, Target};
use crate::Error;

/// A notification from the server (`update`, `locked`, ...), RFC 7047 §4.1.6.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Method name, e.g. `update`.
    pub method: String,
    /// Its parameters: for `update`, `[<json-value>, <table-updates>]`.
    pub params: Value,
}

/// Where a reply goes: the waiting request's method and its channel.
type Waiter = (String, Sender<Result<Value, Error>>);

/// State shared between the owner and the reader thread.
struct Shared {
    /// Outstanding requests by id; `None` once the connection is closed.
    pending: Mutex<Option<HashMap<u64, Waiter>>>,
    /// Why the reader stopped, for the owner's log.
    close_reason: Mutex<Option<String>>,
    /// How many `echo` requests of the server were answered.
    echoes_answered: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the connection down with a second panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection to an OVSDB server.
///
/// Requests block the calling thread until their reply arrives or the
/// timeout passes. Dropping the client closes the connection.
pub struct Client {
    writer: Arc<Mutex<Stream>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    timeout: Duration,
    reader: Option<JoinHandle<()>>,
}

impl Client {
    /// Connects to `target` (`unix:PATH` or `tcp:IP:PORT`). `timeout` bounds
    /// the connect and every later request. Returns the client and the
    /// channel of the server's notifications, which closes with the connection.
    pub fn connect(
        target: &str,
        timeout: Duration,
    ) -> Result<(Client, Receiver<Notification>), Error> {
        Self::connect_to(&Target::parse(target)?, timeout)
    }

    /// [`Client::connect`] for an already parsed target.
    pub fn connect_to(
        target: &Target,
        timeout: Duration,
    ) -> Result<(Client, Receiver<Notification>), Error> {
        let stream = target.connect(timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        let read_half = stream.try_clone()?;
        let writer = Arc::new(Mutex::new(stream));
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
            close_reason: Mutex::new(None),
            echoes_answered: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let reader = {
            let writer = writer.clone();
            let shared = shared.clone();
            thread::Builder::new()
                .name("ovsdb-reader".into())
                .spawn(move || read_loop(read_half, writer, shared, tx))?
        };
        Ok((
            Client {
                writer,
                shared,
                next_id: AtomicU64::new(1),
                timeout,
                reader: Some(reader),
            },
            rx,
        ))
    }

    /// Sends `method(params)` and waits for its reply's `result`.
    /// A non-null `error` in the reply is an [`Error::Rpc`].
    pub fn request(&self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        match lock(&self.shared.pending).as_mut() {
            Some(p) => p.insert(id, (method.to_string(), tx)),
            None => return Err(Error::Closed),
        };
        let msg = Message::Request {
            id: json!(id),
            method: method.to_string(),
            params,
        };
        if let Err(e) = write_message(&self.writer, &msg) {
            if let Some(p) = lock(&self.shared.pending).as_mut() {
                p.remove(&id);
            }
            return Err(e);
        }
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(p) = lock(&self.shared.pending).as_mut() {
                    p.remove(&id);
                }
                Err(Error::Timeout(format!("{method} (id {id})")))
            }
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// `echo` (RFC 7047 §4.1.11): a liveness check; the server must return the params.
    pub fn echo(&self) -> Result<(), Error> {
        let r = self.request("echo", json!(["vswitch"]))?;
        if r != json!(["vswitch"]) {
            return Err(Error::Protocol(format!("echo returned {r}")));
        }
        Ok(())
    }

    /// `list_dbs` (RFC 7047 §4.1.1): the names of the server's databases.
    pub fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let r = self.request("list_dbs", json!([]))?;
        serde_json::from_value(r.clone())
            .map_err(|_| Error::Protocol(format!("list_dbs returned {r}")))
    }

    /// `get_schema` (RFC 7047 §4.1.2): the database's schema, as sent.
    pub fn get_schema(&self, db: &str) -> Result<Value, Error> {
        let r = self.request("get_schema", json!([db]))?;
        if !r.is_object() {
            return Err(Error::Protocol(format!("get_schema returned {r}")));
        }
        Ok(r)
    }

    /// `transact` (RFC 7047 §4.1.3): runs `ops` atomically and returns one
    /// result per operation. A failed operation, or a failed commit (the extra
    /// element after the last operation's result), is an [`Error::Transaction`].
    pub fn transact(&self, db: &str, ops: Vec<Value>) -> Result<Vec<Value>, Error> {
        let n = ops.len();
        let mut params = vec![json!(db)];
        params.extend(ops);
        let r = self.request("transact", Value::Array(params))?;
        let Value::Array(results) = r else {
            return Err(Error::Protocol(format!("transact returned {r}")));
        };
        // RFC 7047 §4.1.3 (paraphrased): one result per operation; a failed
        // operation's result is an object with an "error" member and the
        // operations after it are not executed; if every operation succeeded
        // but the commit failed, one extra error element follows.
        for (index, res) in results.iter().enumerate() {
            if let Some(err) = res.get("error") {
                if err.is_null() {
                    continue;
                }
                return Err(Error::Transaction {
                    index,
                    error: err.as_str().map_or_else(|| err.to_string(), str::to_string),
                    details: res
                        .get("details")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
        if results.len() < n {
            return Err(Error::Protocol(format!(
                "transact returned {} results for {n} operations",
                results.len()
            )));
        }
        Ok(results)
    }

    /// `monitor` (RFC 7047 §4.1.5): starts a monitor named `monitor_id` and
    /// returns the initial `<table-updates>`; later changes arrive as `update`
    /// notifications carrying the same id.
    pub fn monitor(&self, db: &str, monitor_id: Value, requests: Value) -> Result<Value, Error> {
        let r = self.request("monitor", json!([db, monitor_id, requests]))?;
        if !r.is_object() {
            return Err(Error::Protocol(format!("monitor returned {r}")));
        }
        Ok(r)
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.pending).is_none()
    }

    /// How many inactivity probes (`echo` requests) of the server were answered.
    pub fn echoes_answered(&self) -> u64 {
        self.shared.echoes_answered.load(Ordering::Relaxed)
    }

    /// Why the connection closed, if it did.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.shared.close_reason).clone()
    }

    /// Closes the connection; outstanding and later requests fail with [`Error::Closed`].
    pub fn close(&self) {
        lock(&self.writer).shutdown();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn write_message(writer: &Mutex<Stream>, msg: &Message) -> Result<(), Error> {
    let mut bytes = serde_json::to_vec(&msg.to_json())
        .map_err(|e| Error::Protocol(format!("cannot encode request: {e}")))?;
    bytes.push(b'\n');
    let mut w = lock(writer);
    w.write_all(&bytes)?;
    w.flush()?;
    Ok(())
}

fn read_loop(
    stream: Stream,
    writer: Arc<Mutex<Stream>>,
    shared: Arc<Shared>,
    notifications: Sender<Notification>,
) {
    let reason = loop_messages(stream, &writer, &shared, &notifications);
    *lock(&shared.close_reason) = Some(reason);
    // Fail everything outstanding; later requests see `None` and fail at once.
    let pending = lock(&shared.pending).take();
    for (_, (_, tx)) in pending.into_iter().flatten() {
        let _ = tx.send(Err(Error::Closed));
    }
    lock(&writer).shutdown();
    // `notifications` drops here, closing the owner's channel.
}

fn loop_messages(
    stream: Stream,
    writer: &Mutex<Stream>,
    shared: &Shared,
    notifications: &Sender<Notification>,
) -> String {
    for msg in decode_stream(BufReader::new(stream)) {
        match msg {
            Err(e) => return e.to_string(),
            Ok(Message::Response { id, result, error }) => {
                let Some(id) = id.as_u64() else {
                    eprintln!("ovsdb: reply with an id we never sent: {id}");
                    continue;
                };
                let waiter = lock(&shared.pending).as_mut().and_then(|p| p.remove(&id));
                // A reply whose request timed out is dropped.
                if let Some((method, tx)) = waiter {
                    let r = if error.is_null() {
                        Ok(result)
                    } else {
                        Err(Error::Rpc { method, error })
                    };
                    let _ = tx.send(r);
                }
            }
            Ok(Message::Request { id, method, params }) => {
                // RFC 7047 §4.1.11: either side may send echo; ovsdb-server uses
                // it as an inactivity probe and drops clients that do not answer.
                let reply = if method == "echo" {
                    Message::Response {
                        id,
                        result: params,
                        error: Value::Null,
                    }
                } else {
                    Message::Response {
                        id,
                        result: Value::Null,
                        error: json!({"error": "unknown method", "details": method}),
                    }
                };
                if let Err(e) = write_message(writer, &reply) {
                    return format!("cannot answer {method}: {e}");
                }
                if method == "echo" {
                    shared.echoes_answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Message::Notification { method, params }) => {
                let _ = notifications.send(Notification { method, params });
            }
        }
    }
    "server closed the connection".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;

    /// A scripted server on a Unix socket: `script` gets the accepted stream.
    fn fake_server(
        name: &str,
        script: impl FnOnce(UnixStream) + Send + 'static,
    ) -> (PathBuf, JoinHandle<()>) {
        let path =
            std::env::temp_dir().join(format!("ovsdb-client-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let t = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            script(s);
        });
        (path, t)
    }

    fn next(it: &mut impl Iterator<Item = Result<Message, Error>>) -> Message {
        it.next().unwrap().unwrap()
    }

    #[test]
    fn parse_server_echo_and_split_replies() {
        let (path, t) = fake_server("echo", |s| {
            let mut w = s.try_clone().unwrap();
            let mut msgs = decode_stream(s);
            // The server probes us first; we must answer with its params.
            w.write_all(br#"{"id":"echo","method":"echo","params":[]}"#)
                .unwrap();
            assert_eq!(
                next(&mut msgs),
                Message::Response {
                    id: json!("echo"),
                    result: json!([]),
                    error: Value::Null
                }
            );
            // Unknown methods get an error reply, not silence.
            w.write_all(br#"{"id":9,"method":"steal","params":[]}"#)
                .unwrap();
            let Message::Response { id, error, .. } = next(&mut msgs) else {
                panic!("no reply to an unknown method")
            };
            assert_eq!(
                (id, error["error"].clone()),
                (json!(9), json!("unknown method"))
            );
            // Our echo, answered in two pieces, with a notification before it.
            let Message::Request { id, method, params } = next(&mut msgs) else {
                panic!("expected a request")
            };
            assert_eq!(method, "echo");
            let reply = Message::Response {
                id,
                result: params,
                error: Value::Null,
            }
            .to_json()
            .to_string();
            let (a, b) = reply.split_at(5);
            w.write_all(br#"{"id":null,"method":"update","params":["m",{}]}"#)
                .unwrap();
            w.write_all(a.as_bytes()).unwrap();
            thread::sleep(Duration::from_millis(50));
            w.write_all(b.as_bytes()).unwrap();
            // A reply to nobody, then hang up after the next request.
            w.write_all(br#"{"id":12345,"result":[],"error":null}"#)
                .unwrap();
            let _ = next(&mut msgs);
        });
        let (c, rx) =
            Client::connect(&format!("unix:{}", path.display()), Duration::from_secs(5)).unwrap();
        thread::sleep(Duration::from_millis(100));
        c.echo().unwrap();
        let n = rx.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(n.method, "update");
        assert!(matches!(c.list_dbs(), Err(Error::Closed)));
        assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
        t.join().unwrap();
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn parse_timeout_and_garbage() {
        let (path, t) = fake_server("timeout", |mut s| {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf); // never answer the first request
            thread::sleep(Duration::from_millis(300));
            s.write_all(b"]not json").unwrap();
            thread::sleep(Duration::from_millis(100));
        });
        let (c, rx) = Client::connect(
            &format!("unix:{}", path.display()),
            Duration::from_millis(150),
        )
        .unwrap();
        assert!(matches!(c.echo(), Err(Error::Timeout(_))));
        assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
        assert!(c.is_closed());
        assert!(
            c.close_reason().unwrap().contains("bad JSON"),
            "{:?}",
            c.close_reason()
        );
        t.join().unwrap();
        let _ = std::fs::remove_file(path);
    }
}
