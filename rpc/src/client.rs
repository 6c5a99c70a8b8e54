//! A small client (what `vswitch rpc` and the tests use; rpc.py works the
//! same way): one request object per call, then read until one whole
//! response value has arrived.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::decoder::{Decoder, Next};
use crate::error::RpcError;

/// A connection to a JSON-RPC server.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    dec: Decoder,
    next_id: u64,
}

impl Client {
    /// Connects to the server's socket; each call waits at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> std::io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client {
            stream,
            dec: Decoder::new(),
            next_id: 1,
        })
    }

    /// Calls `method` (params omitted when `None`, as rpc.py does) and
    /// returns its result or its error.
    pub fn call(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> std::io::Result<Result<Value, RpcError>> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"jsonrpc": "2.0", "method": method, "id": id});
        if let Some(p) = params {
            req["params"] = p;
        }
        let resp = self.raw(serde_json::to_vec(&req)?.as_slice())?;
        Ok(parse_response(&resp))
    }

    /// Sends `bytes` as they are and returns the next value received.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<Value> {
        self.stream.write_all(bytes)?;
        self.read_value()
    }

    /// Reads the next whole value the server sends.
    pub fn read_value(&mut self) -> std::io::Result<Value> {
        let mut buf = [0u8; 16 << 10];
        loop {
            match self.dec.next_value() {
                Next::Value(v) => return Ok(v),
                Next::Invalid => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the server sent invalid JSON",
                    ))
                }
                Next::Incomplete => {}
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            self.dec.push(&buf[..n]);
        }
    }
}

/// A response object's result, or its error.
pub fn parse_response(v: &Value) -> Result<Value, RpcError> {
    if let Some(e) = v.get("error") {
        return Err(RpcError::new(
            e.get("code").and_then(Value::as_i64).unwrap_or(0) as i32,
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}
