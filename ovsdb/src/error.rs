//! The crate's error type.

use std::fmt;
use std::io;

use serde_json::Value;

/// Everything that can go wrong talking to an OVSDB server or reading its data.
#[derive(Debug)]
pub enum Error {
    /// A connection target (`unix:PATH`, `tcp:IP:PORT`) could not be parsed.
    Target(String),
    /// An I/O error on the connection (connect, read or write).
    Io(io::Error),
    /// The server did not answer a request within the timeout.
    Timeout(String),
    /// The connection is closed (the server went away or the client was shut down).
    Closed,
    /// The peer sent something that is not valid RFC 7047 JSON-RPC.
    Protocol(String),
    /// The server answered a request with a JSON-RPC `error` (RFC 7047 §4.1).
    Rpc {
        /// The method of the failed request.
        method: String,
        /// The `error` member of the reply, as sent.
        error: Value,
    },
    /// One operation of a `transact` failed (RFC 7047 §4.1.3): `index` is the
    /// operation's position, or the number of operations when the commit failed.
    Transaction {
        /// Index of the failed operation in the request's operation list.
        index: usize,
        /// The `error` string of the result object (e.g. `constraint violation`).
        error: String,
        /// The optional `details` string of the result object.
        details: Option<String>,
    },
    /// A value does not have the shape its column needs (RFC 7047 §5.1).
    Datum(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Target(m) => write!(f, "bad OVSDB target: {m}"),
            Error::Io(e) => write!(f, "OVSDB connection: {e}"),
            Error::Timeout(what) => write!(f, "OVSDB server did not answer {what} in time"),
            Error::Closed => write!(f, "OVSDB connection closed"),
            Error::Protocol(m) => write!(f, "OVSDB protocol error: {m}"),
            Error::Rpc { method, error } => write!(f, "OVSDB {method} failed: {error}"),
            Error::Transaction {
                index,
                error,
                details,
            } => {
                write!(f, "OVSDB transaction failed at operation {index}: {error}")?;
                if let Some(d) = details {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Error::Datum(m) => write!(f, "bad OVSDB value: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
