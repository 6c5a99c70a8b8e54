//! SPDK-compatible JSON-RPC 2.0 management over a unix stream socket.
//!
//! ```text
//!  rpc.py / vswitch rpc ──unix socket──► server (one thread per connection)
//!     bytes ─► Decoder (whole JSON values, back to back, no framing)
//!           ─► Methods::process: request checks (request.rs), batch split,
//!              typed params (serde), dispatch by name ─► service
//!           ◄─ {"jsonrpc":"2.0","id":..,"result"|"error"} + "\n"
//! ```
//!
//! The core (decoder, request checks, dispatch, the SPDK method table) is
//! sans-IO: it maps received bytes to values and values to answers, and is
//! fuzzed (`fuzz/`); [`server`] and [`client`] add the socket.
//!
//! Why serde and serde_json: the method params are plain records whose
//! decoding rules (required and optional members, member types, unknown
//! members refused) are exactly what `#[derive(Deserialize)]` with
//! `deny_unknown_fields` states per type, and serde_json's streaming
//! deserializer finds where one value ends in a byte stream with no
//! framing, which is how SPDK's clients send requests. Both are already in
//! the workspace (the binary's reports and control protocol).

#![deny(missing_docs)]

pub mod client;
pub mod decoder;
pub mod error;
pub mod methods;
pub mod request;
pub mod server;
pub mod spdk;

pub use error::RpcError;
pub use methods::Methods;
